//! Certificates and keys as types of their own (Qt's `QSslCertificate`, `QSslKey`).

mod certificate;
mod cipher;
mod key;
mod name;

pub use certificate::{AlternativeName, SslCertificate};
pub use cipher::SslCipher;
pub use key::{KeyAlgorithm, SslKey};
pub use name::rfc4514;
