//! Round 34 review: peer name verification and chain building, differential. For each
//! chain (made here with rcgen) and peer name: our verdict and complete error list from the
//! handshake (the active backend: run again with `SSLSOCKET_BACKEND=openssl`), from
//! `ChainVerifier` (the rustls backend's verifier) and from `SslCertificate::verify`,
//! against webpki (rustls's `WebPkiServerVerifier`) and OpenSSL (`openssl s_client`, whose
//! verify callback prints every error). Run with
//! `cargo test -p sslsocket --all-features --test names_paths_round34`, and again with
//! `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
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

/// What everyone says of one chain.
#[derive(Debug)]
struct Verdicts {
    /// Our handshake on the active backend, ignoring nothing: connected, and its list.
    encrypted: bool,
    handshake: Vec<(SslErrorKind, String)>,
    /// `ChainVerifier::verify_der` (the rustls backend's verifier, without a handshake).
    verifier: Vec<(SslErrorKind, String)>,
    /// `SslCertificate::verify`.
    verify: Vec<(SslErrorKind, String)>,
    /// rustls's `WebPkiServerVerifier`: `Ok` or its error.
    webpki: Result<(), String>,
    /// `openssl s_client -partial_chain` (our OpenSSL backend sets the flag): every error.
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
    let name = ServerName::try_from(host.to_string())?;
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
    chain: &[Vec<u8>],
    host: &str,
) -> BoxResult<Vec<SslError>> {
    let certs = chain
        .iter()
        .map(|d| cert(d))
        .collect::<BoxResult<Vec<_>>>()?;
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
    Ok(SslCertificate::verify(&certs, Some(host)))
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
    let verify = certificate_verify(trusted, &chain, host)?;
    Ok(Verdicts {
        encrypted: outcome.encrypted,
        handshake: kinds_on(&outcome.errors),
        verifier: kinds_on(&verifier),
        verify: kinds_on(&verify),
        webpki: webpki_verdict(trusted, &chain, host)?,
        openssl: openssl_verdict(trusted, &chain, key, host)?,
    })
}

/// CN=`cn` with `sans` (DNS names, or IP addresses when they parse as one); a DNS name
/// rcgen cannot hold becomes `invalid`.
fn named(cn: &str, sans: &[&str]) -> impl FnOnce(&mut CertificateParams) {
    let cn = cn.to_string();
    let sans: Vec<SanType> = sans
        .iter()
        .filter_map(
            |s| match (s.parse::<std::net::IpAddr>(), s.strip_prefix("email:")) {
                (Ok(ip), _) => Some(SanType::IpAddress(ip)),
                (_, Some(mail)) => mail.try_into().ok().map(SanType::Rfc822Name),
                _ => (*s).try_into().ok().map(SanType::DnsName),
            },
        )
        .collect();
    move |p: &mut CertificateParams| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans;
    }
}

fn mismatch_only(v: &Verdicts, leaf_subject: &str) -> BTreeSet<(SslErrorKind, String)> {
    let _ = v;
    BTreeSet::from([(HostNameMismatch, leaf_subject.to_string())])
}

/// Our three answers agree: the handshake (active backend), the rustls backend's verifier
/// and `SslCertificate::verify` list the same errors, and the handshake connected exactly
/// when it listed none.
fn assert_ours_agree(v: &Verdicts) {
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

/// A chain with a good path behind a bad candidate issuer the peer sent first (or an
/// expired copy trusted): webpki accepts. Decided in round 34: `SslCertificate::verify`
/// is `ChainVerifier`'s verdict (webpki's search with our policy), so it accepts as the
/// rustls handshake does; the OpenSSL backend keeps OpenSSL's one built path and refuses
/// with exactly OpenSSL's errors (fail closed, documented in the README).
fn assert_alternative_path(v: &Verdicts) {
    assert!(v.webpki.is_ok(), "{v:?}");
    assert!(v.verifier.is_empty(), "verifier: {v:?}");
    assert!(v.verify.is_empty(), "verify: {v:?}");
    if support::backends::active_backend() == "openssl" {
        assert!(!v.openssl.is_empty(), "openssl: {v:?}");
        assert!(!v.encrypted, "{v:?}");
        // OpenSSL's list (s_client ran with -partial_chain), plus the
        // UnableToVerifyFirstCertificate the backend adds for a leaf whose issuer is
        // unknown, as OpenSSL without that flag (README).
        let handshake = set(&v.handshake);
        assert!(
            handshake.is_superset(&v.openssl),
            "handshake vs openssl: {v:?}"
        );
        assert!(
            handshake
                .difference(&v.openssl)
                .all(|(kind, _)| *kind == UnableToVerifyFirstCertificate),
            "handshake vs openssl: {v:?}"
        );
    } else {
        assert!(v.encrypted, "{v:?}");
        assert!(v.handshake.is_empty(), "handshake: {v:?}");
    }
}

/// webpki and OpenSSL both accept: so must we, everywhere.
fn assert_all_accept(v: &Verdicts) {
    assert!(v.webpki.is_ok(), "webpki: {v:?}");
    assert!(v.openssl.is_empty(), "openssl: {v:?}");
    assert!(v.encrypted, "{v:?}");
    assert!(v.handshake.is_empty(), "handshake: {v:?}");
    assert!(v.verifier.is_empty(), "verifier: {v:?}");
    assert!(v.verify.is_empty(), "verify: {v:?}");
}

/// Two intermediates with one subject and one key under `root`: `bad` (tweaked) and a good
/// one; the leaf for localhost is issued by that name and key.
fn twins(
    root: &Ca,
    cn: &str,
    bad: impl FnOnce(&mut CertificateParams),
) -> BoxResult<(Ca, Ca, Vec<u8>, KeyPair)> {
    let bad_ca = sub_ca_with(root, cn, None, bad)?;
    let good = sub_ca_with(root, cn, Some(&bad_ca.key_pem), |_| {})?;
    let (leaf_der, key) = leaf(&good, "localhost", |_| {})?;
    Ok((bad_ca, good, leaf_der, key))
}

// ---------------------------------------------------------------------------------------
// Host names.

// Was a defect (round 34): a dNSName with a trailing dot ("localhost.") is no match for "localhost" for
// webpki and OpenSSL (`openssl verify -verify_hostname localhost`: error 62), and both
// handshakes list HostNameMismatch, but SslCertificate::verify (hostname.rs dns_matches
// strips one trailing dot from the presented pattern) reports no error: Qt's verify and the
// handshake must agree, and a presented identifier with a trailing dot must not match.
#[test]
fn a_dns_name_with_a_trailing_dot_matches_nowhere() -> TestResult {
    let root = root("NP34 Dot Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", named("dot", &["localhost."]))?;
    let v = judge(&[&root.der], vec![leaf_der], &key, "localhost")?;
    assert!(v.webpki.is_err(), "{v:?}");
    let expected = mismatch_only(&v, "CN=dot");
    assert_eq!(v.openssl, expected, "{v:?}");
    assert!(!v.encrypted, "{v:?}");
    assert_eq!(set(&v.handshake), expected, "{v:?}");
    assert_eq!(set(&v.verifier), expected, "{v:?}");
    assert_eq!(set(&v.verify), expected, "{v:?}");
    Ok(())
}

// Was a defect (round 34): a certificate without subjectAltName whose CN is "localhost." is accepted for
// "localhost" by the rustls backend (the name check is ours alone when there is no SAN,
// and hostname.rs strips the pattern's trailing dot) and by SslCertificate::verify, while
// OpenSSL (and so the OpenSSL backend) reports HostNameMismatch: the backends disagree on
// the verdict. Expected: HostNameMismatch everywhere (OpenSSL's rule for presented names).
#[test]
fn a_common_name_with_a_trailing_dot_gets_the_same_verdict_on_every_backend() -> TestResult {
    let root = root("NP34 CN Dot Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", named("localhost.", &[]))?;
    let v = judge(&[&root.der], vec![leaf_der], &key, "localhost")?;
    let expected = BTreeSet::from([(HostNameMismatch, "CN=localhost.".to_string())]);
    assert_eq!(v.openssl, expected, "{v:?}");
    assert!(!v.encrypted, "{v:?}");
    assert_eq!(set(&v.handshake), expected, "{v:?}");
    assert_eq!(set(&v.verifier), expected, "{v:?}");
    assert_eq!(set(&v.verify), expected, "{v:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Alternative paths: the peer sends two intermediates of one name and key, the bad one
// first. webpki tries every path; OpenSSL skips an issuer its `X509_check_issued` refuses.

// Was a defect (round 34): alternative paths (this test and the five below it, one root cause). The peer
// sends [leaf, Int (CA:TRUE but keyUsage digitalSignature only), Int (good)], both of one
// name and key. webpki tries the second path and the rustls handshake connects with no
// error; OpenSSL (s_client, and so the OpenSSL backend) and SslCertificate::verify take the
// first and list InvalidCaCertificate, InvalidPurpose and UnspecifiedError on it. So the
// backends disagree on the verdict for one chain, and SslCertificate::verify disagrees with
// the rustls handshake. Cause: the collector (verify/path.rs `next_issuer`/`best`) is
// greedy (first sent issuer whose signature verifies, no backtracking), SslCertificate::verify
// (verify/api.rs) is the collector alone, not ChainVerifier, and the OpenSSL backend judges
// OpenSSL's one built chain. Expected: one verdict: when a path passes every check (webpki's
// search with our policy, verifier.rs `webpki_verdict`), every answer accepts; verify should
// go through ChainVerifier, and the collector should try the other candidates before it
// reports a bad one.
// Fixed (round 34): SslCertificate::verify is ChainVerifier's verdict, as the rustls
// handshake's. Decided: the OpenSSL backend keeps OpenSSL's one built path and refuses with
// exactly OpenSSL's list (fail closed; README "Backends and features"), and the collector
// keeps OpenSSL's choice of issuer, so a refused chain lists what OpenSSL lists.
#[test]
fn an_intermediate_without_key_cert_sign_sent_first() -> TestResult {
    let root = root("NP34 KU Root")?;
    let (bad, good, leaf_der, key) = twins(&root, "NP34 KU Int", |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    })?;
    let v = judge(
        &[&root.der],
        vec![leaf_der, bad.der, good.der],
        &key,
        "localhost",
    )?;
    assert!(v.webpki.is_ok(), "{v:?}");
    assert_alternative_path(&v);
    Ok(())
}

// Held: the same twins with a wrong name: the handshake lists what OpenSSL lists (the
// first intermediate's errors and the name), on both backends.
#[test]
fn an_intermediate_without_key_cert_sign_sent_first_with_a_name_mismatch_lists_as_openssl(
) -> TestResult {
    let root = root("NP34 KU2 Root")?;
    let (bad, good, leaf_der, key) = twins(&root, "NP34 KU2 Int", |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    })?;
    let v = judge(
        &[&root.der],
        vec![leaf_der, bad.der, good.der],
        &key,
        "other.test",
    )?;
    assert!(
        v.openssl
            .contains(&(HostNameMismatch, "CN=localhost".to_string())),
        "{v:?}"
    );
    assert_eq!(set(&v.handshake), v.openssl, "{v:?}");
    assert_ours_agree(&v);
    Ok(())
}

// Was a defect (round 34): as above (alternative paths): the rustls handshake accepts through the good twin,
// OpenSSL, the OpenSSL backend and SslCertificate::verify list the first twin's errors.
#[test]
fn an_intermediate_with_ca_false_sent_first() -> TestResult {
    let root = root("NP34 CAF Root")?;
    let (bad, good, leaf_der, key) = twins(&root, "NP34 CAF Int", |p| {
        p.is_ca = IsCa::ExplicitNoCa;
    })?;
    let v = judge(
        &[&root.der],
        vec![leaf_der, bad.der, good.der],
        &key,
        "localhost",
    )?;
    assert!(v.webpki.is_ok(), "{v:?}");
    assert_alternative_path(&v);
    Ok(())
}

// Was a defect (round 34): as above (alternative paths): the rustls handshake accepts through the good twin,
// OpenSSL, the OpenSSL backend and SslCertificate::verify list the first twin's errors.
#[test]
fn an_intermediate_for_client_auth_only_sent_first() -> TestResult {
    let root = root("NP34 EKU Root")?;
    let (bad, good, leaf_der, key) = twins(&root, "NP34 EKU Int", |p| {
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    })?;
    let v = judge(
        &[&root.der],
        vec![leaf_der, bad.der, good.der],
        &key,
        "localhost",
    )?;
    assert!(v.webpki.is_ok(), "{v:?}");
    assert_alternative_path(&v);
    Ok(())
}

// Was a defect (round 34): as above (alternative paths): the rustls handshake accepts through the good twin,
// OpenSSL, the OpenSSL backend and SslCertificate::verify list the first twin's errors.
#[test]
fn an_intermediate_whose_constraints_exclude_the_leaf_sent_first() -> TestResult {
    let root = root("NP34 NC Root")?;
    let (bad, good, leaf_der, key) = twins(&root, "NP34 NC Int", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![],
            excluded_subtrees: vec![GeneralSubtree::DnsName("localhost".into())],
        });
    })?;
    let v = judge(
        &[&root.der],
        vec![leaf_der, bad.der, good.der],
        &key,
        "localhost",
    )?;
    assert!(v.webpki.is_ok(), "{v:?}");
    assert_alternative_path(&v);
    Ok(())
}

// Held: an expired twin sent first is passed over everywhere (path.rs ranks the valid one).
#[test]
fn an_expired_intermediate_sent_first_with_a_valid_twin() -> TestResult {
    let root = root("NP34 Exp Root")?;
    let (bad, good, leaf_der, key) = twins(&root, "NP34 Exp Int", |p| {
        let now = OffsetDateTime::now_utc();
        p.not_before = now - 20 * DAY;
        p.not_after = now - 10 * DAY;
    })?;
    let v = judge(
        &[&root.der],
        vec![leaf_der, bad.der, good.der],
        &key,
        "localhost",
    )?;
    assert_all_accept(&v);
    Ok(())
}

// Was a defect (round 34): as above (alternative paths). Cross-signed: the intermediate exists twice, signed by
// a trusted root and by an untrusted one; the peer sends the untrusted cross-sign first.
// webpki and the rustls handshake accept; OpenSSL, the OpenSSL backend and
// SslCertificate::verify list UnableToGetLocalIssuerCertificate on the cross-sign.
#[test]
fn a_cross_signed_intermediate_under_an_untrusted_root_sent_first() -> TestResult {
    let trusted = root("NP34 Cross Trusted Root")?;
    let other = root("NP34 Cross Other Root")?;
    let via_trusted = sub_ca(&trusted, "NP34 Cross Int")?;
    let via_other = sub_ca_with(&other, "NP34 Cross Int", Some(&via_trusted.key_pem), |_| {})?;
    let (leaf_der, key) = leaf(&via_trusted, "localhost", |_| {})?;
    let v = judge(
        &[&trusted.der],
        vec![leaf_der, via_other.der, via_trusted.der],
        &key,
        "localhost",
    )?;
    assert!(v.webpki.is_ok(), "{v:?}");
    assert_alternative_path(&v);
    Ok(())
}

// Was a defect (round 34): as above (alternative paths). An expired copy of the intermediate is trusted (an old
// CA file), the peer sends the valid intermediate, which chains to the trusted root. The
// rustls handshake accepts; OpenSSL, the OpenSSL backend and SslCertificate::verify list
// CertificateExpired on the trusted copy (path.rs takes a trusted issuer before a sent one,
// valid or not).
#[test]
fn an_expired_trusted_copy_of_the_intermediate_with_a_valid_path_sent() -> TestResult {
    let root = root("NP34 Stale Root")?;
    let (stale, good, leaf_der, key) = twins(&root, "NP34 Stale Int", |p| {
        let now = OffsetDateTime::now_utc();
        p.not_before = now - 20 * DAY;
        p.not_after = now - 10 * DAY;
    })?;
    let v = judge(
        &[&root.der, &stale.der],
        vec![leaf_der, good.der],
        &key,
        "localhost",
    )?;
    assert!(v.webpki.is_ok(), "{v:?}");
    assert_alternative_path(&v);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A battery of names: where webpki and OpenSSL agree on the verdict, our handshake (active
// backend), the rustls backend's verifier and SslCertificate::verify must say the same.

/// (SANs, CN, peer name): a SAN that parses as an IP address is an iPAddress, `email:` an
/// rfc822Name, anything else a dNSName.
const NAME_CASES: &[(&[&str], &str, &str)] = &[
    (&["*.com"], "x", "example.com"),
    (&["*.*.example.com"], "x", "a.b.example.com"),
    (&["a*.example.com"], "x", "abc.example.com"),
    (&["*.example.com"], "x", "example.com"),
    (&["*.example.com"], "x", "a.b.example.com"),
    (&["*.example.com"], "x", "a.example.com"),
    (&["*.example.com"], "x", "A.EXAMPLE.COM"),
    (&["*.example.com"], "x", "a.example.com."),
    (&["*.example.com"], "x", "xn--bcher-kva.example.com"),
    (&["*.example.com"], "x", "x_y.example.com"),
    (&["xn--*.example.com"], "x", "xn--bcher-kva.example.com"),
    (&["*.xn--bcher-kva.example"], "x", "a.xn--bcher-kva.example"),
    (&["*.localhost"], "x", "a.localhost"),
    (&["LOCALHOST"], "x", "localhost"),
    (&["localhost"], "x", "LocalHost."),
    (&["_srv.example"], "x", "_srv.example"),
    (&["127.0.0.1"], "x", "127.0.0.1"),
    (&["::1"], "x", "::1"),
    (&["::ffff:127.0.0.1"], "x", "127.0.0.1"),
    (&["127.0.0.1"], "x", "::ffff:127.0.0.1"),
    (&["::ffff:127.0.0.1"], "x", "::ffff:127.0.0.1"),
    (&["email:a@localhost"], "localhost", "localhost"),
    (&["127.0.0.1"], "localhost", "localhost"),
    (&[], "127.0.0.1", "127.0.0.1"),
    (&[], "localhost", "localhost"),
    (&[], "*.example.com", "a.example.com"),
    (&[], "a*.example.com", "abc.example.com"),
    (&["other.test"], "localhost", "localhost"),
];

/// The dNSName "127.0.0.1" against the peer name 127.0.0.1 (rcgen writes any text).
fn dns_san_127() -> impl FnOnce(&mut CertificateParams) {
    move |p: &mut CertificateParams| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "x");
        p.subject_alt_names = "127.0.0.1"
            .try_into()
            .ok()
            .map(SanType::DnsName)
            .into_iter()
            .collect();
    }
}

// Held: wildcards, IDNA, case, trailing dots in the peer name, IP addresses (v4, v6,
// v4-mapped, a dNSName "127.0.0.1"), CN fallback: where webpki and OpenSSL agree, so do we.
#[test]
fn names_get_the_verdict_webpki_and_openssl_agree_on() -> TestResult {
    let root = root("NP34 Names Root")?;
    let mut failures = Vec::new();
    let mut table = Vec::new();
    let mut run = |label: String, leaf_der: Vec<u8>, key: KeyPair, host: &str| -> TestResult {
        let v = judge(&[&root.der], vec![leaf_der], &key, host)?;
        let webpki_ok = v.webpki.is_ok();
        let openssl_ok = v.openssl.is_empty();
        table.push(format!(
            "{label}: webpki {webpki_ok} openssl {openssl_ok} handshake {} verifier {} verify {}",
            v.encrypted,
            v.verifier.is_empty(),
            v.verify.is_empty()
        ));
        if webpki_ok == openssl_ok {
            let ours = [v.encrypted, v.verifier.is_empty(), v.verify.is_empty()];
            if ours.iter().any(|&accepted| accepted != webpki_ok) {
                failures.push(format!("{label}: references say {webpki_ok}: {v:?}"));
            }
        }
        Ok(())
    };
    for (sans, cn, host) in NAME_CASES {
        let (leaf_der, key) = leaf(&root, "unused", named(cn, sans))?;
        run(
            format!("SAN {sans:?} CN {cn} for {host}"),
            leaf_der,
            key,
            host,
        )?;
    }
    let (leaf_der, key) = leaf(&root, "unused", dns_san_127())?;
    run(
        "dNSName 127.0.0.1 for 127.0.0.1".into(),
        leaf_der,
        key,
        "127.0.0.1",
    )?;
    for line in &table {
        eprintln!("{line}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Name constraints, on the intermediate or on the root, against SANs and the CN.

fn dns(name: &str) -> GeneralSubtree {
    GeneralSubtree::DnsName(name.to_string())
}

fn net(a: [u8; 4], m: [u8; 4]) -> GeneralSubtree {
    GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4(a, m))
}

fn constraints(permitted: Vec<GeneralSubtree>, excluded: Vec<GeneralSubtree>) -> NameConstraints {
    NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: excluded,
    }
}

struct NcCase {
    label: &'static str,
    on_root: bool,
    nc: NameConstraints,
    sans: &'static [&'static str],
    cn: &'static str,
    host: &'static str,
}

fn nc_cases() -> Vec<NcCase> {
    let case = |label, on_root, nc, sans, cn, host| NcCase {
        label,
        on_root,
        nc,
        sans,
        cn,
        host,
    };
    vec![
        case(
            "int permits example.com, leaf localhost",
            false,
            constraints(vec![dns("example.com")], vec![]),
            &["localhost"],
            "x",
            "localhost",
        ),
        case(
            "root permits example.com, leaf localhost",
            true,
            constraints(vec![dns("example.com")], vec![]),
            &["localhost"],
            "x",
            "localhost",
        ),
        case(
            "int permits example.com, leaf a.example.com",
            false,
            constraints(vec![dns("example.com")], vec![]),
            &["a.example.com"],
            "x",
            "a.example.com",
        ),
        case(
            "int permits .example.com, leaf example.com",
            false,
            constraints(vec![dns(".example.com")], vec![]),
            &["example.com"],
            "x",
            "example.com",
        ),
        case(
            "int permits example.com, leaf EXAMPLE.COM",
            false,
            constraints(vec![dns("example.com")], vec![]),
            &["A.EXAMPLE.COM"],
            "x",
            "a.example.com",
        ),
        case(
            "int excludes localhost, CN-only LocalHost",
            false,
            constraints(vec![], vec![dns("localhost")]),
            &[],
            "LocalHost",
            "localhost",
        ),
        case(
            "root excludes localhost, CN-only localhost",
            true,
            constraints(vec![], vec![dns("localhost")]),
            &[],
            "localhost",
            "localhost",
        ),
        case(
            "int permits example.com, CN-only localhost",
            false,
            constraints(vec![dns("example.com")], vec![]),
            &[],
            "localhost",
            "localhost",
        ),
        case(
            "int permits example.com, CN localhost beside a.example.com",
            false,
            constraints(vec![dns("example.com")], vec![]),
            &["a.example.com"],
            "localhost",
            "a.example.com",
        ),
        case(
            "int excludes 127/8, leaf 127.0.0.1",
            false,
            constraints(vec![], vec![net([127, 0, 0, 0], [255, 0, 0, 0])]),
            &["127.0.0.1"],
            "x",
            "127.0.0.1",
        ),
        case(
            "root excludes 127/8, leaf 127.0.0.1",
            true,
            constraints(vec![], vec![net([127, 0, 0, 0], [255, 0, 0, 0])]),
            &["127.0.0.1"],
            "x",
            "127.0.0.1",
        ),
        case(
            "int permits 10/8, leaf ::ffff:127.0.0.1",
            false,
            constraints(vec![net([10, 0, 0, 0], [255, 0, 0, 0])], vec![]),
            &["::ffff:127.0.0.1"],
            "x",
            "::ffff:127.0.0.1",
        ),
        case(
            "int excludes 127/8, leaf ::ffff:127.0.0.1",
            false,
            constraints(vec![], vec![net([127, 0, 0, 0], [255, 0, 0, 0])]),
            &["::ffff:127.0.0.1"],
            "x",
            "::ffff:127.0.0.1",
        ),
        case(
            "int permits 10/8 only, leaf localhost",
            false,
            constraints(vec![net([10, 0, 0, 0], [255, 0, 0, 0])], vec![]),
            &["localhost"],
            "x",
            "localhost",
        ),
        case(
            "int permits 10/8, CN-only 127.0.0.1",
            false,
            constraints(vec![net([10, 0, 0, 0], [255, 0, 0, 0])], vec![]),
            &[],
            "127.0.0.1",
            "127.0.0.1",
        ),
        case(
            "int permits mail example.com, leaf mail a@evil.test",
            false,
            constraints(
                vec![GeneralSubtree::Rfc822Name("example.com".into())],
                vec![],
            ),
            &["localhost", "email:a@evil.test"],
            "x",
            "localhost",
        ),
        case(
            "int excludes bad.example.com, leaf *.example.com",
            false,
            constraints(vec![], vec![dns("bad.example.com")]),
            &["*.example.com"],
            "x",
            "good.example.com",
        ),
        case(
            "int permits .example.com, leaf *.example.com",
            false,
            constraints(vec![dns(".example.com")], vec![]),
            &["*.example.com"],
            "x",
            "a.example.com",
        ),
        case(
            "int excludes xn--bcher-kva.example, leaf XN--BCHER-KVA.example",
            false,
            constraints(vec![], vec![dns("xn--bcher-kva.example")]),
            &["XN--BCHER-KVA.example"],
            "x",
            "xn--bcher-kva.example",
        ),
    ]
}

// Held: every constraint case gets the references' verdict where they agree (stricter where
// the README says so), the same list from all three of our answers.
#[test]
fn name_constraints_get_the_verdict_webpki_and_openssl_agree_on() -> TestResult {
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for case in nc_cases() {
        let nc = case.nc.clone();
        let on_root = case.on_root;
        let root = root_with("NP34 NC Root", |p| {
            if on_root {
                p.name_constraints = Some(nc.clone());
            }
        })?;
        let int = sub_ca_with(&root, "NP34 NC Int", None, |p| {
            if !on_root {
                p.name_constraints = Some(nc);
            }
        })?;
        let (leaf_der, key) = leaf(&int, "unused", named(case.cn, case.sans))?;
        let v = judge(
            &[&root.der],
            vec![leaf_der, int.der.clone()],
            &key,
            case.host,
        )?;
        let webpki_ok = v.webpki.is_ok();
        let openssl_ok = v.openssl.is_empty();
        table.push(format!(
            "{}: webpki {webpki_ok} openssl {openssl_ok} handshake {:?} verifier {:?} verify {:?}",
            case.label, v.handshake, v.verifier, v.verify
        ));
        let ours = [v.encrypted, v.verifier.is_empty(), v.verify.is_empty()];
        // README: an IPv4-mapped IPv6 address counts as its IPv4 address (stricter than both).
        let expected = webpki_ok && !case.label.starts_with("int excludes 127/8, leaf ::ffff");
        if webpki_ok == openssl_ok && ours.iter().any(|&accepted| accepted != expected) {
            failures.push(format!("{}: references say {webpki_ok}: {v:?}", case.label));
        }
        // Whatever the references say, a constraint broken by a name we would match is
        // refused by us, and our answers agree.
        if set(&v.handshake) != set(&v.verifier) || set(&v.verify) != set(&v.verifier) {
            failures.push(format!("{}: our answers differ: {v:?}", case.label));
        }
    }
    for line in &table {
        eprintln!("{line}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Path length, AKI/SKI, order and extra certificates.

// Held: pathLenConstraint 0 on the root with two intermediates below: everyone refuses,
// our lists name PathLengthExceeded on the root.
#[test]
fn a_path_length_constraint_on_the_root_counts() -> TestResult {
    let root = root_with("NP34 PL Root", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    })?;
    let upper = sub_ca(&root, "NP34 PL Upper")?;
    let lower = sub_ca(&upper, "NP34 PL Lower")?;
    let (leaf_der, key) = leaf(&lower, "localhost", |_| {})?;
    let v = judge(
        &[&root.der],
        vec![leaf_der, lower.der, upper.der],
        &key,
        "localhost",
    )?;
    assert!(v.webpki.is_err() || !v.openssl.is_empty(), "{v:?}");
    assert!(!v.encrypted, "{v:?}");
    assert!(
        v.handshake
            .contains(&(PathLengthExceeded, "CN=NP34 PL Root".to_string())),
        "{v:?}"
    );
    assert_ours_agree(&v);
    Ok(())
}

// Held: the chain sent backwards with unrelated certificates in between: everyone builds the
// path and accepts.
#[test]
fn a_chain_out_of_order_with_unrelated_certificates_is_accepted() -> TestResult {
    let anchor = root("NP34 Order Root")?;
    let upper = sub_ca(&anchor, "NP34 Order Upper")?;
    let lower = sub_ca(&upper, "NP34 Order Lower")?;
    let stranger = root("NP34 Order Stranger")?;
    let other = sub_ca(&stranger, "NP34 Order Other")?;
    let (leaf_der, key) = leaf(&lower, "localhost", |_| {})?;
    let v = judge(
        &[&anchor.der],
        vec![leaf_der, other.der, upper.der, stranger.der, lower.der],
        &key,
        "localhost",
    )?;
    assert_all_accept(&v);
    Ok(())
}

// Was a defect (round 34): as above (alternative paths: the verdict depends on the backend). An intermediate
// whose subjectKeyIdentifier differs from the leaf's authorityKeyIdentifier (same name and
// key, so the signature verifies): webpki and the rustls handshake accept; OpenSSL, the
// OpenSSL backend and SslCertificate::verify (path.rs `may_be_issued_by`) find no issuer.
// An intermediate whose subjectKeyIdentifier differs from the leaf's authorityKeyIdentifier
// (same name, same key: the signature verifies).
#[test]
fn an_authority_key_identifier_mismatch() -> TestResult {
    let root = root("NP34 AKI Root")?;
    let sent = sub_ca_with(&root, "NP34 AKI Int", None, |p| {
        p.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![0x11; 20]);
    })?;
    let signer = sub_ca_with(&root, "NP34 AKI Int", Some(&sent.key_pem), |p| {
        p.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![0x22; 20]);
    })?;
    let (leaf_der, key) = leaf(&signer, "localhost", |_| {})?;
    let v = judge(&[&root.der], vec![leaf_der, sent.der], &key, "localhost")?;
    assert!(v.webpki.is_ok(), "{v:?}");
    assert_alternative_path(&v);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// SNI: never an IP literal (RFC 6066 section 3).

/// The server name of the first ClientHello a client sends to a listener on 127.0.0.1, as
/// rustls's `Acceptor` reads it (`None`: no SNI), after `connect` started the client.
fn sni_of(connect: impl FnOnce(u16) -> Box<dyn FnOnce()>) -> BoxResult<Option<String>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let stop = connect(port);
    let (mut tcp, _) = listener.accept()?;
    tcp.set_read_timeout(Some(WAIT))?;
    let mut acceptor = rustls::server::Acceptor::default();
    let deadline = std::time::Instant::now() + WAIT;
    let name = loop {
        if std::time::Instant::now() > deadline {
            return Err("no ClientHello".into());
        }
        acceptor.read_tls(&mut tcp)?;
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted.client_hello().server_name().map(str::to_string),
            Ok(None) => continue,
            Err((e, _)) => return Err(e.into()),
        }
    };
    stop();
    Ok(name)
}

// Held: connecting to 127.0.0.1, or verifying a connection to localhost as 127.0.0.1
// (set_peer_verify_name), sends no SNI; a DNS peer verify name is sent instead of the host.
#[test]
fn no_sni_is_sent_for_an_ip_literal() -> TestResult {
    use sslsocket::blocking::SslSocket;
    use sslsocket::prelude::*;
    let client = |host: &'static str, verify_name: Option<&'static str>| {
        move |port: u16| -> Box<dyn FnOnce()> {
            let mut socket = SslSocket::new();
            if let Some(name) = verify_name {
                socket.set_peer_verify_name(name);
            }
            socket.connect_to_host_encrypted(host, port);
            let handle = std::thread::spawn(move || {
                let _ = socket.wait_for_encrypted(std::time::Duration::from_millis(500));
                socket.abort();
            });
            Box::new(move || {
                let _ = handle.join();
            })
        }
    };
    assert_eq!(sni_of(client("127.0.0.1", None))?, None);
    assert_eq!(sni_of(client("localhost", Some("127.0.0.1")))?, None);
    assert_eq!(
        sni_of(client("127.0.0.1", Some("named.example")))?,
        Some("named.example".to_string())
    );
    Ok(())
}
