//! What an OpenSSL client sends while reading when it offered a stored session (written by
//! a review that attacked it). The rule: the peer never receives our Finished for a
//! handshake our socket then refuses, pauses on, or the application has not accepted. Four
//! of these failed before: a TLS 1.3 external pre-shared key picked over the offered
//! session was judged (and stored) as that session, and a pinned client completed a TLS
//! 1.2 PSK handshake for the server before refusing it.

mod support;

use std::sync::Arc;

use sslsocket::backend::SupportedFeature;
use sslsocket::core::SslCore;
use sslsocket::{
    IgnoreRule, PauseMode, SocketState, SslCertificate, SslConfiguration, SslErrorKind, SslHooks,
    SslKey, SslProtocol, Verdict,
};
use support::duplex::read_duplex;
use support::{Issued, Pki, PskHooks, PSK};

/// A change the application makes to a core, named.
type Change = Box<dyn Fn(&mut SslCore)>;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const MAX_ROUNDS: usize = 1000;

/// Steps both cores until nothing moves (the client through a duplex socket).
fn run(client: &mut SslCore, server: &mut SslCore, mut to_server: Vec<u8>) -> TestResult {
    let mut to_client = Vec::new();
    for _ in 0..MAX_ROUNDS {
        client.poll_transmit(&mut to_server);
        server.poll_transmit(&mut to_client);
        let moved = !to_server.is_empty() || !to_client.is_empty();
        if !to_server.is_empty() {
            let n = server.handle_tls(&to_server)?;
            to_server.drain(..n);
        }
        if !to_client.is_empty() {
            let (s, w) = read_duplex(client, std::mem::take(&mut to_client))?;
            to_server.extend([s, w].concat());
        }
        if !moved {
            return Ok(());
        }
    }
    Err("still busy".into())
}

fn cores(client: &SslConfiguration, server: &SslConfiguration) -> (SslCore, SslCore) {
    let mut c = SslCore::new(client.clone());
    let mut s = SslCore::new(server.clone());
    c.handle_state(SocketState::ConnectedState);
    s.handle_state(SocketState::ConnectedState);
    (c, s)
}

/// The client's handshake with `server` fed by hand: the ClientHello to the server, the
/// server's answer read by the client through a duplex socket (`between` runs before that
/// read, after the offer), then the rest. Returns the cores and what the client sent to
/// the socket while reading the server's first flight.
fn handshake(
    client_config: &SslConfiguration,
    server_config: &SslConfiguration,
    setup: &dyn Fn(&mut SslCore, &mut SslCore),
    between: &dyn Fn(&mut SslCore),
) -> BoxResult<(SslCore, SslCore, Vec<u8>)> {
    let (mut client, mut server) = cores(client_config, server_config);
    setup(&mut client, &mut server);
    client.start_client_encryption("localhost")?;
    server.start_server_encryption()?;
    let mut hello = Vec::new();
    client.poll_transmit(&mut hello);
    server.handle_tls(&hello)?;
    let mut flight = Vec::new();
    server.poll_transmit(&mut flight);
    between(&mut client);
    let (sent, waiting) = read_duplex(&mut client, flight)?;
    // What went out on the way reaches the server; what waits goes only if the core lets it.
    run(&mut client, &mut server, [sent.clone(), waiting].concat())?;
    Ok((client, server, sent))
}

fn serving(leaf: &Issued, protocol: SslProtocol) -> BoxResult<SslConfiguration> {
    let chain = leaf
        .chain_der
        .iter()
        .map(|d| SslCertificate::from_der(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = SslConfiguration::default();
    config
        .set_local_certificate_chain(chain)
        .set_private_key(SslKey::from_der(&leaf.key_der)?)
        .set_protocol(protocol);
    Ok(config)
}

fn trusting(pki: &Pki) -> BoxResult<SslConfiguration> {
    let mut config = SslConfiguration::default();
    config.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    Ok(config)
}

fn leaf_pin(leaf: &Issued) -> BoxResult<[u8; 32]> {
    Ok(SslCertificate::from_der(&leaf.cert_der)?.public_key_sha256())
}

fn nothing(_: &mut SslCore) {}

/// The error a `VerifyPeer` client reports when the key authenticated a server that showed
/// no certificate (Qt's simplePskConnect), which a PSK client ignores.
fn no_certificate() -> [sslsocket::SslError; 1] {
    [sslsocket::SslError::new(
        sslsocket::SslErrorKind::NoPeerCertificate,
    )]
}

fn psk_client(c: &mut SslCore, _: &mut SslCore) {
    c.set_hooks(PskHooks::new(b"client1", &PSK));
    c.ignore_ssl_errors_list(&no_certificate());
}

fn psk_both(c: &mut SslCore, s: &mut SslCore) {
    c.set_hooks(PskHooks::new(b"client1", &PSK));
    c.ignore_ssl_errors_list(&no_certificate());
    s.set_hooks(PskHooks::new(b"client1", &PSK));
}

/// HOLE A. TLS 1.2: a pinned client with a PSK hook offers its stored (certificate,
/// pinned) session; the server declines it and negotiates a PSK suite (no certificate,
/// so nothing is verified and `decided` stays false): the client's Finished goes out
/// while reading because `offer_accepted` holds, then the core refuses the peer (pins,
/// no certificate). The server completed a handshake the client refused.
#[test]
fn tls12_a_psk_suite_never_completes_a_pinned_client_that_refuses_it() -> TestResult {
    if support::lacks(SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut client_config = trusting(&pki)?;
    client_config.set_pinned_public_keys(vec![leaf_pin(&leaf)?]);
    let cert_server = serving(&leaf, SslProtocol::TlsV1_2)?;
    // Another server context (its session cache knows nothing), PSK suites only.
    let mut psk_server = serving(&leaf, SslProtocol::TlsV1_2)?;
    psk_server.set_ciphers_str("PSK-AES128-GCM-SHA256")?;

    // 1: a certificate handshake, pinned key matched: the session is stored.
    let (client, server, _) = handshake(&client_config, &cert_server, &psk_client, &nothing)?;
    assert!(
        client.is_encrypted() && server.is_encrypted(),
        "{:?}",
        client.failure()
    );

    // Control: the same PSK server without a stored session: refused (pins, no
    // certificate), and the server never completes.
    let fresh = {
        let mut c = trusting(&pki)?;
        c.set_pinned_public_keys(vec![leaf_pin(&leaf)?]);
        c
    };
    let (client, server, sent) = handshake(&fresh, &psk_server, &psk_both, &nothing)?;
    assert!(
        !client.is_encrypted(),
        "a PSK peer was accepted despite the pins"
    );
    assert!(
        !server.is_encrypted(),
        "no session offered: the server completed a handshake the pinned client refused \
         ({} bytes sent while reading; failure {:?})",
        sent.len(),
        client.failure()
    );

    // 2: the session offered, declined; a PSK suite negotiated.
    let (client, server, sent) = handshake(&client_config, &psk_server, &psk_both, &nothing)?;
    assert!(!client.is_session_resumed());
    assert!(
        !client.is_encrypted(),
        "the pinned client accepted a PSK peer"
    );
    assert!(
        !server.is_encrypted(),
        "the server completed a handshake the client refused ({} bytes sent while reading)",
        sent.len()
    );
    Ok(())
}

/// HOLE B. TLS 1.3: a pinned client with a PSK hook offers its stored session ticket AND
/// the external PSK (OpenSSL sends both identities); a server that cannot decrypt the
/// ticket selects the external PSK. OpenSSL reports that as `session_reused`, and the
/// offered outcome (another server's certificate chain) is reported and judged instead
/// of "no certificate": the pins pass on a chain this peer never showed.
#[test]
fn tls13_an_external_psk_chosen_over_the_offered_ticket_is_refused_by_a_pinned_client() -> TestResult
{
    if support::lacks(SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut client_config = trusting(&pki)?;
    client_config.set_pinned_public_keys(vec![leaf_pin(&leaf)?]);
    let cert_server = serving(&leaf, SslProtocol::TlsV1_3)?;
    let other = pki.leaf("localhost", &["localhost"])?;
    let mut psk_server = serving(&other, SslProtocol::TlsV1_3)?;
    // The external PSK's hash (OpenSSL makes it a TLS_AES_128_GCM_SHA256 session).
    psk_server.set_ciphers_str("TLS_AES_128_GCM_SHA256")?;

    let (client, server, _) = handshake(&client_config, &cert_server, &psk_client, &nothing)?;
    assert!(
        client.is_encrypted() && server.is_encrypted(),
        "{:?}",
        client.failure()
    );

    // Control: without a stored session the PSK peer is refused (pins, no certificate).
    let mut fresh = trusting(&pki)?;
    fresh.set_pinned_public_keys(vec![leaf_pin(&leaf)?]);
    let (client, server, _) = handshake(&fresh, &psk_server, &psk_both, &nothing)?;
    assert!(
        !client.is_encrypted(),
        "control: a PSK peer passed the pins"
    );
    assert!(!server.is_encrypted(), "control: the server completed");

    let (client, server, sent) = handshake(&client_config, &psk_server, &psk_both, &nothing)?;
    let chain: Vec<Vec<u8>> = client
        .peer_certificate_chain()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    assert!(
        !client.is_encrypted(),
        "a PSK peer (no certificate) passed the pins; chain reported: {} certificate(s), \
         the original server's: {}; resumed: {}; sent while reading: {}",
        chain.len(),
        chain.first() == Some(&leaf.cert_der),
        client.is_session_resumed(),
        sent.len()
    );
    assert!(
        !server.is_encrypted(),
        "the server completed a refused handshake"
    );
    Ok(())
}

/// HOLE B, its consequence: the ticket of that PSK handshake is kept in the configuration's
/// store as a certified peer's (the offered chain), so a socket of the same configuration
/// WITHOUT the key resumes it (3b90173's bypass again) and is encrypted with nobody
/// verified.
#[test]
fn tls13_a_ticket_of_an_external_psk_chosen_over_the_offer_is_never_resumed_without_the_key(
) -> TestResult {
    if support::lacks(SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let client_config = trusting(&pki)?;
    let cert_server = serving(&leaf, SslProtocol::TlsV1_3)?;
    // A server holding the PSK and a certificate the client does NOT trust.
    let stranger = pki.untrusted_leaf("localhost", &["localhost"])?;
    let mut psk_server = serving(&stranger, SslProtocol::TlsV1_3)?;
    psk_server.set_ciphers_str("TLS_AES_128_GCM_SHA256")?;

    // 1: the genuine server, verified; its ticket stored.
    let (client, _, _) = handshake(&client_config, &cert_server, &psk_client, &nothing)?;
    assert!(client.is_encrypted(), "{:?}", client.failure());
    // 2: PSK-keyed socket meets the PSK server, which takes the external key.
    let (client, server, _) = handshake(&client_config, &psk_server, &psk_both, &nothing)?;
    assert!(
        client.is_encrypted() && server.is_encrypted(),
        "{:?}",
        client.failure()
    );
    // 3: a plain socket of the same configuration, no key, no hooks, meets the PSK server.
    let plain_server: &dyn Fn(&mut SslCore, &mut SslCore) = &|_, s| {
        s.set_hooks(PskHooks::new(b"client1", &PSK));
    };
    let (client, server, _) = handshake(&client_config, &psk_server, plain_server, &nothing)?;
    assert!(
        !(client.is_encrypted() && client.is_session_resumed()),
        "a socket without the key resumed a PSK session (peer never verified: its \
         certificate is untrusted); chain reported {} certificate(s)",
        client.peer_certificate_chain().len()
    );
    let _ = server;
    Ok(())
}

// ---- What held ----

/// An expired certificate, its error ignored by a rule: a session to resume.
fn expired_setup(
    pki: &Pki,
    protocol: SslProtocol,
) -> BoxResult<(SslConfiguration, SslConfiguration)> {
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    Ok((trusting(pki)?, serving(&leaf, protocol)?))
}

fn expired_rule() -> Vec<IgnoreRule> {
    vec![IgnoreRule::AnyCertificate(SslErrorKind::CertificateExpired)]
}

fn ignoring(c: &mut SslCore, _: &mut SslCore) {
    c.ignore_ssl_error_rules(expired_rule());
}

struct Answer(Verdict);
impl SslHooks for Answer {
    fn ssl_errors(&self, _: &[sslsocket::SslError]) -> Verdict {
        self.0
    }
}

/// Every change of the policy between the offer and the server's answer that makes the
/// core refuse the resumption keeps the Finished back (both TLS versions).
#[test]
fn a_policy_changed_after_the_offer_keeps_the_resumed_finished_back() -> TestResult {
    let pki = Pki::new()?;
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (client_config, server_config) = expired_setup(&pki, protocol)?;
        let (c, s, _) = handshake(&client_config, &server_config, &ignoring, &nothing)?;
        assert!(c.is_encrypted() && s.is_encrypted(), "{:?}", c.failure());
        // Accepted resumption: sent on the way (OpenSSL), completed.
        let (c, s, sent) = handshake(&client_config, &server_config, &ignoring, &nothing)?;
        assert!(c.is_session_resumed() && c.is_encrypted() && s.is_encrypted());
        if support::is_active("openssl") {
            assert!(!sent.is_empty(), "{protocol:?}: resumed Finished waited");
        }
        let changes: Vec<(&str, Change)> = vec![
            (
                "clear",
                Box::new(|c: &mut SslCore| c.clear_ignored_ssl_errors()),
            ),
            (
                "empty rules",
                Box::new(|c: &mut SslCore| c.ignore_ssl_error_rules(vec![])),
            ),
            (
                "pause",
                Box::new(|c: &mut SslCore| {
                    c.ignore_ssl_error_rules(vec![]);
                    c.set_pause_mode(PauseMode::PauseOnSslErrors);
                }),
            ),
            (
                "hook ignore",
                Box::new(|c: &mut SslCore| c.set_hooks(Arc::new(Answer(Verdict::Ignore)))),
            ),
            (
                "hook pause",
                Box::new(|c: &mut SslCore| c.set_hooks(Arc::new(Answer(Verdict::Pause)))),
            ),
        ];
        for (name, change) in changes {
            let (c, s, sent) = handshake(&client_config, &server_config, &ignoring, &*change)?;
            assert!(
                !s.is_encrypted() || c.is_encrypted(),
                "{protocol:?} {name}: server completed, client not encrypted (paused {})",
                c.is_paused()
            );
            if !c.is_encrypted() {
                assert!(sent.is_empty(), "{protocol:?} {name}: sent {}", sent.len());
            }
        }
        // Widening after the offer never sends more than the core then accepts.
        let (c, s, _) = handshake(
            &client_config,
            &server_config,
            &ignoring,
            &|c: &mut SslCore| c.ignore_ssl_errors(),
        )?;
        assert!(c.is_encrypted() && s.is_encrypted());
    }
    Ok(())
}

/// A server that declines the offered session: the full handshake's verification decides
/// (pause, refusal, hooks), nothing of the Finished leaves before it.
#[test]
fn a_declined_offer_runs_a_full_handshake_gated_by_its_verification() -> TestResult {
    let pki = Pki::new()?;
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (client_config, server_config) = expired_setup(&pki, protocol)?;
        let (c, _, _) = handshake(&client_config, &server_config, &ignoring, &nothing)?;
        assert!(c.is_encrypted());
        // Another server context, same name, another certificate with another error.
        let untrusted = pki.untrusted_leaf("localhost", &["localhost"])?;
        let other = serving(&untrusted, protocol)?;
        for pause in [false, true] {
            let setup: &dyn Fn(&mut SslCore, &mut SslCore) = &move |c, _| {
                c.ignore_ssl_error_rules(expired_rule());
                if pause {
                    c.set_pause_mode(PauseMode::PauseOnSslErrors);
                }
            };
            let (c, s, sent) = handshake(&client_config, &other, setup, &nothing)?;
            assert!(!c.is_session_resumed());
            assert!(!c.is_encrypted());
            assert_eq!(c.is_paused(), pause, "{protocol:?}");
            assert!(
                !s.is_encrypted(),
                "{protocol:?} pause={pause}: server completed"
            );
            // At most a ChangeCipherSpec (TLS 1.3 compatibility) went out.
            assert!(
                sent.len() <= 6,
                "{protocol:?} pause={pause}: {} bytes",
                sent.len()
            );
        }
    }
    Ok(())
}

/// abort() after the offer, before the server's flight: nothing is read or sent.
#[test]
fn an_abort_after_the_offer_sends_nothing() -> TestResult {
    let pki = Pki::new()?;
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (client_config, server_config) = expired_setup(&pki, protocol)?;
        let _ = handshake(&client_config, &server_config, &ignoring, &nothing)?;
        let (c, s, sent) = handshake(
            &client_config,
            &server_config,
            &ignoring,
            &|c: &mut SslCore| c.abort(),
        )?;
        assert!(!c.is_encrypted() && !s.is_encrypted() && sent.is_empty());
    }
    Ok(())
}

// ---- The same on real sockets: blocking driver, `openssl s_server` peers ----

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use std::time::Duration;
use support::{os_args, OpensslServer, PSK_HEX};

const WAIT: Duration = Duration::from_secs(10);

/// (encrypted, resumed, chain length) of one connection of a fresh socket.
fn connect(configuration: &SslConfiguration, port: u16, psk: bool) -> (bool, bool, usize) {
    let mut socket = SslSocket::with_configuration(configuration.clone());
    if psk {
        socket.set_hooks(PskHooks::new(b"client1", &PSK));
    }
    socket.connect_to_host_encrypted("localhost", port);
    let encrypted = socket.wait_for_encrypted(WAIT).is_ok();
    if encrypted {
        // TLS 1.3 tickets come after the handshake.
        let _ = socket.wait_for_ready_read(Duration::from_millis(700));
        let _ = socket.read_all();
    }
    let result = (
        encrypted,
        socket.core().is_session_resumed(),
        socket.peer_certificate_chain().len(),
    );
    let _ = socket.disconnect_within(Duration::from_millis(300));
    result
}

/// HOLE B on real sockets: the client (PSK hook, pinned key) connects first to a
/// certificate server (`s_server -cert`), then to a certificate-less PSK server
/// (`s_server -nocert -psk`, TLS 1.3): with the stored ticket offered, the PSK server is
/// accepted with the first server's chain; then a socket of the same configuration
/// without the key resumes the PSK server's ticket.
#[test]
fn tls13_real_peers_an_external_psk_chosen_over_the_offered_ticket_passes_pins_and_fills_the_store(
) -> TestResult {
    if support::lacks(SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-tls1_3", "-quiet"]);
    let cert_server = OpensslServer::start(&args)?;
    let psk_server = OpensslServer::start(&os_args![
        "-nocert",
        "-psk",
        PSK_HEX,
        "-psk_identity",
        "client1",
        "-tls1_3",
        "-ciphersuites",
        "TLS_AES_128_GCM_SHA256",
        "-quiet"
    ])?;
    let mut pinned = trusting(&pki)?;
    pinned.set_pinned_public_keys(vec![leaf_pin(&leaf)?]);

    // Control: a fresh pinned socket with the key is refused by the PSK server's lack of
    // a certificate.
    let control = connect(&pinned.clone(), psk_server.port(), true);
    let mut fresh = trusting(&pki)?;
    fresh.set_pinned_public_keys(vec![leaf_pin(&leaf)?]);
    let control_fresh = connect(&fresh, psk_server.port(), true);
    assert!(
        !control_fresh.0,
        "control: a pinned client accepted a PSK peer"
    );
    let _ = control;

    let first = connect(&pinned, cert_server.port(), true);
    assert!(first.0 && !first.1, "{first:?}");
    let second = connect(&pinned, psk_server.port(), true);
    let third = connect(&pinned, psk_server.port(), false);
    assert!(
        !second.0 && !third.0,
        "pinned socket with the key at the PSK server: (encrypted, resumed, chain) = \
         {second:?}; then a socket WITHOUT the key: {third:?}"
    );
    Ok(())
}

/// TLS 1.3 resumption through a HelloRetryRequest (the server wants P-384; the client
/// shares X25519 first): the second ClientHello goes out on the way; a policy narrowed
/// after the offer still keeps the Finished back and the server never completes.
#[test]
fn tls13_a_resumption_through_a_hello_retry_request_keeps_the_gate() -> TestResult {
    if !support::is_active("openssl") {
        // The gate is the OpenSSL session's (rustls sends nothing while reading), and the
        // rustls pair does not retry with this setup.
        return Ok(());
    }
    let pki = Pki::new()?;
    let (client_config, mut server_config) = expired_setup(&pki, SslProtocol::TlsV1_3)?;
    let p384 = sslsocket::SslEllipticCurve::from_short_name("secp384r1").ok_or("no P-384")?;
    server_config.set_elliptic_curves(vec![p384]);
    // The HRR: the first flight is only the retry request; feed it by hand.
    let step = |between: &dyn Fn(&mut SslCore)| -> BoxResult<(SslCore, SslCore, Vec<u8>)> {
        let (mut c, mut s) = cores(&client_config, &server_config);
        c.ignore_ssl_error_rules(expired_rule());
        c.start_client_encryption("localhost")?;
        s.start_server_encryption()?;
        let mut hello = Vec::new();
        c.poll_transmit(&mut hello);
        s.handle_tls(&hello)?;
        let mut hrr = Vec::new();
        s.poll_transmit(&mut hrr);
        between(&mut c);
        let (sent1, waiting1) = read_duplex(&mut c, hrr)?;
        // A retry: the client answered the first flight with a second ClientHello (type 22,
        // handshake; its 6th byte 1) and is still handshaking.
        let second = [sent1.clone(), waiting1.clone()].concat();
        assert!(c.is_handshaking(), "no HelloRetryRequest");
        assert!(
            second.windows(6).any(|w| w[0] == 22 && w[5] == 1),
            "no second ClientHello"
        );
        s.handle_tls(&[sent1.clone(), waiting1].concat())?;
        let mut flight = Vec::new();
        s.poll_transmit(&mut flight);
        let (sent2, waiting2) = read_duplex(&mut c, flight)?;
        run(&mut c, &mut s, [sent2.clone(), waiting2].concat())?;
        Ok((c, s, sent2))
    };
    let (c, s, _) = step(&nothing)?;
    assert!(c.is_encrypted() && s.is_encrypted(), "{:?}", c.failure());
    let (c, s, sent) = step(&nothing)?;
    assert!(c.is_session_resumed() && c.is_encrypted() && s.is_encrypted());
    if support::is_active("openssl") {
        assert!(!sent.is_empty());
    }
    let (c, s, sent) = step(&|c: &mut SslCore| c.ignore_ssl_error_rules(vec![]))?;
    assert!(
        !c.is_encrypted() && !s.is_encrypted() && sent.is_empty(),
        "{}",
        sent.len()
    );
    Ok(())
}
