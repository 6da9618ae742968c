//! Attacks on session resumption (written by a review that attacked it; the two PSK tests
//! failed on the OpenSSL backend before its client store kept out sessions whose peer
//! showed no certificate). A connection must never end up encrypted (and a peer must never
//! complete its handshake) unless the *current* socket's trust policy accepted the peer; a
//! full handshake or a refusal is fine. Real peers on 127.0.0.1, the
//! active backend (`SSLSOCKET_BACKEND`), TLS 1.2 and TLS 1.3.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sslsocket::backend::SupportedFeature;
use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{
    PauseMode, PeerVerifyMode, SslCertificate, SslConfiguration, SslError, SslErrorKind, SslKey,
    SslOption, SslProtocol, Verdict,
};
use support::trust::ErrorsOnlyHooks;
use support::{os_args, OpensslServer, Pki, PskHooks, PSK, PSK_HEX};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);
const PROTOCOLS: [SslProtocol; 2] = [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3];

/// What one client connection ended with.
#[derive(Debug, Clone, Default)]
struct Client {
    encrypted: bool,
    resumed: bool,
    errors: Vec<SslErrorKind>,
    chain_len: usize,
}

type Setup = Arc<dyn Fn(&mut SslSocket) + Send + Sync>;

fn no_setup() -> Setup {
    Arc::new(|_: &mut SslSocket| {})
}

/// One client connection of a fresh socket of `configuration` to `port`, `setup` applied
/// before connecting; `peer_name` set means `connect_to_host_encrypted_with_peer_name`.
fn client(
    configuration: &SslConfiguration,
    host: &str,
    port: u16,
    peer_name: Option<&str>,
    setup: &Setup,
) -> Client {
    let mut socket = SslSocket::with_configuration(configuration.clone());
    setup(&mut socket);
    drive_client(&mut socket, host, port, peer_name)
}

/// Connects `socket` (maybe again) and reports.
fn drive_client(socket: &mut SslSocket, host: &str, port: u16, peer_name: Option<&str>) -> Client {
    match peer_name {
        Some(name) => socket.connect_to_host_encrypted_with_peer_name(host, port, name),
        None => socket.connect_to_host_encrypted(host, port),
    }
    let encrypted = socket.wait_for_encrypted(WAIT).is_ok();
    if encrypted {
        // Take the tickets (TLS 1.3 sends them after the handshake) and the greeting.
        let _ = socket.wait_for_ready_read(Duration::from_millis(1000));
        let _ = socket.read_all();
    }
    let result = Client {
        encrypted: encrypted || socket.core().was_encrypted(),
        resumed: socket.core().is_session_resumed(),
        errors: socket
            .ssl_handshake_errors()
            .iter()
            .map(SslError::error)
            .collect(),
        chain_len: socket.peer_certificate_chain().len(),
    };
    let _ = socket.disconnect_within(Duration::from_millis(500));
    result
}

/// A server thread: (accepted, resumed) per connection.
type Served = JoinHandle<Vec<(bool, bool)>>;

/// A server thread of `configuration` for `count` connections, each server socket set up
/// by `setup`. Gives (accepted, resumed) per connection.
fn serve(
    listener: TcpListener,
    configuration: SslConfiguration,
    count: usize,
    setup: Setup,
) -> Served {
    thread::spawn(move || {
        let mut results = Vec::new();
        let _ = listener.set_nonblocking(true);
        for _ in 0..count {
            // Bounded: a peer that never comes must not hang the test.
            let deadline = std::time::Instant::now() + WAIT;
            let stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break Some(stream),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if std::time::Instant::now() >= deadline {
                            break None;
                        }
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break None,
                }
            };
            let Some(stream) = stream else {
                break;
            };
            let _ = stream.set_nonblocking(false);
            let Ok(mut socket) = SslSocket::from_tcp_stream(stream, configuration.clone()) else {
                results.push((false, false));
                continue;
            };
            setup(&mut socket);
            if socket.start_server_encryption().is_err() {
                results.push((false, false));
                continue;
            }
            let accepted = socket.wait_for_encrypted(WAIT).is_ok();
            let resumed = socket.core().is_session_resumed();
            if accepted {
                // The tickets went out before this greeting: once the client has read it
                // and closes, it holds them.
                let _ = socket.write_all(b"hello\n");
                let _ = socket.flush();
                let _ = socket.wait_for_disconnected(Duration::from_secs(2));
            }
            results.push((accepted, resumed));
            let _ = socket.disconnect_within(Duration::from_millis(300));
        }
        results
    })
}

fn certificates(ders: &[Vec<u8>]) -> BoxResult<Vec<SslCertificate>> {
    Ok(ders
        .iter()
        .map(|d| SslCertificate::from_der(d))
        .collect::<Result<Vec<_>, _>>()?)
}

/// A test PKI, and a server of a `localhost` leaf over `protocol` on a loopback port for
/// `count` connections.
fn localhost_server(
    protocol: SslProtocol,
    count: usize,
    setup: Setup,
) -> BoxResult<(Pki, u16, Served)> {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = serve(listener, server_of(&leaf, protocol)?, count, setup);
    Ok((pki, port, server))
}

/// A server configuration with `leaf` over `protocol`.
fn server_of(leaf: &support::Issued, protocol: SslProtocol) -> BoxResult<SslConfiguration> {
    let mut server = support::serving(leaf)?;
    server.set_protocol(protocol);
    Ok(server)
}

// ---------------------------------------------------------------------------------------
// 1. Client-side store shared by sockets of one configuration, different policies.
// ---------------------------------------------------------------------------------------

/// A lenient socket's session (to a server whose certificate has errors) is offered to a
/// strict socket of the same configuration: the strict socket must not be encrypted.
fn lenient_then_strict(
    lenient: Setup,
    leaf: impl Fn(&Pki) -> BoxResult<support::Issued>,
    what: &str,
    expect_resumption: bool,
) -> TestResult {
    for protocol in PROTOCOLS {
        let pki = Pki::new()?;
        let leaf = leaf(&pki)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let server = serve(listener, server_of(&leaf, protocol)?, 3, no_setup());
        let configuration = support::trusting(&pki)?;
        let first = client(&configuration, "localhost", port, None, &lenient);
        assert!(
            first.encrypted,
            "{what} {protocol:?}: the lenient socket failed"
        );
        // A second lenient connection shows resumption works here at all.
        let second = client(&configuration, "localhost", port, None, &lenient);
        let strict = client(&configuration, "localhost", port, None, &no_setup());
        let _ = server.join();
        if expect_resumption {
            assert!(
                second.encrypted && second.resumed,
                "{what} {protocol:?}: no resumption at all (the attack tests nothing): {second:?}"
            );
        }
        assert!(
            !strict.encrypted,
            "{what} {protocol:?}: a strict socket was encrypted (resumed: {}, errors {:?}); \
             lenient resumed: {}",
            strict.resumed, strict.errors, second.resumed
        );
    }
    Ok(())
}

fn untrusted(pki: &Pki) -> BoxResult<support::Issued> {
    Ok(pki.untrusted_leaf("localhost", &["localhost"])?)
}

#[test]
fn client_session_of_ignore_all_is_not_resumed_by_a_strict_socket() -> TestResult {
    lenient_then_strict(
        Arc::new(|s: &mut SslSocket| s.ignore_ssl_errors()),
        untrusted,
        "ignore_ssl_errors()",
        true,
    )
}

#[test]
fn client_session_of_a_hook_answering_ignore_is_not_resumed_by_a_strict_socket() -> TestResult {
    lenient_then_strict(
        Arc::new(|s: &mut SslSocket| s.set_hooks(Arc::new(ErrorsOnlyHooks(Verdict::Ignore)))),
        untrusted,
        "hook Ignore",
        // Hooks are asked again in a full handshake: no resumption by design.
        false,
    )
}

#[test]
fn client_session_of_an_ignore_rule_is_not_resumed_by_a_strict_socket() -> TestResult {
    lenient_then_strict(
        Arc::new(|s: &mut SslSocket| {
            s.ignore_ssl_error_rules(
                SslErrorKind::ALL
                    .iter()
                    .map(|k| sslsocket::IgnoreRule::AnyCertificate(*k))
                    .collect(),
            )
        }),
        untrusted,
        "ignore rules",
        true,
    )
}

#[test]
fn client_session_of_a_name_mismatch_ignored_is_not_resumed_by_a_strict_socket() -> TestResult {
    lenient_then_strict(
        Arc::new(|s: &mut SslSocket| s.ignore_ssl_errors()),
        |pki| Ok(pki.leaf("other.example", &["other.example"])?),
        "HostNameMismatch ignored",
        true,
    )
}

/// A paused handshake accepted by the application: its session is stored with its errors,
/// and a strict socket must not resume it.
#[test]
fn client_session_accepted_after_a_pause_is_not_resumed_by_a_strict_socket() -> TestResult {
    for protocol in PROTOCOLS {
        let pki = Pki::new()?;
        let leaf = untrusted(&pki)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let server = serve(listener, server_of(&leaf, protocol)?, 2, no_setup());
        let configuration = support::trusting(&pki)?;
        let mut socket = SslSocket::with_configuration(configuration.clone());
        socket.set_pause_mode(PauseMode::PauseOnSslErrors);
        socket.connect_to_host_encrypted("localhost", port);
        assert!(support::trust::wait_until_paused(&mut socket, WAIT));
        socket.ignore_ssl_errors();
        socket.resume()?;
        socket.wait_for_encrypted(WAIT)?;
        let _ = socket.wait_for_ready_read(Duration::from_millis(300));
        drop(socket);
        let strict = client(&configuration, "localhost", port, None, &no_setup());
        let _ = server.join();
        assert!(
            !strict.encrypted,
            "{protocol:?}: strict socket encrypted (resumed {})",
            strict.resumed
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. Peer verify name / SNI.
// ---------------------------------------------------------------------------------------

/// A clean session for `localhost` (certificate for `localhost` only), then a socket of
/// the same configuration that verifies another name: 127.0.0.1 (no IP SAN), a name with
/// other case, a trailing dot, and a name the certificate does not hold. Only names the
/// certificate holds may end up encrypted; a resumed connection must report errors when
/// a full handshake would.
#[test]
fn client_session_is_not_resumed_under_another_verify_name() -> TestResult {
    for protocol in PROTOCOLS {
        let pki = Pki::new()?;
        let leaf = pki.leaf("localhost", &["localhost"])?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let cases: [(&str, Option<&str>, bool); 6] = [
            ("localhost", None, true),
            ("127.0.0.1", None, false),
            ("localhost", Some("other.example"), false),
            ("127.0.0.1", Some("LOCALHOST"), true),
            ("127.0.0.1", Some("localhost."), true),
            ("localhost", Some("127.0.0.1"), false),
        ];
        let server = serve(
            listener,
            server_of(&leaf, protocol)?,
            cases.len() + 1,
            no_setup(),
        );
        let configuration = support::trusting(&pki)?;
        let first = client(&configuration, "localhost", port, None, &no_setup());
        assert!(first.encrypted);
        let mut failures = Vec::new();
        for (host, name, allowed) in cases {
            let got = client(&configuration, host, port, name, &no_setup());
            if got.encrypted && !allowed {
                failures.push(format!(
                    "{protocol:?} {host} / {name:?}: encrypted (resumed {})",
                    got.resumed
                ));
            }
        }
        let _ = server.join();
        assert!(failures.is_empty(), "{failures:#?}");
    }
    Ok(())
}

/// A session of a lenient socket that verified `other.example` (mismatch ignored) is
/// stored under that name; a strict socket verifying `other.example` must not resume it.
#[test]
fn client_session_of_a_verify_name_with_ignored_mismatch_is_not_resumed_strictly() -> TestResult {
    for protocol in PROTOCOLS {
        let (pki, port, server) = localhost_server(protocol, 3, no_setup())?;
        let configuration = support::trusting(&pki)?;
        let ignore = SslError::new(SslErrorKind::HostNameMismatch);
        let lenient: Setup = Arc::new(move |s: &mut SslSocket| {
            s.ignore_ssl_error_rules(vec![sslsocket::IgnoreRule::AnyCertificate(ignore.error())]);
        });
        let first = client(
            &configuration,
            "localhost",
            port,
            Some("other.example"),
            &lenient,
        );
        assert!(first.encrypted, "{protocol:?}: {:?}", first.errors);
        let _ = client(
            &configuration,
            "localhost",
            port,
            Some("other.example"),
            &lenient,
        );
        let strict = client(
            &configuration,
            "localhost",
            port,
            Some("other.example"),
            &no_setup(),
        );
        let _ = server.join();
        assert!(
            !strict.encrypted,
            "{protocol:?}: resumed {}",
            strict.resumed
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 1b. Across configurations: pins, CA set, verify mode set on a clone.
// ---------------------------------------------------------------------------------------

/// A clean session of configuration C; a clone of C with pins that the server's key does
/// not match (set on the socket before connecting) must not be encrypted.
#[test]
fn client_session_is_not_resumed_by_a_clone_with_mismatching_pins() -> TestResult {
    for protocol in PROTOCOLS {
        let (pki, port, server) = localhost_server(protocol, 3, no_setup())?;
        let configuration = support::trusting(&pki)?;
        assert!(client(&configuration, "localhost", port, None, &no_setup()).encrypted);
        let pinned: Setup = Arc::new(|s: &mut SslSocket| {
            if let Ok(c) = s.configuration_mut() {
                c.set_pinned_public_keys(vec![[7u8; 32]]);
            }
        });
        let got = client(&configuration, "localhost", port, None, &pinned);
        // And a clone trusting nothing at all, verify mode set on the socket.
        let untrusting: Setup = Arc::new(|s: &mut SslSocket| {
            if let Ok(c) = s.configuration_mut() {
                c.set_ca_certificates(Vec::new());
            }
            let _ = s.set_peer_verify_mode(PeerVerifyMode::VerifyPeer);
        });
        let got2 = client(&configuration, "localhost", port, None, &untrusting);
        let _ = server.join();
        assert!(!got.encrypted, "{protocol:?} pins: resumed {}", got.resumed);
        assert!(
            !got2.encrypted,
            "{protocol:?} no CA: resumed {}",
            got2.resumed
        );
    }
    Ok(())
}

/// A `VerifyNone` configuration's session; the same configuration value switched back to
/// `VerifyPeer` on the socket (a copy-on-write change) must verify again.
#[test]
fn client_session_of_verify_none_is_not_resumed_after_switching_to_verify_peer() -> TestResult {
    for protocol in PROTOCOLS {
        let pki = Pki::new()?;
        let leaf = untrusted(&pki)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let server = serve(listener, server_of(&leaf, protocol)?, 2, no_setup());
        let mut configuration = support::trusting(&pki)?;
        configuration.set_peer_verify_mode(PeerVerifyMode::VerifyNone);
        assert!(client(&configuration, "localhost", port, None, &no_setup()).encrypted);
        let strict: Setup = Arc::new(|s: &mut SslSocket| {
            let _ = s.set_peer_verify_mode(PeerVerifyMode::VerifyPeer);
        });
        let got = client(&configuration, "localhost", port, None, &strict);
        let _ = server.join();
        assert!(!got.encrypted, "{protocol:?}: resumed {}", got.resumed);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 5. Reconnects of one socket object.
// ---------------------------------------------------------------------------------------

/// One socket: first connection with every error ignored, second without: the second must
/// fail (the ignore list holds for one connection, and the session of the first must not
/// carry it over).
#[test]
fn a_socket_reconnecting_without_its_ignore_list_does_not_resume_the_lenient_session() -> TestResult
{
    for protocol in PROTOCOLS {
        let pki = Pki::new()?;
        let leaf = untrusted(&pki)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let server = serve(listener, server_of(&leaf, protocol)?, 3, no_setup());
        let configuration = support::trusting(&pki)?;
        let mut socket = SslSocket::with_configuration(configuration);
        socket.ignore_ssl_errors();
        let first = drive_client(&mut socket, "localhost", port, None);
        assert!(first.encrypted);
        let second = drive_client(&mut socket, "localhost", port, None);
        let third = drive_client(&mut socket, "localhost", port, None);
        let _ = server.join();
        assert!(
            !second.encrypted && !third.encrypted,
            "{protocol:?}: reconnect encrypted: {second:?} {third:?}"
        );
    }
    Ok(())
}

/// One socket: first connection paused and then aborted (refused), second connection with
/// a hook that answers Abort: must fail, and never resume anything from the first.
#[test]
fn a_socket_reconnecting_after_an_abort_while_paused_resumes_nothing() -> TestResult {
    for protocol in PROTOCOLS {
        let pki = Pki::new()?;
        let leaf = untrusted(&pki)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let server = serve(listener, server_of(&leaf, protocol)?, 2, no_setup());
        let configuration = support::trusting(&pki)?;
        let mut socket = SslSocket::with_configuration(configuration);
        socket.set_pause_mode(PauseMode::PauseOnSslErrors);
        socket.connect_to_host_encrypted("localhost", port);
        assert!(support::trust::wait_until_paused(&mut socket, WAIT));
        socket.abort();
        socket.set_pause_mode(PauseMode::PauseNever);
        let second = drive_client(&mut socket, "localhost", port, None);
        let _ = server.join();
        assert!(!second.encrypted, "{protocol:?}: {second:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// PSK (OpenSSL backend): a session authenticated by a pre-shared key, no certificate.
// ---------------------------------------------------------------------------------------

/// A socket with a PSK hook talks to a PSK-only server (no certificate at all) and gets a
/// session; another socket of the same configuration has no PSK hook and demands a
/// verified certificate (`VerifyPeer`, the client default). It must not end up encrypted
/// with that server: it never verified a certificate and holds no key.
#[test]
fn a_psk_session_is_not_resumed_by_a_socket_without_the_key() -> TestResult {
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
        let pki = Pki::new()?;
        let configuration = support::trusting(&pki)?;
        // The key authenticates the server (no certificate): the socket says so by
        // ignoring NoPeerCertificate (Qt's simplePskConnect), a socket-level setting that
        // keeps the configuration's session store the same.
        let psk: Setup = Arc::new(|s: &mut SslSocket| {
            s.set_hooks(PskHooks::new(b"client1", &PSK));
            s.ignore_ssl_errors_list(&[SslError::new(SslErrorKind::NoPeerCertificate)]);
        });
        let first = client(&configuration, "localhost", server.port(), None, &psk);
        assert!(first.encrypted, "{protocol:?}: the PSK socket failed");
        // Control: a socket without the key and without a session cannot connect.
        let mut fresh = configuration.clone();
        fresh.set_ssl_option(SslOption::SslOptionDisableSessionTickets, true);
        let control = client(&fresh, "localhost", server.port(), None, &no_setup());
        assert!(
            !control.encrypted,
            "{protocol:?}: control connected without a key"
        );
        let strict = client(
            &configuration,
            "localhost",
            server.port(),
            None,
            &no_setup(),
        );
        if strict.encrypted {
            failures.push(format!(
                "{protocol:?}: a socket without the pre-shared key (VerifyPeer) was encrypted \
                 with a certificate-less server: resumed {}, errors {:?}, chain {}",
                strict.resumed, strict.errors, strict.chain_len
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. Server side: stores, tickets across configurations and sockets, eviction.
// ---------------------------------------------------------------------------------------

/// A server thread of `configuration`, one connection per setup (in order). Gives
/// (accepted, resumed) per connection.
fn serve_each(
    listener: TcpListener,
    configuration: SslConfiguration,
    setups: Vec<Setup>,
) -> JoinHandle<Vec<(bool, bool)>> {
    thread::spawn(move || {
        let mut results = Vec::new();
        for setup in setups {
            // A listener that cannot be shared ends the serving: its connections are
            // then missing from the results, which the caller checks.
            let Ok(shared) = listener.try_clone() else {
                break;
            };
            let handle = serve(shared, configuration.clone(), 1, setup);
            results.extend(handle.join().unwrap_or_default());
        }
        results
    })
}

/// A client configuration presenting `issued` (its whole chain when `full`, else the leaf).
fn presenting(pki: &Pki, issued: &support::Issued, full: bool) -> BoxResult<SslConfiguration> {
    let mut client = support::trusting(pki)?;
    let ders = if full {
        issued.chain_der.clone()
    } else {
        issued.chain_der.get(..1).unwrap_or_default().to_vec()
    };
    client
        .set_local_certificate_chain(certificates(&ders)?)
        .set_private_key(SslKey::from_der(&issued.key_der)?);
    Ok(client)
}

/// Whether a client completed a handshake its server refused in a way the server could
/// have prevented: any TLS 1.2 one (the server's Finished comes last in a full handshake),
/// a resumed TLS 1.3 one (the server's Finished comes first); a full TLS 1.3 client
/// completes before the server has seen its certificate, by the protocol.
fn completed_refused(protocol: SslProtocol, c: &Client) -> bool {
    c.encrypted && (protocol == SslProtocol::TlsV1_2 || c.resumed)
}

fn verifying_server(pki: &Pki, protocol: SslProtocol) -> BoxResult<SslConfiguration> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server = server_of(&leaf, protocol)?;
    server
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    Ok(server)
}

fn strict() -> Setup {
    no_setup()
}

fn ignore_all() -> Setup {
    Arc::new(|s: &mut SslSocket| s.ignore_ssl_errors())
}

/// A client with an untrusted certificate is accepted by a server socket that ignores all
/// errors (twice: the second resumes), then meets a strict socket of the same
/// configuration: refused, and never encrypted on the client's side.
#[test]
fn server_ticket_of_an_ignore_all_socket_is_not_resumed_by_a_strict_socket() -> TestResult {
    for protocol in PROTOCOLS {
        let pki = Pki::new()?;
        let server = verifying_server(&pki, protocol)?;
        let client_cert = pki.client_cert(false)?;
        let client_config = presenting(&pki, &client_cert, true)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let served = serve_each(listener, server, vec![ignore_all(), ignore_all(), strict()]);
        let a = client(&client_config, "localhost", port, None, &no_setup());
        let b = client(&client_config, "localhost", port, None, &no_setup());
        let c = client(&client_config, "localhost", port, None, &no_setup());
        let results = served.join().map_err(|_| "server thread panicked")?;
        assert!(
            a.encrypted && b.encrypted,
            "{protocol:?}: lenient sockets: {results:?}"
        );
        assert!(
            results.get(1).is_some_and(|r| r.1),
            "{protocol:?}: the lenient socket did not resume (the attack tests nothing): {results:?}"
        );
        assert_eq!(
            results.get(2).map(|r| r.0),
            Some(false),
            "{protocol:?}: {results:?}"
        );
        assert!(
            !completed_refused(protocol, &c),
            "{protocol:?}: client completed a refused handshake: {c:?}"
        );
    }
    Ok(())
}

/// A ticket issued by server configuration A (QueryPeer, or VerifyPeer trusting the
/// client's CA) presented to server configuration B in the same process (VerifyPeer, not
/// trusting it): B must not resume it.
#[test]
fn server_ticket_of_configuration_a_is_not_resumed_by_configuration_b() -> TestResult {
    for protocol in PROTOCOLS {
        let pki = Pki::new()?;
        let client_cert = pki.client_cert(false)?;
        let client_config = presenting(&pki, &client_cert, true)?;
        let strict_b = verifying_server(&pki, protocol)?;
        let query_a = {
            let mut a = strict_b.clone();
            a.set_peer_verify_mode(PeerVerifyMode::QueryPeer);
            a
        };
        let trusting_a = {
            let mut a = strict_b.clone();
            a.set_ca_certificates(vec![SslCertificate::from_der(pki.untrusted_root_der())?]);
            a
        };
        for (name, a) in [("QueryPeer", query_a), ("other CA", trusting_a)] {
            let la = TcpListener::bind("127.0.0.1:0")?;
            let lb = TcpListener::bind("127.0.0.1:0")?;
            let (pa, pb) = (la.local_addr()?.port(), lb.local_addr()?.port());
            let sa = serve(la, a, 2, no_setup());
            let sb = serve(lb, strict_b.clone(), 1, no_setup());
            let first = client(&client_config, "localhost", pa, None, &no_setup());
            let again = client(&client_config, "localhost", pa, None, &no_setup());
            let other = client(&client_config, "localhost", pb, None, &no_setup());
            let ra = sa.join().map_err(|_| "panic")?;
            let rb = sb.join().map_err(|_| "panic")?;
            assert!(
                first.encrypted && again.encrypted,
                "{protocol:?} {name}: {ra:?}"
            );
            assert_eq!(
                rb.first().map(|r| r.0),
                Some(false),
                "{protocol:?} {name}: {rb:?}"
            );
            assert!(
                !completed_refused(protocol, &other),
                "{protocol:?} {name}: {other:?} {rb:?}"
            );
        }
    }
    Ok(())
}

/// The server's store filled beyond its capacity (rustls: 256 sessions; OpenSSL: the
/// ticket is stateless, its record of accepted clients is what fills) after a lenient
/// socket accepted an untrusted client: that client's ticket must fail closed at a strict
/// socket (refused, the client never encrypted) and is not resumed by a lenient one.
#[test]
fn server_store_eviction_fails_closed() -> TestResult {
    for protocol in PROTOCOLS {
        let pki = Pki::new()?;
        let server = verifying_server(&pki, protocol)?;
        let victim = presenting(&pki, &pki.client_cert(false)?, true)?;
        // Fillers: distinct trusted client certificates (the OpenSSL record is per
        // certificate and holds 1024). The rustls server store keeps 256 sessions in 8
        // shards of 32, chosen by random keys: 300 fillers left the victim's shard with
        // fewer than 32 newer sessions about one time in six (its session was then still
        // there for the lenient socket to resume, rightly); 640 leave that to chance
        // about once in ten million.
        let fillers = if support::active_backend() == "openssl" {
            1040
        } else {
            640
        };
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let mut setups = vec![ignore_all()];
        setups.extend((0..fillers).map(|_| no_setup()));
        setups.push(strict());
        setups.push(ignore_all());
        let served = serve_each(listener, server, setups);
        assert!(client(&victim, "localhost", port, None, &no_setup()).encrypted);
        for i in 0..fillers {
            let name = format!("filler{i}");
            let leaf = pki.issue(&support::LeafSpec {
                eku: support::Eku::ClientOnly,
                ..support::LeafSpec::new(&name, &[])
            })?;
            let filler = presenting(&pki, &leaf, true)?;
            let got = client(&filler, "localhost", port, None, &no_setup());
            assert!(got.encrypted, "{protocol:?}: filler {i} refused");
        }
        let at_strict = client(&victim, "localhost", port, None, &no_setup());
        let at_lenient = client(&victim, "localhost", port, None, &no_setup());
        let results = served.join().map_err(|_| "panic")?;
        let n = results.len();
        assert!(
            !completed_refused(protocol, &at_strict),
            "{protocol:?}: {at_strict:?}"
        );
        assert_eq!(results.get(n - 2).map(|r| r.0), Some(false), "{protocol:?}");
        assert!(at_lenient.encrypted, "{protocol:?}: {at_lenient:?}");
        assert_eq!(
            results.get(n - 1).map(|r| r.1),
            Some(false),
            "{protocol:?}: a lenient socket resumed an evicted session"
        );
    }
    Ok(())
}

/// `openssl s_client` with the leaf alone (an error: its issuer unknown) is accepted by a
/// server socket ignoring errors and saves the session (-sess_out); the same client then
/// resumes it (-sess_in) at a strict socket: s_client must never report a resumed,
/// completed handshake the server refused.
#[test]
fn an_s_client_ticket_of_a_lenient_socket_never_completes_at_a_strict_socket() -> TestResult {
    use std::process::{Command, Stdio};
    for (protocol, flag) in [
        (SslProtocol::TlsV1_2, "-tls1_2"),
        (SslProtocol::TlsV1_3, "-tls1_3"),
    ] {
        let pki = Pki::new()?;
        let server = verifying_server(&pki, protocol)?;
        let leaf = pki.issue(&support::LeafSpec {
            eku: support::Eku::ClientOnly,
            ..support::LeafSpec::new("client", &[])
        })?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let served = serve_each(listener, server, vec![ignore_all(), strict()]);
        let sess = pki.dir.path().join("sess.pem");
        let run = |sess_arg: &str| -> BoxResult<String> {
            let out = Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &format!("127.0.0.1:{port}"),
                    flag,
                    "-ign_eof",
                ])
                .arg("-cert")
                .arg(&leaf.cert_pem)
                .arg("-key")
                .arg(&leaf.key_pem)
                .arg("-CAfile")
                .arg(pki.root_pem())
                .arg(sess_arg)
                .arg(&sess)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()?;
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let _first = run("-sess_out")?;
        let second = run("-sess_in")?;
        let results = served.join().map_err(|_| "panic")?;
        assert_eq!(results.first().map(|r| r.0), Some(true), "{protocol:?}");
        let refused = results.get(1).map(|r| r.0) == Some(false);
        assert!(
            refused,
            "{protocol:?}: the strict socket accepted: {results:?}"
        );
        assert!(
            !second.contains("Reused,"),
            "{protocol:?}: the strict socket refused, but s_client resumed:\n{second}"
        );
    }
    Ok(())
}

/// OpenSSL backend: a `VerifyPeer` server whose first socket has a PSK hook (and ignores
/// the missing certificate) serves `s_client -psk` and issues a ticket; the same client
/// resumes with that ticket (no PSK) at a strict socket of the same configuration: the
/// strict socket must refuse, and s_client must not complete a resumed handshake.
#[test]
fn a_psk_ticket_is_not_resumed_by_a_strict_server_socket() -> TestResult {
    use std::process::{Command, Stdio};
    if support::lacks(SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let mut server = verifying_server(&pki, SslProtocol::TlsV1_3)?;
    server.set_ciphers_str("TLS_AES_128_GCM_SHA256")?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let psk: Setup = Arc::new(|s: &mut SslSocket| {
        s.set_hooks(PskHooks::new(b"client1", &PSK));
        s.ignore_ssl_errors_list(&[SslError::new(SslErrorKind::NoPeerCertificate)]);
    });
    let served = serve_each(listener, server, vec![psk, strict()]);
    let sess = pki.dir.path().join("psk-sess.pem");
    let run = |extra: &[&str]| -> BoxResult<String> {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-tls1_3",
                "-ign_eof",
            ])
            .args(extra)
            .arg("-CAfile")
            .arg(pki.root_pem())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let sess_path = sess.to_string_lossy().into_owned();
    let _first = run(&[
        "-psk",
        PSK_HEX,
        "-psk_identity",
        "client1",
        "-sess_out",
        &sess_path,
    ])?;
    let second = run(&["-sess_in", &sess_path])?;
    let results = served.join().map_err(|_| "panic")?;
    eprintln!("PSK ticket: {results:?}\n{second}");
    assert_eq!(
        results.first().map(|r| r.0),
        Some(true),
        "PSK socket: {results:?}"
    );
    assert_eq!(
        results.get(1).map(|r| r.0),
        Some(false),
        "strict socket: {results:?}"
    );
    assert!(!second.contains("Reused,"), "{second}");
    Ok(())
}

/// The same hole with the process's default configuration (every `SslSocket::new()`
/// shares its session store) and our own OpenSSL server (certificate + PSK hook, TLS 1.3):
/// one socket with a PSK hook, then a plain `SslSocket::new()` to the same name. The
/// server's certificate is not trusted by the default configuration (system CAs), so a
/// full handshake refuses it (control); the resumed PSK session must be refused too.
#[test]
fn a_psk_session_of_the_default_configuration_is_not_resumed_by_a_plain_socket() -> TestResult {
    if support::lacks(SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server = server_of(&leaf, SslProtocol::TlsV1_3)?;
    server.set_ciphers_str("TLS_AES_128_GCM_SHA256")?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let psk_server: Setup =
        Arc::new(|s: &mut SslSocket| s.set_hooks(PskHooks::new(b"client1", &PSK)));
    let served = serve_each(
        listener,
        server,
        vec![no_setup(), psk_server.clone(), psk_server],
    );
    // Control: a plain socket, no session yet: the untrusted certificate is refused.
    let mut control = SslSocket::new();
    let control = drive_client(&mut control, "localhost", port, None);
    assert!(!control.encrypted, "control: {control:?}");
    // A socket with the key.
    let mut keyed = SslSocket::new();
    keyed.set_hooks(PskHooks::new(b"client1", &PSK));
    // The key authenticates the server (Qt's simplePskConnect: ignore NoPeerCertificate).
    keyed.ignore_ssl_errors_list(&[SslError::new(SslErrorKind::NoPeerCertificate)]);
    let keyed = drive_client(&mut keyed, "localhost", port, None);
    assert!(keyed.encrypted, "PSK socket: {keyed:?}");
    // A plain socket again.
    let mut plain = SslSocket::new();
    let plain = drive_client(&mut plain, "localhost", port, None);
    let results = served.join().map_err(|_| "panic")?;
    assert!(
        !plain.encrypted,
        "a plain default socket (VerifyPeer, system CAs, no key) was encrypted with a server \
         it refuses in a full handshake: {plain:?}; server: {results:?}"
    );
    Ok(())
}
