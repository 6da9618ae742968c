//! Reports built from the library's accessors: JSON objects in the contract's field order,
//! readable text, and output that treats a closed stdout as nothing to worry about.

use crate::style::printable;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use std::net::SocketAddr;

use sslsocket::core::SslCore;
use sslsocket::{DigestAlgorithm, SocketError, SslCertificate, SslCipher, SslError};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::session::Outcome;

/// What the reports read from a socket of either driver: its core (which knows the
/// session) and the peer's address.
pub trait Reported {
    /// The socket's core.
    fn core(&self) -> &SslCore;
    /// The peer's address.
    fn peer_address(&self) -> Option<SocketAddr>;
}

impl Reported for sslsocket::blocking::SslSocket {
    fn core(&self) -> &SslCore {
        sslsocket::SslSocketExt::core(self)
    }

    fn peer_address(&self) -> Option<SocketAddr> {
        sslsocket::blocking::SslSocket::peer_addr(self)
    }
}

impl Reported for sslsocket::tokio::SslSocket {
    fn core(&self) -> &SslCore {
        sslsocket::SslSocketExt::core(self)
    }

    fn peer_address(&self) -> Option<SocketAddr> {
        sslsocket::tokio::SslSocket::peer_addr(self)
    }
}

/// One lock for every line of stdout, so concurrent connections never interleave.
static STDOUT: Mutex<()> = Mutex::new(());

/// Writes `text` to stdout at once and flushes; a closed stdout is ignored.
pub fn print_text(text: &str) {
    let _guard = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes one JSON value as one line.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(mut line) => {
            line.push('\n');
            print_text(&line);
        }
        Err(e) => error_line(&format!("error: cannot encode the report: {e}")),
    }
}

/// One line on stderr.
pub fn error_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// A certificate as the contract shows it.
#[derive(Debug, Serialize)]
pub struct CertificateJson {
    subject: String,
    issuer: String,
    serial: String,
    not_before: String,
    not_after: String,
    sha256: String,
    self_signed: bool,
    san: Vec<String>,
}

/// The contract's `serial`: lowercase hex of the DER INTEGER's content octets (a sign
/// byte kept), not Qt's colon-separated `serial_number()`.
fn serial_hex(cert: &SslCertificate) -> String {
    cert.serial_number_der()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl CertificateJson {
    /// From the certificate's accessors.
    pub fn of(cert: &SslCertificate) -> CertificateJson {
        CertificateJson {
            subject: cert.subject_rfc4514(),
            issuer: cert.issuer_rfc4514(),
            serial: serial_hex(cert),
            not_before: rfc3339(cert.effective_date_unix()),
            not_after: rfc3339(cert.expiry_date_unix()),
            sha256: cert.sha256_hex(),
            self_signed: cert.is_self_signed(),
            san: cert
                .subject_alternative_names()
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// A chain entry of `connect`, `serve` and `cert` (v2): the contract's certificate fields,
/// days left, the public key, and the PEM with `--showcerts`.
#[derive(Debug, Serialize)]
pub struct ChainEntryJson {
    #[serde(flatten)]
    base: CertificateJson,
    days_left: i64,
    public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pem: Option<String>,
}

impl ChainEntryJson {
    /// From the certificate's accessors; the PEM when `pem` is set.
    pub fn of(cert: &SslCertificate, pem: bool) -> ChainEntryJson {
        ChainEntryJson {
            base: CertificateJson::of(cert),
            days_left: days_left(cert),
            public_key: public_key_name(cert),
            pem: pem.then(|| cert.to_pem()),
        }
    }
}

/// Whole days until the certificate's `not_after`, negative once it has expired.
pub fn days_left(cert: &SslCertificate) -> i64 {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    cert.expiry_date_unix()
        .saturating_sub(now)
        .div_euclid(86_400)
}

/// How long ago an expired certificate expired, in words: whole days since `not_after`
/// ("expired today", "expired 1 day ago", "expired 3 days ago").
pub fn expired_ago(cert: &SslCertificate) -> String {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    match now
        .saturating_sub(cert.expiry_date_unix())
        .div_euclid(86_400)
    {
        ..=0 => "expired today".to_string(),
        1 => "expired 1 day ago".to_string(),
        days => format!("expired {days} days ago"),
    }
}

/// The public key as people name it: `EC P-256`, `RSA 2048`, `Ed25519`.
pub fn public_key_name(cert: &SslCertificate) -> String {
    cert.public_key_summary()
}

/// Unix seconds as RFC 3339 in UTC (`2026-01-01T00:00:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| seconds.to_string())
}

#[derive(Debug, Serialize)]
struct CipherJson {
    name: String,
    protocol: String,
    used_bits: u32,
    key_exchange: String,
    authentication: String,
    encryption: String,
}

impl CipherJson {
    /// The negotiated cipher: the library's description when it has one, otherwise the
    /// suite's name and protocol as the backend negotiated them, other fields empty.
    fn of_session(socket: &impl Reported) -> Option<CipherJson> {
        if let Some(cipher) = socket.core().session_cipher() {
            return Some(CipherJson::of(&cipher));
        }
        // `session_cipher()` only describes suites in the library's table (the ones rustls
        // offers); a suite only another backend negotiates (OpenSSL's PSK suites, e.g.
        // TLS_PSK_WITH_AES_128_GCM_SHA256) still has a name.
        let negotiated = socket.core().negotiated()?;
        Some(CipherJson {
            name: negotiated.cipher_suite.to_string(),
            protocol: negotiated.protocol.to_string(),
            used_bits: 0,
            key_exchange: String::new(),
            authentication: String::new(),
            encryption: String::new(),
        })
    }

    fn of(cipher: &SslCipher) -> CipherJson {
        CipherJson {
            name: cipher.name().to_string(),
            protocol: cipher.protocol().to_string(),
            used_bits: cipher.used_bits(),
            key_exchange: cipher.key_exchange_method().to_string(),
            authentication: cipher.authentication_method().to_string(),
            encryption: cipher.encryption_method().to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
struct ErrorCertificateJson {
    subject: String,
    sha256: String,
}

/// A verification error as the contract shows it.
#[derive(Debug, Serialize)]
pub struct ErrorJson {
    error: String,
    certificate: Option<ErrorCertificateJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

impl ErrorJson {
    fn of(error: &SslError) -> ErrorJson {
        ErrorJson {
            error: error.error().name().to_string(),
            certificate: error.certificate().map(|c| ErrorCertificateJson {
                subject: c.subject_rfc4514(),
                sha256: c.sha256_hex(),
            }),
            hint: None,
        }
    }

    /// With the hint of a client's report (v2); `sent`: the chain as the peer sent it.
    pub fn with_hint(error: &SslError, sent: &[SslCertificate]) -> ErrorJson {
        let mut json = ErrorJson::of(error);
        json.hint = Some(crate::hint::hint(error, sent));
        json
    }
}

/// `connect`'s JSON object.
#[derive(Debug, Serialize)]
pub struct ClientJson {
    encrypted: bool,
    mode: String,
    backend: String,
    protocol: String,
    cipher: Option<CipherJson>,
    alpn: Option<String>,
    errors: Vec<ErrorJson>,
    peer_certificate_chain: Vec<ChainEntryJson>,
    ocsp: Vec<serde_json::Value>,
    session_resumed: bool,
    group: Option<String>,
    timing: Timing,
    received: String,
    received_bytes: u64,
    socket_error: Option<String>,
    error_string: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reconnect: Option<Box<ClientJson>>,
}

impl ClientJson {
    /// Adds the report of the second connection of `--reconnect`.
    pub fn with_reconnect(mut self, second: ClientJson) -> ClientJson {
        self.reconnect = Some(Box::new(second));
        self
    }
}

/// The session facts both reports share.
struct Facts {
    protocol: String,
    cipher: Option<CipherJson>,
    alpn: Option<String>,
    errors: Vec<ErrorJson>,
    chain: Vec<ChainEntryJson>,
}

/// What `connect` adds to its report beyond the socket's accessors.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientDetails {
    /// How long connect and handshake took.
    pub timing: Timing,
    /// `--showcerts`: PEM in the chain entries.
    pub showcerts: bool,
}

/// `"timing"`: TCP connect, then TLS handshake, in milliseconds (`null` when not reached).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Timing {
    /// The TCP connect.
    pub connect_ms: Option<f64>,
    /// The TLS handshake.
    pub handshake_ms: Option<f64>,
}

fn facts(socket: &impl Reported) -> Facts {
    facts_with(socket, false, false)
}

fn facts_with(socket: &impl Reported, pem: bool, hints: bool) -> Facts {
    Facts {
        protocol: socket.core().session_protocol().to_string(),
        cipher: CipherJson::of_session(socket),
        alpn: alpn(socket),
        errors: socket
            .core()
            .ssl_handshake_errors()
            .iter()
            .map(|e| {
                if hints {
                    ErrorJson::with_hint(e, socket.core().peer_certificate_chain())
                } else {
                    ErrorJson::of(e)
                }
            })
            .collect(),
        chain: socket
            .core()
            .peer_certificate_chain()
            .iter()
            .map(|c| ChainEntryJson::of(c, pem))
            .collect(),
    }
}

fn alpn(socket: &impl Reported) -> Option<String> {
    socket
        .core()
        .next_negotiated_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

fn backend_name(socket: &impl Reported) -> String {
    socket
        .core()
        .backend_name()
        .or_else(sslsocket::backend::active_backend)
        .unwrap_or_default()
        .to_string()
}

fn error_name(error: Option<SocketError>) -> Option<String> {
    error.map(|e| e.to_string())
}

/// `connect`'s report.
pub fn client_json(
    socket: &impl Reported,
    outcome: &Outcome,
    details: &ClientDetails,
) -> ClientJson {
    let facts = facts_with(socket, details.showcerts, true);
    ClientJson {
        encrypted: outcome.encrypted,
        mode: format!("{:?}", socket.core().mode()),
        backend: backend_name(socket),
        protocol: facts.protocol,
        cipher: facts.cipher,
        alpn: facts.alpn,
        errors: facts.errors,
        peer_certificate_chain: facts.chain,
        ocsp: ocsp_json(socket),
        session_resumed: socket.core().is_session_resumed(),
        group: socket.core().ephemeral_key_group().map(str::to_string),
        timing: details.timing,
        received: String::from_utf8_lossy(&outcome.received).into_owned(),
        received_bytes: outcome.received_bytes,
        socket_error: error_name(outcome.socket_error),
        error_string: outcome.error_string.clone(),
        reconnect: None,
    }
}

/// `serve`'s line for one connection.
#[derive(Debug, Serialize)]
pub struct ServerJson {
    event: &'static str,
    peer: Option<String>,
    /// The server name the client sent (SNI), `null` if none.
    sni: Option<String>,
    protocol: String,
    cipher: Option<CipherJson>,
    alpn: Option<String>,
    peer_certificate_chain: Vec<ChainEntryJson>,
    errors: Vec<ErrorJson>,
    session_resumed: bool,
    socket_error: Option<String>,
    error_string: String,
    received_bytes: u64,
}

/// `serve`'s report of one connection.
pub fn server_json(socket: &impl Reported, outcome: &Outcome) -> ServerJson {
    let facts = facts(socket);
    ServerJson {
        event: if outcome.encrypted {
            "encrypted"
        } else {
            "failed"
        },
        peer: socket.peer_address().map(|a| a.to_string()),
        sni: socket.core().requested_server_name().map(str::to_string),
        protocol: facts.protocol,
        cipher: facts.cipher,
        alpn: facts.alpn,
        peer_certificate_chain: facts.chain,
        errors: facts.errors,
        session_resumed: socket.core().is_session_resumed(),
        socket_error: error_name(outcome.socket_error),
        error_string: outcome.error_string.clone(),
        received_bytes: outcome.received_bytes,
    }
}

/// `serve`'s first line.
#[derive(Debug, Serialize)]
pub struct ListeningJson {
    /// Always `listening`.
    pub event: &'static str,
    /// The address listened on, with the real port.
    pub address: String,
}

/// The readable report's protocol line (`TLS 1.3`) and cipher line.
fn protocol_and_cipher(out: &mut String, socket: &impl Reported) {
    let core = socket.core();
    let _ = writeln!(
        out,
        "protocol: {}",
        crate::style::protocol_name(core.session_protocol())
    );
    match (core.session_cipher(), CipherJson::of_session(socket)) {
        (Some(c), _) => {
            let _ = writeln!(
                out,
                "cipher: {} ({} bits; {}, {}, {})",
                c.name(),
                c.used_bits(),
                c.key_exchange_method(),
                c.authentication_method(),
                c.encryption_method()
            );
        }
        (None, Some(c)) => {
            let _ = writeln!(out, "cipher: {}", c.name);
        }
        (None, None) => {
            let _ = writeln!(out, "cipher: none");
        }
    }
}

/// The readable lines about a handshake: protocol, cipher, ALPN, peer, verification.
fn session_text(out: &mut String, socket: &impl Reported) {
    protocol_and_cipher(out, socket);
    if let Some(alpn) = alpn(socket) {
        let _ = writeln!(out, "alpn: {}", printable(&alpn));
    }
    let session = if socket.core().is_session_resumed() {
        "resumed"
    } else {
        "new"
    };
    let _ = writeln!(out, "session: {session}");
    match socket.core().peer_certificate_chain().first() {
        Some(leaf) => {
            let _ = writeln!(out, "peer certificate: {}", leaf.subject_rfc4514());
            let _ = writeln!(out, "  issuer: {}", leaf.issuer_rfc4514());
            let _ = writeln!(
                out,
                "  valid: {} to {}",
                rfc3339(leaf.effective_date_unix()),
                rfc3339(leaf.expiry_date_unix())
            );
            let _ = writeln!(out, "  sha256: {}", leaf.sha256_hex());
            let more = socket.core().peer_certificate_chain().len() - 1;
            if more > 0 {
                let _ = writeln!(out, "  chain: {more} more certificate(s)");
            }
        }
        None => {
            let _ = writeln!(out, "peer certificate: none");
        }
    }
    let errors = socket.core().ssl_handshake_errors();
    if errors.is_empty() {
        let _ = writeln!(out, "verification: no errors");
    } else {
        let _ = writeln!(out, "verification errors:");
        for error in errors {
            let on = error
                .certificate()
                .map(|c| format!(" [{}]", c.subject_rfc4514()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}: {}{on}",
                error.error().name(),
                error.error_string()
            );
        }
    }
}

fn outcome_text(out: &mut String, outcome: &Outcome) {
    if let Some(error) = outcome.socket_error {
        let _ = writeln!(out, "error: {error}: {}", outcome.error_string);
    }
}

/// `connect`'s readable report: the session (protocol as people write it, cipher, group,
/// ALPN, OCSP, timing), every certificate of the chain, every error with its hint.
pub fn client_text(
    target: &str,
    socket: &impl Reported,
    outcome: &Outcome,
    details: &ClientDetails,
) -> String {
    let paint = crate::style::Paint::stdout();
    let mut out = String::new();
    let state = if outcome.encrypted {
        paint.good("encrypted")
    } else {
        paint.bad("not encrypted")
    };
    let _ = writeln!(
        out,
        "{}: {state} ({})",
        paint.head(target),
        backend_name(socket)
    );
    let core = socket.core();
    if outcome.encrypted || !core.peer_certificate_chain().is_empty() {
        protocol_and_cipher(&mut out, socket);
        let group = match core.ephemeral_key_group() {
            Some(group) if group.contains("MLKEM") || group.contains("Kyber") => {
                format!("{group} ({})", paint.good("post-quantum hybrid"))
            }
            Some(group) => group.to_string(),
            None => "none".to_string(),
        };
        let _ = writeln!(out, "group: {group}");
        let _ = writeln!(
            out,
            "alpn: {}",
            printable(&alpn(socket).unwrap_or_else(|| "none".to_string()))
        );
        let _ = writeln!(out, "ocsp: {}", ocsp_text(socket));
        let session = if core.is_session_resumed() {
            "resumed"
        } else {
            "new"
        };
        let _ = writeln!(out, "session: {session}");
    }
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1} ms"));
    let _ = writeln!(
        out,
        "timing: connect {}, handshake {}",
        ms(details.timing.connect_ms),
        ms(details.timing.handshake_ms)
    );
    // A connection that never reached the handshake has no chain and no verdict to show.
    if outcome.encrypted
        || !core.peer_certificate_chain().is_empty()
        || !core.ssl_handshake_errors().is_empty()
    {
        chain_text(
            &mut out,
            core.peer_certificate_chain(),
            details.showcerts,
            &paint,
        );
        errors_text(
            &mut out,
            core.ssl_handshake_errors(),
            core.peer_certificate_chain(),
            &paint,
        );
    }
    if outcome.received_bytes > 0 || !outcome.received.is_empty() {
        let _ = writeln!(out, "received ({} bytes):", outcome.received_bytes);
        let text = crate::style::printable_text(&String::from_utf8_lossy(&outcome.received));
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    if let Some(error) = outcome.socket_error {
        let _ = writeln!(
            out,
            "{}: {error}: {}",
            paint.bad("error"),
            outcome.error_string
        );
    }
    out
}

/// Every certificate of a chain: subject, issuer, validity with days left, public key,
/// SHA-256, and the PEM when asked.
pub fn chain_text(
    out: &mut String,
    chain: &[SslCertificate],
    pem: bool,
    paint: &crate::style::Paint,
) {
    if chain.is_empty() {
        let _ = writeln!(out, "certificate chain: none");
        return;
    }
    let _ = writeln!(out, "certificate chain ({}):", chain.len());
    for (i, cert) in chain.iter().enumerate() {
        let _ = writeln!(out, "  [{i}] {}", paint.head(&cert.subject_rfc4514()));
        let _ = writeln!(out, "      issuer: {}", cert.issuer_rfc4514());
        let left = days_left(cert);
        let left_text = if left < 0 {
            paint.bad(&expired_ago(cert))
        } else if left < 30 {
            paint.warn(&format!("{left} days left"))
        } else {
            format!("{left} days left")
        };
        let _ = writeln!(
            out,
            "      valid: {} to {} ({left_text})",
            rfc3339(cert.effective_date_unix()),
            rfc3339(cert.expiry_date_unix())
        );
        let _ = writeln!(out, "      public key: {}", public_key_name(cert));
        let _ = writeln!(out, "      sha256: {}", paint.dim(&cert.sha256_hex()));
        if pem {
            out.push_str(&cert.to_pem());
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
}

/// Every verification error with its hint.
pub fn errors_text(
    out: &mut String,
    errors: &[SslError],
    sent: &[SslCertificate],
    paint: &crate::style::Paint,
) {
    if errors.is_empty() {
        let _ = writeln!(out, "verification: {}", paint.good("no errors"));
        return;
    }
    let _ = writeln!(out, "verification errors:");
    for error in errors {
        let on = error
            .certificate()
            .map(|c| format!(" [{}]", c.subject_rfc4514()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}: {}{on}",
            paint.bad(error.error().name()),
            error.error_string()
        );
        let _ = writeln!(out, "    hint: {}", crate::hint::hint(error, sent));
    }
}

/// The OCSP status for the readable report.
fn ocsp_text(socket: &impl Reported) -> String {
    let responses = socket.core().ocsp_responses();
    if responses.is_empty() {
        return if socket.core().configuration().ocsp_stapling_enabled() {
            "no response stapled".to_string()
        } else {
            "not requested".to_string()
        };
    }
    responses
        .iter()
        .map(|r| match r.revocation_reason() {
            sslsocket::OcspRevocationReason::None => format!("{:?}", r.certificate_status()),
            reason => format!("{:?} ({reason:?})", r.certificate_status()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `serve`'s readable lines for one connection.
pub fn server_text(socket: &impl Reported, outcome: &Outcome) -> String {
    let mut out = String::new();
    let peer = socket
        .peer_address()
        .map_or_else(|| "?".to_string(), |a| a.to_string());
    let state = if outcome.encrypted {
        "encrypted"
    } else {
        "failed"
    };
    let _ = writeln!(
        out,
        "{peer}: {state}, received {} bytes",
        outcome.received_bytes
    );
    if let Some(name) = socket.core().requested_server_name() {
        let _ = writeln!(out, "  sni: {}", printable(name));
    }
    if outcome.encrypted || !socket.core().peer_certificate_chain().is_empty() {
        for line in session_lines(socket) {
            let _ = writeln!(out, "  {line}");
        }
    }
    outcome_text(&mut out, outcome);
    out
}

fn session_lines(socket: &impl Reported) -> Vec<String> {
    let mut text = String::new();
    session_text(&mut text, socket);
    text.lines().map(str::to_string).collect()
}

/// A certificate with everything `sslsocket cert FILE...` shows: `connect`'s chain entry
/// (the contract's fields, `days_left`, `public_key`, `pem`), where it was read, then
/// names for people, version, SHA-1, the key's size and the extensions.
#[derive(Serialize)]
pub struct CertificateDetailJson {
    file: String,
    index: usize,
    #[serde(flatten)]
    entry: ChainEntryJson,
    subject_display_name: String,
    issuer_display_name: String,
    version: Option<u32>,
    sha1: String,
    public_key_bits: Option<u32>,
    extensions: Vec<ExtensionJson>,
}

#[derive(Debug, Serialize)]
struct ExtensionJson {
    name: String,
    oid: String,
    critical: bool,
    value: String,
}

impl CertificateDetailJson {
    /// Certificate number `index` (from 0) of `file`, from its accessors.
    pub fn of(file: &Path, index: usize, cert: &SslCertificate) -> CertificateDetailJson {
        CertificateDetailJson {
            file: file.display().to_string(),
            index,
            entry: ChainEntryJson::of(cert, true),
            subject_display_name: cert.subject_display_name(),
            issuer_display_name: cert.issuer_display_name(),
            version: cert.version().parse().ok(),
            sha1: cert.digest_hex(DigestAlgorithm::Sha1),
            public_key_bits: cert.public_key().map(|key| key.length()),
            extensions: cert
                .extensions()
                .iter()
                .map(|e| ExtensionJson {
                    name: e.name().to_string(),
                    oid: e.oid().to_string(),
                    critical: e.is_critical(),
                    value: e.value().to_string(),
                })
                .collect(),
        }
    }
}

/// A certificate in readable lines, a short `openssl x509 -text`: every field of
/// [`CertificateDetailJson`], extensions last with their decoded values.
pub fn certificate_text(cert: &SslCertificate) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "subject: {}", cert.subject_rfc4514());
    let _ = writeln!(
        out,
        "  display name: {}",
        printable(&cert.subject_display_name())
    );
    let _ = writeln!(out, "issuer: {}", cert.issuer_rfc4514());
    let _ = writeln!(
        out,
        "  display name: {}",
        printable(&cert.issuer_display_name())
    );
    let _ = writeln!(out, "serial: {}", serial_hex(cert));
    let _ = writeln!(out, "version: {}", cert.version());
    let _ = writeln!(out, "not before: {}", rfc3339(cert.effective_date_unix()));
    let _ = writeln!(out, "not after: {}", rfc3339(cert.expiry_date_unix()));
    let _ = writeln!(out, "sha256: {}", cert.sha256_hex());
    let _ = writeln!(out, "sha1: {}", cert.digest_hex(DigestAlgorithm::Sha1));
    let _ = writeln!(out, "self-signed: {}", cert.is_self_signed());
    match cert.public_key() {
        Some(key) => {
            let _ = writeln!(
                out,
                "public key: {:?}, {} bits",
                key.algorithm(),
                key.length()
            );
        }
        None => {
            let _ = writeln!(out, "public key: unreadable");
        }
    }
    let sans: Vec<String> = cert
        .subject_alternative_names()
        .iter()
        .map(ToString::to_string)
        .collect();
    if !sans.is_empty() {
        let _ = writeln!(out, "san: {}", printable(&sans.join(", ")));
    }
    let extensions = cert.extensions();
    if !extensions.is_empty() {
        let _ = writeln!(out, "extensions:");
    }
    for extension in extensions {
        let critical = if extension.is_critical() {
            ", critical"
        } else {
            ""
        };
        let head = format!("{} ({}{critical})", extension.name(), extension.oid());
        let value = extension.value();
        let lines: Vec<std::borrow::Cow<'_, str>> = value.lines().map(printable).collect();
        match lines.as_slice() {
            [] => {
                let _ = writeln!(out, "  {head}");
            }
            [one] => {
                let _ = writeln!(out, "  {head}: {one}");
            }
            many => {
                let _ = writeln!(out, "  {head}:");
                for line in many {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
    }
    out
}

/// A cipher suite as `sslsocket ciphers` lists it.
#[derive(Debug, Serialize)]
pub struct CipherListJson {
    name: String,
    openssl_name: String,
    protocol: String,
    key_exchange: String,
    authentication: String,
    encryption: String,
    used_bits: u32,
    supported_bits: u32,
}

impl CipherListJson {
    /// From the cipher's accessors. TLS 1.3 suites leave key exchange and authentication
    /// to the session: the library gives empty strings for them, and so does this.
    pub fn of(cipher: &SslCipher) -> CipherListJson {
        CipherListJson {
            name: cipher.name().to_string(),
            openssl_name: cipher.openssl_name().to_string(),
            protocol: cipher.protocol().to_string(),
            key_exchange: cipher.key_exchange_method().to_string(),
            authentication: cipher.authentication_method().to_string(),
            encryption: cipher.encryption_method().to_string(),
            used_bits: cipher.used_bits(),
            supported_bits: cipher.supported_bits(),
        }
    }
}

/// The cipher suites as a table, in the manner of `openssl ciphers -v` (`any` where a TLS
/// 1.3 suite leaves key exchange or authentication to the session).
pub fn ciphers_text(ciphers: &[SslCipher]) -> String {
    let or_any = |s: &str| if s.is_empty() { "any" } else { s }.to_string();
    let rows: Vec<[String; 7]> = ciphers
        .iter()
        .map(|c| {
            [
                c.name().to_string(),
                c.openssl_name().to_string(),
                c.protocol().to_string(),
                format!("Kx={}", or_any(c.key_exchange_method())),
                format!("Au={}", or_any(c.authentication_method())),
                format!("Enc={}", c.encryption_method()),
                format!("Bits={}", c.used_bits()),
            ]
        })
        .collect();
    let mut widths = [0usize; 7];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// The readable session lines, for `demo`.
pub fn session_summary(socket: &impl Reported) -> String {
    let mut out = String::new();
    session_text(&mut out, socket);
    out
}

/// The stapled OCSP responses, as the contract shows them.
fn ocsp_json(socket: &impl Reported) -> Vec<serde_json::Value> {
    socket
        .core()
        .ocsp_responses()
        .iter()
        .map(|response| {
            let reason = match response.revocation_reason() {
                sslsocket::OcspRevocationReason::None => serde_json::Value::Null,
                other => serde_json::Value::String(format!("{other:?}")),
            };
            serde_json::json!({
                "status": format!("{:?}", response.certificate_status()),
                "revocation_reason": reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate whose `not_after` is `ago` before now.
    fn expired_by(ago: time::Duration) -> Result<SslCertificate, Box<dyn std::error::Error>> {
        let now = OffsetDateTime::now_utc();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
        params.not_before = now - time::Duration::days(30);
        params.not_after = now - ago;
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(SslCertificate::from_der(cert.der())?)
    }

    #[test]
    fn expired_ago_counts_whole_days_since_the_expiry() -> Result<(), Box<dyn std::error::Error>> {
        let minute = time::Duration::minutes(1);
        let day = time::Duration::days(1);
        for (ago, text, left) in [
            (minute, "expired today", -1),
            (day + minute, "expired 1 day ago", -2),
            (day * 3 + minute, "expired 3 days ago", -4),
        ] {
            let cert = expired_by(ago)?;
            assert_eq!(expired_ago(&cert), text);
            // The JSON field stays the floor of the days left, negative once expired.
            assert_eq!(days_left(&cert), left);
        }
        Ok(())
    }
}
