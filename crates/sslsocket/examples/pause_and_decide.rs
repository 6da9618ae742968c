//! Pause on verification errors, look at them, decide, resume (Qt's `PauseOnSslErrors`
//! and `resume()`); and the same decision taken inside the handshake by a hook
//! (`SslHooks::ssl_errors`, Qt's slot connected to `sslErrors`).
//!
//! Run: `cargo run -p sslsocket --example pause_and_decide`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{PauseMode, SslError, SslErrorKind, SslHooks, Verdict};

const WAIT: Duration = Duration::from_secs(10);

/// A policy asked inside the handshake: a name mismatch alone is accepted, anything
/// else is refused.
struct OnlyNameMismatch;

impl SslHooks for OnlyNameMismatch {
    fn ssl_errors(&self, errors: &[SslError]) -> Verdict {
        if errors
            .iter()
            .all(|e| e.error() == SslErrorKind::HostNameMismatch)
        {
            Verdict::Ignore
        } else {
            Verdict::Abort
        }
    }
}

pub fn main() -> Result<(), common::BoxError> {
    let pki = common::LocalPki::generate()?;
    let server = SslServer::listen("127.0.0.1:0", pki.server.clone())?;
    let port = server.local_addr().port();

    // 1. Pause: the certificate names "localhost", we connect to "127.0.0.1".
    let mut socket = SslSocket::with_configuration(pki.client(&[]));
    socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    socket.connect_to_host_encrypted("127.0.0.1", port);
    let deadline = Instant::now() + WAIT;
    while !socket.is_paused() && Instant::now() < deadline {
        // Returns an error while paused; the loop looks at is_paused().
        if socket
            .wait_for_encrypted(Duration::from_millis(100))
            .is_ok()
        {
            break;
        }
    }
    if !socket.is_paused() {
        return Err("expected the handshake to pause on a name mismatch".into());
    }
    let errors = socket.ssl_handshake_errors().to_vec();
    for error in &errors {
        println!("paused on: {error}");
    }
    // The decision (a prompt, a policy lookup, ...): accept exactly these errors.
    socket.ignore_ssl_errors_list(&errors);
    socket.resume()?;
    socket.wait_for_encrypted(WAIT)?;
    println!("resumed: encrypted = {}", socket.is_encrypted());
    socket.disconnect_from_host()?;

    // 2. The same policy as a hook, decided inside the handshake.
    let mut socket = SslSocket::with_configuration(pki.client(&[]));
    socket.set_hooks(Arc::new(OnlyNameMismatch));
    socket.connect_to_host_encrypted("127.0.0.1", port);
    socket.wait_for_encrypted(WAIT)?;
    println!(
        "hook accepted the name mismatch: encrypted = {}",
        socket.is_encrypted()
    );
    socket.disconnect_from_host()?;
    Ok(())
}
