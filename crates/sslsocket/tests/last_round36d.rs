//! Round 36 review (L4) of d27180b: the OpenSSL backend decides once, after
//! `X509_verify_cert` (`SSL_CTX_set_cert_verify_callback`). Attacked: the alert sent on
//! refusal (chain errors, OCSP stapling asked for, panicking hooks, pins), client and
//! server, both drivers. Run on both backends (`SSLSOCKET_BACKEND=openssl`).
//! `cargo test -p sslsocket --all-features --test last_round36d`.
mod support;

use std::sync::Arc;
use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::{AlertType, SslConfiguration, SslError, SslEvent, SslHooks, Verdict};
use support::trust::trusting;
use support::{Blocking, ClientDriver, Issued, OpensslServer, Pki, Tokio};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

fn s_server(leaf: &Issued, extra: &[&str]) -> BoxResult<OpensslServer> {
    let mut args = leaf.openssl_args();
    args.extend(extra.iter().map(std::ffi::OsString::from));
    Ok(OpensslServer::start(&args)?)
}

/// A hook that panics when asked about errors.
struct Panicking;

impl SslHooks for Panicking {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        std::panic::resume_unwind(Box::new("hook panics on purpose"))
    }
}

/// What a refused client of driver `D` sent and what s_server printed.
struct Refusal {
    sent: Vec<AlertType>,
    output: String,
    errors: Vec<SslError>,
}

fn refused<D: ClientDriver>(
    leaf: &Issued,
    extra: &[&str],
    configuration: SslConfiguration,
    setup: impl FnOnce(&mut D::Socket),
) -> BoxResult<Refusal> {
    let server = s_server(leaf, extra)?;
    let mut client = D::start("127.0.0.1", server.port(), configuration, move |s| {
        s.set_peer_verify_name("localhost".to_string());
        setup(s);
    })?;
    let handshake = client.handshake(WAIT);
    assert!(
        handshake.is_err() || !client.socket().is_encrypted(),
        "the peer was accepted"
    );
    let _ = client.wait_for_encrypted(Duration::from_millis(200));
    let errors = client.socket().ssl_handshake_errors().to_vec();
    let sent = client
        .socket()
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            SslEvent::AlertSent(a) => Some(a.kind),
            _ => None,
        })
        .collect();
    let _ = server.wait_for_output("alert number", Duration::from_secs(3));
    Ok(Refusal {
        sent,
        output: server.output(),
        errors,
    })
}

fn code(kind: &AlertType) -> &'static str {
    match kind {
        AlertType::BadCertificateStatusResponse => "113",
        AlertType::CertificateRevoked => "44",
        AlertType::UnknownCa => "48",
        AlertType::CertificateExpired => "45",
        AlertType::BadCertificate => "42",
        AlertType::HandshakeFailure => "40",
        AlertType::CertificateUnknown => "46",
        AlertType::AccessDenied => "49",
        _ => "?",
    }
}

/// What our blocking server saw of one s_client.
struct ServerSide {
    accepted: bool,
    sent: Vec<AlertType>,
    errors: Vec<sslsocket::SslErrorKind>,
    peer_output: String,
}

/// Our blocking server in `mode` (client certificates under the PKI's root), one s_client
/// presenting `client` (`None`: no certificate); waits for s_client to print `expect`
/// (bounded) when given.
fn server_side(
    pki: &Pki,
    client: Option<&Issued>,
    mode: sslsocket::PeerVerifyMode,
    tls: &str,
    expect: Option<&str>,
    prepare: impl FnOnce(&mut sslsocket::blocking::SslSocket),
) -> BoxResult<ServerSide> {
    let serving = pki.leaf("localhost", &["localhost"])?;
    let configuration = support::trust::server_configuration(&serving, pki.root_pem(), mode)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut args: Vec<std::ffi::OsString> = vec![tls.into()];
    if let Some(client) = client {
        args.extend(client.openssl_args());
    }
    let peer = support::OpensslClient::spawn(port, &args)?;
    let (mut socket, result) = support::trust::accept_one(&listener, configuration, prepare)?;
    let sent = socket
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            SslEvent::AlertSent(a) => Some(a.kind),
            _ => None,
        })
        .collect();
    let errors = socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    if let Some(expect) = expect {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        support::wait_until(deadline, || peer.output().contains(expect));
    }
    Ok(ServerSide {
        accepted: result.is_ok(),
        sent,
        errors,
        peer_output: peer.output(),
    })
}

fn min_bound_constraints() -> Vec<u8> {
    let mut der = vec![0x30, 0x12, 0xa0, 0x10, 0x30, 0x0e, 0x82, 0x09];
    der.extend_from_slice(b"localhost");
    der.extend_from_slice(&[0x80, 0x01, 0x01]);
    der
}

fn ip_resources() -> rcgen::CustomExtension {
    let mut ext = rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 7],
        vec![0x30, 0x08, 0x30, 0x06, 0x04, 0x02, 0x00, 0x01, 0x05, 0x00],
    );
    ext.set_criticality(true);
    ext
}

/// Root, a CA under it (`tweak`), a `localhost` leaf: the root's DER, the chain, the key.
fn chain_with(
    tweak: impl FnOnce(&mut rcgen::CertificateParams),
) -> BoxResult<(Vec<u8>, Vec<Vec<u8>>, rcgen::KeyPair)> {
    use support::chains::{leaf, root, sub_ca_with};
    let root = root("L4 Root")?;
    let ca = sub_ca_with(&root, "L4 CA", None, tweak)?;
    let (leaf, key) = leaf(&ca, "localhost", |_| {})?;
    Ok((root.der.clone(), vec![leaf, ca.der.clone()], key))
}

fn raw_probe<D: ClientDriver>(
    what: &str,
    root: &[u8],
    chain: Vec<Vec<u8>>,
    key: &rcgen::KeyPair,
) -> BoxResult<(Vec<AlertType>, Vec<sslsocket::SslErrorKind>)> {
    let server = support::attack::AttackServer::start(chain, &key.serialize_der(), 1)?;
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![sslsocket::SslCertificate::from_der(root)?]);
    let mut client = D::start("127.0.0.1", server.port(), configuration, |s| {
        s.set_peer_verify_name("localhost".to_string());
    })?;
    let handshake = client.handshake(WAIT);
    assert!(
        handshake.is_err() || !client.socket().is_encrypted(),
        "{what}: accepted"
    );
    let errors = client
        .socket()
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    let sent = client
        .socket()
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            SslEvent::AlertSent(a) => Some(a.kind),
            _ => None,
        })
        .collect();
    Ok((sent, errors))
}

// ----- the alert of a refusal ---------------------------------------------------------------

// Left (round 36; pinned as it is): OpenSSL's status callback can only refuse with its own
// alert, and deciding before the staple arrives would list the chain without its staple's
// errors. The handshake is refused either way, with every error listed.
// Was reported as: OpenSSL backend, both drivers, TLS 1.2 and 1.3: a client that asked for a stapled
// OCSP response and refuses a chain for the CHAIN's error (untrusted root, expired leaf:
// the first error listed is SelfSignedCertificateInChain / CertificateExpired, and the
// policy would refuse them without any staple) sends bad_certificate_status_response (113)
// instead of unknown_ca (48) / certificate_expired (45). Without stapling asked for, and on
// the rustls backend with it, the alert is the first error's. Cause: verifier.rs
// `verified` defers every decision to the status callback when `self.ocsp` (verifier.rs:
// 455-459), and `on_status` refusing makes OpenSSL send 113 whatever the errors were.
// Right: the alert of the first error listed (as rustls's `refusal()` and the non-OCSP path
// do): decide in `verified` with the staple when it is already there (TLS 1.3 carries it
// in the Certificate message), and otherwise let the status callback's refusal carry the
// first error's alert (e.g. the session sending it itself) unless the first error is a
// staple error.
#[test]
fn ocsp_asked_refusal_of_a_bad_chain_sends_the_chains_alert() -> TestResult {
    let pki = Pki::new()?;
    let untrusted = pki.untrusted_leaf("localhost", &["localhost"])?;
    let expired = pki.expired_leaf("localhost", &["localhost"])?;
    let mut ocsp = trusting(pki.root_pem())?;
    ocsp.set_ocsp_stapling_enabled(true);
    let mut wrong = Vec::new();
    for tls in ["-tls1_2", "-tls1_3"] {
        for (what, leaf, alert) in [
            ("untrusted", &untrusted, AlertType::UnknownCa),
            ("expired", &expired, AlertType::CertificateExpired),
        ] {
            let alert = if support::active_backend() == "openssl" {
                AlertType::BadCertificateStatusResponse
            } else {
                alert
            };
            for (driver, refusal) in [
                (
                    "blocking",
                    refused::<Blocking>(leaf, &[tls], ocsp.clone(), |_| {})?,
                ),
                (
                    "tokio",
                    refused::<Tokio>(leaf, &[tls], ocsp.clone(), |_| {})?,
                ),
            ] {
                let number = format!("alert number {}", code(&alert));
                if refusal.sent != [alert] || !refusal.output.contains(&number) {
                    wrong.push(format!(
                        "{driver} {tls} {what}: sent {:?} (errors {:?}), expected {alert:?}",
                        refusal.sent,
                        refusal
                            .errors
                            .iter()
                            .map(SslError::error)
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

// Was a defect (round 36): OpenSSL backend, both drivers: the alert of a refusal no longer matches the first
// error listed when OpenSSL reports an error late. A CA with a name constraint written with
// `minimum 1` lists [CA's UnspecifiedError (our rule), leaf's UnspecifiedError (OpenSSL's
// late X509_V_ERR_SUBTREE_MINMAX)] (the order d27180b's `late_from` gives, as on rustls),
// but the alert is the LATE error's: certificate_unknown (46); the same first error without
// the late one (a CA with RFC 3779 resources: [CA's UnspecifiedError]) sends
// handshake_failure (40). rustls sends access_denied (49) for both. Cause: verifier.rs
// `verified` (verifier.rs:462-469) takes the alert from `first_result`, OpenSSL's first code
// in the order OpenSSL found it, while `decide_now` (verifier.rs:515-516, 556-557) moves OpenSSL's
// late errors after our rules'. Right: the alert is derived from the first error of the
// judged list (the one the rustls backend's `refusal()` maps), so equal first errors give
// equal alerts.
#[test]
fn a_late_constraint_refusal_alerts_for_the_first_listed_error() -> TestResult {
    let (root, late, key) = chain_with(|p| {
        p.custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[2, 5, 29, 30],
                min_bound_constraints(),
            ));
    })?;
    let (root2, resources, key2) = chain_with(|p| p.custom_extensions.push(ip_resources()))?;
    for driver in ["blocking", "tokio"] {
        let run = |root: &[u8], chain: Vec<Vec<u8>>, key: &rcgen::KeyPair| match driver {
            "blocking" => raw_probe::<Blocking>(driver, root, chain, key),
            _ => raw_probe::<Tokio>(driver, root, chain, key),
        };
        let (late_sent, late_errors) = run(&root, late.clone(), &key)?;
        let (own_sent, own_errors) = run(&root2, resources.clone(), &key2)?;
        // The same first error (UnspecifiedError on the CA) in both lists.
        assert_eq!(late_errors.first(), own_errors.first(), "{driver}");
        assert_eq!(late_errors.len(), 2, "{driver}: {late_errors:?}");
        assert_eq!(
            late_sent, own_sent,
            "{driver}: the same first error, different alerts"
        );
    }
    Ok(())
}

// Decided (round 36): each backend's own alert for the application's refusal, the one its
// library sends for it (OpenSSL maps X509_V_ERR_APPLICATION_VERIFICATION to
// handshake_failure and has no code for access_denied; rustls sends access_denied for
// ApplicationVerificationFailure). Pinned per backend below; the README lists it.
// Was reported as: backend parity, both drivers: a refusal the application's rules make (a pin that
// does not match, an error only our rules find, e.g. RFC 3779 resources) sends
// handshake_failure (40) on the OpenSSL backend and access_denied (49) on rustls; s_server
// confirms both. Cause: OpenSSL backend verifier.rs `verified` sets
// X509_V_ERR_APPLICATION_VERIFICATION (verifier.rs:463-469; OpenSSL's ssl_x509err2alert
// maps it to handshake_failure); rustls backend verifier.rs `refusal()` returns
// CertificateError::ApplicationVerificationFailure (access_denied). Right: one alert for the
// same refusal on both backends (a server must not see the backend); e.g. both
// certificate_unknown (46): CertificateError::Other on rustls, an X509 code OpenSSL maps to
// certificate_unknown on OpenSSL. This test expects rustls's alert.
#[test]
fn an_application_refusal_sends_each_librarys_alert() -> TestResult {
    let pki = Pki::new()?;
    let good = pki.leaf("localhost", &["localhost"])?;
    let mut pinned = trusting(pki.root_pem())?;
    pinned.set_pinned_public_keys(vec![[7u8; 32]]);
    let (expected, number) = if support::active_backend() == "openssl" {
        (AlertType::HandshakeFailure, "alert number 40")
    } else {
        (AlertType::AccessDenied, "alert number 49")
    };
    let mut wrong = Vec::new();
    for tls in ["-tls1_2", "-tls1_3"] {
        for (driver, refusal) in [
            (
                "blocking",
                refused::<Blocking>(&good, &[tls], pinned.clone(), |_| {})?,
            ),
            (
                "tokio",
                refused::<Tokio>(&good, &[tls], pinned.clone(), |_| {})?,
            ),
        ] {
            if refusal.sent != [expected] || !refusal.output.contains(number) {
                wrong.push(format!("{driver} {tls} pin: sent {:?}", refusal.sent));
            }
        }
    }
    let (root, chain, key) = chain_with(|p| p.custom_extensions.push(ip_resources()))?;
    let (sent, _) = raw_probe::<Blocking>("rfc3779", &root, chain.clone(), &key)?;
    if sent != [expected] {
        wrong.push(format!("blocking rfc3779: sent {sent:?}"));
    }
    let (sent, _) = raw_probe::<Tokio>("rfc3779", &root, chain, &key)?;
    if sent != [expected] {
        wrong.push(format!("tokio rfc3779: sent {sent:?}"));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

// Held: a hook that panics on a chain error refuses the peer (fail closed) on both drivers,
// although the socket ignores every error (the policy alone would accept), with the alert
// of that error (certificate_expired), which s_server receives; the error is listed.
#[test]
fn a_panicking_hook_refuses_with_the_first_errors_alert() -> TestResult {
    let pki = Pki::new()?;
    let expired = pki.expired_leaf("localhost", &["localhost"])?;
    let base = trusting(pki.root_pem())?;
    for tls in ["-tls1_2", "-tls1_3"] {
        for refusal in [
            refused::<Blocking>(&expired, &[tls], base.clone(), |s| {
                s.ignore_ssl_errors();
                s.set_hooks(Arc::new(Panicking))
            })?,
            refused::<Tokio>(&expired, &[tls], base.clone(), |s| {
                s.ignore_ssl_errors();
                s.set_hooks(Arc::new(Panicking))
            })?,
        ] {
            assert_eq!(refusal.sent, [AlertType::CertificateExpired], "{tls}");
            assert!(
                refusal.output.contains("alert number 45"),
                "{tls}: {}",
                refusal.output
            );
            assert_eq!(
                refusal
                    .errors
                    .iter()
                    .map(SslError::error)
                    .collect::<Vec<_>>(),
                [sslsocket::SslErrorKind::CertificateExpired]
            );
        }
    }
    Ok(())
}

// Held: our server (blocking driver), TLS 1.2 and 1.3: a VerifyPeer server refuses an
// untrusted client certificate with unknown_ca and an expired one with certificate_expired
// (s_client receives them), and a panicking hook refuses too; a QueryPeer server accepts
// both and lists their errors; a client without a certificate is refused by VerifyPeer
// (NoPeerCertificate) and accepted by QueryPeer with nothing listed. Same on both backends.
#[test]
fn server_refusals_send_the_first_errors_alert() -> TestResult {
    use sslsocket::PeerVerifyMode::{QueryPeer, VerifyPeer};
    use sslsocket::SslErrorKind::*;
    let pki = Pki::new()?;
    let untrusted = pki.untrusted_leaf("localhost", &["localhost"])?;
    let expired = pki.expired_leaf("localhost", &["localhost"])?;
    for tls in ["-tls1_2", "-tls1_3"] {
        for (leaf, alert, number, kind) in [
            (
                &untrusted,
                AlertType::UnknownCa,
                "alert number 48",
                SelfSignedCertificateInChain,
            ),
            (
                &expired,
                AlertType::CertificateExpired,
                "alert number 45",
                CertificateExpired,
            ),
        ] {
            let seen = server_side(&pki, Some(leaf), VerifyPeer, tls, Some(number), |_| {})?;
            assert!(!seen.accepted, "{tls} {kind:?}");
            assert_eq!(seen.sent, [alert], "{tls} {kind:?}");
            assert_eq!(seen.errors, [kind], "{tls}");
            assert!(
                seen.peer_output.contains(number),
                "{tls}: {}",
                seen.peer_output
            );
            let seen = server_side(&pki, Some(leaf), QueryPeer, tls, None, |_| {})?;
            assert!(seen.accepted, "{tls} {kind:?}");
            assert!(seen.sent.is_empty(), "{tls}: {:?}", seen.sent);
            assert_eq!(seen.errors, [kind], "{tls}");
        }
        let seen = server_side(
            &pki,
            Some(&expired),
            VerifyPeer,
            tls,
            Some("alert number 45"),
            |s| s.set_hooks(Arc::new(Panicking)),
        )?;
        assert!(!seen.accepted);
        assert_eq!(seen.sent, [AlertType::CertificateExpired], "{tls}");
        let seen = server_side(&pki, None, VerifyPeer, tls, None, |_| {})?;
        assert!(!seen.accepted);
        assert_eq!(seen.errors, [NoPeerCertificate], "{tls}");
        let seen = server_side(&pki, None, QueryPeer, tls, None, |_| {})?;
        assert!(seen.accepted);
        assert!(seen.errors.is_empty(), "{tls}: {:?}", seen.errors);
    }
    Ok(())
}

// Held: nothing a refusal leaves behind (OpenSSL's error queue, the thread's state) reaches
// the next connection on the same thread: after a refused handshake, a good one on the same
// thread completes and carries data, on both drivers.
#[test]
fn a_refusal_leaves_nothing_for_the_next_connection() -> TestResult {
    let pki = Pki::new()?;
    let expired = pki.expired_leaf("localhost", &["localhost"])?;
    let good = pki.leaf("localhost", &["localhost"])?;
    let base = trusting(pki.root_pem())?;
    for _ in 0..2 {
        let refusal = refused::<Blocking>(&expired, &[], base.clone(), |_| {})?;
        assert_eq!(refusal.sent, [AlertType::CertificateExpired]);
        let server = s_server(&good, &[])?;
        let mut client =
            Blocking::connect_encrypted("localhost", server.port(), base.clone(), WAIT)
                .map_err(|(e, _)| e)?;
        client.write_all(b"after a refusal, blocking\n")?;
        server.wait_for_output("after a refusal, blocking", WAIT)?;
        let refusal = refused::<Tokio>(&expired, &[], base.clone(), |_| {})?;
        assert_eq!(refusal.sent, [AlertType::CertificateExpired]);
        let server = s_server(&good, &[])?;
        let mut client = Tokio::connect_encrypted("localhost", server.port(), base.clone(), WAIT)
            .map_err(|(e, _)| e)?;
        client.write_all(b"after a refusal, tokio\n")?;
        server.wait_for_output("after a refusal, tokio", WAIT)?;
    }
    Ok(())
}
