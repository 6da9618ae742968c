//! A transport for `SslStream` that reads straight from the caller's socket, lent for the
//! duration of one call, and writes into a buffer the caller drains.
//!
//! The reader is lent through a thread-local slot, not stored in the stream: it is
//! reachable only inside [`with_reader`], on the thread that called it, and only by the
//! [`Transport`] it was lent to (by identity). Whatever the closure does with the stream
//! (or any other stream), no reference to the reader outlives the call.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::LocalKey;

/// The identity of one [`Transport`]: unique for the process's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportId(u64);

thread_local! {
    /// The reader lent by the innermost [`with_reader`] call on this thread. It is taken
    /// out while in use, so a reentrant read never makes a second `&mut` to it.
    static LENT: Cell<Lent<dyn Read>> = const { Cell::new(None) };
    /// The writer lent by the innermost [`with_writer`] call on this thread (taken out
    /// while in use, as the reader).
    static LENT_WRITER: Cell<Lent<dyn Write>> = const { Cell::new(None) };
}

/// What OpenSSL reads from and writes to: reads come from the reader lent by
/// [`with_reader`] (`WouldBlock` outside it); writes go to the writer lent by
/// [`with_writer`] while the output buffer is empty, as far as it takes them at once, and
/// are appended to the output buffer otherwise (freed whenever it is drained).
#[derive(Debug)]
pub struct Transport {
    id: u64,
    out: Vec<u8>,
    sent: usize,
    /// A read reached the reader lent to this transport (see [`Transport::reader_reached`]).
    reached: bool,
    /// Bytes handed to OpenSSL so far.
    delivered: u64,
    /// Bytes written to lent writers so far.
    written_through: u64,
    /// Bytes OpenSSL wrote so far, to lent writers or to the output.
    produced: u64,
}

impl Default for Transport {
    fn default() -> Self {
        Transport::new()
    }
}

impl Transport {
    /// A transport with an identity of its own and no output.
    pub fn new() -> Transport {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Transport {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            out: Vec::new(),
            sent: 0,
            reached: false,
            delivered: 0,
            written_through: 0,
            produced: 0,
        }
    }

    /// Whether a read reached a reader lent to this transport since the last
    /// [`Transport::reset_reader_reached`]: then, if that reader gives at most one read
    /// per loan (as a blocking socket must), OpenSSL has all the input it will get.
    pub fn reader_reached(&self) -> bool {
        self.reached
    }

    /// The bytes read from lent readers (handed to OpenSSL) so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The bytes written straight to lent writers (not through the output) so far.
    pub fn written_through(&self) -> u64 {
        self.written_through
    }

    /// The bytes OpenSSL wrote so far, to lent writers or to the output.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Forgets that a lent reader was reached (before lending one).
    pub fn reset_reader_reached(&mut self) {
        self.reached = false;
    }

    /// Its identity, for [`with_reader`].
    pub fn id(&self) -> TransportId {
        TransportId(self.id)
    }

    /// The output not yet consumed.
    pub fn output(&self) -> &[u8] {
        self.out.get(self.sent..).unwrap_or_default()
    }

    /// Marks `n` bytes of the output as sent; the buffer is freed once all of it is.
    pub fn consume(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.out.len());
        if self.sent == self.out.len() {
            self.discard();
        }
    }

    /// Makes room for `additional` more bytes of output, so what follows is appended
    /// without moving what is there.
    pub fn reserve(&mut self, additional: usize) {
        self.out.reserve(additional);
    }

    /// Drops the output unsent, and frees its buffer.
    pub fn discard(&mut self) {
        self.out = Vec::new();
        self.sent = 0;
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(result) = use_lent(&LENT, self.id, |reader| reader.read(buf)) else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        self.reached = true;
        if let Ok(n) = result {
            self.delivered = self.delivered.wrapping_add(n as u64);
        }
        result
    }
}

impl Transport {
    /// Writes as much of `buf` as the writer lent to this transport takes at once, if one
    /// is lent and nothing waits in the output (which must go first). Returns how much it
    /// took; an error of the writer is left for the caller's next write of the output to
    /// find again (the bytes stay in the output).
    fn write_through(&mut self, buf: &[u8]) -> usize {
        if self.sent < self.out.len() {
            return 0;
        }
        match use_lent(&LENT_WRITER, self.id, |writer| writer.write(buf)) {
            Some(Ok(n)) => {
                let n = n.min(buf.len());
                self.written_through = self.written_through.wrapping_add(n as u64);
                n
            }
            Some(Err(_)) | None => 0,
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.produced = self.produced.wrapping_add(buf.len() as u64);
        let through = self.write_through(buf);
        let buf = buf.get(through..).unwrap_or_default();
        if buf.is_empty() {
            return Ok(through);
        }
        if self.sent > 0 && self.sent >= self.out.len() / 2 {
            // Keep the buffer from growing while the front drains.
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        self.out.extend_from_slice(buf);
        Ok(through + buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A loan in a thread-local slot: the transport's identity and the lent object.
type Lent<T> = Option<(u64, *mut T)>;
/// A thread-local slot of loans.
type Slot<T> = LocalKey<Cell<Lent<T>>>;

/// Runs `f` with `lent` in `slot` for the transport `id`; the slot's previous loan is
/// restored when `f` returns (or unwinds).
///
/// # Safety
/// `lent` must be valid for exclusive use (as a `&mut T`) until this returns: a loan is
/// used only while it is in the slot ([`use_lent`]), which is until then.
unsafe fn lend<T: ?Sized + 'static, R>(
    slot: &'static Slot<T>,
    id: u64,
    lent: *mut T,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore<T: ?Sized + 'static> {
        slot: &'static Slot<T>,
        previous: Lent<T>,
    }
    impl<T: ?Sized + 'static> Drop for Restore<T> {
        fn drop(&mut self) {
            let previous = self.previous.take();
            self.slot.with(|slot| slot.set(previous));
        }
    }
    let previous = slot.with(|cell| cell.replace(Some((id, lent))));
    let _restore = Restore { slot, previous };
    f()
}

/// Runs `f` on the object lent to the transport `id` in `slot`, if there is one (`None`
/// otherwise). It is taken out of the slot while `f` runs, so a reentrant use finds none
/// rather than making a second `&mut` to it.
fn use_lent<T: ?Sized + 'static, R>(
    slot: &'static Slot<T>,
    id: u64,
    f: impl FnOnce(&mut T) -> R,
) -> Option<R> {
    slot.with(|cell| {
        let (owner, lent) = cell.take()?;
        if owner != id {
            cell.set(Some((owner, lent)));
            return None;
        }
        // SAFETY: the pointer was put in the slot by `lend`, whose caller guarantees it is
        // valid for exclusive use while it is there (`lend` restores the previous loan on
        // return and on unwinding). It was taken out of the slot above, so this is its only
        // use: no other `&mut` exists while `f` runs.
        let result = f(unsafe { &mut *lent });
        cell.set(Some((owner, lent)));
        Some(result)
    })
}

/// Runs `f` with `reader` lent to the transport `id`: its reads (and only its) come from
/// `reader` until `f` returns.
pub fn with_reader<R>(id: TransportId, reader: &mut dyn Read, f: impl FnOnce() -> R) -> R {
    let reader: *mut (dyn Read + '_) = reader;
    // SAFETY: only the lifetime bound of the trait object changes (same layout). The
    // pointer comes from a `&mut` borrowed for this whole call, and `lend` keeps it in the
    // slot only until it returns, within that borrow.
    unsafe {
        let reader: *mut (dyn Read + 'static) = std::mem::transmute(reader);
        lend(&LENT, id.0, reader, f)
    }
}

/// Runs `f` with `io` lent to the transport `id` as both its reader and its writer (see
/// [`with_reader`] and [`with_writer`]): one object for the two directions of a socket.
pub fn with_reader_and_writer<T: Read + Write, R>(
    id: TransportId,
    io: &mut T,
    f: impl FnOnce() -> R,
) -> R {
    let io: *mut T = io;
    let reader: *mut (dyn Read + '_) = io;
    let writer: *mut (dyn Write + '_) = io;
    // SAFETY: as for `with_reader`: only the lifetime bounds change, and both loans end
    // within the borrow of `io`. The two pointers are to one object, but each is used
    // only while taken out of its slot (`use_lent`), and OpenSSL never reads inside a
    // write or writes inside a read, so no two references to it are alive at once.
    unsafe {
        let reader: *mut (dyn Read + 'static) = std::mem::transmute(reader);
        let writer: *mut (dyn Write + 'static) = std::mem::transmute(writer);
        lend(&LENT, id.0, reader, || lend(&LENT_WRITER, id.0, writer, f))
    }
}

/// Runs `f` with `writer` lent to the transport `id`: while its output is empty, what
/// OpenSSL writes (and only through it) goes straight to `writer`, as far as `writer`
/// takes it at once; the rest, and everything after it, goes to the output.
pub fn with_writer<R>(id: TransportId, writer: &mut dyn Write, f: impl FnOnce() -> R) -> R {
    let writer: *mut (dyn Write + '_) = writer;
    // SAFETY: as for `with_reader`: only the lifetime bound changes, and the loan ends
    // within the borrow of `writer`.
    unsafe {
        let writer: *mut (dyn Write + 'static) = std::mem::transmute(writer);
        lend(&LENT_WRITER, id.0, writer, f)
    }
}
