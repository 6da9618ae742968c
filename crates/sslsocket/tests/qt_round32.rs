//! Round 32 review against qt-behaviors.md: each test asserts Qt's behaviour (or the
//! README's own promise) and failed before its fix (the defect is described on each). Real peers on
//! 127.0.0.1 (our own servers), certificates made at test time. Run on both backends
//! (`SSLSOCKET_BACKEND=openssl` for the second run).

mod support;

use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{SocketError, SocketState, SslCipher, SslConfiguration, SslProtocol};
use support::{serving, trusting, Pki};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const WAIT: Duration = Duration::from_secs(10);

fn pair_configs() -> Result<(SslConfiguration, SslConfiguration), BoxError> {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serving(&leaf).map_err(|e| e.to_string())?;
    let client = trusting(&pki).map_err(|e| e.to_string())?;
    Ok((server, client))
}

/// Our blocking server for `connections` connections: each accepted socket writes a line,
/// then waits briefly for the client to go away. Failed handshakes are skipped.
fn serve_connections(server: SslServer, connections: usize) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..connections {
            match server.next_connection(WAIT) {
                Ok(Ok(mut socket)) => {
                    socket.set_io_timeout(Some(WAIT));
                    let _ = socket.write_all(b"hello\n");
                    let _ = socket.flush();
                    let _ = socket.wait_for_disconnected(Duration::from_secs(2));
                }
                Ok(Err(_)) => {}
                Err(_) => return,
            }
        }
    })
}

// ----- §6 `protocol`: settings of a socket object that is used again --------------------

/// Was a defect (both backends, blocking driver). qt-behaviors §6 `protocol`: "the configured
/// protocol (TlsV1_2, TlsV1_3, AnyProtocol, …) is kept by the socket across
/// connect/abort/reconnect". Qt's test sets a protocol, connects, `abort()`s, then calls
/// `setProtocol` with the next protocol on the same socket and connects again
/// (`QCOMPARE(socket->protocol(), ...)` after each step). Here every configuration setter
/// (`set_protocol`, `set_ssl_configuration`, ...) stays refused with `Misuse` ("once
/// encryption has started") after the connection was aborted: the core only checks
/// `session.is_some()`, and the session of the aborted connection stays until the next
/// connect (src/core/mod.rs `configuration_mut` / `set_configuration`).
#[test]
fn set_protocol_after_abort_applies_to_the_next_connection() -> TestResult {
    let (server, client) = pair_configs()?;
    let server = SslServer::listen("127.0.0.1:0", server)?;
    let port = server.local_addr().port();
    let served = serve_connections(server, 2);
    let mut socket = SslSocket::with_configuration(client);
    socket.set_protocol(SslProtocol::TlsV1_2)?;
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    assert_eq!(socket.session_protocol(), SslProtocol::TlsV1_2);
    socket.abort();
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    assert_eq!(socket.protocol(), SslProtocol::TlsV1_2);

    let set = socket.set_protocol(SslProtocol::TlsV1_3);
    let protocol = socket.protocol();
    let second = if set.is_ok() {
        socket.connect_to_host_encrypted("localhost", port);
        let r = socket.wait_for_encrypted(WAIT);
        Some((r.map_err(|e| e.to_string()), socket.session_protocol()))
    } else {
        None
    };
    socket.abort();
    if second.is_some() {
        // Without a second connection the server thread is left to time out on its own.
        let _ = served.join();
    }
    assert!(
        set.is_ok(),
        "set_protocol on an aborted (unconnected) socket was refused: {set:?}"
    );
    assert_eq!(protocol, SslProtocol::TlsV1_3);
    assert_eq!(
        second,
        Some((Ok(()), SslProtocol::TlsV1_3)),
        "the next connection uses the protocol set after the abort"
    );
    Ok(())
}

/// Was a defect (both backends, blocking driver). Qt's `setSslConfiguration` on a socket whose
/// connection is over sets the configuration of its next connection (Qt never refuses it;
/// the README: the setters "return `Err(Misuse)` once the handshake started" — this
/// connection's handshake is long over and the socket is `UnconnectedState`). Here a
/// configuration given after `disconnect_from_host()` is refused, so a reused socket can
/// never change its CA list, verify mode or protocol for the next connection
/// (src/core/mod.rs `set_configuration`).
#[test]
fn set_ssl_configuration_after_disconnect_applies_to_the_next_connection() -> TestResult {
    let (server, client) = pair_configs()?;
    let server = SslServer::listen("127.0.0.1:0", server)?;
    let port = server.local_addr().port();
    let served = serve_connections(server, 2);
    // The first connection trusts nobody and ignores everything.
    let mut socket = SslSocket::with_configuration(SslConfiguration::default());
    socket.ignore_ssl_errors();
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    assert!(!socket.ssl_handshake_errors().is_empty());
    socket.disconnect_from_host()?;
    assert_eq!(socket.state(), SocketState::UnconnectedState);

    // The second one trusts the test root: no errors to ignore.
    let set = socket.set_ssl_configuration(client.clone());
    let second = if set.is_ok() {
        socket.connect_to_host_encrypted("localhost", port);
        let r = socket.wait_for_encrypted(WAIT).map_err(|e| e.to_string());
        Some((r, socket.ssl_handshake_errors().len()))
    } else {
        None
    };
    socket.abort();
    if second.is_some() {
        // Without a second connection the server thread is left to time out on its own.
        let _ = served.join();
    }
    assert!(
        set.is_ok(),
        "set_ssl_configuration on a disconnected socket was refused: {set:?}"
    );
    assert_eq!(second, Some((Ok(()), 0)));
    Ok(())
}

// ----- §6 `unsupportedProtocols` ----------------------------------------------------------

/// Was a defect (both backends, blocking driver). qt-behaviors §6 `unsupportedProtocols`:
/// "`connectToHostEncrypted` fails immediately with SslInvalidUserDataError and stays
/// Unconnected (no TCP attempt)" (Qt: `verifyProtocolSupported()` before `connectToHost`).
/// Here the socket goes to HostLookupState, connects TCP to the server (which accepts a
/// connection), reports `Connected`, and only then fails
/// (src/blocking/socket.rs `begin_connect` / src/core/lifecycle.rs
/// `encrypt_when_connected` check nothing before connecting).
#[test]
fn blocking_connect_encrypted_with_unknown_protocol_makes_no_tcp_connection() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let (_, mut client) = pair_configs()?;
    client.set_protocol(SslProtocol::UnknownProtocol);
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    let state_after_call = socket.state();
    let waited = socket.wait_for_encrypted(WAIT);
    let events = socket.take_events();
    let accepted = match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => return Err(e.into()),
    };
    assert!(waited.is_err());
    assert_eq!(socket.error(), SocketError::SslInvalidUserDataError);
    assert!(
        !accepted,
        "a TCP connection was made for an unusable protocol; events: {events:?}"
    );
    assert_eq!(
        state_after_call,
        SocketState::UnconnectedState,
        "Qt stays Unconnected: {events:?}"
    );
    Ok(())
}

/// Was a defect (both backends, tokio driver). The same on tokio: `connect_to_host_encrypted`
/// with `UnknownProtocol` fails (SslInvalidUserDataError) only after it connected TCP to the
/// server (src/tokio/socket.rs `connect`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_connect_encrypted_with_unknown_protocol_makes_no_tcp_connection() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let (_, mut client) = pair_configs()?;
    client.set_protocol(SslProtocol::UnknownProtocol);
    let result = tokio::time::timeout(
        WAIT,
        sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, client),
    )
    .await?;
    let error = match result {
        Ok(_) => return Err("connected with UnknownProtocol".into()),
        Err(failed) => failed.error().socket_error(),
    };
    let accepted = match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => return Err(e.into()),
    };
    assert_eq!(error, SocketError::SslInvalidUserDataError);
    assert!(
        !accepted,
        "a TCP connection was made for an unusable protocol"
    );
    Ok(())
}

// ----- §6 `sessionCipher` -------------------------------------------------------------

/// Was a defect (both backends). qt-behaviors §6 `sessionCipher`: after the handshake the session
/// cipher is "non-null and contained in supportedCiphers" (Qt:
/// `QVERIFY(QSslConfiguration::supportedCiphers().contains(socket->sessionCipher()))`;
/// `QSslCipher::operator==` compares name and protocol). With TLS 1.3 (the default
/// outcome) `session_cipher()` fills in the key exchange and authentication of the session
/// (`with_session("ECDH", ..)`, src/core/info.rs) while the supported list keeps them
/// empty, and `SslCipher`'s derived `PartialEq` compares every field
/// (src/cert/cipher.rs), so the negotiated cipher is never `contains`-ed in
/// `supported_ciphers()`. TLS 1.2 is checked too (it holds there).
#[test]
fn session_cipher_is_contained_in_supported_ciphers() -> TestResult {
    let mut missing = Vec::new();
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (server, mut client) = pair_configs()?;
        client.set_protocol(protocol);
        let server = SslServer::listen("127.0.0.1:0", server)?;
        let port = server.local_addr().port();
        let served = serve_connections(server, 1);
        let mut socket = SslSocket::with_configuration(client);
        socket.connect_to_host_encrypted("localhost", port);
        socket.wait_for_encrypted(WAIT)?;
        let cipher = socket.session_cipher().ok_or("no session cipher")?;
        socket.abort();
        let _ = served.join();
        assert_eq!(cipher.protocol(), protocol);
        if !SslConfiguration::supported_ciphers().contains(&cipher) {
            missing.push(cipher);
        }
    }
    assert!(
        missing.is_empty(),
        "negotiated ciphers not in supported_ciphers(): {missing:?}\nsupported with those names: {:?}",
        SslConfiguration::supported_ciphers()
            .into_iter()
            .filter(|c| missing.iter().any(|m| m.name() == c.name()))
            .collect::<Vec<_>>()
    );
    Ok(())
}

/// Was a defect (both backends). qt-behaviors §6 `ciphers`: "a cipher reconstructed from (name,
/// protocol) equals the original" — here for the cipher the session negotiated: Qt's
/// `QSslCipher(name, protocol) == socket->sessionCipher()`. With TLS 1.3 the session's
/// cipher carries session details the constructed one lacks, so they differ
/// (src/core/info.rs `session_cipher`, src/cert/cipher.rs `PartialEq`).
#[test]
fn session_cipher_equals_the_cipher_of_its_name_and_protocol() -> TestResult {
    let (server, client) = pair_configs()?;
    let server = SslServer::listen("127.0.0.1:0", server)?;
    let port = server.local_addr().port();
    let served = serve_connections(server, 1);
    let mut socket = SslSocket::with_configuration(client);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    let cipher = socket.session_cipher().ok_or("no session cipher")?;
    socket.abort();
    let _ = served.join();
    assert_eq!(cipher.protocol(), SslProtocol::TlsV1_3);
    let rebuilt = SslCipher::from_name(cipher.name(), cipher.protocol());
    assert_eq!(rebuilt.as_ref(), Some(&cipher));
    Ok(())
}

// ----- §3 `ignoreSslErrorsList` on a socket used again ----------------------------------

/// Was a defect (both backends, blocking driver). qt-behaviors §3 `ignoreSslErrorsList`:
/// "pre-registering an ignore list before connecting: list containing (error, that
/// certificate) → succeeds". Qt keeps that list for the socket's next connection (its
/// `init()`: "we don't want to clear the ignoreErrorsList, so that it is possible setting it
/// before connecting"); the README's decision is that ignore lists "apply to the handshake of
/// the connection they were given for … and are cleared when the socket connects again".
/// Here a list given to a socket whose previous connection is over (it was aborted, the
/// socket is Unconnected) — so it can only be for the next connection — is cleared by that
/// very connection (src/core/lifecycle.rs `reset_connection`: `ignores_used` was set by the
/// old connection), and the handshake fails with exactly the errors the list names. On a
/// fresh socket the same two calls work.
#[test]
fn ignore_list_given_between_connections_applies_to_the_next_one() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf).map_err(|e| e.to_string())?)?;
    let port = server.local_addr().port();
    let served = serve_connections(server, 3);
    let client = trusting(&pki).map_err(|e| e.to_string())?;

    // First connection: no ignore list; it fails and tells us its errors.
    let mut socket = SslSocket::with_configuration(client.clone());
    socket.connect_to_host_encrypted("localhost", port);
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    let errors = socket.ssl_handshake_errors().to_vec();
    assert!(!errors.is_empty());
    socket.abort();

    // The same list on a fresh socket: accepted (the control).
    let mut fresh = SslSocket::with_configuration(client);
    fresh.ignore_ssl_errors_list(&errors);
    fresh.connect_to_host_encrypted("localhost", port);
    let fresh_result = fresh.wait_for_encrypted(WAIT).map_err(|e| e.to_string());
    fresh.abort();

    // Second connection of the first socket, the list given before it.
    socket.ignore_ssl_errors_list(&errors);
    socket.connect_to_host_encrypted("localhost", port);
    let reused_result = socket.wait_for_encrypted(WAIT).map_err(|e| e.to_string());
    let reported = socket.ssl_handshake_errors().to_vec();
    socket.abort();
    let _ = served.join();
    assert_eq!(
        fresh_result,
        Ok(()),
        "control: a fresh socket with the list"
    );
    assert_eq!(
        reported, errors,
        "the second handshake found the same errors"
    );
    assert_eq!(
        reused_result,
        Ok(()),
        "the ignore list given before the reconnect was dropped"
    );
    Ok(())
}

// ----- §1 `simpleConnect` events of a connection that never connected ------------------

/// Was a defect (both backends, blocking driver). Qt's `disconnected()` is emitted only for a
/// socket that was connected (`QAbstractSocket::disconnectFromHost`: "only emit
/// disconnected if we were connected before"; a refused connection ends with
/// `stateChanged(UnconnectedState)` and `errorOccurred(ConnectionRefusedError)`, no
/// `disconnected()`). Here a connection refused by the peer ends with `Disconnected`,
/// telling an application that counts disconnections (qt-behaviors §4
/// `testSelfSignedCertificateRejectedByClient`: "disconnected once") of a connection
/// that never existed (src/core/lifecycle.rs `handle_closed` pushes `Disconnected` in every
/// state; src/blocking/socket.rs `finish_connect` calls it after a failed connect).
#[test]
fn a_refused_connection_emits_no_disconnected() -> TestResult {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let mut socket = SslSocket::new();
    socket.connect_to_host_encrypted("127.0.0.1", port);
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert_eq!(socket.error(), SocketError::ConnectionRefusedError);
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    let events = socket.take_events();
    assert!(
        events.contains(&sslsocket::SslEvent::ErrorOccurred(
            SocketError::ConnectionRefusedError
        )),
        "{events:?}"
    );
    assert!(
        !events.contains(&sslsocket::SslEvent::Connected),
        "{events:?}"
    );
    assert!(
        !events.contains(&sslsocket::SslEvent::Disconnected),
        "never connected, yet disconnected: {events:?}"
    );
    Ok(())
}

// ----- README Qt → Rust names table ---------------------------------------------------

/// Was a defect (README mapping table, tokio driver). The table maps
/// `waitForConnected/Encrypted/ReadyRead/BytesWritten/Disconnected(ms)` to
/// `wait_for_connected/encrypted/ready_read/bytes_written/disconnected(Duration)` "(tokio:
/// `async fn`s, the timeout is the caller's)" and `disconnectFromHost()` / `close()` /
/// `abort()` to `disconnect_from_host()` / `close()` / `abort()` for `blocking::SslSocket`
/// and `tokio::SslSocket`. `tokio::SslSocket` has no `wait_for_connected`, no
/// `wait_for_disconnected` and no `close` (Qt's `close()`: disconnect and drop the unread
/// data; tokio's `disconnect_from_host` keeps it readable). Checked on the source, since a
/// missing method cannot be called (src/tokio/socket.rs, README.md).
#[test]
fn readme_table_names_exist_on_the_tokio_socket() -> TestResult {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(manifest.join("../../README.md"))?;
    for row in [
        "| `waitForConnected/Encrypted/ReadyRead/BytesWritten/Disconnected(ms)` | `wait_for_connected/encrypted/ready_read/bytes_written/disconnected(Duration) -> Result<(), Error>` (tokio: `async fn`s",
        "| `disconnectFromHost()` / `close()` / `abort()` | `disconnect_from_host()` / `close()` / `abort()` |",
    ] {
        assert!(readme.contains(row), "the README row changed: {row}");
    }
    let mut tokio_source = String::new();
    for entry in std::fs::read_dir(manifest.join("src/tokio"))? {
        tokio_source.push_str(&std::fs::read_to_string(entry?.path())?);
    }
    let missing: Vec<&str> = [
        "wait_for_connected",
        "wait_for_encrypted",
        "wait_for_ready_read",
        "wait_for_bytes_written",
        "wait_for_disconnected",
        "disconnect_from_host",
        "close",
        "abort",
    ]
    .into_iter()
    .filter(|name| {
        !tokio_source.contains(&format!("pub async fn {name}("))
            && !tokio_source.contains(&format!("pub fn {name}("))
    })
    .collect();
    assert!(
        missing.is_empty(),
        "tokio::SslSocket lacks what the README table promises: {missing:?}"
    );
    Ok(())
}

/// The other half of the rule above (a review of this round's change): a *blanket*
/// `ignore_ssl_errors()` given between TLS connections does not carry into the next one
/// (Qt clears it at connect), so a program that reacts late to a failed handshake's
/// errors never reconnects, maybe elsewhere, ignoring everything. The list, bound to
/// certificates, does carry over (the test above).
#[test]
fn a_blanket_ignore_given_between_connections_is_dropped_by_the_next_one() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf).map_err(|e| e.to_string())?)?;
    let port = server.local_addr().port();
    let served = serve_connections(server, 2);
    let mut socket = SslSocket::with_configuration(trusting(&pki).map_err(|e| e.to_string())?);
    socket.connect_to_host_encrypted("localhost", port);
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    let errors = socket.ssl_handshake_errors().to_vec();
    assert!(!errors.is_empty());
    socket.abort();

    socket.ignore_ssl_errors();
    socket.connect_to_host_encrypted("localhost", port);
    let second = socket.wait_for_encrypted(WAIT).map_err(|e| e.to_string());
    let reported = socket.ssl_handshake_errors().to_vec();
    socket.abort();
    let _ = served.join();
    assert_eq!(
        reported, errors,
        "the second handshake found the same errors"
    );
    assert!(
        second.is_err(),
        "a blanket ignore given between connections accepted the next one"
    );
    Ok(())
}
