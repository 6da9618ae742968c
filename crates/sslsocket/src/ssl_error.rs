//! Verification errors as data (Qt's `QSslError`).

use std::fmt;

use crate::cert::SslCertificate;

/// The kind of a verification error (Qt's `QSslError::SslError`), with Qt's names and values.
#[allow(missing_docs)]
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
pub enum SslErrorKind {
    NoError,
    UnableToGetIssuerCertificate,
    UnableToDecryptCertificateSignature,
    UnableToDecodeIssuerPublicKey,
    CertificateSignatureFailed,
    CertificateNotYetValid,
    CertificateExpired,
    InvalidNotBeforeField,
    InvalidNotAfterField,
    SelfSignedCertificate,
    SelfSignedCertificateInChain,
    UnableToGetLocalIssuerCertificate,
    UnableToVerifyFirstCertificate,
    CertificateRevoked,
    InvalidCaCertificate,
    PathLengthExceeded,
    InvalidPurpose,
    CertificateUntrusted,
    CertificateRejected,
    SubjectIssuerMismatch,
    AuthorityIssuerSerialNumberMismatch,
    NoPeerCertificate,
    HostNameMismatch,
    NoSslSupport,
    CertificateBlacklisted,
    CertificateStatusUnknown,
    OcspNoResponseFound,
    OcspMalformedRequest,
    OcspMalformedResponse,
    OcspInternalError,
    OcspTryLater,
    OcspSigRequred,
    OcspUnauthorized,
    OcspResponseCannotBeTrusted,
    OcspResponseCertIdUnknown,
    OcspResponseExpired,
    OcspStatusUnknown,
    UnspecifiedError,
}

impl SslErrorKind {
    /// An error about the certificate's status as its stapled OCSP response gave it (or
    /// failed to): revoked, unknown, missing, unusable.
    pub(crate) fn is_staple_status(self) -> bool {
        use SslErrorKind::*;
        matches!(
            self,
            CertificateRevoked
                | CertificateStatusUnknown
                | OcspNoResponseFound
                | OcspMalformedRequest
                | OcspMalformedResponse
                | OcspInternalError
                | OcspTryLater
                | OcspSigRequred
                | OcspUnauthorized
                | OcspResponseCannotBeTrusted
                | OcspResponseCertIdUnknown
                | OcspResponseExpired
                | OcspStatusUnknown
        )
    }

    /// Qt's numeric value (`UnspecifiedError` is -1).
    pub fn value(self) -> i32 {
        if self == SslErrorKind::UnspecifiedError {
            return -1;
        }
        SslErrorKind::ALL
            .iter()
            .position(|k| *k == self)
            .map_or(-1, |i| i as i32)
    }

    /// The kind with this variant name, for `--ignore NAME` (`FromStr` as an `Option`).
    pub fn from_name(name: &str) -> Option<SslErrorKind> {
        name.parse().ok()
    }

    /// Qt's error string for this kind.
    pub fn error_string(self) -> &'static str {
        use SslErrorKind::*;
        match self {
            NoError => "No error",
            UnableToGetIssuerCertificate => "The issuer certificate could not be found",
            UnableToDecryptCertificateSignature => "The certificate signature could not be decrypted",
            UnableToDecodeIssuerPublicKey => "The public key in the certificate could not be read",
            CertificateSignatureFailed => "The signature of the certificate is invalid",
            CertificateNotYetValid => "The certificate is not yet valid",
            CertificateExpired => "The certificate has expired",
            InvalidNotBeforeField => "The certificate's notBefore field contains an invalid time",
            InvalidNotAfterField => "The certificate's notAfter field contains an invalid time",
            SelfSignedCertificate => "The certificate is self-signed, and untrusted",
            SelfSignedCertificateInChain => {
                "The root certificate of the certificate chain is self-signed, and untrusted"
            }
            UnableToGetLocalIssuerCertificate => {
                "The issuer certificate of a locally looked up certificate could not be found"
            }
            UnableToVerifyFirstCertificate => "No certificates could be verified",
            CertificateRevoked => "The certificate has been revoked",
            InvalidCaCertificate => "One of the CA certificates is invalid",
            PathLengthExceeded => "The basicConstraints path length parameter has been exceeded",
            InvalidPurpose => "The supplied certificate is unsuitable for this purpose",
            CertificateUntrusted => "The root CA certificate is not trusted for this purpose",
            CertificateRejected => "The root CA certificate is marked to reject the specified purpose",
            SubjectIssuerMismatch => {
                "The current candidate issuer certificate was rejected because its subject name \
                 did not match the issuer name of the current certificate"
            }
            AuthorityIssuerSerialNumberMismatch => {
                "The current candidate issuer certificate was rejected because its issuer name \
                 and serial number was present and did not match the authority key identifier \
                 of the current certificate"
            }
            NoPeerCertificate => "The peer did not present any certificate",
            HostNameMismatch => "The host name did not match any of the valid hosts for this certificate",
            NoSslSupport => "No SSL support",
            CertificateBlacklisted => "The peer certificate is blacklisted",
            CertificateStatusUnknown => "The certificate's revocation status could not be determined",
            OcspNoResponseFound => "No OCSP status response found",
            OcspMalformedRequest => "The OCSP status request had invalid syntax",
            OcspMalformedResponse => "OCSP response contains an unexpected number of SingleResponse structures",
            OcspInternalError => "OCSP responder reached an inconsistent internal state",
            OcspTryLater => "OCSP responder was unable to return a status for the requested certificate",
            OcspSigRequred => "The server requires the client to sign the OCSP request in order to construct a response",
            OcspUnauthorized => "The client is not authorized to request OCSP status from this server",
            OcspResponseCannotBeTrusted => "OCSP responder's identity cannot be verified",
            OcspResponseCertIdUnknown => "The identity of a certificate in an OCSP response cannot be established",
            OcspResponseExpired => "The certificate status response has expired",
            OcspStatusUnknown => "The certificate's status is unknown",
            UnspecifiedError => "Unknown error",
        }
    }
}

// `ALL` (Qt's order, `UnspecifiedError` last), `name()` (`"HostNameMismatch"`), `Display`
// (the name) and `FromStr`.
crate::enums::variant_names!(SslErrorKind);

/// One verification error, tied to the certificate it concerns (Qt's `QSslError`).
///
/// Equality and hashing follow Qt: kind *and* certificate (by DER), which is what
/// `ignore_ssl_errors_list` matches on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SslError {
    kind: SslErrorKind,
    certificate: Option<SslCertificate>,
}

impl Default for SslError {
    fn default() -> SslError {
        SslError {
            kind: SslErrorKind::NoError,
            certificate: None,
        }
    }
}

impl SslError {
    /// An error not tied to a certificate.
    pub fn new(kind: SslErrorKind) -> SslError {
        SslError {
            kind,
            certificate: None,
        }
    }

    /// An error tied to `certificate`.
    pub fn with_certificate(kind: SslErrorKind, certificate: SslCertificate) -> SslError {
        SslError {
            kind,
            certificate: Some(certificate),
        }
    }

    /// The kind (Qt's `error()`).
    pub fn error(&self) -> SslErrorKind {
        self.kind
    }

    /// The certificate concerned, if any.
    pub fn certificate(&self) -> Option<&SslCertificate> {
        self.certificate.as_ref()
    }

    /// Qt's error string.
    pub fn error_string(&self) -> &'static str {
        self.kind.error_string()
    }
}

/// One entry of an ignore list.
///
/// Qt's `ignoreSslErrors(list)` matches kind *and* certificate exactly ([`IgnoreRule::Exact`]);
/// the command line's `--ignore NAME` (no certificate) ignores a kind on any certificate
/// ([`IgnoreRule::AnyCertificate`]).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IgnoreRule {
    /// Ignore exactly this error: same kind and same certificate (or both without one).
    Exact(SslError),
    /// Ignore this kind whatever certificate it concerns.
    AnyCertificate(SslErrorKind),
}

impl IgnoreRule {
    /// Whether this rule covers `error`.
    pub fn covers(&self, error: &SslError) -> bool {
        match self {
            IgnoreRule::Exact(ignored) => ignored == error,
            IgnoreRule::AnyCertificate(kind) => *kind == error.error(),
        }
    }
}

impl From<SslError> for IgnoreRule {
    fn from(error: SslError) -> IgnoreRule {
        IgnoreRule::Exact(error)
    }
}

impl fmt::Display for SslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.error_string())
    }
}

impl std::error::Error for SslError {}
