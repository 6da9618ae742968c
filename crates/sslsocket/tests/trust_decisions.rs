//! Deciding about verification errors during the handshake, against `openssl s_server`:
//! pausing and resuming (`PauseOnSslErrors`), interrupting at the first error
//! (`handshake_must_interrupt_on_error` + `SslHooks::handshake_interrupted`), hooks that
//! decide in `ssl_errors`, and the order of the verification events.

mod support;

use std::io::Write;
use std::time::Duration;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::SslErrorKind::*;
use sslsocket::{PauseMode, SocketError, SslError, SslEvent, SslProtocol, Verdict};

use support::trust::{
    certificate, client_to, error_set, expect, serve, trusting, verification_events,
    wait_until_paused, ErrorsOnlyHooks, RecordingHooks, HANDSHAKE_TIMEOUT,
};
use support::{Issued, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// s_server prints this once its side of the handshake is complete.
const SERVER_HANDSHAKE_DONE: &str = "CIPHER is ";

/// An expired leaf for `name`, served with its intermediate.
fn expired(pki: &Pki, name: &str) -> Result<(Issued, OpensslServer), Box<dyn std::error::Error>> {
    let leaf = pki.expired_leaf(name, &[name])?;
    let server = serve(&leaf, true, &[])?;
    Ok((leaf, server))
}

/// A client to `server` for "localhost" that pauses on verification errors, paused.
fn paused_client(
    pki: &Pki,
    server: &OpensslServer,
) -> Result<SslSocket, Box<dyn std::error::Error>> {
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_pause_mode(PauseMode::PauseOnSslErrors);
    assert!(
        wait_until_paused(&mut client, HANDSHAKE_TIMEOUT),
        "the handshake did not pause: {:?}",
        client.error_string()
    );
    Ok(client)
}

/// Writes a line and waits until s_server printed it: the connection really works.
fn exchange_a_line(client: &mut SslSocket, server: &OpensslServer) -> TestResult {
    client.write_all(b"hello from the trust tests\n")?;
    client.flush()?;
    server.wait_for_output("hello from the trust tests", Duration::from_secs(5))?;
    Ok(())
}

// ----- pause and resume ------------------------------------------------------------

#[test]
fn paused_handshake_reports_its_errors_then_completes_after_ignoring_them_and_resuming(
) -> TestResult {
    let pki = Pki::new()?;
    let (leaf, server) = expired(&pki, "localhost")?;
    let mut client = paused_client(&pki, &server)?;

    assert!(client.is_paused());
    assert!(!client.is_encrypted());
    assert!(client
        .wait_for_encrypted(Duration::from_millis(200))
        .is_err());
    assert!(client.is_paused(), "waiting must not end the pause");
    let expected = expect(&[(CertificateExpired, &leaf.cert_der)])?;
    assert_eq!(error_set(client.ssl_handshake_errors()), expected);
    let error = client.ssl_handshake_errors().to_vec();
    assert_eq!(
        verification_events(client.take_events()),
        [
            SslEvent::PeerVerifyError(error[0].clone()),
            SslEvent::SslErrors(error.clone()),
        ]
    );
    // While paused the server has not completed its side either.
    assert!(
        !server.output().contains(SERVER_HANDSHAKE_DONE),
        "{}",
        server.output()
    );

    client.ignore_ssl_errors_list(&error);
    client.resume()?;
    assert!(!client.is_paused());
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(client.is_encrypted());
    assert_eq!(
        verification_events(client.take_events()),
        [SslEvent::Encrypted]
    );
    exchange_a_line(&mut client, &server)?;
    Ok(())
}

#[test]
fn paused_tls_1_2_handshake_completes_after_ignoring_all_and_resuming() -> TestResult {
    let pki = Pki::new()?;
    let (leaf, server) = expired(&pki, "localhost")?;
    let mut configuration = trusting(pki.root_pem())?;
    configuration.set_protocol(SslProtocol::TlsV1_2);
    let mut client = client_to(configuration, server.port(), "localhost");
    client.set_pause_mode(PauseMode::PauseOnSslErrors);
    assert!(wait_until_paused(&mut client, HANDSHAKE_TIMEOUT));
    assert_eq!(
        error_set(client.ssl_handshake_errors()),
        expect(&[(CertificateExpired, &leaf.cert_der)])?
    );
    client.ignore_ssl_errors();
    client.resume()?;
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert_eq!(client.session_protocol(), SslProtocol::TlsV1_2);
    exchange_a_line(&mut client, &server)?;
    Ok(())
}

#[test]
fn resuming_without_ignoring_fails_with_ssl_handshake_failed_error() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;
    let mut client = paused_client(&pki, &server)?;
    let error = client.resume().err().ok_or("resume should fail")?;
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert!(!client.is_paused());
    assert!(!client.is_encrypted());
    assert_eq!(client.error(), SocketError::SslHandshakeFailedError);
    let again = client
        .wait_for_encrypted(Duration::from_secs(1))
        .err()
        .ok_or("the handshake stays failed")?;
    assert_eq!(again.socket_error(), SocketError::SslHandshakeFailedError);
    Ok(())
}

#[test]
fn resuming_after_ignoring_the_error_on_another_certificate_fails() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;
    let mut client = paused_client(&pki, &server)?;
    let wrong =
        SslError::with_certificate(CertificateExpired, certificate(pki.intermediate_der())?);
    client.ignore_ssl_errors_list(&[wrong]);
    let error = client.resume().err().ok_or("resume should fail")?;
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    Ok(())
}

#[test]
fn a_refused_resume_never_completes_the_handshake_on_the_server() -> TestResult {
    // The verdict was "refuse": the server must never see our Finished, whatever the
    // application calls next (here the usual wait for the handshake).
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;
    let mut client = paused_client(&pki, &server)?;
    assert!(client.resume().is_err());
    assert!(client.wait_for_encrypted(Duration::from_secs(1)).is_err());
    // Give s_server time to print what it saw.
    let _ = server.wait_for_output(SERVER_HANDSHAKE_DONE, Duration::from_millis(500));
    assert!(
        !server.output().contains(SERVER_HANDSHAKE_DONE),
        "the server completed the handshake after the client refused it:\n{}",
        server.output()
    );
    Ok(())
}

#[test]
fn a_refused_resume_followed_by_close_never_completes_the_handshake_on_the_server() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;
    let mut client = paused_client(&pki, &server)?;
    assert!(client.resume().is_err());
    let _ = client.close();
    let _ = server.wait_for_output(SERVER_HANDSHAKE_DONE, Duration::from_millis(500));
    assert!(
        !server.output().contains(SERVER_HANDSHAKE_DONE),
        "the server completed the handshake after the client refused it:\n{}",
        server.output()
    );
    Ok(())
}

#[test]
fn handshake_without_errors_does_not_pause() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_pause_mode(PauseMode::PauseOnSslErrors);
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(!client.is_paused());
    assert!(client.resume().is_err(), "nothing to resume");
    exchange_a_line(&mut client, &server)?;
    Ok(())
}

#[test]
fn errors_ignored_in_advance_do_not_pause() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_pause_mode(PauseMode::PauseOnSslErrors);
    client.ignore_ssl_errors();
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(!client.is_paused());
    Ok(())
}

// ----- interrupt on the first error --------------------------------------------------

/// A client that interrupts the handshake at the first error, with `hooks` if given.
fn interrupting_client(
    pki: &Pki,
    server: &OpensslServer,
    hooks: Option<std::sync::Arc<dyn sslsocket::SslHooks>>,
) -> Result<SslSocket, Box<dyn std::error::Error>> {
    let mut configuration = trusting(pki.root_pem())?;
    configuration.set_handshake_must_interrupt_on_error(true);
    let mut client = client_to(configuration, server.port(), "localhost");
    if let Some(hooks) = hooks {
        client.set_hooks(hooks);
    }
    Ok(client)
}

/// Qt interrupts once per error (its verify callback runs per error): a hook that continues
/// past each one is asked about each, in order, and each gets its event.
#[test]
fn interrupted_handshake_continues_when_the_hook_ignores_every_error() -> TestResult {
    let pki = Pki::new()?;
    // Two errors on the leaf; the collector's order puts the host name last.
    let (leaf, server) = expired(&pki, "wrong.example")?;
    let hooks = RecordingHooks::new(Verdict::UsePolicy, Some(Verdict::Ignore));
    let mut client = interrupting_client(&pki, &server, Some(hooks.clone()))?;
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(client.is_encrypted());

    let leaf_cert = certificate(&leaf.cert_der)?;
    let first = SslError::with_certificate(CertificateExpired, leaf_cert.clone());
    let second = SslError::with_certificate(HostNameMismatch, leaf_cert);
    assert_eq!(
        hooks.calls().interrupted,
        vec![first.clone(), second.clone()]
    );
    assert_eq!(client.ssl_handshake_errors().first(), Some(&first));
    let events = verification_events(client.take_events());
    let interrupted: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SslEvent::HandshakeInterruptedOnError(error) => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(interrupted, vec![first.clone(), second], "{events:?}");
    let last_interruption = events
        .iter()
        .rposition(|e| matches!(e, SslEvent::HandshakeInterruptedOnError(_)))
        .ok_or("no HandshakeInterruptedOnError event")?;
    let encrypted = events
        .iter()
        .position(|e| *e == SslEvent::Encrypted)
        .ok_or("no Encrypted event")?;
    assert!(last_interruption < encrypted, "{events:?}");
    exchange_a_line(&mut client, &server)?;
    Ok(())
}

#[test]
fn interrupted_handshake_fails_without_hooks() -> TestResult {
    let pki = Pki::new()?;
    let (leaf, server) = expired(&pki, "localhost")?;
    let mut client = interrupting_client(&pki, &server, None)?;
    let error = client
        .wait_for_encrypted(HANDSHAKE_TIMEOUT)
        .err()
        .ok_or("the handshake should fail")?;
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    let first = SslError::with_certificate(CertificateExpired, certificate(&leaf.cert_der)?);
    let events = verification_events(client.take_events());
    assert!(
        events.contains(&SslEvent::HandshakeInterruptedOnError(first)),
        "{events:?}"
    );
    assert!(!events.contains(&SslEvent::Encrypted));
    Ok(())
}

#[test]
fn interrupted_handshake_fails_with_the_default_interrupt_hook_even_if_ssl_errors_ignores(
) -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;
    let hooks = std::sync::Arc::new(ErrorsOnlyHooks(Verdict::Ignore));
    let mut client = interrupting_client(&pki, &server, Some(hooks))?;
    let error = client
        .wait_for_encrypted(HANDSHAKE_TIMEOUT)
        .err()
        .ok_or("the handshake should fail")?;
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    Ok(())
}

#[test]
fn interrupt_mode_does_not_call_the_hook_when_there_is_no_error() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let hooks = RecordingHooks::new(Verdict::Abort, Some(Verdict::Abort));
    let mut client = interrupting_client(&pki, &server, Some(hooks.clone()))?;
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    let calls = hooks.calls();
    assert!(
        calls.interrupted.is_empty() && calls.ssl_errors.is_empty(),
        "{calls:?}"
    );
    Ok(())
}

// ----- hooks deciding in ssl_errors ----------------------------------------------------

#[test]
fn hook_that_ignores_gets_the_whole_list_once_and_lets_the_handshake_through() -> TestResult {
    let pki = Pki::new()?;
    let (leaf, server) = expired(&pki, "wrong.example")?;
    let hooks = RecordingHooks::new(Verdict::Ignore, None);
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_hooks(hooks.clone());
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    let calls = hooks.calls();
    assert_eq!(calls.ssl_errors.len(), 1, "{calls:?}");
    assert_eq!(calls.ssl_errors[0], client.ssl_handshake_errors());
    assert_eq!(
        error_set(&calls.ssl_errors[0]),
        expect(&[
            (CertificateExpired, &leaf.cert_der),
            (HostNameMismatch, &leaf.cert_der),
        ])?
    );
    assert!(calls.interrupted.is_empty());
    exchange_a_line(&mut client, &server)?;
    Ok(())
}

#[test]
fn hook_that_aborts_fails_the_handshake_even_when_every_error_is_ignored() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;
    let hooks = RecordingHooks::new(Verdict::Abort, None);
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_hooks(hooks.clone());
    client.ignore_ssl_errors();
    let error = client
        .wait_for_encrypted(HANDSHAKE_TIMEOUT)
        .err()
        .ok_or("the handshake should fail")?;
    assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
    assert_eq!(hooks.calls().ssl_errors.len(), 1);
    Ok(())
}

#[test]
fn hook_that_uses_the_policy_leaves_the_decision_to_the_ignore_list() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;

    let hooks = RecordingHooks::new(Verdict::UsePolicy, None);
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_hooks(hooks.clone());
    assert!(client.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    assert_eq!(hooks.calls().ssl_errors.len(), 1);
    drop(client);

    let hooks = RecordingHooks::new(Verdict::UsePolicy, None);
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_hooks(hooks.clone());
    client.ignore_ssl_errors();
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert_eq!(hooks.calls().ssl_errors.len(), 1);
    Ok(())
}

#[test]
fn hook_that_pauses_pauses_the_handshake_until_resume() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;
    let hooks = RecordingHooks::new(Verdict::Pause, None);
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_hooks(hooks);
    assert!(wait_until_paused(&mut client, HANDSHAKE_TIMEOUT));
    client.ignore_ssl_errors();
    client.resume()?;
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    exchange_a_line(&mut client, &server)?;
    Ok(())
}

#[test]
fn hooks_are_not_called_when_there_is_no_error() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let hooks = RecordingHooks::new(Verdict::Abort, None);
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.set_hooks(hooks.clone());
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert!(hooks.calls().ssl_errors.is_empty());
    Ok(())
}

// ----- events --------------------------------------------------------------------------

#[test]
fn each_error_is_signalled_once_then_the_whole_list_then_encrypted() -> TestResult {
    let pki = Pki::new()?;
    let (leaf, server) = expired(&pki, "wrong.example")?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.ignore_ssl_errors();
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    let errors = client.ssl_handshake_errors().to_vec();
    assert_eq!(
        error_set(&errors),
        expect(&[
            (CertificateExpired, &leaf.cert_der),
            (HostNameMismatch, &leaf.cert_der),
        ])?
    );
    let mut expected: Vec<SslEvent> = errors
        .iter()
        .cloned()
        .map(SslEvent::PeerVerifyError)
        .collect();
    expected.push(SslEvent::SslErrors(errors.clone()));
    expected.push(SslEvent::Encrypted);
    let all = client.take_events();
    assert_eq!(verification_events(all.clone()), expected);
    // The verification comes after the connection and the start of the handshake.
    let connected = all.iter().position(|e| *e == SslEvent::Connected);
    let first_error = all
        .iter()
        .position(|e| matches!(e, SslEvent::PeerVerifyError(_)));
    assert!(connected < first_error, "{all:?}");
    Ok(())
}

#[test]
fn failed_verification_signals_the_errors_then_the_failure_and_never_encrypted() -> TestResult {
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "wrong.example")?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    assert!(client.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    let errors = client.ssl_handshake_errors().to_vec();
    assert_eq!(errors.len(), 2);
    let mut expected: Vec<SslEvent> = errors
        .iter()
        .cloned()
        .map(SslEvent::PeerVerifyError)
        .collect();
    expected.push(SslEvent::SslErrors(errors));
    expected.push(SslEvent::ErrorOccurred(
        SocketError::SslHandshakeFailedError,
    ));
    assert_eq!(verification_events(client.take_events()), expected);
    Ok(())
}

#[test]
fn handshake_without_errors_signals_only_encrypted() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let server = serve(&leaf, true, &[])?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
    assert_eq!(
        verification_events(client.take_events()),
        [SslEvent::Encrypted]
    );
    assert!(client.ssl_handshake_errors().is_empty());
    Ok(())
}

#[test]
fn the_alert_refusing_the_peer_is_signalled_after_the_errors_that_caused_it() -> TestResult {
    // PeerVerifyError is "one verification error, as it was found": the alert we send
    // because of the errors cannot have been sent before they were found.
    let pki = Pki::new()?;
    let (_leaf, server) = expired(&pki, "localhost")?;
    let mut client = client_to(trusting(pki.root_pem())?, server.port(), "localhost");
    assert!(client.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
    let events = client.take_events();
    let alert = events
        .iter()
        .position(
            |e| matches!(e, SslEvent::AlertSent(a) if a.kind != sslsocket::AlertType::CloseNotify),
        )
        .ok_or_else(|| format!("no alert sent: {events:?}"))?;
    let first_error = events
        .iter()
        .position(|e| matches!(e, SslEvent::PeerVerifyError(_)))
        .ok_or_else(|| format!("no PeerVerifyError: {events:?}"))?;
    let list = events
        .iter()
        .position(|e| matches!(e, SslEvent::SslErrors(_)))
        .ok_or_else(|| format!("no SslErrors: {events:?}"))?;
    assert!(first_error < alert && list < alert, "{events:?}");
    // The peer got that alert.
    server.wait_for_output("alert certificate expired", Duration::from_secs(5))?;
    Ok(())
}
