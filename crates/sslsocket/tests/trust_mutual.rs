//! Mutual TLS on loopback: our server asking `openssl s_client` for a certificate
//! (`VerifyPeer`, `QueryPeer`, `VerifyNone`), and our client presenting one to
//! `openssl s_server -Verify`. Client-certificate errors are cross-checked with OpenSSL's
//! server verifying the same certificates.

mod support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::SslErrorKind::*;
use sslsocket::{
    PeerVerifyMode, SocketError, SslCertificate, SslConfiguration, SslError, SslEvent, SslKey,
    SslProtocol,
};

use support::trust::{
    accept_one, by_subject, certificates, client_to, error_set, expect, identity_args,
    parse_verify_callback_output, serve, server_configuration, trusting, verification_events,
    ErrorOn, HANDSHAKE_TIMEOUT,
};
use support::{
    os_args, wait_until, Eku, Issued, LeafSpec, OpensslClient, PeerProcess, Pki, Validity,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Our server's own certificate.
fn server_leaf(pki: &Pki) -> Result<Issued, support::SupportError> {
    pki.leaf("localhost", &["localhost", "127.0.0.1"])
}

/// `openssl s_client` to `port`, verifying our server against the root, presenting
/// `client` (with the certificates after its leaf when `with_chain`) if given. Stdin
/// stays open, so it stays connected until killed (on drop).
fn s_client(
    pki: &Pki,
    port: u16,
    client: Option<(&Issued, bool)>,
    extra: &[&str],
) -> Result<PeerProcess, support::SupportError> {
    let mut args = os_args![
        "-CAfile",
        pki.root_pem(),
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
    ];
    if let Some((issued, with_chain)) = client {
        args.extend(identity_args(issued, with_chain));
    }
    args.extend(extra.iter().map(std::ffi::OsString::from));
    OpensslClient::spawn(port, &args)
}

/// OpenSSL's server verifying the same client certificate: `s_server -verify 10 -CAfile
/// <root>` (its verify callback prints every error and continues), with `s_client`
/// presenting `client`. Returns the (kind, subject) pairs it reported.
fn openssl_server_errors(
    pki: &Pki,
    client: &Issued,
    with_chain: bool,
) -> Result<BTreeSet<(sslsocket::SslErrorKind, String)>, Box<dyn std::error::Error>> {
    let own = server_leaf(pki)?;
    let root = pki.root_pem().to_string_lossy().into_owned();
    let server = serve(
        &own,
        true,
        &[
            "-verify",
            "10",
            "-CAfile",
            root.as_str(),
            "-nameopt",
            "RFC2253",
        ],
    )?;
    let mut args = os_args!["-CAfile", pki.root_pem()];
    args.extend(identity_args(client, with_chain));
    let out = OpensslClient::run(server.port(), &args, b"", Duration::from_secs(10))?;
    // s_server prints the verification when it reads the client's certificate.
    let _ = server.wait_for_output("CIPHER is", Duration::from_secs(5));
    // The verify callback writes to stderr; parsing stderr alone keeps its lines whole
    // (the merged output interleaves stdout's chunks into them). Everything it wrote came
    // before "CIPHER is" on stdout, but the thread reading stderr may not have taken it in
    // yet: wait for it, then take what followed it in the same pipe.
    wait_until(Instant::now() + Duration::from_secs(5), || {
        parse_verify_callback_output(&server.stderr()).is_some()
    });
    std::thread::sleep(Duration::from_millis(100));
    parse_verify_callback_output(&server.stderr()).ok_or_else(|| {
        format!(
            "no verification in s_server output:\n{}\n{out}",
            server.output()
        )
        .into()
    })
}

/// Our server socket after one handshake, the handshake's result, and the `s_client` peer
/// (kept alive until dropped).
type Served = (SslSocket, Result<(), sslsocket::Error>, PeerProcess);

/// Our server with `mode` (trusting the test root for client certificates), one
/// connection from `s_client` presenting `client`: the server socket and its result.
fn our_server_with(
    pki: &Pki,
    mode: PeerVerifyMode,
    client: Option<(&Issued, bool)>,
    prepare: impl FnOnce(&mut SslSocket),
) -> Result<Served, Box<dyn std::error::Error>> {
    let configuration = server_configuration(&server_leaf(pki)?, pki.root_pem(), mode)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let peer = s_client(pki, listener.local_addr()?.port(), client, &[])?;
    let (socket, result) = accept_one(&listener, configuration, prepare)?;
    Ok((socket, result, peer))
}

// ----- our server asking for a client certificate --------------------------------------

#[test]
fn server_requiring_a_certificate_accepts_a_trusted_client_and_keeps_its_chain() -> TestResult {
    let pki = Pki::new()?;
    let client = pki.client_cert(true)?;
    let configuration = server_configuration(
        &server_leaf(&pki)?,
        pki.root_pem(),
        PeerVerifyMode::VerifyPeer,
    )?;
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let mut peer = s_client(&pki, server.local_addr().port(), Some((&client, true)), &[])?;
    let mut socket = match server.next_connection(HANDSHAKE_TIMEOUT)? {
        Ok(socket) => socket,
        Err(failed) => {
            return Err(format!(
                "handshake failed: {} {:?}",
                failed.error_string(),
                failed.ssl_handshake_errors()
            )
            .into())
        }
    };
    assert!(socket.is_encrypted());
    assert!(socket.ssl_handshake_errors().is_empty());
    assert_eq!(
        socket.peer_certificate_chain(),
        certificates(&client.chain_der)?.as_slice()
    );
    assert_eq!(
        socket
            .peer_certificate()
            .map(SslCertificate::subject_rfc4514),
        Some("CN=Test Client".to_string())
    );
    // The connection works both ways.
    peer.write_stdin(b"from the client\n")?;
    socket.wait_for_ready_read(Duration::from_secs(5))?;
    assert_eq!(socket.read_line(0), b"from the client\n");
    std::io::Write::write_all(&mut socket, b"from the server\n")?;
    std::io::Write::flush(&mut socket)?;
    peer.wait_for_output("from the server", Duration::from_secs(5))?;
    Ok(())
}

#[test]
fn server_requiring_a_certificate_fails_a_client_without_one() -> TestResult {
    let pki = Pki::new()?;
    let mut configuration = server_configuration(
        &server_leaf(&pki)?,
        pki.root_pem(),
        PeerVerifyMode::VerifyPeer,
    )?;
    // Fatal: refused inside the handshake, with an alert (not ignorable). Qt's default
    // (not fatal) is covered below: the error is reported and the connection closed.
    configuration.set_missing_certificate_is_fatal(true);
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let peer = s_client(&pki, server.local_addr().port(), None, &[])?;
    let failed = match server.next_connection(HANDSHAKE_TIMEOUT)? {
        Ok(_) => return Err("a client without a certificate was accepted".into()),
        Err(failed) => failed,
    };
    assert!(!failed.is_encrypted());
    assert_eq!(failed.error(), SocketError::SslHandshakeFailedError);
    assert_eq!(
        error_set(failed.ssl_handshake_errors()),
        BTreeSet::from([ErrorOn::without_certificate(NoPeerCertificate)])
    );
    // The client is told why.
    peer.wait_for_output("alert", Duration::from_secs(5))?;
    Ok(())
}

#[test]
fn server_requiring_a_certificate_fails_an_untrusted_client_with_the_errors_openssl_reports(
) -> TestResult {
    let pki = Pki::new()?;
    let client = pki.client_cert(false)?;
    let expected = expect(&[(SelfSignedCertificateInChain, pki.untrusted_root_der())])?;
    let (socket, result, _peer) = our_server_with(
        &pki,
        PeerVerifyMode::VerifyPeer,
        Some((&client, true)),
        |_| {},
    )?;
    let error = result.err().ok_or("the untrusted client was accepted")?;
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert_eq!(error_set(socket.ssl_handshake_errors()), expected);
    assert_eq!(
        socket.peer_certificate_chain(),
        certificates(&client.chain_der)?.as_slice()
    );
    assert_eq!(
        openssl_server_errors(&pki, &client, true)?,
        by_subject(&expected)
    );
    Ok(())
}

#[test]
fn server_requiring_a_certificate_reports_a_lone_untrusted_client_certificate_twice() -> TestResult
{
    let pki = Pki::new()?;
    let client = pki.client_cert(false)?;
    let expected = expect(&[
        (UnableToGetLocalIssuerCertificate, &client.cert_der),
        (UnableToVerifyFirstCertificate, &client.cert_der),
    ])?;
    let (socket, result, _peer) = our_server_with(
        &pki,
        PeerVerifyMode::VerifyPeer,
        Some((&client, false)),
        |_| {},
    )?;
    assert!(result.is_err());
    assert_eq!(error_set(socket.ssl_handshake_errors()), expected);
    assert_eq!(
        openssl_server_errors(&pki, &client, false)?,
        by_subject(&expected)
    );
    Ok(())
}

#[test]
fn server_requiring_a_certificate_refuses_a_server_only_certificate_as_invalid_purpose(
) -> TestResult {
    let pki = Pki::new()?;
    let client = pki.issue(&LeafSpec {
        eku: Eku::ServerOnly,
        ..LeafSpec::new("Server Only Client", &[])
    })?;
    let expected = expect(&[(InvalidPurpose, &client.cert_der)])?;
    let (socket, result, _peer) = our_server_with(
        &pki,
        PeerVerifyMode::VerifyPeer,
        Some((&client, true)),
        |_| {},
    )?;
    assert!(result.is_err());
    assert_eq!(error_set(socket.ssl_handshake_errors()), expected);
    assert_eq!(
        openssl_server_errors(&pki, &client, true)?,
        by_subject(&expected)
    );
    Ok(())
}

#[test]
fn server_requiring_a_certificate_refuses_an_expired_client_certificate() -> TestResult {
    let pki = Pki::new()?;
    let client = pki.issue(&LeafSpec {
        eku: Eku::ClientOnly,
        validity: Validity::Expired,
        ..LeafSpec::new("Expired Client", &[])
    })?;
    let expected = expect(&[(CertificateExpired, &client.cert_der)])?;
    let (socket, result, _peer) = our_server_with(
        &pki,
        PeerVerifyMode::VerifyPeer,
        Some((&client, true)),
        |_| {},
    )?;
    assert!(result.is_err());
    assert_eq!(error_set(socket.ssl_handshake_errors()), expected);
    assert_eq!(
        openssl_server_errors(&pki, &client, true)?,
        by_subject(&expected)
    );
    Ok(())
}

#[test]
fn server_can_ignore_the_errors_of_a_client_certificate() -> TestResult {
    let pki = Pki::new()?;
    let client = pki.client_cert(false)?;
    let root = SslCertificate::from_der(pki.untrusted_root_der())?;
    let ignore = [SslError::with_certificate(
        SelfSignedCertificateInChain,
        root,
    )];
    let (socket, result, _peer) = our_server_with(
        &pki,
        PeerVerifyMode::VerifyPeer,
        Some((&client, true)),
        |s| s.ignore_ssl_errors_list(&ignore),
    )?;
    result?;
    assert!(socket.is_encrypted());
    assert_eq!(socket.ssl_handshake_errors(), ignore);
    Ok(())
}

#[test]
fn server_with_missing_certificate_not_fatal_still_reports_no_peer_certificate() -> TestResult {
    // Qt: with missingCertificateIsFatal false, a missing client certificate in VerifyPeer
    // is the ordinary, ignorable NoPeerCertificate error (true makes it unignorable).
    let pki = Pki::new()?;
    let configuration = {
        let mut c = server_configuration(
            &server_leaf(&pki)?,
            pki.root_pem(),
            PeerVerifyMode::VerifyPeer,
        )?;
        c.set_missing_certificate_is_fatal(false);
        c
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();

    let _peer = s_client(&pki, port, None, &[])?;
    let (socket, result) = accept_one(&listener, configuration.clone(), |_| {})?;
    assert_eq!(
        error_set(socket.ssl_handshake_errors()),
        BTreeSet::from([ErrorOn::without_certificate(NoPeerCertificate)]),
        "result: {result:?}"
    );
    assert!(result.is_err(), "not ignored, so the handshake fails");
    drop(socket);

    let _peer = s_client(&pki, port, None, &[])?;
    let (socket, result) = accept_one(&listener, configuration, |s| {
        s.ignore_ssl_errors_list(&[SslError::new(NoPeerCertificate)])
    })?;
    result?;
    assert!(socket.is_encrypted());
    Ok(())
}

#[test]
fn query_peer_server_accepts_a_client_without_a_certificate() -> TestResult {
    let pki = Pki::new()?;
    // QueryPeer is what AutoVerifyPeer means for a server.
    for mode in [PeerVerifyMode::QueryPeer, PeerVerifyMode::AutoVerifyPeer] {
        let (socket, result, _peer) = our_server_with(&pki, mode, None, |_| {})?;
        result?;
        assert!(socket.is_encrypted());
        assert!(socket.ssl_handshake_errors().is_empty(), "{mode:?}");
        assert!(socket.peer_certificate_chain().is_empty());
    }
    Ok(())
}

#[test]
fn query_peer_server_accepts_an_untrusted_client_and_records_its_errors() -> TestResult {
    let pki = Pki::new()?;
    let client = pki.client_cert(false)?;
    let expected = expect(&[(SelfSignedCertificateInChain, pki.untrusted_root_der())])?;
    let (socket, result, _peer) = our_server_with(
        &pki,
        PeerVerifyMode::AutoVerifyPeer,
        Some((&client, true)),
        |_| {},
    )?;
    result?;
    assert!(socket.is_encrypted());
    assert_eq!(error_set(socket.ssl_handshake_errors()), expected);
    assert_eq!(
        socket.peer_certificate_chain(),
        certificates(&client.chain_der)?.as_slice()
    );
    Ok(())
}

#[test]
fn query_peer_server_signals_the_errors_of_an_untrusted_client_as_qt_does() -> TestResult {
    // Qt 6 (TlsCryptographOpenSSL::startHandshake, checkSslErrors) emits peerVerifyError
    // for each error and sslErrors with the list whatever the verify mode; only failing
    // (or pausing) depends on VerifyPeer.
    let pki = Pki::new()?;
    let client = pki.client_cert(false)?;
    let (mut socket, result, _peer) = our_server_with(
        &pki,
        PeerVerifyMode::AutoVerifyPeer,
        Some((&client, true)),
        |_| {},
    )?;
    result?;
    let errors = socket.ssl_handshake_errors().to_vec();
    assert_eq!(errors.len(), 1);
    let mut expected_events: Vec<SslEvent> = errors
        .iter()
        .cloned()
        .map(SslEvent::PeerVerifyError)
        .collect();
    expected_events.push(SslEvent::SslErrors(errors));
    expected_events.push(SslEvent::Encrypted);
    assert_eq!(verification_events(socket.take_events()), expected_events);
    Ok(())
}

#[test]
fn query_peer_server_accepts_a_trusted_client_without_errors() -> TestResult {
    let pki = Pki::new()?;
    let client = pki.client_cert(true)?;
    let (socket, result, _peer) = our_server_with(
        &pki,
        PeerVerifyMode::QueryPeer,
        Some((&client, true)),
        |_| {},
    )?;
    result?;
    assert!(socket.ssl_handshake_errors().is_empty());
    assert_eq!(
        socket.peer_certificate_chain(),
        certificates(&client.chain_der)?.as_slice()
    );
    Ok(())
}

/// Our server with `mode` (trusting the test root for client certificates), listening.
fn listening(pki: &Pki, mode: PeerVerifyMode) -> Result<SslServer, Box<dyn std::error::Error>> {
    let configuration = server_configuration(&server_leaf(pki)?, pki.root_pem(), mode)?;
    Ok(SslServer::listen("127.0.0.1:0", configuration)?)
}

/// The next connection of `server`, whose handshake must succeed (`what` names it).
fn next_encrypted(server: &SslServer, what: &str) -> Result<SslSocket, Box<dyn std::error::Error>> {
    match server.next_connection(HANDSHAKE_TIMEOUT)? {
        Ok(socket) => Ok(socket),
        Err(failed) => Err(format!("{what}: {}", failed.error_string()).into()),
    }
}

/// One server (one configuration, so one engine whose verifier instances later handshakes
/// claim in turn), clients one after another: each handshake reports its own client's
/// certificate and errors, never those of the one before.
#[test]
fn query_peer_server_reports_each_handshake_on_its_own_one_after_another() -> TestResult {
    let pki = Pki::new()?;
    let (trusted, untrusted) = (pki.client_cert(true)?, pki.client_cert(false)?);
    let expected = expect(&[(SelfSignedCertificateInChain, pki.untrusted_root_der())])?;
    let server = listening(&pki, PeerVerifyMode::QueryPeer)?;
    let clients = [
        Some(&untrusted),
        None,
        Some(&trusted),
        Some(&untrusted),
        Some(&trusted),
        None,
    ];
    // More handshakes than a server engine keeps verifier instances: later handshakes
    // take instances that earlier ones gave back.
    for round in 0..3 {
        for (index, client) in clients.iter().enumerate() {
            let what = format!("round {round}, client {index}");
            let port = server.local_addr().port();
            let _peer = s_client(&pki, port, client.map(|c| (c, true)), &[])?;
            let socket = next_encrypted(&server, &what)?;
            let chain = match client {
                Some(issued) => certificates(&issued.chain_der)?,
                None => Vec::new(),
            };
            assert_eq!(socket.peer_certificate_chain(), chain.as_slice(), "{what}");
            let errors = error_set(socket.ssl_handshake_errors());
            if client.is_some_and(|c| std::ptr::eq(c, &untrusted)) {
                assert_eq!(errors, expected, "{what}");
            } else {
                assert!(errors.is_empty(), "{what}: {errors:?}");
            }
        }
    }
    Ok(())
}

/// A refused client certificate (`VerifyPeer`) gives its verifier instance back: the
/// trusted client after it is accepted, with its own chain and no errors.
#[test]
fn verify_peer_server_accepts_a_trusted_client_after_refusing_an_untrusted_one() -> TestResult {
    let pki = Pki::new()?;
    let (trusted, untrusted) = (pki.client_cert(true)?, pki.client_cert(false)?);
    let server = listening(&pki, PeerVerifyMode::VerifyPeer)?;
    let port = server.local_addr().port();
    for round in 0..20 {
        {
            let _peer = s_client(&pki, port, Some((&untrusted, true)), &[])?;
            match server.next_connection(HANDSHAKE_TIMEOUT)? {
                Ok(_) => return Err(format!("round {round}: untrusted client accepted").into()),
                Err(failed) => assert!(!failed.ssl_handshake_errors().is_empty()),
            }
        }
        let _peer = s_client(&pki, port, Some((&trusted, true)), &[])?;
        let socket = next_encrypted(&server, &format!("round {round}"))?;
        assert!(socket.ssl_handshake_errors().is_empty(), "round {round}");
        assert_eq!(
            socket.peer_certificate_chain(),
            certificates(&trusted.chain_der)?.as_slice()
        );
    }
    Ok(())
}

#[test]
fn verify_none_server_does_not_ask_for_a_certificate() -> TestResult {
    let pki = Pki::new()?;
    let client = pki.client_cert(false)?;
    let (socket, result, _peer) = our_server_with(
        &pki,
        PeerVerifyMode::VerifyNone,
        Some((&client, true)),
        |_| {},
    )?;
    result?;
    assert!(socket.peer_certificate_chain().is_empty());
    assert!(socket.ssl_handshake_errors().is_empty());
    Ok(())
}

// ----- our client presenting a certificate ------------------------------------------------

/// `openssl s_server -Verify 1 -CAfile <root>` (a client certificate is required) serving
/// the usual leaf, plus `extra`.
fn requiring_server(
    pki: &Pki,
    extra: &[&str],
) -> Result<support::OpensslServer, Box<dyn std::error::Error>> {
    let own = server_leaf(pki)?;
    let root = pki.root_pem().to_string_lossy().into_owned();
    let mut args = vec![
        "-Verify",
        "2",
        "-CAfile",
        root.as_str(),
        "-nameopt",
        "RFC2253",
    ];
    args.extend_from_slice(extra);
    Ok(serve(&own, true, &args)?)
}

#[test]
fn client_presenting_its_certificate_is_verified_by_openssl() -> TestResult {
    let pki = Pki::new()?;
    let server = requiring_server(&pki, &[])?;
    let client_cert = pki.client_cert(true)?;
    let mut configuration = trusting(pki.root_pem())?;
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(&client_cert.chain_pem)?)
        .set_private_key(SslKey::from_file(&client_cert.key_pem, None)?);
    let mut client = client_to(configuration, server.port(), "localhost");
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    std::io::Write::write_all(&mut client, b"client with a certificate\n")?;
    std::io::Write::flush(&mut client)?;
    server.wait_for_output("client with a certificate", Duration::from_secs(5))?;
    // stdout and stderr are read by two threads: the verify callback's lines may come in
    // after the data line.
    server.wait_for_output("depth=0 CN=Test Client", Duration::from_secs(5))?;
    let output = server.stderr();
    assert!(output.contains("depth=0 CN=Test Client"), "{output}");
    assert_eq!(
        parse_verify_callback_output(&output),
        Some(BTreeSet::new()),
        "{output}"
    );
    Ok(())
}

#[test]
fn client_without_a_certificate_is_refused_by_openssl_with_an_alert_in_tls_1_2() -> TestResult {
    let pki = Pki::new()?;
    let server = requiring_server(&pki, &[])?;
    let mut configuration = trusting(pki.root_pem())?;
    configuration.set_protocol(SslProtocol::TlsV1_2);
    let mut client = client_to(configuration, server.port(), "localhost");
    let error = client
        .wait_for_encrypted(HANDSHAKE_TIMEOUT)
        .err()
        .ok_or("the server should refuse a client without a certificate")?;
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    let alert = error
        .tls_failure()
        .and_then(|f| f.alert_received.clone())
        .ok_or_else(|| format!("no alert in {error:?}"))?;
    assert!(
        client
            .take_events()
            .contains(&SslEvent::AlertReceived(alert.clone())),
        "{alert:?}"
    );
    Ok(())
}

#[test]
fn client_without_a_certificate_learns_of_the_refusal_in_tls_1_3() -> TestResult {
    // In TLS 1.3 the client's handshake ends before the server has seen its (empty)
    // certificate; the server's certificate_required alert comes after. Either way the
    // connection must fail with that alert.
    let pki = Pki::new()?;
    let server = requiring_server(&pki, &[])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    let handshake = client.wait_for_encrypted(HANDSHAKE_TIMEOUT);
    let error = match handshake {
        Err(e) => e,
        Ok(()) => client
            .wait_for_ready_read(Duration::from_secs(5))
            .err()
            .ok_or("the refused client read data")?,
    };
    let alert = error
        .tls_failure()
        .and_then(|f| f.alert_received.clone())
        .ok_or_else(|| format!("no alert in {error:?}"))?;
    assert_eq!(
        alert.kind,
        sslsocket::AlertType::CertificateRequired,
        "{alert:?}"
    );
    assert!(
        !client.is_encrypted(),
        "a refused connection is not encrypted"
    );
    Ok(())
}

#[test]
fn client_with_an_untrusted_certificate_is_refused_by_openssl() -> TestResult {
    let pki = Pki::new()?;
    let server = requiring_server(&pki, &["-verify_return_error"])?;
    let client_cert = pki.client_cert(false)?;
    let mut configuration = trusting(pki.root_pem())?;
    configuration
        .set_protocol(SslProtocol::TlsV1_2)
        .set_local_certificate_chain(SslCertificate::from_file(&client_cert.chain_pem)?)
        .set_private_key(SslKey::from_file(&client_cert.key_pem, None)?);
    let mut client = client_to(configuration, server.port(), "localhost");
    let error = client
        .wait_for_encrypted(HANDSHAKE_TIMEOUT)
        .err()
        .ok_or("the server should refuse the untrusted client certificate")?;
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert!(
        error
            .tls_failure()
            .and_then(|f| f.alert_received.clone())
            .is_some(),
        "{error:?}"
    );
    Ok(())
}

// ----- encrypted keys ---------------------------------------------------------------------

/// `issued`'s key re-encrypted as PKCS#8 (PBES2, AES-256-CBC) with `passphrase`, by the
/// openssl command line.
fn encrypted_key(
    pki: &Pki,
    issued: &Issued,
    passphrase: &str,
) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let out_path = pki.dir.path().join("encrypted-server-key.pem");
    let pass = format!("pass:{passphrase}");
    let args = os_args![
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-passout",
        pass,
        "-in",
        issued.key_pem,
        "-out",
        out_path,
    ];
    let out = support::openssl_run(&args, b"", Duration::from_secs(10))?;
    assert!(out.success(), "{out}");
    let text = std::fs::read_to_string(&out_path)?;
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    Ok(out_path)
}

#[test]
fn server_with_an_encrypted_pkcs8_key_and_its_passphrase_serves_openssl() -> TestResult {
    let pki = Pki::new()?;
    let own = server_leaf(&pki)?;
    let key_path = encrypted_key(&pki, &own, "secret")?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(&own.chain_pem)?)
        .set_private_key(SslKey::from_file(&key_path, Some(b"secret"))?);
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let args = os_args![
        "-CAfile",
        pki.root_pem(),
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
        "-brief",
    ];
    let out = OpensslClient::run(
        server.local_addr().port(),
        &args,
        b"",
        Duration::from_secs(10),
    )?;
    assert!(out.combined().contains("Verification: OK"), "{out}");
    let socket = server
        .next_connection(HANDSHAKE_TIMEOUT)?
        .map_err(|s| format!("handshake failed: {}", s.error_string()))?;
    // s_client closes as soon as its (empty) input ends, so the connection may already be
    // over: what matters is that its handshake finished.
    assert!(socket.core().was_encrypted());
    Ok(())
}

#[test]
fn encrypted_key_with_a_wrong_or_missing_passphrase_is_a_clear_config_error() -> TestResult {
    let pki = Pki::new()?;
    let own = server_leaf(&pki)?;
    let key_path = encrypted_key(&pki, &own, "secret")?;
    let wrong = SslKey::from_file(&key_path, Some(b"not the secret"))
        .err()
        .ok_or("a wrong passphrase was accepted")?;
    assert!(wrong.message().contains("wrong passphrase"), "{wrong}");
    assert!(
        wrong.message().contains("encrypted-server-key.pem"),
        "names the file: {wrong}"
    );
    let missing = SslKey::from_file(&key_path, None)
        .err()
        .ok_or("an encrypted key loaded without a passphrase")?;
    assert!(missing.message().contains("no passphrase"), "{missing}");
    // As an operation error it is bad input from the application.
    let as_error = sslsocket::Error::from(wrong);
    assert_eq!(
        as_error.socket_error(),
        SocketError::SslInvalidUserDataError
    );
    Ok(())
}

#[test]
fn client_with_an_encrypted_key_presents_its_certificate() -> TestResult {
    let pki = Pki::new()?;
    let server = requiring_server(&pki, &["-verify_return_error"])?;
    let client_cert = pki.client_cert(true)?;
    let key_path = encrypted_key(&pki, &client_cert, "client secret")?;
    let mut configuration = trusting(pki.root_pem())?;
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(&client_cert.chain_pem)?)
        .set_private_key(SslKey::from_file(&key_path, Some(b"client secret"))?);
    let mut client = client_to(configuration, server.port(), "localhost");
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    std::io::Write::write_all(&mut client, b"encrypted key client\n")?;
    std::io::Write::flush(&mut client)?;
    server.wait_for_output("encrypted key client", Duration::from_secs(5))?;
    Ok(())
}
