//! `std::io` adapters over a tokio `TcpStream`, so the core reads from and writes to the
//! socket directly (no intermediate buffer): `Pending` becomes `WouldBlock`.
//!
//! The `Poll*` adapters register the task's waker when the socket is not ready; the `Try*`
//! adapter never does. The read path of `AsyncRead` uses `TryWriter` for the bytes the core
//! has to send on the side, so that it never replaces the waker of a task blocked in
//! `poll_write` on the other half of a `tokio::io::split` (tokio keeps one waker per
//! direction).

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::TcpStream;

/// `Read` over `poll_read`: `WouldBlock` means the waker is registered for readability.
pub(super) struct PollReader<'a, 'b> {
    pub(super) io: &'a mut TcpStream,
    pub(super) cx: &'a mut Context<'b>,
}

impl Read for PollReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// `Write` over `poll_write`: `WouldBlock` means the waker is registered for writability.
pub(super) struct PollWriter<'a, 'b> {
    pub(super) io: &'a mut TcpStream,
    pub(super) cx: &'a mut Context<'b>,
}

impl Write for PollWriter<'_, '_> {
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

/// `Write` over `try_write`: never registers a waker.
pub(super) struct TryWriter<'a> {
    pub(super) io: &'a TcpStream,
}

impl Write for TryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
