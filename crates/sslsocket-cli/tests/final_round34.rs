//! Final review of round 34's last two commits, the command line side: `read_line(max)`
//! now taking at most `max - 1` bytes (STARTTLS on both sides) and `serve --psk-*`'s
//! cipher list against `openssl s_client`. Peers on 127.0.0.1, certificates made at test
//! time, every wait bounded, child processes killed on drop.

mod common;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::Duration;

use common::support::{os_args, raw_server_config, Pki};
use common::{exit_code, report, run, TestResult};
use tokio_rustls::rustls;

const WAIT: Duration = Duration::from_secs(10);

#[cfg(feature = "openssl")]
fn serve_port(serve: &common::Serve) -> Result<u16, Box<dyn std::error::Error>> {
    Ok(serve
        .address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .ok_or("no port")?)
}

/// Everything a plain TCP peer sends until it stops for 800 ms or closes.
fn read_for_a_while(tcp: &mut std::net::TcpStream) -> Result<String, Box<dyn std::error::Error>> {
    tcp.set_read_timeout(Some(Duration::from_millis(800)))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    Ok(String::from_utf8_lossy(&seen).into_owned())
}

// Was a defect (round 34): `serve --starttls smtp` takes the tail of an over-long command line as a command of its own again (command smuggling; the guard in starttls.rs `hear` was written against exactly this). `hear` calls `next_line(MAX_LINE)`, which since round 34 returns at most MAX_LINE - 1 = 8191 bytes, and then tests `line.len() >= MAX_LINE` (crates/sslsocket-cli/src/starttls.rs:196-197), which can no longer be true: an `EHLO` line of 8191 bytes followed, on the same line, by `STARTTLS\r\n` is answered `250` and then `220` (upgrade) for a STARTTLS the client never sent as a command. (cli_serve_review's test of this holds only because its cut lands one byte later, on `ASTARTTLS`.) Expected: the over-long line is refused ("a plain-text command longer than 8192 bytes"), no `220` after the greeting. Fix: test `line.len() >= MAX_LINE - 1` (or call `next_line(MAX_LINE + 1)`), and keep the `>=`/`max - 1` rule in one place.
#[test]
fn an_over_long_line_cut_at_8191_bytes_does_not_smuggle_a_starttls_command() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = common::Serve::start(&os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--backend",
        "rustls",
        "--starttls",
        "smtp"
    ])?;
    let mut tcp = std::net::TcpStream::connect(&serve.address)?;
    let mut line = b"EHLO ".to_vec();
    line.resize(8 * 1024 - 1, b'A');
    line.extend_from_slice(b"STARTTLS\r\n");
    tcp.write_all(&line)?;
    let text = read_for_a_while(&mut tcp)?;
    let shown: Vec<&str> = text.lines().filter(|l| l.len() < 200).collect();
    assert!(
        !text.contains("\r\n220 "),
        "the server answered 220 (upgrade) to a line that was not a STARTTLS command:\n{}",
        shown.join("\n")
    );
    Ok(())
}

// Was a defect (round 34): `connect --starttls pop3` against a server whose greeting line is exactly 8192 bytes with its CRLF (the old MAX_LINE, accepted whole before round 34) now fails: session.rs `read_line` (crates/sslsocket-cli/src/session.rs:211-219) reads `read_line(MAX_LINE)` = 8191 bytes, leaves the greeting's `\n` in the buffer and takes it for the answer to `STLS` ("STARTTLS refused: POP3 STLS answered ``"). Expected: the upgrade and handshake succeed as before (exit 0, `"event":"encrypted"`). Fix: call `read_line(MAX_LINE + 1)` (and the `bytes_available() >= MAX_LINE` test accordingly), and have a line longer than the limit refused rather than split into two lines.
#[test]
fn a_pop3_greeting_of_exactly_8192_bytes_still_upgrades() -> TestResult {
    let pki = Pki::new()?;
    let config = raw_server_config(&pki)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> Result<(), String> {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut greeting = b"+OK ".to_vec();
        greeting.resize(8 * 1024 - 2, b'g');
        greeting.extend_from_slice(b"\r\n");
        tcp.write_all(&greeting).map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\n") && got.len() < 64 {
            match tcp.read(&mut byte) {
                Ok(1) => got.push(byte[0]),
                _ => return Err(format!("no command: {got:?}")),
            }
        }
        if got != b"STLS\r\n" {
            return Err(format!("not STLS: {got:?}"));
        }
        tcp.write_all(b"+OK begin TLS\r\n")
            .map_err(|e| e.to_string())?;
        let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        conn.send_close_notify();
        let _ = conn.complete_io(&mut tcp);
        Ok(())
    });
    let args: Vec<OsString> = os_args![
        "connect",
        format!("127.0.0.1:{port}"),
        "--peer-name",
        "localhost",
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--starttls",
        "pop3",
        "--timeout",
        "5000",
        "--json"
    ];
    let out = run(&args)?;
    let peer = server.join().map_err(|_| "server thread panicked")?;
    let r = report(&out)?;
    assert_eq!(exit_code(&out), Some(0), "{out}\nserver: {peer:?}");
    // `connect`'s report says so with `encrypted` (the review first read `event`, which
    // only `serve`'s lines have).
    assert_eq!(r["encrypted"], true, "{r}");
    Ok(())
}

// Was a defect (round 34, OpenSSL backend): `serve --psk-*` (default protocol range) gives a TLS 1.2 PSK client that offers every PSK suite (`s_client -tls1_2 -psk KEY -cipher PSK`) `TLS_PSK_WITH_AES_256_CBC_SHA`: no forward secrecy, CBC, SHA-1, although it offered DHE-/ECDHE-PSK AEAD suites; the same server with `--protocol tls1.2` (OpenSSL's own list) picks `DHE-PSK-AES256-GCM-SHA384`. Cause: plan.rs `psk_server_ciphers` (crates/sslsocket-cli/src/plan.rs:430-436) appends the TLS 1.2 PSK suites in `supported_ciphers()` order, unfiltered, while the server's preference decides. Expected: the PSK suites ordered as for certificate clients (ephemeral (EC)DHE_PSK with AEAD first, then plain PSK AEAD, CBC last or not at all), so the PSK client gets a forward-secret AEAD suite as with `--protocol tls1.2`.
#[cfg(feature = "openssl")]
#[test]
fn serve_psk_gives_a_tls12_psk_client_a_forward_secret_aead_suite() -> TestResult {
    use common::support::OpensslClient;
    const KEY: &str = "00112233445566778899aabbccddeeff";
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let chosen = |protocol: &[&str]| -> Result<String, Box<dyn std::error::Error>> {
        let mut args = os_args![
            "--backend",
            "openssl",
            "--cert",
            &leaf.chain_pem,
            "--key",
            &leaf.key_pem,
            "--psk-identity",
            "id",
            "--psk-key",
            KEY
        ];
        args.extend(protocol.iter().map(OsString::from));
        let serve = common::Serve::start(&args)?;
        let port = serve_port(&serve)?;
        let client = os_args![
            "-tls1_2",
            "-psk",
            KEY,
            "-psk_identity",
            "id",
            "-cipher",
            "PSK"
        ];
        let out = OpensslClient::run(port, &client, b"", WAIT)?;
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "encrypted", "{line}\n{out}");
        assert_eq!(line["cipher"]["authentication"], "PSK", "{line}");
        Ok(line["cipher"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    };
    let default_range = chosen(&[])?;
    let tls12_only = chosen(&["--protocol", "tls1.2"])?;
    assert!(
        (default_range.contains("DHE_PSK") || default_range.contains("ECDHE_PSK"))
            && !default_range.contains("_CBC_"),
        "a TLS 1.2 PSK client gets {default_range} with --psk-* (with --protocol tls1.2: {tls12_only})"
    );
    Ok(())
}

// Held (OpenSSL backend): with `serve --psk-*`, a TLS 1.3 PSK client gets a SHA-256 suite
// authenticated by the key (no certificate, authentication `PSK`), a TLS 1.3 certificate
// client and a TLS 1.2 certificate client get the certificate with a forward-secret AEAD
// suite.
#[cfg(feature = "openssl")]
#[test]
fn held_serve_psk_certificate_clients_and_tls13_psk_client() -> TestResult {
    use common::support::OpensslClient;
    const KEY: &str = "00112233445566778899aabbccddeeff";
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = common::Serve::start(&os_args![
        "--backend",
        "openssl",
        "--cert",
        &leaf.chain_pem,
        "--key",
        &leaf.key_pem,
        "--psk-identity",
        "id",
        "--psk-key",
        KEY
    ])?;
    let port = serve_port(&serve)?;
    let cases: [(Vec<OsString>, &str, &str, &str); 3] = [
        (
            os_args!["-tls1_3", "-psk", KEY, "-psk_identity", "id"],
            "TlsV1_3",
            "PSK",
            "TLS_AES_128_GCM_SHA256",
        ),
        (
            os_args!["-tls1_3"],
            "TlsV1_3",
            "ECDSA",
            "TLS_AES_128_GCM_SHA256",
        ),
        (
            os_args!["-tls1_2"],
            "TlsV1_2",
            "ECDSA",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
    ];
    for (n, (client, protocol, auth, suite)) in cases.iter().enumerate() {
        let out = OpensslClient::run(port, client, b"", WAIT)?;
        let line = serve.connection_line(n)?;
        assert_eq!(line["event"], "encrypted", "{line}\n{out}");
        assert_eq!(line["protocol"], *protocol, "{line}");
        assert_eq!(line["cipher"]["authentication"], *auth, "{line}");
        assert_eq!(line["cipher"]["name"], *suite, "{line}");
    }
    Ok(())
}
