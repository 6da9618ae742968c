//! Certificate verification that collects every error (Qt's rule), not only the first.
//!
//! rustls and webpki stop at the first problem of a chain; Qt reports all of them, each tied
//! to its certificate, and lets the application ignore exactly the ones it expects. This
//! module builds the path itself and checks each property on its own, reproducing the
//! errors OpenSSL's `X509_verify_cert` reports to Qt (see [`collect_errors`] for the rules),
//! so ignore lists are portable between backends. Every signature is checked with the
//! crypto provider's algorithms; nothing here does cryptography of its own.
//!
//! [`TrustStore`] is built once per configuration; [`collect_errors`] runs per handshake;
//! [`SslCertificate::verify`](crate::SslCertificate::verify) is Qt's
//! `QSslCertificate::verify` over the process default CA set.

mod api;
pub(crate) mod blocklist;
mod chain;
pub(crate) mod checks;
pub(crate) mod constraints;
pub(crate) mod hooks;
pub(crate) mod hostname;
pub(crate) mod kept;
mod path;
mod policy;
pub(crate) mod record;
pub(crate) mod signature;
pub(crate) mod staple;
mod store;
mod strict_der;
#[cfg(test)]
mod test_pki;
#[cfg(test)]
mod tests;
mod verifier;
#[cfg(test)]
mod verifier_tests;

pub use chain::{collect_errors, Purpose, VerifyInput, MAX_INTERMEDIATES};
pub use hooks::{PreSharedKeyAuthenticator, SslHooks, Verdict};
pub(crate) use policy::now_unix;
pub use policy::{Decision, Judgement, Outcome, Verification, VerifyPolicy};
pub use store::TrustStore;
pub use verifier::{ChainReport, ChainVerifier};

pub(crate) use checks::unusable as unusable_certificate;
