//! Review round 37 (L3): this round's own changes to server-side resumption (the forgetting
//! of a resumed session whose connection failed), the OpenSSL helper crate's session tags
//! and the verifier's time and self-signature rules, attacked. Our own servers on
//! 127.0.0.1, `openssl s_client` as the hostile client; certificates made at test time;
//! every wait bounded.

mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use sslsocket::blocking::SslServer;
use sslsocket::prelude::*;
use sslsocket::{PeerVerifyMode, SslCertificate, SslConfiguration, SslProtocol};
use support::raw::ThreadResult;
use support::{active_backend, os_args, serving, OpensslClient, Pki, PskHooks, PSK, PSK_HEX};

type BoxError = Box<dyn std::error::Error>;
type TestResult = Result<(), BoxError>;

const WAIT: Duration = Duration::from_secs(10);

/// A server's port and the thread that reports what it saw of each connection.
type Serving = (u16, thread::JoinHandle<ThreadResult<Vec<Seen>>>);

/// What our server saw of one connection.
#[derive(Debug, Clone)]
struct Seen {
    encrypted: bool,
    resumed: bool,
    /// The leaf the connection reports for its peer (DER).
    peer: Option<Vec<u8>>,
}

/// Our blocking server of `configuration` (with `hooks` on every connection), `connections`
/// connections, each sent `hello\n` and read until its end.
fn our_server(
    configuration: SslConfiguration,
    hooks: Option<std::sync::Arc<dyn sslsocket::SslHooks>>,
    connections: usize,
) -> Result<Serving, BoxError> {
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    if let Some(hooks) = hooks {
        server.set_hooks(hooks);
    }
    let port = server.local_addr().port();
    let worker = thread::spawn(move || -> ThreadResult<Vec<Seen>> {
        let mut seen = Vec::new();
        for _ in 0..connections {
            match server.next_connection(WAIT).map_err(|e| e.to_string())? {
                Ok(mut socket) => {
                    socket.set_io_timeout(Some(WAIT));
                    seen.push(Seen {
                        encrypted: true,
                        resumed: socket.is_session_resumed(),
                        peer: socket.peer_certificate().map(|c| c.to_der().to_vec()),
                    });
                    let _ = socket.write_all(b"hello\n");
                    let _ = socket.flush();
                    let mut sink = Vec::new();
                    let _ = socket.read_to_end(&mut sink);
                }
                Err(socket) => seen.push(Seen {
                    encrypted: false,
                    resumed: socket.is_session_resumed(),
                    peer: socket.peer_certificate().map(|c| c.to_der().to_vec()),
                }),
            }
        }
        Ok(seen)
    });
    Ok((port, worker))
}

/// The victim's `openssl s_client` arguments: a certificate, TLS 1.3 with a SHA-384 suite,
/// its session (with its ticket) read from and written to `sess`.
fn victim_args(
    pki: &Pki,
    victim: &support::Issued,
    sess: &std::path::Path,
    resume: bool,
) -> Vec<std::ffi::OsString> {
    let mut args = os_args![
        "-tls1_3",
        "-servername",
        "localhost",
        "-ciphersuites",
        "TLS_AES_256_GCM_SHA384",
        "-CAfile",
        pki.root_pem(),
        if resume { "-sess_in" } else { "-sess_out" },
        sess,
        "-ign_eof"
    ];
    args.extend(victim.openssl_args());
    args
}

/// The attacker's: the victim's ticket first, with only a SHA-256 suite (OpenSSL skips that
/// identity after the ticket filter approved it), then its own pre-shared key.
fn attacker_args(pki: &Pki, sess: &std::path::Path) -> Vec<std::ffi::OsString> {
    os_args![
        "-tls1_3",
        "-servername",
        "localhost",
        "-ciphersuites",
        "TLS_AES_128_GCM_SHA256",
        "-CAfile",
        pki.root_pem(),
        "-sess_in",
        sess,
        "-psk_identity",
        "client1",
        "-psk",
        PSK_HEX,
        "-ign_eof"
    ]
}

/// A TLS 1.3 server of `pki`'s `localhost` that asks for client certificates (`mode`) and
/// knows the pre-shared key of `client1`.
fn psk_and_certificates_server(
    pki: &Pki,
    mode: PeerVerifyMode,
    connections: usize,
) -> Result<Serving, BoxError> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut configuration = serving(&leaf)?;
    configuration
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?])
        .set_peer_verify_mode(mode)
        .set_protocol(SslProtocol::TlsV1_3);
    let hooks: std::sync::Arc<dyn sslsocket::SslHooks> = PskHooks::new(b"client1", &PSK);
    our_server(configuration, Some(hooks), connections)
}

// Was a defect (round 37): OpenSSL backend, TLS 1.3 server with a PSK hook (QueryPeer): a client that holds only a pre-shared key and sends another client's ticket (seen in clear in that client's hello) as its first PSK identity, with a suite whose hash does not match that ticket's, is taken for that other client: the ticket filter records the ticket's key (`resumed_key`) before OpenSSL skips the identity, OpenSSL then resumes the external PSK (`session_reused`), and the connection reports the victim's certificate as its peer.
#[test]
fn a_psk_client_replaying_another_clients_ticket_is_not_taken_for_that_client() -> TestResult {
    if support::lacks(sslsocket::backend::SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let victim = pki.client_cert(true)?;
    let (port, server) = psk_and_certificates_server(&pki, PeerVerifyMode::QueryPeer, 2)?;
    let sess = pki.dir.path().join("victim-sess.pem");
    let first = OpensslClient::run(port, &victim_args(&pki, &victim, &sess, false), b"", WAIT)?;
    let second = OpensslClient::run(port, &attacker_args(&pki, &sess), b"", WAIT)?;
    let seen = support::raw::joined(server)?.map_err(|e| -> BoxError { e.into() })?;
    let victim_der = victim.cert_der.clone();
    assert_eq!(
        seen.first()
            .map(|s| (s.encrypted, s.peer.as_deref() == Some(&victim_der[..]))),
        Some((true, true)),
        "control: the victim was not served: {seen:?}\n{}",
        first.stdout
    );
    let attacker = seen.get(1).ok_or("no second connection")?;
    assert!(
        attacker.peer.as_deref() != Some(&victim_der[..]),
        "{}: a client holding only a pre-shared key, replaying another client's ticket, was \
         taken for that client (peer certificate = the victim's; encrypted {}, resumed {}):\n{}",
        active_backend(),
        attacker.encrypted,
        attacker.resumed,
        second.stdout
    );
    Ok(())
}

// Was a defect (round 37): OpenSSL backend, TLS 1.3 VerifyPeer server with a PSK hook: the same client (its pre-shared key after another client's ticket) is refused for its missing certificate, and that refusal now forgets the other client's session (`confirm_peer(None)` sees `session_reused()` and `forget_resumed_server_session` removes the record under the ticket's stale key): a hostile client denies another client resumption without ever resuming its session.
#[test]
fn a_psk_client_refused_after_naming_another_clients_ticket_does_not_delete_that_session(
) -> TestResult {
    if support::lacks(sslsocket::backend::SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let victim = pki.client_cert(true)?;
    // Control: without the attacker, the victim's second connection resumes.
    let (port, server) = psk_and_certificates_server(&pki, PeerVerifyMode::VerifyPeer, 2)?;
    let sess = pki.dir.path().join("control-sess.pem");
    OpensslClient::run(port, &victim_args(&pki, &victim, &sess, false), b"", WAIT)?;
    OpensslClient::run(port, &victim_args(&pki, &victim, &sess, true), b"", WAIT)?;
    let control = support::raw::joined(server)?.map_err(|e| -> BoxError { e.into() })?;
    assert_eq!(
        control
            .iter()
            .map(|s| (s.encrypted, s.resumed))
            .collect::<Vec<_>>(),
        vec![(true, false), (true, true)],
        "control: {control:?}"
    );

    let (port, server) = psk_and_certificates_server(&pki, PeerVerifyMode::VerifyPeer, 3)?;
    let sess = pki.dir.path().join("victim-sess.pem");
    OpensslClient::run(port, &victim_args(&pki, &victim, &sess, false), b"", WAIT)?;
    let attack = OpensslClient::run(port, &attacker_args(&pki, &sess), b"", WAIT)?;
    OpensslClient::run(port, &victim_args(&pki, &victim, &sess, true), b"", WAIT)?;
    let seen = support::raw::joined(server)?.map_err(|e| -> BoxError { e.into() })?;
    assert_eq!(
        seen.get(1).map(|s| s.encrypted),
        Some(false),
        "the attacker (no certificate, VerifyPeer) was accepted: {seen:?}\n{}",
        attack.stdout
    );
    assert_eq!(
        seen.get(2).map(|s| (s.encrypted, s.resumed)),
        Some((true, true)),
        "{}: after a refused client named the victim's ticket beside its own pre-shared \
         key, the victim's session no longer resumes: {seen:?}",
        active_backend()
    );
    Ok(())
}

/// One DER TLV with a definite length in its shortest form.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// (header length, content length) of the TLV at the start of `bytes`.
fn header(bytes: &[u8]) -> Result<(usize, usize), BoxError> {
    let first = usize::from(*bytes.get(1).ok_or("short TLV")?);
    if first < 0x80 {
        return Ok((2, first));
    }
    let mut len = 0usize;
    for i in 0..(first & 0x7f) {
        len = (len << 8) | usize::from(*bytes.get(2 + i).ok_or("short TLV")?);
    }
    Ok((2 + (first & 0x7f), len))
}

/// `cert` with its Validity replaced by `validity`, the TBS signed again by `issuer_key`.
fn with_validity(
    cert: &[u8],
    issuer_key: &rcgen::KeyPair,
    validity: &[u8],
) -> Result<Vec<u8>, BoxError> {
    let (h, len) = header(cert)?;
    let body = cert.get(h..h + len).ok_or("short certificate")?;
    let (th, tlen) = header(body)?;
    let mut rest = body.get(th..th + tlen).ok_or("short TBS")?;
    let after = body.get(th + tlen..).ok_or("short certificate")?;
    let (ah, alen) = header(after)?;
    let algorithm = after.get(..ah + alen).ok_or("short algorithm")?;
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let (fh, flen) = header(rest)?;
        fields.push(rest.get(..fh + flen).ok_or("short field")?.to_vec());
        rest = rest.get(fh + flen..).ok_or("short field")?;
    }
    // [0] version, serialNumber, signature, issuer, validity
    *fields.get_mut(4).ok_or("no validity")? = validity.to_vec();
    let tbs = tlv(0x30, &fields.concat());
    let signature = rcgen::SigningKey::sign(issuer_key, &tbs)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut out = tbs;
    out.extend_from_slice(algorithm);
    out.extend(tlv(0x03, &bits));
    Ok(tlv(0x30, &out))
}

// PINS: a leaf with a critical certificatePolicies extension (OpenSSL accepts it; webpki refuses it, `UnspecifiedError` on the leaf, the third case `explaining_kinds` names, which `refused_by_webpki_alone` does not check) keeps its `UnspecifiedError` when its notBefore is also non-DER and that error is ignored: webpki refuses the critical extension while parsing, before it reads the time, so no `BadDerTime` hides it.
#[test]
fn a_non_der_time_does_not_hide_a_critical_certificate_policies_extension() -> TestResult {
    use sslsocket::SslErrorKind::InvalidNotBeforeField;
    use support::chains::{handshake, kinds_on, leaf, on, root};
    let root = root("L37c Root")?;
    let root_key = rcgen::KeyPair::from_pem(&root.key_pem)?;
    // certificatePolicies: one policy, 2.23.140.1.2.1 (domain validated), critical.
    let policies = tlv(
        0x30,
        &tlv(0x30, &tlv(0x06, &[0x67, 0x81, 0x0c, 0x01, 0x02, 0x01])),
    );
    let (good, key) = leaf(&root, "localhost", |p| {
        let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 32], policies);
        ext.set_criticality(true);
        p.custom_extensions = vec![ext];
    })?;
    let bad_validity = tlv(
        0x30,
        &[
            tlv(0x18, b"20200101000000.5Z"),
            tlv(0x18, b"20400101000000Z"),
        ]
        .concat(),
    );
    let bad = with_validity(&good, &root_key, &bad_validity)?;
    let good_outcome = handshake(&[&root.der], vec![good.clone()], &key, "localhost", |_| {})?;
    let ignored = vec![on(InvalidNotBeforeField, &bad)?];
    let bad_outcome = handshake(&[&root.der], vec![bad], &key, "localhost", move |s| {
        s.ignore_ssl_errors_list(&ignored)
    })?;
    let good_listed = kinds_on(&good_outcome.errors);
    let bad_listed = kinds_on(&bad_outcome.errors);
    let hidden: Vec<_> = good_listed
        .iter()
        .filter(|error| !bad_listed.contains(error))
        .collect();
    assert!(
        hidden.is_empty() && (good_outcome.encrypted || !bad_outcome.encrypted),
        "{}: critical certificatePolicies leaf: DER time {good_listed:?} (connected {}); \
         non-DER time, its error ignored: {bad_listed:?} (connected {})",
        active_backend(),
        good_outcome.encrypted,
        bad_outcome.encrypted
    );
    Ok(())
}
