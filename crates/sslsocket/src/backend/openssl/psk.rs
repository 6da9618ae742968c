//! Pre-shared keys (Qt's `preSharedKeyAuthenticationRequired`) through the safe PSK
//! callbacks of the `openssl` crate.

use std::ffi::CString;
use std::sync::Arc;

use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContextBuilder, SslRef};

use crate::backend::openssl::context::connection_index;
use crate::backend::openssl::verifier::ConnectionState;
use crate::config::SslConfiguration;
use crate::core::PreSharedKeyAuthenticator;
use crate::error::ConfigError;

/// Pre-shared keys through the socket's `SslHooks::pre_shared_key`, installed on every
/// context as Qt does: a client is asked when a server offers PSK (TLS 1.2, with its
/// hint) and while its TLS 1.3 ClientHello is built; a server is asked with the client's
/// identity. An empty key declines. A server sends the configuration's identity hint
/// (Qt's `preSharedKeyIdentityHint`), if one is set.
pub(crate) fn install(
    builder: &mut SslContextBuilder,
    configuration: &SslConfiguration,
    server: bool,
) -> Result<(), ConfigError> {
    let index = connection_index()?;
    if server {
        let hint = configuration.pre_shared_key_identity_hint();
        if !hint.is_empty() {
            let hint = CString::new(hint).map_err(|_| {
                ConfigError::invalid("the pre-shared key identity hint must not contain a NUL byte")
            })?;
            sslsocket_openssl_ext::set_psk_identity_hint(builder, &hint)
                .map_err(|e| ConfigError::new(format!("pre-shared key identity hint: {e}")))?;
        }
        // As Qt's `setupServerPskAuth`: the hook sees the server's own hint and the
        // client's identity, with no room to set an identity.
        let hint = hint.to_vec();
        builder.set_psk_server_callback(move |ssl, identity, key_out| {
            let identity = identity.unwrap_or_default();
            let mut request = PreSharedKeyAuthenticator::new(&hint, identity, 0, key_out.len());
            ask(ssl, index, &mut request);
            if !request.pre_shared_key().is_empty() {
                if let Some(state) = ssl.ex_data(index) {
                    state.external_psk_offered();
                }
            }
            Ok(copy_into(request.pre_shared_key(), key_out))
        });
    } else {
        builder.set_psk_client_callback(move |ssl, hint, identity_out, key_out| {
            let state = ssl.ex_data(index).map(Arc::clone);
            // Pinned keys need a certificate, which a pre-shared-key handshake never shows:
            // no key is offered (the handshake fails before our Finished, rather than the
            // server completing a handshake the core then refuses).
            if state.as_deref().is_some_and(ConnectionState::has_pins) {
                return Ok(0);
            }
            // The identity is written as a C string: one byte for its terminating NUL.
            let room = identity_out.len().saturating_sub(1);
            let mut request =
                PreSharedKeyAuthenticator::new(hint.unwrap_or_default(), b"", room, key_out.len());
            ask(ssl, index, &mut request);
            let key = request.pre_shared_key();
            if key.is_empty() {
                return Ok(0);
            }
            if let Some(state) = &state {
                state.psk_supplied();
            }
            let identity = request.identity();
            let written = copy_into(identity, identity_out);
            if let Some(nul) = identity_out.get_mut(written) {
                *nul = 0;
            }
            Ok(copy_into(key, key_out))
        });
    }
    Ok(())
}

fn ask(
    ssl: &mut SslRef,
    index: Index<Ssl, Arc<ConnectionState>>,
    request: &mut PreSharedKeyAuthenticator,
) {
    if let Some(hooks) = ssl.ex_data(index).and_then(|state| state.hooks()) {
        // A hook that panics must not unwind into OpenSSL (the process would abort): it
        // supplies no key, and the handshake fails without one.
        let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            hooks.pre_shared_key(request);
        }));
        if asked.is_err() {
            request.set_pre_shared_key(&[]);
        }
    }
}

/// Copies as much of `from` as fits; returns how much.
fn copy_into(from: &[u8], to: &mut [u8]) -> usize {
    let n = from.len().min(to.len());
    if let (Some(dst), Some(src)) = (to.get_mut(..n), from.get(..n)) {
        dst.copy_from_slice(src);
    }
    n
}
