//! One rustls connection behind the `TlsSession` trait.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::{ClientConnection, Connection, ServerConnection};
use rustls_pki_types::ServerName;

use crate::backend::rustls::alerts;
use crate::backend::rustls::config::{ClientEngine, ServerEngine};
use crate::backend::rustls::sessions::{ConnectionClientSessions, ConnectionServerSessions};
use crate::backend::rustls::verifier::ConnectionVerifier;
use crate::backend::{BackendNotice, Negotiated, PlainRead, TlsSession};
use crate::cert::SslCertificate;
use crate::enums::{SslProtocol, TlsVersion};
use crate::error::{ConfigError, TlsFailure};
use crate::ssl_error::{SslError, SslErrorKind};
use crate::verify::record::HandshakeRecord;
use crate::verify::{Decision, Judgement, Outcome, Verification, VerifyPolicy};

pub(crate) struct RustlsSession {
    conn: Connection,
    record: Arc<HandshakeRecord>,
    plain_len: usize,
    tls_pending: usize,
    peer_closed: bool,
    notices: VecDeque<BackendNotice>,
    client_sessions: Option<(Arc<ConnectionClientSessions>, ServerName<'static>)>,
    server_sessions: Option<Arc<ConnectionServerSessions>>,
    /// The verifier instance claimed for the handshake, released when it ends.
    verifier: Option<Arc<ConnectionVerifier>>,
}

impl Drop for RustlsSession {
    fn drop(&mut self) {
        self.release_verifier();
    }
}

impl RustlsSession {
    pub(crate) fn client(
        engine: &ClientEngine,
        peer_name: Option<&str>,
        policy: &VerifyPolicy,
    ) -> Result<RustlsSession, ConfigError> {
        let name = peer_name.unwrap_or_default();
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| ConfigError::new(format!("`{name}` is not a valid host name for TLS")))?;
        let record = Arc::new(HandshakeRecord::default());
        let connection = engine.connection(policy, &record, &server_name);
        let verifier = Arc::clone(&connection.verifier);
        let conn = match ClientConnection::new(connection.config, server_name.clone()) {
            Ok(conn) => conn,
            Err(e) => {
                verifier.release(&record);
                return Err(ConfigError::new(format!("client session: {e}")));
            }
        };
        let mut session = RustlsSession::wrap(Connection::Client(conn), record);
        session.verifier = Some(verifier);
        session.client_sessions = connection.sessions.map(|store| (store, server_name));
        Ok(session)
    }

    pub(crate) fn server(
        engine: &ServerEngine,
        policy: &VerifyPolicy,
    ) -> Result<RustlsSession, ConfigError> {
        let record = Arc::new(HandshakeRecord::default());
        let connection = engine.connection(policy, &record)?;
        let conn = ServerConnection::new(connection.config)
            .map_err(|e| ConfigError::new(format!("server session: {e}")))?;
        let mut session = RustlsSession::wrap(Connection::Server(conn), record);
        session.verifier = connection.verifier;
        session.server_sessions = connection.sessions;
        Ok(session)
    }

    fn wrap(conn: Connection, record: Arc<HandshakeRecord>) -> RustlsSession {
        RustlsSession {
            conn,
            record,
            plain_len: 0,
            tls_pending: 0,
            peer_closed: false,
            notices: VecDeque::new(),
            client_sessions: None,
            server_sessions: None,
            verifier: None,
        }
    }

    /// Gives the verifier instance back once the handshake is over: a later session of
    /// this peer may resume with it.
    fn release_verifier(&mut self) {
        if let Some(verifier) = self.verifier.take() {
            verifier.release(&self.record);
        }
    }
}

impl TlsSession for RustlsSession {
    fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        self.conn.read_tls(rd)
    }

    fn process(&mut self) -> Result<(), TlsFailure> {
        let result = self.conn.process_new_packets();
        if !self.conn.is_handshaking() {
            self.release_verifier();
        }
        match result {
            Ok(state) => {
                for _ in 0..self.record.take_tickets() {
                    self.notices.push_back(BackendNotice::NewSessionTicket);
                }
                self.plain_len = state.plaintext_bytes_to_read();
                self.tls_pending = state.tls_bytes_to_write();
                if state.peer_has_closed() && !self.peer_closed {
                    self.peer_closed = true;
                    let mut alert = alerts::close_notify();
                    alert.description = "CloseNotify".into();
                    self.notices.push_back(BackendNotice::AlertReceived(alert));
                }
                Ok(())
            }
            Err(error) => {
                if matches!(error, rustls::Error::NoCertificatesPresented) {
                    // A required client certificate is missing: a refusal like any other.
                    self.record.record(Verification {
                        errors: vec![SslError::new(SslErrorKind::NoPeerCertificate)],
                        judgement: Judgement {
                            decision: Decision::Refuse,
                            interrupted_on: None,
                        },
                        ..Verification::default()
                    });
                }
                let mut failure = TlsFailure::handshake(format!("TLS error: {error}"));
                if let Some(alert) = alerts::received(&error) {
                    failure.message = format!("the peer sent a fatal alert: {}", alert.description);
                    failure.alert_received = Some(alert.clone());
                    self.notices.push_back(BackendNotice::AlertReceived(alert));
                } else if let Some(alert) = alerts::sent(&error) {
                    self.notices.push_back(BackendNotice::AlertSent(alert));
                }
                if !self.conn.is_handshaking() {
                    failure.socket_error = crate::enums::SocketError::SslInternalError;
                }
                Err(failure)
            }
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
        self.peer_closed
    }

    fn negotiated(&self) -> Option<Negotiated> {
        if self.conn.is_handshaking() {
            return None;
        }
        let version = match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => TlsVersion::Tls13,
            rustls::ProtocolVersion::TLSv1_2 => TlsVersion::Tls12,
            _ => return None,
        };
        let suite = self.conn.negotiated_cipher_suite()?;
        let name = suite
            .suite()
            .as_str()
            .unwrap_or("unknown")
            .replacen("TLS13_", "TLS_", 1);
        Some(Negotiated {
            protocol: SslProtocol::from_version(version),
            cipher_suite: name,
            key_exchange_group: self
                .conn
                .negotiated_key_exchange_group()
                .map(|g| crate::curve::from_rustls(g.name())),
            alpn: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            resumed: matches!(
                self.conn.handshake_kind(),
                Some(rustls::HandshakeKind::Resumed)
            ),
        })
    }

    fn peer_certificate_chain(&self) -> Vec<SslCertificate> {
        self.conn
            .peer_certificates()
            .map(|certs| {
                certs
                    .iter()
                    .map(|c| {
                        SslCertificate::from_der(c.as_ref())
                            .unwrap_or_else(|_| SslCertificate::from_unparsed_der(c.as_ref()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn poll_notice(&mut self) -> Option<BackendNotice> {
        let notice = self.notices.pop_front();
        if notice.is_none() && self.notices.capacity() > 0 {
            // Notices come in bursts (handshake, tickets, close): no queue kept allocated
            // on an idle connection.
            self.notices = VecDeque::new();
        }
        notice
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
        self.record.take()
    }

    fn set_policy(&mut self, policy: VerifyPolicy) {
        if let Some(verifier) = &self.verifier {
            verifier.update_policy(&self.record, policy);
        }
    }

    fn resumed_outcome(&self) -> Option<Outcome> {
        self.record.offered()
    }

    fn confirm_peer(&mut self, outcome: Option<Outcome>) {
        self.record.confirm(outcome);
        if let Some((store, name)) = &self.client_sessions {
            store.confirmed(name);
        }
        if let Some(store) = &self.server_sessions {
            store.confirmed();
        }
    }

    fn close(&mut self) {
        self.conn.send_close_notify();
        self.notices
            .push_back(BackendNotice::AlertSent(alerts::close_notify()));
    }
}
