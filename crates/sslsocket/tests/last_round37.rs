//! Round 37 review (L1): this round's own verifier code attacked (validity times not in
//! DER form and their alerts, `is_self_signed` with the provider's refusals). Peers on
//! 127.0.0.1 (`openssl s_server`), certificates made here with rcgen or the `openssl`
//! command. Run on both backends:
//! `cargo test -p sslsocket --all-features --test last_round37` and the same with
//! `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::KeyPair;
use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{AlertType, SslCertificate, SslConfiguration, SslErrorKind, SslEvent};
use support::chains::*;
use support::{openssl_run, OpensslServer};

use SslErrorKind::*;

/// One DER TLV with a definite length in its shortest form.
/// A named chain to serve: its name, the certificates (leaf first), the extra ones, the key.
type Case<'a> = (&'a str, Vec<Vec<u8>>, Vec<Vec<u8>>, KeyPair);

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

/// `cert` with its Validity replaced by `validity`, the TBS signed again by `issuer_key`.
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

const GENERALIZED: u8 = 0x18;

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn write(dir: &Path, name: &str, text: &str) -> BoxResult<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Our blocking client trusting `root` against s_server serving `leaf` at `tls`: the
/// errors it listed, the alerts it reported sending, and s_server's output once it
/// reported an alert.
fn refused_with(
    root: &[u8],
    leaf: &[u8],
    key: &KeyPair,
    tls: &str,
) -> BoxResult<(Vec<SslErrorKind>, Vec<AlertType>, String)> {
    let dir = tempfile::Builder::new()
        .prefix("sslsocket-l37-")
        .tempdir()?;
    let cert = write(dir.path(), "leaf.pem", &pem_of(leaf))?;
    let key = write(dir.path(), "leaf.key.pem", &key.serialize_pem())?;
    let args: Vec<std::ffi::OsString> = vec![
        "-cert".into(),
        cert.into(),
        "-key".into(),
        key.into(),
        tls.into(),
    ];
    let server = OpensslServer::start(&args)?;
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![SslCertificate::from_der(root)?]);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port(), "localhost");
    let encrypted = socket.wait_for_encrypted(WAIT).is_ok() && socket.is_encrypted();
    if encrypted {
        return Err("accepted".into());
    }
    let errors = socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| e.error())
        .collect();
    let sent = socket
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            SslEvent::AlertSent(a) => Some(a.kind),
            _ => None,
        })
        .collect();
    socket.abort();
    let _ = server.wait_for_output("alert number", Duration::from_secs(3));
    Ok((errors, sent, server.output()))
}

// Was a defect (round 37): a leaf whose notBefore is not in DER form, listed this round as `InvalidNotBeforeField` on both backends, is refused with access_denied (49) on rustls and bad_certificate (42) on the OpenSSL backend (OpenSSL's alert for X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD, what Qt sends): the rustls backend's `refusal()` has no arm for the kinds this round made it list, though the same round gave not-yet-valid its bad_certificate there.
#[test]
fn a_leaf_with_a_non_der_time_is_refused_with_bad_certificate_on_both_backends() -> TestResult {
    let root = root("L37 Root")?;
    let (good, key) = leaf(&root, "localhost", |_| {})?;
    let bad = with_validity(
        &good,
        &KeyPair::from_pem(&root.key_pem)?,
        &tlv(
            0x30,
            &[
                tlv(GENERALIZED, b"20200101000000.5Z"),
                tlv(GENERALIZED, b"20400101000000Z"),
            ]
            .concat(),
        ),
    )?;
    let mut wrong = Vec::new();
    for tls in ["-tls1_2", "-tls1_3"] {
        let (errors, alerts, output) = refused_with(&root.der, &bad, &key, tls)?;
        assert_eq!(errors, vec![InvalidNotBeforeField], "{tls}");
        if alerts != [AlertType::BadCertificate] || !output.contains("alert number 42") {
            wrong.push(format!("{tls}: sent {alerts:?}; s_server said {output}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}: {wrong:#?}",
        support::active_backend()
    );
    Ok(())
}

/// `openssl <args>`, which must succeed within 60 s.
fn openssl(args: &[&str]) -> BoxResult<String> {
    let out = openssl_run(args, b"", Duration::from_secs(60))?;
    if !out.success() {
        return Err(format!("openssl {args:?}: {}", out.combined()).into());
    }
    Ok(out.stdout)
}

/// A self-signed certificate made by `openssl req -x509` with an RSA key of `bits` and
/// the digest `digest`, checked self-signed by OpenSSL itself (its signature verified with
/// its own key, at security level 0 so that neither size nor digest is judged).
fn openssl_self_signed(dir: &Path, bits: u32, digest: &str) -> BoxResult<SslCertificate> {
    let key = dir.join(format!("rsa{bits}{digest}.key"));
    let cert = dir.join(format!("rsa{bits}{digest}.pem"));
    let (key, cert) = (
        key.to_str().ok_or("path")?.to_string(),
        cert.to_str().ok_or("path")?.to_string(),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        &format!("rsa:{bits}"),
        &format!("-{digest}"),
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &cert,
        "-subj",
        "/CN=legacy.example/O=Probe",
        "-days",
        "30",
    ])?;
    let verified = openssl(&[
        "verify",
        "-auth_level",
        "0",
        "-check_ss_sig",
        "-CAfile",
        &cert,
        &cert,
    ])?;
    if !verified.contains(": OK") {
        return Err(format!("openssl verify: {verified}").into());
    }
    let parsed = SslCertificate::from_file(&cert)?;
    Ok(parsed.first().ok_or("no certificate")?.clone())
}

// Was a defect (round 37): `is_self_signed()` is false for a self-signed certificate whose signature is sha1WithRSAEncryption with a 2048-bit key (many long-lived roots are so; Qt's `X509_check_issued` says self-signed, and `openssl verify -check_ss_sig` verifies it), while the same certificate with a 1024-bit key is true: `verify_self_signature` takes the provider's refusal of SHA-1 for a signature that does not verify, and `small_rsa_signature` gives up on keys of 2048 bits and more; and sha224WithRSAEncryption, which nothing here can check, is called a failed signature (false) instead of letting the names decide, as its doc says for what cannot be checked (and as it does for SHA-384 under 2048 bits).
#[test]
fn a_sha1_self_signed_certificate_with_a_2048_bit_key_is_self_signed() -> TestResult {
    let dir = tempfile::Builder::new()
        .prefix("sslsocket-l37-")
        .tempdir()?;
    let mut wrong = Vec::new();
    for (bits, digest) in [
        (1024, "sha1"),
        (2048, "sha1"),
        (2048, "sha224"),
        (1024, "sha224"),
    ] {
        let cert = openssl_self_signed(dir.path(), bits, digest)?;
        if !cert.is_self_signed() {
            wrong.push(format!("{bits}-bit RSA, {digest}: not self-signed"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

/// The errors our blocking client lists for `chain`, ignoring those of `ignored` kinds on
/// the leaf, and whether it connected.
fn listed_ignoring_on_leaf(
    root: &Ca,
    chain: Vec<Vec<u8>>,
    key: &KeyPair,
    ignored: &[SslErrorKind],
) -> BoxResult<(bool, Vec<(SslErrorKind, String)>)> {
    let leaf = chain.first().ok_or("empty chain")?.clone();
    let ignored = ignored
        .iter()
        .map(|kind| on(*kind, &leaf))
        .collect::<BoxResult<Vec<_>>>()?;
    let outcome = handshake(&[&root.der], chain, key, "localhost", move |s| {
        s.ignore_ssl_errors_list(&ignored)
    })?;
    Ok((outcome.encrypted, kinds_on(&outcome.errors)))
}

// Was a defect (round 37): on rustls a chain webpki alone refuses (a `CA:TRUE` leaf under a CA; more than six intermediates), listed as `UnspecifiedError` on the leaf (the README: "refused on rustls with that UnspecifiedError, which can be ignored explicitly"), is accepted with no `UnspecifiedError` listed once the leaf's notBefore is also written in a non-DER form and only that `InvalidNotBeforeField` is ignored: webpki stops at `BadDerTime` before it judges anything else, and `bad_times_explained` takes the listed time errors for the whole explanation ("ignoring the errors you were shown never accepts a fault only webpki saw" no longer holds).
#[test]
fn a_non_der_time_does_not_hide_what_webpki_alone_refuses() -> TestResult {
    let root = root("L37 Root")?;
    let root_key = KeyPair::from_pem(&root.key_pem)?;
    let bad_validity = tlv(
        0x30,
        &[
            tlv(GENERALIZED, b"20200101000000.5Z"),
            tlv(GENERALIZED, b"20400101000000Z"),
        ]
        .concat(),
    );
    let mut cases: Vec<Case<'_>> = Vec::new();
    // A `CA:TRUE` leaf under the root.
    let (ca_leaf, ca_leaf_key) = leaf(&root, "localhost", |p| {
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    })?;
    let ca_leaf_bad = with_validity(&ca_leaf, &root_key, &bad_validity)?;
    cases.push((
        "CA:TRUE leaf",
        vec![ca_leaf],
        vec![ca_leaf_bad],
        ca_leaf_key,
    ));
    // Seven intermediates (webpki takes six at most).
    let mut cas = vec![sub_ca(&root, "L37 I0")?];
    for i in 1..7 {
        let next = sub_ca(cas.last().ok_or("no CA")?, &format!("L37 I{i}"))?;
        cas.push(next);
    }
    let last = cas.last().ok_or("no CA")?;
    let (deep, deep_key) = leaf(last, "localhost", |_| {})?;
    let deep_bad = with_validity(&deep, &KeyPair::from_pem(&last.key_pem)?, &bad_validity)?;
    let above: Vec<Vec<u8>> = cas.iter().rev().map(|ca| ca.der.clone()).collect();
    cases.push((
        "seven intermediates",
        [vec![deep], above.clone()].concat(),
        [vec![deep_bad], above].concat(),
        deep_key,
    ));
    let backend = support::active_backend();
    let mut wrong = Vec::new();
    for (what, good, bad, key) in cases {
        let (good_connected, good_listed) = listed_ignoring_on_leaf(&root, good, &key, &[])?;
        let (bad_connected, bad_listed) =
            listed_ignoring_on_leaf(&root, bad, &key, &[InvalidNotBeforeField])?;
        // The time error adds itself and hides nothing: every error of the chain with a
        // DER time is listed for the one without, and ignoring only the time error
        // accepts it only where the chain with a DER time was accepted.
        let hidden: Vec<_> = good_listed
            .iter()
            .filter(|error| !bad_listed.contains(error))
            .collect();
        if !hidden.is_empty() || (bad_connected && !good_connected) {
            wrong.push(format!(
                "{what}: DER time {good_listed:?} (connected {good_connected}); \
                 non-DER time, its error ignored: {bad_listed:?} (connected {bad_connected})"
            ));
        }
    }
    assert!(wrong.is_empty(), "{backend}: {wrong:#?}");
    Ok(())
}
