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

mod events;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;

pub use crate::verify::{Decision, PreSharedKeyAuthenticator, SslHooks, Verdict};
pub use events::SslEvent;

use crate::backend::{
    self, Backend, BackendNotice, Negotiated, PlainRead, SessionSetup, TlsSession,
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
    plain_in: VecDeque<u8>,
    plain_out: VecDeque<u8>,
    early: VecDeque<u8>,
    queued: VecDeque<u8>,
    events: VecDeque<SslEvent>,
    error: Option<Error>,
    failed: bool,
    encrypted: bool,
    eof: bool,
    clean_close: bool,
    truncated: bool,
    closing: bool,
    close_notify_queued: bool,
    read_buffer_size: usize,
    unflushed_plain: usize,
    discarded_plaintext: usize,
    negotiated: Option<Negotiated>,
    peer_chain: Vec<SslCertificate>,
    handshake_errors: Vec<SslError>,
    errors_reported: bool,
    paused: bool,
    encrypted_before_close: bool,
    withhold_output: bool,
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
            refused: false,
            ocsp_responses: Vec::new(),
            line_scanned: 0,
            ignore_all: false,
            ignore_rules: Vec::new(),
            pause_mode: PauseMode::PauseNever,
            peer_name: None,
            peer_verify_name: None,
            plain_in: VecDeque::new(),
            plain_out: VecDeque::new(),
            early: VecDeque::new(),
            queued: VecDeque::new(),
            events: VecDeque::new(),
            error: None,
            failed: false,
            encrypted: false,
            eof: false,
            clean_close: false,
            truncated: false,
            closing: false,
            close_notify_queued: false,
            read_buffer_size: 0,
            unflushed_plain: 0,
            discarded_plaintext: 0,
            negotiated: None,
            peer_chain: Vec::new(),
            handshake_errors: Vec::new(),
            errors_reported: false,
            paused: false,
            encrypted_before_close: false,
            withhold_output: false,
        }
    }

    // ----- configuration -----------------------------------------------------------

    /// The configuration the next handshake uses.
    pub fn configuration(&self) -> &SslConfiguration {
        &self.configuration
    }

    /// Replaces the configuration; refused once a handshake has started.
    pub fn set_configuration(&mut self, configuration: SslConfiguration) -> Result<(), Error> {
        if self.session.is_some() {
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
        if self.session.is_some() {
            return Err(ApiMisuse(
                "the configuration cannot change once encryption has started".into(),
            )
            .into());
        }
        Ok(&mut self.configuration)
    }

    /// Installs the hooks called inside the handshake.
    pub fn set_hooks(&mut self, hooks: Arc<dyn SslHooks>) {
        self.hooks = Some(hooks);
        self.policy_changed();
    }

    /// Dangerous: accept every verification error of the next handshake (Qt's
    /// `ignoreSslErrors()`). Errors are still collected and reported.
    pub fn ignore_ssl_errors(&mut self) {
        self.ignore_all = true;
        self.policy_changed();
    }

    /// Forgets `ignore_ssl_errors()` and any ignore list.
    pub fn clear_ignored_ssl_errors(&mut self) {
        self.ignore_all = false;
        self.ignore_rules.clear();
        self.policy_changed();
    }

    /// Accept exactly these errors (kind and certificate), and no others (Qt's
    /// `ignoreSslErrors(list)`); a later call replaces the list.
    pub fn ignore_ssl_errors_list(&mut self, errors: &[SslError]) {
        self.ignore_ssl_error_rules(errors.iter().cloned().map(IgnoreRule::Exact).collect());
    }

    /// Accept the errors these rules cover; a later call replaces the rules.
    pub fn ignore_ssl_error_rules(&mut self, rules: Vec<IgnoreRule>) {
        self.ignore_rules = rules;
        self.policy_changed();
    }

    /// Sets the pause mode (Qt's `setPauseMode`).
    pub fn set_pause_mode(&mut self, mode: PauseMode) {
        self.pause_mode = mode;
        self.policy_changed();
    }

    /// The pause mode.
    pub fn pause_mode(&self) -> PauseMode {
        self.pause_mode
    }

    /// Verify the peer's certificate against `name` instead of the host connected to.
    pub fn set_peer_verify_name(&mut self, name: impl Into<String>) {
        self.peer_verify_name = Some(name.into());
    }

    /// The name set with `set_peer_verify_name`.
    pub fn peer_verify_name(&self) -> Option<&str> {
        self.peer_verify_name.as_deref()
    }

    /// Caps the decrypted bytes buffered (0: the core's own bound of 1 MiB). When the
    /// buffer is full the core stops asking for input, which pushes back on the peer.
    pub fn set_read_buffer_size(&mut self, size: usize) {
        self.read_buffer_size = size;
    }

    /// The read buffer size (0 = not set).
    pub fn read_buffer_size(&self) -> usize {
        self.read_buffer_size
    }

    // ----- state -------------------------------------------------------------------

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
        self.encrypted && !self.failed
    }

    /// Whether the last connection's handshake finished, even if it has closed since.
    pub fn was_encrypted(&self) -> bool {
        self.encrypted || self.encrypted_before_close
    }

    /// Whether a handshake is running.
    pub fn is_handshaking(&self) -> bool {
        !self.failed && self.session.as_ref().is_some_and(|s| s.is_handshaking())
    }

    /// The last error, if any (Qt's `error()` is its `socket_error()`).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Qt's `error()`.
    pub fn socket_error(&self) -> SocketError {
        self.error
            .as_ref()
            .map_or(SocketError::UnknownSocketError, Error::socket_error)
    }

    /// Qt's `errorString()`: "Unknown error" when nothing failed.
    pub fn error_string(&self) -> String {
        self.error
            .as_ref()
            .map_or_else(|| "Unknown error".to_string(), ToString::to_string)
    }

    /// The error that ended the connection, if it failed.
    pub fn failure(&self) -> Option<&Error> {
        if self.failed {
            self.error.as_ref()
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
    pub fn discarded_plaintext_bytes(&self) -> usize {
        self.discarded_plaintext
    }

    // ----- connection lifecycle (driver inputs) -------------------------------------

    /// The driver changed the TCP state (host lookup, connecting, connected, ...).
    pub fn handle_state(&mut self, state: SocketState) {
        if self.state == state {
            return;
        }
        // A new connection starts at host lookup (or at once when a connected socket is
        // adopted); what was written while it was being made is kept.
        let new_connection = state == SocketState::HostLookupState
            || (state == SocketState::ConnectedState
                && self.state == SocketState::UnconnectedState);
        if new_connection {
            self.reset_connection();
        }
        self.state = state;
        self.push(SslEvent::StateChanged(state));
        if state == SocketState::ConnectedState {
            self.push(SslEvent::Connected);
        }
    }

    /// The driver resolved the host name.
    pub fn handle_host_found(&mut self) {
        self.push(SslEvent::HostFound);
    }

    /// The driver could not connect (or the connection failed outside TLS).
    pub fn handle_io_error(&mut self, error: Error) {
        self.fail(error);
    }

    /// Starts a client handshake on a connected socket (Qt's `startClientEncryption`).
    /// `peer_name` is the host connected to; `set_peer_verify_name` overrides it.
    ///
    /// Plaintext received but not read before this call is discarded, never fed to TLS nor
    /// handed out afterwards (see [`discarded_plaintext_bytes`](Self::discarded_plaintext_bytes)).
    pub fn start_client_encryption(&mut self, peer_name: &str) -> Result<(), Error> {
        self.peer_name = Some(peer_name.to_string());
        self.start_encryption(SslMode::SslClientMode)
    }

    /// Starts a server handshake on a connected socket (Qt's `startServerEncryption`).
    pub fn start_server_encryption(&mut self) -> Result<(), Error> {
        self.start_encryption(SslMode::SslServerMode)
    }

    fn start_encryption(&mut self, mode: SslMode) -> Result<(), Error> {
        if self.state != SocketState::ConnectedState {
            return Err(ApiMisuse("cannot start a handshake when not connected".into()).into());
        }
        if self.mode != SslMode::UnencryptedMode || self.session.is_some() {
            return Err(
                ApiMisuse("encryption has already started on this connection".into()).into(),
            );
        }
        let Some(backend) = self.backend.clone().or_else(backend::registry::active) else {
            return Err(ConfigError::new("no TLS backend is available").into());
        };
        if let Some(hooks) = &self.hooks {
            if !backend
                .supported_features()
                .contains(&backend::SupportedFeature::Psk)
            {
                // Qt asks for a pre-shared key only when the backend can use one; an
                // application that supplies one to a backend that cannot gets a clear
                // error instead of a handshake failing for another reason.
                let mut probe = PreSharedKeyAuthenticator::new(b"", b"", 128, 64);
                hooks.pre_shared_key(&mut probe);
                if !probe.pre_shared_key().is_empty() {
                    let error: Error = ConfigError::new(format!(
                        "pre-shared keys are not supported by the {} backend",
                        backend.name()
                    ))
                    .into();
                    self.fail(error.clone());
                    return Err(error);
                }
            }
        }
        let effective = self.configuration.peer_verify_mode().effective(mode);
        let peer_name = self
            .peer_verify_name
            .clone()
            .or_else(|| self.peer_name.clone());
        let session = backend.new_session(SessionSetup {
            mode,
            configuration: &self.configuration,
            peer_name: peer_name.as_deref(),
            policy: self.policy(effective),
        });
        let session = match session {
            Ok(session) => session,
            Err(e) => {
                let error = Error::Config(e);
                self.fail(error.clone());
                return Err(error);
            }
        };
        self.discarded_plaintext += self.plain_in.len();
        self.plain_in.clear();
        self.line_scanned = 0;
        self.queued.append(&mut self.early);
        self.backend = Some(backend);
        self.effective_mode = effective;
        self.ignores_used = true;
        self.session = Some(session);
        self.mode = mode;
        self.push(SslEvent::ModeChanged(mode));
        Ok(())
    }

    /// The policy a handshake in verify mode `mode` is judged by: this socket's ignore
    /// list, hooks and pause mode as they are now.
    fn policy(&self, mode: PeerVerifyMode) -> VerifyPolicy {
        VerifyPolicy::new(mode)
            .with_ignore_all(self.ignore_all)
            .with_rules(self.ignore_rules.clone())
            .with_hooks(self.hooks.clone())
            .with_pause_mode(self.pause_mode)
            .with_interrupt_on_error(self.configuration.handshake_must_interrupt_on_error())
    }

    /// Hands a policy changed during a handshake to the session, when the peer has not
    /// been judged yet (afterwards only `resume()` reads it).
    fn policy_changed(&mut self) {
        if self.errors_reported {
            return;
        }
        let policy = self.policy(self.effective_mode);
        if let Some(session) = self.session.as_mut() {
            session.set_policy(policy);
        }
    }

    /// Graceful close (Qt's `disconnectFromHost`): every byte written so far is sent, then
    /// close_notify, then the driver closes TCP when [`is_closed`](Self::is_closed).
    pub fn disconnect_from_host(&mut self) {
        if matches!(self.state, SocketState::UnconnectedState) {
            return;
        }
        if self.is_handshaking()
            || (self.session.is_none() && self.state != SocketState::ConnectedState)
        {
            // Qt closes at once when the connection or handshake is not finished; pending
            // bytes are dropped.
            self.abort();
            return;
        }
        self.closing = true;
        if self.state != SocketState::ClosingState {
            self.state = SocketState::ClosingState;
            self.push(SslEvent::StateChanged(SocketState::ClosingState));
        }
        self.maybe_send_close_notify();
    }

    /// Immediate close (Qt's `abort`): pending writes are dropped, no close_notify.
    pub fn abort(&mut self) {
        if !self.handshake_errors.is_empty() || self.paused {
            // The application gave up on a peer with errors: nothing it sent may be resumed.
            if let Some(session) = self.session.as_mut() {
                session.confirm_peer(None);
            }
        }
        self.queued.clear();
        self.plain_out.clear();
        self.closing = false;
        self.handle_closed();
    }

    /// The driver closed the TCP connection.
    pub fn handle_closed(&mut self) {
        if self.state == SocketState::UnconnectedState {
            return;
        }
        self.state = SocketState::UnconnectedState;
        self.encrypted_before_close = self.encrypted;
        self.encrypted = false;
        self.push(SslEvent::StateChanged(SocketState::UnconnectedState));
        self.push(SslEvent::Disconnected);
    }

    /// Whether the driver should close TCP now: a requested close has sent everything,
    /// or the connection failed, or the peer finished and nothing is left to send.
    pub fn is_closed(&self) -> bool {
        if self.state == SocketState::UnconnectedState {
            return true;
        }
        let drained = !self.wants_write();
        if self.failed {
            return drained;
        }
        self.closing
            && self.queued.is_empty()
            && drained
            && (self.session.is_none() || self.close_notify_queued)
    }

    fn reset_connection(&mut self) {
        self.mode = SslMode::UnencryptedMode;
        self.session = None;
        self.plain_in.clear();
        self.plain_out.clear();
        self.early.clear();
        self.queued.clear();
        self.error = None;
        self.failed = false;
        self.encrypted = false;
        self.eof = false;
        self.clean_close = false;
        self.truncated = false;
        self.closing = false;
        self.close_notify_queued = false;
        self.unflushed_plain = 0;
        self.negotiated = None;
        self.peer_chain.clear();
        self.handshake_errors.clear();
        self.errors_reported = false;
        self.paused = false;
        self.encrypted_before_close = false;
        self.withhold_output = false;
        self.refused = false;
        self.ocsp_responses.clear();
        self.line_scanned = 0;
        if std::mem::take(&mut self.ignores_used) {
            // Qt: the ignore list holds for one handshake; a new connection starts clean.
            self.ignore_all = false;
            self.ignore_rules.clear();
        }
    }

    // ----- bytes from the wire -----------------------------------------------------

    /// Whether the core can take input now: connected, not at EOF, not failed, and the
    /// plaintext buffer has room (back-pressure).
    pub fn wants_read(&self) -> bool {
        if self.failed || self.eof || self.state == SocketState::UnconnectedState {
            return false;
        }
        let limit = if self.read_buffer_size == 0 {
            DEFAULT_PLAIN_LIMIT
        } else {
            self.read_buffer_size
        };
        match &self.session {
            Some(session) => {
                !session.received_close_notify()
                    && self.plain_in.len() + session.plaintext_len() < limit.max(1)
            }
            None => self.plain_in.len() < limit,
        }
    }

    /// Reads from `rd` (the socket) into the core, directly into the TLS engine when
    /// encrypted. `Ok(0)` means end of stream, which the core has recorded.
    pub fn read_from(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.plaintext_len() > 0 && !s.wants_read())
        {
            // The application has not read what arrived; move it aside so the engine can
            // take more (the copy only happens on this slow path).
            self.pull_all();
        }
        let n = match self.session.as_mut() {
            Some(session) => session.read_tls(rd)?,
            None => {
                let limit = if self.read_buffer_size == 0 {
                    DEFAULT_PLAIN_LIMIT
                } else {
                    self.read_buffer_size
                };
                let room = limit
                    .saturating_sub(self.plain_in.len())
                    .clamp(1, READ_CHUNK);
                let mut buf = vec![0u8; room];
                let n = rd.read(&mut buf)?;
                self.plain_in.extend(buf.get(..n).unwrap_or_default());
                if n > 0 {
                    self.push(SslEvent::ReadyRead);
                }
                n
            }
        };
        if n == 0 {
            self.handle_eof();
        } else {
            self.process();
        }
        Ok(n)
    }

    /// Feeds TLS (or plain) bytes to the core; returns how many were taken. The sans-IO
    /// form of [`read_from`](Self::read_from), for tests and custom loops.
    pub fn handle_tls(&mut self, mut data: &[u8]) -> Result<usize, Error> {
        let total = data.len();
        while !data.is_empty() && self.wants_read() {
            let before = data.len();
            match self.read_from(&mut data) {
                Ok(_) => {}
                Err(e) => return Err(Error::io("feeding TLS bytes", e)),
            }
            if data.len() == before {
                break;
            }
        }
        Ok(total - data.len())
    }

    /// The peer closed its side of TCP.
    pub fn handle_eof(&mut self) {
        if self.eof {
            return;
        }
        self.eof = true;
        match &self.session {
            None => {
                self.clean_close = true;
                self.push(SslEvent::ReadChannelFinished);
            }
            Some(session) => {
                if self.failed {
                } else if session.is_handshaking() {
                    self.fail(Error::closed_during_handshake());
                } else if session.received_close_notify() {
                    self.clean_close = true;
                    self.push(SslEvent::ReadChannelFinished);
                } else {
                    self.truncated = true;
                    let error = Error::Closed(
                        "the remote host closed the connection without close_notify; the data may be truncated".into(),
                    );
                    self.error = Some(error);
                    self.push(SslEvent::ReadChannelFinished);
                    self.push(SslEvent::ErrorOccurred(SocketError::RemoteHostClosedError));
                }
            }
        }
        if !self.wants_write() || self.failed {
            self.handle_closed();
        }
    }

    fn process(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let before = session.plaintext_len();
        let result = session.process();
        self.check_verification();
        self.drain_notices();
        if let Err(failure) = result {
            self.fail_tls(failure);
            return;
        }
        self.check_handshake_done();
        self.flush_queued();
        let after = self.session.as_ref().map_or(0, |s| s.plaintext_len());
        if after > before || (after > 0 && self.encrypted && before == 0) {
            self.push(SslEvent::ReadyRead);
        }
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.received_close_notify())
        {
            if !self.eof {
                // close_notify ends the peer's stream cleanly, whatever TCP does next.
                self.eof = true;
                self.clean_close = true;
                self.push(SslEvent::ReadChannelFinished);
            }
            if !self.closing {
                // The peer finished: answer with our close_notify once our data is out.
                self.closing = true;
                self.maybe_send_close_notify();
            }
        }
    }

    fn drain_notices(&mut self) {
        while let Some(notice) = self.session.as_mut().and_then(|s| s.poll_notice()) {
            self.push(match notice {
                BackendNotice::AlertSent(a) => SslEvent::AlertSent(a),
                BackendNotice::AlertReceived(a) => SslEvent::AlertReceived(a),
                BackendNotice::NewSessionTicket => SslEvent::NewSessionTicketReceived,
            });
        }
    }

    /// Takes the backend's verification of the peer, once per handshake, and reports it.
    fn check_verification(&mut self) {
        let Some(verification) = self.session.as_mut().and_then(|s| s.take_verification()) else {
            return;
        };
        let Verification {
            errors,
            chain,
            ocsp_responses,
            judgement,
        } = verification;
        self.errors_reported = true;
        self.handshake_errors = errors.clone();
        self.peer_chain = chain;
        self.ocsp_responses = ocsp_responses;
        self.paused = judgement.decision == Decision::Pause;
        self.refused = judgement.decision == Decision::Refuse;
        if let Some(first) = judgement.interrupted_on {
            self.push(SslEvent::HandshakeInterruptedOnError(first));
        }
        self.report_errors(errors);
    }

    /// Qt signals the errors whatever the mode; only failing depends on `VerifyPeer`.
    fn report_errors(&mut self, errors: Vec<SslError>) {
        if !errors.is_empty() {
            for error in &errors {
                self.push(SslEvent::PeerVerifyError(error.clone()));
            }
            self.push(SslEvent::SslErrors(errors));
        }
    }

    fn check_handshake_done(&mut self) {
        if self.encrypted || self.encrypted_before_close || self.failed || self.paused {
            return;
        }
        let Some(session) = self.session.as_ref() else {
            return;
        };
        if session.is_handshaking() {
            return;
        }
        if self.mode == SslMode::SslServerMode
            && !self.errors_reported
            && self.missing_client_certificate()
        {
            return;
        }
        let Some(session) = self.session.as_ref() else {
            return;
        };
        self.negotiated = session.negotiated();
        if self.negotiated.as_ref().is_some_and(|n| n.resumed) && !self.errors_reported {
            // A resumed handshake verifies nothing: the original outcome is reported again
            // and judged again by this socket's policy.
            if !self.judge_resumed() {
                return;
            }
        }
        if self.peer_chain.is_empty() {
            self.peer_chain = self
                .session
                .as_ref()
                .map(|s| s.peer_certificate_chain())
                .unwrap_or_default();
        }
        let outcome = Outcome {
            errors: self.handshake_errors.clone(),
            chain: self.peer_chain.clone(),
        };
        if let Some(session) = self.session.as_mut() {
            // Accepted: the sessions of this connection may now be resumed.
            session.confirm_peer(Some(outcome));
        }
        self.encrypted = true;
        self.push(SslEvent::Encrypted);
    }

    /// The original outcome of a resumed session, reported and judged again by this
    /// socket's policy (the stores offer only sessions it accepts, so a refusal here means
    /// the outcome went missing). Returns whether the connection may go on.
    fn judge_resumed(&mut self) -> bool {
        self.errors_reported = true;
        let original = self.session.as_ref().and_then(|s| s.resumed_outcome());
        let policy = self.policy(self.effective_mode);
        let accepted = match original {
            Some(original) => {
                let accepted = policy.may_resume(&original);
                self.handshake_errors = original.errors.clone();
                self.peer_chain = original.chain;
                self.report_errors(original.errors);
                accepted
            }
            // Nothing is known about the peer of this session: fail closed where the peer
            // must be verified.
            None => self.effective_mode != PeerVerifyMode::VerifyPeer,
        };
        if !accepted {
            self.refuse_peer();
        }
        accepted
    }

    /// The application's policy refused the peer after the backend let the handshake go
    /// on: nothing more goes out, the sessions are forgotten, the connection fails.
    fn refuse_peer(&mut self) {
        if let Some(session) = self.session.as_mut() {
            session.confirm_peer(None);
        }
        // The flight held back (our Finished) must never go out: the peer would complete
        // a handshake the application refused.
        self.withhold_output = true;
        self.refused = true;
        let names: Vec<String> = self
            .handshake_errors
            .iter()
            .map(|e| format!("{} ({})", e.error(), e.error_string()))
            .collect();
        let message = if names.is_empty() {
            "certificate verification failed: the resumed session's verification is unknown"
                .to_string()
        } else {
            format!("certificate verification failed: {}", names.join(", "))
        };
        self.fail(Error::Tls(TlsFailure::handshake(message)));
    }

    /// A server in `VerifyPeer` mode whose client sent no certificate although one was not
    /// strictly required (`missing_certificate_is_fatal` off): Qt reports
    /// `NoPeerCertificate`, and the handshake fails unless that error is ignored. Returns
    /// whether the connection failed.
    fn missing_client_certificate(&mut self) -> bool {
        let no_certificate = self
            .session
            .as_ref()
            .is_some_and(|s| s.peer_certificate_chain().is_empty());
        if self.effective_mode != PeerVerifyMode::VerifyPeer || !no_certificate {
            return false;
        }
        let error = SslError::new(SslErrorKind::NoPeerCertificate);
        let errors = vec![error];
        let covered = self.policy(self.effective_mode).covers_all(&errors);
        self.errors_reported = true;
        self.handshake_errors = errors.clone();
        self.report_errors(errors);
        if covered {
            return false;
        }
        self.refuse_peer();
        true
    }

    fn fail_tls(&mut self, mut failure: TlsFailure) {
        if self.refused {
            let names: Vec<String> = self
                .handshake_errors
                .iter()
                .map(|e| format!("{} ({})", e.error(), e.error_string()))
                .collect();
            failure.message = format!("certificate verification failed: {}", names.join(", "));
        }
        if self.peer_chain.is_empty() {
            if let Some(session) = &self.session {
                self.peer_chain = session.peer_certificate_chain();
            }
        }
        self.fail(Error::Tls(failure));
    }

    fn fail(&mut self, error: Error) {
        if self.failed {
            return;
        }
        self.failed = true;
        let kind = error.socket_error();
        self.error = Some(error);
        self.queued.clear();
        self.push(SslEvent::ErrorOccurred(kind));
    }

    // ----- bytes to the wire -------------------------------------------------------

    /// Whether bytes are waiting to be written to the wire (never while paused on errors:
    /// the next flight is withheld until `resume()`).
    pub fn wants_write(&self) -> bool {
        if self.paused || self.withhold_output {
            return false;
        }
        !self.plain_out.is_empty()
            || (self.session.is_none()
                && !self.early.is_empty()
                && self.state == SocketState::ConnectedState)
            || self.session.as_ref().is_some_and(|s| s.wants_write())
    }

    /// Whether the handshake is paused on verification errors (Qt's `PauseOnSslErrors`).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Continues a paused handshake (Qt's `resume()`): it completes if every error is now
    /// ignored (`ignore_ssl_errors*` called meanwhile), otherwise it fails.
    pub fn resume(&mut self) -> Result<(), Error> {
        if !self.paused {
            return Err(ApiMisuse("the handshake is not paused".into()).into());
        }
        self.paused = false;
        // Qt: after a pause only the ignore list decides (set meanwhile with
        // `ignore_ssl_errors*`); the hooks were asked already.
        let accepted = self
            .policy(self.effective_mode)
            .covers_all(&self.handshake_errors);
        if !accepted {
            self.refuse_peer();
            return Err(self.error.clone().unwrap_or_else(|| {
                Error::Tls(TlsFailure::handshake("certificate verification failed"))
            }));
        }
        self.check_handshake_done();
        self.flush_queued();
        if self.session.as_ref().is_some_and(|s| s.plaintext_len() > 0) {
            self.push(SslEvent::ReadyRead);
        }
        Ok(())
    }

    /// Qt's `continueInterruptedHandshake()`: the decision is taken synchronously by
    /// [`SslHooks::handshake_interrupted`]; after the fact there is nothing left to
    /// continue, so this only reports whether the handshake went on.
    pub fn continue_interrupted_handshake(&mut self) -> Result<(), Error> {
        match self.failure() {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }

    /// Writes pending bytes to `wr` (the socket); returns how many were written.
    pub fn write_to(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        if self.withhold_output || self.paused {
            return Ok(0);
        }
        if self.session.is_none() && !self.early.is_empty() {
            self.plain_out.append(&mut self.early);
        }
        let plain_pending = !self.plain_out.is_empty();
        let n = match self.session.as_mut() {
            // Plain text written before encryption started goes out first, as in Qt.
            Some(session) if !plain_pending => {
                let n = session.write_tls(wr)?;
                if n > 0 {
                    self.push(SslEvent::EncryptedBytesWritten(n));
                }
                n
            }
            _ => {
                let (front, _) = self.plain_out.as_slices();
                let n = wr.write(front)?;
                self.plain_out.drain(..n.min(self.plain_out.len()));
                if n > 0 {
                    self.push(SslEvent::BytesWritten(n));
                }
                n
            }
        };
        if self.unflushed_plain > 0 && !self.session.as_ref().is_some_and(|s| s.wants_write()) {
            let done = std::mem::take(&mut self.unflushed_plain);
            self.push(SslEvent::BytesWritten(done));
        }
        if self.session.is_some() {
            // The engine may take more queued plaintext now that its buffer drained.
            self.flush_queued();
        }
        Ok(n)
    }

    /// Appends every pending byte to `out`: the sans-IO form of [`write_to`](Self::write_to).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let mut total = 0;
        while self.wants_write() {
            match self.write_to(out) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    }

    // ----- application data --------------------------------------------------------

    /// Writes application data. Before the handshake ends it is queued and sent, in
    /// order, after `encrypted`; once encrypted it goes to TLS, which may take only part
    /// of it when its buffer is full (write the rest after the driver flushed).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        if let Some(failure) = self.failure() {
            return Err(failure.clone());
        }
        if self.closing || self.state == SocketState::UnconnectedState {
            return Err(ApiMisuse("the socket is not open for writing".into()).into());
        }
        if matches!(
            self.state,
            SocketState::HostLookupState | SocketState::ConnectingState
        ) {
            // Not connected yet: sent in plain text once connected, or encrypted after the
            // handshake if encryption starts first (`connect_to_host_encrypted`).
            self.early.extend(data);
            return Ok(data.len());
        }
        if self.session.is_none() && self.mode == SslMode::UnencryptedMode {
            self.plain_out.append(&mut self.early);
            self.plain_out.extend(data);
            return Ok(data.len());
        }
        if !self.encrypted || !self.queued.is_empty() {
            self.queued.extend(data);
            self.flush_queued();
            return Ok(data.len());
        }
        self.write_session(data)
    }

    fn write_session(&mut self, data: &[u8]) -> Result<usize, Error> {
        let Some(session) = self.session.as_mut() else {
            return Ok(0);
        };
        let n = session
            .write_plain(data)
            .map_err(|e| Error::io("encrypting", e))?;
        self.unflushed_plain += n;
        Ok(n)
    }

    fn flush_queued(&mut self) {
        if !self.encrypted || self.failed || self.paused || self.queued.is_empty() {
            return;
        }
        while !self.queued.is_empty() {
            let Some(session) = self.session.as_mut() else {
                return;
            };
            let (front, _) = self.queued.as_slices();
            let n = match session.write_plain(front) {
                Ok(n) => n,
                Err(e) => {
                    self.fail(Error::io("encrypting", e));
                    return;
                }
            };
            self.unflushed_plain += n;
            if n == 0 {
                break;
            }
            self.queued.drain(..n);
        }
        self.maybe_send_close_notify();
    }

    fn maybe_send_close_notify(&mut self) {
        if !self.closing || self.close_notify_queued || !self.queued.is_empty() || self.failed {
            return;
        }
        if let Some(session) = self.session.as_mut() {
            if session.is_handshaking() {
                return;
            }
            session.close();
            self.close_notify_queued = true;
            self.drain_notices();
        }
    }

    /// Reads decrypted (or, in plain mode, plain) data. Returns 0 when nothing is buffered.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        if !self.is_readable() {
            return 0;
        }
        let mut done = 0;
        while done < buf.len() && !self.plain_in.is_empty() {
            let (front, _) = self.plain_in.as_slices();
            let n = front.len().min(buf.len() - done);
            if let (Some(dst), Some(src)) = (buf.get_mut(done..done + n), front.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.plain_in.drain(..n);
            self.line_scanned = self.line_scanned.saturating_sub(n);
            done += n;
        }
        if let Some(session) = self.session.as_mut() {
            while done < buf.len() {
                match session.read_plain(buf.get_mut(done..).unwrap_or_default()) {
                    PlainRead::Data(0) | PlainRead::WouldBlock | PlainRead::Closed => break,
                    PlainRead::Data(n) => done += n,
                }
            }
        }
        if done > 0 && self.session.is_some() && !self.eof && !self.failed {
            // Room in the plaintext buffer: the engine may process input it had to hold.
            self.process();
        }
        done
    }

    /// Decrypted bytes ready to read (Qt's `bytesAvailable`).
    pub fn bytes_available(&self) -> usize {
        if !self.is_readable() {
            return 0;
        }
        self.plain_in.len() + self.session.as_ref().map_or(0, |s| s.plaintext_len())
    }

    /// Application bytes written but not yet handed to TLS / the wire (Qt's `bytesToWrite`).
    pub fn bytes_to_write(&self) -> usize {
        self.queued.len() + self.plain_out.len() + self.early.len()
    }

    /// TLS bytes waiting to be written (Qt's `encryptedBytesToWrite`).
    pub fn encrypted_bytes_to_write(&self) -> usize {
        self.session.as_ref().map_or(0, |s| s.tls_bytes_to_write())
    }

    /// TLS bytes received and not yet decrypted (Qt's `encryptedBytesAvailable`). The
    /// engine decrypts every complete record as it arrives, so this is 0 between calls.
    pub fn encrypted_bytes_available(&self) -> usize {
        0
    }

    /// Moves all decrypted bytes from the engine into the core's own buffer, so lines
    /// and peeks can see across record boundaries.
    fn pull_all(&mut self) {
        if !self.is_readable() {
            return;
        }
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match session.read_plain(&mut buf) {
                PlainRead::Data(n) if n > 0 => {
                    self.plain_in.extend(buf.get(..n).unwrap_or_default())
                }
                _ => break,
            }
        }
    }

    /// The buffered bytes at the front, moving decrypted bytes into the core's buffer when
    /// it is empty (for `BufRead`).
    pub fn fill_buf(&mut self) -> &[u8] {
        if !self.is_readable() {
            return &[];
        }
        if self.plain_in.is_empty() {
            if let Some(session) = self.session.as_mut() {
                let mut buf = [0u8; 16 * 1024];
                if let PlainRead::Data(n) = session.read_plain(&mut buf) {
                    self.plain_in.extend(buf.get(..n).unwrap_or_default());
                }
            }
        }
        self.plain_in.as_slices().0
    }

    /// Drops `amount` bytes from the front of the buffer (for `BufRead`).
    pub fn consume(&mut self, amount: usize) {
        let n = amount.min(self.plain_in.len());
        self.plain_in.drain(..n);
        self.line_scanned = self.line_scanned.saturating_sub(n);
        if n > 0 && self.session.is_some() && !self.eof && !self.failed {
            self.process();
        }
    }

    /// Whether a whole line (ending in `\n`) is buffered (Qt's `canReadLine`).
    pub fn can_read_line(&mut self) -> bool {
        self.pull_all();
        self.line_end().is_some()
    }

    /// The index just past the first `\n` buffered, scanning only bytes not scanned
    /// before (so polling `can_read_line` while a long line arrives stays linear).
    fn line_end(&mut self) -> Option<usize> {
        if !self.is_readable() {
            return None;
        }
        let start = self.line_scanned.min(self.plain_in.len());
        match self.plain_in.range(start..).position(|b| *b == b'\n') {
            Some(offset) => Some(start + offset + 1),
            None => {
                self.line_scanned = self.plain_in.len();
                None
            }
        }
    }

    /// Whether received data may be handed to the application: in plain mode, or once the
    /// peer was accepted (and still after the connection ended). Nothing received before
    /// acceptance (while paused, or from a peer that was then refused) is ever readable.
    fn is_readable(&self) -> bool {
        self.session.is_none() || self.encrypted || self.encrypted_before_close
    }

    /// Reads one line including its `\n`, at most `max` bytes (0 = no limit); without a
    /// whole line, what is buffered (Qt's `readLine`).
    pub fn read_line(&mut self, max: usize) -> Vec<u8> {
        self.pull_all();
        if !self.is_readable() {
            return Vec::new();
        }
        let limit = if max == 0 { usize::MAX } else { max };
        let end = self.line_end().unwrap_or(self.plain_in.len()).min(limit);
        let line: Vec<u8> = self.plain_in.drain(..end).collect();
        self.line_scanned = self.line_scanned.saturating_sub(end);
        if !line.is_empty() && self.session.is_some() && !self.eof && !self.failed {
            self.process();
        }
        line
    }

    /// Up to `max` buffered bytes, without consuming them (Qt's `peek`).
    pub fn peek(&mut self, max: usize) -> Vec<u8> {
        self.pull_all();
        if !self.is_readable() {
            return Vec::new();
        }
        self.plain_in.iter().take(max).copied().collect()
    }

    /// Whether nothing is buffered and nothing more can arrive (Qt's `atEnd`).
    pub fn at_end(&self) -> bool {
        self.bytes_available() == 0
            && (self.eof || self.failed || self.state == SocketState::UnconnectedState)
    }

    // ----- session information -----------------------------------------------------

    /// Every verification error of the last handshake, ignored or not (Qt's
    /// `sslHandshakeErrors`).
    pub fn ssl_handshake_errors(&self) -> &[SslError] {
        &self.handshake_errors
    }

    /// The peer's chain as it sent it, leaf first (kept after a failed handshake).
    pub fn peer_certificate_chain(&self) -> &[SslCertificate] {
        &self.peer_chain
    }

    /// The peer's certificate.
    pub fn peer_certificate(&self) -> Option<&SslCertificate> {
        self.peer_chain.first()
    }

    /// The negotiated protocol, `UnknownProtocol` before a handshake.
    pub fn session_protocol(&self) -> SslProtocol {
        self.negotiated
            .as_ref()
            .map_or(SslProtocol::UnknownProtocol, |n| n.protocol)
    }

    /// What the handshake settled on.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The negotiated cipher (Qt's `sessionCipher`).
    pub fn session_cipher(&self) -> Option<crate::cert::SslCipher> {
        let negotiated = self.negotiated.as_ref()?;
        let cipher =
            crate::cert::SslCipher::from_name(&negotiated.cipher_suite, negotiated.protocol)?;
        if cipher.authentication_method() == "PSK" {
            // The peer was authenticated by the key, not by a certificate.
            return Some(cipher);
        }
        let auth = match self
            .peer_chain
            .first()
            .or(self.configuration.local_certificate())
        {
            Some(cert) => cert.public_key_algorithm_name(),
            None => String::new(),
        };
        Some(cipher.with_session("ECDH", &auth))
    }

    /// Exports `len` bytes of keying material bound to this session (RFC 5705, RFC 8446
    /// §7.5); both ends get the same bytes for the same label and context.
    pub fn export_keying_material(
        &self,
        len: usize,
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>, Error> {
        match (&self.session, self.is_encrypted()) {
            (Some(session), true) => Ok(session.export_keying_material(len, label, context)?),
            _ => Err(
                ApiMisuse("keying material exists only once the handshake finished".into()).into(),
            ),
        }
    }

    /// The ALPN outcome (Qt's `nextProtocolNegotiationStatus`).
    pub fn next_protocol_negotiation_status(&self) -> NextProtocolNegotiationStatus {
        match self.next_negotiated_protocol() {
            Some(_) => NextProtocolNegotiationStatus::NextProtocolNegotiationNegotiated,
            None if self.was_encrypted()
                && !self.configuration.allowed_next_protocols().is_empty() =>
            {
                NextProtocolNegotiationStatus::NextProtocolNegotiationUnsupported
            }
            None => NextProtocolNegotiationStatus::NextProtocolNegotiationNone,
        }
    }

    /// The session as bytes, to resume it in another process (Qt's `sessionTicket()`).
    /// rustls 0.23 cannot serialize a session, so on that backend this is an
    /// `UnsupportedFeature`-style configuration error, never fake bytes; in-process
    /// resumption between sockets of one configuration works without it. The OpenSSL
    /// backend exports the last session of an accepted peer (DER) when
    /// `SslOptionDisableSessionPersistence` is off.
    pub fn session_ticket(&self) -> Result<Vec<u8>, Error> {
        if let Some(ticket) = self.session.as_ref().and_then(|s| s.session_ticket()) {
            return Ok(ticket);
        }
        let backend = self
            .backend_name()
            .or_else(backend::active_backend)
            .unwrap_or("active");
        let can_export = self
            .session
            .as_ref()
            .is_some_and(|s| s.can_export_sessions());
        let message = if can_export {
            "no session to export: none received, the peer was not accepted, or \
             SslOptionDisableSessionPersistence is on"
                .to_string()
        } else {
            format!("session export is not supported by the {backend} backend")
        };
        Err(ConfigError::new(message).into())
    }

    /// Imports a session exported by `session_ticket` (Qt's `setSessionTicket()`); not
    /// supported by the rustls backend (see `session_ticket`).
    pub fn set_session_ticket(&mut self, _ticket: &[u8]) -> Result<(), Error> {
        Err(ConfigError::new(format!(
            "session import is not supported by the {} backend",
            self.backend_name()
                .or_else(backend::active_backend)
                .unwrap_or("active")
        ))
        .into())
    }

    /// The stapled OCSP responses received and checked (client, with stapling enabled;
    /// Qt's `ocspResponses()`).
    pub fn ocsp_responses(&self) -> Vec<crate::ocsp::OcspResponse> {
        self.ocsp_responses.clone()
    }

    /// Whether the session was resumed (beyond Qt).
    pub fn is_session_resumed(&self) -> bool {
        self.negotiated.as_ref().is_some_and(|n| n.resumed)
    }

    /// The key exchange group that was used (Qt's `ephemeralServerKey`, by name).
    pub fn ephemeral_key_group(&self) -> Option<&str> {
        self.negotiated
            .as_ref()
            .and_then(|n| n.key_exchange_group.as_deref())
    }

    /// The ALPN protocol agreed on.
    pub fn next_negotiated_protocol(&self) -> Option<&[u8]> {
        self.negotiated.as_ref().and_then(|n| n.alpn.as_deref())
    }

    /// The name of the backend of this connection.
    pub fn backend_name(&self) -> Option<&'static str> {
        self.backend.as_ref().map(|b| b.name())
    }

    // ----- events ------------------------------------------------------------------

    /// The next event, in Qt's order.
    pub fn poll_event(&mut self) -> Option<SslEvent> {
        self.events.pop_front()
    }

    fn push(&mut self, event: SslEvent) {
        // Coalesce the high-volume events so the queue stays bounded when nobody drains it.
        match (self.events.back_mut(), &event) {
            (Some(SslEvent::ReadyRead), SslEvent::ReadyRead) => return,
            (Some(SslEvent::BytesWritten(a)), SslEvent::BytesWritten(b)) => {
                *a += b;
                return;
            }
            (Some(SslEvent::EncryptedBytesWritten(a)), SslEvent::EncryptedBytesWritten(b)) => {
                *a += b;
                return;
            }
            _ => {}
        }
        if self.events.len() >= 4096 {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

impl std::fmt::Debug for SslCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslCore")
            .field("mode", &self.mode)
            .field("state", &self.state)
            .field("encrypted", &self.encrypted)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
