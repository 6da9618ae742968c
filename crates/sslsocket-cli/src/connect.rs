//! `sslsocket connect`: one client connection, handshake, optional exchange, report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{SocketError, SslEvent};

use crate::args::{ConnectArgs, StartTlsArg};
use crate::events::EventLog;
use crate::exit::{self, Exit};
use crate::plan::{self, ConnectPlan};
use crate::psk::ClientHooks;
use crate::report::{self, ClientDetails, Timing};
use crate::session::{self, Deadline, Outcome};
use crate::starttls;
use crate::style::Progress;

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

/// What `connect` does besides the library calls: how it reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ui {
    /// `--showcerts`.
    pub showcerts: bool,
    /// `-v`: the library's events on stderr.
    pub verbose: bool,
    /// Progress lines on stderr (a terminal, and not `--verbose`).
    pub progress: bool,
}

/// `sslsocket connect`: `--keylog` set up, the arguments checked into a plan, then [`run`].
pub fn main(args: ConnectArgs) -> Exit {
    let ui = Ui {
        showcerts: args.showcerts,
        verbose: args.verbose,
        progress: !args.verbose && crate::style::progress_enabled(),
    };
    let keylog = args.keylog.clone();
    // The files are read within `--timeout`, which then bounds what is left of it.
    let started = Instant::now();
    let log_file = keylog.clone();
    let loaded = crate::input::within(Duration::from_millis(args.timeout), move || {
        if let Some(path) = &log_file {
            crate::keylog::prepare(path)?;
        }
        plan::connect(args)
    });
    let mut plan = match loaded {
        Ok(plan) => plan,
        Err(e) => return exit::bad_input(&e),
    };
    plan.timeout = plan
        .timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    if let Some(path) = &keylog {
        crate::keylog::point_at(path);
        plan.configuration.set_key_logging(true);
    }
    run(plan, ui)
}

/// Runs the plan, prints the report, closes, returns the exit status. With `--reconnect`,
/// the first connection is closed cleanly and a second one made with the same
/// configuration (so with its session store): both are reported, the second inside the
/// first, and the exit status is the higher of the two. `--timeout` bounds the whole run,
/// both connections together (a second one that finds no time left reports the timeout).
pub fn run(plan: ConnectPlan, ui: Ui) -> Exit {
    let target = if plan.host.contains(':') {
        format!("[{}]:{}", plan.host, plan.port)
    } else {
        format!("{}:{}", plan.host, plan.port)
    };
    let log = EventLog::new(ui.verbose);
    let deadline = Deadline::after(plan.timeout);
    let first = connect_with(
        &plan,
        deadline,
        plan.reconnect,
        &log,
        ui.progress,
        |_, _| false,
    );
    if !plan.reconnect {
        print(&plan, &ui, &target, &first, None);
        first.note_declined_psk();
        let exit = first.outcome.exit;
        session::finish(first.socket, &first.deadline, log);
        return exit;
    }
    let mut first = first;
    session::close_before(&mut first.socket, &deadline);
    log.drain(&mut first.socket);
    let second = connect_with(&plan, deadline, false, &log, ui.progress, |_, _| false);
    print(&plan, &ui, &target, &first, Some(&second));
    first.note_declined_psk();
    second.note_declined_psk();
    let exit = first.outcome.exit.worse(second.outcome.exit);
    session::finish(second.socket, &second.deadline, log);
    exit
}

/// Prints the report of `first`, with `second` inside it when there is one.
fn print(
    plan: &ConnectPlan,
    ui: &Ui,
    target: &str,
    first: &Connection,
    second: Option<&Connection>,
) {
    let details = |c: &Connection| ClientDetails {
        timing: c.timing,
        showcerts: ui.showcerts,
    };
    if plan.json {
        let mut json = report::client_json(&first.socket, &first.outcome, &details(first));
        if let Some(second) = second {
            json = json.with_reconnect(report::client_json(
                &second.socket,
                &second.outcome,
                &details(second),
            ));
        }
        report::print_json(&json);
    } else {
        let mut text = report::client_text(target, &first.socket, &first.outcome, &details(first));
        if let Some(second) = second {
            text.push_str("reconnect:\n");
            let second_text =
                report::client_text(target, &second.socket, &second.outcome, &details(second));
            for line in second_text.lines() {
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
    /// How long connect and handshake took.
    pub timing: Timing,
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
    let deadline = Deadline::after(plan.timeout);
    connect_with(
        plan,
        deadline,
        tickets,
        &EventLog::new(false),
        false,
        enough,
    )
}

/// [`connect`] within `deadline`, with the library's events written to `log` and
/// progress lines when `progress` is on.
pub fn connect_with(
    plan: &ConnectPlan,
    deadline: Deadline,
    tickets: bool,
    log: &EventLog,
    progress: bool,
    enough: impl FnMut(&mut SslSocket, &[u8]) -> bool,
) -> Connection {
    let started = Instant::now();
    let mut timing = Timing::default();
    let target = format!("{}:{}", plan.host, plan.port);
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
            let waiting = Progress::start(format!("connecting to {target}"), progress);
            let connected = socket.wait_for_connected(deadline.remaining());
            drop(waiting);
            log.drain(&mut socket);
            match connected {
                Ok(()) => {
                    timing.connect_ms = Some(ms(started.elapsed()));
                    let handshake_started = Instant::now();
                    let waiting = Progress::start(format!("TLS handshake with {target}"), progress);
                    let encrypted = socket.wait_for_encrypted(deadline.remaining());
                    drop(waiting);
                    if encrypted.is_ok() {
                        timing.handshake_ms = Some(ms(handshake_started.elapsed()));
                    }
                    encrypted.map_err(starttls::Failure::Socket)
                }
                Err(error) => Err(starttls::Failure::Socket(error)),
            }
        }
        Some(protocol) => {
            if let Some(name) = &plan.peer_name {
                socket.set_peer_verify_name(name.as_str());
            }
            socket.connect_to_host(&plan.host, plan.port);
            let waiting = Progress::start(format!("connecting to {target}"), progress);
            let upgraded = upgrade(&mut socket, protocol, &deadline, &mut timing, started, log);
            drop(waiting);
            upgraded
        }
    };
    // A ticket that came with the handshake (TLS 1.2's) is one for `await_tickets` too.
    let ticket_with_handshake = log
        .drain(&mut socket)
        .iter()
        .any(|e| matches!(e, SslEvent::NewSessionTicketReceived));
    if let Err(failure) = handshake {
        socket.abort();
        log.drain(&mut socket);
        let outcome = failure.outcome();
        return Connection {
            socket,
            outcome,
            deadline,
            psk,
            timing,
        };
    }
    let settle = started.elapsed().clamp(SETTLE_MIN, SETTLE_MAX);
    let mut enough = enough;
    let mut enough = |socket: &mut SslSocket, received: &[u8]| {
        log.drain(socket);
        enough(socket, received)
    };
    let outcome = match &plan.send {
        // The first of two connections reads its answer for up to `TICKET_WINDOW` (or until
        // the peer closes), so that the second has time left (the contract: "the first
        // connection reads for up to 1.5 s after the handshake ... before it closes").
        Some(text) if tickets => {
            let window = Deadline::after(TICKET_WINDOW.min(deadline.remaining()));
            exchange(
                &mut socket,
                Some(text),
                &window,
                log.step(POLL_STEP),
                &mut enough,
            )
        }
        Some(text) => exchange(
            &mut socket,
            Some(text),
            &deadline,
            log.step(Duration::MAX),
            &mut enough,
        ),
        None if tickets => {
            await_tickets(&mut socket, &deadline, settle, ticket_with_handshake, log)
        }
        None => {
            let settle = Deadline::after(settle.min(deadline.remaining()));
            exchange(
                &mut socket,
                None,
                &settle,
                log.step(Duration::MAX),
                &mut enough,
            )
        }
    };
    log.drain(&mut socket);
    Connection {
        socket,
        outcome,
        deadline,
        psk,
        timing,
    }
}

/// Milliseconds, with the fraction.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The STARTTLS way: connect, the plain-text exchange, then the handshake. The events of
/// each step are written when it ends (round 35: all of them waited for the handshake's
/// end, so `Connected` carried the time the upgrade finished).
fn upgrade(
    socket: &mut SslSocket,
    protocol: StartTlsArg,
    deadline: &Deadline,
    timing: &mut Timing,
    started: Instant,
    log: &EventLog,
) -> Result<(), starttls::Failure> {
    let connected = socket.wait_for_connected(deadline.remaining());
    log.drain(socket);
    connected?;
    timing.connect_ms = Some(ms(started.elapsed()));
    let upgraded = starttls::client(socket, protocol, deadline);
    log.drain(socket);
    upgraded?;
    session::ensure_open(socket)?;
    let handshake_started = Instant::now();
    socket.start_client_encryption()?;
    log.drain(socket);
    socket.wait_for_encrypted(deadline.remaining())?;
    timing.handshake_ms = Some(ms(handshake_started.elapsed()));
    Ok(())
}

/// Reads for up to [`TICKET_WINDOW`] (within `deadline`) so that the session tickets a
/// TLS 1.3 server sends after the handshake are received, and stored by the library for
/// the next connection. Stops [`TICKET_GRACE`] after the first ticket (a server often
/// sends a second one right behind it), but not before `settle` from now, the wait for a
/// late alert that a connection without tickets gets too. A TLS 1.2 session is stored
/// during the handshake, so its notice came with it (`ticket_already`) and the wait is
/// short.
fn await_tickets(
    socket: &mut SslSocket,
    deadline: &Deadline,
    settle: Duration,
    ticket_already: bool,
    log: &EventLog,
) -> Outcome {
    let window = Deadline::after(TICKET_WINDOW.min(deadline.remaining()));
    let settled = Instant::now() + settle;
    let mut first_ticket: Option<Instant> = ticket_already.then(Instant::now);
    exchange(socket, None, &window, log.step(POLL_STEP), |socket, _| {
        let ticket = log
            .drain(socket)
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
