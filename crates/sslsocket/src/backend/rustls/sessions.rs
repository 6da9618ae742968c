//! Session stores: resumption that never bypasses trust, on both sides.
//!
//! rustls verifies nothing on a resumed handshake. So every session is stored with the
//! verification outcome of the handshake that made it, and only once the application
//! accepted that peer (the session's `confirm_peer`): sessions a connection receives while
//! its peer is undecided (a paused handshake, a server waiting for the core's word on a
//! missing client certificate) are held by the connection and dropped if it is refused.
//! A session is offered (client) or accepted for resumption (server) only when the
//! resuming socket's own policy accepts the original errors without asking anyone
//! ([`VerifyPolicy::may_resume`]); otherwise a full handshake runs and asks the hooks. The
//! stores belong to one configuration (its CA set, verify mode, depth), so a change of
//! trust settings never reuses a session made under other settings.
//!
//! Each connection talks to the shared stores through its own wrapper (rustls calls the
//! store with no connection context), holding the connection's [`HandshakeRecord`].

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::server::StoresServerSessions;
use rustls::NamedGroup;
use rustls_pki_types::ServerName;

use crate::backend::rustls::verifier::ConnectionVerifier;
use crate::verify::record::{Confirmation, HandshakeRecord};
use crate::verify::{Outcome, VerifyPolicy};

/// How many peers (client side) or sessions (server side) a store remembers.
const CAPACITY: usize = 256;
/// How many TLS 1.3 tickets are kept per server (rustls's own cache keeps 8).
const TICKETS_PER_SERVER: usize = 8;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A session a client stored: the value rustls resumes with, the outcome of the
/// verification it was made under, the verifier instance rustls resumes with, and the
/// connection that stored it.
struct Stored<V> {
    value: V,
    outcome: Outcome,
    verifier: Arc<ConnectionVerifier>,
    /// [`ConnectionClientSessions::id`] of the connection that stored it.
    by: u64,
}

#[derive(Default)]
struct ServerEntry {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Stored<Tls12ClientSessionValue>>,
    tls13: VecDeque<Stored<Tls13ClientSessionValue>>,
}

#[derive(Default)]
struct ClientMap {
    servers: HashMap<ServerName<'static>, ServerEntry>,
    order: VecDeque<ServerName<'static>>,
}

impl ClientMap {
    fn entry(&mut self, name: ServerName<'static>) -> &mut ServerEntry {
        if !self.servers.contains_key(&name) {
            if self.servers.len() >= CAPACITY {
                if let Some(oldest) = self.order.pop_front() {
                    self.servers.remove(&oldest);
                }
            }
            self.order.push_back(name.clone());
        }
        self.servers.entry(name).or_default()
    }
}

/// A client configuration's sessions, by server, each with its outcome.
#[derive(Default)]
pub(crate) struct ClientSessions {
    map: Mutex<ClientMap>,
}

impl fmt::Debug for ClientSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSessions").finish_non_exhaustive()
    }
}

impl ClientSessions {
    pub(crate) fn new() -> Arc<ClientSessions> {
        Arc::new(ClientSessions::default())
    }

    /// The verifier instance of the newest session of `server_name` that a socket with
    /// `policy` may resume: a rustls client resumes only with the instance that verified.
    pub(crate) fn resumable_verifier(
        &self,
        server_name: &ServerName<'static>,
        policy: &VerifyPolicy,
    ) -> Option<Arc<ConnectionVerifier>> {
        let map = lock(&self.map);
        let entry = map.servers.get(server_name)?;
        entry
            .tls13
            .iter()
            .rev()
            .find(|stored| policy.may_resume(&stored.outcome))
            .map(|stored| Arc::clone(&stored.verifier))
            .or_else(|| {
                entry
                    .tls12
                    .as_ref()
                    .filter(|stored| policy.may_resume(&stored.outcome))
                    .map(|stored| Arc::clone(&stored.verifier))
            })
    }

    /// Forgets every session of `server_name` (the application rejected the peer).
    pub(crate) fn purge(&self, server_name: &ServerName<'static>) {
        let mut map = lock(&self.map);
        if let Some(entry) = map.servers.get_mut(server_name) {
            entry.tls12 = None;
            entry.tls13.clear();
        }
    }

    /// Forgets the sessions of `server_name` that connection `by` stored, and only those
    /// (its connection ended with a fatal alert, RFC 5246 §7.2.2; round 35: every socket's
    /// sessions of that server went, so one corrupted record wiped them all).
    fn forget_from(&self, server_name: &ServerName<'static>, by: u64) {
        let mut map = lock(&self.map);
        if let Some(entry) = map.servers.get_mut(server_name) {
            if entry.tls12.as_ref().is_some_and(|stored| stored.by == by) {
                entry.tls12 = None;
            }
            entry.tls13.retain(|stored| stored.by != by);
        }
    }
}

/// A session received before the application's word on the peer.
enum Held {
    Tls12(ServerName<'static>, Tls12ClientSessionValue),
    Tls13(ServerName<'static>, Tls13ClientSessionValue),
    Server(Vec<u8>, Vec<u8>),
}

/// The most sessions a connection holds while the application has not decided on its
/// peer: as many as the store keeps per server. A peer that sends tickets while a paused
/// handshake waits (or ever more of them) replaces the oldest, so what is held stays
/// bounded whatever it sends.
const HELD_PER_CONNECTION: usize = TICKETS_PER_SERVER;

/// Holds `item` until the application's word, dropping the oldest past the bound.
fn hold(held: &Mutex<Vec<Held>>, item: Held) {
    let mut held = lock(held);
    if held.len() >= HELD_PER_CONNECTION {
        held.remove(0);
    }
    held.push(item);
}

/// One connection's view of a client store.
pub(crate) struct ConnectionClientSessions {
    shared: Arc<ClientSessions>,
    record: Arc<HandshakeRecord>,
    policy: VerifyPolicy,
    /// The verifier instance this connection uses, kept with its sessions.
    verifier: Arc<ConnectionVerifier>,
    held: Mutex<Vec<Held>>,
    /// This connection's mark on the sessions it stores (see [`forget_own`]).
    ///
    /// [`forget_own`]: ConnectionClientSessions::forget_own
    id: u64,
}

/// The next [`ConnectionClientSessions::id`].
static NEXT_CONNECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl fmt::Debug for ConnectionClientSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionClientSessions")
            .finish_non_exhaustive()
    }
}

impl ConnectionClientSessions {
    pub(crate) fn new(
        shared: Arc<ClientSessions>,
        record: Arc<HandshakeRecord>,
        policy: VerifyPolicy,
        verifier: Arc<ConnectionVerifier>,
    ) -> ConnectionClientSessions {
        ConnectionClientSessions {
            shared,
            record,
            policy,
            verifier,
            held: Mutex::new(Vec::new()),
            id: NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// This connection ended with a fatal alert: what it stored of `server_name` is
    /// forgotten, and nothing it holds or receives from now on is stored (its record says
    /// refused); other connections' sessions of that server stay.
    /// Forgets every session of `server_name`, whoever stored it.
    pub(crate) fn forget_server(&self, server_name: &ServerName<'static>) {
        lock(&self.held).clear();
        self.shared.purge(server_name);
    }

    pub(crate) fn forget_own(&self, server_name: &ServerName<'static>) {
        lock(&self.held).clear();
        self.shared.forget_from(server_name, self.id);
    }

    /// Stores now (peer accepted), holds (undecided) or drops (refused) a session.
    fn keep(&self, item: Held) {
        match self.record.confirmation() {
            Confirmation::Accepted(outcome) => {
                self.record.note_ticket();
                self.store(item, outcome);
            }
            Confirmation::Pending => {
                self.record.note_ticket();
                hold(&self.held, item);
            }
            Confirmation::Refused => {}
        }
    }

    fn store(&self, item: Held, outcome: Outcome) {
        let verifier = Arc::clone(&self.verifier);
        let mut map = lock(&self.shared.map);
        match item {
            Held::Tls12(name, value) => {
                map.entry(name).tls12 = Some(Stored {
                    value,
                    outcome,
                    verifier,
                    by: self.id,
                });
            }
            Held::Tls13(name, value) => {
                let entry = map.entry(name);
                if entry.tls13.len() >= TICKETS_PER_SERVER {
                    entry.tls13.pop_front();
                }
                entry.tls13.push_back(Stored {
                    value,
                    outcome,
                    verifier,
                    by: self.id,
                });
            }
            Held::Server(..) => {}
        }
    }

    /// The application's word arrived: store what was held, or drop it and forget the
    /// sessions of this server.
    pub(crate) fn confirmed(&self, server_name: &ServerName<'static>) {
        let held = std::mem::take(&mut *lock(&self.held));
        match self.record.confirmation() {
            Confirmation::Accepted(outcome) => {
                for item in held {
                    self.store(item, outcome.clone());
                }
            }
            Confirmation::Refused => self.shared.purge(server_name),
            Confirmation::Pending => *lock(&self.held) = held,
        }
    }
}

impl ClientSessionStore for ConnectionClientSessions {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        lock(&self.shared.map).entry(server_name).kx_hint = Some(group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        let map = lock(&self.shared.map);
        map.servers
            .get(&server_name.to_owned())
            .and_then(|e| e.kx_hint)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.keep(Held::Tls12(server_name, value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        let map = lock(&self.shared.map);
        let stored = map.servers.get(&server_name.to_owned())?.tls12.as_ref()?;
        if !self.policy.may_resume(&stored.outcome) {
            return None;
        }
        self.record.set_offered(stored.outcome.clone());
        Some(stored.value.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        if let Some(entry) = lock(&self.shared.map).servers.get_mut(server_name) {
            entry.tls12 = None;
        }
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.keep(Held::Tls13(server_name, value));
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let mut map = lock(&self.shared.map);
        let entry = map.servers.get_mut(server_name)?;
        // The newest ticket this socket may resume; the others stay for other sockets.
        let index = entry
            .tls13
            .iter()
            .rposition(|stored| self.policy.may_resume(&stored.outcome))?;
        let Stored { value, outcome, .. } = entry.tls13.remove(index)?;
        self.record.set_offered(outcome);
        Some(value)
    }
}

/// How many independently locked parts a server store has: handshakes on different cores
/// rarely wait for each other.
const SERVER_SHARDS: usize = 8;

/// One shard: FNV rather than SipHash, as the keys stored are random values the server
/// made (a client's lookups cannot build collisions), and a shard holds few anyway.
#[derive(Default)]
struct ServerMap {
    sessions: fnv::FnvHashMap<Vec<u8>, (Vec<u8>, Outcome)>,
    order: VecDeque<Vec<u8>>,
}

/// A server configuration's sessions (TLS 1.2 session IDs, TLS 1.3 stateful tickets), each
/// with the outcome of its client's verification; in shards by key (keys are random
/// values of the server's), each keeping its share of [`CAPACITY`], oldest out first.
#[derive(Default)]
pub(crate) struct ServerSessions {
    shards: [Mutex<ServerMap>; SERVER_SHARDS],
}

impl fmt::Debug for ServerSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSessions").finish_non_exhaustive()
    }
}

impl ServerSessions {
    pub(crate) fn new() -> Arc<ServerSessions> {
        Arc::new(ServerSessions::default())
    }

    fn shard(&self, key: &[u8]) -> &Mutex<ServerMap> {
        // FNV over the key (the shards' own hasher): any byte of it spreads the keys.
        let mut hasher = fnv::FnvHasher::default();
        std::hash::Hasher::write(&mut hasher, key);
        let hash = std::hash::Hasher::finish(&hasher);
        let index = usize::try_from(hash % SERVER_SHARDS as u64).unwrap_or(0);
        &self.shards[index % SERVER_SHARDS]
    }

    /// How many sessions are stored.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).sessions.len()).sum()
    }

    fn put(&self, key: Vec<u8>, value: Vec<u8>, outcome: Outcome) {
        let mut guard = lock(self.shard(&key));
        let map = &mut *guard;
        // Room first (keys are fresh random values, so `key` is all but never stored
        // already; if it was, it is replaced and one session too many went).
        if map.sessions.len() >= CAPACITY / SERVER_SHARDS {
            if let Some(oldest) = map.order.pop_front() {
                map.sessions.remove(&oldest);
            }
        }
        match map.sessions.entry(key) {
            Entry::Occupied(mut stored) => {
                stored.insert((value, outcome));
            }
            Entry::Vacant(place) => {
                map.order.push_back(place.key().clone());
                place.insert((value, outcome));
            }
        }
    }

    fn get(&self, key: &[u8]) -> Option<(Vec<u8>, Outcome)> {
        lock(self.shard(key)).sessions.get(key).cloned()
    }

    fn remove(&self, key: &[u8]) -> Option<(Vec<u8>, Outcome)> {
        let mut map = lock(self.shard(key));
        let found = map.sessions.remove(key);
        if found.is_some() {
            map.order.retain(|k| k.as_slice() != key);
        }
        found
    }
}

/// One connection's view of a server store.
pub(crate) struct ConnectionServerSessions {
    shared: Arc<ServerSessions>,
    record: Arc<HandshakeRecord>,
    /// The connection's policy as it is now: the application may narrow it after the
    /// handshake started and before the client's hello asks to resume (see
    /// [`update_policy`](Self::update_policy)).
    policy: Mutex<VerifyPolicy>,
    held: Mutex<Vec<Held>>,
    /// The keys this connection stored, forgotten if the peer is refused after all.
    stored: Mutex<Vec<Vec<u8>>>,
    /// The key of the session this connection was offered and accepted for resumption
    /// (see [`forget_resumed`](Self::forget_resumed)).
    resumed: Mutex<Option<Vec<u8>>>,
}

impl fmt::Debug for ConnectionServerSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionServerSessions")
            .finish_non_exhaustive()
    }
}

impl ConnectionServerSessions {
    pub(crate) fn new(
        shared: Arc<ServerSessions>,
        record: Arc<HandshakeRecord>,
        policy: VerifyPolicy,
    ) -> ConnectionServerSessions {
        ConnectionServerSessions {
            shared,
            record,
            policy: Mutex::new(policy),
            held: Mutex::new(Vec::new()),
            stored: Mutex::new(Vec::new()),
            resumed: Mutex::new(None),
        }
    }

    /// The connection resumed a session and then failed with a fatal alert, or was
    /// refused: that session is not resumed again either (RFC 5246 §7.2.2: a TLS 1.2
    /// session ID stays in the store when its connection resumes it, as nothing is stored
    /// again; round 37: the next connection resumed it). Only called for a connection
    /// that did resume (a client that merely named another's session ID removes nothing).
    pub(crate) fn forget_resumed(&self) {
        if let Some(key) = lock(&self.resumed).take() {
            self.shared.remove(&key);
        }
    }

    /// The connection's policy changed (`set_policy` during the handshake): a client's
    /// session is resumed only if the new one accepts its outcome.
    pub(crate) fn update_policy(&self, policy: VerifyPolicy) {
        *lock(&self.policy) = policy;
    }

    fn store(&self, key: Vec<u8>, value: Vec<u8>, outcome: Outcome) {
        lock(&self.stored).push(key.clone());
        self.shared.put(key, value, outcome);
    }

    /// The application's word arrived: store what was held, or drop it and everything
    /// this connection stored.
    pub(crate) fn confirmed(&self) {
        let held = std::mem::take(&mut *lock(&self.held));
        match self.record.confirmation() {
            Confirmation::Accepted(outcome) => {
                for item in held {
                    if let Held::Server(key, value) = item {
                        self.store(key, value, outcome.clone());
                    }
                }
            }
            Confirmation::Refused => {
                for key in std::mem::take(&mut *lock(&self.stored)) {
                    self.shared.remove(&key);
                }
            }
            Confirmation::Pending => *lock(&self.held) = held,
        }
    }

    fn lookup(&self, key: &[u8], take: bool) -> Option<Vec<u8>> {
        let found = if take {
            self.shared.remove(key)
        } else {
            self.shared.get(key)
        };
        let (value, outcome) = found?;
        if !lock(&self.policy).may_resume(&outcome) {
            if take {
                self.shared.put(key.to_vec(), value, outcome);
            }
            return None;
        }
        self.record.set_offered(outcome);
        *lock(&self.resumed) = Some(key.to_vec());
        Some(value)
    }
}

impl StoresServerSessions for ConnectionServerSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        match self.record.confirmation() {
            Confirmation::Accepted(outcome) => {
                self.store(key, value, outcome);
                true
            }
            Confirmation::Pending => {
                hold(&self.held, Held::Server(key, value));
                true
            }
            Confirmation::Refused => false,
        }
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lookup(key, false)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lookup(key, true)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    //! A server that paused on a client certificate's errors and was then refused by the
    //! application must not keep the session: a client knowing the master secret (the
    //! one refused) could resume it with no verification at all.

    use std::sync::Arc;

    use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    use crate::backend::rustls::config::server_engine;
    use crate::core::SslCore;
    use crate::enums::{PauseMode, PeerVerifyMode, SocketState, SslProtocol};
    use crate::{SslCertificate, SslConfiguration, SslKey};

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    fn ca(name: &str) -> TestResult<(Issuer<'static, KeyPair>, Vec<u8>)> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = KeyPair::generate()?;
        let der = params.self_signed(&key)?.der().to_vec();
        Ok((Issuer::new(params, key), der))
    }

    fn leaf(issuer: &Issuer<'_, KeyPair>, name: &str) -> TestResult<(Vec<u8>, Vec<u8>)> {
        let mut params = CertificateParams::new(vec![name.to_string()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate()?;
        Ok((
            params.signed_by(&key, issuer)?.der().to_vec(),
            key.serialize_der(),
        ))
    }

    /// Runs a TLS 1.2 handshake of a rustls client with an untrusted client certificate
    /// against a pausing server core until it pauses, lets `decide` act on the core, and
    /// returns how many sessions the server's store holds afterwards.
    fn sessions_kept_after(decide: impl FnOnce(&mut SslCore)) -> TestResult<usize> {
        let (server_ca, server_ca_der) = ca("server ca")?;
        let (client_ca, _) = ca("client ca nobody trusts")?;
        let (server_cert, server_key) = leaf(&server_ca, "localhost")?;
        let (client_cert, client_key) = leaf(&client_ca, "client")?;

        let mut configuration = SslConfiguration::default();
        configuration
            .set_local_certificate_chain(vec![SslCertificate::from_der(&server_cert)?])
            .set_private_key(SslKey::from_der(&server_key)?)
            .set_ca_certificates(vec![SslCertificate::from_der(&server_ca_der)?])
            .set_peer_verify_mode(PeerVerifyMode::VerifyPeer)
            .set_protocol(SslProtocol::TlsV1_2);
        let mut server = SslCore::new(configuration.clone());
        // The store read below is the rustls engine's: the core must use rustls, whatever
        // the process's backend is.
        server.use_backend(Arc::new(crate::backend::rustls::RustlsBackend));
        server.set_pause_mode(PauseMode::PauseOnSslErrors);
        server.handle_state(SocketState::ConnectedState);
        server.start_server_encryption()?;

        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(server_ca_der.clone()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from(client_cert)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client_key)),
            )?;
        let mut client = rustls::ClientConnection::new(
            Arc::new(client_config),
            ServerName::try_from("localhost")?,
        )?;

        for _ in 0..16 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server)?;
            }
            server.handle_tls(&to_server)?;
            if server.is_paused() {
                break;
            }
            let mut to_client = Vec::new();
            server.poll_transmit(&mut to_client);
            let mut input = to_client.as_slice();
            while !input.is_empty() {
                client.read_tls(&mut input)?;
                client.process_new_packets()?;
            }
        }
        assert!(
            server.is_paused(),
            "the server did not pause on the untrusted client"
        );
        decide(&mut server);
        let engine = server_engine(&configuration)?;
        Ok(engine.sessions.as_ref().map_or(0, |s| s.len()))
    }

    #[test]
    fn a_client_refused_after_a_pause_leaves_no_session_to_resume() -> TestResult {
        assert_eq!(sessions_kept_after(|server| server.abort())?, 0);
        assert_eq!(
            sessions_kept_after(|server| {
                let _ = server.resume();
            })?,
            0
        );
        Ok(())
    }

    #[test]
    fn a_client_accepted_after_a_pause_leaves_its_session() -> TestResult {
        let kept = sessions_kept_after(|server| {
            server.ignore_ssl_errors();
            let _ = server.resume();
        })?;
        assert_eq!(kept, 1);
        Ok(())
    }

    /// A peer that sends ticket after ticket while the application has not decided on it
    /// (a paused handshake) fills no more than the bound: the newest are kept.
    #[test]
    fn sessions_held_before_the_applications_word_are_bounded() {
        use super::{hold, lock, Held, HELD_PER_CONNECTION};
        let held = std::sync::Mutex::new(Vec::new());
        for i in 0..100u8 {
            hold(&held, Held::Server(vec![i], Vec::new()));
        }
        let keys: Vec<u8> = lock(&held)
            .iter()
            .filter_map(|item| match item {
                Held::Server(key, _) => key.first().copied(),
                _ => None,
            })
            .collect();
        let newest: Vec<u8> = (100 - HELD_PER_CONNECTION as u8..100).collect();
        assert_eq!(keys, newest);
    }
}
