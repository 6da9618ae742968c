//! Review of the certificate verifier (second review): chains a hostile or sloppy server
//! sends, served by a raw rustls server on 127.0.0.1 (`support::attack::AttackServer`) to
//! our client on the active backend. Each test states what OpenSSL 3 (Qt's backend)
//! reports for the same chain; the expectation is the same on both backends
//! (`cargo test --test trust_verifier_parity` and
//! `SSLSOCKET_BACKEND=openssl cargo test --features openssl --test trust_verifier_parity`).
//!
//! Tests marked DEFECT failed on at least one backend before round 30 (a review of the
//! verifier); all pass now. The others pinned a promise that held. Where the backends
//! still differ on purpose (chains OpenSSL accepts and webpki refuses), the test says so.

mod support;

use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType};
use sslsocket::prelude::*;
use sslsocket::verify::{collect_errors, Purpose, TrustStore, VerifyInput};
use sslsocket::{IgnoreRule, SslError, SslErrorKind};
use support::chains::*;
use time::OffsetDateTime;

/// The decided difference for chains OpenSSL (so Qt) accepts and webpki refuses: the
/// OpenSSL backend reports nothing and connects; the rustls backend fails closed with an
/// `UnspecifiedError` on the leaf (webpki's reason, which no kind of ours describes), and
/// ignoring exactly that error, bound to the leaf, connects.
fn webpki_only_refusal(trusted: &[&[u8]], chain: Vec<Vec<u8>>, key: &KeyPair) -> TestResult {
    let leaf_der = chain.first().ok_or("no leaf")?.clone();
    let outcome = handshake(trusted, chain.clone(), key, "localhost", |_| {})?;
    if sslsocket::backend::active_backend() == Some("openssl") {
        assert_eq!(
            outcome.errors,
            Vec::<SslError>::new(),
            "{:?}",
            kinds_on(&outcome.errors)
        );
        assert!(outcome.encrypted);
        return Ok(());
    }
    let expected = vec![on(SslErrorKind::UnspecifiedError, &leaf_der)?];
    assert_eq!(
        outcome.errors,
        expected,
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(!outcome.encrypted);
    let ignored = expected.clone();
    let outcome = handshake(trusted, chain, key, "localhost", move |socket| {
        socket.ignore_ssl_errors_list(&ignored);
    })?;
    assert!(outcome.encrypted, "errors: {:?}", kinds_on(&outcome.errors));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// anyExtendedKeyUsage alone.
//
// OpenSSL 3's `check_purpose_ssl_server` rejects a certificate whose extendedKeyUsage holds
// anyExtendedKeyUsage but not serverAuth (`xku_reject(x, XKU_SSL_SERVER|XKU_SGC)`;
// `openssl verify -purpose sslserver` says "error 26 ... unsupported certificate purpose"),
// and so does webpki (`RequiredEkuNotFound`). The collector lets it through
// (src/verify/checks.rs `allows_purpose`: `eku.any || ...`), so on the rustls backend the
// only trace of the problem is webpki's refusal, which verifier.rs turns into an
// `UnspecifiedError` on the leaf *only when the collector found nothing else*.

/// DEFECT (rustls): the error is `InvalidPurpose` on the leaf, as OpenSSL reports it; the
/// rustls backend reports `UnspecifiedError` instead, so an ignore list written against
/// one backend does not work on the other.
#[test]
fn a_leaf_with_only_any_extended_key_usage_is_invalid_purpose_on_every_backend() -> TestResult {
    let root = root("Review Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
    })?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(!outcome.encrypted, "an anyEKU-only leaf was accepted");
    assert_eq!(
        outcome.errors,
        vec![on(SslErrorKind::InvalidPurpose, &leaf_der)?],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// DEFECT (rustls, accepts what it must refuse): the leaf is expired *and* good only for
/// anyExtendedKeyUsage. OpenSSL lists `InvalidPurpose` and `CertificateExpired` on it. The
/// rustls backend lists only `CertificateExpired` (webpki's refusal is taken as explained
/// by it, src/verify/verifier.rs `errors_of`, `path_explained`), so an application that
/// ignores exactly the expiry of this certificate is connected to a server whose
/// certificate is not valid for TLS servers.
#[test]
fn ignoring_the_expiry_of_an_any_eku_leaf_does_not_accept_its_purpose() -> TestResult {
    let root = root("Review Root")?;
    let now = OffsetDateTime::now_utc();
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
        p.not_before = now - 30 * DAY;
        p.not_after = now - DAY;
    })?;
    let expired = on(SslErrorKind::CertificateExpired, &leaf_der)?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        |s| s.ignore_ssl_errors_list(std::slice::from_ref(&expired)),
    )?;
    assert!(
        !outcome.encrypted,
        "ignoring the expiry accepted a leaf not valid for TLS servers: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(
        outcome
            .errors
            .contains(&on(SslErrorKind::InvalidPurpose, &leaf_der)?),
        "the purpose error is missing: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// DEFECT (both backends: `SslCertificate::verify` / `collect_errors` are the collector
/// alone): Qt's `QSslCertificate::verify` on OpenSSL reports the purpose; the collector
/// reports nothing for an anyEKU-only leaf (src/verify/checks.rs `allows_purpose`).
#[test]
fn collect_errors_reports_the_purpose_of_an_any_eku_leaf() -> TestResult {
    let root = root("Review Root")?;
    let (leaf_der, _) = leaf(&root, "localhost", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
    })?;
    let store = TrustStore::new(vec![cert(&root.der)?]);
    let chain = vec![cert(&leaf_der)?];
    let errors = collect_errors(&VerifyInput {
        chain: &chain,
        store: &store,
        host: Some("localhost"),
        purpose: Purpose::ServerAuth,
        now_unix: OffsetDateTime::now_utc().unix_timestamp(),
        max_depth: 0,
    });
    assert_eq!(errors, vec![on(SslErrorKind::InvalidPurpose, &leaf_der)?]);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Issuer choice among several certificates with the same name and key.
//
// OpenSSL's `find_issuer` / `X509_STORE_CTX_get1_issuer` take an issuer that is valid now
// when there is one. The collector (src/verify/path.rs `next_issuer` / `best`) takes the
// first one whose signature verifies, whatever its dates, so when another error makes it
// run, it can build the path through an expired copy and list errors of a path nobody
// needs.

/// DEFECT (rustls, wrong list): the server sends leaf, an expired older copy of its
/// intermediate (same name, same key), then the current intermediate; the leaf is for
/// another name. OpenSSL: `HostNameMismatch` on the leaf, nothing else. rustls adds
/// `CertificateExpired` on the old copy, so ignoring the name mismatch (what the list
/// suggests is wrong) does not connect on rustls but does on OpenSSL.
#[test]
fn an_expired_duplicate_intermediate_sent_first_adds_no_error() -> TestResult {
    let root = root("Review Root")?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let now = OffsetDateTime::now_utc();
    let mut old = ca_params("Review Intermediate");
    old.not_before = now - 400 * DAY;
    old.not_after = now - 10 * DAY;
    let old_der = old.signed_by(&key, &root.issuer)?.der().to_vec();
    let current = ca_params("Review Intermediate");
    let current_der = current.signed_by(&key, &root.issuer)?.der().to_vec();
    let intermediate = Ca::new(current, key, current_der.clone());
    let (leaf_der, leaf_key) = leaf(&intermediate, "other.example", |_| {})?;
    let mismatch = on(SslErrorKind::HostNameMismatch, &leaf_der)?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone(), old_der, current_der],
        &leaf_key,
        "localhost",
        |s| s.ignore_ssl_errors_list(std::slice::from_ref(&mismatch)),
    )?;
    assert_eq!(
        outcome.errors,
        vec![mismatch],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(outcome.encrypted);
    Ok(())
}

/// DEFECT (rustls, wrong list): the configuration trusts a root twice, an expired
/// certificate and its re-issue (same name, same key: a CA extending its root), the
/// expired one first. A leaf for another name: OpenSSL lists `HostNameMismatch` only; the
/// rustls backend also lists `CertificateExpired` on the old root.
#[test]
fn an_expired_copy_of_a_trusted_root_adds_no_error() -> TestResult {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let now = OffsetDateTime::now_utc();
    let mut old = ca_params("Review Root");
    old.not_before = now - 400 * DAY;
    old.not_after = now - 10 * DAY;
    let old_der = old.self_signed(&key)?.der().to_vec();
    let current = ca_params("Review Root");
    let current_der = current.self_signed(&key)?.der().to_vec();
    let root = Ca::new(current, key, current_der.clone());
    let (leaf_der, leaf_key) = leaf(&root, "other.example", |_| {})?;
    let mismatch = on(SslErrorKind::HostNameMismatch, &leaf_der)?;
    let outcome = handshake(
        &[&old_der, &current_der],
        vec![leaf_der.clone()],
        &leaf_key,
        "localhost",
        |s| s.ignore_ssl_errors_list(std::slice::from_ref(&mismatch)),
    )?;
    assert_eq!(
        outcome.errors,
        vec![mismatch],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(outcome.encrypted);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Backend disagreements where the rustls backend's only trace is webpki's refusal.

/// DEFECT (rustls, lists disagree; fail-closed): a leaf issued by a trusted root with
/// `CA:TRUE`, serverAuth and a SAN for the host. OpenSSL 3 accepts it (`openssl verify
/// -purpose sslserver -verify_hostname localhost`: OK), so Qt reports no error; webpki
/// refuses it (`CaUsedAsEndEntity`) and the rustls backend reports an unexplained
/// `UnspecifiedError` on the leaf.
#[test]
fn a_ca_certificate_serving_as_leaf_gets_the_same_list_on_every_backend() -> TestResult {
    let root = root("Review Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
    })?;
    webpki_only_refusal(&[&root.der], vec![leaf_der], &key)
}

/// DEFECT (rustls, lists disagree; OpenSSL stricter): seven intermediates between leaf and
/// root, no verify depth set. OpenSSL (default depth 100) accepts the chain; webpki stops
/// at six (`MAX_SUB_CA_COUNT`), the collector allows ten (`MAX_INTERMEDIATES`), so the
/// rustls backend reports an `UnspecifiedError` on the leaf that nothing explains.
#[test]
fn seven_intermediates_get_the_same_list_on_every_backend() -> TestResult {
    let root = root("Review Root")?;
    let mut cas = vec![sub_ca(&root, "Review Intermediate 1")?];
    for n in 2..=7 {
        let next = sub_ca(
            cas.last().ok_or("no CA")?,
            &format!("Review Intermediate {n}"),
        )?;
        cas.push(next);
    }
    let (leaf_der, key) = leaf(cas.last().ok_or("no CA")?, "localhost", |_| {})?;
    let mut chain = vec![leaf_der];
    chain.extend(cas.iter().rev().map(|ca| ca.der.clone()));
    webpki_only_refusal(&[&root.der], chain, &key)
}

/// DEFECT (rustls, more permissive than Qt): `*.example.test` and the peer name
/// `x_y.example.test`. OpenSSL's wildcard match takes letters, digits and `-` only
/// (`openssl verify -verify_hostname x_y.example.com`: error 62, hostname mismatch), so
/// the OpenSSL backend reports `HostNameMismatch`; our rule (src/verify/hostname.rs
/// `is_plain_name` allows `_`) and webpki match it, and the rustls backend accepts.
#[test]
fn a_wildcard_does_not_stand_for_a_label_with_an_underscore() -> TestResult {
    let root = root("Review Root")?;
    let (leaf_der, key) = leaf(&root, "*.example.test", |_| {})?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "x_y.example.test",
        |_| {},
    )?;
    assert_eq!(
        outcome.errors,
        vec![on(SslErrorKind::HostNameMismatch, &leaf_der)?],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Promises that held (passing tests).

/// HELD: an intermediate whose extendedKeyUsage is clientAuth only cannot issue a server
/// certificate: `InvalidPurpose` on that intermediate, on both backends.
#[test]
fn an_intermediate_for_client_auth_only_is_invalid_purpose_on_it() -> TestResult {
    let root = root("Review Root")?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = ca_params("Review Client Intermediate");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let der = params.signed_by(&key, &root.issuer)?.der().to_vec();
    let intermediate = Ca::new(params, key, der.clone());
    let (leaf_der, leaf_key) = leaf(&intermediate, "localhost", |_| {})?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der, der.clone()],
        &leaf_key,
        "localhost",
        |_| {},
    )?;
    assert!(!outcome.encrypted);
    assert_eq!(
        outcome.errors,
        vec![on(SslErrorKind::InvalidPurpose, &der)?],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// HELD: an ignore entry bound to one self-signed certificate does not accept another with
/// the same subject and serial number but another key.
#[test]
fn an_ignore_entry_bound_to_a_certificate_does_not_cover_its_look_alike() -> TestResult {
    let params = leaf_params("localhost", |p| {
        p.serial_number = Some(rcgen::SerialNumber::from(vec![0x42]));
        p.use_authority_key_identifier_extension = false;
    })?;
    let key_a = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let key_b = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let a = params.self_signed(&key_a)?.der().to_vec();
    let b = params.self_signed(&key_b)?.der().to_vec();
    let ignore_a = on(SslErrorKind::SelfSignedCertificate, &a)?;
    let outcome = handshake(&[], vec![b.clone()], &key_b, "localhost", |s| {
        s.ignore_ssl_errors_list(std::slice::from_ref(&ignore_a))
    })?;
    assert!(!outcome.encrypted, "the look-alike was accepted");
    assert_eq!(
        outcome.errors,
        vec![on(SslErrorKind::SelfSignedCertificate, &b)?]
    );
    // The certificate the entry is bound to is accepted.
    let outcome = handshake(&[], vec![a], &key_a, "localhost", |s| {
        s.ignore_ssl_errors_list(std::slice::from_ref(&ignore_a))
    })?;
    assert!(outcome.encrypted);
    Ok(())
}

/// HELD: garbage appended after a good chain is never skipped: the handshake fails.
#[test]
fn bytes_that_are_no_certificate_appended_to_a_good_chain_refuse_it() -> TestResult {
    let root = root("Review Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", |_| {})?;
    let mut trailing = leaf_der.clone();
    trailing.extend_from_slice(&[0x05, 0x00]);
    for extra in [vec![0x30, 0x03, 0x02, 0x01, 0x01], trailing] {
        let outcome = handshake(
            &[&root.der],
            vec![leaf_der.clone(), extra],
            &key,
            "localhost",
            |s| {
                s.ignore_ssl_error_rules(vec![IgnoreRule::AnyCertificate(
                    SslErrorKind::HostNameMismatch,
                )])
            },
        )?;
        assert!(
            !outcome.encrypted,
            "errors: {:?}",
            kinds_on(&outcome.errors)
        );
    }
    Ok(())
}

/// HELD: a leaf outside its intermediate's permitted IP range is refused even when the
/// host is an address the leaf names.
#[test]
fn an_ip_address_outside_the_permitted_range_is_an_error_on_the_leaf() -> TestResult {
    let root = root("Review Root")?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = ca_params("Review Constrained Intermediate");
    params.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4(
            [10, 0, 0, 0],
            [255, 0, 0, 0],
        ))],
        excluded_subtrees: Vec::new(),
    });
    let der = params.signed_by(&key, &root.issuer)?.der().to_vec();
    let intermediate = Ca::new(params, key, der.clone());
    let (leaf_der, leaf_key) = leaf(&intermediate, "ip", |p| {
        p.subject_alt_names =
            vec![SanType::IpAddress("127.0.0.1".parse().unwrap_or(
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            ))];
    })?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone(), der],
        &leaf_key,
        "127.0.0.1",
        |_| {},
    )?;
    assert!(!outcome.encrypted);
    assert!(
        outcome
            .errors
            .contains(&on(SslErrorKind::UnspecifiedError, &leaf_der)?),
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// An intermediate under `root` with one more extension, critical.
fn intermediate_with_critical(root: &Ca, oid: &[u64], content: Vec<u8>) -> BoxResult<Ca> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = ca_params("Review Critical Intermediate");
    let mut extension = rcgen::CustomExtension::from_oid_content(oid, content);
    extension.set_criticality(true);
    params.custom_extensions = vec![extension];
    let der = params.signed_by(&key, &root.issuer)?.der().to_vec();
    Ok(Ca::new(params, key, der))
}

/// DEFECT (rustls, lists disagree; fail-closed): an intermediate whose certificatePolicies
/// (anyPolicy) is marked critical. OpenSSL handles that extension
/// (`X509_supported_extension`; the collector's `CRITICAL_OK` list says so too) and
/// accepts the chain; webpki refuses any critical extension it does not read, so the
/// rustls backend reports an unexplained `UnspecifiedError` on the leaf.
#[test]
fn a_critical_certificate_policies_extension_gets_the_same_list_on_every_backend() -> TestResult {
    let root = root("Review Root")?;
    // SEQUENCE { SEQUENCE { OID 2.5.29.32.0 (anyPolicy) } }
    let policies = vec![0x30, 0x08, 0x30, 0x06, 0x06, 0x04, 0x55, 0x1d, 0x20, 0x00];
    let intermediate = intermediate_with_critical(&root, &[2, 5, 29, 32], policies)?;
    let (leaf_der, key) = leaf(&intermediate, "localhost", |_| {})?;
    webpki_only_refusal(&[&root.der], vec![leaf_der, intermediate.der.clone()], &key)
}

/// HELD: an unknown critical extension on an intermediate is `UnspecifiedError` on that
/// intermediate on both backends (OpenSSL's `X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION`),
/// and ignoring the leaf's own errors does not hide it.
#[test]
fn an_unknown_critical_extension_on_an_intermediate_is_an_error_on_it() -> TestResult {
    let root = root("Review Root")?;
    let intermediate =
        intermediate_with_critical(&root, &[1, 3, 6, 1, 4, 1, 55555, 1], vec![0x05, 0x00])?;
    let (leaf_der, key) = leaf(&intermediate, "other.example", |_| {})?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone(), intermediate.der.clone()],
        &key,
        "localhost",
        |s| {
            s.ignore_ssl_error_rules(vec![IgnoreRule::AnyCertificate(
                SslErrorKind::HostNameMismatch,
            )])
        },
    )?;
    assert!(!outcome.encrypted);
    assert_eq!(
        outcome.errors,
        vec![
            on(SslErrorKind::UnspecifiedError, &intermediate.der)?,
            on(SslErrorKind::HostNameMismatch, &leaf_der)?,
        ],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// DEFECT (rustls, order differs from OpenSSL's): an expired intermediate under a trusted
/// root that is not valid yet. Both backends put each error on the right certificate, but
/// OpenSSL's `internal_verify` walks the chain from the top down (signature, then dates,
/// per certificate), so its callback - and the OpenSSL backend - list `NotYetValid` on the
/// root first; the collector (src/verify/chain.rs `path_errors`: all signatures, then all
/// dates, leaf first) lists the intermediate's expiry first, though its documentation
/// promises OpenSSL's order. The first error is what `handshake_must_interrupt_on_error`
/// hands the hook, so the two backends interrupt on different errors.
#[test]
fn an_expired_intermediate_and_a_root_not_yet_valid_are_listed_in_openssl_order() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut root_params = ca_params("Review Future Root");
    root_params.not_before = now + DAY;
    let root_der = root_params.self_signed(&root_key)?.der().to_vec();
    let root = Ca::new(root_params, root_key, root_der.clone());
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = ca_params("Review Expired Intermediate");
    params.not_before = now - 30 * DAY;
    params.not_after = now - DAY;
    let int_der = params.signed_by(&key, &root.issuer)?.der().to_vec();
    let intermediate = Ca::new(params, key, int_der.clone());
    let (leaf_der, leaf_key) = leaf(&intermediate, "localhost", |_| {})?;
    let outcome = handshake(
        &[&root_der],
        vec![leaf_der, int_der.clone()],
        &leaf_key,
        "localhost",
        |_| {},
    )?;
    assert!(!outcome.encrypted);
    assert_eq!(
        outcome.errors,
        vec![
            on(SslErrorKind::CertificateNotYetValid, &root_der)?,
            on(SslErrorKind::CertificateExpired, &int_der)?,
        ],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The fail-closed rule of the rustls backend: webpki names one reason for refusing a chain
// (the most specific one; a date outranks everything). An error the application ignores
// explains that refusal only if webpki, asked again with that error granted, finds nothing
// the list does not show.

/// A chain with two faults, one the list shows (the leaf expired) and one only webpki
/// refuses (seven intermediates): ignoring the expiry alone does not connect on rustls.
/// (OpenSSL accepts seven intermediates: there, ignoring the expiry connects.)
#[test]
fn ignoring_an_expiry_does_not_hide_a_second_refusal_webpki_reported_under_it() -> TestResult {
    let root = root("Review Root")?;
    let mut cas = vec![sub_ca(&root, "Review Intermediate 1")?];
    for n in 2..=7 {
        let next = sub_ca(
            cas.last().ok_or("no CA")?,
            &format!("Review Intermediate {n}"),
        )?;
        cas.push(next);
    }
    let now = OffsetDateTime::now_utc();
    let (leaf_der, key) = leaf(cas.last().ok_or("no CA")?, "localhost", |p| {
        p.not_before = now - 10 * DAY;
        p.not_after = now - DAY;
    })?;
    let mut chain = vec![leaf_der.clone()];
    chain.extend(cas.iter().rev().map(|ca| ca.der.clone()));
    let expired = on(SslErrorKind::CertificateExpired, &leaf_der)?;
    let ignored = vec![expired.clone()];
    let outcome = handshake(&[&root.der], chain, &key, "localhost", move |s| {
        s.ignore_ssl_errors_list(&ignored)
    })?;
    if sslsocket::backend::active_backend() == Some("openssl") {
        assert_eq!(outcome.errors, vec![expired]);
        assert!(outcome.encrypted);
    } else {
        let unexplained = on(SslErrorKind::UnspecifiedError, &leaf_der)?;
        assert_eq!(
            outcome.errors,
            vec![expired, unexplained],
            "{:?}",
            kinds_on(&outcome.errors)
        );
        assert!(!outcome.encrypted);
    }
    Ok(())
}

/// The same behind an untrusted root: ignoring `SelfSignedCertificateInChain` lets webpki
/// judge the chain with that root as an anchor, and a CA certificate as the leaf (which
/// webpki refuses) is still refused on rustls. With a proper leaf, the same ignore
/// connects on both backends.
#[test]
fn ignoring_an_untrusted_root_still_lets_webpki_judge_the_rest_of_the_chain() -> TestResult {
    let root = root("Review Untrusted Root")?;
    let intermediate = sub_ca(&root, "Review Intermediate")?;
    let root_error = on(SslErrorKind::SelfSignedCertificateInChain, &root.der)?;

    let (good_der, good_key) = leaf(&intermediate, "localhost", |_| {})?;
    let ignored = vec![root_error.clone()];
    let outcome = handshake(
        &[],
        vec![good_der, intermediate.der.clone(), root.der.clone()],
        &good_key,
        "localhost",
        move |s| s.ignore_ssl_errors_list(&ignored),
    )?;
    assert_eq!(
        outcome.errors,
        vec![root_error.clone()],
        "{:?}",
        kinds_on(&outcome.errors)
    );
    assert!(outcome.encrypted);

    let (ca_leaf, ca_key) = leaf(&intermediate, "localhost", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
    })?;
    let ignored = vec![root_error.clone()];
    let outcome = handshake(
        &[],
        vec![ca_leaf.clone(), intermediate.der.clone(), root.der.clone()],
        &ca_key,
        "localhost",
        move |s| s.ignore_ssl_errors_list(&ignored),
    )?;
    if sslsocket::backend::active_backend() == Some("openssl") {
        assert!(outcome.encrypted, "{:?}", kinds_on(&outcome.errors));
    } else {
        let unexplained = on(SslErrorKind::UnspecifiedError, &ca_leaf)?;
        assert_eq!(
            outcome.errors,
            vec![root_error, unexplained],
            "{:?}",
            kinds_on(&outcome.errors)
        );
        assert!(!outcome.encrypted);
    }
    Ok(())
}

/// An expired leaf under a trusted chain: ignoring the expiry connects on both backends
/// (webpki, asked again at a time the chain is valid, finds nothing else).
#[test]
fn ignoring_the_expiry_of_an_otherwise_good_chain_connects() -> TestResult {
    let root = root("Review Root")?;
    let intermediate = sub_ca(&root, "Review Intermediate")?;
    let now = OffsetDateTime::now_utc();
    let (leaf_der, key) = leaf(&intermediate, "localhost", |p| {
        p.not_before = now - 10 * DAY;
        p.not_after = now - DAY;
    })?;
    let expired = on(SslErrorKind::CertificateExpired, &leaf_der)?;
    let ignored = vec![expired.clone()];
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der, intermediate.der.clone()],
        &key,
        "localhost",
        move |s| s.ignore_ssl_errors_list(&ignored),
    )?;
    assert_eq!(
        outcome.errors,
        vec![expired],
        "{:?}",
        kinds_on(&outcome.errors)
    );
    assert!(outcome.encrypted);
    Ok(())
}

/// A lone leaf whose issuer is unknown lists, on both backends, what OpenSSL without
/// `X509_V_FLAG_PARTIAL_CHAIN` (Qt) lists: the missing issuer, the unverifiable
/// signature, then its dates. The OpenSSL backend takes any trusted certificate as an
/// anchor, as webpki does: trusting the intermediate alone then accepts the chain on both.
#[test]
fn a_lone_leaf_of_an_unknown_issuer_and_a_trusted_intermediate_alike_on_every_backend() -> TestResult
{
    let root = root("Review Root")?;
    let intermediate = sub_ca(&root, "Review Intermediate")?;
    let now = OffsetDateTime::now_utc();
    let (expired, key) = leaf(&intermediate, "localhost", |p| {
        p.not_before = now - 10 * DAY;
        p.not_after = now - DAY;
    })?;
    let outcome = handshake(
        &[&root.der],
        vec![expired.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    let expected = vec![
        on(SslErrorKind::UnableToGetLocalIssuerCertificate, &expired)?,
        on(SslErrorKind::UnableToVerifyFirstCertificate, &expired)?,
        on(SslErrorKind::CertificateExpired, &expired)?,
    ];
    assert_eq!(outcome.errors, expected, "{:?}", kinds_on(&outcome.errors));
    assert!(!outcome.encrypted);

    let (good, key) = leaf(&intermediate, "localhost", |_| {})?;
    let outcome = handshake(
        &[&intermediate.der],
        vec![good, intermediate.der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert_eq!(outcome.errors, vec![], "{:?}", kinds_on(&outcome.errors));
    assert!(outcome.encrypted);
    Ok(())
}
