//! Stapled OCSP responses (Qt's `QOcspResponse`), checked by us because rustls does not.
//!
//! A server may staple an OCSP response (RFC 6960) to its certificate in the handshake.
//! rustls hands the bytes to the certificate verifier and webpki ignores them, so this
//! module checks them the way Qt does with OpenSSL (`checkOcspStatus` in Qt's OpenSSL
//! backend): the response status, the one `SingleResponse`, that it is about the peer's
//! certificate (its `CertID`), who signed it (the issuer, or a responder the issuer
//! delegated with `id-kp-OCSPSigning`), its time window and finally the certificate status.
//! Each problem becomes an [`SslError`](crate::SslError) with Qt's kind, so a stapled
//! response that is revoked, expired or untrusted shows up in the handshake's error list and
//! can be ignored like any other error.
//!
//! The response is hostile input: it is parsed with the RustCrypto `x509-ocsp` structures
//! (strict DER), the signed bytes are sliced out of the original input rather than
//! re-encoded, and signatures are checked only with the rustls provider's algorithms.

mod check;
mod raw;
#[cfg(test)]
mod test_pki;
#[cfg(test)]
mod tests;

use crate::cert::SslCertificate;

pub use check::check_response_der;
pub(crate) use check::check_staple;

/// The status of a certificate in an OCSP response (Qt's `QOcspCertificateStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcspCertificateStatus {
    /// The responder knows the certificate and it is not revoked.
    Good,
    /// The certificate is revoked; [`OcspResponse::revocation_reason`] says why.
    Revoked,
    /// The responder does not know the certificate.
    Unknown,
}

/// Why a certificate was revoked (Qt's `QOcspRevocationReason`, the CRL reason codes of
/// RFC 5280 5.3.1 that Qt names).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcspRevocationReason {
    /// No reason: the certificate is not revoked, the response gave no reason, or gave one
    /// Qt has no name for (`privilegeWithdrawn`, `aACompromise`), as Qt reports them.
    None,
    /// `unspecified`.
    Unspecified,
    /// `keyCompromise`: the certificate's private key is known to others.
    KeyCompromise,
    /// `cACompromise`: the issuing CA's private key is known to others.
    CACompromise,
    /// `affiliationChanged`.
    AffiliationChanged,
    /// `superseded`: a new certificate replaces this one.
    Superseded,
    /// `cessationOfOperation`.
    CessationOfOperation,
    /// `certificateHold`: suspended, may be reinstated.
    CertificateHold,
    /// `removeFromCRL`.
    RemoveFromCRL,
}

/// A stapled OCSP response as the handshake understood it (Qt's `QOcspResponse`).
///
/// Made only by the library, from a response that parsed and held exactly one
/// `SingleResponse`; whether it can be *trusted* is a separate matter, reported as
/// verification errors of the handshake (`OcspResponseCannotBeTrusted`,
/// `OcspResponseCertIdUnknown`, `OcspResponseExpired`). Equality is on all four values, as
/// Qt's `operator==`.
#[derive(Clone, Debug)]
pub struct OcspResponse {
    status: OcspCertificateStatus,
    reason: OcspRevocationReason,
    responder: Option<SslCertificate>,
    subject: Option<SslCertificate>,
    /// Until when (seconds since the Unix epoch) the response stays as good as it was
    /// when checked: its `nextUpdate` plus the clock skew allowed, or its delegated
    /// responder's `notAfter`, the earlier; `None` when it was out of date already (then
    /// `OcspResponseExpired` is among the errors) or nothing bounds it. A session is not
    /// resumed past it (`Outcome::valid_until`). Not part of equality.
    pub(crate) fresh_until: Option<i64>,
}

impl PartialEq for OcspResponse {
    fn eq(&self, other: &Self) -> bool {
        (self.status, self.reason, &self.responder, &self.subject)
            == (other.status, other.reason, &other.responder, &other.subject)
    }
}

impl Eq for OcspResponse {}

impl std::hash::Hash for OcspResponse {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.status, self.reason, &self.responder, &self.subject).hash(state);
    }
}

impl OcspResponse {
    /// What the responder says about the certificate (Qt's `certificateStatus()`).
    pub fn certificate_status(&self) -> OcspCertificateStatus {
        self.status
    }

    /// Why the certificate was revoked; [`OcspRevocationReason::None`] unless
    /// [`certificate_status`](Self::certificate_status) is `Revoked` (Qt's
    /// `revocationReason()`).
    pub fn revocation_reason(&self) -> OcspRevocationReason {
        self.reason
    }

    /// The certificate whose key signed the response (Qt's `responder()`): the issuer of
    /// the subject, or a responder certificate the issuer delegated with
    /// `id-kp-OCSPSigning`.
    ///
    /// `None` when no such signer was found (the response is then reported as
    /// `OcspResponseCannotBeTrusted`) or when the response is about another certificate
    /// (`OcspResponseCertIdUnknown`; Qt clears the responder in that case too).
    pub fn responder(&self) -> Option<SslCertificate> {
        self.responder.clone()
    }

    /// The certificate the response was checked for: the peer's leaf certificate (Qt's
    /// `subject()`). Qt sets it even when the response's `CertID` names another
    /// certificate, which the handshake reports as `OcspResponseCertIdUnknown`.
    pub fn subject(&self) -> Option<SslCertificate> {
        self.subject.clone()
    }
}
