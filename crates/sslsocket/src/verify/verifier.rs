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
//!   If webpki rejected the chain and the collector cannot say why (a check only webpki
//!   makes, such as name constraints), the leaf gets an `UnspecifiedError`: nothing webpki
//!   refuses is accepted unless an error explains it and the application ignored it.
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
use crate::verify::checks::ParsedCertificate;
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
                let error =
                    SslError::with_certificate(SslErrorKind::UnspecifiedError, cert.clone());
                if !errors.contains(&error) {
                    errors.push(error);
                }
            }
            (errors, path)
        };
        let ocsp_responses = if self.ocsp {
            let (responses, ocsp_errors) = staple_errors(
                &chain,
                &path,
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
        ChainReport {
            errors,
            chain,
            path,
            ocsp_responses,
            pin_mismatch,
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
        let webpki = end_entity
            .as_ref()
            .and_then(|cert| self.webpki_path(cert, intermediates, input, parsed, now));
        let name_ok = input
            .host
            .is_none_or(|host| self.name_matches(end_entity.as_ref(), leaf_x509, host));
        if let Some(path) = &webpki {
            if name_ok {
                return (Vec::new(), path.clone());
            }
        }
        // Something is wrong: the collector lists every error, in OpenSSL's order.
        let collected = collect(input);
        let mut errors = collected.errors;
        let path_explained = errors.iter().any(|e| {
            !matches!(
                e.error(),
                SslErrorKind::HostNameMismatch | SslErrorKind::CertificateRejected
            )
        });
        if webpki.is_none() && !path_explained {
            errors.push(SslError::with_certificate(
                SslErrorKind::UnspecifiedError,
                leaf.clone(),
            ));
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
        let path = match webpki {
            Some(path) => path,
            None => collected.path,
        };
        (errors, path)
    }

    /// The path webpki verified (leaf, intermediates, anchor certificate), when webpki
    /// accepts the chain on a path that also passes our policy checks. webpki calls the
    /// policy check for every candidate path and goes on searching when it fails.
    fn webpki_path(
        &self,
        cert: &webpki::EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        input: &VerifyInput<'_>,
        parsed: &[Option<&X509Certificate<'_>>],
        now: UnixTime,
    ) -> Option<Vec<SslCertificate>> {
        let usage = match self.purpose {
            Purpose::ServerAuth => webpki::KeyUsage::server_auth(),
            Purpose::ClientAuth => webpki::KeyUsage::client_auth(),
        };
        let accepted: RefCell<Option<Vec<SslCertificate>>> = RefCell::new(None);
        let check = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
            match self.policy_on(path, input, parsed) {
                Some(certs) => {
                    *accepted.borrow_mut() = Some(certs);
                    Ok(())
                }
                None => Err(webpki::Error::UnknownIssuer),
            }
        };
        cert.verify_for_usage(
            algorithms().all,
            &self.anchors,
            intermediates,
            now,
            usage,
            None,
            Some(&check),
        )
        .ok()?;
        accepted.into_inner()
    }

    /// Our policy on a path webpki verified: the certificates of the path when every check
    /// holds (for one of the anchor certificates with the path's anchor key and name).
    fn policy_on(
        &self,
        path: &webpki::VerifiedPath<'_>,
        input: &VerifyInput<'_>,
        parsed: &[Option<&X509Certificate<'_>>],
    ) -> Option<Vec<SslCertificate>> {
        // The leaf and the intermediates are certificates the peer sent, parsed already:
        // found by DER, not parsed again for every candidate path.
        let mut sent = vec![0];
        for intermediate in path.intermediate_certificates() {
            let der = intermediate.der();
            sent.push(input.chain.iter().position(|c| c.der() == der.as_ref())?);
        }
        if self.depth > 0 && sent.len() > usize::try_from(self.depth).ok()?.saturating_add(1) {
            return None;
        }
        let certs: Vec<&SslCertificate> = sent
            .iter()
            .map(|&index| input.chain.get(index))
            .collect::<Option<_>>()?;
        let anchor = path.anchor();
        self.anchors
            .iter()
            .zip(&self.anchor_certs)
            .filter(|(a, _)| {
                a.subject == anchor.subject
                    && a.subject_public_key_info == anchor.subject_public_key_info
            })
            .find_map(|(_, anchor)| {
                let sent_parsed = sent
                    .iter()
                    .zip(&certs)
                    .map(|(&index, cert)| (*cert, parsed.get(index).copied().flatten()));
                let top = (&anchor.cert, anchor.parsed().map(ParsedCertificate::x509));
                let errors = verified_path_errors_parsed(sent_parsed.chain([top]), input)?;
                errors.is_empty().then(|| {
                    let mut owned: Vec<SslCertificate> =
                        certs.iter().map(|c| (*c).clone()).collect();
                    owned.push(anchor.cert.clone());
                    owned
                })
            })
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
        let Ok(name) = ServerName::try_from(host) else {
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
        let issuer = cert.with_parsed(|p| p.issuer().as_raw().to_vec())?;
        self.store.by_subject(&issuer).next().cloned()
    }
}
