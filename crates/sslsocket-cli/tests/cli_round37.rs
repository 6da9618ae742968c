//! Round 37 review of the command line against its contract (cli-contract.md v2). Real
//! peers on 127.0.0.1 only (`openssl s_server`, our own `serve`); every wait is bounded.
//! PSK needs the OpenSSL backend.
#![cfg(feature = "openssl")]

mod common;

use std::ffi::OsString;
use std::path::PathBuf;

use common::support::{os_args, OpensslServer};
use common::{exit_code, report, run, TestResult};

type BoxError = Box<dyn std::error::Error>;

fn scratch() -> Result<tempfile::TempDir, BoxError> {
    Ok(tempfile::Builder::new().prefix("rv37cli").tempdir()?)
}

/// A path inside `dir` whose last component is not UTF-8 (`key\xff.hex`).
#[cfg(unix)]
fn non_utf8_path(dir: &std::path::Path, stem: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut name = stem.to_vec();
    name.extend_from_slice(b"\xff.txt");
    dir.join(std::ffi::OsStr::from_bytes(&name))
}

/// `file:PATH` as one argument, PATH's bytes as given.
fn file_form(path: &std::path::Path) -> OsString {
    let mut arg = OsString::from("file:");
    arg.push(path.as_os_str());
    arg
}

const PSK_KEY: &str = "00112233445566778899aabbccddeeff";

// Was a defect (round 37): `--psk-key file:PATH` is parsed as UTF-8 text by clap, so a key file whose path
// is not UTF-8 is refused with "invalid UTF-8 was detected" (exit 2) before it is opened,
// against the contract's "FILE arguments are operating-system paths, not text: any byte
// string the OS accepts is opened as given" (`--pass file:PATH` opens the same path).
#[cfg(all(unix, feature = "openssl"))]
#[test]
fn psk_key_file_with_a_non_utf8_path_is_opened() -> TestResult {
    let dir = scratch()?;
    let key_file = non_utf8_path(dir.path(), b"psk");
    std::fs::write(&key_file, format!("{PSK_KEY}\n"))?;
    let server = OpensslServer::start(&os_args![
        "-nocert",
        "-psk",
        PSK_KEY,
        "-psk_identity",
        "id",
        "-quiet",
        "-tls1_3"
    ])?;
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{}", server.port()),
        "--backend",
        "openssl",
        "--psk-identity",
        "id",
        "--psk-key",
        file_form(&key_file),
        "--timeout",
        "5000",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["encrypted"], true, "{r}");
    assert_eq!(r["cipher"]["authentication"], "PSK", "{r}");
    Ok(())
}
