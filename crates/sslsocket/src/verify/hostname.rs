//! Host name matching (RFC 6125), for Qt's `HostNameMismatch`.
//!
//! Qt on OpenSSL also consults the subject common name when the certificate has subject
//! alternative names; RFC 6125 (and rustls, and browsers) do not, and neither do we. The
//! rules:
//!
//! - an IP literal (`127.0.0.1`, `::1`, `[::1]`) matches only iPAddress SANs, byte for byte,
//!   never a dNSName or the CN;
//! - a DNS name matches dNSName SANs when the certificate has a subjectAltName extension
//!   at all (even one with no DNS entry), else the subject's common names;
//! - comparison ignores ASCII case and one trailing dot of the peer name; a presented name
//!   (dNSName or CN) with a trailing dot matches nothing, as for webpki and OpenSSL;
//! - a wildcard is only `*` as the whole left-most label, stands for exactly one non-empty
//!   label, and needs at least two labels after it (`*.com` matches nothing);
//! - a Unicode name is compared in its ASCII form (Qt's `QUrl::toAce`): the peer name is
//!   converted where the handshake takes it ([`to_ace`]), a common name here (after the
//!   wildcard label, as Qt's `isMatchingHostname`); a name IDNA refuses matches nothing.

use std::borrow::Cow;
use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// Whether the certificate is valid for `host` (a DNS name or an IP literal).
pub(super) fn matches_host(x509: &X509Certificate<'_>, host: &str) -> bool {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return match x509.subject_alternative_name() {
            Ok(Some(san)) => san.value.general_names.iter().any(|name| match name {
                GeneralName::IPAddress(raw) => ip_equals(ip, raw),
                _ => false,
            }),
            _ => false,
        };
    }
    match x509.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().any(|name| match name {
            GeneralName::DNSName(pattern) => dns_matches(pattern, host),
            _ => false,
        }),
        Ok(None) => common_names(x509)
            .iter()
            .any(|pattern| dns_matches(pattern, host)),
        // A subjectAltName extension that cannot be read is there, and names nothing.
        Err(_) => false,
    }
}

fn ip_equals(ip: IpAddr, raw: &[u8]) -> bool {
    match ip {
        IpAddr::V4(v4) => raw == v4.octets().as_slice(),
        IpAddr::V6(v6) => raw == v6.octets().as_slice(),
    }
}

/// The subject's common names as the host check compares them: each value OpenSSL
/// decodes (a BMPString or UniversalString as well as a UTF8String: round 35, a BMPString
/// `localhost` was shown by `subject_common_names` but matched nothing), in its ASCII form
/// ([`presented_ace`]); a value that does not decode, or that IDNA refuses, is left out
/// (it matches no host).
pub(crate) fn common_names(x509: &X509Certificate<'_>) -> Vec<String> {
    crate::cert::name::values_of(x509.subject(), "2.5.4.3")
        .iter()
        .filter_map(|text| presented_ace(text).map(Cow::into_owned))
        .collect()
}

/// The ASCII form of a host name, as Qt's `QUrl::toAce`: a name with non-ASCII characters
/// becomes its A-labels by UTS 46 (nontransitional processing, STD3 rules, DNS lengths, one
/// trailing dot allowed), so `WWW.SCHÄUFELE.DE` is `www.xn--schufele-2za.de`; an ASCII
/// name is returned as it is (its checks are the matcher's). `None`: IDNA refuses the name
/// (fail closed: it is no host name for TLS).
pub(crate) fn to_ace(name: &str) -> Option<Cow<'_, str>> {
    if name.is_ascii() {
        return Some(Cow::Borrowed(name));
    }
    idna::uts46::Uts46::new()
        .to_ascii(
            name.as_bytes(),
            idna::uts46::AsciiDenyList::STD3,
            idna::uts46::Hyphens::Check,
            idna::uts46::DnsLength::VerifyAllowRootDot,
        )
        .ok()
        .map(|ace| Cow::Owned(ace.into_owned()))
}

/// A presented name in its ASCII form: Qt's `isMatchingHostname` converts a common name
/// too (`*.SCHÄUFELE.DE` stands for `*.xn--schufele-2za.de`), the labels after a whole
/// left-most wildcard label on their own. A dNSName is an IA5String, ASCII already.
pub(crate) fn presented_ace(pattern: &str) -> Option<Cow<'_, str>> {
    if pattern.is_ascii() {
        return Some(Cow::Borrowed(pattern));
    }
    match pattern.strip_prefix("*.") {
        Some(rest) => to_ace(rest)
            .filter(|rest| rest.is_ascii())
            .map(|rest| Cow::Owned(format!("*.{rest}"))),
        None => to_ace(pattern),
    }
}

/// Whether the presented name `pattern` (a dNSName or CN) matches `host` (a peer name in
/// its ASCII form, see [`to_ace`]). Only the peer name loses a trailing dot: a presented
/// `localhost.` is no name webpki or OpenSSL would match, so neither do we (it fails
/// `is_plain_name`).
fn dns_matches(pattern: &str, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if !is_plain_name(host) {
        return false;
    }
    let Some(pattern) = presented_ace(pattern) else {
        return false;
    };
    let pattern = pattern.as_ref();
    match pattern.strip_prefix("*.") {
        Some(rest) => {
            if !is_plain_name(rest) || !rest.contains('.') {
                return false;
            }
            // OpenSSL's `wildcard_match`: the label the wildcard stands for holds letters,
            // digits and `-` only (no `_`, which a plain name may hold).
            match host.split_once('.') {
                Some((label, host_rest)) => {
                    label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && host_rest.eq_ignore_ascii_case(rest)
                }
                None => false,
            }
        }
        None => is_plain_name(pattern) && pattern.eq_ignore_ascii_case(host),
    }
}

/// Non-empty labels of letters, digits, `-` and `_` only (a host name in its ASCII form:
/// a Unicode name is compared as IDNA's `xn--` form or not at all), no wildcard, and not an
/// address spelt as a name: a last label of digits only or a `0x` number (`3232235777`,
/// `192.168.1`, `0xc0a80101`), which resolvers read as an IPv4 address that address
/// constraints would never see. Name constraints check exactly the names this accepts.
pub(super) fn is_plain_name(name: &str) -> bool {
    let ldh = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let numeric = name.rsplit('.').next().is_some_and(|last| {
        last.bytes().all(|b| b.is_ascii_digit())
            || last.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"))
    });
    !name.is_empty() && name.split('.').all(ldh) && !numeric
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::test_pki::{self_signed, TestResult};
    use crate::SslCertificate;

    fn check(cert: &SslCertificate, host: &str) -> bool {
        cert.with_parsed(|x509| matches_host(x509, host))
            .unwrap_or(false)
    }

    #[test]
    fn wildcard_stands_for_exactly_one_left_most_label() {
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(dns_matches("*.example.com", "A.EXAMPLE.COM."));
        assert!(dns_matches("*.Example.Com", "www.example.com"));
        // Was a defect (round 34): a presented name with a trailing dot matched.
        assert!(!dns_matches("*.Example.Com.", "www.example.com"));
        assert!(!dns_matches("localhost.", "localhost"));
        assert!(!dns_matches("localhost.", "localhost."));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", ".example.com"));
        assert!(!dns_matches("*.com", "example.com"));
        assert!(!dns_matches("*", "example"));
        assert!(!dns_matches("a.*.example.com", "a.b.example.com"));
        assert!(!dns_matches("f*.example.com", "foo.example.com"));
        assert!(!dns_matches("*oo.example.com", "foo.example.com"));
        assert!(!dns_matches("*.*.example.com", "a.b.example.com"));
        // The wildcard's label: letters, digits and `-` (OpenSSL), never `_`.
        assert!(dns_matches("*.example.com", "a-1.example.com"));
        assert!(!dns_matches("*.example.com", "x_y.example.com"));
        assert!(!dns_matches("*.example.com", "_dmarc.example.com"));
        assert!(dns_matches("x_y.example.com", "x_y.example.com"));
    }

    #[test]
    fn only_ascii_host_names_that_are_not_addresses_match() {
        assert!(!dns_matches("b\u{fc}cher.example", "b\u{fc}cher.example"));
        assert!(!dns_matches("evil.test\0", "evil.test\0"));
        assert!(!dns_matches("3232235777", "3232235777"));
        assert!(!dns_matches("192.168.1", "192.168.1"));
        assert!(!dns_matches("0xc0a80101", "0xc0a80101"));
        assert!(!dns_matches("host.0x1", "host.0x1"));
        assert!(dns_matches(
            "xn--bcher-kva.example",
            "xn--bcher-kva.example"
        ));
        assert!(dns_matches("host1.example", "HOST1.example"));
        assert!(dns_matches("_srv.example", "_srv.example"));
    }

    // Qt's `isMatchingHostname` and `wildcardCertificateNames` cases (qt-behaviors.md).
    #[test]
    fn unicode_names_compare_in_their_ascii_form() {
        let ace = |name: &str| to_ace(name).map(Cow::into_owned).unwrap_or_default();
        let cn = "*.SCH\u{c4}UFELE.DE";
        assert!(dns_matches(cn, &ace("WWW.SCH\u{c4}UFELE.DE")));
        assert!(dns_matches(cn, "www.xn--schufele-2za.de"));
        assert!(dns_matches(cn, &ace("f\u{f6}o.sch\u{e4}ufele.de")));
        assert!(!dns_matches(cn, &ace("a.b.sch\u{e4}ufele.de")));
        assert!(!dns_matches(cn, &ace("sch\u{e4}ufele.de")));
        assert!(dns_matches("B\u{dc}CHER.example", "xn--bcher-kva.example"));
        // A wildcard inside an A-label or beside a U-label matches nothing.
        assert!(!dns_matches(
            "xn--kcry6tjko*.example",
            "xn--kcry6tjkoab.example"
        ));
        assert!(!dns_matches(
            "\u{e5}*.example.com",
            &ace("\u{e5}a.example.com")
        ));
        assert!(!dns_matches(
            "*.sch\u{e4}ufele.de.",
            "www.xn--schufele-2za.de"
        ));
        // The conversion itself: ASCII as it is, one root dot kept, refusals.
        assert_eq!(to_ace("LocalHost").as_deref(), Some("LocalHost"));
        assert_eq!(
            to_ace("b\u{fc}cher.example.").as_deref(),
            Some("xn--bcher-kva.example.")
        );
        assert_eq!(to_ace("a\u{200d}b.example"), None);
        assert_eq!(to_ace("b\u{fc}cher..example"), None);
    }

    #[test]
    fn plain_names_compare_without_case_or_trailing_dot() {
        assert!(dns_matches("localhost", "LocalHost"));
        // The peer name's trailing dot only (round 34; webpki and OpenSSL refuse a
        // presented name with one).
        assert!(!dns_matches("www.example.com.", "www.example.com"));
        assert!(dns_matches("www.example.com", "www.example.com."));
        assert!(!dns_matches("www.example.com", "example.com"));
        assert!(!dns_matches("", ""));
        assert!(!dns_matches("a..b", "a..b"));
        assert!(!dns_matches("example.com", "example.com.."));
        // A host that is itself a pattern never matches, not even the same text.
        assert!(!dns_matches("*.example.com", "*.example.com"));
    }

    #[test]
    fn wildcard_certificate_matches_one_label_only() -> TestResult {
        let cert = self_signed("wild", &["*.example.com"], |_| {})?;
        assert!(check(&cert, "www.example.com"));
        assert!(!check(&cert, "example.com"));
        assert!(!check(&cert, "a.www.example.com"));
        Ok(())
    }

    #[test]
    fn ip_only_certificate_matches_its_address_and_never_the_common_name() -> TestResult {
        let cert = self_signed("localhost", &["127.0.0.1", "::1"], |_| {})?;
        assert!(check(&cert, "127.0.0.1"));
        assert!(check(&cert, "::1"));
        assert!(check(&cert, "[::1]"));
        assert!(!check(&cert, "127.0.0.2"));
        // The CN is "localhost", but a SAN extension exists, so the CN is not consulted.
        assert!(!check(&cert, "localhost"));
        Ok(())
    }

    #[test]
    fn ip_literal_does_not_match_a_dns_entry_or_common_name() -> TestResult {
        let with_dns = self_signed("127.0.0.1", &["127.0.0.1.nip.io"], |_| {})?;
        assert!(!check(&with_dns, "127.0.0.1"));
        let no_san = self_signed("127.0.0.1", &[], |_| {})?;
        assert!(!check(&no_san, "127.0.0.1"));
        Ok(())
    }

    #[test]
    fn common_name_is_used_only_without_subject_alternative_names() -> TestResult {
        let no_san = self_signed("Legacy.Example.Org", &[], |_| {})?;
        assert!(check(&no_san, "legacy.example.org"));
        assert!(!check(&no_san, "other.example.org"));
        let wildcard_cn = self_signed("*.example.org", &[], |_| {})?;
        assert!(check(&wildcard_cn, "www.example.org"));
        assert!(!check(&wildcard_cn, "example.org"));
        let with_san = self_signed("legacy.example.org", &["www.example.org"], |_| {})?;
        assert!(!check(&with_san, "legacy.example.org"));
        assert!(check(&with_san, "www.example.org"));
        Ok(())
    }
}
