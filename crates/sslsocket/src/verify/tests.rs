//! The collector against chains made at test time: each test asserts the exact list of
//! (error, certificate subject) pairs, in order.

use rcgen::{date_time_ymd, BasicConstraints, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};

use crate::cert::SslCertificate;
use crate::ssl_error::SslErrorKind::{self, *};
use crate::verify::test_pki::{now, self_signed, Ca, TestResult};
use crate::verify::{collect_errors, Purpose, TrustStore, VerifyInput, MAX_INTERMEDIATES};

const HOST: &str = "www.example.com";

/// One verification to run.
struct Case {
    chain: Vec<SslCertificate>,
    store: TrustStore,
    host: Option<String>,
    purpose: Purpose,
    now: i64,
    depth: u32,
}

impl Case {
    fn new(chain: &[&SslCertificate], anchors: &[&SslCertificate]) -> Case {
        Case {
            chain: chain.iter().map(|c| (*c).clone()).collect(),
            store: TrustStore::new(anchors.iter().map(|c| (*c).clone()).collect()),
            host: Some(HOST.to_string()),
            purpose: Purpose::ServerAuth,
            now: now(),
            depth: 0,
        }
    }

    fn host(mut self, host: Option<&str>) -> Case {
        self.host = host.map(str::to_string);
        self
    }

    fn purpose(mut self, purpose: Purpose) -> Case {
        self.purpose = purpose;
        self
    }

    fn depth(mut self, depth: u32) -> Case {
        self.depth = depth;
        self
    }

    /// The errors as (kind, subject) pairs.
    fn errors(&self) -> Vec<(SslErrorKind, String)> {
        collect_errors(&VerifyInput {
            chain: &self.chain,
            store: &self.store,
            host: self.host.as_deref(),
            purpose: self.purpose,
            now_unix: self.now,
            max_depth: self.depth,
        })
        .iter()
        .map(|e| {
            let subject = e.certificate().map(|c| c.subject_rfc4514());
            (e.error(), subject.unwrap_or_default())
        })
        .collect()
    }
}

fn pairs(expected: &[(SslErrorKind, &str)]) -> Vec<(SslErrorKind, String)> {
    expected.iter().map(|(k, s)| (*k, s.to_string())).collect()
}

/// root → intermediate → leaf for `www.example.com`.
fn pki() -> TestResult<(Ca, Ca, SslCertificate)> {
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |_| {})?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    Ok((root, int, leaf))
}

#[test]
fn good_chain_with_intermediate_sent_is_trusted() -> TestResult {
    let (root, int, leaf) = pki()?;
    assert_eq!(Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(), []);
    // Sending the root as well changes nothing.
    assert_eq!(
        Case::new(&[&leaf, &int.cert, &root.cert], &[&root.cert]).errors(),
        []
    );
    Ok(())
}

#[test]
fn good_chain_without_intermediate_sent_is_trusted_when_the_store_has_it() -> TestResult {
    let (root, int, leaf) = pki()?;
    assert_eq!(Case::new(&[&leaf], &[&root.cert, &int.cert]).errors(), []);
    Ok(())
}

#[test]
fn trusted_intermediate_is_an_anchor_without_its_root() -> TestResult {
    let (_root, int, leaf) = pki()?;
    assert_eq!(Case::new(&[&leaf, &int.cert], &[&int.cert]).errors(), []);
    Ok(())
}

#[test]
fn missing_intermediate_gives_both_issuer_errors_on_the_lone_leaf() -> TestResult {
    let (root, _int, leaf) = pki()?;
    let expected = pairs(&[
        (UnableToGetLocalIssuerCertificate, "CN=leaf"),
        (UnableToVerifyFirstCertificate, "CN=leaf"),
    ]);
    assert_eq!(Case::new(&[&leaf], &[&root.cert]).errors(), expected);
    Ok(())
}

#[test]
fn lone_leaf_of_an_unknown_issuer_gives_both_issuer_errors() -> TestResult {
    let (_root, _int, leaf) = pki()?;
    let other = Ca::root("Other Root", |_| {})?;
    let expected = pairs(&[
        (UnableToGetLocalIssuerCertificate, "CN=leaf"),
        (UnableToVerifyFirstCertificate, "CN=leaf"),
    ]);
    assert_eq!(Case::new(&[&leaf], &[&other.cert]).errors(), expected);
    assert_eq!(Case::new(&[&leaf], &[]).errors(), expected);
    Ok(())
}

#[test]
fn unrelated_certificates_sent_by_the_peer_are_ignored() -> TestResult {
    let (root, int, leaf) = pki()?;
    let stray = Ca::root("Stray", |_| {})?;
    assert_eq!(
        Case::new(&[&leaf, &stray.cert, &int.cert, &leaf], &[&root.cert]).errors(),
        []
    );
    let expected = pairs(&[
        (UnableToGetLocalIssuerCertificate, "CN=leaf"),
        (UnableToVerifyFirstCertificate, "CN=leaf"),
    ]);
    assert_eq!(
        Case::new(&[&leaf, &stray.cert], &[&root.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn untrusted_intermediate_gives_unable_to_get_local_issuer_on_it() -> TestResult {
    let (_root, int, leaf) = pki()?;
    let other = Ca::root("Other Root", |_| {})?;
    let expected = pairs(&[(UnableToGetLocalIssuerCertificate, "CN=Int")]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&other.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn expired_untrusted_intermediate_reports_only_its_missing_issuer() -> TestResult {
    // OpenSSL never checks the dates of an untrusted top certificate without issuer.
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |p| p.not_after = date_time_ymd(2026, 1, 1))?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    let expected = pairs(&[(UnableToGetLocalIssuerCertificate, "CN=Int")]);
    assert_eq!(Case::new(&[&leaf, &int.cert], &[]).errors(), expected);
    Ok(())
}

#[test]
fn untrusted_root_sent_in_chain_is_self_signed_in_chain() -> TestResult {
    let (root, int, leaf) = pki()?;
    let other = Ca::root("Other Root", |_| {})?;
    let expected = pairs(&[(SelfSignedCertificateInChain, "CN=Root")]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert, &root.cert], &[&other.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn expired_leaf_is_reported_on_the_leaf() -> TestResult {
    let (root, int, _) = pki()?;
    let leaf = int.leaf("leaf", &[HOST], |p| p.not_after = date_time_ymd(2026, 1, 1))?;
    let expected = pairs(&[(CertificateExpired, "CN=leaf")]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn not_yet_valid_leaf_is_reported_on_the_leaf() -> TestResult {
    let (root, int, _) = pki()?;
    let leaf = int.leaf("leaf", &[HOST], |p| {
        p.not_before = date_time_ymd(2031, 1, 1)
    })?;
    let expected = pairs(&[(CertificateNotYetValid, "CN=leaf")]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn expired_intermediate_and_expired_root_are_each_reported() -> TestResult {
    let root = Ca::root("Root", |p| p.not_after = date_time_ymd(2027, 1, 1))?;
    let int = root.intermediate("Int", |p| p.not_after = date_time_ymd(2028, 1, 1))?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    // OpenSSL's internal_verify walks down from the top: the root's dates first.
    let expected = pairs(&[
        (CertificateExpired, "CN=Root"),
        (CertificateExpired, "CN=Int"),
    ]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn expired_lone_leaf_of_unknown_issuer_reports_dates_after_issuer_errors() -> TestResult {
    let (_root, int, _) = pki()?;
    let leaf = int.leaf("leaf", &[HOST], |p| p.not_after = date_time_ymd(2026, 1, 1))?;
    let expected = pairs(&[
        (UnableToGetLocalIssuerCertificate, "CN=leaf"),
        (UnableToVerifyFirstCertificate, "CN=leaf"),
        (CertificateExpired, "CN=leaf"),
    ]);
    assert_eq!(Case::new(&[&leaf], &[]).errors(), expected);
    Ok(())
}

#[test]
fn wrong_host_is_a_mismatch_on_the_leaf() -> TestResult {
    let (root, int, leaf) = pki()?;
    let expected = pairs(&[(HostNameMismatch, "CN=leaf")]);
    let case = Case::new(&[&leaf, &int.cert], &[&root.cert]);
    assert_eq!(case.host(Some("other.example.com")).errors(), expected);
    let case = Case::new(&[&leaf, &int.cert], &[&root.cert]);
    assert_eq!(case.host(None).errors(), []);
    Ok(())
}

#[test]
fn host_mismatch_comes_after_every_other_error() -> TestResult {
    let (_root, int, _) = pki()?;
    let leaf = int.leaf("leaf", &[HOST], |p| p.not_after = date_time_ymd(2026, 1, 1))?;
    // Path building reports first, then the dates, then (Qt) the name.
    let expected = pairs(&[
        (UnableToGetLocalIssuerCertificate, "CN=Int"),
        (CertificateExpired, "CN=leaf"),
        (HostNameMismatch, "CN=leaf"),
    ]);
    let case = Case::new(&[&leaf, &int.cert], &[]).host(Some("wrong.example.com"));
    assert_eq!(case.errors(), expected);
    Ok(())
}

#[test]
fn expired_self_signed_leaf_for_another_host_gives_exactly_three_errors() -> TestResult {
    let (root, _, _) = pki()?;
    let leaf = self_signed("leaf", &[HOST], |p| p.not_after = date_time_ymd(2026, 1, 1))?;
    let expected = pairs(&[
        (SelfSignedCertificate, "CN=leaf"),
        (CertificateExpired, "CN=leaf"),
        (HostNameMismatch, "CN=leaf"),
    ]);
    let case = Case::new(&[&leaf], &[&root.cert]).host(Some("other.example.com"));
    assert_eq!(case.errors(), expected);
    Ok(())
}

#[test]
fn trusted_self_signed_leaf_has_no_error() -> TestResult {
    let leaf = self_signed("leaf", &[HOST], |_| {})?;
    assert_eq!(Case::new(&[&leaf], &[&leaf]).errors(), []);
    Ok(())
}

#[test]
fn intermediate_without_ca_true_is_an_invalid_ca_and_purpose() -> TestResult {
    // OpenSSL 3 reports both: check_ca fails, and the SSL purpose of a CA requires check_ca.
    let root = Ca::root("Root", |_| {})?;
    for is_ca in [IsCa::NoCa, IsCa::ExplicitNoCa] {
        let int = root.intermediate("Int", |p| {
            p.is_ca = is_ca;
            p.key_usages = vec![];
        })?;
        let leaf = int.leaf("leaf", &[HOST], |_| {})?;
        let expected = pairs(&[(InvalidCaCertificate, "CN=Int"), (InvalidPurpose, "CN=Int")]);
        assert_eq!(
            Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
            expected
        );
    }
    Ok(())
}

#[test]
fn a_ca_whose_key_usage_leaves_out_cert_sign_is_also_an_unspecified_error() -> TestResult {
    // CA:TRUE, keyUsage digitalSignature and cRLSign: OpenSSL 3 reports the CA check, the
    // purpose and then, as it checks the signature, X509_V_ERR_KEYUSAGE_NO_CERTSIGN, which
    // Qt (and our OpenSSL backend) calls UnspecifiedError; the rustls backend must list
    // the same, so that one ignore list works on both.
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    })?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    let expected = pairs(&[
        (InvalidCaCertificate, "CN=Int"),
        (InvalidPurpose, "CN=Int"),
        (UnspecifiedError, "CN=Int"),
    ]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn intermediate_with_key_usage_but_no_basic_constraints_is_an_invalid_ca() -> TestResult {
    // Tolerated only as the top of the path (OpenSSL 3: strict for intermediates).
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |p| p.is_ca = IsCa::NoCa)?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    let expected = pairs(&[(InvalidCaCertificate, "CN=Int")]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn path_length_violation_is_reported_on_the_constraining_ca() -> TestResult {
    let root = Ca::root("Root", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    })?;
    let int = root.intermediate("Int", |_| {})?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    let expected = pairs(&[(PathLengthExceeded, "CN=Root")]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
        expected
    );

    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    })?;
    let int2 = int.intermediate("Int2", |_| {})?;
    let leaf = int2.leaf("leaf", &[HOST], |_| {})?;
    let expected = pairs(&[(PathLengthExceeded, "CN=Int")]);
    assert_eq!(
        Case::new(&[&leaf, &int2.cert, &int.cert], &[&root.cert]).errors(),
        expected
    );
    // A constraint of 1 allows the one intermediate below.
    let root = Ca::root("Root", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    })?;
    let int = root.intermediate("Int", |_| {})?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    assert_eq!(Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(), []);
    Ok(())
}

#[test]
fn leaf_without_the_purpose_in_its_extended_key_usage_is_invalid_purpose() -> TestResult {
    let (root, int, _) = pki()?;
    let client_only = int.leaf("leaf", &[HOST], |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    })?;
    let expected = pairs(&[(InvalidPurpose, "CN=leaf")]);
    let case = Case::new(&[&client_only, &int.cert], &[&root.cert]);
    assert_eq!(case.errors(), expected);
    let case = Case::new(&[&client_only, &int.cert], &[&root.cert]);
    assert_eq!(case.purpose(Purpose::ClientAuth).host(None).errors(), []);

    let server_only = int.leaf("leaf", &[HOST], |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    })?;
    let case = Case::new(&[&server_only, &int.cert], &[&root.cert]);
    assert_eq!(case.errors(), []);
    let case = Case::new(&[&server_only, &int.cert], &[&root.cert]);
    assert_eq!(
        case.purpose(Purpose::ClientAuth).host(None).errors(),
        expected
    );

    let any = int.leaf("leaf", &[HOST], |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
    })?;
    // anyExtendedKeyUsage alone names no purpose: OpenSSL 3 (`openssl verify -purpose
    // sslserver`, error 26) and webpki refuse it.
    let expected = pairs(&[(InvalidPurpose, "CN=leaf")]);
    assert_eq!(
        Case::new(&[&any, &int.cert], &[&root.cert]).errors(),
        expected
    );
    let case = Case::new(&[&any, &int.cert], &[&root.cert]);
    assert_eq!(
        case.purpose(Purpose::ClientAuth).host(None).errors(),
        expected
    );
    Ok(())
}

#[test]
fn leaf_key_usage_that_excludes_tls_is_invalid_purpose() -> TestResult {
    let (root, int, _) = pki()?;
    let leaf = int.leaf("leaf", &[HOST], |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    })?;
    let expected = pairs(&[(InvalidPurpose, "CN=leaf")]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
        expected
    );
    let leaf = int.leaf("leaf", &[HOST], |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    })?;
    assert_eq!(Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(), []);
    Ok(())
}

#[test]
fn intermediate_whose_extended_key_usage_excludes_the_purpose_is_invalid_purpose() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    })?;
    let leaf = int.leaf("leaf", &[HOST], |_| {})?;
    let expected = pairs(&[(InvalidPurpose, "CN=Int")]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn wildcard_leaf_matches_one_label_only() -> TestResult {
    let (root, int, _) = pki()?;
    let leaf = int.leaf("leaf", &["*.example.com"], |_| {})?;
    let run = |host: &str| Case::new(&[&leaf, &int.cert], &[&root.cert]).host(Some(host));
    assert_eq!(run("a.example.com").errors(), []);
    assert_eq!(run("A.Example.COM.").errors(), []);
    let mismatch = pairs(&[(HostNameMismatch, "CN=leaf")]);
    assert_eq!(run("example.com").errors(), mismatch);
    assert_eq!(run("a.b.example.com").errors(), mismatch);
    let too_wide = int.leaf("leaf", &["*.com"], |_| {})?;
    let case = Case::new(&[&too_wide, &int.cert], &[&root.cert]).host(Some("example.com"));
    assert_eq!(case.errors(), mismatch);
    Ok(())
}

#[test]
fn ip_only_leaf_matches_its_address_but_not_a_name_or_its_common_name() -> TestResult {
    let (root, int, _) = pki()?;
    let leaf = int.leaf("localhost", &["127.0.0.1"], |_| {})?;
    let run = |host: &str| Case::new(&[&leaf, &int.cert], &[&root.cert]).host(Some(host));
    assert_eq!(run("127.0.0.1").errors(), []);
    let mismatch = pairs(&[(HostNameMismatch, "CN=localhost")]);
    assert_eq!(run("localhost").errors(), mismatch);
    assert_eq!(run("127.0.0.2").errors(), mismatch);
    Ok(())
}

#[test]
fn common_name_decides_only_when_there_is_no_subject_alternative_name() -> TestResult {
    let (root, int, _) = pki()?;
    let leaf = int.leaf(HOST, &[], |_| {})?;
    let run = |host: &str| Case::new(&[&leaf, &int.cert], &[&root.cert]).host(Some(host));
    assert_eq!(run(HOST).errors(), []);
    let mismatch = pairs(&[(HostNameMismatch, "CN=www.example.com")]);
    assert_eq!(run("other.example.com").errors(), mismatch);
    Ok(())
}

#[test]
fn tampered_leaf_signature_is_a_signature_failure_on_the_leaf() -> TestResult {
    let (root, int, leaf) = pki()?;
    let mut der = leaf.to_der();
    // The signature BIT STRING is the last element of the certificate.
    if let Some(last) = der.last_mut() {
        *last ^= 0x01;
    }
    let tampered = SslCertificate::from_der(&der)?;
    let expected = pairs(&[(CertificateSignatureFailed, "CN=leaf")]);
    assert_eq!(
        Case::new(&[&tampered, &int.cert], &[&root.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn tampered_self_signed_leaf_is_self_signed_with_a_failed_signature() -> TestResult {
    let leaf = self_signed("leaf", &[HOST], |_| {})?;
    let mut der = leaf.to_der();
    if let Some(last) = der.last_mut() {
        *last ^= 0x01;
    }
    let tampered = SslCertificate::from_der(&der)?;
    let expected = pairs(&[
        (SelfSignedCertificate, "CN=leaf"),
        (CertificateSignatureFailed, "CN=leaf"),
    ]);
    assert_eq!(Case::new(&[&tampered], &[]).errors(), expected);
    Ok(())
}

#[test]
fn impostor_root_with_a_trusted_name_is_self_signed_in_chain() -> TestResult {
    let (root, _, _) = pki()?;
    let impostor = Ca::root("Root", |_| {})?;
    for with_key_ids in [true, false] {
        let leaf = impostor.leaf("leaf", &[HOST], |p| {
            p.use_authority_key_identifier_extension = with_key_ids;
        })?;
        let expected = pairs(&[(SelfSignedCertificateInChain, "CN=Root")]);
        let case = Case::new(&[&leaf, &impostor.cert], &[&root.cert]);
        assert_eq!(case.errors(), expected);
        // Without the impostor sent, its leaf cannot be verified against the real root.
        let expected = if with_key_ids {
            pairs(&[
                (UnableToGetLocalIssuerCertificate, "CN=leaf"),
                (UnableToVerifyFirstCertificate, "CN=leaf"),
            ])
        } else {
            pairs(&[(CertificateSignatureFailed, "CN=leaf")])
        };
        assert_eq!(Case::new(&[&leaf], &[&root.cert]).errors(), expected);
    }
    Ok(())
}

#[test]
fn unusable_issuer_key_is_reported_on_the_issuer() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate_with_unusable_key("Int")?;
    let leaf = int.leaf("leaf", &[HOST], |p| {
        p.use_authority_key_identifier_extension = false;
    })?;
    let expected = pairs(&[(UnableToDecodeIssuerPublicKey, "CN=Int")]);
    assert_eq!(
        Case::new(&[&leaf, &int.cert], &[&root.cert]).errors(),
        expected
    );
    Ok(())
}

#[test]
fn every_single_byte_corruption_of_a_trusted_leaf_is_reported() -> TestResult {
    let (root, int, leaf) = pki()?;
    let der = leaf.to_der();
    let mut checked = 0;
    for index in 0..der.len() {
        let mut corrupt = der.clone();
        if let Some(byte) = corrupt.get_mut(index) {
            *byte ^= 0x20;
        }
        // Corruptions that no longer parse never become an `SslCertificate`.
        let Ok(cert) = SslCertificate::from_der(&corrupt) else {
            continue;
        };
        checked += 1;
        let errors = Case::new(&[&cert, &int.cert], &[&root.cert]).errors();
        assert!(
            !errors.is_empty(),
            "corruption at byte {index} not reported"
        );
    }
    assert!(checked > 0);
    Ok(())
}

#[test]
fn max_depth_counts_intermediates_between_leaf_and_anchor() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let int = root.intermediate("Int", |_| {})?;
    let int2 = int.intermediate("Int2", |_| {})?;
    let leaf = int2.leaf("leaf", &[HOST], |_| {})?;
    let chain = [&leaf, &int2.cert, &int.cert];
    for depth in [0, 2, 3] {
        assert_eq!(Case::new(&chain, &[&root.cert]).depth(depth).errors(), []);
    }
    // Two intermediates, one allowed: OpenSSL stops at the second (CERT_CHAIN_TOO_LONG,
    // which Qt calls UnspecifiedError, then UNABLE_TO_GET_ISSUER_CERT_LOCALLY).
    let expected = pairs(&[
        (UnspecifiedError, "CN=Int"),
        (UnableToGetLocalIssuerCertificate, "CN=Int"),
    ]);
    assert_eq!(Case::new(&chain, &[&root.cert]).depth(1).errors(), expected);
    // An anchor within the limit is fine.
    assert_eq!(Case::new(&chain, &[&int.cert]).depth(1).errors(), []);
    assert_eq!(Case::new(&chain, &[&int2.cert]).depth(1).errors(), []);

    // Errors below the limit are still reported.
    let expired = int2.leaf("leaf", &[HOST], |p| p.not_after = date_time_ymd(2026, 1, 1))?;
    let chain = [&expired, &int2.cert, &int.cert];
    let expected = pairs(&[
        (UnspecifiedError, "CN=Int"),
        (UnableToGetLocalIssuerCertificate, "CN=Int"),
        (CertificateExpired, "CN=leaf"),
    ]);
    assert_eq!(Case::new(&chain, &[&root.cert]).depth(1).errors(), expected);
    let case = Case::new(&chain, &[&root.cert]).depth(u32::MAX);
    assert_eq!(case.errors(), pairs(&[(CertificateExpired, "CN=leaf")]));
    Ok(())
}

#[test]
fn paths_longer_than_the_hard_limit_are_too_long() -> TestResult {
    let root = Ca::root("Root", |_| {})?;
    let mut cas = vec![root.intermediate("Int 1", |_| {})?];
    for n in 2..=MAX_INTERMEDIATES + 1 {
        let next = match cas.last() {
            Some(ca) => ca.intermediate(&format!("Int {n}"), |_| {})?,
            None => return Err("no CA".into()),
        };
        cas.push(next);
    }
    let leaf = match cas.last() {
        Some(ca) => ca.leaf("leaf", &[HOST], |_| {})?,
        None => return Err("no CA".into()),
    };
    let mut chain = vec![&leaf];
    chain.extend(cas.iter().rev().map(|ca| &ca.cert));
    // Eleven intermediates, ten allowed: the eleventh above the leaf (Int 1) is where the
    // anchor had to be.
    let expected = pairs(&[
        (UnspecifiedError, "CN=Int 1"),
        (UnableToGetLocalIssuerCertificate, "CN=Int 1"),
    ]);
    assert_eq!(Case::new(&chain, &[&root.cert]).errors(), expected);
    assert_eq!(
        Case::new(&chain, &[&root.cert]).depth(50).errors(),
        expected
    );
    // Trusting Int 1 makes it the anchor, within the limit.
    let int1 = cas.first().ok_or("no CA")?;
    assert_eq!(Case::new(&chain, &[&int1.cert]).errors(), []);
    Ok(())
}

#[test]
fn cross_signed_loop_ends_without_an_issuer() -> TestResult {
    let a = Ca::root("A", |_| {})?;
    let b = Ca::root("B", |_| {})?;
    let a_by_b = b.cross_sign(&a)?;
    let b_by_a = a.cross_sign(&b)?;
    let leaf = a.leaf("leaf", &[HOST], |_| {})?;
    let expected = pairs(&[(UnableToGetLocalIssuerCertificate, "CN=B")]);
    let case = Case::new(&[&leaf, &a_by_b, &b_by_a, &a_by_b], &[]);
    assert_eq!(case.errors(), expected);
    Ok(())
}

#[test]
fn empty_chain_is_no_peer_certificate() {
    let store = TrustStore::new(vec![]);
    let errors = collect_errors(&VerifyInput {
        chain: &[],
        store: &store,
        host: Some(HOST),
        purpose: Purpose::ServerAuth,
        now_unix: now(),
        max_depth: 0,
    });
    assert_eq!(
        errors
            .iter()
            .map(|e| (e.error(), e.certificate().is_none()))
            .collect::<Vec<_>>(),
        [(NoPeerCertificate, true)]
    );
}

#[test]
fn certificate_verify_of_an_empty_chain_is_one_unspecified_error() {
    let errors = SslCertificate::verify(&[], Some(HOST));
    assert_eq!(
        errors
            .iter()
            .map(|e| (e.error(), e.certificate().is_none()))
            .collect::<Vec<_>>(),
        [(UnspecifiedError, true)]
    );
}

#[test]
fn certificate_verify_reports_an_unknown_self_signed_certificate() -> TestResult {
    let leaf = self_signed("leaf", &[HOST], |p| {
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = date_time_ymd(2100, 1, 1);
    })?;
    let errors: Vec<_> = SslCertificate::verify(std::slice::from_ref(&leaf), Some("other.test"))
        .iter()
        .map(|e| (e.error(), e.certificate() == Some(&leaf)))
        .collect();
    assert_eq!(
        errors,
        [(SelfSignedCertificate, true), (HostNameMismatch, true)]
    );
    Ok(())
}

#[test]
fn trust_store_keeps_each_certificate_once() -> TestResult {
    let (root, int, leaf) = pki()?;
    let store = TrustStore::new(vec![root.cert.clone(), int.cert.clone(), root.cert.clone()]);
    assert_eq!(store.certificates(), [root.cert.clone(), int.cert.clone()]);
    assert!(store.contains(&int.cert));
    assert!(!store.contains(&leaf));
    assert!(!store.is_empty());
    assert!(TrustStore::new(vec![]).is_empty());
    Ok(())
}
