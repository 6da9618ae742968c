//! One `use` for the socket surface both drivers share:
//!
//! ```
//! use sslsocket::prelude::*;
//! ```
//!
//! brings [`SslSocketExt`] (Qt's non-waiting `QSslSocket` accessors and setters, on the
//! blocking and the tokio socket alike) and the values the handshake hands back.

pub use crate::socket_api::{Handshake, PendingDecision, SslSocketExt};
