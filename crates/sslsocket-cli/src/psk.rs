//! Pre-shared keys: `--psk-identity`/`--psk-key` checked into a [`Psk`], and the hooks that
//! answer the library's `pre_shared_key` request with it (a client sends its identity and
//! key; a server gives the key to the one identity it knows, and nothing to any other).

use std::fmt;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Result};
use sslsocket::backend::{self, SupportedFeature};
use sslsocket::{PreSharedKeyAuthenticator, SslHooks};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// An identity and its key. The key is wiped on drop and never printed.
pub struct Psk {
    identity: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Psk")
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .finish()
    }
}

impl Psk {
    /// `--psk-identity` and `--psk-key`: both or neither; the key in hex, not empty.
    pub fn from_options(identity: Option<&str>, key: Option<&str>) -> Result<Option<Psk>> {
        let (identity, key) = match (identity, key) {
            (None, None) => return Ok(None),
            (Some(identity), Some(key)) => (identity, key),
            (Some(_), None) => bail!("--psk-identity needs --psk-key"),
            (None, Some(_)) => bail!("--psk-key needs --psk-identity"),
        };
        if identity.is_empty() {
            bail!("--psk-identity: the identity is empty");
        }
        let key = hex_decode(key)?;
        if key.is_empty() {
            bail!("--psk-key: the key is empty");
        }
        Ok(Some(Psk {
            identity: identity.as_bytes().to_vec(),
            key,
        }))
    }
}

/// Hex digits (either case) into bytes; anything else, or an odd count, is bad input.
fn hex_decode(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        bail!("--psk-key: expected hex digits in pairs (an odd number of digits was given)");
    }
    let mut key = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
    for pair in digits.chunks_exact(2) {
        let nibble = |d: u8| {
            char::from(d).to_digit(16).ok_or_else(|| {
                anyhow!(
                    "--psk-key: expected hex digits (0-9, a-f), not `{}`",
                    char::from(d).escape_default()
                )
            })
        };
        let (high, low) = match pair {
            [high, low] => (nibble(*high)?, nibble(*low)?),
            _ => bail!("--psk-key: expected hex digits in pairs"),
        };
        key.push(u8::try_from(high * 16 + low).unwrap_or_default());
    }
    Ok(key)
}

/// An error unless the active backend can use pre-shared keys, naming the ones that can.
pub fn require_support() -> Result<()> {
    if backend::is_feature_supported(SupportedFeature::Psk, None) {
        return Ok(());
    }
    let active = backend::active_backend().unwrap_or("active");
    let capable: Vec<String> = backend::available_backends()
        .into_iter()
        .filter(|name| backend::is_feature_supported(SupportedFeature::Psk, Some(name)))
        .map(|name| format!("--backend {name}"))
        .collect();
    if capable.is_empty() {
        bail!(
            "pre-shared keys are not supported by the {active} backend, and this build has no \
             backend that supports them (build sslsocket-cli with --features openssl)"
        );
    }
    bail!(
        "pre-shared keys are not supported by the {active} backend; use {}",
        capable.join(" or ")
    );
}

/// The client's answer: our identity and key, whatever the server's hint. An identity or
/// key longer than the backend can carry is not cut short (that would send another
/// identity, or another key): the request is declined, and the reason kept for the report.
pub struct ClientHooks {
    psk: Arc<Psk>,
    declined: Mutex<Option<String>>,
}

impl ClientHooks {
    /// Hooks answering with `psk`.
    pub fn new(psk: Arc<Psk>) -> ClientHooks {
        ClientHooks {
            psk,
            declined: Mutex::new(None),
        }
    }

    /// Why a request was declined, if one was.
    pub fn declined(&self) -> Option<String> {
        match self.declined.lock() {
            Ok(reason) => reason.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn decline(&self, reason: String) {
        match self.declined.lock() {
            Ok(mut slot) => *slot = Some(reason),
            Err(poisoned) => *poisoned.into_inner() = Some(reason),
        }
    }
}

impl SslHooks for ClientHooks {
    fn pre_shared_key(&self, authenticator: &mut PreSharedKeyAuthenticator) {
        let psk = &self.psk;
        if psk.identity.len() > authenticator.maximum_identity_length() {
            self.decline(format!(
                "--psk-identity: {} bytes, more than the {} the backend can send",
                psk.identity.len(),
                authenticator.maximum_identity_length()
            ));
            return;
        }
        if psk.key.len() > authenticator.maximum_pre_shared_key_length() {
            self.decline(format!(
                "--psk-key: {} bytes, more than the {} the backend can use",
                psk.key.len(),
                authenticator.maximum_pre_shared_key_length()
            ));
            return;
        }
        authenticator.set_identity(&psk.identity);
        authenticator.set_pre_shared_key(&psk.key);
    }
}

/// The server's answer: the key for the client that names our identity (compared in
/// constant time), no key for any other, which declines the PSK.
pub struct ServerHooks {
    psk: Psk,
}

impl ServerHooks {
    /// Hooks accepting `psk`'s identity with its key.
    pub fn new(psk: Psk) -> ServerHooks {
        ServerHooks { psk }
    }
}

impl SslHooks for ServerHooks {
    fn pre_shared_key(&self, authenticator: &mut PreSharedKeyAuthenticator) {
        let known: bool = authenticator
            .identity()
            .ct_eq(self.psk.identity.as_slice())
            .into();
        if known && self.psk.key.len() <= authenticator.maximum_pre_shared_key_length() {
            authenticator.set_pre_shared_key(&self.psk.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() -> Result<()> {
        assert!(Psk::from_options(None, None)?.is_none());
        let psk = Psk::from_options(Some("id"), Some("00aAfF"))?.ok_or_else(|| anyhow!("none"))?;
        assert_eq!(psk.identity, b"id".to_vec());
        assert_eq!(psk.key.as_slice(), &[0x00, 0xaa, 0xff]);
        assert!(!format!("{psk:?}").contains("aa"));
        for (identity, key) in [
            (Some("id"), None),
            (None, Some("00")),
            (Some(""), Some("00")),
            (Some("id"), Some("")),
            (Some("id"), Some("0")),
            (Some("id"), Some("0g")),
            (Some("id"), Some("+1")),
            (Some("id"), Some("é0")),
        ] {
            assert!(Psk::from_options(identity, key).is_err(), "{key:?}");
        }
        Ok(())
    }

    fn psk(identity: &str, key: &[u8]) -> Psk {
        Psk {
            identity: identity.as_bytes().to_vec(),
            key: Zeroizing::new(key.to_vec()),
        }
    }

    #[test]
    fn client_answers_within_the_limits() {
        let hooks = ClientHooks::new(Arc::new(psk("client1", &[1, 2, 3])));
        let mut request = PreSharedKeyAuthenticator::new(b"hint", b"", 128, 64);
        hooks.pre_shared_key(&mut request);
        assert_eq!(request.identity(), b"client1");
        assert_eq!(request.pre_shared_key(), &[1, 2, 3]);
        assert_eq!(hooks.declined(), None);

        let mut short = PreSharedKeyAuthenticator::new(b"", b"", 3, 64);
        hooks.pre_shared_key(&mut short);
        assert!(short.pre_shared_key().is_empty());
        assert!(hooks.declined().is_some());
    }

    #[test]
    fn server_answers_only_its_identity() {
        let hooks = ServerHooks::new(psk("client1", &[9; 16]));
        let mut known = PreSharedKeyAuthenticator::new(b"", b"client1", 7, 512);
        hooks.pre_shared_key(&mut known);
        assert_eq!(known.pre_shared_key(), &[9; 16]);
        for other in [&b"client2"[..], b"client", b"client12", b""] {
            let mut request = PreSharedKeyAuthenticator::new(b"", other, other.len(), 512);
            hooks.pre_shared_key(&mut request);
            assert!(request.pre_shared_key().is_empty(), "{other:?}");
        }
    }
}
