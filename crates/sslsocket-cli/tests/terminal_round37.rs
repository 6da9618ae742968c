//! Round 37 (own work): what a peer chooses reaches the terminal without the means to
//! disguise it. Real peers on 127.0.0.1 only; every wait is bounded.

mod common;

use std::ffi::OsString;

use common::support::{os_args, Pki};
use common::{exit_code, report, run, Serve, TestResult};

type BoxError = Box<dyn std::error::Error>;

fn serve_args(pki: &Pki, extra: &[&str]) -> Result<Vec<OsString>, BoxError> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut args = os_args!["--cert", leaf.chain_pem, "--key", leaf.key_pem];
    args.extend(extra.iter().map(OsString::from));
    Ok(args)
}

// Was a defect (round 36, left): the readable report printed a peer's Unicode
// bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE, U+2066..U+2069 isolates) raw, so
// the peer's text could reorder what the terminal shows after it ("Trojan Source"). They
// are escaped per UTF-8 byte now, as control characters are; the JSON stays exact.
#[test]
fn connect_send_escapes_bidirectional_controls_in_text_only() -> TestResult {
    let pki = Pki::new()?;
    let raw = "ok \u{202e}txt.exe\u{202c} \u{2066}x\u{2069} \u{200f}\n";
    let serve = Serve::start(&serve_args(&pki, &["--echo"])?)?;
    let base = os_args![
        "connect",
        serve.address.clone(),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--peer-name",
        "localhost",
        "--send",
        raw,
        "--timeout",
        "1500"
    ];
    let out = run(&base)?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let expected = "ok \\E2\\80\\AEtxt.exe\\E2\\80\\AC \\E2\\81\\A6x\\E2\\81\\A9 \\E2\\80\\8F\n";
    assert!(
        out.stdout.contains(expected),
        "bidirectional controls not escaped:\n{:?}",
        out.stdout
    );
    for c in ['\u{202e}', '\u{202c}', '\u{2066}', '\u{2069}', '\u{200f}'] {
        assert!(!out.stdout.contains(c), "{c:?} printed raw");
    }
    let mut json = base.clone();
    json.push("--json".into());
    let out = run(&json)?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert_eq!(report(&out)?["received"], raw);
    Ok(())
}
