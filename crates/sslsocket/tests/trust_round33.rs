//! Review round 33 of the certificate verifier and trust decisions. Every test here was a
//! defect found by the review, failing before its fix on the
//! backend(s) named in its comment. Run with
//! `cargo test -p sslsocket --all-features --test trust_round33` and
//! `SSLSOCKET_BACKEND=openssl cargo test -p sslsocket --all-features --test trust_round33`.
mod support;

use std::sync::{Arc, Mutex};

use rcgen::CustomExtension;
use sslsocket::prelude::*;
use sslsocket::verify::{collect_errors, Purpose, TrustStore, VerifyInput};
use sslsocket::{SslError, SslErrorKind, SslHooks, Verdict};
use support::chains::*;
use time::OffsetDateTime;

fn ext(oid: &[u64], content: Vec<u8>, critical: bool) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(oid, content);
    e.set_criticality(critical);
    e
}

/// A cRLDistributionPoints value with one URI.
fn crl_distribution_points() -> Vec<u8> {
    let uri = b"http://x/c";
    let mut gn = vec![0x86, uri.len() as u8];
    gn.extend_from_slice(uri);
    let mut full_name = vec![0xa0, gn.len() as u8];
    full_name.extend(gn);
    let mut dp_name = vec![0xa0, full_name.len() as u8];
    dp_name.extend(full_name);
    let mut dp = vec![0x30, dp_name.len() as u8];
    dp.extend(dp_name);
    let mut out = vec![0x30, dp.len() as u8];
    out.extend(dp);
    out
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

// ---------------------------------------------------------------------------------------
// Extensions the verifier cannot read.

// Was a defect: OpenSSL backend: a leaf with a repeated extension (two cRLDistributionPoints) is reported as UnableToGetLocalIssuerCertificate + UnableToVerifyFirstCertificate (OpenSSL's invalid-extension issuer miss), not as UnspecifiedError on the leaf as on rustls; ignoring those issuer errors (the usual private-CA ignore) then accepts the unreadable leaf.
#[test]
fn a_leaf_with_a_repeated_extension_is_unspecified_and_not_accepted_by_ignoring_issuer_errors(
) -> TestResult {
    let root = root("R33 Root")?;
    let crldp = crl_distribution_points();
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.custom_extensions = vec![
            ext(&[2, 5, 29, 31], crldp.clone(), false),
            ext(&[2, 5, 29, 31], crldp, false),
        ]
    })?;
    // Ignoring the issuer errors of a lone leaf (what an application trusting a private
    // CA it cannot install does) must not accept a leaf whose extensions are unreadable.
    let ignored = vec![
        on(SslErrorKind::UnableToGetLocalIssuerCertificate, &leaf_der)?,
        on(SslErrorKind::UnableToVerifyFirstCertificate, &leaf_der)?,
    ];
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        move |s| s.ignore_ssl_errors_list(&ignored),
    )?;
    assert!(
        !outcome.encrypted,
        "accepted a leaf with a repeated extension: {:?}",
        kinds_on(&outcome.errors)
    );
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(!outcome.encrypted);
    let unusable = on(SslErrorKind::UnspecifiedError, &leaf_der)?;
    if support::backends::active_backend() == "openssl" {
        // OpenSSL cannot place a certificate it finds invalid and reports its issuer as
        // unknown; those errors stay (dropping them could let an ignore of the
        // `UnspecifiedError` alone accept a leaf from an unknown CA), ours is added.
        assert!(
            outcome.errors.contains(&unusable),
            "errors: {:?}",
            kinds_on(&outcome.errors)
        );
    } else {
        assert_eq!(
            outcome.errors,
            vec![unusable],
            "errors: {:?}",
            kinds_on(&outcome.errors)
        );
    }
    Ok(())
}

// Was a defect: the collector (collect_errors, so SslCertificate::verify and the OpenSSL backend's own checks) lists nothing for a leaf whose critical policyConstraints extension does not parse: a critical extension that cannot be read is silently skipped (checks.rs has_extension_problem only parses RELIED_ON extensions; CRITICAL_OK ones are taken on their OID alone).
#[test]
fn collect_errors_reports_a_critical_extension_that_does_not_parse() -> TestResult {
    let root = root("R33 Root")?;
    // policyConstraints SEQUENCE whose [0] is cut short: not DER.
    let (leaf_der, _) = leaf(&root, "localhost", |p| {
        p.custom_extensions = vec![ext(&[2, 5, 29, 36], vec![0x30, 0x03, 0x80, 0x01], true)]
    })?;
    let store = TrustStore::new(vec![cert(&root.der)?]);
    let chain = vec![cert(&leaf_der)?];
    let errors = collect_errors(&VerifyInput {
        chain: &chain,
        store: &store,
        host: Some("localhost"),
        purpose: Purpose::ServerAuth,
        now_unix: now(),
        max_depth: 0,
    });
    assert_eq!(
        errors,
        vec![on(SslErrorKind::UnspecifiedError, &leaf_der)?],
        "errors: {:?}",
        kinds_on(&errors)
    );
    Ok(())
}

// Was a defect: OpenSSL backend: a leaf whose critical policyConstraints extension does not parse is accepted with no error at all (rustls refuses it with UnspecifiedError on the leaf); the backends disagree and OpenSSL fails open.
#[test]
fn a_leaf_with_a_critical_extension_that_does_not_parse_is_refused_on_every_backend() -> TestResult
{
    let root = root("R33 Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.custom_extensions = vec![ext(&[2, 5, 29, 36], vec![0x30, 0x03, 0x80, 0x01], true)]
    })?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(
        !outcome.encrypted,
        "accepted: {:?}",
        kinds_on(&outcome.errors)
    );
    assert_eq!(
        outcome.errors,
        vec![on(SslErrorKind::UnspecifiedError, &leaf_der)?],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Was a defect: rustls backend: a leaf with an RFC 3779 IP address block (sbgp-ipAddrBlock, non-critical) its issuer does not hold is accepted with no error; OpenSSL (Qt) refuses it (X509_V_ERR_UNNESTED_RESOURCE, Qt's UnspecifiedError on the leaf): the backends disagree and rustls is the lenient one.
#[test]
fn an_unnested_rfc3779_address_block_is_refused_on_every_backend() -> TestResult {
    let root = root("R33 Root")?;
    // IPAddrBlocks: { IPv4: { 10.0.0.0/8, 11.0.0.0/8 } }
    let blocks = vec![
        0x30, 0x10, 0x30, 0x0e, 0x04, 0x02, 0x00, 0x01, 0x30, 0x08, 0x03, 0x02, 0x00, 0x0a, 0x03,
        0x02, 0x00, 0x0b,
    ];
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.custom_extensions = vec![ext(&[1, 3, 6, 1, 5, 5, 7, 1, 7], blocks, false)]
    })?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(
        !outcome.encrypted,
        "accepted: {:?}",
        kinds_on(&outcome.errors)
    );
    let on_leaf = on(SslErrorKind::UnspecifiedError, &leaf_der)?;
    if support::backends::active_backend() == "openssl" {
        // OpenSSL's own RFC 3779 check reports the unnested resource on the leaf and on
        // the anchor that lacks it; every one of its errors is reported.
        assert!(
            outcome.errors.contains(&on_leaf),
            "errors: {:?}",
            kinds_on(&outcome.errors)
        );
    } else {
        assert_eq!(
            outcome.errors,
            vec![on_leaf],
            "errors: {:?}",
            kinds_on(&outcome.errors)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Interrupting the handshake on an error.

/// Continues past exactly one kind of error; aborts on anything else. Records every call.
struct ContinueOnlyOn {
    kind: SslErrorKind,
    seen: Mutex<Vec<SslError>>,
}

impl SslHooks for ContinueOnlyOn {
    fn handshake_interrupted(&self, error: &SslError) -> Verdict {
        self.seen.lock().map(|mut s| s.push(error.clone())).ok();
        if error.error() == self.kind {
            Verdict::Ignore
        } else {
            Verdict::Abort
        }
    }
}

// Was a defect: both backends: with handshake_must_interrupt_on_error, the hook is asked about the first error only, and its Ignore accepts every other error of the chain (here an expired leaf), which it never saw; Qt interrupts on each verification error (q_X509Callback runs per error) and continuing one does not ignore the others. verify/policy.rs judge(): interrupt_on_error asks about errors.first() only.
#[test]
fn continuing_an_interrupted_handshake_past_one_error_does_not_accept_the_others() -> TestResult {
    let trusted = root("R33 Trusted")?;
    // The peer's own root, sent along and untrusted; the leaf under it has expired.
    let other = root("R33 Untrusted")?;
    let (leaf_der, key) = leaf(&other, "localhost", |p| {
        p.not_before = OffsetDateTime::now_utc() - 30 * DAY;
        p.not_after = OffsetDateTime::now_utc() - DAY;
    })?;
    let chain = vec![leaf_der.clone(), other.der.clone()];
    // Find the first error the hook will be asked about, and continue only on that kind.
    let probe = handshake(&[&trusted.der], chain.clone(), &key, "localhost", |_| {})?;
    let first = probe.errors.first().cloned().ok_or("no error")?;
    assert!(
        probe
            .errors
            .contains(&on(SslErrorKind::CertificateExpired, &leaf_der)?),
        "{:?}",
        kinds_on(&probe.errors)
    );
    assert_ne!(first.error(), SslErrorKind::CertificateExpired);
    let hooks = Arc::new(ContinueOnlyOn {
        kind: first.error(),
        seen: Mutex::new(Vec::new()),
    });
    let for_socket = Arc::clone(&hooks);
    let outcome = handshake(&[&trusted.der], chain, &key, "localhost", move |s| {
        let mut configuration = s.ssl_configuration().clone();
        configuration.set_handshake_must_interrupt_on_error(true);
        s.set_ssl_configuration(configuration).ok();
        s.set_hooks(for_socket);
    })?;
    let seen = hooks.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        !outcome.encrypted,
        "the expired leaf was accepted by continuing past {:?}; hook saw {:?}",
        kinds_on(std::slice::from_ref(&first)),
        kinds_on(&seen)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The hooks are asked once per handshake.

struct CountingHooks {
    calls: Mutex<Vec<Vec<SslError>>>,
}

impl SslHooks for CountingHooks {
    fn ssl_errors(&self, errors: &[SslError]) -> Verdict {
        self.calls.lock().map(|mut c| c.push(errors.to_vec())).ok();
        Verdict::Ignore
    }
}

// Was a defect: OpenSSL backend: for a leaf outside its CA's name constraints (plus any other error), the ssl_errors hook is called twice in one handshake: OpenSSL's check_name_constraints reports X509_V_ERR_PERMITTED_VIOLATION after the depth-0 decision, and ConnectionState::on_verify (backend/openssl/verifier.rs, "An error after the decision ...: decide again") re-judges even though the error was already listed by name_errors, so the application is asked again and its second answer overrides the first (Qt emits sslErrors once; rustls asks once).
#[test]
fn the_ssl_errors_hook_is_asked_once_for_a_name_constraint_violation() -> TestResult {
    use rcgen::{GeneralSubtree, NameConstraints};
    let root = root_with("R33 NC Root", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![],
        })
    })?;
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.not_before = OffsetDateTime::now_utc() - 30 * DAY;
        p.not_after = OffsetDateTime::now_utc() - DAY;
    })?;
    let hooks = Arc::new(CountingHooks {
        calls: Mutex::new(Vec::new()),
    });
    let for_socket = Arc::clone(&hooks);
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        move |s| {
            s.set_hooks(for_socket);
        },
    )?;
    let calls = hooks.calls.lock().map(|c| c.clone()).unwrap_or_default();
    let expected = vec![
        on(SslErrorKind::CertificateExpired, &leaf_der)?,
        on(SslErrorKind::UnspecifiedError, &leaf_der)?,
    ];
    assert_eq!(outcome.errors, expected, "{:?}", kinds_on(&outcome.errors));
    assert_eq!(
        calls,
        vec![expected],
        "the hook was asked {} times",
        calls.len()
    );
    assert!(outcome.encrypted);
    Ok(())
}
