//! Round 35 review (P): closing, dropping and aborting sockets and servers after this
//! round's changes (the tokio socket aborts in Drop while its connection is open, the
//! blocking socket's Drop hands the kernel our close_notify without waiting, the OpenSSL
//! backend keeps an accepted connection's session when freed, an accepted connection
//! ending with a fatal alert forgets its sessions). Drops at every phase on both drivers,
//! split halves, sockets moved between runtimes, runtimes shutting down, `into_inner`,
//! servers dropped with handshakes in flight. Both backends (`SSLSOCKET_BACKEND=openssl`);
//! real peers on 127.0.0.1 (ours, raw rustls), certificates made at test time, every wait
//! bounded.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::blocking::SslServer;
use sslsocket::prelude::*;
use sslsocket::{SocketState, SslConfiguration, SslProtocol};
use support::raw::{joined, ThreadResult};
use support::{active_backend, serving, trusting, Pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

type BoxError = Box<dyn std::error::Error>;
type TestResult = Result<(), BoxError>;

const WAIT: Duration = Duration::from_secs(10);

/// A helper peer's port and the thread serving it.
type Helper<T> = (u16, thread::JoinHandle<ThreadResult<T>>);

fn boxed(e: impl std::fmt::Display) -> BoxError {
    e.to_string().into()
}

fn runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// How our blocking server ends each connection after sending `hello\n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerEnd {
    /// Reads until the client's end (answering its close_notify).
    ReadToEnd,
    /// Closes first (close_notify, then TCP), after reading nothing.
    CloseFirst,
    /// Neither reads nor closes for `STALL`, then reads to the end.
    Stall,
}

const STALL: Duration = Duration::from_secs(3);

/// What our server saw of one connection: resumed, and how its reading ended (`None`
/// when it did not read).
#[derive(Clone, Debug)]
struct Seen {
    resumed: bool,
    /// `Ok(bytes)` at a clean end; `Err(kind)` otherwise.
    end: Option<Result<Vec<u8>, std::io::ErrorKind>>,
}

/// Our blocking server, one connection per entry of `ends`.
fn our_server(
    configuration: SslConfiguration,
    ends: Vec<ServerEnd>,
) -> Result<Helper<Vec<Seen>>, BoxError> {
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    let worker = thread::spawn(move || -> ThreadResult<Vec<Seen>> {
        let mut seen = Vec::new();
        for end in ends {
            let mut socket = match server.next_connection(WAIT).map_err(|e| e.to_string())? {
                Ok(socket) => socket,
                Err(failed) => return Err(format!("server handshake: {}", failed.error_string())),
            };
            socket.set_io_timeout(Some(WAIT));
            let resumed = socket.is_session_resumed();
            socket.write_all(b"hello\n").map_err(|e| e.to_string())?;
            socket.flush().map_err(|e| e.to_string())?;
            let read_end = |socket: &mut sslsocket::blocking::SslSocket| {
                let mut got = Vec::new();
                match socket.read_to_end(&mut got) {
                    Ok(_) => Ok(got),
                    Err(e) => Err(e.kind()),
                }
            };
            let end = match end {
                ServerEnd::ReadToEnd => Some(read_end(&mut socket)),
                ServerEnd::CloseFirst => {
                    let _ = socket.disconnect_within(WAIT);
                    None
                }
                ServerEnd::Stall => {
                    thread::sleep(STALL);
                    Some(read_end(&mut socket))
                }
            };
            seen.push(Seen { resumed, end });
        }
        Ok(seen)
    });
    Ok((port, worker))
}

/// A server configuration with a self-signed `localhost` leaf (clients ignore its errors)
/// over `protocol`.
fn self_signed_server(pki: &Pki, protocol: SslProtocol) -> Result<SslConfiguration, BoxError> {
    let leaf = pki.self_signed_leaf(&["localhost"], false)?;
    let mut configuration = serving(&leaf)?;
    configuration.set_protocol(protocol);
    Ok(configuration)
}

/// A tokio client to `port` ignoring every error, encrypted, having read `hello`.
async fn lenient_tokio(
    port: u16,
    configuration: &SslConfiguration,
) -> Result<sslsocket::tokio::SslSocket, BoxError> {
    let mut socket = tokio::time::timeout(
        WAIT,
        sslsocket::tokio::SslSocket::connect_to_host("localhost", port, configuration.clone()),
    )
    .await??;
    socket.ignore_ssl_errors();
    socket.begin_client_encryption()?;
    tokio::time::timeout(WAIT, socket.wait_for_encrypted()).await??;
    let line = tokio::time::timeout(WAIT, socket.next_line(64)).await??;
    assert_eq!(line, b"hello\n".to_vec());
    assert!(
        !socket.ssl_handshake_errors().is_empty(),
        "the self-signed server gave no error"
    );
    Ok(socket)
}

/// A blocking client to `port` ignoring every error, encrypted, having read `hello`.
fn lenient_blocking(
    port: u16,
    configuration: &SslConfiguration,
) -> Result<sslsocket::blocking::SslSocket, BoxError> {
    let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration.clone());
    socket.ignore_ssl_errors();
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    let line = socket.next_line(64, WAIT)?;
    assert_eq!(line, b"hello\n".to_vec());
    assert!(!socket.ssl_handshake_errors().is_empty());
    Ok(socket)
}

/// How a tokio client ends its first (lenient) connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokioEnd {
    /// `disconnect_from_host().await`: the graceful close that keeps sessions.
    Disconnect,
    /// `AsyncWriteExt::shutdown().await` (the documented clean end), then drop.
    ShutdownThenDrop,
    /// The server closes first; the client reads to the clean end, then drops.
    ReadToEndThenDrop,
    /// `disconnect_from_host()` given up by the caller's timeout while it lingers for a
    /// peer that does not answer (close_notify sent), then drop.
    LingerCutThenDrop,
}

/// The server's behaviour that goes with a client's end.
fn server_end_for(end: TokioEnd) -> ServerEnd {
    match end {
        TokioEnd::Disconnect | TokioEnd::ShutdownThenDrop => ServerEnd::ReadToEnd,
        TokioEnd::ReadToEndThenDrop => ServerEnd::CloseFirst,
        TokioEnd::LingerCutThenDrop => ServerEnd::Stall,
    }
}

/// Two lenient tokio connections to one server: the first ended with `end`; whether the
/// second resumed (by our server's account), and what the server read of the first.
fn tokio_second_resumes(protocol: SslProtocol, end: TokioEnd) -> Result<(bool, Seen), BoxError> {
    let pki = Pki::new()?;
    let (port, server) = our_server(
        self_signed_server(&pki, protocol)?,
        vec![server_end_for(end), ServerEnd::ReadToEnd],
    )?;
    let configuration = trusting(&pki)?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut first = lenient_tokio(port, &configuration).await?;
        match end {
            TokioEnd::Disconnect => {
                tokio::time::timeout(WAIT, first.disconnect_from_host()).await??;
            }
            TokioEnd::ShutdownThenDrop => {
                tokio::time::timeout(WAIT, first.shutdown()).await??;
            }
            TokioEnd::ReadToEndThenDrop => {
                let mut rest = Vec::new();
                tokio::time::timeout(WAIT, first.read_to_end(&mut rest)).await??;
                assert!(rest.is_empty());
            }
            TokioEnd::LingerCutThenDrop => {
                let cut =
                    tokio::time::timeout(Duration::from_millis(500), first.disconnect_from_host())
                        .await;
                assert!(cut.is_err(), "the close did not linger: {cut:?}");
            }
        }
        drop(first);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut second = lenient_tokio(port, &configuration).await?;
        let resumed = second.is_session_resumed();
        tokio::time::timeout(WAIT, second.disconnect_from_host()).await??;
        Ok::<_, BoxError>(resumed)
    })?;
    let seen = joined(server)?.map_err(boxed)?;
    let first = seen.first().cloned().ok_or("no first connection")?;
    let second = seen
        .get(1)
        .map(|s| s.resumed)
        .ok_or("no second connection")?;
    Ok((second, first))
}

// Held: control: a lenient tokio connection closed with disconnect_from_host() keeps its
// session (the next lenient connection resumes), TLS 1.2 and 1.3.
#[test]
fn tokio_disconnect_keeps_the_session_of_ignored_errors() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (resumed, first) = tokio_second_resumes(protocol, TokioEnd::Disconnect)?;
        assert!(
            resumed,
            "{} {protocol:?}: not resumed after a graceful disconnect",
            active_backend()
        );
        assert!(matches!(first.end, Some(Ok(_))), "{first:?}");
    }
    Ok(())
}

// Was a defect (round 35): tokio driver, both backends: AsyncWriteExt::shutdown() (documented on the tokio socket as a clean end, "call disconnect_from_host or AsyncWriteExt::shutdown to end a connection cleanly") sends close_notify, the peer sees a clean end, but a socket dropped afterwards is still in ClosingState, so Drop runs SslCore::abort, which gives up the sessions of a connection whose errors were ignored: the next lenient connection runs a full handshake. disconnect_from_host() and the blocking socket's drop keep them (README: "the blocking socket's drop still hands the kernel our close_notify, a close that keeps them"). Cause: tokio/socket.rs Drop (tokio/socket.rs:707: `state != UnconnectedState`; tokio/stream.rs:302 poll_shutdown leaves ClosingState) + core/lifecycle.rs:251 abort (`!handshake_errors.is_empty() && !ended_accepted`). Fix: in Drop (or abort) treat a connection whose close_notify was sent (close_notify_queued / Phase::Closing, not failed) as closed: keep its sessions.
#[test]
fn tokio_shutdown_then_drop_keeps_the_session_as_disconnect_does() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (resumed, first) = tokio_second_resumes(protocol, TokioEnd::ShutdownThenDrop)?;
        assert!(
            matches!(first.end, Some(Ok(_))),
            "the server did not see a clean end: {first:?}"
        );
        assert!(
            resumed,
            "{} {protocol:?}: a shutdown() (close_notify sent, clean end at the peer) then a \
             drop gave the session up; disconnect_from_host() keeps it",
            active_backend()
        );
    }
    Ok(())
}

// Held: the peer closed first (close_notify, TCP end); the tokio client read to the clean
// end and was dropped: the session stays (nothing was aborted).
#[test]
fn tokio_read_to_the_peers_clean_end_then_drop_keeps_the_session() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (resumed, _) = tokio_second_resumes(protocol, TokioEnd::ReadToEndThenDrop)?;
        assert!(
            resumed,
            "{} {protocol:?}: the session of a connection the peer closed cleanly was given up \
             by the drop",
            active_backend()
        );
    }
    Ok(())
}

// Was a defect (round 35): tokio driver, both backends: disconnect_from_host() whose linger (waiting for the peer's end after our close_notify went out) is cut by the caller's timeout, then a drop, gives up the sessions of a connection with ignored errors, though the close_notify was sent and the peer later reads a clean end; the blocking driver's equivalent (disconnect_within with a short deadline, or a drop) keeps them. Cause: the future is dropped before `self.stream = None; handle_closed()` (tokio/socket.rs disconnect_from_host), so the socket is still ClosingState and Drop calls SslCore::abort, which purges (core/lifecycle.rs abort). Fix: as for shutdown(): a connection whose close_notify went out is closed for the sessions' sake.
#[test]
fn tokio_disconnect_cut_while_lingering_then_drop_keeps_the_session() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (resumed, first) = tokio_second_resumes(protocol, TokioEnd::LingerCutThenDrop)?;
        assert!(
            matches!(first.end, Some(Ok(_))),
            "the server did not see a clean end: {first:?}"
        );
        assert!(
            resumed,
            "{} {protocol:?}: close_notify sent, the linger cut by a timeout, then a drop: the \
             session was given up",
            active_backend()
        );
    }
    Ok(())
}

/// Two lenient blocking connections to one server: the first ended by `end`; whether the
/// second resumed, and what the server read of the first.
fn blocking_second_resumes(
    protocol: SslProtocol,
    server_end: ServerEnd,
    end: impl FnOnce(sslsocket::blocking::SslSocket) -> TestResult,
) -> Result<(bool, Seen), BoxError> {
    let pki = Pki::new()?;
    let (port, server) = our_server(
        self_signed_server(&pki, protocol)?,
        vec![server_end, ServerEnd::ReadToEnd],
    )?;
    let configuration = trusting(&pki)?;
    let first = lenient_blocking(port, &configuration)?;
    end(first)?;
    thread::sleep(Duration::from_millis(200));
    let mut second = lenient_blocking(port, &configuration)?;
    let resumed = second.is_session_resumed();
    second.disconnect_within(WAIT)?;
    let seen = joined(server)?.map_err(boxed)?;
    let first = seen.first().cloned().ok_or("no first connection")?;
    Ok((resumed, first))
}

// Held: the blocking driver's drop of a lenient encrypted connection hands the kernel our
// close_notify (the peer reads a clean end) and keeps the session (README), and so does a
// disconnect_within() cut short while it lingers for a peer that does not answer.
#[test]
fn blocking_drop_and_cut_disconnect_keep_the_session() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (resumed, first) = blocking_second_resumes(protocol, ServerEnd::ReadToEnd, |s| {
            let started = Instant::now();
            drop(s);
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "the drop waited"
            );
            Ok(())
        })?;
        assert!(matches!(first.end, Some(Ok(_))), "{protocol:?}: {first:?}");
        assert!(
            resumed,
            "{} {protocol:?}: dropped: not resumed",
            active_backend()
        );
        let (resumed, first) = blocking_second_resumes(protocol, ServerEnd::Stall, |mut s| {
            let cut = s.disconnect_within(Duration::from_millis(300));
            assert!(s.state() == SocketState::UnconnectedState, "{cut:?}");
            Ok(())
        })?;
        assert!(matches!(first.end, Some(Ok(_))), "{protocol:?}: {first:?}");
        assert!(
            resumed,
            "{} {protocol:?}: cut disconnect: not resumed",
            active_backend()
        );
    }
    Ok(())
}

/// A raw rustls client handshake over `tcp` trusting `pki`'s root; then reads to the end.
/// `Ok(Ok(bytes))`: encrypted, then a clean end after `bytes`; `Ok(Err(e))`: encrypted,
/// then `e`; `Err(e)`: the handshake failed.
fn raw_client_over(
    pki: &Pki,
    mut tcp: TcpStream,
) -> Result<Result<Result<Vec<u8>, String>, String>, BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(
        pki.root_der().to_vec(),
    ))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)?;
    tcp.set_read_timeout(Some(WAIT))?;
    tcp.set_write_timeout(Some(WAIT))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            return Ok(Err(e.to_string()));
        }
    }
    let mut got = Vec::new();
    let end = rustls::Stream::new(&mut conn, &mut tcp).read_to_end(&mut got);
    Ok(Ok(end.map(|_| got).map_err(|e| e.to_string())))
}

// Was a defect (round 35): blocking SslServer, both backends: a server dropped while a client's handshake runs does not end that handshake: its thread finishes it, the client gets a verified connection, and the socket nobody will ever receive is then dropped with a clean close_notify, so the client sees a normal, successful session that the server "closed" (the handshake thread, its hooks and its descriptor live on up to the handshake timeout after the drop). Qt deletes a QSslServer's pending sockets with it (abort), and our tokio server does the same when its Incoming is dropped (the client sees its handshake cut). Cause: blocking/server.rs Drop only sets `stop` and wakes the accept loop; the handshake threads never look at `stop` (the `handshake` fn / `send_bounded` drop the finished socket gracefully when the receiver is gone). Fix: register running handshakes (the `Started` registry has a handle on each stream) and shut them down in Drop (as evict_oldest does), and abort (not drop gracefully) a socket the receiver is gone for.
// Was a defect (round 36; CI flake of round 35): the accept loop ended the handshakes only once it woke after the drop, and a client that spoke meanwhile finished its handshake (seen on OpenSSL under load). The drop now ends them itself, and none starts after it.
#[test]
fn a_blocking_server_dropped_mid_handshake_does_not_finish_it() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    // The accept loop takes the connection and starts its handshake thread.
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the server's drop waited"
    );
    let outcome = raw_client_over(&pki, tcp)?;
    assert!(
        outcome.is_err(),
        "{}: the dropped server still completed the handshake and closed the connection as \
         a normal session: {outcome:?}",
        active_backend()
    );
    Ok(())
}

// Held: the tokio server's counterpart: Incoming dropped while a client's handshake runs
// (its task aborted) cuts the handshake: the client's handshake fails.
#[test]
fn a_tokio_incoming_dropped_mid_handshake_cuts_it() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let rt = runtime()?;
    let (port, tcp) = rt.block_on(async {
        let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", serving(&leaf)?).await?;
        let port = server.local_addr().port();
        let mut incoming = server.incoming();
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        // Let the stream accept it and start its handshake task.
        let _ = tokio::time::timeout(Duration::from_millis(300), incoming.next()).await;
        assert_eq!(incoming.handshakes_in_progress(), 1);
        drop(incoming);
        Ok::<_, BoxError>((port, tcp))
    })?;
    drop(rt);
    let _ = port;
    let outcome = raw_client_over(&pki, tcp)?;
    assert!(outcome.is_err(), "{outcome:?}");
    Ok(())
}

// Held: a tokio socket held by a task of a runtime that is shut down (the task dropped
// with the runtime) closes without blocking or panicking; the peer sees the connection
// end without close_notify (a truncation), never a clean end; both after the handshake
// and during it.
#[test]
fn a_tokio_socket_in_a_runtime_shutting_down_closes_as_an_abort() -> TestResult {
    let pki = Pki::new()?;
    for during_handshake in [false, true] {
        let leaf = pki.leaf("localhost", &["localhost"])?;
        let (port, server) = our_server(serving(&leaf)?, vec![ServerEnd::ReadToEnd])?;
        let configuration = trusting(&pki)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        rt.spawn(async move {
            let socket = sslsocket::tokio::SslSocket::connect_to_host_encrypted(
                "localhost",
                port,
                configuration,
            )
            .await;
            if let Ok(mut socket) = socket {
                // The server's line first: it is not written to a connection already gone.
                let _ = socket.next_line(64).await;
                let _ = socket.write_all(b"data").await;
                let _ = socket.flush().await;
                let _ = ready_tx.send(());
                // Waits for ever: only the runtime's end stops it.
                let mut sink = Vec::new();
                let _ = socket.read_to_end(&mut sink).await;
            }
        });
        if !during_handshake {
            ready_rx.recv_timeout(WAIT)?;
        }
        let started = Instant::now();
        rt.shutdown_timeout(Duration::from_secs(2));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the shutdown waited"
        );
        let seen = joined(server)?;
        if during_handshake {
            // The handshake may have finished before the runtime went, or not.
            if let Ok(seen) = seen {
                assert!(
                    !matches!(seen.first().and_then(|s| s.end.as_ref()), Some(Ok(_))),
                    "{seen:?}"
                );
            }
        } else {
            let seen = seen.map_err(boxed)?;
            let end = seen.first().and_then(|s| s.end.clone());
            assert_eq!(
                end,
                Some(Err(std::io::ErrorKind::UnexpectedEof)),
                "{}: the peer did not see a truncation",
                active_backend()
            );
        }
    }
    Ok(())
}

/// Our blocking server for one connection that must fail its handshake: `Ok(error)` with
/// the failure's text, `Err` when it became encrypted (or nothing came).
fn failing_server(configuration: SslConfiguration) -> Result<Helper<String>, BoxError> {
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    let worker = thread::spawn(move || -> ThreadResult<String> {
        match server.next_connection(WAIT).map_err(|e| e.to_string())? {
            Ok(mut socket) => {
                socket.set_io_timeout(Some(Duration::from_secs(2)));
                let mut got = Vec::new();
                let end = socket.read_to_end(&mut got);
                Err(format!(
                    "the server's handshake succeeded (then read {got:?}, {end:?})"
                ))
            }
            Err(failed) => Ok(failed.error_string()),
        }
    });
    Ok((port, worker))
}

// Was a defect (round 35): blocking driver, both backends: a socket dropped during its handshake, with bytes written and queued for after it, goes on reading the peer's flight inside Drop (the drain that should only spare the peer a reset), so the handshake the application gave up on is continued behind its back: the server's certificate is verified and the application's `SslHooks::ssl_errors` is called from inside `drop()` (a hook that takes a lock the dropping thread holds deadlocks the drop; one that prompts a user asks about a socket that no longer exists). The README: "a handshake given up on is never finished behind the application's back"; Qt aborts on destruction (no sslErrors). Cause: blocking/socket.rs Drop -> SslCore::disconnect_from_host, which for Phase::Handshaking with bytes to write only sets close_when_encrypted (core/lifecycle.rs disconnect_from_host), then close_stream -> drain_now -> read_while_closing feeds the core while it `wants_read()` (core/transport.rs:239). Fix: in Drop, a handshake still running is aborted (SslCore::abort), or read_while_closing sinks the bytes when the core is being dropped; nothing reaches the engine once the socket is dropped.
#[test]
fn a_blocking_socket_dropped_mid_handshake_asks_no_hook() -> TestResult {
    let pki = Pki::new()?;
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let (port, server) = failing_server(self_signed_server(&pki, protocol)?)?;
        let hooks = support::trust::RecordingHooks::new(sslsocket::Verdict::Ignore, None);
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(trusting(&pki)?);
        socket.set_hooks(hooks.clone());
        socket.connect_to_host_encrypted("localhost", port);
        socket.wait_for_connected(WAIT)?;
        // Queued for after the handshake.
        socket.write_all(b"early")?;
        // The server's flight arrives meanwhile (nothing reads it).
        thread::sleep(Duration::from_millis(300));
        assert!(hooks.calls().ssl_errors.is_empty());
        let started = Instant::now();
        drop(socket);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the drop waited"
        );
        let server_saw = joined(server)?;
        let calls = hooks.calls().ssl_errors.len();
        assert_eq!(
            calls,
            0,
            "{} {protocol:?}: the dropped socket's handshake went on inside drop(): \
             ssl_errors was asked {calls} time(s); the server saw {server_saw:?}",
            active_backend()
        );
        assert!(server_saw.is_ok(), "{protocol:?}: {server_saw:?}");
    }
    Ok(())
}

// Held: the tokio socket dropped in the same place (handshake running, bytes queued, the
// server's flight waiting unread) asks no hook and does not finish the handshake.
#[test]
fn a_tokio_socket_dropped_mid_handshake_asks_no_hook() -> TestResult {
    let pki = Pki::new()?;
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let (port, server) = failing_server(self_signed_server(&pki, protocol)?)?;
        let hooks = support::trust::RecordingHooks::new(sslsocket::Verdict::Ignore, None);
        let rt = runtime()?;
        let configuration = trusting(&pki)?;
        let hooks_in = hooks.clone();
        rt.block_on(async move {
            let mut socket =
                sslsocket::tokio::SslSocket::connect_to_host("localhost", port, configuration)
                    .await?;
            socket.set_hooks(hooks_in);
            socket.begin_client_encryption()?;
            // Sends the ClientHello and queues the data; does not wait for the handshake.
            let _ =
                tokio::time::timeout(Duration::from_millis(1), socket.write_all(b"early")).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(socket);
            Ok::<_, BoxError>(())
        })?;
        let server_saw = joined(server)?;
        assert!(hooks.calls().ssl_errors.is_empty(), "{protocol:?}");
        assert!(server_saw.is_ok(), "{protocol:?}: {server_saw:?}");
    }
    Ok(())
}

// Held: a paused handshake (PauseOnSslErrors) dropped on either driver: the drop returns
// at once, the server's handshake fails (nothing finished behind the application's back),
// and a later lenient socket of the configuration does not resume anything of it.
#[test]
fn a_paused_socket_dropped_on_either_driver_finishes_nothing() -> TestResult {
    let pki = Pki::new()?;
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        for tokio_driver in [false, true] {
            for written in [false, true] {
                let (port, server) = failing_server(self_signed_server(&pki, protocol)?)?;
                let configuration = trusting(&pki)?;
                let started;
                if tokio_driver {
                    let rt = runtime()?;
                    let socket = rt.block_on(async {
                        let mut socket = sslsocket::tokio::SslSocket::connect_to_host(
                            "localhost",
                            port,
                            configuration.clone(),
                        )
                        .await?;
                        socket.set_pause_mode(sslsocket::PauseMode::PauseOnSslErrors);
                        socket.begin_client_encryption()?;
                        let handshake = tokio::time::timeout(WAIT, socket.handshake()).await??;
                        assert!(matches!(handshake, Handshake::NeedsDecision(_)));
                        if written {
                            let _ = tokio::time::timeout(
                                Duration::from_millis(50),
                                socket.write_all(b"held"),
                            )
                            .await;
                        }
                        Ok::<_, BoxError>(socket)
                    })?;
                    started = Instant::now();
                    drop(socket);
                } else {
                    let mut socket =
                        sslsocket::blocking::SslSocket::with_configuration(configuration.clone());
                    socket.set_pause_mode(sslsocket::PauseMode::PauseOnSslErrors);
                    socket.connect_to_host_encrypted("localhost", port);
                    let handshake = socket.handshake(WAIT)?;
                    assert!(matches!(handshake, Handshake::NeedsDecision(_)));
                    if written {
                        socket.write_all(b"held")?;
                    }
                    started = Instant::now();
                    drop(socket);
                }
                assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "the drop waited"
                );
                let server_saw = joined(server)?;
                assert!(
                    server_saw.is_ok(),
                    "{} {protocol:?} tokio={tokio_driver} written={written}: {server_saw:?}",
                    active_backend()
                );
            }
        }
    }
    Ok(())
}

// Held: the blocking into_inner() after the handshake gives the TCP stream back in
// blocking mode with the receive timeout it had before the socket's first wait, usable
// for plain I/O (the peer reads our raw bytes after the TLS records).
#[test]
fn blocking_into_inner_gives_a_usable_blocking_stream() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let (given_back, taken) = std::sync::mpsc::channel::<()>();
    let worker = thread::spawn(move || -> ThreadResult<Vec<u8>> {
        let socket = server
            .next_connection(WAIT)
            .map_err(|e| e.to_string())?
            .map_err(|f| f.error_string())?;
        let mut tcp = socket.into_inner().ok_or("no transport")?;
        given_back.send(()).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut raw = [0u8; 9];
        tcp.read_exact(&mut raw).map_err(|e| e.to_string())?;
        Ok(raw.to_vec())
    });
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(7)))?;
    let mut socket = sslsocket::blocking::SslSocket::from_tcp_stream(tcp, trusting(&pki)?)?;
    socket.set_peer_verify_name("localhost");
    socket.start_client_encryption()?;
    socket.wait_for_encrypted(WAIT)?;
    let mut tcp = socket.into_inner().ok_or("no transport")?;
    assert_eq!(tcp.read_timeout()?, Some(Duration::from_secs(7)));
    // Raw bytes only once the server's TLS is given up too (or its core would read them).
    taken.recv_timeout(WAIT)?;
    tcp.write_all(b"plaintext")?;
    let raw = joined(worker)?.map_err(boxed)?;
    assert_eq!(raw, b"plaintext".to_vec());
    Ok(())
}

// Held: a tokio socket made on one runtime, moved out and used on another after the first
// was dropped: its I/O fails with an error (tokio's driver is gone), nothing panics or
// hangs, and dropping it there returns at once; the peer sees no clean end.
#[test]
fn a_tokio_socket_outliving_its_runtime_fails_cleanly() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let (port, server) = our_server(serving(&leaf)?, vec![ServerEnd::ReadToEnd])?;
    let configuration = trusting(&pki)?;
    let first = runtime()?;
    let mut socket = first.block_on(async {
        let mut socket = tokio::time::timeout(
            WAIT,
            sslsocket::tokio::SslSocket::connect_to_host_encrypted(
                "localhost",
                port,
                configuration,
            ),
        )
        .await?
        .map_err(|f| f.error().to_string())?;
        let line = tokio::time::timeout(WAIT, socket.next_line(64)).await??;
        assert_eq!(line, b"hello\n".to_vec());
        Ok::<_, BoxError>(socket)
    })?;
    drop(first);
    let second = runtime()?;
    let outcome = second.block_on(async {
        tokio::time::timeout(Duration::from_secs(3), async {
            socket.write_all(b"after").await?;
            socket.flush().await?;
            let mut buf = [0u8; 16];
            socket.read(&mut buf).await
        })
        .await
    });
    assert!(
        matches!(outcome, Ok(Err(_))),
        "expected an I/O error, got {outcome:?}"
    );
    let started = Instant::now();
    second.block_on(async move { drop(socket) });
    assert!(started.elapsed() < Duration::from_secs(1));
    let seen = joined(server)?.map_err(boxed)?;
    assert!(
        !matches!(seen.first().and_then(|s| s.end.as_ref()), Some(Ok(_))),
        "{seen:?}"
    );
    Ok(())
}

/// The events of a socket whose handshake failed against a self-signed server, on one
/// driver, after the failed socket was handed back.
fn failed_handshake_events(tokio_driver: bool) -> Result<Vec<sslsocket::SslEvent>, BoxError> {
    let pki = Pki::new()?;
    let (port, server) = failing_server(self_signed_server(&pki, SslProtocol::TlsV1_3)?)?;
    let configuration = trusting(&pki)?;
    let events = if tokio_driver {
        let rt = runtime()?;
        rt.block_on(async {
            let connected = tokio::time::timeout(
                WAIT,
                sslsocket::tokio::SslSocket::connect_to_host_encrypted(
                    "localhost",
                    port,
                    configuration,
                ),
            )
            .await?;
            let Err(failed) = connected else {
                return Err::<_, BoxError>("encrypted with a self-signed server".into());
            };
            let mut socket = failed.into_socket().ok_or("no socket handed back")?;
            assert_eq!(socket.state(), SocketState::UnconnectedState);
            let events = socket.take_events();
            drop(socket);
            Ok(events)
        })?
    } else {
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
        socket.connect_to_host_encrypted("localhost", port);
        assert!(socket.wait_for_encrypted(WAIT).is_err());
        assert_eq!(socket.state(), SocketState::UnconnectedState);
        socket.take_events()
    };
    let server_saw = joined(server)?;
    assert!(server_saw.is_ok(), "{server_saw:?}");
    Ok(events)
}

// Held: a failed handshake's socket, handed back (tokio FailedHandshake) or kept
// (blocking), reports one ErrorOccurred, then the end (StateChanged(Unconnected) once,
// Disconnected once), the same on both drivers; dropping it afterwards is quiet.
#[test]
fn a_failed_handshakes_socket_reports_its_end_once_on_both_drivers() -> TestResult {
    use sslsocket::SslEvent;
    let mut seen = Vec::new();
    for tokio_driver in [false, true] {
        let events = failed_handshake_events(tokio_driver)?;
        let count = |f: &dyn Fn(&SslEvent) -> bool| events.iter().filter(|e| f(e)).count();
        let errors = count(&|e| matches!(e, SslEvent::ErrorOccurred(_)));
        let unconnected =
            count(&|e| matches!(e, SslEvent::StateChanged(SocketState::UnconnectedState)));
        let disconnected = count(&|e| matches!(e, SslEvent::Disconnected));
        assert_eq!(
            (errors, unconnected, disconnected),
            (1, 1, 1),
            "{} tokio={tokio_driver}: {events:?}",
            active_backend()
        );
        let tail: Vec<&SslEvent> = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    SslEvent::ErrorOccurred(_)
                        | SslEvent::StateChanged(SocketState::UnconnectedState)
                        | SslEvent::Disconnected
                )
            })
            .collect();
        seen.push(format!("{tail:?}"));
    }
    assert_eq!(seen.first(), seen.get(1), "the drivers differ");
    Ok(())
}

// Held: tokio::io::split halves dropped in either order (the reader waiting in a task,
// the writer having written): nothing panics or waits, the socket goes when the last half
// does, and the peer gets the data then a truncation (an abort: no close_notify).
#[test]
fn split_halves_dropped_in_either_order_end_as_an_abort() -> TestResult {
    let pki = Pki::new()?;
    for reader_first in [true, false] {
        let leaf = pki.leaf("localhost", &["localhost"])?;
        let (port, server) = our_server(serving(&leaf)?, vec![ServerEnd::ReadToEnd])?;
        let configuration = trusting(&pki)?;
        let rt = runtime()?;
        rt.block_on(async {
            let mut socket = tokio::time::timeout(
                WAIT,
                sslsocket::tokio::SslSocket::connect_to_host_encrypted(
                    "localhost",
                    port,
                    configuration,
                ),
            )
            .await?
            .map_err(|f| f.error().to_string())?;
            let line = tokio::time::timeout(WAIT, socket.next_line(64)).await??;
            assert_eq!(line, b"hello\n".to_vec());
            let (mut reader, mut writer) = tokio::io::split(socket);
            writer.write_all(b"from the writer").await?;
            writer.flush().await?;
            let reading = tokio::spawn(async move {
                let mut buf = [0u8; 16];
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), reader.read(&mut buf)).await;
                reader
            });
            let reader = reading.await?;
            if reader_first {
                drop(reader);
                drop(writer);
            } else {
                drop(writer);
                drop(reader);
            }
            Ok::<_, BoxError>(())
        })?;
        let seen = joined(server)?.map_err(boxed)?;
        let end = seen.first().and_then(|s| s.end.clone());
        assert_eq!(
            end,
            Some(Err(std::io::ErrorKind::UnexpectedEof)),
            "{} reader_first={reader_first}",
            active_backend()
        );
    }
    Ok(())
}

// Held: a blocking SslServer dropped while a connection it handed out is alive: that
// connection goes on both ways and closes cleanly.
#[test]
fn connections_outlive_their_dropped_blocking_server() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let configuration = trusting(&pki)?;
    let client = thread::spawn(move || -> ThreadResult<Vec<u8>> {
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
        socket.connect_to_host_encrypted("localhost", port);
        socket.wait_for_encrypted(WAIT).map_err(|e| e.to_string())?;
        socket.write_all(b"ping\n").map_err(|e| e.to_string())?;
        let line = socket.next_line(64, WAIT).map_err(|e| e.to_string())?;
        socket.disconnect_within(WAIT).map_err(|e| e.to_string())?;
        Ok(line)
    });
    let mut accepted = server
        .next_connection(WAIT)?
        .map_err(|f| f.error_string())?;
    drop(server);
    accepted.set_io_timeout(Some(WAIT));
    let line = accepted.next_line(64, WAIT)?;
    assert_eq!(line, b"ping\n".to_vec());
    accepted.write_all(b"pong\n")?;
    accepted.flush()?;
    let mut rest = Vec::new();
    accepted.read_to_end(&mut rest)?;
    assert!(rest.is_empty());
    assert_eq!(joined(client)?.map_err(boxed)?, b"pong\n".to_vec());
    Ok(())
}

// Held: abort() of a blocking socket during its host lookup (connect asked for, nothing
// made yet): Unconnected at once, no Disconnected (nothing was connected), no connection
// made by a later wait, and the drop is quiet.
#[test]
fn blocking_abort_during_host_lookup_makes_no_connection() -> TestResult {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    listener.set_nonblocking(true)?;
    let mut socket = sslsocket::blocking::SslSocket::new();
    socket.connect_to_host_encrypted("localhost", port);
    assert_eq!(socket.state(), SocketState::HostLookupState);
    socket.abort();
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    let events = socket.take_events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, sslsocket::SslEvent::Disconnected)),
        "{events:?}"
    );
    assert!(socket
        .wait_for_encrypted(Duration::from_millis(300))
        .is_err());
    drop(socket);
    thread::sleep(Duration::from_millis(100));
    assert!(
        matches!(listener.accept(), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection was made after the abort"
    );
    Ok(())
}

// Was a defect (round 35): tokio driver, both backends: into_inner() on an open connection whose errors were ignored, then dropping the transport, ends the connection exactly as a drop does (no close_notify: the peer reads a truncation), but the session is kept and the next lenient socket resumes it, where a drop or abort() of the same socket gives it up (README: "dropping a tokio socket whose connection is open is Qt's abort on destruction, so one with ignored errors gives its sessions up as abort() does"). Cause: tokio/socket.rs into_inner takes `stream` out before Drop runs, and Drop aborts only `if self.stream.is_some()`, so SslCore::abort (core/lifecycle.rs abort, confirm_peer(None)) never runs. (The blocking into_inner skips the give-up the same way.) Fix: into_inner gives up TLS as abort() does (run the core's abort check, then hand the stream out).
#[test]
fn tokio_into_inner_gives_the_session_up_as_a_drop_does() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let pki = Pki::new()?;
        let (port, server) = our_server(
            self_signed_server(&pki, protocol)?,
            vec![ServerEnd::ReadToEnd, ServerEnd::ReadToEnd],
        )?;
        let configuration = trusting(&pki)?;
        let rt = runtime()?;
        let resumed = rt.block_on(async {
            let first = lenient_tokio(port, &configuration).await?;
            let tcp = first.into_inner();
            assert!(tcp.is_some(), "no transport after the handshake");
            drop(tcp);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut second = lenient_tokio(port, &configuration).await?;
            let resumed = second.is_session_resumed();
            tokio::time::timeout(WAIT, second.disconnect_from_host()).await??;
            Ok::<_, BoxError>(resumed)
        })?;
        let seen = joined(server)?.map_err(boxed)?;
        assert_eq!(
            seen.first().and_then(|s| s.end.clone()),
            Some(Err(std::io::ErrorKind::UnexpectedEof)),
            "the peer did not see the connection cut"
        );
        assert!(
            !resumed,
            "{} {protocol:?}: into_inner() + dropping the transport (an abort at the peer) kept \
             the session of a connection with ignored errors; a drop gives it up",
            active_backend()
        );
    }
    Ok(())
}
