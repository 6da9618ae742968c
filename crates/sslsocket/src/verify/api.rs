//! Qt's `QSslCertificate::verify`.

use crate::cert::SslCertificate;
use crate::config::{default_configuration, system_ca_certificates};
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::{ChainVerifier, Purpose};

impl SslCertificate {
    /// Verifies `chain` (leaf first) against the process default CA set, as a TLS client
    /// would verify a server, and returns every error found; an empty list means the chain
    /// is trusted (Qt's `QSslCertificate::verify`).
    ///
    /// The CA set is the default configuration's CA certificates plus, when it loads them
    /// on demand, the system's. `host_name`, when given and not empty, is checked against
    /// the leaf (RFC 6125: subject alternative names, or the common name when there are
    /// none). Dates are checked at the current time; the verify depth is not limited. An
    /// empty chain gives exactly one `UnspecifiedError`, as in Qt.
    ///
    /// The verdict is [`ChainVerifier`]'s, the rustls backend's verifier, on either
    /// backend: webpki's path search with our policy checks, so a chain with a good path
    /// is accepted even when a bad candidate issuer comes first (round 34: this was the
    /// collector alone, which takes the first candidate as OpenSSL does). A refused chain
    /// lists the errors of [`collect_errors`](crate::verify::collect_errors), in the same
    /// order.
    pub fn verify(chain: &[SslCertificate], host_name: Option<&str>) -> Vec<SslError> {
        if chain.is_empty() {
            return vec![SslError::new(SslErrorKind::UnspecifiedError)];
        }
        let configuration = default_configuration();
        let mut anchors = configuration.ca_certificates().to_vec();
        if configuration.system_ca_on_demand() {
            anchors.extend(system_ca_certificates());
        }
        let ders: Vec<&[u8]> = chain.iter().map(SslCertificate::der).collect();
        // A Unicode host name is checked as its A-labels, as in a handshake; one IDNA
        // refuses stays as given, and matches nothing.
        let host = host_name.filter(|name| !name.is_empty());
        let ace = host.map(|name| crate::verify::hostname::to_ace(name).unwrap_or(name.into()));
        ChainVerifier::new(anchors, Purpose::ServerAuth).verify_der(
            &ders,
            ace.as_deref(),
            crate::verify::now_unix(),
        )
    }
}
