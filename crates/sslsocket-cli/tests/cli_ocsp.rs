//! `--ocsp` and `serve --ocsp-response`: stapled responses made by `openssl ocsp`.

mod common;

use std::ffi::OsString;

use common::support::{ocsp_response, os_args, OpensslServer, Pki};
use common::{error_names, exit_code, report, run, Serve, TestResult};

fn connect(port: u16, pki: &Pki) -> Vec<OsString> {
    os_args![
        "connect",
        format!("localhost:{port}"),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--ocsp",
        "--json"
    ]
}

#[test]
fn ocsp_good_revoked_and_missing_against_s_server() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let good = ocsp_response(&pki, &leaf, false, "good")?;
    let revoked = ocsp_response(&pki, &leaf, true, "revoked")?;

    let mut args = leaf.openssl_args();
    args.extend(os_args!["-status_file", &good, "-quiet"]);
    let server = OpensslServer::start(&args)?;
    let out = run(&connect(server.port(), &pki))?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["ocsp"][0]["status"], "Good", "{r}");
    assert_eq!(r["ocsp"][0]["revocation_reason"], serde_json::Value::Null);
    drop(server);

    let mut args = leaf.openssl_args();
    args.extend(os_args!["-status_file", &revoked, "-quiet"]);
    let server = OpensslServer::start(&args)?;
    let out = run(&connect(server.port(), &pki))?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(error_names(&r), vec!["CertificateRevoked".to_string()]);
    assert_eq!(r["errors"][0]["certificate"]["subject"], "CN=localhost");
    assert_eq!(r["ocsp"][0]["status"], "Revoked");
    assert_eq!(r["ocsp"][0]["revocation_reason"], "KeyCompromise");
    drop(server);

    let mut args = leaf.openssl_args();
    args.extend(os_args!["-quiet"]);
    let server = OpensslServer::start(&args)?;
    let out = run(&connect(server.port(), &pki))?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(error_names(&r), vec!["OcspNoResponseFound".to_string()]);
    assert_eq!(r["errors"][0]["certificate"], serde_json::Value::Null);
    let mut ignoring = connect(server.port(), &pki);
    ignoring.extend(os_args!["--ignore", "OcspNoResponseFound"]);
    assert_eq!(exit_code(&run(&ignoring)?), Some(0));
    Ok(())
}

#[test]
fn serve_staples_the_given_response() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let good = ocsp_response(&pki, &leaf, false, "good")?;
    let serve = Serve::start(&os_args![
        "--cert",
        &leaf.chain_pem,
        "--key",
        &leaf.key_pem,
        "--ocsp-response",
        &good
    ])?;
    let port = serve
        .address
        .rsplit(':')
        .next()
        .ok_or("port")?
        .parse::<u16>()?;
    let out = run(&connect(port, &pki))?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert_eq!(report(&out)?["ocsp"][0]["status"], "Good");
    let garbage = pki.dir.path().join("garbage.der");
    std::fs::write(&garbage, b"not ocsp")?;
    // `successful` with no response bytes (`30 03 0a 01 00`): DER, but nothing to staple.
    let hollow = pki.dir.path().join("hollow.der");
    std::fs::write(&hollow, [0x30, 0x03, 0x0a, 0x01, 0x00])?;
    for file in [&garbage, &hollow] {
        let out = run(&os_args![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ocsp-response",
            file
        ])?;
        assert_eq!(exit_code(&out), Some(2), "{}: {out}", file.display());
        assert!(out.stderr.contains("--ocsp-response"), "{out}");
    }
    Ok(())
}
