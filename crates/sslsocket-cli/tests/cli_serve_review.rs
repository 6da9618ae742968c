//! Review of `serve` (v1 and v2) against shared/cli-contract.md: each test asserts a
//! contract line (quoted) that the tool does not keep, or pins a behaviour found right.

mod common;

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use common::support::{os_args, Pki};
use common::{Serve, TestResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

const STEP: Duration = Duration::from_secs(20);

fn backends() -> Vec<&'static str> {
    let mut names = vec!["rustls"];
    if cfg!(feature = "openssl") {
        names.push("openssl");
    }
    names
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn connector(pki: &Pki, tls13_only: bool) -> Result<TlsConnector, Box<dyn std::error::Error>> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(pki.root_der().to_vec()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider);
    let builder = if tls13_only {
        builder.with_protocol_versions(&[&tokio_rustls::rustls::version::TLS13])?
    } else {
        builder.with_safe_default_protocol_versions()?
    };
    let config = builder.with_root_certificates(roots).with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

fn message(size: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 31 + size) % 251) as u8).collect()
}

fn leaf_args(
    pki: &Pki,
    backend: &str,
    extra: &[&str],
) -> Result<Vec<OsString>, Box<dyn std::error::Error>> {
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

/// A TLS 1.3 client that sends its message, then its close_notify (TLS 1.3 allows the
/// write side to close alone: RFC 8446 6.1, "This does not have any effect on its read
/// side of the connection"), then reads until the server's close_notify.
///
/// Contract: "`--echo` | write back what each client sends". The server reads every byte
/// (`received_bytes` is the whole message) but does not write all of it back before its
/// own close: the echo of what was still unsent when the close_notify arrived is lost.
#[test]
#[ignore = "known limit (round 31 note): a peer's close_notify closes our sending side too, \
            so a TLS 1.3 client that half-closes before reading its echo loses it"]
fn echo_survives_a_tls13_client_half_close() -> TestResult {
    let pki = Pki::new()?;
    let connector = connector(&pki, true)?;
    let mut failures = Vec::new();
    for backend in backends() {
        for size in [1usize, 100_000, 1024 * 1024] {
            let serve = Serve::start(&leaf_args(&pki, backend, &["--echo"])?)?;
            let msg = message(size);
            let back = runtime()?.block_on(async {
                let tcp = tokio::time::timeout(STEP, TcpStream::connect(&serve.address)).await??;
                let name = ServerName::try_from("localhost")?;
                let tls = tokio::time::timeout(STEP, connector.connect(name, tcp)).await??;
                let (mut reader, mut writer) = tokio::io::split(tls);
                let write = async {
                    writer.write_all(&msg).await?;
                    // close_notify, then the TCP write side.
                    writer.shutdown().await
                };
                let mut back = Vec::new();
                let read = reader.read_to_end(&mut back);
                let (w, r) =
                    tokio::time::timeout(STEP, async { tokio::join!(write, read) }).await?;
                w?;
                // A reset or an unexpected EOF still leaves what arrived in `back`.
                let _ = r;
                Ok::<Vec<u8>, Box<dyn std::error::Error>>(back)
            })?;
            let line = serve.connection_line(0)?;
            if back != msg {
                failures.push(format!(
                    "{backend} {size} B: {} bytes came back (server line: received_bytes {}, socket_error {})",
                    back.len(),
                    line["received_bytes"],
                    line["socket_error"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

fn port_of(serve: &Serve) -> Result<u16, Box<dyn std::error::Error>> {
    Ok(serve
        .address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or("no port")?)
}

/// `openssl s_client -servername 127.0.0.1` sends the IP literal as its server name (RFC
/// 6066 forbids it, but clients do send it).
///
/// Contract (v2 serve): "each JSON connection line gets `"sni"`: the server name the
/// client sent, `null` if none", and "`--sni NAME=CERTFILE,KEYFILE` | for a client whose
/// server name is NAME ... use this certificate". On the openssl backend the line says
/// `"127.0.0.1"` and `--sni 127.0.0.1=...` picks the certificate; on rustls the line says
/// `null` and the default certificate is used: the two backends disagree, and rustls
/// reports "none" for a name the client did send.
///
/// Decided (round 31 note): rustls drops an IP literal from SNI, as RFC 6066 section 3
/// says ("Literal IPv4 and IPv6 addresses are not permitted in HostName"), and gives
/// its resolver no name; reading the hello ourselves would mean parsing TLS. This test
/// checks the OpenSSL backend, and on rustls that the default certificate is used and
/// `"sni"` is `null` (the decided behaviour).
#[test]
fn an_ip_literal_server_name_is_reported_and_selects_its_sni_certificate() -> TestResult {
    use common::support::OpensslClient;
    let pki = Pki::new()?;
    let other = pki.leaf("other", &["other.example"])?;
    let mut sni = OsString::from("127.0.0.1=");
    sni.push(other.chain_pem.as_os_str());
    sni.push(",");
    sni.push(other.key_pem.as_os_str());
    let mut failures = Vec::new();
    for backend in backends() {
        let mut args = leaf_args(&pki, backend, &[])?;
        args.push("--sni".into());
        args.push(sni.clone());
        let serve = Serve::start(&args)?;
        let out = OpensslClient::run(
            port_of(&serve)?,
            &os_args!["-servername", "127.0.0.1"],
            b"",
            Duration::from_secs(10),
        )?;
        let line = serve.connection_line(0)?;
        if backend == "rustls" {
            if !line["sni"].is_null() || out.combined().contains("subject=CN = other") {
                failures.push(format!("rustls: an IP literal SNI was not ignored: {line}"));
            }
            continue;
        }
        if line["sni"] != "127.0.0.1" {
            failures.push(format!(
                "{backend}: \"sni\" is {} (sent 127.0.0.1)",
                line["sni"]
            ));
        }
        if !out.combined().contains("subject=CN = other") {
            failures.push(format!(
                "{backend}: --sni 127.0.0.1=... not used, the client saw the default certificate"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

/// One over-long SMTP command line (`EHLO` with an 8 KiB argument that ends in
/// `STARTTLS`) is cut at the line limit and its tail taken as a command of its own: the
/// server answers `220` and upgrades although the client never sent a STARTTLS command
/// (command smuggling through an oversized line; src/starttls.rs `hear` returns the first
/// MAX_LINE bytes and leaves the rest of the line for the next command).
///
/// Contract: "`--starttls PROTO` | ... `EHLO` answered with `250-...` lines ending in
/// `250 STARTTLS`, `STARTTLS` answered `220`"; only a STARTTLS command may be answered
/// `220`.
#[test]
fn an_oversized_plaintext_line_is_not_split_into_a_starttls_command() -> TestResult {
    use std::io::{Read, Write};
    let pki = Pki::new()?;
    let serve = Serve::start(&leaf_args(&pki, "rustls", &["--starttls", "smtp"])?)?;
    let mut tcp = std::net::TcpStream::connect(&serve.address)?;
    tcp.set_read_timeout(Some(Duration::from_millis(800)))?;
    let mut line = b"EHLO ".to_vec();
    line.resize(8 * 1024, b'A');
    line.extend_from_slice(b"STARTTLS\r\n");
    tcp.write_all(&line)?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(
        !text.contains("\r\n220 "),
        "the server answered 220 (upgrade) to a line that was not a STARTTLS command:\n{text}"
    );
    Ok(())
}

/// A client that sends a server name and then fails the handshake (no client certificate
/// for `--verify verify`; no common ALPN protocol): the line says `"sni": null` on both
/// backends, as if the client had sent none. The name is known from the ClientHello (the
/// server already chose its certificate by it), but `requested_server_name()` reads it
/// from the negotiated session only (src/core/info.rs in the library;
/// crates/sslsocket-cli/src/report.rs `server_json`), which a failed handshake never has.
///
/// Contract (v2 serve): "each JSON connection line gets `"sni"`: the server name the
/// client sent, `null` if none".
#[test]
fn a_failed_handshake_still_reports_the_server_name_the_client_sent() -> TestResult {
    use common::support::OpensslClient;
    let pki = Pki::new()?;
    let mut failures = Vec::new();
    for backend in backends() {
        let cases: [(&str, Vec<&str>, Vec<OsString>); 2] = [
            (
                "--verify verify, no client certificate",
                vec!["--verify", "verify", "--no-system-ca"],
                os_args!["-servername", "foo.example"],
            ),
            (
                "no common ALPN protocol",
                vec!["--alpn", "h2"],
                os_args!["-servername", "foo.example", "-alpn", "x-other"],
            ),
        ];
        for (what, server, client) in cases {
            let mut args = leaf_args(&pki, backend, &server)?;
            if server.contains(&"--verify") {
                args.push("--cafile".into());
                args.push(pki.root_pem().into());
            }
            let serve = Serve::start(&args)?;
            let _ = OpensslClient::run(port_of(&serve)?, &client, b"", Duration::from_secs(10))?;
            let line = serve.connection_line(0)?;
            if line["event"] != "failed" || line["sni"] != "foo.example" {
                failures.push(format!(
                    "{backend}, {what}: event {}, sni {} (client sent foo.example)",
                    line["event"], line["sni"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}
