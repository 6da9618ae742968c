//! Qt's signals as one typed event enum, drained from the socket.

use crate::enums::{Alert, SocketError, SocketState, SslMode};
use crate::ssl_error::SslError;

/// Something that happened on a socket (Qt's signals).
///
/// Drained with `poll_event()` on the core or `take_events()` on a driver, in the order
/// Qt emits the signals.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum SslEvent {
    /// The host name was resolved (`hostFound`).
    HostFound,
    /// TCP is connected (`connected`), before any TLS.
    Connected,
    /// The socket state changed (`stateChanged`).
    StateChanged(SocketState),
    /// The mode changed (`modeChanged`): a handshake started.
    ModeChanged(SslMode),
    /// One verification error, as it was found (`peerVerifyError`).
    PeerVerifyError(SslError),
    /// The whole list of verification errors, once (`sslErrors`).
    SslErrors(Vec<SslError>),
    /// The handshake stopped at its first verification error (`handshakeInterruptedOnError`).
    HandshakeInterruptedOnError(SslError),
    /// The handshake finished (`encrypted`).
    Encrypted,
    /// A session ticket arrived (`newSessionTicketReceived`).
    NewSessionTicketReceived,
    /// We sent an alert (`alertSent`).
    AlertSent(Alert),
    /// The peer sent an alert (`alertReceived`).
    AlertReceived(Alert),
    /// New decrypted data can be read (`readyRead`); never for handshake bytes.
    ReadyRead,
    /// Plaintext bytes were handed to TLS and written (`bytesWritten`).
    BytesWritten(usize),
    /// TLS bytes were written to the wire (`encryptedBytesWritten`), exact counts.
    EncryptedBytesWritten(usize),
    /// The peer closed its side (`readChannelFinished`).
    ReadChannelFinished,
    /// An error occurred (`errorOccurred`).
    ErrorOccurred(SocketError),
    /// The connection is closed (`disconnected`).
    Disconnected,
}
