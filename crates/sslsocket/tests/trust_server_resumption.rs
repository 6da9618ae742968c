//! A server resumes a client's session only when the socket's policy accepts the client's
//! original outcome, as the rustls backend's store does: otherwise a full handshake runs
//! and asks the verification, hooks and pause again. Found by round 28's review on the
//! OpenSSL backend, where OpenSSL resumed from its cache or a ticket without asking, sent
//! the Finished that completes the client's handshake, and only then did the core refuse.
//! Real peers on 127.0.0.1, our own sockets on both sides (active backend).

mod support;

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{
    PeerVerifyMode, SslConfiguration, SslError, SslErrorKind, SslHooks, SslOption, SslProtocol,
    Verdict,
};
use support::Pki;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// One connection: `client` (a fresh socket of this configuration) to one server socket
/// adopted from `listener`, set up by `setup`. Returns (server accepted, client encrypted,
/// server resumed).
fn connect(
    listener: &TcpListener,
    server: &SslConfiguration,
    client: &SslConfiguration,
    setup: impl FnOnce(&mut SslSocket) + Send + 'static,
) -> Result<(bool, bool, bool), Box<dyn std::error::Error>> {
    let port = listener.local_addr()?.port();
    let client = client.clone();
    let client_thread = thread::spawn(move || {
        let mut socket = SslSocket::with_configuration(client);
        socket.connect_to_host_encrypted("localhost", port);
        let ok = socket.wait_for_encrypted(WAIT).is_ok();
        // Take the tickets.
        let _ = socket.wait_for_ready_read(Duration::from_millis(300));
        ok || socket.core().was_encrypted()
    });
    let (stream, _) = listener.accept()?;
    let mut socket = SslSocket::from_tcp_stream(stream, server.clone())?;
    setup(&mut socket);
    socket.start_server_encryption()?;
    let accepted = socket.wait_for_encrypted(WAIT).is_ok();
    let resumed = socket.core().is_session_resumed();
    if accepted {
        // Let the client read its tickets before we close.
        thread::sleep(Duration::from_millis(100));
    }
    let encrypted = client_thread.join().map_err(|_| "client thread panicked")?;
    drop(socket);
    Ok((accepted, encrypted, resumed))
}

fn server_config(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server = support::serving(&leaf)?;
    server.set_peer_verify_mode(PeerVerifyMode::VerifyPeer);
    server.set_ca_certificates(vec![sslsocket::SslCertificate::from_der(pki.root_der())?]);
    Ok(server)
}

/// A certificate-less client accepted once by a lenient socket (NoPeerCertificate
/// ignored) holds a ticket. Any other certificate-less client refused by a strict socket
/// of the same configuration must not make that ticket resumable by a strict socket.
#[test]
fn a_certificate_less_ticket_is_not_accepted_by_a_strict_server_after_another_refusal() -> TestResult
{
    let pki = Pki::new()?;
    let server = server_config(&pki)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let anonymous = support::trusting(&pki)?;
    // Another anonymous client with its own session store (no ticket to resume).
    let mut other = support::trusting(&pki)?;
    other.set_ssl_option(SslOption::SslOptionDisableSessionTickets, true);

    // 1. Lenient socket: the anonymous client is accepted, gets a ticket.
    let (accepted, _, _) = connect(&listener, &server, &anonymous, |s| {
        s.ignore_ssl_errors_list(&[SslError::new(SslErrorKind::NoPeerCertificate)]);
    })?;
    assert!(accepted, "the lenient socket refused the anonymous client");

    // Control: a strict socket refuses the anonymous client's resumption now.
    let (accepted, _, _) = connect(&listener, &server, &anonymous, |_| {})?;
    assert!(
        !accepted,
        "a strict socket accepted a certificate-less client (control)"
    );
    // The control refused its own connection; connect once more through the lenient
    // socket so the anonymous client holds a fresh ticket.
    let (accepted, _, _) = connect(&listener, &server, &anonymous, |s| {
        s.ignore_ssl_errors_list(&[SslError::new(SslErrorKind::NoPeerCertificate)]);
    })?;
    assert!(accepted);

    // 2. Some other certificate-less client, refused by a strict socket.
    let (accepted, _, _) = connect(&listener, &server, &other, |_| {})?;
    assert!(!accepted);

    // 3. The first anonymous client resumes against a strict socket: it must be refused.
    let (accepted, _, resumed) = connect(&listener, &server, &anonymous, |_| {})?;
    assert!(
        !accepted,
        "a VerifyPeer server socket accepted a certificate-less client (resumed: {resumed})"
    );
    Ok(())
}

struct IgnoreAll;
impl SslHooks for IgnoreAll {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        Verdict::Ignore
    }
}

/// A server whose hook accepted a client certificate with errors: the next connection of
/// that client must not end with the client encrypted while the server refused it
/// (TLS 1.2: the server's Finished of a resumed handshake completes it for the client).
#[test]
fn a_server_never_completes_a_resumed_handshake_it_then_refuses() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        a_server_never_completes_a_resumed_handshake_it_then_refuses_over(protocol)?;
    }
    Ok(())
}

fn a_server_never_completes_a_resumed_handshake_it_then_refuses_over(
    protocol: SslProtocol,
) -> TestResult {
    let pki = Pki::new()?;
    let mut server = server_config(&pki)?;
    server.set_protocol(protocol);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let untrusted = pki.issue(&support::LeafSpec {
        issued_by: support::IssuedBy::UntrustedRoot,
        ..support::LeafSpec::new("client", &["client"])
    })?;
    let mut client = support::trusting(&pki)?;
    client
        .set_local_certificate_chain(
            untrusted
                .chain_der
                .iter()
                .map(|d| sslsocket::SslCertificate::from_der(d))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .set_private_key(sslsocket::SslKey::from_der(&untrusted.key_der)?);
    let hooks: Arc<dyn SslHooks> = Arc::new(IgnoreAll);
    for round in 0..3 {
        let hooks = Arc::clone(&hooks);
        let (accepted, encrypted, resumed) =
            connect(&listener, &server, &client, move |s| s.set_hooks(hooks))?;
        assert!(
            accepted || !encrypted,
            "{protocol:?} round {round}: the server refused (resumed: {resumed}) but the client \
             completed its handshake"
        );
        assert!(
            accepted,
            "{protocol:?} round {round}: the hook accepts this client (resumed: {resumed})"
        );
    }
    Ok(())
}

/// The same client leaf seen clean ([leaf, intermediate]) and then with errors ([leaf]
/// alone, accepted by a hook): the errors are merged into its record, so a strict socket
/// must not resume the clean session by its id (OpenSSL's session-id cache resumed it
/// without asking, sent the Finished, then the core refused).
#[test]
fn a_session_id_of_a_client_whose_record_gained_errors_is_not_resumed() -> TestResult {
    let ids = SessionIds::new()?;
    // 1. Clean: accepted by a strict socket.
    ids.clean_client_accepted()?;
    // 2. The same leaf without its intermediate: errors, accepted by a lenient socket.
    let hooks: Arc<dyn SslHooks> = Arc::new(IgnoreAll);
    let (accepted, _, _) = connect(&ids.listener, &ids.server, &ids.bare, move |s| {
        s.set_hooks(hooks)
    })?;
    assert!(accepted, "the hook accepts the bare chain");
    // 3. The first client again, against a strict socket.
    ids.clean_client_never_completes_a_refused_handshake()
}

/// The same leaf refused once (the verification refuses, its clean record stays): the
/// earlier clean session is judged on that record.
#[test]
fn a_session_id_of_a_client_refused_once_is_still_judged_on_its_own_record() -> TestResult {
    let ids = SessionIds::new()?;
    ids.clean_client_accepted()?;
    // The same leaf without its intermediate, refused by a strict socket.
    let (accepted, _, _) = connect(&ids.listener, &ids.server, &ids.bare, |_| {})?;
    assert!(!accepted);
    ids.clean_client_never_completes_a_refused_handshake()
}

/// The same leaf paused on and aborted (its record dropped): the earlier clean session
/// must not be resumed by its id without a record.
#[test]
fn a_session_id_of_a_client_aborted_while_paused_is_not_resumed() -> TestResult {
    let ids = SessionIds::new()?;
    ids.clean_client_accepted()?;
    // The same leaf without its intermediate: the server pauses, then aborts.
    let port = ids.listener.local_addr()?.port();
    let bare2 = ids.bare.clone();
    let t = thread::spawn(move || {
        let mut socket = SslSocket::with_configuration(bare2);
        socket.connect_to_host_encrypted("localhost", port);
        let _ = socket.wait_for_encrypted(Duration::from_secs(3));
    });
    let (stream, _) = ids.listener.accept()?;
    let mut socket = SslSocket::from_tcp_stream(stream, ids.server.clone())?;
    socket.set_pause_mode(sslsocket::PauseMode::PauseOnSslErrors);
    socket.start_server_encryption()?;
    let _ = socket.wait_for_encrypted(Duration::from_secs(1));
    assert!(socket.is_paused(), "{:?}", socket.core().phase());
    socket.abort();
    drop(socket);
    let _ = t.join();
    ids.clean_client_never_completes_a_refused_handshake()
}

/// The default server configuration (tickets on) and `openssl s_client -no_ticket`, which
/// asks for TLS 1.2 session-id resumption: never a resumed handshake the server then
/// refuses.
#[test]
fn an_openssl_s_client_resuming_by_session_id_never_completes_a_handshake_the_server_refuses(
) -> TestResult {
    use std::process::{Command, Stdio};
    let pki = Pki::new()?;
    let mut server = server_config(&pki)?;
    server.set_protocol(SslProtocol::TlsV1_2);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let leaf = pki.issue(&support::LeafSpec {
        issued_by: support::IssuedBy::Intermediate,
        ..support::LeafSpec::new("client", &["client"])
    })?;
    let sess = pki.dir.path().join("sess.pem");
    let s_client = |chain: bool, sess_arg: &str| -> std::io::Result<std::process::Child> {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_2",
            "-no_ticket",
        ])
        .arg("-cert")
        .arg(&leaf.cert_pem)
        .arg("-key")
        .arg(&leaf.key_pem)
        .arg("-CAfile")
        .arg(pki.root_pem());
        if chain {
            if let Some(intermediates) = &leaf.intermediates_pem {
                cmd.arg("-cert_chain").arg(intermediates);
            }
        }
        if !sess_arg.is_empty() {
            cmd.arg(sess_arg).arg(&sess);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn()
    };
    // One server socket for the next connection, if one comes within WAIT (an s_client
    // that gives up before connecting must not hang the test).
    listener.set_nonblocking(true)?;
    let serve =
        |setup: &dyn Fn(&mut SslSocket)| -> Result<Option<bool>, Box<dyn std::error::Error>> {
            let deadline = std::time::Instant::now() + WAIT;
            let stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if std::time::Instant::now() >= deadline {
                            return Ok(None);
                        }
                        thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            stream.set_nonblocking(false)?;
            let mut socket = SslSocket::from_tcp_stream(stream, server.clone())?;
            setup(&mut socket);
            socket.start_server_encryption()?;
            let ok = socket.wait_for_encrypted(WAIT).is_ok();
            thread::sleep(Duration::from_millis(200));
            Ok(Some(ok))
        };
    let c = s_client(true, "-sess_out")?;
    assert_eq!(serve(&|_| {})?, Some(true), "clean client refused");
    let first = c.wait_with_output()?;
    let first = String::from_utf8_lossy(&first.stdout).into_owned();
    let c = s_client(false, "")?;
    let hooks: Arc<dyn SslHooks> = Arc::new(IgnoreAll);
    assert_eq!(
        serve(&move |s| s.set_hooks(Arc::clone(&hooks)))?,
        Some(true)
    );
    let _ = c.wait_with_output()?;
    if !sess.exists() {
        // s_client writes no session when the server gave none to resume by id: the
        // server keeps no session-id cache (an empty `Session-ID:`).
        assert!(
            first.lines().any(|l| l.trim() == "Session-ID:"),
            "no session written, yet the server gave a session id:\n{first}"
        );
        return Ok(());
    }
    let c = s_client(true, "-sess_in")?;
    let accepted = serve(&|_| {})?;
    let out = c.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reused = stdout.contains("Reused,");
    assert!(
        accepted == Some(true) || !reused,
        "the server refused, but s_client completed a resumed handshake:\n{stdout}"
    );
    Ok(())
}

/// A TLS 1.2 server without tickets (session ids only, where OpenSSL keeps them) and one
/// client certificate (under the intermediate) as two clients: `full` sends its chain
/// (clean), `bare` the leaf alone (an error: its issuer is unknown).
struct SessionIds {
    _pki: Pki,
    server: SslConfiguration,
    listener: TcpListener,
    full: SslConfiguration,
    bare: SslConfiguration,
}

impl SessionIds {
    fn new() -> Result<SessionIds, Box<dyn std::error::Error>> {
        let pki = Pki::new()?;
        let mut server = server_config(&pki)?;
        server.set_protocol(SslProtocol::TlsV1_2);
        server.set_ssl_option(SslOption::SslOptionDisableSessionTickets, true);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let leaf = pki.issue(&support::LeafSpec {
            issued_by: support::IssuedBy::Intermediate,
            ..support::LeafSpec::new("client", &["client"])
        })?;
        let with_chain =
            |ders: &[Vec<u8>]| -> Result<SslConfiguration, Box<dyn std::error::Error>> {
                let mut client = support::trusting(&pki)?;
                client
                    .set_local_certificate_chain(
                        ders.iter()
                            .map(|d| sslsocket::SslCertificate::from_der(d))
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                    .set_private_key(sslsocket::SslKey::from_der(&leaf.key_der)?);
                Ok(client)
            };
        let full = with_chain(&leaf.chain_der)?;
        let bare = with_chain(leaf.chain_der.get(..1).unwrap_or_default())?;
        Ok(SessionIds {
            _pki: pki,
            server,
            listener,
            full,
            bare,
        })
    }

    /// The clean client, accepted by a strict socket: its session is made.
    fn clean_client_accepted(&self) -> TestResult {
        let (accepted, encrypted, _) = connect(&self.listener, &self.server, &self.full, |_| {})?;
        assert!(accepted && encrypted, "clean client refused");
        Ok(())
    }

    /// The clean client again, against a strict socket: whether it resumes or not, never
    /// a handshake completed for it that the server then refused.
    fn clean_client_never_completes_a_refused_handshake(&self) -> TestResult {
        let (accepted, encrypted, resumed) =
            connect(&self.listener, &self.server, &self.full, |_| {})?;
        assert!(
            accepted || !encrypted,
            "the server refused (resumed: {resumed}) but the client completed its handshake"
        );
        Ok(())
    }
}
