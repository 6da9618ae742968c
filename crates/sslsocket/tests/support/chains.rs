//! Chains made at test time with rcgen, served by a raw rustls server on 127.0.0.1
//! (`attack::AttackServer`) to our blocking client: the verifier tests' helpers.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{SslCertificate, SslConfiguration, SslError, SslErrorKind};
use time::OffsetDateTime;

use super::attack::AttackServer;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

pub const WAIT: Duration = Duration::from_secs(10);
pub const DAY: time::Duration = time::Duration::days(1);

pub struct Ca {
    pub issuer: Issuer<'static, KeyPair>,
    pub der: Vec<u8>,
    pub key_pem: String,
}

impl Ca {
    /// A CA from its parameters, key and certificate.
    pub fn new(params: CertificateParams, key: KeyPair, der: Vec<u8>) -> Ca {
        let key_pem = key.serialize_pem();
        Ca {
            issuer: Issuer::new(params, key),
            der,
            key_pem,
        }
    }
}

pub fn ca_params(cn: &str) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - 2 * DAY;
    params.not_after = now + 365 * DAY;
    params.use_authority_key_identifier_extension = true;
    params
}

pub fn new_key() -> BoxResult<KeyPair> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?)
}

pub fn root_with(cn: &str, tweak: impl FnOnce(&mut CertificateParams)) -> BoxResult<Ca> {
    let key = new_key()?;
    let mut params = ca_params(cn);
    tweak(&mut params);
    let der = params.self_signed(&key)?.der().to_vec();
    let key_pem = key.serialize_pem();
    Ok(Ca {
        issuer: Issuer::new(params, key),
        der,
        key_pem,
    })
}

pub fn root(cn: &str) -> BoxResult<Ca> {
    root_with(cn, |_| {})
}

/// A CA signed by `parent` with key `key` (PEM; a new key when `None`).
pub fn sub_ca_with(
    parent: &Ca,
    cn: &str,
    key_pem: Option<&str>,
    tweak: impl FnOnce(&mut CertificateParams),
) -> BoxResult<Ca> {
    let key = match key_pem {
        Some(pem) => KeyPair::from_pem(pem)?,
        None => new_key()?,
    };
    let mut params = ca_params(cn);
    tweak(&mut params);
    let der = params.signed_by(&key, &parent.issuer)?.der().to_vec();
    let key_pem = key.serialize_pem();
    Ok(Ca {
        issuer: Issuer::new(params, key),
        der,
        key_pem,
    })
}

pub fn sub_ca(parent: &Ca, cn: &str) -> BoxResult<Ca> {
    sub_ca_with(parent, cn, None, |_| {})
}

pub fn leaf_params(
    name: &str,
    tweak: impl FnOnce(&mut CertificateParams),
) -> BoxResult<CertificateParams> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = vec![SanType::DnsName(name.try_into()?)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - DAY;
    params.not_after = now + 30 * DAY;
    params.use_authority_key_identifier_extension = true;
    tweak(&mut params);
    Ok(params)
}

pub fn leaf(
    issuer: &Ca,
    name: &str,
    tweak: impl FnOnce(&mut CertificateParams),
) -> BoxResult<(Vec<u8>, KeyPair)> {
    let key = new_key()?;
    let der = leaf_params(name, tweak)?
        .signed_by(&key, &issuer.issuer)?
        .der()
        .to_vec();
    Ok((der, key))
}

pub fn cert(der: &[u8]) -> BoxResult<SslCertificate> {
    Ok(SslCertificate::from_der(der)?)
}

pub fn on(kind: SslErrorKind, der: &[u8]) -> BoxResult<SslError> {
    Ok(SslError::with_certificate(kind, cert(der)?))
}

pub struct Outcome {
    pub encrypted: bool,
    pub errors: Vec<SslError>,
}

pub fn handshake(
    trusted: &[&[u8]],
    chain: Vec<Vec<u8>>,
    key: &KeyPair,
    peer_name: &str,
    prepare: impl FnOnce(&mut SslSocket),
) -> BoxResult<Outcome> {
    let server = AttackServer::start(chain, &key.serialize_der(), 1)?;
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(
        trusted
            .iter()
            .map(|der| SslCertificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let mut socket = SslSocket::with_configuration(configuration);
    prepare(&mut socket);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port(), peer_name);
    let encrypted = socket.wait_for_encrypted(WAIT).is_ok() && socket.is_encrypted();
    let errors = socket.ssl_handshake_errors().to_vec();
    socket.abort();
    Ok(Outcome { encrypted, errors })
}

pub fn kinds_on(errors: &[SslError]) -> Vec<(SslErrorKind, String)> {
    errors
        .iter()
        .map(|e| {
            (
                e.error(),
                e.certificate()
                    .map(|c| c.subject_rfc4514())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// Connects ignoring exactly `ignored`; expects exactly `expected` listed and a connection.
pub fn expect_connects_ignoring(
    trusted: &[&[u8]],
    chain: Vec<Vec<u8>>,
    key: &KeyPair,
    expected: Vec<SslError>,
) -> TestResult {
    let ignored = expected.clone();
    let outcome = handshake(trusted, chain, key, "localhost", move |s| {
        s.ignore_ssl_errors_list(&ignored)
    })?;
    assert_eq!(
        outcome.errors,
        expected,
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(outcome.encrypted, "errors: {:?}", kinds_on(&outcome.errors));
    Ok(())
}

pub fn expect_refused_listing(
    trusted: &[&[u8]],
    chain: Vec<Vec<u8>>,
    key: &KeyPair,
    ignored: Vec<SslError>,
    expected: Vec<SslError>,
    prepare: impl FnOnce(&mut SslSocket),
) -> TestResult {
    let outcome = handshake(trusted, chain, key, "localhost", move |s| {
        prepare(s);
        s.ignore_ssl_errors_list(&ignored)
    })?;
    assert_eq!(
        outcome.errors,
        expected,
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    assert!(
        !outcome.encrypted,
        "errors: {:?}",
        kinds_on(&outcome.errors)
    );
    Ok(())
}
