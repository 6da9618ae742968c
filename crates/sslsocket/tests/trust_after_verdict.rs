//! What a socket does after the verdict on its peer, against `openssl s_server`: a refused
//! or aborted connection stays closed (a later `wait_for_*` must not quietly open a new
//! connection, which could then be let through by an ignore list set in the meantime), and
//! an aborted socket is no longer encrypted.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use sslsocket::prelude::*;
use sslsocket::{PauseMode, SocketState, SslEvent};

use support::trust::{client_to, serve, trusting, wait_until_paused, HANDSHAKE_TIMEOUT};
use support::Pki;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How many TCP connections the events show being made.
fn connections_made(events: &[SslEvent]) -> usize {
    events.iter().filter(|e| **e == SslEvent::Connected).count()
}

#[test]
fn waiting_again_after_a_refused_handshake_does_not_open_a_new_connection() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    assert!(client.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    assert_eq!(connections_made(&client.take_events()), 1);
    assert_eq!(client.state(), SocketState::UnconnectedState);

    // The application now decides to accept the error and waits again: Qt's
    // waitForEncrypted on an unconnected socket returns false at once.
    client.ignore_ssl_errors();
    let started = Instant::now();
    let again = client.wait_for_encrypted(Duration::from_secs(2));
    let events = client.take_events();
    assert!(
        again.is_err(),
        "a refused connection became encrypted: {events:?}"
    );
    assert_eq!(
        connections_made(&events),
        0,
        "a new connection was made: {events:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!client.is_encrypted());
    Ok(())
}

#[test]
fn aborting_a_paused_handshake_ends_the_connection_for_good() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_pause_mode(PauseMode::PauseOnSslErrors);
    assert!(wait_until_paused(&mut client, HANDSHAKE_TIMEOUT));
    let _ = client.take_events();
    client.abort();
    assert_eq!(client.state(), SocketState::UnconnectedState);
    assert!(!client.is_encrypted());
    let started = Instant::now();
    let again = client.wait_for_encrypted(Duration::from_secs(2));
    let events = client.take_events();
    assert!(again.is_err());
    assert_eq!(
        connections_made(&events),
        0,
        "a new connection was made: {events:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "{again:?}");
    Ok(())
}

#[test]
fn an_aborted_encrypted_socket_is_no_longer_encrypted_and_stays_closed() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    let _ = client.take_events();
    client.abort();
    assert_eq!(client.state(), SocketState::UnconnectedState);
    assert!(
        !client.is_encrypted(),
        "Qt: isEncrypted() is false once disconnected"
    );
    let again = client.wait_for_encrypted(Duration::from_secs(2));
    let events = client.take_events();
    assert!(
        again.is_err(),
        "waiting on an aborted socket succeeded: {events:?}"
    );
    assert_eq!(
        connections_made(&events),
        0,
        "a new connection was made: {events:?}"
    );
    Ok(())
}

#[test]
fn waiting_for_data_after_the_server_closed_does_not_reconnect() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    // -www: answer one HTTP request, then close the connection (close_notify, then TCP).
    let server = serve(&leaf, true, &["-www"])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_io_timeout(Some(Duration::from_secs(5)));
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    client.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    client.flush()?;
    let mut received = Vec::new();
    client.read_to_end(&mut received)?;
    assert!(
        String::from_utf8_lossy(&received).starts_with("HTTP/1.0 200 ok"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(client.state(), SocketState::UnconnectedState);
    assert_eq!(connections_made(&client.take_events()), 1);

    // The usual read loop asks once more: the answer is "closed", at once.
    let started = Instant::now();
    let last = client.wait_for_ready_read(Duration::from_secs(2));
    let events = client.take_events();
    assert!(last.is_err(), "{events:?}");
    assert_eq!(
        connections_made(&events),
        0,
        "a new connection was made: {events:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "{last:?}");
    Ok(())
}
