//! The `sslsocket` binary against real peers on 127.0.0.1: `openssl s_server`/`s_client`,
//! our own `serve`, and small hand-made peers (plain TCP, a truncating TLS server). The
//! PKI is made at test time (the library's test support, shared by path).
//!
//! Every child process is killed on drop and every wait has a deadline.

mod common;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use common::support::{free_port, os_args, OpensslClient, OpensslServer, Pki};
use common::{
    error_names, exit_code, one_stderr_line, report, run, s_server, sha256_of, Serve, TestResult,
};
use serde_json::Value;
use sslsocket::blocking::SslServer;
use sslsocket::prelude::*;
use sslsocket::{SslCertificate, SslConfiguration, SslKey};

/// The kind the library reported for a chain that should give exactly `kind`.
///
/// Until the verification collector lands in the library, its interim verifier reports
/// `UnspecifiedError` for every chain webpki rejects; that stand-in (alone) is accepted,
/// anything else must be the contract's `kind`.
fn reported_kind(report: &Value, kind: &str) -> String {
    let names = error_names(report);
    assert_eq!(names, vec![kind.to_string()], "{report}");
    kind.to_string()
}

#[test]
fn verified_chain_against_s_server() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let target = format!("localhost:{}", server.port());
    let out = run(&os_args![
        "connect",
        target,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["encrypted"], true);
    assert_eq!(r["mode"], "SslClientMode");
    assert_eq!(r["backend"], "rustls");
    assert_eq!(r["protocol"], "TlsV1_3");
    assert_eq!(r["cipher"]["protocol"], "TlsV1_3");
    assert_eq!(r["errors"], serde_json::json!([]));
    assert_eq!(r["socket_error"], Value::Null);
    assert_eq!(r["error_string"], "");
    assert_eq!(r["session_resumed"], false);
    assert_eq!(r["ocsp"], serde_json::json!([]));
    let chain = r["peer_certificate_chain"].as_array().ok_or("no chain")?;
    assert_eq!(chain.len(), 2, "{r}");
    let (first, second) = (&chain[0], &chain[1]);
    assert_eq!(first["subject"], "CN=localhost");
    assert_eq!(first["issuer"], "CN=Test Intermediate CA");
    assert_eq!(first["sha256"], sha256_of(&leaf.cert_der)?);
    assert_eq!(first["self_signed"], false);
    assert_eq!(
        first["san"],
        serde_json::json!(["DNS:localhost", "IP:127.0.0.1"])
    );
    let not_after = first["not_after"].as_str().unwrap_or_default();
    assert!(
        not_after.len() == 20 && not_after.ends_with('Z'),
        "{not_after}"
    );
    assert_eq!(second["subject"], "CN=Test Intermediate CA");
    assert_eq!(second["issuer"], "CN=Test Root CA");
    assert_eq!(second["sha256"], sha256_of(pki.intermediate_der())?);

    // The readable report names the same things.
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert!(out.stdout.contains("protocol: TLS 1.3"), "{out}");
    assert!(out.stdout.contains("CN=localhost"), "{out}");
    assert!(out.stdout.contains("verification: no errors"), "{out}");
    Ok(())
}

#[test]
fn wrong_host_name_fails_and_can_be_ignored() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let target = format!("127.0.0.1:{}", server.port());
    let base = os_args![
        "connect",
        target,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--peer-name",
        "wrong.example",
        "--json"
    ];
    let leaf_sha = sha256_of(&leaf.cert_der)?;

    let out = run(&base)?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(r["encrypted"], false);
    assert_eq!(r["socket_error"], "SslHandshakeFailedError");
    let kind = reported_kind(&r, "HostNameMismatch");
    assert_eq!(r["errors"][0]["certificate"]["sha256"], leaf_sha);
    assert_eq!(r["errors"][0]["certificate"]["subject"], "CN=localhost");
    assert_eq!(r["peer_certificate_chain"][0]["sha256"], leaf_sha);

    for ignore in [
        OsString::from(&kind),
        OsString::from(format!("{kind}@{}", leaf.cert_pem.display())),
    ] {
        let mut args = base.clone();
        args.extend(os_args!["--ignore", ignore]);
        let out = run(&args)?;
        assert_eq!(exit_code(&out), Some(0), "{out}");
        let r = report(&out)?;
        assert_eq!(r["encrypted"], true);
        assert_eq!(error_names(&r), vec![kind.clone()], "still listed");
    }

    // Ignoring another error, or this one for another certificate, does not help.
    for ignore in [
        OsString::from("CertificateExpired"),
        OsString::from(format!("{kind}@{}", pki.intermediate_pem().display())),
    ] {
        let mut args = base.clone();
        args.extend(os_args!["--ignore", ignore]);
        assert_eq!(exit_code(&run(&args)?), Some(1));
    }

    let mut args = base;
    args.push("--ignore-all-errors".into());
    assert_eq!(exit_code(&run(&args)?), Some(0));
    Ok(())
}

#[test]
fn non_tls_bytes_are_a_tls_failure() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let peer = thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(b"HTTP/1.0 400\r\n\r\n");
            thread::sleep(Duration::from_millis(300));
        }
    });
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{port}"),
        "--no-system-ca",
        "--json"
    ])?;
    let _ = peer.join();
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(r["encrypted"], false);
    assert_eq!(r["socket_error"], "SslHandshakeFailedError");
    assert_ne!(r["error_string"], "");
    Ok(())
}

#[test]
fn refused_and_silent_peers_are_network_errors() -> TestResult {
    let port = free_port()?;
    let out = run(&os_args!["connect", format!("127.0.0.1:{port}"), "--json"])?;
    assert_eq!(exit_code(&out), Some(3), "{out}");
    let r = report(&out)?;
    assert_eq!(r["socket_error"], "ConnectionRefusedError");
    assert_eq!(r["encrypted"], false);

    // A peer that accepts and never answers: the handshake times out.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let started = Instant::now();
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{port}"),
        "--timeout",
        "500",
        "--json"
    ])?;
    let elapsed = started.elapsed();
    assert_eq!(exit_code(&out), Some(3), "{out}");
    assert_eq!(report(&out)?["socket_error"], "SocketTimeoutError");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");

    // With --reconnect, --timeout still bounds the whole run: the second connection gets
    // what the first left (nothing here), and is reported with the timeout too.
    let started = Instant::now();
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{port}"),
        "--timeout",
        "1500",
        "--reconnect",
        "--json"
    ])?;
    let elapsed = started.elapsed();
    drop(listener);
    assert_eq!(exit_code(&out), Some(3), "{out}");
    let r = report(&out)?;
    assert_eq!(r["socket_error"], "SocketTimeoutError", "{r}");
    assert_eq!(r["reconnect"]["socket_error"], "SocketTimeoutError", "{r}");
    assert!(
        elapsed < Duration::from_millis(2500),
        "two timeouts: {elapsed:?}"
    );
    Ok(())
}

/// The backends this build has.
fn backends() -> &'static [&'static str] {
    if cfg!(feature = "openssl") {
        &["rustls", "openssl"]
    } else {
        &["rustls"]
    }
}

/// A key that is not the certificate's: exit 2 with the same clear line on every backend
/// (OpenSSL's own text is an error stack naming a source file of libcrypto), nothing on
/// stdout. (`bad_input_is_exit_2_with_one_line` has the `connect` form.)
#[test]
fn a_key_of_another_certificate_is_named_alike_on_every_backend() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let other = pki.leaf("other", &["other"])?;
    for backend in backends() {
        let out = run(&os_args![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            leaf.cert_pem,
            "--key",
            other.key_pem,
            "--backend",
            backend
        ])?;
        assert_eq!(exit_code(&out), Some(2), "{backend}: {out}");
        assert!(out.stdout.is_empty(), "{backend}: {out}");
        assert_eq!(
            out.stderr.trim_end(),
            "error: local certificate and private key: the private key is not the \
             certificate's (its public key differs from the certificate's)",
            "{backend}"
        );
    }
    Ok(())
}

#[test]
fn bad_input_is_exit_2_with_one_line() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let other = pki.leaf("other", &["other"])?;
    let dir = tempfile::tempdir()?;
    let malformed = dir.path().join("malformed.pem");
    std::fs::write(
        &malformed,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )?;
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "hello\n")?;
    let big_key = dir.path().join("big.key");
    std::fs::write(&big_key, vec![b'A'; 2 * 1024 * 1024])?;
    let target = "127.0.0.1:9";

    let cases: Vec<Vec<OsString>> = vec![
        os_args!["connect", target, "--cafile", "/nonexistent/ca.pem"],
        os_args!["connect", target, "--cafile", malformed],
        os_args!["connect", target, "--cafile", garbage],
        os_args!["connect", target, "--ignore", "NoSuchError"],
        os_args![
            "connect",
            target,
            "--ignore",
            "HostNameMismatch@/nonexistent"
        ],
        os_args![
            "connect",
            target,
            "--cert",
            leaf.cert_pem,
            "--key",
            other.key_pem
        ],
        os_args!["connect", target, "--cert", leaf.cert_pem],
        os_args!["connect", target, "--cert", leaf.cert_pem, "--key", big_key],
        os_args!["connect", target, "--protocol", "tls1.0"],
        os_args!["connect", target, "--backend", "nosuch"],
        os_args!["connect", target, "--alpn", "h2,,x"],
        os_args!["connect", target, "--ciphers", "TLS_NO_SUCH_CIPHER"],
        os_args!["connect", target, "--ciphers", "TLS_AES_128_GCM_SHA256::"],
        os_args![
            "connect",
            target,
            "--ciphers",
            "TLS_AES_128_GCM_SHA256",
            "--protocol",
            "tls1.2"
        ],
        os_args!["connect", target, "--psk-identity", "id", "--psk-key", "00"],
        os_args!["connect", "no-port-here"],
        os_args!["connect", "::1:443"],
        os_args![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ocsp-response",
            leaf.cert_pem
        ],
        os_args!["cert", malformed],
        os_args!["cert", "/nonexistent/cert.pem"],
        os_args!["cert", leaf.cert_pem, garbage],
        os_args!["ciphers", "--backend", "nosuch"],
        os_args![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ciphers",
            "TLS_NO_SUCH_CIPHER"
        ],
    ];
    for args in cases {
        let out = run(&args)?;
        assert_eq!(exit_code(&out), Some(2), "{args:?}: {out}");
        assert!(one_stderr_line(&out), "{args:?}: {out}");
        assert!(out.stdout.is_empty(), "{args:?}: {out}");
    }

    // clap's own errors: exit 2, no panic.
    for args in [
        os_args!["connect", target, "--no-such-option"],
        os_args!["connect"],
        os_args!["connect", target, "--verify", "sometimes"],
        os_args!["connect", target, "--timeout", "soon"],
    ] {
        let out = run(&args)?;
        assert_eq!(exit_code(&out), Some(2), "{args:?}: {out}");
        assert!(out.stderr.starts_with("error:"), "{args:?}: {out}");
    }

    // A path that is not UTF-8 is opened as given (here: it does not exist).
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        let path = dir
            .path()
            .join(OsString::from_vec(b"ca-\xff\xfe.pem".to_vec()));
        let out = run(&os_args!["connect", target, "--cafile", path])?;
        assert_eq!(exit_code(&out), Some(2), "{out}");
        assert!(one_stderr_line(&out), "{out}");
    }
    Ok(())
}

#[test]
fn protocol_and_alpn_selection_against_s_server() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &["-alpn", "h2,http/1.1"])?;
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--protocol",
        "tls1.2",
        "--alpn",
        "http/1.1",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["protocol"], "TlsV1_2");
    assert_eq!(r["cipher"]["protocol"], "TlsV1_2");
    assert_eq!(r["cipher"]["key_exchange"], "ECDH");
    assert_eq!(r["cipher"]["authentication"], "ECDSA");
    assert_eq!(r["alpn"], "http/1.1");
    Ok(())
}

#[test]
fn send_reads_until_the_peer_closes() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &["-www"])?;
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--send",
        r"GET / HTTP/1.0\r\n\r\n",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    let received = r["received"].as_str().unwrap_or_default();
    assert!(received.starts_with("HTTP/1.0 200 ok"), "{received}");
    assert_eq!(r["received_bytes"].as_u64(), Some(received.len() as u64));
    assert_eq!(r["socket_error"], Value::Null, "a clean close: {r}");
    Ok(())
}

#[test]
fn client_certificate_required_but_missing_is_a_tls_failure() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-Verify", "1", "-CAfile", pki.root_pem()]);
    let server = OpensslServer::start(&args)?;
    let target = format!("127.0.0.1:{}", server.port());

    let out = run(&os_args![
        "connect",
        target,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");

    let client = pki.client_cert(true)?;
    let out = run(&os_args![
        "connect",
        target,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--cert",
        client.chain_pem,
        "--key",
        client.key_pem,
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    Ok(())
}

#[test]
fn echo_through_our_serve_with_json_lines() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = Serve::start(&os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--echo"
    ])?;
    let out = run(&os_args![
        "connect",
        serve.address,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--send",
        r"ping\n",
        "--timeout",
        "1500",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["received"], "ping\n", "{r}");
    assert_eq!(r["received_bytes"], 5);
    assert_eq!(
        r["peer_certificate_chain"].as_array().map(Vec::len),
        Some(2)
    );

    let line = serve.connection_line(0)?;
    assert_eq!(line["event"], "encrypted", "{line}");
    assert_eq!(line["protocol"], "TlsV1_3");
    assert_eq!(line["received_bytes"], 5);
    assert_eq!(line["socket_error"], Value::Null, "{line}");
    assert_eq!(line["errors"], serde_json::json!([]));
    assert!(line["peer"]
        .as_str()
        .is_some_and(|p| p.starts_with("127.0.0.1:")));
    assert!(line["cipher"]["name"].is_string());
    Ok(())
}

#[test]
fn serve_verifies_client_certificates() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = Serve::start(&os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--verify",
        "verify"
    ])?;
    let client = pki.client_cert(true)?;
    let out = run(&os_args![
        "connect",
        serve.address,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--cert",
        client.chain_pem,
        "--key",
        client.key_pem,
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let line = serve.connection_line(0)?;
    assert_eq!(line["event"], "encrypted", "{line}");
    assert_eq!(
        line["peer_certificate_chain"][0]["subject"],
        "CN=Test Client"
    );
    assert_eq!(
        line["peer_certificate_chain"][0]["sha256"],
        sha256_of(&client.cert_der)?
    );
    assert_eq!(line["errors"], serde_json::json!([]));

    // Without a certificate, TLS 1.3 refuses after the client's Finished: the alert
    // arrives after the client's handshake ended, and is still exit 1.
    let out = run(&os_args![
        "connect",
        serve.address,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let line = serve.connection_line(1)?;
    assert_eq!(line["event"], "failed", "{line}");
    Ok(())
}

#[test]
fn serve_generates_a_certificate_and_reports_failed_handshakes() -> TestResult {
    let serve = Serve::start(&os_args!["--handshake-timeout", "300"])?;
    // The generated certificate's digest goes to stderr in JSON mode.
    serve
        .process
        .wait_for_output("sha256 ", Duration::from_secs(5))?;
    let sha = serve
        .process
        .stderr()
        .split("sha256 ")
        .nth(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    assert_eq!(sha.len(), 64, "{}", serve.process.stderr());

    // A client that trusts nothing fails verification (self-signed leaf) ...
    let out = run(&os_args![
        "connect",
        serve.address,
        "--no-system-ca",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    reported_kind(&r, "SelfSignedCertificate");
    assert_eq!(r["peer_certificate_chain"][0]["sha256"], sha);
    assert_eq!(r["peer_certificate_chain"][0]["self_signed"], true);
    let first = serve.connection_line(0)?;
    assert_eq!(first["event"], "failed", "{first}");

    // ... and a client that never speaks is timed out by the server.
    let silent = std::net::TcpStream::connect(&serve.address)?;
    let line = serve.connection_line(1)?;
    assert_eq!(line["event"], "failed", "{line}");
    assert_eq!(line["socket_error"], "SocketTimeoutError", "{line}");
    drop(silent);
    Ok(())
}

#[test]
fn serve_once_exits_with_connect_codes() -> TestResult {
    let mut serve = Serve::start(&os_args!["--once", "--echo"])?;
    let out = run(&os_args![
        "connect",
        serve.address,
        "--no-system-ca",
        "--ignore-all-errors",
        "--send",
        "bye",
        "--timeout",
        "800",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert_eq!(report(&out)?["received"], "bye");
    let done = serve.process.wait(Duration::from_secs(5))?;
    assert_eq!(done.status.code(), Some(0), "{done}");
    Ok(())
}

#[test]
fn starttls_between_our_client_and_our_server() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    for protocol in ["smtp", "imap", "pop3"] {
        let serve = Serve::start(&os_args![
            "--cert",
            leaf.chain_pem,
            "--key",
            leaf.key_pem,
            "--starttls",
            protocol,
            "--echo"
        ])?;
        let out = run(&os_args![
            "connect",
            serve.address,
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--starttls",
            protocol,
            "--send",
            "after upgrade",
            "--timeout",
            "1000",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{protocol}: {out}");
        let r = report(&out)?;
        assert_eq!(r["encrypted"], true, "{protocol}");
        assert_eq!(r["received"], "after upgrade", "{protocol}");
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "encrypted", "{protocol}: {line}");
    }

    // A server that does not speak the protocol refuses the upgrade: exit 1.
    let pop3 = Serve::start(&os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--starttls",
        "pop3"
    ])?;
    let out = run(&os_args![
        "connect",
        pop3.address,
        "--starttls",
        "smtp",
        "--timeout",
        "2000",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert_eq!(report(&out)?["encrypted"], false);
    Ok(())
}

/// A client that leaves during the plain-text phase, after the greeting, in the middle of a
/// command (no line end) or after a whole one, closed the connection: `--once` exits 3 with
/// `RemoteHostClosedError`, never an error of our own reply to a command it never finished.
#[test]
fn a_starttls_client_that_leaves_mid_command_closed_the_connection() -> TestResult {
    use std::net::TcpStream;
    for (protocol, sent) in [
        ("smtp", &b""[..]),
        ("smtp", &b"EHLO x"[..]),
        ("smtp", &b"EHLO x\r\n"[..]),
        ("pop3", &b"CA"[..]),
    ] {
        let mut serve = Serve::start(&os_args!["--starttls", protocol, "--once"])?;
        let mut client = TcpStream::connect(serve.address.as_str())?;
        client.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut greeting = [0u8; 128];
        let n = client.read(&mut greeting)?;
        assert!(n > 0, "{protocol}: no greeting");
        client.write_all(sent)?;
        // The reply to a whole command may come; the client leaves either way.
        thread::sleep(Duration::from_millis(100));
        drop(client);
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "failed", "{protocol} {sent:?}: {line}");
        assert_eq!(
            line["socket_error"], "RemoteHostClosedError",
            "{protocol} {sent:?}: {line}"
        );
        let done = serve.process.wait(Duration::from_secs(10))?;
        assert_eq!(done.status.code(), Some(3), "{protocol} {sent:?}: {done}");
    }
    Ok(())
}

#[test]
fn openssl_s_client_starttls_smtp_against_our_serve() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = Serve::start(&os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--starttls",
        "smtp"
    ])?;
    let port: u16 = serve
        .address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or("no port")?;
    let out = OpensslClient::run(
        port,
        &os_args!["-starttls", "smtp", "-CAfile", pki.root_pem()],
        b"",
        Duration::from_secs(10),
    )?;
    let text = out.combined();
    assert!(text.contains("CONNECTED"), "{out}");
    assert!(text.contains("Verify return code: 0"), "{out}");
    let line = serve.connection_line(0)?;
    assert_eq!(line["event"], "encrypted", "{line}");
    Ok(())
}

#[test]
fn truncation_is_reported_and_still_exit_0() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(vec![
            SslCertificate::from_der(&leaf.cert_der)?,
            SslCertificate::from_der(pki.intermediate_der())?,
        ])
        .set_private_key(SslKey::from_der(&leaf.key_der)?);
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    // Sends data, then closes TCP without close_notify.
    let peer = thread::spawn(move || {
        if let Ok(Ok(mut socket)) = server.next_connection(Duration::from_secs(10)) {
            let _ = socket.wait_for_ready_read(Duration::from_secs(5));
            let _ = socket.read_all();
            let _ = socket.write_all(b"partial data");
            let _ = socket.flush();
            socket.abort();
        }
    });
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{port}"),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--send",
        "hi",
        "--json"
    ])?;
    let _ = peer.join();
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["encrypted"], true);
    assert_eq!(r["received"], "partial data");
    assert_eq!(r["received_bytes"], 12);
    assert_eq!(r["socket_error"], "RemoteHostClosedError", "{r}");
    Ok(())
}

#[test]
fn cert_backends_and_demo() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let out = run(&os_args!["cert", leaf.chain_pem, "--json"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let report: Value = serde_json::from_str(out.stdout.trim())?;
    let list = &report["certificates"];
    assert_eq!(list[0]["subject"], "CN=localhost");
    assert_eq!(list[0]["sha256"], sha256_of(&leaf.cert_der)?);
    assert_eq!(list[1]["subject"], "CN=Test Intermediate CA");
    let out = run(&os_args!["cert", pki.root_pem()])?;
    assert!(out.stdout.contains("self-signed: true"), "{out}");

    let out = run(&os_args!["backends"])?;
    assert_eq!(exit_code(&out), Some(0));
    assert!(out.stdout.contains("rustls (active)"), "{out}");

    let out = run(&os_args!["demo"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert!(out.stdout.contains("verification: no errors"), "{out}");
    assert!(out.stdout.contains("hello from sslsocket demo"), "{out}");
    Ok(())
}

#[test]
fn verify_none_reports_no_errors_on_either_backend() -> TestResult {
    // Qt: a peer that is not verified has no verification errors. The generated
    // certificate is self-signed and names localhost, so a verifying client would find
    // SelfSignedCertificate (and a host name mismatch for "example.invalid").
    let serve = Serve::start(&os_args![])?;
    for backend in backends() {
        let out = run(&os_args![
            "connect",
            serve.address,
            "--verify",
            "none",
            "--peer-name",
            "example.invalid",
            "--no-system-ca",
            "--backend",
            backend,
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{backend}: {out}");
        let r = report(&out)?;
        assert_eq!(r["encrypted"], true, "{backend}: {r}");
        assert_eq!(r["errors"], serde_json::json!([]), "{backend}: {r}");
        assert_eq!(
            r["peer_certificate_chain"][0]["self_signed"], true,
            "{backend}: {r}"
        );
    }
    Ok(())
}
