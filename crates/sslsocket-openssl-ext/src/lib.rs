//! Safe wrappers for the few OpenSSL calls sslsocket's OpenSSL backend needs and the
//! `openssl` crate does not offer safely, so that `sslsocket` itself keeps
//! `#![forbid(unsafe_code)]`:
//!
//! - `SSL_CTX_set_info_callback` as [`set_info_callback`] (and, for alerts only, as
//!   [`set_alert_callback`]), where alerts (sent and received, warnings included) are
//!   seen;
//! - `SSL_set_session` as [`set_session`], to offer a stored session again. The `openssl`
//!   crate's `SslRef::set_session` is `unsafe` because the session must come from the same
//!   `SslContext`; here that is checked: only a [`ContextSession`] (a session tagged with
//!   the context that made it, see [`tag_context`]) can be set, and only on a connection of
//!   that context;
//! - `SSL_CTX_use_psk_identity_hint` as [`set_psk_identity_hint`];
//! - `SSL_CTX_set_dh_auto` (a macro over `SSL_CTX_ctrl`) as [`set_dh_auto`];
//! - a [`TlsStream`]: an `Ssl` whose BIO (one method table for every connection) reads
//!   from and writes to a [`Transport`], which reads from the caller's socket, lent for
//!   one call ([`with_reader`]), so OpenSSL reads records straight from the socket into its
//!   own buffer, and writes to the caller's socket, lent for one call ([`with_writer`]);
//!   [`TlsStream::read_into`] decrypts into a `Vec`'s spare capacity;
//! - `SSL_set_msg_callback` as [`count_records_read`], counting the record bytes OpenSSL
//!   processed (with [`Transport::delivered`]: whether it holds unprocessed input);
//! - `SSL_client_hello_get0_ext` (server name only) as [`client_hello_server_name`] and
//!   `SSL_SESSION_get0_hostname` as [`session_host_name`], so that a server resumes a
//!   session only under the name it was made for;
//! - `SSL_set_verify` with a callback that finds its state in the connection's ex data
//!   ([`set_verify_from_ex_data`]), so a connection needs no boxed closure of its own.
//!
//! Every function is safe to call with any arguments. Each `unsafe` block says why it is
//! sound in its `// SAFETY:` comment.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

use std::ffi::{c_char, c_int, CStr};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslRef, SslSession, SslSessionRef, SslVerifyMode,
};
use openssl::stack::StackRef;
use openssl::x509::{X509Ref, X509StoreContext, X509StoreContextRef, X509VerifyResult, X509};

/// `SSL_CB_READ`: the info callback's `where` has this bit for something read.
pub const SSL_CB_READ: i32 = 0x04;
/// `SSL_CB_WRITE`: the info callback's `where` has this bit for something written.
pub const SSL_CB_WRITE: i32 = 0x08;
/// `SSL_CB_ALERT`: the info callback's `where` has this bit for an alert.
pub const SSL_CB_ALERT: i32 = 0x4000;

mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    // Part of libssl since 0.9.8 / 1.0.0; `openssl-sys` (which links libssl) does not
    // declare them.
    extern "C" {
        pub(crate) fn SSL_CTX_set_info_callback(
            ctx: *mut openssl_sys::SSL_CTX,
            cb: Option<unsafe extern "C" fn(*const openssl_sys::SSL, c_int, c_int)>,
        );
        pub(crate) fn SSL_CTX_use_psk_identity_hint(
            ctx: *mut openssl_sys::SSL_CTX,
            hint: *const c_char,
        ) -> c_int;
        // Since 1.1.0.
        pub(crate) fn SSL_has_pending(ssl: *const openssl_sys::SSL) -> c_int;
        pub(crate) fn SSL_SESSION_get0_peer(
            session: *mut openssl_sys::SSL_SESSION,
        ) -> *mut openssl_sys::X509;
        // Since 1.1.1.
        pub(crate) fn SSL_SESSION_get0_hostname(
            session: *const openssl_sys::SSL_SESSION,
        ) -> *const c_char;
        pub(crate) fn SSL_CTX_set_session_ticket_cb(
            ctx: *mut openssl_sys::SSL_CTX,
            gen_cb: Option<unsafe extern "C" fn(*mut openssl_sys::SSL, *mut c_void) -> c_int>,
            dec_cb: Option<
                unsafe extern "C" fn(
                    *mut openssl_sys::SSL,
                    *mut openssl_sys::SSL_SESSION,
                    *const u8,
                    usize,
                    c_int,
                    *mut c_void,
                ) -> c_int,
            >,
            arg: *mut c_void,
        ) -> c_int;
        // Since 1.1.1.
        pub(crate) fn SSL_SESSION_set1_ticket_appdata(
            session: *mut openssl_sys::SSL_SESSION,
            data: *const c_void,
            len: usize,
        ) -> c_int;
        pub(crate) fn SSL_SESSION_get0_ticket_appdata(
            session: *mut openssl_sys::SSL_SESSION,
            data: *mut *mut c_void,
            len: *mut usize,
        ) -> c_int;
        // Since 1.1.0.
        pub(crate) fn X509_STORE_CTX_get0_untrusted(
            ctx: *mut openssl_sys::X509_STORE_CTX,
        ) -> *mut openssl_sys::stack_st_X509;
        pub(crate) fn SSL_set_msg_callback(
            ssl: *mut openssl_sys::SSL,
            cb: Option<
                unsafe extern "C" fn(
                    c_int,
                    c_int,
                    c_int,
                    *const std::ffi::c_void,
                    usize,
                    *mut openssl_sys::SSL,
                    *mut std::ffi::c_void,
                ),
            >,
        );
    }
}

/// The certificates the peer sent, leaf first, as the verification context holds them
/// (`X509_STORE_CTX_get0_untrusted`: libssl hands the whole received chain in): on a
/// server the client's chain as sent, which OpenSSL keeps nowhere once it refused it.
/// `None` when the context holds none.
pub fn sent_certificates(ctx: &X509StoreContextRef) -> Option<&StackRef<X509>> {
    // SAFETY: `ctx` is a live X509_STORE_CTX; the stack it returns, if any, is owned by
    // the context and lives as long as it, which the returned borrow of `ctx` ensures.
    unsafe {
        let stack = ffi::X509_STORE_CTX_get0_untrusted(ctx.as_ptr());
        (!stack.is_null()).then(|| StackRef::<X509>::from_ptr(stack))
    }
}

/// The boxed info callback, as kept in the context's ex data.
type InfoCallback = Box<dyn Fn(&SslRef, i32, i32) + Send + Sync>;

/// Calls `f(ssl, where, ret)` for every state change, alert and handshake event of the
/// context's connections (`SSL_CTX_set_info_callback`). For an alert (`where &
/// SSL_CB_ALERT`), `where & SSL_CB_READ` means received and `SSL_CB_WRITE` sent; `ret >> 8`
/// is the level (1 warning, 2 fatal) and `ret & 0xff` the description.
///
/// The closure lives in the context's ex data (as the `openssl` crate keeps its own
/// callbacks) and is dropped with the context. Calling this again replaces it.
pub fn set_info_callback<F>(ctx: &mut SslContextBuilder, f: F) -> Result<(), ErrorStack>
where
    F: Fn(&SslRef, i32, i32) + Send + Sync + 'static,
{
    set_filtered_info_callback::<{ !0 }, F>(ctx, f)
}

/// [`set_info_callback`] for alerts only (`where & SSL_CB_ALERT`): OpenSSL calls the info
/// callback at every state change, some fifty times per handshake, and those calls return
/// before looking anything up. Replaces the context's info callback, and is replaced by it.
pub fn set_alert_callback<F>(ctx: &mut SslContextBuilder, f: F) -> Result<(), ErrorStack>
where
    F: Fn(&SslRef, i32, i32) + Send + Sync + 'static,
{
    set_filtered_info_callback::<SSL_CB_ALERT, F>(ctx, f)
}

/// The info callback for the events whose `where` has a bit of `MASK`.
fn set_filtered_info_callback<const MASK: i32, F>(
    ctx: &mut SslContextBuilder,
    f: F,
) -> Result<(), ErrorStack>
where
    F: Fn(&SslRef, i32, i32) + Send + Sync + 'static,
{
    let index = info_index()?;
    let callback: InfoCallback = Box::new(f);
    ctx.set_ex_data(index, callback);
    // SAFETY: `ctx.as_ptr()` is the live SSL_CTX the builder owns; the trampoline matches
    // the C signature `void (*)(const SSL *, int, int)` and only reads ex data.
    unsafe { ffi::SSL_CTX_set_info_callback(ctx.as_ptr(), Some(info_trampoline::<MASK>)) };
    Ok(())
}

fn info_index() -> Result<Index<SslContext, InfoCallback>, ErrorStack> {
    static INDEX: OnceLock<Index<SslContext, InfoCallback>> = OnceLock::new();
    if let Some(index) = INDEX.get() {
        return Ok(*index);
    }
    let index = SslContext::new_ex_index()?;
    Ok(*INDEX.get_or_init(|| index))
}

unsafe extern "C" fn info_trampoline<const MASK: i32>(
    ssl: *const openssl_sys::SSL,
    where_: c_int,
    ret: c_int,
) {
    if where_ & MASK == 0 || ssl.is_null() {
        return;
    }
    // SAFETY: OpenSSL calls the info callback with the connection it reports on, alive for
    // the duration of the call; we only take a shared reference for that duration.
    let ssl = unsafe { SslRef::from_ptr(ssl.cast_mut()) };
    let Ok(index) = info_index() else { return };
    // The connection's context may have been switched (SSL_set_SSL_CTX) to one without
    // our callback: then there is nothing to call.
    if let Some(callback) = ssl.ssl_context().ex_data(index) {
        // A panic must not unwind into OpenSSL (the process would abort): the closure's
        // panic ends its call, and the connection goes on (round 37).
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            callback(ssl, where_, ret);
        }));
    }
}

/// The identity [`tag_context`] gives a context: unique for the process's lifetime, never
/// reused (unlike an address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ContextId(u64);

fn context_id_index() -> Result<Index<SslContext, ContextId>, ErrorStack> {
    static INDEX: OnceLock<Index<SslContext, ContextId>> = OnceLock::new();
    if let Some(index) = INDEX.get() {
        return Ok(*index);
    }
    let index = SslContext::new_ex_index()?;
    Ok(*INDEX.get_or_init(|| index))
}

/// Gives the context being built an identity of its own, so its sessions can be set on its
/// connections with [`set_session`].
pub fn tag_context(ctx: &mut SslContextBuilder) -> Result<(), ErrorStack> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = ContextId(NEXT.fetch_add(1, Ordering::Relaxed));
    ctx.set_ex_data(context_id_index()?, id);
    Ok(())
}

fn context_of(ssl: &SslRef) -> Option<ContextId> {
    let index = context_id_index().ok()?;
    ssl.ssl_context().ex_data(index).copied()
}

/// A session with the identity of the context whose connection received it.
pub struct ContextSession {
    session: SslSession,
    context: ContextId,
}

impl ContextSession {
    /// The session `ssl` received (typically in the context's new-session callback),
    /// tagged with `ssl`'s context; `None` when that context was not [`tag_context`]ed, or
    /// when `session` is not `ssl`'s own session (`SSL_get_session`) at the time of the
    /// call: any other session could be of another context (round 37).
    pub fn new(ssl: &SslRef, session: SslSession) -> Option<ContextSession> {
        let own = ssl.session()?;
        if own.as_ptr() != session.as_ptr() {
            return None;
        }
        Some(ContextSession {
            context: context_of(ssl)?,
            session,
        })
    }

    /// The session.
    pub fn session(&self) -> &SslSessionRef {
        &self.session
    }
}

impl fmt::Debug for ContextSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextSession")
            .field("context", &self.context.0)
            .finish_non_exhaustive()
    }
}

/// Why [`set_session`] did not set the session.
#[derive(Debug)]
pub enum SetSessionError {
    /// The session belongs to another context than the connection's.
    OtherContext,
    /// OpenSSL refused it.
    Openssl(ErrorStack),
}

impl fmt::Display for SetSessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetSessionError::OtherContext => {
                f.write_str("the session belongs to another SSL context")
            }
            SetSessionError::Openssl(e) => write!(f, "setting the session: {e}"),
        }
    }
}

impl std::error::Error for SetSessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetSessionError::OtherContext => None,
            SetSessionError::Openssl(e) => Some(e),
        }
    }
}

/// Offers `session` on the connection `ssl` before its handshake (`SSL_set_session`); the
/// server may resume it or make a new one. Only a session of the connection's own context
/// is accepted (the requirement of `SslRef::set_session`), checked by identity.
pub fn set_session(ssl: &mut SslRef, session: &ContextSession) -> Result<(), SetSessionError> {
    if context_of(ssl) != Some(session.context) {
        return Err(SetSessionError::OtherContext);
    }
    // SAFETY: the session was received on a connection of the context with this identity,
    // and `ssl`'s context has that identity (identities are never reused): the session is
    // associated with the same `SslContext` as `ssl`, which is `set_session`'s contract.
    unsafe { ssl.set_session(&session.session) }.map_err(SetSessionError::Openssl)
}

/// Removes the connection's own session from its context's session cache
/// (`SSL_CTX_remove_session`), so no later connection resumes it: a server whose
/// application refused the client after the handshake. Returns whether it was cached.
pub fn remove_own_session(ssl: &SslRef) -> bool {
    let Some(session) = ssl.session() else {
        return false;
    };
    // SAFETY: the session is the connection's own (made or resumed by it), and the context
    // is the connection's own context, whose cache is the only one the session can be in:
    // the session belongs to this context, which is `remove_session`'s contract.
    unsafe { ssl.ssl_context().remove_session(session) }
}

/// Sets the identity hint a server sends with a PSK key exchange (TLS 1.2)
/// (`SSL_CTX_use_psk_identity_hint`). OpenSSL refuses a hint over 256 bytes
/// (`PSK_MAX_IDENTITY_LEN`).
pub fn set_psk_identity_hint(ctx: &mut SslContextBuilder, hint: &CStr) -> Result<(), ErrorStack> {
    let ptr: *const c_char = hint.as_ptr();
    // SAFETY: `ctx.as_ptr()` is the live SSL_CTX the builder owns; `ptr` is a NUL-terminated
    // string alive for the call, which OpenSSL copies.
    let ok = unsafe { ffi::SSL_CTX_use_psk_identity_hint(ctx.as_ptr(), ptr) };
    if ok == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// Whether OpenSSL holds input not yet returned by `SSL_read` (`SSL_has_pending`): bytes
/// of a record read ahead (complete or not), or plaintext of a decrypted record. When it
/// holds none, another `SSL_read` can only return what its transport brings.
pub fn has_pending(ssl: &SslRef) -> bool {
    // SAFETY: `ssl.as_ptr()` is the live SSL the reference borrows; SSL_has_pending only
    // reads its record layer's state.
    unsafe { ffi::SSL_has_pending(ssl.as_ptr()) == 1 }
}

/// `SSL_CTRL_GET_NEGOTIATED_GROUP` (OpenSSL 3's ssl.h; `SSL_get_negotiated_group` is a
/// macro over `SSL_ctrl`).
const SSL_CTRL_GET_NEGOTIATED_GROUP: c_int = 134;

/// The NID of the group the handshake's key exchange used (`SSL_get_negotiated_group`,
/// OpenSSL 3), on both sides and in TLS 1.2 too, where a server's temporary key is gone
/// once the exchange is done. `None` when OpenSSL does not say (no group, an OpenSSL
/// before 3.0).
pub fn negotiated_group_nid(ssl: &SslRef) -> Option<c_int> {
    // OpenSSL 3.0 reads `s->session->kex_group` without checking for a session: a
    // connection without one (not started, or a server that read no ClientHello) has no
    // group (round 37: it crashed).
    ssl.session()?;
    // SAFETY: `ssl.as_ptr()` is the live SSL the reference borrows, which has a session
    // (checked above); this control only reads the session's state and takes no pointer
    // argument (null).
    let nid = unsafe {
        openssl_sys::SSL_ctrl(
            ssl.as_ptr(),
            SSL_CTRL_GET_NEGOTIATED_GROUP,
            0,
            std::ptr::null_mut(),
        )
    };
    c_int::try_from(nid).ok().filter(|&nid| nid > 0)
}

/// `SSL3_RT_HEADER`: the message callback's content type for a record header.
const SSL3_RT_HEADER: c_int = 0x100;

/// A connection's state kept in its ex data as an `Arc<Self>`, which callbacks reach
/// through the connection they are called for: nothing is allocated per connection for
/// them (see [`set_verify_from_ex_data`], [`count_records_read`]).
pub trait ExDataState: Send + Sync + 'static {
    /// The ex-data index where each connection keeps its state.
    fn index() -> Option<Index<Ssl, Arc<Self>>>;
}

/// The state [`count_records_read`] counts into.
pub trait RecordCounter: ExDataState {
    /// Where the bytes of the records read are added up (headers included).
    fn records_read(&self) -> &AtomicU64;
}

/// Counts the records `ssl` reads from now on into [`RecordCounter::records_read`] of the
/// state `ssl` keeps at [`ExDataState::index`] (`SSL_set_msg_callback`: OpenSSL reports
/// each record header it reads): compared with the bytes handed to OpenSSL, this says
/// whether OpenSSL holds input it has not processed yet, which `SSL_has_pending` cannot
/// tell while a record's plaintext is waiting to be read. Replaces the connection's
/// message callback (none is set by this crate's users otherwise). Records read while the
/// connection has no such state are not counted.
pub fn count_records_read<T: RecordCounter>(ssl: &mut SslRef) {
    // SAFETY: `ssl.as_ptr()` is the live SSL the reference borrows. The trampoline matches
    // the C signature, reads `buf` only within `len`, and reaches the state through the
    // connection OpenSSL passes (no argument pointer to keep alive).
    unsafe { ffi::SSL_set_msg_callback(ssl.as_ptr(), Some(msg_trampoline::<T>)) };
}

/// Stops counting the records `ssl` reads (removes the connection's message callback): the
/// count stays where it was. [`count_records_read`] starts again.
pub fn stop_counting_records(ssl: &mut SslRef) {
    // SAFETY: `ssl.as_ptr()` is the live SSL the reference borrows; no callback is set.
    unsafe { ffi::SSL_set_msg_callback(ssl.as_ptr(), None) };
}

unsafe extern "C" fn msg_trampoline<T: RecordCounter>(
    write_p: c_int,
    _version: c_int,
    content_type: c_int,
    buf: *const std::ffi::c_void,
    len: usize,
    ssl: *mut openssl_sys::SSL,
    _arg: *mut std::ffi::c_void,
) {
    if write_p != 0 || content_type != SSL3_RT_HEADER || len < 5 || buf.is_null() || ssl.is_null() {
        return;
    }
    // SAFETY: OpenSSL passes the record header it read, `len` (≥ 5) bytes at `buf`, valid
    // for the call.
    let header = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), 5) };
    let body = u64::from(u16::from_be_bytes([header[3], header[4]]));
    // SAFETY: OpenSSL calls the message callback with the connection it reports on, alive
    // for the duration of the call; only a shared reference is taken, for that duration.
    let ssl = unsafe { SslRef::from_ptr(ssl) };
    // A panic of the state's trait methods must not unwind into OpenSSL (the process would
    // abort): the record is not counted (round 37).
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some(state) = T::index().and_then(|index| ssl.ex_data(index)) {
            state.records_read().fetch_add(5 + body, Ordering::Relaxed);
        }
    }));
}

/// `SSL_CTRL_SET_DH_AUTO` (OpenSSL 1.1.0 and later).
const SSL_CTRL_SET_DH_AUTO: c_int = 118;

/// Lets a server pick finite-field DHE parameters matching its key's strength when none
/// were set (`SSL_CTX_set_dh_auto`); without it, OpenSSL 3 negotiates no `DHE-*` suite.
pub fn set_dh_auto(ctx: &mut SslContextBuilder, on: bool) -> Result<(), ErrorStack> {
    // SAFETY: `ctx.as_ptr()` is the live SSL_CTX the builder owns; SSL_CTRL_SET_DH_AUTO
    // takes only the integer argument and no pointer.
    let ok = unsafe {
        openssl_sys::SSL_CTX_ctrl(
            ctx.as_ptr(),
            SSL_CTRL_SET_DH_AUTO,
            std::ffi::c_long::from(on),
            std::ptr::null_mut(),
        )
    };
    if ok == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// A connection's verification state, kept in its ex data as an `Arc<Self>` at
/// [`ExDataState::index`], which OpenSSL's verify callback reaches through the connection
/// (see [`set_verify_from_ex_data`]).
pub trait VerifyState: ExDataState {
    /// One call of OpenSSL's verify callback: `preverify_ok` is OpenSSL's verdict on the
    /// certificate at `ctx`'s depth; the return value is the callback's.
    fn verify(&self, preverify_ok: bool, ctx: &mut X509StoreContextRef) -> bool;
}

/// Sets `ssl`'s verify mode, and a verify callback that calls [`VerifyState::verify`] on
/// the state `ssl` keeps at [`ExDataState::index`] (`SSL_set_verify`). Unlike
/// `SslRef::set_verify_callback`, nothing is allocated per connection: the callback is
/// one function, its state the connection's own. A connection without the state fails
/// verification (the callback returns 0).
pub fn set_verify_from_ex_data<T: VerifyState>(ssl: &mut SslRef, mode: SslVerifyMode) {
    // SAFETY: `ssl.as_ptr()` is the live SSL the reference borrows; the trampoline matches
    // the C signature `int (*)(int, X509_STORE_CTX *)` and reaches only what OpenSSL
    // hands it for the duration of the call.
    unsafe { openssl_sys::SSL_set_verify(ssl.as_ptr(), mode.bits(), Some(verify_trampoline::<T>)) };
}

/// The state the connection being verified keeps at `T`'s index.
fn state_of<T: ExDataState>(ctx: &X509StoreContextRef) -> Option<Arc<T>> {
    X509StoreContext::ssl_idx()
        .ok()
        .and_then(|index| ctx.ex_data(index))
        .zip(T::index())
        .and_then(|(ssl, index)| ssl.ex_data(index))
        .cloned()
}

extern "C" fn verify_trampoline<T: VerifyState>(
    preverify_ok: c_int,
    ctx: *mut openssl_sys::X509_STORE_CTX,
) -> c_int {
    if ctx.is_null() {
        return 0;
    }
    // SAFETY: OpenSSL calls the verify callback with the store context of the running
    // verification, alive and not used elsewhere for the duration of the call.
    let ctx = unsafe { X509StoreContextRef::from_ptr_mut(ctx) };
    // A panic must not unwind into OpenSSL (it would abort the process): a verify callback
    // that panicked refuses the peer (fail closed), the state's `index` included (round 37).
    let verdict =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match state_of::<T>(ctx) {
            Some(state) => c_int::from(state.verify(preverify_ok != 0, ctx)),
            None => 0,
        }))
        .unwrap_or(0);
    if verdict == 1 {
        // Going on past an error: what the failed check left on the thread's error queue
        // (a bad signature's "EVP lib") is the state's to report, not OpenSSL's. Left
        // there, a server's next `SSL_get_error` in the same handshake (it does not clear
        // the queue after the client's chain, as a client does) reads it and turns a
        // plain WANT_READ into a fatal SSL error (round 34).
        clear_error_queue();
    }
    verdict
}

/// A connection's say once OpenSSL's verification of the peer's chain is over (see
/// [`set_cert_verify_from_ex_data`]).
pub trait VerifiedState: ExDataState {
    /// Called after `X509_verify_cert` returned `verified` on `ctx` (its per-certificate
    /// callbacks all ran, name constraints and RFC 3779 checks included); the return value
    /// is the verification's result (`false` refuses the peer, with `ctx`'s error).
    fn verified(&self, verified: bool, ctx: &mut X509StoreContextRef) -> bool;
}

extern "C" {
    // libssl, which openssl-sys links; openssl-sys does not declare it.
    fn SSL_CTX_set_cert_verify_callback(
        ctx: *mut openssl_sys::SSL_CTX,
        cb: Option<
            unsafe extern "C" fn(*mut openssl_sys::X509_STORE_CTX, *mut std::ffi::c_void) -> c_int,
        >,
        arg: *mut std::ffi::c_void,
    );
}

/// Has every connection of `ctx` verify its peer's chain with `X509_verify_cert` and then
/// call [`VerifiedState::verified`] on the state the connection keeps at
/// [`ExDataState::index`] (`SSL_CTX_set_cert_verify_callback`): one decision once every
/// check ran, where the per-certificate callback sees name constraints and RFC 3779
/// findings only after its last call (round 36: a decision taken there was taken again,
/// asking the application twice). A connection without the state fails verification.
pub fn set_cert_verify_from_ex_data<T: VerifiedState>(ctx: &mut SslContextBuilder) {
    // SAFETY: `ctx.as_ptr()` is the live SSL_CTX the builder owns; the trampoline matches
    // the C signature `int (*)(X509_STORE_CTX *, void *)`, and the argument is unused.
    unsafe {
        SSL_CTX_set_cert_verify_callback(
            ctx.as_ptr(),
            Some(cert_verify_trampoline::<T>),
            std::ptr::null_mut(),
        );
    }
}

unsafe extern "C" fn cert_verify_trampoline<T: VerifiedState>(
    ctx: *mut openssl_sys::X509_STORE_CTX,
    _arg: *mut std::ffi::c_void,
) -> c_int {
    if ctx.is_null() {
        return 0;
    }
    // SAFETY: OpenSSL calls this with the store context of the verification it is about to
    // run, alive and not used elsewhere for the duration of the call.
    let ctx = unsafe { X509StoreContextRef::from_ptr_mut(ctx) };
    // A panic must not unwind into OpenSSL: it refuses the peer (fail closed), the state's
    // `index` included (round 37). A connection without the state is refused.
    let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Some(state) = state_of::<T>(ctx) else {
            return false;
        };
        let verified = ctx.verify_cert().unwrap_or(false);
        state.verified(verified, ctx)
    }))
    .unwrap_or(false);
    if verdict {
        clear_error_queue();
    }
    c_int::from(verdict)
}

/// The `X509_V_ERR_*` codes [`verify_result`] accepts: the ones sslsocket maps to Qt's
/// error kinds (`X509_V_ERR_INVALID_CA` is 24 before OpenSSL 3 and 79 since).
pub const KNOWN_VERIFY_CODES: [c_int; 21] = [
    2, 4, 6, 7, 9, 10, 13, 14, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 62, 64, 79,
];

/// The verification result with OpenSSL's code `code`, for a code sslsocket knows
/// ([`KNOWN_VERIFY_CODES`]); `None` for any other number. (The `openssl` crate's
/// `X509VerifyResult::from_raw` is `unsafe` because the message of an unknown number is
/// formatted into a buffer shared between threads.)
pub fn verify_result(code: c_int) -> Option<X509VerifyResult> {
    // `X509_V_ERR_INVALID_CA` is 24 before OpenSSL 3 and 79 since: the other number is no
    // defined code on that version (its message would be formatted in the shared buffer).
    let defined_here = match code {
        24 => openssl::version::number() < 0x3000_0000,
        79 => openssl::version::number() >= 0x3000_0000,
        _ => true,
    };
    if !defined_here || !KNOWN_VERIFY_CODES.contains(&code) {
        return None;
    }
    // SAFETY: `code` is one of the codes OpenSSL defines, whose messages are static
    // strings; nothing else reaches this call.
    Some(unsafe { X509VerifyResult::from_raw(code) })
}

/// Empties the thread's OpenSSL error queue (`ERR_clear_error`, through the safe
/// `ErrorStack::get`, which takes every entry).
pub fn clear_error_queue() {
    drop(ErrorStack::get());
}

/// A connection's say on resuming a session from a ticket (see
/// [`filter_ticket_resumption`]).
pub trait ResumptionFilter: ExDataState {
    /// Whether the server connection `ssl` may resume `session`, decrypted from the
    /// client's ticket (its application data: [`session_ticket_appdata`]).
    fn may_resume(&self, ssl: &SslRef, session: &SslSessionRef) -> bool;

    /// The application data to seal into the tickets this connection issues (read back
    /// with [`session_ticket_appdata`] when one is presented), if any.
    fn ticket_appdata(&self) -> Option<Vec<u8>>;
}

// `SSL_TICKET_STATUS` and `SSL_TICKET_RETURN` (OpenSSL 1.1.1's ssl.h).
const SSL_TICKET_NONE: c_int = 2;
const SSL_TICKET_EMPTY: c_int = 3;
const SSL_TICKET_NO_DECRYPT: c_int = 4;
const SSL_TICKET_SUCCESS: c_int = 5;
const SSL_TICKET_SUCCESS_RENEW: c_int = 6;
const SSL_TICKET_RETURN_ABORT: c_int = 0;
const SSL_TICKET_RETURN_IGNORE: c_int = 1;
const SSL_TICKET_RETURN_IGNORE_RENEW: c_int = 2;
const SSL_TICKET_RETURN_USE: c_int = 3;
const SSL_TICKET_RETURN_USE_RENEW: c_int = 4;

/// Makes the context's server connections ask [`ResumptionFilter::may_resume`] of the
/// state they keep at [`ExDataState::index`] before resuming a session from a client's
/// ticket (`SSL_CTX_set_session_ticket_cb`, decrypting side; TLS 1.2 tickets and TLS 1.3
/// stateless PSKs), and seal [`ResumptionFilter::ticket_appdata`] into the tickets they
/// issue (generating side). A declined ticket makes the handshake a full one (with a
/// fresh ticket); a connection without the state resumes nothing. Every other ticket
/// status is answered as OpenSSL does without a callback.
pub fn filter_ticket_resumption<T: ResumptionFilter>(
    ctx: &mut SslContextBuilder,
) -> Result<(), ErrorStack> {
    // SAFETY: `ctx.as_ptr()` is the live SSL_CTX the builder owns; the trampoline matches
    // `SSL_CTX_decrypt_session_ticket_fn` and uses no argument (null).
    let done = unsafe {
        ffi::SSL_CTX_set_session_ticket_cb(
            ctx.as_ptr(),
            Some(ticket_appdata_trampoline::<T>),
            Some(ticket_trampoline::<T>),
            std::ptr::null_mut(),
        )
    };
    if done == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

unsafe extern "C" fn ticket_appdata_trampoline<T: ResumptionFilter>(
    ssl: *mut openssl_sys::SSL,
    _arg: *mut std::ffi::c_void,
) -> c_int {
    if ssl.is_null() {
        return 1;
    }
    // SAFETY: OpenSSL calls the callback with the connection issuing the ticket, alive for
    // the duration of the call; we take a shared reference for that duration only.
    let ssl = unsafe { SslRef::from_ptr(ssl) };
    // A panic (the state's `index` included) must not unwind into OpenSSL: no data.
    let Some(data) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        T::index()
            .and_then(|index| ssl.ex_data(index))
            .and_then(|state| state.ticket_appdata())
    }))
    .ok()
    .flatten() else {
        return 1;
    };
    let Some(session) = ssl.session() else {
        return 1;
    };
    // SAFETY: the session is the connection's own, alive during the call; OpenSSL copies
    // `data` (len bytes, alive for the call) into it.
    let done = unsafe {
        ffi::SSL_SESSION_set1_ticket_appdata(session.as_ptr(), data.as_ptr().cast(), data.len())
    };
    // A ticket without our data is never resumed (the filter finds no record): failing
    // here would only fail the handshake.
    let _ = done;
    1
}

/// The application data sealed into the ticket `session` was decrypted from
/// (`SSL_SESSION_get0_ticket_appdata`), if any.
pub fn session_ticket_appdata(session: &SslSessionRef) -> Option<Vec<u8>> {
    let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
    let mut len: usize = 0;
    // SAFETY: `session.as_ptr()` is the live session the reference borrows; OpenSSL
    // points `data` at bytes the session owns (get0), read only while it is borrowed.
    let ok = unsafe { ffi::SSL_SESSION_get0_ticket_appdata(session.as_ptr(), &mut data, &mut len) };
    if ok != 1 || data.is_null() || len == 0 {
        return None;
    }
    // SAFETY: non-null, `len` bytes owned by the session, alive while it is borrowed.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    Some(bytes.to_vec())
}

unsafe extern "C" fn ticket_trampoline<T: ResumptionFilter>(
    ssl: *mut openssl_sys::SSL,
    session: *mut openssl_sys::SSL_SESSION,
    _key_name: *const u8,
    _key_name_len: usize,
    status: c_int,
    _arg: *mut std::ffi::c_void,
) -> c_int {
    let renew = match status {
        SSL_TICKET_SUCCESS => false,
        SSL_TICKET_SUCCESS_RENEW => true,
        SSL_TICKET_EMPTY | SSL_TICKET_NO_DECRYPT => return SSL_TICKET_RETURN_IGNORE_RENEW,
        SSL_TICKET_NONE => return SSL_TICKET_RETURN_IGNORE,
        _ => return SSL_TICKET_RETURN_ABORT,
    };
    if ssl.is_null() || session.is_null() {
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
    // SAFETY: OpenSSL calls the callback with the connection deciding and the session it
    // decrypted, both alive for the duration of the call; we only take shared references
    // for that duration.
    let (ssl, session) = unsafe { (SslRef::from_ptr(ssl), SslSessionRef::from_ptr(session)) };
    // A panic must not unwind into OpenSSL: a filter that panicked resumes nothing.
    let allowed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        T::index()
            .and_then(|index| ssl.ex_data(index))
            .is_some_and(|state| state.may_resume(ssl, session))
    }))
    .unwrap_or(false);
    match (allowed, renew) {
        (false, _) => SSL_TICKET_RETURN_IGNORE_RENEW,
        (true, false) => SSL_TICKET_RETURN_USE,
        (true, true) => SSL_TICKET_RETURN_USE_RENEW,
    }
}

/// The DER of the peer's certificate `session` was made with (`SSL_SESSION_get0_peer`),
/// if any.
pub fn session_peer_der(session: &SslSessionRef) -> Option<Vec<u8>> {
    // SAFETY: `session.as_ptr()` is the live session the reference borrows; the peer
    // certificate it returns is owned by the session (get0: no reference taken) and used
    // only while the session is borrowed.
    let peer = unsafe { ffi::SSL_SESSION_get0_peer(session.as_ptr()) };
    if peer.is_null() {
        return None;
    }
    // SAFETY: non-null, owned by the session, alive while `session` is borrowed.
    let peer = unsafe { X509Ref::from_ptr(peer) };
    peer.to_der().ok()
}

/// `TLSEXT_TYPE_server_name`.
const SERVER_NAME_EXTENSION: u32 = 0;

/// What a ClientHello's server_name extension asks for (see [`client_hello_server_name`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloServerName {
    /// The hello has no server_name extension.
    Absent,
    /// The host name it asks for, as sent.
    Name(Vec<u8>),
    /// An extension without a readable host name (OpenSSL refuses it later).
    Unreadable,
}

/// The host name the ClientHello being processed asks for, read from its server_name
/// extension (RFC 6066 section 3: a `ServerNameList` whose `host_name` entry is taken).
/// OpenSSL offers the raw extension only inside a client hello callback
/// (`SslContextBuilder::set_client_hello_callback`): anywhere else this is
/// [`HelloServerName::Absent`].
pub fn client_hello_server_name(ssl: &mut SslRef) -> HelloServerName {
    let mut data: *const u8 = std::ptr::null();
    let mut len: usize = 0;
    // SAFETY: `ssl.as_ptr()` is the live connection the reference borrows; OpenSSL writes
    // a pointer into its own copy of the hello (alive while the hello is processed, i.e.
    // for this call) and its length, or returns 0 and writes nothing.
    let found = unsafe {
        openssl_sys::SSL_client_hello_get0_ext(
            ssl.as_ptr(),
            SERVER_NAME_EXTENSION,
            &mut data,
            &mut len,
        )
    };
    if found != 1 {
        return HelloServerName::Absent;
    }
    if data.is_null() {
        return HelloServerName::Unreadable;
    }
    // SAFETY: non-null, `len` bytes owned by OpenSSL's copy of the hello, read only within
    // this call (copied out below).
    let extension = unsafe { std::slice::from_raw_parts(data, len) };
    match host_name_of(extension) {
        Some(name) => HelloServerName::Name(name.to_vec()),
        None => HelloServerName::Unreadable,
    }
}

/// The `host_name` entry of a server_name extension's `ServerNameList`: a two-byte length
/// of the list, then entries of a type byte and a two-byte length of the name.
fn host_name_of(extension: &[u8]) -> Option<&[u8]> {
    let (length, mut list) = extension.split_first_chunk::<2>()?;
    if usize::from(u16::from_be_bytes(*length)) != list.len() {
        return None;
    }
    while let Some((&kind, rest)) = list.split_first() {
        let (length, rest) = rest.split_first_chunk::<2>()?;
        let length = usize::from(u16::from_be_bytes(*length));
        if rest.len() < length {
            return None;
        }
        let (name, rest) = rest.split_at(length);
        if kind == 0 {
            return (!name.is_empty()).then_some(name);
        }
        list = rest;
    }
    None
}

/// The server name `session` was made under (`SSL_SESSION_get0_hostname`), if any.
pub fn session_host_name(session: &SslSessionRef) -> Option<Vec<u8>> {
    // SAFETY: `session.as_ptr()` is the live session the reference borrows; the string
    // returned is owned by the session (get0) and copied before the borrow ends.
    let name = unsafe { ffi::SSL_SESSION_get0_hostname(session.as_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: non-null, a NUL-terminated string owned by the session, read only here.
    Some(unsafe { CStr::from_ptr(name) }.to_bytes().to_vec())
}

mod stream;
mod transport;
pub use stream::{StreamError, TlsStream};
pub use transport::{with_reader, with_reader_and_writer, with_writer, Transport, TransportId};

#[cfg(test)]
mod tests;

/// The OpenSSL version this crate was built against, as OpenSSL's
/// `OPENSSL_VERSION_NUMBER` (`0xMNN00PP0` for OpenSSL 3); 0 when the build did not say.
/// The library loaded at run time may be another (`openssl::version::number`).
pub fn build_version_number() -> u64 {
    u64::from_str_radix(env!("SSLSOCKET_OPENSSL_BUILD_VERSION_NUMBER"), 16).unwrap_or(0)
}

/// [`build_version_number`] as text, `OpenSSL 3.0.19` (major, minor, patch of
/// OpenSSL 3's numbering; OpenSSL 1.1's letter releases show as their patch number).
pub fn build_version_string() -> String {
    let n = build_version_number();
    if n == 0 {
        return String::new();
    }
    let (major, minor, patch) = if n >> 28 >= 3 {
        (n >> 28, (n >> 20) & 0xff, (n >> 4) & 0xff)
    } else {
        (n >> 28, (n >> 20) & 0xff, (n >> 12) & 0xff)
    };
    format!("OpenSSL {major}.{minor}.{patch}")
}
