//! `SslCertificate::verify(chain, host)` (Qt's `QSslCertificate::verify`) against the
//! handshake: for the chain a real `openssl s_server` sent, it returns the same list, in
//! the same order, as `ssl_handshake_errors()` of a client trusting the same CAs.
//!
//! `verify` reads the process default configuration, so this binary holds one test that
//! sets it once.

mod support;

use sslsocket::prelude::*;
use sslsocket::SslErrorKind::{self, HostNameMismatch, UnspecifiedError};
use sslsocket::{SslCertificate, SslConfiguration, SslError};

use support::trust::{client_to, error_set, serve, trusting, HANDSHAKE_TIMEOUT};
use support::{Issued, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The handshake's list for `issued` served (with or without its intermediates) and
/// verified for `peer_name`, and the chain the server sent.
fn handshake_errors(
    pki: &Pki,
    issued: &Issued,
    with_intermediates: bool,
    peer_name: &str,
) -> Result<(Vec<SslError>, Vec<SslCertificate>), Box<dyn std::error::Error>> {
    let server = serve(issued, with_intermediates, &[])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), peer_name);
    client.ignore_ssl_errors();
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    let errors = client.ssl_handshake_errors().to_vec();
    let chain = client.peer_certificate_chain().to_vec();
    client.close()?;
    Ok((errors, chain))
}

#[test]
fn certificate_verify_agrees_with_the_handshake_on_every_scenario() -> TestResult {
    let pki = Pki::new()?;
    let mut default = SslConfiguration::default();
    default.set_ca_certificates(SslCertificate::from_file(pki.root_pem())?);
    SslConfiguration::set_default_configuration(default);

    let scenarios: Vec<(&str, Issued, bool, &str)> = vec![
        (
            "good",
            pki.leaf("localhost", &["localhost"])?,
            true,
            "localhost",
        ),
        (
            "expired",
            pki.expired_leaf("localhost", &["localhost"])?,
            true,
            "localhost",
        ),
        (
            "not yet valid",
            pki.not_yet_valid_leaf("localhost", &["localhost"])?,
            true,
            "localhost",
        ),
        (
            "wrong host",
            pki.leaf("wrong.example", &["wrong.example"])?,
            true,
            "localhost",
        ),
        (
            "expired and wrong host",
            pki.expired_leaf("wrong.example", &["wrong.example"])?,
            true,
            "localhost",
        ),
        (
            "self-signed",
            pki.self_signed_leaf(&["localhost"], true)?,
            true,
            "localhost",
        ),
        (
            "untrusted root in chain",
            pki.untrusted_leaf("localhost", &["localhost"])?,
            true,
            "localhost",
        ),
        (
            "untrusted leaf alone",
            pki.untrusted_leaf("localhost", &["localhost"])?,
            false,
            "localhost",
        ),
        (
            "missing intermediate",
            pki.leaf("localhost", &["localhost"])?,
            false,
            "localhost",
        ),
        (
            "wrong purpose",
            pki.wrong_eku_leaf("localhost", &["localhost"])?,
            true,
            "localhost",
        ),
        (
            "non-CA intermediate",
            pki.leaf_under_non_ca_intermediate("localhost", &["localhost"])?,
            true,
            "localhost",
        ),
        (
            "path length",
            pki.pathlen_violation_leaf("localhost", &["localhost"])?,
            true,
            "localhost",
        ),
        (
            "wildcard, two labels",
            pki.wildcard_leaf("*.example.test")?,
            true,
            "a.b.example.test",
        ),
        (
            "wildcard, one label",
            pki.wildcard_leaf("*.example.test")?,
            true,
            "a.example.test",
        ),
        (
            "IP only, by name",
            pki.ip_only_leaf("127.0.0.1")?,
            true,
            "localhost",
        ),
        (
            "IP only, by address",
            pki.ip_only_leaf("127.0.0.1")?,
            true,
            "127.0.0.1",
        ),
        (
            "CN only",
            pki.leaf_without_san("localhost")?,
            true,
            "localhost",
        ),
        (
            "RSA",
            pki.rsa_leaf("localhost", &["localhost"])?,
            true,
            "localhost",
        ),
    ];

    let mut nonempty = 0;
    for (what, issued, with_intermediates, peer_name) in &scenarios {
        let (handshake, chain) = handshake_errors(&pki, issued, *with_intermediates, peer_name)?;
        if !handshake.is_empty() {
            nonempty += 1;
        }
        assert!(!chain.is_empty(), "{what}");
        let verified = SslCertificate::verify(&chain, Some(peer_name));
        assert_eq!(
            verified, handshake,
            "{what}: verify vs handshake (same order)"
        );

        // Without a host name, the same list minus the name check.
        let without_host: Vec<SslError> = handshake
            .iter()
            .filter(|e| e.error() != HostNameMismatch)
            .cloned()
            .collect();
        assert_eq!(
            SslCertificate::verify(&chain, None),
            without_host,
            "{what}: no host"
        );
        assert_eq!(
            SslCertificate::verify(&chain, Some("")),
            without_host,
            "{what}: empty host"
        );
    }
    assert!(nonempty >= 12, "most scenarios have errors ({nonempty})");

    // An empty chain: one UnspecifiedError, as in Qt.
    let empty = SslCertificate::verify(&[], Some("localhost"));
    assert_eq!(
        empty
            .iter()
            .map(SslError::error)
            .collect::<Vec<SslErrorKind>>(),
        [UnspecifiedError]
    );

    // verify() follows the process default: with another root as the only CA, the good
    // chain's intermediate has no known issuer.
    let other = Pki::new()?;
    let mut default = SslConfiguration::default();
    default.set_ca_certificates(SslCertificate::from_file(other.root_pem())?);
    SslConfiguration::set_default_configuration(default);
    let good = pki.leaf("localhost", &["localhost"])?;
    let chain: Vec<SslCertificate> = good
        .chain_der
        .iter()
        .map(|d| SslCertificate::from_der(d))
        .collect::<Result<_, _>>()?;
    let errors = SslCertificate::verify(&chain, Some("localhost"));
    assert_eq!(
        error_set(&errors),
        support::trust::expect(&[(
            SslErrorKind::UnableToGetLocalIssuerCertificate,
            pki.intermediate_der()
        )])?
    );
    Ok(())
}
