//! Review 33c of the command line against the contract (cli-contract.md): truncation
//! without `--send`, PSK clients of `serve --verify verify`, PSK `--reconnect`, keys with
//! explicit EC curve parameters. Peers are on 127.0.0.1, certificates are made at test
//! time, every wait is bounded and every child process is killed on drop.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpListener};
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::support::{openssl_run, os_args, OpensslServer, Pki};
#[cfg(feature = "openssl")]
use common::Serve;
use common::{exit_code, report, run, TestResult};
use serde_json::json;
#[cfg(feature = "openssl")]
use serde_json::Value;

const BACKENDS: &[&str] = &["rustls", "openssl"];
#[cfg(feature = "openssl")]
const KEY: &str = "00112233445566778899aabbccddeeff";

/// Runs `openssl args` (bounded); fails the test with its output when it fails.
fn openssl(args: &[&std::ffi::OsStr]) -> TestResult {
    let out = openssl_run(args, b"", Duration::from_secs(30))?;
    if !out.success() {
        return Err(format!("openssl failed:\n{out}").into());
    }
    Ok(())
}

/// A self-signed localhost/127.0.0.1 certificate whose EC key (and so its
/// SubjectPublicKeyInfo) carries the explicit parameters of `curve`: (cert, key).
fn explicit_curve_cert(
    dir: &Path,
    curve: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf), Box<dyn std::error::Error>> {
    let key = dir.join(format!("{curve}-explicit.key"));
    let cert = dir.join(format!("{curve}-explicit.crt"));
    let curve_opt = format!("ec_paramgen_curve:{curve}");
    openssl(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "EC".as_ref(),
        "-pkeyopt".as_ref(),
        curve_opt.as_ref(),
        "-pkeyopt".as_ref(),
        "ec_param_enc:explicit".as_ref(),
        "-out".as_ref(),
        key.as_os_str(),
    ])?;
    openssl(&[
        "req".as_ref(),
        "-x509".as_ref(),
        "-new".as_ref(),
        "-key".as_ref(),
        key.as_os_str(),
        "-subj".as_ref(),
        "/CN=localhost".as_ref(),
        "-addext".as_ref(),
        "subjectAltName=DNS:localhost,IP:127.0.0.1".as_ref(),
        "-days".as_ref(),
        "30".as_ref(),
        "-out".as_ref(),
        cert.as_os_str(),
    ])?;
    Ok((cert, key))
}

// Found in review (left, round 33): "If the peer closes TCP after the handshake without close_notify, every byte received before the close is still reported (`received`, `received_bytes`), `socket_error` is `RemoteHostClosedError` (the truncation is visible, never mistaken for a clean end)" - without --send, connect reads for ~2 s after the handshake, reports the bytes, but a TCP close without close_notify inside that read gives "socket_error": null (both backends; -v even shows ErrorOccurred RemoteHostClosedError).
#[test]
#[ignore = "decision: without --send, connect reads only a settle window (the handshake's time, 50 ms to 1 s) and then closes itself; a peer that closes 300 ms later closes during our own close, after the report (with --send the read lasts until the peer closes, and the truncation is reported)"]
fn a_truncation_during_the_read_without_send_is_reported() -> TestResult {
    use tokio_rustls::rustls;
    let pki = Pki::new()?;
    let config = common::support::config::raw_server_config(&pki)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || {
        for _ in 0..BACKENDS.len() {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // Completes the handshake, then data, then TCP FIN without close_notify.
            let _ = tls.write_all(b"hello-before-truncation");
            let _ = tls.flush();
            thread::sleep(Duration::from_millis(300));
            let _ = tls.sock.shutdown(Shutdown::Both);
        }
    });
    let mut failures = Vec::new();
    for backend in BACKENDS {
        let out = run(&os_args![
            "connect",
            format!("127.0.0.1:{port}"),
            "--peer-name",
            "localhost",
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--backend",
            backend,
            "--timeout",
            "5000",
            "--json"
        ])?;
        let r = report(&out)?;
        if exit_code(&out) != Some(0)
            || r["received"] != "hello-before-truncation"
            || r["socket_error"] != "RemoteHostClosedError"
        {
            failures.push(format!("{backend}: {r}"));
        }
    }
    let _ = server.join();
    assert!(
        failures.is_empty(),
        "truncation not reported:\n{}",
        failures.join("\n")
    );
    Ok(())
}

// Was a defect: "`public_key` (`"EC P-256"`, `"RSA 2048"`, `"Ed25519"`, ...)" - a certificate whose EC key carries explicit P-256/P-384 parameters (openssl genpkey -pkeyopt ec_param_enc:explicit) is named "EC 02 01 01 30 2c 06 07 2a 86 48 ..." (a hex dump of the parameters, hundreds of characters), in `cert FILE` and in connect's chain (report.rs / library key naming).
#[test]
fn public_key_of_an_explicit_curve_certificate_is_a_name() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut failures = Vec::new();
    for (curve, name) in [("P-256", "EC P-256"), ("P-384", "EC P-384")] {
        let (cert, _) = explicit_curve_cert(dir.path(), curve)?;
        let out = run(&os_args!["cert", &cert, "--json"])?;
        let r = report(&out)?;
        let got = r["certificates"][0]["public_key"].clone();
        if got != name {
            failures.push(format!("{curve}: public_key {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// Found in review (left, round 33): "Which errors, on which certificates, follows OpenSSL's verification (what Qt reports on its OpenSSL backend), whatever our backend" - a trusted self-signed P-256 certificate with explicit curve parameters: the OpenSSL backend connects (exit 0, errors []), the rustls backend fails the handshake (exit 1) with a raw "invalid peer certificate: UnsupportedSignatureAlgorithmForPublicKeyContext {...}" and `errors: []` (webpki refuses explicit curves).
#[test]
#[ignore = "known limit: webpki (rustls backend) cannot verify a certificate with explicit EC curve parameters and refuses it (fail closed); OpenSSL accepts it"]
fn an_explicit_curve_server_is_verified_as_openssl_does_on_every_backend() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (cert, key) = explicit_curve_cert(dir.path(), "P-256")?;
    let server = OpensslServer::start(&os_args!["-cert", &cert, "-key", &key, "-quiet"])?;
    let mut failures = Vec::new();
    for backend in BACKENDS {
        let out = run(&os_args![
            "connect",
            format!("127.0.0.1:{}", server.port()),
            "--cafile",
            &cert,
            "--no-system-ca",
            "--backend",
            backend,
            "--timeout",
            "5000",
            "--json"
        ])?;
        let r = report(&out)?;
        if exit_code(&out) != Some(0) || r["errors"] != json!([]) {
            failures.push(format!("{backend}: exit {:?} {r}", exit_code(&out)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// Was a defect: "2 | bad input: ... a key that does not match its certificate (a clear message on stderr...)" - serve --backend rustls with a certificate and ITS OWN explicit-curve P-256 key exits 2 saying "the private key is not the certificate's (its public key differs from the certificate's)", which is false (the OpenSSL backend serves the same pair); the message should say the key form is unsupported.
#[test]
fn an_explicit_curve_key_is_not_called_another_certificates_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (cert, key) = explicit_curve_cert(dir.path(), "P-256")?;
    let out = run(&os_args![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "rustls",
        "--cert",
        &cert,
        "--key",
        &key,
        "--once",
        "--json",
        "--handshake-timeout",
        "1000"
    ]);
    // If rustls ever serves it, the process waits for a client: the run times out (Err),
    // which is fine for this test (nothing false was said).
    if let Ok(out) = out {
        assert!(
            !out.stderr.contains("not the certificate's")
                && !out.stderr.contains("differs from the certificate"),
            "a matching key is reported as another certificate's:\n{out}"
        );
    }
    Ok(())
}

#[cfg(feature = "openssl")]
fn psk_serve(extra: &[&str]) -> Result<Serve, Box<dyn std::error::Error>> {
    let mut args = os_args![
        "--backend",
        "openssl",
        "--psk-identity",
        "client1",
        "--psk-key",
        KEY,
        "--psk-identity-hint",
        "hint"
    ];
    args.extend(extra.iter().map(std::ffi::OsString::from));
    Serve::start(&args)
}

// Was a defect: "PSK: when a pre-shared-key cipher suite was negotiated the peer is authenticated by the key, and no certificate is required of it" - serve --backend openssl --psk-* --verify verify refuses an `openssl s_client -psk` client (TLS 1.2 PSK-AES128-GCM-SHA256 and TLS 1.3) with "event":"failed", errors [NoPeerCertificate] (connect sets set_pre_shared_key_authenticates_peer for --psk, serve does not; the library's check also only exempts SslClientMode).
#[cfg(feature = "openssl")]
#[test]
fn serve_verify_accepts_a_client_authenticated_by_its_key() -> TestResult {
    use common::support::OpensslClient;
    let mut failures = Vec::new();
    for version in [
        &["-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"][..],
        &["-tls1_3"][..],
    ] {
        let serve = psk_serve(&["--verify", "verify"])?;
        let port: u16 = serve
            .address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .ok_or("no port")?;
        let mut args = os_args!["-psk", KEY, "-psk_identity", "client1", "-quiet"];
        args.extend(version.iter().map(std::ffi::OsString::from));
        let _ = OpensslClient::run(port, &args, b"hello\n", Duration::from_secs(10))?;
        let line: Value = serve.connection_line(0)?;
        if line["event"] != "encrypted" || line["errors"] != json!([]) {
            failures.push(format!("{version:?}: {line}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// Found in review (left, round 33): "--reconnect: after the first session closes, connect again with the same configuration and report both; the second reports whether the session was resumed" - with --psk-* against `openssl s_server -nocert -psk` (TLS 1.2 PSK-AES128-GCM-SHA256) the first connection receives a ticket (-v: NewSessionTicketReceived) but the second is never resumed ("session_resumed": false; the ClientHello carries no ticket), where `openssl s_client -reconnect` resumes the same server every time.
#[cfg(feature = "openssl")]
#[test]
#[ignore = "decision: sessions of a peer that showed no certificate (PSK) are never stored, so --reconnect with a PSK makes a full PSK handshake again and reports it truthfully"]
fn psk_reconnect_resumes_a_tls12_session() -> TestResult {
    let server = OpensslServer::start(&os_args![
        "-nocert",
        "-psk",
        KEY,
        "-psk_identity",
        "client1",
        "-tls1_2",
        "-cipher",
        "PSK-AES128-GCM-SHA256",
        "-quiet"
    ])?;
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{}", server.port()),
        "--backend",
        "openssl",
        "--psk-identity",
        "client1",
        "--psk-key",
        KEY,
        "--reconnect",
        "--timeout",
        "5000",
        "--json"
    ])?;
    let r = report(&out)?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert_eq!(r["reconnect"]["encrypted"], true, "{r}");
    assert_eq!(r["reconnect"]["session_resumed"], true, "{r}");
    Ok(())
}
