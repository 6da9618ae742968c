//! Review round 37 (L7): the last changes of the round attacked (the security level of a
//! leaf key that is not a plain named-curve or readable key). Certificates made with the
//! `openssl` command at test time; `openssl verify -auth_level 2` as the oracle. Run on
//! both backends: `cargo test -p sslsocket --all-features --test last_round37g` and the
//! same with `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sslsocket::verify::{ChainVerifier, Purpose};
use sslsocket::{SslCertificate, SslError, SslErrorKind};
use support::{openssl_run, os_args};

use SslErrorKind::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const LEAF_EXT: &str = "basicConstraints=critical,CA:FALSE\n\
                        keyUsage=critical,digitalSignature,keyEncipherment\n\
                        extendedKeyUsage=serverAuth\n\
                        subjectAltName=DNS:localhost\n";

struct Made {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

fn openssl_ok(args: &[OsString]) -> BoxResult<String> {
    let out = openssl_run(args, b"", Duration::from_secs(60))?;
    if !out.success() {
        return Err(format!("openssl {args:?}: {out}").into());
    }
    Ok(out.to_string())
}

fn der_of(pem_file: &Path) -> BoxResult<Vec<u8>> {
    Ok(pem::parse(std::fs::read(pem_file)?)?.into_contents())
}

fn make_key(dir: &Path, name: &str, options: &[&str]) -> BoxResult<PathBuf> {
    let key = dir.join(format!("{name}.key"));
    let mut args = os_args!["genpkey", "-out", key];
    args.extend(options.iter().map(OsString::from));
    openssl_ok(&args)?;
    Ok(key)
}

fn make_root(dir: &Path) -> BoxResult<Made> {
    let key = make_key(
        dir,
        "root",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    )?;
    let cert = dir.join("root.pem");
    openssl_ok(&os_args![
        "req",
        "-x509",
        "-new",
        "-key",
        key,
        "-subj",
        "/CN=L7 Root",
        "-days",
        "365",
        "-sha256",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        cert,
    ])?;
    let der = der_of(&cert)?;
    Ok(Made { cert, key, der })
}

fn make_leaf(dir: &Path, name: &str, key: PathBuf, root: &Made) -> BoxResult<Made> {
    let cert = dir.join(format!("{name}.pem"));
    let csr = dir.join(format!("{name}.csr"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(&ext, LEAF_EXT)?;
    let subject = format!("/CN={name}");
    openssl_ok(&os_args![
        "req", "-new", "-key", key, "-subj", subject, "-out", csr
    ])?;
    openssl_ok(&os_args![
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        root.cert,
        "-CAkey",
        root.key,
        "-set_serial",
        "4247",
        "-days",
        "30",
        "-extfile",
        ext,
        "-sha256",
        "-out",
        cert,
    ])?;
    let der = der_of(&cert)?;
    Ok(Made { cert, key, der })
}

fn openssl_verify_level2(root: &Made, leaf: &Made) -> BoxResult<String> {
    let args = os_args![
        "verify",
        "-auth_level",
        "2",
        "-CAfile",
        root.cert,
        leaf.cert
    ];
    Ok(openssl_run(&args, b"", Duration::from_secs(30))?.to_string())
}

fn our_list(root: &Made, leaf: &Made) -> Vec<SslError> {
    let anchors = SslCertificate::from_der(&root.der).into_iter().collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    ChainVerifier::new(anchors, Purpose::ServerAuth).verify_der(
        &[&leaf.der],
        Some("localhost"),
        now,
    )
}

fn on(kind: SslErrorKind, der: &[u8]) -> BoxResult<SslError> {
    Ok(SslError::with_certificate(
        kind,
        SslCertificate::from_der(der)?,
    ))
}

fn kinds(errors: &[SslError]) -> Vec<SslErrorKind> {
    errors.iter().map(|e| e.error()).collect()
}

// Was a defect (round 37): a leaf whose EC key carries explicit curve parameters (a P-256 or a P-192 curve written out) verifies with no error in our verifier (`key_under_security_level` reads only named curves), where OpenSSL (our OpenSSL backend) lists `X509_V_ERR_EC_KEY_EXPLICIT_PARAMS` / `X509_V_ERR_EE_KEY_TOO_SMALL` on it (Qt's `UnspecifiedError`): a key we cannot judge passes silently.
#[test]
fn a_leaf_key_with_explicit_curve_parameters_is_not_silently_accepted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let root = make_root(d)?;
    let mut silent = Vec::new();
    for curve in ["P-256", "prime192v1"] {
        let curve_opt = format!("ec_paramgen_curve:{curve}");
        let key = make_key(
            d,
            curve,
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                &curve_opt,
                "-pkeyopt",
                "ec_param_enc:explicit",
            ],
        )?;
        let leaf = make_leaf(d, curve, key, &root)?;
        let openssl = openssl_verify_level2(&root, &leaf)?;
        assert!(
            openssl.contains("error 94 at 0") || openssl.contains("error 66 at 0"),
            "{curve}: OpenSSL at level 2 said {openssl}"
        );
        let errors = our_list(&root, &leaf);
        if !errors.contains(&on(UnspecifiedError, &leaf.der)?) {
            silent.push((curve, kinds(&errors)));
        }
    }
    assert!(
        silent.is_empty(),
        "explicit-curve leaf keys with no error: {silent:?}"
    );
    Ok(())
}

/// `leaf` with one byte of its SubjectPublicKeyInfo's key bits changed (the RSAPublicKey
/// SEQUENCE tag made a SET), signed again by `root` (SHA-256, PKCS#1): a certificate whose
/// signature is good and whose key does not read.
fn with_unreadable_rsa_key(d: &Path, leaf: &Made, root: &Made) -> BoxResult<Vec<u8>> {
    let mut der = leaf.der.clone();
    let marker = [0x03, 0x82, 0x01, 0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a];
    let at = der
        .windows(marker.len())
        .position(|w| w == marker)
        .ok_or("no 2048-bit RSA key bits in the leaf")?;
    der[at + 5] = 0x31;
    // Certificate ::= SEQUENCE (4-byte header) { tbs SEQUENCE (4-byte header) ... }.
    let tbs_len = usize::from(der[6]) << 8 | usize::from(der[7]);
    let tbs = der.get(4..8 + tbs_len).ok_or("short certificate")?.to_vec();
    let tbs_file = d.join("tbs.bin");
    let sig_file = d.join("tbs.sig");
    std::fs::write(&tbs_file, &tbs)?;
    openssl_ok(&os_args![
        "dgst", "-sha256", "-sign", root.key, "-out", sig_file, tbs_file
    ])?;
    let signature = std::fs::read(&sig_file)?;
    assert_eq!(signature.len(), 256);
    let n = der.len();
    der[n - 256..].copy_from_slice(&signature);
    Ok(der)
}

// Was a defect (round 37): a leaf whose rsaEncryption key does not read (its RSAPublicKey is no SEQUENCE) under a good signature verifies with no error in our verifier, where OpenSSL at level 2 (our OpenSSL backend) lists `X509_V_ERR_EE_KEY_TOO_SMALL` ("unsupported or malformed keys are not secure"): the security-level check is not fail-closed.
#[test]
fn a_leaf_key_that_does_not_read_is_listed_on_the_leaf() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let root = make_root(d)?;
    let key = make_key(
        d,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    )?;
    let good = make_leaf(d, "rsa", key.clone(), &root)?;
    let der = with_unreadable_rsa_key(d, &good, &root)?;
    let cert = d.join("bad.pem");
    std::fs::write(
        &cert,
        pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())),
    )?;
    let bad = Made { cert, key, der };
    let openssl = openssl_verify_level2(&root, &bad)?;
    assert!(
        openssl.contains("error 66 at 0"),
        "OpenSSL at level 2 said {openssl}"
    );
    // The control: the same leaf with its key intact verifies with no error.
    assert_eq!(kinds(&our_list(&root, &good)), vec![]);
    let errors = our_list(&root, &bad);
    assert!(
        errors.contains(&on(UnspecifiedError, &bad.der)?),
        "a leaf whose key does not read: {:?}",
        kinds(&errors)
    );
    Ok(())
}
