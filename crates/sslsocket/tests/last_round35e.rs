//! Round 35 review (R) of the last changes: a blocklisted certificate and resumption, the
//! blocking server's drop, the blocking socket's drop mid-handshake, `into_inner`. Both
//! backends (`SSLSOCKET_BACKEND=openssl` for the second run); real peers on 127.0.0.1,
//! certificates made at test time, every wait bounded.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{ExtendedKeyUsagePurpose, KeyPair};
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    IgnoreRule, PeerVerifyMode, SslCertificate, SslConfiguration, SslErrorKind, SslKey, SslProtocol,
};
use support::chains::{cert, leaf, root, Ca};
use support::raw::{joined, ThreadResult};
use support::{active_backend, Blocking, ClientDriver, Pki, Tokio};

type BoxError = Box<dyn std::error::Error>;
type TestResult = Result<(), BoxError>;
type BoxResult<T> = Result<T, BoxError>;

const WAIT: Duration = Duration::from_secs(10);

fn boxed(e: impl std::fmt::Display) -> BoxError {
    e.to_string().into()
}

/// The fake login.live.com of the Comodo incident: on Qt's list with that CN.
const LIVE_SERIAL: [u8; 16] = [
    0xb0, 0xb7, 0x13, 0x3e, 0xd0, 0x96, 0xf9, 0xb5, 0x6f, 0xae, 0x91, 0xc8, 0x74, 0xbd, 0x3a, 0xc0,
];

fn listed_leaf(root: &Ca) -> BoxResult<(Vec<u8>, KeyPair)> {
    leaf(root, "login.live.com", |p| {
        p.serial_number = Some(LIVE_SERIAL.to_vec().into());
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
    })
}

/// Our blocking server showing `der` (key `key`) over `protocol`, serving `count`
/// connections: each gets a `hello` line, then the server waits for the client's close.
fn listed_server(
    der: &[u8],
    key: &KeyPair,
    protocol: SslProtocol,
    count: usize,
) -> BoxResult<(u16, thread::JoinHandle<ThreadResult<()>>)> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(vec![SslCertificate::from_der(der)?])
        .set_private_key(SslKey::from_der(&key.serialize_der())?)
        .set_protocol(protocol);
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    let worker = thread::spawn(move || -> ThreadResult<()> {
        for _ in 0..count {
            let next = server.next_connection(WAIT).map_err(|e| e.to_string())?;
            if let Ok(mut socket) = next {
                let _ = socket.write_all(b"hello\n");
                let _ = socket.flush();
                let _ = socket.wait_for_disconnected(WAIT);
                socket.abort();
            }
        }
        Ok(())
    });
    Ok((port, worker))
}

/// Two clients of one configuration (one session cache) in `VerifyNone` against a server
/// showing a blocklisted certificate: the first ignores CertificateBlacklisted, the second
/// does not. Returns (first encrypted, second encrypted, second resumed, second errors).
fn resume_listed<D: ClientDriver>(
    protocol: SslProtocol,
) -> BoxResult<(bool, bool, bool, Vec<SslErrorKind>)> {
    let root = root("R35e blocklist resumption root")?;
    let (der, key) = listed_leaf(&root)?;
    assert!(cert(&der)?.is_blacklisted());
    let (port, server) = listed_server(&der, &key, protocol, 2)?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_peer_verify_mode(PeerVerifyMode::VerifyNone)
        .set_protocol(protocol);

    // 1: the application knowingly accepts the listed certificate.
    let mut first = D::start("127.0.0.1", port, configuration.clone(), |s| {
        s.ignore_ssl_error_rules(vec![IgnoreRule::AnyCertificate(
            SslErrorKind::CertificateBlacklisted,
        )]);
    })
    .map_err(boxed)?;
    let first_ok = first.wait_for_encrypted(WAIT).is_ok() && first.socket().is_encrypted();
    if first_ok {
        // The hello line comes after the tickets.
        let _ = first.next_line(64, WAIT);
        let _ = first.disconnect(WAIT);
    }
    drop(first);
    thread::sleep(Duration::from_millis(50));

    // 2: same configuration, nothing ignored.
    let mut second = D::start("127.0.0.1", port, configuration, |_| {}).map_err(boxed)?;
    let second_ok = second.wait_for_encrypted(WAIT).is_ok() && second.socket().is_encrypted();
    let resumed = second.socket().is_session_resumed();
    let errors = second
        .socket()
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    if second_ok {
        let _ = second.next_line(64, WAIT);
        let _ = second.disconnect(WAIT);
    }
    drop(second);
    joined(server)?.map_err(boxed)?;
    Ok((first_ok, second_ok, resumed, errors))
}

fn check_resume_listed<D: ClientDriver>(protocol: SslProtocol) -> TestResult {
    let (first, second, resumed, errors) = resume_listed::<D>(protocol)?;
    assert!(
        first,
        "{} {} {protocol:?}: the client ignoring CertificateBlacklisted did not connect",
        active_backend(),
        D::NAME
    );
    assert!(
        !second,
        "{} {} {protocol:?}: a VerifyNone client that does not ignore \
         CertificateBlacklisted was accepted by a blocklisted server (resumed {resumed}, \
         errors {errors:?}); a full handshake refuses it",
        active_backend(),
        D::NAME
    );
    Ok(())
}

// Was a defect (round 35): both backends, both drivers, TLS 1.3: a full handshake of a VerifyNone client
// refuses a blocklisted server certificate unless CertificateBlacklisted is ignored (the
// change of this round, verify/policy.rs `judge`), but a second socket of the same
// configuration that does NOT ignore it resumes the session the first socket (which
// ignored it) stored, and is accepted: encrypted, resumed, no error reported. Cause:
// verify/policy.rs:229 `may_resume` returns true at once for `ignores_outcome()`
// (VerifyNone/QueryPeer) without looking at the original outcome's CertificateBlacklisted;
// it is used by the stores (backend/rustls/sessions.rs:287/318, openssl/verifier.rs:71)
// and by core/verification.rs:261 `judge_resumed`. Right: in VerifyNone/QueryPeer a
// session whose original errors hold CertificateBlacklisted may be resumed only when this
// socket's policy would accept that error in a full handshake (same rule as `judge`:
// `judge_all` on the listed errors: no hooks, ignore list covers them, no pause); and
// `judge_resumed` should report it in VerifyNone as `reported_in_every_mode` does.
#[test]
fn a_blocklisted_session_is_not_resumed_without_ignoring_tls13_blocking() -> TestResult {
    check_resume_listed::<Blocking>(SslProtocol::TlsV1_3)
}

// Was a defect (round 35): as above, tokio driver, TLS 1.3. Same cause (verify/policy.rs:229).
#[test]
fn a_blocklisted_session_is_not_resumed_without_ignoring_tls13_tokio() -> TestResult {
    check_resume_listed::<Tokio>(SslProtocol::TlsV1_3)
}

// Was a defect (round 35): as above, blocking driver, TLS 1.2 (session ID/ticket resumption). Same cause
// (verify/policy.rs:229).
#[test]
fn a_blocklisted_session_is_not_resumed_without_ignoring_tls12_blocking() -> TestResult {
    check_resume_listed::<Blocking>(SslProtocol::TlsV1_2)
}

// ----- the blocking server's drop ----------------------------------------------------------

/// Reads one line from `socket` within `WAIT`.
fn line_of(socket: &mut SslSocket) -> BoxResult<Vec<u8>> {
    Ok(socket.next_line(64, WAIT)?)
}

// Held: dropping a blocking SslServer returns at once although a client sits mid-handshake
// (a TCP connection that sends nothing) and a finished connection waits undelivered; the
// connection received before the drop stays usable both ways; the stalled client's
// connection is closed by the server within the bound (it sees EOF, not a hang); the
// undelivered one's client sees the connection end (no verified session left open).
#[test]
fn a_dropped_blocking_server_ends_pending_keeps_received() -> TestResult {
    let pki = Pki::new()?;
    let server_config = support::serving(&pki.leaf("localhost", &["localhost"])?)?;
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let port = server.local_addr().port();
    let client_config = support::trusting(&pki)?;

    // Received before the drop.
    let mut kept_client = SslSocket::with_configuration(client_config.clone());
    kept_client.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    kept_client.wait_for_encrypted(WAIT)?;
    let mut kept = server
        .next_connection(WAIT)?
        .map_err(|_| boxed("the first connection failed"))?;

    // Finished but never received.
    let mut orphan_client = SslSocket::with_configuration(client_config);
    orphan_client.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    orphan_client.wait_for_encrypted(WAIT)?;

    // Mid-handshake: TCP only.
    let mut stalled = TcpStream::connect(("127.0.0.1", port))?;
    stalled.set_read_timeout(Some(WAIT))?;
    thread::sleep(Duration::from_millis(200));

    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{}: dropping the server took {:?}",
        active_backend(),
        start.elapsed()
    );

    // The received connection still works both ways.
    kept.write_all(b"from server\n")?;
    kept.flush()?;
    assert_eq!(line_of(&mut kept_client)?, b"from server\n".to_vec());
    kept_client.write_all(b"from client\n")?;
    kept_client.flush()?;
    assert_eq!(line_of(&mut kept)?, b"from client\n".to_vec());

    // The stalled handshake is ended: EOF or a reset within the bound, not a timeout.
    let mut sink = Vec::new();
    let read = stalled.read_to_end(&mut sink);
    let timed_out = matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        || e.kind() == std::io::ErrorKind::TimedOut);
    assert!(
        !timed_out,
        "{}: a handshake running when the server was dropped was not ended",
        active_backend()
    );

    // The undelivered connection ends for its client.
    let ended = orphan_client.wait_for_disconnected(WAIT).is_ok()
        || orphan_client.state() == sslsocket::SocketState::UnconnectedState;
    assert!(
        ended,
        "{}: the connection no one received stayed open",
        active_backend()
    );
    kept.abort();
    kept_client.abort();
    Ok(())
}

// ----- into_inner and sessions --------------------------------------------------------------

// Held: `into_inner()` on a blocking client whose handshake passed with ignored errors
// (a chain it does not trust) gives the session up: a second socket of the same
// configuration, ignoring the same errors (so its policy would let it resume), connects
// with a full handshake, not resumed.
#[test]
fn into_inner_after_ignored_errors_gives_sessions_up_blocking() -> TestResult {
    let pki = Pki::new()?;
    let server_config = support::serving(&pki.leaf("localhost", &["localhost"])?)?;
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let port = server.local_addr().port();
    let server_thread = thread::spawn(move || -> ThreadResult<()> {
        for _ in 0..2 {
            if let Ok(Ok(mut socket)) = server.next_connection(WAIT) {
                let _ = socket.write_all(b"hello\n");
                let _ = socket.flush();
                let _ = socket.wait_for_disconnected(Duration::from_secs(3));
                socket.abort();
            }
        }
        Ok(())
    });
    // Trusts nothing: the server's chain is untrusted.
    let configuration = SslConfiguration::default();
    let mut first = SslSocket::with_configuration(configuration.clone());
    first.ignore_ssl_errors();
    first.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    first.wait_for_encrypted(WAIT)?;
    let _ = first.next_line(64, WAIT)?;
    let tcp = first.into_inner();
    drop(tcp);
    thread::sleep(Duration::from_millis(50));
    let mut second = SslSocket::with_configuration(configuration);
    second.ignore_ssl_errors();
    second.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    let ok = second.wait_for_encrypted(WAIT).is_ok() && second.is_encrypted();
    let resumed = second.is_session_resumed();
    second.abort();
    joined(server_thread)?.map_err(boxed)?;
    assert!(
        ok && !resumed,
        "{}: a session of a connection ended by into_inner with ignored errors was \
         resumed (encrypted {ok}, resumed {resumed})",
        active_backend()
    );
    Ok(())
}
