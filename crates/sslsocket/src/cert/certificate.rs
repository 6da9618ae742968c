//! `SslCertificate`: an X.509 certificate held as DER, read through x509-parser.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::cert::extension::SslCertificateExtension;
use crate::cert::key::SslKey;
use crate::cert::name::{self, rfc4514, SubjectInfo};
use crate::error::ConfigError;

/// A hash algorithm for [`SslCertificate::digest`] (the ones of Qt's
/// `QCryptographicHash::Algorithm` that certificates are fingerprinted with).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// MD5: Qt's default for `digest()`; for display and legacy pinning only.
    #[default]
    Md5,
    /// SHA-1: what many tools still show as "the fingerprint"; not collision resistant.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// An X.509 certificate (Qt's `QSslCertificate`).
///
/// Held as its DER encoding, shared and cheap to clone; equality and hashing are on the
/// DER, as in Qt. A value of this type always parsed as a certificate when it was made,
/// so the accessors never fail; fields that are absent give `None` or empty lists.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SslCertificate {
    der: Arc<[u8]>,
    /// False only for [`from_unparsed_der`](Self::from_unparsed_der) (a function of the
    /// bytes, so equality and hashing stay those of the DER).
    readable: bool,
}

/// One subject alternative name entry (Qt's `QSsl::AlternativeNameEntryType` with its value).
#[non_exhaustive]
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
        SslCertificate::parse_der(der).map(|_| SslCertificate {
            der: Arc::from(der),
            readable: true,
        })
    }

    /// The parse `from_der` accepts a certificate with (the whole input one DER
    /// certificate, nothing after it), for a caller that goes on reading the parsed value:
    /// what this refuses, `from_der` refuses.
    pub(crate) fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, ConfigError> {
        let parsed = match X509Certificate::from_der(der) {
            Ok(([], parsed)) => parsed,
            Ok(_) => {
                return Err(ConfigError::malformed(
                    "certificate: trailing bytes after the DER certificate",
                ))
            }
            Err(e) => {
                return Err(ConfigError::malformed(format!(
                    "certificate: not a DER X.509 certificate ({e})"
                )))
            }
        };
        // What x509-parser lets through and OpenSSL refuses: an element after the
        // signature, and a serial number that is not a DER INTEGER (empty, or padded).
        if outer_elements(der) != Some(3) {
            return Err(ConfigError::malformed(
                "certificate: not a DER X.509 certificate (the Certificate SEQUENCE does not \
                 hold exactly its three parts)",
            ));
        }
        let serial = parsed.raw_serial();
        let minimal = match serial {
            [] => false,
            [0x00, next, ..] => *next >= 0x80,
            [0xff, next, ..] => *next < 0x80,
            _ => true,
        };
        if !minimal {
            return Err(ConfigError::malformed(
                "certificate: not a DER X.509 certificate (the serial number is not a DER \
                 INTEGER)",
            ));
        }
        Ok(parsed)
    }

    /// A certificate the peer sent that does not parse, kept as its bytes so that the
    /// error about it stays on its position of the chain (verification fails closed: see
    /// [`crate::verify::ChainVerifier`]). Its accessors give empty values and
    /// [`is_null`](Self::is_null) is true.
    pub(crate) fn from_unparsed_der(der: &[u8]) -> SslCertificate {
        SslCertificate {
            der: Arc::from(der),
            readable: SslCertificate::parse_der(der).is_ok(),
        }
    }

    /// The certificate of `der` as a readable one, for `ParsedCertificate::parse_peer`
    /// only: it parses the bytes right after and drops this value unless they parse.
    pub(crate) fn readable_if_parsed(der: &[u8]) -> SslCertificate {
        SslCertificate {
            der: Arc::from(der),
            readable: true,
        }
    }

    /// Whether this is not a readable certificate (Qt's `isNull`): only a certificate a
    /// peer sent that could not be parsed, which always comes with a verification error.
    pub fn is_null(&self) -> bool {
        !self.readable
    }

    /// Every `CERTIFICATE` block of PEM data, in order; an error when there is none or one
    /// does not parse.
    pub fn from_pem(pem: &[u8]) -> Result<Vec<SslCertificate>, ConfigError> {
        let mut out = Vec::new();
        for item in CertificateDer::pem_slice_iter(pem) {
            let der = item.map_err(|e| {
                ConfigError::malformed(format!("certificate PEM: {}", pem_error_text(&e)))
            })?;
            out.push(SslCertificate::from_der(der.as_ref())?);
        }
        if out.is_empty() {
            return Err(ConfigError::malformed(
                "certificate PEM: no CERTIFICATE block found",
            ));
        }
        Ok(out)
    }

    /// Certificates from PEM or DER data, whichever it is.
    pub fn from_data(data: &[u8]) -> Result<Vec<SslCertificate>, ConfigError> {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::malformed("empty: no certificate in it"));
        }
        if looks_like_pem(data) {
            SslCertificate::from_pem(data)
        } else if data.first() != Some(&0x30) {
            // Not a DER SEQUENCE, nor PEM: say what it is not, not how DER parsing failed.
            Err(ConfigError::malformed(
                "no certificate: neither PEM (no \"-----BEGIN\" line) nor DER",
            ))
        } else {
            // DER certificates one after another, as Qt's `fromData(.., Der)` reads them
            // (round 35: a second one was "trailing bytes"). Unlike Qt, bytes after the
            // last that are not a whole certificate are an error, not a shorter list.
            let mut out = Vec::new();
            let mut rest = data;
            while !rest.is_empty() {
                let one = first_der_element(rest).ok_or_else(|| {
                    ConfigError::malformed(format!(
                        "certificate DER: bytes after certificate {} are not a DER element",
                        out.len()
                    ))
                })?;
                out.push(SslCertificate::from_der(one)?);
                rest = rest.get(one.len()..).unwrap_or_default();
            }
            Ok(out)
        }
    }

    /// Certificates from a file, PEM or DER.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Vec<SslCertificate>, ConfigError> {
        let path = path.as_ref();
        let data = read_limited(path, 64 * 1024 * 1024)?;
        SslCertificate::from_data(&data)
            .map_err(|e| e.context(format_args!("certificate file `{}`", path.display())))
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

    /// The serial number as Qt's `serialNumber()` gives it: lowercase hex bytes separated
    /// by colons, the INTEGER's value without the sign byte DER puts before a first byte
    /// of 0x80 or more (`01:02:0a`, `80:01`; round 35: it was `01020a`, `008001`). The
    /// bytes as encoded: [`serial_number_der`](Self::serial_number_der).
    pub fn serial_number(&self) -> String {
        self.with_parsed(|c| {
            crate::cert::extension::colon_hex(&serial_magnitude(c.raw_serial()), false)
        })
        .unwrap_or_default()
    }

    /// The serial number's DER INTEGER content octets (with a sign byte when DER has
    /// one); empty for a certificate that does not parse.
    pub fn serial_number_der(&self) -> Vec<u8> {
        self.with_parsed(|c| c.raw_serial().to_vec())
            .unwrap_or_default()
    }

    /// Whether the certificate is on Qt's built-in list of fraudulent certificates (the
    /// Comodo and DigiNotar incidents and a few mis-issued intermediates; Qt's
    /// `isBlacklisted`): its serial number and a subject or issuer common name are an
    /// entry's. A verification reports `CertificateBlacklisted` on such a certificate.
    pub fn is_blacklisted(&self) -> bool {
        crate::verify::blocklist::is_listed(self)
    }

    /// The X.509 version as Qt reports it (`"3"` for v3).
    pub fn version(&self) -> String {
        self.with_parsed(|c| (u64::from(c.version().0) + 1).to_string())
            .unwrap_or_default()
    }

    /// Start of validity, `notBefore` (Qt's `effectiveDate()`); the Unix epoch for a null
    /// certificate (where Qt gives a null date).
    pub fn effective_date(&self) -> SystemTime {
        system_time(self.effective_date_unix())
    }

    /// End of validity, `notAfter` (Qt's `expiryDate()`); the Unix epoch for a null
    /// certificate (where Qt gives a null date).
    pub fn expiry_date(&self) -> SystemTime {
        system_time(self.expiry_date_unix())
    }

    /// Start of validity as seconds since the Unix epoch (negative before 1970).
    pub fn effective_date_unix(&self) -> i64 {
        self.with_parsed(|c| c.validity().not_before.timestamp())
            .unwrap_or_default()
    }

    /// End of validity as seconds since the Unix epoch (negative before 1970).
    pub fn expiry_date_unix(&self) -> i64 {
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

    /// The values of the subject's common name attributes, whatever their string type
    /// (a BMPString or UniversalString CN too, as `subject_info(CommonName)` reads them;
    /// round 34: those were left out).
    pub fn subject_common_names(&self) -> Vec<String> {
        self.with_parsed(|c| super::name::values_of(c.subject(), "2.5.4.3"))
            .unwrap_or_default()
    }

    /// Whether subject and issuer are the same name and the certificate's signature
    /// verifies with its own public key (Qt's `isSelfSigned`; an RSA key under 2048 bits,
    /// which the verifier refuses, is checked too). For a key whose signatures
    /// we cannot check (RSA-PSS keys, P-224, secp256k1, brainpool, Ed448), the names alone
    /// decide, as OpenSSL's `X509_check_issued` (what Qt asks) does: a signature that
    /// does not verify is never called self-signed.
    pub fn is_self_signed(&self) -> bool {
        use crate::verify::signature::{verify_self_signature, SignatureCheck};
        self.with_parsed(|c| {
            name::same_name(c.subject(), c.issuer())
                && match verify_self_signature(&self.der, c.public_key().raw) {
                    SignatureCheck::Valid | SignatureCheck::UnsupportedKey => true,
                    SignatureCheck::Invalid | SignatureCheck::Malformed => false,
                }
        })
        .unwrap_or(false)
    }

    /// The SHA-256 digest of the SubjectPublicKeyInfo DER: the value certificate pinning
    /// compares (`set_pinned_public_keys`).
    pub fn public_key_sha256(&self) -> [u8; 32] {
        self.with_parsed(|c| {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, c.public_key().raw);
            <[u8; 32]>::try_from(digest.as_ref()).unwrap_or([0; 32])
        })
        .unwrap_or([0; 32])
    }

    /// The public key's algorithm as Qt's cipher descriptions name it (`RSA`, `ECDSA`,
    /// `Ed25519`).
    pub fn public_key_algorithm_name(&self) -> String {
        self.with_parsed(
            |c| match c.public_key().algorithm.algorithm.to_id_string().as_str() {
                "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => "RSA".to_string(),
                "1.2.840.10045.2.1" => "ECDSA".to_string(),
                "1.3.101.112" => "Ed25519".to_string(),
                "1.3.101.113" => "Ed448".to_string(),
                "1.2.840.10040.4.1" => "DSA".to_string(),
                other => other.to_string(),
            },
        )
        .unwrap_or_default()
    }

    /// The public key as OpenSSL names it, with its size or curve: `RSA 2048`,
    /// `RSA-PSS 2048`, `EC P-256`, `EC secp256k1`, `EC brainpoolP256r1`, `Ed25519`,
    /// `Ed448`, `DSA 2048`; the algorithm's OID for a key type without a name here, and
    /// `EC` followed by the curve's OID for an unnamed curve.
    pub fn public_key_summary(&self) -> String {
        use x509_parser::der_parser::der::parse_der_integer;
        use x509_parser::public_key::RSAPublicKey;
        /// Bits of a big-endian unsigned integer's bytes (leading zeros dropped).
        fn bits(bytes: &[u8]) -> usize {
            let bytes = match bytes.iter().position(|&b| b != 0) {
                Some(first) => bytes.get(first..).unwrap_or_default(),
                None => return 0,
            };
            let top = bytes.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
            (bytes.len() - 1) * 8 + top
        }
        self.with_parsed(|c| {
            let spki = c.public_key();
            let oid = spki.algorithm.algorithm.to_id_string();
            match oid.as_str() {
                "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => {
                    let name = if oid.ends_with(".10") {
                        "RSA-PSS"
                    } else {
                        "RSA"
                    };
                    let size = RSAPublicKey::from_der(&spki.subject_public_key.data)
                        .map_or(0, |(_, key)| bits(key.modulus));
                    format!("{name} {size}")
                }
                "1.2.840.10045.2.1" => {
                    let parameters = spki.algorithm.parameters.as_ref();
                    let curve = parameters
                        .filter(|p| p.tag() == x509_parser::asn1_rs::Tag::Oid)
                        .and_then(|p| p.as_oid().ok())
                        .map(|o| o.to_id_string());
                    if curve.is_none() {
                        // Explicit curve parameters: named by their prime, as OpenSSL
                        // names an explicit curve that is a named one.
                        return parameters
                            .and_then(|p| explicit_curve_name(p.data))
                            .map_or_else(|| "EC".to_string(), |name| format!("EC {name}"));
                    }
                    let name = match curve.as_deref() {
                        Some("1.2.840.10045.3.1.7") => "P-256",
                        Some("1.3.132.0.34") => "P-384",
                        Some("1.3.132.0.35") => "P-521",
                        Some("1.3.132.0.33") => "P-224",
                        Some("1.2.840.10045.3.1.1") => "P-192",
                        Some("1.3.132.0.10") => "secp256k1",
                        Some("1.3.36.3.3.2.8.1.1.7") => "brainpoolP256r1",
                        Some("1.3.36.3.3.2.8.1.1.11") => "brainpoolP384r1",
                        Some("1.3.36.3.3.2.8.1.1.13") => "brainpoolP512r1",
                        Some(other) => return format!("EC {other}"),
                        None => return "EC".to_string(),
                    };
                    format!("EC {name}")
                }
                "1.3.101.112" => "Ed25519".to_string(),
                "1.3.101.113" => "Ed448".to_string(),
                "1.2.840.10040.4.1" => {
                    // The size of a DSA key is that of its prime p, the first of the
                    // parameters (p, q, g).
                    let size = spki
                        .algorithm
                        .parameters
                        .as_ref()
                        .and_then(|p| parse_der_integer(p.data).ok())
                        .and_then(|(_, p)| p.as_slice().ok().map(bits))
                        .unwrap_or(0);
                    format!("DSA {size}")
                }
                other => other.to_string(),
            }
        })
        .unwrap_or_default()
    }

    /// The SHA-256 digest of the DER, lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der).as_ref())
    }

    /// Certificates from every file matching `pattern` (Qt's `fromPath` with
    /// `PatternSyntax::Wildcard`).
    ///
    /// `*`, `?` and `[...]` (`[!...]`) in the file-name part match any run of characters,
    /// any one character and one character of (not of) a set (not across `/`); files that
    /// match are read in name order, and those that hold no certificate are skipped, as in
    /// Qt. A pattern without wildcards, or one that names a file, names that file, whose
    /// errors are returned. An unreadable directory is an error; no match is an empty list.
    pub fn from_path(pattern: impl AsRef<Path>) -> Result<Vec<SslCertificate>, ConfigError> {
        crate::cert::path::certificates_from_path(pattern.as_ref())
    }

    /// Reads a PKCS#12 bundle: key, certificate and CA certificates (Qt's static
    /// `QSslCertificate::importPkcs12`); the same as [`crate::cert::import_pkcs12`].
    pub fn import_pkcs12(
        data: &[u8],
        passphrase: &[u8],
    ) -> Result<crate::cert::Pkcs12Bundle, ConfigError> {
        crate::cert::import_pkcs12(data, passphrase)
    }

    /// The digest of the DER as lowercase hex, without separators.
    pub fn digest_hex(&self, algorithm: DigestAlgorithm) -> String {
        hex(&self.digest(algorithm))
    }

    /// The digest of the DER (Qt's `digest()`).
    pub fn digest(&self, algorithm: DigestAlgorithm) -> Vec<u8> {
        use aws_lc_rs::digest;
        let algorithm = match algorithm {
            DigestAlgorithm::Md5 => {
                use md5::Digest;
                return md5::Md5::digest(&self.der).to_vec();
            }
            DigestAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlgorithm::Sha256 => &digest::SHA256,
            DigestAlgorithm::Sha384 => &digest::SHA384,
            DigestAlgorithm::Sha512 => &digest::SHA512,
        };
        digest::digest(algorithm, &self.der).as_ref().to_vec()
    }

    /// The values of one subject attribute, every occurrence in certificate order (Qt's
    /// `subjectInfo(SubjectInfo)`).
    pub fn subject_info(&self, info: SubjectInfo) -> Vec<String> {
        self.with_parsed(|c| name::values_of(c.subject(), info.oid()))
            .unwrap_or_default()
    }

    /// The values of one issuer attribute (Qt's `issuerInfo(SubjectInfo)`).
    pub fn issuer_info(&self, info: SubjectInfo) -> Vec<String> {
        self.with_parsed(|c| name::values_of(c.issuer(), info.oid()))
            .unwrap_or_default()
    }

    /// The values of a subject attribute named by dotted OID (`2.5.4.3`) or OpenSSL name
    /// (`CN`, `commonName`, `emailAddress`) (Qt's `subjectInfo(QByteArray)`); empty for a
    /// name this library does not know.
    pub fn subject_info_by_oid(&self, attribute: &str) -> Vec<String> {
        match name::resolve_attribute(attribute) {
            Some(oid) => self
                .with_parsed(|c| name::values_of(c.subject(), &oid))
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The values of an issuer attribute named by OID or OpenSSL name (Qt's
    /// `issuerInfo(QByteArray)`).
    pub fn issuer_info_by_oid(&self, attribute: &str) -> Vec<String> {
        match name::resolve_attribute(attribute) {
            Some(oid) => self
                .with_parsed(|c| name::values_of(c.issuer(), &oid))
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The attribute types in the subject, each once: OpenSSL short names (`CN`, `O`,
    /// `emailAddress`) or dotted OIDs (Qt's `subjectInfoAttributes()`).
    pub fn subject_info_attributes(&self) -> Vec<String> {
        self.with_parsed(|c| name::attribute_names(c.subject()))
            .unwrap_or_default()
    }

    /// The attribute types in the issuer (Qt's `issuerInfoAttributes()`).
    pub fn issuer_info_attributes(&self) -> Vec<String> {
        self.with_parsed(|c| name::attribute_names(c.issuer()))
            .unwrap_or_default()
    }

    /// A name for people (Qt's `subjectDisplayName()`): the common name, else the
    /// organization, else the organizational unit, else the first attribute's value.
    pub fn subject_display_name(&self) -> String {
        self.with_parsed(|c| name::display_name(c.subject()))
            .unwrap_or_default()
    }

    /// The issuer's name for people (Qt's `issuerDisplayName()`).
    pub fn issuer_display_name(&self) -> String {
        self.with_parsed(|c| name::display_name(c.issuer()))
            .unwrap_or_default()
    }

    /// The certificate's public key (Qt's `publicKey()`), a [`SslKey`] of type
    /// `PublicKey`; `None` when the key inside does not parse.
    pub fn public_key(&self) -> Option<SslKey> {
        self.with_parsed(|c| SslKey::from_public_key_der(c.public_key().raw).ok())
            .flatten()
    }

    /// The X.509v3 extensions, in certificate order (Qt's `extensions()`).
    pub fn extensions(&self) -> Vec<SslCertificateExtension> {
        self.with_parsed(|c| {
            c.extensions()
                .iter()
                .map(SslCertificateExtension::from_parsed)
                .collect()
        })
        .unwrap_or_default()
    }

    /// A readable dump in the manner of `openssl x509 -noout -text` (Qt's `toText()`):
    /// version, serial number, signature algorithm, issuer, validity, subject, public key
    /// algorithm and size, extensions, signature. Not meant to be parsed.
    pub fn to_text(&self) -> String {
        self.with_parsed(|c| crate::cert::text::dump(c, self.public_key().as_ref()))
            .unwrap_or_default()
    }

    /// Start of validity as RFC 3339 in UTC (`2026-01-01T00:00:00Z`).
    pub fn effective_date_rfc3339(&self) -> String {
        rfc3339(self.effective_date_unix())
    }

    /// End of validity as RFC 3339 in UTC (`2027-01-01T00:00:00Z`).
    pub fn expiry_date_rfc3339(&self) -> String {
        rfc3339(self.expiry_date_unix())
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

/// Seconds since the epoch as a `SystemTime` (before the epoch too: every date X.509 can
/// encode, years 0 to 9999, is within `SystemTime`'s range on the platforms Rust supports).
fn system_time(seconds: i64) -> SystemTime {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    let moved = if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    moved.unwrap_or(UNIX_EPOCH)
}

/// Seconds since the epoch as RFC 3339 UTC; empty if out of `time`'s range (never for a
/// date X.509 can encode).
fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A serial number's magnitude, as OpenSSL keeps it and Qt prints it: DER's sign byte
/// before a first byte of 0x80 or more left out, and a negative serial (which RFC 5280
/// forbids, but a certificate can carry) as its absolute value (round 35: `bf` was
/// printed for -0x41, which Qt prints `41`).
pub(crate) fn serial_magnitude(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    let negative = raw.first().is_some_and(|b| b & 0x80 != 0);
    if !negative {
        // The common case, borrowed: leading zero bytes (DER's sign byte) left out.
        let start = raw
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(raw.len().saturating_sub(1));
        return Cow::Borrowed(raw.get(start..).unwrap_or(raw));
    }
    // Two's complement: invert, add one.
    let mut value: Vec<u8> = raw.iter().map(|b| !b).collect();
    for byte in value.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            break;
        }
    }
    while value.len() > 1 && value.first() == Some(&0) {
        value.remove(0);
    }
    Cow::Owned(value)
}

/// The first DER element of `data` (header and contents), if its header is whole and its
/// length fits in `data`.
fn first_der_element(data: &[u8]) -> Option<&[u8]> {
    use pkcs8::der::{Reader, SliceReader};
    SliceReader::new(data).ok()?.tlv_bytes().ok()
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
        4 => <[u8; 4]>::try_from(raw).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(raw).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// Whether `data` is PEM text rather than DER: it holds a `-----BEGIN ` line and is not
/// one DER SEQUENCE spanning it all (a certificate or key whose names hold that text is
/// still DER, as `openssl x509 -inform DER` reads it).
pub(crate) fn looks_like_pem(data: &[u8]) -> bool {
    !is_one_der_sequence(data) && data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Whether `data` is exactly one DER SEQUENCE header and the bytes its length counts.
fn is_one_der_sequence(data: &[u8]) -> bool {
    use der::{Decode, Reader};
    let Ok(mut reader) = der::SliceReader::new(data) else {
        return false;
    };
    der::Header::decode(&mut reader).is_ok_and(|header| {
        header.tag == der::Tag::Sequence && reader.remaining_len() == header.length
    })
}

/// Reads a file of at most `limit` bytes; a larger file is refused without reading it all.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| ConfigError::io(format!("file `{}`", path.display()), e))?;
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| ConfigError::io(format!("file `{}`", path.display()), e))?;
    if data.len() as u64 > limit {
        return Err(ConfigError::malformed(format!(
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

/// The name of the named curve whose prime the explicit EC parameters `content` (the
/// content of a SpecifiedECDomain SEQUENCE: version, fieldID (fieldType, prime), ...)
/// use; `None` for another curve or parameters that do not read.
fn explicit_curve_name(content: &[u8]) -> Option<&'static str> {
    use x509_parser::asn1_rs::{Any, FromDer};
    let (rest, _version) = Any::from_der(content).ok()?;
    let (_, field) = Any::from_der(rest).ok()?;
    let (prime, _field_type) = Any::from_der(field.data).ok()?;
    let (_, prime) = Any::from_der(prime).ok()?;
    let prime = prime.data;
    let prime = prime.strip_prefix(&[0]).unwrap_or(prime);
    const P256: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff,
    ];
    let p384 = {
        let mut p = [0xffu8; 48];
        // 2^384 - 2^128 - 2^96 + 2^32 - 1
        p[31] = 0xfe;
        p[36..44].fill(0);
        p
    };
    let p521_tail = [0xffu8; 65];
    if prime == P256 {
        Some("P-256")
    } else if prime == p384 {
        Some("P-384")
    } else if prime.len() == 66
        && prime.first() == Some(&0x01)
        && prime.get(1..) == Some(&p521_tail[..])
    {
        Some("P-521")
    } else {
        None
    }
}

/// How many elements the outer SEQUENCE of `der` holds; `None` if it is not one.
fn outer_elements(der: &[u8]) -> Option<usize> {
    use x509_parser::asn1_rs::{Any, FromDer};
    let (_, outer) = Any::from_der(der).ok()?;
    let mut content = outer.data;
    let mut count = 0;
    while !content.is_empty() {
        let (rest, _) = Any::from_der(content).ok()?;
        content = rest;
        count += 1;
        if count > 3 {
            break;
        }
    }
    Some(count)
}

/// A PEM error as text, with the offending line as text rather than a list of bytes
/// (which is how `rustls_pki_types` shows it).
fn pem_error_text(error: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match error {
        Error::MissingSectionEnd { end_marker } => format!(
            "the block has no \"-----END {}-----\" line",
            quoted_excerpt(end_marker, EXCERPT_CHARS)
        ),
        Error::IllegalSectionStart { line } => {
            format!(
                "malformed BEGIN line \"{}\"",
                quoted_excerpt(line, EXCERPT_CHARS)
            )
        }
        other => quoted_excerpt(other.to_string().as_bytes(), 4 * EXCERPT_CHARS),
    }
}

/// The most characters of a file's own text (a PEM label, a line) an error quotes.
pub(crate) const EXCERPT_CHARS: usize = 80;

/// Bytes from a file, as text fit for one line of an error message: trimmed, control
/// characters escaped (no terminal escape sequence or line break passes through), at most
/// `max` characters, "..." marking a cut.
pub(crate) fn quoted_excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
