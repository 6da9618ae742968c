//! Review round 37 (L8): the last change of the round (`key_under_security_level`) attacked
//! with normal and hostile leaf keys. Certificates made with the `openssl` command at test
//! time; `openssl verify -auth_level 2` as the oracle. Run on both backends:
//! `cargo test -p sslsocket --all-features --test last_round37h` and the same with
//! `SSLSOCKET_BACKEND=openssl`.
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

/// Whether `openssl verify -auth_level 2` and our verifier agree on the leaf's key: OpenSSL
/// lists `X509_V_ERR_EE_KEY_TOO_SMALL` (66) at 0 exactly when we list `UnspecifiedError`
/// on the leaf. `Err` with the disagreement otherwise.
fn agree(name: &str, root: &Made, leaf: &Made) -> BoxResult<Option<String>> {
    let openssl = openssl_verify_level2(root, leaf)?;
    let theirs = openssl.contains("error 66 at 0");
    let errors = our_list(root, leaf);
    let ours = errors.contains(&on(UnspecifiedError, &leaf.der)?);
    Ok((theirs != ours).then(|| {
        format!(
            "{name}: OpenSSL {:?}, ours {:?}",
            openssl.trim(),
            kinds(&errors)
        )
    }))
}

// PINS: normal leaf keys (RSA 2048/3072, RSA-PSS with and without parameters, Ed25519,
// Ed448, P-224/256/384/521, brainpool 256/384/512, secp256k1, DSA 2048) get the security
// level's error from us exactly when `openssl verify -auth_level 2` lists it.
#[test]
fn normal_leaf_keys_agree_with_openssl_level_2() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let root = make_root(d)?;
    let cases: &[(&str, &[&str])] = &[
        (
            "rsa2048",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        (
            "rsa3072",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
        ),
        (
            "rsa1024",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        ),
        (
            "pss",
            &["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        (
            "pss_params",
            &[
                "-algorithm",
                "RSA-PSS",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-pkeyopt",
                "rsa_pss_keygen_md:sha256",
                "-pkeyopt",
                "rsa_pss_keygen_mgf1_md:sha256",
                "-pkeyopt",
                "rsa_pss_keygen_saltlen:32",
            ],
        ),
        ("ed25519", &["-algorithm", "ED25519"]),
        ("ed448", &["-algorithm", "ED448"]),
        (
            "p224",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-224"],
        ),
        (
            "p256",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        (
            "p384",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
        (
            "p521",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        ),
        (
            "k256",
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:secp256k1",
            ],
        ),
        (
            "bp256",
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:brainpoolP256r1",
            ],
        ),
        (
            "bp384",
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:brainpoolP384r1",
            ],
        ),
        (
            "bp512",
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:brainpoolP512t1",
            ],
        ),
        (
            "bp192",
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:brainpoolP192r1",
            ],
        ),
    ];
    let mut differ = Vec::new();
    for (name, options) in cases {
        let key = make_key(d, name, options)?;
        let leaf = make_leaf(d, name, key, &root)?;
        differ.extend(agree(name, &root, &leaf)?);
    }
    // DSA 2048 (parameters first).
    let params = d.join("dsa.params");
    openssl_ok(&os_args![
        "genpkey",
        "-genparam",
        "-algorithm",
        "DSA",
        "-pkeyopt",
        "dsa_paramgen_bits:2048",
        "-out",
        params
    ])?;
    let key = make_key(d, "dsa", &["-paramfile", params.to_str().ok_or("path")?])?;
    let leaf = make_leaf(d, "dsa", key, &root)?;
    differ.extend(agree("dsa", &root, &leaf)?);
    assert!(differ.is_empty(), "{differ:#?}");
    Ok(())
}

/// `leaf` (a P-256 key) with the unused-bits octet of its SubjectPublicKeyInfo's BIT STRING
/// set to `unused`, signed again by `root` (SHA-256, PKCS#1): a certificate whose signature
/// is good and whose key bits are not a whole number of octets. `None` when the point's
/// last octet has its low bit clear (OpenSSL would still read the point).
fn with_unused_key_bits(
    d: &Path,
    leaf: &Made,
    root: &Made,
    unused: u8,
) -> BoxResult<Option<Vec<u8>>> {
    let mut der = leaf.der.clone();
    let marker = [0x03, 0x42, 0x00, 0x04];
    let at = der
        .windows(marker.len())
        .position(|w| w == marker)
        .ok_or("no P-256 key bits in the leaf")?;
    if der[at + 3 + 64] & 1 == 0 {
        return Ok(None);
    }
    der[at + 2] = unused;
    // Certificate ::= SEQUENCE (4-byte header) { tbs SEQUENCE (4-byte header) ... }.
    assert_eq!((der[0], der[1], der[4], der[5]), (0x30, 0x82, 0x30, 0x82));
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
    Ok(Some(der))
}

// PINS: a leaf whose key BIT STRING has unused bits (a P-256 point that no longer reads) under a good signature is an error on the leaf (the certificate does not parse: `UnspecifiedError`), where OpenSSL at level 2 lists `X509_V_ERR_EE_KEY_TOO_SMALL` (`split_spki`'s "not weak" for such a key is never reached).
#[test]
fn a_leaf_key_with_unused_bits_is_listed_on_the_leaf() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let root = make_root(d)?;
    for attempt in 0..32 {
        let name = format!("p256_{attempt}");
        let key = make_key(
            d,
            &name,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        )?;
        let good = make_leaf(d, &name, key.clone(), &root)?;
        let Some(der) = with_unused_key_bits(d, &good, &root, 1)? else {
            continue;
        };
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
        assert_eq!(kinds(&our_list(&root, &good)), vec![]);
        let errors = our_list(&root, &bad);
        assert!(
            kinds(&errors).contains(&UnspecifiedError),
            "a leaf whose key bits have unused bits: {:?}",
            kinds(&errors)
        );
        return Ok(());
    }
    Err("no P-256 key with an odd last octet in 32 tries".into())
}

// Was a defect (round 37): a leaf key on a named curve OpenSSL knows but `weak_named_curve` does not list (the WAP/WTLS curves of 112 to 160 bits, Oakley's) verifies with no error in our verifier, where OpenSSL at level 2 lists `X509_V_ERR_EE_KEY_TOO_SMALL`: a named curve under 224 bits passes silently.
#[test]
fn every_named_curve_openssl_knows_agrees_with_openssl_level_2() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let root = make_root(d)?;
    let list = openssl_ok(&os_args!["ecparam", "-list_curves"])?;
    let curves: Vec<String> = list
        .lines()
        .filter_map(|l| l.split(':').next())
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty() && !c.contains(' '))
        .collect();
    assert!(curves.len() > 40, "{list}");
    let mut differ = Vec::new();
    let mut tried = 0;
    for curve in &curves {
        let opt = format!("ec_paramgen_curve:{curve}");
        let Ok(key) = make_key(d, curve, &["-algorithm", "EC", "-pkeyopt", &opt]) else {
            continue;
        };
        // A curve whose key cannot sign the request (not suitable for ECDSA) is skipped.
        let Ok(leaf) = make_leaf(d, curve, key, &root) else {
            continue;
        };
        tried += 1;
        differ.extend(agree(curve, &root, &leaf)?);
    }
    assert!(tried > 40, "only {tried} curves made a leaf");
    assert!(differ.is_empty(), "{differ:#?}");
    Ok(())
}
