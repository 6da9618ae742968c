//! Name constraints (RFC 5280 §4.2.1.10), applied to the collector's path as OpenSSL's
//! `check_name_constraints` applies them, so that no other error of a chain can hide a
//! violation: webpki checks name constraints only on a path it accepts up to an anchor,
//! and an application that ignores, say, the untrusted root of a private CA must still
//! see a leaf its intermediate was not allowed to issue.
//!
//! The rules (OpenSSL 3's `NAME_CONSTRAINTS_check` and `nc_match`):
//! - every certificate of the path except a self-issued CA below the top is checked
//!   against the constraints of every certificate above it, the trust anchor included;
//! - its names: the subject (a directoryName, when not empty), the emailAddress
//!   attributes of the subject (rfc822Name), the subject alternative names; for the leaf
//!   without a dNSName, each common name that could match a host name (dNSName: we check
//!   single-label names as well, which OpenSSL skips but our host matching accepts);
//! - a name must match one permitted subtree of its type, when there are any of its type,
//!   and no excluded subtree;
//! - matching: dNSName by labels from the right (a constraint starting with `.` only
//!   below it); rfc822Name as a mailbox, a host, or (leading `.`) a domain below; URI by
//!   its host; iPAddress under the constraint's mask; directoryName as a prefix of
//!   relative distinguished names, compared after OpenSSL's canonical form (text as UTF-8,
//!   ASCII case folded, white space trimmed and collapsed).
//!
//! Fail closed: a nameConstraints or subjectAltName extension that cannot be read, a
//! constraint or name of a type we do not handle facing a name or constraint of the same
//! type, or a name of a form that cannot be compared (an e-mail address without `@`, a URI
//! without a host) is a violation.

use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::{Any, Tag};
use x509_parser::extensions::{GeneralName, GeneralSubtree, NameConstraints};
use x509_parser::oid_registry::OID_PKCS9_EMAIL_ADDRESS;
use x509_parser::x509::X509Name;

use crate::verify::Purpose;

/// The positions (leaf first, 0) of the certificates of `path` (leaf first, up to the
/// anchor or as far as it goes) that break the name constraints of a certificate above
/// them. A self-issued CA below the top is exempt (RFC 5280 §6.1.4 (b)). `purpose`: what
/// the leaf is verified for, which decides which of its common names count as DNS names
/// (see [`common_name_hosts`]).
pub(super) fn violations(path: &[&X509Certificate<'_>], purpose: Purpose) -> Vec<usize> {
    path.iter()
        .enumerate()
        .filter(|(index, cert)| {
            *index == 0 || !crate::cert::name::same_name(cert.subject(), cert.issuer())
        })
        .filter(|(index, cert)| {
            breaks(
                cert,
                *index == 0,
                purpose,
                path.get(index + 1..).unwrap_or(&[]),
            )
        })
        .map(|(index, _)| index)
        .collect()
}

/// Our name rules on a chain another verifier built (the OpenSSL backend's, leaf first):
/// `UnspecifiedError` on each certificate that breaks the name constraints of one above it
/// ([`violations`]; OpenSSL does not check a common name of a single label, which its
/// host check then matches), and `HostNameMismatch` on the leaf when `host` is given and
/// the contract's host rule refuses it (OpenSSL consults the common name whenever no DNS
/// name is present). The parses come from `peers`, so a chain seen before is not parsed
/// again. A certificate that does not parse ends the checked path: it is an error of its
/// own, which the caller reports.
#[cfg(feature = "openssl")]
pub(crate) fn name_errors(
    peers: &crate::verify::kept::PeerParses,
    chain: &[crate::cert::SslCertificate],
    host: Option<&str>,
) -> Vec<crate::ssl_error::SslError> {
    use crate::ssl_error::{SslError, SslErrorKind};
    let parsed: Vec<_> = chain
        .iter()
        .map_while(|cert| peers.parse(cert.der()))
        .collect();
    let path: Vec<&X509Certificate<'_>> = parsed.iter().map(|p| p.x509()).collect();
    // A client names the server it verifies; a server verifies its clients by no name.
    let purpose = match host {
        Some(_) => crate::verify::Purpose::ServerAuth,
        None => crate::verify::Purpose::ClientAuth,
    };
    let mut errors: Vec<SslError> = violations(&path, purpose)
        .into_iter()
        .filter_map(|index| chain.get(index))
        .map(|cert| SslError::with_certificate(SslErrorKind::UnspecifiedError, cert.clone()))
        .collect();
    if let (Some(host), Some(leaf), Some(cert)) = (host, path.first(), chain.first()) {
        if !crate::verify::hostname::matches_host(leaf, host) {
            errors.push(SslError::with_certificate(
                SslErrorKind::HostNameMismatch,
                cert.clone(),
            ));
        }
    }
    errors
}

/// Whether `subject` (the leaf when `is_leaf`) breaks the name constraints of one of the
/// certificates `above` it; its names are read once, when a first one has constraints. A
/// nameConstraints extension or a subjectAltName that cannot be read is a violation.
fn breaks(
    subject: &X509Certificate<'_>,
    is_leaf: bool,
    purpose: Purpose,
    above: &[&X509Certificate<'_>],
) -> bool {
    // A leaf's common names in the form the host check compares them (read once, when a
    // first certificate above has constraints).
    let hosts = std::cell::OnceCell::new();
    let mut names = None;
    for issuer in above {
        let constraints = match issuer.name_constraints() {
            Ok(None) => continue,
            Ok(Some(extension)) => extension.value,
            Err(_) => return true,
        };
        let Some(names) = names.get_or_insert_with(|| {
            let hosts = hosts.get_or_init(|| match is_leaf {
                true => common_name_hosts(subject, purpose),
                false => Some(Vec::new()),
            });
            names_of(subject, is_leaf, hosts.as_deref())
        }) else {
            return true;
        };
        if names.iter().any(|name| !allowed(name, constraints)) {
            return true;
        }
    }
    false
}

/// The common names of `cert` a host could match, as the host check reads and compares
/// them (`hostname::presented_ace`: every string type OpenSSL decodes, BMPString
/// included, and a Unicode name as its A-labels), so that no name the host check accepts
/// escapes the constraints (round 35).
///
/// As OpenSSL reads them for constraints (`cn2dnsid`), trailing NULs are dropped first;
/// `None` when a common name cannot be read at all (it does not decode, or holds a NUL
/// inside): the leaf's names are then unreadable, a violation under any constraint, as
/// OpenSSL's `X509_V_ERR_UNSUPPORTED_NAME_SYNTAX` (round 36: rustls skipped such a name,
/// and a trailing NUL hid one outside the constraints).
///
/// A client certificate (`ClientAuth`) is matched against no host: there only a common
/// name of two labels or more counts, OpenSSL's rule (round 35: a client `CN=alice` under
/// a CA permitted `example.com` was refused, which OpenSSL and webpki accept).
fn common_name_hosts(cert: &X509Certificate<'_>, purpose: Purpose) -> Option<Vec<String>> {
    let mut hosts = Vec::new();
    for attribute in cert.subject().iter_common_name() {
        let text = crate::cert::name::attribute_text(attribute)?;
        let text = text.trim_end_matches('\0');
        if text.contains('\0') {
            return None;
        }
        let Some(host) = crate::verify::hostname::presented_ace(text) else {
            // IDNA refuses it: no host name, which the host check matches nowhere.
            continue;
        };
        // A name our host check could match, or one OpenSSL takes for a DNS name (round
        // 36: `evil.123` or `10.0.0.1`, which our host check never matches, passed a DNS
        // constraint on rustls that OpenSSL applies).
        let counts = (could_match_a_host(&host) || openssl_dns_id(text))
            && (purpose != Purpose::ClientAuth || host.trim_end_matches('.').contains('.'));
        if counts {
            hosts.push(host.into_owned());
        }
    }
    Some(hosts)
}

/// The names of `cert` that constraints apply to; `None` when its subjectAltName cannot
/// be read. `hosts`: its common names a host could match ([`common_name_hosts`]), which
/// count for a leaf with no DNS name.
fn names_of<'a>(
    cert: &'a X509Certificate<'a>,
    is_leaf: bool,
    hosts: Option<&'a [String]>,
) -> Option<Vec<Name<'a>>> {
    let subject = cert.subject();
    let mut names = Vec::new();
    if subject.iter().next().is_some() {
        names.push(Name::General(GeneralName::DirectoryName(subject.clone())));
    }
    for email in subject.iter_by_oid(&OID_PKCS9_EMAIL_ADDRESS) {
        // An emailAddress that is not text cannot be compared: a name of no form.
        match email.as_str() {
            Ok(text) => names.push(Name::General(GeneralName::RFC822Name(text))),
            Err(_) => names.push(Name::Unreadable(Kind::Email)),
        }
    }
    let mut has_dns = false;
    match cert.subject_alternative_name() {
        Ok(None) => {}
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                has_dns |= matches!(name, GeneralName::DNSName(_));
                names.push(Name::General(name.clone()));
            }
        }
        Err(_) => return None,
    }
    if is_leaf && !has_dns {
        for host in hosts? {
            names.push(Name::General(GeneralName::DNSName(host)));
        }
    }
    Some(names)
}

/// Whether OpenSSL's `cn2dnsid` takes `text` for a DNS name: letters, digits and `_`,
/// a `-` or `.` neither first nor last, no `.` next to another `.` or a `-`, and at least
/// one `.` (two labels).
fn openssl_dns_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    let last = bytes.len().saturating_sub(1);
    let mut labels = false;
    for (i, &c) in bytes.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == b'_' {
            continue;
        }
        let inner = i > 0 && i < last;
        if inner && c == b'-' {
            continue;
        }
        let next = bytes.get(i + 1).copied();
        let previous = i.checked_sub(1).and_then(|p| bytes.get(p)).copied();
        if inner && c == b'.' && next != Some(b'.') && next != Some(b'-') && previous != Some(b'-')
        {
            labels = true;
            continue;
        }
        return false;
    }
    labels
}

/// A common name our host matching could match: the same rule as its own
/// (`hostname::is_plain_name`, after one trailing dot and a `*.` wildcard label), so no
/// name the host check accepts escapes the constraints.
fn could_match_a_host(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    let name = name.strip_prefix("*.").unwrap_or(name);
    crate::verify::hostname::is_plain_name(name)
}

/// A name of the certificate.
enum Name<'a> {
    General(GeneralName<'a>),
    /// A name of a known type whose value cannot be read.
    Unreadable(Kind),
}

/// The name types constraints are matched by.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Email,
    Dns,
    Uri,
    Ip,
    Directory,
    /// otherName, x400Address, ediPartyName, registeredID and unreadable entries, by tag.
    Other(u32),
}

fn kind_of(name: &GeneralName<'_>) -> Kind {
    match name {
        GeneralName::RFC822Name(_) => Kind::Email,
        GeneralName::DNSName(_) => Kind::Dns,
        GeneralName::URI(_) => Kind::Uri,
        GeneralName::IPAddress(_) => Kind::Ip,
        GeneralName::DirectoryName(_) => Kind::Directory,
        GeneralName::OtherName(..) => Kind::Other(0),
        GeneralName::X400Address(_) => Kind::Other(3),
        GeneralName::EDIPartyName(_) => Kind::Other(5),
        GeneralName::RegisteredID(_) => Kind::Other(8),
        // An entry that does not read as its type is still of that type: a constraint
        // or name we cannot compare with the others of its type (fail closed).
        GeneralName::Invalid(tag, _) => match tag.0 {
            1 => Kind::Email,
            2 => Kind::Dns,
            4 => Kind::Directory,
            6 => Kind::Uri,
            7 => Kind::Ip,
            other => Kind::Other(other),
        },
    }
}

/// What one comparison of a name with a subtree found.
#[derive(PartialEq, Eq, Debug)]
enum Match {
    Yes,
    No,
    /// Not comparable (a form or type we do not handle): a violation, whatever the list.
    Undecidable,
}

impl From<bool> for Match {
    fn from(yes: bool) -> Match {
        if yes {
            Match::Yes
        } else {
            Match::No
        }
    }
}

/// Whether `name` passes the permitted and excluded subtrees of `constraints`.
fn allowed(name: &Name<'_>, constraints: &NameConstraints<'_>) -> bool {
    let kind = match name {
        Name::General(general) => kind_of(general),
        Name::Unreadable(kind) => *kind,
    };
    let permitted = of_kind(&constraints.permitted_subtrees, kind);
    if !permitted.is_empty() {
        let mut found = false;
        for base in &permitted {
            match matches(name, base, Role::Permitted) {
                Match::Yes => found = true,
                Match::No => {}
                Match::Undecidable => return false,
            }
        }
        if !found {
            return false;
        }
    }
    of_kind(&constraints.excluded_subtrees, kind)
        .iter()
        .all(|base| matches(name, base, Role::Excluded) == Match::No)
}

/// Which list a subtree is on: a name is permitted when it lies inside one; it is
/// excluded as soon as a host it can stand for lies inside one (a wildcard stands for
/// every name one label below it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Permitted,
    Excluded,
}

/// The bases of the subtrees of `list` for names of `kind`.
fn of_kind<'c, 'a>(
    list: &'c Option<Vec<GeneralSubtree<'a>>>,
    kind: Kind,
) -> Vec<&'c GeneralName<'a>> {
    list.iter()
        .flatten()
        .map(|subtree| &subtree.base)
        .filter(|base| kind_of(base) == kind)
        .collect()
}

/// Whether `name` lies in the subtree `base` (of the same type).
fn matches(name: &Name<'_>, base: &GeneralName<'_>, role: Role) -> Match {
    let Name::General(name) = name else {
        return Match::Undecidable;
    };
    match (name, base) {
        (GeneralName::DNSName(dns), GeneralName::DNSName(base)) => Match::from(
            dns_in(dns, base) || (role == Role::Excluded && wildcard_reaches(dns, base)),
        ),
        (GeneralName::RFC822Name(email), GeneralName::RFC822Name(base)) => email_in(email, base),
        (GeneralName::URI(uri), GeneralName::URI(base)) => uri_in(uri, base),
        (GeneralName::IPAddress(ip), GeneralName::IPAddress(base)) => ip_in(ip, base),
        (GeneralName::DirectoryName(dn), GeneralName::DirectoryName(base)) => dn_in(dn, base),
        _ => Match::Undecidable,
    }
}

/// OpenSSL's `nc_dns`: an empty constraint matches every name; otherwise the name ends
/// with the constraint, after a `.` unless the constraint starts with one. One trailing
/// dot on either side is dropped first, as our host matching drops it (else
/// `bad.example.` would slip past an excluded `bad.example` and still match the host).
fn dns_in(dns: &str, base: &str) -> bool {
    let dns = dns.strip_suffix('.').unwrap_or(dns);
    let base = base.strip_suffix('.').unwrap_or(base);
    if base.is_empty() {
        return true;
    }
    let (dns, base) = (dns.as_bytes(), base.as_bytes());
    let Some(start) = dns.len().checked_sub(base.len()) else {
        return false;
    };
    let Some(tail) = dns.get(start..) else {
        return false;
    };
    if start > 0 && base.first() != Some(&b'.') && dns.get(start - 1) != Some(&b'.') {
        return false;
    }
    tail.eq_ignore_ascii_case(base)
}

/// Whether the wildcard `*.parent` stands for a host inside `base`: `base` is one label
/// below `parent` (`*.example` reaches an excluded `bad.example`, which `nc_dns` alone
/// does not see). A subtree containing `parent` itself is found by [`dns_in`].
fn wildcard_reaches(dns: &str, base: &str) -> bool {
    let dns = dns.strip_suffix('.').unwrap_or(dns);
    let base = base.strip_suffix('.').unwrap_or(base);
    let Some(parent) = dns.strip_prefix("*.") else {
        return false;
    };
    match base.split_once('.') {
        Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(parent),
        None => false,
    }
}

/// OpenSSL's `nc_email`: `.domain` matches addresses below it, `host` addresses at it,
/// `mailbox@host` that address (the local part case-sensitive).
fn email_in(email: &str, base: &str) -> Match {
    let Some((local, host)) = email.rsplit_once('@') else {
        return Match::Undecidable;
    };
    if base.starts_with('.') {
        return Match::from(strictly_ends_with(email, base));
    }
    let base_host = match base.rsplit_once('@') {
        Some((base_local, base_host)) => {
            if !base_local.is_empty() && base_local != local {
                return Match::No;
            }
            base_host
        }
        None => base,
    };
    Match::from(host.eq_ignore_ascii_case(base_host))
}

/// OpenSSL's `nc_uri`: the host of `scheme://host[:port][/...]` against the constraint,
/// exactly, or below it when the constraint starts with `.`.
fn uri_in(uri: &str, base: &str) -> Match {
    let Some((_, rest)) = uri.split_once("://") else {
        return Match::Undecidable;
    };
    if uri.find(':') != Some(uri.len() - rest.len() - 3) {
        return Match::Undecidable;
    }
    let end = rest
        .find(':')
        .or_else(|| rest.find('/'))
        .unwrap_or(rest.len());
    let host = rest.get(..end).unwrap_or("");
    if host.is_empty() {
        return Match::Undecidable;
    }
    Match::from(if base.starts_with('.') {
        strictly_ends_with(host, base)
    } else {
        host.eq_ignore_ascii_case(base)
    })
}

/// `name` is longer than `suffix` and ends with it, ignoring ASCII case (a `.domain`
/// constraint's "below it").
fn strictly_ends_with(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len()
        && name
            .as_bytes()
            .get(name.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
}

/// OpenSSL's `nc_ip`: an address of 4 or 16 bytes under a constraint of address and mask
/// (8 or 32 bytes); an address of the other family does not match.
fn ip_in(ip: &[u8], base: &[u8]) -> Match {
    if !matches!(ip.len(), 4 | 16) || !matches!(base.len(), 8 | 32) {
        return Match::Undecidable;
    }
    // An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is that IPv4 address.
    const MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    let ip = match ip.split_at_checked(12) {
        Some((prefix, v4)) if base.len() == 8 && prefix == MAPPED => v4,
        _ => ip,
    };
    if ip.len() * 2 != base.len() {
        return Match::No;
    }
    let (address, mask) = base.split_at(ip.len());
    let inside = ip
        .iter()
        .zip(address)
        .zip(mask)
        .all(|((a, b), m)| a & m == b & m);
    Match::from(inside)
}

/// OpenSSL's `nc_dn`: the constraint's relative distinguished names are the first ones of
/// the name, compared in canonical form.
fn dn_in(dn: &X509Name<'_>, base: &X509Name<'_>) -> Match {
    let (Some(dn), Some(base)) = (canonical(dn), canonical(base)) else {
        return Match::Undecidable;
    };
    let prefix = base.len() <= dn.len() && dn.iter().zip(&base).all(|(a, b)| a == b);
    Match::from(prefix)
}

/// One attribute in canonical form: its type and its value as folded text, or as DER
/// when it is not text.
type CanonicalAttribute = (String, Result<String, Vec<u8>>);

/// The names's relative distinguished names in canonical form, each a sorted set of
/// attributes (a SET OF compares whatever its order); `None` if a text value cannot be
/// decoded.
fn canonical(name: &X509Name<'_>) -> Option<Vec<Vec<CanonicalAttribute>>> {
    let mut rdns = Vec::new();
    for rdn in name.iter() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let value = match text_of(attribute.attr_value()) {
                Some(Ok(text)) => Ok(fold(&text)),
                Some(Err(())) => return None,
                None => Err(attribute.attr_value().data.to_vec()),
            };
            attributes.push((attribute.attr_type().to_id_string(), value));
        }
        attributes.sort();
        rdns.push(attributes);
    }
    Some(rdns)
}

/// A string value as text: `None` when the value is not a string type, `Some(Err)` when
/// it is one that does not decode.
fn text_of(value: &Any<'_>) -> Option<Result<String, ()>> {
    let data = value.data;
    let text = match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(data).map(str::to_string).map_err(drop)
        }
        // T.61: read as Latin-1, as OpenSSL does.
        Tag::T61String => Ok(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return Some(Err(()));
            }
            let units = data
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(drop)
        }
        Tag::UniversalString => {
            if !data.len().is_multiple_of(4) {
                return Some(Err(()));
            }
            data.chunks_exact(4)
                .map(|quad| {
                    char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]))
                })
                .collect::<Option<String>>()
                .ok_or(())
        }
        _ => return None,
    };
    Some(text)
}

/// OpenSSL's canonical text: white space trimmed at both ends and collapsed to one space
/// inside, ASCII letters in lower case.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // C's isspace, as OpenSSL's: space, \t, \n, \v, \f, \r.
    let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r');
    for word in text.split(space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip_bytes(ip: &str) -> Vec<u8> {
        match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.octets().to_vec(),
            Ok(IpAddr::V6(v6)) => v6.octets().to_vec(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn dns_names_match_by_labels_from_the_right() {
        assert!(dns_in("corp-a.example", "corp-a.example"));
        assert!(dns_in("www.corp-a.example", "corp-a.example"));
        assert!(dns_in("WWW.Corp-A.Example", "corp-a.example"));
        assert!(!dns_in("evilcorp-a.example", "corp-a.example"));
        assert!(!dns_in("localhost", "corp-a.example"));
        assert!(!dns_in("example", "corp-a.example"));
        assert!(dns_in("www.corp-a.example", ".corp-a.example"));
        assert!(!dns_in("corp-a.example", ".corp-a.example"));
        assert!(dns_in("anything", ""));
        assert!(dns_in("*.corp-a.example", "corp-a.example"));
        assert!(dns_in("bad.corp-a.example.", "bad.corp-a.example"));
        assert!(dns_in("bad.corp-a.example", "bad.corp-a.example."));
        assert!(dns_in("x.bad.corp-a.example.", ".bad.corp-a.example"));
    }

    #[test]
    fn a_wildcard_is_excluded_when_a_host_it_stands_for_is() {
        let name = Name::General(GeneralName::DNSName("*.corp-a.example"));
        let bad = GeneralName::DNSName("bad.corp-a.example");
        assert!(matches(&name, &bad, Role::Excluded) == Match::Yes);
        assert!(matches(&name, &bad, Role::Permitted) == Match::No);
        let deeper = GeneralName::DNSName("x.bad.corp-a.example");
        assert!(matches(&name, &deeper, Role::Excluded) == Match::No);
        let below = GeneralName::DNSName(".bad.corp-a.example");
        assert!(matches(&name, &below, Role::Excluded) == Match::No);
        let parent = GeneralName::DNSName("corp-a.example");
        assert!(matches(&name, &parent, Role::Excluded) == Match::Yes);
        assert!(!wildcard_reaches(
            "www.corp-a.example",
            "bad.corp-a.example"
        ));
    }

    #[test]
    fn email_addresses_match_mailbox_host_or_domain() {
        assert!(email_in("a@corp.example", "corp.example") == Match::Yes);
        assert!(email_in("a@CORP.example", "corp.example") == Match::Yes);
        assert!(email_in("a@x.corp.example", "corp.example") == Match::No);
        assert!(email_in("a@x.corp.example", ".corp.example") == Match::Yes);
        assert!(email_in("a@corp.example", ".corp.example") == Match::No);
        assert!(email_in("a@corp.example", "a@corp.example") == Match::Yes);
        assert!(email_in("A@corp.example", "a@corp.example") == Match::No);
        assert!(email_in("no-at-sign", "corp.example") == Match::Undecidable);
    }

    #[test]
    fn uris_match_by_host() {
        assert!(uri_in("https://corp.example/x", "corp.example") == Match::Yes);
        assert!(uri_in("https://corp.example:8443/x", "corp.example") == Match::Yes);
        assert!(uri_in("https://x.corp.example/", "corp.example") == Match::No);
        assert!(uri_in("https://x.corp.example/", ".corp.example") == Match::Yes);
        assert!(uri_in("urn:corp.example", "corp.example") == Match::Undecidable);
        assert!(uri_in("https:///path", "corp.example") == Match::Undecidable);
    }

    #[test]
    fn addresses_match_under_the_mask() {
        let mut net = ip_bytes("10.1.0.0");
        net.extend(ip_bytes("255.255.0.0"));
        assert!(ip_in(&ip_bytes("10.1.2.3"), &net) == Match::Yes);
        assert!(ip_in(&ip_bytes("10.2.2.3"), &net) == Match::No);
        assert!(ip_in(&ip_bytes("::1"), &net) == Match::No);
        assert!(ip_in(&[1, 2, 3], &net) == Match::Undecidable);
        assert!(ip_in(&ip_bytes("::ffff:10.1.2.3"), &net) == Match::Yes);
        assert!(ip_in(&ip_bytes("::ffff:10.2.2.3"), &net) == Match::No);
    }

    #[test]
    fn canonical_text_folds_case_and_white_space() {
        assert_eq!(fold("  Acme   Corp\t Ltd "), "acme corp ltd");
        assert_eq!(fold("ÄBC"), "Äbc");
        assert_eq!(fold("\u{b}Evil\u{b}Corp\u{c}"), "evil corp");
    }
}
