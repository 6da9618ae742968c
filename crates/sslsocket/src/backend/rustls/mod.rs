//! The rustls backend (default): rustls 0.23 with the aws-lc-rs provider.

mod alerts;
mod config;
mod handshake;
mod resolver;
mod session;
mod sessions;
mod unbuffered;
mod verifier;

use crate::backend::{Backend, ImplementedClass, SessionSetup, SupportedFeature, TlsSession};
use crate::enums::{SslMode, SslProtocol};
use crate::error::ConfigError;

/// The rustls backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct RustlsBackend;

impl Backend for RustlsBackend {
    fn name(&self) -> &'static str {
        "rustls"
    }

    fn supported_protocols(&self) -> Vec<SslProtocol> {
        vec![
            SslProtocol::TlsV1_2,
            SslProtocol::TlsV1_3,
            SslProtocol::TlsV1_2OrLater,
            SslProtocol::TlsV1_3OrLater,
            SslProtocol::SecureProtocols,
            SslProtocol::AnyProtocol,
        ]
    }

    fn supported_features(&self) -> Vec<SupportedFeature> {
        vec![
            SupportedFeature::CertificateVerification,
            SupportedFeature::ClientSideAlpn,
            SupportedFeature::ServerSideAlpn,
            SupportedFeature::SessionTicket,
            SupportedFeature::Ocsp,
            SupportedFeature::Alerts,
        ]
    }

    fn implemented_classes(&self) -> Vec<ImplementedClass> {
        vec![
            ImplementedClass::Key,
            ImplementedClass::Certificate,
            ImplementedClass::Socket,
            // Groups are chosen with `set_elliptic_curves` and listed by
            // `supported_elliptic_curves` (round 34: was left out).
            ImplementedClass::EllipticCurve,
        ]
    }

    fn library_version_string(&self) -> String {
        "rustls 0.23.46 (aws-lc-rs)".to_string()
    }

    fn supported_ciphers(&self) -> Vec<crate::cert::SslCipher> {
        crate::crypto::supported_ciphers()
    }

    fn supported_elliptic_curves(&self) -> Vec<crate::curve::SslEllipticCurve> {
        crate::crypto::supported_groups()
    }

    fn prepare(
        &self,
        mode: SslMode,
        configuration: &crate::config::SslConfiguration,
    ) -> Result<(), ConfigError> {
        match mode {
            SslMode::SslClientMode => config::client_engine(configuration).map(drop),
            SslMode::SslServerMode => config::server_engine(configuration).map(drop),
            SslMode::UnencryptedMode => Ok(()),
        }
    }

    /// Sessions run on rustls's unbuffered API (the session owns its buffers and frees
    /// them whenever they are empty: an idle connection holds only the TLS state), except
    /// for a configuration that asks for keying material export, which rustls 0.23 offers
    /// only on its buffered connections.
    fn new_session(&self, setup: SessionSetup<'_>) -> Result<Box<dyn TlsSession>, ConfigError> {
        let buffered = setup.configuration.keying_material_export();
        match setup.mode {
            SslMode::SslClientMode => {
                let engine = config::client_engine(setup.configuration)?;
                if buffered {
                    let session =
                        session::RustlsSession::client(&engine, setup.peer_name, &setup.policy)?;
                    return Ok(Box::new(session));
                }
                let session =
                    unbuffered::UnbufferedSession::client(&engine, setup.peer_name, &setup.policy)?;
                Ok(Box::new(session))
            }
            SslMode::SslServerMode => {
                let engine = config::server_engine(setup.configuration)?;
                if buffered {
                    let session = session::RustlsSession::server(&engine, &setup.policy)?;
                    return Ok(Box::new(session));
                }
                let session = unbuffered::UnbufferedSession::server(&engine, &setup.policy)?;
                Ok(Box::new(session))
            }
            SslMode::UnencryptedMode => Err(ConfigError::new(
                "a TLS session needs client or server mode",
            )),
        }
    }
}
