//! Adversarial review of round 31 (a8753bd): server-side resumption tied to the SNI host
//! name (OpenSSL backend), OpenSSL-style name comparison (canonical form), PKCS#12 key
//! pairing and DER detection. Run on both backends (`SSLSOCKET_BACKEND=openssl`).
//! The name comparison uses the system OpenSSL (the `openssl` feature) as its oracle; its
//! DER helpers are unused without it.
#![cfg_attr(not(feature = "openssl"), allow(dead_code))]

mod support;

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sslsocket::blocking::SslServer;
use sslsocket::prelude::*;
use sslsocket::{SslCertificate, SslConfiguration, SslIdentity, SslKey};
use support::{os_args, serving, Issued, OpensslClient, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

// ----- resumption and SNI ---------------------------------------------------------------

fn identity(issued: &Issued) -> BoxResult<SslIdentity> {
    let chain = issued
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SslIdentity::new(chain, SslKey::from_der(&issued.key_der)?)?)
}

/// What our server saw of one connection: (name asked for, resumed).
type Seen = (Option<String>, bool);

/// Our server with `configuration`, accepting until nobody connects for 3 s.
fn server(configuration: SslConfiguration) -> BoxResult<(u16, mpsc::Receiver<Seen>)> {
    let listener = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = listener.local_addr().port();
    let (tell, seen) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(result) = listener.next_connection(Duration::from_secs(3)) {
            if let Ok(mut socket) = result {
                let _ = tell.send((
                    socket.requested_server_name().map(str::to_string),
                    socket.is_session_resumed(),
                ));
                let _ = socket.wait_for_ready_read(Duration::from_millis(300));
                let _ = socket.close();
            }
        }
    });
    Ok((port, seen))
}

/// One s_client connection: `name` as SNI (`None`: `-noservername`), the session saved to
/// or read from `session`. Returns (s_client reused, server's view).
fn connect(
    pki: &Pki,
    port: u16,
    seen: &mpsc::Receiver<Seen>,
    protocol: &str,
    name: Option<&str>,
    session: &Path,
    save: bool,
) -> BoxResult<(bool, Seen)> {
    connect_with(pki, port, seen, &[protocol], name, session, save)
}

fn connect_with(
    pki: &Pki,
    port: u16,
    seen: &mpsc::Receiver<Seen>,
    extra: &[&str],
    name: Option<&str>,
    session: &Path,
    save: bool,
) -> BoxResult<(bool, Seen)> {
    let mut args = os_args!["-CAfile", pki.root_pem()];
    args.extend(extra.iter().map(std::ffi::OsString::from));
    match name {
        Some(name) => args.extend(os_args!["-servername", name]),
        None => args.extend(os_args!["-noservername"]),
    }
    if save {
        args.extend(os_args!["-sess_out", session, "-ign_eof"]);
    } else {
        args.extend(os_args!["-sess_in", session]);
    }
    let out = OpensslClient::run(port, &args, if save { b"x\n" } else { b"" }, WAIT)?;
    let text = out.combined();
    if std::env::var_os("R31_DEBUG").is_some() {
        eprintln!("{text}");
    }
    if !text.contains("TLSv1.") {
        return Err(format!("no handshake: {text}").into());
    }
    let server = seen.recv_timeout(WAIT)?;
    Ok((text.contains("Reused, TLSv1."), server))
}

#[test]
fn resumption_with_the_same_sni_works_on_a_server_without_a_name_map() -> TestResult {
    // Regression check of the SNI rule: the most ordinary server (one identity, no name
    // map, no resolver) and a client that sends SNI (every browser, and our own client when
    // it connects by host name) must still resume with the very name the session was made
    // under. OpenSSL stores the SNI in the SSL_SESSION only when a servername callback
    // answered SSL_TLSEXT_ERR_OK (`final_server_name`); without a callback the session has
    // no host name, so `same_server_name(Name("localhost"), None)` is false and the
    // OpenSSL backend never resumes for such clients (rustls's server does: same name).
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let (port, seen) = server(serving(&leaf)?)?;
    let mut wrong = Vec::new();
    for protocol in ["-tls1_2", "-tls1_3"] {
        let session = pki.dir.path().join(format!("plain{protocol}.pem"));
        connect(
            &pki,
            port,
            &seen,
            protocol,
            Some("localhost"),
            &session,
            true,
        )?;
        let (reused, (_, resumed)) = connect(
            &pki,
            port,
            &seen,
            protocol,
            Some("localhost"),
            &session,
            false,
        )?;
        if !reused || !resumed {
            wrong.push(format!(
                "{protocol}: same SNI `localhost` both times: s_client reused={reused}, \
                 server resumed={resumed}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

fn sni_configuration(pki: &Pki) -> BoxResult<SslConfiguration> {
    let default = pki.leaf("localhost", &["localhost"])?;
    let api = pki.leaf("api.example.com", &["api.example.com"])?;
    let mut configuration = serving(&default)?;
    configuration.add_server_name_certificate("api.example.com", identity(&api)?)?;
    Ok(configuration)
}

#[test]
fn sni_mixed_presence_and_unmapped_names_never_cross_resume() -> TestResult {
    // RFC 6066 section 3: a session resumes only under the name it was made for. Try the
    // combinations an attacker can choose: no SNI then a mapped name, a mapped name then
    // none, an unmapped name then a mapped one, and the same unmapped name (must resume).
    let pki = Pki::new()?;
    let (port, seen) = server(sni_configuration(&pki)?)?;
    let mut wrong = Vec::new();
    let cases: [(Option<&str>, Option<&str>, bool); 5] = [
        (None, Some("api.example.com"), false),
        (Some("api.example.com"), None, false),
        (Some("unmapped.example.com"), Some("api.example.com"), false),
        (Some("unmapped.example.com"), None, false),
        (Some("api.example.com"), Some("API.example.com."), true),
    ];
    for protocol in ["-tls1_2", "-tls1_3"] {
        for (i, (made, asked, should)) in cases.iter().enumerate() {
            let session = pki.dir.path().join(format!("mix{protocol}{i}.pem"));
            connect(&pki, port, &seen, protocol, *made, &session, true)?;
            let (reused, (_, resumed)) =
                connect(&pki, port, &seen, protocol, *asked, &session, false)?;
            if reused != *should || resumed != *should {
                wrong.push(format!(
                    "{protocol}: made under {made:?}, offered under {asked:?}: s_client \
                     reused={reused}, server resumed={resumed}, expected {should}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

// ----- names compared as OpenSSL compares them ------------------------------------------

/// A DER TLV: tag, length, content.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The TLVs of a DER content, each as its whole encoding.
fn elements(mut content: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while content.len() >= 2 {
        let first = content[1];
        let (header, len) = if first < 0x80 {
            (2, usize::from(first))
        } else {
            let n = usize::from(first & 0x7f);
            let len = content[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (2 + n, len)
        };
        let (element, rest) = content.split_at(header + len);
        out.push(element);
        content = rest;
    }
    out
}

/// The content of a single TLV.
fn content_of(element: &[u8]) -> &[u8] {
    let first = element[1];
    let header = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7f)
    };
    &element[header..]
}

const CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
const O: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0a];

/// One attribute: type OID TLV, value tag byte, value bytes.
type Attribute<'a> = (&'a [u8], u8, &'a [u8]);

/// A Name from RDNs of attributes.
fn name(rdns: &[&[Attribute<'_>]]) -> Vec<u8> {
    let mut seq = Vec::new();
    for rdn in rdns {
        let mut set = Vec::new();
        for (oid, tag, value) in rdn.iter() {
            let mut atv = oid.to_vec();
            atv.extend(tlv(*tag, value));
            set.extend(tlv(0x30, &atv));
        }
        seq.extend(tlv(0x31, &set));
    }
    tlv(0x30, &seq)
}

/// A certificate with these raw subject and issuer names, signed by its own key (ECDSA
/// P-256): the TBS of a template made by OpenSSL with the names replaced, signed again.
#[cfg(feature = "openssl")]
fn self_signed_with_names(subject: &[u8], issuer: &[u8]) -> BoxResult<Vec<u8>> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut template_name = X509NameBuilder::new()?;
    template_name.append_entry_by_nid(Nid::COMMONNAME, "template")?;
    let template_name = template_name.build();
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = BigNum::from_u32(7)?.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&template_name)?;
    builder.set_issuer_name(&template_name)?;
    builder.set_pubkey(&key)?;
    builder.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    builder.set_not_after(&*Asn1Time::days_from_now(30)?)?;
    builder.sign(&key, MessageDigest::sha256())?;
    let template = builder.build().to_der()?;
    let outer = elements(content_of(&template));
    let (tbs, algorithm) = (outer[0], outer[1]);
    let mut parts: Vec<Vec<u8>> = elements(content_of(tbs))
        .iter()
        .map(|e| e.to_vec())
        .collect();
    // version, serial, signature, issuer, validity, subject, spki
    parts[3] = issuer.to_vec();
    parts[5] = subject.to_vec();
    let tbs = tlv(0x30, &parts.concat());
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &key)?;
    signer.update(&tbs)?;
    let mut signature = vec![0u8];
    signature.extend(signer.sign_to_vec()?);
    let mut certificate = tbs;
    certificate.extend_from_slice(algorithm);
    certificate.extend(tlv(0x03, &signature));
    Ok(tlv(0x30, &certificate))
}

#[cfg(feature = "openssl")]
#[test]
fn is_self_signed_agrees_with_openssls_name_comparison() -> TestResult {
    // Round 31 says names are compared "as OpenSSL compares them (X509_NAME_cmp on the
    // canonical form)", and `is_self_signed` is Qt's `X509_check_issued(x, x) == OK`. Each
    // certificate below is signed by its own key, so only the name comparison decides.
    // The oracle is the system OpenSSL itself (the `openssl` crate): `X509::issued`.
    let printable_utf8: &[u8] = "\u{e9}t\u{e9} CA".as_bytes(); // PrintableString holding UTF-8 bytes
    let latin1: &[u8] = b"\xe9t\xe9 CA"; // PrintableString holding Latin-1 bytes
    let emoji_bmp: &[u8] = &[0xd8, 0x3d, 0xde, 0x00, 0x00, 0x41]; // U+1F600 'A' as UTF-16 pairs
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            // OpenSSL reads a PrintableString byte by byte (Latin-1, ASN1_STRING_to_UTF8 with
            // 1-byte chars): C3 A9 is "Ã©", not "é". Ours decodes it as UTF-8.
            "PrintableString with UTF-8 bytes vs UTF8String",
            name(&[&[(CN, 0x13, printable_utf8)]]),
            name(&[&[(CN, 0x0c, "\u{e9}t\u{e9} CA".as_bytes())]]),
        ),
        (
            // The converse: E9 in a PrintableString is "é" to OpenSSL; ours gives up on
            // UTF-8 and compares tag and bytes.
            "PrintableString with Latin-1 bytes vs UTF8String",
            name(&[&[(CN, 0x13, latin1)]]),
            name(&[&[(CN, 0x0c, "\u{e9}t\u{e9} CA".as_bytes())]]),
        ),
        (
            // [APPLICATION 12] is no UTF8String: `canonical` matches on the tag *number*
            // only (asn1-rs `Tag`), not its class.
            "[APPLICATION 12] vs UTF8String",
            name(&[&[(CN, 0x4c, b"Root CA")]]),
            name(&[&[(CN, 0x0c, b"root ca")]]),
        ),
        (
            "[CONTEXT 12] vs UTF8String",
            name(&[&[(CN, 0x8c, b"Root CA")]]),
            name(&[&[(CN, 0x0c, b"ROOT CA")]]),
        ),
        (
            // A BMPString is UCS-2 to OpenSSL: a surrogate pair is no character.
            "BMPString with a surrogate pair vs UTF8String",
            name(&[&[(CN, 0x1e, emoji_bmp)]]),
            name(&[&[(CN, 0x0c, "\u{1f600}A".as_bytes())]]),
        ),
        (
            // DER sorts a SET OF; OpenSSL's canonical encoding is DER (i2d of the SET OF
            // entries), so the order of a multi-valued RDN's attributes does not count.
            "multi-valued RDN in two orders",
            name(&[&[(CN, 0x0c, b"a"), (O, 0x0c, b"b")]]),
            name(&[&[(O, 0x0c, b"b"), (CN, 0x0c, b"a")]]),
        ),
        (
            // An empty RDN contributes no entry to OpenSSL's X509_NAME.
            "an empty RDN",
            name(&[&[(CN, 0x0c, b"a")], &[]]),
            name(&[&[(CN, 0x0c, b"a")]]),
        ),
        (
            "control: ASCII case and spaces",
            name(&[&[(CN, 0x13, b"  Root   CA ")]]),
            name(&[&[(CN, 0x0c, b"root ca")]]),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, subject, issuer) in cases {
        let der = self_signed_with_names(&subject, &issuer)?;
        let openssl = match openssl::x509::X509::from_der(&der) {
            Ok(x) => Some(x.issued(&x) == openssl::x509::X509VerifyResult::OK),
            Err(_) => None,
        };
        let ours = SslCertificate::from_der(&der).map(|c| c.is_self_signed());
        match (openssl, &ours) {
            (Some(theirs), Ok(ours)) if theirs == *ours => {}
            (None, Err(_)) | (None, Ok(false)) => {}
            _ => wrong.push(format!(
                "{what}: OpenSSL X509_check_issued(x, x) == OK: {openssl:?} (None: OpenSSL \
                 cannot read it), ours is_self_signed: {ours:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

// ----- PKCS#12 pairing ------------------------------------------------------------------

fn openssl_ok(args: &[std::ffi::OsString]) -> TestResult {
    let out = support::openssl_run(args, b"", WAIT)?;
    if !out.success() {
        return Err(format!("openssl {args:?}: {}", out.combined()).into());
    }
    Ok(())
}

#[test]
fn pkcs12_pairs_an_ec_key_with_its_certificate_whatever_the_point_encoding() -> TestResult {
    // `belongs_to` compares the SubjectPublicKeyInfo aws-lc derives from the private key
    // (uncompressed point) with the certificate's *bytes*. A certificate whose EC point is
    // encoded compressed (`openssl ec -conv_form compressed`, RFC 5480 allows it) is the
    // same public key, and OpenSSL's PKCS12_parse (X509_check_private_key -> EVP_PKEY_eq,
    // EC_POINT_cmp) pairs them, as Qt does; `openssl pkcs12 -export` itself accepted the
    // pair. Round 31 refuses this valid bundle with KeyMismatch (before, localKeyID
    // paired them).
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let (key, compressed, cert, p12) = (
        d.join("k.pem"),
        d.join("kc.pem"),
        d.join("c.pem"),
        d.join("c.p12"),
    );
    openssl_ok(&os_args![
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &key
    ])?;
    openssl_ok(&os_args![
        "ec",
        "-in",
        &key,
        "-conv_form",
        "compressed",
        "-out",
        &compressed
    ])?;
    openssl_ok(&os_args![
        "req",
        "-x509",
        "-new",
        "-key",
        &compressed,
        "-subj",
        "/CN=compressed",
        "-days",
        "10",
        "-out",
        &cert
    ])?;
    openssl_ok(&os_args![
        "pkcs12",
        "-export",
        "-in",
        &cert,
        "-inkey",
        &compressed,
        "-out",
        &p12,
        "-passout",
        "pass:pw"
    ])?;
    let bundle = sslsocket::cert::import_pkcs12(&std::fs::read(&p12)?, b"pw");
    let expected = SslCertificate::from_pem(&std::fs::read(&cert)?)?;
    let bundle = bundle
        .map_err(|e| format!("a valid bundle (OpenSSL pairs key and certificate) refused: {e}"))?;
    assert_eq!(Some(bundle.certificate()), expected.first());
    Ok(())
}

#[test]
fn sni_same_name_resumes_after_a_hello_retry_request() -> TestResult {
    // TLS 1.3: the client hello callback runs for both ClientHellos of a HelloRetryRequest
    // exchange, but `hello_name` is a OnceLock that keeps the first one. Pin that a
    // legitimate resumption across an HRR (same name both times) still works.
    let pki = Pki::new()?;
    let mut configuration = sni_configuration(&pki)?;
    configuration.set_elliptic_curves(vec![sslsocket::SslEllipticCurve::from_short_name(
        "prime256v1",
    )
    .ok_or("P-256")?]);
    let (port, seen) = server(configuration)?;
    let session = pki.dir.path().join("hrr.pem");
    let sni = Some("api.example.com");
    connect_with(
        &pki,
        port,
        &seen,
        &["-tls1_3", "-groups", "P-256"],
        sni,
        &session,
        true,
    )?;
    let extra = ["-tls1_3", "-groups", "X25519:P-256"];
    let (reused, (_, resumed)) = connect_with(&pki, port, &seen, &extra, sni, &session, false)?;
    assert!(
        reused && resumed,
        "s_client reused={reused}, server resumed={resumed}"
    );
    Ok(())
}
