//! The tokio driver as real async programs use it (adversarial review, round 32):
//! `tokio::io::split` with a reading and a writing task on a multi-threaded runtime,
//! cancellation, `poll_flush`/`poll_shutdown`, servers with many clients.
//!
//! Every test asserts the behaviour the library documents and failed before its fix (the
//! defect is described on each). Every wait is bounded (`tokio::time::timeout`), so nothing hangs
//! the run. Run on both backends: `SSLSOCKET_BACKEND=openssl cargo test -p sslsocket
//! --all-features --test tokio_round32`. The KeyUpdate-flood test failed on the OpenSSL
//! backend only (on rustls the condition it needs is never reached); the others on both.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::prelude::*;
use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::{SslCertificate, SslConfiguration, SslKey};
use support::raw::{joined, raw_peer, ThreadResult};
use support::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tokio_rustls::rustls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

/// Bound of any one step.
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

/// `len` bytes of xorshift noise.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------
// split during a handshake
// ---------------------------------------------------------------------------------------

/// A reading task and a writing task on the halves of `tokio::io::split` of a client whose
/// handshake was started (`begin_client_encryption`) but not finished: the README's
/// STARTTLS shape, and what any program does that splits before awaiting the handshake.
/// The server answers the ClientHello 300 ms late (a slow network), so both tasks are
/// waiting inside the handshake when the answer arrives.
///
/// Expected: the writer's `write_all` + `flush` and the reader's `read_exact` of the
/// server's reply both finish. The module docs (tokio/stream.rs) say "While a handshake
/// runs, either side drives it in both directions".
async fn split_while_handshaking(reader_first: bool) -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let (stream, _) = server.accept().await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut socket = server.handshake(stream).await?;
        let mut request = [0u8; 6];
        socket.read_exact(&mut request).await?;
        socket.write_all(b"world\n").await?;
        socket.flush().await?;
        let mut rest = Vec::new();
        let _ = timeout(STEP, socket.read_to_end(&mut rest)).await;
        Ok::<_, BoxError>(request)
    });
    let mut client =
        SslSocket::connect_to_host("localhost", port, client_configuration(&pki)?).await?;
    client.begin_client_encryption()?;
    let (mut reader, mut writer) = tokio::io::split(client);
    let read_task = async move {
        let mut reply = [0u8; 6];
        reader.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>((reader, reply))
    };
    let write_task = async move {
        writer.write_all(b"hello\n").await?;
        writer.flush().await?;
        Ok::<_, std::io::Error>(writer)
    };
    let (read_task, write_task) = if reader_first {
        let r = tokio::spawn(read_task);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let w = tokio::spawn(write_task);
        (r, w)
    } else {
        let w = tokio::spawn(write_task);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = tokio::spawn(read_task);
        (r, w)
    };
    let wrote = timeout(STEP, write_task).await;
    let read = timeout(STEP, read_task).await;
    let wrote_ok = matches!(wrote, Ok(Ok(Ok(_))));
    let read_ok = matches!(&read, Ok(Ok(Ok((_, reply)))) if reply == b"world\n");
    served.abort();
    assert!(
        wrote_ok && read_ok,
        "split during the handshake: writer finished: {wrote_ok} ({}), reader finished: \
         {read_ok} ({}) (a half that timed out lost its wake-up)",
        if wrote.is_err() { "timed out" } else { "ended" },
        if read.is_err() { "timed out" } else { "ended" },
    );
    Ok(())
}

/// Defect (both backends). The reader polls first: it sends the ClientHello and registers
/// the socket's read waker; the writer's `flush` then drives the handshake with
/// `Drive::Both` (tokio/stream.rs `drive_for`), registering *its* waker for readability,
/// which replaces the reader's (tokio keeps one waker per direction). The ServerHello wakes
/// only the writer, which finishes the handshake and returns; the reader is never polled
/// again and its `read_exact` hangs although the reply arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_reader_and_writer_both_finish_when_split_during_the_handshake_reader_first(
) -> TestResult {
    split_while_handshaking(true).await
}

/// Defect (both backends). The same with the writer polled first: the reader's later poll
/// replaces the writer's read waker, the reader finishes the handshake (and sends the
/// queued request with it), and the writer's `flush`, registered only for readability,
/// is never woken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_reader_and_writer_both_finish_when_split_during_the_handshake_writer_first(
) -> TestResult {
    split_while_handshaking(false).await
}

// ---------------------------------------------------------------------------------------
// poll_flush after the socket failed
// ---------------------------------------------------------------------------------------

/// A peer that completes the handshake and closes at once (FIN); the client's next write
/// then makes the peer's kernel answer with RST.
fn close_after_handshake(
    tls: rustls::StreamOwned<rustls::ServerConnection, StdTcpStream>,
) -> ThreadResult<()> {
    drop(tls);
    Ok(())
}

/// Defect (both backends). The peer closed TCP and reset the connection when our first
/// write after that arrived; our next `write_all` hands the data to TLS and tries to send
/// it: the send fails (EPIPE/ECONNRESET), the driver records the failure and drops the
/// transport (tokio/pump.rs `poll_send_pending` -> `fail`), and `poll_write` returns
/// `Ok(n)` ("reported by the next call"). The next call is `flush`, and `poll_flush`
/// returns `Ok(())` at once because the transport is gone (tokio/stream.rs `poll_flush`:
/// `if this.stream.is_none() { return Ready(Ok(())) }`), never looking at the failure.
/// `write_all` + `flush` both `Ok` for bytes that never left: silent data loss. Expected:
/// an error from one of them (as `poll_shutdown` and `wait_for_bytes_written` report the
/// failure; "Waits until every byte written reached the socket").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_reports_an_error_when_the_data_could_not_be_sent() -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = raw_peer(&pki, close_after_handshake).map_err(|e| e.to_string())?;
    let mut client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    tokio::task::spawn_blocking(move || joined(peer)).await???;
    // The peer's FIN arrives; this write goes out and draws the peer's RST.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = timeout(STEP, async {
        client.write_all(b"probe").await?;
        client.flush().await
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let state_before = client.state();
    let wrote = timeout(STEP, client.write_all(b"second, never delivered")).await?;
    let flushed = timeout(STEP, client.flush()).await?;
    assert!(
        wrote.is_err() || flushed.is_err(),
        "write_all gave {wrote:?} and flush gave {flushed:?} although the peer had reset \
         the connection and nothing was sent (state before {state_before:?}; after: socket \
         error {:?}, {:?}, state {:?})",
        client.error(),
        client.error_string(),
        client.state()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// split with a peer that floods KeyUpdate requests (the 256 KiB rule of 5d9fdac)
// ---------------------------------------------------------------------------------------

/// Phase 1 (`flood` long): never reads; one byte of data and a KeyUpdate asking for one
/// back, over and over, until its socket stays full for 1 s. Phase 2: reads (and drops)
/// every byte until the end of stream, 3 s of silence, or 30 s. Returns the count of TLS
/// bytes read.
fn flood_then_read(
    flood: Duration,
) -> impl FnOnce(rustls::StreamOwned<rustls::ServerConnection, StdTcpStream>) -> ThreadResult<usize>
{
    move |mut tls| {
        tls.sock
            .set_write_timeout(Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        'flood: while started.elapsed() < flood {
            for _ in 0..256 {
                tls.conn
                    .writer()
                    .write_all(b"x")
                    .map_err(|e| e.to_string())?;
                tls.conn.refresh_traffic_keys().map_err(|e| e.to_string())?;
            }
            while tls.conn.wants_write() {
                if tls.conn.write_tls(&mut tls.sock).is_err() {
                    break 'flood;
                }
            }
        }
        // Phase 2: drain the raw bytes (not decrypted: our KeyUpdate answers come back to
        // back, more than rustls's 32 in a row, which it would refuse as misbehaviour).
        tls.sock
            .set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        while Instant::now() < deadline {
            match tls.sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                // Quiet for 3 s: nothing more comes.
                Err(_) => break,
            }
        }
        Ok(got)
    }
}

/// Defect (OpenSSL backend). A reading task and a writing task on `tokio::io::split`; the
/// peer floods KeyUpdate requests for 2 s without reading (the writer's data and our
/// KeyUpdate answers pile up), then reads everything. The writer blocks first in
/// `poll_write` (socket full; its waker registered for writability). The reader, once
/// 256 KiB of answers wait unsent (`input_waits_for_output`, added in 5d9fdac), calls
/// `poll_send(cx, true)` in tokio/pump.rs `poll_until` and registers *its own* waker for
/// writability, replacing the writer's (tokio keeps one per direction). When the peer
/// reads, only the reader wakes: it sends everything (the writer's records included) and
/// goes back to reading; the writer is never polled again and `write_all` hangs for ever.
/// Expected: the writer's 4 MiB `write_all` + `flush` finish and the peer receives them
/// (rustls backend: rustls answers KeyUpdates only with our next data, the 256 KiB is not
/// reached, and this passes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_writer_is_not_starved_by_a_reader_waiting_for_output_under_a_key_update_flood(
) -> TestResult {
    const LEN: usize = 4 << 20;
    let pki = Pki::new()?;
    let (port, peer) = raw_peer_counting(&pki, flood_then_read(Duration::from_secs(2)))?;
    let client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    let (mut reader, mut writer) = tokio::io::split(client);
    let read_task = tokio::spawn(async move {
        let mut sink = vec![0u8; 16 * 1024];
        let mut total = 0usize;
        loop {
            match reader.read(&mut sink).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    });
    let data = pattern(LEN, 9);
    let write_task = tokio::spawn(async move {
        writer.write_all(&data).await?;
        writer.flush().await?;
        Ok::<_, std::io::Error>(writer)
    });
    let wrote = timeout(Duration::from_secs(25), write_task).await;
    let received = tokio::task::spawn_blocking(move || joined(peer)).await?;
    read_task.abort();
    assert!(
        matches!(wrote, Ok(Ok(Ok(_)))),
        "the writing task did not finish its write_all + flush of {LEN} bytes \
         ({}); the peer received {received:?} bytes",
        match &wrote {
            Err(_) => "timed out after 25 s".to_string(),
            Ok(r) => format!("{:?}", r.as_ref().map(|r| r.as_ref().map(|_| ()))),
        }
    );
    let received = received.map_err(|e| e.to_string())??;
    assert!(
        received >= LEN,
        "the peer received {received} TLS bytes for {LEN} written"
    );
    Ok(())
}

/// [`raw_peer`] whose script returns a value.
fn raw_peer_counting<T: Send + 'static>(
    pki: &Pki,
    script: impl FnOnce(rustls::StreamOwned<rustls::ServerConnection, StdTcpStream>) -> ThreadResult<T>
        + Send
        + 'static,
) -> Result<(u16, thread::JoinHandle<ThreadResult<T>>), BoxError> {
    let config = support::raw_server_config(pki).map_err(|e| e.to_string())?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> ThreadResult<T> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(STEP))
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        script(rustls::StreamOwned::new(conn, tcp))
    });
    Ok((port, server))
}
