//! Shared by the benches: the certificate, the configurations (ours and raw rustls), the
//! cipher suites, `/proc` readings and child processes. Not a bench target itself (cargo
//! only picks up `benches/*.rs` and `benches/*/main.rs`).
#![allow(dead_code)] // each bench uses a part

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sslsocket::{SslCertificate, SslCipher, SslConfiguration, SslEllipticCurve, SslKey};
use sslsocket::{SslOption, SslProtocol};

pub type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The environment variable that hands the certificate to a child process.
pub const PKI_ENV: &str = "BENCH_PKI";
/// The environment variable that tells a child process whether this is a smoke run.
pub const SMOKE_ENV: &str = "BENCH_SMOKE";
/// The environment variable that gives a child process its role.
pub const ROLE_ENV: &str = "BENCH_ROLE";
/// The key exchange group everywhere, unless `BENCH_GROUP` names another one (`default`:
/// each library's own preference: X25519MLKEM768 first for rustls 0.23 with aws-lc-rs,
/// X25519 for OpenSSL 3.0).
pub const DEFAULT_GROUP: &str = "X25519";

/// The ECDSA P-256 certificate of the server (rcgen, made once by the parent and passed to
/// child processes in `BENCH_PKI`) and the CA that signed it.
#[derive(Clone)]
pub struct Pki {
    pub ca: Vec<u8>,
    pub leaf: Vec<u8>,
    /// PKCS#8.
    pub key: Vec<u8>,
}

impl Pki {
    /// The parent's certificate from `BENCH_PKI`, or a new one.
    pub fn get() -> BenchResult<Pki> {
        match std::env::var(PKI_ENV) {
            Ok(text) => Pki::from_env(&text),
            Err(_) => Pki::generate(),
        }
    }

    fn generate() -> BenchResult<Pki> {
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
        Ok(Pki {
            ca: ca.der().to_vec(),
            leaf: leaf.der().to_vec(),
            key: leaf_key.serialize_der(),
        })
    }

    /// `CA:LEAF:KEY`, each in hex.
    pub fn to_env(&self) -> String {
        [&self.ca, &self.leaf, &self.key]
            .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .join(":")
    }

    fn from_env(text: &str) -> BenchResult<Pki> {
        let parts: Vec<Vec<u8>> = text.split(':').map(unhex).collect::<BenchResult<_>>()?;
        match <[Vec<u8>; 3]>::try_from(parts) {
            Ok([ca, leaf, key]) => Ok(Pki { ca, leaf, key }),
            Err(_) => Err(format!("{PKI_ENV}: expected CA:LEAF:KEY").into()),
        }
    }
}

fn unhex(text: &str) -> BenchResult<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            let pair = text.get(i..i + 2).ok_or("hex: not ASCII")?;
            Ok(u8::from_str_radix(pair, 16)?)
        })
        .collect()
}

/// The group both sides are restricted to: `BENCH_GROUP`, `X25519` unless set; `None`
/// for `BENCH_GROUP=default` (each library's own choice).
pub fn group() -> Option<String> {
    match std::env::var("BENCH_GROUP") {
        Ok(g) if g == "default" => None,
        Ok(g) => Some(g),
        Err(_) => Some(DEFAULT_GROUP.to_string()),
    }
}

/// The cipher suite a configuration is restricted to; `Default` leaves the library's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    Default,
    Aes128,
    Aes256,
    Chacha,
}

impl Suite {
    pub const ALL: [Suite; 4] = [Suite::Default, Suite::Aes128, Suite::Aes256, Suite::Chacha];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The IANA name (also OpenSSL's for TLS 1.3).
    pub fn iana(self) -> Option<&'static str> {
        match self {
            Suite::Default => None,
            Suite::Aes128 => Some("TLS_AES_128_GCM_SHA256"),
            Suite::Aes256 => Some("TLS_AES_256_GCM_SHA384"),
            Suite::Chacha => Some("TLS_CHACHA20_POLY1305_SHA256"),
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Suite::Default => "default",
            Suite::Aes128 => "aes128",
            Suite::Aes256 => "aes256",
            Suite::Chacha => "chacha",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Suite::Default => "default suite",
            Suite::Aes128 => "AES-128-GCM",
            Suite::Aes256 => "AES-256-GCM",
            Suite::Chacha => "ChaCha20-Poly1305",
        }
    }

    fn rustls(self) -> Option<rustls::SupportedCipherSuite> {
        use rustls::crypto::aws_lc_rs::cipher_suite;
        match self {
            Suite::Default => None,
            Suite::Aes128 => Some(cipher_suite::TLS13_AES_128_GCM_SHA256),
            Suite::Aes256 => Some(cipher_suite::TLS13_AES_256_GCM_SHA384),
            Suite::Chacha => Some(cipher_suite::TLS13_CHACHA20_POLY1305_SHA256),
        }
    }
}

/// Suite names as both libraries print them, made comparable (rustls: `TLS13_...`).
pub fn normalize_suite(name: &str) -> String {
    name.replacen("TLS13_", "TLS_", 1)
}

fn restrict_ours(configuration: &mut SslConfiguration, suite: Suite) -> BenchResult<()> {
    if let Some(name) = suite.iana() {
        let cipher = SslCipher::from_name(name, SslProtocol::TlsV1_3)
            .ok_or_else(|| format!("no cipher {name}"))?;
        configuration.set_ciphers(vec![cipher]);
    }
    if let Some(group) = group() {
        let curve =
            SslEllipticCurve::from_short_name(&group).ok_or_else(|| format!("no group {group}"))?;
        configuration.set_elliptic_curves(vec![curve]);
    }
    Ok(())
}

/// Our server configuration: the certificate, TLS 1.3 only, the suite and group.
pub fn ours_server(pki: &Pki, suite: Suite) -> BenchResult<SslConfiguration> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate(SslCertificate::from_der(&pki.leaf)?)
        .set_private_key(SslKey::from_der(&pki.key)?)
        .set_protocol(SslProtocol::TlsV1_3)
        .set_system_ca_on_demand(false);
    restrict_ours(&mut configuration, suite)?;
    Ok(configuration)
}

/// Our client configuration, trusting the CA; `resume`: sessions shared between the
/// sockets of this configuration (Qt's default), else none stored.
pub fn ours_client(pki: &Pki, suite: Suite, resume: bool) -> BenchResult<SslConfiguration> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_ca_certificates(vec![SslCertificate::from_der(&pki.ca)?])
        .set_protocol(SslProtocol::TlsV1_3)
        .set_system_ca_on_demand(false)
        .set_ssl_option(SslOption::SslOptionDisableSessionSharing, !resume);
    restrict_ours(&mut configuration, suite)?;
    Ok(configuration)
}

fn rustls_provider(suite: Suite) -> BenchResult<Arc<rustls::crypto::CryptoProvider>> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(s) = suite.rustls() {
        provider.cipher_suites = vec![s];
    }
    if let Some(group) = group() {
        provider.kx_groups = rustls::crypto::aws_lc_rs::ALL_KX_GROUPS
            .iter()
            .filter(|g| format!("{:?}", g.name()) == group)
            .copied()
            .collect();
        if provider.kx_groups.is_empty() {
            return Err(format!("rustls: no group {group}").into());
        }
    }
    Ok(Arc::new(provider))
}

/// The raw rustls server configuration: same certificate, TLS 1.3, suite and group;
/// otherwise rustls's defaults (stateful TLS 1.3 tickets, two per handshake).
pub fn rustls_server(pki: &Pki, suite: Suite) -> BenchResult<Arc<ServerConfig>> {
    let provider = rustls_provider(suite)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = if query_peer() {
        // As ours by default: a certificate asked for, none required, no CA names sent.
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(pki.ca.clone()))?;
        builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .allow_unauthenticated()
                .clear_root_hint_subjects()
                .build()?,
        )
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(
        vec![CertificateDer::from(pki.leaf.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone())),
    )?;
    Ok(Arc::new(config))
}

/// The raw rustls client configuration; `resume`: rustls's default in-memory session
/// cache, else resumption disabled.
pub fn rustls_client(pki: &Pki, suite: Suite, resume: bool) -> BenchResult<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca.clone()))?;
    let mut config = ClientConfig::builder_with_provider(rustls_provider(suite)?)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

// ----- statistics ----------------------------------------------------------------------

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A smoke run: the binary was started without `--bench` (which `cargo bench` passes),
/// as `cargo test --benches` does, and not for one variant (`COMPARE_ONLY`): one short
/// round, to check that every variant works.
pub fn smoke() -> bool {
    // A child process has the parent's answer.
    if let Ok(inherited) = std::env::var(SMOKE_ENV) {
        return inherited == "1";
    }
    !std::env::args().skip(1).any(|a| a == "--bench")
        && std::env::var_os("COMPARE_ONLY").is_none()
        && std::env::var_os(ROLE_ENV).is_none()
}

/// How many rounds: `BENCH_RUNS`, else `default` (1 in a smoke run).
pub fn runs(default: usize) -> BenchResult<usize> {
    match std::env::var("BENCH_RUNS") {
        Ok(text) => match text.parse::<usize>()? {
            0 => Err("BENCH_RUNS: at least 1".into()),
            n => Ok(n),
        },
        Err(_) if smoke() => Ok(1),
        Err(_) => Ok(default),
    }
}

/// The multiplier of work sizes: `BENCH_SCALE`, else 1 (1/20 in a smoke run).
/// `BENCH_QUERY_PEER=1`: the raw servers ask for a client certificate and take a client
/// without one, as ours does by default (Qt's `AutoVerifyPeer` is `QueryPeer` for a
/// server); by default they ask for none, as each library does unless told.
pub fn query_peer() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    switch(&ON, "BENCH_QUERY_PEER")
}

/// How a `BENCH_QUERY_PEER=1` run labels itself.
pub const QUERY_PEER_LABEL: &str = "BENCH_QUERY_PEER=1: every server asks for a client certificate";

/// Whether the environment variable `name` is `1`, read once into `cell` (a switch is
/// asked per connection, and an environment read per handshake shows in the figures).
pub fn switch(cell: &'static OnceLock<bool>, name: &str) -> bool {
    *cell.get_or_init(|| std::env::var(name).is_ok_and(|v| v == "1"))
}

pub fn scale() -> f64 {
    std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(if smoke() { 0.05 } else { 1.0 })
}

/// Cores, load and TLS library, for the record.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!(
        "{cores} cores, load average {load} at start{}",
        if smoke() {
            " (smoke run: no --bench argument)"
        } else {
            ""
        }
    )
}

// ----- /proc ---------------------------------------------------------------------------

/// User + system time of a process (all threads), from `/proc/<pid>/stat`, in clock ticks
/// of 10 ms; `None` is this process.
pub fn cpu_time(pid: Option<u32>) -> BenchResult<Duration> {
    const TICKS_PER_SECOND: u64 = 100;
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path)?;
    // Fields after the command name, which is in parentheses: state is field 3, utime 14.
    let after_name = stat.rsplit_once(')').ok_or("stat: no command name")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> BenchResult<u64> {
        Ok(fields.get(index).ok_or("stat: too short")?.parse()?)
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 1000 / TICKS_PER_SECOND))
}

/// This process's resident set, KiB (`VmRSS` of `/proc/self/status`).
pub fn vm_rss_kib() -> BenchResult<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("VmRSS: no value")?
        .parse()?)
}

/// The soft limit on open files (`/proc/self/limits`).
pub fn open_files_limit() -> BenchResult<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .ok_or("no open-files limit")?;
    let soft = line
        .split_whitespace()
        .nth(3)
        .ok_or("open-files limit: no value")?;
    Ok(if soft == "unlimited" {
        u64::MAX
    } else {
        soft.parse()?
    })
}

/// Fails early when `needed` descriptors cannot be open at once (`ulimit -n`; the
/// `scripts/bench` script raises it to the hard limit).
pub fn require_open_files(needed: u64) -> BenchResult<()> {
    let limit = open_files_limit()?;
    if limit < needed {
        return Err(format!(
            "open-files limit {limit} < {needed}: raise it (ulimit -n {needed}) and run again"
        )
        .into());
    }
    Ok(())
}

// ----- child processes -----------------------------------------------------------------

/// A copy of this bench binary in another role, talking in lines on stdin/stdout.
pub struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Worker {
    /// Starts this binary with `ROLE_ENV=role`, the certificate and `env`.
    pub fn start(role: &str, pki: &Pki, env: &[(&str, &str)]) -> BenchResult<Worker> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env(ROLE_ENV, role)
            .env(PKI_ENV, pki.to_env())
            .env(SMOKE_ENV, if smoke() { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("worker: no stdout")?;
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Worker {
            child,
            stdin,
            lines,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line starting with `tag`, without it; other lines are passed on to our
    /// stdout.
    pub fn expect(&mut self, tag: &str, timeout: Duration) -> BenchResult<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("worker: no `{tag}` line within {timeout:?}"))?;
            match line.strip_prefix(tag) {
                Some(rest) => return Ok(rest.trim().to_string()),
                None => println!("{line}"),
            }
        }
    }

    /// The next line, `None` when its stdout ended.
    pub fn next_line(&mut self, timeout: Duration) -> BenchResult<Option<String>> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(Some(line)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(format!("worker: nothing within {timeout:?}").into())
            }
        }
    }

    pub fn send(&mut self, line: &str) -> BenchResult<()> {
        let stdin = self.stdin.as_mut().ok_or("worker: stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Closes its stdin (the signal to exit) and waits up to `timeout`, then kills it.
    pub fn finish(mut self, timeout: Duration) -> BenchResult<std::process::ExitStatus> {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err("worker: did not exit in time, killed".into());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Only when `finish` was not reached (an error on the way): never leave it behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// In a worker: the lines of stdin, in a thread; the channel ends at EOF (parent done).
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (sender, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// In a worker: one line on stdout, flushed.
pub fn say(line: &str) -> BenchResult<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}
