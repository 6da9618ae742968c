//! One client interface over both drivers, so a behaviour test is written once and run on
//! the blocking and the tokio socket alike. Everything that does not wait is the library's
//! own shared surface (`SslSocketExt`, reached through [`ClientDriver::socket`]); this
//! only gives the waiting calls one shape: the blocking driver's timeouts are its own, the
//! tokio driver's are `tokio::time::timeout` on a runtime owned by the client.

use std::io::Write;
use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::{Error, SslConfiguration};
use tokio::io::AsyncWriteExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client socket of one driver, with the waiting calls as blocking functions.
pub trait ClientDriver: Sized {
    /// The library's socket type.
    type Socket: SslSocketExt;
    /// For messages: `blocking` or `tokio`.
    const NAME: &'static str;

    /// Connects in plain TCP, lets `setup` adjust the socket, then starts the client
    /// handshake without waiting for it.
    fn start(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
        setup: impl FnOnce(&mut Self::Socket),
    ) -> Result<Self, Error>;
    /// `connect_to_host_encrypted` + waiting for the handshake; a failure gives the error
    /// and the socket when the driver keeps it.
    fn connect_encrypted(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
        limit: Duration,
    ) -> Result<Self, (Error, Option<Self>)>;
    /// The library socket.
    fn socket(&mut self) -> &mut Self::Socket;
    /// `handshake()` within `limit`.
    fn handshake(&mut self, limit: Duration) -> Result<Handshake, Error>;
    /// `wait_for_encrypted()` within `limit`.
    fn wait_for_encrypted(&mut self, limit: Duration) -> Result<(), Error>;
    /// `wait_for_ready_read()` within `limit`.
    fn wait_for_ready_read(&mut self, limit: Duration) -> Result<(), Error>;
    /// `next_line(max)` within `limit`.
    fn next_line(&mut self, max: usize, limit: Duration) -> Result<Vec<u8>, Error>;
    /// `read_line(max)`: never waits.
    fn read_line(&mut self, max: usize) -> Vec<u8>;
    /// Writes everything and flushes.
    fn write_all(&mut self, data: &[u8]) -> Result<(), Error>;
    /// The graceful close, `disconnect_from_host()`, within `limit`.
    fn disconnect(&mut self, limit: Duration) -> Result<(), Error>;
}

/// The blocking driver's client.
pub struct Blocking(pub sslsocket::blocking::SslSocket);

impl ClientDriver for Blocking {
    type Socket = sslsocket::blocking::SslSocket;
    const NAME: &'static str = "blocking";

    fn start(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
        setup: impl FnOnce(&mut Self::Socket),
    ) -> Result<Self, Error> {
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
        setup(&mut socket);
        socket.connect_to_host(host, port);
        socket.wait_for_connected(Duration::from_secs(10))?;
        socket.start_client_encryption()?;
        Ok(Blocking(socket))
    }

    fn connect_encrypted(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
        limit: Duration,
    ) -> Result<Self, (Error, Option<Self>)> {
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(configuration);
        socket.connect_to_host_encrypted(host, port);
        match socket.wait_for_encrypted(limit) {
            Ok(()) => Ok(Blocking(socket)),
            Err(error) => Err((error, Some(Blocking(socket)))),
        }
    }

    fn socket(&mut self) -> &mut Self::Socket {
        &mut self.0
    }

    fn handshake(&mut self, limit: Duration) -> Result<Handshake, Error> {
        self.0.handshake(limit)
    }

    fn wait_for_encrypted(&mut self, limit: Duration) -> Result<(), Error> {
        self.0.wait_for_encrypted(limit)
    }

    fn wait_for_ready_read(&mut self, limit: Duration) -> Result<(), Error> {
        self.0.wait_for_ready_read(limit)
    }

    fn next_line(&mut self, max: usize, limit: Duration) -> Result<Vec<u8>, Error> {
        self.0.next_line(max, limit)
    }

    fn read_line(&mut self, max: usize) -> Vec<u8> {
        self.0.read_line(max)
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        self.0
            .write_all(data)
            .and_then(|()| self.0.flush())
            .map_err(|e| Error::io("writing", e))
    }

    fn disconnect(&mut self, limit: Duration) -> Result<(), Error> {
        self.0.disconnect_within(limit)
    }
}

/// The tokio driver's client, with a current-thread runtime of its own.
pub struct Tokio {
    // Declared first: dropped while the runtime still exists.
    socket: sslsocket::tokio::SslSocket,
    runtime: tokio::runtime::Runtime,
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting a runtime", e))
}

fn timed_out(what: &str) -> Error {
    Error::Timeout(what.to_string())
}

impl ClientDriver for Tokio {
    type Socket = sslsocket::tokio::SslSocket;
    const NAME: &'static str = "tokio";

    fn start(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
        setup: impl FnOnce(&mut Self::Socket),
    ) -> Result<Self, Error> {
        let runtime = runtime()?;
        let mut socket = runtime.block_on(sslsocket::tokio::SslSocket::connect_to_host(
            host,
            port,
            configuration,
        ))?;
        setup(&mut socket);
        socket.begin_client_encryption()?;
        Ok(Tokio { socket, runtime })
    }

    fn connect_encrypted(
        host: &str,
        port: u16,
        configuration: SslConfiguration,
        limit: Duration,
    ) -> Result<Self, (Error, Option<Self>)> {
        let runtime = runtime().map_err(|e| (e, None))?;
        let connecting =
            sslsocket::tokio::SslSocket::connect_to_host_encrypted(host, port, configuration);
        match runtime.block_on(async { tokio::time::timeout(limit, connecting).await }) {
            Ok(Ok(socket)) => Ok(Tokio { socket, runtime }),
            Ok(Err(failed)) => {
                let error = failed.error().clone();
                let socket = failed.into_socket().map(|socket| Tokio { socket, runtime });
                Err((error, socket))
            }
            Err(_) => Err((timed_out("connecting"), None)),
        }
    }

    fn socket(&mut self) -> &mut Self::Socket {
        &mut self.socket
    }

    fn handshake(&mut self, limit: Duration) -> Result<Handshake, Error> {
        let socket = &mut self.socket;
        self.runtime
            .block_on(async { tokio::time::timeout(limit, socket.handshake()).await })
            .unwrap_or_else(|_| Err(timed_out("handshake")))
    }

    fn wait_for_encrypted(&mut self, limit: Duration) -> Result<(), Error> {
        let socket = &mut self.socket;
        self.runtime
            .block_on(async { tokio::time::timeout(limit, socket.wait_for_encrypted()).await })
            .unwrap_or_else(|_| Err(timed_out("handshake")))
    }

    fn wait_for_ready_read(&mut self, limit: Duration) -> Result<(), Error> {
        let socket = &mut self.socket;
        self.runtime
            .block_on(async { tokio::time::timeout(limit, socket.wait_for_ready_read()).await })
            .unwrap_or_else(|_| Err(timed_out("waiting for data")))
    }

    fn next_line(&mut self, max: usize, limit: Duration) -> Result<Vec<u8>, Error> {
        let socket = &mut self.socket;
        self.runtime
            .block_on(async { tokio::time::timeout(limit, socket.next_line(max)).await })
            .unwrap_or_else(|_| Err(timed_out("reading a line")))
    }

    fn read_line(&mut self, max: usize) -> Vec<u8> {
        self.socket.read_line(max)
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        let socket = &mut self.socket;
        self.runtime
            .block_on(async {
                socket.write_all(data).await?;
                socket.flush().await
            })
            .map_err(|e| Error::io("writing", e))
    }

    fn disconnect(&mut self, limit: Duration) -> Result<(), Error> {
        let socket = &mut self.socket;
        self.runtime
            .block_on(async { tokio::time::timeout(limit, socket.disconnect_from_host()).await })
            .unwrap_or_else(|_| Err(timed_out("closing")))
    }
}

/// Our blocking server for one connection: runs `script` on the accepted, encrypted socket
/// in a thread. Returns the port and the thread, whose result is the script's.
pub fn serve_one<F>(
    configuration: SslConfiguration,
    script: F,
) -> Result<(u16, std::thread::JoinHandle<Result<(), BoxError>>), Error>
where
    F: FnOnce(&mut sslsocket::blocking::SslSocket) -> Result<(), BoxError> + Send + 'static,
{
    let server = sslsocket::blocking::SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    let thread = std::thread::spawn(move || -> Result<(), BoxError> {
        let mut socket = match server.next_connection(Duration::from_secs(30))? {
            Ok(socket) => socket,
            Err(failed) => {
                return Err(format!("server handshake: {}", failed.error_string()).into())
            }
        };
        script(&mut socket)
    });
    Ok((port, thread))
}
