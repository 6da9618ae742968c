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
