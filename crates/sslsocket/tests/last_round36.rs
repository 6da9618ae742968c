//! Round 36 last review (L1): this round's new code attacked (strict DER of extensions,
//! the ClientHello size guard, the tokio flush/handshake verdicts), on both backends
//! (run again with `SSLSOCKET_BACKEND=openssl`). Chains are made here with rcgen and
//! served by a raw rustls server (`AttackServer`) on 127.0.0.1.
//! `cargo test -p sslsocket --all-features --test last_round36`.
mod support;

use rcgen::CustomExtension;
use sslsocket::{SslErrorKind, SslSocketExt};
use support::chains::*;

use SslErrorKind::*;

/// One DER TLV with a definite length in its shortest form.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// A leaf for `localhost` under `root` whose subjectAltName value is `san`.
fn leaf_with_san(root: &Ca, san: Vec<u8>) -> BoxResult<(Vec<u8>, rcgen::KeyPair)> {
    leaf(root, "localhost", |params| {
        params.subject_alt_names = Vec::new();
        params.custom_extensions = vec![CustomExtension::from_oid_content(&[2, 5, 29, 17], san)];
    })
}

// Held (weakly): a leaf whose only dNSName is written in the constructed form (`a2 0b 16 09
// "localhost"`, a BER way to cut a string in pieces, which DER forbids for every string
// type, IMPLICIT-tagged ones included) passes `strict_der` (verify/strict_der.rs `valid`
// only refuses constructed UNIVERSAL tags, and follows any constructed context tag as
// elements). OpenSSL's d2i collects the pieces of a constructed string and reads
// "localhost"; webpki does not know tag a2. Both backends refuse it, with
// `HostNameMismatch` only (the name is not read): no DER error is listed, see the
// excluded-subtree test below for where it matters.
#[test]
fn a_constructed_dns_name_in_the_subject_alt_name_is_refused() -> TestResult {
    let root = root("L36 Root")?;
    let san = tlv(0x30, &tlv(0xa2, &tlv(0x16, b"localhost")));
    let (leaf_der, key) = leaf_with_san(&root, san)?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(
        !outcome.encrypted,
        "accepted on {}",
        support::active_backend()
    );
    assert!(
        outcome.errors.contains(&on(HostNameMismatch, &leaf_der)?),
        "{}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}

/// An intermediate under `root` whose critical nameConstraints value is `value`.
fn constrained_intermediate(root: &Ca, value: Vec<u8>) -> BoxResult<Ca> {
    sub_ca_with(root, "L36 Constrained", None, |params| {
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], value);
        ext.set_criticality(true);
        params.custom_extensions = vec![ext];
    })
}

/// nameConstraints `SEQUENCE { excludedSubtrees [1] { GeneralSubtree { base } } }`.
fn excluding(base: Vec<u8>) -> Vec<u8> {
    tlv(0x30, &tlv(0xa1, &tlv(0x30, &base)))
}

// Held (control): an intermediate whose nameConstraints exclude dNSName "localhost"
// (primitive, DER) makes its leaf for localhost refused on both backends.
#[test]
fn an_excluded_dns_subtree_refuses_the_leaf() -> TestResult {
    let root = root("L36 Root")?;
    let inter = constrained_intermediate(&root, excluding(tlv(0x82, b"localhost")))?;
    let (leaf_der, key) = leaf(&inter, "localhost", |_| {})?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der, inter.der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(
        !outcome.encrypted && !outcome.errors.is_empty(),
        "{}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Was a defect (round 36): the same exclusion with its dNSName in the constructed (BER) form
// `a2 0b 16 09 "localhost"` (DER forbids constructed strings, IMPLICIT-tagged ones too):
// strict_der.rs `valid` (verify/strict_der.rs:95) follows any constructed context tag as
// elements, so the intermediate is "DER" and has no error; the refusal lands as
// `UnspecifiedError` on the LEAF (both backends). Expected: `UnspecifiedError` on the
// malformed intermediate (as for junk after basicConstraints).
#[test]
fn a_constructed_excluded_dns_subtree_never_lets_the_leaf_through() -> TestResult {
    let root = root("L36 Root")?;
    let inter = constrained_intermediate(&root, excluding(tlv(0xa2, &tlv(0x16, b"localhost"))))?;
    let (leaf_der, key) = leaf(&inter, "localhost", |_| {})?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der, inter.der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(
        !outcome.encrypted,
        "accepted on {}",
        support::active_backend()
    );
    assert!(
        outcome.errors.contains(&on(UnspecifiedError, &inter.der)?),
        "{}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Was a defect (round 36): consequence of the above: ignoring the one error listed (`UnspecifiedError` on
// the leaf, as `--ignore UnspecifiedError@leaf.pem` does) connects to localhost although
// the intermediate excludes localhost. Expected: still refused (an error on the
// intermediate that the application never chose to ignore).
#[test]
fn ignoring_the_leaf_error_never_passes_a_constructed_exclusion() -> TestResult {
    let root = root("L36 Root")?;
    let inter = constrained_intermediate(&root, excluding(tlv(0xa2, &tlv(0x16, b"localhost"))))?;
    let (leaf_der, key) = leaf(&inter, "localhost", |_| {})?;
    let ignored = vec![on(UnspecifiedError, &leaf_der)?];
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der, inter.der.clone()],
        &key,
        "localhost",
        move |s| s.ignore_ssl_errors_list(&ignored),
    )?;
    assert!(
        !outcome.encrypted,
        "connected on {} past an excluded name: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}
