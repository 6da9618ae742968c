//! `SslCertificateExtension`: one X.509v3 extension, named and decoded to readable text
//! the way `openssl x509 -text` shows it.

use std::fmt::Write;

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension, X509Extension};

use crate::cert::name::rfc4514;

/// One certificate extension (Qt's `QSslCertificateExtension`).
///
/// Qt gives the value as a `QVariant` (a map, list or string); here it is text in the
/// form `openssl x509 -text` prints (`CA:TRUE, pathlen:0`, `DNS:example.com, IP
/// Address:127.0.0.1`), with one line per entry for list-like extensions (authority
/// information access, CRL distribution points, certificate policies). The raw DER of the
/// value is there too, for anything the text does not carry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SslCertificateExtension {
    oid: String,
    name: String,
    value: String,
    critical: bool,
    supported: bool,
    raw: Vec<u8>,
}

impl SslCertificateExtension {
    /// The extension's dotted OID (`2.5.29.19`).
    pub fn oid(&self) -> &str {
        &self.oid
    }

    /// OpenSSL's short name (`basicConstraints`, `subjectAltName`), or the dotted OID for
    /// an extension without one, as Qt's `name()`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as readable text; for an extension this library does not decode, the
    /// colon-separated hex of its DER value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the extension is marked critical.
    pub fn is_critical(&self) -> bool {
        self.critical
    }

    /// Whether this library decodes the value (Qt's `isSupported()`): when true, `value()`
    /// is decoded text whose form stays stable across versions.
    pub fn is_supported(&self) -> bool {
        self.supported
    }

    /// The DER of the extension's value (the content of `extnValue`).
    pub fn raw_value(&self) -> &[u8] {
        &self.raw
    }

    /// The extension as parsed by x509-parser.
    pub(crate) fn from_parsed(ext: &X509Extension<'_>) -> SslCertificateExtension {
        let oid = ext.oid.to_id_string();
        let name = extension_name(&oid).map_or_else(|| oid.clone(), str::to_string);
        let decoded = decode(ext.parsed_extension());
        SslCertificateExtension {
            supported: decoded.is_some(),
            value: decoded.unwrap_or_else(|| colon_hex(ext.value, false)),
            oid,
            name,
            critical: ext.critical,
            raw: ext.value.to_vec(),
        }
    }
}

/// OpenSSL's short name for an extension OID.
pub(crate) fn extension_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.29.19" => "basicConstraints",
        "2.5.29.15" => "keyUsage",
        "2.5.29.37" => "extendedKeyUsage",
        "2.5.29.17" => "subjectAltName",
        "2.5.29.18" => "issuerAltName",
        "2.5.29.35" => "authorityKeyIdentifier",
        "2.5.29.14" => "subjectKeyIdentifier",
        "1.3.6.1.5.5.7.1.1" => "authorityInfoAccess",
        "1.3.6.1.5.5.7.1.11" => "subjectInfoAccess",
        "2.5.29.31" => "crlDistributionPoints",
        "2.5.29.32" => "certificatePolicies",
        "2.5.29.30" => "nameConstraints",
        "2.5.29.36" => "policyConstraints",
        "2.5.29.33" => "policyMappings",
        "2.5.29.54" => "inhibitAnyPolicy",
        "1.3.6.1.5.5.7.1.24" => "tlsfeature",
        "1.3.6.1.4.1.11129.2.4.2" => "ct_precert_scts",
        "1.3.6.1.4.1.11129.2.4.3" => "ct_precert_poison",
        "2.16.840.1.113730.1.1" => "nsCertType",
        "2.16.840.1.113730.1.13" => "nsComment",
        _ => return None,
    })
}

/// The heading `openssl x509 -text` gives an extension (`X509v3 Basic Constraints`).
pub(crate) fn extension_title(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.29.19" => "X509v3 Basic Constraints",
        "2.5.29.15" => "X509v3 Key Usage",
        "2.5.29.37" => "X509v3 Extended Key Usage",
        "2.5.29.17" => "X509v3 Subject Alternative Name",
        "2.5.29.18" => "X509v3 Issuer Alternative Name",
        "2.5.29.35" => "X509v3 Authority Key Identifier",
        "2.5.29.14" => "X509v3 Subject Key Identifier",
        "1.3.6.1.5.5.7.1.1" => "Authority Information Access",
        "2.5.29.31" => "X509v3 CRL Distribution Points",
        "2.5.29.32" => "X509v3 Certificate Policies",
        "2.5.29.30" => "X509v3 Name Constraints",
        _ => return None,
    })
}

/// The text of the extensions we decode; `None` for the rest.
fn decode(parsed: &ParsedExtension<'_>) -> Option<String> {
    Some(match parsed {
        ParsedExtension::BasicConstraints(bc) => match (bc.ca, bc.path_len_constraint) {
            (true, Some(len)) => format!("CA:TRUE, pathlen:{len}"),
            (true, None) => "CA:TRUE".to_string(),
            (false, _) => "CA:FALSE".to_string(),
        },
        ParsedExtension::KeyUsage(ku) => {
            let flags = [
                (ku.digital_signature(), "Digital Signature"),
                (ku.non_repudiation(), "Non Repudiation"),
                (ku.key_encipherment(), "Key Encipherment"),
                (ku.data_encipherment(), "Data Encipherment"),
                (ku.key_agreement(), "Key Agreement"),
                (ku.key_cert_sign(), "Certificate Sign"),
                (ku.crl_sign(), "CRL Sign"),
                (ku.encipher_only(), "Encipher Only"),
                (ku.decipher_only(), "Decipher Only"),
            ];
            join(
                flags
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| (*n).to_string()),
            )
        }
        ParsedExtension::ExtendedKeyUsage(eku) => {
            let flags = [
                (eku.server_auth, "TLS Web Server Authentication"),
                (eku.client_auth, "TLS Web Client Authentication"),
                (eku.code_signing, "Code Signing"),
                (eku.email_protection, "E-mail Protection"),
                (eku.time_stamping, "Time Stamping"),
                (eku.ocsp_signing, "OCSP Signing"),
                (eku.any, "Any Extended Key Usage"),
            ];
            let named = flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| (*n).to_string());
            join(named.chain(eku.other.iter().map(|o| o.to_id_string())))
        }
        ParsedExtension::SubjectAlternativeName(san) => {
            join(san.general_names.iter().map(general_name))
        }
        ParsedExtension::IssuerAlternativeName(ian) => {
            join(ian.general_names.iter().map(general_name))
        }
        ParsedExtension::SubjectKeyIdentifier(id) => colon_hex(id.0, true),
        ParsedExtension::AuthorityKeyIdentifier(aki) => {
            let mut parts = Vec::new();
            // OpenSSL 3 prints the key identifier bare (1.1 prefixed it with `keyid:`).
            if let Some(id) = &aki.key_identifier {
                parts.push(colon_hex(id.0, true));
            }
            for name in aki.authority_cert_issuer.iter().flatten() {
                parts.push(general_name(name));
            }
            if let Some(serial) = aki.authority_cert_serial {
                parts.push(format!("serial:{}", colon_hex(serial, true)));
            }
            parts.join("\n")
        }
        ParsedExtension::AuthorityInfoAccess(aia) => aia
            .accessdescs
            .iter()
            .map(|d| {
                let method = match d.access_method.to_id_string().as_str() {
                    "1.3.6.1.5.5.7.48.1" => "OCSP".to_string(),
                    "1.3.6.1.5.5.7.48.2" => "CA Issuers".to_string(),
                    other => other.to_string(),
                };
                format!("{method} - {}", general_name(&d.access_location))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        ParsedExtension::CRLDistributionPoints(points) => {
            let mut lines = Vec::new();
            for point in &points.points {
                match &point.distribution_point {
                    Some(DistributionPointName::FullName(names)) => {
                        lines.push("Full Name:".to_string());
                        lines.extend(names.iter().map(|n| format!("  {}", general_name(n))));
                    }
                    Some(DistributionPointName::NameRelativeToCRLIssuer(_)) => {
                        lines.push("Relative Name".to_string());
                    }
                    None => {}
                }
                for issuer in point.crl_issuer.iter().flatten() {
                    lines.push(format!("CRL Issuer: {}", general_name(issuer)));
                }
            }
            lines.join("\n")
        }
        ParsedExtension::CertificatePolicies(policies) => policies
            .iter()
            .map(|p| format!("Policy: {}", policy_name(&p.policy_id.to_id_string())))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    })
}

/// OpenSSL's spelling of a general name (`DNS:x`, `IP Address:1.2.3.4`, `URI:...`), with
/// control characters in the peer's text escaped (`\0A`, as `to_text` does for names;
/// round 35: a LF in a dNSName forged a line of the dump).
pub(crate) fn general_name(name: &GeneralName<'_>) -> String {
    use crate::cert::name::escape_controls;
    match name {
        GeneralName::DNSName(n) => format!("DNS:{}", escape_controls(n)),
        GeneralName::RFC822Name(n) => format!("email:{}", escape_controls(n)),
        GeneralName::URI(n) => format!("URI:{}", escape_controls(n)),
        GeneralName::IPAddress(raw) => format!("IP Address:{}", ip_text(raw)),
        GeneralName::DirectoryName(dn) => format!("DirName:{}", rfc4514(dn)),
        GeneralName::RegisteredID(oid) => format!("Registered ID:{}", oid.to_id_string()),
        GeneralName::OtherName(oid, _) => format!("othername:{}", oid.to_id_string()),
        GeneralName::X400Address(_) => "X400Name:<unsupported>".to_string(),
        GeneralName::EDIPartyName(_) => "EdiPartyName:<unsupported>".to_string(),
        GeneralName::Invalid(_, raw) => format!("<invalid {}>", colon_hex(raw, true)),
    }
}

/// An IP address as OpenSSL prints it: dotted IPv4, IPv6 as eight uppercase hex groups
/// without compression (`0:0:0:0:0:0:0:1`).
fn ip_text(raw: &[u8]) -> String {
    match raw.len() {
        4 => raw.iter().map(u8::to_string).collect::<Vec<_>>().join("."),
        16 => raw
            .chunks_exact(2)
            .filter_map(|c| <[u8; 2]>::try_from(c).ok())
            .map(|c| format!("{:X}", u16::from_be_bytes(c)))
            .collect::<Vec<_>>()
            .join(":"),
        _ => format!("<invalid {}>", colon_hex(raw, true)),
    }
}

fn policy_name(oid: &str) -> String {
    match oid {
        "2.5.29.32.0" => "X509v3 Any Policy".to_string(),
        other => other.to_string(),
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// Hex bytes separated by colons (`AB:CD:EF`), uppercase as OpenSSL prints key
/// identifiers, or lowercase.
pub(crate) fn colon_hex(bytes: &[u8], upper: bool) -> String {
    let mut out = String::with_capacity(bytes.len().saturating_mul(3));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = if upper {
            write!(out, "{b:02X}")
        } else {
            write!(out, "{b:02x}")
        };
    }
    out
}
