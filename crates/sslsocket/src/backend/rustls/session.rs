//! One rustls connection on rustls's buffered API behind the `TlsSession` trait: the
//! session kind used when keying material must be exportable (rustls 0.23 exports only
//! from buffered connections); `unbuffered.rs` is the default. The trust hand-off and
//! what is read off rustls are shared with it (`handshake.rs`).

use std::io::{self, Read, Write};

use rustls::{ClientConnection, Connection, ServerConnection};

use crate::backend::rustls::config::{ClientEngine, ServerEngine};
use crate::backend::rustls::handshake::{self, client_session, Handshake};
use crate::backend::{BackendNotice, Negotiated, PlainRead, TlsSession};
use crate::cert::SslCertificate;
use crate::error::{ConfigError, TlsFailure};
use crate::verify::{Outcome, Verification, VerifyPolicy};

pub(crate) struct RustlsSession {
    conn: Connection,
    handshake: Handshake,
    plain_len: usize,
    tls_pending: usize,
    /// Our close_notify is queued: rustls may now trip its own assertion on bad input
    /// (see `process`).
    closed: bool,
    /// rustls panicked on the peer's input after our close_notify: the connection is
    /// over, and rustls is not run again.
    poisoned: bool,
}

impl RustlsSession {
    pub(crate) fn client(
        engine: &ClientEngine,
        peer_name: Option<&str>,
        policy: &VerifyPolicy,
    ) -> Result<RustlsSession, ConfigError> {
        let make = |config, server_name, handshake| {
            // On failure the hand-off is dropped, which gives its verifier back.
            let conn = ClientConnection::new(config, server_name)
                .map_err(|e| ConfigError::new(format!("client session: {e}")))?;
            Ok(RustlsSession::wrap(Connection::Client(conn), handshake))
        };
        // The first flight's length, as rustls's state says it (nothing is processed:
        // no input has come).
        client_session(engine, peer_name, policy, make, |session| {
            session
                .conn
                .process_new_packets()
                .map_or(0, |state| state.tls_bytes_to_write())
        })
    }

    pub(crate) fn server(
        engine: &ServerEngine,
        policy: &VerifyPolicy,
    ) -> Result<RustlsSession, ConfigError> {
        let (config, handshake) = Handshake::server(engine, policy)?;
        let conn = ServerConnection::new(config)
            .map_err(|e| ConfigError::new(format!("server session: {e}")))?;
        Ok(RustlsSession::wrap(Connection::Server(conn), handshake))
    }

    fn wrap(conn: Connection, handshake: Handshake) -> RustlsSession {
        RustlsSession {
            conn,
            handshake,
            plain_len: 0,
            tls_pending: 0,
            closed: false,
            poisoned: false,
        }
    }
}

impl TlsSession for RustlsSession {
    fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        self.conn.read_tls(rd)
    }

    fn process(&mut self) -> Result<(), TlsFailure> {
        // After our close_notify, rustls 0.23 answers a record it cannot process with an
        // alert and, with debug assertions, first asserts that none was sent before (its
        // close_notify counts): a panic on the peer's input (rustls/rustls#959). There,
        // and only there, the run is guarded, as in `unbuffered::records`.
        let processed = if self.poisoned {
            Err(after_close_notify())
        } else if self.closed {
            let conn = &mut self.conn;
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conn.process_new_packets()))
                .unwrap_or_else(|_| {
                    self.poisoned = true;
                    Err(after_close_notify())
                })
        } else {
            self.conn.process_new_packets()
        };
        match processed {
            Ok(state) => {
                self.handshake.processed(&self.conn);
                self.plain_len = state.plaintext_bytes_to_read();
                self.tls_pending = state.tls_bytes_to_write();
                if state.peer_has_closed() {
                    self.handshake.peer_closed();
                }
                Ok(())
            }
            Err(error) => Err(self.handshake.failure(&error, &self.conn)),
        }
    }

    fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        let n = self.conn.write_tls(wr)?;
        self.tls_pending = self.tls_pending.saturating_sub(n);
        Ok(n)
    }

    fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    fn wants_read(&self) -> bool {
        self.conn.wants_read()
    }

    fn tls_bytes_to_write(&self) -> usize {
        if self.conn.wants_write() {
            self.tls_pending.max(1)
        } else {
            0
        }
    }

    fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(data)?;
        if n > 0 {
            // One record per 16 KiB with at most 29 bytes of overhead (TLS 1.2 GCM);
            // refined by the next `process`.
            self.tls_pending += n + n.div_ceil(16 * 1024) * 29;
        }
        Ok(n)
    }

    fn read_plain(&mut self, buf: &mut [u8]) -> PlainRead {
        match self.conn.reader().read(buf) {
            Ok(0) if !buf.is_empty() => PlainRead::Closed,
            Ok(n) => {
                self.plain_len = self.plain_len.saturating_sub(n);
                PlainRead::Data(n)
            }
            Err(_) => PlainRead::WouldBlock,
        }
    }

    fn plaintext_len(&self) -> usize {
        self.plain_len
    }

    fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    fn received_close_notify(&self) -> bool {
        self.handshake.is_peer_closed()
    }

    fn negotiated(&self) -> Option<Negotiated> {
        self.handshake.negotiated(&self.conn)
    }

    fn requested_server_name(&self) -> Option<String> {
        self.handshake.requested_server_name()
    }

    fn peer_certificate_chain(&self) -> Vec<SslCertificate> {
        handshake::peer_certificate_chain(&self.conn)
    }

    fn poll_notice(&mut self) -> Option<BackendNotice> {
        self.handshake.poll_notice()
    }

    fn export_keying_material(
        &self,
        len: usize,
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>, TlsFailure> {
        self.conn
            .export_keying_material(vec![0u8; len], label, context)
            .map_err(|e| TlsFailure::internal(format!("exporting keying material: {e}")))
    }

    fn take_verification(&mut self) -> Option<Verification> {
        self.handshake.take_verification()
    }

    fn forget_own_sessions(&mut self) {
        self.handshake.forget_own_sessions();
    }

    fn take_local_failure(&mut self) -> Option<crate::error::ConfigError> {
        self.handshake.record.take_local_failure()
    }

    fn set_policy(&mut self, policy: VerifyPolicy) {
        self.handshake.set_policy(policy);
    }

    fn resumed_outcome(&self) -> Option<Outcome> {
        self.handshake.resumed_outcome()
    }

    fn confirm_peer(&mut self, outcome: Option<Outcome>) {
        self.handshake.confirm_peer(outcome);
    }

    fn close(&mut self) {
        self.conn.send_close_notify();
        self.closed = true;
        self.handshake.closing();
    }
}

/// The error of a record rustls could not process after our close_notify (both kinds of
/// rustls connection).
pub(super) fn after_close_notify() -> rustls::Error {
    rustls::Error::General(
        "the peer sent a record that could not be processed after our close_notify".into(),
    )
}
