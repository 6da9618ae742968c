//! The tolerances of the rustls verifier's fail-closed rule (verifier.rs
//! `refusal_explained`: webpki's refusal must be explained by the list; a listed date error
//! has webpki judge the chain again at a time every certificate of the collector's path
//! below its top is valid at, when there is one). Written by a review of fbc7828 (round
//! 30): the DEFECT tests failed on the rustls backend there and pass since; HOLDS tests
//! pinned behaviour that held on both backends.
//!
//! Chains are served by a raw rustls server on 127.0.0.1 (`support::attack::AttackServer`)
//! to our client on the active backend; the expectation is what OpenSSL 3 (Qt's backend)
//! reports, the same on both backends:
//! `cargo test -p sslsocket --test trust_verifier_tolerances` and
//! `SSLSOCKET_BACKEND=openssl cargo test -p sslsocket --features openssl --test trust_verifier_tolerances`.

mod support;

use rcgen::CustomExtension;
use sslsocket::prelude::*;
use sslsocket::SslErrorKind;
use support::chains::*;
use time::OffsetDateTime;

// ---------------------------------------------------------------------------------------
// The date tolerance of the second webpki run needs ONE instant at which every certificate
// of the collector's path below its top is valid. When the listed date errors are on
// certificates whose validity periods do not overlap, there is no such instant; at
// fbc7828 the refusal then counted as unexplained, and the leaf got an `UnspecifiedError`
// that OpenSSL never reports (ignoring exactly the listed errors no longer connected).
// Now the collector's complete list decides there, as OpenSSL's does.
// ---------------------------------------------------------------------------------------

/// DEFECT (rustls refuses what OpenSSL accepts). An expired leaf whose intermediate was
/// re-issued (same name, same key) after the leaf expired; the server sends the re-issue.
/// OpenSSL 3 (`openssl verify -untrusted new.pem -CAfile root.pem leaf.pem`): only
/// "error 10 at 0 depth: certificate has expired"; the OpenSSL backend lists
/// `CertificateExpired` on the leaf and, ignoring it, connects. rustls adds
/// `UnspecifiedError` on the leaf and refuses.
#[test]
fn ignoring_an_expired_leaf_under_a_reissued_intermediate_connects() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let root = root("Review Root")?;
    let old = sub_ca_with(&root, "Review Intermediate", None, |p| {
        p.not_before = now - 400 * DAY;
        p.not_after = now - 20 * DAY;
    })?;
    let (leaf_der, key) = leaf(&old, "localhost", |p| {
        p.not_before = now - 100 * DAY;
        p.not_after = now - 30 * DAY;
    })?;
    let reissued = sub_ca_with(&root, "Review Intermediate", Some(&old.key_pem), |p| {
        p.not_before = now - 10 * DAY;
        p.not_after = now + 300 * DAY;
    })?;
    let expected = vec![on(SslErrorKind::CertificateExpired, &leaf_der)?];
    expect_connects_ignoring(
        &[&root.der],
        vec![leaf_der, reissued.der.clone()],
        &key,
        expected,
    )
}

/// DEFECT (rustls refuses what OpenSSL accepts). A private PKI (untrusted root sent in
/// the chain) whose intermediate expired before the current leaf was issued. OpenSSL
/// lists `SelfSignedCertificateInChain` on the root and `CertificateExpired` on the
/// intermediate; ignoring both connects on the OpenSSL backend. rustls adds
/// `UnspecifiedError` on the leaf.
#[test]
fn ignoring_an_untrusted_root_and_an_intermediate_expired_before_the_leaf_connects() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let root = root_with("Review Private Root", |p| {
        p.not_before = now - 1000 * DAY;
        p.not_after = now + 1000 * DAY;
    })?;
    let intermediate = sub_ca_with(&root, "Review Intermediate", None, |p| {
        p.not_before = now - 400 * DAY;
        p.not_after = now - 40 * DAY;
    })?;
    let (leaf_der, key) = leaf(&intermediate, "localhost", |p| {
        p.not_before = now - 10 * DAY;
        p.not_after = now + 30 * DAY;
    })?;
    let expected = vec![
        on(SslErrorKind::SelfSignedCertificateInChain, &root.der)?,
        on(SslErrorKind::CertificateExpired, &intermediate.der)?,
    ];
    expect_connects_ignoring(
        &[],
        vec![leaf_der, intermediate.der.clone(), root.der.clone()],
        &key,
        expected,
    )
}

/// DEFECT (rustls refuses what OpenSSL accepts). A leaf not yet valid under an
/// intermediate already expired (trusted root). OpenSSL lists `CertificateExpired` on the
/// intermediate, then `CertificateNotYetValid` on the leaf (top down); ignoring both
/// connects on the OpenSSL backend. rustls adds `UnspecifiedError` on the leaf.
#[test]
fn ignoring_a_not_yet_valid_leaf_under_an_expired_intermediate_connects() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let root = root("Review Root")?;
    let intermediate = sub_ca_with(&root, "Review Intermediate", None, |p| {
        p.not_before = now - 400 * DAY;
        p.not_after = now - 40 * DAY;
    })?;
    let (leaf_der, key) = leaf(&intermediate, "localhost", |p| {
        p.not_before = now + 10 * DAY;
        p.not_after = now + 30 * DAY;
    })?;
    let expected = vec![
        on(SslErrorKind::CertificateExpired, &intermediate.der)?,
        on(SslErrorKind::CertificateNotYetValid, &leaf_der)?,
    ];
    expect_connects_ignoring(
        &[&root.der],
        vec![leaf_der, intermediate.der.clone()],
        &key,
        expected,
    )
}

/// HOLDS: the collector itself lists the non-overlapping case as OpenSSL does (only the
/// verifier's rule adds the `UnspecifiedError`).
#[test]
fn collect_errors_lists_only_the_expiry_under_a_reissued_intermediate() -> TestResult {
    use sslsocket::verify::{collect_errors, Purpose, TrustStore, VerifyInput};
    let now = OffsetDateTime::now_utc();
    let root = root("Review Root")?;
    let old = sub_ca_with(&root, "Review Intermediate", None, |p| {
        p.not_before = now - 400 * DAY;
        p.not_after = now - 20 * DAY;
    })?;
    let (leaf_der, _key) = leaf(&old, "localhost", |p| {
        p.not_before = now - 100 * DAY;
        p.not_after = now - 30 * DAY;
    })?;
    let reissued = sub_ca_with(&root, "Review Intermediate", Some(&old.key_pem), |p| {
        p.not_before = now - 10 * DAY;
        p.not_after = now + 300 * DAY;
    })?;
    let chain = vec![cert(&leaf_der)?, cert(&reissued.der)?];
    let store = TrustStore::new(vec![cert(&root.der)?]);
    let errors = collect_errors(&VerifyInput {
        chain: &chain,
        store: &store,
        host: Some("localhost"),
        purpose: Purpose::ServerAuth,
        now_unix: now.unix_timestamp(),
        max_depth: 0,
    });
    assert_eq!(
        errors,
        vec![on(SslErrorKind::CertificateExpired, &leaf_der)?]
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Purpose: nsCertType.
// ---------------------------------------------------------------------------------------

/// DEFECT (rustls accepts what OpenSSL refuses; `collect_errors` incomplete). A leaf with
/// no extendedKeyUsage and a Netscape Cert Type (2.16.840.1.113730.1.1) of "SSL Client"
/// only, under a trusted root. OpenSSL 3's `check_purpose_ssl_server` rejects it
/// (`ns_reject(x, NS_SSL_SERVER)`; `openssl verify -purpose sslserver`: "error 26 at 0
/// depth lookup: unsuitable certificate purpose"), so the OpenSSL backend lists
/// `InvalidPurpose` on the leaf and refuses. webpki does not read nsCertType and the
/// collector's `allows_purpose` (checks.rs) ignores it: the rustls backend lists nothing
/// and connects.
#[test]
fn a_leaf_whose_ns_cert_type_is_ssl_client_only_is_invalid_purpose() -> TestResult {
    let root = root("Review Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.extended_key_usages = vec![];
        p.custom_extensions = vec![CustomExtension::from_oid_content(
            &[2, 16, 840, 1, 113730, 1, 1],
            vec![0x03, 0x02, 0x07, 0x80],
        )];
    })?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert_eq!(
        outcome.errors,
        vec![on(SslErrorKind::InvalidPurpose, &leaf_der)?],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(!outcome.encrypted);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// What held: the second webpki run does not widen what the list shows.
// ---------------------------------------------------------------------------------------

/// HOLDS: an expired certificate the peer appended (off the path) is not listed, so an
/// ignore entry bound to it does not cover the expired leaf.
#[test]
fn ignoring_the_expiry_of_an_appended_certificate_does_not_cover_the_leaf() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let root = root("Review Root")?;
    let intermediate = sub_ca(&root, "Review Intermediate")?;
    let stray = sub_ca_with(&root, "Review Stray", None, |p| {
        p.not_before = now - 100 * DAY;
        p.not_after = now - DAY;
    })?;
    let (leaf_der, key) = leaf(&intermediate, "localhost", |p| {
        p.not_before = now - 10 * DAY;
        p.not_after = now - DAY;
    })?;
    expect_refused_listing(
        &[&root.der],
        vec![
            leaf_der.clone(),
            intermediate.der.clone(),
            stray.der.clone(),
        ],
        &key,
        vec![on(SslErrorKind::CertificateExpired, &stray.der)?],
        vec![on(SslErrorKind::CertificateExpired, &leaf_der)?],
        |_| {},
    )
}

/// HOLDS: an untrusted root carrying name constraints the leaf breaks: ignoring its
/// `SelfSignedCertificateInChain` (the second run makes it an anchor, constraints
/// included) leaves the violation listed (`UnspecifiedError` on the leaf) and refuses.
#[test]
fn ignoring_an_untrusted_constrained_root_keeps_its_constraints() -> TestResult {
    use rcgen::{GeneralSubtree, NameConstraints};
    let root = root_with("Review Constrained Root", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("good.test".into())],
            excluded_subtrees: vec![],
        });
    })?;
    let intermediate = sub_ca(&root, "Review Intermediate")?;
    let (leaf_der, key) = leaf(&intermediate, "localhost", |_| {})?;
    let root_error = on(SslErrorKind::SelfSignedCertificateInChain, &root.der)?;
    expect_refused_listing(
        &[],
        vec![leaf_der.clone(), intermediate.der.clone(), root.der.clone()],
        &key,
        vec![root_error.clone()],
        vec![root_error, on(SslErrorKind::UnspecifiedError, &leaf_der)?],
        |_| {},
    )
}

/// HOLDS: verify depth 1 and two intermediates, leaf expired: the second run (which has
/// no depth check) does not make ignoring the expiry enough; the depth errors OpenSSL
/// reports (`UnspecifiedError` and `UnableToGetLocalIssuerCertificate` on the second
/// intermediate) stay listed.
#[test]
fn ignoring_an_expiry_does_not_lift_the_verify_depth() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let root = root("Review Root")?;
    let first = sub_ca(&root, "Review Intermediate 1")?;
    let second = sub_ca(&first, "Review Intermediate 2")?;
    let (leaf_der, key) = leaf(&second, "localhost", |p| {
        p.not_before = now - 10 * DAY;
        p.not_after = now - DAY;
    })?;
    let expired = on(SslErrorKind::CertificateExpired, &leaf_der)?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone(), second.der.clone(), first.der.clone()],
        &key,
        "localhost",
        {
            let ignored = vec![expired.clone()];
            move |s| {
                let _ = s.set_peer_verify_depth(1);
                s.ignore_ssl_errors_list(&ignored)
            }
        },
    )?;
    assert!(
        !outcome.encrypted,
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(
        outcome.errors.contains(&expired),
        "{:?}",
        kinds_on(&outcome.errors)
    );
    assert!(
        outcome
            .errors
            .contains(&on(SslErrorKind::UnspecifiedError, &first.der)?),
        "{:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// HOLDS: a cross-signed intermediate (same name and key, one copy under an untrusted
/// root sent first, one under the trusted root) with the leaf expired. Both backends build
/// the path through the copy sent first and list `SelfSignedCertificateInChain` on the
/// untrusted root and the expiry (OpenSSL finds no trusted issuer of either copy in its
/// store); ignoring exactly those connects on both (the second webpki run, given that
/// root as an anchor, finds the chain good at a time the leaf is valid).
#[test]
fn ignoring_an_expiry_through_a_cross_signed_intermediate_connects() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let trusted = root("Review Trusted Root")?;
    let other = root("Review Other Root")?;
    let under_other = sub_ca(&other, "Review Intermediate")?;
    let under_trusted = sub_ca_with(
        &trusted,
        "Review Intermediate",
        Some(&under_other.key_pem),
        |_| {},
    )?;
    let (leaf_der, key) = leaf(&under_other, "localhost", |p| {
        p.not_before = now - 10 * DAY;
        p.not_after = now - DAY;
    })?;
    let expected = vec![
        on(SslErrorKind::SelfSignedCertificateInChain, &other.der)?,
        on(SslErrorKind::CertificateExpired, &leaf_der)?,
    ];
    expect_connects_ignoring(
        &[&trusted.der],
        vec![
            leaf_der,
            under_other.der.clone(),
            other.der.clone(),
            under_trusted.der.clone(),
        ],
        &key,
        expected,
    )
}
