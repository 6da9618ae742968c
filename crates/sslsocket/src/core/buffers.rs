//! What the application reads: decrypted bytes, the line API (`can_read_line`, `read_line`),
//! peeking, counters. Nothing received from a peer that was not accepted is ever readable.

use super::*;

impl SslCore {
    /// Reads decrypted (or, in plain mode, plain) data. Returns 0 when nothing is buffered.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        if !self.is_readable() {
            return 0;
        }
        let window = buf.len().min(self.read_window());
        let buf = buf.get_mut(..window).unwrap_or_default();
        self.note_reveal();
        let engine = self.session.as_ref().map_or(0, |s| s.plaintext_len());
        if self.plain_in.is_empty() && engine == 0 {
            // Nothing decrypted (the common case when a reader polls before data came).
            return 0;
        }
        // Input the engine refused (its plaintext buffer was full) waits for room; when it
        // took everything, the read that brought it processed it already.
        let held_back = !self.wants_read_holding(self.plain_in.len() + engine);
        let mut done = 0;
        while done < buf.len() && !self.plain_in.is_empty() {
            let (front, _) = self.plain_in.as_slices();
            let n = front.len().min(buf.len() - done);
            if let (Some(dst), Some(src)) = (buf.get_mut(done..done + n), front.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.plain_in.drain(..n);
            self.line_scanned = self.line_scanned.saturating_sub(n);
            done += n;
        }
        self.release_plain_in();
        if let Some(session) = self.session.as_mut() {
            while done < buf.len() {
                match session.read_plain(buf.get_mut(done..).unwrap_or_default()) {
                    PlainRead::Data(0) | PlainRead::WouldBlock | PlainRead::Closed => break,
                    PlainRead::Data(n) => done += n,
                }
            }
        }
        if held_back && done > 0 && self.session.is_some() && !self.eof && !self.is_failed() {
            // Room in the plaintext buffer: the engine may process input it had to hold.
            self.process();
        }
        done
    }

    /// Decrypted bytes ready to read (Qt's `bytesAvailable`): never more than the read
    /// buffer size set with `set_read_buffer_size` (see [`read_window`](Self::read_window)).
    pub fn bytes_available(&self) -> usize {
        if !self.is_readable() {
            return 0;
        }
        self.held().min(self.read_window())
    }

    /// Decrypted bytes the core holds, seen by the application or not.
    fn held(&self) -> usize {
        self.plain_in.len() + self.session.as_ref().map_or(0, |s| s.plaintext_len())
    }

    /// How much of what is decrypted the application sees at a time: all of it, or with a
    /// read buffer size set (Qt's `setReadBufferSize`), that many bytes. A record decrypts
    /// whole (up to 16 KiB), so the core may hold more than the limit; as in Qt, where
    /// OpenSSL keeps the rest of a record until there is room, what lies past the limit is
    /// neither counted nor read until the application read what lies before it.
    pub fn read_window(&self) -> usize {
        if self.read_buffer_size == 0 {
            usize::MAX
        } else {
            self.read_buffer_size
        }
    }

    /// Before the application takes data: if more is held than it may see, what it takes
    /// makes the rest visible, which is new data for its next wait (Qt emits `readyRead`
    /// when it moves the rest of a record from OpenSSL into its buffer).
    fn note_reveal(&mut self) {
        if self.read_buffer_size > 0 {
            self.revealed |= self.held() > self.read_buffer_size;
        }
    }

    /// Whether reading made data visible that was held back since the last call (see
    /// [`read_window`](Self::read_window)) and it is still there: a `wait_for_ready_read`
    /// has new data at once.
    pub fn take_revealed(&mut self) -> bool {
        std::mem::take(&mut self.revealed) && self.bytes_available() > 0
    }

    /// The start of a `wait_for_bytes_written`: as in Qt, an error at once when there is
    /// nothing to wait for (nothing written since the last wait or flush, and nothing
    /// waiting to be sent), so that Qt's drain loop ends.
    pub fn begin_wait_for_bytes_written(&mut self) -> Result<(), Error> {
        let written = std::mem::take(&mut self.written_since_wait);
        if self.state == SocketState::UnconnectedState {
            // Qt: false once the socket is unconnected, whatever was written (round 36:
            // Ok on tokio after a close that delivered everything); a loss is the error.
            return Err(self
                .write_verdict()
                .err()
                .unwrap_or_else(|| ApiMisuse("the socket is not connected".into()).into()));
        }
        if !written && self.bytes_to_write() == 0 && !self.wants_write() {
            return Err(ApiMisuse("nothing was written to wait for".into()).into());
        }
        Ok(())
    }

    /// Drops everything received and not read (Qt's `close` empties the read buffer).
    pub fn discard_input(&mut self) {
        self.plain_in = VecDeque::new();
        self.line_scanned = 0;
        if let Some(session) = self.session.as_mut() {
            let mut scratch = [0u8; 4096];
            while let PlainRead::Data(n) = session.read_plain(&mut scratch) {
                if n == 0 {
                    break;
                }
            }
        }
    }

    /// Application bytes written but not yet handed to TLS / the wire (Qt's `bytesToWrite`).
    #[inline]
    pub fn bytes_to_write(&self) -> usize {
        self.queued.len() + self.plain_out.len() + self.early.len()
    }

    /// TLS bytes waiting to be written (Qt's `encryptedBytesToWrite`); 0 once the
    /// connection is closed, as Qt's closed plain socket holds nothing (round 36: the
    /// engine's unsent bytes were still counted; what was lost is reported as an error).
    pub fn encrypted_bytes_to_write(&self) -> usize {
        if self.state == SocketState::UnconnectedState {
            return 0;
        }
        self.session.as_ref().map_or(0, |s| s.tls_bytes_to_write())
    }

    /// TLS bytes received and not yet decrypted (Qt's `encryptedBytesAvailable`): the
    /// part of a record that has arrived while the rest has not (every whole record is
    /// decrypted as it arrives). The rustls backend counts them; OpenSSL keeps its
    /// read-ahead to itself, so 0 there (and for rustls's buffered connection, used for
    /// keying material export). 0 once the socket is unconnected.
    pub fn encrypted_bytes_available(&self) -> usize {
        if self.state == SocketState::UnconnectedState {
            return 0;
        }
        self.session.as_ref().map_or(0, |s| s.tls_bytes_buffered())
    }

    /// Moves all decrypted bytes from the engine into the core's own buffer, so lines
    /// and peeks can see across record boundaries.
    pub(super) fn pull_all(&mut self) {
        if !self.is_readable() {
            return;
        }
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match session.read_plain(&mut buf) {
                PlainRead::Data(n) if n > 0 => {
                    self.plain_in.extend(buf.get(..n).unwrap_or_default())
                }
                _ => break,
            }
        }
    }

    /// The buffered bytes at the front, moving decrypted bytes into the core's buffer when
    /// it is empty (for `BufRead`).
    pub fn fill_buf(&mut self) -> &[u8] {
        if !self.is_readable() {
            return &[];
        }
        if self.plain_in.is_empty() {
            if let Some(session) = self.session.as_mut() {
                let mut buf = [0u8; 16 * 1024];
                if let PlainRead::Data(n) = session.read_plain(&mut buf) {
                    self.plain_in.extend(buf.get(..n).unwrap_or_default());
                }
            }
        }
        let window = self.read_window();
        let front = self.plain_in.as_slices().0;
        front.get(..window).unwrap_or(front)
    }

    /// Drops `amount` bytes from the front of the buffer (for `BufRead`).
    pub fn consume(&mut self, amount: usize) {
        self.note_reveal();
        let n = amount.min(self.plain_in.len());
        self.plain_in.drain(..n);
        self.release_plain_in();
        self.line_scanned = self.line_scanned.saturating_sub(n);
        if n > 0 && self.session.is_some() && !self.eof && !self.is_failed() {
            self.process();
        }
    }

    /// Frees the core's plaintext buffer once it is empty: a long line, a peek or a
    /// `BufRead` caller may have grown it to the size of everything received at once, and
    /// an idle connection must not keep that (the README's promise on idle memory).
    fn release_plain_in(&mut self) {
        if self.plain_in.is_empty() && self.plain_in.capacity() > 0 {
            self.plain_in = VecDeque::new();
        }
    }

    /// Whether a whole line (ending in `\n`) is buffered (Qt's `canReadLine`).
    pub fn can_read_line(&mut self) -> bool {
        self.pull_all();
        let window = self.read_window();
        self.line_end().is_some_and(|end| end <= window)
    }

    /// The index just past the first `\n` buffered, scanning only bytes not scanned
    /// before (so polling `can_read_line` while a long line arrives stays linear).
    pub(super) fn line_end(&mut self) -> Option<usize> {
        if !self.is_readable() {
            return None;
        }
        let start = self.line_scanned.min(self.plain_in.len());
        match self.plain_in.range(start..).position(|b| *b == b'\n') {
            Some(offset) => Some(start + offset + 1),
            None => {
                self.line_scanned = self.plain_in.len();
                None
            }
        }
    }

    /// Whether received data may be handed to the application: in plain mode, or once the
    /// peer was accepted (and still after the connection ended). Nothing received before
    /// acceptance (while paused, or from a peer that was then refused) is ever readable.
    pub(super) fn is_readable(&self) -> bool {
        self.session.is_none() || self.accepted
    }

    /// Reads one line including its `\n`, at most `max - 1` bytes as Qt's
    /// `readLine(maxSize)` (room for its terminating NUL; so `max` 1 reads nothing), and
    /// without a limit for `max` 0; without a whole line, what is buffered. (Round 34: it
    /// read `max` bytes.)
    pub fn read_line(&mut self, max: usize) -> Vec<u8> {
        self.pull_all();
        if !self.is_readable() || max == 1 {
            return Vec::new();
        }
        self.note_reveal();
        let limit = if max == 0 { usize::MAX } else { max - 1 };
        let end = self
            .line_end()
            .unwrap_or(self.plain_in.len())
            .min(limit)
            .min(self.read_window());
        let line: Vec<u8> = self.plain_in.drain(..end).collect();
        self.release_plain_in();
        self.line_scanned = self.line_scanned.saturating_sub(end);
        if !line.is_empty() && self.session.is_some() && !self.eof && !self.is_failed() {
            self.process();
        }
        line
    }

    /// Up to `max` buffered bytes, without consuming them (Qt's `peek`).
    pub fn peek(&mut self, max: usize) -> Vec<u8> {
        self.pull_all();
        if !self.is_readable() {
            return Vec::new();
        }
        self.plain_in
            .iter()
            .take(max.min(self.read_window()))
            .copied()
            .collect()
    }

    /// Whether nothing is buffered and nothing more can arrive (Qt's `atEnd`).
    pub fn at_end(&self) -> bool {
        self.bytes_available() == 0
            && (self.eof || self.is_failed() || self.state == SocketState::UnconnectedState)
    }
}

/// A byte queue for what waits rarely (written before the connection or the handshake,
/// or held back by the engine): one pointer while empty, its storage freed whenever it
/// drains, so a core keeps neither room nor storage for it while nothing waits.
#[derive(Default)]
// Boxed on purpose: one pointer inline instead of four words, in every core.
#[allow(clippy::box_collection)]
pub(super) struct ByteQueue(Option<Box<VecDeque<u8>>>);

impl ByteQueue {
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len())
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(super) fn extend(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.0.get_or_insert_with(Box::default).extend(data);
        }
    }

    /// Moves all of `other` to the end of this queue.
    pub(super) fn append(&mut self, other: &mut ByteQueue) {
        let Some(mut theirs) = other.0.take() else {
            return;
        };
        match self.0.as_mut() {
            Some(ours) => ours.append(&mut theirs),
            None => self.0 = Some(theirs),
        }
    }

    /// Moves all of it to the end of `to`.
    pub(super) fn move_into(&mut self, to: &mut VecDeque<u8>) {
        if let Some(mut ours) = self.0.take() {
            to.append(&mut ours);
        }
    }

    pub(super) fn clear(&mut self) {
        self.0 = None;
    }

    /// The first contiguous part of what waits.
    pub(super) fn front(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |q| q.as_slices().0)
    }

    /// Removes the first `n` bytes (all, if fewer wait).
    pub(super) fn consume(&mut self, n: usize) {
        if let Some(q) = self.0.as_mut() {
            if n >= q.len() {
                self.0 = None;
            } else {
                q.drain(..n);
            }
        }
    }
}
