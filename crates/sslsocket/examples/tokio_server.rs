//! A tokio TLS echo server: one task per connection, each handshake under the server's
//! timeout, so a slow client never holds the others back. Run on its own, it also starts
//! three clients on 127.0.0.1 that each send a line and print the echo.
//!
//! Run: `cargo run -p sslsocket --example tokio_server`

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use sslsocket::tokio::{SslServer, SslSocket};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Serves until `clients` connections have been echoed; returns the lines the clients got.
pub async fn run(clients: usize) -> Result<Vec<String>, common::BoxError> {
    let pki = common::LocalPki::generate()?;
    let mut server = SslServer::bind("127.0.0.1:0", pki.server.clone()).await?;
    server.set_handshake_timeout(Duration::from_secs(5));
    let port = server.local_addr().port();

    let serving = tokio::spawn(async move {
        for _ in 0..clients {
            let Ok((stream, _)) = server.accept().await else {
                continue;
            };
            let handshake = server.handshake(stream);
            tokio::spawn(async move {
                match handshake.await {
                    Ok(socket) => {
                        // Echo lines until the client closes.
                        let (reader, mut writer) = tokio::io::split(socket);
                        let mut lines = BufReader::new(reader).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let reply = format!("echo: {line}\n");
                            if writer.write_all(reply.as_bytes()).await.is_err() {
                                break;
                            }
                        }
                        let _ = writer.shutdown().await;
                    }
                    Err(failed) => eprintln!("handshake failed: {failed}"),
                }
            });
        }
    });

    let mut replies = Vec::new();
    for n in 0..clients {
        let mut socket = SslSocket::connect_to_host_encrypted_with_peer_name(
            "127.0.0.1",
            port,
            "localhost",
            pki.client(&[]),
        )
        .await?;
        socket.write_all(format!("hello {n}\n").as_bytes()).await?;
        let mut reply = String::new();
        BufReader::new(&mut socket).read_line(&mut reply).await?;
        socket.disconnect_from_host().await?;
        replies.push(reply.trim_end().to_string());
    }
    serving.await?;
    Ok(replies)
}

#[tokio::main]
async fn main() -> Result<(), common::BoxError> {
    for reply in run(3).await? {
        println!("{reply}");
    }
    Ok(())
}
