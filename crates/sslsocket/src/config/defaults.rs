//! Process-wide defaults: the default configuration and the on-demand system CA store.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};

use crate::cert::SslCertificate;
use crate::config::SslConfiguration;

/// The process default, made on first use (so that every socket made from it shares one
/// engine, as the clones of any configuration do), and a generation that changes with
/// every replacement.
fn default_slot() -> &'static RwLock<SslConfiguration> {
    static DEFAULT: OnceLock<RwLock<SslConfiguration>> = OnceLock::new();
    DEFAULT.get_or_init(|| RwLock::new(SslConfiguration::default()))
}

static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's copy of the default and its generation: reading the default takes
    /// one atomic load, no lock, while it does not change.
    static CURRENT: RefCell<Option<(u64, SslConfiguration)>> = const { RefCell::new(None) };
}

/// The process-wide default configuration (Qt's defaults unless replaced).
pub fn default_configuration() -> SslConfiguration {
    let generation = GENERATION.load(Ordering::Acquire);
    let cached = CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, configuration)| configuration.clone())
    });
    if let Some(configuration) = cached {
        return configuration;
    }
    let configuration = match default_slot().read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    // Kept with the generation read before the value: a replacement in between is seen
    // (and read again) by the next call.
    CURRENT.with(|current| {
        *current.borrow_mut() = Some((generation, configuration.clone()));
    });
    configuration
}

/// Replaces the process-wide default configuration.
pub fn set_default_configuration(configuration: SslConfiguration) {
    let mut guard = match default_slot().write() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    *guard = configuration;
    GENERATION.fetch_add(1, Ordering::AcqRel);
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
