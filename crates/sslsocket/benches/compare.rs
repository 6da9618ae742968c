//! Ours against the raw libraries, side by side, in one run (issue #9, goal 1).
//!
//! Two sections, each a table of three columns (four in the OpenSSL section):
//! - **rustls**: ours on the blocking driver, ours on the tokio driver, raw tokio-rustls
//!   0.26 (rustls 0.23, aws-lc-rs);
//! - **OpenSSL** (built with `--features openssl`): ours on the OpenSSL backend (blocking,
//!   tokio) against the `openssl` crate (`SslStream` over a std `TcpStream`, blocking), and
//!   a fourth column, the `openssl` crate on tokio (`SslStream` over the tokio socket, driven
//!   as tokio-openssl drives it: module `aossl`), so that our tokio driver is also compared
//!   with the same library on the same runtime. The backend is process-wide, so this
//!   section runs in a child process of this binary with `SSLSOCKET_BACKEND=openssl`.
//!
//! Workloads (sizes scale with `BENCH_SCALE`, default 1):
//! - `handshakes`: full handshakes/s, one at a time: connect, handshake, clean close both
//!   ways (close_notify both ways), no resumption on the client (800 per sample);
//! - `resumed`: the same with the client's session cache on (TLS 1.3 tickets, one warm-up
//!   connection first, 1,000 per sample), plus one byte server → client before the close
//!   (the server sets TCP_NODELAY first): the byte comes after the server's tickets, so
//!   every client has read them (ours keeps no ticket that arrives only with the peer's
//!   close_notify during `disconnect_from_host`: without the byte it never resumes). Each
//!   connection is checked for resumption (ours: `core().is_session_resumed()`, rustls:
//!   `handshake_kind()`, openssl: `session_reused()`) and the counts are printed;
//! - `bulk-aes128`, `bulk-aes256`, `bulk-chacha`: 512 MiB client → server in 64 KiB
//!   writes on a connection restricted to that suite on both sides, the server counts
//!   and answers one byte at the end (the clock stops when the client has it);
//! - `pingpong`: one connection, 20,000 request/response pairs of 64 bytes: round trips/s
//!   and the p50/p99 latency of one round trip, µs;
//! - `memory`: KiB of server RSS per idle TLS connection. The server is a child process
//!   (this binary, `BENCH_ROLE=memory-server`); the parent connects once (warm-up), the
//!   child reads its `VmRSS`, the parent opens 1,000 more connections (raw rustls clients,
//!   the same for every server) and keeps them open, the child reads `VmRSS` again once
//!   all are established: (after − before) / 1,000. Server shapes: blocking = one thread
//!   accepting, handshaking and keeping the sockets in a `Vec`; tokio = one task per
//!   connection awaiting a read into a 64-byte buffer (ours `tokio::SslServer`, raw
//!   `TlsAcceptor`).
//!
//! Same setup everywhere: an ECDSA P-256 server certificate made by rcgen at start, the
//! client trusting its CA and checking the name `localhost`, TLS 1.3 only, the X25519 group
//! on both sides (`BENCH_GROUP` names another, `default` leaves each library's choice), the
//! library's default suite except in `bulk-*`. Each configuration is built once and
//! reused. What each variant negotiated is printed at start, and the run stops if the
//! variants of a section disagree on suite or group. Socket options are each library's
//! defaults (the bench sets `TCP_NODELAY` only on the resumed workload's server): ours
//! turns `TCP_NODELAY` on, the raw libraries leave Nagle on. `BENCH_NODELAY=1` turns it on
//! for the raw libraries' sockets too (like for like: on this 2-vCPU VM the blocking
//! ping-pong rate follows whether the two threads come to share a vCPU, and the openssl
//! crate's threads do so only with Nagle on; see the README). Our servers ask for a client
//! certificate (Qt's default for a server, `QueryPeer`: a CertificateRequest, and the
//! client's empty Certificate), the raw ones do not; `BENCH_QUERY_PEER=1` makes the raw
//! servers ask too (optional, no CA names), so both sides run the same protocol.
//!
//! Method: the machine is shared and noisy, so the run is `BENCH_RUNS` rounds (default 3);
//! in each, every workload runs each variant back to back, the order alternating between
//! rounds. The table shows medians over the rounds and, as ratios, the medians of the
//! per-round ratios ours / raw (variants of one round share its load); "per CPU-second"
//! rows divide the work of all rounds by the CPU time (user + system) of the whole process,
//! client and server together, which holds up better on a busy machine. For the latency
//! and memory rows lower is better; for the others higher. At the end, the same tables in
//! Markdown for the README.
//!
//! Run: `cargo bench -p sslsocket --bench compare [--features openssl]`, or
//! `scripts/bench`. The default run takes about 3 minutes on 2 shared cores. Without
//! the `--bench` argument that `cargo bench` passes (`cargo test --benches`, or the binary
//! run by hand), it is a smoke run: one round at 1/20 of the sizes.
//! Selection: `BENCH_ONLY=handshakes,bulk` (workload names above; `bulk` is all three),
//! `BENCH_SECTIONS=rustls` (or `openssl`). For a profiler, one variant once in this
//! process: `COMPARE_ONLY=tokio-bulk-aes128` (`blocking-`/`tokio-`/`raw-` + a workload;
//! with `SSLSOCKET_BACKEND=openssl` it is the OpenSSL section's variant, and `rawtokio-`
//! the openssl crate on tokio); it prints the figure and the units of work done (`work N`,
//! which `scripts/cachegrind` divides by).

mod common;

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use sslsocket::prelude::*;
use sslsocket::SslConfiguration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

use common::{BenchResult, Pki, Suite, Worker};

const HANDSHAKES: usize = 800;
const RESUMED: usize = 1000;
const BULK: usize = 512 << 20;
const CHUNK: usize = 64 << 10;
const PINGS: usize = 20_000;
const PING: usize = 64;
const IDLE: usize = 1000;
/// Bound of every blocking wait, so a broken variant fails instead of hanging.
const STEP: Duration = Duration::from_secs(30);
/// Bound of one async sample.
const SAMPLE_LIMIT: Duration = Duration::from_secs(120);
/// Bound of the OpenSSL section's child process.
#[cfg(feature = "openssl")]
const SECTION_LIMIT: Duration = Duration::from_secs(900);

/// `rawtokio`: the openssl crate on tokio, in the OpenSSL section only.
const VARIANTS: [&str; 4] = ["blocking", "tokio", "raw", "rawtokio"];
const MARKDOWN_TAG: &str = "md|";
const SECTION_DONE: &str = "section-done";

fn main() -> BenchResult<()> {
    match std::env::var(common::ROLE_ENV).as_deref() {
        Ok("memory-server") => return memory_server(),
        Ok("openssl-section") => {
            let markdown = run_section(Section::current(), &Pki::get()?)?;
            for line in markdown.lines() {
                println!("{MARKDOWN_TAG}{line}");
            }
            println!("{SECTION_DONE}");
            return Ok(());
        }
        Ok(other) => return Err(format!("unknown {} `{other}`", common::ROLE_ENV).into()),
        Err(_) => {}
    }
    let pki = Pki::get()?;
    if let Ok(only) = std::env::var("COMPARE_ONLY") {
        return run_one(&only, &pki);
    }
    let sections = std::env::var("BENCH_SECTIONS").unwrap_or_else(|_| "rustls,openssl".into());
    let mut markdown = String::new();
    if sections.split(',').any(|s| s.trim() == "rustls") {
        markdown.push_str(&run_section(Section::Rustls, &pki)?);
    }
    if sections.split(',').any(|s| s.trim() == "openssl") {
        markdown.push_str(&openssl_section(&pki)?);
    }
    println!();
    println!("---- Markdown ----");
    println!();
    print!("{markdown}");
    Ok(())
}

/// The OpenSSL section, in a child process with the OpenSSL backend; its table passes
/// through, its Markdown comes back.
#[cfg(feature = "openssl")]
fn openssl_section(pki: &Pki) -> BenchResult<String> {
    let mut worker = Worker::start("openssl-section", pki, &[("SSLSOCKET_BACKEND", "openssl")])?;
    let mut markdown = String::new();
    let deadline = Instant::now() + SECTION_LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = worker
            .next_line(left)?
            .ok_or("OpenSSL section: the child ended early")?;
        if line == SECTION_DONE {
            break;
        }
        match line.strip_prefix(MARKDOWN_TAG) {
            Some(md) => {
                markdown.push_str(md);
                markdown.push('\n');
            }
            None => println!("{line}"),
        }
    }
    let status = worker.finish(Duration::from_secs(30))?;
    if !status.success() {
        return Err(format!("OpenSSL section: {status}").into());
    }
    Ok(markdown)
}

#[cfg(not(feature = "openssl"))]
fn openssl_section(_pki: &Pki) -> BenchResult<String> {
    println!();
    println!("OpenSSL section: not built (cargo bench ... --features openssl)");
    Ok(String::new())
}

// ----- sections, variants, workloads ---------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    /// Ours (rustls backend) against tokio-rustls.
    Rustls,
    /// Ours (OpenSSL backend) against the openssl crate.
    Openssl,
}

impl Section {
    /// The section of this process: the backend sslsocket uses here.
    fn current() -> Section {
        if sslsocket::backend::active_backend() == Some("openssl") {
            Section::Openssl
        } else {
            Section::Rustls
        }
    }

    fn raw_name(self) -> &'static str {
        match self {
            Section::Rustls => "tokio-rustls",
            Section::Openssl => "openssl crate",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Section::Rustls => "ours (rustls backend) vs raw tokio-rustls 0.26",
            Section::Openssl => {
                "ours (OpenSSL backend) vs the openssl crate (blocking, and on tokio)"
            }
        }
    }
}

/// How a variant does its I/O.
#[derive(Clone, Copy, Debug)]
enum Driver {
    Blocking(BSide),
    Async(ASide),
}

fn driver(section: Section, variant: usize) -> BenchResult<Driver> {
    Ok(match (section, variant) {
        (_, 0) => Driver::Blocking(BSide::Ours),
        (_, 1) => Driver::Async(ASide::Ours),
        (Section::Rustls, 2) => Driver::Async(ASide::Raw),
        #[cfg(feature = "openssl")]
        (Section::Openssl, 2) => Driver::Blocking(BSide::Openssl),
        #[cfg(feature = "openssl")]
        (Section::Openssl, 3) => Driver::Async(ASide::Openssl),
        _ => return Err(format!("no variant {variant} in {section:?}").into()),
    })
}

/// The variants of `section`, in order.
fn variants(section: Section) -> Vec<usize> {
    (0..VARIANTS.len())
        .filter(|v| driver(section, *v).is_ok())
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    Full,
    Resumed,
    Bulk(Suite),
    PingPong,
    Memory,
}

impl Workload {
    const ALL: [Workload; 7] = [
        Workload::Full,
        Workload::Resumed,
        Workload::Bulk(Suite::Aes128),
        Workload::Bulk(Suite::Aes256),
        Workload::Bulk(Suite::Chacha),
        Workload::PingPong,
        Workload::Memory,
    ];

    fn name(self) -> String {
        match self {
            Workload::Full => "handshakes".into(),
            Workload::Resumed => "resumed".into(),
            Workload::Bulk(suite) => format!("bulk-{}", suite.short()),
            Workload::PingPong => "pingpong".into(),
            Workload::Memory => "memory".into(),
        }
    }

    fn by_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// The workloads `BENCH_ONLY` selects (all when unset); `bulk` stands for the three.
fn selected_workloads() -> BenchResult<Vec<Workload>> {
    let Ok(only) = std::env::var("BENCH_ONLY") else {
        return Ok(Workload::ALL.to_vec());
    };
    let tokens: Vec<&str> = only
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    for token in &tokens {
        if !Workload::ALL
            .iter()
            .any(|w| w.name() == *token || w.name().starts_with(&format!("{token}-")))
        {
            return Err(format!("BENCH_ONLY: unknown workload `{token}`").into());
        }
    }
    Ok(Workload::ALL
        .into_iter()
        .filter(|w| {
            tokens
                .iter()
                .any(|t| w.name() == *t || w.name().starts_with(&format!("{t}-")))
        })
        .collect())
}

/// `BENCH_SCALE` × `n`, at least 1.
fn scaled(n: usize) -> usize {
    ((n as f64 * common::scale()) as usize).max(1)
}

/// Work sizes, scaled once.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    handshakes: usize,
    resumed: usize,
    /// Bytes, a whole number of chunks.
    bulk: usize,
    pings: usize,
    idle: usize,
}

impl Sizes {
    fn get() -> Sizes {
        Sizes {
            handshakes: scaled(HANDSHAKES),
            resumed: scaled(RESUMED),
            bulk: scaled(BULK / CHUNK) * CHUNK,
            pings: scaled(PINGS),
            idle: scaled(IDLE).max(10),
        }
    }
}

// ----- setup ---------------------------------------------------------------------------

/// The configurations of a section, built once, by `Suite::index`.
struct Setup {
    section: Section,
    pki: Pki,
    sizes: Sizes,
    ours_server: Vec<SslConfiguration>,
    /// No session stored.
    ours_client: Vec<SslConfiguration>,
    /// Sessions shared by the sockets of this configuration (Qt's default).
    ours_resume: SslConfiguration,
    rustls_server: Vec<Arc<ServerConfig>>,
    rustls_client: Vec<Arc<ClientConfig>>,
    rustls_resume: Arc<ClientConfig>,
    #[cfg(feature = "openssl")]
    ossl: ossl::Contexts,
}

impl Setup {
    fn new(section: Section, pki: &Pki) -> BenchResult<Arc<Setup>> {
        let mut setup = Setup {
            section,
            pki: pki.clone(),
            sizes: Sizes::get(),
            ours_server: Vec::new(),
            ours_client: Vec::new(),
            ours_resume: common::ours_client(pki, Suite::Default, true)?,
            rustls_server: Vec::new(),
            rustls_client: Vec::new(),
            rustls_resume: common::rustls_client(pki, Suite::Default, true)?,
            #[cfg(feature = "openssl")]
            ossl: ossl::Contexts::new(pki)?,
        };
        for suite in Suite::ALL {
            setup.ours_server.push(common::ours_server(pki, suite)?);
            setup
                .ours_client
                .push(common::ours_client(pki, suite, false)?);
            setup.rustls_server.push(common::rustls_server(pki, suite)?);
            setup
                .rustls_client
                .push(common::rustls_client(pki, suite, false)?);
        }
        Ok(Arc::new(setup))
    }

    fn ours_server(&self, suite: Suite) -> SslConfiguration {
        self.ours_server[suite.index()].clone()
    }

    fn ours_client(&self, suite: Suite, resume: bool) -> SslConfiguration {
        if resume {
            self.ours_resume.clone()
        } else {
            self.ours_client[suite.index()].clone()
        }
    }

    fn rustls_client(&self, suite: Suite, resume: bool) -> Arc<ClientConfig> {
        if resume {
            Arc::clone(&self.rustls_resume)
        } else {
            Arc::clone(&self.rustls_client[suite.index()])
        }
    }
}

fn runtime() -> BenchResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

// ----- one section ---------------------------------------------------------------------

fn run_section(section: Section, pki: &Pki) -> BenchResult<String> {
    if section == Section::Openssl && sslsocket::backend::set_active_backend("openssl").is_err() {
        return Err("the OpenSSL backend is not available".into());
    }
    let setup = Setup::new(section, pki)?;
    let runtime = runtime()?;
    let workloads = selected_workloads()?;
    let runs = common::runs(3)?;
    println!();
    println!("==== {} ====", section.title());
    println!(
        "{}; TLS library: {}",
        common::machine(),
        sslsocket::backend::ssl_library_version_string()
    );
    check_negotiation(&setup, &runtime, &workloads)?;
    if workloads.contains(&Workload::Memory) {
        common::require_open_files(2 * setup.sizes.idle as u64 + 100)?;
    }

    let mut samples: Vec<[Vec<Sample>; 4]> = workloads.iter().map(|_| Default::default()).collect();
    for round in 0..runs {
        eprintln!("{:?} section: round {}/{runs}", section, round + 1);
        // Alternate the order, so no variant always runs first after a pause.
        let mut order = variants(section);
        if !round.is_multiple_of(2) {
            order.reverse();
        }
        for (w, workload) in workloads.iter().enumerate() {
            for &variant in &order {
                let sample = run_sample(&setup, &runtime, variant, *workload)?;
                samples[w][variant].push(sample);
            }
        }
    }
    Ok(report(&setup, &workloads, &samples, runs))
}

/// One variant once, for a profiler.
fn run_one(only: &str, pki: &Pki) -> BenchResult<()> {
    let (name, what) = only
        .split_once('-')
        .ok_or("COMPARE_ONLY: expected VARIANT-WORKLOAD")?;
    let variant = VARIANTS
        .iter()
        .position(|v| *v == name)
        .ok_or_else(|| format!("COMPARE_ONLY: unknown variant `{name}`"))?;
    let workload = Workload::by_name(what)
        .ok_or_else(|| format!("COMPARE_ONLY: unknown workload `{what}`"))?;
    let section = Section::current();
    let setup = Setup::new(section, pki)?;
    let runtime = runtime()?;
    let sample = run_sample(&setup, &runtime, variant, workload)?;
    println!(
        "{section:?} {only}: {:.1} {}",
        sample.figure(),
        unit(workload)
    );
    if let Some((p50, p99)) = sample.latency {
        println!("p50 {p50:.1} µs, p99 {p99:.1} µs");
    }
    // For scripts/cachegrind, which divides by the difference of two runs' work.
    println!("work {}", sample.work);
    Ok(())
}

fn unit(workload: Workload) -> &'static str {
    match workload {
        Workload::Full | Workload::Resumed => "handshakes/s",
        Workload::Bulk(_) => "MB/s",
        Workload::PingPong => "round trips/s",
        Workload::Memory => "KiB per idle connection",
    }
}

/// One measured run of one variant.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// Units of work (handshakes, MB, round trips) in `wall`.
    work: f64,
    wall: Duration,
    /// CPU time of this process during the run.
    cpu: Duration,
    /// p50, p99 of one round trip, µs.
    latency: Option<(f64, f64)>,
    /// Server KiB per idle connection.
    memory: Option<f64>,
    /// Connections that resumed a session, of `work`.
    resumed: usize,
}

impl Sample {
    fn figure(&self) -> f64 {
        self.memory
            .unwrap_or_else(|| self.work / self.wall.as_secs_f64())
    }
}

/// What a workload function measured.
#[derive(Default)]
struct Measured {
    work: f64,
    wall: Duration,
    latency: Option<(f64, f64)>,
    resumed: usize,
}

fn run_sample(
    setup: &Arc<Setup>,
    runtime: &tokio::runtime::Runtime,
    variant: usize,
    workload: Workload,
) -> BenchResult<Sample> {
    if workload == Workload::Memory {
        let memory = memory(setup, variant)?;
        return Ok(Sample {
            memory: Some(memory),
            ..Sample::default()
        });
    }
    let before = common::cpu_time(None)?;
    let measured = match driver(setup.section, variant)? {
        Driver::Blocking(side) => blocking_workload(setup, side, workload)?,
        Driver::Async(side) => runtime.block_on(async {
            tokio::time::timeout(SAMPLE_LIMIT, async_workload(setup, side, workload))
                .await
                .map_err(|_| format!("{workload:?}: no result within {SAMPLE_LIMIT:?}"))?
        })?,
    };
    let cpu = common::cpu_time(None)?.saturating_sub(before);
    Ok(Sample {
        work: measured.work,
        wall: measured.wall,
        cpu,
        latency: measured.latency,
        memory: None,
        resumed: measured.resumed,
    })
}

fn blocking_workload(setup: &Arc<Setup>, side: BSide, workload: Workload) -> BenchResult<Measured> {
    let sizes = setup.sizes;
    match workload {
        Workload::Full => b_handshakes(setup, side, false, sizes.handshakes),
        Workload::Resumed => b_handshakes(setup, side, true, sizes.resumed),
        Workload::Bulk(suite) => b_bulk(setup, side, suite, sizes.bulk),
        Workload::PingPong => b_pingpong(setup, side, sizes.pings),
        Workload::Memory => Err("memory is measured apart".into()),
    }
}

async fn async_workload(
    setup: &Arc<Setup>,
    side: ASide,
    workload: Workload,
) -> BenchResult<Measured> {
    let sizes = setup.sizes;
    match workload {
        Workload::Full => a_handshakes(setup, side, false, sizes.handshakes).await,
        Workload::Resumed => a_handshakes(setup, side, true, sizes.resumed).await,
        Workload::Bulk(suite) => a_bulk(setup, side, suite, sizes.bulk).await,
        Workload::PingPong => a_pingpong(setup, side, sizes.pings).await,
        Workload::Memory => Err("memory is measured apart".into()),
    }
}

// ----- what was negotiated -------------------------------------------------------------

/// One connection per variant and suite; prints what the client negotiated and fails when
/// the variants disagree on suite or group.
fn check_negotiation(
    setup: &Arc<Setup>,
    runtime: &tokio::runtime::Runtime,
    workloads: &[Workload],
) -> BenchResult<()> {
    let mut suites = vec![Suite::Default];
    suites.extend(workloads.iter().filter_map(|w| match w {
        Workload::Bulk(s) => Some(*s),
        _ => None,
    }));
    for suite in suites {
        let mut seen: Vec<(String, String)> = Vec::new();
        for variant in variants(setup.section) {
            let name = VARIANTS[variant];
            let (described, key) = match driver(setup.section, variant)? {
                Driver::Blocking(side) => b_session(setup, side, suite)?,
                Driver::Async(side) => runtime.block_on(a_session(setup, side, suite))?,
            };
            println!("negotiated, {:<18} {:<9} {described}", suite.label(), name);
            seen.push(key);
        }
        if seen.windows(2).any(|pair| pair[0] != pair[1]) {
            return Err(format!("{}: the variants negotiated differently", suite.label()).into());
        }
        if let Some(name) = suite.iana() {
            if seen.iter().any(|(s, _)| s != name) {
                return Err(format!("{}: the suite is not {name}", suite.label()).into());
            }
        }
    }
    Ok(())
}

/// The description and the (suite, group) of our socket.
fn describe_ours(core: &sslsocket::core::SslCore) -> (String, (String, String)) {
    match core.negotiated() {
        Some(n) => {
            let group = n.key_exchange_group.as_deref().unwrap_or("?").to_string();
            (
                format!("{} {} {group}", n.protocol, n.cipher_suite),
                (common::normalize_suite(&n.cipher_suite), group),
            )
        }
        None => ("nothing negotiated".into(), Default::default()),
    }
}

// ----- the blocking side: ours, or the openssl crate -----------------------------------

#[derive(Clone, Copy, Debug)]
enum BSide {
    Ours,
    #[cfg(feature = "openssl")]
    Openssl,
}

/// Boxed, so a `Vec` of them (the memory server) holds each one's own size only.
enum BConn {
    Ours(Box<sslsocket::blocking::SslSocket>),
    #[cfg(feature = "openssl")]
    Openssl(Box<openssl::ssl::SslStream<std::net::TcpStream>>),
}

impl Read for BConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BConn::Ours(s) => s.read(buf),
            #[cfg(feature = "openssl")]
            BConn::Openssl(s) => s.read(buf),
        }
    }
}

impl Write for BConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            BConn::Ours(s) => s.write(buf),
            #[cfg(feature = "openssl")]
            BConn::Openssl(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            BConn::Ours(s) => s.flush(),
            #[cfg(feature = "openssl")]
            BConn::Openssl(s) => s.flush(),
        }
    }
}

fn b_accept(
    setup: &Setup,
    side: BSide,
    listener: &std::net::TcpListener,
    suite: Suite,
) -> BenchResult<BConn> {
    let (stream, _) = listener.accept()?;
    match side {
        BSide::Ours => {
            let mut socket =
                sslsocket::blocking::SslSocket::from_tcp_stream(stream, setup.ours_server(suite))?;
            socket.set_io_timeout(Some(STEP));
            socket.start_server_encryption()?;
            socket.wait_for_encrypted(STEP)?;
            Ok(BConn::Ours(Box::new(socket)))
        }
        #[cfg(feature = "openssl")]
        BSide::Openssl => raw_low_delay_b(BConn::Openssl(Box::new(ossl::accept(
            &setup.ossl,
            stream,
            suite,
        )?))),
    }
}

fn b_connect(
    setup: &Setup,
    side: BSide,
    port: u16,
    suite: Suite,
    resume: bool,
) -> BenchResult<BConn> {
    match side {
        BSide::Ours => {
            let mut socket = sslsocket::blocking::SslSocket::with_configuration(
                setup.ours_client(suite, resume),
            );
            socket.set_io_timeout(Some(STEP));
            // Like the raw clients: connect to the address, verify and send SNI for the name.
            socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
            socket.wait_for_encrypted(STEP)?;
            Ok(BConn::Ours(Box::new(socket)))
        }
        #[cfg(feature = "openssl")]
        BSide::Openssl => raw_low_delay_b(BConn::Openssl(Box::new(ossl::connect(
            &setup.ossl,
            port,
            suite,
            resume,
        )?))),
    }
}

/// `BENCH_NODELAY=1`: TCP_NODELAY on the raw libraries' sockets too, as ours has it by
/// default (see the module header).
fn raw_low_delay() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    common::switch(&ON, "BENCH_NODELAY")
}

#[cfg(feature = "openssl")]
fn raw_low_delay_b(mut conn: BConn) -> BenchResult<BConn> {
    if raw_low_delay() {
        b_low_delay(&mut conn)?;
    }
    Ok(conn)
}

fn raw_low_delay_a(mut conn: AConn) -> BenchResult<AConn> {
    if raw_low_delay() && !matches!(conn, AConn::Ours(_)) {
        a_low_delay(&mut conn)?;
    }
    Ok(conn)
}

/// close_notify, then the peer's close_notify and end of stream.
fn b_close_client(conn: BConn) -> BenchResult<()> {
    match conn {
        BConn::Ours(mut socket) => Ok(socket.disconnect_from_host()?),
        #[cfg(feature = "openssl")]
        BConn::Openssl(stream) => ossl::close_client(*stream),
    }
}

/// The peer's close_notify, then ours.
fn b_close_server(conn: BConn) -> BenchResult<()> {
    match conn {
        BConn::Ours(mut socket) => {
            // The client's close_notify: the core answers with ours and closes; the close
            // may already have happened while the previous call waited.
            if socket.state() != sslsocket::SocketState::UnconnectedState {
                socket.wait_for_disconnected(STEP)?;
            }
            Ok(())
        }
        #[cfg(feature = "openssl")]
        BConn::Openssl(stream) => ossl::close_server(*stream),
    }
}

/// TCP_NODELAY on.
fn b_low_delay(conn: &mut BConn) -> BenchResult<()> {
    match conn {
        BConn::Ours(socket) => {
            socket.set_socket_option(sslsocket::SocketOption::LowDelayOption, true)?
        }
        #[cfg(feature = "openssl")]
        BConn::Openssl(stream) => stream.get_ref().set_nodelay(true)?,
    }
    Ok(())
}

fn b_resumed(conn: &BConn) -> bool {
    match conn {
        BConn::Ours(socket) => socket.core().is_session_resumed(),
        #[cfg(feature = "openssl")]
        BConn::Openssl(stream) => stream.ssl().session_reused(),
    }
}

fn b_describe(conn: &BConn) -> (String, (String, String)) {
    match conn {
        BConn::Ours(socket) => describe_ours(socket.core()),
        #[cfg(feature = "openssl")]
        BConn::Openssl(stream) => ossl::describe(stream.ssl()),
    }
}

fn bind_std() -> BenchResult<(std::net::TcpListener, u16)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

fn join(handle: thread::JoinHandle<BenchResult<()>>) -> BenchResult<()> {
    handle.join().map_err(|_| "a server thread panicked")?
}

fn b_session(
    setup: &Arc<Setup>,
    side: BSide,
    suite: Suite,
) -> BenchResult<(String, (String, String))> {
    let (listener, port) = bind_std()?;
    let server_setup = Arc::clone(setup);
    let server = thread::spawn(move || -> BenchResult<()> {
        let conn = b_accept(&server_setup, side, &listener, suite)?;
        b_close_server(conn)
    });
    let client = b_connect(setup, side, port, suite, false)?;
    let described = b_describe(&client);
    b_close_client(client)?;
    join(server)?;
    Ok(described)
}

fn b_handshakes(
    setup: &Arc<Setup>,
    side: BSide,
    resume: bool,
    count: usize,
) -> BenchResult<Measured> {
    let (listener, port) = bind_std()?;
    let warm_up = usize::from(resume);
    let server_setup = Arc::clone(setup);
    let server = thread::spawn(move || -> BenchResult<()> {
        for _ in 0..count + warm_up {
            let mut conn = b_accept(&server_setup, side, &listener, Suite::Default)?;
            if resume {
                // The tickets went out just before: without TCP_NODELAY, Nagle would hold
                // this byte until the client's delayed ACK (40 ms), with every library.
                b_low_delay(&mut conn)?;
                conn.write_all(b"!")?;
                conn.flush()?;
            }
            b_close_server(conn)?;
        }
        Ok(())
    });
    let mut resumed = 0;
    let mut started = Instant::now();
    for i in 0..count + warm_up {
        if i == warm_up {
            // After the warm-up connection, which brought the first tickets.
            started = Instant::now();
        }
        let mut conn = b_connect(setup, side, port, Suite::Default, resume)?;
        if resume {
            // The server's byte comes after its tickets: every client has read them.
            conn.read_exact(&mut [0u8; 1])?;
        }
        resumed += usize::from(i >= warm_up && b_resumed(&conn));
        b_close_client(conn)?;
    }
    let wall = started.elapsed();
    join(server)?;
    Ok(Measured {
        work: count as f64,
        wall,
        latency: None,
        resumed,
    })
}

fn b_bulk(setup: &Arc<Setup>, side: BSide, suite: Suite, bytes: usize) -> BenchResult<Measured> {
    let (listener, port) = bind_std()?;
    let server_setup = Arc::clone(setup);
    let server = thread::spawn(move || -> BenchResult<()> {
        let mut conn = b_accept(&server_setup, side, &listener, suite)?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        while total < bytes {
            match conn.read(&mut buf)? {
                0 => return Err("server: early end of stream".into()),
                n => total += n,
            }
        }
        conn.write_all(b"!")?;
        conn.flush()?;
        b_close_server(conn)
    });
    let mut client = b_connect(setup, side, port, suite, false)?;
    let data = vec![0xA5u8; CHUNK];
    let mut ack = [0u8; 1];
    let started = Instant::now();
    for _ in 0..bytes / CHUNK {
        client.write_all(&data)?;
    }
    client.flush()?;
    client.read_exact(&mut ack)?;
    let wall = started.elapsed();
    b_close_client(client)?;
    join(server)?;
    Ok(Measured {
        work: bytes as f64 / 1e6,
        wall,
        ..Measured::default()
    })
}

fn b_pingpong(setup: &Arc<Setup>, side: BSide, pings: usize) -> BenchResult<Measured> {
    let (listener, port) = bind_std()?;
    let server_setup = Arc::clone(setup);
    let server = thread::spawn(move || -> BenchResult<()> {
        let mut conn = b_accept(&server_setup, side, &listener, Suite::Default)?;
        let mut buf = [0u8; PING];
        for _ in 0..pings {
            conn.read_exact(&mut buf)?;
            conn.write_all(&buf)?;
            conn.flush()?;
        }
        b_close_server(conn)
    });
    let mut client = b_connect(setup, side, port, Suite::Default, false)?;
    let request = [0x5Au8; PING];
    let mut answer = [0u8; PING];
    let mut times = Vec::with_capacity(pings);
    let started = Instant::now();
    for _ in 0..pings {
        let one = Instant::now();
        client.write_all(&request)?;
        client.flush()?;
        client.read_exact(&mut answer)?;
        times.push(one.elapsed());
    }
    let wall = started.elapsed();
    b_close_client(client)?;
    join(server)?;
    Ok(Measured {
        work: pings as f64,
        wall,
        latency: Some(percentiles(times)),
        resumed: 0,
    })
}

/// p50 and p99, µs.
fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| {
        let index = ((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1));
        times.get(index).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    };
    (at(0.50), at(0.99))
}

// ----- the async side: ours, or tokio-rustls -------------------------------------------

#[derive(Clone, Copy, Debug)]
enum ASide {
    Ours,
    Raw,
    /// The openssl crate on tokio (OpenSSL section).
    #[cfg(feature = "openssl")]
    Openssl,
}

/// Boxed, so each holds its own size only.
enum AConn {
    Ours(Box<sslsocket::tokio::SslSocket>),
    Raw(Box<TlsStream<TcpStream>>),
    #[cfg(feature = "openssl")]
    Openssl(Box<aossl::Stream>),
}

impl AsyncRead for AConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AConn::Ours(s) => Pin::new(s).poll_read(cx, buf),
            AConn::Raw(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "openssl")]
            AConn::Openssl(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for AConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AConn::Ours(s) => Pin::new(s).poll_write(cx, buf),
            AConn::Raw(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "openssl")]
            AConn::Openssl(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AConn::Ours(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            AConn::Raw(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "openssl")]
            AConn::Openssl(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            AConn::Ours(s) => s.is_write_vectored(),
            AConn::Raw(s) => s.is_write_vectored(),
            #[cfg(feature = "openssl")]
            AConn::Openssl(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AConn::Ours(s) => Pin::new(s).poll_flush(cx),
            AConn::Raw(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "openssl")]
            AConn::Openssl(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AConn::Ours(s) => Pin::new(s).poll_shutdown(cx),
            AConn::Raw(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "openssl")]
            AConn::Openssl(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per sample
enum AListener {
    /// Ours, with its handshake timeout.
    Ours(sslsocket::tokio::SslServer),
    Raw(TcpListener, TlsAcceptor),
    #[cfg(feature = "openssl")]
    Openssl(TcpListener, openssl::ssl::SslContext),
}

impl AListener {
    async fn bind(setup: &Setup, side: ASide, suite: Suite) -> BenchResult<(AListener, u16)> {
        let listener = match side {
            ASide::Ours => AListener::Ours(
                sslsocket::tokio::SslServer::bind("127.0.0.1:0", setup.ours_server(suite)).await?,
            ),
            ASide::Raw => AListener::Raw(
                TcpListener::bind("127.0.0.1:0").await?,
                TlsAcceptor::from(Arc::clone(&setup.rustls_server[suite.index()])),
            ),
            #[cfg(feature = "openssl")]
            ASide::Openssl => AListener::Openssl(
                TcpListener::bind("127.0.0.1:0").await?,
                setup.ossl.server_context(suite).clone(),
            ),
        };
        let port = match &listener {
            AListener::Ours(server) => server.local_addr().port(),
            AListener::Raw(tcp, _) => tcp.local_addr()?.port(),
            #[cfg(feature = "openssl")]
            AListener::Openssl(tcp, _) => tcp.local_addr()?.port(),
        };
        Ok((listener, port))
    }

    async fn accept(&self) -> BenchResult<AConn> {
        raw_low_delay_a(self.accept_with_defaults().await?)
    }

    async fn accept_with_defaults(&self) -> BenchResult<AConn> {
        match self {
            AListener::Ours(server) => Ok(AConn::Ours(Box::new(server.accept_encrypted().await?))),
            AListener::Raw(listener, acceptor) => {
                let (tcp, _) = listener.accept().await?;
                Ok(AConn::Raw(Box::new(TlsStream::Server(
                    acceptor.accept(tcp).await?,
                ))))
            }
            #[cfg(feature = "openssl")]
            AListener::Openssl(listener, context) => {
                let (tcp, _) = listener.accept().await?;
                Ok(AConn::Openssl(Box::new(aossl::accept(context, tcp).await?)))
            }
        }
    }
}

async fn a_connect(
    setup: &Setup,
    side: ASide,
    port: u16,
    suite: Suite,
    resume: bool,
) -> BenchResult<AConn> {
    raw_low_delay_a(a_connect_with_defaults(setup, side, port, suite, resume).await?)
}

async fn a_connect_with_defaults(
    setup: &Setup,
    side: ASide,
    port: u16,
    suite: Suite,
    resume: bool,
) -> BenchResult<AConn> {
    match side {
        // Like the raw client: connect to the address, verify and send SNI for the name.
        ASide::Ours => Ok(AConn::Ours(Box::new(
            sslsocket::tokio::SslSocket::connect_to_host_encrypted_with_peer_name(
                "127.0.0.1",
                port,
                "localhost",
                setup.ours_client(suite, resume),
            )
            .await?,
        ))),
        ASide::Raw => {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            let connector = TlsConnector::from(setup.rustls_client(suite, resume));
            Ok(AConn::Raw(Box::new(TlsStream::Client(
                connector
                    .connect(ServerName::try_from("localhost")?, tcp)
                    .await?,
            ))))
        }
        #[cfg(feature = "openssl")]
        ASide::Openssl => Ok(AConn::Openssl(Box::new(
            aossl::connect(&setup.ossl, port, suite, resume).await?,
        ))),
    }
}

/// close_notify and TCP shutdown, then the peer's end.
async fn a_close_client(conn: AConn) -> BenchResult<()> {
    match conn {
        AConn::Ours(mut socket) => socket.disconnect_from_host().await?,
        AConn::Raw(mut stream) => {
            stream.shutdown().await?;
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await?;
        }
        #[cfg(feature = "openssl")]
        AConn::Openssl(mut stream) => {
            stream.shutdown().await?;
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await?;
        }
    }
    Ok(())
}

/// The peer's end, then close_notify and TCP shutdown.
async fn a_close_server(conn: AConn) -> BenchResult<()> {
    let mut rest = Vec::new();
    match conn {
        AConn::Ours(mut socket) => {
            socket.read_to_end(&mut rest).await?;
            socket.disconnect_from_host().await?;
        }
        AConn::Raw(mut stream) => {
            stream.read_to_end(&mut rest).await?;
            stream.shutdown().await?;
        }
        #[cfg(feature = "openssl")]
        AConn::Openssl(mut stream) => {
            stream.read_to_end(&mut rest).await?;
            // The client may be gone already once it has our close_notify (as in the
            // blocking openssl crate's close): not an error.
            let _ = stream.shutdown().await;
        }
    }
    Ok(())
}

/// TCP_NODELAY on.
fn a_low_delay(conn: &mut AConn) -> BenchResult<()> {
    match conn {
        AConn::Ours(socket) => {
            socket.set_socket_option(sslsocket::SocketOption::LowDelayOption, true)?
        }
        AConn::Raw(stream) => stream.get_ref().0.set_nodelay(true)?,
        #[cfg(feature = "openssl")]
        AConn::Openssl(stream) => stream.tcp().set_nodelay(true)?,
    }
    Ok(())
}

fn a_resumed(conn: &AConn) -> bool {
    match conn {
        AConn::Ours(socket) => socket.core().is_session_resumed(),
        AConn::Raw(stream) => {
            stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
        }
        #[cfg(feature = "openssl")]
        AConn::Openssl(stream) => stream.ssl().session_reused(),
    }
}

fn a_describe(conn: &AConn) -> (String, (String, String)) {
    match conn {
        AConn::Ours(socket) => describe_ours(socket.core()),
        #[cfg(feature = "openssl")]
        AConn::Openssl(stream) => ossl::describe(stream.ssl()),
        AConn::Raw(stream) => {
            let connection = stream.get_ref().1;
            let suite = connection
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str())
                .map(common::normalize_suite)
                .unwrap_or_default();
            let group = connection
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))
                .unwrap_or_default();
            (
                format!(
                    "{} {suite} {group}",
                    connection
                        .protocol_version()
                        .and_then(|v| v.as_str())
                        .unwrap_or("?"),
                ),
                (suite, group),
            )
        }
    }
}

async fn a_session(
    setup: &Arc<Setup>,
    side: ASide,
    suite: Suite,
) -> BenchResult<(String, (String, String))> {
    let (listener, port) = AListener::bind(setup, side, suite).await?;
    let served = tokio::spawn(async move { a_close_server(listener.accept().await?).await });
    let client = a_connect(setup, side, port, suite, false).await?;
    let described = a_describe(&client);
    a_close_client(client).await?;
    served.await??;
    Ok(described)
}

async fn a_handshakes(
    setup: &Arc<Setup>,
    side: ASide,
    resume: bool,
    count: usize,
) -> BenchResult<Measured> {
    let (listener, port) = AListener::bind(setup, side, Suite::Default).await?;
    let warm_up = usize::from(resume);
    let served = tokio::spawn(async move {
        for _ in 0..count + warm_up {
            let mut conn = listener.accept().await?;
            if resume {
                // As in `b_handshakes`: no Nagle wait for the byte after the tickets.
                a_low_delay(&mut conn)?;
                conn.write_all(b"!").await?;
                conn.flush().await?;
            }
            a_close_server(conn).await?;
        }
        BenchResult::Ok(())
    });
    let mut resumed = 0;
    let mut started = Instant::now();
    for i in 0..count + warm_up {
        if i == warm_up {
            // After the warm-up connection, which brought the first tickets.
            started = Instant::now();
        }
        let mut conn = a_connect(setup, side, port, Suite::Default, resume).await?;
        if resume {
            // The server's byte comes after its tickets: every client has read them.
            conn.read_exact(&mut [0u8; 1]).await?;
        }
        resumed += usize::from(i >= warm_up && a_resumed(&conn));
        a_close_client(conn).await?;
    }
    let wall = started.elapsed();
    served.await??;
    Ok(Measured {
        work: count as f64,
        wall,
        latency: None,
        resumed,
    })
}

async fn a_bulk(
    setup: &Arc<Setup>,
    side: ASide,
    suite: Suite,
    bytes: usize,
) -> BenchResult<Measured> {
    let (listener, port) = AListener::bind(setup, side, suite).await?;
    let served = tokio::spawn(async move {
        let mut conn = listener.accept().await?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        while total < bytes {
            match conn.read(&mut buf).await? {
                0 => return Err("server: early end of stream".into()),
                n => total += n,
            }
        }
        conn.write_all(b"!").await?;
        conn.flush().await?;
        a_close_server(conn).await
    });
    let mut client = a_connect(setup, side, port, suite, false).await?;
    let data = vec![0xA5u8; CHUNK];
    let mut ack = [0u8; 1];
    let started = Instant::now();
    for _ in 0..bytes / CHUNK {
        client.write_all(&data).await?;
    }
    client.flush().await?;
    client.read_exact(&mut ack).await?;
    let wall = started.elapsed();
    a_close_client(client).await?;
    served.await??;
    Ok(Measured {
        work: bytes as f64 / 1e6,
        wall,
        ..Measured::default()
    })
}

async fn a_pingpong(setup: &Arc<Setup>, side: ASide, pings: usize) -> BenchResult<Measured> {
    let (listener, port) = AListener::bind(setup, side, Suite::Default).await?;
    let served = tokio::spawn(async move {
        let mut conn = listener.accept().await?;
        let mut buf = [0u8; PING];
        for _ in 0..pings {
            conn.read_exact(&mut buf).await?;
            conn.write_all(&buf).await?;
            conn.flush().await?;
        }
        a_close_server(conn).await
    });
    let mut client = a_connect(setup, side, port, Suite::Default, false).await?;
    let request = [0x5Au8; PING];
    let mut answer = [0u8; PING];
    let mut times = Vec::with_capacity(pings);
    let started = Instant::now();
    for _ in 0..pings {
        let one = Instant::now();
        client.write_all(&request).await?;
        client.flush().await?;
        client.read_exact(&mut answer).await?;
        times.push(one.elapsed());
    }
    let wall = started.elapsed();
    a_close_client(client).await?;
    served.await??;
    Ok(Measured {
        work: pings as f64,
        wall,
        latency: Some(percentiles(times)),
        resumed: 0,
    })
}

// ----- memory per idle connection ------------------------------------------------------

/// KiB of the server child's RSS per idle connection.
fn memory(setup: &Arc<Setup>, variant: usize) -> BenchResult<f64> {
    let idle = setup.sizes.idle;
    let mut worker = Worker::start(
        "memory-server",
        &setup.pki,
        &[("BENCH_VARIANT", VARIANTS[variant])],
    )?;
    let port: u16 = worker.expect("port", STEP)?.parse()?;
    let config = setup.rustls_client(Suite::Default, false);
    let mut clients = Vec::with_capacity(idle + 1);
    // The warm-up connection: one-time allocations (engine configuration, runtime) are
    // in the baseline.
    clients.push(idle_client(&config, port)?);
    worker.send("rss 1")?;
    let before: f64 = worker.expect("rss", STEP)?.parse()?;
    for _ in 0..idle {
        clients.push(idle_client(&config, port)?);
    }
    worker.send(&format!("rss {}", idle + 1))?;
    let after: f64 = worker.expect("rss", Duration::from_secs(120))?.parse()?;
    worker.finish(Duration::from_secs(30))?;
    drop(clients);
    Ok((after - before) / idle as f64)
}

/// A raw rustls client (blocking, no runtime) with a finished handshake, kept open.
fn idle_client(
    config: &Arc<ClientConfig>,
    port: u16,
) -> BenchResult<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(STEP))?;
    tcp.set_write_timeout(Some(STEP))?;
    let connection =
        rustls::ClientConnection::new(Arc::clone(config), ServerName::try_from("localhost")?)?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// The child of `memory`: a server of the variant `BENCH_VARIANT` in the section of
/// `SSLSOCKET_BACKEND`; prints `port N`, then answers `rss N` (once N connections are
/// established) with `rss KIB`; exits when its stdin ends.
fn memory_server() -> BenchResult<()> {
    let section = Section::current();
    if section == Section::Openssl && sslsocket::backend::set_active_backend("openssl").is_err() {
        return Err("the OpenSSL backend is not available".into());
    }
    let pki = Pki::get()?;
    let name = std::env::var("BENCH_VARIANT")?;
    let variant = VARIANTS
        .iter()
        .position(|v| *v == name)
        .ok_or("BENCH_VARIANT: unknown")?;
    let established = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let counter = Arc::clone(&established);
    match driver(section, variant)? {
        Driver::Blocking(side) => {
            let setup = Setup::new(section, &pki)?;
            thread::spawn(move || {
                let mut held = Vec::new();
                loop {
                    match b_accept(&setup, side, &listener, Suite::Default) {
                        Ok(conn) => {
                            held.push(conn);
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(error) => eprintln!("memory server: {error}"),
                    }
                }
            });
        }
        Driver::Async(side) => {
            let server = match side {
                ASide::Ours => IdleServer::Ours(common::ours_server(&pki, Suite::Default)?),
                ASide::Raw => IdleServer::Raw(TlsAcceptor::from(common::rustls_server(
                    &pki,
                    Suite::Default,
                )?)),
                #[cfg(feature = "openssl")]
                ASide::Openssl => IdleServer::Openssl(
                    ossl::Contexts::new(&pki)?
                        .server_context(Suite::Default)
                        .clone(),
                ),
            };
            listener.set_nonblocking(true)?;
            thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    eprintln!("memory server: no runtime");
                    return;
                };
                let result = runtime.block_on(async_idle_server(listener, server, counter));
                if let Err(error) = result {
                    eprintln!("memory server: {error}");
                }
            });
        }
    }
    common::say(&format!("port {port}"))?;
    let lines = common::stdin_lines();
    while let Ok(line) = lines.recv() {
        let Some(wanted) = line.strip_prefix("rss ") else {
            continue;
        };
        let wanted: usize = wanted.trim().parse()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while established.load(Ordering::SeqCst) < wanted && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        // Let the last handshakes' work (tickets sent, buffers) settle.
        thread::sleep(Duration::from_millis(100));
        common::say(&format!("rss {}", common::vm_rss_kib()?))?;
    }
    // The parent is done: the connections are never closed one by one.
    std::process::exit(0)
}

/// The server of an async variant's memory child.
enum IdleServer {
    Ours(SslConfiguration),
    Raw(TlsAcceptor),
    #[cfg(feature = "openssl")]
    Openssl(openssl::ssl::SslContext),
}

async fn async_idle_server(
    listener: std::net::TcpListener,
    server: IdleServer,
    established: Arc<AtomicUsize>,
) -> BenchResult<()> {
    let listener = TcpListener::from_std(listener)?;
    match server {
        IdleServer::Ours(configuration) => {
            let server = sslsocket::tokio::SslServer::from_listener(listener, configuration)?;
            loop {
                let (tcp, _) = server.accept().await?;
                tokio::spawn(hold(server.handshake(tcp), Arc::clone(&established)));
            }
        }
        IdleServer::Raw(acceptor) => loop {
            let (tcp, _) = listener.accept().await?;
            tokio::spawn(hold(acceptor.accept(tcp), Arc::clone(&established)));
        },
        #[cfg(feature = "openssl")]
        IdleServer::Openssl(context) => loop {
            let (tcp, _) = listener.accept().await?;
            let context = context.clone();
            let accepting = async move { aossl::accept(&context, tcp).await };
            tokio::spawn(hold(accepting, Arc::clone(&established)));
        },
    }
}

/// Counts the connection `handshake` makes, then holds it: a read into a 64-byte buffer
/// awaited until the peer's end.
async fn hold<S: AsyncRead + Unpin, E: std::fmt::Display>(
    handshake: impl std::future::Future<Output = Result<S, E>>,
    established: Arc<AtomicUsize>,
) {
    match handshake.await {
        Ok(mut stream) => {
            established.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 64];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
        Err(error) => eprintln!("memory server: {error}"),
    }
}

// ----- the table -----------------------------------------------------------------------

/// One row: label, the figures of the four variants (NaN for one the section lacks), the
/// ratios blocking / raw, tokio / raw, tokio / raw on tokio.
struct Row {
    label: String,
    figures: [f64; 4],
    ratios: [f64; 3],
}

/// Medians of `value` over the rounds, ratios = medians of the per-round ratios.
fn wall_row(label: &str, samples: &[Vec<Sample>; 4], value: impl Fn(&Sample) -> f64) -> Row {
    let figures = samples
        .each_ref()
        .map(|s| common::median(s.iter().map(&value).collect()));
    let paired = |ours: &[Sample], raw: &[Sample]| {
        common::median(
            ours.iter()
                .zip(raw)
                .map(|(o, r)| value(o) / value(r))
                .collect(),
        )
    };
    Row {
        label: label.to_string(),
        figures,
        ratios: [
            paired(&samples[0], &samples[2]),
            paired(&samples[1], &samples[2]),
            paired(&samples[1], &samples[3]),
        ],
    }
}

/// Work of all rounds per CPU-second of the process.
fn cpu_row(label: &str, samples: &[Vec<Sample>; 4]) -> Row {
    let figures = samples.each_ref().map(|s| {
        let work: f64 = s.iter().map(|s| s.work).sum();
        let cpu: Duration = s.iter().map(|s| s.cpu).sum();
        work / cpu.as_secs_f64()
    });
    Row {
        label: label.to_string(),
        figures,
        ratios: [
            figures[0] / figures[2],
            figures[1] / figures[2],
            figures[1] / figures[3],
        ],
    }
}

fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn report(
    setup: &Setup,
    workloads: &[Workload],
    samples: &[[Vec<Sample>; 4]],
    runs: usize,
) -> String {
    let on_tokio = variants(setup.section).contains(&3);
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (workload, samples) in workloads.iter().zip(samples) {
        let wall = |s: &Sample| s.figure();
        match workload {
            Workload::Full | Workload::Resumed => {
                let kind = if *workload == Workload::Full {
                    "full"
                } else {
                    "resumed"
                };
                rows.push(wall_row(&format!("{kind} handshakes/s"), samples, wall));
                rows.push(cpu_row("  per CPU-second", samples));
                let counts: Vec<String> = variants(setup.section)
                    .into_iter()
                    .map(|v| {
                        let resumed: usize = samples[v].iter().map(|s| s.resumed).sum();
                        let total: f64 = samples[v].iter().map(|s| s.work).sum();
                        format!("{} {resumed}/{total:.0}", VARIANTS[v])
                    })
                    .collect();
                notes.push(format!("{kind} handshakes, resumed: {}", counts.join(", ")));
            }
            Workload::Bulk(suite) => {
                rows.push(wall_row(
                    &format!("bulk MB/s, {}", suite.label()),
                    samples,
                    wall,
                ));
                rows.push(cpu_row("  MB per CPU-second", samples));
            }
            Workload::PingPong => {
                rows.push(wall_row("64 B ping-pong round trips/s", samples, wall));
                rows.push(cpu_row("  per CPU-second", samples));
                rows.push(wall_row("  p50 µs (lower is better)", samples, |s| {
                    s.latency.map_or(f64::NAN, |l| l.0)
                }));
                rows.push(wall_row("  p99 µs (lower is better)", samples, |s| {
                    s.latency.map_or(f64::NAN, |l| l.1)
                }));
            }
            Workload::Memory => {
                rows.push(wall_row(
                    &format!("KiB/idle conn, {} (lower=better)", setup.sizes.idle),
                    samples,
                    wall,
                ));
            }
        }
    }

    let raw = setup.section.raw_name();
    println!();
    print!(
        "{:<36} {:>10} {:>10} {:>13} {:>9} {:>9}",
        "", "blocking", "tokio", raw, "blk/raw", "tokio/raw"
    );
    if on_tokio {
        print!(" {:>13} {:>12}", "raw on tokio", "tokio/rawtok");
    }
    println!();
    for row in &rows {
        let [b, t, r, rt_raw] = row.figures;
        let [rb, rt, rtt] = row.ratios;
        print!(
            "{:<36} {:>10} {:>10} {:>13} {:>8.2}x {:>8.2}x",
            row.label,
            number(b),
            number(t),
            number(r),
            rb,
            rt
        );
        if on_tokio {
            print!(" {:>13} {:>11.2}x", number(rt_raw), rtt);
        }
        println!();
    }
    println!();
    for note in &notes {
        println!("{note}");
    }
    println!("{runs} rounds; figures: medians of the rounds; ratios ours / {raw}: medians of the");
    println!("per-round ratios (\"per CPU-second\": all rounds, whole process, client + server).");
    let like_for_like: Vec<&str> = [
        raw_low_delay().then_some("BENCH_NODELAY=1: TCP_NODELAY on every socket"),
        common::query_peer().then_some(common::QUERY_PEER_LABEL),
    ]
    .into_iter()
    .flatten()
    .collect();
    for line in &like_for_like {
        println!("{line}");
    }
    let sockets: String = like_for_like.iter().map(|l| format!("; {l}")).collect();

    let mut md = String::new();
    md.push_str(&format!(
        "\n**{}** ({runs} rounds, medians; ratio = ours / {raw}{sockets})\n\n",
        setup.section.title()
    ));
    if on_tokio {
        md.push_str(&format!(
            "| workload | {raw} | ours blocking | ratio | ours tokio | ratio | {raw} on tokio | ours tokio / it |\n"
        ));
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    } else {
        md.push_str(&format!(
            "| workload | {raw} | ours blocking | ratio | ours tokio | ratio |\n"
        ));
        md.push_str("|---|---:|---:|---:|---:|---:|\n");
    }
    for row in &rows {
        let [b, t, r, rt_raw] = row.figures;
        let [rb, rt, rtt] = row.ratios;
        md.push_str(&format!(
            "| {} | {} | {} | {:.2}x | {} | {:.2}x |",
            row.label.replacen("  ", "↳ ", 1),
            number(r),
            number(b),
            rb,
            number(t),
            rt
        ));
        if on_tokio {
            md.push_str(&format!(" {} | {:.2}x |", number(rt_raw), rtt));
        }
        md.push('\n');
    }
    for note in &notes {
        md.push_str(&format!("\n{note}\n"));
    }
    md
}

// ----- the openssl crate ---------------------------------------------------------------

#[cfg(feature = "openssl")]
mod ossl {
    //! The openssl crate as a new user would write it: `SslConnector` for the client (with
    //! its defaults: peer verification, host name check, SNI), an `SslContext` for the
    //! server, both TLS 1.3 with the bench's suite and group; client sessions kept from the
    //! new-session callback and offered again (`sslsocket_openssl_ext::set_session`, the
    //! safe wrapper of `SSL_set_session`).

    use std::io::Read;
    use std::net::TcpStream;
    use std::sync::{Arc, Mutex};

    use openssl::pkey::{Id, PKey};
    use openssl::ssl::{
        Ssl, SslConnector, SslContext, SslContextBuilder, SslMethod, SslRef, SslSessionCacheMode,
        SslStream, SslVerifyMode, SslVersion,
    };
    use openssl::x509::X509;
    use sslsocket_openssl_ext::ContextSession;

    use super::{common, BenchResult, Pki, Suite, STEP};

    pub struct Contexts {
        server: Vec<SslContext>,
        client: Vec<SslConnector>,
        resume: SslConnector,
        /// The last session the resuming client received.
        session: Arc<Mutex<Option<ContextSession>>>,
    }

    fn restrict(builder: &mut SslContextBuilder, suite: Suite) -> BenchResult<()> {
        builder.set_min_proto_version(Some(SslVersion::TLS1_3))?;
        builder.set_max_proto_version(Some(SslVersion::TLS1_3))?;
        if let Some(name) = suite.iana() {
            builder.set_ciphersuites(name)?;
        }
        if let Some(group) = common::group() {
            builder.set_groups_list(&group)?;
        }
        Ok(())
    }

    fn server(pki: &Pki, suite: Suite) -> BenchResult<SslContext> {
        let mut builder = SslContext::builder(SslMethod::tls_server())?;
        restrict(&mut builder, suite)?;
        if common::query_peer() {
            // As ours by default (and Qt): SSL_VERIFY_PEER, any verdict taken.
            builder.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
            // OpenSSL refuses to cache a session of a server that verifies without one.
            builder.set_session_id_context(b"compare")?;
        }
        let certificate = X509::from_der(&pki.leaf)?;
        let key = PKey::private_key_from_der(&pki.key)?;
        builder.set_certificate(&certificate)?;
        builder.set_private_key(&key)?;
        builder.check_private_key()?;
        Ok(builder.build())
    }

    fn client(
        pki: &Pki,
        suite: Suite,
        session: Option<&Arc<Mutex<Option<ContextSession>>>>,
    ) -> BenchResult<SslConnector> {
        let mut builder = SslConnector::builder(SslMethod::tls_client())?;
        restrict(&mut builder, suite)?;
        builder.set_verify(SslVerifyMode::PEER);
        builder
            .cert_store_mut()
            .add_cert(X509::from_der(&pki.ca)?)?;
        match session {
            Some(slot) => {
                sslsocket_openssl_ext::tag_context(&mut builder)?;
                builder.set_session_cache_mode(
                    SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL,
                );
                let slot = Arc::clone(slot);
                builder.set_new_session_callback(move |ssl, session| {
                    if let Some(tagged) = ContextSession::new(ssl, session) {
                        let mut guard = match slot.lock() {
                            Ok(g) => g,
                            Err(p) => p.into_inner(),
                        };
                        *guard = Some(tagged);
                    }
                });
            }
            None => {
                builder.set_session_cache_mode(SslSessionCacheMode::OFF);
            }
        }
        Ok(builder.build())
    }

    impl Contexts {
        pub fn new(pki: &Pki) -> BenchResult<Contexts> {
            let session = Arc::new(Mutex::new(None));
            let mut contexts = Contexts {
                server: Vec::new(),
                client: Vec::new(),
                resume: client(pki, Suite::Default, Some(&session))?,
                session,
            };
            for suite in Suite::ALL {
                contexts.server.push(server(pki, suite)?);
                contexts.client.push(client(pki, suite, None)?);
            }
            Ok(contexts)
        }

        /// The server context of `suite`.
        pub fn server_context(&self, suite: Suite) -> &SslContext {
            &self.server[suite.index()]
        }

        /// A client connection to `localhost` for `suite`; `resume`: on the resuming
        /// context, offering the last session it received.
        pub fn client_ssl(&self, suite: Suite, resume: bool) -> BenchResult<Ssl> {
            let connector = if resume {
                &self.resume
            } else {
                &self.client[suite.index()]
            };
            let mut ssl = connector.configure()?.into_ssl("localhost")?;
            if resume {
                let guard = match self.session.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                if let Some(session) = guard.as_ref() {
                    sslsocket_openssl_ext::set_session(&mut ssl, session)?;
                }
            }
            Ok(ssl)
        }
    }

    pub fn accept(
        contexts: &Contexts,
        tcp: TcpStream,
        suite: Suite,
    ) -> BenchResult<SslStream<TcpStream>> {
        tcp.set_read_timeout(Some(STEP))?;
        tcp.set_write_timeout(Some(STEP))?;
        let ssl = Ssl::new(&contexts.server[suite.index()])?;
        ssl.accept(tcp)
            .map_err(|e| format!("openssl accept: {e}").into())
    }

    pub fn connect(
        contexts: &Contexts,
        port: u16,
        suite: Suite,
        resume: bool,
    ) -> BenchResult<SslStream<TcpStream>> {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(STEP))?;
        tcp.set_write_timeout(Some(STEP))?;
        contexts
            .client_ssl(suite, resume)?
            .connect(tcp)
            .map_err(|e| format!("openssl connect: {e}").into())
    }

    fn drain(stream: &mut SslStream<TcpStream>) -> BenchResult<()> {
        let mut sink = [0u8; 4096];
        // `read` is 0 at the peer's close_notify (or a bare end of stream).
        while stream.read(&mut sink)? > 0 {}
        Ok(())
    }

    pub fn close_client(mut stream: SslStream<TcpStream>) -> BenchResult<()> {
        stream.shutdown()?;
        drain(&mut stream)
    }

    pub fn close_server(mut stream: SslStream<TcpStream>) -> BenchResult<()> {
        drain(&mut stream)?;
        // The client may be gone already once it has our close_notify: not an error.
        let _ = stream.shutdown();
        Ok(())
    }

    pub fn describe(ssl: &SslRef) -> (String, (String, String)) {
        let suite = ssl
            .current_cipher()
            .and_then(|c| c.standard_name())
            .unwrap_or("?")
            .to_string();
        let group = match ssl.peer_tmp_key() {
            Ok(key) if key.id() == Id::X25519 => "X25519".to_string(),
            Ok(key) if key.id() == Id::X448 => "X448".to_string(),
            Ok(key) => match key.ec_key() {
                Ok(ec) => ec
                    .group()
                    .curve_name()
                    .and_then(|nid| nid.short_name().ok())
                    .unwrap_or("?")
                    .to_string(),
                Err(_) => format!("{:?}", key.id()),
            },
            Err(_) => "?".to_string(),
        };
        (
            format!("{} {suite} {group}", ssl.version_str()),
            (suite, group),
        )
    }
}

// ----- the openssl crate on tokio ------------------------------------------------------

#[cfg(feature = "openssl")]
mod aossl {
    //! The openssl crate on tokio, driven the way tokio-openssl drives it: an `SslStream`
    //! over the tokio socket's non-blocking `try_read` / `try_write`, and a `WANT_READ` /
    //! `WANT_WRITE` waits for the socket's readiness, then OpenSSL is called again.
    //! tokio-openssl itself is not a dependency: a dev-dependency cannot be optional, and
    //! it would build openssl-sys (and need libssl-dev) for every test run of the default
    //! build.

    use std::future::poll_fn;
    use std::io::{self, Read, Write};
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};

    use openssl::ssl::{Error, ErrorCode, Ssl, SslContext, SslRef, SslStream};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;

    use super::{ossl, BenchResult, Suite};

    /// The socket as OpenSSL sees it: reads and writes that never block.
    pub struct Io(TcpStream);

    impl Read for Io {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.try_read(buf)
        }
    }

    impl Write for Io {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.try_write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    pub struct Stream(SslStream<Io>);

    /// Runs `op` until it does not wait for the socket: its outcome, or the socket's
    /// error while waiting.
    fn drive<T>(
        stream: &mut SslStream<Io>,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&mut SslStream<Io>) -> Result<T, Error>,
    ) -> Poll<io::Result<Result<T, Error>>> {
        loop {
            match op(stream) {
                Err(e) if e.code() == ErrorCode::WANT_READ => {
                    ready!(stream.get_ref().0.poll_read_ready(cx))?;
                }
                Err(e) if e.code() == ErrorCode::WANT_WRITE => {
                    ready!(stream.get_ref().0.poll_write_ready(cx))?;
                }
                outcome => return Poll::Ready(Ok(outcome)),
            }
        }
    }

    async fn handshake(
        mut stream: SslStream<Io>,
        op: fn(&mut SslStream<Io>) -> Result<(), Error>,
    ) -> BenchResult<Stream> {
        poll_fn(|cx| drive(&mut stream, cx, op))
            .await?
            .map_err(|e| format!("openssl on tokio, handshake: {e}"))?;
        Ok(Stream(stream))
    }

    pub async fn accept(context: &SslContext, tcp: TcpStream) -> BenchResult<Stream> {
        let stream = SslStream::new(Ssl::new(context)?, Io(tcp))?;
        handshake(stream, |s| s.accept()).await
    }

    pub async fn connect(
        contexts: &ossl::Contexts,
        port: u16,
        suite: Suite,
        resume: bool,
    ) -> BenchResult<Stream> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let stream = SslStream::new(contexts.client_ssl(suite, resume)?, Io(tcp))?;
        handshake(stream, |s| s.connect()).await
    }

    impl Stream {
        pub fn ssl(&self) -> &SslRef {
            self.0.ssl()
        }

        pub fn tcp(&self) -> &TcpStream {
            &self.0.get_ref().0
        }
    }

    impl AsyncRead for Stream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let stream = &mut self.get_mut().0;
            match ready!(drive(stream, cx, |s| s.ssl_read(buf.initialize_unfilled())))? {
                Ok(n) => {
                    buf.advance(n);
                    Poll::Ready(Ok(()))
                }
                // The peer's close_notify: the end.
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => Poll::Ready(Ok(())),
                Err(e) => Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }

    impl AsyncWrite for Stream {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let stream = &mut self.get_mut().0;
            ready!(drive(stream, cx, |s| s.ssl_write(buf)))?
                .map_err(io::Error::other)
                .into()
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            // Nothing is buffered above the socket.
            Poll::Ready(Ok(()))
        }

        /// close_notify, then the TCP shutdown.
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let stream = &mut self.get_mut().0;
            match ready!(drive(stream, cx, |s| s.shutdown()))? {
                Ok(_) => {}
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {}
                Err(e) => return Poll::Ready(Err(io::Error::other(e))),
            }
            Pin::new(&mut stream.get_mut().0).poll_shutdown(cx)
        }
    }
}
