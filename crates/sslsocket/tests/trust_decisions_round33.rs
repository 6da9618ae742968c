//! Review round 33: trust decisions over time (resumption after a policy change, pauses,
//! server-side client certificates). Each test asserts the rule; the ones marked
//! "Was a defect" failed before their fix.

mod support;

use std::sync::Arc;

use sslsocket::core::SslCore;
use sslsocket::{
    PauseMode, PeerVerifyMode, SocketState, SslCertificate, SslConfiguration, SslError, SslHooks,
    SslKey, SslProtocol, Verdict,
};
use support::duplex::read_duplex;
use support::{Issued, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;
/// A change the application makes to a server socket.
type Change = Box<dyn Fn(&mut SslCore)>;

const MAX_ROUNDS: usize = 1000;

/// Steps both cores until nothing moves (the client through a duplex socket).
fn run(client: &mut SslCore, server: &mut SslCore, mut to_server: Vec<u8>) -> TestResult {
    let mut to_client = Vec::new();
    for _ in 0..MAX_ROUNDS {
        client.poll_transmit(&mut to_server);
        server.poll_transmit(&mut to_client);
        let moved = !to_server.is_empty() || !to_client.is_empty();
        if !to_server.is_empty() {
            match server.handle_tls(&to_server) {
                Ok(n) => {
                    to_server.drain(..n);
                }
                Err(_) => to_server.clear(),
            }
        }
        if !to_client.is_empty() {
            if let Ok((s, w)) = read_duplex(client, std::mem::take(&mut to_client)) {
                to_server.extend([s, w].concat());
            }
        }
        if !moved {
            return Ok(());
        }
    }
    Err("still busy".into())
}

fn certs(ders: &[Vec<u8>]) -> BoxResult<Vec<SslCertificate>> {
    Ok(ders
        .iter()
        .map(|d| SslCertificate::from_der(d))
        .collect::<Result<Vec<_>, _>>()?)
}

/// A server of `leaf` over `protocol`, asking for client certificates in `mode`, trusting
/// the test root for them.
fn server_config(
    pki: &Pki,
    leaf: &Issued,
    protocol: SslProtocol,
    mode: PeerVerifyMode,
) -> BoxResult<SslConfiguration> {
    let mut config = SslConfiguration::default();
    config
        .set_local_certificate_chain(certs(&leaf.chain_der)?)
        .set_private_key(SslKey::from_der(&leaf.key_der)?)
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?])
        .set_peer_verify_mode(mode)
        .set_protocol(protocol);
    Ok(config)
}

/// A client trusting the test root, presenting `client` (its whole chain) if given.
fn client_config(pki: &Pki, client: Option<&Issued>) -> BoxResult<SslConfiguration> {
    let mut config = SslConfiguration::default();
    config.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    if let Some(client) = client {
        config
            .set_local_certificate_chain(certs(&client.chain_der)?)
            .set_private_key(SslKey::from_der(&client.key_der)?);
    }
    Ok(config)
}

/// One connection between fresh cores: `setup` before the start, `after_start` on the
/// server between its start and the client's hello. Returns the cores after the exchange.
fn connect(
    client_config: &SslConfiguration,
    server_config: &SslConfiguration,
    setup: &dyn Fn(&mut SslCore, &mut SslCore),
    after_start: &dyn Fn(&mut SslCore),
) -> BoxResult<(SslCore, SslCore)> {
    let mut client = SslCore::new(client_config.clone());
    let mut server = SslCore::new(server_config.clone());
    client.handle_state(SocketState::ConnectedState);
    server.handle_state(SocketState::ConnectedState);
    setup(&mut client, &mut server);
    server.start_server_encryption()?;
    after_start(&mut server);
    client.start_client_encryption("localhost")?;
    run(&mut client, &mut server, Vec::new())?;
    Ok((client, server))
}

fn nothing(_: &mut SslCore) {}

struct Answer(Verdict);
impl SslHooks for Answer {
    fn ssl_errors(&self, _: &[SslError]) -> Verdict {
        self.0
    }
}

// Was a defect: (rustls) a server socket that narrows its policy after start_server_encryption (before the ClientHello) still resumes a session its new policy refuses, and completes the client's handshake before refusing it
#[test]
fn server_policy_narrowed_after_start_is_not_bypassed_by_resumption() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let untrusted_client = pki.client_cert(false)?;
    let mut bad = Vec::new();
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let server = server_config(&pki, &leaf, protocol, PeerVerifyMode::VerifyPeer)?;
        let client = client_config(&pki, Some(&untrusted_client))?;
        let lenient: &dyn Fn(&mut SslCore, &mut SslCore) = &|_, s| s.ignore_ssl_errors();
        // A lenient server socket accepts the untrusted client: a session to resume.
        let (c, s) = connect(&client, &server, lenient, &nothing)?;
        assert!(
            c.is_encrypted() && s.is_encrypted(),
            "{protocol:?}: {:?}",
            s.failure()
        );
        assert!(!s.ssl_handshake_errors().is_empty());
        // Control: it resumes while nothing changes.
        let (c, s) = connect(&client, &server, lenient, &nothing)?;
        assert!(
            c.is_encrypted() && s.is_encrypted() && s.is_session_resumed(),
            "{protocol:?}: control did not resume"
        );
        let changes: Vec<(&str, Change)> = vec![
            (
                "clear",
                Box::new(|s: &mut SslCore| s.clear_ignored_ssl_errors()),
            ),
            (
                "hook abort",
                Box::new(|s: &mut SslCore| s.set_hooks(Arc::new(Answer(Verdict::Abort)))),
            ),
        ];
        for (name, change) in changes {
            let (c, s) = connect(&client, &server, lenient, &*change)?;
            if s.is_encrypted() {
                bad.push(format!("{protocol:?} {name}: the server accepted"));
            }
            if c.is_encrypted() {
                bad.push(format!(
                    "{protocol:?} {name}: the server completed a resumed handshake (resumed {}) it then refused",
                    s.is_session_resumed()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    Ok(())
}

/// Everything the client can read now.
fn readable(client: &mut SslCore) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = client.read(&mut buf);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// A paused server (client certificate untrusted, `PauseOnSslErrors`) with data written
/// before the handshake and while paused: the client must read none of it, before or after
/// the server refuses.
#[test]
fn a_paused_server_leaks_no_queued_write_to_the_unverified_client() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let untrusted_client = pki.client_cert(false)?;
    let mut bad = Vec::new();
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        for how in ["abort", "refuse", "resume", "disconnect"] {
            let server_cfg = server_config(&pki, &leaf, protocol, PeerVerifyMode::VerifyPeer)?;
            let client_cfg = client_config(&pki, Some(&untrusted_client))?;
            let mut client = SslCore::new(client_cfg);
            let mut server = SslCore::new(server_cfg);
            client.handle_state(SocketState::ConnectedState);
            server.handle_state(SocketState::ConnectedState);
            server.set_pause_mode(PauseMode::PauseOnSslErrors);
            server.start_server_encryption()?;
            server.write(b"SECRET-BEFORE")?;
            client.start_client_encryption("localhost")?;
            run(&mut client, &mut server, Vec::new())?;
            if !server.is_paused() {
                bad.push(format!("{protocol:?}: the server did not pause"));
                continue;
            }
            let _ = server.write(b"SECRET-PAUSED");
            run(&mut client, &mut server, Vec::new())?;
            let got = readable(&mut client);
            if !got.is_empty() {
                bad.push(format!(
                    "{protocol:?} {how}: while paused the client read {:?}",
                    String::from_utf8_lossy(&got)
                ));
            }
            match how {
                "abort" => server.abort(),
                "refuse" => {
                    let _ = server.refuse();
                }
                "resume" => {
                    let _ = server.resume();
                }
                _ => server.disconnect_from_host(),
            }
            let _ = server.write(b"SECRET-AFTER");
            run(&mut client, &mut server, Vec::new())?;
            let got = readable(&mut client);
            if !got.is_empty() {
                bad.push(format!(
                    "{protocol:?} {how}: after the refusal the client read {:?}",
                    String::from_utf8_lossy(&got)
                ));
            }
            if server.is_encrypted() {
                bad.push(format!("{protocol:?} {how}: server encrypted"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    Ok(())
}

/// A server configuration sending `chain` with `key_der`.
fn serving_chain(
    chain: &[Vec<u8>],
    key_der: &[u8],
    protocol: SslProtocol,
) -> BoxResult<SslConfiguration> {
    let mut config = SslConfiguration::default();
    config
        .set_local_certificate_chain(certs(chain)?)
        .set_private_key(SslKey::from_der(key_der)?)
        .set_protocol(protocol);
    Ok(config)
}

// Was a defect: (both backends) a session made while the server's certificate was valid is resumed after the certificate expired: the resumed connection is accepted with no CertificateExpired, where a full handshake now refuses
#[test]
fn a_session_is_not_resumed_past_the_expiry_of_the_certificate_it_verified() -> TestResult {
    let pki = Pki::new()?;
    let mut bad = Vec::new();
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::seconds(3);
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let chain = pki.sign_with_intermediate(&params, &key)?;
        let server = serving_chain(&chain, &key.serialize_der(), protocol)?;
        let client = client_config(&pki, None)?;
        let (c, s) = connect(&client, &server, &|_, _| {}, &nothing)?;
        assert!(
            c.is_encrypted() && s.is_encrypted(),
            "{protocol:?}: {:?}",
            c.failure()
        );
        assert!(c.ssl_handshake_errors().is_empty());
        // Control, still valid: resumed.
        let (c, _) = connect(&client, &server, &|_, _| {}, &nothing)?;
        assert!(
            c.is_session_resumed(),
            "{protocol:?}: control did not resume"
        );
        std::thread::sleep(std::time::Duration::from_secs(5));
        // A full handshake now: refused with CertificateExpired.
        let fresh = client_config(&pki, None)?;
        let (c, _) = connect(&fresh, &server, &|_, _| {}, &nothing)?;
        assert!(
            !c.is_encrypted(),
            "{protocol:?}: the full handshake accepted an expired certificate"
        );
        // The session of before: must be refused just the same.
        let (c, _) = connect(&client, &server, &|_, _| {}, &nothing)?;
        if c.is_encrypted() {
            bad.push(format!(
                "{protocol:?}: accepted (resumed {}) with errors {:?}",
                c.is_session_resumed(),
                c.ssl_handshake_errors()
            ));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    Ok(())
}

/// Qt's verifyClientCertificate matrix on a server core: (mode, client) → accepted, and
/// the client is never left encrypted by a server that refused it over TLS 1.2.
#[test]
fn server_client_certificate_matrix_decides_as_qt() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let trusted = pki.client_cert(true)?;
    let untrusted = pki.client_cert(false)?;
    let mut bad = Vec::new();
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        for mode in [
            PeerVerifyMode::VerifyPeer,
            PeerVerifyMode::QueryPeer,
            PeerVerifyMode::VerifyNone,
            PeerVerifyMode::AutoVerifyPeer,
        ] {
            for (who, cert) in [
                ("none", None),
                ("untrusted", Some(&untrusted)),
                ("trusted", Some(&trusted)),
            ] {
                let server = server_config(&pki, &leaf, protocol, mode)?;
                let client = client_config(&pki, cert)?;
                let (c, s) = connect(&client, &server, &|_, _| {}, &nothing)?;
                let expect = who == "trusted" || mode != PeerVerifyMode::VerifyPeer;
                if s.is_encrypted() != expect {
                    bad.push(format!(
                        "{protocol:?} {mode:?} {who}: server encrypted {}",
                        s.is_encrypted()
                    ));
                }
                if !expect && protocol == SslProtocol::TlsV1_2 && c.is_encrypted() {
                    bad.push(format!(
                        "{protocol:?} {mode:?} {who}: client encrypted though refused"
                    ));
                }
                if expect {
                    let sent = cert.is_some() && mode != PeerVerifyMode::VerifyNone;
                    if sent == s.peer_certificate_chain().is_empty() {
                        bad.push(format!(
                            "{protocol:?} {mode:?} {who}: server peer chain {}",
                            s.peer_certificate_chain().len()
                        ));
                    }
                    let errors = who == "untrusted" && mode != PeerVerifyMode::VerifyNone;
                    if errors == s.ssl_handshake_errors().is_empty() {
                        bad.push(format!(
                            "{protocol:?} {mode:?} {who}: errors {:?}",
                            s.ssl_handshake_errors()
                        ));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    Ok(())
}

// Was a defect: on the OpenSSL backend a resumed server connection reports errors and a chain from another handshake of the same client certificate (outcomes merged by leaf), not the session's own; rustls reports the session's
#[test]
fn a_resumed_server_connection_reports_its_own_sessions_errors_and_chain() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let client_leaf = pki.client_cert(true)?;
    let mut bad = Vec::new();
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let server = server_config(&pki, &leaf, protocol, PeerVerifyMode::VerifyPeer)?;
        // A: the client's whole chain (clean). B: its leaf alone (issuer missing).
        let full = client_config(&pki, Some(&client_leaf))?;
        let mut lone = client_config(&pki, None)?;
        lone.set_local_certificate_chain(vec![SslCertificate::from_der(&client_leaf.cert_der)?])
            .set_private_key(SslKey::from_der(&client_leaf.key_der)?);
        let lenient: &dyn Fn(&mut SslCore, &mut SslCore) = &|_, s| s.ignore_ssl_errors();
        let (c, s) = connect(&full, &server, lenient, &nothing)?;
        assert!(c.is_encrypted() && s.is_encrypted());
        assert!(
            s.ssl_handshake_errors().is_empty(),
            "{:?}",
            s.ssl_handshake_errors()
        );
        let own_chain = s.peer_certificate_chain().to_vec();
        let (_, s) = connect(&lone, &server, lenient, &nothing)?;
        assert!(s.is_encrypted());
        assert!(
            !s.ssl_handshake_errors().is_empty(),
            "{protocol:?}: the lone leaf had no error"
        );
        // The clean session of A, resumed at a lenient socket.
        let (c, s) = connect(&full, &server, lenient, &nothing)?;
        assert!(c.is_encrypted() && s.is_encrypted());
        if !s.is_session_resumed() {
            bad.push(format!("{protocol:?}: not resumed (control)"));
            continue;
        }
        if !s.ssl_handshake_errors().is_empty() {
            bad.push(format!(
                "{protocol:?}: resumed session reports errors it never had: {:?}",
                s.ssl_handshake_errors()
            ));
        }
        if s.peer_certificate_chain() != own_chain.as_slice() {
            bad.push(format!(
                "{protocol:?}: resumed session reports a chain of {} certificates, its own had {}",
                s.peer_certificate_chain().len(),
                own_chain.len()
            ));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    Ok(())
}

/// The tokio driver, paused against `openssl s_server -tls1_2` (expired leaf), then given
/// up on in several ways: s_server never completes its handshake nor sees our data.
#[test]
fn tokio_paused_handshake_given_up_sends_nothing_more() -> TestResult {
    use sslsocket::prelude::*;
    use sslsocket::tokio::SslSocket as TokioSocket;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut bad = Vec::new();
    for how in [
        "drop",
        "disconnect",
        "refuse-write",
        "resume-twice",
        "refuse-ignore-resume",
        "abort-accept",
    ] {
        let server = support::trust::serve(&leaf, true, &["-tls1_2"])?;
        let port = server.port();
        let client_cfg = client_config(&pki, None)?;
        let result: TestResult = runtime.block_on(async {
            let t = Duration::from_secs(5);
            let mut s = tokio::time::timeout(
                t,
                TokioSocket::connect_to_host("127.0.0.1", port, client_cfg),
            )
            .await??;
            s.set_peer_verify_name("localhost");
            s.set_pause_mode(PauseMode::PauseOnSslErrors);
            s.begin_client_encryption()?;
            match tokio::time::timeout(t, s.handshake()).await?? {
                sslsocket::Handshake::NeedsDecision(_) => {}
                _ => return Err("not paused".into()),
            }
            let short = Duration::from_millis(500);
            match how {
                "drop" => {
                    let _ = tokio::time::timeout(short, s.write_all(b"LEAK-drop\n")).await;
                    drop(s);
                }
                "disconnect" => {
                    let _ = tokio::time::timeout(short, s.write_all(b"LEAK-disconnect\n")).await;
                    let r = tokio::time::timeout(t, s.disconnect_from_host()).await?;
                    if r.is_ok() {
                        return Err(
                            "disconnect_from_host of a paused handshake with data succeeded".into(),
                        );
                    }
                }
                "refuse-write" => {
                    s.refuse_peer()?;
                    let _ = tokio::time::timeout(short, s.write_all(b"LEAK-refused\n")).await;
                    let _ = tokio::time::timeout(short, s.flush()).await;
                    let _ = tokio::time::timeout(short, s.handshake()).await;
                }
                "resume-twice" => {
                    let first = s.resume();
                    let second = s.resume();
                    if first.is_ok() || second.is_ok() {
                        return Err(format!("resume without ignoring: {first:?} {second:?}").into());
                    }
                    let _ = tokio::time::timeout(short, s.write_all(b"LEAK-resumed\n")).await;
                    let _ = tokio::time::timeout(short, s.handshake()).await;
                }
                "refuse-ignore-resume" => {
                    s.refuse_peer()?;
                    s.ignore_ssl_errors();
                    if s.resume().is_ok() {
                        return Err("resume after refuse_peer succeeded".into());
                    }
                    let _ = tokio::time::timeout(short, s.handshake()).await;
                    let _ = tokio::time::timeout(short, s.write_all(b"LEAK-after-refuse\n")).await;
                }
                _ => {
                    s.abort();
                    let accepted = s.accept_peer();
                    if accepted.is_ok() || s.is_encrypted() {
                        return Err("accept_peer after abort went on".into());
                    }
                    let _ = tokio::time::timeout(short, s.write_all(b"LEAK-abort\n")).await;
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            bad.push(format!("{how}: {e}"));
        }
        let _ = server.wait_for_output("CIPHER is ", Duration::from_millis(700));
        let out = server.output();
        if out.contains("CIPHER is ") || out.contains("LEAK") {
            bad.push(format!("{how}: s_server completed or read data:\n{out}"));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    Ok(())
}

// Was a defect: (both drivers and backends) accept_peer() on a socket that is not paused fails, yet leaves the failed handshake's errors installed as the ignore list, so the next connection of the socket silently accepts them
#[test]
fn a_failed_accept_peer_installs_no_ignore_list_for_the_next_connection() -> TestResult {
    use sslsocket::blocking::SslSocket;
    use sslsocket::prelude::*;
    use std::time::Duration;
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    let server = support::trust::serve(&leaf, true, &[])?;
    let mut bad = Vec::new();
    for after_abort in [false, true] {
        let mut s = SslSocket::with_configuration(client_config(&pki, None)?);
        s.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port(), "localhost");
        if s.wait_for_encrypted(Duration::from_secs(10)).is_ok() {
            return Err("the expired certificate was accepted".into());
        }
        assert!(!s.ssl_handshake_errors().is_empty());
        if after_abort {
            s.abort();
        }
        // Not paused: a misuse, refused.
        if s.accept_peer().is_ok() {
            bad.push(format!("after_abort={after_abort}: accept_peer succeeded"));
        }
        s.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port(), "localhost");
        if s.wait_for_encrypted(Duration::from_secs(10)).is_ok() {
            bad.push(format!(
                "after_abort={after_abort}: the next connection accepted the errors the failed accept_peer() named"
            ));
        }
        s.abort();
    }
    assert!(bad.is_empty(), "{bad:#?}");
    Ok(())
}
