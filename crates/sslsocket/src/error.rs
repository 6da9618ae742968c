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

/// Bad configuration or input data supplied by the application.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    /// A configuration error with this message (lower case, names the thing).
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

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
