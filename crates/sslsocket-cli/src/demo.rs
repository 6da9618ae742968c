//! `sslsocket demo`: a local echo server with a certificate made at run time, and a client
//! that trusts exactly that certificate, verifies it, and talks to the server.

use std::fmt::Write as _;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, Result};
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::SslConfiguration;

use crate::connect;
use crate::exit::Exit;
use crate::plan::ConnectPlan;
use crate::report;
use crate::selfsigned;
use crate::session::{self, Outcome};

const MESSAGE: &str = "hello from sslsocket demo\n";
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long the demo waits for the server's view after the client closed.
const SERVER_WAIT: Duration = Duration::from_secs(2);

/// Runs the demo and prints what happened.
pub fn run() -> Exit {
    match demo() {
        Ok(exit) => exit,
        Err(error) => {
            report::error_line(&format!("error: {error:#}"));
            Exit::Network
        }
    }
}

fn demo() -> Result<Exit> {
    let (certificate, key) = selfsigned::generate()?;
    let mut server_configuration = SslConfiguration::default();
    server_configuration
        .set_local_certificate_chain(vec![certificate.clone()])
        .set_private_key(key);
    let server = SslServer::listen("127.0.0.1:0", server_configuration)
        .map_err(|e| anyhow!("starting the server: {e}"))?;
    let port = server.local_addr().port();
    let mut out = String::new();
    let _ = writeln!(out, "server: listening on 127.0.0.1:{port}");
    let _ = writeln!(
        out,
        "server: self-signed certificate {} (sha256 {})",
        certificate.subject_rfc4514(),
        certificate.sha256_hex()
    );
    report::print_text(&out);

    // The server echoes one connection's data back until the client closes.
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("sslsocket-demo-server".into())
        .spawn(move || {
            let outcome = match server.next_connection(TIMEOUT) {
                Ok(Ok(mut socket)) => echo_connection(&mut socket),
                Ok(Err(socket)) => match socket.core().error() {
                    Some(error) => Outcome::failed(error),
                    None => return,
                },
                Err(_) => return,
            };
            let _ = tx.send(outcome);
        })
        .map_err(|e| anyhow!("starting the server thread: {e}"))?;

    // The client trusts exactly the server's certificate: verification must pass.
    let mut client_configuration = SslConfiguration::default();
    client_configuration.set_ca_certificates(vec![certificate]);
    let plan = ConnectPlan {
        host: "localhost".to_string(),
        port,
        peer_name: None,
        configuration: client_configuration,
        ignore_all: false,
        ignore_rules: Vec::new(),
        starttls: None,
        send: Some(MESSAGE.as_bytes().to_vec()),
        psk: None,
        reconnect: false,
        timeout: TIMEOUT,
        json: false,
    };
    let connect::Connection {
        socket,
        outcome,
        deadline,
        ..
    } = connect::connect(&plan, false, |_, received| received.len() >= MESSAGE.len());
    let errors = socket.ssl_handshake_errors().len();
    let client_report = report::session_summary(&socket);
    session::finish(socket, &deadline, crate::events::EventLog::new(false));
    let server_outcome = rx.recv_timeout(SERVER_WAIT).ok();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "client: connected to localhost:{port}, {}",
        if outcome.encrypted {
            "encrypted"
        } else {
            "not encrypted"
        }
    );
    for line in client_report.lines() {
        let _ = writeln!(out, "client: {line}");
    }
    let _ = writeln!(out, "client: sent {:?}", MESSAGE);
    let echoed = String::from_utf8_lossy(&outcome.received);
    let _ = writeln!(out, "client: received {echoed:?}");
    if let Some(error) = outcome.socket_error {
        let _ = writeln!(out, "client: error: {error}: {}", outcome.error_string);
    }
    if let Some(server) = &server_outcome {
        let _ = writeln!(
            out,
            "server: connection ended, {} bytes echoed{}",
            server.received_bytes,
            server
                .socket_error
                .map(|e| format!(", {e}: {}", server.error_string))
                .unwrap_or_default()
        );
    }
    let ok = outcome.encrypted
        && outcome.exit == Exit::Ok
        && errors == 0
        && outcome.received == MESSAGE.as_bytes();
    let _ = writeln!(
        out,
        "{}",
        if ok {
            "demo: verified TLS connection, message echoed"
        } else {
            "demo: FAILED"
        }
    );
    report::print_text(&out);
    Ok(if ok {
        Exit::Ok
    } else if outcome.exit == Exit::Ok {
        Exit::Tls
    } else {
        outcome.exit
    })
}

/// The demo server's side: echo until the client closes, then close.
fn echo_connection(socket: &mut SslSocket) -> Outcome {
    let mut count = 0u64;
    let last = loop {
        // Data may already be buffered (it can arrive with the handshake's last flight):
        // take it before waiting for more.
        let data = socket.read_all();
        if data.is_empty() {
            if let Err(error) = session::wait_readable(socket, Duration::MAX) {
                break error;
            }
            continue;
        }
        count += data.len() as u64;
        if let Err(error) = session::send(socket, &data, &session::Deadline::never()) {
            break error;
        }
    };
    count += socket.read_all().len() as u64;
    let outcome = Outcome::after_exchange(socket, Some(&last)).with_received(Vec::new(), count);
    session::close(socket);
    outcome
}
