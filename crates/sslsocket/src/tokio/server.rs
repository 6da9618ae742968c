//! The tokio `SslServer` (Qt's `QSslServer`): accept TCP, run the server handshake under a
//! timeout, hand out encrypted sockets.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::config::SslConfiguration;
use crate::core::{SslCore, SslHooks};
use crate::error::Error;
use crate::socket_api::SslSocketExt;
use crate::tokio::SslSocket;

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
    configuration: SslConfiguration,
    local_addr: SocketAddr,
    handshake_timeout: Duration,
    hooks: Option<Arc<dyn SslHooks>>,
}

impl SslServer {
    /// Listens on `addr` (Qt's `listen`); `configuration` must carry a certificate and its
    /// key, which the first handshake checks. The configuration's engine is built once and
    /// shared by every connection.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        configuration: SslConfiguration,
    ) -> Result<SslServer, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io("listening", e))?;
        SslServer::from_listener(listener, configuration)
    }

    /// A server on a listener the application made (for its own socket options).
    pub fn from_listener(
        listener: TcpListener,
        configuration: SslConfiguration,
    ) -> Result<SslServer, Error> {
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("listening", e))?;
        Ok(SslServer {
            listener,
            configuration,
            local_addr,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            hooks: None,
        })
    }

    /// The address listened on, with the real port when 0 was asked for (Qt's
    /// `serverAddress` + `serverPort`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The configuration handshakes use (Qt's `sslConfiguration`).
    pub fn ssl_configuration(&self) -> &SslConfiguration {
        &self.configuration
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
        // A configuration's clones share its values: no copy per connection.
        let core = SslCore::new(self.configuration.clone());
        let limit = self.handshake_timeout;
        let hooks = self.hooks.clone();
        async move {
            let mut socket = SslSocket::adopt(stream, core);
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
        let (stream, _) = self
            .accept()
            .await
            .map_err(|error| FailedHandshake::new(error, None))?;
        self.handshake(stream).await
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
