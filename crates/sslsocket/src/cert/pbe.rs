//! Password-based decryption of key containers: PBES2 (PKCS#5 v2, through `pkcs5`), the
//! PKCS#12 PBE schemes (3DES, RC2) and OpenSSL's legacy PEM encryption (`DEK-Info`).
//!
//! Only the glue is ours: key derivation, ciphers and padding come from RustCrypto crates.
//! Parameters come from a hostile file, so iteration counts and scrypt costs are capped:
//! without a cap a 200-byte file could ask for hours of work or gigabytes of memory.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, InnerIvInit, KeyInit, KeyIvInit};
use md5::{Digest, Md5};
use pkcs12::kdf::{derive_key, Pkcs12KeyType};
use pkcs12::pbe_params::Pkcs12PbeParams;
use pkcs8::der::asn1::ObjectIdentifier;
use pkcs8::der::{Decode, Encode};
use pkcs8::pkcs5::pbes2;
use pkcs8::spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

/// The most PBKDF2 or PKCS#12 KDF iterations we run (OWASP asks 600 000 for SHA-256,
/// OpenSSL writes 2 048).
pub(crate) const MAX_ITERATIONS: u32 = 2_000_000;
/// The most memory an scrypt derivation may use (128·r·(N + p) bytes: its table and its
/// buffer). OpenSSL itself refuses more than 32 MiB by default.
const MAX_SCRYPT_MEMORY: u64 = 64 * 1024 * 1024;
/// The most work an scrypt derivation may ask for (128·N·r·p).
const MAX_SCRYPT_WORK: u64 = 256 * 1024 * 1024;

/// `PBES2`.
const OID_PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
/// `pbeWithSHAAnd3-KeyTripleDES-CBC`.
const OID_P12_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
/// `pbeWithSHAAnd2-KeyTripleDES-CBC`.
const OID_P12_2DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.4");
/// `pbeWithSHAAnd128BitRC2-CBC`.
const OID_P12_RC2_128: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.5");
/// `pbewithSHAAnd40BitRC2-CBC`.
const OID_P12_RC2_40: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.6");

/// Why a decryption did not give plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PbeError {
    /// Bad padding after decryption: the passphrase is wrong (or the data corrupt).
    WrongPassphrase,
    /// A scheme or cipher we do not implement, named for the message.
    Unsupported(String),
    /// Parameters that do not parse or exceed our limits.
    Malformed(String),
}

/// A passphrase in the two encodings the schemes need: the raw bytes (PBES2, legacy PEM) and
/// PKCS#12's big-endian UTF-16 with a terminating NUL (the PKCS#12 KDF).
pub(crate) struct Passphrase {
    bytes: Zeroizing<Vec<u8>>,
    bmp: Zeroizing<Vec<u8>>,
}

impl Passphrase {
    /// Encodes `bytes`. As OpenSSL does, bytes that are not UTF-8 are taken one per
    /// character (Latin-1).
    pub(crate) fn new(bytes: &[u8]) -> Passphrase {
        let mut bmp = Zeroizing::new(Vec::with_capacity(bytes.len().saturating_mul(2) + 2));
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                for unit in text.encode_utf16() {
                    bmp.extend_from_slice(&unit.to_be_bytes());
                }
            }
            Err(_) => {
                for b in bytes {
                    bmp.extend_from_slice(&[0, *b]);
                }
            }
        }
        bmp.extend_from_slice(&[0, 0]);
        Passphrase {
            bytes: Zeroizing::new(bytes.to_vec()),
            bmp,
        }
    }

    /// The empty passphrase as OpenSSL's `NULL` password: no bytes at all, not even the
    /// terminating NUL. Some PKCS#12 writers use it for "no password".
    pub(crate) fn null() -> Passphrase {
        Passphrase {
            bytes: Zeroizing::new(Vec::new()),
            bmp: Zeroizing::new(Vec::new()),
        }
    }

    /// The PKCS#12 KDF encoding.
    pub(crate) fn bmp(&self) -> &[u8] {
        &self.bmp
    }
}

/// What decrypting under `algorithm` costs, in key-derivation iterations (an scrypt
/// derivation counts N·r·p), so a caller can cap the work of a whole file before doing any;
/// 0 for parameters that do not parse (decryption refuses them anyway).
pub(crate) fn cost(algorithm: &AlgorithmIdentifierOwned) -> u64 {
    let Some(params) = algorithm.parameters.as_ref().and_then(|p| p.to_der().ok()) else {
        return 0;
    };
    if algorithm.oid == OID_PBES2 {
        let Ok(params) = pbes2::Parameters::from_der(&params) else {
            return 0;
        };
        if let Some(p) = params.kdf.pbkdf2() {
            return u64::from(p.iteration_count);
        }
        if let Some(s) = params.kdf.scrypt() {
            return s
                .cost_parameter
                .saturating_mul(u64::from(s.block_size))
                .saturating_mul(u64::from(s.parallelization));
        }
        return 0;
    }
    match Pkcs12PbeParams::from_der(&params) {
        // Two derivations: the key and the IV.
        Ok(p) => u64::try_from(p.iterations).unwrap_or(0).saturating_mul(2),
        Err(_) => 0,
    }
}

/// Decrypts `data` encrypted under the scheme `algorithm` (PBES2 or PKCS#12 PBE).
pub(crate) fn decrypt(
    algorithm: &AlgorithmIdentifierOwned,
    data: &[u8],
    passphrase: &Passphrase,
) -> Result<Zeroizing<Vec<u8>>, PbeError> {
    let params = algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| PbeError::Malformed("encryption parameters missing".into()))?
        .to_der()
        .map_err(|e| PbeError::Malformed(e.to_string()))?;
    let oid = algorithm.oid;
    if oid == OID_PBES2 {
        let params = pbes2::Parameters::from_der(&params).map_err(|e| pbes2_refusal(&params, e))?;
        check_pbes2(&params)?;
        return params
            .decrypt(passphrase.bytes.as_slice(), data)
            .map(Zeroizing::new)
            .map_err(|e| match e {
                // pkcs5 0.7 reports bad padding as `EncryptFailed`.
                pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed => {
                    PbeError::WrongPassphrase
                }
                other => PbeError::Unsupported(format!("PBES2: {other}")),
            });
    }
    if [OID_P12_3DES, OID_P12_2DES, OID_P12_RC2_128, OID_P12_RC2_40].contains(&oid) {
        return pkcs12_pbe(oid, &params, data, passphrase);
    }
    let text = oid.to_string();
    if text.starts_with("1.2.840.113549.1.5.") {
        return Err(PbeError::Unsupported("PBES1".into()));
    }
    if text.starts_with("1.2.840.113549.1.12.1.") {
        return Err(PbeError::Unsupported(format!("PKCS#12 RC4 ({text})")));
    }
    Err(PbeError::Unsupported(text))
}

/// Why PBES2 parameters were refused: well-formed ones (two AlgorithmIdentifiers, a
/// PBKDF2 one with its own) that name a cipher or PRF we do not implement (Camellia, ARIA,
/// HMAC-SHA512/256, ...) are `Unsupported`, as OpenSSL reads them; anything else is
/// `Malformed` (round 34: all were `Malformed`).
fn pbes2_refusal(params: &[u8], error: pkcs8::der::Error) -> PbeError {
    use pkcs8::der::{Reader, SliceReader};
    let outer = SliceReader::new(params).and_then(|mut reader| {
        let pair = reader.sequence(|r| {
            let kdf = AlgorithmIdentifierOwned::decode(r)?;
            let cipher = AlgorithmIdentifierOwned::decode(r)?;
            Ok((kdf, cipher))
        })?;
        reader.finish(pair)
    });
    match outer {
        Ok((kdf, cipher)) => PbeError::Unsupported(format!(
            "PBES2 with key derivation {} and cipher {} ({error})",
            kdf.oid, cipher.oid
        )),
        Err(_) => PbeError::Malformed(format!("PBES2 parameters: {error}")),
    }
}

/// Refuses PBES2 parameters that would cost too much to try.
fn check_pbes2(params: &pbes2::Parameters<'_>) -> Result<(), PbeError> {
    if let Some(p) = params.kdf.pbkdf2() {
        if p.iteration_count == 0 || p.iteration_count > MAX_ITERATIONS {
            return Err(PbeError::Malformed(format!(
                "PBKDF2 iteration count {} outside 1..={MAX_ITERATIONS}",
                p.iteration_count
            )));
        }
    }
    if let Some(s) = params.kdf.scrypt() {
        if !scrypt_cost_ok(
            s.cost_parameter,
            u32::from(s.block_size),
            u32::from(s.parallelization),
        ) {
            return Err(PbeError::Malformed(format!(
                "scrypt cost N={} r={} p={} over the limit",
                s.cost_parameter, s.block_size, s.parallelization
            )));
        }
    }
    Ok(())
}

/// Whether scrypt with these parameters stays within our limits: memory 128·r·(N + p)
/// bytes (the N-block table and the p-block buffer), work 128·N·r·p.
fn scrypt_cost_ok(n: u64, r: u32, p: u32) -> bool {
    let (r, p) = (u64::from(r), u64::from(p));
    let memory = n
        .checked_add(p)
        .and_then(|blocks| blocks.checked_mul(r))
        .and_then(|m| m.checked_mul(128));
    let work = n
        .checked_mul(r)
        .and_then(|w| w.checked_mul(p))
        .and_then(|w| w.checked_mul(128));
    matches!((memory, work), (Some(m), Some(w)) if m <= MAX_SCRYPT_MEMORY && w <= MAX_SCRYPT_WORK)
}

/// The PKCS#12 password-based encryption of RFC 7292 appendix B and C (SHA-1 KDF).
fn pkcs12_pbe(
    oid: ObjectIdentifier,
    params: &[u8],
    data: &[u8],
    passphrase: &Passphrase,
) -> Result<Zeroizing<Vec<u8>>, PbeError> {
    let params = Pkcs12PbeParams::from_der(params)
        .map_err(|e| PbeError::Malformed(format!("PKCS#12 PBE parameters: {e}")))?;
    let rounds = checked_rounds(params.iterations)?;
    let salt = params.salt.as_bytes();
    let key_len = if oid == OID_P12_3DES {
        24
    } else if oid == OID_P12_2DES || oid == OID_P12_RC2_128 {
        16
    } else {
        5
    };
    let kdf = |id, len| {
        Zeroizing::new(derive_key::<sha1::Sha1>(
            passphrase.bmp(),
            salt,
            id,
            rounds,
            len,
        ))
    };
    let key = kdf(Pkcs12KeyType::EncryptionKey, key_len);
    let iv = kdf(Pkcs12KeyType::Iv, 8);
    let mut buf = Zeroizing::new(data.to_vec());
    let bad_key = |_| PbeError::Malformed("cipher key or IV of the wrong length".into());
    let plain_len = if oid == OID_P12_3DES {
        cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len)
    } else if oid == OID_P12_2DES {
        cbc::Decryptor::<des::TdesEde2>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len)
    } else {
        let bits = if oid == OID_P12_RC2_128 { 128 } else { 40 };
        let cipher = rc2::Rc2::new_with_eff_key_len(&key, bits);
        cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(cipher, &iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len)
    };
    let len = plain_len.map_err(|_| PbeError::WrongPassphrase)?;
    buf.truncate(len);
    Ok(buf)
}

/// An iteration count from a file, checked against our limit.
pub(crate) fn checked_rounds(iterations: i32) -> Result<i32, PbeError> {
    match u32::try_from(iterations) {
        Ok(n) if (1..=MAX_ITERATIONS).contains(&n) => Ok(iterations),
        _ => Err(PbeError::Malformed(format!(
            "iteration count {iterations} outside 1..={MAX_ITERATIONS}"
        ))),
    }
}

/// The ciphers of OpenSSL's legacy PEM encryption (`DEK-Info: <cipher>,<hex IV>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LegacyCipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
    Des,
}

/// Decrypts the body of a PEM block with `Proc-Type: 4,ENCRYPTED` and `DEK-Info`, as
/// OpenSSL's `PEM_do_header`: key = EVP_BytesToKey(MD5, passphrase, salt = IV[..8], 1
/// iteration), then CBC with PKCS#7 padding.
pub(crate) fn decrypt_legacy_pem(
    dek_info: &str,
    data: &[u8],
    passphrase: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PbeError> {
    let (name, iv_hex) = dek_info
        .split_once(',')
        .ok_or_else(|| PbeError::Malformed("DEK-Info without an IV".into()))?;
    let cipher = match name.trim().to_ascii_uppercase().as_str() {
        "AES-128-CBC" => LegacyCipher::Aes128,
        "AES-192-CBC" => LegacyCipher::Aes192,
        "AES-256-CBC" => LegacyCipher::Aes256,
        "DES-EDE3-CBC" => LegacyCipher::DesEde3,
        "DES-CBC" => LegacyCipher::Des,
        other => {
            return Err(PbeError::Unsupported(format!(
                "PEM cipher `{}`",
                crate::cert::certificate::quoted_excerpt(
                    other.as_bytes(),
                    crate::cert::certificate::EXCERPT_CHARS
                )
            )))
        }
    };
    let (key_len, iv_len) = match cipher {
        LegacyCipher::Aes128 => (16, 16),
        LegacyCipher::Aes192 => (24, 16),
        LegacyCipher::Aes256 => (32, 16),
        LegacyCipher::DesEde3 => (24, 8),
        LegacyCipher::Des => (8, 8),
    };
    let iv = unhex(iv_hex.trim())
        .filter(|iv| iv.len() == iv_len)
        .ok_or_else(|| PbeError::Malformed("DEK-Info IV is not hex of the cipher's size".into()))?;
    let salt = iv
        .get(..8)
        .ok_or_else(|| PbeError::Malformed("DEK-Info IV too short".into()))?;
    let key = evp_bytes_to_key(passphrase, salt, key_len);
    let mut buf = Zeroizing::new(data.to_vec());
    let bad_key = |_| PbeError::Malformed("cipher key or IV of the wrong length".into());
    let plain = match cipher {
        LegacyCipher::Aes128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        LegacyCipher::Aes192 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        LegacyCipher::Aes256 => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        LegacyCipher::DesEde3 => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        LegacyCipher::Des => {
            let des = des::Des::new_from_slice(&key).map_err(bad_key)?;
            cbc::Decryptor::<des::Des>::inner_iv_slice_init(des, &iv)
                .map_err(bad_key)?
                .decrypt_padded_mut::<Pkcs7>(&mut buf)
                .map(<[u8]>::len)
        }
    };
    let len = plain.map_err(|_| PbeError::WrongPassphrase)?;
    buf.truncate(len);
    Ok(buf)
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration:
/// D_i = MD5(D_{i-1} || passphrase || salt), key = D_1 || D_2 || ... cut to `len`.
fn evp_bytes_to_key(passphrase: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut previous: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    while key.len() < len {
        let mut md5 = Md5::new();
        md5.update(previous.as_slice());
        md5.update(passphrase);
        md5.update(salt);
        let block = Zeroizing::new(md5.finalize().to_vec());
        key.extend_from_slice(&block);
        previous = block;
    }
    key.truncate(len);
    key
}

/// Bytes from hex text; `None` when it is not hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| {
            let hi = (pair.first().copied()? as char).to_digit(16)?;
            let lo = (pair.get(1).copied()? as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evp_bytes_to_key_matches_openssl_enc() {
        // `openssl enc -aes-256-cbc -P -md md5 -S 0102030405060708 -pass pass:x` prints this
        // key and IV: EVP_BytesToKey's first 48 bytes.
        let expected = "DF39DED3E3F345CEBB53BF088AAC6D3E3056C591D7268AA6DCBCB8CE622B9155\
                        E5326982A201989A05B46BE8792CFE3E";
        let derived = evp_bytes_to_key(b"x", &[1, 2, 3, 4, 5, 6, 7, 8], 48);
        assert_eq!(unhex(expected).as_deref(), Some(derived.as_slice()));
    }

    #[test]
    fn hostile_iteration_counts_are_refused() {
        assert!(scrypt_cost_ok(16384, 8, 1));
        // Tiny table, 64 MiB of buffer: the buffer counts too.
        assert!(!scrypt_cost_ok(2, 8, 65535));
        assert!(!scrypt_cost_ok(u64::MAX, u32::MAX, u32::MAX));
        assert!(checked_rounds(0).is_err());
        assert!(checked_rounds(-5).is_err());
        assert!(checked_rounds(i32::MAX).is_err());
        assert_eq!(checked_rounds(2048), Ok(2048));
    }

    #[test]
    fn unhex_reads_hex_and_refuses_the_rest() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
