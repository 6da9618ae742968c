//! Helpers of the trust tests (`tests/trust_*.rs`): verification errors as comparable sets,
//! OpenSSL's own list of errors for the same chain, and our blocking sockets against
//! `openssl s_server` / `openssl s_client`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{
    SslCertificate, SslConfiguration, SslError, SslErrorKind, SslEvent, SslHooks, Verdict,
};

use super::{os_args, Issued, OpensslClient, OpensslServer, Pki, SupportError, SupportResult};

/// The bound of every handshake the trust tests wait for.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound of every `openssl s_client` run.
pub const CLIENT_RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// One verification error: its kind and the certificate it concerns (subject as RFC 4514
/// and SHA-256 of the DER, both empty when it concerns none). Ordered, so that lists can be
/// compared as sets.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ErrorOn {
    pub kind: SslErrorKind,
    pub subject: String,
    pub sha256: String,
}

impl fmt::Debug for ErrorOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sha256.is_empty() {
            write!(f, "{:?} (no certificate)", self.kind)
        } else {
            let short = self.sha256.get(..12).unwrap_or(&self.sha256);
            write!(f, "{:?} on {:?} ({short}…)", self.kind, self.subject)
        }
    }
}

impl ErrorOn {
    /// `kind` on the certificate `der`.
    pub fn on(kind: SslErrorKind, der: &[u8]) -> SupportResult<ErrorOn> {
        let cert = certificate(der)?;
        Ok(ErrorOn {
            kind,
            subject: cert.subject_rfc4514(),
            sha256: cert.sha256_hex(),
        })
    }

    /// `kind` without a certificate.
    pub fn without_certificate(kind: SslErrorKind) -> ErrorOn {
        ErrorOn {
            kind,
            subject: String::new(),
            sha256: String::new(),
        }
    }

    fn of(error: &SslError) -> ErrorOn {
        match error.certificate() {
            Some(cert) => ErrorOn {
                kind: error.error(),
                subject: cert.subject_rfc4514(),
                sha256: cert.sha256_hex(),
            },
            None => ErrorOn::without_certificate(error.error()),
        }
    }
}

/// The errors of a list, as a set.
pub fn error_set(errors: &[SslError]) -> BTreeSet<ErrorOn> {
    errors.iter().map(ErrorOn::of).collect()
}

/// The expected set, from (kind, DER of the certificate concerned) pairs.
pub fn expect(pairs: &[(SslErrorKind, &[u8])]) -> SupportResult<BTreeSet<ErrorOn>> {
    pairs
        .iter()
        .map(|(kind, der)| ErrorOn::on(*kind, der))
        .collect()
}

/// A set of errors reduced to (kind, subject) pairs, the form OpenSSL prints.
pub fn by_subject(set: &BTreeSet<ErrorOn>) -> BTreeSet<(SslErrorKind, String)> {
    set.iter().map(|e| (e.kind, e.subject.clone())).collect()
}

/// An `SslCertificate` from DER.
pub fn certificate(der: &[u8]) -> SupportResult<SslCertificate> {
    SslCertificate::from_der(der).map_err(|e| SupportError::new(format!("certificate: {e}")))
}

/// The certificates of a chain, leaf first.
pub fn certificates(chain: &[Vec<u8>]) -> SupportResult<Vec<SslCertificate>> {
    chain.iter().map(|der| certificate(der)).collect()
}

/// A client configuration that trusts exactly the certificates in `ca_pem` (no system
/// store).
pub fn trusting(ca_pem: &Path) -> SupportResult<SslConfiguration> {
    let cas = SslCertificate::from_file(ca_pem)
        .map_err(|e| SupportError::new(format!("CA file: {e}")))?;
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(cas);
    Ok(configuration)
}

/// `-cert <leaf> -key <key>` and, when `with_intermediates`, `-cert_chain <the rest>`.
pub fn identity_args(issued: &Issued, with_intermediates: bool) -> Vec<OsString> {
    let mut args = os_args!["-cert", issued.cert_pem, "-key", issued.key_pem];
    if with_intermediates {
        if let Some(rest) = &issued.intermediates_pem {
            args.extend(os_args!["-cert_chain", rest]);
        }
    }
    args
}

/// `openssl s_server` serving `issued` (with or without the certificates after its leaf),
/// plus `extra` arguments.
pub fn serve(
    issued: &Issued,
    with_intermediates: bool,
    extra: &[&str],
) -> SupportResult<OpensslServer> {
    let mut args = identity_args(issued, with_intermediates);
    args.extend(extra.iter().map(OsString::from));
    OpensslServer::start(&args)
}

/// Our client, connected to 127.0.0.1:`port`, verifying the certificate for `peer_name`;
/// nothing is done yet (the handshake runs in the next `wait_for_*`).
pub fn client_to(configuration: SslConfiguration, port: u16, peer_name: &str) -> SslSocket {
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, peer_name);
    socket
}

/// Waits until the socket is paused on verification errors (`true`), or the handshake
/// ended or `timeout` passed (`false`), in short steps so a paused handshake is seen at once.
pub fn wait_until_paused(socket: &mut SslSocket, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if socket.is_paused() {
            return true;
        }
        match socket.wait_for_encrypted(Duration::from_millis(50)) {
            Ok(()) => return socket.is_paused(),
            Err(sslsocket::Error::Timeout(_)) => {}
            Err(_) => return socket.is_paused(),
        }
    }
    socket.is_paused()
}

/// The events that concern verification and the end of the handshake, in order.
pub fn verification_events(events: Vec<SslEvent>) -> Vec<SslEvent> {
    events
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                SslEvent::PeerVerifyError(_)
                    | SslEvent::SslErrors(_)
                    | SslEvent::HandshakeInterruptedOnError(_)
                    | SslEvent::Encrypted
                    | SslEvent::ErrorOccurred(_)
            )
        })
        .collect()
}

/// OpenSSL's complete list of verification errors for the chain a server sends:
/// `openssl s_client -verify 10 -CAfile <ca> -verify_hostname|-verify_ip <name> <extra>`
/// against 127.0.0.1:`port`, whose verify callback prints every error and continues.
/// Each error is mapped to Qt's kind (Qt's `_q_OpenSSL_to_QSslError`; OpenSSL's host and IP
/// mismatches are Qt's `HostNameMismatch`), with the subject of the certificate concerned.
pub fn openssl_client_errors(
    port: u16,
    ca_pem: &Path,
    peer_name: Option<&str>,
    extra: &[&str],
) -> SupportResult<BTreeSet<(SslErrorKind, String)>> {
    let mut args = os_args!["-verify", "10", "-CAfile", ca_pem, "-nameopt", "RFC2253", "-brief",];
    if let Some(name) = peer_name {
        let flag = if name.parse::<std::net::IpAddr>().is_ok() {
            "-verify_ip"
        } else {
            "-verify_hostname"
        };
        args.extend(os_args![flag, name]);
    }
    args.extend(extra.iter().map(OsString::from));
    let out = OpensslClient::run(port, &args, b"", CLIENT_RUN_TIMEOUT)?;
    parse_verify_callback_output(&out.combined())
        .ok_or_else(|| SupportError::new(format!("no verification in s_client output: {out}")))
}

/// The (kind, subject) pairs of the `depth=N SUBJECT` / `verify error:num=N:...` lines
/// OpenSSL's apps print from their verify callback; `None` when no verification was seen.
pub fn parse_verify_callback_output(output: &str) -> Option<BTreeSet<(SslErrorKind, String)>> {
    let mut subject = None::<String>;
    let mut errors = BTreeSet::new();
    let mut seen = false;
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("depth=") {
            seen = true;
            subject = rest
                .split_once(' ')
                .map(|(_, s)| s.trim().to_string())
                .or(Some(String::new()));
        } else if let Some(rest) = line.strip_prefix("verify error:num=") {
            seen = true;
            let code = rest.split(':').next().and_then(|n| n.parse::<i32>().ok());
            let kind = code.map_or(SslErrorKind::UnspecifiedError, qt_kind_of_openssl_error);
            errors.insert((kind, subject.clone().unwrap_or_default()));
        } else if line.starts_with("Verification: OK") || line.starts_with("Verification error") {
            seen = true;
        }
    }
    seen.then_some(errors)
}

/// Qt's kind for an OpenSSL 3 `X509_V_ERR_*` code (the values of OpenSSL 3's
/// `x509_vfy.h`: `X509_V_ERR_INVALID_CA` is 79 there, 24 in OpenSSL 1.1).
pub fn qt_kind_of_openssl_error(code: i32) -> SslErrorKind {
    use SslErrorKind::*;
    match code {
        2 => UnableToGetIssuerCertificate,
        4 => UnableToDecryptCertificateSignature,
        6 => UnableToDecodeIssuerPublicKey,
        7 => CertificateSignatureFailed,
        9 => CertificateNotYetValid,
        10 => CertificateExpired,
        13 => InvalidNotBeforeField,
        14 => InvalidNotAfterField,
        18 => SelfSignedCertificate,
        19 => SelfSignedCertificateInChain,
        20 => UnableToGetLocalIssuerCertificate,
        21 => UnableToVerifyFirstCertificate,
        23 => CertificateRevoked,
        // X509_V_ERR_INVALID_CA.
        79 => InvalidCaCertificate,
        25 => PathLengthExceeded,
        26 => InvalidPurpose,
        27 => CertificateUntrusted,
        28 => CertificateRejected,
        29 => SubjectIssuerMismatch,
        31 => AuthorityIssuerSerialNumberMismatch,
        // X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH.
        62 | 64 => HostNameMismatch,
        _ => UnspecifiedError,
    }
}

/// Hooks that answer with fixed verdicts and record how they were called.
#[derive(Default)]
pub struct RecordingHooks {
    /// What `ssl_errors` answers.
    pub on_errors: Verdict,
    /// What `handshake_interrupted` answers; `None`: the trait's default.
    pub on_interrupt: Option<Verdict>,
    calls: Mutex<HookCalls>,
}

/// The calls a [`RecordingHooks`] received.
#[derive(Debug, Default, Clone)]
pub struct HookCalls {
    /// One entry per `ssl_errors` call: the list it was given.
    pub ssl_errors: Vec<Vec<SslError>>,
    /// One entry per `handshake_interrupted` call: the error it was given.
    pub interrupted: Vec<SslError>,
}

impl RecordingHooks {
    pub fn new(on_errors: Verdict, on_interrupt: Option<Verdict>) -> Arc<RecordingHooks> {
        Arc::new(RecordingHooks {
            on_errors,
            on_interrupt,
            calls: Mutex::new(HookCalls::default()),
        })
    }

    pub fn calls(&self) -> HookCalls {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl SslHooks for RecordingHooks {
    fn ssl_errors(&self, errors: &[SslError]) -> Verdict {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ssl_errors
            .push(errors.to_vec());
        self.on_errors
    }

    fn handshake_interrupted(&self, error: &SslError) -> Verdict {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .interrupted
            .push(error.clone());
        self.on_interrupt.unwrap_or(Verdict::Abort)
    }
}

/// Hooks that decide in `ssl_errors` only and keep the trait's default
/// `handshake_interrupted`.
pub struct ErrorsOnlyHooks(pub Verdict);

impl SslHooks for ErrorsOnlyHooks {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        self.0
    }
}

/// A valid chain with two intermediates and no path-length constraint: root →
/// intermediate → "Test Second Intermediate CA" → leaf (EKU serverAuth+clientAuth, ECDSA
/// P-256). The chain sent is leaf, second intermediate, intermediate. Files go to the
/// PKI's directory.
pub fn leaf_two_intermediates_down(pki: &Pki, name: &str, sans: &[&str]) -> SupportResult<Issued> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    use time::{Duration as Days, OffsetDateTime};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let stem = format!("two-down-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
    let dir = pki.dir.path();
    let now = OffsetDateTime::now_utc();

    let intermediate_pem = std::fs::read_to_string(pki.intermediate_pem())?;
    let intermediate_key =
        KeyPair::from_pem(&std::fs::read_to_string(dir.join("intermediate.key.pem"))?)?;
    let intermediate = Issuer::from_ca_cert_pem(&intermediate_pem, intermediate_key)?;

    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "Test Second Intermediate CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - Days::days(2);
    ca.not_after = now + Days::days(365);
    ca.use_authority_key_identifier_extension = true;
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let ca_der = ca.signed_by(&ca_key, &intermediate)?.der().to_vec();
    let second = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name.push(DnType::CommonName, name);
    leaf.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName((*s).try_into()?)),
        })
        .collect::<Result<Vec<_>, rcgen::Error>>()?;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf.not_before = now - Days::days(1);
    leaf.not_after = now + Days::days(30);
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let leaf_der = leaf.signed_by(&leaf_key, &second)?.der().to_vec();

    let pem_of = |der: &[u8]| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()));
    let chain_der = vec![
        leaf_der.clone(),
        ca_der.clone(),
        pki.intermediate_der().to_vec(),
    ];
    let after: String = chain_der.iter().skip(1).map(|d| pem_of(d)).collect();
    let write = |suffix: &str, text: &str| -> SupportResult<std::path::PathBuf> {
        let path = dir.join(format!("{stem}.{suffix}"));
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let key_der = leaf_key.serialize_der();
    Ok(Issued {
        cert_pem: write("cert.pem", &pem_of(&leaf_der))?,
        key_pem: write("key.pem", &leaf_key.serialize_pem())?,
        chain_pem: write("chain.pem", &format!("{}{after}", pem_of(&leaf_der)))?,
        intermediates_pem: Some(write("intermediates.pem", &after)?),
        cert_der: leaf_der,
        key_der,
        chain_der,
    })
}

/// Accepts one connection on `listener` (waiting at most [`HANDSHAKE_TIMEOUT`]) and runs our server handshake on it with
/// `configuration`, after `prepare` (ignore lists, hooks...) has been applied to the
/// socket. Returns the socket and the handshake's result.
pub fn accept_one(
    listener: &std::net::TcpListener,
    configuration: SslConfiguration,
    prepare: impl FnOnce(&mut SslSocket),
) -> SupportResult<(SslSocket, Result<(), sslsocket::Error>)> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(SupportError::new(format!("no connection to accept: {e}"))),
        }
    };
    let mut socket = SslSocket::from_tcp_stream(stream, configuration)
        .map_err(|e| SupportError::new(format!("adopting the connection: {e}")))?;
    prepare(&mut socket);
    let result = socket
        .start_server_encryption()
        .and_then(|()| socket.wait_for_encrypted(HANDSHAKE_TIMEOUT));
    Ok((socket, result))
}

/// A server configuration with `issued`'s chain and key, trusting `ca_pem` for client
/// certificates (no system store), in `mode`.
pub fn server_configuration(
    issued: &Issued,
    ca_pem: &Path,
    mode: sslsocket::PeerVerifyMode,
) -> SupportResult<SslConfiguration> {
    let mut configuration = trusting(ca_pem)?;
    configuration
        .set_local_certificate_chain(certificates(&issued.chain_der)?)
        .set_private_key(
            sslsocket::SslKey::from_file(&issued.key_pem, None)
                .map_err(|e| SupportError::new(format!("key: {e}")))?,
        )
        .set_peer_verify_mode(mode);
    Ok(configuration)
}
