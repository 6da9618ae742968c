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

use crate::backend::rustls::Outcome;
use crate::core::VerifyShared;

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

    /// Offers the stored session of `peer` on `ssl` before its handshake, and tells the
    /// connection what that session was verified as.
    pub(crate) fn offer(&self, ssl: &mut SslRef, peer: &str, verify: &VerifyShared) {
        let mut sessions = self.lock();
        let Some((session, outcome)) = sessions.get(peer) else {
            return;
        };
        match set_session(ssl, session) {
            Ok(()) => verify.lock().resumed_outcome = Some(outcome.clone()),
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
