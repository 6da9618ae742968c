//! What the examples share: a certificate authority and a `localhost` certificate made at
//! start (rcgen), as server and client configurations, client certificates and self-signed
//! certificates. Not an example of its own (no `main.rs`); the examples include it with
//! `#[path]`, each using the part it needs.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sslsocket::{SslCertificate, SslConfiguration, SslKey};

/// Errors of the examples: anything, with its message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The ALPN names of HTTP/2 and HTTP/1.1.
pub const H2: &[u8] = b"h2";
/// The ALPN name of HTTP/1.1.
pub const HTTP11: &[u8] = b"http/1.1";

/// A server configuration for `localhost` and the CA its clients trust.
pub struct LocalPki {
    /// Certificate (`localhost`, signed by the CA) and key, ALPN `h2` then `http/1.1`.
    pub server: SslConfiguration,
    /// The CA certificate, the one thing a client trusts.
    pub ca: SslCertificate,
    issuer: Issuer<'static, KeyPair>,
}

impl LocalPki {
    /// A new CA and a `localhost` certificate it signed; nothing touches the disk.
    pub fn generate() -> Result<LocalPki, BoxError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sslsocket example CA");
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()])?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_key = KeyPair::generate()?;
        let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;

        let mut server = SslConfiguration::default();
        server
            .set_local_certificate_chain(SslCertificate::from_der(leaf.der()).map(|c| vec![c])?)
            .set_private_key(SslKey::from_pem(leaf_key.serialize_pem().as_bytes(), None)?)
            .set_allowed_next_protocols(vec![H2.to_vec(), HTTP11.to_vec()]);
        Ok(LocalPki {
            server,
            ca: SslCertificate::from_der(ca_cert.der())?,
            issuer,
        })
    }

    /// A client configuration that trusts only the CA (not the system's store) and
    /// offers `alpn` in that order.
    pub fn client(&self, alpn: &[&[u8]]) -> SslConfiguration {
        let mut client = SslConfiguration::default();
        client
            .add_ca_certificates(vec![self.ca.clone()])
            .set_system_ca_on_demand(false)
            .set_allowed_next_protocols(alpn.iter().map(|p| p.to_vec()).collect());
        client
    }
}

impl LocalPki {
    /// A client certificate for `name`, signed by the CA, with its key (for mutual TLS).
    pub fn client_identity(&self, name: &str) -> Result<(SslCertificate, SslKey), BoxError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((
            SslCertificate::from_der(cert.der())?,
            SslKey::from_pem(key.serialize_pem().as_bytes(), None)?,
        ))
    }
}

/// A self-signed certificate for `localhost` and a server configuration serving it (what
/// a test device or a home server often has).
pub fn self_signed_server() -> Result<(SslConfiguration, SslCertificate), BoxError> {
    let params = CertificateParams::new(vec!["localhost".to_string()])?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let certificate = SslCertificate::from_der(cert.der())?;
    let mut server = SslConfiguration::default();
    server
        .set_local_certificate_chain(vec![certificate.clone()])
        .set_private_key(SslKey::from_pem(key.serialize_pem().as_bytes(), None)?);
    Ok((server, certificate))
}
