//! Round 37: the verifier's remaining differences between the backends (own work and
//! reviews). Run on both backends: `cargo test -p sslsocket --all-features --test
//! trust_round37` and the same with `SSLSOCKET_BACKEND=openssl`.
#![cfg(feature = "openssl")]

mod support;

use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::{AlertType, SslErrorKind, SslEvent};
use support::{active_backend, trusting, Blocking, ClientDriver, OpensslServer, Pki, Tokio};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// The errors a refused client listed, the alerts it reported sending, s_server's output.
type Refusal = (Vec<SslErrorKind>, Vec<AlertType>, String);

/// Our client, trusting the PKI, against s_server presenting a leaf whose CN is
/// `localhost` and whose only subject alternative name is the IP 127.0.0.1, connected as
/// `localhost`: the errors it listed, the alerts it reported sending, and s_server's output.
fn refused_by_name<D: ClientDriver>(pki: &Pki) -> Result<Refusal, Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["127.0.0.1"])?;
    let mut args = leaf.openssl_args();
    args.push("-tls1_3".into());
    let server = OpensslServer::start(&args)?;
    let mut failed = match D::connect_encrypted("localhost", server.port(), trusting(pki)?, WAIT) {
        Ok(_) => return Err("a leaf without a DNS name for localhost was accepted".into()),
        Err((_, Some(failed))) => failed,
        Err((e, None)) => return Err(format!("no socket kept: {e}").into()),
    };
    let errors = failed
        .socket()
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    let sent = failed
        .socket()
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            SslEvent::AlertSent(a) => Some(a.kind),
            _ => None,
        })
        .collect();
    let _ = server.wait_for_output("alert number", Duration::from_secs(3));
    Ok((errors, sent, server.output()))
}

// Was a defect (round 36, review L8): a host name only our RFC 6125 rule refuses (a
// subject alternative name without any DNS name, and a common name OpenSSL's own check
// matches) was refused on the OpenSSL backend with handshake_failure (the application's
// refusal, X509_V_ERR_APPLICATION_VERIFICATION), on rustls with bad_certificate. Now the
// OpenSSL backend gives the kind OpenSSL's own code for it (62, hostname mismatch), whose
// alert is bad_certificate, as OpenSSL would send had it found the mismatch itself.
#[test]
fn a_host_name_only_our_rule_refuses_sends_bad_certificate_on_both_backends() -> TestResult {
    let pki = Pki::new()?;
    for (driver, (errors, sent, output)) in [
        ("blocking", refused_by_name::<Blocking>(&pki)?),
        ("tokio", refused_by_name::<Tokio>(&pki)?),
    ] {
        let backend = active_backend();
        assert_eq!(
            errors,
            [SslErrorKind::HostNameMismatch],
            "{backend}, {driver}: the errors listed"
        );
        assert_eq!(
            sent,
            [AlertType::BadCertificate],
            "{backend}, {driver}: the alert sent"
        );
        assert!(
            output.contains("alert number 42"),
            "{backend}, {driver}: s_server did not get bad_certificate:\n{output}"
        );
    }
    Ok(())
}
