//! Review round 35 (b): attacks on this round's own changes: Unicode host names by UTS 46
//! (the peer name, common names, name constraints, both drivers' look-ups, the server-name
//! map), the blocking driver's flush of descriptor-less transports, and `SslKey` equality
//! by PKCS#8 form. Run with `cargo test -p sslsocket --all-features --test last_round35b`,
//! and again with `SSLSOCKET_BACKEND=openssl`. Every wait is bounded.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, DnType, DnValue, GeneralSubtree, NameConstraints, SanType};
use sslsocket::prelude::*;
use sslsocket::{SslCertificate, SslConfiguration, SslError, SslErrorKind, SslKey};
use support::chains::{cert, handshake, leaf, root, sub_ca_with, BoxResult, Ca, TestResult};
use support::{serving, trusting, Pki};

use SslErrorKind::HostNameMismatch;

const WAIT: Duration = Duration::from_secs(10);

/// `SslCertificate::verify` reads the process default configuration: one call at a time.
static DEFAULT_CONFIGURATION: Mutex<()> = Mutex::new(());

fn boxed(e: impl std::fmt::Display) -> Box<dyn std::error::Error> {
    e.to_string().into()
}

/// `SslCertificate::verify(chain, host)` with `trusted` as the only CA.
fn verify(trusted: &Ca, chain: &[&[u8]], host: &str) -> BoxResult<Vec<SslErrorKind>> {
    let _one = DEFAULT_CONFIGURATION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![cert(&trusted.der)?]);
    SslConfiguration::set_default_configuration(configuration);
    let chain = chain
        .iter()
        .map(|der| cert(der))
        .collect::<BoxResult<Vec<_>>>()?;
    Ok(SslCertificate::verify(&chain, Some(host))
        .iter()
        .map(SslError::error)
        .collect())
}

/// A subject of the given common names (each with its own string type) and no
/// subjectAltName extension.
fn common_names(cns: Vec<DnValue>) -> impl FnOnce(&mut CertificateParams) {
    move |p: &mut CertificateParams| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        for cn in cns {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.subject_alt_names = Vec::new();
    }
}

fn utf8(text: &str) -> DnValue {
    DnValue::Utf8String(text.to_string())
}

/// Runs `openssl ARGS` in `dir` (at most 60 s); an error with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) -> BoxResult<()> {
    let mut child = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("openssl {} took over 60 s", args.join(" ")).into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

// ----- the blocking driver's flush of a descriptor-less transport ---------------------

/// A blocking transport that keeps writes until flushed, and whose flush is refused once
/// for each batch with `kind` (`Interrupted`: "try again"; `WouldBlock`: "not now"), then
/// works. Reads go straight to TCP (with a read timeout, so no wait is unbounded).
struct HiccupFlush {
    tcp: TcpStream,
    pending: Vec<u8>,
    kind: std::io::ErrorKind,
    refused: bool,
}

impl Read for HiccupFlush {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for HiccupFlush {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if !self.refused {
            self.refused = true;
            return Err(std::io::Error::new(self.kind, "flush refused once"));
        }
        self.refused = false;
        self.tcp.write_all(&self.pending)?;
        self.pending.clear();
        self.tcp.flush()
    }
}

/// A blocking client over a `HiccupFlush` of `kind` to our server: whether the handshake
/// and one echoed line went through.
fn handshake_over_hiccup(kind: std::io::ErrorKind) -> TestResult {
    let pki = Pki::new().map_err(boxed)?;
    let leaf = pki.leaf("localhost", &["localhost"]).map_err(boxed)?;
    let (port, server) = support::serve_one(serving(&leaf)?, |socket| {
        let line = socket.next_line(0, WAIT)?;
        socket.write_all(&line)?;
        socket.disconnect_from_host()?;
        Ok(())
    })
    .map_err(boxed)?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_millis(500)))?;
    let stream = HiccupFlush {
        tcp,
        pending: Vec::new(),
        kind,
        refused: false,
    };
    let mut client = sslsocket::blocking::SslSocket::from_stream(stream, trusting(&pki)?);
    client.set_peer_verify_name("localhost");
    client.start_client_encryption()?;
    let waited = client.wait_for_encrypted(Duration::from_secs(4));
    let result: TestResult = (|| {
        waited
            .map_err(|e| format!("{kind:?} from one flush: the handshake did not finish: {e}"))?;
        client.write_all(b"ping\n")?;
        client.flush()?;
        let line = client.next_line(0, Duration::from_secs(4))?;
        assert_eq!(line, b"ping\n");
        Ok(())
    })();
    client.abort();
    drop(client);
    let _ = server.join();
    result
}

// Was a defect (round 35): a transport's flush that answers `Interrupted` once ("try again") leaves the
// ClientHello in the transport's buffer for good: `SocketIo::flushed`
// (src/blocking/transport.rs:243-256) takes `Interrupted` (and `WouldBlock`) as "retried
// with the next write", but nothing retries it: the client has nothing more to write until
// the server answers, and neither the read waits (`drive`, src/blocking/socket.rs:724-728 for
// `fd: None`) nor `flush()`/`wait_for_bytes_written` flush the transport again, so
// `wait_for_encrypted` times out. Right: `Interrupted` is retried at once (std's
// `write_all` convention), and a flush still owed (a flag like the tokio driver's
// `unflushed`) is retried before every wait for input and by `flush()`/
// `disconnect_from_host`, failing the operation at the deadline.
#[test]
fn a_blocking_client_retries_a_transport_flush_that_was_interrupted() -> TestResult {
    handshake_over_hiccup(std::io::ErrorKind::Interrupted)
}

// Was a defect (round 35): the same with `WouldBlock` (a `BufWriter` over a non-blocking socket whose send
// buffer is full for a moment): the owed flush is never retried (src/blocking/
// transport.rs:243-256 drops it, nothing records it), the ClientHello never leaves and the
// handshake times out. Right: remember the owed flush and retry it before each wait
// (polling/sleeping briefly within the deadline, as the driver's other waits are bounded).
#[test]
fn a_blocking_client_retries_a_transport_flush_that_would_block() -> TestResult {
    handshake_over_hiccup(std::io::ErrorKind::WouldBlock)
}

// ----- SslKey equality by PKCS#8 form -------------------------------------------------

// Was a defect (round 35): one Ed25519 key in PKCS#8 v2 (OneAsymmetricKey with the public key, RFC 5958,
// what rcgen with ring or aws-lc-rs writes) and in PKCS#8 v1 (what `openssl genpkey` and
// `openssl pkey` write) compares unequal: `impl PartialEq for SslKey`
// (src/cert/key.rs:88-105) compares the DER bytes as loaded when both are
// `KeyFormat::Pkcs8`, and `to_pkcs8_der` returns a PKCS#8 key as it came (key.rs:258). The doc
// (key.rs:85-87) promises "the same key whatever encoding it was loaded from". Right:
// compare a canonical form (algorithm, parameters and the private key octets; the
// optional public key left out), not the bytes as loaded.
#[test]
fn one_ed25519_key_in_pkcs8_v1_and_v2_is_equal() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let v2 = key.serialize_der();
    // v1: the same algorithm identifier and private key octets, version 0, nothing after.
    let prefix: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    assert_eq!(
        v2.get(5..16),
        prefix.get(5..16),
        "not the expected v2 layout"
    );
    let mut v1 = prefix.to_vec();
    v1.extend_from_slice(v2.get(16..48).ok_or("short v2 key")?);
    // OpenSSL reads the v1 form and finds rcgen's public key in it: one key.
    std::fs::write(d.join("v1.der"), &v1)?;
    openssl(
        d,
        &[
            "pkey", "-inform", "DER", "-in", "v1.der", "-pubout", "-outform", "DER", "-out",
            "pub.der",
        ],
    )?;
    let spki = std::fs::read(d.join("pub.der"))?;
    assert_eq!(spki.get(12..), Some(key.public_key_raw()));
    let from_v2 = SslKey::from_der(&v2)?;
    let from_v1 = SslKey::from_der(&v1)?;
    assert_eq!(
        (from_v1.algorithm(), from_v1.key_type(), from_v1.length()),
        (from_v2.algorithm(), from_v2.key_type(), from_v2.length())
    );
    assert!(
        from_v1 == from_v2,
        "one Ed25519 key in PKCS#8 v1 and v2 compares unequal"
    );
    Ok(())
}

// Held: the encodings this round made equal stay equal when both sides went through
// `to_pkcs8_der` and back, and two different keys of one type and length never compare
// equal (no false positive from the PKCS#8 comparison).
#[test]
fn different_keys_of_one_type_stay_unequal_in_every_encoding() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    for name in ["a", "b"] {
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &format!("{name}8.pem"),
            ],
        )?;
        openssl(
            d,
            &[
                "ec",
                "-in",
                &format!("{name}8.pem"),
                "-out",
                &format!("{name}1.pem"),
            ],
        )?;
    }
    let a8 = SslKey::from_file(d.join("a8.pem"), None)?;
    let a1 = SslKey::from_file(d.join("a1.pem"), None)?;
    let b8 = SslKey::from_file(d.join("b8.pem"), None)?;
    let b1 = SslKey::from_file(d.join("b1.pem"), None)?;
    assert!(a8 == a1 && b8 == b1);
    assert!(a8 != b1 && a1 != b8 && a1 != b1 && a8 != b8);
    let back = SslKey::from_der(&a1.to_pkcs8_der()?)?;
    assert!(back == a1 && back == a8 && back != b1);
    Ok(())
}

// ----- Unicode names: the host check ----------------------------------------------------

// Held: Unicode common names against look-alikes and case folding, on
// `SslCertificate::verify` (every backend: our verifier): the eszett and final sigma stay
// themselves (nontransitional processing: `faß` is not `fass`, `ς` is not `σ`), upper
// case folds (`FAß`, `ΟΔΟΣ` → `οδοσ`), a Cyrillic `а` is not a Latin `a`, a peer name whose
// `xn--` label is not valid punycode matches no U-label, and a wildcard beside or inside a
// Unicode label matches nothing.
#[test]
fn unicode_common_names_resist_look_alikes_and_foldings() -> TestResult {
    let ca = root("R35B Fold Root")?;
    let cases: Vec<(&str, Vec<(&str, bool)>)> = vec![
        (
            "fa\u{df}.example",
            vec![
                ("fa\u{df}.example", true),
                ("FA\u{df}.EXAMPLE", true),
                ("xn--fa-hia.example", true),
                ("fass.example", false),
                ("FASS.example", false),
            ],
        ),
        (
            "\u{39f}\u{394}\u{39f}\u{3a3}.example",
            vec![
                ("\u{3bf}\u{3b4}\u{3bf}\u{3c3}.example", true),
                ("\u{3bf}\u{3b4}\u{3bf}\u{3c2}.example", false),
            ],
        ),
        (
            "p\u{430}ypal.example",
            vec![
                ("paypal.example", false),
                ("xn--pypal-4ve.example", true),
                ("P\u{410}YPAL.example", true),
            ],
        ),
        (
            "*.b\u{fc}cher.example",
            vec![
                ("www.b\u{fc}cher.example", true),
                ("\u{e4}.b\u{fc}cher.example", true),
                ("b\u{fc}cher.example", false),
                ("a.b.b\u{fc}cher.example", false),
                ("www.bucher.example", false),
                ("www.xn--bcher-kva.example", true),
                ("www.xn--bcher-kvb.example", false),
            ],
        ),
        ("\u{fc}*.example", vec![("\u{fc}a.example", false)]),
        ("*\u{fc}.example", vec![("a\u{fc}.example", false)]),
        ("\u{fc}.*.example", vec![("\u{fc}.a.example", false)]),
        (
            "b\u{fc}cher.example",
            vec![("xn--bcher-.example", false), ("xn--zz.example", false)],
        ),
    ];
    for (cn, hosts) in cases {
        let (der, _key) = leaf(&ca, "localhost", common_names(vec![utf8(cn)]))?;
        for (host, matches) in hosts {
            let errors = verify(&ca, &[&der], host)?;
            let expected = if matches {
                Vec::new()
            } else {
                vec![HostNameMismatch]
            };
            assert_eq!(
                errors,
                expected,
                "CN {} host {}",
                cn.escape_default(),
                host.escape_default()
            );
        }
    }
    Ok(())
}

// Held: name constraints judge every common name the host check reads, whatever its
// string type: a BMPString and a UniversalString Unicode CN under an excluded A-label subtree, and a
// Unicode wildcard CN that reaches an excluded name one label below it, and several CNs
// (one inside the permitted subtree, one Unicode name outside) are refused, whichever
// host is asked for; `SslCertificate::verify` and a handshake on the active backend agree.
#[test]
fn constraints_see_every_common_name_in_every_string_type() -> TestResult {
    use rcgen::string::{BmpString, UniversalString};
    let excluded = |name: &str| NameConstraints {
        permitted_subtrees: Vec::new(),
        excluded_subtrees: vec![GeneralSubtree::DnsName(name.into())],
    };
    let cases: Vec<(NameConstraints, Vec<DnValue>, &str)> = vec![
        (
            excluded("xn--bcher-kva.example"),
            vec![DnValue::BmpString(BmpString::try_from(
                "B\u{dc}CHER.example",
            )?)],
            "b\u{fc}cher.example",
        ),
        (
            excluded("xn--bcher-kva.example"),
            vec![DnValue::UniversalString(UniversalString::try_from(
                "b\u{fc}cher.example",
            )?)],
            "b\u{fc}cher.example",
        ),
        (
            excluded("www.xn--bcher-kva.example"),
            vec![utf8("*.b\u{fc}cher.example")],
            "www.b\u{fc}cher.example",
        ),
        (
            excluded("www.xn--bcher-kva.example"),
            vec![DnValue::BmpString(BmpString::try_from(
                "*.B\u{dc}CHER.example",
            )?)],
            "www.b\u{fc}cher.example",
        ),
    ];
    for (index, (constraints, cns, host)) in cases.into_iter().enumerate() {
        let ca = root("R35B NC Root")?;
        let int = sub_ca_with(&ca, "R35B NC Int", None, move |p| {
            p.name_constraints = Some(constraints);
        })?;
        let (der, key) = leaf(&int, "localhost", common_names(cns))?;
        let errors = verify(&ca, &[&der, &int.der], host)?;
        assert!(
            errors.iter().any(|e| *e != HostNameMismatch),
            "case {index}: the constraints let it through: {errors:?}"
        );
        let outcome = handshake(&[&ca.der], vec![der, int.der.clone()], &key, host, |_| {})?;
        assert!(!outcome.encrypted, "case {index}: connected");
    }
    // Several common names (rcgen keeps one per type, so `openssl req` makes these): one
    // inside the permitted subtree, one Unicode name outside it, in either order.
    for subject in [
        "/CN=www.corp.example/CN=b\u{fc}cher.example",
        "/CN=b\u{fc}cher.example/CN=www.corp.example",
    ] {
        let ca = root("R35B NC2 Root")?;
        let int = sub_ca_with(&ca, "R35B NC2 Int", None, |p| {
            p.name_constraints = Some(NameConstraints {
                permitted_subtrees: vec![GeneralSubtree::DnsName("corp.example".into())],
                excluded_subtrees: Vec::new(),
            });
        })?;
        let (der, key) = openssl_leaf(&int, subject)?;
        let shown = cert(&der)?.subject_info(sslsocket::SubjectInfo::CommonName);
        assert_eq!(shown.len(), 2, "{subject}: {shown:?}");
        for host in ["b\u{fc}cher.example", "www.corp.example"] {
            let errors = verify(&ca, &[&der, &int.der], host)?;
            assert!(
                errors.iter().any(|e| *e != HostNameMismatch),
                "{subject} for {host}: the constraints let it through: {errors:?}"
            );
            let outcome = handshake(
                &[&ca.der],
                vec![der.clone(), int.der.clone()],
                &key,
                host,
                |_| {},
            )?;
            assert!(!outcome.encrypted, "{subject} for {host}: connected");
        }
    }
    Ok(())
}

/// A leaf with subject `subject` (UTF-8, `openssl req -subj` syntax), no subjectAltName,
/// signed by `issuer` with the `openssl` command; its DER and key.
fn openssl_leaf(issuer: &Ca, subject: &str) -> BoxResult<(Vec<u8>, rcgen::KeyPair)> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    std::fs::write(d.join("ca.der"), &issuer.der)?;
    std::fs::write(d.join("ca.key"), &issuer.key_pem)?;
    std::fs::write(
        d.join("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(
        d,
        &["x509", "-inform", "DER", "-in", "ca.der", "-out", "ca.pem"],
    )?;
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-utf8",
            "-subj",
            subject,
            "-out",
            "leaf.csr",
        ],
    )?;
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "4242",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-outform",
            "DER",
            "-out",
            "leaf.der",
        ],
    )?;
    let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(d.join("leaf.key"))?)?;
    Ok((std::fs::read(d.join("leaf.der"))?, key))
}

// ----- Unicode names: the drivers' look-ups and SNI ------------------------------------

/// The thread of [`sni_server`]: the SNI it was asked for, or what went wrong.
type SniThread = std::thread::JoinHandle<Result<Option<String>, String>>;

/// A blocking server for one connection that reports the SNI it was asked for.
fn sni_server(pki: &Pki) -> BoxResult<(u16, SniThread)> {
    let leaf = pki.leaf("localhost", &["localhost"]).map_err(boxed)?;
    let server = sslsocket::blocking::SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let port = server.local_addr().port();
    let thread = std::thread::spawn(move || match server.next_connection(WAIT) {
        Ok(Ok(mut socket)) => {
            let name = socket.requested_server_name().map(str::to_string);
            let _ = socket.disconnect_from_host();
            Ok(name)
        }
        Ok(Err(failed)) => Err(format!("server handshake: {}", failed.error_string())),
        Err(e) => Err(e.to_string()),
    });
    Ok((port, thread))
}

// Held: a host given in full-width letters (`ｌｏｃａｌｈｏｓｔ`, which UTS 46 maps to
// `localhost`, as Qt's `QUrl::toAce`) is looked up, verified and sent as SNI in its ASCII
// form by the blocking driver; a host IDNA refuses is not connected to at all.
#[test]
fn the_blocking_driver_looks_up_and_verifies_the_ascii_form() -> TestResult {
    let pki = Pki::new().map_err(boxed)?;
    let (port, server) = sni_server(&pki)?;
    let mut client = sslsocket::blocking::SslSocket::with_configuration(trusting(&pki)?);
    client.connect_to_host_encrypted(
        "\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}",
        port,
    );
    client.wait_for_encrypted(WAIT)?;
    assert!(client.is_encrypted());
    let _ = client.disconnect_from_host();
    let sni = server.join().map_err(|_| "server thread panicked")??;
    assert_eq!(sni.as_deref(), Some("localhost"));
    let mut refused = sslsocket::blocking::SslSocket::with_configuration(trusting(&pki)?);
    refused.connect_to_host_encrypted("local\u{200d}host", port);
    assert!(refused.wait_for_encrypted(Duration::from_secs(3)).is_err());
    assert!(!refused.is_encrypted());
    Ok(())
}

// Held: the tokio driver alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokio_driver_looks_up_and_verifies_the_ascii_form() -> TestResult {
    let pki = Pki::new().map_err(boxed)?;
    let (port, server) = sni_server(&pki)?;
    let connected = tokio::time::timeout(
        WAIT,
        sslsocket::tokio::SslSocket::connect_to_host_encrypted(
            "\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}",
            port,
            trusting(&pki)?,
        ),
    )
    .await
    .map_err(|_| "timed out")?;
    let mut client = connected.map_err(|e| e.to_string())?;
    assert!(client.is_encrypted());
    let _ = tokio::time::timeout(WAIT, client.disconnect_from_host()).await;
    let sni = tokio::task::spawn_blocking(move || server.join())
        .await?
        .map_err(|_| "server thread panicked")??;
    assert_eq!(sni.as_deref(), Some("localhost"));
    Ok(())
}

// Held: the server-name map reads a Unicode wildcard pattern as its A-labels: a client
// asking for `www.bücher.example` (sent as `www.xn--bcher-kva.example`) gets that
// identity, one two labels below gets the default one.
#[test]
fn a_unicode_wildcard_server_name_pattern_serves_its_a_label_hosts() -> TestResult {
    let ca = root("R35B SNI Root")?;
    let named = |sans: Vec<&str>| {
        let sans: Vec<SanType> = sans
            .into_iter()
            .filter_map(|s| s.try_into().ok().map(SanType::DnsName))
            .collect();
        move |p: &mut CertificateParams| p.subject_alt_names = sans
    };
    let (default_der, default_key) = leaf(&ca, "localhost", named(vec!["localhost"]))?;
    let (idn_der, idn_key) = leaf(
        &ca,
        "localhost",
        named(vec!["*.xn--bcher-kva.example", "a.b.xn--bcher-kva.example"]),
    )?;
    let mut serving = SslConfiguration::default();
    serving.set_local_certificate(cert(&default_der)?);
    serving.set_private_key(SslKey::from_der(&default_key.serialize_der())?);
    serving.add_server_name_certificate(
        "*.B\u{dc}CHER.example",
        sslsocket::SslIdentity::new(
            vec![cert(&idn_der)?],
            SslKey::from_der(&idn_key.serialize_der())?,
        )?,
    )?;
    let server = sslsocket::blocking::SslServer::listen("127.0.0.1:0", serving)?;
    let port = server.local_addr().port();
    for (peer_name, expected) in [
        ("www.b\u{fc}cher.example", &idn_der),
        ("a.b.b\u{fc}cher.example", &default_der),
    ] {
        let mut configuration = SslConfiguration::default();
        configuration.set_ca_certificates(vec![cert(&ca.der)?]);
        configuration.set_peer_verify_mode(sslsocket::PeerVerifyMode::VerifyNone);
        let mut client = sslsocket::blocking::SslSocket::with_configuration(configuration);
        client.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, peer_name);
        client.wait_for_encrypted(WAIT)?;
        let served = client
            .peer_certificate()
            .map(|c| c.der().to_vec())
            .unwrap_or_default();
        assert_eq!(&served, expected, "{}", peer_name.escape_default());
        let _ = server.next_connection(WAIT)?;
        client.abort();
    }
    Ok(())
}
