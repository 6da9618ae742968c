//! A misbehaving or hostile peer (adversarial review, round 32) against the library's promises
//! ("memory per connection stays bounded whatever the peer does", "bad input gets a clear
//! error", "truncation is reported").
//!
//! Every test here asserts the promised behaviour and failed before its fix (the defect is
//! described on each). Every wait is bounded (socket timeouts, `tokio::time::timeout`, a
//! peer that stops after a fixed time), so nothing hangs the run. Run on both backends:
//! `SSLSOCKET_BACKEND=openssl cargo test -p sslsocket --all-features --test
//! peer_misbehaviour`.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use support::raw::{joined, raw_peer, ThreadResult};
use support::{trusting, Blocking, ClientDriver, Pki, Tokio};
use tokio_rustls::rustls;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// The most TLS output we accept a client to hold for a peer that reads nothing (the
/// engines' own bound on written data is 64 KiB; this leaves room for 8 times that).
const OUTPUT_BOUND: usize = 512 * 1024;

/// How long the flooding peer keeps sending.
const FLOOD_SECS: u64 = 5;

fn peer_end(peer: thread::JoinHandle<ThreadResult<()>>) -> Result<(), String> {
    joined(peer)?
}

// ---------------------------------------------------------------------------------------
// Was a defect: a peer that asks for KeyUpdates and never reads makes our output grow without
// bound (OpenSSL backend, both drivers).
// ---------------------------------------------------------------------------------------

/// A TLS 1.3 peer that never reads: one byte of application data (which also resets
/// rustls's budget of key-update requests), then a KeyUpdate asking for one back, over and
/// over, for `secs` (or until `stop`, or until its socket stays full for 2 s).
fn key_update_flood(
    secs: u64,
    stop: Arc<AtomicBool>,
) -> impl FnOnce(rustls::StreamOwned<rustls::ServerConnection, TcpStream>) -> ThreadResult<()> {
    move |mut tls| {
        tls.sock
            .set_write_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(secs) && !stop.load(Ordering::Relaxed) {
            for _ in 0..256 {
                tls.conn
                    .writer()
                    .write_all(b"x")
                    .map_err(|e| e.to_string())?;
                tls.conn.refresh_traffic_keys().map_err(|e| e.to_string())?;
            }
            while tls.conn.wants_write() {
                if tls.conn.write_tls(&mut tls.sock).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Was a defect (OpenSSL backend; blocking driver). A peer sends one byte and a KeyUpdate with
/// `update_requested`, again and again, and never reads. Our client, reading what arrives,
/// answers every request with a KeyUpdate of its own (OpenSSL answers each one from inside
/// `SSL_read`, into the session's memory output). Once the kernel's buffers are full those
/// answers pile up in the session's output: `encrypted_bytes_to_write()` passes 2 MiB
/// within seconds and keeps growing for as long as the peer goes on (about 27 bytes held
/// per 50 bytes received). The core keeps taking input whatever the engine has waiting to
/// go out (core/transport.rs `wants_read`/`has_room_for_input` look only at the plaintext;
/// backend/openssl/session.rs `wants_read` likewise, and its `OUTGOING_LIMIT` only bounds
/// what `write_plain` encrypts), and the drivers read while their sends are blocked
/// (blocking/socket.rs `drive_into`; tokio/pump.rs `poll_until`/`poll_receive`). The
/// rustls backend holds: rustls answers a KeyUpdate only with the next data we write.
/// Now: the core takes no input while 256 KiB of TLS output waits
/// (`OUTPUT_LIMIT_FOR_INPUT`), and the reader waits for the socket to take some.
#[test]
fn blocking_output_stays_bounded_under_a_key_update_flood_from_a_peer_that_never_reads(
) -> TestResult {
    let pki = Pki::new()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (port, peer) = raw_peer(&pki, key_update_flood(FLOOD_SECS, Arc::clone(&stop)))?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    client.set_io_timeout(Some(Duration::from_secs(3)));
    let mut buf = [0u8; 4096];
    let mut most = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(FLOOD_SECS + 4) {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        most = most.max(client.encrypted_bytes_to_write());
        if most > 4 * OUTPUT_BOUND {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    client.abort();
    let _ = peer_end(peer);
    assert!(
        most <= OUTPUT_BOUND,
        "the client held {most} bytes of TLS output (KeyUpdate answers) for a peer that \
         reads nothing"
    );
    Ok(())
}

/// Was a defect (OpenSSL backend; tokio driver). The same through `AsyncRead`.
#[test]
fn tokio_output_stays_bounded_under_a_key_update_flood_from_a_peer_that_never_reads() -> TestResult
{
    use tokio::io::AsyncReadExt;
    let pki = Pki::new()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (port, peer) = raw_peer(&pki, key_update_flood(FLOOD_SECS, Arc::clone(&stop)))?;
    let config = trusting(&pki)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let most = runtime.block_on(async move {
        let mut client =
            sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, config)
                .await
                .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4096];
        let mut most = 0usize;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(FLOOD_SECS + 4) {
            match tokio::time::timeout(Duration::from_secs(3), client.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => break,
            }
            most = most.max(client.encrypted_bytes_to_write());
            if most > 4 * OUTPUT_BOUND {
                break;
            }
        }
        client.abort();
        Ok::<_, String>(most)
    })?;
    stop.store(true, Ordering::Relaxed);
    let _ = peer_end(peer);
    assert!(
        most <= OUTPUT_BOUND,
        "the client held {most} bytes of TLS output (KeyUpdate answers) for a peer that \
         reads nothing"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Was a defect: `next_line` reports a connection that failed on a fatal alert as a clean end of
// stream (both backends, both drivers).
// ---------------------------------------------------------------------------------------

/// After a line: a fatal alert (bad_record_mac, made by feeding the peer's own engine a
/// record that does not decrypt, so it is properly encrypted), then the end of TCP.
fn line_then_fatal_alert_then_fin(
    mut tls: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
) -> ThreadResult<()> {
    tls.write_all(b"one\n").map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    thread::sleep(Duration::from_millis(300));
    let mut bad = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    bad.extend_from_slice(&[0x41; 0x20]);
    let _ = tls.conn.read_tls(&mut &bad[..]);
    let _ = tls.conn.process_new_packets();
    while tls.conn.wants_write() {
        if tls.conn.write_tls(&mut tls.sock).is_err() {
            break;
        }
    }
    let _ = tls.sock.shutdown(Shutdown::Write);
    let mut rest = Vec::new();
    let _ = tls.sock.read_to_end(&mut rest);
    Ok(())
}

/// The peer sends "one\n", then (300 ms later) a fatal alert and FIN, while the client
/// waits in `next_line`. `next_line` documents "an empty vector means the end of stream";
/// a connection that ended on a fatal alert did not end cleanly, so after the line every
/// `next_line` must be an error (as `read`, `read_to_end`, `wait_for_ready_read` and the
/// tokio `AsyncRead` all report it).
fn next_line_after_a_fatal_alert_is_an_error<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = raw_peer(&pki, line_then_fatal_alert_then_fin)?;
    let mut client =
        D::connect_encrypted("localhost", port, trusting(&pki)?, WAIT).map_err(|(e, _)| e)?;
    let first = client.next_line(100, Duration::from_secs(3))?;
    assert_eq!(first, b"one\n");
    let mut answers = Vec::new();
    for _ in 0..2 {
        answers.push(
            client
                .next_line(100, Duration::from_secs(3))
                .map(|line| String::from_utf8_lossy(&line).into_owned()),
        );
    }
    let error = client.socket().error();
    drop(client);
    let _ = peer_end(peer);
    assert!(
        answers.iter().all(Result::is_err),
        "{}: next_line after the peer's fatal alert gave {answers:?} (socket error \
         {error:?}): Ok(\"\") is documented as the end of stream",
        D::NAME
    );
    Ok(())
}

/// Was a defect (both backends; blocking driver). When the alert arrives while `next_line`
/// waits, the call returns `Ok(vec![])`, the documented clean end of stream; only the
/// call after it reports the failure. blocking/socket.rs `next_line`: `line_ready` holds
/// once the socket is unconnected, the wait is `Ok`, and only `is_truncated()` is
/// checked, not `failure()`.
#[test]
fn blocking_next_line_after_a_fatal_alert_is_an_error() -> TestResult {
    next_line_after_a_fatal_alert_is_an_error::<Blocking>()
}

/// Was a defect (both backends; tokio driver). Every `next_line` after the alert returns
/// `Ok(vec![])`, for ever: the failure is never reported by it (tokio/socket.rs
/// `next_line`, same cause; the tokio driver drops the stream on failure before any EOF,
/// so the blocking driver's accidental second-call error does not happen either). The
/// same with a record that does not decrypt followed by FIN (our engine fails, no alert
/// received).
#[test]
fn tokio_next_line_after_a_fatal_alert_is_an_error() -> TestResult {
    next_line_after_a_fatal_alert_is_an_error::<Tokio>()
}
