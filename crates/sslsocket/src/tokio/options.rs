//! The tokio `SslSocket`'s TCP options (Qt's `setSocketOption`); the settings over the
//! core are [`SslSocketExt`](crate::SslSocketExt)'s.

use std::io;

use ::tokio::net::TcpStream;

use crate::enums::SocketOption;
use crate::error::{ApiMisuse, Error};
use crate::tokio::SslSocket;

impl SslSocket {
    /// Sets a TCP option (Qt's `setSocketOption`).
    pub fn set_socket_option(&mut self, option: SocketOption, on: bool) -> Result<(), Error> {
        let stream = self.connected_stream()?;
        let result = match option {
            SocketOption::LowDelayOption => stream.set_nodelay(on),
            SocketOption::KeepAliveOption => {
                rustix::net::sockopt::set_socket_keepalive(stream, on).map_err(io::Error::from)
            }
        };
        result.map_err(|e| Error::io("setting a socket option", e))
    }

    /// Reads a TCP option back (Qt's `socketOption`).
    pub fn socket_option(&self, option: SocketOption) -> Result<bool, Error> {
        let stream = self.connected_stream()?;
        let result = match option {
            SocketOption::LowDelayOption => stream.nodelay(),
            SocketOption::KeepAliveOption => {
                rustix::net::sockopt::socket_keepalive(stream).map_err(io::Error::from)
            }
        };
        result.map_err(|e| Error::io("reading a socket option", e))
    }

    fn connected_stream(&self) -> Result<&TcpStream, Error> {
        self.stream
            .as_ref()
            .ok_or_else(|| ApiMisuse("the socket is not connected".into()).into())
    }
}
