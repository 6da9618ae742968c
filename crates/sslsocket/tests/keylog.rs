//! Opt-in key logging writes the NSS key log format: the very lines `openssl s_server
//! -keylogfile` writes for the same connection.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use sslsocket::blocking::SslSocket;
use sslsocket::{SslCertificate, SslConfiguration};
use support::{os_args, wait_until, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_key_log_has_the_same_nss_lines_as_openssls_for_the_same_connection() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let ours = pki.dir.path().join("ours.keylog");
    let theirs = pki.dir.path().join("theirs.keylog");
    // The only test of this binary that connects: the variable is read when the engine
    // is built.
    std::env::set_var("SSLKEYLOGFILE", &ours);
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-keylogfile", &theirs, "-quiet"]);
    let server = OpensslServer::start(&args)?;

    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(SslCertificate::from_file(pki.root_pem())?);
    configuration.set_key_logging(true);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(Duration::from_secs(10))?;
    socket.close()?;

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let both = || {
        let a = std::fs::read_to_string(&ours).unwrap_or_default();
        let b = std::fs::read_to_string(&theirs).unwrap_or_default();
        lines(&a).len() >= 5 && lines(&b).len() >= 5
    };
    assert!(wait_until(deadline, both), "key logs were not written");
    let ours = lines(&std::fs::read_to_string(&ours)?);
    let theirs = lines(&std::fs::read_to_string(&theirs)?);
    for line in &ours {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert_eq!(fields[1].len(), 64, "client random: {line}");
        assert!(fields[2].chars().all(|c| c.is_ascii_hexdigit()), "{line}");
    }
    let labels: BTreeSet<&str> = ours.iter().filter_map(|l| l.split(' ').next()).collect();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    ] {
        assert!(labels.contains(label), "{label} missing: {ours:?}");
    }
    let common = ours.intersection(&theirs).count();
    assert!(common >= 4, "ours {ours:?}\ntheirs {theirs:?}");
    Ok(())
}

#[test]
fn without_opting_in_nothing_is_logged() -> TestResult {
    let configuration = SslConfiguration::default();
    assert!(!configuration.key_logging());
    Ok(())
}
