//! Round 36 review (A4): the OpenSSL backend's verification decisions. OpenSSL's verify
//! callback runs per certificate; `verifier.rs` decides at the depth-0 success call
//! (`decide_now`) and decides again when OpenSSL reports an error after that call
//! (`check_name_constraints`, RFC 3779, policies). Attacked here: hooks and interruptions
//! asked twice, a late error dropped, a pause resumed with a partial ignore list, the
//! lists of both backends for the same chain; and a paused server refusing a raw TLS 1.2 /
//! TLS 1.3 client by every means. Both backends (run again with
//! `SSLSOCKET_BACKEND=openssl`), both drivers; peers on 127.0.0.1, certificates made here.
//! `cargo test -p sslsocket --all-features --test openssl_round36`.
mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CustomExtension, DnType, GeneralSubtree, KeyPair, NameConstraints, SanType};
use sslsocket::prelude::*;
use sslsocket::{Handshake, SslConfiguration, SslError, SslErrorKind, SslEvent, Verdict};
use support::attack::{AttackServer, ATTACK_MESSAGE};
use support::chains::*;
use support::trust::{error_set, RecordingHooks};
use support::{Blocking, ClientDriver, Tokio};

use SslErrorKind::*;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

// ----- chains ------------------------------------------------------------------------------

/// nameConstraints permitting dNSName `localhost` with a written-out `minimum 1` (RFC 5280:
/// the minimum MUST be 0, so DER leaves it out). Our rules put `UnspecifiedError` on the CA
/// (its extension is not as RFC 5280 profiles it); OpenSSL's `nc_minmax_valid` reports
/// `X509_V_ERR_SUBTREE_MINMAX` on the leaf from `check_name_constraints`, after the depth-0
/// call: a late error.
fn min_bound_constraints() -> Vec<u8> {
    let mut der = vec![0x30, 0x12, 0xa0, 0x10, 0x30, 0x0e, 0x82, 0x09];
    der.extend_from_slice(b"localhost");
    der.extend_from_slice(&[0x80, 0x01, 0x01]);
    der
}

/// RFC 3779 sbgp-ipAddrBlock, critical: IPv4 `inherit`. OpenSSL's
/// `X509v3_addr_validate_path` starts at the leaf and finds nothing to check when the leaf
/// has none; our rules refuse any certificate carrying resources (`UnspecifiedError`).
fn ip_resources() -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 7],
        vec![0x30, 0x08, 0x30, 0x06, 0x04, 0x02, 0x00, 0x01, 0x05, 0x00],
    );
    ext.set_criticality(true);
    ext
}

/// A trusted root, a CA under it with the `minimum 1` constraint (and RFC 3779 resources
/// when `resources`), a `localhost` leaf under that CA (EKU serverAuth and clientAuth).
struct LateChain {
    root: Ca,
    ca: Ca,
    leaf: Vec<u8>,
    key: KeyPair,
}

impl LateChain {
    fn new(resources: bool) -> BoxResult<LateChain> {
        let root = root("A4 Root")?;
        let ca = sub_ca_with(&root, "A4 Bounded CA", None, |params| {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 30],
                    min_bound_constraints(),
                ));
            if resources {
                params.custom_extensions.push(ip_resources());
            }
        })?;
        let (leaf, key) = leaf(&ca, "localhost", |params| {
            params.extended_key_usages = vec![
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            ];
        })?;
        Ok(LateChain {
            root,
            ca,
            leaf,
            key,
        })
    }

    fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.leaf.clone(), self.ca.der.clone()]
    }

    /// The CA's error (our rules) and the leaf's (OpenSSL's late one; webpki's too).
    fn ca_error(&self) -> BoxResult<SslError> {
        on(UnspecifiedError, &self.ca.der)
    }

    fn leaf_error(&self) -> BoxResult<SslError> {
        on(UnspecifiedError, &self.leaf)
    }

    fn client_configuration(&self) -> BoxResult<SslConfiguration> {
        let mut configuration = SslConfiguration::default();
        configuration.set_ca_certificates(vec![cert(&self.root.der)?]);
        Ok(configuration)
    }
}

/// What a client saw of one handshake with a server of `chain`.
struct Seen {
    /// `handshake()`'s result.
    handshake: Result<Handshake, sslsocket::Error>,
    encrypted: bool,
    errors: Vec<SslError>,
    events: Vec<SslEvent>,
    /// Bytes the server sent that the client could read.
    read: Vec<u8>,
}

/// A client of driver `D` to a raw rustls server serving `chain`: connects to 127.0.0.1
/// verifying `peer_name`, `setup` applied before the handshake, `after` applied to what
/// `handshake()` gave (a pause's decision). Every wait bounded.
fn connect<D: ClientDriver>(
    configuration: SslConfiguration,
    chain: Vec<Vec<u8>>,
    key: &KeyPair,
    peer_name: &str,
    setup: impl FnOnce(&mut D::Socket),
    after: impl FnOnce(&mut D, &Result<Handshake, sslsocket::Error>),
) -> BoxResult<Seen> {
    let server = AttackServer::start(chain, &key.serialize_der(), 1)?;
    let peer_name = peer_name.to_string();
    let mut client = D::start("127.0.0.1", server.port(), configuration, move |s| {
        s.set_peer_verify_name(peer_name);
        setup(s);
    })?;
    let handshake = client.handshake(WAIT);
    after(&mut client, &handshake);
    let encrypted = client.socket().is_encrypted();
    let mut read = Vec::new();
    if encrypted {
        let _ = client.wait_for_ready_read(Duration::from_millis(300));
        read = client.socket().read_all();
    }
    let errors = client.socket().ssl_handshake_errors().to_vec();
    let events = client.socket().take_events();
    Ok(Seen {
        handshake,
        encrypted,
        errors,
        events,
        read,
    })
}

fn set(errors: &[SslError]) -> BTreeSet<support::trust::ErrorOn> {
    error_set(errors)
}

/// Runs a test on the blocking driver, then on the tokio driver, whatever the first gave
/// (a failure is reported for each driver it happens on).
fn on_both_drivers(blocking: fn() -> TestResult, tokio: fn() -> TestResult) -> TestResult {
    let outcome = |name: &str, run: fn() -> TestResult| match std::panic::catch_unwind(run) {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{name}: {e}")),
        Err(_) => Some(format!("{name}: failed (see its panic above)")),
    };
    let failures: Vec<String> = [outcome("blocking", blocking), outcome("tokio", tokio)]
        .into_iter()
        .flatten()
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

// ----- hooks asked again after a late error ------------------------------------------------

// Was a defect (round 36): OpenSSL backend, both drivers: `SslHooks::ssl_errors` is called TWICE for one
// handshake when OpenSSL reports an error after its depth-0 call (here the leaf's
// X509_V_ERR_SUBTREE_MINMAX from `check_name_constraints`, under a CA whose name
// constraint has a written-out minimum): first with [CA's UnspecifiedError], then again
// with [leaf's, CA's]. The trait promises "called once with every verification error
// found" (Qt emits `sslErrors` once); a hook that asks a user, logs or counts is asked
// twice, and its first answer was about a partial list. rustls: one call with both. Right:
// one call, with every error, as on rustls (OpenSSL's findings must all be in before the
// policy is asked).
#[test]
fn openssl_asks_the_ssl_errors_hook_once_when_a_constraint_error_comes_late() -> TestResult {
    fn run<D: ClientDriver>() -> TestResult {
        let chain = LateChain::new(false)?;
        let hooks = RecordingHooks::new(Verdict::Ignore, None);
        let installed = Arc::clone(&hooks);
        let seen = connect::<D>(
            chain.client_configuration()?,
            chain.chain(),
            &chain.key,
            "localhost",
            move |s| s.set_hooks(installed),
            |_, _| {},
        )?;
        let expected = set(&[chain.ca_error()?, chain.leaf_error()?]);
        assert_eq!(set(&seen.errors), expected, "{}", D::NAME);
        assert!(seen.encrypted, "{}: the hook ignored every error", D::NAME);
        let calls = hooks.calls().ssl_errors;
        let lists: Vec<_> = calls.iter().map(|list| kinds_on(list)).collect();
        assert_eq!(
            calls.len(),
            1,
            "{} on {}: ssl_errors called {} times: {lists:?}",
            D::NAME,
            support::active_backend(),
            calls.len()
        );
        assert_eq!(calls.first().map(|list| set(list)), Some(expected));
        Ok(())
    }
    on_both_drivers(run::<Blocking>, run::<Tokio>)
}

// Was a defect (round 36): OpenSSL backend, both drivers, `handshake_must_interrupt_on_error`: the same late
// error makes `decide_now` run the interruptions again from the first error, so
// `SslHooks::handshake_interrupted` is asked about the CA's error twice (the application
// already continued past it) and then about the leaf's: 3 calls for 2 errors. Qt's
// `handshakeInterruptedOnError` is emitted once per error. Right: each error interrupts
// once (2 calls), as on rustls.
#[test]
fn openssl_interrupts_once_per_error_when_a_constraint_error_comes_late() -> TestResult {
    fn run<D: ClientDriver>() -> TestResult {
        let chain = LateChain::new(false)?;
        let hooks = RecordingHooks::new(Verdict::UsePolicy, Some(Verdict::Ignore));
        let installed = Arc::clone(&hooks);
        let mut configuration = chain.client_configuration()?;
        configuration.set_handshake_must_interrupt_on_error(true);
        let seen = connect::<D>(
            configuration,
            chain.chain(),
            &chain.key,
            "localhost",
            move |s| s.set_hooks(installed),
            |_, _| {},
        )?;
        assert!(seen.encrypted, "{}: continued past every error", D::NAME);
        let interrupted = hooks.calls().interrupted;
        let interruptions: Vec<&SslError> = seen
            .events
            .iter()
            .filter_map(|e| match e {
                SslEvent::HandshakeInterruptedOnError(error) => Some(error),
                _ => None,
            })
            .collect();
        assert_eq!(interruptions.len(), 2, "{}: {:?}", D::NAME, seen.events);
        assert_eq!(
            interrupted.len(),
            2,
            "{} on {}: handshake_interrupted asked {:?}",
            D::NAME,
            support::active_backend(),
            kinds_on(&interrupted)
        );
        assert_eq!(
            set(&interrupted),
            set(&[chain.ca_error()?, chain.leaf_error()?])
        );
        Ok(())
    }
    on_both_drivers(run::<Blocking>, run::<Tokio>)
}

// ----- a late error dropped ----------------------------------------------------------------

// Was a defect (round 36): OpenSSL backend, both drivers: FAIL OPEN. On a path that carries RFC 3779
// resources, any `UnspecifiedError` OpenSSL reports after the decision is taken for its
// RFC 3779 finding (`Collected::rfc_3779_judged`, verifier.rs: kind == UnspecifiedError
// && rfc_3779_on_path) and skipped, whatever certificate it is on and whatever it is about.
// Here the CA carries resources and a bounded name constraint; the application ignores
// exactly the CA's `UnspecifiedError`; OpenSSL's late SUBTREE_MINMAX on the LEAF is
// dropped: the connection is encrypted, the leaf's error is not even listed. rustls (and
// OpenSSL on the same chain without the resources) lists the leaf's error and refuses.
// Right: a late error is skipped only when that very error (kind and certificate) was
// judged; an RFC 3779 finding on a certificate our rules did not flag must be judged too.
#[test]
fn a_late_error_on_a_path_with_rfc_3779_resources_is_not_dropped() -> TestResult {
    fn run<D: ClientDriver>() -> TestResult {
        let chain = LateChain::new(true)?;
        let ignored = vec![chain.ca_error()?];
        let seen = connect::<D>(
            chain.client_configuration()?,
            chain.chain(),
            &chain.key,
            "localhost",
            move |s| s.ignore_ssl_errors_list(&ignored),
            |_, _| {},
        )?;
        assert!(
            seen.errors.contains(&chain.leaf_error()?),
            "{} on {}: the leaf's error is missing: {:?}",
            D::NAME,
            support::active_backend(),
            kinds_on(&seen.errors)
        );
        assert!(
            !seen.encrypted && seen.read.is_empty(),
            "{} on {}: accepted with the leaf's error unignored",
            D::NAME,
            support::active_backend()
        );
        Ok(())
    }
    on_both_drivers(run::<Blocking>, run::<Tokio>)
}

// Was a defect (round 36): OpenSSL backend, both drivers: the same drop through a pause. Paused
// (PauseOnSslErrors), the decision lists only the CA's error; the application ignores that
// one error and resumes: the handshake completes (and the attacker's 0.5-RTT bytes become
// readable) although the leaf's late error was never ignored. Without the RFC 3779
// resources (checked first here) the late error is in the decision and resume() refuses:
// that part holds. Right: the decision lists the leaf's error, resume() refuses.
#[test]
fn resume_with_only_the_early_error_ignored_refuses_the_late_one() -> TestResult {
    fn run<D: ClientDriver>(resources: bool) -> TestResult {
        let chain = LateChain::new(resources)?;
        let ca_error = chain.ca_error()?;
        let mut decision = Vec::new();
        let mut resumed = None;
        let seen = connect::<D>(
            chain.client_configuration()?,
            chain.chain(),
            &chain.key,
            "localhost",
            |s| s.set_pause_mode(sslsocket::PauseMode::PauseOnSslErrors),
            |client, handshake| {
                if let Ok(Handshake::NeedsDecision(pending)) = handshake {
                    decision = pending.errors.clone();
                    client.socket().ignore_ssl_errors_list(&[ca_error]);
                    resumed = Some(client.socket().resume().is_ok());
                    let _ = client.wait_for_encrypted(WAIT);
                }
            },
        )?;
        let what = format!(
            "{} on {}, resources={resources}",
            D::NAME,
            support::active_backend()
        );
        assert!(
            matches!(seen.handshake, Ok(Handshake::NeedsDecision(_))),
            "{what}: not paused: {:?}",
            seen.handshake.as_ref().err()
        );
        assert!(
            !seen
                .read
                .windows(ATTACK_MESSAGE.len())
                .any(|w| w == ATTACK_MESSAGE),
            "{what}: the server's bytes were read after resume() (decision: {:?})",
            kinds_on(&decision)
        );
        assert_eq!(resumed, Some(false), "{what}: resume() accepted");
        assert!(!seen.encrypted, "{what}: encrypted");
        assert!(
            decision.contains(&chain.leaf_error()?),
            "{what}: the decision misses the leaf's error: {:?}",
            kinds_on(&decision)
        );
        Ok(())
    }
    // Without the resources first: that part holds.
    on_both_drivers(|| run::<Blocking>(false), || run::<Tokio>(false))?;
    on_both_drivers(|| run::<Blocking>(true), || run::<Tokio>(true))
}

// ----- backend parity ------------------------------------------------------------------------

// Was a defect (round 36): backend parity, the lists' order. For the bounded-constraint chain both backends
// list the same two errors, but in a different order: rustls [CA's, leaf's], OpenSSL
// [leaf's, CA's] (the late error is appended to OpenSSL's own list before `decide_now`
// adds our rules' errors; `order_like_rustls` sorts by kind only). verifier.rs promises
// "the same order here keeps the lists of both backends equal". Right: the same list,
// in the same order, on both (blocking driver).
#[test]
fn both_backends_list_a_late_constraint_error_in_the_same_order() -> TestResult {
    let chain = LateChain::new(false)?;
    let expected = vec![chain.ca_error()?, chain.leaf_error()?];
    let ignored = expected.clone();
    let seen = connect::<Blocking>(
        chain.client_configuration()?,
        chain.chain(),
        &chain.key,
        "localhost",
        move |s| s.ignore_ssl_errors_list(&ignored),
        |_, _| {},
    )?;
    assert_eq!(
        kinds_on(&seen.errors),
        kinds_on(&expected),
        "on {}",
        support::active_backend()
    );
    assert!(seen.encrypted);
    Ok(())
}

/// A CA under a new root permitting dNSName `example.com`, and a leaf under it whose only
/// alternative name is 127.0.0.1 and whose common name holds a NUL (`a\0b.example.org`).
fn nul_common_name_chain() -> BoxResult<(Ca, Ca, Vec<u8>, KeyPair)> {
    let root = root("A4 NUL Root")?;
    let ca = sub_ca_with(&root, "A4 DNS-constrained CA", None, |params| {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![],
        });
    })?;
    let (leaf_der, key) = leaf(&ca, "unused", |params| {
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "a\0b.example.org");
        params.subject_alt_names = vec![SanType::IpAddress(LOOPBACK)];
    })?;
    Ok((root, ca, leaf_der, key))
}

// Was a defect (round 36): backend parity, rustls backend (both drivers): a leaf with no DNS name whose
// common name holds a NUL (`a\0b.example.org`, the classic NUL-prefix name), under a CA
// with a DNS name constraint, connected by its IP address. OpenSSL (Qt's backend, the
// reference) cannot read that common name as a host and reports
// X509_V_ERR_UNSUPPORTED_NAME_SYNTAX (`NAME_CONSTRAINTS_check_CN`/`cn2dnsid`): the OpenSSL
// backend lists `UnspecifiedError` on the leaf and refuses. The rustls backend lists
// nothing and connects: our constraint rules (verify/constraints.rs `common_name_hosts`)
// skip a common name that cannot be a host instead of treating "a name of a form that
// cannot be compared" as a violation, their own fail-closed rule. Right: the same list on
// both, the leaf's `UnspecifiedError`, refused (fail closed, as Qt over OpenSSL).
#[test]
fn a_nul_in_a_common_name_under_a_constrained_ca_is_refused_on_both_backends() -> TestResult {
    fn run<D: ClientDriver>() -> TestResult {
        let (root, ca, leaf_der, key) = nul_common_name_chain()?;
        let mut configuration = SslConfiguration::default();
        configuration.set_ca_certificates(vec![cert(&root.der)?]);
        let seen = connect::<D>(
            configuration,
            vec![leaf_der.clone(), ca.der.clone()],
            &key,
            "127.0.0.1",
            |_| {},
            |_, _| {},
        )?;
        assert_eq!(
            set(&seen.errors),
            set(&[on(UnspecifiedError, &leaf_der)?]),
            "{} on {}: {:?}",
            D::NAME,
            support::active_backend(),
            kinds_on(&seen.errors)
        );
        assert!(!seen.encrypted, "{}: accepted", D::NAME);
        Ok(())
    }
    on_both_drivers(run::<Blocking>, run::<Tokio>)
}

// Held: a registeredID alternative name under a registeredID name constraint (OpenSSL:
// X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE after its decision; our rules: a type we do not
// compare, a violation on the leaf). Both backends list exactly `UnspecifiedError` on the
// leaf and refuse; the hook is asked once (the late error was judged already: no second
// decision), with the same list; resumed after a pause with that error ignored, it
// connects.
#[test]
fn a_registered_id_under_a_registered_id_constraint_is_judged_once_on_both_backends() -> TestResult
{
    let root = root("A4 RID Root")?;
    // permitted: registeredID 1.2.3.4
    let constraints = vec![
        0x30, 0x09, 0xa0, 0x07, 0x30, 0x05, 0x88, 0x03, 0x2a, 0x03, 0x04,
    ];
    let ca = sub_ca_with(&root, "A4 RID CA", None, |params| {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[2, 5, 29, 30],
                constraints,
            ));
    })?;
    // dNSName localhost, registeredID 1.2.3.4
    let mut san = vec![0x30, 0x10, 0x82, 0x09];
    san.extend_from_slice(b"localhost");
    san.extend_from_slice(&[0x88, 0x03, 0x2a, 0x03, 0x04]);
    let (leaf_der, key) = leaf(&ca, "localhost", |params| {
        params.subject_alt_names = vec![];
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(&[2, 5, 29, 17], san));
    })?;
    let expected = set(&[on(UnspecifiedError, &leaf_der)?]);
    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(vec![cert(&root.der)?]);
    let chain = vec![leaf_der.clone(), ca.der.clone()];
    // Refused, listed.
    let seen = connect::<Blocking>(
        configuration.clone(),
        chain.clone(),
        &key,
        "localhost",
        |_| {},
        |_, _| {},
    )?;
    assert_eq!(set(&seen.errors), expected);
    assert!(!seen.encrypted);
    // The hook, once (tokio).
    let hooks = RecordingHooks::new(Verdict::Ignore, None);
    let installed = Arc::clone(&hooks);
    let seen = connect::<Tokio>(
        configuration.clone(),
        chain.clone(),
        &key,
        "localhost",
        move |s| s.set_hooks(installed),
        |_, _| {},
    )?;
    assert!(seen.encrypted);
    let calls = hooks.calls().ssl_errors;
    assert_eq!(calls.len(), 1, "{:?}", calls);
    assert_eq!(calls.first().map(|l| set(l)), Some(expected.clone()));
    // Paused, that error ignored, resumed: connects (blocking).
    let leaf_error = on(UnspecifiedError, &leaf_der)?;
    let mut resumed = None;
    let seen = connect::<Blocking>(
        configuration,
        chain,
        &key,
        "localhost",
        |s| s.set_pause_mode(sslsocket::PauseMode::PauseOnSslErrors),
        |client, handshake| {
            if let Ok(Handshake::NeedsDecision(_)) = handshake {
                client.socket().ignore_ssl_errors_list(&[leaf_error]);
                resumed = Some(client.socket().resume().is_ok());
                let _ = client.wait_for_encrypted(WAIT);
            }
        },
    )?;
    assert_eq!(resumed, Some(true));
    assert!(seen.encrypted);
    assert_eq!(set(&seen.errors), expected);
    Ok(())
}

// ----- the server side: a late error on a client certificate ---------------------------------

/// Our blocking client presenting `chain`'s leaf and CA (the server is not verified).
fn presenting(chain: &LateChain) -> BoxResult<SslConfiguration> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(vec![cert(&chain.leaf)?, cert(&chain.ca.der)?])
        .set_private_key(sslsocket::SslKey::from_der(&chain.key.serialize_der())?)
        .set_peer_verify_mode(sslsocket::PeerVerifyMode::VerifyNone);
    Ok(configuration)
}

/// A server configuration of `pki`'s `localhost` leaf verifying clients against `root`.
fn verifying_server(pki: &support::Pki, root: &[u8]) -> BoxResult<SslConfiguration> {
    let mut configuration = support::serving(&pki.leaf("localhost", &["localhost"])?)?;
    configuration
        .set_ca_certificates(vec![cert(root)?])
        .set_peer_verify_mode(sslsocket::PeerVerifyMode::VerifyPeer);
    Ok(configuration)
}

/// Connects our blocking client with `client` to 127.0.0.1:`port` (in a thread), bounded.
fn client_thread(client: SslConfiguration, port: u16) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        let mut socket = sslsocket::blocking::SslSocket::with_configuration(client);
        socket.connect_to_host_encrypted("127.0.0.1", port);
        let ok = socket.wait_for_encrypted(WAIT).is_ok();
        let _ = socket.wait_for_ready_read(Duration::from_millis(200));
        socket.abort();
        ok
    })
}

// Was a defect (round 36): OpenSSL backend, both server drivers (blocking `SslServer`, tokio `SslServer`):
// the same double decision on a server verifying a client certificate: the server's
// `SslHooks::ssl_errors` is called twice for one client (first [CA's], then [leaf's, CA's]).
// Right: once, with every error (rustls: once).
#[test]
fn an_openssl_server_asks_its_hooks_once_for_a_client_with_a_late_error() -> TestResult {
    let pki = support::Pki::new()?;
    let chain = LateChain::new(false)?;
    let expected = set(&[chain.ca_error()?, chain.leaf_error()?]);
    let mut failures = Vec::new();
    // Blocking server.
    let hooks = RecordingHooks::new(Verdict::Ignore, None);
    let server = sslsocket::blocking::SslServer::listen(
        "127.0.0.1:0",
        verifying_server(&pki, &chain.root.der)?,
    )?;
    server.set_hooks(Arc::clone(&hooks) as Arc<dyn sslsocket::SslHooks>);
    let client = client_thread(presenting(&chain)?, server.local_addr().port());
    let accepted = server.next_connection(WAIT)?.is_ok();
    let _ = support::raw::joined(client)?;
    let calls = hooks.calls().ssl_errors;
    if !accepted || calls.len() != 1 || calls.first().map(|l| set(l)) != Some(expected.clone()) {
        failures.push(format!(
            "blocking server: accepted={accepted}, ssl_errors calls {:?}",
            calls.iter().map(|l| kinds_on(l)).collect::<Vec<_>>()
        ));
    }
    // Tokio server.
    let hooks = RecordingHooks::new(Verdict::Ignore, None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let configuration = verifying_server(&pki, &chain.root.der)?;
    let installed = Arc::clone(&hooks);
    let client_configuration = presenting(&chain)?;
    let accepted = runtime.block_on(async move {
        let mut server = sslsocket::tokio::SslServer::bind("127.0.0.1:0", configuration).await?;
        server.set_hooks(installed);
        let client = client_thread(client_configuration, server.local_addr().port());
        let accepted = tokio::time::timeout(WAIT, server.accept_encrypted())
            .await
            .is_ok_and(|r| r.is_ok());
        let _ = support::raw::joined(client)?;
        Ok::<bool, Box<dyn std::error::Error>>(accepted)
    })?;
    let calls = hooks.calls().ssl_errors;
    if !accepted || calls.len() != 1 || calls.first().map(|l| set(l)) != Some(expected) {
        failures.push(format!(
            "tokio server: accepted={accepted}, ssl_errors calls {:?}",
            calls.iter().map(|l| kinds_on(l)).collect::<Vec<_>>()
        ));
    }
    assert!(
        failures.is_empty(),
        "on {}: {failures:?}",
        support::active_backend()
    );
    Ok(())
}

// ----- a paused server refusing a raw client ---------------------------------------------------

use tokio_rustls::rustls;

/// The server application's bytes, written while paused.
const QUEUED: &[u8] = b"QUEUED-BY-THE-PAUSED-SERVER\n";

/// A rustls client session store that counts what it is given.
#[derive(Debug)]
struct CountingStore {
    inner: rustls::client::ClientSessionMemoryCache,
    stored: std::sync::atomic::AtomicUsize,
}

impl CountingStore {
    fn stored(&self) -> usize {
        self.stored.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl rustls::client::ClientSessionStore for CountingStore {
    fn set_kx_hint(
        &self,
        server_name: rustls::pki_types::ServerName<'static>,
        group: rustls::NamedGroup,
    ) {
        self.inner.set_kx_hint(server_name, group)
    }
    fn kx_hint(
        &self,
        server_name: &rustls::pki_types::ServerName<'_>,
    ) -> Option<rustls::NamedGroup> {
        self.inner.kx_hint(server_name)
    }
    fn set_tls12_session(
        &self,
        server_name: rustls::pki_types::ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.stored
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.set_tls12_session(server_name, value)
    }
    fn tls12_session(
        &self,
        server_name: &rustls::pki_types::ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(server_name)
    }
    fn remove_tls12_session(&self, server_name: &rustls::pki_types::ServerName<'static>) {
        self.inner.remove_tls12_session(server_name)
    }
    fn insert_tls13_ticket(
        &self,
        server_name: rustls::pki_types::ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.stored
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.insert_tls13_ticket(server_name, value)
    }
    fn take_tls13_ticket(
        &self,
        server_name: &rustls::pki_types::ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(server_name)
    }
}

/// What a raw client saw: the plaintext it could read, the sessions it was given, how it
/// ended.
#[derive(Debug)]
struct RawSeen {
    plaintext: Vec<u8>,
    sessions: usize,
    ending: String,
}

/// A raw rustls client of `version` presenting `pki`'s untrusted client certificate to
/// 127.0.0.1:`port`, trusting `pki`'s root; reads until the connection ends (at most 5 s).
fn raw_client(
    pki: &support::Pki,
    port: u16,
    version: &'static rustls::SupportedProtocolVersion,
) -> BoxResult<std::thread::JoinHandle<Result<RawSeen, String>>> {
    let identity = pki.client_cert(false)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(
        pki.root_der().to_vec(),
    ))?;
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = identity
        .chain_der
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(identity.key_der.clone().into());
    let store = Arc::new(CountingStore {
        inner: rustls::client::ClientSessionMemoryCache::new(8),
        stored: std::sync::atomic::AtomicUsize::new(0),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[version])?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)?;
    config.resumption = rustls::client::Resumption::store(Arc::clone(&store) as _);
    let config = Arc::new(config);
    Ok(std::thread::spawn(move || -> Result<RawSeen, String> {
        use std::io::Read;
        let mut tcp =
            std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let name =
            rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut plaintext = Vec::new();
        let ending = loop {
            if std::time::Instant::now() > deadline {
                break "still open after 5 s".to_string();
            }
            while conn.wants_write() {
                if let Err(e) = conn.write_tls(&mut tcp) {
                    return Ok(RawSeen {
                        plaintext,
                        sessions: store.stored(),
                        ending: format!("write: {e}"),
                    });
                }
            }
            match conn.read_tls(&mut tcp) {
                Ok(0) => break "TCP end".to_string(),
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        break format!("TLS: {e}");
                    }
                    let mut buf = [0u8; 1024];
                    loop {
                        match conn.reader().read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => plaintext.extend_from_slice(buf.get(..n).unwrap_or(&[])),
                            Err(_) => break,
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => break format!("read: {e}"),
            }
        };
        Ok(RawSeen {
            plaintext,
            sessions: store.stored(),
            ending,
        })
    }))
}

/// How the paused server ends the connection.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    Abort,
    Close,
    Disconnect,
    Drop,
    RefusePeer,
    /// The control: the application accepts the peer, then closes gracefully (the
    /// client must read the bytes: the check can see a leak).
    AcceptPeer,
}

const REFUSALS: [Refusal; 5] = [
    Refusal::Abort,
    Refusal::Close,
    Refusal::Disconnect,
    Refusal::Drop,
    Refusal::RefusePeer,
];

/// A server configuration of `pki`'s `localhost` leaf, verifying clients against `pki`'s
/// root (the raw client's certificate is under the untrusted root: the server pauses).
fn pausing_server(pki: &support::Pki) -> BoxResult<SslConfiguration> {
    verifying_server(pki, pki.root_der())
}

fn blocking_paused_server_refuses(
    pki: &support::Pki,
    version: &'static rustls::SupportedProtocolVersion,
    refusal: Refusal,
) -> BoxResult<(bool, RawSeen)> {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let client = raw_client(pki, listener.local_addr()?.port(), version)?;
    let (stream, _) = listener.accept()?;
    let mut socket = sslsocket::blocking::SslSocket::from_tcp_stream(stream, pausing_server(pki)?)?;
    socket.set_pause_mode(sslsocket::PauseMode::PauseOnSslErrors);
    socket.set_io_timeout(Some(Duration::from_secs(2)));
    socket.start_server_encryption()?;
    let paused = support::trust::wait_until_paused(&mut socket, WAIT);
    let _ = socket.write(QUEUED);
    match refusal {
        Refusal::Abort => socket.abort(),
        Refusal::Close => {
            let _ = socket.close();
        }
        Refusal::Disconnect => {
            let _ = socket.disconnect_within(Duration::from_secs(2));
        }
        Refusal::Drop => {}
        Refusal::RefusePeer => {
            let _ = socket.refuse_peer();
        }
        Refusal::AcceptPeer => {
            let _ = socket.accept_peer();
            let _ = socket.disconnect_within(Duration::from_secs(2));
        }
    }
    drop(socket);
    let seen = support::raw::joined(client)??;
    Ok((paused, seen))
}

fn tokio_paused_server_refuses(
    pki: &support::Pki,
    version: &'static rustls::SupportedProtocolVersion,
    refusal: Refusal,
) -> BoxResult<(bool, RawSeen)> {
    use tokio::io::AsyncWriteExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let configuration = pausing_server(pki)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let client = raw_client(pki, listener.local_addr()?.port(), version)?;
    let (stream, _) = listener.accept()?;
    stream.set_nonblocking(true)?;
    let paused = runtime.block_on(async move {
        let stream = tokio::net::TcpStream::from_std(stream)?;
        let mut socket = sslsocket::tokio::SslSocket::from_tcp_stream(stream, configuration)?;
        socket.set_pause_mode(sslsocket::PauseMode::PauseOnSslErrors);
        socket.begin_server_encryption()?;
        let paused = matches!(
            tokio::time::timeout(WAIT, socket.handshake()).await,
            Ok(Ok(Handshake::NeedsDecision(_)))
        );
        let _ = tokio::time::timeout(Duration::from_secs(2), socket.write(QUEUED)).await;
        let limit = Duration::from_secs(3);
        match refusal {
            Refusal::Abort => socket.abort(),
            Refusal::Close => {
                let _ = tokio::time::timeout(limit, socket.close()).await;
            }
            Refusal::Disconnect => {
                let _ = tokio::time::timeout(limit, socket.disconnect_from_host()).await;
            }
            Refusal::Drop => {}
            Refusal::RefusePeer => {
                let _ = socket.refuse_peer();
            }
            Refusal::AcceptPeer => {
                let _ = socket.accept_peer();
                let _ = tokio::time::timeout(limit, socket.disconnect_from_host()).await;
            }
        }
        drop(socket);
        // Let the socket's tasks end.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<bool, Box<dyn std::error::Error>>(paused)
    })?;
    let seen = support::raw::joined(client)??;
    Ok((paused, seen))
}

// Held: a server paused on a client certificate (PauseOnSslErrors, untrusted client), whose
// application wrote bytes meanwhile, then ended by abort, close, disconnect, drop or
// refuse_peer, on both drivers, against a raw rustls client of TLS 1.2 and of TLS 1.3: the
// client never reads the queued bytes and is given no session (no TLS 1.3 ticket, no TLS
// 1.2 session), so nothing of the refused connection can be resumed.
#[test]
fn a_paused_server_refusing_a_raw_client_leaks_nothing_and_gives_no_session() -> TestResult {
    let pki = support::Pki::new()?;
    let mut failures = Vec::new();
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        for refusal in REFUSALS {
            for tokio_driver in [false, true] {
                let (paused, seen) = if tokio_driver {
                    tokio_paused_server_refuses(&pki, version, refusal)?
                } else {
                    blocking_paused_server_refuses(&pki, version, refusal)?
                };
                let leaked = seen.plaintext.windows(QUEUED.len()).any(|w| w == QUEUED);
                let ended = !seen.ending.starts_with("still open");
                if !paused || leaked || seen.sessions != 0 || !seen.plaintext.is_empty() || !ended {
                    failures.push(format!(
                        "{:?} {refusal:?} tokio={tokio_driver}: paused={paused} {seen:?}",
                        version.version
                    ));
                }
            }
        }
    }
    // The control: accepted, the bytes arrive (blocking and tokio, TLS 1.3).
    for tokio_driver in [false, true] {
        let (paused, seen) = if tokio_driver {
            tokio_paused_server_refuses(&pki, &rustls::version::TLS13, Refusal::AcceptPeer)?
        } else {
            blocking_paused_server_refuses(&pki, &rustls::version::TLS13, Refusal::AcceptPeer)?
        };
        if !paused || seen.plaintext != QUEUED {
            failures.push(format!(
                "control tokio={tokio_driver}: paused={paused} {seen:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "on {}: {failures:#?}",
        support::active_backend()
    );
    Ok(())
}

// Held: with a stapled OCSP response asked for, the OpenSSL client decides in its status
// callback, after every late error is in: the hook is asked once, with the CA's and the
// leaf's errors (and the missing response's, if any), on both drivers and both backends.
#[test]
fn with_stapling_asked_for_the_hook_is_asked_once_with_the_late_error() -> TestResult {
    fn run<D: ClientDriver>() -> TestResult {
        let chain = LateChain::new(false)?;
        let hooks = RecordingHooks::new(Verdict::Ignore, None);
        let installed = Arc::clone(&hooks);
        let mut configuration = chain.client_configuration()?;
        configuration.set_ocsp_stapling_enabled(true);
        let seen = connect::<D>(
            configuration,
            chain.chain(),
            &chain.key,
            "localhost",
            move |s| s.set_hooks(installed),
            |_, _| {},
        )?;
        assert!(seen.encrypted, "{}", D::NAME);
        let calls = hooks.calls().ssl_errors;
        assert_eq!(calls.len(), 1, "{}: {:?}", D::NAME, calls);
        let listed = calls.first().map(|l| set(l)).unwrap_or_default();
        assert!(
            set(&[chain.ca_error()?, chain.leaf_error()?]).is_subset(&listed),
            "{}: {:?}",
            D::NAME,
            listed
        );
        assert_eq!(set(&seen.errors), listed);
        Ok(())
    }
    on_both_drivers(run::<Blocking>, run::<Tokio>)
}
