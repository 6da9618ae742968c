//! The blocking `SslSocket` (Qt's `QSslSocket` used with `waitFor*`).

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::blocking::deadline::{wait, Deadline, FixedDeadline};
use crate::blocking::transport::{
    connect_tcp, prepare_wait, read_limit, release_wait, ReadWait, SocketIo, Transport,
};
use crate::config::SslConfiguration;
use crate::core::SslCore;
use crate::enums::{SocketError, SocketOption, SocketState, SslMode};
use crate::error::{ApiMisuse, Error};
use crate::socket_api::{
    line_ready, no_progress_error, paused_error, sealed, Handshake, PendingDecision,
};

/// How long `close()` and `Drop` wait for pending data to reach the peer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most application data waiting ahead of the wire before `write` blocks, and the
/// most one `write` takes (the tokio driver's bound).
const WRITE_BACKLOG: usize = 64 * 1024;
/// The most reads a drop makes to take what the peer already sent (so closing does not
/// turn into a reset that destroys our last bytes in flight); it never waits for more.
const DROP_DRAIN_READS: usize = 16;
/// How long closing in answer to the peer's close_notify waits for its end of stream.
const ANSWER_LINGER: Duration = Duration::from_millis(250);
/// How long a close waits for the peer's end of stream after ours.
const LINGER: Duration = Duration::from_secs(2);

/// A TLS socket driven by blocking calls (Qt's `QSslSocket` with `waitFor*`).
///
/// Qt's asynchronous calls keep their shape: `connect_to_host_encrypted` only records the
/// target, and the `wait_for_*` calls do the work, each within its own timeout. `Read`,
/// `Write` and `BufRead` block (up to [`set_io_timeout`](Self::set_io_timeout)).
///
/// ```no_run
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use sslsocket::blocking::SslSocket;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut socket = SslSocket::new();
/// socket.connect_to_host_encrypted("example.com", 443);
/// socket.wait_for_encrypted(Duration::from_secs(10))?;
/// socket.write_all(b"HEAD / HTTP/1.0\r\nHost: example.com\r\n\r\n")?;
/// let mut reply = String::new();
/// socket.read_to_string(&mut reply)?;
/// # Ok(()) }
/// ```
///
/// ## Any transport
///
/// `SslSocket<S>` runs TLS over any `S: Read + Write` made with
/// [`from_stream`](SslSocket::from_stream) (a proxy tunnel, a pipe, another TLS stream).
/// The default, `SslSocket<TcpStream>`, adds what only TCP has: `connect_to_host*`, socket
/// options, addresses. TCP and Unix sockets are read and written without blocking, and
/// wait with a timeout (inside the read when only input is awaited, `poll(2)` otherwise);
/// a plain stream is read with blocking calls (see `from_stream` for the timeouts).
pub struct SslSocket<S: Read + Write = TcpStream> {
    core: SslCore,
    stream: Option<S>,
    transport: Transport<S>,
    /// How `wait_for_*` makes the connection `connect_to_host*` asked for (TCP only).
    connect: Option<ConnectFn<S>>,
    target: Option<(String, u16)>,
    encrypt_on_connect: bool,
    peer_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    io_timeout: Option<Duration>,
    seen_available: usize,
    close_deadline: Option<FixedDeadline>,
    /// The socket is being dropped: closing must not wait for anything.
    dropping: bool,
    /// The last read filled the buffer it was given: the kernel may hold more.
    more_in_kernel: bool,
    /// How the socket is set for reads that wait (see [`prepare_wait`]).
    read_wait: ReadWait,
    /// The stream was lent out by `get_ref` (whose holder may change its mode or receive
    /// timeout): the next wait sets both again. Atomic, so the socket stays `Sync`.
    lent: AtomicBool,
    /// The last read into the core asked the socket (the engine may take none).
    read_reached_socket: bool,
}

/// Makes the connection asked for, within the deadline.
type ConnectFn<S> = fn(&mut SslSocket<S>, &str, u16, &Deadline) -> Result<(), Error>;

impl Default for SslSocket {
    fn default() -> SslSocket {
        SslSocket::new()
    }
}

impl SslSocket<TcpStream> {
    /// An unconnected socket with the process default configuration.
    pub fn new() -> SslSocket {
        SslSocket::with_configuration(SslConfiguration::default_configuration())
    }

    /// An unconnected socket with this configuration.
    pub fn with_configuration(configuration: SslConfiguration) -> SslSocket {
        SslSocket::with_core(SslCore::new(configuration))
    }

    /// An unconnected socket over `core` (a server's, sharing its configuration).
    pub(crate) fn with_core(core: SslCore) -> SslSocket {
        let mut socket = SslSocket::unconnected(core, Transport::tcp());
        socket.connect = Some(SslSocket::connect_now);
        socket
    }

    /// Adopts a connected TCP stream (Qt's `setSocketDescriptor`), in `ConnectedState`.
    pub fn from_tcp_stream(
        stream: TcpStream,
        configuration: SslConfiguration,
    ) -> Result<SslSocket, Error> {
        crate::socket_api::adoptable(&stream, stream.peer_addr())?;
        SslSocket::adopt(stream, SslCore::new(configuration), None)
    }

    /// Adopts `stream` with `core` (a server's sockets share one configuration).
    /// `peer` is the address `accept` gave, which stays known when the connection is gone
    /// before the socket asks the kernel (a client that resets at once).
    pub(crate) fn adopt(
        stream: TcpStream,
        core: SslCore,
        peer: Option<SocketAddr>,
    ) -> Result<SslSocket, Error> {
        let mut socket = SslSocket::with_core(core);
        socket.take_tcp_stream(stream, peer);
        Ok(socket)
    }

    /// Adopts a connected socket given as an owned descriptor (Qt's `setSocketDescriptor`).
    #[cfg(unix)]
    pub fn set_socket_descriptor(&mut self, fd: std::os::fd::OwnedFd) -> Result<(), Error> {
        if self.core.state() != SocketState::UnconnectedState {
            // A new connection (Qt's `init()` and a new plain socket): the one in use is
            // given up at once, and nothing of it (its session, its unread data) carries
            // over to the adopted one.
            self.abort();
        }
        let stream = TcpStream::from(fd);
        crate::socket_api::adoptable(&stream, stream.peer_addr())?;
        self.set_tcp_stream(stream)
    }

    fn set_tcp_stream(&mut self, stream: TcpStream) -> Result<(), Error> {
        // Blocking or not: every read and write but a waiting read says `MSG_DONTWAIT`,
        // and the first waiting read sets the mode it needs.
        self.take_tcp_stream(stream, None);
        Ok(())
    }

    /// Drives `stream`; `peer` is its peer's address when known.
    fn take_tcp_stream(&mut self, stream: TcpStream, peer: Option<SocketAddr>) {
        // TCP_NODELAY on every socket the library drives: TLS gathers what is written into
        // records sent with one write per flush, and Nagle would only hold a response's
        // last segment back for the peer's delayed ACK (40 ms). `set_socket_option(
        // LowDelayOption, false)` turns it off again. Failing costs latency only.
        let _ = stream.set_nodelay(true);
        self.peer_addr = peer.or_else(|| stream.peer_addr().ok());
        self.local_addr = stream.local_addr().ok();
        self.set_stream(stream);
    }

    // ----- addresses ---------------------------------------------------------------

    /// The peer's address (Qt's `peerAddress` + `peerPort`; std's `peer_addr`).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Our address (Qt's `localAddress` + `localPort`; std's `local_addr`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The old name of [`peer_addr`](Self::peer_addr).
    #[deprecated(note = "use `peer_addr`, as std's sockets and the servers")]
    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// The old name of [`local_addr`](Self::local_addr).
    #[deprecated(note = "use `local_addr`, as std's sockets and the servers")]
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    // ----- driver settings ---------------------------------------------------------

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

    // ----- connecting --------------------------------------------------------------

    /// Connects in plain TCP (Qt's `connectToHost`); the connection is made by the next
    /// `wait_for_*` call. Encrypt later with `start_client_encryption` (STARTTLS).
    ///
    /// On a socket that is looking up, connecting, connected or closing, nothing happens
    /// but an `OperationError` (`error()` and `ErrorOccurred`), as in Qt: the connection
    /// in place is kept; `abort()` or `disconnect_from_host()` it first. The same holds
    /// for the other `connect_to_host*` calls.
    pub fn connect_to_host(&mut self, host: &str, port: u16) {
        if self.refuse_while_connected() {
            return;
        }
        self.core.forget_connection_peer_name();
        self.begin_connect(host, port, false);
    }

    /// Connects and starts the client handshake at once (Qt's `connectToHostEncrypted`);
    /// the certificate is verified against `host` (or the name set with
    /// `set_peer_verify_name`; a name given to an earlier
    /// `connect_to_host_encrypted_with_peer_name` was that connection's only).
    pub fn connect_to_host_encrypted(&mut self, host: &str, port: u16) {
        if self.refuse_while_connected() {
            return;
        }
        self.core.forget_connection_peer_name();
        self.begin_connect(host, port, true);
    }

    /// Like `connect_to_host_encrypted`, but the certificate is verified (and SNI sent)
    /// for `ssl_peer_name` instead of `host`.
    pub fn connect_to_host_encrypted_with_peer_name(
        &mut self,
        host: &str,
        port: u16,
        ssl_peer_name: &str,
    ) {
        if self.refuse_while_connected() {
            return;
        }
        self.core.set_connection_peer_name(ssl_peer_name);
        self.begin_connect(host, port, true);
    }

    /// Qt's `connectToHost` on a socket that is not unconnected: refused with an
    /// `OperationError`, the connection kept (round 34: it was aborted).
    fn refuse_while_connected(&mut self) -> bool {
        if self.core.state() == SocketState::UnconnectedState {
            return false;
        }
        self.core.note_error(
            &ApiMisuse(
                "trying to connect while a connection is in progress; abort or disconnect first"
                    .into(),
            )
            .into(),
        );
        true
    }

    fn begin_connect(&mut self, host: &str, port: u16, encrypted: bool) {
        self.stream = None;
        if encrypted && self.core.refuse_unsupported_protocol().is_err() {
            // Qt: an unusable protocol fails at once, with no connection attempt; the
            // error is the socket's, and its waits report it.
            self.target = None;
            return;
        }
        self.target = Some((host.to_string(), port));
        self.encrypt_on_connect = encrypted;
        self.core.handle_state(SocketState::HostLookupState);
    }

    fn connect_now(&mut self, host: &str, port: u16, deadline: &Deadline) -> Result<(), Error> {
        // A Unicode host is looked up as its A-labels (Qt's `QUrl::toAce`); one IDNA
        // refuses is not looked up at all (Qt: `HostNotFoundError`).
        let lookup = crate::verify::hostname::to_ace(host).ok_or_else(|| Error::Io {
            socket_error: SocketError::HostNotFoundError,
            context: format!("host `{}` not found", host.escape_default()),
            source: Arc::new(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a valid host name",
            )),
        })?;
        let addrs: Vec<SocketAddr> = match (&*lookup, port).to_socket_addrs() {
            Ok(addrs) => addrs.collect(),
            Err(e) => {
                return Err(Error::Io {
                    socket_error: SocketError::HostNotFoundError,
                    context: format!("host `{host}` not found"),
                    source: Arc::new(e),
                })
            }
        };
        if addrs.is_empty() {
            return Err(Error::Io {
                socket_error: SocketError::HostNotFoundError,
                context: format!("host `{host}` not found"),
                source: Arc::new(io::Error::new(io::ErrorKind::NotFound, "no address")),
            });
        }
        // Qt's `_q_startConnecting`: `stateChanged(ConnectingState)`, then `hostFound()`.
        self.core.handle_state(SocketState::ConnectingState);
        self.core.handle_host_found();
        let mut last = None;
        for addr in addrs {
            // Each address within what is left of the deadline: an expired one ends here.
            deadline.remaining("connecting")?;
            match connect_tcp(&addr, deadline) {
                Ok(stream) => {
                    if self.encrypt_on_connect {
                        // Started as the connection is reported (Qt 6: `ModeChanged`
                        // before `Connected`).
                        self.core.encrypt_when_connected(host);
                    }
                    self.take_tcp_stream(stream, Some(addr));
                    if let Some(failure) = self.core.failure().cloned() {
                        // The handshake could not start: the connection is closed, not
                        // left for the peer to time out on.
                        self.abort();
                        return Err(failure);
                    }
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Timeout("connecting".into())))
    }
}

#[cfg(unix)]
impl SslSocket<UnixStream> {
    /// Adopts a connected Unix socket, in `ConnectedState`: like
    /// [`from_stream`](SslSocket::from_stream), but driven as TCP is (reads and writes that
    /// never block, waits with timeouts), so every timeout holds as on TCP. A client names
    /// the peer with `set_peer_verify_name`.
    pub fn from_unix_stream(
        stream: UnixStream,
        configuration: SslConfiguration,
    ) -> Result<SslSocket<UnixStream>, Error> {
        let mut socket = SslSocket::unconnected(SslCore::new(configuration), Transport::unix());
        socket.set_stream(stream);
        Ok(socket)
    }
}

impl<S: Read + Write> SslSocket<S> {
    /// TLS over any connected byte stream, in `ConnectedState` and `UnencryptedMode`: a
    /// client names the peer with `set_peer_verify_name` (verified and sent as SNI), then
    /// `start_client_encryption()`; a server `start_server_encryption()`.
    ///
    /// A plain `Read + Write` is driven with blocking calls: each read waits for the
    /// stream, so the `wait_for_*` timeouts and the I/O timeout are checked between reads
    /// and writes, not during them (set the stream's own timeouts, if it has any, for
    /// that). TCP ([`from_tcp_stream`](SslSocket::from_tcp_stream)) and Unix sockets
    /// ([`from_unix_stream`](SslSocket::from_unix_stream)) are read and written without
    /// blocking (`MSG_DONTWAIT`) and wait with a timeout (inside the read, `SO_RCVTIMEO`,
    /// when waiting for input only; `poll(2)` otherwise), so their timeouts always hold.
    pub fn from_stream(stream: S, configuration: SslConfiguration) -> SslSocket<S> {
        let mut socket = SslSocket::unconnected(SslCore::new(configuration), Transport::plain());
        socket.set_stream(stream);
        socket
    }

    fn unconnected(core: SslCore, transport: Transport<S>) -> SslSocket<S> {
        SslSocket {
            transport,
            connect: None,
            core,
            stream: None,
            target: None,
            encrypt_on_connect: false,
            peer_addr: None,
            local_addr: None,
            io_timeout: None,
            seen_available: 0,
            close_deadline: None,
            dropping: false,
            more_in_kernel: true,
            read_wait: ReadWait::default(),
            lent: AtomicBool::new(false),
            read_reached_socket: false,
        }
    }

    fn set_stream(&mut self, stream: S) {
        self.stream = Some(stream);
        self.read_wait = ReadWait::default();
        self.core.handle_state(SocketState::ConnectedState);
    }

    /// The transport; `None` once the connection closed it (a close, an abort, a failure).
    /// Its blocking mode and receive timeout are the driver's business: whatever the
    /// holder sets there, the driver sets again before it next waits.
    pub fn get_ref(&self) -> Option<&S> {
        self.lent.store(true, Ordering::Relaxed);
        self.stream.as_ref()
    }

    /// The transport, mutably: reading or writing it directly corrupts the TLS stream
    /// (its mode and receive timeout are set again as after [`get_ref`](Self::get_ref)).
    pub fn get_mut(&mut self) -> Option<&mut S> {
        self.read_wait.forget();
        self.stream.as_mut()
    }

    /// The transport, giving up TLS (what the core buffered is dropped, nothing more is
    /// sent); `None` once the connection closed it. A socket comes back in blocking mode
    /// (std's default) with the receive timeout it had before the driver's first wait.
    pub fn into_inner(mut self) -> Option<S> {
        // The TLS connection ends here as by `abort()` (round 35: a connection with
        // ignored errors kept its sessions).
        self.core.abort();
        let stream = self.stream.take()?;
        if let Some(fd) = self.transport.fd {
            let _ = rustix::io::ioctl_fionbio(fd(&stream), false);
            release_wait(fd(&stream), self.read_wait);
        }
        Some(stream)
    }

    /// The timeout of blocking `Read`/`Write` calls (`None`: wait for ever). Like a
    /// socket's own `SO_RCVTIMEO`, it bounds the wait for the peer: it counts from the
    /// first time a call has to wait, so a call that finds its data buffered, or the socket
    /// ready, reads no clock. The `wait_for_*` calls count from their start.
    pub fn set_io_timeout(&mut self, timeout: Option<Duration>) {
        self.io_timeout = timeout;
    }

    fn finish_connect(&mut self, deadline: &Deadline) -> Result<(), Error> {
        if self.stream.is_some() {
            return Ok(());
        }
        // Only a connection asked for and not yet made is made here; a connection that
        // ended stays ended (no silent reconnect).
        let pending = matches!(
            self.core.state(),
            SocketState::HostLookupState | SocketState::ConnectingState
        );
        let Some((host, port)) = self.target.clone().filter(|_| pending) else {
            if self.core.is_eof() || self.core.error().is_some() {
                return Err(self.closed_error());
            }
            return Err(ApiMisuse("the socket is not connected".into()).into());
        };
        let Some(connect) = self.connect else {
            return Err(ApiMisuse("the socket is not connected".into()).into());
        };
        let result = connect(self, &host, port, deadline);
        if let Err(error) = &result {
            if !matches!(error, Error::Timeout(_)) {
                // Qt: `stateChanged(UnconnectedState)`, then `errorOccurred` (round 34).
                self.core.handle_closed();
                self.core.handle_io_error(error.clone());
                self.target = None;
            }
        }
        result
    }

    /// Starts the client handshake on a connected plain socket (Qt's
    /// `startClientEncryption`). Unread plaintext is discarded, never taken for TLS data.
    pub fn start_client_encryption(&mut self) -> Result<(), Error> {
        let host = self.target.as_ref().map(|(h, _)| h.clone());
        let host = host
            .or_else(|| self.peer_addr.map(|a| a.ip().to_string()))
            .unwrap_or_default();
        self.core.start_client_encryption(&host)?;
        self.flush_nonblocking()
    }

    /// Starts the server handshake on a connected socket (Qt's `startServerEncryption`).
    pub fn start_server_encryption(&mut self) -> Result<(), Error> {
        self.core.start_server_encryption()?;
        self.flush_nonblocking()
    }

    // ----- waiting -----------------------------------------------------------------

    /// Waits until TCP is connected (Qt's `waitForConnected`).
    pub fn wait_for_connected(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Deadline::after(timeout);
        let result = self
            .finish_connect(&deadline)
            .and_then(|()| self.flush_nonblocking());
        self.noted(result)
    }

    /// Waits until the handshake finished (Qt's `waitForEncrypted`); starts the client
    /// handshake first on a plain connection made with `connect_to_host`... only when
    /// `connect_to_host_encrypted` asked for it; a failed handshake is an error.
    ///
    /// A handshake paused for a decision (`PauseOnSslErrors`, or a hook's
    /// `Verdict::Pause`) is [`Error::Misuse`] here; [`handshake`](Self::handshake) gives
    /// it as a value instead.
    ///
    /// A failed handshake keeps its data on the socket: `ssl_handshake_errors()` lists
    /// every verification error and `peer_certificate_chain()` the chain the peer sent
    /// (what the tokio driver hands back inside `FailedHandshake`).
    pub fn wait_for_encrypted(&mut self, timeout: Duration) -> Result<(), Error> {
        let result = self.encrypted_within(timeout);
        self.noted(result)
    }

    /// `wait_for_encrypted` without noting a timeout on the socket: the server reports its
    /// own handshake timeout (once).
    pub(crate) fn encrypted_within(&mut self, timeout: Duration) -> Result<(), Error> {
        match self.handshake_until(timeout)? {
            Handshake::NeedsDecision(_) => Err(paused_error()),
            Handshake::Encrypted => Ok(()),
        }
    }

    /// Runs the started handshake until it finished or stopped for the application's
    /// decision on the peer's verification errors ([`Handshake::NeedsDecision`], with the
    /// errors and the chain). Decide with `accept_peer()` / `refuse_peer()` (or
    /// `ignore_ssl_errors_list` + `resume()`), then call this again. Failures, timeouts and
    /// a handshake never started are errors, as for `wait_for_encrypted`.
    pub fn handshake(&mut self, timeout: Duration) -> Result<Handshake, Error> {
        let result = self.handshake_until(timeout);
        self.noted(result)
    }

    fn handshake_until(&mut self, timeout: Duration) -> Result<Handshake, Error> {
        let deadline = Deadline::after(timeout);
        self.finish_connect(&deadline)?;
        if self.core.mode() == SslMode::UnencryptedMode {
            return Err(ApiMisuse("no handshake was started on this socket".into()).into());
        }
        // A connection that finished its handshake and closed at once still succeeded.
        self.drive(&deadline, "waiting for the handshake", |core| {
            core.was_encrypted() || core.is_paused()
        })?;
        if self.core.is_paused() {
            return Ok(Handshake::NeedsDecision(PendingDecision::of(&self.core)));
        }
        self.flush_nonblocking()?;
        Ok(Handshake::Encrypted)
    }

    /// Waits until new decrypted data can be read (Qt's `waitForReadyRead`): data the last
    /// call did not report, including data that arrived with the end of the handshake.
    pub fn wait_for_ready_read(&mut self, timeout: Duration) -> Result<(), Error> {
        let result = self.ready_read_until(timeout);
        self.noted(result)
    }

    fn ready_read_until(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Deadline::after(timeout);
        self.finish_connect(&deadline)?;
        if self.core.take_revealed() {
            // Reading made held-back data visible: new to the application.
            self.seen_available = self.core.bytes_available();
            return Ok(());
        }
        // New data means more than the last successful wait saw (data that arrived during
        // the handshake counts as new): a loop that waits for a whole line does not spin.
        let before = self.seen_available.min(self.core.bytes_available());
        let finished = self.drive(&deadline, "waiting for data", |core| {
            core.bytes_available() > before || core.is_eof()
        });
        finished?;
        if self.core.bytes_available() > before {
            self.seen_available = self.core.bytes_available();
            Ok(())
        } else {
            Err(self.closed_error())
        }
    }

    /// Waits until everything written so far reached the wire (Qt's `waitForBytesWritten`).
    /// As in Qt, with nothing to wait for (nothing written since the last call, and
    /// nothing waiting to be sent) it is an error at once, so that Qt's drain loop
    /// `while socket.wait_for_bytes_written(t).is_ok() {}` ends.
    pub fn wait_for_bytes_written(&mut self, timeout: Duration) -> Result<(), Error> {
        self.core.begin_wait_for_bytes_written()?;
        let deadline = Deadline::after(timeout);
        let result = self.finish_connect(&deadline).and_then(|()| {
            self.drive(&deadline, "waiting for bytes to be written", |core| {
                core.bytes_to_write() == 0 && !core.wants_write()
            })
        });
        // A failed connection has nothing left to send: what was lost is the answer
        // (round 36, as on tokio).
        let result = result.and_then(|()| self.core.write_verdict());
        self.noted(result)
    }

    /// Waits until the connection is closed (Qt's `waitForDisconnected`); an error at once
    /// when it is not connected.
    pub fn wait_for_disconnected(&mut self, timeout: Duration) -> Result<(), Error> {
        if self.core.state() == SocketState::UnconnectedState {
            return Err(ApiMisuse("the socket is not connected".into()).into());
        }
        let deadline = Deadline::after(timeout);
        let result = self.finish_connect(&deadline).and_then(|()| {
            self.drive(&deadline, "waiting for the disconnection", |core| {
                core.state() == SocketState::UnconnectedState
            })
        });
        match result {
            Ok(()) => Ok(()),
            Err(_) if self.core.state() == SocketState::UnconnectedState => Ok(()),
            Err(e) => self.noted(Err(e)),
        }
    }

    /// A public wait's result: a timeout, the connection kept, is also the socket's
    /// `error()` and an `ErrorOccurred(SocketTimeoutError)`, as Qt's `waitFor*`.
    fn noted<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(error @ Error::Timeout(_)) = &result {
            self.core.note_error(error);
        }
        result
    }

    fn closed_error(&self) -> Error {
        match self.core.error() {
            Some(e) => e.clone(),
            None => Error::Closed("the remote host closed the connection".into()),
        }
    }

    /// Moves bytes until `done` holds, the deadline passes or the connection ends.
    fn drive(
        &mut self,
        deadline: &Deadline,
        what: &str,
        done: impl FnMut(&mut SslCore) -> bool,
    ) -> Result<(), Error> {
        self.drive_into(deadline, what, done, &mut []).map(|_| ())
    }

    /// `drive` for a reader waiting with `dst`: what the input decrypts straight into it
    /// ends the drive at once. Returns how many bytes went into `dst`.
    fn drive_into(
        &mut self,
        deadline: &Deadline,
        what: &str,
        mut done: impl FnMut(&mut SslCore) -> bool,
        dst: &mut [u8],
    ) -> Result<usize, Error> {
        loop {
            self.flush_nonblocking()?;
            if done(&mut self.core) {
                return Ok(0);
            }
            if let Some(failure) = self.core.failure() {
                return Err(failure.clone());
            }
            if self.stream.is_none() {
                return Err(self.closed_error());
            }
            let want_read = self.core.wants_read();
            let want_write = self.core.wants_write();
            if !want_read && !want_write {
                if self.core.state() == SocketState::UnconnectedState || self.core.is_eof() {
                    return Err(self.closed_error());
                }
                return Err(no_progress_error(what));
            }
            // When the last read filled its buffer the kernel probably holds more: read at
            // once, without waiting. When it did not (the kernel was drained), the next
            // read waits for input (or `poll` says the socket is ready).
            if want_read && self.more_in_kernel {
                match self.read_once(dst, false)? {
                    Some(0) => continue,
                    Some(delivered) => return Ok(self.delivered(delivered)),
                    None => {}
                }
            }
            let Some(stream) = self.stream.as_ref() else {
                return Err(self.closed_error());
            };
            match self.transport.fd {
                // Waiting for input only: inside the read, which the input ends (or the
                // time left). Whatever it gives, the top of the loop goes on from there.
                // Only as long as the kernel's timer still ends the read before the
                // deadline; the rest of it goes to `poll`, which keeps time to the
                // microsecond (see `read_limit`).
                Some(fd) if want_read && !want_write => {
                    let limit = deadline.remaining(what)?;
                    if let Some(inside) = read_limit(limit) {
                        if std::mem::take(self.lent.get_mut()) {
                            self.read_wait.forget();
                        }
                        prepare_wait(fd(stream), &mut self.read_wait, inside)
                            .map_err(|e| Error::io("preparing the socket to wait", e))?;
                        match self.read_once(dst, true)? {
                            Some(delivered @ 1..) => return Ok(self.delivered(delivered)),
                            Some(_) if self.read_reached_socket => continue,
                            // Nothing arrived: the time ran out, or someone changed the
                            // socket behind the driver's back. Set it again next time.
                            None if self.read_reached_socket => {
                                self.read_wait.forget();
                                continue;
                            }
                            // The engine did not read the socket (it had input enough, or
                            // took none): wait for readability as before, not in a loop.
                            _ => {}
                        }
                    }
                    let Some(stream) = self.stream.as_ref() else {
                        return Err(self.closed_error());
                    };
                    wait(fd(stream), true, false, deadline, what)?;
                }
                Some(fd) => wait(fd(stream), want_read, want_write, deadline, what)?,
                // A plain stream blocks in its reads and writes: check the deadline, then
                // read (writes were made, blocking, at the top of the loop).
                None => {
                    deadline.remaining(what)?;
                    // A transport that buffers writes: what a flush left undone
                    // (`WouldBlock`) goes now, before the read waits for an answer to it
                    // (round 35: nothing retried it, and the handshake timed out).
                    if let Some(stream) = self.stream.as_mut() {
                        match stream.flush() {
                            Ok(()) => {}
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                                ) => {}
                            Err(e) => {
                                let error = Error::io("flushing the transport", e);
                                self.core.handle_io_error(error.clone());
                                return Err(error);
                            }
                        }
                    }
                }
            }
            // Nothing changed while waiting but the socket: read at once (whatever it
            // gives, the top of the loop sends what the core answers and checks `done`).
            if want_read {
                if let Some(delivered @ 1..) = self.read_once(dst, false)? {
                    return Ok(self.delivered(delivered));
                }
            }
        }
    }

    /// After input went straight to the reader: what the core answers goes out now if
    /// the socket takes it (an error is recorded by the core and reported by the next
    /// call, after this data).
    fn delivered(&mut self, delivered: usize) -> usize {
        let _ = self.flush_nonblocking();
        delivered
    }

    /// One read into the core (and into `dst`, see [`SslCore::read_from_into`]), without
    /// blocking, or waiting for input (`wait`: the socket prepared with `prepare_wait`):
    /// how many bytes went into `dst`, `None` when the socket had nothing to give (the
    /// caller then waits; after a waiting read, the time ran out).
    fn read_once(&mut self, dst: &mut [u8], wait: bool) -> Result<Option<usize>, Error> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let mut reader = SocketIo::new(stream, &self.transport);
        reader.wait = wait;
        let result = self.core.read_from_into_duplex(&mut reader, dst);
        self.more_in_kernel = reader.filled;
        self.read_reached_socket = reader.reached;
        match result {
            Ok((_, delivered)) => Ok(Some(delivered)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Some(0)),
            Err(e) if crate::core::ends_the_stream(&e) => {
                self.core.handle_eof();
                Ok(Some(0))
            }
            Err(e) => {
                let error = Error::io("reading from the socket", e);
                self.core.handle_io_error(error.clone());
                Err(error)
            }
        }
    }

    /// Writes what the core has to send without blocking; closes TCP when the core is done.
    /// Called after every step: the common case, nothing to send on an open connection,
    /// is answered inline.
    #[inline]
    fn flush_nonblocking(&mut self) -> Result<(), Error> {
        if !self.core.wants_write() && (self.stream.is_none() || !self.core.is_closed()) {
            return Ok(());
        }
        self.send_pending()
    }

    fn send_pending(&mut self) -> Result<(), Error> {
        if let Some(stream) = self.stream.as_mut() {
            while self.core.wants_write() {
                match self
                    .core
                    .write_to(&mut SocketIo::new(stream, &self.transport))
                {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        if crate::core::peer_is_gone(&e) && self.transport.fd.is_some() {
                            // What the peer sent before it went is still data received
                            // (the reads do not block: the descriptor is known).
                            self.core
                                .salvage_input(&mut SocketIo::new(stream, &self.transport));
                        }
                        let error = Error::io("writing to the socket", e);
                        self.core.handle_io_error(error.clone());
                        self.close_stream();
                        return Err(error);
                    }
                }
            }
        }
        if self.stream.is_some() && self.core.is_closed() {
            self.close_stream();
        }
        Ok(())
    }

    /// A transport without a descriptor flushed (its own buffer emptied), retrying one
    /// that would block until `deadline`: `flush()` promises the bytes left.
    fn flush_transport(&mut self, deadline: &Deadline) -> Result<(), Error> {
        if self.transport.fd.is_some() {
            return Ok(());
        }
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(());
            };
            match stream.flush() {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    deadline.remaining("flushing the transport")?;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => {
                    let error = Error::io("flushing the transport", e);
                    self.core.handle_io_error(error.clone());
                    return Err(error);
                }
            }
        }
    }

    fn close_stream(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            if self.transport.fd.is_none() {
                // A transport that buffers writes sends our last bytes before it is shut
                // (each write flushed it already; this retries one that could not).
                let _ = stream.flush();
            }
            self.transport.shut(&stream, Shutdown::Write);
            // Linger only after a graceful close, within the caller's deadline; a failed
            // or aborted connection, or a dropped socket, is closed at once.
            let graceful =
                self.core.failure().is_none() && self.core.state() != SocketState::UnconnectedState;
            // The peer's close_notify ends the linger as its end of stream does: nothing
            // may follow it, so no unread data can turn our close into a reset.
            if graceful && !self.core.is_eof() && !self.core.is_peer_closed_cleanly() {
                // Our own close waits up to LINGER within its deadline; a close that answers
                // the peer's close_notify only briefly; a drop not at all.
                let deadline = match &self.close_deadline {
                    _ if self.dropping => None,
                    Some(d) => Some(Deadline::from(*d).min(&Deadline::after(LINGER))),
                    None => Some(Deadline::after(ANSWER_LINGER)),
                };
                let seen_end = match (deadline, self.transport.fd) {
                    (Some(deadline), Some(_)) => self.linger(&mut stream, &deadline),
                    (None, Some(_)) => self.drain_now(&mut stream),
                    // A plain stream's reads block: no lingering on it.
                    (_, None) => false,
                };
                if seen_end {
                    self.core.handle_eof();
                }
            }
            // Our end went out above; once the peer's has arrived too, TCP has nothing left
            // to shut (the call would fail with ENOTCONN): closing the descriptor is all.
            if !self.core.is_eof() {
                self.transport.shut(&stream, Shutdown::Both);
            }
        }
        self.core.handle_closed();
    }

    /// After our end of stream, reads until the peer's (or its close_notify), briefly, so
    /// unread data does not turn our close into a reset that could destroy data in flight.
    /// While the core takes input the bytes go to it, so the peer's close_notify is seen
    /// (its end of stream is then a clean close, not a truncation); the rest is dropped.
    /// Returns whether the peer's end of stream was seen.
    fn linger(&mut self, stream: &mut S, deadline: &Deadline) -> bool {
        let Some(fd) = self.transport.fd else {
            return false;
        };
        loop {
            match self.read_or_drop(stream) {
                Some(true) => return true,
                Some(false) if self.core.is_peer_closed_cleanly() => return false,
                Some(false) => {}
                None => {
                    if wait(fd(stream), true, false, deadline, "linger").is_err() {
                        return false;
                    }
                }
            }
        }
    }

    /// `linger` without waiting: takes what the socket holds now (bounded), for `Drop`.
    fn drain_now(&mut self, stream: &mut S) -> bool {
        for _ in 0..DROP_DRAIN_READS {
            match self.read_or_drop(stream) {
                Some(true) => return true,
                Some(false) => {}
                // Nothing there now: a drop does not wait for more.
                None => return false,
            }
        }
        false
    }

    /// Reads once without waiting, into the core while it takes input, else into a sink.
    /// `Some(true)`: the peer's end of stream (or a failure); `Some(false)`: bytes were
    /// read; `None`: nothing there now.
    fn read_or_drop(&mut self, stream: &mut S) -> Option<bool> {
        match self
            .core
            .read_while_closing(&mut SocketIo::new(stream, &self.transport))
        {
            Ok(0) => Some(true),
            Ok(_) => Some(false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Some(false),
            Err(_) => Some(true),
        }
    }

    // ----- closing -----------------------------------------------------------------

    /// Graceful close (Qt's `disconnectFromHost`): every pending byte is sent, then
    /// close_notify, then TCP is closed; waits up to 30 s for that.
    pub fn disconnect_from_host(&mut self) -> Result<(), Error> {
        self.disconnect_within(CLOSE_TIMEOUT)
    }

    /// `disconnect_from_host` with its own time limit.
    pub fn disconnect_within(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Deadline::after(timeout);
        // Bytes written and not delivered yet: the close delivers them or fails.
        let pending = self.core.bytes_to_write() > 0;
        if pending
            && self.stream.is_none()
            && matches!(
                self.core.state(),
                SocketState::HostLookupState | SocketState::ConnectingState
            )
        {
            // Written before the connection was made (Qt's `pendingClose` in
            // `ConnectingState`): connect first, then close as on a connected socket.
            if let Err(error) = self.finish_connect(&deadline) {
                self.core.abort();
                return Err(error);
            }
        }
        self.core.disconnect_from_host();
        if self.core.state() == SocketState::UnconnectedState {
            // Closed at once (the handshake had not finished): nothing to deliver.
            if let Some(stream) = self.stream.take() {
                self.transport.shut(&stream, Shutdown::Both);
            }
            return Ok(());
        }
        self.close_deadline = Some(deadline.fixed());
        let result = self.drive(&deadline, "closing", |core| core.is_closed());
        // What the peer's end (or reset) left unsent: the close did not deliver it.
        let undelivered = self.core.has_undelivered();
        if self.stream.is_some() {
            self.close_stream();
        }
        if let (true, Some(failure)) = (pending, self.core.failure()) {
            return Err(failure.clone());
        }
        match result {
            Ok(()) if undelivered => Err(crate::core::undelivered_error()),
            Err(_) if self.core.is_eof() && !undelivered => Ok(()),
            result => result,
        }
    }

    /// Closes like `disconnect_from_host` and drops unread data (Qt's `close`).
    pub fn close(&mut self) -> Result<(), Error> {
        let result = if self.core.state() == SocketState::UnconnectedState {
            Ok(())
        } else {
            self.disconnect_from_host()
        };
        self.core.discard_input();
        result
    }

    /// Closes at once: pending writes are dropped, no close_notify (Qt's `abort`). On a
    /// connection with verification errors that is still open (or paused), this gives the
    /// peer up: its sessions are never resumed. After the connection ended with its peer
    /// accepted, its sessions stay. Unread data is dropped either way (Qt's `abort` closes
    /// the device).
    pub fn abort(&mut self) {
        self.core.abort();
        if let Some(stream) = self.stream.take() {
            self.transport.shut(&stream, Shutdown::Both);
        }
    }

    // ----- data --------------------------------------------------------------------

    /// One buffered line including `\n` (at most `max - 1` bytes, as Qt's `readLine`, so
    /// `max` 1 reads nothing; 0 = no limit), without
    /// waiting (Qt's `readLine`): a partial line when no whole one is buffered, empty when
    /// nothing is. The same on the tokio socket; [`next_line`](Self::next_line) waits.
    pub fn read_line(&mut self, max: usize) -> Vec<u8> {
        self.core.read_line(max)
    }

    /// Waits up to `timeout` for one line and returns it with its `\n` (Qt's
    /// `canReadLine` + `waitForReadyRead` + `readLine`); at most `max - 1` bytes (0 = no
    /// limit). Without a whole line it returns what is buffered when the peer finished, or
    /// when the read buffer is full; an empty vector means a clean end of stream. A
    /// truncated or failed stream is an error once its data has been returned. The same as the tokio socket's
    /// `next_line`, with the timeout the caller's there.
    pub fn next_line(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, Error> {
        crate::socket_api::line_max_usable(max)?;
        let deadline = Deadline::after(timeout);
        let waited = match self.finish_connect(&deadline) {
            Ok(()) => self.drive(&deadline, "reading a line", |core| line_ready(core, max)),
            Err(e) => Err(e),
        };
        let line = self.core.read_line(max);
        if !line.is_empty() {
            return Ok(line);
        }
        match waited {
            Err(e) if !self.core.is_eof() => return Err(e),
            _ => {}
        }
        // An empty line is the end of stream only when the stream ended cleanly: a
        // connection that failed (a fatal alert, a record that does not decrypt) or was
        // truncated says so, whenever the wait saw it happen.
        if let Some(failure) = self.core.failure() {
            return Err(failure.clone());
        }
        if self.core.is_truncated() {
            return Err(self.closed_error());
        }
        Ok(line)
    }

    // ----- information -------------------------------------------------------------

    /// Records an error that ended the connection (used by the server for timeouts).
    pub(crate) fn record_failure(&mut self, error: Error) {
        self.core.handle_io_error(error);
    }

    /// The deadline of one blocking `Read`/`Write`/`BufRead` call: the I/O timeout, counted
    /// from the first time the call waits (a call served from what is buffered, or by a
    /// socket ready at once, reads no clock).
    fn io_deadline(&self) -> Deadline {
        Deadline::from_first_wait(self.io_timeout.unwrap_or(Duration::MAX))
    }
}

impl<S: Read + Write> sealed::Driver for SslSocket<S> {
    fn core_ref(&self) -> &SslCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SslCore {
        &mut self.core
    }

    fn send_now(&mut self) -> Result<(), Error> {
        self.flush_nonblocking()
    }
}

impl<S: Read + Write> Read for SslSocket<S> {
    /// Blocks until decrypted data is available; 0 at a clean end of stream, an
    /// `UnexpectedEof` error after a truncation (EOF without close_notify).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.io_deadline();
        loop {
            let n = self.core.read(buf);
            if n > 0 {
                return Ok(n);
            }
            if self.core.is_eof() || self.core.state() == SocketState::UnconnectedState {
                if self.core.is_truncated() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        self.core.error_string(),
                    ));
                }
                // A failure after the peer's close_notify (our answer to it reset, the
                // peer gone) leaves the reader's end clean (round 35).
                let clean = self.core.is_eof() && self.core.is_peer_closed_cleanly();
                if let Some(failure) = self.core.failure().filter(|_| !clean) {
                    return Err(failure.clone().into());
                }
                if !self.core.is_eof() {
                    // Closed on this side (`abort`, `close`) before the peer's stream
                    // ended: nothing read is not the peer's end (Qt: the device is closed).
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the connection was closed on this side; the peer's stream did not end",
                    ));
                }
                return Ok(0);
            }
            self.finish_connect(&deadline)?;
            // What arrives may be decrypted straight into `buf`.
            let delivered = self
                .drive_into(
                    &deadline,
                    "reading",
                    |core| core.bytes_available() > 0 || core.is_eof(),
                    buf,
                )
                .or_else(|e| if self.core.is_eof() { Ok(0) } else { Err(e) })?;
            if delivered > 0 {
                return Ok(delivered);
            }
        }
    }
}

impl<S: Read + Write> Write for SslSocket<S> {
    /// Hands data to TLS (queued before the handshake ends) and sends what it can. At
    /// most 64 KiB wait ahead of the wire (as on the tokio driver): beyond that this blocks
    /// (up to the I/O timeout) until the peer takes some, and one call takes at most
    /// 64 KiB, so memory stays bounded when the peer stops reading.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let deadline = self.io_deadline();
        if self.core.bytes_to_write() >= WRITE_BACKLOG {
            self.finish_connect(&deadline)?;
            self.drive(&deadline, "writing", |core| {
                core.bytes_to_write() < WRITE_BACKLOG
            })?;
        }
        let data = data.get(..WRITE_BACKLOG).unwrap_or(data);
        loop {
            // Encrypted straight into the socket where the backend can (OpenSSL: no copy
            // through its output buffer); what the socket does not take waits in order.
            let n = match self.stream.as_mut() {
                Some(stream) => self
                    .core
                    .write_through(data, &mut SocketIo::new(stream, &self.transport))?,
                None => self.core.write(data)?,
            };
            if n > 0 {
                self.flush_nonblocking()?;
                return Ok(n);
            }
            self.drive(&deadline, "writing", |core| !core.wants_write())?;
        }
    }

    /// Blocks until everything written reached the wire.
    fn flush(&mut self) -> io::Result<()> {
        let deadline = self.io_deadline();
        if self.core.state() == SocketState::UnconnectedState {
            // Closed: a failure (what was written never left), or bytes dropped with the
            // connection (a pause the peer left), is reported here too, as the tokio
            // driver's `poll_flush` does: by the write verdict, which is `Ok` after the
            // peer's clean close when only our answering close_notify met its reset
            // (round 37, review L6: this flush failed with that reset, the tokio one not).
            return self.core.write_verdict().map_err(Into::into);
        }
        // A connection asked for and not yet made is made first (round 34: a flush right
        // after `connect_to_host_encrypted` failed), as `read` and the waits do.
        self.finish_connect(&deadline)?;
        self.drive(&deadline, "flushing", |core| {
            core.bytes_to_write() == 0 && !core.wants_write()
        })?;
        self.flush_transport(&deadline)?;
        // The connection failed meanwhile (a handshake refused): what was written did not
        // leave, and nothing is left to say so but this. Not failed, what was written may
        // have been dropped with the connection (a handshake paused when the peer left:
        // round 37, review L4, it was `Ok`). The write verdict says both, as on tokio.
        self.core.write_verdict()?;
        // Flushed: as after Qt's `flush`, `wait_for_bytes_written` has nothing to wait for.
        self.core.take_written_since_wait();
        Ok(())
    }
}

impl<S: Read + Write> BufRead for SslSocket<S> {
    /// Like `read`: an empty buffer at a clean end of stream, an `UnexpectedEof` error
    /// once a truncation's data is consumed.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.core.bytes_available() == 0 && !self.core.is_eof() {
            let deadline = self.io_deadline();
            self.finish_connect(&deadline)?;
            self.drive(&deadline, "reading", |core| {
                core.bytes_available() > 0 || core.is_eof()
            })
            .or_else(|e| if self.core.is_eof() { Ok(()) } else { Err(e) })?;
        }
        if self.core.bytes_available() == 0 && self.core.is_truncated() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                self.core.error_string(),
            ));
        }
        Ok(self.core.fill_buf())
    }

    fn consume(&mut self, amount: usize) {
        self.core.consume(amount);
    }
}

impl<S: Read + Write> Drop for SslSocket<S> {
    /// Never blocks. Qt aborts on destruction; we still hand the kernel, without waiting,
    /// what was written and our close_notify, then close (a socket over a stream without a
    /// descriptor, `from_stream`, is only dropped: writing to it could block). Whatever the kernel cannot take
    /// at once is lost: `disconnect_from_host()` (or `disconnect_within`) is the close that
    /// waits, within its deadline, until everything reached the peer.
    fn drop(&mut self) {
        // A stream without a descriptor (`from_stream`) cannot be written without
        // blocking: nothing more goes to it (round 34: a drop waited on a peer that did
        // not read). Such a socket is closed with `disconnect_from_host()` first.
        if self.core.is_handshaking() || self.core.is_paused() {
            // A handshake given up on is not finished here (round 35: the drop read the
            // peer's flight and asked the application's hooks from inside `drop`).
            self.abort();
            return;
        }
        if self.stream.is_some()
            && self.transport.fd.is_some()
            && self.core.state() != SocketState::UnconnectedState
            && self.core.failure().is_none()
        {
            self.dropping = true;
            self.core.disconnect_from_host();
            if self.flush_nonblocking().is_ok() && self.stream.is_some() {
                self.close_stream();
            }
        }
    }
}

impl<S: Read + Write> std::fmt::Debug for SslSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslSocket")
            .field("core", &self.core)
            .field("peer", &self.peer_addr)
            .finish_non_exhaustive()
    }
}
