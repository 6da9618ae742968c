//! `serve --sni`, `serve --write-cert` and SIGHUP reload, through the real binary against
//! `openssl s_client -servername` and our own `connect`.

mod common;

use std::ffi::OsString;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::support::{os_args, Issued, OpensslClient, Pki};
use common::{exit_code, report, run, Serve, TestResult};
use serde_json::Value;
use sslsocket::SslCertificate;

const WAIT: Duration = Duration::from_secs(15);

fn port_of(serve: &Serve) -> Result<u16, Box<dyn std::error::Error>> {
    Ok(serve.address.rsplit(':').next().ok_or("no port")?.parse()?)
}

/// `connect --json` to our server, verifying for `name` (sent as SNI).
fn connect_as(
    port: u16,
    pki: &Pki,
    name: Option<&str>,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut args = os_args![
        "connect",
        format!("127.0.0.1:{port}"),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--json"
    ];
    if let Some(name) = name {
        args.extend(os_args!["--peer-name", name]);
    }
    let out = run(&args)?;
    let value = report(&out)?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    Ok(value)
}

fn leaf_sha256(value: &Value) -> String {
    value["peer_certificate_chain"][0]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn sha256(issued: &Issued) -> Result<String, Box<dyn std::error::Error>> {
    common::sha256_of(&issued.cert_der)
}

/// The JSON lines of `serve` that report a connection, waiting for at least `n`.
fn connection_lines(serve: &Serve, n: usize) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines: Vec<Value> = serve
            .process
            .stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("peer").is_some())
            .collect();
        if lines.len() >= n {
            return Ok(lines);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "fewer than {n} connection lines:\n{}",
                serve.process.output()
            )
            .into());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn sni_arg(name: &str, issued: &Issued) -> OsString {
    let mut arg = OsString::from(format!("{name}="));
    arg.push(&issued.chain_pem);
    arg.push(",");
    arg.push(&issued.key_pem);
    arg
}

#[test]
fn serve_sni_picks_the_certificate_and_reports_the_name() -> TestResult {
    let pki = Pki::new()?;
    let default = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let api = pki.leaf("api.example.com", &["api.example.com"])?;
    let wildcard = pki.wildcard_leaf("*.example.com")?;
    let mut args = os_args![
        "--cert",
        &default.chain_pem,
        "--key",
        &default.key_pem,
        "--sni"
    ];
    args.push(sni_arg("api.example.com", &api));
    args.push(OsString::from("--sni"));
    args.push(sni_arg("*.example.com", &wildcard));
    let serve = Serve::start(&args)?;
    let port = port_of(&serve)?;

    // openssl s_client -servername.
    let out = OpensslClient::run(
        port,
        &os_args!["-servername", "api.example.com", "-CAfile", pki.root_pem()],
        b"",
        WAIT,
    )?;
    let subject = out
        .stdout
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_default()
        .to_string();
    assert!(subject.contains("api.example.com"), "{out}");
    assert!(out.stdout.contains("Verify return code: 0 (ok)"), "{out}");
    let lines = connection_lines(&serve, 1)?;
    assert_eq!(lines[0]["sni"], "api.example.com", "{}", lines[0]);

    // Our own client: the wildcard, and no name at all.
    let r = connect_as(port, &pki, Some("www.example.com"))?;
    assert_eq!(leaf_sha256(&r), sha256(&wildcard)?);
    let r = connect_as(port, &pki, None)?;
    assert_eq!(leaf_sha256(&r), sha256(&default)?);
    let lines = connection_lines(&serve, 3)?;
    let names: Vec<&Value> = lines.iter().map(|l| &l["sni"]).collect();
    assert_eq!(names[1], "www.example.com");
    assert_eq!(*names[2], Value::Null, "an IP address is not sent as SNI");
    Ok(())
}

/// A name sent in mixed case picks the same certificate and is reported lowercased, the
/// same on both backends (DNS names compare without case).
#[test]
fn serve_reports_a_mixed_case_sni_lowercased_on_every_backend() -> TestResult {
    let pki = Pki::new()?;
    let default = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let api = pki.leaf("api.example.com", &["api.example.com"])?;
    for backend in sslsocket::backend::available_backends() {
        let mut args = os_args![
            "--cert",
            &default.chain_pem,
            "--key",
            &default.key_pem,
            "--backend",
            &backend,
            "--sni"
        ];
        args.push(sni_arg("api.example.com", &api));
        let serve = Serve::start(&args)?;
        let port = port_of(&serve)?;
        let out = OpensslClient::run(
            port,
            &os_args!["-servername", "API.Example.COM", "-CAfile", pki.root_pem()],
            b"",
            WAIT,
        )?;
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("subject=") && l.contains("api.example.com")),
            "{backend}: {out}"
        );
        let lines = connection_lines(&serve, 1)?;
        assert_eq!(
            lines[0]["sni"], "api.example.com",
            "{backend}: {}",
            lines[0]
        );
    }
    Ok(())
}

#[test]
fn serve_refuses_a_malformed_sni_option_before_listening() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    for bad in [
        OsString::from("api.example.com"),
        OsString::from("api.example.com=only-a-cert.pem"),
        sni_arg("*.*.example.com", &leaf),
    ] {
        let out = run(&os_args!["serve", "--listen", "127.0.0.1:0", "--sni", bad])?;
        assert_eq!(exit_code(&out), Some(2), "{out}");
        assert!(out.stderr.contains("--sni"), "{out}");
    }
    // A key that does not belong to the certificate.
    let other = pki.leaf("other", &["other"])?;
    let mut mismatched = OsString::from("a.example.com=");
    mismatched.push(&leaf.chain_pem);
    mismatched.push(",");
    mismatched.push(&other.key_pem);
    let out = run(&os_args![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--sni",
        mismatched
    ])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    Ok(())
}

#[test]
fn serve_write_cert_writes_the_certificate_in_use() -> TestResult {
    let pki = Pki::new()?;
    let dir = tempfile::tempdir()?;

    // Generated: a client trusting the written file verifies the server.
    let written = dir.path().join("generated.pem");
    let serve = Serve::start(&os_args!["--write-cert", &written])?;
    let port = port_of(&serve)?;
    let out = run(&os_args![
        "connect",
        format!("localhost:{port}"),
        "--cafile",
        &written,
        "--no-system-ca",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let certificate = SslCertificate::from_file(&written)?;
    assert_eq!(certificate.len(), 1);
    assert_eq!(leaf_sha256(&report(&out)?), certificate[0].sha256_hex());
    drop(serve);

    // Loaded: the file holds the --cert leaf.
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let written = dir.path().join("loaded.pem");
    let _serve = Serve::start(&os_args![
        "--cert",
        &leaf.chain_pem,
        "--key",
        &leaf.key_pem,
        "--write-cert",
        &written
    ])?;
    let certificate = SslCertificate::from_file(&written)?;
    assert_eq!(
        certificate.first().map(|c| c.der().to_vec()),
        Some(leaf.cert_der.clone())
    );
    Ok(())
}

fn install(issued: &Issued, cert: &Path, key: &Path) -> TestResult {
    std::fs::copy(&issued.chain_pem, cert)?;
    std::fs::copy(&issued.key_pem, key)?;
    Ok(())
}

fn hangup(serve: &Serve) -> TestResult {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &serve.process.id().to_string()])
        .status()?;
    assert!(status.success());
    Ok(())
}

/// Waits for the `count`-th line with `"event":event`.
fn wait_for_event(
    serve: &Serve,
    event: &str,
    count: usize,
) -> Result<Value, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found: Vec<Value> = serve
            .process
            .stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect();
        if let Some(line) = found.get(count - 1) {
            return Ok(line.clone());
        }
        if Instant::now() > deadline {
            return Err(format!("no {event} line:\n{}", serve.process.output()).into());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sighup_reloads_every_file_and_a_failed_reload_keeps_serving() -> TestResult {
    let pki = Pki::new()?;
    let first = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let second = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let api_first = pki.leaf("api.example.com", &["api.example.com"])?;
    let api_second = pki.leaf("api.example.com", &["api.example.com"])?;
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (api_cert, api_key) = (dir.path().join("api.pem"), dir.path().join("api.key"));
    install(&first, &cert, &key)?;
    install(&api_first, &api_cert, &api_key)?;
    let mut sni = OsString::from("api.example.com=");
    sni.push(&api_cert);
    sni.push(",");
    sni.push(&api_key);
    let serve = Serve::start(&os_args!["--cert", &cert, "--key", &key, "--sni", sni])?;
    let port = port_of(&serve)?;
    assert_eq!(
        leaf_sha256(&connect_as(port, &pki, Some("localhost"))?),
        sha256(&first)?
    );
    assert_eq!(
        leaf_sha256(&connect_as(port, &pki, Some("api.example.com"))?),
        sha256(&api_first)?
    );

    install(&second, &cert, &key)?;
    install(&api_second, &api_cert, &api_key)?;
    hangup(&serve)?;
    wait_for_event(&serve, "reloaded", 1)?;
    assert_eq!(
        leaf_sha256(&connect_as(port, &pki, Some("localhost"))?),
        sha256(&second)?
    );
    assert_eq!(
        leaf_sha256(&connect_as(port, &pki, Some("api.example.com"))?),
        sha256(&api_second)?
    );

    // A key that does not match: refused, and the server keeps what it had.
    std::fs::copy(&first.key_pem, &key)?;
    hangup(&serve)?;
    let failed = wait_for_event(&serve, "reload_failed", 1)?;
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    assert_eq!(
        leaf_sha256(&connect_as(port, &pki, Some("localhost"))?),
        sha256(&second)?
    );

    // A missing file too.
    std::fs::remove_file(&api_key)?;
    hangup(&serve)?;
    wait_for_event(&serve, "reload_failed", 2)?;
    assert_eq!(
        leaf_sha256(&connect_as(port, &pki, Some("api.example.com"))?),
        sha256(&api_second)?
    );
    Ok(())
}

/// `--sni`'s files are operating-system paths, as every FILE argument: names that are not
/// UTF-8 open as given (the server name itself is text).
#[cfg(unix)]
#[test]
fn serve_sni_opens_files_whose_names_are_not_utf8() -> TestResult {
    use std::os::unix::ffi::OsStringExt;
    let pki = Pki::new()?;
    let default = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let api = pki.leaf("api.example.com", &["api.example.com"])?;
    let cert = pki
        .dir
        .path()
        .join(OsString::from_vec(b"c\xff.pem".to_vec()));
    let key = pki
        .dir
        .path()
        .join(OsString::from_vec(b"k\xfe.key".to_vec()));
    std::fs::copy(&api.chain_pem, &cert)?;
    std::fs::copy(&api.key_pem, &key)?;
    let mut sni = OsString::from("api.example.com=");
    sni.push(&cert);
    sni.push(",");
    sni.push(&key);
    let serve = Serve::start(&os_args![
        "--cert",
        &default.chain_pem,
        "--key",
        &default.key_pem,
        "--sni",
        sni
    ])?;
    let r = connect_as(port_of(&serve)?, &pki, Some("api.example.com"))?;
    assert_eq!(leaf_sha256(&r), sha256(&api)?);
    Ok(())
}
