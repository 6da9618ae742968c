//! Round 34 review of `sslsocket serve` under hostile and unusual clients (slowloris,
//! crowds of silent connections, resets, garbage, wrong protocol, close_notify followed by
//! more data, odd server names), against shared/cli-contract.md. Real peers on 127.0.0.1:
//! raw TCP, a rustls client driven by hand, `openssl s_client`. Every wait is bounded;
//! every child process is killed on drop.

mod common;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::support::{os_args, OpensslClient, Pki};
use common::{Serve, TestResult};
use serde_json::Value;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore};

const STEP: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error>;

fn backends() -> Vec<&'static str> {
    let mut names = vec!["rustls"];
    if cfg!(feature = "openssl") {
        names.push("openssl");
    }
    names
}

fn client_config(pki: &Pki) -> Result<Arc<ClientConfig>, BoxError> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(pki.root_der().to_vec()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn serve_args(pki: &Pki, backend: &str, extra: &[&str]) -> Result<Vec<OsString>, BoxError> {
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
    Ok(args)
}

fn port_of(serve: &Serve) -> Result<u16, BoxError> {
    Ok(serve
        .address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or("no port")?)
}

fn tcp(serve: &Serve) -> Result<TcpStream, BoxError> {
    let stream = TcpStream::connect(&serve.address)?;
    stream.set_read_timeout(Some(STEP))?;
    stream.set_write_timeout(Some(STEP))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs a rustls client handshake on `tcp` (blocking, bounded by the socket timeouts).
fn handshake(
    config: &Arc<ClientConfig>,
    tcp: &mut TcpStream,
) -> Result<ClientConnection, BoxError> {
    let mut conn = ClientConnection::new(Arc::clone(config), ServerName::try_from("localhost")?)?;
    while conn.is_handshaking() {
        while conn.wants_write() {
            conn.write_tls(tcp)?;
        }
        if conn.is_handshaking() {
            if conn.read_tls(tcp)? == 0 {
                return Err("the server closed during the handshake".into());
            }
            conn.process_new_packets()?;
        }
    }
    while conn.wants_write() {
        conn.write_tls(tcp)?;
    }
    Ok(conn)
}

/// Every per-connection line printed so far.
fn connection_lines(serve: &Serve) -> Vec<Value> {
    serve
        .process
        .stdout()
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "encrypted" || v["event"] == "failed")
        .collect()
}

/// The line of the connection from `local`, waiting up to `limit` for it.
fn line_of(serve: &Serve, local: std::net::SocketAddr, limit: Duration) -> Result<Value, BoxError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(line) = connection_lines(serve)
            .into_iter()
            .find(|v| v["peer"] == local.to_string())
        {
            return Ok(line);
        }
        if Instant::now() > deadline {
            return Err(format!("no line for {local}:\n{}", serve.process.output()).into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A full rustls client exchange that must work: handshake, one message, its echo (for a
/// `serve --echo`), close_notify. Returns how long it took.
fn honest_echo(
    config: &Arc<ClientConfig>,
    serve: &Serve,
    limit: Duration,
) -> Result<Duration, BoxError> {
    honest_client(config, serve, limit, true)
}

fn honest_client(
    config: &Arc<ClientConfig>,
    serve: &Serve,
    limit: Duration,
    echo: bool,
) -> Result<Duration, BoxError> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(&serve.address)?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    let mut conn = handshake(config, &mut stream)?;
    conn.writer().write_all(b"ping\n")?;
    while conn.wants_write() {
        conn.write_tls(&mut stream)?;
    }
    let mut got = Vec::new();
    while echo && got.len() < 5 {
        if conn.read_tls(&mut stream)? == 0 {
            break;
        }
        conn.process_new_packets()?;
        let mut buf = [0u8; 64];
        match conn.reader().read(&mut buf) {
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
    }
    if echo && got != b"ping\n" {
        return Err(format!("echo: {got:?}").into());
    }
    conn.send_close_notify();
    while conn.wants_write() {
        conn.write_tls(&mut stream)?;
    }
    Ok(start.elapsed())
}

// Was a defect (round 34): `serve` runs at most 1024 handshakes (and STARTTLS conversations) at once and,
// when all are taken, stops accepting until one ends (src/serve.rs, the semaphore of
// MAX_CONCURRENT_HANDSHAKES in `serve`/`accept`). 1030 connections that connect and send
// nothing (or dribble a byte now and then) therefore lock every other client out for the
// whole `--handshake-timeout` (10 s by default; here 30 s), and an attacker that reopens
// its connections as they time out keeps it so. The library's own servers do not: when
// every slot is taken, the tokio `Incoming` and the blocking `SslServer` end the oldest
// handshake once it has run CROWDED_AFTER (3 s) to make room for a waiting client. An
// honest client should be served within a few seconds, not after the handshake timeout.
#[test]
fn a_crowd_of_silent_connections_does_not_lock_out_an_honest_client() -> TestResult {
    const SILENT: usize = 1030;
    let pki = Pki::new()?;
    let config = client_config(&pki)?;
    let serve = Serve::start(&serve_args(
        &pki,
        "rustls",
        &["--echo", "--handshake-timeout", "30000"],
    )?)?;
    let mut silent = Vec::with_capacity(SILENT);
    for _ in 0..SILENT {
        silent.push(TcpStream::connect(&serve.address)?);
    }
    // Let serve accept what it will.
    std::thread::sleep(Duration::from_millis(500));
    let honest = honest_echo(&config, &serve, Duration::from_secs(8));
    drop(silent);
    let took = honest.map_err(|e| {
        format!("the honest client was not served within 8 s while {SILENT} silent connections were open: {e}")
    })?;
    assert!(took < Duration::from_secs(8), "{took:?}");
    Ok(())
}

/// Writes `data` through `conn` as application data records, onto `stream`.
fn send_records(conn: &mut ClientConnection, stream: &mut TcpStream, data: &[u8]) -> TestResult {
    conn.writer().write_all(data)?;
    while conn.wants_write() {
        conn.write_tls(stream)?;
    }
    Ok(())
}

/// Reads from `stream` until EOF, a reset or `limit`; whether the server closed it (EOF or
/// reset) within the limit.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<bool, BoxError> {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(e.into()),
        }
    }
}

// Held: RFC 8446 6.1: "Any data received after a closure alert has been received MUST be
// ignored." A client that sends 3 bytes, its close_notify, then 5 more bytes in records of
// the same connection: serve counts the 3 bytes before the close_notify, reports a clean
// end (`socket_error` null: the peer closed with close_notify), and keeps serving. With
// `--echo` (changed in round 36) the 3 bytes could not be echoed, since the close_notify
// ends both directions: the line says so (`RemoteHostClosedError`, "3 of the 3 bytes").
#[test]
fn data_after_the_clients_close_notify_is_ignored_and_the_end_is_clean() -> TestResult {
    let pki = Pki::new()?;
    let config = client_config(&pki)?;
    let mut wrong = Vec::new();
    for backend in backends() {
        for echo in [false, true] {
            let extra: &[&str] = if echo { &["--echo"] } else { &[] };
            let serve = Serve::start(&serve_args(&pki, backend, extra)?)?;
            let mut stream = tcp(&serve)?;
            let local = stream.local_addr()?;
            let mut conn = handshake(&config, &mut stream)?;
            // All in one TCP write, so the server sees them together.
            let mut wire = Vec::new();
            conn.writer().write_all(b"abc")?;
            while conn.wants_write() {
                conn.write_tls(&mut wire)?;
            }
            conn.send_close_notify();
            conn.writer().write_all(b"defgh")?;
            while conn.wants_write() {
                conn.write_tls(&mut wire)?;
            }
            stream.write_all(&wire)?;
            let closed = closed_within(&mut stream, STEP)?;
            let line = line_of(&serve, local, STEP)?;
            let reported = if echo {
                line["socket_error"] == "RemoteHostClosedError"
                    && line["error_string"]
                        .as_str()
                        .is_some_and(|s| s.contains("3 of the 3 bytes"))
            } else {
                line["socket_error"].is_null()
            };
            if !closed || line["event"] != "encrypted" || line["received_bytes"] != 3 || !reported {
                wrong.push(format!("{backend} echo={echo}: closed={closed} {line}"));
            }
            honest_client(&config, &serve, STEP, echo)
                .map_err(|e| format!("{backend}: serve stopped serving: {e}"))?;
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

/// The first flight of a rustls client (its ClientHello), as bytes.
fn client_hello(config: &Arc<ClientConfig>) -> Result<Vec<u8>, BoxError> {
    let mut conn = ClientConnection::new(Arc::clone(config), ServerName::try_from("localhost")?)?;
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello)?;
    }
    Ok(hello)
}

/// Sends `data` one byte every `pause` until it is all sent or the server closes; returns
/// how long after `start` the server was seen closed (`None` if it never was within
/// `limit`).
fn dribble(
    stream: &mut TcpStream,
    data: &[u8],
    pause: Duration,
    start: Instant,
    limit: Duration,
) -> Result<Option<Duration>, BoxError> {
    stream.set_nonblocking(true)?;
    let mut buf = [0u8; 4096];
    let mut next = data.iter();
    while start.elapsed() < limit {
        // Anything the server says is read (and dropped); its end is what is looked for.
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Ok(Some(start.elapsed())),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return Ok(Some(start.elapsed())),
            }
        }
        if let Some(byte) = next.next() {
            if stream.write_all(&[*byte]).is_err() {
                return Ok(Some(start.elapsed()));
            }
        }
        std::thread::sleep(pause);
    }
    Ok(None)
}

// Held: "`--handshake-timeout MS` | counted from accept; a client that has not finished
// its handshake by then is closed and reported with "event":"failed",
// "socket_error":"SocketTimeoutError"". A client that dribbles its ClientHello one byte
// every 50 ms (it would take longer than the timeout), and one that dribbles an endless
// SMTP command in the plain-text phase of `--starttls smtp`, are both closed at the
// timeout (1.5 s) and reported so, on every backend; serve goes on serving.
#[test]
fn slowloris_in_the_handshake_and_in_the_starttls_phase_is_cut_at_the_timeout() -> TestResult {
    let pki = Pki::new()?;
    let config = client_config(&pki)?;
    let hello = client_hello(&config)?;
    assert!(hello.len() > 60, "{}", hello.len());
    let endless: Vec<u8> = b"EHLO "
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'a', 500))
        .collect();
    let mut wrong = Vec::new();
    for backend in backends() {
        for starttls in [false, true] {
            let extra: &[&str] = if starttls {
                &[
                    "--echo",
                    "--handshake-timeout",
                    "1500",
                    "--starttls",
                    "smtp",
                ]
            } else {
                &["--echo", "--handshake-timeout", "1500"]
            };
            let serve = Serve::start(&serve_args(&pki, backend, extra)?)?;
            let start = Instant::now();
            let mut stream = tcp(&serve)?;
            let local = stream.local_addr()?;
            let data = if starttls { &endless } else { &hello };
            let closed = dribble(&mut stream, data, Duration::from_millis(50), start, STEP)?;
            let line = line_of(&serve, local, STEP)?;
            let in_time = closed
                .is_some_and(|t| t >= Duration::from_millis(1400) && t < Duration::from_secs(4));
            if !in_time || line["event"] != "failed" || line["socket_error"] != "SocketTimeoutError"
            {
                wrong.push(format!(
                    "{backend} starttls={starttls}: closed after {closed:?}: {line}"
                ));
            }
            if !starttls {
                honest_echo(&config, &serve, STEP)
                    .map_err(|e| format!("{backend}: serve stopped serving: {e}"))?;
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

// Was a defect (round 34): serve's readable report prints the server name a remote, unauthenticated client
// sent raw (src/report.rs `server_text`: `writeln!(out, "  sni: {name}")`). On the OpenSSL
// backend any bytes but NUL pass as SNI (rustls refuses such a hello), so a client that
// sends `x ESC]0;owned BEL ESC[2J y LF FAKE: line` as its server name writes terminal
// escape sequences (window title, clear screen) to the operator's terminal and forges a
// line of its own in the report. Round 33 escaped and cut file text in errors for the same
// reason; text from the network deserves it more. Expected: the name escaped
// (`escape_debug`, as `quoted_excerpt` does) and cut, or such a name refused as rustls
// does (then the JSON `"sni"` agrees across backends too).
#[test]
fn a_client_server_name_cannot_inject_terminal_escapes_into_the_readable_report() -> TestResult {
    use common::support::PeerProcess;
    let pki = Pki::new()?;
    let mut wrong = Vec::new();
    for backend in backends() {
        let mut args = os_args!["serve", "--listen", "127.0.0.1:0"];
        args.extend(serve_args(&pki, backend, &[])?);
        let process = PeerProcess::spawn(common::BIN, &args)?;
        process.wait_for_output("listening on 127.0.0.1:", STEP)?;
        let stdout = process.stdout();
        let port: u16 = stdout
            .lines()
            .next()
            .and_then(|l| l.rsplit_once(':'))
            .and_then(|(_, p)| p.trim().parse().ok())
            .ok_or("no port")?;
        let name = "x\u{1b}]0;owned\u{7}\u{1b}[2Jy\nFAKE: 10.0.0.1:1: encrypted";
        let out = OpensslClient::run(port, &os_args!["-servername", name], b"", STEP)?;
        assert!(!out.timed_out, "{out}");
        let deadline = Instant::now() + STEP;
        // The connection's report ends with its outcome; wait for the report of it.
        while process.stdout().lines().count() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        let text = process.stdout();
        if text.contains('\u{1b}')
            || text.contains('\u{7}')
            || text
                .lines()
                .any(|l| l.starts_with("fake: ") || l.starts_with("FAKE: "))
        {
            wrong.push(format!("{backend}: {text:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "the client's server name reached the report raw: {wrong:#?}"
    );
    Ok(())
}

/// Resets `stream` (SO_LINGER 0, then close: an RST, no FIN).
fn reset(stream: TcpStream) -> TestResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _guard = rt.enter();
    stream.set_nonblocking(true)?;
    let stream = tokio::net::TcpStream::from_std(stream)?;
    stream.set_zero_linger()?;
    drop(stream);
    Ok(())
}

/// Reads what the server says until `needle` shows (or `STEP` passes).
fn read_until(stream: &mut TcpStream, needle: &str) -> Result<String, BoxError> {
    let deadline = Instant::now() + STEP;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        if Instant::now() > deadline {
            return Err(format!("no {needle:?} in {:?}", String::from_utf8_lossy(&seen)).into());
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(format!(
                "closed before {needle:?}: {:?}",
                String::from_utf8_lossy(&seen)
            )
            .into());
        }
        seen.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    Ok(String::from_utf8_lossy(&seen).into_owned())
}

// Held: a client of `--starttls smtp` that resets at every step (at once, after the
// greeting, in the middle of a command, after the `220` go-ahead, in the middle of its
// ClientHello, after the handshake with data sent) gets one line each, naming its own
// address, "failed" before the handshake finished and "encrypted" with
// RemoteHostClosedError and its byte count after; serve keeps serving.
#[test]
fn starttls_clients_that_reset_at_every_step_are_each_reported_and_serve_goes_on() -> TestResult {
    let pki = Pki::new()?;
    let config = client_config(&pki)?;
    let hello = client_hello(&config)?;
    let mut wrong = Vec::new();
    for backend in backends() {
        let serve = Serve::start(&serve_args(
            &pki,
            backend,
            &["--starttls", "smtp", "--echo"],
        )?)?;
        for step in 0..6 {
            let mut stream = tcp(&serve)?;
            let local = stream.local_addr()?;
            if step >= 1 {
                read_until(&mut stream, "220 ")?;
            }
            if step == 2 {
                stream.write_all(b"EHLO hal")?;
                std::thread::sleep(Duration::from_millis(50));
            }
            if step >= 3 {
                stream.write_all(b"EHLO x\r\n")?;
                read_until(&mut stream, "250 STARTTLS")?;
                stream.write_all(b"STARTTLS\r\n")?;
                read_until(&mut stream, "220 ")?;
            }
            if step == 4 {
                stream.write_all(hello.get(..hello.len() / 2).unwrap_or_default())?;
                std::thread::sleep(Duration::from_millis(50));
            }
            if step == 5 {
                let mut conn = handshake(&config, &mut stream)?;
                send_records(&mut conn, &mut stream, b"12345")?;
                // The echo came back: the 5 bytes were read.
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf)?;
            }
            reset(stream)?;
            let line = line_of(&serve, local, STEP)?;
            let right = if step == 5 {
                line["event"] == "encrypted"
                    && line["received_bytes"] == 5
                    && line["socket_error"] == "RemoteHostClosedError"
            } else {
                line["event"] == "failed" && !line["socket_error"].is_null()
            };
            if !right {
                wrong.push(format!("{backend} step {step}: {line}"));
            }
        }
        // Still serving: a whole STARTTLS exchange through `openssl s_client`.
        let out = OpensslClient::run(
            port_of(&serve)?,
            &os_args!["-starttls", "smtp", "-quiet"],
            b"still here\n",
            Duration::from_secs(3),
        )?;
        // s_client -quiet waits for the server's close after stdin's end: killed at 3 s.
        assert!(out.stdout.contains("still here"), "{backend}: {out}");
        // Its line too (s_client was killed: the line follows in a moment).
        let deadline = Instant::now() + STEP;
        while connection_lines(&serve).len() < 7 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let last = connection_lines(&serve);
        assert_eq!(last.len(), 7, "{backend}: {last:#?}");
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

// Held: the wrong protocol on either port. A plain-text HTTP request to the TLS port is
// refused at once ("failed", SslHandshakeFailedError); a TLS ClientHello sent to the
// `--starttls smtp` port before any command gets the plain-text greeting, is never taken
// as TLS, and the connection ends "failed" by the handshake timeout at the latest; after
// both, serve still serves an honest client.
#[test]
fn the_wrong_protocol_on_either_port_fails_cleanly_and_serve_goes_on() -> TestResult {
    let pki = Pki::new()?;
    let config = client_config(&pki)?;
    let hello = client_hello(&config)?;
    let mut wrong = Vec::new();
    for backend in backends() {
        let serve = Serve::start(&serve_args(
            &pki,
            backend,
            &["--echo", "--handshake-timeout", "2000"],
        )?)?;
        let mut stream = tcp(&serve)?;
        let local = stream.local_addr()?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let closed = closed_within(&mut stream, Duration::from_secs(1))?;
        let line = line_of(&serve, local, STEP)?;
        if !closed || line["event"] != "failed" || line["socket_error"] != "SslHandshakeFailedError"
        {
            wrong.push(format!("{backend} HTTP to TLS: closed={closed} {line}"));
        }
        honest_echo(&config, &serve, STEP)?;

        let serve = Serve::start(&serve_args(
            &pki,
            backend,
            &[
                "--echo",
                "--handshake-timeout",
                "2000",
                "--starttls",
                "smtp",
            ],
        )?)?;
        let mut stream = tcp(&serve)?;
        let local = stream.local_addr()?;
        stream.write_all(&hello)?;
        let greeting = read_until(&mut stream, "220 ")?;
        let closed = closed_within(&mut stream, Duration::from_secs(5))?;
        let line = line_of(&serve, local, STEP)?;
        if !greeting.starts_with("220 ")
            || !closed
            || line["event"] != "failed"
            || line["socket_error"].is_null()
        {
            wrong.push(format!(
                "{backend} TLS to STARTTLS: closed={closed} {greeting:?} {line}"
            ));
        }
        let out = OpensslClient::run(
            port_of(&serve)?,
            &os_args!["-starttls", "smtp", "-quiet"],
            b"still here\n",
            Duration::from_secs(3),
        )?;
        assert!(out.stdout.contains("still here"), "{backend}: {out}");
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}
