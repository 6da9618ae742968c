//! A blocking TLS echo server with a certificate and key from PEM files.
//!
//! Run: `cargo run -p sslsocket --example server -- CERT.pem KEY.pem [PORT]`

use std::io::Write;
use std::time::Duration;

use sslsocket::blocking::SslServer;
use sslsocket::prelude::*;
use sslsocket::{SslCertificate, SslConfiguration, SslKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(cert), Some(key)) = (args.next(), args.next()) else {
        return Err("usage: server CERT.pem KEY.pem [PORT]".into());
    };
    let port = args.next().unwrap_or_else(|| "4433".to_string());
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(cert)?)
        .set_private_key(SslKey::from_file(key, None)?);
    let server = SslServer::listen(format!("127.0.0.1:{port}"), configuration)?;
    println!("listening on {}", server.local_addr());
    loop {
        let mut socket = server.accept()?;
        std::thread::spawn(move || {
            while socket.wait_for_ready_read(Duration::from_secs(30)).is_ok() {
                let data = socket.read_all();
                if socket.write_all(&data).is_err() {
                    break;
                }
            }
            let _ = socket.close();
        });
    }
}
