//! Adversarial review of the servers and the tokio driver (round 37, review SERV).
//! Both backends (`SSLSOCKET_BACKEND=openssl`). Every wait is bounded; 127.0.0.1 only.

mod support;

use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::{PauseMode, SslCertificate, SslConfiguration, SslKey};
use support::Pki;
use tokio::io::AsyncWriteExt;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::time::timeout;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const STEP: Duration = Duration::from_secs(10);

fn server_configuration(pki: &Pki) -> Result<SslConfiguration, BoxError> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let chain = leaf
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(chain)
        .set_private_key(SslKey::from_der(&leaf.key_der)?)
        .set_system_ca_on_demand(false);
    Ok(configuration)
}

/// A client that trusts nothing: every handshake has errors (to pause on).
fn untrusting_client() -> SslConfiguration {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_ca_certificates(Vec::new())
        .set_system_ca_on_demand(false);
    configuration
}

/// A paused client (its handshake waits for a decision) and the server's accept task.
async fn paused_client(
    pki: &Pki,
) -> Result<
    (
        SslSocket,
        tokio::task::JoinHandle<Result<SslSocket, sslsocket::tokio::FailedHandshake>>,
    ),
    BoxError,
> {
    let server = SslServer::bind("127.0.0.1:0", server_configuration(pki)?).await?;
    let port = server.local_addr().port();
    let accepted = tokio::spawn(async move { server.accept_encrypted().await });
    let mut client = timeout(
        STEP,
        SslSocket::connect_to_host("localhost", port, untrusting_client()),
    )
    .await??;
    client.set_pause_mode(PauseMode::PauseOnSslErrors);
    client.begin_client_encryption()?;
    match timeout(STEP, client.handshake()).await?? {
        Handshake::NeedsDecision(_) => {}
        _ => return Err("the handshake did not pause".into()),
    }
    Ok((client, accepted))
}

// Was a defect (round 37): a tokio `flush()` on a handshake paused for a decision returned `Ok` with the bytes written still queued (a write-only wait found "no progress possible" and the error was taken for "nothing lost"); the blocking flush waits.
#[tokio::test]
async fn a_flush_while_the_handshake_is_paused_does_not_report_queued_bytes_sent() -> TestResult {
    let pki = Pki::new()?;
    let (mut client, accepted) = paused_client(&pki).await?;
    client.write_all(b"hello\n").await?;
    let flushed = timeout(Duration::from_secs(1), client.flush()).await;
    if let Ok(Ok(())) = flushed {
        assert_eq!(
            client.bytes_to_write(),
            0,
            "flush() was Ok with the bytes still queued behind the paused handshake"
        );
    }
    // The decision comes: the handshake finishes and the queued bytes go, in order.
    client.accept_peer()?;
    timeout(STEP, client.wait_for_encrypted()).await??;
    timeout(STEP, client.flush()).await??;
    assert_eq!(client.bytes_to_write(), 0);
    let mut server_socket = timeout(STEP, accepted).await???;
    let line = timeout(STEP, server_socket.next_line(0)).await??;
    assert_eq!(line, b"hello\n");
    Ok(())
}

// Was a defect (round 37): `ShutdownHandle::wait_for_connections` returned `true` ("every connection gone") right after the shutdown while `Incoming` was still alive with a handshake under way, which it then handed out: the stream's only hold on the channel was the shutdown signal's future, which the shutdown ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_connections_waits_for_an_incoming_with_handshakes_under_way() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let shutdown = server.shutdown_handle();
    let mut incoming = server.incoming();
    let ended = Arc::new(AtomicBool::new(false));
    let ended_in_task = Arc::clone(&ended);
    let (progress, mut in_progress) = tokio::sync::mpsc::channel::<usize>(64);
    let serving = tokio::spawn(async move {
        let mut handed_out = Vec::new();
        loop {
            let _ = progress.try_send(incoming.handshakes_in_progress());
            match timeout(Duration::from_millis(20), incoming.next()).await {
                Ok(Some(connection)) => handed_out.push(connection.is_ok()),
                Ok(None) => break,
                Err(_) => {}
            }
        }
        drop(incoming);
        ended_in_task.store(true, Ordering::SeqCst);
        handed_out
    });
    // A client whose TCP connection is accepted; its handshake starts only later.
    let mut trusting = SslConfiguration::default();
    trusting
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?])
        .set_system_ca_on_demand(false);
    let mut client = timeout(
        STEP,
        SslSocket::connect_to_host("localhost", port, trusting),
    )
    .await??;
    timeout(STEP, async {
        while in_progress.recv().await.is_some_and(|n| n != 1) {}
    })
    .await?;
    shutdown.shutdown();
    let all_gone = shutdown
        .wait_for_connections(Duration::from_millis(500))
        .await;
    let incoming_ended = ended.load(Ordering::SeqCst);
    assert!(
        !all_gone || incoming_ended,
        "wait_for_connections said every connection was gone while Incoming still ran a handshake"
    );
    // The handshake under way finishes and is handed out after the shutdown.
    timeout(STEP, client.start_client_encryption()).await??;
    let handed_out = timeout(STEP, serving).await??;
    assert_eq!(handed_out, vec![true]);
    assert!(timeout(STEP, shutdown.wait_for_connections(STEP)).await?);
    Ok(())
}
