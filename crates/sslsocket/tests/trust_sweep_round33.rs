//! Adversarial review (round 33c): attempts to get a connection encrypted with a peer the
//! socket's policy refuses. None succeeded; the attempts are kept as tests. Was a defect:
//! on the OpenSSL backend a panicking hook unwound into OpenSSL's C callback and aborted
//! the process (the review skipped that case); the callbacks now catch it and refuse. Run with
//! `cargo test -p sslsocket --all-features --test trust_sweep_round33`, and with
//! `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{PauseMode, SslConfiguration, SslError, SslHooks, Verdict};
use support::attack::{AttackServer, ATTACK_MESSAGE};
use support::chains::*;

/// A hook that panics when asked about errors (an application bug).
struct PanickingHooks;

impl SslHooks for PanickingHooks {
    #[allow(clippy::panic)] // The application bug under test.
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        panic!("hook bug");
    }
}

/// A hook that ignores every error.
struct IgnoreAll;

impl SslHooks for IgnoreAll {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        Verdict::Ignore
    }
}

/// An untrusted server (its root is not trusted by the client).
fn untrusted_server() -> BoxResult<AttackServer> {
    let ca = root("Evil Root")?;
    let (der, key) = leaf(&ca, "localhost", |_| {})?;
    Ok(AttackServer::start(vec![der], &key.serialize_der(), 1)?)
}

fn client_configuration() -> BoxResult<SslConfiguration> {
    let other = root("Honest Root")?;
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![cert(&other.der)?]);
    Ok(configuration)
}

fn quiet_panics<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result
}

/// After the panic, the application goes on with the socket: it must never become
/// encrypted with the untrusted server, nor hand out its data.
fn blocking_after_panic(socket: &mut SslSocket) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let r = quiet_panics(|| socket.wait_for_encrypted(Duration::from_millis(100)));
        match r {
            Ok(Ok(())) => break,
            Ok(Err(sslsocket::Error::Timeout(_))) | Err(_) => continue,
            Ok(Err(_)) => break,
        }
    }
    assert!(
        !socket.is_encrypted(),
        "encrypted with a peer nobody accepted"
    );
    let mut buf = [0u8; 64];
    let n = quiet_panics(|| socket.read(&mut buf).unwrap_or(0)).unwrap_or(0);
    assert!(
        !buf[..n]
            .windows(ATTACK_MESSAGE.len())
            .any(|w| w == ATTACK_MESSAGE),
        "the untrusted server's data was handed out"
    );
}

#[test]
fn a_panicking_ssl_errors_hook_fails_closed_on_the_blocking_client() -> TestResult {
    // On the OpenSSL backend the hook runs inside OpenSSL's verify callback, which catches
    // the panic and refuses the peer (it used to unwind into C and abort the process).
    let server = untrusted_server()?;
    let mut socket = SslSocket::with_configuration(client_configuration()?);
    socket.set_hooks(Arc::new(PanickingHooks));
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port(), "localhost");
    blocking_after_panic(&mut socket);
    Ok(())
}

#[test]
fn a_panicking_ssl_errors_hook_fails_closed_on_the_tokio_client() -> TestResult {
    let server = untrusted_server()?;
    let configuration = client_configuration()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut socket = rt.block_on(async {
        sslsocket::tokio::SslSocket::connect_to_host("127.0.0.1", server.port(), configuration)
            .await
    })?;
    socket.set_hooks(Arc::new(PanickingHooks));
    socket.set_peer_verify_name("localhost");
    socket.begin_client_encryption()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut encrypted = false;
    while Instant::now() < deadline {
        let r = quiet_panics(|| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(200), socket.handshake()).await
            })
        });
        match r {
            Ok(Ok(Ok(Handshake::Encrypted))) => {
                encrypted = true;
                break;
            }
            Ok(Ok(Ok(_))) => break,
            Ok(Ok(Err(_))) => break,
            Ok(Err(_)) | Err(_) => continue,
        }
    }
    assert!(
        !encrypted && !socket.is_encrypted(),
        "encrypted with a peer nobody accepted"
    );
    Ok(())
}

#[test]
fn hooks_replaced_during_a_pause_do_not_accept_the_peer() -> TestResult {
    let server = untrusted_server()?;
    let mut socket = SslSocket::with_configuration(client_configuration()?);
    socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port(), "localhost");
    assert!(support::trust::wait_until_paused(&mut socket, WAIT));
    socket.set_hooks(Arc::new(IgnoreAll));
    let _ = socket.set_peer_verify_mode(sslsocket::PeerVerifyMode::VerifyNone);
    let mut configuration = socket.ssl_configuration().clone();
    configuration.set_peer_verify_mode(sslsocket::PeerVerifyMode::VerifyNone);
    assert!(socket.set_ssl_configuration(configuration).is_err());
    assert!(socket.resume().is_err());
    let _ = socket.wait_for_encrypted(Duration::from_millis(500));
    assert!(!socket.is_encrypted());
    Ok(())
}

#[test]
fn a_paused_socket_reconnected_elsewhere_does_not_carry_its_decision() -> TestResult {
    let first = untrusted_server()?;
    let second = untrusted_server()?;
    let mut socket = SslSocket::with_configuration(client_configuration()?);
    socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", first.port(), "localhost");
    assert!(support::trust::wait_until_paused(&mut socket, WAIT));
    // A blanket ignore meant for the paused handshake, then a reconnect elsewhere.
    socket.ignore_ssl_errors();
    socket.set_pause_mode(PauseMode::PauseNever);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", second.port(), "localhost");
    let _ = socket.wait_for_encrypted(Duration::from_secs(3));
    assert!(!socket.is_encrypted(), "the reconnect ignored every error");
    Ok(())
}
