//! The tokio `SslServer` (Qt's `QSslServer`): accept TCP, run the server handshake under a
//! timeout, hand out encrypted sockets.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ::tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use ::tokio::sync::watch;
use ::tokio::task::{AbortHandle, JoinSet};
use ::tokio::time::{Instant, Sleep};

use crate::config::{ReloadHandle, ServerCredentials, SslConfiguration};
use crate::core::{SslCore, SslHooks};
use crate::error::{ConfigError, Error};
use crate::socket_api::SslSocketExt;
use crate::tokio::SslSocket;

/// How many handshakes [`Incoming`] runs at once; beyond that, new connections wait in
/// the kernel's backlog, and the oldest handshake makes room once it has run
/// [`CROWDED_AFTER`].
const MAX_CONCURRENT_HANDSHAKES: usize = 256;

use crate::blocking::server::CROWDED_AFTER;

/// Qt's default handshake timeout (`QSslServer::handshakeTimeout`): 5 s.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A TLS server on a tokio `TcpListener` (Qt's `QSslServer`).
///
/// Accepting and handshaking are separate so that each connection's handshake runs in
/// its own task: a client that connects and stays silent then holds up nobody, and the
/// handshake timeout (Qt's default, 5 s) ends it.
///
/// ```no_run
/// use sslsocket::tokio::SslServer;
/// use sslsocket::SslConfiguration;
///
/// # async fn demo(configuration: SslConfiguration) -> Result<(), sslsocket::Error> {
/// let server = SslServer::bind("127.0.0.1:8443", configuration).await?;
/// loop {
///     let (stream, _peer) = server.accept().await?;
///     let handshake = server.handshake(stream);
///     tokio::spawn(async move {
///         match handshake.await {
///             Ok(mut socket) => {
///                 let _line = socket.next_line(0).await;
///                 let _ = socket.disconnect_from_host().await;
///             }
///             Err(failed) => eprintln!("handshake failed: {failed}"),
///         }
///     });
/// }
/// # }
/// ```
pub struct SslServer {
    listener: TcpListener,
    live: ReloadHandle,
    shutdown: ShutdownHandle,
    local_addr: SocketAddr,
    handshake_timeout: Duration,
    hooks: Option<Arc<dyn SslHooks>>,
    _timer_anchor: TimerAnchor,
}

impl SslServer {
    /// Listens on `addr` (Qt's `listen`); `configuration` must carry a certificate and its
    /// matching key: a missing or mismatched one (in the server-name map too) is an
    /// `Error::Config` here, before anything is accepted. The configuration's engine is
    /// built now and shared by every connection.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        configuration: SslConfiguration,
    ) -> Result<SslServer, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io("listening", e))?;
        SslServer::from_listener(listener, configuration)
    }

    /// A server on a listener the application made (for its own socket options); the
    /// configuration is checked as by [`bind`](Self::bind).
    pub fn from_listener(
        listener: TcpListener,
        configuration: SslConfiguration,
    ) -> Result<SslServer, Error> {
        let live = ReloadHandle::new(configuration)?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("listening", e))?;
        Ok(SslServer {
            listener,
            live,
            shutdown: ShutdownHandle::new(),
            local_addr,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            hooks: None,
            _timer_anchor: TimerAnchor::start(),
        })
    }

    /// The address listened on, with the real port when 0 was asked for (Qt's
    /// `serverAddress` + `serverPort`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The configuration handshakes use from now on (Qt's `sslConfiguration`): a copy,
    /// since [`reload`](Self::reload) may replace it.
    pub fn ssl_configuration(&self) -> SslConfiguration {
        self.live.ssl_configuration()
    }

    /// Replaces the certificate chain, key, OCSP staple and server-name map while the
    /// server runs (certificate hot reload): handshakes that start from now on use them,
    /// open connections are untouched. Checked first; on error nothing changes. See
    /// [`ReloadHandle`].
    pub fn reload(&self, credentials: &ServerCredentials) -> Result<(), ConfigError> {
        self.live.reload(credentials)
    }

    /// Replaces the OCSP response stapled with the server's own certificate, for
    /// handshakes that start from now on.
    pub fn set_ocsp_response(&self, response: Option<Vec<u8>>) -> Result<(), ConfigError> {
        self.live.set_ocsp_response(response)
    }

    /// A handle that reloads this server's credentials from elsewhere (a signal handler,
    /// an admin task), also after [`incoming`](Self::incoming) took the server.
    pub fn reload_handle(&self) -> ReloadHandle {
        self.live.clone()
    }

    /// A handle that starts the graceful shutdown of [`incoming`](Self::incoming) and
    /// lets connection tasks learn of it.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// The accepted connections as a stream, each handshake in its own task (a slow client
    /// holds back nobody; at most 256 run at once). Yields every connection whose
    /// handshake ended, in the order they ended: `Ok` encrypted, `Err` with the failed
    /// socket (or, with no socket, an error accepting). After
    /// [`ShutdownHandle::shutdown`] it stops accepting (the listener is closed), yields the
    /// handshakes already under way as they finish (each bounded by the handshake
    /// timeout), then ends.
    ///
    /// ```no_run
    /// # async fn demo(server: sslsocket::tokio::SslServer) {
    /// let shutdown = server.shutdown_handle();
    /// let mut incoming = server.incoming();
    /// while let Some(connection) = incoming.next().await {
    ///     let Ok(mut socket) = connection else { continue };
    ///     let guard = shutdown.guard();
    ///     tokio::spawn(async move {
    ///         let _guard = guard; // held while the connection runs
    ///         let _ = socket.disconnect_from_host().await;
    ///     });
    /// }
    /// // No more accepting; give open connections up to 10 s.
    /// let _all_closed = shutdown.wait_for_connections(std::time::Duration::from_secs(10)).await;
    /// # }
    /// ```
    pub fn incoming(self) -> Incoming {
        let mut signal = self.shutdown.0.subscribe();
        let alive = self.shutdown.0.subscribe();
        Incoming {
            alive: Some(alive),
            server: Some(self),
            handshakes: JoinSet::new(),
            started: VecDeque::new(),
            crowded: None,
            accept_pause: None,
            accept_error: None,
            signal: Box::pin(async move {
                let _ = signal.wait_for(|stopping| *stopping).await;
            }),
        }
    }

    /// How long a client has to finish its handshake (Qt's `setHandshakeTimeout`);
    /// applies to handshakes started from now on.
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.handshake_timeout = timeout;
    }

    /// The handshake timeout (Qt's `handshakeTimeout`), 5 s unless set.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Installs hooks on every connection whose handshake starts from now on (Qt's
    /// `QSslServer` signals `preSharedKeyAuthenticationRequired`, `sslErrors`, ...),
    /// as the blocking server's `set_hooks`.
    pub fn set_hooks(&mut self, hooks: Arc<dyn SslHooks>) {
        self.hooks = Some(hooks);
    }

    /// The next TCP connection, not yet encrypted. Errors are the operating system's (a
    /// full descriptor table, say); the listener stays usable after them.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr), Error> {
        self.listener
            .accept()
            .await
            .map_err(|e| Error::io("accepting a connection", e))
    }

    /// Runs the server handshake on `stream` under the handshake timeout. The future owns
    /// what it needs (`'static`), so it can be spawned, one task per connection. A failed
    /// or timed-out handshake gives the socket back inside [`FailedHandshake`], for its
    /// errors, peer chain and events; a timeout is `SocketTimeoutError`.
    pub fn handshake(
        &self,
        stream: TcpStream,
    ) -> impl Future<Output = Result<SslSocket, FailedHandshake>> + Send + 'static {
        self.handshake_from(stream, None)
    }

    /// [`handshake`](Self::handshake) of a connection from [`accept`](Self::accept), with
    /// the peer's address it gave: the socket (and a failed handshake) reports that address
    /// even when the client is gone before the socket could ask the kernel (a client that
    /// resets at once).
    pub fn handshake_accepted(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = Result<SslSocket, FailedHandshake>> + Send + 'static {
        self.handshake_from(stream, Some(peer))
    }

    /// [`handshake`](Self::handshake) with the peer's address when `accept` gave it.
    fn handshake_from(
        &self,
        stream: TcpStream,
        peer: Option<SocketAddr>,
    ) -> impl Future<Output = Result<SslSocket, FailedHandshake>> + Send + 'static {
        // The current configuration (one atomic load); its clones share its values and
        // engine: no copy per connection.
        let core = SslCore::new((*self.live.current()).clone());
        let limit = self.handshake_timeout;
        let hooks = self.hooks.clone();
        async move {
            let mut socket = SslSocket::adopt(stream, core, peer);
            if let Some(hooks) = hooks {
                socket.set_hooks(hooks);
            }
            match ::tokio::time::timeout(limit, socket.start_server_encryption()).await {
                Ok(Ok(())) => Ok(socket),
                Ok(Err(error)) => {
                    socket.abort();
                    Err(FailedHandshake::new(error, Some(socket)))
                }
                Err(_elapsed) => {
                    let error =
                        Error::Timeout("the client did not finish the handshake in time".into());
                    socket.record_failure(error.clone());
                    Err(FailedHandshake::new(error, Some(socket)))
                }
            }
        }
    }

    /// Accepts one connection and runs its handshake (Qt's `nextPendingConnection` after
    /// `pendingConnectionAvailable`). One at a time: a silent client holds this call for
    /// up to the handshake timeout, so a server for many clients uses
    /// [`accept`](Self::accept) and spawns [`handshake`](Self::handshake) instead.
    pub async fn accept_encrypted(&self) -> Result<SslSocket, FailedHandshake> {
        let (stream, peer) = self
            .accept()
            .await
            .map_err(|error| FailedHandshake::new(error, None))?;
        self.handshake_from(stream, Some(peer)).await
    }
}

/// Keeps one timer of the server's armed a little ahead, so that registering a
/// handshake's timeout never has to wake tokio's driver thread.
///
/// tokio wakes the thread parked in its I/O driver (an eventfd write, and a wakeup that
/// finds nothing to do) whenever a timer is registered earlier than every timer pending
/// when the driver last parked. A handshake timeout registered on an otherwise timer-free
/// runtime therefore costs one such wakeup per connection. With this timer pending, due
/// within [`ANCHOR_PERIOD`] (less than any handshake timeout worth having), the driver
/// always parks with an earlier timer than a new handshake's: no wakeup. It costs one
/// wakeup per period for the whole server. Aborted when the server is dropped.
struct TimerAnchor(Option<::tokio::task::JoinHandle<()>>);

/// How far ahead [`TimerAnchor`]'s timer is armed.
const ANCHOR_PERIOD: Duration = Duration::from_millis(500);

impl TimerAnchor {
    fn start() -> TimerAnchor {
        // Outside a runtime (a listener made elsewhere) there is nothing to spare.
        TimerAnchor(::tokio::runtime::Handle::try_current().ok().map(|runtime| {
            runtime.spawn(async {
                loop {
                    ::tokio::time::sleep(ANCHOR_PERIOD).await;
                }
            })
        }))
    }
}

impl Drop for TimerAnchor {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl fmt::Debug for SslServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslServer")
            .field("local_addr", &self.local_addr)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("hooks", &self.hooks.is_some())
            .finish_non_exhaustive()
    }
}

/// The accepted connections of an [`SslServer`] (from [`SslServer::incoming`]): a
/// `futures_core::Stream` of handshake results, also usable without any stream library
/// through [`next`](Self::next).
pub struct Incoming {
    /// Held until the stream ends (or is dropped): [`ShutdownHandle::wait_for_connections`]
    /// waits for it (round 37: only the shutdown signal's future held one, which the
    /// shutdown itself ended, so the wait said "all gone" while handshakes under way were
    /// still to be handed out). Let go with the stream's `None`: an ended stream kept in
    /// scope, as in [`SslServer::incoming`]'s example, holds no connection.
    alive: Option<watch::Receiver<bool>>,
    /// `None` once shutting down: the listener is closed.
    server: Option<SslServer>,
    handshakes: JoinSet<Result<SslSocket, FailedHandshake>>,
    /// The handshakes started, oldest first, with when they started: when every slot is
    /// taken, the oldest still running makes room for a waiting client.
    started: VecDeque<(Instant, AbortHandle)>,
    /// Wakes the stream when the oldest handshake may make room, while every slot is taken.
    crowded: Option<Pin<Box<Sleep>>>,
    /// After the listener failed to accept (out of descriptors, say): accepting waits until
    /// this fires, so a listener that keeps failing is not asked in a busy loop, and the
    /// handshakes that finish meanwhile (which free descriptors once handed out) go first.
    accept_pause: Option<Pin<Box<Sleep>>>,
    /// The accept error not yet reported.
    accept_error: Option<Error>,
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// How long accepting pauses after the listener failed (as hyper and Go's `net/http` pause
/// after `EMFILE`, briefly).
const ACCEPT_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

impl Incoming {
    /// The next connection whose handshake ended; `None` after a shutdown, once the
    /// handshakes under way have ended.
    pub async fn next(&mut self) -> Option<Result<SslSocket, FailedHandshake>> {
        std::future::poll_fn(|cx| self.poll_connection(cx)).await
    }

    /// How many handshakes are under way.
    pub fn handshakes_in_progress(&self) -> usize {
        self.handshakes.len()
    }

    fn poll_connection(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<SslSocket, FailedHandshake>>> {
        if self.server.is_some() && self.signal.as_mut().poll(cx).is_ready() {
            // Stop accepting: the listener closes, handshakes under way go on.
            self.server = None;
        }
        if let Some(pause) = &mut self.accept_pause {
            if pause.as_mut().poll(cx).is_ready() {
                self.accept_pause = None;
            }
        }
        if let Some(server) = self.server.as_ref().filter(|_| self.accept_pause.is_none()) {
            loop {
                // Every slot taken (finished results waiting for the application hold
                // theirs): only the oldest handshake still running, once it has run
                // `CROWDED_AFTER`, may make room, and only for a client that is waiting.
                self.started.retain(|(_, handle)| !handle.is_finished());
                let crowded = self.handshakes.len() >= MAX_CONCURRENT_HANDSHAKES;
                if crowded {
                    let Some(&(since, _)) = self.started.front() else {
                        break;
                    };
                    let due = since + CROWDED_AFTER;
                    if Instant::now() < due {
                        let timer = self
                            .crowded
                            .get_or_insert_with(|| Box::pin(::tokio::time::sleep_until(due)));
                        timer.as_mut().reset(due);
                        if timer.as_mut().poll(cx).is_pending() {
                            break;
                        }
                        continue;
                    }
                }
                match server.listener.poll_accept(cx) {
                    Poll::Ready(Ok((stream, peer))) => {
                        if crowded {
                            if let Some((_, oldest)) = self.started.pop_front() {
                                oldest.abort();
                            }
                        }
                        let handle = self
                            .handshakes
                            .spawn(server.handshake_from(stream, Some(peer)));
                        self.started.push_back((Instant::now(), handle));
                    }
                    Poll::Ready(Err(error)) => {
                        self.accept_error = Some(Error::io("accepting a connection", error));
                        let mut pause = Box::pin(::tokio::time::sleep(ACCEPT_PAUSE));
                        // Registered now: the stream is woken to accept again.
                        let _ = pause.as_mut().poll(cx);
                        self.accept_pause = Some(pause);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        loop {
            match self.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(result))) => return Poll::Ready(Some(result)),
                // A handshake task that panicked or was cancelled has nothing to hand out.
                Poll::Ready(Some(Err(_))) => continue,
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        // Finished handshakes first, then the accept error (once per failure).
        if let Some(error) = self.accept_error.take() {
            return Poll::Ready(Some(Err(FailedHandshake::new(error, None))));
        }
        if self.server.is_none() && self.handshakes.is_empty() {
            self.alive = None;
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl futures_core::Stream for Incoming {
    type Item = Result<SslSocket, FailedHandshake>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_connection(cx)
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("accepting", &self.server.is_some())
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

/// Starts a server's graceful shutdown and tells connection tasks about it (from
/// [`SslServer::shutdown_handle`]; cloneable).
#[derive(Clone, Debug)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

/// Held by a connection task (from [`ShutdownHandle::guard`]):
/// [`ShutdownHandle::wait_for_connections`] waits until every guard is dropped.
#[derive(Debug)]
pub struct ConnectionGuard(watch::Receiver<bool>);

impl ShutdownHandle {
    fn new() -> ShutdownHandle {
        ShutdownHandle(Arc::new(watch::channel(false).0))
    }

    /// Starts the shutdown: [`Incoming`] stops accepting and ends once its handshakes
    /// under way have ended; guards' [`ConnectionGuard::signalled`] return.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }

    /// Whether the shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        *self.0.borrow()
    }

    /// A guard for one connection task.
    pub fn guard(&self) -> ConnectionGuard {
        ConnectionGuard(self.0.subscribe())
    }

    /// Waits until the shutdown has started.
    pub async fn signalled(&self) {
        let mut receiver = self.0.subscribe();
        if receiver.wait_for(|stopping| *stopping).await.is_err() {
            // Every sender is gone without a shutdown: none will come.
            std::future::pending::<()>().await;
        }
    }

    /// Waits up to `deadline` for every [`ConnectionGuard`] (and the [`Incoming`] stream)
    /// to be dropped; `true` when they all were, `false` at the deadline.
    pub async fn wait_for_connections(&self, deadline: Duration) -> bool {
        ::tokio::time::timeout(deadline, self.0.closed())
            .await
            .is_ok()
    }
}

impl ConnectionGuard {
    /// Waits until the server's shutdown has started (for a connection to finish its
    /// current exchange and close). A server dropped (or its accept loop cancelled)
    /// without [`shutdown`](ShutdownHandle::shutdown) started none: this keeps waiting
    /// (round 35: it returned, and connections written in this style closed for nothing).
    pub async fn signalled(&mut self) {
        if self.0.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A server handshake that did not finish: why, and the socket it happened on (Qt's
/// `QSslServer` signals `sslErrors`, `errorOccurred`, `handshakeInterruptedOnError` carry
/// the socket the same way). Converts into [`Error`] for `?`; it is `Send + Sync`, so it
/// also fits `Box<dyn Error + Send + Sync>` and `anyhow`.
#[derive(Debug)]
pub struct FailedHandshake {
    error: Error,
    // A socket is `Send` but not `Sync` (TLS engines are not); the mutex, never locked
    // (access is through `&mut self` or `self`), makes the error shareable.
    socket: Mutex<Option<SslSocket>>,
}

impl FailedHandshake {
    pub(crate) fn new(error: Error, socket: Option<SslSocket>) -> FailedHandshake {
        FailedHandshake {
            error,
            socket: Mutex::new(socket),
        }
    }

    /// Why the handshake failed.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The socket, closed, with its handshake errors, peer chain and events; `None` when
    /// the failure came before a socket existed (accepting).
    pub fn socket_mut(&mut self) -> Option<&mut SslSocket> {
        match self.socket.get_mut() {
            Ok(socket) => socket.as_mut(),
            Err(poisoned) => poisoned.into_inner().as_mut(),
        }
    }

    /// Takes the socket out.
    pub fn into_socket(self) -> Option<SslSocket> {
        match self.socket.into_inner() {
            Ok(socket) => socket,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl fmt::Display for FailedHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for FailedHandshake {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl From<FailedHandshake> for Error {
    fn from(failed: FailedHandshake) -> Error {
        failed.error
    }
}
