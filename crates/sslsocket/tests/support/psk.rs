//! Pre-shared keys for the tests: one identity and key, matching `openssl s_server -psk
//! PSK_HEX -psk_identity client1` and `openssl s_client` with the same flags.

use std::sync::{Arc, Mutex};

use sslsocket::{PreSharedKeyAuthenticator, SslHooks};

/// The key, as `openssl s_server -psk` and `s_client -psk` take it.
pub const PSK_HEX: &str = "00112233445566778899aabbccddeeff";
/// The same key, as bytes.
pub const PSK: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];
/// The identity the OpenSSL peers are started with.
pub const PSK_IDENTITY: &[u8] = b"client1";

/// Answers pre-shared-key requests with one identity and key; records what it was asked.
/// An empty key declines every request (Qt: an authenticator left empty).
#[derive(Default)]
pub struct PskHooks {
    identity: Vec<u8>,
    key: Vec<u8>,
    /// (hint, identity) of every request.
    asked: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl PskHooks {
    pub fn new(identity: &[u8], key: &[u8]) -> Arc<PskHooks> {
        Arc::new(PskHooks {
            identity: identity.to_vec(),
            key: key.to_vec(),
            asked: Mutex::new(Vec::new()),
        })
    }

    /// (hint, identity) of every request so far.
    pub fn asked(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl SslHooks for PskHooks {
    fn pre_shared_key(&self, request: &mut PreSharedKeyAuthenticator) {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push((
                request.identity_hint().to_vec(),
                request.identity().to_vec(),
            ));
        }
        if self.key.is_empty() {
            return;
        }
        // A server answers only the identity it knows; a client always presents its own.
        if request.identity().is_empty() || request.identity() == self.identity.as_slice() {
            request.set_identity(&self.identity);
            request.set_pre_shared_key(&self.key);
        }
    }
}
