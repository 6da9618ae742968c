//! A TLS client on the tokio driver: connects to a host, prints what the handshake
//! settled on (protocol, cipher, the peer's chain, every verification error), sends an
//! HTTP `GET` request and prints the first line of the answer, then closes cleanly.
//!
//! The certificate is checked against the system's CA store (or the PEM file given as the
//! third argument); the whole exchange is bounded by a 10 s timeout.
//!
//! ```text
//! cargo run -p sslsocket --example tokio_client -- example.com 443
//! cargo run -p sslsocket --example tokio_client -- localhost 8443 ca.pem
//! ```

use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::tokio::SslSocket;
use sslsocket::SslConfiguration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: tokio_client HOST [PORT] [CA_PEM_FILE]";
    let host = args.next().ok_or(usage)?;
    let port: u16 = match args.next() {
        Some(port) => port.parse()?,
        None => 443,
    };
    let mut configuration = SslConfiguration::default_configuration();
    if let Some(ca_file) = args.next() {
        configuration.add_ca_certificates_from_file(ca_file)?;
    }

    let limit = Duration::from_secs(10);
    let connecting = SslSocket::connect_to_host_encrypted(&host, port, configuration);
    let mut socket = timeout(limit, connecting).await??;

    println!("connected to {host}:{port}");
    println!("protocol: {}", socket.session_protocol());
    if let Some(cipher) = socket.session_cipher() {
        println!("cipher:   {}", cipher.name());
    }
    for (depth, certificate) in socket.peer_certificate_chain().iter().enumerate() {
        println!("chain[{depth}]: {}", certificate.subject_rfc4514());
    }
    for error in socket.ssl_handshake_errors() {
        println!("verification error: {}", error.error_string());
    }

    let request = format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n");
    socket.write_all(request.as_bytes()).await?;
    let status = timeout(limit, socket.next_line(0)).await??;
    println!("answer:   {}", String::from_utf8_lossy(&status).trim_end());

    timeout(limit, socket.disconnect_from_host()).await??;
    Ok(())
}
