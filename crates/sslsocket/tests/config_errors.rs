//! `ConfigError` says what kind of problem it is (`kind()`), and an operating-system error
//! behind it stays reachable as its `source()`, through `sslsocket::Error` too. The key
//! mismatch is found by the backend in use (run once per backend by `scripts/test`).

mod support;

use std::error::Error as _;
use std::io;

use sslsocket::core::SslCore;
use sslsocket::{ConfigErrorKind, SocketState, SslCertificate, SslConfiguration, SslKey};
use support::Pki;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_missing_file_is_an_io_error_whose_source_is_the_operating_systems() -> TestResult {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("no-such-ca.pem");
    let e = SslCertificate::from_file(&missing)
        .err()
        .ok_or("a missing file was read")?;
    assert_eq!(e.kind(), ConfigErrorKind::Io);
    let source = e.source().ok_or("no source")?;
    let io_error = source
        .downcast_ref::<io::Error>()
        .ok_or("the source is not an io::Error")?;
    assert_eq!(io_error.kind(), io::ErrorKind::NotFound);
    assert_eq!(
        e.io_error().map(io::Error::kind),
        Some(io::ErrorKind::NotFound)
    );
    // One level per Display (the file), the cause in `source()`; `message()` has both.
    assert!(e.to_string().contains("no-such-ca.pem"), "{e}");
    assert!(!e.to_string().contains(&io_error.to_string()), "{e}");
    assert!(
        e.message().ends_with(&io_error.to_string()),
        "{}",
        e.message()
    );

    // The same through the crate's `Error`, as an application sees it.
    let error = sslsocket::Error::from(e);
    let source = error.source().ok_or("no source through Error")?;
    assert!(source.downcast_ref::<io::Error>().is_some(), "{source:?}");

    let e = SslKey::from_file(&missing, None)
        .err()
        .ok_or("a missing key was read")?;
    assert_eq!(e.kind(), ConfigErrorKind::Io);
    assert!(e.source().is_some());
    Ok(())
}

#[test]
fn bad_data_and_passphrases_have_their_own_kinds() -> TestResult {
    let e = SslCertificate::from_pem(b"-----BEGIN CERTIFICATE-----\nnot base64!\n")
        .err()
        .ok_or("garbage parsed as a certificate")?;
    assert_eq!(e.kind(), ConfigErrorKind::Malformed, "{e}");
    assert!(e.source().is_none());

    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let key = SslKey::from_der(&leaf.key_der)?;
    let encrypted = key.to_pem(Some(b"right"))?;
    let e = SslKey::from_pem(encrypted.as_bytes(), None)
        .err()
        .ok_or("an encrypted key read without a passphrase")?;
    assert_eq!(e.kind(), ConfigErrorKind::PassphraseRequired, "{e}");
    let e = SslKey::from_pem(encrypted.as_bytes(), Some(b"wrong"))
        .err()
        .ok_or("an encrypted key read with the wrong passphrase")?;
    assert_eq!(e.kind(), ConfigErrorKind::WrongPassphrase, "{e}");
    assert_eq!(SslKey::from_pem(encrypted.as_bytes(), Some(b"right"))?, key);
    Ok(())
}

#[test]
fn an_unknown_cipher_is_unsupported_and_an_empty_list_invalid() -> TestResult {
    let mut configuration = SslConfiguration::default();
    let e = configuration
        .set_ciphers_str("TLS_NO_SUCH_CIPHER")
        .err()
        .ok_or("an unknown cipher was accepted")?;
    assert_eq!(e.kind(), ConfigErrorKind::Unsupported, "{e}");
    let e = configuration
        .set_ciphers_str(":")
        .err()
        .ok_or("an empty cipher list was accepted")?;
    assert_eq!(e.kind(), ConfigErrorKind::InvalidSetting, "{e}");
    Ok(())
}

#[test]
fn a_key_of_another_certificate_is_a_key_mismatch() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let other = pki.leaf("other.example", &["other.example"])?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate(SslCertificate::from_der(&leaf.cert_der)?)
        .set_private_key(SslKey::from_der(&other.key_der)?);
    let mut core = SslCore::new(configuration);
    core.handle_state(SocketState::ConnectedState);
    let error = core
        .start_server_encryption()
        .err()
        .ok_or("a server started with another certificate's key")?;
    match error {
        sslsocket::Error::Config(e) => {
            assert_eq!(e.kind(), ConfigErrorKind::KeyMismatch, "{e}");
            // The same words on every backend (this file runs on both), not the
            // backend's own (OpenSSL's is a library error stack with a source path).
            assert_eq!(
                e.to_string(),
                "local certificate and private key: the private key is not the \
                 certificate's (its public key differs from the certificate's)"
            );
        }
        other => return Err(format!("not a configuration error: {other:?}").into()),
    }
    Ok(())
}
