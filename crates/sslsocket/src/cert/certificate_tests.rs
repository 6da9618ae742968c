//! `SslCertificate` accessors against what `openssl x509` prints for the same file.

use crate::cert::extension::{colon_hex, extension_title};
use crate::cert::test_openssl::{TestResult, Workdir};
use crate::cert::{DigestAlgorithm, KeyAlgorithm, KeyType, SslCertificate, SslKey, SubjectInfo};

const LEAF_EXTENSIONS: &str = "\
subjectAltName=DNS:leaf.example,DNS:*.leaf.example,IP:127.0.0.1,IP:::1,email:a@b.example
extendedKeyUsage=serverAuth,clientAuth
keyUsage=critical,digitalSignature,keyEncipherment
basicConstraints=CA:FALSE
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
authorityInfoAccess=OCSP;URI:http://ocsp.example/,caIssuers;URI:http://ca.example/ca.crt
crlDistributionPoints=URI:http://crl.example/ca.crl
certificatePolicies=2.23.140.1.2.1
";

/// A P-256 CA (`ca.pem`, `ca.key`) and an RSA-2048 leaf it signed (`leaf.pem`, `leaf.key`)
/// with every extension `SslCertificateExtension` decodes.
pub(crate) fn make_pki(w: &Workdir) -> TestResult {
    w.openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/C=DE/ST=Berlin/L=Berlin/O=Example Org/OU=Unit/CN=Example CA/emailAddress=ca@example.com",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    w.openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/O=Leaf Org/OU=Ops/CN=leaf.example/CN=second",
    ])?;
    w.write("ext.cnf", LEAF_EXTENSIONS.as_bytes())?;
    w.openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "0x0123456789abcdef",
        "-days",
        "10",
        "-out",
        "leaf.pem",
        "-extfile",
        "ext.cnf",
    ])?;
    Ok(())
}

fn one(w: &Workdir, file: &str) -> TestResult<SslCertificate> {
    let mut certs = SslCertificate::from_file(w.path(file))?;
    certs.pop().ok_or_else(|| "no certificate".into())
}

/// `prefix=value` from an openssl output line.
fn field(output: &str, prefix: &str) -> TestResult<String> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::to_string)
        .ok_or_else(|| format!("no `{prefix}` in {output}").into())
}

/// Seconds since the epoch of OpenSSL's `Nov 25 14:51:59 2026 GMT`.
fn openssl_time(text: &str) -> TestResult<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [month, day, clock, year, "GMT"] = parts.as_slice() else {
        return Err(format!("odd time {text}").into());
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month_number = months.iter().position(|m| m == month).ok_or("month")? + 1;
    let month = time::Month::try_from(u8::try_from(month_number)?)?;
    let date = time::Date::from_calendar_date(year.parse()?, month, day.parse()?)?;
    let hms: Vec<u8> = clock.split(':').map(str::parse).collect::<Result<_, _>>()?;
    let [h, m, s] = hms.as_slice() else {
        return Err("clock".into());
    };
    let t = time::Time::from_hms(*h, *m, *s)?;
    Ok(time::PrimitiveDateTime::new(date, t)
        .assume_utc()
        .unix_timestamp())
}

#[test]
fn accessors_agree_with_openssl_x509() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    for file in ["ca.pem", "leaf.pem"] {
        let cert = one(&w, file)?;
        let out = w.openssl(&[
            "x509",
            "-in",
            file,
            "-noout",
            "-subject",
            "-issuer",
            "-nameopt",
            "RFC2253",
            "-serial",
            "-startdate",
            "-enddate",
        ])?;
        assert_eq!(cert.subject_rfc4514(), field(&out, "subject=")?);
        assert_eq!(cert.issuer_rfc4514(), field(&out, "issuer=")?);
        assert_eq!(
            cert.serial_number_der()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            field(&out, "serial=")?.to_lowercase()
        );
        let not_before = openssl_time(&field(&out, "notBefore=")?)?;
        let not_after = openssl_time(&field(&out, "notAfter=")?)?;
        assert_eq!(
            (cert.effective_date_unix(), cert.expiry_date_unix()),
            (not_before, not_after)
        );
        let since_epoch = |t: std::time::SystemTime| -> TestResult<i64> {
            Ok(i64::try_from(
                t.duration_since(std::time::UNIX_EPOCH)?.as_secs(),
            )?)
        };
        assert_eq!(
            (
                since_epoch(cert.effective_date())?,
                since_epoch(cert.expiry_date())?
            ),
            (not_before, not_after)
        );
        assert!(cert.effective_date() < cert.expiry_date());
        let rfc3339 = |t: i64| -> TestResult<String> {
            Ok(time::OffsetDateTime::from_unix_timestamp(t)?
                .format(&time::format_description::well_known::Rfc3339)?)
        };
        assert_eq!(cert.effective_date_rfc3339(), rfc3339(not_before)?);
        assert_eq!(cert.expiry_date_rfc3339(), rfc3339(not_after)?);
        assert!(cert.expiry_date_rfc3339().ends_with('Z'));

        for (algorithm, flag) in [
            (DigestAlgorithm::Md5, "-md5"),
            (DigestAlgorithm::Sha1, "-sha1"),
            (DigestAlgorithm::Sha256, "-sha256"),
            (DigestAlgorithm::Sha384, "-sha384"),
            (DigestAlgorithm::Sha512, "-sha512"),
        ] {
            let out = w.openssl(&["x509", "-in", file, "-noout", "-fingerprint", flag])?;
            let want = out.trim().split_once('=').map(|(_, v)| v.to_string());
            assert_eq!(
                Some(colon_hex(&cert.digest(algorithm), true)),
                want,
                "{flag}"
            );
        }
        assert_eq!(
            cert.sha256_hex(),
            super::certificate::hex(&cert.digest(DigestAlgorithm::Sha256))
        );
    }
    Ok(())
}

#[test]
fn extensions_read_as_openssl_prints_them() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    for file in ["ca.pem", "leaf.pem"] {
        let cert = one(&w, file)?;
        let text = w.openssl(&["x509", "-in", file, "-noout", "-text"])?;
        // openssl's extension section: a 12-space heading, then 16-space value lines.
        let section = text
            .split_once("        X509v3 extensions:\n")
            .and_then(|(_, rest)| rest.split_once("    Signature Algorithm:"))
            .map(|(ext, _)| ext)
            .ok_or("no extension section")?;
        let mut want: Vec<(String, Vec<String>)> = Vec::new();
        for line in section.lines() {
            if let Some(value) = line.strip_prefix("                ") {
                if let Some(last) = want.last_mut() {
                    last.1.push(value.to_string());
                }
            } else if let Some(title) = line.strip_prefix("            ") {
                want.push((title.trim_end().to_string(), Vec::new()));
            }
        }
        let got: Vec<(String, Vec<String>)> = cert
            .extensions()
            .iter()
            .map(|e| {
                let title = extension_title(e.oid()).unwrap_or(e.name());
                let critical = if e.is_critical() { " critical" } else { "" };
                let heading = format!("{title}:{critical}");
                (heading, e.value().lines().map(str::to_string).collect())
            })
            .collect();
        assert_eq!(got, want, "{file}");
        assert!(cert.extensions().iter().all(|e| e.is_supported()));
    }
    let leaf = one(&w, "leaf.pem")?;
    let names: Vec<String> = leaf
        .extensions()
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "subjectAltName",
            "extendedKeyUsage",
            "keyUsage",
            "basicConstraints",
            "subjectKeyIdentifier",
            "authorityKeyIdentifier",
            "authorityInfoAccess",
            "crlDistributionPoints",
            "certificatePolicies",
        ]
    );
    let san = w.openssl(&[
        "x509",
        "-in",
        "leaf.pem",
        "-noout",
        "-ext",
        "subjectAltName",
    ])?;
    let want_san = san.lines().nth(1).map(str::trim).ok_or("no SAN line")?;
    let ext = leaf.extensions();
    let got_san = ext
        .iter()
        .find(|e| e.oid() == "2.5.29.17")
        .ok_or("no SAN")?;
    assert_eq!(got_san.value(), want_san);
    assert_eq!(leaf.subject_alternative_names().len(), 5);
    Ok(())
}

#[test]
fn subject_and_issuer_info_follow_qt() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    let leaf = one(&w, "leaf.pem")?;
    assert_eq!(
        leaf.subject_info(SubjectInfo::CommonName),
        ["leaf.example", "second"]
    );
    assert_eq!(leaf.subject_info(SubjectInfo::Organization), ["Leaf Org"]);
    assert!(leaf.subject_info(SubjectInfo::CountryName).is_empty());
    assert_eq!(
        leaf.issuer_info(SubjectInfo::EmailAddress),
        ["ca@example.com"]
    );
    assert_eq!(
        leaf.issuer_info(SubjectInfo::StateOrProvinceName),
        ["Berlin"]
    );
    assert_eq!(
        leaf.subject_info_by_oid("2.5.4.3"),
        ["leaf.example", "second"]
    );
    assert_eq!(leaf.subject_info_by_oid("CN"), ["leaf.example", "second"]);
    assert_eq!(
        leaf.subject_info_by_oid("commonName"),
        ["leaf.example", "second"]
    );
    assert_eq!(leaf.issuer_info_by_oid("emailAddress"), ["ca@example.com"]);
    assert!(leaf.subject_info_by_oid("noSuchName").is_empty());
    assert_eq!(leaf.subject_info_attributes(), ["O", "OU", "CN"]);
    assert_eq!(
        leaf.issuer_info_attributes(),
        ["C", "ST", "L", "O", "OU", "CN", "emailAddress"]
    );
    assert_eq!(leaf.subject_display_name(), "leaf.example");
    assert_eq!(leaf.issuer_display_name(), "Example CA");
    assert!(!leaf.is_self_signed());
    assert!(one(&w, "ca.pem")?.is_self_signed());

    // Without a common name Qt falls back to the organization, then the unit.
    w.openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "o.key",
        "-out",
        "o.pem",
        "-subj",
        "/OU=Only Unit/O=Only Org",
    ])?;
    assert_eq!(one(&w, "o.pem")?.subject_display_name(), "Only Org");
    Ok(())
}

#[test]
fn public_key_matches_openssl_pubkey() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    for (file, algorithm, bits) in [
        ("leaf.pem", KeyAlgorithm::Rsa, 2048),
        ("ca.pem", KeyAlgorithm::Ec, 256),
    ] {
        let cert = one(&w, file)?;
        let key = cert.public_key().ok_or("no public key")?;
        assert_eq!(
            (key.algorithm(), key.length(), key.key_type()),
            (algorithm, bits, KeyType::PublicKey)
        );
        let pem = w.openssl(&["x509", "-in", file, "-noout", "-pubkey"])?;
        assert_eq!(SslKey::from_pem(pem.as_bytes(), None)?, key);
        assert_eq!(key.to_pem(None)?.as_str(), pem);
    }
    Ok(())
}

#[test]
fn to_text_reads_like_openssl() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    let leaf = one(&w, "leaf.pem")?;
    let text = leaf.to_text();
    let openssl = w.openssl(&["x509", "-in", "leaf.pem", "-noout", "-text"])?;
    for line in [
        "        Version: 3 (0x2)",
        "        Signature Algorithm: ecdsa-with-SHA256",
        "        Issuer: C = DE, ST = Berlin, L = Berlin, O = Example Org, OU = Unit, CN = Example CA, emailAddress = ca@example.com",
        "        Subject: O = Leaf Org, OU = Ops, CN = leaf.example, CN = second",
        "            Public Key Algorithm: rsaEncryption",
        "                Public-Key: (2048 bit)",
        "            X509v3 Key Usage: critical",
        "                DNS:leaf.example, DNS:*.leaf.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, email:a@b.example",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
        assert!(openssl.contains(line), "openssl lacks {line:?}");
    }
    for prefix in ["            Not Before: ", "            Not After : "] {
        let ours = text.lines().find(|l| l.starts_with(prefix));
        let theirs = openssl.lines().find(|l| l.starts_with(prefix));
        assert_eq!(ours, theirs);
    }
    Ok(())
}

#[test]
fn from_path_loads_every_matching_file_and_skips_the_rest() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    w.write("junk.pem", b"not a certificate")?;
    w.write("notes.txt", b"ignored")?;
    let ca = one(&w, "ca.pem")?;
    let leaf = one(&w, "leaf.pem")?;
    let all = SslCertificate::from_path(w.path("*.pem"))?;
    assert_eq!(all, vec![ca.clone(), leaf.clone()]);
    assert_eq!(SslCertificate::from_path(w.path("l??f.pem"))?, vec![leaf]);
    assert!(SslCertificate::from_path(w.path("*.der"))?.is_empty());
    assert_eq!(SslCertificate::from_path(w.path("ca.pem"))?, vec![ca]);
    assert!(SslCertificate::from_path(w.path("junk.pem")).is_err());
    assert!(SslCertificate::from_path(w.path("missing-dir/*.pem")).is_err());
    Ok(())
}

#[test]
fn a_pem_block_without_its_end_line_is_named_as_text() {
    let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
    let error = SslCertificate::from_pem(pem).err().map(|e| e.to_string());
    let text = error.unwrap_or_default();
    assert!(
        text.contains("\"-----END CERTIFICATE-----\""),
        "the end line is not named as text: {text}"
    );
    assert!(!text.contains("[45, 45"), "bytes listed: {text}");
}
