//! Process-wide defaults: the default configuration and the on-demand system CA store.

use std::sync::{OnceLock, RwLock};

use crate::cert::SslCertificate;
use crate::config::SslConfiguration;

fn default_slot() -> &'static RwLock<Option<SslConfiguration>> {
    static DEFAULT: OnceLock<RwLock<Option<SslConfiguration>>> = OnceLock::new();
    DEFAULT.get_or_init(|| RwLock::new(None))
}

/// The process-wide default configuration (Qt's defaults unless replaced).
pub fn default_configuration() -> SslConfiguration {
    match default_slot().read() {
        Ok(guard) => guard.clone().unwrap_or_default(),
        Err(poisoned) => poisoned.into_inner().clone().unwrap_or_default(),
    }
}

/// Replaces the process-wide default configuration.
pub fn set_default_configuration(configuration: SslConfiguration) {
    match default_slot().write() {
        Ok(mut guard) => *guard = Some(configuration),
        Err(poisoned) => *poisoned.into_inner() = Some(configuration),
    }
}

/// The system's trusted CA certificates, loaded once on first use (Qt's
/// `systemCaCertificates()`). Honours `SSL_CERT_FILE` and `SSL_CERT_DIR`. Certificates
/// that do not parse are skipped.
pub fn system_ca_certificates() -> Vec<SslCertificate> {
    static SYSTEM: OnceLock<Vec<SslCertificate>> = OnceLock::new();
    SYSTEM.get_or_init(load_system).clone()
}

#[cfg(feature = "native-roots")]
fn load_system() -> Vec<SslCertificate> {
    let result = rustls_native_certs::load_native_certs();
    for error in &result.errors {
        tracing::warn!(%error, "system CA store");
    }
    result
        .certs
        .iter()
        .filter_map(|der| SslCertificate::from_der(der.as_ref()).ok())
        .collect()
}

#[cfg(not(feature = "native-roots"))]
fn load_system() -> Vec<SslCertificate> {
    Vec::new()
}
