//! TLS over transports other than TCP, our client with our server on both drivers:
//! `tokio::io::duplex`, Unix socket pairs (tokio and blocking), and a plain blocking
//! `Read + Write` stream; plus the tokio socket's `AsyncBufRead` and vectored writes.

mod support;

use std::io::{BufRead, IoSlice, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::{SslConfiguration, SslProtocol};
use support::{serving, trusting, Pki};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(20);

fn configurations(
    pki: &Pki,
) -> Result<(SslConfiguration, SslConfiguration), Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    Ok((trusting(pki)?, serving(&leaf)?))
}

#[tokio::test]
async fn tokio_client_and_server_over_one_duplex_pipe() -> TestResult {
    let pki = Pki::new()?;
    let (client_configuration, server_configuration) = configurations(&pki)?;
    let (a, b) = tokio::io::duplex(4096);
    let mut client = sslsocket::tokio::SslSocket::from_stream(a, client_configuration);
    client.set_peer_verify_name("localhost");
    let mut server = sslsocket::tokio::SslSocket::from_stream(b, server_configuration);

    let (client_done, server_done) = timeout(WAIT, async {
        tokio::join!(
            client.start_client_encryption(),
            server.start_server_encryption()
        )
    })
    .await?;
    client_done?;
    server_done?;
    assert!(client.is_encrypted() && server.is_encrypted());
    assert_eq!(client.session_protocol(), SslProtocol::TlsV1_3);
    assert_eq!(client.peer_certificate_chain().len(), 2);

    // Vectored: three buffers, one call, in order.
    let parts = [
        IoSlice::new(b"one "),
        IoSlice::new(b"two "),
        IoSlice::new(b"three\n"),
    ];
    assert!(tokio::io::AsyncWrite::is_write_vectored(&client));
    let written = client.write_vectored(&parts).await?;
    assert_eq!(written, 14);
    client.write_all(b"second line\n").await?;
    client.flush().await?;

    // AsyncBufRead: std-style lines through tokio's extension trait.
    let mut line = String::new();
    timeout(WAIT, AsyncBufReadExt::read_line(&mut server, &mut line)).await??;
    assert_eq!(line, "one two three\n");
    let mut lines = (&mut server).lines();
    assert_eq!(
        timeout(WAIT, lines.next_line()).await??.as_deref(),
        Some("second line")
    );

    server.write_all(b"reply\n").await?;
    server.flush().await?;
    assert_eq!(timeout(WAIT, client.next_line(0)).await??, b"reply\n");

    // The transport stays reachable.
    assert!(client.get_ref().is_some());
    assert!(client.get_mut().is_some());
    let closing = async {
        tokio::join!(client.disconnect_from_host(), async {
            let mut rest = Vec::new();
            server.read_to_end(&mut rest).await.map(|_| rest)
        })
    };
    let (closed, rest) = timeout(WAIT, closing).await?;
    closed?;
    assert!(rest?.is_empty());
    Ok(())
}

#[tokio::test]
async fn tokio_client_and_server_over_a_unix_socket_pair() -> TestResult {
    let pki = Pki::new()?;
    let (client_configuration, server_configuration) = configurations(&pki)?;
    let (a, b) = tokio::net::UnixStream::pair()?;
    let mut client = sslsocket::tokio::SslSocket::from_unix_stream(a, client_configuration);
    client.set_peer_verify_name("localhost");
    let mut server = sslsocket::tokio::SslSocket::from_unix_stream(b, server_configuration);

    let (client_done, server_done) = timeout(WAIT, async {
        tokio::join!(
            client.start_client_encryption(),
            server.start_server_encryption()
        )
    })
    .await?;
    client_done?;
    server_done?;
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sending = async {
        client.write_all(&data).await?;
        client.shutdown().await
    };
    let receiving = async {
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.map(|_| got)
    };
    let (sent, got) = timeout(WAIT, async { tokio::join!(sending, receiving) }).await?;
    sent?;
    assert!(got? == data, "the bytes differ");
    Ok(())
}

#[test]
fn blocking_client_and_server_over_a_unix_socket_pair() -> TestResult {
    let pki = Pki::new()?;
    let (client_configuration, server_configuration) = configurations(&pki)?;
    let (a, b) = UnixStream::pair()?;
    let mut server = sslsocket::blocking::SslSocket::from_unix_stream(b, server_configuration)?;
    let served = std::thread::spawn(move || -> Result<Vec<u8>, sslsocket::Error> {
        server.start_server_encryption()?;
        server.wait_for_encrypted(WAIT)?;
        let line = server.next_line(0, WAIT)?;
        server
            .write_all(b"pong\n")
            .map_err(|e| sslsocket::Error::io("writing", e))?;
        server.disconnect_within(WAIT)?;
        Ok(line)
    });

    let mut client = sslsocket::blocking::SslSocket::from_unix_stream(a, client_configuration)?;
    client.set_peer_verify_name("localhost");
    client.start_client_encryption()?;
    client.wait_for_encrypted(WAIT)?;
    assert_eq!(client.peer_certificate_chain().len(), 2);
    client.write_all(b"ping\n")?;
    client.flush()?;
    assert_eq!(client.next_line(0, WAIT)?, b"pong\n");
    assert_eq!(client.next_line(0, WAIT)?, b"", "the server's clean end");
    assert_eq!(served.join().map_err(|_| "server panicked")??, b"ping\n");
    Ok(())
}

/// A transport that is only `Read + Write` (no descriptor to poll, blocking calls).
struct Plain(UnixStream);

impl Read for Plain {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Plain {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[test]
fn blocking_client_over_a_plain_read_write_stream() -> TestResult {
    let pki = Pki::new()?;
    let (client_configuration, server_configuration) = configurations(&pki)?;
    let (a, b) = UnixStream::pair()?;
    // The plain stream's own timeouts bound its blocking reads.
    a.set_read_timeout(Some(WAIT))?;
    let mut server = sslsocket::blocking::SslSocket::from_unix_stream(b, server_configuration)?;
    let served = std::thread::spawn(move || -> Result<(), sslsocket::Error> {
        server.start_server_encryption()?;
        server.wait_for_encrypted(WAIT)?;
        let line = server.next_line(0, WAIT)?;
        server
            .write_all(&line)
            .map_err(|e| sslsocket::Error::io("writing", e))?;
        server
            .flush()
            .map_err(|e| sslsocket::Error::io("flushing", e))?;
        server.wait_for_disconnected(WAIT)
    });

    let mut client = sslsocket::blocking::SslSocket::from_stream(Plain(a), client_configuration);
    client.set_peer_verify_name("localhost");
    client.start_client_encryption()?;
    client.wait_for_encrypted(WAIT)?;
    assert!(client.is_encrypted());
    client.write_all(b"echo me\n")?;
    client.flush()?;
    let mut line = String::new();
    BufRead::read_line(&mut client, &mut line)?;
    assert_eq!(line, "echo me\n");
    assert!(client.get_ref().is_some());
    client.disconnect_within(WAIT)?;
    served.join().map_err(|_| "server panicked")??;
    // A closed connection has closed its transport; an open one hands it back.
    assert!(client.into_inner().is_none());
    let (c, _d) = UnixStream::pair()?;
    let unused = sslsocket::blocking::SslSocket::from_stream(Plain(c), trusting(&pki)?);
    assert!(unused.into_inner().is_some());
    Ok(())
}
