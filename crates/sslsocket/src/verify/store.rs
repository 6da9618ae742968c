//! The trusted anchors of a configuration, indexed for path building.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::cert::SslCertificate;

/// Trusted anchors, indexed by subject DN for path building. Built once per configuration.
///
/// Holds the CA certificates a configuration trusts (Qt's `caCertificates()`, plus the system
/// store when it is loaded). Any certificate in it ends a path as a trust anchor, self-signed
/// or not, as rustls and webpki treat anchors. Lookups match the raw DER bytes of a
/// certificate's issuer name to the raw bytes of an anchor's subject name.
#[derive(Clone, Default)]
pub struct TrustStore {
    certificates: Vec<SslCertificate>,
    by_subject: HashMap<Vec<u8>, Vec<usize>>,
    members: HashSet<SslCertificate>,
}

impl TrustStore {
    /// A store of `certificates`; duplicates (same DER) are kept once, in first-seen order.
    pub fn new(certificates: Vec<SslCertificate>) -> TrustStore {
        let mut store = TrustStore::default();
        for certificate in certificates {
            if store.members.contains(&certificate) {
                continue;
            }
            // An `SslCertificate` always parsed when it was made; one that somehow does not
            // is kept in the list (so `certificates()` reports what was given) but cannot be
            // found by name.
            if let Some(subject) = certificate.with_parsed(|x509| x509.subject().as_raw().to_vec())
            {
                store
                    .by_subject
                    .entry(subject)
                    .or_default()
                    .push(store.certificates.len());
            }
            store.members.insert(certificate.clone());
            store.certificates.push(certificate);
        }
        store
    }

    /// The trusted certificates, in the order given (without duplicates).
    pub fn certificates(&self) -> &[SslCertificate] {
        &self.certificates
    }

    /// Whether the store trusts nothing.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    /// Whether `cert` itself (same DER) is a trusted anchor.
    pub fn contains(&self, cert: &SslCertificate) -> bool {
        self.members.contains(cert)
    }

    /// The anchors whose subject name is exactly `subject` (raw DER of the name).
    pub(crate) fn by_subject(&self, subject: &[u8]) -> impl Iterator<Item = &SslCertificate> {
        self.by_subject
            .get(subject)
            .into_iter()
            .flatten()
            .filter_map(|index| self.certificates.get(*index))
    }
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore")
            .field("certificates", &self.certificates.len())
            .finish()
    }
}
