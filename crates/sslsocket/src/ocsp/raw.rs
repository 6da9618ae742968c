//! Byte-level helpers: the signed parts of a `BasicOCSPResponse` as they were received,
//! the parts of a SubjectPublicKeyInfo, digests and the signature check.
//!
//! Signatures cover the bytes the responder sent, so they are sliced out of the input, never
//! re-encoded from parsed values. The cryptography is the rustls provider's
//! `SignatureVerificationAlgorithm`s and aws-lc-rs digests; nothing here computes anything
//! but offsets.

use aws_lc_rs::digest;
use der::asn1::AnyRef;
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};

use crate::crypto::algorithms;

/// The raw parts of a `BasicOCSPResponse` (RFC 6960 4.2.1):
/// `SEQUENCE { tbsResponseData, signatureAlgorithm, signature, [0] EXPLICIT certs OPTIONAL }`.
pub(super) struct SignedParts<'a> {
    /// `tbsResponseData`, whole (identifier, length and contents): what the signature covers.
    pub(super) tbs: &'a [u8],
    /// The contents of the `signatureAlgorithm` AlgorithmIdentifier (without its SEQUENCE
    /// header), in the form the provider's `signature_alg_id()` uses.
    pub(super) signature_algorithm: &'a [u8],
    /// The signature: the BIT STRING's bytes (no unused bits allowed).
    pub(super) signature: &'a [u8],
    /// Each certificate of `certs`, whole, in order.
    pub(super) certs: Vec<&'a [u8]>,
}

/// Slices a DER `BasicOCSPResponse`; `None` when it does not have that shape or has
/// anything after it.
pub(super) fn split_basic(der: &[u8]) -> Option<SignedParts<'_>> {
    let body = single(der, Tag::Sequence)?;
    let mut parts = elements(body)?.into_iter();
    let tbs = parts.next().filter(|tlv| has_tag(tlv, Tag::Sequence))?;
    let signature_algorithm = contents(parts.next()?, Tag::Sequence)?;
    let signature = bit_string_bytes(contents(parts.next()?, Tag::BitString)?)?;
    let certs = match parts.next() {
        None => Vec::new(),
        Some(tagged) => {
            let explicit = contents(tagged, CERTS_TAG)?;
            elements(single(explicit, Tag::Sequence)?)?
        }
    };
    if parts.next().is_some() {
        return None;
    }
    Some(SignedParts {
        tbs,
        signature_algorithm,
        signature,
        certs,
    })
}

/// `(algorithm contents, key bytes)` of a DER SubjectPublicKeyInfo: the AlgorithmIdentifier
/// without its header (as the provider's `public_key_alg_id()`), and the subjectPublicKey
/// BIT STRING's bytes without the unused-bits octet (what RFC 6960 `issuerKeyHash` and
/// `ResponderID.byKey` hash).
pub(super) fn spki_parts(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = single(spki, Tag::Sequence)?;
    let parts = elements(body)?;
    match parts.as_slice() {
        [alg, key] => Some((
            contents(alg, Tag::Sequence)?,
            bit_string_bytes(contents(key, Tag::BitString)?)?,
        )),
        _ => None,
    }
}

/// Whether `signature` over `message` verifies with the key in `spki` (a whole
/// SubjectPublicKeyInfo) under the signature algorithm `signature_algorithm` (contents of
/// the AlgorithmIdentifier). Only algorithms the rustls provider offers are accepted.
pub(super) fn verify_signature(
    spki: &[u8],
    signature_algorithm: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Some((key_algorithm, key)) = spki_parts(spki) else {
        return false;
    };
    algorithms()
        .all
        .iter()
        .filter(|alg| {
            alg.public_key_alg_id().as_ref() == key_algorithm
                && alg.signature_alg_id().as_ref() == signature_algorithm
        })
        .any(|alg| alg.verify_signature(key, message, signature).is_ok())
}

/// The hash functions an OCSP `CertID` may name, by OID (dotted form).
pub(super) fn cert_id_digest(oid: &str) -> Option<&'static digest::Algorithm> {
    match oid {
        "1.3.14.3.2.26" => Some(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        "2.16.840.1.101.3.4.2.1" => Some(&digest::SHA256),
        "2.16.840.1.101.3.4.2.2" => Some(&digest::SHA384),
        "2.16.840.1.101.3.4.2.3" => Some(&digest::SHA512),
        _ => None,
    }
}

/// The SHA-1 digest of `data` (the hash RFC 6960 fixes for `ResponderID.byKey`).
pub(super) fn sha1(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// The contents of the one element `der` holds, which must have identifier `tag` and
/// nothing after it.
fn single(der: &[u8], tag: Tag) -> Option<&[u8]> {
    let any = AnyRef::from_der(der).ok()?;
    (any.tag() == tag).then(|| any.value())
}

/// The contents of one whole element with identifier `tag`.
fn contents(tlv: &[u8], tag: Tag) -> Option<&[u8]> {
    single(tlv, tag)
}

/// Whether `tlv` is one whole element with identifier `tag`.
fn has_tag(tlv: &[u8], tag: Tag) -> bool {
    single(tlv, tag).is_some()
}

/// The whole elements (identifier, length, contents) that `body` is made of, in order.
fn elements(body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    if body.is_empty() {
        return Some(out);
    }
    let mut reader = SliceReader::new(body).ok()?;
    while !reader.is_finished() {
        out.push(reader.tlv_bytes().ok()?);
    }
    Some(out)
}

/// The identifier of `certs`: constructed, context-specific `[0]`.
const CERTS_TAG: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber::N0,
};

/// The bytes of a BIT STRING's contents with no unused bits.
fn bit_string_bytes(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first() {
        Some((0, bytes)) => Some(bytes),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_basic_rejects_short_and_trailing_input() {
        // SEQUENCE { SEQUENCE {}, SEQUENCE {}, BIT STRING 00 }
        let minimal = [0x30, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00];
        let parts = split_basic(&minimal);
        assert!(parts.as_ref().is_some_and(|p| p.tbs == [0x30, 0x00]
            && p.signature_algorithm.is_empty()
            && p.signature.is_empty()
            && p.certs.is_empty()));
        let mut trailing = minimal.to_vec();
        trailing.push(0);
        assert!(split_basic(&trailing).is_none());
        for end in 0..minimal.len() {
            assert!(split_basic(minimal.get(..end).unwrap_or_default()).is_none());
        }
        // Unused bits in the signature are refused.
        let unused = [0x30, 0x08, 0x30, 0x00, 0x30, 0x00, 0x03, 0x02, 0x01, 0x00];
        assert!(split_basic(&unused).is_none());
    }

    #[test]
    fn spki_parts_needs_exactly_algorithm_and_key() {
        let spki = [0x30, 0x06, 0x30, 0x00, 0x03, 0x02, 0x00, 0xab];
        assert_eq!(spki_parts(&spki), Some((&[][..], &[0xab][..])));
        let extra = [0x30, 0x08, 0x30, 0x00, 0x03, 0x02, 0x00, 0xab, 0x05, 0x00];
        assert_eq!(spki_parts(&extra), None);
        assert_eq!(spki_parts(&[]), None);
    }
}
