//! The one crypto provider every part of the crate uses (aws-lc-rs), built once.
//!
//! Passed explicitly everywhere (`builder_with_provider`), never installed as the process
//! default, so an application that installs another provider is not disturbed.

use std::sync::{Arc, OnceLock};

use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};

/// The shared provider.
pub(crate) fn provider() -> &'static Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The provider's signature verification algorithms.
pub(crate) fn algorithms() -> &'static WebPkiSupportedAlgorithms {
    &provider().signature_verification_algorithms
}

/// Every cipher suite of the provider, described.
pub(crate) fn supported_ciphers() -> Vec<crate::cert::SslCipher> {
    rustls::crypto::aws_lc_rs::ALL_CIPHER_SUITES
        .iter()
        .filter_map(|suite| {
            let protocol = match suite.version().version {
                rustls::ProtocolVersion::TLSv1_3 => crate::enums::SslProtocol::TlsV1_3,
                _ => crate::enums::SslProtocol::TlsV1_2,
            };
            crate::cert::SslCipher::from_table(&suite_name(*suite), protocol)
        })
        .collect()
}

/// Every key exchange group of the provider.
pub(crate) fn supported_groups() -> Vec<crate::curve::SslEllipticCurve> {
    rustls::crypto::aws_lc_rs::ALL_KX_GROUPS
        .iter()
        .filter_map(|g| {
            crate::curve::SslEllipticCurve::from_short_name(&crate::curve::from_rustls(g.name()))
        })
        .collect()
}

/// The IANA name of a suite (rustls spells TLS 1.3 suites `TLS13_...`).
pub(crate) fn suite_name(suite: rustls::SupportedCipherSuite) -> String {
    suite
        .suite()
        .as_str()
        .unwrap_or("unknown")
        .replacen("TLS13_", "TLS_", 1)
}

/// The provider for a configuration: the shared one, or a copy restricted to the
/// configuration's ciphers and groups, in its order of preference.
pub(crate) fn provider_for(
    configuration: &crate::config::SslConfiguration,
) -> Result<Arc<CryptoProvider>, crate::error::ConfigError> {
    if configuration.ciphers().is_empty() && configuration.elliptic_curves().is_empty() {
        return Ok(Arc::clone(provider()));
    }
    let mut custom = CryptoProvider::clone(provider());
    if !configuration.ciphers().is_empty() {
        custom.cipher_suites = configuration
            .ciphers()
            .iter()
            .filter_map(|c| {
                rustls::crypto::aws_lc_rs::ALL_CIPHER_SUITES
                    .iter()
                    .find(|s| suite_name(**s) == c.name())
                    .copied()
            })
            .collect();
        if custom.cipher_suites.is_empty() {
            return Err(crate::error::ConfigError::unsupported(
                "none of the ciphers is supported by the rustls backend",
            ));
        }
    }
    if !configuration.elliptic_curves().is_empty() {
        custom.kx_groups = configuration
            .elliptic_curves()
            .iter()
            .filter_map(|c| {
                rustls::crypto::aws_lc_rs::ALL_KX_GROUPS
                    .iter()
                    .find(|g| crate::curve::from_rustls(g.name()) == c.short_name())
                    .copied()
            })
            .collect();
        if custom.kx_groups.is_empty() {
            return Err(crate::error::ConfigError::unsupported(
                "none of the key exchange groups is supported by the rustls backend",
            ));
        }
    }
    Ok(Arc::new(custom))
}
