//! Adversarial review of round 30 (commit d470f25): the deferred close during a handshake
//! (Qt's `pendingClose`), the crowded servers' eviction, the freed plaintext buffer, and
//! rustls after our close_notify.
//!
//! Tests marked DEFECT failed on the code as reviewed and pass since the fixes that
//! followed; tests marked HOLDS passed then and pin down a promise. Every wait is bounded.

mod support;

use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{Handshake, PauseMode, SocketState, SslConfiguration, SslEvent};
use support::raw::{garbage_after_close_notify, joined, raw_peer, receive_one, ThreadResult};
use support::{serving, trusting, Pki};
use tokio_rustls::rustls;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);
const REQUEST: &[u8] = b"request written before the handshake ended";

/// A peer's port and the thread that reports what it received and whether it saw our end.
type SilentPeer = (u16, JoinHandle<(usize, bool)>);

/// A TCP peer that accepts one connection and says nothing; what it received until our
/// end of stream (or `WAIT`), and whether that end came.
fn silent_peer() -> Result<SilentPeer, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let peer = thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return (0, false);
        };
        let _ = tcp.set_read_timeout(Some(WAIT));
        let mut n = 0;
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf) {
                Ok(0) => return (n, true),
                Ok(k) => n += k,
                Err(_) => return (n, false),
            }
        }
    });
    Ok((port, peer))
}

// ---------------------------------------------------------------------------------------
// 1. The deferred close (Qt's pendingClose).
// ---------------------------------------------------------------------------------------

/// DEFECT. Qt's `connectToHostEncrypted(); write(); disconnectFromHost();` keeps a pending
/// close (`state <= ConnectingState` → `pendingClose`), and the written bytes go out after
/// the handshake. The blocking socket connects lazily: written before the first wait, the
/// bytes wait in the core's `early` queue while the state is `HostLookupState`; then
/// `disconnect_from_host()` aborts (core/lifecycle.rs: the `session.is_none() && state !=
/// ConnectedState` branch), returns `Ok(())`, and the peer never even sees a connection.
/// The round-30 rule ("nothing is dropped silently": deliver, or fail the close) does not
/// cover bytes written before the connection was made.
#[test]
fn blocking_bytes_written_before_the_connection_survive_disconnect_from_host() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let receiver = receive_one(server);

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.write_all(REQUEST)?;
    let queued = client.bytes_to_write();
    let closed = client.disconnect_within(WAIT);

    let got = receiver.join().map_err(|_| "server thread panicked")?;
    let delivered = got.as_deref() == Ok(REQUEST);
    assert!(
        delivered || closed.is_err(),
        "{queued} bytes queued, disconnect_from_host said {closed:?}, the server got {:?}",
        got.map(|b| String::from_utf8_lossy(&b).into_owned())
    );
    Ok(())
}

/// DEFECT. The same with a plain `connect_to_host`: Qt delivers what was written before the
/// connection was made (`pendingClose`, then `disconnectFromHost` in `_q_connectedSlot`).
/// Here the bytes are dropped and the close says `Ok(())`.
#[test]
fn blocking_plain_bytes_written_before_the_connection_survive_disconnect() -> TestResult {
    let (port, peer) = silent_peer()?;
    let mut client = SslSocket::new();
    client.connect_to_host("127.0.0.1", port);
    client.write_all(b"HELO\r\n")?;
    let closed = client.disconnect_within(Duration::from_secs(3));
    // The peer's accept may never return if we never connected: unblock it.
    let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
    let (received, _) = peer.join().map_err(|_| "peer panicked")?;
    assert!(
        received == 6 || closed.is_err(),
        "disconnect said {closed:?}, the peer received {received} bytes"
    );
    Ok(())
}

/// DEFECT. A close that comes before the handshake pauses on errors fails with the
/// handshake's error (round 30: "a handshake that fails (or pauses on errors) fails the
/// close"); the same close coming once the handshake is paused returns `Ok(())` and drops
/// the queued request silently (core/lifecycle.rs `disconnect_from_host`: `phase ==
/// Paused` → `abort()`; blocking `disconnect_within` then returns Ok at once). The result
/// of the same loss depends on when the close came. Qt keeps `pendingClose` while paused.
#[test]
fn a_close_while_paused_with_queued_bytes_does_not_report_success() -> TestResult {
    let pki = Pki::new()?;
    let other = Pki::new()?;
    let leaf = other.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let _receiver = receive_one(server);

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_pause_mode(PauseMode::PauseOnSslErrors);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_connected(WAIT)?;
    client.write_all(REQUEST)?;
    match client.handshake(WAIT)? {
        Handshake::NeedsDecision(_) => {}
        other => return Err(format!("expected a pause, got {other:?}").into()),
    }
    assert!(client.is_paused());
    let queued = client.bytes_to_write();
    assert!(queued > 0, "nothing queued while paused");
    let closed = client.disconnect_within(WAIT);
    assert!(
        closed.is_err(),
        "{queued} bytes written were dropped and the close said {closed:?}"
    );
    Ok(())
}

/// HOLDS. Against a peer that never answers the ClientHello, the deferred close ends at
/// its deadline (with an error), the socket is unconnected, and the peer sees our end.
#[test]
fn blocking_deferred_close_ends_at_its_deadline_against_a_silent_peer() -> TestResult {
    let (port, peer) = silent_peer()?;
    let mut client = SslSocket::with_configuration(SslConfiguration::default());
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_connected(WAIT)?;
    client.write_all(REQUEST)?;
    let started = Instant::now();
    let closed = client.disconnect_within(Duration::from_secs(1));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "the close took {took:?}");
    assert!(closed.is_err(), "{closed:?}");
    assert_eq!(client.state(), SocketState::UnconnectedState);
    let (_, saw_end) = peer.join().map_err(|_| "peer panicked")?;
    assert!(saw_end, "the peer did not see our end of stream");
    // A second close changes nothing and does not wait.
    let started = Instant::now();
    let _ = client.disconnect_within(WAIT);
    assert!(started.elapsed() < Duration::from_secs(1));
    Ok(())
}

/// DEFECT (minor). A deferred close that ends at its deadline leaves the socket
/// unconnected with `bytes_to_write()` still counting the request that can never go out
/// (42 here, against a peer that holds the connection open; 0 when the peer's end happens
/// to arrive during the linger, which fails the core and clears the queue). The close path
/// ends in `handle_closed` (blocking/socket.rs `close_stream`), which keeps `queued`;
/// before round 30 the same close aborted and cleared it. Qt's `bytesToWrite()` is 0 once
/// the socket is unconnected.
#[test]
fn a_timed_out_deferred_close_leaves_nothing_to_write() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let (release, released) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        // Holds the connection open, reading nothing, until released.
        let held = listener.accept();
        let _ = released.recv_timeout(WAIT);
        drop(held);
    });
    let mut client = SslSocket::with_configuration(SslConfiguration::default());
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_connected(WAIT)?;
    client.write_all(REQUEST)?;
    let closed = client.disconnect_within(Duration::from_millis(500));
    let state = client.state();
    let left = client.bytes_to_write();
    let _ = release.send(());
    let _ = peer.join();
    assert!(closed.is_err(), "{closed:?}");
    assert_eq!(state, SocketState::UnconnectedState);
    assert_eq!(
        left, 0,
        "unconnected after {closed:?}, yet {left} bytes to write"
    );
    Ok(())
}

/// HOLDS. Dropping a blocking socket during its handshake with a request queued does not
/// block (the deferred close does not make Drop wait for the handshake).
#[test]
fn dropping_during_the_handshake_with_queued_bytes_does_not_block() -> TestResult {
    let (port, peer) = silent_peer()?;
    let mut client = SslSocket::with_configuration(SslConfiguration::default());
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_connected(WAIT)?;
    client.write_all(REQUEST)?;
    let started = Instant::now();
    drop(client);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let (_, saw_end) = peer.join().map_err(|_| "peer panicked")?;
    assert!(saw_end, "the peer did not see our end of stream");
    Ok(())
}

/// HOLDS. TLS 1.2: bytes written during the handshake survive the deferred close.
#[test]
fn tls12_bytes_written_during_the_handshake_survive_disconnect() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let receiver = receive_one(server);
    let mut config = trusting(&pki)?;
    config.set_protocol(sslsocket::SslProtocol::TlsV1_2);
    let mut client = SslSocket::with_configuration(config);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_connected(WAIT)?;
    client.write_all(REQUEST)?;
    let closed = client.disconnect_within(WAIT);
    let got = receiver.join().map_err(|_| "server thread panicked")?;
    assert_eq!(got.as_deref(), Ok(REQUEST), "{closed:?}");
    assert!(closed.is_ok(), "{closed:?}");
    assert_eq!(client.bytes_to_write(), 0);
    Ok(())
}

/// HOLDS. Tokio: the deferred close has no deadline of its own; a caller's timeout leaves a
/// socket that `abort()` closes (the peer sees our end at once), and a second close under
/// a timeout ends too.
#[test]
fn tokio_deferred_close_under_a_callers_timeout_leaves_a_closable_socket() -> TestResult {
    use tokio::io::AsyncWriteExt;
    let (port, peer) = silent_peer()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        let mut client =
            sslsocket::tokio::SslSocket::from_tcp_stream(tcp, SslConfiguration::default())?;
        client.set_peer_verify_name("localhost");
        client.begin_client_encryption()?;
        client.write_all(REQUEST).await?;
        let first =
            tokio::time::timeout(Duration::from_millis(500), client.disconnect_from_host()).await;
        assert!(first.is_err(), "the close should wait: {first:?}");
        let second =
            tokio::time::timeout(Duration::from_millis(500), client.disconnect_from_host()).await;
        assert!(second.is_err(), "the close should wait: {second:?}");
        client.abort();
        assert_eq!(client.state(), SocketState::UnconnectedState);
        assert_eq!(client.bytes_to_write(), 0);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let (_, saw_end) = peer.join().map_err(|_| "peer panicked")?;
    assert!(saw_end, "the peer did not see our end of stream");
    Ok(())
}

/// HOLDS. Server mode (tokio, STARTTLS-style `begin_server_encryption`): a greeting written
/// during the handshake, then `disconnect_from_host`, reaches the client, and the events
/// run Encrypted → Closing → Unconnected → Disconnected, each once.
#[test]
fn tokio_server_mode_deferred_close_delivers_and_orders_events() -> TestResult {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server_config = serving(&leaf)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let client_config = trusting(&pki)?;
    let client = thread::spawn(move || -> ThreadResult<Vec<u8>> {
        let mut client = SslSocket::with_configuration(client_config);
        client.connect_to_host_encrypted("localhost", port);
        client.wait_for_encrypted(WAIT).map_err(|e| e.to_string())?;
        client.set_io_timeout(Some(WAIT));
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got);
        Ok(got)
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (closed, events) = runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (tcp, _) = tokio::time::timeout(WAIT, listener.accept()).await??;
        let mut socket = sslsocket::tokio::SslSocket::from_tcp_stream(tcp, server_config)?;
        socket.begin_server_encryption()?;
        socket.write_all(b"220 greeting").await?;
        let closed = tokio::time::timeout(WAIT, socket.disconnect_from_host()).await?;
        Ok::<_, Box<dyn std::error::Error>>((closed, socket.take_events()))
    })?;
    let got = client.join().map_err(|_| "client panicked")??;
    assert_eq!(String::from_utf8_lossy(&got), "220 greeting", "{closed:?}");
    assert!(closed.is_ok(), "{closed:?}");
    let order: Vec<String> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SslEvent::Encrypted | SslEvent::StateChanged(_) | SslEvent::Disconnected
            )
        })
        .map(|e| format!("{e:?}"))
        .collect();
    let tail: Vec<&str> = order.iter().map(String::as_str).rev().take(4).collect();
    assert_eq!(
        tail,
        [
            "Disconnected",
            "StateChanged(UnconnectedState)",
            "StateChanged(ClosingState)",
            "Encrypted"
        ],
        "{order:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 4. rustls after our close_notify.
// ---------------------------------------------------------------------------------------

/// A client configuration that asks for keying material export: the rustls backend then
/// runs rustls's buffered connection (backend/rustls/mod.rs `new_session`).
fn exporting(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut config = trusting(pki)?;
    config.set_keying_material_export(true);
    Ok(config)
}

/// DEFECT (rustls backend, debug builds). Round 30 guards rustls against the bad record
/// that answers our close_notify only in the unbuffered session (unbuffered.rs `records`).
/// A configuration with keying material export runs the buffered one
/// (backend/rustls/session.rs): `send_close_notify`, then `process_new_packets` on the
/// bad record trips rustls's `debug_assert!(!self.sent_fatal_alert)` (common_state.rs:638)
/// and `disconnect_within` panics.
#[test]
fn a_bad_record_after_close_notify_does_not_panic_an_exporting_blocking_socket() -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = raw_peer(&pki, garbage_after_close_notify)?;
    let mut client = SslSocket::with_configuration(exporting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    client.write_all(b"bye")?;
    let worker = thread::spawn(move || {
        let result = client.disconnect_within(Duration::from_secs(3));
        format!("{result:?}")
    });
    let ended = joined(worker);
    let _ = peer.join();
    let result = ended?;
    assert!(!result.is_empty());
    Ok(())
}

/// DEFECT (rustls backend, debug builds). The same through the tokio driver: a half-close
/// (`AsyncWriteExt::shutdown`, our close_notify), then reading the peer's answer.
#[test]
fn a_bad_record_after_a_tokio_half_close_does_not_panic_an_exporting_socket() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new()?;
    let (port, peer) = raw_peer(&pki, garbage_after_close_notify)?;
    let config = exporting(&pki)?;
    let worker = thread::spawn(move || -> Result<String, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let mut client =
                sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, config)
                    .await
                    .map_err(|e| e.to_string())?;
            let _ = client.write_all(b"bye").await;
            let _ = tokio::time::timeout(WAIT, client.shutdown()).await;
            let mut rest = Vec::new();
            let read = tokio::time::timeout(WAIT, client.read_to_end(&mut rest)).await;
            Ok(format!("{read:?}"))
        })
    });
    let ended = joined(worker);
    let _ = peer.join();
    ended??;
    Ok(())
}

/// HOLDS. The default (unbuffered) session through a tokio half-close: the bad record
/// after our close_notify is an error, not a panic.
#[test]
fn a_bad_record_after_a_tokio_half_close_does_not_panic() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new()?;
    let (port, peer) = raw_peer(&pki, garbage_after_close_notify)?;
    let config = trusting(&pki)?;
    let worker = thread::spawn(move || -> Result<String, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let mut client =
                sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, config)
                    .await
                    .map_err(|e| e.to_string())?;
            let _ = client.write_all(b"bye").await;
            let _ = tokio::time::timeout(WAIT, client.shutdown()).await;
            let mut rest = Vec::new();
            let read = tokio::time::timeout(WAIT, client.read_to_end(&mut rest)).await;
            Ok(format!("{read:?}"))
        })
    });
    let ended = joined(worker);
    let _ = peer.join();
    ended??;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. The freed plaintext buffer and the line API across records.
// ---------------------------------------------------------------------------------------

/// A raw rustls peer that sends `pieces` as separate records (flushing between them, with
/// a short pause), then closes.
fn send_records(
    pieces: Vec<Vec<u8>>,
) -> impl FnOnce(rustls::StreamOwned<rustls::ServerConnection, TcpStream>) -> ThreadResult<()> {
    move |mut tls| {
        for piece in pieces {
            tls.write_all(&piece).map_err(|e| e.to_string())?;
            tls.flush().map_err(|e| e.to_string())?;
            thread::sleep(Duration::from_millis(30));
        }
        tls.conn.send_close_notify();
        let _ = tls.flush();
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest);
        Ok(())
    }
}

/// HOLDS. Lines split across records, read with `can_read_line`/`read_line`, `peek`, and
/// `BufRead` (`fill_buf`/`consume`, `read_until`), with the buffer emptied between records.
#[test]
fn lines_across_records_read_the_same_with_the_buffer_freed() -> TestResult {
    let pki = Pki::new()?;
    let pieces: Vec<Vec<u8>> = vec![
        b"one\ntw".to_vec(),
        b"o\n".to_vec(),
        b"thr".to_vec(),
        b"ee".to_vec(),
        b"\nfour\nfi".to_vec(),
        b"ve".to_vec(),
    ];
    let expected = ["one\n", "two\n", "three\n", "four\n", "five"];
    for how in ["read_line", "bufread", "peek_then_read"] {
        let (port, peer) = raw_peer(&pki, send_records(pieces.clone()))?;
        let mut client = SslSocket::with_configuration(trusting(&pki)?);
        client.connect_to_host_encrypted("localhost", port);
        client.wait_for_encrypted(WAIT)?;
        client.set_io_timeout(Some(WAIT));
        let mut lines: Vec<String> = Vec::new();
        let deadline = Instant::now() + WAIT;
        eprintln!("variant {how}");
        match how {
            "read_line" => loop {
                assert!(Instant::now() < deadline, "{how}: stuck after {lines:?}");
                let line = client.next_line(0, WAIT)?;
                if line.is_empty() {
                    break;
                }
                lines.push(String::from_utf8_lossy(&line).into_owned());
            },
            "bufread" => loop {
                assert!(Instant::now() < deadline, "{how}: stuck after {lines:?}");
                let mut line = Vec::new();
                let n = client.read_until(b'\n', &mut line)?;
                if n == 0 {
                    break;
                }
                lines.push(String::from_utf8_lossy(&line).into_owned());
            },
            _ => loop {
                assert!(
                    Instant::now() < deadline,
                    "{how}: stuck after {lines:?}, peek {:?}, at_end {}, state {:?}",
                    client.peek(64),
                    client.at_end_of_stream(),
                    client.state()
                );
                let _ = client.wait_for_ready_read(Duration::from_millis(200));
                let peeked = client.peek(64);
                if peeked.is_empty() {
                    if client.at_end_of_stream() || client.state() == SocketState::UnconnectedState
                    {
                        break;
                    }
                    continue;
                }
                if client.can_read_line() {
                    let line = client.read_line(0);
                    assert!(peeked.starts_with(&line), "{peeked:?} / {line:?}");
                    lines.push(String::from_utf8_lossy(&line).into_owned());
                } else if client.state() == SocketState::UnconnectedState {
                    let line = client.read_line(0);
                    lines.push(String::from_utf8_lossy(&line).into_owned());
                }
            },
        }
        assert_eq!(lines, expected, "{how}");
        let _ = peer.join();
    }
    Ok(())
}

/// HOLDS. `fill_buf` after the buffer was freed by a partial `consume` to empty sees the
/// next record, and `consume(0)` on an empty buffer changes nothing.
#[test]
fn fill_buf_after_consume_to_empty_sees_the_next_record() -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = raw_peer(&pki, send_records(vec![b"abc".to_vec(), b"defg".to_vec()]))?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    client.set_io_timeout(Some(WAIT));
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let chunk = client.fill_buf()?.to_vec();
        if chunk.is_empty() {
            break;
        }
        // Consume one byte at a time, then a no-op consume.
        for byte in &chunk {
            got.push(*byte);
            client.consume(1);
        }
        client.consume(0);
    }
    assert_eq!(String::from_utf8_lossy(&got), "abcdefg");
    let _ = peer.join();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. The crowded servers' eviction.
// ---------------------------------------------------------------------------------------

/// A raw rustls client configuration trusting `pki`'s root.
fn raw_client_config(pki: &Pki) -> Result<Arc<rustls::ClientConfig>, Box<dyn std::error::Error>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(
        pki.root_der().to_vec(),
    ))?;
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// An honest client whose last flight leaves `think` after the server's (a slow device,
/// or a long round trip): ClientHello at once, the server's flight read, then `think`,
/// then its Finished. Then it waits for the server application's "ok". Whether it got it.
fn slow_honest_client(
    config: Arc<rustls::ClientConfig>,
    port: u16,
    think: Duration,
) -> Result<(), String> {
    let mut tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    while conn.wants_write() {
        conn.write_tls(&mut tcp).map_err(|e| e.to_string())?;
    }
    while conn.is_handshaking() {
        if conn
            .read_tls(&mut tcp)
            .map_err(|e| format!("server flight: {e}"))?
            == 0
        {
            return Err("closed during the server's flight".into());
        }
        conn.process_new_packets().map_err(|e| e.to_string())?;
    }
    thread::sleep(think);
    while conn.wants_write() {
        conn.write_tls(&mut tcp)
            .map_err(|e| format!("sending Finished: {e}"))?;
    }
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut got = [0u8; 2];
    tls.read_exact(&mut got)
        .map_err(|e| format!("waiting for ok: {e}"))?;
    if &got == b"ok" {
        Ok(())
    } else {
        Err(format!("got {got:?}"))
    }
}

/// Runs `clients` slow honest clients at once against `port`; how many got their "ok".
fn burst_of_slow_clients(
    pki: &Pki,
    port: u16,
    clients: usize,
    think: Duration,
) -> Result<(usize, Vec<String>), Box<dyn std::error::Error>> {
    let config = raw_client_config(pki)?;
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let config = Arc::clone(&config);
            thread::spawn(move || slow_honest_client(config, port, think))
        })
        .collect();
    let mut ok = 0;
    let mut errors = Vec::new();
    for worker in workers {
        match worker.join() {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("client panicked".into()),
        }
    }
    errors.sort();
    errors.dedup();
    Ok((ok, errors))
}

/// How many clients, how long each takes before its Finished.
const HONEST_BURST: usize = 300;
const THINK: Duration = Duration::from_millis(1500);

/// DEFECT. 300 honest clients arrive at once, each taking 1.5 s between the server's
/// flight and its Finished (a slow device, or a ~1 s round trip), against the blocking
/// server with a 10 s handshake timeout. Without eviction all of them finish by about
/// 3 s (256, then 44). With round 30's eviction, the 44 waiting clients each end the
/// oldest running handshake once it has run 1 s (blocking/server.rs `accept_loop` →
/// `Started::evict_oldest`), although every one of those is an honest handshake about to
/// finish: about 44 honest clients are cut off. Eviction looks at age only, never at
/// whether the handshake progresses, so an honest burst alone triggers it.
#[test]
fn a_burst_of_slow_honest_clients_is_not_cut_by_the_blocking_server() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    server.set_handshake_timeout(Duration::from_secs(10));
    let port = server.local_addr().port();
    let app = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(25);
        let mut served = 0usize;
        while Instant::now() < deadline {
            match server.next_connection(Duration::from_millis(500)) {
                Ok(Ok(mut socket)) => {
                    served += 1;
                    let _ = socket.write_all(b"ok");
                    let _ = socket.flush();
                    let _ = socket.disconnect_within(Duration::from_secs(1));
                }
                Ok(Err(_)) => {}
                Err(_) => {
                    if served >= HONEST_BURST {
                        break;
                    }
                }
            }
        }
        served
    });
    let (ok, errors) = burst_of_slow_clients(&pki, port, HONEST_BURST, THINK)?;
    let served = app.join().map_err(|_| "server app panicked")?;
    assert_eq!(
        ok,
        HONEST_BURST,
        "{} honest clients were cut off (server handed out {served}): {errors:?}",
        HONEST_BURST - ok
    );
    Ok(())
}

/// DEFECT. The same burst against the tokio server (tokio/server.rs
/// `Incoming::poll_connection`: the `crowded` timer, then `oldest.abort()`).
#[test]
fn a_burst_of_slow_honest_clients_is_not_cut_by_the_tokio_server() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let configuration = serving(&leaf)?;
    let (port_tx, port_rx) = mpsc::channel();
    let server_thread = thread::spawn(move || -> usize {
        let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        else {
            return 0;
        };
        runtime.block_on(async move {
            use tokio::io::AsyncWriteExt;
            let Ok(mut server) =
                sslsocket::tokio::SslServer::bind("127.0.0.1:0", configuration).await
            else {
                return 0;
            };
            server.set_handshake_timeout(Duration::from_secs(10));
            let _ = port_tx.send(server.local_addr().port());
            let mut incoming = server.incoming();
            let mut served = 0usize;
            let mut replies = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
            while served < HONEST_BURST {
                match tokio::time::timeout_at(deadline, incoming.next()).await {
                    Ok(Some(Ok(mut socket))) => {
                        served += 1;
                        replies.push(tokio::spawn(async move {
                            let _ = socket.write_all(b"ok").await;
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                socket.disconnect_from_host(),
                            )
                            .await;
                        }));
                    }
                    Ok(Some(Err(_))) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            // The last replies go out before the runtime (and its tasks) ends.
            for reply in replies {
                let _ = tokio::time::timeout_at(deadline, reply).await;
            }
            served
        })
    });
    let port = port_rx.recv_timeout(WAIT)?;
    let (ok, errors) = burst_of_slow_clients(&pki, port, HONEST_BURST, THINK)?;
    let served = server_thread.join().map_err(|_| "server panicked")?;
    assert_eq!(
        ok,
        HONEST_BURST,
        "{} honest clients were cut off (server handed out {served}): {errors:?}",
        HONEST_BURST - ok
    );
    Ok(())
}
