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
