//! Adversarial review (round 33b) of the latest trust changes. Each test was a defect found
//! by the review, failing before its fix. Run with
//! `cargo test -p sslsocket --all-features --test trust_round33b`, and with
//! `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{CustomExtension, KeyPair};
use sslsocket::backend::SupportedFeature;
use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{PauseMode, SslCertificate, SslConfiguration, SslError, SslErrorKind, SslProtocol};
use support::chains::*;
use support::{os_args, OpensslServer, PskHooks, PSK, PSK_HEX};

fn ext(oid: &[u64], content: Vec<u8>, critical: bool) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(oid, content);
    e.set_criticality(critical);
    e
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        out.push(0x81);
        out.push(n as u8);
    }
    out.extend_from_slice(content);
    out
}

/// sbgp-ipAddrBlock (RFC 3779) with IPv4 10.0.0.0/8 (a root without it does not hold it:
/// X509_V_ERR_UNNESTED_RESOURCE).
fn ip_addr_block_10_8() -> Vec<u8> {
    let prefix = tlv(0x03, &[0x00, 0x0a]);
    let ranges = tlv(0x30, &prefix);
    let mut family = tlv(0x04, &[0x00, 0x01]);
    family.extend(ranges);
    let family = tlv(0x30, &family);
    tlv(0x30, &family)
}

fn rfc3779_leaf(root: &Ca) -> BoxResult<(Vec<u8>, KeyPair)> {
    leaf(root, "localhost", |p| {
        p.custom_extensions = vec![ext(
            &[1, 3, 6, 1, 5, 5, 7, 1, 7],
            ip_addr_block_10_8(),
            false,
        )];
    })
}

fn trusting_der(root: &[u8]) -> BoxResult<SslConfiguration> {
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![SslCertificate::from_der(root)?]);
    Ok(configuration)
}

// ---------------------------------------------------------------------------------------
// A raw rustls server that says whether each handshake completed (the client's Finished
// arrived and checked out).

fn rustls_config(
    chain: Vec<Vec<u8>>,
    key: &KeyPair,
    protocol: SslProtocol,
) -> BoxResult<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match protocol {
        SslProtocol::TlsV1_2 => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS13],
    };
    let certs: Vec<CertificateDer<'static>> = chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// Serves one connection per config, in order (each config its own session cache and
/// ticket keys: nothing of an earlier connection is resumed). Gives, per connection,
/// whether the server's handshake completed.
fn serve_raw(
    listener: TcpListener,
    configs: Vec<Arc<rustls::ServerConfig>>,
) -> thread::JoinHandle<Vec<bool>> {
    thread::spawn(move || {
        let mut results = Vec::new();
        let _ = listener.set_nonblocking(true);
        for config in configs {
            let deadline = Instant::now() + WAIT;
            let tcp = loop {
                match listener.accept() {
                    Ok((tcp, _)) => break Some(tcp),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() >= deadline {
                            break None;
                        }
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break None,
                }
            };
            let Some(mut tcp) = tcp else { break };
            let _ = tcp.set_nonblocking(false);
            let _ = tcp.set_read_timeout(Some(Duration::from_millis(100)));
            let Ok(mut conn) = rustls::ServerConnection::new(config) else {
                results.push(false);
                continue;
            };
            let _ = conn.writer().write_all(b"hello\n");
            let mut completed = false;
            let deadline = Instant::now() + Duration::from_secs(5);
            'conn: while Instant::now() < deadline {
                while conn.wants_write() {
                    if conn.write_tls(&mut tcp).is_err() {
                        break 'conn;
                    }
                }
                if !conn.is_handshaking() {
                    completed = true;
                }
                match conn.read_tls(&mut tcp) {
                    Ok(0) => break,
                    Ok(_) => {
                        if conn.process_new_packets().is_err() {
                            let _ = conn.write_tls(&mut tcp);
                            break;
                        }
                        if !conn.is_handshaking() {
                            completed = true;
                        }
                        let mut sink = [0u8; 1024];
                        let _ = conn.reader().read(&mut sink);
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            results.push(completed);
        }
        results
    })
}

/// One client connection: whether it got encrypted, and its errors.
fn connect_once(configuration: &SslConfiguration, port: u16) -> (bool, Vec<SslErrorKind>) {
    let mut socket = SslSocket::with_configuration(configuration.clone());
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    let encrypted = socket.wait_for_encrypted(WAIT).is_ok();
    if encrypted {
        let _ = socket.wait_for_ready_read(Duration::from_millis(1000));
        let _ = socket.read_all();
    }
    let errors = socket
        .ssl_handshake_errors()
        .iter()
        .map(SslError::error)
        .collect();
    let _ = socket.disconnect_within(Duration::from_millis(500));
    (encrypted || socket.core().was_encrypted(), errors)
}

// Was a defect: OpenSSL client deferring its decision (RFC 3779 path, decide_late) lets its flight out before deciding: a refused server completes its handshake (TLS 1.2 always; TLS 1.3 when a stored session was offered).
#[test]
fn a_refused_server_with_rfc3779_resources_never_completes_its_handshake() -> TestResult {
    let mut failures = Vec::new();
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let root = root("RV33b Root")?;
        let (clean, clean_key) = leaf(&root, "localhost", |_| {})?;
        let (resourced, resourced_key) = rfc3779_leaf(&root)?;

        // No session to offer.
        let configuration = trusting_der(&root.der)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let server = serve_raw(
            listener,
            vec![rustls_config(
                vec![resourced.clone()],
                &resourced_key,
                protocol,
            )?],
        );
        let (encrypted, errors) = connect_once(&configuration, port);
        let served = server.join().map_err(|_| "server panicked")?;
        assert!(!encrypted, "{protocol:?}: accepted: {errors:?}");
        if served != vec![false] {
            failures.push(format!(
                "{protocol:?}, no session offered: the refused server completed its \
                 handshake; client errors {errors:?}"
            ));
        }

        // A first, clean connection leaves a session the policy accepts; the same name
        // then shows a chain with RFC 3779 resources its root does not hold.
        let configuration = trusting_der(&root.der)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let server = serve_raw(
            listener,
            vec![
                rustls_config(vec![clean.clone()], &clean_key, protocol)?,
                rustls_config(vec![resourced.clone()], &resourced_key, protocol)?,
            ],
        );
        let (first, first_errors) = connect_once(&configuration, port);
        let (second, second_errors) = connect_once(&configuration, port);
        let served = server.join().map_err(|_| "server panicked")?;
        assert!(first, "{protocol:?}: first failed: {first_errors:?}");
        assert!(!second, "{protocol:?}: accepted: {second_errors:?}");
        if served.get(1) != Some(&false) {
            failures.push(format!(
                "{protocol:?}, stored session offered: the refused server completed its \
                 handshake; client errors {second_errors:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

// Was a defect: OpenSSL client: a chain carrying RFC 3779 resources with an error is refused outright in PauseOnSslErrors mode (decide_late treats Pause as Refuse), rustls pauses.
#[test]
fn pause_on_errors_pauses_for_a_chain_with_rfc3779_resources() -> TestResult {
    let root = root("RV33b Pause Root")?;
    let (leaf_der, key) = rfc3779_leaf(&root)?;
    let server = support::attack::AttackServer::start(vec![leaf_der], &key.serialize_der(), 1)?;
    let mut socket = SslSocket::with_configuration(trusting_der(&root.der)?);
    socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port(), "localhost");
    let paused = support::trust::wait_until_paused(&mut socket, WAIT);
    let errors: Vec<SslErrorKind> = socket
        .ssl_handshake_errors()
        .iter()
        .map(SslError::error)
        .collect();
    assert!(
        paused,
        "not paused (state {:?}, errors {errors:?}, last error {:?})",
        socket.state(),
        socket.error_string()
    );
    socket.ignore_ssl_errors();
    let _ = socket.resume();
    assert!(
        socket.wait_for_encrypted(WAIT).is_ok(),
        "not encrypted after resume"
    );
    socket.abort();
    Ok(())
}

// Was a defect: OpenSSL client with OCSP stapling on: a certificate-less (PSK) server is accepted in VerifyPeer without NoPeerCertificate when only OcspNoResponseFound is ignored (certificate_less_server skipped once errors_reported).
#[test]
fn ignoring_a_missing_staple_does_not_accept_a_certificate_less_psk_server() -> TestResult {
    if support::lacks(SupportedFeature::Psk) {
        return Ok(());
    }
    let cases: [(&[&str], SslProtocol); 2] = [
        (
            &["-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"],
            SslProtocol::TlsV1_2,
        ),
        (&["-tls1_3"], SslProtocol::TlsV1_3),
    ];
    let mut failures = Vec::new();
    for (extra, protocol) in cases {
        for ocsp in [false, true] {
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
            let mut configuration = SslConfiguration::default();
            configuration.set_ocsp_stapling_enabled(ocsp);
            let mut socket = SslSocket::with_configuration(configuration);
            socket.set_hooks(PskHooks::new(b"client1", &PSK));
            socket.ignore_ssl_errors_list(&[SslError::new(SslErrorKind::OcspNoResponseFound)]);
            socket.connect_to_host_encrypted("localhost", server.port());
            let encrypted = socket.wait_for_encrypted(WAIT).is_ok();
            let errors: Vec<SslErrorKind> = socket
                .ssl_handshake_errors()
                .iter()
                .map(SslError::error)
                .collect();
            socket.abort();
            if encrypted || !errors.contains(&SslErrorKind::NoPeerCertificate) {
                failures.push(format!(
                    "{protocol:?} ocsp {ocsp}: encrypted {encrypted}, errors {errors:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Keys OpenSSL reads.

// Was a defect: SslKey::from_pem refuses keys `openssl genpkey` makes and OpenSSL reads (DSA, DH, DHX: "unknown key algorithm"; EC with explicit P-256 parameters: "names no curve"); before 9c9a304 they were read (Opaque).
#[test]
fn keys_that_openssl_reads_are_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let run = |args: &[&str]| -> BoxResult<()> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()?;
        if !out.status.success() {
            return Err(
                format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        Ok(())
    };
    run(&[
        "genpkey",
        "-genparam",
        "-algorithm",
        "DSA",
        "-pkeyopt",
        "dsa_paramgen_bits:2048",
        "-out",
        "dsap.pem",
    ])?;
    let keys: &[(&str, &[&str])] = &[
        ("dsa", &["-paramfile", "dsap.pem"]),
        ("dh", &["-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"]),
        ("dhx", &["-algorithm", "DHX", "-pkeyopt", "dh_rfc5114:2"]),
        (
            "p256explicit",
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-pkeyopt",
                "ec_param_enc:explicit",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (name, opts) in keys {
        let file = format!("{name}.pem");
        let pubf = format!("{name}.pub.pem");
        let mut args = vec!["genpkey"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["-out", &file]);
        run(&args)?;
        run(&["pkey", "-in", &file, "-pubout", "-out", &pubf])?;
        // OpenSSL itself reads both back.
        run(&["pkey", "-in", &file, "-noout"])?;
        run(&["pkey", "-pubin", "-in", &pubf, "-noout"])?;
        for f in [&file, &pubf] {
            let pem = std::fs::read(dir.path().join(f))?;
            if let Err(e) = sslsocket::SslKey::from_pem(&pem, None) {
                failures.push(format!("{f}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}
