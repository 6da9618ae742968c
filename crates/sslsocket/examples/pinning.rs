//! Public-key pinning: besides normal verification, the verified path (leaf up to the
//! trust anchor) must hold a key with one of the pinned SHA-256 digests (curl's
//! `--pinnedpubkey`, our `connect --pin sha256/BASE64`). Certificates the peer merely
//! appends never satisfy a pin.
//!
//! Run: `cargo run -p sslsocket --example pinning`

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};

const WAIT: Duration = Duration::from_secs(10);

fn connect(port: u16, configuration: sslsocket::SslConfiguration) -> Result<(), sslsocket::Error> {
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    socket.wait_for_encrypted(WAIT)?;
    socket.disconnect_from_host()
}

pub fn main() -> Result<(), common::BoxError> {
    let pki = common::LocalPki::generate()?;
    let server = SslServer::listen("127.0.0.1:0", pki.server.clone())?;
    let port = server.local_addr().port();

    // Pin the CA's key: any certificate it issues for this name passes.
    let mut pinned = pki.client(&[]);
    pinned.set_pinned_public_keys(vec![pki.ca.public_key_sha256()]);
    connect(port, pinned)?;
    println!("pinned CA key: accepted");

    // Pin a key that is not on the path: a valid chain is still refused.
    let (_, stranger) = common::self_signed_server()?;
    let mut wrong = pki.client(&[]);
    wrong.set_pinned_public_keys(vec![stranger.public_key_sha256()]);
    match connect(port, wrong) {
        Ok(()) => Err("a chain without the pinned key was accepted".into()),
        Err(error) => {
            println!("other pin: refused ({error})");
            Ok(())
        }
    }
}
