//! Contract v2 through the real binary: `connect --showcerts/--keylog/-v` and the new JSON
//! fields and hints, `cert HOST:PORT`, `cert --verify`, `cert --check-expiry`, colour and
//! progress only on a terminal, `env:`/`file:` secrets, completions and the man page.
//! Peers are `openssl s_server` and our own `serve`; the PKI is made at test time.

mod common;

use std::ffi::OsString;
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::support::{os_args, OpensslServer, PeerProcess, Pki, RunOutput, SupportError};
use common::{
    error_names, exit_code, one_stderr_line, report, run, s_server, sha256_of, TestResult, BIN,
    RUN_TIMEOUT,
};
use serde_json::Value;
use sslsocket::SslCertificate;

/// The backends compiled in, each tested where behaviour is the backend's own.
#[cfg(feature = "openssl")]
const BACKENDS: [&str; 2] = ["rustls", "openssl"];
#[cfg(not(feature = "openssl"))]
const BACKENDS: [&str; 1] = ["rustls"];

fn run_with_env(args: &[OsString], vars: &[(&str, OsString)]) -> Result<RunOutput, SupportError> {
    let mut process = PeerProcess::spawn_with_env(BIN.as_ref(), args, vars)?;
    let out = process.wait(RUN_TIMEOUT)?;
    if out.timed_out {
        return Err(SupportError::new(format!("sslsocket timed out:\n{out}")));
    }
    Ok(out)
}

/// Runs `command` (a shell command line) under a pseudo-terminal (`script`), so that stdout
/// and stderr are terminals; returns what the terminal showed.
fn on_terminal(command: &str) -> Result<RunOutput, SupportError> {
    let mut process = PeerProcess::spawn("script", &os_args!["-qec", command, "/dev/null"])?;
    let out = process.wait(RUN_TIMEOUT)?;
    if out.timed_out {
        return Err(SupportError::new(format!("script timed out:\n{out}")));
    }
    Ok(out)
}

fn chain(r: &Value) -> Result<&Vec<Value>, Box<dyn std::error::Error>> {
    Ok(r["peer_certificate_chain"]
        .as_array()
        .ok_or("no peer_certificate_chain")?)
}

#[test]
fn connect_json_has_group_timing_days_left_public_key_and_pem() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let out = run(&os_args![
        "connect",
        format!("localhost:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--showcerts",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    // rustls offers the post-quantum hybrid first, and OpenSSL 3.5+ takes it; older
    // OpenSSL settles on X25519.
    let group = r["group"].as_str().ok_or("no group")?;
    assert!(["X25519MLKEM768", "X25519"].contains(&group), "{r}");
    let connect_ms = r["timing"]["connect_ms"].as_f64().ok_or("no connect_ms")?;
    let handshake_ms = r["timing"]["handshake_ms"]
        .as_f64()
        .ok_or("no handshake_ms")?;
    assert!(connect_ms >= 0.0 && handshake_ms > 0.0, "{r}");
    let entries = chain(&r)?;
    assert_eq!(entries.len(), 2, "{r}");
    // The leaf is valid for 30 days from now, the intermediate longer.
    let leaf_days = entries[0]["days_left"].as_i64().ok_or("no days_left")?;
    assert!((29..=30).contains(&leaf_days), "{r}");
    assert_eq!(entries[0]["public_key"], "EC P-256");
    // The PEM of each entry is that certificate.
    for (entry, der) in entries
        .iter()
        .zip([&leaf.cert_der, &pki.intermediate_der().to_vec()])
    {
        let pem = entry["pem"].as_str().ok_or("no pem")?;
        let parsed = SslCertificate::from_pem(pem.as_bytes())?;
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].sha256_hex(), sha256_of(der)?);
    }
    // Without --showcerts there is no pem field.
    let out = run(&os_args![
        "connect",
        format!("localhost:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--json"
    ])?;
    let r = report(&out)?;
    assert!(chain(&r)?[0].get("pem").is_none(), "{r}");

    let rsa = pki.rsa_leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&rsa.openssl_args())?;
    let out = run(&os_args![
        "connect",
        format!("localhost:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let key = chain(&report(&out)?)?[0]["public_key"].clone();
    assert!(key.as_str().is_some_and(|k| k.starts_with("RSA ")), "{key}");
    Ok(())
}

#[test]
fn hint_names_the_narrow_ignore_and_following_it_connects() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["localhost"], false)?;
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let target = format!("localhost:{}", server.port());
    let out = run(&os_args![
        "connect",
        &target,
        "--no-system-ca",
        "--showcerts",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(error_names(&r), vec!["SelfSignedCertificate"], "{r}");
    let hint = r["errors"][0]["hint"].as_str().ok_or("no hint")?;
    assert!(hint.contains("--ignore SelfSignedCertificate@"), "{hint}");
    assert!(!hint.contains("--ignore-all-errors"), "{hint}");

    // Doing what the hint says: the certificate saved from --showcerts, ignored by name.
    let saved = pki.dir.path().join("saved.pem");
    fs::write(&saved, chain(&r)?[0]["pem"].as_str().ok_or("no pem")?)?;
    let mut ignore = OsString::from("SelfSignedCertificate@");
    ignore.push(&saved);
    let out = run(&os_args![
        "connect",
        &target,
        "--no-system-ca",
        "--ignore",
        ignore,
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert_eq!(report(&out)?["encrypted"], true);

    // An unknown issuer: the hint points at --cafile.
    let server = s_server(&pki, &[])?;
    let out = run(&os_args![
        "connect",
        format!("localhost:{}", server.port()),
        "--no-system-ca",
        "--json"
    ])?;
    let r = report(&out)?;
    assert_eq!(
        error_names(&r),
        vec!["UnableToGetLocalIssuerCertificate"],
        "{r}"
    );
    let hint = r["errors"][0]["hint"].as_str().ok_or("no hint")?;
    assert!(hint.contains("--cafile"), "{hint}");
    Ok(())
}

#[test]
fn readable_report_shows_every_certificate_group_timing_and_hints() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &[])?;
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--peer-name",
        "wrong.example",
        "--ignore",
        "HostNameMismatch",
        "--showcerts"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let text = &out.stdout;
    for needle in [
        ": encrypted (",
        "protocol: TLS 1.3",
        "group: X25519",
        "alpn: none",
        "ocsp: not requested",
        "timing: connect ",
        "certificate chain (2):",
        "[0] CN=localhost",
        "[1] CN=Test Intermediate CA",
        "issuer: CN=Test Root CA",
        "days left)",
        "public key: EC P-256",
        "BEGIN CERTIFICATE",
        "HostNameMismatch",
        "hint: the certificate CN=localhost is not issued for the name",
    ] {
        assert!(text.contains(needle), "{needle}:\n{out}");
    }
    assert!(!text.contains("TlsV1_3"), "{out}");
    // Not a terminal: no colour, no progress line.
    assert!(
        !text.contains('\u{1b}') && !out.stderr.contains('\u{1b}'),
        "{out}"
    );
    Ok(())
}

#[test]
fn verbose_prints_each_event_with_its_time() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &[])?;
    let out = run(&os_args![
        "connect",
        format!("localhost:{}", server.port()),
        "--no-system-ca",
        "-v",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    // stdout keeps its one JSON object.
    assert_eq!(
        error_names(&report(&out)?),
        vec!["UnableToGetLocalIssuerCertificate"]
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    let timed = |line: &str| {
        line.strip_prefix('+')
            .and_then(|rest| rest.split_once("ms "))
            .is_some_and(|(ms, _)| ms.parse::<f64>().is_ok())
    };
    assert!(lines.iter().all(|l| timed(l)), "{out}");
    let events: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_once("ms ").map(|(_, e)| e))
        .collect();
    for expected in [
        "Connected",
        "ModeChanged SslClientMode",
        "PeerVerifyError UnableToGetLocalIssuerCertificate CN=Test Intermediate CA",
        "ErrorOccurred SslHandshakeFailedError",
        "Disconnected",
    ] {
        assert!(events.contains(&expected), "{expected}:\n{out}");
    }
    // Times never go backwards.
    let times: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix('+')?.split_once("ms ")?.0.parse().ok())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{out}");
    Ok(())
}

#[test]
fn keylog_file_is_private_and_matches_the_servers_secrets() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let pki = Pki::new()?;
    let lines = |path: &Path| -> Result<Vec<String>, std::io::Error> {
        let mut lines: Vec<String> = fs::read_to_string(path)?
            .lines()
            .filter(|l| l.contains("HANDSHAKE_TRAFFIC_SECRET"))
            .map(str::to_string)
            .collect();
        lines.sort();
        Ok(lines)
    };
    let mut server = None;
    for backend in BACKENDS {
        let theirs = pki.dir.path().join(format!("server-{backend}.keys"));
        let ours = pki.dir.path().join(format!("client-{backend}.keys"));
        let started = s_server(&pki, &["-keylogfile", theirs.to_str().ok_or("path")?])?;
        let out = run(&os_args![
            "connect",
            format!("localhost:{}", started.port()),
            "--backend",
            backend,
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--keylog",
            &ours,
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{out}");
        assert_eq!(fs::metadata(&ours)?.permissions().mode() & 0o777, 0o600);
        let client = lines(&ours)?;
        assert_eq!(client.len(), 2, "{backend}: {client:?}");
        // The same secrets, for the same client random, as the server wrote.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while lines(&theirs).map_or(true, |l| l.len() < 2) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(client, lines(&theirs)?, "{backend}");
        server = Some(started);
    }
    let server = server.ok_or("no backend")?;

    // A file that cannot be created is bad input.
    let out = run(&os_args![
        "connect",
        format!("localhost:{}", server.port()),
        "--keylog",
        pki.dir.path().join("no/such/dir/keys")
    ])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(one_stderr_line(&out), "{out}");
    Ok(())
}

#[test]
fn cert_host_shows_the_chain_and_exits_by_errors() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &[])?;
    let target = format!("127.0.0.1:{}", server.port());
    let out = run(&os_args![
        "cert",
        &target,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    let certs = r["certificates"].as_array().ok_or("no certificates")?;
    assert_eq!(certs.len(), 2, "{r}");
    assert_eq!(certs[0]["subject"], "CN=localhost");
    assert_eq!(certs[1]["subject"], "CN=Test Intermediate CA");
    assert_eq!(certs[0]["public_key"], "EC P-256");

    // Every error, as connect finds them, and exit 1.
    let out = run(&os_args![
        "cert",
        &target,
        "--no-system-ca",
        "--peer-name",
        "wrong.example",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    let mut names = error_names(&r);
    names.sort();
    assert_eq!(
        names,
        vec!["HostNameMismatch", "UnableToGetLocalIssuerCertificate"],
        "{r}"
    );
    assert!(r["errors"][0]["hint"].is_string(), "{r}");

    // The readable form prints the PEM that the hints tell to save.
    let out = run(&os_args!["cert", &target, "--no-system-ca"])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert!(out.stdout.contains("BEGIN CERTIFICATE"), "{out}");
    assert!(out.stdout.contains("hint: "), "{out}");

    // Nobody listening: a network failure.
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let out = run(&os_args!["cert", closed.to_string(), "--json"])?;
    assert_eq!(exit_code(&out), Some(3), "{out}");

    // A server that requires a client certificate refuses us: exit 1, and the report
    // says why, whether the refusal ends the handshake (TLS 1.2) or follows our side of
    // it (TLS 1.3, the server's alert after our Finished).
    for version in ["-tls1_2", "-tls1_3"] {
        let server = s_server(&pki, &["-Verify", "1", "-CAfile", root_str(&pki)?, version])?;
        let out = run(&os_args![
            "cert",
            format!("127.0.0.1:{}", server.port()),
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(1), "{version}: {out}");
        let r = report(&out)?;
        assert_eq!(r["errors"], serde_json::json!([]), "{version}: {r}");
        assert!(
            r["socket_error"].is_string(),
            "{version}: no reason given: {r}"
        );
        assert_ne!(r["error_string"], "", "{version}: {r}");
    }
    Ok(())
}

fn root_str(pki: &Pki) -> Result<&str, Box<dyn std::error::Error>> {
    Ok(pki
        .root_pem()
        .to_str()
        .ok_or("the root's path is not text")?)
}

#[test]
fn cert_verify_lists_the_errors_connect_finds() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let verify = |extra: &[&str]| -> Result<(Option<i32>, Value), Box<dyn std::error::Error>> {
        let mut args = os_args!["cert", "--verify", "--no-system-ca", "--json"];
        args.extend(extra.iter().map(OsString::from));
        args.push(leaf.chain_pem.clone().into());
        let out = run(&args)?;
        Ok((exit_code(&out), report(&out)?))
    };
    let root = pki.root_pem().to_str().ok_or("path")?;
    let (code, r) = verify(&["--cafile", root, "--host", "localhost"])?;
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["errors"], serde_json::json!([]));
    assert_eq!(r["certificates"].as_array().map(Vec::len), Some(2));
    // `--peer-name` (what the mismatch hint names) is `--host` here, not ignored.
    let (code, r) = verify(&["--cafile", root, "--peer-name", "other.example"])?;
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(error_names(&r), vec!["HostNameMismatch"], "{r}");
    let out = run(&os_args![
        "cert",
        "--verify",
        "--host",
        "a.example",
        "--peer-name",
        "b.example",
        &leaf.chain_pem
    ])?;
    assert_eq!(
        exit_code(&out),
        Some(2),
        "--host and --peer-name disagree: {out}"
    );

    // The same chain served by s_server, checked by connect: the same errors on the same
    // certificates.
    let server = OpensslServer::start(&leaf.openssl_args())?;
    for (cafile, name) in [
        (Some(root), "wrong.example"),
        (None, "localhost"),
        (None, "wrong.example"),
    ] {
        let mut extra = vec!["--host", name];
        let mut connect = os_args![
            "connect",
            format!("127.0.0.1:{}", server.port()),
            "--no-system-ca",
            "--peer-name",
            name,
            "--json"
        ];
        if let Some(ca) = cafile {
            extra.extend(["--cafile", ca]);
            connect.extend(os_args!["--cafile", ca]);
        }
        let (code, verified) = verify(&extra)?;
        assert_eq!(code, Some(1), "{verified}");
        let connected = report(&run(&connect)?)?;
        let placed = |r: &Value| -> Vec<(Value, Value)> {
            r["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| (e["error"].clone(), e["certificate"]["sha256"].clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert!(!placed(&verified).is_empty());
        assert_eq!(placed(&verified), placed(&connected), "{name}");
    }

    // Expired: on the leaf.
    let expired = pki.expired_leaf("localhost", &["localhost"])?;
    let out = run(&os_args![
        "cert",
        "--verify",
        "--no-system-ca",
        "--cafile",
        pki.root_pem(),
        "--json",
        expired.chain_pem
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(error_names(&r), vec!["CertificateExpired"], "{r}");
    assert_eq!(
        r["errors"][0]["certificate"]["sha256"],
        sha256_of(&expired.cert_der)?
    );

    // A file that is not a certificate is bad input.
    let out = run(&os_args![
        "cert",
        "--verify",
        pki.dir.path().join("missing.pem")
    ])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(one_stderr_line(&out), "{out}");
    Ok(())
}

#[test]
fn check_expiry_exit_codes_for_files_and_hosts() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let expired = pki.expired_leaf("localhost", &["localhost"])?;

    let out = run(&os_args!["cert", "--check-expiry", "7", &leaf.cert_pem])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    // The leaf has 30 days left: within 60.
    let out = run(&os_args![
        "cert",
        "--check-expiry",
        "60",
        &leaf.cert_pem,
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    let expiring = r["expiring"].as_array().ok_or("no expiring")?;
    assert_eq!(expiring.len(), 1, "{r}");
    assert_eq!(expiring[0]["sha256"], sha256_of(&leaf.cert_der)?);
    // An expired one among good ones is named.
    let out = run(&os_args![
        "cert",
        "--check-expiry",
        "0",
        &leaf.cert_pem,
        &expired.cert_pem
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert!(out.stdout.contains(" expired "), "{out}");
    assert_eq!(
        out.stdout.matches("CN=localhost expire").count(),
        1,
        "{out}"
    );

    // A host: the chain it sends.
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let target = format!("127.0.0.1:{}", server.port());
    let base = os_args![
        "cert",
        &target,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca"
    ];
    let mut args = base.clone();
    args.extend(os_args!["--check-expiry", "7"]);
    let out = run(&args)?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let mut args = base;
    args.extend(os_args!["--check-expiry", "60", "--json"]);
    let out = run(&args)?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert_eq!(report(&out)?["expiring"].as_array().map(Vec::len), Some(1));

    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let out = run(&os_args!["cert", closed.to_string(), "--check-expiry", "7"])?;
    assert_eq!(exit_code(&out), Some(3), "{out}");
    Ok(())
}

#[test]
fn colour_and_progress_appear_only_on_a_terminal() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &[])?;
    let command = format!(
        "{BIN} connect localhost:{} --cafile {} --no-system-ca",
        server.port(),
        pki.root_pem().display()
    );
    let out = on_terminal(&format!("env -u NO_COLOR {command}"))?;
    assert!(out.stdout.contains("encrypted"), "{out}");
    assert!(out.stdout.contains("\u{1b}["), "{out}");
    let out = on_terminal(&format!("env NO_COLOR=1 {command}"))?;
    assert!(out.stdout.contains("encrypted"), "{out}");
    assert!(!out.stdout.contains('\u{1b}'), "{out}");

    // A server that accepts and never answers: the handshake waits until --timeout, and
    // a terminal is told what it waits for; a pipe is not.
    let silent = TcpListener::bind("127.0.0.1:0")?;
    let address = silent.local_addr()?;
    let hold = std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(2).collect();
        std::thread::sleep(Duration::from_secs(3));
        drop(held);
    });
    let slow = format!("connect {address} --no-system-ca --timeout 2000");
    let out = on_terminal(&format!("env NO_COLOR=1 {BIN} {slow}"))?;
    assert!(out.stdout.contains("TLS handshake with"), "{out}");
    let mut args = vec![OsString::from("connect")];
    args.extend(os_args![
        address.to_string(),
        "--no-system-ca",
        "--timeout",
        "2000"
    ]);
    let out = run(&args)?;
    assert_eq!(exit_code(&out), Some(3), "{out}");
    assert!(!out.stderr.contains("TLS handshake with"), "{out}");
    let _ = hold.join();
    Ok(())
}

/// `key` encrypted with `secret` (PKCS#8, AES-256-CBC) by the openssl command, as `name`
/// in the PKI's directory.
fn encrypted_key(
    pki: &Pki,
    key: &Path,
    secret: &str,
    name: &str,
) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let encrypted = pki.dir.path().join(name);
    let made = std::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout"])
        .arg(format!("pass:{secret}"))
        .arg("-in")
        .arg(key)
        .arg("-out")
        .arg(&encrypted)
        .status()?;
    assert!(made.success());
    Ok(encrypted)
}

#[test]
fn secrets_come_from_environment_and_files_without_being_shown() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let secret = "s3cret-passphrase";
    let encrypted = encrypted_key(&pki, &leaf.key_pem, secret, "encrypted.pem")?;
    let pass_file = pki.dir.path().join("pass.txt");
    fs::write(&pass_file, format!("{secret}\n"))?;

    let serve_with = |pass: OsString, vars: &[(&str, OsString)]| {
        let args = os_args![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--once",
            "--cert",
            &leaf.chain_pem,
            "--key",
            &encrypted,
            "--pass",
            pass
        ];
        PeerProcess::spawn_with_env(BIN.as_ref(), &args, vars)
    };
    for (pass, vars) in [
        (
            OsString::from("env:SSLSOCKET_TEST_PASS"),
            vec![("SSLSOCKET_TEST_PASS", OsString::from(secret))],
        ),
        (
            {
                let mut p = OsString::from("file:");
                p.push(&pass_file);
                p
            },
            vec![],
        ),
    ] {
        let serve = serve_with(pass.clone(), &vars)?;
        serve.wait_for_output("\"event\":\"listening\"", Duration::from_secs(10))?;
        let first: Value = serde_json::from_str(serve.stdout().lines().next().unwrap_or_default())?;
        let address = first["address"].as_str().ok_or("no address")?.to_string();
        let out = run(&os_args![
            "connect",
            address,
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--peer-name",
            "localhost",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{pass:?}: {out}");
    }

    // A missing variable or file: exit 2, one line naming it, never the secret.
    for (pass, name) in [
        ("env:SSLSOCKET_TEST_UNSET", "SSLSOCKET_TEST_UNSET"),
        ("file:/nonexistent/pass.txt", "/nonexistent/pass.txt"),
    ] {
        let out = run_with_env(
            &os_args![
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--cert",
                &leaf.chain_pem,
                "--key",
                &encrypted,
                "--pass",
                pass
            ],
            &[],
        )?;
        assert_eq!(exit_code(&out), Some(2), "{out}");
        assert!(one_stderr_line(&out) && out.stderr.contains(name), "{out}");
        assert!(out.stdout.is_empty(), "{out}");
    }
    // The wrong passphrase from a variable is still a clear error, without the value.
    let out = run_with_env(
        &os_args![
            "connect",
            "127.0.0.1:9",
            "--cert",
            &leaf.chain_pem,
            "--key",
            &encrypted,
            "--pass",
            "env:SSLSOCKET_TEST_WRONG"
        ],
        &[("SSLSOCKET_TEST_WRONG", OsString::from("not-the-passphrase"))],
    )?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(!out.stderr.contains("not-the-passphrase"), "{out}");

    // --psk-key takes the same forms.
    let out = run(&os_args![
        "connect",
        "127.0.0.1:9",
        "--psk-identity",
        "id",
        "--psk-key",
        "env:SSLSOCKET_TEST_NO_KEY"
    ])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(
        out.stderr.contains("--psk-key env:SSLSOCKET_TEST_NO_KEY"),
        "{out}"
    );
    Ok(())
}

#[cfg(feature = "openssl")]
#[test]
fn psk_key_from_a_file_or_the_environment_connects() -> TestResult {
    const KEY: &str = "00112233445566778899aabbccddeeff";
    let server = OpensslServer::start(&os_args![
        "-nocert",
        "-psk",
        KEY,
        "-psk_identity",
        "id",
        "-quiet",
        "-tls1_2",
        "-cipher",
        "PSK-AES128-GCM-SHA256"
    ])?;
    let dir = tempfile::tempdir()?;
    let key_file = dir.path().join("psk.hex");
    fs::write(&key_file, format!("{KEY}\n"))?;
    let mut from_file = OsString::from("file:");
    from_file.push(&key_file);
    for key in [from_file, OsString::from("env:SSLSOCKET_TEST_PSK")] {
        let out = run_with_env(
            &os_args![
                "connect",
                format!("127.0.0.1:{}", server.port()),
                "--backend",
                "openssl",
                "--psk-identity",
                "id",
                "--psk-key",
                &key,
                "--timeout",
                "5000",
                "--json"
            ],
            &[("SSLSOCKET_TEST_PSK", OsString::from(KEY))],
        )?;
        assert_eq!(exit_code(&out), Some(0), "{key:?}: {out}");
        assert_eq!(report(&out)?["encrypted"], true);
    }
    Ok(())
}

#[test]
fn completions_and_man_page_come_from_the_clap_definitions() -> TestResult {
    let out = run(&os_args!["completions", "bash"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert!(out.stdout.contains("--showcerts") && out.stdout.contains("--check-expiry"));
    // The script is valid bash.
    let script = tempfile::NamedTempFile::new()?;
    fs::write(script.path(), &out.stdout)?;
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(script.path())
        .status()?;
    assert!(syntax.success());
    let out = run(&os_args!["completions", "zsh"])?;
    assert!(out.stdout.starts_with("#compdef sslsocket"), "{out}");
    let out = run(&os_args!["completions", "tcsh"])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");

    let out = run(&os_args!["man"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert!(
        out.stdout.starts_with(".ie") || out.stdout.contains(".TH sslsocket"),
        "{out}"
    );
    assert!(out.stdout.contains("completions"), "{out}");
    let out = run(&os_args!["man", "connect"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert!(out.stdout.contains(".TH sslsocket-connect"), "{out}");
    assert!(out.stdout.contains("\\-\\-keylog"), "{out}");
    let out = run(&os_args!["man", "nosuch"])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    Ok(())
}

#[test]
fn v2_fields_and_events_on_every_backend() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &[])?;
    for backend in BACKENDS {
        let out = run(&os_args![
            "connect",
            format!("localhost:{}", server.port()),
            "--backend",
            backend,
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--showcerts",
            "-v",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{backend}: {out}");
        let r = report(&out)?;
        assert_eq!(r["backend"], backend);
        assert!(r["group"].is_string(), "{backend}: {r}");
        assert!(r["timing"]["handshake_ms"].is_f64(), "{backend}: {r}");
        let entries = chain(&r)?;
        assert_eq!(entries.len(), 2, "{backend}: {r}");
        assert!(entries.iter().all(|e| e["pem"].is_string()
            && e["public_key"] == "EC P-256"
            && e["days_left"].is_i64()));
        assert!(out.stderr.contains("ms Encrypted"), "{backend}: {out}");
    }
    Ok(())
}

#[test]
fn a_reload_reads_the_key_with_the_same_resolved_passphrase() -> TestResult {
    // `--pass env:NAME` is resolved for the first load and for every SIGHUP reload (a
    // reload that took "env:NAME" literally as the passphrase failed to read the key).
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let secret = "reload-passphrase";
    let encrypted = encrypted_key(&pki, &leaf.key_pem, secret, "encrypted-reload.pem")?;
    let args = os_args![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--json",
        "--cert",
        &leaf.chain_pem,
        "--key",
        &encrypted,
        "--pass",
        "env:SSLSOCKET_TEST_RELOAD_PASS"
    ];
    let serve = PeerProcess::spawn_with_env(
        BIN.as_ref(),
        &args,
        &[("SSLSOCKET_TEST_RELOAD_PASS", OsString::from(secret))],
    )?;
    serve.wait_for_output("\"event\":\"listening\"", Duration::from_secs(10))?;
    let status = std::process::Command::new("kill")
        .args(["-HUP", &serve.id().to_string()])
        .status()?;
    assert!(status.success());
    serve.wait_for_output("\"event\":\"reload", Duration::from_secs(10))?;
    let stdout = serve.stdout();
    assert!(
        stdout.contains("{\"event\":\"reloaded\"}"),
        "{}",
        serve.output()
    );
    assert!(!stdout.contains(secret), "{}", serve.output());
    Ok(())
}
