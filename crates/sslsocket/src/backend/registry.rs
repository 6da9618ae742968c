//! The backend registry (Qt's static `QSslSocket` backend API).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::backend::Backend;
use crate::cert::SslCipher;
use crate::curve::SslEllipticCurve;
use crate::enums::SslProtocol;

/// Why [`set_active_backend`] refused a backend.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// No backend has this name.
    #[error("no TLS backend named `{name}` (available: {})", available.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The backends compiled in.
        available: Vec<&'static str>,
    },
    /// The backend exists, but this build leaves it out (a cargo feature turns it on).
    #[error("the TLS backend `{name}` is not compiled in (cargo feature `{feature}`)")]
    NotCompiledIn {
        /// The name asked for.
        name: String,
        /// The cargo feature of the `sslsocket` crate that adds it.
        feature: &'static str,
    },
    /// A socket already used another backend; the choice is made once, before first use
    /// (as in Qt).
    #[error("the TLS backend `{active}` is already in use; `{name}` can no longer be selected")]
    AlreadyInUse {
        /// The name asked for.
        name: String,
        /// The backend in use.
        active: &'static str,
    },
}

/// Optional features a backend may provide (Qt's `QSsl::SupportedFeature`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::VariantArray, strum::IntoStaticStr)]
pub enum SupportedFeature {
    /// Certificate verification with a complete error list.
    CertificateVerification,
    /// ALPN as a client.
    ClientSideAlpn,
    /// ALPN as a server.
    ServerSideAlpn,
    /// OCSP stapling.
    Ocsp,
    /// Pre-shared keys.
    Psk,
    /// Session tickets.
    SessionTicket,
    /// Alert events.
    Alerts,
}

// `ALL` (Qt's order), `name()`, `Display` and `FromStr` by variant name.
crate::enums::variant_names!(SupportedFeature);

/// Classes a backend may implement (Qt's `QSsl::ImplementedClass`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::VariantArray, strum::IntoStaticStr)]
pub enum ImplementedClass {
    /// `SslKey`.
    Key,
    /// `SslCertificate`.
    Certificate,
    /// `SslSocket`.
    Socket,
    /// Diffie-Hellman parameters.
    DiffieHellman,
    /// Elliptic curves.
    EllipticCurve,
    /// DTLS.
    Dtls,
    /// DTLS cookies.
    DtlsCookie,
}

crate::enums::variant_names!(ImplementedClass);

fn all_backends() -> &'static Vec<Arc<dyn Backend>> {
    static ALL: OnceLock<Vec<Arc<dyn Backend>>> = OnceLock::new();
    ALL.get_or_init(|| {
        // rustls first: the default.
        vec![
            Arc::new(crate::backend::rustls::RustlsBackend) as Arc<dyn Backend>,
            #[cfg(feature = "openssl")]
            Arc::new(crate::backend::openssl::OpensslBackend),
        ]
    })
}

/// The backend choice, one atomic word (no lock on the path of every new socket): the
/// index + 1 of the backend selected with [`set_active_backend`] in the low bits (0 = none
/// selected), and [`USED`] once a socket used the active backend.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
const USED: usize = 1 << (usize::BITS - 1);

fn selected(state: usize) -> Option<&'static str> {
    let index = (state & !USED).checked_sub(1)?;
    all_backends().get(index).map(|b| b.name())
}

/// The active backend's name in `state`: the one selected, else the environment's, else
/// the default.
fn active_in(state: usize) -> Option<&'static str> {
    selected(state)
        .or_else(environment_backend)
        .or_else(|| all_backends().first().map(|b| b.name()))
}

/// The names of the backends compiled in.
pub fn available_backends() -> Vec<&'static str> {
    all_backends().iter().map(|b| b.name()).collect()
}

/// The backend with this name.
pub fn backend_by_name(name: &str) -> Option<Arc<dyn Backend>> {
    all_backends().iter().find(|b| b.name() == name).cloned()
}

/// The name of the backend new sockets use.
pub fn active_backend() -> Option<&'static str> {
    active_in(ACTIVE.load(Ordering::Acquire))
}

/// The backend named by `SSLSOCKET_BACKEND`, when it is available: how a whole program (or
/// a test run) picks a backend without code. `set_active_backend` takes precedence.
fn environment_backend() -> Option<&'static str> {
    static CHOSEN: OnceLock<Option<&'static str>> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let wanted = std::env::var("SSLSOCKET_BACKEND").ok()?;
        all_backends()
            .iter()
            .map(|b| b.name())
            .find(|n| *n == wanted)
    })
}

/// The active backend itself; marks it as used (it cannot be changed afterwards, as in Qt).
pub(crate) fn active() -> Option<Arc<dyn Backend>> {
    let mut state = ACTIVE.load(Ordering::Acquire);
    if state & USED == 0 {
        // The choice as it was when marked used: a concurrent `set_active_backend` either
        // happened before (and is seen here) or sees the mark and changes nothing.
        state = ACTIVE.fetch_or(USED, Ordering::AcqRel);
    }
    let name = active_in(state)?;
    all_backends().iter().find(|b| b.name() == name).cloned()
}

/// Selects the backend for new sockets (Qt's `setActiveBackend()`, which returns a bool).
/// Refused, with the reason, for a name no backend has, a backend this build leaves out,
/// or when another backend was already used (Qt allows the choice only before first use);
/// selecting the active one again succeeds.
pub fn set_active_backend(name: &str) -> Result<(), BackendError> {
    let Some(index) = all_backends().iter().position(|b| b.name() == name) else {
        return Err(match name {
            "openssl" => BackendError::NotCompiledIn {
                name: name.to_string(),
                feature: "openssl",
            },
            _ => BackendError::Unknown {
                name: name.to_string(),
                available: available_backends(),
            },
        });
    };
    let mut state = ACTIVE.load(Ordering::Acquire);
    loop {
        if state & USED != 0 {
            match active_in(state) {
                Some(active) if active != name => {
                    return Err(BackendError::AlreadyInUse {
                        name: name.to_string(),
                        active,
                    })
                }
                _ => {}
            }
        }
        let wanted = (state & USED) | (index + 1);
        match ACTIVE.compare_exchange_weak(state, wanted, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(current) => state = current,
        }
    }
}

/// The protocols a backend supports (the active one for `None`); empty for an unknown name.
pub fn supported_protocols(backend: Option<&str>) -> Vec<SslProtocol> {
    find(backend)
        .map(|b| b.supported_protocols())
        .unwrap_or_default()
}

/// Whether a backend supports `protocol`.
pub fn is_protocol_supported(protocol: SslProtocol, backend: Option<&str>) -> bool {
    supported_protocols(backend).contains(&protocol)
}

/// The features a backend supports; empty for an unknown name.
pub fn supported_features(backend: Option<&str>) -> Vec<SupportedFeature> {
    find(backend)
        .map(|b| b.supported_features())
        .unwrap_or_default()
}

/// Whether a backend supports `feature`.
pub fn is_feature_supported(feature: SupportedFeature, backend: Option<&str>) -> bool {
    supported_features(backend).contains(&feature)
}

/// The classes a backend implements; empty for an unknown name.
pub fn implemented_classes(backend: Option<&str>) -> Vec<ImplementedClass> {
    find(backend)
        .map(|b| b.implemented_classes())
        .unwrap_or_default()
}

/// Whether a backend implements `class`.
pub fn is_class_implemented(class: ImplementedClass, backend: Option<&str>) -> bool {
    implemented_classes(backend).contains(&class)
}

/// The cipher suites a backend can use (the active one for `None`), TLS 1.3 suites first;
/// empty for an unknown name. `SslConfiguration::supported_ciphers()` is this for the
/// active backend.
pub fn supported_ciphers(backend: Option<&str>) -> Vec<SslCipher> {
    find(backend)
        .map(|b| b.supported_ciphers())
        .unwrap_or_default()
}

/// The key exchange groups a backend can use (the active one for `None`); empty for an
/// unknown name. `SslConfiguration::supported_elliptic_curves()` is this for the active
/// backend.
pub fn supported_elliptic_curves(backend: Option<&str>) -> Vec<SslEllipticCurve> {
    find(backend)
        .map(|b| b.supported_elliptic_curves())
        .unwrap_or_default()
}

/// Whether TLS is usable at all (Qt's `supportsSsl()`).
pub fn supports_ssl() -> bool {
    !all_backends().is_empty()
}

fn find(backend: Option<&str>) -> Option<Arc<dyn Backend>> {
    match backend {
        Some(name) => backend_by_name(name),
        None => active_backend().and_then(backend_by_name),
    }
}

/// The active TLS library's version, as text (Qt's `sslLibraryVersionString()`).
pub fn ssl_library_version_string() -> String {
    active_backend()
        .and_then(backend_by_name)
        .map(|b| b.library_version_string())
        .unwrap_or_default()
}

/// The active TLS library's version as a number, `0xMMNNPP00` like OpenSSL's (Qt's
/// `sslLibraryVersionNumber()`); 0 when it cannot be told.
pub fn ssl_library_version_number() -> u64 {
    version_number_of(&ssl_library_version_string())
}

/// `0xMMNNPP00` from text such as `OpenSSL 3.0.19 27 Jan 2026` or `rustls 0.23.46`.
fn version_number_of(text: &str) -> u64 {
    let Some(version) = text.split_whitespace().nth(1) else {
        return 0;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (major << 28) | (minor << 20) | (patch << 4)
}

/// The version the active backend was built against (Qt's
/// `sslLibraryBuildVersionString()`): OpenSSL's headers for the OpenSSL backend (the
/// system's libssl at run time may differ), the run-time version for rustls, which is
/// compiled in.
pub fn ssl_library_build_version_string() -> String {
    active_backend()
        .and_then(backend_by_name)
        .map(|b| b.library_build_version_string())
        .unwrap_or_default()
}

/// The build version as a number (Qt's `sslLibraryBuildVersionNumber()`).
pub fn ssl_library_build_version_number() -> u64 {
    version_number_of(&ssl_library_build_version_string())
}
