//! The tokio `SslSocket`'s events: Qt's signals, queued by the core, taken without waiting
//! or awaited while the socket moves bytes.

use std::future::poll_fn;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite};

use crate::core::SslEvent;
use crate::tokio::SslSocket;

impl<S: AsyncRead + AsyncWrite + Unpin> SslSocket<S> {
    /// Waits for the next event, moving bytes meanwhile (decrypted data is buffered for
    /// the next read). `None` once the connection is over and every event was taken, or
    /// when no event can come until the application acts (it must read a full buffer).
    pub async fn next_event(&mut self) -> Option<SslEvent> {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// The polling form of [`next_event`](Self::next_event), for hand-written futures.
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<SslEvent>> {
        loop {
            if let Some(event) = self.core.poll_event() {
                return Poll::Ready(Some(event));
            }
            if self.stream.is_none() {
                return Poll::Ready(None);
            }
            let sent = self.poll_send(cx, true);
            if let Some(event) = self.core.poll_event() {
                return Poll::Ready(Some(event));
            }
            let received = self.poll_receive(cx);
            if let Some(event) = self.core.poll_event() {
                return Poll::Ready(Some(event));
            }
            match (sent, received) {
                // Something moved or failed (a failure queues its events): look again.
                (_, Poll::Ready(Err(_))) | (Poll::Ready(Err(_)), _) => continue,
                (Poll::Pending, _) | (_, Poll::Pending) => return Poll::Pending,
                (Poll::Ready(Ok(())), Poll::Ready(Ok(()))) => return Poll::Ready(None),
            }
        }
    }
}
