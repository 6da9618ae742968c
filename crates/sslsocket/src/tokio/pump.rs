//! Moving bytes between the tokio socket and the core: the async form of the blocking
//! driver's `drive` loop. Nothing here decides anything about TLS; it sends what the core
//! wants sent, reads while the core wants input, and closes TCP when the core says so.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use ::tokio::io::{AsyncRead, AsyncWrite};

use crate::core::{Phase, SslCore};
use crate::enums::SocketState;
use crate::error::{ApiMisuse, Error};
use crate::tokio::io::{NowReader, PollDuplex, PollReader, PollWriter, TryWriter};
use crate::tokio::SslSocket;

/// Which socket directions a wait may register the task's waker for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Drive {
    /// The caller holds the socket alone (handshake, close, the `async fn`s): both.
    Both,
    /// `AsyncRead`: readability only; bytes to send are tried without a waker, so the
    /// writing half of a `tokio::io::split` keeps its own.
    Read,
    /// `AsyncWrite`: writability only; nothing is read.
    Write,
}

/// The most tasks a socket remembers as waiting (see [`SslSocket::parked`]): more than any
/// sane sharing of one connection.
pub(super) const MAX_PARKED: usize = 16;

impl<S: AsyncRead + AsyncWrite + Unpin> SslSocket<S> {
    /// Writes what the core has to send. `Ready(Ok)` once it has nothing left, `Pending`
    /// when the socket is full (with a waker registered only if `register`).
    #[inline]
    pub(super) fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        register: bool,
    ) -> Poll<Result<(), Error>> {
        if !self.core.wants_write() {
            // Nothing to send (after most reads, and after a write the socket took whole).
            if self.unflushed {
                ready!(self.poll_flush_transport(cx, register))?;
            }
            self.sync_close();
            return Poll::Ready(Ok(()));
        }
        self.poll_send_pending(cx, register)
    }

    /// Flushes a transport that may buffer writes (no descriptor) after bytes went to it,
    /// as tokio-rustls does: a `BufStream` would keep a ClientHello. Only with the waker
    /// (`register`): the reading half of a `tokio::io::split` leaves it to the writer's.
    pub(super) fn poll_flush_transport(
        &mut self,
        cx: &mut Context<'_>,
        register: bool,
    ) -> Poll<Result<(), Error>> {
        if !register {
            return Poll::Ready(Ok(()));
        }
        let Some(stream) = self.stream.as_mut() else {
            self.unflushed = false;
            return Poll::Ready(Ok(()));
        };
        match Pin::new(stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.unflushed = false;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                let error = Error::io("flushing the transport", e);
                self.fail(error.clone());
                Poll::Ready(Err(error))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// `poll_send` once the core has bytes to send (`wants_write` just said so).
    fn poll_send_pending(
        &mut self,
        cx: &mut Context<'_>,
        register: bool,
    ) -> Poll<Result<(), Error>> {
        let fd_ops = self.fd_ops;
        let mut first = true;
        let result = loop {
            if !std::mem::take(&mut first) && !self.core.wants_write() {
                break Poll::Ready(Ok(()));
            }
            let Some(stream) = self.stream.as_mut() else {
                break Poll::Ready(Ok(()));
            };
            let written = match (register, fd_ops) {
                (true, _) => self.core.write_to(&mut PollWriter { io: stream, cx }),
                (false, Some(send)) => self.core.write_to(&mut TryWriter { io: stream, send }),
                // A transport without `try_write` cannot be written without taking the
                // writer's waker: the bytes go with the next write or flush.
                (false, None) => break Poll::Pending,
            };
            match written {
                Ok(0) => {
                    let error = Error::io("writing to the socket", io::ErrorKind::WriteZero.into());
                    self.fail(error.clone());
                    break Poll::Ready(Err(error));
                }
                Ok(_) => {
                    self.moved += 1;
                    self.unflushed |= fd_ops.is_none();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(ops) = fd_ops.filter(|_| crate::core::peer_is_gone(&e)) {
                        // What the peer sent before it went is still data received.
                        self.core.salvage_input(&mut NowReader { io: stream, ops });
                    }
                    let error = Error::io("writing to the socket", e);
                    self.fail(error.clone());
                    break Poll::Ready(Err(error));
                }
            }
        };
        let result = match result {
            Poll::Ready(Ok(())) if self.unflushed => self.poll_flush_transport(cx, register),
            other => other,
        };
        self.sync_close();
        result
    }

    /// Reads into the core while it wants input. `Ready(Ok)` once it wants no more (end of
    /// stream included), `Pending` when the socket is empty (read waker registered).
    pub(super) fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let before = self.core.bytes_available();
        let encrypted = self.core.is_encrypted();
        let result = loop {
            if !self.core.wants_read() && !self.peer_finished_without_eof() {
                break Poll::Ready(Ok(()));
            }
            // New application data: hand it out before reading more, so it goes from the
            // engine to the caller without a copy into the core's own buffer.
            if self.core.bytes_available() > before {
                break Poll::Ready(Ok(()));
            }
            let Some(stream) = self.stream.as_mut() else {
                break Poll::Ready(Ok(()));
            };
            // Not readable: wait (the waker is registered) without running the engine for
            // a read that can only say `WouldBlock` (an OpenSSL `SSL_read`, a rustls
            // input buffer made ready, per message).
            if let Some(ops) = self.fd_ops {
                if (ops.read_ready)(stream, cx).is_pending() {
                    break Poll::Pending;
                }
            }
            let mut io = PollDuplex {
                io: stream,
                cx,
                send: self.fd_ops,
            };
            match self.core.read_from_duplex(&mut io) {
                // The handshake just ended: the caller sees that before anything the peer
                // sent after it (our last flight may have gone out during this read, and
                // the peer may have answered it, or closed, already).
                Ok(_) if self.core.is_encrypted() != encrypted => {
                    self.moved += 1;
                    break Poll::Ready(Ok(()));
                }
                Ok(_) => self.moved += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if crate::core::ends_the_stream(&e) => {
                    self.core.handle_eof();
                }
                Err(e) => {
                    let error = Error::io("reading from the socket", e);
                    self.fail(error.clone());
                    break Poll::Ready(Err(error));
                }
            }
        };
        self.sync_close();
        result
    }

    /// One read of the socket into the core, for a reader in the steady state
    /// ([`SslCore::awaits_input`]) waiting with `dst`: `Ready(Some(n))` when the core may
    /// have changed, `n` bytes of it decrypted straight into `dst` (which the caller has
    /// then read; see [`SslCore::read_from_into`]), `Ready(None)` when only the full way
    /// ([`poll_until`](Self::poll_until)) can go on, `Pending` when the socket is empty and
    /// the core has nothing to send (read waker registered). The errors and ends of
    /// `poll_receive`, for one read.
    pub(super) fn poll_receive_once(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<Option<usize>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        // Not readable: the core is as `awaits_input` found it, with nothing to send. Right
        // after such a wait the readiness is not asked again (the wake-up most likely says
        // the data came): a read that finds nothing registers the waker all the same.
        if let Some(ops) = self.fd_ops {
            if !std::mem::take(&mut self.read_armed) && (ops.read_ready)(stream, cx).is_pending() {
                self.read_armed = true;
                return Poll::Pending;
            }
        }
        let result = match self
            .core
            .read_from_into(&mut PollReader { io: stream, cx }, dst)
        {
            Ok((_, delivered)) => Poll::Ready(Some(delivered)),
            // The engine may have answered something on the way (OpenSSL reads the socket
            // itself): sending it is the full way's work.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if self.core.wants_write() {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Poll::Ready(Some(0)),
            Err(e) if crate::core::ends_the_stream(&e) => {
                self.core.handle_eof();
                Poll::Ready(Some(0))
            }
            Err(e) => {
                // Recorded by the core: the next look reports it.
                self.fail(Error::io("reading from the socket", e));
                Poll::Ready(Some(0))
            }
        };
        self.sync_close();
        result
    }

    /// Moves bytes until `done` holds, the connection fails or ends, or no progress is
    /// possible. `Pending` always has a waker registered for the directions of `drive`,
    /// and the task is parked: a task that moves bytes or finishes wakes the others, whose
    /// registration on the transport its own may have replaced.
    pub(super) fn poll_until(
        &mut self,
        cx: &mut Context<'_>,
        drive: Drive,
        what: &str,
        done: impl FnMut(&mut SslCore) -> bool,
    ) -> Poll<Result<(), Error>> {
        let moved = self.moved;
        let result = self.poll_until_inner(cx, drive, what, done);
        if self.moved != moved || result.is_ready() {
            self.wake_parked(cx);
        }
        if result.is_pending() {
            self.park(cx);
        }
        result
    }

    /// Wakes the tasks parked in the full way other than this one, if any.
    #[inline]
    pub(super) fn wake_parked(&mut self, cx: &Context<'_>) {
        for waker in self.parked.drain(..) {
            if !waker.will_wake(cx.waker()) {
                waker.wake();
            }
        }
    }

    /// Records this task as waiting in the full way (see [`SslSocket::parked`]). Past
    /// [`MAX_PARKED`] tasks the oldest record is dropped, never woken: a wake-up that finds
    /// nothing to do must not pass itself on, or idle tasks would wake each other for ever.
    pub(super) fn park(&mut self, cx: &Context<'_>) {
        let waker = cx.waker();
        if self.parked.iter().any(|w| w.will_wake(waker)) {
            return;
        }
        if self.parked.len() >= MAX_PARKED {
            self.parked.remove(0);
        }
        self.parked.push(waker.clone());
    }

    fn poll_until_inner(
        &mut self,
        cx: &mut Context<'_>,
        drive: Drive,
        what: &str,
        mut done: impl FnMut(&mut SslCore) -> bool,
    ) -> Poll<Result<(), Error>> {
        loop {
            let sent = match self.poll_send(cx, drive != Drive::Read) {
                Poll::Ready(Err(error)) if !done(&mut self.core) => {
                    return Poll::Ready(Err(error));
                }
                other => other,
            };
            if done(&mut self.core) {
                return Poll::Ready(Ok(()));
            }
            if let Some(failure) = self.core.failure() {
                return Poll::Ready(Err(failure.clone()));
            }
            if self.stream.is_none() {
                return Poll::Ready(Err(self.closed_error()));
            }
            if drive != Drive::Write && (self.core.wants_read() || self.peer_finished_without_eof())
            {
                match self.poll_receive(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(error)) => {
                        if done(&mut self.core) {
                            return Poll::Ready(Ok(()));
                        }
                        return Poll::Ready(Err(error));
                    }
                    Poll::Pending => {
                        if sent.is_ready() && self.core.wants_write() {
                            // The input made the core answer (a handshake flight, a
                            // close_notify): send that before waiting.
                            continue;
                        }
                        if done(&mut self.core) {
                            return Poll::Ready(Ok(()));
                        }
                        return Poll::Pending;
                    }
                }
            }
            if sent.is_pending() && drive != Drive::Read {
                return Poll::Pending;
            }
            if sent.is_pending() && self.core.input_waits_for_output() {
                // A reader whose input waits for the peer to take our output (it made the
                // engine answer and reads nothing): only the socket taking bytes helps, so
                // the reader waits for that too (as tokio-rustls's reads do). The rare case
                // this is: otherwise a reader never takes the writer's waker.
                match self.poll_send(cx, true) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.core.is_eof() || self.core.state() == SocketState::UnconnectedState {
                return Poll::Ready(Err(self.closed_error()));
            }
            return Poll::Ready(Err(ApiMisuse(format!(
                "{what}: no progress is possible until buffered data is read"
            ))
            .into()));
        }
    }

    /// The peer's close_notify arrived but the core has not seen the end of stream: it
    /// asks for no input then, yet only another `read_from` (which reads nothing and
    /// reports the end) records it. Without this probe a reader would wait for ever.
    fn peer_finished_without_eof(&self) -> bool {
        self.stream.is_some()
            && self.core.is_encrypted()
            && !self.core.is_eof()
            && self.core.state() != SocketState::UnconnectedState
            && self.core.bytes_available() == 0
            && !self.core.wants_read()
            && !self.core.input_waits_for_output()
    }

    /// Closes TCP as far as the core says: our sending half once the core has sent
    /// everything it will (close_notify included), the whole socket once the connection is
    /// over (failed, or both sides finished).
    #[inline]
    pub(super) fn sync_close(&mut self) {
        if !self.write_shut
            && self.core.state() != SocketState::UnconnectedState
            && matches!(
                self.core.phase(),
                Phase::Plain | Phase::Handshaking | Phase::Paused | Phase::Encrypted
            )
        {
            // Open, not failed, no close under way: nothing to close (the common case,
            // checked after every send and receive).
            return;
        }
        self.sync_close_slow();
    }

    /// `sync_close` once a close is under way or the connection is over.
    fn sync_close_slow(&mut self) {
        let over = self.core.state() == SocketState::UnconnectedState
            || (self.core.failure().is_some() && !self.core.wants_write());
        if self.stream.is_none() {
            return;
        }
        if !over && !self.write_shut && self.core.is_closed() {
            self.shut_write();
        }
        if over || (self.write_shut && self.core.is_eof()) {
            self.stream = None;
            self.core.handle_closed();
        }
    }

    /// Ends our sending half of the transport (TCP: `shutdown(SHUT_WR)`, which never
    /// waits). A transport whose shutdown is not done at once is asked again next time.
    pub(super) fn shut_write(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        // Errors here only mean the peer is already gone, which reading will report.
        if Pin::new(stream).poll_shutdown(&mut cx).is_ready() {
            self.write_shut = true;
        }
    }

    /// Once the core is closed: the transport's own buffer flushed and its shutdown done,
    /// with the caller's waker (round 35: a transport whose flush takes more than one poll
    /// was dropped with our bytes and close_notify still in its buffer). A TCP socket
    /// needs neither and is done at once. A failed flush fails the connection; a failed
    /// shutdown only means the peer is gone, which reading reports.
    pub(super) fn poll_close_transport(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.unflushed {
            ready!(self.poll_flush_transport(cx, true))?;
        }
        if self.write_shut {
            return Poll::Ready(Ok(()));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        ready!(Pin::new(stream).poll_shutdown(cx)).ok();
        self.write_shut = true;
        Poll::Ready(Ok(()))
    }

    /// Records a failure of the socket itself and closes it.
    pub(super) fn fail(&mut self, error: Error) {
        self.core.handle_io_error(error);
        self.stream = None;
        self.core.handle_closed();
    }

    /// The error that explains why nothing more can be read or written.
    pub(super) fn closed_error(&self) -> Error {
        match self.core.error() {
            Some(error) => error.clone(),
            None => Error::Closed("the remote host closed the connection".into()),
        }
    }
}
