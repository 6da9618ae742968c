//! One behaviour suite, run on both drivers: every scenario is written once over
//! `support::ClientDriver` and instantiated for the blocking and the tokio socket (the
//! `blocking::` and `tokio_driver::` tests), against real peers (our server and
//! `openssl s_server`) on loopback. The non-waiting calls are the library's shared
//! `SslSocketExt`, so both drivers answer them the same way by construction; what this
//! proves is that the waiting calls (handshake, pause and decision, lines, no progress,
//! failures) behave the same too.

mod support;

use std::io::Write;
use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::{
    Error, OcspCertificateStatus, PauseMode, SocketError, SslConfiguration, SslErrorKind,
    SslProtocol,
};
use support::{os_args, serve_one, serving, trusting, ClientDriver, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The bound of any one network step.
const WAIT: Duration = Duration::from_secs(20);

/// Instantiates each scenario for both drivers.
macro_rules! on_both_drivers {
    ($($scenario:ident),* $(,)?) => {
        mod blocking {
            $(
                #[test]
                fn $scenario() -> super::TestResult {
                    super::$scenario::<super::support::Blocking>()
                }
            )*
        }
        mod tokio_driver {
            $(
                #[test]
                fn $scenario() -> super::TestResult {
                    super::$scenario::<super::support::Tokio>()
                }
            )*
        }
    };
}

on_both_drivers!(
    handshake_then_a_line_each_way_with_our_server,
    handshake_then_a_line_each_way_with_openssl,
    read_line_never_waits_and_next_line_waits_for_a_whole_line,
    a_pause_on_errors_hands_out_the_errors_and_chain_then_accepting_finishes,
    a_pause_on_errors_then_refusing_fails_and_keeps_the_errors,
    exported_keying_material_equals_the_servers,
    ocsp_responses_report_the_stapled_response,
    waiting_while_the_read_buffer_is_full_is_a_misuse_not_a_timeout,
    a_failed_client_handshake_keeps_its_errors_and_peer_chain,
);

/// The server thread's result.
fn joined(
    served: std::thread::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>,
) -> TestResult {
    match served.join() {
        Ok(result) => result.map_err(|e| e.to_string().into()),
        Err(_) => Err("the server thread panicked".into()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn kinds(errors: &[sslsocket::SslError]) -> Vec<SslErrorKind> {
    errors.iter().map(|e| e.error()).collect()
}

/// Reads lines until the client closes (or `WAIT` passes): keeps the connection open for
/// as long as the client needs it.
fn until_closed(socket: &mut sslsocket::blocking::SslSocket) {
    while matches!(socket.next_line(0, WAIT), Ok(line) if !line.is_empty()) {}
}

fn handshake_then_a_line_each_way_with_our_server<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let (port, served) = serve_one(serving(&leaf)?, |socket| {
        let line = socket.next_line(0, WAIT)?;
        socket.write_all(&line)?;
        socket.flush()?;
        until_closed(socket);
        Ok(())
    })?;

    let mut client = D::connect_encrypted("localhost", port, trusting(&pki)?, WAIT)
        .map_err(|(error, _)| error)?;
    let socket = client.socket();
    assert!(socket.is_encrypted(), "{}", D::NAME);
    assert_eq!(socket.session_protocol(), SslProtocol::TlsV1_3);
    assert_eq!(socket.peer_certificate_chain().len(), 2);
    assert!(socket.ssl_handshake_errors().is_empty());
    assert!(!socket.is_paused());

    client.write_all(b"ping\n")?;
    assert_eq!(client.next_line(0, WAIT)?, b"ping\n");
    let socket = client.socket();
    // Every complete record is decrypted as it arrives: nothing waits undecrypted.
    assert_eq!(socket.encrypted_bytes_available(), 0);
    assert_eq!(socket.encrypted_bytes_to_write(), 0);
    assert_eq!(socket.bytes_available(), 0);
    drop(client);
    joined(served)?;
    Ok(())
}

fn handshake_then_a_line_each_way_with_openssl<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server = OpensslServer::start(&leaf.openssl_args())?;

    let mut client = D::connect_encrypted("localhost", server.port(), trusting(&pki)?, WAIT)
        .map_err(|(error, _)| error)?;
    assert!(client.socket().is_encrypted());
    assert_eq!(client.socket().peer_certificate_chain().len(), 2);

    let greeting = format!("hello from the {} driver\n", D::NAME);
    client.write_all(greeting.as_bytes())?;
    server.wait_for_output(greeting.trim_end(), WAIT)?;
    server.write_stdin(b"hello from openssl\n")?;
    assert_eq!(client.next_line(0, WAIT)?, b"hello from openssl\n");
    Ok(())
}

fn read_line_never_waits_and_next_line_waits_for_a_whole_line<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let (port, served) = serve_one(serving(&leaf)?, |socket| {
        // One write, one record: the partial "tw" arrives with the first line.
        socket.write_all(b"one\ntw")?;
        socket.flush()?;
        if socket.next_line(0, WAIT)? != b"go\n" {
            return Err("the client's go-ahead".into());
        }
        socket.write_all(b"o\nthree")?;
        socket.disconnect_within(WAIT)?;
        Ok(())
    })?;

    let mut client = D::connect_encrypted("localhost", port, trusting(&pki)?, WAIT)
        .map_err(|(error, _)| error)?;
    assert_eq!(client.next_line(0, WAIT)?, b"one\n");
    // Qt's readLine: what is buffered, a partial line included, without waiting.
    assert_eq!(client.read_line(0), b"tw");
    assert_eq!(client.read_line(0), b"");
    client.write_all(b"go\n")?;
    assert_eq!(client.next_line(0, WAIT)?, b"o\n");
    // At the peer's clean end: the partial last line, then the end of stream.
    assert_eq!(client.next_line(0, WAIT)?, b"three");
    assert_eq!(client.next_line(0, WAIT)?, b"");
    assert!(client.socket().at_end());
    joined(served)?;
    Ok(())
}

/// `openssl s_server` with a certificate for another name, and a client that pauses.
fn paused_client<D: ClientDriver>(
    pki: &Pki,
    server: &OpensslServer,
) -> Result<(D, PendingDecision), Box<dyn std::error::Error>> {
    let mut client = D::start("localhost", server.port(), trusting(pki)?, |socket| {
        socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    })?;
    assert_eq!(client.socket().pause_mode(), PauseMode::PauseOnSslErrors);
    let pending = match client.handshake(WAIT)? {
        Handshake::NeedsDecision(pending) => pending,
        other => return Err(format!("{}: expected a pause, got {other:?}", D::NAME).into()),
    };
    Ok((client, pending))
}

fn a_pause_on_errors_hands_out_the_errors_and_chain_then_accepting_finishes<D: ClientDriver>(
) -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("elsewhere.test", &["elsewhere.test"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let (mut client, pending) = paused_client::<D>(&pki, &server)?;

    assert_eq!(kinds(&pending.errors), [SslErrorKind::HostNameMismatch]);
    assert_eq!(pending.peer_certificate_chain.len(), 2);
    assert_eq!(
        pending
            .peer_certificate_chain
            .first()
            .map(|c| c.der().to_vec()),
        Some(leaf.cert_der.clone())
    );
    assert!(client.socket().is_paused());
    assert!(!client.socket().is_encrypted());
    // Waiting while paused is the application's to settle, on both drivers.
    assert!(matches!(
        client.wait_for_encrypted(WAIT),
        Err(Error::Misuse(_))
    ));

    client.socket().accept_peer()?;
    assert_eq!(client.handshake(WAIT)?, Handshake::Encrypted);
    assert!(client.socket().is_encrypted());
    assert_eq!(
        kinds(client.socket().ssl_handshake_errors()),
        [SslErrorKind::HostNameMismatch]
    );
    // Nothing is paused any more: a second decision is refused.
    assert!(matches!(client.socket().resume(), Err(Error::Misuse(_))));
    assert!(matches!(
        client.socket().refuse_peer(),
        Err(Error::Misuse(_))
    ));

    client.write_all(b"accepted after a pause\n")?;
    server.wait_for_output("accepted after a pause", WAIT)?;
    Ok(())
}

fn a_pause_on_errors_then_refusing_fails_and_keeps_the_errors<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("elsewhere.test", &["elsewhere.test"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let (mut client, _pending) = paused_client::<D>(&pki, &server)?;

    client.socket().refuse_peer()?;
    let error = match client.handshake(WAIT) {
        Err(error) => error,
        Ok(outcome) => return Err(format!("{}: refused, yet {outcome:?}", D::NAME).into()),
    };
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert!(matches!(error, Error::Tls(_)), "{error:?}");
    let socket = client.socket();
    assert!(!socket.is_encrypted());
    assert!(!socket.is_paused());
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    assert_eq!(
        kinds(socket.ssl_handshake_errors()),
        [SslErrorKind::HostNameMismatch]
    );
    assert_eq!(socket.peer_certificate_chain().len(), 2);
    assert!(matches!(socket.resume(), Err(Error::Misuse(_))));
    Ok(())
}

fn exported_keying_material_equals_the_servers<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server_configuration = serving(&leaf)?;
    server_configuration.set_keying_material_export(true);
    let (port, served) = serve_one(server_configuration, |socket| {
        let material = socket.export_keying_material(32, b"EXPORTER-both-drivers", Some(b"ctx"))?;
        socket.write_all(format!("{}\n", hex(&material)).as_bytes())?;
        socket.flush()?;
        until_closed(socket);
        Ok(())
    })?;

    let mut configuration = trusting(&pki)?;
    configuration.set_keying_material_export(true);
    let mut client =
        D::connect_encrypted("localhost", port, configuration, WAIT).map_err(|(e, _)| e)?;
    let ours =
        client
            .socket()
            .export_keying_material(32, b"EXPORTER-both-drivers", Some(b"ctx"))?;
    let theirs = client.next_line(0, WAIT)?;
    assert_eq!(theirs, format!("{}\n", hex(&ours)).into_bytes());
    let other = client
        .socket()
        .export_keying_material(32, b"EXPORTER-other", Some(b"ctx"))?;
    assert_ne!(ours, other, "another label, other material");
    drop(client);
    joined(served)?;
    Ok(())
}

fn ocsp_responses_report_the_stapled_response<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let good = support::ocsp_response(&pki, &leaf, false, "good")?;
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-status_file", good]);
    let server = OpensslServer::start(&args)?;

    let mut configuration: SslConfiguration = trusting(&pki)?;
    configuration.set_ocsp_stapling_enabled(true);
    let mut client = D::connect_encrypted("localhost", server.port(), configuration, WAIT)
        .map_err(|(e, _)| e)?;
    let responses = client.socket().ocsp_responses();
    assert_eq!(responses.len(), 1, "{}", D::NAME);
    assert_eq!(
        responses.first().map(|r| r.certificate_status()),
        Some(OcspCertificateStatus::Good)
    );
    Ok(())
}

fn waiting_while_the_read_buffer_is_full_is_a_misuse_not_a_timeout<D: ClientDriver>() -> TestResult
{
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    // The client stays until the server has written everything: a client that closed
    // earlier would make the server's last writes fail (a race under load).
    let (written_tx, written) = std::sync::mpsc::channel();
    let (port, served) = serve_one(serving(&leaf)?, move |socket| {
        // Four full records: the engine decrypts a record at a time, so one fills the
        // 16-byte buffer and the rest waits.
        socket.write_all(&[b'x'; 64 * 1024])?;
        socket.flush()?;
        let _ = written_tx.send(());
        until_closed(socket);
        Ok(())
    })?;

    let mut client = D::start("localhost", port, trusting(&pki)?, |socket| {
        socket.set_read_buffer_size(16);
    })?;
    client.wait_for_encrypted(WAIT)?;
    let mut outcome = Ok(());
    // Each successful wait saw new data; the buffer fills after a few at most.
    for _ in 0..4096 {
        outcome = client.wait_for_ready_read(WAIT);
        if outcome.is_err() {
            break;
        }
    }
    let error = outcome.err().ok_or("the waits never stopped")?;
    assert!(matches!(error, Error::Misuse(_)), "{}: {error:?}", D::NAME);
    assert_eq!(error.socket_error(), SocketError::OperationError);
    let buffered = client.socket().bytes_available();
    assert!(
        buffered > 0 && buffered < 64 * 1024,
        "{buffered} bytes buffered"
    );
    // Reading makes room, and the data flows again.
    let read = client.socket().read_all();
    assert_eq!(read.len(), buffered);
    client.wait_for_ready_read(WAIT)?;
    written.recv_timeout(WAIT)?;
    drop(client);
    joined(served)?;
    Ok(())
}

fn a_failed_client_handshake_keeps_its_errors_and_peer_chain<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("elsewhere.test", &["elsewhere.test"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;

    let (error, client) =
        match D::connect_encrypted("localhost", server.port(), trusting(&pki)?, WAIT) {
            Ok(_) => return Err("a wrong name was accepted".into()),
            Err(failed) => failed,
        };
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    let mut client = client.ok_or("the failed socket was not kept")?;
    let socket = client.socket();
    assert!(!socket.is_encrypted());
    assert_eq!(
        kinds(socket.ssl_handshake_errors()),
        [SslErrorKind::HostNameMismatch]
    );
    assert_eq!(
        socket
            .peer_certificate_chain()
            .first()
            .map(|c| c.der().to_vec()),
        Some(leaf.cert_der.clone())
    );
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    Ok(())
}

// ----- the servers: one handshake timeout, one error ---------------------------------

#[test]
fn both_servers_report_a_handshake_timeout_as_error_timeout() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;

    let blocking = sslsocket::blocking::SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    blocking.set_handshake_timeout(Duration::from_millis(200));
    let silent = std::net::TcpStream::connect(blocking.local_addr())?;
    let failed = match blocking.next_connection(WAIT)? {
        Ok(_) => return Err("a silent client finished a handshake".into()),
        Err(failed) => failed,
    };
    let blocking_error = failed.failure().cloned().ok_or("no failure recorded")?;
    drop(silent);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tokio_error = runtime.block_on(async {
        let mut server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", serving(&leaf)?).await?;
        server.set_handshake_timeout(Duration::from_millis(200));
        let _silent = tokio::net::TcpStream::connect(server.local_addr()).await?;
        let (stream, _) = server.accept().await?;
        match server.handshake(stream).await {
            Ok(_) => Err::<Error, Box<dyn std::error::Error>>(
                "a silent client finished a handshake".into(),
            ),
            Err(failed) => Ok(failed.error().clone()),
        }
    })?;

    for error in [&blocking_error, &tokio_error] {
        assert!(matches!(error, Error::Timeout(_)), "{error:?}");
        assert_eq!(error.socket_error(), SocketError::SocketTimeoutError);
    }
    assert_eq!(blocking_error.to_string(), tokio_error.to_string());
    Ok(())
}

// ----- compile-time facts ------------------------------------------------------------

/// Both sockets can move between threads and tasks and need no pinning.
const _: fn() = || {
    fn send_unpin<T: Send + Unpin>() {}
    send_unpin::<sslsocket::blocking::SslSocket>();
    send_unpin::<sslsocket::tokio::SslSocket>();
};
