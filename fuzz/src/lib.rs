//! Helpers shared by the fuzz targets: calling every accessor of parsed values (they must
//! not panic, whatever the bytes were), and a time budget per parser call.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sslsocket::{DigestAlgorithm, SslCertificate, SslKey, SubjectInfo};

pub mod der;

/// How long one parser call may take before it counts as a finding. The library caps key
/// derivation at 2 M iterations per derivation and 10 M per PKCS#12 file whatever the hash
/// (SHA-512 at 2 M takes about 1.5 s here, a full 10 M PKCS#12 budget up to about 7 s):
/// legitimate, bounded work. What this budget catches is unbounded work (a cap that does
/// not hold, quadratic parsing), which takes minutes to hours, not seconds.
pub const TIME_BUDGET: Duration = Duration::from_secs(10);

/// Runs `f`, panics (a fuzz finding) when it takes longer than [`TIME_BUDGET`].
pub fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(
        took <= TIME_BUDGET,
        "{what} took {took:?} (budget {TIME_BUDGET:?})"
    );
    out
}

const DIGESTS: [DigestAlgorithm; 5] = [
    DigestAlgorithm::Md5,
    DigestAlgorithm::Sha1,
    DigestAlgorithm::Sha256,
    DigestAlgorithm::Sha384,
    DigestAlgorithm::Sha512,
];

const INFOS: [SubjectInfo; 9] = [
    SubjectInfo::Organization,
    SubjectInfo::CommonName,
    SubjectInfo::LocalityName,
    SubjectInfo::OrganizationalUnitName,
    SubjectInfo::CountryName,
    SubjectInfo::StateOrProvinceName,
    SubjectInfo::DistinguishedNameQualifier,
    SubjectInfo::SerialNumber,
    SubjectInfo::EmailAddress,
];

/// Calls every accessor of a parsed certificate, and checks the round trips through DER
/// and PEM give the same certificate.
pub fn exercise_certificate(cert: &SslCertificate) {
    let _ = cert.subject_rfc4514();
    let _ = cert.issuer_rfc4514();
    let _ = cert.serial_number();
    let _ = cert.version();
    let _ = (cert.effective_date(), cert.expiry_date());
    let _ = (cert.effective_date_rfc3339(), cert.expiry_date_rfc3339());
    for name in cert.subject_alternative_names() {
        let _ = name.to_string();
    }
    let _ = cert.has_subject_alternative_name();
    let _ = cert.subject_common_names();
    for ext in cert.extensions() {
        let _ = (ext.oid(), ext.name(), ext.value(), ext.is_critical());
        let _ = (ext.is_supported(), ext.raw_value());
    }
    let _ = cert.to_text();
    for algorithm in DIGESTS {
        let _ = cert.digest(algorithm);
        let _ = cert.digest_hex(algorithm);
    }
    for info in INFOS {
        let _ = cert.subject_info(info);
        let _ = cert.issuer_info(info);
        let _ = cert.subject_info_by_oid(info.oid());
        let _ = cert.issuer_info_by_oid(info.oid());
    }
    let _ = cert.subject_info_attributes();
    let _ = cert.issuer_info_attributes();
    let _ = cert.subject_display_name();
    let _ = cert.issuer_display_name();
    if let Some(key) = cert.public_key() {
        exercise_key(&key);
    }
    let _ = cert.is_self_signed();
    let _ = cert.public_key_sha256();
    let _ = cert.public_key_algorithm_name();
    let _ = cert.sha256_hex();
    let _ = format!("{cert:?}");

    let again = SslCertificate::from_der(cert.der());
    assert_eq!(
        again.as_ref().ok(),
        Some(cert),
        "DER round trip changed the certificate"
    );
    let pem = cert.to_pem();
    match SslCertificate::from_pem(pem.as_bytes()) {
        Ok(list) => assert_eq!(list, vec![cert.clone()], "PEM round trip changed it"),
        Err(e) => panic!("PEM of a parsed certificate does not parse: {e}"),
    }
}

/// Calls every accessor of a parsed key, and its encoders.
pub fn exercise_key(key: &SslKey) {
    let _ = (key.algorithm(), key.key_type(), key.length());
    let _ = key.to_der();
    let _ = key.to_pkcs8_der();
    let _ = key.to_pem(None);
    let _ = key.private_key_der();
    let _ = format!("{key:?}");
}

/// 2026-01-01T00:00:00Z, a time inside every validity window the targets make.
pub const BASE_TIME: i64 = 1_767_225_600;

/// A root CA and a serverAuth leaf for "localhost" it signed (valid 2020..2100), made
/// once per process with rcgen (keys are never written anywhere).
pub struct SmallPki {
    /// The root (DER).
    pub ca_der: Vec<u8>,
    /// The leaf (DER).
    pub leaf_der: Vec<u8>,
    /// The leaf's private key (PKCS#8 DER).
    pub leaf_key_der: Vec<u8>,
}

/// The process's [`SmallPki`].
pub fn small_pki() -> &'static SmallPki {
    static PKI: OnceLock<SmallPki> = OnceLock::new();
    PKI.get_or_init(make_small_pki)
}

fn make_small_pki() -> SmallPki {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Fuzz Root CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    ca_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let ca_der = ca_params.self_signed(&ca_key).expect("CA").der().to_vec();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    leaf_params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_der = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf")
        .der()
        .to_vec();
    SmallPki {
        ca_der,
        leaf_der,
        leaf_key_der: leaf_key.serialize_der(),
    }
}
