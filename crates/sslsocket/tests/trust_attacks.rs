//! Trust under attack: each test is a way a peer tried to get accepted without being
//! trusted (malformed DER, a non-CA acting as issuer, a leaf not meant for TLS, a pinned
//! certificate appended to a mis-issued chain, resumption across sockets with different
//! policies, an ignore list outliving its connection or a reconnect, data sent before
//! acceptance, a leaf its intermediate's name constraints forbid, hidden behind another
//! error the application ignores). Real TLS peers on 127.0.0.1 on the active backend
//! (`scripts/test` runs this file on both).

mod support;

use std::io::Read;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    IgnoreRule, PauseMode, SslCertificate, SslConfiguration, SslErrorKind, SslEvent, SslKey,
};
use support::attack::{
    with_empty_validity, with_indefinite_subject_length, AttackServer, ATTACK_MESSAGE,
};
use support::{is_active, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

fn trusting(certs: &[&[u8]]) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(
        certs
            .iter()
            .map(|der| SslCertificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()?,
    );
    Ok(configuration)
}

fn leaf_params(name: &str) -> Result<CertificateParams, Box<dyn std::error::Error>> {
    let mut params = CertificateParams::new(vec![name.to_string()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = vec![SanType::DnsName(name.try_into()?)];
    Ok(params)
}

/// Asserts that `errors` hold `kind` on the certificate whose DER is `der`.
fn assert_error_on(errors: &[sslsocket::SslError], kind: SslErrorKind, der: &[u8]) {
    assert!(
        errors
            .iter()
            .any(|e| e.error() == kind && e.certificate().map(SslCertificate::der) == Some(der)),
        "no {kind:?} on the expected certificate in {errors:?}"
    );
}

/// Connects to `port`, expecting a refusal; returns the socket for inspection.
fn refused(
    configuration: SslConfiguration,
    port: u16,
) -> Result<SslSocket, Box<dyn std::error::Error>> {
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted("localhost", port);
    let result = socket.wait_for_encrypted(WAIT);
    assert!(result.is_err(), "the peer was accepted");
    assert!(!socket.is_encrypted());
    assert_eq!(
        socket.read_all(),
        Vec::<u8>::new(),
        "a refused peer's data was readable"
    );
    Ok(socket)
}

#[test]
fn a_leaf_that_does_not_parse_is_an_error_on_its_position_not_a_skip() -> TestResult {
    let pki = Pki::new()?;
    // The attacker's own key, a self-signed leaf for localhost with its Validity emptied
    // (webpki still parses it; x509-parser does not), then the trusted root, which has no
    // subject alternative name.
    let key = KeyPair::generate()?;
    let leaf = leaf_params("localhost")?.self_signed(&key)?.der().to_vec();
    let malformed = with_empty_validity(&leaf)?;
    assert!(SslCertificate::from_der(&malformed).is_err());
    let server = AttackServer::start(
        vec![malformed.clone(), pki.root_der().to_vec()],
        &key.serialize_der(),
        1,
    )?;
    let socket = refused(trusting(&[pki.root_der()])?, server.port())?;
    if is_active("rustls") {
        // The leaf stays what the peer sent first, and carries the error.
        let chain = socket.peer_certificate_chain();
        assert_eq!(
            chain.first().map(SslCertificate::der),
            Some(malformed.as_slice())
        );
        assert!(chain.first().is_some_and(SslCertificate::is_null));
        assert_error_on(
            socket.ssl_handshake_errors(),
            SslErrorKind::UnspecifiedError,
            &malformed,
        );
    }
    Ok(())
}

#[test]
fn a_leaf_openssl_reads_but_our_parser_refuses_is_an_error_not_a_skip() -> TestResult {
    // A trusted CA's leaf for localhost, its subject in BER's indefinite-length form and
    // signed again by the CA over those bytes: the chain verifies for OpenSSL, which reads
    // BER there, while x509-parser (and webpki) refuse it. A verifier that skipped what it
    // cannot read would find no error at all on the OpenSSL backend (it did: the leaf was
    // left out of the chain and the peer accepted).
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "BER test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?.der().to_vec();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let key = KeyPair::generate()?;
    let leaf = leaf_params("localhost")?
        .signed_by(&key, &issuer)?
        .der()
        .to_vec();
    let ber = with_indefinite_subject_length(&leaf, &ca_key)?;
    assert!(SslCertificate::from_der(&ber).is_err());
    let server = AttackServer::start(vec![ber.clone()], &key.serialize_der(), 2)?;
    // The leaf as rcgen made it is accepted: only the encoding differs.
    let server_ok = AttackServer::start(vec![leaf.clone()], &key.serialize_der(), 1)?;
    let mut control = SslSocket::with_configuration(trusting(&[&ca])?);
    control.connect_to_host_encrypted("localhost", server_ok.port());
    control.wait_for_encrypted(WAIT)?;
    let socket = refused(trusting(&[&ca])?, server.port())?;
    let chain = socket.peer_certificate_chain();
    assert_eq!(chain.first().map(SslCertificate::der), Some(ber.as_slice()));
    assert!(chain.first().is_some_and(SslCertificate::is_null));
    assert_error_on(
        socket.ssl_handshake_errors(),
        SslErrorKind::UnspecifiedError,
        &ber,
    );
    Ok(())
}

#[test]
fn a_malformed_leaf_is_refused_even_when_other_errors_are_ignored() -> TestResult {
    let pki = Pki::new()?;
    let key = KeyPair::generate()?;
    let leaf = leaf_params("localhost")?.self_signed(&key)?.der().to_vec();
    let malformed = with_empty_validity(&leaf)?;
    let server = AttackServer::start(
        vec![malformed, pki.root_der().to_vec()],
        &key.serialize_der(),
        1,
    )?;
    let mut socket = SslSocket::with_configuration(trusting(&[pki.root_der()])?);
    // What an application accepting "a self-signed certificate" would say.
    socket.ignore_ssl_error_rules(vec![
        IgnoreRule::AnyCertificate(SslErrorKind::SelfSignedCertificate),
        IgnoreRule::AnyCertificate(SslErrorKind::HostNameMismatch),
    ]);
    socket.connect_to_host_encrypted("localhost", server.port());
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert_eq!(socket.read_all(), Vec::<u8>::new());
    Ok(())
}

#[test]
fn a_trusted_certificate_without_ca_true_cannot_issue() -> TestResult {
    // A self-signed *server* certificate (CA:FALSE) that the client trusts, used by its
    // key holder to issue a certificate for another name.
    let issuer_key = KeyPair::generate()?;
    let mut issuer_params = leaf_params("trusted-server.test")?;
    issuer_params.is_ca = IsCa::ExplicitNoCa;
    let issuer_der = issuer_params.self_signed(&issuer_key)?.der().to_vec();
    let issuer = rcgen::Issuer::new(issuer_params, issuer_key);
    let key = KeyPair::generate()?;
    let leaf = leaf_params("localhost")?
        .signed_by(&key, &issuer)?
        .der()
        .to_vec();
    let server = AttackServer::start(vec![leaf, issuer_der.clone()], &key.serialize_der(), 1)?;
    let socket = refused(trusting(&[&issuer_der])?, server.port())?;
    assert_error_on(
        socket.ssl_handshake_errors(),
        SslErrorKind::InvalidCaCertificate,
        &issuer_der,
    );
    Ok(())
}

#[test]
fn a_trusted_self_signed_server_certificate_is_still_accepted_as_itself() -> TestResult {
    let key = KeyPair::generate()?;
    let mut params = leaf_params("localhost")?;
    params.is_ca = IsCa::ExplicitNoCa;
    let der = params.self_signed(&key)?.der().to_vec();
    let mut server_configuration = SslConfiguration::default();
    server_configuration
        .set_local_certificate_chain(vec![SslCertificate::from_der(&der)?])
        .set_private_key(SslKey::from_der(&key.serialize_der())?);
    let listener = SslServer::listen("127.0.0.1:0", server_configuration)?;
    let mut socket = SslSocket::with_configuration(trusting(&[&der])?);
    socket.connect_to_host_encrypted("localhost", listener.local_addr().port());
    socket.wait_for_encrypted(WAIT)?;
    assert!(socket.ssl_handshake_errors().is_empty());
    Ok(())
}

#[test]
fn a_leaf_whose_key_usage_is_only_for_certificates_is_refused() -> TestResult {
    let pki = Pki::new()?;
    let key = KeyPair::generate()?;
    let mut params = leaf_params("localhost")?;
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.is_ca = IsCa::NoCa;
    let chain = pki.sign_with_intermediate(&params, &key)?;
    let leaf = chain.first().cloned().unwrap_or_default();
    let server = AttackServer::start(chain, &key.serialize_der(), 1)?;
    let socket = refused(trusting(&[pki.root_der()])?, server.port())?;
    assert_error_on(
        socket.ssl_handshake_errors(),
        SslErrorKind::InvalidPurpose,
        &leaf,
    );
    Ok(())
}

#[test]
fn a_ca_whose_key_usage_leaves_out_cert_sign_gets_the_same_errors_on_every_backend() -> TestResult {
    // CA:TRUE but keyUsage digitalSignature, cRLSign: OpenSSL 3 reports the CA check, the
    // purpose and X509_V_ERR_KEYUSAGE_NO_CERTSIGN (Qt's UnspecifiedError), all on the CA;
    // the rustls backend lists the same, so one ignore list serves both.
    let mut root_params = CertificateParams::new(Vec::<String>::new())?;
    root_params
        .distinguished_name
        .push(DnType::CommonName, "KU Root");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_key = KeyPair::generate()?;
    let root_der = root_params.self_signed(&root_key)?.der().to_vec();
    let root = Issuer::new(root_params, root_key);
    let mut int_params = CertificateParams::new(Vec::<String>::new())?;
    int_params
        .distinguished_name
        .push(DnType::CommonName, "KU Intermediate");
    int_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    int_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    let int_key = KeyPair::generate()?;
    let int_der = int_params.signed_by(&int_key, &root)?.der().to_vec();
    let intermediate = Issuer::new(int_params, int_key);
    let key = KeyPair::generate()?;
    let leaf = leaf_params("localhost")?
        .signed_by(&key, &intermediate)?
        .der()
        .to_vec();
    let server = AttackServer::start(vec![leaf, int_der.clone()], &key.serialize_der(), 1)?;
    let socket = refused(trusting(&[&root_der])?, server.port())?;
    let int = SslCertificate::from_der(&int_der)?;
    let expected: Vec<sslsocket::SslError> = [
        SslErrorKind::InvalidCaCertificate,
        SslErrorKind::InvalidPurpose,
        SslErrorKind::UnspecifiedError,
    ]
    .into_iter()
    .map(|kind| sslsocket::SslError::with_certificate(kind, int.clone()))
    .collect();
    assert_eq!(socket.ssl_handshake_errors(), expected.as_slice());
    Ok(())
}

#[test]
fn a_pin_matches_the_verified_path_never_an_appended_certificate() -> TestResult {
    let pki = Pki::new()?;
    let pinned = SslCertificate::from_der(pki.intermediate_der())?.public_key_sha256();
    // The client trusts two CAs (as with the system store) and pins its own intermediate.
    let mut client = trusting(&[pki.root_der(), pki.untrusted_root_der()])?;
    client.set_pinned_public_keys(vec![pinned]);

    // The genuine chain passes the pin.
    let good = pki.leaf("localhost", &["localhost"])?;
    let server = AttackServer::start(good.chain_der.clone(), &good.key_der, 1)?;
    let mut socket = SslSocket::with_configuration(client.clone());
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(WAIT)?;
    assert!(socket.ssl_handshake_errors().is_empty());

    // A chain mis-issued by the other CA, with the pinned intermediate appended.
    let misissued = pki.issue(&support::LeafSpec {
        issued_by: support::IssuedBy::UntrustedRoot,
        ..support::LeafSpec::new("localhost", &["localhost"])
    })?;
    let mut chain = misissued.chain_der.clone();
    chain.push(pki.intermediate_der().to_vec());
    let server = AttackServer::start(chain, &misissued.key_der, 1)?;
    let socket = refused(client, server.port())?;
    let errors = socket.ssl_handshake_errors();
    assert!(
        errors
            .iter()
            .any(|e| e.error() == SslErrorKind::CertificateRejected),
        "{errors:?}"
    );
    Ok(())
}

fn self_signed_server() -> Result<SslServer, Box<dyn std::error::Error>> {
    let key = KeyPair::generate()?;
    let der = leaf_params("localhost")?.self_signed(&key)?.der().to_vec();
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(vec![SslCertificate::from_der(&der)?])
        .set_private_key(SslKey::from_der(&key.serialize_der())?);
    Ok(SslServer::listen("127.0.0.1:0", configuration)?)
}

#[test]
fn a_session_accepted_by_ignoring_is_judged_again_by_each_socket() -> TestResult {
    let listener = self_signed_server()?;
    let port = listener.local_addr().port();
    let mut client = SslConfiguration::default();
    client.set_ca_certificates(Vec::new());

    let mut lenient = SslSocket::with_configuration(client.clone());
    lenient.ignore_ssl_errors();
    lenient.connect_to_host_encrypted("localhost", port);
    lenient.wait_for_encrypted(WAIT)?;
    let _ = lenient.wait_for_ready_read(Duration::from_millis(300));
    let errors = lenient.ssl_handshake_errors().to_vec();
    assert!(!errors.is_empty());
    lenient.close()?;

    // Same configuration, no ignore list: a full handshake, refused like a fresh one.
    let mut strict = SslSocket::with_configuration(client.clone());
    strict.connect_to_host_encrypted("localhost", port);
    assert!(strict.wait_for_encrypted(WAIT).is_err());
    assert!(!strict.core().is_session_resumed());
    assert_eq!(strict.ssl_handshake_errors(), errors.as_slice());

    // Pausing on errors: asked again, not resumed behind the application's back.
    let mut pausing = SslSocket::with_configuration(client.clone());
    pausing.set_pause_mode(PauseMode::PauseOnSslErrors);
    pausing.connect_to_host_encrypted("localhost", port);
    assert!(pausing.wait_for_encrypted(WAIT).is_err());
    assert!(pausing.is_paused());
    pausing.abort();

    // Ignoring exactly these errors: resumed, and the errors are reported again.
    let mut narrow = SslSocket::with_configuration(client);
    narrow.ignore_ssl_errors_list(&errors);
    narrow.connect_to_host_encrypted("localhost", port);
    narrow.wait_for_encrypted(WAIT)?;
    assert_eq!(narrow.ssl_handshake_errors(), errors.as_slice());
    let events = narrow.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SslEvent::SslErrors(list) if list == &errors)),
        "{events:?}"
    );
    Ok(())
}

#[test]
fn ignoring_errors_holds_for_one_connection_only() -> TestResult {
    let listener = self_signed_server()?;
    let port = listener.local_addr().port();
    let mut client = SslConfiguration::default();
    client.set_ca_certificates(Vec::new());
    let mut socket = SslSocket::with_configuration(client);
    socket.ignore_ssl_errors();
    socket.connect_to_host_encrypted("localhost", port);
    socket.wait_for_encrypted(WAIT)?;
    socket.close()?;
    socket.connect_to_host_encrypted("localhost", port);
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert!(!socket.ssl_handshake_errors().is_empty());
    Ok(())
}

#[test]
fn nothing_received_before_a_refused_resume_is_readable() -> TestResult {
    // The attacker's server sends data right after its Finished (0.5-RTT), so it arrives
    // while our handshake is paused on the errors.
    let key = KeyPair::generate()?;
    let der = leaf_params("localhost")?.self_signed(&key)?.der().to_vec();
    let server = AttackServer::start(vec![der], &key.serialize_der(), 1)?;
    let mut client = SslConfiguration::default();
    client.set_ca_certificates(Vec::new());
    let mut socket = SslSocket::with_configuration(client);
    socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    socket.connect_to_host_encrypted("localhost", server.port());
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert!(socket.is_paused());
    let _ = socket.wait_for_ready_read(Duration::from_millis(300));
    assert!(socket.resume().is_err());
    assert_eq!(socket.bytes_available(), 0);
    assert_eq!(socket.read_all(), Vec::<u8>::new());
    assert!(!socket.can_read_line());
    assert_eq!(socket.peek(64), Vec::<u8>::new());
    let mut buf = [0u8; 64];
    assert!(!matches!(socket.read(&mut buf), Ok(n) if n > 0));
    assert_ne!(&buf[..ATTACK_MESSAGE.len()], ATTACK_MESSAGE);
    Ok(())
}

/// Our server on the active backend, requiring client certificates from the test root.
fn requiring_client_certificates(pki: &Pki) -> Result<SslServer, Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut server = support::serving(&leaf)?;
    server.set_peer_verify_mode(sslsocket::PeerVerifyMode::VerifyPeer);
    server.set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?]);
    Ok(SslServer::listen("127.0.0.1:0", server)?)
}

/// A client trusting the test root and presenting `issued` (its chain and key).
fn presenting(
    pki: &Pki,
    issued: &support::Issued,
) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = support::trusting(pki)?;
    configuration
        .set_local_certificate_chain(
            issued
                .chain_der
                .iter()
                .map(|d| SslCertificate::from_der(d))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .set_private_key(SslKey::from_der(&issued.key_der)?);
    Ok(configuration)
}

#[test]
fn a_refused_client_certificate_session_is_not_resumed_by_the_server() -> TestResult {
    // Server asks for client certificates and pauses on errors; the application refuses
    // an untrusted client. A second connection of the same client must not resume.
    let pki = Pki::new()?;
    let listener = requiring_client_certificates(&pki)?;
    let port = listener.local_addr().port();
    let untrusted = pki.issue(&support::LeafSpec {
        issued_by: support::IssuedBy::UntrustedRoot,
        ..support::LeafSpec::new("client", &["client"])
    })?;
    let client = presenting(&pki, &untrusted)?;
    for _ in 0..2 {
        let mut socket = SslSocket::with_configuration(client.clone());
        socket.connect_to_host_encrypted("localhost", port);
        let _ = socket.wait_for_encrypted(WAIT);
        let _ = socket.wait_for_ready_read(Duration::from_millis(200));
        let accepted = listener.next_connection(WAIT)?;
        assert!(accepted.is_err(), "the server accepted an untrusted client");
        assert!(!socket.core().is_session_resumed());
    }
    Ok(())
}

#[test]
fn a_resumed_client_session_reports_its_own_client_not_the_last_one() -> TestResult {
    // Two trusted clients share a server; the first one's resumed session must report the
    // first one's chain (the server stores each session with its own outcome).
    let pki = Pki::new()?;
    let listener = requiring_client_certificates(&pki)?;
    let port = listener.local_addr().port();
    let client_for =
        |name: &str| -> Result<(SslConfiguration, Vec<u8>), Box<dyn std::error::Error>> {
            let issued = pki.leaf(name, &[name])?;
            Ok((presenting(&pki, &issued)?, issued.cert_der))
        };
    let (first, first_cert) = client_for("first.client")?;
    let (second, second_cert) = client_for("second.client")?;
    let mut resumed_any = false;
    for (configuration, cert) in [
        (&first, &first_cert),
        (&second, &second_cert),
        (&first, &first_cert),
    ] {
        let mut socket = SslSocket::with_configuration(configuration.clone());
        socket.connect_to_host_encrypted("localhost", port);
        socket.wait_for_encrypted(WAIT)?;
        let _ = socket.wait_for_ready_read(Duration::from_millis(200));
        let accepted = listener
            .next_connection(WAIT)?
            .map_err(|_| "the server refused a trusted client")?;
        assert_eq!(
            accepted.peer_certificate().map(SslCertificate::der),
            Some(cert.as_slice())
        );
        resumed_any |= accepted.core().is_session_resumed();
        socket.close()?;
    }
    assert!(
        resumed_any,
        "no session was resumed: the check above proved nothing"
    );
    Ok(())
}

/// A root, and under it an intermediate that may issue only for `corp-a.example` (and
/// below) and 10.0.0.0/8, never for `bad.corp-a.example`.
struct ConstrainedCa {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate: Issuer<'static, KeyPair>,
}

impl ConstrainedCa {
    fn new() -> Result<ConstrainedCa, Box<dyn std::error::Error>> {
        use rcgen::{GeneralSubtree, NameConstraints};
        let ca = |name: &str| -> Result<CertificateParams, Box<dyn std::error::Error>> {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            Ok(params)
        };
        let root_key = KeyPair::generate()?;
        let root_params = ca("NC Root")?;
        let root_der = root_params.self_signed(&root_key)?.der().to_vec();
        let root = Issuer::new(root_params, root_key);
        let mut params = ca("NC Intermediate")?;
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::DnsName("corp-a.example".into()),
                GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([10, 0, 0, 0], [255, 0, 0, 0])),
            ],
            excluded_subtrees: vec![GeneralSubtree::DnsName("bad.corp-a.example".into())],
        });
        let key = KeyPair::generate()?;
        let intermediate_der = params.signed_by(&key, &root)?.der().to_vec();
        Ok(ConstrainedCa {
            root_der,
            intermediate_der,
            intermediate: Issuer::new(params, key),
        })
    }

    /// A server sending a leaf with these subject alternative names (and `cn`), issued by
    /// the intermediate, with the intermediate (and the root, when `with_root`), for
    /// `connections` connections; and the leaf's DER.
    fn serve(
        &self,
        cn: &str,
        sans: Vec<SanType>,
        expired: bool,
        with_root: bool,
        connections: usize,
    ) -> Result<(AttackServer, Vec<u8>), Box<dyn std::error::Error>> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate()?;
        let leaf = params.signed_by(&key, &self.intermediate)?.der().to_vec();
        let mut chain = vec![leaf.clone(), self.intermediate_der.clone()];
        if with_root {
            chain.push(self.root_der.clone());
        }
        let server = AttackServer::start(chain, &key.serialize_der(), connections)?;
        Ok((server, leaf))
    }
}

/// Connects to `port` verifying `name`; the handshake's verdict and its errors as (kind,
/// DER of the certificate) pairs.
fn verdict(
    configuration: SslConfiguration,
    port: u16,
    name: &str,
    ignore: &[sslsocket::SslError],
) -> (bool, Vec<(SslErrorKind, Vec<u8>)>) {
    let mut socket = SslSocket::with_configuration(configuration);
    socket.ignore_ssl_errors_list(ignore);
    socket.connect_to_host_encrypted_with_peer_name("127.0.0.1", port, name);
    let accepted = socket.wait_for_encrypted(WAIT).is_ok() && socket.is_encrypted();
    let mut errors: Vec<(SslErrorKind, Vec<u8>)> = socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| {
            (
                e.error(),
                e.certificate()
                    .map(|c| c.der().to_vec())
                    .unwrap_or_default(),
            )
        })
        .collect();
    errors.sort();
    (accepted, errors)
}

fn dns(name: &str) -> Result<SanType, Box<dyn std::error::Error>> {
    Ok(SanType::DnsName(name.try_into()?))
}

#[test]
fn a_leaf_inside_its_issuers_name_constraints_is_accepted() -> TestResult {
    let ca = ConstrainedCa::new()?;
    let (server, _) = ca.serve(
        "www.corp-a.example",
        vec![dns("www.corp-a.example")?],
        false,
        false,
        1,
    )?;
    let (accepted, errors) = verdict(
        trusting(&[&ca.root_der])?,
        server.port(),
        "www.corp-a.example",
        &[],
    );
    assert!(accepted, "{errors:?}");
    assert!(errors.is_empty());
    Ok(())
}

#[test]
fn a_leaf_outside_its_issuers_name_constraints_is_an_error_on_the_leaf() -> TestResult {
    let ca = ConstrainedCa::new()?;
    // Outside the permitted names, inside an excluded one, an address outside the
    // permitted range, and a common name alone (no subject alternative name).
    let cases: Vec<(&str, Vec<SanType>, &str)> = vec![
        ("localhost", vec![dns("localhost")?], "localhost"),
        (
            "bad.corp-a.example",
            vec![dns("bad.corp-a.example")?],
            "bad.corp-a.example",
        ),
        (
            "x.corp-a.example",
            vec![SanType::IpAddress("127.0.0.1".parse()?)],
            "127.0.0.1",
        ),
        ("localhost", Vec::new(), "localhost"),
        // An excluded name behind a trailing dot (which no host name matches either),
        // and a wildcard that stands for the excluded name.
        (
            "bad.corp-a.example.",
            vec![dns("bad.corp-a.example.")?],
            "bad.corp-a.example",
        ),
        (
            "*.corp-a.example",
            vec![dns("*.corp-a.example")?],
            "bad.corp-a.example",
        ),
    ];
    for (cn, sans, name) in cases {
        let (server, leaf) = ca.serve(cn, sans, false, false, 1)?;
        let (accepted, errors) = verdict(trusting(&[&ca.root_der])?, server.port(), name, &[]);
        assert!(!accepted, "{name}: accepted");
        let mut expected = vec![(SslErrorKind::UnspecifiedError, leaf.clone())];
        if cn.ends_with('.') {
            expected.insert(0, (SslErrorKind::HostNameMismatch, leaf));
        }
        assert_eq!(errors, expected, "{cn} for {name}");
    }
    Ok(())
}

/// Another error of the chain must not hide the violation: ignoring exactly that error
/// (an expired leaf, the untrusted root of a private CA, as Qt applications do) still
/// refuses a leaf its intermediate was not allowed to issue. webpki stops at the first
/// problem and never reached the constraints; the collector checks them itself.
#[test]
fn ignoring_another_error_of_the_chain_does_not_ignore_a_name_constraint_violation() -> TestResult {
    let ca = ConstrainedCa::new()?;

    let (server, leaf) = ca.serve("localhost", vec![dns("localhost")?], true, false, 1)?;
    let expired = sslsocket::SslError::with_certificate(
        SslErrorKind::CertificateExpired,
        SslCertificate::from_der(&leaf)?,
    );
    let (accepted, errors) = verdict(
        trusting(&[&ca.root_der])?,
        server.port(),
        "localhost",
        &[expired],
    );
    assert!(
        !accepted,
        "an expired leaf outside the constraints was accepted"
    );
    let mut expected = vec![
        (SslErrorKind::CertificateExpired, leaf.clone()),
        (SslErrorKind::UnspecifiedError, leaf),
    ];
    expected.sort();
    assert_eq!(errors, expected);

    // The private root sent in the chain, not among the CAs: the application ignores it.
    let (server, leaf) = ca.serve("localhost", vec![dns("localhost")?], false, true, 2)?;
    let root_in_chain = sslsocket::SslError::with_certificate(
        SslErrorKind::SelfSignedCertificateInChain,
        SslCertificate::from_der(&ca.root_der)?,
    );
    let mut no_cas = SslConfiguration::default();
    no_cas.set_ca_certificates(Vec::new());
    let (accepted, errors) = verdict(
        no_cas.clone(),
        server.port(),
        "localhost",
        std::slice::from_ref(&root_in_chain),
    );
    assert!(
        !accepted,
        "ignoring the private root let a violation through"
    );
    let mut expected = vec![
        (
            SslErrorKind::SelfSignedCertificateInChain,
            ca.root_der.clone(),
        ),
        (SslErrorKind::UnspecifiedError, leaf),
    ];
    expected.sort();
    assert_eq!(errors, expected);

    // The control: a leaf inside the constraints is accepted with the same ignore list.
    let (server, _) = ca.serve(
        "www.corp-a.example",
        vec![dns("www.corp-a.example")?],
        false,
        true,
        1,
    )?;
    let (accepted, errors) = verdict(
        no_cas,
        server.port(),
        "www.corp-a.example",
        &[root_in_chain],
    );
    assert!(accepted, "{errors:?}");
    Ok(())
}

/// Same socket object: paused on an untrusted server, the application calls
/// `ignore_ssl_errors()` but then aborts instead of resuming. Connecting again (pause mode
/// off) must verify afresh and refuse: neither the ignore list nor a session survives.
#[test]
fn a_reconnect_after_ignoring_then_aborting_keeps_nothing() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    let listener = SslServer::listen("127.0.0.1:0", support::serving(&leaf)?)?;
    let port = listener.local_addr().port();
    let mut socket = SslSocket::with_configuration(support::trusting(&pki)?);
    socket.set_pause_mode(PauseMode::PauseOnSslErrors);
    socket.connect_to_host_encrypted("localhost", port);
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert!(socket.is_paused());
    let _ = socket.wait_for_ready_read(Duration::from_millis(300));
    socket.ignore_ssl_errors();
    socket.abort();
    socket.set_pause_mode(PauseMode::PauseNever);
    socket.connect_to_host_encrypted("localhost", port);
    assert!(socket.wait_for_encrypted(WAIT).is_err());
    assert!(!socket.is_encrypted());
    assert!(!socket.core().is_session_resumed());
    // And a fresh socket of the same configuration does not resume either.
    let mut fresh = SslSocket::with_configuration(socket.ssl_configuration().clone());
    fresh.connect_to_host_encrypted("localhost", port);
    assert!(fresh.wait_for_encrypted(WAIT).is_err());
    assert!(!fresh.core().is_session_resumed());
    Ok(())
}

/// TLS 1.2 (session IDs/tickets), one configuration: a session accepted by ignoring every
/// error must not be resumed by a socket that ignores nothing, nor by one that ignores the
/// same kinds of error on another certificate (same subject, other key and DER).
#[test]
fn tls12_sessions_accepted_by_ignoring_are_not_resumed_by_other_ignore_lists() -> TestResult {
    use sslsocket::{SslError, SslProtocol};
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["localhost"], false)?;
    let twin = pki.self_signed_leaf(&["localhost"], false)?;
    assert_ne!(leaf.cert_der, twin.cert_der);
    let mut server = support::serving(&leaf)?;
    server.set_protocol(SslProtocol::TlsV1_2);
    let listener = SslServer::listen("127.0.0.1:0", server)?;
    let port = listener.local_addr().port();
    let mut client = SslConfiguration::default();
    client.set_ca_certificates(Vec::new());
    client.set_protocol(SslProtocol::TlsV1_2);

    let mut first = SslSocket::with_configuration(client.clone());
    first.ignore_ssl_errors();
    first.connect_to_host_encrypted("localhost", port);
    first.wait_for_encrypted(WAIT)?;
    let _ = first.wait_for_ready_read(Duration::from_millis(300));
    let errors = first.ssl_handshake_errors().to_vec();
    assert!(!errors.is_empty());
    first.close()?;

    // The control: the same errors ignored exactly, accepted.
    let mut control = SslSocket::with_configuration(client.clone());
    control.ignore_ssl_errors_list(&errors);
    control.connect_to_host_encrypted("localhost", port);
    control.wait_for_encrypted(WAIT)?;
    control.close()?;

    let twin_cert = sslsocket::SslCertificate::from_der(&twin.cert_der)?;
    let on_twin: Vec<SslError> = errors
        .iter()
        .map(|e| SslError::with_certificate(e.error(), twin_cert.clone()))
        .collect();
    for (label, rules) in [
        ("nothing", Vec::new()),
        (
            "the twin",
            on_twin.into_iter().map(IgnoreRule::Exact).collect(),
        ),
    ] {
        let mut socket = SslSocket::with_configuration(client.clone());
        socket.ignore_ssl_error_rules(rules);
        socket.connect_to_host_encrypted("localhost", port);
        assert!(socket.wait_for_encrypted(WAIT).is_err(), "ignoring {label}");
        assert!(!socket.is_encrypted(), "ignoring {label}: encrypted");
        assert!(!socket.core().is_session_resumed());
    }
    Ok(())
}

/// Names the constraint check once did not see, because it read fewer names than the host
/// check: a Unicode common name, and an IPv4 address spelt as a name (which a resolver
/// connects to as 192.168.1.1, outside what address constraints allow). Neither is a host
/// name any more: refused on both backends, whatever the constraints say.
#[test]
fn names_the_host_check_cannot_compare_are_never_accepted() -> TestResult {
    use sslsocket::verify::{ChainVerifier, Purpose};
    let ca = ConstrainedCa::new()?;
    let verifier = ChainVerifier::new(
        vec![SslCertificate::from_der(&ca.root_der)?],
        Purpose::ServerAuth,
    );
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    for name in [
        "b\u{fc}cher.example",
        "3232235777",
        "192.168.1",
        "0xc0a80101",
    ] {
        // The verifier alone (Qt's QSslCertificate::verify takes any host string).
        let (server, leaf) = ca.serve(name, Vec::new(), false, false, 1)?;
        let errors = verifier.verify_der(&[&leaf, &ca.intermediate_der], Some(name), now);
        assert!(!errors.is_empty(), "{name}: verified without an error");
        // And a handshake.
        let (accepted, errors) = verdict(trusting(&[&ca.root_der])?, server.port(), name, &[]);
        assert!(!accepted, "{name}: accepted, errors {errors:?}");
    }
    Ok(())
}
