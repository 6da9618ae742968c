//! Review round 37 (V3): server-side trust and resumption, both backends
//! (`SSLSOCKET_BACKEND=openssl`), both server drivers. Hostile clients are raw rustls
//! clients and `openssl s_client`; our own servers on 127.0.0.1; certificates made at test
//! time; every wait bounded.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sslsocket::blocking::SslServer;
use sslsocket::prelude::*;
use sslsocket::{SslConfiguration, SslProtocol};
use support::raw::{joined, ThreadResult};
use support::{active_backend, serving, Pki};
use tokio_rustls::rustls;

type BoxError = Box<dyn std::error::Error>;
type TestResult = Result<(), BoxError>;

const WAIT: Duration = Duration::from_secs(10);

/// A server's port and the thread that reports, per connection, (encrypted, resumed).
type ServerThread = (u16, thread::JoinHandle<ThreadResult<Vec<(bool, bool)>>>);

fn boxed(e: impl std::fmt::Display) -> BoxError {
    e.to_string().into()
}

/// A record-shaped run of bytes that does not decrypt (application data, 32 bytes).
fn bad_record() -> Vec<u8> {
    let mut bad = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    bad.extend_from_slice(&[0x41; 0x20]);
    bad
}

/// How a raw client ends one connection, after the handshake and the server's line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// close_notify, then reads until the server's end.
    Clean,
    /// A record that does not decrypt: the server must fail with a fatal alert
    /// (bad_record_mac).
    Garbage,
}

/// A raw rustls TLS 1.2 client (its own session cache) trusting `pki`, one connection per
/// entry of `ends` to `port`; whether each was resumed.
fn raw_tls12_client(pki: &Pki, port: u16, ends: &[End]) -> Result<Vec<bool>, BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(
        pki.root_der().to_vec(),
    ))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let config = Arc::new(config);
    let mut resumed = Vec::new();
    for end in ends {
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let mut conn = rustls::ClientConnection::new(Arc::clone(&config), name)?;
        let mut tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        tcp.set_read_timeout(Some(WAIT))?;
        tcp.set_write_timeout(Some(WAIT))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        resumed.push(conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed));
        let mut line = [0u8; 6];
        rustls::Stream::new(&mut conn, &mut tcp).read_exact(&mut line)?;
        match end {
            End::Clean => {
                conn.send_close_notify();
                while conn.wants_write() {
                    conn.write_tls(&mut tcp)?;
                }
                let mut sink = Vec::new();
                let _ = rustls::Stream::new(&mut conn, &mut tcp).read_to_end(&mut sink);
            }
            End::Garbage => {
                tcp.write_all(&bad_record())?;
                let mut sink = Vec::new();
                let _ = tcp.read_to_end(&mut sink);
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(resumed)
}

/// Our blocking server: `connections` connections, each sent `hello\n`, then read until
/// its end; per connection (resumed, failed).
fn our_blocking_server(
    configuration: SslConfiguration,
    connections: usize,
) -> Result<ServerThread, BoxError> {
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    let worker = thread::spawn(move || -> ThreadResult<Vec<(bool, bool)>> {
        let mut seen = Vec::new();
        for _ in 0..connections {
            let mut socket = match server.next_connection(WAIT).map_err(|e| e.to_string())? {
                Ok(socket) => socket,
                Err(failed) => return Err(format!("server handshake: {}", failed.error_string())),
            };
            socket.set_io_timeout(Some(WAIT));
            let resumed = socket.is_session_resumed();
            socket.write_all(b"hello\n").map_err(|e| e.to_string())?;
            socket.flush().map_err(|e| e.to_string())?;
            let mut sink = Vec::new();
            let failed = socket.read_to_end(&mut sink).is_err();
            seen.push((resumed, failed));
        }
        Ok(seen)
    });
    Ok((port, worker))
}

// Was a defect (round 37): both backends, TLS 1.2: a connection that *resumed* a session and then ended with a fatal alert (our server sent bad_record_mac) leaves that session resumable: the client resumes it again on its next connection (RFC 5246 §7.2.2, "any connection terminated with a fatal alert MUST NOT be resumed"; the round-35 fix forgets only what the failed connection itself stored, and a resumed TLS 1.2 connection stores nothing: rustls keeps the session ID in ServerSessions, OpenSSL keeps the ticket's outcome record of the connection that issued it).
#[test]
fn a_tls12_session_resumed_by_a_connection_that_failed_with_a_fatal_alert_is_not_resumed_again(
) -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut configuration = serving(&leaf)?;
    configuration.set_protocol(SslProtocol::TlsV1_2);
    let ends = [End::Clean, End::Garbage, End::Clean];
    let (port, server) = our_blocking_server(configuration, ends.len())?;
    let client = raw_tls12_client(&pki, port, &ends)?;
    let seen = joined(server)?.map_err(boxed)?;
    let ours: Vec<bool> = seen.iter().map(|(resumed, _)| *resumed).collect();
    assert_eq!(client, ours, "both ends agree on what was resumed");
    assert_eq!(
        ours.get(1),
        Some(&true),
        "{}: the control resumption did not happen: {ours:?}",
        active_backend()
    );
    assert_eq!(
        seen.get(1).map(|(_, failed)| *failed),
        Some(true),
        "the bad record did not fail the resumed connection: {seen:?}"
    );
    assert_eq!(
        ours.get(2),
        Some(&false),
        "{}, TLS 1.2: our server resumed, again, a session whose last connection failed with \
         a fatal alert: {ours:?}",
        active_backend()
    );
    Ok(())
}

/// Our tokio server: `connections` connections, each sent `hello\n`, then read until its
/// end; per connection (resumed, failed).
fn our_tokio_server(
    configuration: SslConfiguration,
    connections: usize,
) -> Result<ServerThread, BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server = runtime.block_on(sslsocket::tokio::SslServer::bind(
        "127.0.0.1:0",
        configuration,
    ))?;
    let port = server.local_addr().port();
    let worker = thread::spawn(move || -> ThreadResult<Vec<(bool, bool)>> {
        runtime.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut seen = Vec::new();
            for _ in 0..connections {
                let mut socket = tokio::time::timeout(WAIT, server.accept_encrypted())
                    .await
                    .map_err(|_| "no client came".to_string())?
                    .map_err(|failed| format!("server handshake: {}", failed.error()))?;
                let resumed = socket.is_session_resumed();
                socket
                    .write_all(b"hello\n")
                    .await
                    .map_err(|e| e.to_string())?;
                socket.flush().await.map_err(|e| e.to_string())?;
                let mut sink = Vec::new();
                let failed = match tokio::time::timeout(WAIT, socket.read_to_end(&mut sink)).await {
                    Ok(read) => read.is_err(),
                    Err(_) => return Err("the client's end never came".to_string()),
                };
                seen.push((resumed, failed));
            }
            Ok(seen)
        })
    });
    Ok((port, worker))
}

// Was a defect (round 37): the same on the tokio SslServer: the session a TLS 1.2 connection resumed and then failed with a fatal alert on is resumed again by the next connection.
#[test]
fn a_tls12_session_resumed_by_a_failed_connection_is_not_resumed_again_by_the_tokio_server(
) -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut configuration = serving(&leaf)?;
    configuration.set_protocol(SslProtocol::TlsV1_2);
    let ends = [End::Clean, End::Garbage, End::Clean];
    let (port, server) = our_tokio_server(configuration, ends.len())?;
    let client = raw_tls12_client(&pki, port, &ends)?;
    let seen = joined(server)?.map_err(boxed)?;
    let ours: Vec<bool> = seen.iter().map(|(resumed, _)| *resumed).collect();
    assert_eq!(client, ours, "both ends agree on what was resumed");
    assert_eq!(
        (ours.get(1), seen.get(1).map(|(_, failed)| *failed)),
        (Some(&true), Some(true)),
        "{}: the control (resumed, then failed) did not happen: {seen:?}",
        active_backend()
    );
    assert_eq!(
        ours.get(2),
        Some(&false),
        "{}, TLS 1.2, tokio server: a session whose last connection failed with a fatal \
         alert was resumed again: {ours:?}",
        active_backend()
    );
    Ok(())
}

mod cores {
    //! Client and server cores in memory (the client through a duplex socket).

    use sslsocket::core::SslCore;
    use sslsocket::{SocketState, SslConfiguration};

    use super::support::duplex::read_duplex;
    use super::{BoxError, TestResult};

    const MAX_ROUNDS: usize = 1000;

    /// Steps both cores until nothing moves.
    fn run(client: &mut SslCore, server: &mut SslCore) -> TestResult {
        let mut to_server = Vec::new();
        let mut to_client = Vec::new();
        for _ in 0..MAX_ROUNDS {
            client.poll_transmit(&mut to_server);
            server.poll_transmit(&mut to_client);
            let moved = !to_server.is_empty() || !to_client.is_empty();
            if !to_server.is_empty() {
                match server.handle_tls(&to_server) {
                    Ok(n) => {
                        to_server.drain(..n);
                    }
                    Err(_) => to_server.clear(),
                }
            }
            if !to_client.is_empty() {
                if let Ok((s, w)) = read_duplex(client, std::mem::take(&mut to_client)) {
                    to_server.extend([s, w].concat());
                }
            }
            if !moved {
                return Ok(());
            }
        }
        Err("still busy".into())
    }

    /// One connection between fresh cores, `setup` applied to both before the start.
    pub fn connect(
        client_config: &SslConfiguration,
        server_config: &SslConfiguration,
        setup: &dyn Fn(&mut SslCore, &mut SslCore),
    ) -> Result<(SslCore, SslCore), BoxError> {
        let mut client = SslCore::new(client_config.clone());
        let mut server = SslCore::new(server_config.clone());
        client.handle_state(SocketState::ConnectedState);
        server.handle_state(SocketState::ConnectedState);
        setup(&mut client, &mut server);
        server.start_server_encryption()?;
        client.start_client_encryption("localhost")?;
        run(&mut client, &mut server)?;
        Ok((client, server))
    }
}

fn certs(ders: &[Vec<u8>]) -> Result<Vec<sslsocket::SslCertificate>, BoxError> {
    Ok(ders
        .iter()
        .map(|d| sslsocket::SslCertificate::from_der(d))
        .collect::<Result<Vec<_>, _>>()?)
}

// PINS: a session resumed twice in a row (the second time with a ticket the first resumed connection issued) reports, each time, the original handshake's errors and chain, on both backends and both protocols.
#[test]
fn a_session_resumed_twice_reports_the_original_errors_and_chain() -> TestResult {
    use sslsocket::{PeerVerifyMode, SslCertificate, SslKey};
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let client_leaf = pki.client_cert(false)?;
    let mut bad = Vec::new();
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        for mode in [PeerVerifyMode::QueryPeer, PeerVerifyMode::VerifyPeer] {
            let mut server = serving(&leaf)?;
            server
                .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?])
                .set_peer_verify_mode(mode)
                .set_protocol(protocol);
            let mut client = support::trusting(&pki)?;
            client
                .set_local_certificate_chain(certs(&client_leaf.chain_der)?)
                .set_private_key(SslKey::from_der(&client_leaf.key_der)?);
            let lenient: &dyn Fn(&mut sslsocket::core::SslCore, &mut sslsocket::core::SslCore) =
                &|_, s| {
                    if mode == PeerVerifyMode::VerifyPeer {
                        s.ignore_ssl_errors();
                    }
                };
            let mut first: Option<(Vec<sslsocket::SslError>, Vec<SslCertificate>)> = None;
            for round in 0..3 {
                let (c, s) = cores::connect(&client, &server, lenient)?;
                if !(c.is_encrypted() && s.is_encrypted()) {
                    bad.push(format!("{protocol:?} {mode:?} #{round}: not encrypted"));
                    break;
                }
                let seen = (
                    s.ssl_handshake_errors().to_vec(),
                    s.peer_certificate_chain().to_vec(),
                );
                match &first {
                    None => {
                        if seen.0.is_empty() {
                            bad.push(format!("{protocol:?} {mode:?}: no error (control)"));
                        }
                        first = Some(seen);
                    }
                    Some(original) => {
                        if !s.is_session_resumed() {
                            bad.push(format!("{protocol:?} {mode:?} #{round}: not resumed"));
                        } else if *original != seen {
                            bad.push(format!(
                                "{protocol:?} {mode:?} #{round}: resumed with errors {:?} and {} \
                                 certificates, the original had {:?} and {}",
                                seen.0,
                                seen.1.len(),
                                original.0,
                                original.1.len()
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}: {bad:#?}", active_backend());
    Ok(())
}
