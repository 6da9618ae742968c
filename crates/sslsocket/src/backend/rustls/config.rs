//! Building rustls configurations from an `SslConfiguration`, once per configuration value.

use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};

use crate::backend::rustls::resolver::{
    self, ClientCertResolver, ConnectionResolver, ServerCertResolver,
};
use crate::backend::rustls::sessions::{ClientSessions, ServerSessions};
use crate::backend::rustls::verifier::{ClientAuth, ConnectionVerifier};
use crate::cert::SslCertificate;
use crate::config::{system_ca_certificates, SslConfiguration, SslOption};
use crate::crypto::provider_for;
use crate::enums::{PeerVerifyMode, SslMode, SslProtocol};
use crate::error::ConfigError;
use crate::verify::record::HandshakeRecord;
use crate::verify::{ChainVerifier, Purpose, VerifyPolicy};

/// A client configuration ready to make connections. Each connection gets a clone of
/// `config` with its own verifier and session-store view (see `verifier`, `sessions`).
pub(crate) struct ClientEngine {
    config: Arc<ClientConfig>,
    chain: Arc<ChainVerifier>,
    client_auth: Arc<ClientAuth>,
    pub(crate) sessions: Option<Arc<ClientSessions>>,
    /// The application's client certificate hook, made per connection (its failures
    /// fail that connection's handshake).
    client_resolver: Option<Arc<ClientCertResolver>>,
}

/// A server configuration ready to accept connections: a template whose session store each
/// connection replaces with its own view, and its verifier too when client certificates
/// are asked for (see [`ServerEngine::connection`]).
pub(crate) struct ServerEngine {
    template: Arc<ServerConfig>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    versions: &'static [&'static SupportedProtocolVersion],
    settings: ServerSettings,
    resolver: Arc<ServerCertResolver>,
    chain: Arc<ChainVerifier>,
    client_auth: Arc<ClientAuth>,
    pub(crate) sessions: Option<Arc<ServerSessions>>,
    /// When client certificates are asked for: templates built the first time they were
    /// needed, each with a verifier instance of its own, which later handshakes claim
    /// in turn (see [`ServerEngine::connection`]).
    verifying: [OnceLock<VerifyingTemplate>; VERIFYING_TEMPLATES],
}

/// A server template with its own verifier instance, claimed by one handshake at a time.
struct VerifyingTemplate {
    config: Arc<ServerConfig>,
    verifier: Arc<ConnectionVerifier>,
}

/// What a server's rustls configuration takes from its `SslConfiguration` besides the
/// verifier: the engine's template and each verifying template are made from it by
/// [`server_config`], so they cannot differ in anything else.
struct ServerSettings {
    alpn: Vec<Vec<u8>>,
    key_log: Arc<dyn rustls::KeyLog>,
    ignore_client_order: bool,
    tickets: bool,
}

/// A server configuration around `verifier`, with `settings`.
fn server_config(
    provider: &Arc<rustls::crypto::CryptoProvider>,
    versions: &'static [&'static SupportedProtocolVersion],
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    settings: &ServerSettings,
) -> Result<ServerConfig, ConfigError> {
    let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(versions)
        .map_err(|e| ConfigError::new(format!("protocol selection: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = settings.alpn.clone();
    config.key_log = Arc::clone(&settings.key_log);
    config.ignore_client_order = settings.ignore_client_order;
    if !settings.tickets {
        config.send_tls13_tickets = 0;
    }
    // Each connection gets its view of the engine's session store, or none with tickets
    // off: the builder's own cache (~30 KiB) goes now.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// How many verifying templates a server engine keeps: as many handshakes asking for a
/// client certificate at once reuse one; more build theirs (~1 KiB each, kept).
const VERIFYING_TEMPLATES: usize = 16;

/// One client connection's rustls configuration and its per-connection parts.
pub(crate) struct ClientConnectionConfig {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) sessions: Option<Arc<crate::backend::rustls::sessions::ConnectionClientSessions>>,
    /// The verifier instance claimed for this handshake.
    pub(crate) verifier: Arc<ConnectionVerifier>,
}

impl ClientEngine {
    /// The configuration of one connection to `server_name` judged by `policy`, recording
    /// into `record`. The verifier instance is the one of a session this socket may
    /// resume, when no other handshake holds it, else a new one.
    pub(crate) fn connection(
        &self,
        policy: &VerifyPolicy,
        record: &Arc<HandshakeRecord>,
        server_name: &rustls_pki_types::ServerName<'static>,
    ) -> ClientConnectionConfig {
        let verifier = self
            .sessions
            .as_ref()
            .and_then(|s| s.resumable_verifier(server_name, policy))
            .filter(|v| v.claim(policy, record))
            .unwrap_or_else(|| {
                let fresh = Arc::new(ConnectionVerifier::new(
                    Arc::clone(&self.chain),
                    Arc::clone(&self.client_auth),
                ));
                fresh.claim(policy, record);
                fresh
            });
        let mut config = (*self.config).clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::clone(&verifier) as _);
        let sessions = self.sessions.as_ref().map(|shared| {
            Arc::new(
                crate::backend::rustls::sessions::ConnectionClientSessions::new(
                    Arc::clone(shared),
                    Arc::clone(record),
                    policy.clone(),
                    Arc::clone(&verifier),
                ),
            )
        });
        if let Some(store) = &sessions {
            config.resumption = rustls::client::Resumption::store(Arc::clone(store) as _);
        }
        if let Some(resolver) = &self.client_resolver {
            config.client_auth_cert_resolver = Arc::new(resolver.for_connection(record));
        }
        ClientConnectionConfig {
            config: Arc::new(config),
            sessions,
            verifier,
        }
    }
}

/// One server connection's rustls configuration and its per-connection parts.
pub(crate) struct ServerConnectionConfig {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) sessions: Option<Arc<crate::backend::rustls::sessions::ConnectionServerSessions>>,
    /// The verifier instance claimed for this handshake (none when no client certificate
    /// is asked for).
    pub(crate) verifier: Option<Arc<ConnectionVerifier>>,
    /// This connection's certificate choice, which records the name the client asked for.
    pub(crate) resolver: Arc<ConnectionResolver>,
}

impl ServerEngine {
    /// The configuration of one connection judged by `policy`, recording into `record`.
    ///
    /// A server that asks for no client certificate never has its verifier called by
    /// rustls: its connections share the template's (an instance no handshake claims,
    /// which refuses anything it were asked) and differ only in their session-store view,
    /// on a clone of the template. A server that asks for one (Qt's default `QueryPeer`)
    /// needs a verifier instance per handshake, which rustls lets us set only through its
    /// builder; a build costs ~3.6k instructions and an allocation of ~30 KiB (the session
    /// cache the builder makes, which we replace), from the allocator's slow path. So the
    /// builds are kept ([`VerifyingTemplate`]): a handshake claims the verifier of the first kept
    /// template no other handshake holds and works on a clone of it, as above; the
    /// verifier goes back when its handshake ends (rustls never asks a server's verifier
    /// after that). Only when every kept one is held does a handshake build its own.
    pub(crate) fn connection(
        &self,
        policy: &VerifyPolicy,
        record: &Arc<HandshakeRecord>,
    ) -> Result<ServerConnectionConfig, ConfigError> {
        let resolver = Arc::new(ConnectionResolver::new(Arc::clone(&self.resolver)));
        let (mut config, verifier) = if self.client_auth.offer {
            let (template, verifier) = self.claim_verifying(policy, record)?;
            ((*template).clone(), Some(verifier))
        } else {
            ((*self.template).clone(), None)
        };
        config.cert_resolver = Arc::clone(&resolver) as _;
        let sessions = self.sessions.as_ref().map(|shared| {
            Arc::new(
                crate::backend::rustls::sessions::ConnectionServerSessions::new(
                    Arc::clone(shared),
                    Arc::clone(record),
                    policy.clone(),
                ),
            )
        });
        config.session_storage = match &sessions {
            Some(store) => Arc::clone(store) as _,
            None => Arc::clone(&self.template.session_storage),
        };
        Ok(ServerConnectionConfig {
            config: Arc::new(config),
            sessions,
            verifier,
            resolver,
        })
    }

    /// A verifying template and its verifier, claimed for the handshake of `record`: a
    /// kept one that no other handshake holds, else a new one (kept if a place is free).
    /// The search starts at a place that depends on the handshake, so that concurrent
    /// handshakes do not all try the same verifier first.
    fn claim_verifying(
        &self,
        policy: &VerifyPolicy,
        record: &Arc<HandshakeRecord>,
    ) -> Result<(Arc<ServerConfig>, Arc<ConnectionVerifier>), ConfigError> {
        let start = (Arc::as_ptr(record) as usize / 64) % VERIFYING_TEMPLATES;
        let mut free_place = None;
        for offset in 0..VERIFYING_TEMPLATES {
            let place = &self.verifying[(start + offset) % VERIFYING_TEMPLATES];
            match place.get() {
                Some(kept) if kept.verifier.claim(policy, record) => {
                    return Ok((Arc::clone(&kept.config), Arc::clone(&kept.verifier)));
                }
                Some(_) => {}
                None => {
                    free_place.get_or_insert(place);
                }
            }
        }
        let built = self.build_verifying()?;
        // A new instance: nobody else can hold it yet.
        if !built.verifier.claim(policy, record) {
            return Err(ConfigError::new(
                "a new verifier instance was already claimed",
            ));
        }
        let claimed = (Arc::clone(&built.config), Arc::clone(&built.verifier));
        if let Some(place) = free_place {
            // Another handshake may have filled the place meanwhile: then this one stays
            // this handshake's own.
            let _ = place.set(built);
        }
        Ok(claimed)
    }

    /// A template like the engine's own, with a verifier instance of its own.
    fn build_verifying(&self) -> Result<VerifyingTemplate, ConfigError> {
        let verifier = Arc::new(ConnectionVerifier::new(
            Arc::clone(&self.chain),
            Arc::clone(&self.client_auth),
        ));
        let config = server_config(
            &self.provider,
            self.versions,
            Arc::clone(&verifier) as _,
            // Replaced per connection, as in the template.
            Arc::clone(&self.template.cert_resolver),
            &self.settings,
        )?;
        Ok(VerifyingTemplate {
            config: Arc::new(config),
            verifier,
        })
    }
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
        other => Err(ConfigError::unsupported(format!(
            "protocol {other} is not supported by the rustls backend (it offers TLS 1.2 and 1.3)"
        ))),
    }
}

/// The verifier of a configuration's peers: its CA set (and the system's, when loaded on
/// demand), depth, pins, and OCSP for clients.
fn chain_verifier(configuration: &SslConfiguration, purpose: Purpose) -> ChainVerifier {
    let mut anchors: Vec<SslCertificate> = configuration.ca_certificates().to_vec();
    if configuration.system_ca_on_demand() {
        anchors.extend(system_ca_certificates());
    }
    ChainVerifier::new(anchors, purpose)
        .with_max_depth(configuration.peer_verify_depth())
        .with_pins(configuration.pinned_public_keys().to_vec())
        .with_ocsp(purpose == Purpose::ServerAuth && configuration.ocsp_stapling_enabled())
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
    let chain = Arc::new(chain_verifier(configuration, Purpose::ServerAuth));
    let client_auth = Arc::new(ClientAuth::default());
    // Replaced per connection (`ClientEngine::connection`); this one is never asked.
    let placeholder = Arc::new(ConnectionVerifier::new(
        Arc::clone(&chain),
        Arc::clone(&client_auth),
    ));
    let provider = provider_for(configuration)?;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions(configuration.protocol())?)
        .map_err(|e| ConfigError::new(format!("protocol selection: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(placeholder);
    let client_resolver = configuration
        .client_certificate_resolver()
        .map(|hook| Arc::new(ClientCertResolver::new(hook, Arc::clone(&provider))));
    let mut config = match (&client_resolver, local_identity(configuration)?) {
        (Some(resolver), _) => builder.with_client_cert_resolver(Arc::clone(resolver) as _),
        (None, Some((chain, key))) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| identity_error_in(e, configuration))?,
        (None, None) => {
            if configuration.private_key().is_some()
                == configuration.local_certificate_chain().is_empty()
            {
                return Err(ConfigError::invalid(
                    "a local certificate needs its private key, and a private key its certificate",
                ));
            }
            builder.with_no_client_auth()
        }
    };
    crate::config::alpn_wire(configuration.allowed_next_protocols())?;
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
        Some(ClientSessions::new())
    };
    Ok(ClientEngine {
        config: Arc::new(config),
        chain,
        client_auth,
        sessions,
        client_resolver,
    })
}

/// rustls's refusal of our certificate and key; a key of another certificate is
/// [`ConfigErrorKind::KeyMismatch`](crate::ConfigErrorKind::KeyMismatch).
pub(super) fn identity_error(e: rustls::Error) -> ConfigError {
    match e {
        rustls::Error::InconsistentKeys(_) => ConfigError::key_mismatch(),
        _ => ConfigError::with_kind(
            crate::ConfigErrorKind::Other,
            format!("local certificate and private key: {e}"),
        ),
    }
}

/// [`identity_error`] for `configuration`'s local chain and key: a key of another
/// certificate of the chain is named as such.
fn identity_error_in(e: rustls::Error, configuration: &SslConfiguration) -> ConfigError {
    match (e, configuration.private_key()) {
        (rustls::Error::InconsistentKeys(_), Some(key)) => {
            ConfigError::key_mismatch_in(configuration.local_certificate_chain(), key)
        }
        (e, _) => identity_error(e),
    }
}

fn build_server(configuration: &SslConfiguration) -> Result<ServerEngine, ConfigError> {
    let mode = configuration
        .peer_verify_mode()
        .effective(SslMode::SslServerMode);
    if !configuration.diffie_hellman_parameters().is_empty() {
        return Err(ConfigError::unsupported(
            "Diffie-Hellman parameters are not supported by the rustls backend",
        ));
    }
    let Some(identity) = configuration.local_identity() else {
        local_identity(configuration)?;
        return Err(ConfigError::invalid(
            "server mode needs a local certificate and its private key",
        ));
    };
    let chain = Arc::new(chain_verifier(configuration, Purpose::ClientAuth));
    let client_auth = Arc::new(ClientAuth::new(
        mode != PeerVerifyMode::VerifyNone,
        mode == PeerVerifyMode::VerifyPeer && configuration.missing_certificate_is_fatal(),
        configuration.ca_certificates(),
    ));
    let provider = provider_for(configuration)?;
    let versions = versions(configuration.protocol())?;
    let resolver = Arc::new(ServerCertResolver::new(
        configuration,
        resolver::prepare(&identity, &provider)?,
        Arc::clone(&provider),
    )?);
    // Replaced per connection when client certificates are asked for; otherwise shared by
    // every connection and never asked (unclaimed, it would refuse).
    let placeholder = Arc::new(ConnectionVerifier::new(
        Arc::clone(&chain),
        Arc::clone(&client_auth),
    ));
    crate::config::alpn_wire(configuration.allowed_next_protocols())?;
    let settings = ServerSettings {
        alpn: configuration.allowed_next_protocols().to_vec(),
        key_log: if configuration.key_logging() {
            Arc::new(rustls::KeyLogFile::new())
        } else {
            Arc::new(rustls::NoKeyLog {})
        },
        ignore_client_order: !configuration
            .test_ssl_option(SslOption::SslOptionDisableServerCipherPreference),
        tickets: !configuration.test_ssl_option(SslOption::SslOptionDisableSessionTickets),
    };
    let config = server_config(
        &provider,
        versions,
        placeholder,
        // Replaced per connection by one that records the name the client asked for.
        Arc::new(ConnectionResolver::new(Arc::clone(&resolver))),
        &settings,
    )?;
    let sessions = settings.tickets.then(ServerSessions::new);
    Ok(ServerEngine {
        template: Arc::new(config),
        provider,
        versions,
        settings,
        resolver,
        chain,
        client_auth,
        sessions,
        verifying: std::array::from_fn(|_| OnceLock::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::SslDiffieHellmanParameters;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Handshakes in progress at once never share a verifier instance; the engine keeps
    /// [`VERIFYING_TEMPLATES`] of them, builds one of its own for each handshake beyond,
    /// and a kept instance given back is what the next handshake claims.
    #[test]
    fn verifier_instances_are_one_per_handshake_in_progress_and_reused_after_it() -> TestResult {
        let (server, _) = crate::backend::test_pki::configurations()?;
        let engine = server_engine(&server)?;
        let policy = VerifyPolicy::default();
        let records: Vec<Arc<HandshakeRecord>> = (0..VERIFYING_TEMPLATES + 2)
            .map(|_| Arc::new(HandshakeRecord::default()))
            .collect();
        let mut verifiers = Vec::new();
        for record in &records {
            let connection = engine.connection(&policy, record)?;
            verifiers.push(connection.verifier.ok_or("QueryPeer: no verifier")?);
        }
        for (index, verifier) in verifiers.iter().enumerate() {
            assert!(
                !verifiers[index + 1..]
                    .iter()
                    .any(|other| Arc::ptr_eq(verifier, other)),
                "handshake {index} shares its verifier"
            );
        }
        let kept: Vec<Arc<ConnectionVerifier>> = engine
            .verifying
            .iter()
            .filter_map(OnceLock::get)
            .map(|k| Arc::clone(&k.verifier))
            .collect();
        assert_eq!(kept.len(), VERIFYING_TEMPLATES);
        let own = verifiers
            .iter()
            .filter(|v| !kept.iter().any(|k| Arc::ptr_eq(k, v)))
            .count();
        assert_eq!(
            own, 2,
            "the handshakes beyond the kept ones build their own"
        );
        // Every kept instance is held: none can be claimed by another handshake.
        let other = Arc::new(HandshakeRecord::default());
        assert!(kept.iter().all(|k| !k.claim(&policy, &other)));
        // One handshake gives its kept instance back: the next one claims that one.
        let (index, given_back) = verifiers
            .iter()
            .enumerate()
            .find(|(_, v)| kept.iter().any(|k| Arc::ptr_eq(k, v)))
            .ok_or("no kept verifier")?;
        given_back.release(&records[index]);
        let next = engine
            .connection(&policy, &other)?
            .verifier
            .ok_or("no verifier")?;
        assert!(Arc::ptr_eq(&next, given_back));
        // Released by anyone else's record, it stays held.
        next.release(&records[index]);
        assert!(!next.claim(&policy, &records[index]));
        Ok(())
    }

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
