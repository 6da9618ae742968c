//! Review round 34, last part: `serve`'s eviction of the oldest handshake when crowded.

mod common;

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::support::{os_args, Pki};
use common::{Serve, TestResult};
use serde_json::Value;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore};

type BoxError = Box<dyn std::error::Error>;

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

/// A rustls handshake on `tcp`, bounded by the socket's timeouts.
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

/// The per-connection lines of handshakes ended to make room.
fn crowded_out(serve: &Serve) -> usize {
    serve
        .process
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "failed" && v.to_string().contains("handshake slot"))
        .count()
}

// Was a defect (round 34): `serve`'s eviction (round 34) lets a crowd run more than MAX_CONCURRENT_HANDSHAKES
// (1024) handshakes at once, without bound. When every slot is taken, `accept`
// (crates/sslsocket-cli/src/serve.rs, the `sleep_until(due)` branch) accepts the waiting
// connection WITHOUT a permit and ends the oldest handshake; that one's permit is then
// free, so the next accept takes it without ending anything. Each eviction thus adds one
// handshake running outside the semaphore: 1024 silent connections, 3 s, then 200 more
// end only about 100 old ones, and about 1124 run at once; an attacker that keeps
// connecting keeps growing the count (all its connections of the last 3 s plus the
// permitted ones, each holding a descriptor and a task until the handshake timeout).
// Right: the waiting connection takes the evicted handshake's permit (hand the permit
// over, e.g. send it through the oneshot and have the task return it, or acquire after
// the eviction), so every accepted handshake beyond the cap ends exactly one other.
#[test]
fn evicting_the_oldest_handshake_keeps_at_most_1024_handshakes_running() -> TestResult {
    const CAP: usize = 1024;
    const MORE: usize = 200;
    let pki = Pki::new()?;
    let config = client_config(&pki)?;
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let serve = Serve::start(&os_args![
        "--cert",
        leaf.chain_pem,
        "--key",
        leaf.key_pem,
        "--handshake-timeout",
        "60000"
    ])?;
    let mut old = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        old.push(TcpStream::connect(&serve.address)?);
    }
    // Every slot taken, and the oldest past CROWDED_AFTER (3 s).
    std::thread::sleep(Duration::from_millis(3500));
    let mut new = Vec::with_capacity(MORE);
    for _ in 0..MORE {
        let stream = TcpStream::connect(&serve.address)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        new.push(stream);
    }
    // The new clients stay silent until serve has taken them all in: none of their
    // handshakes can end and free a slot meanwhile, so each one accepted beyond the cap
    // must have ended exactly one old handshake (each reported at once; a loaded machine
    // may take a while to print them). (Round 34: handshaking while serve still accepted
    // let finished handshakes free slots, which this test first counted as slots past
    // the cap.)
    let deadline = Instant::now() + Duration::from_secs(20);
    while crowded_out(&serve) < MORE && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let ended = crowded_out(&serve);
    // Each new connection answers a handshake: serve accepted (and runs) every one.
    let mut served = 0;
    for stream in &mut new {
        if handshake(&config, stream).is_ok() {
            served += 1;
        }
    }
    drop(new);
    drop(old);
    assert_eq!(served, MORE, "not every new client was served");
    assert_eq!(
        ended,
        MORE,
        "{MORE} handshakes were taken beyond the {CAP} slots, and {ended} old ones were ended: \
         {} ran at once",
        CAP + MORE - ended
    );
    Ok(())
}
