//! What connect, serve and demo share: one deadline, the end of a connection classified
//! into an [`Outcome`], line reading for the plain-text part of STARTTLS, closing.

use std::io::Write;
use std::time::{Duration, Instant};

use sslsocket::blocking::SslSocket;
use sslsocket::core::SslCore;
use sslsocket::prelude::*;
use sslsocket::{Error, SocketError, SocketState};

use crate::events::EventLog;
use crate::exit::Exit;
use crate::report::Reported;

/// The longest a graceful close may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of `connect` waits for a close, even when the deadline has passed.
const FINISH_GRACE: Duration = Duration::from_millis(250);

/// The most a plain-text protocol line may hold.
pub const MAX_LINE: usize = 8 * 1024;

/// One overall limit for a sequence of waits.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// A deadline that never passes.
    pub fn never() -> Deadline {
        Deadline(None)
    }

    /// The time left (zero once passed; `Duration::MAX` for never).
    pub fn remaining(&self) -> Duration {
        match self.0 {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        }
    }
}

/// How a connection ended, beyond what the socket's accessors tell.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The handshake finished.
    pub encrypted: bool,
    /// What failed or ended the connection abnormally, `None` for a clean end.
    pub socket_error: Option<SocketError>,
    /// The readable form of `socket_error`, empty when there is none.
    pub error_string: String,
    /// What was read from the peer (kept by `connect`; `serve` only counts).
    pub received: Vec<u8>,
    /// How many bytes were read from the peer.
    pub received_bytes: u64,
    /// The exit status this outcome stands for.
    pub exit: Exit,
}

impl Outcome {
    /// A connection that never became encrypted because of `error`.
    pub fn failed(error: &Error) -> Outcome {
        Outcome::failure(false, error.socket_error(), error.to_string())
    }

    /// A failure with this socket error and message.
    pub fn failure(encrypted: bool, socket_error: SocketError, message: String) -> Outcome {
        Outcome {
            encrypted,
            socket_error: Some(socket_error),
            error_string: message,
            received: Vec::new(),
            received_bytes: 0,
            exit: Exit::of(socket_error),
        }
    }

    /// An encrypted connection that ended well.
    pub fn clean() -> Outcome {
        Outcome {
            encrypted: true,
            socket_error: None,
            error_string: String::new(),
            received: Vec::new(),
            received_bytes: 0,
            exit: Exit::Ok,
        }
    }

    /// An encrypted connection after its exchange ended (`last` is the error that
    /// stopped reading, if any), classified from the socket's state: a failure (an alert
    /// after the handshake, an I/O error), a truncation (exit 0, `RemoteHostClosedError`),
    /// or a clean end, including a read cut by the deadline.
    pub fn after_exchange(socket: &impl Reported, last: Option<&Error>) -> Outcome {
        let core = socket.core();
        if let Some(failure) = core.failure() {
            let socket_error = failure.socket_error();
            let mut outcome = Outcome::failure(true, socket_error, failure.to_string());
            if socket_error == SocketError::RemoteHostClosedError {
                // Closed by the peer after the handshake: the connection was encrypted.
                outcome.exit = Exit::Ok;
            }
            return outcome;
        }
        if core.is_truncated() {
            let mut outcome = Outcome::failure(
                true,
                SocketError::RemoteHostClosedError,
                core.error_string(),
            );
            outcome.exit = Exit::Ok;
            return outcome;
        }
        match last {
            Some(error)
                if !core.is_eof()
                    && !matches!(
                        error.socket_error(),
                        SocketError::SocketTimeoutError | SocketError::RemoteHostClosedError
                    ) =>
            {
                Outcome::failure(true, error.socket_error(), error.to_string())
            }
            _ => Outcome::clean(),
        }
    }

    /// Adds what was received.
    pub fn with_received(mut self, received: Vec<u8>, count: u64) -> Outcome {
        self.received = received;
        self.received_bytes = count;
        self
    }
}

/// Closes a connection whose exchange is over: gracefully (pending data, close_notify)
/// unless it failed, then at once.
pub fn close(socket: &mut SslSocket) {
    if socket.failure().is_none() {
        let _ = socket.disconnect_within(CLOSE_TIMEOUT);
    }
    socket.abort();
}

/// Closes like [`close`], taking at most a quarter of what is left of `deadline` (and at
/// most [`CLOSE_TIMEOUT`]): `--reconnect` closes its first connection this way, so that a
/// peer that never answers close_notify leaves the second connection most of its time.
pub fn close_before(socket: &mut SslSocket, deadline: &Deadline) {
    if socket.failure().is_none() {
        let _ = socket.disconnect_within(CLOSE_TIMEOUT.min(deadline.remaining() / 4));
    }
    socket.abort();
}

/// Closes like [`close`] without outliving `deadline` by more than a moment: the close
/// runs on its own thread (close_notify goes out at once; the library then lingers for the
/// peer's end of stream), and is left behind when the process is about to exit anyway.
/// The events of the close go to `log` (`-v` shows the connection to its end).
pub fn finish(socket: SslSocket, deadline: &Deadline, log: EventLog) {
    let mut socket = socket;
    if socket.failure().is_some() {
        socket.abort();
        log.drain(&mut socket);
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("sslsocket-close".into())
        .spawn(move || {
            close(&mut socket);
            log.drain(&mut socket);
            let _ = tx.send(());
        });
    if spawned.is_ok() {
        let wait = deadline.remaining().clamp(FINISH_GRACE, CLOSE_TIMEOUT);
        let _ = rx.recv_timeout(wait);
    }
}

/// Waits for new data, like the library's `wait_for_ready_read`, but never on a
/// connection that already ended: the library's waits (re)connect a socket whose stream is
/// gone (to its target for a client, an `OperationError` for an adopted one), so a
/// connection the peer closed during an earlier call must not be waited on again.
pub fn wait_readable(socket: &mut SslSocket, timeout: Duration) -> Result<(), Error> {
    ensure_open(socket)?;
    socket.wait_for_ready_read(timeout)
}

/// An error when the connection failed, or the peer finished, or it is closed.
pub fn ensure_open(socket: &impl Reported) -> Result<(), Error> {
    let core = socket.core();
    if let Some(failure) = core.failure() {
        return Err(failure.clone());
    }
    if core.is_eof() || core.state() == SocketState::UnconnectedState {
        return Err(match core.error() {
            Some(error) => error.clone(),
            None => Error::Closed("the remote host closed the connection".into()),
        });
    }
    Ok(())
}

/// Reads one line (without its line end) in plain mode, waiting until `deadline`.
pub fn read_line(socket: &mut SslSocket, deadline: &Deadline) -> Result<String, Error> {
    loop {
        // `read_line(max)` takes at most `max - 1` bytes (Qt's rule): `MAX_LINE + 1` reads
        // a line of `MAX_LINE` bytes whole (round 34: its `\n` was left behind and read as
        // the next answer).
        if socket.can_read_line() {
            let line = socket.read_line(MAX_LINE + 1);
            let text = String::from_utf8_lossy(&line);
            return Ok(text.trim_end_matches(['\r', '\n']).to_string());
        }
        if socket.bytes_available() >= MAX_LINE {
            return Ok(String::from_utf8_lossy(&socket.read_line(MAX_LINE + 1)).into_owned());
        }
        wait_readable(socket, deadline.remaining())?;
    }
}

/// Writes `data` and waits until it is on the wire, within `deadline`.
pub fn send(socket: &mut SslSocket, data: &[u8], deadline: &Deadline) -> Result<(), Error> {
    socket.set_io_timeout(Some(deadline.remaining()));
    let written = socket.write_all(data).and_then(|()| socket.flush());
    socket.set_io_timeout(None);
    written.map_err(|e| io_to_error(e, socket))
}

/// The library error inside an `io::Error` from `Read`/`Write` on a socket.
pub fn io_to_error(error: std::io::Error, socket: &SslSocket) -> Error {
    io_error(error, SslSocketExt::core(socket), "writing")
}

/// The library error inside an `io::Error` from either driver's `Read`/`Write`
/// (`AsyncRead`/`AsyncWrite`), else the connection's failure, else the I/O error itself.
pub fn io_error(error: std::io::Error, core: &SslCore, what: &str) -> Error {
    if let Some(inner) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
    {
        return inner.clone();
    }
    if let Some(failure) = core.failure() {
        return failure.clone();
    }
    Error::io(what, error)
}
