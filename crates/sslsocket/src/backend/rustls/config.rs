//! Building rustls configurations from an `SslConfiguration`, once per configuration value.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};

use crate::backend::rustls::resolver::StapleResolver;
use crate::backend::rustls::sessions::SessionStore;
use crate::backend::rustls::verifier::{Checks, CollectingVerifier};
use crate::cert::SslCertificate;
use crate::config::{system_ca_certificates, SslConfiguration, SslOption};
use crate::crypto::provider_for;
use crate::enums::{PeerVerifyMode, SslMode, SslProtocol};
use crate::error::ConfigError;
use crate::verify::{Purpose, TrustStore};

/// A client configuration ready to make connections.
pub(crate) struct ClientEngine {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) sessions: Option<Arc<SessionStore>>,
}

/// A server configuration ready to accept connections.
pub(crate) struct ServerEngine {
    pub(crate) config: Arc<ServerConfig>,
}

/// The cached client engine of `configuration`.
pub(crate) fn client_engine(
    configuration: &SslConfiguration,
) -> Result<Arc<ClientEngine>, ConfigError> {
    configuration.cached("rustls-client", || {
        build_client(configuration).map(Arc::new)
    })
}

/// The cached server engine of `configuration`.
pub(crate) fn server_engine(
    configuration: &SslConfiguration,
) -> Result<Arc<ServerEngine>, ConfigError> {
    configuration.cached("rustls-server", || {
        build_server(configuration).map(Arc::new)
    })
}

fn versions(
    protocol: SslProtocol,
) -> Result<&'static [&'static SupportedProtocolVersion], ConfigError> {
    static BOTH: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static TLS13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match protocol {
        SslProtocol::TlsV1_2 => Ok(&TLS12),
        SslProtocol::TlsV1_3 | SslProtocol::TlsV1_3OrLater => Ok(&TLS13),
        SslProtocol::TlsV1_2OrLater | SslProtocol::SecureProtocols | SslProtocol::AnyProtocol => {
            Ok(&BOTH)
        }
        other => Err(ConfigError::new(format!(
            "protocol {other} is not supported by the rustls backend (it offers TLS 1.2 and 1.3)"
        ))),
    }
}

fn trust_store(configuration: &SslConfiguration) -> TrustStore {
    let mut anchors: Vec<SslCertificate> = configuration.ca_certificates().to_vec();
    if configuration.system_ca_on_demand() {
        anchors.extend(system_ca_certificates());
    }
    TrustStore::new(anchors)
}

type Identity = (
    Vec<rustls_pki_types::CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
);

/// Our certificate chain and key, if both are set; a public key in the private key's
/// place is an error.
fn local_identity(configuration: &SslConfiguration) -> Result<Option<Identity>, ConfigError> {
    let (Some(key), false) = (
        configuration.private_key(),
        configuration.local_certificate_chain().is_empty(),
    ) else {
        return Ok(None);
    };
    let chain = configuration.local_certificate_chain();
    Ok(Some((
        chain
            .iter()
            .map(SslCertificate::to_certificate_der)
            .collect(),
        key.private_key_der()?,
    )))
}

fn build_client(configuration: &SslConfiguration) -> Result<ClientEngine, ConfigError> {
    let mode = configuration
        .peer_verify_mode()
        .effective(SslMode::SslClientMode);
    let checks = Checks::new(
        trust_store(configuration),
        configuration.peer_verify_depth(),
        Purpose::ServerAuth,
        configuration.pinned_public_keys().to_vec(),
    )
    .with_ocsp(configuration.ocsp_stapling_enabled());
    let verifier = Arc::new(CollectingVerifier::new(Arc::new(checks), mode));
    let builder = ClientConfig::builder_with_provider(provider_for(configuration)?)
        .with_protocol_versions(versions(configuration.protocol())?)
        .map_err(|e| ConfigError::new(format!("protocol selection: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match local_identity(configuration)? {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| ConfigError::new(format!("local certificate and private key: {e}")))?,
        None => {
            if configuration.private_key().is_some()
                == configuration.local_certificate_chain().is_empty()
            {
                return Err(ConfigError::new(
                    "a local certificate needs its private key, and a private key its certificate",
                ));
            }
            builder.with_no_client_auth()
        }
    };
    config.alpn_protocols = configuration.allowed_next_protocols().to_vec();
    if configuration.key_logging() {
        config.key_log = Arc::new(rustls::KeyLogFile::new());
    }
    config.enable_sni =
        !configuration.test_ssl_option(SslOption::SslOptionDisableServerNameIndication);
    // Resumption skips the verifier in rustls: the store keeps sessions only for peers the
    // application accepted, with their original verification outcome.
    let sessions = if configuration.test_ssl_option(SslOption::SslOptionDisableSessionTickets)
        || configuration.test_ssl_option(SslOption::SslOptionDisableSessionSharing)
    {
        config.resumption = rustls::client::Resumption::disabled();
        None
    } else {
        let store = SessionStore::new();
        config.resumption = rustls::client::Resumption::store(Arc::clone(&store) as _);
        Some(store)
    };
    Ok(ClientEngine {
        config: Arc::new(config),
        sessions,
    })
}

/// Our chain and key as rustls's signing identity; a key that does not match the
/// certificate is an error here, before a byte is sent.
fn certified_key(
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<rustls::sign::CertifiedKey, ConfigError> {
    rustls::sign::CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| ConfigError::new(format!("local certificate and private key: {e}")))
}

fn build_server(configuration: &SslConfiguration) -> Result<ServerEngine, ConfigError> {
    let mode = configuration
        .peer_verify_mode()
        .effective(SslMode::SslServerMode);
    if !configuration.diffie_hellman_parameters().is_empty() {
        return Err(ConfigError::new(
            "Diffie-Hellman parameters are not supported by the rustls backend",
        ));
    }
    let Some((chain, key)) = local_identity(configuration)? else {
        return Err(ConfigError::new(
            "server mode needs a local certificate and its private key",
        ));
    };
    let checks = Checks::new(
        trust_store(configuration),
        configuration.peer_verify_depth(),
        Purpose::ClientAuth,
        configuration.pinned_public_keys().to_vec(),
    );
    let mut verifier = CollectingVerifier::new(Arc::new(checks), mode);
    verifier.set_client_auth(
        mode != PeerVerifyMode::VerifyNone,
        mode == PeerVerifyMode::VerifyPeer && configuration.missing_certificate_is_fatal(),
        configuration.ca_certificates(),
    );
    let mut config = ServerConfig::builder_with_provider(provider_for(configuration)?)
        .with_protocol_versions(versions(configuration.protocol())?)
        .map_err(|e| ConfigError::new(format!("protocol selection: {e}")))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(StapleResolver::new(
            certified_key(chain, key, &*provider_for(configuration)?)?,
            configuration.ocsp_staple(),
        )));
    config.alpn_protocols = configuration.allowed_next_protocols().to_vec();
    if configuration.key_logging() {
        config.key_log = Arc::new(rustls::KeyLogFile::new());
    }
    config.ignore_client_order =
        !configuration.test_ssl_option(SslOption::SslOptionDisableServerCipherPreference);
    if configuration.test_ssl_option(SslOption::SslOptionDisableSessionTickets) {
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    }
    Ok(ServerEngine {
        config: Arc::new(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::SslDiffieHellmanParameters;

    #[test]
    fn a_server_with_diffie_hellman_parameters_is_refused() {
        let mut configuration = SslConfiguration::default();
        configuration
            .set_diffie_hellman_parameters(SslDiffieHellmanParameters::default_parameters());
        let error = build_server(&configuration).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("Diffie-Hellman parameters are not supported by the rustls backend")
        );
    }
}
