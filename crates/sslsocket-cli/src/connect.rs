//! `sslsocket connect`: one client connection, handshake, optional exchange, report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{SocketError, SslEvent};

use crate::args::StartTlsArg;
use crate::exit::Exit;
use crate::plan::ConnectPlan;
use crate::psk::ClientHooks;
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
/// How long the first connection of `--reconnect` reads after its handshake, at most, for
/// session tickets (the contract's 1.5 s).
const TICKET_WINDOW: Duration = Duration::from_millis(1500);
/// How much longer it reads after the first ticket arrived.
const TICKET_GRACE: Duration = Duration::from_millis(100);
/// The longest single wait while watching for tickets.
const POLL_STEP: Duration = Duration::from_millis(20);

/// Runs the plan, prints the report, closes, returns the exit status. With `--reconnect`,
/// the first connection is closed cleanly and a second one made with the same
/// configuration (so with its session store): both are reported, the second inside the
/// first, and the exit status is the higher of the two.
pub fn run(plan: ConnectPlan) -> Exit {
    let target = if plan.host.contains(':') {
        format!("[{}]:{}", plan.host, plan.port)
    } else {
        format!("{}:{}", plan.host, plan.port)
    };
    let first = connect(&plan, plan.reconnect, |_, _| false);
    if !plan.reconnect {
        print(&plan, &target, &first, None);
        first.note_declined_psk();
        let exit = first.outcome.exit;
        session::finish(first.socket, &first.deadline);
        return exit;
    }
    let mut first = first;
    session::close(&mut first.socket);
    let second = connect(&plan, false, |_, _| false);
    print(&plan, &target, &first, Some(&second));
    first.note_declined_psk();
    second.note_declined_psk();
    let exit = first.outcome.exit.worse(second.outcome.exit);
    session::finish(second.socket, &second.deadline);
    exit
}

/// Prints the report of `first`, with `second` inside it when there is one.
fn print(plan: &ConnectPlan, target: &str, first: &Connection, second: Option<&Connection>) {
    if plan.json {
        let mut json = report::client_json(&first.socket, &first.outcome);
        if let Some(second) = second {
            json = json.with_reconnect(report::client_json(&second.socket, &second.outcome));
        }
        report::print_json(&json);
    } else {
        let mut text = report::client_text(target, &first.socket, &first.outcome);
        if let Some(second) = second {
            text.push_str("reconnect:\n");
            for line in report::client_text(target, &second.socket, &second.outcome).lines() {
                text.push_str("  ");
                text.push_str(line);
                text.push('\n');
            }
        }
        report::print_text(&text);
    }
}

/// A client connection after its exchange, not closed yet.
pub struct Connection {
    /// The socket, for the report and the close.
    pub socket: SslSocket,
    /// How it went.
    pub outcome: Outcome,
    /// The overall deadline, for the close.
    pub deadline: Deadline,
    /// The pre-shared-key hooks, when `--psk-*` installed them.
    pub psk: Option<Arc<ClientHooks>>,
}

impl Connection {
    /// Says on stderr why our pre-shared key was not offered, if it was not.
    fn note_declined_psk(&self) {
        if let Some(reason) = self.psk.as_ref().and_then(|hooks| hooks.declined()) {
            report::error_line(&format!("warning: {reason}; no pre-shared key was offered"));
        }
    }
}

/// Connects, runs the handshake and the `--send` exchange. The exchange reads until the
/// peer closes, the deadline, or `enough` says what was read is enough. Without `--send`,
/// it reads briefly for a late alert, or with `tickets` for the session tickets a TLS 1.3
/// server sends after the handshake.
///
/// The socket gets a clone of the plan's configuration: clones share the backend's
/// configuration, and so the client session store, which is what lets a second
/// connection resume the first one's session.
pub fn connect(
    plan: &ConnectPlan,
    tickets: bool,
    enough: impl FnMut(&mut SslSocket, &[u8]) -> bool,
) -> Connection {
    let started = Instant::now();
    let deadline = Deadline::after(plan.timeout);
    let mut socket = SslSocket::with_configuration(plan.configuration.clone());
    if plan.ignore_all {
        socket.ignore_ssl_errors();
    }
    if !plan.ignore_rules.is_empty() {
        socket.ignore_ssl_error_rules(plan.ignore_rules.clone());
    }
    let psk = plan
        .psk
        .as_ref()
        .map(|psk| Arc::new(ClientHooks::new(Arc::clone(psk))));
    if let Some(hooks) = &psk {
        socket.set_hooks(Arc::clone(hooks) as Arc<dyn sslsocket::SslHooks>);
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
            psk,
        };
    }
    let settle = started.elapsed().clamp(SETTLE_MIN, SETTLE_MAX);
    let outcome = match &plan.send {
        Some(text) => exchange(&mut socket, Some(text), &deadline, Duration::MAX, enough),
        None if tickets => await_tickets(&mut socket, &deadline, settle),
        None => {
            let settle = Deadline::after(settle.min(deadline.remaining()));
            exchange(&mut socket, None, &settle, Duration::MAX, |_, _| false)
        }
    };
    Connection {
        socket,
        outcome,
        deadline,
        psk,
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

/// Reads for up to [`TICKET_WINDOW`] (within `deadline`) so that the session tickets a
/// TLS 1.3 server sends after the handshake are received, and stored by the library for
/// the next connection. Stops [`TICKET_GRACE`] after the first ticket (a server often
/// sends a second one right behind it), but not before `settle` from now, the wait for a
/// late alert that a connection without tickets gets too. A TLS 1.2 session is stored
/// during the handshake, so its notice is already there and the wait is short.
fn await_tickets(socket: &mut SslSocket, deadline: &Deadline, settle: Duration) -> Outcome {
    let window = Deadline::after(TICKET_WINDOW.min(deadline.remaining()));
    let settled = Instant::now() + settle;
    let mut first_ticket: Option<Instant> = None;
    exchange(socket, None, &window, POLL_STEP, |socket, _| {
        let ticket = socket
            .take_events()
            .iter()
            .any(|e| matches!(e, SslEvent::NewSessionTicketReceived));
        if ticket && first_ticket.is_none() {
            first_ticket = Some(Instant::now());
        }
        first_ticket.is_some_and(|at| at.elapsed() >= TICKET_GRACE && Instant::now() >= settled)
    })
}

/// Writes `text`, then reads until the peer closes, the deadline passes, or `enough`.
/// Waits last at most `step` each, so that `enough` can watch more than the data.
fn exchange(
    socket: &mut SslSocket,
    text: Option<&[u8]>,
    deadline: &Deadline,
    step: Duration,
    mut enough: impl FnMut(&mut SslSocket, &[u8]) -> bool,
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
            if enough(socket, &received) {
                break;
            }
            let remaining = deadline.remaining();
            let cut_short = step < remaining;
            match session::wait_readable(socket, remaining.min(step)) {
                Ok(()) => {}
                Err(error)
                    if cut_short && error.socket_error() == SocketError::SocketTimeoutError => {}
                Err(error) => {
                    last = Some(error);
                    break;
                }
            }
        }
    }
    keep(socket.read_all(), &mut received);
    Outcome::after_exchange(socket, last.as_ref()).with_received(received, count)
}
