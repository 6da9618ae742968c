//! The client's session store: resumption that never bypasses trust.
//!
//! rustls does not call the verifier on a resumed handshake. So a session is stored only
//! when the connection that received it was accepted by the application (no verification
//! errors, or every one of them ignored; never while paused), and the outcome of the
//! original verification (errors and peer chain) is kept beside it, so a resumed
//! connection reports what the original handshake found. The store belongs to one
//! configuration (its CA set, verify mode and depth), so a change of trust settings never
//! reuses a session made under other settings.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::NamedGroup;
use rustls_pki_types::ServerName;

use crate::backend::rustls::verifier::current;
use crate::cert::SslCertificate;
use crate::ssl_error::SslError;

/// How many servers the store remembers.
const SERVERS: usize = 256;

/// The verification outcome of the handshake that made a session.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) errors: Vec<SslError>,
    pub(crate) chain: Vec<SslCertificate>,
}

/// Sessions by server, with the outcome of their verification.
pub(crate) struct SessionStore {
    inner: ClientSessionMemoryCache,
    outcomes: Mutex<HashMap<ServerName<'static>, Outcome>>,
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore").finish_non_exhaustive()
    }
}

impl SessionStore {
    pub(crate) fn new() -> Arc<SessionStore> {
        Arc::new(SessionStore {
            inner: ClientSessionMemoryCache::new(SERVERS),
            outcomes: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the connection now running on this thread may store a session: its peer was
    /// accepted, now or (for a resumed connection) originally. Records the outcome.
    fn accept(&self, server_name: &ServerName<'static>) -> bool {
        let Some(ctx) = current() else { return false };
        let outcome = {
            let state = ctx.lock();
            if state.verified {
                if state.refused || state.paused {
                    return false;
                }
                Outcome {
                    errors: state.errors.clone(),
                    chain: state.peer_chain.clone(),
                }
            } else {
                match &state.resumed_outcome {
                    Some(original) => original.clone(),
                    None => return false,
                }
            }
        };
        ctx.note_ticket();
        let mut outcomes = match self.outcomes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if outcomes.len() >= SERVERS && !outcomes.contains_key(server_name) {
            outcomes.clear();
        }
        outcomes.insert(server_name.clone(), outcome);
        true
    }

    /// Tells the running connection what the session it offers was verified as.
    fn offer(&self, server_name: &ServerName<'_>) {
        let outcome = match self.outcomes.lock() {
            Ok(g) => g.get(server_name).cloned(),
            Err(p) => p.into_inner().get(server_name).cloned(),
        };
        if let (Some(ctx), Some(outcome)) = (current(), outcome) {
            ctx.lock().resumed_outcome = Some(outcome);
        }
    }

    /// Forgets every session of `server_name` (the application rejected the peer).
    pub(crate) fn purge(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name);
        while self.inner.take_tls13_ticket(server_name).is_some() {}
        match self.outcomes.lock() {
            Ok(mut g) => g.remove(server_name),
            Err(p) => p.into_inner().remove(server_name),
        };
    }
}

impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        if self.accept(&server_name) {
            self.inner.set_tls12_session(server_name, value);
        }
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        let value = self.inner.tls12_session(server_name);
        if value.is_some() {
            self.offer(server_name);
        }
        value
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        if self.accept(&server_name) {
            self.inner.insert_tls13_ticket(server_name, value);
        }
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let value = self.inner.take_tls13_ticket(server_name);
        if value.is_some() {
            self.offer(server_name);
        }
        value
    }
}
