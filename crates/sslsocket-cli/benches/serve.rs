//! `sslsocket serve --echo`, measured through the real binary (issue #9):
//!
//! (a) RSS of the serve process per idle TLS connection, with 2,000 connections open
//!     (VmRSS from /proc/PID/status before and after; delta / 2,000), once right after
//!     the handshakes and once more after one 1 KiB echo on each;
//! (b) echo round-trip latency (median, p99) for 1 B to 1 MiB, against the same through a
//!     plain-TCP echo server (tokio, TCP_NODELAY) in this process, with the ratio (and a
//!     tokio-rustls echo server in this process, for what TLS itself costs);
//! (c) the echo throughput of 4 good clients (64 KiB messages), alone and while 500 other
//!     clients keep connecting, handshaking and leaving.
//!
//! `cargo bench -p sslsocket-cli --bench serve`. `SERVE_BIN=/path/to/sslsocket` measures
//! another build (an older one, say); `SERVE_CONNECTIONS=N` changes the 2,000;
//! `SERVE_ARGS="--backend openssl"` adds options to serve's command line. The client
//! is tokio-rustls, trusting a certificate made here. Every wait has a time limit and
//! every loop a bound; a size that times out is reported as such.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const IDLE_CONNECTIONS: usize = 2000;
/// Handshakes in flight at once while opening the idle connections.
const OPENING_AT_ONCE: usize = 64;
const SIZES: [usize; 7] = [
    1,
    1024,
    16 * 1024,
    35 * 1024,
    64 * 1024,
    256 * 1024,
    1024 * 1024,
];
/// The longest one round trip may take before the size is given up.
const ROUND_TRIP_LIMIT: Duration = Duration::from_secs(10);
const STEP_LIMIT: Duration = Duration::from_secs(60);

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("serve bench: runtime: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(run()) {
        eprintln!("serve bench: {error}");
        std::process::exit(1);
    }
}

async fn run() -> BenchResult<()> {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let binary = std::env::var_os("SERVE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sslsocket")));
    let connections = std::env::var("SERVE_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(IDLE_CONNECTIONS);
    let dir = tempfile::tempdir()?;
    let (cert_path, key_path, connector, acceptor) = certificate(&dir)?;
    println!("serve bench: {}", binary.display());

    // (a) memory per idle connection.
    {
        let server = Server::start(&binary, &cert_path, &key_path)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = server.rss_kib()?;
        let mut clients =
            tokio::time::timeout(STEP_LIMIT, open_idle(server.addr, &connector, connections))
                .await??;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let after = server.rss_kib()?;
        let per = (after.saturating_sub(before)) as f64 / connections as f64;
        println!(
            "idle: {connections} TLS connections: serve VmRSS {before} KiB -> {after} KiB: \
             {per:.1} KiB per connection"
        );
        let echoed = tokio::time::timeout(STEP_LIMIT, echo_each(&mut clients, 1024)).await??;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let used = server.rss_kib()?;
        let per_used = (used.saturating_sub(before)) as f64 / connections as f64;
        println!(
            "idle after one 1 KiB echo on {echoed} of them: serve VmRSS {used} KiB: \
             {per_used:.1} KiB per connection"
        );
        drop(clients);
    }

    // (b) echo latency, TLS through serve against plain TCP.
    let server = Server::start(&binary, &cert_path, &key_path)?;
    let plain = plain_echo_server().await?;
    let tls = TcpStream::connect(server.addr).await?;
    tls.set_nodelay(true)?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost")?, tls)
        .await?;
    let mut tcp = TcpStream::connect(plain).await?;
    tcp.set_nodelay(true)?;
    // The same echo through tokio-rustls in this process: what TLS itself costs here.
    let raw = rustls_echo_server(acceptor).await?;
    let raw = TcpStream::connect(raw).await?;
    raw.set_nodelay(true)?;
    let mut raw = connector
        .connect(ServerName::try_from("localhost")?, raw)
        .await?;
    println!(
        "{:>9} | {:>11} {:>11} | {:>11} {:>11} | {:>7} {:>7} | {:>13} {:>7}",
        "size",
        "serve p50ms",
        "serve p99ms",
        "tcp p50 ms",
        "tcp p99 ms",
        "p50 x",
        "p99 x",
        "rustls p50ms",
        "p50 x"
    );
    for size in SIZES {
        let rounds = rounds_for(size);
        let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let tls_times = measure(&mut tls, &message, rounds).await;
        let tcp_times = measure(&mut tcp, &message, rounds).await;
        let raw_times = measure(&mut raw, &message, rounds).await;
        match (tls_times, tcp_times, raw_times) {
            (Ok(t), Ok(p), Ok(r)) => {
                let (t50, t99) = (percentile(&t, 50), percentile(&t, 99));
                let (p50, p99) = (percentile(&p, 50), percentile(&p, 99));
                let r50 = percentile(&r, 50);
                println!(
                    "{:>9} | {:>11.3} {:>11.3} | {:>11.3} {:>11.3} | {:>7.2} {:>7.2} | {:>13.3} {:>7.2}",
                    label(size),
                    t50,
                    t99,
                    p50,
                    p99,
                    t50 / p50,
                    t99 / p99,
                    r50,
                    r50 / p50
                );
            }
            (t, p, r) => {
                println!(
                    "{:>9} | serve: {} | tcp: {} | rustls: {}",
                    label(size),
                    t.map_or_else(|e| e.to_string(), |_| "ok".into()),
                    p.map_or_else(|e| e.to_string(), |_| "ok".into()),
                    r.map_or_else(|e| e.to_string(), |_| "ok".into())
                );
                // A timed-out stream is in an unknown state: the rest cannot be measured.
                break;
            }
        }
    }
    drop(server);

    // (c) good clients under churn.
    let server = Server::start(&binary, &cert_path, &key_path)?;
    let alone = good_clients(server.addr, &connector).await?;
    let stop = Instant::now() + CHURN_WARMUP + GOOD_RUN + Duration::from_millis(500);
    // The churning clients run on threads of their own, so that they do not take the good
    // clients' turns in this process.
    let churn_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut churn = Vec::with_capacity(CHURN_CLIENTS);
    for _ in 0..CHURN_CLIENTS {
        churn.push(churn_runtime.spawn(churn_client(server.addr, connector.clone(), stop)));
    }
    tokio::time::sleep(CHURN_WARMUP).await;
    let churned = good_clients(server.addr, &connector).await?;
    let mut handshakes = 0;
    for task in churn {
        handshakes += tokio::time::timeout(STEP_LIMIT, task).await??;
    }
    churn_runtime.shutdown_background();
    println!(
        "good clients: {GOOD_CLIENTS} x 64 KiB echoes: {alone:.1} MB/s alone, {churned:.1} MB/s \
         while {CHURN_CLIENTS} clients churn ({handshakes} handshakes)"
    );
    drop(server);
    Ok(())
}

const GOOD_CLIENTS: usize = 4;
const GOOD_RUN: Duration = Duration::from_secs(3);
const CHURN_CLIENTS: usize = 500;
const CHURN_WARMUP: Duration = Duration::from_millis(500);

/// MB/s echoed by `GOOD_CLIENTS` clients sending 64 KiB messages for `GOOD_RUN`.
async fn good_clients(addr: SocketAddr, connector: &TlsConnector) -> BenchResult<f64> {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(GOOD_CLIENTS);
    for _ in 0..GOOD_CLIENTS {
        let connector = connector.clone();
        tasks.push(tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let mut tls = tokio::time::timeout(
                ROUND_TRIP_LIMIT,
                connector.connect(ServerName::try_from("localhost")?, tcp),
            )
            .await??;
            let message = vec![5u8; 64 * 1024];
            let mut bytes = 0usize;
            while start.elapsed() < GOOD_RUN {
                tokio::time::timeout(ROUND_TRIP_LIMIT, round_trip(&mut tls, &message))
                    .await
                    .map_err(|_| "timed out")??;
                bytes += message.len();
            }
            Ok::<usize, Box<dyn std::error::Error + Send + Sync>>(bytes)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += tokio::time::timeout(STEP_LIMIT, task).await???;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// Connects, handshakes and leaves, again and again until `stop`; how many handshakes
/// finished.
async fn churn_client(addr: SocketAddr, connector: TlsConnector, stop: Instant) -> usize {
    let mut done = 0;
    while Instant::now() < stop {
        let attempt = async {
            let tcp = TcpStream::connect(addr).await?;
            let name = ServerName::try_from("localhost")?;
            let tls = connector.connect(name, tcp).await?;
            drop(tls);
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        };
        if let Ok(Ok(())) = tokio::time::timeout(ROUND_TRIP_LIMIT, attempt).await {
            done += 1;
        }
    }
    done
}

/// A certificate for localhost in `dir`, a client that trusts it, and a tokio-rustls
/// server with it.
fn certificate(
    dir: &tempfile::TempDir,
) -> BenchResult<(PathBuf, PathBuf, TlsConnector, TlsAcceptor)> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem())?;
    std::fs::write(&key_path, certified.signing_key.serialize_pem())?;
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(certified.cert.der().to_vec()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(certified.cert.der().to_vec())],
            key,
        )?;
    Ok((
        cert_path,
        key_path,
        TlsConnector::from(Arc::new(config)),
        TlsAcceptor::from(Arc::new(server)),
    ))
}

/// A running `sslsocket serve --echo`, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(binary: &PathBuf, cert: &PathBuf, key: &PathBuf) -> BenchResult<Server> {
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--echo", "--json"])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(
                std::env::var("SERVE_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout);
        // The listening line comes as soon as the server listens (a wrapper such as a
        // profiler may print lines of its own first).
        let mut addr = None;
        for _ in 0..20 {
            let mut line = String::new();
            if lines.read_line(&mut line)? == 0 {
                break;
            }
            let value: Option<serde_json::Value> = serde_json::from_str(line.trim()).ok();
            if let Some(address) = value.as_ref().and_then(|v| v["address"].as_str()) {
                addr = Some(address.parse::<SocketAddr>()?);
                break;
            }
        }
        let addr = addr.ok_or("serve printed no listening line")?;
        // Keep draining the per-connection lines so that serve never blocks on stdout.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while lines.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        Ok(Server { child, addr })
    }

    fn rss_kib(&self) -> BenchResult<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .ok_or("no VmRSS")?;
        Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Client = tokio_rustls::client::TlsStream<TcpStream>;

/// Opens `n` TLS connections (handshakes finished), `OPENING_AT_ONCE` at a time.
async fn open_idle(
    addr: SocketAddr,
    connector: &TlsConnector,
    n: usize,
) -> BenchResult<Vec<Client>> {
    let mut clients = Vec::with_capacity(n);
    while clients.len() < n {
        let batch = OPENING_AT_ONCE.min(n - clients.len());
        let mut tasks = Vec::with_capacity(batch);
        for _ in 0..batch {
            let connector = connector.clone();
            tasks.push(tokio::spawn(async move {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let tls = connector
                    .connect(ServerName::try_from("localhost")?, tcp)
                    .await?;
                Ok::<Client, Box<dyn std::error::Error + Send + Sync>>(tls)
            }));
        }
        for task in tasks {
            clients.push(task.await??);
        }
    }
    Ok(clients)
}

/// One echo of `size` bytes on each connection, one after the other.
async fn echo_each(clients: &mut [Client], size: usize) -> BenchResult<usize> {
    let message = vec![7u8; size];
    let mut done = 0;
    for client in clients.iter_mut() {
        round_trip(client, &message).await?;
        done += 1;
    }
    Ok(done)
}

/// A tokio echo server on plain TCP with TCP_NODELAY, writing back each read whole.
async fn plain_echo_server() -> BenchResult<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    let Some(data) = buf.get(..n).filter(|d| !d.is_empty()) else {
                        break;
                    };
                    if stream.write_all(data).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// A tokio-rustls echo server with TCP_NODELAY, writing back each read whole.
async fn rustls_echo_server(acceptor: TlsAcceptor) -> BenchResult<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    let Some(data) = buf.get(..n).filter(|d| !d.is_empty()) else {
                        break;
                    };
                    if stream.write_all(data).await.is_err() || stream.flush().await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Writes `message` and reads it back whole, at the same time (so a message larger than
/// the socket buffers cannot deadlock), checking the bytes.
async fn round_trip<S>(stream: &mut S, message: &[u8]) -> BenchResult<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut back = vec![0u8; message.len()];
    let write = async {
        writer.write_all(message).await?;
        writer.flush().await
    };
    let (written, read) = tokio::join!(write, reader.read_exact(&mut back));
    written?;
    read?;
    if back != message {
        return Err("the echo differs from the message".into());
    }
    Ok(())
}

/// Round-trip times in milliseconds, after a few unmeasured ones.
async fn measure<S>(stream: &mut S, message: &[u8], rounds: usize) -> BenchResult<Vec<f64>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for _ in 0..3 {
        tokio::time::timeout(ROUND_TRIP_LIMIT, round_trip(stream, message))
            .await
            .map_err(|_| "timed out")??;
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        tokio::time::timeout(ROUND_TRIP_LIMIT, round_trip(stream, message))
            .await
            .map_err(|_| "timed out")??;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

fn rounds_for(size: usize) -> usize {
    match size {
        0..=65536 => 200,
        65537..=262_144 => 100,
        _ => 40,
    }
}

fn percentile(times: &[f64], p: usize) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = (sorted.len().saturating_sub(1) * p).div_ceil(100);
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

fn label(size: usize) -> String {
    match size {
        n if n >= 1024 * 1024 && n % (1024 * 1024) == 0 => format!("{} MiB", n / (1024 * 1024)),
        n if n >= 1024 && n % 1024 == 0 => format!("{} KiB", n / 1024),
        n => format!("{n} B"),
    }
}
