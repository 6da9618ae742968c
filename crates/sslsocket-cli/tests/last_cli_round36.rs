//! Round 36 (L5) review of the command line's newest changes: input files read on a thread
//! within `--timeout`, `printable_text` for received bytes, and `serve --echo` reporting an
//! echo cut by the client's close. Real peers on 127.0.0.1 only; every wait is bounded.

mod common;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::support::{os_args, Pki};
use common::{exit_code, report, run, Serve, TestResult, BIN};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore};

type BoxError = Box<dyn std::error::Error>;

const STEP: Duration = Duration::from_secs(10);

fn backends() -> Vec<&'static str> {
    let mut names = vec!["rustls"];
    if cfg!(feature = "openssl") {
        names.push("openssl");
    }
    names
}

fn scratch() -> Result<tempfile::TempDir, BoxError> {
    Ok(tempfile::Builder::new().prefix("rv36l5").tempdir()?)
}

/// A FIFO at `path` whose writer (a thread) opens it and writes `content` after `delay`.
fn slow_fifo(path: &Path, content: Vec<u8>, delay: Duration) -> Result<(), BoxError> {
    let status = Command::new("mkfifo").arg(path).status()?;
    assert!(status.success(), "mkfifo failed");
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        // Opening for writing blocks until the reader is there; bounded by the reader's
        // process, which the test kills at its own deadline.
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
            let _ = f.write_all(&content);
        }
    });
    Ok(())
}

/// A TCP server that accepts and then says nothing (the handshake never finishes).
fn silent_server() -> Result<(TcpListener, String), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?.to_string();
    Ok((listener, address))
}

// Was a defect (round 36): `cert HOST:PORT` does not keep `--timeout` as an overall limit after a slow
// input file: the files are read within `--timeout` (input::within) but then the
// connection gets the whole `--timeout` again (cert.rs `host`: `Deadline::after(plan.timeout)`
// with no `saturating_sub(started.elapsed())`, unlike connect.rs `main`). With a --cafile
// that takes 1.5 s to read and --timeout 2000, the command ends after ~3.5 s. Expected:
// done within --timeout (contract: "no input ... makes the tool hang past --timeout"),
// as `connect` does (see the Held test below).
#[test]
fn cert_host_keeps_the_overall_timeout_after_a_slow_cafile() -> TestResult {
    let pki = Pki::new()?;
    let dir = scratch()?;
    let fifo = dir.path().join("ca.fifo");
    slow_fifo(
        &fifo,
        std::fs::read(pki.root_pem())?,
        Duration::from_millis(1500),
    )?;
    let (_listener, address) = silent_server()?;
    let started = Instant::now();
    let out = run(&os_args![
        "cert",
        address,
        "--cafile",
        fifo,
        "--no-system-ca",
        "--timeout",
        "2000"
    ])?;
    let took = started.elapsed();
    assert_eq!(exit_code(&out), Some(3), "{out}");
    assert!(
        took < Duration::from_millis(2800),
        "cert HOST took {took:?} with --timeout 2000 (1.5 s of it reading --cafile):\n{out}"
    );
    Ok(())
}

// Held: `connect` subtracts the time a slow --cafile took from --timeout.
#[test]
fn connect_keeps_the_overall_timeout_after_a_slow_cafile() -> TestResult {
    let pki = Pki::new()?;
    let dir = scratch()?;
    let fifo = dir.path().join("ca.fifo");
    slow_fifo(
        &fifo,
        std::fs::read(pki.root_pem())?,
        Duration::from_millis(1500),
    )?;
    let (_listener, address) = silent_server()?;
    let started = Instant::now();
    let out = run(&os_args![
        "connect",
        address,
        "--cafile",
        fifo,
        "--no-system-ca",
        "--timeout",
        "2000",
        "--json"
    ])?;
    let took = started.elapsed();
    assert_eq!(exit_code(&out), Some(3), "{out}");
    assert!(took < Duration::from_millis(2800), "took {took:?}:\n{out}");
    Ok(())
}

fn serve_args(pki: &Pki, backend: &str, extra: &[&str]) -> Result<Vec<OsString>, BoxError> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut args = os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--backend",
        backend
    ];
    args.extend(extra.iter().map(OsString::from));
    Ok(args)
}

// Held: `connect --send` text output keeps UTF-8, tabs and CRLF line ends, escapes ESC and
// a lone CR; the JSON `received` is the raw text (not escaped twice), both backends.
#[test]
fn connect_send_text_is_readable_and_json_is_raw() -> TestResult {
    let pki = Pki::new()?;
    let sent = "h\u{e9}llo\tw\u{f6}rld\\r\\nline2 \u{1b}[2J x\\ry\\n";
    let raw = "h\u{e9}llo\tw\u{f6}rld\r\nline2 \u{1b}[2J x\ry\n";
    for backend in backends() {
        let serve = Serve::start(&serve_args(&pki, backend, &["--echo"])?)?;
        let base = os_args![
            "connect",
            serve.address.clone(),
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--peer-name",
            "localhost",
            "--send",
            sent,
            "--timeout",
            "1500"
        ];
        let out = run(&base)?;
        assert_eq!(exit_code(&out), Some(0), "{backend}: {out}");
        let expected = "h\u{e9}llo\tw\u{f6}rld\r\nline2 \\1B[2J x\\0Dy\n";
        assert!(
            out.stdout.contains(expected),
            "{backend}: text not kept readable:\n{:?}",
            out.stdout
        );
        assert!(!out.stdout.contains('\u{1b}'), "{backend}: raw ESC printed");
        let mut json = base.clone();
        json.push("--json".into());
        let out = run(&json)?;
        assert_eq!(exit_code(&out), Some(0), "{backend}: {out}");
        let value = report(&out)?;
        assert_eq!(value["received"], raw, "{backend}: {value}");
        assert_eq!(value["received_bytes"], raw.len(), "{backend}: {value}");
    }
    Ok(())
}

fn self_signed_bundle(count: usize) -> Result<String, BoxError> {
    let mut pem = String::new();
    for i in 0..count {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("Bundle CA {i}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        pem.push_str(&params.self_signed(&key)?.pem());
    }
    Ok(pem)
}

fn bash_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

// Held: valid inputs still work through the reading thread: a CA bundle of 300 + 1
// certificates given as `<(cat ca.pem)` (process substitution, /dev/fd/N), a server key
// encrypted with `--pass file:`, and `--keylog` to a regular file (mode 0600, written).
#[test]
fn valid_inputs_still_work_through_the_reading_thread() -> TestResult {
    let pki = Pki::new()?;
    let dir = scratch()?;
    let bundle = dir.path().join("bundle.pem");
    let mut text = self_signed_bundle(300)?;
    text.push_str(&std::fs::read_to_string(pki.root_pem())?);
    std::fs::write(&bundle, text)?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let encrypted = dir.path().join("key.enc.pem");
    let status = Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:s3cret",
            "-in",
        ])
        .arg(&leaf.key_pem)
        .arg("-out")
        .arg(&encrypted)
        .status()?;
    assert!(status.success(), "openssl pkcs8 failed");
    let pass = dir.path().join("pass.txt");
    std::fs::write(&pass, "s3cret\n")?;
    let mut pass_arg = OsString::from("file:");
    pass_arg.push(&pass);
    for backend in backends() {
        let serve = Serve::start(&os_args![
            "--cert",
            leaf.chain_pem.clone(),
            "--key",
            encrypted.clone(),
            "--pass",
            pass_arg.clone(),
            "--backend",
            backend
        ])?;
        let keylog: PathBuf = dir.path().join(format!("keys-{backend}.log"));
        let script = format!(
            "exec timeout 15 {} connect {} --cafile <(cat {}) --no-system-ca --peer-name localhost \
             --keylog {} --backend {} --timeout 5000 --json",
            bash_quote(Path::new(BIN)),
            serve.address,
            bash_quote(&bundle),
            bash_quote(&keylog),
            backend
        );
        let out = Command::new("bash").arg("-c").arg(&script).output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{backend}: {stdout}\n{stderr}");
        let value: serde_json::Value = serde_json::from_str(stdout.trim())?;
        assert_eq!(value["encrypted"], true, "{backend}: {value}");
        assert_eq!(
            common::error_names(&value),
            Vec::<String>::new(),
            "{backend}"
        );
        let log = std::fs::read_to_string(&keylog)?;
        assert!(
            log.lines().any(|l| l.starts_with("CLIENT_")),
            "{backend}: {log:?}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keylog)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{backend}");
    }
    Ok(())
}

fn client_config(pki: &Pki, tls13: bool) -> Result<Arc<ClientConfig>, BoxError> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(pki.root_der().to_vec()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let version = if tls13 {
        &tokio_rustls::rustls::version::TLS13
    } else {
        &tokio_rustls::rustls::version::TLS12
    };
    let builder =
        ClientConfig::builder_with_provider(provider).with_protocol_versions(&[version])?;
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// Sends `data`, reads its whole echo (without closing first), then closes cleanly.
/// Returns what came back.
fn echo_then_close(
    config: &Arc<ClientConfig>,
    address: &str,
    data: &[u8],
) -> Result<(Vec<u8>, std::net::SocketAddr), BoxError> {
    let mut tcp = TcpStream::connect(address)?;
    tcp.set_read_timeout(Some(Duration::from_millis(50)))?;
    tcp.set_write_timeout(Some(STEP))?;
    let local = tcp.local_addr()?;
    let mut conn = ClientConnection::new(Arc::clone(config), ServerName::try_from("localhost")?)?;
    let deadline = Instant::now() + STEP * 3;
    let mut rest = data;
    let mut got = Vec::new();
    while got.len() < data.len() {
        if Instant::now() > deadline {
            return Err(format!("echo stalled at {} of {}", got.len(), data.len()).into());
        }
        if !conn.is_handshaking() && !rest.is_empty() && !conn.wants_write() {
            let n = conn
                .writer()
                .write(rest.get(..rest.len().min(64 * 1024)).unwrap_or_default())?;
            rest = rest.get(n..).unwrap_or_default();
        }
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        match conn.read_tls(&mut tcp) {
            Ok(0) => return Err(format!("EOF at {} of {}", got.len(), data.len()).into()),
            Ok(_) => {
                let state = conn.process_new_packets()?;
                let mut buf = vec![0u8; state.plaintext_bytes_to_read()];
                let n = conn.reader().read(&mut buf).unwrap_or(0);
                got.extend_from_slice(buf.get(..n).unwrap_or_default());
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e.into()),
        }
    }
    conn.send_close_notify();
    while conn.wants_write() {
        conn.write_tls(&mut tcp)?;
    }
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    // Give the server its close_notify back; bounded.
    let end = Instant::now() + Duration::from_secs(2);
    let mut sink = [0u8; 4096];
    while Instant::now() < end {
        match tcp.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok((got, local))
}

// Held: `serve --echo` echoes everything to clients that read their echo before they
// close (1 byte to 1 MiB, TLS 1.2 and 1.3, both backends), and their line stays clean
// (no socket_error, error_string empty, received_bytes exact).
#[test]
fn echo_to_clients_that_do_not_half_close_stays_whole_and_clean() -> TestResult {
    let pki = Pki::new()?;
    for backend in backends() {
        let serve = Serve::start(&serve_args(&pki, backend, &["--echo"])?)?;
        let mut n = 0;
        for tls13 in [false, true] {
            let config = client_config(&pki, tls13)?;
            for size in [1usize, 16_384, 16_385, 1024 * 1024] {
                let data: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
                let (got, _) = echo_then_close(&config, &serve.address, &data)?;
                assert!(
                    got == data,
                    "{backend} tls13={tls13} {size}: echo differs ({} bytes)",
                    got.len()
                );
                let line = serve.connection_line(n)?;
                n += 1;
                assert_eq!(
                    line["event"], "encrypted",
                    "{backend} {tls13} {size}: {line}"
                );
                assert_eq!(
                    line["socket_error"],
                    serde_json::Value::Null,
                    "{backend} {tls13} {size}: {line}"
                );
                assert_eq!(line["error_string"], "", "{backend} {tls13} {size}: {line}");
                assert_eq!(
                    line["received_bytes"], size,
                    "{backend} {tls13} {size}: {line}"
                );
            }
        }
    }
    Ok(())
}
