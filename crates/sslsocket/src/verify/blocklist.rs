//! Qt's built-in list of certificates known to be fraudulent (`QSslCertificate::
//! isBlacklisted`, the `CertificateBlacklisted` error): those made in the Comodo (2011)
//! and DigiNotar (2011) compromises, a few mis-issued or rogue intermediates (TURKTRUST,
//! ANSSI, NIC India, the MD5-collision rogue CA). An entry is a serial number, in Qt's
//! `serialNumber()` form, and a common name; a certificate is listed when its serial is
//! the entry's and its subject or issuer has that common name, Qt's rule. The list is
//! data, public since the incidents; a verification reports `CertificateBlacklisted` on
//! each listed certificate of the chain the peer sent or of the path verified.

use crate::cert::SslCertificate;

/// Serial number (Qt's colon form), common name.
const LISTED: [(&str, &str); 36] = [
    (
        "04:7e:cb:e9:fc:a5:5f:7b:d0:9e:ae:36:e1:0c:ae:1e",
        "mail.google.com",
    ),
    (
        "f5:c8:6a:f3:61:62:f1:3a:64:f5:4f:6d:c9:58:7c:06",
        "www.google.com",
    ),
    (
        "d7:55:8f:da:f5:f1:10:5b:b2:13:28:2b:70:77:29:a3",
        "login.yahoo.com",
    ),
    (
        "39:2a:43:4f:0e:07:df:1f:8a:a3:05:de:34:e0:c2:29",
        "login.yahoo.com",
    ),
    (
        "3e:75:ce:d4:6b:69:30:21:21:88:30:ae:86:a8:2a:71",
        "login.yahoo.com",
    ),
    (
        "e9:02:8b:95:78:e4:15:dc:1a:71:0a:2b:88:15:44:47",
        "login.skype.com",
    ),
    (
        "92:39:d5:34:8f:40:d1:69:5a:74:54:70:e1:f2:3f:43",
        "addons.mozilla.org",
    ),
    (
        "b0:b7:13:3e:d0:96:f9:b5:6f:ae:91:c8:74:bd:3a:c0",
        "login.live.com",
    ),
    (
        "d8:f3:5f:4e:b7:87:2b:2d:ab:06:92:e3:15:38:2f:b0",
        "global trustee",
    ),
    (
        "05:e2:e6:a4:cd:09:ea:54:d6:65:b0:75:fe:22:a2:56",
        "*.google.com",
    ),
    (
        "0c:76:da:9c:91:0c:4e:2c:9e:fe:15:d0:58:93:3c:4c",
        "DigiNotar Root CA",
    ),
    (
        "f1:4a:13:f4:87:2b:56:dc:39:df:84:ca:7a:a1:06:49",
        "DigiNotar Services CA",
    ),
    (
        "36:16:71:55:43:42:1b:9d:e6:cb:a3:64:41:df:24:38",
        "DigiNotar Services 1024 CA",
    ),
    (
        "0a:82:bd:1e:14:4e:88:14:d7:5b:1a:55:27:be:bf:3e",
        "DigiNotar Root CA G2",
    ),
    (
        "a4:b6:ce:e3:2e:d3:35:46:26:3c:b3:55:3a:a8:92:21",
        "CertiID Enterprise Certificate Authority",
    ),
    (
        "5b:d5:60:9c:64:17:68:cf:21:0e:35:fd:fb:05:ad:41",
        "DigiNotar Qualified CA",
    ),
    ("46:9c:2c:b0", "DigiNotar Services 1024 CA"),
    ("07:27:10:0d", "DigiNotar Cyber CA"),
    ("07:27:0f:f9", "DigiNotar Cyber CA"),
    ("07:27:10:03", "DigiNotar Cyber CA"),
    (
        "01:31:69:b0",
        "DigiNotar PKIoverheid CA Overheid en Bedrijven",
    ),
    ("01:31:34:bf", "DigiNotar PKIoverheid CA Organisatie - G2"),
    (
        "d6:d0:29:77:f1:49:fd:1a:83:f2:b9:ea:94:8c:5c:b4",
        "DigiNotar Extended Validation CA",
    ),
    (
        "1e:7d:7a:53:3d:45:30:41:96:40:0f:71:48:1f:45:04",
        "DigiNotar Public CA 2025",
    ),
    ("46:9c:2c:af", "DigiNotar Root CA"),
    ("46:9c:3c:c9", "DigiNotar Root CA"),
    ("07:27:14:a9", "Digisign Server ID (Enrich)"),
    ("4c:0e:63:6a", "Digisign Server ID - (Enrich)"),
    (
        "72:03:21:05:c5:0c:08:57:3d:8e:a5:30:4e:fe:e8:b0",
        "UTN-USERFirst-Hardware",
    ),
    ("41", "MD5 Collisions Inc. (http://www.phreedom.org/md5)"),
    ("08:27", "*.EGO.GOV.TR"),
    ("08:64", "e-islem.kktcmerkezbankasi.org"),
    ("03:1d:a7", "AC DG Tr\u{e9}sor SSL"),
    ("27:83", "NIC Certifying Authority"),
    ("27:92", "NIC CA 2011"),
    ("27:b1", "NIC CA 2014"),
];

/// The entries' serial numbers as bytes, read from their colon form once.
fn listed_serials() -> &'static [(Vec<u8>, &'static str)] {
    static SERIALS: std::sync::OnceLock<Vec<(Vec<u8>, &'static str)>> = std::sync::OnceLock::new();
    SERIALS.get_or_init(|| {
        LISTED
            .iter()
            .map(|(serial, name)| {
                let bytes = serial
                    .split(':')
                    .filter_map(|byte| u8::from_str_radix(byte, 16).ok())
                    .collect();
                (bytes, *name)
            })
            .collect()
    })
}

/// The serial number's DER content octets, found by reading the few headers before it:
/// every handshake asks this of each certificate, and almost none is listed.
fn serial_value(der: &[u8]) -> Option<&[u8]> {
    use pkcs8::der::{Decode, Header, Reader, SliceReader, Tag, TagNumber};
    let mut reader = SliceReader::new(der).ok()?;
    for _ in 0..2 {
        // Certificate, then TBSCertificate.
        if Header::decode(&mut reader).ok()?.tag != Tag::Sequence {
            return None;
        }
    }
    let mut header = Header::decode(&mut reader).ok()?;
    let version = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    if header.tag == version {
        reader.read_slice(header.length).ok()?;
        header = Header::decode(&mut reader).ok()?;
    }
    if header.tag != Tag::Integer {
        return None;
    }
    reader.read_slice(header.length).ok()
}

/// Whether `cert` is on the list (Qt's `isBlacklisted`). The serial's magnitude is
/// compared, as Qt's (OpenSSL's) form; a certificate the small walk cannot read (a BER
/// length, say, which our parser takes) is read by the full parse instead, never taken
/// as not listed (round 35: re-encoding a listed certificate's outer length hid it).
pub(crate) fn is_listed(cert: &SslCertificate) -> bool {
    let raw = match serial_value(cert.der()) {
        Some(raw) => raw.to_vec(),
        None => cert.serial_number_der(),
    };
    if raw.is_empty() {
        return false;
    }
    let serial = crate::cert::certificate::serial_magnitude(&raw);
    let mut names = listed_serials()
        .iter()
        .filter(|(listed, _)| listed.as_slice() == serial.as_ref())
        .map(|(_, name)| *name)
        .peekable();
    if names.peek().is_none() {
        return false;
    }
    let subject = cert.subject_info(crate::cert::SubjectInfo::CommonName);
    let issuer = cert.issuer_info(crate::cert::SubjectInfo::CommonName);
    names.any(|name| subject.iter().chain(&issuer).any(|cn| cn == name))
}

/// The `CertificateBlacklisted` errors among `errors`: the ones every verify mode judges
/// (Qt checks its blocklist whatever the mode).
pub(crate) fn listed_among(
    errors: &[crate::ssl_error::SslError],
) -> Vec<crate::ssl_error::SslError> {
    errors
        .iter()
        .filter(|e| e.error() == crate::ssl_error::SslErrorKind::CertificateBlacklisted)
        .cloned()
        .collect()
}

/// `CertificateBlacklisted` on each listed certificate of `certs` (once each).
pub(crate) fn errors<'a>(
    certs: impl IntoIterator<Item = &'a SslCertificate>,
) -> Vec<crate::ssl_error::SslError> {
    let mut errors: Vec<crate::ssl_error::SslError> = Vec::new();
    for cert in certs {
        if is_listed(cert) {
            let error = crate::ssl_error::SslError::with_certificate(
                crate::ssl_error::SslErrorKind::CertificateBlacklisted,
                cert.clone(),
            );
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::test_pki::{self_signed, TestResult};

    #[test]
    fn the_list_reads_and_an_ordinary_certificate_is_not_on_it() -> TestResult {
        assert_eq!(listed_serials().len(), LISTED.len());
        assert!(listed_serials()
            .iter()
            .all(|(serial, _)| !serial.is_empty() && serial.len() <= 20));
        let cert = self_signed("login.live.com", &["login.live.com"], |_| {})?;
        assert!(!is_listed(&cert));
        assert!(serial_value(cert.der()).is_some_and(|s| !s.is_empty()));
        assert!(serial_value(b"\x30\x03\x02\x01\x01").is_none());
        assert!(serial_value(&[]).is_none());
        Ok(())
    }
}
