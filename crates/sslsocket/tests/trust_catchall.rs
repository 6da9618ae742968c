//! Review of the rustls verifier's fail-closed rule (verify/verifier.rs `explaining_kinds`,
//! `refusal_explained`): a webpki refusal must be "explained" by a listed error of its kind.
//! For every webpki reason in the catch-all arm (unsupported critical extensions, bad
//! encodings, name constraints, ...) the explanation is *any* listed `UnspecifiedError`, on
//! *any* certificate. So an application that ignores one `UnspecifiedError` bound to one
//! certificate X (an intermediate with a proprietary critical extension, say) also accepts
//! whatever webpki alone refuses about another certificate Y: the rule's promise "an error
//! the application ignores can never hide another one only webpki saw" does not hold.
//!
//! Chains are made with rcgen at test time and served by a raw rustls server on 127.0.0.1
//! (`support::attack::AttackServer`) to our blocking client:
//! `cargo test -p sslsocket --all-features --test review_catchall` and
//! `SSLSOCKET_BACKEND=openssl cargo test -p sslsocket --all-features --test review_catchall`.

mod support;

use rcgen::{CustomExtension, GeneralSubtree, NameConstraints, SanType};
use sslsocket::prelude::*;
use sslsocket::SslErrorKind;
use support::chains::*;

/// An extension OID nobody handles, for an "unhandled critical extension" (OpenSSL's
/// `X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION`, Qt's `UnspecifiedError`).
const PRIVATE_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 55555, 7, 1];

fn critical(oid: &[u64], content: Vec<u8>) -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(oid, content);
    ext.set_criticality(true);
    ext
}

/// The DER of certificatePolicies { PolicyInformation { anyPolicy (2.5.29.32.0) } }.
fn any_policy_der() -> Vec<u8> {
    // OID 2.5.29.32.0 = 55 1d 20 00
    vec![0x30, 0x08, 0x30, 0x06, 0x06, 0x04, 0x55, 0x1d, 0x20, 0x00]
}

/// proxyCertInfo { proxyPolicy { id-ppl-inheritAll } } (RFC 3820). OpenSSL marks any
/// certificate carrying it as a proxy certificate (refused unless proxy certificates are
/// allowed, and invalid next to a subjectAltName); our collector does not read it.
fn proxy_cert_info_der() -> Vec<u8> {
    // id-ppl-inheritAll 1.3.6.1.5.5.7.21.1 = 2b 06 01 05 05 07 15 01
    vec![
        0x30, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x15, 0x01,
    ]
}
const PROXY_CERT_INFO_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 14];

fn rustls_only() -> bool {
    support::is_active("rustls")
}

/// Connects through `chain` (trusted `root`) ignoring exactly `ignored`.
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

// ---------------------------------------------------------------------------------------
// Pins.
// ---------------------------------------------------------------------------------------

/// PIN (rustls). A leaf webpki cannot read (critical certificatePolicies) is never
/// explained by another certificate's `UnspecifiedError`: verifier.rs answers `false` when
/// `EndEntityCert::try_from` fails, so the leaf gets its own `UnspecifiedError` even when
/// the intermediate's is listed and ignored.
#[test]
fn pin_a_leaf_webpki_cannot_read_is_unspecified_on_the_leaf_whatever_else_is_listed() -> TestResult
{
    if !rustls_only() {
        return Ok(());
    }
    let root = root("Catchall Root")?;
    let intermediate = sub_ca_with(&root, "Catchall Intermediate", None, |p| {
        p.custom_extensions = vec![critical(PRIVATE_OID, vec![0x05, 0x00])];
    })?;
    let (leaf_der, key) = leaf(&intermediate, "localhost", |p| {
        p.custom_extensions = vec![critical(&[2, 5, 29, 32], any_policy_der())];
    })?;
    expect_refused_listing(
        &[&root.der],
        vec![leaf_der.clone(), intermediate.der.clone()],
        &key,
        vec![on(SslErrorKind::UnspecifiedError, &intermediate.der)?],
        vec![
            on(SslErrorKind::UnspecifiedError, &intermediate.der)?,
            on(SslErrorKind::UnspecifiedError, &leaf_der)?,
        ],
        |_| {},
    )
}

/// PIN (both backends). An intermediate with an unhandled critical extension, clean leaf:
/// `UnspecifiedError` on the intermediate only, and ignoring exactly that connects. The
/// ignore the defects below start from is a legitimate one.
#[test]
fn pin_ignoring_an_intermediates_unhandled_critical_extension_connects() -> TestResult {
    let root = root("Catchall Root")?;
    let intermediate = sub_ca_with(&root, "Catchall Intermediate", None, |p| {
        p.custom_extensions = vec![critical(PRIVATE_OID, vec![0x05, 0x00])];
    })?;
    let (leaf_der, key) = leaf(&intermediate, "localhost", |_| {})?;
    expect_connects_ignoring(
        &[&root.der],
        vec![leaf_der, intermediate.der.clone()],
        &key,
        vec![on(SslErrorKind::UnspecifiedError, &intermediate.der)?],
    )
}

/// PIN (rustls). The second certificate's problem alone (an issuing CA with a critical
/// inhibitAnyPolicy, which webpki refuses and our collector does not list) is refused with
/// `UnspecifiedError` on the leaf: it is what the defect below loses.
#[test]
fn pin_an_issuing_ca_webpki_refuses_alone_is_unspecified_on_the_leaf() -> TestResult {
    if !rustls_only() {
        return Ok(());
    }
    let root = root("Catchall Root")?;
    let i1 = sub_ca(&root, "Catchall Policy CA")?;
    let i2 = sub_ca_with(&i1, "Catchall Issuing CA", None, |p| {
        p.custom_extensions = vec![critical(&[2, 5, 29, 54], vec![0x02, 0x01, 0x00])];
    })?;
    let (leaf_der, key) = leaf(&i2, "localhost", |_| {})?;
    let outcome = connect_ignoring(
        &root,
        vec![leaf_der.clone(), i2.der.clone(), i1.der.clone()],
        &key,
        "localhost",
        vec![],
    )?;
    assert_eq!(
        outcome.errors,
        vec![on(SslErrorKind::UnspecifiedError, &leaf_der)?],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(!outcome.encrypted);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// DEFECTS: an `UnspecifiedError` ignored on X explains webpki's refusal concerning Y.
// ---------------------------------------------------------------------------------------

/// DEFECT (rustls). X's error is a name-constraint violation: the trusted root permits
/// only DNS names under corp.example and the first intermediate (X) carries a dNSName
/// outside, so the collector lists `UnspecifiedError` on X, which the application ignores
/// (exactly, on X). Y is the issuing CA below it, with a critical inhibitAnyPolicy: webpki
/// refuses Y (UnsupportedCriticalExtension while building the path; the leaf itself reads
/// fine), our collector lists nothing for it, and alone it is `UnspecifiedError` on the
/// leaf (pin above). Together, webpki's refusal falls in the catch-all arm of
/// `explaining_kinds` and X's `UnspecifiedError` "explains" it: the list is only X's
/// error and ignoring it connects. Correct: the leaf's `UnspecifiedError` is listed too
/// and the connection is refused. (OpenSSL, which handles inhibitAnyPolicy and does not
/// check policies by default, accepts this chain; the test pins the rustls rule's own
/// promise, so it runs on rustls only.)
#[test]
fn an_ignored_constraint_violation_of_one_ca_does_not_explain_webpkis_refusal_of_another(
) -> TestResult {
    if !rustls_only() {
        return Ok(());
    }
    let root = root_with("Catchall Constrained Root", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("corp.example".into())],
            excluded_subtrees: vec![],
        });
    })?;
    let outside: rcgen::string::Ia5String = "outside.example".try_into()?;
    let x = sub_ca_with(&root, "Catchall Policy CA", None, |p| {
        p.subject_alt_names = vec![SanType::DnsName(outside)];
    })?;
    let y = sub_ca_with(&x, "Catchall Issuing CA", None, |p| {
        p.custom_extensions = vec![critical(&[2, 5, 29, 54], vec![0x02, 0x01, 0x00])];
    })?;
    let (leaf_der, key) = leaf(&y, "www.corp.example", |_| {})?;
    let outcome = connect_ignoring(
        &root,
        vec![leaf_der.clone(), y.der.clone(), x.der.clone()],
        &key,
        "www.corp.example",
        vec![on(SslErrorKind::UnspecifiedError, &x.der)?],
    )?;
    assert_eq!(
        outcome.errors,
        vec![
            on(SslErrorKind::UnspecifiedError, &x.der)?,
            on(SslErrorKind::UnspecifiedError, &leaf_der)?,
        ],
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(
        !outcome.encrypted,
        "connected by ignoring only X's error; errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// DEFECT (rustls; passes on OpenSSL). Here OpenSSL refuses too. X = the first
/// intermediate, with an unhandled critical extension (`UnspecifiedError` on X, ignored
/// exactly). Y = the issuing CA below it, a CA certificate with a critical proxyCertInfo:
/// OpenSSL marks it invalid (a proxy certificate that is a CA; `openssl verify` says
/// "ossl_x509v3_cache_extensions: invalid certificate" and cannot use it as an issuer), so
/// the OpenSSL backend lists `UnableToGetLocalIssuerCertificate` and
/// `UnableToVerifyFirstCertificate` on the leaf and refuses. Our collector does not read
/// proxyCertInfo (its critical list is OpenSSL's "supported" list), webpki refuses Y
/// (unsupported critical extension, catch-all arm), and X's `UnspecifiedError` explains
/// it: the rustls backend lists only X's error and connects.
#[test]
fn an_ignored_error_on_one_ca_does_not_accept_a_proxy_certificate_ca_below_it() -> TestResult {
    let root = root("Catchall Root")?;
    let x = sub_ca_with(&root, "Catchall I1", None, |p| {
        p.custom_extensions = vec![critical(PRIVATE_OID, vec![0x05, 0x00])];
    })?;
    let y = sub_ca_with(&x, "Catchall I2", None, |p| {
        p.custom_extensions = vec![critical(PROXY_CERT_INFO_OID, proxy_cert_info_der())];
    })?;
    let (leaf_der, key) = leaf(&y, "localhost", |_| {})?;
    let ignored = vec![on(SslErrorKind::UnspecifiedError, &x.der)?];
    let outcome = connect_ignoring(
        &root,
        vec![leaf_der, y.der.clone(), x.der.clone()],
        &key,
        "localhost",
        ignored.clone(),
    )?;
    assert!(
        outcome.errors.iter().any(|e| !ignored.contains(e)),
        "only the ignored error is listed: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(
        !outcome.encrypted,
        "connected by ignoring only X's error; errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// DEFECT (rustls; passes on OpenSSL), not of the catch-all rule but of the collector it
/// relies on. A leaf with a (non-critical) proxyCertInfo, issued by a trusted root:
/// OpenSSL refuses it (`openssl verify`: "invalid certificate", error 20; the OpenSSL
/// backend lists `UnableToGetLocalIssuerCertificate`, `UnspecifiedError`,
/// `UnableToVerifyFirstCertificate` on the leaf). webpki ignores the non-critical
/// extension and the collector does not read it: the rustls backend lists nothing and
/// connects, with no error ignored.
#[test]
fn a_proxy_certificate_leaf_is_refused() -> TestResult {
    let root = root("Catchall Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.custom_extensions = vec![CustomExtension::from_oid_content(
            PROXY_CERT_INFO_OID,
            proxy_cert_info_der(),
        )];
    })?;
    let outcome = connect_ignoring(&root, vec![leaf_der], &key, "localhost", vec![])?;
    assert!(
        !outcome.errors.is_empty() && !outcome.encrypted,
        "a proxy certificate accepted as a server certificate: encrypted {}, errors {:?}",
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    Ok(())
}
