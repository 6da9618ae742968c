//! What the handshake settled on and what the peer showed: errors, chain, protocol,
//! cipher, ALPN, OCSP, resumption, exported keying material, session tickets.

use super::*;

impl SslCore {
    /// Every verification error of the last handshake, ignored or not (Qt's
    /// `sslHandshakeErrors`). Empty in `VerifyNone`, as in Qt: a peer that is not verified
    /// has no verification errors to report. (The errors are still found and kept with
    /// the session, so a stricter socket never resumes it as if it had none.)
    pub fn ssl_handshake_errors(&self) -> &[SslError] {
        if !self.reports_errors() {
            return &[];
        }
        &self.handshake_errors
    }

    /// The peer's chain as it sent it, leaf first (kept after a failed handshake).
    pub fn peer_certificate_chain(&self) -> &[SslCertificate] {
        &self.peer_chain
    }

    /// The peer's certificate.
    pub fn peer_certificate(&self) -> Option<&SslCertificate> {
        self.peer_chain.first()
    }

    /// On a server, the server name the client asked for (SNI) in the finished handshake,
    /// or in one that failed after the client's hello was read; `None` when it sent none,
    /// on a client, and before the handshake is over.
    pub fn requested_server_name(&self) -> Option<&str> {
        self.negotiated
            .as_ref()
            .and_then(|n| n.server_name.as_deref())
            .or(self.failed_server_name.as_deref())
    }

    /// The negotiated protocol, `UnknownProtocol` before a handshake.
    pub fn session_protocol(&self) -> SslProtocol {
        self.negotiated
            .as_ref()
            .map_or(SslProtocol::UnknownProtocol, |n| n.protocol)
    }

    /// What the handshake settled on.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The negotiated cipher (Qt's `sessionCipher`).
    pub fn session_cipher(&self) -> Option<crate::cert::SslCipher> {
        let negotiated = self.negotiated.as_ref()?;
        let cipher =
            crate::cert::SslCipher::described_for(&negotiated.cipher_suite, negotiated.protocol)?;
        if cipher.authentication_method() == "PSK" {
            // The peer was authenticated by the key, not by a certificate.
            return Some(cipher);
        }
        // The server authenticates with its own key (the client's certificate, if any,
        // says nothing of the suite): the server's certificate is the local one on a
        // server, the peer's on a client.
        let server_certificate = if self.mode == SslMode::SslServerMode {
            self.configuration.local_certificate()
        } else {
            self.peer_chain.first()
        };
        // A TLS 1.3 session authenticated by an external pre-shared key names no
        // certificate's key (round 34: the server named its unsent certificate's, the
        // client nothing).
        let auth = if negotiated.authenticated_by_key {
            "PSK".to_string()
        } else {
            server_certificate.map_or_else(String::new, |cert| cert.public_key_algorithm_name())
        };
        // TLS 1.3 names no key exchange in its suites: the group says which it was.
        let finite_field = negotiated
            .key_exchange_group
            .as_deref()
            .is_some_and(|group| group.starts_with("ffdhe"));
        let key_exchange = if finite_field { "DH" } else { "ECDH" };
        Some(cipher.with_session(key_exchange, &auth))
    }

    /// Exports `len` bytes of keying material bound to this session (RFC 5705, RFC 8446
    /// §7.5); both ends get the same bytes for the same label and context.
    pub fn export_keying_material(
        &self,
        len: usize,
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>, Error> {
        match (&self.session, self.is_encrypted()) {
            (Some(session), true) => Ok(session.export_keying_material(len, label, context)?),
            _ => Err(
                ApiMisuse("keying material exists only once the handshake finished".into()).into(),
            ),
        }
    }

    /// The ALPN outcome (Qt's `nextProtocolNegotiationStatus`).
    pub fn next_protocol_negotiation_status(&self) -> NextProtocolNegotiationStatus {
        match self.next_negotiated_protocol() {
            Some(_) => NextProtocolNegotiationStatus::NextProtocolNegotiationNegotiated,
            None if self.was_encrypted()
                && !self.configuration.allowed_next_protocols().is_empty() =>
            {
                NextProtocolNegotiationStatus::NextProtocolNegotiationUnsupported
            }
            None => NextProtocolNegotiationStatus::NextProtocolNegotiationNone,
        }
    }

    /// The session as bytes, to resume it in another process (Qt's `sessionTicket()`).
    /// rustls 0.23 cannot serialize a session, so on that backend this is an
    /// `UnsupportedFeature`-style configuration error, never fake bytes; in-process
    /// resumption between sockets of one configuration works without it. The OpenSSL
    /// backend exports the last session of an accepted peer (DER) when
    /// `SslOptionDisableSessionPersistence` is off.
    pub fn session_ticket(&self) -> Result<Vec<u8>, Error> {
        if let Some(ticket) = self.session.as_ref().and_then(|s| s.session_ticket()) {
            return Ok(ticket);
        }
        let backend = self
            .backend_name()
            .or_else(backend::active_backend)
            .unwrap_or("active");
        let can_export = self
            .session
            .as_ref()
            .is_some_and(|s| s.can_export_sessions());
        let message = if can_export {
            "no session to export: none received, the peer was not accepted, or \
             SslOptionDisableSessionPersistence is on"
                .to_string()
        } else {
            format!("session export is not supported by the {backend} backend")
        };
        Err(ConfigError::new(message).into())
    }

    /// Qt's `setSessionTicket()`: refused on every backend, whatever the bytes. A session
    /// restored from bytes carries no verification this process made: resuming it would
    /// accept a peer whose certificate chain was never judged here (no ignore list, pin or
    /// CA set of ours ever saw it), and a session is never resumed past trust. Sockets of
    /// one configuration resume each other's sessions in-process (round 37: the message
    /// named only the backend, as if another one could import).
    pub fn set_session_ticket(&mut self, _ticket: &[u8]) -> Result<(), Error> {
        Err(ConfigError::new(
            "session import is not supported: a session restored from bytes was never \
             verified by this process (sockets of one configuration resume in-process)",
        )
        .into())
    }

    /// The stapled OCSP responses received and checked (client, with stapling enabled;
    /// Qt's `ocspResponses()`).
    pub fn ocsp_responses(&self) -> Vec<crate::ocsp::OcspResponse> {
        self.ocsp_responses.clone()
    }

    /// Whether the session was resumed (beyond Qt).
    pub fn is_session_resumed(&self) -> bool {
        self.negotiated.as_ref().is_some_and(|n| n.resumed)
    }

    /// The key exchange group that was used (Qt's `ephemeralServerKey`, by name).
    pub fn ephemeral_key_group(&self) -> Option<&str> {
        self.negotiated
            .as_ref()
            .and_then(|n| n.key_exchange_group.as_deref())
    }

    /// The ALPN protocol agreed on.
    pub fn next_negotiated_protocol(&self) -> Option<&[u8]> {
        self.negotiated.as_ref().and_then(|n| n.alpn.as_deref())
    }

    /// The name of the backend of this connection.
    pub fn backend_name(&self) -> Option<&'static str> {
        self.backend.as_ref().map(|b| b.name())
    }
}
