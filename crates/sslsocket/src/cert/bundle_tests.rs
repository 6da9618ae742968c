//! PKCS#12 import against bundles made by `openssl pkcs12 -export`.

use crate::cert::certificate_tests::make_pki;
use crate::cert::test_openssl::{TestResult, Workdir};
use crate::cert::{import_pkcs12, import_pkcs12_file, SslCertificate, SslKey};

const WRONG: &str = "PKCS#12: wrong passphrase or corrupt file";

fn export(w: &Workdir, out: &str, pass: &str, extra: &[&str]) -> TestResult {
    let passout = format!("pass:{pass}");
    let mut args = vec![
        "pkcs12",
        "-export",
        "-inkey",
        "leaf.key",
        "-in",
        "leaf.pem",
        "-certfile",
        "ca.pem",
        "-passout",
        &passout,
        "-out",
        out,
    ];
    args.extend(extra);
    w.openssl(&args).map(|_| ())
}

fn check_bundle(w: &Workdir, file: &str, pass: &[u8]) -> TestResult {
    let bundle = import_pkcs12(&w.read(file)?, pass)?;
    let leaf = SslCertificate::from_file(w.path("leaf.pem"))?;
    let ca = SslCertificate::from_file(w.path("ca.pem"))?;
    let key = SslKey::from_file(w.path("leaf.key"), None)?;
    assert_eq!(bundle.certificate(), leaf.first().ok_or("leaf")?, "{file}");
    assert_eq!(bundle.ca_certificates(), ca.as_slice(), "{file}");
    assert_eq!(bundle.key().to_pkcs8_der()?, key.to_pkcs8_der()?, "{file}");
    Ok(())
}

fn err_text<T: std::fmt::Debug>(result: Result<T, crate::ConfigError>) -> String {
    match result {
        Ok(v) => format!("unexpectedly loaded {v:?}"),
        Err(e) => e.message().to_string(),
    }
}

#[test]
fn openssl3_default_bundle_imports_with_its_passphrase_only() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    export(&w, "default.p12", "secret", &[])?;
    check_bundle(&w, "default.p12", b"secret")?;
    let data = w.read("default.p12")?;
    assert_eq!(err_text(import_pkcs12(&data, b"wrong")), WRONG);
    assert_eq!(err_text(import_pkcs12(&data, b"")), WRONG);
    let (key, cert, cas) = import_pkcs12_file(w.path("default.p12"), b"secret")?.into_parts();
    assert_eq!((key.length(), cas.len()), (2048, 1));
    assert_eq!(cert.subject_display_name(), "leaf.example");
    Ok(())
}

#[test]
fn legacy_and_unusual_bundles_import() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    let pbe_3des = [
        "-certpbe",
        "PBE-SHA1-3DES",
        "-keypbe",
        "PBE-SHA1-3DES",
        "-macalg",
        "sha1",
    ];
    export(&w, "3des.p12", "secret", &pbe_3des)?;
    check_bundle(&w, "3des.p12", b"secret")?;
    assert_eq!(
        err_text(import_pkcs12(&w.read("3des.p12")?, b"nope")),
        WRONG
    );

    export(&w, "sha512.p12", "secret", &["-macalg", "sha512"])?;
    check_bundle(&w, "sha512.p12", b"secret")?;

    // Without a MAC a wrong passphrase shows in the decryption instead.
    export(&w, "nomac.p12", "secret", &["-nomac"])?;
    check_bundle(&w, "nomac.p12", b"secret")?;
    assert_eq!(
        err_text(import_pkcs12(&w.read("nomac.p12")?, b"nope")),
        WRONG
    );

    export(&w, "empty.p12", "", &[])?;
    check_bundle(&w, "empty.p12", b"")?;

    // RC2-40 certificates and a 3DES key, what OpenSSL 1.1 wrote by default; needs the
    // legacy provider to write, so only where this openssl has it.
    if export(&w, "legacy.p12", "secret", &["-legacy"]).is_ok() {
        check_bundle(&w, "legacy.p12", b"secret")?;
    }
    Ok(())
}

#[test]
fn bundles_without_a_key_or_not_pkcs12_are_refused() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    w.openssl(&[
        "pkcs12",
        "-export",
        "-nokeys",
        "-in",
        "leaf.pem",
        "-passout",
        "pass:x",
        "-out",
        "nokey.p12",
    ])?;
    assert_eq!(
        err_text(import_pkcs12(&w.read("nokey.p12")?, b"x")),
        "PKCS#12: no private key in the bundle"
    );
    assert!(import_pkcs12(b"garbage", b"x").is_err());
    assert!(import_pkcs12(&w.read("leaf.pem")?, b"x").is_err());
    let default = {
        export(&w, "d.p12", "x", &[])?;
        w.read("d.p12")?
    };
    for cut in [1, default.len() / 3, default.len() - 1] {
        let truncated = default.get(..cut).ok_or("cut")?;
        assert!(import_pkcs12(truncated, b"x").is_err());
    }
    // A MAC iteration count over the limit is refused without running it.
    export(&w, "slow.p12", "x", &["-maciter", "-iter", "3000000"])?;
    let slow = err_text(import_pkcs12(&w.read("slow.p12")?, b"x"));
    assert!(slow.contains("iteration count"), "{slow}");
    Ok(())
}

/// A small deterministic generator for the mutation test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// Flips, drops and inserts bytes of `data`.
fn mutate(rng: &mut XorShift, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len());
        match rng.below(3) {
            0 => {
                if let Some(b) = out.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                if at < out.len() {
                    out.remove(at);
                }
            }
            _ => out.insert(at, u8::try_from(rng.below(256)).unwrap_or(0)),
        }
    }
    out
}

#[test]
fn mutated_keys_certificates_and_bundles_never_panic() -> TestResult {
    let w = Workdir::new()?;
    make_pki(&w)?;
    export(&w, "b.p12", "x", &[])?;
    w.openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        "leaf.key",
        "-v2",
        "aes-128-cbc",
        "-iter",
        "16",
        "-passout",
        "pass:x",
        "-outform",
        "DER",
        "-out",
        "enc.der",
    ])?;
    w.openssl(&[
        "rsa",
        "-in",
        "leaf.key",
        "-traditional",
        "-aes128",
        "-passout",
        "pass:x",
        "-out",
        "legacy.pem",
    ])?;
    let inputs = [
        w.read("leaf.key")?,
        SslKey::from_file(w.path("leaf.key"), None)?
            .to_der()
            .to_vec(),
        w.read("enc.der")?,
        w.read("legacy.pem")?,
        w.read("ca.pem")?,
        SslCertificate::from_file(w.path("leaf.pem"))?
            .first()
            .ok_or("leaf")?
            .to_der(),
    ];
    let p12 = w.read("b.p12")?;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..150 {
        for input in &inputs {
            let bad = mutate(&mut rng, input);
            let _ = SslKey::from_data(&bad, Some(b"x"));
            if let Ok(certs) = SslCertificate::from_data(&bad) {
                for cert in certs {
                    let _ = (cert.to_text(), cert.extensions(), cert.public_key());
                    let _ = (cert.subject_display_name(), cert.subject_info_attributes());
                }
            }
        }
        let _ = import_pkcs12(&mutate(&mut rng, &p12), b"x");
    }
    Ok(())
}

#[test]
fn a_bundle_asking_for_too_much_key_derivation_in_all_is_refused_before_any() -> TestResult {
    use cms::content_info::ContentInfo;
    use pkcs12::pfx::Pfx;
    use pkcs8::der::asn1::OctetString;
    use pkcs8::der::{Any, Decode, Encode};

    let w = Workdir::new()?;
    make_pki(&w)?;
    // Each encrypted part asks for a million iterations: allowed one by one.
    export(
        &w,
        "slow.p12",
        "secret",
        &["-iter", "1000000", "-certpbe", "AES-256-CBC"],
    )?;
    let mut pfx = Pfx::from_der(&w.read("slow.p12")?)?;
    let inner = pfx.auth_safe.content.decode_as::<OctetString>()?;
    let contents = Vec::<ContentInfo>::from_der(inner.as_bytes())?;
    let encrypted = contents
        .iter()
        .find(|c| c.content_type.to_string() == "1.2.840.113549.1.7.6")
        .ok_or("no encrypted part")?
        .clone();
    // Twenty copies: twenty million iterations, hours in a debug build, refused at once.
    let mut many = contents.clone();
    many.extend(std::iter::repeat_n(encrypted, 20));
    let octets = OctetString::new(many.to_der()?)?;
    pfx.auth_safe.content = Any::encode_from(&octets)?;
    let data = pfx.to_der()?;
    let started = std::time::Instant::now();
    let message = err_text(import_pkcs12(&data, b"secret"));
    assert!(
        message.contains("key-derivation iterations in all"),
        "{message}"
    );
    // Refused before any derivation: twenty million iterations take minutes even in a
    // release build. The bound is loose (a busy machine ran a debug build past 2 s once,
    // round 36), and still far below the work refused.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    Ok(())
}

#[test]
fn a_bundle_with_too_many_bags_is_refused() -> TestResult {
    use cms::content_info::ContentInfo;
    use pkcs12::pfx::Pfx;
    use pkcs12::safe_bag::SafeBag;
    use pkcs8::der::asn1::OctetString;
    use pkcs8::der::{Any, Decode, Encode};

    let w = Workdir::new()?;
    make_pki(&w)?;
    export(
        &w,
        "plain.p12",
        "secret",
        &["-nomac", "-certpbe", "NONE", "-keypbe", "NONE"],
    )?;
    let mut pfx = Pfx::from_der(&w.read("plain.p12")?)?;
    let inner = pfx.auth_safe.content.decode_as::<OctetString>()?;
    let mut contents = Vec::<ContentInfo>::from_der(inner.as_bytes())?;
    let first = contents.first_mut().ok_or("no content")?;
    let bags_der = first.content.decode_as::<OctetString>()?;
    let bags = Vec::<SafeBag>::from_der(bags_der.as_bytes())?;
    let bag = bags.first().ok_or("no bag")?.clone();
    let many: Vec<SafeBag> = std::iter::repeat_n(bag, 1100).collect();
    first.content = Any::encode_from(&OctetString::new(many.to_der()?)?)?;
    pfx.auth_safe.content = Any::encode_from(&OctetString::new(contents.to_der()?)?)?;
    let message = err_text(import_pkcs12(&pfx.to_der()?, b"secret"));
    assert!(message.contains("more than 1024 bags"), "{message}");
    Ok(())
}
