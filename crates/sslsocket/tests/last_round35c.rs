//! Review round 35 (c): attacks on this round's latest changes: hook panics caught
//! (`SslHooks`), the OpenSSL backend keeping an accepted connection's session when freed
//! without close_notify, a `VerifyPeer` server judging a missing client certificate with
//! its hooks and pause mode, `ReadyRead` only for an accepted peer, tokio's `handshake()`
//! waiting for our last flight and the readers' clean end after close_notify. Run with
//! `cargo test -p sslsocket --all-features --test last_round35c`, and again with
//! `SSLSOCKET_BACKEND=openssl`. Every wait is bounded; every peer is on 127.0.0.1 with
//! certificates made at test time.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    PeerVerifyMode, SslCertificate, SslConfiguration, SslError, SslHooks, SslProtocol, Verdict,
};
use support::{active_backend, serving, trusting, Issued, OpensslServer, Pki};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const WAIT: Duration = Duration::from_secs(10);

/// The payload of every panic a hook of this file raises on purpose.
const MARK: &str = "last_round35c: an application hook panicked on purpose";

fn boxed(e: impl std::fmt::Display) -> BoxError {
    e.to_string().into()
}

/// Unwinds as a panicking hook would, without the panic hook's message.
fn boom() -> ! {
    std::panic::resume_unwind(Box::new(MARK))
}

/// Hooks whose `handshake_interrupted` (Qt's `handshakeInterruptedOnError` slot) panics.
struct PanickingInterrupt {
    calls: AtomicUsize,
}

impl SslHooks for PanickingInterrupt {
    fn handshake_interrupted(&self, _error: &SslError) -> Verdict {
        self.calls.fetch_add(1, Ordering::SeqCst);
        boom()
    }
}

/// `openssl s_server` with `leaf` and `extra` options.
fn s_server(leaf: &Issued, extra: &[&str]) -> Result<OpensslServer, BoxError> {
    let mut args = leaf.openssl_args();
    args.extend(extra.iter().map(std::ffi::OsString::from));
    OpensslServer::start(&args).map_err(boxed)
}

fn runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

// ----- hooks that panic on a client ---------------------------------------------------

// Was a defect (round 35): rustls backend, blocking client (the tokio test below too): with
// `set_handshake_must_interrupt_on_error(true)`, an `SslHooks::handshake_interrupted` that
// panics unwinds out of the application's `wait_for_encrypted()` (through rustls's
// verifier). This round made a panicking `ssl_errors` refuse the peer on every backend and
// driver (verify/policy.rs `judge`, catch_unwind), but the interrupt branch of the same
// function (verify/policy.rs:165-168, `h.handshake_interrupted(error)`) is not guarded;
// on the OpenSSL backend the verify trampoline catches it and the handshake fails. Right:
// catch it there as `ssl_errors` is (a panic = `Verdict::Abort`, the peer refused, the
// handshake failed with the error listed), the same on both backends.
#[test]
fn a_panicking_interrupt_hook_refuses_the_peer_blocking_client() -> TestResult {
    let pki = Pki::new()?;
    // A name mismatch: one error, so the interrupt hook is asked once.
    let leaf = pki.leaf("other.example", &["other.example"])?;
    let server = s_server(&leaf, &["-tls1_3"])?;
    let hooks = Arc::new(PanickingInterrupt {
        calls: AtomicUsize::new(0),
    });
    let mut configuration = trusting(&pki).map_err(boxed)?;
    configuration.set_handshake_must_interrupt_on_error(true);
    let port = server.port();
    let hooks_for_client = Arc::clone(&hooks);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut client = SslSocket::with_configuration(configuration);
        client.set_hooks(hooks_for_client as _);
        client.connect_to_host_encrypted("localhost", port);
        let result = client.wait_for_encrypted(WAIT);
        (result.is_ok(), client.is_encrypted())
    }));
    assert_eq!(
        hooks.calls.load(Ordering::SeqCst),
        1,
        "the hook was asked once"
    );
    match outcome {
        Ok((ok, encrypted)) => {
            assert!(
                !ok && !encrypted,
                "{}: the client was encrypted past a panicking interrupt hook",
                active_backend()
            );
            Ok(())
        }
        Err(_) => Err(format!(
            "{} backend, blocking client: the hook's panic unwound out of \
             wait_for_encrypted() instead of refusing the peer",
            active_backend()
        )
        .into()),
    }
}

// Was a defect (round 35): rustls backend, tokio client: the same panic unwinds out of
// `connect_to_host_encrypted(..).await` (the task panics). Same cause and fix as above.
#[test]
fn a_panicking_interrupt_hook_refuses_the_peer_tokio_client() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("other.example", &["other.example"])?;
    let server = s_server(&leaf, &["-tls1_3"])?;
    let hooks = Arc::new(PanickingInterrupt {
        calls: AtomicUsize::new(0),
    });
    let mut configuration = trusting(&pki).map_err(boxed)?;
    configuration.set_handshake_must_interrupt_on_error(true);
    let port = server.port();
    let rt = runtime()?;
    let hooks_for_client = Arc::clone(&hooks);
    let task = rt.block_on(async move {
        tokio::spawn(async move {
            let Ok(mut socket) =
                sslsocket::tokio::SslSocket::connect_to_host("localhost", port, configuration)
                    .await
            else {
                return false;
            };
            socket.set_hooks(hooks_for_client as _);
            tokio::time::timeout(WAIT, socket.start_client_encryption())
                .await
                .is_ok_and(|r| r.is_ok())
        })
        .await
    });
    assert_eq!(
        hooks.calls.load(Ordering::SeqCst),
        1,
        "the hook was asked once"
    );
    match task {
        Ok(encrypted) => {
            assert!(!encrypted, "the client was encrypted past a panicking hook");
            Ok(())
        }
        Err(e) if e.is_panic() => Err(format!(
            "{} backend, tokio client: the hook's panic unwound out of the handshake",
            active_backend()
        )
        .into()),
        Err(e) => Err(boxed(e)),
    }
}

/// A `VerifyPeer` server configuration of `pki` (a missing client certificate is
/// `NoPeerCertificate`, judged by the socket's policy).
fn verify_peer_server(pki: &Pki) -> Result<SslConfiguration, BoxError> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut configuration = serving(&leaf).map_err(boxed)?;
    configuration.set_peer_verify_mode(PeerVerifyMode::VerifyPeer);
    configuration.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    Ok(configuration)
}

/// A client of `port` that sends no certificate, driven on its own thread for up to 5 s
/// (its outcome does not matter here).
fn certificate_less_client(pki: &Pki, port: u16) -> Result<thread::JoinHandle<()>, BoxError> {
    let configuration = trusting(pki).map_err(boxed)?;
    Ok(thread::spawn(move || {
        let mut client = SslSocket::with_configuration(configuration);
        client.connect_to_host_encrypted("localhost", port);
        let _ = client.wait_for_encrypted(Duration::from_secs(5));
        let _ = client.wait_for_ready_read(Duration::from_millis(500));
    }))
}

// Was a defect (round 35): both backends, a server socket the application drives (`from_tcp_stream` +
// `start_server_encryption`, as Qt's `setSocketDescriptor` + `startServerEncryption`):
// with `set_handshake_must_interrupt_on_error(true)`, a `VerifyPeer` server whose client
// sends no certificate asks `handshake_interrupted` about `NoPeerCertificate` (new this
// round: core/verification.rs `judge_alone`), and a panic there unwinds out of the
// application's `wait_for_encrypted()`, on OpenSSL too (the judgement runs in the core,
// outside the verify trampoline that catches panics). Only the blocking SslServer's
// thread catches it (blocking/server.rs). Right: verify/policy.rs `judge` catches a panic
// of `handshake_interrupted` as it does one of `ssl_errors` (refuse the peer).
#[test]
fn a_panicking_interrupt_hook_on_a_missing_client_certificate_refuses_it() -> TestResult {
    let pki = Pki::new()?;
    let mut configuration = verify_peer_server(&pki)?;
    configuration.set_handshake_must_interrupt_on_error(true);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let client = certificate_less_client(&pki, port)?;
    let (tcp, _) = listener.accept()?;
    let hooks = Arc::new(PanickingInterrupt {
        calls: AtomicUsize::new(0),
    });
    let hooks_for_server = Arc::clone(&hooks);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut server = SslSocket::from_tcp_stream(tcp, configuration).map_err(boxed)?;
        server.set_hooks(hooks_for_server as _);
        server.start_server_encryption().map_err(boxed)?;
        let result = server.wait_for_encrypted(WAIT);
        Ok::<_, BoxError>((result.is_ok(), server.is_encrypted()))
    }));
    let _ = client.join();
    assert_eq!(
        hooks.calls.load(Ordering::SeqCst),
        1,
        "the hook was asked once"
    );
    match outcome {
        Ok(result) => {
            let (ok, encrypted) = result?;
            assert!(
                !ok && !encrypted,
                "a client without a certificate was accepted"
            );
            Ok(())
        }
        Err(_) => Err(format!(
            "{} backend: the interrupt hook's panic unwound out of the server's \
             wait_for_encrypted()",
            active_backend()
        )
        .into()),
    }
}

// ----- sessions of connections given up on ---------------------------------------------

/// A first connection to `port` that ignores every error (given before its first
/// connection, so it holds), ended by `end` while open; then a second one with the same
/// configuration (its store) and the same blanket ignore: whether it resumed.
fn resumed_after_errors(
    port: u16,
    configuration: &SslConfiguration,
    end: fn(&mut SslSocket),
) -> Result<bool, BoxError> {
    let mut first = SslSocket::with_configuration(configuration.clone());
    first.ignore_ssl_errors();
    first.connect_to_host_encrypted("localhost", port);
    first.wait_for_encrypted(WAIT).map_err(boxed)?;
    assert!(
        !first.ssl_handshake_errors().is_empty(),
        "the first connection was to have errors"
    );
    // TLS 1.3 tickets come after the handshake.
    let _ = first.wait_for_ready_read(Duration::from_millis(500));
    end(&mut first);
    drop(first);
    thread::sleep(Duration::from_millis(100));
    let mut second = SslSocket::with_configuration(configuration.clone());
    second.ignore_ssl_errors();
    second.connect_to_host_encrypted("localhost", port);
    second.wait_for_encrypted(WAIT).map_err(boxed)?;
    Ok(second.is_session_resumed())
}

// Held: a connection whose (ignored) errors were open when the application aborted it
// gives its sessions up on both backends, TLS 1.3 and 1.2 (README: "abort() while a
// connection with errors is open gives its peer up and drops them too"): the OpenSSL
// session's new Drop (keep_session_on_free) sees the refusal abort() recorded, and the
// next connection runs a full handshake. The control (close() instead) resumes, so the
// test can tell.
#[test]
fn aborting_an_open_connection_with_errors_leaves_nothing_resumable() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("other.example", &["other.example"])?;
    for protocol in ["-tls1_3", "-tls1_2"] {
        let server = s_server(&leaf, &[protocol])?;
        let configuration = trusting(&pki).map_err(boxed)?;
        let control = resumed_after_errors(server.port(), &configuration, |s| {
            let _ = s.disconnect_within(Duration::from_secs(2));
        })?;
        assert!(
            control,
            "{protocol}: the control (a clean close) did not resume"
        );
        let configuration = trusting(&pki).map_err(boxed)?;
        let resumed = resumed_after_errors(server.port(), &configuration, SslSocket::abort)?;
        assert!(
            !resumed,
            "{} backend, {protocol}: a session of a connection with errors aborted while \
             open was resumed",
            active_backend()
        );
    }
    Ok(())
}

// ----- a client certificate resolver that panics ----------------------------------------

/// A client certificate resolver with a bug: it panics when asked.
struct PanickingClientResolver {
    calls: AtomicUsize,
}

impl sslsocket::ClientCertificateResolver for PanickingClientResolver {
    fn resolve(&self, _request: &sslsocket::CertificateRequest) -> Option<sslsocket::SslIdentity> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        boom()
    }
}

// Held (rustls; the OpenSSL backend refuses a configuration with a client resolver): a
// client certificate resolver that panics fails the client's handshake (no unwinding into
// the application), TLS 1.3 and 1.2, and the `QueryPeer` server (which would take a
// client without a certificate) never hands out an anonymous connection: the flight
// without the certificate is withheld (verify/record.rs `fail_locally`).
#[test]
fn a_panicking_client_resolver_fails_the_handshake_with_nothing_sent() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let mut server_configuration = serving(&leaf).map_err(boxed)?;
        server_configuration.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
        server_configuration.set_protocol(protocol);
        let server = SslServer::listen("127.0.0.1:0", server_configuration)?;
        let resolver = Arc::new(PanickingClientResolver {
            calls: AtomicUsize::new(0),
        });
        let mut configuration = trusting(&pki).map_err(boxed)?;
        configuration.set_client_certificate_resolver(Some(Arc::clone(&resolver) as _));
        let port = server.local_addr().port();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut client = SslSocket::with_configuration(configuration);
            client.connect_to_host_encrypted("localhost", port);
            let result = client.wait_for_encrypted(WAIT);
            let error = client.error_string();
            (result.is_ok(), error)
        }));
        let Ok((ok, error)) = outcome else {
            return Err(
                format!("{protocol:?}: the resolver's panic unwound into the client").into(),
            );
        };
        if active_backend() != "rustls" {
            assert!(!ok, "a configuration the backend cannot honour connected");
            continue;
        }
        assert_eq!(
            resolver.calls.load(Ordering::SeqCst),
            1,
            "{protocol:?}: asked once"
        );
        assert!(
            !ok,
            "{protocol:?}: the client connected past its panicking resolver"
        );
        assert!(
            error.contains("resolver"),
            "{protocol:?}: the error does not say why: {error}"
        );
        // The server's handshake of that client ends (failed) within 3 s; an anonymous
        // connection handed out is the bypass.
        if let Ok(Ok(socket)) = server.next_connection(Duration::from_secs(3)) {
            let state = socket.state();
            return Err(format!(
                "{protocol:?}: the server handed out an anonymous connection ({state:?})"
            )
            .into());
        }
    }
    Ok(())
}

// ----- a pre-shared-key hook that panics on a client --------------------------------------

/// A pre-shared-key hook with a bug: it panics when asked.
struct PanickingPskHook {
    calls: AtomicUsize,
}

impl SslHooks for PanickingPskHook {
    fn pre_shared_key(&self, _request: &mut sslsocket::PreSharedKeyAuthenticator) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        boom()
    }
}

// Was a defect (round 35): rustls backend, blocking client: a configuration that asks for pre-shared keys
// (`set_pre_shared_key_authenticates_peer(true)`) has its `SslHooks::pre_shared_key` asked
// once at the handshake's start (the "not supported" probe, core/lifecycle.rs:131-132,
// `hooks.pre_shared_key(&mut probe)`), unguarded: a panic there unwinds out of the
// application's `connect_to_host_encrypted()`, where this round's rule is that a hook
// that panics ends only its handshake (the OpenSSL backend's PSK callback catches it,
// backend/openssl/psk.rs). Right: catch_unwind around the probe; a panic fails the
// handshake with a ConfigError, like a key given to a backend without PSK.
#[test]
fn a_panicking_psk_probe_fails_only_the_handshake() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = s_server(&leaf, &["-tls1_3"])?;
    let hooks = Arc::new(PanickingPskHook {
        calls: AtomicUsize::new(0),
    });
    let mut configuration = trusting(&pki).map_err(boxed)?;
    configuration.set_pre_shared_key_authenticates_peer(true);
    let port = server.port();
    let hooks_for_client = Arc::clone(&hooks);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut client = SslSocket::with_configuration(configuration);
        client.set_hooks(hooks_for_client as _);
        client.connect_to_host_encrypted("localhost", port);
        let _ = client.wait_for_encrypted(WAIT);
        client.state()
    }));
    match outcome {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "{} backend: the PSK hook's panic (asked {} time(s)) unwound out of the \
             client's connect/handshake",
            active_backend(),
            hooks.calls.load(Ordering::SeqCst)
        )
        .into()),
    }
}
