//! `std::io` adapters over the transport (a tokio `TcpStream`, or any `AsyncRead +
//! AsyncWrite`), so the core reads from and writes to it directly (no intermediate
//! buffer): `Pending` becomes `WouldBlock`.
//!
//! The `Poll*` adapters register the task's waker when the socket is not ready; the `Try*`
//! adapter never does. The read path of `AsyncRead` uses `TryWriter` for the bytes the core
//! has to send on the side, so that it never replaces the waker of a task blocked in
//! `poll_write` on the other half of a `tokio::io::split` (tokio keeps one waker per
//! direction). Only transports with a `try_write` (TCP, Unix sockets) have that adapter; on
//! others the read path leaves such bytes for the next write or flush.

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `Read` over `poll_read`: `WouldBlock` means the waker is registered for readability.
pub(super) struct PollReader<'a, 'b, S> {
    pub(super) io: &'a mut S,
    pub(super) cx: &'a mut Context<'b>,
}

impl<S: AsyncRead + Unpin> Read for PollReader<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// [`PollReader`] whose writes go out with `try_write` (never a waker: the writing half
/// of a `tokio::io::split` keeps its own), for what the engine sends while it reads; a
/// transport without `try_write` takes none (`WouldBlock`: the bytes wait for the next
/// write or flush).
pub(super) struct PollDuplex<'a, 'b, S> {
    pub(super) io: &'a mut S,
    pub(super) cx: &'a mut Context<'b>,
    pub(super) send: Option<FdOps<S>>,
}

impl<S: AsyncRead + Unpin> Read for PollDuplex<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        PollReader {
            io: &mut *self.io,
            cx: &mut *self.cx,
        }
        .read(buf)
    }
}

impl<S> Write for PollDuplex<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.send {
            Some(ops) => (ops.write)(self.io, buf),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `Write` over `poll_write`: `WouldBlock` means the waker is registered for writability.
pub(super) struct PollWriter<'a, 'b, S> {
    pub(super) io: &'a mut S,
    pub(super) cx: &'a mut Context<'b>,
}

impl<S: AsyncWrite + Unpin> Write for PollWriter<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// rustls hands over every pending record at once; one `writev` sends them all.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a descriptor-backed transport (TCP, a Unix socket) offers beyond `AsyncRead` +
/// `AsyncWrite`: writes that never register a waker (`try_write`), its read readiness, so a
/// read that can only say `WouldBlock` is not run, and a read of what the kernel holds now,
/// whatever tokio last learnt of the readiness (for [`SslCore::salvage_input`]).
///
/// [`SslCore::salvage_input`]: crate::core::SslCore::salvage_input
pub(super) struct FdOps<S> {
    pub(super) write: fn(&S, &[u8]) -> io::Result<usize>,
    pub(super) write_vectored: fn(&S, &[IoSlice<'_>]) -> io::Result<usize>,
    pub(super) read_ready: fn(&S, &mut Context<'_>) -> Poll<io::Result<()>>,
    pub(super) read_now: fn(&S, &mut [u8]) -> io::Result<usize>,
}

/// A read of the kernel's receive queue that never blocks nor asks tokio's readiness.
#[cfg(unix)]
fn recv_now<S: std::os::fd::AsFd>(io: &S, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::net::recv(io, buf, rustix::net::RecvFlags::DONTWAIT)?.0)
}

/// `Read` over [`FdOps::read_now`]: never blocks, never registers a waker.
pub(super) struct NowReader<'a, S> {
    pub(super) io: &'a S,
    pub(super) ops: FdOps<S>,
}

impl<S> Read for NowReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (self.ops.read_now)(self.io, buf)
    }
}

impl<S> Clone for FdOps<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for FdOps<S> {}

/// `TcpStream`'s `try_write`.
pub(super) fn tcp_ops() -> FdOps<::tokio::net::TcpStream> {
    FdOps {
        write: |io, buf| io.try_write(buf),
        write_vectored: |io, bufs| io.try_write_vectored(bufs),
        read_ready: |io, cx| io.poll_read_ready(cx),
        #[cfg(unix)]
        read_now: |io, buf| recv_now(io, buf),
        #[cfg(not(unix))]
        read_now: |io, buf| io.try_read(buf),
    }
}

/// `UnixStream`'s `try_write`.
#[cfg(unix)]
pub(super) fn unix_ops() -> FdOps<::tokio::net::UnixStream> {
    FdOps {
        write: |io, buf| io.try_write(buf),
        write_vectored: |io, bufs| io.try_write_vectored(bufs),
        read_ready: |io, cx| io.poll_read_ready(cx),
        read_now: |io, buf| recv_now(io, buf),
    }
}

/// `Write` over `try_write`: never registers a waker.
pub(super) struct TryWriter<'a, S> {
    pub(super) io: &'a S,
    pub(super) send: FdOps<S>,
}

impl<S> Write for TryWriter<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (self.send.write)(self.io, buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (self.send.write_vectored)(self.io, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
