//! The OpenSSL backend (cargo feature `openssl`): the system's libssl through the safe API
//! of the `openssl` crate, as a second implementation of the same seam.
//!
//! Verification is OpenSSL's own, as on Qt's OpenSSL backend: the verify callback records
//! every error depth by depth and the core's policy decides. The crate
//! keeps `#![forbid(unsafe_code)]`, so what the safe API does not offer is declared
//! unsupported rather than reached through FFI:
//!
//! - alert events: there is no safe info callback, so only what surfaces otherwise is
//!   reported (fatal alerts received, close_notify both ways, the alert that refuses a
//!   peer), and [`SupportedFeature::Alerts`] is not claimed;
//! - session tickets: a client cannot offer a stored session again (`SslRef::set_session`
//!   is `unsafe`), so there is no client resumption and [`SupportedFeature::SessionTicket`]
//!   is not claimed. A server issues tickets and resumes; a client can export the ticket
//!   of an accepted peer (`session_ticket()`, when session persistence is enabled);
//! - pre-shared keys work through `SslHooks::pre_shared_key`, but a server cannot send an
//!   identity hint (no safe setter);
//!
//! OCSP stapling works through the safe status callbacks: a client asks for a staple and
//! checks it (`crate::ocsp`, as the rustls backend does) before deciding; a server staples
//! the configuration's current response.

mod alerts;
mod context;
mod psk;
mod session;
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
        ]
    }

    fn implemented_classes(&self) -> Vec<ImplementedClass> {
        vec![
            ImplementedClass::Key,
            ImplementedClass::Certificate,
            ImplementedClass::Socket,
        ]
    }

    fn library_version_string(&self) -> String {
        openssl::version::version().to_string()
    }

    fn new_session(&self, setup: SessionSetup<'_>) -> Result<Box<dyn TlsSession>, ConfigError> {
        match setup.mode {
            SslMode::SslClientMode => {
                let engine = context::client_engine(setup.configuration)?;
                Ok(Box::new(session::OpensslSession::client(
                    &engine,
                    setup.configuration,
                    setup.peer_name,
                    setup.verify,
                )?))
            }
            SslMode::SslServerMode => {
                let engine = context::server_engine(setup.configuration)?;
                Ok(Box::new(session::OpensslSession::server(
                    &engine,
                    setup.configuration,
                    setup.verify,
                )?))
            }
            SslMode::UnencryptedMode => Err(ConfigError::new(
                "a TLS session needs client or server mode",
            )),
        }
    }
}
