//! Data paths of the blocking socket, ours against ours on loopback: writes queued before
//! the handshake, a 64 MiB echo, lines split over many records, nothing lost on close,
//! and the read buffer pushing back on the peer.

mod support;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{SocketState, SslCertificate, SslConfiguration, SslEvent};
use support::{serving, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type ThreadResult<T> = Result<T, String>;

const WAIT: Duration = Duration::from_secs(10);

/// A server for "localhost" and a client configuration that trusts it.
fn server_and_client_config() -> Result<(SslServer, SslConfiguration), Box<dyn std::error::Error>> {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let mut client = SslConfiguration::default();
    client.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    Ok((server, client))
}

/// The next connection of `server`, with its I/O bounded.
fn accepted(server: &SslServer) -> ThreadResult<SslSocket> {
    let mut socket = server
        .next_connection(WAIT)
        .map_err(|e| e.to_string())?
        .map_err(|failed| format!("handshake failed: {}", failed.error_string()))?;
    socket.set_io_timeout(Some(WAIT));
    Ok(socket)
}

/// Reads until the end of stream; the bytes and whether the peer closed cleanly.
fn read_everything(socket: &mut SslSocket) -> ThreadResult<(Vec<u8>, bool)> {
    let mut all = Vec::new();
    socket.read_to_end(&mut all).map_err(|e| e.to_string())?;
    Ok((all, socket.core().is_peer_closed_cleanly()))
}

fn pattern(i: usize) -> u8 {
    (i ^ (i >> 11) ^ (i >> 19)) as u8
}

fn sum_of(events: &[SslEvent], pick: impl Fn(&SslEvent) -> Option<usize>) -> usize {
    events.iter().filter_map(pick).sum()
}

#[test]
fn writes_made_right_after_connect_to_host_encrypted_arrive_in_order() -> TestResult {
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();
    let served = thread::spawn(move || read_everything(&mut accepted(&server)?));

    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    // Not connected yet: Qt buffers these and sends them, encrypted, after `encrypted`.
    for part in [&b"one\n"[..], b"two\n", b"three\n"] {
        assert_eq!(client.write(part)?, part.len());
    }
    assert_eq!(client.bytes_to_write(), 14);
    client.wait_for_encrypted(WAIT)?;
    client.flush()?;
    client.close()?;

    let (received, clean) = served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(String::from_utf8_lossy(&received), "one\ntwo\nthree\n");
    assert!(clean);
    Ok(())
}

#[test]
fn writes_made_between_connected_and_encrypted_arrive_in_order() -> TestResult {
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();
    let served = thread::spawn(move || read_everything(&mut accepted(&server)?));

    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_connected(WAIT)?;
    assert!(!client.is_encrypted());
    let mut expected = Vec::new();
    for i in 0..100 {
        let part = format!("part {i}\n");
        client.write_all(part.as_bytes())?;
        expected.extend_from_slice(part.as_bytes());
    }
    assert!(!client.is_encrypted());
    assert_eq!(client.bytes_to_write(), expected.len(), "queued, not sent");
    client.wait_for_encrypted(WAIT)?;
    client.wait_for_bytes_written(WAIT)?;
    assert_eq!(client.bytes_to_write(), 0);
    client.close()?;

    let (received, clean) = served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(received, expected);
    assert!(clean);
    let events = client.take_events();
    let encrypted = events.iter().position(|e| *e == SslEvent::Encrypted);
    let first_written = events
        .iter()
        .position(|e| matches!(e, SslEvent::BytesWritten(_)));
    assert!(
        encrypted.is_some() && encrypted < first_written,
        "{events:?}"
    );
    let plain_written = sum_of(&events, |e| match e {
        SslEvent::BytesWritten(n) => Some(*n),
        _ => None,
    });
    assert_eq!(plain_written, expected.len(), "{events:?}");
    Ok(())
}

#[test]
fn a_64_mib_echo_round_trip_is_byte_exact() -> TestResult {
    const TOTAL: usize = 64 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    const WINDOW: usize = 512 * 1024;
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();

    let served = thread::spawn(move || -> ThreadResult<usize> {
        let mut socket = accepted(&server)?;
        let mut buf = vec![0u8; CHUNK];
        let mut echoed = 0;
        loop {
            let n = socket
                .read(&mut buf)
                .map_err(|e| format!("server read: {e}"))?;
            if n == 0 {
                break;
            }
            socket
                .write_all(&buf[..n])
                .map_err(|e| format!("server write: {e}"))?;
            echoed += n;
        }
        socket.close().map_err(|e| e.to_string())?;
        Ok(echoed)
    });

    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;

    let started = Instant::now();
    let deadline = started + Duration::from_secs(40);
    let mut chunk = vec![0u8; CHUNK];
    let (mut sent, mut received) = (0usize, 0usize);
    while received < TOTAL {
        if Instant::now() >= deadline {
            return Err(format!("stalled: sent {sent}, received {received}").into());
        }
        if sent < TOTAL && sent - received < WINDOW {
            let n = CHUNK.min(TOTAL - sent);
            for (k, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(sent + k);
            }
            client.write_all(&chunk[..n])?;
            sent += n;
        } else {
            match client.wait_for_ready_read(Duration::from_secs(1)) {
                Ok(()) | Err(sslsocket::Error::Timeout(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let back = client.read_all();
        if let Some(k) = back
            .iter()
            .enumerate()
            .position(|(k, b)| *b != pattern(received + k))
        {
            return Err(format!("echoed byte {} differs", received + k).into());
        }
        received += back.len();
    }
    assert_eq!(received, TOTAL);
    client.close()?;
    let echoed = served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(echoed, TOTAL);
    eprintln!("64 MiB echo took {:?}", started.elapsed());
    Ok(())
}

#[test]
fn read_line_joins_a_line_sent_one_byte_per_record() -> TestResult {
    const LINE: &[u8] = b"a line split into one TLS record per byte\n";
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();
    let (go, wait_go) = mpsc::channel::<()>();

    let served = thread::spawn(move || -> ThreadResult<usize> {
        let mut socket = accepted(&server)?;
        socket.take_events();
        let (head, tail) = LINE.split_at(7);
        for byte in head {
            socket.write_all(&[*byte]).map_err(|e| e.to_string())?;
            socket.flush().map_err(|e| e.to_string())?;
        }
        wait_go.recv_timeout(WAIT).map_err(|e| e.to_string())?;
        for byte in tail {
            socket.write_all(&[*byte]).map_err(|e| e.to_string())?;
            socket.flush().map_err(|e| e.to_string())?;
        }
        let tls_bytes = sum_of(&socket.take_events(), |e| match e {
            SslEvent::EncryptedBytesWritten(n) => Some(*n),
            _ => None,
        });
        socket.close().map_err(|e| e.to_string())?;
        Ok(tls_bytes)
    });

    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let deadline = Instant::now() + WAIT;
    // `peek` moves decrypted bytes into the socket's own buffer, so the wait below always
    // has room to take the next record.
    while client.peek(100).len() < 7 && Instant::now() < deadline {
        match client.wait_for_ready_read(Duration::from_millis(200)) {
            Ok(()) | Err(sslsocket::Error::Timeout(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(client.bytes_available(), 7);
    assert!(!client.can_read_line(), "no newline yet");
    assert_eq!(client.peek(100), &LINE[..7]);
    go.send(())?;

    while !client.can_read_line() && Instant::now() < deadline {
        match client.wait_for_ready_read(Duration::from_millis(200)) {
            Ok(()) | Err(sslsocket::Error::Timeout(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(client.read_line(0), LINE);
    assert_eq!(client.bytes_available(), 0);
    let tls_bytes = served.join().map_err(|_| "server thread panicked")??;
    // One record per byte: at least 5 bytes of header and 16 of tag around each.
    assert!(
        tls_bytes >= LINE.len() * 22,
        "{tls_bytes} TLS bytes for {} one-byte records",
        LINE.len()
    );
    Ok(())
}

#[test]
fn close_right_after_an_8_mib_write_delivers_every_byte_both_ways() -> TestResult {
    const SIZE: usize = 8 * 1024 * 1024;
    let data: Vec<u8> = (0..SIZE).map(pattern).collect();

    // Client writes, then closes at once; our server counts.
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();
    let served = thread::spawn(move || read_everything(&mut accepted(&server)?));
    let mut client = SslSocket::with_configuration(config.clone());
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    client.write_all(&data)?;
    client.close()?;
    let (received, clean) = served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(received.len(), SIZE);
    assert!(received == data, "the bytes differ");
    assert!(clean);

    // Server writes, then closes at once; our client counts.
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();
    let to_send = data.clone();
    let served = thread::spawn(move || -> ThreadResult<()> {
        let mut socket = accepted(&server)?;
        socket.write_all(&to_send).map_err(|e| e.to_string())?;
        socket.close().map_err(|e| e.to_string())
    });
    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let (received, clean) = read_everything(&mut client)?;
    served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(received.len(), SIZE);
    assert!(received == data, "the bytes differ");
    assert!(clean);
    Ok(())
}

#[test]
fn a_ten_byte_read_buffer_holds_back_a_64_kib_message_until_it_is_read() -> TestResult {
    const SIZE: usize = 64 * 1024;
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();
    let served = thread::spawn(move || -> ThreadResult<()> {
        let mut socket = accepted(&server)?;
        let data: Vec<u8> = (0..SIZE).map(pattern).collect();
        socket.write_all(&data).map_err(|e| e.to_string())?;
        socket.close().map_err(|e| e.to_string())
    });

    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.set_read_buffer_size(10);
    assert_eq!(client.read_buffer_size(), 10);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;

    // Let the server write everything it can while we do not read.
    let until = Instant::now() + Duration::from_millis(500);
    let mut most = 0;
    while Instant::now() < until {
        match client.wait_for_ready_read(Duration::from_millis(50)) {
            Ok(()) | Err(sslsocket::Error::Timeout(_)) => {}
            // The read buffer is full: nothing can move until we read (both drivers).
            Err(sslsocket::Error::Misuse(_)) => {
                most = most.max(client.bytes_available());
                break;
            }
            Err(e) => return Err(e.into()),
        }
        most = most.max(client.bytes_available());
    }
    assert!(most > 0, "something arrived");
    assert!(
        most < SIZE,
        "{most} bytes buffered despite a 10-byte read buffer"
    );
    eprintln!("at most {most} bytes buffered with a 10-byte read buffer");

    let mut all = client.read_all();
    assert!(all.len() < SIZE);
    client.set_read_buffer_size(0);
    client.read_to_end(&mut all)?;
    assert_eq!(all.len(), SIZE);
    assert!(all.iter().enumerate().all(|(i, b)| *b == pattern(i)));
    served.join().map_err(|_| "server thread panicked")??;
    Ok(())
}

#[test]
fn wait_for_ready_read_waits_for_more_data_while_earlier_data_is_unread() -> TestResult {
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();
    let (go, wait_go) = mpsc::channel::<()>();
    let served = thread::spawn(move || -> ThreadResult<()> {
        let mut socket = accepted(&server)?;
        socket.write_all(b"part one\n").map_err(|e| e.to_string())?;
        socket.flush().map_err(|e| e.to_string())?;
        wait_go.recv_timeout(WAIT).map_err(|e| e.to_string())?;
        socket.write_all(b"part two\n").map_err(|e| e.to_string())?;
        socket.close().map_err(|e| e.to_string())
    });

    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    client.wait_for_ready_read(WAIT)?;
    assert_eq!(client.bytes_available(), 9);
    go.send(())?;
    // Qt's loop `while (bytesAvailable() < n) waitForReadyRead()`: the second wait must
    // wait for the second part, not give up because the first is still unread.
    let started = Instant::now();
    let second = client.wait_for_ready_read(WAIT);
    assert!(
        second.is_ok(),
        "second wait: {second:?} after {:?}",
        started.elapsed()
    );
    assert_eq!(client.bytes_available(), 18);
    assert_eq!(client.read_all(), b"part one\npart two\n");
    served.join().map_err(|_| "server thread panicked")??;
    Ok(())
}

#[test]
fn close_drops_unread_data_and_leaves_nothing_pending() -> TestResult {
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();
    let served = thread::spawn(move || -> ThreadResult<()> {
        let mut socket = accepted(&server)?;
        socket.write_all(&[b'u'; 100]).map_err(|e| e.to_string())?;
        socket.flush().map_err(|e| e.to_string())?;
        // Wait for the client's close, then close too.
        let mut rest = Vec::new();
        socket.read_to_end(&mut rest).map_err(|e| e.to_string())?;
        socket.close().map_err(|e| e.to_string())
    });

    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let deadline = Instant::now() + WAIT;
    while client.peek(1000).len() < 100 && Instant::now() < deadline {
        match client.wait_for_ready_read(Duration::from_millis(200)) {
            Ok(()) | Err(sslsocket::Error::Timeout(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(client.bytes_available(), 100);
    client.close()?;
    assert_eq!(client.bytes_available(), 0);
    assert_eq!(client.bytes_to_write(), 0);
    assert_eq!(client.state(), SocketState::UnconnectedState);
    assert!(client.at_end());
    assert!(client.read_all().is_empty());
    served.join().map_err(|_| "server thread panicked")??;
    Ok(())
}
