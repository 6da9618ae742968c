//! The OpenSSL backend's data path (OpenSSL reading the socket directly, buffers freed
//! when drained), ours against ours on loopback: large transfers both ways in writes of
//! every size, a 1-byte ping-pong and answers alternating small and large, byte for byte,
//! ending with a clean close. The backend is chosen process-wide, so these tests live in
//! their own binary.
#![cfg(feature = "openssl")]

mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use sslsocket::backend;
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::SslProtocol;
use support::{serving, trusting, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type ThreadResult<T> = Result<T, String>;

const WAIT: Duration = Duration::from_secs(20);

fn use_openssl() -> TestResult {
    Ok(backend::set_active_backend("openssl")?)
}

fn pattern(i: usize) -> u8 {
    (i ^ (i >> 7) ^ (i >> 17)) as u8
}

/// A server for "localhost" with `protocol`, and a connected client that trusts it.
fn pair(protocol: SslProtocol) -> Result<(SslServer, SslSocket), Box<dyn std::error::Error>> {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server_config = serving(&leaf)?;
    server_config.set_protocol(protocol);
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let mut client_config = trusting(&pki)?;
    client_config.set_protocol(protocol);
    let mut client = SslSocket::with_configuration(client_config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", server.local_addr().port());
    Ok((server, client))
}

fn accepted(server: &SslServer) -> ThreadResult<SslSocket> {
    let mut socket = server
        .next_connection(WAIT)
        .map_err(|e| e.to_string())?
        .map_err(|failed| format!("handshake failed: {}", failed.error_string()))?;
    socket.set_io_timeout(Some(WAIT));
    Ok(socket)
}

/// Echoes everything until the peer's end of stream; the bytes echoed and whether the
/// peer closed cleanly.
fn echo(socket: &mut SslSocket) -> ThreadResult<(usize, bool)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match socket.read(&mut buf).map_err(|e| e.to_string())? {
            0 => break,
            n => {
                let data = buf.get(..n).ok_or("read past the buffer")?;
                socket.write_all(data).map_err(|e| e.to_string())?;
                socket.flush().map_err(|e| e.to_string())?;
                total += n;
            }
        }
    }
    Ok((total, socket.core().is_peer_closed_cleanly()))
}

fn large_transfer_both_ways(protocol: SslProtocol) -> TestResult {
    let (server, mut client) = pair(protocol)?;
    let served = thread::spawn(move || echo(&mut accepted(&server)?));
    client.wait_for_encrypted(WAIT)?;
    // Writes of every size around the record size, and larger ones.
    let sizes = [
        1,
        16 * 1024,
        16 * 1024 + 1,
        64 * 1024,
        100_003,
        5,
        16 * 1024 - 1,
        256 * 1024,
    ];
    let mut offset = 0;
    for round in 0..12 {
        for &size in &sizes {
            let data: Vec<u8> = (offset..offset + size).map(pattern).collect();
            client.write_all(&data)?;
            client.flush()?;
            let mut back = vec![0u8; size];
            client.read_exact(&mut back)?;
            assert!(
                back == data,
                "round {round}: {size} bytes at {offset} came back different"
            );
            offset += size;
        }
    }
    client.disconnect_from_host()?;
    let (echoed, clean) = served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(echoed, offset);
    assert!(clean, "the server saw our close_notify");
    Ok(())
}

#[test]
fn large_transfers_both_ways_arrive_exact_over_tls_1_3() -> TestResult {
    large_transfer_both_ways(SslProtocol::TlsV1_3)
}

#[test]
fn large_transfers_both_ways_arrive_exact_over_tls_1_2() -> TestResult {
    large_transfer_both_ways(SslProtocol::TlsV1_2)
}

#[test]
fn a_one_byte_ping_pong_stays_exact() -> TestResult {
    let (server, mut client) = pair(SslProtocol::SecureProtocols)?;
    let served = thread::spawn(move || -> ThreadResult<usize> {
        let mut socket = accepted(&server)?;
        let mut byte = [0u8; 1];
        let mut rounds = 0;
        loop {
            match socket.read(&mut byte).map_err(|e| e.to_string())? {
                0 => return Ok(rounds),
                _ => {
                    byte[0] = byte[0].wrapping_add(1);
                    socket.write_all(&byte).map_err(|e| e.to_string())?;
                    socket.flush().map_err(|e| e.to_string())?;
                    rounds += 1;
                }
            }
        }
    });
    client.wait_for_encrypted(WAIT)?;
    for i in 0..1000usize {
        client.write_all(&[i as u8])?;
        client.flush()?;
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte)?;
        assert_eq!(byte[0], (i as u8).wrapping_add(1), "round {i}");
        assert_eq!(
            client.bytes_available(),
            0,
            "nothing more than the answer arrived"
        );
    }
    client.disconnect_from_host()?;
    let rounds = served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(rounds, 1000);
    Ok(())
}

#[test]
fn data_followed_by_close_notify_is_all_read_then_a_clean_end() -> TestResult {
    let (server, mut client) = pair(SslProtocol::TlsV1_3)?;
    let served = thread::spawn(move || -> ThreadResult<()> {
        let mut socket = accepted(&server)?;
        let data: Vec<u8> = (0..300_000).map(pattern).collect();
        socket.write_all(&data).map_err(|e| e.to_string())?;
        socket.disconnect_from_host().map_err(|e| e.to_string())
    });
    client.wait_for_encrypted(WAIT)?;
    let mut all = Vec::new();
    client.read_to_end(&mut all)?;
    assert_eq!(all.len(), 300_000);
    assert!(all.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    assert!(client.core().is_peer_closed_cleanly());
    served.join().map_err(|_| "server thread panicked")??;
    Ok(())
}

/// Answers of sizes that alternate between small and larger than a record arrive exact:
/// after a small message the session decrypts into a small buffer, so a record larger than
/// it is decrypted in parts into a buffer grown on the way.
#[test]
fn answers_alternating_small_and_large_arrive_exact() -> TestResult {
    const SIZES: [usize; 10] = [1, 16_384, 3, 40_000, 1_024, 1_025, 2, 17_000, 64, 70_000];
    let (server, mut client) = pair(SslProtocol::TlsV1_3)?;
    let served = thread::spawn(move || -> ThreadResult<()> {
        let mut socket = accepted(&server)?;
        let mut request = [0u8; 1];
        while socket.read(&mut request).map_err(|e| e.to_string())? > 0 {
            let size = SIZES
                .get(usize::from(request[0]))
                .copied()
                .ok_or("unknown request")?;
            let answer: Vec<u8> = (0..size).map(pattern).collect();
            socket.write_all(&answer).map_err(|e| e.to_string())?;
            socket.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    client.wait_for_encrypted(WAIT)?;
    for round in 0..3 {
        for (index, &size) in SIZES.iter().enumerate() {
            client.write_all(&[index as u8])?;
            client.flush()?;
            let mut answer = vec![0u8; size];
            client.read_exact(&mut answer)?;
            assert!(
                answer.iter().enumerate().all(|(i, &b)| b == pattern(i)),
                "round {round}, answer of {size} bytes"
            );
            assert_eq!(client.bytes_available(), 0, "nothing beyond the answer");
        }
    }
    client.disconnect_from_host()?;
    served.join().map_err(|_| "server thread panicked")??;
    Ok(())
}
