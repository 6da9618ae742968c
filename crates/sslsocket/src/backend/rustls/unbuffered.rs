//! One rustls connection on rustls's *unbuffered* API behind the `TlsSession` trait.
//!
//! rustls's buffered connections keep their buffers for the connection's life (the
//! deframer keeps 4 KiB after the first read). Here the session owns the three buffers
//! (TLS read and not yet processed, TLS to send, plaintext received and not yet read)
//! and gives their memory back whenever they are empty: an idle connection holds only
//! rustls's state machine. A driver with its socket or its reader's buffer at hand skips
//! a step: `write_plain_to` hands the sealed records to the socket at once (the rest waits
//! in order), `read_tls_into` decrypts what arrives straight into the reader's buffer.

use std::io::{self, Read, Write};

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, ReadEarlyData, UnbufferedStatus,
    WriteTraffic,
};
use rustls::CommonState;

use crate::backend::rustls::config::{ClientEngine, ServerEngine};
use crate::backend::rustls::handshake::{self, client_session, Handshake};
use crate::backend::{BackendNotice, Negotiated, PlainRead, SessionStatus, TlsSession};
use crate::cert::SslCertificate;
use crate::error::{ConfigError, TlsFailure};
use crate::verify::{Outcome, Verification, VerifyPolicy};

/// The largest TLS record on the wire (rustls's `MAX_WIRE_SIZE`: 16 KiB of payload, 2 KiB
/// of expansion, the 5-byte header).
const MAX_WIRE_SIZE: usize = 16 * 1024 + 2048 + 5;
/// Handshake messages may span records up to 64 KiB (rustls's own limit for its buffered
/// connections).
const MAX_HANDSHAKE_SIZE: usize = 0xffff;
/// TLS input held unprocessed: during the handshake one message of up to 64 KiB plus a
/// record; after it, a record being completed plus the next one.
const HANDSHAKE_INPUT_LIMIT: usize = MAX_HANDSHAKE_SIZE + MAX_WIRE_SIZE;
const TRAFFIC_INPUT_LIMIT: usize = 2 * MAX_WIRE_SIZE;
/// The most a read into an empty buffer asks for after a short read (see `Io::read_hint`),
/// and the size of the per-thread scratch room such reads go through: one page, so a
/// thread-per-connection program pays no more than that per thread.
const SMALL_READ: usize = 4096;
/// TLS bytes accepted for sending before `write_plain` takes no more (rustls's default
/// buffer limit).
const OUTPUT_LIMIT: usize = 64 * 1024;
/// Decrypted bytes waiting for the application beyond which the session stops asking for
/// input (the core's default read buffer limit).
const PLAIN_LIMIT: usize = 1024 * 1024;
/// Upper bound on the state machine's steps for one call (each step consumes a message,
/// emits one, or stops), far above what any real input needs.
const MAX_STEPS: usize = 1 << 20;

/// The two kinds of unbuffered connection, seen through what they have in common.
trait Records {
    type Data;
    fn state(&self) -> &CommonState;
    fn records<'c, 'i>(&'c mut self, input: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data>;
    /// Moves early (0-RTT) data into `plain`: only a server receives it.
    fn early(
        state: ReadEarlyData<'_, '_, Self::Data>,
        plain: &mut Plain,
    ) -> Result<(), rustls::Error>;
}

impl Records for UnbufferedClientConnection {
    type Data = ClientConnectionData;

    fn state(&self) -> &CommonState {
        self
    }

    fn records<'c, 'i>(
        &'c mut self,
        input: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ClientConnectionData> {
        self.process_tls_records(input)
    }

    fn early(
        _state: ReadEarlyData<'_, '_, ClientConnectionData>,
        _plain: &mut Plain,
    ) -> Result<(), rustls::Error> {
        Err(rustls::Error::General(
            "early data on a client connection".into(),
        ))
    }
}

impl Records for UnbufferedServerConnection {
    type Data = ServerConnectionData;

    fn state(&self) -> &CommonState {
        self
    }

    fn records<'c, 'i>(
        &'c mut self,
        input: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ServerConnectionData> {
        self.process_tls_records(input)
    }

    fn early(
        mut state: ReadEarlyData<'_, '_, ServerConnectionData>,
        plain: &mut Plain,
    ) -> Result<(), rustls::Error> {
        while let Some(record) = state.next_record() {
            plain.extend(record?.payload);
        }
        Ok(())
    }
}

enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

impl Conn {
    fn common(&self) -> &CommonState {
        match self {
            Conn::Client(c) => c,
            Conn::Server(s) => s,
        }
    }
}

/// Decrypted bytes not yet read: `buf[start..]`; no memory kept while empty.
#[derive(Default)]
struct Plain {
    buf: Vec<u8>,
    start: usize,
}

impl Plain {
    fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    fn extend(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn read(&mut self, out: &mut [u8]) -> usize {
        let available = self.buf.get(self.start..).unwrap_or_default();
        let n = available.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.start += n;
        if self.start >= self.buf.len() {
            *self = Plain::default();
        }
        n
    }
}

/// TLS bytes to send: `buf[start..end]`; no memory kept while empty. The bytes after `end`
/// are room zeroed once (safe Rust gives rustls only initialized memory): each record
/// encoded into it is not preceded by zeroing its room again.
#[derive(Default)]
struct Outgoing {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Outgoing {
    fn len(&self) -> usize {
        self.end - self.start
    }

    /// The bytes to send.
    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Room at the end for `len` more bytes, starting at the returned offset.
    fn reserve_tail(&mut self, len: usize) -> usize {
        if self.start > 0 && self.start >= self.end / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.capacity() == 0 {
            self.buf = spare::take_output(len);
        }
        let at = self.end;
        if self.buf.len() < at + len {
            self.buf.resize(at + len, 0);
        }
        at
    }

    /// Lets `write` put bytes at the end, growing the room until they fit (rustls says
    /// how much it needs); at most a few attempts.
    fn fill(
        &mut self,
        mut want: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<Fill, rustls::Error>,
    ) -> Result<(), rustls::Error> {
        // The error for output that never fits is made only then (no allocation per record).
        let mut result = None;
        for _ in 0..4 {
            let at = self.reserve_tail(want);
            match write(self.buf.get_mut(at..).unwrap_or_default()) {
                Ok(Fill::Wrote(n)) => {
                    self.end = at + n;
                    return Ok(());
                }
                Ok(Fill::Need(n)) => want = n,
                Ok(Fill::Nothing) => {
                    result = Some(Ok(()));
                    break;
                }
                Err(e) => {
                    result = Some(Err(e));
                    break;
                }
            }
        }
        if self.len() == 0 {
            // Nothing to send after all: no memory kept.
            self.consumed(0);
        }
        result.unwrap_or_else(|| Err(rustls::Error::General("TLS output did not fit".into())))
    }

    fn encode<D>(&mut self, state: &mut EncodeTlsData<'_, D>) -> Result<(), rustls::Error> {
        // Handshake messages are mostly small: the room already zeroed (a whole spare
        // buffer) is offered first, and grows only when rustls says it needs more.
        self.fill(512, |out| match state.encode(out) {
            Ok(n) => Ok(Fill::Wrote(n)),
            Err(EncodeError::InsufficientSize(e)) => Ok(Fill::Need(e.required_size)),
            Err(EncodeError::AlreadyEncoded) => Ok(Fill::Nothing),
        })
    }

    /// Encrypts `data` (after the handshake); returns how much was taken.
    fn encrypt<D>(
        &mut self,
        state: &mut WriteTraffic<'_, D>,
        data: &[u8],
    ) -> Result<usize, rustls::Error> {
        // Per 16 KiB record: header, content type, tag and explicit nonce stay well
        // within 64 bytes; a pending key update message fits in the extra 256.
        let want = data.len() + data.len().div_ceil(16 * 1024) * 64 + 256;
        self.fill(want, |out| encrypted(state.encrypt(data, out)))?;
        Ok(data.len())
    }

    fn close_notify<D>(&mut self, state: &mut WriteTraffic<'_, D>) -> Result<(), rustls::Error> {
        self.fill(64, |out| encrypted(state.queue_close_notify(out)))
    }

    fn consumed(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.end {
            spare::give_output(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }
}

/// What one attempt to write TLS bytes into the room given gave.
enum Fill {
    /// This many bytes were written.
    Wrote(usize),
    /// The room was too small: this much is needed.
    Need(usize),
    /// Nothing to write (already done).
    Nothing,
}

fn encrypted(result: Result<usize, EncryptError>) -> Result<Fill, rustls::Error> {
    match result {
        Ok(n) => Ok(Fill::Wrote(n)),
        Err(EncryptError::InsufficientSize(e)) => Ok(Fill::Need(e.required_size)),
        Err(EncryptError::EncryptExhausted) => Err(rustls::Error::EncryptError),
    }
}

/// The buffers one step of the state machine works on.
#[derive(Default)]
struct Io {
    /// TLS read and not processed yet: `incoming[..filled]`. The bytes after `filled` are
    /// room already zeroed for the next read, so a read into a buffer that is not empty
    /// does not zero it again.
    incoming: Vec<u8>,
    filled: usize,
    /// How the next read into an empty buffer goes: after a read that filled its room
    /// (data is streaming), straight into a buffer of a whole record that the records
    /// after it reuse; after a short one (requests and replies), through the thread's
    /// scratch room (`read_small`), so a small message costs no buffer to zero and free.
    read_hint: usize,
    outgoing: Outgoing,
    plain: Plain,
    /// The length of the one record of application data left decrypted in rustls (which
    /// holds it until it is asked for), 0 if none: the application's next read copies it
    /// straight into its buffer (`unpark`) rather than through `plain`. Only the newest
    /// record waits there, and only while no complete record follows it in `incoming`:
    /// everything else is processed at once, as if nothing were held.
    parked: usize,
    /// `close` was asked for and close_notify is not encoded yet.
    close_pending: bool,
    /// Our close_notify is encoded: rustls may now trip its own assertion on bad input
    /// (see [`records`]).
    close_sent: bool,
    /// The last run of the state machine (`read_tls_into`'s) stopped where it lets
    /// application data be sent, with no whole record left in the input, and nothing was
    /// read or run since: running it again (`process`) would only find the same.
    settled: bool,
}

/// What one run of the state machine did besides filling buffers.
#[derive(Default)]
struct Pumped {
    /// Application bytes encrypted.
    encrypted: usize,
    /// Application bytes decrypted into the caller's buffer (`dst`).
    delivered: usize,
    /// The run stopped where another run on the same input would do nothing new: where
    /// application data may be sent, with nothing to send, or (reading into `dst`) right
    /// after the records read, with no whole record behind them (what a held record's
    /// `unpark` leaves: the next run starts from there).
    settled: bool,
    /// The peer's close_notify was processed.
    peer_closed: bool,
}

/// One run of rustls's state machine on `input`. After our close_notify (`close_sent`),
/// rustls 0.23 answers a record it cannot process with a fatal alert and, in builds with
/// debug assertions, first asserts that no alert was sent before, which its close_notify
/// counts as: a panic on input from the peer (rustls/rustls#959). There (and only there)
/// the run is guarded: the panic becomes the error the record deserved, and the session,
/// failed, is not run again. Release builds never panic here.
fn records<'c, 'i, C: Records>(
    conn: &'c mut C,
    input: &'i mut [u8],
    close_sent: bool,
) -> UnbufferedStatus<'c, 'i, C::Data> {
    if !close_sent {
        return conn.records(input);
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        // Moved in (not reborrowed): the status borrows them past the closure.
        let (conn, input) = (conn, input);
        conn.records(input)
    }))
    .unwrap_or_else(|_| UnbufferedStatus {
        discard: 0,
        state: Err(crate::backend::rustls::session::after_close_notify()),
    })
}

impl Io {
    /// After an error: encodes what rustls queued for the peer (its alert) without
    /// processing input again (that would report the error a second time).
    fn flush<C: Records>(&mut self, conn: &mut C) {
        for _ in 0..MAX_STEPS {
            if !conn.state().wants_write() {
                return;
            }
            let input = self.incoming.get_mut(..self.filled).unwrap_or_default();
            let status = records(conn, input, self.close_sent);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut state)) => {
                    if self.outgoing.encode(&mut state).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// Runs the state machine on the input held until it needs more (and, with `app`,
    /// encrypts `app` once it may). The input is always passed: rustls's handshake
    /// deframer keeps positions into it between calls. With `park`, the last record of
    /// application data is left in rustls (see `parked`) when nothing can be processed
    /// after it. Application data read goes into `dst` first (only with nothing in
    /// `plain`, so it stays in order), what does not fit into `plain`.
    fn pump<C: Records>(
        &mut self,
        conn: &mut C,
        mut app: Option<&[u8]>,
        park: bool,
        dst: &mut [u8],
    ) -> (Pumped, Result<(), rustls::Error>) {
        let mut pumped = Pumped::default();
        let mut consumed = 0;
        let mut result = Ok(());
        self.settled = false;
        let park = park && app.is_none() && !self.close_pending;
        // The record rustls holds is to be copied out: a complete record follows it.
        let mut drain = false;
        for _ in 0..MAX_STEPS {
            let input = self
                .incoming
                .get_mut(consumed..self.filled)
                .unwrap_or_default();
            let status = records(conn, input, self.close_sent);
            let mut discard = status.discard;
            let mut stop = false;
            let mut held = None;
            // Records were read into `dst`.
            let mut read_into = false;
            match status.state {
                Err(e) => {
                    result = Err(e);
                    stop = true;
                }
                Ok(ConnectionState::ReadTraffic(state)) if park && !drain => {
                    held = state.peek_len();
                    if held.is_none() {
                        // Nothing to read after all: look again, copying out.
                        drain = true;
                    }
                }
                Ok(ConnectionState::ReadTraffic(mut state)) => {
                    self.parked = 0;
                    drain = false;
                    read_into = !dst.is_empty();
                    while let Some(record) = state.next_record() {
                        match record {
                            Ok(record) => {
                                discard += record.discard;
                                let payload = record.payload;
                                let at = pumped.delivered;
                                let take = payload.len().min(dst.len().saturating_sub(at));
                                if take > 0 {
                                    if let (Some(to), Some(from)) =
                                        (dst.get_mut(at..at + take), payload.get(..take))
                                    {
                                        to.copy_from_slice(from);
                                    }
                                    pumped.delivered += take;
                                }
                                let rest = payload.get(take..).unwrap_or_default();
                                if !rest.is_empty() {
                                    self.plain.extend(rest);
                                }
                            }
                            Err(e) => {
                                result = Err(e);
                                stop = true;
                                break;
                            }
                        }
                    }
                }
                Ok(ConnectionState::ReadEarlyData(state)) => {
                    if let Err(e) = C::early(state, &mut self.plain) {
                        result = Err(e);
                        stop = true;
                    }
                }
                Ok(ConnectionState::EncodeTlsData(mut state)) => {
                    if let Err(e) = self.outgoing.encode(&mut state) {
                        result = Err(e);
                        stop = true;
                    }
                }
                // Our outgoing buffer holds it now: the driver sends it.
                Ok(ConnectionState::TransmitTlsData(state)) => state.done(),
                Ok(ConnectionState::PeerClosed) => pumped.peer_closed = true,
                Ok(ConnectionState::WriteTraffic(mut state)) => {
                    // Nothing more can happen without input or a write (when this run
                    // had nothing to write).
                    pumped.settled = app.is_none() && !self.close_pending;
                    if let Some(data) = app.take() {
                        match self.outgoing.encrypt(&mut state, data) {
                            Ok(n) => pumped.encrypted = n,
                            Err(e) => result = Err(e),
                        }
                    }
                    if self.close_pending && result.is_ok() {
                        self.close_pending = false;
                        self.close_sent = true;
                        if let Err(e) = self.outgoing.close_notify(&mut state) {
                            result = Err(e);
                        }
                    }
                    stop = true;
                }
                // BlockedHandshake, Closed, and whatever later versions add: input needed.
                Ok(_) => stop = true,
            }
            consumed += discard;
            if read_into && !stop {
                let rest = self.incoming.get(consumed..self.filled).unwrap_or_default();
                if !holds_record(rest) {
                    pumped.settled = true;
                    break;
                }
            }
            if let Some(len) = held {
                let rest = self.incoming.get(consumed..self.filled).unwrap_or_default();
                if holds_record(rest) {
                    drain = true;
                    continue;
                }
                self.parked = len.get();
                break;
            }
            if stop {
                break;
            }
        }
        self.discard(consumed);
        (pumped, result)
    }

    /// Drops `n` processed bytes from the front of the input.
    fn discard(&mut self, n: usize) {
        if n > 0 {
            let n = n.min(self.filled);
            self.incoming.copy_within(n..self.filled, 0);
            self.filled -= n;
        }
        self.release_input();
    }

    /// Copies the record rustls holds (`parked`) into `buf`, what does not fit into
    /// `plain`; returns how much went into `buf`.
    fn unpark<C: Records>(&mut self, conn: &mut C, buf: &mut [u8]) -> usize {
        self.parked = 0;
        let input = self.incoming.get_mut(..self.filled).unwrap_or_default();
        let status = records(conn, input, self.close_sent);
        let mut discard = status.discard;
        let mut n = 0;
        if let Ok(ConnectionState::ReadTraffic(mut state)) = status.state {
            while let Some(Ok(record)) = state.next_record() {
                discard += record.discard;
                let payload = record.payload;
                let take = payload.len().min(buf.len() - n);
                if let (Some(dst), Some(src)) = (buf.get_mut(n..n + take), payload.get(..take)) {
                    dst.copy_from_slice(src);
                }
                n += take;
                self.plain.extend(payload.get(take..).unwrap_or_default());
            }
        }
        self.discard(discard);
        n
    }

    /// Frees the input buffer when it holds nothing, and gives back the room a large
    /// handshake message needed once only a record or less is left.
    fn release_input(&mut self) {
        if self.filled == 0 {
            spare::give_input(std::mem::take(&mut self.incoming));
        } else if self.incoming.len() > TRAFFIC_INPUT_LIMIT && self.filled <= MAX_WIRE_SIZE {
            self.incoming.truncate(MAX_WIRE_SIZE);
            self.incoming.shrink_to_fit();
        }
    }
}

/// Whether `input` starts with a whole TLS record (or a header that rustls will refuse
/// at once, which it should see now).
fn holds_record(input: &[u8]) -> bool {
    match input {
        [kind, _, _, high, low, body @ ..] => {
            let len = usize::from(u16::from_be_bytes([*high, *low]));
            !(20..=24).contains(kind) || len > MAX_WIRE_SIZE - 5 || body.len() >= len
        }
        _ => false,
    }
}

/// Reads into an empty input buffer through the thread's spare room (`spare`): a small
/// message (or a read that finds nothing) costs no buffer to allocate, zero and free.
fn read_small(io: &mut Io, rd: &mut dyn Read, room: usize) -> io::Result<usize> {
    let mut buf = spare::take_input();
    if buf.len() < room {
        buf.resize(room, 0);
    }
    let result = rd.read(buf.get_mut(..room).unwrap_or_default());
    let n = result.as_ref().map_or(0, |n| (*n).min(room));
    io.incoming = buf;
    io.filled = n;
    io.read_hint = if n >= room { MAX_WIRE_SIZE } else { SMALL_READ };
    io.release_input();
    result
}

/// One small buffer of each direction per thread, and one large output buffer, lent to
/// the sessions of that thread while they hold bytes and given back when they are empty,
/// so a connection exchanging messages does not allocate (nor zero) a buffer per message,
/// and an idle connection still holds none. At most `SMALL_READ` bytes of input room and
/// `SMALL_OUTPUT` + `BULK_OUTPUT` bytes of output room (about 72 KiB) per thread, all
/// kept initialized; larger buffers are freed as before. Nothing here is held across a
/// call that could reach another session.
mod spare {
    use crate::backend::spare::{self, Slot};

    use super::{OUTPUT_LIMIT, SMALL_READ};

    /// Output capacity kept: a few small records.
    const SMALL_OUTPUT: usize = 4096;
    /// Output capacity kept for large writes: one whole `write_plain` (`OUTPUT_LIMIT` of
    /// application data, sealed), so a stream of large writes does not allocate and zero
    /// its output room once per write.
    const BULK_OUTPUT: usize = OUTPUT_LIMIT + 4096;

    /// Input room, its `len` initialized (empty if none is spare).
    pub(super) fn take_input() -> Vec<u8> {
        spare::take(Slot::RustlsInput)
    }

    pub(super) fn give_input(buf: Vec<u8>) {
        if buf.len() >= SMALL_READ && buf.capacity() <= 2 * SMALL_READ {
            spare::give(Slot::RustlsInput, buf);
        }
    }

    /// Output room for `len` bytes, its `len` initialized (empty if none is spare): the
    /// large one for a write of application data larger than the small one holds.
    pub(super) fn take_output(len: usize) -> Vec<u8> {
        if len > SMALL_OUTPUT {
            let buf = spare::take(Slot::BulkOutput);
            if buf.capacity() > 0 {
                return buf;
            }
        }
        spare::take(Slot::RustlsOutput)
    }

    /// Kept with its `len`: the room after the data is zeroed already.
    pub(super) fn give_output(buf: Vec<u8>) {
        if buf.capacity() <= SMALL_OUTPUT {
            spare::give(Slot::RustlsOutput, buf);
        } else if buf.capacity() <= BULK_OUTPUT {
            spare::give(Slot::BulkOutput, buf);
        }
    }
}

pub(crate) struct UnbufferedSession {
    conn: Conn,
    io: Io,
    handshake: Handshake,
    /// The error the state machine stopped on; later calls report it again.
    failed: Option<rustls::Error>,
    /// An error met while decrypting in `read_tls_into`, for the `process` that follows
    /// to report (as if it had met it).
    deferred: Option<rustls::Error>,
}

impl UnbufferedSession {
    pub(crate) fn client(
        engine: &ClientEngine,
        peer_name: Option<&str>,
        policy: &VerifyPolicy,
    ) -> Result<UnbufferedSession, ConfigError> {
        let make = |config, server_name, handshake| {
            // On failure the hand-off is dropped, which gives its verifier back.
            let conn = UnbufferedClientConnection::new(config, server_name)
                .map_err(|e| ConfigError::new(format!("client session: {e}")))?;
            let mut session = UnbufferedSession::wrap(Conn::Client(conn), handshake);
            // The ClientHello is ready: encode it so the driver sends it.
            session
                .pump(None, false)
                .map_err(|e| ConfigError::new(format!("client session: {e}")))?;
            Ok(session)
        };
        client_session(engine, peer_name, policy, make, |session| {
            session.io.outgoing.len()
        })
    }

    pub(crate) fn server(
        engine: &ServerEngine,
        policy: &VerifyPolicy,
    ) -> Result<UnbufferedSession, ConfigError> {
        let (config, handshake) = Handshake::server(engine, policy)?;
        let conn = UnbufferedServerConnection::new(config)
            .map_err(|e| ConfigError::new(format!("server session: {e}")))?;
        Ok(UnbufferedSession::wrap(Conn::Server(conn), handshake))
    }

    fn wrap(conn: Conn, handshake: Handshake) -> UnbufferedSession {
        UnbufferedSession {
            conn,
            io: Io::default(),
            handshake,
            failed: None,
            deferred: None,
        }
    }

    fn pump(&mut self, app: Option<&[u8]>, park: bool) -> Result<Pumped, rustls::Error> {
        let result = match &mut self.conn {
            Conn::Client(c) => self.io.pump(c, app, park, &mut []),
            Conn::Server(s) => self.io.pump(s, app, park, &mut []),
        };
        let result = result.1.map(|()| result.0);
        if result.as_ref().is_ok_and(|p| p.peer_closed) {
            self.handshake.peer_closed();
        }
        result
    }

    /// `pump` with application data read going into `dst` first (nothing may be in
    /// `plain`); returns how much went there (also when the run then failed).
    fn pump_into(&mut self, dst: &mut [u8]) -> (usize, Result<(), rustls::Error>) {
        let (pumped, result) = match &mut self.conn {
            Conn::Client(c) => self.io.pump(c, None, false, dst),
            Conn::Server(s) => self.io.pump(s, None, false, dst),
        };
        if result.is_ok() {
            if pumped.peer_closed {
                self.handshake.peer_closed();
            }
            self.io.settled = pumped.settled && !self.conn.common().is_handshaking();
        }
        (pumped.delivered, result)
    }

    /// After an error: encodes the alert rustls queued for the peer.
    fn flush_alert(&mut self) {
        match &mut self.conn {
            Conn::Client(c) => self.io.flush(c),
            Conn::Server(s) => self.io.flush(s),
        }
    }
}

impl TlsSession for UnbufferedSession {
    fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        let limit = if self.conn.common().is_handshaking() {
            HANDSHAKE_INPUT_LIMIT
        } else {
            // After the handshake two records, whatever they hold. (Round 34 tried a
            // handshake message's room for runs of session tickets; a review showed that a
            // single 64 KiB ticket then fits, and rustls builds the next ClientHello with
            // it past the 16-bit length of its extensions: a debug build aborts, a release
            // build sends a malformed hello. Two records keep a ticket under 36 KiB.)
            TRAFFIC_INPUT_LIMIT
        };
        let io = &mut self.io;
        io.settled = false;
        let used = io.filled;
        if used >= limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message buffer full",
            ));
        }
        if used == 0 && io.read_hint < MAX_WIRE_SIZE {
            return read_small(io, rd, SMALL_READ.min(limit));
        }
        // Behind a partial record, read up to one record's size in all (at least a page):
        // whole records leave no tail, and the tail a read leaves is moved to the front
        // once the records before it are processed. Reading a whole record more each time
        // made the tail, and the bytes moved, grow by the same amount.
        let room = if used == 0 {
            io.read_hint.clamp(SMALL_READ, MAX_WIRE_SIZE)
        } else {
            MAX_WIRE_SIZE.saturating_sub(used).max(SMALL_READ)
        }
        .min(limit - used);
        if io.incoming.len() < used + room {
            io.incoming.resize(used + room, 0);
        }
        let result = rd.read(io.incoming.get_mut(used..used + room).unwrap_or_default());
        let n = result.as_ref().map_or(0, |n| (*n).min(room));
        io.filled = used + n;
        if used == 0 {
            io.read_hint = if n >= room { MAX_WIRE_SIZE } else { SMALL_READ };
        }
        io.release_input();
        result
    }

    fn read_tls_into(&mut self, rd: &mut dyn Read, dst: &mut [u8]) -> io::Result<(usize, usize)> {
        let n = self.read_tls(rd)?;
        if n == 0
            || dst.is_empty()
            || self.failed.is_some()
            || self.deferred.is_some()
            || self.io.plain.len() + self.io.parked > 0
            || self.io.close_pending
            || self.conn.common().is_handshaking()
        {
            return Ok((n, 0));
        }
        // The records that arrived, decrypted now, straight into `dst` (what `process`
        // followed by `read_plain` would give, with one copy less and one run of the state
        // machine less: `process` finds it settled).
        let (delivered, result) = self.pump_into(dst);
        if let Err(error) = result {
            // Reported by `process`, after the data that came before it.
            self.deferred = Some(error);
        }
        Ok((n, delivered))
    }

    fn process(&mut self) -> Result<(), TlsFailure> {
        if let Some(error) = self.failed.clone() {
            let mut failure = TlsFailure::handshake(format!("TLS error: {error}"));
            if !self.conn.common().is_handshaking() {
                failure.socket_error = crate::enums::SocketError::SslInternalError;
            }
            return Err(failure);
        }
        let result = match self.deferred.take() {
            Some(error) => Err(error),
            None if std::mem::take(&mut self.io.settled) => Ok(Pumped::default()),
            None => self.pump(None, true),
        };
        match result {
            Ok(_) => {
                self.handshake.processed(self.conn.common());
                Ok(())
            }
            Err(error) => {
                self.flush_alert();
                let failure = self.handshake.failure(&error, self.conn.common());
                self.failed = Some(error);
                Err(failure)
            }
        }
    }

    fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        let pending = self.io.outgoing.pending();
        if pending.is_empty() {
            return Ok(0);
        }
        let n = wr.write(pending)?;
        self.io.outgoing.consumed(n.min(pending.len()));
        Ok(n)
    }

    fn wants_write(&self) -> bool {
        self.io.outgoing.len() > 0
    }

    fn wants_read(&self) -> bool {
        !self.handshake.is_peer_closed()
            && self.failed.is_none()
            && self.io.plain.len() + self.io.parked < PLAIN_LIMIT
    }

    fn tls_bytes_to_write(&self) -> usize {
        self.io.outgoing.len()
    }

    fn tls_bytes_buffered(&self) -> usize {
        self.io.filled
    }

    fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() || self.failed.is_some() || self.conn.common().is_handshaking() {
            return Ok(0);
        }
        let room = OUTPUT_LIMIT.saturating_sub(self.io.outgoing.len());
        let take = data.get(..room.min(data.len())).unwrap_or_default();
        if take.is_empty() {
            return Ok(0);
        }
        match self.pump(Some(take), false) {
            Ok(pumped) => Ok(pumped.encrypted),
            Err(error) => {
                let message = format!("TLS error: {error}");
                self.flush_alert();
                self.failed = Some(error);
                Err(io::Error::other(message))
            }
        }
    }

    fn write_plain_to(&mut self, data: &[u8], wr: &mut dyn Write) -> io::Result<(usize, usize)> {
        let taken = self.write_plain(data)?;
        // The sealed records go to `wr` as far as it takes them at once; the rest (from
        // where it stopped, and after an error of `wr`, which `write_tls` meets again)
        // waits in order. Every pass sends at least one byte, so this ends.
        let mut sent = 0;
        loop {
            let pending = self.io.outgoing.pending();
            if pending.is_empty() {
                break;
            }
            match wr.write(pending) {
                Ok(n) if n > 0 => {
                    let n = n.min(pending.len());
                    self.io.outgoing.consumed(n);
                    sent += n;
                }
                Ok(_) | Err(_) => break,
            }
        }
        Ok((taken, sent))
    }

    fn read_plain(&mut self, buf: &mut [u8]) -> PlainRead {
        if buf.is_empty() {
            return PlainRead::Data(0);
        }
        let mut n = self.io.plain.read(buf);
        if self.io.parked > 0 {
            if let Some(rest) = buf.get_mut(n..).filter(|rest| !rest.is_empty()) {
                n += match &mut self.conn {
                    Conn::Client(c) => self.io.unpark(c, rest),
                    Conn::Server(s) => self.io.unpark(s, rest),
                };
            }
        }
        match n {
            0 if self.handshake.is_peer_closed() => PlainRead::Closed,
            0 => PlainRead::WouldBlock,
            n => PlainRead::Data(n),
        }
    }

    fn plaintext_len(&self) -> usize {
        self.io.plain.len() + self.io.parked
    }

    fn is_handshaking(&self) -> bool {
        self.conn.common().is_handshaking()
    }

    fn received_close_notify(&self) -> bool {
        self.handshake.is_peer_closed()
    }

    fn status(&self) -> SessionStatus {
        SessionStatus {
            wants_write: self.io.outgoing.len() > 0,
            plaintext_len: self.io.plain.len() + self.io.parked,
            handshaking: self.conn.common().is_handshaking(),
            received_close_notify: self.handshake.is_peer_closed(),
        }
    }

    fn negotiated(&self) -> Option<Negotiated> {
        self.handshake.negotiated(self.conn.common())
    }

    fn requested_server_name(&self) -> Option<String> {
        self.handshake.requested_server_name()
    }

    fn peer_certificate_chain(&self) -> Vec<SslCertificate> {
        handshake::peer_certificate_chain(self.conn.common())
    }

    fn poll_notice(&mut self) -> Option<BackendNotice> {
        self.handshake.poll_notice()
    }

    fn export_keying_material(
        &self,
        _len: usize,
        _label: &[u8],
        _context: Option<&[u8]>,
    ) -> Result<Vec<u8>, TlsFailure> {
        // rustls 0.23 offers no exporter on its unbuffered connections; a configuration
        // that asks for export gets buffered ones.
        Err(TlsFailure::internal(
            "exporting keying material needs SslConfiguration::set_keying_material_export(true) \
             before the handshake (rustls's unbuffered connections, used otherwise, cannot export)",
        ))
    }

    fn take_verification(&mut self) -> Option<Verification> {
        self.handshake.take_verification()
    }

    fn forget_own_sessions(&mut self) {
        self.handshake.forget_own_sessions();
    }

    fn take_local_failure(&mut self) -> Option<crate::error::ConfigError> {
        self.handshake.record.take_local_failure()
    }

    fn set_policy(&mut self, policy: VerifyPolicy) {
        self.handshake.set_policy(policy);
    }

    fn resumed_outcome(&self) -> Option<Outcome> {
        self.handshake.resumed_outcome()
    }

    fn confirm_peer(&mut self, outcome: Option<Outcome>) {
        self.handshake.confirm_peer(outcome);
    }

    fn close(&mut self) {
        self.io.close_pending = true;
        if self.failed.is_none() {
            if let Err(error) = self.pump(None, false) {
                self.flush_alert();
                self.failed = Some(error);
            }
        }
        self.handshake.closing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::rustls::config;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn outgoing_room_reused_after_a_larger_record_sends_only_what_was_written() -> TestResult {
        let mut out = Outgoing::default();
        let mut sent = Vec::new();
        // A large write, a need for more room, short ones into the room it left (whose
        // bytes after the data are stale), partial sends and the compaction in between.
        for (i, size) in [3000usize, 10, 5000, 1, 700, 64].into_iter().enumerate() {
            let byte = u8::try_from(i)? + 1;
            let mut asked = 0;
            out.fill(100, |room| {
                asked += 1;
                let Some(dst) = room.get_mut(..size) else {
                    return Ok(Fill::Need(size));
                };
                dst.fill(byte);
                Ok(Fill::Wrote(size))
            })?;
            assert!(asked <= 2);
            let half = out.len() / 2;
            sent.extend_from_slice(out.pending().get(..half).ok_or("pending")?);
            out.consumed(half);
        }
        sent.extend_from_slice(out.pending());
        let n = out.len();
        out.consumed(n);
        let mut expected = Vec::new();
        for (i, size) in [3000usize, 10, 5000, 1, 700, 64].into_iter().enumerate() {
            expected.extend(std::iter::repeat_n(u8::try_from(i)? + 1, size));
        }
        assert_eq!(sent, expected);
        assert_eq!(out.len(), 0);
        assert_eq!(
            out.buf.capacity(),
            0,
            "nothing kept once everything is sent"
        );
        // Nothing to write: nothing kept either.
        out.fill(100, |_| Ok(Fill::Nothing))?;
        assert_eq!((out.len(), out.buf.capacity()), (0, 0));
        Ok(())
    }

    fn sessions() -> Result<(UnbufferedSession, UnbufferedSession), Box<dyn std::error::Error>> {
        let (server, client) = crate::backend::test_pki::configurations()?;
        let policy = VerifyPolicy::default();
        let client = UnbufferedSession::client(
            &*config::client_engine(&client)?,
            Some("localhost"),
            &policy,
        )?;
        let server = UnbufferedSession::server(&*config::server_engine(&server)?, &policy)?;
        Ok((client, server))
    }

    /// Moves what `from` has to send into `to`; whether anything moved.
    fn one_way(
        from: &mut UnbufferedSession,
        to: &mut UnbufferedSession,
    ) -> Result<bool, Box<dyn std::error::Error>> {
        let wire = wire_of(from)?;
        let mut input = wire.as_slice();
        while !input.is_empty() {
            to.read_tls(&mut input)?;
            to.process()?;
        }
        Ok(!wire.is_empty())
    }

    /// Moves TLS bytes both ways until neither side has any to send (bounded).
    fn exchange(a: &mut UnbufferedSession, b: &mut UnbufferedSession) -> TestResult {
        for _ in 0..32 {
            let moved = one_way(a, b)? | one_way(b, a)?;
            if !moved {
                return Ok(());
            }
        }
        Err("the exchange did not settle".into())
    }

    fn holds_nothing(session: &UnbufferedSession) -> bool {
        session.io.incoming.capacity() == 0
            && session.io.outgoing.buf.capacity() == 0
            && session.io.plain.buf.capacity() == 0
    }

    #[test]
    fn an_idle_connection_keeps_no_buffer_memory() -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        assert!(!client.is_handshaking() && !server.is_handshaking());
        assert_eq!(client.write_plain(&[7u8; 40_000])?, 40_000);
        exchange(&mut client, &mut server)?;
        assert_eq!(server.plaintext_len(), 40_000);
        let mut buf = vec![0u8; 50_000];
        assert_eq!(server.read_plain(&mut buf), PlainRead::Data(40_000));
        assert_eq!(buf.get(..40_000), Some(&[7u8; 40_000][..]));
        assert_eq!(server.read_plain(&mut buf), PlainRead::WouldBlock);
        assert!(holds_nothing(&client), "client keeps buffer memory");
        assert!(holds_nothing(&server), "server keeps buffer memory");

        client.close();
        exchange(&mut client, &mut server)?;
        assert!(server.received_close_notify());
        assert_eq!(server.read_plain(&mut buf), PlainRead::Closed);
        Ok(())
    }

    /// Reads everything `session` holds, `chunk` bytes at a time.
    fn read_all(session: &mut UnbufferedSession, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        for _ in 0..1000 {
            match session.read_plain(&mut buf) {
                PlainRead::Data(n) if n > 0 => out.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        out
    }

    #[test]
    fn records_arriving_together_are_read_in_order_whatever_the_buffer_size() -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        for chunk in [1, 2, 3, 7, 100] {
            for part in [&b"abc"[..], b"defg", b"hi"] {
                assert_eq!(client.write_plain(part)?, part.len());
            }
            assert!(one_way(&mut client, &mut server)?);
            // The last record is left in rustls, the ones before it were copied out.
            assert_eq!(server.io.parked, 2);
            assert_eq!(server.plaintext_len(), 9);
            assert!(server.wants_read());
            assert_eq!(read_all(&mut server, chunk), b"abcdefghi", "chunk {chunk}");
            assert_eq!(server.plaintext_len(), 0);
            assert_eq!(server.read_plain(&mut [0u8; 4]), PlainRead::WouldBlock);
        }
        assert!(holds_nothing(&server), "server keeps buffer memory");
        assert!(holds_nothing(&client), "client keeps buffer memory");
        Ok(())
    }

    #[test]
    fn a_record_left_in_rustls_is_copied_out_when_more_input_or_a_write_comes() -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        client.write_plain(b"one")?;
        one_way(&mut client, &mut server)?;
        assert_eq!(server.io.parked, 3);
        // More input: the held record goes to the plaintext buffer, the new one is held.
        client.write_plain(b"two")?;
        one_way(&mut client, &mut server)?;
        assert_eq!((server.io.parked, server.io.plain.len()), (3, 3));
        // Writing needs rustls past the held record.
        assert_eq!(server.write_plain(b"answer")?, 6);
        assert_eq!((server.io.parked, server.io.plain.len()), (0, 6));
        one_way(&mut server, &mut client)?;
        assert_eq!(read_all(&mut client, 64), b"answer");
        assert_eq!(read_all(&mut server, 64), b"onetwo");
        Ok(())
    }

    #[test]
    fn close_notify_behind_data_is_seen_at_once() -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        client.write_plain(b"last words")?;
        client.close();
        one_way(&mut client, &mut server)?;
        assert!(server.received_close_notify());
        assert!(!server.wants_read());
        assert_eq!(server.plaintext_len(), 10);
        assert_eq!(read_all(&mut server, 4), b"last words");
        assert_eq!(server.read_plain(&mut [0u8; 4]), PlainRead::Closed);
        Ok(())
    }

    #[test]
    fn a_partial_record_behind_a_held_one_waits_for_the_rest() -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        client.write_plain(b"first")?;
        client.write_plain(&[9u8; 1000])?;
        let wire = wire_of(&mut client)?;
        // The first record and half of the second.
        let cut = wire.len() - 500;
        let mut input = &wire[..cut];
        while !input.is_empty() {
            server.read_tls(&mut input)?;
            server.process()?;
        }
        assert_eq!(server.io.parked, 5);
        assert_eq!(read_all(&mut server, 64), b"first");
        let mut input = &wire[cut..];
        while !input.is_empty() {
            server.read_tls(&mut input)?;
            server.process()?;
        }
        assert_eq!(read_all(&mut server, 300), vec![9u8; 1000]);
        Ok(())
    }

    #[test]
    fn a_stream_of_full_records_is_read_within_one_record_of_input_buffer() -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        // Eight full-size records with distinct bytes, on the wire back to back, as a
        // socket under a bulk transfer gives them: each read gets all it asks for.
        let data: Vec<u8> = (0..8 * 16 * 1024).map(|i| (i / 7 % 251) as u8).collect();
        let mut written = 0;
        let mut wire = Vec::new();
        for _ in 0..100 {
            if written == data.len() {
                break;
            }
            written += client.write_plain(data.get(written..).unwrap_or_default())?;
            while client.wants_write() {
                client.write_tls(&mut wire)?;
            }
        }
        assert_eq!(written, data.len());
        let mut input = wire.as_slice();
        let mut received = Vec::new();
        let mut largest = 0;
        for _ in 0..100 {
            if input.is_empty() {
                break;
            }
            server.read_tls(&mut input)?;
            largest = largest.max(server.io.incoming.len());
            server.process()?;
            received.extend(read_all(&mut server, 64 * 1024));
        }
        assert!(received == data, "the records arrive intact and in order");
        // Reading behind a partial record tops the buffer up to one record instead of
        // adding one: the buffer (and the tail moved to its front) stays that small.
        assert!(
            largest <= MAX_WIRE_SIZE,
            "input buffer grew to {largest} bytes"
        );
        assert!(holds_nothing(&server), "server keeps buffer memory");
        Ok(())
    }

    /// TLS bytes `from` has to send.
    fn wire_of(from: &mut UnbufferedSession) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire)?;
        }
        Ok(wire)
    }

    #[test]
    fn records_read_into_the_callers_buffer_arrive_in_order_with_the_close_behind_them(
    ) -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        for part in [&b"abc"[..], b"defg", b"hi"] {
            client.write_plain(part)?;
        }
        client.close();
        let wire = wire_of(&mut client)?;
        // A buffer smaller than the data: the rest waits in order.
        let mut buf = [0u8; 5];
        let (n, delivered) = server.read_tls_into(&mut wire.as_slice(), &mut buf)?;
        assert_eq!((n, delivered), (wire.len(), 5));
        assert_eq!(&buf, b"abcde");
        server.process()?;
        assert!(server.received_close_notify());
        assert_eq!(server.plaintext_len(), 4);
        assert_eq!(read_all(&mut server, 3), b"fghi");
        assert_eq!(server.read_plain(&mut buf), PlainRead::Closed);
        assert!(holds_nothing(&server), "server keeps buffer memory");
        Ok(())
    }

    #[test]
    fn a_record_read_into_the_callers_buffer_then_settled_needs_no_second_run() -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        for round in 0..4 {
            client.write_plain(b"ping")?;
            let wire = wire_of(&mut client)?;
            // Input arriving in two parts: the first holds no whole record.
            let (head, tail) = wire.split_at(3);
            let mut buf = [0u8; 64];
            assert_eq!(server.read_tls_into(&mut &head[..], &mut buf)?, (3, 0));
            server.process()?;
            assert_eq!(
                server.read_tls_into(&mut &tail[..], &mut buf)?.1,
                4,
                "{round}"
            );
            assert_eq!(&buf[..4], b"ping");
            assert!(server.io.settled);
            server.process()?;
            assert!(!server.io.settled);
            assert_eq!(server.plaintext_len(), 0);
            // The answer goes out as usual.
            assert_eq!(server.write_plain(b"pong")?, 4);
            one_way(&mut server, &mut client)?;
            assert_eq!(read_all(&mut client, 64), b"pong");
        }
        assert!(holds_nothing(&server), "server keeps buffer memory");
        Ok(())
    }

    #[test]
    fn a_bad_record_behind_good_ones_read_into_the_callers_buffer_fails_after_them() -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        client.write_plain(b"hello")?;
        let mut wire = wire_of(&mut client)?;
        client.write_plain(b"world")?;
        let mut second = wire_of(&mut client)?;
        if let Some(last) = second.last_mut() {
            *last ^= 0x55;
        }
        wire.extend_from_slice(&second);
        let mut buf = [0u8; 64];
        let (_, delivered) = server.read_tls_into(&mut wire.as_slice(), &mut buf)?;
        assert_eq!(&buf[..delivered], b"hello");
        assert!(server.process().is_err(), "the bad record is reported");
        assert!(server.process().is_err(), "and again");
        assert!(!server.wants_read());
        // The alert for the peer is ready.
        assert!(server.wants_write());
        Ok(())
    }

    #[test]
    fn write_plain_to_sends_what_the_socket_takes_and_keeps_the_rest_in_order() -> TestResult {
        /// Takes `each` bytes per write until `budget` is spent, then refuses with `kind`.
        struct Refusing {
            out: Vec<u8>,
            each: usize,
            budget: usize,
            kind: io::ErrorKind,
        }
        impl Write for Refusing {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let n = buf.len().min(self.each).min(self.budget);
                if n == 0 {
                    return Err(self.kind.into());
                }
                self.budget -= n;
                self.out.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        let mut expected = Vec::new();
        let mut wire = Vec::new();
        let kinds = [
            io::ErrorKind::WouldBlock,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::Interrupted,
        ];
        for (round, size) in [64usize, 1, 5000, 20_000, 64, 70_000]
            .into_iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + round) as u8).collect();
            let mut socket = Refusing {
                out: Vec::new(),
                each: 10 + round * 300,
                budget: [0, 3, 100, 17_000, 1_000_000, 20][round],
                kind: kinds[round % kinds.len()],
            };
            let (taken, sent) = client.write_plain_to(&data, &mut socket)?;
            assert_eq!(sent, socket.out.len());
            assert!(taken > 0 && taken <= size);
            expected.extend_from_slice(&data[..taken]);
            wire.extend_from_slice(&socket.out);
            // What the socket did not take goes out next, after it.
            wire.extend(wire_of(&mut client)?);
        }
        assert!(holds_nothing(&client), "client keeps buffer memory");
        let mut input = wire.as_slice();
        let mut received = Vec::new();
        for _ in 0..1000 {
            if input.is_empty() {
                break;
            }
            server.read_tls(&mut input)?;
            server.process()?;
            received.extend(read_all(&mut server, 64 * 1024));
        }
        assert_eq!(received.len(), expected.len());
        assert!(received == expected, "every byte arrives once, in order");
        Ok(())
    }

    #[test]
    fn write_plain_takes_no_more_than_the_output_limit() -> TestResult {
        let (mut client, mut server) = sessions()?;
        exchange(&mut client, &mut server)?;
        let data = vec![1u8; 3 * OUTPUT_LIMIT];
        let first = client.write_plain(&data)?;
        assert_eq!(first, OUTPUT_LIMIT);
        assert!(client.tls_bytes_to_write() > OUTPUT_LIMIT);
        assert_eq!(client.write_plain(&data)?, 0);
        Ok(())
    }
}
