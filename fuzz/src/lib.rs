//! Helpers shared by the fuzz targets: calling every accessor of parsed values (they must
//! not panic, whatever the bytes were), and a time budget per parser call.

use std::time::{Duration, Instant};

use sslsocket::{DigestAlgorithm, SslCertificate, SslKey, SubjectInfo};

/// How long one parser call may take before it counts as a finding (the targets are
/// built optimized; a legitimate call on a fuzz-sized input takes microseconds).
pub const TIME_BUDGET: Duration = Duration::from_secs(1);

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
    assert_eq!(again.as_ref().ok(), Some(cert), "DER round trip changed the certificate");
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
pub mod der;
