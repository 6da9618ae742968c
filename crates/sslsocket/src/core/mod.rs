//! The sans-IO core: all socket state, no I/O of its own.
//!
//! [`SslCore`] owns the mode, the state, the TLS session, the buffers, the collected
//! verification errors, the ignore policy and the event queue. It reads no clock, opens no
//! socket and spawns nothing; the drivers ([`crate::blocking`], [`crate::tokio`]) move bytes
//! between the operating system and the core.
//!
//! ## Calling protocol
//! After every input (`read_from`/`handle_tls`, `write`, `start_*_encryption`,
//! `disconnect_from_host`), the driver writes what the core has to send (`write_to` or
//! `poll_transmit`) and drains `poll_event()` until `None`. Inputs are `handle_*`/`read_*`,
//! outputs are `poll_*`/`write_to`, predicates are `is_*`/`wants_*`.
//!
//! In `UnencryptedMode` bytes pass through untouched, so STARTTLS is a state change of the
//! same core, not a new socket.

mod buffers;
mod events;
mod info;
mod lifecycle;
mod transport;
pub(crate) use transport::{ends_the_stream, peer_is_gone};
mod verification;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;

pub use crate::verify::{Decision, PreSharedKeyAuthenticator, SslHooks, Verdict};
pub use events::SslEvent;

use crate::backend::{
    self, Backend, BackendNotice, Duplex, Negotiated, PlainRead, SessionSetup, Socket, TlsSession,
};
use crate::cert::SslCertificate;
use crate::config::SslConfiguration;
use crate::enums::{PauseMode, PeerVerifyMode, SocketError, SocketState, SslMode, SslProtocol};
use crate::error::{ApiMisuse, ConfigError, Error, TlsFailure};
use crate::ocsp::OcspResponse;
use crate::ssl_error::{IgnoreRule, SslError, SslErrorKind};
use crate::verify::{Outcome, Verification, VerifyPolicy};

/// Reads larger than this are split: the most one read hands to the core at once.
const READ_CHUNK: usize = 64 * 1024;
/// The plaintext the core buffers when the application set no read buffer size.
const DEFAULT_PLAIN_LIMIT: usize = 1024 * 1024;
/// Unsent TLS output at which input waits until the peer reads some. Application writes
/// never come near it (each engine takes plaintext only while less than 64 KiB waits, so
/// their output stays under ~130 KiB); what passes it is output the engine makes itself
/// while reading, such as the answers to a peer's KeyUpdate requests (OpenSSL answers each
/// from inside its read) from a peer that never reads them.
const OUTPUT_LIMIT_FOR_INPUT: usize = 256 * 1024;

/// The outcome of ALPN (Qt's `QSslConfiguration::NextProtocolNegotiationStatus`).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextProtocolNegotiationStatus {
    /// No ALPN took place (none offered, or the handshake did not finish).
    NextProtocolNegotiationNone,
    /// A protocol was agreed on.
    NextProtocolNegotiationNegotiated,
    /// We offered protocols and the peer chose none.
    NextProtocolNegotiationUnsupported,
}

/// Where one connection is, from the core's side. The transitions are the core's inputs:
/// `start_*_encryption` (Plain → Handshaking), the verification (→ Paused), `resume`
/// (Paused → Handshaking), the end of the handshake (→ Encrypted), `disconnect_from_host`
/// or the peer's close_notify (→ Closing), any failure (→ Failed), the end of TCP
/// (→ Closed), a new connection (→ Plain). Facts that do not decide what may happen next
/// (end of input seen, truncation, close_notify queued) are kept beside it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No TLS session: not connected yet, or connected in unencrypted mode.
    Plain,
    /// The handshake runs; the peer is not accepted yet.
    Handshaking,
    /// The peer's verification errors hold the handshake until `resume()` or `abort()`;
    /// nothing goes out and nothing received can be read.
    Paused,
    /// The peer was accepted; data flows both ways.
    Encrypted,
    /// A graceful close runs: what was written goes out, then close_notify.
    Closing,
    /// The connection failed (`error()` says why). With `withheld`, nothing more is sent:
    /// a refused peer must never see our Finished.
    Failed {
        /// Whether pending output is dropped rather than sent.
        withheld: bool,
    },
    /// TCP is closed.
    Closed {
        /// Whether the connection had failed.
        failed: bool,
    },
}

/// The state of one socket, without I/O.
pub struct SslCore {
    configuration: SslConfiguration,
    backend: Option<Arc<dyn Backend>>,
    mode: SslMode,
    state: SocketState,
    session: Option<Box<dyn TlsSession>>,
    /// The verify mode of the running handshake (`AutoVerifyPeer` resolved).
    effective_mode: PeerVerifyMode,
    hooks: Option<Arc<dyn SslHooks>>,
    /// A handshake was judged by the ignore list: it is cleared at the next connection
    /// (Qt: `ignoreSslErrors()` holds for one handshake).
    ignores_used: bool,
    /// `ignore_ssl_errors()` was given between TLS connections: the next connection's
    /// start clears it (Qt clears a blanket ignore at connect; only a list carries over).
    ignore_all_expires: bool,
    /// The peer was refused on its verification errors.
    refused: bool,
    ocsp_responses: Vec<OcspResponse>,
    /// How many bytes at the front of `plain_in` are known to hold no `\n`.
    line_scanned: usize,
    ignore_all: bool,
    ignore_rules: Vec<IgnoreRule>,
    pause_mode: PauseMode,
    peer_name: Option<String>,
    peer_verify_name: Option<String>,
    /// `peer_verify_name` came with the connection's own call, not from the application's
    /// setter (see `set_connection_peer_name`).
    peer_name_of_connection: bool,
    plain_in: VecDeque<u8>,
    plain_out: VecDeque<u8>,
    early: buffers::ByteQueue,
    queued: buffers::ByteQueue,
    events: VecDeque<SslEvent>,
    /// Where the counter event of each kind (by `Counter as usize`) is in the run of
    /// counters at the end of `events`, counted from the back (1 = last), 0 if there is
    /// none: a counter merges without searching the queue.
    counter_at: [u8; 3],
    /// Boxed: rare, and the core lives as long as the connection.
    error: Option<Box<Error>>,
    /// An error that did not end the connection (a blocking wait that timed out, a
    /// connect refused while connected: Qt's `setErrorAndEmit` without a close): what
    /// `socket_error` reports while `error` is empty.
    noted: Option<Box<Error>>,
    /// Where the connection is; see [`Phase`].
    phase: Phase,
    /// The peer of this connection was accepted: what it sends may be read, also after
    /// the connection ended.
    accepted: bool,
    eof: bool,
    clean_close: bool,
    truncated: bool,
    close_notify_queued: bool,
    /// TLS bytes the engine held ahead of our close_notify when it was queued (what the
    /// application wrote), and how many went out since: a close that ends with fewer sent
    /// did not deliver everything.
    owed_before_close: usize,
    sent_after_close: usize,
    /// The connection closed with something the application wrote not sent.
    lost_output: bool,
    /// `disconnect_from_host` came during the handshake with bytes to deliver: the close
    /// goes on once the peer is accepted.
    close_when_encrypted: bool,
    /// The client handshake starts as the connection is made (`connect_to_host_encrypted`):
    /// before `Connected` is reported, as in Qt 6 (see [`SslCore::encrypt_when_connected`]).
    encrypt_on_connect: bool,
    /// The application wrote something since its last `wait_for_bytes_written` (see
    /// [`SslCore::take_written_since_wait`]).
    written_since_wait: bool,
    /// Reading made data visible that the read buffer size had kept unseen (see
    /// [`SslCore::take_revealed`]).
    revealed: bool,
    /// On a server whose handshake failed: the server name the client's hello asked for.
    failed_server_name: Option<Box<str>>,
    read_buffer_size: usize,
    unflushed_plain: usize,
    discarded_plaintext: usize,
    negotiated: Option<Negotiated>,
    peer_chain: Vec<SslCertificate>,
    /// The earliest `notAfter` of the peer's verified certificates, stored with its
    /// sessions ([`Outcome::valid_until`](crate::verify::Outcome::valid_until)).
    peer_valid_until: Option<i64>,
    handshake_errors: Vec<SslError>,
    errors_reported: bool,
    /// An error every verify mode reports (a pin mismatch, a blocklisted certificate):
    /// the errors are reported even in `VerifyNone`.
    reported_in_every_mode: bool,
    /// The whole list when `handshake_errors` reports only part of it (`VerifyNone` with a
    /// blocklisted certificate): what the session's stored outcome keeps.
    unreported_errors: Option<Vec<SslError>>,
}

impl SslCore {
    /// A core in `UnencryptedMode`, `UnconnectedState`, with this configuration.
    pub fn new(configuration: SslConfiguration) -> SslCore {
        SslCore {
            configuration,
            backend: None,
            mode: SslMode::UnencryptedMode,
            state: SocketState::UnconnectedState,
            session: None,
            effective_mode: PeerVerifyMode::VerifyPeer,
            hooks: None,
            ignores_used: false,
            ignore_all_expires: false,
            refused: false,
            ocsp_responses: Vec::new(),
            line_scanned: 0,
            ignore_all: false,
            ignore_rules: Vec::new(),
            pause_mode: PauseMode::PauseNever,
            peer_name: None,
            peer_verify_name: None,
            peer_name_of_connection: false,
            plain_in: VecDeque::new(),
            plain_out: VecDeque::new(),
            early: buffers::ByteQueue::default(),
            queued: buffers::ByteQueue::default(),
            events: VecDeque::new(),
            counter_at: [0; 3],
            error: None,
            noted: None,
            phase: Phase::Plain,
            accepted: false,
            eof: false,
            clean_close: false,
            truncated: false,
            close_notify_queued: false,
            owed_before_close: 0,
            sent_after_close: 0,
            lost_output: false,
            close_when_encrypted: false,
            encrypt_on_connect: false,
            written_since_wait: false,
            revealed: false,
            failed_server_name: None,
            read_buffer_size: 0,
            unflushed_plain: 0,
            discarded_plaintext: 0,
            negotiated: None,
            peer_chain: Vec::new(),
            peer_valid_until: None,
            handshake_errors: Vec::new(),
            errors_reported: false,
            reported_in_every_mode: false,
            unreported_errors: None,
        }
    }

    /// Makes the next handshake use `backend` instead of the process's active one (for
    /// unit tests of one backend, whatever `SSLSOCKET_BACKEND` says).
    #[cfg(test)]
    pub(crate) fn use_backend(&mut self, backend: Arc<dyn Backend>) {
        self.backend = Some(backend);
    }

    /// Whether the current connection has a handshake started: its configuration is
    /// fixed. A connection that ended (aborted, closed, failed) keeps its session for what
    /// it reports, but no longer holds the configuration (Qt's `setProtocol` after
    /// `abort()`).
    fn encryption_is_live(&self) -> bool {
        self.session.is_some() && self.state != SocketState::UnconnectedState
    }

    /// The configuration the next handshake uses.
    pub fn configuration(&self) -> &SslConfiguration {
        &self.configuration
    }

    /// Replaces the configuration; refused while a handshake has started on the current
    /// connection (once it ended, the configuration is the next connection's).
    pub fn set_configuration(&mut self, configuration: SslConfiguration) -> Result<(), Error> {
        if self.encryption_is_live() {
            return Err(ApiMisuse(
                "the configuration cannot change once encryption has started".into(),
            )
            .into());
        }
        self.configuration = configuration;
        Ok(())
    }

    /// Mutable access to the configuration before the handshake.
    pub fn configuration_mut(&mut self) -> Result<&mut SslConfiguration, Error> {
        if self.encryption_is_live() {
            return Err(ApiMisuse(
                "the configuration cannot change once encryption has started".into(),
            )
            .into());
        }
        Ok(&mut self.configuration)
    }

    /// Verify the peer's certificate against `name` instead of the host connected to (an
    /// empty `name` leaves the host connected to in place).
    pub fn set_peer_verify_name(&mut self, name: impl Into<String>) {
        self.peer_verify_name = Some(name.into());
        self.peer_name_of_connection = false;
    }

    /// The peer name of one connection (`connect_to_host_encrypted_with_peer_name`): set as
    /// by [`set_peer_verify_name`](Self::set_peer_verify_name), but forgotten by the next
    /// connection made without a name ([`forget_connection_peer_name`](Self::forget_connection_peer_name)),
    /// so one host's name is never sent to, nor verified on, another.
    pub fn set_connection_peer_name(&mut self, name: impl Into<String>) {
        self.peer_verify_name = Some(name.into());
        self.peer_name_of_connection = true;
    }

    /// A connection made without a peer name: a name that belonged to the previous
    /// connection ([`set_connection_peer_name`](Self::set_connection_peer_name)) goes; one
    /// set with `set_peer_verify_name` stays (Qt's property).
    pub fn forget_connection_peer_name(&mut self) {
        if std::mem::take(&mut self.peer_name_of_connection) {
            self.peer_verify_name = None;
        }
    }

    /// The name set with `set_peer_verify_name`.
    pub fn peer_verify_name(&self) -> Option<&str> {
        self.peer_verify_name.as_deref()
    }

    /// Caps the decrypted bytes buffered (0: the core's own bound of 1 MiB). When the
    /// buffer is full the core stops asking for input, which pushes back on the peer; the
    /// application sees at most this many bytes at a time (see
    /// [`read_window`](Self::read_window)).
    pub fn set_read_buffer_size(&mut self, size: usize) {
        let shown = self.bytes_available();
        self.read_buffer_size = size;
        // A larger window shows what was held back: new data for the next wait (Qt's
        // `readyRead` when it fills the larger buffer).
        self.revealed |= self.bytes_available() > shown;
    }

    /// The read buffer size (0 = not set).
    pub fn read_buffer_size(&self) -> usize {
        self.read_buffer_size
    }

    /// The socket state.
    pub fn state(&self) -> SocketState {
        self.state
    }

    /// The TLS mode.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Whether the handshake finished and the connection is usable.
    pub fn is_encrypted(&self) -> bool {
        self.accepted && matches!(self.phase, Phase::Encrypted | Phase::Closing)
    }

    /// Where the connection is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the connection failed (and may have closed since).
    fn is_failed(&self) -> bool {
        matches!(
            self.phase,
            Phase::Failed { .. } | Phase::Closed { failed: true }
        )
    }

    /// Whether the last connection's handshake finished, even if it has closed since.
    pub fn was_encrypted(&self) -> bool {
        self.accepted
    }

    /// Whether a handshake is running.
    pub fn is_handshaking(&self) -> bool {
        !self.is_failed() && self.session.as_ref().is_some_and(|s| s.is_handshaking())
    }

    /// The last error, if any (Qt's `error()` is its `socket_error()`).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_deref()
    }

    /// Qt's `error()`: the error that ended the connection, else a wait's timeout.
    pub fn socket_error(&self) -> SocketError {
        self.error
            .as_deref()
            .or(self.noted.as_deref())
            .map_or(SocketError::UnknownSocketError, Error::socket_error)
    }

    /// Qt's `errorString()`: "Unknown error" when nothing failed.
    pub fn error_string(&self) -> String {
        self.error
            .as_deref()
            .or(self.noted.as_deref())
            .map_or_else(|| "Unknown error".to_string(), ToString::to_string)
    }

    /// An error that leaves the connection as it is becomes the socket's `error()` and
    /// queues `ErrorOccurred`, as Qt's `setErrorAndEmit` without a close (round 34): a
    /// blocking `wait_for_*` that ran out of time (`SocketTimeoutError`), a connect
    /// refused while connected (`OperationError`). An error that ended the connection
    /// keeps precedence.
    pub fn note_error(&mut self, error: &Error) {
        if self.error.is_some() {
            return;
        }
        self.noted = Some(Box::new(error.clone()));
        self.push(SslEvent::ErrorOccurred(error.socket_error()));
    }

    /// Whether something the application wrote has not gone out to the socket: plaintext
    /// not yet encrypted, or TLS bytes ahead of our close_notify. A close whose connection
    /// ended with this true did not deliver everything.
    pub fn has_undelivered(&self) -> bool {
        if self.state == SocketState::UnconnectedState {
            // Closed: what was left then is `lost_output`.
            return self.lost_output;
        }
        if matches!(self.phase, Phase::Paused | Phase::Failed { withheld: true }) {
            // Withheld on purpose (a refused or paused peer): dropped, not undelivered.
            return false;
        }
        if self.bytes_to_write() > 0 {
            return true;
        }
        if self.close_notify_queued {
            self.sent_after_close < self.owed_before_close
        } else {
            self.encrypted_bytes_to_write() > 0
        }
    }

    /// What a flush, `wait_for_bytes_written` or a shutdown reports about what the
    /// application wrote: `Ok` when nothing of it was lost, also when the peer closed
    /// cleanly and only our answering close_notify could not go (round 36: a flush after
    /// the peer's clean close failed with that send); the failure, or the loss, otherwise
    /// (round 36: a reset that lost written bytes was `Ok` once nothing was left to send).
    pub fn write_verdict(&self) -> Result<(), Error> {
        let lost = self.has_undelivered();
        match self.failure() {
            // Only after the handshake: one that failed lost what was queued for after it.
            Some(_) if !lost && self.eof && self.clean_close && self.accepted => Ok(()),
            Some(failure) => Err(failure.clone()),
            None if lost => Err(undelivered_error()),
            None => Ok(()),
        }
    }

    /// Whether a graceful close waits for the handshake to end, to deliver what was written
    /// during it (Qt's `pendingClose`).
    pub fn is_close_pending(&self) -> bool {
        self.close_when_encrypted
    }

    /// The error that ended the connection, if it failed.
    pub fn failure(&self) -> Option<&Error> {
        if self.is_failed() {
            self.error.as_deref()
        } else {
            None
        }
    }

    /// Whether the peer ended the connection without close_notify after the handshake
    /// (a truncation: the data may be incomplete).
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Whether the peer closed cleanly (close_notify, or EOF in plain mode).
    pub fn is_peer_closed_cleanly(&self) -> bool {
        self.clean_close
    }

    /// Whether the peer's side is finished (EOF seen).
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Plaintext that was buffered unread when encryption started, and was discarded so
    /// that it can never pass for encrypted data (the STARTTLS injection class of bugs).
    /// Counted per connection: a new connection starts at 0.
    pub fn discarded_plaintext_bytes(&self) -> usize {
        self.discarded_plaintext
    }

    /// The next event, in Qt's order.
    pub fn poll_event(&mut self) -> Option<SslEvent> {
        let event = self.pop_oldest();
        if self.events.is_empty() && self.events.capacity() > 0 {
            // An idle connection keeps no storage for events.
            self.events = VecDeque::new();
        }
        event
    }

    /// Queues an event. Inlined so that the counters (the events of every message) take
    /// their own path without building and dropping an event.
    #[inline]
    fn push(&mut self, event: SslEvent) {
        match event {
            SslEvent::ReadyRead => self.count(Counter::ReadyRead, 0),
            SslEvent::BytesWritten(n) => self.count(Counter::Plain, n),
            SslEvent::EncryptedBytesWritten(n) => self.count(Counter::Encrypted, n),
            other => self.enqueue(other),
        }
    }

    /// The high-volume events (data arrived, bytes written) are counters: each merges into
    /// one of its kind in the run of such events at the end of the queue (at most one of
    /// each kind), so a connection that moves data adds nothing to a queue that nobody
    /// drains.
    fn count(&mut self, counter: Counter, n: usize) {
        if self.close_notify_queued && matches!(counter, Counter::Encrypted) {
            self.sent_after_close = self.sent_after_close.saturating_add(n);
        }
        let kind = counter as usize;
        let at = self.counter_at.get(kind).copied().unwrap_or(0);
        if at > 0 {
            let index = self.events.len().wrapping_sub(usize::from(at));
            match (self.events.get_mut(index), counter) {
                (Some(SslEvent::ReadyRead), Counter::ReadyRead) => return,
                (Some(SslEvent::BytesWritten(total)), Counter::Plain)
                | (Some(SslEvent::EncryptedBytesWritten(total)), Counter::Encrypted) => {
                    *total += n;
                    return;
                }
                // Not where it was recorded (cannot happen): queue a new one.
                _ => {}
            }
        }
        self.append(match counter {
            Counter::ReadyRead => SslEvent::ReadyRead,
            Counter::Plain => SslEvent::BytesWritten(n),
            Counter::Encrypted => SslEvent::EncryptedBytesWritten(n),
        });
        // The new counter extends the run: the others are one further from the back (the
        // run holds at most one of each kind, so a position stays below 4).
        for slot in &mut self.counter_at {
            if *slot > 0 {
                *slot = slot.saturating_add(1);
            }
        }
        if let Some(slot) = self.counter_at.get_mut(kind) {
            *slot = 1;
        }
    }

    /// Queues an event that is not a counter: it ends the run of counters.
    fn enqueue(&mut self, event: SslEvent) {
        self.append(event);
        self.counter_at = [0; 3];
    }

    /// Appends an event, dropping the oldest when the queue is full.
    fn append(&mut self, event: SslEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.pop_oldest();
        } else if self.events.capacity() == 0 {
            // Room for a handshake's events at once, not grown 4, 8, 16.
            self.events.reserve(FIRST_EVENTS);
        }
        self.events.push_back(event);
    }

    /// Takes the oldest event, forgetting it if it was a counter of the run.
    fn pop_oldest(&mut self) -> Option<SslEvent> {
        let len = self.events.len();
        for slot in &mut self.counter_at {
            if usize::from(*slot) == len {
                *slot = 0;
            }
        }
        self.events.pop_front()
    }
}

/// The counter events, by kind.
#[derive(Clone, Copy)]
enum Counter {
    ReadyRead,
    Plain,
    Encrypted,
}

/// The most events a core keeps for an application that does not drain them (the oldest
/// go first); with counters merged, only a long run of verification errors comes near.
const MAX_EVENTS: usize = 4096;

/// The room for events made when the first one comes: a handshake's events, on either side.
const FIRST_EVENTS: usize = 16;

impl std::fmt::Debug for SslCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslCore")
            .field("mode", &self.mode)
            .field("state", &self.state)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// The error of a close whose connection ended before everything written went out (the
/// peer closed or reset it first).
pub(crate) fn undelivered_error() -> Error {
    Error::Closed(
        "the remote host closed the connection before everything written was delivered".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The merging rule as first written: a counter merges into one of its kind in the
    /// run of counters at the end of the queue (which holds at most one of each kind).
    fn reference_push(queue: &mut VecDeque<SslEvent>, event: SslEvent) {
        let counter = |e: &SslEvent| {
            matches!(
                e,
                SslEvent::ReadyRead
                    | SslEvent::BytesWritten(_)
                    | SslEvent::EncryptedBytesWritten(_)
            )
        };
        if counter(&event) {
            for queued in queue.iter_mut().rev() {
                match (queued, &event) {
                    (SslEvent::ReadyRead, SslEvent::ReadyRead) => return,
                    (SslEvent::BytesWritten(total), SslEvent::BytesWritten(n))
                    | (
                        SslEvent::EncryptedBytesWritten(total),
                        SslEvent::EncryptedBytesWritten(n),
                    ) => {
                        *total += n;
                        return;
                    }
                    (queued, _) if counter(queued) => {}
                    _ => break,
                }
            }
        }
        if queue.len() >= MAX_EVENTS {
            queue.pop_front();
        }
        queue.push_back(event);
    }

    /// A long line (or any burst read through the core's own buffer) must not stay
    /// allocated once everything was read: `read`, `read_line` and `consume` free it.
    #[test]
    fn the_plaintext_buffer_is_freed_once_read_empty() {
        const LONG: usize = 1 << 20;
        for how in ["read", "read_line", "consume"] {
            let mut core = SslCore::new(SslConfiguration::default());
            core.plain_in.extend(std::iter::repeat_n(b'x', LONG));
            assert!(core.plain_in.capacity() >= LONG);
            let taken = match how {
                "read" => core.read(&mut vec![0u8; LONG]),
                "read_line" => core.read_line(0).len(),
                _ => {
                    core.consume(LONG);
                    LONG
                }
            };
            assert_eq!(taken, LONG, "{how}");
            assert_eq!(
                core.plain_in.capacity(),
                0,
                "{how} left the buffer allocated"
            );
        }
        // Partly read: what is left stays.
        let mut core = SslCore::new(SslConfiguration::default());
        core.plain_in.extend(b"one\ntwo");
        assert_eq!(core.read_line(0), b"one\n");
        assert_eq!(core.read_line(0), b"two");
        assert_eq!(core.plain_in.capacity(), 0);
    }

    #[test]
    fn counters_merge_as_the_queue_scan_did_through_pushes_polls_and_a_full_queue() {
        let mut core = SslCore::new(SslConfiguration::default());
        let mut reference = VecDeque::new();
        let mut seed: u32 = 0x2545_f491;
        // Phases: mixed traffic drained now and then; then no draining, so the queue
        // fills to its bound and the oldest events go; then everything drained.
        let mut longest = 0;
        for step in 0..6 * MAX_EVENTS {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let roll = (seed >> 16) % 16;
            let n = usize::try_from(seed >> 20).unwrap_or(1);
            let event = match roll {
                0..=3 => Some(SslEvent::ReadyRead),
                4..=6 => Some(SslEvent::BytesWritten(n)),
                7..=9 => Some(SslEvent::EncryptedBytesWritten(n)),
                10 | 11 => Some(SslEvent::Encrypted),
                _ => None,
            };
            let draining = !(MAX_EVENTS..5 * MAX_EVENTS).contains(&step);
            match event {
                Some(event) => {
                    reference_push(&mut reference, event.clone());
                    core.push(event);
                }
                None if draining => {
                    assert_eq!(core.poll_event(), reference.pop_front(), "step {step}");
                }
                None => {}
            }
            assert_eq!(core.events.len(), reference.len(), "step {step}");
            longest = longest.max(reference.len());
        }
        assert_eq!(longest, MAX_EVENTS, "the queue reached its bound");
        assert!(core.events.iter().eq(reference.iter()));
        while let Some(expected) = reference.pop_front() {
            assert_eq!(core.poll_event(), Some(expected));
        }
        assert_eq!(core.poll_event(), None);
    }
}
