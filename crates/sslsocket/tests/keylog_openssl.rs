//! The OpenSSL backend's key log file is created readable by its owner only (0600), as
//! rustls's is: it holds every secret of the connections. Its own binary: the backend
//! and `SSLKEYLOGFILE` are both process-wide.
#![cfg(all(feature = "openssl", unix))]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use sslsocket::backend;
use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{SslCertificate, SslConfiguration};
use support::{wait_until, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn the_openssl_backend_creates_its_key_log_file_with_mode_0600() -> TestResult {
    if backend::set_active_backend("openssl").is_err() {
        return Err("the openssl backend could not be selected".into());
    }
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let path = pki.dir.path().join("openssl.keylog");
    // The only test of this binary: the variable is read when the engine is built.
    std::env::set_var("SSLKEYLOGFILE", &path);
    let server = OpensslServer::start(&leaf.openssl_args())?;

    let mut configuration = SslConfiguration::default();
    configuration.set_ca_certificates(SslCertificate::from_file(pki.root_pem())?);
    configuration.set_key_logging(true);
    let mut socket = SslSocket::with_configuration(configuration);
    socket.connect_to_host_encrypted("localhost", server.port());
    socket.wait_for_encrypted(Duration::from_secs(10))?;
    assert_eq!(socket.core().backend_name(), Some("openssl"));
    socket.close()?;

    let written = || std::fs::read_to_string(&path).is_ok_and(|text| text.lines().count() >= 5);
    assert!(
        wait_until(Instant::now() + Duration::from_secs(5), written),
        "no key log written"
    );
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key log mode {mode:o}");
    Ok(())
}
