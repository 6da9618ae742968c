//! STARTTLS: a plain-text greeting, an upgrade command, then TLS on the same connection
//! (Qt's `connectToHost` + `startClientEncryption`, and `startServerEncryption` on the
//! server). Both ends run here, on 127.0.0.1, with a certificate made at start.
//!
//! Run: `cargo run -p sslsocket --example starttls`

#[path = "common/mod.rs"]
pub mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;

const WAIT: Duration = Duration::from_secs(10);

/// Reads one line, waiting for it (plain text or TLS alike).
fn line(socket: &mut SslSocket) -> Result<String, common::BoxError> {
    while !socket.can_read_line() {
        socket.wait_for_ready_read(WAIT)?;
    }
    Ok(String::from_utf8_lossy(&socket.read_line(1024))
        .trim_end()
        .to_string())
}

pub fn main() -> Result<(), common::BoxError> {
    let pki = common::LocalPki::generate()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();

    // The server: greets in plain text, upgrades on "STARTTLS", then echoes one line.
    let server_configuration = pki.server.clone();
    let server = std::thread::spawn(move || -> Result<(), common::BoxError> {
        let (stream, _) = listener.accept()?;
        let mut socket = SslSocket::from_tcp_stream(stream, server_configuration)?;
        socket.write_all(b"220 ready\r\n")?;
        if line(&mut socket)? != "STARTTLS" {
            return Err("expected STARTTLS".into());
        }
        socket.write_all(b"220 go ahead\r\n")?;
        socket.flush()?;
        socket.start_server_encryption()?;
        socket.wait_for_encrypted(WAIT)?;
        let request = line(&mut socket)?;
        socket.write_all(format!("250 you said: {request}\r\n").as_bytes())?;
        socket.disconnect_from_host()?;
        Ok(())
    });

    // The client: plain connection first, then the upgrade.
    let mut client = SslSocket::with_configuration(pki.client(&[]));
    client.connect_to_host("127.0.0.1", port);
    client.wait_for_connected(WAIT)?;
    client.set_peer_verify_name("localhost");
    println!("server: {}", line(&mut client)?);
    client.write_all(b"STARTTLS\r\n")?;
    println!("server: {}", line(&mut client)?);
    // Plain text not yet read is discarded here, never taken for TLS.
    client.start_client_encryption()?;
    client.wait_for_encrypted(WAIT)?;
    println!("encrypted: {:?}", client.session_protocol());
    client.write_all(b"hello over TLS\r\n")?;
    println!("server: {}", line(&mut client)?);
    client.disconnect_from_host()?;
    server.join().map_err(|_| "the server thread panicked")??;
    Ok(())
}
