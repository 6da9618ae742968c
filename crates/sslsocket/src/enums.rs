//! The enumerations of Qt's TLS API, under Qt's variant names.
//!
//! Variant spellings are kept verbatim (`SslClientMode`, `VerifyPeer`, `TlsV1_3`,
//! `SslHandshakeFailedError`): the command line's JSON and users' scripts print them, and
//! Qt users search for them.

use std::fmt;

/// Which side of TLS a socket plays (Qt's `QSslSocket::SslMode`).
///
/// A socket starts in `UnencryptedMode`; it becomes `SslClientMode` or `SslServerMode` the
/// moment a handshake starts, and stays so after the connection ends (as in Qt) until a
/// new plain connection is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// Plain TCP: bytes pass through untouched.
    #[default]
    UnencryptedMode,
    /// We are the TLS client.
    SslClientMode,
    /// We are the TLS server.
    SslServerMode,
}

/// The connection state (Qt's `QAbstractSocket::SocketState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SocketState {
    /// Not connected.
    #[default]
    UnconnectedState,
    /// Looking up the host name.
    HostLookupState,
    /// TCP connection being established.
    ConnectingState,
    /// TCP connected (encrypted or not).
    ConnectedState,
    /// Closing: pending data is being flushed before the connection ends.
    ClosingState,
}

/// How the peer's certificate is requested and checked (Qt's `QSslSocket::PeerVerifyMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PeerVerifyMode {
    /// Dangerous: the peer is not asked for a certificate, and one it sends is not
    /// checked. Errors are still collected and reported.
    VerifyNone,
    /// The certificate is requested and checked, but errors do not fail the handshake.
    QueryPeer,
    /// The certificate is required and must verify, unless the errors are ignored.
    VerifyPeer,
    /// `VerifyPeer` for a client, `QueryPeer` for a server: Qt's default.
    #[default]
    AutoVerifyPeer,
}

impl PeerVerifyMode {
    /// The mode in effect for a socket in `mode` (resolves `AutoVerifyPeer`).
    pub fn effective(self, mode: SslMode) -> PeerVerifyMode {
        match (self, mode) {
            (PeerVerifyMode::AutoVerifyPeer, SslMode::SslServerMode) => PeerVerifyMode::QueryPeer,
            (PeerVerifyMode::AutoVerifyPeer, _) => PeerVerifyMode::VerifyPeer,
            (other, _) => other,
        }
    }
}

/// Protocol version selection (Qt's `QSsl::SslProtocol`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SslProtocol {
    /// TLS 1.0 only (only on backends that still offer it).
    TlsV1_0,
    /// TLS 1.1 only (only on backends that still offer it).
    TlsV1_1,
    /// TLS 1.2 only.
    TlsV1_2,
    /// TLS 1.3 only.
    TlsV1_3,
    /// TLS 1.0 or later (only on backends that offer 1.0).
    TlsV1_0OrLater,
    /// TLS 1.1 or later (only on backends that offer 1.1).
    TlsV1_1OrLater,
    /// TLS 1.2 or later.
    TlsV1_2OrLater,
    /// TLS 1.3 or later.
    TlsV1_3OrLater,
    /// Every version the backend supports.
    AnyProtocol,
    /// The versions considered secure: TLS 1.2 and 1.3 (Qt's default).
    #[default]
    SecureProtocols,
    /// No protocol: the value of `session_protocol()` before a handshake.
    UnknownProtocol,
}

impl SslProtocol {
    /// The inclusive version range `(min, max)` this selection stands for, as
    /// `(major, minor)` TLS versions (1.2 = `(1, 2)`); `None` for `UnknownProtocol`.
    pub fn version_range(self) -> Option<(TlsVersion, TlsVersion)> {
        use TlsVersion::*;
        Some(match self {
            SslProtocol::TlsV1_0 => (Tls10, Tls10),
            SslProtocol::TlsV1_1 => (Tls11, Tls11),
            SslProtocol::TlsV1_2 => (Tls12, Tls12),
            SslProtocol::TlsV1_3 => (Tls13, Tls13),
            SslProtocol::TlsV1_0OrLater | SslProtocol::AnyProtocol => (Tls10, Tls13),
            SslProtocol::TlsV1_1OrLater => (Tls11, Tls13),
            SslProtocol::TlsV1_2OrLater | SslProtocol::SecureProtocols => (Tls12, Tls13),
            SslProtocol::TlsV1_3OrLater => (Tls13, Tls13),
            SslProtocol::UnknownProtocol => return None,
        })
    }

    /// The exact protocol for one negotiated version.
    pub fn from_version(version: TlsVersion) -> SslProtocol {
        match version {
            TlsVersion::Tls10 => SslProtocol::TlsV1_0,
            TlsVersion::Tls11 => SslProtocol::TlsV1_1,
            TlsVersion::Tls12 => SslProtocol::TlsV1_2,
            TlsVersion::Tls13 => SslProtocol::TlsV1_3,
        }
    }
}

impl fmt::Display for SslProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One TLS protocol version, ordered from oldest to newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Socket errors under Qt's names (Qt's `QAbstractSocket::SocketError`).
///
/// `error()` on a socket returns the last one; the command line prints the variant name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SocketError {
    /// The peer refused the connection (or timed out).
    ConnectionRefusedError,
    /// The peer closed the connection.
    RemoteHostClosedError,
    /// The host address was not found.
    HostNotFoundError,
    /// The operation was refused by the operating system (permissions).
    SocketAccessError,
    /// The system ran out of resources (too many sockets).
    SocketResourceError,
    /// The operation timed out.
    SocketTimeoutError,
    /// A datagram was larger than the system's limit (unused on TCP).
    DatagramTooLargeError,
    /// A network error occurred (for example the cable was unplugged).
    NetworkError,
    /// The address is already in use.
    AddressInUseError,
    /// The address does not belong to this host.
    SocketAddressNotAvailableError,
    /// The operation is not supported by the local operating system.
    UnsupportedSocketOperationError,
    /// The TLS handshake failed; the connection was closed.
    SslHandshakeFailedError,
    /// The operation is not possible in the socket's current state.
    OperationError,
    /// The TLS library reported an internal error.
    SslInternalError,
    /// Invalid data (certificate, key, cipher, protocol) was given to the TLS library.
    SslInvalidUserDataError,
    /// A temporary error (for example would-block on a non-blocking socket).
    TemporaryError,
    /// An unidentified error.
    #[default]
    UnknownSocketError,
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// TCP socket options that can be set on the plain socket (Qt's
/// `QAbstractSocket::SocketOption`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketOption {
    /// `TCP_NODELAY`: disable Nagle's algorithm. On by default for every TCP socket the
    /// library drives (connected, accepted or adopted), unlike Qt: TLS already gathers
    /// writes into records, and Nagle would hold back a reply's last segment.
    LowDelayOption,
    /// `SO_KEEPALIVE`.
    KeepAliveOption,
}

/// What the socket does when verification errors are found (Qt's
/// `QAbstractSocket::PauseMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PauseMode {
    /// Decide at once: the errors fail the handshake unless they are ignored.
    #[default]
    PauseNever,
    /// Stop after reporting the errors until `resume()` or `abort()`.
    PauseOnSslErrors,
}

/// The level of a TLS alert (Qt's `QSsl::AlertLevel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertLevel {
    /// A warning (close_notify, user_canceled, TLS 1.2 warnings).
    Warning,
    /// A fatal alert: the connection ends.
    Fatal,
    /// A level this library does not know.
    Unknown,
}

/// A TLS alert description (Qt's `QSsl::AlertType`), with the RFC's code points.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertType {
    CloseNotify,
    UnexpectedMessage,
    BadRecordMac,
    RecordOverflow,
    DecompressionFailure,
    HandshakeFailure,
    NoCertificate,
    BadCertificate,
    UnsupportedCertificate,
    CertificateRevoked,
    CertificateExpired,
    CertificateUnknown,
    IllegalParameter,
    UnknownCa,
    AccessDenied,
    DecodeError,
    DecryptError,
    ExportRestriction,
    ProtocolVersion,
    InsufficientSecurity,
    InternalError,
    InappropriateFallback,
    UserCancelled,
    NoRenegotiation,
    MissingExtension,
    UnsupportedExtension,
    CertificateUnobtainable,
    UnrecognizedName,
    BadCertificateStatusResponse,
    BadCertificateHashValue,
    UnknownPskIdentity,
    CertificateRequired,
    NoApplicationProtocol,
    UnknownAlertMessage,
}

impl AlertType {
    /// The alert for a wire code point; unknown codes give `UnknownAlertMessage`.
    pub fn from_code(code: u8) -> AlertType {
        use AlertType::*;
        match code {
            0 => CloseNotify,
            10 => UnexpectedMessage,
            20 => BadRecordMac,
            22 => RecordOverflow,
            30 => DecompressionFailure,
            40 => HandshakeFailure,
            41 => NoCertificate,
            42 => BadCertificate,
            43 => UnsupportedCertificate,
            44 => CertificateRevoked,
            45 => CertificateExpired,
            46 => CertificateUnknown,
            47 => IllegalParameter,
            48 => UnknownCa,
            49 => AccessDenied,
            50 => DecodeError,
            51 => DecryptError,
            60 => ExportRestriction,
            70 => ProtocolVersion,
            71 => InsufficientSecurity,
            80 => InternalError,
            86 => InappropriateFallback,
            90 => UserCancelled,
            100 => NoRenegotiation,
            109 => MissingExtension,
            110 => UnsupportedExtension,
            111 => CertificateUnobtainable,
            112 => UnrecognizedName,
            113 => BadCertificateStatusResponse,
            114 => BadCertificateHashValue,
            115 => UnknownPskIdentity,
            116 => CertificateRequired,
            120 => NoApplicationProtocol,
            _ => UnknownAlertMessage,
        }
    }
}

/// A TLS alert that was sent or received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Alert {
    /// Warning or fatal.
    pub level: AlertLevel,
    /// Which alert.
    pub kind: AlertType,
    /// A readable description, as the backend words it.
    pub description: String,
}
