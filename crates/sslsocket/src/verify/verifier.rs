//! The one chain verifier of the rustls backend (and of `SslCertificate::verify`'s gate):
//! webpki's path validation and our policy checks on the same path, the collector for the
//! complete error list, and a fail-closed rule for everything in between.
//!
//! The rule, in one place:
//!
//! - Every certificate the peer sent keeps its position: the leaf is always the first one
//!   sent. A certificate that does not parse is an `UnspecifiedError` on that position
//!   (kept as its bytes, [`SslCertificate::is_null`]), never dropped.
//! - A chain is accepted with no error only when webpki accepts the chain *and* our policy
//!   checks (CA flags, path length, key usage, purpose, dates of the anchor) hold on the
//!   very path webpki verified, and the name matches. The policy checks run inside
//!   webpki's path search (its `verify_path` hook), so a path that fails them makes webpki
//!   look for another one; signatures are checked once, by webpki.
//! - Otherwise the collector builds its own path and lists every error in OpenSSL's order.
//!   webpki's refusal must be accounted for by the list, or the leaf gets an
//!   `UnspecifiedError`: nothing webpki refuses is accepted unless listed errors explain
//!   it and the application ignored them. "Explain" is strict: an error of the kind of
//!   webpki's reason; and since webpki stops at a date or a missing issuer (and names only
//!   the most specific reason), a listed date or issuer error has webpki judge the chain
//!   again with exactly that granted (a time the path is valid at, the path's top as an
//!   anchor), and what it finds then must be listed too (`refusal_explained`). An error the
//!   application ignores can therefore never hide another one only webpki saw. (Before
//!   round 30 any listed error counted as the explanation: a leaf with only
//!   anyExtendedKeyUsage that had also expired was accepted by ignoring the expiry.)
//! - A leaf that is itself a trust anchor is trusted directly (OpenSSL and Qt accept a
//!   self-signed server certificate given as a CA); its own policy checks and the name
//!   still apply, and it never issues anything.
//! - Pins are matched on the leaf and on the certificates of the path linked to it by
//!   signatures that verify, never on extra certificates the peer appended; a pin
//!   mismatch refuses the peer in every verify mode (`VerifyPolicy::judge_pinned`).

use std::cell::RefCell;
use std::sync::OnceLock;

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use x509_parser::certificate::X509Certificate;

use crate::cert::SslCertificate;
use crate::crypto::algorithms;
use crate::ocsp::OcspResponse;
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::chain::{collect, verified_path_errors_parsed, VerifyInput};
use crate::verify::checks::{sent_extension_errors, ParsedCertificate};
use crate::verify::kept::PeerParses;
use crate::verify::staple::{pin_error, staple_errors};
use crate::verify::{Purpose, TrustStore};

/// Verifies peer chains against one trust configuration: anchors, purpose, depth, pins,
/// OCSP. Built once per configuration and shared by every handshake made from it.
pub struct ChainVerifier {
    store: TrustStore,
    /// webpki's form of each anchor, with the certificate it came from.
    anchors: Vec<TrustAnchor<'static>>,
    anchor_certs: Vec<AnchorCert>,
    purpose: Purpose,
    depth: u32,
    pins: Vec<[u8; 32]>,
    ocsp: bool,
    peers: PeerParses,
}

/// A configured CA of a [`ChainVerifier`], with its x509-parser parse made the first time a
/// verified path ends at it (most of a system store never is).
struct AnchorCert {
    cert: SslCertificate,
    parsed: OnceLock<Option<ParsedCertificate>>,
}

impl AnchorCert {
    fn new(cert: SslCertificate) -> AnchorCert {
        AnchorCert {
            cert,
            parsed: OnceLock::new(),
        }
    }

    /// The parse; `None` when the certificate does not parse (the path is then refused).
    fn parsed(&self) -> Option<&ParsedCertificate> {
        self.parsed
            .get_or_init(|| ParsedCertificate::parse(self.cert.clone()))
            .as_ref()
    }
}

impl ChainVerifier {
    /// The `notAfter` of a path certificate the peer did not send (an anchor), from the
    /// anchor's kept parse (parsed once per configuration, not per handshake).
    fn expiry_of_anchor(&self, cert: &SslCertificate) -> i64 {
        self.anchor_certs
            .iter()
            .find(|anchor| anchor.cert == *cert)
            .and_then(AnchorCert::parsed)
            .map_or_else(
                || cert.expiry_date_unix(),
                |parsed| parsed.x509().validity().not_after.timestamp(),
            )
    }
}

/// What verifying one chain found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// Every error, each on its certificate; empty = trusted.
    pub errors: Vec<SslError>,
    /// The chain as the peer sent it, leaf first (certificates that did not parse
    /// included, as [null](SslCertificate::is_null) certificates).
    pub chain: Vec<SslCertificate>,
    /// The path the verdict is about, leaf first up to the anchor (or as far as it could
    /// be built); pins are matched here.
    pub path: Vec<SslCertificate>,
    /// The stapled OCSP responses checked (when stapling was asked for).
    pub ocsp_responses: Vec<OcspResponse>,
    /// Pins are set and the peer holds none of the pinned keys: this error (also in
    /// `errors`) refuses it in every verify mode.
    pub pin_mismatch: Option<SslError>,
    /// The earliest `notAfter` of the chain sent and the path (see
    /// [`Outcome::valid_until`](crate::verify::Outcome::valid_until)).
    pub valid_until: Option<i64>,
}

/// What webpki, with our policy checks inside its path search, says of a chain.
enum Verdict {
    /// A path that passes both; the certificates of that path, leaf to anchor.
    Accepted(Vec<SslCertificate>),
    /// Paths webpki accepts and our policy refuses, with our errors on each.
    PolicyRefused(Vec<Vec<SslError>>),
    /// webpki's reason for refusing every path.
    Refused(webpki::Error),
}

/// The kinds a date webpki refuses is listed as.
const DATE_KINDS: &[SslErrorKind] = &[
    SslErrorKind::CertificateExpired,
    SslErrorKind::CertificateNotYetValid,
];

/// The kinds a path with no trusted issuer is listed as.
pub(super) const ISSUER_KINDS: &[SslErrorKind] = &[
    SslErrorKind::UnableToGetIssuerCertificate,
    SslErrorKind::UnableToGetLocalIssuerCertificate,
    SslErrorKind::UnableToVerifyFirstCertificate,
    SslErrorKind::SelfSignedCertificate,
    SslErrorKind::SelfSignedCertificateInChain,
    SslErrorKind::CertificateUntrusted,
];

/// The listed kinds that account for webpki's `error` by themselves (a date or a missing
/// issuer never does: [`ChainVerifier::refusal_explained`] asks webpki about them again). A reason
/// none of ours describes, or one OpenSSL and Qt accept but webpki refuses (a CA
/// certificate as the leaf, more than six intermediates, a critical certificatePolicies
/// extension), is explained by nothing: the leaf gets an `UnspecifiedError`.
fn explaining_kinds(error: &webpki::Error) -> &'static [SslErrorKind] {
    use SslErrorKind::*;
    #[allow(deprecated)]
    match error {
        webpki::Error::InvalidSignatureForPublicKey
        | webpki::Error::SignatureAlgorithmMismatch
        | webpki::Error::UnsupportedSignatureAlgorithm
        | webpki::Error::UnsupportedSignatureAlgorithmContext(_)
        | webpki::Error::UnsupportedSignatureAlgorithmForPublicKey
        | webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => &[
            CertificateSignatureFailed,
            UnableToDecryptCertificateSignature,
            UnableToDecodeIssuerPublicKey,
        ],
        webpki::Error::RequiredEkuNotFound
        | webpki::Error::RequiredEkuNotFoundContext(_)
        | webpki::Error::EmptyEkuExtension => &[InvalidPurpose],
        webpki::Error::EndEntityUsedAsCa => &[InvalidCaCertificate],
        webpki::Error::PathLenConstraintViolated => &[PathLengthExceeded],
        webpki::Error::CertRevoked => &[CertificateRevoked],
        webpki::Error::CaUsedAsEndEntity
        | webpki::Error::MaximumPathDepthExceeded
        | webpki::Error::CertExpired { .. }
        | webpki::Error::CertNotValidYet { .. }
        | webpki::Error::UnknownIssuer => &[],
        // Name constraints, unreadable or unsupported contents: what the collector calls
        // `UnspecifiedError` (OpenSSL's errors Qt has no kind for).
        _ => &[UnspecifiedError],
    }
}

/// Whether webpki's refusal of a certificate before version 3 (it reads no other) is
/// explained: every such certificate of the collector's path carries a listed error of
/// its own, `InvalidCaCertificate` on an issuer (no version 1 certificate is a CA to
/// OpenSSL, it has no basicConstraints), `UnspecifiedError` on the leaf. (Round 36: the
/// issuer's `InvalidCaCertificate` explained nothing, and the leaf got an
/// `UnspecifiedError` of its own.)
fn old_versions_explained(errors: &[SslError], path: &[SslCertificate]) -> bool {
    let mut old = path
        .iter()
        .enumerate()
        .filter(|(_, cert)| cert.version() != "3")
        .peekable();
    old.peek().is_some()
        && old.all(|(index, cert)| {
            let kind = if index == 0 {
                SslErrorKind::UnspecifiedError
            } else {
                SslErrorKind::InvalidCaCertificate
            };
            errors.contains(&SslError::with_certificate(kind, cert.clone()))
        })
}

/// Whether webpki's refusal of a time not in its DER form (`BadDerTime`; it names no
/// certificate, and stops there) is explained: some certificate of the collector's path has
/// such a time, and each such time is listed on its certificate (`InvalidNotBeforeField`,
/// `InvalidNotAfterField`, as OpenSSL reports them), whatever else the list holds (the
/// collector's other checks of the path decide the rest, as OpenSSL's go on past the
/// field). (Round 37: an intermediate's was listed as `UnspecifiedError` on the leaf only.)
fn bad_times_explained(errors: &[SslError], path: &[SslCertificate]) -> bool {
    let listed = |kind: SslErrorKind, cert: &SslCertificate| {
        errors.contains(&SslError::with_certificate(kind, cert.clone()))
    };
    let mut bad = path
        .iter()
        .map(|cert| {
            (
                cert,
                crate::verify::strict_der::validity_times_are_der(cert.der()),
            )
        })
        .filter(|(_, times)| *times != (true, true))
        .peekable();
    bad.peek().is_some()
        && bad.all(|(cert, (before, after))| {
            (before || listed(SslErrorKind::InvalidNotBeforeField, cert))
                && (after || listed(SslErrorKind::InvalidNotAfterField, cert))
        })
        && !refused_by_webpki_alone(path)
}

/// Whether webpki's refusal of a signature (it checks none made with an RSA key under
/// 2,048 bits or with SHA-1) is explained by OpenSSL's security level: some certificate of
/// the collector's path has such a key (the leaf, or a CA) or such a signature (below the
/// top), and each carries its `UnspecifiedError`. The collector checks those signatures
/// itself (`signature::verify_link`) and lists `CertificateSignatureFailed` for one that
/// does not verify, so ignoring the security level's errors accepts no forged signature.
/// (Round 37: such a signature was `CertificateSignatureFailed`, where OpenSSL lists the
/// security level's error alone.)
fn security_level_explained(errors: &[SslError], path: &[SslCertificate]) -> bool {
    use crate::verify::signature::{digest_under_security_level, key_under_security_level};
    let top = path.len().saturating_sub(1);
    let mut weak = path
        .iter()
        .enumerate()
        .filter(|(index, cert)| {
            let key = cert
                .with_parsed(|c| key_under_security_level(c.public_key().raw))
                .unwrap_or(false);
            key || (*index < top && digest_under_security_level(cert.der()))
        })
        .peekable();
    weak.peek().is_some()
        && weak.all(|(_, cert)| {
            errors.contains(&SslError::with_certificate(
                SslErrorKind::UnspecifiedError,
                cert.clone(),
            ))
        })
}

/// The most intermediates webpki follows (its `MAX_SUB_CA_COUNT`).
const WEBPKI_MAX_INTERMEDIATES: usize = 6;

/// Whether webpki would refuse the collector's `path` for what OpenSSL accepts and the
/// collector does not list (see [`explaining_kinds`]): a `CA:TRUE` leaf, more intermediates
/// than webpki follows. webpki stops at a time not in its DER form before it judges these,
/// so the time errors explain nothing then (round 37: ignoring them accepted such a chain,
/// which is `UnspecifiedError` on the leaf without them).
fn refused_by_webpki_alone(path: &[SslCertificate]) -> bool {
    let leaf_is_ca = path.first().is_some_and(|leaf| {
        leaf.with_parsed(|c| matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca))
            .unwrap_or(true)
    });
    leaf_is_ca || path.len().saturating_sub(2) > WEBPKI_MAX_INTERMEDIATES
}

impl std::fmt::Debug for ChainVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainVerifier")
            .field("anchors", &self.anchor_certs.len())
            .field("purpose", &self.purpose)
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

impl ChainVerifier {
    /// A verifier trusting `anchors`, for peers whose certificates must serve `purpose`.
    pub fn new(anchors: Vec<SslCertificate>, purpose: Purpose) -> ChainVerifier {
        let store = TrustStore::new(anchors);
        let (anchors, anchor_certs) = store
            .certificates()
            .iter()
            .filter_map(|c| {
                let der = CertificateDer::from(c.der());
                webpki::anchor_from_trusted_cert(&der)
                    .ok()
                    .map(|a| (a.to_owned(), AnchorCert::new(c.clone())))
            })
            .unzip();
        ChainVerifier {
            store,
            anchors,
            anchor_certs,
            purpose,
            depth: 0,
            pins: Vec::new(),
            ocsp: false,
            peers: PeerParses::default(),
        }
    }

    /// At most `depth` intermediate certificates between leaf and anchor (Qt's
    /// `peerVerifyDepth`; 0 = no limit of ours).
    pub fn with_max_depth(mut self, depth: u32) -> ChainVerifier {
        self.depth = depth;
        self
    }

    /// Accept only paths holding a certificate whose SubjectPublicKeyInfo has one of these
    /// SHA-256 digests (`CertificateRejected` on the leaf otherwise).
    pub fn with_pins(mut self, pins: Vec<[u8; 32]>) -> ChainVerifier {
        self.pins = pins;
        self
    }

    /// Require and check a stapled OCSP response (a client that enabled stapling).
    pub fn with_ocsp(mut self, on: bool) -> ChainVerifier {
        self.ocsp = on;
        self
    }

    /// The parses of peer certificates it keeps.
    #[cfg(test)]
    pub(super) fn peer_parses(&self) -> &PeerParses {
        &self.peers
    }

    /// The trust store.
    pub fn store(&self) -> &TrustStore {
        &self.store
    }

    /// Every error of `chain` (DER, as the peer sent it, leaf first) for `host` at
    /// `now_unix` (seconds since the epoch); empty = accepted.
    pub fn verify_der(&self, chain: &[&[u8]], host: Option<&str>, now_unix: i64) -> Vec<SslError> {
        let ders: Vec<CertificateDer<'_>> =
            chain.iter().map(|d| CertificateDer::from(*d)).collect();
        let Some((leaf, rest)) = ders.split_first() else {
            return vec![SslError::new(SslErrorKind::NoPeerCertificate)];
        };
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now_unix).unwrap_or(0),
        ));
        self.verify(leaf, rest, host, &[], now).errors
    }

    /// The whole verification of one handshake's chain.
    pub fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        host: Option<&str>,
        staple: &[u8],
        now: UnixTime,
    ) -> ChainReport {
        let now_unix = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let mut chain = Vec::with_capacity(intermediates.len() + 1);
        // Each certificate parsed once, as `SslCertificate::from_der` parses (and refuses),
        // or found with its parse among the last ones peers sent; the checks below read
        // these parses instead of parsing again.
        let mut held = Vec::with_capacity(intermediates.len() + 1);
        let mut unparsable = Vec::new();
        for der in std::iter::once(end_entity).chain(intermediates) {
            match self.peers.parse(der.as_ref()) {
                Some(parsed) => {
                    chain.push(parsed.cert().clone());
                    held.push(Some(parsed));
                }
                None => {
                    let cert = SslCertificate::from_unparsed_der(der.as_ref());
                    unparsable.push(cert.clone());
                    chain.push(cert);
                    held.push(None);
                }
            }
        }
        let parsed: Vec<Option<&X509Certificate<'_>>> = held
            .iter()
            .map(|p| p.as_deref().map(ParsedCertificate::x509))
            .collect();
        let input = VerifyInput {
            chain: &chain,
            store: &self.store,
            host,
            purpose: self.purpose,
            now_unix,
            max_depth: self.depth,
        };
        let (mut errors, path) = if unparsable.is_empty() {
            self.errors_of(end_entity, intermediates, &input, &parsed, now)
        } else {
            // Fail closed: a chain with a certificate we cannot read is never trusted; the
            // collector still reports what it can about the rest.
            let readable: Vec<SslCertificate> =
                chain.iter().filter(|c| !c.is_null()).cloned().collect();
            let leaf_readable = chain.first().is_some_and(|c| !c.is_null());
            let mut errors = Vec::new();
            let mut path = Vec::new();
            if leaf_readable {
                let collected = collect(&VerifyInput {
                    chain: &readable,
                    ..input
                });
                errors = collected.errors;
                path = collected.path;
            }
            for cert in &unparsable {
                // A time our parser cannot read is the error OpenSSL names for that field,
                // beside the certificate's own (round 37: only `UnspecifiedError` here, so
                // the lists of the backends differed).
                let fields = crate::verify::strict_der::validity_fields(cert.der());
                let (before, after) = fields.unwrap_or((true, true));
                let kinds = [
                    (!before).then_some(SslErrorKind::InvalidNotBeforeField),
                    (!after).then_some(SslErrorKind::InvalidNotAfterField),
                    Some(SslErrorKind::UnspecifiedError),
                ];
                for kind in kinds.into_iter().flatten() {
                    let error = SslError::with_certificate(kind, cert.clone());
                    if !errors.contains(&error) {
                        errors.push(error);
                    }
                }
            }
            (errors, path)
        };
        // Qt's blocklist, on the chain as sent and the path verified (round 35).
        for error in crate::verify::blocklist::errors(chain.iter().chain(&path)) {
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        for error in sent_extension_errors(&self.peers, &chain) {
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        // The name check after the chain's errors, ours included (Qt appends it after
        // OpenSSL's; the OpenSSL backend lists it so): round 37, an appended certificate's
        // error came after it here and before it there (a stable sort: each keeps its order).
        errors.sort_by_key(|e| e.error() == SslErrorKind::HostNameMismatch);
        let ocsp_responses = if self.ocsp {
            let (responses, ocsp_errors) = staple_errors(
                &chain,
                &path,
                &errors,
                |leaf| self.trusted_issuer_of(leaf),
                staple,
                now_unix,
            );
            for error in ocsp_errors {
                if !errors.contains(&error) {
                    errors.push(error);
                }
            }
            responses
        } else {
            Vec::new()
        };
        let pin_mismatch = pin_error(&self.pins, &path, chain.first());
        errors.extend(pin_mismatch.clone());
        // The sent certificates' dates from their parses; a path certificate not sent (the
        // anchor) parsed for its own. One expired already is among the errors, judged as
        // they are; only an expiry still to come is kept.
        let sent_until = parsed
            .iter()
            .flatten()
            .map(|x509| x509.validity().not_after.timestamp());
        let anchor_until = path
            .iter()
            .filter(|cert| !chain.contains(cert))
            .map(|cert| self.expiry_of_anchor(cert));
        let valid_until = sent_until
            .chain(anchor_until)
            .filter(|&until| until >= now_unix)
            .min();
        ChainReport {
            errors,
            chain,
            path,
            ocsp_responses,
            pin_mismatch,
            valid_until,
        }
    }

    /// The errors of a chain whose certificates all parse (`parsed`, by chain position),
    /// and the path they are about.
    fn errors_of(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        input: &VerifyInput<'_>,
        parsed: &[Option<&X509Certificate<'_>>],
        now: UnixTime,
    ) -> (Vec<SslError>, Vec<SslCertificate>) {
        let (Some(leaf), Some(Some(leaf_x509))) = (input.chain.first(), parsed.first()) else {
            return (
                vec![SslError::new(SslErrorKind::NoPeerCertificate)],
                Vec::new(),
            );
        };
        if self.store.contains(leaf) {
            // Trusted directly: the collector's path is the leaf alone (no signature to
            // check); its policy checks and the name decide.
            let collected = collect(input);
            return (collected.errors, collected.path);
        }
        // webpki reads the leaf once, for the path and for the name.
        let end_entity = webpki::EndEntityCert::try_from(end_entity).ok();
        let verdict = match &end_entity {
            Some(cert) => self.webpki_verdict(cert, intermediates, input, parsed, now),
            None => Verdict::Refused(webpki::Error::BadDer),
        };
        let name_ok = input
            .host
            .is_none_or(|host| self.name_matches(end_entity.as_ref(), leaf_x509, host));
        if let Verdict::Accepted(path) = &verdict {
            if name_ok {
                return (Vec::new(), path.clone());
            }
        }
        // Something is wrong: the collector lists every error, in OpenSSL's order.
        let collected = collect(input);
        let mut errors = collected.errors;
        let explained = match &verdict {
            Verdict::Accepted(_) => true,
            // A path webpki accepts that only our policy refuses: explained when every
            // error our policy found on it is listed.
            Verdict::PolicyRefused(lists) => lists
                .iter()
                .any(|list| list.iter().all(|error| errors.contains(error))),
            Verdict::Refused(error) => match &end_entity {
                Some(cert) => self.refusal_explained(
                    error,
                    cert,
                    intermediates,
                    &errors,
                    &collected.path,
                    now,
                ),
                None => false,
            },
        };
        let unspecified = SslError::with_certificate(SslErrorKind::UnspecifiedError, leaf.clone());
        if !explained && !errors.contains(&unspecified) {
            errors.push(unspecified);
        }
        if !name_ok
            && !errors
                .iter()
                .any(|e| e.error() == SslErrorKind::HostNameMismatch)
        {
            errors.push(SslError::with_certificate(
                SslErrorKind::HostNameMismatch,
                leaf.clone(),
            ));
        }
        let path = match verdict {
            Verdict::Accepted(path) => path,
            _ => collected.path,
        };
        (errors, path)
    }

    /// What webpki (with our policy checks inside its path search) says of the chain.
    fn webpki_verdict(
        &self,
        cert: &webpki::EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        input: &VerifyInput<'_>,
        parsed: &[Option<&X509Certificate<'_>>],
        now: UnixTime,
    ) -> Verdict {
        let accepted: RefCell<Option<Vec<SslCertificate>>> = RefCell::new(None);
        let refused: RefCell<Vec<Vec<SslError>>> = RefCell::new(Vec::new());
        let check = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
            match self.policy_on(path, input, parsed) {
                Ok(certs) => {
                    *accepted.borrow_mut() = Some(certs);
                    Ok(())
                }
                Err(errors) => {
                    refused.borrow_mut().extend(errors);
                    Err(webpki::Error::UnknownIssuer)
                }
            }
        };
        let result = cert.verify_for_usage(
            algorithms().all,
            &self.anchors,
            intermediates,
            now,
            self.usage(),
            None,
            Some(&check),
        );
        match (result, accepted.into_inner()) {
            (Ok(_), Some(path)) => Verdict::Accepted(path),
            (result, _) => {
                let refused = refused.into_inner();
                if !refused.is_empty() {
                    Verdict::PolicyRefused(refused)
                } else {
                    Verdict::Refused(result.err().unwrap_or(webpki::Error::UnknownIssuer))
                }
            }
        }
    }

    fn usage(&self) -> webpki::KeyUsage {
        match self.purpose {
            Purpose::ServerAuth => webpki::KeyUsage::server_auth(),
            Purpose::ClientAuth => webpki::KeyUsage::client_auth(),
        }
    }

    /// Whether webpki's refusal of the chain is one the listed `errors` account for, so
    /// that an application ignoring them takes no risk it was not told of. webpki names one
    /// reason only (the most specific of its candidate paths). A reason other than a date
    /// or a missing issuer is accounted for by a listed error of its kind. A date or a
    /// missing issuer stops webpki before it judges the rest of the path, and webpki may
    /// also name another reason on the way (a signature that fails with a trusted key of the
    /// issuer's name, a CA as the leaf of an untrusted chain): when the list shows a date or
    /// an issuer error, webpki is asked again, at a time every certificate of the
    /// collector's path below its top is valid at (a date listed), with the top of that
    /// path as an extra anchor (an issuer error listed), and whatever it finds then must be
    /// listed too. A collector path of the leaf alone leaves nothing above the leaf to
    /// judge: the collector's own checks of the leaf decide (a self-signed leaf, or one
    /// whose issuer is missing).
    fn refusal_explained(
        &self,
        error: &webpki::Error,
        cert: &webpki::EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        errors: &[SslError],
        path: &[SslCertificate],
        now: UnixTime,
    ) -> bool {
        let listed = |kinds: &[SslErrorKind]| errors.iter().any(|e| kinds.contains(&e.error()));
        if matches!(error, webpki::Error::UnsupportedCertVersion) {
            return old_versions_explained(errors, path);
        }
        if matches!(error, webpki::Error::BadDerTime) && bad_times_explained(errors, path) {
            return true;
        }
        let dates = listed(DATE_KINDS);
        let issuer = listed(ISSUER_KINDS);
        let kinds = explaining_kinds(error);
        if kinds.contains(&SslErrorKind::CertificateSignatureFailed)
            && security_level_explained(errors, path)
        {
            return true;
        }
        if kinds == [SslErrorKind::UnspecifiedError] {
            // webpki's catch-all does not say which certificate it is about; a listed
            // `UnspecifiedError` explains it only where webpki's refusal lies.
            if self.catch_all_explained(cert, intermediates, errors, path, now) {
                return true;
            }
        } else if listed(kinds) {
            return true;
        }
        if !dates && !issuer {
            return false;
        }
        let Some((top, below_top)) = path.split_last().filter(|(_, below)| !below.is_empty())
        else {
            // The leaf alone: the collector's own checks of it decide.
            return true;
        };
        let time = if dates {
            let start = below_top
                .iter()
                .map(SslCertificate::effective_date_unix)
                .max();
            let end = below_top.iter().map(SslCertificate::expiry_date_unix).min();
            match (start, end) {
                (Some(start), Some(end)) if start <= end => UnixTime::since_unix_epoch(
                    std::time::Duration::from_secs(u64::try_from(start).unwrap_or(0)),
                ),
                // No instant at which the whole path is valid (an intermediate re-issued
                // after the leaf expired, one that expired before the leaf was issued):
                // webpki cannot judge it past the dates at all, and the collector's
                // complete list decides, as OpenSSL's does. What webpki alone refuses
                // (see `explaining_kinds`) is nothing OpenSSL refuses.
                _ => return true,
            }
        } else {
            now
        };
        let mut anchors = self.anchors.clone();
        if issuer {
            let der = CertificateDer::from(top.der());
            match webpki::anchor_from_trusted_cert(&der) {
                Ok(anchor) => anchors.push(anchor.to_owned()),
                Err(_) => return false,
            }
        }
        match cert.verify_for_usage(
            algorithms().all,
            &anchors,
            intermediates,
            time,
            self.usage(),
            None,
            None,
        ) {
            Ok(_) => true,
            // Dates and issuers were granted; a refusal for them now is about another path.
            Err(
                webpki::Error::CertExpired { .. }
                | webpki::Error::CertNotValidYet { .. }
                | webpki::Error::UnknownIssuer,
            ) => false,
            Err(other) => {
                let kinds = explaining_kinds(&other);
                if kinds.contains(&SslErrorKind::CertificateSignatureFailed)
                    && security_level_explained(errors, path)
                {
                    return true;
                }
                if kinds == [SslErrorKind::UnspecifiedError] {
                    self.catch_all_explained(cert, intermediates, errors, path, time)
                } else {
                    listed(kinds)
                }
            }
        }
    }

    /// Whether a catch-all refusal of webpki's (name constraints, contents it cannot read
    /// or does not support) is explained by a listed `UnspecifiedError` where the refusal
    /// lies. webpki names no certificate, so it judges the chain again with each
    /// certificate of the collector's path, from the leaf's issuer up, as an extra anchor:
    /// - a certificate webpki cannot read, or cannot take as an anchor, must carry a
    ///   listed `UnspecifiedError` itself;
    /// - at the first anchor at which webpki refuses, a name-constraint refusal is about
    ///   one of the certificates below that anchor (our collector lists a violation on the
    ///   violating certificate), any other refusal about one of those judged as
    ///   intermediates for the first time (above the last anchor it accepted), and one of
    ///   them must carry a listed `UnspecifiedError`.
    ///
    /// An ignored error elsewhere (a constraint violation of an intermediate above or
    /// below, say) explains nothing. When webpki accepts with every certificate of the
    /// path as an anchor, the refusal is about the top or what lies above it, and any
    /// listed `UnspecifiedError` explains it.
    fn catch_all_explained(
        &self,
        cert: &webpki::EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        errors: &[SslError],
        path: &[SslCertificate],
        time: UnixTime,
    ) -> bool {
        let unspecified_on = |certs: &[SslCertificate]| {
            errors.iter().any(|e| {
                e.error() == SslErrorKind::UnspecifiedError
                    && e.certificate().is_some_and(|c| certs.contains(c))
            })
        };
        // A certificate webpki cannot read at all (an unsupported critical extension, an
        // encoding it refuses) is refused for itself, wherever it stands: it must carry a
        // listed error of its own, whatever else masks it in the steps below.
        for candidate in path.iter().skip(1) {
            let der = CertificateDer::from(candidate.der());
            if webpki::EndEntityCert::try_from(&der).is_err()
                && !unspecified_on(std::slice::from_ref(candidate))
            {
                return false;
            }
        }
        // The certificates below the last anchor webpki accepted are judged already.
        let mut judged = 0;
        for (index, candidate) in path.iter().enumerate().skip(1) {
            let der = CertificateDer::from(candidate.der());
            let Ok(anchor) = webpki::anchor_from_trusted_cert(&der) else {
                if unspecified_on(std::slice::from_ref(candidate)) {
                    continue;
                }
                return false;
            };
            let mut anchors = self.anchors.clone();
            anchors.push(anchor.to_owned());
            match cert.verify_for_usage(
                algorithms().all,
                &anchors,
                intermediates,
                time,
                self.usage(),
                None,
                None,
            ) {
                Ok(_) => judged = index,
                Err(
                    webpki::Error::NameConstraintViolation
                    | webpki::Error::InvalidNetworkMaskConstraint
                    | webpki::Error::MalformedNameConstraint
                    | webpki::Error::UnsupportedNameType,
                ) => return unspecified_on(path.get(..index).unwrap_or(path)),
                Err(_) => return unspecified_on(path.get(judged..index).unwrap_or(path)),
            }
        }
        errors
            .iter()
            .any(|e| e.error() == SslErrorKind::UnspecifiedError)
    }

    /// Our policy on a path webpki verified: the certificates of the path when every check
    /// holds (for one of the anchor certificates with the path's anchor key and name).
    /// Otherwise the errors our checks found on it, for each anchor certificate with its
    /// key and name (none when the path cannot be judged: too deep, or unreadable).
    fn policy_on(
        &self,
        path: &webpki::VerifiedPath<'_>,
        input: &VerifyInput<'_>,
        parsed: &[Option<&X509Certificate<'_>>],
    ) -> Result<Vec<SslCertificate>, Vec<Vec<SslError>>> {
        // The leaf and the intermediates are certificates the peer sent, parsed already:
        // found by DER, not parsed again for every candidate path.
        let mut sent = vec![0];
        for intermediate in path.intermediate_certificates() {
            let der = intermediate.der();
            match input.chain.iter().position(|c| c.der() == der.as_ref()) {
                Some(index) => sent.push(index),
                None => return Err(Vec::new()),
            }
        }
        let too_deep = usize::try_from(self.depth).map_or(true, |depth| {
            self.depth > 0 && sent.len() > depth.saturating_add(1)
        });
        if too_deep {
            return Err(Vec::new());
        }
        let Some(certs) = sent
            .iter()
            .map(|&index| input.chain.get(index))
            .collect::<Option<Vec<&SslCertificate>>>()
        else {
            return Err(Vec::new());
        };
        let anchor = path.anchor();
        let mut refused = Vec::new();
        for (_, anchor) in self
            .anchors
            .iter()
            .zip(&self.anchor_certs)
            .filter(|(a, _)| {
                a.subject == anchor.subject
                    && a.subject_public_key_info == anchor.subject_public_key_info
            })
        {
            let sent_parsed = sent
                .iter()
                .zip(&certs)
                .map(|(&index, cert)| (*cert, parsed.get(index).copied().flatten()));
            let top = (&anchor.cert, anchor.parsed().map(ParsedCertificate::x509));
            match verified_path_errors_parsed(sent_parsed.chain([top]), input) {
                Some(errors) if errors.is_empty() => {
                    let mut owned: Vec<SslCertificate> =
                        certs.iter().map(|c| (*c).clone()).collect();
                    owned.push(anchor.cert.clone());
                    return Ok(owned);
                }
                Some(errors) => refused.push(errors),
                None => {}
            }
        }
        Err(refused)
    }

    /// The name check: webpki's for a certificate with subject alternative names (and the
    /// collector's must agree), the common name only when there are none (RFC 6125).
    fn name_matches(
        &self,
        end_entity: Option<&webpki::EndEntityCert<'_>>,
        leaf: &X509Certificate<'_>,
        host: &str,
    ) -> bool {
        let ours = crate::verify::hostname::matches_host(leaf, host);
        if !matches!(leaf.subject_alternative_name(), Ok(Some(_))) {
            return ours;
        }
        // webpki's form of the name: an IPv6 literal without its brackets, as the host
        // rule reads `[::1]` (round 35: `SslCertificate::verify` refused it).
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let Ok(name) = ServerName::try_from(bare) else {
            return false;
        };
        match end_entity {
            Some(cert) => ours && cert.verify_is_valid_for_subject_name(&name).is_ok(),
            // webpki cannot read this leaf: the chain is refused for that already (its
            // path check fails too); the name is ours to judge, so the list does not claim
            // a mismatch that is not there.
            None => ours,
        }
    }

    fn trusted_issuer_of(&self, cert: &SslCertificate) -> Option<SslCertificate> {
        let issuer = cert.with_parsed(|p| crate::cert::name::canonical(p.issuer()))?;
        self.store.by_subject(&issuer).next().cloned()
    }
}
