//! Choosing the certificate: a server's by the name the client sent (the configuration's
//! hook, then its name map, then its own certificate), a client's by the server's request.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::cert::SslCertificate;
use crate::config::{
    CertificateRequest, ClientCertificateResolver, ServerCertificateResolver, ServerNames,
    SslConfiguration, SslIdentity,
};
use crate::error::ConfigError;
use crate::verify::record::HandshakeRecord;

/// The identity's rustls signing form, built once per identity value; a key that does not
/// match the certificate is an error here.
pub(crate) fn prepare(
    identity: &SslIdentity,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, ConfigError> {
    identity.prepared(0, |identity| {
        let chain = identity
            .certificate_chain()
            .iter()
            .map(SslCertificate::to_certificate_der)
            .collect();
        let key = identity.private_key().private_key_der()?;
        let mut certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                ConfigError::key_mismatch_in(identity.certificate_chain(), identity.private_key())
            }
            e => super::config::identity_error(e),
        })?;
        certified.ocsp = identity.ocsp_response().map(<[u8]>::to_vec);
        Ok(Arc::new(certified))
    })
}

/// A server's certificates, prepared when its engine is built (so a mismatched key in the
/// name map fails there too).
pub(crate) struct ServerCertResolver {
    default: Arc<CertifiedKey>,
    names: ServerNames,
    by_name: Vec<Arc<CertifiedKey>>,
    hook: Option<Arc<dyn ServerCertificateResolver>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertResolver {
    pub(crate) fn new(
        configuration: &SslConfiguration,
        default: Arc<CertifiedKey>,
        provider: Arc<CryptoProvider>,
    ) -> Result<ServerCertResolver, ConfigError> {
        let names = configuration.server_names().clone();
        let by_name = names
            .entries
            .iter()
            .map(|(pattern, _, identity)| {
                prepare(identity, &provider).map_err(|e| {
                    ConfigError::new(format!("certificate for server name `{pattern}`: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ServerCertResolver {
            default,
            names,
            by_name,
            hook: configuration.server_certificate_resolver(),
            provider,
        })
    }

    fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(hook) = &self.hook {
            // A hook that panics ends this handshake (no certificate), not the server's
            // thread (round 35: the blocking server lost a slot each time).
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                hook.resolve(server_name)
            }));
            let Ok(answer) = answer else {
                tracing::warn!("the server certificate resolver panicked");
                return None;
            };
            if let Some(identity) = answer {
                return match prepare(&identity, &self.provider) {
                    Ok(key) => Some(key),
                    Err(error) => {
                        // Fail closed: no certificate, the handshake fails.
                        tracing::warn!(%error, "the server certificate resolver's identity");
                        None
                    }
                };
            }
        }
        let found = server_name
            .and_then(|name| self.names.lookup(name))
            .and_then(|index| self.by_name.get(index));
        Some(Arc::clone(found.unwrap_or(&self.default)))
    }
}

/// One connection's view of the server's certificates: records the name the client asked
/// for (`SslCore::requested_server_name`).
pub(crate) struct ConnectionResolver {
    shared: Arc<ServerCertResolver>,
    requested: OnceLock<String>,
}

impl ConnectionResolver {
    pub(crate) fn new(shared: Arc<ServerCertResolver>) -> ConnectionResolver {
        ConnectionResolver {
            shared,
            requested: OnceLock::new(),
        }
    }

    /// The server name the client sent, once its hello was read.
    pub(crate) fn requested(&self) -> Option<&str> {
        self.requested.get().map(String::as_str)
    }
}

impl fmt::Debug for ConnectionResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ConnectionResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello.server_name();
        if let Some(name) = name {
            let _ = self.requested.set(name.to_string());
        }
        self.shared.pick(name)
    }
}

/// The application's client certificate hook, in rustls's shape: the engine's (never
/// asked), and per connection with the connection's record ([`for_connection`]), where an
/// identity that cannot be used fails the handshake.
///
/// [`for_connection`]: ClientCertResolver::for_connection
pub(crate) struct ClientCertResolver {
    hook: Arc<dyn ClientCertificateResolver>,
    provider: Arc<CryptoProvider>,
    /// The connection's record (`None` in the engine's own configuration).
    record: Option<Arc<HandshakeRecord>>,
}

impl ClientCertResolver {
    pub(crate) fn new(
        hook: Arc<dyn ClientCertificateResolver>,
        provider: Arc<CryptoProvider>,
    ) -> ClientCertResolver {
        ClientCertResolver {
            hook,
            provider,
            record: None,
        }
    }

    /// The same hook for one connection, failing into `record`.
    pub(crate) fn for_connection(&self, record: &Arc<HandshakeRecord>) -> ClientCertResolver {
        ClientCertResolver {
            hook: Arc::clone(&self.hook),
            provider: Arc::clone(&self.provider),
            record: Some(Arc::clone(record)),
        }
    }

    /// Fails the handshake with `error` (fail closed: the application asked to
    /// authenticate, and no anonymous handshake goes on in its name).
    fn fail(&self, error: ConfigError) -> Option<Arc<CertifiedKey>> {
        tracing::warn!(%error, "the client certificate resolver's identity");
        if let Some(record) = &self.record {
            record.fail_locally(error);
        }
        None
    }
}

impl fmt::Debug for ClientCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertResolver").finish_non_exhaustive()
    }
}

impl ResolvesClientCert for ClientCertResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let request = CertificateRequest {
            // As sent on the wire: each a whole DER `Name`, as a certificate's issuer.
            acceptable_issuers: root_hint_subjects.iter().map(|s| s.to_vec()).collect(),
            signature_schemes: sigschemes
                .iter()
                .map(|s| s.as_str().unwrap_or("unknown").to_string())
                .collect(),
        };
        // A hook that panics fails this handshake, not the caller (round 35).
        let answer =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.hook.resolve(&request)));
        let identity = match answer {
            Ok(identity) => identity?,
            Err(_) => {
                return self.fail(ConfigError::new("the client certificate resolver panicked"))
            }
        };
        // An identity whose key is not its certificate's (round 35: the client then sent
        // no certificate, silently, and a `QueryPeer` server took it as anonymous).
        match prepare(&identity, &self.provider) {
            Ok(key) => Some(key),
            Err(error) => self.fail(error),
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}
