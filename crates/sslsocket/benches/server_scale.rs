//! A multi-core TLS server under 1, 10, 100 and 1,000 concurrent clients (issue #9, goal 5):
//! our `tokio::SslServer` against a tokio-rustls `TlsAcceptor`, both on a multi-threaded
//! tokio runtime with one worker per core.
//!
//! Each server runs in a child process (this binary with `BENCH_ROLE=scale-server`), so
//! its CPU time (user + system, all threads) can be read from `/proc/<pid>/stat`. The
//! server accepts in one task and spawns one task per connection: handshake, read one
//! byte, answer one byte, then the client's close_notify and its own close. The client is
//! this process, with its own multi-threaded runtime, and the same for both servers: raw
//! tokio-rustls clients, no resumption, each of N tasks doing connections back to back
//! (connect, full handshake, one byte each way, clean close both ways). Both sides set
//! TCP_NODELAY (Nagle is not what is measured here). Same certificate and settings as
//! `compare` (ECDSA P-256, TLS 1.3, X25519, the default suite; `BENCH_QUERY_PEER=1` makes
//! the tokio-rustls server ask for a client certificate too, as ours does by default); our
//! server's handshake timeout is 30 s (Qt's 5 s could fire under 1,000 clients on a busy
//! machine).
//!
//! A measurement: start N client tasks, wait 0.5 s + N ms (warm-up), count handshakes and read
//! the server's CPU time over a window (2 s, `BENCH_WINDOW` seconds), then stop the
//! clients and let the connections in flight finish (not counted). Rounds: `BENCH_RUNS`
//! (default 2); in each, every concurrency measures both servers back to back, the order
//! alternating. Reported: handshakes/s (median of the rounds; ratio = median of the
//! per-round ratios ours / raw), handshakes per server CPU-second (all rounds), the
//! server's average CPU use in cores, and failed connections. Both servers stay up for the
//! whole run, idle while the other one is measured.
//!
//! Run: `cargo bench -p sslsocket --bench server_scale` (about 45 s by default) or
//! `scripts/bench`. Needs ~1,100 open files per process (`ulimit -n`). Without the
//! `--bench` argument that `cargo bench` passes (`cargo test --benches`), a smoke run:
//! one round of 0.1 s windows.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use common::{BenchResult, Pki, Suite, Worker};

const CONCURRENCY: [usize; 4] = [1, 10, 100, 1000];
const SERVERS: [&str; 2] = ["ours", "raw"];
const WARM_UP: Duration = Duration::from_millis(500);
/// Bound of one connection, client side.
const CONNECTION_LIMIT: Duration = Duration::from_secs(30);
/// Bound of the wait for the clients in flight after a window.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

fn main() -> BenchResult<()> {
    match std::env::var(common::ROLE_ENV).as_deref() {
        Ok("scale-server") => return scale_server(),
        Ok(other) => return Err(format!("unknown {} `{other}`", common::ROLE_ENV).into()),
        Err(_) => {}
    }
    let cores = cores();
    common::require_open_files(*CONCURRENCY.iter().max().unwrap_or(&1) as u64 + 100)?;
    let pki = Pki::get()?;
    let window = std::env::var("BENCH_WINDOW")
        .ok()
        .and_then(|w| w.parse::<f64>().ok())
        .filter(|w| *w > 0.0)
        .map_or(
            Duration::from_secs_f64(2.0 * common::scale().min(1.0)),
            Duration::from_secs_f64,
        );
    let runs = common::runs(2)?;
    let client = common::rustls_client(&pki, Suite::Default, false)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;

    let mut workers = Vec::new();
    let mut ports = Vec::new();
    for server in SERVERS {
        let mut worker = Worker::start("scale-server", &pki, &[("BENCH_SERVER", server)])?;
        ports.push(
            worker
                .expect("port", Duration::from_secs(30))?
                .parse::<u16>()?,
        );
        workers.push(worker);
    }
    println!();
    println!(
        "==== multi-core server: ours tokio::SslServer vs tokio-rustls, {cores} worker threads each ===="
    );
    println!("{}", common::machine());
    // One connection to each first: both servers answer, and build what they build once.
    for port in &ports {
        let (ok, failed) = runtime.block_on(measure(&client, *port, 1, None, Duration::ZERO))?;
        if ok.work == 0 || failed > 0 {
            return Err(format!("server on port {port}: the first connection failed").into());
        }
    }

    // samples[concurrency][server]
    let mut samples: Vec<[Vec<Window>; 2]> =
        CONCURRENCY.iter().map(|_| Default::default()).collect();
    for round in 0..runs {
        eprintln!("server_scale: round {}/{runs}", round + 1);
        let order = if round.is_multiple_of(2) {
            [0, 1]
        } else {
            [1, 0]
        };
        for (c, concurrency) in CONCURRENCY.iter().enumerate() {
            for server in order {
                let pid = workers[server].pid();
                let (window, failed) = runtime.block_on(measure(
                    &client,
                    ports[server],
                    *concurrency,
                    Some(pid),
                    window,
                ))?;
                samples[c][server].push(Window { failed, ..window });
            }
        }
    }
    for worker in workers {
        worker.finish(Duration::from_secs(30))?;
    }
    report(&samples, runs, window);
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One window of one server at one concurrency.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    /// Handshakes completed in the window.
    work: usize,
    wall: Duration,
    /// The server's CPU time in the window.
    server_cpu: Duration,
    /// Connections that failed, whole measurement.
    failed: usize,
}

impl Window {
    fn rate(&self) -> f64 {
        self.work as f64 / self.wall.as_secs_f64()
    }
}

/// `concurrency` client tasks for a warm-up and a window; `pid`: the server, for its CPU
/// time. Returns the window and the number of failed connections.
async fn measure(
    client: &Arc<ClientConfig>,
    port: u16,
    concurrency: usize,
    pid: Option<u32>,
    window: Duration,
) -> BenchResult<(Window, usize)> {
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, done, failed, stop) = (
            Arc::clone(client),
            Arc::clone(&done),
            Arc::clone(&failed),
            Arc::clone(&stop),
        );
        tasks.push(tokio::spawn(async move {
            // At least one connection (the check at start uses a zero window).
            loop {
                match tokio::time::timeout(CONNECTION_LIMIT, one_connection(&client, port)).await {
                    Ok(Ok(())) => done.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }));
    }
    let mut result = Window::default();
    if !window.is_zero() {
        // Long enough for the first wave of handshakes at 1,000 clients.
        tokio::time::sleep(WARM_UP + Duration::from_millis(concurrency as u64)).await;
        let cpu_before = server_cpu(pid)?;
        let done_before = done.load(Ordering::SeqCst);
        let started = Instant::now();
        tokio::time::sleep(window).await;
        result = Window {
            work: done.load(Ordering::SeqCst) - done_before,
            wall: started.elapsed(),
            server_cpu: server_cpu(pid)?.saturating_sub(cpu_before),
            failed: 0,
        };
    }
    stop.store(true, Ordering::SeqCst);
    let drained = tokio::time::timeout(DRAIN_LIMIT, async {
        for task in tasks {
            task.await?;
        }
        BenchResult::Ok(())
    })
    .await;
    match drained {
        Ok(joined) => joined?,
        Err(_) => return Err("clients did not finish in time".into()),
    }
    if window.is_zero() {
        result.work = done.load(Ordering::SeqCst);
    }
    Ok((result, failed.load(Ordering::SeqCst)))
}

fn server_cpu(pid: Option<u32>) -> BenchResult<Duration> {
    match pid {
        Some(pid) => common::cpu_time(Some(pid)),
        None => Ok(Duration::ZERO),
    }
}

/// Connect, full handshake, one byte each way, close_notify both ways.
async fn one_connection(client: &Arc<ClientConfig>, port: u16) -> BenchResult<()> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let connector = TlsConnector::from(Arc::clone(client));
    let mut tls = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    tls.write_all(b"?").await?;
    tls.flush().await?;
    let mut answer = [0u8; 1];
    tls.read_exact(&mut answer).await?;
    tls.shutdown().await?;
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).await?;
    Ok(())
}

// ----- the server child ----------------------------------------------------------------

/// The child: the server named by `BENCH_SERVER` on a runtime with one worker per core;
/// prints `port N`, exits when its stdin ends.
fn scale_server() -> BenchResult<()> {
    let pki = Pki::get()?;
    let which = std::env::var("BENCH_SERVER")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .enable_all()
        .build()?;
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    match which.as_str() {
        "ours" => {
            let mut server = sslsocket::tokio::SslServer::from_listener(
                listener,
                common::ours_server(&pki, Suite::Default)?,
            )?;
            server.set_handshake_timeout(Duration::from_secs(30));
            runtime.spawn(async move {
                loop {
                    let Ok((tcp, _)) = server.accept().await else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let handshake = server.handshake(tcp);
                    tokio::spawn(async move {
                        let result = async {
                            let mut socket = handshake.await?;
                            exchange(&mut socket).await?;
                            socket.disconnect_from_host().await?;
                            BenchResult::Ok(())
                        };
                        if let Err(error) = result.await {
                            eprintln!("ours: {error}");
                        }
                    });
                }
            });
        }
        "raw" => {
            let acceptor = TlsAcceptor::from(common::rustls_server(&pki, Suite::Default)?);
            runtime.spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let accepting = acceptor.accept(tcp);
                    tokio::spawn(async move {
                        let result = async {
                            let mut tls = accepting.await?;
                            exchange(&mut tls).await?;
                            tls.shutdown().await?;
                            BenchResult::Ok(())
                        };
                        if let Err(error) = result.await {
                            eprintln!("raw: {error}");
                        }
                    });
                }
            });
        }
        other => return Err(format!("BENCH_SERVER: unknown `{other}`").into()),
    }
    common::say(&format!("port {port}"))?;
    let lines = common::stdin_lines();
    while lines.recv().is_ok() {}
    std::process::exit(0)
}

/// The server's part: the client's byte, ours, then the client's close (end of stream).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> BenchResult<()> {
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await?;
    stream.write_all(b"!").await?;
    stream.flush().await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    Ok(())
}

// ----- the table -----------------------------------------------------------------------

fn report(samples: &[[Vec<Window>; 2]], runs: usize, window: Duration) {
    let mut rows = Vec::new();
    for (concurrency, [ours, raw]) in CONCURRENCY.iter().zip(samples) {
        let rate = |s: &[Window]| common::median(s.iter().map(Window::rate).collect());
        let paired = common::median(
            ours.iter()
                .zip(raw)
                .map(|(o, r)| o.rate() / r.rate())
                .collect(),
        );
        let per_cpu = |s: &[Window]| {
            let work: usize = s.iter().map(|w| w.work).sum();
            let cpu: Duration = s.iter().map(|w| w.server_cpu).sum();
            work as f64 / cpu.as_secs_f64()
        };
        let cores_used = |s: &[Window]| {
            let cpu: Duration = s.iter().map(|w| w.server_cpu).sum();
            let wall: Duration = s.iter().map(|w| w.wall).sum();
            cpu.as_secs_f64() / wall.as_secs_f64()
        };
        let failed = |s: &[Window]| s.iter().map(|w| w.failed).sum::<usize>();
        rows.push([
            concurrency.to_string(),
            format!("{:.0}", rate(raw)),
            format!("{:.0}", rate(ours)),
            format!("{paired:.2}x"),
            format!("{:.0}", per_cpu(raw)),
            format!("{:.0}", per_cpu(ours)),
            format!("{:.2}x", per_cpu(ours) / per_cpu(raw)),
            format!("{:.2} / {:.2}", cores_used(raw), cores_used(ours)),
            format!("{} / {}", failed(raw), failed(ours)),
        ]);
    }
    let header = [
        "clients",
        "raw hs/s",
        "ours hs/s",
        "ratio",
        "raw hs/CPU-s",
        "ours hs/CPU-s",
        "ratio",
        "server cores raw/ours",
        "failed raw/ours",
    ];
    println!();
    let widths = [7, 9, 9, 7, 12, 13, 7, 21, 15];
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(&header.map(String::from)));
    for row in &rows {
        println!("{}", line(row));
    }
    println!();
    println!(
        "{runs} rounds of {:.1} s windows; hs/s: medians, ratio ours / raw = median of the per-round ratios;",
        window.as_secs_f64()
    );
    println!("hs/CPU-s: handshakes per CPU-second of the server process (all rounds).");
    let query_peer = if common::query_peer() {
        println!("{}", common::QUERY_PEER_LABEL);
        format!("; {}", common::QUERY_PEER_LABEL)
    } else {
        String::new()
    };
    println!();
    println!("---- Markdown ----");
    println!();
    println!(
        "**multi-core server** ({} worker threads, {runs} rounds; ratio = ours / tokio-rustls{query_peer})",
        cores()
    );
    println!();
    println!("| {} |", header.join(" | "));
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!("| {} |", row.join(" | "));
    }
}
