//! Adversarial review of the command line's file inputs (certificates, keys, CA files)
//! against the contract (cli-contract.md). Certificates and keys are made at test time.

mod common;

use std::path::Path;
use std::process::Command;

use common::support::{os_args, Pki};
use common::{exit_code, report, run, TestResult};

/// Runs the `openssl` command in `dir`; its stdout.
fn openssl(dir: &Path, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Contract: `subject` and `issuer` are RFC 4514 strings "as `openssl x509 -nameopt
/// RFC2253` prints them". For the attributes of every EV certificate (businessCategory,
/// jurisdictionC, postalCode, organizationIdentifier) `cert --json` prints
/// `2.5.4.15=#0C14...` where OpenSSL prints `businessCategory=Private Organization`
/// (the library's name.rs knows 15 attribute types only).
#[test]
fn cert_json_subject_of_an_ev_certificate_is_openssls_rfc2253_form() -> TestResult {
    let dir = tempfile::tempdir()?;
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ev.key",
            "-out",
            "ev.pem",
            "-days",
            "30",
            "-subj",
            "/CN=ev.example/businessCategory=Private Organization/jurisdictionC=US\
             /postalCode=12345/O=Example",
        ],
    )?;
    let expected = openssl(
        dir.path(),
        &[
            "x509", "-in", "ev.pem", "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    )?;
    let expected = expected.trim().trim_start_matches("subject=");
    let out = run(&os_args!["cert", dir.path().join("ev.pem"), "--json"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let json = report(&out)?;
    let entry = &json["certificates"][0];
    assert_eq!(entry["subject"].as_str(), Some(expected), "{out}");
    assert_eq!(entry["issuer"].as_str(), Some(expected), "{out}");
    Ok(())
}

/// Contract: `--cafile`/`--cert` files are PEM or DER; "A large but valid file ... is
/// accepted", a malformed one is exit 2. A valid DER certificate whose subject contains
/// the text `-----BEGIN ` is taken for PEM (the library looks for the marker anywhere in
/// the bytes) and refused with exit 2 "no CERTIFICATE block found", while `openssl x509
/// -inform DER` reads it.
#[test]
fn a_der_certificate_with_a_pem_marker_in_its_subject_is_read() -> TestResult {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["marker.example".to_string()])?;
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "-----BEGIN CERTIFICATE-----",
    );
    let der = params.self_signed(&key)?.der().to_vec();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("marker.der");
    std::fs::write(&file, &der)?;
    openssl(
        dir.path(),
        &["x509", "-inform", "DER", "-in", "marker.der", "-noout"],
    )?;
    let out = run(&os_args!["cert", &file, "--json"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    Ok(())
}

/// Contract: "a key that does not match its certificate" is exit 2 with "a clear message
/// on stderr". With `--backend openssl`, a key of another *type* (RSA key, ECDSA
/// certificate) gives exit 2 with OpenSSL's raw error stack ("error:0A0000B1:SSL
/// routines:SSL_CTX_check_private_key:no certificate assigned:../ssl/ssl_lib.c:1639:"),
/// not the library's KeyMismatch sentence the rustls backend prints.
#[test]
fn a_key_of_another_type_is_a_clear_key_mismatch_on_every_backend() -> TestResult {
    let pki = Pki::new()?;
    let ec_leaf = pki.leaf("localhost", &["localhost"])?;
    let rsa_leaf = pki.rsa_leaf("rsa.example", &["rsa.example"])?;
    let mut backends = vec!["rustls"];
    if cfg!(feature = "openssl") {
        backends.push("openssl");
    }
    for backend in backends {
        // No peer is needed: the mismatch must be found before the network is touched.
        let out = run(&os_args![
            "connect",
            "127.0.0.1:9",
            "--backend",
            backend,
            "--cert",
            &ec_leaf.cert_pem,
            "--key",
            &rsa_leaf.key_pem,
            "--timeout",
            "2000"
        ])?;
        assert_eq!(exit_code(&out), Some(2), "{backend}: {out}");
        assert!(
            out.stderr
                .contains("the private key is not the certificate's"),
            "{backend}: not the clear key-mismatch message: {}",
            out.stderr.trim()
        );
    }
    Ok(())
}
