//! `SslCertificate::to_text`: a dump laid out like `openssl x509 -noout -text`.

use std::fmt::Write;

use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Name;

use crate::cert::extension::{colon_hex, extension_title, SslCertificateExtension};
use crate::cert::key::{KeyAlgorithm, SslKey};
use crate::cert::key_info::curve_name;
use crate::cert::name::{attribute_text, short_name};

/// The dump of `cert`; `key` is its public key when that parsed.
pub(crate) fn dump(cert: &X509Certificate<'_>, key: Option<&SslKey>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = write_dump(&mut out, cert, key);
    out
}

fn write_dump(
    out: &mut String,
    cert: &X509Certificate<'_>,
    key: Option<&SslKey>,
) -> std::fmt::Result {
    let version = cert.version().0;
    let signature = algorithm_name(&cert.signature_algorithm.algorithm.to_id_string());
    writeln!(out, "Certificate:")?;
    writeln!(out, "    Data:")?;
    // The version field comes from the peer: `u32::MAX + 1` must not overflow.
    writeln!(
        out,
        "        Version: {} (0x{version:x})",
        u64::from(version) + 1
    )?;
    writeln!(out, "        Serial Number:")?;
    writeln!(out, "            {}", colon_hex(cert.raw_serial(), false))?;
    writeln!(out, "        Signature Algorithm: {signature}")?;
    writeln!(out, "        Issuer: {}", oneline(cert.issuer()))?;
    writeln!(out, "        Validity")?;
    let validity = cert.validity();
    writeln!(
        out,
        "            Not Before: {}",
        gmt(validity.not_before.timestamp())
    )?;
    writeln!(
        out,
        "            Not After : {}",
        gmt(validity.not_after.timestamp())
    )?;
    writeln!(out, "        Subject: {}", oneline(cert.subject()))?;
    writeln!(out, "        Subject Public Key Info:")?;
    let spki = cert.public_key();
    let key_oid = spki.algorithm.algorithm.to_id_string();
    writeln!(
        out,
        "            Public Key Algorithm: {}",
        algorithm_name(&key_oid)
    )?;
    if let Some(key) = key {
        let kind = match key.algorithm() {
            KeyAlgorithm::Rsa => "Public-Key",
            KeyAlgorithm::Ec => "Public-Key",
            KeyAlgorithm::Ed25519 => "ED25519 Public-Key",
            KeyAlgorithm::Opaque => "Public-Key",
        };
        writeln!(out, "                {kind}: ({} bit)", key.length())?;
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string());
    if let Some(curve) = curve {
        let name = curve_name(&curve).map_or(curve.clone(), str::to_string);
        writeln!(out, "                ASN1 OID: {name}")?;
    }
    let extensions: Vec<SslCertificateExtension> = cert
        .extensions()
        .iter()
        .map(SslCertificateExtension::from_parsed)
        .collect();
    if !extensions.is_empty() {
        writeln!(out, "        X509v3 extensions:")?;
        for ext in &extensions {
            let title = extension_title(ext.oid()).unwrap_or(ext.name());
            let critical = if ext.is_critical() { " critical" } else { "" };
            writeln!(out, "            {title}:{critical}")?;
            for line in ext.value().lines() {
                writeln!(out, "                {line}")?;
            }
        }
    }
    writeln!(out, "    Signature Algorithm: {signature}")?;
    writeln!(out, "    Signature Value:")?;
    let signature_bytes = colon_hex(&cert.signature_value.data, false);
    // 18 bytes a line, as OpenSSL wraps them.
    for chunk in signature_bytes.as_bytes().chunks(18 * 3) {
        writeln!(out, "        {}", String::from_utf8_lossy(chunk))?;
    }
    Ok(())
}

/// A name the way `openssl x509 -text` prints it by default (`XN_FLAG_ONELINE`): RDNs in
/// encoding order separated by `, `, the attributes of a multi-valued RDN by ` + `,
/// `CN = value`; a value with an RFC 2253 special character quoted, control characters
/// as `\XX` (round 34: a peer's ESC sequences went to the terminal raw, and a multi-valued
/// RDN read as several).
fn oneline(name: &X509Name<'_>) -> String {
    name.iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let label = short_name(&oid).map_or(oid, str::to_string);
                    let value = attribute_text(attr).map_or_else(
                        || colon_hex(attr.as_slice(), false),
                        |text| oneline_value(&text),
                    );
                    format!("{label} = {value}")
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One value as `XN_FLAG_ONELINE` prints it: control characters as `\XX` (each byte of
/// their UTF-8 form), and the whole quoted when it holds one of `,+"\<>;` (then `"` and
/// `\` inside are escaped).
fn oneline_value(value: &str) -> String {
    let quote = value
        .chars()
        .any(|c| matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';'));
    if !quote {
        return super::name::escape_controls(value).into_owned();
    }
    let mut inner = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            inner.push('\\');
        }
        inner.push(c);
    }
    format!("\"{}\"", super::name::escape_controls(&inner))
}

/// A time as OpenSSL prints it: `Jan  1 00:00:00 2026 GMT`.
fn gmt(seconds: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) => {
            let month = MONTHS
                .get(usize::from(u8::from(t.month())).saturating_sub(1))
                .copied()
                .unwrap_or("???");
            format!(
                "{month} {:>2} {:02}:{:02}:{:02} {} GMT",
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.year()
            )
        }
        Err(_) => seconds.to_string(),
    }
}

/// OpenSSL's name for a signature or public key algorithm OID.
pub(crate) fn algorithm_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.1" => "rsaEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.2.1" => "id-ecPublicKey",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        "1.2.840.10040.4.1" => "dsaEncryption",
        "1.2.840.10040.4.3" => "dsa_with_SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa_with_SHA256",
        other => return other.to_string(),
    };
    name.to_string()
}

#[cfg(test)]
mod version_tests {
    use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

    #[test]
    fn a_huge_version_number_is_printed_not_overflowed() -> Result<(), Box<dyn std::error::Error>> {
        let key = rcgen::KeyPair::generate()?;
        let der = rcgen::CertificateParams::new(vec!["a.example".to_string()])?
            .self_signed(&key)?
            .der()
            .to_vec();
        let (_, mut cert) = X509Certificate::from_der(&der)?;
        // What a peer can put in the field: any u32.
        cert.tbs_certificate.version = X509Version(u32::MAX);
        let mut out = String::new();
        super::write_dump(&mut out, &cert, None)?;
        assert!(out.contains("Version: 4294967296 (0xffffffff)"), "{out}");
        Ok(())
    }
}
