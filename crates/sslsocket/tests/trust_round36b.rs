//! Round 36 review (A2): the verifier, second pass. The DER check of round 36
//! (`is_one_der_value`, `sent_extension_errors` in `verify/checks.rs`) attacked with forms
//! it may let through or refuse wrongly, then intermediates that may not issue, on both
//! backends (run again with `SSLSOCKET_BACKEND=openssl`). Chains are made here with rcgen
//! (some re-signed after a byte of their TBS was changed) and served by a raw rustls server
//! (`AttackServer`) on 127.0.0.1.
//! `cargo test -p sslsocket --all-features --test trust_round36b`.
mod support;

use rcgen::{BasicConstraints, CustomExtension, IsCa, KeyPair, KeyUsagePurpose};
use sslsocket::{SslErrorKind, SslSocketExt};
use support::chains::*;

use SslErrorKind::*;

// ----- DER helpers ------------------------------------------------------------------------

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

/// `cert` (signed by `issuer_key`) with the first occurrence of `from` in its TBS replaced
/// by `to` (same length), signed again by `issuer_key` over the new TBS: a certificate
/// whose signature is good and whose DER differs only there.
fn patched(cert: &[u8], from: &[u8], to: &[u8], issuer_key: &KeyPair) -> BoxResult<Vec<u8>> {
    assert_eq!(from.len(), to.len(), "a patch keeps the length");
    let (h, len) = header(cert)?;
    let body = cert.get(h..h + len).ok_or("short certificate")?;
    let (th, tlen) = header(body)?;
    let mut tbs = body.get(..th + tlen).ok_or("short TBS")?.to_vec();
    let after = body.get(th + tlen..).ok_or("short certificate")?;
    let (ah, alen) = header(after)?;
    let algorithm = after.get(..ah + alen).ok_or("short algorithm")?;
    let at = tbs
        .windows(from.len())
        .position(|w| w == from)
        .ok_or("pattern not in the TBS")?;
    tbs.splice(at..at + from.len(), to.iter().copied());
    let signature = rcgen::SigningKey::sign(issuer_key, &tbs)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut out = tbs;
    out.extend_from_slice(algorithm);
    out.extend(tlv(0x03, &bits));
    Ok(tlv(0x30, &out))
}

/// `cert` with its TBS fields (version, serial, ..., extensions) edited by `edit`, the
/// TBS encoded again and signed by `issuer_key`.
fn resigned_fields(
    cert: &[u8],
    issuer_key: &KeyPair,
    edit: impl FnOnce(&mut Vec<Vec<u8>>),
) -> BoxResult<Vec<u8>> {
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
    edit(&mut fields);
    let tbs = tlv(0x30, &fields.concat());
    let signature = rcgen::SigningKey::sign(issuer_key, &tbs)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut out = tbs;
    out.extend_from_slice(algorithm);
    out.extend(tlv(0x03, &bits));
    Ok(tlv(0x30, &out))
}

/// The key of `ca` (rcgen keeps it inside the issuer).
fn key_of(ca: &Ca) -> BoxResult<KeyPair> {
    Ok(KeyPair::from_pem(&ca.key_pem)?)
}

/// The subjectAltName value `SEQUENCE { dNSName "localhost", extra... }`.
fn san_with(extra: &[Vec<u8>]) -> Vec<u8> {
    let mut names = tlv(0x82, b"localhost");
    for e in extra {
        names.extend_from_slice(e);
    }
    tlv(0x30, &names)
}

// ----- valid DER that must still be accepted ---------------------------------------------

/// A Kerberos principal name (`id-pkinit-san`, RFC 4556: `KRB5PrincipalName` whose
/// `KerberosString`s are GeneralStrings, tag 0x1B) as an otherName, as FreeIPA and Active
/// Directory put it in the subjectAltName of service and user certificates.
fn krb5_principal_other_name() -> Vec<u8> {
    let realm = tlv(0xa0, &tlv(0x1b, b"EXAMPLE.COM"));
    let name_type = tlv(0xa0, &tlv(0x02, &[0x01]));
    let mut strings = tlv(0x1b, b"HTTP");
    strings.extend(tlv(0x1b, b"localhost"));
    let name_string = tlv(0xa1, &tlv(0x30, &strings));
    let mut principal = name_type;
    principal.extend(name_string);
    let mut krb = realm;
    krb.extend(tlv(0xa1, &tlv(0x30, &principal)));
    let mut other = vec![0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x02, 0x02];
    other.extend(tlv(0xa0, &tlv(0x30, &krb)));
    tlv(0xa0, &other)
}

// Was a defect (round 36): a leaf whose subjectAltName holds, beside its dNSName, a Kerberos principal
// name otherName (RFC 4556; GeneralString, tag 0x1B, valid DER that webpki, x509-parser
// and OpenSSL all read) is refused with `UnspecifiedError` on the leaf, on both backends:
// round 36's `is_one_der_value` (verify/checks.rs) reads every element with the der
// crate, whose `Tag::try_from` knows no GeneralString (nor UniversalString 0x1C,
// GraphicString 0x19, ObjectDescriptor 0x07, RELATIVE-OID 0x0D, ...) and fails with
// `TagUnknown`. Expected: accepted with no error (a false refusal of real certificates);
// treat an unknown universal primitive tag as opaque content, only lengths matter there.
#[test]
fn a_kerberos_principal_in_the_subject_alt_name_is_accepted() -> TestResult {
    let root = root("R36b Root")?;
    let san = san_with(&[krb5_principal_other_name()]);
    let (leaf_der, key) = leaf(&root, "localhost", |params| {
        params.subject_alt_names = Vec::new();
        params.custom_extensions = vec![CustomExtension::from_oid_content(&[2, 5, 29, 17], san)];
    })?;
    let outcome = handshake(&[&root.der], vec![leaf_der], &key, "localhost", |_| {})?;
    assert!(
        outcome.encrypted && outcome.errors.is_empty(),
        "{}: encrypted {}, {:?}",
        support::active_backend(),
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Was a defect (round 36): the same for a directoryName alternative name whose organizationName is a
// UniversalString (tag 0x1C, a DirectoryString choice of RFC 5280): refused with
// `UnspecifiedError` on the leaf on both backends (der's `TagUnknown`, as above).
// Expected: accepted with no error.
#[test]
fn a_universal_string_directory_name_in_the_subject_alt_name_is_accepted() -> TestResult {
    let root = root("R36b Root")?;
    let mut attribute = vec![0x06, 0x03, 0x55, 0x04, 0x0a];
    attribute.extend(tlv(
        0x1c,
        &[0, 0, 0, b'A', 0, 0, 0, b'c', 0, 0, 0, b'm', 0, 0, 0, b'e'],
    ));
    let name = tlv(0x30, &tlv(0x31, &tlv(0x30, &attribute)));
    let san = san_with(&[tlv(0xa4, &name)]);
    let (leaf_der, key) = leaf(&root, "localhost", |params| {
        params.subject_alt_names = Vec::new();
        params.custom_extensions = vec![CustomExtension::from_oid_content(&[2, 5, 29, 17], san)];
    })?;
    let outcome = handshake(&[&root.der], vec![leaf_der], &key, "localhost", |_| {})?;
    assert!(
        outcome.encrypted && outcome.errors.is_empty(),
        "{}: encrypted {}, {:?}",
        support::active_backend(),
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// ----- forms that are not DER ----------------------------------------------------------------

/// basicConstraints' OID and a DER `critical TRUE`.
const BC_CRITICAL: [u8; 8] = [0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff];
/// keyUsage's OID and a DER `critical TRUE`.
const KU_CRITICAL: [u8; 8] = [0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff];

fn ber_true(der: &[u8; 8]) -> [u8; 8] {
    let mut ber = *der;
    ber[7] = 0x01;
    ber
}

// Was a defect (round 36): a leaf whose (critical) basicConstraints carries its `critical` flag as BER
// TRUE (`01 01 01`; DER says `ff`), correctly signed, is accepted with no error at all on
// the OpenSSL backend (OpenSSL's `asn1_ex_c2i` takes any non-zero octet, x509-parser's
// `der_read_critical` reads it as BER); rustls refuses it (webpki's `bool::from_der`).
// Round 36's check looks at the extension's value only (`is_one_der_value(ext.value)`,
// verify/checks.rs:377), never at the flag. Expected: `UnspecifiedError` on the leaf on
// both backends (check the flag's encoding too: absent or `01 01 ff`).
#[test]
fn a_leaf_whose_critical_flag_is_ber_is_refused_on_it() -> TestResult {
    let root = root("R36b Root")?;
    let (good, key) = leaf(&root, "localhost", |_| {})?;
    let bad = patched(
        &good,
        &BC_CRITICAL,
        &ber_true(&BC_CRITICAL),
        &key_of(&root)?,
    )?;
    let outcome = handshake(&[&root.der], vec![bad.clone()], &key, "localhost", |_| {})?;
    assert!(
        !outcome.encrypted && outcome.errors.contains(&on(UnspecifiedError, &bad)?),
        "{}: encrypted {}, {:?}",
        support::active_backend(),
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    // Control: the same bytes re-signed unchanged connect.
    let same = patched(&good, &BC_CRITICAL, &BC_CRITICAL, &key_of(&root)?)?;
    let control = handshake(&[&root.der], vec![same], &key, "localhost", |_| {})?;
    assert!(control.encrypted, "{:?}", kinds_on(&control.errors));
    Ok(())
}

// Was a defect (round 36): the same BER `critical` flag on the keyUsage of an intermediate: accepted with
// no error on the OpenSSL backend; on rustls refused, but with `UnspecifiedError` on the
// *leaf* (webpki cannot read the intermediate, the collector sees nothing wrong with it,
// and verify/verifier.rs:448 puts the unexplained refusal on the leaf), so ignoring an
// `UnspecifiedError` on one's own leaf accepts an intermediate never shown as faulty.
// Expected: `UnspecifiedError` on the intermediate, on both backends.
#[test]
fn an_intermediate_whose_critical_flag_is_ber_is_refused_on_it() -> TestResult {
    let root = root("R36b Root")?;
    let inter = sub_ca(&root, "R36b Intermediate")?;
    let bad = patched(
        &inter.der,
        &KU_CRITICAL,
        &ber_true(&KU_CRITICAL),
        &key_of(&root)?,
    )?;
    let (leaf_der, key) = leaf(&inter, "localhost", |_| {})?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der, bad.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(
        !outcome.encrypted && outcome.errors.contains(&on(UnspecifiedError, &bad)?),
        "{}: encrypted {}, {:?}",
        support::active_backend(),
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Was a defect (round 36): a leaf with a non-critical extension whose OID has a non-minimal subidentifier
// (`80 06`, forbidden by X.690 8.19.2), correctly signed: rustls connects with no error
// (webpki skips unknown non-critical extensions, x509-parser and `SslCertificate::from_der`
// take the OID), while the OpenSSL backend fails the handshake with an empty error list
// (OpenSSL's `c2i_ASN1_OBJECT` refuses the certificate). Now refused on rustls with
// `UnspecifiedError` on the leaf (every extnID's encoding is checked); on OpenSSL the
// decode failure stays (decided, below).
#[test]
fn a_leaf_with_a_non_minimal_extension_oid_is_refused_on_it() -> TestResult {
    let root = root("R36b Root")?;
    let (good, key) = leaf(&root, "localhost", |params| {
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 2, 3, 4, 5, 6],
            vec![0x05, 0x00],
        )];
    })?;
    let bad = patched(
        &good,
        &[0x06, 0x05, 0x2a, 0x03, 0x04, 0x05, 0x06],
        &[0x06, 0x05, 0x2a, 0x03, 0x04, 0x80, 0x06],
        &key_of(&root)?,
    )?;
    let outcome = handshake(&[&root.der], vec![bad.clone()], &key, "localhost", |_| {})?;
    // Decided (round 36): OpenSSL refuses the Certificate message itself (a decode error,
    // before any verification), so that backend's handshake fails with no verification
    // error to list, as Qt's does on OpenSSL.
    let listed = support::active_backend() == "openssl"
        || outcome.errors.contains(&on(UnspecifiedError, &bad)?);
    assert!(
        !outcome.encrypted && listed,
        "{}: encrypted {}, {:?}",
        support::active_backend(),
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Was a defect (round 36): a leaf whose extendedKeyUsage names serverAuth with a non-minimal subidentifier
// (`03 80 01`): rustls lists only `InvalidPurpose` (x509-parser compares OID bytes), the
// OpenSSL backend `UnableToGetLocalIssuerCertificate` and `UnableToVerifyFirstCertificate`
// on the leaf (OpenSSL marks it `EXFLAG_INVALID` and finds no issuer), which is wrong
// (the issuer is the trusted root) and differs between backends. `is_one_der_value`
// (verify/checks.rs:48) checks BOOLEAN, INTEGER and BIT STRING forms but not OBJECT
// IDENTIFIERs. Expected: `UnspecifiedError` on the leaf on both backends.
#[test]
fn a_non_minimal_server_auth_oid_in_the_eku_is_an_unspecified_error_on_the_leaf() -> TestResult {
    let root = root("R36b Root")?;
    let eku = tlv(
        0x30,
        &[
            0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x80, 0x01,
        ],
    );
    let (leaf_der, key) = leaf(&root, "localhost", |params| {
        params.extended_key_usages = Vec::new();
        params.custom_extensions = vec![CustomExtension::from_oid_content(&[2, 5, 29, 37], eku)];
    })?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(
        !outcome.encrypted && outcome.errors.contains(&on(UnspecifiedError, &leaf_der)?),
        "{}: encrypted {}, {:?}",
        support::active_backend(),
        outcome.encrypted,
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Was a defect (round 36): worse, on the OpenSSL backend ignoring exactly those two issuer errors on the
// leaf connects: a leaf whose extendedKeyUsage is malformed and names no TLS purpose is
// accepted by a socket that only accepted an unknown issuer (the purpose is never
// checked: OpenSSL stopped at the issuer, `path_checks` finds no extension problem).
// rustls refuses (`InvalidPurpose` stays). Expected: refused on both backends.
#[test]
fn ignoring_issuer_errors_never_accepts_a_malformed_eku_leaf() -> TestResult {
    let root = root("R36b Root")?;
    let eku = tlv(
        0x30,
        &[
            0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x80, 0x01,
        ],
    );
    let (leaf_der, key) = leaf(&root, "localhost", |params| {
        params.extended_key_usages = Vec::new();
        params.custom_extensions = vec![CustomExtension::from_oid_content(&[2, 5, 29, 37], eku)];
    })?;
    let ignored = vec![
        on(UnableToGetLocalIssuerCertificate, &leaf_der)?,
        on(UnableToVerifyFirstCertificate, &leaf_der)?,
    ];
    let outcome = handshake(&[&root.der], vec![leaf_der], &key, "localhost", move |s| {
        s.ignore_ssl_errors_list(&ignored)
    })?;
    assert!(
        !outcome.encrypted,
        "{}: connected, listing {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// ----- intermediates that may not issue: the same list on both backends ---------------------

/// root ← `inter` ← leaf for localhost: the errors listed (not ignored) and whether it
/// connected.
fn under(root: &Ca, inter_der: &[u8], inter: &Ca) -> BoxResult<Outcome> {
    let (leaf_der, key) = leaf(inter, "localhost", |_| {})?;
    handshake(
        &[&root.der],
        vec![leaf_der, inter_der.to_vec()],
        &key,
        "localhost",
        |_| {},
    )
}

// Held: a `CA:FALSE` intermediate gets `InvalidCaCertificate` and `InvalidPurpose` on
// itself, the same list on both backends.
#[test]
fn a_ca_false_intermediate_is_invalid_ca_on_it() -> TestResult {
    let root = root("R36b Root")?;
    let inter = sub_ca_with(&root, "R36b Not A CA", None, |p| {
        p.is_ca = IsCa::ExplicitNoCa;
    })?;
    let outcome = under(&root, &inter.der, &inter)?;
    assert!(!outcome.encrypted);
    assert_eq!(
        outcome.errors,
        vec![
            on(InvalidCaCertificate, &inter.der)?,
            on(InvalidPurpose, &inter.der)?
        ],
        "{}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Held: a `CA:TRUE` intermediate whose keyUsage lacks keyCertSign gets
// `InvalidCaCertificate`, `InvalidPurpose` and `UnspecifiedError` (OpenSSL's
// KEYUSAGE_NO_CERTSIGN) on itself, the same list on both backends.
#[test]
fn an_intermediate_without_key_cert_sign_is_refused_on_it() -> TestResult {
    let root = root("R36b Root")?;
    let inter = sub_ca_with(&root, "R36b No CertSign", None, |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    })?;
    let outcome = under(&root, &inter.der, &inter)?;
    assert!(!outcome.encrypted);
    assert_eq!(
        outcome.errors,
        vec![
            on(InvalidCaCertificate, &inter.der)?,
            on(InvalidPurpose, &inter.der)?,
            on(UnspecifiedError, &inter.der)?
        ],
        "{}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Held: root ← I1 (pathLenConstraint 0) ← I2 ← leaf: exactly `PathLengthExceeded` on I1,
// on both backends.
#[test]
fn path_length_zero_with_a_further_intermediate_is_path_length_exceeded() -> TestResult {
    let root = root("R36b Root")?;
    let i1 = sub_ca_with(&root, "R36b PathLen0", None, |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    })?;
    let i2 = sub_ca(&i1, "R36b Below PathLen0")?;
    let (leaf_der, key) = leaf(&i2, "localhost", |_| {})?;
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der, i2.der.clone(), i1.der.clone()],
        &key,
        "localhost",
        |_| {},
    )?;
    assert!(!outcome.encrypted);
    assert_eq!(
        outcome.errors,
        vec![on(PathLengthExceeded, &i1.der)?],
        "{}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// Was a defect (round 36): a version 1 intermediate (no extensions) signed by the trusted root: the
// OpenSSL backend lists `InvalidCaCertificate` and `InvalidPurpose` on it; rustls lists
// those and an extra `UnspecifiedError` on the *leaf* (webpki refuses the v1 issuer,
// which `InvalidCaCertificate` is not taken to explain; verify/verifier.rs:448).
// Expected: the same list on both backends, nothing on the leaf (count
// `InvalidCaCertificate` on the issuer as explaining webpki's UnknownIssuer /
// UnsupportedCertVersion, or put the `UnspecifiedError` on the intermediate).
#[test]
fn a_version_1_intermediate_is_invalid_ca_on_it() -> TestResult {
    let root = root("R36b Root")?;
    let inter = sub_ca(&root, "R36b V1 Intermediate")?;
    // No version field, no extensions: a version 1 certificate, signed by the root.
    let v1 = resigned_fields(&inter.der, &key_of(&root)?, |fields| {
        fields.retain(|f| !matches!(f.first(), Some(0xa0) | Some(0xa3)));
    })?;
    let outcome = under(&root, &v1, &inter)?;
    assert!(!outcome.encrypted);
    assert_eq!(
        outcome.errors,
        vec![on(InvalidCaCertificate, &v1)?, on(InvalidPurpose, &v1)?],
        "{}: {:?}",
        support::active_backend(),
        kinds_on(&outcome.errors)
    );
    Ok(())
}

// ----- the CA set changed between a handshake and a resumption -----------------------------

use sslsocket::blocking::SslSocket;
use sslsocket::{SslCertificate, SslConfiguration, SslProtocol};

/// Connects `configuration` to `port` (peer name localhost), optionally ignoring every
/// error; reads the server's message (so TLS 1.3 tickets arrive) and closes. Returns
/// (encrypted, resumed, errors).
fn connect_once(
    configuration: SslConfiguration,
    port: u16,
    ignore_all: bool,
) -> (bool, bool, Vec<sslsocket::SslError>) {
    let mut socket = SslSocket::with_configuration(configuration);
    if ignore_all {
        socket.ignore_ssl_errors();
    }
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, "localhost");
    let encrypted = socket.wait_for_encrypted(WAIT).is_ok() && socket.is_encrypted();
    if encrypted {
        let _ = socket.wait_for_ready_read(std::time::Duration::from_millis(500));
        let _ = socket.read_all();
    }
    let resumed = socket.is_session_resumed();
    let errors = socket.ssl_handshake_errors().to_vec();
    let _ = socket.disconnect_within(std::time::Duration::from_secs(2));
    (encrypted, resumed, errors)
}

// Held: a session stored while the root was trusted is not resumed (nor accepted) by a
// configuration made from the same value with its CA set emptied, TLS 1.2 and 1.3.
#[test]
fn a_session_is_not_resumed_after_its_ca_was_removed() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let root = root("R36b Root")?;
        let (leaf_der, key) = leaf(&root, "localhost", |_| {})?;
        let server = support::attack::AttackServer::start(vec![leaf_der], &key.serialize_der(), 3)?;
        let mut trusting = SslConfiguration::default();
        trusting.set_protocol(protocol);
        trusting.set_ca_certificates(vec![SslCertificate::from_der(&root.der)?]);
        let (encrypted, _, errors) = connect_once(trusting.clone(), server.port(), false);
        assert!(encrypted && errors.is_empty(), "{:?}", kinds_on(&errors));
        // Control: the same configuration resumes.
        let (encrypted, resumed, _) = connect_once(trusting.clone(), server.port(), false);
        assert!(
            encrypted && resumed,
            "{protocol:?}: no resumption to attack"
        );
        let mut distrusting = trusting.clone();
        distrusting.set_ca_certificates(Vec::new());
        let (encrypted, resumed, errors) = connect_once(distrusting, server.port(), false);
        assert!(
            !encrypted && !resumed && !errors.is_empty(),
            "{protocol:?} on {}: encrypted {encrypted}, resumed {resumed}, {:?}",
            support::active_backend(),
            kinds_on(&errors)
        );
    }
    Ok(())
}

// Held: a session of a socket that ignored every error of an untrusted chain, then the
// root added to (a copy of) its configuration: a strict socket of the new configuration
// connects with no error (a full handshake; not the old session's errors), TLS 1.2 and
// 1.3.
#[test]
fn a_ca_added_after_an_ignored_handshake_gives_a_clean_full_handshake() -> TestResult {
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let root = root("R36b Root")?;
        let (leaf_der, key) = leaf(&root, "localhost", |_| {})?;
        let server = support::attack::AttackServer::start(vec![leaf_der], &key.serialize_der(), 3)?;
        let mut lenient = SslConfiguration::default();
        lenient.set_protocol(protocol);
        lenient.set_ca_certificates(Vec::new());
        let (encrypted, _, errors) = connect_once(lenient.clone(), server.port(), true);
        assert!(encrypted && !errors.is_empty(), "{:?}", kinds_on(&errors));
        // The same configuration, strict: refused (the stored session is not offered).
        let (encrypted, resumed, _) = connect_once(lenient.clone(), server.port(), false);
        assert!(
            !encrypted && !resumed,
            "{protocol:?}: a strict socket took the session"
        );
        let mut fixed = lenient.clone();
        fixed.add_ca_certificate(SslCertificate::from_der(&root.der)?);
        let (encrypted, resumed, errors) = connect_once(fixed, server.port(), false);
        assert!(
            encrypted && !resumed && errors.is_empty(),
            "{protocol:?} on {}: encrypted {encrypted}, resumed {resumed}, {:?}",
            support::active_backend(),
            kinds_on(&errors)
        );
    }
    Ok(())
}
