//! A running server's configuration, replaceable while it serves (certificate hot reload).

use std::fmt;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::config::{ServerCredentials, SslConfiguration};
use crate::enums::SslMode;
use crate::error::ConfigError;

/// Replaces a running server's certificate, key, OCSP staple and server-name map (from
/// `SslServer::reload_handle` on either driver). Cloneable and `Send + Sync`: keep one in
/// a signal handler or an admin task.
///
/// Handshakes that start after a replacement use the new credentials; connections already
/// open (and handshakes already under way) keep theirs. Each handshake takes the current
/// configuration with one atomic load: no lock on the handshake path. A replacement is
/// prepared and checked first (a key that does not match its certificate is an error and
/// changes nothing). The new configuration has its own session cache, so clients resume
/// no session from before a replacement (they make a full handshake).
#[derive(Clone)]
pub struct ReloadHandle(Arc<Live>);

struct Live {
    current: ArcSwap<SslConfiguration>,
    /// Serializes replacements (never taken by handshakes).
    writer: Mutex<()>,
}

/// Builds what a server's sessions need with the active backend, so a configuration
/// problem is found now.
pub(crate) fn prepare_server(configuration: &SslConfiguration) -> Result<(), ConfigError> {
    let Some(backend) = crate::backend::registry::active() else {
        return Err(ConfigError::new("no TLS backend is available"));
    };
    backend.prepare(SslMode::SslServerMode, configuration)
}

impl ReloadHandle {
    /// A server's configuration, checked: a server without a certificate and key, or with
    /// a key that does not match, fails here (at `bind`/`listen`).
    pub(crate) fn new(configuration: SslConfiguration) -> Result<ReloadHandle, ConfigError> {
        prepare_server(&configuration)?;
        Ok(ReloadHandle(Arc::new(Live {
            current: ArcSwap::from_pointee(configuration),
            writer: Mutex::new(()),
        })))
    }

    /// The configuration the next handshake uses (one atomic load).
    pub(crate) fn current(&self) -> Arc<SslConfiguration> {
        self.0.current.load_full()
    }

    /// The configuration handshakes use from now on (Qt's `sslConfiguration`).
    pub fn ssl_configuration(&self) -> SslConfiguration {
        (*self.current()).clone()
    }

    /// Replaces the certificate chain, key, OCSP staple (the credentials' default
    /// identity's) and the server-name map for handshakes that start from now on. On
    /// error nothing changes.
    pub fn reload(&self, credentials: &ServerCredentials) -> Result<(), ConfigError> {
        self.replace(|current| current.with_credentials(credentials))
    }

    /// Replaces only the OCSP response stapled with the server's own certificate (DER;
    /// `None`: staple nothing), for handshakes that start from now on.
    pub fn set_ocsp_response(&self, response: Option<Vec<u8>>) -> Result<(), ConfigError> {
        self.replace(|current| {
            let mut next = current.clone();
            next.set_ocsp_response(response);
            next
        })
    }

    /// Replaces the whole configuration (protocols, ciphers, verification too) for
    /// handshakes that start from now on, after checking it as `bind` does.
    pub fn set_ssl_configuration(
        &self,
        configuration: SslConfiguration,
    ) -> Result<(), ConfigError> {
        self.replace(|_| configuration)
    }

    fn replace(
        &self,
        next: impl FnOnce(&SslConfiguration) -> SslConfiguration,
    ) -> Result<(), ConfigError> {
        let _writer = match self.0.writer.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let next = next(&self.current());
        prepare_server(&next)?;
        self.0.current.store(Arc::new(next));
        Ok(())
    }
}

impl fmt::Debug for ReloadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadHandle")
            .field("configuration", &self.current())
            .finish()
    }
}
