//! OCSP stapling end to end: responses made by `openssl ocsp` at test time, stapled by
//! `openssl s_server -status_file` or by our server, checked by our client. Both backends
//! give the same results.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    OcspCertificateStatus, OcspRevocationReason, SslCertificate, SslConfiguration, SslErrorKind,
    SslKey,
};
use support::{ocsp_response, os_args, Issued, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

fn response(
    pki: &Pki,
    leaf: &Issued,
    revoked: bool,
    name: &str,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    Ok(ocsp_response(pki, leaf, revoked, name)?)
}

fn stapling_client(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(SslCertificate::from_file(pki.root_pem())?);
    configuration.set_ocsp_stapling_enabled(true);
    Ok(configuration)
}

fn connect(configuration: SslConfiguration, port: u16) -> SslSocket {
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted("localhost", port);
    let _ = socket.wait_for_encrypted(WAIT);
    socket
}

fn openssl_stapling(
    leaf: &Issued,
    status_file: Option<&Path>,
) -> Result<OpensslServer, Box<dyn std::error::Error>> {
    let mut args = leaf.openssl_args();
    if let Some(file) = status_file {
        args.extend(os_args!["-status_file", file]);
    }
    args.extend(os_args!["-quiet"]);
    Ok(OpensslServer::start(&args)?)
}

#[test]
fn a_good_stapled_response_from_openssl_is_verified_and_reported() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let good = response(&pki, &leaf, false, "good")?;
    let server = openssl_stapling(&leaf, Some(&good))?;
    let socket = connect(stapling_client(&pki)?, server.port());
    assert!(
        socket.is_encrypted(),
        "{}: {:?}",
        socket.error_string(),
        socket.ssl_handshake_errors()
    );
    let responses = socket.ocsp_responses();
    assert_eq!(responses.len(), 1);
    assert_eq!(
        responses[0].certificate_status(),
        OcspCertificateStatus::Good
    );
    Ok(())
}

#[test]
fn a_stapled_response_is_checked_over_tls_1_2_too() -> TestResult {
    // TLS 1.2 sends the staple in its own message after the certificate: the decision
    // must still include it.
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let revoked = response(&pki, &leaf, true, "revoked")?;
    let server = openssl_stapling(&leaf, Some(&revoked))?;
    let mut configuration = stapling_client(&pki)?;
    configuration.set_protocol(sslsocket::SslProtocol::TlsV1_2);
    let socket = connect(configuration, server.port());
    assert!(!socket.is_encrypted());
    let kinds: Vec<_> = socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    assert_eq!(kinds, vec![SslErrorKind::CertificateRevoked]);
    assert_eq!(
        socket.ocsp_responses()[0].certificate_status(),
        OcspCertificateStatus::Revoked
    );
    Ok(())
}

#[test]
fn a_revoked_certificate_fails_with_certificate_revoked_on_the_leaf() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let revoked = response(&pki, &leaf, true, "revoked")?;
    let server = openssl_stapling(&leaf, Some(&revoked))?;
    let socket = connect(stapling_client(&pki)?, server.port());
    assert!(!socket.is_encrypted());
    let errors: Vec<_> = socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| (e.error(), e.certificate().cloned()))
        .collect();
    let leaf_cert = SslCertificate::from_file(&leaf.cert_pem)?
        .into_iter()
        .next()
        .ok_or("leaf")?;
    assert_eq!(
        errors,
        vec![(SslErrorKind::CertificateRevoked, Some(leaf_cert))]
    );
    let responses = socket.ocsp_responses();
    assert_eq!(
        responses[0].certificate_status(),
        OcspCertificateStatus::Revoked
    );
    assert_eq!(
        responses[0].revocation_reason(),
        OcspRevocationReason::KeyCompromise
    );
    Ok(())
}

#[test]
fn no_staple_when_one_was_asked_for_is_ocsp_no_response_found_and_can_be_ignored() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = openssl_stapling(&leaf, None)?;
    let socket = connect(stapling_client(&pki)?, server.port());
    assert!(!socket.is_encrypted());
    let kinds: Vec<_> = socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| (e.error(), e.certificate().is_none()))
        .collect();
    assert_eq!(kinds, vec![(SslErrorKind::OcspNoResponseFound, true)]);

    let mut ignoring = SslSocket::with_configuration(stapling_client(&pki)?);
    ignoring.ignore_ssl_error_rules(vec![sslsocket::IgnoreRule::AnyCertificate(
        SslErrorKind::OcspNoResponseFound,
    )]);
    ignoring.connect_to_host_encrypted("localhost", server.port());
    ignoring.wait_for_encrypted(WAIT)?;
    Ok(())
}

#[test]
fn a_response_about_another_certificate_is_cert_id_unknown() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let other = pki.leaf("other", &["other.test"])?;
    let wrong = response(&pki, &other, false, "other")?;
    let server = openssl_stapling(&leaf, Some(&wrong))?;
    let socket = connect(stapling_client(&pki)?, server.port());
    assert!(!socket.is_encrypted());
    assert!(socket
        .ssl_handshake_errors()
        .iter()
        .any(|e| e.error() == SslErrorKind::OcspResponseCertIdUnknown));
    Ok(())
}

#[test]
fn our_server_staples_and_can_replace_the_response_while_running() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let good = std::fs::read(response(&pki, &leaf, false, "good")?)?;
    let revoked = std::fs::read(response(&pki, &leaf, true, "revoked")?)?;
    let mut server_cfg = SslConfiguration::default();
    server_cfg
        .set_local_certificate_chain(SslCertificate::from_file(&leaf.chain_pem)?)
        .set_private_key(SslKey::from_file(&leaf.key_pem, None)?)
        .set_ocsp_response(Some(good));
    let server = SslServer::listen("127.0.0.1:0", server_cfg.clone())?;
    let port = server.local_addr().port();
    let socket = connect(stapling_client(&pki)?, port);
    assert!(socket.is_encrypted(), "{:?}", socket.ssl_handshake_errors());
    assert_eq!(
        socket.ocsp_responses()[0].certificate_status(),
        OcspCertificateStatus::Good
    );

    // A configuration is a plain value: changing the application's copy changes nothing
    // in the running server.
    server_cfg.set_ocsp_response(Some(revoked.clone()));
    let socket = connect(stapling_client(&pki)?, port);
    assert!(socket.is_encrypted(), "{:?}", socket.ssl_handshake_errors());

    // Replace the staple through the server: new handshakes see it.
    server.set_ocsp_response(Some(revoked))?;
    let socket = connect(stapling_client(&pki)?, port);
    assert!(!socket.is_encrypted());
    assert_eq!(
        socket.ocsp_responses()[0].certificate_status(),
        OcspCertificateStatus::Revoked
    );
    Ok(())
}
