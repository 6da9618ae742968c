//! Certificate signature checks with the rustls provider's audited algorithms.
//!
//! We only slice DER here (with asn1-rs, through x509-parser); the cryptography is the
//! provider's `SignatureVerificationAlgorithm`, the same code webpki uses.

use x509_parser::asn1_rs::{Any, FromDer};

use crate::crypto::algorithms;

/// Whether the certificate `cert_der` carries a valid signature by the key in
/// `issuer_spki_der` (a whole SubjectPublicKeyInfo).
pub(crate) fn is_signed_by(cert_der: &[u8], issuer_spki_der: &[u8]) -> bool {
    verify_signed_by(cert_der, issuer_spki_der) == SignatureCheck::Valid
}

/// The outcome of one signature check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    /// The signature verifies.
    Valid,
    /// The signature does not verify (Qt's `CertificateSignatureFailed`).
    Invalid,
    /// The issuer's key could not be read or has no supported algorithm
    /// (Qt's `UnableToDecodeIssuerPublicKey`).
    UnsupportedKey,
    /// The certificate could not be sliced into its parts.
    Malformed,
}

/// Checks the signature of `cert_der` with the key in `issuer_spki_der`.
pub(crate) fn verify_signed_by(cert_der: &[u8], issuer_spki_der: &[u8]) -> SignatureCheck {
    let Some((tbs, sig_alg, signature)) = split_signed(cert_der) else {
        return SignatureCheck::Malformed;
    };
    let Some((key_alg, key)) = split_spki(issuer_spki_der) else {
        return SignatureCheck::UnsupportedKey;
    };
    let mut key_known = false;
    for alg in algorithms().all {
        if alg.public_key_alg_id().as_ref() != key_alg {
            continue;
        }
        key_known = true;
        if alg.signature_alg_id().as_ref() != sig_alg {
            continue;
        }
        return match alg.verify_signature(key, tbs, signature) {
            Ok(()) => SignatureCheck::Valid,
            Err(_) => SignatureCheck::Invalid,
        };
    }
    if key_known {
        // The key is one we can use, but not with this signature algorithm.
        SignatureCheck::Invalid
    } else {
        SignatureCheck::UnsupportedKey
    }
}

/// `(tbs with its header, signatureAlgorithm contents, signature bits)` of a signed object.
fn split_signed(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (_, outer) = Any::from_der(der).ok()?;
    let body = outer.data;
    let (rest, _tbs) = Any::from_der(body).ok()?;
    let tbs_raw = body.get(..body.len().checked_sub(rest.len())?)?;
    let (rest, alg) = Any::from_der(rest).ok()?;
    let (_, bits) = Any::from_der(rest).ok()?;
    let signature = bit_string_bytes(bits.data)?;
    Some((tbs_raw, alg.data, signature))
}

/// `(algorithm contents, key bits)` of a SubjectPublicKeyInfo.
fn split_spki(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, outer) = Any::from_der(der).ok()?;
    let (rest, alg) = Any::from_der(outer.data).ok()?;
    let (_, bits) = Any::from_der(rest).ok()?;
    Some((alg.data, bit_string_bytes(bits.data)?))
}

/// The bytes of a BIT STRING with no unused bits.
fn bit_string_bytes(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first() {
        Some((0, bytes)) => Some(bytes),
        _ => None,
    }
}
