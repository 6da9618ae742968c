//! Stapled responses made by `openssl ocsp` at test time, checked by `check_staple`.

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use x509_ocsp::{OcspResponse as RawResponse, OcspResponseStatus, ResponseBytes};

use super::raw::split_basic;
use super::test_pki::{good, now, revoked, Pki, TestResult, EC, ONE_DAY, RSA};
use super::*;
use crate::{SslError, SslErrorKind};

fn on(kind: SslErrorKind, cert: &SslCertificate) -> SslError {
    SslError::with_certificate(kind, cert.clone())
}

fn bare(kind: SslErrorKind) -> SslError {
    SslError::new(kind)
}

#[test]
fn good_response_signed_by_the_issuer_has_no_errors() -> TestResult {
    let pki = Pki::new(EC)?;
    let der = pki.respond(&[good("1001", "leaf")], "ca", &["leaf"], ONE_DAY)?;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(errors, Vec::<SslError>::new());
    let response = response.ok_or("no response")?;
    assert_eq!(response.certificate_status(), OcspCertificateStatus::Good);
    assert_eq!(response.revocation_reason(), OcspRevocationReason::None);
    assert_eq!(response.responder(), Some(pki.ca.clone()));
    assert_eq!(response.subject(), Some(pki.leaf.clone()));
    Ok(())
}

#[test]
fn good_response_signed_by_a_delegated_responder_names_the_responder() -> TestResult {
    let pki = Pki::new(EC)?;
    let der = pki.respond(&[good("1001", "leaf")], "responder", &["leaf"], ONE_DAY)?;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(errors, Vec::<SslError>::new());
    let response = response.ok_or("no response")?;
    assert_eq!(response.certificate_status(), OcspCertificateStatus::Good);
    assert_eq!(response.responder(), Some(pki.responder.clone()));
    assert_eq!(response.subject(), Some(pki.leaf.clone()));
    Ok(())
}

#[test]
fn responder_by_key_and_sha256_cert_id_are_understood() -> TestResult {
    let pki = Pki::new(EC)?;
    let options = ["-resp_key_id", "-sha256", "-ndays", "1"];
    for signer in ["ca", "responder"] {
        let der = pki.respond(&[good("1001", "leaf")], signer, &["leaf"], &options)?;
        let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
        assert_eq!(errors, Vec::<SslError>::new(), "signed by {signer}");
        assert_eq!(
            response.map(|r| r.certificate_status()),
            Some(OcspCertificateStatus::Good)
        );
    }
    Ok(())
}

#[test]
fn rsa_keys_are_checked_like_ec_keys() -> TestResult {
    let pki = Pki::new(RSA)?;
    for signer in ["ca", "responder"] {
        let der = pki.respond(&[good("1001", "leaf")], signer, &["leaf"], ONE_DAY)?;
        let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
        assert_eq!(errors, Vec::<SslError>::new(), "signed by {signer}");
        let expected = if signer == "ca" {
            &pki.ca
        } else {
            &pki.responder
        };
        assert_eq!(
            response.and_then(|r| r.responder()).as_ref(),
            Some(expected)
        );
        let options = ["-badsig", "-ndays", "1"];
        let der = pki.respond(&[good("1001", "leaf")], signer, &["leaf"], &options)?;
        let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
        assert_eq!(
            errors,
            vec![bare(SslErrorKind::OcspResponseCannotBeTrusted)]
        );
    }
    Ok(())
}

#[test]
fn response_without_next_update_never_expires() -> TestResult {
    let pki = Pki::new(EC)?;
    let der = pki.respond(&[good("1001", "leaf")], "ca", &["leaf"], &[])?;
    let in_a_year = now()? + 365 * 24 * 3600;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), in_a_year);
    assert_eq!(errors, Vec::<SslError>::new());
    assert!(response.is_some());
    Ok(())
}

#[test]
fn revoked_certificate_is_reported_on_the_leaf_with_its_reason() -> TestResult {
    let pki = Pki::new(EC)?;
    let index = [revoked("1001", "leaf", "keyCompromise")];
    let der = pki.respond(&index, "responder", &["leaf"], ONE_DAY)?;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(
        errors,
        vec![on(SslErrorKind::CertificateRevoked, &pki.leaf)]
    );
    let response = response.ok_or("no response")?;
    assert_eq!(
        response.certificate_status(),
        OcspCertificateStatus::Revoked
    );
    assert_eq!(
        response.revocation_reason(),
        OcspRevocationReason::KeyCompromise
    );
    assert_eq!(response.responder(), Some(pki.responder.clone()));
    Ok(())
}

#[test]
fn revocation_reasons_map_to_qt_names() -> TestResult {
    let pki = Pki::new(EC)?;
    let cases = [
        ("", OcspRevocationReason::None),
        ("unspecified", OcspRevocationReason::Unspecified),
        ("CACompromise", OcspRevocationReason::CACompromise),
        (
            "affiliationChanged",
            OcspRevocationReason::AffiliationChanged,
        ),
        ("superseded", OcspRevocationReason::Superseded),
        (
            "cessationOfOperation",
            OcspRevocationReason::CessationOfOperation,
        ),
        (
            "certificateHold,holdInstructionReject",
            OcspRevocationReason::CertificateHold,
        ),
        ("removeFromCRL", OcspRevocationReason::RemoveFromCRL),
    ];
    for (reason, expected) in cases {
        let der = pki.respond(&[revoked("1001", "leaf", reason)], "ca", &["leaf"], ONE_DAY)?;
        let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
        assert_eq!(
            errors,
            vec![on(SslErrorKind::CertificateRevoked, &pki.leaf)]
        );
        assert_eq!(
            response.map(|r| r.revocation_reason()),
            Some(expected),
            "reason {reason:?}"
        );
    }
    Ok(())
}

#[test]
fn certificate_missing_from_the_responder_database_has_unknown_status() -> TestResult {
    let pki = Pki::new(EC)?;
    let der = pki.respond(&[good("1002", "other")], "ca", &["leaf"], ONE_DAY)?;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(errors, vec![on(SslErrorKind::OcspStatusUnknown, &pki.leaf)]);
    let response = response.ok_or("no response")?;
    assert_eq!(
        response.certificate_status(),
        OcspCertificateStatus::Unknown
    );
    assert_eq!(response.revocation_reason(), OcspRevocationReason::None);
    Ok(())
}

#[test]
fn response_past_its_next_update_or_before_its_this_update_is_expired() -> TestResult {
    let pki = Pki::new(EC)?;
    // Signed by the issuer: a delegated responder would not be valid yet a day ago.
    let der = pki.respond(&[good("1001", "leaf")], "ca", &["leaf"], ONE_DAY)?;
    let expired = vec![on(SslErrorKind::OcspResponseExpired, &pki.leaf)];
    let day = 24 * 3600;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()? + 10 * day);
    assert_eq!(errors, expired);
    // The response still says what it says.
    assert_eq!(
        response.map(|r| r.certificate_status()),
        Some(OcspCertificateStatus::Good)
    );
    let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()? - day);
    assert_eq!(errors, expired);
    // Within the allowed clock skew on either side.
    let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()? - 60);
    assert_eq!(errors, Vec::<SslError>::new());
    let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()? + day + 60);
    assert_eq!(errors, Vec::<SslError>::new());
    Ok(())
}

#[test]
fn response_about_another_certificate_has_an_unknown_cert_id() -> TestResult {
    let pki = Pki::new(EC)?;
    let index = [good("1001", "leaf"), good("1002", "other")];
    let der = pki.respond(&index, "responder", &["other"], ONE_DAY)?;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(
        errors,
        vec![on(SslErrorKind::OcspResponseCertIdUnknown, &pki.leaf)]
    );
    let response = response.ok_or("no response")?;
    assert_eq!(response.responder(), None);
    assert_eq!(response.subject(), Some(pki.leaf.clone()));
    // The same response is fine for the certificate it is about.
    let (_, errors) = check_staple(&der, &pki.other, Some(&pki.ca), now()?);
    assert_eq!(errors, Vec::<SslError>::new());
    Ok(())
}

#[test]
fn response_signed_by_a_responder_of_another_ca_cannot_be_trusted() -> TestResult {
    let pki = Pki::new(EC)?;
    let der = pki.respond(&[good("1001", "leaf")], "stranger", &["leaf"], ONE_DAY)?;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(
        errors,
        vec![bare(SslErrorKind::OcspResponseCannotBeTrusted)]
    );
    let response = response.ok_or("no response")?;
    assert_eq!(response.certificate_status(), OcspCertificateStatus::Good);
    assert_eq!(response.responder(), None);
    Ok(())
}

#[test]
fn responder_without_ocsp_signing_purpose_cannot_be_trusted() -> TestResult {
    let pki = Pki::new(EC)?;
    let der = pki.respond(&[good("1001", "leaf")], "no_eku", &["leaf"], ONE_DAY)?;
    let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(
        errors,
        vec![bare(SslErrorKind::OcspResponseCannotBeTrusted)]
    );
    Ok(())
}

#[test]
fn delegated_responder_missing_from_the_response_cannot_be_trusted() -> TestResult {
    let pki = Pki::new(EC)?;
    let options = ["-resp_no_certs", "-ndays", "1"];
    let der = pki.respond(&[good("1001", "leaf")], "responder", &["leaf"], &options)?;
    let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(
        errors,
        vec![bare(SslErrorKind::OcspResponseCannotBeTrusted)]
    );
    // Signed by the issuer, the response needs no certificates.
    let der = pki.respond(&[good("1001", "leaf")], "ca", &["leaf"], &options)?;
    let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(errors, Vec::<SslError>::new());
    Ok(())
}

#[test]
fn expired_delegated_responder_cannot_be_trusted() -> TestResult {
    let pki = Pki::new(EC)?;
    // No nextUpdate, so only the responder's own validity (30 days) runs out.
    let der = pki.respond(&[good("1001", "leaf")], "responder", &["leaf"], &[])?;
    let later = now()? + 40 * 24 * 3600;
    let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), later);
    assert_eq!(
        errors,
        vec![bare(SslErrorKind::OcspResponseCannotBeTrusted)]
    );
    Ok(())
}

#[test]
fn bad_signature_cannot_be_trusted() -> TestResult {
    let pki = Pki::new(EC)?;
    for signer in ["ca", "responder"] {
        let options = ["-badsig", "-ndays", "1"];
        let der = pki.respond(&[good("1001", "leaf")], signer, &["leaf"], &options)?;
        let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
        assert_eq!(
            errors,
            vec![bare(SslErrorKind::OcspResponseCannotBeTrusted)],
            "signed by {signer}"
        );
    }
    Ok(())
}

#[test]
fn missing_or_wrong_issuer_leaves_the_response_untrusted_and_unmatched() -> TestResult {
    let pki = Pki::new(EC)?;
    let der = pki.respond(&[good("1001", "leaf")], "ca", &["leaf"], ONE_DAY)?;
    let expected = vec![
        bare(SslErrorKind::OcspResponseCannotBeTrusted),
        on(SslErrorKind::OcspResponseCertIdUnknown, &pki.leaf),
    ];
    let (response, errors) = check_staple(&der, &pki.leaf, None, now()?);
    assert_eq!(errors, expected);
    assert_eq!(response.and_then(|r| r.responder()), None);
    // A certificate that did not issue the leaf does not count as its issuer.
    let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.stranger_ca), now()?);
    assert_eq!(errors, expected);
    let (_, errors) = check_staple(&der, &pki.leaf, Some(&pki.responder), now()?);
    assert_eq!(errors, expected);
    Ok(())
}

#[test]
fn self_signed_leaf_is_its_own_issuer() -> TestResult {
    let pki = Pki::new(EC)?;
    pki.dir.self_signed(EC, "self", "0x4001")?;
    let me = pki.dir.cert("self")?;
    let der = pki
        .dir
        .respond_for("self", &[good("4001", "self")], "self", &["self"], ONE_DAY)?;
    let (response, errors) = check_staple(&der, &me, None, now()?);
    assert_eq!(errors, Vec::<SslError>::new());
    assert_eq!(response.and_then(|r| r.responder()), Some(me));
    Ok(())
}

#[test]
fn more_than_one_single_response_is_malformed() -> TestResult {
    let pki = Pki::new(EC)?;
    let index = [good("1001", "leaf"), good("1002", "other")];
    let der = pki.respond(&index, "ca", &["leaf", "other"], ONE_DAY)?;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(errors, vec![bare(SslErrorKind::OcspMalformedResponse)]);
    assert_eq!(response, None);
    Ok(())
}

#[test]
fn garbage_is_a_malformed_response() -> TestResult {
    let pki = Pki::new(EC)?;
    let malformed = vec![bare(SslErrorKind::OcspMalformedResponse)];
    let inputs: [&[u8]; 5] = [
        b"",
        b"not an OCSP response",
        &[0x30, 0x03, 0x0a, 0x01, 0x00], // successful, but no responseBytes
        &[0x30, 0x03, 0x0a, 0x01, 0x04], // status 4 is not defined
        &[0x30, 0x80, 0x0a, 0x01, 0x00, 0x00, 0x00], // BER indefinite length
    ];
    for input in inputs {
        let (response, errors) = check_staple(input, &pki.leaf, Some(&pki.ca), now()?);
        assert_eq!(
            (response, &errors),
            (None, &malformed),
            "input {input:02x?}"
        );
    }
    // A successful response of a type other than id-pkix-ocsp-basic.
    let other_type = RawResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ObjectIdentifier::new("1.3.6.1.5.5.7.48.1.99")?,
            response: OctetString::new(vec![0x30, 0x00])?,
        }),
    }
    .to_der()?;
    let (response, errors) = check_staple(&other_type, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!((response, errors), (None, malformed));
    Ok(())
}

#[test]
fn unsuccessful_statuses_map_to_qt_errors_without_certificate() -> TestResult {
    let pki = Pki::new(EC)?;
    let cases = [
        (1, SslErrorKind::OcspMalformedRequest),
        (2, SslErrorKind::OcspInternalError),
        (3, SslErrorKind::OcspTryLater),
        (5, SslErrorKind::OcspSigRequred),
        (6, SslErrorKind::OcspUnauthorized),
    ];
    for (status, kind) in cases {
        let der = [0x30, 0x03, 0x0a, 0x01, status];
        let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), now()?);
        assert_eq!((response, errors), (None, vec![bare(kind)]));
    }
    Ok(())
}

#[test]
fn every_truncation_and_trailing_byte_is_malformed() -> TestResult {
    let pki = Pki::new(EC)?;
    let der = pki.respond(&[good("1001", "leaf")], "responder", &["leaf"], ONE_DAY)?;
    let malformed = vec![bare(SslErrorKind::OcspMalformedResponse)];
    for end in 0..der.len() {
        let prefix = der.get(..end).ok_or("prefix")?;
        let (response, errors) = check_staple(prefix, &pki.leaf, Some(&pki.ca), now()?);
        assert_eq!((response, &errors), (None, &malformed), "prefix of {end}");
    }
    let mut longer = der.clone();
    longer.push(0);
    let (_, errors) = check_staple(&longer, &pki.leaf, Some(&pki.ca), now()?);
    assert_eq!(errors, malformed);
    Ok(())
}

#[test]
fn every_changed_byte_of_the_signed_data_is_detected() -> TestResult {
    let pki = Pki::new(EC)?;
    for signer in ["ca", "responder"] {
        let der = pki.respond(&[good("1001", "leaf")], signer, &["leaf"], ONE_DAY)?;
        let outer = RawResponse::from_der(&der)?;
        let basic = outer.response_bytes.ok_or("no response bytes")?.response;
        let tbs = split_basic(basic.as_bytes())
            .ok_or("not a basic response")?
            .tbs;
        let start = der
            .windows(tbs.len())
            .position(|w| w == tbs)
            .ok_or("tbsResponseData not found")?;
        for i in start..start + tbs.len() {
            for bit in [0x01, 0x80] {
                let mut changed = der.clone();
                if let Some(byte) = changed.get_mut(i) {
                    *byte ^= bit;
                }
                let (_, errors) = check_staple(&changed, &pki.leaf, Some(&pki.ca), now()?);
                let untrusted = errors.contains(&bare(SslErrorKind::OcspResponseCannotBeTrusted));
                let malformed = errors.contains(&bare(SslErrorKind::OcspMalformedResponse));
                assert!(untrusted || malformed, "byte {i} bit {bit:#x}: {errors:?}");
            }
        }
    }
    Ok(())
}

#[test]
fn errors_come_in_qt_order() -> TestResult {
    let pki = Pki::new(EC)?;
    // Revoked, about another certificate, signed by a stranger, checked too late.
    let index = [revoked("1002", "other", "superseded")];
    let der = pki.respond(&index, "stranger", &["other"], ONE_DAY)?;
    let later = now()? + 10 * 24 * 3600;
    let (response, errors) = check_staple(&der, &pki.leaf, Some(&pki.ca), later);
    assert_eq!(
        errors,
        vec![
            bare(SslErrorKind::OcspResponseCannotBeTrusted),
            on(SslErrorKind::OcspResponseCertIdUnknown, &pki.leaf),
            on(SslErrorKind::OcspResponseExpired, &pki.leaf),
            on(SslErrorKind::CertificateRevoked, &pki.leaf),
        ]
    );
    assert_eq!(
        response.map(|r| r.revocation_reason()),
        Some(OcspRevocationReason::Superseded)
    );
    Ok(())
}

#[test]
fn a_staple_is_checked_for_its_shape_before_it_is_served() -> TestResult {
    let pki = Pki::new(EC)?;
    let der = pki.respond(&[good("1001", "leaf")], "ca", &["leaf"], ONE_DAY)?;
    assert_eq!(check_response_der(&der), Ok(()));
    // `tryLater` has no body and is well formed.
    assert_eq!(check_response_der(&[0x30, 0x03, 0x0a, 0x01, 0x03]), Ok(()));
    // `successful` without its body, trailing bytes, a cut response, garbage.
    assert!(check_response_der(&[0x30, 0x03, 0x0a, 0x01, 0x00]).is_err());
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(check_response_der(&trailing).is_err());
    assert!(check_response_der(&der[..der.len() - 1]).is_err());
    assert!(check_response_der(b"not ocsp").is_err());
    Ok(())
}
