//! Timeouts and hostile peers: every `wait_for_*` gives up within its timeout against a
//! silent peer, a refused port is reported at once, and peers that hang up, answer
//! garbage or truncate the stream end in the right error, never in a hang.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{Error, SocketError, SocketState, SslEvent};
use support::{free_port, raw_server_config, serving, trusting, Pki};
use tokio_rustls::rustls;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type ThreadResult<T> = Result<T, String>;

const WAIT: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(300);
const SLACK: Duration = Duration::from_secs(1);

/// A TCP peer that accepts one connection and then says nothing and reads nothing until
/// `release` is dropped (or 30 s pass); then it closes.
struct SilentPeer {
    port: u16,
    release: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SilentPeer {
    fn start() -> std::io::Result<SilentPeer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let (release, released): (Sender<()>, Receiver<()>) = mpsc::channel();
        let thread = thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                let _ = released.recv_timeout(Duration::from_secs(30));
                drop(stream);
            }
        });
        Ok(SilentPeer {
            port,
            release: Some(release),
            thread: Some(thread),
        })
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.release = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `wait`, which must time out after about `SHORT`.
fn assert_times_out(what: &str, wait: impl FnOnce() -> Result<(), Error>) {
    let started = Instant::now();
    let result = wait();
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(Error::Timeout(_))),
        "{what}: expected a timeout, got {result:?}"
    );
    assert!(
        elapsed + Duration::from_millis(20) >= SHORT,
        "{what}: gave up early, after {elapsed:?}"
    );
    assert!(
        elapsed < SHORT + SLACK,
        "{what}: gave up late, after {elapsed:?}"
    );
}

#[test]
fn every_wait_times_out_in_time_against_a_silent_peer_during_the_handshake() -> TestResult {
    let pki = Pki::new()?;
    let peer = SilentPeer::start()?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("127.0.0.1", peer.port);
    client.wait_for_connected(WAIT)?;

    assert_times_out("wait_for_encrypted", || client.wait_for_encrypted(SHORT));
    assert_times_out("wait_for_ready_read", || client.wait_for_ready_read(SHORT));
    assert_times_out("wait_for_disconnected", || {
        client.wait_for_disconnected(SHORT)
    });
    // A timeout is not a failure of the connection (Qt: the socket stays connected).
    assert_eq!(client.state(), SocketState::ConnectedState);
    assert!(client.core().is_handshaking());
    client.abort();
    assert_eq!(client.state(), SocketState::UnconnectedState);
    Ok(())
}

/// Fills the peer's window (it reads nothing) until even a wait of `SHORT` sends nothing
/// more: the kernel's buffers can still grow for a while after a first write blocked.
/// Bounded: at most 20 rounds.
fn fill_the_window(client: &mut SslSocket) {
    for _ in 0..20 {
        fill_until_blocked(client);
        if client.wait_for_bytes_written(SHORT).is_err() {
            return;
        }
    }
}

/// Writes (at most 32 MiB) until a write blocks for `SHORT` (the peer reads nothing and
/// its window is full); returns how much was taken. The I/O timeout is unset afterwards.
fn fill_until_blocked(client: &mut SslSocket) -> usize {
    let big = vec![b'x'; 32 * 1024 * 1024];
    client.set_io_timeout(Some(SHORT));
    let mut written = 0;
    while written < big.len() {
        match client.write(&big[written..]) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    client.set_io_timeout(None);
    written
}

#[test]
fn every_wait_times_out_in_time_against_a_silent_plain_peer() -> TestResult {
    let peer = SilentPeer::start()?;
    let mut client = SslSocket::new();
    client.connect_to_host("127.0.0.1", peer.port);
    client.wait_for_connected(WAIT)?;

    assert_times_out("wait_for_ready_read", || client.wait_for_ready_read(SHORT));
    assert_times_out("wait_for_disconnected", || {
        client.wait_for_disconnected(SHORT)
    });
    // The peer reads nothing: writing fills its window, then the rest stays pending.
    fill_the_window(&mut client);
    assert_times_out("wait_for_bytes_written", || {
        client.wait_for_bytes_written(SHORT)
    });
    assert!(client.bytes_to_write() > 0);
    assert_eq!(client.state(), SocketState::ConnectedState);
    client.abort();
    Ok(())
}

#[test]
fn wait_for_bytes_written_times_out_when_an_encrypted_peer_stops_reading() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_connected(WAIT)?;
    // Queued during the handshake, then written until the idle server's window is full.
    fill_until_blocked(&mut client);
    client.wait_for_encrypted(WAIT)?;
    // The server finished its handshake and never reads.
    let idle = server
        .next_connection(WAIT)?
        .map_err(|failed| failed.error_string())?;
    fill_the_window(&mut client);

    assert_times_out("wait_for_bytes_written", || {
        client.wait_for_bytes_written(SHORT)
    });
    // Pending as plaintext not yet encrypted, or as TLS records not yet sent.
    assert!(client.bytes_to_write() + client.encrypted_bytes_to_write() > 0);
    assert!(client.is_encrypted());
    client.abort();
    drop(idle);
    Ok(())
}

#[test]
fn a_timed_out_wait_for_encrypted_leaves_the_handshake_running() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let config = serving(&leaf)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let slow = thread::spawn(move || -> ThreadResult<()> {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        thread::sleep(Duration::from_millis(600));
        let mut socket = SslSocket::from_tcp_stream(stream, config).map_err(|e| e.to_string())?;
        socket
            .start_server_encryption()
            .map_err(|e| e.to_string())?;
        socket.wait_for_encrypted(WAIT).map_err(|e| e.to_string())?;
        socket.write_all(b"late\n").map_err(|e| e.to_string())?;
        socket.close().map_err(|e| e.to_string())
    });

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    assert!(matches!(
        client.wait_for_encrypted(Duration::from_millis(200)),
        Err(Error::Timeout(_))
    ));
    client.wait_for_encrypted(WAIT)?;
    let mut got = Vec::new();
    client.read_to_end(&mut got)?;
    assert_eq!(got, b"late\n");
    slow.join().map_err(|_| "server thread panicked")??;
    Ok(())
}

#[test]
fn wait_for_connected_succeeds_at_once_and_a_refused_port_fails_at_once() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let mut client = SslSocket::new();
    client.connect_to_host("127.0.0.1", port);
    let started = Instant::now();
    client.wait_for_connected(WAIT)?;
    assert!(started.elapsed() < SLACK);
    assert_eq!(client.state(), SocketState::ConnectedState);
    client.abort();
    drop(listener);

    let closed_port = free_port()?;
    let mut client = SslSocket::new();
    client.connect_to_host_encrypted("127.0.0.1", closed_port);
    let started = Instant::now();
    let error = match client.wait_for_connected(WAIT) {
        Ok(()) => return Err("connected to a closed port".into()),
        Err(e) => e,
    };
    assert!(started.elapsed() < SLACK);
    assert_eq!(error.socket_error(), SocketError::ConnectionRefusedError);
    assert_eq!(client.error(), SocketError::ConnectionRefusedError);
    assert_eq!(client.state(), SocketState::UnconnectedState);
    let events = client.take_events();
    assert!(
        events.contains(&SslEvent::ErrorOccurred(
            SocketError::ConnectionRefusedError
        )),
        "{events:?}"
    );
    assert!(!events.contains(&SslEvent::Connected), "{events:?}");
    Ok(())
}

#[test]
fn wait_for_disconnected_returns_when_the_peer_closes() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let peer = thread::spawn(move || -> std::io::Result<()> {
        let (stream, _) = listener.accept()?;
        thread::sleep(Duration::from_millis(100));
        stream.shutdown(Shutdown::Both)
    });
    let mut client = SslSocket::new();
    client.connect_to_host("127.0.0.1", port);
    client.wait_for_connected(WAIT)?;
    let started = Instant::now();
    client.wait_for_disconnected(WAIT)?;
    assert!(started.elapsed() < SLACK);
    assert_eq!(client.state(), SocketState::UnconnectedState);
    peer.join().map_err(|_| "peer thread panicked")??;
    Ok(())
}

/// A peer that reads the ClientHello, then does `then` with the stream.
fn hello_reader(
    then: impl FnOnce(TcpStream) -> std::io::Result<()> + Send + 'static,
) -> std::io::Result<(u16, JoinHandle<ThreadResult<usize>>)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let thread = thread::spawn(move || -> ThreadResult<usize> {
        let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut hello = vec![0u8; 64 * 1024];
        let n = stream.read(&mut hello).map_err(|e| e.to_string())?;
        then(stream).map_err(|e| e.to_string())?;
        Ok(n)
    });
    Ok((port, thread))
}

#[test]
fn a_peer_that_hangs_up_after_the_client_hello_gives_remote_host_closed() -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = hello_reader(|stream| {
        drop(stream);
        Ok(())
    })?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    let started = Instant::now();
    let result = client.wait_for_encrypted(WAIT);
    assert!(started.elapsed() < SLACK, "took {:?}", started.elapsed());
    let error = match result {
        Ok(()) => return Err("encrypted with a peer that hung up".into()),
        Err(e) => e,
    };
    assert_eq!(error.socket_error(), SocketError::RemoteHostClosedError);
    assert_eq!(client.error(), SocketError::RemoteHostClosedError);
    assert_eq!(client.state(), SocketState::UnconnectedState);
    let hello_len = peer.join().map_err(|_| "peer thread panicked")??;
    assert!(hello_len > 0 && hello_len < 64 * 1024, "{hello_len}");
    Ok(())
}

#[test]
fn an_http_error_instead_of_a_server_hello_fails_the_handshake() -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = hello_reader(|mut stream| {
        stream.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n")?;
        stream.shutdown(Shutdown::Write)?;
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).map(|_| ())
    })?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    let started = Instant::now();
    let result = client.wait_for_encrypted(WAIT);
    assert!(started.elapsed() < SLACK, "took {:?}", started.elapsed());
    let error = match result {
        Ok(()) => return Err("encrypted with an HTTP server".into()),
        Err(e) => e,
    };
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert_eq!(client.error(), SocketError::SslHandshakeFailedError);
    assert!(!client.is_encrypted());
    peer.join().map_err(|_| "peer thread panicked")??;
    Ok(())
}

/// A peer's port and the thread serving it.
type Peer = (u16, JoinHandle<ThreadResult<()>>);

/// A raw rustls server that sends `data`, then ends TCP without close_notify.
fn serve_then_cut(pki: &Pki, data: &'static [u8]) -> Result<Peer, Box<dyn std::error::Error>> {
    let config = raw_server_config(pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> ThreadResult<()> {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(data).map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        // No close_notify: TCP ends here.
        let (_, mut tcp) = tls.into_parts();
        tcp.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest);
        Ok(())
    });
    Ok((port, server))
}

#[test]
fn buf_read_reports_a_truncation_after_the_data_not_a_clean_end() -> TestResult {
    use std::io::BufRead;
    const DATA: &[u8] = b"first line\nsecond line, cut before its end";
    let pki = Pki::new()?;
    let (port, server) = serve_then_cut(&pki, DATA)?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let mut line = Vec::new();
    client.read_until(b'\n', &mut line)?;
    assert_eq!(line, b"first line\n");
    let mut rest = Vec::new();
    let result = client.read_until(b'\n', &mut rest);
    assert_eq!(
        rest, b"second line, cut before its end",
        "the data before the cut"
    );
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        other => return Err(format!("expected UnexpectedEof, got {other:?}").into()),
    }
    server.join().map_err(|_| "server thread panicked")??;
    Ok(())
}

#[test]
fn a_server_that_closes_without_close_notify_truncates_the_stream() -> TestResult {
    const DATA: &[u8] = b"all of these bytes arrive, then the stream is cut\n";
    let pki = Pki::new()?;
    let (port, server) = serve_then_cut(&pki, DATA)?;

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let mut got = Vec::new();
    let result = client.read_to_end(&mut got);
    assert_eq!(got, DATA, "every byte before the cut arrives");
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        other => return Err(format!("expected UnexpectedEof, got {other:?}").into()),
    }
    assert!(client.core().is_truncated());
    assert!(!client.core().is_peer_closed_cleanly());
    assert_eq!(client.error(), SocketError::RemoteHostClosedError);
    let events = client.take_events();
    assert!(
        events.contains(&SslEvent::ErrorOccurred(SocketError::RemoteHostClosedError)),
        "{events:?}"
    );
    client.abort();
    server.join().map_err(|_| "server thread panicked")??;
    Ok(())
}

/// Runs `close` on `client` in a thread; returns how long it took and what it said, or
/// `None` when it was still blocked after `limit` (the silent peer is then released so
/// the thread ends).
fn time_bounded(
    client: SslSocket,
    peer: SilentPeer,
    limit: Duration,
    close: impl FnOnce(SslSocket) -> String + Send + 'static,
) -> Option<(Duration, String)> {
    let (done, finished) = mpsc::channel();
    let started = Instant::now();
    let worker = thread::spawn(move || {
        let outcome = close(client);
        let _ = done.send((started.elapsed(), outcome));
    });
    let took = finished.recv_timeout(limit).ok();
    drop(peer);
    let _ = worker.join();
    took
}

#[test]
fn disconnect_from_host_during_a_stalled_handshake_returns_promptly() -> TestResult {
    let pki = Pki::new()?;
    let peer = SilentPeer::start()?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("127.0.0.1", peer.port);
    client.wait_for_connected(WAIT)?;
    // Qt closes at once: nothing to flush, no session to shut down.
    let took = time_bounded(client, peer, Duration::from_secs(3), |mut client| {
        let result = client.disconnect_from_host();
        let outcome = format!("{result:?}, {:?}", client.state());
        client.abort();
        outcome
    });
    let Some((elapsed, outcome)) = took else {
        return Err("disconnect_from_host was still blocked after 3 s".into());
    };
    assert!(
        elapsed < SLACK,
        "disconnect_from_host took {elapsed:?}: {outcome}"
    );
    assert_eq!(outcome, "Ok(()), UnconnectedState");
    Ok(())
}

#[test]
fn dropping_a_socket_during_a_stalled_handshake_returns_promptly() -> TestResult {
    let pki = Pki::new()?;
    let peer = SilentPeer::start()?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("127.0.0.1", peer.port);
    client.wait_for_connected(WAIT)?;
    let took = time_bounded(client, peer, Duration::from_secs(3), |client| {
        drop(client);
        String::new()
    });
    let Some((elapsed, _)) = took else {
        return Err("drop was still blocked after 3 s".into());
    };
    assert!(elapsed < SLACK, "drop took {elapsed:?}");
    Ok(())
}

#[test]
fn the_server_drops_a_silent_client_after_its_handshake_timeout() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    server.set_handshake_timeout(SHORT);

    let mut silent = TcpStream::connect(server.local_addr())?;
    silent.set_read_timeout(Some(WAIT))?;
    let started = Instant::now();
    let mut failed = match server.next_connection(WAIT)? {
        Ok(_) => return Err("a silent client finished a handshake".into()),
        Err(failed) => failed,
    };
    let elapsed = started.elapsed();
    assert!(
        elapsed + Duration::from_millis(20) >= SHORT && elapsed < SHORT + SLACK,
        "dropped after {elapsed:?}"
    );
    assert_eq!(failed.error(), SocketError::SocketTimeoutError);
    assert_eq!(failed.state(), SocketState::UnconnectedState);
    assert_eq!(
        failed.peer_addr().map(|a| a.port()),
        Some(silent.local_addr()?.port())
    );
    assert!(failed
        .take_events()
        .contains(&SslEvent::ErrorOccurred(SocketError::SocketTimeoutError)));
    // The silent client sees its connection end.
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    Ok(())
}

#[test]
fn a_silent_client_does_not_hold_up_the_next_one() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let silent = TcpStream::connect(server.local_addr())?;

    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", server.local_addr().port());
    let started = Instant::now();
    client.wait_for_encrypted(WAIT)?;
    let accepted = server
        .next_connection(WAIT)?
        .map_err(|failed| failed.error_string())?;
    assert!(started.elapsed() < SLACK, "took {:?}", started.elapsed());
    assert!(accepted.is_encrypted());
    assert_eq!(
        accepted.peer_addr().map(|a| a.port()),
        client.local_addr().map(|a| a.port())
    );
    drop(silent);
    client.abort();
    Ok(())
}

#[test]
fn the_server_drops_a_plaintext_client_as_soon_as_it_speaks() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    server.set_handshake_timeout(WAIT);

    let mut plain = TcpStream::connect(server.local_addr())?;
    plain.set_read_timeout(Some(WAIT))?;
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let started = Instant::now();
    let failed = match server.next_connection(WAIT)? {
        Ok(_) => return Err("a plaintext client finished a handshake".into()),
        Err(failed) => failed,
    };
    // Dropped for what it sent, not by the handshake timeout (10 s): the margin is wide
    // so a loaded machine cannot make this fail.
    assert!(started.elapsed() < WAIT / 2, "took {:?}", started.elapsed());
    assert_eq!(failed.error(), SocketError::SslHandshakeFailedError);
    assert_eq!(failed.state(), SocketState::UnconnectedState);
    // What comes back is at most an alert record, then the end of the stream.
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(reply.is_empty() || reply[0] == 0x15, "{reply:?}");
    Ok(())
}

#[test]
fn a_failed_handshake_is_reported_within_the_wait_even_if_the_peer_stays_open() -> TestResult {
    let pki = Pki::new()?;
    let (release, released) = mpsc::channel::<()>();
    let (port, peer) = hello_reader(move |mut stream| {
        stream.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n")?;
        // Neither read nor close: hold the connection open until released.
        let _ = released.recv_timeout(WAIT);
        Ok(())
    })?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    let started = Instant::now();
    let result = client.wait_for_encrypted(SHORT);
    let elapsed = started.elapsed();
    drop(release);
    peer.join().map_err(|_| "peer thread panicked")??;
    assert_eq!(
        result.err().map(|e| e.socket_error()),
        Some(SocketError::SslHandshakeFailedError)
    );
    assert!(
        elapsed < SHORT + SLACK,
        "wait_for_encrypted({SHORT:?}) returned after {elapsed:?}"
    );
    Ok(())
}

#[test]
fn every_wait_on_a_never_connected_socket_fails_at_once() -> TestResult {
    let mut socket = SslSocket::new();
    let started = Instant::now();
    let waits: [(&str, Result<(), Error>); 5] = [
        ("connected", socket.wait_for_connected(WAIT)),
        ("encrypted", socket.wait_for_encrypted(WAIT)),
        ("ready_read", socket.wait_for_ready_read(WAIT)),
        ("bytes_written", socket.wait_for_bytes_written(WAIT)),
        ("disconnected", socket.wait_for_disconnected(WAIT)),
    ];
    assert!(started.elapsed() < SLACK, "took {:?}", started.elapsed());
    for (what, result) in waits {
        assert_eq!(
            result.err().map(|e| e.socket_error()),
            Some(SocketError::OperationError),
            "wait_for_{what}"
        );
    }
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    assert_eq!(socket.error(), SocketError::UnknownSocketError);
    assert_eq!(socket.error_string(), "Unknown error");
    Ok(())
}

#[test]
fn writes_to_a_peer_that_stops_reading_block_instead_of_piling_up() -> TestResult {
    const LIMIT: usize = 128 * 1024;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let listener = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_io_timeout(Some(Duration::from_secs(1)));
    // Writes start before the handshake ends (they are queued, as in Qt); the server's
    // connection waits in its queue and never reads.
    client.connect_to_host_encrypted("localhost", listener.local_addr().port());
    let chunk = vec![7u8; 256 * 1024];
    let mut written = 0usize;
    let mut most_pending = 0usize;
    let mut blocked = false;
    // At most 64 MiB: the kernel's buffers fill long before.
    while written < 64 << 20 {
        match client.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => {
                blocked = true;
                break;
            }
        }
        most_pending =
            most_pending.max(client.bytes_to_write() + client.encrypted_bytes_to_write());
    }
    assert!(blocked, "64 MiB went into a peer that reads nothing");
    assert!(
        most_pending <= LIMIT,
        "{most_pending} bytes waited in memory ahead of the wire"
    );
    Ok(())
}

#[test]
fn silent_connections_cannot_hold_every_handshake_slot() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let listener = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    // Long enough that waiting them out would fail the check below.
    listener.set_handshake_timeout(Duration::from_secs(30));
    let port = listener.local_addr().port();
    // More silent clients than there are handshake slots (256).
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(TcpStream::connect((Ipv4Addr::LOCALHOST, port))?);
    }
    // Served well before the silent ones' 30 s run out (waiting them out fails here).
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    assert!(listener.next_connection(WAIT)?.is_ok());
    drop(silent);
    Ok(())
}

#[test]
fn dropping_an_encrypted_socket_with_a_silent_peer_returns_promptly_and_delivers() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", server.local_addr().port());
    client.wait_for_encrypted(WAIT)?;
    // The peer is alive and silent: it neither reads nor closes while the client drops.
    let mut peer = server
        .next_connection(WAIT)?
        .map_err(|failed| failed.error_string())?;
    client.write_all(b"last words")?;

    let (done, finished) = mpsc::channel();
    let started = Instant::now();
    let worker = thread::spawn(move || {
        drop(client);
        let _ = done.send(started.elapsed());
    });
    let took = finished.recv_timeout(Duration::from_secs(3));
    let _ = worker.join();
    let elapsed = took.map_err(|_| "drop was still blocked after 3 s")?;
    assert!(elapsed < SLACK, "drop took {elapsed:?}");

    // What was written before the drop arrives, then a clean end (close_notify).
    peer.set_io_timeout(Some(WAIT));
    let mut received = Vec::new();
    peer.read_to_end(&mut received)?;
    assert_eq!(received, b"last words");
    Ok(())
}

#[test]
fn a_close_sees_the_peers_close_notify_that_arrives_while_it_lingers() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", server.local_addr().port());
    client.wait_for_encrypted(WAIT)?;
    let mut peer = server
        .next_connection(WAIT)?
        .map_err(|failed| failed.error_string())?;
    // The peer answers our close_notify with its own, a little later.
    let answer = thread::spawn(move || -> Result<(), String> {
        peer.set_io_timeout(Some(WAIT));
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).map_err(|e| e.to_string())?;
        thread::sleep(Duration::from_millis(50));
        peer.disconnect_from_host().map_err(|e| e.to_string())
    });
    client.disconnect_from_host()?;
    answer.join().map_err(|_| "the peer panicked")??;
    assert_eq!(client.state(), SocketState::UnconnectedState);
    assert!(
        !client.core().is_truncated(),
        "the peer's close_notify was taken for a truncation: {}",
        client.error_string()
    );
    Ok(())
}

/// The port of a `close_notify_then_hold` peer and its thread, which gives what it read.
type HeldPeer = (u16, JoinHandle<ThreadResult<Vec<u8>>>);

/// A raw rustls server that reads until the client's close_notify, answers with its own,
/// and keeps TCP open until `release` says so (or WAIT passes): a peer whose TLS stream
/// has ended cleanly while its TCP end has not.
fn close_notify_then_hold(
    pki: &Pki,
    release: Receiver<()>,
) -> Result<HeldPeer, Box<dyn std::error::Error>> {
    let config = raw_server_config(pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> ThreadResult<Vec<u8>> {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // rustls ends the read at the client's close_notify.
        let mut received = Vec::new();
        tls.read_to_end(&mut received).map_err(|e| e.to_string())?;
        tls.conn.send_close_notify();
        tls.flush().map_err(|e| e.to_string())?;
        let _ = release.recv_timeout(WAIT);
        Ok(received)
    });
    Ok((port, server))
}

/// How a close ended: the peer's close_notify seen, truncated, the state after it.
type Ended = (bool, bool, SocketState);

fn ended(core: &sslsocket::core::SslCore) -> Ended {
    (
        core.is_peer_closed_cleanly(),
        core.is_truncated(),
        core.state(),
    )
}

/// What both drivers' close against `close_notify_then_hold` must show: the peer got the
/// data, the close did not wait for its TCP end, the end was clean.
fn check_early_clean_close(
    release: Sender<()>,
    peer: JoinHandle<ThreadResult<Vec<u8>>>,
    took: Duration,
    (clean, truncated, state): Ended,
) -> TestResult {
    let _ = release.send(());
    assert_eq!(
        peer.join().map_err(|_| "the peer panicked")??,
        b"last words"
    );
    // Waiting for the peer's TCP end would last the whole linger (2 s) here.
    assert!(
        took < SLACK,
        "the close waited {took:?} for a peer that had ended its TLS stream"
    );
    assert_eq!(state, SocketState::UnconnectedState);
    assert!(clean && !truncated, "clean {clean}, truncated {truncated}");
    Ok(())
}

#[test]
fn a_close_ends_at_the_peers_close_notify_while_its_tcp_end_stays_open() -> TestResult {
    let pki = Pki::new()?;
    let (release, held) = mpsc::channel();
    let (port, peer) = close_notify_then_hold(&pki, held)?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    client.write_all(b"last words")?;
    let started = Instant::now();
    client.disconnect_from_host()?;
    let took = started.elapsed();
    check_early_clean_close(release, peer, took, ended(client.core()))
}

#[test]
fn a_tokio_close_ends_at_the_peers_close_notify_while_its_tcp_end_stays_open() -> TestResult {
    let pki = Pki::new()?;
    let (release, held) = mpsc::channel();
    let (port, peer) = close_notify_then_hold(&pki, held)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (took, ended) = runtime.block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut client = sslsocket::tokio::SslSocket::connect_to_host_encrypted(
            "localhost",
            port,
            trusting(&pki)?,
        )
        .await?;
        client.write_all(b"last words").await?;
        let started = Instant::now();
        tokio::time::timeout(WAIT, client.disconnect_from_host()).await??;
        let took = started.elapsed();
        Ok::<_, Box<dyn std::error::Error>>((took, ended(client.core())))
    })?;
    check_early_clean_close(release, peer, took, ended)
}

/// One `Read::read`, its error as ours (a timeout is `Error::Timeout`).
fn read_once(socket: &mut SslSocket) -> Result<(), Error> {
    match socket.read(&mut [0u8; 16]) {
        Ok(n) => Err(Error::Closed(format!("read {n} bytes"))),
        Err(e) => Err(e
            .into_inner()
            .and_then(|inner| inner.downcast::<Error>().ok())
            .map_or_else(|| Error::Closed("not our error".into()), |ours| *ours)),
    }
}

/// A socket waits for input inside its reads (the descriptor in blocking mode, with the
/// time left as its receive timeout); nothing else may block because of that: a shorter
/// I/O timeout after a longer one holds, a write to a peer that stops reading times out,
/// a drop returns at once, and a stream taken back keeps no receive timeout of ours.
#[test]
fn a_socket_that_waited_inside_its_reads_keeps_each_timeout_and_blocks_nothing_else() -> TestResult
{
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let connect = || -> Result<(SslSocket, SslSocket), Box<dyn std::error::Error>> {
        let mut client = SslSocket::with_configuration(trusting(&pki)?);
        client.connect_to_host_encrypted("localhost", server.local_addr().port());
        client.wait_for_encrypted(WAIT)?;
        let peer = server
            .next_connection(WAIT)?
            .map_err(|failed| failed.error_string())?;
        Ok((client, peer))
    };
    let (mut client, mut peer) = connect()?;
    // A read that waits, with a long timeout, for what the peer sends a little later.
    let sender = thread::spawn(move || -> ThreadResult<SslSocket> {
        thread::sleep(Duration::from_millis(50));
        peer.write_all(b"ping").map_err(|e| e.to_string())?;
        peer.flush().map_err(|e| e.to_string())?;
        Ok(peer)
    });
    client.set_io_timeout(Some(WAIT));
    let mut ping = [0u8; 4];
    client.read_exact(&mut ping)?;
    assert_eq!(&ping, b"ping");
    let _peer = sender.join().map_err(|_| "the peer panicked")??;

    // The peer says nothing more: a read with a shorter timeout gives up after it, not
    // after the long one the socket waited with before.
    client.set_io_timeout(Some(SHORT));
    assert_times_out("a read after a longer wait", || read_once(&mut client));
    // The peer reads nothing: writes stop at the timeout instead of blocking, and a drop
    // returns at once, full window or not. In a thread: a write or drop that blocked
    // would otherwise hang the test.
    let (done, finished) = mpsc::channel();
    let worker = thread::spawn(move || {
        let written = fill_until_blocked(&mut client);
        let started = Instant::now();
        drop(client);
        let _ = done.send((written, started.elapsed()));
    });
    let outcome = finished.recv_timeout(Duration::from_secs(30));
    let (written, elapsed) = outcome.map_err(|_| "a write or the drop blocked for 30 s")?;
    let _ = worker.join();
    assert!(
        written < 32 * 1024 * 1024,
        "32 MiB went into a peer that reads nothing"
    );
    assert!(elapsed < SLACK, "drop took {elapsed:?}");

    // A stream taken back after waits has no receive timeout of ours, and blocks as a
    // std stream does (a read waits for the peer's data).
    let (mut client, mut peer) = connect()?;
    client.set_io_timeout(Some(SHORT));
    assert_times_out("a read before taking the stream back", || {
        read_once(&mut client)
    });
    let mut stream = client.into_inner().ok_or("no stream to take back")?;
    assert_eq!(stream.read_timeout()?, None);
    peer.set_io_timeout(Some(WAIT));
    peer.write_all(b"plain?")?;
    peer.flush()?;
    stream.set_read_timeout(Some(WAIT))?;
    let mut record = [0u8; 5];
    // The peer's record (TLS, as the stream was given up mid-connection) arrives: a
    // blocking read that waited, not a `WouldBlock`.
    stream.read_exact(&mut record)?;
    assert_eq!(
        record[0], 0x17,
        "not an application-data record: {record:?}"
    );
    Ok(())
}
