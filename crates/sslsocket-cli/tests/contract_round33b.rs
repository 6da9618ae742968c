//! Review 33b of the command line against the contract (cli-contract.md): `connect
//! --reconnect` sequences, and the `ciphers` subcommand against `connect --ciphers`.
//! Peers are on 127.0.0.1, certificates are made at test time, every wait is bounded and
//! every child process is killed on drop.

mod common;

use std::ffi::OsString;
use std::time::{Duration, Instant};

use common::support::{os_args, Pki};
use common::{exit_code, report, run, Serve, TestResult};
use serde_json::Value;

/// The backends this build has.
fn backends() -> Vec<&'static str> {
    let mut names = vec!["rustls"];
    if cfg!(feature = "openssl") {
        names.push("openssl");
    }
    names
}

/// The `-v` lines of stderr as (milliseconds, event text).
fn verbose_events(stderr: &str) -> Vec<(f64, String)> {
    stderr
        .lines()
        .filter_map(|line| {
            let (ms, event) = line.strip_prefix('+')?.split_once("ms ")?;
            Some((ms.parse().ok()?, event.to_string()))
        })
        .collect()
}

/// Our `serve --json` on `backend` with a leaf for localhost/127.0.0.1 under the PKI.
fn serve(pki: &Pki, backend: &str, extra: &[&str]) -> Result<Serve, Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let mut args = os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--backend",
        backend
    ];
    args.extend(extra.iter().map(OsString::from));
    Serve::start(&args)
}

// Was a defect: "--reconnect: the first connection reads for up to 1.5 s after the handshake (or until a session ticket arrives) before it closes" - with TLS 1.2 the ticket arrives during the handshake, yet the first connection always waits the full 1.5 s.
#[test]
fn reconnect_tls12_first_connection_closes_soon_after_its_ticket() -> TestResult {
    let pki = Pki::new()?;
    let mut failures = Vec::new();
    for server_backend in backends() {
        let serve = serve(&pki, server_backend, &[])?;
        for backend in backends() {
            let out = run(&os_args![
                "connect",
                &serve.address,
                "--cafile",
                pki.root_pem(),
                "--no-system-ca",
                "--protocol",
                "tls1.2",
                "--backend",
                backend,
                "--reconnect",
                "-v",
                "--json"
            ])?;
            assert_eq!(exit_code(&out), Some(0), "{out}");
            let r = report(&out)?;
            assert_eq!(r["protocol"], "TlsV1_2", "{r}");
            assert_eq!(r["reconnect"]["session_resumed"], true, "{r}");
            let events = verbose_events(&out.stderr);
            let at = |name: &str| {
                events
                    .iter()
                    .find(|(_, e)| e == name || e.starts_with(&format!("{name} ")))
                    .map(|(ms, _)| *ms)
            };
            let (Some(ticket), Some(encrypted), Some(closing)) = (
                at("NewSessionTicketReceived"),
                at("Encrypted"),
                at("StateChanged ClosingState"),
            ) else {
                return Err(format!("missing events:\n{out}").into());
            };
            // The ticket came with the handshake; the first connection should close about
            // a round trip (settle, at most 1 s) plus a grace after it, not 1.5 s later.
            let after = closing - ticket.max(encrypted);
            if after >= 1200.0 {
                failures.push(format!(
                    "serve {server_backend} / connect {backend}: ticket at +{ticket}ms, \
                     encrypted at +{encrypted}ms, first close at +{closing}ms ({after:.0} ms \
                     after the ticket)"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

// Was a defect: "--reconnect | after the first session closes, connect again with the same configuration and report both" - with --send and a server that stays open (serve --echo, s_server), the first read eats the whole --timeout and the second connection reports "connecting: operation timed out", exit 3 ("3 | network: ... timed out before the handshake finished") for two good connections.
#[test]
fn reconnect_with_send_to_a_server_that_stays_open_still_reconnects() -> TestResult {
    let pki = Pki::new()?;
    let serve = serve(&pki, "rustls", &["--echo"])?;
    let mut failures = Vec::new();
    for backend in backends() {
        let started = Instant::now();
        let out = run(&os_args![
            "connect",
            &serve.address,
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--backend",
            backend,
            "--send",
            "ping\\n",
            "--timeout",
            "4000",
            "--reconnect",
            "--json"
        ])?;
        let elapsed = started.elapsed();
        let r = report(&out)?;
        assert_eq!(r["encrypted"], true, "{r}");
        assert_eq!(r["received"], "ping\n", "{r}");
        let second: &Value = &r["reconnect"];
        let ok = exit_code(&out) == Some(0)
            && second["encrypted"] == true
            && second["session_resumed"] == true
            && second["received"] == "ping\n";
        if !ok {
            failures.push(format!(
                "{backend}: exit {:?} after {elapsed:?}; reconnect: encrypted {}, \
                 session_resumed {}, socket_error {}, error_string {}",
                exit_code(&out),
                second["encrypted"],
                second["session_resumed"],
                second["socket_error"],
                second["error_string"]
            ));
        }
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}: {out}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

// Was a defect: "--ciphers LIST | colon-separated IANA names, in preference order (set_ciphers)" - `sslsocket ciphers --backend openssl` (supported_ciphers) lists suites (GOST, IDEA, SEED) that `connect --backend openssl --ciphers NAME` then rejects as bad input (exit 2, "no cipher match").
#[test]
fn every_cipher_the_ciphers_command_lists_is_accepted_by_connect() -> TestResult {
    // Nothing listens on this port: an accepted cipher list gets as far as the connection
    // (refused, exit 3); a rejected one is bad input (exit 2) before it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = closed.local_addr()?.port();
    drop(closed);
    let mut rejected = Vec::new();
    for backend in backends() {
        let out = run(&os_args!["ciphers", "--backend", backend, "--json"])?;
        assert_eq!(exit_code(&out), Some(0), "{out}");
        let list = report(&out)?;
        let names: Vec<String> = list
            .as_array()
            .ok_or("ciphers --json is not an array")?
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect();
        assert!(!names.is_empty(), "{out}");
        for name in names {
            let out = run(&os_args![
                "connect",
                format!("127.0.0.1:{port}"),
                "--backend",
                backend,
                "--ciphers",
                &name,
                "--timeout",
                "2000"
            ])?;
            if exit_code(&out) == Some(2) {
                rejected.push(format!("{backend} {name}: {}", out.stderr.trim()));
            }
        }
    }
    assert!(
        rejected.is_empty(),
        "listed by `ciphers` but refused by `connect --ciphers`: {rejected:#?}"
    );
    Ok(())
}
