//! HTTPS with hyper over sslsocket: hyper-util's `TokioIo` adapts the tokio `SslSocket`,
//! and the protocol ALPN settled on picks `hyper::client::conn::http2` or `http1` (the
//! server does the same with `hyper::server::conn`).
//!
//! Run on its own, it talks to itself on 127.0.0.1: a hyper server on sslsocket's
//! `SslServer` with a certificate made at start (rcgen), then one request offering
//! `h2, http/1.1` (answered over HTTP/2) and one offering only `http/1.1`.
//!
//! ```text
//! cargo run -p sslsocket --example hyper_client
//! ```

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sslsocket::prelude::*;
use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::SslConfiguration;

pub use common::{BoxError, LocalPki, H2, HTTP11};

/// What one request saw.
#[derive(Debug)]
pub struct Exchange {
    /// The ALPN protocol the handshake settled on.
    pub alpn: Option<Vec<u8>>,
    /// The HTTP version of the response.
    pub version: Version,
    /// The response status.
    pub status: u16,
    /// The response body.
    pub body: String,
}

/// `GET https://localhost:PORT/` over a fresh TLS connection to `addr`, with
/// `configuration` (trust and ALPN): HTTP/2 when the server agreed to `h2`, else HTTP/1.1.
pub async fn https_get(
    addr: SocketAddr,
    configuration: SslConfiguration,
) -> Result<Exchange, BoxError> {
    let socket = SslSocket::connect_to_host_encrypted_with_peer_name(
        &addr.ip().to_string(),
        addr.port(),
        "localhost",
        configuration,
    )
    .await?;
    let alpn = socket.next_negotiated_protocol().map(<[u8]>::to_vec);
    let io = TokioIo::new(socket);
    let uri = format!("https://localhost:{}/", addr.port());
    let response = if alpn.as_deref() == Some(H2) {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(connection);
        let request = Request::get(uri).body(Empty::<Bytes>::new())?;
        sender.send_request(request).await?
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(connection);
        let request = Request::get("/")
            .header(hyper::header::HOST, format!("localhost:{}", addr.port()))
            .body(Empty::<Bytes>::new())?;
        sender.send_request(request).await?
    };
    let version = response.version();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Exchange {
        alpn,
        version,
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Serves HTTPS on `server` until the task is dropped: each connection's handshake and
/// requests run in their own task, over HTTP/2 or HTTP/1.1 as ALPN decided.
pub async fn serve(server: SslServer) {
    loop {
        let Ok((stream, _peer)) = server.accept().await else {
            continue;
        };
        let handshake = server.handshake(stream);
        tokio::spawn(async move {
            let Ok(socket) = handshake.await else { return };
            let h2 = socket.next_negotiated_protocol() == Some(H2);
            let io = TokioIo::new(socket);
            let service = hyper::service::service_fn(answer);
            let _ = if h2 {
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service)
                    .await
            } else {
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
            };
        });
    }
}

/// Every request gets a line naming the HTTP version it came over.
async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let text = format!("hello over {:?}", request.version());
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// The whole example: a server on 127.0.0.1 (free port), then a client offering
/// `h2, http/1.1` and one offering `http/1.1` only; bounded by 10 s.
pub async fn run() -> Result<[Exchange; 2], BoxError> {
    let pki = LocalPki::generate()?;
    let server = SslServer::bind("127.0.0.1:0", pki.server.clone()).await?;
    let addr = server.local_addr();
    let serving = tokio::spawn(serve(server));
    let exchanges = tokio::time::timeout(Duration::from_secs(10), async {
        let both = https_get(addr, pki.client(&[H2, HTTP11])).await?;
        let http1 = https_get(addr, pki.client(&[HTTP11])).await?;
        Ok::<_, BoxError>([both, http1])
    })
    .await;
    serving.abort();
    exchanges?
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    for exchange in run().await? {
        let alpn = exchange.alpn.as_deref().map(String::from_utf8_lossy);
        println!(
            "ALPN {:?}: {:?} {} \"{}\"",
            alpn.unwrap_or_default(),
            exchange.version,
            exchange.status,
            exchange.body
        );
    }
    Ok(())
}
