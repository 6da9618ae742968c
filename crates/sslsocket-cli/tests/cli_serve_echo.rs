//! `sslsocket serve --echo` against a tokio-rustls client: messages from 1 byte to 1 MiB
//! come back exactly (written and read at the same time, as a client must when the echo
//! does not fit in the socket buffers), and a server holding many idle connections (and
//! clients that never start their handshake) still serves another client. No timing is asserted (latency is measured by benches/serve.rs).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::support::{os_args, Pki};
use common::{Serve, TestResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The longest any one step may take.
const STEP: Duration = Duration::from_secs(30);

/// The backends this build can serve with.
fn backends() -> Vec<&'static str> {
    let mut names = vec!["rustls"];
    if cfg!(feature = "openssl") {
        names.push("openssl");
    }
    names
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// `serve --echo` with a leaf for localhost under the test PKI, and a client trusting the
/// PKI's root.
fn echo_server(
    pki: &Pki,
    backend: &str,
) -> Result<(Serve, TlsConnector), Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = Serve::start(&os_args![
        "--echo",
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--backend",
        backend
    ])?;
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(pki.root_der().to_vec()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((serve, TlsConnector::from(Arc::new(config))))
}

async fn connect(
    address: &str,
    connector: &TlsConnector,
) -> Result<TlsStream<TcpStream>, Box<dyn std::error::Error>> {
    let tcp = tokio::time::timeout(STEP, TcpStream::connect(address)).await??;
    let name = ServerName::try_from("localhost")?;
    Ok(tokio::time::timeout(STEP, connector.connect(name, tcp)).await??)
}

/// Writes `message` while reading its echo; the echo must be the message, byte for byte.
async fn echo<S>(stream: &mut S, message: &[u8]) -> TestResult
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut back = vec![0u8; message.len()];
    let write = async {
        writer.write_all(message).await?;
        writer.flush().await
    };
    let both = async { tokio::join!(write, reader.read_exact(&mut back)) };
    let (written, read) = tokio::time::timeout(STEP, both).await?;
    written?;
    read?;
    assert!(
        back == message,
        "the echo of {} bytes differs",
        message.len()
    );
    Ok(())
}

/// A message whose bytes depend on its size and position, so misplaced data shows.
fn message(size: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 31 + size) % 251) as u8).collect()
}

#[test]
fn echo_comes_back_exactly_from_1_byte_to_1_mib() -> TestResult {
    let pki = Pki::new()?;
    let sizes = [1, 35 * 1000, 64 * 1000, 200 * 1000, 1024 * 1024];
    for backend in backends() {
        let (serve, connector) = echo_server(&pki, backend)?;
        runtime()?.block_on(async {
            let mut client = connect(&serve.address, &connector).await?;
            for size in sizes {
                echo(&mut client, &message(size)).await?;
            }
            // Twice over, so that sizes follow other sizes on the same connection.
            for size in sizes.iter().rev() {
                echo(&mut client, &message(*size)).await?;
            }
            tokio::time::timeout(STEP, client.shutdown()).await??;
            let mut rest = Vec::new();
            tokio::time::timeout(STEP, client.read_to_end(&mut rest)).await??;
            assert!(
                rest.is_empty(),
                "{backend}: {} bytes after the echoes",
                rest.len()
            );
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "encrypted", "{backend}: {line}");
        assert_eq!(
            line["socket_error"],
            serde_json::Value::Null,
            "{backend}: {line}"
        );
        let total: usize = sizes.iter().sum::<usize>() * 2;
        assert_eq!(line["received_bytes"], total, "{backend}: {line}");
    }
    Ok(())
}

#[test]
fn many_idle_connections_do_not_keep_another_client_waiting() -> TestResult {
    const IDLE: usize = 200;
    // Clients that connect and never start their handshake.
    const SILENT: usize = 20;
    let pki = Pki::new()?;
    for backend in backends() {
        let (serve, connector) = echo_server(&pki, backend)?;
        runtime()?.block_on(async {
            let mut idle = Vec::with_capacity(IDLE);
            for _ in 0..IDLE {
                idle.push(connect(&serve.address, &connector).await?);
            }
            let mut silent = Vec::with_capacity(SILENT);
            for _ in 0..SILENT {
                silent.push(tokio::time::timeout(STEP, TcpStream::connect(&serve.address)).await??);
            }
            // Another client, while all of them stay open and silent.
            let mut active = connect(&serve.address, &connector).await?;
            for size in [1, 16 * 1024, 100 * 1000] {
                echo(&mut active, &message(size)).await?;
            }
            // The idle connections were kept, not dropped: each still echoes.
            for client in idle.iter_mut() {
                echo(client, b"x").await?;
            }
            tokio::time::timeout(STEP, active.shutdown()).await??;
            drop(silent);
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
        // Every connection ends with its own line (the clients are gone now).
        let last = serve.connection_line(IDLE + SILENT)?;
        assert!(
            ["encrypted", "failed"].contains(&last["event"].as_str().unwrap_or_default()),
            "{backend}: {last}"
        );
        let stdout = serve.process.stdout();
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .skip(1)
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect();
        let failed = lines.iter().filter(|v| v["event"] == "failed").count();
        assert_eq!(failed, SILENT, "{backend}:\n{stdout}");
        let received: Vec<u64> = lines
            .iter()
            .filter(|v| v["event"] == "encrypted")
            .filter_map(|v| v["received_bytes"].as_u64())
            .collect();
        assert_eq!(received.len(), IDLE + 1, "{backend}:\n{stdout}");
        assert!(
            received.contains(&(1 + 16 * 1024 + 100 * 1000)),
            "{backend}: {received:?}"
        );
        assert_eq!(
            received.iter().filter(|n| **n == 1).count(),
            IDLE,
            "{backend}: {received:?}"
        );
    }
    Ok(())
}
