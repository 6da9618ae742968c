//! Server-side SNI, certificate hot reload, the bind-time key check and the client
//! certificate resolver, on the blocking driver with the active backend, against our own
//! client and `openssl s_client -servername`.

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    CertificateRequest, ClientCertificateResolver, Error, PeerVerifyMode,
    ServerCertificateResolver, ServerCredentials, SslCertificate, SslConfiguration, SslIdentity,
    SslKey,
};
use support::{os_args, serving, trusting, Issued, OpensslClient, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(20);

fn identity(issued: &Issued) -> Result<SslIdentity, Box<dyn std::error::Error>> {
    let chain = issued
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SslIdentity::new(chain, SslKey::from_der(&issued.key_der)?)?)
}

/// Our client asking for `name`; `QueryPeer`, so a certificate for another name still
/// shows which one the server chose.
fn connect_as(pki: &Pki, port: u16, name: &str) -> Result<SslSocket, Box<dyn std::error::Error>> {
    let mut configuration = trusting(pki)?;
    configuration.set_peer_verify_mode(PeerVerifyMode::QueryPeer);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.set_peer_verify_name(name);
    socket.connect_to_host_encrypted("127.0.0.1", port);
    socket.wait_for_encrypted(WAIT)?;
    Ok(socket)
}

fn served_leaf(socket: &SslSocket) -> Vec<u8> {
    socket
        .peer_certificate()
        .map(|c| c.der().to_vec())
        .unwrap_or_default()
}

fn accepted(
    server: &SslServer,
) -> Result<sslsocket::blocking::SslSocket, Box<dyn std::error::Error>> {
    match server.next_connection(WAIT)? {
        Ok(socket) => Ok(socket),
        Err(failed) => Err(format!(
            "server handshake failed: {:?}",
            failed.ssl_handshake_errors()
        )
        .into()),
    }
}

struct Sites {
    pki: Pki,
    default: Issued,
    api: Issued,
    wildcard: Issued,
}

fn sites() -> Result<Sites, Box<dyn std::error::Error>> {
    let pki = Pki::new()?;
    Ok(Sites {
        default: pki.leaf("localhost", &["localhost"])?,
        api: pki.leaf("api.example.com", &["api.example.com"])?,
        wildcard: pki.wildcard_leaf("*.example.com")?,
        pki,
    })
}

fn sni_configuration(sites: &Sites) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = serving(&sites.default)?;
    configuration
        .add_server_name_certificate("*.example.com", identity(&sites.wildcard)?)?
        .add_server_name_certificate("api.example.com", identity(&sites.api)?)?;
    Ok(configuration)
}

#[test]
fn the_server_picks_the_certificate_by_the_name_the_client_sent() -> TestResult {
    let sites = sites()?;
    let server = SslServer::listen("127.0.0.1:0", sni_configuration(&sites)?)?;
    let port = server.local_addr().port();
    // Exact beats the wildcard that also matches; the wildcard takes one label only.
    for (name, expected) in [
        ("api.example.com", &sites.api),
        ("API.Example.COM", &sites.api),
        ("www.example.com", &sites.wildcard),
        ("a.b.example.com", &sites.default),
        ("example.com", &sites.default),
        ("localhost", &sites.default),
    ] {
        let client = connect_as(&sites.pki, port, name)?;
        assert_eq!(served_leaf(&client), expected.cert_der, "for {name}");
        let socket = accepted(&server)?;
        assert_eq!(
            socket.requested_server_name().map(str::to_ascii_lowercase),
            Some(name.to_ascii_lowercase()),
            "the server's record of the name asked for"
        );
    }
    Ok(())
}

#[test]
fn a_client_sending_no_name_gets_the_default_and_the_socket_says_none() -> TestResult {
    let sites = sites()?;
    let server = SslServer::listen("127.0.0.1:0", sni_configuration(&sites)?)?;
    let port = server.local_addr().port();
    // An IP address is never sent as SNI.
    let client = connect_as(&sites.pki, port, "127.0.0.1")?;
    assert_eq!(served_leaf(&client), sites.default.cert_der);
    let socket = accepted(&server)?;
    assert_eq!(socket.requested_server_name(), None);
    assert_eq!(
        client.requested_server_name(),
        None,
        "a client socket has none"
    );
    Ok(())
}

#[test]
fn openssl_s_client_with_servername_gets_the_mapped_certificate() -> TestResult {
    let sites = sites()?;
    let server = SslServer::listen("127.0.0.1:0", sni_configuration(&sites)?)?;
    let port = server.local_addr().port();
    for (name, expected) in [
        ("api.example.com", "api.example.com"),
        ("shop.example.com", "*.example.com"),
        ("other.test", "localhost"),
    ] {
        let run = OpensslClient::run(
            port,
            &os_args!["-servername", name, "-CAfile", sites.pki.root_pem()],
            b"",
            WAIT,
        )?;
        let output = run.stdout.clone();
        let subject = output
            .lines()
            .find(|l| l.starts_with("subject="))
            .ok_or_else(|| format!("no subject line in {output}"))?;
        assert!(
            subject.ends_with(&format!("CN = {expected}"))
                || subject.ends_with(&format!("CN={expected}")),
            "for {name}: {subject}"
        );
        let socket = accepted(&server)?;
        assert_eq!(socket.requested_server_name(), Some(name));
    }
    Ok(())
}

struct PickByName {
    identity: SslIdentity,
    calls: AtomicUsize,
    names: Mutex<Vec<Option<String>>>,
}

impl ServerCertificateResolver for PickByName {
    fn resolve(&self, server_name: Option<&str>) -> Option<SslIdentity> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut names) = self.names.lock() {
            names.push(server_name.map(str::to_string));
        }
        (server_name == Some("hook.example.com")).then(|| self.identity.clone())
    }
}

#[test]
fn a_resolver_hook_is_asked_first_and_none_falls_through_to_the_map() -> TestResult {
    let sites = sites()?;
    let hooked = sites.pki.leaf("hook.example.com", &["hook.example.com"])?;
    let hook = Arc::new(PickByName {
        identity: identity(&hooked)?,
        calls: AtomicUsize::new(0),
        names: Mutex::new(Vec::new()),
    });
    let mut configuration = sni_configuration(&sites)?;
    configuration.set_server_certificate_resolver(Some(hook.clone()));
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();

    let client = connect_as(&sites.pki, port, "hook.example.com")?;
    assert_eq!(
        served_leaf(&client),
        hooked.cert_der,
        "the hook's choice wins over the wildcard"
    );
    accepted(&server)?;
    let client = connect_as(&sites.pki, port, "api.example.com")?;
    assert_eq!(
        served_leaf(&client),
        sites.api.cert_der,
        "the hook said none: the map"
    );
    accepted(&server)?;
    assert_eq!(hook.calls.load(Ordering::SeqCst), 2);
    let names = hook.names.lock().map(|n| n.clone()).unwrap_or_default();
    assert_eq!(
        names,
        vec![
            Some("hook.example.com".to_string()),
            Some("api.example.com".to_string())
        ]
    );
    Ok(())
}

#[test]
fn a_hook_identity_whose_key_does_not_match_fails_the_handshake() -> TestResult {
    let sites = sites()?;
    let hooked = sites.pki.leaf("hook.example.com", &["hook.example.com"])?;
    let chain = vec![SslCertificate::from_der(&hooked.cert_der)?];
    let wrong_key = SslKey::from_der(&sites.api.key_der)?;
    let hook = Arc::new(PickByName {
        identity: SslIdentity::new(chain, wrong_key)?,
        calls: AtomicUsize::new(0),
        names: Mutex::new(Vec::new()),
    });
    let mut configuration = serving(&sites.default)?;
    configuration.set_server_certificate_resolver(Some(hook));
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();
    assert!(
        connect_as(&sites.pki, port, "hook.example.com").is_err(),
        "fails closed"
    );
    // The server goes on for other names.
    let client = connect_as(&sites.pki, port, "localhost")?;
    assert_eq!(served_leaf(&client), sites.default.cert_der);
    Ok(())
}

fn mismatched(sites: &Sites) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(vec![SslCertificate::from_der(&sites.default.cert_der)?])
        .set_private_key(SslKey::from_der(&sites.api.key_der)?);
    Ok(configuration)
}

#[test]
fn a_key_that_does_not_match_the_certificate_fails_at_listen() -> TestResult {
    let sites = sites()?;
    let error = SslServer::listen("127.0.0.1:0", mismatched(&sites)?).err();
    assert!(matches!(error, Some(Error::Config(_))), "{error:?}");

    // In the server-name map too.
    let mut configuration = serving(&sites.default)?;
    let chain = vec![SslCertificate::from_der(&sites.api.cert_der)?];
    configuration.add_server_name_certificate(
        "api.example.com",
        SslIdentity::new(chain, SslKey::from_der(&sites.wildcard.key_der)?)?,
    )?;
    let error = SslServer::listen("127.0.0.1:0", configuration).err();
    assert!(
        matches!(&error, Some(Error::Config(e)) if e.to_string().contains("api.example.com")),
        "{error:?}"
    );

    // And a server without a certificate.
    let error = SslServer::listen("127.0.0.1:0", SslConfiguration::default()).err();
    assert!(matches!(error, Some(Error::Config(_))), "{error:?}");
    Ok(())
}

#[test]
fn malformed_server_name_patterns_are_refused() -> TestResult {
    let sites = sites()?;
    let mut configuration = SslConfiguration::default();
    for bad in ["*.*.example.com", "a.*.example.com", "", "exa mple.com"] {
        assert!(
            configuration
                .add_server_name_certificate(bad, identity(&sites.api)?)
                .is_err(),
            "{bad:?} accepted"
        );
    }
    assert!(configuration.server_name_certificates().is_empty());
    Ok(())
}

fn exchange(socket: &mut SslSocket, peer: &mut SslSocket, data: &[u8]) -> TestResult {
    socket.write_all(data)?;
    socket.flush()?;
    peer.wait_for_ready_read(WAIT)?;
    let mut got = vec![0u8; data.len()];
    peer.read_exact(&mut got)?;
    assert_eq!(got, data);
    Ok(())
}

#[test]
fn reload_applies_to_new_handshakes_and_leaves_open_connections_alone() -> TestResult {
    let sites = sites()?;
    let server = SslServer::listen("127.0.0.1:0", sni_configuration(&sites)?)?;
    let port = server.local_addr().port();
    let mut before = connect_as(&sites.pki, port, "localhost")?;
    let mut before_server = accepted(&server)?;
    assert_eq!(served_leaf(&before), sites.default.cert_der);

    // New default certificate, and the map now has one name only.
    let renewed = sites.pki.leaf("localhost", &["localhost"])?;
    let mut credentials = ServerCredentials::new(identity(&renewed)?);
    credentials.add_server_name("api.example.com", identity(&sites.api)?)?;
    server.reload(&credentials)?;

    let after = connect_as(&sites.pki, port, "localhost")?;
    assert_eq!(
        served_leaf(&after),
        renewed.cert_der,
        "new handshakes use the new one"
    );
    accepted(&server)?;
    let wildcard_gone = connect_as(&sites.pki, port, "www.example.com")?;
    assert_eq!(
        served_leaf(&wildcard_gone),
        renewed.cert_der,
        "the map was replaced"
    );
    accepted(&server)?;
    let api = connect_as(&sites.pki, port, "api.example.com")?;
    assert_eq!(served_leaf(&api), sites.api.cert_der);
    accepted(&server)?;

    // The connection from before still runs, with its own certificate.
    exchange(&mut before, &mut before_server, b"still here")?;
    exchange(&mut before_server, &mut before, b"and back")?;
    assert_eq!(served_leaf(&before), sites.default.cert_der);
    Ok(())
}

#[test]
fn a_failed_reload_changes_nothing() -> TestResult {
    let sites = sites()?;
    let server = SslServer::listen("127.0.0.1:0", serving(&sites.default)?)?;
    let port = server.local_addr().port();
    let chain = vec![SslCertificate::from_der(&sites.api.cert_der)?];
    let wrong = SslIdentity::new(chain, SslKey::from_der(&sites.default.key_der)?)?;
    let handle = server.reload_handle();
    assert!(handle.reload(&ServerCredentials::new(wrong)).is_err());
    let client = connect_as(&sites.pki, port, "localhost")?;
    assert_eq!(served_leaf(&client), sites.default.cert_der);
    Ok(())
}

#[test]
fn a_staple_set_on_a_clone_does_not_change_other_clones_or_the_default() -> TestResult {
    let original = SslConfiguration::default();
    let mut clone = original.clone();
    clone.set_ocsp_response(Some(vec![1, 2, 3]));
    assert_eq!(clone.ocsp_response(), Some(&[1u8, 2, 3][..]));
    assert_eq!(original.ocsp_response(), None);
    assert_eq!(
        SslConfiguration::default_configuration().ocsp_response(),
        None
    );
    assert_ne!(clone, original);

    let mut from_default = SslConfiguration::default_configuration();
    from_default.set_ocsp_response(Some(vec![4]));
    assert_eq!(
        SslConfiguration::default_configuration().ocsp_response(),
        None
    );
    Ok(())
}

struct ChooseByIssuer {
    identity: SslIdentity,
    requests: Mutex<Vec<CertificateRequest>>,
}

impl ClientCertificateResolver for ChooseByIssuer {
    fn resolve(&self, request: &CertificateRequest) -> Option<SslIdentity> {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(request.clone());
        }
        Some(self.identity.clone())
    }
}

#[test]
fn a_client_chooses_its_certificate_from_the_servers_request() -> TestResult {
    let sites = sites()?;
    let client_leaf = sites.pki.client_cert(true)?;
    let resolver = Arc::new(ChooseByIssuer {
        identity: identity(&client_leaf)?,
        requests: Mutex::new(Vec::new()),
    });
    let mut server_configuration = serving(&sites.default)?;
    server_configuration
        .set_ca_certificates(vec![SslCertificate::from_der(sites.pki.root_der())?])
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .set_missing_certificate_is_fatal(true);
    let server = SslServer::listen("127.0.0.1:0", server_configuration)?;
    let port = server.local_addr().port();

    let mut configuration = trusting(&sites.pki)?;
    configuration.set_client_certificate_resolver(Some(resolver.clone()));
    let mut client = SslSocket::with_configuration(configuration);
    client.connect_to_host_encrypted("localhost", port);
    let outcome = client.wait_for_encrypted(WAIT);
    eprintln!("backend: {}", support::active_backend());
    if support::active_backend() == "openssl" {
        let Err(error) = outcome else {
            return Err("the openssl backend accepted a client certificate resolver".into());
        };
        support::check_unsupported(
            client.error(),
            &error.to_string(),
            "client certificate resolver",
        )?;
        return Ok(());
    }
    outcome?;
    let socket = accepted(&server)?;
    assert_eq!(
        socket.peer_certificate().map(|c| c.der().to_vec()),
        Some(client_leaf.cert_der.clone())
    );
    let requests = resolver
        .requests
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    assert_eq!(requests.len(), 1);
    // The server names its CA: the root's subject, a DER `Name` inside its certificate.
    let root = sites.pki.root_der();
    assert!(
        requests[0]
            .acceptable_issuers
            .iter()
            .any(|name| name.len() > 10 && root.windows(name.len()).any(|w| w == name.as_slice())),
        "the server's CA is among the acceptable issuers: {:?}",
        requests[0].acceptable_issuers
    );
    assert!(!requests[0].signature_schemes.is_empty());
    Ok(())
}

fn stapling_client_as(
    pki: &Pki,
    port: u16,
    name: &str,
) -> Result<SslSocket, Box<dyn std::error::Error>> {
    let mut configuration = trusting(pki)?;
    configuration.set_ocsp_stapling_enabled(true);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.set_peer_verify_name(name);
    socket.connect_to_host_encrypted("127.0.0.1", port);
    let _ = socket.wait_for_encrypted(WAIT);
    Ok(socket)
}

#[test]
fn each_name_staples_its_own_response_and_reload_replaces_the_staples() -> TestResult {
    use sslsocket::OcspCertificateStatus;
    let sites = sites()?;
    let api_good = std::fs::read(support::ocsp_response(
        &sites.pki, &sites.api, false, "api",
    )?)?;
    let default_good = std::fs::read(support::ocsp_response(
        &sites.pki,
        &sites.default,
        false,
        "default",
    )?)?;
    let default_revoked = std::fs::read(support::ocsp_response(
        &sites.pki,
        &sites.default,
        true,
        "revoked",
    )?)?;
    let mut configuration = serving(&sites.default)?;
    configuration.add_server_name_certificate(
        "api.example.com",
        identity(&sites.api)?.with_ocsp_response(Some(api_good)),
    )?;
    let server = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = server.local_addr().port();

    let api = stapling_client_as(&sites.pki, port, "api.example.com")?;
    assert!(api.is_encrypted(), "{:?}", api.ssl_handshake_errors());
    assert_eq!(served_leaf(&api), sites.api.cert_der);
    assert_eq!(
        api.ocsp_responses().first().map(|r| r.certificate_status()),
        Some(OcspCertificateStatus::Good)
    );
    // The default identity has no staple: a client that asked for one gets none.
    let plain = stapling_client_as(&sites.pki, port, "localhost")?;
    assert!(!plain.is_encrypted());
    assert!(plain.ocsp_responses().is_empty());

    let with_staple = identity(&sites.default)?.with_ocsp_response(Some(default_good));
    server.reload(&ServerCredentials::new(with_staple))?;
    let renewed = stapling_client_as(&sites.pki, port, "localhost")?;
    assert!(
        renewed.is_encrypted(),
        "{:?}",
        renewed.ssl_handshake_errors()
    );

    server.set_ocsp_response(Some(default_revoked))?;
    let revoked = stapling_client_as(&sites.pki, port, "localhost")?;
    assert!(!revoked.is_encrypted());
    assert_eq!(
        revoked
            .ocsp_responses()
            .first()
            .map(|r| r.certificate_status()),
        Some(OcspCertificateStatus::Revoked)
    );
    Ok(())
}
