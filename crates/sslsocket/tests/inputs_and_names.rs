//! Adversarial review of what the library takes from outside: certificates, keys, PKCS#12
//! bundles, and how their parsed fields compare with OpenSSL's reading of the same bytes.
//! Certificates and keys are made at test time (the `openssl` command, rcgen, the openssl
//! crate); nothing secret is checked in.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use sslsocket::blocking::SslSocket;
use sslsocket::core::SslCore;
use sslsocket::prelude::*;
use sslsocket::verify::{ChainVerifier, Purpose};
use sslsocket::{
    ConfigErrorKind, SocketState, SslCertificate, SslConfiguration, SslError, SslErrorKind, SslKey,
};
use support::attack::AttackServer;
use support::Pki;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Runs the `openssl` command in `dir`; its stdout, or an error with its stderr.
fn openssl(dir: &Path, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// `SslCertificate::from_data` (and so `from_file`, `--cafile`, `--cert`, `--ignore
/// NAME@FILE`) decides PEM vs DER by looking for `-----BEGIN ` *anywhere* in the bytes
/// (`looks_like_pem`, cert/certificate.rs). A valid DER certificate whose subject holds
/// that text is then parsed as PEM and refused ("no CERTIFICATE block found"), while
/// `openssl x509 -inform DER` reads it. The contract says `--cert FILE` is "PEM or DER";
/// a DER file (it starts with a SEQUENCE, 0x30) must be read as DER.
#[test]
fn der_certificate_whose_subject_holds_a_pem_marker_is_read_as_der() -> TestResult {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["marker.example".to_string()])?;
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "-----BEGIN CERTIFICATE-----",
    );
    let der = params.self_signed(&key)?.der().to_vec();
    let direct = SslCertificate::from_der(&der)?;

    let dir = tempfile::tempdir()?;
    let file = path(dir.path(), "marker.der");
    std::fs::write(&file, &der)?;
    // The reference reads the file as the DER certificate it is.
    openssl(
        dir.path(),
        &["x509", "-inform", "DER", "-in", "marker.der", "-noout"],
    )?;

    let from_data = SslCertificate::from_data(&der);
    assert!(
        matches!(&from_data, Ok(list) if list == &vec![direct.clone()]),
        "from_data refused a valid DER certificate: {from_data:?}"
    );
    let from_file = SslCertificate::from_file(&file);
    assert!(
        matches!(&from_file, Ok(list) if list == &vec![direct]),
        "from_file refused a valid DER certificate: {from_file:?}"
    );
    Ok(())
}

/// `subject_rfc4514`/`issuer_rfc4514` (cert/name.rs `short_name`) know 15 attribute types
/// and print every other one as `OID=#hex`. OpenSSL (`-nameopt RFC2253`, which the
/// contract names as the form of `subject`/`issuer`) prints its short name and the text
/// for every type it knows, among them the ones every EV certificate carries
/// (businessCategory, jurisdictionC, postalCode, organizationIdentifier). Qt's
/// `subjectInfoAttributes()` gives OpenSSL's short names too (`OBJ_obj2txt`), and
/// `subjectInfo("businessCategory")` finds the value.
#[test]
fn ev_subject_attributes_are_named_as_openssl_names_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ev.key",
            "-out",
            "ev.pem",
            "-days",
            "30",
            "-subj",
            "/CN=ev.example/businessCategory=Private Organization/jurisdictionC=US\
             /postalCode=12345/organizationIdentifier=VATDE-123/O=Example",
        ],
    )?;
    let expected = openssl(
        dir.path(),
        &[
            "x509", "-in", "ev.pem", "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    )?;
    let expected = expected.trim().trim_start_matches("subject=").to_string();
    let cert = SslCertificate::from_file(path(dir.path(), "ev.pem"))?
        .into_iter()
        .next()
        .ok_or("no certificate")?;
    assert_eq!(cert.subject_rfc4514(), expected, "subject");
    assert_eq!(cert.issuer_rfc4514(), expected, "issuer");
    let attributes = cert.subject_info_attributes();
    assert!(
        attributes.iter().any(|a| a == "businessCategory"),
        "subject_info_attributes: {attributes:?}"
    );
    assert_eq!(
        cert.subject_info_by_oid("businessCategory"),
        vec!["Private Organization".to_string()]
    );
    Ok(())
}

/// `is_self_signed` (cert/certificate.rs) and the verifier's "self-issued" test
/// (verify/checks.rs `is_self_issued`, `may_be_issued_by`) compare subject and issuer as
/// raw bytes. OpenSSL compares names in canonical form (`X509_NAME_cmp`: case and spaces
/// folded), so a certificate issued by its own key under `CN=FOO` with subject `CN=foo`
/// is self-signed for OpenSSL (`openssl verify` says "self-signed certificate", error 18),
/// and for Qt's `isSelfSigned()` (`X509_check_issued(x, x)`). The contract asks the
/// rustls backend to report OpenSSL's errors: `SelfSignedCertificate` on the lone leaf,
/// not `UnableToGetLocalIssuerCertificate` + `UnableToVerifyFirstCertificate` (+ an
/// `UnspecifiedError`), so an ignore list written against one backend fails on the other.
#[test]
fn a_self_signed_certificate_with_case_folded_issuer_is_self_signed_as_in_openssl() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "k.pem",
        ],
    )?;
    openssl(
        d,
        &[
            "req", "-x509", "-key", "k.pem", "-subj", "/CN=FOO", "-out", "FOO.pem", "-days", "3",
        ],
    )?;
    openssl(
        d,
        &[
            "req", "-new", "-key", "k.pem", "-subj", "/CN=foo", "-out", "foo.csr",
        ],
    )?;
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "foo.csr",
            "-CA",
            "FOO.pem",
            "-CAkey",
            "k.pem",
            "-out",
            "foo.pem",
            "-days",
            "3",
            "-set_serial",
            "7",
        ],
    )?;
    // The reference: OpenSSL calls it self-signed (with FOO.pem trusted it still stops at
    // depth 0, because foo.pem is its own issuer).
    let reference = Command::new("openssl")
        .current_dir(d)
        .args(["verify", "-CAfile", "FOO.pem", "foo.pem"])
        .output()?;
    let said = String::from_utf8_lossy(&reference.stdout).into_owned()
        + &String::from_utf8_lossy(&reference.stderr);
    assert!(said.contains("error 18"), "openssl verify: {said}");

    let cert = SslCertificate::from_file(path(d, "foo.pem"))?
        .into_iter()
        .next()
        .ok_or("no certificate")?;
    assert!(
        cert.is_self_signed(),
        "is_self_signed() is false; OpenSSL: {said}"
    );

    let errors = ChainVerifier::new(Vec::new(), Purpose::ServerAuth).verify_der(
        &[cert.der()],
        None,
        now_unix(),
    );
    let kinds: Vec<SslErrorKind> = errors.iter().map(|e| e.error()).collect();
    // OpenSSL's error first, as OpenSSL lists it. webpki (which judges every chain of the
    // rustls backend and `ChainVerifier`) compares names byte for byte and cannot accept
    // this certificate even as its own anchor: it fails closed with `UnspecifiedError`
    // (the README's "chains webpki refuses" rule), which an application may ignore.
    assert_eq!(
        kinds,
        vec![
            SslErrorKind::SelfSignedCertificate,
            SslErrorKind::UnspecifiedError
        ],
        "{errors:?}"
    );
    Ok(())
}

/// `import_pkcs12` (cert/bundle.rs `into_bundle`) takes "the certificate whose
/// localKeyID matches the key's, else the first". OpenSSL's `PKCS12_parse` (what Qt's
/// `importPkcs12` calls) takes the certificate whose public key matches the private key
/// (`X509_check_private_key`). A bundle without localKeyID attributes and with the CA
/// before the leaf (as `PKCS12_create` writes with no end-entity certificate named, and
/// other tools write) then gives the CA as "the key's certificate", and the leaf as a
/// "CA certificate": the bundle does not work as an identity. Qt returns the leaf.
#[cfg(feature = "openssl")]
#[test]
fn pkcs12_without_local_key_ids_gives_the_certificate_of_the_key() -> TestResult {
    use openssl::pkcs12::Pkcs12;
    use openssl::pkey::PKey;
    use openssl::stack::Stack;
    use openssl::x509::X509;

    let pki = Pki::new()?;
    let leaf = pki.leaf("p12.example", &["p12.example"])?;
    let pkey = PKey::private_key_from_der(&leaf.key_der)?;
    let mut ca = Stack::new()?;
    ca.push(X509::from_der(pki.intermediate_der())?)?;
    ca.push(X509::from_der(&leaf.cert_der)?)?;
    let der = Pkcs12::builder()
        .name("p12")
        .pkey(&pkey)
        .ca(ca)
        .build2("secret")?
        .to_der()?;

    // The reference: OpenSSL picks the leaf, the certificate of the key.
    let parsed = Pkcs12::from_der(&der)?.parse2("secret")?;
    let reference = parsed
        .cert
        .ok_or("PKCS12_parse found no certificate")?
        .to_der()?;
    assert_eq!(reference, leaf.cert_der, "OpenSSL's choice");

    let bundle = sslsocket::cert::import_pkcs12(&der, b"secret")?;
    assert_eq!(
        bundle.certificate().subject_rfc4514(),
        SslCertificate::from_der(&leaf.cert_der)?.subject_rfc4514(),
        "import_pkcs12 paired the key with another certificate"
    );
    assert_eq!(bundle.ca_certificates().len(), 1);
    Ok(())
}

/// The CLI's `try_session` and the library both rely on the backend to refuse a key of
/// another certificate before any byte is sent. This pins that a *client* configuration
/// (not only a server's) with a mismatched key is refused as `KeyMismatch` when the
/// handshake is started, on the backend under test.
#[test]
fn a_client_with_a_key_of_another_certificate_is_refused_before_sending() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.client_cert(true)?;
    let other = pki.leaf("other.example", &["other.example"])?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate(SslCertificate::from_der(&leaf.cert_der)?)
        .set_private_key(SslKey::from_der(&other.key_der)?);
    let mut core = SslCore::new(configuration);
    core.handle_state(SocketState::ConnectedState);
    match core.start_client_encryption("localhost") {
        Err(sslsocket::Error::Config(e)) => {
            assert_eq!(e.kind(), ConfigErrorKind::KeyMismatch, "{e}");
        }
        other => return Err(format!("expected KeyMismatch, got {other:?}").into()),
    }
    Ok(())
}

/// A key of another *type* than the certificate's (an RSA key for an ECDSA certificate) is
/// a key of another certificate just the same: `KeyMismatch`, in the same words on every
/// backend (config_errors.rs pins this for a same-type key). OpenSSL says "key type
/// mismatch" (or assigns the key to another slot) rather than "key values mismatch".
#[test]
fn a_key_of_another_type_is_a_key_mismatch_on_server_and_client() -> TestResult {
    let pki = Pki::new()?;
    let ec_leaf = pki.leaf("localhost", &["localhost"])?;
    let rsa_leaf = pki.rsa_leaf("rsa.example", &["rsa.example"])?;
    for server in [false, true] {
        let mut configuration = SslConfiguration::default();
        configuration
            .set_local_certificate(SslCertificate::from_der(&ec_leaf.cert_der)?)
            .set_private_key(SslKey::from_der(&rsa_leaf.key_der)?);
        let mut core = SslCore::new(configuration);
        core.handle_state(SocketState::ConnectedState);
        let started = if server {
            core.start_server_encryption()
        } else {
            core.start_client_encryption("localhost")
        };
        match started {
            Err(sslsocket::Error::Config(e)) => {
                assert_eq!(
                    e.kind(),
                    ConfigErrorKind::KeyMismatch,
                    "server={server}: {e}"
                );
            }
            other => {
                return Err(format!("server={server}: expected KeyMismatch, got {other:?}").into())
            }
        }
    }
    Ok(())
}

/// The certificate `der` with its outer SEQUENCE length in a longer form than DER allows
/// (`30 83 00 LL LL` for `30 82 LL LL`): BER, the same TBS and signature. OpenSSL reads
/// it (`openssl x509 -inform DER` re-encodes it to the original bytes).
fn with_long_outer_length(der: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    match der {
        [0x30, 0x82, hi, lo, rest @ ..] => {
            let mut out = vec![0x30, 0x83, 0x00, *hi, *lo];
            out.extend_from_slice(rest);
            Ok(out)
        }
        _ => Err("expected a certificate of 256 to 65535 bytes".into()),
    }
}

/// A peer presents a BER copy of certificate A (outer length in long form; same TBS,
/// same signature). The application ignored `SelfSignedCertificate` *for A* only.
/// SslCertificate equality is on the exact DER (as the brief and Qt require), so the
/// ignore entry must not cover an error on the bytes the peer actually sent, and
/// `peer_certificate_chain()` must hold those bytes ("the chain as the peer sent it").
///
/// On the OpenSSL backend the verifier builds each peer certificate from `X509::to_der()`
/// (backend/openssl/verifier.rs `read_certificate`), OpenSSL's re-encoding: the BER copy
/// becomes A's DER, the chain reports bytes the peer never sent, and the ignore entry
/// bound to A accepts the peer. The rustls backend refuses it (UnspecifiedError on the
/// BER bytes), so the two backends disagree too.
///
/// Decided (README, "Certificates as sent"): a known limit of the OpenSSL backend, as of
/// Qt's (which reports `i2d_X509` too). OpenSSL keeps no copy of the bytes it read; the
/// copy carries A's signed content and key, so the peer had to prove A's key, and the
/// entry grants nothing A's holder lacks.
/// So on the OpenSSL backend this test checks that limit as it is: the copy is reported
/// as A's DER, and accepted only as A.
#[test]
fn an_ignore_entry_bound_to_a_certificate_does_not_cover_a_ber_copy_of_it() -> TestResult {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let original = params.self_signed(&key)?.der().to_vec();
    let ber = with_long_outer_length(&original)?;
    assert_ne!(ber, original);
    // x509-parser reads the BER copy as well (its own value, by its own bytes).
    if let Ok(copy) = SslCertificate::from_der(&ber) {
        assert_ne!(copy, SslCertificate::from_der(&original)?);
    }

    let server = AttackServer::start(vec![ber.clone()], &key.serialize_der(), 1)?;
    let mut socket = SslSocket::with_configuration(SslConfiguration::default());
    socket.ignore_ssl_errors_list(&[SslError::with_certificate(
        SslErrorKind::SelfSignedCertificate,
        SslCertificate::from_der(&original)?,
    )]);
    socket.connect_to_host_encrypted("localhost", server.port());
    let result = socket.wait_for_encrypted(std::time::Duration::from_secs(10));
    let chain: Vec<Vec<u8>> = socket
        .peer_certificate_chain()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    let errors = socket.ssl_handshake_errors().to_vec();
    let encrypted = result.is_ok() || socket.is_encrypted();
    let reported_original = chain.first() == Some(&original);
    if support::backends::active_backend() == "openssl" {
        assert!(
            reported_original && encrypted,
            "OpenSSL backend: the BER copy of A should be read as A (the documented limit); \
             chain as A: {reported_original}, encrypted: {encrypted}, errors: {errors:?}"
        );
        return Ok(());
    }
    assert!(
        !encrypted,
        "the ignore entry for the original certificate accepted its BER copy \
         (chain reported as the original DER: {reported_original}); errors: {errors:?}"
    );
    assert!(
        chain.first() == Some(&ber),
        "peer_certificate_chain() does not hold the bytes the peer sent \
         (the original DER instead: {reported_original})"
    );
    Ok(())
}
