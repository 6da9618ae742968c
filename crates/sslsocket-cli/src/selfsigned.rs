//! A self-signed certificate for `localhost` / `127.0.0.1`, made in memory at run time.

use anyhow::{anyhow, Result};
use rcgen::{CertificateParams, DnType, KeyPair};
use sslsocket::{SslCertificate, SslKey};
use time::{Duration, OffsetDateTime};

/// A fresh ECDSA P-256 key and a certificate for `localhost` and `127.0.0.1`, valid from
/// yesterday for 30 days.
pub fn generate() -> Result<(SslCertificate, SslKey)> {
    let key = KeyPair::generate().map_err(|e| anyhow!("generating a key: {e}"))?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(|e| anyhow!("certificate parameters: {e}"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(30);
    let certificate = params
        .self_signed(&key)
        .map_err(|e| anyhow!("signing the certificate: {e}"))?;
    let certificate = SslCertificate::from_der(certificate.der())?;
    let key = SslKey::from_der(&key.serialize_der())?;
    Ok((certificate, key))
}
