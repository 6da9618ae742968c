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
    // OpenSSL's FN_SN: the short name of a known type, else the dotted OID; a value of an
    // unknown type (DUMP_UNKNOWN_FIELDS) or of no string type (DUMP_UNKNOWN) as `#` and
    // the hex of its whole encoding (RFC 4514 section 2.4, DUMP_DER); text otherwise.
    match short_name(&oid) {
        Some(short) => match openssl_text(attr.attr_value()) {
            Some(value) => format!("{short}={}", escape(&value)),
            None => format!("{short}=#{}", der_hex(attr)),
        },
        None => format!("{oid}=#{}", der_hex(attr)),
    }
}

/// The hex (upper case) of an attribute value's whole DER encoding.
fn der_hex(attr: &AttributeTypeAndValue<'_>) -> String {
    let value = attr.attr_value();
    let header = &value.header;
    let class = header.class() as u8;
    let tag_byte =
        (class << 6) | (u8::from(header.is_constructed()) << 5) | (header.tag().0 as u8 & 0x1f);
    let content = value.as_bytes();
    let mut der = vec![tag_byte];
    der.extend(der_length(content.len()));
    der.extend_from_slice(content);
    der.iter().map(|b| format!("{b:02X}")).collect()
}

/// A value as OpenSSL reads a string (`ASN1_STRING_to_UTF8`, `X509_NAME_print_ex`'s
/// `tag2nbyte`): a universal UTF8String as UTF-8; a NumericString, PrintableString,
/// TeletexString, IA5String, UTCTime, GeneralizedTime or VisibleString one character per
/// byte (Latin-1); a BMPString as UCS-2 (no surrogates); a UniversalString as UCS-4.
/// `None` for any other value and for one that does not decode.
fn openssl_text(value: &x509_parser::asn1_rs::Any<'_>) -> Option<String> {
    use x509_parser::asn1_rs::{Class, Tag};
    if value.header.class() != Class::Universal {
        return None;
    }
    let data = value.data;
    let code_points = |width: usize| -> Option<String> {
        if !data.len().is_multiple_of(width) {
            return None;
        }
        data.chunks_exact(width)
            .map(|unit| {
                let point = unit.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
                char::from_u32(point)
            })
            .collect()
    };
    match value.tag() {
        Tag::Utf8String => std::str::from_utf8(data).ok().map(str::to_string),
        Tag::NumericString
        | Tag::PrintableString
        | Tag::TeletexString
        | Tag::Ia5String
        | Tag::UtcTime
        | Tag::GeneralizedTime
        | Tag::VisibleString => Some(data.iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString => code_points(2),
        Tag::UniversalString => code_points(4),
        _ => None,
    }
}

/// The attribute types OpenSSL names (the objects of OpenSSL 3.0's `obj_mac.h` under the
/// X.500 attribute types, PKCS #9, the pilot (RFC 1274) and the EV jurisdiction arcs):
/// dotted OID, short name (what `-nameopt RFC2253` prints), long name.
const ATTRIBUTES: [(&str, &str, &str); 122] = [
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
    ("2.5.4.21", "telexNumber", "telexNumber"),
    (
        "2.5.4.22",
        "teletexTerminalIdentifier",
        "teletexTerminalIdentifier",
    ),
    (
        "2.5.4.23",
        "facsimileTelephoneNumber",
        "facsimileTelephoneNumber",
    ),
    ("2.5.4.24", "x121Address", "x121Address"),
    (
        "2.5.4.25",
        "internationaliSDNNumber",
        "internationaliSDNNumber",
    ),
    ("2.5.4.26", "registeredAddress", "registeredAddress"),
    ("2.5.4.27", "destinationIndicator", "destinationIndicator"),
    (
        "2.5.4.28",
        "preferredDeliveryMethod",
        "preferredDeliveryMethod",
    ),
    ("2.5.4.29", "presentationAddress", "presentationAddress"),
    (
        "2.5.4.30",
        "supportedApplicationContext",
        "supportedApplicationContext",
    ),
    ("2.5.4.31", "member", "member"),
    ("2.5.4.32", "owner", "owner"),
    ("2.5.4.33", "roleOccupant", "roleOccupant"),
    ("2.5.4.34", "seeAlso", "seeAlso"),
    ("2.5.4.35", "userPassword", "userPassword"),
    ("2.5.4.36", "userCertificate", "userCertificate"),
    ("2.5.4.37", "cACertificate", "cACertificate"),
    (
        "2.5.4.38",
        "authorityRevocationList",
        "authorityRevocationList",
    ),
    (
        "2.5.4.39",
        "certificateRevocationList",
        "certificateRevocationList",
    ),
    ("2.5.4.40", "crossCertificatePair", "crossCertificatePair"),
    ("2.5.4.41", "name", "name"),
    ("2.5.4.42", "GN", "givenName"),
    ("2.5.4.43", "initials", "initials"),
    ("2.5.4.44", "generationQualifier", "generationQualifier"),
    ("2.5.4.45", "x500UniqueIdentifier", "x500UniqueIdentifier"),
    ("2.5.4.46", "dnQualifier", "dnQualifier"),
    ("2.5.4.47", "enhancedSearchGuide", "enhancedSearchGuide"),
    ("2.5.4.48", "protocolInformation", "protocolInformation"),
    ("2.5.4.49", "distinguishedName", "distinguishedName"),
    ("2.5.4.50", "uniqueMember", "uniqueMember"),
    ("2.5.4.51", "houseIdentifier", "houseIdentifier"),
    ("2.5.4.52", "supportedAlgorithms", "supportedAlgorithms"),
    ("2.5.4.53", "deltaRevocationList", "deltaRevocationList"),
    ("2.5.4.54", "dmdName", "dmdName"),
    ("2.5.4.65", "pseudonym", "pseudonym"),
    ("2.5.4.72", "role", "role"),
    (
        "2.5.4.97",
        "organizationIdentifier",
        "organizationIdentifier",
    ),
    ("2.5.4.98", "c3", "countryCode3c"),
    ("2.5.4.99", "n3", "countryCode3n"),
    ("2.5.4.100", "dnsName", "dnsName"),
    ("1.2.840.113549.1.9.1", "emailAddress", "emailAddress"),
    (
        "1.2.840.113549.1.9.2",
        "unstructuredName",
        "unstructuredName",
    ),
    ("1.2.840.113549.1.9.3", "contentType", "contentType"),
    ("1.2.840.113549.1.9.4", "messageDigest", "messageDigest"),
    ("1.2.840.113549.1.9.5", "signingTime", "signingTime"),
    (
        "1.2.840.113549.1.9.6",
        "countersignature",
        "countersignature",
    ),
    (
        "1.2.840.113549.1.9.7",
        "challengePassword",
        "challengePassword",
    ),
    (
        "1.2.840.113549.1.9.8",
        "unstructuredAddress",
        "unstructuredAddress",
    ),
    (
        "1.2.840.113549.1.9.9",
        "extendedCertificateAttributes",
        "extendedCertificateAttributes",
    ),
    ("1.2.840.113549.1.9.14", "extReq", "Extension Request"),
    ("1.2.840.113549.1.9.15", "SMIME-CAPS", "S/MIME Capabilities"),
    ("1.2.840.113549.1.9.16", "SMIME", "S/MIME"),
    ("1.2.840.113549.1.9.20", "friendlyName", "friendlyName"),
    ("1.2.840.113549.1.9.21", "localKeyID", "localKeyID"),
    ("0.9.2342.19200300.100.1.1", "UID", "userId"),
    (
        "0.9.2342.19200300.100.1.2",
        "textEncodedORAddress",
        "textEncodedORAddress",
    ),
    ("0.9.2342.19200300.100.1.3", "mail", "rfc822Mailbox"),
    ("0.9.2342.19200300.100.1.4", "info", "info"),
    (
        "0.9.2342.19200300.100.1.5",
        "favouriteDrink",
        "favouriteDrink",
    ),
    ("0.9.2342.19200300.100.1.6", "roomNumber", "roomNumber"),
    ("0.9.2342.19200300.100.1.7", "photo", "photo"),
    ("0.9.2342.19200300.100.1.8", "userClass", "userClass"),
    ("0.9.2342.19200300.100.1.9", "host", "host"),
    ("0.9.2342.19200300.100.1.10", "manager", "manager"),
    (
        "0.9.2342.19200300.100.1.11",
        "documentIdentifier",
        "documentIdentifier",
    ),
    (
        "0.9.2342.19200300.100.1.12",
        "documentTitle",
        "documentTitle",
    ),
    (
        "0.9.2342.19200300.100.1.13",
        "documentVersion",
        "documentVersion",
    ),
    (
        "0.9.2342.19200300.100.1.14",
        "documentAuthor",
        "documentAuthor",
    ),
    (
        "0.9.2342.19200300.100.1.15",
        "documentLocation",
        "documentLocation",
    ),
    (
        "0.9.2342.19200300.100.1.20",
        "homeTelephoneNumber",
        "homeTelephoneNumber",
    ),
    ("0.9.2342.19200300.100.1.21", "secretary", "secretary"),
    ("0.9.2342.19200300.100.1.22", "otherMailbox", "otherMailbox"),
    (
        "0.9.2342.19200300.100.1.23",
        "lastModifiedTime",
        "lastModifiedTime",
    ),
    (
        "0.9.2342.19200300.100.1.24",
        "lastModifiedBy",
        "lastModifiedBy",
    ),
    ("0.9.2342.19200300.100.1.25", "DC", "domainComponent"),
    ("0.9.2342.19200300.100.1.26", "aRecord", "aRecord"),
    (
        "0.9.2342.19200300.100.1.27",
        "pilotAttributeType27",
        "pilotAttributeType27",
    ),
    ("0.9.2342.19200300.100.1.28", "mXRecord", "mXRecord"),
    ("0.9.2342.19200300.100.1.29", "nSRecord", "nSRecord"),
    ("0.9.2342.19200300.100.1.30", "sOARecord", "sOARecord"),
    ("0.9.2342.19200300.100.1.31", "cNAMERecord", "cNAMERecord"),
    (
        "0.9.2342.19200300.100.1.37",
        "associatedDomain",
        "associatedDomain",
    ),
    (
        "0.9.2342.19200300.100.1.38",
        "associatedName",
        "associatedName",
    ),
    (
        "0.9.2342.19200300.100.1.39",
        "homePostalAddress",
        "homePostalAddress",
    ),
    (
        "0.9.2342.19200300.100.1.40",
        "personalTitle",
        "personalTitle",
    ),
    (
        "0.9.2342.19200300.100.1.41",
        "mobileTelephoneNumber",
        "mobileTelephoneNumber",
    ),
    (
        "0.9.2342.19200300.100.1.42",
        "pagerTelephoneNumber",
        "pagerTelephoneNumber",
    ),
    (
        "0.9.2342.19200300.100.1.43",
        "friendlyCountryName",
        "friendlyCountryName",
    ),
    ("0.9.2342.19200300.100.1.44", "uid", "uniqueIdentifier"),
    (
        "0.9.2342.19200300.100.1.45",
        "organizationalStatus",
        "organizationalStatus",
    ),
    ("0.9.2342.19200300.100.1.46", "janetMailbox", "janetMailbox"),
    (
        "0.9.2342.19200300.100.1.47",
        "mailPreferenceOption",
        "mailPreferenceOption",
    ),
    ("0.9.2342.19200300.100.1.48", "buildingName", "buildingName"),
    ("0.9.2342.19200300.100.1.49", "dSAQuality", "dSAQuality"),
    (
        "0.9.2342.19200300.100.1.50",
        "singleLevelQuality",
        "singleLevelQuality",
    ),
    (
        "0.9.2342.19200300.100.1.51",
        "subtreeMinimumQuality",
        "subtreeMinimumQuality",
    ),
    (
        "0.9.2342.19200300.100.1.52",
        "subtreeMaximumQuality",
        "subtreeMaximumQuality",
    ),
    (
        "0.9.2342.19200300.100.1.53",
        "personalSignature",
        "personalSignature",
    ),
    ("0.9.2342.19200300.100.1.54", "dITRedirect", "dITRedirect"),
    ("0.9.2342.19200300.100.1.55", "audio", "audio"),
    (
        "0.9.2342.19200300.100.1.56",
        "documentPublisher",
        "documentPublisher",
    ),
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

/// An attribute value as text, as Qt reads it (`ASN1_STRING_to_UTF8`): see
/// [`openssl_text`]. `None` for values that are not strings or do not decode.
pub(crate) fn attribute_text(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    openssl_text(attr.attr_value())
}

/// Whether `a` and `b` are the same name as OpenSSL compares names (`X509_NAME_cmp`, which
/// Qt's `isSelfSigned` and OpenSSL's issuer search use): equal encodings, or equal
/// [`canonical`] forms. Values OpenSSL cannot decode (and so never compares) are compared
/// by their bytes.
pub(crate) fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || canonical(a) == canonical(b)
}

/// A name in OpenSSL's canonical form (`x509_name_canon`), as bytes to compare or key on:
/// the RDNs in order; in each, its attributes as a set (sorted: OpenSSL's form is DER, where
/// a SET OF is sorted), each its type and value. A text value is compared as OpenSSL's
/// `asn1_string_canon` leaves it ([`canonical_text`]) whatever its string type; any other
/// value, or one that does not decode, as its class, tag and bytes.
pub(crate) fn canonical(name: &X509Name<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.as_raw().len());
    for rdn in name.iter() {
        let mut attributes: Vec<Vec<u8>> = rdn.iter().map(canonical_attribute).collect();
        attributes.sort_unstable();
        // An RDN's mark; an attribute starts with a length below 2^24 (a 0 byte).
        out.push(0x31);
        for attribute in attributes {
            out.extend_from_slice(&attribute);
        }
    }
    out
}

fn canonical_attribute(attr: &AttributeTypeAndValue<'_>) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    put(&mut out, attr.attr_type().as_bytes());
    let value = attr.attr_value();
    match canonical_value_text(value) {
        Some(text) => {
            out.push(0x0c);
            put(&mut out, canonical_text(&text).as_bytes());
        }
        None => {
            out.push(value.header.class() as u8);
            out.extend_from_slice(&value.tag().0.to_be_bytes());
            put(&mut out, value.data);
        }
    }
    out
}

/// A value as the text OpenSSL canonicalizes: the string types of `ASN1_MASK_CANON`
/// (UTF8String, BMPString, UniversalString, PrintableString, TeletexString, IA5String,
/// VisibleString) read as [`openssl_text`] reads them. `None` for any other value and
/// for one that does not decode.
fn canonical_value_text(value: &x509_parser::asn1_rs::Any<'_>) -> Option<String> {
    use x509_parser::asn1_rs::Tag;
    match value.tag() {
        Tag::Utf8String
        | Tag::BmpString
        | Tag::UniversalString
        | Tag::PrintableString
        | Tag::TeletexString
        | Tag::Ia5String
        | Tag::VisibleString => openssl_text(value),
        _ => None,
    }
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

/// Whether [`escape_controls`] escapes `c`: the control characters, and the format
/// characters (Unicode category Cf: the bidirectional controls, zero-width spaces and
/// joiners, the word joiner, BOM, soft hyphen, the invisible tag characters) and the line
/// and paragraph separators (U+2028, U+2029), which a terminal shows as nothing or as a
/// break (round 37, review L2: `localhost\u{200B}` showed as `localhost`).
fn escaped_on_terminals(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// `text` with each control character (ESC, BEL, CR, LF, DEL, the C1 range) as `\\XX`
/// per byte of its UTF-8 form, as OpenSSL prints names: for showing what a peer chose on a
/// terminal (a certificate's names, a client's SNI) without its escape sequences or
/// forged lines. The Unicode format characters and separators are escaped the same way
/// (see `escaped_on_terminals`): they are invisible, and the bidirectional controls among
/// them reorder what a terminal shows after them ("Trojan Source"). Text without either
/// is returned as it is.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(escaped_on_terminals) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped_on_terminals(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
