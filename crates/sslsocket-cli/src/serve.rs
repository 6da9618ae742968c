//! `sslsocket serve`: accept TLS connections (directly or after a plain-text STARTTLS
//! greeting), handle each in its own thread, report each when it ends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::{Error, SslConfiguration, SslHooks};

use crate::args::StartTlsArg;
use crate::exit::Exit;
use crate::plan::ServePlan;
use crate::psk::ServerHooks;
use crate::report;
use crate::session::{self, Deadline, Outcome};
use crate::starttls;

/// The read buffer of an echoing connection: what it holds while its echo is unsent.
const ECHO_BUFFER: usize = 64 * 1024;
/// How many STARTTLS conversations run at once before accepting waits.
const MAX_CONCURRENT_UPGRADES: usize = 256;

/// One connection after its handshake: the socket, and the outcome when it failed.
type Handshaken = (SslSocket, Option<Outcome>);

/// Where finished handshakes come from.
enum Source {
    /// The library's server (TLS from the first byte).
    Server(SslServer),
    /// Our accept loop with a plain-text greeting first.
    StartTls(Receiver<Handshaken>),
}

impl Source {
    fn next(&self) -> Result<Option<Handshaken>, Error> {
        let wait = Duration::from_secs(3600);
        match self {
            Source::Server(server) => match server.next_connection(wait) {
                Ok(Ok(socket)) => Ok(Some((socket, None))),
                Ok(Err(socket)) => {
                    let outcome = match socket.core().error() {
                        Some(error) => Outcome::failed(error),
                        None => Outcome::failure(
                            false,
                            socket.error(),
                            "the handshake failed".to_string(),
                        ),
                    };
                    Ok(Some((socket, Some(outcome))))
                }
                Err(Error::Timeout(_)) => Ok(None),
                Err(other) => Err(other),
            },
            Source::StartTls(rx) => match rx.recv_timeout(wait) {
                Ok(handshaken) => Ok(Some(handshaken)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => {
                    Err(Error::Closed("the server stopped listening".into()))
                }
            },
        }
    }
}

/// Runs the server until killed, or until the first connection ends with `--once`.
pub fn run(plan: ServePlan) -> Exit {
    let mut plan = plan;
    for warning in &plan.warnings {
        report::error_line(warning);
    }
    let hooks = plan
        .psk
        .take()
        .map(|psk| Arc::new(ServerHooks::new(psk)) as Arc<dyn SslHooks>);
    let (source, address) = match listen(&plan, hooks) {
        Ok(listening) => listening,
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
    announce(&plan, address);
    let json = plan.json;
    loop {
        let (mut socket, failed) = match source.next() {
            Ok(Some(next)) => next,
            Ok(None) => continue,
            Err(error) => {
                report::error_line(&format!("error: {error}"));
                return Exit::of(error.socket_error());
            }
        };
        let echo = plan.echo;
        let handle = move |socket: &mut SslSocket| -> Outcome {
            let outcome = match failed {
                Some(outcome) => outcome,
                None => serve_connection(socket, echo),
            };
            if json {
                report::print_json(&report::server_json(socket, &outcome));
            } else {
                report::print_text(&report::server_text(socket, &outcome));
            }
            outcome
        };
        if plan.once {
            return handle(&mut socket).exit;
        }
        let spawned = thread::Builder::new()
            .name("sslsocket-connection".into())
            .spawn(move || {
                let mut socket = socket;
                handle(&mut socket);
            });
        if let Err(e) = spawned {
            report::error_line(&format!("error: cannot start a connection thread: {e}"));
        }
    }
}

/// Listens; `hooks` (pre-shared keys) go on every connection.
fn listen(
    plan: &ServePlan,
    hooks: Option<Arc<dyn SslHooks>>,
) -> Result<(Source, SocketAddr), Error> {
    let addr = (plan.host.as_str(), plan.port);
    match plan.starttls {
        None => {
            let server = SslServer::listen(addr, plan.configuration.clone())?;
            server.set_handshake_timeout(plan.handshake_timeout);
            if let Some(hooks) = hooks {
                server.set_hooks(hooks);
            }
            let local = server.local_addr();
            Ok((Source::Server(server), local))
        }
        Some(protocol) => {
            let listener = TcpListener::bind(addr).map_err(|e| Error::io("listening", e))?;
            let local = listener
                .local_addr()
                .map_err(|e| Error::io("listening", e))?;
            let (tx, rx) = mpsc::channel();
            let configuration = plan.configuration.clone();
            let timeout = plan.handshake_timeout;
            thread::Builder::new()
                .name("sslsocket-accept".into())
                .spawn(move || {
                    accept_loop(listener, configuration, hooks, protocol, timeout, tx);
                })
                .map_err(|e| Error::io("starting the accept thread", e))?;
            Ok((Source::StartTls(rx), local))
        }
    }
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

fn accept_loop(
    listener: TcpListener,
    configuration: SslConfiguration,
    hooks: Option<Arc<dyn SslHooks>>,
    protocol: StartTlsArg,
    timeout: Duration,
    tx: Sender<Handshaken>,
) {
    let running = Arc::new(AtomicUsize::new(0));
    for incoming in listener.incoming() {
        let Ok(stream) = incoming else { continue };
        while running.load(Ordering::Acquire) >= MAX_CONCURRENT_UPGRADES {
            thread::sleep(Duration::from_millis(5));
        }
        let configuration = configuration.clone();
        let hooks = hooks.clone();
        let tx = tx.clone();
        let counter = Arc::clone(&running);
        counter.fetch_add(1, Ordering::AcqRel);
        let spawned = thread::Builder::new()
            .name("sslsocket-starttls".into())
            .spawn(move || {
                let result = upgrade(stream, configuration, hooks, protocol, timeout);
                counter.fetch_sub(1, Ordering::AcqRel);
                let _ = tx.send(result);
            });
        if spawned.is_err() {
            running.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The plain-text greeting, the upgrade command, the server handshake; all within
/// `timeout` from accept.
fn upgrade(
    stream: TcpStream,
    configuration: SslConfiguration,
    hooks: Option<Arc<dyn SslHooks>>,
    protocol: StartTlsArg,
    timeout: Duration,
) -> Handshaken {
    let deadline = Deadline::after(timeout);
    let mut socket = match SslSocket::from_tcp_stream(stream, configuration.clone()) {
        Ok(socket) => socket,
        Err(error) => {
            return (
                SslSocket::with_configuration(configuration),
                Some(Outcome::failed(&error)),
            )
        }
    };
    if let Some(hooks) = hooks {
        socket.set_hooks(hooks);
    }
    let result = starttls::server(&mut socket, protocol, &deadline).and_then(|()| {
        session::ensure_open(&socket)?;
        socket.start_server_encryption()?;
        socket.wait_for_encrypted(deadline.remaining())?;
        Ok(())
    });
    match result {
        Ok(()) => (socket, None),
        Err(failure) => {
            socket.abort();
            let outcome = failure.outcome();
            (socket, Some(outcome))
        }
    }
}

/// After the handshake: read (and echo) until the client closes; then close.
pub fn serve_connection(socket: &mut SslSocket, echo: bool) -> Outcome {
    if echo {
        socket.set_read_buffer_size(ECHO_BUFFER);
    }
    let mut count = 0u64;
    let last = loop {
        // Data may already be buffered (it can arrive with the handshake's last flight, or
        // while a write is driven): take it before waiting for more.
        let data = socket.read_all();
        if data.is_empty() {
            if let Err(error) = session::wait_readable(socket, Duration::MAX) {
                break error;
            }
            continue;
        }
        count += data.len() as u64;
        if echo {
            if let Err(error) = session::send(socket, &data, &Deadline::never()) {
                break error;
            }
        }
    };
    count += socket.read_all().len() as u64;
    let outcome = Outcome::after_exchange(socket, Some(&last)).with_received(Vec::new(), count);
    session::close(socket);
    outcome
}
