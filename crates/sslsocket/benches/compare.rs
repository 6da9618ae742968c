//! Our two drivers against raw tokio-rustls, side by side, in one run:
//!
//! - bulk transfer: 256 MiB client → server in 64 KiB writes, the server counts and
//!   discards, then answers one byte (the clock stops when the client has it);
//! - full handshakes per second, one at a time: connect, handshake, clean close on both
//!   sides (close_notify both ways), no resumption.
//!
//! Same configuration everywhere: an ECDSA P-256 server certificate made by rcgen at start,
//! a client trusting its CA, TLS 1.3 only, the aws-lc-rs provider (so the same cipher
//! suite and key exchange, printed below), 127.0.0.1. Each `SslConfiguration` and each
//! rustls config is built once and reused for every connection. Servers are sockets, like
//! the raw side: the blocking one a `std` listener + `blocking::SslSocket` (the blocking
//! `SslServer` would add its thread per handshake), the tokio one `tokio::SslServer`
//! (with its handshake timeout). Variants are interleaved round by round; the table shows
//! wall-clock rates (medians, and medians of the per-round ratios ours / raw) and rates
//! per CPU-second of the whole process, which hold up better on a shared machine.
//!
//! Run: `cargo bench -p sslsocket --bench compare` (a plain `main`, no criterion: the
//! point is the ratio table, and the run stays well under a minute). For a profiler, one
//! variant once: `COMPARE_ONLY=tokio-bulk` (or `blocking-`/`raw-`, `-bulk`/`-handshakes`)
//! with the bench binary.

use std::error::Error;
use std::io::{Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sslsocket::{SslCertificate, SslConfiguration, SslKey, SslProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const BULK: usize = 256 << 20;
const BULK_MB: f64 = BULK as f64 / 1e6;
const CHUNK: usize = 64 << 10;
const HANDSHAKES: usize = 400;
const ROUNDS: usize = 7;
/// Bound of every blocking wait, so a broken variant fails instead of hanging.
const STEP: Duration = Duration::from_secs(30);

fn main() -> BenchResult<()> {
    let setup = Setup::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    println!("negotiated (blocking): {}", blocking_session(&setup)?);
    println!(
        "negotiated (tokio):    {}",
        runtime.block_on(tokio_session(&setup))?
    );
    println!(
        "negotiated (raw):      {}",
        runtime.block_on(raw_session(&setup))?
    );

    if let Ok(only) = std::env::var("COMPARE_ONLY") {
        return run_one(&only, &setup, &runtime);
    }

    // Wall-clock rates (median of the rounds) and rates per CPU-second of the whole
    // process, client and server together (summed over the rounds): the second is what
    // the library costs, and stays meaningful on a machine shared with other work.
    let mut bulk: [Vec<Sample>; 3] = Default::default();
    let mut handshakes: [Vec<Sample>; 3] = Default::default();
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        // Alternate the order, so no variant always runs first after a pause.
        let order = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for variant in order {
            bulk[variant].push(sample(BULK_MB, || run_bulk(variant, &setup, &runtime))?);
        }
        for variant in order {
            handshakes[variant].push(sample(HANDSHAKES as f64, || {
                run_handshakes(variant, &setup, &runtime)
            })?);
        }
    }

    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "", "blocking", "tokio", "raw", "blk/raw", "tokio/raw"
    );
    wall_row("bulk, MB/s", &bulk);
    cpu_row("bulk, MB per CPU-second", &bulk);
    wall_row("handshakes/s", &handshakes);
    cpu_row("handshakes per CPU-second", &handshakes);
    println!();
    println!("wall rows: medians of the rounds; their ratios are the medians of the ratios");
    println!("of each round (variants of a round run back to back, so they share its load).");
    println!("CPU rows: all rounds together, client and server, whole process.");
    Ok(())
}

const VARIANTS: [&str; 3] = ["blocking", "tokio", "raw"];

fn run_bulk(
    variant: usize,
    setup: &Setup,
    runtime: &tokio::runtime::Runtime,
) -> BenchResult<Duration> {
    match variant {
        0 => blocking_bulk(setup),
        1 => runtime.block_on(tokio_bulk(setup)),
        _ => runtime.block_on(raw_bulk(setup)),
    }
}

fn run_handshakes(
    variant: usize,
    setup: &Setup,
    runtime: &tokio::runtime::Runtime,
) -> BenchResult<Duration> {
    match variant {
        0 => blocking_handshakes(setup),
        1 => runtime.block_on(tokio_handshakes(setup)),
        _ => runtime.block_on(raw_handshakes(setup)),
    }
}

/// One variant once, for a profiler: `COMPARE_ONLY=tokio-bulk perf record ...`.
fn run_one(only: &str, setup: &Setup, runtime: &tokio::runtime::Runtime) -> BenchResult<()> {
    let (name, what) = only
        .rsplit_once('-')
        .ok_or("COMPARE_ONLY: expected VARIANT-WHAT")?;
    let variant = VARIANTS
        .iter()
        .position(|v| *v == name)
        .ok_or_else(|| format!("COMPARE_ONLY: unknown variant `{name}`"))?;
    let (work, unit, wall) = match what {
        "bulk" => (BULK_MB, "MB", run_bulk(variant, setup, runtime)?),
        "handshakes" => (
            HANDSHAKES as f64,
            "handshakes",
            run_handshakes(variant, setup, runtime)?,
        ),
        other => return Err(format!("COMPARE_ONLY: unknown measurement `{other}`").into()),
    };
    println!("{only}: {:.0} {unit}/s", work / wall.as_secs_f64());
    Ok(())
}

/// The configurations, built once.
struct Setup {
    ours_server: SslConfiguration,
    ours_client: SslConfiguration,
    raw_server: Arc<ServerConfig>,
    raw_client: Arc<ClientConfig>,
}

impl Setup {
    fn new() -> BenchResult<Setup> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Bench CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, &ca_key);
        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()])?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;

        let mut ours_server = SslConfiguration::default();
        ours_server
            .set_local_certificate(SslCertificate::from_der(leaf.der())?)
            .set_private_key(SslKey::from_der(&leaf_key.serialize_der())?)
            .set_protocol(SslProtocol::TlsV1_3)
            .set_system_ca_on_demand(false);
        let mut ours_client = SslConfiguration::default();
        ours_client
            .set_ca_certificates(vec![SslCertificate::from_der(ca.der())?])
            .set_protocol(SslProtocol::TlsV1_3)
            .set_system_ca_on_demand(false)
            // No resumption on either client: full handshakes are what is measured.
            .set_ssl_option(sslsocket::SslOption::SslOptionDisableSessionSharing, true);

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let raw_server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )?;
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(ca.der().to_vec()))?;
        let mut raw_client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // Our client stores no sessions; neither does this one.
        raw_client.resumption = rustls::client::Resumption::disabled();

        Ok(Setup {
            ours_server,
            ours_client,
            raw_server: Arc::new(raw_server),
            raw_client: Arc::new(raw_client),
        })
    }
}

// ----- (a) our blocking socket ---------------------------------------------------------

fn blocking_server(
    listener: &std::net::TcpListener,
    configuration: &SslConfiguration,
) -> BenchResult<sslsocket::blocking::SslSocket> {
    let (stream, _) = listener.accept()?;
    let mut socket =
        sslsocket::blocking::SslSocket::from_tcp_stream(stream, configuration.clone())?;
    socket.set_io_timeout(Some(STEP));
    socket.start_server_encryption()?;
    socket.wait_for_encrypted(STEP)?;
    Ok(socket)
}

fn blocking_client(setup: &Setup, port: u16) -> BenchResult<sslsocket::blocking::SslSocket> {
    let mut socket = sslsocket::blocking::SslSocket::with_configuration(setup.ours_client.clone());
    socket.set_io_timeout(Some(STEP));
    // Like the raw client: connect to the address, verify and send SNI for the name.
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    socket.wait_for_encrypted(STEP)?;
    Ok(socket)
}

fn blocking_session(setup: &Setup) -> BenchResult<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let configuration = setup.ours_server.clone();
    let server = thread::spawn(move || -> BenchResult<()> {
        let mut socket = blocking_server(&listener, &configuration)?;
        wait_for_disconnected(&mut socket)?;
        Ok(())
    });
    let mut client = blocking_client(setup, port)?;
    let described = describe_ours(client.core());
    client.disconnect_from_host()?;
    join(server)?;
    Ok(described)
}

fn blocking_bulk(setup: &Setup) -> BenchResult<Duration> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let configuration = setup.ours_server.clone();
    let server = thread::spawn(move || -> BenchResult<()> {
        let mut socket = blocking_server(&listener, &configuration)?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        while total < BULK {
            match socket.read(&mut buf)? {
                0 => return Err("blocking server: early end of stream".into()),
                n => total += n,
            }
        }
        socket.write_all(b"!")?;
        socket.flush()?;
        wait_for_disconnected(&mut socket)?;
        Ok(())
    });
    let mut client = blocking_client(setup, port)?;
    let data = vec![0xA5u8; CHUNK];
    let mut ack = [0u8; 1];
    let started = Instant::now();
    for _ in 0..BULK / CHUNK {
        client.write_all(&data)?;
    }
    client.flush()?;
    client.read_exact(&mut ack)?;
    let elapsed = started.elapsed();
    client.disconnect_from_host()?;
    join(server)?;
    Ok(elapsed)
}

fn blocking_handshakes(setup: &Setup) -> BenchResult<Duration> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let configuration = setup.ours_server.clone();
    let server = thread::spawn(move || -> BenchResult<()> {
        for _ in 0..HANDSHAKES {
            let mut socket = blocking_server(&listener, &configuration)?;
            // The client's close_notify: the core answers with ours and closes.
            wait_for_disconnected(&mut socket)?;
        }
        Ok(())
    });
    let started = Instant::now();
    for _ in 0..HANDSHAKES {
        let mut client = blocking_client(setup, port)?;
        client.disconnect_from_host()?;
    }
    let elapsed = started.elapsed();
    join(server)?;
    Ok(elapsed)
}

// ----- (b) our tokio socket ------------------------------------------------------------

async fn tokio_server(setup: &Setup) -> BenchResult<sslsocket::tokio::SslServer> {
    Ok(sslsocket::tokio::SslServer::bind("127.0.0.1:0", setup.ours_server.clone()).await?)
}

async fn tokio_client(setup: &Setup, port: u16) -> BenchResult<sslsocket::tokio::SslSocket> {
    let configuration = setup.ours_client.clone();
    // Like the raw client: connect to the address, verify and send SNI for the name.
    let socket = sslsocket::tokio::SslSocket::connect_to_host_encrypted_with_peer_name(
        "127.0.0.1",
        port,
        "localhost",
        configuration,
    )
    .await?;
    Ok(socket)
}

async fn tokio_session(setup: &Setup) -> BenchResult<String> {
    let server = tokio_server(setup).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let mut rest = Vec::new();
        socket.read_to_end(&mut rest).await?;
        socket.disconnect_from_host().await?;
        BenchResult::Ok(())
    });
    let mut client = tokio_client(setup, port).await?;
    let described = describe_ours(client.core());
    client.disconnect_from_host().await?;
    served.await??;
    Ok(described)
}

async fn tokio_bulk(setup: &Setup) -> BenchResult<Duration> {
    let server = tokio_server(setup).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        count_then_ack(&mut socket).await?;
        let mut rest = Vec::new();
        socket.read_to_end(&mut rest).await?;
        socket.disconnect_from_host().await?;
        BenchResult::Ok(())
    });
    let mut client = tokio_client(setup, port).await?;
    let elapsed = send_bulk(&mut client).await?;
    client.disconnect_from_host().await?;
    served.await??;
    Ok(elapsed)
}

async fn tokio_handshakes(setup: &Setup) -> BenchResult<Duration> {
    let server = tokio_server(setup).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        for _ in 0..HANDSHAKES {
            let mut socket = server.accept_encrypted().await?;
            let mut rest = Vec::new();
            socket.read_to_end(&mut rest).await?;
            socket.disconnect_from_host().await?;
        }
        BenchResult::Ok(())
    });
    let started = Instant::now();
    for _ in 0..HANDSHAKES {
        let mut client = tokio_client(setup, port).await?;
        client.disconnect_from_host().await?;
    }
    let elapsed = started.elapsed();
    served.await??;
    Ok(elapsed)
}

// ----- (c) raw tokio-rustls ------------------------------------------------------------

async fn raw_listener() -> BenchResult<(TcpListener, u16)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

async fn raw_client(
    setup: &Setup,
    port: u16,
) -> BenchResult<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let connector = TlsConnector::from(Arc::clone(&setup.raw_client));
    Ok(connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?)
}

/// close_notify and TCP shutdown, then the peer's end, as our `disconnect_from_host`.
async fn raw_close<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> BenchResult<()> {
    stream.shutdown().await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    Ok(())
}

async fn raw_session(setup: &Setup) -> BenchResult<String> {
    let (listener, port) = raw_listener().await?;
    let acceptor = TlsAcceptor::from(Arc::clone(&setup.raw_server));
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).await?;
        tls.shutdown().await?;
        BenchResult::Ok(())
    });
    let mut client = raw_client(setup, port).await?;
    let (_, connection) = client.get_ref();
    let described = format!(
        "{:?} {:?} {:?}",
        connection.protocol_version(),
        connection.negotiated_cipher_suite().map(|s| s.suite()),
        connection.negotiated_key_exchange_group().map(|g| g.name()),
    );
    raw_close(&mut client).await?;
    served.await??;
    Ok(described)
}

async fn raw_bulk(setup: &Setup) -> BenchResult<Duration> {
    let (listener, port) = raw_listener().await?;
    let acceptor = TlsAcceptor::from(Arc::clone(&setup.raw_server));
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        count_then_ack(&mut tls).await?;
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).await?;
        tls.shutdown().await?;
        BenchResult::Ok(())
    });
    let mut client = raw_client(setup, port).await?;
    let elapsed = send_bulk(&mut client).await?;
    raw_close(&mut client).await?;
    served.await??;
    Ok(elapsed)
}

async fn raw_handshakes(setup: &Setup) -> BenchResult<Duration> {
    let (listener, port) = raw_listener().await?;
    let acceptor = TlsAcceptor::from(Arc::clone(&setup.raw_server));
    let served = tokio::spawn(async move {
        for _ in 0..HANDSHAKES {
            let (tcp, _) = listener.accept().await?;
            let mut tls = acceptor.accept(tcp).await?;
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest).await?;
            tls.shutdown().await?;
        }
        BenchResult::Ok(())
    });
    let started = Instant::now();
    for _ in 0..HANDSHAKES {
        let mut client = raw_client(setup, port).await?;
        raw_close(&mut client).await?;
    }
    let elapsed = started.elapsed();
    served.await??;
    Ok(elapsed)
}

// ----- shared by the async variants ----------------------------------------------------

/// Writes `BULK` bytes in `CHUNK` writes and waits for the server's one-byte answer.
async fn send_bulk<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> BenchResult<Duration> {
    let data = vec![0xA5u8; CHUNK];
    let mut ack = [0u8; 1];
    let started = Instant::now();
    for _ in 0..BULK / CHUNK {
        stream.write_all(&data).await?;
    }
    stream.flush().await?;
    stream.read_exact(&mut ack).await?;
    Ok(started.elapsed())
}

/// Reads and drops `BULK` bytes, then answers one byte.
async fn count_then_ack<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> BenchResult<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    while total < BULK {
        match stream.read(&mut buf).await? {
            0 => return Err("server: early end of stream".into()),
            n => total += n,
        }
    }
    stream.write_all(b"!").await?;
    stream.flush().await?;
    Ok(())
}

// ----- helpers -------------------------------------------------------------------------

fn describe_ours(core: &sslsocket::core::SslCore) -> String {
    match core.negotiated() {
        Some(n) => format!(
            "{} {} {}",
            n.protocol,
            n.cipher_suite,
            n.key_exchange_group.as_deref().unwrap_or("?")
        ),
        None => "nothing negotiated".to_string(),
    }
}

/// Waits for the client's close (the core answers its close_notify and closes); the close
/// may already have happened while the previous call waited.
fn wait_for_disconnected(socket: &mut sslsocket::blocking::SslSocket) -> BenchResult<()> {
    if socket.state() != sslsocket::SocketState::UnconnectedState {
        socket.wait_for_disconnected(STEP)?;
    }
    Ok(())
}

fn join(handle: thread::JoinHandle<BenchResult<()>>) -> BenchResult<()> {
    handle.join().map_err(|_| "a server thread panicked")?
}

/// One measured run: `work` units (MB, handshakes) in `wall` of the timed section, and
/// the CPU time of the whole process during the whole run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    work: f64,
    wall: Duration,
    cpu: Duration,
}

impl Sample {
    fn wall_rate(&self) -> f64 {
        self.work / self.wall.as_secs_f64()
    }
}

fn sample(work: f64, run: impl FnOnce() -> BenchResult<Duration>) -> BenchResult<Sample> {
    let before = process_cpu_time()?;
    let wall = run()?;
    let cpu = process_cpu_time()?.saturating_sub(before);
    Ok(Sample { work, wall, cpu })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn wall_row(label: &str, samples: &[Vec<Sample>; 3]) {
    let [blocking, tokio, raw] = samples
        .each_ref()
        .map(|s| median(s.iter().map(Sample::wall_rate).collect()));
    let paired = |ours: &[Sample]| {
        median(
            ours.iter()
                .zip(&samples[2])
                .map(|(o, r)| o.wall_rate() / r.wall_rate())
                .collect(),
        )
    };
    print_row(
        label,
        [blocking, tokio, raw],
        [paired(&samples[0]), paired(&samples[1])],
    );
}

fn cpu_row(label: &str, samples: &[Vec<Sample>; 3]) {
    let [blocking, tokio, raw] = samples.each_ref().map(|s| {
        let work: f64 = s.iter().map(|s| s.work).sum();
        let cpu: Duration = s.iter().map(|s| s.cpu).sum();
        work / cpu.as_secs_f64()
    });
    print_row(label, [blocking, tokio, raw], [blocking / raw, tokio / raw]);
}

fn print_row(label: &str, [blocking, tokio, raw]: [f64; 3], [blk_ratio, tokio_ratio]: [f64; 2]) {
    println!(
        "{label:<34} {blocking:>10.0} {tokio:>10.0} {raw:>10.0} {blk_ratio:>8.2}x {tokio_ratio:>8.2}x"
    );
}

/// User + system time of this process, all threads, from `/proc/self/stat` (in clock
/// ticks of 10 ms; the rounds add up to seconds, so the resolution is enough).
fn process_cpu_time() -> BenchResult<Duration> {
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses: state is field 3, utime 14.
    let after_name = stat
        .rsplit_once(')')
        .ok_or("/proc/self/stat: no command name")?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> BenchResult<u64> {
        Ok(fields
            .get(index)
            .ok_or("/proc/self/stat: too short")?
            .parse()?)
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 1000 / TICKS_PER_SECOND))
}
