//! Certificates made at test time with rcgen, for the verification tests.

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SigningKey,
};
use x509_parser::asn1_rs::{Any, FromDer};

use crate::cert::SslCertificate;

/// The result type of the tests.
pub(super) type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The time the tests verify at: 2030-01-01T00:00:00Z. Certificates are valid from
/// 2025-01-01 to 2035-01-01 unless a test says otherwise.
pub(super) fn now() -> i64 {
    date_time_ymd(2030, 1, 1).unix_timestamp()
}

/// Parameters for a certificate with subject `CN=<cn>` and these SANs (DNS names or IP
/// literals), valid 2025..2035, with an authorityKeyIdentifier.
pub(super) fn params(cn: &str, sans: &[&str]) -> TestResult<CertificateParams> {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    params.distinguished_name = name;
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2035, 1, 1);
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// A certificate authority that can issue certificates.
pub(super) struct Ca {
    params: CertificateParams,
    key: KeyPair,
    /// Its certificate.
    pub(super) cert: SslCertificate,
}

impl Ca {
    /// A self-signed root `CN=<cn>`: `CA:TRUE`, keyCertSign, changed by `adjust`.
    pub(super) fn root(cn: &str, adjust: impl FnOnce(&mut CertificateParams)) -> TestResult<Ca> {
        let mut params = ca_params(cn)?;
        params.use_authority_key_identifier_extension = false;
        adjust(&mut params);
        let key = KeyPair::generate()?;
        let cert = SslCertificate::from_der(params.self_signed(&key)?.der())?;
        Ok(Ca { params, key, cert })
    }

    /// An intermediate `CN=<cn>` issued by this CA: `CA:TRUE`, keyCertSign, changed by
    /// `adjust`.
    pub(super) fn intermediate(
        &self,
        cn: &str,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> TestResult<Ca> {
        let mut params = ca_params(cn)?;
        adjust(&mut params);
        let key = KeyPair::generate()?;
        let cert = SslCertificate::from_der(params.signed_by(&key, &self.issuer())?.der())?;
        Ok(Ca { params, key, cert })
    }

    /// A leaf `CN=<cn>` with these SANs, issued by this CA, changed by `adjust`.
    pub(super) fn leaf(
        &self,
        cn: &str,
        sans: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> TestResult<SslCertificate> {
        let mut params = params(cn, sans)?;
        adjust(&mut params);
        let key = KeyPair::generate()?;
        Ok(SslCertificate::from_der(
            params.signed_by(&key, &self.issuer())?.der(),
        )?)
    }

    /// An intermediate `CN=<cn>` whose certificate, validly signed by this CA, names a
    /// public key algorithm nobody knows (id-ecPublicKey with its last arc changed), while
    /// what it issues is signed with its real key: checking the signature of anything it
    /// issued fails for want of a usable issuer key.
    pub(super) fn intermediate_with_unusable_key(&self, cn: &str) -> TestResult<Ca> {
        let int = self.intermediate(cn, |_| {})?;
        let der = int.cert.to_der();
        let (tbs, alg) = split_certificate(&der).ok_or("cannot split the certificate")?;
        let mut tbs = tbs.to_vec();
        let ec_public_key = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let at = tbs
            .windows(ec_public_key.len())
            .position(|w| w == ec_public_key)
            .ok_or("no id-ecPublicKey in the certificate")?;
        let last = at + ec_public_key.len() - 1;
        let byte = tbs.get_mut(last).ok_or("short certificate")?;
        *byte = 0x63;
        let signature = self.key.sign(&tbs)?;
        let mut bits = vec![0u8];
        bits.extend(signature);
        let mut body = tbs;
        body.extend_from_slice(alg);
        body.extend(der_element(0x03, &bits));
        let cert = SslCertificate::from_der(&der_element(0x30, &body))?;
        Ok(Ca { cert, ..int })
    }

    /// An attacker's CA with this CA's name (and so its issuer name on what it issues) but
    /// a key of its own; its certificate is self-signed.
    pub(super) fn impostor(&self) -> TestResult<Ca> {
        let key = KeyPair::generate()?;
        let cert = SslCertificate::from_der(self.params.self_signed(&key)?.der())?;
        Ok(Ca {
            params: self.params.clone(),
            key,
            cert,
        })
    }

    /// The certificate of `other` (its name and key) issued by this CA instead.
    pub(super) fn cross_sign(&self, other: &Ca) -> TestResult<SslCertificate> {
        let der = other.params.signed_by(&other.key, &self.issuer())?;
        Ok(SslCertificate::from_der(der.der())?)
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

/// A self-signed end-entity certificate `CN=<cn>` with these SANs, changed by `adjust`.
pub(super) fn self_signed(
    cn: &str,
    sans: &[&str],
    adjust: impl FnOnce(&mut CertificateParams),
) -> TestResult<SslCertificate> {
    let mut params = params(cn, sans)?;
    params.use_authority_key_identifier_extension = false;
    adjust(&mut params);
    let key = KeyPair::generate()?;
    Ok(SslCertificate::from_der(params.self_signed(&key)?.der())?)
}

/// The signed part (TBSCertificate, with its header) and the signatureAlgorithm (with its
/// header) of a certificate.
fn split_certificate(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, outer) = Any::from_der(der).ok()?;
    let body = outer.data;
    let (rest, _) = Any::from_der(body).ok()?;
    let tbs = body.get(..body.len().checked_sub(rest.len())?)?;
    let (after, _) = Any::from_der(rest).ok()?;
    let alg = rest.get(..rest.len().checked_sub(after.len())?)?;
    Some((tbs, alg))
}

/// A DER element: identifier `tag`, definite length, `contents`.
fn der_element(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = contents.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes: Vec<u8> = length
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

fn ca_params(cn: &str) -> TestResult<CertificateParams> {
    let mut params = params(cn, &[])?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}
