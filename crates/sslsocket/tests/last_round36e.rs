//! Round 36 review (L6) of 9786655 (OpenSSL refusal alert = first listed error's code; a
//! failed `X509_verify_cert` is always an error of its own) and d27180b's NUL rule in
//! `verify/constraints.rs` (a common name with a NUL inside, on a leaf without a DNS name,
//! is an unreadable DNS name under constraints). Attacked: common names with NULs under
//! constraints of other types, trailing NULs (which OpenSSL strips and then checks), both
//! backends (run again with `SSLSOCKET_BACKEND=openssl`), blocking driver.
//! `cargo test -p sslsocket --all-features --test last_round36e`.
mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rcgen::{CidrSubnet, DnType, GeneralSubtree, KeyPair, NameConstraints, SanType};
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

/// A root, a CA under it with `constraints` as its permitted subtrees, and a leaf under
/// that CA whose only alternative name is 127.0.0.1 and whose common name is `cn`.
fn chain_with(
    tag: &str,
    constraints: Vec<GeneralSubtree>,
    cn: &str,
) -> BoxResult<(Ca, Ca, Vec<u8>, KeyPair)> {
    let root = root(&format!("L6 {tag} Root"))?;
    let ca = sub_ca_with(&root, &format!("L6 {tag} CA"), None, |params| {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: constraints,
            excluded_subtrees: vec![],
        });
    })?;
    let (leaf_der, key) = leaf(&ca, "unused", |params| {
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = vec![SanType::IpAddress(LOOPBACK)];
    })?;
    Ok((root, ca, leaf_der, key))
}

/// What our blocking client saw connecting to 127.0.0.1 (verifying that address) of a raw
/// rustls server presenting `chain`.
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

fn set(errors: &[SslError]) -> BTreeSet<support::trust::ErrorOn> {
    error_set(errors)
}

fn ip_subtree() -> GeneralSubtree {
    GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 0], [255, 0, 0, 0]))
}

/// Connects to a chain whose leaf has common name `cn` under `constraints` and asserts the
/// outcome: refused with `UnspecifiedError` on the leaf only (`refused`), else accepted with
/// no error.
fn expect(tag: &str, constraints: Vec<GeneralSubtree>, cn: &str, refused: bool) -> TestResult {
    let (root, ca, leaf_der, key) = chain_with(tag, constraints, cn)?;
    let seen = connect(&root, vec![leaf_der.clone(), ca.der.clone()], &key)?;
    let expected = match refused {
        true => set(&[on(UnspecifiedError, &leaf_der)?]),
        false => BTreeSet::new(),
    };
    assert_eq!(
        set(&seen.errors),
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

// Was a defect (round 36): rustls backend: a leaf (IP SAN only) whose common name holds a NUL, under a CA
// permitting only IP 127.0.0.0/8, is accepted with no error; OpenSSL (`cn2dnsid` runs for
// any nameConstraints, whatever its types) reports UNSUPPORTED_NAME_SYNTAX and the OpenSSL
// backend refuses with UnspecifiedError on the leaf. Right: the same on both (refused).
#[test]
fn a_nul_common_name_under_an_ip_only_constraint_is_refused_on_both_backends() -> TestResult {
    expect("ip-only", vec![ip_subtree()], "a\0b.example.org", true)
}

// Was a defect (round 36): rustls backend: the same leaf under a CA permitting only rfc822Name example.com
// is accepted with no error; the OpenSSL backend refuses (UnspecifiedError on the leaf).
// Right: refused on both.
#[test]
fn a_nul_common_name_under_an_email_only_constraint_is_refused_on_both_backends() -> TestResult {
    expect(
        "email-only",
        vec![GeneralSubtree::Rfc822Name("example.com".into())],
        "a\0b.example.org",
        true,
    )
}

// Was a defect (round 36): rustls backend: a leaf (IP SAN only) with common name `evil.org\0` under a CA
// permitting dNSName example.com is accepted with no error: our rules skip the name (not a
// plain host) while OpenSSL strips trailing NULs and finds `evil.org` outside the subtree
// (PERMITTED_VIOLATION; the OpenSSL backend refuses). Right: refused on both.
#[test]
fn a_trailing_nul_common_name_outside_a_dns_constraint_is_refused_on_both_backends() -> TestResult {
    expect(
        "trailing-out",
        vec![GeneralSubtree::DnsName("example.com".into())],
        "evil.org\0",
        true,
    )
}

// Held: a trailing NUL after a permitted name (`www.example.com\0`) is accepted on both
// backends, no error (the NUL rule refuses nothing legitimate here).
#[test]
fn a_trailing_nul_common_name_inside_a_dns_constraint_is_accepted_on_both_backends() -> TestResult {
    expect(
        "trailing-in",
        vec![GeneralSubtree::DnsName("example.com".into())],
        "www.example.com\0",
        false,
    )
}

/// Our blocking server verifying clients against `root` and one of our blocking clients
/// presenting `chain` (key `key`): whether the server accepted it, and what it listed.
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

// Was a defect (round 36): rustls backend, blocking server: a client certificate (no SAN) with common name
// `evil.org\0` under a client CA permitting dNSName example.com is accepted with no error;
// the OpenSSL backend's server refuses it (UnspecifiedError on the leaf). Right: refused on
// both.
#[test]
fn a_client_certificate_with_a_trailing_nul_common_name_outside_a_dns_constraint_is_refused(
) -> TestResult {
    let root = root("L6 client Root")?;
    let ca = sub_ca_with(&root, "L6 client CA", None, |params| {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![],
        });
    })?;
    let (leaf_der, key) = leaf(&ca, "unused", |params| {
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "evil.org\0");
        params.subject_alt_names = vec![];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    })?;
    let seen = serve_client(&root, &[leaf_der.clone(), ca.der.clone()], &key)?;
    assert_eq!(
        set(&seen.errors),
        set(&[on(UnspecifiedError, &leaf_der)?]),
        "on {}: {:?}",
        support::active_backend(),
        kinds_on(&seen.errors)
    );
    assert!(
        !seen.encrypted,
        "on {}: accepted",
        support::active_backend()
    );
    Ok(())
}

// Was a defect (round 36): rustls backend: the round-36 NUL rule is bypassed by a non-ASCII common name:
// `b\u{fc}cher\0.example.org` on a leaf (IP SAN only) under a CA permitting dNSName
// example.com is accepted with no error, because `hostname::common_names` drops a name
// IDNA refuses before `common_name_hosts` looks for the NUL; OpenSSL refuses
// (UNSUPPORTED_NAME_SYNTAX). Right: refused on both.
#[test]
fn a_non_ascii_nul_common_name_under_a_dns_constraint_is_refused_on_both_backends() -> TestResult {
    expect(
        "non-ascii",
        vec![GeneralSubtree::DnsName("example.com".into())],
        "b\u{fc}cher\0.example.org",
        true,
    )
}
