//! Mutual TLS: the server requires a client certificate issued by its CA
//! (`PeerVerifyMode::VerifyPeer` on the server); the client presents one. Both ends run
//! here, on 127.0.0.1, with a CA and certificates made at start.
//!
//! Run: `cargo run -p sslsocket --example mutual_tls`

#[path = "common/mod.rs"]
mod common;

use std::io::Write;
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::PeerVerifyMode;

const WAIT: Duration = Duration::from_secs(10);

pub fn main() -> Result<(), common::BoxError> {
    let pki = common::LocalPki::generate()?;

    // The server asks for a client certificate and refuses a handshake without a valid one.
    let mut server_configuration = pki.server.clone();
    server_configuration
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .add_ca_certificates(vec![pki.ca.clone()])
        .set_system_ca_on_demand(false);
    let server = SslServer::listen("127.0.0.1:0", server_configuration)?;
    let port = server.local_addr().port();

    // A client with a certificate: accepted, and the server sees who it is.
    let (certificate, key) = pki.client_identity("alice")?;
    let mut configuration = pki.client(&[]);
    configuration
        .set_local_certificate_chain(vec![certificate])
        .set_private_key(key);
    let mut client = SslSocket::with_configuration(configuration);
    client.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    client.wait_for_encrypted(WAIT)?;
    client.write_all(b"hello\n")?;
    let mut accepted = server.accept()?;
    let who = accepted
        .peer_certificate()
        .map(|c| c.subject_display_name())
        .unwrap_or_default();
    println!("server: client certificate {who}");

    // A client without one: the server refuses the handshake.
    let mut anonymous = SslSocket::with_configuration(pki.client(&[]));
    anonymous.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    let refused = anonymous
        .wait_for_encrypted(WAIT)
        .and_then(|()| anonymous.wait_for_ready_read(WAIT));
    match server.next_connection(WAIT)? {
        Ok(_) => return Err("a client without a certificate was accepted".into()),
        Err(failed) => println!(
            "server: refused a client without a certificate ({:?})",
            failed.ssl_handshake_errors()
        ),
    }
    println!("client without a certificate: {refused:?}");
    client.disconnect_from_host()?;
    accepted.close()?;
    Ok(())
}
