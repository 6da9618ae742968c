//! Adversarial review of the tokio driver (round 34): the `AsyncRead`/`AsyncWrite`
//! contracts, cancellation, split halves, `copy_bidirectional`, line readers, many sockets
//! per runtime, events, the server, runtimes. Both backends (`SSLSOCKET_BACKEND=openssl`).
//! Every wait is bounded.

mod support;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sslsocket::prelude::*;
use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::{SslCertificate, SslConfiguration, SslEvent, SslKey};
use support::Pki;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const STEP: Duration = Duration::from_secs(10);

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
async fn pair(pki: &Pki) -> Result<(SslSocket, SslSocket), BoxError> {
    let server = SslServer::bind("127.0.0.1:0", server_configuration(pki)?).await?;
    let port = server.local_addr().port();
    let accepted = tokio::spawn(async move { server.accept_encrypted().await });
    let client = timeout(
        STEP,
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(pki)?),
    )
    .await??;
    let server_socket = timeout(STEP, accepted).await???;
    Ok((client, server_socket))
}

// ----- AsyncRead / AsyncWrite contracts ---------------------------------------------

// Held: 1-byte reads and zero-length reads deliver every byte once, in order, then a clean 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_and_zero_length_reads_keep_the_stream_exact() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let data = pattern(70_000, 1);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        server.write_all(&sent).await?;
        server.shutdown().await?;
        let mut rest = Vec::new();
        timeout(STEP, server.read_to_end(&mut rest)).await??;
        Ok::<_, BoxError>(())
    });
    let mut received = Vec::with_capacity(data.len());
    let mut one = [0u8; 1];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "reading timed out");
        let empty = timeout(STEP, client.read(&mut [])).await??;
        assert_eq!(empty, 0, "a zero-length read reads nothing");
        let n = timeout(STEP, client.read(&mut one)).await??;
        if n == 0 {
            break;
        }
        received.push(one[0]);
    }
    assert_eq!(received.len(), data.len());
    assert!(received == data, "the bytes differ");
    // The end again, not a wait or an error.
    assert_eq!(timeout(STEP, client.read(&mut one)).await??, 0);
    timeout(STEP, writer).await???;
    Ok(())
}

// Held: shutdown is idempotent, a write after it is an error (never Ok(n) silently dropped,
// never Ok(0)), and the peer reads everything written before it, then a clean end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_twice_then_write_fails_and_the_peer_sees_a_clean_end() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let data = pattern(200_000, 2);
    client.write_all(&data).await?;
    timeout(STEP, client.shutdown()).await??;
    timeout(STEP, client.shutdown()).await??;
    let write = timeout(STEP, client.write(b"after")).await?;
    assert!(write.is_err(), "a write after shutdown: {write:?}");
    let mut received = Vec::new();
    timeout(STEP, server.read_to_end(&mut received)).await??;
    assert!(
        received == data,
        "{} of {} bytes",
        received.len(),
        data.len()
    );
    assert!(server.core().is_peer_closed_cleanly());
    // Still after the peer finished.
    timeout(STEP, client.shutdown()).await??;
    let mut rest = Vec::new();
    timeout(STEP, client.read_to_end(&mut rest)).await??;
    assert!(rest.is_empty());
    Ok(())
}

// Held: data written while the handshake runs, then shutdown before it finished: the data goes
// out after the handshake, then close_notify (README: writes queued before the handshake
// ends are sent, in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_the_handshake_delivers_the_queued_writes_first() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let mut received = Vec::new();
        timeout(STEP, socket.read_to_end(&mut received)).await??;
        Ok::<_, BoxError>((received, socket.core().is_peer_closed_cleanly()))
    });
    let mut client =
        SslSocket::connect_to_host("localhost", port, client_configuration(&pki)?).await?;
    client.begin_client_encryption()?;
    let data = pattern(100_000, 3);
    // Up to the 64 KiB the socket takes ahead of the wire without driving the handshake.
    timeout(STEP, client.write_all(&data)).await??;
    timeout(STEP, client.shutdown()).await??;
    let (received, clean) = timeout(STEP, served).await???;
    assert!(
        received == data,
        "{} of {} bytes",
        received.len(),
        data.len()
    );
    assert!(clean, "the server must see close_notify");
    Ok(())
}

// ----- cancellation ----------------------------------------------------------------

// Held: reads given up by very short timeouts, over and over, lose and duplicate nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_cancelled_by_short_timeouts_lose_nothing() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let data = pattern(1_000_000, 4);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        let mut step = 1usize;
        while at < sent.len() {
            let end = (at + step).min(sent.len());
            server.write_all(&sent[at..end]).await?;
            server.flush().await?;
            at = end;
            step = (step * 7 + 13) % 40_000 + 1;
            if step.is_multiple_of(3) {
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        }
        server.shutdown().await?;
        let mut rest = Vec::new();
        timeout(STEP, server.read_to_end(&mut rest)).await??;
        Ok::<_, BoxError>(())
    });
    let mut received = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 5000];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut cancelled = 0u32;
    loop {
        assert!(Instant::now() < deadline, "reading timed out");
        match timeout(Duration::from_micros(50), client.read(&mut buf)).await {
            Err(_) => cancelled += 1,
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return Err(e.into()),
        }
    }
    eprintln!("{cancelled} reads cancelled");
    assert_eq!(received.len(), data.len());
    assert!(received == data, "the bytes differ");
    timeout(STEP, writer).await???;
    Ok(())
}

// Held: next_line given up by short timeouts: every line comes once, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_line_cancelled_by_short_timeouts_loses_nothing() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let writer = tokio::spawn(async move {
        for i in 0..2000u32 {
            let line = format!("line {i} {}\n", "x".repeat((i as usize * 37) % 300));
            // Split each line across writes.
            let (a, b) = line.as_bytes().split_at(line.len() / 2);
            server.write_all(a).await?;
            server.flush().await?;
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            server.write_all(b).await?;
            server.flush().await?;
        }
        server.shutdown().await?;
        let mut rest = Vec::new();
        timeout(STEP, server.read_to_end(&mut rest)).await??;
        Ok::<_, BoxError>(())
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut expected = 0u32;
    loop {
        assert!(Instant::now() < deadline, "reading timed out");
        match timeout(Duration::from_micros(30), client.next_line(0)).await {
            Err(_) => {}
            Ok(line) => {
                let line = line?;
                if line.is_empty() {
                    break;
                }
                let want = format!(
                    "line {expected} {}\n",
                    "x".repeat((expected as usize * 37) % 300)
                );
                assert_eq!(String::from_utf8_lossy(&line), want);
                expected += 1;
            }
        }
    }
    assert_eq!(expected, 2000);
    timeout(STEP, writer).await???;
    Ok(())
}

// Held: a graceful close cut short by a caller's timeout (the peer is slow to answer), then
// called again: the second call finishes it; the peer got everything and a clean end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_disconnect_is_finished_by_a_second_call() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let data = pattern(300_000, 5);
    let served = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut received = Vec::new();
        timeout(STEP, server.read_to_end(&mut received)).await??;
        Ok::<_, BoxError>((received, server.core().is_peer_closed_cleanly()))
    });
    client.write_all(&data).await?;
    let first = timeout(Duration::from_millis(5), client.disconnect_from_host()).await;
    assert!(
        first.is_err(),
        "the first close was expected to be cut short"
    );
    timeout(STEP, client.disconnect_from_host()).await??;
    let (received, clean) = timeout(STEP, served).await???;
    assert!(
        received == data,
        "{} of {} bytes",
        received.len(),
        data.len()
    );
    assert!(clean);
    Ok(())
}

// ----- split halves ------------------------------------------------------------------

// Held: tokio::io::split halves in their own tasks, both directions at once, 4 MiB each way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_in_separate_tasks_move_four_mebibytes_each_way() -> TestResult {
    let pki = Pki::new()?;
    let (client, server) = pair(&pki).await?;
    const LEN: usize = 4 << 20;
    let up = pattern(LEN, 6);
    let down = pattern(LEN, 7);
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    let up_sent = up.clone();
    let down_sent = down.clone();
    let t1 = tokio::spawn(async move {
        for chunk in up_sent.chunks(10_007) {
            cw.write_all(chunk).await?;
        }
        cw.flush().await?;
        Ok::<_, BoxError>(cw)
    });
    let t2 = tokio::spawn(async move {
        for chunk in down_sent.chunks(9_001) {
            sw.write_all(chunk).await?;
        }
        sw.flush().await?;
        Ok::<_, BoxError>(sw)
    });
    let t3 = tokio::spawn(async move {
        let mut got = vec![0u8; LEN];
        sr.read_exact(&mut got).await?;
        Ok::<_, BoxError>((sr, got))
    });
    let t4 = tokio::spawn(async move {
        let mut got = vec![0u8; LEN];
        cr.read_exact(&mut got).await?;
        Ok::<_, BoxError>((cr, got))
    });
    let limit = Duration::from_secs(120);
    let cw = timeout(limit, t1).await???;
    let sw = timeout(limit, t2).await???;
    let (sr, got_up) = timeout(limit, t3).await???;
    let (cr, got_down) = timeout(limit, t4).await???;
    assert!(got_up == up, "upstream bytes differ");
    assert!(got_down == down, "downstream bytes differ");
    let mut client = cr.unsplit(cw);
    let mut server = sr.unsplit(sw);
    timeout(STEP, client.shutdown()).await??;
    let mut rest = Vec::new();
    timeout(STEP, server.read_to_end(&mut rest)).await??;
    assert!(rest.is_empty());
    Ok(())
}

// ----- copy_bidirectional ------------------------------------------------------------

/// An echo server of ours that echoes as it reads, until the end of stream.
async fn echo_server(pki: &Pki) -> Result<(u16, tokio::task::JoinHandle<TestResult>), BoxError> {
    let server = SslServer::bind("127.0.0.1:0", server_configuration(pki)?).await?;
    let port = server.local_addr().port();
    let task = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let mut buf = vec![0u8; 16_384];
        loop {
            let n = timeout(STEP, socket.read(&mut buf)).await??;
            if n == 0 {
                break;
            }
            socket.write_all(&buf[..n]).await?;
            socket.flush().await?;
        }
        let _ = socket.disconnect_from_host().await;
        Ok(())
    });
    Ok((port, task))
}

/// The client of a proxy: sends `data` while reading its echo, then closes.
async fn echo_client(port: u16, pki: &Pki, data: Vec<u8>) -> Result<Vec<u8>, BoxError> {
    let client = timeout(
        STEP,
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(pki)?),
    )
    .await??;
    let len = data.len();
    let (mut r, mut w) = tokio::io::split(client);
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(7_777) {
            w.write_all(chunk).await?;
        }
        w.flush().await?;
        Ok::<_, BoxError>(w)
    });
    let mut echoed = vec![0u8; len];
    timeout(Duration::from_secs(60), r.read_exact(&mut echoed)).await??;
    let w = timeout(STEP, writer).await???;
    let mut client = r.unsplit(w);
    timeout(STEP, client.shutdown()).await??;
    let mut rest = Vec::new();
    let end = timeout(STEP, client.read_to_end(&mut rest)).await?;
    end?;
    Ok(echoed)
}

// Held: a TLS proxy made of two of our sockets (server side and client side) with
// copy_bidirectional: every byte through, both ends closed cleanly, counts exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_bidirectional_between_two_of_our_sockets() -> TestResult {
    let pki = Pki::new()?;
    let (backend_port, backend) = echo_server(&pki).await?;
    let front = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let front_port = front.local_addr().port();
    let client_conf = client_configuration(&pki)?;
    let proxy = tokio::spawn(async move {
        let mut inbound = front.accept_encrypted().await?;
        let mut outbound =
            SslSocket::connect_to_host_encrypted("localhost", backend_port, client_conf).await?;
        let counts = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await?;
        Ok::<_, BoxError>(counts)
    });
    let data = pattern(1_000_000, 8);
    let echoed = echo_client(front_port, &pki, data.clone()).await?;
    assert!(echoed == data, "the echo differs");
    let counts = timeout(STEP, proxy).await???;
    assert_eq!(counts, (data.len() as u64, data.len() as u64));
    timeout(STEP, backend).await???;
    Ok(())
}

// Held: a TLS-terminating proxy: our server socket against a plain TcpStream to a plain
// echo server, with copy_bidirectional.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_bidirectional_between_ours_and_a_tcp_stream() -> TestResult {
    let pki = Pki::new()?;
    let plain = TcpListener::bind("127.0.0.1:0").await?;
    let plain_addr = plain.local_addr()?;
    let backend = tokio::spawn(async move {
        let (mut stream, _) = plain.accept().await?;
        let (mut r, mut w) = stream.split();
        tokio::io::copy(&mut r, &mut w).await?;
        w.shutdown().await?;
        Ok::<_, BoxError>(())
    });
    let front = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let front_port = front.local_addr().port();
    let proxy = tokio::spawn(async move {
        let mut inbound = front.accept_encrypted().await?;
        let mut outbound = TcpStream::connect(plain_addr).await?;
        let counts = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await?;
        Ok::<_, BoxError>(counts)
    });
    let data = pattern(1_000_000, 9);
    let echoed = echo_client(front_port, &pki, data.clone()).await?;
    assert!(echoed == data, "the echo differs");
    let counts = timeout(STEP, proxy).await???;
    assert_eq!(counts, (data.len() as u64, data.len() as u64));
    timeout(STEP, backend).await???;
    Ok(())
}

// ----- line readers ------------------------------------------------------------------

// Held: lines() over our socket (its own AsyncBufRead) and over a BufReader: a truncated
// stream ends in an error, never in Ok(None).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_over_a_truncated_stream_end_in_an_error() -> TestResult {
    let pki = Pki::new()?;
    for buffered in [false, true] {
        let (client, mut server) = pair(&pki).await?;
        server.write_all(b"alpha\nbeta\ngam").await?;
        server.flush().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.abort();
        let mut seen = Vec::new();
        let ended = if buffered {
            let mut lines = tokio::io::BufReader::new(client).lines();
            loop {
                match timeout(STEP, lines.next_line()).await? {
                    Ok(Some(line)) => seen.push(line),
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
        } else {
            let mut lines = client.lines();
            loop {
                match timeout(STEP, lines.next_line()).await? {
                    Ok(Some(line)) => seen.push(line),
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
        };
        assert_eq!(
            seen.get(..2),
            Some(&["alpha".to_string(), "beta".to_string()][..])
        );
        let error = ended
            .err()
            .ok_or(format!("buffered {buffered}: a clean end after {seen:?}"))?;
        assert_eq!(error.kind(), ErrorKind::UnexpectedEof, "{error}");
    }
    Ok(())
}

// ----- many sockets per runtime ----------------------------------------------------------

async fn many_clients(pki: &Pki, clients: usize) -> TestResult {
    let server = SslServer::bind("127.0.0.1:0", server_configuration(pki)?).await?;
    let port = server.local_addr().port();
    let mut incoming = server.incoming();
    let serving = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let Some(connection) = incoming.next().await else {
                break;
            };
            let mut socket = connection?;
            tasks.push(tokio::spawn(async move {
                let line = timeout(Duration::from_secs(60), socket.next_line(0)).await??;
                socket.write_all(&line).await?;
                socket.disconnect_from_host().await?;
                Ok::<_, BoxError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok::<_, BoxError>(())
    });
    let configuration = client_configuration(pki)?;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let configuration = configuration.clone();
        tasks.push(tokio::spawn(async move {
            let mut socket =
                SslSocket::connect_to_host_encrypted("localhost", port, configuration).await?;
            let line = format!("client {i}\n");
            socket.write_all(line.as_bytes()).await?;
            let echo = timeout(Duration::from_secs(60), socket.next_line(0)).await??;
            assert_eq!(echo, line.as_bytes());
            let mut rest = Vec::new();
            timeout(Duration::from_secs(60), socket.read_to_end(&mut rest)).await??;
            Ok::<_, BoxError>(())
        }));
    }
    for task in tasks {
        timeout(Duration::from_secs(120), task).await???;
    }
    timeout(Duration::from_secs(60), serving).await???;
    Ok(())
}

// Held: 150 connections, server and clients, on one current-thread runtime.
#[tokio::test(flavor = "current_thread")]
async fn many_sockets_on_a_current_thread_runtime() -> TestResult {
    let pki = Pki::new()?;
    many_clients(&pki, 150).await
}

// Held: the same on a multi-thread runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sockets_on_a_multi_thread_runtime() -> TestResult {
    let pki = Pki::new()?;
    many_clients(&pki, 150).await
}

// ----- events ------------------------------------------------------------------------

// Held: next_event while data arrives unread and then the peer closes: ReadyRead, then the
// close's events, then None; the data is still there to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_event_follows_data_then_the_peers_close() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let _ = client.take_events();
    let served = tokio::spawn(async move {
        server.write_all(b"one\n").await?;
        server.flush().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.write_all(b"two\n").await?;
        server.flush().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.disconnect_from_host().await?;
        Ok::<_, BoxError>(())
    });
    let mut events = Vec::new();
    let deadline = Instant::now() + STEP;
    loop {
        assert!(Instant::now() < deadline, "events: {events:?}");
        match timeout(STEP, client.next_event()).await? {
            Some(event) => events.push(event),
            None => break,
        }
    }
    eprintln!("{events:?}");
    let ready = events
        .iter()
        .filter(|e| matches!(e, SslEvent::ReadyRead))
        .count();
    assert!(ready >= 2, "{events:?}");
    assert!(
        events.contains(&SslEvent::ReadChannelFinished),
        "{events:?}"
    );
    assert!(events.contains(&SslEvent::Disconnected), "{events:?}");
    let mut all = Vec::new();
    timeout(STEP, client.read_to_end(&mut all)).await??;
    assert_eq!(all, b"one\ntwo\n");
    timeout(STEP, served).await???;
    Ok(())
}

// ----- relays that slow down, cut or corrupt the stream ---------------------------------

#[derive(Clone, Copy)]
enum Relay {
    /// Both directions in 64-byte pieces, 1 ms apart.
    Trickle,
    /// Server to client: all but the last `n` bytes before the server's end.
    CutTail(usize),
    /// Server to client: one byte flipped `n` bytes before the server's end.
    FlipFromEnd(usize),
}

/// A TCP relay on 127.0.0.1 to `upstream` for one connection; returns its port. The
/// server-to-client changes of `how` apply once `armed` is set (after the handshake).
async fn relay(upstream: u16, how: Relay) -> Result<u16, BoxError> {
    relay_armed(upstream, how, Arc::new(AtomicBool::new(true))).await
}

async fn relay_armed(upstream: u16, how: Relay, armed: Arc<AtomicBool>) -> Result<u16, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let Ok((down, _)) = listener.accept().await else {
            return;
        };
        let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
            return;
        };
        let (mut down_r, mut down_w) = down.into_split();
        let (mut up_r, mut up_w) = up.into_split();
        let trickle = matches!(how, Relay::Trickle);
        let upward = tokio::spawn(async move {
            let mut buf = vec![0u8; if trickle { 64 } else { 16_384 }];
            loop {
                match down_r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if up_w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        if trickle {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
            }
            let _ = up_w.shutdown().await;
        });
        let mut buf = vec![0u8; if trickle { 64 } else { 16_384 }];
        let keep = match how {
            Relay::Trickle => 0,
            Relay::CutTail(n) | Relay::FlipFromEnd(n) => n,
        };
        let mut tail: Vec<u8> = Vec::new();
        loop {
            match up_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tail.extend_from_slice(&buf[..n]);
                    let keep = if armed.load(Ordering::SeqCst) {
                        keep
                    } else {
                        0
                    };
                    if tail.len() > keep {
                        let out: Vec<u8> = tail.drain(..tail.len() - keep).collect();
                        if down_w.write_all(&out).await.is_err() {
                            break;
                        }
                    }
                    if trickle {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }
        if let Relay::FlipFromEnd(_) = how {
            if let Some(byte) = tail.get_mut(0) {
                *byte ^= 0x40;
            }
            let _ = down_w.write_all(&tail).await;
        }
        let _ = down_w.shutdown().await;
        let _ = upward.await;
    });
    Ok(port)
}

// Held: through a relay that moves 64 bytes per millisecond, handshake waits given up by
// 1 ms timeouts (partial records in the engine) on both ends, then carried on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_cancelled_mid_record_through_a_slow_relay_still_finish() -> TestResult {
    let pki = Pki::new()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let upstream = listener.local_addr()?.port();
    let port = relay(upstream, Relay::Trickle).await?;
    let configuration = server_configuration(&pki)?;
    let served = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut socket = SslSocket::from_tcp_stream(stream, configuration)?;
        socket.begin_server_encryption()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut cancelled = 0u32;
        loop {
            assert!(Instant::now() < deadline, "server handshake timed out");
            match timeout(Duration::from_millis(1), socket.wait_for_encrypted()).await {
                Err(_) => cancelled += 1,
                Ok(result) => {
                    result?;
                    break;
                }
            }
        }
        let mut cancelled_reads = 0u32;
        let line = loop {
            match timeout(Duration::from_millis(1), socket.next_line(0)).await {
                Err(_) => cancelled_reads += 1,
                Ok(line) => break line?,
            }
            assert!(Instant::now() < deadline, "server read timed out");
        };
        socket.write_all(&line).await?;
        socket.disconnect_from_host().await?;
        Ok::<_, BoxError>((cancelled, cancelled_reads))
    });
    let mut client =
        SslSocket::connect_to_host("localhost", port, client_configuration(&pki)?).await?;
    client.begin_client_encryption()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut cancelled = 0u32;
    loop {
        assert!(Instant::now() < deadline, "client handshake timed out");
        match timeout(Duration::from_millis(1), client.handshake()).await {
            Err(_) => cancelled += 1,
            Ok(result) => {
                assert!(matches!(result?, Handshake::Encrypted));
                break;
            }
        }
    }
    let line = format!("{}\n", "p".repeat(3000));
    client.write_all(line.as_bytes()).await?;
    let mut echo = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "client read timed out");
        match timeout(Duration::from_millis(1), client.read_buf(&mut echo)).await {
            Err(_) => {}
            Ok(Ok(0)) => break,
            Ok(result) => {
                result?;
            }
        }
    }
    assert_eq!(echo, line.as_bytes());
    let (server_cancelled, server_reads) = timeout(STEP, served).await???;
    eprintln!(
        "cancelled: client {cancelled}, server {server_cancelled}, server reads {server_reads}"
    );
    assert!(
        cancelled > 0 && server_cancelled > 0,
        "nothing was cancelled"
    );
    Ok(())
}

/// Our server sends `data`, then closes cleanly; the client reads through `how`.
async fn read_through(
    pki: &Pki,
    how: Relay,
    data: Vec<u8>,
) -> Result<(Vec<u8>, std::io::Result<usize>), BoxError> {
    let server = SslServer::bind("127.0.0.1:0", server_configuration(pki)?).await?;
    let armed = Arc::new(AtomicBool::new(false));
    let port = relay_armed(server.local_addr().port(), how, Arc::clone(&armed)).await?;
    let sent = data.clone();
    tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let _go = timeout(STEP, socket.next_line(0)).await??;
        socket.write_all(&sent).await?;
        let _ = timeout(STEP, socket.disconnect_from_host()).await;
        Ok::<_, BoxError>(())
    });
    let mut client = timeout(
        STEP,
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(pki)?),
    )
    .await??;
    // Give the server's tickets time to pass, then cut or corrupt what follows.
    tokio::time::sleep(Duration::from_millis(100)).await;
    armed.store(true, Ordering::SeqCst);
    client.write_all(b"go\n").await?;
    let mut received = Vec::new();
    let end = timeout(STEP, client.read_to_end(&mut received)).await?;
    Ok((received, end))
}

// Held: a stream cut inside a record (the relay drops the last 1000 bytes: the close_notify
// and part of the last data record) is an error after the whole records' data, never a
// clean end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_inside_a_record_is_an_error() -> TestResult {
    let pki = Pki::new()?;
    let data = pattern(100_000, 10);
    let (received, end) = read_through(&pki, Relay::CutTail(1000), data.clone()).await?;
    assert!(
        end.is_err(),
        "a cut stream ended cleanly after {} bytes",
        received.len()
    );
    assert!(received.len() < data.len());
    assert!(data.starts_with(&received));
    Ok(())
}

// Held: a close_notify record cut in the middle (its last 5 bytes dropped) is a truncation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_notify_cut_in_the_middle_is_a_truncation() -> TestResult {
    let pki = Pki::new()?;
    let data = pattern(10_000, 11);
    let (received, end) = read_through(&pki, Relay::CutTail(5), data.clone()).await?;
    assert!(
        received == data,
        "{} of {} bytes",
        received.len(),
        data.len()
    );
    let error = end
        .err()
        .ok_or("a half close_notify ended the stream cleanly")?;
    eprintln!("{error}");
    Ok(())
}

// Held: a byte flipped in the last data record: the data before it, then an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_last_record_is_an_error_after_the_data_before_it() -> TestResult {
    let pki = Pki::new()?;
    let data = pattern(100_000, 12);
    let (received, end) = read_through(&pki, Relay::FlipFromEnd(500), data.clone()).await?;
    assert!(end.is_err(), "a corrupt record ended the stream cleanly");
    assert!(received.len() < data.len());
    assert!(data.starts_with(&received));
    Ok(())
}

// ----- half-close against tokio-rustls --------------------------------------------------

// Held: README (poll_shutdown): "Reading stays possible until the peer finishes". A tokio-rustls
// server that reads to our close_notify and only then answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_our_shutdown_a_tokio_rustls_peer_can_still_answer() -> TestResult {
    let pki = Pki::new()?;
    let raw = support::raw_server_config(&pki).map_err(|e| e.to_string())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(raw);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let served = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut tls = acceptor.accept(stream).await?;
        let mut request = Vec::new();
        timeout(STEP, tls.read_to_end(&mut request)).await??;
        tls.write_all(b"answer after your close: ").await?;
        tls.write_all(&request).await?;
        tls.shutdown().await?;
        Ok::<_, BoxError>(())
    });
    let mut client = timeout(
        STEP,
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?),
    )
    .await??;
    client.write_all(b"question").await?;
    timeout(STEP, client.shutdown()).await??;
    let mut answer = Vec::new();
    timeout(STEP, client.read_to_end(&mut answer)).await??;
    assert_eq!(answer, b"answer after your close: question");
    timeout(STEP, served).await???;
    Ok(())
}

// ----- the server ----------------------------------------------------------------------

// Held: a client that connects and sends nothing: handshake() gives a timeout failure with
// its socket, after the handshake timeout and not much later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_times_out_with_its_socket() -> TestResult {
    let pki = Pki::new()?;
    let mut server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    server.set_handshake_timeout(Duration::from_millis(300));
    let port = server.local_addr().port();
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await?;
    let (stream, _) = server.accept().await?;
    let started = Instant::now();
    let result = timeout(STEP, server.handshake(stream)).await?;
    let elapsed = started.elapsed();
    let mut failed = result.err().ok_or("a silent client was encrypted")?;
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(
        failed.error().socket_error(),
        sslsocket::SocketError::SocketTimeoutError
    );
    assert!(failed.socket_mut().is_some());
    drop(failed);
    // The silent client's connection is closed.
    let mut byte = [0u8; 1];
    let read = timeout(STEP, silent.read(&mut byte)).await?;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    Ok(())
}

// Held: the Incoming stream dropped while handshakes run (a silent client, a client whose
// handshake trickles): both connections are closed promptly, nothing hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_incoming_mid_handshake_closes_those_connections() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let slow = relay(port, Relay::Trickle).await?;
    let mut incoming = server.incoming();
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await?;
    let configuration = client_configuration(&pki)?;
    let client = tokio::spawn(async move {
        SslSocket::connect_to_host_encrypted("localhost", slow, configuration).await
    });
    let deadline = Instant::now() + STEP;
    while incoming.handshakes_in_progress() < 2 {
        assert!(Instant::now() < deadline, "the handshakes did not start");
        let _ = timeout(Duration::from_millis(10), incoming.next()).await;
    }
    drop(incoming);
    let dropped = Instant::now();
    let mut byte = [0u8; 1];
    let read = timeout(STEP, silent.read(&mut byte)).await?;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let result = timeout(STEP, client).await??;
    ends_without_data(result).await?;
    assert!(
        dropped.elapsed() < Duration::from_secs(3),
        "{:?}",
        dropped.elapsed()
    );
    Ok(())
}

/// A client whose server gave its handshake up: the handshake fails, or (TLS 1.3, where the
/// client finishes on the server's flight alone) the first read is an error.
async fn ends_without_data(
    result: Result<SslSocket, sslsocket::tokio::FailedHandshake>,
) -> TestResult {
    if let Ok(mut socket) = result {
        let mut buf = [0u8; 8];
        let read = timeout(STEP, socket.read(&mut buf)).await?;
        assert!(
            read.is_err(),
            "a read from an abandoned connection: {read:?}"
        );
    }
    Ok(())
}

// Held: accept_encrypted given up (select!) while a client's handshake runs: that client's
// connection is closed, and the server goes on accepting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_encrypted_given_up_mid_handshake_leaves_the_server_usable() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let slow = relay(port, Relay::Trickle).await?;
    let configuration = client_configuration(&pki)?;
    let first = tokio::spawn({
        let configuration = configuration.clone();
        async move { SslSocket::connect_to_host_encrypted("localhost", slow, configuration).await }
    });
    tokio::select! {
        result = server.accept_encrypted() => {
            return Err(format!("the slow handshake finished: {:?}", result.is_ok()).into());
        }
        _ = tokio::time::sleep(Duration::from_millis(30)) => {}
    }
    let result = timeout(STEP, first).await??;
    ends_without_data(result).await?;
    let second = tokio::spawn(async move {
        let mut socket =
            SslSocket::connect_to_host_encrypted("localhost", port, configuration).await?;
        socket.write_all(b"hello\n").await?;
        let line = timeout(STEP, socket.next_line(0)).await??;
        Ok::<_, BoxError>(line)
    });
    let mut socket = timeout(STEP, server.accept_encrypted()).await??;
    let line = timeout(STEP, socket.next_line(0)).await??;
    socket.write_all(&line).await?;
    socket.flush().await?;
    assert_eq!(timeout(STEP, second).await???, b"hello\n");
    Ok(())
}

// ----- runtimes ------------------------------------------------------------------------

// Held: a socket made on one runtime, that runtime dropped, then used on another: errors,
// no panic and no hang; dropped outside any runtime: no panic.
#[test]
fn a_socket_outliving_its_runtime_fails_cleanly() -> TestResult {
    let pki = Pki::new()?;
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (mut client, server) = first.block_on(pair(&pki))?;
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (read, write, close) = second.block_on(async {
        let mut buf = [0u8; 16];
        let read = timeout(STEP, client.read(&mut buf)).await;
        let write = timeout(STEP, async {
            client.write_all(b"x").await?;
            client.flush().await
        })
        .await;
        let close = timeout(STEP, client.disconnect_from_host()).await;
        (read, write, close)
    });
    eprintln!("read {read:?} write {write:?} close {close:?}");
    assert!(
        matches!(read, Ok(Err(_))),
        "read on a dead runtime: {read:?}"
    );
    assert!(close.is_ok(), "the close hung");
    drop(second);
    drop(client);
    drop(server);
    Ok(())
}

// ----- more contracts ----------------------------------------------------------------------

/// A raw rustls client (not ours) that sends its Finished, a request and close_notify in
/// one write, then half-closes TCP and reads until the server's end.
fn finished_data_and_close_in_one_write(
    pki: &Pki,
    port: u16,
    request: &[u8],
) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            pki.root_der().to_vec(),
        ))
        .map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(STEP))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        while conn.wants_write() {
            conn.write_tls(&mut tcp).map_err(|e| e.to_string())?;
        }
        if !conn.is_handshaking() {
            break;
        }
        conn.read_tls(&mut tcp).map_err(|e| e.to_string())?;
        conn.process_new_packets().map_err(|e| e.to_string())?;
    }
    // The client's Finished is still queued: the request and close_notify go with it.
    conn.writer()
        .write_all(request)
        .map_err(|e| e.to_string())?;
    conn.send_close_notify();
    let mut flight = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut flight).map_err(|e| e.to_string())?;
    }
    tcp.write_all(&flight).map_err(|e| e.to_string())?;
    tcp.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    loop {
        match conn.read_tls(&mut tcp) {
            Ok(0) => break,
            Ok(_) => {
                conn.process_new_packets().map_err(|e| e.to_string())?;
                let mut chunk = [0u8; 4096];
                loop {
                    match conn.reader().read(&mut chunk) {
                        Ok(0) => return Ok(answer),
                        Ok(n) => answer.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(answer)
}

// Held: a client whose Finished, request and close_notify come in one segment: the tokio
// server's handshake succeeds, the request is read whole, then a clean end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_request_and_close_notify_in_one_segment_reach_the_server() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let request = pattern(5000, 13);
    let sent = request.clone();
    let pki = Arc::new(pki);
    let client_pki = Arc::clone(&pki);
    let client = tokio::task::spawn_blocking(move || {
        finished_data_and_close_in_one_write(&client_pki, port, &sent)
    });
    let mut socket = timeout(STEP, server.accept_encrypted()).await??;
    let mut received = Vec::new();
    timeout(STEP, socket.read_to_end(&mut received)).await??;
    assert!(
        received == request,
        "{} of {} bytes",
        received.len(),
        request.len()
    );
    assert!(socket.core().is_peer_closed_cleanly());
    let _answer = timeout(STEP, client).await??;
    Ok(())
}

/// A transport over a duplex pipe whose reads fail with `kind` once `broken` is set.
struct Breakable {
    inner: tokio::io::DuplexStream,
    broken: Arc<AtomicBool>,
    kind: ErrorKind,
}

impl tokio::io::AsyncRead for Breakable {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.broken.load(Ordering::SeqCst) {
            let kind = self.kind;
            return std::task::Poll::Ready(Err(std::io::Error::new(kind, "the tunnel collapsed")));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Breakable {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The error kind `poll_read` reports when the transport's read fails with `kind`: ours
/// (client over a `Breakable`), and tokio-rustls's over the same transport.
async fn read_error_kinds(pki: &Pki, kind: ErrorKind) -> Result<(ErrorKind, ErrorKind), BoxError> {
    let mut kinds = Vec::new();
    for ours in [true, false] {
        let (near, far) = tokio::io::duplex(64 * 1024);
        let broken = Arc::new(AtomicBool::new(false));
        let transport = Breakable {
            inner: near,
            broken: Arc::clone(&broken),
            kind,
        };
        let mut server = SslSocket::from_stream(far, server_configuration(pki)?);
        let served = tokio::spawn(async move {
            server.start_server_encryption().await?;
            let mut sink = Vec::new();
            let _ = timeout(STEP, server.read_to_end(&mut sink)).await;
            Ok::<_, BoxError>(())
        });
        let mut buf = [0u8; 16];
        let read = if ours {
            let mut client = SslSocket::from_stream(transport, client_configuration(pki)?);
            client.set_peer_verify_name("localhost");
            timeout(STEP, client.start_client_encryption()).await??;
            broken.store(true, Ordering::SeqCst);
            timeout(STEP, client.read(&mut buf)).await?
        } else {
            use tokio_rustls::rustls;
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
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let name = rustls::pki_types::ServerName::try_from("localhost")?;
            let mut client = timeout(STEP, connector.connect(name, transport)).await??;
            broken.store(true, Ordering::SeqCst);
            timeout(STEP, client.read(&mut buf)).await?
        };
        let error = read.err().ok_or("the broken transport's read succeeded")?;
        eprintln!("ours {ours}: {error:?}");
        kinds.push(error.kind());
        served.abort();
    }
    Ok((kinds[0], kinds[1]))
}

// Was a defect (round 34): a transport read error reaches AsyncRead callers with another io::ErrorKind: a
// failed transport (kind Other, HostUnreachable, ...) becomes InvalidData (the kind of bad
// TLS data), where tokio-rustls, and every tokio I/O type, keep the transport's kind.
// `From<Error> for io::Error` (error.rs) maps by SocketError; for `Error::Io` it should
// take the source's kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_read_error_keeps_its_kind() -> TestResult {
    let pki = Pki::new()?;
    for kind in [
        ErrorKind::Other,
        ErrorKind::HostUnreachable,
        ErrorKind::PermissionDenied,
    ] {
        let (ours, theirs) = read_error_kinds(&pki, kind).await?;
        assert_eq!(theirs, kind, "tokio-rustls");
        assert_eq!(ours, kind, "ours, for a transport error of kind {kind:?}");
    }
    Ok(())
}

// Held: writes given up by 1 ms timeouts while the peer reads slowly: a write that was
// cancelled took nothing, one that returned took exactly n; the peer gets the stream exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_cancelled_by_short_timeouts_take_nothing() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    let data = pattern(12_000_000, 14);
    let reader = tokio::spawn(async move {
        // Not reading at first: the socket buffers fill and the client's writes wait.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut received = Vec::new();
        let mut buf = vec![0u8; 32_768];
        loop {
            let n = timeout(STEP, server.read(&mut buf)).await??;
            if n == 0 {
                break;
            }
            let before = received.len();
            received.extend_from_slice(&buf[..n]);
            if before / 1_000_000 != received.len() / 1_000_000 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok::<_, BoxError>(received)
    });
    let mut at = 0;
    let mut cancelled = 0u32;
    let deadline = Instant::now() + Duration::from_secs(60);
    while at < data.len() {
        assert!(Instant::now() < deadline, "writing timed out");
        match timeout(Duration::from_millis(1), client.write(&data[at..])).await {
            Err(_) => cancelled += 1,
            Ok(n) => {
                let n = n?;
                assert!(n > 0, "poll_write gave Ok(0) for a non-empty buffer");
                at += n;
            }
        }
    }
    timeout(STEP, client.shutdown()).await??;
    let received = timeout(Duration::from_secs(60), reader).await???;
    eprintln!("{cancelled} writes cancelled");
    assert!(cancelled > 0, "no write was cancelled");
    assert!(
        received == data,
        "{} of {} bytes",
        received.len(),
        data.len()
    );
    Ok(())
}

// Held: after the peer reset the connection, writes fail; none returns Ok(0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_a_reset_fail_and_never_return_zero() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, mut server) = pair(&pki).await?;
    if let Some(tcp) = server.get_ref() {
        #[allow(deprecated)]
        tcp.set_linger(Some(Duration::ZERO))?;
    }
    server.abort();
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let chunk = vec![7u8; 10_000];
    let mut failed = None;
    for _ in 0..1000 {
        match timeout(STEP, client.write(&chunk)).await? {
            Ok(0) => return Err("poll_write gave Ok(0) for a non-empty buffer".into()),
            Ok(_) => {
                let _ = timeout(STEP, client.flush()).await?;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let error = failed.ok_or("writes after a reset kept succeeding")?;
    eprintln!("{error:?}");
    Ok(())
}

// Was a defect (round 34): over a transport that buffers its writes (tokio::io::BufStream, a tunnel with a
// write buffer), the handshake never finishes: the driver never calls the transport's
// poll_flush (src/tokio/io.rs PollWriter::flush is a no-op, stream.rs poll_flush and
// poll_shutdown only drain the core), so the ClientHello stays in the transport's buffer.
// tokio-rustls over the same transport flushes it and connects. The README promises TLS
// over "any S: AsyncRead + AsyncWrite + Unpin"; the driver should poll_flush the transport
// after writing to it (handshake flights, poll_flush, poll_shutdown, close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_a_write_buffering_transport_finishes_its_handshake() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        for _ in 0..2 {
            let mut socket = server.accept_encrypted().await?;
            let line = timeout(STEP, socket.next_line(0)).await??;
            socket.write_all(&line).await?;
            socket.flush().await?;
            let _ = timeout(STEP, socket.disconnect_from_host()).await;
        }
        Ok::<_, BoxError>(())
    });
    // The reference: tokio-rustls over a BufStream.
    {
        use tokio_rustls::rustls;
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
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let mut tls = timeout(
            Duration::from_secs(5),
            connector.connect(name, tokio::io::BufStream::new(tcp)),
        )
        .await
        .map_err(|_| "tokio-rustls over a BufStream: handshake timed out")??;
        tls.write_all(b"theirs\n").await?;
        tls.flush().await?;
        let mut line = vec![0u8; 7];
        timeout(STEP, tls.read_exact(&mut line)).await??;
        assert_eq!(line, b"theirs\n");
    }
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut client =
        SslSocket::from_stream(tokio::io::BufStream::new(tcp), client_configuration(&pki)?);
    client.set_peer_verify_name("localhost");
    timeout(Duration::from_secs(5), client.start_client_encryption())
        .await
        .map_err(|_| "ours over a BufStream: handshake timed out")??;
    client.write_all(b"ours\n").await?;
    client.flush().await?;
    let line = timeout(STEP, client.next_line(0)).await??;
    assert_eq!(line, b"ours\n");
    timeout(STEP, served).await???;
    Ok(())
}
