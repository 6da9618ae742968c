//! Host names against `openssl s_server` (RFC 6125, as the contract states): a wildcard
//! stands for one label, an IP-only certificate matches its address and no name, the
//! subject CN counts only without subject alternative names; and the name verified is the
//! peer verify name when one is set. Each verdict is cross-checked with OpenSSL's client.

mod support;

use std::collections::BTreeSet;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::SslErrorKind::HostNameMismatch;

use support::trust::{
    by_subject, client_to, error_set, expect, openssl_client_errors, serve, trusting, ErrorOn,
    HANDSHAKE_TIMEOUT,
};
use support::{Issued, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Verifies what `server` serves for `peer_name` with our client and OpenSSL's; both must
/// find exactly `expected`. Our client fails exactly when something is expected.
fn verify_name(
    pki: &Pki,
    server: &OpensslServer,
    peer_name: &str,
    expected: &BTreeSet<ErrorOn>,
) -> TestResult {
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), peer_name);
    let result = client.wait_for_encrypted(HANDSHAKE_TIMEOUT);
    assert_eq!(
        &error_set(client.ssl_handshake_errors()),
        expected,
        "our client, peer name {peer_name:?}"
    );
    assert_eq!(
        result.is_ok(),
        expected.is_empty(),
        "{peer_name:?}: {result:?}"
    );
    drop(client);
    let openssl = openssl_client_errors(server.port(), pki.root_pem(), Some(peer_name), &[])?;
    assert_eq!(
        openssl,
        by_subject(expected),
        "OpenSSL's client, peer name {peer_name:?}"
    );
    Ok(())
}

fn mismatch(issued: &Issued) -> Result<BTreeSet<ErrorOn>, support::SupportError> {
    expect(&[(HostNameMismatch, &issued.cert_der)])
}

#[test]
fn wildcard_matches_exactly_one_left_most_label() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.wildcard_leaf("*.example.test")?;
    let server = serve(&leaf, true, &[])?;
    let none = BTreeSet::new();
    verify_name(&pki, &server, "www.example.test", &none)?;
    verify_name(&pki, &server, "WWW.Example.TEST", &none)?;
    verify_name(&pki, &server, "example.test", &mismatch(&leaf)?)?;
    verify_name(&pki, &server, "a.b.example.test", &mismatch(&leaf)?)?;
    verify_name(&pki, &server, "www.example.other", &mismatch(&leaf)?)?;
    Ok(())
}

#[test]
fn ip_only_certificate_matches_127_0_0_1_but_not_localhost() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.ip_only_leaf("127.0.0.1")?;
    let server = serve(&leaf, true, &[])?;
    verify_name(&pki, &server, "127.0.0.1", &BTreeSet::new())?;
    verify_name(&pki, &server, "localhost", &mismatch(&leaf)?)?;

    // Without a peer name, the host connected to (an IP literal) is what is verified.
    let mut client = SslSocket::with_configuration(trusting(pki.root_pem())?);
    client.connect_to_host_encrypted("127.0.0.1", server.port());
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(client.ssl_handshake_errors().is_empty());
    Ok(())
}

#[test]
fn certificate_for_a_name_does_not_match_its_ip_address() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    verify_name(&pki, &server, "127.0.0.1", &mismatch(&leaf)?)?;
    verify_name(&pki, &server, "localhost", &BTreeSet::new())?;
    Ok(())
}

#[test]
fn common_name_is_not_used_when_a_subject_alternative_name_exists() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["other.example"])?;
    let server = serve(&leaf, true, &[])?;
    verify_name(&pki, &server, "localhost", &mismatch(&leaf)?)?;
    verify_name(&pki, &server, "other.example", &BTreeSet::new())?;
    Ok(())
}

#[test]
fn common_name_is_used_when_there_is_no_subject_alternative_name() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf_without_san("localhost")?;
    let server = serve(&leaf, true, &[])?;
    verify_name(&pki, &server, "localhost", &BTreeSet::new())?;
    verify_name(&pki, &server, "LOCALHOST", &BTreeSet::new())?;
    verify_name(&pki, &server, "other.example", &mismatch(&leaf)?)?;
    Ok(())
}

#[test]
fn common_name_never_matches_an_ip_address() -> TestResult {
    // The contract: IP literals match only IP subject alternative names. (OpenSSL's
    // `-verify_ip` agrees: it never looks at the CN.)
    let pki = Pki::new()?;
    let leaf = pki.leaf_without_san("127.0.0.1")?;
    let server = serve(&leaf, true, &[])?;
    verify_name(&pki, &server, "127.0.0.1", &mismatch(&leaf)?)?;
    Ok(())
}

#[test]
fn peer_verify_name_replaces_the_host_connected_to_for_verification_and_sni() -> TestResult {
    let pki = Pki::new()?;
    let other = pki.leaf("default.example", &["default.example"])?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    // The server serves `other` by default and `leaf` (alone: s_server sends no chain for
    // its second certificate) to a client whose SNI is "localhost". The clients trust root
    // and intermediate, so the lone leaf verifies.
    let cert2 = leaf.cert_pem.to_string_lossy().into_owned();
    let key2 = leaf.key_pem.to_string_lossy().into_owned();
    let extra = [
        "-servername",
        "localhost",
        "-cert2",
        cert2.as_str(),
        "-key2",
        key2.as_str(),
    ];
    let server = serve(&other, true, &extra)?;
    let port = server.port();
    let trust = || trusting(pki.ca_bundle_pem());

    // No peer name: no SNI (an IP literal), the default certificate, verified for
    // 127.0.0.1.
    let mut plain = SslSocket::with_configuration(trust()?);
    plain.connect_to_host_encrypted("127.0.0.1", port);
    assert!(plain.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    assert_eq!(error_set(plain.ssl_handshake_errors()), mismatch(&other)?);
    drop(plain);

    // set_peer_verify_name before connecting.
    let mut named = SslSocket::with_configuration(trust()?);
    named.set_peer_verify_name("localhost");
    named.connect_to_host_encrypted("127.0.0.1", port);
    named.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(named.ssl_handshake_errors().is_empty());
    assert_eq!(
        named.peer_certificate().map(|c| c.der()),
        Some(&leaf.cert_der[..])
    );
    named.close()?;

    // connect_to_host_encrypted_with_peer_name.
    let mut with_name = client_to(trust()?, port, "localhost");
    with_name.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(with_name.ssl_handshake_errors().is_empty());
    assert_eq!(
        with_name.peer_certificate().map(|c| c.der()),
        Some(&leaf.cert_der[..])
    );
    with_name.close()?;

    // Connecting to the name itself.
    let mut by_name = SslSocket::with_configuration(trust()?);
    by_name.connect_to_host_encrypted("localhost", port);
    by_name.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(by_name.ssl_handshake_errors().is_empty());
    assert_eq!(
        by_name.peer_certificate().map(|c| c.der()),
        Some(&leaf.cert_der[..])
    );
    by_name.close()?;

    // A peer name the certificate does not carry: the SNI gets the default certificate,
    // verified for that name.
    let mut wrong = client_to(trust()?, port, "wrong.example");
    assert!(wrong.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    assert_eq!(error_set(wrong.ssl_handshake_errors()), mismatch(&other)?);
    Ok(())
}

#[test]
fn peer_name_with_a_trailing_dot_matches_the_name_without_it() -> TestResult {
    // The collector's documented rule: one trailing dot is ignored on either side.
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost.");
    let result = client.wait_for_encrypted(HANDSHAKE_TIMEOUT);
    assert_eq!(client.ssl_handshake_errors(), [], "{result:?}");
    result?;
    client.close()?;

    let wildcard = pki.wildcard_leaf("*.example.test")?;
    let server = serve(&wildcard, true, &[])?;
    let mut client = client_to(
        trusting(pki.root_pem())?,
        server.port(),
        "www.example.test.",
    );
    let result = client.wait_for_encrypted(HANDSHAKE_TIMEOUT);
    assert_eq!(client.ssl_handshake_errors(), [], "{result:?}");
    result?;
    Ok(())
}

/// An empty peer verify name is no name: the host connected to is verified (Qt:
/// `verificationPeerName.isEmpty() ? peerName()`). A name that is only a dot names no
/// host: the handshake does not start. Neither turns the name check off, with SNI or
/// without (the OpenSSL backend once checked no name at all for both).
#[test]
fn an_empty_or_dot_peer_verify_name_never_turns_the_name_check_off() -> TestResult {
    use sslsocket::SslOption::SslOptionDisableServerNameIndication;
    let pki = Pki::new()?;
    let other = pki.leaf("other.example", &["other.example"])?;
    let server = serve(&other, true, &[])?;
    for sni in [true, false] {
        let mut trust = trusting(pki.root_pem())?;
        trust.set_ssl_option(SslOptionDisableServerNameIndication, !sni);

        let mut empty = SslSocket::with_configuration(trust.clone());
        empty.set_peer_verify_name("");
        empty.connect_to_host_encrypted("localhost", server.port());
        assert!(empty.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
        assert!(!empty.is_encrypted());
        assert_eq!(
            error_set(empty.ssl_handshake_errors()),
            mismatch(&other)?,
            "SNI {sni}"
        );

        let mut empty_with_name = client_to(trust.clone(), server.port(), "");
        assert!(empty_with_name
            .wait_for_encrypted(HANDSHAKE_TIMEOUT)
            .is_err());
        assert!(!empty_with_name.is_encrypted());
        assert_eq!(
            error_set(empty_with_name.ssl_handshake_errors()),
            mismatch(&other)?,
            "SNI {sni}, verified for 127.0.0.1"
        );

        let mut dot = SslSocket::with_configuration(trust);
        dot.set_peer_verify_name(".");
        dot.connect_to_host_encrypted("localhost", server.port());
        assert!(dot.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
        assert!(!dot.is_encrypted());
        assert!(
            dot.error_string().contains("not a valid host name"),
            "SNI {sni}: {}",
            dot.error_string()
        );
    }
    Ok(())
}

/// The contract's rule, stricter than OpenSSL's own (which consults the CN whenever no
/// dNSName is present): a certificate with subject alternative names, even none of them a
/// DNS name, is never matched by its common name, on either backend.
#[test]
fn common_name_is_not_used_when_the_only_alternative_names_are_addresses() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["127.0.0.1"])?;
    let server = serve(&leaf, true, &[])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    assert!(client.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    assert!(!client.is_encrypted());
    assert_eq!(error_set(client.ssl_handshake_errors()), mismatch(&leaf)?);

    let mut by_address = client_to(trusting(pki.root_pem())?, server.port(), "127.0.0.1");
    by_address.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(by_address.ssl_handshake_errors().is_empty());
    Ok(())
}
