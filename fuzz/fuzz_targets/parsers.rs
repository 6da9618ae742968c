//! Key, PKCS#12, PEM, DH (and, through the verifier, OCSP) parsers under a time budget.
//!
//! The first byte selects the parser, the rest is its input. Invariants: no panic, every
//! accessor of what parsed works, and no call takes longer than `TIME_BUDGET` (hostile
//! iteration counts, nesting or sizes must be refused, not computed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslsocket::cert::import_pkcs12;
use sslsocket::{SslCertificate, SslDiffieHellmanParameters, SslKey};
use sslsocket_fuzz::{exercise_certificate, exercise_key, timed};

/// The passphrase the seed corpus encrypts with (scripts in fuzz/gen-corpus.sh).
const PASSPHRASE: &[u8] = b"fuzz";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 10 {
        0 => key(timed("SslKey::from_data", || SslKey::from_data(input, None))),
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
                bundle.ca_certificates().iter().for_each(exercise_certificate);
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

/// OCSP responses are parsed only inside a verification; until the verifier's entry point
/// (`ChainVerifier::verify` with a staple) is available this selector is a no-op.
fn ocsp(_input: &[u8]) {}
