//! The verifier that collects: every error of the peer's chain, then one decision.
//!
//! rustls shares one verifier among every connection of a configuration, but errors and
//! decisions belong to one connection. The session therefore publishes its
//! [`VerifyShared`] in a thread-local for the duration of `process_new_packets` (the only
//! place rustls calls the verifier, synchronously); the verifier fails closed when it
//! finds none.
//!
//! Two gates: our collector (the complete list, Qt's error kinds) and webpki's own path
//! validation. A chain webpki rejects is never accepted unless the collector explains
//! why and the application ignored that; if webpki rejects and the collector found
//! nothing, an `UnspecifiedError` is added, so nothing unverified slips through.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cert::SslCertificate;
use crate::core::{Decision, VerifyShared};
use crate::crypto::algorithms;
use crate::enums::PeerVerifyMode;
use crate::ocsp::{check_staple, OcspResponse};
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::{collect_errors, Purpose, TrustStore, VerifyInput};

thread_local! {
    static CURRENT: RefCell<Option<Arc<VerifyShared>>> = const { RefCell::new(None) };
}

/// Runs `f` with `ctx` as the verification context of this thread.
pub(crate) fn with_context<R>(ctx: &Arc<VerifyShared>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.replace(Some(Arc::clone(ctx))));
    let result = f();
    CURRENT.with(|c| *c.borrow_mut() = previous);
    result
}

pub(crate) fn current() -> Option<Arc<VerifyShared>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The checks of one configuration: anchors (ours and webpki's form), depth, purpose.
pub(crate) struct Checks {
    ocsp: bool,
    pins: Vec<[u8; 32]>,
    store: TrustStore,
    anchors: Vec<rustls_pki_types::TrustAnchor<'static>>,
    /// For each anchor, whether its certificate is within its validity at build time is
    /// not enough (time moves): the certificate itself, to check its dates per handshake.
    anchor_certs: Vec<SslCertificate>,
    depth: u32,
    purpose: Purpose,
}

impl Checks {
    pub(crate) fn new(
        store: TrustStore,
        depth: u32,
        purpose: Purpose,
        pins: Vec<[u8; 32]>,
    ) -> Checks {
        let (anchors, anchor_certs) = store
            .certificates()
            .iter()
            .filter_map(|c| {
                let der = CertificateDer::from(c.der());
                webpki::anchor_from_trusted_cert(&der)
                    .ok()
                    .map(|a| (a.to_owned(), c.clone()))
            })
            .unzip();
        Checks {
            ocsp: false,
            pins,
            store,
            anchors,
            anchor_certs,
            depth,
            purpose,
        }
    }

    /// Asks for (and checks) a stapled OCSP response (client side).
    pub(crate) fn with_ocsp(mut self, on: bool) -> Checks {
        self.ocsp = on;
        self
    }

    /// The stapled response's errors, and the response, when stapling was asked for.
    fn check_ocsp(
        &self,
        chain: &[SslCertificate],
        staple: &[u8],
        now_unix: i64,
    ) -> (Vec<OcspResponse>, Vec<SslError>) {
        if !self.ocsp {
            return (Vec::new(), Vec::new());
        }
        if staple.is_empty() {
            return (
                Vec::new(),
                vec![SslError::new(SslErrorKind::OcspNoResponseFound)],
            );
        }
        let Some(leaf) = chain.first() else {
            return (
                Vec::new(),
                vec![SslError::new(SslErrorKind::OcspMalformedResponse)],
            );
        };
        let issuer = chain
            .get(1)
            .cloned()
            .or_else(|| self.trusted_issuer_of(leaf));
        let (response, errors) = check_staple(staple, leaf, issuer.as_ref(), now_unix);
        (response.into_iter().collect(), errors)
    }

    fn trusted_issuer_of(&self, cert: &SslCertificate) -> Option<SslCertificate> {
        let issuer = cert.with_parsed(|p| p.issuer().as_raw().to_vec())?;
        self.store
            .certificates()
            .iter()
            .find(|a| {
                a.with_parsed(|p| p.subject().as_raw() == issuer.as_slice())
                    .unwrap_or(false)
            })
            .cloned()
    }

    /// The complete error list for a chain, with webpki as the final gate.
    fn run(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        host: Option<&str>,
        staple: &[u8],
        now: UnixTime,
    ) -> (Vec<SslError>, Vec<SslCertificate>, Vec<OcspResponse>) {
        let mut chain = Vec::with_capacity(intermediates.len() + 1);
        let mut malformed = false;
        for der in std::iter::once(end_entity).chain(intermediates) {
            match SslCertificate::from_der(der.as_ref()) {
                Ok(cert) => chain.push(cert),
                Err(_) => malformed = true,
            }
        }
        let now_unix = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        // Fast path for the common case: webpki (the authoritative gate) accepts the chain
        // and the name, where its name check is the whole check (a SAN is present), and no
        // depth limit of ours applies: the collector would find nothing, so its second
        // round of signature checks is skipped. Every other case gets the full list.
        let webpki = if malformed {
            None
        } else {
            self.webpki_path(end_entity, intermediates, now)
        };
        let webpki_ok = webpki.is_some();
        let anchor_valid = webpki == Some(true);
        // Parsed once: whether webpki's name check is the whole check for this leaf.
        let has_san = chain
            .first()
            .is_some_and(SslCertificate::has_subject_alternative_name);
        let name_ok = webpki_name_ok(end_entity, host, has_san);
        if anchor_valid && (host.is_none() || has_san) && self.depth == 0 && name_ok {
            let (responses, ocsp_errors) = self.check_ocsp(&chain, staple, now_unix);
            let mut errors = ocsp_errors;
            self.check_pins(&chain, &mut errors);
            return (errors, chain, responses);
        }
        let mut errors = if malformed || chain.is_empty() {
            Vec::new()
        } else {
            collect_errors(&VerifyInput {
                chain: &chain,
                store: &self.store,
                host,
                purpose: self.purpose,
                now_unix,
                max_depth: self.depth,
            })
        };
        // A leaf that is itself a trust anchor is trusted directly (OpenSSL and Qt accept
        // a self-signed CA certificate used as a server certificate; webpki refuses it as
        // "CA used as end entity"), so for it only the name is checked again.
        let directly_trusted = chain.first().is_some_and(|leaf| self.store.contains(leaf));
        if errors.is_empty() && !((directly_trusted || webpki_ok) && name_ok) {
            let leaf = chain.first().cloned();
            errors.push(match leaf {
                Some(cert) if !malformed => {
                    SslError::with_certificate(SslErrorKind::UnspecifiedError, cert)
                }
                _ => SslError::new(SslErrorKind::UnspecifiedError),
            });
        }
        let (responses, ocsp_errors) = self.check_ocsp(&chain, staple, now_unix);
        for error in ocsp_errors {
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        self.check_pins(&chain, &mut errors);
        (errors, chain, responses)
    }

    /// Adds `CertificateRejected` on the leaf when pins are set and none matches.
    fn check_pins(&self, chain: &[SslCertificate], errors: &mut Vec<SslError>) {
        if !self.pins.is_empty() && !self.pinned(chain) {
            if let Some(leaf) = chain.first() {
                errors.push(SslError::with_certificate(
                    SslErrorKind::CertificateRejected,
                    leaf.clone(),
                ));
            }
        }
    }

    /// Whether a pinned key is in the chain as sent, or is the trusted issuer of its top.
    fn pinned(&self, chain: &[SslCertificate]) -> bool {
        if chain
            .iter()
            .any(|c| self.pins.contains(&c.public_key_sha256()))
        {
            return true;
        }
        let Some(top_issuer) = chain
            .last()
            .and_then(|c| c.with_parsed(|p| p.issuer().as_raw().to_vec()))
        else {
            return false;
        };
        self.store.certificates().iter().any(|anchor| {
            anchor
                .with_parsed(|p| p.subject().as_raw() == top_issuer.as_slice())
                .unwrap_or(false)
                && self.pins.contains(&anchor.public_key_sha256())
        })
    }

    /// webpki's verdict: `Some(anchor is within its own validity)` when it accepts the
    /// chain. (webpki does not look at an anchor's dates; OpenSSL and Qt report an expired
    /// root, so such a chain takes the collector's path.)
    fn webpki_path(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Option<bool> {
        let cert = webpki::EndEntityCert::try_from(end_entity).ok()?;
        let usage = match self.purpose {
            Purpose::ServerAuth => webpki::KeyUsage::server_auth(),
            Purpose::ClientAuth => webpki::KeyUsage::client_auth(),
        };
        let path = cert
            .verify_for_usage(
                algorithms().all,
                &self.anchors,
                intermediates,
                now,
                usage,
                None,
                None,
            )
            .ok()?;
        let anchor = path.anchor();
        let now_unix = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let valid = self
            .anchors
            .iter()
            .zip(&self.anchor_certs)
            .filter(|(a, _)| {
                a.subject == anchor.subject
                    && a.subject_public_key_info == anchor.subject_public_key_info
            })
            .any(|(_, c)| c.effective_date() <= now_unix && now_unix <= c.expiry_date());
        Some(valid)
    }
}

/// webpki's name check, where it applies (a certificate with a subject alternative name;
/// the CN fallback for certificates without one is the collector's).
fn webpki_name_ok(end_entity: &CertificateDer<'_>, host: Option<&str>, has_san: bool) -> bool {
    let Some(host) = host else { return true };
    if !has_san {
        return true;
    }
    let Ok(name) = ServerName::try_from(host) else {
        return false;
    };
    webpki::EndEntityCert::try_from(end_entity)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
}

/// One verifier type for both directions.
pub(crate) struct CollectingVerifier {
    checks: Arc<Checks>,
    mode: PeerVerifyMode,
    offer_client_auth: bool,
    client_auth_mandatory: bool,
    root_hints: Vec<DistinguishedName>,
}

impl fmt::Debug for CollectingVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectingVerifier")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl CollectingVerifier {
    pub(crate) fn new(checks: Arc<Checks>, mode: PeerVerifyMode) -> CollectingVerifier {
        CollectingVerifier {
            checks,
            mode,
            offer_client_auth: false,
            client_auth_mandatory: false,
            root_hints: Vec::new(),
        }
    }

    /// Server side: whether to ask for a client certificate, and require one.
    pub(crate) fn set_client_auth(
        &mut self,
        offer: bool,
        mandatory: bool,
        hints: &[SslCertificate],
    ) {
        self.offer_client_auth = offer;
        self.client_auth_mandatory = mandatory;
        self.root_hints = hints
            .iter()
            .filter_map(|c| {
                c.with_parsed(|p| DistinguishedName::from(p.subject().as_raw().to_vec()))
            })
            .collect();
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        host: Option<&str>,
        staple: &[u8],
        now: UnixTime,
    ) -> Result<(), Error> {
        let Some(ctx) = current() else {
            return Err(Error::General("verification context missing".into()));
        };
        let (errors, chain, responses) =
            self.checks
                .run(end_entity, intermediates, host, staple, now);
        ctx.lock().ocsp_responses = responses;
        match ctx.decide(errors.clone(), chain) {
            Decision::Proceed => Ok(()),
            Decision::Refuse => Err(Error::InvalidCertificate(refusal(&errors))),
        }
    }

    fn signature_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// The rustls error (and so the alert we send) for a refused chain, from its first error.
fn refusal(errors: &[SslError]) -> CertificateError {
    use SslErrorKind::*;
    match errors.first().map(SslError::error) {
        Some(CertificateExpired) => CertificateError::Expired,
        Some(CertificateNotYetValid) => CertificateError::NotValidYet,
        Some(HostNameMismatch) => CertificateError::NotValidForName,
        Some(CertificateSignatureFailed) => CertificateError::BadSignature,
        Some(InvalidPurpose) => CertificateError::InvalidPurpose,
        Some(CertificateRevoked) => CertificateError::Revoked,
        Some(OcspNoResponseFound | OcspStatusUnknown | CertificateStatusUnknown) => {
            CertificateError::UnknownRevocationStatus
        }
        Some(
            SelfSignedCertificate
            | SelfSignedCertificateInChain
            | UnableToGetLocalIssuerCertificate
            | UnableToGetIssuerCertificate
            | UnableToVerifyFirstCertificate
            | CertificateUntrusted
            | InvalidCaCertificate
            | PathLengthExceeded,
        ) => CertificateError::UnknownIssuer,
        _ => CertificateError::ApplicationVerificationFailure,
    }
}

fn name_of(server_name: &ServerName<'_>) -> String {
    match server_name {
        ServerName::DnsName(name) => name.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => String::new(),
    }
}

impl ServerCertVerifier for CollectingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let host = name_of(server_name);
        self.verify(end_entity, intermediates, Some(&host), ocsp_response, now)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signature_schemes()
    }
}

impl ClientCertVerifier for CollectingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.offer_client_auth
    }

    fn client_auth_mandatory(&self) -> bool {
        self.client_auth_mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.root_hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.verify(end_entity, intermediates, None, &[], now)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signature_schemes()
    }
}
