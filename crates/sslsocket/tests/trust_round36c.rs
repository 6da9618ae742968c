//! Round 36 review (A3): the verifier, third pass: what a refusal after a pause, a partial
//! acceptance, hooks, interruptions and reused sockets let through, on both backends (run
//! again with `SSLSOCKET_BACKEND=openssl`) and both drivers. Peers are raw rustls servers
//! and clients on 127.0.0.1 that record what reached them; chains are made with rcgen.
//! `cargo test -p sslsocket --all-features --test trust_round36c`.
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{ExtendedKeyUsagePurpose, KeyPair};
use sslsocket::prelude::*;
use sslsocket::{
    Handshake, PauseMode, PeerVerifyMode, SslCertificate, SslConfiguration, SslError, SslErrorKind,
    SslEvent, SslHooks, SslKey, Verdict,
};
use support::chains::*;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use SslErrorKind::*;

const SECRET: &[u8] = b"application secret written before the decision\n";

// ----- a raw rustls server that records what reached it -----------------------------------

/// What one connection brought to the raw server.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// The handshake completed on the server (it processed the client's Finished).
    completed: bool,
    /// It was a resumption.
    resumed: bool,
    /// Application bytes received.
    received: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Version {
    Tls12,
    Tls13,
}

fn rustls_versions(v: Version) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match v {
        Version::Tls12 => &TLS12,
        Version::Tls13 => &TLS13,
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

struct RecServer {
    port: u16,
    seen: mpsc::Receiver<Seen>,
}

impl RecServer {
    /// Serves `chain`/`key` for up to `connections` connections (each bounded to 6 s).
    fn start(
        chain: &[Vec<u8>],
        key: &KeyPair,
        version: Version,
        connections: usize,
    ) -> BoxResult<RecServer> {
        let certs: Vec<CertificateDer<'static>> =
            chain.iter().cloned().map(CertificateDer::from).collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(rustls_versions(version))?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            listener.set_nonblocking(true).ok();
            let end = Instant::now() + Duration::from_secs(40);
            let mut served = 0;
            while served < connections && Instant::now() < end {
                let tcp = match listener.accept() {
                    Ok((tcp, _)) => tcp,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                served += 1;
                let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                    return;
                };
                let seen = drive_server(conn, tcp);
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        Ok(RecServer { port, seen: rx })
    }

    fn next(&self) -> BoxResult<Seen> {
        Ok(self.seen.recv_timeout(Duration::from_secs(15))?)
    }
}

fn drive_server(mut conn: rustls::ServerConnection, mut tcp: TcpStream) -> Seen {
    let mut seen = Seen::default();
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        while conn.wants_write() {
            if conn.write_tls(&mut tcp).is_err() {
                return seen;
            }
        }
        match conn.read_tls(&mut tcp) {
            Ok(0) => return seen,
            Ok(_) => {
                let processed = conn.process_new_packets();
                if !conn.is_handshaking() {
                    seen.completed = true;
                    seen.resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                }
                let mut buf = [0u8; 4096];
                loop {
                    match conn.reader().read(&mut buf) {
                        Ok(0) => {
                            // The client's close_notify: answer it and end.
                            conn.send_close_notify();
                            let _ = conn.write_tls(&mut tcp);
                            return seen;
                        }
                        Ok(n) => seen.received.extend_from_slice(buf.get(..n).unwrap_or(&[])),
                        Err(_) => break,
                    }
                }
                if processed.is_err() {
                    let _ = conn.write_tls(&mut tcp);
                    return seen;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return seen,
        }
    }
    seen
}

// ----- chains -----------------------------------------------------------------------------

/// A `localhost` leaf under a root the client does not trust, the root our client trusts
/// (another one), and the leaf's key.
struct Untrusted {
    chain: Vec<Vec<u8>>,
    key: KeyPair,
    trusted_root: Vec<u8>,
}

fn untrusted() -> BoxResult<Untrusted> {
    let stranger = root("R36c Stranger Root")?;
    let ours = root("R36c Our Root")?;
    let (leaf_der, key) = leaf(&stranger, "localhost", |_| {})?;
    Ok(Untrusted {
        chain: vec![leaf_der],
        key,
        trusted_root: ours.der,
    })
}

fn trusting_der(root_der: &[u8]) -> BoxResult<SslConfiguration> {
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![SslCertificate::from_der(root_der)?]);
    Ok(configuration)
}

fn has_encrypted(events: &[SslEvent]) -> bool {
    events.iter().any(|e| matches!(e, SslEvent::Encrypted))
}

fn has_error_event(events: &[SslEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, SslEvent::ErrorOccurred(_)))
}

// ----- pause, then refuse ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Abort,
    Disconnect,
    Drop,
    RefusePeer,
    /// `resume()` after ignoring nothing.
    ResumeUnignored,
}

const REFUSALS: [Refusal; 5] = [
    Refusal::Abort,
    Refusal::Disconnect,
    Refusal::Drop,
    Refusal::RefusePeer,
    Refusal::ResumeUnignored,
];

/// Our blocking client pauses on the untrusted server with `SECRET` written before and
/// during the pause, then refuses it by `how`. Returns the client's events.
fn blocking_refuses(
    port: u16,
    configuration: SslConfiguration,
    how: Refusal,
) -> BoxResult<Vec<SslEvent>> {
    let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
    socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    let written = socket.write(SECRET)?;
    assert_eq!(written, SECRET.len());
    let step = socket.handshake(WAIT)?;
    assert!(
        matches!(step, Handshake::NeedsDecision(_)),
        "blocking: not paused: {step:?}"
    );
    let _ = socket.write(SECRET)?;
    let mut events = socket.take_events();
    match how {
        Refusal::Abort => socket.abort(),
        Refusal::Disconnect => {
            let result = socket.disconnect_within(Duration::from_secs(5));
            assert!(
                result.is_err(),
                "blocking: a refused close reported success"
            );
        }
        Refusal::Drop => {
            drop(socket);
            return Ok(events);
        }
        Refusal::RefusePeer => socket.refuse_peer()?,
        Refusal::ResumeUnignored => {
            assert!(
                socket.resume().is_err(),
                "blocking: resume with nothing ignored went on"
            );
        }
    }
    assert!(!socket.is_encrypted());
    assert!(socket.wait_for_encrypted(Duration::from_secs(2)).is_err());
    events.extend(socket.take_events());
    Ok(events)
}

/// The same on the tokio driver.
fn tokio_refuses(
    port: u16,
    configuration: SslConfiguration,
    how: Refusal,
) -> BoxResult<Vec<SslEvent>> {
    use tokio::io::AsyncWriteExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let limit = Duration::from_secs(10);
        let mut socket = tokio::time::timeout(
            limit,
            sslsocket::tokio::SslSocket::connect_to_host("127.0.0.1", port, configuration),
        )
        .await??;
        socket.set_peer_verify_name("localhost");
        socket.set_pause_mode(PauseMode::PauseOnSslErrors);
        socket.begin_client_encryption()?;
        let written = tokio::time::timeout(limit, socket.write(SECRET)).await??;
        assert_eq!(written, SECRET.len());
        let step = tokio::time::timeout(limit, socket.handshake()).await??;
        assert!(
            matches!(step, Handshake::NeedsDecision(_)),
            "tokio: not paused: {step:?}"
        );
        let _ = tokio::time::timeout(limit, socket.write(SECRET)).await??;
        let mut events = socket.take_events();
        match how {
            Refusal::Abort => socket.abort(),
            Refusal::Disconnect => {
                let result =
                    tokio::time::timeout(Duration::from_secs(5), socket.disconnect_from_host())
                        .await?;
                assert!(result.is_err(), "tokio: a refused close reported success");
            }
            Refusal::Drop => {
                drop(socket);
                return Ok::<_, Box<dyn std::error::Error>>(events);
            }
            Refusal::RefusePeer => socket.refuse_peer()?,
            Refusal::ResumeUnignored => {
                assert!(
                    socket.resume().is_err(),
                    "tokio: resume with nothing ignored went on"
                );
            }
        }
        assert!(!socket.is_encrypted());
        let again = tokio::time::timeout(Duration::from_secs(2), socket.wait_for_encrypted()).await;
        assert!(
            !matches!(again, Ok(Ok(()))),
            "tokio: encrypted after the refusal"
        );
        events.extend(socket.take_events());
        Ok(events)
    })
}

/// Then a second socket of the same configuration, ignoring every error, connects: it
/// must run a full handshake (nothing of the refused connection was stored).
fn second_socket_is_full(port: u16, configuration: SslConfiguration) -> BoxResult<bool> {
    let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
    socket.ignore_ssl_errors();
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    socket.wait_for_encrypted(WAIT)?;
    let resumed = socket.is_session_resumed();
    socket.disconnect_within(Duration::from_secs(5))?;
    Ok(!resumed)
}

fn refusal_matrix(blocking: bool) -> TestResult {
    for version in [Version::Tls13, Version::Tls12] {
        for how in REFUSALS {
            let u = untrusted()?;
            let server = RecServer::start(&u.chain, &u.key, version, 2)?;
            let configuration = trusting_der(&u.trusted_root)?;
            let events = if blocking {
                blocking_refuses(server.port, configuration.clone(), how)?
            } else {
                tokio_refuses(server.port, configuration.clone(), how)?
            };
            let seen = server.next()?;
            let label = format!(
                "{} {} {version:?} {how:?}",
                support::active_backend(),
                if blocking { "blocking" } else { "tokio" }
            );
            assert!(
                !seen.completed,
                "{label}: the server completed the handshake"
            );
            assert!(
                seen.received.is_empty(),
                "{label}: the server read {:?}",
                seen.received
            );
            assert!(
                !has_encrypted(&events),
                "{label}: Encrypted signalled: {events:?}"
            );
            assert!(
                events.iter().any(|e| matches!(e, SslEvent::SslErrors(_))),
                "{label}: the errors were not signalled: {events:?}"
            );
            if matches!(
                how,
                Refusal::RefusePeer | Refusal::Disconnect | Refusal::ResumeUnignored
            ) {
                assert!(
                    has_error_event(&events),
                    "{label}: no error signalled: {events:?}"
                );
            }
            assert!(
                second_socket_is_full(server.port, configuration)?,
                "{label}: a later socket resumed a session of the refused peer"
            );
            let _ = server.next()?;
        }
    }
    Ok(())
}

// Held: paused on an untrusted server with bytes written before and during the pause, then
// refused by abort(), disconnect, drop, refuse_peer() or an unignored resume(): the server
// never completes, reads nothing, and a later socket resumes nothing (TLS 1.2 and 1.3).
#[test]
fn blocking_pause_then_refusal_leaks_nothing_and_stores_nothing() -> TestResult {
    refusal_matrix(true)
}

// Held: the same on the tokio driver.
#[test]
fn tokio_pause_then_refusal_leaks_nothing_and_stores_nothing() -> TestResult {
    refusal_matrix(false)
}

// ----- reused blocking sockets ------------------------------------------------------------

/// The errors our client finds on `port` (a probe socket of `configuration`).
fn errors_found(port: u16, configuration: SslConfiguration) -> BoxResult<Vec<SslError>> {
    let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    assert!(
        socket.wait_for_encrypted(WAIT).is_err(),
        "the probe was accepted"
    );
    Ok(socket.ssl_handshake_errors().to_vec())
}

// Held: an ignore list naming one certificate's errors, given before the first connection,
// is spent by it: the socket reconnecting to another server that shows the very same
// certificate is refused (README: lists are cleared when the socket connects again).
#[test]
fn an_ignore_list_spent_on_one_server_does_not_accept_the_same_certificate_elsewhere() -> TestResult
{
    for version in [Version::Tls13, Version::Tls12] {
        let u = untrusted()?;
        let probe = RecServer::start(&u.chain, &u.key, version, 1)?;
        let a = RecServer::start(&u.chain, &u.key, version, 1)?;
        let b = RecServer::start(&u.chain, &u.key, version, 1)?;
        let configuration = trusting_der(&u.trusted_root)?;
        let errors = errors_found(probe.port, configuration.clone())?;
        assert!(!errors.is_empty());
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
        socket.ignore_ssl_errors_list(&errors);
        socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", a.port, "localhost");
        socket.wait_for_encrypted(WAIT)?;
        socket.disconnect_within(Duration::from_secs(5))?;
        assert!(a.next()?.completed);
        socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", b.port, "localhost");
        let second = socket.wait_for_encrypted(WAIT);
        let seen = b.next()?;
        assert!(
            second.is_err() && !seen.completed,
            "{} {version:?}: the spent list accepted server B: {second:?}, {seen:?}",
            support::active_backend()
        );
    }
    Ok(())
}

// Held: a blocking socket accepted `localhost` (a session stored), then its verify name is
// changed and it reconnects to the same server: the new name is checked by a full
// handshake (HostNameMismatch, refused), the old session is not resumed under it.
#[test]
fn a_changed_peer_verify_name_on_a_reused_socket_is_checked_not_resumed() -> TestResult {
    for version in [Version::Tls13, Version::Tls12] {
        let ca = root("R36c Name Root")?;
        let (leaf_der, key) = leaf(&ca, "localhost", |_| {})?;
        let server = RecServer::start(std::slice::from_ref(&leaf_der), &key, version, 3)?;
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(trusting_der(&ca.der)?);
        socket.set_peer_verify_name("localhost");
        socket.connect_to_host_encrypted("127.0.0.1", server.port);
        socket.wait_for_encrypted(WAIT)?;
        socket.write_all(b"one\n")?;
        socket.disconnect_within(Duration::from_secs(5))?;
        let first = server.next()?;
        assert!(first.completed);
        // The same name again resumes (so a session was stored).
        socket.connect_to_host_encrypted("127.0.0.1", server.port);
        socket.wait_for_encrypted(WAIT)?;
        let resumed_once = socket.is_session_resumed();
        socket.disconnect_within(Duration::from_secs(5))?;
        let _ = server.next()?;
        socket.set_peer_verify_name("evil.test");
        socket.connect_to_host_encrypted("127.0.0.1", server.port);
        let result = socket.wait_for_encrypted(WAIT);
        let errors = kinds_on(socket.ssl_handshake_errors());
        let seen = server.next()?;
        let label = format!("{} {version:?}", support::active_backend());
        assert!(
            resumed_once,
            "{label}: the control reconnection did not resume"
        );
        assert!(result.is_err(), "{label}: accepted under the new name");
        assert!(!seen.completed && !seen.resumed, "{label}: {seen:?}");
        assert!(
            errors.iter().any(|(k, _)| *k == HostNameMismatch),
            "{label}: {errors:?}"
        );
    }
    Ok(())
}

// ----- hooks and interruptions with a stapling error after the chain's ----------------------

/// Hooks that pause on the whole list.
struct Pausing;
impl SslHooks for Pausing {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        Verdict::Pause
    }
}

/// Interrupt-mode hooks that continue past the chain's errors (errors on a certificate)
/// and stop at anything else (the stapling errors); counts the calls.
#[derive(Default)]
struct ChainOnly {
    asked: AtomicUsize,
}
impl SslHooks for ChainOnly {
    fn handshake_interrupted(&self, error: &SslError) -> Verdict {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if error.certificate().is_some() {
            Verdict::Ignore
        } else {
            Verdict::Abort
        }
    }
}

// Held: stapling asked for, an untrusted chain and no staple: the hook pauses; the
// application ignores the chain's errors only (not OcspNoResponseFound) and resumes: the
// resume fails and the server never completes, on both drivers' shared core.
#[test]
fn resuming_after_ignoring_the_chain_but_not_the_missing_staple_fails() -> TestResult {
    for version in [Version::Tls13, Version::Tls12] {
        let u = untrusted()?;
        let server = RecServer::start(&u.chain, &u.key, version, 1)?;
        let mut configuration = trusting_der(&u.trusted_root)?;
        configuration.set_ocsp_stapling_enabled(true);
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
        socket.set_hooks(Arc::new(Pausing));
        socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port, "localhost");
        let _ = socket.write(SECRET)?;
        let step = socket.handshake(WAIT)?;
        let Handshake::NeedsDecision(pending) = step else {
            return Err(format!("{version:?}: not paused: {step:?}").into());
        };
        let kinds: Vec<SslErrorKind> = pending.errors.iter().map(|e| e.error()).collect();
        assert!(
            kinds.contains(&OcspNoResponseFound),
            "{version:?}: {kinds:?}"
        );
        let chain_only: Vec<SslError> = pending
            .errors
            .iter()
            .filter(|e| e.certificate().is_some())
            .cloned()
            .collect();
        assert!(!chain_only.is_empty());
        socket.ignore_ssl_errors_list(&chain_only);
        let resumed = socket.resume();
        let done = socket.wait_for_encrypted(Duration::from_secs(2));
        let seen = server.next()?;
        let label = format!("{} {version:?}", support::active_backend());
        assert!(
            resumed.is_err() && done.is_err(),
            "{label}: {resumed:?} {done:?}"
        );
        assert!(
            !seen.completed && seen.received.is_empty(),
            "{label}: {seen:?}"
        );
    }
    Ok(())
}

// Held: interrupt mode: the hook continues past each chain error and stops at the
// stapling error that follows: refused, one interruption per error asked, no Encrypted,
// `continue_interrupted_handshake` reports the failure, the server never completes.
#[test]
fn an_interruption_continued_past_the_chain_stops_at_the_staple() -> TestResult {
    for version in [Version::Tls13, Version::Tls12] {
        let u = untrusted()?;
        let server = RecServer::start(&u.chain, &u.key, version, 1)?;
        let mut configuration = trusting_der(&u.trusted_root)?;
        configuration
            .set_ocsp_stapling_enabled(true)
            .set_handshake_must_interrupt_on_error(true);
        let hooks = Arc::new(ChainOnly::default());
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
        socket.set_hooks(hooks.clone());
        socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port, "localhost");
        let _ = socket.write(SECRET)?;
        let result = socket.wait_for_encrypted(WAIT);
        let events = socket.take_events();
        let interruptions: Vec<&SslError> = events
            .iter()
            .filter_map(|e| match e {
                SslEvent::HandshakeInterruptedOnError(error) => Some(error),
                _ => None,
            })
            .collect();
        let seen = server.next()?;
        let label = format!("{} {version:?}", support::active_backend());
        assert!(result.is_err(), "{label}: accepted");
        assert!(socket.continue_interrupted_handshake().is_err(), "{label}");
        assert!(!has_encrypted(&events), "{label}: {events:?}");
        assert_eq!(
            interruptions.len(),
            hooks.asked.load(Ordering::SeqCst),
            "{label}: {events:?}"
        );
        assert!(
            interruptions
                .last()
                .is_some_and(|e| e.error() == OcspNoResponseFound),
            "{label}: {interruptions:?}"
        );
        assert!(
            !seen.completed && seen.received.is_empty(),
            "{label}: {seen:?}"
        );
    }
    Ok(())
}

// ----- servers: a client's session carried into a stricter socket ---------------------------

/// What our server socket made of one client.
#[derive(Debug)]
struct Served {
    accepted: bool,
    resumed: bool,
    errors: Vec<(SslErrorKind, String)>,
}

/// A server's PKI: its own leaf, the CA that issues client certificates.
struct ServerPki {
    server_chain: Vec<Vec<u8>>,
    server_key: KeyPair,
    server_root: Vec<u8>,
    client_ca: Ca,
}

fn server_pki() -> BoxResult<ServerPki> {
    let server_root = root("R36c Server Root")?;
    let (leaf_der, key) = leaf(&server_root, "localhost", |_| {})?;
    Ok(ServerPki {
        server_chain: vec![leaf_der],
        server_key: key,
        server_root: server_root.der,
        client_ca: root("R36c Client CA")?,
    })
}

fn server_configuration(pki: &ServerPki, mode: PeerVerifyMode) -> BoxResult<SslConfiguration> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(vec![SslCertificate::from_der(&pki.server_chain[0])?])
        .set_private_key(SslKey::from_der(&pki.server_key.serialize_der())?)
        .set_ca_certificates(vec![SslCertificate::from_der(&pki.client_ca.der)?])
        .set_peer_verify_mode(mode);
    Ok(configuration)
}

/// A raw rustls client configuration trusting our server, presenting `client` (if any),
/// with rustls's in-memory session store (so it resumes when the server lets it).
fn raw_client(
    pki: &ServerPki,
    client: Option<(&[u8], &KeyPair)>,
    version: Version,
) -> BoxResult<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pki.server_root.clone()))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls_versions(version))?
        .with_root_certificates(roots);
    let config = match client {
        Some((der, key)) => builder.with_client_auth_cert(
            vec![CertificateDer::from(der.to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// One client connection: handshake, a line, the server's answer (so any ticket arrived),
/// close. Returns whether the answer came.
fn raw_client_once(config: &Arc<rustls::ClientConfig>, port: u16) -> BoxResult<bool> {
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let mut conn = rustls::ClientConnection::new(Arc::clone(config), name)?;
    let mut tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    if tls.write_all(b"hello\n").is_err() {
        return Ok(false);
    }
    let mut answer = [0u8; 3];
    let got = tls.read_exact(&mut answer).is_ok() && &answer == b"ok\n";
    conn.send_close_notify();
    let _ = conn.write_tls(&mut tcp);
    Ok(got)
}

/// Our blocking server for one connection with `configuration`, `prepare` applied to the
/// socket: answers `ok` to a line when accepted.
fn our_server_once(
    listener: &TcpListener,
    configuration: SslConfiguration,
    prepare: impl FnOnce(&mut sslsocket::blocking::SslSocket),
) -> BoxResult<Served> {
    let (mut socket, result) = support::trust::accept_one(listener, configuration, prepare)?;
    let accepted = result.is_ok() && socket.is_encrypted();
    let served = Served {
        accepted,
        resumed: socket.is_session_resumed(),
        errors: kinds_on(socket.ssl_handshake_errors()),
    };
    if accepted {
        let line = socket.next_line(100, Duration::from_secs(5))?;
        if line == b"hello\n" {
            socket.write_all(b"ok\n")?;
        }
        let _ = socket.disconnect_within(Duration::from_secs(5));
    } else {
        socket.abort();
    }
    Ok(served)
}

/// Client and server of one connection, concurrently.
fn exchange(
    listener: &TcpListener,
    client: &Arc<rustls::ClientConfig>,
    configuration: SslConfiguration,
    prepare: impl FnOnce(&mut sslsocket::blocking::SslSocket) + Send + 'static,
) -> BoxResult<(Served, bool)> {
    let port = listener.local_addr()?.port();
    let client = Arc::clone(client);
    let worker =
        std::thread::spawn(move || raw_client_once(&client, port).map_err(|e| e.to_string()));
    let served = our_server_once(listener, configuration, prepare)?;
    let answered = support::raw::joined(worker)??;
    Ok((served, answered))
}

fn expired_client(pki: &ServerPki) -> BoxResult<(Vec<u8>, KeyPair)> {
    leaf(&pki.client_ca, "client", |params| {
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - 10 * DAY;
        params.not_after = now - DAY;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    })
}

// Held: a `QueryPeer` server accepts a client with an expired certificate (its errors reported,
// tied to that certificate) and gives it a session; a socket of the same configuration
// switched to `VerifyPeer` by the application (`set_peer_verify_mode` on the socket) must
// not let that session in: a full handshake would refuse the expired certificate.
#[test]
fn a_query_peer_session_is_not_resumed_by_a_socket_switched_to_verify_peer() -> TestResult {
    for version in [Version::Tls13, Version::Tls12] {
        let pki = server_pki()?;
        let (client_der, client_key) = expired_client(&pki)?;
        let client = raw_client(&pki, Some((&client_der, &client_key)), version)?;
        let configuration = server_configuration(&pki, PeerVerifyMode::QueryPeer)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let label = format!("{} {version:?}", support::active_backend());

        let (first, answered) = exchange(&listener, &client, configuration.clone(), |_| {})?;
        assert!(
            first.accepted && answered,
            "{label}: QueryPeer refused: {first:?}"
        );
        assert!(
            first
                .errors
                .iter()
                .any(|(k, s)| *k == CertificateExpired && s.contains("client")),
            "{label}: {first:?}"
        );
        // The control: the same configuration resumes the client.
        let (again, _) = exchange(&listener, &client, configuration.clone(), |_| {})?;
        assert!(
            again.accepted && again.resumed,
            "{label}: the control did not resume: {again:?}"
        );

        let (strict, answered) = exchange(&listener, &client, configuration.clone(), |s| {
            assert!(s.set_peer_verify_mode(PeerVerifyMode::VerifyPeer).is_ok());
        })?;
        assert!(
            !strict.accepted && !answered,
            "{label}: the VerifyPeer socket accepted the expired client (resumed {}): {strict:?}",
            strict.resumed
        );
    }
    Ok(())
}

// Held: the same for a client whose certificate a `VerifyNone` server never asked for.
#[test]
fn a_verify_none_session_is_not_resumed_by_a_socket_switched_to_verify_peer() -> TestResult {
    for version in [Version::Tls13, Version::Tls12] {
        let pki = server_pki()?;
        let (client_der, client_key) = expired_client(&pki)?;
        let client = raw_client(&pki, Some((&client_der, &client_key)), version)?;
        let configuration = server_configuration(&pki, PeerVerifyMode::VerifyNone)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let label = format!("{} {version:?}", support::active_backend());

        let (first, answered) = exchange(&listener, &client, configuration.clone(), |_| {})?;
        assert!(
            first.accepted && answered,
            "{label}: VerifyNone refused: {first:?}"
        );
        let (strict, answered) = exchange(&listener, &client, configuration.clone(), |s| {
            assert!(s.set_peer_verify_mode(PeerVerifyMode::VerifyPeer).is_ok());
        })?;
        assert!(
            !strict.accepted && !answered,
            "{label}: the VerifyPeer socket accepted the client (resumed {}): {strict:?}",
            strict.resumed
        );
    }
    Ok(())
}

/// A `QueryPeer` server's view of one client certificate: accepted, and its errors.
fn query_peer_sees(pki: &ServerPki, der: &[u8], key: &KeyPair) -> BoxResult<Served> {
    let client = raw_client(pki, Some((der, key)), Version::Tls13)?;
    let configuration = server_configuration(pki, PeerVerifyMode::QueryPeer)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let (served, answered) = exchange(&listener, &client, configuration, |_| {})?;
    assert!(served.accepted && answered, "QueryPeer refused: {served:?}");
    Ok(served)
}

// Held: a `QueryPeer` server reports each client certificate's errors tied to that
// certificate, the same on both backends: expired, self-signed, serverAuth only.
#[test]
fn a_query_peer_server_ties_each_client_error_to_the_client_certificate() -> TestResult {
    let pki = server_pki()?;
    let label = support::active_backend();

    let (der, key) = expired_client(&pki)?;
    let served = query_peer_sees(&pki, &der, &key)?;
    assert_eq!(
        served.errors,
        vec![(CertificateExpired, "CN=client".to_string())],
        "{label}: expired"
    );

    let (der, key) = leaf(&pki.client_ca, "client", |params| {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    })?;
    let served = query_peer_sees(&pki, &der, &key)?;
    assert_eq!(
        served.errors,
        vec![(InvalidPurpose, "CN=client".to_string())],
        "{label}: serverAuth only"
    );

    let key = new_key()?;
    let mut params = leaf_params("selfsigned", |params| {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    })?;
    params.use_authority_key_identifier_extension = false;
    let der = params.self_signed(&key)?.der().to_vec();
    let served = query_peer_sees(&pki, &der, &key)?;
    assert_eq!(
        served.errors,
        vec![(SelfSignedCertificate, "CN=selfsigned".to_string())],
        "{label}: self-signed"
    );
    Ok(())
}
