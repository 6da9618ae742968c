//! Accepting one self-signed certificate, narrowly: the errors it causes are ignored only
//! for that certificate (`IgnoreRule::Exact`, Qt's `ignoreSslErrors(list)`), so any other
//! certificate — another self-signed one, an expired one — still fails. Never
//! `ignore_ssl_errors()` (all errors) for this.
//!
//! Run: `cargo run -p sslsocket --example accept_one_self_signed`

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{IgnoreRule, SslCertificate, SslError, SslErrorKind};

const WAIT: Duration = Duration::from_secs(10);

/// Connects to `port` trusting nothing but the errors of `known` (the certificate the
/// device showed the first time, kept in a file or pinned by its SHA-256).
fn connect(port: u16, known: &SslCertificate) -> Result<SslSocket, sslsocket::Error> {
    let mut configuration = sslsocket::SslConfiguration::default();
    configuration.set_system_ca_on_demand(false);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.ignore_ssl_error_rules(vec![IgnoreRule::Exact(SslError::with_certificate(
        SslErrorKind::SelfSignedCertificate,
        known.clone(),
    ))]);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    socket.wait_for_encrypted(WAIT)?;
    Ok(socket)
}

pub fn main() -> Result<(), common::BoxError> {
    let (device, device_certificate) = common::self_signed_server()?;
    let server = SslServer::listen("127.0.0.1:0", device)?;
    let port = server.local_addr().port();

    let socket = connect(port, &device_certificate)?;
    println!(
        "accepted {} ({}), errors seen and ignored: {:?}",
        device_certificate.subject_display_name(),
        device_certificate.sha256_hex(),
        socket
            .ssl_handshake_errors()
            .iter()
            .map(|e| e.error())
            .collect::<Vec<_>>()
    );

    // Another self-signed certificate on the same address is refused.
    let (impostor, _) = common::self_signed_server()?;
    let impostor = SslServer::listen("127.0.0.1:0", impostor)?;
    match connect(impostor.local_addr().port(), &device_certificate) {
        Ok(_) => Err("another self-signed certificate was accepted".into()),
        Err(error) => {
            println!("refused another self-signed certificate: {error}");
            Ok(())
        }
    }
}
