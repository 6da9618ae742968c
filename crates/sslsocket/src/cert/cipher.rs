//! `SslCipher`: a cipher suite described the way Qt's `QSslCipher` does.

use crate::enums::SslProtocol;

/// A cipher suite (Qt's `QSslCipher`). Two ciphers are equal when their name and protocol
/// are (Qt's `operator==`): a TLS 1.3 session's cipher, which knows the key exchange and
/// authentication the session used, equals the suite in `supported_ciphers()` and the
/// one `from_name` makes.
#[derive(Clone, Debug)]
pub struct SslCipher {
    name: String,
    openssl_name: String,
    protocol: SslProtocol,
    key_exchange: String,
    authentication: String,
    encryption: String,
    bits: u32,
}

impl PartialEq for SslCipher {
    fn eq(&self, other: &SslCipher) -> bool {
        self.name == other.name && self.protocol == other.protocol
    }
}

impl Eq for SslCipher {}

impl std::hash::Hash for SslCipher {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.protocol.hash(state);
    }
}

/// IANA name → (OpenSSL name, key exchange, authentication, encryption, bits).
/// TLS 1.3 suites do not fix key exchange and authentication; those come from the session.
const TABLE: &[(&str, &str, &str, &str, &str, u32)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_128_GCM_SHA256",
        "",
        "",
        "AESGCM",
        128,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_256_GCM_SHA384",
        "",
        "",
        "AESGCM",
        256,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
        "",
        "",
        "CHACHA20/POLY1305",
        256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDH",
        "ECDSA",
        "AESGCM",
        128,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDH",
        "ECDSA",
        "AESGCM",
        256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDH",
        "ECDSA",
        "CHACHA20/POLY1305",
        256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDH",
        "RSA",
        "AESGCM",
        128,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDH",
        "RSA",
        "AESGCM",
        256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDH",
        "RSA",
        "CHACHA20/POLY1305",
        256,
    ),
    // Finite-field DHE: the OpenSSL backend only (rustls has none).
    (
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        "DHE-RSA-AES128-GCM-SHA256",
        "DH",
        "RSA",
        "AESGCM",
        128,
    ),
    (
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        "DHE-RSA-AES256-GCM-SHA384",
        "DH",
        "RSA",
        "AESGCM",
        256,
    ),
];

impl SslCipher {
    /// The supported cipher with this IANA (or OpenSSL) name and `protocol`, as Qt's
    /// `QSslCipher(name, protocol)`: one a compiled-in backend lists in its
    /// [`supported_ciphers`](crate::backend::supported_ciphers) (the active backend's list
    /// first), with the protocol that list gives it; `UnknownProtocol` takes the first of
    /// that name whatever its protocol (Qt's `QSslCipher(name)`). `None` when no supported
    /// cipher has that name and protocol (round 35: a TLS 1.3 suite asked for with TLS 1.2
    /// came back labelled TLS 1.2).
    pub fn from_name(name: &str, protocol: SslProtocol) -> Option<SslCipher> {
        let active = crate::backend::active_backend();
        let others = crate::backend::available_backends()
            .into_iter()
            .filter(|backend| Some(*backend) != active);
        active
            .into_iter()
            .chain(others)
            .filter_map(crate::backend::backend_by_name)
            .find_map(|backend| {
                backend.supported_ciphers().into_iter().find(|c| {
                    (c.name == name || c.openssl_name == name)
                        && (protocol == SslProtocol::UnknownProtocol || c.protocol == protocol)
                })
            })
    }

    /// The cipher with this IANA (or OpenSSL) name, described for `protocol` (the session's
    /// cipher, negotiated with that protocol): one of the suites every backend describes
    /// alike, else one a compiled-in backend lists; `None` for a name no backend knows.
    pub(crate) fn described_for(name: &str, protocol: SslProtocol) -> Option<SslCipher> {
        if let Some(cipher) = SslCipher::from_table(name, protocol) {
            return Some(cipher);
        }
        crate::backend::available_backends()
            .into_iter()
            .filter_map(crate::backend::backend_by_name)
            .find_map(|backend| {
                backend
                    .supported_ciphers()
                    .into_iter()
                    .find(|c| c.name == name || c.openssl_name == name)
            })
            .map(|mut cipher| {
                if protocol != SslProtocol::UnknownProtocol {
                    cipher.protocol = protocol;
                }
                cipher
            })
    }

    /// A cipher of the shared table only (what the backends' own lists are built from,
    /// so it never asks a backend).
    pub(crate) fn from_table(name: &str, protocol: SslProtocol) -> Option<SslCipher> {
        let row = TABLE.iter().find(|r| r.0 == name || r.1 == name)?;
        Some(SslCipher {
            name: row.0.to_string(),
            openssl_name: row.1.to_string(),
            protocol,
            key_exchange: row.2.to_string(),
            authentication: row.3.to_string(),
            encryption: format!("{}({})", row.4, row.5),
            bits: row.5,
        })
    }

    /// A cipher described by a backend (a suite outside the shared table): its IANA name,
    /// the TLS library's own name, the lowest protocol version it works with, and its
    /// key exchange, authentication and encryption methods as OpenSSL words them.
    #[cfg_attr(not(feature = "openssl"), allow(dead_code))]
    pub(crate) fn described(
        name: &str,
        openssl_name: &str,
        protocol: SslProtocol,
        methods: [&str; 3],
        bits: u32,
    ) -> SslCipher {
        let [key_exchange, authentication, encryption] = methods;
        SslCipher {
            name: name.to_string(),
            openssl_name: openssl_name.to_string(),
            protocol,
            key_exchange: key_exchange.to_string(),
            authentication: authentication.to_string(),
            encryption: encryption.to_string(),
            bits,
        }
    }

    /// Fills in what a TLS 1.3 suite leaves to the session.
    pub(crate) fn with_session(mut self, key_exchange: &str, authentication: &str) -> SslCipher {
        if self.key_exchange.is_empty() {
            self.key_exchange = key_exchange.to_string();
        }
        if self.authentication.is_empty() {
            self.authentication = authentication.to_string();
        }
        self
    }

    /// The IANA name (`TLS_AES_256_GCM_SHA384`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OpenSSL spelling (`ECDHE-RSA-AES128-GCM-SHA256`).
    pub fn openssl_name(&self) -> &str {
        &self.openssl_name
    }

    /// The protocol it was negotiated with.
    pub fn protocol(&self) -> SslProtocol {
        self.protocol
    }

    /// The key exchange method (`ECDH`).
    pub fn key_exchange_method(&self) -> &str {
        &self.key_exchange
    }

    /// The authentication method (`ECDSA`, `RSA`).
    pub fn authentication_method(&self) -> &str {
        &self.authentication
    }

    /// The encryption method (`AESGCM(256)`).
    pub fn encryption_method(&self) -> &str {
        &self.encryption
    }

    /// The bits of the symmetric key used.
    pub fn used_bits(&self) -> u32 {
        self.bits
    }

    /// The bits the cipher supports.
    pub fn supported_bits(&self) -> u32 {
        self.bits
    }
}
