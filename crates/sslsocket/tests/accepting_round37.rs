//! Round 37 (review SERV): Qt's listener controls on the blocking `SslServer`
//! (`pauseAccepting` / `resumeAccepting`, `setMaxPendingConnections`,
//! `hasPendingConnections`, `handshakeTimeout`). Real handshakes on 127.0.0.1; every wait
//! is bounded. Run on both backends (`SSLSOCKET_BACKEND=openssl`).

mod support;

use std::io::Write;
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use support::{serving, trusting, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);
/// How long a held client is watched not to finish its handshake.
const HELD: Duration = Duration::from_millis(600);

fn client(pki: &Pki, server: &SslServer) -> Result<SslSocket, Box<dyn std::error::Error>> {
    let mut socket = SslSocket::with_configuration(trusting(pki)?);
    socket.connect_to_host_encrypted_with_peer_name(
        "127.0.0.1",
        server.local_addr().port(),
        "localhost",
    );
    Ok(socket)
}

// Was a defect (round 37, review SERV): the blocking server had no `pause_accepting` /
// `resume_accepting` (Qt's, inherited from QTcpServer): a server that must stop taking
// clients for a while could only be dropped.
#[test]
fn a_paused_server_accepts_nobody_until_resumed() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    server.pause_accepting();
    let mut held = client(&pki, &server)?;
    assert!(
        held.wait_for_encrypted(HELD).is_err(),
        "a client finished its handshake with a paused server"
    );
    assert!(!server.has_pending_connections());
    assert!(server.next_connection(Duration::from_millis(100)).is_err());
    server.resume_accepting();
    held.wait_for_encrypted(WAIT)?;
    let mut served = server
        .next_connection(WAIT)?
        .map_err(|failed| failed.error_string())?;
    held.write_all(b"after\n")?;
    held.wait_for_bytes_written(WAIT)?;
    served.wait_for_ready_read(WAIT)?;
    assert_eq!(served.read_line(64), b"after\n");
    Ok(())
}

// Was a defect (round 37, review SERV): the blocking server had no
// `set_max_pending_connections` / `has_pending_connections` / `handshake_timeout`: 1,024
// finished connections could wait, whatever the application wanted.
#[test]
fn the_server_stops_accepting_while_max_pending_connections_wait() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    assert_eq!(server.max_pending_connections(), 1024);
    assert_eq!(server.handshake_timeout(), Duration::from_secs(5));
    server.set_handshake_timeout(Duration::from_secs(7));
    assert_eq!(server.handshake_timeout(), Duration::from_secs(7));
    server.set_max_pending_connections(0);
    assert_eq!(server.max_pending_connections(), 1, "0 is taken as 1");
    let mut first = client(&pki, &server)?;
    first.wait_for_encrypted(WAIT)?;
    // The first connection waits for the application: pending reaches the maximum.
    let deadline = std::time::Instant::now() + WAIT;
    while !server.has_pending_connections() {
        if std::time::Instant::now() > deadline {
            return Err("the finished connection was never pending".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut second = client(&pki, &server)?;
    assert!(
        second.wait_for_encrypted(HELD).is_err(),
        "a client was accepted while the maximum of pending connections waited"
    );
    let taken = server
        .next_connection(WAIT)?
        .map_err(|failed| failed.error_string())?;
    assert_eq!(taken.peer_addr(), first.local_addr());
    // Room again: the second is accepted and handed out.
    second.wait_for_encrypted(WAIT)?;
    let next = server
        .next_connection(WAIT)?
        .map_err(|failed| failed.error_string())?;
    assert_eq!(next.peer_addr(), second.local_addr());
    assert!(!server.has_pending_connections());
    Ok(())
}
