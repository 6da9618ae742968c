//! The checks of a stapled response, in the order and with the errors of Qt's
//! `TlsCryptographOpenSSL::checkOcspStatus`.

use der::oid::AssociatedOid;
use der::{Decode, Encode};
use x509_cert::ext::pkix::CrlReason;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse as RawResponse,
    OcspResponseStatus, ResponderId, SingleResponse,
};

use crate::cert::SslCertificate;
use crate::ocsp::raw::{self, SignedParts};
use crate::ocsp::{OcspCertificateStatus, OcspResponse, OcspRevocationReason};
use crate::verify::signature::is_signed_by;
use crate::{SslError, SslErrorKind};

/// How far the response's time window may be off from our clock, in seconds, each way:
/// Qt's one minute (`OCSP_check_validity(thisUpdate, nextUpdate, 60, -1)`).
const CLOCK_SKEW: i64 = 60;

/// At most this many delegated responder certificates from one response are tried (each
/// costs two signature checks); a response needs one.
const MAX_DELEGATES: usize = 8;

/// Whether `der` is an OCSP response a server can staple: one DER `OCSPResponse` and
/// nothing after it, and when its status is `successful`, a `BasicOCSPResponse` in it (RFC
/// 6960 4.2.1). A response with another status (`tryLater`, ...) has no body and is well
/// formed. Says what is wrong otherwise.
pub fn check_response_der(der: &[u8]) -> Result<(), String> {
    let outer = RawResponse::from_der(der).map_err(|e| format!("not a DER OCSP response ({e})"))?;
    if outer.response_status != OcspResponseStatus::Successful {
        return Ok(());
    }
    basic_of(&outer).map(|_| ())
}

/// The `BasicOCSPResponse` of a successful `outer`, parsed and sliced into its signed
/// parts; says what is wrong when there is none or it does not parse.
fn basic_of(outer: &RawResponse) -> Result<(BasicOcspResponse, SignedParts<'_>), String> {
    let bytes = outer
        .response_bytes
        .as_ref()
        .ok_or("a successful OCSP response without its response bytes")?;
    if bytes.response_type != BasicOcspResponse::OID {
        return Err(format!(
            "an OCSP response of type {}, not a basic response",
            bytes.response_type
        ));
    }
    let basic_der = bytes.response.as_bytes();
    match (
        BasicOcspResponse::from_der(basic_der),
        raw::split_basic(basic_der),
    ) {
        (Ok(basic), Some(signed)) => Ok((basic, signed)),
        _ => Err("an OCSP response whose basic response does not parse".into()),
    }
}

/// Checks a stapled OCSP response `der` for the peer's `leaf`, issued by `issuer`, at
/// `now_unix` (seconds since the Unix epoch).
///
/// Returns the response when it parsed and held exactly one `SingleResponse` (Qt's
/// `QOcspResponse`), and every error found, tied to certificates as Qt ties them:
/// - responder status other than `successful` → `OcspMalformedRequest`,
///   `OcspInternalError`, `OcspTryLater`, `OcspSigRequred` or `OcspUnauthorized`, no
///   certificate, no response;
/// - not DER, not a basic response → `OcspMalformedResponse`, no response;
/// - not signed by `issuer`'s key nor by a certificate of the response that `issuer` signed
///   with `id-kp-OCSPSigning` (valid now, no extension problem) →
///   `OcspResponseCannotBeTrusted` (and `staple_errors` adds it when the chain's errors
///   leave `issuer` itself untrusted);
/// - not exactly one `SingleResponse` → `OcspMalformedResponse`, no response (Qt stops
///   there);
/// - `CertID` not the leaf's → `OcspResponseCertIdUnknown` on the leaf;
/// - `thisUpdate` after now or `nextUpdate` before now (each with [`CLOCK_SKEW`], 60 s, of
///   slack, as Qt), or `nextUpdate` before `thisUpdate` → `OcspResponseExpired` on the
///   leaf;
/// - revoked → `CertificateRevoked` on the leaf; unknown → `OcspStatusUnknown` on the leaf.
///
/// Without an issuer (the peer sent only its leaf) the response can be neither trusted nor
/// matched, unless the leaf is self-signed: Qt then takes the leaf as its own issuer. An
/// `issuer` that did not issue `leaf` (names differ or its key does not verify the leaf's
/// signature) is treated as no issuer, so a wrong chain cannot vouch for a response.
pub(crate) fn check_staple(
    der: &[u8],
    leaf: &SslCertificate,
    issuer: Option<&SslCertificate>,
    now_unix: i64,
) -> (Option<OcspResponse>, Vec<SslError>) {
    let outer = match RawResponse::from_der(der) {
        Ok(outer) => outer,
        Err(_) => return malformed(Vec::new()),
    };
    if let Some(kind) = status_error(outer.response_status) {
        return (None, vec![SslError::new(kind)]);
    }
    let Ok((basic, signed)) = basic_of(&outer) else {
        return malformed(Vec::new());
    };

    let mut errors = Vec::new();
    let issuer = issuer
        .or_else(|| leaf.is_self_signed().then_some(leaf))
        .and_then(CertParts::new)
        .filter(|issuer| issuer.issued(leaf));
    let responder = issuer.as_ref().and_then(|issuer| {
        find_signer(
            &signed,
            &basic.tbs_response_data.responder_id,
            issuer,
            now_unix,
        )
    });
    if responder.is_none() {
        errors.push(SslError::new(SslErrorKind::OcspResponseCannotBeTrusted));
    }

    let [single] = basic.tbs_response_data.responses.as_slice() else {
        return malformed(errors);
    };
    let matched = issuer
        .as_ref()
        .is_some_and(|issuer| cert_id_matches(&single.cert_id, issuer, leaf));
    if !matched {
        errors.push(on_leaf(SslErrorKind::OcspResponseCertIdUnknown, leaf));
    }
    let in_window = in_time_window(single, now_unix);
    if !in_window {
        errors.push(on_leaf(SslErrorKind::OcspResponseExpired, leaf));
    }
    // How long it stays so: its nextUpdate (with the skew the check allows), and the
    // delegated responder's notAfter (the issuer's own is the path's).
    let fresh_until = if in_window {
        let next = single
            .next_update
            .as_ref()
            .map(|next| unix_seconds(next).saturating_add(CLOCK_SKEW));
        let signer = responder
            .as_ref()
            .and_then(|cert| cert.with_parsed(|c| c.validity().not_after.timestamp()));
        next.into_iter().chain(signer).min()
    } else {
        None
    };
    let (status, reason) = match &single.cert_status {
        CertStatus::Good(_) => (OcspCertificateStatus::Good, OcspRevocationReason::None),
        CertStatus::Revoked(info) => {
            errors.push(on_leaf(SslErrorKind::CertificateRevoked, leaf));
            (
                OcspCertificateStatus::Revoked,
                revocation_reason(info.revocation_reason),
            )
        }
        CertStatus::Unknown(_) => {
            errors.push(on_leaf(SslErrorKind::OcspStatusUnknown, leaf));
            (OcspCertificateStatus::Unknown, OcspRevocationReason::None)
        }
    };
    let response = OcspResponse {
        status,
        reason,
        responder: responder.filter(|_| matched),
        subject: Some(leaf.clone()),
        fresh_until,
    };
    (Some(response), errors)
}

/// What a check needs to know of one certificate, read once.
struct CertParts {
    cert: SslCertificate,
    /// The subject Name, whole DER.
    subject: Vec<u8>,
    /// The SubjectPublicKeyInfo, whole DER.
    spki: Vec<u8>,
    /// The subjectPublicKey BIT STRING's bytes.
    key: Vec<u8>,
}

impl CertParts {
    fn new(cert: &SslCertificate) -> Option<CertParts> {
        let (subject, spki) =
            cert.with_parsed(|c| (c.subject().as_raw().to_vec(), c.public_key().raw.to_vec()))?;
        let key = raw::spki_parts(&spki)?.1.to_vec();
        Some(CertParts {
            cert: cert.clone(),
            subject,
            spki,
            key,
        })
    }

    /// Whether `cert` names this certificate as its issuer and carries its signature.
    fn issued(&self, cert: &SslCertificate) -> bool {
        cert.with_parsed(|c| c.issuer().as_raw() == self.subject.as_slice())
            .unwrap_or(false)
            && is_signed_by(cert.der(), &self.spki)
    }

    /// Whether the response's `ResponderID` names this certificate (RFC 6960 4.2.2.3: by
    /// subject name, or by the SHA-1 of the public key).
    fn is_responder(&self, id: &ResponderId) -> bool {
        match id {
            ResponderId::ByName(name) => name.to_der().is_ok_and(|name| name == self.subject),
            ResponderId::ByKey(hash) => hash.as_bytes() == raw::sha1(&self.key).as_slice(),
        }
    }

    /// Whether this key signed the response's `tbsResponseData`.
    fn signed(&self, signed: &SignedParts<'_>) -> bool {
        raw::verify_signature(
            &self.spki,
            signed.signature_algorithm,
            signed.tbs,
            signed.signature,
        )
    }
}

/// The certificate that signed the response and may: the issuer itself, or a delegated
/// responder from the response's `certs` (RFC 6960 4.2.2.2: issued directly by the issuer,
/// with `id-kp-OCSPSigning`; and, as OpenSSL's chain check requires, valid now). Either way
/// the `ResponderID` must name it, which is how OpenSSL finds the signer.
fn find_signer(
    signed: &SignedParts<'_>,
    responder_id: &ResponderId,
    issuer: &CertParts,
    now_unix: i64,
) -> Option<SslCertificate> {
    if issuer.is_responder(responder_id) && issuer.signed(signed) {
        return Some(issuer.cert.clone());
    }
    signed
        .certs
        .iter()
        .filter_map(|der| SslCertificate::from_der(der).ok())
        .filter_map(|cert| CertParts::new(&cert))
        .filter(|delegate| delegate.is_responder(responder_id))
        .take(MAX_DELEGATES)
        .find(|delegate| {
            is_ocsp_signer_at(&delegate.cert, now_unix)
                && issuer.issued(&delegate.cert)
                && delegate.signed(signed)
        })
        .map(|delegate| delegate.cert)
}

/// Whether `cert` has the extended key usage `id-kp-OCSPSigning`, is within its validity
/// period at `now_unix`, and has no extension problem (a critical extension OpenSSL does not
/// handle, a malformed one we rely on: OpenSSL verifies a delegated responder as any
/// certificate, so what we cannot decide makes it no responder).
fn is_ocsp_signer_at(cert: &SslCertificate, now_unix: i64) -> bool {
    if crate::verify::unusable_certificate(cert) {
        return false;
    }
    cert.with_parsed(|c| {
        let validity = c.validity();
        let in_period = validity.not_before.timestamp() <= now_unix
            && now_unix <= validity.not_after.timestamp();
        let ocsp_signing = matches!(
            c.extended_key_usage(),
            Ok(Some(eku)) if eku.value.ocsp_signing
        );
        in_period && ocsp_signing
    })
    .unwrap_or(false)
}

/// Whether `id` names `leaf` as issued by `issuer`: the hashes of the issuer's subject name
/// and public key, and the leaf's serial number (RFC 6960 4.1.1).
fn cert_id_matches(id: &CertId, issuer: &CertParts, leaf: &SslCertificate) -> bool {
    let Some(algorithm) = raw::cert_id_digest(&id.hash_algorithm.oid.to_string()) else {
        return false;
    };
    let hash = |data: &[u8]| aws_lc_rs::digest::digest(algorithm, data);
    let serial_matches = leaf
        .with_parsed(|c| c.raw_serial() == id.serial_number.as_bytes())
        .unwrap_or(false);
    serial_matches
        && id.issuer_name_hash.as_bytes() == hash(&issuer.subject).as_ref()
        && id.issuer_key_hash.as_bytes() == hash(&issuer.key).as_ref()
}

/// OpenSSL's `OCSP_check_validity`: `thisUpdate` not in the future, `nextUpdate` (when
/// present) not in the past and not before `thisUpdate`, with [`CLOCK_SKEW`] of slack.
fn in_time_window(single: &SingleResponse, now_unix: i64) -> bool {
    let this_update = unix_seconds(&single.this_update);
    if this_update > now_unix.saturating_add(CLOCK_SKEW) {
        return false;
    }
    match &single.next_update {
        None => true,
        Some(next) => {
            let next_update = unix_seconds(next);
            next_update >= this_update && now_unix.saturating_sub(CLOCK_SKEW) <= next_update
        }
    }
}

/// A GeneralizedTime as seconds since the Unix epoch (der holds years 1970 to 9999, which
/// always fit).
fn unix_seconds(time: &OcspGeneralizedTime) -> i64 {
    i64::try_from(time.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// Qt's error for a response status other than `successful` (these responses are not
/// signed, so there is nothing more to check).
fn status_error(status: OcspResponseStatus) -> Option<SslErrorKind> {
    match status {
        OcspResponseStatus::Successful => None,
        OcspResponseStatus::MalformedRequest => Some(SslErrorKind::OcspMalformedRequest),
        OcspResponseStatus::InternalError => Some(SslErrorKind::OcspInternalError),
        OcspResponseStatus::TryLater => Some(SslErrorKind::OcspTryLater),
        OcspResponseStatus::SigRequired => Some(SslErrorKind::OcspSigRequred),
        OcspResponseStatus::Unauthorized => Some(SslErrorKind::OcspUnauthorized),
    }
}

/// Qt's `qt_OCSP_revocation_reason`: reasons Qt has no name for become `None`.
fn revocation_reason(reason: Option<CrlReason>) -> OcspRevocationReason {
    match reason {
        None | Some(CrlReason::PrivilegeWithdrawn) | Some(CrlReason::AaCompromise) => {
            OcspRevocationReason::None
        }
        Some(CrlReason::Unspecified) => OcspRevocationReason::Unspecified,
        Some(CrlReason::KeyCompromise) => OcspRevocationReason::KeyCompromise,
        Some(CrlReason::CaCompromise) => OcspRevocationReason::CACompromise,
        Some(CrlReason::AffiliationChanged) => OcspRevocationReason::AffiliationChanged,
        Some(CrlReason::Superseded) => OcspRevocationReason::Superseded,
        Some(CrlReason::CessationOfOperation) => OcspRevocationReason::CessationOfOperation,
        Some(CrlReason::CertificateHold) => OcspRevocationReason::CertificateHold,
        Some(CrlReason::RemoveFromCRL) => OcspRevocationReason::RemoveFromCRL,
    }
}

/// `errors` followed by `OcspMalformedResponse`, and no response.
fn malformed(mut errors: Vec<SslError>) -> (Option<OcspResponse>, Vec<SslError>) {
    errors.push(SslError::new(SslErrorKind::OcspMalformedResponse));
    (None, errors)
}

/// An error of `kind` tied to the leaf.
fn on_leaf(kind: SslErrorKind, leaf: &SslCertificate) -> SslError {
    SslError::with_certificate(kind, leaf.clone())
}
