//! Round 36 review (A): the verifier attacked again, on both backends (run again with
//! `SSLSOCKET_BACKEND=openssl`), both drivers and `SslCertificate::verify`. Chains are made
//! here with rcgen and served by a raw rustls server (`AttackServer`) on 127.0.0.1.
//! `cargo test -p sslsocket --all-features --test trust_round36`.
mod support;

use std::sync::Mutex;

use rcgen::{CustomExtension, IsCa, KeyUsagePurpose};
use sslsocket::{SslCertificate, SslConfiguration, SslError, SslErrorKind, SslSocketExt};
use support::chains::*;

use SslErrorKind::*;

/// `SslCertificate::verify` reads the process default configuration: one call at a time.
static DEFAULT_CONFIGURATION: Mutex<()> = Mutex::new(());

fn certificate_verify(
    trusted: &[&[u8]],
    chain: &[Vec<u8>],
    host: &str,
) -> BoxResult<Vec<SslError>> {
    let anchors = trusted
        .iter()
        .map(|d| cert(d))
        .collect::<BoxResult<Vec<_>>>()?;
    let chain = chain
        .iter()
        .map(|d| cert(d))
        .collect::<BoxResult<Vec<_>>>()?;
    let _one = DEFAULT_CONFIGURATION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(anchors);
    SslConfiguration::set_default_configuration(configuration);
    Ok(SslCertificate::verify(&chain, Some(host)))
}

/// A CA under `parent` whose basicConstraints (critical, CA:TRUE) is written by hand as
/// `value` (the extension's OCTET STRING content).
fn sub_ca_with_basic_constraints(parent: &Ca, cn: &str, value: Vec<u8>) -> BoxResult<Ca> {
    sub_ca_with(parent, cn, None, |params| {
        params.is_ca = IsCa::NoCa;
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 19], value);
        ext.set_criticality(true);
        params.custom_extensions = vec![ext];
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    })
}

// ----- malformed DER inside an extension of a sent certificate ----------------------------

// Was a defect (round 36): an intermediate whose basicConstraints value is `SEQUENCE { TRUE }` followed by
// two bytes of junk (malformed DER inside the certificate) is accepted with no error at all
// on the OpenSSL backend: OpenSSL's `X509V3_EXT_d2i` and x509-parser's `parse_extension0`
// (crates/sslsocket/src/verify/checks.rs `has_extension_problem` relies on it) both stop
// after the first element and ignore the rest, so neither OpenSSL nor our `path_checks`
// object. The rustls backend (webpki reads the extension with `read_all`) and
// `SslCertificate::verify` refuse it. Fail closed, alike on both backends: refused.
#[test]
fn an_intermediate_with_junk_after_its_basic_constraints_is_refused() -> TestResult {
    let root = root("R36 Root")?;
    let bad = sub_ca_with_basic_constraints(
        &root,
        "R36 Junk Intermediate",
        vec![0x30, 0x03, 0x01, 0x01, 0xff, 0x00, 0x00],
    )?;
    let (leaf_der, key) = leaf(&bad, "localhost", |_| {})?;
    let chain = vec![leaf_der.clone(), bad.der.clone()];
    let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", |_| {})?;
    assert!(
        !outcome.encrypted && !outcome.errors.is_empty(),
        "accepted on {}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    let verified = certificate_verify(&[&root.der], &chain, "localhost")?;
    assert!(!verified.is_empty(), "SslCertificate::verify accepted it");
    Ok(())
}

// Was a defect (round 36): the same chain: the error is not tied to the certificate that is malformed. On
// rustls the list is `[UnspecifiedError on the leaf]` (the collector sees nothing wrong with
// the intermediate, so `ChainVerifier::errors_of` appends webpki's unexplained refusal to
// the leaf, verify/verifier.rs:443), and `SslCertificate::verify` says the same; on
// OpenSSL the list is empty. An application (or `--ignore UnspecifiedError@leaf.pem`) that
// accepts an `UnspecifiedError` on its own leaf then takes a chain whose intermediate it
// never saw an error for. Expected: `UnspecifiedError` on the malformed intermediate, on
// both backends and in `SslCertificate::verify` (have `has_extension_problem` refuse an
// extension whose value has bytes after its parse, as webpki does).
#[test]
fn the_error_of_junk_after_basic_constraints_is_on_the_intermediate() -> TestResult {
    let root = root("R36 Root")?;
    let bad = sub_ca_with_basic_constraints(
        &root,
        "R36 Junk Intermediate",
        vec![0x30, 0x03, 0x01, 0x01, 0xff, 0x00, 0x00],
    )?;
    let (leaf_der, key) = leaf(&bad, "localhost", |_| {})?;
    let chain = vec![leaf_der.clone(), bad.der.clone()];
    let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", |_| {})?;
    assert!(
        outcome.errors.contains(&on(UnspecifiedError, &bad.der)?),
        "the error is not on the malformed intermediate ({}): {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    let verified = certificate_verify(&[&root.der], &chain, "localhost")?;
    assert!(
        verified.contains(&on(UnspecifiedError, &bad.der)?),
        "SslCertificate::verify: {:?}",
        kinds_on(&verified)
    );
    Ok(())
}

// Was a defect (round 36): a leaf whose subjectAltName value is `SEQUENCE { dNSName "localhost" }` followed
// by junk is accepted with no error on the OpenSSL backend (same cause as above: OpenSSL
// and x509-parser read the first element and ignore the rest); the rustls backend refuses
// it with `UnspecifiedError` on the leaf. Expected on both: refused, `UnspecifiedError` on
// the leaf.
#[test]
fn a_leaf_with_junk_after_its_subject_alt_name_is_refused() -> TestResult {
    let root = root("R36 Root")?;
    let mut san = vec![0x30, 0x0b, 0x82, 0x09];
    san.extend_from_slice(b"localhost");
    san.extend_from_slice(&[0x05, 0x00]);
    let (leaf_der, key) = leaf(&root, "localhost", |params| {
        params.subject_alt_names = Vec::new();
        params.custom_extensions = vec![CustomExtension::from_oid_content(&[2, 5, 29, 17], san)];
    })?;
    let chain = vec![leaf_der.clone()];
    let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", |_| {})?;
    assert!(
        !outcome.encrypted && outcome.errors.contains(&on(UnspecifiedError, &leaf_der)?),
        "{}: encrypted {}, {:?}",
        support::active_backend(),
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    let verified = certificate_verify(&[&root.der], &chain, "localhost")?;
    assert!(
        verified.contains(&on(UnspecifiedError, &leaf_der)?),
        "SslCertificate::verify: {:?}",
        kinds_on(&verified)
    );
    Ok(())
}

// Held (control): the same chain with a well-formed basicConstraints connects, so the
// refusals above are about the junk alone.
#[test]
fn the_same_intermediate_well_formed_is_accepted() -> TestResult {
    let root = root("R36 Root")?;
    let good = sub_ca_with_basic_constraints(
        &root,
        "R36 Good Intermediate",
        vec![0x30, 0x03, 0x01, 0x01, 0xff],
    )?;
    let (leaf_der, key) = leaf(&good, "localhost", |_| {})?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der, good.der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(outcome.errors.is_empty(), "{:?}", kinds_on(&outcome.errors));
    assert!(outcome.encrypted);
    Ok(())
}

// ----- the verify depth ------------------------------------------------------------------

// Held: root ← I1 ← I2 ← leaf with `peer_verify_depth` 2 connects; with 1 it is refused
// with OpenSSL 3's errors on I1 (the certificate 2 above the leaf): `UnspecifiedError`
// (chain too long) and `UnableToGetLocalIssuerCertificate`, and ignoring exactly those
// connects. The same list on both backends.
#[test]
fn the_verify_depth_counts_intermediates_as_openssl_does() -> TestResult {
    let root = root("R36 Depth Root")?;
    let i1 = sub_ca(&root, "R36 Depth I1")?;
    let i2 = sub_ca(&i1, "R36 Depth I2")?;
    let (leaf_der, key) = leaf(&i2, "localhost", |_| {})?;
    let chain = vec![leaf_der.clone(), i2.der.clone(), i1.der.clone()];
    let deep = handshake(&[&root.der], chain.clone(), &key, "localhost", |s| {
        let _ = sslsocket::prelude::SslSocketExt::set_peer_verify_depth(s, 2);
    })?;
    assert!(deep.encrypted, "depth 2: {:?}", kinds_on(&deep.errors));
    assert!(
        deep.errors.is_empty(),
        "depth 2: {:?}",
        kinds_on(&deep.errors)
    );
    let expected = vec![
        on(UnspecifiedError, &i1.der)?,
        on(UnableToGetLocalIssuerCertificate, &i1.der)?,
    ];
    let shallow = handshake(&[&root.der], chain.clone(), &key, "localhost", |s| {
        let _ = sslsocket::prelude::SslSocketExt::set_peer_verify_depth(s, 1);
    })?;
    assert!(!shallow.encrypted);
    assert_eq!(shallow.errors, expected, "{:?}", kinds_on(&shallow.errors));
    let ignored = expected.clone();
    let accepted = handshake(&[&root.der], chain, &key, "localhost", move |s| {
        let _ = sslsocket::prelude::SslSocketExt::set_peer_verify_depth(s, 1);
        sslsocket::prelude::SslSocketExt::ignore_ssl_errors_list(s, &ignored);
    })?;
    assert!(accepted.encrypted, "{:?}", kinds_on(&accepted.errors));
    Ok(())
}

// ----- certificates appended after the real chain ---------------------------------------

// Held: a leaf for another name, followed by a second leaf of the same CA that names the
// host, is refused with exactly `HostNameMismatch` on the first (the leaf is always the
// first certificate sent); ignoring that error on the *second* leaf does not accept it.
#[test]
fn a_second_leaf_appended_never_answers_for_the_host() -> TestResult {
    let root = root("R36 Append Root")?;
    let (other_der, key) = leaf(&root, "other.example", |_| {})?;
    let (good_der, _) = leaf(&root, "localhost", |_| {})?;
    let chain = vec![other_der.clone(), good_der.clone(), root.der.clone()];
    let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", |_| {})?;
    assert!(!outcome.encrypted);
    assert_eq!(
        outcome.errors,
        vec![on(HostNameMismatch, &other_der)?],
        "{:?}",
        kinds_on(&outcome.errors)
    );
    let wrong = vec![on(HostNameMismatch, &good_der)?];
    let slipped = handshake(&[&root.der], chain.clone(), &key, "localhost", move |s| {
        sslsocket::prelude::SslSocketExt::ignore_ssl_errors_list(s, &wrong);
    })?;
    assert!(!slipped.encrypted, "{:?}", kinds_on(&slipped.errors));
    let verified = certificate_verify(&[&root.der], &chain, "localhost")?;
    assert_eq!(verified, vec![on(HostNameMismatch, &other_der)?]);
    Ok(())
}

// Held: a good chain followed by a duplicate of the root, an unrelated self-signed CA and
// a self-signed certificate with the leaf's subject (and name) connects with no error on
// both backends, and `SslCertificate::verify` agrees; the same extras after an untrusted
// chain add no error and take none away.
#[test]
fn unrelated_certificates_after_the_chain_change_nothing() -> TestResult {
    let root = root("R36 Extra Root")?;
    let inter = sub_ca(&root, "R36 Extra Intermediate")?;
    let (leaf_der, key) = leaf(&inter, "localhost", |_| {})?;
    let stranger = support::chains::root("R36 Stranger")?;
    let twin_key = new_key()?;
    let twin = leaf_params("localhost", |p| {
        p.use_authority_key_identifier_extension = false
    })?
    .self_signed(&twin_key)?
    .der()
    .to_vec();
    let chain = vec![
        leaf_der.clone(),
        inter.der.clone(),
        root.der.clone(),
        root.der.clone(),
        stranger.der.clone(),
        twin.clone(),
    ];
    let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", |_| {})?;
    assert!(outcome.encrypted, "{:?}", kinds_on(&outcome.errors));
    assert!(outcome.errors.is_empty(), "{:?}", kinds_on(&outcome.errors));
    assert!(certificate_verify(&[&root.der], &chain, "localhost")?.is_empty());
    // Untrusted: the errors are those of the real chain alone.
    let untrusted = handshake(&[&stranger.der], chain.clone(), &key, "localhost", |_| {})?;
    assert!(!untrusted.encrypted);
    assert_eq!(
        untrusted.errors,
        vec![on(SelfSignedCertificateInChain, &root.der)?],
        "{:?}",
        kinds_on(&untrusted.errors)
    );
    Ok(())
}

// Round 36 (own, after review A): malformed DER *inside* the basicConstraints value, not
// only after it. Each form is one webpki refuses; the OpenSSL backend and
// `SslCertificate::verify` must refuse it too, with the error on the intermediate.
#[test]
fn malformed_der_inside_basic_constraints_is_refused_on_the_intermediate() -> TestResult {
    let forms: [(&str, Vec<u8>); 4] = [
        // An element after the fields, inside the SEQUENCE.
        (
            "junk inside",
            vec![0x30, 0x05, 0x01, 0x01, 0xff, 0x05, 0x00],
        ),
        // A length in the long form where the short one fits (BER, not DER).
        ("long length", vec![0x30, 0x81, 0x03, 0x01, 0x01, 0xff]),
        // TRUE as 0x01 (BER; DER says 0xff).
        ("BER boolean", vec![0x30, 0x03, 0x01, 0x01, 0x01]),
        // A SEQUENCE whose length runs past the value.
        ("overlong", vec![0x30, 0x04, 0x01, 0x01, 0xff]),
    ];
    let root = root("R36 Root")?;
    for (form, value) in forms {
        let bad = sub_ca_with_basic_constraints(&root, "R36 Junk Intermediate", value)?;
        let (leaf_der, key) = leaf(&bad, "localhost", |_| {})?;
        let chain = vec![leaf_der.clone(), bad.der.clone()];
        let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", |_| {})?;
        assert!(
            !outcome.encrypted && outcome.errors.contains(&on(UnspecifiedError, &bad.der)?),
            "{form} on {}: encrypted {}, {:?}",
            support::active_backend(),
            outcome.encrypted,
            kinds_on(&outcome.errors)
        );
        let verified = certificate_verify(&[&root.der], &chain, "localhost")?;
        assert!(
            verified.contains(&on(UnspecifiedError, &bad.der)?),
            "{form}: SslCertificate::verify: {:?}",
            kinds_on(&verified)
        );
    }
    Ok(())
}

// Was a defect (round 36, own, after review A): a certificate the peer appended after a
// good chain, one no path uses, whose basicConstraints has bytes after its value, passed
// unnoticed on both backends (only certificates that did not parse at all were errors
// off the path). Decided: a sent certificate we cannot read with confidence is an
// `UnspecifiedError` at its position, on the path or not, as one that does not parse.
#[test]
fn an_appended_certificate_with_a_malformed_extension_is_an_error_on_it() -> TestResult {
    let root = root("R36 Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", |_| {})?;
    let stray = sub_ca_with_basic_constraints(
        &root,
        "R36 Stray",
        vec![0x30, 0x03, 0x01, 0x01, 0xff, 0x00, 0x00],
    )?;
    let chain = vec![leaf_der.clone(), stray.der.clone()];
    let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", |_| {})?;
    assert!(
        !outcome.encrypted && outcome.errors == vec![on(UnspecifiedError, &stray.der)?],
        "{}: encrypted {}, {:?}",
        support::active_backend(),
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    // Ignored where it is, explicitly: the chain itself is good.
    let ignoring = on(UnspecifiedError, &stray.der)?;
    let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", |c| {
        c.ignore_ssl_errors_list(std::slice::from_ref(&ignoring));
    })?;
    assert!(outcome.encrypted, "{:?}", kinds_on(&outcome.errors));
    let verified = certificate_verify(&[&root.der], &chain, "localhost")?;
    assert_eq!(verified, vec![on(UnspecifiedError, &stray.der)?]);
    Ok(())
}
