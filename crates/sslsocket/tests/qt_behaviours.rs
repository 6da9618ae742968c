//! Review of the socket behaviour Qt users rely on (events, waits, buffers, closes,
//! tokio I/O, servers), outside certificate verification. Each test asserts Qt's
//! behaviour (qt-behaviors.md or Qt's source) and names what Qt does.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{SocketState, SslConfiguration, SslEvent, SslMode};
use support::{serving, trusting, Pki};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const WAIT: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(100);

fn pair_configs(
) -> Result<(SslConfiguration, SslConfiguration), Box<dyn std::error::Error + Send + Sync>> {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serving(&leaf).map_err(|e| e.to_string())?;
    let client = trusting(&pki).map_err(|e| e.to_string())?;
    Ok((server, client))
}

// ----- waits -------------------------------------------------------------------------

/// DEVIATION (fails on both backends). Qt (`QAbstractSocket::waitForBytesWritten`: `if
/// (d->writeBuffer.isEmpty()) return false;`; qt-behaviors §17 `spontaneousWrite`): with
/// nothing to write the wait returns false, which is how Qt code drains (`while
/// (s.waitForBytesWritten(10)) {}`). Here it succeeds at once, so that loop never ends.
#[test]
fn blocking_wait_for_bytes_written_with_nothing_to_write_is_false() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        let mut buf = [0u8; 16];
        let _ = socket.read(&mut buf);
        Ok(())
    })?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    socket.write_all(b"x")?;
    socket.flush()?;
    assert_eq!(socket.bytes_to_write(), 0);
    // The Qt drain idiom, bounded.
    let mut turns = 0;
    while socket
        .wait_for_bytes_written(Duration::from_millis(10))
        .is_ok()
    {
        turns += 1;
        if turns == 100 {
            break;
        }
    }
    socket.abort();
    let _ = served.join();
    assert_eq!(
        turns, 0,
        "wait_for_bytes_written succeeded {turns} times with nothing to write (Qt: false)"
    );
    Ok(())
}

/// DEVIATION (fails on both backends). The same on tokio: `wait_for_bytes_written().await` with
/// nothing written is Qt's `waitForBytesWritten` returning false; here it is `Ok(())` at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_wait_for_bytes_written_with_nothing_to_write_is_not_ok() -> TestResult {
    let (server_config, client) = pair_configs()?;
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", server_config).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut s = server.accept_encrypted().await.ok()?;
        let _ = s.wait_for_ready_read().await;
        Some(())
    });
    let mut socket =
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client).await?;
    let waited = tokio::time::timeout(SHORT, socket.wait_for_bytes_written()).await;
    socket.abort();
    let _ = served.await;
    assert!(
        !matches!(waited, Ok(Ok(()))),
        "wait_for_bytes_written() with nothing to write succeeded (Qt: false)"
    );
    Ok(())
}

// ----- event order -------------------------------------------------------------------

/// DEVIATION (fails on both backends). Qt 6 (`QSslSocketPrivate::_q_connectedSlot`): `if
/// (autoStartHandshake) q->startClientEncryption(); emit q->connected();` so with
/// `connectToHostEncrypted` `modeChanged(SslClientMode)` comes before `connected()`
/// (tests/events.rs pins the reverse, Qt 4's order).
#[test]
fn blocking_connect_encrypted_emits_mode_changed_before_connected() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = support::serve_one(server, |_| Ok(()))?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    let events = socket.take_events();
    socket.abort();
    let _ = served.join();
    let mode = events
        .iter()
        .position(|e| *e == SslEvent::ModeChanged(SslMode::SslClientMode))
        .ok_or("no ModeChanged")?;
    let connected = events
        .iter()
        .position(|e| *e == SslEvent::Connected)
        .ok_or("no Connected")?;
    assert!(
        mode < connected,
        "Qt 6 emits modeChanged before connected: {events:?}"
    );
    Ok(())
}

// ----- read buffer -------------------------------------------------------------------

/// DEVIATION (fails on both backends; low). qt-behaviors §15 `setReadBufferSize`: with a 39 KiB
/// limit the receiver's bytesAvailable never grows past the limit while the sender keeps
/// writing; after setting 0 more data arrives. Here the limit is soft: input is read while
/// fewer than `limit` bytes are held, and one read decrypts several records (49,152 seen).
#[test]
fn blocking_read_buffer_limit_bounds_bytes_available() -> TestResult {
    const LIMIT: usize = 39 * 1024;
    const TOTAL: usize = 512 * 1024;
    let (server, client) = pair_configs()?;
    let (port, served) = support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        socket.write_all(&vec![b'b'; TOTAL])?;
        socket.flush()?;
        let mut buf = [0u8; 1];
        let _ = socket.read(&mut buf);
        Ok(())
    })?;
    let mut socket = SslSocket::with_configuration(client);
    socket.set_read_buffer_size(LIMIT);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    let mut most = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let _ = socket.wait_for_ready_read(Duration::from_millis(20));
        most = most.max(socket.bytes_available());
    }
    assert!(most > 0, "nothing arrived");
    assert!(
        most <= LIMIT,
        "bytes_available reached {most} with a read buffer size of {LIMIT}"
    );
    socket.set_read_buffer_size(0);
    let mut got = socket.read_all().len();
    let started = Instant::now();
    while got < TOTAL && started.elapsed() < WAIT {
        if socket
            .wait_for_ready_read(Duration::from_millis(200))
            .is_ok()
        {
            got += socket.read_all().len();
        }
    }
    assert_eq!(got, TOTAL);
    socket.write_all(b"!")?;
    socket.flush()?;
    socket.abort();
    let _ = served.join();
    Ok(())
}

/// DEVIATION (fails on both backends). qt-behaviors §16 [DOC] / Qt's `QSslSocket::abort()`
/// (`plainSocket->abort(); close();`, and `close()` clears `d->buffer`): after `abort()`
/// nothing stays readable.
#[test]
fn blocking_abort_discards_the_read_buffer() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        socket.write_all(b"hello\n")?;
        socket.flush()?;
        let mut buf = [0u8; 1];
        let _ = socket.read(&mut buf);
        Ok(())
    })?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    let started = Instant::now();
    while socket.bytes_available() < 6 && started.elapsed() < WAIT {
        let _ = socket.wait_for_ready_read(SHORT);
    }
    assert_eq!(socket.bytes_available(), 6);
    socket.abort();
    let _ = served.join();
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    assert_eq!(
        (
            socket.bytes_available(),
            socket.can_read_line(),
            socket.read_all()
        ),
        (0, false, Vec::new()),
        "Qt's abort() closes the device: the read buffer is cleared"
    );
    Ok(())
}

// ----- tokio half close and cancellation --------------------------------------------

/// DECIDED (README, "A peer's close_notify"): a peer's close_notify closes the connection
/// both ways, as in Qt (its `SSL_ERROR_ZERO_RETURN` ends the socket) and as TLS 1.2 requires
/// (the receiver answers close_notify at once and discards what it had to write); TLS 1.3
/// allows a half-close, which tokio-rustls keeps. So after a client's `shutdown()` our
/// server's write fails with a clear error, and the client reads a clean end of stream
/// (no answer, no truncation error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_shutdown_closes_both_ways_as_in_qt() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server_config, client) = pair_configs()?;
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", server_config).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut s = server.accept_encrypted().await.map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.map_err(|e| e.to_string())?;
        let answered = s.write_all(b"answer to ").await.map_err(|e| e.to_string());
        Ok::<_, String>((got, answered))
    });
    let mut socket =
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client).await?;
    socket.write_all(b"question").await?;
    tokio::time::timeout(WAIT, socket.shutdown()).await??;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, socket.read_to_end(&mut answer)).await?;
    let (got, answered) = tokio::time::timeout(WAIT, served).await???;
    assert_eq!(got, b"question");
    let refused = answered.err().unwrap_or_default();
    assert!(
        refused.contains("not open for writing"),
        "the server's write after the client's close_notify: {refused:?}"
    );
    assert!(read.is_ok(), "client read_to_end: {read:?}");
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    Ok(())
}

/// HOLDS (pinned). A read future dropped mid-way (select! against a timer) loses and duplicates
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_read_futures_dropped_midway_lose_nothing() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TOTAL: usize = 2 * 1024 * 1024;
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let (server_config, client) = pair_configs()?;
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", server_config).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut s = server.accept_encrypted().await.map_err(|e| e.to_string())?;
        for chunk in data.chunks(7000) {
            s.write_all(chunk).await.map_err(|e| e.to_string())?;
            tokio::task::yield_now().await;
        }
        s.disconnect_from_host().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    });
    let mut socket =
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client).await?;
    let mut got = Vec::with_capacity(TOTAL);
    let mut buf = vec![0u8; 3000];
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(60), "too slow");
        tokio::select! {
            n = socket.read(&mut buf) => {
                let n = n?;
                if n == 0 { break; }
                got.extend_from_slice(&buf[..n]);
            }
            _ = tokio::time::sleep(Duration::from_micros(50)) => {}
        }
    }
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes differ");
    tokio::time::timeout(WAIT, served).await???;
    Ok(())
}

/// HOLDS (pinned). A write future dropped mid-way (select! against a timer) took nothing: what
/// the peer receives is exactly what the completed writes reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_write_futures_dropped_midway_lose_nothing() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TOTAL: usize = 4 * 1024 * 1024;
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 253) as u8).collect();
    let (server_config, client) = pair_configs()?;
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", server_config).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut s = server.accept_encrypted().await.map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1000];
        loop {
            let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() % 50_000 < 1000 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Ok::<_, String>(got)
    });
    let mut socket =
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client).await?;
    let mut off = 0;
    let started = Instant::now();
    while off < TOTAL {
        assert!(started.elapsed() < Duration::from_secs(60), "too slow");
        tokio::select! {
            n = socket.write(&data[off..]) => { off += n?; }
            _ = tokio::time::sleep(Duration::from_micros(50)) => {}
        }
    }
    tokio::time::timeout(WAIT, socket.shutdown()).await??;
    let got = tokio::time::timeout(WAIT, served).await???;
    assert_eq!(got.len(), TOTAL);
    assert!(got == data, "bytes differ");
    Ok(())
}

/// HOLDS (pinned). A tokio client's `shutdown()` (close_notify + FIN) answered by our server,
/// which reads to the end and closes gracefully: the client's read then ends cleanly (0), not
/// with a truncation error (qt-behaviors §16: truncation only for an EOF without close_notify).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_shutdown_then_graceful_peer_close_reads_a_clean_end() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server_config, client) = pair_configs()?;
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", server_config).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut s = server.accept_encrypted().await.map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.map_err(|e| e.to_string())?;
        s.disconnect_from_host().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(s.take_events())
    });
    let mut socket =
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client).await?;
    socket.write_all(b"bye").await?;
    tokio::time::timeout(WAIT, socket.shutdown()).await??;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, socket.read_to_end(&mut rest)).await?;
    let server_events = tokio::time::timeout(WAIT, served).await??;
    assert!(
        read.is_ok(),
        "client read after shutdown: {read:?}; client events {:?}; server events {server_events:?}",
        socket.take_events()
    );
    Ok(())
}

/// HOLDS (pinned). Qt 4/5/6 `readBufferMaxSize` (QTBUG-55170): with a 10-byte limit and a 64
/// KiB message the receiver buffers more than 0 but less than 64 KiB while nobody reads; then
/// with the limit lifted everything arrives.
#[test]
fn blocking_ten_byte_read_buffer_holds_less_than_the_message() -> TestResult {
    const TOTAL: usize = 64 * 1024;
    let (server, client) = pair_configs()?;
    let (port, served) = support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        socket.write_all(&vec![b'm'; TOTAL])?;
        socket.flush()?;
        let mut buf = [0u8; 1];
        let _ = socket.read(&mut buf);
        Ok(())
    })?;
    let mut socket = SslSocket::with_configuration(client);
    socket.set_read_buffer_size(10);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let _ = socket.wait_for_ready_read(Duration::from_millis(20));
    }
    let held = socket.bytes_available();
    assert!(held > 0 && held < TOTAL, "held {held} of {TOTAL}");
    socket.set_read_buffer_size(0);
    let mut got = socket.read_all().len();
    let started = Instant::now();
    while got < TOTAL && started.elapsed() < WAIT {
        if socket
            .wait_for_ready_read(Duration::from_millis(200))
            .is_ok()
        {
            got += socket.read_all().len();
        }
    }
    assert_eq!(got, TOTAL);
    socket.write_all(b"!")?;
    socket.flush()?;
    let _ = served.join();
    Ok(())
}

/// HOLDS (pinned). Our own graceful close: the peer (our server, reading to the end) closes
/// after us. Qt emits no errorOccurred for a close we asked for and error() stays
/// UnknownSocketError; the peer's end after our close_notify is not a truncation.
#[test]
fn blocking_disconnect_reports_no_error_when_the_peer_closes_after_us() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        let mut all = Vec::new();
        socket.read_to_end(&mut all)?;
        socket.disconnect_from_host()?;
        Ok(())
    })?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    socket.write_all(b"data")?;
    let _ = socket.take_events();
    socket.disconnect_from_host()?;
    let events = socket.take_events();
    let server = served.join();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SslEvent::ErrorOccurred(_))),
        "{events:?}"
    );
    assert_eq!(
        socket.error(),
        sslsocket::SocketError::UnknownSocketError,
        "{events:?}"
    );
    assert!(matches!(server, Ok(Ok(()))), "server: {server:?}");
    Ok(())
}

/// HOLDS (pinned). qt-behaviors §3 `sslErrors` / §1 `simpleConnect`: a verification failure
/// emits each peerVerifyError, then sslErrors once, then
/// errorOccurred(SslHandshakeFailedError), then disconnected; never encrypted.
#[test]
fn blocking_verification_failure_event_order() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf).map_err(|e| e.to_string())?)?;
    let port = server.local_addr().port();
    let mut socket = SslSocket::with_configuration(trusting(&pki).map_err(|e| e.to_string())?);
    socket.connect_to_host_encrypted("localhost", port);
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    let events = socket.take_events();
    let pos = |want: &dyn Fn(&SslEvent) -> bool| events.iter().position(want);
    let first_pve =
        pos(&|e| matches!(e, SslEvent::PeerVerifyError(_))).ok_or("no peerVerifyError")?;
    let ssl_errors = pos(&|e| matches!(e, SslEvent::SslErrors(_))).ok_or("no sslErrors")?;
    let error = pos(&|e| {
        matches!(
            e,
            SslEvent::ErrorOccurred(sslsocket::SocketError::SslHandshakeFailedError)
        )
    })
    .ok_or("no errorOccurred(SslHandshakeFailedError)")?;
    let disconnected = pos(&|e| *e == SslEvent::Disconnected).ok_or("no disconnected")?;
    assert!(
        first_pve < ssl_errors && ssl_errors < error && error < disconnected,
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, SslEvent::SslErrors(_)))
            .count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, SslEvent::ErrorOccurred(_)))
            .count(),
        1,
        "{events:?}"
    );
    assert!(!events.contains(&SslEvent::Encrypted), "{events:?}");
    Ok(())
}

/// DEVIATION (fails on both backends). qt-behaviors §12 `testHandshakeInterruptedOnError`: with
/// handshakeMustInterruptOnError the first error is reported by handshakeInterruptedOnError
/// alone (no peerVerifyError, no sslErrors), then one errorOccurred.
#[test]
fn blocking_interrupt_on_error_replaces_peer_verify_error_and_ssl_errors() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf).map_err(|e| e.to_string())?)?;
    let port = server.local_addr().port();
    let mut config = trusting(&pki).map_err(|e| e.to_string())?;
    config.set_handshake_must_interrupt_on_error(true);
    let mut socket = SslSocket::with_configuration(config);
    socket.connect_to_host_encrypted("localhost", port);
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    let events = socket.take_events();
    let count = |want: &dyn Fn(&SslEvent) -> bool| events.iter().filter(|e| want(e)).count();
    assert_eq!(
        count(&|e| matches!(e, SslEvent::HandshakeInterruptedOnError(_))),
        1,
        "{events:?}"
    );
    assert_eq!(
        count(&|e| matches!(e, SslEvent::PeerVerifyError(_) | SslEvent::SslErrors(_))),
        0,
        "{events:?}"
    );
    assert_eq!(
        count(&|e| matches!(e, SslEvent::ErrorOccurred(_))),
        1,
        "{events:?}"
    );
    Ok(())
}

/// HOLDS (pinned). qt-behaviors §18 `quietClient`: with handshakeTimeout 1000 ms a silent TCP
/// client is dropped within ~1-5 s; the server reports the error for that socket, whose peer
/// port is the client's local port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_server_quiet_client_times_out_with_its_address() -> TestResult {
    use tokio::io::AsyncReadExt;
    let (server_config, _) = pair_configs()?;
    let mut server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", server_config).await?;
    server.set_handshake_timeout(Duration::from_millis(1000));
    let port = server.local_addr().port();
    let mut incoming = server.incoming();
    let mut quiet = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let local = quiet.local_addr()?;
    let started = Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(6), incoming.next()).await?;
    let failed = match next {
        Some(Err(failed)) => failed,
        other => {
            return Err(format!(
                "expected a failed handshake, got {:?}",
                other.map(|r| r.is_ok())
            )
            .into())
        }
    };
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let socket = failed
        .into_socket()
        .ok_or("no socket in the failed handshake")?;
    assert_eq!(socket.peer_addr(), Some(local));
    let mut socket = socket;
    let events = socket.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SslEvent::ErrorOccurred(_))),
        "no errorOccurred on the timed-out socket: {events:?}"
    );
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(2), quiet.read(&mut buf)).await?;
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the quiet client is still connected: {n:?}"
    );
    Ok(())
}

/// HOLDS (pinned). qt-behaviors §18 `plaintextClient`: a silent TCP client is not dropped at
/// once (still connected after 100 ms); once it writes non-TLS bytes it is dropped promptly.
#[test]
fn blocking_server_plaintext_client_is_dropped_promptly() -> TestResult {
    let (server_config, _) = pair_configs()?;
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let port = server.local_addr().port();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = [0u8; 64];
    match tcp.read(&mut buf) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => return Err(format!("dropped before writing anything: {other:?}").into()),
    }
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    tcp.set_read_timeout(Some(Duration::from_secs(3)))?;
    let started = Instant::now();
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let failed = server.next_connection(WAIT)?;
    assert!(
        failed.is_err(),
        "a plaintext client was handed out as encrypted"
    );
    Ok(())
}

/// DEVIATION (fails on both backends). The tokio driver's `connect_to_host_encrypted`: Qt 6
/// emits modeChanged before connected (see the blocking test above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_connect_encrypted_emits_mode_changed_before_connected() -> TestResult {
    let (server_config, client) = pair_configs()?;
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", server_config).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        server
            .accept_encrypted()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut socket =
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client).await?;
    let events = socket.take_events();
    let _ = served.await;
    let mode = events
        .iter()
        .position(|e| *e == SslEvent::ModeChanged(SslMode::SslClientMode))
        .ok_or("no ModeChanged")?;
    let connected = events
        .iter()
        .position(|e| *e == SslEvent::Connected)
        .ok_or("no Connected")?;
    assert!(
        mode < connected,
        "Qt 6 emits modeChanged before connected: {events:?}"
    );
    Ok(())
}

/// HOLDS (pinned). qt-behaviors §1 `connectToHostEncrypted` and §3 `oldErrorsOnSocketReuse`:
/// after a disconnect `is_encrypted` is false but the mode stays SslClientMode; reusing the
/// socket object for another connection starts clean (no old errors, no old peer chain, the old
/// ignore-all gone) and a plain `connect_to_host` is UnencryptedMode again.
#[test]
fn blocking_socket_reuse_starts_clean() -> TestResult {
    let pki = Pki::new()?;
    let bad = SslServer::listen(
        "127.0.0.1:0",
        serving(&pki.untrusted_leaf("localhost", &["localhost"])?).map_err(|e| e.to_string())?,
    )?;
    let bad_port = bad.local_addr().port();
    let mut socket = SslSocket::with_configuration(trusting(&pki).map_err(|e| e.to_string())?);
    socket.ignore_ssl_errors();
    socket.connect_to_host_encrypted("localhost", bad_port);
    socket.wait_for_encrypted(WAIT)?;
    assert!(!socket.ssl_handshake_errors().is_empty());
    socket.disconnect_from_host()?;
    assert!(!socket.is_encrypted());
    assert_eq!(
        socket.mode(),
        SslMode::SslClientMode,
        "Qt: the mode stays after a disconnect"
    );
    // Second connection, same bad server, no new ignore: it must fail (ignore-all was for
    // one connection in Qt: `ignoreAllSslErrors = false` in `init()`).
    socket.connect_to_host_encrypted("localhost", bad_port);
    assert!(
        socket.wait_for_encrypted(WAIT).is_err(),
        "the first connection's ignore-all leaked"
    );
    // Third: a good server; no errors of the earlier connections remain.
    let good = SslServer::listen(
        "127.0.0.1:0",
        serving(&pki.leaf("localhost", &["localhost"])?).map_err(|e| e.to_string())?,
    )?;
    socket.connect_to_host_encrypted("localhost", good.local_addr().port());
    socket.wait_for_encrypted(WAIT)?;
    assert!(
        socket.ssl_handshake_errors().is_empty(),
        "{:?}",
        socket.ssl_handshake_errors()
    );
    assert_eq!(
        socket.error(),
        sslsocket::SocketError::UnknownSocketError,
        "{}",
        socket.error_string()
    );
    socket.disconnect_from_host()?;
    // Plain connection on the same object: UnencryptedMode, no peer chain.
    socket.connect_to_host("127.0.0.1", good.local_addr().port());
    socket.wait_for_connected(WAIT)?;
    assert_eq!(socket.mode(), SslMode::UnencryptedMode);
    assert!(socket.peer_certificate_chain().is_empty());
    assert!(socket.session_cipher().is_none());
    socket.abort();
    Ok(())
}

/// HOLDS (pinned). qt-behaviors §1 `encryptWithoutConnecting`: start_client_encryption on an
/// unconnected socket does nothing (no state or mode change, no events, no error recorded).
#[test]
fn blocking_start_encryption_without_connection_changes_nothing() -> TestResult {
    let mut socket = SslSocket::new();
    assert!(socket.start_client_encryption().is_err());
    assert!(socket.start_server_encryption().is_err());
    assert_eq!(socket.mode(), SslMode::UnencryptedMode);
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    assert_eq!(socket.error(), sslsocket::SocketError::UnknownSocketError);
    assert!(socket.take_events().is_empty());
    Ok(())
}

/// HOLDS (pinned). `poll_shutdown`'s promise ("reading stays possible until the peer finishes")
/// against a peer that allows half-close (a raw rustls server, as tokio-rustls): the peer reads
/// to our close_notify, then answers and closes; we read the whole answer and a clean end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_shutdown_then_read_a_half_closing_peers_answer() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new()?;
    let (port, peer) = support::raw::raw_peer(&pki, |mut tls| {
        support::raw::until_close_notify(&mut tls)?;
        tls.write_all(b"late answer").map_err(|e| e.to_string())?;
        tls.conn.send_close_notify();
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
        let _ = tls.sock.shutdown(std::net::Shutdown::Write);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let client = trusting(&pki).map_err(|e| e.to_string())?;
    let mut socket =
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client).await?;
    socket.write_all(b"question").await?;
    tokio::time::timeout(WAIT, socket.shutdown()).await??;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, socket.read_to_end(&mut answer)).await?;
    let peer = tokio::task::spawn_blocking(move || support::raw::joined(peer)).await?;
    assert!(matches!(peer, Ok(Ok(()))), "peer: {peer:?}");
    assert!(read.is_ok(), "{read:?}: {:?}", socket.take_events());
    assert_eq!(answer, b"late answer");
    Ok(())
}
