//! Differential certificate parsing: our `SslCertificate::from_der` against webpki's
//! `EndEntityCert` on the same bytes.
//!
//! Invariants: our parser never panics; every accessor of a certificate we accept works
//! (no panic) and DER/PEM round trips are exact. A certificate webpki accepts but we reject
//! is fine *for the parser* (a clean `Err`), but it is the case where a verifier could
//! fail open by skipping what it cannot read, so it is counted and reported at exit: the
//! `verify_differential` target checks the verifier turns such certificates into errors.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::CertificateDer;
use sslsocket::SslCertificate;
use sslsocket_fuzz::{exercise_certificate, timed};

/// Inputs webpki parsed and we did not (reported every power of two).
static WEBPKI_ONLY: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let ours = timed("SslCertificate::from_der", || SslCertificate::from_der(data));
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
                let n = WEBPKI_ONLY.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    eprintln!("cert_parse: {n} inputs webpki parses and we reject ({e})");
                }
            }
        }
    }
});
