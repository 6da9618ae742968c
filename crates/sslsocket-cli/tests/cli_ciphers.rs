//! `sslsocket ciphers --backend NAME` lists that backend's own suites (Qt's
//! `supportedCiphers()` of the active backend), and what it lists is what `--ciphers`
//! accepts and negotiates with that backend.

mod common;

use common::support::os_args;
use common::{exit_code, report, run, TestResult};
use serde_json::Value;

/// The suite names `ciphers --backend NAME --json` lists.
fn listed(backend: &str) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let out = run(&os_args!["ciphers", "--backend", backend, "--json"])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let list = report(&out)?;
    Ok(list.as_array().ok_or("not a list")?.clone())
}

fn names(list: &[Value]) -> Vec<&str> {
    list.iter().filter_map(|c| c["name"].as_str()).collect()
}

#[test]
fn rustls_lists_only_its_aead_suites() -> TestResult {
    let rustls = listed("rustls")?;
    let names = names(&rustls);
    assert!(names.contains(&"TLS_AES_128_GCM_SHA256"), "{names:?}");
    assert!(
        names.contains(&"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
        "{names:?}"
    );
    // rustls has no CBC, PSK or finite-field DHE suites.
    for absent in ["_CBC_", "_PSK_", "TLS_DHE_"] {
        assert!(
            !names.iter().any(|n| n.contains(absent)),
            "{absent}: {names:?}"
        );
    }
    Ok(())
}

#[cfg(feature = "openssl")]
#[test]
fn openssl_lists_the_suites_of_this_libssl_and_negotiates_one_rustls_lacks() -> TestResult {
    let openssl = listed("openssl")?;
    let rustls = listed("rustls")?;
    assert_ne!(names(&openssl), names(&rustls));
    let find = |name: &str| openssl.iter().find(|c| c["name"] == name).cloned();
    let cbc = find("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA").ok_or("no ECDHE-ECDSA CBC suite")?;
    assert_eq!(cbc["openssl_name"], "ECDHE-ECDSA-AES128-SHA");
    assert_eq!(cbc["key_exchange"], "ECDH");
    assert_eq!(cbc["authentication"], "ECDSA");
    assert_eq!(cbc["encryption"], "AES(128)");
    assert_eq!(cbc["used_bits"], 128);
    let psk = find("TLS_PSK_WITH_AES_128_GCM_SHA256").ok_or("no PSK suite")?;
    assert_eq!(psk["openssl_name"], "PSK-AES128-GCM-SHA256");
    assert!(find("TLS_AES_256_GCM_SHA384").is_some());
    // Nothing without authentication or encryption, nothing under 128 bits.
    for c in &openssl {
        let name = c["name"].as_str().unwrap_or_default();
        assert!(!name.contains("_anon_") && !name.contains("NULL"), "{c}");
        assert!(c["used_bits"].as_u64().is_some_and(|b| b >= 128), "{c}");
    }

    // The listed CBC suite is one `--ciphers` takes and negotiates with `openssl s_server`.
    let pki = common::support::Pki::new()?;
    let server = common::s_server(&pki, &[])?;
    let out = run(&os_args![
        "connect",
        format!("127.0.0.1:{}", server.port()),
        "--cafile",
        pki.root_pem(),
        "--no-system-ca",
        "--backend",
        "openssl",
        "--protocol",
        "tls1.2",
        "--ciphers",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "--json"
    ])?;
    assert_eq!(exit_code(&out), Some(0), "{out}");
    let r = report(&out)?;
    assert_eq!(r["backend"], "openssl", "{r}");
    assert_eq!(
        r["cipher"]["name"], "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "{r}"
    );
    assert_eq!(r["cipher"]["encryption"], "AES(128)", "{r}");

    // rustls refuses that suite as bad input, before any connection.
    let out = run(&os_args![
        "connect",
        "127.0.0.1:9",
        "--backend",
        "rustls",
        "--ciphers",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
    ])?;
    assert_eq!(exit_code(&out), Some(2), "{out}");
    assert!(
        out.stderr.contains("the rustls backend does not offer"),
        "{out}"
    );
    Ok(())
}
