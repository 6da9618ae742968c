//! The collector: every verification error of a chain, each on its certificate, in
//! OpenSSL's order.

use crate::cert::SslCertificate;
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::checks::{CaKind, CertInfo};
use crate::verify::constraints;
use crate::verify::hostname::matches_host;
use crate::verify::path::{self, Path, PathNode, Top};
use crate::verify::signature::{
    digest_under_security_level, key_under_security_level, SignatureCheck,
};
use crate::verify::store::TrustStore;
use x509_parser::certificate::X509Certificate;

/// The most intermediate CA certificates ever followed between the leaf and the anchor,
/// whatever `max_depth` says; a longer path is reported like a `max_depth` overflow.
pub const MAX_INTERMEDIATES: u32 = 10;

/// What the peer's certificate must be good for (OpenSSL's `ssl_server` / `ssl_client`
/// purposes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A TLS server's certificate, checked by a client: extendedKeyUsage, if present,
    /// must allow serverAuth.
    ServerAuth,
    /// A TLS client's certificate, checked by a server: extendedKeyUsage, if present,
    /// must allow clientAuth.
    ClientAuth,
}

/// Everything one verification looks at.
#[derive(Clone, Copy, Debug)]
pub struct VerifyInput<'a> {
    /// The chain as the peer sent it, leaf first.
    pub chain: &'a [SslCertificate],
    /// The trusted anchors.
    pub store: &'a TrustStore,
    /// The name to check the leaf against: a DNS name or an IP literal. `None` checks no
    /// name (a server verifying its clients).
    pub host: Option<&'a str>,
    /// What the leaf must be good for.
    pub purpose: Purpose,
    /// The time to check validity periods at, in seconds since the Unix epoch (the caller
    /// reads the clock, so verification is deterministic).
    pub now_unix: i64,
    /// At most this many intermediate CA certificates between the leaf and the trust
    /// anchor (Qt's `peerVerifyDepth`, counted as OpenSSL counts it); 0 means no limit
    /// (but see [`MAX_INTERMEDIATES`]).
    pub max_depth: u32,
}

/// Every verification error of the chain, each tied to its certificate, in OpenSSL's order
/// (depth-first from the leaf, as OpenSSL's verify callback reports them). Empty = trusted.
///
/// This is Qt's rule ("find every error, decide afterwards"), with the errors OpenSSL's
/// `X509_verify_cert` reports to a verify callback that always continues (what Qt does on
/// its OpenSSL backend), so that an ignore list written against one backend works on the
/// other:
///
/// - The path is built from the leaf through the certificates the peer sent and the store
///   (trusted issuers first, then a self-signed certificate ends it, then sent issuers;
///   names by raw DER, authority/subject key identifiers preferred, each signature checked
///   with the crypto provider). A certificate that is itself in the store ends the path as
///   a trust anchor, self-signed or not. Certificates the peer sent that are not on the
///   path are ignored.
/// - How the path ends: an untrusted self-signed leaf alone gives `SelfSignedCertificate`;
///   an untrusted self-signed root above it gives `SelfSignedCertificateInChain` on that
///   root; a top certificate with no known issuer gives `UnableToGetLocalIssuerCertificate`
///   on it, and when that top is the leaf itself also `UnableToVerifyFirstCertificate`.
/// - Per certificate of the path, including the anchor: an unreadable extension we rely on
///   or an unhandled critical extension (`UnspecifiedError`); a CA without `CA:TRUE`
///   (`InvalidCaCertificate`, and then also `InvalidPurpose`, as OpenSSL's purpose check
///   requires a CA); an issuer whose keyUsage leaves out keyCertSign (`UnspecifiedError`
///   on it, OpenSSL's `X509_V_ERR_KEYUSAGE_NO_CERTSIGN`); an extendedKeyUsage without the
///   purpose (serverAuth or clientAuth; anyExtendedKeyUsage alone allows neither), or a
///   leaf keyUsage that excludes TLS
///   (`InvalidPurpose`); a violated pathLenConstraint (`PathLengthExceeded`, on the CA
///   whose constraint it is); a signature that does not verify (`CertificateSignatureFailed`
///   on the signed certificate) or an issuer key the provider cannot use
///   (`UnableToDecodeIssuerPublicKey`, on the issuer, as OpenSSL reports it); validity
///   (`CertificateNotYetValid`, `CertificateExpired`) at `now_unix`. Like OpenSSL, the
///   dates of an untrusted top certificate whose issuer is unknown are not checked (only
///   its missing issuer is reported), those of a trust anchor are.
/// - The host name, when given, on the leaf, last (`HostNameMismatch`; Qt checks the name
///   after OpenSSL's verification and appends it).
///
/// Errors come in the order OpenSSL's phases find them: path building; extensions, leaf
/// first, then up the path; signatures and dates, from the top of the path down to the
/// leaf, each certificate's signature before its dates (`internal_verify`); name
/// constraints. No pair repeats.
///
/// **Depth.** With `max_depth` N > 0 the trust anchor must be at most N+1 certificates
/// above the leaf. When the path goes further, OpenSSL 3 stops at the certificate N+1
/// above the leaf and reports there `X509_V_ERR_CERT_CHAIN_TOO_LONG` and then
/// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY` (checked with `openssl s_client
/// -verify_depth` against OpenSSL 3.0). Qt maps the first to `UnspecifiedError` (it has no
/// kind for it), so we report `UnspecifiedError` and `UnableToGetLocalIssuerCertificate`,
/// both on that certificate, and nothing about the certificates above it.
///
/// **Where we differ from OpenSSL**, on purpose: a trusted certificate that is not
/// self-signed is an anchor (OpenSSL without `X509_V_FLAG_PARTIAL_CHAIN` reports
/// `UnableToGetIssuerCertificate` on it; rustls and webpki accept it, and our OpenSSL
/// backend sets that flag, listing what OpenSSL leaves out with it for a leaf of unknown
/// issuer, `UnableToVerifyFirstCertificate`); the own signature
/// of an untrusted self-signed certificate is checked (OpenSSL skips it), so a
/// self-issued certificate whose signature does not verify also gets
/// `CertificateSignatureFailed`; an empty chain gives `NoPeerCertificate` (no certificate).
/// Keys and digests under OpenSSL's security level 2 (RSA keys under 2048 bits, SHA-1 and
/// MD5 signatures) are `UnspecifiedError` on their certificate, as OpenSSL 3 reports them
/// (`X509_V_ERR_EE_KEY_TOO_SMALL` first, on the leaf; `..._CA_KEY_TOO_SMALL` and
/// `..._CA_MD_TOO_WEAK` after the extensions); the PKCS#1 signatures of such keys and
/// digests are still checked (`CertificateSignatureFailed` when they do not verify).
///
/// - Name constraints of every certificate above (the anchor's included) on each
///   certificate but a self-issued CA below the top, after the dates: a violation, or a
///   name or constraint we cannot compare, is `UnspecifiedError` on the certificate that
///   breaks them (OpenSSL's `X509_V_ERR_PERMITTED_VIOLATION` and kin; see
///   `constraints.rs`). They are checked here, not only by webpki, because webpki never
///   reaches them on a chain it rejects for another reason, and an application that
///   ignores that reason must still see them.
///
/// **Not covered here** (the backend's webpki check is the gate for them): certificate
/// policies, revocation.
pub fn collect_errors(input: &VerifyInput<'_>) -> Vec<SslError> {
    collect(input).errors
}

/// What the collector found: the errors, and the path it built (leaf first, up to the
/// anchor or to the last certificate it could place; never the certificates the peer sent
/// that are not on it).
pub(crate) struct Collected {
    /// Every error, as [`collect_errors`] lists them.
    pub(crate) errors: Vec<SslError>,
    /// The path the errors are about, leaf first; empty when the leaf did not parse.
    pub(crate) path: Vec<SslCertificate>,
}

/// [`collect_errors`] with the path it built.
pub(crate) fn collect(input: &VerifyInput<'_>) -> Collected {
    let Some(leaf_cert) = input.chain.first() else {
        return Collected {
            errors: vec![SslError::new(SslErrorKind::NoPeerCertificate)],
            path: Vec::new(),
        };
    };
    let Some(leaf) = CertInfo::parse(leaf_cert) else {
        return Collected {
            errors: vec![SslError::with_certificate(
                SslErrorKind::UnspecifiedError,
                leaf_cert.clone(),
            )],
            path: Vec::new(),
        };
    };
    let mut unreadable = Vec::new();
    let mut pool = Vec::new();
    for cert in input.chain.iter().skip(1) {
        match CertInfo::parse(cert) {
            Some(info) => pool.push(Some(info)),
            None => unreadable.push(cert),
        }
    }
    let limit = match input.max_depth {
        0 => MAX_INTERMEDIATES,
        n => n.min(MAX_INTERMEDIATES),
    };
    let max_nodes = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(2);
    let path = path::build(leaf, pool, input.store, max_nodes, input.now_unix);

    let mut errors = Errors::default();
    for (index, kind) in path_errors(&path, input) {
        if let Some(node) = path.nodes.get(index) {
            errors.push(kind, node.info.cert());
        }
    }
    // Cannot happen for `SslCertificate` values (they parsed when made), but the list must
    // never be empty for a chain that does not verify.
    for cert in unreadable {
        errors.push(SslErrorKind::UnspecifiedError, cert);
    }
    if let (Some(host), Some(leaf)) = (input.host, path.nodes.first()) {
        if !matches_host(leaf.info.x509(), host) {
            errors.push(SslErrorKind::HostNameMismatch, leaf.info.cert());
        }
    }
    Collected {
        errors: errors.list,
        path: path.nodes.iter().map(|n| n.info.cert().clone()).collect(),
    }
}

/// The policy errors of a path whose signatures were already verified (by webpki), leaf
/// first and ending at a trust anchor: the same per-certificate checks as the collector
/// (extensions, CA flags, purpose and key usage, path length, dates), no signature checks.
/// `None` when a certificate of the path does not parse (the caller fails closed).
///
/// Each certificate comes with its parse when one was made already from the same DER (a
/// sent certificate's by `SslCertificate::parse_der`, a configured CA's when the verifier
/// was made); the others are parsed here.
pub(crate) fn verified_path_errors_parsed<'a>(
    path: impl Iterator<Item = (&'a SslCertificate, Option<&'a X509Certificate<'a>>)>,
    input: &VerifyInput<'_>,
) -> Option<Vec<SslError>> {
    let mut nodes = Vec::with_capacity(path.size_hint().0);
    for (cert, parsed) in path {
        let info = match parsed {
            Some(x509) => CertInfo::lent(cert, x509),
            None => CertInfo::parse(cert)?,
        };
        nodes.push(PathNode {
            info,
            signature: Some(crate::verify::signature::SignatureCheck::Valid),
        });
    }
    if let Some(last) = nodes.last_mut() {
        last.signature = None;
    }
    let built = Path {
        nodes,
        top: Top::Anchored,
    };
    let mut errors = Errors::default();
    for (index, kind) in path_errors(&built, input) {
        if let Some(node) = built.nodes.get(index) {
            errors.push(kind, node.info.cert());
        }
    }
    Some(errors.list)
}

/// The errors of the path as (path index, kind), in the order OpenSSL's verify callback
/// reports them.
fn path_errors(path: &Path<'_>, input: &VerifyInput<'_>) -> Vec<(usize, SslErrorKind)> {
    use SslErrorKind::*;
    let count = path.nodes.len();
    let top = count.saturating_sub(1);
    let mut kinds: Vec<(usize, SslErrorKind)> = Vec::new();
    let mut add = |index: usize, kind: SslErrorKind| {
        if index < count {
            kinds.push((index, kind));
        }
    };

    // OpenSSL's security level on the leaf's key, before anything else
    // (`X509_V_ERR_EE_KEY_TOO_SMALL`, Qt's `UnspecifiedError`).
    if path
        .nodes
        .first()
        .is_some_and(|leaf| key_under_security_level(leaf.info.spki_raw()))
    {
        add(0, UnspecifiedError);
    }

    // Path building (OpenSSL's build_chain).
    match path.top {
        Top::Anchored => {}
        Top::SelfSigned(_) if count == 1 => add(top, SelfSignedCertificate),
        Top::SelfSigned(_) => add(top, SelfSignedCertificateInChain),
        Top::NoIssuer => add(top, UnableToGetLocalIssuerCertificate),
        Top::TooLong => {
            add(top, UnspecifiedError);
            add(top, UnableToGetLocalIssuerCertificate);
        }
    }

    // Extensions (OpenSSL's check_chain_extensions).
    let mut intermediates_below: u32 = 0;
    for (index, node) in path.nodes.iter().enumerate() {
        let info = &node.info;
        if info.has_extension_problem() || info.carries_rfc_3779_resources() {
            add(index, UnspecifiedError);
        }
        let as_ca = index > 0;
        if as_ca {
            // OpenSSL 3 tolerates a CA without basicConstraints (v1, or keyUsage only)
            // only at the top of the path.
            let ca = info.ca_kind();
            if ca == CaKind::No || (index < top && ca != CaKind::Yes) {
                add(index, InvalidCaCertificate);
            }
        }
        if !info.allows_purpose(input.purpose, as_ca) {
            add(index, InvalidPurpose);
        }
        if index > 1 {
            if let Some(max) = info.path_len_constraint() {
                if intermediates_below > max {
                    add(index, PathLengthExceeded);
                }
            }
        }
        if as_ca && !info.is_self_issued() {
            intermediates_below = intermediates_below.saturating_add(1);
        }
    }

    // OpenSSL's security level on the path (its check_auth_level): the key of each CA
    // (`X509_V_ERR_CA_KEY_TOO_SMALL`) and the digest of each signature but the top's own
    // (`X509_V_ERR_CA_MD_TOO_WEAK`), on the certificate concerned; Qt's `UnspecifiedError`.
    // (Round 37: they were `CertificateSignatureFailed` on the signed certificate, since
    // the provider refuses such signatures; they are checked on their own now.)
    for (index, node) in path.nodes.iter().enumerate() {
        if index > 0 && key_under_security_level(node.info.spki_raw()) {
            add(index, UnspecifiedError);
        }
        if index < top && digest_under_security_level(node.info.cert().der()) {
            add(index, UnspecifiedError);
        }
    }

    // Signatures and dates (OpenSSL's internal_verify): from the top of the path down to
    // the leaf, for each certificate its signature, then its dates. OpenSSL never reaches
    // the dates of an untrusted top with no issuer.
    if path.top == Top::NoIssuer && count == 1 {
        add(0, UnableToVerifyFirstCertificate);
    }
    let skip_top_dates = count > 1 && matches!(path.top, Top::NoIssuer | Top::TooLong);
    for (index, node) in path.nodes.iter().enumerate().rev() {
        let own = match path.top {
            Top::SelfSigned(check) if index == top => Some(check),
            _ => None,
        };
        match node.signature {
            Some(check) => {
                let issuer = index.saturating_add(1);
                // OpenSSL's internal_verify refuses an issuer whose keyUsage leaves out
                // keyCertSign (`X509_V_ERR_KEYUSAGE_NO_CERTSIGN`, on the issuer), before its
                // signature; Qt maps it to `UnspecifiedError`.
                if path
                    .nodes
                    .get(issuer)
                    .is_some_and(|n| n.info.forbids_cert_sign())
                {
                    add(issuer, UnspecifiedError);
                }
                signature_errors(check, index, issuer, &mut add)
            }
            None => {
                if let Some(check) = own {
                    signature_errors(check, index, index, &mut add);
                }
            }
        }
        if skip_top_dates && index == top {
            continue;
        }
        // OpenSSL's `check_cert_time`: a time that is not in its DER form is an error in
        // that field, and not compared (webpki refuses it too, `BadDerTime`).
        let (not_before, not_after) = node.info.validity();
        let (before_readable, after_readable) = node.info.validity_times_readable();
        if !before_readable {
            add(index, InvalidNotBeforeField);
        } else if input.now_unix < not_before {
            add(index, CertificateNotYetValid);
        }
        if !after_readable {
            add(index, InvalidNotAfterField);
        } else if input.now_unix > not_after {
            add(index, CertificateExpired);
        }
    }

    // Name constraints (OpenSSL 3 checks them after signatures and dates; its
    // `X509_V_ERR_PERMITTED_VIOLATION` and kin are Qt's `UnspecifiedError`), on the
    // certificate that breaks them. A self-issued CA below the top is exempt (RFC 5280
    // §6.1.4 (b)); the constraints of every certificate above count, the anchor's too.
    let certs: Vec<&X509Certificate<'_>> = path.nodes.iter().map(|n| n.info.x509()).collect();
    for index in constraints::violations(&certs, input.purpose) {
        add(index, UnspecifiedError);
    }
    kinds
}

/// The errors of one signature check of certificate `child` with the key of `issuer`
/// (path indexes).
fn signature_errors(
    check: SignatureCheck,
    child: usize,
    issuer: usize,
    add: &mut impl FnMut(usize, SslErrorKind),
) {
    match check {
        SignatureCheck::Valid => {}
        SignatureCheck::Invalid | SignatureCheck::Malformed => {
            add(child, SslErrorKind::CertificateSignatureFailed)
        }
        SignatureCheck::UnsupportedKey => add(issuer, SslErrorKind::UnableToDecodeIssuerPublicKey),
    }
}

/// The output list, without repeated pairs.
#[derive(Default)]
struct Errors {
    list: Vec<SslError>,
}

impl Errors {
    fn push(&mut self, kind: SslErrorKind, cert: &SslCertificate) {
        let error = SslError::with_certificate(kind, cert.clone());
        if !self.list.contains(&error) {
            self.list.push(error);
        }
    }
}
