//! `connect -v`: every library event on stderr, one line each, with the milliseconds
//! since start (`+3.1ms Connected`).

use std::io::Write;
use std::time::{Duration, Instant};

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::SslEvent;

/// The longest a verbose wait lasts before the events that came meanwhile are written.
const STAMP_STEP: Duration = Duration::from_millis(10);

/// The events drained from a socket, written when `--verbose` is on.
#[derive(Clone, Copy, Debug)]
pub struct EventLog {
    started: Instant,
    on: bool,
}

impl EventLog {
    /// A log whose times count from now; silent unless `on`.
    pub fn new(on: bool) -> EventLog {
        EventLog {
            started: Instant::now(),
            on,
        }
    }

    /// How long a wait may last before the events that came meanwhile are written: a
    /// line's time is that of its event to within this (`step` when nothing is written).
    pub fn step(&self, step: Duration) -> Duration {
        if self.on {
            step.min(STAMP_STEP)
        } else {
            step
        }
    }

    /// Takes the socket's pending events, writes them, and returns them.
    pub fn drain(&self, socket: &mut SslSocket) -> Vec<SslEvent> {
        let events = socket.take_events();
        if self.on && !events.is_empty() {
            let at = self.started.elapsed().as_secs_f64() * 1000.0;
            let mut err = std::io::stderr().lock();
            for event in &events {
                let _ = writeln!(err, "+{at:.1}ms {}", describe(event));
            }
        }
        events
    }
}

/// One event as a line: its name, then what it carries.
pub fn describe(event: &SslEvent) -> String {
    match event {
        SslEvent::StateChanged(state) => format!("StateChanged {state:?}"),
        SslEvent::ModeChanged(mode) => format!("ModeChanged {mode:?}"),
        SslEvent::PeerVerifyError(error) => format!("PeerVerifyError {}", error_line(error)),
        SslEvent::SslErrors(errors) => {
            let list: Vec<String> = errors.iter().map(error_line).collect();
            format!("SslErrors [{}]", list.join("; "))
        }
        SslEvent::HandshakeInterruptedOnError(error) => {
            format!("HandshakeInterruptedOnError {}", error_line(error))
        }
        SslEvent::AlertSent(alert) => {
            format!(
                "AlertSent {:?} {:?} {}",
                alert.level, alert.kind, alert.description
            )
        }
        SslEvent::AlertReceived(alert) => format!(
            "AlertReceived {:?} {:?} {}",
            alert.level, alert.kind, alert.description
        ),
        SslEvent::BytesWritten(n) => format!("BytesWritten {n}"),
        SslEvent::EncryptedBytesWritten(n) => format!("EncryptedBytesWritten {n}"),
        SslEvent::ErrorOccurred(error) => format!("ErrorOccurred {error}"),
        other => format!("{other:?}"),
    }
}

fn error_line(error: &sslsocket::SslError) -> String {
    match error.certificate() {
        Some(cert) => format!("{} {}", error.error().name(), cert.subject_rfc4514()),
        None => error.error().name().to_string(),
    }
}
