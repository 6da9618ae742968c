//! The checks both backends add to the chain's: the stapled OCSP response and the pins.
//! Written once, so the two backends report the same errors for the same peer.

use crate::cert::SslCertificate;
use crate::ocsp::{check_staple, OcspResponse};
use crate::ssl_error::{SslError, SslErrorKind};

/// The stapled response's errors, and the response, for a client that asked for one:
/// `OcspNoResponseFound` when none came. The leaf's issuer is the next certificate of the
/// verified `path`, else the next one `sent`, else `trusted_issuer`.
pub(crate) fn staple_errors(
    sent: &[SslCertificate],
    path: &[SslCertificate],
    trusted_issuer: impl FnOnce(&SslCertificate) -> Option<SslCertificate>,
    staple: &[u8],
    now_unix: i64,
) -> (Vec<OcspResponse>, Vec<SslError>) {
    if staple.is_empty() {
        return (
            Vec::new(),
            vec![SslError::new(SslErrorKind::OcspNoResponseFound)],
        );
    }
    let Some(leaf) = sent.first().filter(|c| !c.is_null()) else {
        return (
            Vec::new(),
            vec![SslError::new(SslErrorKind::OcspMalformedResponse)],
        );
    };
    let issuer = path
        .get(1)
        .or_else(|| sent.get(1).filter(|c| !c.is_null()))
        .cloned()
        .or_else(|| trusted_issuer(leaf));
    let (response, errors) = check_staple(staple, leaf, issuer.as_ref(), now_unix);
    (response.into_iter().collect(), errors)
}

/// `CertificateRejected` on the leaf when pins are set and no certificate of the verified
/// `path` (leaf up to the anchor; never extra certificates the peer appended) has a pinned
/// SubjectPublicKeyInfo digest.
pub(crate) fn pin_error(
    pins: &[[u8; 32]],
    path: &[SslCertificate],
    leaf: Option<&SslCertificate>,
) -> Option<SslError> {
    if pins.is_empty() {
        return None;
    }
    let pinned = path
        .iter()
        .filter(|c| !c.is_null())
        .any(|c| pins.contains(&c.public_key_sha256()));
    if pinned {
        return None;
    }
    Some(match leaf {
        Some(leaf) => SslError::with_certificate(SslErrorKind::CertificateRejected, leaf.clone()),
        None => SslError::new(SslErrorKind::CertificateRejected),
    })
}
