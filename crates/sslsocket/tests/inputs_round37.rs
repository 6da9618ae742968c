//! Review round 37: certificates, keys and other inputs as types (`SslCertificate`,
//! `SslKey`, `SslDiffieHellmanParameters`, `from_path`), each value compared with what the
//! `openssl` command reads from the same bytes and with Qt's documented behaviour.
//!
//! Keys, parameters and certificates are made at test time (the `openssl` command, rcgen)
//! in a temporary directory; every `openssl` run is bounded.
//! `cargo test -q -p sslsocket --all-features --test inputs_round37` (and again with
//! `SSLSOCKET_BACKEND=openssl`).
mod support;

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sslsocket::{DhError, KeyAlgorithm, SslCertificate, SslDiffieHellmanParameters, SslKey};
use support::openssl_run;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Runs `openssl ARGS` in `dir` (at most 120 s); its stdout, or an error with its stderr.
fn openssl(dir: &Path, args: &[&str]) -> AnyResult<String> {
    let mut full: Vec<String> = Vec::new();
    // `openssl_run` has no working directory: name the files in `dir` by their full path.
    for arg in args {
        if arg.contains('.') && !arg.starts_with('-') && !arg.contains(':') {
            full.push(dir.join(arg).display().to_string());
        } else {
            full.push((*arg).to_string());
        }
    }
    let out = openssl_run(&full, b"", Duration::from_secs(120))?;
    if !out.success() {
        return Err(format!("openssl {}: {}", args.join(" "), out.stderr).into());
    }
    Ok(out.stdout)
}

/// Runs `f` on another thread and gives its result, or `None` after `secs` seconds (the
/// thread is left to finish on its own).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// A small deterministic generator (xorshift), so the hostile inputs are the same on
/// every run.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The first primes, for trial division.
fn small_primes(limit: u32) -> Vec<u32> {
    (3..limit)
        .step_by(2)
        .filter(|n| {
            (3..)
                .step_by(2)
                .take_while(|d| d * d <= *n)
                .all(|d| n % d != 0)
        })
        .collect()
}

/// `n` (big-endian) modulo a small number.
fn rem(n: &[u8], m: u32) -> u32 {
    n.iter()
        .fold(0u64, |r, b| (r * 256 + u64::from(*b)) % u64::from(m)) as u32
}

/// A `bits`-bit odd number p with p = 3 (mod 4) such that neither p nor (p - 1) / 2 has a
/// prime factor below 20 000: what a trial division cannot refuse, so OpenSSL's `DH_check`
/// goes on to Miller-Rabin rounds on both.
fn hard_composite(bits: usize, seed: u64) -> Vec<u8> {
    let primes = small_primes(20_000);
    let mut rng = Xorshift(seed);
    loop {
        let mut p: Vec<u8> = (0..bits / 8).map(|_| rng.next() as u8).collect();
        p[0] |= 0x80;
        let last = p.len() - 1;
        p[last] |= 0x03;
        // (p - 1) / 2: p shifted right by one bit.
        let mut q = Vec::with_capacity(p.len());
        let mut carry = 0u8;
        for b in &p {
            q.push((b >> 1) | carry);
            carry = (b & 1) << 7;
        }
        if primes.iter().all(|s| rem(&p, *s) != 0 && rem(&q, *s) != 0) {
            return p;
        }
    }
}

/// PKCS#3 `DHParameter` DER: SEQUENCE { p, g }.
fn dh_parameter_der(p: &[u8], g: u8) -> Vec<u8> {
    let mut p_int = Vec::new();
    if p[0] & 0x80 != 0 {
        p_int.push(0);
    }
    p_int.extend_from_slice(p);
    let mut body = tlv(0x02, &p_int);
    body.extend(tlv(0x02, &[g]));
    tlv(0x30, &body)
}

// ----- Diffie-Hellman parameters ------------------------------------------------------

// Was a defect (round 37): `SslDiffieHellmanParameters::from_encoded` has no upper bound on the prime: a
// 4 KiB file holding a 32768-bit p (no small factor in p or (p - 1) / 2) keeps
// OpenSSL's `DH_check` busy for about 15 s (cert/dh.rs `openssl_check`; `openssl dhparam
// -check` takes as long), and a p over OpenSSL's OPENSSL_DH_MAX_MODULUS_BITS (10 000) can
// never be used by a DHE handshake anyway (DH_generate_key refuses it). Refuse p over
// 10 000 bits as `UnsafeParametersError` before any primality test.
#[test]
fn dh_parameters_with_a_huge_prime_are_refused_at_once() -> TestResult {
    let der = dh_parameter_der(&hard_composite(32768, 0x5eed_d4a1), 2);
    assert!(
        der.len() < 4200,
        "the hostile input is small: {} bytes",
        der.len()
    );
    let started = Instant::now();
    let verdict = within(60, move || {
        SslDiffieHellmanParameters::from_encoded(&der).error()
    });
    let took = started.elapsed();
    assert_eq!(
        verdict,
        Some(DhError::UnsafeParametersError),
        "a 32768-bit composite p must be refused"
    );
    assert!(
        took < Duration::from_secs(3),
        "4 KiB of DH parameters took {took:?} to refuse"
    );
    Ok(())
}

// ----- Keys ---------------------------------------------------------------------------

/// The size `openssl pkey -text -noout` prints for a key file (`Private-Key: (1024 bit)`,
/// `DH Private-Key: (2048 bit)`, `Public-Key: (1024 bit)`).
fn openssl_key_bits(dir: &Path, args: &[&str]) -> AnyResult<u32> {
    let text = openssl(dir, args)?;
    let start = text
        .find("Key: (")
        .ok_or_else(|| format!("no key size in `openssl pkey` output:\n{text}"))?;
    let rest = &text[start + "Key: (".len()..];
    let end = rest.find(' ').ok_or("no key size")?;
    Ok(rest[..end].parse()?)
}

// Was a defect (round 37): a DSA or DH key has `length()` 0 (cert/key_info.rs `other_algorithm`: "0 when
// this library cannot tell") where `openssl pkey -text` prints 1024 and 2048 bits and
// Qt's `QSslKey::length()` is the size of p; our own `public_key_summary()` of the DSA
// certificate says "DSA 1024" while its `public_key().length()` says 0. Read the size of
// p (the first INTEGER of the algorithm parameters) for these keys, as
// `public_key_summary` already does.
#[test]
fn dsa_and_dh_keys_have_the_size_openssl_prints() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DSA",
            "-pkeyopt",
            "dsa_paramgen_bits:1024",
            "-pkeyopt",
            "dsa_paramgen_q_bits:160",
            "-out",
            "dsap.pem",
        ],
    )?;
    openssl(d, &["genpkey", "-paramfile", "dsap.pem", "-out", "dsa.pem"])?;
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "dsa.pem",
            "-subj",
            "/CN=dsa.example",
            "-days",
            "1",
            "-sha256",
            "-out",
            "dsacert.pem",
        ],
    )?;
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "group:ffdhe2048",
            "-out",
            "dh.pem",
        ],
    )?;
    for file in ["dsa.pem", "dh.pem"] {
        let theirs = openssl_key_bits(d, &["pkey", "-in", file, "-text", "-noout"])?;
        let key = SslKey::from_file(d.join(file), None)?;
        assert_eq!(key.algorithm(), KeyAlgorithm::Opaque, "{file}");
        assert_eq!(
            key.length(),
            theirs,
            "{file}: length() against openssl pkey"
        );
        // The public half as a SubjectPublicKeyInfo.
        openssl(d, &["pkey", "-in", file, "-pubout", "-out", "pub.pem"])?;
        let pub_bits =
            openssl_key_bits(d, &["pkey", "-pubin", "-in", "pub.pem", "-text", "-noout"])?;
        let public_key = SslKey::from_file(d.join("pub.pem"), None)?;
        assert_eq!(public_key.length(), pub_bits, "{file}: public key length()");
    }
    let cert = SslCertificate::from_file(d.join("dsacert.pem"))?.remove(0);
    assert_eq!(cert.public_key_summary(), "DSA 1024");
    let public = cert
        .public_key()
        .ok_or("the DSA certificate's key does not read")?;
    assert_eq!(public.length(), 1024, "the certificate's DSA key length()");
    Ok(())
}

// ----- Certificates from a path -------------------------------------------------------

/// A self-signed certificate (rcgen, ECDSA P-256) for `name`.
fn certificate(name: &str) -> AnyResult<SslCertificate> {
    let key = rcgen::KeyPair::generate()?;
    let params = rcgen::CertificateParams::new(vec![name.to_string()])?;
    let cert = params.self_signed(&key)?;
    Ok(SslCertificate::from_der(cert.der())?)
}

// Was a defect (round 37): `SslCertificate::from_path` (Qt's `fromPath` with `PatternSyntax::Wildcard`)
// knows `*` and `?` only: a pattern with a character class (`ca[12].pem`, `ca[!3].pem`),
// which Qt's wildcard syntax (QRegularExpression::wildcardToRegularExpression) reads as
// one of / none of those characters, is taken for a plain file name and fails as "file
// not found" (cert/path.rs `certificates_from_path` and `wildcard_match`), where Qt gives
// the certificates of ca1.pem and ca2.pem.
#[test]
fn from_path_reads_a_character_class_as_qt_does() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let one = certificate("one.example")?;
    let two = certificate("two.example")?;
    let three = certificate("three.example")?;
    std::fs::write(d.join("ca1.pem"), one.to_pem())?;
    std::fs::write(d.join("ca2.pem"), two.to_pem())?;
    std::fs::write(d.join("ca3.pem"), three.to_pem())?;
    assert_eq!(
        SslCertificate::from_path(d.join("ca[12].pem"))?,
        vec![one.clone(), two.clone()]
    );
    assert_eq!(
        SslCertificate::from_path(d.join("ca[!3].pem"))?,
        vec![one.clone(), two.clone()]
    );
    assert_eq!(
        SslCertificate::from_path(d.join("ca[2-3].pem"))?,
        vec![two, three]
    );
    assert!(SslCertificate::from_path(d.join("ca[4].pem"))?.is_empty());
    Ok(())
}
