//! The verification policy: verify mode, ignore list and hooks turned into one decision.
//!
//! Backends collect the errors; this module decides, so that every backend applies Qt's
//! rules the same way. The state is shared between the core and the session's verifier
//! (which runs synchronously inside the handshake).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::cert::SslCertificate;
use crate::core::hooks::{SslHooks, Verdict};
use crate::enums::{PauseMode, PeerVerifyMode};
use crate::ssl_error::{IgnoreRule, SslError};

/// What the verifier must do with the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Accept the peer.
    Proceed,
    /// Refuse the peer: the handshake fails with an alert.
    Refuse,
}

/// Verification state shared by a core and its TLS session.
pub struct VerifyShared {
    inner: Mutex<VerifyState>,
}

/// The policy inputs and the recorded outcome of one handshake.
#[derive(Default)]
pub(crate) struct VerifyState {
    pub(crate) mode: Option<PeerVerifyMode>,
    pub(crate) ignore_all: bool,
    pub(crate) rules: Vec<IgnoreRule>,
    pub(crate) hooks: Option<Arc<dyn SslHooks>>,
    pub(crate) pause_mode: PauseMode,
    pub(crate) errors: Vec<SslError>,
    pub(crate) peer_chain: Vec<SslCertificate>,
    pub(crate) interrupt_on_error: bool,
    pub(crate) verified: bool,
    pub(crate) refused: bool,
    pub(crate) reported: bool,
    pub(crate) paused: bool,
    pub(crate) interrupted_on: Option<SslError>,
    pub(crate) resumed_outcome: Option<crate::backend::rustls::Outcome>,
    pub(crate) tickets: usize,
    pub(crate) ocsp_responses: Vec<crate::ocsp::OcspResponse>,
}

impl VerifyShared {
    pub(crate) fn new(mode: PeerVerifyMode) -> Arc<VerifyShared> {
        Arc::new(VerifyShared {
            inner: Mutex::new(VerifyState {
                mode: Some(mode),
                ..VerifyState::default()
            }),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, VerifyState> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The effective verify mode (`AutoVerifyPeer` already resolved by the core).
    pub fn mode(&self) -> PeerVerifyMode {
        self.lock().mode.unwrap_or(PeerVerifyMode::VerifyPeer)
    }

    /// Records the errors found for `chain` and decides. Called by a backend's verifier,
    /// once per handshake, inside the handshake.
    pub fn decide(&self, errors: Vec<SslError>, chain: Vec<SslCertificate>) -> Decision {
        let hooks = {
            let mut state = self.lock();
            state.errors = errors.clone();
            state.peer_chain = chain;
            state.verified = true;
            state.hooks.clone()
        };
        let mode = self.mode();
        if errors.is_empty()
            || matches!(mode, PeerVerifyMode::VerifyNone | PeerVerifyMode::QueryPeer)
        {
            return Decision::Proceed;
        }
        let interrupt = self.lock().interrupt_on_error;
        if interrupt {
            // Qt's early reporting: the first error interrupts the handshake; the hook
            // (the slot) continues it (accepting the errors) or lets it stop with an alert.
            let first = errors.first().cloned().unwrap_or_default();
            let verdict = hooks
                .as_ref()
                .map_or(Verdict::Abort, |h| h.handshake_interrupted(&first));
            let mut state = self.lock();
            state.interrupted_on = Some(first);
            state.reported = true;
            let proceed = verdict == Verdict::Ignore;
            state.refused = !proceed;
            return if proceed {
                Decision::Proceed
            } else {
                Decision::Refuse
            };
        }
        // The hook runs without the lock held, so it may call back into the policy.
        let verdict = hooks.map_or(Verdict::UsePolicy, |h| h.ssl_errors(&errors));
        let mut state = self.lock();
        state.reported = true;
        let decision = match verdict {
            Verdict::Ignore => Decision::Proceed,
            Verdict::Abort => Decision::Refuse,
            Verdict::Pause => {
                state.paused = true;
                Decision::Proceed
            }
            Verdict::UsePolicy => {
                if state.covers_all(&errors) {
                    Decision::Proceed
                } else if state.pause_mode == PauseMode::PauseOnSslErrors {
                    // Accepted only tentatively: the core withholds every byte until the
                    // application ignores the errors and resumes, or aborts.
                    state.paused = true;
                    Decision::Proceed
                } else {
                    Decision::Refuse
                }
            }
        };
        state.refused = decision == Decision::Refuse;
        decision
    }

    /// A session ticket (or TLS 1.2 session) was received and stored.
    pub(crate) fn note_ticket(&self) {
        self.lock().tickets += 1;
    }

    /// The tickets received since the last call.
    pub(crate) fn take_tickets(&self) -> usize {
        std::mem::take(&mut self.lock().tickets)
    }

    /// The peer sent no certificate where one was required (server in `VerifyPeer`).
    pub fn record_missing_certificate(&self) {
        let mut state = self.lock();
        state.verified = true;
        state.refused = true;
        state.errors = vec![SslError::new(
            crate::ssl_error::SslErrorKind::NoPeerCertificate,
        )];
    }
}

impl VerifyState {
    pub(crate) fn covers_all(&self, errors: &[SslError]) -> bool {
        self.ignore_all
            || errors
                .iter()
                .all(|e| self.rules.iter().any(|r| r.covers(e)))
    }
}
