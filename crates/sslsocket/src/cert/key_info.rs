//! What a key is: its algorithm and size in bits, read from the DER structures that hold it
//! (PKCS#8, PKCS#1, SEC1, SubjectPublicKeyInfo).
//!
//! Every function here parses the whole structure with the RustCrypto `der` decoders, so a
//! value that gets past them is well-formed; each decoder runs in time linear in its input.

use pkcs8::der::asn1::{ObjectIdentifier, UintRef};
use pkcs8::der::Encode;
use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use zeroize::Zeroizing;

use crate::cert::key::KeyAlgorithm;
use crate::error::ConfigError;

/// `rsaEncryption`.
pub(crate) const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-RSASSA-PSS`.
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// `id-ecPublicKey`.
pub(crate) const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `id-Ed25519`.
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-Ed448`.
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
/// `id-X25519`.
const OID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
/// `id-X448`.
const OID_X448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.111");
/// `id-dsa`, `dhKeyAgreement` (PKCS#3) and `dhpublicnumber` (X9.42): keys OpenSSL reads
/// (Qt's `QSsl::Dsa`, `QSsl::Dh`) and this library only carries, as `Opaque`.
const CARRIED: [ObjectIdentifier; 3] = [
    ObjectIdentifier::new_unwrap("1.2.840.10040.4.1"),
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.3.1"),
    ObjectIdentifier::new_unwrap("1.2.840.10046.2.1"),
];

/// A key's algorithm and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyInfo {
    pub(crate) algorithm: KeyAlgorithm,
    /// Size in bits as OpenSSL reports it; 0 when unknown.
    pub(crate) bits: u32,
}

/// A PKCS#8 `PrivateKeyInfo` (or v2 `OneAsymmetricKey`).
pub(crate) fn pkcs8_info(der: &[u8]) -> Result<KeyInfo, ConfigError> {
    let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| {
        ConfigError::malformed(format!("private key: malformed PKCS#8 structure ({e})"))
    })?;
    let oid = info.algorithm.oid;
    if oid == OID_RSA || oid == OID_RSA_PSS {
        return pkcs1_private_info(info.private_key);
    }
    if oid == OID_EC {
        // The curve is named by the PKCS#8 algorithm parameters; the inner SEC1 structure
        // may repeat it or leave it out.
        let inner = sec1::EcPrivateKey::try_from(info.private_key).map_err(|e| {
            ConfigError::malformed(format!("private key: malformed EC key in PKCS#8 ({e})"))
        })?;
        let curve = info
            .algorithm
            .parameters_oid()
            .ok()
            .or_else(|| inner.parameters.and_then(|p| p.named_curve()));
        if curve.is_none() && info.algorithm.parameters.is_some() {
            // Explicit curve parameters (SpecifiedECDomain), which OpenSSL reads: carried,
            // its size unknown here.
            return Ok(KeyInfo {
                algorithm: KeyAlgorithm::Ec,
                bits: 0,
            });
        }
        return Ok(KeyInfo {
            algorithm: KeyAlgorithm::Ec,
            bits: known_curve_bits(curve, "private key")?,
        });
    }
    if CARRIED.contains(&oid) {
        return Ok(carried(oid, info.algorithm.parameters));
    }
    // The other keys we know are an OCTET STRING of a fixed length inside the PKCS#8
    // privateKey OCTET STRING (RFC 8410: `CurvePrivateKey`); anything else is not one.
    let length = raw_key_length(oid).ok_or_else(|| unknown_algorithm(oid, "private key"))?;
    let mut expected = vec![0x04, u8::try_from(length).unwrap_or(0)];
    expected.resize(2 + length, 0);
    if info.private_key.len() != expected.len() || info.private_key.get(..2) != expected.get(..2) {
        return Err(ConfigError::malformed(format!(
            "private key: malformed {} key (not a {length}-byte key)",
            algorithm_name(oid)
        )));
    }
    Ok(other_algorithm(oid))
}

/// The length of the raw keys of the algorithms known by OID alone (RFC 8410), private
/// and public alike; `None` for any other algorithm.
fn raw_key_length(oid: ObjectIdentifier) -> Option<usize> {
    match oid {
        _ if oid == OID_ED25519 || oid == OID_X25519 => Some(32),
        _ if oid == OID_ED448 => Some(57),
        _ if oid == OID_X448 => Some(56),
        _ => None,
    }
}

/// The name of an algorithm of [`raw_key_length`].
fn algorithm_name(oid: ObjectIdentifier) -> &'static str {
    match oid {
        _ if oid == OID_ED25519 => "Ed25519",
        _ if oid == OID_X25519 => "X25519",
        _ if oid == OID_ED448 => "Ed448",
        _ => "X448",
    }
}

/// A key of an algorithm we do not know: refused (OpenSSL refuses what it cannot decode).
fn unknown_algorithm(oid: ObjectIdentifier, what: &str) -> ConfigError {
    ConfigError::unsupported(format!("{what}: unknown key algorithm {oid}"))
}

/// The bits of `curve`, which must be one we know (OpenSSL refuses an EC key on an unknown
/// curve, or naming none).
fn known_curve_bits(curve: Option<ObjectIdentifier>, what: &str) -> Result<u32, ConfigError> {
    match curve.map(|c| (c, curve_bits(c))) {
        Some((_, bits)) if bits > 0 => Ok(bits),
        Some((curve, _)) => Err(ConfigError::unsupported(format!(
            "{what}: EC key on an unknown curve {curve}"
        ))),
        None => Err(ConfigError::malformed(format!(
            "{what}: EC key that names no curve"
        ))),
    }
}

/// A PKCS#1 `RSAPrivateKey`.
pub(crate) fn pkcs1_private_info(der: &[u8]) -> Result<KeyInfo, ConfigError> {
    let key = pkcs1::RsaPrivateKey::try_from(der)
        .map_err(|e| ConfigError::malformed(format!("private key: malformed RSA key ({e})")))?;
    Ok(KeyInfo {
        algorithm: KeyAlgorithm::Rsa,
        bits: uint_bits(key.modulus),
    })
}

/// A SEC1 `ECPrivateKey`; its curve, when the structure names it. Explicit curve
/// parameters (a `SpecifiedECDomain`, which the `sec1` crate does not read) are carried as
/// in PKCS#8 and as OpenSSL reads them, size unknown (round 34: refused in this form only).
pub(crate) fn sec1_info(der: &[u8]) -> Result<(KeyInfo, Option<ObjectIdentifier>), ConfigError> {
    let key = match sec1::EcPrivateKey::try_from(der) {
        Ok(key) => key,
        Err(_) if sec1_with_explicit_curve(der) => {
            return Ok((
                KeyInfo {
                    algorithm: KeyAlgorithm::Ec,
                    bits: 0,
                },
                None,
            ));
        }
        Err(e) => {
            return Err(ConfigError::malformed(format!(
                "private key: malformed EC key ({e})"
            )))
        }
    };
    let curve = key.parameters.and_then(|p| p.named_curve());
    let info = KeyInfo {
        algorithm: KeyAlgorithm::Ec,
        bits: known_curve_bits(curve, "private key")?,
    };
    Ok((info, curve))
}

/// Whether `der` is a whole SEC1 `ECPrivateKey` (version 1) whose `[0]` parameters are a
/// SEQUENCE: explicit curve parameters.
pub(crate) fn sec1_with_explicit_curve(der: &[u8]) -> bool {
    explicit_sec1_parameters(der).is_some()
}

/// The explicit curve parameters (a SEQUENCE, whole DER) of a SEC1 `ECPrivateKey`, if it
/// has them.
pub(crate) fn explicit_sec1_parameters(der: &[u8]) -> Option<Vec<u8>> {
    use pkcs8::der::asn1::{AnyRef, BitStringRef, ContextSpecific, OctetStringRef};
    use pkcs8::der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
    let mut reader = SliceReader::new(der).ok()?;
    let parameters = reader
        .sequence(|r| {
            let version = u8::decode(r)?;
            let _key = OctetStringRef::decode(r)?;
            let parameters = ContextSpecific::<AnyRef<'_>>::decode_explicit(r, TagNumber::N0)?;
            let _public = ContextSpecific::<BitStringRef<'_>>::decode_explicit(r, TagNumber::N1)?;
            Ok((version, parameters.map(|p| p.value)))
        })
        .ok()?;
    reader.finish(()).ok()?;
    match parameters {
        (1, Some(parameters)) if parameters.tag() == Tag::Sequence => parameters.to_der().ok(),
        _ => None,
    }
}

/// A SEC1 `ECPrivateKey` without its `[0]` parameters, kept with its `[1]` public key:
/// the inner key of the PKCS#8 form, whose algorithm identifier names the curve (as
/// OpenSSL writes it; round 35: with explicit parameters inside, our own reader refused
/// what we wrote). `None` when `der` is no such key.
pub(crate) fn sec1_without_parameters(der: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (key, public_key) = sec1_parts(der)?;
    let inner = sec1::EcPrivateKey {
        private_key: key,
        parameters: None,
        public_key,
    };
    inner.to_der().ok().map(Zeroizing::new)
}

/// A SEC1 `ECPrivateKey`'s private scalar and public key (if present), whatever its
/// parameters (named or explicit); `None` when `der` is no version-1 such key.
pub(crate) fn sec1_parts(der: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    use pkcs8::der::asn1::{AnyRef, BitStringRef, ContextSpecific, OctetStringRef};
    use pkcs8::der::{Decode, Reader, SliceReader, TagNumber};
    let mut reader = SliceReader::new(der).ok()?;
    let (version, key, public) = reader
        .sequence(|r| {
            let version = u8::decode(r)?;
            let key = OctetStringRef::decode(r)?;
            let _parameters = ContextSpecific::<AnyRef<'_>>::decode_explicit(r, TagNumber::N0)?;
            let public = ContextSpecific::<BitStringRef<'_>>::decode_explicit(r, TagNumber::N1)?;
            Ok((version, key, public.map(|p| p.value)))
        })
        .ok()?;
    reader.finish(()).ok()?;
    if version != 1 {
        return None;
    }
    let public_key = match public {
        Some(bits) => Some(bits.as_bytes()?),
        None => None,
    };
    Some((key.as_bytes(), public_key))
}

/// A `SubjectPublicKeyInfo`.
pub(crate) fn spki_info(der: &[u8]) -> Result<KeyInfo, ConfigError> {
    let spki = SubjectPublicKeyInfoRef::try_from(der).map_err(|e| {
        ConfigError::malformed(format!("public key: malformed SubjectPublicKeyInfo ({e})"))
    })?;
    let oid = spki.algorithm.oid;
    if oid == OID_RSA || oid == OID_RSA_PSS {
        let bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| ConfigError::malformed("public key: RSA key is not whole bytes"))?;
        let key = pkcs1::RsaPublicKey::try_from(bytes)
            .map_err(|e| ConfigError::malformed(format!("public key: malformed RSA key ({e})")))?;
        return Ok(KeyInfo {
            algorithm: KeyAlgorithm::Rsa,
            bits: uint_bits(key.modulus),
        });
    }
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| ConfigError::malformed("public key: the key is not whole bytes"))?;
    if CARRIED.contains(&oid) {
        return Ok(carried(oid, spki.algorithm.parameters));
    }
    if oid == OID_EC {
        let curve = spki.algorithm.parameters_oid().ok();
        if curve.is_none() && spki.algorithm.parameters.is_some() {
            // Explicit curve parameters, which OpenSSL reads: carried, size unknown here.
            return Ok(KeyInfo {
                algorithm: KeyAlgorithm::Ec,
                bits: 0,
            });
        }
        let bits = known_curve_bits(curve, "public key")?;
        // SEC1 2.3.3: an uncompressed point (04 X Y) or a compressed one (02/03 X), each
        // coordinate as wide as the curve.
        let width = usize::try_from(bits.div_ceil(8)).unwrap_or(0);
        let well_formed = match point.first() {
            Some(0x04) => point.len() == 1 + 2 * width,
            Some(0x02 | 0x03) => point.len() == 1 + width,
            _ => false,
        };
        if !well_formed {
            return Err(ConfigError::malformed(
                "public key: malformed EC point (not a point encoding of the curve's size)",
            ));
        }
        return Ok(KeyInfo {
            algorithm: KeyAlgorithm::Ec,
            bits,
        });
    }
    let length = raw_key_length(oid).ok_or_else(|| unknown_algorithm(oid, "public key"))?;
    if point.len() != length {
        return Err(ConfigError::malformed(format!(
            "public key: malformed {} key (not {length} bytes)",
            algorithm_name(oid)
        )));
    }
    Ok(other_algorithm(oid))
}

/// Wraps a PKCS#1 `RSAPublicKey` (PEM `RSA PUBLIC KEY`) into a `SubjectPublicKeyInfo`.
pub(crate) fn spki_from_pkcs1_public(der: &[u8]) -> Result<Vec<u8>, ConfigError> {
    pkcs1::RsaPublicKey::try_from(der)
        .map_err(|e| ConfigError::malformed(format!("public key: malformed RSA key ({e})")))?;
    let spki = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: OID_RSA,
            parameters: Some(pkcs8::der::asn1::AnyRef::NULL),
        },
        subject_public_key: pkcs8::der::asn1::BitStringRef::from_bytes(der)
            .map_err(|e| ConfigError::malformed(format!("public key: {e}")))?,
    };
    spki.to_der()
        .map_err(|e| ConfigError::malformed(format!("public key: {e}")))
}

/// Bits of a named curve, as OpenSSL counts them.
pub(crate) fn curve_bits(curve: ObjectIdentifier) -> u32 {
    match curve.to_string().as_str() {
        "1.2.840.10045.3.1.7" | "1.3.132.0.10" | "1.3.36.3.3.2.8.1.1.7" => 256,
        "1.3.132.0.34" | "1.3.36.3.3.2.8.1.1.11" => 384,
        "1.3.132.0.35" => 521,
        "1.2.840.10045.3.1.1" => 192,
        "1.3.132.0.33" => 224,
        "1.3.36.3.3.2.8.1.1.13" => 512,
        _ => 0,
    }
}

/// OpenSSL's short name of a named curve, for text dumps.
pub(crate) fn curve_name(curve: &str) -> Option<&'static str> {
    Some(match curve {
        "1.2.840.10045.3.1.7" => "prime256v1",
        "1.3.132.0.34" => "secp384r1",
        "1.3.132.0.35" => "secp521r1",
        "1.3.132.0.10" => "secp256k1",
        "1.2.840.10045.3.1.1" => "prime192v1",
        "1.3.132.0.33" => "secp224r1",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        _ => return None,
    })
}

/// A DSA or DH key (`CARRIED`): `Opaque`, its size that of its prime p, the first INTEGER
/// of its parameters (DSA's p, q, g; PKCS#3's p, g; X9.42's p, g, q), as OpenSSL and Qt's
/// `length()` report it (round 37: it was 0); 0 when the parameters do not read so.
fn carried(oid: ObjectIdentifier, parameters: Option<pkcs8::der::asn1::AnyRef<'_>>) -> KeyInfo {
    use pkcs8::der::{Decode, SliceReader, Tag, Tagged};
    let bits = parameters
        .filter(|p| p.tag() == Tag::Sequence)
        .and_then(|p| {
            let mut reader = SliceReader::new(p.value()).ok()?;
            UintRef::decode(&mut reader).ok().map(uint_bits)
        })
        .unwrap_or(0);
    KeyInfo {
        bits,
        ..other_algorithm(oid)
    }
}

/// Keys this library does not use itself: Ed25519 by name, the rest as `Opaque`, with the
/// sizes OpenSSL prints for them.
fn other_algorithm(oid: ObjectIdentifier) -> KeyInfo {
    let (algorithm, bits) = if oid == OID_ED25519 {
        (KeyAlgorithm::Ed25519, 256)
    } else if oid == OID_ED448 {
        (KeyAlgorithm::Opaque, 456)
    } else if oid == OID_X25519 {
        (KeyAlgorithm::Opaque, 253)
    } else if oid == OID_X448 {
        (KeyAlgorithm::Opaque, 448)
    } else {
        (KeyAlgorithm::Opaque, 0)
    };
    KeyInfo { algorithm, bits }
}

/// Significant bits of an unsigned DER integer.
fn uint_bits(value: UintRef<'_>) -> u32 {
    let bytes = value.as_bytes();
    match bytes.first() {
        None => 0,
        Some(first) => {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX / 8);
            len.saturating_mul(8).saturating_sub(first.leading_zeros())
        }
    }
}
