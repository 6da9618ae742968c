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
    /// The certificate could not be sliced into its parts, or they disagree (the
    /// signature algorithm inside and outside the signed part differ).
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

/// [`verify_signed_by`] for a certificate's signature by its own key, the question
/// `SslCertificate::is_self_signed` asks (Qt's `isSelfSigned`). The provider refuses RSA
/// keys under 2048 bits and PKCS#1 signatures with SHA-1, and that refusal is no finding
/// about the signature: such a signature (Qt's own test certificates are 1024-bit RSA;
/// many long-lived roots are SHA-1 with 2048-bit keys) is checked here with aws-lc's
/// legacy PKCS#1 verification, and one it cannot check either (a key under 1024 or over
/// 8192 bits, SHA-384 under 2048 bits, SHA-224, MD5) is `UnsupportedKey`, where the names
/// decide. The verifier checks the same signatures ([`verify_link`]) and refuses their
/// keys and digests by OpenSSL's security level.
pub(crate) fn verify_self_signature(cert_der: &[u8], spki_der: &[u8]) -> SignatureCheck {
    let check = verify_signed_by(cert_der, spki_der);
    if check != SignatureCheck::Invalid {
        return check;
    }
    legacy_signature(cert_der, spki_der).unwrap_or(check)
}

/// [`verify_signed_by`] for a link of a chain being verified: a PKCS#1 RSA signature the
/// provider refuses for its key size (1,024 to 2,047 bits) or its digest (SHA-1) is
/// checked with aws-lc's legacy verification, as OpenSSL checks it. Such a key or digest
/// is refused anyway, as OpenSSL's security level refuses it ([`key_under_security_level`],
/// [`digest_under_security_level`]: `UnspecifiedError` on its certificate); the signature
/// itself is judged on its own (round 37: a good one was `CertificateSignatureFailed`, so
/// the lists of the two backends differed).
/// A signature the legacy verification cannot check either (MD5, SHA-224, a key under
/// 1,024 bits) stays the provider's refusal.
pub(crate) fn verify_link(cert_der: &[u8], issuer_spki_der: &[u8]) -> SignatureCheck {
    let check = verify_signed_by(cert_der, issuer_spki_der);
    if check != SignatureCheck::Invalid {
        return check;
    }
    match legacy_signature(cert_der, issuer_spki_der) {
        Some(legacy @ (SignatureCheck::Valid | SignatureCheck::Invalid)) => legacy,
        _ => check,
    }
}

/// The legacy checks of a signature the provider refused ([`legacy_rsa_signature`], then
/// [`legacy_ecdsa_sha1_signature`]); `None` when neither applies, `UnsupportedKey` when one
/// applies and cannot check it. One place for both callers: the chain's links
/// ([`verify_link`]) and `is_self_signed` ([`verify_self_signature`]).
fn legacy_signature(cert_der: &[u8], spki_der: &[u8]) -> Option<SignatureCheck> {
    legacy_rsa_signature(cert_der, spki_der)
        .or_else(|| legacy_ecdsa_sha1_signature(cert_der, spki_der))
}

/// The check of an ecdsa-with-SHA1 signature (which the provider refuses: no SHA-1) by a
/// P-256 or P-521 key, with aws-lc's verification, as OpenSSL checks it (its security
/// level refuses the digest: [`digest_under_security_level`]). `None` for any other
/// signature or key (round 37, L5: a good one was `CertificateSignatureFailed` on rustls).
fn legacy_ecdsa_sha1_signature(cert_der: &[u8], spki_der: &[u8]) -> Option<SignatureCheck> {
    use aws_lc_rs::signature as legacy;
    /// ecdsa-with-SHA1 (no parameters), id-ecPublicKey, and the named curves P-256, P-521.
    const ECDSA_WITH_SHA1: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
    let (tbs, sig_alg, signature) = split_signed(cert_der)?;
    if sig_alg != ECDSA_WITH_SHA1 {
        return None;
    }
    let (key_alg, key) = split_spki(spki_der)?;
    let algorithm: &'static legacy::EcdsaVerificationAlgorithm =
        match key_alg.strip_prefix(EC_PUBLIC_KEY)? {
            P256 => &legacy::ECDSA_P256_SHA1_ASN1,
            P521 => &legacy::ECDSA_P521_SHA1_ASN1,
            _ => return None,
        };
    let verified = legacy::UnparsedPublicKey::new(algorithm, key).verify(tbs, signature);
    Some(if verified.is_ok() {
        SignatureCheck::Valid
    } else {
        SignatureCheck::Invalid
    })
}

/// OpenSSL's security level 2 (112 bits: its default level on the builds we test, and the
/// provider's floor here) for a key: an RSA key under 2,048 bits (rsaEncryption, with or
/// without its NULL parameters, or an RSASSA-PSS key), a DSA key whose prime has under
/// 2,048 bits, or an EC key on a named curve of under 224 bits is too weak
/// (`X509_V_ERR_EE_KEY_TOO_SMALL` on a leaf, `X509_V_ERR_CA_KEY_TOO_SMALL` on a CA).
/// Round 37 (L5): only rsaEncryption keys were read, so a 1,024-bit RSA-PSS, DSA or
/// P-192 leaf verified with no error where OpenSSL lists one.
pub(crate) fn key_under_security_level(spki_der: &[u8]) -> bool {
    use x509_parser::public_key::RSAPublicKey;
    /// rsaEncryption, id-RSASSA-PSS, id-dsa, id-ecPublicKey (DER of the OIDs).
    const RSA_ENCRYPTION: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    const RSASSA_PSS: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
    ];
    const DSA: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let Some((key_alg, key)) = split_spki(spki_der) else {
        return false;
    };
    // Round 37 (L7): OpenSSL's check_key_level holds that "unsupported or malformed keys
    // are not secure": an RSA key that does not read, a DSA key without readable
    // parameters, an EC key with explicit (or no) curve parameters is listed as too weak
    // (with explicit parameters OpenSSL lists `X509_V_ERR_EC_KEY_EXPLICIT_PARAMS`; Qt's
    // `UnspecifiedError` both), never passed in silence (fail closed). OpenSSL reads an
    // rsaEncryption key whatever its parameters.
    if key_alg.starts_with(RSA_ENCRYPTION) || key_alg.starts_with(RSASSA_PSS) {
        return RSAPublicKey::from_der(key)
            .ok()
            .is_none_or(|(_, public)| modulus_bits(public.modulus) < 2048);
    }
    if let Some(parameters) = key_alg.strip_prefix(DSA) {
        // Dss-Parms ::= SEQUENCE { p INTEGER, q INTEGER, g INTEGER }: the size of p.
        let p = tagged(parameters, SEQUENCE)
            .and_then(|(_, parms)| tagged(parms.data, INTEGER))
            .map(|(_, p)| modulus_bits(p.data));
        return p.is_none_or(|bits| bits < 2048);
    }
    if let Some(curve) = key_alg.strip_prefix(EC_PUBLIC_KEY) {
        return curve.first() != Some(&0x06) || weak_named_curve(curve);
    }
    false
}

/// Whether `curve` (the DER of a named curve's OID) is not one of the curves of 224 bits
/// and more OpenSSL knows: a key on a shorter one is under 112 bits of security
/// (OpenSSL's level 2), and one on a curve OpenSSL does not know does not decode there,
/// which it counts as not secure. A list of the curves taken, so that an unknown one fails
/// closed (round 37, L8: a list of the weak ones let the WTLS curves and unknown OIDs pass
/// in silence).
fn weak_named_curve(curve: &[u8]) -> bool {
    /// 1.2.840.10045.3.1: prime239v1..v3 (arcs 4 to 6), prime256v1 (7).
    const X962_PRIME: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01];
    /// 1.2.840.10045.3.0: c2tnb239v1..v3 (11 to 13), c2pnb272w1 (16), c2pnb304w1 (17),
    /// c2tnb359v1 (18), c2pnb368w1 (19), c2tnb431r1 (20).
    const X962_TWO: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x00];
    /// 1.3.132.0 (SEC 2): sect239k1 (3), secp256k1 (10), sect283k1/r1 (16, 17), sect233k1/r1
    /// (26, 27), secp224k1/r1 (32, 33), secp384r1 (34), secp521r1 (35), sect409k1/r1 (36,
    /// 37), sect571k1/r1 (38, 39).
    const SEC2: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00];
    const SEC2_TAKEN: &[u8] = &[3, 10, 16, 17, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39];
    /// 1.3.36.3.3.2.8.1.1 (brainpool): P224r1/t1 to P512r1/t1 (arcs 5 to 14).
    const BRAINPOOL: &[u8] = &[0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01];
    /// 2.23.43.1.4 (WAP WTLS): wtls10 to wtls12 (224 and 233 bits).
    const WTLS: &[u8] = &[0x06, 0x05, 0x67, 0x2b, 0x01, 0x04];
    /// 1.2.156.10197.1.301 (SM2, 256 bits), the whole OID.
    const SM2: &[u8] = &[0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d];
    let arc = |prefix: &[u8]| match curve.strip_prefix(prefix) {
        Some([arc]) => Some(*arc),
        _ => None,
    };
    let taken = arc(X962_PRIME).is_some_and(|a| (4..=7).contains(&a))
        || arc(X962_TWO).is_some_and(|a| (11..=13).contains(&a) || (16..=20).contains(&a))
        || arc(SEC2).is_some_and(|a| SEC2_TAKEN.contains(&a))
        || arc(BRAINPOOL).is_some_and(|a| (5..=14).contains(&a))
        || arc(WTLS).is_some_and(|a| (10..=12).contains(&a))
        || curve == SM2;
    !taken
}

/// OpenSSL's security level 2 for a certificate's signature: MD2, MD5 and SHA-1 digests
/// are too weak (`X509_V_ERR_CA_MD_TOO_WEAK`, on the certificate so signed).
pub(crate) fn digest_under_security_level(cert_der: &[u8]) -> bool {
    const WEAK: &[&[u8]] = &[
        // md2WithRSAEncryption, md5WithRSAEncryption, sha1WithRSAEncryption
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x02,
        ],
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04,
        ],
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05,
        ],
        // sha1WithRSASignature (OIW), ecdsa-with-SHA1, dsa-with-sha1
        &[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1d],
        &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01],
        &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03],
    ];
    split_signed(cert_der).is_some_and(|(_, sig_alg, _)| {
        WEAK.iter().any(|oid| {
            sig_alg
                .strip_prefix(*oid)
                .is_some_and(|parameters| parameters.is_empty() || parameters == [0x05, 0x00])
        })
    })
}

/// The size in bits of an RSA modulus (its leading zero bytes skipped).
fn modulus_bits(modulus: &[u8]) -> usize {
    let modulus = match modulus.iter().position(|&b| b != 0) {
        Some(first) => modulus.get(first..).unwrap_or_default(),
        None => return 0,
    };
    let top = modulus
        .first()
        .map_or(0, |b| 8 - b.leading_zeros() as usize);
    (modulus.len().saturating_sub(1)) * 8 + top
}

/// The check of a PKCS#1 RSA signature the provider refuses for its key size or digest;
/// `None` when the provider's refusal stands (another key algorithm, or a key and digest
/// the provider checks: 2048 to 8192 bits with SHA-256, SHA-384 or SHA-512).
fn legacy_rsa_signature(cert_der: &[u8], spki_der: &[u8]) -> Option<SignatureCheck> {
    use aws_lc_rs::signature as legacy;
    use x509_parser::public_key::RSAPublicKey;
    /// rsaEncryption with its NULL parameters (the contents of the AlgorithmIdentifier).
    const RSA_ENCRYPTION: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    /// The OID 1.2.840.113549.1.1 (PKCS#1) as DER, without its last arc.
    const PKCS1: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    let (tbs, sig_alg, signature) = split_signed(cert_der)?;
    let (key_alg, key) = split_spki(spki_der)?;
    if key_alg != RSA_ENCRYPTION {
        return None;
    }
    let (_, public) = RSAPublicKey::from_der(key).ok()?;
    let bits = modulus_bits(public.modulus);
    if !(1024..=8192).contains(&bits) {
        return Some(SignatureCheck::UnsupportedKey);
    }
    let provider_checks = bits >= 2048;
    let (arc, parameters) = match sig_alg.strip_prefix(PKCS1).and_then(|r| r.split_first()) {
        Some((arc, parameters)) => (*arc, parameters),
        None => return Some(SignatureCheck::Invalid),
    };
    if !(parameters.is_empty() || parameters == [0x05, 0x00]) {
        return Some(SignatureCheck::Invalid);
    }
    let algorithm: &'static legacy::RsaParameters = match arc {
        0x05 => &legacy::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        // The provider's verdict on a key it takes.
        0x0b..=0x0d if provider_checks => return None,
        0x0b => &legacy::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        0x0d => &legacy::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        // sha384WithRSAEncryption under 2048 bits, sha224WithRSAEncryption,
        // md5WithRSAEncryption: no verifier at all.
        0x0c | 0x0e | 0x04 => return Some(SignatureCheck::UnsupportedKey),
        _ => return Some(SignatureCheck::Invalid),
    };
    let verified = legacy::UnparsedPublicKey::new(algorithm, key).verify(tbs, signature);
    Some(if verified.is_ok() {
        SignatureCheck::Valid
    } else {
        SignatureCheck::Invalid
    })
}

/// Whether the private key `key` is the one of the public key in `spki_der` (a whole
/// SubjectPublicKeyInfo), by a signature it makes and that key verifies: a semantic
/// comparison, as OpenSSL's `EVP_PKEY_eq` (an EC point may be encoded compressed in one
/// and not in the other). `None` when the key cannot sign with any scheme we verify.
pub(crate) fn key_matches_spki(
    key: &dyn rustls::sign::SigningKey,
    spki_der: &[u8],
) -> Option<bool> {
    use rustls::SignatureScheme as S;
    let Some((key_alg, public)) = split_spki(spki_der) else {
        return Some(false);
    };
    let signer = key.choose_scheme(&[
        S::ECDSA_NISTP256_SHA256,
        S::ECDSA_NISTP384_SHA384,
        S::ECDSA_NISTP521_SHA512,
        S::ED25519,
        S::RSA_PSS_SHA256,
        S::RSA_PKCS1_SHA256,
    ])?;
    const MESSAGE: &[u8] = b"sslsocket: is this the key of that certificate?";
    let signature = signer.sign(MESSAGE).ok()?;
    let verifiers = algorithms()
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == signer.scheme())
        .map(|(_, verifiers)| *verifiers)?;
    let mut usable = verifiers
        .iter()
        .filter(|alg| alg.public_key_alg_id().as_ref() == key_alg)
        .peekable();
    if usable.peek().is_none() {
        // No verifier of the key's scheme reads this public key's algorithm identifier.
        // An EC public key with explicit curve parameters (a SEQUENCE where a named
        // curve's OID would be) for an EC private key is undecidable here; any other
        // pairing (another key type, another named curve) is another key.
        /// The DER of the id-ecPublicKey OID, which starts an EC key's identifier.
        const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let ecdsa = matches!(
            signer.scheme(),
            S::ECDSA_NISTP256_SHA256 | S::ECDSA_NISTP384_SHA384 | S::ECDSA_NISTP521_SHA512
        );
        let explicit = key_alg
            .strip_prefix(EC_PUBLIC_KEY)
            .is_some_and(|parameters| parameters.first() == Some(&0x30));
        if !(ecdsa && explicit) {
            return Some(false);
        }
        // Explicit parameters: the same key has the same point. Compared as sent when both
        // points are uncompressed (as OpenSSL writes them); undecidable otherwise.
        let own = key.public_key()?;
        let (_, own_point) = split_spki(own.as_ref())?;
        return match (own_point.first(), public.first()) {
            (Some(0x04), Some(0x04)) => Some(own_point == public),
            _ => None,
        };
    }
    Some(usable.any(|alg| alg.verify_signature(public, MESSAGE, &signature).is_ok()))
}

/// `(tbs with its header, signatureAlgorithm contents, signature bits)` of a certificate.
///
/// The envelope around the signed part is not covered by the signature, so it is held to
/// DER here (x509-parser tolerates some BER): a constructed SEQUENCE of SEQUENCE, SEQUENCE
/// and BIT STRING with nothing after, and the signature algorithm inside the signed part
/// equal to the outer one (RFC 5280 4.1.1.2; OpenSSL's `X509_verify` checks the same).
fn split_signed(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (rest, outer) = tagged(der, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let body = outer.data;
    let (rest, tbs) = tagged(body, SEQUENCE)?;
    let tbs_raw = body.get(..body.len().checked_sub(rest.len())?)?;
    let (rest, alg) = tagged(rest, SEQUENCE)?;
    let (rest, bits) = tagged(rest, BIT_STRING)?;
    if !rest.is_empty() || inner_signature_algorithm(tbs.data)? != alg.data {
        return None;
    }
    let signature = bit_string_bytes(bits.data)?;
    Some((tbs_raw, alg.data, signature))
}

/// The contents of the `signature` AlgorithmIdentifier of a TBSCertificate's contents
/// (after the optional `[0]` version and the serial number).
fn inner_signature_algorithm(tbs: &[u8]) -> Option<&[u8]> {
    let (mut rest, _) = Any::from_der(tbs).ok()?;
    if tbs.first() == Some(&VERSION) {
        rest = Any::from_der(rest).ok()?.0;
    }
    Some(tagged(rest, SEQUENCE)?.1.data)
}

/// Identifier octets: SEQUENCE (constructed), BIT STRING, INTEGER, `[0]` (constructed).
const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;

/// One element that must start with the identifier octet `tag`.
fn tagged(der: &[u8], tag: u8) -> Option<(&[u8], Any<'_>)> {
    if der.first() != Some(&tag) {
        return None;
    }
    Any::from_der(der).ok()
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

#[cfg(test)]
mod curve_tests {
    use super::key_under_security_level;

    /// An id-ecPublicKey SPKI on the curve `oid` (its DER), with a placeholder point.
    fn ec_spki(oid: &[u8]) -> Vec<u8> {
        let mut alg = vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        alg.extend_from_slice(oid);
        let mut inner = vec![0x30, u8::try_from(alg.len()).unwrap_or(0)];
        inner.extend_from_slice(&alg);
        inner.extend_from_slice(&[0x03, 0x03, 0x00, 0x04, 0x00]);
        let mut spki = vec![0x30, u8::try_from(inner.len()).unwrap_or(0)];
        spki.extend_from_slice(&inner);
        spki
    }

    // Round 37 (L8): a curve nobody knows fails closed, as OpenSSL cannot decode the key.
    #[test]
    fn only_known_curves_of_224_bits_and_more_are_taken() {
        let prime256v1 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let prime192v1 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01];
        let unknown = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x0b];
        let secp384r1 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        let wtls1 = [0x06, 0x05, 0x67, 0x2b, 0x01, 0x04, 0x01];
        let wtls12 = [0x06, 0x05, 0x67, 0x2b, 0x01, 0x04, 0x0c];
        assert!(!key_under_security_level(&ec_spki(&prime256v1)));
        assert!(!key_under_security_level(&ec_spki(&secp384r1)));
        assert!(key_under_security_level(&ec_spki(&prime192v1)));
        assert!(key_under_security_level(&ec_spki(&unknown)));
        assert!(key_under_security_level(&ec_spki(&wtls1)));
        assert!(!key_under_security_level(&ec_spki(&wtls12)));
    }
}
