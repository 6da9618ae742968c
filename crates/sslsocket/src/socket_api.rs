//! The part of Qt's `QSslSocket` that does not wait: one trait, [`SslSocketExt`], written
//! once over the [`SslCore`] and implemented by both drivers' sockets.
//!
//! Every accessor and setter that only reads or changes the core lives here, so the
//! blocking and the tokio socket cannot drift: a feature added here exists on both, with
//! the same errors. The drivers keep what moves bytes or waits (connecting, the
//! handshakes, `wait_for_*`, reading and writing, closing). Bring the trait into scope
//! with `use sslsocket::prelude::*;`.

use std::sync::Arc;

use crate::cert::{SslCertificate, SslCipher, SslKey};
use crate::config::SslConfiguration;
use crate::core::{NextProtocolNegotiationStatus, SslCore, SslEvent, SslHooks};
use crate::enums::{PauseMode, PeerVerifyMode, SocketError, SocketState, SslMode, SslProtocol};
use crate::error::{ApiMisuse, Error};
use crate::ocsp::OcspResponse;
use crate::ssl_error::{IgnoreRule, SslError};

pub(crate) mod sealed {
    use crate::core::SslCore;
    use crate::error::Error;

    /// What a driver gives the shared surface: its core, and a way to hand the core's
    /// output to the transport without waiting. Not nameable outside the crate, so only
    /// this crate's sockets implement [`SslSocketExt`](super::SslSocketExt) and nobody
    /// else reaches the core mutably behind a driver's back.
    pub trait Driver {
        fn core_ref(&self) -> &SslCore;
        fn core_mut(&mut self) -> &mut SslCore;
        /// Sends what the core has to send, as far as the transport takes it now.
        fn send_now(&mut self) -> Result<(), Error>;
    }
}

/// Where a handshake stopped: finished, or held for the application's decision on the
/// peer's verification errors (Qt's `PauseOnSslErrors`: `sslErrors` is emitted and the
/// handshake waits for `ignoreSslErrors()` + `resume()`, or `abort()`).
///
/// Returned by `handshake()` on both drivers. A pause is a value, not an error: it carries
/// the errors and the chain, the application decides at leisure (on tokio it can await a
/// user prompt or a policy service), then calls [`SslSocketExt::accept_peer`] or
/// [`SslSocketExt::refuse_peer`], and `handshake()` / `wait_for_encrypted()` again.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Handshake {
    /// The handshake finished; the peer was accepted.
    Encrypted,
    /// The handshake waits for a decision on these verification errors.
    NeedsDecision(PendingDecision),
}

/// The peer's verification errors and certificate chain, held for a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingDecision {
    /// Every verification error found (Qt's `sslHandshakeErrors()` at `sslErrors`).
    pub errors: Vec<SslError>,
    /// The peer's chain as it sent it, leaf first.
    pub peer_certificate_chain: Vec<SslCertificate>,
}

impl PendingDecision {
    pub(crate) fn of(core: &SslCore) -> PendingDecision {
        PendingDecision {
            errors: core.ssl_handshake_errors().to_vec(),
            peer_certificate_chain: core.peer_certificate_chain().to_vec(),
        }
    }
}

/// The error `wait_for_encrypted` gives while the handshake waits for a decision (both
/// drivers): the handshake cannot go on by itself, so this is the application's to settle.
pub(crate) fn paused_error() -> Error {
    crate::error::ApiMisuse(
        "the handshake is paused on verification errors: accept_peer() (or ignore them and \
         resume()), or refuse_peer()"
            .into(),
    )
    .into()
}

/// The error a wait gives when nothing can move until the application reads: the read
/// buffer is full and the condition waited for needs more input (both drivers). It is a
/// misuse (`OperationError`), not a timeout: no time passed, and waiting longer would not
/// help.
pub(crate) fn no_progress_error(what: &str) -> Error {
    crate::error::ApiMisuse(format!(
        "{what}: no progress is possible until buffered data is read"
    ))
    .into()
}

/// Whether a line (or the most that can be had instead) is there to return: a whole line,
/// `max` bytes, the end of input, or a full read buffer (both drivers' `next_line`).
pub(crate) fn line_ready(core: &mut SslCore, max: usize) -> bool {
    core.can_read_line()
        // `read_line(max)` takes at most `max - 1` bytes (Qt's `readLine`).
        || (max > 0 && core.bytes_available() >= max.saturating_sub(1))
        || core.is_eof()
        || core.state() == SocketState::UnconnectedState
        // `can_read_line` moved all decrypted bytes into the core's buffer, so not wanting
        // input now means that buffer is full.
        || (core.bytes_available() > 0 && !core.wants_read())
}

/// Qt's `QSslSocket` accessors and setters that do not wait, shared by
/// [`blocking::SslSocket`](crate::blocking::SslSocket) and `tokio::SslSocket`.
///
/// Setters of the configuration (`set_protocol`, `set_peer_verify_mode`, ...) apply to the
/// next handshake and fail with [`Error::Misuse`] once one has started (Qt ignores them
/// with a warning). `read_line` is not here but on each socket (same meaning on both),
/// because `std::io::BufRead` and `tokio::io::AsyncBufReadExt` have a method of that name.
pub trait SslSocketExt: sealed::Driver {
    // ----- configuration -----------------------------------------------------------

    /// The configuration (Qt's `sslConfiguration`).
    fn ssl_configuration(&self) -> &SslConfiguration {
        self.core_ref().configuration()
    }

    /// Replaces the configuration before the handshake (Qt's `setSslConfiguration`).
    fn set_ssl_configuration(&mut self, configuration: SslConfiguration) -> Result<(), Error> {
        self.core_mut().set_configuration(configuration)
    }

    /// Changes the configuration in place before the handshake.
    fn configuration_mut(&mut self) -> Result<&mut SslConfiguration, Error> {
        self.core_mut().configuration_mut()
    }

    /// The protocol selection (Qt's `protocol()`).
    fn protocol(&self) -> SslProtocol {
        self.core_ref().configuration().protocol()
    }

    /// Sets the protocol selection before the handshake (Qt's `setProtocol`).
    fn set_protocol(&mut self, protocol: SslProtocol) -> Result<(), Error> {
        self.core_mut().configuration_mut()?.set_protocol(protocol);
        Ok(())
    }

    /// How the peer is verified (Qt's `peerVerifyMode()`).
    fn peer_verify_mode(&self) -> PeerVerifyMode {
        self.core_ref().configuration().peer_verify_mode()
    }

    /// Dangerous with `VerifyNone`: sets how the peer is verified, before the handshake
    /// (Qt's `setPeerVerifyMode()`).
    fn set_peer_verify_mode(&mut self, mode: PeerVerifyMode) -> Result<(), Error> {
        self.core_mut()
            .configuration_mut()?
            .set_peer_verify_mode(mode);
        Ok(())
    }

    /// The verify depth (Qt's `peerVerifyDepth()`; 0 = no limit).
    fn peer_verify_depth(&self) -> u32 {
        self.core_ref().configuration().peer_verify_depth()
    }

    /// Sets the verify depth before the handshake (Qt's `setPeerVerifyDepth()`).
    fn set_peer_verify_depth(&mut self, depth: u32) -> Result<(), Error> {
        self.core_mut()
            .configuration_mut()?
            .set_peer_verify_depth(depth);
        Ok(())
    }

    /// The name set with [`set_peer_verify_name`](Self::set_peer_verify_name) (Qt's
    /// `peerVerifyName()`).
    fn peer_verify_name(&self) -> Option<&str> {
        self.core_ref().peer_verify_name()
    }

    /// Sets the name the peer's certificate is verified against, and the SNI sent (Qt's
    /// `setPeerVerifyName`); before the handshake. An empty name is no name: the host
    /// connected to is verified, as in Qt.
    fn set_peer_verify_name(&mut self, name: impl Into<String>) {
        self.core_mut().set_peer_verify_name(name);
    }

    /// Our certificate (Qt's `localCertificate()`).
    fn local_certificate(&self) -> Option<&SslCertificate> {
        self.core_ref().configuration().local_certificate()
    }

    /// Sets our certificate before the handshake (Qt's `setLocalCertificate`).
    fn set_local_certificate(&mut self, certificate: SslCertificate) -> Result<(), Error> {
        self.core_mut()
            .configuration_mut()?
            .set_local_certificate(certificate);
        Ok(())
    }

    /// Our certificate chain, leaf first (Qt's `localCertificateChain()`).
    fn local_certificate_chain(&self) -> &[SslCertificate] {
        self.core_ref().configuration().local_certificate_chain()
    }

    /// Sets our certificate chain, leaf first, before the handshake (Qt's
    /// `setLocalCertificateChain`).
    fn set_local_certificate_chain(&mut self, chain: Vec<SslCertificate>) -> Result<(), Error> {
        self.core_mut()
            .configuration_mut()?
            .set_local_certificate_chain(chain);
        Ok(())
    }

    /// Our private key (Qt's `privateKey()`).
    fn private_key(&self) -> Option<&SslKey> {
        self.core_ref().configuration().private_key()
    }

    /// Sets our private key before the handshake (Qt's `setPrivateKey`).
    fn set_private_key(&mut self, key: SslKey) -> Result<(), Error> {
        self.core_mut().configuration_mut()?.set_private_key(key);
        Ok(())
    }

    /// Installs hooks called inside the handshake (Qt's `sslErrors`,
    /// `handshakeInterruptedOnError`, `preSharedKeyAuthenticationRequired` slots).
    fn set_hooks(&mut self, hooks: Arc<dyn SslHooks>) {
        self.core_mut().set_hooks(hooks);
    }

    // ----- the verification decision -----------------------------------------------

    /// Dangerous: accept every verification error of the handshake (Qt's
    /// `ignoreSslErrors()`). The errors are still collected and reported by
    /// [`ssl_handshake_errors`](Self::ssl_handshake_errors).
    fn ignore_ssl_errors(&mut self) {
        self.core_mut().ignore_ssl_errors();
    }

    /// Accept exactly these errors, kind and certificate (Qt's `ignoreSslErrors(list)`).
    fn ignore_ssl_errors_list(&mut self, errors: &[SslError]) {
        self.core_mut().ignore_ssl_errors_list(errors);
    }

    /// Accept the errors these rules cover; a later call replaces them.
    fn ignore_ssl_error_rules(&mut self, rules: Vec<IgnoreRule>) {
        self.core_mut().ignore_ssl_error_rules(rules);
    }

    /// The pause mode (Qt's `pauseMode()`).
    fn pause_mode(&self) -> PauseMode {
        self.core_ref().pause_mode()
    }

    /// Sets the pause mode before the handshake (Qt's `setPauseMode`): with
    /// `PauseOnSslErrors` a handshake whose errors are not all ignored stops for a
    /// decision (see [`Handshake::NeedsDecision`]).
    fn set_pause_mode(&mut self, mode: PauseMode) {
        self.core_mut().set_pause_mode(mode);
    }

    /// Whether the handshake is paused on verification errors, waiting for a decision.
    fn is_paused(&self) -> bool {
        self.core_ref().is_paused()
    }

    /// Continues a paused handshake (Qt's `resume()`): it goes on if every error is now
    /// ignored (`ignore_ssl_errors*` called meanwhile), otherwise it fails with the
    /// verification errors. Then `wait_for_encrypted` (or `handshake`) finishes it.
    fn resume(&mut self) -> Result<(), Error> {
        self.core_mut().resume()?;
        self.send_now()
    }

    /// Accepts a paused handshake's errors, exactly those found (Qt's
    /// `ignoreSslErrors(sslHandshakeErrors())` + `resume()`).
    fn accept_peer(&mut self) -> Result<(), Error> {
        if !self.core_ref().is_paused() {
            // A call that fails has no effect: no ignore list is left behind for a later
            // connection of this socket.
            return Err(crate::error::ApiMisuse("the handshake is not paused".into()).into());
        }
        let errors = self.core_ref().ssl_handshake_errors().to_vec();
        self.core_mut().ignore_ssl_errors_list(&errors);
        self.resume()
    }

    /// Refuses a paused handshake: it fails with its verification errors and nothing we
    /// held back (our Finished) reaches the peer, which gets an alert.
    fn refuse_peer(&mut self) -> Result<(), Error> {
        self.core_mut().refuse()?;
        // The refusal's alert goes out if the transport takes it now; failing to send it
        // changes nothing about the refusal.
        let _ = self.send_now();
        Ok(())
    }

    /// Qt's `continueInterruptedHandshake()`: the decision is the
    /// [`SslHooks::handshake_interrupted`] hook's, so this reports whether it went on.
    fn continue_interrupted_handshake(&mut self) -> Result<(), Error> {
        self.core_mut().continue_interrupted_handshake()
    }

    // ----- buffers -----------------------------------------------------------------

    /// Caps the decrypted bytes buffered (Qt's `setReadBufferSize`; 0 = the core's bound
    /// of 1 MiB). A full buffer stops reading from the transport, which pushes back on
    /// the peer.
    fn set_read_buffer_size(&mut self, size: usize) {
        self.core_mut().set_read_buffer_size(size);
    }

    /// The read buffer size (Qt's `readBufferSize`; 0 = not set).
    fn read_buffer_size(&self) -> usize {
        self.core_ref().read_buffer_size()
    }

    /// Every buffered decrypted byte, without waiting (Qt's `readAll`).
    fn read_all(&mut self) -> Vec<u8> {
        let core = self.core_mut();
        // What is buffered now (Qt's `readAll`): with a read buffer size set, the core may
        // hold more than it shows, which shows only once this is read.
        let available = core.bytes_available();
        let mut out = Vec::with_capacity(available);
        let mut buf = [0u8; 16 * 1024];
        while out.len() < available {
            let want = (available - out.len()).min(buf.len());
            let n = core.read(buf.get_mut(..want).unwrap_or_default());
            match buf.get(..n) {
                Some(chunk) if n > 0 => out.extend_from_slice(chunk),
                _ => break,
            }
        }
        out
    }

    /// Discards up to `max` buffered decrypted bytes without waiting and returns how many
    /// (Qt's `skip`; round 34: it was missing).
    fn skip(&mut self, max: usize) -> usize {
        let core = self.core_mut();
        let mut skipped = 0;
        let mut buf = [0u8; 16 * 1024];
        while skipped < max {
            let want = (max - skipped).min(buf.len());
            let n = core.read(buf.get_mut(..want).unwrap_or_default());
            if n == 0 {
                break;
            }
            skipped += n;
        }
        skipped
    }

    /// Whether a whole line is buffered (Qt's `canReadLine`).
    fn can_read_line(&mut self) -> bool {
        self.core_mut().can_read_line()
    }

    /// Up to `max` buffered bytes, not consumed (Qt's `peek`).
    fn peek(&mut self, max: usize) -> Vec<u8> {
        self.core_mut().peek(max)
    }

    /// Decrypted bytes ready to read (Qt's `bytesAvailable`).
    fn bytes_available(&self) -> usize {
        self.core_ref().bytes_available()
    }

    /// Bytes written and not yet handed to TLS or the wire (Qt's `bytesToWrite`).
    fn bytes_to_write(&self) -> usize {
        self.core_ref().bytes_to_write()
    }

    /// TLS bytes received and not yet decrypted (Qt's `encryptedBytesAvailable`); the
    /// engine decrypts every complete record as it arrives, so this is 0 between calls.
    fn encrypted_bytes_available(&self) -> usize {
        self.core_ref().encrypted_bytes_available()
    }

    /// TLS bytes waiting for the wire (Qt's `encryptedBytesToWrite`).
    fn encrypted_bytes_to_write(&self) -> usize {
        self.core_ref().encrypted_bytes_to_write()
    }

    /// Whether no data is available for reading now (Qt's `atEnd` on a socket:
    /// `bytesAvailable() == 0`, even when more may arrive), so Qt's
    /// `while !s.at_end() { s.read(..) }` drains what is buffered and stops (round 34:
    /// this was the end of the stream, now [`at_end_of_stream`](Self::at_end_of_stream)).
    fn at_end(&self) -> bool {
        self.bytes_available() == 0
    }

    /// Whether nothing is buffered and nothing more can arrive: the peer ended the
    /// stream, the connection failed or is closed (beyond Qt).
    fn at_end_of_stream(&self) -> bool {
        self.core_ref().at_end()
    }

    // ----- events ------------------------------------------------------------------

    /// The next queued event (Qt's signals), without waiting.
    fn poll_event(&mut self) -> Option<SslEvent> {
        self.core_mut().poll_event()
    }

    /// The events so far, in Qt's signal order.
    fn take_events(&mut self) -> Vec<SslEvent> {
        let core = self.core_mut();
        std::iter::from_fn(|| core.poll_event()).collect()
    }

    // ----- information -------------------------------------------------------------

    /// The core, for everything else it can tell.
    fn core(&self) -> &SslCore {
        self.core_ref()
    }

    /// The state (Qt's `state`).
    fn state(&self) -> SocketState {
        self.core_ref().state()
    }

    /// The mode (Qt's `mode`).
    fn mode(&self) -> SslMode {
        self.core_ref().mode()
    }

    /// Whether the handshake finished and the connection is usable (Qt's `isEncrypted`).
    fn is_encrypted(&self) -> bool {
        self.core_ref().is_encrypted()
    }

    /// Qt's `error()`: the kind of the last error, `UnknownSocketError` when none.
    fn error(&self) -> SocketError {
        self.core_ref().socket_error()
    }

    /// Qt's `errorString()`.
    fn error_string(&self) -> String {
        self.core_ref().error_string()
    }

    /// The error that ended the connection, as a value (`None` while it has not failed).
    fn failure(&self) -> Option<&Error> {
        self.core_ref().failure()
    }

    /// Every verification error of the handshake, ignored or not (Qt's
    /// `sslHandshakeErrors`); kept after a failed handshake.
    fn ssl_handshake_errors(&self) -> &[SslError] {
        self.core_ref().ssl_handshake_errors()
    }

    /// The peer's chain as sent, leaf first (Qt's `peerCertificateChain`); kept after a
    /// failed handshake.
    fn peer_certificate_chain(&self) -> &[SslCertificate] {
        self.core_ref().peer_certificate_chain()
    }

    /// The peer's certificate (Qt's `peerCertificate`).
    fn peer_certificate(&self) -> Option<&SslCertificate> {
        self.core_ref().peer_certificate()
    }

    /// The negotiated protocol (Qt's `sessionProtocol`), `UnknownProtocol` before the
    /// handshake and once the connection is closed (Qt frees its session then; round 34).
    fn session_protocol(&self) -> SslProtocol {
        if self.state() == SocketState::UnconnectedState {
            return SslProtocol::UnknownProtocol;
        }
        self.core_ref().session_protocol()
    }

    /// The negotiated cipher (Qt's `sessionCipher`), `None` before the handshake and once
    /// the connection is closed (as Qt's null cipher; round 34).
    fn session_cipher(&self) -> Option<SslCipher> {
        if self.state() == SocketState::UnconnectedState {
            return None;
        }
        self.core_ref().session_cipher()
    }

    /// The ALPN protocol agreed on (Qt's `nextNegotiatedProtocol`).
    fn next_negotiated_protocol(&self) -> Option<&[u8]> {
        self.core_ref().next_negotiated_protocol()
    }

    /// The outcome of ALPN (Qt's `nextProtocolNegotiationStatus`).
    fn next_protocol_negotiation_status(&self) -> NextProtocolNegotiationStatus {
        self.core_ref().next_protocol_negotiation_status()
    }

    /// The stapled OCSP responses received and checked (Qt's `ocspResponses()`).
    fn ocsp_responses(&self) -> Vec<OcspResponse> {
        self.core_ref().ocsp_responses()
    }

    /// Exports keying material (RFC 5705 / RFC 8446), equal on both ends; needs
    /// `SslConfiguration::set_keying_material_export` where the backend asks for it.
    fn export_keying_material(
        &self,
        len: usize,
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>, Error> {
        self.core_ref().export_keying_material(len, label, context)
    }

    /// Whether the session was resumed (beyond Qt).
    fn is_session_resumed(&self) -> bool {
        self.core_ref().is_session_resumed()
    }

    /// The session as bytes, to resume it elsewhere (Qt's `sessionTicket()`), where the
    /// backend can export one.
    fn session_ticket(&self) -> Result<Vec<u8>, Error> {
        self.core_ref().session_ticket()
    }

    /// The key exchange group used (Qt's `ephemeralServerKey`, by name).
    fn ephemeral_key_group(&self) -> Option<&str> {
        self.core_ref().ephemeral_key_group()
    }

    /// On a server socket, the server name the client asked for (SNI) in the finished
    /// handshake; `None` when it sent none, on a client, and before the handshake.
    fn requested_server_name(&self) -> Option<&str> {
        self.core_ref().requested_server_name()
    }

    /// The name of the backend of this connection (`rustls`, `openssl`).
    fn backend_name(&self) -> Option<&'static str> {
        self.core_ref().backend_name()
    }
}

impl<T: sealed::Driver> SslSocketExt for T {}

// Both sockets move between threads and tasks and need no pinning: a change that breaks
// this fails to compile here, not in a user's `tokio::spawn`.
const _: fn() = || {
    fn send_unpin<T: Send + Unpin>() {}
    send_unpin::<crate::blocking::SslSocket>();
    #[cfg(feature = "tokio")]
    send_unpin::<crate::tokio::SslSocket>();
};

/// Refuses to adopt a descriptor that is not a connected stream socket, on both drivers
/// (round 34: a listening socket or a UDP socket was taken as a connection; a UDP one read
/// an empty datagram as a clean end of stream). `peer` is the stream's peer address.
#[cfg(unix)]
pub(crate) fn adoptable<S: std::os::fd::AsFd>(
    stream: &S,
    peer: std::io::Result<std::net::SocketAddr>,
) -> Result<(), Error> {
    use rustix::net::{sockopt, SocketType};
    let not = |what: &str| -> Error {
        ApiMisuse(format!(
            "the adopted descriptor is {what}, not a connected TCP socket"
        ))
        .into()
    };
    match sockopt::socket_type(stream) {
        Ok(SocketType::STREAM) => {}
        Ok(_) => return Err(not("not a stream socket (UDP?)")),
        Err(e) => return Err(Error::io("checking the adopted descriptor", e.into())),
    }
    if sockopt::socket_acceptconn(stream).unwrap_or(false) {
        return Err(not("a listening socket"));
    }
    peer.map_err(|e| Error::io("the adopted descriptor has no peer", e))?;
    Ok(())
}

/// [`adoptable`] where descriptors are not at hand: the peer only.
#[cfg(not(unix))]
pub(crate) fn adoptable<S>(
    _stream: &S,
    peer: std::io::Result<std::net::SocketAddr>,
) -> Result<(), Error> {
    peer.map_err(|e| Error::io("the adopted descriptor has no peer", e))?;
    Ok(())
}

/// `next_line(max)`'s `max`: 0 (no limit) or room for at least one byte (Qt's
/// `readLine(maxSize)` takes `maxSize - 1`).
pub(crate) fn line_max_usable(max: usize) -> Result<(), Error> {
    if max == 1 {
        return Err(
            ApiMisuse("next_line: max 1 leaves no room for a byte (Qt's readLine)".into()).into(),
        );
    }
    Ok(())
}
