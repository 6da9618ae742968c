//! The backend registry answers like Qt's static backend API.

use sslsocket::backend::{self, ImplementedClass, SupportedFeature};
use sslsocket::SslProtocol;

#[test]
fn the_rustls_backend_is_available_active_and_describes_itself() {
    assert!(backend::supports_ssl());
    assert!(backend::available_backends().contains(&"rustls"));
    assert_eq!(backend::active_backend(), Some("rustls"));
    assert!(backend::set_active_backend("rustls"));
    assert!(backend::is_protocol_supported(
        SslProtocol::SecureProtocols,
        None
    ));
    assert!(backend::is_protocol_supported(
        SslProtocol::TlsV1_3,
        Some("rustls")
    ));
    assert!(!backend::is_protocol_supported(
        SslProtocol::TlsV1_0,
        Some("rustls")
    ));
    assert!(backend::is_feature_supported(
        SupportedFeature::ClientSideAlpn,
        None
    ));
    assert!(!backend::is_feature_supported(
        SupportedFeature::Psk,
        Some("rustls")
    ));
    assert!(backend::is_class_implemented(
        ImplementedClass::Socket,
        None
    ));
    assert!(backend::ssl_library_version_string().starts_with("rustls 0.23"));
    assert!(backend::ssl_library_version_number() > 0);
}

#[test]
fn an_unknown_backend_is_refused_and_supports_nothing() {
    assert!(!backend::set_active_backend("TheQtTLS"));
    assert!(backend::supported_protocols(Some("TheQtTLS")).is_empty());
    assert!(backend::supported_features(Some("TheQtTLS")).is_empty());
    assert!(backend::implemented_classes(Some("TheQtTLS")).is_empty());
    assert_eq!(backend::active_backend(), Some("rustls"));
}
