//! The tokio driver on loopback: our tokio client and server with each other, with the
//! blocking driver, and with `openssl s_server` / `s_client`; bulk echo, handshake
//! timeout, truncation, STARTTLS, and 2000 concurrent connections.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sslsocket::prelude::*;
use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::{
    SocketError, SocketState, SslCertificate, SslConfiguration, SslEvent, SslKey, SslMode,
    SslProtocol,
};
use support::{os_args, Issued, OpensslClient, OpensslServer, Pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Upper bound of any single network step of these tests.
const STEP: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_and_server_echo_one_mebibyte_byte_exact() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let socket = server.accept_encrypted().await?;
        echo_until_closed(socket).await
    });

    let mut client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    assert!(client.is_encrypted());
    assert_eq!(client.mode(), SslMode::SslClientMode);
    assert_eq!(client.session_protocol(), SslProtocol::TlsV1_3);
    assert_eq!(client.peer_certificate_chain().len(), 2);
    assert!(client.ssl_handshake_errors().is_empty());
    let cipher = client.session_cipher().ok_or("no session cipher")?;
    assert!(cipher.name().starts_with("TLS_"), "{}", cipher.name());
    let events = client.take_events();
    assert!(events.contains(&SslEvent::Encrypted), "{events:?}");

    let data = pattern(1 << 20, 7);
    let echoed = timeout(STEP, echo_through(client, data.clone())).await??;
    assert!(echoed == data, "the echo differs from what was sent");
    assert_eq!(timeout(STEP, served).await???, data.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_pair_round_trips_sixty_four_mebibytes_byte_exact() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let socket = server.accept_encrypted().await?;
        echo_until_closed(socket).await
    });
    let client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    let data = pattern(64 << 20, 64);
    let started = Instant::now();
    let echoed = timeout(Duration::from_secs(120), echo_through(client, data.clone())).await??;
    let first_difference = echoed.iter().zip(&data).position(|(a, b)| a != b);
    assert_eq!(echoed.len(), data.len());
    assert_eq!(
        first_difference, None,
        "the echo differs from what was sent"
    );
    assert_eq!(timeout(STEP, served).await???, data.len());
    eprintln!("64 MiB echoed in {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_talks_to_blocking_server() -> TestResult {
    let pki = Pki::new()?;
    let server =
        sslsocket::blocking::SslServer::listen("127.0.0.1:0", server_configuration(&pki)?)?;
    let port = server.local_addr().port();
    let data = pattern(256 * 1024, 3);
    let expected = data.len();
    let served = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let mut socket = server.accept().map_err(|e| e.to_string())?;
        socket.set_io_timeout(Some(STEP));
        let mut received = vec![0u8; expected];
        socket
            .read_exact(&mut received)
            .map_err(|e| e.to_string())?;
        socket.write_all(&received).map_err(|e| e.to_string())?;
        // Everything written, then close_notify, then the end of TCP.
        socket.close().map_err(|e| e.to_string())?;
        Ok(received)
    });

    let mut client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    timeout(STEP, client.write_all(&data)).await??;
    timeout(STEP, client.flush()).await??;
    let mut echoed = vec![0u8; data.len()];
    timeout(STEP, client.read_exact(&mut echoed)).await??;
    assert!(echoed == data, "the echo differs from what was sent");
    // The blocking server's close_notify ends the stream cleanly.
    let mut rest = Vec::new();
    timeout(STEP, client.read_to_end(&mut rest)).await??;
    assert!(rest.is_empty(), "{} unexpected bytes", rest.len());
    assert!(client.core().is_peer_closed_cleanly());
    timeout(STEP, client.disconnect_from_host()).await??;
    assert_eq!(client.state(), SocketState::UnconnectedState);
    let received = tokio::task::spawn_blocking(move || served.join())
        .await?
        .map_err(|_| "the server thread panicked")??;
    assert!(received == data);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_talks_to_tokio_server() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let data = pattern(256 * 1024, 5);
    let expected = data.len();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let mut received = vec![0u8; expected];
        socket.read_exact(&mut received).await?;
        socket.write_all(&received).await?;
        socket.flush().await?;
        let mut rest = Vec::new();
        socket.read_to_end(&mut rest).await?;
        socket.disconnect_from_host().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((received, rest))
    });

    let client_configuration = client_configuration(&pki)?;
    let sent = data.clone();
    let echoed = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let mut client = sslsocket::blocking::SslSocket::with_configuration(client_configuration);
        client.set_io_timeout(Some(STEP));
        client.connect_to_host_encrypted("localhost", port);
        client.wait_for_encrypted(STEP).map_err(|e| e.to_string())?;
        client.write_all(&sent).map_err(|e| e.to_string())?;
        let mut echoed = vec![0u8; sent.len()];
        client.read_exact(&mut echoed).map_err(|e| e.to_string())?;
        client.close().map_err(|e| e.to_string())?;
        Ok(echoed)
    })
    .await??;
    assert!(echoed == data, "the echo differs from what was sent");
    let (received, rest) = timeout(STEP, served).await???;
    assert!(received == data);
    assert!(rest.is_empty(), "{} unexpected bytes", rest.len());
    Ok(())
}

#[tokio::test]
async fn tokio_client_talks_to_openssl_s_server() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut args = leaf.openssl_args();
    args.push("-rev".into());
    let server = OpensslServer::start(&args)?;

    let mut client = SslSocket::connect_to_host_encrypted(
        "localhost",
        server.port(),
        client_configuration(&pki)?,
    )
    .await?;
    assert_eq!(client.session_protocol(), SslProtocol::TlsV1_3);
    assert!(client.ssl_handshake_errors().is_empty());
    let chain: Vec<Vec<u8>> = client
        .peer_certificate_chain()
        .iter()
        .map(|c| c.to_der().to_vec())
        .collect();
    assert_eq!(chain, leaf.chain_der);

    client.write_all(b"hello tokio\n").await?;
    client.flush().await?;
    let deadline = Instant::now() + STEP;
    loop {
        let line = timeout(STEP, client.next_line(0)).await??;
        if String::from_utf8_lossy(&line).contains("oikot olleh") {
            break;
        }
        if line.is_empty() || Instant::now() > deadline {
            return Err(format!("no reversed line; server said:\n{}", server.output()).into());
        }
    }
    timeout(STEP, client.disconnect_from_host()).await??;
    Ok(())
}

#[tokio::test]
async fn tokio_client_reports_a_wrong_name_and_accepts_exactly_the_reported_errors() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("elsewhere.test", &["elsewhere.test"])?;
    let server = OpensslServer::start(&leaf.openssl_args())?;

    let refused = SslSocket::connect_to_host_encrypted(
        "localhost",
        server.port(),
        client_configuration(&pki)?,
    )
    .await;
    let error = refused.err().ok_or("the handshake should fail")?;
    assert_eq!(
        error.error().socket_error(),
        SocketError::SslHandshakeFailedError
    );
    assert!(
        error
            .to_string()
            .contains("certificate verification failed"),
        "{error}"
    );

    // Qt's pattern: look at the errors of a failed attempt, accept exactly those.
    let mut first =
        SslSocket::connect_to_host("localhost", server.port(), client_configuration(&pki)?).await?;
    let failed = timeout(STEP, first.start_client_encryption()).await?;
    assert!(failed.is_err(), "the handshake should fail");
    let errors = first.ssl_handshake_errors().to_vec();
    assert!(!errors.is_empty());
    for error in &errors {
        let certificate = error
            .certificate()
            .ok_or("an error without its certificate")?;
        assert_eq!(certificate.to_der(), leaf.cert_der.as_slice(), "{error:?}");
    }
    let events = first.take_events();
    assert!(
        events.contains(&SslEvent::SslErrors(errors.clone())),
        "{events:?}"
    );

    let mut client =
        SslSocket::connect_to_host("localhost", server.port(), client_configuration(&pki)?).await?;
    client.ignore_ssl_errors_list(&errors);
    timeout(STEP, client.start_client_encryption()).await??;
    assert!(client.is_encrypted());
    assert_eq!(client.ssl_handshake_errors(), errors.as_slice());
    timeout(STEP, client.disconnect_from_host()).await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_server_talks_to_openssl_s_client() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let protocol = socket.session_protocol();
        let line = timeout(STEP, socket.next_line(0)).await??;
        let mut reply = b"pong: ".to_vec();
        reply.extend_from_slice(&line);
        socket.write_all(&reply).await?;
        timeout(STEP, socket.disconnect_from_host()).await??;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((protocol, line))
    });

    let args = os_args![
        "-CAfile",
        pki.root_pem(),
        "-servername",
        "localhost",
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
        "-ign_eof",
        "-quiet",
    ];
    let out = tokio::task::spawn_blocking(move || {
        OpensslClient::run(port, &args, b"ping\n", Duration::from_secs(20))
    })
    .await??;
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("pong: ping"), "{out}");
    let (protocol, line) = timeout(STEP, served).await???;
    assert_eq!(protocol, SslProtocol::TlsV1_3);
    assert_eq!(line, b"ping\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_times_out_a_silent_client_without_holding_up_others() -> TestResult {
    let pki = Pki::new()?;
    let mut server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let limit = Duration::from_secs(1);
    server.set_handshake_timeout(limit);
    let addr = server.local_addr();

    // The silent client connects first and never sends a byte.
    let silent = tokio::net::TcpStream::connect(addr).await?;
    let (stream, _) = server.accept().await?;
    let started = Instant::now();
    let silent_handshake = tokio::spawn(server.handshake(stream));

    // A real client connecting afterwards is served while the silent one waits.
    let served = tokio::spawn(async move {
        let (stream, _) = server.accept().await?;
        let mut socket = server.handshake(stream).await?;
        let line = socket.next_line(0).await?;
        socket.write_all(&line).await?;
        socket.disconnect_from_host().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let mut client =
        SslSocket::connect_to_host_encrypted("localhost", addr.port(), client_configuration(&pki)?)
            .await?;
    client.write_all(b"not blocked\n").await?;
    assert_eq!(timeout(STEP, client.next_line(0)).await??, b"not blocked\n");
    assert!(
        started.elapsed() < limit,
        "the real client waited for the silent one ({:?})",
        started.elapsed()
    );
    timeout(STEP, served).await???;

    let mut failed = match timeout(STEP, silent_handshake).await?? {
        Ok(_) => return Err("the silent client's handshake succeeded".into()),
        Err(failed) => failed,
    };
    let waited = started.elapsed();
    assert_eq!(
        failed.error().socket_error(),
        SocketError::SocketTimeoutError
    );
    assert!(
        waited >= limit && waited < limit * 4,
        "timed out after {waited:?}"
    );
    let socket = failed.socket_mut().ok_or("no socket with the failure")?;
    assert_eq!(socket.error(), SocketError::SocketTimeoutError);
    assert_eq!(socket.state(), SocketState::UnconnectedState);
    drop(silent);
    Ok(())
}

#[tokio::test]
async fn truncated_stream_reads_the_data_then_unexpected_eof() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        socket.write_all(b"partial data\n").await?;
        socket.flush().await?;
        // Closes TCP without close_notify.
        socket.abort();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let mut client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    timeout(STEP, served).await???;
    let mut received = Vec::new();
    let result = timeout(STEP, client.read_to_end(&mut received)).await?;
    assert_eq!(received, b"partial data\n");
    let error = result
        .err()
        .ok_or("a truncated stream must not end cleanly")?;
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(client.core().is_truncated());
    assert_eq!(client.error(), SocketError::RemoteHostClosedError);
    Ok(())
}

#[tokio::test]
async fn clean_close_reads_the_data_then_end_of_stream() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        socket.write_all(b"complete data\n").await?;
        socket.disconnect_from_host().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let mut client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    let mut received = Vec::new();
    timeout(STEP, client.read_to_end(&mut received)).await??;
    assert_eq!(received, b"complete data\n");
    assert!(client.core().is_peer_closed_cleanly());
    assert!(!client.core().is_truncated());
    timeout(STEP, served).await???;
    // The core answered the close_notify by itself: nothing is left to do.
    timeout(STEP, client.disconnect_from_host()).await??;
    assert_eq!(client.state(), SocketState::UnconnectedState);
    Ok(())
}

/// The addresses come from `connect` and `accept` (not asked of the kernel again): each end
/// names the other's, for an encrypted pair and for a handshake run on `accept`'s stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ends_know_each_others_addresses() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let server_addr = server.local_addr();
    let served = tokio::spawn(async move {
        let first = server.accept_encrypted().await?;
        let (stream, peer) = server.accept().await?;
        let second = server.handshake(stream).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((
            (first.peer_addr(), first.local_addr()),
            (peer, second.peer_addr(), second.local_addr()),
        ))
    });
    let mut client_locals = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let client = SslSocket::connect_to_host_encrypted(
            "localhost",
            server_addr.port(),
            client_configuration(&pki)?,
        )
        .await?;
        assert_eq!(client.peer_addr(), Some(server_addr));
        client_locals.push(client.local_addr().ok_or("no local address")?);
        clients.push(client);
    }
    let ((first_peer, first_local), (accepted_peer, second_peer, second_local)) =
        timeout(STEP, served).await???;
    assert_eq!(first_peer, Some(client_locals[0]));
    assert_eq!(first_local, Some(server_addr));
    assert_eq!(second_peer, Some(accepted_peer));
    assert_eq!(accepted_peer, client_locals[1]);
    assert_eq!(second_local, Some(server_addr));
    Ok(())
}

#[tokio::test]
async fn plain_connection_upgrades_with_starttls() -> TestResult {
    let pki = Pki::new()?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    let configuration = server_configuration(&pki)?;
    let served = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut socket = SslSocket::from_tcp_stream(stream, configuration)?;
        let command = timeout(STEP, socket.next_line(0)).await??;
        if command != b"STARTTLS\n" {
            return Err(format!("unexpected command {command:?}").into());
        }
        socket.write_all(b"220 go ahead\n").await?;
        socket.flush().await?;
        timeout(STEP, socket.start_server_encryption()).await??;
        let secret = timeout(STEP, socket.next_line(0)).await??;
        socket.write_all(b"250 ok\n").await?;
        timeout(STEP, socket.disconnect_from_host()).await??;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(secret)
    });

    let mut client =
        SslSocket::connect_to_host("localhost", port, client_configuration(&pki)?).await?;
    assert_eq!(client.mode(), SslMode::UnencryptedMode);
    client.write_all(b"STARTTLS\n").await?;
    client.flush().await?;
    assert_eq!(
        timeout(STEP, client.next_line(0)).await??,
        b"220 go ahead\n"
    );
    timeout(STEP, client.start_client_encryption()).await??;
    assert_eq!(client.mode(), SslMode::SslClientMode);
    client.write_all(b"secret\n").await?;
    assert_eq!(timeout(STEP, client.next_line(0)).await??, b"250 ok\n");
    assert_eq!(timeout(STEP, served).await???, b"secret\n");
    timeout(STEP, client.disconnect_from_host()).await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_clients_handshake_and_exchange_a_line() -> TestResult {
    const CLIENTS: usize = 2000;
    // Each connection takes two descriptors here (client and server side); stay well
    // inside the soft limit instead of raising it.
    let clients = CLIENTS.min(descriptor_limit().saturating_sub(200) / 2);
    if clients < CLIENTS {
        eprintln!("descriptor limit is low: running {clients} clients instead of {CLIENTS}");
    }

    let pki = Pki::new()?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    let listener = socket.listen(4096)?;
    let mut server = SslServer::from_listener(listener, server_configuration(&pki)?)?;
    // Thousands of handshakes share two cores: give each one room.
    server.set_handshake_timeout(Duration::from_secs(90));
    let port = server.local_addr().port();
    let acceptor = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (stream, _) = server.accept().await?;
            let handshake = server.handshake(stream);
            tasks.spawn(async move {
                let mut socket = handshake.await?;
                let line = socket.next_line(0).await?;
                socket.write_all(&line).await?;
                socket.flush().await?;
                // Wait for the client's close, so every connection stays open until all
                // clients have their answer.
                let mut rest = Vec::new();
                socket.read_to_end(&mut rest).await?;
                socket.disconnect_from_host().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            });
        }
        let mut served = 0usize;
        while let Some(joined) = tasks.join_next().await {
            joined??;
            served += 1;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(served)
    });

    let started = Instant::now();
    let configuration = client_configuration(&pki)?;
    let all_answered = Arc::new(tokio::sync::Barrier::new(clients));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let configuration = configuration.clone();
        let all_answered = Arc::clone(&all_answered);
        tasks.spawn(async move {
            let mut socket =
                SslSocket::connect_to_host_encrypted("127.0.0.1", port, configuration).await?;
            let line = format!("client {i}\n");
            socket.write_all(line.as_bytes()).await?;
            let answer = socket.next_line(0).await?;
            if answer != line.as_bytes() {
                return Err(format!("client {i} got {answer:?}").into());
            }
            all_answered.wait().await;
            socket.disconnect_from_host().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
    }
    let finished = timeout(Duration::from_secs(240), async {
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })
    .await;
    finished??;
    let served = timeout(STEP, acceptor).await???;
    assert_eq!(served, clients);
    eprintln!(
        "{clients} concurrent TLS connections in {:?}",
        started.elapsed()
    );
    Ok(())
}

// ----- helpers of this file ------------------------------------------------------------

fn server_configuration(pki: &Pki) -> Result<SslConfiguration, sslsocket::Error> {
    let leaf = pki
        .leaf("localhost", &["localhost", "127.0.0.1"])
        .map_err(|e| sslsocket::ConfigError::new(e.to_string()))?;
    server_configuration_for(&leaf)
}

fn server_configuration_for(leaf: &Issued) -> Result<SslConfiguration, sslsocket::Error> {
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

fn client_configuration(pki: &Pki) -> Result<SslConfiguration, sslsocket::Error> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?])
        .set_system_ca_on_demand(false);
    Ok(configuration)
}

/// Echoes everything until the peer's close_notify, then closes; returns the byte count.
async fn echo_until_closed(
    socket: SslSocket,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let (mut reader, mut writer) = tokio::io::split(socket);
    let copied = tokio::io::copy(&mut reader, &mut writer).await?;
    writer.flush().await?;
    let mut socket = reader.unsplit(writer);
    socket.disconnect_from_host().await?;
    Ok(usize::try_from(copied)?)
}

/// Sends `data` from one task while another reads the echo, then closes cleanly.
async fn echo_through(
    client: SslSocket,
    data: Vec<u8>,
) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let (mut reader, mut writer) = tokio::io::split(client);
    let len = data.len();
    let sender = tokio::spawn(async move {
        for chunk in data.chunks(64 * 1024) {
            writer.write_all(chunk).await?;
        }
        writer.flush().await?;
        Ok::<_, std::io::Error>(writer)
    });
    let mut echoed = vec![0u8; len];
    reader.read_exact(&mut echoed).await?;
    let writer = sender.await??;
    let mut client = reader.unsplit(writer);
    client.disconnect_from_host().await?;
    Ok(echoed)
}

/// `len` bytes of xorshift noise, so misplaced chunks cannot match by accident.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The soft limit on open descriptors of this process.
fn descriptor_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_tickets_and_close_notify_that_arrive_while_closing_are_taken_in() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        for _ in 0..2 {
            let mut socket = server.accept_encrypted().await?;
            let mut rest = Vec::new();
            socket
                .read_to_end(&mut rest)
                .await
                .map_err(|e| sslsocket::Error::io("reading", e))?;
            socket.disconnect_from_host().await?;
        }
        Ok::<_, sslsocket::Error>(())
    });
    let client = client_configuration(&pki)?;
    // Connect and close at once: the server's tickets and its close_notify come in while
    // the client closes.
    let mut first = SslSocket::connect_to_host_encrypted("localhost", port, client.clone()).await?;
    timeout(STEP, first.disconnect_from_host()).await??;
    let events = first.take_events();
    assert!(
        events.contains(&SslEvent::NewSessionTicketReceived),
        "no ticket was taken in while closing: {events:?}"
    );
    assert!(!first.core().is_truncated(), "{}", first.error_string());
    let mut second = SslSocket::connect_to_host_encrypted("localhost", port, client).await?;
    assert!(second.core().is_session_resumed());
    timeout(STEP, second.disconnect_from_host()).await??;
    timeout(STEP, served).await???;
    Ok(())
}

/// A reader that waits for each message (the steady-state read path) gets every message,
/// then at the end exactly what the peer did: the tail and a clean end after close_notify,
/// the tail and `UnexpectedEof` after a TCP close without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reader_gets_each_message_then_the_clean_end_or_the_truncation() -> TestResult {
    let pki = Pki::new()?;
    for clean in [true, false] {
        let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
        let port = server.local_addr().port();
        let mut served = Some(tokio::spawn(async move {
            let mut socket = server.accept_encrypted().await?;
            let mut request = [0u8; 1];
            for round in 0..50u64 {
                // The answer leaves only after the request came: the client waits for it.
                socket.read_exact(&mut request).await?;
                socket.write_all(&pattern(64, round)).await?;
                socket.flush().await?;
            }
            socket.read_exact(&mut request).await?;
            socket.write_all(b"the tail\n").await?;
            socket.flush().await?;
            if clean {
                // close_notify and FIN, then wait for the client's end: it comes only if
                // the client's read path answers the close_notify by itself.
                socket.shutdown().await?;
                let mut rest = Vec::new();
                timeout(STEP, socket.read_to_end(&mut rest)).await??;
                assert!(rest.is_empty());
                assert!(socket.core().is_peer_closed_cleanly());
            } else {
                socket.abort();
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
        let mut client =
            SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
                .await?;
        let mut answer = [0u8; 64];
        for round in 0..50u64 {
            client.write_all(b"?").await?;
            client.flush().await?;
            timeout(STEP, client.read_exact(&mut answer)).await??;
            assert_eq!(answer.to_vec(), pattern(64, round), "round {round}");
        }
        client.write_all(b"!").await?;
        client.flush().await?;
        let mut received = Vec::new();
        let result = timeout(STEP, client.read_to_end(&mut received)).await?;
        assert_eq!(received, b"the tail\n");
        if clean {
            result?;
            assert!(client.core().is_peer_closed_cleanly());
            assert!(!client.core().is_truncated());
            // Before anything else is done with the client.
            if let Some(served) = served.take() {
                timeout(STEP, served).await???;
            }
        } else {
            let error = result
                .err()
                .ok_or("a truncated stream must not end cleanly")?;
            assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
            assert!(client.core().is_truncated());
        }
        // Reading again gives the same end, not a wait.
        let mut more = [0u8; 8];
        let again = timeout(STEP, client.read(&mut more)).await?;
        match (clean, again) {
            (true, Ok(0)) => {}
            (false, Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            (_, other) => return Err(format!("read after the end gave {other:?}").into()),
        }
        if let Some(served) = served.take() {
            timeout(STEP, served).await???;
        }
    }
    Ok(())
}

/// A KeyUpdate with update_requested arrives while our reader waits for data (and brings
/// no data of its own): the reader goes on waiting and reads the line after it, and our
/// next write carries our own KeyUpdate (rustls and OpenSSL send it with the next record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_update_that_reaches_a_waiting_reader_is_followed() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut args = leaf.openssl_args();
    args.push("-tls1_3".into());
    args.push("-msg".into());
    let server = OpensslServer::start(&args)?;
    let mut client = SslSocket::connect_to_host_encrypted(
        "localhost",
        server.port(),
        client_configuration(&pki)?,
    )
    .await?;
    client.write_all(b"before\n").await?;
    client.flush().await?;
    let server = tokio::task::spawn_blocking(move || {
        server.wait_for_output("before", STEP)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(server)
    })
    .await??;

    // The reader waits (nothing has arrived); then the KeyUpdate and a line come.
    let reader = tokio::spawn(async move {
        let mut line = Vec::new();
        let mut buf = [0u8; 64];
        while !line.ends_with(b"\n") {
            let n = timeout(STEP, client.read(&mut buf)).await??;
            if n == 0 {
                return Err("the stream ended before the line".into());
            }
            line.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((client, line))
    });
    let server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        // "K": KeyUpdate with update_requested, so our side must update its keys too.
        server.write_stdin(b"K\n")?;
        server.wait_for_output(">>> TLS 1.3, Handshake [length 0005], KeyUpdate", STEP)?;
        server.write_stdin(b"after the update\n")?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(server)
    })
    .await??;
    let (mut client, line) = reader.await??;
    assert_eq!(line, b"after the update\n");
    client.write_all(b"ours after the update\n").await?;
    client.flush().await?;
    let output = tokio::task::spawn_blocking(move || {
        server.wait_for_output("ours after the update", STEP)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(server.output())
    })
    .await??;
    assert!(
        output.contains("<<< TLS 1.3, Handshake [length 0005], KeyUpdate"),
        "our side answered with its own KeyUpdate: {output}"
    );
    assert!(client.is_encrypted());
    timeout(STEP, client.disconnect_from_host()).await??;
    Ok(())
}

/// Back-pressure on the read path: with a 16-byte read buffer and a reader taking small
/// reads, what the socket holds decrypted stays bounded while a mebibyte arrives, and
/// every byte arrives in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_async_reads_keep_what_is_buffered_bounded() -> TestResult {
    const TOTAL: usize = 1024 * 1024;
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        for chunk in pattern(TOTAL, 7).chunks(64 * 1024) {
            socket.write_all(chunk).await?;
        }
        socket.disconnect_from_host().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let mut client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    client.set_read_buffer_size(16);
    let mut received = Vec::with_capacity(TOTAL);
    let mut buf = [0u8; 100];
    let mut most = 0;
    loop {
        let n = timeout(STEP, client.read(&mut buf)).await??;
        if n == 0 {
            break;
        }
        received.extend_from_slice(buf.get(..n).unwrap_or_default());
        most = most.max(client.bytes_available());
    }
    assert!(
        received == pattern(TOTAL, 7),
        "{} bytes, not the pattern",
        received.len()
    );
    // At most about one record is decrypted ahead of the reader.
    assert!(most < 64 * 1024, "{most} bytes were buffered");
    assert!(client.core().is_peer_closed_cleanly());
    timeout(STEP, served).await???;
    Ok(())
}

/// Reads given up while waiting (a timeout drops the future, as `select!` does) leave the
/// socket as it was: the next read waits again, and gets what the peer sends later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_given_up_while_waiting_leave_the_next_read_intact() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let mut request = [0u8; 3];
        socket.read_exact(&mut request).await?;
        socket.write_all(b"the answer\n").await?;
        socket.disconnect_from_host().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let mut client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    let mut buf = [0u8; 64];
    // Nothing is sent before our request: each of these reads can only wait.
    for _ in 0..3 {
        let given_up = timeout(Duration::from_millis(20), client.read(&mut buf)).await;
        assert!(
            given_up.is_err(),
            "a read completed with nothing sent: {given_up:?}"
        );
    }
    client.write_all(b"go\n").await?;
    client.flush().await?;
    let mut received = Vec::new();
    timeout(STEP, client.read_to_end(&mut received)).await??;
    assert_eq!(received, b"the answer\n");
    assert!(client.core().is_peer_closed_cleanly());
    timeout(STEP, served).await???;
    Ok(())
}
