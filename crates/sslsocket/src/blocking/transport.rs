//! What the blocking driver can do with a transport beyond `Read + Write`: TCP and Unix
//! sockets are non-blocking and waited on with `poll(2)`, and can shut one direction down;
//! a plain stream is read and written with blocking calls.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
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
