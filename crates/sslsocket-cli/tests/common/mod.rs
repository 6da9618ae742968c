//! What the command line's integration tests share: the library's test support (a PKI
//! made at test time, OpenSSL peers; included by path), running the binary with a time
//! limit, reading its JSON, and our own `serve` as a peer.
//!
//! Every child process is killed on drop and every wait has a deadline.
// Each test binary uses a different part.
#![allow(dead_code)]

#[path = "../../../sslsocket/tests/support/mod.rs"]
pub mod support;

use std::ffi::OsString;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sslsocket::SslCertificate;
use support::{os_args, OpensslServer, PeerProcess, Pki, RunOutput, SupportError};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const BIN: &str = env!("CARGO_BIN_EXE_sslsocket");
pub const RUN_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the binary to completion (killed after [`RUN_TIMEOUT`]).
pub fn run(args: &[OsString]) -> Result<RunOutput, SupportError> {
    let mut process = PeerProcess::spawn(BIN, args)?;
    let out = process.wait(RUN_TIMEOUT)?;
    if out.timed_out {
        return Err(SupportError::new(format!("sslsocket timed out:\n{out}")));
    }
    Ok(out)
}

pub fn exit_code(out: &RunOutput) -> Option<i32> {
    out.status.code()
}

/// The one JSON value (object or array) the command prints on one line.
pub fn report(out: &RunOutput) -> Result<Value, Box<dyn std::error::Error>> {
    let lines: Vec<&str> = out.stdout.lines().collect();
    if lines.len() != 1 {
        return Err(format!("expected one JSON line:\n{out}").into());
    }
    let line = lines.first().copied().unwrap_or_default();
    Ok(serde_json::from_str(line).map_err(|e| format!("{e}:\n{out}"))?)
}

pub fn sha256_of(der: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    Ok(SslCertificate::from_der(der)?.sha256_hex())
}

pub fn error_names(report: &Value) -> Vec<String> {
    report["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["error"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Exactly one line on stderr, starting with `error: `.
pub fn one_stderr_line(out: &RunOutput) -> bool {
    let lines: Vec<&str> = out.stderr.lines().collect();
    lines.len() == 1 && lines.first().is_some_and(|l| l.starts_with("error: "))
}

/// `openssl s_server` with a leaf for localhost/127.0.0.1 under the intermediate.
pub fn s_server(pki: &Pki, extra: &[&str]) -> Result<OpensslServer, Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut args = leaf.openssl_args();
    args.extend(extra.iter().map(OsString::from));
    Ok(OpensslServer::start(&args)?)
}

/// Our `serve --json`, with its listening address read from the first line.
pub struct Serve {
    pub process: PeerProcess,
    pub address: String,
}

impl Serve {
    pub fn start(args: &[OsString]) -> Result<Serve, Box<dyn std::error::Error>> {
        let mut full = os_args!["serve", "--listen", "127.0.0.1:0", "--json"];
        full.extend(args.iter().cloned());
        let process = PeerProcess::spawn(BIN, &full)?;
        process.wait_for_output("\"event\":\"listening\"", Duration::from_secs(10))?;
        let stdout = process.stdout();
        let first: Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())?;
        assert_eq!(first["event"], "listening");
        let address = first["address"]
            .as_str()
            .ok_or("no address in the listening line")?
            .to_string();
        assert!(address.starts_with("127.0.0.1:"), "{address}");
        Ok(Serve { process, address })
    }

    /// The n-th per-connection line (0-based), waiting for it.
    pub fn connection_line(&self, n: usize) -> Result<Value, Box<dyn std::error::Error>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stdout = self.process.stdout();
            if let Some(line) = stdout.lines().filter(|l| l.ends_with('}')).nth(n + 1) {
                return Ok(serde_json::from_str(line)?);
            }
            if Instant::now() > deadline {
                return Err(format!("no connection line {n}:\n{}", self.process.output()).into());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}
