//! Review of "closes deliver or fail" (round 30: `SslCore::has_undelivered` /
//! `lost_output`): false failures of a close in ordinary use. Its one finding (a tokio
//! close after `abort()` failed) is fixed; every test here passes.
//! Run once per backend (`SSLSOCKET_BACKEND=openssl` with `--features openssl`). Every
//! wait is bounded.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{SslConfiguration, SslProtocol};
use support::{raw_server_config, serving, trusting, Pki};
use tokio_rustls::rustls;

type TestResult = Result<(), Box<dyn std::error::Error>>;
/// A peer's port and the thread serving it.
type Peer = (u16, JoinHandle<ThreadResult<()>>);
/// A peer's port, the sender that lets it go, and its thread.
type HeldPeer = (u16, std::sync::mpsc::Sender<()>, JoinHandle<()>);
type ThreadResult<T> = Result<T, String>;

const WAIT: Duration = Duration::from_secs(10);
const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nhello";

/// How a scripted rustls server ends after its response.
#[derive(Clone, Copy, Debug)]
enum End {
    CloseNotifyFin,
    Fin,
    CloseNotifyRst,
    Rst,
}

static V13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
static V12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

const ENDS: [End; 4] = [End::CloseNotifyFin, End::Fin, End::CloseNotifyRst, End::Rst];

/// A rustls server (version `v13` or 1.2) that reads the whole request, answers, and ends
/// as `end` says.
fn answering_peer(pki: &Pki, v13: bool, end: End) -> Result<Peer, Box<dyn std::error::Error>> {
    let base = raw_server_config(pki)?;
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(if v13 { V13 } else { V12 })?
    .with_no_client_auth()
    .with_cert_resolver(base.cert_resolver.clone());
    config.send_tls13_tickets = 2;
    let config = std::sync::Arc::new(config);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> ThreadResult<()> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while got.len() < REQUEST.len() {
            let n = tls.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("request cut short".into());
            }
            got.extend_from_slice(&buf[..n]);
        }
        tls.write_all(RESPONSE).map_err(|e| e.to_string())?;
        if matches!(end, End::CloseNotifyFin | End::CloseNotifyRst) {
            tls.conn.send_close_notify();
        }
        tls.flush().map_err(|e| e.to_string())?;
        while tls.conn.wants_write() {
            tls.conn
                .write_tls(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        if matches!(end, End::CloseNotifyRst | End::Rst) {
            rustix::net::sockopt::set_socket_linger(&tls.sock, Some(Duration::ZERO))
                .map_err(|e| e.to_string())?;
        } else {
            tls.sock
                .shutdown(std::net::Shutdown::Write)
                .map_err(|e| e.to_string())?;
            // Wait for the client's end (or a timeout) before dropping the socket.
            let _ = tls.sock.read(&mut buf);
        }
        Ok(())
    });
    Ok((port, server))
}

fn client_config(pki: &Pki, v13: bool) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut config = trusting(pki)?;
    config.set_protocol(if v13 {
        SslProtocol::TlsV1_3
    } else {
        SslProtocol::TlsV1_2
    });
    Ok(config)
}

/// HOLDS (expected). Request/response where the server ends first: the response is read
/// whole, and our close afterwards reports success (blocking driver).
#[test]
fn blocking_close_after_the_servers_end_is_ok() -> TestResult {
    let pki = Pki::new()?;
    for v13 in [false, true] {
        for end in ENDS {
            let (port, peer) = answering_peer(&pki, v13, end)?;
            let mut client = SslSocket::with_configuration(client_config(&pki, v13)?);
            client.set_io_timeout(Some(WAIT));
            client.connect_to_host_encrypted("localhost", port);
            client.wait_for_encrypted(WAIT)?;
            client.write_all(REQUEST)?;
            client.flush()?;
            let mut got = Vec::new();
            let read = client.read_to_end(&mut got);
            // With an RST after the response, TLS 1.3 sometimes reads nothing (also on the
            // code before this change; not attributed, see the report): not checked here.
            if !matches!(end, End::Rst | End::CloseNotifyRst) {
                assert_eq!(got, RESPONSE, "v13={v13} {end:?}: {read:?}");
            }
            thread::sleep(Duration::from_millis(50));
            let closed = client.disconnect_within(WAIT);
            let peer = peer.join().map_err(|_| "peer panicked")?;
            assert!(
                closed.is_ok(),
                "v13={v13} {end:?}: close {closed:?}, peer {peer:?}"
            );
        }
    }
    Ok(())
}

/// The same on the tokio driver.
#[test]
fn tokio_close_after_the_servers_end_is_ok() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for v13 in [false, true] {
        for end in ENDS {
            let (port, peer) = answering_peer(&pki, v13, end)?;
            let config = client_config(&pki, v13)?;
            let (got, closed) = runtime.block_on(async move {
                let mut client = tokio::time::timeout(
                    WAIT,
                    sslsocket::tokio::SslSocket::connect_to_host_encrypted(
                        "localhost",
                        port,
                        config,
                    ),
                )
                .await?
                .map_err(sslsocket::Error::from)?;
                client.write_all(REQUEST).await?;
                client.flush().await?;
                let mut got = Vec::new();
                let read = tokio::time::timeout(WAIT, client.read_to_end(&mut got)).await?;
                if got.is_empty() {
                    eprintln!("read {read:?}: {}", client.error_string());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let closed = tokio::time::timeout(WAIT, client.disconnect_from_host()).await?;
                Ok::<_, Box<dyn std::error::Error>>((got, closed))
            })?;
            let peer = peer.join().map_err(|_| "peer panicked")?;
            if !matches!(end, End::Rst | End::CloseNotifyRst) {
                assert_eq!(got, RESPONSE, "v13={v13} {end:?}");
            }
            assert!(
                closed.is_ok(),
                "v13={v13} {end:?}: close {closed:?}, peer {peer:?}"
            );
        }
    }
    Ok(())
}

/// A TCP peer that accepts and never reads, holding the connection until told (or WAIT).
fn stalled_tls_server(pki: &Pki) -> Result<HeldPeer, Box<dyn std::error::Error>> {
    let config = raw_server_config(pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        let _ = tcp.set_read_timeout(Some(WAIT));
        let Ok(mut conn) = rustls::ServerConnection::new(config) else {
            return;
        };
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                return;
            }
        }
        let _ = conn.complete_io(&mut tcp);
        // Handshake done: read nothing more, until told.
        let _ = rx.recv_timeout(WAIT);
        let _: Option<TcpStream> = Some(tcp);
    });
    Ok((port, tx, peer))
}

/// The blocking reference for the tokio test below: `abort()` with TLS bytes still in the
/// engine, then `disconnect_from_host()`, is Ok (nothing is connected any more; Qt's
/// `disconnectFromHost` on an unconnected socket does nothing).
#[test]
fn blocking_disconnect_after_abort_with_unsent_output_is_ok() -> TestResult {
    let pki = Pki::new()?;
    let (port, tx, peer) = stalled_tls_server(&pki)?;
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    client.set_io_timeout(Some(Duration::from_millis(300)));
    let big = vec![7u8; 8 << 20];
    // Times out (the peer reads nothing): the rest waits in the engine.
    let _ = client.write_all(&big);
    assert!(
        client.bytes_to_write() + client.encrypted_bytes_to_write() > 0,
        "the write should be stuck behind a peer that reads nothing"
    );
    client.abort();
    let closed = client.disconnect_from_host();
    let _ = tx.send(());
    let _ = peer.join();
    assert!(closed.is_ok(), "{closed:?}");
    Ok(())
}

/// DEFECT. Tokio: the same `abort()` then `disconnect_from_host()` fails with "the remote
/// host closed the connection before everything written was delivered": the remote host
/// closed nothing, and the application had given the bytes up itself. `handle_closed`
/// (called by `abort`) records the engine's unsent TLS bytes as `lost_output`, and the
/// tokio close, which unlike the blocking one drives an already-unconnected socket,
/// turns `has_undelivered()` into that error (on every later call too).
#[test]
fn tokio_disconnect_after_abort_with_unsent_output_is_ok() -> TestResult {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new()?;
    let (port, tx, peer) = stalled_tls_server(&pki)?;
    let config = trusting(&pki)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (held, closed) = runtime.block_on(async move {
        let mut client = tokio::time::timeout(
            WAIT,
            sslsocket::tokio::SslSocket::connect_to_host_encrypted("localhost", port, config),
        )
        .await?
        .map_err(sslsocket::Error::from)?;
        let big = vec![7u8; 8 << 20];
        let _ = tokio::time::timeout(Duration::from_millis(300), client.write_all(&big)).await;
        let held = client.bytes_to_write() + client.encrypted_bytes_to_write();
        client.abort();
        let closed = tokio::time::timeout(WAIT, client.disconnect_from_host()).await?;
        Ok::<_, Box<dyn std::error::Error>>((held, closed))
    })?;
    let _ = tx.send(());
    let _ = peer.join();
    assert!(
        held > 0,
        "the write should be stuck behind a peer that reads nothing"
    );
    assert!(closed.is_ok(), "{closed:?}");
    Ok(())
}

/// Server side: a blocking SslServer socket echoes, then closes after the client's
/// close_notify; both report success.
#[test]
fn server_side_close_after_echo_is_ok() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    for v13 in [false, true] {
        let server =
            sslsocket::blocking::SslServer::listen((Ipv4Addr::LOCALHOST, 0u16), serving(&leaf)?)?;
        let port = server.local_addr().port();
        let echo = thread::spawn(move || -> ThreadResult<Result<(), String>> {
            let mut socket = match server.next_connection(WAIT).map_err(|e| e.to_string())? {
                Ok(s) => s,
                Err(f) => return Err(f.error_string()),
            };
            socket.set_io_timeout(Some(WAIT));
            let mut buf = [0u8; 4096];
            loop {
                match socket.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        socket.write_all(&buf[..n]).map_err(|e| e.to_string())?;
                        socket.flush().map_err(|e| e.to_string())?;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(socket.close().map_err(|e| e.to_string()))
        });
        let mut client = SslSocket::with_configuration(client_config(&pki, v13)?);
        client.set_io_timeout(Some(WAIT));
        client.connect_to_host_encrypted("localhost", port);
        client.wait_for_encrypted(WAIT)?;
        client.write_all(b"ping")?;
        client.flush()?;
        let mut got = [0u8; 4];
        client.read_exact(&mut got)?;
        let closed = client.disconnect_within(WAIT);
        let server_closed = echo.join().map_err(|_| "echo panicked")??;
        assert!(closed.is_ok(), "v13={v13}: client {closed:?}");
        assert!(server_closed.is_ok(), "v13={v13}: server {server_closed:?}");
    }
    Ok(())
}
