//! Round 34 review: conformance with Qt 6's `QSslSocket` API surface (qt-api-surface.md,
//! qt-behaviors.md, the Qt reference) through the README's Qt → Rust table, on both
//! drivers. Real peers on 127.0.0.1 (our own servers), certificates made at test time.
//! Run on both backends (`SSLSOCKET_BACKEND=openssl` for the second run).

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use sslsocket::backend::{self, ImplementedClass, SupportedFeature};
use sslsocket::blocking::SslSocket;
use sslsocket::core::NextProtocolNegotiationStatus;
use sslsocket::prelude::*;
use sslsocket::{
    PauseMode, PeerVerifyMode, SocketError, SocketState, SslConfiguration, SslEvent, SslMode,
    SslProtocol,
};
use support::{serving, trusting, Pki};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const WAIT: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(100);

fn pair_configs() -> Result<(SslConfiguration, SslConfiguration), BoxError> {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serving(&leaf).map_err(|e| e.to_string())?;
    let client = trusting(&pki).map_err(|e| e.to_string())?;
    Ok((server, client))
}

fn count(events: &[SslEvent], f: impl Fn(&SslEvent) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

// A server that stays connected (reading) until the client goes away, at most `WAIT`.
fn idle_server(
    server: SslConfiguration,
) -> Result<(u16, std::thread::JoinHandle<Result<(), BoxError>>), BoxError> {
    Ok(support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = socket.read(&mut buf) {
            let _ = n;
        }
        Ok(())
    })?)
}

// ----- §1 `constructing` ----------------------------------------------------------------

// Held: a fresh socket answers as Qt's `constructing` test expects (Unconnected,
// UnencryptedMode, nothing buffered, "Unknown error", null session information, default
// settings, every wait false at once, write refused).
#[test]
fn a_fresh_socket_answers_like_qt_constructing() -> TestResult {
    let mut socket = SslSocket::new();
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    assert_eq!(socket.mode(), SslMode::UnencryptedMode);
    assert!(!socket.is_encrypted());
    assert_eq!(socket.bytes_available(), 0);
    assert_eq!(socket.bytes_to_write(), 0);
    assert!(!socket.can_read_line());
    assert!(socket.at_end());
    assert!(socket.local_certificate().is_none());
    assert!(socket.private_key().is_none());
    assert_eq!(socket.error(), SocketError::UnknownSocketError);
    assert_eq!(socket.error_string(), "Unknown error");
    assert_eq!(socket.read_buffer_size(), 0);
    assert_eq!(socket.protocol(), SslProtocol::SecureProtocols);
    assert_eq!(socket.peer_verify_mode(), PeerVerifyMode::AutoVerifyPeer);
    assert_eq!(socket.peer_verify_depth(), 0);
    assert_eq!(socket.session_protocol(), SslProtocol::UnknownProtocol);
    assert!(socket.session_cipher().is_none());
    assert!(socket.peer_certificate().is_none());
    assert!(socket.ocsp_responses().is_empty());
    assert!(socket.next_negotiated_protocol().is_none());
    assert_eq!(
        socket.next_protocol_negotiation_status(),
        NextProtocolNegotiationStatus::NextProtocolNegotiationNone
    );
    assert!(socket.read_line(0).is_empty());
    assert!(socket.peek(10).is_empty());
    let started = Instant::now();
    assert!(socket
        .wait_for_connected(Duration::from_millis(10))
        .is_err());
    assert!(socket
        .wait_for_ready_read(Duration::from_millis(10))
        .is_err());
    assert!(socket
        .wait_for_bytes_written(Duration::from_millis(10))
        .is_err());
    assert!(socket
        .wait_for_disconnected(Duration::from_millis(10))
        .is_err());
    assert!(socket
        .wait_for_encrypted(Duration::from_millis(10))
        .is_err());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        socket.write(b"x").is_err(),
        "Qt's write on a closed device is -1"
    );
    let mut buf = [0u8; 4];
    assert!(
        socket.read(&mut buf).is_err(),
        "Qt's read on a closed device is -1"
    );
    Ok(())
}

// ----- waits and error() -------------------------------------------------------------

// Was a defect (round 34): a `wait_for_ready_read` that times out leaves `error()` at UnknownSocketError and
// emits no ErrorOccurred; Qt's waitForReadyRead sets SocketTimeoutError (setErrorAndEmit)
// and keeps the connection, so `if (!s.waitForReadyRead(t) && s.error() ==
// SocketTimeoutError)` is the Qt idiom.
#[test]
fn blocking_wait_for_ready_read_timeout_sets_socket_timeout_error() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = idle_server(server)?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    let _ = socket.take_events();
    let waited = socket.wait_for_ready_read(SHORT);
    let events = socket.take_events();
    let error = socket.error();
    let state = socket.state();
    let encrypted = socket.is_encrypted();
    socket.abort();
    let _ = served.join();
    let waited_kind = waited.as_ref().err().map(|e| e.socket_error());
    assert_eq!(waited_kind, Some(SocketError::SocketTimeoutError));
    assert_eq!(
        state,
        SocketState::ConnectedState,
        "a timeout keeps the connection"
    );
    assert!(encrypted);
    assert_eq!(
        error,
        SocketError::SocketTimeoutError,
        "Qt's error() after a timed-out waitForReadyRead; events {events:?}"
    );
    assert_eq!(
        count(&events, |e| *e
            == SslEvent::ErrorOccurred(SocketError::SocketTimeoutError)),
        1,
        "Qt emits errorOccurred(SocketTimeoutError): {events:?}"
    );
    Ok(())
}

// Was a defect (round 34): the same for `wait_for_encrypted` against a server that never answers the
// ClientHello: Qt's waitForEncrypted returns false with error() == SocketTimeoutError (the
// plain socket's timed-out waitForReadyRead, forwarded by _q_errorSlot); here error() stays
// UnknownSocketError.
#[test]
fn blocking_wait_for_encrypted_timeout_sets_socket_timeout_error() -> TestResult {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (_, client) = pair_configs()?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    let waited = socket.wait_for_encrypted(Duration::from_millis(200));
    let error = socket.error();
    let events = socket.take_events();
    socket.abort();
    drop(listener);
    assert_eq!(
        waited.as_ref().err().map(|e| e.socket_error()),
        Some(SocketError::SocketTimeoutError)
    );
    assert_eq!(
        error,
        SocketError::SocketTimeoutError,
        "Qt's error() after a timed-out waitForEncrypted; events {events:?}"
    );
    Ok(())
}

// ----- session information after the connection ended --------------------------------

// Was a defect (round 34): Qt documents sessionCipher() as "a null cipher if the connection isn't encrypted"
// and sessionProtocol() as "UnknownProtocol if the connection isn't encrypted" (the OpenSSL
// backend frees its SSL in disconnected()). After `disconnect_from_host()` and after
// `abort()` ours still reports the old session's cipher and protocol while `is_encrypted()`
// is false (src/core/info.rs `session_cipher`/`session_protocol` read `negotiated`, which
// only the next connection clears).
#[test]
fn blocking_session_cipher_and_protocol_are_null_once_disconnected() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = idle_server(server)?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    assert!(socket.session_cipher().is_some());
    assert_ne!(socket.session_protocol(), SslProtocol::UnknownProtocol);
    socket.disconnect_from_host()?;
    let _ = served.join();
    assert!(!socket.is_encrypted());
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    // Qt: the mode stays (connectToHostEncrypted test).
    assert_eq!(socket.mode(), SslMode::SslClientMode);
    assert_eq!(
        socket.session_protocol(),
        SslProtocol::UnknownProtocol,
        "Qt: UnknownProtocol once the connection is not encrypted"
    );
    assert!(
        socket.session_cipher().is_none(),
        "Qt: a null cipher once the connection is not encrypted: {:?}",
        socket.session_cipher()
    );
    Ok(())
}

// Was a defect (round 34): the same on tokio after `abort()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_session_cipher_and_protocol_are_null_once_aborted() -> TestResult {
    let (server_config, client) = pair_configs()?;
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", server_config).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut s = server.accept_encrypted().await.ok()?;
        let _ = tokio::time::timeout(WAIT, s.wait_for_disconnected()).await;
        Some(())
    });
    let mut socket = tokio::time::timeout(
        WAIT,
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client),
    )
    .await??;
    assert!(socket.session_cipher().is_some());
    socket.abort();
    let _ = served.await;
    assert!(!socket.is_encrypted());
    assert_eq!(socket.session_protocol(), SslProtocol::UnknownProtocol);
    assert!(
        socket.session_cipher().is_none(),
        "{:?}",
        socket.session_cipher()
    );
    Ok(())
}

// ----- atEnd --------------------------------------------------------------------------

// Was a defect (round 34, low): Qt's atEnd() on a sequential device is `bytesAvailable() == 0` (QIODevice::
// atEnd; QSslSocket::atEnd adds only the plain socket's own atEnd in UnencryptedMode): true on
// an open connection with nothing buffered. Here it is false until the peer's end of
// stream (src/core/buffers.rs `at_end`), so Qt's `while (!s.atEnd()) s.read(..)` drain loop
// blocks/spins instead of ending at the last buffered byte.
#[test]
fn at_end_is_true_on_a_connected_socket_with_nothing_buffered() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        socket.write_all(b"hello\n")?;
        socket.flush()?;
        let mut buf = [0u8; 16];
        let _ = socket.read(&mut buf);
        Ok(())
    })?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    if socket.bytes_available() == 0 {
        socket.wait_for_ready_read(WAIT)?;
    }
    let before = socket.at_end();
    let line = socket.read_line(0);
    let after = socket.at_end();
    socket.abort();
    let _ = served.join();
    assert_eq!(line, b"hello\n");
    assert!(!before, "data buffered: not at end");
    assert!(
        after,
        "Qt: atEnd() once nothing is buffered on a sequential device"
    );
    Ok(())
}

// ----- bytesToWrite / bytesWritten ----------------------------------------------------

// Held: bytes written before the handshake count in `bytes_to_write()` (Qt: queued until
// `encrypted`), a wait empties it, and the `BytesWritten` events add up to what was
// written.
#[test]
fn bytes_written_before_the_handshake_are_counted_and_reported() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while got.len() < 300 {
            match socket.read(&mut buf) {
                Ok(n @ 1..) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
                _ => break,
            }
        }
        if got != vec![7u8; 300] {
            return Err(format!("server got {} bytes", got.len()).into());
        }
        Ok(())
    })?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.write_all(&[7u8; 300])?;
    let queued = socket.bytes_to_write();
    socket.wait_for_encrypted(WAIT)?;
    let waited = socket.wait_for_bytes_written(WAIT);
    let left = socket.bytes_to_write();
    let events = socket.take_events();
    let served = served.join().map_err(|_| "server panicked")?;
    socket.abort();
    served?;
    assert_eq!(queued, 300);
    // The write may have gone out in `wait_for_encrypted` already; either way the wait is
    // Qt's true (something was written since the last wait).
    assert!(waited.is_ok(), "{waited:?}");
    assert_eq!(left, 0);
    let written: u64 = events
        .iter()
        .map(|e| match e {
            SslEvent::BytesWritten(n) => *n as u64,
            _ => 0,
        })
        .sum();
    assert_eq!(written, 300, "{events:?}");
    Ok(())
}

// ----- §13 `resume` --------------------------------------------------------------------

fn paused_client(port: u16) -> Result<SslSocket, BoxError> {
    let mut socket = SslSocket::with_configuration(SslConfiguration::default());
    socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    socket.connect_to_host_encrypted("localhost", port);
    match socket.handshake(WAIT)? {
        Handshake::NeedsDecision(_) => Ok(socket),
        _ => Err("not paused".into()),
    }
}

// Held: Qt's `resume` matrix, first half: paused (1 sslErrors, 0 errorOccurred, 0
// encrypted); `resume()` without ignoring fails once with SslHandshakeFailedError and no
// `Encrypted`.
#[test]
fn resume_without_ignoring_fails_once_with_handshake_failed() -> TestResult {
    let (server, _) = pair_configs()?;
    let server = sslsocket::blocking::SslServer::listen("127.0.0.1:0", server)?;
    let port = server.local_addr().port();
    let accepting = std::thread::spawn(move || {
        let _ = server.next_connection(Duration::from_secs(3));
    });
    let mut socket = paused_client(port)?;
    let paused_events = socket.take_events();
    assert_eq!(
        count(&paused_events, |e| matches!(e, SslEvent::SslErrors(_))),
        1
    );
    assert_eq!(
        count(&paused_events, |e| matches!(e, SslEvent::ErrorOccurred(_))),
        0
    );
    assert_eq!(count(&paused_events, |e| *e == SslEvent::Encrypted), 0);
    let resumed = socket.resume();
    let waited = socket.wait_for_encrypted(WAIT);
    let events = socket.take_events();
    socket.abort();
    let _ = accepting.join();
    assert!(resumed.is_err() || waited.is_err());
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    assert_eq!(
        count(&events, |e| *e
            == SslEvent::ErrorOccurred(
                SocketError::SslHandshakeFailedError
            )),
        1,
        "{events:?}"
    );
    assert_eq!(count(&events, |e| *e == SslEvent::Encrypted), 0);
    Ok(())
}

// Held: `resume()` after `ignore_ssl_errors()` finishes the handshake (encrypted once, no
// errorOccurred), the errors stay in `ssl_handshake_errors()`.
#[test]
fn resume_after_ignoring_all_finishes_the_handshake() -> TestResult {
    let (server, _) = pair_configs()?;
    let (port, served) = idle_server(server)?;
    let mut socket = paused_client(port)?;
    let _ = socket.take_events();
    socket.ignore_ssl_errors();
    socket.resume()?;
    socket.wait_for_encrypted(WAIT)?;
    let events = socket.take_events();
    let errors = socket.ssl_handshake_errors().len();
    socket.abort();
    let _ = served.join();
    assert_eq!(
        count(&events, |e| *e == SslEvent::Encrypted),
        1,
        "{events:?}"
    );
    assert_eq!(
        count(&events, |e| matches!(e, SslEvent::ErrorOccurred(_))),
        0
    );
    assert!(errors > 0);
    Ok(())
}

// ----- §19 backend registry ---------------------------------------------------------------

// Held: Qt's `activeBackend` test: supportedProtocols of the active backend contains
// AnyProtocol and SecureProtocols and equals the list by name; UnknownProtocol is not a
// supported protocol; unknown names support nothing; selecting the active backend again
// succeeds after use; the library versions are known.
#[test]
fn the_registry_answers_like_qt_active_backend() -> TestResult {
    // Make sure the backend was used.
    let _ = SslSocket::new();
    let active = backend::active_backend().ok_or("no active backend")?;
    assert!(backend::available_backends().contains(&active));
    let protocols = backend::supported_protocols(None);
    assert!(protocols.contains(&SslProtocol::AnyProtocol));
    assert!(protocols.contains(&SslProtocol::SecureProtocols));
    assert_eq!(protocols, backend::supported_protocols(Some(active)));
    assert!(!backend::is_protocol_supported(
        SslProtocol::UnknownProtocol,
        None
    ));
    assert!(backend::supported_protocols(Some("TheQtTLS")).is_empty());
    assert!(backend::supported_features(Some("TheQtTLS")).is_empty());
    assert!(backend::implemented_classes(Some("TheQtTLS")).is_empty());
    assert!(!backend::is_feature_supported(
        SupportedFeature::ClientSideAlpn,
        Some("TheQtTLS")
    ));
    assert!(!backend::is_class_implemented(
        ImplementedClass::Socket,
        Some("TheQtTLS")
    ));
    assert!(backend::is_class_implemented(
        ImplementedClass::Socket,
        None
    ));
    assert!(backend::is_class_implemented(
        ImplementedClass::Certificate,
        None
    ));
    assert!(backend::is_class_implemented(ImplementedClass::Key, None));
    assert_eq!(backend::set_active_backend(active), Ok(()));
    assert!(backend::supports_ssl());
    assert!(backend::ssl_library_version_number() > 0);
    assert!(!backend::ssl_library_build_version_string().is_empty());
    assert!(backend::ssl_library_build_version_number() > 0);
    Ok(())
}

// ----- connectToHost on a socket that is connected ------------------------------------

// Was a defect (round 34): Qt's connectToHost() on a socket that is connected (or connecting) refuses:
// "QAbstractSocket::connectToHost() called when already looking up or connecting/connected"
// with OperationError, and the live connection is untouched (QSslSocket::
// connectToHostEncrypted likewise returns with a warning). Here the blocking socket aborts the
// live encrypted connection without close_notify (src/blocking/socket.rs `begin_connect`:
// `if state != UnconnectedState { self.abort() }`), so a misplaced call silently drops the
// session and whatever was still queued for the peer.
#[test]
fn connect_to_host_on_a_connected_socket_keeps_the_connection() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        let line = socket.next_line(0, WAIT)?;
        if line != b"after\n" {
            return Err(format!("server got {line:?}").into());
        }
        Ok(())
    })?;
    // A second listener the misplaced call would connect to.
    let other = std::net::TcpListener::bind("127.0.0.1:0")?;
    let other_port = other.local_addr()?.port();
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    let _ = socket.take_events();
    socket.connect_to_host("127.0.0.1", other_port);
    let state = socket.state();
    let encrypted = socket.is_encrypted();
    let error = socket.error();
    let events = socket.take_events();
    let wrote = if encrypted {
        socket
            .write_all(b"after\n")
            .and_then(|()| socket.flush())
            .map_err(|e| e.to_string())
    } else {
        Err("not encrypted any more".to_string())
    };
    socket.abort();
    let served = served.join().map_err(|_| "server panicked")?;
    drop(other);
    assert_eq!(
        state,
        SocketState::ConnectedState,
        "Qt refuses connectToHost while connected; events {events:?}"
    );
    assert!(
        encrypted,
        "the encrypted connection was dropped: {events:?}"
    );
    assert_eq!(error, SocketError::OperationError);
    assert!(wrote.is_ok(), "{wrote:?}");
    served?;
    Ok(())
}

// ----- HostNotFoundError ---------------------------------------------------------------

// Held: a host that does not resolve ends with HostNotFoundError, no `HostFound`, no
// `Connected` and no `Disconnected`, Unconnected.
#[test]
fn an_unresolvable_host_is_host_not_found() -> TestResult {
    let (_, client) = pair_configs()?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("no-such-host.invalid", 443);
    let waited = socket.wait_for_encrypted(WAIT);
    let events = socket.take_events();
    assert!(waited.is_err());
    assert_eq!(socket.error(), SocketError::HostNotFoundError, "{events:?}");
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    assert_eq!(
        count(&events, |e| *e == SslEvent::HostFound),
        0,
        "{events:?}"
    );
    assert_eq!(count(&events, |e| *e == SslEvent::Connected), 0);
    assert_eq!(count(&events, |e| *e == SslEvent::Disconnected), 0);
    assert_eq!(
        count(&events, |e| *e
            == SslEvent::ErrorOccurred(SocketError::HostNotFoundError)),
        1,
        "{events:?}"
    );
    Ok(())
}

// ----- waitForReadyRead after the handshake: both drivers alike -------------------------

// A server that greets as soon as its handshake ends, then waits for the client to go.
fn greeting_server(
    server: SslConfiguration,
) -> Result<(u16, std::thread::JoinHandle<Result<(), BoxError>>), BoxError> {
    Ok(support::serve_one(server, |socket| {
        socket.set_io_timeout(Some(WAIT));
        socket.write_all(b"220 ready\n")?;
        socket.flush()?;
        let mut buf = [0u8; 64];
        let _ = socket.read(&mut buf);
        Ok(())
    })?)
}

// What `wait_for_ready_read` answers on the blocking driver once the greeting was
// buffered before the call (by the handshake or a short wait).
fn blocking_ready_read_after_greeting() -> Result<bool, BoxError> {
    let (server, client) = pair_configs()?;
    let (port, served) = greeting_server(server)?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    // Let the greeting arrive, then take it into the socket's buffer without a wait.
    std::thread::sleep(SHORT);
    let _ = socket.can_read_line();
    let deadline = Instant::now() + WAIT;
    while socket.bytes_available() == 0 && Instant::now() < deadline {
        let _ = socket.wait_for_ready_read(SHORT);
    }
    // Now a second wait: Qt's waitForReadyRead wants data the application was not told
    // about yet.
    let again = socket.wait_for_ready_read(SHORT).is_ok();
    socket.abort();
    let _ = served.join();
    Ok(again)
}

// Held: on the blocking driver a wait after a wait that reported the data waits for new
// data (times out), as Qt's `readyRead` is emitted once per arrival.
#[test]
fn blocking_wait_for_ready_read_does_not_report_the_same_data_twice() -> TestResult {
    assert!(!blocking_ready_read_after_greeting()?);
    Ok(())
}

// ----- §19 implementedClasses ------------------------------------------------------------

// Was a defect (round 34, low): both backends implement Qt's QSslEllipticCurve class
// (`SslEllipticCurve`, `SslConfiguration::set_elliptic_curves`, honoured by rustls's
// kx_groups and OpenSSL's groups list, `supported_elliptic_curves()` non-empty), but
// `implemented_classes()` leaves out `ImplementedClass::EllipticCurve`
// (src/backend/rustls/mod.rs and src/backend/openssl/mod.rs `implemented_classes`); Qt's
// OpenSSL backend lists it, and code gating on `isClassImplemented(EllipticCurve)` skips a
// working feature.
#[test]
fn elliptic_curve_class_is_reported_where_curves_work() -> TestResult {
    let curves = SslConfiguration::supported_elliptic_curves();
    assert!(!curves.is_empty());
    assert!(
        backend::is_class_implemented(ImplementedClass::EllipticCurve, None),
        "curves are supported ({} of them) but the class is not reported: {:?}",
        curves.len(),
        backend::implemented_classes(None)
    );
    Ok(())
}

// ----- state and event order over a whole connection, both drivers -------------------------

fn in_order(events: &[SslEvent], wanted: &[SslEvent]) -> bool {
    let mut it = events.iter();
    wanted.iter().all(|w| it.any(|e| e == w))
}

fn whole_connection_order() -> Vec<SslEvent> {
    vec![
        SslEvent::StateChanged(SocketState::HostLookupState),
        SslEvent::StateChanged(SocketState::ConnectingState),
        SslEvent::HostFound,
        SslEvent::StateChanged(SocketState::ConnectedState),
        SslEvent::ModeChanged(SslMode::SslClientMode),
        SslEvent::Connected,
        SslEvent::Encrypted,
        SslEvent::StateChanged(SocketState::ClosingState),
        SslEvent::StateChanged(SocketState::UnconnectedState),
        SslEvent::Disconnected,
    ]
}

// Held: blocking: UnconnectedState → HostLookup → Connecting → Connected → Closing →
// Unconnected, with hostFound, modeChanged, connected, encrypted and disconnected once each,
// in Qt's order.
#[test]
fn blocking_whole_connection_states_and_events_in_qt_order() -> TestResult {
    let (server, client) = pair_configs()?;
    let (port, served) = idle_server(server)?;
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    assert_eq!(socket.state(), SocketState::HostLookupState);
    socket.wait_for_encrypted(WAIT)?;
    socket.disconnect_from_host()?;
    let events = socket.take_events();
    let _ = served.join();
    assert!(in_order(&events, &whole_connection_order()), "{events:?}");
    for once in [
        SslEvent::HostFound,
        SslEvent::Connected,
        SslEvent::Encrypted,
        SslEvent::Disconnected,
    ] {
        assert_eq!(count(&events, |e| *e == once), 1, "{once:?} in {events:?}");
    }
    assert_eq!(
        count(&events, |e| matches!(e, SslEvent::ErrorOccurred(_))),
        0,
        "{events:?}"
    );
    Ok(())
}

// Held: the same on tokio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_whole_connection_states_and_events_in_qt_order() -> TestResult {
    let (server_config, client) = pair_configs()?;
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", server_config).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut s = server.accept_encrypted().await.ok()?;
        let _ = tokio::time::timeout(WAIT, s.wait_for_disconnected()).await;
        Some(())
    });
    let mut socket = tokio::time::timeout(
        WAIT,
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client),
    )
    .await??;
    tokio::time::timeout(WAIT, socket.disconnect_from_host()).await??;
    let events = socket.take_events();
    let _ = served.await;
    assert!(in_order(&events, &whole_connection_order()), "{events:?}");
    for once in [
        SslEvent::HostFound,
        SslEvent::Connected,
        SslEvent::Encrypted,
        SslEvent::Disconnected,
    ] {
        assert_eq!(count(&events, |e| *e == once), 1, "{once:?} in {events:?}");
    }
    assert_eq!(
        count(&events, |e| matches!(e, SslEvent::ErrorOccurred(_))),
        0,
        "{events:?}"
    );
    Ok(())
}
