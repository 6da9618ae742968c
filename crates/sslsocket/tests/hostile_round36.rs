//! Adversarial review (round 36): what users fight with (user-pain.md) and hostile peers.
//! Every wait is bounded; peers are raw rustls servers or our own sockets on 127.0.0.1.
//! Run on both backends:
//! `SSLSOCKET_BACKEND=openssl cargo test -p sslsocket --all-features --test hostile_round36`.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::prelude::*;
use support::raw::{joined, ThreadResult};
use support::{trusting, Blocking, ClientDriver, Pki, Tokio};
use tokio_rustls::rustls;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;
/// A raw peer: its port and its thread.
type RawPeer<T> = (u16, thread::JoinHandle<ThreadResult<T>>);

const WAIT: Duration = Duration::from_secs(10);

// ----- a TLS 1.2 server whose session ticket is as large as a handshake message allows -----

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

// Was a defect (round 36): (rustls backend) a TLS 1.2 server's 65,000-byte session ticket is stored (by
// host name, whatever the port); the next connection to that name, here an honest server
// on another port, builds a ClientHello whose extension list exceeds 0xffff bytes and
// rustls's `debug_assert!(len <= 0xffff)` panics in the application's thread (release
// builds send a hello with a wrapped length, which the honest server refuses). A ticket
// that cannot fit in a ClientHello must not be stored (or offered): a full handshake.
#[test]
fn blocking_a_huge_tls12_ticket_does_not_panic_the_next_connection() -> TestResult {
    huge_ticket::<Blocking>(false, false)
}

// Was a defect (round 36): the same on the tokio driver.
#[test]
fn tokio_a_huge_tls12_ticket_does_not_panic_the_next_connection() -> TestResult {
    huge_ticket::<Tokio>(false, false)
}

// Held: a TLS 1.3 server's 64,000-byte ticket comes after the handshake, past the input
// limit of two records: the next connection to the name is a clean full handshake.
#[test]
fn blocking_a_huge_tls13_ticket_does_not_panic_the_next_connection() -> TestResult {
    huge_ticket::<Blocking>(true, false)
}

// Was a defect (round 36, review of the round's own fix): the same with keying material
// export on (rustls's buffered connection): its ClientHello was not measured, so a release
// build sent the malformed hello (a debug build's panic was caught).
#[test]
fn a_huge_tls12_ticket_does_not_break_a_keying_material_connection() -> TestResult {
    huge_ticket::<Blocking>(false, true)
}

// ----- truncation while the reader applies back-pressure -----

/// How the scripted server ends its stream after its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// close_notify, then FIN: a clean end.
    CloseNotify,
    /// FIN without close_notify: a truncation.
    Fin,
}

const FLOOD: usize = 3 * 1024 * 1024;

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// A raw rustls server (TLS 1.2 or 1.3) that sends `FLOOD` bytes, then ends with `end`.
fn flood_then(pki: &Pki, tls13: bool, end: End) -> BoxResult<RawPeer<()>> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = leaf
        .chain_der
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key_der.clone().into());
    let version: &'static rustls::SupportedProtocolVersion = if tls13 {
        &rustls::version::TLS13
    } else {
        &rustls::version::TLS12
    };
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[version])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?,
    );
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> ThreadResult<()> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        let data: Vec<u8> = (0..FLOOD).map(pattern).collect();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(&data).map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        if end == End::CloseNotify {
            tls.conn.send_close_notify();
            tls.flush().map_err(|e| e.to_string())?;
        }
        let _ = tls.sock.shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 4096];
        while let Ok(n) = tls.sock.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        Ok(())
    });
    Ok((port, server))
}

/// What a reader with a 4 KiB read buffer got: the bytes, and the end (`Ok` or the error).
type ReadOutcome = (Vec<u8>, Result<(), String>);

fn blocking_read_all(
    port: u16,
    configuration: sslsocket::SslConfiguration,
) -> Result<ReadOutcome, Box<dyn std::error::Error>> {
    let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
    socket.set_read_buffer_size(4096);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    socket.set_io_timeout(Some(WAIT));
    let mut got = Vec::new();
    let mut buf = [0u8; 1000];
    let started = Instant::now();
    loop {
        if started.elapsed() > Duration::from_secs(30) {
            return Ok((got, Err("took more than 30 s".into())));
        }
        match socket.read(&mut buf) {
            Ok(0) => return Ok((got, Ok(()))),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Ok((got, Err(format!("{:?}: {e}", e.kind())))),
        }
    }
}

fn tokio_read_all(
    port: u16,
    configuration: sslsocket::SslConfiguration,
) -> Result<ReadOutcome, Box<dyn std::error::Error>> {
    use tokio::io::AsyncReadExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let connecting = sslsocket::tokio::SslSocket::connect_to_host_encrypted(
            "localhost",
            port,
            configuration,
        );
        let mut socket = tokio::time::timeout(WAIT, connecting)
            .await?
            .map_err(|f| f.error().clone())?;
        socket.set_read_buffer_size(4096);
        let mut got = Vec::new();
        let mut buf = [0u8; 1000];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
                Err(_) => return Ok((got, Err("took more than 30 s".to_string()))),
                Ok(Ok(0)) => return Ok((got, Ok(()))),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return Ok((got, Err(format!("{:?}: {e}", e.kind())))),
            }
        }
    })
}

fn truncation_under_back_pressure(tokio: bool, tls13: bool, end: End) -> TestResult {
    let pki = Pki::new()?;
    let (port, server) = flood_then(&pki, tls13, end)?;
    let configuration = trusting(&pki)?;
    let (got, ended) = if tokio {
        tokio_read_all(port, configuration)?
    } else {
        blocking_read_all(port, configuration)?
    };
    joined(server)??;
    let what = format!("tokio {tokio}, TLS 1.3 {tls13}, {end:?}");
    assert_eq!(got.len(), FLOOD, "{what}: {ended:?}");
    assert!(
        got.iter().enumerate().all(|(i, b)| *b == pattern(i)),
        "{what}: corrupted data"
    );
    match end {
        End::CloseNotify => assert_eq!(ended, Ok(()), "{what}"),
        End::Fin => {
            let error = ended.err().unwrap_or_default();
            assert!(error.starts_with("UnexpectedEof"), "{what}: {error:?}");
        }
    }
    Ok(())
}

// Held: 3 MiB then FIN without close_notify, read through a 4 KiB read buffer: all the
// data, then UnexpectedEof (blocking, TLS 1.3).
#[test]
fn blocking_truncation_after_a_flood_is_reported_tls13() -> TestResult {
    truncation_under_back_pressure(false, true, End::Fin)
}

// Held: the same, TLS 1.2.
#[test]
fn blocking_truncation_after_a_flood_is_reported_tls12() -> TestResult {
    truncation_under_back_pressure(false, false, End::Fin)
}

// Held: the same on tokio, TLS 1.3.
#[test]
fn tokio_truncation_after_a_flood_is_reported_tls13() -> TestResult {
    truncation_under_back_pressure(true, true, End::Fin)
}

// Held: the same on tokio, TLS 1.2.
#[test]
fn tokio_truncation_after_a_flood_is_reported_tls12() -> TestResult {
    truncation_under_back_pressure(true, false, End::Fin)
}

// Held: with close_notify the same flood ends cleanly (blocking and tokio).
#[test]
fn a_clean_end_after_a_flood_is_clean_on_both_drivers() -> TestResult {
    truncation_under_back_pressure(false, true, End::CloseNotify)?;
    truncation_under_back_pressure(true, false, End::CloseNotify)
}

// ----- records of a content type TLS does not use here (heartbeat, 24) -----

/// A raw rustls server (TLS 1.2 or 1.3 as `tls13`): a line, then `record` raw on the TCP
/// stream, then it keeps the connection open (reading) for 6 s.
fn line_then_raw(pki: &Pki, tls13: bool, record: Vec<u8>) -> BoxResult<RawPeer<()>> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = leaf
        .chain_der
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key_der.clone().into());
    let version: &'static rustls::SupportedProtocolVersion = if tls13 {
        &rustls::version::TLS13
    } else {
        &rustls::version::TLS12
    };
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[version])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?,
    );
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> ThreadResult<()> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let started = Instant::now();
        while conn.is_handshaking() && started.elapsed() < WAIT {
            match conn.complete_io(&mut tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"hello\n").map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        thread::sleep(Duration::from_millis(100));
        tls.sock.write_all(&record).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let mut sink = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(6) {
            match tls.sock.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => {}
            }
        }
        Ok(())
    });
    Ok((port, server))
}

fn unknown_record<D: ClientDriver>(tls13: bool, record: Vec<u8>) -> TestResult {
    let pki = Pki::new()?;
    let (port, server) = line_then_raw(&pki, tls13, record)?;
    let mut client =
        D::connect_encrypted("localhost", port, trusting(&pki)?, WAIT).map_err(|(e, _)| e)?;
    let line = client.next_line(0, WAIT)?;
    assert_eq!(line, b"hello\n");
    let started = Instant::now();
    let next = client.next_line(0, Duration::from_secs(4));
    let took = started.elapsed();
    drop(client);
    let _ = joined(server);
    let what = format!("{}, TLS 1.3 {tls13}", D::NAME);
    match next {
        Ok(line) => panic_free_fail(&what, &format!("a line after the bad record: {line:?}"))?,
        Err(e) => assert!(
            !matches!(e, sslsocket::Error::Timeout(_)) && took < Duration::from_secs(3),
            "{what}: {e} after {took:?}"
        ),
    }
    Ok(())
}

fn panic_free_fail(what: &str, message: &str) -> TestResult {
    Err(format!("{what}: {message}").into())
}

/// A heartbeat request record (content type 24), in the clear.
fn heartbeat() -> Vec<u8> {
    let mut record = vec![0x18, 0x03, 0x03, 0x00, 0x13, 0x01, 0x00, 0x10];
    record.extend_from_slice(&[0x41; 16]);
    record
}

// Held: a heartbeat record after the handshake fails the connection at once (blocking, TLS 1.2).
#[test]
fn blocking_a_heartbeat_record_fails_the_connection_tls12() -> TestResult {
    unknown_record::<Blocking>(false, heartbeat())
}

// Held: the same on tokio, TLS 1.3.
#[test]
fn tokio_a_heartbeat_record_fails_the_connection_tls13() -> TestResult {
    unknown_record::<Tokio>(true, heartbeat())
}

// Held: a record of length 0x4800 + 1 (over 2^14 + 2048) fails at once (blocking, TLS 1.3).
#[test]
fn blocking_an_oversized_record_header_fails_the_connection() -> TestResult {
    let mut record = vec![0x17, 0x03, 0x03, 0x48, 0x01];
    record.extend(std::iter::repeat_n(0u8, 0x4801));
    unknown_record::<Blocking>(true, record)
}

// ----- a client that half-closes (TLS 1.3 close_notify) and goes on reading -----

const HALF_CLOSE_DATA: usize = 1024 * 1024;

/// A raw rustls TLS 1.3 client: handshake, close_notify at once (its side is done), then
/// it reads (slowly at first, so our writes back up) until our close_notify or an error.
/// Returns the bytes it got and how its stream ended.
fn half_closing_client(
    pki: &Pki,
    port: u16,
) -> BoxResult<thread::JoinHandle<ThreadResult<(usize, String)>>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(
        pki.root_der().to_vec(),
    ))?;
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    Ok(thread::spawn(move || -> ThreadResult<(usize, String)> {
        let mut tcp =
            std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let name =
            rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        conn.send_close_notify();
        while conn.wants_write() {
            conn.write_tls(&mut tcp).map_err(|e| e.to_string())?;
        }
        // Let the server's writes back up before reading.
        thread::sleep(Duration::from_millis(300));
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut got = 0;
        let mut buf = [0u8; 16 * 1024];
        let started = Instant::now();
        loop {
            if started.elapsed() > Duration::from_secs(20) {
                return Ok((got, "took too long".into()));
            }
            match tls.read(&mut buf) {
                Ok(0) => return Ok((got, "close_notify".into())),
                Ok(n) => got += n,
                Err(e) => return Ok((got, format!("{:?}: {e}", e.kind()))),
            }
        }
    }))
}

/// Our blocking server writes `HALF_CLOSE_DATA` (write by write, counting what was taken)
/// to a client that half-closed, then `disconnect_within`. What was taken must reach the
/// client, or the close must say it did not.
fn half_close_blocking_server() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let (taken_tx, taken_rx) = std::sync::mpsc::channel();
    let (port, server) = support::serve_one(support::serving(&leaf)?, move |socket| {
        socket.set_io_timeout(Some(Duration::from_secs(5)));
        let data = vec![0x42u8; HALF_CLOSE_DATA];
        let mut taken = 0;
        let mut write_error = String::new();
        while taken < data.len() {
            match socket.write(&data[taken..]) {
                Ok(0) => break,
                Ok(n) => taken += n,
                Err(e) => {
                    write_error = e.to_string();
                    break;
                }
            }
        }
        let closed = socket.disconnect_within(Duration::from_secs(10));
        let _ = taken_tx.send((taken, write_error, closed.map_err(|e| e.to_string())));
        Ok(())
    })?;
    let client = half_closing_client(&pki, port)?;
    let (got, end) = joined(client)??;
    let _ = joined(server);
    let (taken, write_error, closed) = taken_rx.recv_timeout(WAIT)?;
    let what = format!(
        "taken {taken} (write error {write_error:?}), close {closed:?}; client got {got}, ended by {end}"
    );
    eprintln!("{what}");
    if closed.is_ok() {
        assert_eq!(got, taken, "a close that succeeded lost data: {what}");
        assert_eq!(end, "close_notify", "{what}");
    }
    assert!(taken > 0, "{what}");
    Ok(())
}

// Held: what the blocking server's writes took reaches a half-closed TLS 1.3 client, or
// the close reports that it did not.
#[test]
fn blocking_server_writes_reach_a_half_closed_client() -> TestResult {
    half_close_blocking_server()
}

/// The same with our tokio server.
fn half_close_tokio_server() -> TestResult {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let configuration = support::serving(&leaf)?;
    let server = runtime.block_on(sslsocket::tokio::SslServer::bind(
        "127.0.0.1:0",
        configuration,
    ))?;
    let port = server.local_addr().port();
    let client = half_closing_client(&pki, port)?;
    let (taken, write_error, closed) = runtime.block_on(async move {
        let accepted = tokio::time::timeout(WAIT, server.accept_encrypted()).await;
        let mut socket = match accepted {
            Ok(Ok(socket)) => socket,
            Ok(Err(failed)) => return Err(format!("handshake: {failed}")),
            Err(_) => return Err("no client".to_string()),
        };
        let data = vec![0x42u8; HALF_CLOSE_DATA];
        let mut taken = 0;
        let mut write_error = String::new();
        while taken < data.len() {
            match tokio::time::timeout(Duration::from_secs(5), socket.write(&data[taken..])).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => taken += n,
                Ok(Err(e)) => {
                    write_error = e.to_string();
                    break;
                }
                Err(_) => {
                    write_error = "write timed out".into();
                    break;
                }
            }
        }
        let closed = match tokio::time::timeout(
            Duration::from_secs(10),
            socket.disconnect_from_host(),
        )
        .await
        {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("close timed out".to_string()),
        };
        Ok((taken, write_error, closed))
    })?;
    let (got, end) = joined(client)??;
    let what = format!(
        "taken {taken} (write error {write_error:?}), close {closed:?}; client got {got}, ended by {end}"
    );
    eprintln!("{what}");
    if closed.is_ok() {
        assert_eq!(got, taken, "a close that succeeded lost data: {what}");
        assert_eq!(end, "close_notify", "{what}");
    }
    assert!(taken > 0, "{what}");
    Ok(())
}

// Held: the same on the tokio server.
#[test]
fn tokio_server_writes_reach_a_half_closed_client() -> TestResult {
    half_close_tokio_server()
}
