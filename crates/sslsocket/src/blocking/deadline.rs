//! One deadline per wait, and `poll(2)` on one socket until it.

use std::cell::Cell;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::error::Error;

/// A point in time after which a wait gives up.
///
/// The clock is read only where a limit needs it: a deadline that never expires reads it
/// never, one made with [`Deadline::from_first_wait`] once, when the call first has to
/// wait (a read or write that finds its data at hand costs no clock read).
#[derive(Clone, Debug)]
pub(crate) struct Deadline(Cell<Limit>);

/// A [`Deadline`] kept in a socket: a plain value (no `Cell`), so the socket stays `Sync`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FixedDeadline(Limit);

impl From<FixedDeadline> for Deadline {
    fn from(fixed: FixedDeadline) -> Deadline {
        Deadline(Cell::new(fixed.0))
    }
}

#[derive(Clone, Copy, Debug)]
enum Limit {
    Never,
    At(Instant),
    /// This long from the first time the time left is asked for.
    FromFirstWait(Duration),
}

impl Deadline {
    /// `timeout` from now; `Duration::MAX` (or an overflowing sum) never expires.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        if timeout == Duration::MAX {
            return Deadline(Cell::new(Limit::Never));
        }
        Deadline(Cell::new(Deadline::from_now(timeout)))
    }

    /// `timeout` from the moment the call first waits (the blocking I/O calls' timeout:
    /// like a socket's own receive timeout, it bounds waiting for the peer, not the
    /// non-blocking work before the first wait); `Duration::MAX` never expires.
    pub(crate) fn from_first_wait(timeout: Duration) -> Deadline {
        if timeout == Duration::MAX {
            return Deadline(Cell::new(Limit::Never));
        }
        Deadline(Cell::new(Limit::FromFirstWait(timeout)))
    }

    fn from_now(timeout: Duration) -> Limit {
        Instant::now()
            .checked_add(timeout)
            .map_or(Limit::Never, Limit::At)
    }

    /// The time left: `None` for no limit, an error once it is zero. A deadline counted
    /// from the first wait starts here.
    pub(crate) fn remaining(&self, what: &str) -> Result<Option<Duration>, Error> {
        let left = match self.0.get() {
            Limit::Never => return Ok(None),
            Limit::At(at) => at.saturating_duration_since(Instant::now()),
            Limit::FromFirstWait(timeout) => {
                self.0.set(Deadline::from_now(timeout));
                timeout
            }
        };
        if left.is_zero() {
            Err(Error::Timeout(what.to_string()))
        } else {
            Ok(Some(left))
        }
    }

    /// This deadline as a point in time, to keep beyond the call (one counted from the
    /// first wait starts now).
    pub(crate) fn fixed(&self) -> FixedDeadline {
        FixedDeadline(match self.0.get() {
            Limit::FromFirstWait(timeout) => Deadline::from_now(timeout),
            limit => limit,
        })
    }

    /// The earlier of two deadlines (one counted from the first wait starts now).
    pub(crate) fn min(&self, other: &Deadline) -> Deadline {
        let at = |limit: Limit| match limit {
            Limit::Never => None,
            Limit::At(at) => Some(at),
            Limit::FromFirstWait(timeout) => match Deadline::from_now(timeout) {
                Limit::At(at) => Some(at),
                _ => None,
            },
        };
        let limit = match (at(self.0.get()), at(other.0.get())) {
            (Some(a), Some(b)) => Limit::At(a.min(b)),
            (Some(a), None) | (None, Some(a)) => Limit::At(a),
            (None, None) => Limit::Never,
        };
        Deadline(Cell::new(limit))
    }
}

/// Waits until `fd` is readable (if `read`) or writable (if `write`), or the deadline.
/// An error or hang-up on the socket also ends the wait: the next read or write reports it.
pub(crate) fn wait(
    fd: BorrowedFd<'_>,
    read: bool,
    write: bool,
    deadline: &Deadline,
    what: &str,
) -> Result<(), Error> {
    let left = deadline.remaining(what)?;
    let mut flags = PollFlags::empty();
    if read {
        flags |= PollFlags::IN;
    }
    if write {
        flags |= PollFlags::OUT;
    }
    let timeout = left.map(|d| Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    let mut fds = [PollFd::new(&fd, flags)];
    loop {
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => return Err(Error::Timeout(what.to_string())),
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io("poll", e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_from_the_first_wait_gives_its_whole_timeout_then_counts_down() {
        let deadline = Deadline::from_first_wait(Duration::from_secs(3600));
        let first = deadline.remaining("test").ok().flatten();
        assert_eq!(first, Some(Duration::from_secs(3600)));
        let second = deadline.remaining("test").ok().flatten();
        assert!(second.is_some_and(|left| left <= Duration::from_secs(3600)));
    }

    #[test]
    fn zero_timeouts_expire_and_max_never_does() {
        assert!(Deadline::from_first_wait(Duration::ZERO)
            .remaining("test")
            .is_err());
        assert!(Deadline::after(Duration::ZERO).remaining("test").is_err());
        assert!(matches!(
            Deadline::from_first_wait(Duration::MAX).remaining("test"),
            Ok(None)
        ));
        assert!(matches!(
            Deadline::after(Duration::MAX).remaining("test"),
            Ok(None)
        ));
    }
}
