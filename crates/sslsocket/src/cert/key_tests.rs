//! `SslKey` against keys made by the `openssl` command line.

use crate::cert::test_openssl::{TestResult, Workdir};
use crate::cert::{KeyAlgorithm, KeyType, SslKey};

const WRONG: &str = "private key: wrong passphrase or corrupt key";
const MISSING: &str = "private key: encrypted, and no passphrase given";

fn err_text(result: Result<SslKey, crate::ConfigError>) -> String {
    match result {
        Ok(key) => format!("unexpectedly loaded {key:?}"),
        Err(e) => e.message().to_string(),
    }
}

/// Loads `file` with the right, a wrong and no passphrase, and checks all three.
fn check_encrypted(w: &Workdir, file: &str, algorithm: KeyAlgorithm, bits: u32) -> TestResult {
    let data = w.read(file)?;
    let key = SslKey::from_data(&data, Some(b"secret"))?;
    assert_eq!((key.algorithm(), key.length()), (algorithm, bits), "{file}");
    assert_eq!(key.key_type(), KeyType::PrivateKey);
    assert_eq!(
        err_text(SslKey::from_data(&data, Some(b"wrong"))),
        WRONG,
        "{file}"
    );
    assert_eq!(err_text(SslKey::from_data(&data, None)), MISSING, "{file}");
    Ok(())
}

#[test]
fn every_algorithm_reports_its_algorithm_and_length_in_every_encoding() -> TestResult {
    let w = Workdir::new()?;
    let cases = [
        ("rsa2048", KeyAlgorithm::Rsa, 2048),
        ("P-256", KeyAlgorithm::Ec, 256),
        ("P-384", KeyAlgorithm::Ec, 384),
        ("P-521", KeyAlgorithm::Ec, 521),
        ("ed25519", KeyAlgorithm::Ed25519, 256),
    ];
    for (spec, algorithm, bits) in cases {
        w.genkey(spec, "k.pem")?;
        w.openssl(&["pkey", "-in", "k.pem", "-outform", "DER", "-out", "k.der"])?;
        w.openssl(&["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"])?;
        w.openssl(&[
            "pkey", "-in", "k.pem", "-pubout", "-outform", "DER", "-out", "pub.der",
        ])?;
        for (file, key_type) in [
            ("k.pem", KeyType::PrivateKey),
            ("k.der", KeyType::PrivateKey),
            ("pub.pem", KeyType::PublicKey),
            ("pub.der", KeyType::PublicKey),
        ] {
            let key = SslKey::from_file(w.path(file), None)?;
            assert_eq!(
                (key.algorithm(), key.length(), key.key_type()),
                (algorithm, bits, key_type),
                "{spec} {file}"
            );
        }
        // OpenSSL 3 writes DER as PKCS#1 or SEC1 for RSA and EC: our PKCS#8 form of it is
        // the same key for OpenSSL.
        let converted = SslKey::from_file(w.path("k.der"), None)?.to_pkcs8_der()?;
        let pem = crate::cert::certificate::pem_encode("PRIVATE KEY", &converted);
        w.write("converted.pem", pem.as_bytes())?;
        assert_eq!(
            w.openssl(&["pkey", "-in", "converted.pem", "-pubout"])?,
            String::from_utf8(w.read("pub.pem")?)?,
            "{spec}"
        );
    }
    Ok(())
}

#[test]
fn traditional_rsa_and_ec_keys_load_from_pem_and_der() -> TestResult {
    let w = Workdir::new()?;
    w.genkey("rsa2048", "rsa.pem")?;
    w.openssl(&["rsa", "-in", "rsa.pem", "-traditional", "-out", "rsa1.pem"])?;
    w.openssl(&[
        "rsa",
        "-in",
        "rsa.pem",
        "-traditional",
        "-outform",
        "DER",
        "-out",
        "rsa1.der",
    ])?;
    w.openssl(&[
        "rsa",
        "-in",
        "rsa.pem",
        "-RSAPublicKey_out",
        "-out",
        "rsapub1.pem",
    ])?;
    w.genkey("P-384", "ec.pem")?;
    w.openssl(&["ec", "-in", "ec.pem", "-out", "sec1.pem"])?;
    w.openssl(&["ec", "-in", "ec.pem", "-outform", "DER", "-out", "sec1.der"])?;
    for (file, algorithm, bits, label) in [
        ("rsa1.pem", KeyAlgorithm::Rsa, 2048, "RSA PRIVATE KEY"),
        ("rsa1.der", KeyAlgorithm::Rsa, 2048, "RSA PRIVATE KEY"),
        ("rsapub1.pem", KeyAlgorithm::Rsa, 2048, "PUBLIC KEY"),
        ("sec1.pem", KeyAlgorithm::Ec, 384, "EC PRIVATE KEY"),
        ("sec1.der", KeyAlgorithm::Ec, 384, "EC PRIVATE KEY"),
    ] {
        let key = SslKey::from_file(w.path(file), None)?;
        assert_eq!((key.algorithm(), key.length()), (algorithm, bits), "{file}");
        let pem = key.to_pem(None)?;
        assert!(
            pem.starts_with(&format!("-----BEGIN {label}-----\n")),
            "{file}: {}",
            *pem
        );
    }
    Ok(())
}

#[test]
fn encrypted_pkcs8_loads_with_the_passphrase_only() -> TestResult {
    let w = Workdir::new()?;
    w.genkey("P-256", "k.pem")?;
    let pass = ["-passout", "pass:secret"];
    let topk8 = ["pkcs8", "-topk8", "-in", "k.pem"];
    let variants: [(&str, &[&str]); 6] = [
        ("aes256.pem", &["-v2", "aes-256-cbc"]),
        (
            "aes128.pem",
            &["-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"],
        ),
        ("des3.pem", &["-v2", "des3"]),
        ("scrypt.pem", &["-scrypt"]),
        ("p12pbe.pem", &["-v1", "PBE-SHA1-3DES"]),
        ("aes256.der", &["-v2", "aes-256-cbc", "-outform", "DER"]),
    ];
    for (file, extra) in variants {
        let mut args: Vec<&str> = topk8.to_vec();
        args.extend(pass);
        args.extend(extra);
        args.extend(["-out", file]);
        w.openssl(&args)?;
        check_encrypted(&w, file, KeyAlgorithm::Ec, 256)?;
    }
    Ok(())
}

#[test]
fn legacy_openssl_encrypted_pem_loads_with_the_passphrase_only() -> TestResult {
    let w = Workdir::new()?;
    w.genkey("rsa2048", "rsa.pem")?;
    w.genkey("P-521", "ec.pem")?;
    let pass = "pass:secret";
    for cipher in ["-aes256", "-aes192", "-aes128", "-des3"] {
        w.openssl(&[
            "rsa",
            "-in",
            "rsa.pem",
            "-traditional",
            cipher,
            "-passout",
            pass,
            "-out",
            "r.pem",
        ])?;
        check_encrypted(&w, "r.pem", KeyAlgorithm::Rsa, 2048)?;
        w.openssl(&[
            "ec", "-in", "ec.pem", cipher, "-passout", pass, "-out", "e.pem",
        ])?;
        check_encrypted(&w, "e.pem", KeyAlgorithm::Ec, 521)?;
    }
    Ok(())
}

#[test]
fn pbes1_is_refused_with_a_clear_error() -> TestResult {
    // EncryptedPrivateKeyInfo with pbeWithMD5AndDES-CBC (salt, 2048 iterations) and eight
    // bytes of "ciphertext": the scheme is refused before any decryption.
    let der = [
        0x30, 0x27, 0x30, 0x1b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x03,
        0x30, 0x0e, 0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 0x02, 0x08, 0x00, 0x04, 0x08, 9, 9,
        9, 9, 9, 9, 9, 9,
    ];
    let pem = crate::cert::certificate::pem_encode("ENCRYPTED PRIVATE KEY", &der);
    assert_eq!(
        err_text(SslKey::from_pem(pem.as_bytes(), Some(b"secret"))),
        "private key: unsupported key encryption (PBES1)"
    );
    Ok(())
}

#[test]
fn garbage_and_hostile_input_give_errors() -> TestResult {
    let w = Workdir::new()?;
    w.genkey("P-256", "k.pem")?;
    let pem = w.read("k.pem")?;
    let der = SslKey::from_data(&pem, None)?.to_der();
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not a key at all".to_vec(),
        b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_vec(),
        b"-----BEGIN PRIVATE KEY-----\nMIIB\n".to_vec(),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
        der.get(..der.len() / 2).unwrap_or_default().to_vec(),
        [der.as_slice(), b"trailing"].concat(),
        vec![0x30; 4096],
    ];
    for input in inputs {
        assert!(SslKey::from_data(&input, Some(b"x")).is_err(), "{input:?}");
    }
    // Hostile PBKDF2 parameters: an iteration count far over the limit is refused at once.
    w.openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        "k.pem",
        "-v2",
        "aes-256-cbc",
        "-iter",
        "3000000",
        "-passout",
        "pass:x",
        "-out",
        "slow.pem",
    ])?;
    let slow = err_text(SslKey::from_file(w.path("slow.pem"), Some(b"x")));
    assert!(slow.contains("iteration count 3000000"), "{slow}");
    Ok(())
}

#[test]
fn key_files_over_one_mebibyte_are_refused_unread() -> TestResult {
    let w = Workdir::new()?;
    w.write("big.pem", &vec![b'A'; 1024 * 1024 + 1])?;
    let text = err_text(SslKey::from_file(w.path("big.pem"), None));
    assert!(text.contains("larger than 1048576 bytes"), "{text}");
    Ok(())
}

#[test]
fn to_pem_round_trips_plain_and_encrypted_and_openssl_reads_it() -> TestResult {
    let w = Workdir::new()?;
    for spec in ["rsa2048", "P-256", "ed25519"] {
        w.genkey(spec, "k.pem")?;
        if spec == "ed25519" {
            // Ed25519 has no traditional form.
            w.write("trad.pem", &w.read("k.pem")?)?;
        } else {
            w.openssl(&["pkey", "-in", "k.pem", "-traditional", "-out", "trad.pem"])?;
        }
        w.openssl(&["pkey", "-in", "k.pem", "-pubout", "-out", "want_pub.pem"])?;
        let want_pub = w.read("want_pub.pem")?;
        for file in ["k.pem", "trad.pem"] {
            let key = SslKey::from_file(w.path(file), None)?;
            let plain = key.to_pem(None)?;
            assert_eq!(SslKey::from_pem(plain.as_bytes(), None)?, key);
        }
        // Encryption converts PKCS#1 and SEC1 to PKCS#8 first.
        let key = SslKey::from_file(w.path("trad.pem"), None)?;
        let encrypted = key.to_pem(Some(b"p4ss"))?;
        assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        let back = SslKey::from_pem(encrypted.as_bytes(), Some(b"p4ss"))?;
        assert_eq!(back.to_pkcs8_der()?, key.to_pkcs8_der()?);
        assert_eq!(
            err_text(SslKey::from_pem(encrypted.as_bytes(), Some(b"nope"))),
            WRONG
        );
        w.write("enc.pem", encrypted.as_bytes())?;
        w.openssl(&[
            "pkey",
            "-in",
            "enc.pem",
            "-passin",
            "pass:p4ss",
            "-pubout",
            "-out",
            "got.pem",
        ])?;
        assert_eq!(w.read("got.pem")?, want_pub, "{spec}");

        // A public key is never encrypted.
        let public = SslKey::from_file(w.path("want_pub.pem"), None)?;
        assert_eq!(
            public.to_pem(Some(b"p4ss"))?.as_bytes(),
            want_pub.as_slice()
        );
        assert!(public.private_key_der().is_err());
    }
    Ok(())
}

#[test]
fn debug_never_shows_key_material() -> TestResult {
    let w = Workdir::new()?;
    w.genkey("P-256", "k.pem")?;
    let key = SslKey::from_file(w.path("k.pem"), None)?;
    let debug = format!("{key:?}");
    assert_eq!(
        debug,
        "SslKey { key_type: PrivateKey, algorithm: Ec, length: 256, .. }"
    );
    Ok(())
}

#[test]
fn adversarial_megabyte_inputs_are_rejected_in_linear_time() -> TestResult {
    let size = 1024 * 1024;
    let inputs: Vec<Vec<u8>> = vec![
        b"-----BEGIN ".repeat(size / 11),
        b"-----BEGIN PRIVATE KEY-----\n".repeat(size / 28),
        b"-----BEGIN PRIVATE KEY-----\nAAAA-----END ".repeat(size / 40),
        [0x30u8, 0x84, 0xff, 0xff].repeat(size / 4),
        [0x30u8, 0x80].repeat(size / 2),
        vec![b'-'; size],
    ];
    for input in inputs {
        let start = std::time::Instant::now();
        assert!(SslKey::from_data(&input, Some(b"x")).is_err());
        assert!(crate::cert::SslCertificate::from_data(&input).is_err());
        assert!(crate::cert::import_pkcs12(&input, b"x").is_err());
        let spent = start.elapsed();
        assert!(spent < std::time::Duration::from_secs(3), "{spent:?}");
    }
    Ok(())
}

// Was a defect (round 37, review INP): a key file cut before its END line read "no key
// block found", while the certificate reader names the missing END line.
#[test]
fn a_key_file_cut_before_its_end_line_says_so() -> TestResult {
    let w = Workdir::new()?;
    w.genkey("P-256", "k.pem")?;
    let whole = String::from_utf8(w.read("k.pem")?)?;
    let cut: String = whole
        .lines()
        .filter(|line| !line.starts_with("-----END"))
        .map(|line| format!("{line}\n"))
        .collect();
    let text = err_text(SslKey::from_data(cut.as_bytes(), None));
    assert!(
        text.contains("PRIVATE KEY block has no END line"),
        "the message does not say the key is cut: {text}"
    );
    // A file without any key still reads as before.
    assert_eq!(
        err_text(SslKey::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n",
            None
        )),
        "private key PEM: no key block found"
    );
    Ok(())
}
