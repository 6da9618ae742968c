//! Round 33 review (data and connection semantics, both drivers, both backends): each
//! test asserts the product rule or Qt's behaviour and failed before its fix; the defect
//! is named on its first line. Peers on 127.0.0.1, certificates made at test time. Run on both
//! backends (`SSLSOCKET_BACKEND=openssl` for the second run).

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{SocketState, SslConfiguration};
use support::{raw_server_config, trusting, Pki};
use tokio_rustls::rustls;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Raw = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;
/// The peer's thread, with its verdict.
type Worker = JoinHandle<Result<(), String>>;

const WAIT: Duration = Duration::from_secs(10);

/// A raw rustls server for one connection, on a plain TCP listener: `before` gets the TCP
/// stream first (a plain-text prologue for STARTTLS), then the handshake runs and
/// `script` gets the TLS stream.
fn raw_server(
    pki: &Pki,
    before: impl FnOnce(&mut TcpStream) -> Result<(), String> + Send + 'static,
    script: impl FnOnce(Raw) -> Result<(), String> + Send + 'static,
) -> Result<(u16, Worker), Box<dyn std::error::Error>> {
    let config = raw_server_config(pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let worker = thread::spawn(move || -> Result<(), String> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        before(&mut tcp)?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        script(rustls::StreamOwned::new(conn, tcp))
    });
    Ok((port, worker))
}

fn client_config(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    trusting(pki)
}

fn blocking_client(pki: &Pki, port: u16) -> Result<SslSocket, Box<dyn std::error::Error>> {
    let mut socket = SslSocket::with_configuration(client_config(pki)?);
    socket.set_io_timeout(Some(WAIT));
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    Ok(socket)
}

fn join(worker: JoinHandle<Result<(), String>>) -> Result<(), String> {
    worker
        .join()
        .map_err(|_| "peer thread panicked".to_string())?
}

/// Reads everything the TLS peer sends until its end (for the server side of tests).
fn drain(tls: &mut Raw) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

// ----- adopting a socket: a new connection starts clean -----------------------------------

// Was a defect: set_socket_descriptor on a connected socket keeps the previous connection's TLS session and unread data: the old peer's bytes are read as the new peer's, and the new plain connection is still "encrypted"
#[test]
fn blocking_set_socket_descriptor_drops_the_previous_connection_state() -> TestResult {
    let pki = Pki::new()?;
    let (port, worker) = raw_server(
        &pki,
        |_| Ok(()),
        |mut tls| {
            tls.write_all(b"OLD PEER DATA\n")
                .map_err(|e| e.to_string())?;
            tls.flush().map_err(|e| e.to_string())?;
            let _ = drain(&mut tls);
            Ok(())
        },
    )?;
    let mut socket = blocking_client(&pki, port)?;
    socket.wait_for_ready_read(WAIT)?;
    assert!(socket.bytes_available() > 0);
    // A new, plain connection adopted into the same socket object.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let second = TcpStream::connect(listener.local_addr()?)?;
    let (mut peer, _) = listener.accept()?;
    peer.write_all(b"new\n")?;
    socket.set_socket_descriptor(std::os::fd::OwnedFd::from(second))?;
    let state = (socket.state(), socket.mode(), socket.is_encrypted());
    let stale = socket.bytes_available();
    let line = socket.next_line(0, Duration::from_secs(3));
    drop(socket);
    drop(peer);
    let _ = join(worker);
    assert_eq!(
        state,
        (
            SocketState::ConnectedState,
            sslsocket::SslMode::UnencryptedMode,
            false
        ),
        "the adopted plain connection is a new, unencrypted one"
    );
    assert_eq!(
        stale, 0,
        "the previous peer's unread data is not the new peer's"
    );
    assert_eq!(line.map_err(|e| e.to_string())?, b"new\n");
    Ok(())
}

// ----- a reused socket's counters -------------------------------------------------------

// Was a defect: discarded_plaintext_bytes() is never reset: a reused socket reports the previous connection's discarded (injected) plaintext on a clean new connection
#[test]
fn blocking_discarded_plaintext_counter_is_per_connection() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> Result<(), String> {
        // First connection: a reply with injected bytes, then the client's hello is dropped.
        let (mut first, _) = listener.accept().map_err(|e| e.to_string())?;
        first
            .write_all(b"220 ready\r\nINJECTED\r\n")
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4096];
        let _ = first.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = first.read(&mut buf);
        drop(first);
        // Second connection: a clean reply.
        let (mut second, _) = listener.accept().map_err(|e| e.to_string())?;
        second
            .write_all(b"220 ready\r\n")
            .map_err(|e| e.to_string())?;
        let _ = second.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = second.read(&mut buf);
        Ok(())
    });
    let mut socket = SslSocket::with_configuration(SslConfiguration::default());
    socket.connect_to_host("127.0.0.1", port);
    socket.wait_for_connected(WAIT)?;
    let _ = socket.next_line(0, WAIT)?;
    thread::sleep(Duration::from_millis(100));
    socket.start_client_encryption()?;
    let _ = socket.wait_for_encrypted(Duration::from_secs(3));
    let first = socket.core().discarded_plaintext_bytes();
    socket.abort();
    socket.connect_to_host("127.0.0.1", port);
    socket.wait_for_connected(WAIT)?;
    let line = socket.next_line(0, WAIT)?;
    let second = socket.core().discarded_plaintext_bytes();
    socket.abort();
    let _ = server.join();
    assert_eq!(line, b"220 ready\r\n");
    assert_eq!(first, b"INJECTED\r\n".len());
    assert_eq!(second, 0, "the new connection discarded nothing");
    Ok(())
}

// ----- flush after a failure ------------------------------------------------------------

// Was a defect: blocking flush() returns Ok once the socket is unconnected, even when what was written never left (a failed handshake dropped it); the tokio driver's flush returns the failure
#[test]
fn blocking_flush_after_a_failed_handshake_reports_the_failure() -> TestResult {
    let pki = Pki::new()?;
    let (port, worker) = raw_server(&pki, |_| Ok(()), |_| Ok(()))?;
    // Trusts nothing of the test PKI: the handshake fails on verification.
    let mut socket = SslSocket::with_configuration(SslConfiguration::default());
    socket.set_io_timeout(Some(WAIT));
    socket.connect_to_host_encrypted("localhost", port);
    socket.write_all(b"queued during the handshake")?;
    let first = socket.flush();
    let handshake = socket.wait_for_encrypted(WAIT);
    let second = socket.flush();
    drop(socket);
    let _ = join(worker);
    assert!(handshake.is_err());
    assert!(first.is_err(), "first flush: {first:?}");
    assert!(
        second.is_err(),
        "a flush after the failure says the bytes did not leave: {second:?}"
    );
    Ok(())
}
