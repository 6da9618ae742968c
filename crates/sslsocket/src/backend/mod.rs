//! The backend seam: a factory that says what it supports, and per-connection engines
//! that only see bytes (Qt's TLS backend / cryptograph split).
//!
//! A backend turns an [`SslConfiguration`] into a [`TlsSession`]; the session *returns*
//! values (negotiated parameters, the peer chain, alerts) and never calls back into the
//! socket. Verification is values in, values out: the core hands every session the
//! handshake's [`VerifyPolicy`]; the session judges the errors it finds with it, inside the
//! handshake, and hands the [`Verification`] back (`take_verification`), so every backend
//! applies the same policy and neither backend imports the core.

#[cfg(feature = "openssl")]
#[cfg_attr(docsrs, doc(cfg(feature = "openssl")))]
pub mod openssl;
pub mod registry;
pub mod rustls;
mod spare;
#[cfg(test)]
pub(crate) mod test_pki;

use std::borrow::Cow;
use std::io;

pub use registry::{
    active_backend, available_backends, backend_by_name, implemented_classes, is_class_implemented,
    is_feature_supported, is_protocol_supported, set_active_backend,
    ssl_library_build_version_number, ssl_library_build_version_string, ssl_library_version_number,
    ssl_library_version_string, supported_ciphers, supported_elliptic_curves, supported_features,
    supported_protocols, supports_ssl, BackendError, ImplementedClass, SupportedFeature,
};

use crate::cert::{SslCertificate, SslCipher};
use crate::config::SslConfiguration;
use crate::curve::SslEllipticCurve;
use crate::enums::{Alert, SslMode, SslProtocol};
use crate::error::{ConfigError, TlsFailure};
use crate::verify::{Outcome, Verification, VerifyPolicy};

/// A TLS implementation: says what it can do and makes one engine per connection.
pub trait Backend: Send + Sync + 'static {
    /// The name applications select it by (`"rustls"`, `"openssl"`).
    fn name(&self) -> &'static str;
    /// The protocol selections it can honour.
    fn supported_protocols(&self) -> Vec<SslProtocol>;
    /// The optional features it provides.
    fn supported_features(&self) -> Vec<SupportedFeature>;
    /// The classes it implements.
    fn implemented_classes(&self) -> Vec<ImplementedClass>;
    /// The TLS library's version, as text.
    fn library_version_string(&self) -> String;
    /// The version the backend was built against (a library linked at run time may be
    /// another); the run-time one for a library compiled in.
    fn library_build_version_string(&self) -> String {
        self.library_version_string()
    }
    /// Every cipher suite this backend can use (what `SslConfiguration::set_ciphers`
    /// accepts for it), TLS 1.3 suites first (Qt's `supportedCiphers()` for this backend).
    fn supported_ciphers(&self) -> Vec<SslCipher>;
    /// Every key exchange group this backend can use (Qt's `supportedEllipticCurves()`).
    fn supported_elliptic_curves(&self) -> Vec<SslEllipticCurve>;
    /// One engine for one connection. Every configuration problem surfaces here, before
    /// a byte is sent.
    fn new_session(&self, setup: SessionSetup<'_>) -> Result<Box<dyn TlsSession>, ConfigError>;
    /// Builds (and caches on the configuration) what sessions in `mode` need, so a
    /// configuration problem such as a key that does not match its certificate is found
    /// now (a server's `bind`/`reload`), not at the first handshake.
    fn prepare(
        &self,
        _mode: SslMode,
        _configuration: &SslConfiguration,
    ) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// What a backend needs to make a session.
pub struct SessionSetup<'a> {
    /// `SslClientMode` or `SslServerMode`.
    pub mode: SslMode,
    /// The configuration (its cached engine configuration is shared by its clones).
    pub configuration: &'a SslConfiguration,
    /// The name the client sends as SNI and verifies the certificate against
    /// (`ssl_peer_name` if given, else the host connected to).
    pub peer_name: Option<&'a str>,
    /// The policy this handshake's peer is judged by.
    pub policy: VerifyPolicy,
}

/// The parameters a handshake settled on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol version (`TlsV1_2`, `TlsV1_3`).
    pub protocol: SslProtocol,
    /// The cipher suite's IANA name (borrowed when static: a connection keeps it as long
    /// as it lives).
    pub cipher_suite: Cow<'static, str>,
    /// The key exchange group, if the backend can tell (borrowed when static).
    pub key_exchange_group: Option<Cow<'static, str>>,
    /// The ALPN protocol agreed on.
    pub alpn: Option<Vec<u8>>,
    /// Whether the session was resumed.
    pub resumed: bool,
    /// On a server: the server name the client asked for (SNI), if it sent one.
    pub server_name: Option<String>,
    /// The peer was authenticated by a pre-shared key (a PSK cipher suite, or a TLS 1.3
    /// external PSK), not by a certificate.
    pub authenticated_by_key: bool,
}

/// The most bytes of CA names (each with its 2-byte length) a server sends as hints in its
/// CertificateRequest. The list's TLS limit is 2^16 - 1 bytes, and the whole message must
/// fit one handshake message: past this, a server sends no names (a client then offers
/// whatever certificate it has) rather than fail every handshake (OpenSSL) or panic
/// (rustls asserts the 16-bit length).
pub(crate) const CA_NAMES_LIMIT: usize = 32 * 1024;

/// Something the engine reports besides bytes.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendNotice {
    /// We sent an alert.
    AlertSent(Alert),
    /// The peer sent an alert.
    AlertReceived(Alert),
    /// A session ticket arrived.
    NewSessionTicket,
}

/// What reading plaintext from the engine gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainRead {
    /// This many bytes.
    Data(usize),
    /// Nothing buffered now.
    WouldBlock,
    /// The peer closed the TLS session cleanly (close_notify) and everything was read.
    Closed,
}

/// The engine's answers to the questions a driver asks at every step, at once (see
/// [`TlsSession::status`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStatus {
    /// [`TlsSession::wants_write`].
    pub wants_write: bool,
    /// [`TlsSession::plaintext_len`].
    pub plaintext_len: usize,
    /// [`TlsSession::is_handshaking`].
    pub handshaking: bool,
    /// [`TlsSession::received_close_notify`].
    pub received_close_notify: bool,
}

/// Both directions of a transport in one object (a socket): what
/// [`TlsSession::read_tls_duplex`] reads from and may write to.
pub trait Duplex: io::Read + io::Write {}

impl<T: io::Read + io::Write + ?Sized> Duplex for T {}

/// The socket one read is given: its reading side, or both sides (a [`Duplex`]).
pub(crate) enum Socket<'a> {
    Reader(&'a mut dyn io::Read),
    Duplex(&'a mut dyn Duplex),
}

impl Socket<'_> {
    /// The reading side.
    pub(crate) fn reader(&mut self) -> &mut dyn io::Read {
        match self {
            Socket::Reader(reader) => *reader,
            Socket::Duplex(io) => *io,
        }
    }
}

/// What one [`TlsSession::read_tls_duplex`] did.
#[derive(Debug)]
pub struct DuplexRead {
    /// As [`TlsSession::read_tls_into`]: the TLS bytes read and the plaintext bytes put
    /// into the reader's buffer, or the error of the read.
    pub result: io::Result<(usize, usize)>,
    /// TLS bytes the engine wrote straight to the transport meanwhile (also when the
    /// read failed).
    pub sent: usize,
}

/// One TLS connection's engine: bytes in, bytes out, no sockets.
pub trait TlsSession: Send + Sync {
    /// Reads TLS bytes from `rd` into the engine (no processing). `Ok(0)` at end of input.
    fn read_tls(&mut self, rd: &mut dyn io::Read) -> io::Result<usize>;
    /// `read_tls` with the reader's buffer at hand, when the engine holds no plaintext:
    /// an engine that decrypts while it reads may put the plaintext of what arrives
    /// straight into `dst` (no copy through its own buffer), the rest staying with it as
    /// after `read_tls`. Returns the TLS bytes read and the plaintext bytes put into
    /// `dst`; `process()` follows as after `read_tls`. By default, `read_tls` (nothing
    /// into `dst`).
    fn read_tls_into(
        &mut self,
        rd: &mut dyn io::Read,
        _dst: &mut [u8],
    ) -> io::Result<(usize, usize)> {
        Ok((self.read_tls(rd)?, 0))
    }
    /// `read_tls_into` with the transport's writing side at hand too. An engine that runs
    /// its handshake while it reads may send what it answers straight to `io`, where
    /// nothing the application decides can withhold it (OpenSSL: a server's first flight,
    /// anything after the peer's certificate was verified and accepted), instead of
    /// leaving it for `write_tls`: the peer gets it before the engine's own work after
    /// the write and the core's bookkeeping. By default, `read_tls_into` (nothing sent).
    fn read_tls_duplex(&mut self, io: &mut dyn Duplex, dst: &mut [u8]) -> DuplexRead {
        DuplexRead {
            result: self.read_tls_into(io, dst),
            sent: 0,
        }
    }
    /// Processes what was read: handshake messages, records, alerts.
    fn process(&mut self) -> Result<(), TlsFailure>;
    /// Writes pending TLS bytes to `wr`.
    fn write_tls(&mut self, wr: &mut dyn io::Write) -> io::Result<usize>;
    /// Whether TLS bytes are waiting to be written.
    fn wants_write(&self) -> bool;
    /// Whether the engine can take more TLS input now (false when its plaintext buffer is
    /// full: back-pressure).
    fn wants_read(&self) -> bool;
    /// Number of TLS bytes waiting to be written.
    fn tls_bytes_to_write(&self) -> usize;
    /// Number of TLS bytes received and held not yet decrypted (a record not yet whole),
    /// where the engine can tell; 0 where it cannot (OpenSSL keeps its read-ahead to
    /// itself).
    fn tls_bytes_buffered(&self) -> usize {
        0
    }
    /// Encrypts application data; returns how much was accepted.
    fn write_plain(&mut self, data: &[u8]) -> io::Result<usize>;
    /// `write_plain` with the socket at hand: the TLS bytes go straight to `wr` as far as
    /// it takes them at once (no copy through the engine's output buffer), the rest waits
    /// for `write_tls` as after `write_plain`; an error of `wr` leaves the bytes waiting
    /// (the next `write_tls` meets it again). Returns the plaintext bytes accepted and the
    /// TLS bytes written to `wr`. By default, `write_plain` (nothing written to `wr`).
    fn write_plain_to(
        &mut self,
        data: &[u8],
        _wr: &mut dyn io::Write,
    ) -> io::Result<(usize, usize)> {
        Ok((self.write_plain(data)?, 0))
    }
    /// Reads decrypted application data.
    fn read_plain(&mut self, buf: &mut [u8]) -> PlainRead;
    /// Decrypted bytes buffered.
    fn plaintext_len(&self) -> usize;
    /// Whether the handshake is still running.
    fn is_handshaking(&self) -> bool;
    /// Whether the peer's close_notify arrived.
    fn received_close_notify(&self) -> bool;
    /// `wants_write`, `plaintext_len`, `is_handshaking` and `received_close_notify` in one
    /// call (a driver asks them all at every step). By default, each of them.
    fn status(&self) -> SessionStatus {
        SessionStatus {
            wants_write: self.wants_write(),
            plaintext_len: self.plaintext_len(),
            handshaking: self.is_handshaking(),
            received_close_notify: self.received_close_notify(),
        }
    }
    /// What the handshake settled on (after it finished).
    fn negotiated(&self) -> Option<Negotiated>;
    /// On a server, the server name the client's hello asked for, once the hello was read
    /// (a failed handshake too). By default, the finished handshake's.
    fn requested_server_name(&self) -> Option<String> {
        self.negotiated().and_then(|n| n.server_name)
    }
    /// The peer's certificate chain as it sent it, leaf first.
    fn peer_certificate_chain(&self) -> Vec<SslCertificate>;
    /// The next alert or ticket notice.
    fn poll_notice(&mut self) -> Option<BackendNotice>;
    /// Queues close_notify.
    fn close(&mut self);
    /// The verification of the peer, once, when the backend's verifier ran (a resumed
    /// handshake verifies nothing: see `resumed_outcome`).
    fn take_verification(&mut self) -> Option<Verification>;
    /// A failure of our own side during the handshake, once (a client certificate
    /// resolver's identity that cannot be used): the core fails the handshake with it and
    /// sends nothing more.
    fn take_local_failure(&mut self) -> Option<crate::error::ConfigError> {
        None
    }
    /// The application changed the policy (its ignore list, hooks or pause mode) after the
    /// handshake started and before the peer was judged: the new value replaces the old
    /// (Qt applies an ignore list given any time before the errors are found).
    fn set_policy(&mut self, policy: VerifyPolicy);
    /// The original outcome of the session this handshake resumed (or offered to resume).
    fn resumed_outcome(&self) -> Option<Outcome>;
    /// The application's final word on the peer: `Some` (accepted, with the outcome to
    /// store sessions with) lets the sessions of this connection be stored for resumption;
    /// `None` (refused, or given up on) drops them and forgets what was stored, so no later
    /// connection resumes without verification.
    fn confirm_peer(&mut self, outcome: Option<Outcome>);
    /// The connection ended with a fatal alert after its peer was accepted: the sessions
    /// it stored are forgotten (RFC 5246 §7.2.2), not other connections' sessions of that
    /// peer, and none it receives from now on is kept.
    fn forget_own_sessions(&mut self) {
        self.confirm_peer(None);
    }
    /// The session as DER bytes, for another process to resume (Qt's `sessionTicket()`);
    /// `None` when the backend cannot serialize sessions, none was received, or session
    /// persistence is disabled.
    fn session_ticket(&self) -> Option<Vec<u8>> {
        None
    }
    /// Whether this backend can export sessions at all (`session_ticket`).
    fn can_export_sessions(&self) -> bool {
        false
    }
    /// Keying material exported from the session (RFC 5705 / RFC 8446 §7.5), `len` bytes.
    fn export_keying_material(
        &self,
        len: usize,
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>, TlsFailure>;
}
