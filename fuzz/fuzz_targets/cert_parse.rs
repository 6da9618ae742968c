//! Differential certificate parsing: our `SslCertificate::from_der` against webpki's
//! `EndEntityCert` on the same bytes.
//!
//! Invariants: our parser never panics; every accessor of a certificate we accept works
//! (no panic) and DER/PEM round trips are exact. A certificate webpki accepts but we reject
//! is fine *for the parser* (a clean `Err`), but it is the case where a verifier could
//! fail open by skipping what it cannot read. So for those inputs the verifier must report
//! an error both for the certificate as a leaf and appended to an otherwise valid chain
//! (it is counted too, and the count printed every power of two).
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::CertificateDer;
use sslsocket::verify::{ChainVerifier, Purpose};
use sslsocket::SslCertificate;
use sslsocket_fuzz::{exercise_certificate, small_pki, timed, BASE_TIME};

/// Inputs webpki parsed and we did not (reported every power of two).
static WEBPKI_ONLY: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let ours = timed("SslCertificate::from_der", || {
        SslCertificate::from_der(data)
    });
    let der = CertificateDer::from(data);
    let webpki_accepts = webpki::EndEntityCert::try_from(&der).is_ok();
    match ours {
        Ok(cert) => {
            assert_eq!(cert.der(), data, "the certificate is not the input bytes");
            timed("certificate accessors", || exercise_certificate(&cert));
        }
        Err(e) => {
            let _ = e.to_string();
            if webpki_accepts {
                let pki = small_pki();
                let ca = SslCertificate::from_der(&pki.ca_der).expect("CA");
                let verifier = ChainVerifier::new(vec![ca], Purpose::ServerAuth);
                let host = Some("localhost");
                let valid = verifier.verify_der(&[&pki.leaf_der], host, BASE_TIME);
                assert!(valid.is_empty(), "the small PKI does not verify: {valid:?}");
                let as_leaf = verifier.verify_der(&[data], host, BASE_TIME);
                assert!(!as_leaf.is_empty(), "an unparsable leaf was accepted");
                let appended = verifier.verify_der(&[&pki.leaf_der, data], host, BASE_TIME);
                assert!(
                    !appended.is_empty(),
                    "an unparsable extra certificate was skipped"
                );
                let n = WEBPKI_ONLY.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    eprintln!("cert_parse: {n} inputs webpki parses and we reject ({e})");
                }
            }
        }
    }
});
