//! Bytes between the wire and the TLS engine: reading TLS input (with back-pressure),
//! processing it, writing what the engine has to send, and application writes (queued
//! until the handshake ends, then encrypted in order).

use super::*;

impl SslCore {
    /// Whether the core can take input now: connected, not at EOF, not failed, and the
    /// plaintext buffer has room (back-pressure).
    pub fn wants_read(&self) -> bool {
        let buffered = self.plain_in.len() + self.session.as_ref().map_or(0, |s| s.plaintext_len());
        self.wants_read_holding(buffered)
    }

    /// [`wants_read`](Self::wants_read) with the decrypted bytes buffered already known
    /// (`buffered`: the core's and the engine's), so a caller that just asked the engine
    /// does not ask again.
    pub(super) fn wants_read_holding(&self, buffered: usize) -> bool {
        if self.is_failed() || self.eof || self.state == SocketState::UnconnectedState {
            return false;
        }
        self.has_room_for_input(buffered)
    }

    /// The rest of `wants_read` once the connection is known to be open: the peer has not
    /// finished, the plaintext buffer has room, and the peer is taking what the engine
    /// sends (less than `OUTPUT_LIMIT_FOR_INPUT` waits: a peer that makes the engine answer
    /// and never reads the answers cannot grow our output without bound).
    fn has_room_for_input(&self, buffered: usize) -> bool {
        let limit = self.plain_limit();
        match &self.session {
            Some(session) => {
                !session.received_close_notify()
                    && buffered < limit.max(1)
                    && session.tls_bytes_to_write() < OUTPUT_LIMIT_FOR_INPUT
            }
            None => buffered < limit,
        }
    }

    /// Whether input waits because the peer does not take what the engine sends
    /// (`OUTPUT_LIMIT_FOR_INPUT` bytes unsent): only writing can make progress then, so a
    /// reader must wait for the socket to take bytes, not for more to arrive.
    pub fn input_waits_for_output(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.tls_bytes_to_write() >= OUTPUT_LIMIT_FOR_INPUT)
    }

    /// The most decrypted bytes held before input waits (`read_buffer_size`, 0 = default).
    fn plain_limit(&self) -> usize {
        if self.read_buffer_size == 0 {
            DEFAULT_PLAIN_LIMIT
        } else {
            self.read_buffer_size
        }
    }

    /// The steady state of a connection that reads, for drivers: open, not failed, no
    /// handshake running, nothing to send, nothing decrypted waiting, and room for input.
    /// Exactly `!is_eof() && state() != UnconnectedState && failure().is_none() &&
    /// !is_handshaking() && !wants_write() && wants_read() && bytes_available() == 0`,
    /// asking the engine each question once. Then only the socket can help: read it.
    #[cfg(feature = "tokio")]
    pub(crate) fn awaits_input(&self) -> bool {
        if self.eof || self.state == SocketState::UnconnectedState || self.is_failed() {
            return false;
        }
        if let Some(session) = &self.session {
            // The engine's four answers in one call: this runs at every read.
            let status = session.status();
            if (!self.output_held() && (status.wants_write || !self.plain_out.is_empty()))
                || status.handshaking
                || status.received_close_notify
            {
                return false;
            }
            let buffered = self.plain_in.len() + status.plaintext_len;
            return (buffered == 0 || !self.is_readable()) && buffered < self.plain_limit().max(1);
        }
        // Plain text: no engine.
        let buffered = self.plain_in.len();
        !self.wants_write() && buffered == 0 && self.has_room_for_input(buffered)
    }

    /// Reads from `rd` (the socket) into the core, directly into the TLS engine when
    /// encrypted. `Ok(0)` means end of stream, which the core has recorded. Once the
    /// connection is closed or aborted nothing is read: `NotConnected`.
    pub fn read_from(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        self.read_input(Socket::Reader(rd))
    }

    /// [`read_from`](Self::read_from) with the socket's writing side at hand: what the
    /// engine answers while it runs the handshake may go straight to `io` where nothing
    /// can withhold it (see [`TlsSession::read_tls_duplex`]), so the peer has it before
    /// the engine's work after it and the core's bookkeeping; the rest waits for
    /// [`write_to`](Self::write_to) as after `read_from`.
    pub fn read_from_duplex(&mut self, io: &mut dyn Duplex) -> io::Result<usize> {
        self.read_input(Socket::Duplex(io))
    }

    fn read_input(&mut self, input: Socket<'_>) -> io::Result<usize> {
        if self.state == SocketState::UnconnectedState {
            // Closed (aborted, or TCP gone): nothing more is taken in, so an engine whose
            // peer the application gave up on never answers it (its Finished included).
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection is closed",
            ));
        }
        // What the engine held before this input: an engine may decrypt inside `read_tls`
        // already (OpenSSL reads the socket itself), so new data is counted from here.
        let mut before = self.session.as_ref().map_or(0, |s| s.plaintext_len());
        if before > 0 && self.session.as_ref().is_some_and(|s| !s.wants_read()) {
            // The application has not read what arrived; move it aside so the engine can
            // take more (the copy only happens on this slow path).
            self.pull_all();
            before = self.session.as_ref().map_or(0, |s| s.plaintext_len());
        }
        let sends = self.may_send_while_reading();
        let mut sent = 0;
        let n = match (self.session.as_mut(), input) {
            (Some(session), Socket::Duplex(io)) if sends => {
                let done = session.read_tls_duplex(io, &mut []);
                sent = done.sent;
                match done.result {
                    Ok((n, _)) => n,
                    Err(e) => {
                        self.count_sent(sent);
                        return Err(e);
                    }
                }
            }
            (Some(session), mut input) => session.read_tls(input.reader())?,
            (None, mut input) => {
                let room = self
                    .plain_limit()
                    .saturating_sub(self.plain_in.len())
                    .clamp(1, READ_CHUNK);
                let mut buf = vec![0u8; room];
                let n = input.reader().read(&mut buf)?;
                self.plain_in.extend(buf.get(..n).unwrap_or_default());
                if n > 0 {
                    self.count(Counter::ReadyRead, 0);
                }
                n
            }
        };
        self.took_input(n, before, false);
        self.count_sent(sent);
        Ok(n)
    }

    /// Whether the engine may send straight to the socket while it reads: only with
    /// nothing of ours to go before it (plain text written before encryption started) and
    /// nothing held back.
    fn may_send_while_reading(&self) -> bool {
        self.plain_out.is_empty() && !self.output_held()
    }

    /// Counts TLS bytes the engine sent straight to the socket.
    fn count_sent(&mut self, sent: usize) {
        if sent > 0 {
            self.count(Counter::Encrypted, sent);
        }
    }

    /// After `n` bytes of input (0: the end of stream), with `before` the decrypted bytes
    /// the engine held before it and `delivered` whether some went straight to a reader.
    fn took_input(&mut self, n: usize, before: usize, delivered: bool) {
        if n > 0 {
            self.process_after(before, delivered);
            return;
        }
        if delivered || self.session.as_ref().map_or(0, |s| s.plaintext_len()) > before {
            // Records decrypted on the way to the end of stream are still news.
            self.count(Counter::ReadyRead, 0);
        }
        self.handle_eof();
    }

    /// `read_from` for a reader waiting with `dst`: when nothing decrypted is buffered,
    /// the backend may decrypt what arrives straight into `dst` (OpenSSL does: one copy
    /// of the plaintext instead of two). Returns the bytes read from `rd` and the bytes
    /// put into `dst`, which the caller has then read (as with `read`). With anything
    /// buffered, or no `dst`, this is `read_from`.
    pub fn read_from_into(
        &mut self,
        rd: &mut dyn Read,
        dst: &mut [u8],
    ) -> io::Result<(usize, usize)> {
        self.read_input_into(Socket::Reader(rd), dst)
    }

    /// [`read_from_into`](Self::read_from_into) with the socket's writing side at hand
    /// (see [`read_from_duplex`](Self::read_from_duplex)).
    pub fn read_from_into_duplex(
        &mut self,
        io: &mut dyn Duplex,
        dst: &mut [u8],
    ) -> io::Result<(usize, usize)> {
        self.read_input_into(Socket::Duplex(io), dst)
    }

    fn read_input_into(
        &mut self,
        mut input: Socket<'_>,
        dst: &mut [u8],
    ) -> io::Result<(usize, usize)> {
        let direct = !dst.is_empty()
            && self.phase == Phase::Encrypted
            && self.accepted
            && self.plain_in.is_empty()
            && self
                .session
                .as_ref()
                .is_some_and(|s| s.plaintext_len() == 0 && s.wants_read());
        // At most the read window goes to the caller; the rest of a record stays held,
        // unseen until then.
        let window = dst.len().min(self.read_window());
        let Some(session) = self.session.as_mut().filter(|_| direct) else {
            return Ok((self.read_input(input)?, 0));
        };
        // Encrypted and accepted: nothing the engine answers now is sent on the way (the
        // handshake is over), so the reading side is all it needs.
        let dst = dst.get_mut(..window).unwrap_or_default();
        let (n, delivered) = session.read_tls_into(input.reader(), dst)?;
        if self.read_buffer_size > 0 && session.plaintext_len() > 0 {
            // Held back by the window: new to the application's next wait.
            self.revealed = true;
        }
        self.took_input(n, 0, delivered > 0);
        Ok((n, delivered))
    }

    /// Reads from `rd` while a close waits for the peer's end of stream: into the core
    /// while it takes input (so the peer's close_notify and session tickets count), else
    /// into a sink whose bytes are dropped. `Ok(0)` is the end of stream.
    pub fn read_while_closing(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        if self.wants_read() {
            return self.read_from(rd);
        }
        let mut sink = [0u8; 4096];
        rd.read(&mut sink)
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

    pub(super) fn process(&mut self) {
        let before = self.session.as_ref().map_or(0, |s| s.plaintext_len());
        self.process_after(before, false);
    }

    /// `process`, with `before` the decrypted bytes the engine held before the input that
    /// is being processed: more than that afterwards is new data (`ReadyRead`), as is
    /// data the input brought straight to the reader (`delivered`).
    fn process_after(&mut self, before: usize, delivered: bool) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let result = session.process();
        if let Some(error) = session.take_local_failure() {
            // Our side cannot go on (a client certificate resolver's unusable identity):
            // the handshake fails with that error and nothing more goes out, so no flight
            // without the certificate the application meant to show leaves (round 35).
            self.fail_with(Error::Config(error), true);
            return;
        }
        self.check_verification();
        // The peer's close_notify came after any data this input held (nothing is read
        // past it): reported after that data's ReadyRead, in record order, so that an
        // application closing on the alert knows of the data first (round 34).
        let close_notify = self.drain_notices_but_close_notify();
        if let Err(failure) = result {
            self.push_if_any(close_notify);
            self.fail_tls(failure);
            return;
        }
        self.check_handshake_done();
        self.flush_queued();
        let after = self.session.as_ref().map_or(0, |s| s.plaintext_len());
        // Only for an accepted peer (round 35: a refused client's data, and a paused
        // client's 0.5-RTT data, gave ReadyRead with nothing readable); data held until
        // a pause ends is announced by `resume`.
        if self.accepted && (delivered || after > before) {
            self.count(Counter::ReadyRead, 0);
        }
        self.push_if_any(close_notify);
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.received_close_notify())
        {
            if !self.eof {
                // close_notify ends the peer's stream cleanly, whatever TCP does next.
                self.eof = true;
                self.noted = None;
                self.clean_close = true;
                self.push(SslEvent::ReadChannelFinished);
            }
            if self.phase == Phase::Encrypted {
                // The peer finished: answer with our close_notify once our data is out.
                self.phase = Phase::Closing;
                self.maybe_send_close_notify();
            }
        }
    }

    /// [`drain_notices`](Self::drain_notices), with the peer's close_notify alert, if
    /// any, handed back to be reported after the data it ended.
    fn drain_notices_but_close_notify(&mut self) -> Option<SslEvent> {
        let mut close_notify = None;
        while let Some(notice) = self.session.as_mut().and_then(|s| s.poll_notice()) {
            match notice {
                BackendNotice::AlertReceived(a)
                    if a.kind == crate::enums::AlertType::CloseNotify =>
                {
                    close_notify = Some(SslEvent::AlertReceived(a));
                }
                notice => self.push_notice(notice),
            }
        }
        close_notify
    }

    fn push_notice(&mut self, notice: BackendNotice) {
        self.push(match notice {
            BackendNotice::AlertSent(a) => SslEvent::AlertSent(a),
            BackendNotice::AlertReceived(a) => SslEvent::AlertReceived(a),
            BackendNotice::NewSessionTicket => SslEvent::NewSessionTicketReceived,
        });
    }

    fn push_if_any(&mut self, events: Option<SslEvent>) {
        if let Some(event) = events {
            self.push(event);
        }
    }

    pub(super) fn drain_notices(&mut self) {
        while let Some(notice) = self.session.as_mut().and_then(|s| s.poll_notice()) {
            self.push_notice(notice);
        }
    }

    /// Whether bytes are waiting to be written to the wire (never while paused on errors:
    /// the next flight is withheld until `resume()`).
    #[inline]
    pub fn wants_write(&self) -> bool {
        if self.output_held() {
            return false;
        }
        !self.plain_out.is_empty()
            || (self.session.is_none()
                && !self.early.is_empty()
                && matches!(
                    self.state,
                    SocketState::ConnectedState | SocketState::ClosingState
                ))
            || self.session.as_ref().is_some_and(|s| s.wants_write())
    }

    /// Writes pending bytes to `wr` (the socket); returns how many were written.
    pub fn write_to(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        if self.output_held() {
            return Ok(0);
        }
        if self.session.is_none() && !self.early.is_empty() {
            self.early.move_into(&mut self.plain_out);
        }
        let plain_pending = !self.plain_out.is_empty();
        let n = match self.session.as_mut() {
            // Plain text written before encryption started goes out first, as in Qt.
            Some(session) if !plain_pending => {
                let n = session.write_tls(wr)?;
                if n > 0 {
                    self.count(Counter::Encrypted, n);
                }
                n
            }
            _ => {
                let (front, _) = self.plain_out.as_slices();
                let n = wr.write(front)?;
                self.plain_out.drain(..n.min(self.plain_out.len()));
                if n > 0 {
                    self.count(Counter::Plain, n);
                }
                n
            }
        };
        if self.unflushed_plain > 0 && !self.session.as_ref().is_some_and(|s| s.wants_write()) {
            let done = std::mem::take(&mut self.unflushed_plain);
            self.count(Counter::Plain, done);
        }
        if self.session.is_some() && !self.queued.is_empty() {
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

    /// Writes application data. Before the handshake ends it is queued and sent, in
    /// order, after `encrypted`; once encrypted it goes to TLS, which may take only part
    /// of it when its buffer is full (write the rest after the driver flushed).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        if let Some(failure) = self.failure() {
            return Err(failure.clone());
        }
        if self.phase == Phase::Closing || self.state == SocketState::UnconnectedState {
            return Err(ApiMisuse("the socket is not open for writing".into()).into());
        }
        self.written_since_wait |= !data.is_empty();
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
            self.early.move_into(&mut self.plain_out);
            self.plain_out.extend(data);
            return Ok(data.len());
        }
        if !self.is_encrypted() || !self.queued.is_empty() {
            self.queued.extend(data);
            self.flush_queued();
            return Ok(data.len());
        }
        self.write_session(data)
    }

    /// [`write`](Self::write) with the socket at hand: once encrypted, with nothing
    /// waiting before it, the TLS bytes go straight to `wr` as far as it takes them at once
    /// (where the backend can: no copy through its output buffer). The rest waits, as
    /// after `write`: flush with [`write_to`](Self::write_to) next, which also meets
    /// again an error `wr` gave.
    pub fn write_through(&mut self, data: &[u8], wr: &mut dyn Write) -> Result<usize, Error> {
        let direct = self.is_encrypted()
            && self.queued.is_empty()
            && self.plain_out.is_empty()
            && self.phase != Phase::Closing
            && self.failure().is_none()
            && !self.output_held()
            && self.session.as_ref().is_some_and(|s| !s.wants_write());
        if !direct {
            return self.write(data);
        }
        let Some(session) = self.session.as_mut() else {
            return self.write(data);
        };
        self.written_since_wait |= !data.is_empty();
        let (n, sent) = session
            .write_plain_to(data, wr)
            .map_err(|e| Error::io("encrypting", e))?;
        let pending = session.wants_write();
        self.unflushed_plain += n;
        if sent > 0 {
            self.count(Counter::Encrypted, sent);
        }
        if !pending && self.unflushed_plain > 0 {
            let done = std::mem::take(&mut self.unflushed_plain);
            self.count(Counter::Plain, done);
        }
        Ok(n)
    }

    pub(super) fn write_session(&mut self, data: &[u8]) -> Result<usize, Error> {
        let Some(session) = self.session.as_mut() else {
            return Ok(0);
        };
        let n = session
            .write_plain(data)
            .map_err(|e| Error::io("encrypting", e))?;
        self.unflushed_plain += n;
        Ok(n)
    }

    pub(super) fn flush_queued(&mut self) {
        if !self.is_encrypted() || self.queued.is_empty() {
            return;
        }
        while !self.queued.is_empty() {
            let Some(session) = self.session.as_mut() else {
                return;
            };
            let n = match session.write_plain(self.queued.front()) {
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
            self.queued.consume(n);
        }
        self.maybe_send_close_notify();
    }

    pub(super) fn maybe_send_close_notify(&mut self) {
        if self.phase != Phase::Closing || self.close_notify_queued || !self.queued.is_empty() {
            return;
        }
        if let Some(session) = self.session.as_mut() {
            if session.is_handshaking() {
                return;
            }
            self.owed_before_close = session.tls_bytes_to_write();
            self.sent_after_close = 0;
            session.close();
            self.close_notify_queued = true;
            self.drain_notices();
        }
    }
}

/// Whether a failed socket write says the peer is gone (a reset, an aborted connection, a
/// closed pipe): what it sent before may still wait in the kernel, unread
/// (see [`SslCore::salvage_input`]).
pub(crate) fn peer_is_gone(error: &io::Error) -> bool {
    ends_the_stream(error) || error.kind() == io::ErrorKind::BrokenPipe
}

/// The most reads [`SslCore::salvage_input`] makes: the kernel's receive buffer, in
/// `READ_CHUNK`s, with room to spare.
const SALVAGE_READS: usize = 64;

impl SslCore {
    /// After a write to the socket failed because the peer is gone (a reset, a closed pipe), and
    /// before the driver records that failure: takes in what the peer sent before its end
    /// and what the engine holds unprocessed, so data received before the failure is still
    /// decrypted and readable (Linux keeps a reset socket's received bytes readable). `rd`
    /// must not block; at most `SALVAGE_READS` reads, and only while the core takes input.
    /// The end of the stream is left to the driver's failure (one error, the write's).
    pub fn salvage_input(&mut self, rd: &mut dyn Read) {
        /// Reads `rd` but reports its end as "nothing now": the failure that follows ends
        /// the connection, not an end of stream recorded on the way.
        struct UntilEnd<'a>(&'a mut dyn Read);
        impl Read for UntilEnd<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
                    n => Ok(n),
                }
            }
        }
        let mut rd = UntilEnd(rd);
        let before = self.session.as_ref().map_or(0, |s| s.plaintext_len());
        for _ in 0..SALVAGE_READS {
            if self.is_failed() || !self.wants_read() {
                return;
            }
            match self.read_from(&mut rd) {
                Ok(n) if n > 0 => {}
                // Nothing more: an engine holding records it has not processed (OpenSSL
                // stops at the end of a handshake) processes them now.
                _ => break,
            }
        }
        if !self.is_failed() && self.state != SocketState::UnconnectedState {
            self.process_after(before, false);
        }
    }
}

/// Whether a driver takes this error of a socket read for the end of the stream: a reset
/// or aborted connection ends it like an EOF (a truncation unless close_notify came).
pub(crate) fn ends_the_stream(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}
