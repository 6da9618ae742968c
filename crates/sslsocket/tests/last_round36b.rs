//! Round 36 (review L2): the newest code: names and extensions read strictly as DER
//! (false refusals of valid certificates made by the `openssl` command), and
//! `encrypted_bytes_available()` on the rustls backend.
//! `cargo test -p sslsocket --all-features --test last_round36b`, and again with
//! `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rcgen::CustomExtension;
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{SslCertificate, SslConfiguration, SslKey, SslProtocol};
use sslsocket::{SslError, SslErrorKind};
use support::chains::{handshake, kinds_on, leaf, root, sub_ca_with, TestResult};
use support::{active_backend, serving, trusting, Pki};

const WAIT: Duration = Duration::from_secs(10);

fn openssl(dir: &Path, args: &[&str]) -> TestResult {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// A CA (`ca_ext` as its v3 extensions, `ca_subj` its subject) and a leaf it issues
/// (`leaf_ext`, `leaf_subj`), made by the `openssl` command; both EC P-256.
/// `leaf_extra` adds arguments to the leaf's `openssl x509 -req`.
struct Made {
    ca: Vec<SslCertificate>,
    leaf: Vec<SslCertificate>,
    key: SslKey,
}

fn make(
    ca_subj: &str,
    ca_ext: &str,
    leaf_subj: &str,
    leaf_ext: &str,
    multivalue: bool,
    req_extra: &str,
) -> Result<Made, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    std::fs::write(d.join("ca.ext"), format!("[v3]\n{ca_ext}\n"))?;
    std::fs::write(d.join("leaf.ext"), format!("[v3]\n{leaf_ext}\n"))?;
    for name in ["ca", "leaf"] {
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key"),
            ],
        )?;
    }
    let mut ca_args = vec![
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        ca_subj,
        "-days",
        "30",
        "-config",
        "ca.ext",
        "-extensions",
        "v3",
        "-utf8",
    ];
    if multivalue {
        ca_args.push("-multivalue-rdn");
    }
    // `req` needs a distinguished_name section in its config.
    std::fs::write(
        d.join("ca.ext"),
        format!("[req]\ndistinguished_name=dn\n{req_extra}\n[dn]\n[v3]\n{ca_ext}\n"),
    )?;
    ca_args.extend(["-out", "ca.pem"]);
    openssl(d, &ca_args)?;
    std::fs::write(
        d.join("req.cnf"),
        format!("[req]\ndistinguished_name=dn\n{req_extra}\n[dn]\n"),
    )?;
    let mut req = vec![
        "req", "-new", "-key", "leaf.key", "-subj", leaf_subj, "-config", "req.cnf", "-utf8",
    ];
    if multivalue {
        req.push("-multivalue-rdn");
    }
    req.extend(["-out", "leaf.csr"]);
    openssl(d, &req)?;
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
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
            "-extensions",
            "v3",
            "-out",
            "leaf.pem",
        ],
    )?;
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "leaf.key",
            "-out",
            "leaf8.key",
        ],
    )?;
    Ok(Made {
        ca: SslCertificate::from_file(d.join("ca.pem"))?,
        leaf: SslCertificate::from_file(d.join("leaf.pem"))?,
        key: SslKey::from_pem(&std::fs::read(d.join("leaf8.key"))?, None)?,
    })
}

/// Serves `made`'s leaf and connects a client trusting its CA to it as `localhost`; the
/// client's handshake errors (empty: accepted).
fn connect(made: &Made) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut config = SslConfiguration::default();
    config
        .set_local_certificate_chain(made.leaf.clone())
        .set_private_key(made.key.clone());
    let server = SslServer::listen("127.0.0.1:0", config)?;
    let mut client_config = SslConfiguration::default();
    client_config.set_ca_certificates(made.ca.clone());
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted_with_peer_name(
        "127.0.0.1",
        server.local_addr().port(),
        "localhost",
    );
    let server_side = std::thread::spawn(move || {
        let _ = server.next_connection(WAIT);
    });
    let result = client.wait_for_encrypted(WAIT);
    let errors: Vec<String> = client
        .ssl_handshake_errors()
        .iter()
        .map(|e| {
            format!(
                "{:?} on {:?}",
                e.error(),
                e.certificate().map(SslCertificate::subject_rfc4514)
            )
        })
        .collect();
    client.abort();
    let _ = server_side.join();
    if result.is_err() && errors.is_empty() {
        return Ok(vec![format!("failed with no error listed: {result:?}")]);
    }
    Ok(errors)
}

const CA_BASE: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash";
const LEAF_BASE: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid";

// Held: every GeneralName form in a leaf's subjectAltName (and an issuerAltName).
#[test]
fn every_general_name_form_in_subject_alt_name_is_accepted() -> TestResult {
    let leaf_ext = format!(
        "{LEAF_BASE}\nsubjectAltName=DNS:localhost,email:a@example.com,URI:https://example.com/x,IP:127.0.0.1,IP:::1,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@example.com,otherName:1.2.3.4;INTEGER:5,RID:1.2.3.4.5,dirName:dir_sect\nissuerAltName=email:ca@example.com,URI:https://ca.example.com\n[dir_sect]\nCN=dir\nO=Org"
    );
    let made = make(
        "/CN=Test CA",
        CA_BASE,
        "/CN=localhost",
        &leaf_ext,
        false,
        "",
    )?;
    assert_eq!(connect(&made)?, Vec::<String>::new());
    Ok(())
}

// Held: a CA whose nameConstraints permit and exclude DNS and IP subtrees (IPv4 and IPv6
// ranges) over a leaf inside them. (Email, URI and dirName subtrees are refused on rustls
// by webpki, as the README decides; the OpenSSL backend accepts them.)
#[test]
fn name_constraints_of_every_subtree_kind_are_accepted() -> TestResult {
    let ca_ext = format!(
        "{CA_BASE}\nnameConstraints=critical,permitted;DNS:localhost,permitted;IP:127.0.0.0/255.0.0.0,permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,excluded;DNS:bad.localhost,excluded;IP:10.0.0.0/255.0.0.0,excluded;IP:fe80::/ffc0::"
    );
    let leaf_ext = format!("{LEAF_BASE}\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1");
    let made = make(
        "/O=Org/CN=Test CA",
        &ca_ext,
        "/O=Org/CN=localhost",
        &leaf_ext,
        false,
        "",
    )?;
    assert_eq!(connect(&made)?, Vec::<String>::new());
    Ok(())
}

// Held: T61String names (OpenSSL's `default` mask picks T61String for Latin-1 text).
#[test]
fn t61_string_names_are_accepted() -> TestResult {
    let leaf_ext = format!("{LEAF_BASE}\nsubjectAltName=DNS:localhost");
    let made = make(
        "/O=B\u{e9}r/CN=Test CA",
        CA_BASE,
        "/O=B\u{e9}r/CN=localhost",
        &leaf_ext,
        false,
        "string_mask=default",
    )?;
    assert_eq!(connect(&made)?, Vec::<String>::new());
    Ok(())
}

// Held: multi-valued RDNs in the issuer and subject.
#[test]
fn multi_valued_rdns_are_accepted() -> TestResult {
    let leaf_ext = format!("{LEAF_BASE}\nsubjectAltName=DNS:localhost");
    let made = make(
        "/CN=Test CA+O=Org+OU=Unit",
        CA_BASE,
        "/CN=localhost+O=Org",
        &leaf_ext,
        true,
        "",
    )?;
    assert_eq!(connect(&made)?, Vec::<String>::new());
    Ok(())
}

// Held: an empty subject with a (critical) subjectAltName.
#[test]
fn empty_subject_with_alt_names_is_accepted() -> TestResult {
    let leaf_ext = format!("{LEAF_BASE}\nsubjectAltName=critical,DNS:localhost");
    let made = make("/CN=Test CA", CA_BASE, "/", &leaf_ext, false, "")?;
    assert_eq!(connect(&made)?, Vec::<String>::new());
    Ok(())
}

/// A client connected to a `localhost` server over TLS `protocol`, and the server's side.
fn pair(
    protocol: SslProtocol,
) -> Result<(SslSocket, SslSocket, SslServer), Box<dyn std::error::Error>> {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
    let mut configuration = trusting(&pki)?;
    configuration.set_protocol(protocol);
    let mut client = SslSocket::with_configuration(configuration);
    client.connect_to_host_encrypted_with_peer_name(
        "127.0.0.1",
        server.local_addr().port(),
        "localhost",
    );
    client.wait_for_encrypted(WAIT)?;
    let served = match server.next_connection(WAIT)? {
        Ok(socket) => socket,
        Err(socket) => return Err(format!("server: {:?}", socket.error()).into()),
    };
    Ok((client, served, server))
}

// Held: a whole record received and not yet read (bytes_available() counts it) is not
// counted again by encrypted_bytes_available() (the unbuffered session's parked record is
// not left in `io.filled` on the blocking driver), TLS 1.2 and 1.3.
#[test]
fn a_whole_record_read_is_not_counted_as_encrypted() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let (mut client, mut served, server) = pair(protocol)?;
        served.write_all(&[b'x'; 100])?;
        served.flush()?;
        let deadline = std::time::Instant::now() + WAIT;
        while client.bytes_available() < 100 && std::time::Instant::now() < deadline {
            let _ = client.wait_for_ready_read(Duration::from_millis(200));
        }
        assert_eq!(client.bytes_available(), 100, "{protocol:?}");
        assert_eq!(
            client.encrypted_bytes_available(),
            0,
            "{protocol:?}: a decrypted record counted as encrypted ({})",
            active_backend()
        );
        client.abort();
        drop(served);
        drop(server);
    }
    Ok(())
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        out.push(0x81);
        out.push(u8::try_from(len).unwrap_or(0));
    }
    out.extend_from_slice(content);
    out
}

/// A chain root -> intermediate (critical nameConstraints `value`) -> leaf `localhost`;
/// the errors listed, whether it connected, and whether it connects when only the errors
/// listed on the leaf are ignored.
type Constrained = (Vec<(SslErrorKind, String)>, bool, bool, Vec<u8>);

fn constrained(value: Vec<u8>) -> Result<Constrained, Box<dyn std::error::Error>> {
    let root = root("L36b Root")?;
    let inter = sub_ca_with(&root, "L36b Constrained", None, |params| {
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], value);
        ext.set_criticality(true);
        params.custom_extensions = vec![ext];
    })?;
    let (leaf_der, key) = leaf(&inter, "localhost", |_| {})?;
    let chain = vec![leaf_der.clone(), inter.der.clone()];
    let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", |_| {})?;
    let leaf_cert = SslCertificate::from_der(&leaf_der)?;
    let on_leaf: Vec<SslError> = outcome
        .errors
        .iter()
        .filter(|e| e.certificate() == Some(&leaf_cert))
        .cloned()
        .collect();
    let ignoring = handshake(&[&root.der], chain, &key, "localhost", move |s| {
        s.ignore_ssl_errors_list(&on_leaf)
    })?;
    Ok((
        kinds_on(&outcome.errors),
        outcome.encrypted,
        ignoring.encrypted,
        inter.der,
    ))
}

fn check_refused_on_intermediate(value: Vec<u8>) -> TestResult {
    let (errors, encrypted, ignoring_leaf, inter_der) = constrained(value)?;
    let backend = active_backend();
    assert!(!encrypted, "{backend}: connected: {errors:?}");
    assert!(
        !ignoring_leaf,
        "{backend}: ignoring the leaf's errors connected: {errors:?}"
    );
    let inter = SslCertificate::from_der(&inter_der)?.subject_rfc4514();
    assert!(
        errors.contains(&(SslErrorKind::UnspecifiedError, inter)),
        "{backend}: no UnspecifiedError on the malformed intermediate: {errors:?}"
    );
    Ok(())
}

// Held (control): an intermediate excluding dNSName "localhost" in DER.
#[test]
fn control_plain_exclusion_is_refused() -> TestResult {
    let value = tlv(0x30, &tlv(0xa1, &tlv(0x30, &tlv(0x82, b"localhost"))));
    let (errors, encrypted, _, _) = constrained(value)?;
    assert!(!encrypted, "{}: {errors:?}", active_backend());
    assert!(!errors.is_empty(), "{}: no error listed", active_backend());
    Ok(())
}

// Was a defect (round 36): strict_der.rs `name_constraints_are_der` takes any number of [0]/[1] fields in
// any order, so this non-DER nameConstraints passes `has_extension_problem`; no error is
// put on the intermediate. rustls: UnspecifiedError on the leaf only; OpenSSL:
// UnableToGetLocalIssuerCertificate + UnableToVerifyFirstCertificate on the leaf (OpenSSL
// drops the unparsable intermediate silently). Ignoring those leaf errors CONNECTS to
// localhost although the intermediate excludes it. Expected: UnspecifiedError on the
// intermediate (both backends), so ignoring the leaf's errors cannot pass it.
// nameConstraints with two excludedSubtrees [1] fields, the second excluding localhost
// (DER: at most one [1], after the [0]; webpki reads [0] then [1] then the end).
#[test]
fn a_second_excluded_field_is_refused_on_the_intermediate() -> TestResult {
    let first = tlv(0xa1, &tlv(0x30, &tlv(0x82, b"bad.example")));
    let second = tlv(0xa1, &tlv(0x30, &tlv(0x82, b"localhost")));
    check_refused_on_intermediate(tlv(0x30, &[first, second].concat()))
}

// Was a defect (round 36): as above (strict_der.rs `name_constraints_are_der` accepts [1] before [0]):
// no error on the intermediate; rustls UnspecifiedError / OpenSSL issuer errors on the
// leaf only, and ignoring them connects. Expected: UnspecifiedError on the intermediate.
// nameConstraints with excludedSubtrees [1] before permittedSubtrees [0] (DER order is
// [0] then [1]); the exclusion names localhost.
#[test]
fn excluded_before_permitted_is_refused_on_the_intermediate() -> TestResult {
    let excluded = tlv(0xa1, &tlv(0x30, &tlv(0x82, b"localhost")));
    let permitted = tlv(0xa0, &tlv(0x30, &tlv(0x82, b"localhost")));
    check_refused_on_intermediate(tlv(0x30, &[excluded, permitted].concat()))
}

// Was a defect (round 36): strict_der.rs `name_constraints_are_der` lets any `[0]`/`[1]` bounds after a
// subtree's base through. OpenSSL backend: CONNECTS with no error (OpenSSL 3 takes an
// explicit minimum 0); rustls: webpki refuses, UnspecifiedError lands on the leaf, and
// ignoring it connects. Expected: the non-DER extension is UnspecifiedError on the
// intermediate on both backends (refuse any minimum/maximum, as webpki does).
// A GeneralSubtree permitting localhost with `minimum [0] 0` written out (DER leaves a
// DEFAULT value out; RFC 5280: minimum MUST be 0 and so absent; webpki refuses it).
#[test]
fn an_encoded_default_minimum_is_refused_on_the_intermediate() -> TestResult {
    let subtree = tlv(
        0x30,
        &[tlv(0x82, b"localhost"), vec![0x80, 0x01, 0x00]].concat(),
    );
    check_refused_on_intermediate(tlv(0x30, &tlv(0xa0, &subtree)))
}

// Was a defect (round 36): a `maximum [1]` (valid DER, but RFC 5280 says MUST be absent and webpki
// refuses it) passes `name_constraints_are_der`; both backends put UnspecifiedError on
// the LEAF only, and ignoring it connects. Expected: UnspecifiedError on the intermediate
// that carries the bound (the leaf is not at fault).
// A GeneralSubtree excluding a DNS subtree with a `maximum [1]` (RFC 5280: MUST be
// absent; webpki refuses any), over a leaf outside the subtree.
#[test]
fn a_maximum_bound_is_refused_on_the_intermediate() -> TestResult {
    let subtree = tlv(
        0x30,
        &[tlv(0x82, b"bad.example"), vec![0x81, 0x01, 0x05]].concat(),
    );
    check_refused_on_intermediate(tlv(0x30, &tlv(0xa1, &subtree)))
}
