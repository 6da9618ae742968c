//! Final review of round 34's last two commits, the library side: adopted descriptors
//! (blocking and tokio), on both backends (`SSLSOCKET_BACKEND=openssl`). Peers on
//! 127.0.0.1 / a socket pair, every wait bounded.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::time::Duration;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{SocketState, SslConfiguration};

type TestResult = Result<(), Box<dyn std::error::Error>>;

// Was a defect (round 34): the tokio driver's `from_tcp_stream` still adopts a listening socket as a connection (round 34 made the blocking `from_tcp_stream`/`set_socket_descriptor` refuse it, README: "`set_socket_descriptor` and `from_tcp_stream` refuse a listening or UDP socket"). Cause: crates/sslsocket/src/tokio/socket.rs:225-230 never calls a check like blocking/socket.rs's `connected_stream_socket`. Expected: `Err` (`OperationError`), as on the blocking driver. Fix: run the same SO_TYPE / SO_ACCEPTCONN / peer check in the tokio `from_tcp_stream`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_from_tcp_stream_refuses_a_listening_socket() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.set_nonblocking(true)?;
    let std_stream = TcpStream::from(OwnedFd::from(listener));
    let stream = tokio::net::TcpStream::from_std(std_stream)?;
    let adopted = sslsocket::tokio::SslSocket::from_tcp_stream(stream, SslConfiguration::default());
    let state = adopted.as_ref().map(|s| s.state()).ok();
    assert!(
        adopted.is_err(),
        "the tokio driver adopted a listening socket as a connection (state {state:?})"
    );
    Ok(())
}

// Held: a Unix stream socket passed by mistake to `set_socket_descriptor` is refused (it
// has no TCP peer), and the socket stays unconnected.
#[test]
fn held_set_socket_descriptor_refuses_a_unix_socket() -> TestResult {
    let (ours, _theirs) = std::os::unix::net::UnixStream::pair()?;
    let mut socket = SslSocket::new();
    let adopted = socket.set_socket_descriptor(OwnedFd::from(ours));
    assert!(adopted.is_err(), "a Unix socket was adopted as TCP");
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    Ok(())
}

// Held: a connected IPv6 socket is adopted, and a connected socket whose peer already
// sent its data and closed (FIN) is adopted with that data readable, then a clean end.
#[test]
fn held_ipv6_and_half_closed_peers_are_adopted() -> TestResult {
    // No IPv6 on this host: only the second part runs.
    let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).ok();
    if let Some(listener) = v6 {
        let client = TcpStream::connect(listener.local_addr()?)?;
        let (_server, _) = listener.accept()?;
        let socket = SslSocket::from_tcp_stream(client, SslConfiguration::default())?;
        assert_eq!(socket.state(), SocketState::ConnectedState);
        assert!(socket.peer_addr().is_some_and(|a| a.is_ipv6()));
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    server.write_all(b"hello\n")?;
    drop(server);
    std::thread::sleep(Duration::from_millis(100));
    let mut socket = SslSocket::new();
    socket.set_socket_descriptor(OwnedFd::from(client))?;
    socket.set_io_timeout(Some(Duration::from_secs(5)));
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    for _ in 0..10 {
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(got, b"hello\n");
    Ok(())
}
