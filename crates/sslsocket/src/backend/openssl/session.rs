//! One OpenSSL connection behind the `TlsSession` trait: a `TlsStream` (our BIO, one method table for all connections) whose transport
//! reads straight from the socket the driver hands to `read_tls`.
//!
//! `read_tls` lends the socket to OpenSSL for one read (`with_reader`): OpenSSL reads as
//! much as its record buffer holds (read-ahead) directly from the socket, and every
//! complete record is processed and decrypted at once into the plaintext buffer (the core
//! counts new plaintext from before `read_tls`); a failure found meanwhile is reported by
//! the following `process()`. Outside
//! `read_tls` the transport has nothing to read (`WouldBlock`, so OpenSSL answers
//! `WANT_READ` and keeps its state). After large messages, the last record read stays
//! decrypted in OpenSSL's record buffer and `read_plain` copies it straight into the
//! caller's buffer (no copy through ours). What OpenSSL writes goes to the transport's
//! output buffer, which `write_tls` drains in one write; `write_plain_to` lends the socket
//! so a single record goes straight to it while nothing waits in that buffer (the records
//! of a larger write are gathered in the output and go in one write: one segment, not one
//! per record, under TCP_NODELAY). Once the plaintext buffer holds 16 KiB
//! the session stops asking for input, which pushes back on the peer. Idle, the session
//! holds no buffers: OpenSSL releases its own (`SSL_MODE_RELEASE_BUFFERS`), the plaintext
//! and output buffers are freed when drained.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::sync::Arc;

use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::ssl::{ErrorCode, Ssl, SslRef, SslVersion, StatusType};
use sslsocket_openssl_ext::{
    with_reader, with_reader_and_writer, with_writer, StreamError, TlsStream, Transport,
};

use crate::backend::openssl::alerts;
use crate::backend::openssl::context::{connection_index, verify_mode, Engine};
use crate::backend::openssl::sessions::ClientSessions;
use crate::backend::openssl::verifier::{ConnectionState, PeerName};
use crate::backend::spare::{self, Slot};
use crate::backend::{
    BackendNotice, Duplex, DuplexRead, Negotiated, PlainRead, Socket, TlsSession,
};
use crate::cert::SslCertificate;
use crate::config::{SslConfiguration, SslOption};
use crate::enums::{SocketError, SslProtocol, TlsVersion};
use crate::error::{ConfigError, TlsFailure};
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::{Decision, Judgement};
use crate::verify::{Outcome, Verification, VerifyPolicy};

/// Decrypted data held from which on the session stops taking input.
const PLAIN_LIMIT: usize = 16 * 1024;
/// Above this much unsent output, `write_plain` takes nothing until it drains.
const OUTGOING_LIMIT: usize = 64 * 1024;
/// The most plaintext one record carries.
const RECORD_PLAIN: usize = 16 * 1024;
/// The plaintext buffer's first size after a read that brought at most this much: small
/// messages (requests, answers) take a small allocation, which the allocator serves from
/// its per-thread cache, instead of room for two records.
const SMALL_PLAIN: usize = 1024;
/// A drained plaintext buffer up to this size is kept as the thread's spare one.
const SPARE_PLAIN: usize = 2 * SMALL_PLAIN;
/// Less room than this left in the plaintext buffer, and it grows.
const MIN_ROOM: usize = 2 * 1024;
/// The most a record adds to its plaintext (header, type, tag; CBC padding and MAC).
const RECORD_OVERHEAD: usize = 320;
/// What `read_tls` reads into when the session takes no more input (after the peer's
/// close_notify or a failure): the bytes are dropped, as nothing would process them.
const SINK: usize = 4 * 1024;

/// The driver's socket as `read_tls` lends it: read at most once per call (a blocking
/// socket must not be read twice). An end of stream or an error is kept for the caller, and
/// OpenSSL sees `WouldBlock`, so its state stays intact. With the writing side at hand
/// (`read_tls_duplex`), what OpenSSL writes meanwhile goes straight to the socket while
/// `send_through` allows it (see `OpensslSession::may_send_through`); otherwise it waits
/// in the transport's output for `write_tls`.
struct OneRead<'a> {
    inner: Socket<'a>,
    outcome: Option<io::Result<usize>>,
    send_through: SendThrough,
}

/// When what OpenSSL writes during one `read_tls` may go straight to the socket.
enum SendThrough {
    Never,
    /// A server's first flight (nothing written before): an answer to the ClientHello,
    /// before any peer was judged, which nothing withholds.
    FirstFlight,
    /// Once nothing can withhold it ([`ConnectionState::sends_through`]): the peer's
    /// certificate verified and accepted outright, or a resumed session the policy accepts.
    OnceAccepted(Arc<ConnectionState>),
}

impl Read for OneRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.outcome.is_some() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let result = self.inner.reader().read(buf);
        match result {
            Ok(n) if n > 0 => {
                self.outcome = Some(Ok(n));
                Ok(n)
            }
            other => {
                self.outcome = Some(other);
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }
}

impl OneRead<'_> {
    /// One read into a sink, for a session that takes no more input: the bytes are
    /// dropped, as nothing would process them.
    fn read_sink(&mut self) -> io::Result<usize> {
        self.inner.reader().read(&mut [0u8; SINK])
    }
}

impl Write for OneRead<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let allowed = match &self.send_through {
            SendThrough::Never => false,
            SendThrough::FirstFlight => true,
            SendThrough::OnceAccepted(state) => state.sends_through(),
        };
        match &mut self.inner {
            Socket::Duplex(io) if allowed => io.write(buf),
            // Left in the output, for `write_tls`.
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) struct OpensslSession {
    stream: TlsStream,
    state: Arc<ConnectionState>,
    persist_sessions: bool,
    handshaking: bool,
    /// Decrypted data: `plain[plain_start..]`; freed when drained.
    plain: Vec<u8>,
    plain_start: usize,
    /// Decrypted bytes of the last record read, left in OpenSSL's record buffer (after the
    /// data of `plain`): `read_plain` copies them straight into the caller's buffer.
    inside: usize,
    /// What the last read that decrypted anything decrypted: sizes the next buffer.
    last_plain: usize,
    /// A failure found by `read_tls`, reported by `process()` (boxed: rare, and the
    /// session lives as long as the connection).
    failed: Option<Box<TlsFailure>>,
    /// `read_tls` ran OpenSSL as far as it could go: the `process()` that follows has
    /// only to announce what it found.
    advanced: bool,
    /// Inside `read_tls`: the driver's socket is lent to the transport.
    lending: bool,
    peer_closed: bool,
    close_sent: bool,
    chain_published: bool,
    /// OpenSSL's records are counted into the state (see `count_records`).
    counting: bool,
    /// The handshake used an external pre-shared key, which OpenSSL reports as a reused
    /// session: not a resumption (nothing was resumed), and judged as the key's.
    external_psk: bool,
}

impl OpensslSession {
    /// A client session; its ClientHello is ready to send when this returns.
    pub(crate) fn client(
        engine: &Engine,
        configuration: &SslConfiguration,
        peer_name: Option<&str>,
        policy: &VerifyPolicy,
    ) -> Result<OpensslSession, ConfigError> {
        // Fail closed: OpenSSL checks no name at all when given none (and `set_host("")`
        // clears the names to check), so a client without a usable name does not start,
        // as on the rustls backend.
        let name = peer_name.unwrap_or_default();
        let peer = PeerName::parse(name);
        let unusable = match peer {
            PeerName::Ip(_) => false,
            // A fully qualified `name.` is the same host (the rustls backend's rule); SNI
            // never carries the dot (RFC 6066 §3) and OpenSSL's name check would not match
            // it.
            PeerName::Dns(host) => host.strip_suffix('.').unwrap_or(host).is_empty(),
        };
        // The rustls backend's rule for what a host name is (RFC 1035 labels or an IP
        // literal), so that a name one backend refuses is never sent by the other.
        let malformed = rustls_pki_types::ServerName::try_from(name).is_err();
        if unusable || malformed || name.contains('\0') {
            return Err(ConfigError::new(format!(
                "`{}` is not a valid host name for TLS",
                name.escape_default()
            )));
        }
        let sessions = engine
            .sessions
            .clone()
            .map(|store| (store, name.to_string()));
        let (mut ssl, state) =
            new_ssl(engine, configuration, policy, Some(name), sessions.clone())?;
        if let Some((store, peer)) = &sessions {
            store.offer(&mut ssl, peer, &state);
        }
        match peer {
            PeerName::Ip(ip) => ssl.param_mut().set_ip(ip),
            PeerName::Dns(host) => {
                let host = host.strip_suffix('.').unwrap_or(host);
                if engine.send_sni {
                    ssl.set_hostname(host)
                        .map_err(|e| ConfigError::new(format!("server name `{host}`: {e}")))?;
                }
                ssl.param_mut().set_host(host)
            }
        }
        .map_err(|e| ConfigError::new(format!("peer name `{name}`: {e}")))?;
        ssl.set_connect_state();
        let mut session = OpensslSession::wrap(ssl, state, configuration)?;
        // Produce the ClientHello now, so the driver has something to send.
        match session.stream.do_handshake() {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::WANT_READ => {}
            Err(e) => return Err(ConfigError::new(format!("client session: {e}"))),
        }
        Ok(session)
    }

    /// A server session, waiting for the ClientHello.
    pub(crate) fn server(
        engine: &Engine,
        configuration: &SslConfiguration,
        policy: &VerifyPolicy,
    ) -> Result<OpensslSession, ConfigError> {
        let (mut ssl, state) = new_ssl(engine, configuration, policy, None, None)?;
        ssl.set_accept_state();
        OpensslSession::wrap(ssl, state, configuration)
    }

    fn wrap(
        ssl: Ssl,
        state: Arc<ConnectionState>,
        configuration: &SslConfiguration,
    ) -> Result<OpensslSession, ConfigError> {
        // The record bytes OpenSSL processes are counted in the connection's state (with
        // the bytes its transport delivered: whether it holds input not processed yet).
        let mut stream = TlsStream::new(ssl, Transport::new())
            .map_err(|e| ConfigError::new(format!("openssl session: {e}")))?;
        stream.count_records_read::<ConnectionState>();
        Ok(OpensslSession {
            stream,
            state,
            persist_sessions: !configuration
                .test_ssl_option(SslOption::SslOptionDisableSessionPersistence),
            handshaking: true,
            plain: Vec::new(),
            plain_start: 0,
            inside: 0,
            last_plain: 0,
            failed: None,
            advanced: false,
            lending: false,
            peer_closed: false,
            close_sent: false,
            chain_published: false,
            counting: true,
            external_psk: false,
        })
    }

    fn output(&self) -> &[u8] {
        self.stream.get_ref().output()
    }

    /// Gives up the plaintext buffer, drained: a small one becomes the thread's spare
    /// buffer (the next small message's, on any connection), a larger one is freed.
    fn release_plain(&mut self) {
        let mut plain = std::mem::take(&mut self.plain);
        self.plain_start = 0;
        if plain.capacity() <= SPARE_PLAIN {
            plain.clear();
            spare::give(Slot::Plain, plain);
        }
    }

    /// Puts `data` in front of the plaintext held.
    fn hold_before(&mut self, data: &[u8]) {
        let rest = self.plain.get(self.plain_start..).unwrap_or_default();
        let mut plain = Vec::with_capacity(data.len() + rest.len());
        plain.extend_from_slice(data);
        plain.extend_from_slice(rest);
        self.plain = plain;
        self.plain_start = 0;
    }

    /// Decrypted bytes held in `plain`.
    fn plain_held(&self) -> usize {
        self.plain.len().saturating_sub(self.plain_start)
    }

    /// Whether OpenSSL holds input bytes it has not processed (a record or part of one
    /// read ahead): the transport delivered more than the records OpenSSL read.
    /// Unknown while records are not counted: then it says yes, which costs at most
    /// another `SSL_read`.
    fn raw_left(&self) -> bool {
        !self.counting || self.stream.get_ref().delivered() != self.state.records_read()
    }

    /// Counts OpenSSL's records (its message callback, called for every record read and
    /// written) only when `wanted`: only keeping the last record in OpenSSL's buffer, after
    /// large messages, needs the count (`raw_left`). Switched where OpenSSL holds no input,
    /// where the count starts again from what the transport delivered; elsewhere it stays.
    fn count_records(&mut self, wanted: bool) {
        if wanted == self.counting
            || self.inside > 0
            || sslsocket_openssl_ext::has_pending(self.stream.ssl())
        {
            return;
        }
        if wanted {
            self.state
                .restart_records_read(self.stream.get_ref().delivered());
            self.stream.count_records_read::<ConnectionState>();
        } else {
            self.stream.stop_counting_records();
        }
        self.counting = wanted;
    }

    /// Runs the handshake and decrypts what OpenSSL has (and, inside `read_tls`, what one
    /// read of the socket brings).
    fn advance(&mut self) -> Result<(), TlsFailure> {
        self.advance_into(&mut []).map(|_| ())
    }

    /// `advance`, the plaintext of the first records going straight into `dst` (the
    /// reader's buffer, offered only when no plaintext is held, so nothing is reordered)
    /// while it has room. Returns what went into `dst`; a failure after some did is kept
    /// for `process()`, so that data is not lost.
    fn advance_into(&mut self, dst: &mut [u8]) -> Result<usize, TlsFailure> {
        if let Some(failure) = &self.failed {
            return Err(TlsFailure::clone(failure));
        }
        if self.handshaking {
            self.handshake()?;
            if self.handshaking {
                return Ok(0);
            }
            if self.input_exhausted() {
                // Nothing arrived behind the handshake's last message: an `SSL_read` could
                // only answer `WANT_READ`, and the first one after the handshake does
                // OpenSSL work of its own (20 to 40 µs per handshake by uprobes on this
                // machine) that would delay what the core does next.
                return Ok(0);
            }
        }
        let held = self.plain_held() + self.inside;
        let direct = self.read_direct(dst);
        if self.failed.is_some() {
            return Ok(direct);
        }
        if direct > 0 && self.inside == 0 && self.input_exhausted() {
            // All of it went to the reader: no `SSL_read` that could only want more.
            self.last_plain = direct;
            return Ok(direct);
        }
        match self.read_records(held, direct) {
            Ok(()) => Ok(direct),
            Err(failure) if direct == 0 => Err(failure),
            Err(failure) => {
                self.failed.get_or_insert(Box::new(failure));
                Ok(direct)
            }
        }
    }

    /// Decrypts records straight into `dst` while it has room: one copy, from OpenSSL's
    /// record buffer to the reader's. The rest of a record larger than the room stays in
    /// OpenSSL (`inside`) and the records behind it go the way of `read_records`.
    fn read_direct(&mut self, dst: &mut [u8]) -> usize {
        let mut done = 0;
        while !self.peer_closed {
            let Some(room) = dst.get_mut(done..).filter(|room| !room.is_empty()) else {
                break;
            };
            let result = self.stream.ssl_read(room);
            self.inside = self.stream.ssl().pending();
            match result {
                Ok(0) => break,
                Ok(n) => {
                    done += n;
                    if self.inside == 0 && self.input_exhausted() {
                        break;
                    }
                }
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => self.peer_closed = true,
                Err(e) if e.code() == ErrorCode::WANT_READ => break,
                Err(e) => {
                    self.inside = 0;
                    let failure = self.failure(&e);
                    self.failed.get_or_insert(Box::new(failure));
                    break;
                }
            }
        }
        done
    }

    /// A failure from an OpenSSL error, with the alerts it shows.
    fn failure(&mut self, error: &StreamError) -> TlsFailure {
        let mut failure = TlsFailure::handshake(format!("TLS error: {error}"));
        if !self.handshaking {
            failure.socket_error = SocketError::SslInternalError;
        }
        if alerts::missing_peer_certificate(error) {
            // A required client certificate is missing: a refusal like any other.
            self.state.record().record(Verification {
                errors: vec![SslError::new(SslErrorKind::NoPeerCertificate)],
                judgement: Judgement {
                    decision: Decision::Refuse,
                    ..Judgement::default()
                },
                ..Verification::default()
            });
        }
        // The alerts themselves were reported by the info callback.
        if let Some(alert) = alerts::received(error) {
            failure.message = format!("the peer sent a fatal alert: {}", alert.description);
            failure.alert_received = Some(alert);
        }
        failure
    }

    /// Hands the core the chain exactly as the peer sent it, once verification ran (the
    /// server side learns it only after OpenSSL's callback).
    fn publish_sent_chain(&mut self) {
        if self.chain_published || !self.state.decided() {
            return;
        }
        let chain = self.peer_certificate_chain();
        if !chain.is_empty() {
            self.chain_published = true;
            self.state.publish_chain(chain);
        }
    }

    fn handshake(&mut self) -> Result<(), TlsFailure> {
        let result = self.stream.do_handshake();
        self.publish_sent_chain();
        match result {
            Ok(()) => {
                self.handshaking = false;
                let ssl = self.stream.ssl();
                let reused = ssl.session_reused();
                let has_peer = ssl.peer_certificate().is_some();
                let staple = ssl.ocsp_status().map(<[u8]>::to_vec);
                if !reused
                    && has_peer
                    && !self
                        .state
                        .decide_late(|| self.peer_certificate_chain(), staple.as_deref())
                {
                    // Refused after OpenSSL finished: our Finished (and any ticket) is
                    // already written; it must never reach the peer.
                    self.stream.get_mut().discard();
                    return Err(TlsFailure::handshake("certificate verification failed"));
                }
                if reused {
                    if let Some(outcome) = self.state.resumed_server_outcome() {
                        self.state.record().set_offered(outcome);
                    }
                    let client = !ssl.is_server();
                    if !has_peer && (client || self.state.record().offered().is_none()) {
                        // An external pre-shared key (OpenSSL reports it as reused): the
                        // peer was authenticated by the key, there is no certificate. On a
                        // client, also when a stored session was offered beside it: the
                        // server picked the key, not the session (whose peer showed a
                        // certificate, which a resumed session carries), so the session's
                        // outcome is not this peer's.
                        self.state.record().set_offered(Outcome::default());
                        self.external_psk = true;
                        if client && !self.state.decide_external_psk(staple.as_deref()) {
                            // Refused (strict OCSP): our Finished must never reach the peer.
                            self.stream.get_mut().discard();
                            return Err(TlsFailure::handshake("certificate verification failed"));
                        }
                    }
                }
                Ok(())
            }
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(()),
            Err(e) => Err(self.failure(&e)),
        }
    }

    /// `read_tls_into` over the lent socket (see [`OneRead`]).
    fn read_lent(&mut self, socket: Socket<'_>, dst: &mut [u8]) -> DuplexRead {
        // Only with nothing held: what is held goes to the reader first.
        let dst = if self.plaintext_len() == 0 {
            dst
        } else {
            &mut []
        };
        let send_through = match socket {
            Socket::Duplex(_) => self.may_send_through(),
            Socket::Reader(_) => SendThrough::Never,
        };
        let transport = self.stream.get_mut();
        let (id, sent_before) = (transport.id(), transport.written_through());
        transport.reset_reader_reached();
        let mut once = OneRead {
            inner: socket,
            outcome: None,
            send_through,
        };
        self.lending = true;
        // The writer is lent only when something may go through it (during handshakes):
        // the reads of established connections lend one slot, not two.
        let result = if matches!(once.send_through, SendThrough::Never) {
            with_reader(id, &mut once, || self.advance_into(dst))
        } else {
            with_reader_and_writer(id, &mut once, || self.advance_into(dst))
        };
        self.lending = false;
        let sent = self
            .stream
            .get_ref()
            .written_through()
            .wrapping_sub(sent_before);
        let sent = usize::try_from(sent).unwrap_or(usize::MAX);
        let direct = match result {
            Ok(direct) => direct,
            Err(failure) => {
                self.failed.get_or_insert(Box::new(failure));
                0
            }
        };
        let read = match once.outcome {
            Some(outcome) => outcome,
            // OpenSSL asked for nothing: the session takes no more input.
            None => once.read_sink(),
        };
        // Input arrived: the core calls `process()` next.
        self.advanced = matches!(read, Ok(n) if n > 0);
        let result = match read {
            Ok(n) => Ok((n, direct)),
            Err(e) => {
                if direct > 0 {
                    // Decrypted without new input (OpenSSL decrypts only what arrives, so
                    // this does not happen): held for `read_plain`, in order, not lost.
                    self.hold_before(dst.get(..direct).unwrap_or_default());
                }
                Err(e)
            }
        };
        DuplexRead { result, sent }
    }

    /// When what OpenSSL writes during this `read_tls` may go straight to the socket:
    /// only where the core could not withhold it. The core holds a flight back only while
    /// paused on verification errors, and drops it when the peer is refused (by the
    /// verification, by the application after a pause, by the judgement of a resumed
    /// session, for pins with no certificate or a missing client certificate). So: a
    /// server's first flight (its answer to the ClientHello, before anything about the
    /// peer is known), and, during the handshake, what follows the verification of the
    /// peer's certificate once it was accepted outright, or, on a client whose offered
    /// session the policy accepts, what it writes before any verification (in a resumed
    /// handshake its Finished: the core then judges the resumption by the same rule; in a
    /// full one at most a ChangeCipherSpec or a second ClientHello). Never after the
    /// handshake (nothing there needs it).
    fn may_send_through(&self) -> SendThrough {
        if !self.handshaking || self.failed.is_some() {
            return SendThrough::Never;
        }
        if self.stream.ssl().is_server() && self.stream.get_ref().produced() == 0 {
            return SendThrough::FirstFlight;
        }
        SendThrough::OnceAccepted(Arc::clone(&self.state))
    }

    /// Whether another `SSL_read` could only answer `WANT_READ`: OpenSSL holds no input
    /// (no record or part of one read ahead, no plaintext of a record left) and its
    /// transport can bring none (the socket lent by `read_tls` was read already, or none
    /// is lent). Each needless `SSL_read` costs a round through the record layer, and,
    /// with `SSL_MODE_RELEASE_BUFFERS`, the allocation and release of its read buffer.
    fn input_exhausted(&self) -> bool {
        let ssl = self.stream.ssl();
        let processed = if self.inside > 0 {
            // OpenSSL holds the plaintext of a record kept for `read_plain`
            // (`SSL_has_pending` says so too): what counts is the input behind it.
            !self.raw_left()
        } else {
            !sslsocket_openssl_ext::has_pending(ssl) && ssl.pending() == 0
        };
        processed && (!self.lending || self.stream.get_ref().reader_reached())
    }

    /// Decrypts every complete record taken in so far, as rustls does: bytes the session
    /// accepted are never left undecrypted, so `plaintext_len` counts everything that
    /// arrived and a close_notify behind application data is seen before the end of TCP.
    /// The plaintext is bounded by refusing input (`wants_read`), not by leaving records
    /// unread. After large messages, each record is decrypted in place in OpenSSL's
    /// record buffer first (`SSL_peek`): the last one, when no input follows it, stays
    /// there (`inside`) and `read_plain` copies it straight into the caller's buffer; the
    /// others are copied into `plain`.
    ///
    /// `held`: the plaintext held before this input; `direct`: what of it went straight
    /// to the reader (both size the next buffer).
    fn read_records(&mut self, held: usize, direct: usize) -> Result<(), TlsFailure> {
        // After small messages, each record goes straight into `plain` (one `SSL_read`
        // costs less than a peek and a read for a few bytes); after large ones, the last
        // record is kept (one copy of it saved).
        let keep_last = self.last_plain > SMALL_PLAIN;
        self.count_records(keep_last);
        let keep_last = keep_last && self.counting;
        while !self.peer_closed {
            if self.inside == 0 && keep_last {
                match self.stream.ssl_peek(&mut [0u8; 1]) {
                    Ok(0) => break,
                    Ok(_) => {
                        self.inside = self.stream.ssl().pending();
                        if self.inside > 0 && !self.raw_left() {
                            // The last record that arrived: left where it is.
                            break;
                        }
                    }
                    Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                        self.peer_closed = true;
                        break;
                    }
                    Err(e) if e.code() == ErrorCode::WANT_READ => break,
                    Err(e) => return Err(self.failure(&e)),
                }
            }
            // More input follows this record: move its plaintext aside.
            if self.plain_start > 0 && self.plain_start >= self.plain.len() / 2 {
                // Move the unread rest to the front rather than grow.
                self.plain.drain(..self.plain_start);
                self.plain_start = 0;
            }
            if self.plain.capacity() == 0 {
                // After small messages, room for one more; else room for a record and the
                // next one, so that the second is not decrypted into a buffer that has to
                // grow (and move the first). A larger record than the room is copied in
                // parts (OpenSSL keeps the rest), the buffer growing after the first.
                // The small buffer is the thread's spare one, when it has one.
                if self.last_plain <= SMALL_PLAIN {
                    self.plain = spare::take(Slot::Plain);
                    self.plain.reserve(SMALL_PLAIN);
                } else {
                    self.plain = Vec::with_capacity(2 * RECORD_PLAIN);
                }
            }
            let room = self.plain.capacity() - self.plain.len();
            // Into the room there is (OpenSSL keeps the rest of a record for the next
            // call), else a record's worth more.
            let max = if room >= MIN_ROOM || self.plain.is_empty() {
                room
            } else {
                RECORD_PLAIN
            };
            let result = self.stream.read_into(&mut self.plain, max);
            self.inside = self.stream.ssl().pending();
            match result {
                Ok(0) => break,
                Ok(_) if self.inside == 0 && self.input_exhausted() => break,
                Ok(_) => {}
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => self.peer_closed = true,
                Err(e) if e.code() == ErrorCode::WANT_READ => break,
                Err(e) => return Err(self.failure(&e)),
            }
        }
        let decrypted = direct + (self.plain_held() + self.inside).saturating_sub(held);
        if decrypted > 0 {
            self.last_plain = decrypted;
        }
        if self.plain_held() == 0 {
            // Nothing decrypted into it: do not keep the room reserved for it.
            self.release_plain();
        }
        Ok(())
    }

    /// Encrypts up to `OUTGOING_LIMIT` bytes of `data` (nothing while the handshake runs
    /// or that much output waits). `reserve`: make room in the output for all of its
    /// records first, so it does not grow record by record (not when a writer is lent:
    /// then the records usually go straight to it).
    fn encrypt(&mut self, data: &[u8], reserve: bool) -> io::Result<usize> {
        if self.handshaking || data.is_empty() || self.output().len() >= OUTGOING_LIMIT {
            return Ok(0);
        }
        let take = data.len().min(OUTGOING_LIMIT);
        if reserve {
            let records = take.div_ceil(RECORD_PLAIN);
            self.stream
                .get_mut()
                .reserve(take + records * RECORD_OVERHEAD);
        }
        match self.stream.ssl_write(data.get(..take).unwrap_or_default()) {
            Ok(n) => Ok(n),
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(0),
            Err(e) => Err(io::Error::other(format!("TLS error: {e}"))),
        }
    }
}

/// The `Ssl` of one connection: its verify callback, its state for the context's callbacks.
fn new_ssl(
    engine: &Engine,
    configuration: &SslConfiguration,
    policy: &VerifyPolicy,
    client_of: Option<&str>,
    sessions: Option<(Arc<ClientSessions>, String)>,
) -> Result<(Ssl, Arc<ConnectionState>), ConfigError> {
    let server = client_of.is_none();
    let mut ssl =
        Ssl::new(&engine.context).map_err(|e| ConfigError::new(format!("openssl session: {e}")))?;
    let ocsp = !server && configuration.ocsp_stapling_enabled();
    if ocsp {
        ssl.set_status_type(StatusType::OCSP)
            .map_err(|e| ConfigError::new(format!("OCSP stapling request: {e}")))?;
    }
    let state = ConnectionState::new(
        policy.clone(),
        configuration.pinned_public_keys().to_vec(),
        ocsp,
        sessions,
        Arc::clone(&engine.anchors),
        Arc::clone(&engine.peers),
        client_of,
    );
    if let Some(outcomes) = engine.server_outcomes.as_ref().filter(|_| server) {
        state.set_server_outcomes(Arc::clone(outcomes));
    }
    ssl.set_ex_data(connection_index()?, Arc::clone(&state));
    // The callback finds the state in the ex data just set (no closure per connection).
    sslsocket_openssl_ext::set_verify_from_ex_data::<ConnectionState>(
        &mut ssl,
        verify_mode(configuration, server),
    );
    Ok((ssl, state))
}

/// An accepted connection closed by the application without close_notify (its `abort`, a
/// dropped socket) keeps its session, as on rustls and as the README says (round 35:
/// OpenSSL made it unresumable). A connection that failed, or whose peer was not
/// accepted, keeps OpenSSL's rule.
impl Drop for OpensslSession {
    fn drop(&mut self) {
        if !self.handshaking && self.failed.is_none() && self.state.record().is_accepted() {
            self.stream.keep_session_on_free();
        }
    }
}

impl TlsSession for OpensslSession {
    fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        self.read_tls_into(rd, &mut []).map(|(n, _)| n)
    }

    fn read_tls_into(&mut self, rd: &mut dyn Read, dst: &mut [u8]) -> io::Result<(usize, usize)> {
        self.read_lent(Socket::Reader(rd), dst).result
    }

    fn read_tls_duplex(&mut self, io: &mut dyn Duplex, dst: &mut [u8]) -> DuplexRead {
        self.read_lent(Socket::Duplex(io), dst)
    }

    fn process(&mut self) -> Result<(), TlsFailure> {
        if std::mem::take(&mut self.advanced) {
            return match &self.failed {
                Some(failure) => Err(TlsFailure::clone(failure)),
                None => Ok(()),
            };
        }
        if self.failed.is_none() && !self.handshaking && self.input_exhausted() {
            // Every record that arrived was decrypted by `read_tls` (no input is ever
            // held back), so with nothing pending there is nothing to process.
            return Ok(());
        }
        self.advance()
    }

    fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        let transport = self.stream.get_mut();
        let n = wr.write(transport.output())?;
        transport.consume(n);
        Ok(n)
    }

    fn wants_write(&self) -> bool {
        !self.output().is_empty()
    }

    fn wants_read(&self) -> bool {
        !self.peer_closed && self.failed.is_none() && self.plaintext_len() < PLAIN_LIMIT
    }

    fn tls_bytes_to_write(&self) -> usize {
        self.output().len()
    }

    fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        self.encrypt(data, true)
    }

    fn write_plain_to(&mut self, data: &[u8], wr: &mut dyn Write) -> io::Result<(usize, usize)> {
        if !self.output().is_empty() {
            // What waits goes first: through the output.
            return Ok((self.encrypt(data, true)?, 0));
        }
        if data.len() > RECORD_PLAIN {
            // More than one record: OpenSSL hands its records to the transport one at a
            // time, and with TCP_NODELAY each write is a segment of its own (4 per 64 KiB,
            // each waking the peer; 0.7x the openssl crate's bulk throughput, which leaves
            // Nagle on, at 1.7x its system time). So they are gathered in the output and
            // go in one write: one copy of the ciphertext, a quarter of the segments.
            let n = self.encrypt(data, true)?;
            // An error leaves the records waiting; the next `write_tls` meets it again.
            let sent = self.write_tls(wr).unwrap_or(0);
            return Ok((n, sent));
        }
        let transport = self.stream.get_ref();
        let (id, before) = (transport.id(), transport.written_through());
        let n = with_writer(id, wr, || self.encrypt(data, false))?;
        let sent = self.stream.get_ref().written_through().wrapping_sub(before);
        Ok((n, usize::try_from(sent).unwrap_or(usize::MAX)))
    }

    fn read_plain(&mut self, buf: &mut [u8]) -> PlainRead {
        let available = self.plain_held();
        if available == 0 {
            if self.inside > 0 && !buf.is_empty() {
                // The record kept in OpenSSL's buffer, straight into the caller's.
                return match self.stream.ssl_read(buf) {
                    Ok(n) => {
                        self.inside = self.stream.ssl().pending();
                        PlainRead::Data(n)
                    }
                    Err(e) => {
                        self.inside = 0;
                        let failure = self.failure(&e);
                        self.failed.get_or_insert(Box::new(failure));
                        PlainRead::WouldBlock
                    }
                };
            }
            return if self.peer_closed && self.inside == 0 {
                PlainRead::Closed
            } else {
                PlainRead::WouldBlock
            };
        }
        let n = available.min(buf.len());
        let end = self.plain_start + n;
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), self.plain.get(self.plain_start..end)) {
            dst.copy_from_slice(src);
        }
        self.plain_start = end;
        if self.plain_start >= self.plain.len() {
            // Drained: give the buffer up (an idle connection holds none).
            self.release_plain();
        }
        PlainRead::Data(n)
    }

    fn plaintext_len(&self) -> usize {
        self.plain_held() + self.inside
    }

    fn is_handshaking(&self) -> bool {
        self.handshaking
    }

    fn received_close_notify(&self) -> bool {
        self.peer_closed
    }

    fn requested_server_name(&self) -> Option<String> {
        let ssl = self.stream.ssl();
        ssl.is_server()
            .then(|| ssl.servername(openssl::ssl::NameType::HOST_NAME))
            .flatten()
            .map(str::to_string)
    }

    fn negotiated(&self) -> Option<Negotiated> {
        if self.handshaking {
            return None;
        }
        let ssl = self.stream.ssl();
        let version = match ssl.version2()? {
            v if v == SslVersion::TLS1_3 => TlsVersion::Tls13,
            v if v == SslVersion::TLS1_2 => TlsVersion::Tls12,
            v if v == SslVersion::TLS1_1 => TlsVersion::Tls11,
            v if v == SslVersion::TLS1 => TlsVersion::Tls10,
            _ => return None,
        };
        let cipher = ssl.current_cipher()?;
        let suite = cipher.standard_name().unwrap_or(cipher.name());
        Some(Negotiated {
            protocol: SslProtocol::from_version(version),
            cipher_suite: Cow::Borrowed(suite),
            authenticated_by_key: self.external_psk || suite.contains("PSK"),
            key_exchange_group: key_exchange_group(ssl),
            alpn: ssl.selected_alpn_protocol().map(<[u8]>::to_vec),
            resumed: ssl.session_reused() && !self.external_psk,
            server_name: ssl
                .is_server()
                .then(|| ssl.servername(openssl::ssl::NameType::HOST_NAME))
                .flatten()
                // DNS names compare without case and without a trailing dot (RFC 6066
                // sends none); rustls hands them over lowercased and without it, and both
                // backends report the name the same way.
                .map(|name| name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()),
        })
    }

    fn peer_certificate_chain(&self) -> Vec<SslCertificate> {
        let ssl = self.stream.ssl();
        let mut chain = Vec::new();
        // The client's list starts with the leaf; the server's leaves it out.
        if ssl.is_server() {
            if let Some(leaf) = ssl.peer_certificate() {
                chain.push(self.state.certificate(&leaf));
            }
        }
        if let Some(stack) = ssl.peer_cert_chain() {
            chain.extend(stack.iter().map(|cert| self.state.certificate(cert)));
        }
        chain
    }

    fn poll_notice(&mut self) -> Option<BackendNotice> {
        // One at a time from the state's queue, in order (the session keeps no queue).
        self.state.next_notice()
    }

    fn close(&mut self) {
        if self.close_sent {
            return;
        }
        self.close_sent = true;
        // The close_notify sent is reported by the info callback.
        let _ = self.stream.shutdown();
    }

    fn take_verification(&mut self) -> Option<Verification> {
        self.state.record().take()
    }

    fn set_policy(&mut self, policy: VerifyPolicy) {
        self.state.set_policy(policy);
    }

    fn resumed_outcome(&self) -> Option<Outcome> {
        self.state.record().offered()
    }

    fn confirm_peer(&mut self, outcome: Option<Outcome>) {
        if let Some((outcomes, key)) = self.state.server_record() {
            match &outcome {
                Some(outcome) => outcomes.record(key, outcome.clone()),
                None => {
                    outcomes.remove(key);
                    sslsocket_openssl_ext::remove_own_session(self.stream.ssl());
                    if self.stream.ssl().session_reused() {
                        self.state.forget_resumed_server_session();
                    }
                }
            }
        }
        self.state.confirm(outcome);
    }

    fn can_export_sessions(&self) -> bool {
        true
    }

    fn session_ticket(&self) -> Option<Vec<u8>> {
        if !self.persist_sessions {
            return None;
        }
        self.state.session_der()
    }

    fn export_keying_material(
        &self,
        len: usize,
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>, TlsFailure> {
        let label = std::str::from_utf8(label).map_err(|_| {
            TlsFailure::internal(
                "exporting keying material: the openssl backend needs a UTF-8 label",
            )
        })?;
        let mut out = vec![0u8; len];
        self.stream
            .ssl()
            .export_keying_material(&mut out, label, context)
            .map_err(|e| TlsFailure::internal(format!("exporting keying material: {e}")))?;
        Ok(out)
    }
}

/// The group of the ephemeral key exchange, by our names.
fn key_exchange_group(ssl: &SslRef) -> Option<Cow<'static, str>> {
    fn described<T: openssl::pkey::HasPublic>(
        key: &openssl::pkey::PKeyRef<T>,
    ) -> (Id, Option<Nid>, u32) {
        let curve = key.ec_key().ok().and_then(|k| k.group().curve_name());
        (key.id(), curve, key.bits())
    }
    let described = if ssl.is_server() {
        ssl.tmp_key().ok().map(|key| described(&key))
    } else {
        ssl.peer_tmp_key().ok().map(|key| described(&key))
    };
    let Some((id, curve, bits)) = described else {
        if ssl.session_reused() && ssl.version2() != Some(openssl::ssl::SslVersion::TLS1_3) {
            // A resumed TLS 1.2 session exchanges no key: no group (the negotiated group's
            // NID would still name the original session's; round 34), as on rustls.
            return None;
        }
        // A TLS 1.2 server's temporary key is freed once the key exchange is done: the
        // negotiated group's NID says which it was.
        return sslsocket_openssl_ext::negotiated_group_nid(ssl)
            .and_then(group_of_nid)
            .map(Cow::Borrowed);
    };
    // Finite-field groups are named groups (RFC 7919) only in TLS 1.3; a TLS 1.2 DHE
    // exchange uses whatever parameters the server chose, no group.
    let tls13 = ssl.version2() == Some(openssl::ssl::SslVersion::TLS1_3);
    let name = match (id, curve) {
        (Id::X25519, _) => "X25519",
        (Id::X448, _) => "X448",
        (_, Some(Nid::X9_62_PRIME256V1)) => "secp256r1",
        (_, Some(Nid::SECP384R1)) => "secp384r1",
        (_, Some(Nid::SECP521R1)) => "secp521r1",
        (Id::DH, _) if tls13 => match bits {
            2048 => "ffdhe2048",
            3072 => "ffdhe3072",
            4096 => "ffdhe4096",
            6144 => "ffdhe6144",
            8192 => "ffdhe8192",
            _ => return None,
        },
        _ => return None,
    };
    Some(Cow::Borrowed(name))
}

/// The name of an elliptic-curve group by its NID (finite-field groups, named only in
/// TLS 1.3, come from the key; see [`key_exchange_group`]).
fn group_of_nid(nid: i32) -> Option<&'static str> {
    /// `NID_X25519` and `NID_X448` (obj_mac.h), which the openssl crate does not name.
    const NID_X25519: i32 = 1034;
    const NID_X448: i32 = 1035;
    Some(match nid {
        NID_X25519 => "X25519",
        NID_X448 => "X448",
        _ if nid == Nid::X9_62_PRIME256V1.as_raw() => "secp256r1",
        _ if nid == Nid::SECP384R1.as_raw() => "secp384r1",
        _ if nid == Nid::SECP521R1.as_raw() => "secp521r1",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::openssl::context;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn sessions() -> Result<(OpensslSession, OpensslSession), Box<dyn std::error::Error>> {
        let (server, client) = crate::backend::test_pki::configurations()?;
        let policy = VerifyPolicy::default();
        let client_session = OpensslSession::client(
            &*context::client_engine(&client)?,
            &client,
            Some("localhost"),
            &policy,
        )?;
        let server_session =
            OpensslSession::server(&*context::server_engine(&server)?, &server, &policy)?;
        Ok((client_session, server_session))
    }

    /// Moves what `from` has to send into `to`, reading `to`'s plaintext (`chunk` bytes
    /// at a time) into `received` whenever it takes no more input; whether anything moved.
    fn one_way(
        from: &mut OpensslSession,
        to: &mut OpensslSession,
        chunk: usize,
        received: &mut Vec<u8>,
    ) -> Result<bool, Box<dyn std::error::Error>> {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire)?;
        }
        let mut input = wire.as_slice();
        for _ in 0..100_000 {
            if input.is_empty() {
                break;
            }
            if to.wants_read() {
                to.read_tls(&mut input)?;
                to.process()?;
            } else {
                read_pieces(to, chunk, received);
            }
        }
        Ok(!wire.is_empty())
    }

    /// Reads what `session` holds, `chunk` bytes at a time.
    fn read_pieces(session: &mut OpensslSession, chunk: usize, out: &mut Vec<u8>) {
        let mut buf = vec![0u8; chunk];
        for _ in 0..100_000 {
            match session.read_plain(&mut buf) {
                PlainRead::Data(n) if n > 0 => out.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
    }

    fn handshake(client: &mut OpensslSession, server: &mut OpensslSession) -> TestResult {
        let mut nothing = Vec::new();
        for _ in 0..32 {
            let moved = one_way(client, server, 1, &mut nothing)?
                | one_way(server, client, 1, &mut nothing)?;
            if !moved {
                assert!(nothing.is_empty());
                return Ok(());
            }
        }
        Err("the handshake did not settle".into())
    }

    fn holds_no_plaintext_buffer(session: &OpensslSession) -> bool {
        session.plain.capacity() == 0 && session.plaintext_len() == 0
    }

    #[test]
    fn records_of_many_sizes_read_in_pieces_arrive_intact_and_leave_no_buffer() -> TestResult {
        let (mut client, mut server) = sessions()?;
        handshake(&mut client, &mut server)?;
        assert!(!client.is_handshaking() && !server.is_handshaking());
        let sizes = [
            1, 5, 64, 100, 1000, 1023, 1024, 1025, 2047, 3000, 16_384, 40_000, 7, 64,
        ];
        for (round, &size) in sizes.iter().enumerate() {
            for chunk in [1, 3, 64, 1000, 65_536] {
                if size > 5_000 && chunk < 64 {
                    continue;
                }
                // Some messages in several records that arrive together.
                let message: Vec<u8> = (0..size).map(|i| (i * 31 + round + chunk) as u8).collect();
                let mut sent = 0;
                for part in message.chunks(size.div_ceil(3)) {
                    sent += client.write_plain(part)?;
                }
                assert_eq!(sent, size);
                let mut received = Vec::new();
                assert!(one_way(&mut client, &mut server, chunk, &mut received)?);
                read_pieces(&mut server, chunk, &mut received);
                assert_eq!(received.len(), size, "size {size}, chunk {chunk}");
                assert!(
                    received == message,
                    "size {size}, chunk {chunk}: bytes differ"
                );
                assert_eq!(server.read_plain(&mut [0u8; 4]), PlainRead::WouldBlock);
                assert!(
                    holds_no_plaintext_buffer(&server),
                    "size {size}, chunk {chunk}: the server keeps a plaintext buffer"
                );
            }
        }
        // A small message after small ones: decrypted into the thread's spare buffer,
        // which is spare again once it is read.
        for _ in 0..2 {
            let mut received = Vec::new();
            client.write_plain(b"ping")?;
            one_way(&mut client, &mut server, 64, &mut received)?;
            read_pieces(&mut server, 3, &mut received);
            assert_eq!(received, b"ping");
        }
        assert!(holds_no_plaintext_buffer(&server));
        assert!(spare::take(Slot::Plain).capacity() > 0);
        assert!(holds_no_plaintext_buffer(&client));
        Ok(())
    }
}
