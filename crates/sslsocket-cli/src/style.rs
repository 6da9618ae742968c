//! Human output: colour only on a terminal and never with `NO_COLOR` set, protocol names as
//! people write them, and a progress line on stderr for waits that can take a while.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use sslsocket::SslProtocol;

/// How long a wait runs before its progress line appears.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// Colours for one stream: on only when it is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
#[derive(Clone, Copy, Debug)]
pub struct Paint {
    on: bool,
}

impl Paint {
    /// For stdout.
    pub fn stdout() -> Paint {
        Paint {
            on: std::io::stdout().is_terminal() && !no_color(),
        }
    }

    /// Good news (green).
    pub fn good(&self, text: &str) -> String {
        self.paint(AnsiColor::Green.on_default(), text)
    }

    /// Bad news (bold red).
    pub fn bad(&self, text: &str) -> String {
        self.paint(AnsiColor::Red.on_default().bold(), text)
    }

    /// Something to look at (yellow).
    pub fn warn(&self, text: &str) -> String {
        self.paint(AnsiColor::Yellow.on_default(), text)
    }

    /// A heading (bold).
    pub fn head(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    /// Less important (dimmed).
    pub fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.on {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }
}

/// `NO_COLOR` is set to something.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether progress lines may be written: stderr is a terminal.
pub fn progress_enabled() -> bool {
    std::io::stderr().is_terminal()
}

/// A protocol as people write it (`TLS 1.3`); the contract's names stay in JSON.
pub fn protocol_name(protocol: SslProtocol) -> String {
    match protocol {
        SslProtocol::TlsV1_0 => "TLS 1.0".into(),
        SslProtocol::TlsV1_1 => "TLS 1.1".into(),
        SslProtocol::TlsV1_2 => "TLS 1.2".into(),
        SslProtocol::TlsV1_3 => "TLS 1.3".into(),
        SslProtocol::UnknownProtocol => "none".into(),
        other => other.to_string(),
    }
}

/// A progress line on stderr (`connecting to example.org:443...`) that appears only when
/// the wait lasts longer than a second, only on a terminal, and is erased when the wait
/// ends (drop).
pub struct Progress {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the timer for `message`; does nothing when `enabled` is false.
    pub fn start(message: String, enabled: bool) -> Progress {
        if !enabled {
            return Progress {
                stop: None,
                thread: None,
            };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sslsocket-progress".into())
            .spawn(move || {
                if stopped.recv_timeout(PROGRESS_AFTER) != Err(mpsc::RecvTimeoutError::Timeout) {
                    return;
                }
                let mut err = std::io::stderr();
                let _ = write!(err, "{message}...");
                let _ = err.flush();
                // Until the wait ends (a message, or the sender dropped).
                let _ = stopped.recv();
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            })
            .ok();
        Progress {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `text` as it may go to a terminal: each control character as `\\XX`, as OpenSSL prints
/// names (`sslsocket::cert::escape_controls`). For what a peer chose (a certificate's names
/// and extension values, the SNI a client sent): a remote party must not write escape
/// sequences or forged lines to the user's terminal (round 34: they went out raw). JSON
/// output escapes them itself.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    sslsocket::cert::escape_controls(text)
}

/// A peer's text for a terminal, lines and tabs kept (a CR only before its LF): every
/// other control character escaped as [`printable`] does, so the peer's bytes cannot move
/// the cursor or overwrite the report's own lines (round 36: `connect --send` printed them
/// raw, and an escape sequence rewrote the verification verdict above).
pub fn printable_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        let kept = c == '\n' || c == '\t' || (c == '\r' && chars.peek() == Some(&'\n'));
        if kept {
            out.push(c);
        } else {
            out.push_str(&printable(c.encode_utf8(&mut buf)));
        }
    }
    out
}
