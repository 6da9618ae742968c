//! `connect --pin sha256/BASE64`: pins match the verified path only (leaf up to the trust
//! anchor), never a certificate the peer appended. Real `openssl s_server` peers on
//! 127.0.0.1, PKI made at test time.

mod common;

use std::ffi::OsString;

use base64::Engine as _;
use common::support::{os_args, IssuedBy, LeafSpec, OpensslServer, Pki};
use common::{error_names, exit_code, report, run, TestResult};
use sslsocket::SslCertificate;

fn pin_of(der: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let digest = SslCertificate::from_der(der)?.public_key_sha256();
    Ok(format!(
        "sha256/{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

#[test]
fn a_pin_on_the_verified_path_is_accepted_and_an_appended_one_is_not() -> TestResult {
    let pki = Pki::new()?;
    let intermediate_pin = pin_of(pki.intermediate_der())?;

    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let target = format!("localhost:{}", server.port());
    let connect_pinned = |pins: &[&str]| {
        let mut args = os_args![
            "connect",
            &target,
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--json"
        ];
        for pin in pins {
            args.extend(os_args!["--pin", pin]);
        }
        run(&args)
    };
    let out = connect_pinned(&[&intermediate_pin])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert_eq!(report(&out)?["errors"], serde_json::json!([]));

    // A pin that is not on the path: rejected on the leaf.
    let other = pin_of(pki.untrusted_root_der())?;
    let out = connect_pinned(&[&other])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    let r = report(&out)?;
    assert_eq!(error_names(&r), vec!["CertificateRejected".to_string()]);
    // The hint says what it means and names the one option that accepts this peer: a
    // pin on its own key (an ignore list never lifts a pin mismatch).
    let hint = r["errors"][0]["hint"].as_str().ok_or("no hint")?;
    let leaf_pin = pin_of(&leaf.cert_der)?;
    assert!(hint.contains("--pin"), "{hint}");
    assert!(hint.contains(&leaf_pin), "{hint} does not name {leaf_pin}");
    assert!(!hint.contains("--ignore "), "{hint}");
    let out = connect_pinned(&[&other, &leaf_pin])?;
    assert_eq!(exit_code(&out), Some(0), "following the hint: {out}");
    drop(server);

    // Mis-issued by another trusted CA, with the pinned intermediate appended.
    let misissued = pki.issue(&LeafSpec {
        issued_by: IssuedBy::UntrustedRoot,
        ..LeafSpec::new("localhost", &["localhost"])
    })?;
    let appended = pki.dir.path().join("appended.pem");
    let mut chain = std::fs::read_to_string(pki.untrusted_root_pem())?;
    chain.push_str(&std::fs::read_to_string(pki.intermediate_pem())?);
    std::fs::write(&appended, chain)?;
    let mut args: Vec<OsString> =
        os_args!["-cert", &misissued.cert_pem, "-key", &misissued.key_pem];
    args.extend(os_args!["-cert_chain", &appended]);
    let server = OpensslServer::start(&args)?;
    let out = run(&os_args![
        "connect",
        format!("localhost:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--cafile",
        pki.untrusted_root_pem(),
        "--no-system-ca",
        "--pin",
        &intermediate_pin,
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert!(
        error_names(&report(&out)?).contains(&"CertificateRejected".to_string()),
        "{out}"
    );
    Ok(())
}

#[test]
fn a_pin_holds_under_verify_none_query_and_ignore_all_errors() -> TestResult {
    // An untrusted self-signed server: nothing but the pin can vouch for it.
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["localhost"], false)?;
    let leaf_pin = pin_of(&leaf.cert_der)?;
    let other = pin_of(pki.untrusted_root_der())?;
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let target = format!("localhost:{}", server.port());
    let lenient: [&[&str]; 3] = [
        &["--verify", "none"],
        &["--verify", "query"],
        &["--ignore-all-errors"],
    ];
    for options in lenient {
        let connect = |pin: &str| {
            let mut args = os_args!["connect", &target, "--no-system-ca", "--json", "--pin", pin];
            args.extend(options.iter().map(OsString::from));
            run(&args)
        };
        let out = connect(&other)?;
        assert_eq!(exit_code(&out), Some(1), "{options:?}: {out}");
        let names = error_names(&report(&out)?);
        assert!(
            names.contains(&"CertificateRejected".to_string()),
            "{options:?}: {out}"
        );
        if options == ["--verify", "none"] {
            assert_eq!(names, vec!["CertificateRejected".to_string()], "{out}");
        }

        let out = connect(&leaf_pin)?;
        assert_eq!(exit_code(&out), Some(0), "{options:?}: {out}");
        assert!(
            !error_names(&report(&out)?).contains(&"CertificateRejected".to_string()),
            "{options:?}: {out}"
        );
    }
    Ok(())
}

#[test]
fn a_malformed_pin_is_exit_2() -> TestResult {
    for pin in ["sha1/AAAA", "sha256/not base64!", "sha256/AAAA"] {
        let out = run(&os_args!["connect", "localhost:1", "--pin", pin])?;
        assert_eq!(exit_code(&out), Some(2), "{pin}: {out}");
        assert!(out.stderr.contains("--pin"), "{out}");
    }
    Ok(())
}
