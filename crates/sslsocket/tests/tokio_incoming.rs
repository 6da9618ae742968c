//! The tokio server as a service runs it: `incoming()` with concurrent handshakes, graceful
//! shutdown, the key check at `bind`, SNI and certificate reload while serving.

mod support;

use std::time::Duration;

use sslsocket::prelude::*;
use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::{
    Error, PeerVerifyMode, ServerCredentials, SslCertificate, SslConfiguration, SslIdentity, SslKey,
};
use support::{serving, trusting, Issued, Pki};
use tokio::time::timeout;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Upper bound of any single network step of these tests.
const STEP: Duration = Duration::from_secs(20);

fn identity(issued: &Issued) -> Result<SslIdentity, Box<dyn std::error::Error + Send + Sync>> {
    let chain = issued
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SslIdentity::new(chain, SslKey::from_der(&issued.key_der)?)?)
}

fn server_configuration(
    leaf: &Issued,
) -> Result<SslConfiguration, Box<dyn std::error::Error + Send + Sync>> {
    let mut configuration = serving(leaf).map_err(|e| e.to_string())?;
    configuration.set_system_ca_on_demand(false);
    Ok(configuration)
}

fn client_configuration(
    pki: &Pki,
) -> Result<SslConfiguration, Box<dyn std::error::Error + Send + Sync>> {
    let mut configuration = trusting(pki).map_err(|e| e.to_string())?;
    configuration.set_peer_verify_mode(PeerVerifyMode::QueryPeer);
    Ok(configuration)
}

/// Polls `incoming` (briefly, bounded) until `n` handshakes are under way.
async fn until_in_progress(incoming: &mut sslsocket::tokio::Incoming, n: usize) -> TestResult {
    for _ in 0..400 {
        if incoming.handshakes_in_progress() == n {
            return Ok(());
        }
        if let Ok(Some(result)) = timeout(Duration::from_millis(25), incoming.next()).await {
            return Err(format!("a connection ended early: {:?}", result.err()).into());
        }
    }
    Err(format!("{n} handshakes never got under way").into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_runs_handshakes_concurrently_so_a_slow_client_holds_back_nobody() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&leaf)?).await?;
    let port = server.local_addr().port();
    let mut incoming = server.incoming();

    // Connected, but no ClientHello yet: its handshake waits on it.
    let mut slow =
        SslSocket::connect_to_host("localhost", port, client_configuration(&pki)?).await?;
    until_in_progress(&mut incoming, 1).await?;

    let fast_configuration = client_configuration(&pki)?;
    let fast = tokio::spawn(async move {
        SslSocket::connect_to_host_encrypted("localhost", port, fast_configuration).await
    });
    let first = timeout(STEP, incoming.next())
        .await?
        .ok_or("the stream ended")?;
    let first = first.map_err(|f| f.to_string())?;
    assert!(first.is_encrypted());
    assert_eq!(
        incoming.handshakes_in_progress(),
        1,
        "the slow one is still under way"
    );
    assert!(timeout(STEP, fast).await???.is_encrypted());

    let slow_done =
        tokio::spawn(async move { slow.start_client_encryption().await.map(|()| slow) });
    let second = timeout(STEP, incoming.next())
        .await?
        .ok_or("the stream ended")?;
    assert!(second.map_err(|f| f.to_string())?.is_encrypted());
    assert!(timeout(STEP, slow_done).await???.is_encrypted());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_lets_handshakes_under_way_finish() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&leaf)?).await?;
    let port = server.local_addr().port();
    let shutdown = server.shutdown_handle();
    let mut guard = shutdown.guard();
    let connection_task = tokio::spawn(async move {
        // A connection task: runs until the shutdown, then finishes and drops its guard.
        guard.signalled().await;
    });
    let mut incoming = server.incoming();
    let mut slow =
        SslSocket::connect_to_host("localhost", port, client_configuration(&pki)?).await?;
    until_in_progress(&mut incoming, 1).await?;

    shutdown.shutdown();
    assert!(shutdown.is_shutting_down());
    let slow_done =
        tokio::spawn(async move { slow.start_client_encryption().await.map(|()| slow) });
    let finished = timeout(STEP, incoming.next())
        .await?
        .ok_or("ended before the handshake")?;
    assert!(
        finished.map_err(|f| f.to_string())?.is_encrypted(),
        "the handshake under way finished"
    );
    assert!(timeout(STEP, slow_done).await???.is_encrypted());
    assert!(
        timeout(STEP, incoming.next()).await?.is_none(),
        "then the stream ends"
    );

    // The listener is closed: nobody is accepted any more.
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        refused.is_err(),
        "a connection after the shutdown was accepted"
    );

    // Connections still open keep the wait going; once all are gone it returns true.
    timeout(STEP, connection_task).await??;
    drop(incoming);
    assert!(shutdown.wait_for_connections(STEP).await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_connections_gives_up_at_the_deadline() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&leaf)?).await?;
    let shutdown = server.shutdown_handle();
    let _held = shutdown.guard();
    drop(server);
    shutdown.shutdown();
    assert!(
        !shutdown
            .wait_for_connections(Duration::from_millis(50))
            .await
    );
    Ok(())
}

#[tokio::test]
async fn bind_finds_a_key_that_does_not_match_the_certificate() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let other = pki.leaf("other", &["other"])?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(vec![SslCertificate::from_der(&leaf.cert_der)?])
        .set_private_key(SslKey::from_der(&other.key_der)?);
    let error = SslServer::bind("127.0.0.1:0", configuration).await.err();
    assert!(matches!(error, Some(Error::Config(_))), "{error:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_and_reload_while_incoming_serves() -> TestResult {
    let pki = Pki::new()?;
    let default = pki.leaf("localhost", &["localhost"])?;
    let api = pki.leaf("api.example.com", &["api.example.com"])?;
    let mut configuration = server_configuration(&default)?;
    configuration.add_server_name_certificate("*.example.com", identity(&api)?)?;
    let server = SslServer::bind("127.0.0.1:0", configuration).await?;
    let port = server.local_addr().port();
    let reload = server.reload_handle();
    let mut incoming = server.incoming();

    let connect = |name: &'static str| {
        let configuration = client_configuration(&pki);
        async move {
            let configuration = configuration?;
            let socket = SslSocket::connect_to_host_encrypted_with_peer_name(
                "127.0.0.1",
                port,
                name,
                configuration,
            )
            .await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(socket)
        }
    };
    let client = tokio::spawn(connect("api.example.com"));
    let accepted = timeout(STEP, incoming.next()).await?.ok_or("ended")?;
    let accepted = accepted.map_err(|f| f.to_string())?;
    assert_eq!(accepted.requested_server_name(), Some("api.example.com"));
    let before = timeout(STEP, client).await???;
    assert_eq!(
        before.peer_certificate().map(|c| c.der().to_vec()),
        Some(api.cert_der.clone())
    );

    let renewed = pki.leaf("localhost", &["localhost"])?;
    reload.reload(&ServerCredentials::new(identity(&renewed)?))?;
    let client = tokio::spawn(connect("api.example.com"));
    let accepted = timeout(STEP, incoming.next()).await?.ok_or("ended")?;
    assert!(accepted.map_err(|f| f.to_string())?.is_encrypted());
    let after = timeout(STEP, client).await???;
    assert_eq!(
        after.peer_certificate().map(|c| c.der().to_vec()),
        Some(renewed.cert_der.clone()),
        "the reloaded credentials have no name map: the new default"
    );
    Ok(())
}

/// Twenty handshakes of a `QueryPeer` server under way at once (more than the verifier
/// instances a server keeps, so some handshakes build their own), the clients presenting a
/// trusted certificate, an untrusted one, or none, in turn: each server socket reports the
/// errors of its own client's certificate and no other's. A verdict that crossed from one
/// handshake to another would show as errors on a trusted or certificate-less client, or
/// none on an untrusted one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_handshakes_each_report_their_own_client_certificate() -> TestResult {
    const CLIENTS: usize = 20;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let root = SslCertificate::from_der(pki.root_der())?;
    let mut configuration = server_configuration(&leaf)?;
    configuration.set_ca_certificates(vec![root.clone()]);
    let server = SslServer::bind("127.0.0.1:0", configuration).await?;
    let port = server.local_addr().port();
    let mut incoming = server.incoming();
    let trusted = pki.client_cert(true)?;
    let untrusted = pki.client_cert(false)?;
    let chain_of = |issued: &Issued| -> Result<Vec<SslCertificate>, sslsocket::ConfigError> {
        issued
            .chain_der
            .iter()
            .map(|der| SslCertificate::from_der(der))
            .collect()
    };
    let (trusted_chain, untrusted_chain) = (chain_of(&trusted)?, chain_of(&untrusted)?);

    // Connected, no ClientHello yet: every handshake holds its verifier from now on.
    let mut clients = Vec::new();
    for index in 0..CLIENTS {
        let mut configuration = match index % 3 {
            0 => serving(&trusted).map_err(|e| e.to_string())?,
            1 => serving(&untrusted).map_err(|e| e.to_string())?,
            _ => SslConfiguration::default(),
        };
        configuration
            .set_ca_certificates(vec![root.clone()])
            .set_system_ca_on_demand(false);
        clients.push(SslSocket::connect_to_host("localhost", port, configuration).await?);
    }
    until_in_progress(&mut incoming, CLIENTS).await?;
    let mut running = Vec::new();
    for mut client in clients {
        running.push(tokio::spawn(async move {
            client.start_client_encryption().await.map(|()| client)
        }));
    }
    let mut kinds = [0usize; 3];
    for _ in 0..CLIENTS {
        let socket = match timeout(STEP, incoming.next()).await? {
            Some(Ok(socket)) => socket,
            Some(Err(failed)) => return Err(format!("a handshake failed: {failed:?}").into()),
            None => return Err("the server stopped".into()),
        };
        let chain = socket.peer_certificate_chain().to_vec();
        let errors = socket.ssl_handshake_errors();
        if chain == trusted_chain {
            kinds[0] += 1;
            assert!(errors.is_empty(), "trusted client: {errors:?}");
        } else if chain == untrusted_chain {
            kinds[1] += 1;
            assert!(!errors.is_empty(), "untrusted client without errors");
            for error in errors {
                let on = error
                    .certificate()
                    .ok_or("an error without its certificate")?;
                assert!(
                    untrusted_chain.contains(on),
                    "{error:?} is not about this chain"
                );
            }
        } else {
            kinds[2] += 1;
            assert!(chain.is_empty(), "a chain no client sent");
            assert!(
                errors.is_empty(),
                "client without a certificate: {errors:?}"
            );
        }
    }
    assert_eq!(kinds, [7, 7, 6]);
    for client in running {
        timeout(STEP, client).await???;
    }
    Ok(())
}
