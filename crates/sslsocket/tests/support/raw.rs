//! Raw peers for the robustness tests: a rustls server scripted record by record, our
//! blocking server's first connection, and a thread's end as a message.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sslsocket::blocking::SslServer;
use sslsocket::prelude::*;
use tokio_rustls::rustls;

use super::{raw_server_config, Pki};

/// A helper thread's result, its error as text.
pub type ThreadResult<T> = Result<T, String>;
/// A raw peer's port and the thread serving it.
pub type Peer = (u16, JoinHandle<ThreadResult<()>>);

const WAIT: Duration = Duration::from_secs(10);

/// A raw rustls server for one connection: handshake, then `script` with the TLS stream.
pub fn raw_peer(
    pki: &Pki,
    script: impl FnOnce(rustls::StreamOwned<rustls::ServerConnection, TcpStream>) -> ThreadResult<()>
        + Send
        + 'static,
) -> Result<Peer, Box<dyn std::error::Error>> {
    let config = raw_server_config(pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> ThreadResult<()> {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut tcp = tcp;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        script(rustls::StreamOwned::new(conn, tcp))
    });
    Ok((port, server))
}

/// Reads (and drops) until the client's close_notify (rustls gives Ok(0) then).
pub fn until_close_notify(
    tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
) -> ThreadResult<()> {
    let mut sink = [0u8; 4096];
    loop {
        match tls.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for close_notify: {e}")),
        }
    }
}

/// After our close_notify: one record-shaped run of bytes that does not decrypt.
pub fn garbage_after_close_notify(
    mut tls: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
) -> ThreadResult<()> {
    until_close_notify(&mut tls)?;
    let mut bad = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    bad.extend_from_slice(&[0x41; 0x20]);
    let _ = tls.sock.write_all(&bad);
    let mut rest = Vec::new();
    let _ = tls.sock.read_to_end(&mut rest);
    Ok(())
}

/// Turns a worker thread's end into a message: its result, or its panic.
pub fn joined<T>(worker: JoinHandle<T>) -> Result<T, String> {
    worker.join().map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("the client thread panicked: {message}")
    })
}

/// A blocking server thread: the first connection's decrypted bytes until its end (or an
/// error), within `WAIT`.
pub fn receive_one(server: SslServer) -> JoinHandle<ThreadResult<Vec<u8>>> {
    thread::spawn(move || -> ThreadResult<Vec<u8>> {
        let mut socket = match server.next_connection(WAIT).map_err(|e| e.to_string())? {
            Ok(socket) => socket,
            Err(failed) => return Err(format!("handshake failed: {}", failed.error_string())),
        };
        socket.set_io_timeout(Some(WAIT));
        let mut got = Vec::new();
        let _ = socket.read_to_end(&mut got);
        Ok(got)
    })
}
