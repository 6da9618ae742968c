//! Adversarial review of round 32's changes (`git log 8b430c5..HEAD`). Each test asserts
//! the correct behaviour and failed before its fix (the defect is described on each). Real peers on
//! 127.0.0.1 (our own tokio `SslServer`), certificates made at test time; both backends
//! (`SSLSOCKET_BACKEND=openssl` for the second run).

mod support;

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sslsocket::tokio::{SslServer, SslSocket};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

/// CPU time (user + system) of this whole process, in clock ticks (100 per second).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> u64 { fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0) };
    // Fields 14 and 15 of proc(5) (utime, stime), counted from the state (field 3).
    field(11) + field(12)
}

/// A connected tokio client whose peer (our tokio server) finished the handshake and then
/// neither reads nor writes for 30 s: a quiet connection whose sending side fills up.
async fn quiet_connection() -> Result<(SslSocket, JoinHandle<()>), BoxError> {
    let pki = support::Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server_config = support::serving(&leaf).map_err(|e| e.to_string())?;
    let client_config = support::trusting(&pki).map_err(|e| e.to_string())?;
    let server = SslServer::bind("127.0.0.1:0", server_config).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        if let Ok((stream, _)) = server.accept().await {
            if let Ok(socket) = server.handshake(stream).await {
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(socket);
            }
        }
    });
    let client = SslSocket::connect_to_host_encrypted("localhost", port, client_config).await?;
    Ok((client, served))
}

/// Defect (both backends, tokio driver; src/tokio/pump.rs `park`, added in 0d7b92d).
///
/// Three tasks share one tokio socket (`Arc<Mutex<SslSocket>>`, each polling through
/// `poll_fn`): a writer whose `poll_write` waits because the peer reads nothing, and two
/// readers waiting for data that never comes. Nothing happens on the connection, so the
/// process must be idle. `park` keeps two wakers; a third task that parks "wakes the
/// oldest to look again", and that one, finding nothing to do, parks again and wakes the
/// next oldest, for ever: the three tasks wake each other in a ring without any I/O
/// (measured: ~2 million polls and ~100% of a core over 3 s of silence).
///
/// Expected: less than 0.5 s of CPU over 3 s of a quiet connection (the same test with
/// the two-task `tokio::io::split` shape measures 0 ticks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tasks_waiting_on_a_quiet_connection_do_not_spin() -> TestResult {
    let (client, served) = quiet_connection().await?;
    let shared = Arc::new(Mutex::new(client));
    let polls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // The writer first, until the socket is full and its write waits.
    {
        let shared = Arc::clone(&shared);
        let polls = Arc::clone(&polls);
        tasks.push(tokio::spawn(async move {
            let data = vec![7u8; 256 << 20];
            let mut offset = 0;
            while offset < data.len() {
                let written = poll_fn(|cx| {
                    polls.fetch_add(1, Ordering::Relaxed);
                    let Ok(mut socket) = shared.lock() else {
                        return std::task::Poll::Ready(Err(std::io::Error::other("poisoned")));
                    };
                    Pin::new(&mut *socket).poll_write(cx, &data[offset..])
                })
                .await;
                match written {
                    Ok(n) => offset += n,
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Then two readers (our output is pending, so they wait the full way).
    for _ in 0..2 {
        let shared = Arc::clone(&shared);
        let polls = Arc::clone(&polls);
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 256];
            let _ = poll_fn(|cx| {
                polls.fetch_add(1, Ordering::Relaxed);
                let Ok(mut socket) = shared.lock() else {
                    return std::task::Poll::Ready(Err(std::io::Error::other("poisoned")));
                };
                let mut read = ReadBuf::new(&mut buf);
                Pin::new(&mut *socket).poll_read(cx, &mut read)
            })
            .await;
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ticks_before, polls_before) = (cpu_ticks(), polls.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ticks = cpu_ticks() - ticks_before;
    let polled = polls.load(Ordering::Relaxed) - polls_before;
    for task in tasks {
        task.abort();
    }
    served.abort();
    assert!(
        ticks < 50,
        "three tasks waiting on a quiet connection used {ticks} ticks of CPU (1/100 s) \
         in 3 s, polled {polled} times: they wake each other in a ring"
    );
    Ok(())
}
