//! `SslConfiguration`: everything a handshake needs, as one value (Qt's `QSslConfiguration`).

mod defaults;
mod identity;
mod live;

use std::any::Any;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

pub use defaults::{default_configuration, set_default_configuration, system_ca_certificates};
pub use identity::{
    CertificateRequest, ClientCertificateResolver, ServerCertificateResolver, ServerCredentials,
    SslIdentity,
};
pub(crate) use identity::{Hook, NamePattern, ServerNames};
pub use live::ReloadHandle;

use crate::cert::{SslCertificate, SslCipher, SslDiffieHellmanParameters, SslKey};
use crate::curve::SslEllipticCurve;
use crate::enums::{PeerVerifyMode, SslProtocol};
use crate::error::{ConfigError, ConfigErrorKind};

/// The most bytes an ALPN list may take encoded (RFC 7301's `ProtocolNameList`, one length
/// byte per name). The RFC allows 65,535, but a ClientHello's extensions share one 64 KiB
/// length with the key shares and a session ticket (up to 36 KiB): a list near the RFC's
/// bound made rustls build a hello whose length wrapped (debug builds panicked), and
/// OpenSSL fail with an internal error (round 34). Real lists take a few dozen bytes.
pub const ALPN_LIST_LIMIT: usize = 8 * 1024;

/// The ALPN list on the wire: each name 1 to 255 bytes, the whole at most
/// [`ALPN_LIST_LIMIT`] bytes; both backends check it before a handshake.
pub(crate) fn alpn_wire(protocols: &[Vec<u8>]) -> Result<Vec<u8>, ConfigError> {
    let mut wire = Vec::new();
    for protocol in protocols {
        let len = u8::try_from(protocol.len())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError::invalid("ALPN protocol names must be 1 to 255 bytes"))?;
        wire.push(len);
        wire.extend_from_slice(protocol);
        if wire.len() > ALPN_LIST_LIMIT {
            return Err(ConfigError::invalid(format!(
                "the ALPN protocol list is too long: at most {ALPN_LIST_LIMIT} bytes encoded"
            )));
        }
    }
    Ok(wire)
}

/// The TLS configuration of a socket or server (Qt's `QSslConfiguration`).
///
/// A plain value: clone it, change it, hand it to sockets. A socket copies the
/// configuration when it is made (changing the process default later does not change it,
/// as in Qt). Input is parsed on entry, so a configuration never holds unparsed data.
///
/// The backend's own configuration (a rustls `ClientConfig`/`ServerConfig`) is built once
/// per configuration value and shared by every socket made from it or its clones; any
/// setter starts a fresh one.
#[derive(Clone, PartialEq)]
pub struct SslConfiguration {
    settings: Arc<Settings>,
    cache: BackendCache,
}

/// The values of a configuration, shared by its clones until one of them changes (a
/// socket's copy costs one reference count, not a copy of every list).
#[derive(Clone, PartialEq)]
struct Settings {
    protocol: SslProtocol,
    peer_verify_mode: PeerVerifyMode,
    peer_verify_depth: u32,
    local_certificate_chain: Vec<SslCertificate>,
    private_key: Option<SslKey>,
    ca_certificates: Vec<SslCertificate>,
    system_ca_on_demand: bool,
    allowed_next_protocols: Vec<Vec<u8>>,
    handshake_must_interrupt_on_error: bool,
    missing_certificate_is_fatal: bool,
    ocsp_stapling: bool,
    ciphers: Vec<SslCipher>,
    elliptic_curves: Vec<SslEllipticCurve>,
    diffie_hellman_parameters: SslDiffieHellmanParameters,
    key_logging: bool,
    keying_material_export: bool,
    pinned_public_keys: Vec<[u8; 32]>,
    ssl_options: Vec<SslOption>,
    ocsp_response: Option<Vec<u8>>,
    pre_shared_key_identity_hint: Vec<u8>,
    pre_shared_key_authenticates_peer: bool,
    server_names: ServerNames,
    server_resolver: Option<Hook<dyn ServerCertificateResolver>>,
    client_resolver: Option<Hook<dyn ClientCertificateResolver>>,
}

/// Behaviour switches (Qt's `QSsl::SslOption`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SslOption {
    /// Qt: no empty fragments (TLS 1.0 CBC workaround); always so with rustls.
    SslOptionDisableEmptyFragments,
    /// No session tickets: the client resumes nothing, the server issues none.
    SslOptionDisableSessionTickets,
    /// No compression; always so.
    SslOptionDisableCompression,
    /// No SNI in the ClientHello.
    SslOptionDisableServerNameIndication,
    /// No legacy renegotiation; always so.
    SslOptionDisableLegacyRenegotiation,
    /// Sessions are not shared between sockets (with rustls: not stored at all).
    SslOptionDisableSessionSharing,
    /// Sessions are not exported (`session_ticket()`); always so with rustls.
    SslOptionDisableSessionPersistence,
    /// The server follows the client's cipher order.
    SslOptionDisableServerCipherPreference,
}

impl Default for SslConfiguration {
    /// Qt's defaults: secure protocols (TLS 1.2 and 1.3), `AutoVerifyPeer`, unlimited
    /// depth, no local certificate, system CAs loaded on demand.
    fn default() -> SslConfiguration {
        SslConfiguration {
            settings: Arc::new(Settings::default()),
            cache: BackendCache::default(),
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            protocol: SslProtocol::SecureProtocols,
            peer_verify_mode: PeerVerifyMode::AutoVerifyPeer,
            peer_verify_depth: 0,
            local_certificate_chain: Vec::new(),
            private_key: None,
            ca_certificates: Vec::new(),
            system_ca_on_demand: true,
            allowed_next_protocols: Vec::new(),
            handshake_must_interrupt_on_error: false,
            missing_certificate_is_fatal: false,
            ocsp_stapling: false,
            ocsp_response: None,
            ciphers: Vec::new(),
            elliptic_curves: Vec::new(),
            diffie_hellman_parameters: SslDiffieHellmanParameters::default(),
            key_logging: false,
            keying_material_export: false,
            pinned_public_keys: Vec::new(),
            // In declaration order, as `set_ssl_option` keeps them: a set of flags, so
            // equal configurations compare equal whatever order options were set in.
            ssl_options: vec![
                SslOption::SslOptionDisableEmptyFragments,
                SslOption::SslOptionDisableCompression,
                SslOption::SslOptionDisableLegacyRenegotiation,
                SslOption::SslOptionDisableSessionPersistence,
            ],
            pre_shared_key_identity_hint: Vec::new(),
            pre_shared_key_authenticates_peer: false,
            server_names: ServerNames::default(),
            server_resolver: None,
            client_resolver: None,
        }
    }
}

impl SslConfiguration {
    /// The process-wide default configuration (Qt's `defaultConfiguration()`).
    pub fn default_configuration() -> SslConfiguration {
        default_configuration()
    }

    /// Replaces the process-wide default (Qt's `setDefaultConfiguration()`); sockets made
    /// before keep their copy.
    pub fn set_default_configuration(configuration: SslConfiguration) {
        set_default_configuration(configuration)
    }

    /// The values, for a change: copied first when a clone shares them.
    fn settings_mut(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    fn touch(&mut self) -> &mut Self {
        self.cache = BackendCache::default();
        self
    }

    /// The allowed protocol versions.
    pub fn protocol(&self) -> SslProtocol {
        self.settings.protocol
    }

    /// Sets the allowed protocol versions for the next handshake.
    pub fn set_protocol(&mut self, protocol: SslProtocol) -> &mut Self {
        self.settings_mut().protocol = protocol;
        self.touch()
    }

    /// How the peer is verified.
    pub fn peer_verify_mode(&self) -> PeerVerifyMode {
        self.settings.peer_verify_mode
    }

    /// Sets how the peer is verified. `VerifyNone` is dangerous: the peer's identity is not
    /// checked at all.
    pub fn set_peer_verify_mode(&mut self, mode: PeerVerifyMode) -> &mut Self {
        self.settings_mut().peer_verify_mode = mode;
        self.touch()
    }

    /// The maximum number of intermediate CA certificates between the peer's certificate
    /// and the trust anchor (0 = no limit), counted as OpenSSL does.
    pub fn peer_verify_depth(&self) -> u32 {
        self.settings.peer_verify_depth
    }

    /// Sets the verify depth (0 = no limit).
    pub fn set_peer_verify_depth(&mut self, depth: u32) -> &mut Self {
        self.settings_mut().peer_verify_depth = depth;
        self.touch()
    }

    /// Our certificate chain, leaf first.
    pub fn local_certificate_chain(&self) -> &[SslCertificate] {
        &self.settings.local_certificate_chain
    }

    /// Our leaf certificate.
    pub fn local_certificate(&self) -> Option<&SslCertificate> {
        self.settings.local_certificate_chain.first()
    }

    /// Sets our certificate chain, leaf first.
    pub fn set_local_certificate_chain(&mut self, chain: Vec<SslCertificate>) -> &mut Self {
        self.settings_mut().local_certificate_chain = chain;
        self.touch()
    }

    /// Sets our leaf certificate alone.
    pub fn set_local_certificate(&mut self, certificate: SslCertificate) -> &mut Self {
        self.set_local_certificate_chain(vec![certificate])
    }

    /// Our private key.
    pub fn private_key(&self) -> Option<&SslKey> {
        self.settings.private_key.as_ref()
    }

    /// Sets our private key.
    pub fn set_private_key(&mut self, key: SslKey) -> &mut Self {
        self.settings_mut().private_key = Some(key);
        self.touch()
    }

    /// The CA certificates added or set by the application (the system store is not
    /// included; see [`system_ca_certificates`]).
    pub fn ca_certificates(&self) -> &[SslCertificate] {
        &self.settings.ca_certificates
    }

    /// Replaces the CA list; this turns off loading of the system store (as in Qt, a
    /// configuration with an explicit CA list never loads system roots).
    pub fn set_ca_certificates(&mut self, certificates: Vec<SslCertificate>) -> &mut Self {
        self.settings_mut().ca_certificates = certificates;
        self.settings_mut().system_ca_on_demand = false;
        self.touch()
    }

    /// Adds one trusted CA certificate; the system store stays in use.
    pub fn add_ca_certificate(&mut self, certificate: SslCertificate) -> &mut Self {
        self.settings_mut().ca_certificates.push(certificate);
        self.touch()
    }

    /// Adds trusted CA certificates; the system store stays in use.
    pub fn add_ca_certificates(&mut self, certificates: Vec<SslCertificate>) -> &mut Self {
        self.settings_mut().ca_certificates.extend(certificates);
        self.touch()
    }

    /// Adds the CA certificates in a PEM or DER file.
    pub fn add_ca_certificates_from_file(
        &mut self,
        path: impl AsRef<Path>,
    ) -> Result<&mut Self, ConfigError> {
        let certificates = SslCertificate::from_file(path)?;
        Ok(self.add_ca_certificates(certificates))
    }

    /// Whether the system CA store is loaded (on the first handshake that needs it).
    pub fn system_ca_on_demand(&self) -> bool {
        self.settings.system_ca_on_demand
    }

    /// Turns loading of the system CA store on or off.
    pub fn set_system_ca_on_demand(&mut self, on: bool) -> &mut Self {
        self.settings_mut().system_ca_on_demand = on;
        self.touch()
    }

    /// The ALPN protocols offered (client) or accepted (server), in preference order.
    pub fn allowed_next_protocols(&self) -> &[Vec<u8>] {
        &self.settings.allowed_next_protocols
    }

    /// Sets the ALPN protocols. Each name is 1 to 255 bytes and the list, encoded (one
    /// length byte per name), at most [`ALPN_LIST_LIMIT`] bytes; a handshake with another
    /// list fails at its start with `SslInvalidUserDataError`.
    pub fn set_allowed_next_protocols(&mut self, protocols: Vec<Vec<u8>>) -> &mut Self {
        self.settings_mut().allowed_next_protocols = protocols;
        self.touch()
    }

    /// Whether the handshake stops at the first verification error
    /// (`HandshakeInterruptedOnError`).
    pub fn handshake_must_interrupt_on_error(&self) -> bool {
        self.settings.handshake_must_interrupt_on_error
    }

    /// Sets early error reporting.
    pub fn set_handshake_must_interrupt_on_error(&mut self, on: bool) -> &mut Self {
        self.settings_mut().handshake_must_interrupt_on_error = on;
        self.touch()
    }

    /// Whether a server in `VerifyPeer` mode fails a client without a certificate.
    pub fn missing_certificate_is_fatal(&self) -> bool {
        self.settings.missing_certificate_is_fatal
    }

    /// Sets whether a missing client certificate is fatal.
    pub fn set_missing_certificate_is_fatal(&mut self, on: bool) -> &mut Self {
        self.settings_mut().missing_certificate_is_fatal = on;
        self.touch()
    }

    /// Whether the client asks for a stapled OCSP response.
    pub fn ocsp_stapling_enabled(&self) -> bool {
        self.settings.ocsp_stapling
    }

    /// Sets whether the client asks for a stapled OCSP response.
    pub fn set_ocsp_stapling_enabled(&mut self, on: bool) -> &mut Self {
        self.settings_mut().ocsp_stapling = on;
        self.touch()
    }

    /// The cipher suites allowed, in preference order; empty means the backend's defaults.
    pub fn ciphers(&self) -> &[SslCipher] {
        &self.settings.ciphers
    }

    /// Sets the cipher suites, in preference order (Qt's `setCiphers(list)`).
    pub fn set_ciphers(&mut self, ciphers: Vec<SslCipher>) -> &mut Self {
        self.settings_mut().ciphers = ciphers;
        self.touch()
    }

    /// Sets the cipher suites from a colon-separated list of IANA or OpenSSL names (Qt's
    /// `setCiphers(QString)`); an unknown name is an error.
    pub fn set_ciphers_str(&mut self, list: &str) -> Result<&mut Self, ConfigError> {
        let mut ciphers = Vec::new();
        for name in list.split(':').map(str::trim).filter(|n| !n.is_empty()) {
            let cipher =
                SslCipher::from_name(name, SslProtocol::UnknownProtocol).ok_or_else(|| {
                    ConfigError::with_kind(
                        ConfigErrorKind::Unsupported,
                        format!("cipher `{name}` is not supported"),
                    )
                })?;
            ciphers.push(cipher);
        }
        if ciphers.is_empty() {
            return Err(ConfigError::with_kind(
                ConfigErrorKind::InvalidSetting,
                "cipher list: no cipher named",
            ));
        }
        Ok(self.set_ciphers(ciphers))
    }

    /// Every cipher suite the active backend supports (Qt's `supportedCiphers()`); see
    /// [`crate::backend::supported_ciphers`] for another backend's.
    pub fn supported_ciphers() -> Vec<SslCipher> {
        crate::backend::supported_ciphers(None)
    }

    /// The key exchange groups allowed; empty means the backend's defaults (with the
    /// post-quantum hybrid `X25519MLKEM768` first).
    pub fn elliptic_curves(&self) -> &[SslEllipticCurve] {
        &self.settings.elliptic_curves
    }

    /// Sets the key exchange groups, in preference order (Qt's `setEllipticCurves`).
    pub fn set_elliptic_curves(&mut self, curves: Vec<SslEllipticCurve>) -> &mut Self {
        self.settings_mut().elliptic_curves = curves;
        self.touch()
    }

    /// The finite-field Diffie-Hellman parameters a server uses for `DHE-*` suites (Qt's
    /// `diffieHellmanParameters()`); empty means the backend's default (with OpenSSL, a
    /// group it picks to match the certificate's key, as strong as Qt's default).
    pub fn diffie_hellman_parameters(&self) -> &SslDiffieHellmanParameters {
        &self.settings.diffie_hellman_parameters
    }

    /// Sets the Diffie-Hellman parameters (Qt's `setDiffieHellmanParameters`). Only the
    /// OpenSSL backend uses them; invalid parameters fail when a server session is made,
    /// before any byte is sent, and the rustls backend refuses any non-empty value.
    pub fn set_diffie_hellman_parameters(
        &mut self,
        parameters: SslDiffieHellmanParameters,
    ) -> &mut Self {
        self.settings_mut().diffie_hellman_parameters = parameters;
        self.touch()
    }

    /// Every key exchange group the active backend supports (Qt's
    /// `supportedEllipticCurves()`).
    pub fn supported_elliptic_curves() -> Vec<SslEllipticCurve> {
        crate::backend::supported_elliptic_curves(None)
    }

    /// Whether TLS secrets are written to the file named by `SSLKEYLOGFILE` (NSS key log
    /// format, for Wireshark). Dangerous: anyone with the file can decrypt the traffic.
    pub fn key_logging(&self) -> bool {
        self.settings.key_logging
    }

    /// Dangerous: turns key logging to `SSLKEYLOGFILE` on or off (off by default; nothing
    /// is written unless the variable is set too).
    pub fn set_key_logging(&mut self, on: bool) -> &mut Self {
        self.settings_mut().key_logging = on;
        self.touch()
    }

    /// Whether connections made with this configuration can export keying material
    /// (RFC 5705 / RFC 8446 §7.5, `export_keying_material` on the sockets).
    pub fn keying_material_export(&self) -> bool {
        self.settings.keying_material_export
    }

    /// Asks for connections that can export keying material (off by default). The rustls
    /// backend otherwise runs each connection on rustls's unbuffered API, whose buffers are
    /// freed whenever they are empty (an idle connection holds only the TLS state), but
    /// which cannot export; with this on, it uses rustls's buffered connections, which
    /// keep about 4 KiB more per connection. The OpenSSL backend can always export.
    pub fn set_keying_material_export(&mut self, on: bool) -> &mut Self {
        self.settings_mut().keying_material_export = on;
        self.touch()
    }

    /// The SHA-256 digests of the SubjectPublicKeyInfo the peer's chain must contain.
    pub fn pinned_public_keys(&self) -> &[[u8; 32]] {
        &self.settings.pinned_public_keys
    }

    /// Pins the peer: one certificate of its chain must have one of these SPKI SHA-256
    /// digests (as `openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256`).
    /// The chain is still verified as usual. A pin matches the leaf (the handshake proves
    /// the peer holds its key) or a certificate of the path whose signatures link it to the
    /// leaf, never one the peer merely appended. A peer without a pinned key gets
    /// `CertificateRejected` on the leaf and is refused in every verify mode (`VerifyNone`
    /// included, where it is the one error reported): no ignore list, hook or pause lifts
    /// it. A peer that shows no certificate (a server's client without one, a pre-shared-key
    /// handshake) is refused too. An empty list turns pinning off.
    pub fn set_pinned_public_keys(&mut self, digests: Vec<[u8; 32]>) -> &mut Self {
        self.settings_mut().pinned_public_keys = digests;
        self.touch()
    }

    /// The DER OCSP response a server staples with its own certificate, if any.
    pub fn ocsp_response(&self) -> Option<&[u8]> {
        self.settings.ocsp_response.as_deref()
    }

    /// Sets the DER OCSP response a server staples with its own certificate (Qt's backend
    /// option for it). A plain value like every other setting: it changes this
    /// configuration only, not its clones. To replace the staple of a running server, use
    /// the server's `reload`/`set_ocsp_response`.
    pub fn set_ocsp_response(&mut self, response: Option<Vec<u8>>) -> &mut Self {
        self.settings_mut().ocsp_response = response;
        self.touch()
    }

    /// Our certificate chain, key and OCSP staple as one identity, if a chain and key are
    /// set.
    pub fn local_identity(&self) -> Option<SslIdentity> {
        let key = self.settings.private_key.clone()?;
        let identity = SslIdentity::new(self.settings.local_certificate_chain.clone(), key).ok()?;
        Some(identity.with_ocsp_response(self.settings.ocsp_response.clone()))
    }

    /// Adds the identity a server presents to clients whose server name (SNI) matches
    /// `pattern`: an exact DNS name, or `*.example.com`, which matches exactly one label
    /// (`a.example.com`, not `example.com` nor `a.b.example.com`). Exact names win over
    /// wildcards, then the order added; a client matching none gets the configuration's
    /// own certificate. A malformed pattern is an error.
    pub fn add_server_name_certificate(
        &mut self,
        pattern: &str,
        identity: SslIdentity,
    ) -> Result<&mut Self, ConfigError> {
        let parsed = NamePattern::parse(pattern)?;
        self.settings_mut()
            .server_names
            .entries
            .push((pattern.to_string(), parsed, identity));
        Ok(self.touch())
    }

    /// The server-name map: each pattern with its identity, in the order added.
    pub fn server_name_certificates(&self) -> Vec<(&str, &SslIdentity)> {
        self.settings
            .server_names
            .entries
            .iter()
            .map(|(pattern, _, identity)| (pattern.as_str(), identity))
            .collect()
    }

    /// Empties the server-name map.
    pub fn clear_server_name_certificates(&mut self) -> &mut Self {
        self.settings_mut().server_names = ServerNames::default();
        self.touch()
    }

    pub(crate) fn server_names(&self) -> &ServerNames {
        &self.settings.server_names
    }

    /// Sets the hook that chooses a server's certificate by the name the client sent
    /// (asked first; `None` from it falls through to the name map, then to the
    /// configuration's own certificate); `None` removes it.
    pub fn set_server_certificate_resolver(
        &mut self,
        resolver: Option<Arc<dyn ServerCertificateResolver>>,
    ) -> &mut Self {
        self.settings_mut().server_resolver = resolver.map(Hook);
        self.touch()
    }

    /// The server certificate hook, if set.
    pub fn server_certificate_resolver(&self) -> Option<Arc<dyn ServerCertificateResolver>> {
        self.settings
            .server_resolver
            .as_ref()
            .map(|h| Arc::clone(&h.0))
    }

    /// Sets the hook that chooses our client certificate from the server's
    /// CertificateRequest (it replaces the configuration's own certificate and key as a
    /// client); `None` removes it. rustls backend only: the OpenSSL backend refuses a
    /// client configuration with one.
    pub fn set_client_certificate_resolver(
        &mut self,
        resolver: Option<Arc<dyn ClientCertificateResolver>>,
    ) -> &mut Self {
        self.settings_mut().client_resolver = resolver.map(Hook);
        self.touch()
    }

    /// The client certificate hook, if set.
    pub fn client_certificate_resolver(&self) -> Option<Arc<dyn ClientCertificateResolver>> {
        self.settings
            .client_resolver
            .as_ref()
            .map(|h| Arc::clone(&h.0))
    }

    /// A copy with an engine cache of its own (for a backend's engine to keep without a
    /// reference cycle through the cache).
    #[cfg(feature = "openssl")]
    pub(crate) fn detached(&self) -> SslConfiguration {
        let mut next = self.clone();
        next.touch();
        next
    }

    /// This configuration presenting `identity` alone: no name map, no resolver hook (a
    /// backend's per-name engine).
    #[cfg(feature = "openssl")]
    pub(crate) fn for_identity(&self, identity: &SslIdentity) -> SslConfiguration {
        let mut next = self.with_credentials(&ServerCredentials::new(identity.clone()));
        next.settings_mut().server_resolver = None;
        next.touch();
        next
    }

    /// This configuration with a server's credentials in place of its certificate, key,
    /// OCSP staple and server-name map (what the servers' `reload` does).
    pub(crate) fn with_credentials(&self, credentials: &ServerCredentials) -> SslConfiguration {
        let mut next = self.clone();
        let identity = &credentials.identity;
        {
            let settings = next.settings_mut();
            settings.local_certificate_chain = identity.certificate_chain().to_vec();
            settings.private_key = Some(identity.private_key().clone());
            settings.ocsp_response = identity.ocsp_response().map(<[u8]>::to_vec);
            settings.server_names = ServerNames::default();
            for (pattern, identity) in &credentials.server_names {
                if let Ok(parsed) = NamePattern::parse(pattern) {
                    settings
                        .server_names
                        .entries
                        .push((pattern.clone(), parsed, identity.clone()));
                }
            }
        }
        next.touch();
        next
    }

    /// The identity hint a server sends to clients in a PSK handshake (Qt's
    /// `preSharedKeyIdentityHint()`); empty means none.
    pub fn pre_shared_key_identity_hint(&self) -> &[u8] {
        &self.settings.pre_shared_key_identity_hint
    }

    /// Sets the identity hint a server sends in a PSK handshake (Qt's
    /// `setPreSharedKeyIdentityHint()`): TLS 1.2 PSK key exchanges carry it, and the
    /// client's `SslHooks::pre_shared_key` sees it. Used by backends with PSK support.
    pub fn set_pre_shared_key_identity_hint(&mut self, hint: impl Into<Vec<u8>>) -> &mut Self {
        self.settings_mut().pre_shared_key_identity_hint = hint.into();
        self.touch()
    }

    /// Whether a client whose server was authenticated by a pre-shared key (and showed no
    /// certificate) is accepted without `NoPeerCertificate` (see
    /// [`set_pre_shared_key_authenticates_peer`](Self::set_pre_shared_key_authenticates_peer)).
    pub fn pre_shared_key_authenticates_peer(&self) -> bool {
        self.settings.pre_shared_key_authenticates_peer
    }

    /// The application's statement that a peer authenticated by a pre-shared key (the key
    /// its `SslHooks::pre_shared_key` gave or checked) needs no certificate: such a
    /// handshake reports no `NoPeerCertificate`, on a client or on a server in `VerifyPeer`
    /// mode. Off by default, as in Qt, where a client in `VerifyPeer` mode reports
    /// `NoPeerCertificate` after a certificate-less PSK handshake and fails unless it is
    /// ignored (`simplePskConnect`). Narrower than `VerifyNone` or ignoring the error: a
    /// peer that shows a certificate is verified as always, and a server still requires
    /// one of a client that used no key. (Not in Qt.)
    pub fn set_pre_shared_key_authenticates_peer(&mut self, on: bool) -> &mut Self {
        self.settings_mut().pre_shared_key_authenticates_peer = on;
        self.touch()
    }

    /// Whether an option is on (Qt's `testSslOption`).
    pub fn test_ssl_option(&self, option: SslOption) -> bool {
        self.settings.ssl_options.contains(&option)
    }

    /// Turns an option on or off (Qt's `setSslOption`).
    pub fn set_ssl_option(&mut self, option: SslOption, on: bool) -> &mut Self {
        // A set of flags, kept sorted (Qt compares the flags, not the order they were set
        // in; round 35: setting an option already on made the configuration unequal).
        let options = &mut self.settings_mut().ssl_options;
        options.retain(|o| *o != option);
        if on {
            options.push(option);
            options.sort_unstable();
        }
        self.touch()
    }

    /// The backend's cached engine configuration for `key`, built by `build` the first time.
    /// Lock-free once built (one atomic load per lookup): every socket of a server looks
    /// its engine up here.
    pub(crate) fn cached<T, E>(
        &self,
        key: &'static str,
        build: impl FnOnce() -> Result<Arc<T>, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
    {
        let Some(slot) = self.cache.slot(key) else {
            return self.cached_other(key, build);
        };
        if let Some(found) = slot.get().and_then(|v| Arc::clone(v).downcast::<T>().ok()) {
            return Ok(found);
        }
        // Built outside any lock: two first uses at once may both build; one result is kept
        // and both get it.
        let built = build()?;
        let _ = slot.set(Arc::clone(&built) as Arc<dyn Any + Send + Sync>);
        Ok(slot
            .get()
            .and_then(|v| Arc::clone(v).downcast::<T>().ok())
            .unwrap_or(built))
    }

    /// `cached` for a key without a slot of its own (none today).
    fn cached_other<T, E>(
        &self,
        key: &'static str,
        build: impl FnOnce() -> Result<Arc<T>, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
    {
        let mut entries = match self.cache.0.other.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (k, value) in entries.iter() {
            if *k == key {
                if let Ok(found) = Arc::clone(value).downcast::<T>() {
                    return Ok(found);
                }
            }
        }
        let built = build()?;
        entries.push((key, Arc::clone(&built) as Arc<dyn Any + Send + Sync>));
        Ok(built)
    }
}

impl fmt::Debug for SslConfiguration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslConfiguration")
            .field("protocol", &self.settings.protocol)
            .field("peer_verify_mode", &self.settings.peer_verify_mode)
            .field("peer_verify_depth", &self.settings.peer_verify_depth)
            .field(
                "keying_material_export",
                &self.settings.keying_material_export,
            )
            .field(
                "local_certificate_chain",
                &self.settings.local_certificate_chain,
            )
            .field("private_key", &self.settings.private_key)
            .field("ca_certificates", &self.settings.ca_certificates.len())
            .field("system_ca_on_demand", &self.settings.system_ca_on_demand)
            .field(
                "allowed_next_protocols",
                &self.settings.allowed_next_protocols,
            )
            .finish_non_exhaustive()
    }
}

/// Engine configurations built from one configuration value, shared by its clones.
/// Never part of equality.
type CacheEntries = Vec<(&'static str, Arc<dyn Any + Send + Sync>)>;
type Engine = OnceLock<Arc<dyn Any + Send + Sync>>;

/// The keys the backends use, each with a slot of its own.
const ENGINE_KEYS: [&str; 4] = [
    "rustls-client",
    "rustls-server",
    "openssl-client",
    "openssl-server",
];

#[derive(Default)]
struct CacheSlots {
    engines: [Engine; ENGINE_KEYS.len()],
    other: Mutex<CacheEntries>,
}

#[derive(Clone, Default)]
struct BackendCache(Arc<CacheSlots>);

impl BackendCache {
    fn slot(&self, key: &str) -> Option<&Engine> {
        let index = ENGINE_KEYS.iter().position(|k| *k == key)?;
        self.0.engines.get(index)
    }
}

impl PartialEq for BackendCache {
    fn eq(&self, _other: &BackendCache) -> bool {
        true
    }
}
