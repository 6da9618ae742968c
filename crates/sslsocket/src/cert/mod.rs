//! Certificates and keys as types of their own (Qt's `QSslCertificate`,
//! `QSslCertificateExtension`, `QSslKey`, `QSslCipher`,
//! `QSslDiffieHellmanParameters`), and PKCS#12 bundles.

mod bundle;
pub(crate) mod certificate;
mod cipher;
mod dh;
mod extension;
mod key;
mod key_info;
pub(crate) mod name;
mod path;
mod pbe;
mod text;

pub use bundle::{import_pkcs12, import_pkcs12_file, Pkcs12Bundle};
pub use certificate::{AlternativeName, DigestAlgorithm, SslCertificate};
pub use cipher::SslCipher;
pub use dh::{DhError, SslDiffieHellmanParameters};
pub use extension::SslCertificateExtension;
pub use key::{KeyAlgorithm, KeyType, SslKey};
pub use name::{escape_controls, rfc4514, SubjectInfo};

#[cfg(test)]
mod bundle_tests;
#[cfg(test)]
mod certificate_tests;
#[cfg(test)]
mod key_tests;
#[cfg(test)]
mod test_openssl;
