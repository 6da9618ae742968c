//! `SslKey`: a private or public key, held as (zeroized) DER.

use crate::cert::certificate::{quoted_excerpt, EXCERPT_CHARS};
use std::fmt;
use std::path::Path;

use pkcs8::der::asn1::{AnyRef, ObjectIdentifier};
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, Encode};
use pkcs8::pkcs5::pbes2;
use pkcs8::spki::AlgorithmIdentifierRef;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use zeroize::Zeroizing;

use crate::cert::certificate::{looks_like_pem, read_limited};
use crate::cert::key_info::{self, KeyInfo, OID_EC, OID_RSA};
use crate::cert::pbe::{self, Passphrase, PbeError};
use crate::error::{ConfigError, ConfigErrorKind};

/// The largest key file we read; anything larger is refused before parsing.
pub(crate) const MAX_KEY_FILE: u64 = 1024 * 1024;

/// PBKDF2-HMAC-SHA256 iterations used when [`SslKey::to_pem`] encrypts a key: fifty times
/// OpenSSL's default of 2 048 (Qt itself writes legacy PEM with a single MD5 round), and still
/// well under our reading limit.
const ENCRYPT_ITERATIONS: u32 = 100_000;

/// The message for a passphrase that does not decrypt the key.
const WRONG_PASSPHRASE: &str = "private key: wrong passphrase or corrupt key";
/// The message for an encrypted key loaded without a passphrase.
const NO_PASSPHRASE: &str = "private key: encrypted, and no passphrase given";

/// A key's algorithm (Qt's `QSsl::KeyAlgorithm`, with Ed25519 beside Qt's `Opaque`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA (also RSA-PSS keys).
    Rsa,
    /// Elliptic curve (ECDSA).
    Ec,
    /// Ed25519 (Qt reports it as `Opaque`).
    Ed25519,
    /// An algorithm this library does not name (DSA, Ed448, X25519, ...).
    Opaque,
}

/// Whether a key is private or public (Qt's `QSsl::KeyType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// A private key: can sign, is secret, zeroized on drop.
    PrivateKey,
    /// A public key: from a `PUBLIC KEY` block, a SubjectPublicKeyInfo or a certificate.
    PublicKey,
}

/// The encoding a key is held in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyFormat {
    /// PKCS#8 `PrivateKeyInfo` (PEM `PRIVATE KEY`).
    Pkcs8,
    /// PKCS#1 `RSAPrivateKey` (PEM `RSA PRIVATE KEY`).
    Pkcs1,
    /// SEC1 `ECPrivateKey` (PEM `EC PRIVATE KEY`).
    Sec1,
    /// `SubjectPublicKeyInfo` (PEM `PUBLIC KEY`).
    Spki,
}

/// A private or public key (Qt's `QSslKey`).
///
/// Unlike Qt there is no null key: every constructor returns a `Result`, and a value always
/// holds a key that parsed. Private keys load from PKCS#8, PKCS#1 and SEC1, in PEM or DER,
/// also encrypted (PKCS#8 `ENCRYPTED PRIVATE KEY` with PBES2 or PKCS#12 PBE, and OpenSSL's
/// legacy `Proc-Type: 4,ENCRYPTED` PEM); public keys from `PUBLIC KEY` / `RSA PUBLIC KEY`
/// PEM or SubjectPublicKeyInfo DER. The DER bytes are zeroized when the value is dropped, and
/// `Debug` never shows them.
#[derive(Clone)]
pub struct SslKey {
    der: Zeroizing<Vec<u8>>,
    format: KeyFormat,
    algorithm: KeyAlgorithm,
    length: u32,
}

/// Qt's `operator==`: the same algorithm, type and length, and the same key whatever
/// encoding it was loaded from (round 35: the encoding counted). A private key compares
/// by its algorithm identifier and its secret (PKCS#1 and SEC1 read as their PKCS#8
/// form; an EC key's scalar, with or without its public key; PKCS#8 v1 or v2), a public
/// key by its SubjectPublicKeyInfo. The secrets compare in constant time.
impl PartialEq for SslKey {
    fn eq(&self, other: &SslKey) -> bool {
        use subtle::ConstantTimeEq;
        if self.algorithm != other.algorithm
            || self.key_type() != other.key_type()
            || self.length != other.length
        {
            return false;
        }
        match (self.private_identity(), other.private_identity()) {
            (Some((ours, our_secret)), Some((theirs, their_secret))) => {
                ours == theirs && bool::from(our_secret.as_slice().ct_eq(their_secret.as_slice()))
            }
            _ => {
                self.format == other.format
                    && bool::from(self.der.as_slice().ct_eq(other.der.as_slice()))
            }
        }
    }
}

impl Eq for SslKey {}

impl SslKey {
    /// A private key's algorithm identifier (DER) and secret, the parts that make it this
    /// key whatever its encoding (see `PartialEq`); `None` for a public key or one that
    /// does not read.
    fn private_identity(&self) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        use pkcs8::der::Encode;
        let pkcs8 = self.to_pkcs8_der().ok()?;
        let info = pkcs8::PrivateKeyInfo::try_from(pkcs8.as_slice()).ok()?;
        let algorithm = info.algorithm.to_der().ok()?;
        let secret = if info.algorithm.oid == OID_EC {
            key_info::sec1_parts(info.private_key)?.0
        } else {
            info.private_key
        };
        Some((algorithm, Zeroizing::new(secret.to_vec())))
    }

    /// A key from PEM or DER data, whichever it is. `passphrase` is for encrypted keys and
    /// ignored for others, as in Qt.
    pub fn from_data(data: &[u8], passphrase: Option<&[u8]>) -> Result<SslKey, ConfigError> {
        if looks_like_pem(data) {
            return SslKey::from_pem(data, passphrase);
        }
        match SslKey::from_der(data) {
            Ok(key) => Ok(key),
            // DER `EncryptedPrivateKeyInfo`: the same decryption as the PEM form.
            Err(_) if pkcs12::pbe_params::EncryptedPrivateKeyInfo::from_der(data).is_ok() => {
                SslKey::from_encrypted_pkcs8(data, passphrase)
            }
            Err(e) => Err(e),
        }
    }

    /// A key from PEM data: the first block that holds a key (`PRIVATE KEY`,
    /// `ENCRYPTED PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`, `PUBLIC KEY`,
    /// `RSA PUBLIC KEY`); other blocks, such as certificates, are skipped.
    ///
    /// An encrypted key needs `passphrase`: without one the error is
    /// "private key: encrypted, and no passphrase given", with a wrong one
    /// "private key: wrong passphrase or corrupt key". Keys encrypted with PKCS#5 v1.5
    /// (PBES1, DES/RC2 with MD5/SHA-1) are refused as "unsupported key encryption (PBES1)".
    pub fn from_pem(pem: &[u8], passphrase: Option<&[u8]>) -> Result<SslKey, ConfigError> {
        let blocks = pem::parse_many(pem).map_err(|e| {
            let text = quoted_excerpt(e.to_string().as_bytes(), 4 * EXCERPT_CHARS);
            ConfigError::malformed(format!("private key PEM: {text}"))
        })?;
        let mut chosen = None;
        for block in blocks {
            let is_key =
                block.tag().ends_with("PRIVATE KEY") || block.tag().ends_with("PUBLIC KEY");
            let tag = block.tag().to_string();
            let encrypted = block
                .headers()
                .get("Proc-Type")
                .is_some_and(|v| v.replace(' ', "").eq_ignore_ascii_case("4,ENCRYPTED"));
            let dek_info = block.headers().get("DEK-Info").map(str::to_string);
            // Every block's bytes are wiped when dropped: a file may hold more than one key.
            let contents = Zeroizing::new(block.into_contents());
            if is_key && chosen.is_none() {
                chosen = Some((tag, encrypted, dek_info, contents));
            }
        }
        let (tag, encrypted, dek_info, contents) =
            chosen.ok_or_else(|| match unterminated_key_block(pem) {
                // The PEM parser skips a block without its END line, so say what is wrong
                // (round 37: a cut key file read "no key block found").
                Some(label) => ConfigError::malformed(format!(
                    "private key PEM: the {label} block has no END line (the file is cut?)"
                )),
                None => ConfigError::malformed("private key PEM: no key block found"),
            })?;
        if encrypted {
            let dek_info = dek_info.ok_or_else(|| {
                ConfigError::malformed("private key PEM: encrypted without DEK-Info")
            })?;
            let passphrase = passphrase.ok_or_else(|| {
                ConfigError::with_kind(ConfigErrorKind::PassphraseRequired, NO_PASSPHRASE)
            })?;
            let plain = pbe::decrypt_legacy_pem(&dek_info, &contents, passphrase)
                .map_err(|e| pbe_error(e, "private key PEM"))?;
            // Bad padding is caught above one time in 256; garbage that survives it fails
            // to parse, and is a wrong passphrase all the same.
            return match tag.as_str() {
                "RSA PRIVATE KEY" => SslKey::from_pkcs1(&plain),
                "EC PRIVATE KEY" => SslKey::from_sec1(&plain),
                "PRIVATE KEY" => SslKey::from_pkcs8(&plain),
                other => {
                    return Err(ConfigError::unsupported(format!(
                        "private key PEM: unsupported key type `{}`",
                        quoted_excerpt(other.as_bytes(), EXCERPT_CHARS)
                    )))
                }
            }
            .map_err(|_| {
                ConfigError::with_kind(ConfigErrorKind::WrongPassphrase, WRONG_PASSPHRASE)
            });
        }
        match tag.as_str() {
            "PRIVATE KEY" => SslKey::from_pkcs8(&contents),
            "RSA PRIVATE KEY" => SslKey::from_pkcs1(&contents),
            "EC PRIVATE KEY" => SslKey::from_sec1(&contents),
            "ENCRYPTED PRIVATE KEY" => SslKey::from_encrypted_pkcs8(&contents, passphrase),
            "PUBLIC KEY" => SslKey::from_spki(&contents),
            "RSA PUBLIC KEY" => SslKey::from_spki(&key_info::spki_from_pkcs1_public(&contents)?),
            other => Err(ConfigError::unsupported(format!(
                "private key PEM: unsupported key type `{}`",
                quoted_excerpt(other.as_bytes(), EXCERPT_CHARS)
            ))),
        }
    }

    /// A key from unencrypted DER: PKCS#8, PKCS#1, SEC1 (private) or SubjectPublicKeyInfo
    /// (public). For encrypted PKCS#8 DER use [`SslKey::from_data`] with a passphrase.
    pub fn from_der(der: &[u8]) -> Result<SslKey, ConfigError> {
        // Each decoder checks the whole structure, so at most one of them accepts.
        SslKey::from_pkcs8(der)
            .or_else(|_| SslKey::from_pkcs1(der))
            .or_else(|_| SslKey::from_sec1(der))
            .or_else(|_| SslKey::from_spki(der))
            .map_err(|_| {
                ConfigError::malformed(
                    "private key DER: not a PKCS#8, PKCS#1, SEC1 or SubjectPublicKeyInfo key",
                )
            })
    }

    /// A key from a file, PEM or DER. Files over 1 MiB are refused without being parsed.
    pub fn from_file(
        path: impl AsRef<Path>,
        passphrase: Option<&[u8]>,
    ) -> Result<SslKey, ConfigError> {
        let path = path.as_ref();
        let data = Zeroizing::new(read_limited(path, MAX_KEY_FILE)?);
        SslKey::from_data(&data, passphrase)
            .map_err(|e| e.context(format_args!("key file `{}`", path.display())))
    }

    /// A public key from a DER `SubjectPublicKeyInfo` (what a certificate carries).
    pub fn from_public_key_der(spki: &[u8]) -> Result<SslKey, ConfigError> {
        SslKey::from_spki(spki)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Private or public (Qt's `type()`).
    pub fn key_type(&self) -> KeyType {
        match self.format {
            KeyFormat::Spki => KeyType::PublicKey,
            KeyFormat::Pkcs8 | KeyFormat::Pkcs1 | KeyFormat::Sec1 => KeyType::PrivateKey,
        }
    }

    /// The key size in bits, as OpenSSL and Qt report it: the RSA modulus size, the curve
    /// size for EC keys (256, 384, 521), 256 for Ed25519, the size of p for DSA and DH keys.
    /// 0 when this library cannot tell (explicit curve parameters).
    pub fn length(&self) -> u32 {
        self.length
    }

    /// The DER encoding as loaded: PKCS#8, PKCS#1 or SEC1 for a private key (unencrypted),
    /// SubjectPublicKeyInfo for a public key.
    pub fn to_der(&self) -> Zeroizing<Vec<u8>> {
        self.der.clone()
    }

    /// A private key as unencrypted PKCS#8 DER, converting PKCS#1 and SEC1; a public key
    /// is an error.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
        match self.format {
            KeyFormat::Pkcs8 => Ok(self.der.clone()),
            KeyFormat::Pkcs1 => wrap_pkcs8(OID_RSA, Some(AnyRef::NULL), &self.der),
            KeyFormat::Sec1 => {
                // The curve goes into the algorithm parameters and leaves the inner key,
                // as OpenSSL writes a PKCS#8 EC key: one encoding per key, which our own
                // reader takes back (round 35).
                let inner = key_info::sec1_without_parameters(&self.der)
                    .ok_or_else(|| ConfigError::malformed("private key: malformed EC key"))?;
                if let Some(explicit) = key_info::explicit_sec1_parameters(&self.der) {
                    let params = AnyRef::try_from(explicit.as_slice()).map_err(|e| {
                        ConfigError::malformed(format!("private key: EC parameters ({e})"))
                    })?;
                    return wrap_pkcs8(OID_EC, Some(params), &inner);
                }
                let (_, curve) = key_info::sec1_info(&self.der)?;
                let curve = curve.ok_or_else(|| {
                    ConfigError::malformed("private key: EC key does not name its curve")
                })?;
                let params = AnyRef::from(&curve);
                wrap_pkcs8(OID_EC, Some(params), &inner)
            }
            KeyFormat::Spki => Err(ConfigError::invalid(
                "public key: there is no private key to encode",
            )),
        }
    }

    /// The PEM encoding (Qt's `toPem(passPhrase)`).
    ///
    /// Without a passphrase (or with an empty one, as in Qt), the key is written in the
    /// form it was loaded in (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`,
    /// `PUBLIC KEY`). With one, a private key is written as `ENCRYPTED PRIVATE KEY`:
    /// PKCS#8 with PBES2, PBKDF2-HMAC-SHA256 (100 000 iterations, random 16-byte salt) and
    /// AES-256-CBC, which OpenSSL 1.1+ and every PKCS#8 reader understand. Public keys are
    /// never encrypted.
    pub fn to_pem(&self, passphrase: Option<&[u8]>) -> Result<Zeroizing<String>, ConfigError> {
        let passphrase = passphrase.filter(|p| !p.is_empty());
        let label = match self.format {
            KeyFormat::Pkcs8 => "PRIVATE KEY",
            KeyFormat::Pkcs1 => "RSA PRIVATE KEY",
            KeyFormat::Sec1 => "EC PRIVATE KEY",
            KeyFormat::Spki => "PUBLIC KEY",
        };
        match passphrase {
            Some(passphrase) if self.key_type() == KeyType::PrivateKey => {
                self.encrypted_pem(passphrase)
            }
            _ => pkcs8::der::pem::encode_string(label, LineEnding::LF, &self.der)
                .map(Zeroizing::new)
                .map_err(|e| ConfigError::malformed(format!("private key: {e}"))),
        }
    }

    /// As rustls's type.
    ///
    /// For a public key there is no private key to give: the result is an empty PKCS#8
    /// document, which rustls refuses when the configuration is used. Call
    /// [`SslKey::private_key_der`] to get an error instead.
    pub fn to_private_key_der(&self) -> PrivateKeyDer<'static> {
        let bytes = self.der.to_vec();
        match self.format {
            KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes)),
            KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(bytes)),
            KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(bytes)),
            KeyFormat::Spki => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(Vec::new())),
        }
    }

    /// As rustls's type; an error for a public key.
    pub fn private_key_der(&self) -> Result<PrivateKeyDer<'static>, ConfigError> {
        match self.key_type() {
            KeyType::PrivateKey => Ok(self.to_private_key_der()),
            KeyType::PublicKey => Err(ConfigError::invalid(
                "private key: this is a public key, not a private key",
            )),
        }
    }

    /// Whether this private key belongs to `certificate`, as OpenSSL's
    /// `X509_check_private_key` decides: the public key aws-lc derives from it is the
    /// certificate's SubjectPublicKeyInfo byte for byte, or else the certificate's key
    /// verifies a signature this key makes (the same key encoded otherwise, such as a
    /// compressed EC point). `None` when that cannot be decided here: a public key, a key
    /// type aws-lc does not load, a certificate that does not parse.
    pub(crate) fn belongs_to(&self, certificate: &crate::cert::SslCertificate) -> Option<bool> {
        let der = self.private_key_der().ok()?;
        let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).ok()?;
        let spki = certificate.with_parsed(|c| c.public_key().raw.to_vec())?;
        if signing
            .public_key()
            .is_some_and(|own| own.as_ref() == spki.as_slice())
        {
            return Some(true);
        }
        crate::verify::signature::key_matches_spki(signing.as_ref(), &spki)
    }

    /// A key from unencrypted PKCS#8 `PrivateKeyInfo` DER only (what a PKCS#12 key bag
    /// holds, RFC 7292 4.2.1).
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<SslKey, ConfigError> {
        let info = key_info::pkcs8_info(der)?;
        Ok(SslKey::new(der, KeyFormat::Pkcs8, info))
    }

    fn from_pkcs1(der: &[u8]) -> Result<SslKey, ConfigError> {
        let info = key_info::pkcs1_private_info(der)?;
        Ok(SslKey::new(der, KeyFormat::Pkcs1, info))
    }

    fn from_sec1(der: &[u8]) -> Result<SslKey, ConfigError> {
        let (info, _) = key_info::sec1_info(der)?;
        Ok(SslKey::new(der, KeyFormat::Sec1, info))
    }

    fn from_spki(der: &[u8]) -> Result<SslKey, ConfigError> {
        let info = key_info::spki_info(der)?;
        Ok(SslKey::new(der, KeyFormat::Spki, info))
    }

    fn new(der: &[u8], format: KeyFormat, info: KeyInfo) -> SslKey {
        SslKey {
            der: Zeroizing::new(der.to_vec()),
            format,
            algorithm: info.algorithm,
            length: info.bits,
        }
    }

    /// Decrypts a DER `EncryptedPrivateKeyInfo`.
    fn from_encrypted_pkcs8(der: &[u8], passphrase: Option<&[u8]>) -> Result<SslKey, ConfigError> {
        // pkcs12's type keeps the algorithm open, so PKCS#12 PBE (`openssl pkcs8 -v1
        // PBE-SHA1-3DES`) reaches our decryptor and PBES1 gets its own message.
        let info = pkcs12::pbe_params::EncryptedPrivateKeyInfo::from_der(der).map_err(|e| {
            ConfigError::malformed(format!("private key: malformed encrypted PKCS#8 ({e})"))
        })?;
        let passphrase = passphrase.ok_or_else(|| {
            ConfigError::with_kind(ConfigErrorKind::PassphraseRequired, NO_PASSPHRASE)
        })?;
        let plain = pbe::decrypt(
            &info.encryption_algorithm,
            info.encrypted_data.as_bytes(),
            &Passphrase::new(passphrase),
        )
        .map_err(|e| pbe_error(e, "private key"))?;
        SslKey::from_pkcs8(&plain)
            .map_err(|_| ConfigError::with_kind(ConfigErrorKind::WrongPassphrase, WRONG_PASSPHRASE))
    }

    /// PKCS#8 PBES2 (PBKDF2-SHA256, AES-256-CBC) under `passphrase`, as PEM.
    fn encrypted_pem(&self, passphrase: &[u8]) -> Result<Zeroizing<String>, ConfigError> {
        use aws_lc_rs::rand::{SecureRandom, SystemRandom};
        let plain = self.to_pkcs8_der()?;
        let info = pkcs8::PrivateKeyInfo::try_from(plain.as_slice())
            .map_err(|e| ConfigError::malformed(format!("private key: {e}")))?;
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        let rng = SystemRandom::new();
        rng.fill(&mut salt)
            .and_then(|()| rng.fill(&mut iv))
            .map_err(|_| ConfigError::new("private key: the system random generator failed"))?;
        let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(ENCRYPT_ITERATIONS, &salt, &iv)
            .map_err(|e| ConfigError::malformed(format!("private key: {e}")))?;
        let document = info
            .encrypt_with_params(params, passphrase)
            .map_err(|e| ConfigError::new(format!("private key: encryption failed ({e})")))?;
        document
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map_err(|e| ConfigError::malformed(format!("private key: {e}")))
    }
}

impl fmt::Debug for SslKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslKey")
            .field("key_type", &self.key_type())
            .field("algorithm", &self.algorithm)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// A `PrivateKeyInfo` around an algorithm-specific private key.
fn wrap_pkcs8(
    oid: ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
    key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    let info = pkcs8::PrivateKeyInfo::new(AlgorithmIdentifierRef { oid, parameters }, key);
    info.to_der()
        .map(Zeroizing::new)
        .map_err(|e| ConfigError::malformed(format!("private key: {e}")))
}

/// The public error for a decryption failure.
fn pbe_error(error: PbeError, context: &str) -> ConfigError {
    match error {
        PbeError::WrongPassphrase => {
            ConfigError::with_kind(ConfigErrorKind::WrongPassphrase, WRONG_PASSPHRASE)
        }
        PbeError::Unsupported(what) => {
            ConfigError::unsupported(format!("{context}: unsupported key encryption ({what})"))
        }
        PbeError::Malformed(what) => ConfigError::malformed(format!("{context}: {what}")),
    }
}

/// The label of the first key block (`-----BEGIN ...KEY-----`) in `pem` that no matching
/// `-----END ...-----` line follows, if any.
fn unterminated_key_block(pem: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(pem);
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        if !label.ends_with("KEY") {
            continue;
        }
        let end = format!("-----END {label}-----");
        if !lines.by_ref().any(|l| l == end) {
            return Some(label.to_string());
        }
    }
    None
}
