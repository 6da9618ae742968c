//! The README's backend table is what `sslsocket backends --markdown` prints with every
//! backend compiled in (`cargo run -p sslsocket-cli --all-features -- backends
//! --markdown`), so it runs with the CLI's `openssl` feature.
#![cfg(feature = "openssl")]

mod common;

use common::support::os_args;
use common::{exit_code, run, TestResult};

const START: &str = "<!-- backend-table:start -->\n";
const END: &str = "<!-- backend-table:end -->";

#[test]
fn readme_backend_table_is_up_to_date() -> TestResult {
    let out = run(&os_args!["backends", "--markdown"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    assert!(
        out.stdout.starts_with("| feature | rustls | openssl |\n"),
        "{out}"
    );

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path)?;
    let (_, rest) = readme
        .split_once(START)
        .ok_or("README.md has no `<!-- backend-table:start -->` line")?;
    let (block, _) = rest
        .split_once(END)
        .ok_or("README.md has no `<!-- backend-table:end -->` line")?;
    assert_eq!(
        block, out.stdout,
        "README.md's backend table is out of date; regenerate it with \
         `cargo run -p sslsocket-cli --all-features -- backends --markdown`"
    );
    Ok(())
}
