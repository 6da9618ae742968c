//! Round 35 review (Q) of the newest changes: Qt's certificate blocklist (evasion and
//! misfires), the sessions of an accepted connection that ends with a fatal alert, and
//! the chain an OpenSSL server reports for a client it refused or accepted. Both backends
//! (`SSLSOCKET_BACKEND=openssl` for the second run); real peers on 127.0.0.1 (ours, raw
//! rustls), certificates made at test time, every wait bounded.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    PeerVerifyMode, SslCertificate, SslConfiguration, SslError, SslErrorKind, SslKey, SslProtocol,
};
use support::chains::{self, cert, leaf, leaf_params, root, root_with, sub_ca_with, Ca};
use support::raw::{joined, ThreadResult};
use support::{active_backend, trusting, Blocking, ClientDriver, Issued, Pki, Tokio};
use tokio_rustls::rustls;

type BoxError = Box<dyn std::error::Error>;
type TestResult = Result<(), BoxError>;
type BoxResult<T> = Result<T, BoxError>;

const WAIT: Duration = Duration::from_secs(10);

fn boxed(e: impl std::fmt::Display) -> BoxError {
    e.to_string().into()
}

fn kinds(errors: &[SslError]) -> Vec<SslErrorKind> {
    errors.iter().map(SslError::error).collect()
}

/// The fake login.live.com of the Comodo incident: Qt's list has its serial with that CN.
const LIVE_SERIAL: [u8; 16] = [
    0xb0, 0xb7, 0x13, 0x3e, 0xd0, 0x96, 0xf9, 0xb5, 0x6f, 0xae, 0x91, 0xc8, 0x74, 0xbd, 0x3a, 0xc0,
];

/// A leaf `login.live.com` under `root` with the listed serial (a server leaf that also
/// says clientAuth, so it serves on either side).
fn listed_leaf(root: &Ca) -> BoxResult<(Vec<u8>, KeyPair)> {
    leaf(root, "login.live.com", |p| {
        p.serial_number = Some(LIVE_SERIAL.to_vec().into());
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
    })
}

// ----- the blocklist ----------------------------------------------------------------------

// Was a defect (round 35): both backends, blocking client: a server showing a certificate on Qt's blocklist
// (serial b0:b7:...:c0, CN login.live.com, under a trusted root) is accepted by a client in
// `VerifyNone` mode, with no error at all. Qt checks the blocklist before and regardless
// of the verify mode (qsslsocket_openssl.cpp startHandshake: "check the whole chain for
// blacklisting" runs before `doVerifyPeer` is computed, and its errors go through
// checkSslErrors, which aborts unless they were ignored), so a VerifyNone (or QueryPeer)
// socket still fails on a DigiNotar/Comodo certificate. Observed: encrypted, errors [].
// Cause: verify/policy.rs:128 `ignores_outcome` (VerifyNone/QueryPeer) makes `judge`
// accept every error, the blocklist's included, and core/verification.rs:146
// `reports_errors` hides them all in VerifyNone. Right: in
// every verify mode, CertificateBlacklisted is reported and refuses the peer unless the
// application ignores it (as pins already do), or document the difference.
#[test]
fn a_listed_server_certificate_fails_a_verify_none_client() -> TestResult {
    let root = root("R35d blocklist root")?;
    let (der, key) = listed_leaf(&root)?;
    assert!(cert(&der)?.is_blacklisted());
    let outcome = chains::handshake(&[&root.der], vec![der], &key, "login.live.com", |s| {
        let _ = s.set_peer_verify_mode(PeerVerifyMode::VerifyNone);
    })?;
    assert!(
        !outcome.encrypted
            && kinds(&outcome.errors).contains(&SslErrorKind::CertificateBlacklisted),
        "{}: a VerifyNone client accepted a blocklisted server certificate: encrypted {}, \
         errors {:?}",
        active_backend(),
        outcome.encrypted,
        kinds(&outcome.errors)
    );
    Ok(())
}

// Was a defect (round 35): both backends, blocking SslServer in Qt's default server mode (`QueryPeer`,
// AutoVerifyPeer on a server): a client presenting a certificate on Qt's blocklist (under
// the CA the server trusts) is accepted: encrypted, with [CertificateBlacklisted] listed
// and nothing else. Qt fails it (the blocklist is checked whatever the verify mode, see
// above). Same cause: verify/policy.rs:128 `ignores_outcome`. Right: the client refused
// unless the error is ignored.
#[test]
fn a_listed_client_certificate_fails_a_query_peer_server() -> TestResult {
    let pki = Pki::new()?;
    let root = root("R35d client blocklist root")?;
    let (der, key) = listed_leaf(&root)?;
    let mut server_config = support::serving(&pki.leaf("localhost", &["localhost"])?)?;
    server_config
        .set_ca_certificates(vec![SslCertificate::from_der(&root.der)?])
        .set_peer_verify_mode(PeerVerifyMode::QueryPeer);
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let mut client_config = SslConfiguration::default();
    client_config
        .set_local_certificate_chain(vec![SslCertificate::from_der(&der)?])
        .set_private_key(SslKey::from_der(&key.serialize_der())?)
        .set_peer_verify_mode(PeerVerifyMode::VerifyNone);
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("127.0.0.1", server.local_addr().port());
    let _ = client.wait_for_encrypted(WAIT);
    let (encrypted, errors) = match server.next_connection(WAIT)? {
        Ok(mut accepted) => {
            let seen = (
                accepted.is_encrypted(),
                accepted.ssl_handshake_errors().to_vec(),
            );
            accepted.abort();
            seen
        }
        Err(failed) => (false, failed.ssl_handshake_errors().to_vec()),
    };
    client.abort();
    assert!(
        !encrypted && kinds(&errors).contains(&SslErrorKind::CertificateBlacklisted),
        "{}: a QueryPeer server accepted a blocklisted client certificate: encrypted \
         {encrypted}, errors {:?}",
        active_backend(),
        kinds(&errors)
    );
    Ok(())
}

// Held: a listed certificate anywhere in the path is reported, on both backends: as an
// intermediate the server sends (DigiNotar Cyber CA, 07:27:10:0d) and as the trust anchor
// the server does not send (DigiNotar Root CA, 46:9c:2c:af); each gets
// CertificateBlacklisted on that certificate and the VerifyPeer client is refused. An
// ordinary chain under the same kind of names with other serials is not flagged.
#[test]
fn a_listed_intermediate_or_anchor_is_reported() -> TestResult {
    // A listed intermediate, sent.
    let root_a = root("R35d anchor A")?;
    let listed_ca = sub_ca_with(&root_a, "DigiNotar Cyber CA", None, |p| {
        p.serial_number = Some(vec![0x07, 0x27, 0x10, 0x0d].into());
    })?;
    assert!(cert(&listed_ca.der)?.is_blacklisted());
    let (leaf_a, key_a) = leaf(&listed_ca, "localhost", |_| {})?;
    // The leaf names the listed CA as its issuer, but its own serial is not listed.
    assert!(!cert(&leaf_a)?.is_blacklisted());
    let outcome = chains::handshake(
        &[&root_a.der],
        vec![leaf_a, listed_ca.der.clone()],
        &key_a,
        "localhost",
        |_| {},
    )?;
    let expected = chains::on(SslErrorKind::CertificateBlacklisted, &listed_ca.der)?;
    assert!(
        !outcome.encrypted && outcome.errors.contains(&expected),
        "{}: listed intermediate: encrypted {}, errors {:?}",
        active_backend(),
        outcome.encrypted,
        chains::kinds_on(&outcome.errors)
    );

    // A listed anchor, trusted and not sent.
    let root_b = root_with("DigiNotar Root CA", |p| {
        p.serial_number = Some(vec![0x46, 0x9c, 0x2c, 0xaf].into());
    })?;
    assert!(cert(&root_b.der)?.is_blacklisted());
    let (leaf_b, key_b) = leaf(&root_b, "localhost", |_| {})?;
    let outcome = chains::handshake(&[&root_b.der], vec![leaf_b], &key_b, "localhost", |_| {})?;
    let expected = chains::on(SslErrorKind::CertificateBlacklisted, &root_b.der)?;
    assert!(
        !outcome.encrypted && outcome.errors.contains(&expected),
        "{}: listed anchor: encrypted {}, errors {:?}",
        active_backend(),
        outcome.encrypted,
        chains::kinds_on(&outcome.errors)
    );

    // Not listed: the same CN with another serial.
    let root_c = root_with("DigiNotar Root CA", |p| {
        p.serial_number = Some(vec![0x46, 0x9c, 0x2c, 0xb0].into());
    })?;
    assert!(!cert(&root_c.der)?.is_blacklisted());
    let (leaf_c, key_c) = leaf(&root_c, "localhost", |_| {})?;
    let outcome = chains::handshake(&[&root_c.der], vec![leaf_c], &key_c, "localhost", |_| {})?;
    assert!(
        outcome.encrypted && outcome.errors.is_empty(),
        "{}: an unlisted serial was flagged: {:?}",
        active_backend(),
        chains::kinds_on(&outcome.errors)
    );
    Ok(())
}

/// `der` with its outermost SEQUENCE length re-encoded in a longer (BER, not DER) form:
/// the bytes the signature covers (the TBSCertificate) are untouched.
fn with_long_outer_length(der: &[u8]) -> BoxResult<Vec<u8>> {
    let (len, rest) = match der {
        [0x30, 0x81, l, rest @ ..] => (usize::from(*l), rest),
        [0x30, 0x82, h, l, rest @ ..] => ((usize::from(*h) << 8) | usize::from(*l), rest),
        _ => return Err("unexpected certificate header".into()),
    };
    if len != rest.len() {
        return Err("unexpected certificate length".into());
    }
    let bytes = u32::try_from(len)?.to_be_bytes();
    let mut out = vec![0x30, 0x84];
    out.extend_from_slice(&bytes);
    out.extend_from_slice(rest);
    Ok(out)
}

// Was a defect (round 35): `SslCertificate::is_blacklisted` (both backends; no handshake): a listed
// certificate (login.live.com, b0:b7:...:c0) whose outermost SEQUENCE length is
// re-encoded in a longer BER form (30 84 00 00 xx xx instead of 30 82 xx xx; the
// TBSCertificate, and so the signature, unchanged: anyone holding a real listed
// certificate can make these bytes) is read by `SslCertificate::from_der`, which even
// reports its serial, but `is_blacklisted()` says false: the blocklist's own DER walk
// fails and fails open. Qt (OpenSSL's d2i_X509 takes the long form) reports it listed.
// Cause: verify/blocklist.rs:132 `serial_value` reads the headers with the strict `der`
// crate (non-minimal length refused -> None) and verify/blocklist.rs:162-163 `is_listed`
// returns false on None. Right: take the serial from the parse every other
// accessor uses (`serial_number_der()`, x509-parser), or treat an unreadable serial as an
// error (fail closed) rather than "not listed". In a handshake the bytes are refused
// anyway (next test), but `is_blacklisted` is public API and a certificate store or a
// pre-check built on it is evaded.
#[test]
fn a_listed_certificate_with_a_ber_outer_length_is_still_listed() -> TestResult {
    let root = root("R35d BER root")?;
    let (der, _key) = listed_leaf(&root)?;
    let ber = with_long_outer_length(&der)?;
    if let Ok(parsed) = SslCertificate::from_der(&ber) {
        assert!(
            parsed.is_null() || parsed.is_blacklisted(),
            "a listed certificate with a BER outer length reads (serial {}) but is not \
             listed",
            parsed.serial_number()
        );
    }
    Ok(())
}

// Held: a peer sending that BER-encoded listed certificate is refused on both backends
// (VerifyPeer): rustls lists UnspecifiedError (webpki's BadDer; no CertificateBlacklisted,
// the walk failed), OpenSSL CertificateBlacklisted (it hands us its re-encoded DER).
#[test]
fn a_listed_certificate_with_a_ber_outer_length_is_refused_in_a_handshake() -> TestResult {
    let root = root("R35d BER root 2")?;
    let (der, key) = listed_leaf(&root)?;
    let ber = with_long_outer_length(&der)?;
    let outcome = chains::handshake(&[&root.der], vec![ber], &key, "login.live.com", |_| {})?;
    assert!(
        !outcome.encrypted && !outcome.errors.is_empty(),
        "{}: a BER-encoded listed certificate was accepted: {:?}",
        active_backend(),
        chains::kinds_on(&outcome.errors)
    );
    Ok(())
}

// Was a defect (round 35): `SslCertificate::is_blacklisted` (both backends; no handshake involved): a
// certificate whose serial is DER-encoded as the negative integer -0x41 (the one byte
// 0xbf) and whose CN is "MD5 Collisions Inc. (http://www.phreedom.org/md5)" (Qt's entry
// "41") is not reported listed. Qt reads the serial through OpenSSL's ASN1_INTEGER, whose
// data is the magnitude (c2i_ASN1_INTEGER), so its serialNumber() is "41" and
// isBlacklisted() is true. Cause: verify/blocklist.rs:150-155 `serial_value` compares the
// raw two's-complement content bytes. Right: compare the magnitude of a negative serial
// as Qt does (or refuse a negative serial outright: RFC 5280 requires a positive one,
// webpki refuses it, OpenSSL does not). Low impact: the signed bytes of a real listed
// certificate cannot be changed; it is an evasion only for a holder of a listed CA's key.
#[test]
fn a_negative_serial_with_a_listed_magnitude_is_listed_as_in_qt() -> TestResult {
    let name = "MD5 Collisions Inc. (http://www.phreedom.org/md5)";
    let key = chains::new_key()?;
    let mut params: CertificateParams = leaf_params("localhost", |p| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.subject_alt_names = Vec::new();
        p.serial_number = Some(vec![0x41].into());
    })?;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    let der = params.self_signed(&key)?.der().to_vec();
    // The positive form is listed (the control).
    assert!(cert(&der)?.is_blacklisted());
    // version [0] 3, then the serial 02 01 41: made 02 01 bf (-0x41).
    let pattern = [0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x41];
    let at = der
        .windows(pattern.len())
        .position(|w| w == pattern)
        .ok_or("serial not found")?;
    let mut negative = der.clone();
    let byte = negative
        .get_mut(at + pattern.len() - 1)
        .ok_or("serial byte")?;
    *byte = 0xbf;
    let parsed = SslCertificate::from_der(&negative)?;
    assert!(
        parsed.is_blacklisted(),
        "serial -0x41 (Qt: serialNumber \"41\", listed): ours {} and not listed",
        parsed.serial_number()
    );
    Ok(())
}

// ----- sessions after a fatal alert ----------------------------------------------------------

/// A record-shaped run of bytes that does not decrypt (application data, 32 bytes).
fn bad_record() -> Vec<u8> {
    let mut bad = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    bad.extend_from_slice(&[0x41; 0x20]);
    bad
}

/// Accepts one connection within `WAIT`.
fn accept_within(listener: &TcpListener) -> ThreadResult<TcpStream> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + WAIT;
    loop {
        match listener.accept() {
            Ok((tcp, _)) => {
                tcp.set_nonblocking(false).map_err(|e| e.to_string())?;
                tcp.set_read_timeout(Some(WAIT))
                    .map_err(|e| e.to_string())?;
                tcp.set_write_timeout(Some(WAIT))
                    .map_err(|e| e.to_string())?;
                return Ok(tcp);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err("no client came".into());
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A raw rustls TLS 1.3 server (stateful tickets, 2 per connection) serving `leaf`, one
/// connection per entry of `garbage`: after the handshake and a `hello` line it either
/// reads to the end and closes cleanly (`false`) or writes a record that does not decrypt
/// (`true`); the result is whether each connection was resumed.
fn raw_tls13_server(
    leaf: &Issued,
    garbage: Vec<bool>,
) -> BoxResult<(u16, thread::JoinHandle<ThreadResult<Vec<bool>>>)> {
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = leaf
        .chain_der
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key_der.clone().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.send_tls13_tickets = 2;
    let config = Arc::new(config);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let worker = thread::spawn(move || -> ThreadResult<Vec<bool>> {
        let mut resumed = Vec::new();
        for bad in garbage {
            let mut tcp = accept_within(&listener)?;
            let mut conn =
                rustls::ServerConnection::new(Arc::clone(&config)).map_err(|e| e.to_string())?;
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
            }
            resumed.push(conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed));
            conn.writer()
                .write_all(b"hello\n")
                .map_err(|e| e.to_string())?;
            while conn.wants_write() {
                conn.write_tls(&mut tcp).map_err(|e| e.to_string())?;
            }
            if bad {
                let _ = tcp.write_all(&bad_record());
                let mut sink = Vec::new();
                let _ = tcp.read_to_end(&mut sink);
            } else {
                let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
                let mut sink = Vec::new();
                let _ = tls.read_to_end(&mut sink);
                conn.send_close_notify();
                let _ = conn.write_tls(&mut tcp);
            }
        }
        Ok(resumed)
    });
    Ok((port, worker))
}

/// One connection of our client over `D`: reads the `hello` line (the tickets came
/// before it); when `bad`, waits for the bad record to fail the connection. Whether it
/// was resumed.
fn one_connection<D: ClientDriver>(
    port: u16,
    configuration: &SslConfiguration,
    bad: bool,
) -> BoxResult<bool> {
    let mut client = D::connect_encrypted("localhost", port, configuration.clone(), WAIT)
        .map_err(|(e, _)| boxed(format!("{}: connecting: {e}", D::NAME)))?;
    let line = client.next_line(64, WAIT).map_err(boxed)?;
    assert_eq!(line, b"hello\n".to_vec(), "{}", D::NAME);
    let resumed = client.socket().is_session_resumed();
    if bad {
        assert!(
            client.wait_for_ready_read(WAIT).is_err(),
            "{}: the bad record did not fail the connection",
            D::NAME
        );
    } else {
        // The clean end: our close_notify, the server's answer.
        let _ = client.disconnect(WAIT);
    }
    drop(client);
    Ok(resumed)
}

fn others_tickets_survive<D: ClientDriver>() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    // 1: clean (its socket leaves two tickets); 2: resumes one of them, gets two of its
    // own, then fails with a fatal alert (we send bad_record_mac); 3: clean.
    let plan = vec![false, true, false];
    let (port, server) = raw_tls13_server(&leaf, plan.clone())?;
    let configuration = trusting(&pki)?;
    let mut ours = Vec::new();
    for bad in plan {
        ours.push(one_connection::<D>(port, &configuration, bad)?);
        thread::sleep(Duration::from_millis(50));
    }
    let theirs = joined(server)?.map_err(boxed)?;
    assert_eq!(ours, theirs, "both ends agree on what was resumed");
    assert_eq!(
        ours.get(1),
        Some(&true),
        "{} {}: resumption does not work in this setup: {ours:?}",
        active_backend(),
        D::NAME
    );
    assert_eq!(
        ours.get(2),
        Some(&true),
        "{} {}: the first connection's unused ticket (a socket that ended cleanly) was \
         forgotten because another connection to the same server failed with a fatal \
         alert: {ours:?}",
        active_backend(),
        D::NAME
    );
    Ok(())
}

// Was a defect (round 35): rustls backend, blocking driver (tokio below): a client connection that was
// accepted and then ends with a fatal alert forgets every TLS 1.3 ticket the
// configuration holds for that server, the ones other sockets received on connections
// that ended cleanly included, not only its own. So anyone who can make one connection
// fail after the handshake (a network attacker flipping one bit of a record: we send
// bad_record_mac) wipes the resumption state of every socket sharing the configuration.
// The change's own comment (core/verification.rs:384-388, "other sockets' sessions of
// that peer stay") and RFC 5246 §7.2.2 ("the session ... associated with a failed
// connection") ask for the failed connection's sessions only; the server side
// (ConnectionServerSessions::confirmed) already forgets only the keys that connection
// stored. Cause: core/verification.rs:389 confirm_peer(None) -> backend/rustls/handshake.rs
// :211 -> sessions.rs:219 `ConnectionClientSessions::confirmed`, whose Refused path calls
// `ClientSessions::purge(server_name)` (sessions.rs:112). Observed: resumed [false,
// true, false], expected [false, true, true]. Right: after a failure of an
// accepted connection drop what this connection held or stored (track the tickets it
// inserted, as the server store tracks `stored`), leave the others. (The OpenSSL backend
// keeps one session per peer, the failed connection's own, so forgetting it is right
// there; this test then checks nothing and passes.)
#[test]
fn a_fatal_alert_keeps_other_sockets_tickets_blocking() -> TestResult {
    if active_backend() == "openssl" {
        return Ok(());
    }
    others_tickets_survive::<Blocking>()
}

// Was a defect (round 35): rustls backend, tokio driver: as above, the tickets of a socket that ended
// cleanly are forgotten when another connection of the configuration to the same server
// fails with a fatal alert. Same cause (backend/rustls/sessions.rs:219 purge by server
// name).
#[test]
fn a_fatal_alert_keeps_other_sockets_tickets_tokio() -> TestResult {
    if active_backend() == "openssl" {
        return Ok(());
    }
    others_tickets_survive::<Tokio>()
}

// ----- the chain a server reports for its client ----------------------------------------------

/// One case: name, server mode, the chain sent, its key, whether the server accepts.
type Case<'a> = (&'a str, PeerVerifyMode, &'a [Vec<u8>], &'a KeyPair, bool);

/// Our blocking server in `mode` (trusting only `trusted`), our client showing `chain`
/// over `protocol`: (encrypted, errors, the chain the server reports).
fn server_view(
    mode: PeerVerifyMode,
    trusted: &[u8],
    chain: &[Vec<u8>],
    key: &KeyPair,
    protocol: SslProtocol,
) -> BoxResult<(bool, Vec<SslError>, Vec<SslCertificate>)> {
    let pki = Pki::new()?;
    let mut server_config = support::serving(&pki.leaf("localhost", &["localhost"])?)?;
    server_config
        .set_ca_certificates(vec![SslCertificate::from_der(trusted)?])
        .set_peer_verify_mode(mode);
    let server = SslServer::listen("127.0.0.1:0", server_config)?;
    let mut client_config = SslConfiguration::default();
    client_config
        .set_local_certificate_chain(
            chain
                .iter()
                .map(|der| SslCertificate::from_der(der))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .set_private_key(SslKey::from_der(&key.serialize_der())?)
        .set_peer_verify_mode(PeerVerifyMode::VerifyNone)
        .set_protocol(protocol);
    let mut client = SslSocket::with_configuration(client_config);
    client.connect_to_host_encrypted("127.0.0.1", server.local_addr().port());
    let _ = client.wait_for_encrypted(WAIT);
    let seen = match server.next_connection(WAIT)? {
        Ok(mut accepted) => {
            let seen = (
                accepted.is_encrypted(),
                accepted.ssl_handshake_errors().to_vec(),
                accepted.peer_certificate_chain().to_vec(),
            );
            accepted.abort();
            seen
        }
        Err(failed) => (
            false,
            failed.ssl_handshake_errors().to_vec(),
            failed.peer_certificate_chain().to_vec(),
        ),
    };
    client.abort();
    Ok(seen)
}

// Held: the chain a server reports for its client is exactly what the client sent, in
// order, on both backends, TLS 1.2 and 1.3: a refused client (VerifyPeer, an untrusted
// root the client does not send) and an accepted one (QueryPeer, the same chain), with an
// unrelated extra certificate the client appended; never the anchor the server holds
// (the trusted case: a chain under the server's own root, root not sent).
#[test]
fn the_server_reports_the_client_chain_as_sent() -> TestResult {
    let untrusted = root("R35d untrusted client root")?;
    let trusted = root("R35d trusted client root")?;
    let client_leaf = |ca: &Ca| {
        leaf(ca, "client.example", |p| {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        })
    };
    let mid = sub_ca_with(&untrusted, "R35d client intermediate", None, |_| {})?;
    let (leaf_u, key_u) = client_leaf(&mid)?;
    let stranger = root("R35d stranger")?;
    let sent_u = vec![leaf_u, mid.der.clone(), stranger.der.clone()];
    let trusted_mid = sub_ca_with(&trusted, "R35d trusted intermediate", None, |_| {})?;
    let (leaf_t, key_t) = client_leaf(&trusted_mid)?;
    let sent_t = vec![leaf_t, trusted_mid.der.clone()];
    for protocol in [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3] {
        let cases: [Case<'_>; 3] = [
            (
                "refused",
                PeerVerifyMode::VerifyPeer,
                &sent_u,
                &key_u,
                false,
            ),
            ("queried", PeerVerifyMode::QueryPeer, &sent_u, &key_u, true),
            ("trusted", PeerVerifyMode::VerifyPeer, &sent_t, &key_t, true),
        ];
        for (what, mode, sent, key, accepted) in cases {
            let (encrypted, errors, chain) = server_view(mode, &trusted.der, sent, key, protocol)?;
            assert_eq!(
                encrypted,
                accepted,
                "{} {protocol:?} {what}: errors {:?}",
                active_backend(),
                kinds(&errors)
            );
            let reported: Vec<Vec<u8>> = chain.iter().map(|c| c.der().to_vec()).collect();
            assert!(
                reported == sent,
                "{} {protocol:?} {what}: the server reports {:?}, the client sent {:?}",
                active_backend(),
                chain
                    .iter()
                    .map(|c| c.subject_rfc4514())
                    .collect::<Vec<_>>(),
                sent.iter()
                    .map(|d| cert(d).map(|c| c.subject_rfc4514()).unwrap_or_default())
                    .collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}
