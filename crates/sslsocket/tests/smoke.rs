//! A first end-to-end check: our blocking client against our blocking server.

use std::io::{Read, Write};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{SslCertificate, SslConfiguration, SslKey, SslProtocol};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Our server with the leaf, and a client that trusts nothing: verification must pause.
fn untrusting_paused_client() -> Result<(SslServer, SslSocket), Box<dyn std::error::Error>> {
    let (_ca, leaf, key) = pki()?;
    let mut server_cfg = SslConfiguration::default();
    server_cfg.set_local_certificate(leaf).set_private_key(key);
    let server = SslServer::listen("127.0.0.1:0", server_cfg)?;
    let mut client_cfg = SslConfiguration::default();
    client_cfg.set_ca_certificates(Vec::new());
    let mut client = SslSocket::with_configuration(client_cfg);
    client.set_pause_mode(sslsocket::PauseMode::PauseOnSslErrors);
    client.connect_to_host_encrypted("localhost", server.local_addr().port());
    Ok((server, client))
}

fn pki() -> Result<(SslCertificate, SslCertificate, SslKey), Box<dyn std::error::Error>> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Smoke CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_key = KeyPair::generate()?;
    let leaf =
        CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&leaf_key, &issuer)?;
    Ok((
        SslCertificate::from_der(ca.der())?,
        SslCertificate::from_der(leaf.der())?,
        SslKey::from_der(&leaf_key.serialize_der())?,
    ))
}

#[test]
fn blocking_client_and_server_exchange_a_line() -> TestResult {
    let (ca, leaf, key) = pki()?;
    let mut server_cfg = SslConfiguration::default();
    server_cfg.set_local_certificate(leaf).set_private_key(key);
    let server = SslServer::listen("127.0.0.1:0", server_cfg)?;
    let port = server.local_addr().port();
    let handle = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let mut socket = server.accept().map_err(|e| e.to_string())?;
        socket
            .wait_for_ready_read(Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let line = socket.read_line(0);
        socket.write_all(&line).map_err(|e| e.to_string())?;
        socket.close().map_err(|e| e.to_string())?;
        Ok(line)
    });
    let mut client_cfg = SslConfiguration::default();
    client_cfg.set_ca_certificates(vec![ca]);
    let mut client = SslSocket::with_configuration(client_cfg);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(Duration::from_secs(5))?;
    assert_eq!(client.session_protocol(), SslProtocol::TlsV1_3);
    client.write_all(b"hello\n")?;
    let mut echoed = Vec::new();
    client.read_to_end(&mut echoed)?;
    assert_eq!(echoed, b"hello\n");
    let served = handle.join().map_err(|_| "server thread panicked")??;
    assert_eq!(served, b"hello\n");
    Ok(())
}

#[test]
fn wrong_host_fails_with_handshake_error() -> TestResult {
    let (ca, leaf, key) = pki()?;
    let mut server_cfg = SslConfiguration::default();
    server_cfg.set_local_certificate(leaf).set_private_key(key);
    let server = SslServer::listen("127.0.0.1:0", server_cfg)?;
    let port = server.local_addr().port();
    let mut client_cfg = SslConfiguration::default();
    client_cfg.set_ca_certificates(vec![ca]);
    let mut client = SslSocket::with_configuration(client_cfg);
    client.connect_to_host_encrypted("127.0.0.1", port);
    let err = client
        .wait_for_encrypted(Duration::from_secs(5))
        .err()
        .ok_or("handshake should fail")?;
    assert_eq!(
        err.socket_error(),
        sslsocket::SocketError::SslHandshakeFailedError
    );
    assert!(
        err.to_string().contains("certificate verification failed"),
        "{err}"
    );
    drop(server);
    Ok(())
}

#[test]
fn paused_handshake_completes_after_ignore_and_resume() -> TestResult {
    let (server, mut client) = untrusting_paused_client()?;
    assert!(client.wait_for_encrypted(Duration::from_secs(5)).is_err());
    assert!(client.is_paused());
    assert!(!client.ssl_handshake_errors().is_empty());
    client.ignore_ssl_errors();
    client.resume()?;
    client.wait_for_encrypted(Duration::from_secs(5))?;
    assert!(client.is_encrypted());
    let mut accepted = server.accept()?;
    assert!(accepted.is_encrypted());
    accepted.abort();
    Ok(())
}

#[test]
fn paused_handshake_fails_on_resume_without_ignoring() -> TestResult {
    let (_server, mut client) = untrusting_paused_client()?;
    assert!(client.wait_for_encrypted(Duration::from_secs(5)).is_err());
    let err = client.resume().err().ok_or("resume should fail")?;
    assert_eq!(
        err.socket_error(),
        sslsocket::SocketError::SslHandshakeFailedError
    );
    Ok(())
}

#[test]
fn the_socket_shows_its_configuration_the_qt_way() -> TestResult {
    let (_ca, leaf, key) = pki()?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate(leaf.clone())
        .set_private_key(key.clone());
    let mut socket = SslSocket::with_configuration(configuration);
    assert_eq!(socket.local_certificate(), Some(&leaf));
    assert_eq!(
        socket.local_certificate_chain(),
        std::slice::from_ref(&leaf)
    );
    assert_eq!(socket.private_key(), Some(&key));
    assert_eq!(socket.protocol(), SslProtocol::SecureProtocols);
    assert_eq!(
        socket.peer_verify_mode(),
        sslsocket::PeerVerifyMode::AutoVerifyPeer
    );
    socket.set_peer_verify_depth(3)?;
    assert_eq!(socket.peer_verify_depth(), 3);
    socket.set_peer_verify_name("example.test");
    assert_eq!(socket.peer_verify_name(), Some("example.test"));
    assert_eq!(socket.error_string(), "Unknown error");
    assert_eq!(socket.state(), sslsocket::SocketState::UnconnectedState);
    assert_eq!(socket.mode(), sslsocket::SslMode::UnencryptedMode);
    Ok(())
}
