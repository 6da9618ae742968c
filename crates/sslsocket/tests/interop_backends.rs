//! Our two backends against each other, and our OpenSSL client against `openssl s_server
//! -psk`. A process has one active backend, so the OpenSSL side runs in a second process:
//! this test binary again, running one of the ignored `peer_*` functions alone with
//! `SSLSOCKET_BACKEND=openssl` (`support::spawn_peer`). A peer takes its orders from
//! `PEER_*` variables and prints what it saw on stdout, one `KEY value` line each; every
//! wait on either side has a deadline, and the peer is killed on drop.
#![cfg(feature = "openssl")]

mod support;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use sslsocket::backend::{self, SupportedFeature};
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{SocketError, SslCertificate, SslConfiguration, SslKey, SslProtocol};
use support::{
    is_peer, os_args, spawn_peer, Issued, OpensslServer, PeerProcess, Pki, PskHooks, PSK_HEX,
    PSK_IDENTITY,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One handshake or one line.
const WAIT: Duration = Duration::from_secs(10);
/// A whole peer process, start to `DONE`.
const PEER_LIFETIME: Duration = Duration::from_secs(30);

/// This process is the rustls side, whatever `SSLSOCKET_BACKEND` says: every test selects
/// rustls before its first socket.
fn use_rustls() -> TestResult {
    Ok(backend::set_active_backend("rustls")?)
}

fn trusting(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(SslCertificate::from_file(pki.root_pem())?);
    Ok(configuration)
}

fn serving(leaf: &Issued) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(&leaf.chain_pem)?)
        .set_private_key(SslKey::from_file(&leaf.key_pem, None)?);
    Ok(configuration)
}

/// Each verification error as `Kind subject`, in the order reported.
fn error_lines(socket: &SslSocket) -> Vec<String> {
    socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e.error().name(),
                e.certificate()
                    .map(SslCertificate::subject_rfc4514)
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// `protocol cipher` of an encrypted socket, the suite as the backend named it (the
/// `SslCipher` table knows only the suites rustls offers, so `session_cipher()` is `None`
/// for a PSK suite).
fn session_line(socket: &SslSocket) -> String {
    format!(
        "{:?} {}",
        socket.session_protocol(),
        socket
            .core()
            .negotiated()
            .map(|n| n.cipher_suite.as_ref())
            .unwrap_or_default()
    )
}

/// One line, waiting at most [`WAIT`].
fn read_line(socket: &mut SslSocket) -> Result<String, Box<dyn std::error::Error>> {
    socket.set_io_timeout(Some(WAIT));
    let mut line = String::new();
    BufRead::read_line(socket, &mut line)?;
    Ok(line)
}

/// Starts the peer `name` on the OpenSSL backend and checks that it runs there.
fn openssl_peer(
    name: &str,
    vars: &[(&str, OsString)],
) -> Result<PeerProcess, Box<dyn std::error::Error>> {
    let peer = spawn_peer(name, "openssl", vars)?;
    let backend = peer.wait_for_stdout_value("BACKEND ", Instant::now() + WAIT)?;
    assert_eq!(backend, "openssl", "{}", peer.output());
    Ok(peer)
}

/// Waits until the peer printed `DONE`.
fn finished(peer: &PeerProcess) -> TestResult {
    peer.wait_for_stdout_line("DONE", Instant::now() + PEER_LIFETIME)?;
    Ok(())
}

// ----- rustls and OpenSSL, both ways ------------------------------------------------------

#[test]
fn our_rustls_client_verifies_our_openssl_server_and_they_talk_both_ways() -> TestResult {
    use_rustls()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let peer = openssl_peer(
        "peer_openssl_server",
        &[
            ("PEER_CHAIN", leaf.chain_pem.clone().into()),
            ("PEER_KEY", leaf.key_pem.clone().into()),
            ("PEER_CONNECTIONS", "2".into()),
        ],
    )?;
    let port: u16 = peer
        .wait_for_stdout_value("PORT ", Instant::now() + WAIT)?
        .parse()?;
    let mut seen = Vec::new();
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let mut configuration = trusting(&pki)?;
        configuration.set_protocol(protocol);
        let mut socket = SslSocket::with_configuration(configuration);
        socket.connect_to_host_encrypted("localhost", port);
        socket
            .wait_for_encrypted(WAIT)
            .map_err(|e| format!("{e}; peer: {}", peer.output()))?;
        assert_eq!(socket.session_protocol(), protocol);
        assert!(socket.ssl_handshake_errors().is_empty());
        assert_eq!(socket.peer_certificate_chain().len(), leaf.chain_der.len());
        seen.push(session_line(&socket));
        socket.write_all(format!("hello over {protocol:?}\n").as_bytes())?;
        socket.flush()?;
        assert_eq!(
            read_line(&mut socket)?,
            format!("openssl got: hello over {protocol:?}\n")
        );
        socket.close()?;
    }
    finished(&peer)?;
    // Both ends agree on what was negotiated.
    assert_eq!(peer.stdout_values("ACCEPTED "), seen, "{}", peer.output());
    Ok(())
}

#[test]
fn our_openssl_client_verifies_our_rustls_server_and_they_talk_both_ways() -> TestResult {
    use_rustls()?;
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let listener = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = listener.local_addr().port().to_string();
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let peer = openssl_peer(
            "peer_openssl_client",
            &[
                ("PEER_PORT", port.clone().into()),
                ("PEER_CA", pki.root_pem().into()),
                ("PEER_NAME", "localhost".into()),
                ("PEER_PROTOCOL", format!("{protocol:?}").into()),
                ("PEER_SEND", "hello from openssl".into()),
            ],
        )?;
        let mut server = listener
            .next_connection(WAIT)?
            .map_err(|s| format!("{}; peer: {}", s.error_string(), peer.output()))?;
        assert_eq!(server.session_protocol(), protocol);
        let line = read_line(&mut server)?;
        assert_eq!(line, "hello from openssl\n");
        server.write_all(format!("rustls got: {line}").as_bytes())?;
        server.flush()?;
        // Before the close: a closed socket has no session (Qt; round 34).
        let session = session_line(&server);
        finished(&peer)?;
        let _ = server.close();
        assert_eq!(
            peer.stdout_values("ENCRYPTED "),
            [session],
            "{}",
            peer.output()
        );
        assert_eq!(peer.stdout_values("ERROR "), Vec::<String>::new());
        assert_eq!(
            peer.stdout_values("CHAIN "),
            [leaf.chain_der.len().to_string()]
        );
        assert_eq!(
            peer.stdout_values("REPLY "),
            ["rustls got: hello from openssl"]
        );
    }
    Ok(())
}

#[test]
fn a_wrong_host_on_an_expired_leaf_gets_the_same_error_list_from_either_backend() -> TestResult {
    use_rustls()?;
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;

    // rustls against rustls: the reference list.
    let listener = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = listener.local_addr().port();
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "wrong.example");
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    let reference = error_lines(&socket);
    let subject = "CN=localhost";
    assert_eq!(
        reference,
        [
            format!("CertificateExpired {subject}"),
            format!("HostNameMismatch {subject}")
        ]
    );

    // Our OpenSSL client against our rustls server.
    let peer = openssl_peer(
        "peer_openssl_client",
        &[
            ("PEER_PORT", port.to_string().into()),
            ("PEER_CA", pki.root_pem().into()),
            ("PEER_NAME", "wrong.example".into()),
        ],
    )?;
    finished(&peer)?;
    assert_eq!(peer.stdout_values("ERROR "), reference, "{}", peer.output());
    assert_eq!(
        peer.stdout_values("FAILED "),
        ["SslHandshakeFailedError"],
        "{}",
        peer.output()
    );

    // Our rustls client against our OpenSSL server.
    let peer = openssl_peer(
        "peer_openssl_server",
        &[
            ("PEER_CHAIN", leaf.chain_pem.clone().into()),
            ("PEER_KEY", leaf.key_pem.clone().into()),
            ("PEER_CONNECTIONS", "1".into()),
        ],
    )?;
    let port: u16 = peer
        .wait_for_stdout_value("PORT ", Instant::now() + WAIT)?
        .parse()?;
    let mut socket = SslSocket::with_configuration(trusting(&pki)?);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "wrong.example");
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert_eq!(socket.error(), SocketError::SslHandshakeFailedError);
    assert_eq!(error_lines(&socket), reference);
    finished(&peer)?;
    assert_eq!(
        peer.stdout_values("REFUSED "),
        ["SslHandshakeFailedError"],
        "{}",
        peer.output()
    );
    Ok(())
}

// ----- pre-shared keys ------------------------------------------------------------------

/// `openssl s_server -nocert -psk …` for TLS 1.2 (a PSK cipher) or TLS 1.3.
fn psk_server(protocol: SslProtocol) -> Result<OpensslServer, Box<dyn std::error::Error>> {
    let mut args = os_args![
        "-nocert",
        "-psk",
        PSK_HEX,
        "-psk_identity",
        String::from_utf8_lossy(PSK_IDENTITY).into_owned(),
        "-quiet"
    ];
    match protocol {
        SslProtocol::TlsV1_2 => {
            args.extend(os_args!["-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"])
        }
        _ => args.extend(os_args!["-tls1_3"]),
    }
    Ok(OpensslServer::start(&args)?)
}

#[test]
fn our_openssl_client_answers_openssl_s_server_psk_over_tls_1_2_and_1_3() -> TestResult {
    use_rustls()?;
    // TLS 1.3: any suite of the callback key's hash, SHA-256, may be chosen.
    for (protocol, cipher) in [
        (SslProtocol::TlsV1_2, "TLS_PSK_WITH_AES_128_GCM_SHA256"),
        (SslProtocol::TlsV1_3, "_SHA256"),
    ] {
        let server = psk_server(protocol)?;
        let peer = openssl_peer(
            "peer_openssl_psk_client",
            &[
                ("PEER_PORT", server.port().to_string().into()),
                ("PEER_PSK_KEY", PSK_HEX.into()),
                ("PEER_SEND", "keyed by psk".into()),
            ],
        )?;
        finished(&peer)?;
        let encrypted = peer.stdout_values("ENCRYPTED ");
        assert!(
            encrypted.len() == 1
                && encrypted.iter().all(|line| {
                    line.starts_with(&format!("{protocol:?} TLS_")) && line.ends_with(cipher)
                }),
            "{}",
            peer.output()
        );
        // No certificate anywhere, so nothing to verify and nothing to complain about.
        assert_eq!(peer.stdout_values("CHAIN "), ["0"]);
        assert_eq!(peer.stdout_values("ERROR "), Vec::<String>::new());
        assert!(
            !peer.stdout_values("ASKED ").is_empty(),
            "{}",
            peer.output()
        );
        server.wait_for_output("keyed by psk", WAIT)?;
    }
    Ok(())
}

#[test]
fn an_empty_pre_shared_key_authenticator_aborts_the_handshake() -> TestResult {
    use_rustls()?;
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let server = psk_server(protocol)?;
        let peer = openssl_peer(
            "peer_openssl_psk_client",
            &[
                ("PEER_PORT", server.port().to_string().into()),
                ("PEER_PSK_KEY", "".into()),
                ("PEER_SEND", "never sent".into()),
            ],
        )?;
        finished(&peer)?;
        // The hook was asked and declined: no key, no handshake.
        assert!(
            !peer.stdout_values("ASKED ").is_empty(),
            "{}",
            peer.output()
        );
        assert_eq!(peer.stdout_values("ENCRYPTED "), Vec::<String>::new());
        assert_eq!(
            peer.stdout_values("FAILED "),
            ["SslHandshakeFailedError"],
            "{protocol:?}: {}",
            peer.output()
        );
        assert!(!server.output().contains("never sent"));
    }
    Ok(())
}

/// Our rustls client with pre-shared-key hooks against `s_server -psk -nocert`.
fn rustls_psk_client(server: &OpensslServer) -> (SslSocket, std::sync::Arc<PskHooks>) {
    let hooks = PskHooks::new(PSK_IDENTITY, &support::PSK);
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(Vec::new());
    configuration.set_pre_shared_key_authenticates_peer(true);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.set_hooks(hooks.clone());
    socket.connect_to_host_encrypted("localhost", server.port());
    (socket, hooks)
}

#[test]
fn the_rustls_backend_answers_a_pre_shared_key_setup_with_a_clear_unsupported_error() -> TestResult
{
    use_rustls()?;
    assert!(!backend::is_feature_supported(SupportedFeature::Psk, None));
    assert!(backend::is_feature_supported(
        SupportedFeature::Psk,
        Some("openssl")
    ));
    let server = psk_server(SslProtocol::TlsV1_3)?;
    let (mut socket, _hooks) = rustls_psk_client(&server);
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    support::check_unsupported(socket.error(), &socket.error_string(), "pre-shared keys")?;
    // Refused before a byte was sent: the server saw no handshake at all.
    assert!(!socket
        .take_events()
        .iter()
        .any(|e| matches!(e, sslsocket::SslEvent::EncryptedBytesWritten(_))));
    Ok(())
}

// ----- the peers (run by the tests above, on the OpenSSL backend) ------------------------

fn var(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|e| format!("{name}: {e}").into())
}

fn protocol_named(name: &str) -> SslProtocol {
    match name {
        "TlsV1_2" => SslProtocol::TlsV1_2,
        "TlsV1_3" => SslProtocol::TlsV1_3,
        _ => SslProtocol::SecureProtocols,
    }
}

fn hex(text: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            let pair = text.get(i..i + 2).ok_or("odd hex")?;
            Ok(u8::from_str_radix(pair, 16)?)
        })
        .collect()
}

/// Prints the outcome of a client handshake; sends `PEER_SEND` and prints the reply
/// when it is encrypted.
fn report_client(mut socket: SslSocket, hooks: Option<&PskHooks>) -> TestResult {
    let outcome = socket.wait_for_encrypted(WAIT);
    for (hint, identity) in hooks.map(PskHooks::asked).unwrap_or_default() {
        println!(
            "ASKED {}|{}",
            String::from_utf8_lossy(&hint),
            String::from_utf8_lossy(&identity)
        );
    }
    for line in error_lines(&socket) {
        println!("ERROR {line}");
    }
    println!("CHAIN {}", socket.peer_certificate_chain().len());
    if let Err(error) = outcome {
        println!("FAILED {:?}", socket.error());
        println!("MESSAGE {error}");
        return Ok(());
    }
    println!("ENCRYPTED {}", session_line(&socket));
    if let Ok(send) = var("PEER_SEND") {
        socket.write_all(format!("{send}\n").as_bytes())?;
        socket.flush()?;
        if hooks.is_none() {
            println!("REPLY {}", read_line(&mut socket)?.trim_end());
        }
    }
    let _ = socket.close();
    Ok(())
}

#[test]
#[ignore = "a peer process, started by the other tests of this file"]
fn peer_openssl_server() -> TestResult {
    if !is_peer() {
        return Ok(());
    }
    // libtest's own `test NAME ... ` ends no line: start on a fresh one.
    println!();
    println!("BACKEND {}", support::active_backend());
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(var("PEER_CHAIN")?)?)
        .set_private_key(SslKey::from_file(var("PEER_KEY")?, None)?);
    let connections: usize = var("PEER_CONNECTIONS")?.parse()?;
    let listener = SslServer::listen("127.0.0.1:0", configuration)?;
    println!("PORT {}", listener.local_addr().port());
    for _ in 0..connections {
        match listener.next_connection(WAIT)? {
            Ok(mut socket) => {
                println!("ACCEPTED {}", session_line(&socket));
                let line = read_line(&mut socket)?;
                socket.write_all(format!("openssl got: {line}").as_bytes())?;
                socket.flush()?;
                let _ = socket.wait_for_disconnected(WAIT);
            }
            Err(socket) => println!("REFUSED {:?}", socket.error()),
        }
    }
    println!("DONE");
    Ok(())
}

#[test]
#[ignore = "a peer process, started by the other tests of this file"]
fn peer_openssl_client() -> TestResult {
    if !is_peer() {
        return Ok(());
    }
    // libtest's own `test NAME ... ` ends no line: start on a fresh one.
    println!();
    println!("BACKEND {}", support::active_backend());
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(SslCertificate::from_file(var("PEER_CA")?)?);
    configuration.set_protocol(protocol_named(&var("PEER_PROTOCOL").unwrap_or_default()));
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted_with_peer_name(
        "127.0.0.1",
        var("PEER_PORT")?.parse()?,
        &var("PEER_NAME")?,
    );
    report_client(socket, None)?;
    println!("DONE");
    Ok(())
}

#[test]
#[ignore = "a peer process, started by the other tests of this file"]
fn peer_openssl_psk_client() -> TestResult {
    if !is_peer() {
        return Ok(());
    }
    // libtest's own `test NAME ... ` ends no line: start on a fresh one.
    println!();
    println!("BACKEND {}", support::active_backend());
    let hooks = PskHooks::new(PSK_IDENTITY, &hex(&var("PEER_PSK_KEY")?)?);
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(Vec::new());
    // The key authenticates the server, which shows no certificate (without this, Qt's
    // VerifyPeer reports NoPeerCertificate: simplePskConnect).
    configuration.set_pre_shared_key_authenticates_peer(true);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.set_hooks(hooks.clone());
    socket.connect_to_host_encrypted("localhost", var("PEER_PORT")?.parse()?);
    report_client(socket, Some(&hooks))?;
    println!("DONE");
    Ok(())
}
