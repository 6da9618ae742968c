//! The trusted anchors of a configuration, indexed for path building.

use std::collections::HashMap;
use std::fmt;

use crate::cert::SslCertificate;

/// Trusted anchors, indexed by subject DN for path building. Built once per configuration.
///
/// Holds the CA certificates a configuration trusts (Qt's `caCertificates()`, plus the system
/// store when it is loaded). Any certificate in it ends a path as a trust anchor, self-signed
/// or not, as rustls and webpki treat anchors. Lookups match a
/// certificate's issuer name to an anchor's subject name as OpenSSL compares names (their
/// canonical forms: ASCII case and white space folded).
#[derive(Clone, Default)]
pub struct TrustStore {
    certificates: Vec<SslCertificate>,
    by_subject: HashMap<Vec<u8>, Vec<usize>>,
    /// The certificates by [`Fingerprint`], for [`contains`](Self::contains).
    members: HashMap<Fingerprint, Vec<usize>>,
}

/// A short key of a certificate's DER: its length and its last bytes (the end of its
/// signature, which differs between certificates). Asking whether a peer's certificate is
/// an anchor then hashes a few bytes, not the whole certificate; a match is confirmed on
/// the whole DER. Only anchors are stored under it, so a peer's choice of bytes can at
/// worst meet an anchor with the same key and be compared in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Fingerprint(usize, [u8; 16]);

impl Fingerprint {
    fn of(der: &[u8]) -> Fingerprint {
        let mut tail = [0u8; 16];
        let start = der.len().saturating_sub(tail.len());
        let end = &der[start..];
        tail[..end.len()].copy_from_slice(end);
        Fingerprint(der.len(), tail)
    }
}

impl TrustStore {
    /// A store of `certificates`; duplicates (same DER) are kept once, in first-seen order.
    pub fn new(certificates: Vec<SslCertificate>) -> TrustStore {
        let mut store = TrustStore::default();
        for certificate in certificates {
            if store.contains(&certificate) {
                continue;
            }
            // An `SslCertificate` always parsed when it was made; one that somehow does not
            // is kept in the list (so `certificates()` reports what was given) but cannot be
            // found by name.
            if let Some(subject) =
                certificate.with_parsed(|x509| crate::cert::name::canonical(x509.subject()))
            {
                store
                    .by_subject
                    .entry(subject)
                    .or_default()
                    .push(store.certificates.len());
            }
            store
                .members
                .entry(Fingerprint::of(certificate.der()))
                .or_default()
                .push(store.certificates.len());
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
        self.members
            .get(&Fingerprint::of(cert.der()))
            .into_iter()
            .flatten()
            .any(|index| self.certificates.get(*index) == Some(cert))
    }

    /// The anchors whose subject name is `subject`, in OpenSSL's canonical form
    /// ([`crate::cert::name::canonical`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn ca(name: &str) -> Result<SslCertificate, Box<dyn std::error::Error>> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        Ok(SslCertificate::from_der(params.self_signed(&key)?.der())?)
    }

    /// Membership is by the whole DER: a certificate with the same length and the same
    /// last bytes (the key the store files anchors under) but one byte changed is not an
    /// anchor; the anchor's own bytes, however they were taken, are.
    #[test]
    fn membership_is_by_the_whole_certificate() -> TestResult {
        let (a, b) = (ca("store test A")?, ca("store test B")?);
        let store = TrustStore::new(vec![a.clone(), b.clone(), a.clone()]);
        assert_eq!(store.certificates(), [a.clone(), b.clone()].as_slice());
        assert!(store.contains(&a) && store.contains(&b));
        assert!(!store.contains(&ca("store test C")?));
        let mut forged = a.der().to_vec();
        let middle = forged.len() / 2;
        forged[middle] ^= 0x01;
        assert_eq!(Fingerprint::of(&forged), Fingerprint::of(a.der()));
        assert!(!store.contains(&SslCertificate::from_unparsed_der(&forged)));
        assert!(store.contains(&SslCertificate::from_unparsed_der(a.der())));
        // Shorter than the key's tail: filed and found all the same.
        assert_eq!(Fingerprint::of(b"ab"), Fingerprint::of(b"ab"));
        assert_ne!(Fingerprint::of(b"ab"), Fingerprint::of(b"ab\0"));
        Ok(())
    }
}
