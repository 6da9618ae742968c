//! The parses of the certificates peers sent last, shared by the handshakes of one
//! configuration (the rustls backend's [`ChainVerifier`](super::ChainVerifier), the
//! OpenSSL backend's engine): a client that connects to the same server again, or a
//! server whose clients come back with the same certificate, does not parse the same
//! bytes again on every handshake.
//!
//! A parse is a function of the bytes alone, and an entry is found only by comparing all
//! of them, so what a handshake gets from here is exactly what parsing its bytes would
//! give; dates, names, signatures and everything else are judged afresh on every
//! handshake. At most [`PEER_PARSES`] certificates of at most [`PEER_PARSE_MAX`] bytes
//! each, oldest out first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::verify::checks::ParsedCertificate;

/// How many certificates [`PeerParses`] keeps.
pub(crate) const PEER_PARSES: usize = 8;
/// The largest certificate [`PeerParses`] keeps (bytes of DER).
pub(crate) const PEER_PARSE_MAX: usize = 8 << 10;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct PeerParses(Mutex<VecDeque<Arc<ParsedCertificate>>>);

impl PeerParses {
    fn kept(&self) -> MutexGuard<'_, VecDeque<Arc<ParsedCertificate>>> {
        // Nothing is left half-done under this lock: a panic elsewhere cannot spoil it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `der` with its parse (as strict as `SslCertificate::from_der`: one DER certificate
    /// and nothing after it); `None` when it does not parse.
    pub(super) fn parse(&self, der: &[u8]) -> Option<Arc<ParsedCertificate>> {
        if let Some(hit) = self.kept().iter().find(|p| p.cert().der() == der) {
            return Some(Arc::clone(hit));
        }
        let parsed = Arc::new(ParsedCertificate::parse_peer(der)?);
        if der.len() <= PEER_PARSE_MAX {
            let mut kept = self.kept();
            // Another handshake may have kept the same bytes while this one parsed.
            if !kept.iter().any(|p| p.cert().der() == der) {
                if kept.len() >= PEER_PARSES {
                    kept.pop_front();
                }
                kept.push_back(Arc::clone(&parsed));
            }
        }
        Some(parsed)
    }

    /// The certificate of `der`: readable when it parses, else null with its bytes.
    #[cfg(feature = "openssl")]
    pub(crate) fn certificate(&self, der: &[u8]) -> crate::cert::SslCertificate {
        match self.parse(der) {
            Some(parsed) => parsed.cert().clone(),
            None => crate::cert::SslCertificate::from_unparsed_der(der),
        }
    }

    /// How many certificates are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept().len()
    }

    /// Whether the parse of `der` is kept.
    #[cfg(test)]
    pub(crate) fn keeps(&self, der: &[u8]) -> bool {
        self.kept().iter().any(|p| p.cert().der() == der)
    }
}
