//! One deadline per wait, and `poll(2)` on one socket until it.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::error::Error;

/// A point in time after which a wait gives up; `None` inside never expires.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// `timeout` from now; `Duration::MAX` (or an overflowing sum) never expires.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// The time left: `None` for no limit, an error once it is zero.
    pub(crate) fn remaining(&self, what: &str) -> Result<Option<Duration>, Error> {
        match self.0 {
            None => Ok(None),
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(Error::Timeout(what.to_string()))
                } else {
                    Ok(Some(left))
                }
            }
        }
    }
}

impl Deadline {
    /// The earlier of two deadlines.
    pub(crate) fn min(self, other: Deadline) -> Deadline {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Deadline(Some(a.min(b))),
            (Some(a), None) | (None, Some(a)) => Deadline(Some(a)),
            (None, None) => Deadline(None),
        }
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
