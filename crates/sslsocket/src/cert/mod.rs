//! Certificates and keys as types of their own (Qt's `QSslCertificate`, `QSslKey`).

mod certificate;
mod key;
mod name;

pub use certificate::{AlternativeName, SslCertificate};
pub use key::{KeyAlgorithm, SslKey};
pub use name::rfc4514;
