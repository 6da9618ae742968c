//! Asynchronous verification decisions on the tokio driver: a hook pauses the handshake,
//! `handshake().await` hands out the errors and the chain as values, the application
//! awaits another future (here a policy service on its own task, asked over a channel)
//! and then accepts or refuses. Both outcomes, against real peers.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::{Error, SocketError, SslError, SslErrorKind, SslHooks, Verdict};
use support::{serving, trusting, OpensslServer, Pki};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const STEP: Duration = Duration::from_secs(20);

/// Leaves every decision to the application, after the handshake's errors are known.
struct AskLater;

impl SslHooks for AskLater {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        Verdict::Pause
    }
}

/// A question to the policy service, and where its answer goes.
type Question = (PendingDecision, oneshot::Sender<bool>);

/// A policy service on its own task: accepts a chain whose only error is a name mismatch
/// for a leaf it knows (by DER), refuses anything else.
fn policy_service(known_leaf: Vec<u8>) -> mpsc::Sender<Question> {
    let (ask, mut questions) = mpsc::channel::<Question>(4);
    tokio::spawn(async move {
        while let Some((pending, answer)) = questions.recv().await {
            // Something a real service would await: a lookup, a user, a network call.
            tokio::task::yield_now().await;
            let only_mismatch = pending
                .errors
                .iter()
                .all(|e| e.error() == SslErrorKind::HostNameMismatch);
            let known = pending
                .peer_certificate_chain
                .first()
                .is_some_and(|leaf| leaf.der() == known_leaf.as_slice());
            let _ = answer.send(only_mismatch && known);
        }
    });
    ask
}

/// Runs the handshake, asking the service at each pause; the number of questions asked.
async fn handshake_asking(
    socket: &mut SslSocket,
    service: &mpsc::Sender<Question>,
) -> Result<usize, Error> {
    let mut asked = 0;
    while let Handshake::NeedsDecision(pending) = socket.handshake().await? {
        asked += 1;
        assert!(socket.is_paused());
        let (answer, answered) = oneshot::channel();
        let accepted = match service.send((pending, answer)).await {
            Ok(()) => answered.await.unwrap_or(false),
            Err(_) => false,
        };
        if accepted {
            socket.accept_peer()?;
        } else {
            socket.refuse_peer()?;
        }
    }
    Ok(asked)
}

#[tokio::test]
async fn a_policy_service_accepts_a_known_leaf_of_our_server_after_an_awaited_decision(
) -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("elsewhere.test", &["elsewhere.test"])?;
    let server = SslServer::bind("127.0.0.1:0", serving(&leaf)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let line = socket.next_line(0).await?;
        Ok::<_, Error>(line)
    });

    let service = policy_service(leaf.cert_der.clone());
    let mut client = SslSocket::connect_to_host("localhost", port, trusting(&pki)?).await?;
    client.set_hooks(Arc::new(AskLater));
    client.begin_client_encryption()?;
    let asked = timeout(STEP, handshake_asking(&mut client, &service)).await??;

    assert_eq!(asked, 1);
    assert!(client.is_encrypted());
    let kinds: Vec<_> = client
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    assert_eq!(kinds, [SslErrorKind::HostNameMismatch]);
    tokio::io::AsyncWriteExt::write_all(&mut client, b"after the decision\n").await?;
    tokio::io::AsyncWriteExt::flush(&mut client).await?;
    assert_eq!(timeout(STEP, served).await???, b"after the decision\n");
    Ok(())
}

#[tokio::test]
async fn a_policy_service_refuses_an_unknown_leaf_of_openssl_and_the_handshake_fails() -> TestResult
{
    let pki = Pki::new()?;
    let leaf = pki.leaf("elsewhere.test", &["elsewhere.test"])?;
    let other = pki.leaf("other.test", &["other.test"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;

    // The service knows another leaf: this one is refused.
    let service = policy_service(other.cert_der.clone());
    let mut client =
        SslSocket::connect_to_host("localhost", server.port(), trusting(&pki)?).await?;
    client.set_hooks(Arc::new(AskLater));
    client.begin_client_encryption()?;
    let error = match timeout(STEP, handshake_asking(&mut client, &service)).await? {
        Ok(asked) => return Err(format!("refused, yet finished after {asked} questions").into()),
        Err(error) => error,
    };

    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert!(!client.is_encrypted());
    assert!(!client.is_paused());
    assert_eq!(client.peer_certificate_chain().len(), 2);
    assert_eq!(
        client.ssl_handshake_errors().first().map(|e| e.error()),
        Some(SslErrorKind::HostNameMismatch)
    );
    Ok(())
}
