//! # sslsocket
//!
//! A TLS socket for Rust programs with the behaviour of Qt's `QSslSocket`: clients and
//! servers, immediate or delayed (STARTTLS) handshakes, the *complete* list of verification
//! errors of a handshake, each tied to its certificate, and narrow, explicit ways to accept
//! them. TLS comes from rustls (default backend) or OpenSSL (feature `openssl`); nothing
//! here implements cryptography or TLS records.
//!
//! ```text
//!   app ──► blocking::SslSocket (std::net)   ─┐             ┌─► backend::rustls  (default)
//!   app ──► tokio::SslSocket (AsyncRead/Write)├─► core ─────┤
//!   cli ──► (either driver)                  ─┘ sans-IO    └─► backend::openssl (feature)
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
//! - `openssl`: the OpenSSL backend (system libssl through pkg-config; adds TLS 1.0/1.1
//!   when asked for, pre-shared keys, session export).
//!
//! ## A client in a few lines
//!
//! ```no_run
//! use std::io::Write;
//! use std::time::Duration;
//! use sslsocket::blocking::SslSocket;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut socket = SslSocket::new();
//! socket.connect_to_host_encrypted("example.com", 443);
//! socket.wait_for_encrypted(Duration::from_secs(10))?;
//! socket.write_all(b"HEAD / HTTP/1.0\r\n\r\n")?;
//! # Ok(()) }
//! ```
//!
//! ## STARTTLS
//!
//! ```no_run
//! use std::time::Duration;
//! use sslsocket::blocking::SslSocket;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut socket = SslSocket::new();
//! socket.connect_to_host("mail.example.com", 587);
//! socket.wait_for_connected(Duration::from_secs(10))?;
//! // ... read the greeting, send EHLO and STARTTLS, read "220" ...
//! socket.start_client_encryption()?; // unread plain text is discarded, never taken for TLS
//! socket.wait_for_encrypted(Duration::from_secs(10))?;
//! # Ok(()) }
//! ```
//!
//! ## Accepting one error, narrowly
//!
//! ```no_run
//! use std::time::Duration;
//! use sslsocket::blocking::SslSocket;
//! use sslsocket::prelude::*;
//! use sslsocket::{IgnoreRule, SslErrorKind};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut socket = SslSocket::new();
//! // Only a name mismatch is accepted; an expired or untrusted certificate still fails.
//! socket.ignore_ssl_error_rules(vec![IgnoreRule::AnyCertificate(SslErrorKind::HostNameMismatch)]);
//! socket.connect_to_host_encrypted("10.0.0.1", 443);
//! socket.wait_for_encrypted(Duration::from_secs(10))?;
//! for error in socket.ssl_handshake_errors() {
//!     println!("accepted: {error}");
//! }
//! # Ok(()) }
//! ```
//!
//! ## One surface, two drivers
//!
//! Qt's `QSslSocket` accessors and setters that do not wait (configuration, verification
//! decisions, buffers, session facts, events) are one trait, [`SslSocketExt`], implemented
//! by both sockets: `use sslsocket::prelude::*;` brings it in. Each driver adds only what
//! waits or moves bytes. Both sockets run over any transport (`SslSocket<S>`, TCP by
//! default).
//!
//! More: [the guide](docs::guide) (clients, servers, STARTTLS, mutual TLS, hooks and pause,
//! accepting one self-signed certificate narrowly, pinning, OCSP, backends) and the
//! [Qt → Rust names](docs::qt_mapping).
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod blocking;
pub mod cert;
pub mod config;
pub mod core;
mod crypto;
mod curve;
pub mod docs;
mod enums;
mod error;
pub mod ocsp;
pub mod prelude;
mod socket_api;
mod ssl_error;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
pub mod verify;

pub use cert::{
    AlternativeName, DhError, DigestAlgorithm, KeyAlgorithm, KeyType, Pkcs12Bundle, SslCertificate,
    SslCertificateExtension, SslCipher, SslDiffieHellmanParameters, SslKey, SubjectInfo,
};
pub use config::{
    CertificateRequest, ClientCertificateResolver, ReloadHandle, ServerCertificateResolver,
    ServerCredentials, SslConfiguration, SslIdentity, SslOption,
};
pub use core::{PreSharedKeyAuthenticator, SslEvent, SslHooks, Verdict};
pub use curve::SslEllipticCurve;
pub use enums::{
    Alert, AlertLevel, AlertType, ParseEnumError, PauseMode, PeerVerifyMode, SocketError,
    SocketOption, SocketState, SslMode, SslProtocol, TlsVersion,
};
pub use error::{ApiMisuse, ConfigError, ConfigErrorKind, Error, Result, TlsFailure};
pub use ocsp::{OcspCertificateStatus, OcspResponse, OcspRevocationReason};
pub use socket_api::{Handshake, PendingDecision, SslSocketExt};
pub use ssl_error::{IgnoreRule, SslError, SslErrorKind};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
