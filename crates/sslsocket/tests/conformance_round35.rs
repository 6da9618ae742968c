//! Round 35 review: a sweep of `shared/reference/qt-behaviors.md` item by item, for the
//! items no existing test covered with real peers. Real peers on 127.0.0.1 (our own
//! servers, `openssl s_server`), certificates made at test time, every wait bounded.
//! Run on both backends (`SSLSOCKET_BACKEND=openssl` for the second run).

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::core::NextProtocolNegotiationStatus;
use sslsocket::prelude::*;
use sslsocket::{
    AlertType, PeerVerifyMode, SocketError, SocketState, SslCertificate, SslConfiguration,
    SslError, SslErrorKind, SslEvent, SslHooks, SslProtocol, Verdict,
};
use support::{os_args, serving, trusting, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const WAIT: Duration = Duration::from_secs(10);

fn pair_configs(pki: &Pki) -> Result<(SslConfiguration, SslConfiguration), BoxError> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serving(&leaf).map_err(|e| e.to_string())?;
    let client = trusting(pki).map_err(|e| e.to_string())?;
    Ok((server, client))
}

fn alerts_sent(events: &[SslEvent]) -> Vec<AlertType> {
    events
        .iter()
        .filter_map(|e| match e {
            SslEvent::AlertSent(a) => Some(a.kind),
            _ => None,
        })
        .collect()
}

fn alerts_received(events: &[SslEvent]) -> Vec<AlertType> {
    events
        .iter()
        .filter_map(|e| match e {
            SslEvent::AlertReceived(a) => Some(a.kind),
            _ => None,
        })
        .collect()
}

/// Drives `socket` (reads) until it is unconnected or `limit` passes; returns its events.
fn drain_until_closed(socket: &mut SslSocket, limit: Duration) -> Vec<SslEvent> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline && socket.state() != SocketState::UnconnectedState {
        socket.set_io_timeout(Some(Duration::from_millis(100)));
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        events.extend(socket.take_events());
    }
    events.extend(socket.take_events());
    events
}

// ----- §7 `allowedProtocolNegotiation` ---------------------------------------------------

// Held: server [cool, not-so-cool], client [uber-cool, cool, not-so-cool]: both sides
// agree on "cool" (the server's preference among the common ones), both report
// Negotiated.
#[test]
fn alpn_server_preference_wins_between_our_client_and_our_server() -> TestResult {
    let pki = Pki::new()?;
    let (mut server_config, mut client_config) = pair_configs(&pki)?;
    server_config.set_allowed_next_protocols(vec![b"cool".to_vec(), b"not-so-cool".to_vec()]);
    client_config.set_allowed_next_protocols(vec![
        b"uber-cool".to_vec(),
        b"not-so-cool".to_vec(),
        b"cool".to_vec(),
    ]);
    let (port, served) = support::serve_one(server_config, |socket| {
        let agreed = socket.next_negotiated_protocol().map(|p| p.to_vec());
        let status = socket.next_protocol_negotiation_status();
        socket.write_all(&agreed.clone().unwrap_or_default())?;
        socket.write_all(b"\n")?;
        socket.flush()?;
        if status != NextProtocolNegotiationStatus::NextProtocolNegotiationNegotiated {
            return Err(format!("server status {status:?}").into());
        }
        let _ = socket.disconnect_from_host();
        Ok(())
    })?;
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let line = client.next_line(0, WAIT)?;
    let mine = client.next_negotiated_protocol().map(|p| p.to_vec());
    client.abort();
    served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(line, b"cool\n".to_vec(), "the server's choice");
    assert_eq!(mine, Some(b"cool".to_vec()));
    Ok(())
}

// ----- §11 alerts --------------------------------------------------------------------

// `alertMissingCertificate`: server VerifyPeer + missing certificate fatal, client without
// a certificate: the server reports an alert sent, the client an alert received, and
// neither side ends encrypted.
#[test]
fn alert_missing_certificate_is_sent_by_the_server_and_received_by_the_client() -> TestResult {
    let pki = Pki::new()?;
    let (mut server_config, client_config) = pair_configs(&pki)?;
    server_config
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .set_missing_certificate_is_fatal(true)
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let port = server.local_addr().port();
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("localhost", port);
    // TLS 1.3: the client may see its side finish before the server's alert arrives.
    let _ = client.wait_for_encrypted(WAIT);
    let client_events = drain_until_closed(&mut client, Duration::from_secs(5));
    let accepted = server.next_connection(WAIT)?;
    let mut failed = match accepted {
        Ok(_) => return Err("the server accepted a client without a certificate".into()),
        Err(failed) => failed,
    };
    let server_events = failed.take_events();
    let server_sent = alerts_sent(&server_events);
    let client_received = alerts_received(&client_events);
    assert!(!failed.is_encrypted());
    assert!(!client.is_encrypted(), "client still encrypted");
    assert!(
        !server_sent.is_empty(),
        "server reported no alert sent: {server_events:?}"
    );
    assert!(
        !client_received.is_empty(),
        "client reported no alert received: {client_events:?}"
    );
    assert_eq!(
        server_sent.first(),
        client_received.first(),
        "the alert sent is the alert received"
    );
    Ok(())
}

struct RefuseInterrupted;

impl SslHooks for RefuseInterrupted {
    fn handshake_interrupted(&self, _error: &SslError) -> Verdict {
        Verdict::Abort
    }
}

// `alertInvalidCertificate`: a client with handshakeMustInterruptOnError rejecting the
// server's (untrusted) certificate: client reports HandshakeInterruptedOnError and an
// alert sent; the server reports the alert received; neither is encrypted.
#[test]
fn alert_invalid_certificate_is_sent_by_an_interrupted_client() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server_config = serving(&leaf).map_err(|e| e.to_string())?;
    let mut client_config = trusting(&pki).map_err(|e| e.to_string())?;
    client_config.set_handshake_must_interrupt_on_error(true);
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let port = server.local_addr().port();
    let mut client = SslSocket::with_configuration(client_config);
    client.set_hooks(Arc::new(RefuseInterrupted));
    client.connect_to_host_encrypted("localhost", port);
    assert!(client.wait_for_encrypted(WAIT).is_err());
    let client_events = client.take_events();
    let accepted = server.next_connection(WAIT)?;
    let mut failed = match accepted {
        Ok(_) => return Err("the server finished a handshake the client refused".into()),
        Err(failed) => failed,
    };
    let server_events = failed.take_events();
    assert!(client_events
        .iter()
        .any(|e| matches!(e, SslEvent::HandshakeInterruptedOnError(_))));
    let sent = alerts_sent(&client_events);
    let received = alerts_received(&server_events);
    assert!(!sent.is_empty(), "client sent no alert: {client_events:?}");
    assert!(
        !received.is_empty(),
        "server received no alert: {server_events:?}"
    );
    assert_eq!(sent.first(), received.first());
    assert!(!client.is_encrypted() && !failed.is_encrypted());
    Ok(())
}

// [DOC] a clean `disconnectFromHost` sends close_notify, which the peer reports as
// AlertReceived(CloseNotify); the closing side reports AlertSent(CloseNotify).
#[test]
fn a_clean_disconnect_is_a_close_notify_alert_on_both_sides() -> TestResult {
    let pki = Pki::new()?;
    let (server_config, client_config) = pair_configs(&pki)?;
    let (port, served) = support::serve_one(server_config, |socket| {
        let events = drain_until_closed(socket, Duration::from_secs(5));
        let received = alerts_received(&events);
        if received != vec![AlertType::CloseNotify] {
            return Err(format!("server saw {events:?}").into());
        }
        Ok(())
    })?;
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let _ = client.take_events();
    client.disconnect_from_host()?;
    let events = client.take_events();
    served.join().map_err(|_| "server thread panicked")??;
    assert!(
        alerts_sent(&events).contains(&AlertType::CloseNotify),
        "client events: {events:?}"
    );
    Ok(())
}

// ----- §6 `protocolServerSide` ---------------------------------------------------------

fn protocol_pair(
    server_protocol: SslProtocol,
    client_protocol: SslProtocol,
) -> Result<(bool, bool, SocketError, SocketError), BoxError> {
    let pki = Pki::new()?;
    let (mut server_config, mut client_config) = pair_configs(&pki)?;
    server_config.set_protocol(server_protocol);
    client_config.set_protocol(client_protocol);
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let port = server.local_addr().port();
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("localhost", port);
    let _ = client.wait_for_encrypted(WAIT);
    let client_ok = client.is_encrypted();
    let client_error = client.error();
    let (server_ok, server_error) = match server.next_connection(WAIT)? {
        Ok(socket) => (socket.is_encrypted(), socket.error()),
        Err(failed) => (failed.is_encrypted(), failed.error()),
    };
    client.abort();
    Ok((server_ok, client_ok, server_error, client_error))
}

// Held: `protocolServerSide`: TLS 1.3-or-later against TLS 1.2 fails on both sides, TLS
// 1.2-or-later against TLS 1.3 and SecureProtocols against AnyProtocol connect.
#[test]
fn protocol_server_side_matrix() -> TestResult {
    let (s, c, se, ce) = protocol_pair(SslProtocol::TlsV1_3OrLater, SslProtocol::TlsV1_2)?;
    assert!(!s && !c, "1.3-or-later server vs 1.2 client connected");
    assert_ne!(se, SocketError::UnknownSocketError, "server has no error");
    assert_ne!(ce, SocketError::UnknownSocketError, "client has no error");
    let (s, c, _, _) = protocol_pair(SslProtocol::TlsV1_2OrLater, SslProtocol::TlsV1_3)?;
    assert!(s && c, "1.2-or-later server vs 1.3 client failed");
    let (s, c, _, _) = protocol_pair(SslProtocol::SecureProtocols, SslProtocol::AnyProtocol)?;
    assert!(s && c, "secure vs any failed");
    let (s, c, _, _) = protocol_pair(SslProtocol::TlsV1_2, SslProtocol::TlsV1_2OrLater)?;
    assert!(s && c, "1.2 vs 1.2-or-later failed");
    Ok(())
}

// ----- §6 `unsupportedProtocols`, server side --------------------------------------------

// A server-side socket whose protocol is UnknownProtocol: start_server_encryption reports
// SslInvalidUserDataError (Qt's `unsupportedProtocols`, server half).
#[test]
fn server_side_start_with_unknown_protocol_is_invalid_user_data() -> TestResult {
    let pki = Pki::new()?;
    let (mut server_config, _) = pair_configs(&pki)?;
    server_config.set_protocol(SslProtocol::UnknownProtocol);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let client = std::thread::spawn(move || -> std::io::Result<()> {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut buf = [0u8; 64];
        let _ = tcp.read(&mut buf);
        Ok(())
    });
    let (stream, _) = listener.accept()?;
    let mut socket = SslSocket::from_tcp_stream(stream, server_config)?;
    let started = socket.start_server_encryption();
    let error = socket.error();
    socket.abort();
    let _ = client.join();
    let start_error = started.err().map(|e| e.socket_error());
    assert!(
        start_error == Some(SocketError::SslInvalidUserDataError)
            || error == SocketError::SslInvalidUserDataError,
        "start: {start_error:?}, error(): {error:?}"
    );
    Ok(())
}

// ----- §14 `readFromClosedSocket` ---------------------------------------------------------

// Held: after close() with data buffered, bytesAvailable 0, bytesToWrite 0, Unconnected.
#[test]
fn read_from_closed_socket_has_nothing() -> TestResult {
    let pki = Pki::new()?;
    let (server_config, client_config) = pair_configs(&pki)?;
    let (port, served) = support::serve_one(server_config, |socket| {
        socket.write_all(b"greeting that nobody reads\n")?;
        socket.flush()?;
        let _ = drain_until_closed(socket, Duration::from_secs(5));
        Ok(())
    })?;
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    client.wait_for_ready_read(WAIT)?;
    assert!(client.bytes_available() > 0);
    let _ = client.close();
    served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(client.bytes_available(), 0);
    assert_eq!(client.bytes_to_write(), 0);
    assert_eq!(client.state(), SocketState::UnconnectedState);
    let mut buf = [0u8; 8];
    // A clean end (close_notify both ways): Ok(0) or an error, never the unread greeting.
    assert!(
        !matches!(client.read(&mut buf), Ok(n) if n > 0),
        "read after close"
    );
    Ok(())
}

// ----- RFC 5705 exporter against OpenSSL (`tst_QSslKeyingMaterial`) ------------------------

fn exporter_against_s_server(protocol_flag: &str, protocol: SslProtocol) -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut args = leaf.openssl_args();
    args.extend(os_args![
        protocol_flag,
        "-keymatexport",
        "EXPERIMENTAL-sslsocket",
        "-keymatexportlen",
        "20",
        "-naccept",
        "1"
    ]);
    let server = OpensslServer::start(&args)?;
    let mut config = trusting(&pki).map_err(|e| e.to_string())?;
    config
        .set_keying_material_export(true)
        .set_protocol(protocol);
    let mut client = SslSocket::with_configuration(config);
    client.connect_to_host_encrypted("localhost", server.port());
    client.wait_for_encrypted(WAIT)?;
    let ours = client.export_keying_material(20, b"EXPERIMENTAL-sslsocket", None)?;
    server.wait_for_output("Keying material:", WAIT)?;
    // Give s_server a moment to print the whole line.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut theirs = String::new();
    while Instant::now() < deadline {
        let output = server.stdout();
        if let Some(line) = output.lines().find(|l| l.contains("Keying material:")) {
            let hex = line.rsplit(':').next().unwrap_or("").trim().to_string();
            if hex.len() >= 40 {
                theirs = hex;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    client.abort();
    let ours_hex: String = ours.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(
        ours_hex,
        theirs.to_uppercase(),
        "exporter differs from OpenSSL's"
    );
    Ok(())
}

// Held: the exporter's output equals OpenSSL's for the same connection (TLS 1.2).
#[test]
fn exporter_equals_openssl_s_server_tls12() -> TestResult {
    exporter_against_s_server("-tls1_2", SslProtocol::TlsV1_2)
}

// Held: the exporter's output equals OpenSSL's for the same connection (TLS 1.3).
#[test]
fn exporter_equals_openssl_s_server_tls13() -> TestResult {
    exporter_against_s_server("-tls1_3", SslProtocol::TlsV1_3)
}

// `exporterProducesSameMaterialOnBothSides`: both sides agree per (label, size, context);
// another context or label gives other bytes (another size too on TLS 1.3); on TLS 1.2 a missing context and an
// empty one are different (RFC 5705), on TLS 1.3 the same (RFC 8446 7.5).
#[test]
fn exporter_contexts_and_sizes_on_both_sides() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let pki = Pki::new()?;
        let (mut server_config, mut client_config) = pair_configs(&pki)?;
        server_config.set_keying_material_export(true);
        client_config
            .set_keying_material_export(true)
            .set_protocol(protocol);
        let (tx, rx) = std::sync::mpsc::channel();
        let (port, served) = support::serve_one(server_config, move |socket| {
            let mut out = Vec::new();
            for (len, ctx) in [
                (32usize, None),
                (32, Some(&b""[..])),
                (32, Some(&b"ctx"[..])),
                (16, Some(&b"ctx"[..])),
            ] {
                out.push(socket.export_keying_material(len, b"EXPORTER-test", ctx)?);
            }
            let _ = tx.send(out);
            let _ = drain_until_closed(socket, Duration::from_secs(5));
            Ok(())
        })?;
        let mut client = SslSocket::with_configuration(client_config);
        client.connect_to_host_encrypted("localhost", port);
        client.wait_for_encrypted(WAIT)?;
        let mut ours = Vec::new();
        for (len, ctx) in [
            (32usize, None),
            (32, Some(&b""[..])),
            (32, Some(&b"ctx"[..])),
            (16, Some(&b"ctx"[..])),
        ] {
            ours.push(client.export_keying_material(len, b"EXPORTER-test", ctx)?);
        }
        let theirs = rx.recv_timeout(WAIT)?;
        client.abort();
        served.join().map_err(|_| "server thread panicked")??;
        assert_eq!(ours, theirs, "{protocol:?}: both ends differ");
        if protocol == SslProtocol::TlsV1_2 {
            assert_ne!(ours[0], ours[1], "TLS 1.2: no context == empty context");
        } else {
            assert_eq!(ours[0], ours[1], "TLS 1.3: no context != empty context");
        }
        assert_ne!(ours[1], ours[2]);
        assert_eq!(ours[3].len(), 16);
        if protocol == SslProtocol::TlsV1_2 {
            // The TLS 1.2 PRF is a stream: a shorter output is a prefix (RFC 5705).
            assert_eq!(ours[3][..], ours[2][..16]);
        } else {
            // HKDF-Expand-Label takes the length (RFC 8446 7.5).
            assert_ne!(ours[3][..], ours[2][..16], "TLS 1.3: size is not an input");
        }
    }
    Ok(())
}

// ----- §3 `tst_QSslCertificate::verify` ------------------------------------------------

// Held: an empty chain gives exactly one UnspecifiedError.
#[test]
fn verify_of_an_empty_chain_is_one_unspecified_error() -> TestResult {
    let errors = SslCertificate::verify(&[], None);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors.first().map(|e| e.error()),
        Some(SslErrorKind::UnspecifiedError)
    );
    Ok(())
}

// ----- §1/§5 process defaults and the system store, in a fresh process --------------------
//
// These change process-wide state (the default configuration, the once-loaded system CA
// store, read from `SSL_CERT_FILE`), so they run in a child: this test binary again, with
// `SSL_CERT_FILE` naming the test root.

fn child_serving() -> Result<SslConfiguration, BoxError> {
    let chain = std::env::var_os("CONF35_CHAIN").ok_or("no CONF35_CHAIN")?;
    let key = std::env::var_os("CONF35_KEY").ok_or("no CONF35_KEY")?;
    let mut config = SslConfiguration::default();
    config
        .set_local_certificate_chain(SslCertificate::from_file(chain)?)
        .set_private_key(sslsocket::SslKey::from_file(key, None)?);
    Ok(config)
}

/// Connects `client` to a fresh server of the child's leaf: whether it got encrypted.
fn child_connects(client: &mut SslSocket) -> Result<bool, BoxError> {
    let (port, served) = support::serve_one(child_serving()?, |_| Ok(()))?;
    client.connect_to_host_encrypted("localhost", port);
    let ok = client.wait_for_encrypted(WAIT).is_ok();
    client.abort();
    let _ = served.join();
    Ok(ok)
}

#[test]
#[ignore = "a peer process of `process_defaults_and_system_roots_behave_as_qt`"]
fn peer_process_defaults() -> TestResult {
    if !support::is_peer() {
        return Ok(());
    }
    let root =
        SslCertificate::from_file(std::env::var_os("SSL_CERT_FILE").ok_or("no SSL_CERT_FILE")?)?;
    let root = root.first().ok_or("no root")?.clone();
    let mut failures = Vec::new();

    // `onDemandRootCertLoadingMemberMethods`: the default configuration loads the system
    // store on demand and trusts the root there; an explicitly empty CA list does not.
    assert!(sslsocket::config::system_ca_certificates().contains(&root));
    let mut default_socket = SslSocket::new();
    if !child_connects(&mut default_socket)? {
        failures.push("default configuration (system store on demand) failed".to_string());
    }
    let mut empty = SslConfiguration::default_configuration();
    empty.set_ca_certificates(Vec::new());
    let mut empty_socket = SslSocket::with_configuration(empty.clone());
    if child_connects(&mut empty_socket)? {
        failures.push("explicitly empty CA list connected".to_string());
    }

    // `constructing`, second half: a socket keeps the configuration it was made with.
    let before = SslConfiguration::default_configuration();
    let mut made_before = SslSocket::new();
    let mut changed = before.clone();
    changed
        .set_ca_certificates(Vec::new())
        .set_protocol(SslProtocol::TlsV1_3);
    SslConfiguration::set_default_configuration(changed.clone());
    if SslConfiguration::default_configuration() != changed {
        failures.push("the default does not reflect the change".to_string());
    }
    if *made_before.ssl_configuration() != before {
        failures.push("an existing socket's configuration changed".to_string());
    }
    if !child_connects(&mut made_before)? {
        failures.push("a socket made before the change lost its CAs".to_string());
    }
    // `setEmptyDefaultConfiguration`: a socket of an empty default fails, no crash.
    let mut made_after = SslSocket::new();
    if child_connects(&mut made_after)? {
        failures.push("a socket of the empty default connected".to_string());
    }
    SslConfiguration::set_default_configuration(before.clone());

    // `verifyAndDefaultConfiguration`: verify() leaves the default's CA list alone.
    let chain = SslCertificate::from_file(std::env::var_os("CONF35_CHAIN").ok_or("chain")?)?;
    let cas_before = SslConfiguration::default_configuration()
        .ca_certificates()
        .to_vec();
    let errors = SslCertificate::verify(&chain, Some("localhost"));
    if !errors.is_empty() {
        failures.push(format!("verify against the system store: {errors:?}"));
    }
    if SslConfiguration::default_configuration().ca_certificates() != cas_before.as_slice() {
        failures.push("verify() changed the default CA list".to_string());
    }

    // `addDefaultCaCertificate`: one more CA in the default, contained.
    let mut added = SslConfiguration::default_configuration();
    let count = added.ca_certificates().len();
    added.add_ca_certificate(root.clone());
    SslConfiguration::set_default_configuration(added);
    let now = SslConfiguration::default_configuration();
    if now.ca_certificates().len() != count + 1 || !now.ca_certificates().contains(&root) {
        failures.push("add to the default CA list".to_string());
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    println!("DONE");
    assert!(failures.is_empty(), "{failures:?}");
    Ok(())
}

// Held: Qt's `onDemandRootCertLoadingMemberMethods`, `constructing` (second half),
// `setEmptyDefaultConfiguration`, `verifyAndDefaultConfiguration`, `addDefaultCaCertificate`.
#[test]
fn process_defaults_and_system_roots_behave_as_qt() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let backend = support::active_backend();
    let mut peer = support::spawn_peer(
        "peer_process_defaults",
        backend,
        &[
            ("SSL_CERT_FILE", pki.root_pem().as_os_str().to_os_string()),
            ("SSL_CERT_DIR", std::ffi::OsString::from("/nonexistent")),
            ("CONF35_CHAIN", leaf.chain_pem.clone().into_os_string()),
            ("CONF35_KEY", leaf.key_pem.clone().into_os_string()),
        ],
    )?;
    let out = peer.wait(Duration::from_secs(60))?;
    assert!(
        out.success() && out.stdout.contains("DONE") && !out.stdout.contains("FAIL"),
        "{}",
        out.combined()
    );
    Ok(())
}

// ----- §4 `verifyClientCertificate`: a client certificate for servers only -----------------

fn server_eku_client(mode: PeerVerifyMode) -> Result<(bool, Vec<SslErrorKind>, usize), BoxError> {
    let pki = Pki::new()?;
    let (mut server_config, mut client_config) = pair_configs(&pki)?;
    server_config
        .set_peer_verify_mode(mode)
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    let cert = pki.issue(&support::LeafSpec {
        eku: support::Eku::ServerOnly,
        ..support::LeafSpec::new("Test Client", &[])
    })?;
    let chain = cert
        .chain_der
        .iter()
        .map(|d| SslCertificate::from_der(d))
        .collect::<Result<Vec<_>, _>>()?;
    client_config
        .set_local_certificate_chain(chain)
        .set_private_key(sslsocket::SslKey::from_der(&cert.key_der)?);
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let port = server.local_addr().port();
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("localhost", port);
    let _ = client.wait_for_encrypted(WAIT);
    let result = match server.next_connection(WAIT)? {
        Ok(socket) => (
            true,
            socket
                .ssl_handshake_errors()
                .iter()
                .map(|e| e.error())
                .collect(),
            socket.peer_certificate_chain().len(),
        ),
        Err(failed) => (
            false,
            failed
                .ssl_handshake_errors()
                .iter()
                .map(|e| e.error())
                .collect(),
            failed.peer_certificate_chain().len(),
        ),
    };
    client.abort();
    Ok(result)
}

// Held: a client certificate whose only purpose is serverAuth: Query/Auto/None accept it,
// VerifyPeer refuses it with InvalidPurpose; the server's peer chain is the chain as sent
// (leaf + intermediate) when it asked for one.
#[test]
fn verify_client_certificate_with_server_purpose() -> TestResult {
    let (ok, errors, sent) = server_eku_client(PeerVerifyMode::VerifyPeer)?;
    assert!(!ok, "VerifyPeer accepted a serverAuth-only client");
    assert!(errors.contains(&SslErrorKind::InvalidPurpose), "{errors:?}");
    for mode in [
        PeerVerifyMode::QueryPeer,
        PeerVerifyMode::AutoVerifyPeer,
        PeerVerifyMode::VerifyNone,
    ] {
        let (ok, _, chain) = server_eku_client(mode)?;
        assert!(ok, "{mode:?} refused");
        let expected = if mode == PeerVerifyMode::VerifyNone {
            0
        } else {
            2
        };
        assert_eq!(chain, expected, "{mode:?}: server peer chain length");
    }
    let _ = sent;
    Ok(())
}

// ----- §6 `serverCipherPreferences` -------------------------------------------------------

fn negotiated_cipher(
    protocol: SslProtocol,
    server_list: &str,
    client_list: &str,
    disable_server_preference: bool,
) -> Result<String, BoxError> {
    let pki = Pki::new()?;
    let (mut server_config, mut client_config) = pair_configs(&pki)?;
    server_config
        .set_protocol(protocol)
        .set_ciphers_str(server_list)?
        .set_ssl_option(
            sslsocket::SslOption::SslOptionDisableServerCipherPreference,
            disable_server_preference,
        );
    client_config
        .set_protocol(protocol)
        .set_ciphers_str(client_list)?;
    // The server stays until the client goes (a TLS 1.2 server finishes first, and its
    // close would end the client's connection before the cipher is asked for).
    let (port, served) = support::serve_one(server_config, |socket| {
        let _ = drain_until_closed(socket, Duration::from_secs(5));
        Ok(())
    })?;
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let name = client
        .session_cipher()
        .map(|c| c.openssl_name().to_string())
        .unwrap_or_default();
    client.abort();
    served.join().map_err(|_| "server thread panicked")??;
    Ok(name)
}

// `serverCipherPreferences`: by default the server's order wins; with
// SslOptionDisableServerCipherPreference the client's order wins. TLS 1.2 and TLS 1.3.
#[test]
fn server_cipher_preference_and_its_option() -> TestResult {
    let cases = [
        (
            SslProtocol::TlsV1_2,
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
        (
            SslProtocol::TlsV1_3,
            "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
            "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
        ),
    ];
    let mut wrong = Vec::new();
    for (protocol, server_list, client_list) in cases {
        let server_first = server_list.split(':').next().unwrap_or("");
        let client_first = client_list.split(':').next().unwrap_or("");
        let by_default = negotiated_cipher(protocol, server_list, client_list, false)?;
        let disabled = negotiated_cipher(protocol, server_list, client_list, true)?;
        if by_default != server_first {
            wrong.push(format!("{protocol:?} default: {by_default}"));
        }
        if disabled != client_first {
            wrong.push(format!("{protocol:?} client order: {disabled}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
    Ok(())
}

// ----- §14 `forwardReadChannelFinished` -----------------------------------------------------

// Held: the server closes after an HTTP/1.0 response (`s_server -www`): ReadChannelFinished
// is reported, the response is readable, and the end is clean.
#[test]
fn read_channel_finished_after_an_http10_response() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-www", "-naccept", "1"]);
    let server = OpensslServer::start(&args)?;
    let client_config = trusting(&pki).map_err(|e| e.to_string())?;
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("localhost", server.port());
    client.wait_for_encrypted(WAIT)?;
    client.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    client.flush()?;
    client.set_io_timeout(Some(WAIT));
    let mut response = Vec::new();
    let read = client.read_to_end(&mut response);
    let events = client.take_events();
    assert!(read.is_ok(), "{read:?}");
    assert!(response.starts_with(b"HTTP/1.0 200"), "{response:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SslEvent::ReadChannelFinished)),
        "{events:?}"
    );
    Ok(())
}

// ----- §14/§17 `waitForMinusOne` --------------------------------------------------------

// Held: Duration::MAX (Qt's -1) is "no timeout" for every blocking wait, and the waits
// drive both directions: encrypted, bytes written, ready read, a line, disconnected; after
// the peer's close the buffer drains and then the stream ends. The whole client runs in a
// thread whose result is awaited with a bound, so a hang fails the test.
#[test]
fn blocking_waits_with_duration_max_are_infinite_and_work() -> TestResult {
    let pki = Pki::new()?;
    let (server_config, client_config) = pair_configs(&pki)?;
    let (port, served) = support::serve_one(server_config, |socket| {
        socket.set_io_timeout(Some(WAIT));
        let line = socket.next_line(0, WAIT)?;
        std::thread::sleep(Duration::from_millis(200));
        socket.write_all(&line)?;
        socket.write_all(b"second\n")?;
        socket.flush()?;
        std::thread::sleep(Duration::from_millis(200));
        socket.disconnect_from_host()?;
        Ok(())
    })?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let run = || -> Result<Vec<Vec<u8>>, BoxError> {
            let mut client = SslSocket::with_configuration(client_config);
            client.connect_to_host_encrypted("localhost", port);
            client.wait_for_connected(Duration::MAX)?;
            client.wait_for_encrypted(Duration::MAX)?;
            assert_eq!(client.bytes_available(), 0);
            client.write_all(b"hello\n")?;
            client.wait_for_bytes_written(Duration::MAX)?;
            client.wait_for_ready_read(Duration::MAX)?;
            let first = client.next_line(0, Duration::MAX)?;
            let second = client.next_line(0, Duration::MAX)?;
            client.wait_for_disconnected(Duration::MAX)?;
            let rest = client.read_all();
            Ok(vec![first, second, rest])
        };
        let _ = tx.send(run().map_err(|e| e.to_string()));
    });
    let lines = rx.recv_timeout(Duration::from_secs(20))??;
    served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(
        lines,
        vec![b"hello\n".to_vec(), b"second\n".to_vec(), Vec::new()]
    );
    Ok(())
}

// ----- §2 `qtbug18498_peek2` ------------------------------------------------------------------

/// Waits (bounded) until `socket` has at least `n` bytes to read.
fn wait_for_bytes(socket: &mut SslSocket, n: usize) -> Result<(), BoxError> {
    let deadline = Instant::now() + WAIT;
    while socket.bytes_available() < n {
        if Instant::now() >= deadline {
            return Err(format!("only {} of {n} bytes", socket.bytes_available()).into());
        }
        let _ = socket.wait_for_ready_read(Duration::from_millis(200));
    }
    Ok(())
}

// Held: plain exchange first, peek never consumes, a peek past 16 KiB and an oversized
// peek return what exists; then STARTTLS and the same on the encrypted stream; modes are
// Server/Client.
#[test]
fn peek_before_and_after_starttls_with_large_buffers() -> TestResult {
    let pki = Pki::new()?;
    let (server_config, client_config) = pair_configs(&pki)?;
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let sent = big.clone();
    let server = std::thread::spawn(move || -> Result<sslsocket::SslMode, BoxError> {
        let (stream, _) = listener.accept()?;
        let mut socket = SslSocket::from_tcp_stream(stream, server_config)?;
        socket.set_io_timeout(Some(WAIT));
        socket.write_all(&sent)?;
        socket.flush()?;
        let command = socket.next_line(0, WAIT)?;
        if command != b"STARTTLS\r\n" {
            return Err(format!("command {command:?}").into());
        }
        // RFC 3207's "220 Ready": the client starts TLS only after it, so its hello is
        // never read as plaintext (which start_server_encryption discards, by design).
        socket.write_all(b"220 ready\r\n")?;
        socket.flush()?;
        socket.start_server_encryption()?;
        socket.wait_for_encrypted(WAIT)?;
        socket.write_all(&sent)?;
        socket.flush()?;
        let _ = drain_until_closed(&mut socket, Duration::from_secs(5));
        Ok(socket.mode())
    });
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host("localhost", port);
    client.wait_for_connected(WAIT)?;
    for phase in ["plain", "encrypted"] {
        wait_for_bytes(&mut client, big.len())?;
        let first = client.peek(20_000);
        let again = client.peek(20_000);
        let oversized = client.peek(100_000);
        assert_eq!(first, big[..20_000].to_vec(), "{phase}: peek");
        assert_eq!(again, first, "{phase}: peek consumed");
        assert_eq!(oversized, big, "{phase}: oversized peek");
        let mut head = vec![0u8; 10];
        client.read_exact(&mut head)?;
        assert_eq!(head, big[..10].to_vec());
        assert_eq!(
            client.peek(5),
            big[10..15].to_vec(),
            "{phase}: peek after read"
        );
        let rest = client.read_all();
        assert_eq!(rest, big[10..].to_vec(), "{phase}: rest");
        if phase == "plain" {
            client.write_all(b"STARTTLS\r\n")?;
            client.flush()?;
            assert_eq!(client.next_line(0, WAIT)?, b"220 ready\r\n".to_vec());
            client.start_client_encryption()?;
            client.wait_for_encrypted(WAIT)?;
            assert_eq!(client.mode(), sslsocket::SslMode::SslClientMode);
        }
    }
    client.abort();
    let mode = server.join().map_err(|_| "server thread panicked")??;
    assert_eq!(mode, sslsocket::SslMode::SslServerMode);
    Ok(())
}
