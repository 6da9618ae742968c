//! Ignore lists against `openssl s_server`: an error ignored on the certificate it concerns
//! lets the handshake through, the same error bound to another certificate does not,
//! every error of the list must be covered, and `IgnoreRule::AnyCertificate` ignores a kind
//! wherever it occurs.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::SslErrorKind::*;
use sslsocket::{IgnoreRule, SocketError, SslError, SslErrorKind};

use support::trust::{
    certificate, client_to, error_set, expect, serve, trusting, ErrorOn, HANDSHAKE_TIMEOUT,
};
use support::{Issued, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The result of one handshake of our client with `ignore` applied before connecting.
fn handshake_with(
    pki: &Pki,
    server: &OpensslServer,
    ignore: impl FnOnce(&mut sslsocket::blocking::SslSocket),
) -> Result<(bool, BTreeSet<ErrorOn>), Box<dyn std::error::Error>> {
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    ignore(&mut client);
    let result = client.wait_for_encrypted(HANDSHAKE_TIMEOUT);
    let errors = error_set(client.ssl_handshake_errors());
    match &result {
        Ok(()) => {
            assert!(client.is_encrypted());
            client.close()?;
        }
        Err(e) => assert_eq!(
            e.socket_error(),
            SocketError::SslHandshakeFailedError,
            "{e}"
        ),
    }
    Ok((result.is_ok(), errors))
}

fn error_on(kind: SslErrorKind, der: &[u8]) -> Result<SslError, support::SupportError> {
    Ok(SslError::with_certificate(kind, certificate(der)?))
}

/// A leaf of the untrusted root, served with that root: one error, on the root.
fn untrusted(pki: &Pki) -> Result<(Issued, OpensslServer), Box<dyn std::error::Error>> {
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    Ok((leaf, server))
}

#[test]
fn ignoring_the_error_on_the_certificate_it_concerns_lets_the_handshake_through() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = untrusted(&pki)?;
    let expected = expect(&[(SelfSignedCertificateInChain, pki.untrusted_root_der())])?;
    let right = error_on(SelfSignedCertificateInChain, pki.untrusted_root_der())?;
    let (ok, errors) = handshake_with(&pki, &server, |c| c.ignore_ssl_errors_list(&[right]))?;
    assert!(ok);
    assert_eq!(errors, expected);
    Ok(())
}

#[test]
fn ignoring_the_error_on_another_certificate_does_not_let_it_through() -> TestResult {
    let pki = Pki::new()?;
    let (leaf, server) = untrusted(&pki)?;
    let expected = expect(&[(SelfSignedCertificateInChain, pki.untrusted_root_der())])?;

    let on_leaf = error_on(SelfSignedCertificateInChain, &leaf.cert_der)?;
    let (ok, errors) = handshake_with(&pki, &server, |c| c.ignore_ssl_errors_list(&[on_leaf]))?;
    assert!(!ok);
    assert_eq!(errors, expected);

    // The trusted root has the right role but is not the certificate concerned.
    let on_root = error_on(SelfSignedCertificateInChain, pki.root_der())?;
    let (ok, _) = handshake_with(&pki, &server, |c| c.ignore_ssl_errors_list(&[on_root]))?;
    assert!(!ok);

    // An exact entry without a certificate matches only errors without one.
    let bare = SslError::new(SelfSignedCertificateInChain);
    let (ok, _) = handshake_with(&pki, &server, |c| c.ignore_ssl_errors_list(&[bare]))?;
    assert!(!ok);
    Ok(())
}

#[test]
fn ignoring_another_kind_on_the_right_certificate_does_not_let_it_through() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = untrusted(&pki)?;
    let wrong_kind = error_on(SelfSignedCertificate, pki.untrusted_root_der())?;
    let (ok, _) = handshake_with(&pki, &server, |c| c.ignore_ssl_errors_list(&[wrong_kind]))?;
    assert!(!ok);
    Ok(())
}

#[test]
fn every_error_must_be_ignored_for_the_handshake_to_go_through() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, false, &[])?;
    let local = error_on(UnableToGetLocalIssuerCertificate, &leaf.cert_der)?;
    let first = error_on(UnableToVerifyFirstCertificate, &leaf.cert_der)?;

    let (ok, errors) = handshake_with(&pki, &server, |c| {
        c.ignore_ssl_errors_list(std::slice::from_ref(&local))
    })?;
    assert!(!ok);
    assert_eq!(errors.len(), 2);

    let (ok, _) = handshake_with(&pki, &server, |c| {
        c.ignore_ssl_errors_list(std::slice::from_ref(&first))
    })?;
    assert!(!ok);

    let both = [first, local];
    let (ok, errors) = handshake_with(&pki, &server, |c| c.ignore_ssl_errors_list(&both))?;
    assert!(ok);
    assert_eq!(
        errors,
        expect(&[
            (UnableToGetLocalIssuerCertificate, &leaf.cert_der),
            (UnableToVerifyFirstCertificate, &leaf.cert_der),
        ])?
    );
    Ok(())
}

#[test]
fn extra_entries_in_the_ignore_list_do_no_harm() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let list = [
        error_on(HostNameMismatch, &leaf.cert_der)?,
        error_on(CertificateExpired, &leaf.cert_der)?,
        error_on(SelfSignedCertificate, pki.root_der())?,
    ];
    let (ok, errors) = handshake_with(&pki, &server, |c| c.ignore_ssl_errors_list(&list))?;
    assert!(ok);
    assert_eq!(errors, expect(&[(CertificateExpired, &leaf.cert_der)])?);
    Ok(())
}

#[test]
fn ignoring_a_kind_on_any_certificate_lets_it_through() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = untrusted(&pki)?;
    let (ok, _) = handshake_with(&pki, &server, |c| {
        c.ignore_ssl_error_rules(vec![IgnoreRule::AnyCertificate(
            SelfSignedCertificateInChain,
        )])
    })?;
    assert!(ok);
    let (ok, _) = handshake_with(&pki, &server, |c| {
        c.ignore_ssl_error_rules(vec![IgnoreRule::AnyCertificate(SelfSignedCertificate)])
    })?;
    assert!(!ok);
    Ok(())
}

#[test]
fn any_certificate_and_exact_rules_combine() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("wrong.example", &["wrong.example"])?;
    let server = serve(&leaf, true, &[])?;
    let exact = error_on(CertificateExpired, &leaf.cert_der)?;
    let (ok, errors) = handshake_with(&pki, &server, |c| {
        c.ignore_ssl_error_rules(vec![
            IgnoreRule::AnyCertificate(HostNameMismatch),
            IgnoreRule::Exact(exact),
        ])
    })?;
    assert!(ok);
    assert_eq!(
        errors,
        expect(&[
            (CertificateExpired, &leaf.cert_der),
            (HostNameMismatch, &leaf.cert_der),
        ])?
    );
    let (ok, _) = handshake_with(&pki, &server, |c| {
        c.ignore_ssl_error_rules(vec![IgnoreRule::AnyCertificate(HostNameMismatch)])
    })?;
    assert!(!ok);
    Ok(())
}

#[test]
fn a_later_ignore_list_replaces_the_earlier_one() -> TestResult {
    let pki = Pki::new()?;
    let (leaf, server) = untrusted(&pki)?;
    let right = error_on(SelfSignedCertificateInChain, pki.untrusted_root_der())?;
    let wrong = error_on(SelfSignedCertificateInChain, &leaf.cert_der)?;
    let (ok, _) = handshake_with(&pki, &server, |c| {
        c.ignore_ssl_errors_list(std::slice::from_ref(&right));
        c.ignore_ssl_errors_list(std::slice::from_ref(&wrong));
    })?;
    assert!(!ok);
    let (ok, _) = handshake_with(&pki, &server, |c| {
        c.ignore_ssl_errors_list(&[wrong]);
        c.ignore_ssl_errors_list(&[right]);
    })?;
    assert!(ok);
    Ok(())
}

#[test]
fn ignore_list_given_after_the_connection_started_applies_to_its_handshake() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = untrusted(&pki)?;
    let right = error_on(SelfSignedCertificateInChain, pki.untrusted_root_der())?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    // TCP is connected and the client hello sent; the server's certificate is not in yet.
    client.wait_for_connected(Duration::from_secs(5))?;
    client.ignore_ssl_errors_list(&[right]);
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(client.is_encrypted());
    // s_server serves one connection at a time.
    client.close()?;

    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.wait_for_connected(Duration::from_secs(5))?;
    client.ignore_ssl_errors();
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(client.is_encrypted());
    Ok(())
}

#[test]
fn ignore_all_is_not_carried_to_a_socket_made_later() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = untrusted(&pki)?;
    let (ok, _) = handshake_with(&pki, &server, |c| c.ignore_ssl_errors())?;
    assert!(ok);
    let (ok, _) = handshake_with(&pki, &server, |_| {})?;
    assert!(!ok);
    Ok(())
}
