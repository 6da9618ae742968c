//! Review round 35 (G): the synchronous hooks (`SslHooks`, the certificate resolvers)
//! when the application misbehaves or an attacker drives them: hooks that panic, block,
//! answer inconsistently, resolvers that return unusable identities, pauses never
//! resumed. Both backends (`SSLSOCKET_BACKEND=openssl`), both drivers; every wait is
//! bounded, every peer is on 127.0.0.1 with certificates made at test time.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    CertificateRequest, ClientCertificateResolver, PeerVerifyMode, ServerCertificateResolver,
    SocketError, SocketState, SslCertificate, SslConfiguration, SslError, SslErrorKind, SslHooks,
    SslIdentity, SslKey, Verdict,
};
use support::{os_args, serving, trusting, OpensslClient, Pki};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const WAIT: Duration = Duration::from_secs(10);

/// The payload of every panic a hook of this file raises on purpose.
const MARK: &str = "hooks_round35: an application hook panicked on purpose";

/// Unwinds as a panic of the hook would (`resume_unwind`: the same unwinding, without the
/// panic hook's message, so hundreds of them stay off stderr).
fn boom() -> ! {
    std::panic::resume_unwind(Box::new(MARK))
}

fn boxed(e: impl std::fmt::Display) -> BoxError {
    e.to_string().into()
}

/// A client of `port` asking for `name` (a `QueryPeer` client: the server's certificate
/// does not matter here), driven until `counter` moved past `before` or 5 s passed, then
/// dropped. Returns whether the counter moved.
fn provoke(
    configuration: &SslConfiguration,
    port: u16,
    name: &str,
    counter: &AtomicUsize,
    before: usize,
) -> bool {
    let mut client = SslSocket::with_configuration(configuration.clone());
    client.set_peer_verify_name(name);
    client.connect_to_host_encrypted("127.0.0.1", port);
    let deadline = Instant::now() + Duration::from_secs(5);
    while counter.load(Ordering::SeqCst) <= before && Instant::now() < deadline {
        if client
            .wait_for_encrypted(Duration::from_millis(10))
            .is_err()
            && client.state() == SocketState::UnconnectedState
        {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    client.abort();
    counter.load(Ordering::SeqCst) > before
}

/// An honest client of `port` for `localhost`; whether its handshake finished and the
/// server handed its connection out, each within `WAIT`.
fn honest_client_served(pki: &Pki, server: &SslServer) -> Result<(), BoxError> {
    let mut client = SslSocket::with_configuration(trusting(pki).map_err(boxed)?);
    client.set_peer_verify_name("localhost");
    client.connect_to_host_encrypted("127.0.0.1", server.local_addr().port());
    // Drain the ready queue (failed handshakes of the attack) until the honest one.
    let deadline = Instant::now() + WAIT;
    client
        .wait_for_encrypted(WAIT)
        .map_err(|e| format!("the honest client's handshake: {e}"))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the server never handed the honest connection out".into());
        }
        match server.next_connection(left) {
            Ok(Ok(_socket)) => return Ok(()),
            Ok(Err(_failed)) => continue,
            Err(e) => return Err(format!("waiting for the honest connection: {e}").into()),
        }
    }
}

// ----- hooks that panic on a server ----------------------------------------------------

/// A server certificate resolver with a bug the client can reach: it panics for one
/// server name (an SNI an attacker chooses).
struct PanickingResolver {
    calls: Arc<AtomicUsize>,
}

impl ServerCertificateResolver for PanickingResolver {
    fn resolve(&self, server_name: Option<&str>) -> Option<SslIdentity> {
        if server_name == Some("boom.example") {
            self.calls.fetch_add(1, Ordering::SeqCst);
            boom();
        }
        None
    }
}

/// Clients that make the blocking server's hook panic 264 times (more than its 256
/// handshake slots), then an honest client.
fn flood_blocking_server(
    pki: &Pki,
    server: &SslServer,
    attacker: &SslConfiguration,
    name: &str,
    counter: &Arc<AtomicUsize>,
) -> TestResult {
    let port = server.local_addr().port();
    // Eight attackers at a time; each waits until a panic happened after it connected.
    let mut workers = Vec::new();
    for _ in 0..8 {
        let attacker = attacker.clone();
        let counter = Arc::clone(counter);
        let name = name.to_string();
        workers.push(std::thread::spawn(move || {
            for _ in 0..33 {
                let before = counter.load(Ordering::SeqCst);
                provoke(&attacker, port, &name, &counter, before);
            }
        }));
    }
    for worker in workers {
        worker.join().map_err(|_| "an attacker thread panicked")?;
    }
    let panics = counter.load(Ordering::SeqCst);
    assert!(panics >= 256, "the hook panicked only {panics} times");
    // Whatever the hooks did to those connections, the server goes on serving others.
    honest_client_served(pki, server)
}

// Was a defect (round 35): on the rustls backend a server certificate resolver that panics (here for an SNI
// the client picks) unwinds out of the blocking SslServer's handshake thread, which then
// never gives its handshake slot back (`counter.fetch_sub` in blocking/server.rs
// accept_loop is skipped) nor removes its entry from the running list (`registry.remove`,
// which keeps a second handle on the dead connection's descriptor). After 256 such
// clients the accept loop waits for a free slot for ever: every later client, honest
// ones included, hangs (the server is dead; from 128 on, every new client must also send
// within 1 s, PRESSURE). Any hook that panics does it (`ssl_errors` on a `VerifyPeer`
// server too: see the next test for the same thread dying). Right: the handshake thread catches the hook's panic (or at least
// frees its slot and its connection on unwind, as the tokio server's JoinSet does) and
// reports that handshake as failed; the OpenSSL backend already turns it into a fatal alert.
#[test]
fn a_panicking_sni_resolver_cannot_exhaust_the_blocking_servers_slots() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let calls = Arc::new(AtomicUsize::new(0));
    let resolver = Arc::new(PanickingResolver {
        calls: Arc::clone(&calls),
    });
    let mut configuration = serving(&leaf).map_err(boxed)?;
    configuration.set_server_certificate_resolver(Some(resolver as _));
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    server.set_handshake_timeout(Duration::from_secs(3));
    let mut attacker = trusting(&pki).map_err(boxed)?;
    attacker.set_peer_verify_mode(PeerVerifyMode::QueryPeer);
    flood_blocking_server(&pki, &server, &attacker, "boom.example", &calls)
}

/// Verification hooks with a bug: `ssl_errors` panics (a client certificate with errors
/// reaches it on a `VerifyPeer` server).
struct PanickingErrorsHook {
    calls: Arc<AtomicUsize>,
}

impl SslHooks for PanickingErrorsHook {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        self.calls.fetch_add(1, Ordering::SeqCst);
        boom()
    }
}

/// A `VerifyPeer` server configuration for `localhost`.
fn verifying_server(pki: &Pki) -> Result<SslConfiguration, BoxError> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut configuration = serving(&leaf).map_err(boxed)?;
    configuration.set_peer_verify_mode(PeerVerifyMode::VerifyPeer);
    configuration.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    Ok(configuration)
}

/// A client of `pki`'s server presenting a certificate no CA of the server vouches for.
fn untrusted_client(pki: &Pki) -> Result<SslConfiguration, BoxError> {
    let client_leaf = pki.client_cert(false)?;
    let mut configuration = trusting(pki).map_err(boxed)?;
    let chain = client_leaf
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    configuration
        .set_local_certificate_chain(chain)
        .set_private_key(SslKey::from_der(&client_leaf.key_der)?);
    Ok(configuration)
}

// Held (the client's side): with `SslHooks::ssl_errors` panicking on a `VerifyPeer`
// blocking SslServer, the client learns at once that the connection is gone (on rustls the
// socket dropped by the unwinding thread shuts TCP down; OpenSSL's verify trampoline
// catches the panic and refuses). The slot the rustls thread leaks is the defect above.
#[test]
fn a_panicking_errors_hook_on_the_blocking_server_still_closes_the_connection() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::listen("127.0.0.1:0", verifying_server(&pki)?)?;
    let calls = Arc::new(AtomicUsize::new(0));
    server.set_hooks(Arc::new(PanickingErrorsHook {
        calls: Arc::clone(&calls),
    }));
    let mut client = SslSocket::with_configuration(untrusted_client(&pki)?);
    client.set_peer_verify_name("localhost");
    client.connect_to_host_encrypted("127.0.0.1", server.local_addr().port());
    let started = Instant::now();
    // TLS 1.3: the client is done before the server judged its certificate; the refusal
    // (or the close) comes after. Either way the client learns of it, at once.
    let outcome = client
        .wait_for_encrypted(Duration::from_secs(4))
        .and_then(|()| client.wait_for_ready_read(Duration::from_secs(4)));
    let took = started.elapsed();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the hook was asked once");
    let error = match outcome {
        Ok(()) => return Err("the client was sent data by a server whose hook panicked".into()),
        Err(error) => error,
    };
    assert!(
        client.error() != SocketError::SocketTimeoutError && took < Duration::from_secs(3),
        "the client heard nothing from the server for {took:?}: {error}"
    );
    Ok(())
}

// Held: the tokio SslServer's `incoming()` runs each handshake as a task of a JoinSet, so
// a resolver that panics ends that task only: the client is closed on at once, nothing
// stays counted in `handshakes_in_progress()`, and honest clients are still served (on
// rustls the panic unwinds the task; on OpenSSL the SNI callback catches it).
#[test]
fn a_panicking_sni_resolver_on_the_tokio_server_ends_only_that_handshake() -> TestResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let pki = Pki::new()?;
        let leaf = pki.leaf("localhost", &["localhost"])?;
        let calls = Arc::new(AtomicUsize::new(0));
        let mut configuration = serving(&leaf).map_err(boxed)?;
        configuration.set_server_certificate_resolver(Some(Arc::new(PanickingResolver {
            calls: Arc::clone(&calls),
        }) as _));
        let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", configuration).await?;
        let port = server.local_addr().port();
        let mut incoming = server.incoming();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let serving = tokio::spawn(async move {
            while let Some(next) = incoming.next().await {
                if let Ok(socket) = next {
                    let _ = tx.send((socket, incoming.handshakes_in_progress())).await;
                }
            }
        });
        let mut attacker = trusting(&pki).map_err(boxed)?;
        attacker.set_peer_verify_mode(PeerVerifyMode::QueryPeer);
        for round in 0..40 {
            let started = Instant::now();
            let attempt = tokio::time::timeout(
                Duration::from_secs(5),
                sslsocket::tokio::SslSocket::connect_to_host_encrypted_with_peer_name(
                    "127.0.0.1",
                    port,
                    "boom.example",
                    attacker.clone(),
                ),
            )
            .await;
            assert!(
                matches!(attempt, Ok(Err(_))),
                "round {round}: the attacker was not refused at once ({:?})",
                started.elapsed()
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 40);
        let honest = tokio::time::timeout(
            WAIT,
            sslsocket::tokio::SslSocket::connect_to_host_encrypted_with_peer_name(
                "127.0.0.1",
                port,
                "localhost",
                trusting(&pki).map_err(boxed)?,
            ),
        )
        .await
        .map_err(|_| "the honest client timed out")?;
        let _honest = honest.map_err(|e| format!("the honest client: {e}"))?;
        let (_served, in_progress) = tokio::time::timeout(WAIT, rx.recv())
            .await
            .map_err(|_| "the server never handed the honest connection out")?
            .ok_or("the server's loop ended")?;
        assert_eq!(in_progress, 0, "handshakes still counted as running");
        serving.abort();
        Ok::<(), BoxError>(())
    })
}

// ----- resolvers that return what cannot be used ---------------------------------------

/// A client certificate resolver whose identity pairs a certificate with another key (an
/// application that mixed up its files or rotated one and not the other).
struct MismatchedClientIdentity {
    identity: SslIdentity,
    calls: AtomicUsize,
}

impl ClientCertificateResolver for MismatchedClientIdentity {
    fn resolve(&self, _request: &CertificateRequest) -> Option<SslIdentity> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Some(self.identity.clone())
    }
}

// Was a defect (round 35): on the rustls backend a client certificate resolver that returns a certificate
// with a key that is not its own makes the client send NO certificate, silently (only a
// `tracing::warn!`, backend/rustls/resolver.rs `ClientCertResolver::resolve`: `prepare`
// fails and `None` is returned), and the handshake with a `QueryPeer` server succeeds as
// an anonymous client: the application asked to authenticate and the connection goes on
// without it. A mismatched configured certificate/key is a `KeyMismatch` error
// (README), and Qt fails the connection ("Private key does not certify public key").
// Right: fail closed: the handshake fails with that `KeyMismatch` configuration error.
// (The OpenSSL backend refuses a configuration with a client resolver: it fails too.)
#[test]
fn a_client_resolver_returning_a_mismatched_key_fails_the_handshake() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server_configuration = serving(&leaf).map_err(boxed)?;
    server_configuration.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    // Qt's server default, `QueryPeer`: a certificate is asked for, none is required.
    let server = SslServer::listen("127.0.0.1:0", server_configuration)?;
    let client_leaf = pki.client_cert(true)?;
    let other = pki.client_cert(true)?;
    let chain = client_leaf
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let resolver = Arc::new(MismatchedClientIdentity {
        identity: SslIdentity::new(chain, SslKey::from_der(&other.key_der)?)?,
        calls: AtomicUsize::new(0),
    });
    let mut configuration = trusting(&pki).map_err(boxed)?;
    configuration.set_client_certificate_resolver(Some(Arc::clone(&resolver) as _));
    let mut client = SslSocket::with_configuration(configuration);
    client.set_peer_verify_name("localhost");
    client.connect_to_host_encrypted("127.0.0.1", server.local_addr().port());
    let outcome = client.wait_for_encrypted(WAIT);
    let served = server.next_connection(WAIT);
    if let Ok(Ok(socket)) = &served {
        assert!(
            outcome.is_err(),
            "the client connected anonymously (the server saw {} certificate(s); resolver \
             asked {} time(s)) with an identity it could not use",
            socket.peer_certificate_chain().len(),
            resolver.calls.load(Ordering::SeqCst)
        );
    }
    assert!(outcome.is_err(), "the client's handshake succeeded");
    Ok(())
}

// ----- hooks that are not asked ---------------------------------------------------------

// Was a defect (round 35): a `VerifyPeer` server whose client sends no certificate reports
// `NoPeerCertificate` (PeerVerifyError, SslErrors) but never asks `SslHooks::ssl_errors`
// about it: core/verification.rs `missing_client_certificate` judges with
// `covers_all` (the ignore list) only, so a server hook that answers `Ignore` (Qt: a slot
// on `sslErrors` calling `ignoreSslErrors()`, which Qt's server-side `checkSslErrors`
// emits for exactly this error) is overruled and the client refused; a `Pause` verdict
// or `PauseOnSslErrors` is never honoured either. The client side asks the hooks for the
// same error (`certificate_less_server`, README "judged as any verification (the hooks,
// the ignore list, the pause mode)"), and qt-behaviors.md section 10
// (tst_QSslServer::testPreSharedKeyAuthenticationRequired: the VerifyPeer server gets one
// sslErrors with only NoPeerCertificate, ignores it, the connection is pending). Right: judge it with `policy.judge(..)` as the
// client side does: hooks first, then the ignore list and the pause mode.
#[test]
fn a_verify_peer_servers_hook_is_asked_about_a_missing_client_certificate() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::listen("127.0.0.1:0", verifying_server(&pki)?)?;
    let hooks = support::trust::RecordingHooks::new(Verdict::Ignore, None);
    server.set_hooks(Arc::clone(&hooks) as _);
    let mut client = SslSocket::with_configuration(trusting(&pki).map_err(boxed)?);
    client.set_peer_verify_name("localhost");
    client.connect_to_host_encrypted("127.0.0.1", server.local_addr().port());
    let _ = client.wait_for_encrypted(WAIT);
    let served = server.next_connection(WAIT)?;
    let calls = hooks.calls();
    let asked: Vec<Vec<SslErrorKind>> = calls
        .ssl_errors
        .iter()
        .map(|errors| errors.iter().map(SslError::error).collect())
        .collect();
    assert_eq!(
        asked,
        vec![vec![SslErrorKind::NoPeerCertificate]],
        "the server's hook was not asked about the missing certificate"
    );
    match served {
        Ok(socket) => {
            assert!(socket.is_encrypted());
            Ok(())
        }
        Err(failed) => Err(format!(
            "the server refused a client its hook accepted: {:?}",
            failed.ssl_handshake_errors()
        )
        .into()),
    }
}

// ----- pre-shared-key hooks -------------------------------------------------------------

/// A server's pre-shared-key hook with a bug: it panics on every request.
struct PanickingPsk {
    calls: AtomicUsize,
}

impl SslHooks for PanickingPsk {
    fn pre_shared_key(&self, _request: &mut sslsocket::PreSharedKeyAuthenticator) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        boom()
    }
}

// Held (OpenSSL backend; rustls has no PSK): a server PSK hook that panics inside
// OpenSSL's PSK callback is caught there (backend/openssl/psk.rs `ask`): no key, the
// `openssl s_client -psk` handshake fails, the process lives on and the blocking
// SslServer keeps serving certificate clients.
#[test]
fn a_panicking_psk_hook_on_the_blocking_server_fails_only_that_handshake() -> TestResult {
    if support::lacks(sslsocket::backend::SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf).map_err(boxed)?)?;
    let hooks = Arc::new(PanickingPsk {
        calls: AtomicUsize::new(0),
    });
    server.set_hooks(Arc::clone(&hooks) as _);
    let port = server.local_addr().port();
    for round in 0..3 {
        let run = OpensslClient::run(
            port,
            &os_args![
                "-psk",
                support::PSK_HEX,
                "-psk_identity",
                "client1",
                "-tls1_2",
                "-cipher",
                "PSK-AES128-GCM-SHA256"
            ],
            b"",
            WAIT,
        )?;
        // (s_client prints its session before it reads the server's answer.)
        assert!(
            run.combined().contains("alert unknown psk identity"),
            "round {round}: no refusal: {}",
            run.combined()
        );
        match server.next_connection(WAIT)? {
            Ok(_) => return Err(format!("round {round}: the server accepted the client").into()),
            Err(failed) => assert!(!failed.is_encrypted()),
        }
    }
    assert_eq!(hooks.calls.load(Ordering::SeqCst), 3);
    honest_client_served(&pki, &server)
}
