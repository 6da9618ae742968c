//! A blocking TLS client: connects, verifies the server, sends a line, prints the reply.
//!
//! Run: `cargo run -p sslsocket --example client -- HOST PORT [CAFILE]`
//! (with CAFILE, only that CA is trusted; without, the system store).

use std::io::{Read, Write};
use std::time::Duration;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{SslCertificate, SslConfiguration};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".to_string());
    let port: u16 = args.next().as_deref().unwrap_or("4433").parse()?;
    let mut configuration = SslConfiguration::default();
    if let Some(cafile) = args.next() {
        configuration.set_ca_certificates(SslCertificate::from_file(cafile)?);
    }
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted(&host, port);
    socket.wait_for_encrypted(Duration::from_secs(10))?;
    println!("encrypted with {:?}", socket.session_protocol());
    socket.write_all(b"hello\n")?;
    socket.set_io_timeout(Some(Duration::from_secs(5)));
    let mut reply = Vec::new();
    let _ = socket.read_to_end(&mut reply);
    println!("{}", String::from_utf8_lossy(&reply));
    Ok(())
}
