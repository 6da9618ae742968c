//! Session features on the rustls backend: protocols, ciphers, groups, ALPN, exported
//! keying material and pinning, between our client and our server or `openssl s_server`.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::core::NextProtocolNegotiationStatus;
use sslsocket::{
    SslCertificate, SslConfiguration, SslEllipticCurve, SslErrorKind, SslKey, SslProtocol,
};
use support::{os_args, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

fn server_configuration(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(&leaf.chain_pem)?)
        .set_private_key(SslKey::from_file(&leaf.key_pem, None)?);
    Ok(configuration)
}

fn client_configuration(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(SslCertificate::from_file(pki.root_pem())?);
    Ok(configuration)
}

/// Runs a handshake between our client and our server with these configurations; returns
/// both sockets (the client's result is returned as is).
fn pair(
    server: SslConfiguration,
    client: SslConfiguration,
) -> Result<(SslSocket, Result<SslSocket, SslSocket>), Box<dyn std::error::Error>> {
    let listener = SslServer::listen("127.0.0.1:0", server)?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", listener.local_addr().port());
    let _ = socket.wait_for_encrypted(WAIT);
    let accepted = listener.next_connection(WAIT)?;
    Ok((socket, accepted))
}

#[test]
fn a_pinned_tls_version_is_the_one_negotiated_and_a_mismatch_fails() -> TestResult {
    let pki = Pki::new()?;
    let mut server = server_configuration(&pki)?;
    server.set_protocol(SslProtocol::TlsV1_2);
    let (client, accepted) = pair(server.clone(), client_configuration(&pki)?)?;
    assert!(client.is_encrypted(), "{}", client.error_string());
    assert_eq!(client.session_protocol(), SslProtocol::TlsV1_2);
    assert!(accepted.is_ok());

    let mut client_13 = client_configuration(&pki)?;
    client_13.set_protocol(SslProtocol::TlsV1_3);
    let (client, accepted) = pair(server, client_13)?;
    assert!(!client.is_encrypted());
    assert_eq!(
        client.error(),
        sslsocket::SocketError::SslHandshakeFailedError
    );
    assert!(accepted.is_err());
    Ok(())
}

#[test]
fn tls_1_0_is_refused_by_the_rustls_backend_with_a_clear_error() -> TestResult {
    let pki = Pki::new()?;
    let mut client = client_configuration(&pki)?;
    client.set_protocol(SslProtocol::TlsV1_0);
    let (socket, _) = pair(server_configuration(&pki)?, client)?;
    assert_eq!(
        socket.error(),
        sslsocket::SocketError::SslInvalidUserDataError
    );
    assert!(
        socket.error_string().contains("not supported"),
        "{}",
        socket.error_string()
    );
    Ok(())
}

#[test]
fn a_restricted_cipher_is_used_and_a_cipher_mismatch_fails() -> TestResult {
    let pki = Pki::new()?;
    let mut client = client_configuration(&pki)?;
    client.set_ciphers_str("TLS_CHACHA20_POLY1305_SHA256")?;
    let (socket, _) = pair(server_configuration(&pki)?, client.clone())?;
    let cipher = socket.session_cipher().ok_or("no cipher")?;
    assert_eq!(cipher.name(), "TLS_CHACHA20_POLY1305_SHA256");
    assert_eq!(cipher.used_bits(), 256);

    let mut server = server_configuration(&pki)?;
    server.set_ciphers_str("TLS_AES_128_GCM_SHA256")?;
    let (socket, _) = pair(server, client)?;
    assert!(!socket.is_encrypted());
    assert_eq!(
        socket.error(),
        sslsocket::SocketError::SslHandshakeFailedError
    );
    assert!(client_configuration(&pki)?
        .set_ciphers_str("NO_SUCH_CIPHER")
        .is_err());
    Ok(())
}

#[test]
fn the_post_quantum_hybrid_group_is_the_default_and_groups_can_be_chosen() -> TestResult {
    let pki = Pki::new()?;
    let (socket, _) = pair(server_configuration(&pki)?, client_configuration(&pki)?)?;
    assert_eq!(socket.core().ephemeral_key_group(), Some("X25519MLKEM768"));
    let mut client = client_configuration(&pki)?;
    client.set_elliptic_curves(vec![
        SslEllipticCurve::from_short_name("P-384").ok_or("curve")?
    ]);
    let (socket, _) = pair(server_configuration(&pki)?, client)?;
    assert_eq!(socket.core().ephemeral_key_group(), Some("secp384r1"));
    assert!(SslConfiguration::supported_elliptic_curves()
        .iter()
        .any(|c| c.short_name() == "X25519MLKEM768"));
    Ok(())
}

#[test]
fn alpn_is_agreed_with_openssl_and_reports_no_overlap() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-alpn", "h2,http/1.1", "-quiet"]);
    let server = OpensslServer::start(&args)?;
    let mut configuration = client_configuration(&pki)?;
    configuration.set_allowed_next_protocols(vec![b"h2".to_vec()]);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    assert_eq!(socket.next_negotiated_protocol(), Some(&b"h2"[..]));
    assert_eq!(
        socket.core().next_protocol_negotiation_status(),
        NextProtocolNegotiationStatus::NextProtocolNegotiationNegotiated
    );
    socket.abort();

    // Our server accepts only `h2`; a client offering only `http/1.1` is refused.
    let mut server_cfg = server_configuration(&pki)?;
    server_cfg.set_allowed_next_protocols(vec![b"h2".to_vec()]);
    let mut client_cfg = client_configuration(&pki)?;
    client_cfg.set_allowed_next_protocols(vec![b"http/1.1".to_vec()]);
    let (socket, accepted) = pair(server_cfg, client_cfg)?;
    assert!(!socket.is_encrypted());
    assert!(accepted.is_err());
    Ok(())
}

#[test]
fn exported_keying_material_is_equal_on_both_ends() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, accepted) = pair(server_configuration(&pki)?, client_configuration(&pki)?)?;
    let mut server = accepted.map_err(|_| "server handshake failed")?;
    let a = client.export_keying_material(32, b"EXPORTER-test", Some(b"ctx"))?;
    let b = server.export_keying_material(32, b"EXPORTER-test", Some(b"ctx"))?;
    assert_eq!(a, b);
    assert_ne!(
        a,
        client.export_keying_material(32, b"EXPORTER-other", Some(b"ctx"))?
    );
    client.write_all(b"x")?;
    client.flush()?;
    server.wait_for_ready_read(WAIT)?;
    let mut one = [0u8; 1];
    server.read_exact(&mut one)?;
    Ok(())
}

#[test]
fn a_pin_on_the_root_key_passes_and_a_wrong_pin_is_rejected_on_the_leaf() -> TestResult {
    let pki = Pki::new()?;
    let root = SslCertificate::from_file(pki.root_pem())?
        .into_iter()
        .next()
        .ok_or("root")?;
    let mut client = client_configuration(&pki)?;
    client.set_pinned_public_keys(vec![root.public_key_sha256()]);
    let (socket, _) = pair(server_configuration(&pki)?, client.clone())?;
    assert!(socket.is_encrypted(), "{}", socket.error_string());
    let mut wrong = client;
    wrong.set_pinned_public_keys(vec![[7u8; 32]]);
    let (socket, _) = pair(server_configuration(&pki)?, wrong)?;
    assert!(!socket.is_encrypted());
    assert!(socket
        .ssl_handshake_errors()
        .iter()
        .any(|e| e.error() == SslErrorKind::CertificateRejected
            && e.certificate() == socket.peer_certificate()));
    Ok(())
}
