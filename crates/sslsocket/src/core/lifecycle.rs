//! The connection's lifecycle: TCP state changes from the driver, the start of TLS
//! (`start_*_encryption`, STARTTLS included), graceful and immediate closes, end of input,
//! failure. The [`Phase`](super::Phase) transitions outside verification live here.

use super::*;

impl SslCore {
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
            if std::mem::take(&mut self.encrypt_on_connect) {
                // Qt 6's `_q_connectedSlot`: the handshake starts (`ModeChanged`) before
                // `connected()` is emitted. A handshake that cannot start fails the socket.
                let host = self.peer_name.clone().unwrap_or_default();
                if let Err(error) = self.start_client_encryption(&host) {
                    self.fail(error);
                }
            }
            self.push(SslEvent::Connected);
        }
    }

    /// Qt's `verifyProtocolSupported` in `connectToHostEncrypted`: a client whose
    /// configured protocol its backend does not offer fails at once
    /// (`SslInvalidUserDataError`), before any connection is made. The driver calls it
    /// with the socket unconnected, and connects only on `Ok`.
    pub fn refuse_unsupported_protocol(&mut self) -> Result<(), Error> {
        let Some(backend) = self.backend.clone().or_else(backend::registry::active) else {
            // The handshake's start reports a missing backend.
            return Ok(());
        };
        let protocol = self.configuration.protocol();
        if backend.supported_protocols().contains(&protocol) {
            return Ok(());
        }
        self.reset_connection();
        let error: Error = ConfigError::new(format!(
            "the protocol {protocol:?} is not supported by the {} backend",
            backend.name()
        ))
        .into();
        self.fail(error.clone());
        Err(error)
    }

    /// The connection being made is to start its client handshake for `host` as soon as
    /// it is connected (`connect_to_host_encrypted`), before `Connected` is reported. If it
    /// cannot start, the socket fails with the reason ([`failure`](Self::failure)).
    pub fn encrypt_when_connected(&mut self, host: &str) {
        self.peer_name = Some(host.to_string());
        self.encrypt_on_connect = true;
    }

    /// Whether the application wrote anything since the last call: Qt's
    /// `waitForBytesWritten` is false when nothing was written to wait for.
    pub fn take_written_since_wait(&mut self) -> bool {
        std::mem::take(&mut self.written_since_wait)
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

    pub(super) fn start_encryption(&mut self, mode: SslMode) -> Result<(), Error> {
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
        // Only a configuration that asks for pre-shared keys (a PSK suite, an identity
        // hint, the key as the peer's authentication) is probed: the hook is otherwise
        // never called on a backend without PSK, as its documentation says (round 34: it
        // was, once per handshake).
        let configuration = &self.configuration;
        let wants_psk = || {
            configuration.pre_shared_key_authenticates_peer()
                || !configuration.pre_shared_key_identity_hint().is_empty()
                || configuration
                    .ciphers()
                    .iter()
                    .any(|c| c.name().contains("PSK"))
        };
        if let Some(hooks) = self.hooks.as_ref().filter(|_| wants_psk()) {
            if !backend
                .supported_features()
                .contains(&backend::SupportedFeature::Psk)
            {
                // Qt asks for a pre-shared key only when the backend can use one; an
                // application that supplies one to a backend that cannot gets a clear
                // error instead of a handshake failing for another reason.
                let mut probe = PreSharedKeyAuthenticator::new(b"", b"", 128, 64);
                // A hook that panics fails this handshake, not the caller (round 35).
                let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    hooks.pre_shared_key(&mut probe)
                }));
                if asked.is_err() {
                    let error: Error = ConfigError::new("the pre-shared key hook panicked").into();
                    self.fail(error.clone());
                    return Err(error);
                }
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
        // An empty verify name is no name (Qt: `verificationPeerName.isEmpty() ?
        // peerName()`): the host connected to is checked, never nothing.
        let peer_name = self
            .peer_verify_name
            .clone()
            .filter(|name| !name.is_empty())
            .or_else(|| self.peer_name.clone());
        // A Unicode name goes to the backend as its A-labels (Qt's `QUrl::toAce`): SNI,
        // the host check, name constraints and the session cache all see that one form.
        // A name IDNA refuses is no host name for TLS: the handshake does not start.
        let peer_name = match peer_name {
            Some(name) if name.is_ascii() => Some(name),
            Some(name) => match crate::verify::hostname::to_ace(&name) {
                Some(ace) => Some(ace.into_owned()),
                None => {
                    let error: Error = ConfigError::new(format!(
                        "`{}` is not a valid host name for TLS (IDNA refuses it)",
                        name.escape_default()
                    ))
                    .into();
                    self.fail(error.clone());
                    return Err(error);
                }
            },
            None => None,
        };
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
        self.phase = Phase::Handshaking;
        self.mode = mode;
        self.push(SslEvent::ModeChanged(mode));
        Ok(())
    }

    /// Graceful close (Qt's `disconnectFromHost`): every byte written so far is sent, then
    /// close_notify, then the driver closes TCP when [`is_closed`](Self::is_closed).
    pub fn disconnect_from_host(&mut self) {
        if matches!(self.state, SocketState::UnconnectedState) {
            return;
        }
        if self.phase == Phase::Paused && self.bytes_to_write() > 0 {
            // Closing while the handshake waits for the application's word: no one is left
            // to give it, so the pause is a refusal, and the close fails with it rather
            // than dropping what was written quietly.
            self.close_when_encrypted = false;
            self.refuse_peer();
            return;
        }
        if self.phase == Phase::Handshaking && self.bytes_to_write() > 0 {
            // Qt's `pendingClose`: bytes written during the handshake are delivered after
            // it, then the close goes on (`check_handshake_done`). A handshake that fails
            // instead fails the close with its error: nothing is dropped silently.
            self.close_when_encrypted = true;
            return;
        }
        if self.is_handshaking()
            || self.phase == Phase::Paused
            || (self.session.is_none() && self.state != SocketState::ConnectedState)
        {
            // With nothing to deliver, Qt closes at once when the connection or handshake
            // is not finished. A paused handshake waits for the application, which is
            // closing it: what it wrote is dropped.
            self.abort();
            return;
        }
        if !self.is_failed() {
            // A failed connection stays failed: what it may still send (an alert) goes out,
            // what it must not (a refused handshake's Finished) stays held.
            self.phase = Phase::Closing;
        }
        if self.state != SocketState::ClosingState {
            self.state = SocketState::ClosingState;
            self.push(SslEvent::StateChanged(SocketState::ClosingState));
        }
        self.maybe_send_close_notify();
    }

    /// Immediate close (Qt's `abort`): pending writes and unread data are dropped, no
    /// close_notify.
    pub fn abort(&mut self) {
        // A connection that ended after its peer was accepted is over: aborting it then
        // keeps its sessions (as Qt's `abort` on an unconnected socket); what it left
        // unread is dropped, as by any abort (below).
        let ended_accepted = self.accepted && self.state == SocketState::UnconnectedState;
        // A connection that failed already was judged by its failure (a refused peer's
        // sessions are gone; RFC 5246's rule applied): an abort afterwards gives up
        // nothing more (round 35: it purged the sessions other sockets hold of that peer).
        let failed = matches!(
            self.phase,
            Phase::Failed { .. } | Phase::Closed { failed: true }
        );
        // Nor does one whose graceful close sent our close_notify already (a `shutdown()`,
        // a `disconnect_from_host()` cut while it waited for the peer): it ended as a
        // close, not as an abandoned peer (round 35).
        if !failed
            && !self.close_notify_queued
            && ((!self.handshake_errors.is_empty() && !ended_accepted)
                || self.phase == Phase::Paused)
        {
            // The application gave up on a peer with errors: nothing it sent may be resumed.
            if let Some(session) = self.session.as_mut() {
                session.confirm_peer(None);
            }
        }
        self.queued.clear();
        self.plain_out.clear();
        self.close_when_encrypted = false;
        self.handle_closed();
        // Dropped on the application's word: nothing was lost.
        self.lost_output = false;
        // Qt's `abort` closes the device, which empties its read buffer too.
        self.discard_input();
    }

    /// The driver closed the TCP connection.
    pub fn handle_closed(&mut self) {
        if self.state == SocketState::UnconnectedState {
            return;
        }
        // A wait's timeout or a refused call belonged to the connection that ends: its
        // end reports its own error, or none (round 34).
        self.noted = None;
        // Paused: what the application wrote waits for its word (withheld, not yet lost);
        // a connection that ends meanwhile (the peer gone) loses it, and a flush must say
        // so (round 37, review L4: both drivers' flush was `Ok`). An `abort` resets this.
        self.lost_output =
            self.has_undelivered() || (self.phase == Phase::Paused && self.bytes_to_write() > 0);
        // Qt: `disconnected()` only for a connection that was made (connected or closing),
        // never for a host lookup or a connection attempt that failed.
        let was_connected = matches!(
            self.state,
            SocketState::ConnectedState | SocketState::ClosingState
        );
        self.state = SocketState::UnconnectedState;
        self.phase = Phase::Closed {
            failed: self.is_failed(),
        };
        // Nothing can be written any more: what was not is not "to write" (Qt clears its
        // write buffer on disconnect).
        self.queued.clear();
        self.plain_out.clear();
        self.early.clear();
        self.push(SslEvent::StateChanged(SocketState::UnconnectedState));
        if was_connected {
            self.push(SslEvent::Disconnected);
        }
    }

    /// Whether the driver should close TCP now: a requested close has sent everything,
    /// or the connection failed, or the peer finished and nothing is left to send.
    pub fn is_closed(&self) -> bool {
        if self.state == SocketState::UnconnectedState {
            return true;
        }
        if self.is_failed() {
            return !self.wants_write();
        }
        // Cheap tests first: drivers ask after every send and receive, and an open
        // connection answers without asking the engine.
        self.phase == Phase::Closing
            && self.queued.is_empty()
            && (self.session.is_none() || self.close_notify_queued)
            && !self.wants_write()
    }

    pub(super) fn reset_connection(&mut self) {
        self.mode = SslMode::UnencryptedMode;
        self.session = None;
        self.plain_in.clear();
        self.plain_out.clear();
        self.early.clear();
        self.queued.clear();
        self.error = None;
        self.noted = None;
        self.phase = Phase::Plain;
        self.accepted = false;
        self.eof = false;
        self.clean_close = false;
        self.truncated = false;
        self.close_notify_queued = false;
        self.owed_before_close = 0;
        self.sent_after_close = 0;
        self.lost_output = false;
        self.close_when_encrypted = false;
        self.encrypt_on_connect = false;
        self.written_since_wait = false;
        self.revealed = false;
        self.failed_server_name = None;
        self.unflushed_plain = 0;
        self.negotiated = None;
        self.peer_chain.clear();
        self.peer_valid_until = None;
        self.handshake_errors.clear();
        self.errors_reported = false;
        self.reported_in_every_mode = false;
        self.unreported_errors = None;
        self.refused = false;
        self.ocsp_responses.clear();
        self.line_scanned = 0;
        self.discarded_plaintext = 0;
        if std::mem::take(&mut self.ignores_used) {
            // Qt: the ignore list holds for one handshake; a new connection starts clean.
            self.ignore_all = false;
            self.ignore_rules.clear();
        }
        if std::mem::take(&mut self.ignore_all_expires) {
            self.ignore_all = false;
        }
    }

    /// The peer closed its side of TCP.
    pub fn handle_eof(&mut self) {
        if self.eof {
            return;
        }
        self.eof = true;
        self.noted = None;
        match &self.session {
            None => {
                self.clean_close = true;
                self.push(SslEvent::ReadChannelFinished);
            }
            Some(session) => {
                if self.is_failed() {
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
                    self.error = Some(Box::new(error));
                    self.push(SslEvent::ReadChannelFinished);
                    self.push(SslEvent::ErrorOccurred(SocketError::RemoteHostClosedError));
                }
            }
        }
        if !self.wants_write() || self.is_failed() {
            self.handle_closed();
        }
    }

    pub(super) fn fail(&mut self, error: Error) {
        self.fail_with(error, false);
    }

    /// Fails the connection; with `withheld`, pending output is dropped, never sent.
    pub(super) fn fail_with(&mut self, error: Error, withheld: bool) {
        match &mut self.phase {
            Phase::Failed { withheld: w } => {
                *w |= withheld;
                return;
            }
            Phase::Closed { failed: true } => return,
            Phase::Closed { failed } => *failed = true,
            // Paused: the held flight waits for the application's word, which a failure
            // for another reason never gives.
            phase @ Phase::Paused => *phase = Phase::Failed { withheld: true },
            phase => *phase = Phase::Failed { withheld },
        }
        if self.negotiated.is_none() && self.mode == SslMode::SslServerMode {
            // What a failed handshake's client asked for stays known (`serve` reports it).
            self.failed_server_name = self
                .session
                .as_ref()
                .and_then(|s| s.requested_server_name())
                .map(String::into_boxed_str);
        }
        let kind = error.socket_error();
        self.error = Some(Box::new(error));
        self.queued.clear();
        self.push(SslEvent::ErrorOccurred(kind));
    }
}
