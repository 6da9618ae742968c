//! Configurations the behaviour tests share: a server with a test leaf, a client that
//! trusts the test root.

use sslsocket::{SslCertificate, SslConfiguration, SslKey};

use super::{Issued, Pki};

/// A server configuration with `leaf`'s chain and key.
pub fn serving(leaf: &Issued) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let chain = leaf
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = SslConfiguration::default();
    config
        .set_local_certificate_chain(chain)
        .set_private_key(SslKey::from_der(&leaf.key_der)?);
    Ok(config)
}

/// A client configuration that trusts exactly the PKI's root.
pub fn trusting(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut config = SslConfiguration::default();
    config.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    Ok(config)
}

/// A raw rustls (not ours) server configuration for a `localhost` leaf of `pki`: the peer
/// of tests that script a server record by record.
pub fn raw_server_config(
    pki: &Pki,
) -> Result<std::sync::Arc<tokio_rustls::rustls::ServerConfig>, Box<dyn std::error::Error>> {
    use tokio_rustls::rustls;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = leaf
        .chain_der
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key_der.clone().into());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(std::sync::Arc::new(config))
}
