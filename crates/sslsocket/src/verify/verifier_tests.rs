//! The chain verifier's fail-closed rules, on chains made at test time: what does not
//! parse, what the fast path must still check, where pins may match.

use rcgen::{IsCa, KeyUsagePurpose};

use crate::cert::SslCertificate;
use crate::ssl_error::SslErrorKind::{self, *};
use crate::verify::test_pki::{now, self_signed, Ca, TestResult};
use crate::verify::{ChainVerifier, Purpose};

const HOST: &str = "www.example.com";

fn kinds(verifier: &ChainVerifier, chain: &[&[u8]]) -> Vec<(SslErrorKind, Vec<u8>)> {
    verifier
        .verify_der(chain, Some(HOST), now())
        .into_iter()
        .map(|e| {
            (
                e.error(),
                e.certificate().map(|c| c.to_der()).unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn a_good_chain_has_no_error() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |_| {})?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    let verifier = ChainVerifier::new(vec![root.cert.clone()], Purpose::ServerAuth);
    assert_eq!(kinds(&verifier, &[leaf.der(), int.cert.der()]), vec![]);
    Ok(())
}

#[test]
fn garbage_after_a_good_chain_is_an_error_on_that_position() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |_| {})?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    let verifier = ChainVerifier::new(vec![root.cert.clone()], Purpose::ServerAuth);
    let garbage = [0x30, 0x03, 0x02, 0x01, 0x00];
    assert_eq!(
        kinds(&verifier, &[leaf.der(), int.cert.der(), &garbage]),
        vec![(UnspecifiedError, garbage.to_vec())]
    );
    Ok(())
}

#[test]
fn a_leaf_that_does_not_parse_is_never_trusted_through_the_root_behind_it() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let verifier = ChainVerifier::new(vec![root.cert.clone()], Purpose::ServerAuth);
    // A leaf whose bytes are a truncated certificate, then the trusted root (no SAN).
    let leaf = self_signed("leaf", &[HOST], |_| {})?;
    let broken = leaf
        .der()
        .get(..leaf.der().len() - 1)
        .unwrap_or_default()
        .to_vec();
    let errors = kinds(&verifier, &[&broken, root.cert.der()]);
    assert!(
        errors.contains(&(UnspecifiedError, broken.clone())),
        "{errors:?}"
    );
    let report = verifier.verify(
        &broken.as_slice().into(),
        &[root.cert.der().into()],
        Some(HOST),
        &[],
        rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now())?,
        )),
    );
    assert_eq!(
        report.chain.first().map(SslCertificate::der),
        Some(broken.as_slice())
    );
    assert!(report.chain.first().is_some_and(SslCertificate::is_null));
    Ok(())
}

/// A self-signed certificate with `CA:FALSE` but the keyCertSign usage.
fn root_without_ca_true(cn: &str) -> TestResult<Ca> {
    Ca::root(cn, |p| {
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
    })
}

#[test]
fn a_trusted_certificate_without_ca_true_cannot_issue_even_where_webpki_accepts() -> TestResult {
    // webpki does not look at an anchor's basic constraints: the policy check must.
    let not_ca = root_without_ca_true("Server Not CA")?;
    let leaf = not_ca.leaf("leaf", &[HOST], |_| {})?;
    let verifier = ChainVerifier::new(vec![not_ca.cert.clone()], Purpose::ServerAuth);
    let errors = kinds(&verifier, &[leaf.der()]);
    assert!(
        errors.contains(&(InvalidCaCertificate, not_ca.cert.to_der())),
        "{errors:?}"
    );
    Ok(())
}

#[test]
fn a_leaf_with_only_certificate_signing_usage_is_an_invalid_purpose() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let leaf = root.leaf("leaf", &[HOST], |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    })?;
    let verifier = ChainVerifier::new(vec![root.cert.clone()], Purpose::ServerAuth);
    assert_eq!(
        kinds(&verifier, &[leaf.der()]),
        vec![(InvalidPurpose, leaf.to_der())]
    );
    Ok(())
}

#[test]
fn pins_match_only_the_verified_path() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let other_root = Ca::root("Other Root", |_| {})?;
    let int = root.intermediate("Int", |_| {})?;
    let misissued = other_root.leaf("leaf", &[HOST], |_| {})?;
    let verifier = ChainVerifier::new(
        vec![root.cert.clone(), other_root.cert.clone()],
        Purpose::ServerAuth,
    )
    .with_pins(vec![int.cert.public_key_sha256()]);
    let good = int.leaf("leaf", &[HOST], |_| {})?;
    assert_eq!(kinds(&verifier, &[good.der(), int.cert.der()]), vec![]);
    assert_eq!(
        kinds(&verifier, &[misissued.der(), int.cert.der()]),
        vec![(CertificateRejected, misissued.to_der())]
    );
    Ok(())
}

#[test]
fn a_pin_never_matches_a_ca_that_did_not_sign_the_leaf() -> TestResult {
    // The attacker's leaf names the pinned intermediate as its issuer and sends it along;
    // the intermediate's key signed nothing of it. Whether the chain is trusted, or the
    // errors would be ignored, or nothing is verified (`VerifyNone` still runs this
    // verifier), the pin must not match.
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |_| {})?;
    let forged = int.impostor()?.leaf("leaf", &[HOST], |_| {})?;
    for anchors in [vec![root.cert.clone()], Vec::new()] {
        let verifier = ChainVerifier::new(anchors, Purpose::ServerAuth)
            .with_pins(vec![int.cert.public_key_sha256()]);
        let report = report(&verifier, &[&forged, &int.cert, &root.cert]);
        assert_eq!(
            report
                .pin_mismatch
                .map(|e| (e.error(), e.certificate().cloned())),
            Some((CertificateRejected, Some(forged.clone()))),
            "{:?}",
            report.errors
        );
    }
    // Below it, the pin on the leaf itself, which the handshake proves the peer holds.
    let verifier = ChainVerifier::new(Vec::new(), Purpose::ServerAuth)
        .with_pins(vec![forged.public_key_sha256()]);
    assert_eq!(report(&verifier, &[&forged, &int.cert]).pin_mismatch, None);
    Ok(())
}

#[test]
fn an_untrusted_chain_matches_pins_on_the_leaf_and_on_the_cas_that_signed_it() -> TestResult {
    // Nothing trusted (as a client in `VerifyNone` or one ignoring every error sees it):
    // the pins still match the leaf and each CA whose signature links it, up the path.
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |_| {})?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    for pinned in [&leaf, &int.cert, &root.cert] {
        let verifier = ChainVerifier::new(Vec::new(), Purpose::ServerAuth)
            .with_pins(vec![pinned.public_key_sha256()]);
        let report = report(&verifier, &[&leaf, &int.cert, &root.cert]);
        assert!(!report.errors.is_empty(), "nothing is trusted");
        assert_eq!(report.pin_mismatch, None, "{:?}", report.errors);
    }
    let stranger = Ca::root("Stranger", |_| {})?;
    let verifier = ChainVerifier::new(Vec::new(), Purpose::ServerAuth)
        .with_pins(vec![stranger.cert.public_key_sha256()]);
    let report = report(&verifier, &[&leaf, &int.cert, &root.cert, &stranger.cert]);
    assert_eq!(
        report.pin_mismatch.map(|e| e.error()),
        Some(CertificateRejected)
    );
    Ok(())
}

fn report(verifier: &ChainVerifier, chain: &[&SslCertificate]) -> crate::verify::ChainReport {
    let ders: Vec<rustls_pki_types::CertificateDer<'_>> = chain
        .iter()
        .map(|c| rustls_pki_types::CertificateDer::from(c.der()))
        .collect();
    let Some((leaf, rest)) = ders.split_first() else {
        return crate::verify::ChainReport::default();
    };
    let now = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now()).unwrap_or(0),
    ));
    verifier.verify(leaf, rest, Some(HOST), &[], now)
}

#[test]
fn each_configured_ca_is_judged_on_every_path_that_ends_at_it() -> TestResult {
    // A configured CA is parsed once per verifier: the first path that ends at it must not
    // decide for the later ones, nor one CA's parse stand for another's.
    let good = Ca::root("Good Root", |_| {})?;
    let expired = Ca::root("Expired Root", |p| {
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
    })?;
    let not_ca = root_without_ca_true("Not CA Root")?;
    let verifier = ChainVerifier::new(
        vec![good.cert.clone(), expired.cert.clone(), not_ca.cert.clone()],
        Purpose::ServerAuth,
    );
    let under_good = good.leaf("leaf", &[HOST], |_| {})?;
    let under_expired = expired.leaf("leaf", &[HOST], |_| {})?;
    let under_not_ca = not_ca.leaf("leaf", &[HOST], |_| {})?;
    for round in 0..3 {
        assert_eq!(
            kinds(&verifier, &[under_good.der()]),
            vec![],
            "round {round}"
        );
        let errors = kinds(&verifier, &[under_expired.der()]);
        assert!(
            errors.contains(&(CertificateExpired, expired.cert.to_der())),
            "round {round}: {errors:?}"
        );
        let errors = kinds(&verifier, &[under_not_ca.der()]);
        assert!(
            errors.contains(&(InvalidCaCertificate, not_ca.cert.to_der())),
            "round {round}: {errors:?}"
        );
    }
    Ok(())
}

/// The verifier keeps the parses of the certificates peers sent last; what it finds there
/// must be exactly what parsing the bytes would give, and everything else judged afresh.
#[test]
fn a_kept_parse_never_stands_for_other_bytes_nor_for_another_time_or_name() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |_| {})?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    let verifier = ChainVerifier::new(vec![root.cert.clone()], Purpose::ServerAuth);
    let good = [leaf.der(), int.cert.der()];
    assert_eq!(kinds(&verifier, &good), vec![]);
    // The same leaf with a byte appended: one DER certificate and something more, which
    // `SslCertificate::from_der` refuses, so it is unreadable however alike it looks.
    let mut appended = leaf.to_der();
    appended.push(0);
    assert_eq!(
        kinds(&verifier, &[&appended, int.cert.der()]),
        vec![(UnspecifiedError, appended.clone())]
    );
    // The same bytes, later than the leaf's notAfter and for another name: both judged
    // now, not taken from the first verification.
    let after = leaf.expiry_date_unix().saturating_add(86_400);
    let late = verifier.verify_der(&good, Some(HOST), after);
    assert!(
        late.iter()
            .any(|e| e.error() == CertificateExpired && e.certificate() == Some(&leaf)),
        "{late:?}"
    );
    let other = verifier.verify_der(&good, Some("other.example.com"), now());
    assert!(
        other.iter().any(|e| e.error() == HostNameMismatch),
        "{other:?}"
    );
    // And the first answer again, from the kept parses.
    assert_eq!(kinds(&verifier, &good), vec![]);
    Ok(())
}

#[test]
fn the_kept_parses_stay_few_whatever_peers_send() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let verifier = ChainVerifier::new(vec![root.cert.clone()], Purpose::ServerAuth);
    for i in 0..20 {
        let leaf = root.leaf(&format!("leaf {i}"), &[HOST], |_| {})?;
        assert_eq!(kinds(&verifier, &[leaf.der()]), vec![]);
    }
    assert_eq!(
        verifier.peer_parses().len(),
        crate::verify::kept::PEER_PARSES
    );
    // A certificate larger than the limit is verified as well, and not kept.
    let names: Vec<String> = (0..400)
        .map(|i| format!("name{i}.example.com"))
        .chain([HOST.to_string()])
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let big = root.leaf("big", &names, |_| {})?;
    assert!(
        big.der().len() > crate::verify::kept::PEER_PARSE_MAX,
        "{}",
        big.der().len()
    );
    assert_eq!(kinds(&verifier, &[big.der()]), vec![]);
    assert!(!verifier.peer_parses().keeps(big.der()));
    Ok(())
}
