//! The hyper and axum examples, run end to end as tests: each talks to itself on
//! 127.0.0.1 with a certificate made at start, over HTTP/2 and HTTP/1.1 as ALPN decides.
//! The examples' own code runs here (included, not copied), so CI proves that what they
//! show works, not only that it compiles.
// Each example includes the examples' `common` module itself (it must run on its own),
// so including both loads that file twice; the two copies are independent and identical.
#![allow(clippy::duplicate_mod)]

#[allow(dead_code)]
#[path = "../examples/axum_server.rs"]
mod axum_server;
#[allow(dead_code)]
#[path = "../examples/hyper_client.rs"]
mod hyper_client;

use hyper::Version;

type TestResult = Result<(), hyper_client::BoxError>;

/// What hyper, axum and `tokio::spawn` need of the types they are handed, checked at
/// compile time: the sockets and servers move between threads, and the sockets are `Unpin`
/// (hyper-util's `TokioIo` and axum's `Listener::Io` ask for it).
#[test]
fn sockets_and_servers_are_send_and_unpin() {
    fn send_unpin<T: Send + Unpin + 'static>() {}
    fn send_sync<T: Send + Sync + 'static>() {}
    send_unpin::<sslsocket::tokio::SslSocket>();
    send_unpin::<sslsocket::blocking::SslSocket>();
    send_sync::<sslsocket::blocking::SslSocket>();
    send_unpin::<sslsocket::core::SslCore>();
    send_sync::<sslsocket::tokio::SslServer>();
    // The blocking server is Send, not Sync (its channel of accepted sockets).
    send_unpin::<sslsocket::blocking::SslServer>();
    send_sync::<sslsocket::SslConfiguration>();
    send_sync::<sslsocket::Error>();
    send_sync::<sslsocket::ConfigError>();
}

#[tokio::test]
async fn hyper_speaks_http2_or_http1_as_alpn_chose_over_our_sockets() -> TestResult {
    let [both, http1_only] = hyper_client::run().await?;
    assert_eq!(both.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(both.version, Version::HTTP_2);
    assert_eq!(
        (both.status, both.body.as_str()),
        (200, "hello over HTTP/2.0")
    );
    assert_eq!(http1_only.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(http1_only.version, Version::HTTP_11);
    assert_eq!(
        (http1_only.status, http1_only.body.as_str()),
        (200, "hello over HTTP/1.1")
    );
    Ok(())
}

#[tokio::test]
async fn axum_serves_on_our_listener_over_http2_and_http1() -> TestResult {
    let [h2, http1] = axum_server::run().await?;
    assert_eq!(h2, (200, "hello qt over HTTP/2.0".to_string()));
    assert_eq!(http1, (200, "hello qt over HTTP/1.1".to_string()));
    Ok(())
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_server_gets_no_answer_from_axum() -> TestResult {
    let pki = axum_server::LocalPki::generate()?;
    let other = axum_server::LocalPki::generate()?;
    let server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", pki.server.clone()).await?;
    let addr = server.local_addr();
    let serving = tokio::spawn(async move {
        axum::serve(axum_server::TlsListener::new(server), axum_server::app()).await
    });
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        axum_server::get_text(addr, "/hello/qt", other.client(&[axum_server::H2])),
    )
    .await?;
    // The handshake fails on the client (another CA): no HTTP exchange at all.
    let error = refused
        .err()
        .ok_or("a client trusting another CA got an answer")?;
    // `connect_to_host_encrypted` gives the failed socket back, with what it found.
    let failure = error
        .downcast_ref::<sslsocket::tokio::FailedHandshake>()
        .ok_or("not a failed handshake")?;
    assert_eq!(
        failure.error().socket_error(),
        sslsocket::SocketError::SslHandshakeFailedError,
        "{failure}"
    );
    // And the server still serves a client that trusts it.
    let (status, body) =
        axum_server::get_text(addr, "/hello/again", pki.client(&[axum_server::HTTP11])).await?;
    assert_eq!((status, body.as_str()), (200, "hello again over HTTP/1.1"));
    serving.abort();
    Ok(())
}
