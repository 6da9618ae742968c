//! Operation errors: everything that makes a call fail.
//!
//! Verification problems are *data* ([`crate::SslError`]), collected and matched against
//! ignore lists; this module is for the other kind: a call that did not succeed. Each
//! family maps to one of Qt's [`SocketError`] kinds through [`Error::socket_error`].

use std::io;
use std::sync::Arc;

use crate::enums::{Alert, SocketError};

/// The error of a failed operation.
#[non_exhaustive]
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the application: unreadable or malformed PEM, wrong passphrase,
    /// a key that does not match its certificate, a protocol the backend cannot do.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The operating system refused or failed an operation.
    #[error("{context}: {source}")]
    Io {
        /// Qt's name for what happened (refused, host not found, network error, ...).
        socket_error: SocketError,
        /// What we were doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// TLS failed: handshake error, alert, verification refused.
    #[error(transparent)]
    Tls(#[from] TlsFailure),
    /// A deadline passed before the operation finished.
    #[error("{0}: operation timed out")]
    Timeout(String),
    /// The peer closed the connection.
    #[error("{0}")]
    Closed(String),
    /// The call does not fit the socket's state; never caused by the peer.
    #[error(transparent)]
    Misuse(#[from] ApiMisuse),
}

impl Error {
    /// Qt's `SocketError` for this error: what `error()` reports and the command line prints.
    pub fn socket_error(&self) -> SocketError {
        match self {
            Error::Config(_) => SocketError::SslInvalidUserDataError,
            Error::Io { socket_error, .. } => *socket_error,
            Error::Tls(failure) => failure.socket_error,
            Error::Timeout(_) => SocketError::SocketTimeoutError,
            Error::Closed(_) => SocketError::RemoteHostClosedError,
            Error::Misuse(_) => SocketError::OperationError,
        }
    }

    /// An I/O error, classified into Qt's socket error kinds.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        let socket_error = match source.kind() {
            io::ErrorKind::ConnectionRefused => SocketError::ConnectionRefusedError,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => SocketError::RemoteHostClosedError,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => SocketError::SocketTimeoutError,
            io::ErrorKind::AddrInUse => SocketError::AddressInUseError,
            io::ErrorKind::AddrNotAvailable => SocketError::SocketAddressNotAvailableError,
            io::ErrorKind::PermissionDenied => SocketError::SocketAccessError,
            io::ErrorKind::NotFound => SocketError::HostNotFoundError,
            io::ErrorKind::Unsupported => SocketError::UnsupportedSocketOperationError,
            _ => SocketError::NetworkError,
        };
        Error::Io {
            socket_error,
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// The peer closed the connection during the handshake, without an alert.
    pub fn closed_during_handshake() -> Error {
        Error::Closed("the remote host closed the connection during the handshake".into())
    }

    /// The TLS failure inside, if this is one.
    pub fn tls_failure(&self) -> Option<&TlsFailure> {
        match self {
            Error::Tls(failure) => Some(failure),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> io::Error {
        if let Error::Io { source, .. } = &error {
            // The transport's own error keeps its kind (round 34: a tunnel's `Other` became
            // `InvalidData`, which says bad TLS data). Only `WouldBlock`, which a poll-based
            // caller must never see, and `Interrupted` become a timeout.
            let kind = match source.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => io::ErrorKind::TimedOut,
                kind => kind,
            };
            return io::Error::new(kind, error);
        }
        let kind = match error.socket_error() {
            SocketError::SocketTimeoutError => io::ErrorKind::TimedOut,
            SocketError::RemoteHostClosedError => io::ErrorKind::ConnectionAborted,
            SocketError::ConnectionRefusedError => io::ErrorKind::ConnectionRefused,
            SocketError::SslInvalidUserDataError => io::ErrorKind::InvalidInput,
            SocketError::OperationError => io::ErrorKind::NotConnected,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, error)
    }
}

/// What kind of problem a [`ConfigError`] is, for code that reacts to some of them (ask
/// for the passphrase again, report a missing file) without reading the message.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// A file or directory could not be read; the [`std::io::Error`] is the `source()`.
    Io,
    /// The data is not what it should be: malformed PEM, DER, PKCS#8, PKCS#12, a file
    /// over its size limit.
    Malformed,
    /// The key is encrypted and no passphrase was given.
    PassphraseRequired,
    /// The passphrase is wrong (or the encrypted data is corrupt: the two cannot be told
    /// apart).
    WrongPassphrase,
    /// The private key does not belong to the certificate.
    KeyMismatch,
    /// Valid, but not something this backend (or this library) can do: a cipher, a
    /// protocol version, a key encryption scheme, a feature.
    Unsupported,
    /// A setting is invalid or inconsistent with another (an empty list, an ALPN name
    /// over 255 bytes, a host name TLS cannot send).
    InvalidSetting,
    /// Anything else; the message says what.
    Other,
}

impl ConfigErrorKind {
    /// The variant name (`"WrongPassphrase"`).
    pub const fn name(self) -> &'static str {
        match self {
            ConfigErrorKind::Io => "Io",
            ConfigErrorKind::Malformed => "Malformed",
            ConfigErrorKind::PassphraseRequired => "PassphraseRequired",
            ConfigErrorKind::WrongPassphrase => "WrongPassphrase",
            ConfigErrorKind::KeyMismatch => "KeyMismatch",
            ConfigErrorKind::Unsupported => "Unsupported",
            ConfigErrorKind::InvalidSetting => "InvalidSetting",
            ConfigErrorKind::Other => "Other",
        }
    }
}

impl std::fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Bad configuration or input data supplied by the application.
///
/// `Display` names the thing and what is wrong with it, one level; an operating-system
/// error that caused it is the [`source()`](std::error::Error::source), and
/// [`message()`](Self::message) is the whole story on one line, cause included, for reports.
#[derive(Clone, Debug)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    context: String,
    message: String,
    source: Option<Arc<io::Error>>,
}

impl ConfigError {
    /// A configuration error with this message (lower case, names the thing), of kind
    /// [`ConfigErrorKind::Other`].
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError::with_kind(ConfigErrorKind::Other, message)
    }

    /// A configuration error of this kind.
    pub fn with_kind(kind: ConfigErrorKind, message: impl Into<String>) -> ConfigError {
        let message = message.into();
        ConfigError {
            kind,
            context: message.clone(),
            message,
            source: None,
        }
    }

    /// The private key is not the one of the local certificate
    /// ([`ConfigErrorKind::KeyMismatch`]), in the same words on every backend.
    pub(crate) fn key_mismatch() -> ConfigError {
        ConfigError::with_kind(
            ConfigErrorKind::KeyMismatch,
            "local certificate and private key: the private key is not the certificate's \
             (its public key differs from the certificate's)",
        )
    }

    /// [`key_mismatch`](Self::key_mismatch) for a local `chain` and its `key`, saying so
    /// when the key is that of another certificate of the chain (a chain given in the
    /// wrong order: it must start with the key's own certificate).
    pub(crate) fn key_mismatch_in(
        chain: &[crate::cert::SslCertificate],
        key: &crate::cert::SslKey,
    ) -> ConfigError {
        let owner = chain
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, cert)| key.belongs_to(cert) == Some(true));
        if chain
            .first()
            .is_some_and(|leaf| key.belongs_to(leaf) != Some(false))
        {
            // The key is the certificate's, or nothing here can tell (a key type or an
            // encoding, such as explicit curve parameters, that the backend does not use):
            // say that, not that the key is another one.
            return ConfigError::unsupported(
                "local certificate and private key: this backend cannot use this key with \
                 this certificate (a key type or encoding it does not support, such as \
                 explicit curve parameters)",
            );
        }
        match owner {
            Some((index, cert)) => ConfigError::with_kind(
                ConfigErrorKind::KeyMismatch,
                format!(
                    "local certificate and private key: the private key is not the first \
                     certificate's but that of certificate {} of the chain ({}); the chain \
                     must start with the key's own certificate, then its issuers",
                    index + 1,
                    cert.subject_rfc4514()
                ),
            ),
            None => ConfigError::key_mismatch(),
        }
    }

    /// Malformed data ([`ConfigErrorKind::Malformed`]).
    pub(crate) fn malformed(message: impl Into<String>) -> ConfigError {
        ConfigError::with_kind(ConfigErrorKind::Malformed, message)
    }

    /// Something this backend or library cannot do ([`ConfigErrorKind::Unsupported`]).
    pub(crate) fn unsupported(message: impl Into<String>) -> ConfigError {
        ConfigError::with_kind(ConfigErrorKind::Unsupported, message)
    }

    /// An invalid setting ([`ConfigErrorKind::InvalidSetting`]).
    pub(crate) fn invalid(message: impl Into<String>) -> ConfigError {
        ConfigError::with_kind(ConfigErrorKind::InvalidSetting, message)
    }

    /// A file could not be read: kind [`ConfigErrorKind::Io`], `source` as the source.
    pub fn io(context: impl Into<String>, source: io::Error) -> ConfigError {
        let context = context.into();
        ConfigError {
            kind: ConfigErrorKind::Io,
            message: format!("{context}: {source}"),
            context,
            source: Some(Arc::new(source)),
        }
    }

    /// The same error with another message (the kind and the source stay): how a caller
    /// names the file or option the error came from.
    pub fn context(mut self, prefix: impl std::fmt::Display) -> ConfigError {
        self.context = format!("{prefix}: {}", self.context);
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The message, with the text of the cause (if any) appended: one line for reports.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The operating-system error behind a [`ConfigErrorKind::Io`] error.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.source.as_deref()
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.context)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Equal when kind and message are (an I/O source is compared by its text, in the message).
impl PartialEq for ConfigError {
    fn eq(&self, other: &ConfigError) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for ConfigError {}

/// A TLS-level failure: the handshake failed, an alert arrived, verification refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TlsFailure {
    /// Qt's name for it (usually `SslHandshakeFailedError`).
    pub socket_error: SocketError,
    /// What happened, as readable text.
    pub message: String,
    /// The alert the peer sent, when the failure is an alert from the peer.
    pub alert_received: Option<Alert>,
}

impl TlsFailure {
    /// A handshake failure with this message.
    pub fn handshake(message: impl Into<String>) -> TlsFailure {
        TlsFailure {
            socket_error: SocketError::SslHandshakeFailedError,
            message: message.into(),
            alert_received: None,
        }
    }

    /// A failure of the TLS library itself, or of the peer after the handshake.
    pub fn internal(message: impl Into<String>) -> TlsFailure {
        TlsFailure {
            socket_error: SocketError::SslInternalError,
            message: message.into(),
            alert_received: None,
        }
    }
}

/// A call that does not fit the socket's current state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApiMisuse(pub String);

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
