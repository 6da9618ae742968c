//! Echo round trips through the library, message sizes 1 byte to 1 MiB, against the same
//! echo through plain TCP (issue #9: no latency stall at any size; a 64 KB echo within 2x
//! of plain TCP).
//!
//! The client writes one message and reads it back whole; the server echoes what it reads
//! as it reads it (so a message larger than one read goes back as several writes: the
//! pattern that meets Nagle's algorithm and the peer's delayed ACK when `TCP_NODELAY` is
//! off). Variants: plain TCP (`TCP_NODELAY` on both sides), ours on the blocking driver,
//! ours on the tokio driver, raw tokio-rustls (`TCP_NODELAY` set by hand, as its users
//! must), and ours on the blocking driver with Nagle turned back on (`LowDelayOption`
//! off), to show what the default avoids. Same ECDSA P-256 certificate and TLS 1.3 for
//! every TLS variant; all on 127.0.0.1.
//!
//! Run: `cargo bench -p sslsocket --bench echo` (about a minute). Prints, per size and
//! variant, the median and p99 round trip in microseconds and the median's ratio to plain
//! TCP.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sslsocket::{SocketOption, SslCertificate, SslConfiguration, SslKey, SslProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const SIZES: [usize; 7] = [1, 1 << 10, 16 << 10, 35 << 10, 64 << 10, 256 << 10, 1 << 20];
/// Round trips per size and variant: enough for a p99, bounded in time by `BUDGET`.
const TRIPS: usize = 200;
/// The most one size of one variant may take; fewer trips are measured after it.
const BUDGET: Duration = Duration::from_secs(3);
/// Bound of every blocking wait.
const STEP: Duration = Duration::from_secs(30);
const READ_CHUNK: usize = 64 << 10;

const VARIANTS: [&str; 5] = ["tcp", "blocking", "tokio", "raw", "blocking-nagle"];

struct Setup {
    server: SslConfiguration,
    client: SslConfiguration,
    raw_server: Arc<rustls::ServerConfig>,
    raw_client: Arc<rustls::ClientConfig>,
}

fn main() -> BenchResult<()> {
    let setup = Arc::new(setup()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "{:>8} {:<15} {:>10} {:>10} {:>9}",
        "size", "variant", "p50 µs", "p99 µs", "p50/tcp"
    );
    let mut worst_64k: f64 = 0.0;
    // `ECHO_ONLY=SIZE:VARIANT` (e.g. `16384:tokio`) measures one pair, for a profiler.
    let only = std::env::var("ECHO_ONLY").ok();
    let only = only.as_deref().and_then(|o| o.split_once(':'));
    for size in SIZES {
        if only.is_some_and(|(s, _)| s != size.to_string()) {
            continue;
        }
        let mut tcp_p50 = f64::NAN;
        for variant in VARIANTS {
            if only.is_some_and(|(_, v)| v != variant && variant != "tcp") {
                continue;
            }
            let mut trips = match variant {
                "tcp" => tcp_echo(size)?,
                "blocking" => blocking_echo(&setup, size, true)?,
                "blocking-nagle" => blocking_echo(&setup, size, false)?,
                "tokio" => runtime.block_on(tokio_echo(&setup, size))?,
                _ => runtime.block_on(raw_echo(&setup, size))?,
            };
            trips.sort();
            let micros = |d: Duration| d.as_secs_f64() * 1e6;
            let p50 = micros(percentile(&trips, 50));
            let p99 = micros(percentile(&trips, 99));
            if variant == "tcp" {
                tcp_p50 = p50;
            }
            let ratio = p50 / tcp_p50;
            if size == 64 << 10 && variant != "tcp" && variant != "blocking-nagle" {
                worst_64k = worst_64k.max(ratio);
            }
            println!(
                "{:>8} {variant:<15} {p50:>10.1} {p99:>10.1} {ratio:>8.2}x",
                human(size)
            );
        }
    }
    println!();
    println!("64 KB echo, worst of ours (blocking, tokio) and raw against plain TCP: {worst_64k:.2}x (goal: within 2x)");
    if only.is_none() {
        let floor = cipher_floor(64 << 10)?;
        println!(
            "64 KB echo, the cipher alone (AES-256-GCM, as negotiated here: sealed and opened \
             once each way, in 16 KiB records, by aws-lc-rs in this thread): p50 {:.1} µs, \
             so no TLS echo can beat plain TCP + that",
            floor.as_secs_f64() * 1e6
        );
    }
    Ok(())
}

/// The time the record cipher alone takes for one echo of `size` bytes: what every TLS
/// stack here adds to the TCP round trip at the least (the median of 200; each echo seals
/// and opens the message once in each direction, 16 KiB per record).
fn cipher_floor(size: usize) -> BenchResult<Duration> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).map_err(|_| "AES-256-GCM key")?);
    const RECORD: usize = 16 << 10;
    let tag_len = AES_256_GCM.tag_len();
    // The message as records, each with room for its tag: sealed and opened in place.
    let mut records: Vec<Vec<u8>> = (0..size.div_ceil(RECORD))
        .map(|i| {
            let mut record = Vec::with_capacity(RECORD + tag_len);
            record.resize(RECORD.min(size - i * RECORD), 0xA5);
            record
        })
        .collect();
    let mut counter: u64 = 0;
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let started = Instant::now();
        for _direction in 0..2 {
            for record in &mut records {
                counter += 1;
                let mut bytes = [0u8; 12];
                bytes[4..].copy_from_slice(&counter.to_be_bytes());
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(bytes),
                    Aad::empty(),
                    record,
                )
                .map_err(|_| "seal")?;
                let plain = key
                    .open_in_place(Nonce::assume_unique_for_key(bytes), Aad::empty(), record)
                    .map_err(|_| "open")?
                    .len();
                record.truncate(plain);
            }
        }
        times.push(started.elapsed());
    }
    times.sort();
    Ok(percentile(&times, 50))
}

fn human(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted.get(index).copied().unwrap_or_default()
}

fn setup() -> BenchResult<Setup> {
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])?.self_signed(&key)?;
    let mut server = SslConfiguration::default();
    server
        .set_local_certificate(SslCertificate::from_der(cert.der())?)
        .set_private_key(SslKey::from_der(&key.serialize_der())?)
        .set_protocol(SslProtocol::TlsV1_3)
        .set_system_ca_on_demand(false);
    let mut client = SslConfiguration::default();
    client
        .set_ca_certificates(vec![SslCertificate::from_der(cert.der())?])
        .set_protocol(SslProtocol::TlsV1_3)
        .set_system_ca_on_demand(false);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let raw_server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert.der().to_vec()))?;
    let raw_client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Setup {
        server,
        client,
        raw_server: Arc::new(raw_server),
        raw_client: Arc::new(raw_client),
    })
}

/// Times round trips of `size` bytes until `TRIPS` or `BUDGET`.
fn time_trips(
    size: usize,
    mut trip: impl FnMut(&[u8], &mut [u8]) -> BenchResult<()>,
) -> BenchResult<Vec<Duration>> {
    let message = vec![0x5Au8; size];
    let mut back = vec![0u8; size];
    // One warm-up trip (buffers, congestion window).
    trip(&message, &mut back)?;
    let started = Instant::now();
    let mut trips = Vec::with_capacity(TRIPS);
    while trips.len() < TRIPS && started.elapsed() < BUDGET {
        let t = Instant::now();
        trip(&message, &mut back)?;
        trips.push(t.elapsed());
        if back != message {
            return Err("the echo came back different".into());
        }
    }
    Ok(trips)
}

fn join(handle: thread::JoinHandle<BenchResult<()>>) -> BenchResult<()> {
    handle.join().map_err(|_| "an echo thread panicked")?
}

// ----- plain TCP -----------------------------------------------------------------------

fn tcp_echo(size: usize) -> BenchResult<Vec<Duration>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let server = thread::spawn(move || -> BenchResult<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(STEP))?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(()),
                n => stream.write_all(buf.get(..n).unwrap_or_default())?,
            }
        }
    });
    let mut client = TcpStream::connect(address)?;
    client.set_nodelay(true)?;
    client.set_read_timeout(Some(STEP))?;
    let trips = time_trips(size, |message, back| {
        client.write_all(message)?;
        client.read_exact(back)?;
        Ok(())
    })?;
    drop(client);
    join(server)?;
    Ok(trips)
}

// ----- ours, blocking ------------------------------------------------------------------

fn blocking_echo(setup: &Arc<Setup>, size: usize, low_delay: bool) -> BenchResult<Vec<Duration>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let configuration = setup.server.clone();
    let server = thread::spawn(move || -> BenchResult<()> {
        let (stream, _) = listener.accept()?;
        let mut socket = sslsocket::blocking::SslSocket::from_tcp_stream(stream, configuration)?;
        socket.set_socket_option(SocketOption::LowDelayOption, low_delay)?;
        socket.set_io_timeout(Some(STEP));
        socket.start_server_encryption()?;
        socket.wait_for_encrypted(STEP)?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match socket.read(&mut buf)? {
                0 => return Ok(()),
                n => socket.write_all(buf.get(..n).unwrap_or_default())?,
            }
        }
    });
    let mut client = sslsocket::blocking::SslSocket::with_configuration(setup.client.clone());
    client.set_io_timeout(Some(STEP));
    client.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    client.wait_for_encrypted(STEP)?;
    client.set_socket_option(SocketOption::LowDelayOption, low_delay)?;
    let trips = time_trips(size, |message, back| {
        client.write_all(message)?;
        client.read_exact(back)?;
        Ok(())
    })?;
    client.disconnect_from_host()?;
    join(server)?;
    Ok(trips)
}

// ----- ours, tokio ---------------------------------------------------------------------

async fn tokio_echo(setup: &Arc<Setup>, size: usize) -> BenchResult<Vec<Duration>> {
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", setup.server.clone()).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        echo_async(&mut socket).await
    });
    let mut client = sslsocket::tokio::SslSocket::connect_to_host_encrypted_with_peer_name(
        "127.0.0.1",
        port,
        "localhost",
        setup.client.clone(),
    )
    .await?;
    let trips = time_trips_async(&mut client, size).await?;
    client.disconnect_from_host().await?;
    served.await??;
    Ok(trips)
}

// ----- raw tokio-rustls ----------------------------------------------------------------

async fn raw_echo(setup: &Arc<Setup>, size: usize) -> BenchResult<Vec<Duration>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&setup.raw_server));
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let mut tls = acceptor.accept(tcp).await?;
        echo_async(&mut tls).await
    });
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&setup.raw_client));
    let mut client = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let trips = time_trips_async(&mut client, size).await?;
    client.shutdown().await?;
    served.await??;
    Ok(trips)
}

// ----- shared by the async variants ----------------------------------------------------

async fn echo_async<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> BenchResult<()> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => {
                stream.write_all(buf.get(..n).unwrap_or_default()).await?;
                stream.flush().await?;
            }
            // The client's end without close_notify is not the point here.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

async fn time_trips_async<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    size: usize,
) -> BenchResult<Vec<Duration>> {
    let message = vec![0x5Au8; size];
    let mut back = vec![0u8; size];
    stream.write_all(&message).await?;
    stream.read_exact(&mut back).await?;
    let started = Instant::now();
    let mut trips = Vec::with_capacity(TRIPS);
    while trips.len() < TRIPS && started.elapsed() < BUDGET {
        let t = Instant::now();
        stream.write_all(&message).await?;
        stream.flush().await?;
        stream.read_exact(&mut back).await?;
        trips.push(t.elapsed());
        if back != message {
            return Err("the echo came back different".into());
        }
    }
    Ok(trips)
}
