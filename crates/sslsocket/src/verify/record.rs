//! What one connection's verification callbacks and session stores hand to its session.
//!
//! Backends call their verifier and session stores from inside the TLS library, with no
//! way back to the connection; each connection therefore gets its own verifier and store
//! instances holding one [`HandshakeRecord`], and the session reads the results out of it
//! as values ([`crate::backend::TlsSession::take_verification`]). Nothing here is shared
//! between connections, and the core never sees it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::verify::policy::{Outcome, Verification};

/// The application's last word on the peer, for the sessions this connection made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Confirmation {
    /// Not decided yet (the handshake runs, or is paused): sessions are held back.
    Pending,
    /// Accepted: sessions are stored with this outcome.
    Accepted(Outcome),
    /// Refused: nothing is stored, and what was stored is forgotten.
    Refused,
}

#[derive(Debug)]
struct RecordState {
    /// Boxed: it is held only from the verification to the end of the handshake, and a
    /// connection keeps its record (so its size) for as long as it lives.
    fresh: Option<Box<Verification>>,
    /// Boxed: set on resumed connections only.
    offered: Option<Box<Outcome>>,
    confirmation: Confirmation,
    tickets: usize,
    /// Our own side could not go on (a client certificate resolver's identity that is
    /// unusable): the handshake fails with it before our flight leaves. Boxed: rare.
    local_failure: Option<Box<crate::error::ConfigError>>,
}

/// One connection's verification results and session bookkeeping.
#[derive(Debug)]
pub(crate) struct HandshakeRecord {
    inner: Mutex<RecordState>,
    /// What was set since it was last taken ([`NEW_RESULT`], [`NEW_TICKETS`]): the session
    /// asks after every record it processes, and most ask about nothing new, so the lock is
    /// taken only when a flag says so. A flag is raised after the state it announces is
    /// written, and lowered before that state is read: a result is never missed, at worst
    /// looked for once when it was already taken.
    news: AtomicU8,
}

/// [`HandshakeRecord::news`]: a verification result waits to be taken.
const NEW_RESULT: u8 = 1;
/// [`HandshakeRecord::news`]: tickets were noted.
const NEW_TICKETS: u8 = 2;
/// [`HandshakeRecord::news`]: our side failed ([`HandshakeRecord::fail_locally`]).
const NEW_LOCAL_FAILURE: u8 = 4;

impl Default for HandshakeRecord {
    fn default() -> HandshakeRecord {
        HandshakeRecord {
            inner: Mutex::new(RecordState {
                fresh: None,
                offered: None,
                confirmation: Confirmation::Pending,
                tickets: 0,
                local_failure: None,
            }),
            news: AtomicU8::new(0),
        }
    }
}

impl HandshakeRecord {
    fn lock(&self) -> MutexGuard<'_, RecordState> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The verifier's result (the last one wins: OpenSSL may decide twice).
    pub(crate) fn record(&self, verification: Verification) {
        self.lock().fresh = Some(Box::new(verification));
        self.news.fetch_or(NEW_RESULT, Ordering::Release);
    }

    /// Lowers `flag` and says whether it was up.
    fn take_news(&self, flag: u8) -> bool {
        self.news.load(Ordering::Acquire) & flag != 0
            && self.news.fetch_and(!flag, Ordering::AcqRel) & flag != 0
    }

    /// Replaces the chain of the result not yet handed out (an OpenSSL server learns the
    /// chain as sent only after its verify callback).
    #[cfg_attr(not(feature = "openssl"), allow(dead_code))]
    pub(crate) fn patch_chain(&self, chain: Vec<crate::cert::SslCertificate>) {
        if let Some(fresh) = self.lock().fresh.as_mut() {
            fresh.chain = chain;
        }
    }

    /// The result not yet handed out, once.
    pub(crate) fn take(&self) -> Option<Verification> {
        if !self.take_news(NEW_RESULT) {
            return None;
        }
        self.lock().fresh.take().map(|fresh| *fresh)
    }

    /// Our own side cannot go on with the handshake (the first failure wins).
    pub(crate) fn fail_locally(&self, error: crate::error::ConfigError) {
        self.lock().local_failure.get_or_insert(Box::new(error));
        self.news.fetch_or(NEW_LOCAL_FAILURE, Ordering::Release);
    }

    /// Our side's failure not yet handed out, once.
    pub(crate) fn take_local_failure(&self) -> Option<crate::error::ConfigError> {
        if !self.take_news(NEW_LOCAL_FAILURE) {
            return None;
        }
        self.lock().local_failure.take().map(|failure| *failure)
    }

    /// The session offered for resumption was verified as `outcome`.
    pub(crate) fn set_offered(&self, outcome: Outcome) {
        self.lock().offered = Some(Box::new(outcome));
    }

    /// The outcome of the session offered (or accepted, on a server) for resumption.
    pub(crate) fn offered(&self) -> Option<Outcome> {
        self.lock().offered.as_deref().cloned()
    }

    /// The application's word on the peer (from the session's `confirm_peer`).
    pub(crate) fn confirm(&self, outcome: Option<Outcome>) {
        self.lock().confirmation = match outcome {
            Some(outcome) => Confirmation::Accepted(outcome),
            None => Confirmation::Refused,
        };
    }

    /// Whether sessions may be stored now, later, or never.
    pub(crate) fn confirmation(&self) -> Confirmation {
        self.lock().confirmation.clone()
    }

    /// Whether the application accepted the peer ([`Confirmation::Accepted`]), without
    /// copying the outcome.
    #[cfg_attr(not(feature = "openssl"), allow(dead_code))]
    pub(crate) fn is_accepted(&self) -> bool {
        matches!(self.lock().confirmation, Confirmation::Accepted(_))
    }

    /// A session or ticket was received (and kept or held).
    pub(crate) fn note_ticket(&self) {
        let mut state = self.lock();
        state.tickets = state.tickets.saturating_add(1);
        drop(state);
        self.news.fetch_or(NEW_TICKETS, Ordering::Release);
    }

    /// The tickets noted since the last call.
    pub(crate) fn take_tickets(&self) -> usize {
        if !self.take_news(NEW_TICKETS) {
            return 0;
        }
        std::mem::take(&mut self.lock().tickets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::policy::{Decision, Judgement};
    use crate::{SslError, SslErrorKind};

    fn refusal(kind: SslErrorKind) -> Verification {
        Verification {
            errors: vec![SslError::new(kind)],
            judgement: Judgement {
                decision: Decision::Refuse,
                ..Judgement::default()
            },
            ..Verification::default()
        }
    }

    #[test]
    fn every_result_is_taken_once_and_the_last_one_wins() {
        let record = HandshakeRecord::default();
        assert!(record.take().is_none());
        record.record(refusal(SslErrorKind::NoPeerCertificate));
        record.record(refusal(SslErrorKind::CertificateExpired));
        let taken = record.take().map(|v| v.errors);
        assert_eq!(
            taken,
            Some(vec![SslError::new(SslErrorKind::CertificateExpired)])
        );
        assert!(record.take().is_none());
        // A result recorded after one was taken (OpenSSL may decide twice) is not lost.
        record.record(refusal(SslErrorKind::HostNameMismatch));
        assert_eq!(
            record.take().map(|v| v.judgement.decision),
            Some(Decision::Refuse)
        );
        assert!(record.take().is_none());
    }

    #[test]
    fn taking_tickets_leaves_a_result_waiting_and_the_other_way_round() {
        let record = HandshakeRecord::default();
        record.record(refusal(SslErrorKind::CertificateUntrusted));
        record.note_ticket();
        record.note_ticket();
        assert_eq!(record.take_tickets(), 2);
        assert_eq!(record.take_tickets(), 0);
        record.note_ticket();
        assert!(record.take().is_some());
        assert_eq!(record.take_tickets(), 1);
        // A chain patched in before the result is taken goes with it.
        record.record(refusal(SslErrorKind::CertificateUntrusted));
        record.patch_chain(Vec::new());
        assert!(record.take().is_some());
    }
}
