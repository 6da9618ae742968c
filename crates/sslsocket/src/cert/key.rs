//! `SslKey`: a private key, held as zeroized DER.

use std::fmt;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use x509_parser::asn1_rs::{Any, FromDer, Oid};
use zeroize::Zeroizing;

use crate::cert::certificate::{looks_like_pem, read_limited};
use crate::error::ConfigError;

/// The largest key file we read; anything larger is refused before parsing.
pub(crate) const MAX_KEY_FILE: u64 = 1024 * 1024;

/// A key's algorithm (Qt's `QSsl::KeyAlgorithm`, with Ed25519 beside Qt's `Opaque`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA.
    Rsa,
    /// Elliptic curve (ECDSA).
    Ec,
    /// Ed25519 (Qt reports it as `Opaque`).
    Ed25519,
    /// An algorithm this library does not name.
    Opaque,
}

/// The encoding a private key is held in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyFormat {
    Pkcs8,
    Pkcs1,
    Sec1,
}

/// A private key (Qt's `QSslKey` of type `PrivateKey`).
///
/// The DER bytes are zeroized when the value is dropped, and `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct SslKey {
    der: Zeroizing<Vec<u8>>,
    format: KeyFormat,
    algorithm: KeyAlgorithm,
}

impl SslKey {
    /// A key from PEM (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`) or DER data.
    /// `passphrase` is for encrypted keys.
    pub fn from_data(data: &[u8], passphrase: Option<&[u8]>) -> Result<SslKey, ConfigError> {
        if looks_like_pem(data) {
            SslKey::from_pem(data, passphrase)
        } else {
            SslKey::from_der(data)
        }
    }

    /// A key from PEM data.
    pub fn from_pem(pem: &[u8], passphrase: Option<&[u8]>) -> Result<SslKey, ConfigError> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
            let _ = passphrase;
            return Err(ConfigError::new(
                "private key: encrypted keys are not supported yet",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| ConfigError::new(format!("private key PEM: {e}")))?;
        SslKey::from_private_key_der(key)
    }

    /// A key from DER (PKCS#8, PKCS#1 or SEC1).
    pub fn from_der(der: &[u8]) -> Result<SslKey, ConfigError> {
        let key = PrivateKeyDer::try_from(der)
            .map_err(|e| ConfigError::new(format!("private key DER: {e}")))?
            .clone_key();
        SslKey::from_private_key_der(key)
    }

    /// A key from a file, PEM or DER.
    pub fn from_file(
        path: impl AsRef<Path>,
        passphrase: Option<&[u8]>,
    ) -> Result<SslKey, ConfigError> {
        let path = path.as_ref();
        let data = Zeroizing::new(read_limited(path, MAX_KEY_FILE)?);
        SslKey::from_data(&data, passphrase).map_err(|e| {
            ConfigError::new(format!("key file `{}`: {}", path.display(), e.message()))
        })
    }

    fn from_private_key_der(key: PrivateKeyDer<'_>) -> Result<SslKey, ConfigError> {
        let (format, bytes) = match &key {
            PrivateKeyDer::Pkcs8(k) => (KeyFormat::Pkcs8, k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => (KeyFormat::Pkcs1, k.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(k) => (KeyFormat::Sec1, k.secret_sec1_der()),
            _ => return Err(ConfigError::new("private key: unsupported key format")),
        };
        let algorithm = match format {
            KeyFormat::Pkcs1 => KeyAlgorithm::Rsa,
            KeyFormat::Sec1 => KeyAlgorithm::Ec,
            KeyFormat::Pkcs8 => pkcs8_algorithm(bytes)
                .ok_or_else(|| ConfigError::new("private key: malformed PKCS#8 structure"))?,
        };
        Ok(SslKey {
            der: Zeroizing::new(bytes.to_vec()),
            format,
            algorithm,
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The DER encoding (PKCS#8, PKCS#1 or SEC1, as loaded).
    pub fn to_der(&self) -> Zeroizing<Vec<u8>> {
        self.der.clone()
    }

    /// As rustls's type.
    pub fn to_private_key_der(&self) -> PrivateKeyDer<'static> {
        let bytes = self.der.to_vec();
        match self.format {
            KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes)),
            KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(bytes)),
            KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(bytes)),
        }
    }
}

impl fmt::Debug for SslKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The algorithm named in a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_algorithm(der: &[u8]) -> Option<KeyAlgorithm> {
    let (_, outer) = Any::from_der(der).ok()?;
    let (rest, _version) = Any::from_der(outer.data).ok()?;
    let (_, alg) = Any::from_der(rest).ok()?;
    let (_, oid) = Oid::from_der(alg.data).ok()?;
    Some(match oid.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => KeyAlgorithm::Rsa,
        "1.2.840.10045.2.1" => KeyAlgorithm::Ec,
        "1.3.101.112" => KeyAlgorithm::Ed25519,
        _ => KeyAlgorithm::Opaque,
    })
}
