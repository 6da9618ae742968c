//! Round 36 review (L7) of 7ab179e (a leaf's common names read for name constraints as
//! OpenSSL's `cn2dnsid` reads them). Attacked: legitimate leaves under a constrained CA
//! (person names, e-mail-like, Unicode and BMPString common names, several common names,
//! a DNS alternative name beside an odd common name, client certificates on a server) and
//! names OpenSSL checks as DNS ids that our rules skip. Both backends (run again with
//! `SSLSOCKET_BACKEND=openssl`), blocking driver.
//! `cargo test -p sslsocket --all-features --test last_round36f`.
mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rcgen::string::BmpString;
use rcgen::{DnType, DnValue, GeneralSubtree, KeyPair, NameConstraints, SanType};
use sslsocket::prelude::*;
use sslsocket::{SslConfiguration, SslError, SslErrorKind};
use support::attack::AttackServer;
use support::chains::*;
use support::trust::error_set;
use support::{Blocking, ClientDriver};

use SslErrorKind::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn constrained(tag: &str) -> BoxResult<(Ca, Ca)> {
    let root = root(&format!("L7 {tag} Root"))?;
    let ca = sub_ca_with(&root, &format!("L7 {tag} CA"), None, |params| {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![],
        });
    })?;
    Ok((root, ca))
}

/// A leaf under a CA permitting dNSName example.com, with common names `cns` and
/// alternative names `sans`.
fn chain_with(
    tag: &str,
    cns: &[DnValue],
    sans: Vec<SanType>,
    client: bool,
) -> BoxResult<(Ca, Ca, Vec<u8>, KeyPair)> {
    let (root, ca) = constrained(tag)?;
    let (leaf_der, key) = leaf(&ca, "unused", |params| {
        params.distinguished_name = rcgen::DistinguishedName::new();
        for cn in cns {
            params
                .distinguished_name
                .push(DnType::CommonName, cn.clone());
        }
        params.subject_alt_names = sans;
        if client {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
    })?;
    Ok((root, ca, leaf_der, key))
}

struct Seen {
    encrypted: bool,
    errors: Vec<SslError>,
}

fn connect(root: &Ca, chain: Vec<Vec<u8>>, key: &KeyPair) -> BoxResult<Seen> {
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![cert(&root.der)?]);
    let server = AttackServer::start(chain, &key.serialize_der(), 1)?;
    let mut client = Blocking::start("127.0.0.1", server.port(), configuration, |s| {
        s.set_peer_verify_name("127.0.0.1".to_string());
    })?;
    let _ = client.handshake(WAIT);
    let encrypted = client.socket().is_encrypted();
    let errors = client.socket().ssl_handshake_errors().to_vec();
    Ok(Seen { encrypted, errors })
}

/// Our blocking server verifying clients against `root`; one of our clients presents
/// `chain`.
fn serve_client(root: &Ca, chain: &[Vec<u8>], key: &KeyPair) -> BoxResult<Seen> {
    let pki = support::Pki::new()?;
    let mut configuration = support::serving(&pki.leaf("localhost", &["localhost"])?)?;
    configuration
        .set_ca_certificates(vec![cert(&root.der)?])
        .set_peer_verify_mode(sslsocket::PeerVerifyMode::VerifyPeer);
    let mut client = SslConfiguration::default();
    client
        .set_local_certificate_chain(chain.iter().map(|c| cert(c)).collect::<BoxResult<_>>()?)
        .set_private_key(sslsocket::SslKey::from_der(&key.serialize_der())?)
        .set_peer_verify_mode(sslsocket::PeerVerifyMode::VerifyNone);
    let server = sslsocket::blocking::SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    let thread = std::thread::spawn(move || {
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(client);
        socket.connect_to_host_encrypted("127.0.0.1", port);
        let ok = socket.wait_for_encrypted(WAIT).is_ok();
        let _ = socket.wait_for_ready_read(Duration::from_millis(200));
        socket.abort();
        ok
    });
    let next = server.next_connection(WAIT)?;
    let seen = match next {
        Ok(socket) => Seen {
            encrypted: socket.is_encrypted(),
            errors: socket.ssl_handshake_errors().to_vec(),
        },
        Err(refused) => Seen {
            encrypted: false,
            errors: refused.ssl_handshake_errors().to_vec(),
        },
    };
    let _ = support::raw::joined(thread)?;
    Ok(seen)
}

fn check(tag: &str, seen: &Seen, leaf_der: &[u8], refused: bool) -> TestResult {
    let expected = match refused {
        true => error_set(&[on(UnspecifiedError, leaf_der)?]),
        false => BTreeSet::new(),
    };
    assert_eq!(
        error_set(&seen.errors),
        expected,
        "{tag} on {}: {:?}",
        support::active_backend(),
        kinds_on(&seen.errors)
    );
    assert_eq!(
        seen.encrypted,
        !refused,
        "{tag} on {}: encrypted",
        support::active_backend()
    );
    Ok(())
}

fn bmp(text: &str) -> BoxResult<DnValue> {
    Ok(DnValue::BmpString(BmpString::try_from(text)?))
}

fn utf8(text: &str) -> DnValue {
    DnValue::Utf8String(text.to_string())
}

/// Legitimate common names no host check matches, or inside the subtree.
fn legitimate() -> BoxResult<Vec<(&'static str, Vec<DnValue>)>> {
    Ok(vec![
        ("person", vec![utf8("Alice Smith")]),
        ("unicode person", vec![utf8("J\u{fc}rgen M\u{fc}ller")]),
        ("email-like", vec![utf8("alice@example.org")]),
        ("bmp person", vec![bmp("Alice Smith")?]),
        ("bmp inside", vec![bmp("www.example.com")?]),
        ("unicode inside", vec![utf8("b\u{fc}cher.example.com")]),
        (
            "several",
            vec![
                utf8("Alice Smith"),
                utf8("www.example.com"),
                bmp("Ops Team")?,
            ],
        ),
        ("trailing dot inside", vec![utf8("www.example.com.")]),
    ])
}

// Held: a server leaf (IP SAN only) under a CA permitting dNSName example.com with a
// person's name, an e-mail-like, a Unicode, a BMPString, several, or a permitted common
// name is accepted with no error on both backends.
#[test]
fn legitimate_common_names_under_a_dns_constraint_are_accepted() -> TestResult {
    for (tag, cns) in legitimate()? {
        let (root, ca, leaf_der, key) =
            chain_with(tag, &cns, vec![SanType::IpAddress(LOOPBACK)], false)?;
        let seen = connect(&root, vec![leaf_der.clone(), ca.der.clone()], &key)?;
        check(tag, &seen, &leaf_der, false)?;
    }
    Ok(())
}

// Held: the same common names on a client certificate (no SAN) verified by our server.
#[test]
fn legitimate_client_common_names_under_a_dns_constraint_are_accepted() -> TestResult {
    for (tag, cns) in legitimate()? {
        let (root, ca, leaf_der, key) = chain_with(tag, &cns, vec![], true)?;
        let seen = serve_client(&root, &[leaf_der.clone(), ca.der.clone()], &key)?;
        check(tag, &seen, &leaf_der, false)?;
    }
    Ok(())
}

// Held: a leaf with a permitted DNS alternative name beside a common name with a NUL
// inside (which would be unreadable without the DNS name) is accepted on both backends.
#[test]
fn a_dns_alternative_name_beside_a_nul_common_name_is_accepted() -> TestResult {
    let (root, ca, leaf_der, key) = chain_with(
        "dns+nul",
        &[utf8("a\0b.evil.org")],
        vec![
            SanType::DnsName("www.example.com".try_into()?),
            SanType::IpAddress(LOOPBACK),
        ],
        false,
    )?;
    let seen = connect(&root, vec![leaf_der.clone(), ca.der.clone()], &key)?;
    check("dns+nul", &seen, &leaf_der, false)
}

// Held: a common name outside the subtree is refused on both backends, also in a
// BMPString, as the second of two common names, and with a trailing NUL in a BMPString.
#[test]
fn outside_common_names_are_refused_on_both_backends() -> TestResult {
    let cases: Vec<(&str, Vec<DnValue>)> = vec![
        ("bmp outside", vec![bmp("www.evil.org")?]),
        (
            "second outside",
            vec![utf8("Alice Smith"), utf8("www.evil.org")],
        ),
        ("bmp trailing nul", vec![bmp("www.evil.org\0\0")?]),
        ("unicode outside", vec![utf8("b\u{fc}cher.evil.org")]),
    ];
    for (tag, cns) in cases {
        let (root, ca, leaf_der, key) =
            chain_with(tag, &cns, vec![SanType::IpAddress(LOOPBACK)], false)?;
        let seen = connect(&root, vec![leaf_der.clone(), ca.der.clone()], &key)?;
        check(tag, &seen, &leaf_der, true)?;
    }
    Ok(())
}

// Was a defect (round 36): rustls backend: a server leaf (IP SAN only) whose common name is a DNS id by
// OpenSSL's `cn2dnsid` (letters, digits, `_`, inner `-` and `.`, two labels or more) but
// ends in a numeric label (`10.0.0.1`, `evil.123`) is accepted with no error under a CA
// permitting dNSName example.com; OpenSSL checks it as a DNS name (PERMITTED_VIOLATION) and
// the OpenSSL backend refuses it. The same split 7ab179e closed for `evil.org\0`. Right:
// refused on both (UnspecifiedError on the leaf): count every name `cn2dnsid` accepts.
#[test]
fn numeric_last_label_common_names_outside_a_dns_constraint_are_refused() -> TestResult {
    for cn in ["evil.123", "10.0.0.1"] {
        let (root, ca, leaf_der, key) =
            chain_with(cn, &[utf8(cn)], vec![SanType::IpAddress(LOOPBACK)], false)?;
        let seen = connect(&root, vec![leaf_der.clone(), ca.der.clone()], &key)?;
        check(cn, &seen, &leaf_der, true)?;
    }
    Ok(())
}

// Was a defect (round 36): rustls backend, blocking server: a client certificate (no SAN) with common name
// `10.0.0.1` under a client CA permitting dNSName example.com is accepted; the OpenSSL
// backend's server refuses it (OpenSSL's `cn2dnsid` reads it as a DNS id). Right: refused
// on both.
#[test]
fn a_client_certificate_with_an_address_common_name_outside_a_dns_constraint_is_refused(
) -> TestResult {
    let (root, ca, leaf_der, key) = chain_with("client ip cn", &[utf8("10.0.0.1")], vec![], true)?;
    let seen = serve_client(&root, &[leaf_der.clone(), ca.der.clone()], &key)?;
    check("client ip cn", &seen, &leaf_der, true)
}
