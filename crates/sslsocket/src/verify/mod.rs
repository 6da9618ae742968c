//! Certificate verification that collects every error (Qt's rule), not only the first.

pub(crate) mod signature;

use crate::cert::SslCertificate;
use crate::ssl_error::SslError;

/// Trusted anchors. (Interim: replaced by the collector branch.)
pub struct TrustStore {
    certificates: Vec<SslCertificate>,
}

impl TrustStore {
    /// A store of these anchors.
    pub fn new(certificates: Vec<SslCertificate>) -> TrustStore {
        TrustStore { certificates }
    }
    /// The anchors.
    pub fn certificates(&self) -> &[SslCertificate] {
        &self.certificates
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }
}

/// What the certificate is checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A TLS server.
    ServerAuth,
    /// A TLS client.
    ClientAuth,
}

/// The inputs of one verification.
pub struct VerifyInput<'a> {
    /// The chain as the peer sent it, leaf first.
    pub chain: &'a [SslCertificate],
    /// The trust anchors.
    pub store: &'a TrustStore,
    /// The name to check, if any.
    pub host: Option<&'a str>,
    /// Server or client.
    pub purpose: Purpose,
    /// Now, in seconds since the epoch.
    pub now_unix: i64,
    /// At most this many intermediates (0 = no limit).
    pub max_depth: u32,
}

/// Every error of the chain. (Interim.)
pub fn collect_errors(_input: &VerifyInput<'_>) -> Vec<SslError> {
    Vec::new()
}
