//! Round 37 review (UNSAFE): the FFI of `sslsocket-openssl-ext`, whose every function is
//! promised "safe to call with any arguments". Needs the `openssl` feature (the crate is
//! the OpenSSL backend's); peers on 127.0.0.1 only, certificates made here.
//! `cargo test -p sslsocket --all-features --test ffi_round37`.
//!
//! A defect of this area crashes the process (SIGSEGV, or an abort for a panic that
//! reaches an `extern "C"` function, which cannot unwind): each such test runs its body in
//! a child process (this binary, that test alone) and checks how the child ended.
#![cfg(feature = "openssl")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslSession, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509NameBuilder, X509StoreContextRef, X509};
use sslsocket_openssl_ext::{
    ContextSession, ExDataState, RecordCounter, TlsStream, Transport, VerifyState,
};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const CHILD: &str = "SSLSOCKET_FFI_ROUND37_CHILD";
const WAIT: Duration = Duration::from_secs(10);

/// Whether this process is the child running one test's body.
fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs the test `name` of this binary alone in a child process (which runs its body),
/// within 60 s; returns whether the child exited successfully, and how it ended.
fn run_in_child(name: &str) -> BoxResult<(bool, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{name}: the child did not end within 60 s").into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output()?;
    let text = format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

/// In the parent: runs `name` in a child and asserts it ended normally (no crash, no
/// abort, its assertions held). Returns true there; false in the child, which goes on
/// with the body.
fn parent_checks(name: &str) -> BoxResult<bool> {
    if in_child() {
        return Ok(false);
    }
    let (ok, how) = run_in_child(name)?;
    assert!(
        ok,
        "the child process running `{name}` did not end normally: {how}"
    );
    Ok(true)
}

/// A self-signed P-256 server identity for `localhost`.
fn identity() -> Result<(X509, PKey<Private>), ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "localhost")?;
    let name = name.build();
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(&key)?;
    cert.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    cert.set_not_after(&*Asn1Time::days_from_now(1)?)?;
    cert.sign(&key, MessageDigest::sha256())?;
    Ok((cert.build(), key))
}

/// A TLS 1.2 server on 127.0.0.1 for one connection: handshake, then reads to the end
/// (bounded by read timeouts). Returns its address.
fn one_connection_server() -> BoxResult<std::net::SocketAddr> {
    let (cert, key) = identity()?;
    let mut ctx = SslContext::builder(SslMethod::tls_server())?;
    ctx.set_certificate(&cert)?;
    ctx.set_private_key(&key)?;
    ctx.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    let ctx = ctx.build();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    thread::spawn(move || -> Result<(), String> {
        let (socket, _) = listener.accept().map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        socket
            .set_write_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let ssl = Ssl::new(&ctx).map_err(|e| e.to_string())?;
        let mut stream = ssl.accept(socket).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 256];
        while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        Ok(())
    });
    Ok(address)
}

fn client_builder() -> Result<SslContextBuilder, ErrorStack> {
    let mut ctx = SslContext::builder(SslMethod::tls_client())?;
    ctx.set_verify(SslVerifyMode::NONE);
    ctx.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    Ok(ctx)
}

/// A client handshake with `ssl` to a fresh server; the connection, or why it failed.
fn connect(ssl: Ssl) -> BoxResult<Result<openssl::ssl::SslStream<TcpStream>, String>> {
    let address = one_connection_server()?;
    let socket = TcpStream::connect_timeout(&address, WAIT)?;
    socket.set_read_timeout(Some(WAIT))?;
    socket.set_write_timeout(Some(WAIT))?;
    Ok(ssl.connect(socket).map_err(|e| e.to_string()))
}

// Was a defect (round 37): `negotiated_group_nid`, a safe
// function, dereferences a NULL session inside OpenSSL 3.0 (`SSL_get_negotiated_group` reads
// `s->session->kex_group`) on any connection that has no session yet: SIGSEGV.
#[test]
fn the_negotiated_group_of_a_connection_without_a_session_is_none_not_a_crash() -> BoxResult<()> {
    if parent_checks("the_negotiated_group_of_a_connection_without_a_session_is_none_not_a_crash")?
    {
        return Ok(());
    }
    let ctx = SslContext::builder(SslMethod::tls())?.build();
    // A new connection, and a server that read no ClientHello (junk instead): no session.
    let ssl = Ssl::new(&ctx)?;
    assert_eq!(sslsocket_openssl_ext::negotiated_group_nid(&ssl), None);
    let mut server = Ssl::new(&ctx)?;
    server.set_accept_state();
    let mut stream = TlsStream::new(server, Transport::new())?;
    let id = stream.get_ref().id();
    let junk = b"GET / HTTP/1.1\r\n\r\n";
    let failed = sslsocket_openssl_ext::with_reader(id, &mut &junk[..], || stream.do_handshake());
    assert!(failed.is_err());
    assert_eq!(
        sslsocket_openssl_ext::negotiated_group_nid(stream.ssl()),
        None
    );
    Ok(())
}

// Was a defect (round 37): the info callback's trampoline calls
// the application's closure without `catch_unwind` (unlike every other trampoline of the
// crate): a closure that panics unwinds into an `extern "C"` function and the process aborts.
#[test]
fn a_panicking_info_callback_does_not_abort_the_process() -> BoxResult<()> {
    if parent_checks("a_panicking_info_callback_does_not_abort_the_process")? {
        return Ok(());
    }
    let mut builder = SslContext::builder(SslMethod::tls_client())?;
    sslsocket_openssl_ext::set_info_callback(&mut builder, |_, _, _| {
        #[allow(clippy::panic)]
        {
            panic!("an application's info callback that panics")
        }
    })?;
    let ctx = builder.build();
    let mut ssl = Ssl::new(&ctx)?;
    ssl.set_connect_state();
    let mut stream = TlsStream::new(ssl, Transport::new())?;
    // The hello goes to the transport's output; with no input, the handshake waits.
    let result = stream.do_handshake();
    assert_eq!(
        result.map_err(|e| e.code()).err(),
        Some(ErrorCode::WANT_READ)
    );
    assert!(!stream.get_ref().output().is_empty());
    Ok(())
}

/// A connection state whose `records_read` panics (an application's bug).
struct PanickingCounter {
    records: AtomicU64,
}

impl ExDataState for PanickingCounter {
    fn index() -> Option<Index<Ssl, Arc<PanickingCounter>>> {
        static INDEX: OnceLock<Option<Index<Ssl, Arc<PanickingCounter>>>> = OnceLock::new();
        *INDEX.get_or_init(|| Ssl::new_ex_index().ok())
    }
}

impl RecordCounter for PanickingCounter {
    fn records_read(&self) -> &AtomicU64 {
        if self.records.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            #[allow(clippy::panic)]
            {
                panic!("a record counter that panics")
            }
        }
        &self.records
    }
}

// Was a defect (round 37): the message callback's trampoline
// calls `RecordCounter::records_read` (and `ExDataState::index`) outside `catch_unwind`:
// a safe trait impl that panics aborts the process at the first record header read.
#[test]
fn a_panicking_record_counter_does_not_abort_the_process() -> BoxResult<()> {
    if parent_checks("a_panicking_record_counter_does_not_abort_the_process")? {
        return Ok(());
    }
    let ctx = SslContext::builder(SslMethod::tls_server())?.build();
    let mut ssl = Ssl::new(&ctx)?;
    ssl.set_accept_state();
    let index = PanickingCounter::index().ok_or("no ex-data index")?;
    ssl.set_ex_data(
        index,
        Arc::new(PanickingCounter {
            records: AtomicU64::new(0),
        }),
    );
    let mut stream = TlsStream::new(ssl, Transport::new())?;
    stream.count_records_read::<PanickingCounter>();
    let id = stream.get_ref().id();
    // A handshake record header and four bytes of junk.
    let record = [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00];
    let result = sslsocket_openssl_ext::with_reader(id, &mut &record[..], || stream.do_handshake());
    assert!(result.is_err());
    Ok(())
}

/// A verification state whose `index` panics (an application's bug).
struct PanickingIndex;

impl ExDataState for PanickingIndex {
    fn index() -> Option<Index<Ssl, Arc<PanickingIndex>>> {
        if std::env::var_os(CHILD).is_some() {
            #[allow(clippy::panic)]
            {
                panic!("an ex-data index that panics")
            }
        }
        None
    }
}

impl VerifyState for PanickingIndex {
    fn verify(&self, _preverify_ok: bool, _ctx: &mut X509StoreContextRef) -> bool {
        true
    }
}

// Was a defect (round 37): the verify callback's trampoline
// calls `ExDataState::index` outside its `catch_unwind`: an impl that panics aborts the
// process mid-handshake, where the crate promises a panicking state refuses the peer.
#[test]
fn a_panicking_ex_data_index_refuses_the_peer_and_does_not_abort() -> BoxResult<()> {
    if parent_checks("a_panicking_ex_data_index_refuses_the_peer_and_does_not_abort")? {
        return Ok(());
    }
    let ctx = client_builder()?.build();
    let mut ssl = Ssl::new(&ctx)?;
    sslsocket_openssl_ext::set_verify_from_ex_data::<PanickingIndex>(&mut ssl, SslVerifyMode::PEER);
    let connected = connect(ssl)?;
    assert!(connected.is_err(), "the peer was accepted");
    Ok(())
}

/// A TLS 1.2 session of a connection of `ctx` to a fresh server.
fn session_of(ctx: &SslContext) -> BoxResult<SslSession> {
    let mut stream = connect(Ssl::new(ctx)?)?.map_err(|e| format!("handshake: {e}"))?;
    let session = stream.ssl().session().ok_or("no session")?.to_owned();
    let _ = stream.shutdown();
    let _ = stream.get_mut().flush();
    Ok(session)
}

// Was a defect (round 37): `ContextSession::new(ssl, session)`
// tags *any* session with `ssl`'s context, so safe code passes `set_session`'s "checked by
// identity" test with a session of another context and calls `SslRef::set_session`
// (`unsafe`: the session must be of the connection's context) against its contract.
#[test]
fn a_session_of_another_context_cannot_be_tagged_as_this_ones() -> BoxResult<()> {
    let mut a = client_builder()?;
    sslsocket_openssl_ext::tag_context(&mut a)?;
    let a = a.build();
    let mut b = client_builder()?;
    sslsocket_openssl_ext::tag_context(&mut b)?;
    let b = b.build();
    let foreign = session_of(&a)?;
    let of_b = Ssl::new(&b)?;
    let mut another_of_b = Ssl::new(&b)?;
    let set = ContextSession::new(&of_b, foreign)
        .map(|tagged| sslsocket_openssl_ext::set_session(&mut another_of_b, &tagged).is_ok());
    assert_ne!(
        set,
        Some(true),
        "a session of context A was set on a connection of context B"
    );
    Ok(())
}

// PINS: the session's own connection still tags it, and it is set again on its context's
// connections (and refused on another context's).
#[test]
fn a_connections_own_session_is_tagged_and_set_on_its_context_only() -> BoxResult<()> {
    let mut a = client_builder()?;
    sslsocket_openssl_ext::tag_context(&mut a)?;
    let a = a.build();
    let mut b = client_builder()?;
    sslsocket_openssl_ext::tag_context(&mut b)?;
    let b = b.build();
    let mut stream = connect(Ssl::new(&a)?)?.map_err(|e| format!("handshake: {e}"))?;
    let own = stream.ssl().session().ok_or("no session")?.to_owned();
    let tagged = ContextSession::new(stream.ssl(), own).ok_or("not tagged")?;
    let _ = stream.shutdown();
    let (mut of_a, mut of_b) = (Ssl::new(&a)?, Ssl::new(&b)?);
    assert!(sslsocket_openssl_ext::set_session(&mut of_a, &tagged).is_ok());
    assert!(sslsocket_openssl_ext::set_session(&mut of_b, &tagged).is_err());
    Ok(())
}

// PINS: the other wrappers on a connection that has done nothing (no session, no hello, no
// BIO data) answer without crashing.
#[test]
fn the_wrappers_answer_on_a_connection_that_did_nothing() -> BoxResult<()> {
    if parent_checks("the_wrappers_answer_on_a_connection_that_did_nothing")? {
        return Ok(());
    }
    let ctx = SslContext::builder(SslMethod::tls())?.build();
    let mut ssl = Ssl::new(&ctx)?;
    assert_eq!(
        sslsocket_openssl_ext::client_hello_server_name(&mut ssl),
        sslsocket_openssl_ext::HelloServerName::Absent
    );
    assert!(!sslsocket_openssl_ext::has_pending(&ssl));
    assert!(!sslsocket_openssl_ext::remove_own_session(&ssl));
    let store = openssl::x509::X509StoreContext::new()?;
    assert!(sslsocket_openssl_ext::sent_certificates(&store).is_none());
    // X509_V_ERR_INVALID_CA is 24 before OpenSSL 3 and 79 since: only the version's own.
    let openssl3 = openssl::version::number() >= 0x3000_0000;
    for code in -5..200 {
        let known = sslsocket_openssl_ext::verify_result(code).is_some();
        let defined = match code {
            24 => !openssl3,
            79 => openssl3,
            _ => true,
        };
        assert_eq!(
            known,
            defined && sslsocket_openssl_ext::KNOWN_VERIFY_CODES.contains(&code),
            "code {code}"
        );
    }
    let mut stream = TlsStream::new(ssl, Transport::new())?;
    let mut buf = [0u8; 4];
    assert!(stream.do_handshake().is_err());
    assert!(stream.ssl_read(&mut buf).is_err());
    assert!(stream.ssl_peek(&mut buf).is_err());
    assert!(stream.ssl_write(b"x").is_err());
    assert!(stream.shutdown().is_err());
    Ok(())
}
