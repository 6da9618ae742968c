//! The client's session store: resumption that never bypasses trust (the rules of the
//! rustls backend's store, `backend::rustls::sessions`).
//!
//! OpenSSL does not verify a resumed handshake again. So a session is stored only when the
//! connection that received it was accepted by the application (no verification errors,
//! or every one ignored; never while paused), with the outcome of that verification, so a
//! resumed connection reports what the original handshake found. The store belongs to one
//! context, built from one configuration: a change of trust settings never reuses a
//! session made under other settings. Sessions come only from that context's new-session
//! callback, tagged with it, so `set_session` is only ever given sessions of its own
//! context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use openssl::ssl::SslRef;
use sslsocket_openssl_ext::{set_session, ContextSession};

use crate::backend::openssl::verifier::ConnectionState;
use crate::verify::Outcome;

/// How many servers the store remembers.
const SERVERS: usize = 256;

/// Sessions by peer name, with the outcome of their verification.
pub(crate) struct ClientSessions {
    inner: Mutex<HashMap<String, (ContextSession, Outcome)>>,
}

impl ClientSessions {
    pub(crate) fn new() -> Arc<ClientSessions> {
        Arc::new(ClientSessions {
            inner: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (ContextSession, Outcome)>> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Keeps the session of an accepted peer (the latest one wins).
    pub(crate) fn store(&self, peer: &str, session: ContextSession, outcome: Outcome) {
        let mut sessions = self.lock();
        if sessions.len() >= SERVERS && !sessions.contains_key(peer) {
            sessions.clear();
        }
        sessions.insert(peer.to_string(), (session, outcome));
    }

    /// Offers the stored session of `peer` on `ssl` before its handshake, when the
    /// connection's policy accepts its original outcome without asking anyone, and tells
    /// the connection what that session was verified as.
    pub(crate) fn offer(&self, ssl: &mut SslRef, peer: &str, state: &ConnectionState) {
        let mut sessions = self.lock();
        let Some((session, outcome)) = sessions.get(peer) else {
            return;
        };
        // Only what the policy accepts without asking anyone, and never a session whose
        // peer showed no certificate (a pre-shared key's, which is not stored either).
        if !state.accepts_offer(outcome) {
            return;
        }
        match set_session(ssl, session) {
            Ok(()) => state.offered(outcome.clone()),
            Err(error) => {
                tracing::debug!(%error, "stored session not offered");
                sessions.remove(peer);
            }
        }
    }

    /// Forgets the session of `peer` (the application rejected it).
    pub(crate) fn purge(&self, peer: &str) {
        self.lock().remove(peer);
    }
}

/// A server context's record of the client verification behind its sessions, by the key
/// of the connection that issued them (sealed into its tickets, see
/// [`ServerOutcomes::new_key`]): resumption verifies nothing, so a resumed connection
/// reports (and its socket judges again) what its session's own handshake found. Only
/// accepted clients are recorded; a refused client's session is removed from OpenSSL's
/// cache and its record dropped (a later resumption of it fails closed).
/// Outcomes by key, and the keys in the order they came (oldest first).
type OutcomeMap = (
    HashMap<Vec<u8>, Outcome>,
    std::collections::VecDeque<Vec<u8>>,
);

#[derive(Default)]
pub(crate) struct ServerOutcomes {
    inner: Mutex<OutcomeMap>,
}

/// The key of the next server connection's record, unique in the process (not per
/// context: a ticket is only ever decrypted by the context that made it, but a key must
/// never name another connection's record even if one were).
static NEXT_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl ServerOutcomes {
    pub(crate) fn new() -> Arc<ServerOutcomes> {
        Arc::new(ServerOutcomes::default())
    }

    /// A key of its own for one server connection, sealed into the tickets it issues: the
    /// record of its handshake is found again from the ticket a client presents, whoever
    /// else showed the same certificate (each session reports its own errors and chain).
    pub(crate) fn new_key(&self) -> [u8; 8] {
        NEXT_KEY
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_be_bytes()
    }

    fn lock(&self) -> MutexGuard<'_, OutcomeMap> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Records the outcome of an accepted client.
    pub(crate) fn record(&self, id: &[u8], outcome: Outcome) {
        let mut guard = self.lock();
        let (map, order) = &mut *guard;
        if !map.contains_key(id) {
            if map.len() >= SERVERS * 4 {
                if let Some(oldest) = order.pop_front() {
                    map.remove(&oldest);
                }
            }
            order.push_back(id.to_vec());
        }
        // One record per connection: a later outcome of the same connection (there is
        // one per handshake) replaces it.
        map.insert(id.to_vec(), outcome);
    }

    /// The outcome recorded under `id`, if that client was accepted.
    pub(crate) fn get(&self, id: &[u8]) -> Option<Outcome> {
        self.lock().0.get(id).cloned()
    }

    /// Forgets the record `id`.
    pub(crate) fn remove(&self, id: &[u8]) {
        let mut guard = self.lock();
        let (map, order) = &mut *guard;
        if map.remove(id).is_some() {
            order.retain(|k| k.as_slice() != id);
        }
    }
}
