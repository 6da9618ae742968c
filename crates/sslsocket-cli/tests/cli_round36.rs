//! Review 36 (C): the command line against cli-contract.md, sentence by sentence, with
//! hostile inputs: files that never end or never open, peers that truncate, stall, lie in
//! the STARTTLS phase, on both backends. Peers are on 127.0.0.1, certificates are made at
//! test time, every wait is bounded and every child process is killed on drop.

mod common;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::support::raw::raw_peer;
use common::support::{os_args, raw_server_config, PeerProcess, Pki};
use common::{exit_code, report, run, TestResult, BIN};
use tokio_rustls::rustls;

const WAIT: Duration = Duration::from_secs(10);

/// The backends this build has.
fn backends() -> Vec<&'static str> {
    let mut names = vec!["rustls"];
    if cfg!(feature = "openssl") {
        names.push("openssl");
    }
    names
}

/// `connect 127.0.0.1:port` on `backend`, trusting `ca` only, verifying `localhost`.
fn connect_args(ca: &Path, port: u16, backend: &str, extra: &[&str]) -> Vec<OsString> {
    let mut args = os_args![
        "connect",
        format!("127.0.0.1:{port}"),
        "--peer-name",
        "localhost",
        "--cafile",
        ca,
        "--no-system-ca",
        "--backend",
        backend,
        "--timeout",
        "5000"
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;
/// A scripted peer's port and the thread serving it.
type Peer = (u16, thread::JoinHandle<Result<(), String>>);
/// A case of the STARTTLS table: label, protocol, the server's script, the exit code.
type StartTlsCase = (&'static str, &'static str, fn() -> Script, i32);

/// Writes `data` inside TLS, then closes TCP without close_notify.
fn truncate_after(mut tls: Tls, data: &[u8]) -> Result<(), String> {
    tls.write_all(data).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let _ = tls.sock.shutdown(Shutdown::Write);
    thread::sleep(Duration::from_millis(300));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------------------

// Held: contract: "If the peer closes TCP after the handshake without close_notify, every byte
// received before the close is still reported, socket_error is RemoteHostClosedError (the
// truncation is visible, never mistaken for a clean end), event stays encrypted, and
// connect exits 0." Here without --send (the short read after the handshake), readable
// report and JSON, both backends.
#[test]
fn truncation_without_send_is_reported_in_json_and_text() -> TestResult {
    let pki = Pki::new()?;
    let mut failures = Vec::new();
    for backend in backends() {
        for json in [true, false] {
            let (port, server) = raw_peer(&pki, |tls| truncate_after(tls, b"early words"))?;
            let mut extra = vec![];
            if json {
                extra.push("--json");
            }
            let out = run(&connect_args(pki.root_pem(), port, backend, &extra))?;
            let _ = server.join();
            if exit_code(&out) != Some(0) {
                failures.push(format!(
                    "{backend} json={json}: exit {:?}\n{out}",
                    exit_code(&out)
                ));
                continue;
            }
            if json {
                let r = report(&out)?;
                if r["socket_error"] != "RemoteHostClosedError"
                    || r["received"] != "early words"
                    || !r["error_string"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("close_notify")
                {
                    failures.push(format!("{backend}: {r}"));
                }
            } else if !out.stdout.contains("RemoteHostClosedError")
                || !out.stdout.contains("close_notify")
                || !out.stdout.contains("early words")
            {
                failures.push(format!("{backend} text:\n{out}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// Held: a truncation in the middle of a record (the peer's TCP ends after half a record): the
// whole records before it are still reported, and the end is a truncation, not a clean
// close.
#[test]
fn truncation_inside_a_record_keeps_the_earlier_data() -> TestResult {
    let pki = Pki::new()?;
    let mut failures = Vec::new();
    for backend in backends() {
        let (port, server) = raw_peer(&pki, |mut tls| {
            let mut got = [0u8; 64];
            let _ = tls.read(&mut got);
            tls.write_all(b"whole record").map_err(|e| e.to_string())?;
            tls.flush().map_err(|e| e.to_string())?;
            // A second record, cut after its first 10 bytes.
            tls.conn
                .writer()
                .write_all(b"this record never ends")
                .map_err(|e| e.to_string())?;
            let mut record = Vec::new();
            tls.conn.write_tls(&mut record).map_err(|e| e.to_string())?;
            tls.sock
                .write_all(record.get(..10).unwrap_or_default())
                .map_err(|e| e.to_string())?;
            thread::sleep(Duration::from_millis(100));
            let _ = tls.sock.shutdown(Shutdown::Write);
            thread::sleep(Duration::from_millis(300));
            Ok(())
        })?;
        let out = run(&connect_args(
            pki.root_pem(),
            port,
            backend,
            &["--send", "hi", "--json"],
        ))?;
        let _ = server.join();
        let r = report(&out)?;
        if exit_code(&out) != Some(0)
            || r["received"] != "whole record"
            || r["socket_error"] != "RemoteHostClosedError"
        {
            failures.push(format!("{backend}: exit {:?} {r}", exit_code(&out)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// Held: --reconnect with a first connection that is truncated: both reported, the first with
// RemoteHostClosedError, exit 0.
#[test]
fn reconnect_reports_a_truncated_first_connection() -> TestResult {
    let pki = Pki::new()?;
    let mut failures = Vec::new();
    for backend in backends() {
        let config = raw_server_config(&pki)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let server = thread::spawn(move || -> Result<(), String> {
            for round in 0..2 {
                let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
                tcp.set_read_timeout(Some(WAIT))
                    .map_err(|e| e.to_string())?;
                let mut conn =
                    rustls::ServerConnection::new(config.clone()).map_err(|e| e.to_string())?;
                let mut tcp = tcp;
                while conn.is_handshaking() {
                    conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
                }
                let tls = rustls::StreamOwned::new(conn, tcp);
                if round == 0 {
                    truncate_after(tls, b"first")?;
                } else {
                    let mut tls = tls;
                    tls.write_all(b"second").map_err(|e| e.to_string())?;
                    tls.conn.send_close_notify();
                    tls.flush().map_err(|e| e.to_string())?;
                    thread::sleep(Duration::from_millis(300));
                }
            }
            Ok(())
        });
        let out = run(&connect_args(
            pki.root_pem(),
            port,
            backend,
            &["--reconnect", "--json"],
        ))?;
        let served = server.join();
        let r = report(&out)?;
        if exit_code(&out) != Some(0)
            || r["received"] != "first"
            || r["socket_error"] != "RemoteHostClosedError"
            || r["reconnect"]["received"] != "second"
            || !r["reconnect"]["socket_error"].is_null()
        {
            failures.push(format!(
                "{backend}: exit {:?} {r} {served:?}",
                exit_code(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Files that never open
// ---------------------------------------------------------------------------------------

fn mkfifo(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let status = std::process::Command::new("mkfifo").arg(path).status()?;
    if !status.success() {
        return Err(format!("mkfifo {}: {status}", path.display()).into());
    }
    Ok(())
}

// Was a defect (round 36): contract, robustness: "No input, file or network, makes the tool panic, crash or
// hang past --timeout." A named pipe (FIFO) that nobody writes to, given as any input file
// of `connect` (--cafile, --cert, --key, --ignore NAME@FILE, --pass file:, --keylog),
// blocks the tool for ever in open(2) (reading would block next, for a writer that stays
// silent): `connect --timeout 1000` is still running after 6 s. The files are opened
// before the deadline exists (plan.rs `tls_configuration` -> `SslCertificate::from_file`
// / `SslKey::from_file`, `ignore_rules`, secret.rs `resolve`, keylog.rs `prepare`, all
// called from connect.rs `main` before `Deadline::after`). Round 34 bounded how much of
// such a file is read, not how long opening and reading may take. Expected: exit 2 with
// one line within --timeout: open input files with O_NONBLOCK and refuse (or wait, up to
// the deadline, on) a FIFO or other file that is not regular, or count the file reading
// into --timeout. The same blocks `cert FILE`, `serve --cert/--key/--ocsp-response/
// --write-cert` and a SIGHUP reload (whose task then never takes the next SIGHUP).
#[test]
fn a_fifo_input_file_does_not_hang_connect_past_its_timeout() -> TestResult {
    let pki = Pki::new()?;
    let dir = tempfile::tempdir()?;
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo)?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut ignore = OsString::from("HostNameMismatch@");
    ignore.push(&fifo);
    let mut pass = OsString::from("file:");
    pass.push(&fifo);
    let cases: Vec<(&str, Vec<OsString>)> = vec![
        ("--cafile", os_args!["--cafile", fifo]),
        ("--cert", os_args!["--cert", fifo, "--key", leaf.key_pem]),
        ("--key", os_args!["--cert", leaf.cert_pem, "--key", fifo]),
        ("--ignore", os_args!["--ignore", ignore]),
        (
            "--pass",
            os_args![
                "--cert",
                leaf.cert_pem,
                "--key",
                leaf.key_pem,
                "--pass",
                pass
            ],
        ),
        ("--keylog", os_args!["--keylog", fifo]),
    ];
    let mut failures = Vec::new();
    for (what, extra) in cases {
        let mut args = os_args!["connect", "127.0.0.1:9", "--timeout", "1000", "--json"];
        args.extend(extra);
        let started = Instant::now();
        let mut process = PeerProcess::spawn(BIN, &args)?;
        let out = process.wait(Duration::from_secs(6))?;
        if out.timed_out {
            failures.push(format!(
                "{what} FIFO: still running after {:?} (--timeout 1000)",
                started.elapsed()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// STARTTLS servers that lie
// ---------------------------------------------------------------------------------------

type Script =
    Box<dyn FnOnce(&mut BufReader<TcpStream>, &mut TcpStream) -> Result<(), String> + Send>;

/// A plain-text server for one connection that runs `script`, then closes.
fn plain_server(script: Script) -> Result<Peer, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> Result<(), String> {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut writer = tcp.try_clone().map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(tcp);
        script(&mut reader, &mut writer)
    });
    Ok((port, server))
}

fn line(reader: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line)
}

fn say(writer: &mut TcpStream, text: &[u8]) -> Result<(), String> {
    writer.write_all(text).map_err(|e| e.to_string())
}

/// An SMTP server up to the STARTTLS command, then `after`.
fn smtp_until_starttls(after: &'static [u8]) -> Script {
    Box::new(move |reader, writer| {
        say(writer, b"220 liar ESMTP\r\n")?;
        line(reader)?;
        say(writer, b"250-liar\r\n250 STARTTLS\r\n")?;
        let command = line(reader)?;
        if !command.starts_with("STARTTLS") {
            return Err(format!("expected STARTTLS, got {command:?}"));
        }
        say(writer, after)
    })
}

// Held: contract exit codes: 1 for "a STARTTLS upgrade the peer refused" and "non-TLS bytes", 3
// for "closed by the peer during the handshake without an alert"; never 0, never a hang.
#[test]
fn lying_starttls_servers_get_the_contracts_exit_codes() -> TestResult {
    let pki = Pki::new()?;
    let cases: Vec<StartTlsCase> = vec![
        (
            "refused STARTTLS",
            "smtp",
            || smtp_until_starttls(b"454 4.7.0 TLS not available\r\n"),
            1,
        ),
        (
            "closed at the go-ahead",
            "smtp",
            || smtp_until_starttls(b"220 go ahead\r\n"),
            3,
        ),
        (
            "plain text answering the ClientHello",
            "smtp",
            || {
                Box::new(|reader, writer| {
                    smtp_until_starttls(b"220 go ahead\r\n")(reader, writer)?;
                    let mut hello = [0u8; 5];
                    reader.read_exact(&mut hello).map_err(|e| e.to_string())?;
                    say(writer, b"HTTP/1.1 400 Bad Request\r\n\r\n")?;
                    thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
            },
            1,
        ),
        (
            "no STARTTLS in EHLO",
            "smtp",
            || {
                Box::new(|reader, writer| {
                    say(writer, b"220 liar ESMTP\r\n")?;
                    line(reader)?;
                    say(writer, b"250-liar\r\n250-STARTTLSX\r\n250 8BITMIME\r\n")?;
                    thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
            },
            1,
        ),
        (
            "endless EHLO reply",
            "smtp",
            || {
                Box::new(|reader, writer| {
                    say(writer, b"220 liar ESMTP\r\n")?;
                    line(reader)?;
                    for _ in 0..1000 {
                        if writer.write_all(b"250-more\r\n").is_err() {
                            break;
                        }
                    }
                    thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
            },
            1,
        ),
        (
            "IMAP: untagged lines forever",
            "imap",
            || {
                Box::new(|reader, writer| {
                    say(writer, b"* OK liar\r\n")?;
                    line(reader)?;
                    for _ in 0..1000 {
                        if writer.write_all(b"* CAPABILITY IMAP4rev1\r\n").is_err() {
                            break;
                        }
                    }
                    thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
            },
            1,
        ),
        (
            "IMAP: another tag's OK",
            "imap",
            || {
                Box::new(|reader, writer| {
                    say(writer, b"* OK liar\r\n")?;
                    line(reader)?;
                    say(writer, b"a10 OK Begin TLS negotiation now\r\n")?;
                    thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
            },
            1,
        ),
        (
            "POP3: -ERR greeting",
            "pop3",
            || {
                Box::new(|_reader, writer| {
                    say(writer, b"-ERR go away\r\n")?;
                    thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
            },
            1,
        ),
        (
            "POP3: closed before the greeting",
            "pop3",
            || Box::new(|_reader, _writer| Ok(())),
            3,
        ),
    ];
    let mut failures = Vec::new();
    for backend in backends() {
        for (label, proto, script, expected) in &cases {
            let (port, server) = plain_server(script())?;
            let started = Instant::now();
            let out = run(&connect_args(
                pki.root_pem(),
                port,
                backend,
                &["--starttls", proto, "--json"],
            ))?;
            let _ = server.join();
            let r = report(&out)?;
            if exit_code(&out) != Some(*expected) || r["encrypted"] != false {
                failures.push(format!(
                    "{backend} {label}: exit {:?} (expected {expected}) after {:?}: {r}",
                    exit_code(&out),
                    started.elapsed()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Failures after the handshake
// ---------------------------------------------------------------------------------------

/// After the client's first data: `data` inside TLS, then `raw` bytes outside it, then a
/// pause and the close.
fn data_then_raw(
    pki: &Pki,
    data: &'static [u8],
    raw: Vec<u8>,
) -> Result<Peer, Box<dyn std::error::Error>> {
    raw_peer(pki, move |mut tls| {
        let mut got = [0u8; 64];
        let _ = tls.read(&mut got);
        tls.write_all(data).map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        tls.sock.write_all(&raw).map_err(|e| e.to_string())?;
        thread::sleep(Duration::from_millis(500));
        Ok(())
    })
}

// Held: contract, exit 1: "an alert received after the handshake"; a record that does not
// decrypt is a TLS failure too (never a clean end or a truncation): exit 1, the data before
// it still reported, on both backends.
#[test]
fn a_record_that_does_not_decrypt_after_data_is_a_tls_failure() -> TestResult {
    let pki = Pki::new()?;
    let mut failures = Vec::new();
    let mut garbage = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    garbage.extend_from_slice(&[0x41; 0x20]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage record", garbage),
        // A fatal internal_error alert, in the clear.
        (
            "plaintext fatal alert",
            vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50],
        ),
    ];
    for backend in backends() {
        for (label, raw) in &cases {
            let (port, server) = data_then_raw(&pki, b"before", raw.clone())?;
            let out = run(&connect_args(
                pki.root_pem(),
                port,
                backend,
                &["--send", "hi", "--json"],
            ))?;
            let _ = server.join();
            let r = report(&out)?;
            if exit_code(&out) != Some(1)
                || r["received"] != "before"
                || r["socket_error"].is_null()
                || r["socket_error"] == "RemoteHostClosedError"
            {
                failures.push(format!("{backend} {label}: exit {:?} {r}", exit_code(&out)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// What a peer chose, on the user's terminal
// ---------------------------------------------------------------------------------------

// Was a defect (round 36): `connect --send` without --json copies the bytes the server sent raw into the
// readable report (report.rs `client_text`, "received (N bytes):" then
// `String::from_utf8_lossy(&outcome.received)` pushed as is). A server can therefore write
// terminal escape sequences to the user's terminal: here it moves the cursor up and
// rewrites the report's "verification errors:" lines as "verification: no errors", forging
// the verdict of a handshake whose errors were ignored. Everything else a peer chooses
// (certificate names, SNI, ALPN, a refused STARTTLS answer) goes through
// `style::printable`/`escape_debug` for exactly this reason (round 34). Expected: control
// characters other than `\n` and `\t` (at least ESC and CR) written escaped (`\x1b`), as
// `printable` does; the JSON report keeps the bytes (JSON escapes them).
#[test]
fn the_readable_report_does_not_write_the_peers_escape_sequences_raw() -> TestResult {
    let pki = Pki::new()?;
    let mut failures = Vec::new();
    for backend in backends() {
        let (port, server) = raw_peer(&pki, |mut tls| {
            let mut got = [0u8; 64];
            let _ = tls.read(&mut got);
            tls.write_all(b"\x1b[6A\x1b[J\rverification: no errors\n\x1b]0;owned\x07")
                .map_err(|e| e.to_string())?;
            tls.conn.send_close_notify();
            tls.flush().map_err(|e| e.to_string())?;
            thread::sleep(Duration::from_millis(300));
            Ok(())
        })?;
        // The leaf names `localhost` only: 127.0.0.1 mismatches, and the error is ignored.
        let out = run(&os_args![
            "connect",
            format!("127.0.0.1:{port}"),
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--backend",
            backend,
            "--ignore",
            "HostNameMismatch",
            "--send",
            "hi",
            "--timeout",
            "5000"
        ])?;
        let _ = server.join();
        if exit_code(&out) != Some(0) || !out.stdout.contains("HostNameMismatch") {
            failures.push(format!("{backend}: unexpected run:\n{out}"));
            continue;
        }
        if out.stdout.contains('\x1b') || out.stdout.contains('\x07') {
            failures.push(format!(
                "{backend}: the report writes the server's escape sequences raw: {:?}",
                out.stdout.get(out.stdout.find("received").unwrap_or(0)..)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Alerts in the handshake
// ---------------------------------------------------------------------------------------

// Decided (round 36, after review C): a server that answers the ClientHello with a
// warning close_notify (and keeps TCP open) ends the handshake at once on the OpenSSL
// backend (exit 1, SslHandshakeFailedError, `-v` shows "AlertReceived Warning
// CloseNotify"). rustls 0.23 ignores a warning alert that comes before the handshake is
// authenticated (`CommonState::process_alert`), so on the rustls backend the client sees
// no alert: it waits for the server and reports what ends the wait (here --timeout,
// SocketTimeoutError, exit 3). We do not read the records ourselves to see the alert
// rustls drops (no TLS record handling of our own); a server that sends nothing at all
// costs the same wait. The README lists it among the backend differences.
#[test]
fn a_close_notify_answering_the_client_hello_is_an_alert_on_openssl_and_a_wait_on_rustls(
) -> TestResult {
    let mut failures = Vec::new();
    for backend in backends() {
        let (port, server) = plain_server(Box::new(|reader, writer| {
            let mut hello = [0u8; 5];
            reader.read_exact(&mut hello).map_err(|e| e.to_string())?;
            // A warning close_notify alert, in the clear.
            say(writer, &[0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00])?;
            thread::sleep(Duration::from_secs(4));
            Ok(())
        }))?;
        let started = Instant::now();
        let out = run(&os_args![
            "connect",
            format!("127.0.0.1:{port}"),
            "--backend",
            backend,
            "--no-system-ca",
            "--timeout",
            "3000",
            "--json"
        ])?;
        let elapsed = started.elapsed();
        let _ = server.join();
        let r = report(&out)?;
        let expected = if backend == "openssl" { 1 } else { 3 };
        if exit_code(&out) != Some(expected) {
            failures.push(format!(
                "{backend}: exit {:?} after {elapsed:?}, socket_error {} ({})",
                exit_code(&out),
                r["socket_error"],
                r["error_string"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
