//! What every rustls connection of ours carries beside rustls's own state, whichever rustls
//! API drives it (buffered `session.rs`, unbuffered `unbuffered.rs`): the trust hand-off
//! (the handshake record, the claimed verifier, the session stores held until the peer is
//! accepted), the notices for the core, and the facts read off rustls's `CommonState`.
//! Written once, so the two session kinds cannot judge a peer differently.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use rustls::{ClientConfig, CommonState, ServerConfig};
use rustls_pki_types::ServerName;

use crate::backend::rustls::alerts;
use crate::backend::rustls::config::{ClientEngine, ServerEngine};
use crate::backend::rustls::sessions::{ConnectionClientSessions, ConnectionServerSessions};
use crate::backend::rustls::verifier::ConnectionVerifier;
use crate::backend::{BackendNotice, Negotiated};
use crate::cert::SslCertificate;
use crate::enums::{SslProtocol, TlsVersion};
use crate::error::{ConfigError, TlsFailure};
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::record::HandshakeRecord;
use crate::verify::{Decision, Judgement, Outcome, Verification, VerifyPolicy};

/// One connection's side of the trust hand-off and its notices.
pub(super) struct Handshake {
    pub(super) record: Arc<HandshakeRecord>,
    notices: VecDeque<BackendNotice>,
    client_sessions: Option<(Arc<ConnectionClientSessions>, ServerName<'static>)>,
    server_sessions: Option<Arc<ConnectionServerSessions>>,
    /// The verifier instance claimed for the handshake, released when it ends.
    verifier: Option<Arc<ConnectionVerifier>>,
    /// A server's certificate choice, which knows the name the client asked for.
    server_resolver: Option<Arc<crate::backend::rustls::resolver::ConnectionResolver>>,
    /// The peer's close_notify was seen (and reported once).
    peer_closed: bool,
    /// The handshake finished as a resumption.
    resumed: bool,
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.release_verifier();
    }
}

impl Handshake {
    fn new(record: Arc<HandshakeRecord>) -> Handshake {
        Handshake {
            record,
            notices: VecDeque::new(),
            client_sessions: None,
            server_sessions: None,
            verifier: None,
            server_resolver: None,
            peer_closed: false,
            resumed: false,
        }
    }

    /// The server name the client's hello asked for (server), once it was read.
    pub(super) fn requested_server_name(&self) -> Option<String> {
        self.server_resolver
            .as_ref()
            .and_then(|r| r.requested())
            .map(str::to_string)
    }

    /// What the handshake agreed on, with the server name the client asked for (server).
    pub(super) fn negotiated(&self, common: &CommonState) -> Option<Negotiated> {
        let mut negotiated = negotiated(common)?;
        negotiated.server_name = self
            .server_resolver
            .as_ref()
            .and_then(|r| r.requested())
            .map(str::to_string);
        Some(negotiated)
    }

    /// A client connection to `peer_name` judged by `policy`: its rustls configuration,
    /// the name to hand rustls, and the hand-off (which gives the verifier back if the
    /// caller fails to make the connection and drops it).
    pub(super) fn client(
        engine: &ClientEngine,
        peer_name: Option<&str>,
        policy: &VerifyPolicy,
    ) -> Result<(Arc<ClientConfig>, ServerName<'static>, Handshake), ConfigError> {
        let name = peer_name.unwrap_or_default();
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| ConfigError::new(format!("`{name}` is not a valid host name for TLS")))?;
        let record = Arc::new(HandshakeRecord::default());
        let connection = engine.connection(policy, &record, &server_name);
        let mut handshake = Handshake::new(record);
        handshake.verifier = Some(connection.verifier);
        handshake.client_sessions = connection
            .sessions
            .map(|store| (store, server_name.clone()));
        Ok((connection.config, server_name, handshake))
    }

    /// A server connection judged by `policy`: its rustls configuration and the hand-off.
    pub(super) fn server(
        engine: &ServerEngine,
        policy: &VerifyPolicy,
    ) -> Result<(Arc<ServerConfig>, Handshake), ConfigError> {
        let record = Arc::new(HandshakeRecord::default());
        let connection = engine.connection(policy, &record)?;
        let mut handshake = Handshake::new(record);
        handshake.verifier = connection.verifier;
        handshake.server_sessions = connection.sessions;
        handshake.server_resolver = Some(connection.resolver);
        Ok((connection.config, handshake))
    }

    /// Gives the verifier instance back once the handshake is over: a later session of
    /// this peer may resume with it.
    fn release_verifier(&mut self) {
        if let Some(verifier) = self.verifier.take() {
            verifier.release(&self.record);
        }
    }

    /// After rustls processed input without error: the verifier goes back once the
    /// handshake is over, tickets become notices.
    pub(super) fn processed(&mut self, common: &CommonState) {
        if !common.is_handshaking() {
            self.release_verifier();
            self.resumed = common.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        }
        for _ in 0..self.record.take_tickets() {
            self.notices.push_back(BackendNotice::NewSessionTicket);
        }
    }

    /// The peer's close_notify arrived: reported once, as a received alert.
    pub(super) fn peer_closed(&mut self) {
        if !self.peer_closed {
            self.peer_closed = true;
            self.notices
                .push_back(BackendNotice::AlertReceived(alerts::close_notify()));
        }
    }

    /// Whether the peer's close_notify arrived.
    pub(super) fn is_peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// We queued our close_notify.
    pub(super) fn closing(&mut self) {
        self.notices
            .push_back(BackendNotice::AlertSent(alerts::close_notify()));
    }

    /// The failure the core sees for a rustls error, with its alert as a notice; a missing
    /// required client certificate is recorded as a refusal like any other.
    pub(super) fn failure(&mut self, error: &rustls::Error, common: &CommonState) -> TlsFailure {
        if !common.is_handshaking() {
            self.release_verifier();
        }
        if matches!(error, rustls::Error::NoCertificatesPresented) {
            self.record.record(Verification {
                errors: vec![SslError::new(SslErrorKind::NoPeerCertificate)],
                judgement: Judgement {
                    decision: Decision::Refuse,
                    ..Judgement::default()
                },
                ..Verification::default()
            });
        }
        let mut failure = TlsFailure::handshake(format!("TLS error: {error}"));
        if let Some(alert) = alerts::received(error) {
            failure.message = format!("the peer sent a fatal alert: {}", alert.description);
            failure.alert_received = Some(alert.clone());
            self.notices.push_back(BackendNotice::AlertReceived(alert));
        } else if let Some(alert) = alerts::sent(error) {
            self.notices.push_back(BackendNotice::AlertSent(alert));
        }
        if !common.is_handshaking() {
            failure.socket_error = crate::enums::SocketError::SslInternalError;
        }
        failure
    }

    /// The next notice; no queue kept allocated on an idle connection (notices come in
    /// bursts: handshake, tickets, close).
    pub(super) fn poll_notice(&mut self) -> Option<BackendNotice> {
        let notice = self.notices.pop_front();
        if notice.is_none() && self.notices.capacity() > 0 {
            self.notices = VecDeque::new();
        }
        notice
    }

    pub(super) fn take_verification(&mut self) -> Option<Verification> {
        self.record.take()
    }

    pub(super) fn set_policy(&mut self, policy: VerifyPolicy) {
        if let Some(sessions) = &self.server_sessions {
            // A server not yet asked to resume judges the client's session by this too.
            sessions.update_policy(policy.clone());
        }
        if let Some(verifier) = &self.verifier {
            verifier.update_policy(&self.record, policy);
        }
    }

    pub(super) fn resumed_outcome(&self) -> Option<Outcome> {
        self.record.offered()
    }

    /// The application's word on the peer: the record and the held sessions follow it.
    /// See `TlsSession::forget_own_sessions`: the record says refused (nothing more is
    /// kept), a client forgets only what this connection stored of its server, a server
    /// the keys this connection stored.
    pub(super) fn forget_own_sessions(&mut self) {
        self.record.confirm(None);
        if let Some((store, name)) = &self.client_sessions {
            store.forget_own(name);
        }
        if let Some(store) = &self.server_sessions {
            store.confirmed();
            if self.resumed {
                store.forget_resumed();
            }
        }
    }

    pub(super) fn confirm_peer(&mut self, outcome: Option<Outcome>) {
        let refused = outcome.is_none();
        self.record.confirm(outcome);
        if let Some((store, name)) = &self.client_sessions {
            store.confirmed(name);
        }
        if let Some(store) = &self.server_sessions {
            store.confirmed();
            if refused && self.resumed {
                store.forget_resumed();
            }
        }
    }
}

/// What the handshake agreed on, once it is over.
fn negotiated(common: &CommonState) -> Option<Negotiated> {
    if common.is_handshaking() {
        return None;
    }
    let version = match common.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => TlsVersion::Tls13,
        rustls::ProtocolVersion::TLSv1_2 => TlsVersion::Tls12,
        _ => return None,
    };
    let suite = common.negotiated_cipher_suite()?;
    let name = suite_name(suite.suite());
    Some(Negotiated {
        protocol: SslProtocol::from_version(version),
        cipher_suite: name,
        key_exchange_group: common
            .negotiated_key_exchange_group()
            .map(|g| crate::curve::from_rustls(g.name())),
        alpn: common.alpn_protocol().map(<[u8]>::to_vec),
        resumed: matches!(
            common.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        ),
        server_name: None,
        // rustls offers no pre-shared keys of the application's.
        authenticated_by_key: false,
    })
}

/// The peer's certificates as it sent them; one we cannot parse stays in place as a null
/// certificate (the verifier has already refused it).
pub(super) fn peer_certificate_chain(common: &CommonState) -> Vec<SslCertificate> {
    common
        .peer_certificates()
        .map(|certs| {
            certs
                .iter()
                .map(|c| {
                    SslCertificate::from_der(c.as_ref())
                        .unwrap_or_else(|_| SslCertificate::from_unparsed_der(c.as_ref()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The IANA name of a suite: rustls's name, whose TLS 1.3 suites start `TLS13_` where
/// IANA's start `TLS_` (borrowed for the suites rustls offers).
fn suite_name(suite: rustls::CipherSuite) -> Cow<'static, str> {
    let name = match suite {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        other => match other.as_str() {
            Some(name) if !name.starts_with("TLS13_") => name,
            Some(name) => return Cow::Owned(name.replacen("TLS13_", "TLS_", 1)),
            None => "unknown",
        },
    };
    Cow::Borrowed(name)
}

/// The largest first flight a client sends: a ClientHello's extensions have a 16-bit
/// length, so a hello past this carries a session no server can read.
pub(super) const HELLO_LIMIT: usize = 0xffff;

/// A client session for `engine`: `make` builds it from the rustls configuration, the
/// server name and the hand-off, `hello` measures its first flight.
///
/// A session a server gave (a TLS 1.2 ticket of up to 64 KiB arrives inside the handshake)
/// can make the next ClientHello too long for its 16-bit extension length: rustls then
/// panics in a debug build and sends a malformed hello in a release build (round 36: one
/// hostile service broke every later connection to its host name, on any port). Such a
/// session is not used: the server's stored sessions are forgotten and the session is
/// made once more, without them.
pub(super) fn client_session<C>(
    engine: &ClientEngine,
    peer_name: Option<&str>,
    policy: &VerifyPolicy,
    make: impl Fn(Arc<ClientConfig>, ServerName<'static>, Handshake) -> Result<C, ConfigError>,
    hello: impl Fn(&mut C) -> usize,
) -> Result<C, ConfigError> {
    for _ in 0..2 {
        let (config, server_name, handshake) = Handshake::client(engine, peer_name, policy)?;
        let sessions = handshake.client_sessions.clone();
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            make(config, server_name, handshake)
        }));
        match made {
            Ok(Ok(mut session)) => {
                if hello(&mut session) <= HELLO_LIMIT {
                    return Ok(session);
                }
            }
            Ok(Err(error)) => return Err(error),
            Err(_) => {}
        }
        if let Some((store, name)) = &sessions {
            store.forget_server(name);
        }
    }
    Err(ConfigError::new(
        "client session: the ClientHello does not fit in one message",
    ))
}
