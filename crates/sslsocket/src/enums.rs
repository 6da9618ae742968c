//! The enumerations of Qt's TLS API, under Qt's variant names.
//!
//! Variant spellings are kept verbatim (`SslClientMode`, `VerifyPeer`, `TlsV1_3`,
//! `SslHandshakeFailedError`): the command line's JSON and users' scripts print them, and
//! Qt users search for them.
//!
//! Every enumeration has `name()` (the variant name, `&'static str`), `Display` (the same
//! name) and `FromStr` (the name back; [`SslProtocol`] and [`PeerVerifyMode`] also take
//! the short forms the command line uses, `tls1.2+`, `verify`).
//!
//! Which enums are `#[non_exhaustive]`: those that name kinds, events or states that Qt
//! or TLS may grow (errors, socket states, protocol selections, alerts, socket options),
//! so a new variant is not a breaking change. The small closed choices an application
//! matches on to decide what to do stay exhaustive, so that a `match` needs no wildcard
//! arm that would hide a mistake: [`SslMode`] (client, server or neither),
//! [`PeerVerifyMode`] (Qt's four modes), [`PauseMode`] and [`AlertLevel`] (warning or
//! fatal, as TLS defines them).

use std::str::FromStr;

/// A string that names no variant of an enumeration (`"tls1.4".parse::<SslProtocol>()`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a {type_name} (expected one of: {expected})")]
pub struct ParseEnumError {
    type_name: &'static str,
    input: String,
    expected: String,
}

impl ParseEnumError {
    pub(crate) fn new<T: Copy + Into<&'static str>>(
        type_name: &'static str,
        input: &str,
        all: &[T],
    ) -> ParseEnumError {
        let expected: Vec<&'static str> = all.iter().map(|v| (*v).into()).collect();
        ParseEnumError {
            type_name,
            input: input.to_string(),
            expected: expected.join(", "),
        }
    }

    /// The enumeration's name (`"SslProtocol"`).
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The text that did not parse.
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// `name()`, `ALL`, `Display`, `FromStr` (exact variant names) and `Into<&'static str>`
/// for an enumeration whose variant names are its public spelling.
macro_rules! variant_names {
    ($ty:ident) => {
        $crate::enums::variant_names!(@names $ty);
        impl std::str::FromStr for $ty {
            type Err = $crate::enums::ParseEnumError;
            fn from_str(s: &str) -> Result<$ty, Self::Err> {
                $ty::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| {
                        $crate::enums::ParseEnumError::new(stringify!($ty), s, $ty::ALL)
                    })
            }
        }
    };
    (@names $ty:ident) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = <$ty as strum::VariantArray>::VARIANTS;

            /// The variant name (Qt's spelling), as the command line and its JSON print it.
            pub fn name(self) -> &'static str {
                self.into()
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
pub(crate) use variant_names;

/// Which side of TLS a socket plays (Qt's `QSslSocket::SslMode`).
///
/// A socket starts in `UnencryptedMode`; it becomes `SslClientMode` or `SslServerMode` the
/// moment a handshake starts, and stays so after the connection ends (as in Qt) until a
/// new plain connection is made.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, strum::VariantArray, strum::IntoStaticStr,
)]
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
#[non_exhaustive]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, strum::VariantArray, strum::IntoStaticStr,
)]
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
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, strum::VariantArray, strum::IntoStaticStr,
)]
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
#[non_exhaustive]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, strum::VariantArray, strum::IntoStaticStr,
)]
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

/// One TLS protocol version, ordered from oldest to newest.
#[non_exhaustive]
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::VariantArray,
    strum::IntoStaticStr,
)]
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
#[non_exhaustive]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, strum::VariantArray, strum::IntoStaticStr,
)]
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

/// TCP socket options that can be set on the plain socket (Qt's
/// `QAbstractSocket::SocketOption`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::VariantArray, strum::IntoStaticStr)]
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
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, strum::VariantArray, strum::IntoStaticStr,
)]
pub enum PauseMode {
    /// Decide at once: the errors fail the handshake unless they are ignored.
    #[default]
    PauseNever,
    /// Stop after reporting the errors until `resume()` or `abort()`.
    PauseOnSslErrors,
}

/// The level of a TLS alert (Qt's `QSsl::AlertLevel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::VariantArray, strum::IntoStaticStr)]
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
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::VariantArray, strum::IntoStaticStr)]
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

variant_names!(SslMode);
variant_names!(SocketState);
variant_names!(@names PeerVerifyMode);
variant_names!(@names SslProtocol);
variant_names!(TlsVersion);
variant_names!(SocketError);
variant_names!(SocketOption);
variant_names!(PauseMode);
variant_names!(AlertLevel);
variant_names!(AlertType);

impl SslProtocol {
    /// The short form the command line takes (`--protocol tls1.2+`), for the selections
    /// that have one: `secure`, `any`, `tls1.0` ... `tls1.3`, `tls1.0+` ... `tls1.3+`.
    pub const fn short_name(self) -> Option<&'static str> {
        Some(match self {
            SslProtocol::TlsV1_0 => "tls1.0",
            SslProtocol::TlsV1_1 => "tls1.1",
            SslProtocol::TlsV1_2 => "tls1.2",
            SslProtocol::TlsV1_3 => "tls1.3",
            SslProtocol::TlsV1_0OrLater => "tls1.0+",
            SslProtocol::TlsV1_1OrLater => "tls1.1+",
            SslProtocol::TlsV1_2OrLater => "tls1.2+",
            SslProtocol::TlsV1_3OrLater => "tls1.3+",
            SslProtocol::AnyProtocol => "any",
            SslProtocol::SecureProtocols => "secure",
            SslProtocol::UnknownProtocol => return None,
        })
    }
}

/// Qt's variant name (`TlsV1_2OrLater`) or the short form (`tls1.2+`, see
/// [`SslProtocol::short_name`]); `UnknownProtocol` parses only by its name.
impl FromStr for SslProtocol {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<SslProtocol, ParseEnumError> {
        SslProtocol::ALL
            .iter()
            .copied()
            .find(|p| p.name() == s || p.short_name() == Some(s))
            .ok_or_else(|| {
                let short: Vec<&'static str> = SslProtocol::ALL
                    .iter()
                    .filter_map(|p| p.short_name())
                    .collect();
                ParseEnumError::new("SslProtocol", s, &short)
            })
    }
}

impl PeerVerifyMode {
    /// The short form the command line takes (`--verify query`): `none`, `query`,
    /// `verify`, `auto`.
    pub const fn short_name(self) -> &'static str {
        match self {
            PeerVerifyMode::VerifyNone => "none",
            PeerVerifyMode::QueryPeer => "query",
            PeerVerifyMode::VerifyPeer => "verify",
            PeerVerifyMode::AutoVerifyPeer => "auto",
        }
    }
}

/// Qt's variant name (`VerifyPeer`) or the short form (`verify`, see
/// [`PeerVerifyMode::short_name`]).
impl FromStr for PeerVerifyMode {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<PeerVerifyMode, ParseEnumError> {
        PeerVerifyMode::ALL
            .iter()
            .copied()
            .find(|m| m.name() == s || m.short_name() == s)
            .ok_or_else(|| {
                let short: Vec<&'static str> =
                    PeerVerifyMode::ALL.iter().map(|m| m.short_name()).collect();
                ParseEnumError::new("PeerVerifyMode", s, &short)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_variant() -> Result<(), ParseEnumError> {
        for &p in SslProtocol::ALL {
            assert_eq!(p.name().parse::<SslProtocol>()?, p);
            assert_eq!(p.to_string(), format!("{p:?}"));
            if let Some(short) = p.short_name() {
                assert_eq!(short.parse::<SslProtocol>()?, p);
            }
        }
        for &m in PeerVerifyMode::ALL {
            assert_eq!(m.name().parse::<PeerVerifyMode>()?, m);
            assert_eq!(m.short_name().parse::<PeerVerifyMode>()?, m);
        }
        for &e in SocketError::ALL {
            assert_eq!(e.name().parse::<SocketError>()?, e);
            assert_eq!(e.name(), format!("{e:?}"));
        }
        for &a in AlertType::ALL {
            assert_eq!(a.name().parse::<AlertType>()?, a);
            assert_eq!(a.name(), format!("{a:?}"));
        }
        for &s in SocketState::ALL {
            assert_eq!(s.name().parse::<SocketState>()?, s);
        }
        for &m in SslMode::ALL {
            assert_eq!(m.name().parse::<SslMode>()?, m);
        }
        Ok(())
    }

    #[test]
    fn an_unknown_name_is_an_error_that_lists_the_names() -> Result<(), &'static str> {
        let e = "tls1.4"
            .parse::<SslProtocol>()
            .err()
            .ok_or("tls1.4 parsed as a protocol")?;
        assert_eq!(e.type_name(), "SslProtocol");
        assert_eq!(e.input(), "tls1.4");
        assert!(e.to_string().contains("tls1.3+"), "{e}");
        assert!("verifypeer".parse::<PeerVerifyMode>().is_err());
        assert!("".parse::<SocketError>().is_err());
        Ok(())
    }
}
