//! Documentation beyond the API pages: a guide to the common tasks and the Qt → Rust
//! name table. Nothing here is code.

/// The guide: clients, servers (blocking and tokio), STARTTLS, mutual TLS, hooks and
/// pause, accepting one self-signed certificate narrowly, pinning, OCSP, choosing a
/// backend.
pub mod guide {
    #![doc = include_str!("guide.md")]
}

/// Qt → Rust names: what each `QSslSocket`, `QSslConfiguration`, `QSslCertificate`, ...
/// call is called here (the same table as the README's).
pub mod qt_mapping {
    #![doc = include_str!("qt_mapping.md")]
}
