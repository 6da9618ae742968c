//! The peer's verification as the core sees it: the policy handed to each handshake, the
//! verification taken back from the backend and reported (Qt's `peerVerifyError`,
//! `sslErrors`), pause and resume, the judgement of resumed sessions, refusals.

use super::*;

impl SslCore {
    /// Installs the hooks called inside the handshake.
    pub fn set_hooks(&mut self, hooks: Arc<dyn SslHooks>) {
        self.hooks = Some(hooks);
        self.policy_changed();
    }

    /// Dangerous: accept every verification error of the next handshake (Qt's
    /// `ignoreSslErrors()`). Errors are still collected and reported.
    pub fn ignore_ssl_errors(&mut self) {
        // Between TLS connections (the last one ended, its mode stays), a blanket ignore
        // does not carry into the next connection: a program reacting late to a failed
        // handshake's errors must not reconnect, maybe elsewhere, ignoring everything.
        let between = self.state == SocketState::UnconnectedState
            && (self.session.is_some() || self.mode != SslMode::UnencryptedMode);
        self.ignores_for_next_connection();
        self.ignore_all = true;
        self.ignore_all_expires |= between;
        self.policy_changed();
    }

    /// Forgets `ignore_ssl_errors()` and any ignore list.
    pub fn clear_ignored_ssl_errors(&mut self) {
        self.ignore_all = false;
        self.ignore_rules.clear();
        self.policy_changed();
    }

    /// Accept exactly these errors (kind and certificate), and no others (Qt's
    /// `ignoreSslErrors(list)`); a later call replaces the list.
    pub fn ignore_ssl_errors_list(&mut self, errors: &[SslError]) {
        self.ignore_ssl_error_rules(errors.iter().cloned().map(IgnoreRule::Exact).collect());
    }

    /// Accept the errors these rules cover; a later call replaces the rules.
    pub fn ignore_ssl_error_rules(&mut self, rules: Vec<IgnoreRule>) {
        self.ignores_for_next_connection();
        self.ignore_rules = rules;
        self.policy_changed();
    }

    /// Ignore lists given after a connection ended are for the next one (Qt keeps a list
    /// set before connecting): the ended connection's own ignores are dropped now, and the
    /// new list is not cleared when the next connection starts (a blanket
    /// `ignore_ssl_errors()` given then is, see there).
    fn ignores_for_next_connection(&mut self) {
        if self.state == SocketState::UnconnectedState && std::mem::take(&mut self.ignores_used) {
            self.ignore_all = false;
            self.ignore_rules.clear();
        }
    }

    /// Sets the pause mode (Qt's `setPauseMode`).
    pub fn set_pause_mode(&mut self, mode: PauseMode) {
        self.pause_mode = mode;
        self.policy_changed();
    }

    /// The pause mode.
    pub fn pause_mode(&self) -> PauseMode {
        self.pause_mode
    }

    /// The policy a handshake in verify mode `mode` is judged by: this socket's ignore
    /// list, hooks and pause mode as they are now.
    pub(super) fn policy(&self, mode: PeerVerifyMode) -> VerifyPolicy {
        VerifyPolicy::new(mode)
            .with_ignore_all(self.ignore_all)
            .with_rules(self.ignore_rules.clone())
            .with_hooks(self.hooks.clone())
            .with_pause_mode(self.pause_mode)
            .with_interrupt_on_error(self.configuration.handshake_must_interrupt_on_error())
    }

    /// Hands a policy changed during a handshake to the session, when the peer has not
    /// been judged yet (afterwards only `resume()` reads it).
    pub(super) fn policy_changed(&mut self) {
        if self.errors_reported {
            return;
        }
        let policy = self.policy(self.effective_mode);
        if let Some(session) = self.session.as_mut() {
            session.set_policy(policy);
        }
    }

    /// Takes the backend's verification of the peer, once per handshake, and reports it.
    pub(super) fn check_verification(&mut self) {
        let Some(verification) = self.session.as_mut().and_then(|s| s.take_verification()) else {
            return;
        };
        let Verification {
            mut errors,
            chain,
            ocsp_responses,
            judgement,
            valid_until,
        } = verification;
        self.errors_reported = true;
        // A stapled response checked is part of what was verified: past its nextUpdate a
        // full handshake would find `OcspResponseExpired`, so no resumption either.
        let staple_until = ocsp_responses.iter().filter_map(|r| r.fresh_until).min();
        self.peer_valid_until = valid_until.into_iter().chain(staple_until).min();
        if let Some(pin) = &judgement.pin_mismatch {
            if !self.reports_errors() {
                // `VerifyNone`: the pins were the only check that counted, and their
                // mismatch is what refused the peer; it alone is reported.
                errors = vec![pin.clone()];
            }
            self.reported_in_every_mode = true;
        } else {
            errors = self.listed_in_every_mode(errors);
        }
        self.handshake_errors = errors.clone();
        self.peer_chain = chain;
        self.ocsp_responses = ocsp_responses;
        if judgement.decision == Decision::Pause && self.phase == Phase::Handshaking {
            self.phase = Phase::Paused;
        }
        self.refused = judgement.decision == Decision::Refuse;
        if judgement.interrupted_on.is_empty() {
            self.report_errors(errors);
        } else {
            // Qt: the interruptions replace `peerVerifyError` and `sslErrors` (their errors
            // were reported from the verify callback, one by one); the list stays in
            // `ssl_handshake_errors()`.
            for error in judgement.interrupted_on {
                self.push(SslEvent::HandshakeInterruptedOnError(error));
            }
        }
        if self.phase == Phase::Paused && std::mem::take(&mut self.close_when_encrypted) {
            // The application is closing: no one is left to resume, so the pause is a
            // refusal, and the close fails with it rather than dropping the bytes quietly.
            self.refuse_peer();
        }
    }

    /// Whether this handshake's verification errors are the application's to see: in every
    /// mode that verifies (`QueryPeer`, `VerifyPeer`), not in `VerifyNone` (Qt), unless the
    /// peer was refused for its pins. The errors are found and kept with the session
    /// either way.
    pub(super) fn reports_errors(&self) -> bool {
        self.effective_mode != PeerVerifyMode::VerifyNone || self.reported_in_every_mode
    }

    /// `errors` as this socket reports them: in `VerifyNone`, Qt's blocklist still counts
    /// (round 35), so a listed certificate is reported, and alone.
    fn listed_in_every_mode(&mut self, errors: Vec<SslError>) -> Vec<SslError> {
        if self.reports_errors() {
            return errors;
        }
        let listed = crate::verify::blocklist::listed_among(&errors);
        if listed.is_empty() {
            return errors;
        }
        self.reported_in_every_mode = true;
        // The session keeps the whole list: a socket that resumes it judges every error
        // (round 36: the outcome stored kept only the blocklisted one).
        self.unreported_errors = Some(errors);
        listed
    }

    /// Qt signals the errors in every mode that verifies; only failing depends on
    /// `VerifyPeer`.
    pub(super) fn report_errors(&mut self, errors: Vec<SslError>) {
        if !errors.is_empty() && self.reports_errors() {
            for error in &errors {
                self.push(SslEvent::PeerVerifyError(error.clone()));
            }
            self.push(SslEvent::SslErrors(errors));
        }
    }

    pub(super) fn check_handshake_done(&mut self) {
        if self.phase != Phase::Handshaking {
            return;
        }
        let Some(session) = self.session.as_ref() else {
            return;
        };
        if session.is_handshaking() {
            return;
        }
        if self.mode == SslMode::SslServerMode
            && !self.errors_reported
            && self.missing_client_certificate()
        {
            return;
        }
        let Some(session) = self.session.as_ref() else {
            return;
        };
        self.negotiated = session.negotiated();
        if self.negotiated.as_ref().is_some_and(|n| n.resumed) && !self.errors_reported {
            // A resumed handshake verifies nothing: the original outcome is reported again
            // and judged again by this socket's policy.
            if !self.judge_resumed() {
                return;
            }
        }
        if self.peer_chain.is_empty() {
            self.peer_chain = self
                .session
                .as_ref()
                .map(|s| s.peer_certificate_chain())
                .unwrap_or_default();
        }
        if self.peer_chain.is_empty() && !self.configuration.pinned_public_keys().is_empty() {
            // Pins are set but the peer showed no certificate to match them (a client that
            // sent none, a pre-shared-key handshake): refused in every mode, fail closed.
            let error = SslError::new(SslErrorKind::CertificateRejected);
            self.errors_reported = true;
            self.reported_in_every_mode = true;
            self.handshake_errors = vec![error.clone()];
            self.report_errors(vec![error]);
            self.refuse_peer();
            return;
        }
        if self.mode == SslMode::SslClientMode
            && self.peer_chain.is_empty()
            && self.effective_mode == PeerVerifyMode::VerifyPeer
            && !self.configuration.pre_shared_key_authenticates_peer()
            && !self
                .handshake_errors
                .iter()
                .any(|e| e.error() == SslErrorKind::NoPeerCertificate)
            && self.certificate_less_server()
        {
            return;
        }
        let outcome = Outcome {
            errors: self
                .unreported_errors
                .clone()
                .unwrap_or_else(|| self.handshake_errors.clone()),
            chain: self.peer_chain.clone(),
            valid_until: self.peer_valid_until,
            ocsp_responses: self.ocsp_responses.clone(),
        };
        if let Some(session) = self.session.as_mut() {
            // Accepted: the sessions of this connection may now be resumed.
            session.confirm_peer(Some(outcome));
        }
        // A ticket held until the peer was accepted (OpenSSL's TLS 1.2 ticket comes with
        // the handshake) is news of the handshake, before `Encrypted` (as on rustls).
        self.drain_notices();
        self.accepted = true;
        self.phase = Phase::Encrypted;
        self.push(SslEvent::Encrypted);
        if std::mem::take(&mut self.close_when_encrypted) {
            // `disconnect_from_host` came during the handshake, with bytes to deliver.
            self.disconnect_from_host();
        }
    }

    /// The original outcome of a resumed session, reported and judged again by this
    /// socket's policy (the stores offer only sessions it accepts, so a refusal here means
    /// the outcome went missing). Returns whether the connection may go on.
    pub(super) fn judge_resumed(&mut self) -> bool {
        self.errors_reported = true;
        let original = self.session.as_ref().and_then(|s| s.resumed_outcome());
        let policy = self.policy(self.effective_mode);
        let accepted = match original {
            Some(original) => {
                let accepted = policy.may_resume(&original);
                self.peer_valid_until = original.valid_until;
                let errors = self.listed_in_every_mode(original.errors);
                self.handshake_errors = errors.clone();
                self.peer_chain = original.chain;
                self.ocsp_responses = original.ocsp_responses;
                self.report_errors(errors);
                accepted
            }
            // Nothing is known about the peer of this session: fail closed where the peer
            // must be verified or must hold a pinned key.
            None => {
                self.effective_mode != PeerVerifyMode::VerifyPeer
                    && self.configuration.pinned_public_keys().is_empty()
            }
        };
        if !accepted {
            self.refuse_peer();
        }
        accepted
    }

    /// The application's policy refused the peer after the backend let the handshake go
    /// on: nothing more goes out, the sessions are forgotten, the connection fails.
    pub(super) fn refuse_peer(&mut self) {
        if let Some(session) = self.session.as_mut() {
            session.confirm_peer(None);
        }
        self.refused = true;
        let names: Vec<String> = self
            .handshake_errors
            .iter()
            .map(|e| format!("{} ({})", e.error(), e.error_string()))
            .collect();
        let message = if names.is_empty() {
            "certificate verification failed: the resumed session's verification is unknown"
                .to_string()
        } else {
            format!("certificate verification failed: {}", names.join(", "))
        };
        // The flight held back (our Finished) must never go out: the peer would complete
        // a handshake the application refused.
        self.fail_with(Error::Tls(TlsFailure::handshake(message)), true);
    }

    /// A server in `VerifyPeer` mode whose client sent no certificate although one was not
    /// strictly required (`missing_certificate_is_fatal` off): Qt reports
    /// `NoPeerCertificate`, and the handshake fails unless that error is ignored. Returns
    /// whether the connection failed.
    pub(super) fn missing_client_certificate(&mut self) -> bool {
        let no_certificate = self
            .session
            .as_ref()
            .is_some_and(|s| s.peer_certificate_chain().is_empty());
        if self.effective_mode != PeerVerifyMode::VerifyPeer || !no_certificate {
            return false;
        }
        // A client the pre-shared key authenticated, where the configuration says the key
        // is enough (`set_pre_shared_key_authenticates_peer`): no certificate is required.
        let by_key = self
            .session
            .as_ref()
            .and_then(|s| s.negotiated())
            .is_some_and(|n| n.authenticated_by_key);
        if by_key && self.configuration.pre_shared_key_authenticates_peer() {
            return false;
        }
        // Judged as any verification: the hooks, the ignore list, the pause mode, an
        // interruption (Qt's server emits `sslErrors` with `NoPeerCertificate` for its
        // slot to decide; round 35: only the ignore list was consulted).
        self.judge_alone(vec![SslError::new(SslErrorKind::NoPeerCertificate)])
    }

    /// Judges `errors`, the whole verification of a peer that showed no certificate, by
    /// this socket's policy, and reports them: whether the handshake stopped there
    /// (refused, or paused for the application's word).
    fn judge_alone(&mut self, errors: Vec<SslError>) -> bool {
        let judgement = self.policy(self.effective_mode).judge(&errors);
        self.errors_reported = true;
        self.handshake_errors = errors.clone();
        if judgement.interrupted_on.is_empty() {
            self.report_errors(errors);
        } else {
            for error in judgement.interrupted_on {
                self.push(SslEvent::HandshakeInterruptedOnError(error));
            }
        }
        match judgement.decision {
            Decision::Proceed => false,
            Decision::Refuse => {
                self.refuse_peer();
                true
            }
            Decision::Pause => {
                self.phase = Phase::Paused;
                true
            }
        }
    }

    /// A client in `VerifyPeer` mode whose server showed no certificate and was verified by
    /// nothing (a pre-shared-key suite: the key authenticated it): Qt reports
    /// `NoPeerCertificate` (`simplePskConnect`), judged as any verification (the hooks,
    /// the ignore list, the pause mode). Returns whether the handshake stopped there
    /// (refused, or paused for the application's word).
    fn certificate_less_server(&mut self) -> bool {
        let missing = SslError::new(SslErrorKind::NoPeerCertificate);
        if self.errors_reported {
            // Something was judged already (a stapling check that found no response): the
            // missing certificate is added to those errors and must be ignored explicitly
            // too (the ignore list; the hooks had their say on the rest).
            self.handshake_errors.push(missing.clone());
            self.report_errors(vec![missing.clone()]);
            if self.policy(self.effective_mode).covers_all(&[missing]) {
                return false;
            }
            self.refuse_peer();
            return true;
        }
        self.judge_alone(vec![missing])
    }

    pub(super) fn fail_tls(&mut self, mut failure: TlsFailure) {
        if self.refused {
            let names: Vec<String> = self
                .handshake_errors
                .iter()
                .map(|e| format!("{} ({})", e.error(), e.error_string()))
                .collect();
            failure.message = format!("certificate verification failed: {}", names.join(", "));
        }
        if self.peer_chain.is_empty() {
            if let Some(session) = &self.session {
                self.peer_chain = session.peer_certificate_chain();
            }
        }
        // An accepted connection that ended with a fatal alert (sent or received) is not
        // resumed (RFC 5246 §7.2.2): what it stored is forgotten, on a client and on a
        // server (round 35: a TLS 1.2 session of such a connection was resumed). A
        // handshake that failed stored nothing (what it held goes with it), and other
        // sockets' sessions of that peer stay (round 35: on rustls they went too).
        if self.accepted {
            if let Some(session) = self.session.as_mut() {
                session.forget_own_sessions();
            }
        }
        self.fail(Error::Tls(failure));
    }

    /// Whether the handshake is paused on verification errors (Qt's `PauseOnSslErrors`).
    pub fn is_paused(&self) -> bool {
        self.phase == Phase::Paused
    }

    /// Whether output is held back: while paused, for good after a refusal, and once the
    /// connection is closed (aborted, or TCP gone: Qt's `abort` discards what is pending).
    pub(super) fn output_held(&self) -> bool {
        matches!(self.phase, Phase::Paused | Phase::Failed { withheld: true })
            || self.state == SocketState::UnconnectedState
    }

    /// Continues a paused handshake (Qt's `resume()`): it completes if every error is now
    /// ignored (`ignore_ssl_errors*` called meanwhile), otherwise it fails.
    pub fn resume(&mut self) -> Result<(), Error> {
        if self.phase != Phase::Paused {
            return Err(ApiMisuse("the handshake is not paused".into()).into());
        }
        self.phase = Phase::Handshaking;
        // Qt: after a pause only the ignore list decides (set meanwhile with
        // `ignore_ssl_errors*`); the hooks were asked already.
        let accepted = self
            .policy(self.effective_mode)
            .covers_all(&self.handshake_errors);
        if !accepted {
            self.refuse_peer();
            return Err(self.error.as_deref().cloned().unwrap_or_else(|| {
                Error::Tls(TlsFailure::handshake("certificate verification failed"))
            }));
        }
        self.check_handshake_done();
        self.flush_queued();
        if self.session.as_ref().is_some_and(|s| s.plaintext_len() > 0) {
            self.count(Counter::ReadyRead, 0);
        }
        Ok(())
    }

    /// Ends a paused handshake by refusing the peer (Qt: `abort()` while paused, but the
    /// peer is told why): nothing held back goes out, and the handshake fails with the
    /// verification errors, as if they had not been ignored. An error when not paused.
    pub fn refuse(&mut self) -> Result<(), Error> {
        if self.phase != Phase::Paused {
            return Err(ApiMisuse("the handshake is not paused".into()).into());
        }
        self.phase = Phase::Handshaking;
        self.refuse_peer();
        Ok(())
    }

    /// Qt's `continueInterruptedHandshake()`: the decision is taken synchronously by
    /// [`SslHooks::handshake_interrupted`]; after the fact there is nothing left to
    /// continue, so this only reports whether the handshake went on.
    pub fn continue_interrupted_handshake(&mut self) -> Result<(), Error> {
        match self.failure() {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }
}
