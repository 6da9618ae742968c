//! Building an OpenSSL `SslContext` from an `SslConfiguration`, once per configuration value.
//!
//! Everything that is the same for every connection of a configuration lives here:
//! protocol range, ciphers, groups, trust store, our certificate and key, ALPN, session
//! caching, key logging. What belongs to one connection (peer name, verify callback) is set
//! on the `Ssl` by the session.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use openssl::dh::Dh;
use openssl::ex_data::Index;
use openssl::pkey::PKey;
use openssl::ssl::{
    AlpnError, NameType, SniError, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions,
    SslRef, SslSessionCacheMode, SslVerifyMode, SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

use crate::backend::openssl::sessions::{ClientSessions, ServerOutcomes};
use crate::backend::openssl::verifier::{ConnectionState, KnownCertificate};
use crate::backend::openssl::{alerts, psk};
use crate::cert::SslCertificate;
use crate::config::{
    system_ca_certificates, ServerCertificateResolver, ServerNames, SslConfiguration, SslIdentity,
    SslOption,
};
use crate::enums::{PeerVerifyMode, SslMode, SslProtocol, TlsVersion};
use crate::error::ConfigError;
use crate::verify::kept::PeerParses;

/// A context ready to make connections, with what the sessions need to know about it.
pub(crate) struct Engine {
    pub(crate) context: SslContext,
    /// The client sends SNI.
    pub(crate) send_sni: bool,
    /// A client's sessions, for resumption (none when tickets or sharing are disabled).
    pub(crate) sessions: Option<Arc<ClientSessions>>,
    /// A server's record of the client verification behind each session.
    pub(crate) server_outcomes: Option<Arc<ServerOutcomes>>,
    /// The configuration's CA certificates, already read, each with the OpenSSL object in
    /// the trust store: a chain that ends in one of them reuses it instead of reading the
    /// same bytes again (see `ConnectionState`).
    pub(crate) anchors: Arc<[KnownCertificate]>,
    /// The parses of the certificates peers sent last, for every connection of it.
    pub(crate) peers: Arc<PeerParses>,
}

/// The cached client engine of `configuration`.
pub(crate) fn client_engine(configuration: &SslConfiguration) -> Result<Arc<Engine>, ConfigError> {
    configuration.cached("openssl-client", || {
        build(configuration, SslMode::SslClientMode).map(Arc::new)
    })
}

/// The cached server engine of `configuration`.
pub(crate) fn server_engine(configuration: &SslConfiguration) -> Result<Arc<Engine>, ConfigError> {
    configuration.cached("openssl-server", || {
        build(configuration, SslMode::SslServerMode).map(Arc::new)
    })
}

/// Where each connection keeps the state its context-wide callbacks need.
pub(crate) fn connection_index() -> Result<Index<Ssl, Arc<ConnectionState>>, ConfigError> {
    static INDEX: OnceLock<Option<Index<Ssl, Arc<ConnectionState>>>> = OnceLock::new();
    INDEX
        .get_or_init(|| Ssl::new_ex_index().ok())
        .ok_or_else(|| ConfigError::new("openssl: no room for connection data"))
}

fn openssl_error(what: &str) -> impl Fn(openssl::error::ErrorStack) -> ConfigError + '_ {
    move |e| ConfigError::new(format!("{what}: {e}"))
}

/// As [`openssl_error`], with OpenSSL's "key values mismatch" (the key belongs to another
/// certificate) as [`ConfigErrorKind::KeyMismatch`](crate::ConfigErrorKind::KeyMismatch).
fn key_error(what: &str) -> impl Fn(openssl::error::ErrorStack) -> ConfigError + '_ {
    move |e| {
        let mismatch = e
            .errors()
            .iter()
            .any(|e| e.reason() == Some("key values mismatch"));
        if mismatch {
            ConfigError::key_mismatch()
        } else {
            ConfigError::with_kind(crate::ConfigErrorKind::Other, format!("{what}: {e}"))
        }
    }
}

fn build(configuration: &SslConfiguration, mode: SslMode) -> Result<Engine, ConfigError> {
    let server = mode == SslMode::SslServerMode;
    let method = if server {
        SslMethod::tls_server()
    } else {
        SslMethod::tls_client()
    };
    let mut builder = SslContext::builder(method).map_err(openssl_error("openssl context"))?;
    set_protocols(&mut builder, configuration)?;
    set_ciphers(&mut builder, configuration)?;
    set_groups(&mut builder, configuration)?;
    set_dh(&mut builder, configuration, server)?;
    let anchors = set_trust(&mut builder, configuration)?;
    set_identity(&mut builder, configuration, server)?;
    set_verify_mode(&mut builder, configuration, server);
    set_alpn(&mut builder, configuration, server)?;
    let sessions = set_sessions(&mut builder, configuration, server)?;
    set_ocsp(&mut builder, configuration, server)?;
    if server {
        set_server_names(&mut builder, configuration)?;
    } else if configuration.client_certificate_resolver().is_some() {
        return Err(ConfigError::new(
            "a client certificate resolver is not supported by the openssl backend \
             (its Rust binding has no client certificate callback); use the rustls backend",
        ));
    }
    set_alerts(&mut builder)?;
    // One decision on the peer's chain, once OpenSSL's verification is over.
    sslsocket_openssl_ext::set_cert_verify_from_ex_data::<ConnectionState>(&mut builder);
    psk::install(&mut builder, configuration, server)?;
    if configuration.key_logging() {
        if let Some(path) = std::env::var_os("SSLKEYLOGFILE") {
            builder.set_keylog_callback(move |_, line| {
                let written = {
                    use std::os::unix::fs::OpenOptionsExt;
                    // Secrets: readable by the owner only, as the rustls backend's file.
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .mode(0o600)
                        .open(&path)
                }
                .and_then(|mut file| writeln!(file, "{line}"));
                if let Err(error) = written {
                    tracing::warn!(%error, "SSLKEYLOGFILE");
                }
            });
        }
    }
    // Idle connections hold no record buffers (OpenSSL frees them when empty), and one
    // read of the socket takes in as much as the record buffer holds, not a record header
    // and then its body (the session reads the socket directly, once per `read_tls`).
    // The buffer keeps its default size (one record): with read-ahead, OpenSSL moves what
    // is left in it to the front before each record it reads, so a larger one would mean
    // copying most of it again per record.
    builder.set_mode(openssl::ssl::SslMode::RELEASE_BUFFERS);
    builder.set_read_ahead(true);
    // No TLS 1.2 renegotiation, either way (rustls has none): a second handshake would
    // bring a certificate after the application's verdict on the first, which nothing
    // would verify again, pause on, or tie its sessions to. A peer asking for one gets a
    // no_renegotiation warning alert.
    builder.set_options(SslOptions::NO_RENEGOTIATION);
    if server && !configuration.test_ssl_option(SslOption::SslOptionDisableServerCipherPreference) {
        builder.set_options(SslOptions::CIPHER_SERVER_PREFERENCE);
    }
    Ok(Engine {
        context: builder.build(),
        send_sni: !configuration.test_ssl_option(SslOption::SslOptionDisableServerNameIndication),
        sessions,
        server_outcomes: server.then(ServerOutcomes::new),
        anchors: anchors.into(),
        peers: Arc::default(),
    })
}

fn ssl_version(version: TlsVersion) -> SslVersion {
    match version {
        TlsVersion::Tls10 => SslVersion::TLS1,
        TlsVersion::Tls11 => SslVersion::TLS1_1,
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    }
}

/// The version range. TLS 1.0 and 1.1 are offered when asked for by name; OpenSSL 3 then
/// needs security level 0 (their handshake signatures use SHA-1). `AnyProtocol` keeps the
/// default level, as Qt does, so it negotiates 1.2 or 1.3 in practice.
fn set_protocols(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
) -> Result<(), ConfigError> {
    let protocol = configuration.protocol();
    let (min, max) = protocol.version_range().ok_or_else(|| {
        ConfigError::unsupported(format!(
            "protocol {protocol} is not supported by the openssl backend"
        ))
    })?;
    let (min, max) = clamp_for_ciphers(configuration, min, max)?;
    builder
        .set_min_proto_version(Some(ssl_version(min)))
        .map_err(openssl_error("protocol selection"))?;
    builder
        .set_max_proto_version(Some(ssl_version(max)))
        .map_err(openssl_error("protocol selection"))?;
    if is_legacy(protocol) {
        builder.set_security_level(0);
    }
    Ok(())
}

/// A cipher list of only TLS 1.3 suites (or only older ones) rules the other versions out.
fn clamp_for_ciphers(
    configuration: &SslConfiguration,
    min: TlsVersion,
    max: TlsVersion,
) -> Result<(TlsVersion, TlsVersion), ConfigError> {
    let (tls13, older) = split_ciphers(configuration);
    let (mut min, mut max) = (min, max);
    if configuration.ciphers().is_empty() {
        return Ok((min, max));
    }
    if older.is_empty() {
        min = TlsVersion::Tls13;
    }
    if tls13.is_empty() && max == TlsVersion::Tls13 {
        max = TlsVersion::Tls12;
    }
    if version_number(min) > version_number(max) {
        return Err(ConfigError::invalid(format!(
            "none of the ciphers can be used with protocol {}",
            configuration.protocol()
        )));
    }
    Ok((min, max))
}

fn version_number(version: TlsVersion) -> u8 {
    match version {
        TlsVersion::Tls10 => 0,
        TlsVersion::Tls11 => 1,
        TlsVersion::Tls12 => 2,
        TlsVersion::Tls13 => 3,
    }
}

/// TLS 1.3 suites by IANA name, older ones by OpenSSL name (the two lists OpenSSL keeps).
fn split_ciphers(configuration: &SslConfiguration) -> (Vec<String>, Vec<String>) {
    let mut tls13 = Vec::new();
    let mut older = Vec::new();
    for cipher in configuration.ciphers() {
        if cipher.name().contains("_WITH_") {
            older.push(cipher.openssl_name().to_string());
        } else {
            tls13.push(cipher.name().to_string());
        }
    }
    (tls13, older)
}

/// The TLS 1.2 suites offered when the configuration names none: those with forward
/// secrecy and an AEAD cipher (what rustls offers; Mozilla's "intermediate" list), and the
/// pre-shared-key suites with AES or ChaCha20, which are used only when the application's
/// PSK hook answers (Qt's PSK test server insists on `PSK-AES256-CBC-SHA`). Left out of
/// OpenSSL's `DEFAULT`: key transport by RSA (no forward secrecy) and CBC with the
/// certificate suites. TLS 1.3 keeps OpenSSL's three suites, rustls's too.
const TLS12_SUITES: &str = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:\
                            PSK+AESGCM:PSK+CHACHA20:PSK+AES:!aDSS:!kRSAPSK:!AESCCM";

/// A protocol that names TLS 1.0 or 1.1: the application asked for old peers, which need
/// OpenSSL's whole `DEFAULT` list (CBC suites) and security level 0.
fn is_legacy(protocol: SslProtocol) -> bool {
    matches!(
        protocol,
        SslProtocol::TlsV1_0
            | SslProtocol::TlsV1_1
            | SslProtocol::TlsV1_0OrLater
            | SslProtocol::TlsV1_1OrLater
    )
}

fn set_ciphers(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
) -> Result<(), ConfigError> {
    if configuration.ciphers().is_empty() {
        if !is_legacy(configuration.protocol()) {
            builder
                .set_cipher_list(TLS12_SUITES)
                .map_err(openssl_error("cipher list"))?;
        }
        return Ok(());
    }
    let (tls13, older) = split_ciphers(configuration);
    if !tls13.is_empty() {
        builder
            .set_ciphersuites(&tls13.join(":"))
            .map_err(openssl_error("cipher list"))?;
    }
    if !older.is_empty() {
        builder
            .set_cipher_list(&older.join(":"))
            .map_err(openssl_error("cipher list"))?;
    }
    Ok(())
}

/// Our group names → OpenSSL's. OpenSSL 3.0 has no post-quantum hybrids: those are left
/// out, and a list of nothing else is an error.
fn set_groups(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
) -> Result<(), ConfigError> {
    if configuration.elliptic_curves().is_empty() {
        return Ok(());
    }
    let groups: Vec<&str> = configuration
        .elliptic_curves()
        .iter()
        .filter_map(|curve| match curve.short_name() {
            "secp256r1" => Some("P-256"),
            "secp384r1" => Some("P-384"),
            "secp521r1" => Some("P-521"),
            "X25519" => Some("X25519"),
            _ => None,
        })
        .collect();
    if groups.is_empty() {
        return Err(ConfigError::unsupported(
            "none of the key exchange groups is supported by the openssl backend",
        ));
    }
    builder
        .set_groups_list(&groups.join(":"))
        .map_err(openssl_error("key exchange groups"))
}

/// A server's finite-field DHE parameters, when the configuration has them; without,
/// OpenSSL's automatic choice (`SSL_CTX_set_dh_auto`: an RFC 7919 group as strong as the
/// certificate's key), so `DHE-*` suites work as with Qt's default parameters.
/// Invalid parameters are an error here, before any connection exists.
fn set_dh(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
    server: bool,
) -> Result<(), ConfigError> {
    let parameters = configuration.diffie_hellman_parameters();
    if !server {
        return Ok(());
    }
    if parameters.is_empty() {
        return sslsocket_openssl_ext::set_dh_auto(builder, true)
            .map_err(openssl_error("automatic Diffie-Hellman parameters"));
    }
    if !parameters.is_valid() {
        return Err(ConfigError::invalid(format!(
            "Diffie-Hellman parameters: {}",
            parameters.error_string()
        )));
    }
    let dh = Dh::params_from_der(&parameters.to_der())
        .map_err(openssl_error("Diffie-Hellman parameters"))?;
    builder
        .set_tmp_dh(&dh)
        .map_err(openssl_error("Diffie-Hellman parameters"))
}

fn to_x509(cert: &SslCertificate) -> Result<X509, ConfigError> {
    X509::from_der(cert.der()).map_err(openssl_error("certificate"))
}

/// The trusted CAs: the configuration's, plus the system's when loaded on demand (the same
/// set the rustls backend trusts). On a server they also name the acceptable client CAs.
/// Gives the configuration's CAs with the objects the store holds for them.
fn set_trust(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
) -> Result<Vec<KnownCertificate>, ConfigError> {
    let mut store = X509StoreBuilder::new().map_err(openssl_error("trust store"))?;
    let configured = configuration.ca_certificates();
    let system = if configuration.system_ca_on_demand() {
        system_ca_certificates()
    } else {
        Vec::new()
    };
    let mut known = Vec::new();
    for (index, anchor) in configured.iter().chain(&system).enumerate() {
        // A certificate OpenSSL cannot read, or one already there, is skipped.
        if let Ok(x509) = to_x509(anchor) {
            if store.add_cert(x509.clone()).is_ok() && index < configured.len() {
                known.push(KnownCertificate {
                    x509,
                    cert: anchor.clone(),
                });
            }
        }
    }
    builder.set_cert_store(store.build());
    // A trusted certificate ends the path whether or not it is self-signed, as on the
    // rustls backend (webpki takes any trusted certificate as an anchor): trusting an
    // intermediate CA, or the server's own certificate, means what it says on both
    // backends. (OpenSSL's default, which Qt keeps, reports `UnableToGetIssuerCertificate`
    // on a trusted intermediate; the command line's hint to pass a lone leaf's issuer with
    // `--cafile` then worked on one backend only.)
    builder
        .verify_param_mut()
        .set_flags(openssl::x509::verify::X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(openssl_error("trust store"))?;
    if configuration.peer_verify_depth() > 0 {
        // OpenSSL's depth is a C int: a larger u32 would turn negative and refuse every
        // chain (round 34). Past i32::MAX is no limit anyway.
        builder.set_verify_depth(configuration.peer_verify_depth().min(i32::MAX as u32));
    }
    Ok(known)
}

/// Our certificate chain and key, if both are set; one without the other is an error, and
/// a server needs both.
fn set_identity(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
    server: bool,
) -> Result<(), ConfigError> {
    let chain = configuration.local_certificate_chain();
    let key = configuration.private_key();
    let Some((leaf, key)) = chain.first().zip(key) else {
        if server {
            return Err(ConfigError::invalid(
                "server mode needs a local certificate and its private key",
            ));
        }
        if key.is_some() || !chain.is_empty() {
            return Err(ConfigError::invalid(
                "a local certificate needs its private key, and a private key its certificate",
            ));
        }
        return Ok(());
    };
    let pkcs8 = key.to_pkcs8_der()?;
    let pkey = PKey::private_key_from_pkcs8(&pkcs8).map_err(openssl_error("private key"))?;
    let leaf = to_x509(leaf)?;
    // A key of another type than the certificate's goes into another slot of the context,
    // and OpenSSL's own check then reports "no certificate assigned": compared here
    // first (`EVP_PKEY_eq`, as `X509_check_private_key`), every mismatch is one error.
    if leaf
        .public_key()
        .is_ok_and(|public| !public.public_eq(&pkey))
    {
        return Err(ConfigError::key_mismatch_in(chain, key));
    }
    builder
        .set_certificate(&leaf)
        .map_err(openssl_error("local certificate"))?;
    builder
        .set_private_key(&pkey)
        .map_err(key_error("private key"))?;
    for cert in chain.iter().skip(1) {
        builder
            .add_extra_chain_cert(to_x509(cert)?)
            .map_err(openssl_error("local certificate chain"))?;
    }
    builder
        .check_private_key()
        .map_err(key_error("local certificate and private key"))?;
    if server {
        // The CA names a CertificateRequest carries (as hints for the client), unless there
        // are too many for one (see `backend::CA_NAMES_LIMIT`): then none.
        let size: usize = configuration
            .ca_certificates()
            .iter()
            .filter_map(|ca| ca.with_parsed(|p| p.subject().as_raw().len() + 2))
            .sum();
        if size <= crate::backend::CA_NAMES_LIMIT {
            for ca in configuration.ca_certificates() {
                if let Ok(x509) = to_x509(ca) {
                    let _ = builder.add_client_ca(&x509);
                }
            }
        }
    }
    Ok(())
}

/// The context-wide mode; the session installs its own callback with the same mode. A
/// client always verifies (the policy decides what errors mean, as with rustls); a server
/// asks for a certificate unless `VerifyNone`, and requires one in `VerifyPeer` when a
/// missing certificate is fatal.
fn set_verify_mode(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
    server: bool,
) {
    builder.set_verify(verify_mode(configuration, server));
}

pub(crate) fn verify_mode(configuration: &SslConfiguration, server: bool) -> SslVerifyMode {
    if !server {
        return SslVerifyMode::PEER;
    }
    match configuration
        .peer_verify_mode()
        .effective(SslMode::SslServerMode)
    {
        PeerVerifyMode::VerifyNone => SslVerifyMode::NONE,
        PeerVerifyMode::VerifyPeer if configuration.missing_certificate_is_fatal() => {
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
        }
        _ => SslVerifyMode::PEER,
    }
}

/// ALPN in wire format; the server picks by its own preference. When nothing matches it
/// refuses the client with `no_application_protocol` (RFC 7301 §3.2): the rustls backend
/// cannot do otherwise, and a server must not change its answer with the backend. (Qt's
/// OpenSSL backend goes on without ALPN there; `openssl s_server` refuses, as we do.)
fn set_alpn(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
    server: bool,
) -> Result<(), ConfigError> {
    let protocols = configuration.allowed_next_protocols();
    if protocols.is_empty() {
        return Ok(());
    }
    let wire = crate::config::alpn_wire(protocols)?;
    if server {
        let ours = protocols.to_vec();
        builder.set_alpn_select_callback(move |_, client| {
            select_alpn(&ours, client).ok_or(AlpnError::ALERT_FATAL)
        });
    } else {
        builder
            .set_alpn_protos(&wire)
            .map_err(openssl_error("ALPN protocols"))?;
    }
    Ok(())
}

/// Our first protocol that the client offers, as a slice of the client's list.
fn select_alpn<'a>(ours: &[Vec<u8>], client: &'a [u8]) -> Option<&'a [u8]> {
    let mut offered = Vec::new();
    let mut rest = client;
    while let Some((&len, tail)) = rest.split_first() {
        let (name, next) = tail.split_at_checked(usize::from(len))?;
        offered.push(name);
        rest = next;
    }
    ours.iter()
        .find_map(|want| offered.iter().copied().find(|o| *o == want.as_slice()))
}

/// Sessions. A server issues tickets (and resumes) unless tickets are disabled. A client
/// keeps the sessions of accepted peers in the context's store (`sessions.rs`) and offers
/// them again, unless tickets or session sharing are disabled; the last one of a
/// connection is also what `session_ticket()` exports.
fn set_sessions(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
    server: bool,
) -> Result<Option<Arc<ClientSessions>>, ConfigError> {
    let no_tickets = configuration.test_ssl_option(SslOption::SslOptionDisableSessionTickets);
    if server {
        builder
            .set_session_id_context(b"sslsocket")
            .map_err(openssl_error("session id context"))?;
        // A ticket resumes only what the connection's policy accepts (see
        // `ConnectionState`'s `ResumptionFilter`). OpenSSL's session-id cache resumes
        // without asking anyone, so a server keeps none (as Qt's contexts, which cache
        // client sessions only): TLS 1.2 clients resume with tickets.
        sslsocket_openssl_ext::filter_ticket_resumption::<ConnectionState>(builder)
            .map_err(openssl_error("session tickets"))?;
        // The filter compares the session's server name with the hello's, which OpenSSL
        // shows only to a client hello callback (it decrypts tickets before it reads the
        // server_name extension).
        let index = connection_index()?;
        builder.set_client_hello_callback(move |ssl, _alert| {
            let name = sslsocket_openssl_ext::client_hello_server_name(ssl);
            if let Some(state) = ssl.ex_data(index) {
                state.set_hello_name(name);
            }
            Ok(openssl::ssl::ClientHelloResponse::SUCCESS)
        });
        builder.set_session_cache_mode(SslSessionCacheMode::OFF);
        if no_tickets {
            builder.set_options(SslOptions::NO_TICKET);
            builder
                .set_num_tickets(0)
                .map_err(openssl_error("session tickets"))?;
        }
        return Ok(None);
    }
    if no_tickets {
        builder.set_options(SslOptions::NO_TICKET);
        builder.set_session_cache_mode(SslSessionCacheMode::OFF);
        return Ok(None);
    }
    let index = connection_index()?;
    builder.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
    builder.set_new_session_callback(move |ssl: &mut SslRef, session| {
        let ssl: &SslRef = ssl;
        if let Some(state) = ssl.ex_data(index) {
            state.offer_session(ssl, session);
        }
    });
    if configuration.test_ssl_option(SslOption::SslOptionDisableSessionSharing) {
        return Ok(None);
    }
    // The store's sessions are set only on connections of this context: tagged here.
    sslsocket_openssl_ext::tag_context(builder).map_err(openssl_error("session store"))?;
    Ok(Some(ClientSessions::new()))
}

/// Every alert sent and received, warnings included, through the info callback, into the
/// connection's notices (Qt's `alertSent`/`alertReceived`).
fn set_alerts(builder: &mut SslContextBuilder) -> Result<(), ConfigError> {
    let index = connection_index()?;
    // Called for alerts only: the other state changes never reach Rust.
    sslsocket_openssl_ext::set_alert_callback(builder, move |ssl, where_, ret| {
        if let Some(notice) = alerts::from_info(where_, ret) {
            if let Some(state) = ssl.ex_data(index) {
                state.push_notice(notice);
            }
        }
    })
    .map_err(openssl_error("alert reporting"))
}

/// OCSP stapling. A server answers a client's status request with the configuration's
/// staple (a server replaces it by replacing its configuration: `reload`); with none set,
/// it staples nothing. A client that asks for a staple
/// (`set_status_type` on each connection) decides in the status callback, where the
/// response is known (see `ConnectionState::on_status`).
fn set_ocsp(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
    server: bool,
) -> Result<(), ConfigError> {
    if server {
        let Some(staple) = configuration.ocsp_response().map(<[u8]>::to_vec) else {
            return Ok(());
        };
        return builder
            .set_status_callback(move |ssl| ssl.set_ocsp_status(&staple).map(|()| true))
            .map_err(openssl_error("OCSP stapling"));
    }
    if !configuration.ocsp_stapling_enabled() {
        return Ok(());
    }
    let index = connection_index()?;
    builder
        .set_status_callback(move |ssl| {
            // A connection without our state is not ours to accept; a decision that
            // panicked (an application hook) refuses, and does not unwind into OpenSSL.
            Ok(ssl.ex_data(index).is_some_and(|state| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.on_status(ssl)))
                    .unwrap_or(false)
            }))
        })
        .map_err(openssl_error("OCSP stapling"))
}

/// A server's certificates by server name: one context per identity (built from the same
/// configuration, so everything but the certificate is alike), switched to in the
/// servername callback with `set_ssl_context`, which replaces the certificate, key, chain
/// and staple as a whole.
struct ServerNameContexts {
    names: ServerNames,
    contexts: Vec<SslContext>,
    hook: Option<Arc<dyn ServerCertificateResolver>>,
    /// For the hook's identities: the configuration they are built from, and the contexts
    /// built so far (a few; the lock is taken only when the hook chose an identity).
    base: SslConfiguration,
    built: Mutex<Vec<(SslIdentity, SslContext)>>,
}

/// How many of the hook's identities keep their context.
const HOOK_CONTEXTS: usize = 64;

impl ServerNameContexts {
    fn context_for_hook(&self, identity: SslIdentity) -> Result<SslContext, ConfigError> {
        let mut built = match self.built.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some((_, context)) = built.iter().find(|(known, _)| *known == identity) {
            return Ok(context.clone());
        }
        let context = build(&self.base.for_identity(&identity), SslMode::SslServerMode)?.context;
        if built.len() >= HOOK_CONTEXTS {
            built.remove(0);
        }
        built.push((identity, context.clone()));
        Ok(context)
    }

    fn switch(&self, ssl: &mut SslRef) -> Result<(), SniError> {
        let name = ssl.servername(NameType::HOST_NAME).map(str::to_string);
        // The application's resolver must not unwind into OpenSSL: one that panicked ends
        // the handshake.
        let resolved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.hook.as_ref().and_then(|h| h.resolve(name.as_deref()))
        }))
        .map_err(|_| SniError::ALERT_FATAL)?;
        if let Some(identity) = resolved {
            let context = self.context_for_hook(identity).map_err(|error| {
                // Fail closed: the handshake ends.
                tracing::warn!(%error, "the server certificate resolver's identity");
                SniError::ALERT_FATAL
            })?;
            return ssl
                .set_ssl_context(&context)
                .map_err(|_| SniError::ALERT_FATAL);
        }
        let found = name
            .as_deref()
            .and_then(|name| self.names.lookup(name))
            .and_then(|index| self.contexts.get(index));
        match found {
            Some(context) => ssl
                .set_ssl_context(context)
                .map_err(|_| SniError::ALERT_FATAL),
            None => Ok(()),
        }
    }
}

/// The name map and the resolver hook of a server (nothing to do without either); every
/// identity of the map is built (and its key checked) now.
fn set_server_names(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
) -> Result<(), ConfigError> {
    let names = configuration.server_names().clone();
    let hook = configuration.server_certificate_resolver();
    if names.entries.is_empty() && hook.is_none() {
        // No certificate to choose, but a callback all the same: OpenSSL keeps the name a
        // client asked for in its session only when a servername callback accepted it, and
        // the ticket filter resumes a session only under the name it was made for.
        builder.set_servername_callback(|_, _| Ok(()));
        return Ok(());
    }
    let contexts = names
        .entries
        .iter()
        .map(|(pattern, _, identity)| {
            build(
                &configuration.for_identity(identity),
                SslMode::SslServerMode,
            )
            .map(|engine| engine.context)
            .map_err(|e| ConfigError::new(format!("certificate for server name `{pattern}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let choice = ServerNameContexts {
        names,
        contexts,
        hook,
        base: configuration.detached(),
        built: Mutex::new(Vec::new()),
    };
    builder.set_servername_callback(move |ssl, _alert| choice.switch(ssl));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_picks_its_first_protocol_the_client_offers() {
        let ours = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        assert_eq!(select_alpn(&ours, b"\x08http/1.1\x02h2"), Some(&b"h2"[..]));
        assert_eq!(select_alpn(&ours, b"\x03foo"), None);
        assert_eq!(select_alpn(&ours, b"\x09http"), None);
    }
}
