//! Each wrapper against a real handshake over a Unix socket pair.

use std::ffi::CString;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;

use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    Ssl, SslContext, SslMethod, SslSessionCacheMode, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509NameBuilder, X509};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

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

fn server_context(max: SslVersion) -> Result<SslContextBuilder, ErrorStack> {
    let (cert, key) = identity()?;
    let mut ctx = SslContext::builder(SslMethod::tls_server())?;
    ctx.set_certificate(&cert)?;
    ctx.set_private_key(&key)?;
    ctx.set_max_proto_version(Some(max))?;
    ctx.set_session_id_context(b"ext-test")?;
    Ok(ctx)
}

fn client_context(max: SslVersion) -> Result<SslContextBuilder, ErrorStack> {
    let mut ctx = SslContext::builder(SslMethod::tls_client())?;
    ctx.set_verify(SslVerifyMode::NONE);
    ctx.set_max_proto_version(Some(max))?;
    Ok(ctx)
}

/// Runs the server side of one connection in a thread: handshake, then reads to the end.
fn serve(ctx: SslContext, socket: UnixStream) -> thread::JoinHandle<Result<(), String>> {
    thread::spawn(move || {
        let ssl = Ssl::new(&ctx).map_err(|e| e.to_string())?;
        let mut stream = ssl.accept(socket).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = stream.shutdown();
        Ok(())
    })
}

fn connect(ssl: Ssl, socket: UnixStream) -> Result<SslStream<UnixStream>, String> {
    ssl.connect(socket).map_err(|e| e.to_string())
}

/// A handshake between the two contexts over a socket pair, then the client's
/// close_notify and the server's end.
fn connect_and_close(server: SslContextBuilder, client: SslContextBuilder) -> TestResult {
    let (a, b) = UnixStream::pair()?;
    let handle = serve(server.build(), b);
    let client = client.build();
    let mut stream = connect(Ssl::new(&client)?, a)?;
    stream.shutdown()?;
    handle.join().map_err(|_| "server thread")??;
    Ok(())
}

#[test]
fn the_info_callback_sees_close_notify_both_ways() -> TestResult {
    let seen: Arc<Mutex<Vec<(bool, i32)>>> = Arc::default();
    let mut server = server_context(SslVersion::TLS1_3)?;
    let server_seen = Arc::clone(&seen);
    set_info_callback(&mut server, move |_, where_, ret| {
        if where_ & SSL_CB_ALERT != 0 && where_ & SSL_CB_READ != 0 {
            if let Ok(mut seen) = server_seen.lock() {
                seen.push((false, ret));
            }
        }
    })?;
    let mut client = client_context(SslVersion::TLS1_3)?;
    let client_seen = Arc::clone(&seen);
    set_info_callback(&mut client, move |_, where_, ret| {
        if where_ & SSL_CB_ALERT != 0 && where_ & SSL_CB_WRITE != 0 {
            if let Ok(mut seen) = client_seen.lock() {
                seen.push((true, ret));
            }
        }
    })?;
    connect_and_close(server, client)?;
    let seen = seen.lock().map_err(|_| "lock")?.clone();
    // Level 1 (warning) << 8 | description 0 (close_notify): sent by us, read by the peer.
    assert!(seen.contains(&(true, 0x0100)), "{seen:?}");
    assert!(seen.contains(&(false, 0x0100)), "{seen:?}");
    Ok(())
}

/// The alert callback is called for alerts only (both of the handshake's close_notify),
/// while the info callback sees every state change of the same exchange.
#[test]
fn the_alert_callback_sees_the_alerts_and_nothing_else() -> TestResult {
    let seen: Arc<Mutex<Vec<i32>>> = Arc::default();
    let all = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut server = server_context(SslVersion::TLS1_3)?;
    let counted = Arc::clone(&all);
    set_info_callback(&mut server, move |_, _, _| {
        counted.fetch_add(1, Ordering::Relaxed);
    })?;
    let mut client = client_context(SslVersion::TLS1_3)?;
    let client_seen = Arc::clone(&seen);
    set_alert_callback(&mut client, move |_, where_, ret| {
        if let Ok(mut seen) = client_seen.lock() {
            seen.push(where_);
            seen.push(ret);
        }
    })?;
    connect_and_close(server, client)?;
    let seen = seen.lock().map_err(|_| "lock")?.clone();
    assert!(!seen.is_empty());
    for pair in seen.chunks(2) {
        assert_ne!(pair[0] & SSL_CB_ALERT, 0, "not an alert: {seen:?}");
        assert_eq!(pair.get(1), Some(&0x0100), "not a close_notify: {seen:?}");
    }
    assert!(
        all.load(Ordering::Relaxed) > seen.len(),
        "the info callback saw no more than the alerts"
    );
    Ok(())
}

#[test]
fn a_session_of_the_same_context_is_resumed_and_one_of_another_is_refused() -> TestResult {
    let server = server_context(SslVersion::TLS1_2)?.build();
    let stored: Arc<Mutex<Option<ContextSession>>> = Arc::default();
    let mut client = client_context(SslVersion::TLS1_2)?;
    tag_context(&mut client)?;
    client.set_session_cache_mode(SslSessionCacheMode::CLIENT);
    let keep = Arc::clone(&stored);
    client.set_new_session_callback(move |ssl, session| {
        if let Ok(mut slot) = keep.lock() {
            *slot = ContextSession::new(ssl, session);
        }
    });
    let client = client.build();

    let (a, b) = UnixStream::pair()?;
    let handle = serve(server.clone(), b);
    let mut first = connect(Ssl::new(&client)?, a)?;
    assert!(!first.ssl().session_reused());
    first.shutdown()?;
    handle.join().map_err(|_| "server thread")??;

    let guard = stored.lock().map_err(|_| "lock")?;
    let session = guard.as_ref().ok_or("no session stored")?;
    let (a, b) = UnixStream::pair()?;
    let handle = serve(server, b);
    let mut ssl = Ssl::new(&client)?;
    set_session(&mut ssl, session)?;
    let mut second = connect(ssl, a)?;
    assert!(second.ssl().session_reused());
    second.shutdown()?;
    handle.join().map_err(|_| "server thread")??;

    // Another context, tagged or not, may not take it.
    let mut other = client_context(SslVersion::TLS1_2)?;
    tag_context(&mut other)?;
    let mut ssl = Ssl::new(&other.build())?;
    assert!(matches!(
        set_session(&mut ssl, session),
        Err(SetSessionError::OtherContext)
    ));
    let mut ssl = Ssl::new(&client_context(SslVersion::TLS1_2)?.build())?;
    assert!(matches!(
        set_session(&mut ssl, session),
        Err(SetSessionError::OtherContext)
    ));
    Ok(())
}

#[test]
fn an_untagged_context_makes_no_context_session() -> TestResult {
    let ssl = Ssl::new(&client_context(SslVersion::TLS1_2)?.build())?;
    let session = SslSession::from_der(&[]).ok();
    // No session can even be tagged: the context has no identity.
    assert!(session.is_none_or(|s| ContextSession::new(&ssl, s).is_none()));
    assert!(context_of(&ssl).is_none());
    Ok(())
}

#[test]
fn the_client_receives_the_psk_identity_hint() -> TestResult {
    let key = [7u8; 32];
    let mut server = SslContext::builder(SslMethod::tls_server())?;
    server.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    server.set_cipher_list("PSK-AES128-GCM-SHA256")?;
    server.set_psk_server_callback(move |_, _, out| {
        out.get_mut(..key.len())
            .map(|dst| dst.copy_from_slice(&key))
            .map_or(Ok(0), |()| Ok(key.len()))
    });
    assert!(set_psk_identity_hint(&mut server, &CString::new(vec![b'h'; 300])?).is_err());
    set_psk_identity_hint(&mut server, &CString::new("hint-x")?)?;

    let hint: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let mut client = SslContext::builder(SslMethod::tls_client())?;
    client.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    client.set_cipher_list("PSK-AES128-GCM-SHA256")?;
    let got = Arc::clone(&hint);
    client.set_psk_client_callback(move |_, hint, identity, out| {
        if let Ok(mut slot) = got.lock() {
            *slot = hint.map(<[u8]>::to_vec);
        }
        if let (Some(id), Some(dst)) = (identity.get_mut(..2), out.get_mut(..key.len())) {
            id.copy_from_slice(b"a\0");
            dst.copy_from_slice(&key);
            return Ok(key.len());
        }
        Ok(0)
    });
    let (a, b) = UnixStream::pair()?;
    let handle = serve(server.build(), b);
    let mut stream = connect(Ssl::new(&client.build())?, a)?;
    stream.shutdown()?;
    handle.join().map_err(|_| "server thread")??;
    assert_eq!(
        hint.lock().map_err(|_| "lock")?.as_deref(),
        Some(&b"hint-x"[..])
    );
    Ok(())
}

/// Drives a client `TlsStream` against a real server over a socket pair: every
/// read of the socket happens inside `with_reader`, every write goes out from the output.
fn pump(
    stream: &mut TlsStream,
    socket: &mut UnixStream,
    step: impl FnMut(&mut TlsStream) -> Result<bool, StreamError>,
) -> Result<(), String> {
    use std::io::Write;
    let mut step = step;
    for _ in 0..10_000 {
        // What is waiting goes out first: the socket blocks, and the peer answers it.
        let output = stream.get_ref().output().to_vec();
        socket.write_all(&output).map_err(|e| e.to_string())?;
        stream.get_mut().consume(output.len());
        let id = stream.get_ref().id();
        let done = with_reader(id, socket, || step(stream));
        let output = stream.get_ref().output().to_vec();
        socket.write_all(&output).map_err(|e| e.to_string())?;
        stream.get_mut().consume(output.len());
        match done {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) if e.code() == openssl::ssl::ErrorCode::WANT_READ => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("no progress".into())
}

#[test]
fn a_transport_reads_the_lent_socket_only_inside_with_reader() -> TestResult {
    let (mut ours, theirs) = UnixStream::pair()?;
    let server = serve(server_context(SslVersion::TLS1_3)?.build(), theirs);
    let mut ssl = Ssl::new(&client_context(SslVersion::TLS1_3)?.build())?;
    ssl.set_connect_state();
    let mut stream = TlsStream::new(ssl, Transport::new())?;

    // Outside `with_reader` there is nothing to read: OpenSSL waits, its state intact.
    let first = stream.do_handshake();
    assert!(matches!(&first, Err(e) if e.code() == openssl::ssl::ErrorCode::WANT_READ));
    assert!(
        !stream.get_ref().output().is_empty(),
        "the ClientHello is in the output"
    );
    pump(&mut stream, &mut ours, |s| s.do_handshake().map(|()| true))?;

    // Data both ways: the server echoes nothing, but reads it all and then closes.
    let data = vec![0x42u8; 100_000];
    let mut sent = 0;
    pump(&mut stream, &mut ours, |s| {
        sent += s.ssl_write(data.get(sent..).unwrap_or_default())?;
        Ok(sent == data.len())
    })?;
    let _ = stream.shutdown();
    let output = stream.get_ref().output().to_vec();
    std::io::Write::write_all(&mut ours, &output)?;
    stream.get_mut().consume(output.len());
    // Drained, the output holds no buffer.
    assert!(stream.get_ref().output().is_empty());
    server.join().map_err(|_| "server thread panicked")??;

    // The peer's close_notify, read through a lent reader.
    let mut buf = Vec::new();
    let mut closed = false;
    for _ in 0..100 {
        let id = stream.get_ref().id();
        match with_reader(id, &mut ours, || stream.read_into(&mut buf, 1024)) {
            Err(e) if e.code() == openssl::ssl::ErrorCode::ZERO_RETURN => {
                closed = true;
                break;
            }
            Err(e) if e.code() == openssl::ssl::ErrorCode::WANT_READ => {}
            Err(e) => return Err(e.to_string().into()),
            Ok(_) => {}
        }
    }
    assert!(closed, "the server's close_notify arrived");
    assert!(buf.is_empty(), "the server sent no data");
    Ok(())
}

#[test]
fn a_lent_reader_serves_only_its_transport_and_is_gone_afterwards() -> TestResult {
    use std::io::Read as _;
    let mut lent: &[u8] = b"abcdef";
    let mut mine = Transport::new();
    let mut other = Transport::new();
    let mut buf = [0u8; 3];
    let (in_mine, in_other, nested) = with_reader(mine.id(), &mut lent, || {
        let in_mine = mine
            .read(&mut buf)
            .map(|n| buf.get(..n).map(<[u8]>::to_vec));
        let in_other = other.read(&mut buf).map_err(|e| e.kind());
        // A nested lending replaces the reader for its duration only.
        let mut inner: &[u8] = b"xyz";
        let nested = with_reader(other.id(), &mut inner, || {
            let mut b = [0u8; 8];
            let n = other.read(&mut b).unwrap_or(0);
            (
                b.get(..n).map(<[u8]>::to_vec),
                mine.read(&mut b).map_err(|e| e.kind()),
            )
        });
        let after = mine
            .read(&mut buf)
            .map(|n| buf.get(..n).map(<[u8]>::to_vec));
        (
            in_mine.ok().flatten(),
            in_other,
            (nested, after.ok().flatten()),
        )
    });
    assert_eq!(in_mine.as_deref(), Some(&b"abc"[..]));
    assert_eq!(in_other, Err(std::io::ErrorKind::WouldBlock));
    let ((nested_other, nested_mine), after) = nested;
    assert_eq!(nested_other.as_deref(), Some(&b"xyz"[..]));
    assert_eq!(nested_mine, Err(std::io::ErrorKind::WouldBlock));
    assert_eq!(after.as_deref(), Some(&b"def"[..]));
    assert_eq!(
        mine.read(&mut buf).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock)
    );
    Ok(())
}

#[test]
fn the_output_is_appended_in_order_and_freed_when_drained() {
    use std::io::Write as _;
    let mut transport = Transport::new();
    let _ = transport.write(b"hello ");
    let _ = transport.write(b"world");
    assert_eq!(transport.output(), b"hello world");
    transport.consume(6);
    assert_eq!(transport.output(), b"world");
    let _ = transport.write(b"!");
    assert_eq!(transport.output(), b"world!");
    transport.consume(100);
    assert!(transport.output().is_empty());
    let _ = transport.write(b"again");
    transport.discard();
    assert!(transport.output().is_empty());
}

/// A connection state for the ex-data callbacks: counts verify calls and record bytes,
/// and answers the verify callback with `accept`.
struct Probe {
    accept: bool,
    verify_calls: std::sync::atomic::AtomicUsize,
    records: AtomicU64,
}

impl Probe {
    fn new(accept: bool) -> Arc<Probe> {
        Arc::new(Probe {
            accept,
            verify_calls: std::sync::atomic::AtomicUsize::new(0),
            records: AtomicU64::new(0),
        })
    }
}

impl ExDataState for Probe {
    fn index() -> Option<Index<Ssl, Arc<Probe>>> {
        static INDEX: OnceLock<Option<Index<Ssl, Arc<Probe>>>> = OnceLock::new();
        *INDEX.get_or_init(|| Ssl::new_ex_index().ok())
    }
}

impl VerifyState for Probe {
    fn verify(&self, _preverify_ok: bool, _ctx: &mut X509StoreContextRef) -> bool {
        self.verify_calls.fetch_add(1, Ordering::Relaxed);
        self.accept
    }
}

impl RecordCounter for Probe {
    fn records_read(&self) -> &AtomicU64 {
        &self.records
    }
}

/// A client handshake against a self-signed server (which OpenSSL's own check rejects),
/// with the ex-data verify callback and record counter, and `state` in the ex data.
fn handshake_with_probe(state: Option<Arc<Probe>>) -> Result<bool, Box<dyn std::error::Error>> {
    let (client_socket, server_socket) = UnixStream::pair()?;
    let server = serve(server_context(SslVersion::TLS1_3)?.build(), server_socket);
    let mut ssl = Ssl::new(&client_context(SslVersion::TLS1_3)?.build())?;
    if let (Some(state), Some(index)) = (state, Probe::index()) {
        ssl.set_ex_data(index, state);
    }
    set_verify_from_ex_data::<Probe>(&mut ssl, SslVerifyMode::PEER);
    count_records_read::<Probe>(&mut ssl);
    let connected = connect(ssl, client_socket);
    let ok = connected.is_ok();
    drop(connected);
    let _ = server.join();
    Ok(ok)
}

#[test]
fn the_ex_data_verify_callback_decides_and_fails_closed_without_its_state() -> TestResult {
    // Accepted by the state's answer, although OpenSSL's own check fails (self-signed);
    // the records the client read were counted into the same state.
    let accepting = Probe::new(true);
    assert!(handshake_with_probe(Some(Arc::clone(&accepting)))?);
    assert!(accepting.verify_calls.load(Ordering::Relaxed) > 0);
    assert!(accepting.records.load(Ordering::Relaxed) > 0);
    // Refused by the state's answer.
    let refusing = Probe::new(false);
    assert!(!handshake_with_probe(Some(Arc::clone(&refusing)))?);
    assert!(refusing.verify_calls.load(Ordering::Relaxed) > 0);
    // No state in the connection: the callback refuses.
    assert!(!handshake_with_probe(None)?);
    Ok(())
}

#[test]
fn a_panicking_lent_reader_unwinds_out_of_the_call_and_leaves_no_loan() -> TestResult {
    struct Panics;
    impl Read for Panics {
        fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
            #[allow(clippy::panic)]
            {
                panic!("the lent reader failed")
            }
        }
    }
    let mut ssl = Ssl::new(&client_context(SslVersion::TLS1_3)?.build())?;
    ssl.set_connect_state();
    let mut stream = TlsStream::new(ssl, Transport::new())?;
    let id = stream.get_ref().id();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with_reader(id, &mut Panics, || stream.do_handshake().is_ok())
    }));
    assert!(
        unwound.is_err(),
        "the panic came out of the call (not an abort)"
    );
    // Afterwards nothing is lent: OpenSSL waits for input, its BIO reaching nothing.
    let again = stream.do_handshake();
    assert!(matches!(&again, Err(e) if e.code() == openssl::ssl::ErrorCode::WANT_READ));
    Ok(())
}

#[test]
fn a_server_name_list_gives_its_host_name_and_nothing_from_malformed_lists() {
    let list = |entries: &[u8]| {
        let mut out = u16::try_from(entries.len())
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(entries);
        out
    };
    assert_eq!(
        host_name_of(&list(b"\x00\x00\x05a.com")),
        Some(&b"a.com"[..])
    );
    // An entry of another type first is skipped.
    assert_eq!(
        host_name_of(&list(b"\x07\x00\x01x\x00\x00\x01b")),
        Some(&b"b"[..])
    );
    assert_eq!(host_name_of(&list(b"\x00\x00\x09a.com")), None);
    assert_eq!(host_name_of(&list(b"\x00\x00\x00")), None);
    assert_eq!(host_name_of(b"\x00\x09\x00\x00\x05a.com"), None);
    assert_eq!(host_name_of(b"\x00"), None);
    assert_eq!(host_name_of(&list(b"")), None);
}
