//! Decisions taken synchronously inside the handshake.

use std::fmt;

use zeroize::Zeroizing;

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

    /// Called when the handshake needs a pre-shared key (Qt's
    /// `preSharedKeyAuthenticationRequired` slot). A client sets the identity and the key
    /// (it may see the server's identity hint); a server sees the client's identity and
    /// sets the key. Leaving the key empty declines: no PSK is used, and a handshake that
    /// needs one fails. Only backends that list `SupportedFeature::Psk` call it, with one
    /// exception: a configuration that asks for pre-shared keys (a PSK suite, an identity
    /// hint, `set_pre_shared_key_authenticates_peer`) on a backend without PSK has it asked
    /// once with an empty authenticator at the handshake's start, and a key given then
    /// fails the handshake with a clear "not supported" error.
    fn pre_shared_key(&self, _authenticator: &mut PreSharedKeyAuthenticator) {}
}

/// The questions and answers of a pre-shared-key handshake (Qt's
/// `QSslPreSharedKeyAuthenticator`). The key is wiped on drop and never printed; equality
/// (Qt's `operator==`) compares the key in constant time.
#[derive(Clone, Default)]
pub struct PreSharedKeyAuthenticator {
    identity_hint: Vec<u8>,
    identity: Vec<u8>,
    pre_shared_key: Zeroizing<Vec<u8>>,
    maximum_identity_length: usize,
    maximum_pre_shared_key_length: usize,
}

impl PartialEq for PreSharedKeyAuthenticator {
    fn eq(&self, other: &PreSharedKeyAuthenticator) -> bool {
        use subtle::ConstantTimeEq;
        let same_key: bool = self
            .pre_shared_key
            .as_slice()
            .ct_eq(other.pre_shared_key.as_slice())
            .into();
        same_key
            && self.identity_hint == other.identity_hint
            && self.identity == other.identity
            && self.maximum_identity_length == other.maximum_identity_length
            && self.maximum_pre_shared_key_length == other.maximum_pre_shared_key_length
    }
}

impl Eq for PreSharedKeyAuthenticator {}

impl PreSharedKeyAuthenticator {
    /// A request with these limits: what the backend can carry.
    pub fn new(
        identity_hint: &[u8],
        identity: &[u8],
        maximum_identity_length: usize,
        maximum_pre_shared_key_length: usize,
    ) -> PreSharedKeyAuthenticator {
        PreSharedKeyAuthenticator {
            identity_hint: identity_hint.to_vec(),
            identity: identity.to_vec(),
            pre_shared_key: Zeroizing::new(Vec::new()),
            maximum_identity_length,
            maximum_pre_shared_key_length,
        }
    }

    /// The server's identity hint: on a client the one the server sent (empty when it sent
    /// none), on a server its own (Qt's `preSharedKeyIdentityHint`).
    pub fn identity_hint(&self) -> &[u8] {
        &self.identity_hint
    }

    /// The identity: the client's answer, or on a server what the client sent.
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// Sets the identity (client side); it is cut to `maximum_identity_length`.
    pub fn set_identity(&mut self, identity: &[u8]) {
        let len = identity.len().min(self.maximum_identity_length);
        self.identity = identity.get(..len).unwrap_or_default().to_vec();
    }

    /// The longest identity the backend can send.
    pub fn maximum_identity_length(&self) -> usize {
        self.maximum_identity_length
    }

    /// The key.
    pub fn pre_shared_key(&self) -> &[u8] {
        &self.pre_shared_key
    }

    /// Sets the key; it is cut to `maximum_pre_shared_key_length`.
    pub fn set_pre_shared_key(&mut self, key: &[u8]) {
        let len = key.len().min(self.maximum_pre_shared_key_length);
        self.pre_shared_key = Zeroizing::new(key.get(..len).unwrap_or_default().to_vec());
    }

    /// The longest key the backend can use.
    pub fn maximum_pre_shared_key_length(&self) -> usize {
        self.maximum_pre_shared_key_length
    }
}

impl fmt::Debug for PreSharedKeyAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreSharedKeyAuthenticator")
            .field(
                "identity_hint",
                &String::from_utf8_lossy(&self.identity_hint),
            )
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .field(
                "pre_shared_key",
                &format_args!("<{} bytes>", self.pre_shared_key.len()),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::PreSharedKeyAuthenticator;

    #[test]
    fn authenticators_are_equal_only_with_the_same_key_and_identity() {
        let mut a = PreSharedKeyAuthenticator::new(b"hint", b"", 128, 64);
        let mut b = a.clone();
        a.set_identity(b"client");
        b.set_identity(b"client");
        a.set_pre_shared_key(b"0123456789abcdef");
        b.set_pre_shared_key(b"0123456789abcdef");
        assert!(a == b);
        b.set_pre_shared_key(b"0123456789abcdeX");
        assert!(a != b);
        b.set_pre_shared_key(b"0123456789abcde");
        assert!(a != b);
        assert!(!format!("{a:?}").contains("0123456789abcdef"));
    }
}
