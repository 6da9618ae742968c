//! Round 35: internationalised host names, as Qt's `QUrl::toAce` treats them
//! (qt-behaviors.md, `wildcardCertificateNames` and `isMatchingHostname`: U-label and
//! A-label forms compare after normalisation; `*.SCHÄUFELE.DE` matches `WWW.SCHÄUFELE.DE`,
//! `www.xn--schufele-2za.de` and `föo.schäufele.de`, never two labels deep or a
//! look-alike). Round 34 refused every Unicode peer name; now the peer name goes through
//! UTS 46 where the handshake takes it, so SNI, the host check, the name constraints and
//! the session cache all see its A-labels. Certificates are made here with rcgen (a
//! common name is a UTF8String, so it can hold U-labels; a dNSName cannot). Run with
//! `cargo test -p sslsocket --all-features --test idn_round35`, and again with
//! `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::sync::Mutex;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, GeneralSubtree, NameConstraints, SanType};
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::{SslCertificate, SslConfiguration, SslError, SslErrorKind, SslKey, SslSocketExt};
use support::chains::*;

use SslErrorKind::*;

const WAIT: Duration = Duration::from_secs(10);

/// `SslCertificate::verify` reads the process default configuration: one call at a time.
static DEFAULT_CONFIGURATION: Mutex<()> = Mutex::new(());

fn certificate_verify(trusted: &Ca, chain: &[u8], host: &str) -> BoxResult<Vec<SslErrorKind>> {
    let _one = DEFAULT_CONFIGURATION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![cert(&trusted.der)?]);
    SslConfiguration::set_default_configuration(configuration);
    Ok(SslCertificate::verify(&[cert(chain)?], Some(host))
        .iter()
        .map(SslError::error)
        .collect())
}

/// CN=`cn` and `sans` (DNS names; none: no subjectAltName extension at all).
fn named(cn: &str, sans: &[&str]) -> impl FnOnce(&mut CertificateParams) {
    let cn = cn.to_string();
    let sans: Vec<SanType> = sans
        .iter()
        .filter_map(|s| (*s).try_into().ok().map(SanType::DnsName))
        .collect();
    move |p: &mut CertificateParams| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans;
    }
}

fn listed(outcome: &Outcome) -> Vec<SslErrorKind> {
    outcome.errors.iter().map(SslError::error).collect()
}

// The conformance list's own example, a common name `*.SCHÄUFELE.DE` (no SAN), on
// `SslCertificate::verify` and in a handshake: the U-label, upper-case and A-label forms
// of one host match; two labels deep, the bare domain and a look-alike do not. On the
// OpenSSL backend, OpenSSL's own name check (which runs beside ours and compares a common
// name's UTF-8 with the A-label) refuses the U-label common name: a documented difference
// that fails closed (README); the other answers are the same.
#[test]
fn a_unicode_wildcard_common_name_matches_the_u_and_a_label_forms() -> TestResult {
    let openssl = support::backends::is_active("openssl");
    let root = root("IDN35 CN Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", named("*.SCH\u{c4}UFELE.DE", &[]))?;
    for host in [
        "WWW.SCH\u{c4}UFELE.DE",
        "www.sch\u{e4}ufele.de",
        "www.xn--schufele-2za.de",
        "f\u{f6}o.sch\u{e4}ufele.de",
        "xn--fo-fka.xn--schufele-2za.de",
    ] {
        let verify = certificate_verify(&root, &leaf_der, host)?;
        assert!(verify.is_empty(), "{host}: {verify:?}");
        let outcome = handshake(&[&root.der], vec![leaf_der.clone()], &key, host, |_| {})?;
        if openssl {
            assert_eq!(listed(&outcome), vec![HostNameMismatch], "{host}");
            assert!(!outcome.encrypted, "{host}");
        } else {
            assert!(outcome.encrypted, "{host}: {:?}", listed(&outcome));
        }
    }
    for host in [
        "a.www.sch\u{e4}ufele.de",
        "sch\u{e4}ufele.de",
        "www.schaufele.de",
        "www.sch\u{e4}ufe1e.de",
    ] {
        let verify = certificate_verify(&root, &leaf_der, host)?;
        assert_eq!(verify, vec![HostNameMismatch], "{host}");
        let outcome = handshake(&[&root.der], vec![leaf_der.clone()], &key, host, |_| {})?;
        assert!(!outcome.encrypted, "{host}");
        assert_eq!(listed(&outcome), vec![HostNameMismatch], "{host}");
    }
    Ok(())
}

// A dNSName holds the A-label (an IA5String cannot hold more); the peer name may be given
// in either form, and case or a trailing dot changes nothing.
#[test]
fn a_u_label_peer_name_matches_the_a_label_of_a_subject_alternative_name() -> TestResult {
    let root = root("IDN35 SAN Root")?;
    let (leaf_der, key) = leaf(
        &root,
        "localhost",
        named(
            "idn",
            &["xn--bcher-kva.example", "*.xn--mnchen-3ya.example"],
        ),
    )?;
    for host in [
        "b\u{fc}cher.example",
        "B\u{dc}CHER.EXAMPLE",
        "b\u{fc}cher.example.",
        "www.m\u{fc}nchen.example",
    ] {
        let verify = certificate_verify(&root, &leaf_der, host)?;
        assert!(verify.is_empty(), "{host}: {verify:?}");
        let outcome = handshake(&[&root.der], vec![leaf_der.clone()], &key, host, |_| {})?;
        assert!(outcome.encrypted, "{host}: {:?}", listed(&outcome));
    }
    // Another name in the same script is another A-label.
    let outcome = handshake(
        &[&root.der],
        vec![leaf_der],
        &key,
        "b\u{f6}cher.example",
        |_| {},
    )?;
    assert!(!outcome.encrypted);
    assert_eq!(listed(&outcome), vec![HostNameMismatch]);
    Ok(())
}

// A name IDNA refuses is no host name: the handshake does not start (fail closed), with an
// error that names the host, and `SslCertificate::verify` reports a mismatch. The cases: a
// zero-width joiner out of context (CONTEXTJ), a label beginning with a combining mark, an
// empty label, a label longer than 63 bytes once encoded, a leading hyphen and a noncharacter.
#[test]
fn a_name_idna_refuses_is_no_host_name() -> TestResult {
    let root = root("IDN35 Bad Root")?;
    let (leaf_der, key) = leaf(&root, "localhost", named("bad", &["localhost"]))?;
    let long = format!("{}.example", "\u{fc}".repeat(60));
    for host in [
        "a\u{200d}b.example",
        "\u{301}a.example",
        "b\u{fc}cher..example",
        long.as_str(),
        "-b\u{fc}cher.example",
        "b\u{fc}cher\u{ffff}.example",
    ] {
        let verify = certificate_verify(&root, &leaf_der, host)?;
        assert_eq!(verify, vec![HostNameMismatch], "{}", host.escape_default());
        let mut configuration = SslConfiguration::default();
        configuration.set_ca_certificates(vec![cert(&root.der)?]);
        let mut socket = SslSocket::with_configuration(configuration);
        let server =
            support::attack::AttackServer::start(vec![leaf_der.clone()], &key.serialize_der(), 1)?;
        socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", server.port(), host);
        let waited = socket.wait_for_encrypted(WAIT);
        assert!(waited.is_err(), "{}", host.escape_default());
        assert!(!socket.is_encrypted());
        let message = socket.error_string();
        assert!(
            message.contains("not a valid host name"),
            "{}: {message}",
            host.escape_default()
        );
        socket.abort();
    }
    Ok(())
}

// Name constraints see the A-label: a U-label peer name under a permitted A-label subtree
// connects, under an excluded one it is refused, whichever form the peer name takes.
#[test]
fn name_constraints_judge_the_a_label_of_a_unicode_peer_name() -> TestResult {
    for (constraints, allowed) in [
        (
            NameConstraints {
                permitted_subtrees: vec![GeneralSubtree::DnsName("xn--bcher-kva.example".into())],
                excluded_subtrees: Vec::new(),
            },
            true,
        ),
        (
            NameConstraints {
                permitted_subtrees: Vec::new(),
                excluded_subtrees: vec![GeneralSubtree::DnsName("xn--bcher-kva.example".into())],
            },
            false,
        ),
    ] {
        let root = root("IDN35 NC Root")?;
        let int = sub_ca_with(&root, "IDN35 NC Int", None, move |p| {
            p.name_constraints = Some(constraints);
        })?;
        let (leaf_der, key) = leaf(
            &int,
            "localhost",
            named("nc", &["www.xn--bcher-kva.example"]),
        )?;
        for host in ["www.b\u{fc}cher.example", "www.xn--bcher-kva.example"] {
            let outcome = handshake(
                &[&root.der],
                vec![leaf_der.clone(), int.der.clone()],
                &key,
                host,
                |_| {},
            )?;
            assert_eq!(outcome.encrypted, allowed, "{host}: {:?}", listed(&outcome));
        }
    }
    Ok(())
}

// The client sends the A-label as SNI (SNI is ASCII, RFC 6066), and a server whose
// name map holds a Unicode pattern serves its certificate for it.
#[test]
fn sni_carries_the_a_label_and_a_unicode_server_name_pattern_matches_it() -> TestResult {
    let root = root("IDN35 SNI Root")?;
    let (default_der, default_key) = leaf(&root, "localhost", named("default", &["localhost"]))?;
    let (idn_der, idn_key) = leaf(&root, "localhost", named("idn", &["xn--bcher-kva.example"]))?;
    let identity = |der: &[u8], key: &rcgen::KeyPair| -> BoxResult<sslsocket::SslIdentity> {
        Ok(sslsocket::SslIdentity::new(
            vec![cert(der)?],
            SslKey::from_der(&key.serialize_der())?,
        )?)
    };
    let mut serving = SslConfiguration::default();
    serving.set_local_certificate(cert(&default_der)?);
    serving.set_private_key(SslKey::from_der(&default_key.serialize_der())?);
    serving.add_server_name_certificate("B\u{dc}CHER.example", identity(&idn_der, &idn_key)?)?;
    assert!(serving
        .add_server_name_certificate("a\u{200d}b.example", identity(&idn_der, &idn_key)?)
        .is_err());
    let server = SslServer::listen("127.0.0.1:0", serving)?;
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![cert(&root.der)?]);
    let mut client = SslSocket::with_configuration(configuration);
    client.connect_to_host_encrypted_with_peer_name(
        "127.0.0.1",
        server.local_addr().port(),
        "b\u{fc}cher.example",
    );
    client.wait_for_encrypted(WAIT)?;
    let accepted = match server.next_connection(WAIT)? {
        Ok(socket) => socket,
        Err(failed) => return Err(format!("{:?}", failed.ssl_handshake_errors()).into()),
    };
    assert_eq!(
        accepted.requested_server_name(),
        Some("xn--bcher-kva.example")
    );
    let served = client
        .peer_certificate()
        .map(|c| c.der().to_vec())
        .unwrap_or_default();
    assert_eq!(served, idn_der);
    Ok(())
}

// Was a defect (round 35, in this round's own change before it landed): once a Unicode
// common name matched hosts by its A-labels, the name constraints still skipped it (they
// took only common names that are ASCII host names), so a leaf named `bücher.example`
// under a CA permitted only `corp.example` connected. Now the constraints judge the
// A-labels of a Unicode common name, as the host check compares them.
#[test]
fn name_constraints_judge_the_a_label_of_a_unicode_common_name() -> TestResult {
    let openssl = support::backends::is_active("openssl");
    for (subtree, permitted, allowed) in [
        ("corp.example", true, false),
        ("xn--bcher-kva.example", true, true),
        ("xn--bcher-kva.example", false, false),
        ("corp.example", false, true),
    ] {
        let constraints = if permitted {
            NameConstraints {
                permitted_subtrees: vec![GeneralSubtree::DnsName(subtree.into())],
                excluded_subtrees: Vec::new(),
            }
        } else {
            NameConstraints {
                permitted_subtrees: Vec::new(),
                excluded_subtrees: vec![GeneralSubtree::DnsName(subtree.into())],
            }
        };
        let root = root("IDN35 NCCN Root")?;
        let int = sub_ca_with(&root, "IDN35 NCCN Int", None, move |p| {
            p.name_constraints = Some(constraints);
        })?;
        let (leaf_der, key) = leaf(&int, "localhost", named("www.b\u{fc}cher.example", &[]))?;
        let outcome = handshake(
            &[&root.der],
            vec![leaf_der.clone(), int.der.clone()],
            &key,
            "www.b\u{fc}cher.example",
            |_| {},
        )?;
        let case = format!("{subtree} permitted {permitted}: {:?}", listed(&outcome));
        if openssl || !allowed {
            // Refused: by the constraints, or on OpenSSL by its own name check too (it
            // compares the common name's UTF-8 with the A-label).
            assert!(!outcome.encrypted, "{case}");
            if !allowed {
                assert!(
                    outcome.errors.iter().any(|e| e.error() != HostNameMismatch),
                    "{case}"
                );
            }
        } else {
            assert!(outcome.encrypted, "{case}");
        }
        // `SslCertificate::verify` judges alike, on every backend.
        let _one = DEFAULT_CONFIGURATION
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut configuration = SslConfiguration::default();
        configuration.set_ca_certificates(vec![cert(&root.der)?]);
        SslConfiguration::set_default_configuration(configuration);
        let errors = SslCertificate::verify(
            &[cert(&leaf_der)?, cert(&int.der)?],
            Some("www.b\u{fc}cher.example"),
        );
        assert_eq!(errors.is_empty(), allowed, "verify, {case}: {errors:?}");
    }
    Ok(())
}

// Found in review (round 35): a host IDNA refuses was still handed to the resolver as
// UTF-8. Now it is not looked up at all: `HostNotFoundError`, as Qt, on both drivers.
#[test]
fn a_host_idna_refuses_is_not_looked_up() -> TestResult {
    let mut socket = SslSocket::with_configuration(SslConfiguration::default());
    socket.connect_to_host_encrypted("a\u{200d}b.example", 443);
    let blocking = socket.wait_for_connected(WAIT);
    assert_eq!(
        blocking.map_err(|e| e.socket_error()),
        Err(sslsocket::SocketError::HostNotFoundError)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tokio = runtime.block_on(sslsocket::tokio::SslSocket::connect_to_host_encrypted(
        "a\u{200d}b.example",
        443,
        SslConfiguration::default(),
    ));
    assert_eq!(
        tokio.map(|_| ()).map_err(|e| e.error().socket_error()),
        Err(sslsocket::SocketError::HostNotFoundError)
    );
    Ok(())
}
