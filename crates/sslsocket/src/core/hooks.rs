//! Decisions taken synchronously inside the handshake.

use crate::ssl_error::SslError;

/// What to do about verification errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Apply the socket's ignore list (set before the handshake): Qt's default.
    #[default]
    UsePolicy,
    /// Dangerous: accept these errors.
    Ignore,
    /// Refuse the peer: the handshake fails.
    Abort,
    /// Stop the handshake until `resume()` or `abort()` (Qt's `PauseOnSslErrors`).
    Pause,
}

/// Hooks called during the handshake, where Qt emits a signal whose slot must decide at
/// once (call `ignoreSslErrors()` inside the slot). The defaults follow Qt.
pub trait SslHooks: Send + Sync {
    /// Called once with every verification error found (Qt's `sslErrors` slot).
    fn ssl_errors(&self, _errors: &[SslError]) -> Verdict {
        Verdict::UsePolicy
    }

    /// Called at the first error when `handshake_must_interrupt_on_error` is set
    /// (Qt's `handshakeInterruptedOnError` slot); `Ignore` continues the handshake.
    fn handshake_interrupted(&self, _error: &SslError) -> Verdict {
        Verdict::Abort
    }
}
