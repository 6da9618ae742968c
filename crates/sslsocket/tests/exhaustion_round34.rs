//! Adversarial review (round 34): resource exhaustion by a hostile peer. Memory and CPU
//! stay bounded, and nothing hangs, whatever the peer does: floods of records our
//! application never reads, a peer that never reads what we write, empty records, warning
//! alerts, KeyUpdates, renegotiation requests, oversized handshake messages, slow and
//! half-open clients. Every wait is bounded. Run on both backends:
//! `SSLSOCKET_BACKEND=openssl cargo test -p sslsocket --all-features --test
//! exhaustion_round34`.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::prelude::*;
use sslsocket::{Error, SslEvent};
use support::raw::{joined, ThreadResult};
use support::{serving, trusting, Blocking, ClientDriver, Pki, Tokio};
use tokio_rustls::rustls;

type TestResult = Result<(), Box<dyn std::error::Error>>;
/// A peer's port and its thread.
type PeerOf<T> = Result<(u16, thread::JoinHandle<ThreadResult<T>>), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// A raw TLS peer whose records we seal ourselves (rustls's secrets, extracted after the
// handshake): empty records, alerts and handshake messages rustls would never send.
// ---------------------------------------------------------------------------------------

/// Seals records with the traffic key of a connection whose secrets were extracted
/// (AES-128-GCM only; TLS 1.3 or TLS 1.2).
struct Sealer {
    key: aws_lc_rs::aead::LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    tls13: bool,
}

impl Sealer {
    fn nonce(&self) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// One record of `kind` (21 alert, 22 handshake, 23 application data) carrying
    /// `payload`.
    fn seal(&mut self, kind: u8, payload: &[u8]) -> Result<Vec<u8>, String> {
        use aws_lc_rs::aead::{Aad, Nonce};
        let nonce = self.nonce();
        let record = if self.tls13 {
            let mut inner = payload.to_vec();
            inner.push(kind);
            let len = u16::try_from(inner.len() + 16).map_err(|e| e.to_string())?;
            let header = [0x17, 0x03, 0x03, (len >> 8) as u8, len as u8];
            self.key
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(header),
                    &mut inner,
                )
                .map_err(|e| e.to_string())?;
            let mut record = header.to_vec();
            record.extend_from_slice(&inner);
            record
        } else {
            let plain_len = u16::try_from(payload.len()).map_err(|e| e.to_string())?;
            let mut aad = self.seq.to_be_bytes().to_vec();
            aad.extend_from_slice(&[kind, 0x03, 0x03, (plain_len >> 8) as u8, plain_len as u8]);
            let mut body = payload.to_vec();
            self.key
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad.as_slice()),
                    &mut body,
                )
                .map_err(|e| e.to_string())?;
            let len = u16::try_from(8 + body.len()).map_err(|e| e.to_string())?;
            let mut record = vec![kind, 0x03, 0x03, (len >> 8) as u8, len as u8];
            record.extend_from_slice(nonce.get(4..).unwrap_or_default());
            record.extend_from_slice(&body);
            record
        };
        self.seq += 1;
        Ok(record)
    }
}

/// A raw rustls server config for `pki`'s localhost leaf: AES-128-GCM only, one protocol
/// version, secrets extractable, no tickets.
fn sealing_config(
    pki: &Pki,
    tls13: bool,
) -> Result<Arc<rustls::ServerConfig>, Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = leaf
        .chain_der
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key_der.clone().into());
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![
        rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256,
        rustls::crypto::aws_lc_rs::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        rustls::crypto::aws_lc_rs::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.enable_secret_extraction = true;
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A raw server for one connection: the handshake, then `script` with a sealer for its
/// records and the TCP socket (write timeout 3 s); the script's result is the thread's.
fn sealing_peer<T: Send + 'static>(
    pki: &Pki,
    tls13: bool,
    script: impl FnOnce(&mut Sealer, &mut TcpStream) -> ThreadResult<T> + Send + 'static,
) -> PeerOf<T> {
    let config = sealing_config(pki, tls13)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let peer = thread::spawn(move || -> ThreadResult<T> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let started = Instant::now();
        while conn.is_handshaking() {
            if started.elapsed() > WAIT {
                return Err("handshake took too long".into());
            }
            while conn.wants_write() {
                conn.write_tls(&mut tcp).map_err(|e| e.to_string())?;
            }
            if !conn.is_handshaking() {
                break;
            }
            if conn.read_tls(&mut tcp).map_err(|e| e.to_string())? == 0 {
                return Err("client left during the handshake".into());
            }
            conn.process_new_packets().map_err(|e| e.to_string())?;
        }
        while conn.wants_write() {
            conn.write_tls(&mut tcp).map_err(|e| e.to_string())?;
        }
        let secrets = conn
            .dangerous_extract_secrets()
            .map_err(|e| e.to_string())?;
        let (seq, traffic) = secrets.tx;
        let (key, iv) = match traffic {
            rustls::ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (key, iv),
            _ => return Err("not AES-128-GCM".into()),
        };
        let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_128_GCM, key.as_ref())
            .map_err(|e| e.to_string())?;
        let mut iv_bytes = [0u8; 12];
        iv_bytes.copy_from_slice(iv.as_ref());
        let mut sealer = Sealer {
            key: aws_lc_rs::aead::LessSafeKey::new(unbound),
            iv: iv_bytes,
            seq,
            tls13,
        };
        script(&mut sealer, &mut tcp)
    });
    Ok((port, peer))
}

/// Reads and drops whatever the client sends, until it ends or `limit` passes.
fn drain_for(tcp: &mut TcpStream, limit: Duration) {
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(200)));
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    while started.elapsed() < limit {
        match tcp.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

fn client_of<D: ClientDriver>(pki: &Pki, port: u16) -> Result<D, Box<dyn std::error::Error>> {
    D::connect_encrypted("localhost", port, trusting(pki)?, WAIT)
        .map_err(|(e, _)| format!("{} client: handshake: {e}", D::NAME).into())
}

// ---------------------------------------------------------------------------------------
// Empty application-data records.
// ---------------------------------------------------------------------------------------

/// Empty records only (5,000), then silence, then a line: both engines refuse a run of
/// more than 32 empty records (rustls `TooManyEmptyFragments`, OpenSSL "record too
/// small"), so the connection must fail cleanly and in time, and never hand out a
/// `wait_for_ready_read` success with nothing to read.
fn empty_record_run<D: ClientDriver>(tls13: bool) -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = sealing_peer(&pki, tls13, |sealer, tcp| {
        let mut burst = Vec::new();
        for _ in 0..5_000 {
            burst.extend(sealer.seal(23, &[])?);
        }
        let _ = tcp.write_all(&burst);
        thread::sleep(Duration::from_millis(1_500));
        let line = sealer.seal(23, b"after the empty ones\n")?;
        let _ = tcp.write_all(&line);
        drain_for(tcp, Duration::from_secs(5));
        Ok(())
    })?;
    let started = Instant::now();
    let mut client = match D::connect_encrypted("localhost", port, trusting(&pki)?, WAIT) {
        Ok(client) => client,
        Err((error, _)) => {
            // Refused during our handshake's last steps: closed, and fast.
            let _ = joined(peer);
            assert!(matches!(error, Error::Tls(_)), "{}: {error}", D::NAME);
            assert!(started.elapsed() < Duration::from_secs(5), "{}", D::NAME);
            return Ok(());
        }
    };
    let waited = client.wait_for_ready_read(Duration::from_secs(5));
    let available = client.socket().bytes_available();
    let failure = client.socket().failure().map(ToString::to_string);
    let elapsed = started.elapsed();
    drop(client);
    let _ = joined(peer);
    assert!(
        !(waited.is_ok() && available == 0),
        "{}: wait_for_ready_read succeeded on empty records with nothing to read",
        D::NAME
    );
    assert!(
        failure.is_some() || available > 0,
        "{}: neither refused nor delivered ({waited:?})",
        D::NAME
    );
    assert!(elapsed < Duration::from_secs(8), "{}: {elapsed:?}", D::NAME);
    Ok(())
}

// Held: a run of 5,000 empty TLS 1.3 records fails the connection cleanly (both engines).
#[test]
fn blocking_a_run_of_empty_tls13_records_is_refused() -> TestResult {
    empty_record_run::<Blocking>(true)
}

// Held: the same on tokio, TLS 1.2.
#[test]
fn tokio_a_run_of_empty_tls12_records_is_refused() -> TestResult {
    empty_record_run::<Tokio>(false)
}

/// Interleaved: one byte, then 16 empty records (under both engines' limit of 32), over
/// and over for 3 s. Every byte arrives, in time, and the connection stays open.
fn bytes_between_empty_records<D: ClientDriver>(tls13: bool) -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = sealing_peer(&pki, tls13, |sealer, tcp| {
        let mut sent = 0usize;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            let mut burst = Vec::new();
            for _ in 0..32 {
                burst.extend(sealer.seal(23, b"x")?);
                for _ in 0..16 {
                    burst.extend(sealer.seal(23, &[])?);
                }
            }
            if tcp.write_all(&burst).is_err() {
                break;
            }
            sent += 32;
        }
        let end = sealer.seal(23, b"\n")?;
        tcp.write_all(&end).map_err(|e| e.to_string())?;
        drain_for(tcp, Duration::from_secs(8));
        Ok(sent)
    })?;
    let mut client: D = client_of(&pki, port)?;
    let started = Instant::now();
    let line = client.next_line(0, Duration::from_secs(15));
    let elapsed = started.elapsed();
    drop(client);
    let sent = joined(peer)??;
    let line = line.map_err(|e| format!("{}: {e}", D::NAME))?;
    assert_eq!(line.len(), sent + 1, "{}: bytes lost", D::NAME);
    assert!(
        elapsed < Duration::from_secs(12),
        "{}: {elapsed:?}",
        D::NAME
    );
    Ok(())
}

// Held: bytes between runs of 16 empty records all arrive.
#[test]
fn blocking_bytes_between_empty_records_all_arrive() -> TestResult {
    bytes_between_empty_records::<Blocking>(true)
}

// Held: the same on tokio, TLS 1.2.
#[test]
fn tokio_bytes_between_empty_tls12_records_all_arrive() -> TestResult {
    bytes_between_empty_records::<Tokio>(false)
}

// ---------------------------------------------------------------------------------------
// Warning alerts.
// ---------------------------------------------------------------------------------------

/// TLS 1.2: a warning alert (user_canceled) after every byte of data, for 3 s. The
/// connection either refuses it (rustls: too many warnings) or keeps going; either way the
/// events nobody drains stay bounded and a final read ends in time.
fn warning_alerts<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = sealing_peer(&pki, false, |sealer, tcp| {
        let mut sent = 0usize;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            let mut burst = Vec::new();
            for _ in 0..64 {
                burst.extend(sealer.seal(23, b"x")?);
                burst.extend(sealer.seal(21, &[1, 90])?);
            }
            if tcp.write_all(&burst).is_err() {
                break;
            }
            sent += 64;
        }
        let end = sealer.seal(23, b"\n")?;
        let _ = tcp.write_all(&end);
        drain_for(tcp, Duration::from_secs(8));
        Ok(sent)
    })?;
    let started = Instant::now();
    let mut client = match D::connect_encrypted("localhost", port, trusting(&pki)?, WAIT) {
        Ok(client) => client,
        Err((error, _)) => {
            // rustls refuses a fifth warning alert: closed, and fast.
            let _ = joined(peer);
            assert!(matches!(error, Error::Tls(_)), "{}: {error}", D::NAME);
            assert!(started.elapsed() < Duration::from_secs(5), "{}", D::NAME);
            return Ok(());
        }
    };
    let mut got = 0usize;
    let mut ended = None;
    while started.elapsed() < Duration::from_secs(12) {
        match client.next_line(0, Duration::from_secs(5)) {
            Ok(line) => {
                got += line.len();
                if line.ends_with(b"\n") {
                    break;
                }
                if line.is_empty() {
                    ended = Some("end of stream".to_string());
                    break;
                }
            }
            Err(e) => {
                ended = Some(e.to_string());
                break;
            }
        }
    }
    let events = client.socket().take_events();
    let alerts = events
        .iter()
        .filter(|e| matches!(e, SslEvent::AlertReceived(_)))
        .count();
    drop(client);
    let sent = joined(peer)??;
    assert!(
        events.len() <= 4096 + 16,
        "{}: {} events kept",
        D::NAME,
        events.len()
    );
    if ended.is_none() {
        assert_eq!(got, sent + 1, "{}: bytes lost", D::NAME);
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{}: still reading after {:?} ({alerts} alerts reported)",
        D::NAME,
        started.elapsed()
    );
    Ok(())
}

// Held: a flood of warning alerts between data keeps events and time bounded.
#[test]
fn blocking_warning_alert_flood_stays_bounded() -> TestResult {
    warning_alerts::<Blocking>()
}

// Held: the same on tokio.
#[test]
fn tokio_warning_alert_flood_stays_bounded() -> TestResult {
    warning_alerts::<Tokio>()
}

// ---------------------------------------------------------------------------------------
// A peer that sends without end to an application that never reads.
// ---------------------------------------------------------------------------------------

/// A raw peer that writes application data as fast as it can for `secs` (its socket
/// writes time out after 2 s when we stop reading); how many plaintext bytes it got out.
fn flooding_peer(pki: &Pki, secs: u64) -> PeerOf<usize> {
    let config = support::raw_server_config(pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let peer = thread::spawn(move || -> ThreadResult<usize> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        tcp.set_write_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        let chunk = vec![b'f'; 64 * 1024];
        let started = Instant::now();
        let mut sent = 0usize;
        while started.elapsed() < Duration::from_secs(secs) {
            conn.writer().write_all(&chunk).map_err(|e| e.to_string())?;
            let mut stuck = false;
            while conn.wants_write() {
                if conn.write_tls(&mut tcp).is_err() {
                    stuck = true;
                    break;
                }
            }
            if stuck {
                break;
            }
            sent += chunk.len();
        }
        Ok(sent)
    });
    Ok((port, peer))
}

/// The client waits for data (`wait_for_ready_read`) again and again but never reads:
/// each wait ends within its limit, what it holds stays within the read buffer size (plus
/// a record), the peer is held back (it cannot get more than the buffer and the kernel's
/// queues out). (Counted through the API: the process's RSS is shared with the tests
/// running beside it.)
fn unread_flood<D: ClientDriver>(read_buffer: usize) -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = flooding_peer(&pki, 6)?;
    let mut client: D = client_of(&pki, port)?;
    client.socket().set_read_buffer_size(read_buffer);
    let limit = if read_buffer == 0 {
        1 << 20
    } else {
        read_buffer
    };
    let started = Instant::now();
    let mut most = 0usize;
    let mut slowest = Duration::ZERO;
    let mut outcomes = Vec::new();
    while started.elapsed() < Duration::from_secs(7) {
        let wait = Instant::now();
        let result = client.wait_for_ready_read(Duration::from_millis(500));
        slowest = slowest.max(wait.elapsed());
        most = most.max(client.socket().bytes_available());
        let outcome = match result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("{:?}", e.socket_error()),
        };
        if outcomes.last() != Some(&outcome) {
            outcomes.push(outcome);
        }
    }
    drop(client);
    let sent = joined(peer)??;
    assert!(
        most <= limit,
        "{}: bytes_available {most} over the read buffer size {limit}",
        D::NAME
    );
    assert!(
        slowest < Duration::from_millis(1_500),
        "{}: a 500 ms wait took {slowest:?}",
        D::NAME
    );
    assert!(
        sent < 48 << 20,
        "{}: the peer got {sent} bytes out to a client that reads nothing \
         (read buffer {limit}); waits: {outcomes:?}",
        D::NAME
    );
    Ok(())
}

// Held: default read buffer (1 MiB), blocking.
#[test]
fn blocking_unread_flood_is_held_back() -> TestResult {
    unread_flood::<Blocking>(0)
}

// Held: default read buffer (1 MiB), tokio.
#[test]
fn tokio_unread_flood_is_held_back() -> TestResult {
    unread_flood::<Tokio>(0)
}

// Held: a 100-byte read buffer, blocking.
#[test]
fn blocking_unread_flood_with_a_small_read_buffer_is_held_back() -> TestResult {
    unread_flood::<Blocking>(100)
}

// Held: a 100-byte read buffer, tokio.
#[test]
fn tokio_unread_flood_with_a_small_read_buffer_is_held_back() -> TestResult {
    unread_flood::<Tokio>(100)
}

// ---------------------------------------------------------------------------------------
// A peer that never reads while our application writes.
// ---------------------------------------------------------------------------------------

/// A raw peer that finishes the handshake (or, with `handshake == false`, never answers
/// the ClientHello) and then reads nothing for `secs`.
fn deaf_peer(pki: &Pki, handshake: bool, secs: u64) -> PeerOf<()> {
    let config = support::raw_server_config(pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let peer = thread::spawn(move || -> ThreadResult<()> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        if handshake {
            let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
            }
        }
        thread::sleep(Duration::from_secs(secs));
        let _ = tcp.shutdown(Shutdown::Both);
        Ok(())
    });
    Ok((port, peer))
}

/// Blocking: `write_all` of 64 MiB with a 1 s I/O timeout to a peer that reads nothing
/// ends with a timeout within a few seconds, and the socket holds at most its 64 KiB of
/// application data plus the engine's bounded output.
fn blocking_write_to_deaf_peer(handshake: bool) -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = deaf_peer(&pki, handshake, 8)?;
    let mut client = sslsocket::blocking::SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    if handshake {
        client.wait_for_encrypted(WAIT)?;
    } else {
        client.wait_for_connected(WAIT)?;
    }
    client.set_io_timeout(Some(Duration::from_secs(1)));
    let data = vec![b'w'; 64 << 20];
    let started = Instant::now();
    let result = client.write_all(&data);
    let elapsed = started.elapsed();
    let queued = client.bytes_to_write();
    let encrypted = client.encrypted_bytes_to_write();
    client.abort();
    let _ = joined(peer);
    assert!(
        result.is_err(),
        "64 MiB written to a peer that reads nothing"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "write_all took {elapsed:?}"
    );
    assert!(queued <= 64 * 1024, "bytes_to_write {queued}");
    assert!(
        encrypted <= 256 * 1024,
        "encrypted_bytes_to_write {encrypted}"
    );
    Ok(())
}

// Held: after the handshake.
#[test]
fn blocking_writes_to_a_peer_that_never_reads_time_out_bounded() -> TestResult {
    blocking_write_to_deaf_peer(true)
}

// Held: during a handshake the server never answers.
#[test]
fn blocking_writes_during_a_stalled_handshake_time_out_bounded() -> TestResult {
    blocking_write_to_deaf_peer(false)
}

/// tokio: `write_all` of 64 MiB under a 1 s `timeout` to a peer that reads nothing stays
/// pending (the timeout ends it), with at most 64 KiB of application data held.
fn tokio_write_to_deaf_peer(handshake: bool) -> TestResult {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new()?;
    let (port, peer) = deaf_peer(&pki, handshake, 8)?;
    let config = trusting(&pki)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (finished, queued, encrypted) = runtime.block_on(async move {
        let mut client = if handshake {
            sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, config)
                .await
                .map_err(|e| e.to_string())?
        } else {
            let mut client =
                sslsocket::tokio::SslSocket::connect_to_host("localhost", port, config)
                    .await
                    .map_err(|e| e.to_string())?;
            client
                .begin_client_encryption()
                .map_err(|e| e.to_string())?;
            client
        };
        let data = vec![b'w'; 64 << 20];
        let finished = tokio::time::timeout(Duration::from_secs(1), client.write_all(&data)).await;
        let queued = client.bytes_to_write();
        let encrypted = client.encrypted_bytes_to_write();
        client.abort();
        Ok::<_, String>((finished.is_ok(), queued, encrypted))
    })?;
    let _ = joined(peer);
    assert!(!finished, "64 MiB written to a peer that reads nothing");
    assert!(queued <= 64 * 1024, "bytes_to_write {queued}");
    assert!(
        encrypted <= 256 * 1024,
        "encrypted_bytes_to_write {encrypted}"
    );
    Ok(())
}

// Held: after the handshake.
#[test]
fn tokio_writes_to_a_peer_that_never_reads_stay_pending_bounded() -> TestResult {
    tokio_write_to_deaf_peer(true)
}

// Held: during a handshake the server never answers.
#[test]
fn tokio_writes_during_a_stalled_handshake_stay_pending_bounded() -> TestResult {
    tokio_write_to_deaf_peer(false)
}

// ---------------------------------------------------------------------------------------
// A legal but large handshake message, fragmented into one-byte records.
// ---------------------------------------------------------------------------------------

/// A raw rustls TLS 1.2 server for one connection whose leaf carries `sans` names (a
/// Certificate message of about 20 KiB), answering one line with "pong\n".
fn tls12_server_with_big_certificate(pki: &Pki, sans: usize) -> PeerOf<()> {
    let names: Vec<String> = (0..sans)
        .map(|i| format!("host-{i:05}.example.test"))
        .collect();
    let mut all: Vec<&str> = vec!["localhost"];
    all.extend(names.iter().map(String::as_str));
    let leaf = pki.issue(&support::LeafSpec::new("localhost", &all))?;
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = leaf
        .chain_der
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key_der.clone().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    let config = Arc::new(config);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> ThreadResult<()> {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut byte = [0u8; 1];
        let mut line = Vec::new();
        while !line.ends_with(b"\n") {
            match tls.read(&mut byte) {
                Ok(1) => line.push(byte[0]),
                Ok(_) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
        tls.write_all(b"pong\n").map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        drain_for(&mut tls.sock, Duration::from_secs(3));
        Ok(())
    });
    Ok((port, server))
}

/// Forwards between a client and `upstream`; the server's plaintext handshake records
/// (before its ChangeCipherSpec) are cut into one-byte records, which TLS 1.2 allows.
fn fragmenting_proxy(upstream: u16) -> Result<u16, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream)) else {
            return;
        };
        let _ = client.set_read_timeout(Some(Duration::from_secs(15)));
        let _ = server.set_read_timeout(Some(Duration::from_secs(15)));
        let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else {
            return;
        };
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = c_read.read(&mut buf) {
                if n == 0 || s_write.write_all(buf.get(..n).unwrap_or_default()).is_err() {
                    break;
                }
            }
            let _ = s_write.shutdown(Shutdown::Write);
        });
        let (mut s_read, mut c_write) = (server, client);
        let mut pending = Vec::new();
        let mut split = true;
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = s_read.read(&mut buf) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(buf.get(..n).unwrap_or_default());
            let mut out = Vec::new();
            while pending.len() >= 5 {
                let len = usize::from(u16::from_be_bytes([pending[3], pending[4]]));
                if pending.len() < 5 + len {
                    break;
                }
                let record: Vec<u8> = pending.drain(..5 + len).collect();
                if record[0] == 20 {
                    split = false;
                }
                if split && record[0] == 22 {
                    for byte in record.iter().skip(5) {
                        out.extend_from_slice(&[22, record[1], record[2], 0, 1, *byte]);
                    }
                } else {
                    out.extend_from_slice(&record);
                }
            }
            if c_write.write_all(&out).is_err() {
                break;
            }
        }
        let _ = c_write.shutdown(Shutdown::Write);
    });
    Ok(port)
}

/// A TLS 1.2 server whose handshake flight (a 20 KiB Certificate among it) comes in
/// one-byte records: legal, if odd. The handshake must finish (OpenSSL's own client and
/// rustls's buffered client do), not stall until the caller's timeout.
fn fragmented_flight<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let (upstream, server) = tls12_server_with_big_certificate(&pki, 800)?;
    let port = fragmenting_proxy(upstream)?;
    let started = Instant::now();
    let result = D::connect_encrypted("localhost", port, trusting(&pki)?, WAIT);
    let elapsed = started.elapsed();
    let answer = match result {
        Ok(mut client) => {
            let _ = client.write_all(b"ping\n");
            let line = client.next_line(0, Duration::from_secs(5));
            drop(client);
            line.map_err(|e| e.to_string())
        }
        Err((error, _)) => Err(format!("{error} after {elapsed:?}")),
    };
    let _ = joined(server);
    assert_eq!(
        answer,
        Ok(b"pong\n".to_vec()),
        "{}: a Certificate message in one-byte records",
        D::NAME
    );
    Ok(())
}

// Found in review (left, round 34): rustls backend (both drivers): a TLS 1.2 server flight whose 20 KiB Certificate
// message comes in one-byte records (legal) fails at once with "message buffer full"
// (backend/rustls/unbuffered.rs:740, HANDSHAKE_INPUT_LIMIT counts raw record bytes, and
// rustls's deframer can discard nothing until the message is whole: 20 KiB of message is
// 120 KiB of records). The OpenSSL backend completes it. README promises a handshake
// message up to 64 KiB. Fails closed and fast (not a hang); rustls's own buffered API has
// the same raw 64 KiB limit. Right: accept it (or document the limit as a backend
// difference).
// Left (round 34): the limit counts record bytes, as rustls's own buffered API does (a
// tighter 64 KiB there); documented in the README. Raising it would let every handshaking
// connection hold several times more input.
#[test]
#[ignore = "left (round 34): on rustls a handshake message in records of a few bytes costs several times its size in record bytes; the input limit counts record bytes (as rustls's own, which is tighter), so a 20 KiB message in one-byte records is refused with \"message buffer full\" (README); the OpenSSL backend takes it"]
fn blocking_a_flight_in_one_byte_records_completes() -> TestResult {
    fragmented_flight::<Blocking>()
}

// Found in review (left, round 34): the same on the tokio driver (rustls backend).
#[test]
#[ignore = "left (round 34): on rustls a handshake message in records of a few bytes costs several times its size in record bytes; the input limit counts record bytes (as rustls's own, which is tighter), so a 20 KiB message in one-byte records is refused with \"message buffer full\" (README); the OpenSSL backend takes it"]
fn tokio_a_flight_in_one_byte_records_completes() -> TestResult {
    fragmented_flight::<Tokio>()
}

// ---------------------------------------------------------------------------------------
// TLS 1.2 renegotiation asked for again and again.
// ---------------------------------------------------------------------------------------

/// `openssl s_client -tls1_2` asks our blocking server to renegotiate (its `R` command, 30
/// times), then sends a line. Our server refuses renegotiation on both backends (a
/// no_renegotiation warning), to which s_client answers with a fatal handshake_failure:
/// the server's read must end in time, with the line or a TLS error.
// Held: both backends (the read ends at once with the client's HandshakeFailure alert).
#[test]
fn repeated_renegotiation_requests_end_in_time() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = sslsocket::blocking::SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let worker = thread::spawn(move || -> ThreadResult<(String, Duration)> {
        let mut socket = match server.next_connection(WAIT).map_err(|e| e.to_string())? {
            Ok(socket) => socket,
            Err(failed) => {
                return Ok((
                    format!("handshake failed: {}", failed.error_string()),
                    Duration::ZERO,
                ))
            }
        };
        let started = Instant::now();
        let line = socket.next_line(0, Duration::from_secs(10));
        let outcome = match line {
            Ok(line) => String::from_utf8_lossy(&line).into_owned(),
            Err(e) => format!("error: {e}"),
        };
        Ok((outcome, started.elapsed()))
    });
    let mut client = support::OpensslClient::spawn(port, &["-tls1_2", "-servername", "localhost"])?;
    thread::sleep(Duration::from_millis(500));
    for _ in 0..30 {
        if client.write_stdin(b"R\n").is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = client.write_stdin(b"hello\n");
    let (outcome, elapsed) = joined(worker)??;
    client.kill();
    assert!(
        elapsed < Duration::from_secs(11),
        "{outcome} after {elapsed:?}"
    );
    assert!(
        outcome == "hello\n" || outcome.starts_with("error: ") || outcome.starts_with("handshake"),
        "{outcome}"
    );
    Ok(())
}
