//! Round 36 review: third sweep of `shared/reference/qt-behaviors.md`, for the items whose
//! existing test is weak (one driver, one backend, fewer assertions than the behaviour).
//! Real peers on 127.0.0.1, certificates made at test time, every wait bounded. Run on
//! both backends (`SSLSOCKET_BACKEND=openssl` for the second run); the generic tests run
//! on both drivers.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    AlertType, SocketError, SocketState, SslConfiguration, SslError, SslEvent, SslHooks, SslMode,
    Verdict,
};
use support::{serving, trusting, Blocking, ClientDriver, Pki, Tokio};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const WAIT: Duration = Duration::from_secs(10);

/// A receiving server: its port and its thread (the bytes, and whether the end was clean).
type Receiving = (
    u16,
    std::thread::JoinHandle<Result<(Vec<u8>, bool), String>>,
);
/// A resetting peer: its port, the signal to reset, and its thread.
type Resetting = (
    u16,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<Result<(), String>>,
);

fn pair_configs(pki: &Pki) -> Result<(SslConfiguration, SslConfiguration), BoxError> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serving(&leaf).map_err(|e| e.to_string())?;
    let client = trusting(pki).map_err(|e| e.to_string())?;
    Ok((server, client))
}

fn count(events: &[SslEvent], f: impl Fn(&SslEvent) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

fn position(events: &[SslEvent], f: impl Fn(&SslEvent) -> bool) -> Option<usize> {
    events.iter().position(f)
}

fn bytes_written(events: &[SslEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            SslEvent::BytesWritten(n) => *n,
            _ => 0,
        })
        .sum()
}

/// A blocking server thread: reads the first connection until its end; gives the bytes and
/// whether the end was clean (Ok(0)).
fn receiving_server(configuration: SslConfiguration) -> Result<Receiving, BoxError> {
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    let thread = std::thread::spawn(move || -> Result<(Vec<u8>, bool), String> {
        let mut socket = match server.next_connection(WAIT).map_err(|e| e.to_string())? {
            Ok(socket) => socket,
            Err(failed) => return Err(format!("server handshake: {}", failed.error_string())),
        };
        socket.set_io_timeout(Some(WAIT));
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match socket.read(&mut buf) {
                Ok(0) => return Ok((got, true)),
                Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(_) => return Ok((got, false)),
            }
        }
    });
    Ok((port, thread))
}

// ----- §1 `simpleConnect` / §3 `sslErrors` / §18 `testSelfSignedCertificateRejectedByClient` --

/// A client refused by its own verification: the whole list of Qt's assertions on its
/// signals and its state afterwards.
fn refused_client_signals<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf).map_err(|e| e.to_string())?)?;
    let port = server.local_addr().port();
    let client_config = trusting(&pki).map_err(|e| e.to_string())?;
    let mut client = match D::connect_encrypted("localhost", port, client_config, WAIT) {
        Ok(_) => return Err("an untrusted server was accepted".into()),
        Err((_, Some(client))) => client,
        Err((e, None)) => {
            return Err(format!("{}: no socket after the failure: {e}", D::NAME).into())
        }
    };
    let socket = client.socket();
    let events = socket.take_events();
    let name = D::NAME;
    assert_eq!(
        count(&events, |e| *e == SslEvent::HostFound),
        1,
        "{name}: {events:?}"
    );
    assert_eq!(
        count(&events, |e| *e == SslEvent::Connected),
        1,
        "{name}: {events:?}"
    );
    assert_eq!(
        count(&events, |e| *e == SslEvent::Encrypted),
        0,
        "{name}: {events:?}"
    );
    assert_eq!(
        count(&events, |e| matches!(e, SslEvent::SslErrors(_))),
        1,
        "{name}: {events:?}"
    );
    assert_eq!(
        count(&events, |e| matches!(e, SslEvent::ErrorOccurred(_))),
        1,
        "{name}: {events:?}"
    );
    assert_eq!(
        count(&events, |e| *e == SslEvent::Disconnected),
        1,
        "{name}: {events:?}"
    );
    let list = events
        .iter()
        .find_map(|e| match e {
            SslEvent::SslErrors(list) => Some(list.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let one_by_one: Vec<SslError> = events
        .iter()
        .filter_map(|e| match e {
            SslEvent::PeerVerifyError(error) => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert!(!list.is_empty(), "{name}: {events:?}");
    assert_eq!(
        list.as_slice(),
        socket.ssl_handshake_errors(),
        "{name}: sslErrors payload"
    );
    assert_eq!(
        one_by_one, list,
        "{name}: peerVerifyError once per error, same set"
    );
    let first_pve = position(&events, |e| matches!(e, SslEvent::PeerVerifyError(_)));
    let errors_at = position(&events, |e| matches!(e, SslEvent::SslErrors(_)));
    let failed_at = position(&events, |e| {
        *e == SslEvent::ErrorOccurred(SocketError::SslHandshakeFailedError)
    });
    let disconnected_at = position(&events, |e| *e == SslEvent::Disconnected);
    assert!(
        first_pve < errors_at && errors_at < failed_at && failed_at < disconnected_at,
        "{name}: {events:?}"
    );
    assert_eq!(socket.state(), SocketState::UnconnectedState, "{name}");
    assert_eq!(socket.mode(), SslMode::SslClientMode, "{name}");
    assert!(!socket.is_encrypted(), "{name}");
    assert_eq!(
        socket.error(),
        SocketError::SslHandshakeFailedError,
        "{name}"
    );
    assert!(
        !socket.error_string().is_empty() && socket.error_string() != "Unknown error",
        "{name}: {}",
        socket.error_string()
    );
    assert_eq!(socket.bytes_available(), 0, "{name}");
    assert_eq!(socket.bytes_to_write(), 0, "{name}");
    assert_eq!(socket.encrypted_bytes_to_write(), 0, "{name}");
    assert!(
        !socket.peer_certificate_chain().is_empty(),
        "{name}: chain kept"
    );
    assert!(socket.session_cipher().is_none(), "{name}");
    drop(server);
    Ok(())
}

// Held: blocking driver.
#[test]
fn refused_client_signals_blocking() -> TestResult {
    refused_client_signals::<Blocking>()
}

// Held: tokio driver.
#[test]
fn refused_client_signals_tokio() -> TestResult {
    refused_client_signals::<Tokio>()
}

// ----- §16 `disconnectFromHostWhenConnected` ------------------------------------------------

/// Write then disconnect while encrypted: everything written reaches the peer before our
/// close_notify, nothing is left to write, the socket ends Unconnected with Qt's signals.
fn disconnect_when_connected<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let (server_config, client_config) = pair_configs(&pki)?;
    let (port, served) = receiving_server(server_config)?;
    let mut client = D::connect_encrypted("localhost", port, client_config, WAIT)
        .map_err(|(e, _)| e.to_string())?;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    client.write_all(&data)?;
    client.disconnect(WAIT)?;
    let name = D::NAME;
    let socket = client.socket();
    let events = socket.take_events();
    let (got, clean) = served.join().map_err(|_| "server panicked")??;
    assert_eq!(got.len(), data.len(), "{name}: the peer got everything");
    assert!(got == data, "{name}: in order");
    assert!(clean, "{name}: the peer saw a clean close_notify");
    assert_eq!(socket.state(), SocketState::UnconnectedState, "{name}");
    assert_eq!(socket.bytes_to_write(), 0, "{name}");
    assert_eq!(socket.encrypted_bytes_to_write(), 0, "{name}");
    assert!(!socket.is_encrypted(), "{name}");
    assert_eq!(
        socket.mode(),
        SslMode::SslClientMode,
        "{name}: the mode stays"
    );
    assert_eq!(
        bytes_written(&events),
        data.len(),
        "{name}: bytesWritten adds up"
    );
    let closing = position(&events, |e| {
        *e == SslEvent::StateChanged(SocketState::ClosingState)
    });
    let unconnected = position(&events, |e| {
        *e == SslEvent::StateChanged(SocketState::UnconnectedState)
    });
    let disconnected = position(&events, |e| *e == SslEvent::Disconnected);
    assert!(
        closing.is_some() && closing < unconnected && unconnected < disconnected,
        "{name}: {events:?}"
    );
    assert_eq!(
        count(&events, |e| *e == SslEvent::Disconnected),
        1,
        "{name}: {events:?}"
    );
    assert_eq!(
        count(&events, |e| matches!(e, SslEvent::ErrorOccurred(_))),
        0,
        "{name}: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SslEvent::AlertSent(a) if a.kind == AlertType::CloseNotify)),
        "{name}: {events:?}"
    );
    Ok(())
}

// Held: blocking driver.
#[test]
fn disconnect_when_connected_blocking() -> TestResult {
    disconnect_when_connected::<Blocking>()
}

// Held: tokio driver.
#[test]
fn disconnect_when_connected_tokio() -> TestResult {
    disconnect_when_connected::<Tokio>()
}

// ----- §1 `connectToHostEncrypted`: mode after the end, plain connect afterwards ------------

// Held: after disconnectFromHost isEncrypted is false and the mode stays SslClientMode; a
// later plain connectToHost on the same (blocking) socket resets it to UnencryptedMode.
#[test]
fn mode_stays_after_disconnect_and_a_plain_connect_resets_it() -> TestResult {
    let pki = Pki::new()?;
    let (server_config, client_config) = pair_configs(&pki)?;
    let (port, served) = receiving_server(server_config)?;
    let mut socket = SslSocket::with_configuration(client_config);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    socket.write_all(b"hello")?;
    socket.disconnect_from_host()?;
    if socket.state() != SocketState::UnconnectedState {
        socket.wait_for_disconnected(WAIT)?;
    }
    let (got, _) = served.join().map_err(|_| "server panicked")??;
    assert_eq!(got, b"hello".to_vec());
    assert!(!socket.is_encrypted());
    assert_eq!(socket.mode(), SslMode::SslClientMode);

    // A plain TCP echo peer.
    let plain = std::net::TcpListener::bind("127.0.0.1:0")?;
    let plain_port = plain.local_addr()?.port();
    let echo = std::thread::spawn(move || -> Result<(), String> {
        let (mut tcp, _) = plain.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        tcp.read_exact(&mut buf).map_err(|e| e.to_string())?;
        tcp.write_all(&buf).map_err(|e| e.to_string())?;
        Ok(())
    });
    socket.connect_to_host("127.0.0.1", plain_port);
    socket.wait_for_connected(WAIT)?;
    assert_eq!(
        socket.mode(),
        SslMode::UnencryptedMode,
        "a plain connect resets the mode"
    );
    assert_eq!(socket.state(), SocketState::ConnectedState);
    assert!(!socket.is_encrypted());
    socket.write_all(b"plain")?;
    socket.flush()?;
    let mut echoed = [0u8; 5];
    socket.set_io_timeout(Some(WAIT));
    socket.read_exact(&mut echoed)?;
    let _ = echo.join();
    assert_eq!(
        &echoed, b"plain",
        "plain data after a TLS connection on the same socket"
    );
    assert_eq!(socket.mode(), SslMode::UnencryptedMode);
    Ok(())
}

// ----- §3 `abortOnSslErrors` ----------------------------------------------------------------

struct AbortOnErrors;

impl SslHooks for AbortOnErrors {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        Verdict::Abort
    }
}

/// `abort()` from the sslErrors slot wins over an earlier `ignoreSslErrors()`: the socket
/// ends Unconnected, never encrypted, and the server never gets an encrypted connection.
fn abort_on_ssl_errors<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf).map_err(|e| e.to_string())?)?;
    let port = server.local_addr().port();
    let client_config = trusting(&pki).map_err(|e| e.to_string())?;
    let mut client = D::start("localhost", port, client_config, |s| {
        s.ignore_ssl_errors();
        s.set_hooks(Arc::new(AbortOnErrors));
    })?;
    let result = client.wait_for_encrypted(WAIT);
    let name = D::NAME;
    let socket = client.socket();
    let events = socket.take_events();
    assert!(
        result.is_err(),
        "{name}: encrypted despite abort: {events:?}"
    );
    assert!(!socket.is_encrypted(), "{name}");
    assert_eq!(socket.state(), SocketState::UnconnectedState, "{name}");
    assert_eq!(
        count(&events, |e| *e == SslEvent::Encrypted),
        0,
        "{name}: {events:?}"
    );
    assert_eq!(
        count(&events, |e| matches!(e, SslEvent::SslErrors(_))),
        1,
        "{name}: {events:?}"
    );
    let accepted = server.next_connection(Duration::from_secs(3));
    assert!(
        !matches!(accepted, Ok(Ok(_))),
        "{name}: the server finished the handshake"
    );
    Ok(())
}

// Held: blocking driver.
#[test]
fn abort_on_ssl_errors_blocking() -> TestResult {
    abort_on_ssl_errors::<Blocking>()
}

// Held: tokio driver.
#[test]
fn abort_on_ssl_errors_tokio() -> TestResult {
    abort_on_ssl_errors::<Tokio>()
}

// ----- §1/§17 `spontaneousWrite` --------------------------------------------------------

fn spontaneous_write<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let (server_config, client_config) = pair_configs(&pki)?;
    let (port, served) = support::serve_one(server_config, |socket| {
        socket.write_all(b"spontaneous")?;
        socket.flush()?;
        socket.set_io_timeout(Some(WAIT));
        let mut buf = [0u8; 16];
        let _ = socket.read(&mut buf);
        Ok(())
    })?;
    let mut client = D::connect_encrypted("localhost", port, client_config, WAIT)
        .map_err(|(e, _)| e.to_string())?;
    let name = D::NAME;
    let deadline = Instant::now() + WAIT;
    while client.socket().bytes_available() < 11 && Instant::now() < deadline {
        client.wait_for_ready_read(WAIT)?;
    }
    assert_eq!(client.socket().bytes_available(), 11, "{name}");
    let events = client.socket().take_events();
    assert!(events.contains(&SslEvent::ReadyRead), "{name}: {events:?}");
    assert_eq!(
        client.socket().read_all(),
        b"spontaneous".to_vec(),
        "{name}"
    );
    assert_eq!(client.socket().bytes_available(), 0, "{name}");
    let started = Instant::now();
    let again = client.wait_for_ready_read(Duration::from_millis(10));
    assert!(again.is_err(), "{name}: nothing new arrived");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{name}: {:?}",
        started.elapsed()
    );
    assert_eq!(
        client.socket().state(),
        SocketState::ConnectedState,
        "{name}: still connected"
    );
    assert!(client.socket().is_encrypted(), "{name}");
    client.disconnect(WAIT)?;
    served.join().map_err(|_| "server panicked")??;
    Ok(())
}

// Held: blocking driver.
#[test]
fn spontaneous_write_blocking() -> TestResult {
    spontaneous_write::<Blocking>()
}

// Held: tokio driver.
#[test]
fn spontaneous_write_tokio() -> TestResult {
    spontaneous_write::<Tokio>()
}

// ----- §17 waits on a socket whose connection ended ------------------------------------

/// After our own graceful close (and after the peer's), Qt's `waitForEncrypted` is false:
/// the socket is not encrypted (`isEncrypted()` false) and nothing can make it so; the
/// other waits are false too.
fn waits_after_the_end<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let (server_config, client_config) = pair_configs(&pki)?;
    let (port, served) = receiving_server(server_config)?;
    let mut client = D::connect_encrypted("localhost", port, client_config, WAIT)
        .map_err(|(e, _)| e.to_string())?;
    client.write_all(b"bye")?;
    client.disconnect(WAIT)?;
    let _ = served.join();
    let name = D::NAME;
    assert_eq!(
        client.socket().state(),
        SocketState::UnconnectedState,
        "{name}"
    );
    assert!(!client.socket().is_encrypted(), "{name}");
    let started = Instant::now();
    let encrypted = client.wait_for_encrypted(Duration::from_millis(200));
    let ready = client.wait_for_ready_read(Duration::from_millis(200));
    assert!(
        ready.is_err(),
        "{name}: waitForReadyRead after the end: {ready:?}"
    );
    assert!(
        encrypted.is_err(),
        "{name}: waitForEncrypted after disconnectFromHost is Ok though isEncrypted() is false"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "{name}");
    Ok(())
}

// Held: blocking driver.
#[test]
fn waits_after_the_end_blocking() -> TestResult {
    waits_after_the_end::<Blocking>()
}

// Was a defect (round 36): tokio `wait_for_encrypted()` / `handshake()` return Ok(Encrypted) after
// `disconnect_from_host()` (both backends), while `is_encrypted()` is false and the state
// is Unconnected; Qt's waitForEncrypted is false there (the blocking driver errs). The
// predicate in src/tokio/socket.rs `handshake` accepts `was_encrypted()` on an
// unconnected socket; it should do so only for the handshake that is being waited for
// (e.g. once per connection, or only while the connection is open or just ended
// inside this very wait).
#[test]
fn waits_after_the_end_tokio() -> TestResult {
    waits_after_the_end::<Tokio>()
}

/// The same after the peer ended the connection (close_notify, then TCP end), once the
/// client saw the end of stream.
fn waits_after_the_peers_end<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let (server_config, client_config) = pair_configs(&pki)?;
    let (port, served) = support::serve_one(server_config, |socket| {
        socket.write_all(b"last words\n")?;
        socket.flush()?;
        let _ = socket.disconnect_from_host();
        Ok(())
    })?;
    let mut client = D::connect_encrypted("localhost", port, client_config, WAIT)
        .map_err(|(e, _)| e.to_string())?;
    let name = D::NAME;
    let line = client.next_line(0, WAIT)?;
    assert_eq!(line, b"last words\n".to_vec(), "{name}");
    let end = client.next_line(0, WAIT)?;
    assert!(end.is_empty(), "{name}: a clean end of stream");
    served.join().map_err(|_| "server panicked")??;
    let deadline = Instant::now() + WAIT;
    while client.socket().state() != SocketState::UnconnectedState && Instant::now() < deadline {
        let _ = client.wait_for_ready_read(Duration::from_millis(50));
    }
    assert_eq!(
        client.socket().state(),
        SocketState::UnconnectedState,
        "{name}"
    );
    assert!(!client.socket().is_encrypted(), "{name}");
    let encrypted = client.wait_for_encrypted(Duration::from_millis(200));
    assert!(
        encrypted.is_err(),
        "{name}: waitForEncrypted after the peer's close is Ok though isEncrypted() is false"
    );
    Ok(())
}

// Held: blocking driver.
#[test]
fn waits_after_the_peers_end_blocking() -> TestResult {
    waits_after_the_peers_end::<Blocking>()
}

// Was a defect (round 36): the same after the peer's clean close: tokio `wait_for_encrypted()` is Ok on an
// Unconnected, unencrypted socket (both backends); expected an error as on blocking.
#[test]
fn waits_after_the_peers_end_tokio() -> TestResult {
    waits_after_the_peers_end::<Tokio>()
}

// ----- §3/§16 `closeWhileEmittingSocketError` ----------------------------------------------

/// A raw rustls peer that never reads after the handshake; when told, it drops its socket
/// with our data unread in its receive buffer, which the kernel answers with a reset.
fn resetting_peer(pki: &Pki) -> Result<Resetting, BoxError> {
    let (tell, told) = std::sync::mpsc::channel::<()>();
    let (port, worker) = support::raw::raw_peer(pki, move |tls| {
        let _ = told.recv_timeout(Duration::from_secs(20));
        drop(tls);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok((port, tell, worker))
}

/// The peer resets while we hold data for it; then the application closes the socket
/// (Qt: `close()` from the errorOccurred slot with 1 MB buffered). errorOccurred fires
/// exactly once, close() is safe and leaves nothing buffered.
// Was a defect (round 36): after the reset and `close()` the socket is Unconnected but
// `encrypted_bytes_to_write()` still counts the TLS bytes that will never be sent (65,602 on
// rustls, ~70-128 KiB on OpenSSL); Qt's encryptedBytesToWrite is the closed plain socket's
// 0. src/core/buffers.rs:125 reads the session's output even when the core is closed or
// failed; it should be 0 then (or the output dropped with the connection).
#[test]
fn reset_with_pending_writes_then_close_one_error_blocking() -> TestResult {
    let pki = Pki::new()?;
    let (_, client_config) = pair_configs(&pki)?;
    let (port, tell, worker) = resetting_peer(&pki)?;
    let mut socket = SslSocket::with_configuration(client_config);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    socket.set_io_timeout(Some(Duration::from_millis(300)));
    let chunk = vec![0x5au8; 64 * 1024];
    let mut stalled = false;
    for _ in 0..1024 {
        if socket.write(&chunk).is_err() {
            stalled = true;
            break;
        }
    }
    assert!(stalled, "the peer never pushed back");
    let _ = tell.send(());
    let _ = worker.join();
    socket.set_io_timeout(Some(WAIT));
    let flushed = socket.flush();
    assert!(
        flushed.is_err(),
        "flush: the bytes can not have been written"
    );
    let waited = socket.wait_for_bytes_written(WAIT);
    assert!(waited.is_err(), "the bytes can not have been written");
    let mid = socket.take_events();
    let _ = socket.close();
    let _ = socket.wait_for_bytes_written(Duration::from_millis(100));
    let late = socket.take_events();
    let errors = count(&mid, |e| matches!(e, SslEvent::ErrorOccurred(_)))
        + count(&late, |e| matches!(e, SslEvent::ErrorOccurred(_)));
    assert_eq!(errors, 1, "errorOccurred: {mid:?} then {late:?}");
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    assert_eq!(socket.bytes_to_write(), 0);
    assert_eq!(socket.encrypted_bytes_to_write(), 0);
    assert_eq!(socket.bytes_available(), 0);
    Ok(())
}

/// The same on tokio.
// Was a defect (round 36): tokio `flush()` returns Ok(()) after the peer reset the connection with ~64 KiB of
// our TLS records unsent (both backends; state Unconnected, ErrorOccurred(RemoteHostClosed),
// encrypted_bytes_to_write still 65,624): written data was lost and the flush reports
// success (the blocking driver's flush errs). In src/tokio/pump.rs `poll_until_inner` the
// send error is dropped when `done()` holds after it, and `done` (bytes_to_write()==0 &&
// !wants_write()) becomes true because the failed core wants to write nothing more.
// Expected: Err (the core's `has_undelivered()` knows, as `disconnect_from_host` uses it).
#[test]
fn reset_with_pending_writes_then_close_one_error_tokio() -> TestResult {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new()?;
    let (_, client_config) = pair_configs(&pki)?;
    let (port, tell, worker) = resetting_peer(&pki)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut socket = tokio::time::timeout(
            WAIT,
            sslsocket::tokio::SslSocket::connect_to_host_encrypted(
                "localhost",
                port,
                client_config,
            ),
        )
        .await??;
        let chunk = vec![0x5au8; 64 * 1024];
        let mut stalled = false;
        for _ in 0..1024 {
            let wrote =
                tokio::time::timeout(Duration::from_millis(300), socket.write_all(&chunk)).await;
            if !matches!(wrote, Ok(Ok(()))) {
                stalled = true;
                break;
            }
        }
        assert!(stalled, "the peer never pushed back");
        let _ = tell.send(());
        let _ = worker.join();
        let flushed = tokio::time::timeout(WAIT, socket.flush()).await;
        assert!(
            !matches!(flushed, Ok(Ok(()))),
            "the bytes can not have been written: btw {} ebtw {} state {:?} events {:?}",
            socket.bytes_to_write(),
            socket.encrypted_bytes_to_write(),
            socket.state(),
            socket
                .take_events()
                .iter()
                .filter(|e| !matches!(
                    e,
                    SslEvent::BytesWritten(_) | SslEvent::EncryptedBytesWritten(_)
                ))
                .collect::<Vec<_>>()
        );
        let mid = socket.take_events();
        let _ = tokio::time::timeout(WAIT, socket.close()).await;
        let _ =
            tokio::time::timeout(Duration::from_millis(100), socket.wait_for_bytes_written()).await;
        let late = socket.take_events();
        let errors = count(&mid, |e| matches!(e, SslEvent::ErrorOccurred(_)))
            + count(&late, |e| matches!(e, SslEvent::ErrorOccurred(_)));
        assert_eq!(errors, 1, "errorOccurred: {mid:?} then {late:?}");
        assert_eq!(socket.state(), SocketState::UnconnectedState);
        assert_eq!(socket.bytes_to_write(), 0);
        assert_eq!(socket.encrypted_bytes_to_write(), 0);
        assert_eq!(socket.bytes_available(), 0);
        Ok::<(), BoxError>(())
    })
}
