//! Finite-field DHE on the OpenSSL backend: our server with Diffie-Hellman parameters,
//! `openssl s_client` as the peer. The backend is chosen process-wide before first use,
//! so these tests live in their own binary and every one selects it first.
#![cfg(feature = "openssl")]

mod support;

use std::io::Write;
use std::thread;
use std::time::Duration;

use sslsocket::backend::{self, ImplementedClass};
use sslsocket::blocking::SslServer;
use sslsocket::core::SslCore;
use sslsocket::prelude::*;
use sslsocket::{
    DhError, Error, SocketState, SslCertificate, SslConfiguration, SslDiffieHellmanParameters,
    SslKey, SslProtocol,
};
use support::{os_args, OpensslClient, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

fn use_openssl() -> TestResult {
    Ok(backend::set_active_backend("openssl")?)
}

/// A TLS 1.2 server configuration allowing only `TLS_DHE_RSA_WITH_AES_128_GCM_SHA256`.
fn dhe_server(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let leaf = pki.rsa_leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(SslCertificate::from_file(&leaf.chain_pem)?)
        .set_private_key(SslKey::from_file(&leaf.key_pem, None)?)
        .set_protocol(SslProtocol::TlsV1_2)
        .set_ciphers_str("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256")?;
    Ok(configuration)
}

#[test]
fn the_openssl_backend_implements_diffie_hellman_and_rustls_does_not() {
    assert!(backend::is_class_implemented(
        ImplementedClass::DiffieHellman,
        Some("openssl")
    ));
    assert!(!backend::is_class_implemented(
        ImplementedClass::DiffieHellman,
        Some("rustls")
    ));
}

#[test]
fn s_client_negotiates_dhe_with_the_default_parameters() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let mut configuration = dhe_server(&pki)?;
    configuration.set_diffie_hellman_parameters(SslDiffieHellmanParameters::default_parameters());
    negotiates_dhe(&pki, configuration)
}

#[test]
fn without_parameters_openssl_chooses_a_group_itself() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let configuration = dhe_server(&pki)?;
    assert!(configuration.diffie_hellman_parameters().is_empty());
    // `SSL_CTX_set_dh_auto`: for a 2048-bit RSA key, ffdhe2048.
    negotiates_dhe(&pki, configuration)
}

/// Serves one echo over `configuration`; s_client must negotiate DHE with 2048-bit DH.
fn negotiates_dhe(pki: &Pki, configuration: SslConfiguration) -> TestResult {
    let listener = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = listener.local_addr().port();
    let served = thread::spawn(move || -> Result<(Vec<u8>, String), String> {
        let socket = listener.next_connection(WAIT).map_err(|e| e.to_string())?;
        let mut socket = socket.map_err(|s| s.error_string())?;
        socket
            .wait_for_ready_read(WAIT)
            .map_err(|e| e.to_string())?;
        let line = socket.read_line(0);
        socket.write_all(&line).map_err(|e| e.to_string())?;
        socket.flush().map_err(|e| e.to_string())?;
        let cipher = socket
            .session_cipher()
            .map(|c| format!("{} {}", c.name(), c.key_exchange_method()))
            .unwrap_or_default();
        let _ = socket.close();
        Ok((line, cipher))
    });
    let output = OpensslClient::run(
        port,
        &os_args![
            "-CAfile",
            pki.root_pem(),
            "-tls1_2",
            "-cipher",
            "DHE-RSA-AES128-GCM-SHA256",
            "-verify_return_error",
            "-ign_eof"
        ],
        b"ping over DHE\n",
        WAIT,
    )?;
    let (line, cipher) = served.join().map_err(|_| "server thread panicked")??;
    let text = output.combined();
    assert_eq!(line, b"ping over DHE\n", "{text}");
    assert_eq!(cipher, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 DH");
    assert!(text.contains("DHE-RSA-AES128-GCM-SHA256"), "{text}");
    assert!(text.contains("Server Temp Key: DH, 2048 bits"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    Ok(())
}

#[test]
fn invalid_parameters_fail_before_any_byte() -> TestResult {
    use_openssl()?;
    let pki = Pki::new()?;
    let mut configuration = dhe_server(&pki)?;
    let garbage = SslDiffieHellmanParameters::from_encoded(b"not parameters");
    assert_eq!(garbage.error(), DhError::InvalidInputDataError);
    configuration.set_diffie_hellman_parameters(garbage);
    let mut core = SslCore::new(configuration);
    core.handle_state(SocketState::ConnectedState);
    let error = core
        .start_server_encryption()
        .err()
        .ok_or("invalid parameters should refuse the handshake")?;
    assert!(matches!(error, Error::Config(_)), "{error}");
    assert!(error.to_string().contains("Diffie-Hellman"), "{error}");
    let mut wire = Vec::new();
    core.poll_transmit(&mut wire);
    assert!(wire.is_empty());
    Ok(())
}
