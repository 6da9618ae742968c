//! `sslsocket serve`: accept TLS connections (directly or after a plain-text STARTTLS
//! greeting), handle each in its own task, report each when it ends.
//!
//! Connections run on the library's tokio driver: handshakes on one runtime, established
//! connections on another, each with one worker thread per core. A connection waiting for
//! its client holds its TLS state and a small task, no buffer of its own: an echo buffer
//! exists only while an echo is being read and written, and goes back in one write.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use sslsocket::core::SslCore;
use sslsocket::prelude::*;
use sslsocket::tokio::{FailedHandshake, SslServer, SslSocket};
use sslsocket::{Error, SslConfiguration, SslHooks};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::args::StartTlsArg;
use crate::exit::Exit;
use crate::plan::ServePlan;
use crate::psk::ServerHooks;
use crate::report::{self, Reported};
use crate::session::{self, Outcome};
use crate::starttls;

/// The decrypted bytes an echoing connection lets the TLS engine buffer before it stops
/// reading from the socket (back-pressure on a client that does not read its echo).
const ECHO_BUFFER: usize = 64 * 1024;
/// The most one echo gathers before writing it back: everything that already arrived, up
/// to this, goes back in one write (never a series of small writes, which Nagle and delayed
/// acknowledgements would stall).
const ECHO_BATCH: usize = 256 * 1024;
/// How much one step of gathering reads (a TLS record holds at most 16 KiB).
const GATHER_STEP: usize = 32 * 1024;
/// How many handshakes (and STARTTLS conversations) run at once before accepting waits;
/// each ends within the handshake timeout, or is ended to make room (see `CROWDED_AFTER`).
const MAX_CONCURRENT_HANDSHAKES: usize = 1024;
/// With every handshake slot taken, the oldest handshake that has run this long is ended
/// (reported as failed, `SocketTimeoutError`) for a client that is waiting, as the
/// library's servers do: a crowd of silent connections cannot lock honest clients out for
/// the whole handshake timeout (round 34).
const CROWDED_AFTER: Duration = Duration::from_secs(3);
/// The longest a graceful close may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause after a failed accept (a full descriptor table, say), so that the loop does
/// not spin while the condition lasts.
const ACCEPT_PAUSE: Duration = Duration::from_millis(20);

/// Runs the server until killed, or until the first connection ends with `--once`.
pub fn run(plan: ServePlan) -> Exit {
    for warning in &plan.warnings {
        report::error_line(warning);
    }
    // Handshakes (and STARTTLS conversations) run on a runtime of their own: a crowd of
    // clients handshaking takes worker turns from the handshakes only, while the
    // operating system shares the cores between both runtimes' threads, so established
    // connections keep their throughput. Sockets are registered with the connections'
    // runtime (where they are accepted), and move there once encrypted.
    let (connections, handshakes) =
        match (runtime("sslsocket-serve"), runtime("sslsocket-handshake")) {
            (Ok(connections), Ok(handshakes)) => (connections, handshakes),
            (Err(error), _) | (_, Err(error)) => {
                report::error_line(&format!("error: cannot start the runtime: {error}"));
                return Exit::Network;
            }
        };
    let exit = connections.block_on(serve(plan, handshakes.handle().clone()));
    // Connections still open (with `--once`) are dropped, not waited for.
    connections.shutdown_background();
    handshakes.shutdown_background();
    exit
}

/// A runtime with one worker thread per core.
fn runtime(name: &str) -> io::Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
}

/// What each connection's task needs to know.
#[derive(Clone)]
struct Settings {
    echo: bool,
    json: bool,
    /// With `--once`: where finished handshakes go, for the main task to serve the first.
    once: Option<mpsc::UnboundedSender<Handshaken>>,
}

/// The accept loop, on the connections' runtime; handshakes go to `handshakes`.
async fn serve(plan: ServePlan, handshakes: tokio::runtime::Handle) -> Exit {
    let here = tokio::runtime::Handle::current();
    let mut plan = plan;
    let hooks = plan
        .psk
        .take()
        .map(|psk| Arc::new(ServerHooks::new(psk)) as Arc<dyn SslHooks>);
    let server = match listen(&plan, hooks.clone()).await {
        Ok(server) => server,
        Err(error) => {
            report::error_line(&format!(
                "error: listening on {}:{}: {error}",
                plan.host, plan.port
            ));
            return match Exit::of(error.socket_error()) {
                Exit::Ok => Exit::Network,
                other => other,
            };
        }
    };
    // Before the first line: a SIGHUP from then on reloads, never ends the process.
    if let Err(error) = reload_on_hangup(&server, &plan) {
        report::error_line(&format!("warning: SIGHUP will not reload: {error}"));
    }
    announce(&plan, server.local_addr());

    let (tx, mut rx) = mpsc::unbounded_channel();
    let settings = Settings {
        echo: plan.echo,
        json: plan.json,
        once: plan.once.then_some(tx),
    };
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    // The handshakes under way, oldest first, each with the sender that ends it early.
    let mut started: VecDeque<(Instant, oneshot::Sender<()>)> = VecDeque::new();
    // The last accept error shown: one that lasts (a full descriptor table) is shown once.
    let mut shown = String::new();
    loop {
        let (permit, accepted) = tokio::select! {
            biased;
            Some(first) = rx.recv() => {
                return handle(first, settings.echo, settings.json).await.exit;
            }
            next = accept(&server, &permits, &mut started) => next,
        };
        // The address `accept` gave: still known when the client is gone before its socket
        // asks the kernel (one that resets at once).
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                let line = format!("error: {error}");
                if !transient(&error) && line != shown {
                    report::error_line(&line);
                    shown = line;
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        shown.clear();
        // Echoes and replies go out at once, whatever their size (no Nagle delay).
        let _ = stream.set_nodelay(true);
        let settings = settings.clone();
        let (evict, evicted) = oneshot::channel();
        started.push_back((Instant::now(), evict));
        match plan.starttls {
            None => {
                // Boxed (as every future below that runs only for a moment): the task
                // keeps only what a waiting connection needs.
                let handshake = Box::pin(server.handshake_accepted(stream, peer));
                let here = here.clone();
                handshakes.spawn(async move {
                    let handshaken = tokio::select! {
                        biased;
                        result = handshake => handshaken(result, Some(peer)),
                        Ok(()) = evicted => crowded_out(peer),
                    };
                    drop(permit);
                    deliver(&here, handshaken, settings);
                });
            }
            Some(protocol) => {
                let configuration = server.ssl_configuration().clone();
                let hooks = hooks.clone();
                let timeout = plan.handshake_timeout;
                let upgrade = Box::pin(upgrade(
                    stream,
                    peer,
                    configuration,
                    hooks,
                    protocol,
                    timeout,
                ));
                let here = here.clone();
                handshakes.spawn(async move {
                    let handshaken = tokio::select! {
                        biased;
                        handshaken = upgrade => handshaken,
                        Ok(()) = evicted => crowded_out(peer),
                    };
                    drop(permit);
                    deliver(&here, handshaken, settings);
                });
            }
        }
    }
}

/// `{"event":"reloaded"}`.
#[derive(serde::Serialize)]
struct ReloadedJson {
    event: &'static str,
}

/// `{"event":"reload_failed","error":"..."}`.
#[derive(serde::Serialize)]
struct ReloadFailedJson {
    event: &'static str,
    error: String,
}

/// On SIGHUP: reads every certificate, key and OCSP file again and hands them to the
/// server (handshakes that start afterwards use them; open connections keep theirs); on
/// any failure, says so and keeps what it had.
#[cfg(unix)]
fn reload_on_hangup(server: &SslServer, plan: &ServePlan) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    let handle = server.reload_handle();
    let sources = plan.credentials.clone();
    let json = plan.json;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let sources = sources.clone();
            let handle = handle.clone();
            // File reads and key parsing: off the runtime's workers.
            let result = tokio::task::spawn_blocking(move || {
                let credentials =
                    crate::input::within(crate::input::INPUT_WAIT, move || sources.load())?;
                handle
                    .reload(&credentials)
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))
            })
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("reloading stopped: {e}")));
            match (result, json) {
                (Ok(()), true) => report::print_json(&ReloadedJson { event: "reloaded" }),
                (Ok(()), false) => report::print_text("reloaded\n"),
                (Err(error), true) => report::print_json(&ReloadFailedJson {
                    event: "reload_failed",
                    error: format!("{error:#}"),
                }),
                (Err(error), false) => report::print_text(&format!("reload failed: {error:#}\n")),
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn reload_on_hangup(_server: &SslServer, _plan: &ServePlan) -> io::Result<()> {
    Ok(())
}

/// Waits for a free handshake slot, then for the next connection. With every slot taken
/// for `CROWDED_AFTER` by the oldest handshake in `started`, a connection is accepted
/// anyway and that handshake is ended to make room (its slot frees as it reports).
async fn accept(
    server: &SslServer,
    permits: &Arc<Semaphore>,
    started: &mut VecDeque<(Instant, oneshot::Sender<()>)>,
) -> (
    Option<OwnedSemaphorePermit>,
    Result<(TcpStream, SocketAddr), Error>,
) {
    // Handshakes that ended dropped their receiver.
    started.retain(|(_, evict)| !evict.is_closed());
    if let Ok(permit) = Arc::clone(permits).try_acquire_owned() {
        return (Some(permit), server.accept().await);
    }
    let Some(due) = started.front().map(|(since, _)| *since + CROWDED_AFTER) else {
        // The semaphore is never closed; without a permit the connection is still served.
        let permit = Arc::clone(permits).acquire_owned().await.ok();
        return (permit, server.accept().await);
    };
    tokio::select! {
        permit = Arc::clone(permits).acquire_owned() => (permit.ok(), server.accept().await),
        () = tokio::time::sleep_until(due.into()) => {
            let accepted = server.accept().await;
            if let Ok(permit) = Arc::clone(permits).try_acquire_owned() {
                // A slot freed meanwhile: nobody need go.
                return (Some(permit), accepted);
            }
            if accepted.is_err() {
                return (None, accepted);
            }
            started.retain(|(_, evict)| !evict.is_closed());
            if let Some((_, oldest)) = started.pop_front() {
                let _ = oldest.send(());
            }
            // The slot the ended handshake frees is this connection's, so the handshakes
            // under way stay at most `MAX_CONCURRENT_HANDSHAKES` (round 34: without it each
            // eviction added one past the bound). Its task gives the permit back as soon
            // as it runs (or gave it back already, ending by itself); a wait with a time
            // limit let connections past the bound on a loaded machine.
            let permit = Arc::clone(permits).acquire_owned().await.ok();
            (permit, accepted)
        }
    }
}

/// A handshake ended to make room for a waiting client (see `CROWDED_AFTER`).
fn crowded_out(peer: SocketAddr) -> Handshaken {
    let error = Error::Timeout(format!(
        "every handshake slot was taken and the client had not finished its handshake within \
         {} s: closed for a waiting client",
        CROWDED_AFTER.as_secs()
    ));
    Handshaken::Failed(
        Ended::Detached(
            Box::new(SslCore::new(SslConfiguration::default())),
            Some(peer),
        ),
        Outcome::failed(&error),
    )
}

/// Accept errors that concern one connection only (it went away before it was accepted).
fn transient(error: &Error) -> bool {
    let kind = match error {
        Error::Io { source, .. } => source.kind(),
        _ => return false,
    };
    matches!(
        kind,
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Listens; `hooks` (pre-shared keys) go on every connection.
async fn listen(plan: &ServePlan, hooks: Option<Arc<dyn SslHooks>>) -> Result<SslServer, Error> {
    let addr = (plan.host.as_str(), plan.port);
    let mut server = SslServer::bind(addr, plan.configuration.clone()).await?;
    server.set_handshake_timeout(plan.handshake_timeout);
    if let Some(hooks) = hooks {
        server.set_hooks(hooks);
    }
    Ok(server)
}

fn announce(plan: &ServePlan, address: SocketAddr) {
    if plan.json {
        if let Some(sha256) = &plan.generated_sha256 {
            report::error_line(&format!(
                "self-signed certificate for localhost, 127.0.0.1: sha256 {sha256}"
            ));
        }
        report::print_json(&report::ListeningJson {
            event: "listening",
            address: address.to_string(),
        });
    } else {
        let mut text = format!("listening on {address}\n");
        if let Some(sha256) = &plan.generated_sha256 {
            text.push_str(&format!(
                "self-signed certificate for localhost, 127.0.0.1: sha256 {sha256}\n"
            ));
        }
        report::print_text(&text);
    }
}

/// A connection whose handshake is over: encrypted, or failed with its outcome.
enum Handshaken {
    /// Boxed, so that moving it from future to future copies a pointer.
    Encrypted(Box<SslSocket>),
    Failed(Ended, Outcome),
}

/// A connection that failed before its exchange: the socket when there is one.
enum Ended {
    /// The socket, and the address `accept` gave (reported when the socket has none).
    Socket(Box<SslSocket>, Option<SocketAddr>),
    /// No socket was made: an empty core, and the peer.
    Detached(Box<SslCore>, Option<SocketAddr>),
}

impl Reported for Ended {
    fn core(&self) -> &SslCore {
        match self {
            Ended::Socket(socket, _) => SslSocketExt::core(&**socket),
            Ended::Detached(core, _) => core,
        }
    }

    fn peer_address(&self) -> Option<SocketAddr> {
        match self {
            Ended::Socket(socket, accepted) => socket.peer_addr().or(*accepted),
            Ended::Detached(_, peer) => *peer,
        }
    }
}

/// The result of the library server's handshake.
fn handshaken(result: Result<SslSocket, FailedHandshake>, peer: Option<SocketAddr>) -> Handshaken {
    match result {
        Ok(socket) => Handshaken::Encrypted(Box::new(socket)),
        Err(failed) => {
            let error = failed.error().clone();
            match failed.into_socket() {
                Some(socket) => {
                    let outcome =
                        Outcome::failed(SslSocketExt::core(&socket).error().unwrap_or(&error));
                    Handshaken::Failed(Ended::Socket(Box::new(socket), peer), outcome)
                }
                None => Handshaken::Failed(
                    Ended::Detached(Box::new(SslCore::new(SslConfiguration::default())), peer),
                    Outcome::failed(&error),
                ),
            }
        }
    }
}

/// The plain-text greeting, the upgrade command, the server handshake; all within
/// `timeout` from accept.
async fn upgrade(
    stream: TcpStream,
    accepted: SocketAddr,
    configuration: SslConfiguration,
    hooks: Option<Arc<dyn SslHooks>>,
    protocol: StartTlsArg,
    timeout: Duration,
) -> Handshaken {
    let peer = Some(accepted);
    let mut socket = match SslSocket::from_tcp_stream(stream, configuration) {
        Ok(socket) => socket,
        Err(error) => {
            return Handshaken::Failed(
                Ended::Detached(Box::new(SslCore::new(SslConfiguration::default())), peer),
                Outcome::failed(&error),
            )
        }
    };
    if let Some(hooks) = hooks {
        socket.set_hooks(hooks);
    }
    let result = tokio::time::timeout(timeout, async {
        starttls::server(&mut socket, protocol).await?;
        session::ensure_open(&socket)?;
        socket.start_server_encryption().await?;
        Ok::<(), starttls::Failure>(())
    })
    .await;
    let outcome = match result {
        Ok(Ok(())) => return Handshaken::Encrypted(Box::new(socket)),
        Ok(Err(failure)) => failure.outcome(),
        Err(_elapsed) => Outcome::failed(&Error::Timeout(
            "the client did not finish the handshake in time".into(),
        )),
    };
    socket.abort();
    Handshaken::Failed(Ended::Socket(Box::new(socket), peer), outcome)
}

/// Serves a handshaken connection in a task of its own on the connections' runtime
/// (`here`), or with `--once` hands it to the main task (which serves the first and
/// exits). The task of an encrypted connection holds only the boxed socket and the state
/// of its wait (its future is about 150 bytes, against 570 when it also held the settings,
/// the handshake's result and the report's values): nothing needed only before or after
/// the exchange stays in it while the connection is idle.
fn deliver(here: &tokio::runtime::Handle, handshaken: Handshaken, settings: Settings) {
    if let Some(tx) = &settings.once {
        let _ = tx.send(handshaken);
        return;
    }
    let (echo, json) = (settings.echo, settings.json);
    match handshaken {
        Handshaken::Encrypted(socket) => {
            here.spawn(async move {
                serve_encrypted(socket, echo, json).await;
            });
        }
        Handshaken::Failed(ended, outcome) => {
            here.spawn(async move {
                report_ended(&ended, &outcome, json);
            });
        }
    }
}

/// Runs the exchange of an encrypted connection (or takes a failure's outcome), then
/// reports the connection.
async fn handle(handshaken: Handshaken, echo: bool, json: bool) -> Outcome {
    match handshaken {
        Handshaken::Encrypted(socket) => serve_encrypted(socket, echo, json).await,
        Handshaken::Failed(ended, outcome) => {
            report_ended(&ended, &outcome, json);
            outcome
        }
    }
}

/// Runs the exchange of an encrypted connection, then closes and reports it.
///
/// While the client is idle, this future holds the boxed socket and the wait in
/// [`exchange`]; what the end needs (the outcome, the close) is boxed apart, made only
/// once the exchange is over.
async fn serve_encrypted(mut socket: Box<SslSocket>, echo: bool, json: bool) -> Outcome {
    if echo {
        socket.set_read_buffer_size(ECHO_BUFFER);
    }
    let mut count = Counts::default();
    let last = exchange(&mut socket, echo, &mut count).await;
    finish(socket, last, count, echo, json).await
}

/// What the exchange read, and what of it an echo could not write back.
#[derive(Default)]
struct Counts {
    received: u64,
    unechoed: u64,
}

/// The outcome of a connection whose exchange is over, and its close and report, boxed.
fn finish(
    mut socket: Box<SslSocket>,
    last: Error,
    mut count: Counts,
    echo: bool,
    json: bool,
) -> Pin<Box<impl Future<Output = Outcome>>> {
    let rest = socket.read_all().len() as u64;
    count.received += rest;
    if echo {
        count.unechoed += rest;
    }
    let mut outcome = Outcome::after_exchange(&*socket, Some(&last));
    if count.unechoed > 0 && outcome.socket_error.is_none() {
        // An echo cut short is no clean end (round 36: a TLS 1.3 client that closed its
        // side first got part of its echo and then a clean close_notify, and the line said
        // nothing): the client's close ends both ways here (README).
        let exit = outcome.exit;
        outcome = Outcome::failure(
            true,
            sslsocket::SocketError::RemoteHostClosedError,
            format!(
                "the client closed before up to {} of the {} bytes received were \
                 echoed (a close_notify ends both directions)",
                count.unechoed, count.received
            ),
        );
        outcome.exit = exit;
        // No close_notify either: the client sees its echo cut, not a clean end.
        socket.abort();
    }
    let outcome = outcome.with_received(Vec::new(), count.received);
    Box::pin(close_and_report(socket, outcome, json))
}

/// Closes a connection whose exchange is over, then reports it.
async fn close_and_report(mut socket: Box<SslSocket>, outcome: Outcome, json: bool) -> Outcome {
    close(&mut socket).await;
    let peer = socket.peer_addr();
    report_ended(&Ended::Socket(socket, peer), &outcome, json);
    outcome
}

/// Prints the line (or the text) of a connection that ended.
fn report_ended(ended: &Ended, outcome: &Outcome, json: bool) {
    if json {
        report::print_json(&report::server_json(ended, outcome));
    } else {
        report::print_text(&report::server_text(ended, outcome));
    }
}

/// After the handshake: reads (and echoes) until the client closes; returns the error that
/// ended the exchange, `count` adding up the bytes read.
///
/// While waiting for the client the task holds no buffer: data is taken from the TLS
/// engine once it is there, written back whole (with `--echo`), and dropped. Writing waits
/// for the socket to take the echo, and nothing is read meanwhile: a client that does not
/// read its echo is not read from either.
async fn exchange(socket: &mut SslSocket, echo: bool, count: &mut Counts) -> Error {
    loop {
        // Nobody takes the events; drop them so that they do not pile up.
        while socket.poll_event().is_some() {}
        // Data may already be buffered (it can arrive with the handshake's last flight, or
        // while an echo is written): take it before waiting for more.
        if socket.bytes_available() == 0 {
            if let Err(error) = wait_readable(socket).await {
                return error;
            }
            continue;
        }
        if !echo {
            count.received += socket.read_all().len() as u64;
            continue;
        }
        // Boxed: the echo's state exists only while it runs.
        if let Err(error) = Box::pin(echo_once(socket, count)).await {
            return error;
        }
    }
}

/// Gathers what arrived and writes it back whole.
async fn echo_once(socket: &mut SslSocket, count: &mut Counts) -> Result<(), Error> {
    let data = gather(socket).await;
    count.received += data.len() as u64;
    let sent = send(socket, &data).await;
    if sent.is_err() {
        count.unechoed += data.len() as u64;
    }
    sent
}

/// Waits for new data, but never on a connection that already ended.
async fn wait_readable(socket: &mut SslSocket) -> Result<(), Error> {
    session::ensure_open(socket)?;
    socket.wait_for_ready_read().await
}

/// Everything decrypted so far, and then whatever else has already arrived, up to
/// [`ECHO_BATCH`], without waiting.
async fn gather(socket: &mut SslSocket) -> Vec<u8> {
    let mut data = socket.read_all();
    while data.len() < ECHO_BATCH {
        let start = data.len();
        data.resize(start + GATHER_STEP.min(ECHO_BATCH - start), 0);
        let read = poll_fn(|cx| {
            let mut buf = ReadBuf::new(data.get_mut(start..).unwrap_or_default());
            // One poll: what the socket has now, nothing that would need a wait. Errors
            // are recorded by the socket and reported by the next wait.
            Poll::Ready(match Pin::new(&mut *socket).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => buf.filled().len(),
                Poll::Ready(Err(_)) | Poll::Pending => 0,
            })
        })
        .await;
        data.truncate(start + read);
        if read == 0 {
            break;
        }
    }
    data
}

/// Writes `data` and waits until it is on the wire.
async fn send(socket: &mut SslSocket, data: &[u8]) -> Result<(), Error> {
    let written = match socket.write_all(data).await {
        Ok(()) => socket.flush().await,
        Err(error) => Err(error),
    };
    written.map_err(|error| session::io_error(error, SslSocketExt::core(&*socket), "writing"))
}

/// Closes a connection whose exchange is over: gracefully (pending data, close_notify)
/// unless it failed, then at once.
async fn close(socket: &mut SslSocket) {
    if socket.failure().is_none() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.disconnect_from_host()).await;
    }
    socket.abort();
}
