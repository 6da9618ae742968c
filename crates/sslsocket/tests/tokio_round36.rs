//! Adversarial review of the tokio driver (round 36, review D2): the AsyncRead/AsyncWrite
//! contracts after closes by either side (flush reports lost bytes since round 36, and
//! must stay Ok when everything was delivered), split halves in two tasks on both runtime
//! flavours, cancellation at every await point, 16 MiB against a slow reader with the
//! heap measured, lines across records, events under concurrent use, a socket moved
//! between runtimes. Both backends (`SSLSOCKET_BACKEND=openssl`). Every wait is bounded.

mod support;

use std::time::{Duration, Instant};

use sslsocket::prelude::*;
use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::{SslCertificate, SslConfiguration, SslEvent, SslKey, SslProtocol};
use support::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const STEP: Duration = Duration::from_secs(10);

/// The process's resident memory in bytes (Linux), 0 where unknown.
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Tests of this file run one at a time, so that the memory measured is one test alone.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ----- helpers --------------------------------------------------------------------------

fn server_configuration(pki: &Pki) -> Result<SslConfiguration, BoxError> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let chain = leaf
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(chain)
        .set_private_key(SslKey::from_der(&leaf.key_der)?)
        .set_system_ca_on_demand(false);
    Ok(configuration)
}

fn client_configuration(pki: &Pki) -> Result<SslConfiguration, BoxError> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?])
        .set_system_ca_on_demand(false);
    Ok(configuration)
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// A connected, encrypted pair of our tokio sockets: (client, server).
async fn pair_with(
    pki: &Pki,
    client: SslConfiguration,
) -> Result<(SslSocket, SslSocket), BoxError> {
    let server = SslServer::bind("127.0.0.1:0", server_configuration(pki)?).await?;
    let port = server.local_addr().port();
    let accepted = tokio::spawn(async move { server.accept_encrypted().await });
    let client = timeout(
        STEP,
        SslSocket::connect_to_host_encrypted("localhost", port, client),
    )
    .await??;
    let server_socket = timeout(STEP, accepted).await???;
    Ok((client, server_socket))
}

async fn pair(pki: &Pki) -> Result<(SslSocket, SslSocket), BoxError> {
    pair_with(pki, client_configuration(pki)?).await
}

/// Reads everything until the end of stream; `Err` on a truncation or failure.
async fn read_all_of<R: tokio::io::AsyncRead + Unpin>(socket: &mut R) -> Result<Vec<u8>, BoxError> {
    let mut received = Vec::new();
    timeout(Duration::from_secs(60), socket.read_to_end(&mut received)).await??;
    Ok(received)
}

/// Reads slowly: `chunk` bytes, then a pause, until the end of stream.
async fn read_slowly<R: tokio::io::AsyncRead + Unpin>(
    socket: &mut R,
    chunk: usize,
    pause: Duration,
) -> Result<Vec<u8>, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut received = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        assert!(Instant::now() < deadline, "slow reading timed out");
        let n = timeout(STEP, socket.read(&mut buf)).await??;
        if n == 0 {
            return Ok(received);
        }
        received.extend_from_slice(buf.get(..n).unwrap_or_default());
        tokio::time::sleep(pause).await;
    }
}

// ----- flush and shutdown after closes by either side ------------------------------------

// Held: the peer read all we wrote and closed cleanly (close_notify, FIN); our read saw the
// clean end. A flush after that is Ok (everything was delivered), a shutdown is Ok, and a
// second shutdown and flush are Ok too; a write is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_and_shutdown_after_the_peers_clean_close_are_ok() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let data = pattern(300_000, 1);
    let expected = data.clone();
    let served = tokio::spawn(async move {
        let mut got = vec![0u8; expected.len()];
        timeout(STEP, server.read_exact(&mut got)).await??;
        assert!(got == expected, "the server got other bytes");
        timeout(STEP, server.disconnect_from_host()).await??;
        Ok::<_, BoxError>(())
    });
    timeout(STEP, client.write_all(&data)).await??;
    timeout(STEP, client.flush()).await??;
    let rest = read_all_of(&mut client).await?;
    assert!(rest.is_empty());
    timeout(STEP, served).await???;
    timeout(STEP, client.flush()).await??;
    timeout(STEP, client.shutdown()).await??;
    timeout(STEP, client.shutdown()).await??;
    timeout(STEP, client.flush()).await??;
    assert!(timeout(STEP, client.write(b"x")).await?.is_err());
    Ok(())
}

// Held: the peer read everything, sent close_notify and dropped its socket (our answering
// close_notify meets a closed socket). Without reading first, our flush is Ok, and a
// graceful close afterwards is Ok: nothing we wrote was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_and_close_after_the_peer_closed_and_vanished_are_ok() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let data = pattern(200_000, 2);
    let len = data.len();
    let served = tokio::spawn(async move {
        let mut got = vec![0u8; len];
        timeout(STEP, server.read_exact(&mut got)).await??;
        timeout(STEP, server.shutdown()).await??;
        drop(server);
        Ok::<_, BoxError>(got)
    });
    timeout(STEP, client.write_all(&data)).await??;
    timeout(STEP, client.flush()).await??;
    let got = timeout(STEP, served).await???;
    assert!(got == data, "the server got other bytes");
    tokio::time::sleep(Duration::from_millis(200)).await;
    timeout(STEP, client.flush()).await??;
    let rest = read_all_of(&mut client).await?;
    assert!(rest.is_empty());
    timeout(STEP, client.flush()).await??;
    timeout(STEP, client.disconnect_from_host()).await??;
    timeout(STEP, client.flush()).await??;
    Ok(())
}

// Held: 4 MiB written, then our shutdown at once while the peer reads slowly: shutdown
// finishes once all is out, the peer gets every byte and a clean end, answers, and a flush
// and a graceful close after the peer's answer are Ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_after_our_shutdown_under_back_pressure_is_ok() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let data = pattern(4 << 20, 3);
    let served = tokio::spawn(async move {
        let got = read_slowly(&mut server, 64 * 1024, Duration::from_millis(2)).await?;
        timeout(STEP, server.disconnect_from_host()).await??;
        Ok::<_, BoxError>(got)
    });
    timeout(Duration::from_secs(60), client.write_all(&data)).await??;
    timeout(Duration::from_secs(60), client.shutdown()).await??;
    let got = timeout(Duration::from_secs(120), served).await???;
    assert!(
        got.len() == data.len() && got == data,
        "the server got {} bytes",
        got.len()
    );
    let rest = read_all_of(&mut client).await?;
    assert!(rest.is_empty());
    timeout(STEP, client.flush()).await??;
    timeout(STEP, client.disconnect_from_host()).await??;
    timeout(STEP, client.flush()).await??;
    Ok(())
}

// Held: the peer sends close_notify first (its shutdown) and keeps reading, while our
// writing half writes 2 MiB and our reading half (another task) sees the peer's end. Our
// side then closes: what each write reported taken reaches the peer, in order, and a flush
// after that is Ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peers_close_notify_mid_write_loses_nothing_reported_written() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (client, mut server) = pair(&pki).await?;
    let served = tokio::spawn(async move {
        timeout(STEP, server.shutdown()).await??;
        let got = read_slowly(&mut server, 32 * 1024, Duration::from_millis(1)).await?;
        Ok::<_, BoxError>(got)
    });
    let (mut rd, mut wr) = tokio::io::split(client);
    let reader = tokio::spawn(async move {
        let got = read_all_of(&mut rd).await?;
        Ok::<_, BoxError>((got, rd))
    });
    let data = pattern(2 << 20, 4);
    let mut taken = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while taken < data.len() {
        assert!(Instant::now() < deadline, "writing timed out");
        match timeout(STEP, wr.write(data.get(taken..).unwrap_or_default())).await? {
            Ok(0) => return Err("write returned 0 for a non-empty buffer".into()),
            Ok(n) => taken += n,
            Err(_) => break,
        }
    }
    // A flush after the peer's close_notify: Ok when what was taken went out.
    let flushed = timeout(STEP, wr.flush()).await?;
    let (rest, rd) = timeout(STEP, reader).await???;
    assert!(rest.is_empty());
    let got = timeout(Duration::from_secs(60), served).await???;
    assert!(
        got.len() == taken && data.get(..taken) == Some(&got[..]),
        "the peer got {} bytes, {taken} were reported written",
        got.len()
    );
    assert!(flushed.is_ok(), "flush after delivering all: {flushed:?}");
    let mut client = rd.unsplit(wr);
    timeout(STEP, client.flush()).await??;
    timeout(STEP, client.disconnect_from_host()).await??;
    Ok(())
}

// Held: the peer read everything and closed TCP without close_notify (a truncation of ITS
// stream, nothing of ours lost): our read reports UnexpectedEof, and a flush after it is Ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_after_the_peer_truncated_its_stream_is_ok() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let data = pattern(100_000, 5);
    let len = data.len();
    let served = tokio::spawn(async move {
        let mut got = vec![0u8; len];
        timeout(STEP, server.read_exact(&mut got)).await??;
        // A TCP close without close_notify: the tokio socket's drop.
        drop(server);
        Ok::<_, BoxError>(got)
    });
    timeout(STEP, client.write_all(&data)).await??;
    timeout(STEP, client.flush()).await??;
    let got = timeout(STEP, served).await???;
    assert!(got == data);
    let mut buf = [0u8; 16];
    let read = timeout(STEP, client.read(&mut buf)).await?;
    assert!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{read:?}"
    );
    let flushed = timeout(STEP, client.flush()).await?;
    assert!(
        flushed.is_ok(),
        "flush after a delivered write: {flushed:?}"
    );
    Ok(())
}

/// The server read `len` bytes, then sent close_notify (its shutdown) and reset TCP at
/// once (SO_LINGER 0): a clean end of its stream, followed by a reset before our answer.
async fn peer_reads_then_closes_and_resets(
    client: &mut SslSocket,
    mut server: SslSocket,
    data: &[u8],
) -> TestResult {
    let len = data.len();
    let served = tokio::spawn(async move {
        let mut got = vec![0u8; len];
        timeout(STEP, server.read_exact(&mut got)).await??;
        timeout(STEP, server.shutdown()).await??;
        if let Some(tcp) = server.get_ref() {
            #[allow(deprecated)]
            tcp.set_linger(Some(Duration::ZERO))?;
        }
        drop(server);
        Ok::<_, BoxError>(got)
    });
    timeout(STEP, client.write_all(data)).await??;
    timeout(STEP, client.flush()).await??;
    let got = timeout(STEP, served).await???;
    assert!(got == data, "the server got other bytes");
    // Both the close_notify and the reset are in our kernel before we look.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

// Was a defect (round 36): the peer read every byte we wrote, then closed cleanly (close_notify) and reset
// TCP. Our read reports the clean end (round 35's rule: the peer's close_notify is the
// reader's clean end, whatever became of our answer), but flush() then fails with the
// reset that met our answering close_notify, although nothing we wrote was lost, and
// shutdown() fails the same way while disconnect_from_host() is Ok. A flush must be Ok
// when everything written was delivered and the peer's stream ended cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_after_the_peers_close_notify_and_reset_is_ok_when_all_was_delivered() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (mut client, server) = pair(&pki).await?;
    let data = pattern(50_000, 6);
    peer_reads_then_closes_and_resets(&mut client, server, &data).await?;
    let rest = read_all_of(&mut client).await;
    assert!(
        matches!(&rest, Ok(rest) if rest.is_empty()),
        "the peer's clean end: {rest:?}"
    );
    let flushed = timeout(STEP, client.flush()).await?;
    let shut = timeout(STEP, client.shutdown()).await?;
    let closed = timeout(STEP, client.disconnect_from_host()).await?;
    assert!(
        flushed.is_ok() && shut.is_ok() && closed.is_ok(),
        "after delivering everything: flush {flushed:?}, shutdown {shut:?}, \
         disconnect_from_host {closed:?}"
    );
    Ok(())
}

// Was a defect (round 36): the same, flushing before the read: that flush is Ok (our output went out before
// the peer's close); the read then reports the clean end and sends our answering
// close_notify into the reset, and the next flush fails with it (BrokenPipe), although
// nothing written since was lost. Two flushes around a clean end disagree; both must be Ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_before_reading_the_peers_close_notify_and_reset_is_ok() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (mut client, server) = pair(&pki).await?;
    let data = pattern(50_000, 7);
    peer_reads_then_closes_and_resets(&mut client, server, &data).await?;
    let flushed = timeout(STEP, client.flush()).await?;
    assert!(flushed.is_ok(), "{flushed:?}");
    let rest = read_all_of(&mut client).await;
    assert!(
        matches!(&rest, Ok(rest) if rest.is_empty()),
        "the peer's clean end: {rest:?}"
    );
    let flushed = timeout(STEP, client.flush()).await?;
    assert!(flushed.is_ok(), "flush after the clean end: {flushed:?}");
    Ok(())
}

// ----- events under concurrent use ---------------------------------------------------------

fn written_total(events: &[SslEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            SslEvent::BytesWritten(n) => *n,
            _ => 0,
        })
        .sum()
}

fn count_of(events: &[SslEvent], wanted: &SslEvent) -> usize {
    events.iter().filter(|e| *e == wanted).count()
}

async fn events_add_up(tls12: bool) -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let mut configuration = client_configuration(&pki)?;
    if tls12 {
        configuration.set_protocol(SslProtocol::TlsV1_2);
    }
    let (client, mut server) = pair_with(&pki, configuration).await?;
    let up = pattern(3 << 20, 8);
    let down = pattern(1 << 20, 9);
    let (up_len, down_len) = (up.len(), down.len());
    let down_sent = down.clone();
    let served = tokio::spawn(async move {
        let _ = server.take_events();
        let (mut srd, mut swr) = tokio::io::split(server);
        let writer = tokio::spawn(async move {
            for piece in down_sent.chunks(7_000) {
                timeout(STEP, swr.write_all(piece)).await??;
            }
            timeout(STEP, swr.flush()).await??;
            Ok::<_, BoxError>(swr)
        });
        // Slowly, 48 KiB at a time, exactly what the client sends.
        let mut got = vec![0u8; up_len];
        let mut at = 0;
        while at < up_len {
            let end = (at + 48 * 1024).min(up_len);
            let n = timeout(STEP, srd.read(got.get_mut(at..end).unwrap_or_default())).await??;
            if n == 0 {
                return Err("the client's stream ended early".into());
            }
            at += n;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let swr = timeout(Duration::from_secs(60), writer).await???;
        let mut server = srd.unsplit(swr);
        // Then the client's close, answered.
        let rest = read_all_of(&mut server).await?;
        assert!(rest.is_empty());
        timeout(STEP, server.disconnect_from_host()).await??;
        let events = server.take_events();
        Ok::<_, BoxError>((got, events))
    });
    let mut client = client;
    let _ = client.take_events();
    let (mut rd, mut wr) = tokio::io::split(client);
    let up_sent = up.clone();
    let writer = tokio::spawn(async move {
        let mut sizes = [1usize, 100, 16_384, 70_000, 5, 300_000].iter().cycle();
        let mut at = 0;
        while at < up_sent.len() {
            let size = sizes.next().copied().unwrap_or(1);
            let end = (at + size).min(up_sent.len());
            timeout(STEP, wr.write_all(up_sent.get(at..end).unwrap_or_default())).await??;
            at = end;
        }
        timeout(Duration::from_secs(60), wr.flush()).await??;
        Ok::<_, BoxError>(wr)
    });
    let mut got_down = vec![0u8; down_len];
    timeout(Duration::from_secs(60), rd.read_exact(&mut got_down)).await??;
    let wr = timeout(Duration::from_secs(60), writer).await???;
    let mut client = rd.unsplit(wr);
    timeout(STEP, client.shutdown()).await??;
    let rest = read_all_of(&mut client).await?;
    assert!(rest.is_empty());
    let (got_up, server_events) = timeout(Duration::from_secs(60), served).await???;
    assert!(got_up == up, "the server got other bytes");
    assert!(got_down == down, "the client got other bytes");
    timeout(STEP, client.disconnect_from_host()).await??;
    let events = client.take_events();
    assert_eq!(
        written_total(&events),
        up.len(),
        "client BytesWritten: {events:?}"
    );
    assert_eq!(
        written_total(&server_events),
        down.len(),
        "server BytesWritten: {server_events:?}"
    );
    for list in [&events, &server_events] {
        assert_eq!(count_of(list, &SslEvent::Disconnected), 1, "{list:?}");
        assert_eq!(list.last(), Some(&SslEvent::Disconnected), "{list:?}");
        assert_eq!(
            count_of(list, &SslEvent::ReadChannelFinished),
            1,
            "{list:?}"
        );
        assert!(
            !list.iter().any(|e| matches!(e, SslEvent::ErrorOccurred(_))),
            "{list:?}"
        );
    }
    Ok(())
}

// Held: split halves in two tasks on each side, 3 MiB up in odd-sized writes and 1 MiB
// down at once, then the client's shutdown, answered: the BytesWritten events add up to
// exactly what each side wrote; one ReadChannelFinished, one Disconnected, last, and no
// ErrorOccurred on either side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_add_up_under_split_halves() -> TestResult {
    events_add_up(false).await
}

// Held: the same on TLS 1.2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_add_up_under_split_halves_on_tls12() -> TestResult {
    events_add_up(true).await
}

// ----- full duplex on a current_thread runtime ---------------------------------------------

// Held: on a current_thread runtime, both sides split, each writing 8 MiB while the other
// side writes too (only the reading tasks keep the transfer going; no half-close, which
// the README leaves out): every byte arrives, then the client closes and the server sees
// a clean end.
#[tokio::test(flavor = "current_thread")]
async fn full_duplex_bulk_on_a_current_thread_runtime() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (client, server) = pair(&pki).await?;
    let len = 8 << 20;
    let mut tasks = Vec::new();
    for (socket, seed) in [(client, 10u64), (server, 11u64)] {
        tasks.push(tokio::spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(socket);
            let out = pattern(len, seed);
            let writer = tokio::spawn(async move {
                timeout(Duration::from_secs(120), wr.write_all(&out)).await??;
                timeout(Duration::from_secs(60), wr.flush()).await??;
                Ok::<_, BoxError>(wr)
            });
            let mut got = vec![0u8; len];
            timeout(Duration::from_secs(120), rd.read_exact(&mut got)).await??;
            let wr = timeout(Duration::from_secs(120), writer).await???;
            Ok::<_, BoxError>((got, rd.unsplit(wr)))
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(timeout(Duration::from_secs(180), task).await???);
    }
    let (client_got, mut client) = results.remove(0);
    let (server_got, mut server) = results.remove(0);
    assert!(client_got == pattern(len, 11), "the client got other bytes");
    assert!(server_got == pattern(len, 10), "the server got other bytes");
    let closing = tokio::spawn(async move {
        let rest = read_all_of(&mut server).await?;
        Ok::<_, BoxError>(rest)
    });
    timeout(STEP, client.disconnect_from_host()).await??;
    let rest = timeout(STEP, closing).await???;
    assert!(rest.is_empty());
    Ok(())
}

// ----- 16 MiB against a slow reader: memory -------------------------------------------------

// Held: 16 MiB written at once (one write_all) to a peer reading 16 KiB every 2 ms: the
// process's resident memory grows by far less than the data (the library keeps at most
// its 64 KiB backlog plus TLS buffers), and every byte arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_to_a_slow_reader_keeps_memory_bounded() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let len = 16 << 20;
    // The reader checks as it goes, keeping nothing.
    let served = tokio::spawn(async move {
        let expected = pattern(len, 12);
        let mut at = 0usize;
        let mut buf = vec![0u8; 16 * 1024];
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            assert!(Instant::now() < deadline, "slow reading timed out");
            let n = timeout(STEP, server.read(&mut buf)).await??;
            if n == 0 {
                break;
            }
            assert!(
                buf.get(..n) == expected.get(at..at + n),
                "bytes differ at {at}"
            );
            at += n;
            if at % (256 * 1024) < n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        Ok::<_, BoxError>(at)
    });
    let data = pattern(len, 12);
    let baseline = resident_bytes();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0usize;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(resident_bytes());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak
        })
    };
    timeout(Duration::from_secs(240), client.write_all(&data)).await??;
    timeout(Duration::from_secs(60), client.shutdown()).await??;
    let got = timeout(Duration::from_secs(240), served).await???;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = timeout(STEP, sampler).await??;
    assert_eq!(got, len);
    let growth = peak.saturating_sub(baseline);
    eprintln!("baseline {baseline}, peak {peak}, growth {growth}");
    assert!(baseline > 0, "no /proc/self/status");
    assert!(
        growth < 8 << 20,
        "resident memory grew by {growth} bytes for 16 MiB"
    );
    Ok(())
}

// ----- every future dropped after one poll ----------------------------------------------------

/// Runs `op` polled once and dropped (a zero timeout polls the inner future first), over
/// and over until it finishes; `Err` after 30 s.
macro_rules! one_poll_at_a_time {
    ($op:expr) => {{
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(done) = timeout(Duration::ZERO, $op).await {
                break done;
            }
            if Instant::now() > deadline {
                return Err("an operation polled once at a time never finished".into());
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }};
}

/// Lines of every length, some longer than `max`, sent in pieces that cut records.
fn line_stream() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..300usize {
        let len = (i * 37) % 1500;
        out.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
        out.push(b'\n');
    }
    out
}

async fn one_poll_session<S>(mut client: SslSocket<S>, mut server: SslSocket<S>) -> TestResult
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let stream = line_stream();
    let sent = stream.clone();
    let sent_len = stream.len();
    let served = tokio::spawn(async move {
        server.begin_server_encryption()?;
        let shaken = one_poll_at_a_time!(server.handshake())?;
        assert!(matches!(shaken, sslsocket::Handshake::Encrypted));
        // Lines cut at max 1000 (999 bytes), each call polled once and dropped.
        let mut received = Vec::new();
        while received.len() < sent_len {
            let piece = one_poll_at_a_time!(server.next_line(1000))?;
            if piece.is_empty() {
                return Err("an end of stream before every line".into());
            }
            assert!(
                piece.ends_with(b"\n") || piece.len() == 999,
                "a piece of {} bytes without a newline",
                piece.len()
            );
            received.extend_from_slice(&piece);
        }
        // The answer, written and closed one poll at a time.
        let mut at = 0;
        let answer = pattern(700_000, 13);
        while at < answer.len() {
            let n = one_poll_at_a_time!(server.write(answer.get(at..).unwrap_or_default()))?;
            assert!(n > 0, "write gave 0 for a non-empty buffer");
            at += n;
        }
        one_poll_at_a_time!(server.flush())?;
        // Then the client's end, read one poll at a time too.
        let mut rest = [0u8; 64];
        let n = one_poll_at_a_time!(server.read(&mut rest))?;
        assert_eq!(n, 0, "data after the lines");
        one_poll_at_a_time!(server.disconnect_from_host())?;
        Ok::<_, BoxError>(received)
    });
    client.begin_client_encryption()?;
    let shaken = one_poll_at_a_time!(client.handshake())?;
    assert!(matches!(shaken, sslsocket::Handshake::Encrypted));
    for piece in sent.chunks(1_777) {
        let mut at = 0;
        while at < piece.len() {
            let n = one_poll_at_a_time!(client.write(piece.get(at..).unwrap_or_default()))?;
            at += n;
        }
    }
    one_poll_at_a_time!(client.flush())?;
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 5_000];
    while answer.len() < 700_000 {
        let n = one_poll_at_a_time!(client.read(&mut buf))?;
        if n == 0 {
            return Err("an end of stream before the whole answer".into());
        }
        answer.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    one_poll_at_a_time!(client.shutdown())?;
    let rest = one_poll_at_a_time!(client.read(&mut buf))?;
    assert_eq!(rest, 0, "the server's clean end");
    let received = timeout(Duration::from_secs(60), served).await???;
    assert!(
        received == stream,
        "the server got {} of {} bytes",
        received.len(),
        stream.len()
    );
    assert!(
        answer == pattern(700_000, 13),
        "the client got {} bytes",
        answer.len()
    );
    one_poll_at_a_time!(client.flush())?;
    one_poll_at_a_time!(client.disconnect_from_host())?;
    one_poll_at_a_time!(client.flush())?;
    Ok(())
}

// Held: over TCP, every call (handshake, next_line, write, flush, shutdown, read,
// disconnect_from_host) polled once and dropped, again and again: lines come whole or cut
// at the limit, nothing lost or twice; our shutdown is answered, both ends clean, and a
// flush after it all is Ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_future_dropped_after_one_poll_over_tcp() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let accepting = tokio::spawn(async move { listener.accept().await });
    let mut client =
        SslSocket::connect_to_host("localhost", port, client_configuration(&pki)?).await?;
    client.set_peer_verify_name("localhost");
    let (tcp, _) = timeout(STEP, accepting).await???;
    let server = SslSocket::from_tcp_stream(tcp, server_configuration(&pki)?)?;
    one_poll_session(client, server).await
}

// Held: the same over a 64-byte tokio::io::duplex pipe (no descriptor: every record in
// pieces, every flush through the transport).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_future_dropped_after_one_poll_over_a_small_pipe() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (a, b) = tokio::io::duplex(64);
    let mut client = SslSocket::from_stream(a, client_configuration(&pki)?);
    client.set_peer_verify_name("localhost");
    let server = SslSocket::from_stream(b, server_configuration(&pki)?);
    one_poll_session(client, server).await
}

// ----- a socket moved between runtimes ---------------------------------------------------------

/// A client made, connected and encrypted on a runtime of its own that is then shut down
/// (its I/O driver gone), with the server's socket from the same runtime.
fn pair_on_a_runtime_that_ends(pki: &Pki) -> Result<(SslSocket, SslSocket), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let made = runtime.block_on(async { pair(pki).await });
    runtime.shutdown_timeout(Duration::from_secs(5));
    made
}

// Held: both sockets made on a runtime that has since shut down, then used on this one:
// every operation fails or ends within its timeout (tokio refuses I/O whose driver is
// gone), none panics or waits for ever, and dropping them is quiet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_whose_runtime_ended_fails_without_hanging() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (mut client, mut server) =
        tokio::task::block_in_place(|| pair_on_a_runtime_that_ends(&pki))?;
    let wrote = timeout(STEP, async {
        client.write_all(b"hello\n").await?;
        client.flush().await
    })
    .await;
    let mut buf = [0u8; 16];
    let read = timeout(STEP, server.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Err(_))),
        "a read on a socket whose runtime ended: {read:?} (write {wrote:?})"
    );
    let closed = timeout(STEP, client.disconnect_from_host()).await;
    assert!(closed.is_ok(), "disconnect_from_host waited for ever");
    let line = timeout(STEP, server.next_line(0)).await;
    assert!(matches!(line, Ok(Err(_))), "{line:?}");
    Ok(())
}

// Held: a socket made on one runtime (still running) and moved to another (a
// current_thread one) mid-connection goes on working there: a line both ways, a clean
// close.
#[test]
fn a_socket_moved_to_another_runtime_keeps_working() -> TestResult {
    let _serial = SERIAL.blocking_lock();
    let pki = Pki::new()?;
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut client, server) = first.block_on(async { pair(&pki).await })?;
    // The server stays on the first runtime; the client moves to the second.
    let served = first.spawn(async move {
        let mut server = server;
        let line = timeout(STEP, server.next_line(0)).await??;
        timeout(STEP, server.write_all(&line)).await??;
        let rest = read_all_of(&mut server).await?;
        timeout(STEP, server.disconnect_from_host()).await??;
        Ok::<_, BoxError>(rest)
    });
    second.block_on(async {
        timeout(STEP, client.write_all(b"across runtimes\n")).await??;
        let echo = timeout(STEP, client.next_line(0)).await??;
        assert_eq!(echo, b"across runtimes\n");
        timeout(STEP, client.disconnect_from_host()).await??;
        Ok::<_, BoxError>(())
    })?;
    let rest = first.block_on(async { timeout(STEP, served).await })???;
    assert!(rest.is_empty());
    first.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

// Was a defect (round 36): over a transport without a descriptor (a tokio::io::duplex pipe), the peer read
// all we wrote, closed cleanly (its disconnect_from_host: close_notify) and went away. Our
// read sees the clean end; our answering close_notify waits for the next write, flush or
// close, since the reader cannot send it. flush() then sends it, meets the closed pipe
// (BrokenPipe) and fails, although everything the application wrote was delivered; so does
// shutdown(). The failure of our answering close_notify is not a loss of written data:
// flush and shutdown must be Ok here (as disconnect_from_host is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_after_the_peers_clean_close_over_a_pipe_is_ok() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let (a, b) = tokio::io::duplex(4096);
    let mut client = SslSocket::from_stream(a, client_configuration(&pki)?);
    client.set_peer_verify_name("localhost");
    let mut server = SslSocket::from_stream(b, server_configuration(&pki)?);
    let data = pattern(100_000, 14);
    let len = data.len();
    let served = tokio::spawn(async move {
        timeout(STEP, server.start_server_encryption()).await??;
        let mut got = vec![0u8; len];
        timeout(STEP, server.read_exact(&mut got)).await??;
        // Our close_notify, then the pipe end dropped (the linger ends at once: the
        // client does not answer before it reads).
        let _ = timeout(Duration::from_secs(5), server.disconnect_from_host()).await;
        drop(server);
        Ok::<_, BoxError>(got)
    });
    timeout(STEP, client.start_client_encryption()).await??;
    timeout(STEP, client.write_all(&data)).await??;
    timeout(STEP, client.flush()).await??;
    let got = timeout(STEP, served).await???;
    assert!(got == data, "the server got other bytes");
    let rest = read_all_of(&mut client).await;
    assert!(
        matches!(&rest, Ok(rest) if rest.is_empty()),
        "the peer's clean end: {rest:?}"
    );
    let flushed = timeout(STEP, client.flush()).await?;
    let shut = timeout(STEP, client.shutdown()).await?;
    let closed = timeout(STEP, client.disconnect_from_host()).await?;
    assert!(
        flushed.is_ok() && shut.is_ok() && closed.is_ok(),
        "after delivering everything: flush {flushed:?}, shutdown {shut:?}, \
         disconnect_from_host {closed:?}"
    );
    Ok(())
}

// ----- a client that writes and closes during its handshake ------------------------------------

async fn burst_client_is_served(tls12: bool) -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let accepted = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let got = read_all_of(&mut socket).await?;
        // Our side was ended by the peer: a flush and a shutdown are Ok.
        timeout(STEP, socket.flush()).await??;
        timeout(STEP, socket.shutdown()).await??;
        Ok::<_, BoxError>(got)
    });
    let mut configuration = client_configuration(&pki)?;
    if tls12 {
        configuration.set_protocol(SslProtocol::TlsV1_2);
    }
    let mut client = SslSocket::connect_to_host("localhost", port, configuration).await?;
    client.begin_client_encryption()?;
    let data = pattern(200_000, 15);
    // Written while the handshake runs (queued), then the close (delivered after it).
    timeout(STEP, client.write_all(&data)).await??;
    timeout(STEP, client.disconnect_from_host()).await??;
    timeout(STEP, client.flush()).await??;
    let got = timeout(STEP, accepted).await???;
    assert!(
        got == data,
        "the server got {} of {} bytes",
        got.len(),
        data.len()
    );
    Ok(())
}

// Held: a client that writes 200 KB during its handshake and closes at once (TLS 1.3):
// the server's handshake succeeds, and it reads every byte, then a clean end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_closing_during_its_handshake_is_served_whole() -> TestResult {
    burst_client_is_served(false).await
}

// Held: the same on TLS 1.2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_closing_during_its_handshake_is_served_whole_on_tls12() -> TestResult {
    burst_client_is_served(true).await
}

// ----- bytes lost to a reset: every wait reports it ---------------------------------------------

/// A client with written bytes still in the library (the server never reads, the kernel
/// buffers are full), then the server resets the connection.
async fn client_with_bytes_lost_to_a_reset(pki: &Pki) -> Result<SslSocket, BoxError> {
    let (mut client, server) = pair(pki).await?;
    let chunk = vec![0x5au8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    // Fill the kernel's buffers, then the library's backlog.
    loop {
        assert!(Instant::now() < deadline, "the writes never blocked");
        match timeout(Duration::from_millis(200), client.write(&chunk)).await {
            Ok(written) => {
                written?;
            }
            Err(_) => break,
        }
    }
    assert!(client.bytes_to_write() > 0 || client.encrypted_bytes_to_write() > 0);
    if let Some(tcp) = server.get_ref() {
        #[allow(deprecated)]
        tcp.set_linger(Some(Duration::ZERO))?;
    }
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(client)
}

// Held (round 36's fix): flush after the reset reports the loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_reports_bytes_lost_to_a_reset() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let mut client = client_with_bytes_lost_to_a_reset(&pki).await?;
    let flushed = timeout(STEP, client.flush()).await?;
    assert!(flushed.is_err(), "flush after losing bytes: {flushed:?}");
    let again = timeout(STEP, client.flush()).await?;
    assert!(
        again.is_err(),
        "a second flush after losing bytes: {again:?}"
    );
    Ok(())
}

// Was a defect (round 36): wait_for_bytes_written (Qt's waitForBytesWritten; its doc says
// `AsyncWriteExt::flush` does the same) returns Ok when the connection was reset with the
// written bytes still unsent: the failed core has nothing left to write, so the wait's
// condition holds (the flaw round 36 fixed in poll_flush only). Qt's waitForBytesWritten
// is false when the socket errors or disconnects first; it must fail here, as flush does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_bytes_written_reports_bytes_lost_to_a_reset() -> TestResult {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new()?;
    let mut client = client_with_bytes_lost_to_a_reset(&pki).await?;
    let waited = timeout(STEP, client.wait_for_bytes_written()).await?;
    assert!(
        waited.is_err(),
        "wait_for_bytes_written after losing bytes: {waited:?}"
    );
    Ok(())
}
