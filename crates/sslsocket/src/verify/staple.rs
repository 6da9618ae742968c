//! The checks both backends add to the chain's: the stapled OCSP response and the pins.
//! Written once, so the two backends report the same errors for the same peer.

use crate::cert::SslCertificate;
use crate::ocsp::{check_staple, OcspResponse};
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::signature::is_signed_by;
use crate::verify::verifier::ISSUER_KINDS;

/// The kinds that, on the leaf, say its issuer's signature on it does not hold; beside
/// the verifier's [`ISSUER_KINDS`] (no trusted issuer), they leave the issuer
/// unestablished.
const SIGNATURE_KINDS: &[SslErrorKind] = &[
    SslErrorKind::UnableToDecryptCertificateSignature,
    SslErrorKind::UnableToDecodeIssuerPublicKey,
    SslErrorKind::CertificateSignatureFailed,
];

/// Whether the chain's `errors` leave the leaf's issuer, the OCSP authority, unestablished:
/// an error on any certificate but the leaf (the issuer or a certificate of its own
/// chain), or an issuer error on the leaf (or on no certificate). OpenSSL's
/// `OCSP_basic_verify`, which Qt calls with the trust store, verifies the signer's chain
/// to a trusted root; a response is trusted no more than its signer, whatever the
/// application ignores of the chain's own errors.
fn issuer_unestablished(errors: &[SslError], leaf: &SslCertificate) -> bool {
    errors.iter().any(|error| match error.certificate() {
        Some(cert) if cert.der() != leaf.der() => true,
        _ => ISSUER_KINDS.contains(&error.error()) || SIGNATURE_KINDS.contains(&error.error()),
    })
}

/// The stapled response's errors, and the response, for a client that asked for one:
/// `OcspNoResponseFound` when none came. The leaf's issuer is the next certificate of the
/// verified `path`, else the next one `sent`, else `trusted_issuer`. `chain_errors` are the
/// chain's own: a response whose signer's standing they leave open is
/// `OcspResponseCannotBeTrusted` (see [`issuer_unestablished`]).
pub(crate) fn staple_errors(
    sent: &[SslCertificate],
    path: &[SslCertificate],
    chain_errors: &[SslError],
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
    let (response, mut errors) = check_staple(staple, leaf, issuer.as_ref(), now_unix);
    let untrusted = SslError::new(SslErrorKind::OcspResponseCannotBeTrusted);
    if response.is_some()
        && issuer_unestablished(chain_errors, leaf)
        && !errors.contains(&untrusted)
    {
        errors.push(untrusted);
    }
    (response.into_iter().collect(), errors)
}

/// `CertificateRejected` on the leaf when pins are set and no certificate that vouches for
/// the peer has a pinned SubjectPublicKeyInfo digest. What vouches: the leaf (the
/// handshake proved the peer holds its key), and each certificate of the built `path`
/// (leaf up to the anchor) whose signature chain down to the leaf verifies, each link
/// checked here whatever the verification found. So no verify mode, ignored error or
/// unverified path lets a pin match a certificate the peer merely appended, or one above
/// a link that does not verify: an attacker's leaf that names a pinned CA as its issuer
/// and sends it along is not vouched for by that CA.
pub(crate) fn pin_error(
    pins: &[[u8; 32]],
    path: &[SslCertificate],
    leaf: Option<&SslCertificate>,
) -> Option<SslError> {
    if pins.is_empty() {
        return None;
    }
    if leaf
        .filter(|c| !c.is_null())
        .is_some_and(|leaf| pinned_above(pins, path, leaf))
    {
        return None;
    }
    Some(match leaf {
        Some(leaf) => SslError::with_certificate(SslErrorKind::CertificateRejected, leaf.clone()),
        None => SslError::new(SslErrorKind::CertificateRejected),
    })
}

/// Whether `leaf`, or a certificate of `path` linked to it by signatures that verify, has
/// a pinned key.
fn pinned_above(pins: &[[u8; 32]], path: &[SslCertificate], leaf: &SslCertificate) -> bool {
    if pins.contains(&leaf.public_key_sha256()) {
        return true;
    }
    if path.first().map(SslCertificate::der) != Some(leaf.der()) {
        return false;
    }
    for link in path.windows(2) {
        let [signed, issuer] = link else {
            return false;
        };
        let Some(spki) = issuer.with_parsed(|c| c.public_key().raw.to_vec()) else {
            return false;
        };
        if !is_signed_by(signed.der(), &spki) {
            return false;
        }
        if pins.contains(&issuer.public_key_sha256()) {
            return true;
        }
    }
    false
}
