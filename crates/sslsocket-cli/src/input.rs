//! Input files read within a time limit. Opening a FIFO nobody writes to, or reading a
//! device or network file system that gives nothing, blocks in the kernel where no
//! deadline reaches; the contract says no input makes the tool hang past `--timeout`.
//! So the reading (and parsing) runs on a thread of its own, and the command waits for it
//! only so long (round 36: `connect --cafile FIFO --timeout 1000` never ended).

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, Result};

/// How long a command without `--timeout` (`serve`, and its reloads on SIGHUP) waits for
/// its input files: the contract's default `--timeout`.
pub const INPUT_WAIT: Duration = Duration::from_secs(10);

/// `load`'s result, or an error when it has not finished within `limit` (its thread is
/// left to the process's exit).
pub fn within<T: Send + 'static>(
    limit: Duration,
    load: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (done, result) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name("sslsocket-input".into())
        .spawn(move || {
            let _ = done.send(load());
        })
        .map_err(|e| anyhow!("cannot start reading the input files: {e}"))?;
    match result.recv_timeout(limit) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(anyhow!(
            "the input files were not read within {} ms (a FIFO or device that gives \
             nothing?)",
            limit.as_millis()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(anyhow!("reading the input files stopped unexpectedly"))
        }
    }
}
