//! Per-thread spare buffers: a session that needs a small buffer for one step (a small
//! message's plaintext, a record's input or output) takes the thread's spare one and gives
//! it back when done, so a small message costs no allocation, and an idle session holds no
//! buffer of its own. One buffer per [`Slot`] and thread; a thread that is being torn down
//! (or a reentrant use) simply finds none and allocates.

use std::cell::RefCell;

/// Which spare buffer: each use has its own, with its own rule for what is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The rustls backend's input room (its `len` initialized).
    RustlsInput,
    /// The rustls backend's output room (its `len` initialized).
    RustlsOutput,
    /// The rustls backend's output room for one large write (its `len` initialized).
    BulkOutput,
    /// The OpenSSL backend's plaintext buffer (empty).
    #[cfg(feature = "openssl")]
    Plain,
}

const SLOTS: usize = 4;

thread_local! {
    static SPARE: RefCell<[Vec<u8>; SLOTS]> = const {
        RefCell::new([Vec::new(), Vec::new(), Vec::new(), Vec::new()])
    };
}

fn index(slot: Slot) -> usize {
    match slot {
        Slot::RustlsInput => 0,
        Slot::RustlsOutput => 1,
        #[cfg(feature = "openssl")]
        Slot::Plain => 2,
        Slot::BulkOutput => 3,
    }
}

fn with(f: impl FnOnce(&mut Vec<u8>), slot: Slot) {
    // Unavailable only while the thread is being torn down (or re-entered): then the
    // buffers are simply not shared.
    let _ = SPARE.try_with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut() {
            if let Some(buf) = spare.get_mut(index(slot)) {
                f(buf);
            }
        }
    });
}

/// The thread's spare buffer of `slot`, as it was given (empty, no capacity, if none).
pub(crate) fn take(slot: Slot) -> Vec<u8> {
    let mut buf = Vec::new();
    with(|spare| buf = std::mem::take(spare), slot);
    buf
}

/// Keeps `buf` as the thread's spare buffer of `slot`, unless one is kept already (then
/// `buf` is freed). The caller decides which buffers are worth keeping (small ones).
pub(crate) fn give(slot: Slot, buf: Vec<u8>) {
    if buf.capacity() == 0 {
        return;
    }
    with(
        |spare| {
            if spare.capacity() == 0 {
                *spare = buf;
            }
        },
        slot,
    );
}
