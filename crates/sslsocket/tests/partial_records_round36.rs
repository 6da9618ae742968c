//! Round 36: `encrypted_bytes_available()` (Qt's `encryptedBytesAvailable`) counts the
//! part of a record that has arrived while its rest has not, on the rustls backend; the
//! OpenSSL backend keeps its read-ahead to itself and says 0 (README).
//! `cargo test -p sslsocket --all-features --test partial_records_round36`, and again
//! with `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::SslProtocol;
use support::chains::TestResult;
use support::{active_backend, serving, trusting, Pki};

const WAIT: Duration = Duration::from_secs(10);
/// The application data the server sends in one record.
const MESSAGE: usize = 1000;

type Relayed = JoinHandle<Result<(), String>>;

/// A one-connection relay to `target`. From the server to the client it passes everything
/// until told (`hold`); then it passes only the first half of the next bytes that come,
/// and the rest once told again (`release`).
fn holding_relay(
    target: SocketAddr,
) -> std::io::Result<(u16, mpsc::Sender<()>, mpsc::Sender<()>, Relayed)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let (hold, held) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let relay = thread::spawn(move || -> Result<(), String> {
        let (client, _) = listener.accept().map_err(|e| e.to_string())?;
        let upstream = TcpStream::connect(target).map_err(|e| e.to_string())?;
        for stream in [&client, &upstream] {
            stream
                .set_read_timeout(Some(WAIT))
                .map_err(|e| e.to_string())?;
        }
        let (mut to_server, mut from_client) = (
            upstream.try_clone().map_err(|e| e.to_string())?,
            client.try_clone().map_err(|e| e.to_string())?,
        );
        let forward = thread::spawn(move || {
            let _ = std::io::copy(&mut from_client, &mut to_server);
            let _ = to_server.shutdown(Shutdown::Write);
        });
        let (mut from_server, mut to_client) = (upstream, client);
        let mut buf = vec![0u8; 64 * 1024];
        let mut holding = false;
        loop {
            let n = match from_server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Told before these bytes came (the test tells before the server writes).
            if !holding && held.try_recv().is_ok() {
                holding = true;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            if holding {
                let (first, rest) = chunk.split_at(n / 2);
                to_client.write_all(first).map_err(|e| e.to_string())?;
                released.recv_timeout(WAIT).map_err(|e| e.to_string())?;
                to_client.write_all(rest).map_err(|e| e.to_string())?;
                holding = false;
            } else {
                to_client.write_all(chunk).map_err(|e| e.to_string())?;
            }
        }
        let _ = to_client.shutdown(Shutdown::Write);
        let _ = forward.join();
        Ok(())
    });
    Ok((port, hold, release, relay))
}

// Was a defect (round 36; carried since round 32): `encrypted_bytes_available()` was always
// 0, where Qt's counts the encrypted bytes received and not yet decrypted (its conformance
// list checks it during a partial record).
#[test]
fn a_partial_record_is_counted_as_encrypted_bytes_available() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let (port, hold, release, relay) = holding_relay(server.local_addr())?;
    // TLS 1.2: the session ticket comes inside the handshake, so after it the server sends
    // only what it is asked to.
    let mut configuration = trusting(&pki)?;
    configuration.set_protocol(SslProtocol::TlsV1_2);
    let mut client = SslSocket::with_configuration(configuration);
    client.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    client.wait_for_encrypted(WAIT)?;
    let mut served = match server.next_connection(WAIT)? {
        Ok(socket) => socket,
        Err(socket) => return Err(format!("server: {:?}", socket.error()).into()),
    };
    hold.send(())?;
    served.write_all(&[b'x'; MESSAGE])?;
    served.flush()?;
    // Half of the record arrives: nothing to read, the half counted (rustls).
    let waited = client.wait_for_ready_read(Duration::from_millis(300));
    assert!(waited.is_err(), "half a record made something readable");
    assert_eq!(client.bytes_available(), 0);
    let partial = client.encrypted_bytes_available();
    if active_backend() == "openssl" {
        assert_eq!(partial, 0, "OpenSSL's read-ahead is not counted");
    } else {
        assert!(
            partial > 0 && partial < MESSAGE + 64,
            "encrypted_bytes_available {partial}"
        );
    }
    release.send(())?;
    let mut got = Vec::new();
    while got.len() < MESSAGE {
        client.wait_for_ready_read(WAIT)?;
        got.extend(client.read_all());
    }
    assert_eq!(got, vec![b'x'; MESSAGE]);
    assert_eq!(client.encrypted_bytes_available(), 0);
    client.abort();
    assert_eq!(client.encrypted_bytes_available(), 0);
    drop(served);
    drop(server);
    relay.join().map_err(|_| "relay panicked")??;
    Ok(())
}
