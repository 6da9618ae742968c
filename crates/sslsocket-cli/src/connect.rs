//! `sslsocket connect`: one client connection, handshake, optional exchange, report.

use std::time::{Duration, Instant};

use sslsocket::blocking::SslSocket;

use crate::args::StartTlsArg;
use crate::exit::Exit;
use crate::plan::ConnectPlan;
use crate::report;
use crate::session::{self, Deadline, Outcome};
use crate::starttls;

/// The most received bytes kept for the report (all are counted).
const MAX_KEPT: usize = 16 * 1024 * 1024;
/// Bounds of the wait after a handshake without `--send`, for an alert the server sends
/// once it has checked our Finished (TLS 1.3 client certificates): about one round trip,
/// estimated by the time connect and handshake took.
const SETTLE_MIN: Duration = Duration::from_millis(50);
const SETTLE_MAX: Duration = Duration::from_secs(1);

/// Runs the plan, prints the report, closes, returns the exit status.
pub fn run(plan: ConnectPlan) -> Exit {
    let json = plan.json;
    let target = if plan.host.contains(':') {
        format!("[{}]:{}", plan.host, plan.port)
    } else {
        format!("{}:{}", plan.host, plan.port)
    };
    let connection = connect(plan, |_| false);
    if json {
        report::print_json(&report::client_json(
            &connection.socket,
            &connection.outcome,
        ));
    } else {
        report::print_text(&report::client_text(
            &target,
            &connection.socket,
            &connection.outcome,
        ));
    }
    let exit = connection.outcome.exit;
    session::finish(connection.socket, &connection.deadline);
    exit
}

/// A client connection after its exchange, not closed yet.
pub struct Connection {
    /// The socket, for the report and the close.
    pub socket: SslSocket,
    /// How it went.
    pub outcome: Outcome,
    /// The overall deadline, for the close.
    pub deadline: Deadline,
}

/// Connects, runs the handshake and the `--send` exchange. The exchange reads until the
/// peer closes, the deadline, or `enough` says what was read is enough.
pub fn connect(plan: ConnectPlan, enough: impl Fn(&[u8]) -> bool) -> Connection {
    let started = Instant::now();
    let deadline = Deadline::after(plan.timeout);
    let mut socket = SslSocket::with_configuration(plan.configuration);
    if plan.ignore_all {
        socket.ignore_ssl_errors();
    }
    if !plan.ignore_rules.is_empty() {
        socket.ignore_ssl_error_rules(plan.ignore_rules);
    }
    let handshake = match plan.starttls {
        None => {
            match &plan.peer_name {
                Some(name) => {
                    socket.connect_to_host_encrypted_with_peer_name(&plan.host, plan.port, name)
                }
                None => socket.connect_to_host_encrypted(&plan.host, plan.port),
            }
            socket
                .wait_for_encrypted(deadline.remaining())
                .map_err(starttls::Failure::Socket)
        }
        Some(protocol) => {
            if let Some(name) = &plan.peer_name {
                socket.set_peer_verify_name(name.as_str());
            }
            socket.connect_to_host(&plan.host, plan.port);
            upgrade(&mut socket, protocol, &deadline)
        }
    };
    if let Err(failure) = handshake {
        socket.abort();
        let outcome = failure.outcome();
        return Connection {
            socket,
            outcome,
            deadline,
        };
    }
    let outcome = match &plan.send {
        Some(text) => exchange(&mut socket, Some(text), &deadline, enough),
        None => {
            let settle = started.elapsed().clamp(SETTLE_MIN, SETTLE_MAX);
            let settle = Deadline::after(settle.min(deadline.remaining()));
            exchange(&mut socket, None, &settle, |_| false)
        }
    };
    Connection {
        socket,
        outcome,
        deadline,
    }
}

fn upgrade(
    socket: &mut SslSocket,
    protocol: StartTlsArg,
    deadline: &Deadline,
) -> Result<(), starttls::Failure> {
    socket.wait_for_connected(deadline.remaining())?;
    starttls::client(socket, protocol, deadline)?;
    session::ensure_open(socket)?;
    socket.start_client_encryption()?;
    socket.wait_for_encrypted(deadline.remaining())?;
    Ok(())
}

/// Writes `text`, then reads until the peer closes, the deadline passes, or `enough`.
fn exchange(
    socket: &mut SslSocket,
    text: Option<&[u8]>,
    deadline: &Deadline,
    enough: impl Fn(&[u8]) -> bool,
) -> Outcome {
    let mut received = Vec::new();
    let mut count = 0u64;
    let mut keep = |data: Vec<u8>, received: &mut Vec<u8>| {
        count += data.len() as u64;
        let room = MAX_KEPT.saturating_sub(received.len());
        received.extend(data.into_iter().take(room));
    };
    let mut last = text.and_then(|text| session::send(socket, text, deadline).err());
    if last.is_none() {
        loop {
            // Take what is buffered before waiting: waits are for new data.
            keep(socket.read_all(), &mut received);
            if enough(&received) {
                break;
            }
            if let Err(error) = session::wait_readable(socket, deadline.remaining()) {
                last = Some(error);
                break;
            }
        }
    }
    keep(socket.read_all(), &mut received);
    Outcome::after_exchange(socket, last.as_ref()).with_received(received, count)
}
