//! Events (Qt's signals) of real connections: their order on connect and close, and
//! byte counts checked against what a counting TCP relay actually carried.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    AlertType, SocketOption, SocketState, SslCertificate, SslConfiguration, SslEvent, SslMode,
};
use support::{serving, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type ThreadResult<T> = Result<T, String>;

const WAIT: Duration = Duration::from_secs(10);

fn server_and_client_config() -> Result<(SslServer, SslConfiguration), Box<dyn std::error::Error>> {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let mut client = SslConfiguration::default();
    client.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    Ok((server, client))
}

/// Asserts that `wanted` occur in `events` in this order (other events may interleave).
fn assert_in_order(events: &[SslEvent], wanted: &[SslEvent]) {
    let mut rest = events.iter();
    for want in wanted {
        assert!(
            rest.any(|e| e == want),
            "{want:?} missing or out of order in {events:?}"
        );
    }
}

fn sum_of(events: &[SslEvent], pick: impl Fn(&SslEvent) -> Option<usize>) -> usize {
    events.iter().filter_map(pick).sum()
}

fn encrypted_written(events: &[SslEvent]) -> usize {
    sum_of(events, |e| match e {
        SslEvent::EncryptedBytesWritten(n) => Some(*n),
        _ => None,
    })
}

fn plain_written(events: &[SslEvent]) -> usize {
    sum_of(events, |e| match e {
        SslEvent::BytesWritten(n) => Some(*n),
        _ => None,
    })
}

/// A one-connection TCP relay in front of `target` that counts the bytes it carries from
/// the client to the target. Joins to that count once both directions ended.
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
        let pump = |mut from: TcpStream, mut to: TcpStream| -> ThreadResult<u64> {
            let copied = std::io::copy(&mut from, &mut to).map_err(|e| e.to_string())?;
            let _ = to.shutdown(Shutdown::Write);
            Ok(copied)
        };
        let (c1, u1) = (
            client.try_clone().map_err(|e| e.to_string())?,
            upstream.try_clone().map_err(|e| e.to_string())?,
        );
        let back = thread::spawn(move || pump(u1, c1));
        let forward = pump(client, upstream)?;
        back.join().map_err(|_| "relay thread panicked")??;
        Ok(forward)
    });
    Ok((port, relay))
}

#[test]
fn a_client_connect_signals_in_qt_order() -> TestResult {
    let (server, config) = server_and_client_config()?;
    let port = server.local_addr().port();
    let served = thread::spawn(move || -> ThreadResult<Vec<SslEvent>> {
        let mut socket = server.accept().map_err(|e| e.to_string())?;
        socket.set_io_timeout(Some(WAIT));
        socket.write_all(b"hi\n").map_err(|e| e.to_string())?;
        socket.close().map_err(|e| e.to_string())?;
        Ok(socket.take_events())
    });

    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", port);
    assert_eq!(client.state(), SocketState::HostLookupState);
    client.wait_for_encrypted(WAIT)?;
    let connect_events = client.take_events();
    assert_eq!(
        connect_events.first(),
        Some(&SslEvent::StateChanged(SocketState::HostLookupState)),
        "{connect_events:?}"
    );
    assert_in_order(
        &connect_events,
        &[
            SslEvent::StateChanged(SocketState::HostLookupState),
            // Qt's `_q_startConnecting`: the state first, then `hostFound()` (round 34).
            SslEvent::StateChanged(SocketState::ConnectingState),
            SslEvent::HostFound,
            SslEvent::StateChanged(SocketState::ConnectedState),
            // Qt 6's `_q_connectedSlot` starts the handshake before it emits `connected()`.
            SslEvent::ModeChanged(SslMode::SslClientMode),
            SslEvent::Connected,
            SslEvent::Encrypted,
        ],
    );
    for once in [
        SslEvent::HostFound,
        SslEvent::Connected,
        SslEvent::Encrypted,
    ] {
        assert_eq!(
            connect_events.iter().filter(|e| **e == once).count(),
            1,
            "{once:?} once in {connect_events:?}"
        );
    }
    assert!(
        !connect_events.contains(&SslEvent::ReadyRead),
        "no readyRead for handshake bytes: {connect_events:?}"
    );
    assert!(
        !connect_events
            .iter()
            .any(|e| matches!(e, SslEvent::ErrorOccurred(_) | SslEvent::SslErrors(_))),
        "{connect_events:?}"
    );

    let mut got = Vec::new();
    client.read_to_end(&mut got)?;
    assert_eq!(got, b"hi\n");
    client.close()?;
    let close_events = client.take_events();
    assert_in_order(
        &close_events,
        &[
            SslEvent::ReadyRead,
            SslEvent::ReadChannelFinished,
            SslEvent::StateChanged(SocketState::UnconnectedState),
            SslEvent::Disconnected,
        ],
    );
    assert!(
        close_events
            .iter()
            .any(|e| matches!(e, SslEvent::AlertReceived(a) if a.kind == AlertType::CloseNotify)),
        "{close_events:?}"
    );
    assert_eq!(close_events.last(), Some(&SslEvent::Disconnected));

    let server_events = served.join().map_err(|_| "server thread panicked")??;
    assert_in_order(
        &server_events,
        &[
            SslEvent::StateChanged(SocketState::ConnectedState),
            SslEvent::Connected,
            SslEvent::ModeChanged(SslMode::SslServerMode),
            SslEvent::Encrypted,
            SslEvent::StateChanged(SocketState::ClosingState),
            SslEvent::StateChanged(SocketState::UnconnectedState),
            SslEvent::Disconnected,
        ],
    );
    assert!(
        server_events
            .iter()
            .any(|e| matches!(e, SslEvent::AlertSent(a) if a.kind == AlertType::CloseNotify)),
        "{server_events:?}"
    );
    Ok(())
}

#[test]
fn encrypted_bytes_written_add_up_to_what_the_wire_carried() -> TestResult {
    let (server, config) = server_and_client_config()?;
    let (relay_port, relay) = counting_relay(server.local_addr())?;
    let served = thread::spawn(move || -> ThreadResult<usize> {
        let mut socket = server.accept().map_err(|e| e.to_string())?;
        socket.set_io_timeout(Some(WAIT));
        let mut all = Vec::new();
        socket.read_to_end(&mut all).map_err(|e| e.to_string())?;
        socket.close().map_err(|e| e.to_string())?;
        Ok(all.len())
    });

    let mut client = SslSocket::with_configuration(config);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host_encrypted("localhost", relay_port);
    client.wait_for_encrypted(WAIT)?;
    let mut plaintext = 0;
    for i in 0..200 {
        let piece = vec![b'a' + (i % 26) as u8; 1000 + i * 37];
        client.write_all(&piece)?;
        plaintext += piece.len();
    }
    client.close()?;
    let events = client.take_events();

    let received = served.join().map_err(|_| "server thread panicked")??;
    let on_the_wire = relay.join().map_err(|_| "relay thread panicked")??;
    assert_eq!(received, plaintext);
    assert_eq!(plain_written(&events), plaintext, "{events:?}");
    assert_eq!(
        encrypted_written(&events) as u64,
        on_the_wire,
        "EncryptedBytesWritten must count exactly the TLS bytes sent"
    );
    assert!(encrypted_written(&events) > plaintext);
    Ok(())
}

#[test]
fn bytes_written_in_plain_mode_add_up_to_what_the_wire_carried() -> TestResult {
    let sink = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let (relay_port, relay) = counting_relay(sink.local_addr()?)?;
    let drained = thread::spawn(move || -> ThreadResult<usize> {
        let (mut stream, _) = sink.accept().map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut all = Vec::new();
        stream.read_to_end(&mut all).map_err(|e| e.to_string())?;
        Ok(all.len())
    });

    let mut client = SslSocket::new();
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host("127.0.0.1", relay_port);
    client.wait_for_connected(WAIT)?;
    let data = vec![b'p'; 3 * 1024 * 1024 + 17];
    client.write_all(&data)?;
    client.wait_for_bytes_written(WAIT)?;
    client.close()?;
    let events = client.take_events();

    assert_eq!(drained.join().map_err(|_| "sink panicked")??, data.len());
    assert_eq!(
        relay.join().map_err(|_| "relay thread panicked")??,
        data.len() as u64
    );
    assert_eq!(plain_written(&events), data.len());
    assert_eq!(encrypted_written(&events), 0, "{events:?}");
    Ok(())
}

#[test]
fn low_delay_and_keep_alive_are_set_and_read_back() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let mut client = SslSocket::new();
    assert!(
        client
            .set_socket_option(SocketOption::LowDelayOption, true)
            .is_err(),
        "no socket yet"
    );
    client.connect_to_host("127.0.0.1", port);
    client.wait_for_connected(WAIT)?;
    let (_accepted, _) = listener.accept()?;

    for option in [SocketOption::LowDelayOption, SocketOption::KeepAliveOption] {
        for on in [true, false, true] {
            client.set_socket_option(option, on)?;
            assert_eq!(client.socket_option(option)?, on, "{option:?}");
        }
    }
    client.abort();
    assert!(client.socket_option(SocketOption::KeepAliveOption).is_err());
    Ok(())
}

#[test]
fn low_delay_is_on_for_connected_adopted_and_accepted_sockets_on_both_drivers() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let mut connected = SslSocket::new();
    connected.connect_to_host("127.0.0.1", port);
    connected.wait_for_connected(WAIT)?;
    let (accepted, _) = listener.accept()?;
    assert!(!accepted.nodelay()?, "the kernel's default is Nagle on");
    let adopted = SslSocket::from_tcp_stream(accepted, SslConfiguration::default())?;
    assert!(connected.socket_option(SocketOption::LowDelayOption)?);
    assert!(adopted.socket_option(SocketOption::LowDelayOption)?);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = listener.local_addr()?.port();
        let connected = sslsocket::tokio::SslSocket::connect_to_host(
            "127.0.0.1",
            port,
            SslConfiguration::default(),
        )
        .await?;
        let (accepted, _) = listener.accept().await?;
        assert!(!accepted.nodelay()?);
        let adopted =
            sslsocket::tokio::SslSocket::from_tcp_stream(accepted, SslConfiguration::default())?;
        assert!(connected.socket_option(SocketOption::LowDelayOption)?);
        assert!(adopted.socket_option(SocketOption::LowDelayOption)?);
        TestResult::Ok(())
    })
}
