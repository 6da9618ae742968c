//! What this libssl offers: its cipher suites and key exchange groups, asked of the library
//! once (Qt's `supportedCiphers()` / `supportedEllipticCurves()` on its OpenSSL backend).

use std::sync::OnceLock;

use openssl::ssl::{Ssl, SslCipherRef, SslContext, SslMethod};

use crate::cert::SslCipher;
use crate::curve::SslEllipticCurve;
use crate::enums::SslProtocol;

/// The groups the backend can set (`context.rs` maps these four names to OpenSSL's), as
/// (our name, OpenSSL's name).
const GROUPS: [(&str, &str); 4] = [
    ("X25519", "X25519"),
    ("secp256r1", "P-256"),
    ("secp384r1", "P-384"),
    ("secp521r1", "P-521"),
];

/// Every suite this libssl knows that the backend can use, TLS 1.3 ones first, then the
/// strongest first (OpenSSL's order). Left out, as Qt leaves them out ("ALL:!ADH:!LOW:
/// !EXP:!MD5"): suites without authentication or encryption, with MD5, with fewer than
/// 128 bits, and SRP suites (the backend has no SRP).
pub(super) fn ciphers() -> &'static [SslCipher] {
    static CIPHERS: OnceLock<Vec<SslCipher>> = OnceLock::new();
    CIPHERS.get_or_init(|| all_ciphers().unwrap_or_default())
}

/// Every group of [`GROUPS`] this libssl accepts.
pub(super) fn groups() -> &'static [SslEllipticCurve] {
    static GROUPS_OFFERED: OnceLock<Vec<SslEllipticCurve>> = OnceLock::new();
    GROUPS_OFFERED.get_or_init(|| {
        GROUPS
            .iter()
            .filter(|(_, openssl_name)| {
                SslContext::builder(SslMethod::tls())
                    .and_then(|mut b| b.set_groups_list(openssl_name))
                    .is_ok()
            })
            .filter_map(|(name, _)| SslEllipticCurve::from_short_name(name))
            .collect()
    })
}

/// Asks libssl to decode every two-byte cipher suite code there is: what comes back is
/// every suite it knows (`SSL_bytes_to_cipher_list` skips the others).
fn all_ciphers() -> Result<Vec<SslCipher>, openssl::error::ErrorStack> {
    let context = SslContext::builder(SslMethod::tls())?.build();
    let ssl = Ssl::new(&context)?;
    let codes: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_be_bytes).collect();
    let lists = ssl.bytes_to_cipher_list(&codes, false)?;
    // libssl decodes suites it cannot use (GOST, IDEA, SEED without their providers):
    // only those its cipher-list setter takes are offered, so every suite listed can be
    // set (TLS 1.3 suites have a setter of their own, which takes all it decodes).
    let mut probe = SslContext::builder(SslMethod::tls())?;
    let mut usable = |cipher: &SslCipherRef| {
        cipher.version() == "TLSv1.3" || probe.set_cipher_list(cipher.name()).is_ok()
    };
    let mut ciphers: Vec<SslCipher> = lists
        .suites
        .iter()
        .filter(|cipher| usable(cipher))
        .filter_map(describe)
        .collect();
    // TLS 1.3 first, then by strength; the sort is stable, so OpenSSL's order stays within.
    ciphers.sort_by_key(|c| {
        (
            c.protocol() != SslProtocol::TlsV1_3,
            std::cmp::Reverse(c.supported_bits()),
        )
    });
    Ok(ciphers)
}

/// One suite as an [`SslCipher`], or `None` for one the backend does not offer.
fn describe(cipher: &SslCipherRef) -> Option<SslCipher> {
    let name = cipher.standard_name()?;
    let protocol = match cipher.version() {
        "TLSv1.3" => SslProtocol::TlsV1_3,
        "TLSv1.2" => SslProtocol::TlsV1_2,
        // "TLSv1" and "SSLv3": suites usable from TLS 1.0 on (Qt has no SSLv3 here).
        _ => SslProtocol::TlsV1_0,
    };
    // "ECDHE-RSA-AES128-SHA TLSv1 Kx=ECDH Au=RSA Enc=AES(128) Mac=SHA1"
    let description = cipher.description();
    let field = |key: &str| {
        description
            .split_whitespace()
            .find_map(|part| part.strip_prefix(key))
            .unwrap_or("")
    };
    let (kx, au, enc, mac) = (field("Kx="), field("Au="), field("Enc="), field("Mac="));
    let bits = u32::try_from(cipher.bits().secret).unwrap_or(0);
    if au == "None" || enc == "None" || mac == "MD5" || kx == "SRP" || bits < 128 {
        return None;
    }
    if let Some(known) = SslCipher::from_table(name, protocol) {
        return Some(known);
    }
    Some(SslCipher::described(
        name,
        cipher.name(),
        protocol,
        [unless_any(kx), unless_any(au), enc],
        bits,
    ))
}

/// A TLS 1.3 suite leaves key exchange and authentication to the session: OpenSSL says
/// `any`, the shared table says nothing.
fn unless_any(method: &str) -> &str {
    if method == "any" {
        ""
    } else {
        method
    }
}
