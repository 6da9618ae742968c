//! The OpenSSL backend against real OpenSSL peers: `openssl s_server` for our client,
//! `openssl s_client` for our server. The backend is chosen process-wide before first use,
//! so these tests live in their own binary and every one selects it first.
#![cfg(feature = "openssl")]

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use sslsocket::backend::{self, SupportedFeature};
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    PeerVerifyMode, SocketError, SslCertificate, SslConfiguration, SslErrorKind, SslKey,
    SslProtocol,
};
use support::{os_args, Issued, OpensslClient, OpensslServer, Pki, PskHooks, PSK, PSK_HEX};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// Selects the OpenSSL backend for this process (allowed again and again, never after
/// another backend was used).
fn use_openssl() -> TestResult {
    Ok(backend::set_active_backend("openssl")?)
}

fn trusting(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(SslCertificate::from_file(pki.root_pem())?);
    Ok(configuration)
}

fn serving(issued: &Issued) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(&issued.chain_pem)?)
        .set_private_key(SslKey::from_file(&issued.key_pem, None)?);
    Ok(configuration)
}

/// `openssl s_server` with this certificate and extra flags.
fn s_server(issued: &Issued, extra: &[&str]) -> Result<OpensslServer, Box<dyn std::error::Error>> {
    let mut args = issued.openssl_args();
    args.extend(extra.iter().map(Into::into));
    Ok(OpensslServer::start(&args)?)
}

/// (kind, subject) of each error, as a set.
fn error_set(socket: &SslSocket) -> BTreeSet<(String, String)> {
    socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| {
            (
                e.error().name().to_string(),
                e.certificate()
                    .map(SslCertificate::subject_rfc4514)
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn the_registry_lists_openssl_and_what_it_cannot_do() -> TestResult {
    use_openssl()?;
    assert!(backend::available_backends().starts_with(&["rustls", "openssl"]));
    assert_eq!(backend::active_backend(), Some("openssl"));
    assert!(backend::ssl_library_version_string().starts_with("OpenSSL "));
    assert!(backend::ssl_library_version_number() >= 0x3000_0000);
    for protocol in [
        SslProtocol::TlsV1_0,
        SslProtocol::TlsV1_1,
        SslProtocol::TlsV1_3,
    ] {
        assert!(backend::is_protocol_supported(protocol, None), "{protocol}");
    }
    assert!(backend::is_feature_supported(
        SupportedFeature::CertificateVerification,
        None
    ));
    assert!(backend::is_feature_supported(SupportedFeature::Psk, None));
    for feature in [
        SupportedFeature::Ocsp,
        SupportedFeature::Alerts,
        SupportedFeature::SessionTicket,
    ] {
        assert!(backend::is_feature_supported(feature, None), "{feature:?}");
    }
    backend::set_active_backend("openssl")?;
    Ok(())
}

#[test]
fn our_client_verifies_s_server_over_tls_1_2_and_1_3() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    for (flag, protocol, cipher) in [
        (
            "-tls1_2",
            SslProtocol::TlsV1_2,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        ("-tls1_3", SslProtocol::TlsV1_3, "TLS_AES_256_GCM_SHA384"),
    ] {
        let server = s_server(&leaf, &[flag, "-quiet"])?;
        let mut socket = SslSocket::with_configuration(trusting(&pki)?);
        socket.connect_to_host_encrypted("localhost", server.port());
        socket.wait_for_encrypted(WAIT)?;
        assert_eq!(socket.session_protocol(), protocol);
        assert!(socket.ssl_handshake_errors().is_empty());
        assert_eq!(socket.peer_certificate_chain().len(), 2);
        assert_eq!(socket.core().backend_name(), Some("openssl"));
        let negotiated = socket.core().negotiated().ok_or("not negotiated")?;
        assert_eq!(negotiated.cipher_suite, cipher);
        assert!(negotiated.key_exchange_group.is_some());
        socket.write_all(b"hello over openssl\n")?;
        socket.flush()?;
        server.wait_for_output("hello over openssl", WAIT)?;
        socket.abort();
    }
    Ok(())
}

#[test]
fn a_wrong_host_is_a_host_name_mismatch_and_fails_the_handshake() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("wrong.example", &["wrong.example"])?;
    let server = s_server(&leaf, &["-quiet"])?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted("localhost", server.port());
    let error = socket
        .wait_for_encrypted(WAIT)
        .err()
        .ok_or("the handshake should fail")?;
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    let errors = socket.ssl_handshake_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].error(), SslErrorKind::HostNameMismatch);
    assert_eq!(errors[0].certificate(), socket.peer_certificate());
    assert!(error.to_string().contains("HostNameMismatch"), "{error}");
    // We refused with bad_certificate, as OpenSSL does for a name mismatch.
    let alerts: Vec<_> = socket
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            sslsocket::SslEvent::AlertSent(a) => Some(a.kind),
            _ => None,
        })
        .collect();
    assert_eq!(alerts, vec![sslsocket::AlertType::BadCertificate]);
    Ok(())
}

#[test]
fn a_self_signed_expired_wrong_host_leaf_gets_exactly_three_errors_on_itself() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["wrong.example"], true)?;
    let server = s_server(&leaf, &["-quiet"])?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted("localhost", server.port());
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    let subject = socket
        .peer_certificate()
        .ok_or("no peer certificate")?
        .subject_rfc4514();
    let expected: BTreeSet<(String, String)> = [
        SslErrorKind::SelfSignedCertificate,
        SslErrorKind::CertificateExpired,
        SslErrorKind::HostNameMismatch,
    ]
    .into_iter()
    .map(|k| (k.name().to_string(), subject.clone()))
    .collect();
    assert_eq!(error_set(&socket), expected);
    assert_eq!(socket.ssl_handshake_errors().len(), 3);
    Ok(())
}

#[test]
fn ignoring_the_errors_lets_the_same_peer_through_and_still_lists_them() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["wrong.example"], true)?;
    let server = s_server(&leaf, &["-quiet"])?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.ignore_ssl_errors();
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    assert!(socket.is_encrypted());
    assert_eq!(socket.ssl_handshake_errors().len(), 3);
    socket.write_all(b"let through\n")?;
    socket.flush()?;
    server.wait_for_output("let through", WAIT)?;
    Ok(())
}

#[test]
fn an_ignore_list_for_other_errors_does_not_let_the_peer_through() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["wrong.example"], true)?;
    let server = s_server(&leaf, &["-quiet"])?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.ignore_ssl_error_rules(vec![sslsocket::IgnoreRule::AnyCertificate(
        SslErrorKind::HostNameMismatch,
    )]);
    socket.connect_to_host_encrypted("localhost", server.port());
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert_eq!(socket.ssl_handshake_errors().len(), 3);
    Ok(())
}

#[test]
fn a_lone_leaf_of_an_unknown_issuer_gets_both_issuer_errors_on_the_leaf() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    // The leaf alone, without its intermediate: its issuer is unknown to the client.
    let server = OpensslServer::start(&os_args![
        "-cert",
        leaf.cert_pem,
        "-key",
        leaf.key_pem,
        "-quiet"
    ])?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted("localhost", server.port());
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    let subject = socket
        .peer_certificate()
        .ok_or("no peer certificate")?
        .subject_rfc4514();
    let expected: BTreeSet<(String, String)> = [
        SslErrorKind::UnableToGetLocalIssuerCertificate,
        SslErrorKind::UnableToVerifyFirstCertificate,
    ]
    .into_iter()
    .map(|k| (k.name().to_string(), subject.clone()))
    .collect();
    assert_eq!(error_set(&socket), expected);
    Ok(())
}

#[test]
fn tls_1_0_is_offered_only_when_asked_for() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = s_server(&leaf, &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-quiet"])?;
    let mut configuration = trusting(&pki)?;
    configuration.set_protocol(SslProtocol::TlsV1_0);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    assert_eq!(socket.session_protocol(), SslProtocol::TlsV1_0);
    socket.abort();

    let server = s_server(&leaf, &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-quiet"])?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted("localhost", server.port());
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    Ok(())
}

/// TLS 1.2 suites without forward secrecy or an AEAD cipher are not in the default list,
/// on either side; named in the configuration, they are used.
#[test]
fn default_tls12_suites_are_forward_secret_aead_ones() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let cbc = "ECDHE-ECDSA-AES128-SHA256";

    let server = s_server(&leaf, &["-tls1_2", "-cipher", cbc, "-quiet"])?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted("localhost", server.port());
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    assert!(!socket.is_encrypted());

    let server = s_server(&leaf, &["-tls1_2", "-cipher", cbc, "-quiet"])?;
    let mut configuration = trusting(&pki)?;
    configuration.set_ciphers_str(cbc)?;
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    let cipher = socket
        .session_cipher()
        .map(|c| c.openssl_name().to_string());
    assert_eq!(cipher.as_deref(), Some(cbc));
    socket.abort();

    let listener = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = listener.local_addr().port();
    let served = thread::spawn(move || match listener.next_connection(WAIT) {
        Ok(Ok(_)) => Err("the handshake succeeded".to_string()),
        Ok(Err(socket)) => Ok(socket.error()),
        Err(e) => Err(e.to_string()),
    });
    let output = OpensslClient::run(port, &os_args!["-tls1_2", "-cipher", cbc], b"", WAIT)?;
    let refused = served.join().map_err(|_| "server thread panicked")??;
    assert_eq!(refused, SocketError::SslHandshakeFailedError);
    let text = output.combined();
    assert!(text.contains("handshake failure"), "{text}");
    assert!(!text.contains("Cipher is ECDHE"), "{text}");
    Ok(())
}

#[test]
fn our_server_is_verified_by_s_client_and_echoes() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    for (flag, protocol) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let listener = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
        let port = listener.local_addr().port();
        let served = thread::spawn(move || -> Result<(Vec<u8>, SslProtocol), String> {
            let socket = listener.next_connection(WAIT).map_err(|e| e.to_string())?;
            let mut socket = socket.map_err(|s| s.error_string())?;
            socket
                .wait_for_ready_read(WAIT)
                .map_err(|e| e.to_string())?;
            let line = socket.read_line(0);
            socket.write_all(&line).map_err(|e| e.to_string())?;
            socket.flush().map_err(|e| e.to_string())?;
            let protocol = socket.session_protocol();
            let _ = socket.close();
            Ok((line, protocol))
        });
        let output = OpensslClient::run(
            port,
            &os_args![
                "-CAfile",
                pki.root_pem(),
                "-servername",
                "localhost",
                "-verify_hostname",
                "localhost",
                "-verify_return_error",
                "-ign_eof",
                flag
            ],
            b"ping from s_client\n",
            WAIT,
        )?;
        let (line, negotiated) = served.join().map_err(|_| "server thread panicked")??;
        assert_eq!(line, b"ping from s_client\n");
        assert_eq!(negotiated.to_string(), format!("TlsV1_{}", &protocol[6..]));
        let text = output.combined();
        assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
        assert!(text.contains(protocol), "{text}");
        assert!(output.stdout.contains("ping from s_client"), "{text}");
    }
    Ok(())
}

#[test]
fn our_server_requires_and_verifies_a_client_certificate() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let client_cert = pki.client_cert(true)?;
    let mut configuration = serving(&leaf)?;
    configuration
        .set_ca_certificates(SslCertificate::from_file(pki.root_pem())?)
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer);

    // Without a certificate: refused, NoPeerCertificate.
    let listener = SslServer::listen("127.0.0.1:0", configuration.clone())?;
    let port = listener.local_addr().port();
    let accepted = thread::spawn(move || listener.next_connection(WAIT));
    let _ = OpensslClient::run(
        port,
        &os_args!["-CAfile", pki.root_pem(), "-tls1_3"],
        b"",
        WAIT,
    )?;
    let server = accepted
        .join()
        .map_err(|_| "server thread panicked")??
        .err()
        .ok_or("the server should refuse a client without a certificate")?;
    assert_eq!(server.error(), SocketError::SslHandshakeFailedError);
    let kinds: Vec<_> = server
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    assert_eq!(kinds, vec![SslErrorKind::NoPeerCertificate]);

    // With one: accepted, and its chain is the one the client sent.
    let listener = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = listener.local_addr().port();
    let accepted = thread::spawn(move || listener.next_connection(WAIT));
    let mut args = client_cert.openssl_args();
    args.extend(os_args!["-CAfile", pki.root_pem()]);
    let _ = OpensslClient::run(port, &args, b"", WAIT)?;
    let server = accepted
        .join()
        .map_err(|_| "server thread panicked")??
        .map_err(|s| s.error_string())?;
    assert!(server.ssl_handshake_errors().is_empty());
    let sent: Vec<SslCertificate> = client_cert
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<_, _>>()?;
    assert_eq!(server.peer_certificate_chain(), sent.as_slice());
    Ok(())
}

#[test]
fn alpn_and_exported_keying_material_between_our_client_and_our_server() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server_cfg = serving(&leaf)?;
    server_cfg.set_allowed_next_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    let listener = SslServer::listen("127.0.0.1:0", server_cfg)?;
    let mut client_cfg = trusting(&pki)?;
    client_cfg.set_allowed_next_protocols(vec![b"http/1.1".to_vec(), b"h2".to_vec()]);
    let mut client = SslSocket::with_configuration(client_cfg);
    client.connect_to_host_encrypted("localhost", listener.local_addr().port());
    client.wait_for_encrypted(WAIT)?;
    let mut server = listener
        .next_connection(WAIT)?
        .map_err(|s| s.error_string())?;
    assert_eq!(client.next_negotiated_protocol(), Some(&b"h2"[..]));
    assert_eq!(server.next_negotiated_protocol(), Some(&b"h2"[..]));
    let a = client.export_keying_material(32, b"EXPORTER-test", Some(b"ctx"))?;
    let b = server.export_keying_material(32, b"EXPORTER-test", Some(b"ctx"))?;
    assert_eq!(a, b);
    client.write_all(b"x")?;
    client.flush()?;
    server.wait_for_ready_read(WAIT)?;
    let mut one = [0u8; 1];
    server.read_exact(&mut one)?;
    assert_eq!(&one, b"x");
    Ok(())
}

#[test]
fn a_large_transfer_respects_back_pressure_and_arrives_whole() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let listener = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = listener.local_addr().port();
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();
    let sender = thread::spawn(move || -> Result<(), String> {
        let mut socket = listener
            .next_connection(WAIT)
            .map_err(|e| e.to_string())?
            .map_err(|s| s.error_string())?;
        socket.write_all(&payload).map_err(|e| e.to_string())?;
        socket.close().map_err(|e| e.to_string())
    });
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_read_buffer_size(32 * 1024);
    client.connect_to_host_encrypted("localhost", port);
    client.wait_for_encrypted(WAIT)?;
    let mut received = Vec::new();
    client.read_to_end(&mut received)?;
    sender.join().map_err(|_| "sender thread panicked")??;
    assert_eq!(received.len(), expected.len());
    assert!(received == expected);
    assert!(!client.core().is_truncated());
    Ok(())
}

#[test]
fn a_client_exports_the_session_of_an_accepted_peer_when_persistence_is_on() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = s_server(&leaf, &["-tls1_3", "-quiet"])?;
    let mut configuration = trusting(&pki)?;
    configuration.set_ssl_option(
        sslsocket::SslOption::SslOptionDisableSessionPersistence,
        false,
    );
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    let _ = socket.wait_for_ready_read(Duration::from_millis(500));
    let events = socket.take_events();
    assert!(
        events.contains(&sslsocket::SslEvent::NewSessionTicketReceived),
        "{events:?}"
    );
    let ticket = socket.core().session_ticket()?;
    assert_eq!(ticket.first(), Some(&0x30), "a DER SEQUENCE");
    // s_server serves one connection at a time.
    socket.abort();

    // With the default options (persistence off) nothing is exported.
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    let _ = socket.wait_for_ready_read(Duration::from_millis(500));
    assert!(socket.core().session_ticket().is_err());
    Ok(())
}

#[test]
fn configuration_problems_surface_before_a_byte_is_sent() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let other = pki.leaf("other", &["other"])?;
    // A key that does not belong to the certificate.
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(&leaf.chain_pem)?)
        .set_private_key(SslKey::from_file(&other.key_pem, None)?);
    let result = SslServer::listen("127.0.0.1:0", configuration);
    if let Ok(listener) = result {
        let port = listener.local_addr().port();
        let accepted = thread::spawn(move || listener.next_connection(WAIT));
        let mut client = SslSocket::with_configuration(trusting(&pki)?);
        client.connect_to_host_encrypted("localhost", port);
        assert!(client.wait_for_encrypted(WAIT).is_err());
        let server = accepted
            .join()
            .map_err(|_| "server thread panicked")??
            .err()
            .ok_or("a mismatched key must not serve")?;
        assert_eq!(server.error(), SocketError::SslInvalidUserDataError);
    }
    // Only post-quantum groups: OpenSSL 3.0 has none of them.
    let mut configuration = trusting(&pki)?;
    configuration.set_elliptic_curves(vec![sslsocket::SslEllipticCurve::from_short_name(
        "X25519MLKEM768",
    )
    .ok_or("curve")?]);
    // A plain TCP listener: the connection succeeds, the TLS session cannot be made.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted("localhost", tcp.local_addr()?.port());
    let _ = socket.wait_for_encrypted(WAIT);
    let (mut peer, _) = tcp.accept()?;
    peer.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut nothing = [0u8; 1];
    assert!(
        !matches!(peer.read(&mut nothing), Ok(n) if n > 0),
        "no byte was sent"
    );
    assert_eq!(socket.error(), SocketError::SslInvalidUserDataError);
    assert!(
        socket.error_string().contains("key exchange groups"),
        "{}",
        socket.error_string()
    );
    Ok(())
}

#[test]
fn our_client_answers_a_pre_shared_key_server_without_a_certificate() -> TestResult {
    use_openssl()?;
    for (extra, protocol) in [
        (
            &["-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"][..],
            SslProtocol::TlsV1_2,
        ),
        // Qt's own PSK test server (tst_qsslsocket's simplePskConnect): a CBC suite, which
        // the default list keeps for pre-shared keys only.
        (
            &["-tls1_2", "-cipher", "PSK-AES256-CBC-SHA"][..],
            SslProtocol::TlsV1_2,
        ),
        (&["-tls1_3"][..], SslProtocol::TlsV1_3),
    ] {
        let mut args = os_args![
            "-nocert",
            "-psk",
            PSK_HEX,
            "-psk_identity",
            "client1",
            "-quiet"
        ];
        args.extend(extra.iter().map(Into::into));
        let server = OpensslServer::start(&args)?;
        let hooks = PskHooks::new(b"client1", &PSK);
        let mut configuration = SslConfiguration::default();
        configuration.set_ca_certificates(Vec::new());
        // The key authenticates the server: said so, it needs no certificate (without
        // this, Qt's VerifyPeer reports NoPeerCertificate: simplePskConnect, checked in
        // qt_round33.rs).
        configuration.set_pre_shared_key_authenticates_peer(true);
        let mut socket = SslSocket::with_configuration(configuration);
        socket.set_hooks(hooks.clone());
        socket.connect_to_host_encrypted("localhost", server.port());
        socket.wait_for_encrypted(WAIT)?;
        assert_eq!(socket.session_protocol(), protocol);
        assert!(socket.ssl_handshake_errors().is_empty());
        assert!(socket.peer_certificate_chain().is_empty());
        assert!(!hooks.asked().is_empty());
        socket.write_all(b"keyed by psk\n")?;
        socket.flush()?;
        server.wait_for_output("keyed by psk", WAIT)?;
        socket.abort();
    }
    Ok(())
}

#[test]
fn our_server_accepts_a_pre_shared_key_client_by_identity() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let tcp = TcpListener::bind("127.0.0.1:0")?;
    let port = tcp.local_addr()?.port();
    let hooks = PskHooks::new(b"client1", &PSK);
    let server_hooks = hooks.clone();
    let mut configuration = serving(&leaf)?;
    // OpenSSL takes an old-style (callback) PSK only with a SHA-256 suite, and prefers one
    // by itself only when it has no certificate.
    configuration.set_ciphers_str("TLS_AES_128_GCM_SHA256")?;
    let served = thread::spawn(move || -> Result<Vec<u8>, String> {
        let (stream, _) = tcp.accept().map_err(|e| e.to_string())?;
        let mut socket =
            SslSocket::from_tcp_stream(stream, configuration).map_err(|e| e.to_string())?;
        socket.set_hooks(server_hooks);
        socket
            .start_server_encryption()
            .map_err(|e| e.to_string())?;
        socket
            .wait_for_encrypted(WAIT)
            .map_err(|e| format!("handshake: {e} / {}", socket.error_string()))?;
        socket
            .wait_for_ready_read(WAIT)
            .map_err(|e| format!("reading: {e}"))?;
        let line = socket.read_line(0);
        let _ = socket.close();
        Ok(line)
    });
    let output = OpensslClient::run(
        port,
        &os_args![
            "-psk",
            PSK_HEX,
            "-psk_identity",
            "client1",
            "-tls1_3",
            "-ign_eof"
        ],
        b"psk client\n",
        WAIT,
    )?;
    let line = served
        .join()
        .map_err(|_| "server thread panicked")?
        .map_err(|e| format!("{e}; s_client: {}", output.combined()))?;
    assert_eq!(line, b"psk client\n", "{}", output.combined());
    let text = output.combined();
    assert!(text.contains("TLS_AES_128_GCM_SHA256"), "{text}");
    assert!(!text.contains("Certificate chain"), "{text}");
    assert!(hooks
        .asked()
        .iter()
        .any(|(_, identity)| identity == b"client1"));
    Ok(())
}

fn alerts(socket: &mut SslSocket, sent: bool) -> Vec<sslsocket::Alert> {
    socket
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            sslsocket::SslEvent::AlertSent(a) if sent => Some(a),
            sslsocket::SslEvent::AlertReceived(a) if !sent => Some(a),
            _ => None,
        })
        .collect()
}

/// A server asking for a TLS 1.2 renegotiation gets a no_renegotiation warning and no
/// second handshake: nothing would verify a certificate it brought after the verdict.
#[test]
fn our_client_refuses_a_renegotiation() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server = s_server(&leaf, &["-tls1_2"])?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    socket.take_events();
    // s_server's `r` command: SSL_renegotiate, then a HelloRequest to us.
    server.write_stdin(b"r\n")?;
    let mut sent = Vec::new();
    for _ in 0..20 {
        let _ = socket.wait_for_ready_read(Duration::from_millis(250));
        sent.extend(alerts(&mut socket, true));
        if !sent.is_empty() || !socket.is_encrypted() {
            break;
        }
    }
    assert!(
        sent.iter()
            .any(|a| a.level == sslsocket::AlertLevel::Warning
                && a.kind == sslsocket::AlertType::NoRenegotiation),
        "alerts sent: {sent:?}; s_server: {}",
        server.output()
    );
    Ok(())
}

#[test]
fn our_server_refuses_an_untrusted_client_certificate_with_unknown_ca() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let client_cert = pki.client_cert(false)?;
    let mut configuration = serving(&leaf)?;
    configuration
        .set_ca_certificates(SslCertificate::from_file(pki.root_pem())?)
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer);
    let listener = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = listener.local_addr().port();
    let accepted = thread::spawn(move || listener.next_connection(WAIT));
    let mut args = client_cert.openssl_args();
    args.extend(os_args!["-CAfile", pki.root_pem(), "-tls1_2"]);
    let output = OpensslClient::run(port, &args, b"", WAIT)?;
    let mut server = accepted
        .join()
        .map_err(|_| "server thread panicked")??
        .err()
        .ok_or("the server should refuse an untrusted client")?;
    assert_eq!(server.error(), SocketError::SslHandshakeFailedError);
    let kinds: Vec<_> = server
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    assert_eq!(kinds, vec![SslErrorKind::SelfSignedCertificateInChain]);
    let sent = alerts(&mut server, true);
    assert_eq!(
        sent.iter().map(|a| a.kind).collect::<Vec<_>>(),
        vec![sslsocket::AlertType::UnknownCa]
    );
    let text = output.combined();
    assert!(text.contains("unknown ca"), "{text}");
    Ok(())
}

#[test]
fn a_fatal_alert_from_s_server_is_received_and_named() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    // s_server requires a client certificate; ours has none.
    let server = s_server(
        &leaf,
        &["-tls1_2", "-Verify", "1", "-verify_return_error", "-quiet"],
    )?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted("localhost", server.port());
    let error = socket
        .wait_for_encrypted(WAIT)
        .err()
        .ok_or("the handshake should fail")?;
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    let alert = error
        .tls_failure()
        .and_then(|f| f.alert_received.clone())
        .ok_or("no alert in the failure")?;
    assert_eq!(alert.level, sslsocket::AlertLevel::Fatal);
    assert_eq!(alert.kind, sslsocket::AlertType::HandshakeFailure);
    assert_eq!(alerts(&mut socket, false), vec![alert]);
    Ok(())
}

/// The server thread of [`serve_one`]: our accepted socket, or why it failed.
type Served = thread::JoinHandle<Result<SslSocket, String>>;

/// Our server on the OpenSSL backend, serving one connection in a thread.
fn serve_one(
    configuration: SslConfiguration,
    hooks: Option<std::sync::Arc<PskHooks>>,
) -> Result<(u16, Served), Box<dyn std::error::Error>> {
    let tcp = TcpListener::bind("127.0.0.1:0")?;
    let port = tcp.local_addr()?.port();
    let served = thread::spawn(move || -> Result<SslSocket, String> {
        let (stream, _) = tcp.accept().map_err(|e| e.to_string())?;
        let mut socket =
            SslSocket::from_tcp_stream(stream, configuration).map_err(|e| e.to_string())?;
        if let Some(hooks) = hooks {
            socket.set_hooks(hooks);
        }
        socket
            .start_server_encryption()
            .map_err(|e| e.to_string())?;
        socket
            .wait_for_encrypted(WAIT)
            .map_err(|e| format!("handshake: {e} / {}", socket.error_string()))?;
        let _ = socket.wait_for_ready_read(Duration::from_millis(500));
        Ok(socket)
    });
    Ok((port, served))
}

#[test]
fn our_server_sends_its_pre_shared_key_identity_hint_to_s_client() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut configuration = serving(&leaf)?;
    configuration.set_pre_shared_key_identity_hint(b"our hint".to_vec());
    let (port, served) = serve_one(configuration, Some(PskHooks::new(b"client1", &PSK)))?;
    let output = OpensslClient::run(
        port,
        &os_args![
            "-psk",
            PSK_HEX,
            "-psk_identity",
            "client1",
            "-tls1_2",
            "-cipher",
            "PSK-AES128-GCM-SHA256",
            "-debug"
        ],
        b"hello\n",
        WAIT,
    )?;
    served
        .join()
        .map_err(|_| "server thread panicked")?
        .map_err(|e| format!("{e}; s_client: {}", output.combined()))?;
    let text = output.combined();
    assert!(
        text.contains("Received PSK identity hint 'our hint'"),
        "{text}"
    );
    Ok(())
}

#[test]
fn a_close_notify_sent_is_reported_as_a_warning_alert_on_both_sides() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let (port, served) = serve_one(serving(&leaf)?, None)?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    socket.close()?;
    let mut server = served.join().map_err(|_| "server thread panicked")??;
    let warning_close = (
        sslsocket::AlertLevel::Warning,
        sslsocket::AlertType::CloseNotify,
    );
    let sent: Vec<_> = socket
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            sslsocket::SslEvent::AlertSent(a) => Some((a.level, a.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![warning_close]);
    let mut rest = Vec::new();
    server.read_to_end(&mut rest)?;
    let received: Vec<_> = server
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            sslsocket::SslEvent::AlertReceived(a) => Some((a.level, a.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(received, vec![warning_close]);
    Ok(())
}
