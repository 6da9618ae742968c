//! Our blocking server against `openssl s_client` on loopback, and our client against our
//! server: echo a line, check what each side verified and negotiated.

mod support;

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    AlertType, SocketError, SocketState, SslCertificate, SslConfiguration, SslEvent, SslMode,
    SslProtocol,
};
use support::{os_args, serving, OpensslClient, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type ThreadResult<T> = Result<T, String>;

const WAIT: Duration = Duration::from_secs(10);

/// Waits for one whole line on an encrypted socket and sends it back, then closes.
fn echo_one_line(socket: &mut SslSocket) -> ThreadResult<Vec<u8>> {
    let deadline = Instant::now() + WAIT;
    while !socket.can_read_line() {
        if Instant::now() >= deadline {
            return Err("no line arrived".into());
        }
        socket
            .wait_for_ready_read(Duration::from_millis(500))
            .or_else(|e| match e {
                sslsocket::Error::Timeout(_) => Ok(()),
                other => Err(other.to_string()),
            })?;
    }
    let line = socket.read_line(0);
    socket
        .write_all(&[b"echo: ", line.as_slice()].concat())
        .map_err(|e| e.to_string())?;
    socket.close().map_err(|e| e.to_string())?;
    Ok(line)
}

fn s_client_args(pki: &Pki, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args = os_args![
        "-CAfile",
        pki.root_pem(),
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
        "-servername",
        "localhost",
        "-ign_eof",
    ];
    args.extend(extra.iter().map(std::ffi::OsString::from));
    args
}

#[test]
fn server_echoes_a_line_to_openssl_s_client() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();

    let served = thread::spawn(move || -> ThreadResult<(Vec<u8>, SslProtocol, SslMode)> {
        let mut socket = match server.next_connection(WAIT).map_err(|e| e.to_string())? {
            Ok(socket) => socket,
            Err(failed) => return Err(format!("handshake failed: {}", failed.error_string())),
        };
        let protocol = socket.session_protocol();
        let mode = socket.mode();
        let line = echo_one_line(&mut socket)?;
        Ok((line, protocol, mode))
    });

    let out = OpensslClient::run(port, &s_client_args(&pki, &[]), b"hello server\n", WAIT)?;
    let (line, protocol, mode) = served.join().map_err(|_| "server thread panicked")??;

    assert_eq!(line, b"hello server\n");
    assert_eq!(protocol, SslProtocol::TlsV1_3);
    assert_eq!(mode, SslMode::SslServerMode);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("echo: hello server"), "{out}");
    assert!(out.stdout.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.stdout.contains("New, TLSv1.3"), "{out}");
    Ok(())
}

#[test]
fn adopted_stream_runs_the_server_handshake_for_openssl_s_client_over_tls_1_2() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let config = serving(&leaf)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();

    let served = thread::spawn(move || -> ThreadResult<(Vec<u8>, SslProtocol, bool)> {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut socket = SslSocket::from_tcp_stream(stream, config).map_err(|e| e.to_string())?;
        let addresses_known = socket.peer_addr().is_some_and(|a| a.port() != 0)
            && socket.local_addr().is_some_and(|a| a.port() == port);
        socket
            .start_server_encryption()
            .map_err(|e| e.to_string())?;
        socket.wait_for_encrypted(WAIT).map_err(|e| e.to_string())?;
        let protocol = socket.session_protocol();
        let line = echo_one_line(&mut socket)?;
        Ok((line, protocol, addresses_known))
    });

    let out = OpensslClient::run(
        port,
        &s_client_args(&pki, &["-tls1_2"]),
        b"over tls 1.2\n",
        WAIT,
    )?;
    let (line, protocol, addresses_known) =
        served.join().map_err(|_| "server thread panicked")??;

    assert_eq!(line, b"over tls 1.2\n");
    assert_eq!(protocol, SslProtocol::TlsV1_2);
    assert!(addresses_known);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("echo: over tls 1.2"), "{out}");
    assert!(out.stdout.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.stdout.contains("New, TLSv1.2"), "{out}");
    Ok(())
}

#[test]
fn server_reports_the_alert_of_an_openssl_client_that_rejects_its_certificate() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();

    // s_client trusts only the untrusted root, so it refuses our chain with an alert.
    let args = os_args![
        "-CAfile",
        pki.untrusted_root_pem(),
        "-verify_return_error",
        "-servername",
        "localhost",
    ];
    let out = OpensslClient::run(port, &args, b"", WAIT)?;
    assert!(!out.success(), "{out}");
    assert!(out.combined().contains("verify error"), "{out}");

    let mut failed = match server.next_connection(WAIT)? {
        Ok(_) => return Err("the handshake should have failed on the server too".into()),
        Err(failed) => failed,
    };
    assert_eq!(failed.error(), SocketError::SslHandshakeFailedError);
    assert!(
        failed.error_string().contains("fatal alert"),
        "{}",
        failed.error_string()
    );
    assert!(!failed.is_encrypted());
    assert_eq!(failed.state(), SocketState::UnconnectedState);
    let events = failed.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SslEvent::AlertReceived(a) if a.kind == AlertType::UnknownCa)),
        "{events:?}"
    );
    assert!(!events.contains(&SslEvent::Encrypted), "{events:?}");
    Ok(())
}

#[test]
fn our_client_and_our_server_exchange_lines_and_see_each_other() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();

    let served = thread::spawn(move || -> ThreadResult<(Vec<u8>, usize, SslMode)> {
        let mut socket = server.accept().map_err(|e| e.to_string())?;
        let client_chain = socket.peer_certificate_chain().len();
        let mode = socket.mode();
        let line = echo_one_line(&mut socket)?;
        Ok((line, client_chain, mode))
    });

    let mut config = SslConfiguration::default();
    config.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    assert_eq!(client.mode(), SslMode::SslClientMode);
    assert_eq!(client.session_protocol(), SslProtocol::TlsV1_3);
    let chain: Vec<Vec<u8>> = client
        .peer_certificate_chain()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    assert_eq!(chain, leaf.chain_der);
    assert_eq!(
        client.peer_addr().map(|a| a.port()),
        Some(port),
        "peer address"
    );

    client.write_all(b"ping\n")?;
    let mut reply = Vec::new();
    std::io::Read::read_to_end(&mut client, &mut reply)?;
    assert_eq!(reply, b"echo: ping\n");
    assert!(client.core().is_peer_closed_cleanly());

    let (line, client_chain, mode) = served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(line, b"ping\n");
    assert_eq!(client_chain, 0, "the client sent no certificate");
    assert_eq!(mode, SslMode::SslServerMode);
    Ok(())
}
