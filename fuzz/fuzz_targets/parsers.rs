//! Key, PKCS#12, PEM, DH and (through the verifier) OCSP parsers under a time budget.
//!
//! The first byte selects the parser, the rest is its input. Invariants: no panic, every
//! accessor of what parsed works, and no call takes longer than `TIME_BUDGET` (hostile
//! iteration counts, nesting or sizes must be refused, not computed).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::{CertificateDer, UnixTime};
use sslsocket::cert::import_pkcs12;
use sslsocket::verify::{ChainVerifier, Purpose};
use sslsocket::{SslCertificate, SslDiffieHellmanParameters, SslKey};
use sslsocket_fuzz::{exercise_certificate, exercise_key, timed};

/// The passphrase the seed corpus encrypts with (scripts in fuzz/gen-corpus.sh).
const PASSPHRASE: &[u8] = b"fuzz";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 10 {
        0 => key(timed("SslKey::from_data", || {
            SslKey::from_data(input, None)
        })),
        1 => key(timed("SslKey::from_data(passphrase)", || {
            SslKey::from_data(input, Some(PASSPHRASE))
        })),
        2 => key(timed("SslKey::from_der", || SslKey::from_der(input))),
        3 => key(timed("SslKey::from_public_key_der", || {
            SslKey::from_public_key_der(input)
        })),
        4 | 5 => {
            let passphrase = if selector % 10 == 4 { PASSPHRASE } else { b"" };
            let bundle = timed("import_pkcs12", || import_pkcs12(input, passphrase));
            if let Ok(bundle) = bundle {
                exercise_key(bundle.key());
                exercise_certificate(bundle.certificate());
                bundle
                    .ca_certificates()
                    .iter()
                    .for_each(exercise_certificate);
            }
        }
        6 => certificates(timed("SslCertificate::from_pem", || {
            SslCertificate::from_pem(input)
        })),
        7 => certificates(timed("SslCertificate::from_data", || {
            SslCertificate::from_data(input)
        })),
        9 => ocsp(input),
        _ => {
            let dh = timed("SslDiffieHellmanParameters::from_encoded", || {
                SslDiffieHellmanParameters::from_encoded(input)
            });
            let _ = (dh.is_empty(), dh.is_valid(), dh.error(), dh.error_string());
            let der = dh.to_der();
            let _ = dh.to_pem();
            if dh.is_valid() {
                let again = SslDiffieHellmanParameters::from_encoded(&der);
                assert!(again.is_valid(), "valid DH parameters do not re-parse");
                assert_eq!(again.to_der(), der, "DH DER round trip changed them");
            }
        }
    }
});

fn key(parsed: Result<SslKey, sslsocket::ConfigError>) {
    match parsed {
        Ok(key) => exercise_key(&key),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn certificates(parsed: Result<Vec<SslCertificate>, sslsocket::ConfigError>) {
    match parsed {
        Ok(list) => {
            assert!(!list.is_empty(), "Ok with no certificate");
            list.iter().for_each(exercise_certificate);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// A stapled OCSP response, checked the one public way there is: a verification with
/// stapling on. Input: <now: i64 BE> <u16 BE length> <leaf DER> <u16 BE length> <issuer
/// DER> <response DER> (fuzz/gen-corpus.sh writes ones openssl made for its leaf and CA).
fn ocsp(input: &[u8]) {
    fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (input.get(..n)?, input.get(n..)?);
        *input = tail;
        Some(head)
    }
    let mut rest = input;
    let Some(now) = take(&mut rest, 8) else {
        return;
    };
    let now = i64::from_be_bytes(now.try_into().unwrap_or_default());
    let Some(n) = take(&mut rest, 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
        return;
    };
    let Some(leaf) = take(&mut rest, n) else {
        return;
    };
    let Some(n) = take(&mut rest, 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
        return;
    };
    let Some(issuer) = take(&mut rest, n) else {
        return;
    };
    let staple = rest;
    let Ok(issuer_cert) = SslCertificate::from_der(issuer) else {
        return;
    };
    let verifier = ChainVerifier::new(vec![issuer_cert], Purpose::ServerAuth).with_ocsp(true);
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0).unsigned_abs()));
    let report = timed("ChainVerifier::verify with an OCSP staple", || {
        verifier.verify(
            &CertificateDer::from(leaf),
            &[CertificateDer::from(issuer)],
            Some("localhost"),
            staple,
            time,
        )
    });
    for response in &report.ocsp_responses {
        let _ = (response.certificate_status(), response.revocation_reason());
        let _ = (response.responder(), response.subject());
    }
    for error in &report.errors {
        let _ = error.to_string();
    }
    if std::env::var_os("FUZZ_VERBOSE").is_some() {
        let statuses: Vec<_> = report
            .ocsp_responses
            .iter()
            .map(|r| (r.certificate_status(), r.revocation_reason()))
            .collect();
        eprintln!("parsers: OCSP {statuses:?}, errors {:?}", report.errors);
    }
}
