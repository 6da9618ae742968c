//! Pre-shared keys and backend choice on the command line: `connect --psk-identity
//! --psk-key` against `openssl s_server -nocert -psk`, our `serve --psk-*` against
//! `openssl s_client -psk`, `--backend openssl` across to our default (rustls) server, and
//! the clear refusals when the backend cannot do PSK.
//!
//! Tests that need the OpenSSL backend run when the CLI is built with its `openssl`
//! feature (`cargo test --workspace --all-features`). Every child process is killed on
//! drop and every wait has a deadline.

mod common;

use std::ffi::OsString;

use common::support::os_args;
use common::{exit_code, one_stderr_line, run, TestResult};

const KEY: &str = "00112233445566778899aabbccddeeff";

/// The bad-input line for PSK on a backend without it.
fn refuses_psk(args: &[OsString]) -> TestResult {
    let out = run(args)?;
    assert_eq!(exit_code(&out), Some(2), "{args:?}: {out}");
    assert!(one_stderr_line(&out), "{args:?}: {out}");
    assert!(out.stdout.is_empty(), "{args:?}: {out}");
    assert!(
        out.stderr
            .contains("pre-shared keys are not supported by the rustls backend"),
        "{out}"
    );
    #[cfg(feature = "openssl")]
    assert!(
        out.stderr.trim_end().ends_with("; use --backend openssl"),
        "{out}"
    );
    #[cfg(not(feature = "openssl"))]
    assert!(out.stderr.contains("--features openssl"), "{out}");
    Ok(())
}

#[test]
fn rustls_refuses_pre_shared_keys_clearly() -> TestResult {
    // Checked before the network is touched: nothing listens on port 9.
    refuses_psk(&os_args![
        "connect",
        "127.0.0.1:9",
        "--backend",
        "rustls",
        "--psk-identity",
        "id",
        "--psk-key",
        KEY,
        "--json"
    ])?;
    refuses_psk(&os_args![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "rustls",
        "--psk-identity",
        "id",
        "--psk-key",
        KEY
    ])
}

#[test]
fn malformed_psk_options_are_bad_input() -> TestResult {
    let backend: &[&str] = if cfg!(feature = "openssl") {
        &["--backend", "openssl"]
    } else {
        &[]
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--psk-identity", "id", "--psk-key", "0g"], "hex"),
        (vec!["--psk-identity", "id", "--psk-key", "abc"], "pairs"),
        (vec!["--psk-identity", "id", "--psk-key", ""], "empty"),
        (vec!["--psk-identity", "", "--psk-key", KEY], "empty"),
        (vec!["--psk-identity", "id"], "--psk-key"),
        (vec!["--psk-key", KEY], "--psk-identity"),
    ];
    for (options, said) in cases {
        for command in [
            os_args!["connect", "127.0.0.1:9"],
            os_args!["serve", "--listen", "127.0.0.1:0"],
        ] {
            let mut args = command;
            args.extend(backend.iter().chain(&options).map(OsString::from));
            let out = run(&args)?;
            assert_eq!(exit_code(&out), Some(2), "{args:?}: {out}");
            assert!(one_stderr_line(&out), "{args:?}: {out}");
            assert!(out.stderr.contains(said), "{args:?}: {out}");
        }
    }
    let out = run(&os_args![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--psk-identity-hint",
        "hint"
    ])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(one_stderr_line(&out), "{out}");
    assert!(out.stderr.contains("--psk-identity-hint needs"), "{out}");
    Ok(())
}

#[cfg(not(feature = "openssl"))]
#[test]
fn without_the_feature_there_is_no_openssl_backend() -> TestResult {
    let out = run(&os_args!["connect", "127.0.0.1:9", "--backend", "openssl"])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(one_stderr_line(&out), "{out}");
    assert!(
        out.stderr
            .contains("--backend openssl: the TLS backend `openssl` is not compiled in"),
        "{out}"
    );
    Ok(())
}

#[cfg(feature = "openssl")]
mod with_openssl {
    use std::ffi::OsString;
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::KEY;
    use crate::common::support::{os_args, OpensslClient, OpensslServer, Pki};
    use crate::common::{exit_code, report, run, Serve, TestResult};

    const WAIT: Duration = Duration::from_secs(10);
    const WRONG_KEY: &str = "ffeeddccbbaa99887766554433221100";

    /// `openssl s_server -nocert -psk KEY -psk_identity id` with `extra` flags: a server
    /// that has no certificate at all.
    fn psk_server(extra: &[&str]) -> Result<OpensslServer, Box<dyn std::error::Error>> {
        let mut args = os_args!["-nocert", "-psk", KEY, "-psk_identity", "id", "-quiet"];
        args.extend(extra.iter().map(OsString::from));
        Ok(OpensslServer::start(&args)?)
    }

    fn connect_psk(
        server: &OpensslServer,
        key: &str,
    ) -> Result<(Option<i32>, Value), Box<dyn std::error::Error>> {
        let out = run(&os_args![
            "connect",
            format!("127.0.0.1:{}", server.port()),
            "--backend",
            "openssl",
            "--psk-identity",
            "id",
            "--psk-key",
            key,
            "--timeout",
            "5000",
            "--json"
        ])?;
        let code = exit_code(&out);
        Ok((code, report(&out)?))
    }

    fn port_of(address: &str) -> Result<u16, Box<dyn std::error::Error>> {
        Ok(address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .ok_or("no port")?)
    }

    #[test]
    fn connect_with_a_key_to_a_server_without_a_certificate_tls12() -> TestResult {
        let server = psk_server(&["-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"])?;
        let (code, r) = connect_psk(&server, KEY)?;
        assert_eq!(code, Some(0), "{r}");
        assert_eq!(r["encrypted"], true, "{r}");
        assert_eq!(r["backend"], "openssl", "{r}");
        assert_eq!(r["protocol"], "TlsV1_2", "{r}");
        let cipher = r["cipher"]["name"].as_str().unwrap_or_default();
        assert!(cipher.contains("PSK"), "{r}");
        assert_eq!(r["cipher"]["protocol"], "TlsV1_2", "{r}");
        assert_eq!(r["peer_certificate_chain"], json!([]), "{r}");
        assert_eq!(r["errors"], json!([]), "{r}");
        assert_eq!(r["socket_error"], Value::Null, "{r}");

        let (code, r) = connect_psk(&server, WRONG_KEY)?;
        assert_eq!(code, Some(1), "{r}");
        assert_eq!(r["encrypted"], false, "{r}");
        assert_eq!(r["socket_error"], "SslHandshakeFailedError", "{r}");
        Ok(())
    }

    #[test]
    fn connect_with_a_key_to_a_server_without_a_certificate_tls13() -> TestResult {
        let server = psk_server(&["-tls1_3"])?;
        let (code, r) = connect_psk(&server, KEY)?;
        assert_eq!(code, Some(0), "{r}");
        assert_eq!(r["encrypted"], true, "{r}");
        assert_eq!(r["protocol"], "TlsV1_3", "{r}");
        assert_eq!(r["cipher"]["protocol"], "TlsV1_3", "{r}");
        assert!(
            r["cipher"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("_SHA256")),
            "{r}"
        );
        assert_eq!(r["peer_certificate_chain"], json!([]), "{r}");
        assert_eq!(r["errors"], json!([]), "{r}");

        let (code, r) = connect_psk(&server, WRONG_KEY)?;
        assert_eq!(code, Some(1), "{r}");
        assert_eq!(r["encrypted"], false, "{r}");
        Ok(())
    }

    /// Our `serve --psk-*` with the OpenSSL backend, with an identity hint.
    fn psk_serve(extra: &[&str]) -> Result<Serve, Box<dyn std::error::Error>> {
        let mut args = os_args![
            "--backend",
            "openssl",
            "--psk-identity-hint",
            "our hint",
            "--psk-identity",
            "id",
            "--psk-key",
            KEY
        ];
        args.extend(extra.iter().map(OsString::from));
        let serve = Serve::start(&args)?;
        assert!(
            !serve.process.stderr().contains("warning"),
            "{}",
            serve.process.output()
        );
        Ok(serve)
    }

    /// `openssl s_client` with our key and identity, TLS 1.2 and the OpenSSL cipher list
    /// `ciphers`, sending `data`.
    fn s_client_tls12_psk(
        port: u16,
        ciphers: &str,
        data: &[u8],
    ) -> Result<crate::common::support::RunOutput, Box<dyn std::error::Error>> {
        Ok(OpensslClient::run(
            port,
            &os_args![
                "-psk",
                KEY,
                "-psk_identity",
                "id",
                "-tls1_2",
                "-cipher",
                ciphers
            ],
            data,
            WAIT,
        )?)
    }

    // What s_client sends must not start a line with `Q`, `R` or `k`: those are its
    // commands (quit, renegotiate, key update), not data.
    #[test]
    fn serve_accepts_s_client_by_key_tls13() -> TestResult {
        let serve = psk_serve(&[])?;
        let port = port_of(&serve.address)?;
        let out = OpensslClient::run(
            port,
            &os_args!["-psk", KEY, "-psk_identity", "id"],
            b"hello\n",
            WAIT,
        )?;
        let text = out.combined();
        assert!(text.contains("TLSv1.3"), "{out}");
        // Authenticated by the key: the server sent no certificate.
        assert!(!text.contains("Certificate chain"), "{out}");
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "encrypted", "{line}");
        assert_eq!(line["protocol"], "TlsV1_3", "{line}");
        assert_eq!(line["cipher"]["name"], "TLS_AES_128_GCM_SHA256", "{line}");
        assert_eq!(line["peer_certificate_chain"], json!([]), "{line}");
        assert_eq!(line["errors"], json!([]), "{line}");
        assert_eq!(line["received_bytes"], 6, "{line}");

        // A client with another identity gets no key: TLS 1.3 goes on with the
        // certificate (s_client does not verify it by default).
        let out = OpensslClient::run(
            port,
            &os_args!["-psk", KEY, "-psk_identity", "someone-else"],
            b"",
            WAIT,
        )?;
        assert!(out.combined().contains("Certificate chain"), "{out}");
        Ok(())
    }

    #[test]
    fn serve_accepts_s_client_by_key_tls12() -> TestResult {
        let serve = psk_serve(&["--protocol", "tls1.2"])?;
        let port = port_of(&serve.address)?;
        let out = s_client_tls12_psk(port, "PSK-AES128-GCM-SHA256", b"hello\n")?;
        let text = out.combined();
        assert!(text.contains("Cipher is PSK-AES128-GCM-SHA256"), "{out}");
        // The hint went out in the ServerKeyExchange (s_client prints the session's).
        assert!(text.contains("PSK identity hint: our hint"), "{out}");
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "encrypted", "{line}");
        assert_eq!(line["protocol"], "TlsV1_2", "{line}");
        assert_eq!(
            line["cipher"]["name"], "TLS_PSK_WITH_AES_128_GCM_SHA256",
            "{line}"
        );
        assert_eq!(line["received_bytes"], 6, "{line}");

        // Another identity: no key, and TLS 1.2 PSK has nothing to fall back to.
        let out = OpensslClient::run(
            port,
            &os_args![
                "-psk",
                KEY,
                "-psk_identity",
                "someone-else",
                "-tls1_2",
                "-cipher",
                "PSK-AES128-GCM-SHA256"
            ],
            b"",
            WAIT,
        )?;
        assert!(out.combined().contains("unknown psk identity"), "{out}");
        let line = serve.connection_line(1)?;
        assert_eq!(line["event"], "failed", "{line}");
        Ok(())
    }

    #[test]
    fn our_client_and_our_server_by_key() -> TestResult {
        let serve = psk_serve(&["--echo"])?;
        let out = run(&os_args![
            "connect",
            serve.address,
            "--backend",
            "openssl",
            "--psk-identity",
            "id",
            "--psk-key",
            KEY,
            "--send",
            r"ping\n",
            "--timeout",
            "1500",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{out}");
        let r = report(&out)?;
        assert_eq!(r["protocol"], "TlsV1_3", "{r}");
        assert_eq!(r["received"], "ping\n", "{r}");
        assert_eq!(r["peer_certificate_chain"], json!([]), "{r}");
        assert_eq!(r["errors"], json!([]), "{r}");
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "encrypted", "{line}");

        // The wrong key: the server cannot decrypt the client's Finished.
        let out = run(&os_args![
            "connect",
            serve.address,
            "--backend",
            "openssl",
            "--psk-identity",
            "id",
            "--psk-key",
            WRONG_KEY,
            "--timeout",
            "5000",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(1), "{out}");
        Ok(())
    }

    #[test]
    fn starttls_by_key_between_our_client_and_our_server() -> TestResult {
        let serve = psk_serve(&["--starttls", "smtp"])?;
        let out = run(&os_args![
            "connect",
            serve.address,
            "--starttls",
            "smtp",
            "--backend",
            "openssl",
            "--psk-identity",
            "id",
            "--psk-key",
            KEY,
            "--timeout",
            "5000",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{out}");
        let r = report(&out)?;
        assert_eq!(r["encrypted"], true, "{r}");
        assert_eq!(r["peer_certificate_chain"], json!([]), "{r}");
        assert_eq!(r["errors"], json!([]), "{r}");
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "encrypted", "{line}");
        Ok(())
    }

    #[test]
    fn psk_suites_are_selectable_by_their_iana_names() -> TestResult {
        // The issue's command line: it exited 2 ("cipher ... is not supported") because
        // cipher names were looked up among rustls's suites only.
        let serve = psk_serve(&[
            "--protocol",
            "tls1.2",
            "--ciphers",
            "TLS_PSK_WITH_AES_128_GCM_SHA256",
        ])?;
        let port = port_of(&serve.address)?;
        let out = s_client_tls12_psk(port, "PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384", b"hi\n")?;
        assert!(
            out.combined().contains("Cipher is PSK-AES128-GCM-SHA256"),
            "{out}"
        );
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "encrypted", "{line}");
        assert_eq!(
            line["cipher"]["name"], "TLS_PSK_WITH_AES_128_GCM_SHA256",
            "{line}"
        );
        Ok(())
    }

    #[test]
    fn openssl_client_against_our_default_server() -> TestResult {
        let pki = Pki::new()?;
        let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
        let serve = Serve::start(&os_args![
            "--cert",
            leaf.chain_pem,
            "--key",
            leaf.key_pem,
            "--echo"
        ])?;
        let out = run(&os_args![
            "connect",
            serve.address,
            "--backend",
            "openssl",
            "--cafile",
            pki.root_pem(),
            "--no-system-ca",
            "--send",
            r"across\n",
            "--timeout",
            "1500",
            "--json"
        ])?;
        assert_eq!(exit_code(&out), Some(0), "{out}");
        let r = report(&out)?;
        assert_eq!(r["backend"], "openssl", "{r}");
        assert_eq!(r["protocol"], "TlsV1_3", "{r}");
        assert_eq!(r["errors"], json!([]), "{r}");
        assert_eq!(r["received"], "across\n", "{r}");
        assert_eq!(
            r["peer_certificate_chain"].as_array().map(Vec::len),
            Some(2),
            "{r}"
        );
        let line = serve.connection_line(0)?;
        assert_eq!(line["event"], "encrypted", "{line}");
        Ok(())
    }
}
