//! The verification policy of one handshake, and what it decides.
//!
//! Values in, values out: the core builds a [`VerifyPolicy`] when a handshake starts (verify
//! mode, ignore list, hooks, pause mode) and hands it to the backend, which judges the
//! errors it found with it inside the handshake and gives back a [`Verification`]. Nothing
//! here is shared or mutable: a later `ignore_ssl_errors()` changes the core's policy for
//! `resume()` and the next handshake, never a handshake's copy behind its back.

use std::fmt;
use std::sync::Arc;

use crate::cert::SslCertificate;
use crate::enums::{PauseMode, PeerVerifyMode};
use crate::ocsp::OcspResponse;
use crate::ssl_error::{IgnoreRule, SslError};
use crate::verify::hooks::{SslHooks, Verdict};

/// What the handshake does with the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Decision {
    /// Accept the peer.
    #[default]
    Proceed,
    /// Refuse the peer: the handshake fails with an alert.
    Refuse,
    /// Accept only tentatively: the core withholds every byte until the application
    /// resumes (errors now ignored) or aborts (Qt's `PauseOnSslErrors`).
    Pause,
}

/// The policy one handshake is judged by.
#[derive(Clone, Default)]
pub struct VerifyPolicy {
    mode: PeerVerifyMode,
    ignore_all: bool,
    rules: Vec<IgnoreRule>,
    hooks: Option<Arc<dyn SslHooks>>,
    pause_mode: PauseMode,
    interrupt_on_error: bool,
}

impl fmt::Debug for VerifyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyPolicy")
            .field("mode", &self.mode)
            .field("ignore_all", &self.ignore_all)
            .field("rules", &self.rules)
            .field("hooks", &self.hooks.is_some())
            .field("pause_mode", &self.pause_mode)
            .field("interrupt_on_error", &self.interrupt_on_error)
            .finish()
    }
}

/// The verdict on one list of errors.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Judgement {
    /// What to do.
    pub decision: Decision,
    /// The errors the handshake was interrupted on, in order
    /// (`handshake_must_interrupt_on_error`): each one the hook continued past, and the one
    /// it stopped on, if any. Empty when nothing interrupted it.
    pub interrupted_on: Vec<SslError>,
    /// The peer holds none of the pinned keys: this error (`CertificateRejected`) refused
    /// it, whatever the verify mode, the ignore list, the hooks or the pause mode say.
    pub pin_mismatch: Option<SslError>,
}

impl VerifyPolicy {
    /// A policy with verify mode `mode` (already resolved from `AutoVerifyPeer`), nothing
    /// ignored, no hooks, `PauseNever`.
    pub fn new(mode: PeerVerifyMode) -> VerifyPolicy {
        VerifyPolicy {
            mode,
            ..VerifyPolicy::default()
        }
    }

    /// Dangerous: every error is accepted (Qt's `ignoreSslErrors()`).
    pub fn with_ignore_all(mut self, on: bool) -> VerifyPolicy {
        self.ignore_all = on;
        self
    }

    /// The errors these rules cover are accepted.
    pub fn with_rules(mut self, rules: Vec<IgnoreRule>) -> VerifyPolicy {
        self.rules = rules;
        self
    }

    /// Hooks asked inside the handshake.
    pub fn with_hooks(mut self, hooks: Option<Arc<dyn SslHooks>>) -> VerifyPolicy {
        self.hooks = hooks;
        self
    }

    /// The pause mode.
    pub fn with_pause_mode(mut self, mode: PauseMode) -> VerifyPolicy {
        self.pause_mode = mode;
        self
    }

    /// Stop at each error and ask `SslHooks::handshake_interrupted` whether to go on.
    pub fn with_interrupt_on_error(mut self, on: bool) -> VerifyPolicy {
        self.interrupt_on_error = on;
        self
    }

    /// The verify mode.
    pub fn mode(&self) -> PeerVerifyMode {
        self.mode
    }

    /// The hooks, if any.
    pub fn hooks(&self) -> Option<&Arc<dyn SslHooks>> {
        self.hooks.as_ref()
    }

    /// Whether the ignore list (without hooks) accepts every one of `errors`.
    pub fn covers_all(&self, errors: &[SslError]) -> bool {
        self.ignore_all
            || errors
                .iter()
                .all(|e| self.rules.iter().any(|r| r.covers(e)))
    }

    /// Whether the peer's errors are not this socket's business (`VerifyNone`, `QueryPeer`).
    fn ignores_outcome(&self) -> bool {
        matches!(
            self.mode,
            PeerVerifyMode::VerifyNone | PeerVerifyMode::QueryPeer
        )
    }

    /// The decision on `errors` (`pin_mismatch` among them when the peer holds none of the
    /// pinned keys). A pin mismatch refuses the peer in every verify mode, `VerifyNone`
    /// included: nothing ignores it, no hook or pause is asked, since pinning is the
    /// application's own explicit, narrow statement of whom it trusts. Otherwise
    /// [`judge`](Self::judge).
    pub fn judge_pinned(&self, errors: &[SslError], pin_mismatch: Option<SslError>) -> Judgement {
        match pin_mismatch {
            Some(error) => Judgement {
                decision: Decision::Refuse,
                interrupted_on: Vec::new(),
                pin_mismatch: Some(error),
            },
            None => self.judge(errors),
        }
    }

    /// The decision on `errors`, found in a full handshake: the hooks are asked, then the
    /// ignore list and the pause mode apply (Qt's order).
    pub fn judge(&self, errors: &[SslError]) -> Judgement {
        if errors.is_empty() {
            return Judgement::default();
        }
        if self.ignores_outcome() {
            // Qt checks its blocklist in every verify mode: a listed certificate fails the
            // handshake unless the application ignores it (round 35: `VerifyNone` and
            // `QueryPeer` accepted it).
            let listed = crate::verify::blocklist::listed_among(errors);
            if listed.is_empty() {
                return Judgement::default();
            }
            return self.judge_all(&listed);
        }
        self.judge_all(errors)
    }

    /// [`judge`](Self::judge) of errors that all count: the hooks, the ignore list, the
    /// pause mode.
    fn judge_all(&self, errors: &[SslError]) -> Judgement {
        if self.interrupt_on_error {
            // Qt's early reporting: every error interrupts the handshake in turn (Qt's
            // verify callback runs once per error); the hook (the slot) continues past it
            // or lets the handshake stop there with an alert. Continuing past one error
            // accepts that one only: the next interrupts again.
            let mut interrupted_on = Vec::new();
            for error in errors {
                interrupted_on.push(error.clone());
                let verdict = self.hooks.as_ref().map_or(Verdict::Abort, |h| {
                    guarded(|| h.handshake_interrupted(error))
                });
                if verdict != Verdict::Ignore {
                    return Judgement {
                        decision: Decision::Refuse,
                        interrupted_on,
                        pin_mismatch: None,
                    };
                }
            }
            return Judgement {
                decision: Decision::Proceed,
                interrupted_on,
                pin_mismatch: None,
            };
        }
        let verdict = self
            .hooks
            .as_ref()
            .map_or(Verdict::UsePolicy, |h| guarded(|| h.ssl_errors(errors)));
        let decision = match verdict {
            Verdict::Ignore => Decision::Proceed,
            Verdict::Abort => Decision::Refuse,
            Verdict::Pause => Decision::Pause,
            Verdict::UsePolicy if self.covers_all(errors) => Decision::Proceed,
            Verdict::UsePolicy if self.pause_mode == PauseMode::PauseOnSslErrors => Decision::Pause,
            Verdict::UsePolicy => Decision::Refuse,
        };
        Judgement {
            decision,
            interrupted_on: Vec::new(),
            pin_mismatch: None,
        }
    }

    /// Whether a session whose original handshake found `original` may be resumed by a
    /// socket with this policy. A resumed handshake verifies nothing, so a session is only
    /// offered when this socket would accept the original errors without asking anyone:
    /// none, or all covered by its ignore list. When hooks, a pause or an interruption
    /// would have to decide, the session is not offered and a full handshake asks them.
    /// Nor is a session whose verified certificates have expired since
    /// ([`Outcome::valid_until`]).
    pub fn may_resume(&self, original: &Outcome) -> bool {
        if self.ignores_outcome() {
            // Only the blocklist counts here, as in a full handshake (round 35: a listed
            // session was resumed by a socket that did not ignore it).
            let listed = crate::verify::blocklist::listed_among(&original.errors);
            return listed.is_empty() || self.accepts_unasked(&listed);
        }
        if original.expired_at(now_unix()) {
            // A resumed handshake must not accept what a full one now refuses: the
            // certificates it verified have expired since.
            return false;
        }
        if original.errors.is_empty() {
            return true;
        }
        self.accepts_unasked(&original.errors)
    }

    /// Whether `errors` are accepted without asking anyone: no hook or interruption would
    /// have to decide, and the ignore list covers them all (a resumption's rule).
    fn accepts_unasked(&self, errors: &[SslError]) -> bool {
        self.hooks.is_none() && !self.interrupt_on_error && self.covers_all(errors)
    }

    /// [`may_resume`](Self::may_resume), and the original chain shows a certificate where
    /// keys are pinned (`pinned`): what a resumed handshake must pass to be accepted.
    pub fn accepts_resumption(&self, original: &Outcome, pinned: bool) -> bool {
        self.may_resume(original) && !(pinned && original.chain.is_empty())
    }
}

/// An application hook's verdict; a hook that panics refuses the peer (fail closed) and
/// ends only this handshake, on every backend and driver, wherever the judgement runs
/// (round 35: on rustls, and in the core's own judgements, the panic reached the caller or
/// unwound a blocking server's handshake thread).
fn guarded(hook: impl FnOnce() -> Verdict) -> Verdict {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)).unwrap_or(Verdict::Abort)
}

/// The verification outcome a session is stored with, and reported again when resumed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every error the original handshake found.
    pub errors: Vec<SslError>,
    /// The peer's chain in the original handshake.
    pub chain: Vec<SslCertificate>,
    /// The earliest `notAfter` (seconds since the Unix epoch) of the certificates the
    /// original handshake verified that had not expired then, and the `nextUpdate` (plus
    /// the 60 s skew) of the stapled OCSP response it checked, when known: past it the
    /// session is not resumed (a full handshake would find a `CertificateExpired` or
    /// `OcspResponseExpired` the original errors do not have). What had expired already is
    /// among `errors`.
    pub valid_until: Option<i64>,
    /// The stapled OCSP responses the original handshake checked (a resumed connection
    /// reports them as it reports the chain; round 35: it reported none, beside the
    /// original's clean verdict).
    pub ocsp_responses: Vec<OcspResponse>,
}

impl Outcome {
    /// Whether the certificates behind this outcome had expired at `now_unix`.
    pub fn expired_at(&self, now_unix: i64) -> bool {
        self.valid_until.is_some_and(|until| until < now_unix)
    }
}

/// Seconds since the Unix epoch now (0 if the clock is before it).
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What a backend hands back about the peer of one handshake, once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// Every error found, ignored or not.
    pub errors: Vec<SslError>,
    /// The peer's chain as it sent it, leaf first.
    pub chain: Vec<SslCertificate>,
    /// Stapled OCSP responses checked.
    pub ocsp_responses: Vec<OcspResponse>,
    /// The earliest `notAfter` of the certificates verified (see [`Outcome::valid_until`]).
    pub valid_until: Option<i64>,
    /// The verdict the backend acted on.
    pub judgement: Judgement,
}

impl Verification {
    /// The errors and chain, to store with a session.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            errors: self.errors.clone(),
            chain: self.chain.clone(),
            valid_until: self.valid_until,
            ocsp_responses: self.ocsp_responses.clone(),
        }
    }
}
