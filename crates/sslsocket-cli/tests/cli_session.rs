//! The `sslsocket` binary's session options and information commands against real peers
//! on 127.0.0.1: `--ciphers`, `--reconnect` (session resumption against `openssl s_server`
//! and our own `serve`), `--pass` (encrypted keys), `--verify-depth`, and the `ciphers`,
//! `backends` and `cert` commands (checked against `openssl x509`).
//!
//! Every child process is killed on drop and every wait has a deadline.

mod common;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::support::{openssl_run, os_args, OpensslServer, Pki, RunOutput};
use common::{
    error_names, exit_code, one_stderr_line, report, run, s_server, sha256_of, Serve, TestResult,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::Value;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `connect HOST:PORT --cafile ROOT --no-system-ca --json` plus `extra`.
fn connect_args(target: &str, root: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args = os_args![
        "connect",
        target,
        "--cafile",
        root,
        "--no-system-ca",
        "--json"
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

/// Runs `openssl ARGS` (bounded) and fails with its output unless it succeeds.
fn openssl_ok(args: &[OsString]) -> BoxResult<RunOutput> {
    let out = openssl_run(args, b"", Duration::from_secs(20))?;
    if !out.success() {
        return Err(format!("openssl {args:?} failed:\n{out}").into());
    }
    Ok(out)
}

fn sha256s(chain: &Value) -> Vec<String> {
    chain
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["sha256"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ----- --ciphers ----------------------------------------------------------------------

#[test]
fn ciphers_choose_the_suite_and_a_mismatch_fails() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &[])?;
    let target = format!("127.0.0.1:{}", server.port());
    let out = run(&connect_args(
        &target,
        pki.root_pem(),
        &["--ciphers", "TLS_CHACHA20_POLY1305_SHA256"],
    ))?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["cipher"]["name"], "TLS_CHACHA20_POLY1305_SHA256", "{r}");
    assert_eq!(r["cipher"]["protocol"], "TlsV1_3");
    assert_eq!(r["cipher"]["encryption"], "CHACHA20/POLY1305(256)");

    // Preference order: our first choice wins when the server lets the client choose
    // (`-prioritize_chacha` is off and s_server follows the client's order by default).
    let out = run(&connect_args(
        &target,
        pki.root_pem(),
        &[
            "--protocol",
            "tls1.2",
            "--ciphers",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ],
    ))?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["protocol"], "TlsV1_2");
    assert_eq!(
        r["cipher"]["name"], "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "{r}"
    );

    // No suite in common: the server refuses the handshake (TLS failure, exit 1).
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-ciphersuites", "TLS_AES_128_GCM_SHA256"]);
    let strict = OpensslServer::start(&args)?;
    let out = run(&connect_args(
        &format!("127.0.0.1:{}", strict.port()),
        pki.root_pem(),
        &["--ciphers", "TLS_CHACHA20_POLY1305_SHA256"],
    ))?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(r["encrypted"], false);
    assert_eq!(r["socket_error"], "SslHandshakeFailedError", "{r}");
    assert_eq!(r["cipher"], Value::Null);

    // An unknown name is bad input, named in one line.
    let out = run(&connect_args(
        &target,
        pki.root_pem(),
        &["--ciphers", "TLS_AES_128_GCM_SHA256:TLS_NO_SUCH"],
    ))?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(one_stderr_line(&out), "{out}");
    assert!(out.stderr.contains("TLS_NO_SUCH"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    Ok(())
}

#[test]
fn serve_ciphers_choose_the_suite() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = Serve::start(&os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--ciphers",
        "TLS_AES_128_GCM_SHA256"
    ])?;
    let out = run(&connect_args(&serve.address, pki.root_pem(), &[]))?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert_eq!(report(&out)?["cipher"]["name"], "TLS_AES_128_GCM_SHA256");
    let line = serve.connection_line(0)?;
    assert_eq!(line["cipher"]["name"], "TLS_AES_128_GCM_SHA256", "{line}");

    // A client that allows none of the server's suites fails.
    let out = run(&connect_args(
        &serve.address,
        pki.root_pem(),
        &["--ciphers", "TLS_AES_256_GCM_SHA384"],
    ))?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    Ok(())
}

// ----- --reconnect ----------------------------------------------------------------------

/// `connect --reconnect --json` against `target`: the report, checked for the shape both
/// connections share.
fn reconnect(target: &str, root: &Path, extra: &[&str]) -> BoxResult<Value> {
    let mut args = connect_args(target, root, &["--reconnect"]);
    args.extend(extra.iter().map(OsString::from));
    let out = run(&args)?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["encrypted"], true, "{r}");
    assert_eq!(
        r["session_resumed"], false,
        "the first connection is new: {r}"
    );
    let second = &r["reconnect"];
    assert!(second.is_object(), "{r}");
    assert_eq!(second["encrypted"], true, "{r}");
    assert_eq!(second["mode"], "SslClientMode");
    assert_eq!(second["errors"], serde_json::json!([]));
    assert_eq!(second["socket_error"], Value::Null, "{r}");
    assert!(
        second.get("reconnect").is_none(),
        "only one level of reconnect: {r}"
    );
    // A resumed session reports the chain of the original one.
    assert!(!sha256s(&r["peer_certificate_chain"]).is_empty(), "{r}");
    assert_eq!(
        sha256s(&second["peer_certificate_chain"]),
        sha256s(&r["peer_certificate_chain"]),
        "{r}"
    );
    Ok(r)
}

#[test]
fn reconnect_resumes_with_s_server_tickets() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &["-num_tickets", "2"])?;
    let target = format!("localhost:{}", server.port());
    let started = Instant::now();
    let r = reconnect(&target, pki.root_pem(), &["--protocol", "tls1.3"])?;
    // The first connection stops reading soon after its tickets, not after 1.5 s.
    let elapsed = started.elapsed();
    assert_eq!(r["protocol"], "TlsV1_3");
    assert_eq!(r["reconnect"]["protocol"], "TlsV1_3");
    assert_eq!(r["reconnect"]["session_resumed"], true, "{r}");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");

    // The readable report shows both.
    let out = run(&os_args![
        "connect",
        target,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--reconnect"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert!(out.stdout.contains("session: new"), "{out}");
    assert!(out.stdout.contains("reconnect:"), "{out}");
    assert!(out.stdout.contains("session: resumed"), "{out}");
    Ok(())
}

#[test]
fn reconnect_resumes_with_our_serve() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = Serve::start(&os_args!["--cert", leaf.chain_pem, "--key", leaf.key_pem])?;
    for (n, protocol) in [(0, "tls1.3"), (2, "tls1.2")] {
        let r = reconnect(&serve.address, pki.root_pem(), &["--protocol", protocol])?;
        assert_eq!(r["reconnect"]["session_resumed"], true, "{protocol}: {r}");
        // The server saw a new session, then the resumed one.
        let first = serve.connection_line(n)?;
        let second = serve.connection_line(n + 1)?;
        assert_eq!(first["session_resumed"], false, "{protocol}: {first}");
        assert_eq!(second["session_resumed"], true, "{protocol}: {second}");
        assert_eq!(second["event"], "encrypted", "{protocol}: {second}");
    }
    Ok(())
}

#[test]
fn reconnect_without_tickets() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &["-no_ticket", "-num_tickets", "0"])?;
    let target = format!("localhost:{}", server.port());

    // TLS 1.3 resumes only with a ticket (stateful or not, OpenSSL sends the session ID as
    // a NewSessionTicket), and `-num_tickets 0` sends none: nothing to resume. The first
    // connection waits its full 1.5 s for a ticket that never comes.
    let r = reconnect(&target, pki.root_pem(), &["--protocol", "tls1.3"])?;
    assert_eq!(r["reconnect"]["session_resumed"], false, "{r}");

    // TLS 1.2: `-no_ticket` only turns RFC 5077 tickets off; s_server still caches
    // sessions by session ID, so the second connection resumes by ID.
    let r = reconnect(&target, pki.root_pem(), &["--protocol", "tls1.2"])?;
    assert_eq!(r["reconnect"]["session_resumed"], true, "{r}");
    Ok(())
}

/// A peer accepted only by ignoring its errors: the second connection resumes its session
/// and reports the same errors again (the first connection's close must not forget it).
#[test]
fn reconnect_resumes_a_peer_accepted_by_ignoring_and_reports_its_errors_again() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = Serve::start(&os_args!["--cert", leaf.chain_pem, "--key", leaf.key_pem])?;
    let s_server = s_server(&pki, &["-num_tickets", "2"])?;
    let s_target = format!("localhost:{}", s_server.port());
    for target in [serve.address.as_str(), s_target.as_str()] {
        for ignore in [
            &["--ignore-all-errors"][..],
            &[
                "--ignore",
                "UnableToGetLocalIssuerCertificate",
                "--ignore",
                "UnableToVerifyFirstCertificate",
            ][..],
        ] {
            let mut args = os_args![
                "connect",
                target,
                "--peer-name",
                "localhost",
                "--no-system-ca",
                "--reconnect",
                "--json"
            ];
            args.extend(ignore.iter().map(OsString::from));
            let out = run(&args)?;
            assert_eq!(exit_code(&out), Some(0), "{target} {ignore:?}: {out}");
            let r = report(&out)?;
            let errors = error_names(&r);
            assert!(!errors.is_empty(), "{r}");
            assert_eq!(r["session_resumed"], false, "{r}");
            assert_eq!(
                r["reconnect"]["session_resumed"], true,
                "{target} {ignore:?}: {r}"
            );
            assert_eq!(error_names(&r["reconnect"]), errors, "{r}");
            assert_eq!(
                sha256s(&r["reconnect"]["peer_certificate_chain"]),
                sha256s(&r["peer_certificate_chain"]),
                "{r}"
            );
        }
    }
    Ok(())
}

#[test]
fn reconnect_after_a_failure_reports_both_and_fails() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &[])?;
    // Wrong name: both connections fail verification; exit 1, both reported.
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--peer-name",
        "wrong.example",
        "--reconnect",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(error_names(&r), vec!["HostNameMismatch".to_string()]);
    assert_eq!(
        error_names(&r["reconnect"]),
        vec!["HostNameMismatch".to_string()],
        "a refused peer's session is never resumed: {r}"
    );
    assert_eq!(r["reconnect"]["session_resumed"], false);
    Ok(())
}

// ----- ciphers, backends ------------------------------------------------------------------

#[test]
fn ciphers_and_backends_json() -> TestResult {
    let out = run(&os_args!["ciphers", "--json"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let list = report(&out)?;
    let ciphers = list.as_array().ok_or("not a list")?;
    assert!(ciphers.len() >= 5, "{list}");
    for c in ciphers {
        for field in [
            "name",
            "openssl_name",
            "protocol",
            "key_exchange",
            "authentication",
            "encryption",
        ] {
            assert!(c[field].is_string(), "{field}: {c}");
        }
        assert!(c["used_bits"].as_u64().is_some_and(|b| b >= 128), "{c}");
        assert!(c["supported_bits"].is_u64(), "{c}");
        assert!(
            ["TlsV1_2", "TlsV1_3"].contains(&c["protocol"].as_str().unwrap_or_default()),
            "{c}"
        );
    }
    let find = |name: &str| ciphers.iter().find(|c| c["name"] == name).cloned();
    let chacha = find("TLS_CHACHA20_POLY1305_SHA256").ok_or("no TLS 1.3 ChaCha20")?;
    assert_eq!(chacha["protocol"], "TlsV1_3");
    assert_eq!(chacha["used_bits"], 256);
    let ecdhe = find("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").ok_or("no ECDHE-RSA")?;
    assert_eq!(ecdhe["openssl_name"], "ECDHE-RSA-AES128-GCM-SHA256");
    assert_eq!(ecdhe["key_exchange"], "ECDH");
    assert_eq!(ecdhe["authentication"], "RSA");
    assert_eq!(ecdhe["encryption"], "AESGCM(128)");
    assert_eq!(ecdhe["protocol"], "TlsV1_2");

    // Every listed name is accepted by --ciphers (checked without a network: bad input
    // would be exit 2 before connecting; a refused port is exit 3).
    let names: Vec<&str> = ciphers.iter().filter_map(|c| c["name"].as_str()).collect();
    let out = run(&os_args![
        "connect",
        "127.0.0.1:9",
        "--ciphers",
        names.join(":"),
        "--timeout",
        "2000"
    ])?;
    assert_eq!(exit_code(&out), Some(3), "{out}");

    let out = run(&os_args!["ciphers"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert!(out.stdout.contains("ECDHE-RSA-AES128-GCM-SHA256"), "{out}");
    assert_eq!(out.stdout.lines().count(), ciphers.len(), "{out}");

    let out = run(&os_args!["backends", "--json"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let list = report(&out)?;
    let backends = list.as_array().ok_or("not a list")?;
    let rustls = backends
        .iter()
        .find(|b| b["name"] == "rustls")
        .ok_or("no rustls backend")?;
    assert_eq!(rustls["active"], true);
    assert_eq!(
        backends.iter().filter(|b| b["active"] == true).count(),
        1,
        "{list}"
    );
    assert!(
        rustls["library_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("rustls ")),
        "{rustls}"
    );
    let strings = |field: &str| -> Vec<String> {
        rustls[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        strings("protocols").contains(&"TlsV1_3".to_string()),
        "{rustls}"
    );
    assert!(
        strings("protocols").contains(&"SecureProtocols".to_string()),
        "{rustls}"
    );
    assert!(
        strings("features").contains(&"CertificateVerification".to_string()),
        "{rustls}"
    );
    assert!(
        strings("classes").contains(&"Certificate".to_string()),
        "{rustls}"
    );
    Ok(())
}

// ----- cert -------------------------------------------------------------------------------

/// What `openssl x509` says about the first certificate of `file`, keyed by its labels
/// (`subject`, `issuer`, `serial`, `sha256 Fingerprint`, `sha1 Fingerprint`, `notBefore`,
/// `notAfter`).
fn openssl_x509(file: &Path) -> BoxResult<Vec<(String, String)>> {
    let mut text = openssl_ok(&os_args![
        "x509",
        "-in",
        file,
        "-noout",
        "-subject",
        "-issuer",
        "-nameopt",
        "RFC2253",
        "-serial",
        "-fingerprint",
        "-sha256"
    ])?
    .stdout;
    text.push_str(
        &openssl_ok(&os_args![
            "x509",
            "-in",
            file,
            "-noout",
            "-fingerprint",
            "-sha1"
        ])?
        .stdout,
    );
    text.push_str(
        &openssl_ok(&os_args![
            "x509", "-in", file, "-noout", "-dates", "-dateopt", "iso_8601"
        ])?
        .stdout,
    );
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> BoxResult<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| format!("openssl printed no {key}: {fields:?}").into())
}

/// `AB:CD:...` as `abcd...`.
fn plain_hex(fingerprint: &str) -> String {
    fingerprint.replace(':', "").to_lowercase()
}

/// A serial as `openssl x509 -serial` prints it. The contract's `serial` is the DER
/// INTEGER's content octets, which keep the sign octet `00` in front of a magnitude whose
/// first bit is set (rcgen's random 20-octet serials start with `00` about once in 256);
/// OpenSSL prints the magnitude.
fn magnitude(serial: &str) -> &str {
    match serial.strip_prefix("00") {
        Some(rest) if rest.starts_with(['8', '9', 'a', 'b', 'c', 'd', 'e', 'f']) => rest,
        _ => serial,
    }
}

/// Our JSON for one certificate against openssl's view of the same certificate.
fn assert_agrees(ours: &Value, file: &Path) -> TestResult {
    let theirs = openssl_x509(file)?;
    assert_eq!(ours["subject"], field(&theirs, "subject")?, "{ours}");
    assert_eq!(ours["issuer"], field(&theirs, "issuer")?, "{ours}");
    assert_eq!(
        magnitude(ours["serial"].as_str().unwrap_or_default()),
        field(&theirs, "serial")?.to_lowercase(),
        "{ours}"
    );
    assert_eq!(
        ours["sha256"],
        plain_hex(field(&theirs, "sha256 Fingerprint")?),
        "{ours}"
    );
    assert_eq!(
        ours["sha1"],
        plain_hex(field(&theirs, "sha1 Fingerprint")?),
        "{ours}"
    );
    // openssl: `2026-01-01 00:00:00Z`; ours: `2026-01-01T00:00:00Z`.
    assert_eq!(
        ours["not_before"].as_str().map(|d| d.replacen('T', " ", 1)),
        Some(field(&theirs, "notBefore")?.to_string()),
        "{ours}"
    );
    assert_eq!(
        ours["not_after"].as_str().map(|d| d.replacen('T', " ", 1)),
        Some(field(&theirs, "notAfter")?.to_string()),
        "{ours}"
    );
    Ok(())
}

fn extension<'a>(cert: &'a Value, name: &str) -> Option<&'a Value> {
    cert["extensions"]
        .as_array()
        .and_then(|list| list.iter().find(|e| e["name"] == name))
}

#[test]
fn cert_json_agrees_with_openssl_x509() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let rsa = pki.rsa_leaf("rsa.example", &["rsa.example"])?;
    // A subject with several attributes and characters RFC 4514 escapes.
    let multi_key = pki.dir.path().join("multi.key.pem");
    let multi = pki.dir.path().join("multi.pem");
    openssl_ok(&os_args![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        multi_key,
        "-out",
        multi,
        "-days",
        "10",
        "-set_serial",
        "0xFE93",
        "-subj",
        "/C=DE/O=Example, Inc./OU=Tests\\+More/CN=multi.example",
        "-addext",
        "subjectAltName=DNS:multi.example,email:ops@multi.example,IP:::1"
    ])?;
    let der = pki.dir.path().join("leaf.der");
    fs::write(&der, &leaf.cert_der)?;

    // One array over every certificate of every file, in order: the PEM chain (leaf,
    // intermediate), a DER file, the root, the RSA leaf, the multi-attribute one.
    let files: Vec<PathBuf> = vec![
        leaf.chain_pem.clone(),
        der.clone(),
        pki.root_pem().to_path_buf(),
        rsa.cert_pem.clone(),
        multi.clone(),
    ];
    let mut args = os_args!["cert", "--json"];
    args.extend(files.iter().map(OsString::from));
    let out = run(&args)?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let list = report(&out)?;
    // The contract's one object: `certificates`, and `errors` (none: files are not
    // verified).
    assert_eq!(list["errors"].as_array().map(Vec::len), Some(0), "{list}");
    let certs = list["certificates"].as_array().ok_or("no certificates")?;
    assert_eq!(certs.len(), 6, "{list}");

    let (leaf_json, intermediate, from_der, root, rsa_json, multi_json) = (
        &certs[0], &certs[1], &certs[2], &certs[3], &certs[4], &certs[5],
    );
    assert_agrees(leaf_json, &leaf.cert_pem)?;
    assert_agrees(intermediate, pki.intermediate_pem())?;
    assert_agrees(from_der, &leaf.cert_pem)?;
    assert_agrees(root, pki.root_pem())?;
    assert_agrees(rsa_json, &rsa.cert_pem)?;
    assert_agrees(multi_json, &multi)?;
    // The contract's serial keeps the DER sign octet; openssl's does not.
    assert_eq!(multi_json["serial"], "00fe93");
    assert_eq!(
        multi_json["subject"],
        "CN=multi.example,OU=Tests\\+More,O=Example\\, Inc.,C=DE"
    );

    // Where each one came from.
    assert_eq!(leaf_json["file"], leaf.chain_pem.display().to_string());
    assert_eq!(leaf_json["index"], 0);
    assert_eq!(intermediate["index"], 1);
    assert_eq!(from_der["file"], der.display().to_string());
    assert_eq!(from_der["sha256"], sha256_of(&leaf.cert_der)?);

    // Names for people, version, self-signed, SANs, public keys.
    assert_eq!(leaf_json["subject_display_name"], "localhost");
    assert_eq!(leaf_json["issuer_display_name"], "Test Intermediate CA");
    assert_eq!(multi_json["subject_display_name"], "multi.example");
    assert_eq!(leaf_json["version"], 3);
    assert_eq!(leaf_json["self_signed"], false);
    assert_eq!(root["self_signed"], true);
    assert_eq!(multi_json["self_signed"], true);
    assert_eq!(
        leaf_json["san"],
        serde_json::json!(["DNS:localhost", "IP:127.0.0.1"])
    );
    assert_eq!(
        multi_json["san"],
        serde_json::json!(["DNS:multi.example", "email:ops@multi.example", "IP:::1"])
    );
    // `connect`'s chain-entry form, with the size beside it.
    for (entry, name, bits) in [
        (leaf_json, "EC P-256", 256),
        (rsa_json, "RSA 2048", 2048),
        (multi_json, "EC P-384", 384),
    ] {
        assert_eq!(entry["public_key"], name, "{entry}");
        assert_eq!(entry["public_key_bits"], bits, "{entry}");
    }

    // Extensions: name, OID, criticality, value as `openssl x509 -text` shows it.
    let basic = extension(rsa_json, "basicConstraints").ok_or("no basicConstraints")?;
    assert_eq!(basic["oid"], "2.5.29.19");
    assert_eq!(basic["critical"], true);
    assert_eq!(basic["value"], "CA:FALSE");
    let eku = extension(rsa_json, "extendedKeyUsage").ok_or("no extendedKeyUsage")?;
    assert_eq!(eku["oid"], "2.5.29.37");
    assert_eq!(eku["critical"], false);
    assert_eq!(
        eku["value"],
        "TLS Web Server Authentication, TLS Web Client Authentication"
    );
    let root_basic = extension(root, "basicConstraints").ok_or("no basicConstraints")?;
    assert_eq!(root_basic["value"], "CA:TRUE");
    let san = extension(multi_json, "subjectAltName").ok_or("no subjectAltName")?;
    assert_eq!(san["oid"], "2.5.29.17");
    let openssl_san = openssl_ok(&os_args![
        "x509",
        "-in",
        multi,
        "-noout",
        "-ext",
        "subjectAltName"
    ])?
    .stdout;
    let openssl_san = openssl_san.lines().nth(1).unwrap_or_default().trim();
    assert_eq!(san["value"], openssl_san);

    // The readable form says the same things.
    let out = run(&os_args!["cert", leaf.chain_pem, multi])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    for needle in [
        "subject: CN=localhost",
        "issuer: CN=Test Intermediate CA",
        "subject: CN=Test Intermediate CA",
        "version: 3",
        "public key: Ec, 384 bits",
        "basicConstraints (2.5.29.19, critical)",
        "san: DNS:multi.example, email:ops@multi.example, IP:::1",
        &format!("sha256: {}", sha256_of(&leaf.cert_der)?),
        &format!(
            "sha1: {}",
            leaf_json["sha1"].as_str().unwrap_or("missing sha1")
        ),
    ] {
        assert!(out.stdout.contains(needle), "{needle}:\n{out}");
    }
    Ok(())
}

/// Subjects whose RFC 4514 form the library writes differently from `openssl x509
/// -nameopt RFC2253`, which the contract names as the reference (library bugs, see the
/// messages). Each certificate is made by `openssl req` with a config file.
#[test]
fn cert_subject_forms_as_openssl_prints_them() -> TestResult {
    let pki = Pki::new()?;
    let cases = [
        // A multi-valued RDN: OpenSSL reverses every attribute (XN_FLAG_DN_REV works on
        // the flat entry list), so `CN=x+OU=A`; the library reverses the RDNs only and
        // keeps the SET's order inside one: `OU=A+CN=x`.
        ("multi", "[dn]\nO = Example\nOU = A\n+CN = multi.example\n"),
        // Non-ASCII: OpenSSL escapes every byte over 0x7f (ASN1_STRFLGS_ESC_MSB):
        // `CN=Gr\C3\BC\C3\9Fe`; the library writes the UTF-8 as is.
        ("utf8", "[dn]\nCN = Grüße\n"),
        // An attribute type without a short name: RFC 4514 §2.4 and OpenSSL hex-encode
        // the whole BER encoding of the value, tag and length included
        // (`1.2.3.4=#0C03666F6F`); the library encodes only the content octets
        // (`1.2.3.4=#666f6f`).
        ("oid", "[dn]\nmyattr = foo\nCN = x\n"),
    ];
    let mut differences = Vec::new();
    for (stem, dn) in cases {
        let config = pki.dir.path().join(format!("{stem}.cnf"));
        fs::write(
            &config,
            format!(
                "oid_section = oids\n[oids]\nmyattr = 1.2.3.4\n\
                 [req]\ndistinguished_name = dn\nprompt = no\nutf8 = yes\n\
                 string_mask = utf8only\n{dn}"
            ),
        )?;
        let cert = pki.dir.path().join(format!("{stem}.pem"));
        let key = pki.dir.path().join(format!("{stem}.key.pem"));
        openssl_ok(&os_args![
            "req",
            "-x509",
            "-config",
            config,
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1"
        ])?;
        let out = run(&os_args!["cert", "--json", cert])?;
        assert_eq!(exit_code(&out), Some(0), "{out}");
        let ours = report(&out)?["certificates"][0]["subject"].clone();
        let theirs = openssl_x509(&cert)?;
        let theirs = field(&theirs, "subject")?;
        if ours != theirs {
            differences.push(format!("{stem}: ours {ours}, openssl {theirs}"));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
    Ok(())
}

#[test]
fn cert_rejects_missing_and_malformed_files() -> TestResult {
    let pki = Pki::new()?;
    let dir = pki.dir.path();
    let truncated = dir.join("truncated.pem");
    let text = fs::read_to_string(pki.root_pem())?;
    fs::write(&truncated, &text[..text.len() / 2])?;
    let garbage_der = dir.join("garbage.der");
    fs::write(&garbage_der, [0x30, 0x82, 0xff, 0xff, 0x01])?;
    let empty = dir.join("empty.pem");
    fs::write(&empty, "")?;
    for bad in [
        dir.join("missing.pem"),
        truncated,
        garbage_der,
        empty,
        dir.to_path_buf(),
    ] {
        // A good file before the bad one: still nothing on stdout.
        let out = run(&os_args!["cert", "--json", pki.root_pem(), bad])?;
        assert_eq!(exit_code(&out), Some(2), "{bad:?}: {out}");
        assert!(one_stderr_line(&out), "{bad:?}: {out}");
        assert!(out.stdout.is_empty(), "{bad:?}: {out}");
    }
    Ok(())
}

// ----- --pass -------------------------------------------------------------------------------

/// `key` re-encrypted as PKCS#8 with PBES2/AES-256-CBC under `secret`.
fn encrypt_key(key: &Path, out: &Path) -> TestResult {
    openssl_ok(&os_args![
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-passout",
        "pass:secret",
        "-in",
        key,
        "-out",
        out
    ])?;
    assert!(fs::read_to_string(out)?.contains("BEGIN ENCRYPTED PRIVATE KEY"));
    Ok(())
}

#[test]
fn encrypted_keys_with_pass_end_to_end() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let server_key = pki.dir.path().join("server.enc.pem");
    encrypt_key(&leaf.key_pem, &server_key)?;
    let client = pki.client_cert(true)?;
    let client_key = pki.dir.path().join("client.enc.pem");
    encrypt_key(&client.key_pem, &client_key)?;

    // The server's key and the client's key are both encrypted; the server requires a
    // client certificate.
    let serve = Serve::start(&os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        server_key,
        "--pass",
        "secret",
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--verify",
        "verify"
    ])?;
    let out = run(&os_args![
        "connect",
        serve.address,
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--cert",
        client.chain_pem,
        "--key",
        client_key,
        "--pass",
        "secret",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert_eq!(
        report(&out)?["peer_certificate_chain"][0]["sha256"],
        sha256_of(&leaf.cert_der)?
    );
    let line = serve.connection_line(0)?;
    assert_eq!(line["event"], "encrypted", "{line}");
    assert_eq!(
        line["peer_certificate_chain"][0]["sha256"],
        sha256_of(&client.cert_der)?
    );

    // Wrong or missing passphrase: bad input, one clear line, before listening.
    let cases = [(Some("wrong"), "passphrase"), (None, "no passphrase given")];
    for (pass, message) in cases {
        let mut args = os_args![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--cert",
            leaf.chain_pem,
            "--key",
            server_key
        ];
        if let Some(pass) = pass {
            args.extend(os_args!["--pass", pass]);
        }
        let out = run(&args)?;
        assert_eq!(exit_code(&out), Some(2), "{pass:?}: {out}");
        assert!(one_stderr_line(&out), "{pass:?}: {out}");
        assert!(out.stderr.contains(message), "{pass:?}: {out}");
        assert!(out.stdout.is_empty(), "{pass:?}: {out}");
    }
    let out = run(&os_args![
        "connect",
        "127.0.0.1:9",
        "--cert",
        client.chain_pem,
        "--key",
        client_key,
        "--pass",
        "wrong"
    ])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(one_stderr_line(&out), "{out}");
    Ok(())
}

// ----- --verify-depth ---------------------------------------------------------------------

/// A CA that signs: rcgen's issuer and the certificate's DER.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let now = time::OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - time::Duration::days(2);
    params.not_after = now + time::Duration::days(365);
    params.use_authority_key_identifier_extension = true;
    params
}

impl Ca {
    fn root(cn: &str) -> BoxResult<Ca> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(cn);
        let der = params.self_signed(&key)?.der().to_vec();
        Ok(Ca {
            issuer: Issuer::new(params, key),
            der,
        })
    }

    fn sub(&self, cn: &str) -> BoxResult<Ca> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(cn);
        let der = params.signed_by(&key, &self.issuer)?.der().to_vec();
        Ok(Ca {
            issuer: Issuer::new(params, key),
            der,
        })
    }
}

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

#[test]
fn verify_depth_limits_the_intermediates() -> TestResult {
    // root → intermediate → sub-intermediate → leaf; the server sends leaf, sub, int.
    let root = Ca::root("Depth Root CA")?;
    let intermediate = root.sub("Depth Intermediate CA")?;
    let sub = intermediate.sub("Depth Sub Intermediate CA")?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&key, &sub.issuer)?.der().to_vec();

    let dir = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> BoxResult<PathBuf> {
        let path = dir.path().join(name);
        fs::write(&path, text)?;
        Ok(path)
    };
    let root_pem = write("root.pem", &pem_of(&root.der))?;
    let leaf_pem = write("leaf.pem", &pem_of(&leaf))?;
    let key_pem = write("leaf.key.pem", &key.serialize_pem())?;
    let chain_pem = write(
        "chain.pem",
        &format!("{}{}", pem_of(&sub.der), pem_of(&intermediate.der)),
    )?;
    let server = OpensslServer::start(&os_args![
        "-cert",
        leaf_pem,
        "-key",
        key_pem,
        "-cert_chain",
        chain_pem
    ])?;
    let target = format!("localhost:{}", server.port());

    // Two intermediates are needed: a limit of 2 or none (0) verifies.
    for depth in ["0", "2", "3"] {
        let out = run(&connect_args(
            &target,
            &root_pem,
            &["--verify-depth", depth],
        ))?;
        assert_eq!(exit_code(&out), Some(0), "depth {depth}: {out}");
        assert_eq!(report(&out)?["errors"], serde_json::json!([]), "{out}");
    }

    // A limit of 1: OpenSSL stops at the certificate two above the leaf (the
    // intermediate) with CERT_CHAIN_TOO_LONG (Qt: UnspecifiedError) and then
    // UNABLE_TO_GET_ISSUER_CERT_LOCALLY, both on it.
    let out = run(&connect_args(&target, &root_pem, &["--verify-depth", "1"]))?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(r["encrypted"], false);
    assert_eq!(r["socket_error"], "SslHandshakeFailedError", "{r}");
    assert_eq!(
        error_names(&r),
        vec![
            "UnspecifiedError".to_string(),
            "UnableToGetLocalIssuerCertificate".to_string()
        ],
        "{r}"
    );
    let intermediate_sha = sha256_of(&intermediate.der)?;
    for error in r["errors"].as_array().ok_or("no errors")? {
        assert_eq!(error["certificate"]["subject"], "CN=Depth Intermediate CA");
        assert_eq!(error["certificate"]["sha256"], intermediate_sha);
    }
    // The chain is reported as sent, all three.
    assert_eq!(
        r["peer_certificate_chain"].as_array().map(Vec::len),
        Some(3)
    );

    // The readable report lists the errors too.
    let out = run(&os_args![
        "connect",
        target,
        "--cafile",
        root_pem,
        "--no-system-ca",
        "--verify-depth",
        "1"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert!(out.stdout.contains("verification errors:"), "{out}");
    assert!(
        out.stdout.contains("UnableToGetLocalIssuerCertificate"),
        "{out}"
    );

    // Ignoring both errors lets the handshake through, still listing them.
    let out = run(&connect_args(
        &target,
        &root_pem,
        &[
            "--verify-depth",
            "1",
            "--ignore",
            "UnspecifiedError",
            "--ignore",
            "UnableToGetLocalIssuerCertificate",
        ],
    ))?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert_eq!(error_names(&report(&out)?).len(), 2, "{out}");
    Ok(())
}
