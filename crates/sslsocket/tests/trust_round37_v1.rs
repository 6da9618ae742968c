//! Round 37 review (V1): the verifier attacked with validity times that are not DER
//! (UTCTime without seconds, an offset instead of `Z`, a GeneralizedTime with a fraction),
//! correctly signed, served by a raw rustls server (`AttackServer`) on 127.0.0.1. OpenSSL
//! (`X509_cmp_time`) reports such a field as `X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD` /
//! `..._NOT_AFTER_FIELD` on its certificate (Qt's `InvalidNotBeforeField`,
//! `InvalidNotAfterField`); webpki refuses it with `BadDerTime`, naming no certificate.
//! Run on both backends: `cargo test -p sslsocket --all-features --test trust_round37_v1`
//! and the same with `SSLSOCKET_BACKEND=openssl`.
mod support;

use rcgen::KeyPair;
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

/// (header length, content length) of the TLV at the start of `bytes`.
fn header(bytes: &[u8]) -> BoxResult<(usize, usize)> {
    let first = usize::from(*bytes.get(1).ok_or("short TLV")?);
    if first < 0x80 {
        return Ok((2, first));
    }
    let count = first & 0x7f;
    let mut len = 0usize;
    for i in 0..count {
        len = (len << 8) | usize::from(*bytes.get(2 + i).ok_or("short TLV")?);
    }
    Ok((2 + count, len))
}

/// `cert` with its Validity replaced by `validity`, the TBS signed again by `issuer_key`:
/// a certificate whose signature is good and whose times are written as given.
fn with_validity(cert: &[u8], issuer_key: &KeyPair, validity: &[u8]) -> BoxResult<Vec<u8>> {
    let (h, len) = header(cert)?;
    let body = cert.get(h..h + len).ok_or("short certificate")?;
    let (th, tlen) = header(body)?;
    let mut rest = body.get(th..th + tlen).ok_or("short TBS")?;
    let after = body.get(th + tlen..).ok_or("short certificate")?;
    let (ah, alen) = header(after)?;
    let algorithm = after.get(..ah + alen).ok_or("short algorithm")?;
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let (fh, flen) = header(rest)?;
        fields.push(rest.get(..fh + flen).ok_or("short field")?.to_vec());
        rest = rest.get(fh + flen..).ok_or("short field")?;
    }
    // [0] version, serialNumber, signature, issuer, validity
    *fields.get_mut(4).ok_or("no validity")? = validity.to_vec();
    let tbs = tlv(0x30, &fields.concat());
    let signature = rcgen::SigningKey::sign(issuer_key, &tbs)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut out = tbs;
    out.extend_from_slice(algorithm);
    out.extend(tlv(0x03, &bits));
    Ok(tlv(0x30, &out))
}

fn validity(not_before: (u8, &[u8]), not_after: (u8, &[u8])) -> Vec<u8> {
    let mut both = tlv(not_before.0, not_before.1);
    both.extend(tlv(not_after.0, not_after.1));
    tlv(0x30, &both)
}

const UTC: u8 = 0x17;
const GENERALIZED: u8 = 0x18;

fn key_of(ca: &Ca) -> BoxResult<KeyPair> {
    Ok(KeyPair::from_pem(&ca.key_pem)?)
}

// Was a defect (round 37): on rustls an intermediate whose validity times are not DER (UTCTime without seconds) is listed only as `UnspecifiedError` on the *leaf* (webpki's `BadDerTime` names no certificate, the collector read the times with x509-parser and saw nothing), so ignoring an `UnspecifiedError` on one's own leaf accepts an intermediate never shown as faulty; OpenSSL lists `InvalidNotBeforeField` and `InvalidNotAfterField` on the intermediate.
#[test]
fn an_intermediate_with_non_der_times_is_listed_on_it_not_on_the_leaf() -> TestResult {
    let root = root("R37v1 Root")?;
    let inter = sub_ca(&root, "R37v1 Intermediate")?;
    let bad = with_validity(
        &inter.der,
        &key_of(&root)?,
        &validity((UTC, b"2001010000Z"), (UTC, b"4001010000Z")),
    )?;
    let (leaf_der, key) = leaf(&inter, "localhost", |_| {})?;
    let chain = vec![leaf_der.clone(), bad.clone()];
    let backend = support::active_backend();

    // The attack: the leaf's own `UnspecifiedError` ignored must accept nothing more.
    let ignored = vec![on(UnspecifiedError, &leaf_der)?];
    let outcome = handshake(&[&root.der], chain.clone(), &key, "localhost", move |s| {
        s.ignore_ssl_errors_list(&ignored)
    })?;
    assert!(
        !outcome.encrypted,
        "{backend}: accepted by ignoring an error on the leaf: {:?}",
        kinds_on(&outcome.errors)
    );
    // OpenSSL's list, on the certificate whose times they are.
    let expected = vec![
        on(InvalidNotBeforeField, &bad)?,
        on(InvalidNotAfterField, &bad)?,
    ];
    assert_eq!(
        outcome.errors,
        expected,
        "{backend}: {:?}",
        kinds_on(&outcome.errors)
    );
    // Ignoring exactly those connects on both backends (OpenSSL goes on past the field).
    expect_connects_ignoring(&[&root.der], chain, &key, expected)
}

// Was a defect (round 37): a leaf whose notBefore is a GeneralizedTime with a fraction (its notAfter DER) is listed as `UnspecifiedError` on rustls and as `InvalidNotBeforeField` on the OpenSSL backend: an ignore list written on one backend does not carry to the other.
#[test]
fn a_leaf_with_a_non_der_time_lists_the_field_on_both_backends() -> TestResult {
    let root = root("R37v1 Root")?;
    let (good, key) = leaf(&root, "localhost", |_| {})?;
    let bad = with_validity(
        &good,
        &key_of(&root)?,
        &validity(
            (GENERALIZED, b"20200101000000.5Z"),
            (GENERALIZED, b"20400101000000Z"),
        ),
    )?;
    let outcome = handshake(&[&root.der], vec![bad.clone()], &key, "localhost", |_| {})?;
    assert!(!outcome.encrypted, "{:?}", kinds_on(&outcome.errors));
    assert_eq!(
        outcome.errors,
        vec![on(InvalidNotBeforeField, &bad)?],
        "{}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    // An offset instead of `Z` in both fields: both listed, on the leaf.
    let offset = with_validity(
        &good,
        &key_of(&root)?,
        &validity((UTC, b"200101000000+0100"), (UTC, b"400101000000+0100")),
    )?;
    expect_refused_listing(
        &[&root.der],
        vec![offset.clone()],
        &key,
        vec![on(UnspecifiedError, &offset)?],
        vec![
            on(InvalidNotBeforeField, &offset)?,
            on(InvalidNotAfterField, &offset)?,
        ],
        |_| {},
    )
}

// PINS: a GeneralizedTime before 2050 (RFC 5280 asks for a UTCTime there, but it is DER
// and OpenSSL, webpki and x509-parser all read it) is accepted with no error on both
// backends.
#[test]
fn a_generalized_time_before_2050_is_read_on_both_backends() -> TestResult {
    let root = root("R37v1 Root")?;
    let (good, key) = leaf(&root, "localhost", |_| {})?;
    let generalized = with_validity(
        &good,
        &key_of(&root)?,
        &validity(
            (GENERALIZED, b"20200101000000Z"),
            (GENERALIZED, b"20400101000000Z"),
        ),
    )?;
    let outcome = handshake(&[&root.der], vec![generalized], &key, "localhost", |_| {})?;
    assert!(
        outcome.encrypted && outcome.errors.is_empty(),
        "{}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}
