//! Proves `tests/support` against real OpenSSL: the PKI verifies (or fails) exactly as
//! intended, and the peers start, talk, time out and die on drop.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{
    openssl_run, openssl_version, os_args, wait_until, Eku, IssuedBy, KeyAlg, LeafSpec,
    OpensslClient, OpensslServer, Pki, Validity,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn openssl_verify_accepts_the_good_leaf_and_rejects_the_expired_one() -> TestResult {
    let pki = Pki::new()?;
    let good = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let expired = pki.expired_leaf("localhost", &["localhost"])?;

    let out = openssl_run(
        &os_args![
            "verify",
            "-CAfile",
            pki.root_pem(),
            "-untrusted",
            pki.intermediate_pem(),
            good.cert_pem,
        ],
        b"",
        CLIENT_TIMEOUT,
    )?;
    assert!(out.success(), "{out}");
    assert!(out.stdout.trim_end().ends_with(": OK"), "{out}");

    let out = openssl_run(
        &os_args![
            "verify",
            "-CAfile",
            pki.root_pem(),
            "-untrusted",
            pki.intermediate_pem(),
            expired.cert_pem,
        ],
        b"",
        CLIENT_TIMEOUT,
    )?;
    assert!(!out.success(), "{out}");
    assert!(
        out.combined()
            .contains("error 10 at 0 depth lookup: certificate has expired"),
        "{out}"
    );
    Ok(())
}

#[test]
fn openssl_verify_reports_the_self_signed_leaf_as_self_signed() -> TestResult {
    let pki = Pki::new()?;
    let valid = pki.self_signed_leaf(&["localhost"], false)?;
    let expired = pki.self_signed_leaf(&["localhost"], true)?;

    let out = pki.openssl_verify(&valid, &[])?;
    assert!(!out.success(), "{out}");
    assert!(
        out.combined()
            .contains("error 18 at 0 depth lookup: self-signed certificate"),
        "{out}"
    );
    assert!(!out.combined().contains("expired"), "{out}");
    assert_eq!(valid.chain_der.len(), 1);
    assert!(valid.intermediates_pem.is_none());

    let out = pki.openssl_verify(&expired, &[])?;
    assert!(out.combined().contains("self-signed certificate"), "{out}");
    assert!(out.combined().contains("certificate has expired"), "{out}");
    Ok(())
}

#[test]
fn openssl_verify_accepts_the_rsa_leaf_made_with_the_openssl_cli() -> TestResult {
    let pki = Pki::new()?;
    let rsa = pki.rsa_leaf("localhost", &["localhost", "127.0.0.1"])?;

    let out = pki.openssl_verify(
        &rsa,
        &[
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "localhost",
            "-verify_ip",
            "127.0.0.1",
        ],
    )?;
    assert!(out.success(), "{out}");

    let text = openssl_run(
        &os_args!["x509", "-noout", "-text", "-in", rsa.cert_pem],
        b"",
        CLIENT_TIMEOUT,
    )?;
    assert!(text.stdout.contains("Public-Key: (2048 bit)"), "{text}");
    assert!(
        text.stdout.contains("Issuer: CN = Test Intermediate CA"),
        "{text}"
    );
    assert_eq!(rsa.chain_der.len(), 2);
    assert_eq!(
        rsa.chain_der.get(1).map(Vec::as_slice),
        Some(pki.intermediate_der())
    );
    Ok(())
}

#[test]
fn openssl_verify_names_the_one_defect_of_each_broken_leaf() -> TestResult {
    let pki = Pki::new()?;
    let server = ["-purpose", "sslserver", "-verify_hostname", "localhost"];
    let cases = [
        (
            pki.not_yet_valid_leaf("localhost", &["localhost"])?,
            "error 9 at 0 depth lookup: certificate is not yet valid",
        ),
        (
            pki.untrusted_leaf("localhost", &["localhost"])?,
            "error 19 at 1 depth lookup: self-signed certificate in certificate chain",
        ),
        (
            pki.wrong_eku_leaf("localhost", &["localhost"])?,
            "error 26 at 0 depth lookup: unsuitable certificate purpose",
        ),
        (
            pki.leaf_under_non_ca_intermediate("localhost", &["localhost"])?,
            "error 79 at 1 depth lookup: invalid CA certificate",
        ),
        (
            pki.pathlen_violation_leaf("localhost", &["localhost"])?,
            "error 25 at 2 depth lookup: path length constraint exceeded",
        ),
        (
            pki.leaf("other.test", &["other.test"])?,
            "error 62 at 0 depth lookup: hostname mismatch",
        ),
    ];
    for (issued, expected) in &cases {
        let out = pki.openssl_verify(issued, &server)?;
        assert!(!out.success(), "{out}");
        assert!(
            out.combined().contains(expected),
            "expected {expected:?} in {out}"
        );
    }
    assert_eq!(cases.get(4).map(|(i, _)| i.chain_der.len()), Some(3));
    Ok(())
}

#[test]
fn openssl_verify_matches_wildcard_ip_and_cn_only_leaves_as_intended() -> TestResult {
    let pki = Pki::new()?;
    let wildcard = pki.wildcard_leaf("*.example.test")?;
    assert!(pki
        .openssl_verify(&wildcard, &["-verify_hostname", "a.example.test"])?
        .success());
    assert!(!pki
        .openssl_verify(&wildcard, &["-verify_hostname", "a.b.example.test"])?
        .success());

    let ip = pki.ip_only_leaf("127.0.0.1")?;
    assert!(pki
        .openssl_verify(&ip, &["-verify_ip", "127.0.0.1"])?
        .success());
    assert!(!pki
        .openssl_verify(&ip, &["-verify_ip", "127.0.0.2"])?
        .success());
    assert!(!pki
        .openssl_verify(&ip, &["-verify_hostname", "localhost"])?
        .success());

    // OpenSSL falls back to the CN when there is no SAN; the leaf really has none.
    let cn_only = pki.leaf_without_san("localhost")?;
    assert!(pki
        .openssl_verify(&cn_only, &["-verify_hostname", "localhost"])?
        .success());
    let text = openssl_run(
        &os_args!["x509", "-noout", "-text", "-in", cn_only.cert_pem],
        b"",
        CLIENT_TIMEOUT,
    )?;
    assert!(!text.stdout.contains("Subject Alternative Name"), "{text}");
    Ok(())
}

#[test]
fn client_certificates_verify_for_client_use_only_when_trusted() -> TestResult {
    let pki = Pki::new()?;
    let client = ["-purpose", "sslclient"];
    let trusted = pki.client_cert(true)?;
    let out = pki.openssl_verify(&trusted, &client)?;
    assert!(out.success(), "{out}");
    assert!(!pki
        .openssl_verify(&trusted, &["-purpose", "sslserver"])?
        .success());

    let untrusted = pki.client_cert(false)?;
    let out = pki.openssl_verify(&untrusted, &client)?;
    assert!(
        out.combined()
            .contains("self-signed certificate in certificate chain"),
        "{out}"
    );
    Ok(())
}

#[test]
fn every_key_algorithm_and_issuer_of_the_spec_verifies_when_nothing_is_wrong() -> TestResult {
    let pki = Pki::new()?;
    for key in [KeyAlg::EcdsaP256, KeyAlg::EcdsaP384, KeyAlg::Ed25519] {
        for issued_by in [IssuedBy::Intermediate, IssuedBy::Root] {
            let spec = LeafSpec {
                key,
                issued_by,
                eku: Eku::ServerOnly,
                validity: Validity::Current,
                ..LeafSpec::new("spec.test", &["spec.test"])
            };
            let issued = pki.issue(&spec)?;
            let out = pki.openssl_verify(
                &issued,
                &["-purpose", "sslserver", "-verify_hostname", "spec.test"],
            )?;
            assert!(out.success(), "{spec:?}: {out}");
        }
    }
    Ok(())
}

#[test]
fn s_client_completes_a_verified_handshake_with_the_server_leaf() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;

    let args = os_args![
        "-verify_return_error",
        "-CAfile",
        pki.root_pem(),
        "-servername",
        "localhost",
        "-verify_hostname",
        "localhost",
        "-brief",
    ];
    let out = OpensslClient::run(server.port(), &args, b"", CLIENT_TIMEOUT)?;
    assert!(out.success(), "{out}\nserver:\n{}", server.output());
    assert!(out.stderr.contains("CONNECTION ESTABLISHED"), "{out}");
    assert!(out.stderr.contains("Verification: OK"), "{out}");

    // Without -brief: the full report, chain sent by the server included.
    let args = os_args![
        "-verify_return_error",
        "-CAfile",
        pki.root_pem(),
        "-servername",
        "localhost"
    ];
    let out = OpensslClient::run(server.port(), &args, b"", CLIENT_TIMEOUT)?;
    assert!(out.stdout.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.stdout.contains("i:CN = Test Intermediate CA"), "{out}");
    Ok(())
}

#[test]
fn s_client_rejects_the_expired_leaf_with_verify_return_error() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;

    let args = os_args!["-verify_return_error", "-CAfile", pki.root_pem(), "-brief"];
    let out = OpensslClient::run(server.port(), &args, b"", CLIENT_TIMEOUT)?;
    assert!(!out.success(), "{out}");
    assert!(out.combined().contains("certificate has expired"), "{out}");
    Ok(())
}

#[test]
fn streaming_client_talks_to_a_rev_server_line_by_line() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut args = leaf.openssl_args();
    args.push("-rev".into());
    let server = OpensslServer::start(&args)?;

    let mut client = OpensslClient::spawn(
        server.port(),
        &os_args!["-CAfile", pki.root_pem(), "-quiet"],
    )?;
    client.write_stdin(b"hello support\n")?;
    client.wait_for_output("troppus olleh", CLIENT_TIMEOUT)?;
    client.write_stdin(b"again\n")?;
    client.wait_for_output("niaga", CLIENT_TIMEOUT)?;
    Ok(())
}

#[test]
fn quiet_www_server_is_found_listening_and_serves_a_page() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-www", "-quiet"]);
    let server = OpensslServer::start(&args)?;

    let out = OpensslClient::run(
        server.port(),
        &os_args!["-CAfile", pki.root_pem(), "-quiet"],
        b"GET / HTTP/1.0\r\n\r\n",
        CLIENT_TIMEOUT,
    )?;
    assert!(out.success(), "{out}");
    assert!(out.stdout.starts_with("HTTP/1.0 200 ok"), "{out}");
    Ok(())
}

#[test]
fn client_that_outlives_its_timeout_is_killed_and_flagged() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;

    // -ign_eof: the client waits for the server to close, which it never does.
    let started = Instant::now();
    let out = OpensslClient::run(
        server.port(),
        &os_args!["-CAfile", pki.root_pem(), "-ign_eof"],
        b"",
        Duration::from_millis(500),
    )?;
    assert!(out.timed_out, "{out}");
    assert!(!out.success());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(out.stdout.contains("Verify return code: 0 (ok)"), "{out}");
    Ok(())
}

#[test]
fn server_stops_listening_when_dropped() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;
    let addr = server.addr();
    assert!(server.stdout().contains("ACCEPT"));
    TcpStream::connect(addr)?;

    drop(server);
    let gone = wait_until(Instant::now() + Duration::from_secs(2), || {
        TcpStream::connect(addr).is_err()
    });
    assert!(gone, "s_server still accepts on {addr} after drop");
    Ok(())
}

#[test]
fn server_that_cannot_start_fails_with_its_output() -> TestResult {
    let Err(error) = OpensslServer::start(&["-cert", "/nonexistent/cert.pem"]) else {
        return Err("s_server started with a missing certificate".into());
    };
    let message = error.to_string();
    assert!(message.contains("exited"), "{message}");
    assert!(message.contains("/nonexistent/cert.pem"), "{message}");
    assert!(
        openssl_version().starts_with("OpenSSL"),
        "{}",
        openssl_version()
    );
    Ok(())
}
