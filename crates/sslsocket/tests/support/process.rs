//! A child process whose output is captured by reader threads, waited for under
//! deadlines and killed on drop; the plumbing under the OpenSSL peers.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::{SupportError, SupportResult};

/// Polls `condition` every few milliseconds until it holds (→ `true`) or `deadline` passes
/// (→ `false`, after one last check).
pub fn wait_until(deadline: Instant, mut condition: impl FnMut() -> bool) -> bool {
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
}

/// What a finished (or killed) process printed.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The deadline passed and the process was killed.
    pub timed_out: bool,
}

impl RunOutput {
    /// Exited by itself with status 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// stdout followed by stderr.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl fmt::Display for RunOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let timed_out = if self.timed_out {
            ", killed after timeout"
        } else {
            ""
        };
        write!(
            f,
            "{}{timed_out}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A child process with stdin piped and stdout/stderr drained by threads into buffers.
/// Killed and reaped on drop.
pub struct PeerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    capture: Arc<Capture>,
    command: String,
}

impl PeerProcess {
    pub fn spawn<S: AsRef<OsStr>>(program: &str, args: &[S]) -> SupportResult<Self> {
        Self::spawn_with_env(OsStr::new(program), args, &[])
    }

    /// Like [`PeerProcess::spawn`], with these environment variables set for the child.
    pub fn spawn_with_env<S: AsRef<OsStr>>(
        program: &OsStr,
        args: &[S],
        vars: &[(&str, OsString)],
    ) -> SupportResult<Self> {
        let command = std::iter::once(program.to_string_lossy().into_owned())
            .chain(
                args.iter()
                    .map(|a| a.as_ref().to_string_lossy().into_owned()),
            )
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new(program)
            .args(args)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SupportError::new(format!("cannot spawn `{command}`: {e}")))?;
        let capture = Arc::new(Capture::default());
        if let Some(stdout) = child.stdout.take() {
            capture.add_reader(stdout, Stream::Stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            capture.add_reader(stderr, Stream::Stderr);
        }
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            capture,
            command,
        })
    }

    /// The process id (to send it a signal).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The command line, for messages.
    pub fn command(&self) -> &str {
        &self.command
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.capture.lock().stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.capture.lock().stderr).into_owned()
    }

    /// stdout and stderr so far, in arrival order.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.capture.lock().combined).into_owned()
    }

    pub fn write_stdin(&mut self, data: &[u8]) -> SupportResult<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| SupportError::new(format!("stdin of `{}` is closed", self.command)))?;
        stdin.write_all(data)?;
        stdin.flush()?;
        Ok(())
    }

    /// Closes stdin (EOF for the process).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits until `needle` appears in stdout or stderr; fails with the output on timeout
    /// or when the process closed both streams without printing it. Each stream is searched
    /// on its own: in the interleaved copy a line of one can be cut by a chunk of the other.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> SupportResult<()> {
        let needle_bytes = needle.as_bytes();
        let has = |stream: &[u8]| {
            stream
                .windows(needle_bytes.len().max(1))
                .any(|w| w == needle_bytes)
        };
        let found = |s: &Streams| has(&s.stdout) || has(&s.stderr);
        self.wait_for_match(&format!("{needle:?}"), Instant::now() + timeout, found)
    }

    /// Waits until stdout has a line that is exactly `line` (trailing whitespace aside);
    /// fails with the output at `deadline` or when the process exits without printing it.
    pub fn wait_for_stdout_line(&self, line: &str, deadline: Instant) -> SupportResult<()> {
        let found = |s: &Streams| {
            String::from_utf8_lossy(&s.stdout)
                .lines()
                .any(|l| l.trim_end() == line)
        };
        self.wait_for_match(&format!("the line {line:?}"), deadline, found)
    }

    /// Waits until stdout has a line starting with `prefix` and returns the rest of the
    /// first such line (trimmed); fails with the output at `deadline` or when the process
    /// exits without printing it.
    pub fn wait_for_stdout_value(&self, prefix: &str, deadline: Instant) -> SupportResult<String> {
        let value = |stdout: &[u8]| {
            String::from_utf8_lossy(stdout)
                .lines()
                .find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_owned()))
        };
        self.wait_for_match(&format!("a line starting {prefix:?}"), deadline, |s| {
            value(&s.stdout).is_some()
        })?;
        value(&self.capture.lock().stdout).ok_or_else(|| {
            SupportError::new(format!("`{}`: no line starting {prefix:?}", self.command))
        })
    }

    /// The rest of every stdout line starting with `prefix`, in order.
    pub fn stdout_values(&self, prefix: &str) -> Vec<String> {
        self.stdout()
            .lines()
            .filter_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_owned()))
            .collect()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes stdin, waits at most `timeout` for the exit (then kills), and returns the
    /// status and everything printed.
    pub fn wait(&mut self, timeout: Duration) -> SupportResult<RunOutput> {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        let mut status = None;
        let mut wait_error = None;
        wait_until(deadline, || match self.child.try_wait() {
            Ok(s) => {
                status = s;
                s.is_some()
            }
            Err(e) => {
                wait_error = Some(e);
                true
            }
        });
        if let Some(e) = wait_error {
            return Err(SupportError::new(format!(
                "waiting for `{}`: {e}",
                self.command
            )));
        }
        let timed_out = status.is_none();
        let status = match status {
            Some(s) => s,
            None => {
                self.kill();
                self.child.wait()?
            }
        };
        // The streams close right after the exit; give the readers a moment to finish.
        self.capture
            .wait_for(Instant::now() + Duration::from_secs(2), |_| false);
        Ok(RunOutput {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
            timed_out,
        })
    }

    pub fn kill(&mut self) {
        // Fails only if it already exited, which is what we want anyway.
        let _ = self.child.kill();
    }

    fn wait_for_match(
        &self,
        what: &str,
        deadline: Instant,
        condition: impl Fn(&Streams) -> bool,
    ) -> SupportResult<()> {
        match self.capture.wait_for(deadline, condition) {
            Wait::Found => Ok(()),
            outcome => Err(SupportError::new(format!(
                "`{}` {} without printing {what}:\n{}",
                self.command,
                if outcome == Wait::Closed {
                    "exited"
                } else {
                    "timed out"
                },
                self.output()
            ))),
        }
    }

    /// Writes `data` to stdin from a thread (so a child that does not read cannot block
    /// us), then closes stdin.
    pub(super) fn feed_and_close_stdin(&mut self, data: &[u8]) {
        if let Some(mut stdin) = self.stdin.take() {
            let data = data.to_vec();
            thread::spawn(move || {
                // A child that exits without reading gives EPIPE; its output tells why.
                let _ = stdin.write_all(&data);
            });
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Found,
    /// Both streams closed (the process exited) without the condition holding.
    Closed,
    TimedOut,
}

#[derive(Default)]
struct Streams {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    combined: Vec<u8>,
    open: usize,
}

/// Output buffers filled by reader threads; `changed` is signalled on every chunk and on
/// every stream closing.
#[derive(Default)]
struct Capture {
    streams: Mutex<Streams>,
    changed: Condvar,
}

impl Capture {
    fn lock(&self) -> MutexGuard<'_, Streams> {
        // The readers only append bytes under the lock, so a poisoned lock (a reader that
        // panicked) still holds consistent buffers; reading them is safe.
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add_reader(self: &Arc<Self>, mut reader: impl Read + Send + 'static, stream: Stream) {
        self.lock().open += 1;
        let capture = Arc::clone(self);
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let chunk = buf.get(..n).unwrap_or_default();
                        let mut s = capture.lock();
                        match stream {
                            Stream::Stdout => s.stdout.extend_from_slice(chunk),
                            Stream::Stderr => s.stderr.extend_from_slice(chunk),
                        }
                        s.combined.extend_from_slice(chunk);
                        drop(s);
                        capture.changed.notify_all();
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let mut s = capture.lock();
            s.open = s.open.saturating_sub(1);
            drop(s);
            capture.changed.notify_all();
        });
    }

    /// Waits until `condition` holds, both streams are closed, or `deadline` passes.
    fn wait_for(&self, deadline: Instant, condition: impl Fn(&Streams) -> bool) -> Wait {
        let mut s = self.lock();
        loop {
            if condition(&s) {
                return Wait::Found;
            }
            if s.open == 0 {
                return Wait::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Wait::TimedOut;
            }
            s = match self.changed.wait_timeout(s, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}
