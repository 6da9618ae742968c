//! The backend registry answers like Qt's static backend API. The active backend is the
//! one `SSLSOCKET_BACKEND` names (the suite runs once per backend), rustls otherwise.

use sslsocket::backend::{self, ImplementedClass, SupportedFeature};
use sslsocket::SslProtocol;

/// The backend this process should be using: the environment's choice when it is
/// compiled in, else the default.
fn expected_backend() -> &'static str {
    let wanted = std::env::var("SSLSOCKET_BACKEND").unwrap_or_default();
    backend::available_backends()
        .into_iter()
        .find(|name| *name == wanted)
        .unwrap_or("rustls")
}

#[test]
fn the_environment_selected_backend_is_active_and_describes_itself() {
    let expected = expected_backend();
    assert!(backend::supports_ssl());
    assert!(backend::available_backends().contains(&"rustls"));
    assert_eq!(backend::active_backend(), Some(expected));
    assert_eq!(backend::set_active_backend(expected), Ok(()));
    assert!(backend::is_protocol_supported(
        SslProtocol::SecureProtocols,
        None
    ));
    assert!(backend::is_protocol_supported(SslProtocol::TlsV1_3, None));
    assert!(backend::is_feature_supported(
        SupportedFeature::ClientSideAlpn,
        None
    ));
    assert!(backend::is_feature_supported(
        SupportedFeature::CertificateVerification,
        None
    ));
    assert!(backend::is_class_implemented(
        ImplementedClass::Socket,
        None
    ));
    let version = backend::ssl_library_version_string();
    let prefix = match expected {
        "rustls" => "rustls 0.23",
        "openssl" => "OpenSSL ",
        _ => "",
    };
    assert!(
        !version.is_empty() && version.starts_with(prefix),
        "{expected}: {version}"
    );
    assert!(backend::ssl_library_version_number() > 0);
}

#[test]
fn rustls_describes_itself_whichever_backend_is_active() {
    assert!(backend::is_protocol_supported(
        SslProtocol::TlsV1_3,
        Some("rustls")
    ));
    assert!(!backend::is_protocol_supported(
        SslProtocol::TlsV1_0,
        Some("rustls")
    ));
    assert!(!backend::is_feature_supported(
        SupportedFeature::Psk,
        Some("rustls")
    ));
    assert!(backend::is_feature_supported(
        SupportedFeature::Ocsp,
        Some("rustls")
    ));
}

#[test]
fn an_unknown_backend_is_refused_and_supports_nothing() {
    match backend::set_active_backend("TheQtTLS") {
        Err(e @ backend::BackendError::Unknown { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("`TheQtTLS`") && text.contains("rustls"),
                "{text}"
            );
        }
        other => unreachable!("TheQtTLS: {other:?}"),
    }
    assert!(backend::supported_protocols(Some("TheQtTLS")).is_empty());
    assert!(backend::supported_features(Some("TheQtTLS")).is_empty());
    assert!(backend::implemented_classes(Some("TheQtTLS")).is_empty());
    assert_eq!(backend::active_backend(), Some(expected_backend()));
}

#[cfg(not(feature = "openssl"))]
#[test]
fn a_backend_left_out_of_the_build_is_named_with_its_feature() {
    let e = backend::set_active_backend("openssl");
    assert_eq!(
        e,
        Err(backend::BackendError::NotCompiledIn {
            name: "openssl".into(),
            feature: "openssl",
        })
    );
    let text = e.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("cargo feature `openssl`"), "{text}");
}

#[cfg(feature = "openssl")]
#[test]
fn the_other_backend_is_refused_once_one_was_used() -> Result<(), Box<dyn std::error::Error>> {
    // Starting a handshake marks the active backend as used.
    let active = expected_backend();
    let other = if active == "rustls" {
        "openssl"
    } else {
        "rustls"
    };
    let mut core = sslsocket::core::SslCore::new(sslsocket::SslConfiguration::default());
    core.handle_state(sslsocket::SocketState::ConnectedState);
    core.start_client_encryption("localhost")?;
    match backend::set_active_backend(other) {
        Err(backend::BackendError::AlreadyInUse { name, active: used }) => {
            assert_eq!((name.as_str(), used), (other, active));
        }
        result => return Err(format!("{other} after {active} was used: {result:?}").into()),
    }
    backend::set_active_backend(active)?;
    Ok(())
}

#[test]
fn each_backend_lists_its_own_ciphers_and_groups() {
    let rustls = backend::supported_ciphers(Some("rustls"));
    assert!(rustls.iter().any(|c| c.name() == "TLS_AES_128_GCM_SHA256"));
    // rustls has no CBC suites; every one of its suites is an AEAD.
    assert!(
        rustls.iter().all(|c| !c.name().contains("CBC")),
        "{rustls:?}"
    );
    assert!(backend::supported_elliptic_curves(Some("rustls"))
        .iter()
        .any(|g| g.short_name() == "X25519"));
    assert!(backend::supported_ciphers(Some("TheQtTLS")).is_empty());
    assert_eq!(
        sslsocket::SslConfiguration::supported_ciphers(),
        backend::supported_ciphers(None)
    );
    assert_eq!(
        backend::supported_ciphers(None),
        backend::supported_ciphers(Some(expected_backend()))
    );
    #[cfg(feature = "openssl")]
    {
        let openssl = backend::supported_ciphers(Some("openssl"));
        let cbc = openssl
            .iter()
            .find(|c| c.name() == "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA");
        assert!(cbc.is_some(), "{openssl:?}");
        assert_eq!(
            cbc.map(|c| (
                c.openssl_name(),
                c.key_exchange_method(),
                c.authentication_method()
            )),
            Some(("ECDHE-RSA-AES128-SHA", "ECDH", "RSA"))
        );
        assert!(openssl
            .iter()
            .any(|c| c.name() == "TLS_PSK_WITH_AES_128_GCM_SHA256"));
        assert!(openssl.iter().any(|c| c.name() == "TLS_AES_256_GCM_SHA384"));
        // No suite without authentication or encryption.
        assert!(openssl
            .iter()
            .all(|c| !c.name().contains("_anon_") && !c.name().contains("NULL")));
        // A name only the OpenSSL backend knows is still a cipher to configure.
        assert_eq!(
            sslsocket::SslCipher::from_name(
                "ECDHE-RSA-AES128-SHA",
                sslsocket::SslProtocol::UnknownProtocol
            )
            .map(|c| c.name().to_string()),
            Some("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".to_string())
        );
        assert!(backend::supported_elliptic_curves(Some("openssl"))
            .iter()
            .any(|g| g.short_name() == "secp256r1"));
    }
}
