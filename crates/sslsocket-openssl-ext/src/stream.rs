//! [`TlsStream`]: an OpenSSL connection over a [`Transport`], through a BIO of this crate.
//!
//! The `openssl` crate's `SslStream` gives every connection a `BIO_METHOD` of its own and a
//! boxed state for its stream: two allocations, kept as long as the connection. Here one
//! `BIO_METHOD` serves every connection of the process, and the transport is kept inline in
//! the stream: the BIO reaches it only during a call of this type (which sets the BIO's
//! data to a frame on its stack for the call, and clears it afterwards). Outside such a
//! call the BIO has nothing to read or write to and answers "retry".

use std::any::Any;
use std::ffi::{c_char, c_int, c_long, c_void};
use std::fmt;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::ssl::{ErrorCode, Ssl, SslRef};
use openssl_sys::{BIO, BIO_METHOD};

use crate::transport::Transport;

/// `BIO_CTRL_FLUSH`.
const BIO_CTRL_FLUSH: c_int = 11;

/// The process's one `BIO_METHOD` (made once, never freed: nothing changes it after it is
/// made, so sharing it between threads is sound).
struct Method(*mut BIO_METHOD);

// SAFETY: the method table is written only while it is made (before it is shared) and only
// read afterwards, by OpenSSL, from any thread.
unsafe impl Send for Method {}
// SAFETY: as for `Send`: shared reads of an immutable table.
unsafe impl Sync for Method {}

fn method() -> Result<*const BIO_METHOD, ErrorStack> {
    static METHOD: OnceLock<Method> = OnceLock::new();
    if let Some(method) = METHOD.get() {
        return Ok(method.0);
    }
    // SAFETY: BIO_meth_new copies the name; the table is filled in before it is shared,
    // with callbacks matching the C signatures.
    let made = unsafe {
        let method = openssl_sys::BIO_meth_new(openssl_sys::BIO_TYPE_NONE, c"sslsocket".as_ptr());
        if method.is_null() {
            return Err(ErrorStack::get());
        }
        let ok = openssl_sys::BIO_meth_set_write__fixed_rust(method, Some(bio_write)) == 1
            && openssl_sys::BIO_meth_set_read__fixed_rust(method, Some(bio_read)) == 1
            && openssl_sys::BIO_meth_set_ctrl__fixed_rust(method, Some(bio_ctrl)) == 1;
        if !ok {
            openssl_sys::BIO_meth_free(method);
            return Err(ErrorStack::get());
        }
        Method(method)
    };
    if let Err(Method(lost)) = METHOD.set(made) {
        // Another thread made one first: ours was never shared.
        // SAFETY: `lost` was made above and is referenced by nothing.
        unsafe { openssl_sys::BIO_meth_free(lost) };
    }
    METHOD
        .get()
        .map(|method| method.0.cast_const())
        .ok_or_else(ErrorStack::get)
}

/// What the BIO reaches during one call of a [`TlsStream`] method: the stream's
/// transport, and what its callbacks could not return through OpenSSL.
struct Call<'a> {
    transport: &'a mut Transport,
    error: Option<io::Error>,
    panic: Option<Box<dyn Any + Send>>,
}

/// The call the BIO's data points to, or `None` outside a call.
///
/// # Safety
/// `bio` must be a live BIO of this crate's method; its data is null or points to the
/// `Call` of the [`TlsStream::call`] running on this thread, which is not otherwise
/// used while OpenSSL runs.
unsafe fn current<'a>(bio: *mut BIO) -> Option<&'a mut Call<'a>> {
    // SAFETY: see the function's contract.
    unsafe { openssl_sys::BIO_get_data(bio).cast::<Call<'a>>().as_mut() }
}

fn retriable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
    )
}

unsafe extern "C" fn bio_read(bio: *mut BIO, buf: *mut c_char, len: c_int) -> c_int {
    // SAFETY: OpenSSL calls this with a live BIO of our method and a buffer of `len`
    // writable bytes, valid for the call (the `openssl` crate's BIO reads into it the same
    // way); `transfer` hands the closure a non-null `buf` and that `len`.
    unsafe {
        transfer(
            bio,
            buf.is_null(),
            len,
            openssl_sys::BIO_set_retry_read,
            |transport, len| transport.read(std::slice::from_raw_parts_mut(buf.cast::<u8>(), len)),
        )
    }
}

unsafe extern "C" fn bio_write(bio: *mut BIO, buf: *const c_char, len: c_int) -> c_int {
    // SAFETY: OpenSSL calls this with a live BIO of our method and `len` readable bytes at
    // `buf`, valid for the call; `transfer` hands the closure a non-null `buf` and that
    // `len`.
    unsafe {
        transfer(
            bio,
            buf.is_null(),
            len,
            openssl_sys::BIO_set_retry_write,
            |transport, len| transport.write(std::slice::from_raw_parts(buf.cast::<u8>(), len)),
        )
    }
}

/// The body of the BIO's read and write: `op` moves up to `len` bytes between OpenSSL's
/// buffer and the transport of the call under way. Outside a call, and after a retriable
/// transport error, `retry` marks the BIO to be retried; a transport error is kept for the
/// call's result, a panic for it to resume.
///
/// # Safety
/// `bio` must be a live BIO of this crate's method; `op` must be sound to run with the
/// length given when `null` is false.
unsafe fn transfer(
    bio: *mut BIO,
    null: bool,
    len: c_int,
    retry: unsafe fn(*mut BIO),
    op: impl FnOnce(&mut Transport, usize) -> io::Result<usize>,
) -> c_int {
    // SAFETY: the BIO is live (the function's contract).
    unsafe { openssl_sys::BIO_clear_retry_flags(bio) };
    // SAFETY: the BIO is ours; its data is set only by `TlsStream::call`.
    let Some(call) = (unsafe { current(bio) }) else {
        // SAFETY: as above.
        unsafe { retry(bio) };
        return -1;
    };
    let Ok(len) = usize::try_from(len) else {
        return -1;
    };
    if null || len == 0 {
        return 0;
    }
    match catch_unwind(AssertUnwindSafe(|| op(call.transport, len))) {
        Ok(Ok(n)) => c_int::try_from(n.min(len)).unwrap_or(-1),
        Ok(Err(error)) => {
            if retriable(&error) {
                // SAFETY: as above.
                unsafe { retry(bio) };
            }
            call.error = Some(error);
            -1
        }
        Err(panic) => {
            call.panic = Some(panic);
            -1
        }
    }
}

unsafe extern "C" fn bio_ctrl(
    _bio: *mut BIO,
    cmd: c_int,
    _num: c_long,
    _ptr: *mut c_void,
) -> c_long {
    // The transport buffers nothing that a flush would move; every other control is
    // unsupported (0), as in the `openssl` crate's BIO.
    c_long::from(cmd == BIO_CTRL_FLUSH)
}

/// Why a [`TlsStream`] call did not succeed: OpenSSL's `SSL_get_error` code and its cause
/// (the error stack, or the transport's I/O error). Displays as the `openssl` crate's
/// `ssl::Error`.
#[derive(Debug)]
pub struct StreamError {
    code: ErrorCode,
    ssl: Option<ErrorStack>,
    io: Option<io::Error>,
}

impl StreamError {
    /// The `SSL_get_error` code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The OpenSSL errors behind it, if any.
    pub fn ssl_error(&self) -> Option<&ErrorStack> {
        self.ssl.as_ref()
    }

    /// The transport's I/O error behind it, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.io.as_ref()
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            ErrorCode::ZERO_RETURN => f.write_str("the SSL session has been shut down"),
            ErrorCode::WANT_READ => match &self.io {
                Some(_) => f.write_str("a nonblocking read call would have blocked"),
                None => f.write_str("the operation should be retried"),
            },
            ErrorCode::WANT_WRITE => match &self.io {
                Some(_) => f.write_str("a nonblocking write call would have blocked"),
                None => f.write_str("the operation should be retried"),
            },
            ErrorCode::SYSCALL => match &self.io {
                Some(error) => write!(f, "{error}"),
                None => f.write_str("unexpected EOF"),
            },
            ErrorCode::SSL => match &self.ssl {
                Some(stack) => write!(f, "{stack}"),
                None => f.write_str("OpenSSL error"),
            },
            code => write!(f, "unknown error code {}", code.as_raw()),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match (&self.ssl, &self.io) {
            (Some(stack), _) => Some(stack),
            (None, Some(io)) => Some(io),
            (None, None) => None,
        }
    }
}

/// An OpenSSL connection whose BIO reads from and writes to a [`Transport`] kept inline:
/// nothing is allocated per connection for the BIO's method or the transport's state.
pub struct TlsStream {
    /// Private, and only lent out as `&SslRef` (which cannot replace a BIO): its BIOs stay
    /// the one `new` set for its whole life.
    ssl: Ssl,
    transport: Transport,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// `ssl` over `transport` (a BIO of this crate is set as both its read and write BIO).
    pub fn new(ssl: Ssl, transport: Transport) -> Result<TlsStream, ErrorStack> {
        let method = method()?;
        // SAFETY: `method` is a live BIO_METHOD that is never freed. The new BIO's data
        // stays null (nothing to read or write) until a call sets it. SSL_set_bio takes
        // the one reference of the BIO for both directions; it is freed with the SSL.
        unsafe {
            let bio = openssl_sys::BIO_new(method);
            if bio.is_null() {
                return Err(ErrorStack::get());
            }
            openssl_sys::BIO_set_init(bio, 1);
            openssl_sys::SSL_set_bio(ssl.as_ptr(), bio, bio);
            Ok(TlsStream { ssl, transport })
        }
    }

    /// Counts the records the connection reads from now on ([`crate::count_records_read`]).
    pub fn count_records_read<T: crate::RecordCounter>(&mut self) {
        crate::count_records_read::<T>(&mut self.ssl);
    }

    /// Stops counting them ([`crate::stop_counting_records`]).
    pub fn stop_counting_records(&mut self) {
        crate::stop_counting_records(&mut self.ssl);
    }

    /// Marks the connection closed both ways (`SSL_set_shutdown(SENT | RECEIVED)`), so
    /// that freeing it leaves its session resumable: OpenSSL marks the session of a
    /// connection freed without that state not resumable (`ssl_clear_bad_session`), even
    /// when the application closed an accepted connection on purpose (an abort, a drop).
    /// A connection that failed had its session removed by OpenSSL when the fatal alert
    /// went or came; this does not bring it back.
    pub fn keep_session_on_free(&mut self) {
        // SAFETY: `self.ssl` is the live SSL this stream owns; `SSL_set_shutdown` only
        // sets its shutdown flags.
        unsafe {
            openssl_sys::SSL_set_shutdown(
                self.ssl.as_ptr(),
                openssl_sys::SSL_SENT_SHUTDOWN | openssl_sys::SSL_RECEIVED_SHUTDOWN,
            )
        }
    }

    /// The connection.
    pub fn ssl(&self) -> &SslRef {
        &self.ssl
    }

    /// The transport.
    pub fn get_ref(&self) -> &Transport {
        &self.transport
    }

    /// The transport, mutably.
    pub fn get_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// Runs `f` on the SSL with the BIO reaching the transport for the duration; then
    /// `SSL_get_error` on what it returned when it is `<= 0`.
    fn call(
        &mut self,
        f: impl FnOnce(*mut openssl_sys::SSL) -> c_int,
    ) -> Result<c_int, StreamError> {
        // `SSL_get_error` reads the thread's error queue first: anything another call left
        // there (the application's own use of OpenSSL, another connection) would turn a
        // WANT_READ into a fatal error. Its man page asks for an empty queue (round 34).
        crate::clear_error_queue();
        let ssl = self.ssl.as_ptr();
        let mut call = Call {
            transport: &mut self.transport,
            error: None,
            panic: None,
        };
        // SAFETY: the SSL's read BIO is the one `new` set (the SSL is private to this type,
        // whose methods never replace its BIOs, and only lent out as `&SslRef`), alive as
        // long as the SSL. Its data points to `call` only until the reset below, within
        // this frame, and `call` is used by nothing else meanwhile: the BIO callbacks,
        // reached from `f` on this thread, are its only users.
        let ret = unsafe {
            let bio = openssl_sys::SSL_get_rbio(ssl);
            openssl_sys::BIO_set_data(bio, (&mut call as *mut Call<'_>).cast::<c_void>());
            let ret = f(ssl);
            openssl_sys::BIO_set_data(bio, std::ptr::null_mut());
            ret
        };
        if let Some(panic) = call.panic.take() {
            resume_unwind(panic);
        }
        if ret > 0 {
            return Ok(ret);
        }
        // SAFETY: `ssl` is the live SSL; SSL_get_error reads its state and the thread's
        // error queue.
        let code = ErrorCode::from_raw(unsafe { openssl_sys::SSL_get_error(ssl, ret) });
        let (ssl_errors, io) = match code {
            ErrorCode::SSL => (Some(ErrorStack::get()), None),
            ErrorCode::SYSCALL => {
                let stack = ErrorStack::get();
                if stack.errors().is_empty() {
                    (None, call.error)
                } else {
                    (Some(stack), None)
                }
            }
            ErrorCode::WANT_READ | ErrorCode::WANT_WRITE => (None, call.error),
            _ => (None, None),
        };
        if ssl_errors.is_none() {
            // Nothing of this call's queue is reported: none of it is left for the
            // application or the next connection on this thread.
            crate::clear_error_queue();
        }
        Err(StreamError {
            code,
            ssl: ssl_errors,
            io,
        })
    }

    /// `SSL_do_handshake`.
    pub fn do_handshake(&mut self) -> Result<(), StreamError> {
        // SAFETY: `ssl` is the live SSL `call` passes.
        self.call(|ssl| unsafe { openssl_sys::SSL_do_handshake(ssl) })
            .map(drop)
    }

    /// Runs one of `SSL_read_ex`, `SSL_peek_ex`, `SSL_write_ex` on a buffer of `len`
    /// bytes (`op` gets the SSL and where to put the count); the count, at most `len`.
    fn transfer_ex(
        &mut self,
        len: usize,
        op: impl FnOnce(*mut openssl_sys::SSL, &mut usize) -> c_int,
    ) -> Result<usize, StreamError> {
        let mut n = 0;
        self.call(|ssl| op(ssl, &mut n))?;
        Ok(n.min(len))
    }

    /// `SSL_read_ex` into `buf` (`Ok(0)` for an empty `buf`).
    pub fn ssl_read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        // SAFETY: same layout; `ssl_read_uninit` only lets OpenSSL write bytes into it
        // (never uninitialized ones), so `buf` stays initialized.
        let buf = unsafe { &mut *(std::ptr::from_mut(buf) as *mut [MaybeUninit<u8>]) };
        self.ssl_read_uninit(buf)
    }

    /// `SSL_read_ex` into uninitialized memory: the first `n` bytes of `buf` are
    /// initialized when this returns `Ok(n)` (`Ok(0)` for an empty `buf`).
    pub fn ssl_read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, StreamError> {
        if buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: `buf` is writable for its length (OpenSSL only writes to it); the count
        // outlives the call.
        self.transfer_ex(buf.len(), |ssl, n| unsafe {
            openssl_sys::SSL_read_ex(ssl, buf.as_mut_ptr().cast(), buf.len(), n)
        })
    }

    /// `SSL_peek_ex` into `buf`.
    pub fn ssl_peek(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        // SAFETY: `buf` is writable for its length; the count outlives the call.
        self.transfer_ex(buf.len(), |ssl, n| unsafe {
            openssl_sys::SSL_peek_ex(ssl, buf.as_mut_ptr().cast(), buf.len(), n)
        })
    }

    /// `SSL_write_ex` of `buf` (`Ok(0)` for an empty `buf`).
    pub fn ssl_write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        if buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: `buf` is readable for its length; the count outlives the call.
        self.transfer_ex(buf.len(), |ssl, n| unsafe {
            openssl_sys::SSL_write_ex(ssl, buf.as_ptr().cast(), buf.len(), n)
        })
    }

    /// `SSL_shutdown`: `Ok(false)` when our close_notify was sent, `Ok(true)` when the
    /// peer's was received too.
    pub fn shutdown(&mut self) -> Result<bool, StreamError> {
        // SAFETY: `ssl` is the live SSL `call` passes. A return of 0 ("sent") is not a
        // failure: mapped to 2 here, and back below.
        let ret = self.call(|ssl| match unsafe { openssl_sys::SSL_shutdown(ssl) } {
            0 => 2,
            n => n,
        })?;
        Ok(ret == 1)
    }

    /// Decrypts up to `max` bytes into the spare capacity of `buf` (`SSL_read_ex`),
    /// appending them: no buffer to zero first. Returns the number appended.
    pub fn read_into(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<usize, StreamError> {
        buf.reserve(max);
        let len = buf.len();
        let spare = buf.spare_capacity_mut();
        let spare = spare.get_mut(..max).unwrap_or_default();
        let n = self.ssl_read_uninit(spare)?;
        // SAFETY: `ssl_read_uninit` initialized the first `n` bytes of `spare` (which
        // starts at `len`, within the capacity), `n <= spare.len()`.
        unsafe { buf.set_len(len + n) };
        Ok(n)
    }
}
