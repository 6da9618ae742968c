//! Round 33 parity review (review2): the same program on the rustls and the OpenSSL
//! backend. Run once plain and once with `SSLSOCKET_BACKEND=openssl`; every test asserts
//! the behaviour both backends should share (or Qt's), so a defect fails on at least one.
#![cfg(feature = "openssl")]

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    AlertLevel, AlertType, PeerVerifyMode, SslCertificate, SslConfiguration, SslEllipticCurve,
    SslEvent, SslProtocol,
};
use support::{active_backend, serving, trusting, OpensslClient, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// What a server thread ends with: its socket, the socket of a failed handshake, or no
/// connection at all.
type Served = Result<Result<SslSocket, Box<SslSocket>>, String>;

/// Our blocking server for one connection; the thread returns the server socket (or the
/// failed one) once `script` ran on it.
fn serve_once(
    configuration: SslConfiguration,
    script: impl FnOnce(&mut SslSocket) + Send + 'static,
) -> Result<(u16, std::thread::JoinHandle<Served>), Box<dyn std::error::Error>> {
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    let thread = std::thread::spawn(move || match server.next_connection(WAIT) {
        Ok(Ok(mut socket)) => {
            script(&mut socket);
            Ok(Ok(socket))
        }
        Ok(Err(failed)) => Ok(Err(Box::new(failed))),
        Err(e) => Err(format!("no connection within {WAIT:?}: {e}")),
    });
    Ok((port, thread))
}

fn connect(port: u16, configuration: SslConfiguration) -> SslSocket {
    let mut client = SslSocket::with_configuration(configuration);
    client.connect_to_host_encrypted("localhost", port);
    let _ = client.wait_for_encrypted(WAIT);
    client
}

// ----------------------------------------------------------------------------------------

// Was a defect: OpenSSL backend, TLS 1.2 client: NewSessionTicketReceived is not reported with the handshake (rustls and Qt: before Encrypted) but only after a later read.
#[test]
fn tls12_session_ticket_is_reported_before_encrypted() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server_config = serving(&leaf)?;
    server_config.set_protocol(SslProtocol::TlsV1_2);
    let (port, server) = serve_once(server_config, |s| {
        let _ = s.wait_for_disconnected(WAIT);
    })?;
    let mut client = connect(port, trusting(&pki)?);
    assert!(client.is_encrypted(), "{}", client.error_string());
    assert_eq!(client.session_protocol(), SslProtocol::TlsV1_2);
    // The TLS 1.2 ticket (NewSessionTicket) is part of the server's last flight, before
    // its Finished: the handshake that wait_for_encrypted finished has received it.
    let events = client.take_events();
    let ticket = events
        .iter()
        .position(|e| *e == SslEvent::NewSessionTicketReceived);
    let encrypted = events.iter().position(|e| *e == SslEvent::Encrypted);
    assert!(
        matches!((ticket, encrypted), (Some(t), Some(e)) if t < e),
        "{} backend: NewSessionTicketReceived should precede Encrypted in the handshake's \
         events: {events:?}",
        active_backend()
    );
    client.disconnect_from_host()?;
    let _ = server.join();
    Ok(())
}

// Was a defect: OpenSSL backend, TLS 1.2 server: ephemeral_key_group() is None (OpenSSL frees the server's tmp key before the handshake ends); rustls names the group, as the client does.
#[test]
fn tls12_server_reports_the_key_exchange_group() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server_config = serving(&leaf)?;
    server_config.set_protocol(SslProtocol::TlsV1_2);
    let (port, server) = serve_once(server_config, |s| {
        let _ = s.wait_for_disconnected(WAIT);
    })?;
    let mut client = connect(port, trusting(&pki)?);
    assert!(client.is_encrypted(), "{}", client.error_string());
    let client_group = client.ephemeral_key_group().map(str::to_string);
    client.disconnect_from_host()?;
    let server = server
        .join()
        .map_err(|_| "server thread panicked")??
        .map_err(|s| format!("server handshake: {}", s.error_string()))?;
    assert!(client_group.is_some(), "the client names its ECDHE group");
    assert_eq!(
        server.ephemeral_key_group().map(str::to_string),
        client_group,
        "{} backend: a TLS 1.2 server should name the ECDHE group it used, as the client \
         and a TLS 1.3 server do",
        active_backend()
    );
    Ok(())
}

// Was a defect: rustls backend: AlertSent reports HandshakeFailure for a version mismatch while rustls actually sends protocol_version (OpenSSL backend reports what it sent).
#[test]
fn alert_sent_for_a_version_mismatch_is_the_alert_the_peer_received() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server_config = serving(&leaf)?;
    server_config.set_protocol(SslProtocol::TlsV1_3);
    let (port, server) = serve_once(server_config, |_| {})?;
    // A TLS 1.2-only peer: the server must refuse with protocol_version (RFC 8446
    // section 4.2.1), and s_client says which alert it got.
    let output = OpensslClient::run(port, &["-tls1_2"], b"", WAIT)?.combined();
    let failed = match server.join().map_err(|_| "server thread panicked")?? {
        Ok(_) => return Err("a TLS 1.3-only server accepted a TLS 1.2-only client".into()),
        Err(failed) => failed,
    };
    let mut failed = failed;
    let sent: Vec<_> = failed
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            SslEvent::AlertSent(a) => Some(a),
            _ => None,
        })
        .collect();
    assert!(
        output.contains("alert number 70") || output.contains("alert protocol version"),
        "s_client should report the protocol_version alert it received:\n{output}"
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].level, sent[0].kind),
        (AlertLevel::Fatal, AlertType::ProtocolVersion),
        "{} backend: AlertSent must name the alert that reached the peer (s_client got \
         protocol_version): {sent:?}",
        active_backend()
    );
    Ok(())
}

// Found in review (left, round 33): rustls backend: the no_renegotiation warning rustls sends in answer to a TLS 1.2 HelloRequest is never reported as AlertSent (OpenSSL backend reports AlertSent(Warning, NoRenegotiation)).
#[test]
#[ignore = "known limit: rustls 0.23 reports no alert it sends; only the fatal ones are inferred \
            from its errors, and a warning answering a HelloRequest leaves no error"]
fn the_no_renegotiation_warning_sent_to_a_hello_request_is_reported() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut args = leaf.openssl_args();
    args.push("-tls1_2".into());
    let mut peer = OpensslServer::start(&args)?;
    let mut client = connect(peer.port(), trusting(&pki)?);
    assert!(client.is_encrypted(), "{}", client.error_string());
    client.write_all(b"hi\n")?;
    client.flush()?;
    peer.wait_for_output("hi", WAIT)?;
    // `R`: s_server sends a HelloRequest (renegotiation request); then a line.
    peer.write_stdin(b"R\n")?;
    std::thread::sleep(Duration::from_millis(200));
    peer.write_stdin(b"after\n")?;
    client.set_io_timeout(Some(Duration::from_secs(3)));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while Instant::now() < deadline && !got.ends_with(b"after\n") {
        let mut buf = [0u8; 64];
        match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    // The peer logs the no_renegotiation alert it received (both backends send it).
    peer.wait_for_output("no renegotiation", WAIT)?;
    let events = client.take_events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            SslEvent::AlertSent(a)
                if a.level == AlertLevel::Warning && a.kind == AlertType::NoRenegotiation
        )),
        "{} backend: the no_renegotiation warning that reached the peer is not reported: \
         {events:?}",
        active_backend()
    );
    Ok(())
}

// Found in review (left, round 33): OpenSSL backend: a TLS 1.2 client limited to one group (X25519 or secp384r1) fails against our P-256 server with "psk identity not found" (the server picks a PSK suite though no side has a PSK hook); rustls connects.
#[test]
#[ignore = "known difference: OpenSSL will not use a P-256 ECDSA certificate with a TLS 1.2 \
            client whose supported groups lack P-256 (RFC 4492 5.1; rustls does not check); with \
            the PSK callbacks installed on every context (as Qt does) its error names the PSK \
            suite it fell back to, without them it is 'no shared cipher'"]
fn tls12_client_with_one_group_connects_without_any_psk() -> TestResult {
    for curve in ["X25519", "secp384r1"] {
        let pki = Pki::new()?;
        let leaf = pki.leaf("localhost", &["localhost"])?;
        let (port, server) = serve_once(serving(&leaf)?, |s| {
            let _ = s.wait_for_disconnected(WAIT);
        })?;
        let mut config = trusting(&pki)?;
        config
            .set_protocol(SslProtocol::TlsV1_2)
            .set_elliptic_curves(vec![
                SslEllipticCurve::from_short_name(curve).ok_or("curve unknown")?
            ]);
        let mut client = connect(port, config);
        let message = client.error_string();
        assert!(
            !message.to_ascii_lowercase().contains("psk"),
            "{} backend, client groups [{curve}]: a pre-shared-key suite was negotiated \
             with no PSK hook on either side: {message}",
            active_backend()
        );
        assert!(
            client.is_encrypted(),
            "{} backend, client groups [{curve}]: TLS 1.2 handshake failed (rustls \
             connects): {message}",
            active_backend()
        );
        assert_eq!(client.ephemeral_key_group(), Some(curve));
        client.disconnect_from_host()?;
        let _ = server.join();
    }
    Ok(())
}

// Was a defect: both backends, TLS 1.3 server: session_cipher().authentication_method() is the *client certificate's* key type (RSA), not the server's (ECDSA) as in TLS 1.2 and on the client; core/info.rs session_cipher uses peer_chain.first() first.
#[test]
fn tls13_server_session_cipher_authentication_is_the_servers_key() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?; // ECDSA P-256
    let client_leaf = pki.rsa_leaf("client", &["client"])?; // RSA
    let mut server_config = serving(&leaf)?;
    server_config
        .set_protocol(SslProtocol::TlsV1_3)
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    // Read while connected: a closed socket has no session cipher (Qt; round 34).
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = std::sync::Arc::clone(&seen);
    let (port, server) = serve_once(server_config, move |s| {
        if let Ok(mut slot) = slot.lock() {
            *slot = s.session_cipher();
        }
        let _ = s.wait_for_disconnected(WAIT);
    })?;
    let mut client_config = serving(&client_leaf)?;
    client_config.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    let mut client = connect(port, client_config);
    assert!(client.is_encrypted(), "{}", client.error_string());
    let client_cipher = client.session_cipher().ok_or("no client cipher")?;
    // The server reads its cipher before this client closes (a closed socket has none).
    let deadline = std::time::Instant::now() + WAIT;
    while seen.lock().map_err(|_| "lock")?.is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    client.disconnect_from_host()?;
    let server = server
        .join()
        .map_err(|_| "server thread panicked")??
        .map_err(|s| format!("server handshake: {}", s.error_string()))?;
    assert!(
        server.session_cipher().is_none(),
        "closed: no session cipher"
    );
    let server_cipher = seen
        .lock()
        .map_err(|_| "lock")?
        .clone()
        .ok_or("no server cipher")?;
    assert_eq!(client_cipher.authentication_method(), "ECDSA");
    assert_eq!(
        server_cipher.authentication_method(),
        client_cipher.authentication_method(),
        "{} backend: both ends of one TLS 1.3 session should describe the same cipher \
         (the server authenticated with its ECDSA key; the RSA key is the client's)",
        active_backend()
    );
    // The supported-ciphers entry is the same cipher (Qt's equality by name and protocol).
    assert!(SslConfiguration::supported_ciphers().contains(&server_cipher));
    Ok(())
}
