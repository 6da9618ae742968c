//! Test certificates for the backends' unit tests, made at test time: a CA, and a leaf for
//! `localhost` (in its SAN and its CN) signed by it.

use crate::{SslCertificate, SslConfiguration, SslKey};

/// A server configuration with the leaf and its key, and a client configuration trusting
/// the CA (no system CAs on either side).
pub(crate) fn configurations(
) -> Result<(SslConfiguration, SslConfiguration), Box<dyn std::error::Error>> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // OpenSSL takes a leaf whose issuer is its own subject for self-signed.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "backend test CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate()?;
    let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    let mut server = SslConfiguration::default();
    server
        .set_local_certificate(SslCertificate::from_der(leaf.der())?)
        .set_private_key(SslKey::from_der(&leaf_key.serialize_der())?)
        .set_system_ca_on_demand(false);
    let mut client = SslConfiguration::default();
    client
        .set_ca_certificates(vec![SslCertificate::from_der(ca.der())?])
        .set_system_ca_on_demand(false);
    Ok((server, client))
}
