//! Review round 35: the value types (`SslConfiguration`, `SslCipher`, `SslCertificate`,
//! `SslKey`, `SslError`, `SslEllipticCurve`, `SslDiffieHellmanParameters`,
//! `PreSharedKeyAuthenticator`) against Qt's value semantics: equality, what a setter
//! stores, what a name or a byte string reads as.
//!
//! Keys and certificates are made at test time (rcgen and the `openssl` command, each run
//! bounded) in a temporary directory. Tests that change the process default
//! configuration hold `DEFAULTS` so that no other test of this file sees it changed.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sslsocket::prelude::*;
use sslsocket::{
    DhError, PeerVerifyMode, PreSharedKeyAuthenticator, SslCertificate, SslCipher,
    SslConfiguration, SslDiffieHellmanParameters, SslEllipticCurve, SslError, SslErrorKind, SslKey,
    SslOption, SslProtocol,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Held by every test that replaces the process default configuration.
static DEFAULTS: Mutex<()> = Mutex::new(());

/// Runs `openssl ARGS` in `dir` (at most 60 s); its stdout, or an error with its stderr.
fn openssl(dir: &Path, args: &[&str]) -> AnyResult<String> {
    let mut child = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("openssl {} took over 60 s", args.join(" ")).into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A self-signed certificate (rcgen, ECDSA P-256) with this serial number's content octets.
fn certificate_with_serial(name: &str, serial: &[u8]) -> AnyResult<SslCertificate> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
    let cert = params.self_signed(&key)?;
    Ok(SslCertificate::from_der(cert.der())?)
}

fn backends() -> Vec<&'static str> {
    sslsocket::backend::available_backends()
}

// Was a defect (round 35): `SslConfiguration`'s equality depends on the order in which SSL options were
// set (config/mod.rs:654-660 `set_ssl_option` removes the option and pushes it at the end
// of the `Vec` of config/mod.rs:88, and `Settings` derives `PartialEq` over that Vec): turning on an option the
// default already has (`SslOptionDisableEmptyFragments`) makes the configuration unequal
// to the default, and two configurations with the same options set in another order are
// unequal although every `test_ssl_option` answer is the same. Qt's `operator==` compares
// the option flags (`QSsl::SslOptions`), so both pairs are equal. Store the options as a
// set (a bit mask, or a sorted list) so that equality is on what `test_ssl_option` reads.
#[test]
fn configuration_equality_does_not_depend_on_the_order_options_were_set_in() -> TestResult {
    let default = SslConfiguration::default();
    let mut same = SslConfiguration::default();
    same.set_ssl_option(SslOption::SslOptionDisableEmptyFragments, true);
    for option in [
        SslOption::SslOptionDisableEmptyFragments,
        SslOption::SslOptionDisableSessionTickets,
        SslOption::SslOptionDisableCompression,
        SslOption::SslOptionDisableServerNameIndication,
        SslOption::SslOptionDisableLegacyRenegotiation,
        SslOption::SslOptionDisableSessionSharing,
        SslOption::SslOptionDisableSessionPersistence,
        SslOption::SslOptionDisableServerCipherPreference,
    ] {
        assert_eq!(
            same.test_ssl_option(option),
            default.test_ssl_option(option),
            "{option:?}"
        );
    }
    assert!(
        same == default,
        "turning on an option that is already on changed the configuration's equality"
    );

    let mut a = SslConfiguration::default();
    a.set_ssl_option(SslOption::SslOptionDisableSessionTickets, true)
        .set_ssl_option(SslOption::SslOptionDisableServerNameIndication, true);
    let mut b = SslConfiguration::default();
    b.set_ssl_option(SslOption::SslOptionDisableServerNameIndication, true)
        .set_ssl_option(SslOption::SslOptionDisableSessionTickets, true);
    assert!(
        a == b,
        "the same options set in another order compare unequal"
    );
    Ok(())
}

// Was a defect (round 35): `SslCipher::from_name(name, protocol)` (Qt's `QSslCipher(name, protocol)`)
// ignores the protocol: it answers a TLS 1.3 suite asked for with TLS 1.2, and a TLS 1.2
// suite asked for with TLS 1.3, and stamps the asked-for protocol on it
// (cert/cipher.rs:134-165: `from_table` copies `protocol` into any row it finds by name,
// line 149 does the same for a backend's suites). Qt looks the pair up in `supportedCiphers()` and gives a
// null cipher when no supported suite has that name *and* protocol. Return `None` unless a
// supported suite matches both (keep `UnknownProtocol` as "any").
#[test]
fn a_cipher_asked_for_with_another_protocol_is_none() -> TestResult {
    assert!(
        SslCipher::from_name("TLS_AES_128_GCM_SHA256", SslProtocol::TlsV1_3).is_some(),
        "the TLS 1.3 suite under TLS 1.3"
    );
    assert!(
        SslCipher::from_name("ECDHE-RSA-AES128-GCM-SHA256", SslProtocol::TlsV1_2).is_some(),
        "the TLS 1.2 suite under TLS 1.2"
    );
    let tls13_as_tls12 = SslCipher::from_name("TLS_AES_128_GCM_SHA256", SslProtocol::TlsV1_2);
    assert!(
        tls13_as_tls12.is_none(),
        "a TLS 1.3 suite was made a TLS 1.2 cipher: {tls13_as_tls12:?}"
    );
    let tls12_as_tls13 = SslCipher::from_name("ECDHE-RSA-AES128-GCM-SHA256", SslProtocol::TlsV1_3);
    assert!(
        tls12_as_tls13.is_none(),
        "a TLS 1.2 suite was made a TLS 1.3 cipher: {tls12_as_tls13:?}"
    );
    Ok(())
}

// Was a defect (round 35): ciphers set by name (`set_ciphers_str`, Qt's `setCiphers(QString)`) are not
// the supported ciphers of those names: the suites of the shared table come back with
// protocol `UnknownProtocol` (config/mod.rs:365 asks `from_name(name, UnknownProtocol)`,
// and cert/cipher.rs:157-165 stamps that protocol on the row; a suite found in a
// backend's list keeps its own protocol, so the two kinds of names even differ), so
// `supported_ciphers().contains(c)` is false for them and the configuration is unequal
// to one given the same suites from `supported_ciphers()`. Qt's `setCiphers(QString)`
// makes each with `QSslCipher(name)`, the supported cipher of that name. Take the
// supported entry (its real protocol) for a name.
#[test]
fn ciphers_set_by_name_are_the_supported_ciphers_of_those_names() -> TestResult {
    let names = "TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256";
    let mut by_name = SslConfiguration::default();
    by_name.set_ciphers_str(names)?;
    let supported = SslConfiguration::supported_ciphers();
    let mut picked = Vec::new();
    for cipher in by_name.ciphers() {
        let entry = supported
            .iter()
            .find(|s| s.name() == cipher.name())
            .ok_or_else(|| format!("{} is not supported", cipher.name()))?;
        picked.push(entry.clone());
        assert!(
            supported.contains(cipher),
            "{} set by name has protocol {:?}, the supported one {:?}",
            cipher.name(),
            cipher.protocol(),
            entry.protocol()
        );
    }
    let mut by_list = SslConfiguration::default();
    by_list.set_ciphers(picked);
    assert!(by_name == by_list);
    Ok(())
}

// Was a defect (round 35): `SslCertificate::serial_number()` (Qt's `serialNumber()`) is bare hex of the
// DER content octets (`0102...14`, and `008001` with the sign byte), where Qt gives the
// bytes of OpenSSL's ASN1_INTEGER colon-separated, lowercase (`01:02:...:14`, Qt's
// `largeSerialNumber` test; `80:01`, the sign byte not being part of the number). The
// README maps `serialNumber` to `serial_number` with no documented difference
// (cert/certificate.rs:231-234 uses `hex(c.raw_serial())`). Give Qt's form (the command
// line's JSON `serial` can keep the contract's own form).
#[test]
fn serial_number_is_qts_colon_separated_hex() -> TestResult {
    let large: Vec<u8> = (1..=20).collect();
    let cert = certificate_with_serial("large.example", &large)?;
    assert_eq!(
        cert.serial_number(),
        "01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14"
    );
    let high = certificate_with_serial("high.example", &[0x80, 0x01])?;
    assert_eq!(high.serial_number(), "80:01");
    let small = certificate_with_serial("small.example", &[0x11])?;
    assert_eq!(small.serial_number(), "11");
    Ok(())
}

// Was a defect (round 35): `SslKey` equality is on the encoding it was loaded from (cert/key.rs:77-83
// derives `PartialEq` over the DER as loaded and its `KeyFormat`): the same RSA key read
// from `RSA PRIVATE KEY` (PKCS#1) and from `PRIVATE KEY` (PKCS#8), or the same EC key
// from `EC PRIVATE KEY` and `PRIVATE KEY`, compare unequal, and so does a key read back
// from its own `to_pem(Some(passphrase))` (written as PKCS#8). Qt's `operator==` compares
// algorithm, type, length and `toDer()`, which OpenSSL writes in one form per key type,
// so all of these are equal in Qt. Compare the keys (e.g. their PKCS#8 form, or the
// public key and the private scalar), not the bytes of the file they came from.
#[test]
fn the_same_key_in_another_encoding_is_equal() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa8.pem",
        ],
    )?;
    openssl(
        d,
        &["rsa", "-in", "rsa8.pem", "-traditional", "-out", "rsa1.pem"],
    )?;
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec8.pem",
        ],
    )?;
    openssl(d, &["ec", "-in", "ec8.pem", "-out", "ec1.pem"])?;
    for (pkcs8, traditional) in [("rsa8.pem", "rsa1.pem"), ("ec8.pem", "ec1.pem")] {
        let a = SslKey::from_file(d.join(pkcs8), None)?;
        let b = SslKey::from_file(d.join(traditional), None)?;
        assert_eq!(
            (a.algorithm(), a.key_type(), a.length()),
            (b.algorithm(), b.key_type(), b.length())
        );
        assert_eq!(
            a.to_pkcs8_der()?,
            b.to_pkcs8_der()?,
            "{pkcs8}: not the same key"
        );
        assert!(
            a == b,
            "{pkcs8} and {traditional} hold one key but compare unequal"
        );
        // Round trip through an encrypted PEM of its own.
        let encrypted = b.to_pem(Some(b"secret"))?;
        let back = SslKey::from_pem(encrypted.as_bytes(), Some(b"secret"))?;
        assert!(
            back == b,
            "{traditional}: to_pem(passphrase) read back is unequal"
        );
    }
    Ok(())
}

// Was a defect (round 35): `SslCertificate::from_data` of DER certificates one after the other (what Qt's
// `fromData(data, QSsl::Der)` reads as a list: `certificatesFromDer` loops `d2i_X509`
// over the bytes) is refused as "trailing bytes after the DER certificate"
// (cert/certificate.rs:167-181 reads one DER certificate only: line 179, `from_der`,
// refuses what follows). The doc says "Certificates from PEM or DER data" and returns a Vec. Read each
// DER certificate in turn; bytes after the last one that are not a certificate must stay
// an error (fail closed, not Qt's silent partial list).
#[test]
fn concatenated_der_certificates_read_as_a_list() -> TestResult {
    let a = certificate_with_serial("a.example", &[1])?;
    let b = certificate_with_serial("b.example", &[2])?;
    // Held part: DER followed by junk is refused, not read as the first certificate.
    let mut junk = a.to_der();
    junk.extend_from_slice(b"\x05\x00garbage");
    assert!(SslCertificate::from_data(&junk).is_err());
    let mut both = a.to_der();
    both.extend_from_slice(b.der());
    let read = SslCertificate::from_data(&both)
        .map_err(|e| format!("two DER certificates one after the other: {e}"))?;
    assert_eq!(read, vec![a, b]);
    Ok(())
}

// Held: PEM bundles with text around and between the blocks (comments, `openssl x509
// -text` output, a key block) give every certificate in order; a block whose base64 is
// broken, or a CERTIFICATE block holding a certificate plus bytes, is an error, never a
// shorter list; `to_pem`/`to_der` read back equal, equal values hash alike.
#[test]
fn pem_bundles_with_text_around_read_whole_or_fail() -> TestResult {
    let a = certificate_with_serial("a.example", &[1])?;
    let b = certificate_with_serial("b.example", &[2])?;
    let key = rcgen::KeyPair::generate()?.serialize_pem();
    let bundle = format!(
        "# a comment\nCertificate:\n    Data: ...\n{}between the blocks\n{key}\n{}trailing text\n",
        a.to_pem(),
        b.to_pem()
    );
    let read = SslCertificate::from_data(bundle.as_bytes())?;
    assert_eq!(read, vec![a.clone(), b.clone()]);
    let set: HashSet<SslCertificate> = read.iter().cloned().chain([a.clone()]).collect();
    assert_eq!(set.len(), 2);
    assert_eq!(
        SslCertificate::from_data(a.to_pem().as_bytes())?,
        vec![a.clone()]
    );
    assert_eq!(SslCertificate::from_der(&a.to_der())?, a);

    // A broken block in the middle: an error, not the first certificate alone.
    let broken_b: String = b
        .to_pem()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 2 {
                format!(
                    "{}!{}\n",
                    line.get(..10).unwrap_or(""),
                    line.get(11..).unwrap_or("")
                )
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let broken = format!("{}{broken_b}", a.to_pem());
    assert!(SslCertificate::from_data(broken.as_bytes()).is_err());
    // A CERTIFICATE block with bytes after the certificate.
    let mut padded = a.to_der();
    padded.extend_from_slice(&[0x05, 0x00]);
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE", padded));
    let two = format!("{pem}{}", b.to_pem());
    assert!(SslCertificate::from_data(two.as_bytes()).is_err());
    Ok(())
}

// Held: the process default is copied by a socket when it is made (Qt's constructor):
// replacing the default afterwards, from this thread or another, changes neither a socket
// made before nor a configuration value taken before; a socket made afterwards, on any
// thread, gets the new default.
#[test]
fn default_configuration_changes_do_not_reach_existing_sockets() -> TestResult {
    let _guard = DEFAULTS.lock().unwrap_or_else(|e| e.into_inner());
    let original = SslConfiguration::default_configuration();
    let before = sslsocket::blocking::SslSocket::new();
    assert!(before.ssl_configuration() == &original);
    // Another thread reads the default first, so that it has it cached.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (back_tx, back_rx) = std::sync::mpsc::channel::<(PeerVerifyMode, u32)>();
    let reader = std::thread::spawn(move || {
        let _ = SslConfiguration::default_configuration();
        if rx.recv_timeout(Duration::from_secs(10)).is_ok() {
            let now = SslConfiguration::default_configuration();
            let socket = sslsocket::blocking::SslSocket::new();
            let _ = back_tx.send((
                socket.ssl_configuration().peer_verify_mode(),
                now.peer_verify_depth(),
            ));
        }
    });
    let mut changed = original.clone();
    changed
        .set_peer_verify_mode(PeerVerifyMode::VerifyNone)
        .set_peer_verify_depth(3);
    SslConfiguration::set_default_configuration(changed.clone());
    let _ = tx.send(());
    let seen = back_rx.recv_timeout(Duration::from_secs(10));
    let _ = reader.join();
    SslConfiguration::set_default_configuration(original.clone());
    assert_eq!(seen?, (PeerVerifyMode::VerifyNone, 3));
    assert!(before.ssl_configuration() == &original);
    assert_eq!(
        before.ssl_configuration().peer_verify_mode(),
        PeerVerifyMode::AutoVerifyPeer
    );
    assert!(SslConfiguration::default_configuration() == original);
    Ok(())
}

// Held: Qt's `tst_QSslError`: the default error is NoError, "No error", no certificate;
// every other kind has its own text, never empty nor "No error"; equality and hashing
// take the kind and the certificate (by DER), as `ignoreSslErrors(list)` matches.
#[test]
fn ssl_errors_compare_and_hash_on_kind_and_certificate() -> TestResult {
    let default = SslError::default();
    assert_eq!(default.error(), SslErrorKind::NoError);
    assert_eq!(default.error_string(), "No error");
    assert!(default.certificate().is_none());
    let mut texts = HashSet::new();
    for kind in SslErrorKind::ALL {
        let text = SslError::new(*kind).error_string();
        assert!(!text.is_empty(), "{kind:?}");
        assert!(
            *kind == SslErrorKind::NoError || text != "No error",
            "{kind:?}"
        );
        assert!(texts.insert(text), "{kind:?} shares its text");
        assert_eq!(SslErrorKind::from_name(kind.name()), Some(*kind));
    }
    assert_eq!(SslErrorKind::UnspecifiedError.value(), -1);
    assert_eq!(SslErrorKind::OcspStatusUnknown.value(), 36);
    let a = certificate_with_serial("a.example", &[1])?;
    let b = certificate_with_serial("b.example", &[2])?;
    let reread = SslCertificate::from_data(a.to_pem().as_bytes())?
        .pop()
        .ok_or("no certificate")?;
    let errors = [
        SslError::with_certificate(SslErrorKind::HostNameMismatch, a.clone()),
        SslError::with_certificate(SslErrorKind::HostNameMismatch, reread),
        SslError::with_certificate(SslErrorKind::HostNameMismatch, b),
        SslError::with_certificate(SslErrorKind::CertificateExpired, a),
        SslError::new(SslErrorKind::HostNameMismatch),
    ];
    assert_eq!(errors.first(), errors.get(1));
    assert_ne!(errors.first(), errors.get(2));
    assert_ne!(errors.first(), errors.get(3));
    assert_ne!(errors.first(), errors.get(4));
    let set: HashSet<SslError> = errors.iter().cloned().collect();
    assert_eq!(set.len(), 4);
    Ok(())
}

// Held: every key exchange group a backend lists is found again by its own name (Qt's
// `fromShortName(shortName())`), equal to the listed value; unknown names are none.
#[test]
fn every_supported_group_is_found_by_its_name() -> TestResult {
    for backend in backends() {
        let groups = sslsocket::backend::supported_elliptic_curves(Some(backend));
        assert!(!groups.is_empty(), "{backend}");
        for group in groups {
            assert_eq!(
                SslEllipticCurve::from_short_name(group.short_name()).as_ref(),
                Some(&group),
                "{backend}: {group}"
            );
        }
    }
    assert!(SslEllipticCurve::from_short_name("").is_none());
    assert!(SslEllipticCurve::from_short_name("secp256k1").is_none());
    assert!(SslEllipticCurve::from_short_name("SECP256R1").is_none());
    Ok(())
}

// Held: `SslDiffieHellmanParameters::from_encoded` (Qt's `fromEncoded`): the default
// group reads back equal from its DER and PEM; DER with bytes after it, PEM of another
// label, an empty input and junk are `InvalidInputDataError` with nothing kept; g = 1 is
// `UnsafeParametersError`; the empty value is empty and valid. A configuration with
// invalid parameters fails at the server's start on every backend, never runs without.
#[test]
fn dh_parameters_read_whole_or_fail() -> TestResult {
    let default = SslDiffieHellmanParameters::default_parameters();
    assert!(default.is_valid() && !default.is_empty());
    let der = default.to_der();
    assert!(SslDiffieHellmanParameters::from_encoded(&der) == default);
    assert!(SslDiffieHellmanParameters::from_encoded(default.to_pem().as_bytes()) == default);
    let mut trailing = der.clone();
    trailing.extend_from_slice(&[0x05, 0x00]);
    let other_label = default
        .to_pem()
        .replace("DH PARAMETERS", "X9.42 DH PARAMETERS");
    for bad in [
        &trailing[..],
        other_label.as_bytes(),
        b"",
        b"\x30\x03\x02\x01",
    ] {
        let parsed = SslDiffieHellmanParameters::from_encoded(bad);
        assert_eq!(parsed.error(), DhError::InvalidInputDataError, "{bad:?}");
        assert!(!parsed.is_valid() && !parsed.is_empty());
        assert!(parsed.to_der().is_empty());
    }
    // g = 1: the last INTEGER of the SEQUENCE is 02 01 02 (g = 2).
    let mut g1 = der.clone();
    let last = g1.len() - 1;
    if let Some(g) = g1.get_mut(last) {
        *g = 1;
    }
    let unsafe_g = SslDiffieHellmanParameters::from_encoded(&g1);
    assert_eq!(unsafe_g.error(), DhError::UnsafeParametersError);
    let empty = SslDiffieHellmanParameters::default();
    assert!(empty.is_empty() && empty.is_valid());
    assert_eq!(empty.error_string(), "No error");

    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])?.self_signed(&key)?;
    for backend in backends() {
        let mut config = SslConfiguration::default();
        config
            .set_local_certificate(SslCertificate::from_der(cert.der())?)
            .set_private_key(SslKey::from_pem(key.serialize_pem().as_bytes(), None)?)
            .set_diffie_hellman_parameters(SslDiffieHellmanParameters::from_encoded(b"junk"));
        let prepared = sslsocket::backend::backend_by_name(backend)
            .ok_or("no backend")?
            .prepare(sslsocket::SslMode::SslServerMode, &config);
        assert!(
            prepared.is_err(),
            "{backend}: invalid DH parameters accepted"
        );
    }
    Ok(())
}

// Held: `PreSharedKeyAuthenticator` cuts what is set to its maxima (Qt truncates), a
// server-side request (maximum identity 0) keeps no identity, and equality covers every
// field (the key compared in constant time).
#[test]
fn psk_authenticator_keeps_its_limits() -> TestResult {
    let mut client = PreSharedKeyAuthenticator::new(b"hint", b"", 4, 8);
    client.set_identity(b"identity-too-long");
    client.set_pre_shared_key(&[7u8; 32]);
    assert_eq!(client.identity(), b"iden");
    assert_eq!(client.pre_shared_key(), &[7u8; 8]);
    assert_eq!(client.identity_hint(), b"hint");
    let mut server = PreSharedKeyAuthenticator::new(b"hint", b"client", 0, 64);
    server.set_identity(b"other");
    assert_eq!(server.identity(), b"");
    let mut other = PreSharedKeyAuthenticator::new(b"hint", b"", 4, 8);
    other.set_identity(b"iden");
    other.set_pre_shared_key(&[7u8; 8]);
    assert!(other == client);
    other.set_pre_shared_key(&[8u8; 8]);
    assert!(other != client);
    Ok(())
}

// Held: `SslCertificate::from_path` (Qt's `fromPath` with wildcards): the files the
// pattern's last part matches, in name order, files without a certificate skipped, no
// match an empty list, a name without wildcards that file's error, `?` one character.
#[test]
fn from_path_reads_the_files_a_pattern_matches() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let a = certificate_with_serial("a.example", &[1])?;
    let b = certificate_with_serial("b.example", &[2])?;
    std::fs::write(d.join("2.pem"), b.to_pem())?;
    std::fs::write(d.join("1.pem"), a.to_pem())?;
    std::fs::write(d.join("3.pem"), "no certificate here\n")?;
    std::fs::write(d.join("1.pem.bak"), a.to_pem())?;
    std::fs::create_dir(d.join("x.pem"))?;
    assert_eq!(
        SslCertificate::from_path(d.join("*.pem"))?,
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        SslCertificate::from_path(d.join("?.pem"))?,
        vec![a.clone(), b]
    );
    assert!(SslCertificate::from_path(d.join("*.crt"))?.is_empty());
    assert!(SslCertificate::from_path(d.join("3.pem")).is_err());
    assert_eq!(SslCertificate::from_path(d.join("1.pem"))?, vec![a]);
    Ok(())
}

// Held: every setter's value is read back by its getter, and a configuration differs
// from the default after each one (so equality sees each field).
#[test]
fn configuration_setters_read_back_and_count_in_equality() -> TestResult {
    let key = rcgen::KeyPair::generate()?;
    let cert = SslCertificate::from_der(
        rcgen::CertificateParams::new(vec!["localhost".to_string()])?
            .self_signed(&key)?
            .der(),
    )?;
    let private = SslKey::from_pem(key.serialize_pem().as_bytes(), None)?;
    let default = SslConfiguration::default();
    let cipher = SslConfiguration::supported_ciphers()
        .into_iter()
        .next()
        .ok_or("no cipher")?;
    let curve = SslEllipticCurve::from_short_name("X25519").ok_or("no X25519")?;
    type Change = Box<dyn Fn(&mut SslConfiguration) -> bool>;
    let (c1, k1, c2, cu, ci) = (cert.clone(), private.clone(), cert.clone(), curve, cipher);
    let changes: Vec<(&str, Change)> = vec![
        (
            "protocol",
            Box::new(|c| c.set_protocol(SslProtocol::TlsV1_3).protocol() == SslProtocol::TlsV1_3),
        ),
        (
            "verify mode",
            Box::new(|c| {
                c.set_peer_verify_mode(PeerVerifyMode::VerifyPeer)
                    .peer_verify_mode()
                    == PeerVerifyMode::VerifyPeer
            }),
        ),
        (
            "depth",
            Box::new(|c| c.set_peer_verify_depth(2).peer_verify_depth() == 2),
        ),
        (
            "local cert",
            Box::new(move |c| c.set_local_certificate(c1.clone()).local_certificate() == Some(&c1)),
        ),
        (
            "key",
            Box::new(move |c| c.set_private_key(k1.clone()).private_key() == Some(&k1)),
        ),
        (
            "ca",
            Box::new(move |c| c.add_ca_certificate(c2.clone()).ca_certificates() == [c2.clone()]),
        ),
        (
            "system ca",
            Box::new(|c| !c.set_system_ca_on_demand(false).system_ca_on_demand()),
        ),
        (
            "alpn",
            Box::new(|c| {
                c.set_allowed_next_protocols(vec![b"h2".to_vec()])
                    .allowed_next_protocols()
                    == [b"h2".to_vec()]
            }),
        ),
        (
            "interrupt",
            Box::new(|c| {
                c.set_handshake_must_interrupt_on_error(true)
                    .handshake_must_interrupt_on_error()
            }),
        ),
        (
            "missing fatal",
            Box::new(|c| {
                c.set_missing_certificate_is_fatal(true)
                    .missing_certificate_is_fatal()
            }),
        ),
        (
            "ocsp",
            Box::new(|c| c.set_ocsp_stapling_enabled(true).ocsp_stapling_enabled()),
        ),
        (
            "ciphers",
            Box::new(move |c| c.set_ciphers(vec![ci.clone()]).ciphers() == [ci.clone()]),
        ),
        (
            "curves",
            Box::new(move |c| {
                c.set_elliptic_curves(vec![cu.clone()]).elliptic_curves() == [cu.clone()]
            }),
        ),
        (
            "dh",
            Box::new(|c| {
                !c.set_diffie_hellman_parameters(SslDiffieHellmanParameters::default_parameters())
                    .diffie_hellman_parameters()
                    .is_empty()
            }),
        ),
        (
            "psk hint",
            Box::new(|c| {
                c.set_pre_shared_key_identity_hint(b"hint".to_vec())
                    .pre_shared_key_identity_hint()
                    == b"hint"
            }),
        ),
        (
            "psk peer",
            Box::new(|c| {
                c.set_pre_shared_key_authenticates_peer(true)
                    .pre_shared_key_authenticates_peer()
            }),
        ),
        (
            "pins",
            Box::new(|c| c.set_pinned_public_keys(vec![[1; 32]]).pinned_public_keys() == [[1; 32]]),
        ),
        (
            "staple",
            Box::new(|c| {
                c.set_ocsp_response(Some(vec![1, 2])).ocsp_response() == Some(&[1u8, 2][..])
            }),
        ),
        (
            "tickets",
            Box::new(|c| {
                c.set_ssl_option(SslOption::SslOptionDisableSessionTickets, true)
                    .test_ssl_option(SslOption::SslOptionDisableSessionTickets)
            }),
        ),
    ];
    for (name, change) in changes {
        let mut config = default.clone();
        assert!(change(&mut config), "{name}: not read back");
        assert!(config != default, "{name}: equality does not see it");
        assert!(
            default == SslConfiguration::default(),
            "{name}: the clone's change reached the original"
        );
    }
    Ok(())
}
