//! The verifier that collects, one connection at a time.
//!
//! rustls calls its verifier with no way back to the connection, so a connection claims a
//! verifier instance of its own for its handshake (on a cheap clone of the cached
//! configuration): the shared [`ChainVerifier`] finds the errors, the handshake's own
//! [`VerifyPolicy`] judges them, and the [`Verification`] goes into the connection's
//! [`HandshakeRecord`], which the session hands out. No thread-local, no state shared
//! between two handshakes. (A server that asks for no client certificate is never asked
//! to verify: its connections share one unclaimed instance, which would refuse.)
//!
//! Why "claims" and not "makes": a rustls client resumes a session only with the very
//! verifier instance that verified it (`compatible_config` compares the `Arc`s). So the
//! session store keeps, beside each session, the instance that verified it, and a new
//! connection that may resume that session claims that instance if no other handshake
//! holds it (otherwise it makes a new one and does a full handshake). A server keeps the
//! instances it built, each in the configuration rustls's builder made around it (the only
//! way rustls sets a server's verifier), and later handshakes claim them in turn. A claimed
//! instance verifies and records for its claimant only; an unclaimed one refuses (fail
//! closed).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cert::SslCertificate;
use crate::crypto::algorithms;
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::record::HandshakeRecord;
use crate::verify::{ChainVerifier, Decision, Verification, VerifyPolicy};

/// Server side: whether client certificates are asked for, required, and the CA names
/// sent as hints. Built once per configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientAuth {
    pub(crate) offer: bool,
    pub(crate) mandatory: bool,
    pub(crate) root_hints: Vec<DistinguishedName>,
}

impl ClientAuth {
    pub(crate) fn new(offer: bool, mandatory: bool, hints: &[SslCertificate]) -> ClientAuth {
        let root_hints: Vec<DistinguishedName> = hints
            .iter()
            .filter_map(|c| {
                c.with_parsed(|p| DistinguishedName::from(p.subject().as_raw().to_vec()))
            })
            .collect();
        let size: usize = root_hints.iter().map(|n| n.as_ref().len() + 2).sum();
        ClientAuth {
            offer,
            mandatory,
            // Too many names for a CertificateRequest: none are sent (see
            // `backend::CA_NAMES_LIMIT`); the client picks its certificate without hints.
            root_hints: if size > crate::backend::CA_NAMES_LIMIT {
                Vec::new()
            } else {
                root_hints
            },
        }
    }
}

/// The handshake a verifier instance works for.
#[derive(Clone)]
struct Claim {
    policy: VerifyPolicy,
    record: Arc<HandshakeRecord>,
}

/// A verifier instance (both directions), claimed by one handshake at a time.
pub(crate) struct ConnectionVerifier {
    chain: Arc<ChainVerifier>,
    client_auth: Arc<ClientAuth>,
    claim: Mutex<Option<Claim>>,
}

impl fmt::Debug for ConnectionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionVerifier").finish_non_exhaustive()
    }
}

impl ConnectionVerifier {
    pub(crate) fn new(
        chain: Arc<ChainVerifier>,
        client_auth: Arc<ClientAuth>,
    ) -> ConnectionVerifier {
        ConnectionVerifier {
            chain,
            client_auth,
            claim: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Claim>> {
        match self.claim.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Claims this instance for one handshake; false when another handshake holds it.
    pub(crate) fn claim(&self, policy: &VerifyPolicy, record: &Arc<HandshakeRecord>) -> bool {
        let mut claim = self.lock();
        if claim.is_some() {
            return false;
        }
        *claim = Some(Claim {
            policy: policy.clone(),
            record: Arc::clone(record),
        });
        true
    }

    /// Replaces the policy of the handshake `record` belongs to, if it holds this instance.
    pub(crate) fn update_policy(&self, record: &Arc<HandshakeRecord>, policy: VerifyPolicy) {
        if let Some(claim) = self
            .lock()
            .as_mut()
            .filter(|c| Arc::ptr_eq(&c.record, record))
        {
            claim.policy = policy;
        }
    }

    /// Gives the instance back (the handshake is over, or the connection gone).
    pub(crate) fn release(&self, record: &Arc<HandshakeRecord>) {
        let mut claim = self.lock();
        if claim
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.record, record))
        {
            *claim = None;
        }
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        host: Option<&str>,
        staple: &[u8],
        now: UnixTime,
    ) -> Result<(), Error> {
        let Some(Claim { policy, record }) = self.lock().clone() else {
            return Err(Error::General("no handshake claimed this verifier".into()));
        };
        let report = self
            .chain
            .verify(end_entity, intermediates, host, staple, now);
        let judgement = policy.judge_pinned(&report.errors, report.pin_mismatch.clone());
        let decision = judgement.decision;
        let refusal = match &report.pin_mismatch {
            Some(pin) => refusal(std::slice::from_ref(pin)),
            None => refusal(&report.errors),
        };
        record.record(Verification {
            errors: report.errors,
            chain: report.chain,
            ocsp_responses: report.ocsp_responses,
            judgement,
            valid_until: report.valid_until,
        });
        match decision {
            // A pause goes on inside rustls; the core holds every byte back.
            Decision::Proceed | Decision::Pause => Ok(()),
            Decision::Refuse => Err(Error::InvalidCertificate(refusal)),
        }
    }
}

/// The rustls error (and so the alert we send) for a refused chain, from its first error.
fn refusal(errors: &[SslError]) -> CertificateError {
    use SslErrorKind::*;
    match errors.first().map(SslError::error) {
        Some(CertificateExpired) => CertificateError::Expired,
        // bad_certificate, OpenSSL's alert for X509_V_ERR_CERT_NOT_YET_VALID (what Qt and
        // the OpenSSL backend send; round 37: rustls's `NotValidYet` sent
        // certificate_expired).
        Some(CertificateNotYetValid) => CertificateError::BadEncoding,
        // bad_certificate too: OpenSSL's alert for X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD
        // and ..._NOT_AFTER_FIELD (round 37: listed on rustls since this round, they sent
        // access_denied).
        Some(InvalidNotBeforeField | InvalidNotAfterField) => CertificateError::BadEncoding,
        Some(HostNameMismatch) => CertificateError::NotValidForName,
        Some(CertificateSignatureFailed) => CertificateError::BadSignature,
        Some(InvalidPurpose) => CertificateError::InvalidPurpose,
        // What the stapled OCSP response said (revoked, unknown, missing, unusable):
        // bad_certificate_status_response, as RFC 6066 §8 asks and the OpenSSL backend
        // sends (round 35: rustls sent certificate_revoked, and unknown_ca for a missing
        // staple of a chain that verified).
        Some(kind) if kind.is_staple_status() => CertificateError::InvalidOcspResponse,
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

/// The handshake signature checks both traits ask for: the provider's, unchanged.
struct Signatures;

impl Signatures {
    fn tls12(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms())
    }

    fn tls13(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms())
    }

    fn schemes() -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

impl ServerCertVerifier for ConnectionVerifier {
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
        Signatures::tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Signatures::tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Signatures::schemes()
    }
}

impl ClientCertVerifier for ConnectionVerifier {
    fn offer_client_auth(&self) -> bool {
        self.client_auth.offer
    }

    fn client_auth_mandatory(&self) -> bool {
        self.client_auth.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.client_auth.root_hints
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
        Signatures::tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Signatures::tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Signatures::schemes()
    }
}
