//! One sentence per verification error: what it means for this certificate, and the
//! narrowest option that would accept only it (`--ignore NAME@FILE` with the certificate
//! saved from `--showcerts`/`cert`, or `--cafile`), never `--ignore-all-errors`.

use sslsocket::{SslCertificate, SslError, SslErrorKind};

use crate::report::{expired_ago, rfc3339};

/// The hint for `error`, found on a chain whose certificates as the peer sent them (or as
/// the file holds them) are `sent`.
pub fn hint(error: &SslError, sent: &[SslCertificate]) -> String {
    let kind = error.error();
    let name = kind.name();
    let Some(cert) = error.certificate() else {
        return match kind {
            SslErrorKind::NoPeerCertificate => {
                "the peer sent no certificate, so it cannot be verified; only \
                 --ignore NoPeerCertificate accepts that"
                    .to_string()
            }
            SslErrorKind::OcspNoResponseFound => {
                "the server stapled no OCSP response although --ocsp asked for one; drop \
                 --ocsp, or accept its absence with --ignore OcspNoResponseFound"
                    .to_string()
            }
            _ => format!(
                "{}; it concerns no certificate, so only --ignore {name} accepts it",
                error.error_string()
            ),
        };
    };
    let subject = cert.subject_rfc4514();
    let file = file_name(cert);
    // A certificate the peer did not send is one of the trusted CAs (the path's anchor):
    // `--showcerts` and `cert HOST:PORT` never print it, the user's own CA file has it.
    let source = if sent.contains(cert) {
        "from --showcerts or `sslsocket cert HOST:PORT`"
    } else {
        "it is one of your trusted CAs, not sent by the peer: copy it from your --cafile or \
         system CA store"
    };
    let ignore = format!(
        "save it as {file} ({source}) and pass --ignore {name}@{file} to accept this error \
         for this certificate only"
    );
    match kind {
        SslErrorKind::HostNameMismatch => format!(
            "the certificate {subject} is not issued for the name connected to (it names {}); \
             use --peer-name with one of its names, or {ignore}",
            names(cert)
        ),
        SslErrorKind::SelfSignedCertificate => format!(
            "the certificate {subject} signed itself and is not among the trusted CAs; {ignore}"
        ),
        SslErrorKind::SelfSignedCertificateInChain => format!(
            "the root {subject} that the peer sent is not among the trusted CAs; if you \
             trust this root, save it as {file} (from --showcerts) and pass --cafile {file}"
        ),
        SslErrorKind::UnableToGetLocalIssuerCertificate => format!(
            "no trusted CA issued {subject} (its issuer is {}); pass that CA's certificate \
             with --cafile",
            cert.issuer_rfc4514()
        ),
        SslErrorKind::UnableToVerifyFirstCertificate => format!(
            "the peer sent {subject} without the chain to a trusted CA; pass its issuer {} \
             with --cafile",
            cert.issuer_rfc4514()
        ),
        SslErrorKind::CertificateExpired => format!(
            "the certificate {subject} expired on {} ({}); {ignore}",
            rfc3339(cert.expiry_date_unix()),
            expired_ago(cert)
        ),
        // Raised for `--pin` (no key on the verified path matches), which no ignore list
        // lifts: the narrowest way to accept this peer is to pin its own key.
        SslErrorKind::CertificateRejected => format!(
            "no certificate on the verified path of {subject} has a key pinned with --pin; \
             if this certificate's own key is the one to trust, pin it with --pin {} (a pin \
             mismatch cannot be ignored)",
            pin_of(cert)
        ),
        SslErrorKind::CertificateNotYetValid => format!(
            "the certificate {subject} is valid only from {}; check the clock, or {ignore}",
            rfc3339(cert.effective_date_unix())
        ),
        _ => format!("{} on {subject}; {ignore}", error.error_string()),
    }
}

/// The `--pin` value of a certificate's key: `sha256/` and the base64 SHA-256 digest of
/// its SubjectPublicKeyInfo.
fn pin_of(cert: &SslCertificate) -> String {
    use base64::Engine as _;
    format!(
        "sha256/{}",
        base64::engine::general_purpose::STANDARD.encode(cert.public_key_sha256())
    )
}

/// The names a certificate is issued for, for the mismatch hint.
fn names(cert: &SslCertificate) -> String {
    let sans: Vec<String> = cert
        .subject_alternative_names()
        .iter()
        .map(|san| {
            let text = san.to_string();
            match text.split_once(':') {
                Some((_, name)) => name.to_string(),
                None => text,
            }
        })
        .collect();
    let names = if sans.is_empty() {
        cert.subject_display_name()
    } else {
        sans.join(", ")
    };
    crate::style::printable(&names).into_owned()
}

/// A file name for the certificate, from its name: `localhost.pem`, `wildcard.example.org.pem`.
pub fn file_name(cert: &SslCertificate) -> String {
    let name: String = cert
        .subject_display_name()
        .replace('*', "wildcard")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = name.trim_matches('.');
    if name.is_empty() {
        "cert.pem".to_string()
    } else {
        format!("{name}.pem")
    }
}
