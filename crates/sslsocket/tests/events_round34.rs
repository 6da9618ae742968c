//! Review round 34: the typed events (Qt's signals) and the synchronous hooks, on both
//! backends and both drivers: counts and order per failure kind against Qt's
//! `QAbstractSocket`/`QSslSocket` emission order, the values events carry, hooks that
//! misbehave (re-enter the library, change their answer, extreme pre-shared keys), and a
//! socket reused for another connection.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    PreSharedKeyAuthenticator, SocketError, SocketState, SslConfiguration, SslError, SslEvent,
    SslHooks, Verdict,
};
use support::{serving, trusting, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type ThreadResult<T> = Result<T, String>;

const WAIT: Duration = Duration::from_secs(10);

// ----- helpers ---------------------------------------------------------------------------

/// Counts every hook call; answers as the defaults do (no key, the policy, abort).
#[derive(Default)]
struct Counting {
    ssl_errors: AtomicUsize,
    psk: AtomicUsize,
}

impl SslHooks for Counting {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        self.ssl_errors.fetch_add(1, Ordering::SeqCst);
        Verdict::UsePolicy
    }
    fn pre_shared_key(&self, _authenticator: &mut PreSharedKeyAuthenticator) {
        self.psk.fetch_add(1, Ordering::SeqCst);
    }
}

/// Events without the byte counters, as short names (values kept where they matter).
fn names(events: &[SslEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| {
            !matches!(
                e,
                SslEvent::EncryptedBytesWritten(_) | SslEvent::BytesWritten(_)
            )
        })
        .map(|e| match e {
            SslEvent::PeerVerifyError(e) => format!("PeerVerifyError({:?})", e.error()),
            SslEvent::SslErrors(v) => format!(
                "SslErrors({:?})",
                v.iter().map(SslError::error).collect::<Vec<_>>()
            ),
            SslEvent::HandshakeInterruptedOnError(e) => format!("Interrupted({:?})", e.error()),
            SslEvent::AlertSent(a) => format!("AlertSent({:?},{:?})", a.level, a.kind),
            SslEvent::AlertReceived(a) => format!("AlertReceived({:?},{:?})", a.level, a.kind),
            other => format!("{other:?}"),
        })
        .collect()
}

fn position(events: &[String], wanted: &str) -> Option<usize> {
    events.iter().position(|e| e == wanted)
}

fn count(events: &[String], wanted: &str) -> usize {
    events.iter().filter(|e| *e == wanted).count()
}

fn encrypted_written(events: &[SslEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            SslEvent::EncryptedBytesWritten(n) => *n,
            _ => 0,
        })
        .sum()
}

/// A port nobody listens on.
fn closed_port() -> Result<u16, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Our server with a leaf for another name: a client connecting to `localhost` gets
/// exactly one error, `HostNameMismatch`.
fn mismatching_server(pki: &Pki) -> Result<SslServer, Box<dyn std::error::Error>> {
    let leaf = pki.leaf("elsewhere.test", &["elsewhere.test"])?;
    Ok(SslServer::listen("127.0.0.1:0", serving(&leaf)?)?)
}

/// The first connection of `server`: its events once it ended (read to the end first
/// when its handshake succeeded).
fn server_events(server: SslServer) -> JoinHandle<Vec<String>> {
    thread::spawn(move || match server.next_connection(WAIT) {
        Ok(Ok(mut socket)) => {
            socket.set_io_timeout(Some(WAIT));
            let mut sink = Vec::new();
            let _ = socket.read_to_end(&mut sink);
            let _ = socket.close();
            names(&socket.take_events())
        }
        Ok(Err(mut socket)) => names(&socket.take_events()),
        Err(e) => vec![format!("no connection: {e}")],
    })
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

// ----- pre-shared-key hook on a backend without pre-shared keys --------------------------

// Was a defect (round 34): `SslHooks::pre_shared_key` is documented "Only backends that list
// `SupportedFeature::Psk` call it", yet on the rustls backend (no `Psk`) every handshake
// start calls it once, on clients and servers alike, with a made-up request (empty hint,
// 128/64 limits), to probe whether the application would supply a key
// (src/core/lifecycle.rs `start_encryption`, the `probe` authenticator). A hook that
// prompts for a key, counts uses of a one-time key or logs "PSK requested" is asked on
// every certificate handshake, where Qt emits `preSharedKeyAuthenticationRequired` only
// when the TLS library asks. Right: never call the hook on a backend that cannot use a
// key (refuse a configuration asking for PSK ciphers instead, or document the probe).
#[test]
fn the_psk_hook_is_not_asked_on_a_backend_without_pre_shared_keys() -> TestResult {
    if !support::lacks(sslsocket::backend::SupportedFeature::Psk) {
        // The OpenSSL backend asks while it builds a TLS 1.3 ClientHello (documented).
        return Ok(());
    }
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let server_hooks = Arc::new(Counting::default());
    server.set_hooks(server_hooks.clone());
    let port = server.local_addr().port();
    let served = thread::spawn(move || server.next_connection(WAIT).map(|r| r.is_ok()));

    let blocking_hooks = Arc::new(Counting::default());
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_hooks(blocking_hooks.clone());
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    assert!(served.join().map_err(|_| "server thread panicked")??);

    // The tokio driver, against a second connection of a raw peer.
    let tokio_hooks = Arc::new(Counting::default());
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let served = thread::spawn(move || server.next_connection(WAIT).map(|r| r.is_ok()));
    let encrypted = runtime()?.block_on(async {
        let mut socket =
            sslsocket::tokio::SslSocket::connect_to_host("localhost", port, trusting(&pki)?)
                .await?;
        socket.set_hooks(tokio_hooks.clone());
        tokio::time::timeout(WAIT, socket.start_client_encryption()).await??;
        Ok::<bool, Box<dyn std::error::Error>>(socket.is_encrypted())
    })?;
    assert!(encrypted);
    assert!(served.join().map_err(|_| "server thread panicked")??);

    let asked = [
        ("blocking client", blocking_hooks.psk.load(Ordering::SeqCst)),
        ("tokio client", tokio_hooks.psk.load(Ordering::SeqCst)),
        ("server", server_hooks.psk.load(Ordering::SeqCst)),
    ];
    assert_eq!(
        asked,
        [("blocking client", 0), ("tokio client", 0), ("server", 0)],
        "a backend without PSK asked the pre-shared-key hook"
    );
    Ok(())
}

// ----- connection phase: Qt's order ------------------------------------------------------

// Was a defect (round 34): Qt's `_q_startConnecting` enters `ConnectingState` and emits
// `stateChanged(ConnectingState)` *before* `hostFound()` ("Enter Connecting state ...
// Report the successful host lookup", qabstractsocket.cpp, every Qt version). Both drivers
// report `HostFound` first (src/blocking/socket.rs `connect_now`: `handle_host_found()`
// then `handle_state(ConnectingState)`; src/tokio/socket.rs `connect`, the same two calls).
// tests/events.rs asserts the reversed order and would change with the fix. Right:
// `StateChanged(ConnectingState)`, then `HostFound`.
#[test]
fn host_found_comes_after_the_connecting_state_on_both_drivers() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut orders = Vec::new();

    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let served = server_events(server);
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let events = names(&client.take_events());
    client.abort();
    let _ = served.join();
    orders.push((
        "blocking",
        position(&events, "StateChanged(ConnectingState)") < position(&events, "HostFound"),
        events,
    ));

    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let served = server_events(server);
    let events = runtime()?.block_on(async {
        let mut socket = tokio::time::timeout(
            WAIT,
            sslsocket::tokio::SslSocket::connect_to_host_encrypted(
                "localhost",
                port,
                trusting(&pki)?,
            ),
        )
        .await??;
        let events = names(&socket.take_events());
        socket.abort();
        Ok::<_, Box<dyn std::error::Error>>(events)
    })?;
    let _ = served.join();
    orders.push((
        "tokio",
        position(&events, "StateChanged(ConnectingState)") < position(&events, "HostFound"),
        events,
    ));

    for (driver, _, events) in &orders {
        assert_eq!(count(events, "HostFound"), 1, "{driver}: {events:?}");
    }
    let connecting_first: Vec<(&str, bool)> = orders.iter().map(|(d, c, _)| (*d, *c)).collect();
    assert_eq!(
        connecting_first,
        [("blocking", true), ("tokio", true)],
        "HostFound before StateChanged(ConnectingState): {orders:?}"
    );
    Ok(())
}

// Was a defect (round 34): a connection that cannot be made ends, in Qt, with `stateChanged(UnconnectedState)`
// and then `errorOccurred(...)`: `_q_connectToNextAddress` ("all addresses failed") and
// `_q_startConnecting` ("host not found") both emit the state change first. The blocking
// driver reports `ErrorOccurred` first, then `StateChanged(UnconnectedState)`
// (src/blocking/socket.rs `finish_connect`: `handle_io_error` then `handle_closed`; the
// tokio driver's `connect` makes the same two calls, but hands no socket back, so its
// events cannot even be read). A slot on `errorOccurred` that checks `state()` (Qt code
// commonly reconnects there only when unconnected) sees the same state here, but a
// listener that follows the event stream sees the error while the socket is still
// "connecting". Right: `StateChanged(UnconnectedState)`, then `ErrorOccurred`.
#[test]
fn a_failed_connection_reports_unconnected_before_the_error() -> TestResult {
    let port = closed_port()?;
    let mut outcomes = Vec::new();
    let mut client = SslSocket::with_configuration(SslConfiguration::default());
    client.connect_to_host_encrypted("127.0.0.1", port);
    assert!(client.wait_for_encrypted(WAIT).is_err());
    outcomes.push((
        "refused",
        "ErrorOccurred(ConnectionRefusedError)",
        names(&client.take_events()),
    ));
    client.connect_to_host_encrypted("no-such-host.invalid", 443);
    assert!(client.wait_for_encrypted(WAIT).is_err());
    outcomes.push((
        "host not found",
        "ErrorOccurred(HostNotFoundError)",
        names(&client.take_events()),
    ));
    for (case, error, events) in &outcomes {
        assert_eq!(count(events, error), 1, "{case}: {events:?}");
        assert_eq!(
            count(events, "StateChanged(UnconnectedState)"),
            1,
            "{case}: {events:?}"
        );
        assert!(
            !events.iter().any(|e| e == "HostFound") || *case == "refused",
            "{case}: {events:?}"
        );
        assert_eq!(
            events.last().map(String::as_str),
            Some(*error),
            "{case}: Qt emits stateChanged(UnconnectedState) and then errorOccurred: {events:?}"
        );
    }
    Ok(())
}

// Was a defect (round 34): Qt's `waitForReadyRead`/`waitForEncrypted` that time out set the socket's error
// to `SocketTimeoutError` and emit `errorOccurred(SocketTimeoutError)` (the socket stays
// connected: "if (socketError != SocketTimeoutError) close()"). Here a
// `wait_for_encrypted` against a silent server returns `Err(Timeout)` but leaves no trace
// on the socket: no `ErrorOccurred(SocketTimeoutError)` event and `error()` still
// `UnknownSocketError` (src/blocking/socket.rs: a timeout is only returned, never given
// to the core; compare `finish_connect`, which skips `handle_io_error` for
// `Error::Timeout`). An application driven by events (or one that asks `error()` after a
// `false`-like result, as Qt code does) cannot tell a timeout happened. The server's own
// handshake timeout does report `ErrorOccurred(SocketTimeoutError)`. Right: record the
// timeout (error() and one `ErrorOccurred(SocketTimeoutError)`), keep the connection.
#[test]
fn a_timed_out_wait_reports_socket_timeout_error_and_stays_connected() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let mut client = SslSocket::with_configuration(SslConfiguration::default());
    client.connect_to_host_encrypted("127.0.0.1", port);
    let waited = client.wait_for_encrypted(Duration::from_millis(300));
    assert!(
        matches!(waited, Err(sslsocket::Error::Timeout(_))),
        "{waited:?}"
    );
    assert_eq!(client.state(), SocketState::ConnectedState);
    let events = names(&client.take_events());
    assert_eq!(
        (
            client.error(),
            count(&events, "ErrorOccurred(SocketTimeoutError)")
        ),
        (SocketError::SocketTimeoutError, 1),
        "the timeout left no trace: {events:?}"
    );
    drop(listener);
    Ok(())
}

// ----- the events of a handshake the application decides on -----------------------------

/// Pauses on every error.
struct PauseAll;
impl SslHooks for PauseAll {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        Verdict::Pause
    }
}

/// Continues the first interruption, aborts on any later one.
struct FirstInterruptOnly(AtomicUsize);
impl SslHooks for FirstInterruptOnly {
    fn handshake_interrupted(&self, _error: &SslError) -> Verdict {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            Verdict::Ignore
        } else {
            Verdict::Abort
        }
    }
}

// Held: pause then resume (errors ignored meanwhile), pause then resume without ignoring,
// pause then refuse, and interrupt-then-continue, on the blocking driver and the active
// backend: one PeerVerifyError per error and one SslErrors before the decision, nothing
// after it but `Encrypted` or one `ErrorOccurred(SslHandshakeFailedError)`; an
// interruption replaces both (Qt's `testHandshakeInterruptedOnError`).
#[test]
fn decisions_after_a_pause_or_an_interruption_emit_each_signal_once() -> TestResult {
    let pki = Pki::new()?;
    for case in ["resume ignored", "resume refused", "refuse", "interrupt"] {
        let server = mismatching_server(&pki)?;
        let port = server.local_addr().port();
        let served = server_events(server);
        let mut configuration = trusting(&pki)?;
        let interrupt = case == "interrupt";
        configuration.set_handshake_must_interrupt_on_error(interrupt);
        let mut client = SslSocket::with_configuration(configuration);
        if interrupt {
            client.set_hooks(Arc::new(FirstInterruptOnly(AtomicUsize::new(0))));
        } else {
            client.set_hooks(Arc::new(PauseAll));
        }
        client.connect_to_host_encrypted("localhost", port);
        let paused = matches!(client.handshake(WAIT)?, Handshake::NeedsDecision(_));
        let before = names(&client.take_events());
        let decided = match case {
            "resume ignored" => {
                client.ignore_ssl_errors();
                client.resume()
            }
            "resume refused" => client.resume(),
            "refuse" => client.refuse_peer(),
            _ => Ok(()),
        };
        let _ = client.wait_for_encrypted(Duration::from_secs(3));
        let after = names(&client.take_events());
        client.abort();
        let _ = served.join();

        let accepted = matches!(case, "resume ignored" | "interrupt");
        assert_eq!(paused, !interrupt, "{case}");
        assert_eq!(
            decided.is_ok(),
            case != "resume refused",
            "{case}: {decided:?}"
        );
        let all: Vec<String> = before.iter().chain(after.iter()).cloned().collect();
        if interrupt {
            assert_eq!(count(&all, "Interrupted(HostNameMismatch)"), 1, "{all:?}");
            assert_eq!(count(&all, "SslErrors([HostNameMismatch])"), 0, "{all:?}");
            assert_eq!(
                count(&all, "PeerVerifyError(HostNameMismatch)"),
                0,
                "{all:?}"
            );
        } else {
            assert_eq!(
                count(&before, "PeerVerifyError(HostNameMismatch)"),
                1,
                "{case}: {before:?}"
            );
            assert_eq!(
                count(&before, "SslErrors([HostNameMismatch])"),
                1,
                "{case}: {before:?}"
            );
            assert_eq!(
                count(&after, "SslErrors([HostNameMismatch])"),
                0,
                "{case}: {after:?}"
            );
            assert!(
                !before
                    .iter()
                    .any(|e| e == "Encrypted" || e.starts_with("ErrorOccurred")),
                "{case}: {before:?}"
            );
        }
        assert_eq!(
            count(&all, "Encrypted"),
            usize::from(accepted),
            "{case}: {all:?}"
        );
        assert_eq!(
            count(&all, "ErrorOccurred(SslHandshakeFailedError)"),
            usize::from(!accepted),
            "{case}: {all:?}"
        );
        assert_eq!(count(&all, "Connected"), 1, "{case}: {all:?}");
    }
    Ok(())
}

// ----- values carried by events ----------------------------------------------------------

fn tickets(events: &[SslEvent]) -> usize {
    events
        .iter()
        .filter(|e| **e == SslEvent::NewSessionTicketReceived)
        .count()
}

/// Connects, reads the server's first line, gives late tickets a moment; the events.
fn client_events_after_a_line(
    pki: &Pki,
    port: u16,
    before_reading: impl FnOnce() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<Vec<SslEvent>, Box<dyn std::error::Error>> {
    let mut client = SslSocket::with_configuration(trusting(pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    before_reading()?;
    assert_eq!(client.next_line(0, WAIT)?, b"hello\n");
    let _ = client.wait_for_ready_read(Duration::from_millis(300));
    let events = client.take_events();
    client.abort();
    Ok(events)
}

// Held: `NewSessionTicketReceived` fires once per ticket the server sent, on both backends:
// OpenSSL s_server with `-num_tickets 5` and `0` (TLS 1.3) and a TLS 1.2 ticket, and a raw
// rustls server sending 5.
#[test]
fn session_ticket_events_match_the_tickets_the_server_sent() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    for (protocol, sent) in [("-tls1_3", 5), ("-tls1_3", 0), ("-tls1_2", 1)] {
        let mut args = leaf.openssl_args();
        args.extend([
            protocol.into(),
            "-num_tickets".into(),
            sent.to_string().into(),
        ]);
        let server = Arc::new(Mutex::new(support::OpensslServer::start(&args)?));
        let port = server.lock().map_err(|_| "poisoned")?.port();
        let feeder = Arc::clone(&server);
        let events = client_events_after_a_line(&pki, port, move || {
            feeder
                .lock()
                .map_err(|_| "poisoned")?
                .write_stdin(b"hello\n")?;
            Ok(())
        })?;
        assert_eq!(tickets(&events), sent, "{protocol} {sent}: {events:?}");
    }

    let mut config = (*support::raw_server_config(&pki)?).clone();
    config.send_tls13_tickets = 5;
    let config = Arc::new(config);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let peer = thread::spawn(move || -> ThreadResult<()> {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let conn =
            tokio_rustls::rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut tls = tokio_rustls::rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"hello\n").map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        let _ = tls.read(&mut [0u8; 64]);
        Ok(())
    });
    let events = client_events_after_a_line(&pki, port, || Ok(()))?;
    let _ = peer.join();
    assert_eq!(tickets(&events), 5, "{events:?}");
    Ok(())
}

/// A one-connection relay counting the bytes from the client to `target`.
fn counting_relay(target: SocketAddr) -> std::io::Result<(u16, JoinHandle<ThreadResult<u64>>)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let relay = thread::spawn(move || -> ThreadResult<u64> {
        let (client, _) = listener.accept().map_err(|e| e.to_string())?;
        let upstream = TcpStream::connect(target).map_err(|e| e.to_string())?;
        for stream in [&client, &upstream] {
            stream
                .set_read_timeout(Some(WAIT))
                .map_err(|e| e.to_string())?;
        }
        let pump = |mut from: TcpStream, mut to: TcpStream| -> u64 {
            let copied = std::io::copy(&mut from, &mut to).unwrap_or(0);
            let _ = to.shutdown(Shutdown::Write);
            copied
        };
        let (c1, u1) = (
            client.try_clone().map_err(|e| e.to_string())?,
            upstream.try_clone().map_err(|e| e.to_string())?,
        );
        let back = thread::spawn(move || pump(u1, c1));
        let forward = pump(client, upstream);
        let _ = back.join();
        Ok(forward)
    });
    Ok((port, relay))
}

// Held: a client that refuses the server (untrusted root) reports `EncryptedBytesWritten`
// adding up to the bytes the wire carried, its fatal alert included, and the alert it
// reports sending is the one the server reports receiving (level and type).
#[test]
fn a_refused_handshake_counts_its_alert_bytes_and_both_sides_name_the_same_alert() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let (relay_port, relay) = counting_relay(server.local_addr())?;
    let served = server_events(server);
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("127.0.0.1", relay_port);
    client.set_peer_verify_name("localhost");
    assert!(client.wait_for_encrypted(WAIT).is_err());
    let events = client.take_events();
    let wire = relay.join().map_err(|_| "relay panicked")??;
    let server_events = served.join().map_err(|_| "server thread panicked")?;
    assert_eq!(encrypted_written(&events) as u64, wire, "{events:?}");
    let client_names = names(&events);
    let sent: Vec<&String> = client_names
        .iter()
        .filter(|e| e.starts_with("AlertSent"))
        .collect();
    let received: Vec<&String> = server_events
        .iter()
        .filter(|e| e.starts_with("AlertReceived"))
        .collect();
    assert_eq!(sent.len(), 1, "{client_names:?}");
    assert_eq!(
        sent.first().map(|s| s.replacen("AlertSent", "", 1)),
        received.first().map(|s| s.replacen("AlertReceived", "", 1)),
        "client {client_names:?} server {server_events:?}"
    );
    assert_eq!(
        count(&client_names, "ErrorOccurred(SslHandshakeFailedError)"),
        1
    );
    Ok(())
}

// ----- hooks that misbehave --------------------------------------------------------------

/// Inside `ssl_errors`, runs a whole handshake of another socket of the same
/// configuration (an OCSP/CRL fetch over TLS, say), then accepts.
struct Nested {
    configuration: SslConfiguration,
    port: u16,
    inner: Mutex<Option<bool>>,
}

impl SslHooks for Nested {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        let mut inner = SslSocket::with_configuration(self.configuration.clone());
        inner.connect_to_host_encrypted("localhost", self.port);
        let ok = inner.wait_for_encrypted(Duration::from_secs(5)).is_ok();
        if let Ok(mut slot) = self.inner.lock() {
            *slot = Some(ok);
        }
        Verdict::Ignore
    }
}

// Held: a hook that re-enters the library (a full handshake of the same configuration,
// whose session store and cached backend configuration it shares) neither deadlocks nor
// disturbs the outer handshake, on both backends.
#[test]
fn a_hook_may_run_a_handshake_of_the_same_configuration() -> TestResult {
    let pki = Pki::new()?;
    let good = pki.leaf("localhost", &["localhost"])?;
    let good_server = SslServer::listen("127.0.0.1:0", serving(&good)?)?;
    let bad_server = mismatching_server(&pki)?;
    let configuration = trusting(&pki)?;
    let hooks = Arc::new(Nested {
        configuration: configuration.clone(),
        port: good_server.local_addr().port(),
        inner: Mutex::new(None),
    });
    let bad_port = bad_server.local_addr().port();
    let (tx, rx) = std::sync::mpsc::channel();
    let outer_hooks = Arc::clone(&hooks);
    thread::spawn(move || {
        let mut client = SslSocket::with_configuration(configuration);
        client.set_hooks(outer_hooks);
        client.connect_to_host_encrypted("localhost", bad_port);
        let ok = client.wait_for_encrypted(WAIT).is_ok();
        let _ = tx.send((ok, names(&client.take_events())));
    });
    let (outer, events) = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the outer handshake hung (a lock held around the hook?)")?;
    assert!(outer, "{events:?}");
    assert_eq!(*hooks.inner.lock().map_err(|_| "poisoned")?, Some(true));
    assert_eq!(count(&events, "Encrypted"), 1, "{events:?}");
    assert_eq!(
        count(&events, "SslErrors([HostNameMismatch])"),
        1,
        "{events:?}"
    );
    Ok(())
}

/// Answers `Ignore` then `Abort`, alternately.
#[derive(Default)]
struct Fickle(AtomicUsize);
impl SslHooks for Fickle {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        if self.0.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            Verdict::Ignore
        } else {
            Verdict::Abort
        }
    }
}

// Held: a hook whose answer changes between calls is asked once per handshake, and each
// handshake follows that handshake's answer; hooks replaced between connections of one
// socket are the ones asked; events of the first connection, drained, never reappear
// with the second (no stale SslErrors, Encrypted or Disconnected).
#[test]
fn changing_and_replaced_hooks_decide_their_own_handshake_and_events_do_not_leak() -> TestResult {
    let pki = Pki::new()?;
    let fickle = Arc::new(Fickle::default());
    let counting = Arc::new(Counting::default());
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    let mut results = Vec::new();
    for round in 0..4 {
        let server = mismatching_server(&pki)?;
        let port = server.local_addr().port();
        let served = server_events(server);
        if round == 3 {
            client.set_hooks(counting.clone());
        } else if round == 0 {
            client.set_hooks(fickle.clone());
        }
        client.connect_to_host_encrypted("localhost", port);
        let ok = client.wait_for_encrypted(WAIT).is_ok();
        let events = names(&client.take_events());
        assert_eq!(
            events.first().map(String::as_str),
            Some("StateChanged(HostLookupState)"),
            "round {round}: {events:?}"
        );
        assert_eq!(
            count(&events, "SslErrors([HostNameMismatch])"),
            1,
            "round {round}: {events:?}"
        );
        assert_eq!(
            count(&events, "Disconnected"),
            usize::from(!ok),
            "round {round}: {events:?}"
        );
        assert_eq!(
            count(&events, "Encrypted"),
            usize::from(ok),
            "round {round}: {events:?}"
        );
        client.abort();
        let closed = names(&client.take_events());
        if ok {
            assert_eq!(
                closed,
                ["StateChanged(UnconnectedState)", "Disconnected"],
                "round {round}"
            );
        } else {
            assert!(closed.is_empty(), "round {round}: {closed:?}");
        }
        let _ = served.join();
        results.push(ok);
    }
    assert_eq!(results, [true, false, true, false]);
    assert_eq!(fickle.0.load(Ordering::SeqCst), 3);
    assert_eq!(counting.ssl_errors.load(Ordering::SeqCst), 1);
    Ok(())
}

// ----- the peer's close ------------------------------------------------------------------

/// A raw rustls server: handshake, then "hi\n" and (with `clean`) close_notify in one
/// flight, then TCP closes.
fn closing_peer(pki: &Pki, clean: bool) -> Result<support::raw::Peer, Box<dyn std::error::Error>> {
    support::raw::raw_peer(pki, move |mut tls| {
        tls.write_all(b"hi\n").map_err(|e| e.to_string())?;
        if clean {
            tls.conn.send_close_notify();
        }
        tls.flush().map_err(|e| e.to_string())?;
        thread::sleep(Duration::from_millis(100));
        let _ = tls.sock.shutdown(Shutdown::Both);
        Ok(())
    })
}

// Was a defect (round 34): events of one read are not in the order their records arrived. A peer that sends
// data and then close_notify (one flight) is reported as `AlertReceived(CloseNotify)` and
// only then `ReadyRead` for the data that came before it, on both backends
// (src/core/transport.rs `process_after`: `drain_notices()` pushes the backend's alerts
// and tickets first, `ReadyRead` is counted after). Qt's `transmit()` emits `readyRead`
// for each `SSL_read` that returns data and sees the alert on the next one, so
// `readyRead` comes first. An application that treats `AlertReceived(CloseNotify)` as the
// end of the stream (and closes, which drops the read buffer) loses data it was never told
// about. Right: keep notices and data in record order (a backend notice "plaintext
// arrived" in sequence, turned into `ReadyRead` where it falls).
#[test]
fn data_before_close_notify_is_reported_before_the_alert() -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = closing_peer(&pki, true)?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let _ = client.take_events();
    client.set_io_timeout(Some(WAIT));
    let mut got = Vec::new();
    client.read_to_end(&mut got)?;
    let _ = peer.join();
    assert_eq!(got, b"hi\n");
    let events = names(&client.take_events());
    assert_eq!(
        count(&events, "AlertReceived(Warning,CloseNotify)"),
        1,
        "{events:?}"
    );
    assert_eq!(count(&events, "ReadChannelFinished"), 1, "{events:?}");
    assert_eq!(count(&events, "Disconnected"), 1, "{events:?}");
    assert!(
        position(&events, "ReadyRead") < position(&events, "AlertReceived(Warning,CloseNotify)"),
        "ReadyRead for the data after the close_notify that followed it: {events:?}"
    );
    Ok(())
}

// Held: a peer that closes TCP after its data without close_notify: the data is read, then
// one `ErrorOccurred(RemoteHostClosedError)` (the truncation), one `ReadChannelFinished`,
// one `Disconnected` last, and no alert; on both backends.
#[test]
fn a_truncating_peer_is_reported_once_as_remote_host_closed() -> TestResult {
    let pki = Pki::new()?;
    let (port, peer) = closing_peer(&pki, false)?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let _ = client.take_events();
    client.set_io_timeout(Some(WAIT));
    let mut got = Vec::new();
    let ended = client.read_to_end(&mut got);
    let _ = peer.join();
    assert!(ended.is_err());
    assert_eq!(got, b"hi\n");
    let events = names(&client.take_events());
    assert_eq!(
        count(&events, "ErrorOccurred(RemoteHostClosedError)"),
        1,
        "{events:?}"
    );
    assert_eq!(count(&events, "ReadChannelFinished"), 1, "{events:?}");
    assert!(!events.iter().any(|e| e.starts_with("Alert")), "{events:?}");
    assert_eq!(
        events.last().map(String::as_str),
        Some("Disconnected"),
        "{events:?}"
    );
    assert!(client.core().is_truncated());
    Ok(())
}

// ----- pre-shared keys of extreme sizes (OpenSSL backend) --------------------------------

/// A client hook answering a fixed identity and key; a server hook recording the
/// identities it is asked about and answering `key` to any.
struct FixedPsk {
    identity: Vec<u8>,
    key: Vec<u8>,
    seen: Mutex<Vec<Vec<u8>>>,
}

impl SslHooks for FixedPsk {
    fn pre_shared_key(&self, request: &mut PreSharedKeyAuthenticator) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(request.identity().to_vec());
        }
        if request.maximum_identity_length() > 0 {
            request.set_identity(&self.identity);
        }
        request.set_pre_shared_key(&self.key);
    }
}

/// Whether the handshake finished, the identities the server saw, the client's events.
type PskOutcome = (bool, Vec<Vec<u8>>, Vec<String>);

/// One TLS 1.2 PSK handshake between our OpenSSL client and server; whether it finished,
/// the identities the server was asked about, the client's events.
fn psk_handshake(
    identity: &[u8],
    client_key: &[u8],
    server_key: &[u8],
) -> Result<PskOutcome, Box<dyn std::error::Error>> {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server_hooks = Arc::new(FixedPsk {
        identity: Vec::new(),
        key: server_key.to_vec(),
        seen: Mutex::new(Vec::new()),
    });
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = tcp.local_addr()?.port();
    let configuration = serving(&leaf)?;
    let hooks = Arc::clone(&server_hooks);
    let served = thread::spawn(move || -> ThreadResult<bool> {
        let (stream, _) = tcp.accept().map_err(|e| e.to_string())?;
        let mut socket =
            SslSocket::from_tcp_stream(stream, configuration).map_err(|e| e.to_string())?;
        socket.set_hooks(hooks);
        socket
            .start_server_encryption()
            .map_err(|e| e.to_string())?;
        let ok = socket.wait_for_encrypted(WAIT).is_ok();
        if ok {
            let _ = socket.next_line(0, WAIT);
        }
        socket.abort();
        Ok(ok)
    });
    let mut configuration = SslConfiguration::default();
    configuration
        .set_protocol(sslsocket::SslProtocol::TlsV1_2)
        .set_peer_verify_mode(sslsocket::PeerVerifyMode::VerifyNone);
    configuration.set_ciphers_str("PSK-AES128-GCM-SHA256")?;
    let mut client = SslSocket::with_configuration(configuration);
    client.set_hooks(Arc::new(FixedPsk {
        identity: identity.to_vec(),
        key: client_key.to_vec(),
        seen: Mutex::new(Vec::new()),
    }));
    client.connect_to_host_encrypted("127.0.0.1", port);
    let ok = client.wait_for_encrypted(WAIT).is_ok();
    if ok {
        client.write_all(b"x\n")?;
        client.flush()?;
    }
    let events = names(&client.take_events());
    let server_ok = served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(ok, server_ok, "{events:?}");
    let seen = server_hooks.seen.lock().map_err(|_| "poisoned")?.clone();
    Ok((ok, seen, events))
}

// Held (OpenSSL backend): a 65 KiB identity is cut to the room OpenSSL gives and reaches
// the server's hook as that prefix; a 65 KiB key is cut alike on both sides and the
// handshake succeeds; an empty key declines (one `ErrorOccurred`, no `SslErrors`, the
// server's hook never gets a key to match); an empty identity with a key reaches the
// server as an empty identity.
#[test]
fn pre_shared_keys_of_extreme_sizes_reach_the_server_as_cut_or_decline() -> TestResult {
    if support::lacks(sslsocket::backend::SupportedFeature::Psk) {
        return Ok(());
    }
    let key = [7u8; 16];
    let huge = vec![b'a'; 65 * 1024];
    let (ok, seen, events) = psk_handshake(&huge, &key, &key)?;
    assert!(ok, "{events:?}");
    let cut = seen.first().map(Vec::len).unwrap_or(0);
    assert!(cut > 0 && cut < huge.len(), "{cut}");
    assert_eq!(seen.first().map(Vec::as_slice), huge.get(..cut));

    let huge_key = vec![9u8; 65 * 1024];
    let (ok, seen, events) = psk_handshake(b"client", &huge_key, &huge_key)?;
    assert!(ok, "{events:?}");
    assert_eq!(seen, [b"client".to_vec()]);

    let (ok, seen, events) = psk_handshake(b"client", &[], &key)?;
    assert!(!ok);
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(
        count(&events, "ErrorOccurred(SslHandshakeFailedError)"),
        1,
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("SslErrors")),
        "{events:?}"
    );

    let (ok, seen, events) = psk_handshake(b"", &key, &key)?;
    assert!(ok, "{events:?}");
    assert_eq!(seen, [Vec::<u8>::new()]);
    Ok(())
}
