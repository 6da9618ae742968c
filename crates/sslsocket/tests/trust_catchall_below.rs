//! Review of e4cb22b's `catch_all_explained` (verify/verifier.rs).
//! `cargo test -p sslsocket --all-features --test review_last31`

mod support;

use rcgen::{CustomExtension, GeneralSubtree, NameConstraints, SanType};
use sslsocket::prelude::*;
use sslsocket::SslErrorKind;
use support::chains::*;

const PRIVATE_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 55555, 7, 1];

fn critical(oid: &[u64], content: Vec<u8>) -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(oid, content);
    ext.set_criticality(true);
    ext
}

fn rustls_only() -> bool {
    support::is_active("rustls")
}

fn connect_ignoring(
    root: &Ca,
    chain: Vec<Vec<u8>>,
    key: &rcgen::KeyPair,
    host: &str,
    ignored: Vec<sslsocket::SslError>,
) -> BoxResult<Outcome> {
    handshake(&[&root.der], chain, key, host, move |s| {
        s.ignore_ssl_errors_list(&ignored)
    })
}

/// DEFECT (rustls). The mirror image of trust_catchall.rs's defect: the ignored X sits
/// BELOW the CA webpki alone refuses (Y, critical inhibitAnyPolicy). X's private critical
/// extension makes `anchor_from_trusted_cert(X)` fail at index 1, so `catch_all_explained`
/// returns "explained by an UnspecifiedError on leaf..X" without ever judging Y.
#[test]
fn an_ignored_error_below_a_ca_webpki_refuses_does_not_explain_it() -> TestResult {
    if !rustls_only() {
        return Ok(());
    }
    let root = root("R31 Root")?;
    let y = sub_ca_with(&root, "R31 Policy CA", None, |p| {
        p.custom_extensions = vec![critical(&[2, 5, 29, 54], vec![0x02, 0x01, 0x00])];
    })?;
    let x = sub_ca_with(&y, "R31 Issuing CA", None, |p| {
        p.custom_extensions = vec![critical(PRIVATE_OID, vec![0x05, 0x00])];
    })?;
    let (leaf_der, key) = leaf(&x, "localhost", |_| {})?;
    let ignored = vec![on(SslErrorKind::UnspecifiedError, &x.der)?];
    let outcome = connect_ignoring(
        &root,
        vec![leaf_der, x.der.clone(), y.der.clone()],
        &key,
        "localhost",
        ignored.clone(),
    )?;
    assert!(
        outcome.errors.iter().any(|e| !ignored.contains(e)) && !outcome.encrypted,
        "Y's webpki-only refusal hidden by X's ignored error: encrypted {}, errors {:?}",
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// DEFECT (rustls). Same, with X's ignored error a name-constraint violation (X parses, so
/// index 1 is accepted): at index 2 `anchor_from_trusted_cert(Y)` fails and every
/// certificate up to Y, X included, "explains" it.
#[test]
fn an_ignored_constraint_violation_below_a_ca_webpki_refuses_does_not_explain_it() -> TestResult {
    if !rustls_only() {
        return Ok(());
    }
    let root = root_with("R31 Constrained Root", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("corp.example".into())],
            excluded_subtrees: vec![],
        });
    })?;
    let y = sub_ca_with(&root, "R31 Policy CA", None, |p| {
        p.custom_extensions = vec![critical(&[2, 5, 29, 54], vec![0x02, 0x01, 0x00])];
    })?;
    let outside: rcgen::string::Ia5String = "outside.example".try_into()?;
    let x = sub_ca_with(&y, "R31 Issuing CA", None, |p| {
        p.subject_alt_names = vec![SanType::DnsName(outside)];
    })?;
    let (leaf_der, key) = leaf(&x, "www.corp.example", |_| {})?;
    let ignored = vec![on(SslErrorKind::UnspecifiedError, &x.der)?];
    let outcome = connect_ignoring(
        &root,
        vec![leaf_der, x.der.clone(), y.der.clone()],
        &key,
        "www.corp.example",
        ignored.clone(),
    )?;
    assert!(
        outcome.errors.iter().any(|e| !ignored.contains(e)) && !outcome.encrypted,
        "Y's webpki-only refusal hidden by X's ignored error: encrypted {}, errors {:?}",
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    Ok(())
}
