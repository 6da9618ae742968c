//! The verify callback that collects: OpenSSL's own verification reports every error, depth
//! by depth, and the callback always lets it go on, as Qt's OpenSSL backend does.
//!
//! The callback is installed per connection (`SslRef::set_verify_callback`) and records
//! each error with the certificate OpenSSL was looking at. When OpenSSL signals success at
//! depth 0 (the last call of a verification that was allowed to continue), the list is
//! judged by the handshake's [`VerifyPolicy`] and recorded for the session to hand out; a
//! refusal makes the
//! callback return false there, and OpenSSL ends the handshake with the alert that fits the
//! first error. A client that asked for a stapled OCSP response decides later, in the
//! status callback (`on_status`), with the response's errors added to the chain's.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use openssl::ssl::{SslRef, SslSession, SslSessionRef};
use openssl::x509::{X509Ref, X509StoreContext, X509StoreContextRef, X509VerifyResult, X509};

use std::collections::VecDeque;

use sslsocket_openssl_ext::{ContextSession, HelloServerName};

use crate::backend::openssl::sessions::{ClientSessions, ServerOutcomes};
use crate::backend::BackendNotice;
use crate::cert::SslCertificate;
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::checks::{path_checks, sent_extension_errors};
use crate::verify::constraints::name_errors;
use crate::verify::kept::PeerParses;
use crate::verify::now_unix;
use crate::verify::record::{Confirmation, HandshakeRecord};
use crate::verify::staple::{pin_error, staple_errors};
use crate::verify::{Decision, Judgement, Outcome, SslHooks, Verification, VerifyPolicy};

/// What one connection shares with its OpenSSL callbacks: the verification in progress,
/// the alerts and tickets seen, the last session received.
pub(crate) struct ConnectionState {
    policy: Mutex<VerifyPolicy>,
    record: HandshakeRecord,
    pins: Vec<[u8; 32]>,
    /// The client asked for a stapled OCSP response: the decision waits for the status
    /// callback, which OpenSSL calls after the whole server flight (in TLS 1.2 the
    /// CertificateStatus message follows the certificate verification).
    ocsp: bool,
    /// A client's session store and the peer name its sessions are kept under (boxed:
    /// servers, with many connections each, have none).
    sessions: Option<Box<(Arc<ClientSessions>, String)>>,
    inner: Mutex<Collected>,
    /// `inner.notices` may hold something: the session polls it after every step, and
    /// most steps see none, so this spares them the lock.
    has_notices: AtomicBool,
    /// The bytes of the TLS records OpenSSL has processed (headers included), counted by
    /// its message callback.
    records_read: AtomicU64,
    /// The configuration's CA certificates, already read (see [`ConnectionState::certificate`]).
    anchors: Arc<[KnownCertificate]>,
    /// The configuration's parses of the certificates peers sent last.
    peers: Arc<PeerParses>,
    /// A client's peer name, checked by our host-name rules as well as by OpenSSL's.
    host: Option<Box<str>>,
    /// A server's record of the clients it accepted, which its ticket filter reads, and
    /// this connection's key in it (sealed into the tickets it issues).
    server_outcomes: OnceLock<(Arc<ServerOutcomes>, [u8; 8])>,
}

/// Whether `policy` accepts a resumed handshake of a session whose original handshake
/// ended in `outcome`: the core's judgement (`may_resume`), for a peer that showed a
/// certificate (a pre-shared key's sessions are never offered).
fn accepts_offer(policy: &VerifyPolicy, outcome: &Outcome) -> bool {
    !outcome.chain.is_empty() && policy.may_resume(outcome)
}

/// A certificate already read, with an OpenSSL object of it that we hold a reference on:
/// while held, no other certificate can have that object's address, so meeting the same
/// address again needs neither encoding nor comparing bytes.
pub(crate) struct KnownCertificate {
    pub(crate) x509: X509,
    pub(crate) cert: SslCertificate,
}

/// The most certificates a connection keeps read; past it, each is read anew.
const READ_KEPT: usize = 16;

#[derive(Default)]
struct Collected {
    /// The server name of the client's hello (a server's client hello callback sets it),
    /// which a resumed session must have been made under. Two hellos (after a
    /// HelloRetryRequest) that ask for different names leave a name nothing matches.
    hello_name: Option<HelloServerName>,
    errors: Vec<SslError>,
    /// Where in `errors` OpenSSL's checks after its last per-certificate call begin (name
    /// constraints, RFC 3779 resources, policies): our own rules' findings are listed
    /// before them, where OpenSSL's extension checks would have put them.
    late_from: Option<usize>,
    /// OpenSSL's code for each error it reported, so that a refusal's alert is the one of
    /// the first error listed (round 36: it was the one OpenSSL found first, which the
    /// listing puts after our rules' errors when OpenSSL found it late).
    codes: Vec<(SslError, X509VerifyResult)>,
    /// The code of the first error of the decided list that has one.
    refusal_code: Option<X509VerifyResult>,
    started: bool,
    decided: bool,
    refused: bool,
    /// Decided, and the peer accepted outright (not paused on, not refused).
    proceeded: bool,
    /// A stored session is offered (a client's), and the policy accepts its original
    /// outcome without asking anyone: the judgement the core makes of the handshake if the
    /// server resumes it (kept up to date when the policy changes).
    offer_accepted: bool,
    /// The PSK hook supplied a key (a client's): the server may pick it over the session
    /// offered, and then nothing about the peer is known before the core judges it.
    psk_supplied: bool,
    /// The chain as sent and as built, kept until the status callback decides (boxed:
    /// the state lives as long as the connection, this only during its handshake).
    pending: Option<Box<(Vec<SslCertificate>, Vec<SslCertificate>)>>,
    session: Option<SslSession>,
    /// A session received before the application's word on the peer, with its tag for the
    /// context's store (made when it was received: only then is it the connection's own).
    held: Option<(SslSession, Option<ContextSession>)>,
    /// Alerts (from the info callback) and tickets, in the order they happened.
    notices: VecDeque<BackendNotice>,
    /// The peer's certificates read so far, each parsed once per connection.
    read: Vec<KnownCertificate>,
    /// A server's: the record key of the session its ticket filter let OpenSSL resume.
    resumed_key: Option<Vec<u8>>,
    /// `UnableToVerifyFirstCertificate` on a leaf whose issuer is unknown, still to be
    /// listed (see `Collected::record`).
    lone_leaf: Option<SslError>,
}

impl Collected {
    /// Lists `error`, found at `depth`. The trust store takes any trusted certificate as an
    /// anchor (`X509_V_FLAG_PARTIAL_CHAIN`, as the rustls backend does), and OpenSSL then
    /// leaves out what it reports without that flag when the leaf's issuer is unknown:
    /// `X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE` (Qt's `UnableToVerifyFirstCertificate`)
    /// after the leaf's other errors and before its dates. It is listed here where
    /// OpenSSL would, so the lists Qt users know (and the rustls backend's) stay the same.
    fn record(&mut self, error: SslError, depth: u32) {
        let dates = matches!(
            error.error(),
            SslErrorKind::CertificateNotYetValid | SslErrorKind::CertificateExpired
        );
        if depth == 0 && dates {
            self.flush_lone_leaf();
        }
        if depth == 0 && error.error() == SslErrorKind::UnableToGetLocalIssuerCertificate {
            self.lone_leaf = error.certificate().map(|leaf| {
                SslError::with_certificate(
                    SslErrorKind::UnableToVerifyFirstCertificate,
                    leaf.clone(),
                )
            });
        }
        if !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    fn flush_lone_leaf(&mut self) {
        if let Some(error) = self.lone_leaf.take() {
            if !self.errors.contains(&error) {
                self.errors.push(error);
            }
        }
    }
}

impl sslsocket_openssl_ext::ExDataState for ConnectionState {
    fn index() -> Option<openssl::ex_data::Index<openssl::ssl::Ssl, Arc<ConnectionState>>> {
        crate::backend::openssl::context::connection_index().ok()
    }
}

/// A server resumes a client's ticket only when this connection's policy would accept the
/// outcome recorded for that client (the rustls backend's server store asks the same
/// before resuming): otherwise the handshake is a full one and the verification, hooks and
/// pause ask again. Without a recorded outcome nothing is resumed (fail closed). Nor is a
/// session made under another server name than the hello's (RFC 6066 section 3; rustls's
/// server compares the names too): the client would go on under a name whose certificate
/// it never saw.
impl sslsocket_openssl_ext::ResumptionFilter for ConnectionState {
    fn may_resume(&self, _ssl: &SslRef, session: &SslSessionRef) -> bool {
        let Some((outcomes, _)) = self.server_outcomes.get() else {
            return false;
        };
        let Some(hello) = self.lock().hello_name.clone() else {
            return false;
        };
        if !same_server_name(
            &hello,
            sslsocket_openssl_ext::session_host_name(session).as_deref(),
        ) {
            return false;
        }
        // The record of the connection that issued the ticket (a ticket without one, from
        // before a restart of this context or made elsewhere, resumes nothing).
        let Some(key) = sslsocket_openssl_ext::session_ticket_appdata(session) else {
            return false;
        };
        let accepted = outcomes.get(&key).is_some_and(|outcome| {
            self.with_policy(|policy| policy.accepts_resumption(&outcome, !self.pins.is_empty()))
        });
        if accepted {
            // The session resumed is this one: its record is found by this key (the
            // connection's own session is replaced by each ticket it issues next).
            self.lock().resumed_key = Some(key);
        }
        accepted
    }

    fn ticket_appdata(&self) -> Option<Vec<u8>> {
        self.server_outcomes.get().map(|(_, key)| key.to_vec())
    }
}

/// Whether a hello asking for `hello` may resume a session made under `session` (no name
/// for none): the same name, compared as the server's name map compares (ASCII case
/// folded, a trailing dot dropped), or none on both sides. An unreadable name matches
/// nothing.
fn same_server_name(hello: &HelloServerName, session: Option<&[u8]>) -> bool {
    fn plain(name: &[u8]) -> &[u8] {
        name.strip_suffix(b".").unwrap_or(name)
    }
    match (hello, session) {
        (HelloServerName::Absent, None) => true,
        (HelloServerName::Name(asked), Some(made)) => {
            plain(asked).eq_ignore_ascii_case(plain(made))
        }
        _ => false,
    }
}

impl sslsocket_openssl_ext::RecordCounter for ConnectionState {
    fn records_read(&self) -> &AtomicU64 {
        &self.records_read
    }
}

impl sslsocket_openssl_ext::VerifyState for ConnectionState {
    fn verify(&self, preverify_ok: bool, ctx: &mut X509StoreContextRef) -> bool {
        self.on_verify(preverify_ok, ctx)
    }
}

impl sslsocket_openssl_ext::VerifiedState for ConnectionState {
    fn verified(&self, verified: bool, ctx: &mut X509StoreContextRef) -> bool {
        ConnectionState::verified(self, verified, ctx)
    }
}

impl ConnectionState {
    pub(crate) fn new(
        policy: VerifyPolicy,
        pins: Vec<[u8; 32]>,
        ocsp: bool,
        sessions: Option<(Arc<ClientSessions>, String)>,
        anchors: Arc<[KnownCertificate]>,
        peers: Arc<PeerParses>,
        host: Option<&str>,
    ) -> Arc<ConnectionState> {
        Arc::new(ConnectionState {
            policy: Mutex::new(policy),
            record: HandshakeRecord::default(),
            pins,
            ocsp,
            sessions: sessions.map(Box::new),
            inner: Mutex::new(Collected::default()),
            has_notices: AtomicBool::new(false),
            records_read: AtomicU64::new(0),
            anchors,
            peers,
            host: host.map(Box::from),
            server_outcomes: OnceLock::new(),
        })
    }

    /// A server connection's view of the client's hello: the server name it asks for.
    pub(crate) fn set_hello_name(&self, name: HelloServerName) {
        let slot = &mut self.lock().hello_name;
        *slot = match slot.take() {
            Some(first) if first != name => Some(HelloServerName::Unreadable),
            _ => Some(name),
        };
    }

    /// A server connection's record of accepted clients, for [`ResumptionFilter`].
    pub(crate) fn set_server_outcomes(&self, outcomes: Arc<ServerOutcomes>) {
        let key = outcomes.new_key();
        let _ = self.server_outcomes.set((outcomes, key));
    }

    /// The outcome recorded for the session a server connection resumed (see
    /// [`ResumptionFilter`]): what that session's own handshake found.
    pub(crate) fn resumed_server_outcome(&self) -> Option<Outcome> {
        let (outcomes, _) = self.server_outcomes.get()?;
        let key = self.lock().resumed_key.clone()?;
        outcomes.get(&key)
    }

    /// A server connection that resumed a session failed with a fatal alert or was
    /// refused: the record of that session goes, so its tickets resume nothing again (RFC
    /// 5246 §7.2.2; round 37: a TLS 1.2 ticket resumed by a failed connection was resumed
    /// again). Only for a connection OpenSSL did resume (see the caller).
    pub(crate) fn forget_resumed_server_session(&self) {
        let Some((outcomes, _)) = self.server_outcomes.get() else {
            return;
        };
        let key = self.lock().resumed_key.clone();
        if let Some(key) = key {
            outcomes.remove(&key);
        }
    }

    /// A server connection's record and its key there: its own handshake's outcome is
    /// recorded under the key.
    pub(crate) fn server_record(&self) -> Option<(&ServerOutcomes, &[u8])> {
        self.server_outcomes
            .get()
            .map(|(outcomes, key)| (&**outcomes, key.as_slice()))
    }

    /// `cert` as our certificate type. Each certificate is parsed once per connection:
    /// the bytes of a CA of the configuration, or of a certificate read before, give that
    /// certificate again (same bytes, same certificate). One we cannot read comes back
    /// null, with its bytes, and every decision over a chain that holds one adds an error
    /// for it (`decide_now`: fail closed, as the rustls backend's verifier does).
    pub(crate) fn certificate(&self, cert: &X509Ref) -> SslCertificate {
        read_certificate(&self.anchors, &self.peers, &mut self.lock().read, cert)
    }

    /// `certificate` of each, under one lock.
    fn certificates<'a>(&self, certs: impl Iterator<Item = &'a X509Ref>) -> Vec<SslCertificate> {
        let mut inner = self.lock();
        certs
            .map(|cert| read_certificate(&self.anchors, &self.peers, &mut inner.read, cert))
            .collect()
    }

    /// The peer's chain as it sent it: on a client, as OpenSSL already stored it; on a
    /// server, the verification context's untrusted certificates (the client's chain as
    /// received; round 35: a refused client's chain was reported as OpenSSL built it,
    /// with a trust anchor the client never sent).
    fn sent_chain(&self, ctx: &X509StoreContextRef) -> Option<Vec<SslCertificate>> {
        let index = X509StoreContext::ssl_idx().ok()?;
        let ssl = ctx.ex_data(index)?;
        let chain = if ssl.is_server() {
            self.certificates(sslsocket_openssl_ext::sent_certificates(ctx)?.iter())
        } else {
            self.certificates(ssl.peer_cert_chain()?.iter())
        };
        (!chain.is_empty()).then_some(chain)
    }

    fn lock(&self) -> MutexGuard<'_, Collected> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The handshake's policy.
    pub(crate) fn policy(&self) -> VerifyPolicy {
        self.with_policy(VerifyPolicy::clone)
    }

    /// `f` of the handshake's policy, without a copy of it (for what calls no hook: a hook
    /// runs on a copy, outside the lock).
    fn with_policy<T>(&self, f: impl FnOnce(&VerifyPolicy) -> T) -> T {
        match self.policy.lock() {
            Ok(guard) => f(&guard),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Whether the policy accepts a resumed handshake of a session that ended in
    /// `outcome` (see [`accepts_offer`]).
    pub(crate) fn accepts_offer(&self, outcome: &Outcome) -> bool {
        self.with_policy(|policy| accepts_offer(policy, outcome))
    }

    /// Replaces the handshake's policy (the application changed it before the decision).
    pub(crate) fn set_policy(&self, policy: VerifyPolicy) {
        let offer_accepted = self
            .record
            .offered()
            .is_some_and(|o| accepts_offer(&policy, &o));
        match self.policy.lock() {
            Ok(mut guard) => *guard = policy,
            Err(poisoned) => *poisoned.into_inner() = policy,
        }
        self.lock().offer_accepted = offer_accepted;
    }

    /// A stored session was offered on this connection, with its original outcome, which
    /// the policy accepts ([`accepts_offer`](Self::accepts_offer), asked just before).
    pub(crate) fn offered(&self, outcome: Outcome) {
        self.record.set_offered(outcome);
        self.lock().offer_accepted = true;
    }

    /// The connection's verification results.
    pub(crate) fn record(&self) -> &HandshakeRecord {
        &self.record
    }

    /// The socket's hooks, if it has any.
    pub(crate) fn hooks(&self) -> Option<Arc<dyn SslHooks>> {
        self.with_policy(|policy| policy.hooks().cloned())
    }

    /// One call of OpenSSL's verify callback: an error is listed on its certificate, and
    /// verification goes on, so that every check gets its say; the decision is taken once
    /// it is over ([`verified`](Self::verified)).
    pub(crate) fn on_verify(&self, preverify_ok: bool, ctx: &mut X509StoreContextRef) -> bool {
        let mut inner = self.lock();
        inner.started = true;
        if !preverify_ok {
            let result = ctx.error();
            let error = match ctx.current_cert() {
                Some(cert) => SslError::with_certificate(
                    error_kind(result.as_raw()),
                    read_certificate(&self.anchors, &self.peers, &mut inner.read, cert),
                ),
                None => SslError::new(error_kind(result.as_raw())),
            };
            inner.codes.push((error.clone(), result));
            inner.record(error, ctx.error_depth());
        } else if ctx.error_depth() == 0 && inner.late_from.is_none() {
            // The leaf's success call ends OpenSSL's per-certificate checks.
            inner.flush_lone_leaf();
            inner.late_from = Some(inner.errors.len());
        }
        true
    }

    /// OpenSSL's verification of the chain is over (`X509_verify_cert` returned
    /// `verified`): the one decision, on every error it found and ours. (Before round 36
    /// it was taken at the last per-certificate call, which comes before OpenSSL checks
    /// name constraints and RFC 3779 resources: an error found then made it decide again,
    /// asking the application twice, and one on a path with resources was passed over.)
    pub(crate) fn verified(&self, verified: bool, ctx: &mut X509StoreContextRef) -> bool {
        let mut inner = self.lock();
        if inner.decided {
            return !inner.refused;
        }
        inner.started = true;
        if !verified {
            // OpenSSL stopped without the callback's say (an internal error), maybe before
            // its later checks ran: fail closed, with an error of its own, whatever it
            // reported before.
            let result = ctx.error();
            let error = match ctx.current_cert() {
                Some(cert) => SslError::with_certificate(
                    SslErrorKind::UnspecifiedError,
                    read_certificate(&self.anchors, &self.peers, &mut inner.read, cert),
                ),
                None => SslError::new(SslErrorKind::UnspecifiedError),
            };
            inner.codes.push((error.clone(), result));
            inner.record(error, 0);
        }
        inner.flush_lone_leaf();
        let errors = inner.errors.clone();
        drop(inner);

        let built: Vec<SslCertificate> = ctx
            .chain()
            .map(|chain| self.certificates(chain.iter()))
            .unwrap_or_default();
        // The chain as the peer sent it is known to the client now; the server learns it
        // only after the callback (the session patches it in, see `publish_sent_chain`).
        let sent = self.sent_chain(ctx).unwrap_or_else(|| built.clone());
        if self.ocsp {
            // The staple may not have arrived yet: the status callback decides.
            self.lock().pending = Some(Box::new((sent, built)));
            return true;
        }
        let judgement = self.decide_now(errors, sent, &built, None);
        if judgement.decision == Decision::Refuse {
            // The alert fits the first error; a peer refused for its pins is the
            // application's refusal (`X509_V_ERR_APPLICATION_VERIFICATION`), whatever else
            // was found.
            let result = match judgement.pin_mismatch {
                Some(_) => Some(X509VerifyResult::APPLICATION_VERIFICATION),
                None => self.lock().refusal_code,
            };
            ctx.set_error(result.unwrap_or(X509VerifyResult::APPLICATION_VERIFICATION));
            return false;
        }
        true
    }

    /// The client's status callback: the stapled response (if any) is checked and the
    /// decision taken, with the OCSP errors beside the chain's, as the rustls backend does.
    /// True unless the peer is refused (accepted, or paused on for the application).
    pub(crate) fn on_status(&self, ssl: &SslRef) -> bool {
        if !self.ocsp || ssl.session_reused() {
            // A resumed session reports its original outcome; nothing was sent to check.
            return true;
        }
        let mut inner = self.lock();
        if inner.decided {
            return !inner.refused;
        }
        let errors = inner.errors.clone();
        // Taken: the decision below is the last use of the chains.
        let pending = inner.pending.take();
        drop(inner);
        let (sent, built) = pending.map(|pending| *pending).unwrap_or_else(|| {
            let sent: Vec<SslCertificate> = ssl
                .peer_cert_chain()
                .map(|chain| self.certificates(chain.iter()))
                .unwrap_or_default();
            (sent.clone(), sent)
        });
        let staple = ssl.ocsp_status().unwrap_or_default();
        // A pause goes on as from the verify callback: the record holds the judgement and
        // the core withholds our flight until the application's word (only a refusal
        // ends the handshake here).
        self.decide_now(errors, sent, &built, Some(staple)).decision != Decision::Refuse
    }

    /// Adds the OCSP and pinning errors and decides (the one call to the policy).
    fn decide_now(
        &self,
        mut errors: Vec<SslError>,
        sent: Vec<SslCertificate>,
        built: &[SslCertificate],
        staple: Option<&[u8]>,
    ) -> Judgement {
        let now = now_unix();
        // OpenSSL's own errors: those of its per-certificate checks, then its later ones.
        let reported = errors.len();
        let late_from = self.lock().late_from.unwrap_or(reported).min(reported);
        // Qt's blocklist, on the chain as sent and the path OpenSSL built (round 35).
        for error in crate::verify::blocklist::errors(sent.iter().chain(built)) {
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        // Fail closed: a certificate we could not read is an error of its own, never
        // passed over (OpenSSL may accept bytes our parser refuses).
        for cert in sent.iter().chain(built).filter(|c| c.is_null()) {
            let error = SslError::with_certificate(SslErrorKind::UnspecifiedError, cert.clone());
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        // Our extension rules beside OpenSSL's (fail closed: a certificate we cannot read
        // with confidence is refused on both backends alike).
        let checks = path_checks(&self.peers, built, now);
        for error in checks
            .errors
            .into_iter()
            .chain(sent_extension_errors(&self.peers, &sent))
        {
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        // OpenSSL's later errors after ours, where its extension checks would have put ours
        // (the order the rustls backend lists them in).
        let late: Vec<SslError> = errors.drain(late_from..reported).collect();
        errors.extend(late);
        // Our name rules beside OpenSSL's: name constraints (OpenSSL skips a common name
        // of one label, `localhost`, which its host check then matches) and the host name
        // by the contract's rule (RFC 6125: the common name only without any subject
        // alternative name; OpenSSL consults it whenever no DNS name is present).
        for error in name_errors(&self.peers, built, self.host.as_deref()) {
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        // The stapled response last, against every error of the chain, ours included, as
        // the rustls backend checks it (round 37: checked against OpenSSL's alone, a
        // response signed by an issuer only our rules refuse was trusted, and ignoring
        // that issuer's error accepted it).
        let mut ocsp_responses = Vec::new();
        if let Some(staple) = staple {
            let (responses, ocsp_errors) =
                staple_errors(&sent, built, &errors, |_| None, staple, now);
            for error in ocsp_errors {
                if !errors.contains(&error) {
                    errors.push(error);
                }
            }
            ocsp_responses = responses;
        }
        let pin_mismatch = pin_error(&self.pins, built, sent.first());
        errors.extend(pin_mismatch.clone());
        order_like_rustls(&mut errors, pin_mismatch.as_ref());
        let judgement = self.policy().judge_pinned(&errors, pin_mismatch);
        // A refusal's alert is the first listed error's: OpenSSL's code for it; for one of
        // our rules', the code OpenSSL would have given that kind (a host name only our
        // rule refuses is bad_certificate, as on rustls), else the application's refusal.
        let refusal_code = errors.first().and_then(|first| {
            self.lock()
                .codes
                .iter()
                .find(|(error, _)| error == first)
                .map(|(_, code)| *code)
                .or_else(|| code_of(first.error()).and_then(sslsocket_openssl_ext::verify_result))
        });
        self.record.record(Verification {
            errors,
            chain: sent,
            ocsp_responses,
            judgement: judgement.clone(),
            // The earliest expiry of what was verified (the built path, anchor included).
            valid_until: checks.valid_until,
        });
        let mut inner = self.lock();
        inner.decided = true;
        inner.refusal_code = refusal_code;
        inner.refused = judgement.decision == Decision::Refuse;
        inner.proceeded = judgement.decision == Decision::Proceed;
        judgement
    }

    /// The chain as sent, known to the server only after the callback ran.
    pub(crate) fn publish_chain(&self, chain: Vec<SslCertificate>) {
        // The verification may already have been handed out; a later one carries the
        // chain. Only a recorded, untaken verification is patched.
        self.record.patch_chain(chain);
    }

    /// Decides after the handshake when OpenSSL ended verification without the final
    /// success call (fail closed: a chain is never accepted undecided). True when accepted.
    /// `chain`: the chain as sent, asked for only when a decision is still to be made.
    pub(crate) fn decide_late(
        &self,
        chain: impl FnOnce() -> Vec<SslCertificate>,
        staple: Option<&[u8]>,
    ) -> bool {
        let inner = self.lock();
        if inner.decided || !inner.started {
            return !inner.refused;
        }
        let errors = inner.errors.clone();
        let built = inner
            .pending
            .as_ref()
            .map(|pending| pending.1.clone())
            .unwrap_or_default();
        drop(inner);
        // With stapling asked for, a missing staple is still an error here (fail closed).
        let staple = self.ocsp.then(|| staple.unwrap_or_default());
        self.decide_now(errors, chain(), &built, staple).decision == Decision::Proceed
    }

    /// A client that asked for a stapled response and was authenticated by an external
    /// pre-shared key instead (TLS 1.3, which OpenSSL reports as a reused session, so
    /// neither the status callback nor the late decision ran): judged as over TLS 1.2,
    /// where the status callback finds no response. Strict OCSP stays strict: a PSK peer
    /// has no certificate whose status a response could vouch for, so it is accepted only
    /// if the application ignores `OcspNoResponseFound`. True unless refused.
    pub(crate) fn decide_external_psk(&self, staple: Option<&[u8]>) -> bool {
        if !self.ocsp {
            return true;
        }
        let inner = self.lock();
        if inner.decided {
            return !inner.refused;
        }
        drop(inner);
        let staple = staple.unwrap_or_default();
        self.decide_now(Vec::new(), Vec::new(), &[], Some(staple))
            .decision
            != Decision::Refuse
    }

    /// The bytes of the records OpenSSL has processed so far.
    pub(crate) fn records_read(&self) -> u64 {
        self.records_read.load(Ordering::Relaxed)
    }

    /// Sets the count of record bytes read to `delivered` (when OpenSSL holds no input:
    /// every byte delivered was a record it read).
    pub(crate) fn restart_records_read(&self, delivered: u64) {
        self.records_read.store(delivered, Ordering::Relaxed);
    }

    /// Whether the callback ran and reached a decision.
    pub(crate) fn decided(&self) -> bool {
        self.lock().decided
    }

    /// Whether what the handshake writes now may go out at once, nothing the application
    /// decides later being able to withhold it: once the peer's certificate is verified,
    /// if it was accepted outright; before any verification (a resumed handshake verifies
    /// nothing), if the session offered is one the policy accepts, which is the core's
    /// whole judgement of a resumed handshake ([`accepts_offer`]).
    pub(crate) fn sends_through(&self) -> bool {
        let inner = self.lock();
        if inner.decided {
            inner.proceeded
        } else {
            inner.offer_accepted && !inner.psk_supplied
        }
    }

    /// The PSK hook supplied a key for this server connection's client: OpenSSL tries a
    /// hello's PSK identities in order and stops at the first it can use, so a ticket the
    /// filter approved for an earlier identity (then skipped: its suite's hash differs)
    /// is not what this connection resumes. Its key is dropped, or the external PSK's
    /// connection would be judged as that ticket's client and its failure would forget
    /// that client's session (round 37, L3).
    pub(crate) fn external_psk_offered(&self) {
        self.lock().resumed_key = None;
    }

    /// The PSK hook supplied a key for this (client) connection.
    pub(crate) fn psk_supplied(&self) {
        self.lock().psk_supplied = true;
    }

    /// Whether the configuration pins keys: only a certificate can satisfy that.
    pub(crate) fn has_pins(&self) -> bool {
        !self.pins.is_empty()
    }

    /// An alert or ticket, for the session to report.
    pub(crate) fn push_notice(&self, notice: BackendNotice) {
        self.lock().notices.push_back(notice);
        self.has_notices.store(true, Ordering::Release);
    }

    /// The oldest alert or ticket not handed out yet. The queue's buffer is freed once it
    /// is drained (an idle connection holds none).
    pub(crate) fn next_notice(&self) -> Option<BackendNotice> {
        if !self.has_notices.load(Ordering::Acquire) {
            return None;
        }
        let mut inner = self.lock();
        let notice = inner.notices.pop_front();
        if inner.notices.is_empty() {
            inner.notices = VecDeque::new();
            self.has_notices.store(false, Ordering::Release);
        }
        notice
    }

    /// A session (ticket) arrived on a client: kept (for export, and in the context's
    /// store for resumption) only when the application accepted the peer, now or
    /// originally for a resumed connection; never for a refused or paused peer (the rule
    /// of the rustls backend's store).
    pub(crate) fn offer_session(&self, ssl: &SslRef, session: SslSession) {
        let confirmation = self.record.confirmation();
        if matches!(confirmation, Confirmation::Refused) {
            return;
        }
        // Tagged now, while it is the connection's own session (the new-session callback's
        // argument): `ContextSession::new` tags nothing else (round 37).
        let tagged = self
            .sessions
            .is_some()
            .then(|| ContextSession::new(ssl, session.clone()))
            .flatten();
        match confirmation {
            Confirmation::Accepted(outcome) => self.keep_session(session, tagged, outcome),
            Confirmation::Pending => {
                self.lock().held = Some((session, tagged));
            }
            Confirmation::Refused => {}
        }
    }

    fn keep_session(&self, session: SslSession, tagged: Option<ContextSession>, outcome: Outcome) {
        // A peer that showed no certificate was authenticated by this socket's pre-shared
        // key (its hook): its sessions stay out of the configuration's store, where a
        // socket without the key (another configuration user, another policy) could
        // resume them and be encrypted with nobody verified.
        let certified = !outcome.chain.is_empty();
        if let Some((store, peer)) = self.sessions.as_deref().filter(|_| certified) {
            if let Some(tagged) = tagged {
                store.store(peer, tagged, outcome);
            }
        }
        let mut inner = self.lock();
        inner.session = Some(session);
        inner.notices.push_back(BackendNotice::NewSessionTicket);
        self.has_notices.store(true, Ordering::Release);
    }

    /// The application's word on the peer: a held session is kept (accepted) or dropped
    /// with every session of this peer (refused).
    pub(crate) fn confirm(&self, outcome: Option<Outcome>) {
        self.record.confirm(outcome.clone());
        let held = self.lock().held.take();
        match outcome {
            Some(outcome) => {
                if let Some((session, tagged)) = held {
                    self.keep_session(session, tagged, outcome);
                }
            }
            None => self.forget_session(),
        }
    }

    /// The stored session, DER-encoded.
    pub(crate) fn session_der(&self) -> Option<Vec<u8>> {
        self.lock().session.as_ref().and_then(|s| s.to_der().ok())
    }

    /// Forgets the stored session (the application rejected the peer afterwards).
    pub(crate) fn forget_session(&self) {
        self.lock().session = None;
        if let Some((store, peer)) = self.sessions.as_deref() {
            store.purge(peer);
        }
    }
}

/// `cert` read, or the one of `anchors` or `read` that is that object or has its bytes
/// (see [`ConnectionState::certificate`]), or found with its parse in `peers`.
fn read_certificate(
    anchors: &[KnownCertificate],
    peers: &PeerParses,
    read: &mut Vec<KnownCertificate>,
    cert: &X509Ref,
) -> SslCertificate {
    let mut known = anchors.iter().chain(read.iter());
    if let Some(same) = known.find(|k| std::ptr::eq::<X509Ref>(k.x509.as_ref(), cert)) {
        return same.cert.clone();
    }
    let Ok(der) = cert.to_der() else {
        return SslCertificate::from_unparsed_der(&[]);
    };
    let certificate = match anchors
        .iter()
        .chain(read.iter())
        .find(|k| k.cert.der() == der)
    {
        Some(same_bytes) => same_bytes.cert.clone(),
        None => peers.certificate(&der),
    };
    if read.len() < READ_KEPT {
        read.push(KnownCertificate {
            x509: cert.to_owned(),
            cert: certificate.clone(),
        });
    }
    certificate
}

/// The rustls backend lists the chain's errors, then the name check, then the stapled
/// response's errors, then a pin mismatch; the same order here keeps the lists of both
/// backends equal (a stable sort: each group keeps its own order).
fn order_like_rustls(errors: &mut [SslError], pin_mismatch: Option<&SslError>) {
    use SslErrorKind::*;
    errors.sort_by_key(|e| match e.error() {
        _ if Some(e) == pin_mismatch => 3,
        HostNameMismatch => 1,
        kind if kind.is_staple_status() => 2,
        _ => 0,
    });
}

/// Qt's mapping of OpenSSL's `X509_V_ERR_*` codes (`_q_OpenSSL_to_QSslError`, by symbol:
/// OpenSSL 3 renumbered `X509_V_ERR_INVALID_CA` from 24 to 79), plus the host and IP
/// checks OpenSSL does itself here (Qt checks the name on its own).
pub(crate) fn error_kind(code: i32) -> SslErrorKind {
    use SslErrorKind::*;
    match code {
        2 => UnableToGetIssuerCertificate,
        4 => UnableToDecryptCertificateSignature,
        6 => UnableToDecodeIssuerPublicKey,
        7 => CertificateSignatureFailed,
        9 => CertificateNotYetValid,
        10 => CertificateExpired,
        13 => InvalidNotBeforeField,
        14 => InvalidNotAfterField,
        18 => SelfSignedCertificate,
        19 => SelfSignedCertificateInChain,
        20 => UnableToGetLocalIssuerCertificate,
        21 => UnableToVerifyFirstCertificate,
        23 => CertificateRevoked,
        24 if openssl::version::number() < 0x3000_0000 => InvalidCaCertificate,
        79 => InvalidCaCertificate,
        25 => PathLengthExceeded,
        26 => InvalidPurpose,
        27 => CertificateUntrusted,
        28 => CertificateRejected,
        // X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        62 | 64 => HostNameMismatch,
        _ => UnspecifiedError,
    }
}

/// The `X509_V_ERR_*` code [`error_kind`] maps to `kind` (its first, where several do);
/// `None` for `UnspecifiedError` and the kinds no OpenSSL code gives.
pub(crate) fn code_of(kind: SslErrorKind) -> Option<i32> {
    if kind == SslErrorKind::UnspecifiedError {
        return None;
    }
    sslsocket_openssl_ext::KNOWN_VERIFY_CODES
        .into_iter()
        .find(|&code| error_kind(code) == kind)
}

/// How the peer name is checked: a DNS name or an IP address.
pub(crate) enum PeerName<'a> {
    Dns(&'a str),
    Ip(IpAddr),
}

impl<'a> PeerName<'a> {
    pub(crate) fn parse(name: &'a str) -> PeerName<'a> {
        let bare = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        match bare.parse::<IpAddr>() {
            Ok(ip) => PeerName::Ip(ip),
            Err(_) => PeerName::Dns(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_codes_map_to_qt_kinds() {
        assert_eq!(error_kind(18), SslErrorKind::SelfSignedCertificate);
        assert_eq!(error_kind(10), SslErrorKind::CertificateExpired);
        assert_eq!(error_kind(62), SslErrorKind::HostNameMismatch);
        assert_eq!(error_kind(22), SslErrorKind::UnspecifiedError);
    }

    #[test]
    fn each_kind_openssl_gives_has_its_code_back() {
        for code in 0..100 {
            let kind = error_kind(code);
            match code_of(kind) {
                Some(back) => assert_eq!(error_kind(back), kind, "code {code}"),
                None => assert_eq!(kind, SslErrorKind::UnspecifiedError, "code {code}"),
            }
        }
        assert_eq!(code_of(SslErrorKind::HostNameMismatch), Some(62));
        assert_eq!(code_of(SslErrorKind::UnspecifiedError), None);
        assert_eq!(code_of(SslErrorKind::NoPeerCertificate), None);
    }

    fn state(anchors: Vec<SslCertificate>) -> Arc<ConnectionState> {
        let known: Vec<KnownCertificate> = anchors
            .into_iter()
            .filter_map(|cert| {
                let x509 = openssl::x509::X509::from_der(cert.der()).ok()?;
                Some(KnownCertificate { x509, cert })
            })
            .collect();
        ConnectionState::new(
            VerifyPolicy::default(),
            Vec::new(),
            false,
            None,
            known.into(),
            Arc::default(),
            None,
        )
    }

    fn self_signed(name: &str) -> Result<SslCertificate, Box<dyn std::error::Error>> {
        let issued = rcgen::generate_simple_self_signed(vec![name.to_string()])?;
        Ok(SslCertificate::from_der(issued.cert.der())?)
    }

    #[test]
    fn a_chain_with_a_certificate_we_cannot_read_is_refused_with_an_error_on_it(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let leaf = self_signed("localhost")?;
        let unreadable = SslCertificate::from_unparsed_der(b"\x30\x03\x02\x01\x01");
        for (sent, built) in [
            (vec![leaf.clone(), unreadable.clone()], vec![leaf.clone()]),
            (vec![unreadable.clone()], vec![]),
            (vec![leaf.clone()], vec![leaf.clone(), unreadable.clone()]),
        ] {
            let state = state(Vec::new());
            // No error from OpenSSL: only the unreadable certificate can refuse it.
            let judgement = state.decide_now(Vec::new(), sent, &built, None);
            assert_eq!(judgement.decision, Decision::Refuse);
            let verification = state.record().take().ok_or("no verification recorded")?;
            let expected =
                SslError::with_certificate(SslErrorKind::UnspecifiedError, unreadable.clone());
            assert_eq!(verification.errors, vec![expected]);
        }
        // The same chain, readable, is accepted.
        let state = state(Vec::new());
        assert_eq!(
            state
                .decide_now(Vec::new(), vec![leaf.clone()], &[leaf], None)
                .decision,
            Decision::Proceed
        );
        Ok(())
    }

    #[test]
    fn each_certificate_is_read_once_per_connection_and_a_configured_ca_not_at_all(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let ca = self_signed("ca.example")?;
        let leaf = self_signed("localhost")?;
        let state = state(vec![ca.clone()]);
        let leaf_x509 = openssl::x509::X509::from_der(leaf.der())?;
        let first = state.certificate(&leaf_x509);
        let again = state.certificate(&leaf_x509);
        assert_eq!(first, leaf);
        assert!(!first.is_null());
        assert_eq!(first.der().as_ptr(), again.der().as_ptr(), "read once");
        let ca_x509 = openssl::x509::X509::from_der(ca.der())?;
        assert_eq!(
            state.certificate(&ca_x509).der().as_ptr(),
            ca.der().as_ptr()
        );
        // Another connection reads it again.
        let other = state_read(&leaf_x509);
        assert_ne!(other.der().as_ptr(), first.der().as_ptr());
        assert_eq!(other, leaf);
        Ok(())
    }

    #[test]
    fn a_certificate_object_its_owner_freed_is_never_taken_for_the_next_one(
    ) -> Result<(), Box<dyn std::error::Error>> {
        // Certificates are known by object address only while the connection holds a
        // reference on the object: a freed one's address may come back for another.
        let a = self_signed("a.example")?;
        let b = self_signed("b.example")?;
        let state = state(Vec::new());
        for round in 0..(2 * READ_KEPT) {
            let x509 = openssl::x509::X509::from_der(a.der())?;
            assert_eq!(state.certificate(&x509), a, "round {round}");
            drop(x509);
            let x509 = openssl::x509::X509::from_der(b.der())?;
            assert_eq!(state.certificate(&x509), b, "round {round}");
        }
        Ok(())
    }

    fn state_read(cert: &X509Ref) -> SslCertificate {
        state(Vec::new()).certificate(cert)
    }

    #[test]
    fn peer_names_are_told_apart() {
        assert!(matches!(PeerName::parse("127.0.0.1"), PeerName::Ip(_)));
        assert!(matches!(PeerName::parse("[::1]"), PeerName::Ip(_)));
        assert!(matches!(PeerName::parse("localhost"), PeerName::Dns(_)));
    }
}
