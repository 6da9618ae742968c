//! # sslsocket
//!
//! A TLS socket for Rust programs with the behaviour of Qt's `QSslSocket`: clients and
//! servers, immediate or delayed (STARTTLS) handshakes, the *complete* list of verification
//! errors of a handshake, each tied to its certificate, and narrow, explicit ways to accept
//! them. TLS comes from rustls (default backend).
//!
//! ```text
//!   app ──► blocking::SslSocket (std::net)   ─┐             ┌─► backend::rustls  (default)
//!   app ──► tokio::SslSocket (AsyncRead/Write)├─► core ─────┤
//!   cli ──► (either driver)                  ─┘ sans-IO    └─► (backend trait)
//!          drivers: move bytes, wait        owns state     engines: bytes in/out, no sockets
//! ```
//!
//! - [`core::SslCore`] owns all state and does no I/O of its own;
//! - [`backend`] turns an [`SslConfiguration`] into a TLS engine;
//! - [`blocking`] and [`tokio`] are thin drivers.
//!
//! ## Features
//! - TLS is rustls 0.23 with the aws-lc-rs provider (always on: fastest handshakes,
//!   post-quantum hybrid key exchange; it builds with gcc alone).
//! - `native-roots` (default): the system CA store, loaded on demand.
//! - `tokio` (default): the async driver.
//!
//! The Qt → Rust name mapping is in `docs/qt-mapping.md` and the README.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod backend;
pub mod blocking;
pub mod cert;
pub mod config;
pub mod core;
mod crypto;
mod curve;
mod enums;
mod error;
pub mod ocsp;
mod ssl_error;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod verify;

pub use cert::{
    AlternativeName, DigestAlgorithm, KeyAlgorithm, KeyType, Pkcs12Bundle, SslCertificate,
    SslCertificateExtension, SslCipher, SslKey, SubjectInfo,
};
pub use config::{SslConfiguration, SslOption};
pub use core::{PreSharedKeyAuthenticator, SslEvent, SslHooks, Verdict};
pub use curve::SslEllipticCurve;
pub use enums::{
    Alert, AlertLevel, AlertType, PauseMode, PeerVerifyMode, SocketError, SocketOption,
    SocketState, SslMode, SslProtocol, TlsVersion,
};
pub use error::{ApiMisuse, ConfigError, Error, Result, TlsFailure};
pub use ocsp::{OcspCertificateStatus, OcspResponse, OcspRevocationReason};
pub use ssl_error::{IgnoreRule, SslError, SslErrorKind};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
