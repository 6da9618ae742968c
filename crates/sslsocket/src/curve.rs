//! `SslEllipticCurve`: a key exchange group (Qt's `QSslEllipticCurve`).

use std::borrow::Cow;
use std::fmt;

/// A key exchange group, named as TLS names it (`X25519MLKEM768`, `X25519`, `secp256r1`,
/// `secp384r1`, ...). Qt calls these elliptic curves; the post-quantum hybrid is one too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SslEllipticCurve {
    name: String,
}

impl SslEllipticCurve {
    /// The group with this name: the TLS name or a common alias (`prime256v1`, `P-256`,
    /// `P-384`); `None` for a name no backend knows.
    pub fn from_short_name(name: &str) -> Option<SslEllipticCurve> {
        let canonical = match name {
            "prime256v1" | "P-256" | "secp256r1" => "secp256r1",
            "P-384" | "secp384r1" => "secp384r1",
            "P-521" | "secp521r1" => "secp521r1",
            "X25519" | "x25519" => "X25519",
            "X25519MLKEM768" => "X25519MLKEM768",
            "SecP256r1MLKEM768" | "secp256r1MLKEM768" => "SecP256r1MLKEM768",
            "MLKEM768" => "MLKEM768",
            "MLKEM1024" => "MLKEM1024",
            _ => return None,
        };
        Some(SslEllipticCurve {
            name: canonical.to_string(),
        })
    }

    /// The TLS name.
    pub fn short_name(&self) -> &str {
        &self.name
    }

    /// Whether it is a TLS 1.3-only group (the post-quantum ones).
    pub fn is_tls_named_curve(&self) -> bool {
        true
    }
}

impl fmt::Display for SslEllipticCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// rustls's debug name of a group → our name (borrowed for the known ones: a connection
/// keeps it as long as it lives).
pub(crate) fn from_rustls(group: rustls::NamedGroup) -> Cow<'static, str> {
    let name = match group {
        rustls::NamedGroup::secp256r1 => "secp256r1",
        rustls::NamedGroup::secp384r1 => "secp384r1",
        rustls::NamedGroup::secp521r1 => "secp521r1",
        rustls::NamedGroup::X25519 => "X25519",
        rustls::NamedGroup::X25519MLKEM768 => "X25519MLKEM768",
        rustls::NamedGroup::secp256r1MLKEM768 => "SecP256r1MLKEM768",
        rustls::NamedGroup::MLKEM768 => "MLKEM768",
        rustls::NamedGroup::MLKEM1024 => "MLKEM1024",
        other => return Cow::Owned(format!("{other:?}")),
    };
    Cow::Borrowed(name)
}
