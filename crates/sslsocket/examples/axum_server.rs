//! An axum application served over TLS by sslsocket's tokio `SslServer`: a newtype
//! implements axum 0.8's `serve::Listener`, so `axum::serve` runs unchanged on encrypted
//! connections (HTTP/1.1 or HTTP/2, as the client speaks).
//!
//! Handshakes run concurrently, one task each, under the server's handshake timeout; a
//! failed one is dropped (and its reason printed), never handed to axum.
//!
//! Run on its own, it talks to itself on 127.0.0.1: the server with a certificate made
//! at start (rcgen), then a client (hyper over sslsocket) asking for `/hello/qt` over
//! HTTP/2 and over HTTP/1.1.
//!
//! ```text
//! cargo run -p sslsocket --example axum_server
//! ```

#[path = "common/mod.rs"]
mod common;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sslsocket::prelude::*;
use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::SslConfiguration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use common::{BoxError, LocalPki, H2, HTTP11};

/// sslsocket's server as an axum listener: a task accepts TCP connections and spawns one
/// handshake each; encrypted sockets come out of a channel in the order they finish.
pub struct TlsListener {
    encrypted: mpsc::Receiver<(SslSocket, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `server`; at most 64 encrypted connections wait for axum.
    pub fn new(server: SslServer) -> TlsListener {
        let local_addr = server.local_addr();
        let (sender, encrypted) = mpsc::channel(64);
        let acceptor = tokio::spawn(async move {
            loop {
                let (stream, peer) = match server.accept().await {
                    Ok(accepted) => accepted,
                    // Out of descriptors, say: wait a little, as axum's own listener does.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let handshake = server.handshake(stream);
                let sender = sender.clone();
                tokio::spawn(async move {
                    match handshake.await {
                        Ok(socket) => {
                            let _ = sender.send((socket, peer)).await;
                        }
                        Err(failed) => eprintln!("{peer}: handshake failed: {failed}"),
                    }
                });
            }
        });
        TlsListener {
            encrypted,
            local_addr,
            acceptor,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = SslSocket;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SslSocket, SocketAddr) {
        match self.encrypted.recv().await {
            Some(connection) => connection,
            // The acceptor ended (it never does while the listener lives): nothing more
            // will come, so this waits forever, as a listener with no clients does.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

/// The application: `GET /hello/{name}` greets, naming the HTTP version.
pub fn app() -> Router {
    Router::new().route(
        "/hello/{name}",
        get(
            |Path(name): Path<String>, request: Request<axum::body::Body>| async move {
                format!("hello {name} over {:?}", request.version())
            },
        ),
    )
}

/// `GET path` from `addr` over a new TLS connection with `configuration`; HTTP/2 when
/// ALPN chose `h2`. Returns the status and the body.
pub async fn get_text(
    addr: SocketAddr,
    path: &str,
    configuration: SslConfiguration,
) -> Result<(u16, String), BoxError> {
    let socket = SslSocket::connect_to_host_encrypted_with_peer_name(
        &addr.ip().to_string(),
        addr.port(),
        "localhost",
        configuration,
    )
    .await?;
    let h2 = socket.next_negotiated_protocol() == Some(H2);
    let io = TokioIo::new(socket);
    let request = Request::get(format!("https://localhost:{}{path}", addr.port()))
        .header(hyper::header::HOST, format!("localhost:{}", addr.port()))
        .body(Empty::<Bytes>::new())?;
    let response = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(connection);
        sender.send_request(request).await?
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(connection);
        sender.send_request(request).await?
    };
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The whole example: axum on 127.0.0.1 (free port), then `/hello/qt` over HTTP/2 and
/// over HTTP/1.1; bounded by 10 s.
pub async fn run() -> Result<[(u16, String); 2], BoxError> {
    let pki = LocalPki::generate()?;
    let server = SslServer::bind("127.0.0.1:0", pki.server.clone()).await?;
    let addr = server.local_addr();
    let serving = tokio::spawn(async move { axum::serve(TlsListener::new(server), app()).await });
    let answers = tokio::time::timeout(Duration::from_secs(10), async {
        let h2 = get_text(addr, "/hello/qt", pki.client(&[H2, HTTP11])).await?;
        let http1 = get_text(addr, "/hello/qt", pki.client(&[HTTP11])).await?;
        Ok::<_, BoxError>([h2, http1])
    })
    .await;
    serving.abort();
    answers?
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    for (status, body) in run().await? {
        println!("{status} {body}");
    }
    Ok(())
}
