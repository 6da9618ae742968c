//! What the blocking driver can do with a transport beyond `Read + Write`: TCP and Unix
//! sockets are read and written without blocking (`MSG_DONTWAIT`), wait for input inside
//! the read itself (in blocking mode, with `SO_RCVTIMEO`) or with `poll(2)`, and can shut
//! one direction down; a plain stream is read and written with blocking calls.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{
    sockopt, AddressFamily, RecvFlags, SendAncillaryBuffer, SendFlags, SocketFlags, SocketType,
};

use crate::blocking::deadline::{wait, Deadline};
use crate::error::Error;
#[cfg(unix)]
use std::os::unix::net::UnixStream;

/// A transport's capabilities, as plain function pointers chosen by the constructor (no
/// dynamic dispatch and no type tests on the data path).
pub(super) struct Transport<S> {
    /// The socket's descriptor: `Some` means it is read and written without blocking
    /// (see [`SocketIo`]) and waited on with `poll` or a waiting read.
    pub(super) fd: Option<fn(&S) -> BorrowedFd<'_>>,
    /// Shuts a direction down (TCP's and Unix sockets' `shutdown`).
    pub(super) shutdown: Option<fn(&S, Shutdown) -> io::Result<()>>,
}

impl<S> Clone for Transport<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Transport<S> {}

fn fd_of<T: AsFd>(stream: &T) -> BorrowedFd<'_> {
    stream.as_fd()
}

fn tcp_shutdown(stream: &TcpStream, how: Shutdown) -> io::Result<()> {
    stream.shutdown(how)
}

#[cfg(unix)]
fn unix_shutdown(stream: &UnixStream, how: Shutdown) -> io::Result<()> {
    stream.shutdown(how)
}

impl Transport<TcpStream> {
    pub(super) fn tcp() -> Transport<TcpStream> {
        Transport {
            fd: Some(fd_of::<TcpStream>),
            shutdown: Some(tcp_shutdown),
        }
    }
}

#[cfg(unix)]
impl Transport<UnixStream> {
    pub(super) fn unix() -> Transport<UnixStream> {
        Transport {
            fd: Some(fd_of::<UnixStream>),
            shutdown: Some(unix_shutdown),
        }
    }
}

impl<S> Transport<S> {
    /// A stream that can only be read and written, blocking.
    pub(super) fn plain() -> Transport<S> {
        Transport {
            fd: None,
            shutdown: None,
        }
    }

    /// Shuts `how` down where the transport can; elsewhere dropping it closes it.
    pub(super) fn shut(&self, stream: &S, how: Shutdown) {
        if let Some(shutdown) = self.shutdown {
            let _ = shutdown(stream, how);
        }
    }
}

/// How a socket is set for reads that wait ([`SocketIo::wait`]): what the driver set,
/// and what the socket held before the driver's first wait (given back by
/// [`release_wait`]).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ReadWait {
    /// `None` when unknown: the next wait puts the descriptor in blocking mode and sets
    /// `SO_RCVTIMEO`. Then the `SO_RCVTIMEO` set (`None`: no limit).
    held: Option<Option<Duration>>,
    /// The socket's own `SO_RCVTIMEO`, read before the driver first set it.
    original: Option<Option<Duration>>,
}

impl ReadWait {
    /// Forgets what was set: the application may have changed the socket (through
    /// `get_ref`/`get_mut`, or another handle of it), or a wait ended without input
    /// (a timeout, or a mode changed behind the driver's back).
    pub(super) fn forget(&mut self) {
        self.held = None;
    }
}

/// How much longer than the time left a receive timeout already set may be and still
/// serve a wait: the kernel rounds `SO_RCVTIMEO` up to its clock tick anyway (1 to 10 ms),
/// and the waits of one handshake, a few hundred microseconds apart under one deadline,
/// then set it once, not once each.
const WAIT_SLACK: Duration = Duration::from_millis(1);

/// The end of a deadline that a wait spends in `poll` rather than in the read (see
/// [`read_limit`]); a wait shorter than this is a `poll`.
const WAIT_MARGIN: Duration = Duration::from_millis(20);

/// How long a read may wait inside the kernel when `left` remains before the deadline
/// (`None` left: no limit): `None` when the wait should be a `poll`. The kernel runs
/// `SO_RCVTIMEO` on its timer wheel, which fires late by up to a clock tick (4 ms at
/// 250 Hz, 10 ms at 100 Hz) plus up to an eighth of a long timeout, where `poll` keeps
/// time to the microsecond. So the read waits at most seven eighths of the time left,
/// less [`WAIT_MARGIN`]: it always wakes before the deadline, and the driver waits again
/// for what is left, its last [`WAIT_MARGIN`] in `poll` (a silent peer costs a few
/// wake-ups per timeout, whatever its length; data ends the wait at once either way).
pub(super) fn read_limit(left: Option<Duration>) -> Option<Option<Duration>> {
    match left {
        None => Some(None),
        Some(left) => left
            .checked_sub(WAIT_MARGIN.saturating_add(left / 8))
            .filter(|inside| !inside.is_zero())
            .map(Some),
    }
}

/// Prepares `fd` for a read that waits at most `limit` (`None`: no limit): blocking mode
/// when `state` does not know it (the socket's own receive timeout is read then, the
/// first time), then `SO_RCVTIMEO` unless what `state` says it holds serves (see
/// [`serves`]). Every other read and write of the socket passes `MSG_DONTWAIT`, so the
/// mode changes nothing else.
pub(super) fn prepare_wait(
    fd: BorrowedFd<'_>,
    state: &mut ReadWait,
    limit: Option<Duration>,
) -> io::Result<()> {
    if state.held.is_none() {
        if state.original.is_none() {
            state.original = Some(sockopt::socket_timeout(fd, sockopt::Timeout::Recv)?);
        }
        rustix::io::ioctl_fionbio(fd, false)?;
    }
    if !serves(state.held, limit) {
        // Unknown timeout or another one: set. A limit of zero never comes here (the
        // deadline reports the timeout first); rustix sends at least 1 µs.
        state.held = None;
        sockopt::set_socket_timeout(fd, sockopt::Timeout::Recv, limit)?;
        state.held = Some(limit);
    }
    Ok(())
}

/// Whether the receive timeout `held` serves a wait of `limit`: no more than
/// [`WAIT_SLACK`] past it, and at least half of it. A shorter one ends a wait early only
/// when the peer stays silent that long, and the driver then waits again for the rest,
/// with a timeout set anew; so a socket whose I/O timeout and handshake deadline are
/// alike sets it once.
fn serves(held: Option<Option<Duration>>, limit: Option<Duration>) -> bool {
    match (held, limit) {
        (Some(Some(held)), Some(wanted)) => {
            held <= wanted.saturating_add(WAIT_SLACK) && held >= wanted / 2
        }
        (Some(held), wanted) => held == wanted,
        (None, _) => false,
    }
}

/// Undoes [`prepare_wait`] for a stream given back to the application: blocking mode
/// stays (std's default for a stream), the socket's own receive timeout comes back.
pub(super) fn release_wait(fd: BorrowedFd<'_>, state: ReadWait) {
    if let Some(original) = state.original {
        let _ = sockopt::set_socket_timeout(fd, sockopt::Timeout::Recv, original);
    }
}

/// The transport as the core reads and writes it. On a socket every call passes
/// `MSG_DONTWAIT` (whatever the descriptor's mode: nothing here blocks), except a read made
/// with `wait`, which sleeps in the kernel until input arrives (or `SO_RCVTIMEO`, see
/// [`prepare_wait`]): the wake-up brings the data, where `poll` then `recv` would take two
/// system calls and a return to user space in between on the critical path. A plain
/// stream is read and written as it is (blocking).
pub(super) struct SocketIo<'a, S> {
    pub(super) stream: &'a mut S,
    pub(super) fd: Option<fn(&S) -> BorrowedFd<'_>>,
    /// Reads wait for input (the descriptor prepared with [`prepare_wait`]).
    pub(super) wait: bool,
    /// The last read filled the buffer it was given: the kernel may hold more.
    pub(super) filled: bool,
    /// A read was made.
    pub(super) reached: bool,
}

impl<'a, S> SocketIo<'a, S> {
    /// `stream` read and written without blocking.
    pub(super) fn new(stream: &'a mut S, transport: &Transport<S>) -> SocketIo<'a, S> {
        SocketIo {
            stream,
            fd: transport.fd,
            wait: false,
            filled: false,
            reached: false,
        }
    }
}

const SEND_FLAGS: SendFlags = SendFlags::DONTWAIT.union(SendFlags::NOSIGNAL);

impl<S: Read> Read for SocketIo<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reached = true;
        let n = match self.fd {
            Some(fd) => {
                let flags = if self.wait {
                    RecvFlags::empty()
                } else {
                    RecvFlags::DONTWAIT
                };
                rustix::net::recv(fd(self.stream), &mut *buf, flags)?.0
            }
            None => self.stream.read(buf)?,
        };
        self.filled = n > 0 && n == buf.len();
        Ok(n)
    }
}

impl<S: Write> SocketIo<'_, S> {
    /// After `n` bytes went to a stream without a descriptor: its own flush, so that a
    /// transport that holds writes until flushed (a `BufWriter`, a TLS-in-TLS layer) sends
    /// them (round 35: a ClientHello stayed in such a buffer; the tokio driver flushes
    /// alike). A flush that cannot go on now is retried by the driver before it waits for
    /// input; one that fails fails the write (the connection ends with its error, nothing
    /// is resent).
    fn flushed(&mut self, n: usize) -> io::Result<usize> {
        if n == 0 {
            return Ok(n);
        }
        // An interrupted flush is tried again at once (a few times); one that would block
        // is tried again by the driver before it waits for input.
        for _ in 0..8 {
            match self.stream.flush() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
                Ok(()) => break,
            }
        }
        Ok(n)
    }
}

impl<S: Write> Write for SocketIo<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.fd {
            Some(fd) => Ok(rustix::net::send(fd(self.stream), buf, SEND_FLAGS)?),
            None => {
                let n = self.stream.write(buf)?;
                self.flushed(n)
            }
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.fd {
            Some(fd) => Ok(rustix::net::sendmsg(
                fd(self.stream),
                bufs,
                &mut SendAncillaryBuffer::default(),
                SEND_FLAGS,
            )?),
            None => {
                let n = self.stream.write_vectored(bufs)?;
                self.flushed(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.fd {
            Some(_) => Ok(()),
            None => self.stream.flush(),
        }
    }
}

/// Connects a new TCP socket to `addr` within `deadline`, made non-blocking from the start
/// (`SOCK_NONBLOCK`) so the connect itself can be waited on with a deadline; std's
/// `connect_timeout` would switch the mode twice on the way (one `ioctl` each). The driver
/// puts it in blocking mode at its first waiting read (see [`prepare_wait`]).
pub(super) fn connect_tcp(addr: &SocketAddr, deadline: &Deadline) -> Result<TcpStream, Error> {
    let failed = |e: io::Error| Error::io(format!("connecting to {addr}"), e);
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| failed(e.into()))?;
    match rustix::net::connect(&fd, addr) {
        Ok(()) => {}
        // Under way (an interrupted non-blocking connect goes on too): writable once it
        // is settled either way, and `SO_ERROR` says which.
        Err(Errno::INPROGRESS | Errno::INTR) => {
            wait(fd.as_fd(), false, true, deadline, "connecting")?;
            match sockopt::socket_error(&fd) {
                Ok(Ok(())) => {}
                Ok(Err(e)) | Err(e) => return Err(failed(e.into())),
            }
        }
        Err(e) => return Err(failed(e.into())),
    }
    Ok(TcpStream::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::Duration;

    fn connects_non_blocking(listener: &TcpListener) -> Result<(), Box<dyn std::error::Error>> {
        let addr = listener.local_addr()?;
        let mut stream = connect_tcp(&addr, &Deadline::after(Duration::from_secs(10)))?;
        assert_eq!(stream.peer_addr()?, addr);
        let (accepted, _) = listener.accept()?;
        assert_eq!(accepted.peer_addr()?, stream.local_addr()?);
        // Non-blocking from the start: nothing to read is WouldBlock, not a wait.
        let error = stream.read(&mut [0u8; 1]).err().map(|e| e.kind());
        assert_eq!(error, Some(io::ErrorKind::WouldBlock));
        Ok(())
    }

    #[test]
    fn a_read_waits_in_the_kernel_only_as_long_as_the_timer_wheel_still_ends_it_in_time() {
        let ms = Duration::from_millis;
        assert_eq!(read_limit(None), Some(None));
        // The last 20 ms (and a little more) are for `poll`.
        for left in [ms(0), ms(1), ms(20), ms(22)] {
            assert_eq!(read_limit(Some(left)), None, "{left:?}");
        }
        // Longer waits: what the wheel makes of the limit (an eighth late, and a tick of
        // up to 10 ms) still ends before the deadline, with room left for `poll`.
        for left in [
            ms(23),
            ms(50),
            ms(300),
            ms(1000),
            ms(2500),
            ms(30_000),
            ms(3_600_000),
        ] {
            let inside = read_limit(Some(left)).flatten();
            assert!(inside.is_some(), "no wait inside the read for {left:?}");
            let inside = inside.unwrap_or_default();
            assert!(inside + inside / 8 + ms(10) < left, "{left:?}: {inside:?}");
            assert!(inside >= left / 2 || left < ms(100), "{left:?}: {inside:?}");
        }
    }

    #[test]
    fn a_receive_timeout_serves_a_wait_only_within_the_slack_above_it() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        // Unknown (never set, or a set that failed): set.
        assert!(!serves(None, None));
        assert!(!serves(None, Some(ms(5))));
        // No limit held and wanted; a limit held where none is wanted, and back.
        assert!(serves(Some(None), None));
        assert!(!serves(Some(Some(ms(5))), None));
        assert!(!serves(Some(None), Some(ms(5))));
        // The same, or a little longer (the same deadline, a moment later).
        assert!(serves(Some(Some(ms(5))), Some(ms(5))));
        assert!(serves(Some(Some(ms(5))), Some(ms(5) - us(999))));
        assert!(serves(Some(Some(ms(5))), Some(ms(4))));
        // Too long (the deadline would pass): set.
        assert!(!serves(Some(Some(ms(5))), Some(ms(4) - us(1))));
        // Shorter, down to half: kept (a silent peer costs one more wait); less: set.
        assert!(serves(Some(Some(ms(5))), Some(ms(6))));
        assert!(serves(Some(Some(ms(5))), Some(ms(10))));
        assert!(!serves(Some(Some(ms(5))), Some(ms(10) + us(1))));
    }

    #[test]
    fn connect_tcp_gives_a_non_blocking_stream_or_the_refusal(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        connects_non_blocking(&listener)?;
        // A port just closed is refused, unless a test running beside this one was given
        // it meanwhile: then another port (a few tries).
        let mut kind = None;
        for _ in 0..5 {
            let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            match connect_tcp(&closed, &Deadline::after(Duration::from_secs(10))) {
                Ok(_) => continue,
                Err(e) => {
                    kind = Some(e.socket_error());
                    break;
                }
            }
        }
        assert_eq!(
            kind,
            Some(crate::enums::SocketError::ConnectionRefusedError)
        );
        // IPv6 too, where the machine has a loopback for it.
        match TcpListener::bind("[::1]:0") {
            Ok(listener) => connects_non_blocking(&listener)?,
            Err(e) => eprintln!("no IPv6 loopback here ({e}): IPv4 only"),
        }
        Ok(())
    }
}
