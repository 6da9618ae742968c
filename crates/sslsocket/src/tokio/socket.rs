//! The tokio `SslSocket`: Qt's `QSslSocket` as `async fn`s plus `AsyncRead`/`AsyncWrite`.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ::tokio::net::TcpStream;

use crate::cert::{SslCertificate, SslCipher};
use crate::config::SslConfiguration;
use crate::core::SslCore;
use crate::enums::{SocketError, SocketState, SslMode, SslProtocol};
use crate::error::{ApiMisuse, Error};
use crate::ssl_error::SslError;
use crate::tokio::io::PollReader;
use crate::tokio::pump::Drive;

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
/// [`poll_event`](Self::poll_event) / [`take_events`](Self::take_events), or wait for the
/// next one with [`next_event`](Self::next_event).
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
pub struct SslSocket {
    pub(super) core: SslCore,
    pub(super) stream: Option<TcpStream>,
    /// Our sending half of TCP is shut down (the core sent all it will).
    pub(super) write_shut: bool,
    host: Option<String>,
    peer_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
}

impl SslSocket {
    /// An unconnected socket with this configuration, for the accessors only; connect with
    /// the associated functions below.
    fn unconnected(configuration: SslConfiguration) -> SslSocket {
        SslSocket::with_core(SslCore::new(configuration))
    }

    fn with_core(core: SslCore) -> SslSocket {
        SslSocket {
            core,
            stream: None,
            write_shut: false,
            host: None,
            peer_addr: None,
            local_addr: None,
        }
    }

    // ----- connecting --------------------------------------------------------------

    /// Connects and runs the client handshake (Qt's `connectToHostEncrypted` followed by
    /// `waitForEncrypted`); the certificate is verified against `host`, which is also sent
    /// as SNI. Fails with the handshake's error (its `ssl_handshake_errors` are in the
    /// message); to accept some errors, connect with [`connect_to_host`](Self::connect_to_host),
    /// set [`ignore_ssl_error_rules`](Self::ignore_ssl_error_rules) or hooks, then
    /// [`start_client_encryption`](Self::start_client_encryption).
    pub async fn connect_to_host_encrypted(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
    ) -> Result<SslSocket, Error> {
        let mut socket = SslSocket::connect_to_host(host, port, configuration).await?;
        socket.start_client_encryption().await?;
        Ok(socket)
    }

    /// Like [`connect_to_host_encrypted`](Self::connect_to_host_encrypted), but the
    /// certificate is verified (and SNI sent) for `ssl_peer_name` instead of `host` (Qt's
    /// `connectToHostEncrypted(host, port, sslPeerName)`).
    pub async fn connect_to_host_encrypted_with_peer_name(
        host: &str,
        port: u16,
        ssl_peer_name: &str,
        configuration: SslConfiguration,
    ) -> Result<SslSocket, Error> {
        let mut socket = SslSocket::connect_to_host(host, port, configuration).await?;
        socket.set_peer_verify_name(ssl_peer_name);
        socket.start_client_encryption().await?;
        Ok(socket)
    }

    /// Connects in plain TCP (Qt's `connectToHost` + `waitForConnected`), in
    /// `UnencryptedMode`: bytes pass through until
    /// [`start_client_encryption`](Self::start_client_encryption) (STARTTLS).
    pub async fn connect_to_host(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
    ) -> Result<SslSocket, Error> {
        let mut socket = SslSocket::unconnected(configuration);
        socket.host = Some(host.to_string());
        socket.core.handle_state(SocketState::HostLookupState);
        let addrs: Vec<SocketAddr> = match ::tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => return Err(host_not_found(host, e)),
        };
        if addrs.is_empty() {
            let none = io::Error::new(io::ErrorKind::NotFound, "no address");
            return Err(host_not_found(host, none));
        }
        socket.core.handle_host_found();
        socket.core.handle_state(SocketState::ConnectingState);
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    socket.set_tcp_stream(stream);
                    return Ok(socket);
                }
                Err(e) => last = Some(Error::io(format!("connecting to {addr}"), e)),
            }
        }
        let error = last.unwrap_or_else(|| Error::Closed("no address to connect to".into()));
        socket.core.handle_io_error(error.clone());
        socket.core.handle_closed();
        Err(error)
    }

    /// Adopts a connected TCP stream (Qt's `setSocketDescriptor`), in `ConnectedState` and
    /// `UnencryptedMode`: a server then calls
    /// [`start_server_encryption`](Self::start_server_encryption).
    pub fn from_tcp_stream(
        stream: TcpStream,
        configuration: SslConfiguration,
    ) -> Result<SslSocket, Error> {
        Ok(SslSocket::adopt(stream, SslCore::new(configuration)))
    }

    /// Adopts `stream` with `core` (a server's sockets share one configuration).
    pub(crate) fn adopt(stream: TcpStream, core: SslCore) -> SslSocket {
        let mut socket = SslSocket::with_core(core);
        socket.set_tcp_stream(stream);
        socket
    }

    fn set_tcp_stream(&mut self, stream: TcpStream) {
        // TCP_NODELAY, as on every socket the library drives (see the README: TLS already
        // gathers what is written into records sent with one write per flush; Nagle would
        // only hold a response's last segment back for the peer's delayed ACK). Failing
        // to set it costs latency, never correctness.
        let _ = stream.set_nodelay(true);
        self.peer_addr = stream.peer_addr().ok();
        self.local_addr = stream.local_addr().ok();
        self.stream = Some(stream);
        self.write_shut = false;
        self.core.handle_state(SocketState::ConnectedState);
    }

    // ----- handshakes --------------------------------------------------------------

    /// Starts the client handshake on a connected plain socket and waits for it (Qt's
    /// `startClientEncryption` + `waitForEncrypted`). The certificate is checked against
    /// the host connected to, or the [`set_peer_verify_name`](Self::set_peer_verify_name)
    /// name. Plaintext received and not read before is discarded, never taken for TLS data.
    pub async fn start_client_encryption(&mut self) -> Result<(), Error> {
        let host = self
            .host
            .clone()
            .or_else(|| self.peer_addr.map(|a| a.ip().to_string()))
            .unwrap_or_default();
        self.core.start_client_encryption(&host)?;
        self.wait_for_encrypted().await
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
    /// after a `tokio::time::timeout` dropped one of the calls above.
    pub async fn wait_for_encrypted(&mut self) -> Result<(), Error> {
        if self.core.mode() == SslMode::UnencryptedMode {
            return Err(ApiMisuse("no handshake was started on this socket".into()).into());
        }
        poll_fn(|cx| {
            // A handshake that finished and was followed at once by the peer's close
            // still succeeded.
            self.poll_until(cx, Drive::Both, "waiting for the handshake", |core| {
                core.was_encrypted()
            })
        })
        .await
    }

    // ----- data --------------------------------------------------------------------

    /// Waits for one line and returns it with its `\n` (Qt's `canReadLine` +
    /// `waitForReadyRead` + `readLine`); at most `max` bytes (0 = no limit). Without a whole
    /// line it returns what is buffered when the peer finished, or when the read buffer is
    /// full; an empty vector means the end of stream. A truncated stream is an error once
    /// its data has been returned.
    pub async fn read_line(&mut self, max: usize) -> Result<Vec<u8>, Error> {
        let waited = poll_fn(|cx| {
            self.poll_until(cx, Drive::Both, "reading a line", |core| {
                core.can_read_line()
                    || (max > 0 && core.bytes_available() >= max)
                    || core.is_eof()
                    || core.state() == SocketState::UnconnectedState
                    // `can_read_line` moved all decrypted bytes into the core's buffer, so
                    // not wanting input now means that buffer is full.
                    || (core.bytes_available() > 0 && !core.wants_read())
            })
        })
        .await;
        let line = self.core.read_line(max);
        if !line.is_empty() {
            return Ok(line);
        }
        waited?;
        if self.core.is_truncated() {
            return Err(self.closed_error());
        }
        Ok(line)
    }

    /// Waits until new decrypted data can be read (Qt's `waitForReadyRead`); an error when
    /// the stream ends first.
    pub async fn wait_for_ready_read(&mut self) -> Result<(), Error> {
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
    /// `waitForBytesWritten`; `AsyncWriteExt::flush` does the same).
    pub async fn wait_for_bytes_written(&mut self) -> Result<(), Error> {
        poll_fn(|cx| {
            self.poll_until(cx, Drive::Both, "waiting for bytes to be written", |core| {
                core.bytes_to_write() == 0 && !core.wants_write()
            })
        })
        .await
    }

    /// Every buffered decrypted byte, without waiting (Qt's `readAll`).
    pub fn read_all(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.core.bytes_available());
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = self.core.read(&mut buf);
            match buf.get(..n) {
                Some(chunk) if n > 0 => out.extend_from_slice(chunk),
                _ => break,
            }
        }
        out
    }

    /// Whether a whole line is buffered (Qt's `canReadLine`).
    pub fn can_read_line(&mut self) -> bool {
        self.core.can_read_line()
    }

    /// Buffered bytes, not consumed (Qt's `peek`).
    pub fn peek(&mut self, max: usize) -> Vec<u8> {
        self.core.peek(max)
    }

    /// Decrypted bytes ready to read (Qt's `bytesAvailable`).
    pub fn bytes_available(&self) -> usize {
        self.core.bytes_available()
    }

    /// Bytes written and not yet handed on (Qt's `bytesToWrite`).
    pub fn bytes_to_write(&self) -> usize {
        self.core.bytes_to_write()
    }

    /// TLS bytes waiting for the wire (Qt's `encryptedBytesToWrite`).
    pub fn encrypted_bytes_to_write(&self) -> usize {
        self.core.encrypted_bytes_to_write()
    }

    /// Whether nothing is buffered and nothing more can arrive (Qt's `atEnd`).
    pub fn at_end(&self) -> bool {
        self.core.at_end()
    }

    // ----- closing -----------------------------------------------------------------

    /// Graceful close (Qt's `disconnectFromHost` + `waitForDisconnected`): every byte
    /// written so far is sent, then close_notify, then TCP is shut down; then it waits
    /// briefly (2 s) for the peer's end of stream, so that unread data in flight does not
    /// turn our close into a reset. Data already buffered stays readable.
    pub async fn disconnect_from_host(&mut self) -> Result<(), Error> {
        self.core.disconnect_from_host();
        let result =
            poll_fn(|cx| self.poll_until(cx, Drive::Both, "closing", |core| core.is_closed()))
                .await;
        // The stream stays in place while lingering, so a caller's timeout that drops this
        // future leaves a socket that a second call closes the same way.
        if let Some(stream) = self.stream.as_mut() {
            if !self.write_shut {
                let _ = rustix::net::shutdown(&*stream, rustix::net::Shutdown::Write);
                self.write_shut = true;
            }
        }
        if self.stream.is_some() && !self.core.is_eof() {
            let _ = ::tokio::time::timeout(LINGER, poll_fn(|cx| self.poll_linger(cx))).await;
        }
        self.stream = None;
        self.core.handle_closed();
        result.or_else(|e| if self.core.is_eof() { Ok(()) } else { Err(e) })
    }

    /// After our end of stream, reads until the peer's. While the core takes input the
    /// bytes go to it, so what the peer sent before its end counts (session tickets, its
    /// close_notify, which makes the end clean rather than a truncation); the rest is
    /// dropped. `Ready` at the peer's end of stream or a read error.
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
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Poll::Ready(()),
            }
        }
    }

    /// Closes at once: pending data is dropped, no close_notify (Qt's `abort`).
    pub fn abort(&mut self) {
        self.core.abort();
        self.stream = None;
    }

    // ----- information -------------------------------------------------------------

    /// The core, for everything else it can tell.
    pub fn core(&self) -> &SslCore {
        &self.core
    }

    /// The state (Qt's `state`).
    pub fn state(&self) -> SocketState {
        self.core.state()
    }

    /// The mode (Qt's `mode`).
    pub fn mode(&self) -> SslMode {
        self.core.mode()
    }

    /// Whether the handshake finished (Qt's `isEncrypted`).
    pub fn is_encrypted(&self) -> bool {
        self.core.is_encrypted()
    }

    /// Qt's `error()`: the kind of the last error, `UnknownSocketError` when none.
    pub fn error(&self) -> SocketError {
        self.core.socket_error()
    }

    /// Qt's `errorString()`.
    pub fn error_string(&self) -> String {
        self.core.error_string()
    }

    /// Every verification error of the handshake, ignored or not (Qt's
    /// `sslHandshakeErrors`).
    pub fn ssl_handshake_errors(&self) -> &[SslError] {
        self.core.ssl_handshake_errors()
    }

    /// The peer's chain as sent, leaf first (Qt's `peerCertificateChain`).
    pub fn peer_certificate_chain(&self) -> &[SslCertificate] {
        self.core.peer_certificate_chain()
    }

    /// The peer's certificate (Qt's `peerCertificate`).
    pub fn peer_certificate(&self) -> Option<&SslCertificate> {
        self.core.peer_certificate()
    }

    /// The negotiated protocol (Qt's `sessionProtocol`).
    pub fn session_protocol(&self) -> SslProtocol {
        self.core.session_protocol()
    }

    /// The negotiated cipher (Qt's `sessionCipher`).
    pub fn session_cipher(&self) -> Option<SslCipher> {
        self.core.session_cipher()
    }

    /// The ALPN protocol agreed on (Qt's `nextNegotiatedProtocol`).
    pub fn next_negotiated_protocol(&self) -> Option<&[u8]> {
        self.core.next_negotiated_protocol()
    }

    /// The peer's address (Qt's `peerAddress` + `peerPort`).
    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Our address (Qt's `localAddress` + `localPort`).
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Records an error that ended the connection and closes it (the server's timeout).
    pub(super) fn record_failure(&mut self, error: Error) {
        self.core.handle_io_error(error);
        self.abort();
    }
}

fn host_not_found(host: &str, source: io::Error) -> Error {
    Error::Io {
        socket_error: SocketError::HostNotFoundError,
        context: format!("host `{host}` not found"),
        source: Arc::new(source),
    }
}

impl std::fmt::Debug for SslSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslSocket")
            .field("core", &self.core)
            .field("peer", &self.peer_addr)
            .finish_non_exhaustive()
    }
}

// Server-side SNI (issue #10); to be folded into the shared socket surface.
impl SslSocket {
    /// On a server socket, the server name the client asked for (SNI) in the finished
    /// handshake; `None` when it sent none, on a client, and before the handshake.
    pub fn requested_server_name(&self) -> Option<&str> {
        self.core.requested_server_name()
    }
}
