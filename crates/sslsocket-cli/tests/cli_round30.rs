//! Round 30 review of the command line against the contract (cli-contract.md): each test
//! pinned one confirmed deviation (all fixed since). Peers are on 127.0.0.1, certificates
//! made at test time, every wait bounded.

mod common;

use std::ffi::OsString;
use std::time::{Duration, Instant};

use common::support::{os_args, OpensslClient, Pki};
use common::{error_names, exit_code, report, run, s_server, Serve, TestResult};
use serde_json::Value;

/// The backends this build has.
fn backends() -> Vec<&'static str> {
    let mut names = vec!["rustls"];
    if cfg!(feature = "openssl") {
        names.push("openssl");
    }
    names
}

/// The per-connection lines `serve` printed so far (the listening line left out).
fn connection_lines(serve: &Serve) -> Vec<Value> {
    serve
        .process
        .stdout()
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until `serve` printed `n` connection lines (at most 15 s), then returns them.
fn wait_for_lines(serve: &Serve, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let lines = connection_lines(serve);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// serve: "one line per connection when it ends: {"event":"encrypted"|"failed",
// "peer":"ADDR:PORT", ...}". A client that resets its connection right after connecting
// (RST before the server asked the kernel for its address) gets "peer": null, although
// accept() returned the address.
// ---------------------------------------------------------------------------------------

#[test]
fn serve_names_the_peer_of_a_client_that_reset_at_once() -> TestResult {
    const CLIENTS: usize = 20;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for backend in backends() {
        let pki = Pki::new()?;
        let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
        let serve = Serve::start(&os_args![
            "--cert",
            leaf.chain_pem,
            "--key",
            leaf.key_pem,
            "--backend",
            backend
        ])?;
        let address = serve.address.clone();
        rt.block_on(async {
            for _ in 0..CLIENTS {
                let stream = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::net::TcpStream::connect(address.as_str()),
                )
                .await??;
                // Closing with a zero linger sends RST instead of FIN.
                stream.set_zero_linger()?;
                drop(stream);
            }
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
        let lines = wait_for_lines(&serve, CLIENTS);
        assert_eq!(
            lines.len(),
            CLIENTS,
            "{backend}: {}",
            serve.process.output()
        );
        for line in &lines {
            assert_eq!(line["event"], "failed", "{backend}: {line}");
            let peer = line["peer"].as_str().unwrap_or_default();
            assert!(
                peer.starts_with("127.0.0.1:"),
                "{backend}: a connection line without its peer's ADDR:PORT: {line}"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// serve --sni: each JSON connection line gets "sni": "the server name the client sent",
// and (the brief's point 5, the contract's "an ignore list written for one backend works
// on the other" spirit) both backends must report the same thing. A client sending
// `www.example.com.` (trailing dot, as `openssl s_client -servername` sends it) is
// reported as "www.example.com" by the rustls backend and "www.example.com." by the
// OpenSSL backend.
// ---------------------------------------------------------------------------------------

#[test]
fn serve_reports_a_trailing_dot_sni_alike_on_every_backend() -> TestResult {
    if !cfg!(feature = "openssl") {
        return Ok(());
    }
    let pki = Pki::new()?;
    let default = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let wildcard = pki.wildcard_leaf("*.example.com")?;
    let mut reported = Vec::new();
    for backend in backends() {
        let mut sni = OsString::from("*.example.com=");
        sni.push(&wildcard.chain_pem);
        sni.push(",");
        sni.push(&wildcard.key_pem);
        let serve = Serve::start(&os_args![
            "--cert",
            &default.chain_pem,
            "--key",
            &default.key_pem,
            "--backend",
            backend,
            "--sni",
            sni
        ])?;
        let port: u16 = serve
            .address
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .parse()?;
        let out = OpensslClient::run(
            port,
            &os_args!["-servername", "www.example.com.", "-CAfile", pki.root_pem()],
            b"",
            Duration::from_secs(15),
        )?;
        // Both backends pick the wildcard's certificate for this name.
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("subject=") && l.contains("*.example.com")),
            "{backend}: {out}"
        );
        let lines = wait_for_lines(&serve, 1);
        let line = lines.first().cloned().unwrap_or_default();
        assert_eq!(line["event"], "encrypted", "{backend}: {line}");
        reported.push((backend, line["sni"].clone()));
    }
    let first = reported.first().map(|(_, sni)| sni.clone());
    assert!(
        reported.iter().all(|(_, sni)| Some(sni) == first.as_ref()),
        "the backends report different \"sni\" values for one client name: {reported:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// connect --json, v2: "`group`: the key-exchange group of the session ("X25519MLKEM768",
// "X25519", "secp256r1", ...), `null` when none applies". On the OpenSSL backend a TLS 1.3
// session whose key exchange used the finite-field group ffdhe2048 (`openssl s_server
// -groups ffdhe2048`) reports "group": null: a group applied, and the report hides it.
// ---------------------------------------------------------------------------------------

#[test]
fn openssl_backend_names_a_finite_field_tls13_group() -> TestResult {
    if !cfg!(feature = "openssl") {
        return Ok(());
    }
    let pki = Pki::new()?;
    for group in ["ffdhe2048", "ffdhe3072"] {
        let server = s_server(&pki, &["-tls1_3", "-groups", group])?;
        let out = run(&os_args![
            "connect",
            format!("127.0.0.1:{}", server.port()),
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--backend",
            "openssl",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{out}");
        let r = report(&out)?;
        assert_eq!(r["protocol"], "TlsV1_3", "{r}");
        let reported = r["group"].as_str().unwrap_or_default();
        assert!(
            reported.eq_ignore_ascii_case(group),
            "{group} was negotiated (s_server -groups {group}), the report says {}",
            r["group"]
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// connect, errors: "Which errors, on which certificates, follows OpenSSL's verification
// (what Qt reports on its OpenSSL backend), whatever our backend, so that an ignore list
// written for one backend works on the other". With only the intermediate CA trusted
// (`--cafile INTERMEDIATE`, not self-signed), the rustls backend connects with no error
// while the OpenSSL backend fails with `UnableToGetIssuerCertificate` on the intermediate
// (as `openssl verify -CAfile int.pem leaf.pem` does, "error 2 at 1 depth lookup"). The
// v2 hint for a lone leaf ("pass its issuer ... with --cafile") is the advice that then
// works on one backend only.
// ---------------------------------------------------------------------------------------

#[test]
fn a_trusted_intermediate_gives_the_same_verdict_on_every_backend() -> TestResult {
    if !cfg!(feature = "openssl") {
        return Ok(());
    }
    let pki = Pki::new()?;
    let server = s_server(&pki, &[])?;
    let mut verdicts = Vec::new();
    for backend in backends() {
        let out = run(&os_args![
            "connect",
            format!("localhost:{}", server.port()),
            "--cafile",
            pki.intermediate_pem(),
            "--no-system-ca",
            "--backend",
            backend,
            "--json"
        ])?;
        let r = report(&out)?;
        verdicts.push((backend, exit_code(&out), error_names(&r)));
    }
    let first = verdicts
        .first()
        .map(|(_, code, names)| (*code, names.clone()));
    assert!(
        verdicts
            .iter()
            .all(|(_, code, names)| Some((*code, names.clone())) == first),
        "the backends disagree on a chain whose intermediate is the trusted CA: {verdicts:?}"
    );
    Ok(())
}
