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
    assert!(backend::set_active_backend(expected));
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
    assert!(!backend::set_active_backend("TheQtTLS"));
    assert!(backend::supported_protocols(Some("TheQtTLS")).is_empty());
    assert!(backend::supported_features(Some("TheQtTLS")).is_empty());
    assert!(backend::implemented_classes(Some("TheQtTLS")).is_empty());
    assert_eq!(backend::active_backend(), Some(expected_backend()));
}
