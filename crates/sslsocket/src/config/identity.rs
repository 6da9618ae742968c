//! What a server (or a client asked for a certificate) presents: a certificate chain, its
//! key and an OCSP staple ([`SslIdentity`]); choosing one by the server name the client
//! sent ([`ServerCertificateResolver`], the configuration's name map); choosing a client
//! certificate from the server's request ([`ClientCertificateResolver`]).

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::cert::{SslCertificate, SslKey};
use crate::error::ConfigError;

/// A certificate chain (leaf first), its private key and the DER OCSP response stapled
/// with it, if any: one identity a server can present for a server name, or a client for
/// a certificate request.
///
/// A plain value, cheap to clone (one reference count). The backend's prepared form (the
/// loaded signing key) is built on first use and kept with the value, so a resolver that
/// hands out clones of the same identity pays for the key once.
#[derive(Clone)]
pub struct SslIdentity(Arc<IdentityInner>);

struct IdentityInner {
    chain: Vec<SslCertificate>,
    key: SslKey,
    ocsp_response: Option<Vec<u8>>,
    /// The backends' prepared forms, one slot each ("rustls", "openssl").
    prepared: [OnceLock<Arc<dyn Any + Send + Sync>>; 2],
}

impl SslIdentity {
    /// A chain (leaf first) and its private key. An empty chain or a public key in the
    /// private key's place is an error; whether the key matches the certificate is checked
    /// when a backend prepares it (a server checks at `bind`/`reload`).
    pub fn new(chain: Vec<SslCertificate>, key: SslKey) -> Result<SslIdentity, ConfigError> {
        if chain.is_empty() {
            return Err(ConfigError::new(
                "an identity needs at least one certificate",
            ));
        }
        key.private_key_der()?;
        Ok(SslIdentity::build(chain, key, None))
    }

    fn build(chain: Vec<SslCertificate>, key: SslKey, ocsp: Option<Vec<u8>>) -> SslIdentity {
        SslIdentity(Arc::new(IdentityInner {
            chain,
            key,
            ocsp_response: ocsp,
            prepared: Default::default(),
        }))
    }

    /// Reads a PEM or DER certificate chain and a PEM or DER private key from files.
    pub fn from_files(
        certificate_file: impl AsRef<std::path::Path>,
        key_file: impl AsRef<std::path::Path>,
        passphrase: Option<&[u8]>,
    ) -> Result<SslIdentity, ConfigError> {
        let chain = SslCertificate::from_file(certificate_file)?;
        let key = SslKey::from_file(key_file, passphrase)?;
        SslIdentity::new(chain, key)
    }

    /// The same chain and key with this OCSP response stapled (DER), or none.
    pub fn with_ocsp_response(&self, response: Option<Vec<u8>>) -> SslIdentity {
        SslIdentity::build(self.0.chain.clone(), self.0.key.clone(), response)
    }

    /// The certificate chain, leaf first.
    pub fn certificate_chain(&self) -> &[SslCertificate] {
        &self.0.chain
    }

    /// The leaf certificate.
    pub fn certificate(&self) -> Option<&SslCertificate> {
        self.0.chain.first()
    }

    /// The private key.
    pub fn private_key(&self) -> &SslKey {
        &self.0.key
    }

    /// The OCSP response stapled with this identity (DER).
    pub fn ocsp_response(&self) -> Option<&[u8]> {
        self.0.ocsp_response.as_deref()
    }

    /// The backend's prepared form (`slot` 0: rustls, 1: openssl), built once.
    pub(crate) fn prepared<T, E>(
        &self,
        slot: usize,
        build: impl FnOnce(&SslIdentity) -> Result<Arc<T>, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
    {
        let Some(cell) = self.0.prepared.get(slot) else {
            return build(self);
        };
        if let Some(found) = cell.get().and_then(|v| Arc::clone(v).downcast::<T>().ok()) {
            return Ok(found);
        }
        let built = build(self)?;
        let _ = cell.set(Arc::clone(&built) as Arc<dyn Any + Send + Sync>);
        Ok(built)
    }
}

impl PartialEq for SslIdentity {
    fn eq(&self, other: &SslIdentity) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.chain == other.0.chain
                && self.0.key == other.0.key
                && self.0.ocsp_response == other.0.ocsp_response)
    }
}

impl fmt::Debug for SslIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslIdentity")
            .field("certificate_chain", &self.0.chain)
            .field(
                "ocsp_response",
                &self.0.ocsp_response.as_ref().map(Vec::len),
            )
            .finish_non_exhaustive()
    }
}

/// Chooses a server's certificate by the server name the client sent (SNI), inside the
/// handshake. Set with [`SslConfiguration::set_server_certificate_resolver`]; asked before
/// the configuration's name map ([`SslConfiguration::add_server_name_certificate`]).
///
/// [`SslConfiguration::set_server_certificate_resolver`]: crate::SslConfiguration::set_server_certificate_resolver
/// [`SslConfiguration::add_server_name_certificate`]: crate::SslConfiguration::add_server_name_certificate
pub trait ServerCertificateResolver: Send + Sync {
    /// The identity to present to a client that asked for `server_name` (`None`: the
    /// client sent no name). `None` falls through to the name map, then to the
    /// configuration's own certificate. Called on the handshake's thread: keep it quick
    /// (return prepared clones; the key is loaded once per identity value).
    fn resolve(&self, server_name: Option<&str>) -> Option<SslIdentity>;
}

/// What a server asked for in its CertificateRequest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateRequest {
    /// The DER-encoded distinguished names of the issuers the server accepts (empty: any).
    pub acceptable_issuers: Vec<Vec<u8>>,
    /// The signature schemes the server accepts, by their TLS names
    /// (`"ECDSA_NISTP256_SHA256"`, `"RSA_PSS_SHA256"`, `"ED25519"`, ...).
    pub signature_schemes: Vec<String>,
}

/// Chooses the client certificate from the server's CertificateRequest, inside the
/// handshake. Set with [`SslConfiguration::set_client_certificate_resolver`]; it replaces
/// the configuration's own certificate and key for that choice. The rustls backend
/// supports it; the OpenSSL backend refuses a configuration with one (its Rust binding
/// offers no client certificate callback).
///
/// [`SslConfiguration::set_client_certificate_resolver`]: crate::SslConfiguration::set_client_certificate_resolver
pub trait ClientCertificateResolver: Send + Sync {
    /// The identity to send, or `None` to send no certificate.
    fn resolve(&self, request: &CertificateRequest) -> Option<SslIdentity>;
}

/// A name pattern of the server-name map: an exact DNS name, or `*.` followed by one,
/// which matches exactly one more label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NamePattern {
    /// Lowercase, without the trailing dot; for a wildcard, the part after `*.`.
    name: String,
    wildcard: bool,
}

impl NamePattern {
    pub(crate) fn parse(pattern: &str) -> Result<NamePattern, ConfigError> {
        let lower = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, lower),
        };
        // A Unicode name stands for its A-labels, the form clients send (SNI is ASCII).
        let name = match crate::verify::hostname::to_ace(&name) {
            Some(ace) => ace.to_ascii_lowercase(),
            None => String::new(),
        };
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(ConfigError::new(format!(
                "server name pattern `{pattern}`: expected a DNS name or `*.` and a DNS name"
            )));
        }
        Ok(NamePattern { name, wildcard })
    }

    /// Whether `server_name` (as the client sent it) matches: exact names case-insensitively,
    /// `*.example.com` exactly one label left of `example.com`.
    pub(crate) fn matches(&self, server_name: &str) -> bool {
        let sent = server_name.trim_end_matches('.');
        if !self.wildcard {
            return sent.eq_ignore_ascii_case(&self.name);
        }
        let Some((first, rest)) = sent.split_once('.') else {
            return false;
        };
        !first.is_empty() && rest.eq_ignore_ascii_case(&self.name)
    }

    pub(crate) fn is_wildcard(&self) -> bool {
        self.wildcard
    }
}

/// The configuration's server-name map: exact names win over wildcards, then the order
/// of insertion.
#[derive(Clone, Default, PartialEq)]
pub(crate) struct ServerNames {
    pub(crate) entries: Vec<(String, NamePattern, SslIdentity)>,
}

impl ServerNames {
    /// The index of the entry for `server_name`.
    pub(crate) fn lookup(&self, server_name: &str) -> Option<usize> {
        let exact = self
            .entries
            .iter()
            .position(|(_, p, _)| !p.is_wildcard() && p.matches(server_name));
        exact.or_else(|| {
            self.entries
                .iter()
                .position(|(_, p, _)| p.is_wildcard() && p.matches(server_name))
        })
    }
}

/// What a running server presents, replaced as a whole by `reload` on the servers: its
/// default identity (certificate chain, key, OCSP staple) and the identities for server
/// names (as [`SslConfiguration::add_server_name_certificate`]).
///
/// [`SslConfiguration::add_server_name_certificate`]: crate::SslConfiguration::add_server_name_certificate
#[derive(Clone, Debug, PartialEq)]
pub struct ServerCredentials {
    pub(crate) identity: SslIdentity,
    pub(crate) server_names: Vec<(String, SslIdentity)>,
}

impl ServerCredentials {
    /// The default identity, with no server-name entries.
    pub fn new(identity: SslIdentity) -> ServerCredentials {
        ServerCredentials {
            identity,
            server_names: Vec::new(),
        }
    }

    /// Adds the identity for clients asking for `pattern` (exact, or `*.` matching one
    /// label); a malformed pattern is an error.
    pub fn add_server_name(
        &mut self,
        pattern: &str,
        identity: SslIdentity,
    ) -> Result<&mut ServerCredentials, ConfigError> {
        NamePattern::parse(pattern)?;
        self.server_names.push((pattern.to_string(), identity));
        Ok(self)
    }

    /// The default identity.
    pub fn identity(&self) -> &SslIdentity {
        &self.identity
    }

    /// The server-name entries, in the order added.
    pub fn server_names(&self) -> &[(String, SslIdentity)] {
        &self.server_names
    }
}

/// The resolver hook, compared by identity.
pub(crate) struct Hook<T: ?Sized>(pub(crate) Arc<T>);

impl<T: ?Sized> Clone for Hook<T> {
    fn clone(&self) -> Hook<T> {
        Hook(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> PartialEq for Hook<T> {
    fn eq(&self, other: &Hook<T>) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_matches_exactly_one_label() -> Result<(), ConfigError> {
        let p = NamePattern::parse("*.Example.com")?;
        assert!(p.matches("a.example.com"));
        assert!(p.matches("WWW.EXAMPLE.COM."));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("a.b.example.com"));
        assert!(!p.matches("aexample.com"));
        assert!(!p.matches(".example.com"));
        Ok(())
    }

    #[test]
    fn exact_names_match_case_insensitively_and_bad_patterns_are_refused() -> Result<(), ConfigError>
    {
        let p = NamePattern::parse("api.example.com")?;
        assert!(p.matches("API.example.com"));
        assert!(!p.matches("x.api.example.com"));
        for bad in [
            "",
            "*.",
            "a..b",
            "*.*.example.com",
            "exa mple.com",
            "a.*.com",
        ] {
            assert!(NamePattern::parse(bad).is_err(), "{bad} accepted");
        }
        Ok(())
    }
}
