//! Review 35 (second pass) of the command line: `serve --verify verify|query` with client
//! certificates from `openssl s_client -cert` (expired, serverAuth-only, untrusted,
//! self-signed, missing; TLS 1.2 and 1.3), internationalised names in `connect` and
//! `cert`, `--reconnect` with `--ocsp`, `--pin`, `--ignore` and STARTTLS, `serve --echo`
//! with half-closed clients, and the output forms and exit codes of each failure class.
//!
//! Real peers on 127.0.0.1 only (our `serve`, `openssl s_server`/`s_client`, raw rustls),
//! certificates made at test time, every wait bounded, every child killed on drop.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::support::{os_args, Eku, Issued, IssuedBy, LeafSpec, OpensslClient, Pki, Validity};
use common::{exit_code, one_stderr_line, report, run, Serve, TestResult, BIN};
use serde_json::Value;

type BoxError = Box<dyn std::error::Error>;

/// The backends this build has.
fn backends() -> Vec<&'static str> {
    let mut names = vec!["rustls"];
    if cfg!(feature = "openssl") {
        names.push("openssl");
    }
    names
}

fn port_of(address: &str) -> Result<u16, BoxError> {
    Ok(address.rsplit(':').next().ok_or("no port")?.parse()?)
}

/// The subjects of a report's `peer_certificate_chain`.
fn chain_subjects(line: &Value) -> Vec<String> {
    line["peer_certificate_chain"]
        .as_array()
        .map(|chain| {
            chain
                .iter()
                .filter_map(|c| c["subject"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `(error, certificate subject or "null")` of each entry of a report's `errors`.
fn error_pairs(line: &Value) -> BTreeSet<(String, String)> {
    line["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["error"].as_str().unwrap_or_default().to_string(),
                        e["certificate"]["subject"]
                            .as_str()
                            .unwrap_or("null")
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A client certificate: `eku`, `validity`, issued as `by`.
fn client_leaf(
    pki: &Pki,
    cn: &str,
    eku: Eku,
    validity: Validity,
    by: IssuedBy,
) -> Result<Issued, BoxError> {
    Ok(pki.issue(&LeafSpec {
        eku,
        validity,
        issued_by: by,
        ..LeafSpec::new(cn, &[])
    })?)
}

/// `serve --once --verify MODE --cafile root` with a leaf for localhost.
fn verifying_serve(
    pki: &Pki,
    server: &Issued,
    backend: &str,
    mode: &str,
) -> Result<Serve, BoxError> {
    Serve::start(&os_args![
        "--cert",
        &server.chain_pem,
        "--key",
        &server.key_pem,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--verify",
        mode,
        "--backend",
        backend,
        "--handshake-timeout",
        "8000"
    ])
}

/// `openssl s_client` with this client identity (`-cert`, `-key`, `-cert_chain`), sending
/// one line, then quitting at the end of its input (no `-quiet`, which implies
/// `-ign_eof`).
fn s_client_with(port: u16, identity: Option<&Issued>, protocol: &str) -> Result<(), BoxError> {
    let mut args: Vec<OsString> = os_args!["-servername", "localhost", protocol];
    if let Some(identity) = identity {
        args.extend(identity.openssl_args());
    }
    let _ = OpensslClient::run(port, &args, b"hello\n", Duration::from_secs(10))?;
    Ok(())
}

// Was a defect (round 35): `serve --verify verify --backend openssl` refusing a client certificate that
// chains to the trusted root but fails for another reason (expired, serverAuth only)
// reports `peer_certificate_chain` as the path OpenSSL built, with the trust anchor
// `CN=Test Root CA` that the client never sent (3 entries for leaf + intermediate sent).
// The contract: "peer_certificate_chain is the chain as the peer sent it, leaf first (not
// the verified path; the trust anchor only if the peer sent it)". The rustls backend and
// `--verify query` (same certificates) report the 2 sent certificates; the OpenSSL
// backend's refusal on the server side uses the built chain as the sent one
// (backend/openssl/verifier.rs:325 `sent_chain` returns None for a server, so line 433
// takes `sent = built`, and session.rs:436 `publish_sent_chain` never patches it,
// because OpenSSL stores no peer chain after a refusal). Expected: the certificates the client sent (X509_STORE_CTX_get0_untrusted
// holds them on the server side), on every backend, TLS 1.2 and 1.3.
#[test]
fn serve_refusing_a_client_certificate_reports_the_chain_the_client_sent() -> TestResult {
    let pki = Pki::new()?;
    let server = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let expired = client_leaf(
        &pki,
        "Expired Client",
        Eku::ClientOnly,
        Validity::Expired,
        IssuedBy::Intermediate,
    )?;
    let server_only = client_leaf(
        &pki,
        "Server Only Client",
        Eku::ServerOnly,
        Validity::Current,
        IssuedBy::Intermediate,
    )?;
    let sent = |cn: &str| vec![format!("CN={cn}"), "CN=Test Intermediate CA".to_string()];
    let mut failures = Vec::new();
    for backend in backends() {
        for protocol in ["-tls1_2", "-tls1_3"] {
            for (client, cn, error) in [
                (&expired, "Expired Client", "CertificateExpired"),
                (&server_only, "Server Only Client", "InvalidPurpose"),
            ] {
                let serve = verifying_serve(&pki, &server, backend, "verify")?;
                s_client_with(port_of(&serve.address)?, Some(client), protocol)?;
                let line = serve.connection_line(0)?;
                let what = format!("{backend} {protocol} {cn}");
                assert_eq!(line["event"], "failed", "{what}: {line}");
                assert!(
                    error_pairs(&line).contains(&(error.to_string(), format!("CN={cn}"))),
                    "{what}: {line}"
                );
                if chain_subjects(&line) != sent(cn) {
                    failures.push(format!(
                        "{what}: chain {:?}, sent {:?}",
                        chain_subjects(&line),
                        sent(cn)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

// Held: `serve --verify verify|query --cafile ROOT` against `openssl s_client -cert` with
// each kind of client certificate, TLS 1.2 and 1.3, both backends: `verify` refuses
// (`"event":"failed"`, `SslHandshakeFailedError`, `--once` exits 1) an expired
// (`CertificateExpired`), a serverAuth-only (`InvalidPurpose`), an untrusted lone leaf
// (`UnableToGetLocalIssuerCertificate` + `UnableToVerifyFirstCertificate`), a self-signed
// (`SelfSignedCertificate`) and a missing certificate (`NoPeerCertificate`, certificate
// null), and accepts a valid one with no error; `query` accepts all of them (exit 0),
// listing the same errors on the same certificates, and no error for a missing one.
#[test]
fn serve_verify_and_query_report_each_client_certificate_class() -> TestResult {
    let pki = Pki::new()?;
    let server = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let good = client_leaf(
        &pki,
        "Good Client",
        Eku::ClientOnly,
        Validity::Current,
        IssuedBy::Intermediate,
    )?;
    let expired = client_leaf(
        &pki,
        "Expired Client",
        Eku::ClientOnly,
        Validity::Expired,
        IssuedBy::Intermediate,
    )?;
    let server_only = client_leaf(
        &pki,
        "Server Only Client",
        Eku::ServerOnly,
        Validity::Current,
        IssuedBy::Intermediate,
    )?;
    let self_signed = client_leaf(
        &pki,
        "Self Client",
        Eku::ClientOnly,
        Validity::Current,
        IssuedBy::SelfSigned,
    )?;
    // A lone leaf of an unknown issuer (the untrusted root is not sent).
    let mut untrusted = client_leaf(
        &pki,
        "Untrusted Client",
        Eku::ClientOnly,
        Validity::Current,
        IssuedBy::UntrustedRoot,
    )?;
    untrusted.intermediates_pem = None;
    let pairs = |list: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        list.iter()
            .map(|(e, c)| (e.to_string(), c.to_string()))
            .collect()
    };
    type Case<'a> = (&'a str, Option<&'a Issued>, BTreeSet<(String, String)>);
    let cases: Vec<Case> = vec![
        ("good", Some(&good), pairs(&[])),
        (
            "expired",
            Some(&expired),
            pairs(&[("CertificateExpired", "CN=Expired Client")]),
        ),
        (
            "serverAuth only",
            Some(&server_only),
            pairs(&[("InvalidPurpose", "CN=Server Only Client")]),
        ),
        (
            "self-signed",
            Some(&self_signed),
            pairs(&[("SelfSignedCertificate", "CN=Self Client")]),
        ),
        (
            "untrusted",
            Some(&untrusted),
            pairs(&[
                ("UnableToGetLocalIssuerCertificate", "CN=Untrusted Client"),
                ("UnableToVerifyFirstCertificate", "CN=Untrusted Client"),
            ]),
        ),
        ("missing", None, pairs(&[("NoPeerCertificate", "null")])),
    ];
    for backend in backends() {
        for protocol in ["-tls1_2", "-tls1_3"] {
            for (what, client, errors) in &cases {
                for mode in ["verify", "query"] {
                    let mut serve = Serve::start(&os_args![
                        "--cert",
                        &server.chain_pem,
                        "--key",
                        &server.key_pem,
                        "--cafile",
                        pki.root_pem(),
                        "--no-system-ca",
                        "--verify",
                        mode,
                        "--backend",
                        backend,
                        "--once"
                    ])?;
                    s_client_with(port_of(&serve.address)?, *client, protocol)?;
                    let out = serve.process.wait(Duration::from_secs(10))?;
                    let ctx = format!("{backend} {protocol} {what} --verify {mode}");
                    assert!(!out.timed_out, "{ctx}: {out}");
                    let line: Value =
                        serde_json::from_str(out.stdout.lines().nth(1).ok_or("no line")?)?;
                    let refused = mode == "verify" && !errors.is_empty();
                    let expected: BTreeSet<(String, String)> =
                        if mode == "query" && *what == "missing" {
                            BTreeSet::new()
                        } else {
                            errors.clone()
                        };
                    assert_eq!(error_pairs(&line), expected, "{ctx}: {line}");
                    if refused {
                        assert_eq!(line["event"], "failed", "{ctx}: {line}");
                        assert_eq!(
                            line["socket_error"], "SslHandshakeFailedError",
                            "{ctx}: {line}"
                        );
                        assert_eq!(exit_code(&out), Some(1), "{ctx}: {out}");
                    } else {
                        assert_eq!(line["event"], "encrypted", "{ctx}: {line}");
                        assert_eq!(exit_code(&out), Some(0), "{ctx}: {out}");
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs the binary with `args` in `dir` (through `sh -c 'cd DIR && exec BIN ...'`).
fn run_in(
    dir: &std::path::Path,
    args: &[OsString],
) -> Result<common::support::RunOutput, BoxError> {
    let mut full = os_args!["-c", "cd \"$0\" && exec \"$@\"", dir, BIN];
    full.extend(args.iter().cloned());
    let mut process = common::support::PeerProcess::spawn("sh", &full)?;
    let out = process.wait(Duration::from_secs(15))?;
    if out.timed_out {
        return Err(format!("timed out: {out}").into());
    }
    Ok(out)
}

// Was a defect (round 35): `cert HOST:PORT` mangles option values that begin with `-`. It rebuilds a
// `connect` command line from its own options, putting each value in a separate argument
// (cert.rs `host`, lines 161-183: `argv.push("--cafile"); argv.push(file)`, then
// `Cli::try_parse_from`), and clap then reads a value like `-ca.pem` as an option: `cert 127.0.0.1:P --cafile=-ca.pem` (a CA
// file named `-ca.pem` in the current directory) fails with exit 2 and "error: cert:
// unexpected argument found", where `connect 127.0.0.1:P --cafile=-ca.pem` connects and
// verifies (exit 0). `--peer-name=-x.example` likewise gives that message instead of the
// host-name error `connect` gives. Expected: `cert` takes every value `connect` takes
// (pass `--cafile=VALUE` as one argument, or build the connect arguments without a second
// parse) and reports bad names with `connect`'s message.
#[test]
fn cert_host_takes_a_cafile_whose_name_starts_with_a_hyphen() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-quiet"]);
    let server = common::support::OpensslServer::start(&args)?;
    let dir = pki.dir.path();
    std::fs::copy(pki.root_pem(), dir.join("-ca.pem"))?;
    let target = format!("127.0.0.1:{}", server.port());
    let connect = run_in(
        dir,
        &os_args![
            "connect",
            &target,
            "--cafile=-ca.pem",
            "--no-system-ca",
            "--peer-name",
            "localhost",
            "--json"
        ],
    )?;
    assert_eq!(exit_code(&connect), Some(0), "connect: {connect}");
    let cert = run_in(
        dir,
        &os_args![
            "cert",
            &target,
            "--cafile=-ca.pem",
            "--no-system-ca",
            "--peer-name",
            "localhost",
            "--json"
        ],
    )?;
    assert_eq!(exit_code(&cert), Some(0), "cert: {cert}");
    Ok(())
}

// Held: internationalised names, both backends, `connect` and `cert HOST:PORT`, against a
// server whose certificate names `xn--bcher-kva.example`: the U-label form
// (`bücher.example`), upper case, the decomposed form (`bu\u{308}cher.example`, NFC by
// UTS 46) and the A-label itself verify (exit 0, no error); another Unicode name is a
// `HostNameMismatch` on the leaf (exit 1); names IDNA refuses (an empty label, a joiner
// out of context, a character UTS 46 disallows, a trailing hyphen) are bad input: exit 2,
// nothing on stdout, one `error: ... not a valid host name` line on stderr, no connection.
#[test]
fn internationalised_peer_names_in_connect_and_cert() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("xn--bcher-kva.example", &["xn--bcher-kva.example"])?;
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-quiet"]);
    let server = common::support::OpensslServer::start(&args)?;
    let target = format!("127.0.0.1:{}", server.port());
    for backend in backends() {
        for command in ["connect", "cert"] {
            let invoke = |name: &str| {
                run(&os_args![
                    command,
                    &target,
                    "--cafile",
                    pki.root_pem(),
                    "--no-system-ca",
                    "--backend",
                    backend,
                    "--timeout",
                    "8000",
                    "--json",
                    format!("--peer-name={name}")
                ])
            };
            for name in [
                "bücher.example",
                "BÜCHER.EXAMPLE",
                "bu\u{308}cher.example",
                "xn--bcher-kva.example",
                "XN--BCHER-KVA.example.",
            ] {
                let out = invoke(name)?;
                let ctx = format!("{backend} {command} {name}");
                assert_eq!(exit_code(&out), Some(0), "{ctx}: {out}");
                assert_eq!(
                    report(&out)?["errors"],
                    serde_json::json!([]),
                    "{ctx}: {out}"
                );
            }
            let out = invoke("büchers.example")?;
            assert_eq!(exit_code(&out), Some(1), "{backend} {command}: {out}");
            let r = report(&out)?;
            assert_eq!(
                error_pairs(&r),
                [(
                    "HostNameMismatch".to_string(),
                    "CN=xn--bcher-kva.example".to_string()
                )]
                .into_iter()
                .collect(),
                "{backend} {command}: {r}"
            );
            for refused in [
                "bücher..example",
                "a\u{200d}b.example",
                "\u{2488}.example",
                "bad-.example",
            ] {
                let out = invoke(refused)?;
                let ctx = format!("{backend} {command} {refused:?}");
                assert_eq!(exit_code(&out), Some(2), "{ctx}: {out}");
                assert!(out.stdout.is_empty(), "{ctx}: {out}");
                assert!(one_stderr_line(&out), "{ctx}: {out}");
                assert!(out.stderr.contains("not a valid host name"), "{ctx}: {out}");
            }
        }
    }
    Ok(())
}

/// `serve --json` with `--starttls PROTO` on `backend`, leaf for localhost.
fn starttls_serve(leaf: &Issued, backend: &str, protocol: &str) -> Result<Serve, BoxError> {
    Serve::start(&os_args![
        "--cert",
        &leaf.chain_pem,
        "--key",
        &leaf.key_pem,
        "--starttls",
        protocol,
        "--backend",
        backend
    ])
}

// Held: `connect --starttls PROTO --reconnect` with `--peer-name` of another name and
// `--ignore HostNameMismatch@LEAF`, `--ocsp --ignore OcspNoResponseFound` and a matching
// `--pin`: the second connection speaks the plain-text part again, resumes the session
// (TLS 1.2 and 1.3, both backends, smtp/imap/pop3), keeps the original errors listed
// (ignored, still reported), and the run exits 0; with a pin of another key both
// connections fail with `CertificateRejected` and the run exits 1.
#[test]
fn starttls_reconnect_with_ignore_ocsp_and_pin() -> TestResult {
    use base64::Engine as _;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let root = sslsocket::SslCertificate::from_der(pki.root_der())?;
    let other = sslsocket::SslCertificate::from_der(pki.untrusted_root_der())?;
    let pin_of = |c: &sslsocket::SslCertificate| {
        format!(
            "sha256/{}",
            base64::engine::general_purpose::STANDARD.encode(c.public_key_sha256())
        )
    };
    let leaf_arg = format!("HostNameMismatch@{}", leaf.cert_pem.display());
    for backend in backends() {
        for starttls in ["smtp", "imap", "pop3"] {
            let serve = starttls_serve(&leaf, backend, starttls)?;
            let target = serve.address.clone();
            for protocol in ["tls1.2", "tls1.3"] {
                let base = os_args![
                    "connect",
                    &target,
                    "--cafile",
                    pki.root_pem(),
                    "--no-system-ca",
                    "--starttls",
                    starttls,
                    "--protocol",
                    protocol,
                    "--backend",
                    backend,
                    "--reconnect",
                    "--timeout",
                    "8000",
                    "--json"
                ];
                let ctx = format!("{backend} {starttls} {protocol}");
                let cases: [(Vec<OsString>, Vec<&str>); 3] = [
                    (
                        os_args!["--peer-name", "wrong.example", "--ignore", &leaf_arg],
                        vec!["HostNameMismatch"],
                    ),
                    (
                        os_args![
                            "--peer-name",
                            "localhost",
                            "--ocsp",
                            "--ignore",
                            "OcspNoResponseFound"
                        ],
                        vec!["OcspNoResponseFound"],
                    ),
                    (
                        os_args!["--peer-name", "localhost", "--pin", pin_of(&root)],
                        vec![],
                    ),
                ];
                for (extra, errors) in cases {
                    let mut args = base.clone();
                    args.extend(extra.iter().cloned());
                    let out = run(&args)?;
                    assert_eq!(exit_code(&out), Some(0), "{ctx} {extra:?}: {out}");
                    let r = report(&out)?;
                    for (connection, resumed) in [(&r, false), (&r["reconnect"], true)] {
                        assert_eq!(connection["encrypted"], true, "{ctx} {extra:?}: {r}");
                        assert_eq!(
                            connection["session_resumed"], resumed,
                            "{ctx} {extra:?}: {r}"
                        );
                        assert_eq!(
                            common::error_names(connection),
                            errors,
                            "{ctx} {extra:?}: {r}"
                        );
                    }
                }
                let mut args = base.clone();
                args.extend(os_args![
                    "--peer-name",
                    "localhost",
                    "--pin",
                    pin_of(&other)
                ]);
                let out = run(&args)?;
                assert_eq!(exit_code(&out), Some(1), "{ctx} bad pin: {out}");
                let r = report(&out)?;
                for connection in [&r, &r["reconnect"]] {
                    assert_eq!(connection["encrypted"], false, "{ctx}: {r}");
                    assert_eq!(
                        common::error_names(connection),
                        ["CertificateRejected"],
                        "{ctx}: {r}"
                    );
                }
            }
        }
    }
    Ok(())
}

/// A plain TCP peer on 127.0.0.1 that answers each connection (at most `count`) as
/// `behave` says; the thread ends after `count` connections or 30 s.
fn fake_peer(
    count: usize,
    behave: fn(&mut TcpStream),
) -> Result<(u16, std::thread::JoinHandle<()>), BoxError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    listener.set_nonblocking(true)?;
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut served = 0;
        while served < count && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    behave(&mut stream);
                    served += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    Ok((port, handle))
}

fn read_some(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = stream.read(&mut buf);
}

/// The top-level keys of a JSON object, in the order printed.
fn key_order(line: &str) -> Vec<String> {
    // serde_json's Value sorts keys; read the order from the text.
    let mut keys = Vec::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    let mut current = String::new();
    let bytes: Vec<char> = line.chars().collect();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                if depth == 1 && bytes.get(i + 1) == Some(&':') {
                    keys.push(current.clone());
                }
            } else {
                current.push(c);
            }
        } else if c == '"' {
            in_string = true;
            current.clear();
        } else if c == '{' || c == '[' {
            depth += 1;
        } else if c == '}' || c == ']' {
            depth -= 1;
        }
        i += 1;
    }
    keys
}

// Held: each failure class of `connect`, both backends, both output forms: a peer that
// accepts and says nothing (`--timeout` passes: `SocketTimeoutError`, exit 3), one that
// closes during the handshake (`RemoteHostClosedError`, exit 3), one that answers in
// plain HTTP (`SslHandshakeFailedError`, exit 1), one that sends a fatal alert
// (`SslHandshakeFailedError`, exit 1). With `--json`: exactly one object on stdout, the
// contract's v1 keys in the contract's order, `encrypted` false, `errors` and the chain
// empty, `handshake_ms` null; nothing on stderr. Readable: the `error: NAME: ...` line on
// stdout, nothing on stderr.
#[test]
fn connect_failure_classes_have_their_exit_codes_and_output_forms() -> TestResult {
    type Behave = fn(&mut TcpStream);
    let silent: Behave = |s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(4)));
        read_some(s);
        read_some(s);
    };
    let close: Behave = |s| read_some(s);
    let http: Behave = |s| {
        read_some(s);
        let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        std::thread::sleep(Duration::from_millis(300));
    };
    let alert: Behave = |s| {
        read_some(s);
        let _ = s.write_all(&[0x15, 3, 3, 0, 2, 2, 40]);
        std::thread::sleep(Duration::from_millis(300));
    };
    let v1_order = [
        "encrypted",
        "mode",
        "backend",
        "protocol",
        "cipher",
        "alpn",
        "errors",
        "peer_certificate_chain",
        "ocsp",
        "session_resumed",
        "received",
        "socket_error",
        "error_string",
    ];
    let pki = Pki::new()?;
    for backend in backends() {
        for (what, behave, socket_error, code) in [
            ("silent", silent, "SocketTimeoutError", 3),
            ("closes", close, "RemoteHostClosedError", 3),
            ("plain HTTP", http, "SslHandshakeFailedError", 1),
            ("fatal alert", alert, "SslHandshakeFailedError", 1),
        ] {
            let (port, peer) = fake_peer(2, behave)?;
            let base = os_args![
                "connect",
                format!("127.0.0.1:{port}"),
                "--cafile",
                pki.root_pem(),
                "--no-system-ca",
                "--backend",
                backend,
                "--timeout",
                "1500"
            ];
            let ctx = format!("{backend} {what}");
            let mut json_args = base.clone();
            json_args.push("--json".into());
            let out = run(&json_args)?;
            assert_eq!(exit_code(&out), Some(code), "{ctx}: {out}");
            assert!(out.stderr.is_empty(), "{ctx}: {out}");
            let r = report(&out)?;
            assert_eq!(r["encrypted"], false, "{ctx}: {r}");
            assert_eq!(r["socket_error"], socket_error, "{ctx}: {r}");
            assert_eq!(r["errors"], serde_json::json!([]), "{ctx}: {r}");
            assert_eq!(
                r["peer_certificate_chain"],
                serde_json::json!([]),
                "{ctx}: {r}"
            );
            assert!(r["timing"]["handshake_ms"].is_null(), "{ctx}: {r}");
            assert!(
                !r["error_string"].as_str().unwrap_or_default().is_empty(),
                "{ctx}: {r}"
            );
            let keys = key_order(out.stdout.trim());
            let v1: Vec<&str> = keys
                .iter()
                .map(String::as_str)
                .filter(|k| v1_order.contains(k))
                .collect();
            assert_eq!(v1, v1_order, "{ctx}: {keys:?}");
            let out = run(&base)?;
            assert_eq!(exit_code(&out), Some(code), "{ctx} readable: {out}");
            assert!(out.stderr.is_empty(), "{ctx} readable: {out}");
            assert!(
                out.stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("error: {socket_error}: "))),
                "{ctx} readable: {out}"
            );
            let _ = peer.join();
        }
    }
    Ok(())
}
