//! The tokio `SslSocket`: Qt's `QSslSocket` as `async fn`s plus `AsyncRead`/`AsyncWrite`.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::net::TcpStream;

use crate::config::SslConfiguration;
use crate::core::SslCore;
use crate::enums::{SocketError, SocketState, SslMode};
use crate::error::{ApiMisuse, Error};
use crate::socket_api::{line_ready, paused_error, sealed, Handshake, PendingDecision};
use crate::tokio::io::{tcp_ops, FdOps, PollReader};
use crate::tokio::pump::Drive;
use crate::tokio::FailedHandshake;

/// How long a close waits for the peer's end of stream after ours, as the blocking driver.
const LINGER: Duration = Duration::from_secs(2);

/// A TLS socket over a tokio `TcpStream` (Qt's `QSslSocket`, asynchronous).
///
/// Qt's `waitFor*` calls become `async fn`s that finish when Qt would emit the matching
/// signal; a timeout is the caller's `tokio::time::timeout`, and dropping such a future
/// loses nothing (all state lives in the [`SslCore`], so the call can be repeated). The
/// socket is also an [`AsyncRead`](::tokio::io::AsyncRead) +
/// [`AsyncWrite`](::tokio::io::AsyncWrite), and works with `tokio::io::split` for a
/// reading and a writing task.
///
/// Signals are [`SslEvent`](crate::SslEvent)s, queued in the core: drain them with
/// [`poll_event`](crate::SslSocketExt::poll_event) /
/// [`take_events`](crate::SslSocketExt::take_events), or wait for the next one with
/// [`next_event`](Self::next_event).
///
/// Reading follows Qt's and TLS's rules on the end of a connection: 0 bytes (end of
/// stream) only after the peer's close_notify; a peer that closes TCP without it after the
/// handshake gets an `UnexpectedEof` error once the buffered data is read (a truncation).
///
/// Dropping a socket closes TCP at once, without close_notify (Qt's `abort` on
/// destruction); call [`disconnect_from_host`](Self::disconnect_from_host) or
/// `AsyncWriteExt::shutdown` to end a connection cleanly.
///
/// ```no_run
/// use sslsocket::tokio::SslSocket;
/// use sslsocket::SslConfiguration;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let configuration = SslConfiguration::default_configuration();
/// let mut socket = SslSocket::connect_to_host_encrypted("example.com", 443, configuration).await?;
/// socket.write_all(b"HEAD / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
/// let mut reply = Vec::new();
/// socket.read_to_end(&mut reply).await?;
/// socket.disconnect_from_host().await?;
/// # Ok(()) }
/// ```
///
/// ## Any transport
///
/// `SslSocket<S>` runs TLS over any `S: AsyncRead + AsyncWrite + Unpin` made with
/// [`from_stream`](SslSocket::from_stream): a `tokio::io::duplex` pipe, a Unix socket, a
/// proxy tunnel, another TLS stream. The default, `SslSocket<TcpStream>`, adds what only TCP
/// has: `connect_to_host*`, socket options, addresses. [`get_ref`](SslSocket::get_ref),
/// [`get_mut`](SslSocket::get_mut) and [`into_inner`](SslSocket::into_inner) reach the
/// transport (until the connection closed it). On TCP and Unix sockets reading also sends
/// what reading made the engine answer (a key update, a close_notify) with `try_write`; a
/// transport without `try_write` sends those bytes with the next write, flush or close, so
/// that the halves of `tokio::io::split` never take each other's wake-ups.
pub struct SslSocket<S = TcpStream> {
    pub(super) core: SslCore,
    pub(super) stream: Option<S>,
    /// Our sending half of the transport is shut down (the core sent all it will).
    pub(super) write_shut: bool,
    /// Writes without a waker and read readiness, when the transport has a descriptor.
    pub(super) fd_ops: Option<FdOps<S>>,
    /// Bytes went to a transport without a descriptor (one that may buffer writes, a
    /// `BufStream` say) since its last `poll_flush` (round 34: it was never flushed).
    pub(super) unflushed: bool,
    /// The steady-state read last stopped on the transport's read readiness (its waker is
    /// registered), so the next poll most likely comes from the data arriving: it reads at
    /// once rather than asking the readiness again. Only a hint: a read that finds nothing
    /// waits as before.
    pub(super) read_armed: bool,
    /// Bytes moved on the transport (sends and reads that took something), counted by the
    /// full way ([`poll_until`](Self::poll_until)): progress that may concern another task.
    pub(super) moved: u64,
    /// The wakers of tasks waiting in the full way (the halves of a `tokio::io::split`, or
    /// more tasks sharing the socket behind a lock). The transport keeps one waker per
    /// direction, so a task's registration replaces another's (both halves drive a running
    /// handshake; a reader whose input waits for our output waits for writability):
    /// whoever makes progress wakes the others. At most `pump::MAX_PARKED` are kept.
    pub(super) parked: Vec<std::task::Waker>,
    host: Option<String>,
    peer_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
}

impl SslSocket<TcpStream> {
    /// An unconnected socket with this configuration, for the accessors only; connect with
    /// the associated functions below.
    fn unconnected(configuration: SslConfiguration) -> SslSocket {
        SslSocket::with_core(SslCore::new(configuration))
    }

    // ----- connecting --------------------------------------------------------------

    /// Connects and runs the client handshake (Qt's `connectToHostEncrypted` followed by
    /// `waitForEncrypted`); the certificate is verified against `host`, which is also sent
    /// as SNI. A failed handshake gives the socket back inside [`FailedHandshake`] (as the
    /// server's handshakes do), closed, with its `ssl_handshake_errors()` and
    /// `peer_certificate_chain()`; it converts into [`Error`] for `?`. A failure to
    /// connect has no socket. To accept some errors, connect with
    /// [`connect_to_host`](Self::connect_to_host), set `ignore_ssl_error_rules` or hooks,
    /// then [`start_client_encryption`](Self::start_client_encryption).
    pub async fn connect_to_host_encrypted(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
    ) -> Result<SslSocket, FailedHandshake> {
        let socket = SslSocket::connect(host, port, configuration, true, None)
            .await
            .map_err(|error| FailedHandshake::new(error, None))?;
        socket.encrypt_or_fail().await
    }

    /// Runs the client handshake, started as the connection was made; a failure keeps
    /// the socket, aborted, with its data.
    async fn encrypt_or_fail(mut self) -> Result<SslSocket, FailedHandshake> {
        let started = match self.core.failure() {
            Some(failure) => Err(failure.clone()),
            None => self.wait_for_encrypted().await,
        };
        match started {
            Ok(()) => Ok(self),
            Err(error) => {
                self.abort();
                Err(FailedHandshake::new(error, Some(self)))
            }
        }
    }

    /// Like [`connect_to_host_encrypted`](Self::connect_to_host_encrypted), but the
    /// certificate is verified (and SNI sent) for `ssl_peer_name` instead of `host` (Qt's
    /// `connectToHostEncrypted(host, port, sslPeerName)`).
    pub async fn connect_to_host_encrypted_with_peer_name(
        host: &str,
        port: u16,
        ssl_peer_name: &str,
        configuration: SslConfiguration,
    ) -> Result<SslSocket, FailedHandshake> {
        let socket = SslSocket::connect(host, port, configuration, true, Some(ssl_peer_name))
            .await
            .map_err(|error| FailedHandshake::new(error, None))?;
        socket.encrypt_or_fail().await
    }

    /// Connects in plain TCP (Qt's `connectToHost` + `waitForConnected`), in
    /// `UnencryptedMode`: bytes pass through until
    /// [`start_client_encryption`](Self::start_client_encryption) (STARTTLS).
    pub async fn connect_to_host(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
    ) -> Result<SslSocket, Error> {
        SslSocket::connect(host, port, configuration, false, None).await
    }

    /// Connects; with `encrypt`, the client handshake starts as the connection is made (Qt
    /// 6 reports `ModeChanged` before `Connected`), verifying `peer_verify_name` if given,
    /// else the host.
    async fn connect(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
        encrypt: bool,
        peer_verify_name: Option<&str>,
    ) -> Result<SslSocket, Error> {
        let mut socket = SslSocket::unconnected(configuration);
        socket.host = Some(host.to_string());
        if encrypt {
            // Qt: an unusable protocol fails at once, with no connection attempt.
            socket.core.refuse_unsupported_protocol()?;
        }
        socket.core.handle_state(SocketState::HostLookupState);
        if let Some(name) = peer_verify_name {
            socket.core.set_peer_verify_name(name);
        }
        if encrypt {
            socket.core.encrypt_when_connected(host);
        }
        // A Unicode host is looked up as its A-labels (Qt's `QUrl::toAce`); one IDNA
        // refuses is not looked up at all (Qt: `HostNotFoundError`).
        let Some(lookup) = crate::verify::hostname::to_ace(host) else {
            let refused = io::Error::new(io::ErrorKind::InvalidInput, "not a valid host name");
            return Err(host_not_found(host, refused));
        };
        let addrs: Vec<SocketAddr> = match ::tokio::net::lookup_host((&*lookup, port)).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => return Err(host_not_found(host, e)),
        };
        if addrs.is_empty() {
            let none = io::Error::new(io::ErrorKind::NotFound, "no address");
            return Err(host_not_found(host, none));
        }
        // Qt's `_q_startConnecting`: `stateChanged(ConnectingState)`, then `hostFound()`.
        socket.core.handle_state(SocketState::ConnectingState);
        socket.core.handle_host_found();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    socket.set_tcp_stream(stream, Some(addr));
                    return Ok(socket);
                }
                Err(e) => last = Some(Error::io(format!("connecting to {addr}"), e)),
            }
        }
        let error = last.unwrap_or_else(|| Error::Closed("no address to connect to".into()));
        // Qt's order, as on the blocking driver: unconnected, then the error.
        socket.core.handle_closed();
        socket.core.handle_io_error(error.clone());
        Err(error)
    }

    /// Adopts a connected TCP stream (Qt's `setSocketDescriptor`), in `ConnectedState` and
    /// `UnencryptedMode`: a server then calls
    /// [`start_server_encryption`](Self::start_server_encryption).
    pub fn from_tcp_stream(
        stream: TcpStream,
        configuration: SslConfiguration,
    ) -> Result<SslSocket, Error> {
        // Not a listening or UDP socket, as on the blocking driver (round 34).
        crate::socket_api::adoptable(&stream, stream.peer_addr())?;
        Ok(SslSocket::adopt(stream, SslCore::new(configuration), None))
    }

    /// Adopts `stream` with `core` (a server's sockets share one configuration); `peer`:
    /// the peer's address when the caller knows it (from `accept`), else asked for.
    pub(crate) fn adopt(stream: TcpStream, core: SslCore, peer: Option<SocketAddr>) -> SslSocket {
        let mut socket = SslSocket::with_core(core);
        socket.set_tcp_stream(stream, peer);
        socket
    }

    fn set_tcp_stream(&mut self, stream: TcpStream, peer: Option<SocketAddr>) {
        // TCP_NODELAY, as on every socket the library drives (see the README: TLS already
        // gathers what is written into records sent with one write per flush; Nagle would
        // only hold a response's last segment back for the peer's delayed ACK). Failing
        // to set it costs latency, never correctness.
        let _ = stream.set_nodelay(true);
        self.peer_addr = peer.or_else(|| stream.peer_addr().ok());
        self.local_addr = stream.local_addr().ok();
        self.fd_ops = Some(tcp_ops());
        self.set_stream(stream);
    }

    // ----- addresses ---------------------------------------------------------------

    /// The peer's address (Qt's `peerAddress` + `peerPort`; tokio's `peer_addr`).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Our address (Qt's `localAddress` + `localPort`; tokio's `local_addr`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The old name of [`peer_addr`](Self::peer_addr).
    #[deprecated(note = "use `peer_addr`, as tokio's sockets and the servers")]
    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// The old name of [`local_addr`](Self::local_addr).
    #[deprecated(note = "use `local_addr`, as tokio's sockets and the servers")]
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.local_addr
    }
}

#[cfg(unix)]
impl SslSocket<::tokio::net::UnixStream> {
    /// Adopts a connected Unix socket, in `ConnectedState` and `UnencryptedMode`, like
    /// [`from_stream`](SslSocket::from_stream), with `try_write` for the bytes reading
    /// makes the engine send. A client names the peer with `set_peer_verify_name` first.
    pub fn from_unix_stream(
        stream: ::tokio::net::UnixStream,
        configuration: SslConfiguration,
    ) -> SslSocket<::tokio::net::UnixStream> {
        let mut socket = SslSocket::with_core(SslCore::new(configuration));
        socket.fd_ops = Some(crate::tokio::io::unix_ops());
        socket.set_stream(stream);
        socket
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SslSocket<S> {
    fn with_core(core: SslCore) -> SslSocket<S> {
        SslSocket {
            core,
            stream: None,
            write_shut: false,
            fd_ops: None,
            unflushed: false,
            read_armed: false,
            moved: 0,
            parked: Vec::new(),
            host: None,
            peer_addr: None,
            local_addr: None,
        }
    }

    /// TLS over any connected byte stream, in `ConnectedState` and `UnencryptedMode`: a
    /// client names the peer with `set_peer_verify_name` (the name verified and sent as
    /// SNI) and calls [`start_client_encryption`](Self::start_client_encryption); a server
    /// calls [`start_server_encryption`](Self::start_server_encryption).
    pub fn from_stream(stream: S, configuration: SslConfiguration) -> SslSocket<S> {
        let mut socket = SslSocket::with_core(SslCore::new(configuration));
        socket.set_stream(stream);
        socket
    }

    fn set_stream(&mut self, stream: S) {
        self.stream = Some(stream);
        self.write_shut = false;
        self.core.handle_state(SocketState::ConnectedState);
    }

    /// The transport; `None` once the connection closed it (a close, an abort, a failure).
    pub fn get_ref(&self) -> Option<&S> {
        self.stream.as_ref()
    }

    /// The transport, mutably: reading or writing it directly corrupts the TLS stream.
    pub fn get_mut(&mut self) -> Option<&mut S> {
        self.stream.as_mut()
    }

    /// The transport, giving up TLS (what the core buffered is dropped); `None` once the
    /// connection closed it.
    pub fn into_inner(mut self) -> Option<S> {
        // The TLS connection ends here as by `abort()` (round 35: a connection with
        // ignored errors kept its sessions).
        if self.stream.is_some() {
            self.core.abort();
        }
        self.stream.take()
    }

    // ----- handshakes --------------------------------------------------------------

    /// Starts the client handshake on a connected plain socket and waits for it (Qt's
    /// `startClientEncryption` + `waitForEncrypted`). The certificate is checked against
    /// the host connected to, or the name set with
    /// [`set_peer_verify_name`](crate::SslSocketExt::set_peer_verify_name). Plaintext
    /// received and not read before is discarded, never taken for TLS data.
    pub async fn start_client_encryption(&mut self) -> Result<(), Error> {
        self.begin_client_encryption()?;
        self.wait_for_encrypted().await
    }

    /// Starts the client handshake without waiting (Qt's `startClientEncryption`, which
    /// returns at once): [`handshake`](Self::handshake) or `wait_for_encrypted` drives it.
    pub fn begin_client_encryption(&mut self) -> Result<(), Error> {
        let host = self
            .host
            .clone()
            .or_else(|| self.peer_addr.map(|a| a.ip().to_string()))
            .unwrap_or_default();
        self.core.start_client_encryption(&host)
    }

    /// Starts the server handshake without waiting (Qt's `startServerEncryption`):
    /// [`handshake`](Self::handshake) or `wait_for_encrypted` drives it.
    pub fn begin_server_encryption(&mut self) -> Result<(), Error> {
        self.core.start_server_encryption()
    }

    /// Starts the server handshake on a connected socket and waits for it (Qt's
    /// `startServerEncryption` + `waitForEncrypted`). [`SslServer`](crate::tokio::SslServer)
    /// does this under its handshake timeout.
    pub async fn start_server_encryption(&mut self) -> Result<(), Error> {
        self.core.start_server_encryption()?;
        self.wait_for_encrypted().await
    }

    /// Waits until the started handshake finished (Qt's `waitForEncrypted`): at once when
    /// it already has, an error when none was started or when it failed. Use it to carry on
    /// after a `tokio::time::timeout` dropped one of the calls above. A handshake paused
    /// for a decision (`PauseOnSslErrors`, or a hook's `Verdict::Pause`) is
    /// [`Error::Misuse`] here, as on the blocking driver; [`handshake`](Self::handshake)
    /// gives it as a value instead.
    pub async fn wait_for_encrypted(&mut self) -> Result<(), Error> {
        match self.handshake().await? {
            Handshake::NeedsDecision(_) => Err(paused_error()),
            Handshake::Encrypted => Ok(()),
        }
    }

    /// Drives the started handshake until it finished or stopped for the application's
    /// decision on the peer's verification errors ([`Handshake::NeedsDecision`], with the
    /// errors and the chain as values). The application may await anything meanwhile (a
    /// user prompt, a policy service): the handshake stays paused, holding back our next
    /// flight. It then calls `accept_peer()` or `refuse_peer()` (or
    /// `ignore_ssl_errors_list` + `resume()`), and this again.
    ///
    /// ```no_run
    /// use sslsocket::prelude::*;
    /// use sslsocket::tokio::SslSocket;
    /// use sslsocket::{PauseMode, SslConfiguration};
    ///
    /// # async fn ask_the_user(_: &PendingDecision) -> bool { false }
    /// # async fn demo() -> Result<(), sslsocket::Error> {
    /// let mut socket =
    ///     SslSocket::connect_to_host("example.com", 443, SslConfiguration::default()).await?;
    /// socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    /// socket.begin_client_encryption()?;
    /// while let Handshake::NeedsDecision(pending) = socket.handshake().await? {
    ///     if ask_the_user(&pending).await {
    ///         socket.accept_peer()?;
    ///     } else {
    ///         socket.refuse_peer()?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn handshake(&mut self) -> Result<Handshake, Error> {
        if self.core.mode() == SslMode::UnencryptedMode {
            return Err(ApiMisuse("no handshake was started on this socket".into()).into());
        }
        if self.core.state() == SocketState::UnconnectedState {
            // The connection ended before this wait: Qt's `waitForEncrypted` is false
            // then, whatever the handshake was, as on the blocking driver (round 36: Ok
            // after our close or the peer's).
            if self.core.is_eof() || self.core.error().is_some() {
                return Err(self.closed_error());
            }
            return Err(ApiMisuse("the socket is not connected".into()).into());
        }
        poll_fn(|cx| {
            // A handshake that finished and was followed at once by the peer's close
            // still succeeded. It is over once our last flight has gone out too, as
            // tokio-rustls's futures flush before they resolve (round 35: a TLS 1.2
            // server's Finished, or a client's over a full transport, stayed in the engine
            // while the application only read, which sends nothing with its own waker,
            // and the peer waited for it for ever).
            self.poll_until(cx, Drive::Both, "waiting for the handshake", |core| {
                core.is_paused()
                    || (core.was_encrypted()
                        && (core.encrypted_bytes_to_write() == 0
                            || core.state() == SocketState::UnconnectedState))
            })
        })
        .await?;
        if self.core.is_paused() {
            return Ok(Handshake::NeedsDecision(PendingDecision::of(&self.core)));
        }
        Ok(Handshake::Encrypted)
    }

    // ----- data --------------------------------------------------------------------

    /// One buffered line including `\n` (at most `max - 1` bytes, as Qt's `readLine`, so
    /// `max` 1 reads nothing; 0 = no limit), without
    /// waiting (Qt's `readLine`): a partial line when no whole one is buffered, empty when
    /// nothing is. The same on the blocking socket; [`next_line`](Self::next_line) waits.
    pub fn read_line(&mut self, max: usize) -> Vec<u8> {
        self.core.read_line(max)
    }

    /// Waits for one line and returns it with its `\n` (Qt's `canReadLine` +
    /// `waitForReadyRead` + `readLine`); at most `max - 1` bytes (0 = no limit). Without a whole
    /// line it returns what is buffered when the peer finished, or when the read buffer is
    /// full; an empty vector means a clean end of stream. A truncated or failed stream is
    /// an error once its data has been returned. The same as the blocking socket's `next_line`.
    pub async fn next_line(&mut self, max: usize) -> Result<Vec<u8>, Error> {
        crate::socket_api::line_max_usable(max)?;
        let waited = poll_fn(|cx| {
            self.poll_until(cx, Drive::Both, "reading a line", |core| {
                line_ready(core, max)
            })
        })
        .await;
        let line = self.core.read_line(max);
        if !line.is_empty() {
            return Ok(line);
        }
        waited?;
        // An empty line is the end of stream only when the stream ended cleanly (see the
        // blocking driver's `next_line`).
        if let Some(failure) = self.core.failure() {
            return Err(failure.clone());
        }
        if self.core.is_truncated() {
            return Err(self.closed_error());
        }
        Ok(line)
    }

    /// Waits until new decrypted data can be read (Qt's `waitForReadyRead`); an error when
    /// the stream ends first.
    pub async fn wait_for_ready_read(&mut self) -> Result<(), Error> {
        if self.core.take_revealed() {
            // Reading made held-back data visible: new to the application.
            return Ok(());
        }
        let before = self.core.bytes_available();
        let waited = poll_fn(|cx| {
            self.poll_until(cx, Drive::Both, "waiting for data", |core| {
                core.bytes_available() > before || core.is_eof()
            })
        })
        .await;
        if self.core.bytes_available() > before {
            return Ok(());
        }
        waited?;
        Err(self.closed_error())
    }

    /// Waits until everything written so far reached the wire (Qt's
    /// `waitForBytesWritten`; `AsyncWriteExt::flush` does the same). As in Qt, with nothing
    /// to wait for (nothing written since the last call, and nothing waiting to be sent)
    /// it is an error at once; `flush` is `Ok` then.
    pub async fn wait_for_bytes_written(&mut self) -> Result<(), Error> {
        self.core.begin_wait_for_bytes_written()?;
        let waited = poll_fn(|cx| {
            self.poll_until(cx, Drive::Both, "waiting for bytes to be written", |core| {
                core.bytes_to_write() == 0 && !core.wants_write()
            })
        })
        .await;
        // A failed connection has nothing left to send: what was lost is the answer
        // (round 36: a reset that lost the bytes was `Ok`).
        waited.and_then(|()| self.core.write_verdict())
    }

    /// Qt's `waitForConnected`. A tokio socket is connected once made (its constructors
    /// await the connection), so there is nothing to wait for: `Ok` while it is connected,
    /// the reason it is not otherwise (for the same code on both drivers).
    pub async fn wait_for_connected(&mut self) -> Result<(), Error> {
        if self.stream.is_some() && self.core.state() == SocketState::ConnectedState {
            return Ok(());
        }
        if self.core.error().is_some() || self.core.is_eof() {
            return Err(self.closed_error());
        }
        Err(ApiMisuse("the socket is not connected".into()).into())
    }

    /// Waits until the connection is closed (Qt's `waitForDisconnected`): by the peer, or
    /// by a failure, while what arrives meanwhile is kept for reading; an error at once
    /// when it is not connected. (Our own graceful close,
    /// [`disconnect_from_host`](Self::disconnect_from_host), waits for itself.) Bound it
    /// with `tokio::time::timeout`.
    pub async fn wait_for_disconnected(&mut self) -> Result<(), Error> {
        if self.core.state() == SocketState::UnconnectedState {
            return Err(ApiMisuse("the socket is not connected".into()).into());
        }
        let result = poll_fn(|cx| {
            self.poll_until(cx, Drive::Both, "waiting for the disconnection", |core| {
                core.state() == SocketState::UnconnectedState
            })
        })
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(_) if self.core.state() == SocketState::UnconnectedState => Ok(()),
            Err(error) => Err(error),
        }
    }

    // ----- closing -----------------------------------------------------------------

    /// Qt's `close()`: the graceful close of
    /// [`disconnect_from_host`](Self::disconnect_from_host), and the data received and not
    /// read is dropped (Qt's `close` empties the read buffer), as on the blocking socket.
    pub async fn close(&mut self) -> Result<(), Error> {
        let result = self.disconnect_from_host().await;
        self.core.discard_input();
        result
    }

    /// Graceful close (Qt's `disconnectFromHost` + `waitForDisconnected`): every byte
    /// written so far is sent, then close_notify, then TCP is shut down; then it waits
    /// briefly (2 s) for the peer's end of stream or its close_notify, so that unread data
    /// in flight does not turn our close into a reset. Data already buffered stays
    /// readable.
    pub async fn disconnect_from_host(&mut self) -> Result<(), Error> {
        if self.core.state() == SocketState::UnconnectedState && self.stream.is_none() {
            // Closed already (Qt: nothing to do); a loss was reported by the close that
            // made it, or by `error()`.
            return Ok(());
        }
        // Bytes written and not delivered yet: the close delivers them or fails (those
        // written during the handshake go out after it).
        let pending = self.core.bytes_to_write() > 0;
        self.core.disconnect_from_host();
        let result =
            poll_fn(|cx| self.poll_until(cx, Drive::Both, "closing", |core| core.is_closed()))
                .await;
        // What the peer's end (or reset) left unsent: the close did not deliver it.
        let undelivered = self.core.has_undelivered();
        // The stream stays in place while lingering, so a caller's timeout that drops this
        // future leaves a socket that a second call closes the same way. Our end goes out
        // through a transport that buffers writes too (flushed, then shut down).
        let result = match poll_fn(|cx| self.poll_close_transport(cx)).await {
            Err(error) if result.is_ok() => Err(error),
            _ => result,
        };
        // The peer's close_notify ends the linger as its end of stream does: nothing may
        // follow it, so no unread data can turn our close into a reset.
        if self.stream.is_some() && !self.core.is_eof() && !self.core.is_peer_closed_cleanly() {
            // The linger timer is made only when the peer's end has not arrived yet: a
            // timer registered with tokio's driver wakes the driver thread (an eventfd
            // write) whenever no earlier timer is pending, i.e. once per connection.
            let mut linger = std::pin::pin!(None::<::tokio::time::Sleep>);
            poll_fn(|cx| {
                if self.poll_linger(cx).is_ready() {
                    return std::task::Poll::Ready(());
                }
                if linger.is_none() {
                    linger.set(Some(::tokio::time::sleep(LINGER)));
                }
                match linger.as_mut().as_pin_mut() {
                    Some(sleep) => std::future::Future::poll(sleep, cx),
                    None => std::task::Poll::Ready(()),
                }
            })
            .await;
        }
        self.stream = None;
        self.core.handle_closed();
        if let (true, Some(failure)) = (pending, self.core.failure()) {
            return Err(failure.clone());
        }
        match result {
            Ok(()) if undelivered => Err(crate::core::undelivered_error()),
            Err(_) if self.core.is_eof() && !undelivered => Ok(()),
            result => result,
        }
    }

    /// After our end of stream, reads until the peer's. While the core takes input the
    /// bytes go to it, so what the peer sent before its end counts (session tickets, its
    /// close_notify, which makes the end clean rather than a truncation); the rest is
    /// dropped. `Ready` at the peer's end of stream or close_notify, or a read error.
    fn poll_linger(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::task::Poll;
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Poll::Ready(());
            };
            match self
                .core
                .read_while_closing(&mut PollReader { io: stream, cx })
            {
                Ok(0) => return Poll::Ready(()),
                Ok(_) if self.core.is_peer_closed_cleanly() => return Poll::Ready(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Poll::Ready(()),
            }
        }
    }

    /// Closes at once: pending writes are dropped, no close_notify (Qt's `abort`). On a
    /// connection with verification errors that is still open (or paused), this gives the
    /// peer up: its sessions are never resumed. After the connection ended with its peer
    /// accepted, its sessions stay. Unread data is dropped either way (Qt's `abort` closes
    /// the device).
    pub fn abort(&mut self) {
        self.core.abort();
        self.stream = None;
    }

    // ----- information -------------------------------------------------------------

    /// Records an error that ended the connection and closes it (the server's timeout).
    pub(super) fn record_failure(&mut self, error: Error) {
        self.core.handle_io_error(error);
        self.abort();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> sealed::Driver for SslSocket<S> {
    fn core_ref(&self) -> &SslCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SslCore {
        &mut self.core
    }

    /// Sends what the transport takes now, registering no waker (the next wait sends the
    /// rest): called after `resume()` outside any task context.
    fn send_now(&mut self) -> Result<(), Error> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match self.poll_send(&mut cx, false) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => Ok(()),
        }
    }
}

fn host_not_found(host: &str, source: io::Error) -> Error {
    Error::Io {
        socket_error: SocketError::HostNotFoundError,
        context: format!("host `{host}` not found"),
        source: Arc::new(source),
    }
}

/// Qt's abort on destruction: a connection still open is aborted, so one whose errors
/// were ignored, or that is paused, gives its sessions up as [`abort`](SslSocket::abort)
/// does (round 35: a dropped socket kept them). Nothing is sent; an accepted connection
/// without errors keeps its sessions.
impl<S> Drop for SslSocket<S> {
    fn drop(&mut self) {
        if self.stream.is_some() && self.core.state() != SocketState::UnconnectedState {
            self.core.abort();
        }
    }
}

impl<S> std::fmt::Debug for SslSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslSocket")
            .field("core", &self.core)
            .field("peer", &self.peer_addr)
            .finish_non_exhaustive()
    }
}
