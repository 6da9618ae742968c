//! The backend under test. The suite runs once per backend (`SSLSOCKET_BACKEND` picks the
//! process's default); a test of a feature the active backend lacks checks what the
//! registry says and the clear error the API answers with, instead of passing silently.

use std::ffi::OsString;

use sslsocket::backend::{self, SupportedFeature};
use sslsocket::SocketError;

use super::{PeerProcess, SupportError, SupportResult};

/// The name of the backend new sockets use.
pub fn active_backend() -> &'static str {
    backend::active_backend().unwrap_or("none")
}

/// Whether the active backend lacks `feature`, by the registry. Says so on stderr, so
/// the path a test took shows with `--nocapture`.
pub fn lacks(feature: SupportedFeature) -> bool {
    let lacking = !backend::is_feature_supported(feature, None);
    if lacking {
        eprintln!(
            "{feature:?} is not supported by the {} backend: checking its clear error instead",
            active_backend()
        );
    }
    lacking
}

/// Whether the active backend is `name`, for a test that checks one backend's own
/// behaviour (the exact group it prefers, its version string). Says so on stderr when it
/// is not.
pub fn is_active(name: &str) -> bool {
    let active = active_backend() == name;
    if !active {
        eprintln!(
            "checks of the {name} backend itself are skipped on the {} backend",
            active_backend()
        );
    }
    active
}

/// Checks that an operation failed with the clear error of an unsupported feature: Qt's
/// `SslInvalidUserDataError`, a message that names `what`, says "not supported" and names
/// the active backend.
pub fn check_unsupported(error: SocketError, message: &str, what: &str) -> SupportResult<()> {
    let backend = active_backend();
    let clear = error == SocketError::SslInvalidUserDataError
        && message.contains(what)
        && message.contains(&format!("not supported by the {backend} backend"));
    if clear {
        Ok(())
    } else {
        Err(SupportError::new(format!(
            "expected a clear error that {what} is not supported by the {backend} backend, \
             got {error:?}: {message}"
        )))
    }
}

/// The variable that tells a peer function it was started by [`spawn_peer`].
pub const PEER_VARIABLE: &str = "SSLSOCKET_TEST_PEER";

/// This test binary again, as a peer on another backend (a process has one active
/// backend): runs the ignored test `name` alone, with `SSLSOCKET_BACKEND=backend`, these
/// variables and [`PEER_VARIABLE`] set. The peer prints its findings on stdout, one
/// `KEY value` line each; it is killed on drop.
pub fn spawn_peer(
    name: &str,
    backend: &str,
    vars: &[(&str, OsString)],
) -> SupportResult<PeerProcess> {
    let program = std::env::current_exe()?;
    let mut all: Vec<(&str, OsString)> = vec![
        ("SSLSOCKET_BACKEND", OsString::from(backend)),
        (PEER_VARIABLE, OsString::from("1")),
        ("RUST_BACKTRACE", OsString::from("0")),
    ];
    all.extend(vars.iter().cloned());
    let args = [
        "--ignored",
        "--exact",
        name,
        "--nocapture",
        "--test-threads",
        "1",
    ];
    PeerProcess::spawn_with_env(program.as_os_str(), &args, &all)
}

/// Whether this process is a peer started by [`spawn_peer`]; a peer function run any
/// other way (`cargo test -- --ignored`) says so and does nothing.
pub fn is_peer() -> bool {
    let peer = std::env::var_os(PEER_VARIABLE).is_some();
    if !peer {
        eprintln!("a peer process of another test, started by it; nothing to do alone");
    }
    peer
}
