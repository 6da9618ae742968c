//! `AsyncRead`, `AsyncBufRead` and `AsyncWrite` (vectored too) for the tokio `SslSocket`.
//!
//! Reading waits only for readability and writing only for writability (see
//! [`Drive`]), so a reading task and a writing task on the halves of `tokio::io::split`
//! never take each other's wake-ups. While a handshake runs, either side drives it in both
//! directions.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use ::tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

use crate::enums::SocketState;
use crate::tokio::io::PollWriter;
use crate::tokio::pump::Drive;
use crate::tokio::SslSocket;

/// Application bytes the socket accepts ahead of the wire before `poll_write` waits: the
/// same bound rustls puts on its own buffer of encrypted bytes.
const WRITE_BACKLOG: usize = 64 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> SslSocket<S> {
    fn drive_for(&self, steady: Drive) -> Drive {
        // A paused handshake too: a write-only wait sees no progress possible there, and
        // `poll_flush` took that for "nothing lost" (round 37: `Ok` with the bytes written
        // during the handshake still queued; the blocking flush waits, as now this).
        if self.core.is_handshaking() || self.core.is_paused() {
            Drive::Both
        } else {
            steady
        }
    }

    /// What a read returns once nothing more can arrive: end of stream after a clean
    /// close, `UnexpectedEof` after a truncation, the failure after a failure.
    fn end_of_stream(&self) -> io::Result<()> {
        if self.core.is_truncated() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                self.core.error_string(),
            ));
        }
        match self.core.failure() {
            // The peer's stream ended with its close_notify: that is the reader's clean
            // end, whatever became of our answer to it (round 35: a reset on our
            // close_notify, the peer gone, turned it into an error).
            Some(_) if self.core.is_eof() && self.core.is_peer_closed_cleanly() => Ok(()),
            Some(failure) => Err(failure.clone().into()),
            None if !self.core.is_eof() => Err(closed_here()),
            None => Ok(()),
        }
    }
}

/// The error of a read on a connection this side closed (`abort`, `close`) before the
/// peer's stream ended: nothing read is not the peer's end (Qt: the device is closed).
pub(super) fn closed_here() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was closed on this side; the peer's stream did not end",
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for SslSocket<S> {
    /// Decrypted data as it arrives. `Ok` with nothing read means the end of stream, and
    /// only after the peer's close_notify (or a plain-mode EOF); a peer that closes TCP
    /// without close_notify after the handshake gives `UnexpectedEof` once the buffered
    /// data is read.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut steady = true;
        loop {
            // The steady state of a connection that reads (every message): encrypted,
            // nothing to send, nothing decrypted waiting, input wanted. Only the socket can
            // help: read it once (or wait for it), then look again. Anything else (a
            // handshake, bytes to send, a failure or the end while reading, input that made
            // the engine answer) goes the full way below.
            if steady && this.core.awaits_input() {
                match this.poll_receive_once(cx, buf.initialize_unfilled()) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => steady = false,
                    Poll::Ready(Some(0)) => {}
                    Poll::Ready(Some(delivered)) => {
                        // Decrypted straight into `buf`: read, as below.
                        buf.advance(delivered);
                        let _ = this.poll_send(cx, false);
                        return Poll::Ready(Ok(()));
                    }
                }
            }
            let n = this.core.read(buf.initialize_unfilled());
            if n > 0 {
                buf.advance(n);
                // Reading may have made the engine answer (a key update, our close_notify
                // after the peer's): send it if the socket takes it now, without a waker.
                let _ = this.poll_send(cx, false);
                return Poll::Ready(Ok(()));
            }
            if this.core.is_eof() || this.core.state() == SocketState::UnconnectedState {
                // Our close_notify answering the peer's goes out now if the socket takes
                // it, so a peer that closed first sees a clean end even if we are dropped.
                let _ = this.poll_send(cx, false);
                return Poll::Ready(this.end_of_stream());
            }
            if let Some(failure) = this.core.failure() {
                return Poll::Ready(Err(failure.clone().into()));
            }
            let drive = this.drive_for(Drive::Read);
            match this.poll_until(cx, drive, "reading", |core| {
                core.bytes_available() > 0
                    || core.is_eof()
                    || core.state() == SocketState::UnconnectedState
            }) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => {
                    if this.core.bytes_available() == 0 && !this.core.is_eof() {
                        return Poll::Ready(Err(error.into()));
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncBufRead for SslSocket<S> {
    /// The decrypted bytes buffered, waiting for some when there are none; the same ends
    /// as `poll_read`: empty at a clean end of stream, `UnexpectedEof` once a truncation's
    /// data is consumed, the failure after a failure.
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        loop {
            if this.core.bytes_available() > 0 {
                break;
            }
            if this.core.is_eof() || this.core.state() == SocketState::UnconnectedState {
                let _ = this.poll_send(cx, false);
                this.end_of_stream()?;
                break;
            }
            if let Some(failure) = this.core.failure() {
                return Poll::Ready(Err(failure.clone().into()));
            }
            let drive = this.drive_for(Drive::Read);
            match ready!(this.poll_until(cx, drive, "reading", |core| {
                core.bytes_available() > 0
                    || core.is_eof()
                    || core.state() == SocketState::UnconnectedState
            })) {
                Ok(()) => {}
                Err(error) => {
                    if this.core.bytes_available() == 0 && !this.core.is_eof() {
                        return Poll::Ready(Err(error.into()));
                    }
                }
            }
        }
        Poll::Ready(Ok(this.core.fill_buf()))
    }

    fn consume(self: Pin<&mut Self>, amount: usize) {
        self.get_mut().core.consume(amount);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SslSocket<S> {
    /// Like `poll_write` over the buffers in order. Several buffers are gathered (up to the
    /// 64 KiB one call takes) and handed to TLS at once, so they leave in full records
    /// rather than one record per buffer; a single buffer is taken as it is.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        let (Some(first), None) = (filled.next(), filled.clone().next()) else {
            let total: usize = bufs.iter().map(|b| b.len()).sum();
            if total == 0 {
                return Poll::Ready(Ok(0));
            }
            let mut gathered = Vec::with_capacity(total.min(WRITE_BACKLOG));
            for buf in bufs {
                let room = WRITE_BACKLOG - gathered.len();
                gathered.extend_from_slice(buf.get(..room).unwrap_or(buf));
                if gathered.len() == WRITE_BACKLOG {
                    break;
                }
            }
            return self.poll_write(cx, &gathered);
        };
        self.poll_write(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Hands data to TLS and sends what the socket takes. During the handshake data is
    /// queued (Qt's behaviour) and sent, in order, once it finished; at most 64 KiB wait
    /// ahead of the wire before this waits, and one call takes at most 64 KiB.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut made_room = false;
        loop {
            if this.core.bytes_to_write() >= WRITE_BACKLOG {
                let drive = this.drive_for(Drive::Write);
                ready!(this.poll_until(cx, drive, "writing", |core| {
                    core.bytes_to_write() < WRITE_BACKLOG
                }))?;
            }
            let chunk = data.get(..WRITE_BACKLOG).unwrap_or(data);
            // Encrypted straight into the socket where the backend can (OpenSSL: no copy
            // through its output buffer); what the socket does not take waits in order.
            let n = match this.stream.as_mut() {
                Some(io) => {
                    // Whatever went through is flushed by the send below on a transport
                    // that may buffer it.
                    this.unflushed |= this.fd_ops.is_none();
                    this.core
                        .write_through(chunk, &mut PollWriter { io, cx: &mut *cx })?
                }
                None => this.core.write(chunk)?,
            };
            if n > 0 {
                // An error here is recorded by the core and reported by the next call;
                // `Pending` only means the rest goes out with the next write or flush.
                let _ = this.poll_send(cx, true);
                if !this.parked.is_empty() {
                    // A task waiting for our output to leave, or whose waker this send's
                    // registration replaced, looks again.
                    this.wake_parked(cx);
                }
                return Poll::Ready(Ok(n));
            }
            if made_room {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            // The engine's buffer is full: make room on the wire. Waiting for that, this
            // task is parked as in the full way (a reader may take the registration).
            if this.poll_send(cx, true).is_pending() {
                this.park(cx);
                return Poll::Pending;
            }
            if let Some(failure) = this.core.failure() {
                return Poll::Ready(Err(failure.clone().into()));
            }
            made_room = true;
        }
    }

    /// Waits until every byte written reached the socket (the handshake first, if one is
    /// running).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stream.is_none() {
            // Closed: a send that failed (the data did not leave) is reported here too.
            return Poll::Ready(this.delivered());
        }
        if this.core.bytes_to_write() == 0 && !this.core.wants_write() {
            // Everything out already (after a write the socket took whole): what the full
            // way below does when nothing is left to send, and the transport flushed.
            if this.unflushed {
                if let Err(error) = ready!(this.poll_flush_transport(cx, true)) {
                    return Poll::Ready(Err(error.into()));
                }
            }
            this.sync_close();
            // Flushed: `wait_for_bytes_written` has nothing to wait for (Qt's `flush`).
            this.core.take_written_since_wait();
            return Poll::Ready(this.delivered());
        }
        let drive = this.drive_for(Drive::Write);
        let sent = ready!(this.poll_until(cx, drive, "flushing", |core| {
            core.bytes_to_write() == 0 && !core.wants_write()
        }));
        if let Err(error) = sent {
            if this.core.is_paused() && this.core.bytes_to_write() > 0 {
                // Still queued behind a paused handshake (the wait stopped: our input is
                // full of what the peer sent meanwhile): not sent, so not `Ok`, as the
                // blocking flush says (round 37, review L4: a paused core counts these
                // bytes as withheld, and the flush said `Ok`).
                return Poll::Ready(Err(error.into()));
            }
            // Nothing the application wrote was lost (the peer closed cleanly first): Ok.
            return Poll::Ready(match this.delivered() {
                Ok(()) => Ok(()),
                Err(_) => Err(error.into()),
            });
        }
        if this.unflushed {
            if let Err(error) = ready!(this.poll_flush_transport(cx, true)) {
                return Poll::Ready(Err(error.into()));
            }
        }
        this.core.take_written_since_wait();
        Poll::Ready(this.delivered())
    }

    /// Ends our side cleanly: everything written, then close_notify, then TCP's sending
    /// half is shut down. Reading stays possible until the peer finishes.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stream.is_none() {
            return Poll::Ready(this.delivered());
        }
        this.core.disconnect_from_host();
        let drive = this.drive_for(Drive::Write);
        let closed = ready!(this.poll_until(cx, drive, "closing", |core| core.is_closed()));
        if let Err(error) = closed {
            // As a flush: nothing written lost (the peer closed cleanly first) is Ok.
            return Poll::Ready(match this.delivered() {
                Ok(()) => Ok(()),
                Err(_) => Err(error.into()),
            });
        }
        ready!(this.poll_close_transport(cx))?;
        // Flushed as a flush is: `wait_for_bytes_written` has nothing to wait for.
        this.core.take_written_since_wait();
        Poll::Ready(this.delivered())
    }
}

impl<S> SslSocket<S> {
    /// A flush's verdict: an error when bytes written were not delivered (the connection
    /// failed or ended with them unsent; round 36: a reset with 64 KiB unsent flushed Ok,
    /// because the failed core had nothing left to write).
    fn delivered(&self) -> io::Result<()> {
        self.core.write_verdict().map_err(Into::into)
    }
}
