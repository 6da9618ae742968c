//! PKCS#12 (`.p12`, `.pfx`) import (Qt's `QSslCertificate::importPkcs12`).
//!
//! The structures and the PKCS#12 key derivation come from RustCrypto's `pkcs12` and `cms`
//! crates, the decryption from [`crate::cert::pbe`]; what is here is the walk through the
//! file: check the MAC, decrypt each content, collect the key and certificate bags.

use std::path::Path;

use cms::content_info::ContentInfo;
use cms::encrypted_data::EncryptedData;
use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::{Digest, FixedOutputReset};
use hmac::{Mac, SimpleHmac};
use pkcs12::cert_type::CertBag;
use pkcs12::kdf::{derive_key, Pkcs12KeyType};
use pkcs12::mac_data::MacData;
use pkcs12::pbe_params::EncryptedPrivateKeyInfo;
use pkcs12::pfx::Pfx;
use pkcs12::safe_bag::SafeBag;
use pkcs8::der::asn1::{ContextSpecific, ObjectIdentifier, OctetString};
use pkcs8::der::{Any, Decode, Encode};
use zeroize::Zeroizing;

use crate::cert::certificate::{read_limited, SslCertificate};
use crate::cert::key::SslKey;
use crate::cert::pbe::{self, checked_rounds, Passphrase, PbeError};
use crate::error::{ConfigError, ConfigErrorKind};

/// The largest PKCS#12 file [`import_pkcs12_file`] reads.
const MAX_PKCS12_FILE: u64 = 16 * 1024 * 1024;
/// How deep `safeContentsBag`s may nest.
const MAX_NESTING: usize = 4;

const WRONG_PASSPHRASE: &str = "PKCS#12: wrong passphrase or corrupt file";
/// The most bags one bundle may hold (a real one holds a key and a few certificates).
const MAX_BAGS: usize = 1024;
/// The most key-derivation iterations one import may run in all (MAC checks and every
/// decryption together): each operation is capped on its own (`pbe::MAX_ITERATIONS`), but
/// a file of many encrypted parts could otherwise cost hours.
const MAX_TOTAL_WORK: u64 = 10_000_000;

const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const OID_X509_CERT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const OID_LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");

/// What a PKCS#12 bundle holds: a private key, its certificate, and the other certificates
/// (the CA chain), as Qt's `importPkcs12` fills its three out-parameters.
#[derive(Clone, Debug)]
pub struct Pkcs12Bundle {
    key: SslKey,
    certificate: SslCertificate,
    ca_certificates: Vec<SslCertificate>,
}

impl Pkcs12Bundle {
    /// The private key.
    pub fn key(&self) -> &SslKey {
        &self.key
    }

    /// The key's certificate.
    pub fn certificate(&self) -> &SslCertificate {
        &self.certificate
    }

    /// The other certificates, in bundle order.
    pub fn ca_certificates(&self) -> &[SslCertificate] {
        &self.ca_certificates
    }

    /// The three parts: key, certificate, CA certificates.
    pub fn into_parts(self) -> (SslKey, SslCertificate, Vec<SslCertificate>) {
        (self.key, self.certificate, self.ca_certificates)
    }
}

/// Reads a PKCS#12 bundle (Qt's `QSslCertificate::importPkcs12`).
///
/// Reads what OpenSSL 3 writes by default (PBES2: PBKDF2 with HMAC-SHA-256 and AES-256-CBC,
/// MAC with SHA-256) and the legacy PKCS#12 schemes (3DES, RC2; `openssl pkcs12 -legacy`,
/// Windows, old Java), with an HMAC-SHA-1/224/256/384/512 MAC or none. The certificate is
/// the one whose `localKeyID` matches the key's, else the first; the rest are the CA
/// certificates. Errors: "PKCS#12: wrong passphrase or corrupt file" when the MAC or the
/// decryption fails; a bundle without a private key or without a certificate is refused.
/// Key derivation parameters are capped (see [`crate::cert::SslKey::from_pem`]).
pub fn import_pkcs12(data: &[u8], passphrase: &[u8]) -> Result<Pkcs12Bundle, ConfigError> {
    let pfx = Pfx::from_der(data)
        .map_err(|e| ConfigError::malformed(format!("PKCS#12: not a PKCS#12 bundle ({e})")))?;
    let auth_safe = data_content(&pfx.auth_safe)?;
    let contents = Vec::<ContentInfo>::from_der(auth_safe.as_bytes())
        .map_err(|e| ConfigError::malformed(format!("PKCS#12: malformed contents ({e})")))?;
    // The work the MAC and the outer decryptions ask for is known before any is done.
    let mac_work = pfx.mac_data.as_ref().map_or(0, |mac| {
        let candidates = if passphrase.is_empty() { 2 } else { 1 };
        u64::try_from(mac.iterations)
            .unwrap_or(0)
            .saturating_mul(candidates)
    });
    let outer_work = contents
        .iter()
        .filter(|c| c.content_type == OID_ENCRYPTED_DATA)
        .filter_map(|c| c.content.decode_as::<EncryptedData>().ok())
        .fold(0u64, |sum, e| {
            sum.saturating_add(pbe::cost(&e.enc_content_info.content_enc_alg))
        });
    let mut bags = Bags {
        work_left: MAX_TOTAL_WORK,
        ..Bags::default()
    };
    bags.charge(mac_work.saturating_add(outer_work))?;
    let passphrase = match &pfx.mac_data {
        Some(mac) => mac_passphrase(mac, passphrase, auth_safe.as_bytes())?,
        None => Passphrase::new(passphrase),
    };
    for content in &contents {
        let safe_contents = if content.content_type == OID_DATA {
            Zeroizing::new(data_content(content)?.as_bytes().to_vec())
        } else if content.content_type == OID_ENCRYPTED_DATA {
            decrypt_content(content, &passphrase)?
        } else {
            return Err(ConfigError::unsupported(format!(
                "PKCS#12: unsupported content type {} (public-key protected bundles are not supported)",
                content.content_type
            )));
        };
        bags.collect(&safe_contents, &passphrase, 0)?;
    }
    bags.into_bundle()
}

/// [`import_pkcs12`] on a file of at most 16 MiB.
pub fn import_pkcs12_file(
    path: impl AsRef<Path>,
    passphrase: &[u8],
) -> Result<Pkcs12Bundle, ConfigError> {
    let path = path.as_ref();
    let data = Zeroizing::new(read_limited(path, MAX_PKCS12_FILE)?);
    import_pkcs12(&data, passphrase)
        .map_err(|e| e.context(format_args!("PKCS#12 file `{}`", path.display())))
}

/// What the bags held, in order.
#[derive(Default)]
struct Bags {
    /// Private keys with their `localKeyID`.
    keys: Vec<(SslKey, Option<Vec<u8>>)>,
    /// Certificates with their `localKeyID`.
    certificates: Vec<(SslCertificate, Option<Vec<u8>>)>,
    /// Bags seen so far, nested ones included.
    count: usize,
    /// Key-derivation iterations this import may still run.
    work_left: u64,
}

impl Bags {
    /// Takes `work` iterations from the import's budget, or refuses the file.
    fn charge(&mut self, work: u64) -> Result<(), ConfigError> {
        self.work_left = self.work_left.checked_sub(work).ok_or_else(|| {
            ConfigError::malformed(format!(
                "PKCS#12: the file asks for more than {MAX_TOTAL_WORK} key-derivation iterations in all"
            ))
        })?;
        Ok(())
    }

    fn collect(
        &mut self,
        safe_contents: &[u8],
        passphrase: &Passphrase,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let bags = Vec::<SafeBag>::from_der(safe_contents)
            .map_err(|e| ConfigError::malformed(format!("PKCS#12: malformed bags ({e})")))?;
        self.count = self.count.saturating_add(bags.len());
        if self.count > MAX_BAGS {
            return Err(ConfigError::malformed(format!(
                "PKCS#12: more than {MAX_BAGS} bags"
            )));
        }
        for bag in bags {
            let id = local_key_id(&bag);
            let value = Zeroizing::new(bag_value(&bag)?);
            match bag.bag_id {
                pkcs12::PKCS_12_KEY_BAG_OID => {
                    // A PrivateKeyInfo and nothing else (round 34: any key DER was taken,
                    // a public key too, which `openssl pkcs12` refuses).
                    let key = SslKey::from_pkcs8(&value).map_err(|e| {
                        ConfigError::malformed(format!(
                            "PKCS#12: a key bag holds no PKCS#8 private key ({e})"
                        ))
                    })?;
                    self.keys.push((key, id));
                }
                pkcs12::PKCS_12_PKCS8_KEY_BAG_OID => {
                    let info = EncryptedPrivateKeyInfo::from_der(&value).map_err(|e| {
                        ConfigError::malformed(format!("PKCS#12: malformed shrouded key ({e})"))
                    })?;
                    self.charge(pbe::cost(&info.encryption_algorithm))?;
                    let plain = pbe::decrypt(
                        &info.encryption_algorithm,
                        info.encrypted_data.as_bytes(),
                        passphrase,
                    )
                    .map_err(pbe_error)?;
                    let key = SslKey::from_pkcs8(&plain).map_err(|_| {
                        ConfigError::with_kind(ConfigErrorKind::WrongPassphrase, WRONG_PASSPHRASE)
                    })?;
                    self.keys.push((key, id));
                }
                pkcs12::PKCS_12_CERT_BAG_OID => {
                    let cert_bag = CertBag::from_der(&value).map_err(|e| {
                        ConfigError::malformed(format!("PKCS#12: malformed certificate bag ({e})"))
                    })?;
                    // SDSI certificates do not exist in practice; skip any non-X.509 type.
                    if cert_bag.cert_id == OID_X509_CERT {
                        let cert = SslCertificate::from_der(cert_bag.cert_value.as_bytes())
                            .map_err(|e| e.context("PKCS#12"))?;
                        self.certificates.push((cert, id));
                    }
                }
                pkcs12::PKCS_12_SAFE_CONTENTS_BAG_OID if depth < MAX_NESTING => {
                    self.collect(&value, passphrase, depth + 1)?;
                }
                pkcs12::PKCS_12_SAFE_CONTENTS_BAG_OID => {
                    return Err(ConfigError::malformed("PKCS#12: bags nested too deep"));
                }
                // CRL and secret bags have no place in Qt's result.
                _ => {}
            }
        }
        Ok(())
    }

    fn into_bundle(self) -> Result<Pkcs12Bundle, ConfigError> {
        let mut keys = self.keys.into_iter();
        let (key, key_id) = keys
            .next()
            .ok_or_else(|| ConfigError::malformed("PKCS#12: no private key in the bundle"))?;
        let mut certificates = self.certificates;
        if certificates.is_empty() {
            return Err(ConfigError::malformed(
                "PKCS#12: no certificate in the bundle",
            ));
        }
        // The certificate of the key, as OpenSSL's `PKCS12_parse` (Qt's) picks it: the one
        // whose public key is the key's. Only for a key whose match cannot be decided here
        // does the bag's localKeyID choose, else the first certificate.
        let verdicts: Vec<Option<bool>> = certificates
            .iter()
            .map(|(certificate, _)| key.belongs_to(certificate))
            .collect();
        let position = match verdicts.iter().position(|v| *v == Some(true)) {
            Some(position) => position,
            None if verdicts.iter().all(|v| *v == Some(false)) => {
                return Err(ConfigError::with_kind(
                    crate::ConfigErrorKind::KeyMismatch,
                    "PKCS#12: no certificate in the bundle belongs to its private key",
                ));
            }
            None => key_id
                .as_ref()
                .and_then(|kid| {
                    certificates
                        .iter()
                        .position(|(_, cid)| cid.as_ref() == Some(kid))
                })
                .unwrap_or(0),
        };
        let (certificate, _) = certificates.remove(position);
        Ok(Pkcs12Bundle {
            key,
            certificate,
            ca_certificates: certificates.into_iter().map(|(c, _)| c).collect(),
        })
    }
}

/// The octets of an `id-data` content.
fn data_content(content: &ContentInfo) -> Result<OctetString, ConfigError> {
    if content.content_type != OID_DATA {
        return Err(ConfigError::unsupported(format!(
            "PKCS#12: unsupported content type {} (only password-protected bundles are supported)",
            content.content_type
        )));
    }
    content
        .content
        .decode_as::<OctetString>()
        .map_err(|e| ConfigError::malformed(format!("PKCS#12: malformed data ({e})")))
}

/// Decrypts an `id-encryptedData` content.
fn decrypt_content(
    content: &ContentInfo,
    passphrase: &Passphrase,
) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    let encrypted = content
        .content
        .decode_as::<EncryptedData>()
        .map_err(|e| ConfigError::malformed(format!("PKCS#12: malformed encrypted data ({e})")))?;
    let info = &encrypted.enc_content_info;
    match &info.encrypted_content {
        Some(data) => {
            pbe::decrypt(&info.content_enc_alg, data.as_bytes(), passphrase).map_err(pbe_error)
        }
        None => Ok(Zeroizing::new(Vec::new())),
    }
}

/// The passphrase encoding whose MAC verifies. An empty passphrase is tried both as the
/// empty string and as OpenSSL's `NULL` password, as `PKCS12_parse` does.
fn mac_passphrase(
    mac: &MacData,
    passphrase: &[u8],
    auth_safe: &[u8],
) -> Result<Passphrase, ConfigError> {
    let mut candidates = vec![Passphrase::new(passphrase)];
    if passphrase.is_empty() {
        candidates.push(Passphrase::null());
    }
    for candidate in candidates {
        if verify_mac(mac, &candidate, auth_safe)? {
            return Ok(candidate);
        }
    }
    Err(ConfigError::with_kind(
        ConfigErrorKind::WrongPassphrase,
        WRONG_PASSPHRASE,
    ))
}

/// Whether the bundle's HMAC (keyed with the PKCS#12 KDF, RFC 7292 appendix B) verifies.
fn verify_mac(mac: &MacData, passphrase: &Passphrase, data: &[u8]) -> Result<bool, ConfigError> {
    let rounds = checked_rounds(mac.iterations).map_err(pbe_error)?;
    let salt = mac.mac_salt.as_bytes();
    let expected = mac.mac.digest.as_bytes();
    let pass = passphrase.bmp();
    Ok(match mac.mac.algorithm.oid.to_string().as_str() {
        "1.3.14.3.2.26" => hmac_ok::<sha1::Sha1>(pass, salt, rounds, data, expected),
        "2.16.840.1.101.3.4.2.4" => hmac_ok::<sha2::Sha224>(pass, salt, rounds, data, expected),
        "2.16.840.1.101.3.4.2.1" => hmac_ok::<sha2::Sha256>(pass, salt, rounds, data, expected),
        "2.16.840.1.101.3.4.2.2" => hmac_ok::<sha2::Sha384>(pass, salt, rounds, data, expected),
        "2.16.840.1.101.3.4.2.3" => hmac_ok::<sha2::Sha512>(pass, salt, rounds, data, expected),
        other => {
            return Err(ConfigError::unsupported(format!(
                "PKCS#12: unsupported MAC algorithm {other}"
            )))
        }
    })
}

fn hmac_ok<D>(pass: &[u8], salt: &[u8], rounds: i32, data: &[u8], expected: &[u8]) -> bool
where
    D: Digest + FixedOutputReset + BlockSizeUser + Clone,
{
    let size = <D as Digest>::output_size();
    let key = Zeroizing::new(derive_key::<D>(
        pass,
        salt,
        Pkcs12KeyType::Mac,
        rounds,
        size,
    ));
    match SimpleHmac::<D>::new_from_slice(&key) {
        Ok(mut hmac) => {
            hmac.update(data);
            hmac.verify_slice(expected).is_ok()
        }
        Err(_) => false,
    }
}

/// The DER inside a bag's `[0] EXPLICIT` value.
fn bag_value(bag: &SafeBag) -> Result<Vec<u8>, ConfigError> {
    ContextSpecific::<Any>::from_der(&bag.bag_value)
        .and_then(|wrapped| wrapped.value.to_der())
        .map_err(|e| ConfigError::malformed(format!("PKCS#12: malformed bag ({e})")))
}

/// A bag's `localKeyID` attribute.
fn local_key_id(bag: &SafeBag) -> Option<Vec<u8>> {
    let attributes = bag.bag_attributes.as_ref()?;
    let attribute = attributes.iter().find(|a| a.oid == OID_LOCAL_KEY_ID)?;
    let value = attribute.values.iter().next()?;
    value
        .decode_as::<OctetString>()
        .ok()
        .map(|o| o.as_bytes().to_vec())
}

fn pbe_error(error: PbeError) -> ConfigError {
    match error {
        PbeError::WrongPassphrase => {
            ConfigError::with_kind(ConfigErrorKind::WrongPassphrase, WRONG_PASSPHRASE)
        }
        PbeError::Unsupported(what) => {
            ConfigError::unsupported(format!("PKCS#12: unsupported encryption ({what})"))
        }
        PbeError::Malformed(what) => ConfigError::malformed(format!("PKCS#12: {what}")),
    }
}
