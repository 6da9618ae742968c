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

/// The attribute types OpenSSL names (its `obj_mac.h`): dotted OID, short name, long name.
const ATTRIBUTES: [(&str, &str, &str); 35] = [
    ("2.5.4.3", "CN", "commonName"),
    ("2.5.4.4", "SN", "surname"),
    ("2.5.4.5", "serialNumber", "serialNumber"),
    ("2.5.4.6", "C", "countryName"),
    ("2.5.4.7", "L", "localityName"),
    ("2.5.4.8", "ST", "stateOrProvinceName"),
    ("2.5.4.9", "street", "streetAddress"),
    ("2.5.4.10", "O", "organizationName"),
    ("2.5.4.11", "OU", "organizationalUnitName"),
    ("2.5.4.12", "title", "title"),
    ("2.5.4.13", "description", "description"),
    ("2.5.4.14", "searchGuide", "searchGuide"),
    ("2.5.4.15", "businessCategory", "businessCategory"),
    ("2.5.4.16", "postalAddress", "postalAddress"),
    ("2.5.4.17", "postalCode", "postalCode"),
    ("2.5.4.18", "postOfficeBox", "postOfficeBox"),
    (
        "2.5.4.19",
        "physicalDeliveryOfficeName",
        "physicalDeliveryOfficeName",
    ),
    ("2.5.4.20", "telephoneNumber", "telephoneNumber"),
    ("2.5.4.41", "name", "name"),
    ("2.5.4.42", "GN", "givenName"),
    ("2.5.4.43", "initials", "initials"),
    ("2.5.4.44", "generationQualifier", "generationQualifier"),
    ("2.5.4.45", "x500UniqueIdentifier", "x500UniqueIdentifier"),
    ("2.5.4.46", "dnQualifier", "dnQualifier"),
    ("2.5.4.65", "pseudonym", "pseudonym"),
    ("2.5.4.72", "role", "role"),
    (
        "2.5.4.97",
        "organizationIdentifier",
        "organizationIdentifier",
    ),
    ("1.2.840.113549.1.9.1", "emailAddress", "emailAddress"),
    (
        "1.2.840.113549.1.9.2",
        "unstructuredName",
        "unstructuredName",
    ),
    (
        "1.2.840.113549.1.9.8",
        "unstructuredAddress",
        "unstructuredAddress",
    ),
    ("0.9.2342.19200300.100.1.25", "DC", "domainComponent"),
    ("0.9.2342.19200300.100.1.1", "UID", "userId"),
    (
        "1.3.6.1.4.1.311.60.2.1.1",
        "jurisdictionL",
        "jurisdictionLocalityName",
    ),
    (
        "1.3.6.1.4.1.311.60.2.1.2",
        "jurisdictionST",
        "jurisdictionStateOrProvinceName",
    ),
    (
        "1.3.6.1.4.1.311.60.2.1.3",
        "jurisdictionC",
        "jurisdictionCountryName",
    ),
];

/// OpenSSL's short name for an attribute type it knows.
pub(crate) fn short_name(oid: &str) -> Option<&'static str> {
    ATTRIBUTES
        .iter()
        .find(|(known, _, _)| *known == oid)
        .map(|(_, short, _)| *short)
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
    // `email`: the name Qt's documentation uses for `emailAddress`.
    if attribute == "email" {
        return Some("1.2.840.113549.1.9.1".to_string());
    }
    ATTRIBUTES
        .iter()
        .find(|(_, short, long)| *short == attribute || *long == attribute)
        .map(|(oid, _, _)| (*oid).to_string())
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

/// Whether `a` and `b` are the same name as OpenSSL compares names (`X509_NAME_cmp`, which
/// Qt's `isSelfSigned` and OpenSSL's issuer search use): equal encodings, or equal
/// [`canonical`] forms.
pub(crate) fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || canonical(a) == canonical(b)
}

/// A name in OpenSSL's canonical form (`x509_name_canon`), as bytes to compare or key on:
/// the RDNs in order, each attribute's type and value; a text value (the UTF-8, BMP,
/// Universal, Printable, Teletex, IA5 and Visible strings) as UTF-8 with ASCII case folded,
/// leading and trailing white space dropped and inner runs of it made one space, whatever
/// its string type; any other value as its tag and bytes.
pub(crate) fn canonical(name: &X509Name<'_>) -> Vec<u8> {
    use x509_parser::asn1_rs::Tag;
    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::with_capacity(name.as_raw().len());
    for rdn in name.iter() {
        // An RDN's mark; an attribute starts with a length below 2^24 (a 0 byte).
        out.push(0x31);
        for attr in rdn.iter() {
            put(&mut out, attr.attr_type().as_bytes());
            let value = attr.attr_value();
            let text = match value.tag() {
                Tag::Utf8String
                | Tag::BmpString
                | Tag::UniversalString
                | Tag::PrintableString
                | Tag::TeletexString
                | Tag::Ia5String
                | Tag::VisibleString => attribute_text(attr),
                _ => None,
            };
            match text {
                Some(text) => {
                    out.push(0x0c);
                    put(&mut out, canonical_text(&text).as_bytes());
                }
                None => {
                    out.extend_from_slice(&value.tag().0.to_be_bytes());
                    put(&mut out, value.data);
                }
            }
        }
    }
    out
}

/// OpenSSL's `asn1_string_canon` on UTF-8 text: white space (space, `\t`, `\n`, `\v`, `\f`,
/// `\r`) trimmed at both ends and each inner run of it made one space, ASCII letters in
/// lower case, everything else as it is.
fn canonical_text(text: &str) -> String {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r');
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.trim_matches(is_space).chars() {
        if is_space(c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_space = false;
        }
    }
    out
}
