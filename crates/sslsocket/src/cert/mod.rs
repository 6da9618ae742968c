//! Certificates and keys as types of their own (Qt's `QSslCertificate`, `QSslKey`).

mod certificate;
mod key;
mod key_info;
mod name;
mod pbe;

pub use certificate::{AlternativeName, SslCertificate};
pub use key::{KeyAlgorithm, KeyType, SslKey};
pub use name::rfc4514;

#[cfg(test)]
mod key_tests;
#[cfg(test)]
mod test_openssl;
