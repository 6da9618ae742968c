//! Pins under attack: `set_pinned_public_keys` is the application's own narrow statement
//! of whom it trusts, so it holds in every verify mode (`VerifyNone` included) and nothing
//! ignores it: not `ignore_ssl_errors()`, not an ignore list naming the pin's error, not
//! a hook, not a pause. A pin matches the leaf (the handshake proves its key) or a CA whose
//! signatures link it to the leaf, never a certificate the peer merely sent along. Real
//! TLS peers on 127.0.0.1 on the active backend (`scripts/test` runs this file on both).

mod support;

use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, Issuer, KeyPair, SanType};
use rustls_pki_types::CertificateDer;
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    PauseMode, PeerVerifyMode, SslCertificate, SslConfiguration, SslError, SslErrorKind, SslHooks,
    Verdict,
};
use support::attack::AttackServer;
use support::Pki;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// A hook that accepts every error it is shown.
struct AcceptEverything;

impl SslHooks for AcceptEverything {
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        Verdict::Ignore
    }
}

/// The ways an application can tell a socket not to hold the peer's verification
/// against it; none of them may lift a pin.
#[derive(Clone, Copy, Debug)]
enum Leniency {
    VerifyNone,
    QueryPeer,
    IgnoreAll,
    IgnoreThePinError,
    Hook,
    Pause,
}

const EVERY_LENIENCY: [Leniency; 6] = [
    Leniency::VerifyNone,
    Leniency::QueryPeer,
    Leniency::IgnoreAll,
    Leniency::IgnoreThePinError,
    Leniency::Hook,
    Leniency::Pause,
];

/// A socket that trusts `cas`, pins `pins`, and is lenient in the way `leniency` says;
/// `leaf` is the certificate the peer will show (for the ignore list naming the pin's
/// error on it).
fn socket(
    cas: &[&[u8]],
    pins: Vec<[u8; 32]>,
    leniency: Leniency,
    leaf: &SslCertificate,
) -> Result<SslSocket, Box<dyn std::error::Error>> {
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(
        cas.iter()
            .map(|der| SslCertificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()?,
    );
    configuration.set_pinned_public_keys(pins);
    let mut socket = SslSocket::with_configuration(configuration);
    match leniency {
        Leniency::VerifyNone => socket.set_peer_verify_mode(PeerVerifyMode::VerifyNone)?,
        Leniency::QueryPeer => socket.set_peer_verify_mode(PeerVerifyMode::QueryPeer)?,
        Leniency::IgnoreAll => socket.ignore_ssl_errors(),
        Leniency::IgnoreThePinError => {
            socket.ignore_ssl_errors_list(&[SslError::with_certificate(
                SslErrorKind::CertificateRejected,
                leaf.clone(),
            )])
        }
        Leniency::Hook => socket.set_hooks(Arc::new(AcceptEverything)),
        Leniency::Pause => socket.set_pause_mode(PauseMode::PauseOnSslErrors),
    }
    Ok(socket)
}

/// Connects `socket` to `port` and expects the peer refused for its pins: not encrypted,
/// not paused, nothing readable, and `CertificateRejected` on `leaf` among the errors
/// (the only error in `VerifyNone`, where nothing else is checked).
fn assert_refused_for_the_pins(
    mut socket: SslSocket,
    port: u16,
    leniency: Leniency,
    leaf: &SslCertificate,
) -> TestResult {
    socket.connect_to_host_encrypted("localhost", port);
    assert!(
        socket.wait_for_encrypted(WAIT).is_err(),
        "{leniency:?}: a peer without a pinned key was accepted"
    );
    assert!(!socket.is_encrypted(), "{leniency:?}");
    assert!(
        !socket.is_paused(),
        "{leniency:?}: paused on a pin mismatch"
    );
    assert_eq!(socket.read_all(), Vec::<u8>::new(), "{leniency:?}");
    let rejected = SslError::with_certificate(SslErrorKind::CertificateRejected, leaf.clone());
    let errors = socket.ssl_handshake_errors();
    match leniency {
        Leniency::VerifyNone => assert_eq!(errors, [rejected].as_slice(), "{leniency:?}"),
        _ => assert!(errors.contains(&rejected), "{leniency:?}: {errors:?}"),
    }
    Ok(())
}

fn leaf_params(name: &str) -> Result<CertificateParams, Box<dyn std::error::Error>> {
    let mut params = CertificateParams::new(vec![name.to_string()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = vec![SanType::DnsName(name.try_into()?)];
    Ok(params)
}

#[test]
fn a_pin_holds_in_every_verify_mode_whatever_is_ignored() -> TestResult {
    // An untrusted self-signed peer: only its pin can make it acceptable.
    let key = KeyPair::generate()?;
    let der = leaf_params("localhost")?.self_signed(&key)?.der().to_vec();
    let leaf = SslCertificate::from_der(&der)?;
    let stranger = KeyPair::generate()?;
    let stranger =
        SslCertificate::from_der(leaf_params("stranger")?.self_signed(&stranger)?.der())?;
    let server = AttackServer::start(vec![der.clone()], &key.serialize_der(), 10)?;

    for leniency in EVERY_LENIENCY {
        let socket = socket(&[], vec![stranger.public_key_sha256()], leniency, &leaf)?;
        assert_refused_for_the_pins(socket, server.port(), leniency, &leaf)?;
    }
    // The pinned leaf, with the same leniency, is accepted where the leniency accepts an
    // untrusted peer (the pause would stop on the self-signed error, the pin-only ignore
    // list covers none of the chain's errors).
    for leniency in [
        Leniency::VerifyNone,
        Leniency::QueryPeer,
        Leniency::IgnoreAll,
        Leniency::Hook,
    ] {
        let mut socket = socket(&[], vec![leaf.public_key_sha256()], leniency, &leaf)?;
        socket.connect_to_host_encrypted("localhost", server.port());
        if let Err(error) = socket.wait_for_encrypted(WAIT) {
            return Err(format!(
                "{leniency:?}: {error}; errors {:?}",
                socket.ssl_handshake_errors()
            )
            .into());
        }
        let errors = socket.ssl_handshake_errors();
        assert!(
            !errors
                .iter()
                .any(|e| e.error() == SslErrorKind::CertificateRejected),
            "{leniency:?}: {errors:?}"
        );
        socket.abort();
    }
    Ok(())
}

#[test]
fn a_forged_leaf_that_names_the_pinned_ca_and_sends_it_along_is_refused() -> TestResult {
    // The attacker's leaf has the pinned intermediate's name as its issuer, is signed by
    // the attacker's own key, and comes with the real intermediate and root.
    let pki = Pki::new()?;
    let intermediate = SslCertificate::from_der(pki.intermediate_der())?;
    let attacker = KeyPair::generate()?;
    let impostor = Issuer::from_ca_cert_der(
        &CertificateDer::from(pki.intermediate_der().to_vec()),
        &attacker,
    )?;
    let key = KeyPair::generate()?;
    let forged = leaf_params("localhost")?
        .signed_by(&key, &impostor)?
        .der()
        .to_vec();
    let leaf = SslCertificate::from_der(&forged)?;
    let chain = vec![
        forged,
        pki.intermediate_der().to_vec(),
        pki.root_der().to_vec(),
    ];
    let server = AttackServer::start(chain, &key.serialize_der(), 12)?;
    for leniency in EVERY_LENIENCY {
        for cas in [vec![pki.root_der()], Vec::new()] {
            let socket = socket(
                &cas,
                vec![intermediate.public_key_sha256()],
                leniency,
                &leaf,
            )?;
            assert_refused_for_the_pins(socket, server.port(), leniency, &leaf)?;
        }
    }
    Ok(())
}

#[test]
fn in_verify_none_a_pin_matches_a_ca_whose_signature_links_the_leaf() -> TestResult {
    // Nothing trusted, nothing verified: the genuine chain still proves that the pinned
    // intermediate issued the leaf whose key the handshake proved.
    let pki = Pki::new()?;
    let issued = pki.leaf("localhost", &["localhost"])?;
    let leaf = SslCertificate::from_der(&issued.cert_der)?;
    let pin = SslCertificate::from_der(pki.intermediate_der())?.public_key_sha256();
    let server = AttackServer::start(issued.chain_der.clone(), &issued.key_der, 1)?;
    let mut socket = socket(&[], vec![pin], Leniency::VerifyNone, &leaf)?;
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    assert_eq!(socket.ssl_handshake_errors(), &[]);
    Ok(())
}

#[test]
fn a_server_with_pins_refuses_a_client_without_a_certificate_and_accepts_a_pinned_one() -> TestResult
{
    let pki = Pki::new()?;
    let server_leaf = pki.leaf("localhost", &["localhost"])?;
    let client_leaf = pki.leaf("client", &["client"])?;
    let mut configuration = support::serving(&server_leaf)?;
    // `QueryPeer`: a client certificate is asked for, not required; the pin requires one.
    configuration.set_peer_verify_mode(PeerVerifyMode::QueryPeer);
    configuration.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    configuration.set_pinned_public_keys(vec![
        SslCertificate::from_der(&client_leaf.cert_der)?.public_key_sha256()
    ]);
    let listener = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = listener.local_addr().port();

    let mut anonymous = SslSocket::with_configuration(support::trusting(&pki)?);
    anonymous.connect_to_host_encrypted("localhost", port);
    let _ = anonymous.wait_for_encrypted(WAIT);
    let _ = anonymous.wait_for_ready_read(Duration::from_millis(200));
    let refused = match listener.next_connection(WAIT)? {
        Ok(_) => return Err("the server accepted a client without a certificate".into()),
        Err(refused) => refused,
    };
    assert_eq!(
        refused.ssl_handshake_errors(),
        &[SslError::new(SslErrorKind::CertificateRejected)]
    );

    let mut client = support::trusting(&pki)?;
    client
        .set_local_certificate_chain(
            client_leaf
                .chain_der
                .iter()
                .map(|d| SslCertificate::from_der(d))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .set_private_key(sslsocket::SslKey::from_der(&client_leaf.key_der)?);
    let mut pinned = SslSocket::with_configuration(client);
    pinned.connect_to_host_encrypted("localhost", port);
    pinned.wait_for_encrypted(WAIT)?;
    let accepted = listener
        .next_connection(WAIT)?
        .map_err(|_| "the server refused the pinned client")?;
    assert_eq!(accepted.ssl_handshake_errors(), &[]);
    Ok(())
}
