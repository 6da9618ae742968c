//! Round 32 review of the command line against the contract (cli-contract.md). Each test
//! asserts what the contract says and pins one deviation that was observed, and fixed (the
//! `-v` close events and event times, the defaults in `--help`). Peers are on 127.0.0.1,
//! certificates are made at test time, every wait is bounded.

mod common;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::support::{os_args, Pki};
use common::{exit_code, run, s_server, TestResult};

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

// ---------------------------------------------------------------------------------------
// "-v, --verbose: every library event, one line each on stderr". When `connect` closes the
// connection itself (no --send, or a --send read ended by --timeout), the events of that
// close (StateChanged ClosingState / UnconnectedState, Disconnected) are never printed:
// the close runs after the report without draining the event queue
// (connect.rs `run` -> session::finish). A failed handshake does print `Disconnected`.
// ---------------------------------------------------------------------------------------

#[test]
fn verbose_prints_the_events_of_the_close_connect_makes() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &["-www"])?;
    for backend in backends() {
        let out = run(&os_args![
            "connect",
            format!("localhost:{}", server.port()),
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--backend",
            backend,
            "-v",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{backend}: {out}");
        let events = verbose_events(&out.stderr);
        assert!(
            events.iter().any(|(_, e)| e == "Encrypted"),
            "{backend}: {out}"
        );
        assert!(
            events.iter().any(|(_, e)| e == "Disconnected"),
            "{backend}: connect closed the connection, but -v printed no Disconnected:\n{out}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// "-v: every library event ... prefixed with the milliseconds since start (`+3.1ms
// Connected`, ...)". The prefix is the time the tool drained the queue, not the time of the
// event: a TLS 1.3 server sends its session tickets right after the handshake, but they
// are printed only when the post-handshake wait (as long as connect + handshake took, up to
// 1 s) ends. Behind a peer whose handshake takes 400 ms, the tickets that arrive with the
// handshake's end are stamped ~400 ms after `Encrypted` (events.rs EventLog::drain, fed by
// connect.rs `exchange` with one long wait).
// ---------------------------------------------------------------------------------------

/// A TCP relay to `upstream` that holds each connection `delay` before relaying it (the
/// ClientHello waits in the kernel); once started, bytes flow both ways at once.
fn delaying_relay(upstream: u16, delay: Duration) -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    thread::spawn(move || {
        for client in listener.incoming().take(4) {
            let Ok(client) = client else { return };
            thread::spawn(move || {
                thread::sleep(delay);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone())
                else {
                    return;
                };
                let forward = thread::spawn(move || {
                    let _ = io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let _ = io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Write);
                let _ = forward.join();
            });
        }
    });
    Ok(port)
}

#[test]
fn verbose_times_are_those_of_the_events() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &["-www"])?;
    let relay = delaying_relay(server.port(), Duration::from_millis(400))?;
    for backend in backends() {
        let out = run(&os_args![
            "connect",
            format!("localhost:{relay}"),
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--protocol",
            "tls1.3",
            "--backend",
            backend,
            "-v",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{backend}: {out}");
        let events = verbose_events(&out.stderr);
        let at = |name: &str| {
            events
                .iter()
                .find(|(_, e)| e == name)
                .map(|(ms, _)| *ms)
                .ok_or_else(|| format!("{backend}: no {name} line:\n{out}"))
        };
        let encrypted = at("Encrypted")?;
        let ticket = at("NewSessionTicketReceived")?;
        // The server's tickets follow its Finished on the same loopback connection: they
        // arrive within a few milliseconds of the handshake's end.
        assert!(
            ticket - encrypted < 150.0,
            "{backend}: tickets that arrived with the handshake are stamped {:.1} ms after \
             Encrypted (the time they were printed, not received):\n{out}",
            ticket - encrypted
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The contract fixes defaults: connect `--verify MODE` "`auto` (default)", `--backend NAME`
// "`rustls` (default)"; serve `--verify` "`query` (server default)". `--help` shows the
// defaults of `--timeout`, `--handshake-timeout` and `--protocol`, but says nothing of the
// default of `--verify` or of `--backend` (args.rs: no default_value / help text).
// ---------------------------------------------------------------------------------------

/// The long help's paragraph for `option` (from its line to the next option line).
fn help_paragraph(help: &str, option: &str) -> String {
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().split([' ', ',']).any(|word| word == option));
    let mut paragraph = String::new();
    if let Some(first) = lines.next() {
        paragraph.push_str(first);
        for line in lines {
            if line.trim_start().starts_with('-') {
                break;
            }
            paragraph.push('\n');
            paragraph.push_str(line);
        }
    }
    paragraph
}

#[test]
fn connect_help_names_the_default_verify_mode_and_backend() -> TestResult {
    let out = run(&os_args!["connect", "--help"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let verify = help_paragraph(&out.stdout, "--verify");
    assert!(
        verify.contains("default") && verify.contains("auto"),
        "connect --help does not say that `auto` is the default of --verify:\n{verify}"
    );
    let backend = help_paragraph(&out.stdout, "--backend");
    assert!(
        backend.contains("default") && backend.contains("rustls"),
        "connect --help does not say that `rustls` is the default of --backend:\n{backend}"
    );
    Ok(())
}

#[test]
fn serve_help_names_the_default_verify_mode_and_backend() -> TestResult {
    let out = run(&os_args!["serve", "--help"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let verify = help_paragraph(&out.stdout, "--verify");
    assert!(
        verify.contains("query") && verify.contains("default"),
        "serve --help does not say that `query` is the server's default --verify:\n{verify}"
    );
    let backend = help_paragraph(&out.stdout, "--backend");
    assert!(
        backend.contains("default") && backend.contains("rustls"),
        "serve --help does not say that `rustls` is the default of --backend:\n{backend}"
    );
    Ok(())
}
