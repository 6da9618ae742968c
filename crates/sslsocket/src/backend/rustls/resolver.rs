//! The server's certificate, with an OCSP staple that can be replaced while it runs.

use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::OcspStaple;

/// Hands out our certified key with the configuration's current staple; rebuilds the
/// shared value only when the staple changed.
pub(crate) struct StapleResolver {
    base: Arc<CertifiedKey>,
    staple: OcspStaple,
    current: RwLock<(u64, Arc<CertifiedKey>)>,
}

impl StapleResolver {
    pub(crate) fn new(base: CertifiedKey, staple: OcspStaple) -> StapleResolver {
        let base = Arc::new(base);
        let (version, response) = staple.get();
        let first = Arc::new(with_staple(&base, response));
        StapleResolver {
            base,
            staple,
            current: RwLock::new((version, first)),
        }
    }
}

fn with_staple(base: &CertifiedKey, response: Option<Vec<u8>>) -> CertifiedKey {
    let mut key = base.clone();
    key.ocsp = response;
    key
}

impl fmt::Debug for StapleResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StapleResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for StapleResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // Every handshake: one atomic load and a shared read; the staple is copied and the
        // key rebuilt only after a replacement.
        let version = self.staple.version();
        {
            let current = match self.current.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if current.0 == version {
                return Some(Arc::clone(&current.1));
            }
        }
        let (version, response) = self.staple.get();
        let mut current = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if current.0 != version {
            *current = (version, Arc::new(with_staple(&self.base, response)));
        }
        Some(Arc::clone(&current.1))
    }
}
