//! `SslCertificate`: an X.509 certificate held as DER, read through x509-parser.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::cert::name::rfc4514;
use crate::error::ConfigError;

/// An X.509 certificate (Qt's `QSslCertificate`).
///
/// Held as its DER encoding, shared and cheap to clone; equality and hashing are on the
/// DER, as in Qt. A value of this type always parsed as a certificate when it was made,
/// so the accessors never fail; fields that are absent give `None` or empty lists.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SslCertificate {
    der: Arc<[u8]>,
}

/// One subject alternative name entry (Qt's `QSsl::AlternativeNameEntryType` with its value).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AlternativeName {
    /// `dNSName`.
    Dns(String),
    /// `rfc822Name` (an e-mail address).
    Email(String),
    /// `iPAddress`.
    IpAddress(std::net::IpAddr),
}

impl fmt::Display for AlternativeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlternativeName::Dns(name) => write!(f, "DNS:{name}"),
            AlternativeName::Email(mail) => write!(f, "email:{mail}"),
            AlternativeName::IpAddress(ip) => write!(f, "IP:{ip}"),
        }
    }
}

impl SslCertificate {
    /// One certificate from DER; an error when the bytes are not a certificate.
    pub fn from_der(der: &[u8]) -> Result<SslCertificate, ConfigError> {
        match X509Certificate::from_der(der) {
            Ok((rest, _)) if rest.is_empty() => Ok(SslCertificate {
                der: Arc::from(der),
            }),
            Ok(_) => Err(ConfigError::new(
                "certificate: trailing bytes after the DER certificate",
            )),
            Err(e) => Err(ConfigError::new(format!(
                "certificate: not a DER X.509 certificate ({e})"
            ))),
        }
    }

    /// Every `CERTIFICATE` block of PEM data, in order; an error when there is none or one
    /// does not parse.
    pub fn from_pem(pem: &[u8]) -> Result<Vec<SslCertificate>, ConfigError> {
        let mut out = Vec::new();
        for item in CertificateDer::pem_slice_iter(pem) {
            let der = item.map_err(|e| ConfigError::new(format!("certificate PEM: {e}")))?;
            out.push(SslCertificate::from_der(der.as_ref())?);
        }
        if out.is_empty() {
            return Err(ConfigError::new(
                "certificate PEM: no CERTIFICATE block found",
            ));
        }
        Ok(out)
    }

    /// Certificates from PEM or DER data, whichever it is.
    pub fn from_data(data: &[u8]) -> Result<Vec<SslCertificate>, ConfigError> {
        if looks_like_pem(data) {
            SslCertificate::from_pem(data)
        } else {
            SslCertificate::from_der(data).map(|c| vec![c])
        }
    }

    /// Certificates from a file, PEM or DER.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Vec<SslCertificate>, ConfigError> {
        let path = path.as_ref();
        let data = read_limited(path, 64 * 1024 * 1024)?;
        SslCertificate::from_data(&data).map_err(|e| {
            ConfigError::new(format!(
                "certificate file `{}`: {}",
                path.display(),
                e.message()
            ))
        })
    }

    /// The DER encoding.
    pub fn to_der(&self) -> Vec<u8> {
        self.der.to_vec()
    }

    /// The DER encoding, borrowed.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding (one `CERTIFICATE` block).
    pub fn to_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }

    /// As rustls's type.
    pub fn to_certificate_der(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.der.to_vec())
    }

    /// Runs `f` on the parsed certificate.
    pub(crate) fn with_parsed<T>(&self, f: impl FnOnce(&X509Certificate<'_>) -> T) -> Option<T> {
        X509Certificate::from_der(&self.der)
            .ok()
            .map(|(_, cert)| f(&cert))
    }

    /// The subject as an RFC 4514 string (`CN=localhost,O=Example`).
    pub fn subject_rfc4514(&self) -> String {
        self.with_parsed(|c| rfc4514(c.subject()))
            .unwrap_or_default()
    }

    /// The issuer as an RFC 4514 string.
    pub fn issuer_rfc4514(&self) -> String {
        self.with_parsed(|c| rfc4514(c.issuer()))
            .unwrap_or_default()
    }

    /// The serial number as lowercase hex of the DER INTEGER's content octets.
    pub fn serial_number(&self) -> String {
        self.with_parsed(|c| hex(c.raw_serial()))
            .unwrap_or_default()
    }

    /// The X.509 version as Qt reports it (`"3"` for v3).
    pub fn version(&self) -> String {
        self.with_parsed(|c| (c.version().0 + 1).to_string())
            .unwrap_or_default()
    }

    /// Start of validity, as seconds since the Unix epoch.
    pub fn effective_date(&self) -> i64 {
        self.with_parsed(|c| c.validity().not_before.timestamp())
            .unwrap_or_default()
    }

    /// End of validity, as seconds since the Unix epoch.
    pub fn expiry_date(&self) -> i64 {
        self.with_parsed(|c| c.validity().not_after.timestamp())
            .unwrap_or_default()
    }

    /// The subject alternative names (DNS, e-mail, IP), in certificate order.
    pub fn subject_alternative_names(&self) -> Vec<AlternativeName> {
        self.with_parsed(|c| {
            let mut out = Vec::new();
            if let Ok(Some(san)) = c.subject_alternative_name() {
                for name in &san.value.general_names {
                    match name {
                        GeneralName::DNSName(n) => out.push(AlternativeName::Dns(n.to_string())),
                        GeneralName::RFC822Name(n) => {
                            out.push(AlternativeName::Email(n.to_string()))
                        }
                        GeneralName::IPAddress(raw) => {
                            if let Some(ip) = ip_from_bytes(raw) {
                                out.push(AlternativeName::IpAddress(ip));
                            }
                        }
                        _ => {}
                    }
                }
            }
            out
        })
        .unwrap_or_default()
    }

    /// Whether the certificate has a subject alternative name extension at all.
    pub fn has_subject_alternative_name(&self) -> bool {
        self.with_parsed(|c| matches!(c.subject_alternative_name(), Ok(Some(_))))
            .unwrap_or(false)
    }

    /// The values of the subject's common name attributes.
    pub fn subject_common_names(&self) -> Vec<String> {
        self.with_parsed(|c| {
            c.subject()
                .iter_common_name()
                .filter_map(|a| a.as_str().ok().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Whether subject and issuer are the same name and the certificate's signature
    /// verifies with its own public key (Qt's `isSelfSigned`).
    pub fn is_self_signed(&self) -> bool {
        self.with_parsed(|c| {
            c.subject().as_raw() == c.issuer().as_raw()
                && crate::verify::signature::is_signed_by(&self.der, c.public_key().raw)
        })
        .unwrap_or(false)
    }

    /// The public key's algorithm as Qt's cipher descriptions name it (`RSA`, `ECDSA`,
    /// `Ed25519`).
    pub fn public_key_algorithm_name(&self) -> String {
        self.with_parsed(
            |c| match c.public_key().algorithm.algorithm.to_id_string().as_str() {
                "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => "RSA".to_string(),
                "1.2.840.10045.2.1" => "ECDSA".to_string(),
                "1.3.101.112" => "Ed25519".to_string(),
                other => other.to_string(),
            },
        )
        .unwrap_or_default()
    }

    /// The SHA-256 digest of the DER, lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der).as_ref())
    }
}

impl fmt::Debug for SslCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslCertificate")
            .field("subject", &self.subject_rfc4514())
            .field("sha256", &self.sha256_hex())
            .finish()
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn ip_from_bytes(raw: &[u8]) -> Option<std::net::IpAddr> {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw)
            .ok()
            .map(|a| std::net::IpAddr::from(a)),
        16 => <[u8; 16]>::try_from(raw)
            .ok()
            .map(|a| std::net::IpAddr::from(a)),
        _ => None,
    }
}

pub(crate) fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Reads a file of at most `limit` bytes; a larger file is refused without reading it all.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| ConfigError::new(format!("file `{}`: {e}", path.display())))?;
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| ConfigError::new(format!("file `{}`: {e}", path.display())))?;
    if data.len() as u64 > limit {
        return Err(ConfigError::new(format!(
            "file `{}`: larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(data)
}

/// PEM-encodes DER under `label`, 64 columns.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let block = pem::Pem::new(label, der.to_vec());
    pem::encode_config(
        &block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}
