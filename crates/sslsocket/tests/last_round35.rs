//! Review round 35, last part: attacks on what round 34's last commits changed (OCSP
//! freshness, `SslCertificate::verify`, names, input limits, noted errors, adoption, the
//! tokio driver's transport flushes, drops of `from_stream` sockets, certificate parsing).
//! Both backends (`SSLSOCKET_BACKEND=openssl`) and both drivers; every wait is bounded.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use sslsocket::prelude::*;
use support::{serving, trusting, Pki};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const WAIT: Duration = Duration::from_secs(10);

fn boxed(e: impl std::fmt::Display) -> BoxError {
    e.to_string().into()
}

// ----- transports that buffer writes ---------------------------------------------------

/// A blocking stream that keeps what is written until `flush` (a tunnel, an SSH channel,
/// a `BufWriter` with a reader): reads go straight to the TCP stream.
struct BufferingStream {
    tcp: TcpStream,
    pending: Vec<u8>,
}

impl Read for BufferingStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for BufferingStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.write_all(&self.pending)?;
        self.pending.clear();
        self.tcp.flush()
    }
}

// Was a defect (round 35): the blocking driver never flushes a `from_stream` transport: SocketIo::flush
// (src/blocking/transport.rs) exists but nothing calls it, so over a stream that buffers
// its writes the ClientHello never leaves and `wait_for_encrypted` times out. Round 34
// fixed exactly this on the tokio driver (tokio/pump.rs `poll_flush_transport`) only. Right:
// after bytes went to a stream without a descriptor, the blocking driver flushes it
// (handshake flights, `Write::flush`, `disconnect_from_host`), as the tokio driver now does.
#[test]
fn a_blocking_client_over_a_write_buffering_stream_finishes_its_handshake() -> TestResult {
    let pki = Pki::new().map_err(boxed)?;
    let leaf = pki.leaf("localhost", &["localhost"]).map_err(boxed)?;
    let (port, server) = support::serve_one(serving(&leaf).map_err(boxed)?, |socket| {
        let line = socket.next_line(0, WAIT)?;
        socket.write_all(&line)?;
        socket.disconnect_from_host()?;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(3)))?;
    let stream = BufferingStream {
        tcp,
        pending: Vec::new(),
    };
    let mut client =
        sslsocket::blocking::SslSocket::from_stream(stream, trusting(&pki).map_err(boxed)?);
    client.set_peer_verify_name("localhost");
    client.start_client_encryption()?;
    client
        .wait_for_encrypted(Duration::from_secs(4))
        .map_err(|e| format!("the handshake over a buffering stream did not finish: {e}"))?;
    client.write_all(b"ping\n")?;
    client.flush()?;
    let line = client.next_line(0, WAIT)?;
    assert_eq!(line, b"ping\n");
    let _ = client.disconnect_from_host();
    drop(client);
    let _ = server.join();
    Ok(())
}

/// A tokio transport that buffers writes and flushes them a little at a time, each
/// `poll_flush` sending at most `STEP_BYTES` and asking to be polled again (a `BufWriter`
/// over a link slower than the application).
struct SlowFlush {
    tcp: tokio::net::TcpStream,
    pending: Vec<u8>,
}

const STEP_BYTES: usize = 256;

impl tokio::io::AsyncRead for SlowFlush {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl SlowFlush {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.pending.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let take = self.pending.len().min(STEP_BYTES);
        let chunk: Vec<u8> = self.pending.drain(..take).collect();
        let mut sent = 0;
        while sent < chunk.len() {
            match self.tcp.try_write(chunk.get(sent..).unwrap_or_default()) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if self.pending.is_empty() {
            Poll::Ready(Ok(()))
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl tokio::io::AsyncWrite for SlowFlush {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().poll_step(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match this.poll_step(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.tcp).poll_shutdown(cx),
            other => other,
        }
    }
}

/// Our tokio server for one connection: reads to the end and returns what it read and
/// whether the end was clean.
async fn read_all_served(
    pki: &Pki,
) -> Result<
    (
        u16,
        tokio::task::JoinHandle<Result<(Vec<u8>, Result<(), String>), BoxError>>,
    ),
    BoxError,
> {
    use tokio::io::AsyncReadExt;
    let leaf = pki.leaf("localhost", &["localhost"]).map_err(boxed)?;
    let server =
        sslsocket::tokio::SslServer::bind("127.0.0.1:0", serving(&leaf).map_err(boxed)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let mut got = Vec::new();
        let end = match tokio::time::timeout(WAIT, socket.read_to_end(&mut got)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("{:?}: {e}", e.kind())),
            Err(_) => Err("timed out".to_string()),
        };
        Ok::<_, BoxError>((got, end))
    });
    Ok((port, served))
}

// Was a defect (round 35): over a transport whose flush takes more than one poll (a BufWriter over a slow
// link), the tokio socket's `shutdown()` returns Ok while our data and close_notify still
// sit in the transport's buffer: `poll_shutdown` (src/tokio/stream.rs) ends when
// `core.is_closed()` although `poll_flush_transport` returned Pending, and `shut_write`
// (src/tokio/pump.rs) polls the transport's shutdown with a no-op waker and gives up. The
// application then drops the socket and the peer gets a truncated stream. Right (as
// tokio-rustls, which awaits the transport's own `poll_shutdown`): `poll_shutdown` is Ready
// only once the transport is flushed and shut down (`unflushed` false, `write_shut` true).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_shutdown_over_a_slowly_flushing_transport_delivers_everything() -> TestResult {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new().map_err(boxed)?;
    let (port, served) = read_all_served(&pki).await?;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let transport = SlowFlush {
        tcp,
        pending: Vec::new(),
    };
    let mut client =
        sslsocket::tokio::SslSocket::from_stream(transport, trusting(&pki).map_err(boxed)?);
    client.set_peer_verify_name("localhost");
    tokio::time::timeout(WAIT, client.start_client_encryption()).await??;
    let data = vec![0x5a_u8; 8 * 1024];
    tokio::time::timeout(WAIT, client.write_all(&data)).await??;
    tokio::time::timeout(WAIT, client.shutdown()).await??;
    drop(client);
    let (got, end) = tokio::time::timeout(WAIT, served).await???;
    assert_eq!(
        got.len(),
        data.len(),
        "the peer got {} of {} bytes",
        got.len(),
        data.len()
    );
    assert_eq!(end, Ok(()), "the peer's stream did not end cleanly");
    Ok(())
}

// Held: `flush()` over the same transport waits until the transport flushed: the peer
// gets every byte (round 34's `poll_flush_transport`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_flush_over_a_slowly_flushing_transport_delivers_everything() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new().map_err(boxed)?;
    let leaf = pki.leaf("localhost", &["localhost"]).map_err(boxed)?;
    let server =
        sslsocket::tokio::SslServer::bind("127.0.0.1:0", serving(&leaf).map_err(boxed)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let mut got = vec![0u8; 8 * 1024];
        socket.read_exact(&mut got).await?;
        Ok::<_, BoxError>(got)
    });
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let transport = SlowFlush {
        tcp,
        pending: Vec::new(),
    };
    let mut client =
        sslsocket::tokio::SslSocket::from_stream(transport, trusting(&pki).map_err(boxed)?);
    client.set_peer_verify_name("localhost");
    tokio::time::timeout(WAIT, client.start_client_encryption()).await??;
    let data = vec![0x3c_u8; 8 * 1024];
    tokio::time::timeout(WAIT, client.write_all(&data)).await??;
    tokio::time::timeout(WAIT, client.flush()).await??;
    let got = tokio::time::timeout(WAIT, served).await???;
    assert_eq!(got, data);
    Ok(())
}

// Was a defect (round 35): the same through `disconnect_from_host()`: it returns Ok (after its 2 s linger)
// while the transport still holds the data and close_notify, and the peer sees a truncated
// stream once the socket is dropped. Cause: src/tokio/socket.rs `disconnect_from_host`
// waits for `core.is_closed()` only, and `shut_write` gives up on a Pending transport.
// Right: the close also awaits the transport's flush and shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_disconnect_over_a_slowly_flushing_transport_delivers_everything() -> TestResult {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new().map_err(boxed)?;
    let (port, served) = read_all_served(&pki).await?;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let transport = SlowFlush {
        tcp,
        pending: Vec::new(),
    };
    let mut client =
        sslsocket::tokio::SslSocket::from_stream(transport, trusting(&pki).map_err(boxed)?);
    client.set_peer_verify_name("localhost");
    tokio::time::timeout(WAIT, client.start_client_encryption()).await??;
    let data = vec![0xa5_u8; 8 * 1024];
    tokio::time::timeout(WAIT, client.write_all(&data)).await??;
    tokio::time::timeout(WAIT, client.disconnect_from_host()).await??;
    drop(client);
    let (got, end) = tokio::time::timeout(WAIT, served).await???;
    assert_eq!(
        got.len(),
        data.len(),
        "the peer got {} of {} bytes",
        got.len(),
        data.len()
    );
    assert_eq!(end, Ok(()), "the peer's stream did not end cleanly");
    Ok(())
}

// ----- certificates and keys ------------------------------------------------------------

/// A self-signed certificate with `sans` (rcgen's subject alternative names, DNS or IP).
fn self_signed_with(sans: Vec<rcgen::SanType>) -> Result<sslsocket::SslCertificate, BoxError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = sans;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "round35");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(sslsocket::SslCertificate::from_der(cert.der())?)
}

// Was a defect (round 35): `to_text` escapes control characters in the issuer and subject (round 34, "a
// peer's ESC sequences went to the terminal raw") but prints a peer's subject alternative
// names raw: a dNSName or URI holding ESC sequences (an IA5String may hold any ASCII
// control) reaches the terminal of whoever prints the dump, and a LF in it forges lines.
// Cause: src/cert/extension.rs `general_name` (`format!("DNS:{n}")`, `URI:`, `email:`)
// feeds `SslCertificateExtension::value`, which src/cert/text.rs prints line by line
// unescaped. Right: extension values in the dump go through `escape_controls` as the names
// do (and `value()` of SAN/AIA/CRL-DP too, or at least the dump).
#[test]
fn to_text_escapes_control_characters_in_alternative_names() -> TestResult {
    let evil = "a\u{1b}]0;owned\u{7}.example\nSubject: CN=bank.example";
    let cert = self_signed_with(vec![rcgen::SanType::DnsName(evil.try_into()?)])?;
    let text = cert.to_text();
    assert!(
        text.contains("round35"),
        "the dump does not show the certificate: {text}"
    );
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "to_text prints a peer's escape sequence raw: {text:?}"
    );
    assert!(
        !text
            .lines()
            .any(|line| line.trim_start().starts_with("Subject: CN=bank")),
        "to_text lets a peer's name forge a line: {text}"
    );
    Ok(())
}

// Was a defect (round 35): `SslCertificate::verify` refuses a bracketed IPv6 literal that the library's own
// name rules accept: a leaf with the iPAddress SAN ::1 verifies for Some("::1") but gives
// HostNameMismatch for Some("[::1]"), although src/verify/hostname.rs documents `[::1]` as
// an IP literal and its `matches_host` matches it (round 34 moved `verify` to
// ChainVerifier: src/verify/verifier.rs `name_matches` also asks rustls'
// `ServerName::try_from("[::1]")`, which fails, and then returns false). Right: the
// verifier strips the brackets (as `matches_host` does) before asking webpki, so both
// spellings give the same verdict.
#[test]
fn verify_accepts_a_bracketed_ipv6_literal_as_the_name_rules_do() -> TestResult {
    let ip = std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    let cert = self_signed_with(vec![rcgen::SanType::IpAddress(ip)])?;
    // Not trusted (the default CA set): only the name verdicts are compared.
    let chain = vec![cert];
    let plain = sslsocket::SslCertificate::verify(&chain, Some("::1"));
    let bracketed = sslsocket::SslCertificate::verify(&chain, Some("[::1]"));
    let mismatch = |errors: &[sslsocket::SslError]| {
        errors
            .iter()
            .any(|e| e.error() == sslsocket::SslErrorKind::HostNameMismatch)
    };
    assert!(
        !mismatch(&plain),
        "::1 did not match its own SAN: {plain:?}"
    );
    assert!(
        !mismatch(&bracketed),
        "[::1] is a mismatch where ::1 is not: {bracketed:?}"
    );
    Ok(())
}

/// An EC key with explicit curve parameters (SEC1 PEM) made by the `openssl` command, and
/// a self-signed certificate for it, in `dir`.
fn explicit_curve_key(dir: &std::path::Path) -> Result<(Vec<u8>, Vec<u8>), BoxError> {
    let key = dir.join("explicit.key.pem");
    let cert = dir.join("explicit.cert.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-param_enc",
            "explicit",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&key)
        .output()?;
    assert!(made.status.success(), "openssl ecparam: {made:?}");
    let signed = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-new",
            "-subj",
            "/CN=localhost",
            "-days",
            "2",
            "-key",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()?;
    assert!(signed.status.success(), "openssl req: {signed:?}");
    Ok((std::fs::read(key)?, std::fs::read(cert)?))
}

// Was a defect (round 35): a SEC1 key with explicit curve parameters (read since round 34) is written as a
// PKCS#8 that `openssl pkey` reads but our own `SslKey::from_der`/`from_pem` refuse ("not a
// PKCS#8, PKCS#1, SEC1 or SubjectPublicKeyInfo key"): `to_pkcs8_der`/`to_pem` cannot be
// read back. Cause: src/cert/key.rs `to_pkcs8_der` wraps the whole SEC1 structure, explicit
// `[0]` parameters included, and src/cert/key_info.rs `pkcs8_info` parses the inner key with
// `sec1::EcPrivateKey::try_from`, which cannot read a SpecifiedECDomain, so it fails before
// the explicit-parameters branch. Right: `pkcs8_info` accepts an inner SEC1 key with explicit
// parameters (`sec1_with_explicit_curve`), or `to_pkcs8_der` drops the inner `[0]` as
// OpenSSL does (the curve is in the algorithm parameters).
#[test]
fn an_explicit_curve_key_round_trips_through_its_pkcs8_form() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (key_pem, _) = explicit_curve_key(dir.path())?;
    let key = sslsocket::SslKey::from_pem(&key_pem, None)?;
    assert_eq!(key.algorithm(), sslsocket::KeyAlgorithm::Ec);
    let pkcs8 = key.to_pkcs8_der()?;
    // OpenSSL reads what we wrote.
    let path = dir.path().join("written.der");
    std::fs::write(&path, pkcs8.as_slice())?;
    let check = std::process::Command::new("openssl")
        .args(["pkey", "-noout", "-inform", "DER", "-in"])
        .arg(&path)
        .output()?;
    assert!(
        check.status.success(),
        "openssl pkey refused our PKCS#8: {check:?}"
    );
    let again = sslsocket::SslKey::from_der(&pkcs8)
        .map_err(|e| format!("our own PKCS#8 form of the key is refused: {e}"))?;
    assert_eq!(again.algorithm(), sslsocket::KeyAlgorithm::Ec);
    let pem = key.to_pem(None)?;
    let third = sslsocket::SslKey::from_pem(pem.as_bytes(), None)
        .map_err(|e| format!("our own PEM of the key is refused: {e}"))?;
    assert_eq!(third.algorithm(), sslsocket::KeyAlgorithm::Ec);
    Ok(())
}

// Held: a server whose key has explicit curve parameters either serves (OpenSSL) or fails
// with an error (rustls cannot sign with it): never a panic or a hang; a client gets a
// handshake error within the bound.
#[test]
fn a_server_with_an_explicit_curve_key_fails_cleanly_or_serves() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (key_pem, cert_pem) = explicit_curve_key(dir.path())?;
    let key = sslsocket::SslKey::from_pem(&key_pem, None)?;
    let certs = sslsocket::SslCertificate::from_pem(&cert_pem)?;
    let mut configuration = sslsocket::SslConfiguration::default();
    configuration
        .set_local_certificate_chain(certs.clone())
        .set_private_key(key);
    let server = match sslsocket::blocking::SslServer::listen("127.0.0.1:0", configuration) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("refused at listen: {error}");
            return Ok(());
        }
    };
    let port = server.local_addr().port();
    let accepted = std::thread::spawn(move || server.next_connection(Duration::from_secs(5)));
    let mut client = sslsocket::blocking::SslSocket::new();
    let mut client_configuration = sslsocket::SslConfiguration::default();
    client_configuration.set_ca_certificates(certs);
    client.set_ssl_configuration(client_configuration)?;
    client.connect_to_host_encrypted("localhost", port);
    let result = client.wait_for_encrypted(Duration::from_secs(5));
    eprintln!("client: {result:?}");
    let served = accepted.join().map_err(|_| "the server thread panicked")?;
    match served {
        Ok(Ok(_)) => assert!(result.is_ok(), "server encrypted, client not: {result:?}"),
        Ok(Err(failed)) => {
            eprintln!("server: {}", failed.error_string());
            assert!(result.is_err());
        }
        Err(error) => eprintln!("server: {error}"),
    }
    Ok(())
}

// Was a defect (round 35): a certificate whose only name is a BMPString common name (no subjectAltName; old
// Windows CAs wrote those) reads as `localhost` through `subject_common_names()` since
// round 34, and `openssl x509 -checkhost localhost` (X509_check_host, what Qt on OpenSSL
// uses) says it matches, but our name check refuses it: `SslCertificate::verify(..,
// Some("localhost"))` lists HostNameMismatch. Cause: src/verify/hostname.rs `matches_host`
// reads the CN with `iter_common_name().filter_map(|cn| cn.as_str().ok())`, which skips a
// BMPString (or UniversalString) value. Right: read CNs as `subject_common_names` does
// (`name::values_of`), so the two agree (and the verdict is OpenSSL's).
#[test]
fn a_bmpstring_common_name_matches_as_it_reads() -> TestResult {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        rcgen::DnValue::BmpString("localhost".try_into()?),
    );
    let key = rcgen::KeyPair::generate()?;
    let made = params.self_signed(&key)?;
    let cert = sslsocket::SslCertificate::from_der(made.der())?;
    assert_eq!(cert.subject_common_names(), vec!["localhost".to_string()]);
    // The reference: OpenSSL's host check.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bmp.pem");
    std::fs::write(&path, made.pem())?;
    let checked = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-checkhost", "localhost", "-in"])
        .arg(&path)
        .output()?;
    let said = String::from_utf8_lossy(&checked.stdout).to_string();
    assert!(said.contains("does match"), "openssl: {said}");
    let errors = sslsocket::SslCertificate::verify(&[cert], Some("localhost"));
    assert!(
        !errors
            .iter()
            .any(|e| e.error() == sslsocket::SslErrorKind::HostNameMismatch),
        "a CN that reads `localhost` does not match localhost: {errors:?}"
    );
    Ok(())
}
