//! The tokio driver: [`SslSocket`] (Qt's `QSslSocket` as `async fn`s, `AsyncRead` and
//! `AsyncWrite`) and [`SslServer`] (Qt's `QSslServer`, one task per connection).
//!
//! Like the blocking driver it only moves bytes between the transport (a tokio `TcpStream`
//! by default, any `AsyncRead + AsyncWrite + Unpin` with `SslSocket::from_stream`) and the
//! [`SslCore`](crate::core::SslCore), which decides everything about TLS. Bytes go from the
//! socket straight into the TLS engine and from the engine straight to the socket: the
//! core reads and writes through small `std::io` adapters over `poll_read`/`poll_write`
//! that turn `Pending` into `WouldBlock`.
//!
//! `Pending` always means a waker is registered; nothing in this module sleeps or keeps a
//! deadline of its own except the server's handshake timeout (with one timer per server
//! kept armed ahead, so that registering a connection's timeout does not wake tokio's
//! driver thread) and the short linger of
//! [`SslSocket::disconnect_from_host`], so it needs a runtime with the time driver (what
//! `#[tokio::main]` builds). Every other limit is the caller's `tokio::time::timeout`.
//!
//! ```no_run
//! use sslsocket::prelude::*;
//! use sslsocket::tokio::SslSocket;
//! use sslsocket::{SslCertificate, SslConfiguration};
//!
//! # async fn demo(ca: SslCertificate) -> Result<(), sslsocket::Error> {
//! let mut configuration = SslConfiguration::default();
//! configuration.add_ca_certificate(ca);
//! let mut socket = SslSocket::connect_to_host_encrypted("localhost", 8443, configuration).await?;
//! println!("{} {:?}", socket.session_protocol(), socket.session_cipher());
//! let line = socket.next_line(0).await?;
//! socket.disconnect_from_host().await?;
//! # let _ = line; Ok(()) }
//! ```

mod events;
mod io;
mod options;
mod pump;
mod server;
mod socket;
mod stream;

pub use server::{ConnectionGuard, FailedHandshake, Incoming, ShutdownHandle, SslServer};
pub use socket::SslSocket;
