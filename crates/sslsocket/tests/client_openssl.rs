//! Our blocking client against `openssl s_server` on loopback: protocol versions, the
//! chain as sent, an HTTP page from `-www`, verification failures, and a large write
//! closed at once.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{
    SocketError, SocketState, SslCertificate, SslErrorKind, SslEvent, SslMode, SslProtocol,
};
use support::{trusting, wait_until, Issued, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// A client configuration trusting only the test root.
fn server_args(leaf: &Issued, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args = leaf.openssl_args();
    args.extend(extra.iter().map(std::ffi::OsString::from));
    args
}

fn chain_der(socket: &SslSocket) -> Vec<Vec<u8>> {
    socket
        .peer_certificate_chain()
        .iter()
        .map(|c| c.der().to_vec())
        .collect()
}

/// Connects to s_server with `version_flag`, checks the session, then exchanges a line
/// each way.
fn exchange_with_openssl(version_flag: &str, expected: SslProtocol) -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut server = OpensslServer::start(&server_args(&leaf, &[version_flag]))?;

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", server.port());
    client.wait_for_encrypted(WAIT)?;

    assert!(client.is_encrypted());
    assert_eq!(client.session_protocol(), expected);
    assert_eq!(
        chain_der(&client),
        leaf.chain_der,
        "the chain as the server sent it"
    );
    assert_eq!(
        client.peer_certificate().map(|c| c.der().to_vec()),
        Some(leaf.cert_der.clone())
    );
    assert!(client.ssl_handshake_errors().is_empty());
    assert!(client.session_cipher().is_some());

    client.write_all(b"hello from sslsocket\n")?;
    client.flush()?;
    server.wait_for_output("hello from sslsocket", WAIT)?;

    server.write_stdin(b"hello from openssl\n")?;
    let deadline = Instant::now() + WAIT;
    while !client.can_read_line() && Instant::now() < deadline {
        client.wait_for_ready_read(Duration::from_millis(500)).ok();
    }
    assert_eq!(client.read_line(0), b"hello from openssl\n");
    client.close()?;
    assert_eq!(client.state(), SocketState::UnconnectedState);
    Ok(())
}

#[test]
fn client_negotiates_tls_1_2_with_openssl_and_sees_the_chain_as_sent() -> TestResult {
    exchange_with_openssl("-tls1_2", SslProtocol::TlsV1_2)
}

#[test]
fn client_negotiates_tls_1_3_with_openssl_and_sees_the_chain_as_sent() -> TestResult {
    exchange_with_openssl("-tls1_3", SslProtocol::TlsV1_3)
}

#[test]
fn client_reads_the_whole_www_page_and_sees_a_clean_close() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&server_args(&leaf, &["-www"]))?;

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", server.port());
    client.wait_for_encrypted(WAIT)?;
    client.write_all(b"GET / HTTP/1.0\r\n\r\n")?;

    let mut page = Vec::new();
    client.read_to_end(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.0 200 ok\r\n"), "{page}");
    assert!(page.contains("s_server"), "{page}");
    assert!(page.trim_end().ends_with("</BODY></HTML>"), "{page}");
    assert!(client.core().is_peer_closed_cleanly());
    assert!(!client.core().is_truncated());
    assert!(client.at_end());
    let events = client.take_events();
    assert!(
        events.contains(&SslEvent::ReadChannelFinished),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SslEvent::ErrorOccurred(_))),
        "{events:?}"
    );
    Ok(())
}

/// Runs a handshake expected to fail; returns the client and the error.
fn failing_handshake(
    client: &mut SslSocket,
    port: u16,
    peer_name: &str,
) -> Result<sslsocket::Error, Box<dyn std::error::Error>> {
    client.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, peer_name);
    let started = Instant::now();
    let error = match client.wait_for_encrypted(WAIT) {
        Ok(()) => return Err("the handshake should have failed".into()),
        Err(e) => e,
    };
    assert!(started.elapsed() < Duration::from_secs(5), "failed slowly");
    Ok(error)
}

#[test]
fn client_refuses_a_certificate_for_another_name_and_says_why() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&server_args(&leaf, &[]))?;

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    let error = failing_handshake(&mut client, server.port(), "other.example")?;

    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert_eq!(client.error(), SocketError::SslHandshakeFailedError);
    let message = error.to_string();
    assert!(message.contains("HostNameMismatch"), "{message}");
    assert!(message.contains("The host name did not match"), "{message}");
    assert_eq!(client.error_string(), message);

    let kinds: Vec<SslErrorKind> = client
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    assert_eq!(kinds, [SslErrorKind::HostNameMismatch]);
    let concerned = client.ssl_handshake_errors()[0]
        .certificate()
        .map(|c| c.der().to_vec());
    assert_eq!(concerned, Some(leaf.cert_der.clone()));
    assert_eq!(chain_der(&client), leaf.chain_der);
    assert!(!client.is_encrypted());
    assert_eq!(client.state(), SocketState::UnconnectedState);

    let events = client.take_events();
    let errors_event = events
        .iter()
        .position(|e| matches!(e, SslEvent::SslErrors(_)));
    let failed = events
        .iter()
        .position(|e| *e == SslEvent::ErrorOccurred(SocketError::SslHandshakeFailedError));
    assert!(
        errors_event.is_some() && failed.is_some() && errors_event < failed,
        "{events:?}"
    );
    assert!(!events.contains(&SslEvent::Encrypted), "{events:?}");
    Ok(())
}

#[test]
fn client_refuses_a_chain_under_an_untrusted_root_and_says_why() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&server_args(&leaf, &[]))?;

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    let error = failing_handshake(&mut client, server.port(), "localhost")?;

    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert_eq!(client.error(), SocketError::SslHandshakeFailedError);
    let message = error.to_string();
    assert!(
        message.contains("certificate verification failed"),
        "{message}"
    );
    // OpenSSL (and so Qt) says "self-signed certificate in certificate chain" here: the
    // chain ends in a self-signed root that is not trusted.
    let kinds: Vec<SslErrorKind> = client
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    assert_eq!(
        kinds,
        [SslErrorKind::SelfSignedCertificateInChain],
        "{message}"
    );
    assert!(
        message.contains("SelfSignedCertificateInChain"),
        "{message}"
    );
    assert_eq!(chain_der(&client), leaf.chain_der);
    assert!(!client.is_encrypted());
    Ok(())
}

#[test]
fn close_right_after_a_large_write_delivers_every_byte_to_openssl() -> TestResult {
    const SIZE: usize = 8 * 1024 * 1024;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&server_args(&leaf, &["-quiet", "-naccept", "1"]))?;

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", server.port());
    let data: Vec<u8> = (0..SIZE).map(|i| b'a' + (i % 26) as u8).collect();
    client.wait_for_encrypted(WAIT)?;
    client.write_all(&data)?;
    client.close()?;
    assert_eq!(client.state(), SocketState::UnconnectedState);

    let counted = wait_until(Instant::now() + WAIT, || server.stdout().len() >= SIZE);
    let received = server.stdout();
    assert!(
        counted,
        "s_server received {} of {SIZE} bytes",
        received.len()
    );
    assert_eq!(received.len(), SIZE);
    assert!(received.as_bytes() == data.as_slice(), "the bytes differ");
    Ok(())
}

fn wait_for_line(client: &mut SslSocket) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + WAIT;
    while !client.can_read_line() {
        if Instant::now() >= deadline {
            return Err("no line arrived".into());
        }
        match client.wait_for_ready_read(Duration::from_millis(200)) {
            Ok(()) | Err(sslsocket::Error::Timeout(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(client.read_line(0))
}

#[test]
fn client_follows_a_key_update_requested_by_openssl() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server = OpensslServer::start(&server_args(&leaf, &["-tls1_3", "-msg"]))?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", server.port());
    client.wait_for_encrypted(WAIT)?;
    client.write_all(b"before\n")?;
    server.wait_for_output("before", WAIT)?;

    // "K": KeyUpdate with update_requested, so our side must update its keys too.
    server.write_stdin(b"K\n")?;
    server.wait_for_output(">>> TLS 1.3, Handshake [length 0005], KeyUpdate", WAIT)?;
    server.write_stdin(b"after the update\n")?;
    assert_eq!(wait_for_line(&mut client)?, b"after the update\n");
    client.write_all(b"ours after the update\n")?;
    client.flush()?;
    server.wait_for_output("ours after the update", WAIT)?;
    let output = server.output();
    assert!(
        output.contains("<<< TLS 1.3, Handshake [length 0005], KeyUpdate"),
        "our side answered with its own KeyUpdate: {output}"
    );
    assert!(client.is_encrypted());
    client.close()?;
    Ok(())
}

#[test]
fn client_presents_its_certificate_to_openssl_that_requires_one() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let identity = pki.client_cert(true)?;
    let args = {
        let mut args = server_args(&leaf, &["-Verify", "1", "-verify_return_error"]);
        args.push("-CAfile".into());
        args.push(pki.root_pem().into());
        args
    };
    let server = OpensslServer::start(&args)?;

    let mut config = trusting(&pki)?;
    config
        .set_local_certificate_chain(
            identity
                .chain_der
                .iter()
                .map(|der| SslCertificate::from_der(der))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .set_private_key(sslsocket::SslKey::from_der(&identity.key_der)?);
    let mut client = SslSocket::with_configuration(config);
    client.connect_to_host_encrypted("localhost", server.port());
    client.wait_for_encrypted(WAIT)?;
    client.write_all(b"with a certificate\n")?;
    client.flush()?;
    server.wait_for_output("with a certificate", WAIT)?;
    let output = server.output();
    assert!(output.contains("Test Client"), "{output}");
    assert!(!output.contains("verify error"), "{output}");
    client.close()?;
    Ok(())
}

#[test]
fn a_reused_socket_forgets_the_errors_and_mode_of_its_last_connection() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&server_args(&leaf, &[]))?;
    let plain = std::net::TcpListener::bind("127.0.0.1:0")?;

    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    // 1: by IP address, which the certificate does not name.
    socket.connect_to_host_encrypted("127.0.0.1", server.port());
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    let kinds: Vec<SslErrorKind> = socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    assert_eq!(kinds, [SslErrorKind::HostNameMismatch]);
    assert_eq!(
        socket.mode(),
        SslMode::SslClientMode,
        "kept after the failure"
    );

    // 2: by name: no stale errors, no stale failure.
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    assert!(socket.ssl_handshake_errors().is_empty());
    assert_eq!(socket.error(), SocketError::UnknownSocketError);
    socket.disconnect_from_host()?;
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    let encrypted_after_close = socket.is_encrypted();
    assert_eq!(
        socket.mode(),
        SslMode::SslClientMode,
        "kept after the close"
    );

    // 3: plain TCP: back to UnencryptedMode.
    socket.connect_to_host("127.0.0.1", plain.local_addr()?.port());
    socket.wait_for_connected(WAIT)?;
    assert_eq!(socket.mode(), SslMode::UnencryptedMode);
    assert!(socket.peer_certificate_chain().is_empty());
    assert_eq!(socket.session_protocol(), SslProtocol::UnknownProtocol);
    socket.abort();
    // Qt: isEncrypted() is false once the connection is closed.
    assert!(!encrypted_after_close, "is_encrypted() after the close");
    Ok(())
}
