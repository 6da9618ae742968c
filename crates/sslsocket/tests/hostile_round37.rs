//! Adversarial review (round 37): hostile and broken peers, resource bounds, timeouts.
//! Every wait is bounded; peers are raw rustls servers or raw TCP on 127.0.0.1.
//! Run on both backends:
//! `SSLSOCKET_BACKEND=openssl cargo test -p sslsocket --all-features --test hostile_round37`.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::prelude::*;
use sslsocket::{Handshake, PauseMode, SocketError, SocketState};
use support::raw::{joined, ThreadResult};
use support::{raw_server_config, trusting, Blocking, ClientDriver, Pki, Tokio};
use tokio_rustls::rustls;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;
/// A raw peer: its port and its thread.
type RawPeer<T> = (u16, thread::JoinHandle<ThreadResult<T>>);

const WAIT: Duration = Duration::from_secs(10);

// ----- a peer that vanishes while the client is paused on errors -----

/// A raw rustls server (a `localhost` leaf): answers the ClientHello with its whole flight,
/// then, once told (`go`), goes away: a FIN, or with `reset` an RST.
fn vanishing_server(pki: &Pki, reset: bool) -> BoxResult<(RawPeer<()>, mpsc::Sender<()>)> {
    let config = raw_server_config(pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let (go, gone) = mpsc::channel::<()>();
    let peer = thread::spawn(move || -> ThreadResult<()> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        // The ClientHello in, the whole flight out (up to the server's Finished); the
        // server then waits for the client's Finished.
        loop {
            if conn.wants_write() {
                while conn.wants_write() {
                    conn.write_tls(&mut tcp).map_err(|e| e.to_string())?;
                }
                break;
            }
            if conn.read_tls(&mut tcp).map_err(|e| e.to_string())? == 0 {
                return Err("the client left".into());
            }
            conn.process_new_packets().map_err(|e| e.to_string())?;
        }
        let _ = gone.recv_timeout(WAIT);
        if reset {
            rustix::net::sockopt::set_socket_linger(&tcp, Some(Duration::ZERO))
                .map_err(|e| e.to_string())?;
        }
        drop(tcp);
        Ok(())
    });
    Ok(((port, peer), go))
}

/// The client pauses on its errors; the server goes away meanwhile; the application then
/// accepts the peer. The end must be reported in time: at `accept_peer` (the held
/// Finished meets the reset), at the handshake, or, when the handshake finished on our
/// side (TLS 1.3: our Finished is our last word), at the next read, as a remote close.
fn paused_then_vanished<D: ClientDriver>(reset: bool) -> TestResult {
    let pki = Pki::new()?;
    let ((port, peer), go) = vanishing_server(&pki, reset)?;
    // "127.0.0.1" is not the leaf's name: the client pauses on HostNameMismatch.
    let mut client = D::start("127.0.0.1", port, trusting(&pki)?, |socket| {
        socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    })?;
    match client.handshake(WAIT)? {
        Handshake::NeedsDecision(_) => {}
        other => return Err(format!("{}: expected a pause, got {other:?}", D::NAME).into()),
    }
    go.send(())?;
    joined(peer)??;
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let ended = match client.socket().accept_peer() {
        Err(error) => error,
        Ok(()) => match client.handshake(Duration::from_secs(5)) {
            Err(error) => error,
            Ok(_) => match client.next_line(0, Duration::from_secs(5)) {
                Err(error) => error,
                Ok(line) => {
                    return Err(format!("{}: read {line:?} from a peer that left", D::NAME).into())
                }
            },
        },
    };
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "{}: the end took {took:?}",
        D::NAME
    );
    assert_eq!(
        ended.socket_error(),
        SocketError::RemoteHostClosedError,
        "{} reset={reset}: {ended}",
        D::NAME
    );
    assert_eq!(client.socket().state(), SocketState::UnconnectedState);
    assert_eq!(client.socket().error(), SocketError::RemoteHostClosedError);
    Ok(())
}

// PINS: a server that closes (FIN) while the client is paused on errors: after
// `accept_peer` the end is a remote close, found in time (blocking driver).
#[test]
fn blocking_a_peer_closing_during_a_pause_is_a_remote_close() -> TestResult {
    paused_then_vanished::<Blocking>(false)
}

// PINS: the same with a reset.
#[test]
fn blocking_a_peer_resetting_during_a_pause_is_a_remote_close() -> TestResult {
    paused_then_vanished::<Blocking>(true)
}

// PINS: the same on the tokio driver (FIN).
#[test]
fn tokio_a_peer_closing_during_a_pause_is_a_remote_close() -> TestResult {
    paused_then_vanished::<Tokio>(false)
}

// PINS: the same on the tokio driver (reset).
#[test]
fn tokio_a_peer_resetting_during_a_pause_is_a_remote_close() -> TestResult {
    paused_then_vanished::<Tokio>(true)
}

// ----- a peer that vanishes in the middle of its flight -----

/// A raw rustls server that sends `part` bytes of its first flight, then a FIN, or with
/// `reset` an RST.
fn half_flight_server(pki: &Pki, part: usize, reset: bool) -> BoxResult<RawPeer<()>> {
    let config = raw_server_config(pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let peer = thread::spawn(move || -> ThreadResult<()> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut flight = Vec::new();
        while !conn.wants_write() {
            if conn.read_tls(&mut tcp).map_err(|e| e.to_string())? == 0 {
                return Err("the client left".into());
            }
            conn.process_new_packets().map_err(|e| e.to_string())?;
        }
        while conn.wants_write() {
            conn.write_tls(&mut flight).map_err(|e| e.to_string())?;
        }
        let part = part.min(flight.len());
        tcp.write_all(flight.get(..part).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        thread::sleep(Duration::from_millis(100));
        if reset {
            rustix::net::sockopt::set_socket_linger(&tcp, Some(Duration::ZERO))
                .map_err(|e| e.to_string())?;
        }
        drop(tcp);
        Ok(())
    });
    Ok((port, peer))
}

fn vanished_mid_flight<D: ClientDriver>(part: usize, reset: bool) -> BoxResult<String> {
    let pki = Pki::new()?;
    let (port, peer) = half_flight_server(&pki, part, reset)?;
    let started = Instant::now();
    let outcome = D::connect_encrypted("localhost", port, trusting(&pki)?, WAIT);
    let took = started.elapsed();
    joined(peer)??;
    assert!(took < Duration::from_secs(5), "{}: {took:?}", D::NAME);
    Ok(match outcome {
        Ok(_) => "connected".to_string(),
        Err((error, socket)) => {
            let kept = socket.map(|mut s| (s.socket().error(), s.socket().state()));
            format!("{:?} {kept:?}", error.socket_error())
        }
    })
}

// PINS: a server that leaves (FIN or RST) after none, a few bytes, or part of its first
// flight fails the handshake in time with the same outcome on both drivers (and both
// backends): RemoteHostClosedError, the socket unconnected.
#[test]
fn a_server_leaving_mid_flight_is_a_remote_close_on_both_drivers() -> TestResult {
    let expected = "RemoteHostClosedError Some((RemoteHostClosedError, UnconnectedState))";
    for part in [0usize, 3, 7, 100] {
        for reset in [false, true] {
            let blocking = vanished_mid_flight::<Blocking>(part, reset)?;
            let tokio = vanished_mid_flight::<Tokio>(part, reset)?;
            assert_eq!(
                (blocking.as_str(), tokio.as_str()),
                (expected, expected),
                "part {part}, reset {reset}"
            );
        }
    }
    Ok(())
}

// ----- a TLS 1.3 ticket as large as a handshake message allows, on a keying-material connection -----

/// A ticketer that "encrypts" every session into `size` bytes (and decrypts nothing).
#[derive(Debug)]
struct HugeTickets(usize);

impl rustls::server::ProducesTickets for HugeTickets {
    fn enabled(&self) -> bool {
        true
    }
    fn lifetime(&self) -> u32 {
        3600
    }
    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        Some(vec![0x5a; self.0])
    }
    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// A raw rustls TLS 1.2 server (localhost leaf of `pki`) issuing tickets of `ticket` bytes,
/// for `connections` connections; each one is served until the client leaves (bounded).
/// Returns the port and the thread, whose result is how many handshakes completed.
fn huge_ticket_server(
    pki: &Pki,
    ticket: usize,
    connections: usize,
    tls13: bool,
) -> BoxResult<RawPeer<usize>> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = leaf
        .chain_der
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key_der.clone().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[if tls13 {
        &rustls::version::TLS13
    } else {
        &rustls::version::TLS12
    }])?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.ticketer = Arc::new(HugeTickets(ticket));
    config.send_tls13_tickets = 1;
    let config = Arc::new(config);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> ThreadResult<usize> {
        let mut done = 0;
        for _ in 0..connections {
            let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
            let mut conn =
                rustls::ServerConnection::new(Arc::clone(&config)).map_err(|e| e.to_string())?;
            let started = Instant::now();
            let mut ok = true;
            while conn.is_handshaking() && started.elapsed() < WAIT {
                if conn.complete_io(&mut tcp).is_err() {
                    ok = false;
                    break;
                }
            }
            if ok && !conn.is_handshaking() {
                done += 1;
                // Serve until the client leaves.
                while started.elapsed() < WAIT {
                    match conn.complete_io(&mut tcp) {
                        Ok((0, 0)) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let mut sink = [0u8; 1024];
                    if let Ok(0) = conn.reader().read(&mut sink) {
                        break;
                    }
                }
            }
        }
        Ok(done)
    });
    Ok((port, server))
}

/// One configuration, two servers under one name: a hostile TLS 1.2 server on one port
/// issues a ~64 KiB ticket; then an honest server (ours) on another port of the same host
/// name. The second connection must not panic: it must reach the honest server (the
/// hostile ticket is of no use there; a full handshake).
fn huge_ticket<D: ClientDriver>(tls13: bool, keying: bool) -> TestResult {
    let pki = Pki::new()?;
    let (hostile_port, hostile) =
        huge_ticket_server(&pki, if tls13 { 64_000 } else { 65_000 }, 1, tls13)?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let (honest_port, honest) = support::serve_one(support::serving(&leaf)?, |socket| {
        socket.write_all(b"honest\n")?;
        socket.flush()?;
        let _ = socket.disconnect_within(Duration::from_secs(3));
        Ok(())
    })?;
    let mut configuration = trusting(&pki)?;
    // Keying material export runs on rustls's buffered connection: the same rule there.
    configuration.set_keying_material_export(keying);
    let client = thread::spawn(move || -> Vec<String> {
        let mut outcomes = Vec::new();
        for port in [hostile_port, honest_port] {
            match D::connect_encrypted("localhost", port, configuration.clone(), WAIT) {
                Ok(mut socket) => {
                    let line = if port == honest_port {
                        socket.next_line(0, WAIT).unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    outcomes.push(format!(
                        "encrypted, resumed {}, {}",
                        socket.socket().is_session_resumed(),
                        String::from_utf8_lossy(&line).trim()
                    ));
                    let _ = socket.disconnect(Duration::from_secs(3));
                }
                Err((error, _)) => outcomes.push(format!("failed: {error}")),
            }
        }
        outcomes
    });
    let outcomes = joined(client);
    let _ = joined(hostile);
    if outcomes.is_err() {
        // Unblock the honest server that never saw its client.
        let _ = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, honest_port));
    }
    let _ = joined(honest);
    let outcomes = outcomes?;
    assert_eq!(
        outcomes,
        vec![
            "encrypted, resumed false, ".to_string(),
            "encrypted, resumed false, honest".to_string()
        ]
    );
    Ok(())
}

// PINS: round 36 tested the 64,000-byte TLS 1.3 ticket on rustls's unbuffered connection
// only (kept out by its two-record input limit); a configuration with keying material
// export runs on rustls's buffered connection, whose own reader joins a post-handshake
// message of up to 64 KiB: the ticket must still not break the next connection's hello.
#[test]
fn a_huge_tls13_ticket_does_not_break_a_keying_material_connection() -> TestResult {
    huge_ticket::<Blocking>(true, true)
}

// PINS: the same on the tokio driver.
#[test]
fn tokio_a_huge_tls13_ticket_does_not_break_a_keying_material_connection() -> TestResult {
    huge_ticket::<Tokio>(true, true)
}
