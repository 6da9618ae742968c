//! Review round 34: what the library caches or reuses across sockets, connections and
//! handshakes (engine caches per configuration value, client and server session stores
//! with their remembered verification outcomes, the default configuration, OCSP data),
//! attacked for trust: a first connection, then a second one with a stricter or different
//! setting, which must not be weakened by anything the first left behind.

mod support;

use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    IgnoreRule, PeerVerifyMode, SslCertificate, SslConfiguration, SslError, SslErrorKind, SslEvent,
    SslProtocol,
};
use support::{serving, trusting, Issued, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);
/// How long a client waits after its handshake for the server's TLS 1.3 tickets.
const TICKETS: Duration = Duration::from_millis(300);

// ----- helpers ------------------------------------------------------------------------

fn kinds(errors: &[SslError]) -> Vec<SslErrorKind> {
    errors.iter().map(SslError::error).collect()
}

/// The two drivers.
#[derive(Clone, Copy, Debug)]
enum Driver {
    Blocking,
    Tokio,
}

/// One connection on `driver` with `configuration` to `localhost:port`: (encrypted,
/// resumed, errors). An encrypted connection waits for the server's tickets, then closes
/// cleanly (a tokio socket dropped without `close` sends no close_notify, and OpenSSL
/// then marks its session not resumable).
fn connect(
    driver: Driver,
    configuration: &SslConfiguration,
    port: u16,
) -> (bool, bool, Vec<SslError>) {
    match driver {
        Driver::Blocking => {
            let mut socket = SslSocket::with_configuration(configuration.clone());
            socket.connect_to_host_encrypted("localhost", port);
            let encrypted = socket.wait_for_encrypted(WAIT).is_ok();
            if encrypted {
                let _ = socket.wait_for_ready_read(TICKETS);
            }
            let outcome = (
                encrypted,
                socket.is_session_resumed(),
                socket.ssl_handshake_errors().to_vec(),
            );
            let _ = socket.close();
            outcome
        }
        Driver::Tokio => {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return (false, false, Vec::new());
            };
            runtime.block_on(async {
                let connecting = sslsocket::tokio::SslSocket::connect_to_host_encrypted(
                    "localhost",
                    port,
                    configuration.clone(),
                );
                match tokio::time::timeout(WAIT, connecting).await {
                    Ok(Ok(mut socket)) => {
                        let _ = tokio::time::timeout(TICKETS, socket.wait_for_ready_read()).await;
                        let outcome = (
                            true,
                            socket.is_session_resumed(),
                            socket.ssl_handshake_errors().to_vec(),
                        );
                        let _ = tokio::time::timeout(WAIT, socket.close()).await;
                        outcome
                    }
                    Ok(Err(failed)) => {
                        let errors = failed
                            .into_socket()
                            .map(|s| s.ssl_handshake_errors().to_vec())
                            .unwrap_or_default();
                        (false, false, errors)
                    }
                    Err(_) => (false, false, Vec::new()),
                }
            })
        }
    }
}

// ----- DER surgery for an OCSP response with chosen dates ----------------------------

/// (tag, header length, content length) of the TLV at the start of `der`.
fn tlv(der: &[u8]) -> BoxResult<(u8, usize, usize)> {
    let tag = *der.first().ok_or("DER: empty")?;
    let first = *der.get(1).ok_or("DER: no length")?;
    if first < 0x80 {
        return Ok((tag, 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | usize::from(*der.get(2 + i).ok_or("DER: short length")?);
    }
    Ok((tag, 2 + n, len))
}

/// The TLVs inside the content of the TLV `der` (whole encodings).
fn children(der: &[u8]) -> BoxResult<Vec<Vec<u8>>> {
    let (_, header, len) = tlv(der)?;
    let mut rest = der.get(header..header + len).ok_or("DER: short")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (_, h, l) = tlv(rest)?;
        out.push(rest.get(..h + l).ok_or("DER: short child")?.to_vec());
        rest = rest.get(h + l..).ok_or("DER: short child")?;
    }
    Ok(out)
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The offsets of the contents of every GeneralizedTime in `der`, in order.
fn generalized_times(der: &[u8], base: usize, found: &mut Vec<(usize, usize)>) -> BoxResult<()> {
    let mut rest = der;
    let mut at = base;
    while !rest.is_empty() {
        let (tag, h, l) = tlv(rest)?;
        if tag == 0x18 {
            found.push((at + h, l));
        } else if tag & 0x20 != 0 {
            generalized_times(rest.get(h..h + l).ok_or("DER: short")?, at + h, found)?;
        }
        rest = rest.get(h + l..).ok_or("DER: short")?;
        at += h + l;
    }
    Ok(())
}

/// `unix` as a GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn generalized_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn now_unix() -> BoxResult<i64> {
    Ok(i64::try_from(
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    )?)
}

/// A "good" OCSP response about `leaf` (signed by its issuer, the intermediate) whose
/// producedAt and thisUpdate are an hour ago and whose nextUpdate is `next_update` (Unix
/// seconds): `openssl ocsp`'s response with its dates rewritten and signed again.
fn ocsp_good_until(pki: &Pki, leaf: &Issued, name: &str, next_update: i64) -> BoxResult<Vec<u8>> {
    let path = support::ocsp_response(pki, leaf, false, name)?;
    let response = std::fs::read(path)?;
    // OCSPResponse { status, [0] { SEQUENCE { OID, OCTET STRING basic } } }
    let outer = children(&response)?;
    let status = outer.first().ok_or("no status")?.clone();
    let bytes = children(outer.get(1).ok_or("no responseBytes")?)?;
    let inner = children(bytes.first().ok_or("no responseBytes sequence")?)?;
    let oid = inner.first().ok_or("no response type")?.clone();
    let octets = inner.get(1).ok_or("no response")?;
    let (_, h, l) = tlv(octets)?;
    let basic = octets.get(h..h + l).ok_or("short response")?.to_vec();
    // BasicOCSPResponse { tbsResponseData, signatureAlgorithm, signature, [0] certs }
    let parts = children(&basic)?;
    let mut tbs = parts.first().ok_or("no tbsResponseData")?.clone();
    let algorithm = parts.get(1).ok_or("no signature algorithm")?.clone();
    let certs = parts.get(3).cloned().unwrap_or_default();
    let mut times = Vec::new();
    generalized_times(&tbs, 0, &mut times)?;
    // producedAt, thisUpdate, nextUpdate.
    if times.len() != 3 || times.iter().any(|(_, len)| *len != 15) {
        return Err(format!("unexpected OCSP dates: {times:?}").into());
    }
    let earlier = generalized_time(now_unix()? - 3600);
    let later = generalized_time(next_update);
    for (index, (at, len)) in times.iter().enumerate() {
        let text = if index == 2 { &later } else { &earlier };
        tbs.get_mut(*at..*at + *len)
            .ok_or("date out of range")?
            .copy_from_slice(text.as_bytes());
    }
    let dir = pki.dir.path();
    let tbs_path = dir.join(format!("{name}.tbs"));
    let sig_path = dir.join(format!("{name}.sig"));
    std::fs::write(&tbs_path, &tbs)?;
    let signed = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("intermediate.key.pem"))
        .arg("-out")
        .arg(&sig_path)
        .arg(&tbs_path)
        .output()?;
    if !signed.status.success() {
        return Err(format!("openssl dgst: {}", String::from_utf8_lossy(&signed.stderr)).into());
    }
    let signature = std::fs::read(&sig_path)?;
    let mut bit_string = vec![0u8];
    bit_string.extend(signature);
    let basic = encode(
        0x30,
        &[tbs, algorithm, encode(0x03, &bit_string), certs].concat(),
    );
    let bytes = encode(0x30, &[oid, encode(0x04, &basic)].concat());
    Ok(encode(0x30, &[status, encode(0xa0, &bytes)].concat()))
}

// ----- OCSP: the staple behind a session goes stale ----------------------------------

/// A strict OCSP client (stapling asked for, `VerifyPeer`) of driver `D`: its first
/// connection verified a staple still within its validity (and Qt's minute), so it is
/// encrypted with no error and the session is stored. Once the staple's nextUpdate is
/// more than a minute past, a full handshake with the very same server and staple
/// reports `OcspResponseExpired` and fails (the control below, on a fresh configuration
/// value). Round 33's rule for certificates ("a resumed handshake must not accept what a
/// full one now refuses", `Outcome::valid_until`) applies to the revocation evidence the
/// original handshake was accepted on as well.
fn stale_staple_case(
    driver: Driver,
    port: u16,
    client: &SslConfiguration,
    fresh: &SslConfiguration,
) -> BoxResult<(bool, bool, Vec<SslErrorKind>, bool, bool)> {
    let (control_encrypted, _, control_errors) = connect(driver, fresh, port);
    let (encrypted, resumed, _) = connect(driver, client, port);
    Ok((
        control_encrypted,
        control_errors.is_empty(),
        kinds(&control_errors),
        encrypted,
        resumed,
    ))
}

// Was a defect (round 34): a session made while the stapled OCSP response was valid is resumed after that
// response expired: the stored outcome's `valid_until` (verify/verifier.rs ChainReport,
// verify/checks.rs path_checks) covers the certificates' notAfter only, not the
// nextUpdate of the response a strict-OCSP client accepted the peer on. A full handshake
// with the same server now fails with OcspResponseExpired; the resumed one is encrypted
// with no error at all. Right: with OCSP stapling enabled, `valid_until` also takes the
// checked response's nextUpdate (+ the 60 s tolerance), so the session is not offered
// (nor accepted by judge_resumed) once the evidence expired and a full handshake decides.
#[test]
fn a_session_is_not_resumed_after_the_ocsp_response_it_was_accepted_on_expired() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    // Valid for 8 more seconds under the 60 s tolerance.
    let next_update = now_unix()? - 52;
    let staple = ocsp_good_until(&pki, &leaf, "stale", next_update)?;
    let mut server_configuration = serving(&leaf)?;
    server_configuration.set_ocsp_response(Some(staple));
    let server = SslServer::listen("127.0.0.1:0", server_configuration)?;
    let port = server.local_addr().port();
    let mut strict = trusting(&pki)?;
    strict
        .set_ocsp_stapling_enabled(true)
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer);
    // One configuration value (so one session store) per driver.
    let blocking = strict.clone().set_protocol(SslProtocol::TlsV1_3).clone();
    let tokio = strict.clone().set_protocol(SslProtocol::TlsV1_3).clone();
    for (name, configuration) in [(Driver::Blocking, &blocking), (Driver::Tokio, &tokio)] {
        let (encrypted, resumed, errors) = connect(name, configuration, port);
        assert!(
            encrypted,
            "{name:?}: the fresh staple was refused: {errors:?}"
        );
        assert!(!resumed && errors.is_empty(), "{name:?}: {errors:?}");
    }
    // Past nextUpdate + 60 s.
    let until = next_update + 63;
    while now_unix()? <= until {
        thread::sleep(Duration::from_millis(250));
    }
    let mut failures = Vec::new();
    for (name, configuration) in [(Driver::Blocking, &blocking), (Driver::Tokio, &tokio)] {
        let fresh = strict.clone().set_protocol(SslProtocol::TlsV1_3).clone();
        let (control_encrypted, control_clean, control_kinds, encrypted, resumed) =
            stale_staple_case(name, port, configuration, &fresh)?;
        // The control: a full handshake now refuses the stale staple.
        assert!(
            !control_encrypted && !control_clean,
            "{name:?}: control encrypted"
        );
        assert!(
            control_kinds.contains(&SslErrorKind::OcspResponseExpired),
            "{name:?}: {control_kinds:?}"
        );
        if encrypted {
            failures.push(format!(
                "{name:?}: encrypted on the stale staple's session (resumed: {resumed})"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    Ok(())
}

// ----- a server made stricter between two connections of one client ------------------

/// A server that asked for no certificate (`QueryPeer`, nothing trusted for clients)
/// issues a ticket; it is then reloaded to require a certificate from the test root
/// (`VerifyPeer`, a missing certificate fatal). The client, with the same configuration
/// value (so the same session store), comes back without a certificate: the server must
/// not resume its session into the new rule.
fn stricter_server_case(driver: Driver) -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let lenient = serving(&leaf)?;
    let server = SslServer::listen("127.0.0.1:0", lenient.clone())?;
    let port = server.local_addr().port();
    let client = trusting(&pki)?;
    let (encrypted, resumed, errors) = connect(driver, &client, port);
    assert!(encrypted && !resumed, "{driver:?}: first: {errors:?}");
    assert!(server.next_connection(WAIT)?.is_ok());
    // The control: the lenient server resumes.
    let (encrypted, resumed, _) = connect(driver, &client, port);
    assert!(encrypted && resumed, "{driver:?}: control did not resume");
    assert!(server.next_connection(WAIT)?.is_ok());
    let mut strict = lenient;
    strict
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .set_missing_certificate_is_fatal(true)
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    server.reload_handle().set_ssl_configuration(strict)?;
    let (_, resumed, _) = connect(driver, &client, port);
    assert!(!resumed, "{driver:?}: resumed into the stricter server");
    let accepted = server.next_connection(WAIT)?;
    assert!(
        accepted.is_err(),
        "{driver:?}: the stricter server accepted a client without a certificate"
    );
    Ok(())
}

// Held: a reload to a stricter configuration starts a new session store (and, on
// OpenSSL, new ticket keys): nothing from before is resumed.
#[test]
fn a_server_reloaded_to_require_a_client_certificate_resumes_nothing_blocking() -> TestResult {
    stricter_server_case(Driver::Blocking)
}

// Held: as above, the client on the tokio driver.
#[test]
fn a_server_reloaded_to_require_a_client_certificate_resumes_nothing_tokio() -> TestResult {
    stricter_server_case(Driver::Tokio)
}

// ----- one socket reconfigured between two connections --------------------------------

/// A blocking socket connects with `first`, closes, is given `second` with
/// `set_ssl_configuration` and connects again: (encrypted, resumed, errors, socket).
fn reconnect_with(
    port: u16,
    first: SslConfiguration,
    second: SslConfiguration,
) -> BoxResult<(bool, bool, Vec<SslError>, SslSocket)> {
    let mut socket = SslSocket::with_configuration(first);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    let _ = socket.wait_for_ready_read(TICKETS);
    assert!(socket
        .take_events()
        .contains(&SslEvent::NewSessionTicketReceived));
    socket.close()?;
    socket.set_ssl_configuration(second)?;
    socket.connect_to_host_encrypted("localhost", port);
    let encrypted = socket.wait_for_encrypted(WAIT).is_ok();
    let resumed = socket.is_session_resumed();
    let errors = socket.ssl_handshake_errors().to_vec();
    Ok((encrypted, resumed, errors, socket))
}

// Held: the second configuration (stapling required and the server staples nothing,
// ALPN, TLS 1.2 only) governs the reconnect: no session of the first is resumed into it.
#[test]
fn a_socket_reconfigured_between_connections_never_resumes_the_first_configuration() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server_configuration = serving(&leaf)?;
    server_configuration.set_allowed_next_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    let _server = {
        let server = SslServer::listen("127.0.0.1:0", server_configuration)?;
        let port = server.local_addr().port();
        (server, port)
    };
    let port = _server.1;
    let first = trusting(&pki)?;
    // Stapling required, none stapled.
    let mut ocsp = first.clone();
    ocsp.set_ocsp_stapling_enabled(true)
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer);
    let (encrypted, resumed, errors, _) = reconnect_with(port, first.clone(), ocsp)?;
    assert!(!encrypted && !resumed, "stapling: {errors:?}");
    assert!(kinds(&errors).contains(&SslErrorKind::OcspNoResponseFound));
    // ALPN asked for only now.
    let mut alpn = first.clone();
    alpn.set_allowed_next_protocols(vec![b"http/1.1".to_vec()]);
    let (encrypted, _, errors, socket) = reconnect_with(port, first.clone(), alpn)?;
    assert!(encrypted, "alpn: {errors:?}");
    assert_eq!(socket.next_negotiated_protocol(), Some(&b"http/1.1"[..]));
    // TLS 1.2 only.
    let mut tls12 = first.clone();
    tls12.set_protocol(SslProtocol::TlsV1_2);
    let (encrypted, resumed, errors, socket) = reconnect_with(port, first.clone(), tls12)?;
    assert!(encrypted && !resumed, "tls1.2: {errors:?}");
    assert_eq!(socket.session_protocol(), SslProtocol::TlsV1_2);
    Ok(())
}

// ----- sockets of one configuration on many threads at once ---------------------------

// Held: sockets sharing one configuration value (one session store) on 8 threads at once,
// half of them verifying `localhost` (valid), half `other.test` (a name mismatch), the
// latter half ignoring it on every second connection: a strict socket is never
// encrypted, whatever the lenient ones stored meanwhile under the same name, and the
// valid ones keep resuming.
#[test]
fn concurrent_sockets_of_one_configuration_keep_their_own_verdicts() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    // Drain the server's queue of finished connections.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain_stop = Arc::clone(&stop);
    let drain = thread::spawn(move || {
        while !drain_stop.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = server.next_connection(Duration::from_millis(100));
        }
    });
    let configuration = trusting(&pki)?;
    let barrier = Arc::new(Barrier::new(8));
    let (tx, rx) = mpsc::channel::<String>();
    let mut threads = Vec::new();
    for index in 0..8usize {
        let configuration = configuration.clone();
        let barrier = Arc::clone(&barrier);
        let tx = tx.clone();
        threads.push(thread::spawn(move || {
            barrier.wait();
            let mut resumed_any = false;
            for round in 0..6usize {
                let valid = index % 2 == 0;
                let lenient = !valid && round % 2 == 0;
                let mut socket = SslSocket::with_configuration(configuration.clone());
                if lenient {
                    socket.ignore_ssl_error_rules(vec![IgnoreRule::AnyCertificate(
                        SslErrorKind::HostNameMismatch,
                    )]);
                }
                let name = if valid { "localhost" } else { "other.test" };
                socket.connect_to_host_encrypted_with_peer_name("localhost", port, name);
                let encrypted = socket.wait_for_encrypted(WAIT).is_ok();
                if encrypted {
                    let _ = socket.wait_for_ready_read(Duration::from_millis(50));
                }
                resumed_any |= valid && socket.is_session_resumed();
                let wrong = if valid || lenient {
                    !encrypted
                } else {
                    encrypted
                };
                if wrong {
                    let _ = tx.send(format!(
                        "thread {index} round {round}: encrypted {encrypted}, resumed {}, {:?}",
                        socket.is_session_resumed(),
                        kinds(socket.ssl_handshake_errors())
                    ));
                }
                let _ = socket.close();
            }
            if index % 2 == 0 && !resumed_any {
                let _ = tx.send(format!("thread {index}: never resumed"));
            }
        }));
    }
    drop(tx);
    for thread in threads {
        thread.join().map_err(|_| "a client thread panicked")?;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drain.join().map_err(|_| "the drain thread panicked")?;
    let problems: Vec<String> = rx.try_iter().collect();
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

// ----- the process default changed while sockets live ---------------------------------

// Held: a socket made before `set_default_configuration` keeps its copy (Qt); sockets made
// afterwards, on this thread or on one that had read (and cached) the old default, use
// the new one: they verify against its CA set and resume nothing of the old default's
// sessions.
#[test]
fn a_replaced_default_configuration_governs_new_sockets_on_every_thread() -> TestResult {
    let pki = Pki::new()?;
    let stranger = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let previous = SslConfiguration::default_configuration();
    SslConfiguration::set_default_configuration(trusting(&pki)?);
    let (go, wait) = mpsc::channel::<()>();
    let (report, reported) = mpsc::channel::<(bool, bool)>();
    let other = thread::spawn(move || {
        // This thread reads the old default first (its per-thread copy).
        let _ = SslConfiguration::default_configuration();
        if wait.recv_timeout(Duration::from_secs(30)).is_err() {
            return;
        }
        let mut socket = SslSocket::new();
        socket.connect_to_host_encrypted("localhost", port);
        let encrypted = socket.wait_for_encrypted(WAIT).is_ok();
        let _ = report.send((encrypted, socket.is_session_resumed()));
    });
    let mut before = SslSocket::new();
    let mut first = SslSocket::new();
    first.connect_to_host_encrypted("localhost", port);
    let first_ok = first.wait_for_encrypted(WAIT).is_ok();
    let _ = first.wait_for_ready_read(TICKETS);
    let _ = first.close();
    let mut replaced = SslConfiguration::default();
    replaced.set_ca_certificates(vec![SslCertificate::from_der(stranger.root_der())?]);
    SslConfiguration::set_default_configuration(replaced);
    before.connect_to_host_encrypted("localhost", port);
    let before_ok = before.wait_for_encrypted(WAIT).is_ok();
    let mut after = SslSocket::new();
    after.connect_to_host_encrypted("localhost", port);
    let after_ok = after.wait_for_encrypted(WAIT).is_ok();
    let after_resumed = after.is_session_resumed();
    let _ = go.send(());
    let elsewhere = reported.recv_timeout(Duration::from_secs(30));
    SslConfiguration::set_default_configuration(previous);
    other.join().map_err(|_| "the other thread panicked")?;
    assert!(first_ok, "the first default did not verify");
    assert!(before_ok, "a socket made before the change lost its copy");
    assert!(
        !after_ok && !after_resumed,
        "a new socket used the old default"
    );
    assert_eq!(
        elsewhere?,
        (false, false),
        "another thread used the old default"
    );
    Ok(())
}
