//! Client verification settings against `openssl s_server`: the verify depth (counted as
//! OpenSSL counts it, cross-checked with `s_client -verify_depth`), `VerifyNone` and
//! `QueryPeer` on a client, and where the trusted CAs come from.

mod support;

use std::collections::BTreeSet;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::SslErrorKind::*;
use sslsocket::{PeerVerifyMode, SslCertificate, SslConfiguration, SslEvent};

use support::trust::{
    by_subject, client_to, error_set, expect, leaf_two_intermediates_down, openssl_client_errors,
    serve, trusting, verification_events, ErrorOn, HANDSHAKE_TIMEOUT,
};
use support::{Issued, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Our client with `depth` against `issued` (sent with its intermediates) and OpenSSL's
/// with `-verify_depth depth`: both must find `expected`.
fn check_depth(pki: &Pki, issued: &Issued, depth: u32, expected: &BTreeSet<ErrorOn>) -> TestResult {
    let server = serve(issued, true, &[])?;
    // Our 0 means no limit (Qt's); OpenSSL's 0 would allow no intermediate at all.
    let depth_text = depth.to_string();
    let extra: &[&str] = if depth == 0 {
        &[]
    } else {
        &["-verify_depth", depth_text.as_str()]
    };
    let openssl = openssl_client_errors(server.port(), pki.root_pem(), Some("localhost"), extra)?;

    let mut configuration = trusting(pki.root_pem())?;
    configuration.set_peer_verify_depth(depth);
    let mut client = client_to(configuration, server.port(), "localhost");
    let result = client.wait_for_encrypted(HANDSHAKE_TIMEOUT);
    assert_eq!(
        &error_set(client.ssl_handshake_errors()),
        expected,
        "our client with depth {depth} (OpenSSL found {openssl:?})"
    );
    assert_eq!(result.is_ok(), expected.is_empty(), "{result:?}");
    assert_eq!(
        openssl,
        by_subject(expected),
        "OpenSSL with -verify_depth {depth}"
    );
    Ok(())
}

#[test]
fn verify_depth_one_accepts_one_intermediate() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    check_depth(&pki, &leaf, 1, &BTreeSet::new())
}

#[test]
fn verify_depth_one_refuses_two_intermediates_at_the_second() -> TestResult {
    let pki = Pki::new()?;
    let leaf = leaf_two_intermediates_down(&pki, "localhost", &["localhost"])?;
    // OpenSSL stops one certificate past the limit, the intermediate under the root: chain
    // too long (Qt: UnspecifiedError) and no issuer found there.
    let top = &leaf.chain_der[2];
    let expected = expect(&[
        (UnspecifiedError, top.as_slice()),
        (UnableToGetLocalIssuerCertificate, top.as_slice()),
    ])?;
    check_depth(&pki, &leaf, 1, &expected)?;
    check_depth(&pki, &leaf, 2, &BTreeSet::new())?;
    check_depth(&pki, &leaf, 0, &BTreeSet::new())
}

#[test]
fn verify_depth_applies_to_the_path_length_violation_chain() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.pathlen_violation_leaf("localhost", &["localhost"])?;
    let constraining = &leaf.chain_der[2];
    // Within the depth, only the path length is wrong.
    let pathlen = expect(&[(PathLengthExceeded, constraining.as_slice())])?;
    check_depth(&pki, &leaf, 2, &pathlen)?;
    check_depth(&pki, &leaf, 0, &pathlen)?;
    // Depth 1 stops at the pathlen-0 intermediate, as for any two-intermediate chain; the
    // extension checks still see its constraint violated (OpenSSL reports all three).
    let too_long = expect(&[
        (PathLengthExceeded, constraining.as_slice()),
        (UnspecifiedError, constraining.as_slice()),
        (UnableToGetLocalIssuerCertificate, constraining.as_slice()),
    ])?;
    check_depth(&pki, &leaf, 1, &too_long)
}

#[test]
fn verify_none_on_a_client_accepts_anything_and_reports_no_errors() -> TestResult {
    // Qt: a peer that is not verified has no verification errors (`sslHandshakeErrors()`
    // is empty, no `peerVerifyError`/`sslErrors`), on both backends.
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["wrong.example"], true)?;
    let server = serve(&leaf, true, &[])?;
    let mut configuration = trusting(pki.root_pem())?;
    configuration.set_peer_verify_mode(PeerVerifyMode::VerifyNone);
    let mut client = client_to(configuration, server.port(), "localhost");
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(client.is_encrypted());
    assert_eq!(
        client.peer_certificate().map(|c| c.der()),
        Some(&leaf.cert_der[..])
    );
    assert_eq!(client.ssl_handshake_errors(), &[]);
    assert_eq!(
        verification_events(client.take_events()),
        vec![SslEvent::Encrypted]
    );
    Ok(())
}

#[test]
fn a_session_made_without_verification_is_not_resumed_as_verified() -> TestResult {
    // Attack: a `VerifyNone` socket reports no errors, but the errors its handshake found
    // stay with its session; a socket of the same configuration that verifies must not
    // resume that session as if the peer had none.
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["localhost"], true)?;
    let server = serve(&leaf, true, &[])?;
    let configuration = trusting(pki.root_pem())?;
    for round in 0..2 {
        let mut lenient = client_to(configuration.clone(), server.port(), "localhost");
        lenient.set_peer_verify_mode(PeerVerifyMode::VerifyNone)?;
        lenient.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
        assert_eq!(lenient.ssl_handshake_errors(), &[], "round {round}");
        // Lets the session tickets arrive (the server sends nothing else) before closing.
        let _ = lenient.wait_for_ready_read(std::time::Duration::from_millis(200));
        lenient.close()?;
    }
    let mut strict = client_to(configuration, server.port(), "localhost");
    assert!(strict.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    assert!(!strict.is_encrypted());
    let found: Vec<_> = strict
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    assert!(found.contains(&SelfSignedCertificate), "{found:?}");
    Ok(())
}

#[test]
fn query_peer_on_a_client_records_errors_without_failing() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut configuration = trusting(pki.root_pem())?;
    configuration.set_peer_verify_mode(PeerVerifyMode::QueryPeer);
    let mut client = client_to(configuration, server.port(), "localhost");
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert_eq!(
        error_set(client.ssl_handshake_errors()),
        expect(&[(CertificateExpired, &leaf.cert_der)])?
    );
    Ok(())
}

#[test]
fn errors_found_in_query_peer_mode_are_signalled_as_qt_does() -> TestResult {
    // Qt 6 (TlsCryptographOpenSSL::startHandshake, checkSslErrors) emits peerVerifyError
    // for each error and then sslErrors with the list whenever the list is not empty in a
    // mode that verifies; only failing (or pausing) depends on VerifyPeer. `VerifyNone`
    // verifies nothing and reports nothing (test above).
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("wrong.example", &["wrong.example"])?;
    let server = serve(&leaf, true, &[])?;
    let mut configuration = trusting(pki.root_pem())?;
    configuration.set_peer_verify_mode(PeerVerifyMode::QueryPeer);
    let mut client = client_to(configuration, server.port(), "localhost");
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    let errors = client.ssl_handshake_errors().to_vec();
    assert!(!errors.is_empty());
    let mut expected: Vec<SslEvent> = errors
        .iter()
        .cloned()
        .map(SslEvent::PeerVerifyError)
        .collect();
    expected.push(SslEvent::SslErrors(errors));
    expected.push(SslEvent::Encrypted);
    assert_eq!(verification_events(client.take_events()), expected);
    client.close()?;
    Ok(())
}

#[test]
fn auto_verify_peer_on_a_client_is_verify_peer() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut configuration = trusting(pki.root_pem())?;
    configuration.set_peer_verify_mode(PeerVerifyMode::AutoVerifyPeer);
    let mut client = client_to(configuration, server.port(), "localhost");
    assert!(client.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    assert_eq!(
        error_set(client.ssl_handshake_errors()),
        expect(&[(CertificateExpired, &leaf.cert_der)])?
    );
    Ok(())
}

#[test]
fn added_ca_certificates_without_the_system_store_are_trusted() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_system_ca_on_demand(false)
        .add_ca_certificates(SslCertificate::from_file(pki.root_pem())?);
    let mut client = client_to(configuration, server.port(), "localhost");
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(client.ssl_handshake_errors().is_empty());
    client.close()?;

    // The same client trusting nothing at all: the intermediate's issuer is unknown.
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(Vec::new());
    let mut client = client_to(configuration, server.port(), "localhost");
    assert!(client.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    assert_eq!(
        error_set(client.ssl_handshake_errors()),
        expect(&[(UnableToGetLocalIssuerCertificate, pki.intermediate_der())])?
    );
    Ok(())
}

#[test]
fn configuration_from_a_ca_file_trusts_its_certificates() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut configuration = SslConfiguration::default();
    configuration.set_system_ca_on_demand(false);
    configuration.add_ca_certificates_from_file(pki.root_pem())?;
    let mut client = SslSocket::with_configuration(configuration);
    client.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port(), "localhost");
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(client.ssl_handshake_errors().is_empty());
    Ok(())
}
