//! The OpenSSL backend (cargo feature `openssl`): the system's libssl through the safe API
//! of the `openssl` crate, as a second implementation of the same seam.
//!
//! Verification is OpenSSL's own, as on Qt's OpenSSL backend: the verify callback records
//! every error depth by depth and the core's policy decides. The crate keeps
//! `#![forbid(unsafe_code)]`; the few calls the safe API lacks come from the small
//! `sslsocket-openssl-ext` crate, each wrapped safely there:
//!
//! - alert events, warnings included, from the info callback ([`SupportedFeature::Alerts`]);
//! - client resumption: sessions of accepted peers are kept per peer name, with their
//!   verification outcome, and offered again (only ever on a connection of the context
//!   that received them) ([`SupportedFeature::SessionTicket`]). A client can also export
//!   the ticket of an accepted peer (`session_ticket()`, when session persistence is
//!   enabled);
//! - pre-shared keys through `SslHooks::pre_shared_key`, and a server's identity hint from
//!   `SslConfiguration::pre_shared_key_identity_hint`;
//! - OCSP stapling through the safe status callbacks: a client asks for a staple and
//!   checks it (`crate::ocsp`, as the rustls backend does) before deciding; a server
//!   staples the configuration's current response ([`SupportedFeature::Ocsp`]).

mod alerts;
mod capabilities;
mod context;
mod psk;
mod session;
mod sessions;
mod verifier;

use crate::backend::{Backend, ImplementedClass, SessionSetup, SupportedFeature, TlsSession};
use crate::enums::{SslMode, SslProtocol};
use crate::error::ConfigError;

/// The OpenSSL backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpensslBackend;

impl Backend for OpensslBackend {
    fn name(&self) -> &'static str {
        "openssl"
    }

    fn supported_protocols(&self) -> Vec<SslProtocol> {
        vec![
            SslProtocol::TlsV1_0,
            SslProtocol::TlsV1_1,
            SslProtocol::TlsV1_2,
            SslProtocol::TlsV1_3,
            SslProtocol::TlsV1_0OrLater,
            SslProtocol::TlsV1_1OrLater,
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
            SupportedFeature::Psk,
            SupportedFeature::Ocsp,
            SupportedFeature::SessionTicket,
            SupportedFeature::Alerts,
        ]
    }

    fn implemented_classes(&self) -> Vec<ImplementedClass> {
        vec![
            ImplementedClass::Key,
            ImplementedClass::Certificate,
            ImplementedClass::Socket,
            ImplementedClass::DiffieHellman,
            ImplementedClass::EllipticCurve,
        ]
    }

    fn library_version_string(&self) -> String {
        openssl::version::version().to_string()
    }

    fn library_build_version_string(&self) -> String {
        // The headers' version (Qt's `sslLibraryBuildVersionString`), which the system's
        // libssl loaded at run time need not match (round 34: the run-time one was given).
        match sslsocket_openssl_ext::build_version_string() {
            built if built.is_empty() => self.library_version_string(),
            built => built,
        }
    }

    fn supported_ciphers(&self) -> Vec<crate::cert::SslCipher> {
        capabilities::ciphers().to_vec()
    }

    fn supported_elliptic_curves(&self) -> Vec<crate::curve::SslEllipticCurve> {
        capabilities::groups().to_vec()
    }

    fn prepare(
        &self,
        mode: SslMode,
        configuration: &crate::config::SslConfiguration,
    ) -> Result<(), ConfigError> {
        match mode {
            SslMode::SslClientMode => context::client_engine(configuration).map(drop),
            SslMode::SslServerMode => context::server_engine(configuration).map(drop),
            SslMode::UnencryptedMode => Ok(()),
        }
    }

    fn new_session(&self, setup: SessionSetup<'_>) -> Result<Box<dyn TlsSession>, ConfigError> {
        match setup.mode {
            SslMode::SslClientMode => {
                let engine = context::client_engine(setup.configuration)?;
                Ok(Box::new(session::OpensslSession::client(
                    &engine,
                    setup.configuration,
                    setup.peer_name,
                    &setup.policy,
                )?))
            }
            SslMode::SslServerMode => {
                let engine = context::server_engine(setup.configuration)?;
                Ok(Box::new(session::OpensslSession::server(
                    &engine,
                    setup.configuration,
                    &setup.policy,
                )?))
            }
            SslMode::UnencryptedMode => Err(ConfigError::new(
                "a TLS session needs client or server mode",
            )),
        }
    }
}
