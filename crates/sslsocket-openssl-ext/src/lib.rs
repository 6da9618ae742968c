//! Safe wrappers for the few OpenSSL calls sslsocket's OpenSSL backend needs and the
//! `openssl` crate does not offer safely, so that `sslsocket` itself keeps
//! `#![forbid(unsafe_code)]`:
//!
//! - `SSL_CTX_set_info_callback` as [`set_info_callback`], where alerts (sent and
//!   received, warnings included) are seen;
//! - `SSL_set_session` as [`set_session`], to offer a stored session again. The `openssl`
//!   crate's `SslRef::set_session` is `unsafe` because the session must come from the same
//!   `SslContext`; here that is checked: only a [`ContextSession`] (a session tagged with
//!   the context that made it, see [`tag_context`]) can be set, and only on a connection of
//!   that context;
//! - `SSL_CTX_use_psk_identity_hint` as [`set_psk_identity_hint`];
//! - `SSL_CTX_set_dh_auto` (a macro over `SSL_CTX_ctrl`) as [`set_dh_auto`];
//! - a [`Transport`] for `SslStream` that reads from the caller's socket, lent for one
//!   call ([`with_reader`]), so OpenSSL reads records straight from the socket into its
//!   own buffer, and writes to the caller's socket, lent for one call ([`with_writer`]);
//!   [`ssl_read_into`], decrypting into a `Vec`'s spare capacity;
//! - `SSL_set_msg_callback` as [`count_records_read`], counting the record bytes OpenSSL
//!   processed (with [`Transport::delivered`]: whether it holds unprocessed input).
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
use openssl::ssl::{Ssl, SslContext, SslContextBuilder, SslRef, SslSession, SslSessionRef};

/// `SSL_CB_READ`: the info callback's `where` has this bit for something read.
pub const SSL_CB_READ: i32 = 0x04;
/// `SSL_CB_WRITE`: the info callback's `where` has this bit for something written.
pub const SSL_CB_WRITE: i32 = 0x08;
/// `SSL_CB_ALERT`: the info callback's `where` has this bit for an alert.
pub const SSL_CB_ALERT: i32 = 0x4000;

mod ffi {
    use std::ffi::{c_char, c_int};

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
    let index = info_index()?;
    let callback: InfoCallback = Box::new(f);
    ctx.set_ex_data(index, callback);
    // SAFETY: `ctx.as_ptr()` is the live SSL_CTX the builder owns; the trampoline matches
    // the C signature `void (*)(const SSL *, int, int)` and only reads ex data.
    unsafe { ffi::SSL_CTX_set_info_callback(ctx.as_ptr(), Some(info_trampoline)) };
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

unsafe extern "C" fn info_trampoline(ssl: *const openssl_sys::SSL, where_: c_int, ret: c_int) {
    if ssl.is_null() {
        return;
    }
    // SAFETY: OpenSSL calls the info callback with the connection it reports on, alive for
    // the duration of the call; we only take a shared reference for that duration.
    let ssl = unsafe { SslRef::from_ptr(ssl.cast_mut()) };
    let Ok(index) = info_index() else { return };
    // The connection's context may have been switched (SSL_set_SSL_CTX) to one without
    // our callback: then there is nothing to call.
    if let Some(callback) = ssl.ssl_context().ex_data(index) {
        callback(ssl, where_, ret);
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
    /// tagged with `ssl`'s context; `None` when that context was not [`tag_context`]ed.
    pub fn new(ssl: &SslRef, session: SslSession) -> Option<ContextSession> {
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

/// `SSL3_RT_HEADER`: the message callback's content type for a record header.
const SSL3_RT_HEADER: c_int = 0x100;
/// `SSL_CTRL_SET_MSG_CALLBACK_ARG`.
const SSL_CTRL_SET_MSG_CALLBACK_ARG: c_int = 16;

/// The bytes of whole TLS records OpenSSL has taken from a connection's input so far
/// (header and body), counted by [`count_records_read`].
#[derive(Clone, Debug, Default)]
pub struct RecordsRead(Arc<AtomicU64>);

impl RecordsRead {
    /// Bytes of the records read so far, headers included.
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn records_read_index() -> Result<Index<Ssl, RecordsRead>, ErrorStack> {
    static INDEX: OnceLock<Index<Ssl, RecordsRead>> = OnceLock::new();
    if let Some(index) = INDEX.get() {
        return Ok(*index);
    }
    let index = Ssl::new_ex_index()?;
    Ok(*INDEX.get_or_init(|| index))
}

/// Counts the records `ssl` reads from now on (`SSL_set_msg_callback`: OpenSSL reports
/// each record header it reads): compared with the bytes handed to OpenSSL, this says
/// whether OpenSSL holds input it has not processed yet, which `SSL_has_pending` cannot
/// tell while a record's plaintext is waiting to be read. Replaces the connection's
/// message callback (none is set by this crate's users otherwise).
pub fn count_records_read(ssl: &mut SslRef) -> Result<RecordsRead, ErrorStack> {
    let counter = RecordsRead::default();
    let arg: *const AtomicU64 = Arc::as_ptr(&counter.0);
    // The connection's ex data keeps the counter alive as long as the connection: the
    // callback can run only while the connection exists.
    ssl.set_ex_data(records_read_index()?, counter.clone());
    // SAFETY: `ssl.as_ptr()` is the live SSL the reference borrows. The argument points
    // into the counter just stored in the connection's ex data, which lives until the
    // connection is freed (the index is private: nothing else replaces it, and calling
    // this again installs the new counter's pointer before the old one is dropped). The
    // trampoline matches the C signature and only reads `buf` within `len`.
    unsafe {
        openssl_sys::SSL_ctrl(
            ssl.as_ptr(),
            SSL_CTRL_SET_MSG_CALLBACK_ARG,
            0,
            arg.cast_mut().cast(),
        );
        ffi::SSL_set_msg_callback(ssl.as_ptr(), Some(msg_trampoline));
    }
    Ok(counter)
}

unsafe extern "C" fn msg_trampoline(
    write_p: c_int,
    _version: c_int,
    content_type: c_int,
    buf: *const std::ffi::c_void,
    len: usize,
    _ssl: *mut openssl_sys::SSL,
    arg: *mut std::ffi::c_void,
) {
    if write_p != 0 || content_type != SSL3_RT_HEADER || len < 5 || buf.is_null() || arg.is_null() {
        return;
    }
    // SAFETY: OpenSSL passes the record header it read, `len` (≥ 5) bytes at `buf`, valid
    // for the call.
    let header = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), 5) };
    let body = u64::from(u16::from_be_bytes([header[3], header[4]]));
    // SAFETY: `arg` is the counter set by `count_records_read`, alive as long as the
    // connection (see there).
    let counter = unsafe { &*arg.cast_const().cast::<AtomicU64>() };
    counter.fetch_add(5 + body, Ordering::Relaxed);
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

mod transport;
pub use transport::{ssl_read_into, with_reader, with_writer, Transport, TransportId};

#[cfg(test)]
mod tests;
