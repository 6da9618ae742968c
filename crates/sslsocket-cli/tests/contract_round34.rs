//! Review 34 of the command line against the contract (cli-contract.md): option values at
//! their limits (an ALPN list too long for a ClientHello, `--verify-depth` above
//! `i32::MAX`), input files without an end (`--ocsp-response /dev/zero`), and what held.
//! Peers are on 127.0.0.1 (or ::1), certificates are made at test time, every wait is
//! bounded and every child process is killed on drop.

mod common;

use std::ffi::OsString;
use std::time::Duration;

use common::support::{os_args, PeerProcess, Pki};
use common::{exit_code, one_stderr_line, report, run, s_server, TestResult, BIN};
use serde_json::json;

/// The backends this build has.
fn backends() -> Vec<&'static str> {
    let mut names = vec!["rustls"];
    if cfg!(feature = "openssl") {
        names.push("openssl");
    }
    names
}

/// `connect` to `port` on 127.0.0.1 as localhost, trusting the PKI's root only.
fn connect_args(pki: &Pki, port: u16, backend: &str, extra: &[&str]) -> Vec<OsString> {
    let mut args = os_args![
        "connect",
        format!("127.0.0.1:{port}"),
        "--peer-name",
        "localhost",
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--backend",
        backend,
        "--timeout",
        "5000",
        "--json"
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

// Was a defect (round 34): "2 | bad input: unknown option, unreadable or malformed file ..." and "No input ... makes the tool panic": plan.rs `alpn()` checks each `--alpn` name (1 to 255 bytes) but not the list. (a) 255 names of 255 bytes (65,280 bytes): OpenSSL sends them and connects; on rustls the ClientHello's extension block (ALPN plus the X25519MLKEM768 key share) passes 65,535 bytes: debug builds panic in rustls (codec.rs `debug_assert!(len <= 0xffff)`, exit 101 with a backtrace), release builds send a ClientHello whose length field wrapped. (b) 257 names (65,792 bytes, more than an ALPN extension can hold): rustls panics the same way; OpenSSL exits 2 with "client session: error:0A0C0103:SSL routines:tls_construct_ctos_alpn:internal error". Expected: a list the backend can send is sent (exit 0), one it cannot is exit 2 with one line naming --alpn; never a panic or a malformed hello. Fix: bound the total in `alpn()` (and in the library's `set_allowed_next_protocols`/the rustls config build), e.g. at most 65,535 bytes encoded and, for rustls, what still fits the ClientHello's extensions.
#[test]
fn an_alpn_list_too_long_for_a_client_hello_is_bad_input() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &["-quiet"])?;
    let list = |count: usize| {
        (0..count)
            .map(|i| format!("{i:03}{}", "a".repeat(252)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut failures = Vec::new();
    for backend in backends() {
        for (count, may_connect) in [(255, true), (257, false)] {
            let out = run(&connect_args(
                &pki,
                server.port(),
                backend,
                &["--alpn", &list(count)],
            ))?;
            let refused = exit_code(&out) == Some(2)
                && one_stderr_line(&out)
                && out.stderr.contains("--alpn");
            let connected = may_connect
                && exit_code(&out) == Some(0)
                && report(&out).is_ok_and(|r| r["encrypted"] == true);
            if !refused && !connected {
                let stderr: String = out.stderr.chars().take(300).collect();
                failures.push(format!(
                    "{backend}, {count} names: exit {:?}, stderr: {stderr}",
                    exit_code(&out)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// Was a defect (round 34): "`--verify-depth N` counts as OpenSSL does: at most N intermediate CA certificates between the leaf and the trust anchor; 0 means no limit" and clap accepts any u32: on the OpenSSL backend every N from 2,147,483,648 to 4,294,967,294 fails the handshake (exit 1, UnspecifiedError + UnableToGetLocalIssuerCertificate, even for a chain of one intermediate) because backend/openssl/context.rs:398 hands the u32 to `set_verify_depth`, which casts it to a negative C int; rustls connects. Expected: a depth above i32::MAX is as good as no limit (clamp to i32::MAX), the same verdict on both backends (exit 0, errors []).
#[test]
fn a_verify_depth_above_i32_max_does_not_limit_the_chain_on_any_backend() -> TestResult {
    let pki = Pki::new()?;
    let server = s_server(&pki, &["-quiet"])?;
    let mut failures = Vec::new();
    for backend in backends() {
        for depth in ["2147483647", "3000000000"] {
            let out = run(&connect_args(
                &pki,
                server.port(),
                backend,
                &["--verify-depth", depth],
            ))?;
            let r = report(&out)?;
            if exit_code(&out) != Some(0) || r["errors"] != json!([]) {
                failures.push(format!(
                    "{backend} --verify-depth {depth}: exit {:?}, errors {}",
                    exit_code(&out),
                    r["errors"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// Was a defect (round 34): "Input files are rejected (exit 2, one clear line) in time linear in their size" and "No input, file ... makes the tool panic, crash or hang": `serve --ocsp-response FILE` reads the whole file with `std::fs::read` (plan.rs `ocsp_file`) and only then checks it against its 1 MiB limit, so a file without an end (/dev/zero, a FIFO) is read until memory runs out. Under a 768 MiB address-space limit the line is "--ocsp-response `/dev/zero`: out of memory"; without one the process grows until the OOM killer. Every other input (keys 1 MiB, certificates 64 MiB, secrets 64 KiB) is read through a bounded reader. Expected: read at most 1 MiB + 1 byte, then exit 2 with "not a DER OCSP response" (or "larger than ..."). The same function serves SIGHUP reloads.
#[test]
fn an_ocsp_response_file_without_an_end_is_refused_without_reading_it_all() -> TestResult {
    let mut process = PeerProcess::spawn(
        "prlimit",
        &os_args![
            "--as=805306368",
            BIN,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ocsp-response",
            "/dev/zero",
            "--once",
            "--json"
        ],
    )?;
    let out = process.wait(Duration::from_secs(20))?;
    assert!(!out.timed_out, "serve still running:\n{out}");
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(one_stderr_line(&out), "{out}");
    assert!(
        !out.stderr.contains("out of memory"),
        "the file was read until memory ran out:\n{out}"
    );
    Ok(())
}

/// `serve --json` with `args` (its own `--listen`), waiting for the listening line; the
/// address it reports.
fn serve_listening(args: &[OsString]) -> Result<(PeerProcess, String), Box<dyn std::error::Error>> {
    let mut full = os_args!["serve", "--json"];
    full.extend(args.iter().cloned());
    let process = PeerProcess::spawn(BIN, &full)?;
    process.wait_for_output("\"event\":\"listening\"", Duration::from_secs(10))?;
    let stdout = process.stdout();
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())?;
    let address = first["address"]
        .as_str()
        .ok_or("no address in the listening line")?
        .to_string();
    Ok((process, address))
}

// Held: IPv6 loopback end to end on every backend pair: `serve --listen [::1]:0` reports
// `[::1]:PORT`, `connect [::1]:PORT` verifies the leaf's IP:::1 name, the echo comes back,
// and the server's line names the peer `[::1]:PORT` with the bytes it read.
#[test]
fn held_ipv6_loopback_serve_and_connect_report_the_session() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "::1"])?;
    for server_backend in backends() {
        for backend in backends() {
            let (mut process, address) = serve_listening(&os_args![
                "--listen",
                "[::1]:0",
                "--cert",
                &leaf.chain_pem,
                "--key",
                &leaf.key_pem,
                "--backend",
                server_backend,
                "--echo",
                "--once"
            ])?;
            assert!(address.starts_with("[::1]:"), "{address}");
            let out = run(&os_args![
                "connect",
                &address,
                "--cafile",
                pki.root_pem(),
                "--no-system-ca",
                "--backend",
                backend,
                "--send",
                "ping\\n",
                "--timeout",
                "3000",
                "--json"
            ])?;
            assert_eq!(exit_code(&out), Some(0), "{out}");
            let r = report(&out)?;
            assert_eq!(r["errors"], json!([]), "{out}");
            assert_eq!(r["received"], "ping\n", "{out}");
            let served = process.wait(Duration::from_secs(10))?;
            assert_eq!(exit_code(&served), Some(0), "{served}");
            let line: serde_json::Value = serde_json::from_str(
                served
                    .stdout
                    .lines()
                    .nth(1)
                    .ok_or_else(|| format!("no connection line:\n{served}"))?,
            )?;
            assert_eq!(line["event"], "encrypted", "{served}");
            assert!(
                line["peer"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("[::1]:")),
                "{served}"
            );
            assert_eq!(line["received_bytes"], 5, "{served}");
        }
    }
    Ok(())
}

// Held: a peer that sends half a TLS record and closes is a network failure (exit 3,
// RemoteHostClosedError); one that answers with a fatal alert is a TLS failure (exit 1);
// a ServerHello cut inside its body is a TLS failure too (exit 1), on both backends.
#[test]
fn held_a_peer_that_cuts_the_handshake_is_classified_by_what_it_sent() -> TestResult {
    use std::io::{Read, Write};
    let cases: [(&[u8], i32, &str); 3] = [
        (
            b"\x16\x03\x03\x00\x50\x02\x02\x02\x02",
            3,
            "RemoteHostClosedError",
        ),
        (
            b"\x15\x03\x03\x00\x02\x02\x28",
            1,
            "SslHandshakeFailedError",
        ),
        (
            b"\x16\x03\x03\x00\x04\x02\x00\x00\x00",
            1,
            "SslHandshakeFailedError",
        ),
    ];
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let rounds = cases.len() * backends().len();
    let replies: Vec<Vec<u8>> = backends()
        .iter()
        .flat_map(|_| cases.iter().map(|(bytes, _, _)| bytes.to_vec()))
        .collect();
    let server = std::thread::spawn(move || {
        for reply in replies.into_iter().take(rounds) {
            let Ok((mut tcp, _)) = listener.accept() else {
                return;
            };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let mut hello = [0u8; 4096];
            let _ = tcp.read(&mut hello);
            let _ = tcp.write_all(&reply);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut failures = Vec::new();
    for backend in backends() {
        for (bytes, code, socket_error) in cases {
            let out = run(&os_args![
                "connect",
                format!("127.0.0.1:{port}"),
                "--no-system-ca",
                "--backend",
                backend,
                "--timeout",
                "5000",
                "--json"
            ])?;
            let r = report(&out)?;
            if exit_code(&out) != Some(code) || r["socket_error"] != socket_error {
                failures.push(format!(
                    "{backend} {bytes:02x?}: exit {:?} {r}",
                    exit_code(&out)
                ));
            }
        }
    }
    let _ = server.join();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

// Held: the largest `--timeout` and `--handshake-timeout` (u64::MAX ms) do not overflow a
// deadline: `connect --reconnect --send` against our `serve --echo` finishes, resumes, and
// both exit 0.
#[test]
fn held_the_largest_timeouts_do_not_overflow() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let max = u64::MAX.to_string();
    for backend in backends() {
        let (mut process, address) = serve_listening(&os_args![
            "--listen",
            "127.0.0.1:0",
            "--cert",
            &leaf.chain_pem,
            "--key",
            &leaf.key_pem,
            "--backend",
            backend,
            "--handshake-timeout",
            &max
        ])?;
        let out = run(&os_args![
            "connect",
            &address,
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--backend",
            backend,
            "--timeout",
            &max,
            "--reconnect",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{out}");
        let r = report(&out)?;
        assert_eq!(r["reconnect"]["session_resumed"], true, "{out}");
        assert!(process.is_running(), "{}", process.output());
        process.kill();
    }
    Ok(())
}

/// Was a defect (round 34, found by the inputs review): the text of `cert` (display names,
/// subject alternative names, extension values) and the host-mismatch hint printed what a
/// certificate holds raw, so a peer's ESC and BEL sequences (or a LF forging a line) went to
/// the user's terminal. Now each control character is `\XX`, as OpenSSL prints names.
#[test]
fn certificate_text_never_writes_control_characters_from_the_certificate() -> TestResult {
    let key = rcgen::KeyPair::generate()?;
    let nasty = "\u{1b}]0;pwned\u{7}\u{1b}[31mred";
    let mut params = rcgen::CertificateParams::new(vec![format!("{nasty}.example")])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("cn{nasty}\nforged: line"),
    );
    let der = params.self_signed(&key)?.der().to_vec();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("nasty.der");
    std::fs::write(&file, &der)?;
    let out = run(&os_args!["cert", &file])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let control: Vec<&str> = out
        .stdout
        .lines()
        .filter(|line| line.chars().any(char::is_control))
        .collect();
    assert!(control.is_empty(), "raw control characters: {control:?}");
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("forged: line")),
        "a line forged by the certificate: {out}"
    );
    assert!(out.stdout.contains("\\1B]0;pwned\\07"), "{out}");
    Ok(())
}
