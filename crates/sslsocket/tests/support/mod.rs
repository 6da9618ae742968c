//! Shared helpers for the integration tests: a PKI made at test time ([`pki`]) and real
//! OpenSSL peers on loopback ([`peers`], on top of [`process`]). Every test binary includes
//! this with `mod support;`, so not every binary uses every item.
// Each test binary uses a different part, and re-exports count as unused imports there.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod attack;
pub mod backends;
pub mod chains;
pub mod config;
pub mod drivers;
pub mod duplex;
pub mod ocsp;
pub mod peers;
pub mod pki;
pub mod process;
pub mod psk;
pub mod raw;
pub mod trust;

use std::error::Error;
use std::fmt;

pub use backends::{active_backend, check_unsupported, is_active, is_peer, lacks, spawn_peer};
pub use config::{raw_server_config, serving, trusting};
pub use drivers::{serve_one, Blocking, ClientDriver, Tokio};
pub use ocsp::ocsp_response;
pub use peers::{free_port, openssl_run, openssl_version, OpensslClient, OpensslServer};
pub use pki::{Eku, Issued, IssuedBy, KeyAlg, LeafSpec, Pki, Validity};
pub use process::{wait_until, PeerProcess, RunOutput};
pub use psk::{PskHooks, PSK, PSK_HEX, PSK_IDENTITY};

/// Result of the support helpers. The error is `Send + Sync + 'static`, so `?` converts it
/// into `Box<dyn Error>`, `Box<dyn Error + Send + Sync>` or `anyhow::Error`.
pub type SupportResult<T> = Result<T, SupportError>;

/// What went wrong inside a helper, as a readable message (including any captured output of
/// the process involved, so a failing test explains itself).
#[derive(Debug)]
pub struct SupportError(String);

impl SupportError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for SupportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for SupportError {}

impl From<std::io::Error> for SupportError {
    fn from(e: std::io::Error) -> Self {
        Self(format!("I/O error: {e}"))
    }
}

impl From<rcgen::Error> for SupportError {
    fn from(e: rcgen::Error) -> Self {
        Self(format!("rcgen: {e}"))
    }
}

impl From<pem::PemError> for SupportError {
    fn from(e: pem::PemError) -> Self {
        Self(format!("PEM: {e}"))
    }
}

/// Builds a `Vec<OsString>` from a mix of `&str`, `String`, `&Path`, `PathBuf`… so command
/// lines can mix flags and paths: `os_args!["-CAfile", pki.root_pem(), "-brief"]`.
macro_rules! os_args {
    ($($arg:expr),* $(,)?) => {
        ::std::vec::Vec::<::std::ffi::OsString>::from([$(
            ::std::ffi::OsString::from(::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$arg))
        ),*])
    };
}
pub(crate) use os_args;
