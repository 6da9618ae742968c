//! What the blocking driver can do with a transport beyond `Read + Write`: TCP and Unix
//! sockets are non-blocking and waited on with `poll(2)`, and can shut one direction down;
//! a plain stream is read and written with blocking calls.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};

use rustix::io::Errno;
use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

use crate::blocking::deadline::{wait, Deadline};
use crate::error::Error;
#[cfg(unix)]
use std::os::unix::net::UnixStream;

/// A transport's capabilities, as plain function pointers chosen by the constructor (no
/// dynamic dispatch and no type tests on the data path).
pub(super) struct Transport<S> {
    /// The descriptor to `poll`; `Some` means the stream is non-blocking.
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

/// Connects a new TCP socket to `addr` within `deadline`, made non-blocking from the start
/// (`SOCK_NONBLOCK`): the driver wants it so, and std's `connect_timeout` would switch the
/// mode twice on the way (one `ioctl` each) only for the driver to switch it back.
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
