//! Distinguished names as RFC 4514 strings, the form `openssl x509 -nameopt RFC2253` prints.

use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The RFC 4514 string of a name: RDNs in reverse order, joined by `,`; attributes of one
/// RDN joined by `+`; OpenSSL's short names (`CN`, `O`, `emailAddress`, ...), dotted OIDs
/// with a `#`-hex value for types it does not name.
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = Vec::new();
    for rdn in name.iter() {
        // OpenSSL's DN_REV reverses every attribute, inside a multi-valued RDN too.
        let mut parts: Vec<String> = rdn.iter().map(attribute).collect();
        parts.reverse();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

fn attribute(attr: &AttributeTypeAndValue<'_>) -> String {
    let oid = attr.attr_type().to_id_string();
    let short = short_name(&oid);
    match (short, attr.as_str()) {
        (Some(short), Ok(value)) => format!("{short}={}", escape(value)),
        _ => {
            // RFC 4514 §2.4 (OpenSSL's DUMP_DER): `#` and the hex of the whole encoding.
            let value = attr.attr_value();
            let header = &value.header;
            let class = header.class() as u8;
            let tag_byte = (class << 6)
                | (u8::from(header.is_constructed()) << 5)
                | (header.tag().0 as u8 & 0x1f);
            let content = value.as_bytes();
            let mut der = vec![tag_byte];
            der.extend(der_length(content.len()));
            der.extend_from_slice(content);
            let hex: String = der.iter().map(|b| format!("{b:02X}")).collect();
            format!("{oid}=#{hex}")
        }
    }
}

/// OpenSSL's short names for the attribute types it knows.
pub(crate) fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "2.5.4.46" => "dnQualifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// A DER length.
fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
            out.push(c);
        } else if c.is_control() || !c.is_ascii() {
            // OpenSSL's ESC_CTRL and ESC_MSB: each byte of the UTF-8 form as `\XX`.
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A distinguished-name attribute Qt names (Qt's `QSslCertificate::SubjectInfo`), for
/// [`SslCertificate::subject_info`](crate::SslCertificate::subject_info) and
/// [`SslCertificate::issuer_info`](crate::SslCertificate::issuer_info).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubjectInfo {
    /// `O` (2.5.4.10).
    Organization,
    /// `CN` (2.5.4.3).
    CommonName,
    /// `L` (2.5.4.7).
    LocalityName,
    /// `OU` (2.5.4.11).
    OrganizationalUnitName,
    /// `C` (2.5.4.6).
    CountryName,
    /// `ST` (2.5.4.8).
    StateOrProvinceName,
    /// `dnQualifier` (2.5.4.46).
    DistinguishedNameQualifier,
    /// `serialNumber` (2.5.4.5): the subject's serial number, not the certificate's.
    SerialNumber,
    /// `emailAddress` (1.2.840.113549.1.9.1).
    EmailAddress,
}

impl SubjectInfo {
    /// The attribute's dotted OID.
    pub fn oid(self) -> &'static str {
        match self {
            SubjectInfo::Organization => "2.5.4.10",
            SubjectInfo::CommonName => "2.5.4.3",
            SubjectInfo::LocalityName => "2.5.4.7",
            SubjectInfo::OrganizationalUnitName => "2.5.4.11",
            SubjectInfo::CountryName => "2.5.4.6",
            SubjectInfo::StateOrProvinceName => "2.5.4.8",
            SubjectInfo::DistinguishedNameQualifier => "2.5.4.46",
            SubjectInfo::SerialNumber => "2.5.4.5",
            SubjectInfo::EmailAddress => "1.2.840.113549.1.9.1",
        }
    }
}

/// The values of every attribute of type `oid` in `name`, in encoding order.
pub(crate) fn values_of(name: &X509Name<'_>, oid: &str) -> Vec<String> {
    name.iter_attributes()
        .filter(|a| a.attr_type().to_id_string() == oid)
        .filter_map(attribute_text)
        .collect()
}

/// The attribute types present in `name`, each once, in encoding order: OpenSSL's short
/// name where it has one (`CN`, `O`, `emailAddress`), else the dotted OID (Qt's
/// `subjectInfoAttributes()`).
pub(crate) fn attribute_names(name: &X509Name<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for attr in name.iter_attributes() {
        let oid = attr.attr_type().to_id_string();
        let label = short_name(&oid).map(str::to_string).unwrap_or(oid);
        if !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// Qt's display name: the first common name, else organization, else organizational unit;
/// failing those, the first attribute with a text value; else empty.
pub(crate) fn display_name(name: &X509Name<'_>) -> String {
    for info in [
        SubjectInfo::CommonName,
        SubjectInfo::Organization,
        SubjectInfo::OrganizationalUnitName,
    ] {
        if let Some(first) = values_of(name, info.oid()).into_iter().next() {
            return first;
        }
    }
    name.iter_attributes()
        .find_map(attribute_text)
        .unwrap_or_default()
}

/// The dotted OID for an attribute given as a dotted OID, an OpenSSL short name (`CN`) or
/// long name (`commonName`); `None` for a name we do not know.
pub(crate) fn resolve_attribute(attribute: &str) -> Option<String> {
    if !attribute.is_empty() && attribute.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Some(attribute.to_string());
    }
    const LONG: [(&str, &str); 12] = [
        ("commonName", "2.5.4.3"),
        ("surname", "2.5.4.4"),
        ("countryName", "2.5.4.6"),
        ("localityName", "2.5.4.7"),
        ("stateOrProvinceName", "2.5.4.8"),
        ("streetAddress", "2.5.4.9"),
        ("organizationName", "2.5.4.10"),
        ("organizationalUnitName", "2.5.4.11"),
        ("givenName", "2.5.4.42"),
        ("domainComponent", "0.9.2342.19200300.100.1.25"),
        ("userId", "0.9.2342.19200300.100.1.1"),
        ("email", "1.2.840.113549.1.9.1"),
    ];
    if let Some((_, oid)) = LONG.iter().find(|(long, _)| *long == attribute) {
        return Some((*oid).to_string());
    }
    const KNOWN: [&str; 15] = [
        "2.5.4.3",
        "2.5.4.4",
        "2.5.4.5",
        "2.5.4.6",
        "2.5.4.7",
        "2.5.4.8",
        "2.5.4.9",
        "2.5.4.10",
        "2.5.4.11",
        "2.5.4.12",
        "2.5.4.42",
        "2.5.4.46",
        "1.2.840.113549.1.9.1",
        "0.9.2342.19200300.100.1.25",
        "0.9.2342.19200300.100.1.1",
    ];
    KNOWN
        .iter()
        .find(|oid| short_name(oid) == Some(attribute))
        .map(|oid| (*oid).to_string())
}

/// An attribute value as text, for every ASN.1 string type certificates use: the UTF-8
/// family as is, BMPString (UTF-16BE), UniversalString (UTF-32BE), TeletexString as
/// Latin-1. `None` for values that are not strings or do not decode.
pub(crate) fn attribute_text(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    use x509_parser::asn1_rs::Tag;
    let value = attr.attr_value();
    let data = value.data;
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(data).ok().map(str::to_string),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Option<Vec<u16>> = data
                .chunks_exact(2)
                .map(|c| <[u8; 2]>::try_from(c).ok().map(u16::from_be_bytes))
                .collect();
            String::from_utf16(&units?).ok()
        }
        Tag::UniversalString => {
            if data.len() % 4 != 0 {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| {
                    <[u8; 4]>::try_from(c)
                        .ok()
                        .and_then(|b| char::from_u32(u32::from_be_bytes(b)))
                })
                .collect()
        }
        Tag::TeletexString => Some(data.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}
