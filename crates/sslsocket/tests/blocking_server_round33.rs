//! Round 33: the blocking `SslServer`'s accept loop when the listener keeps failing.
//!
//! Was a defect (found while fixing the tokio server's, `tokio_round33.rs`): out of file
//! descriptors, `accept` fails at once every time, and the accept thread asked again in a
//! busy loop, one core at 100% for as long as the descriptors stayed taken. It now pauses
//! 50 ms after a listener error. The server runs in a child process (this test binary
//! again) under `prlimit --nofile=32`; the parent holds idle TCP connections open so that
//! the child's `accept` meets EMFILE, and reads the child's CPU time from /proc.

mod support;

use std::io::BufRead;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sslsocket::blocking::SslServer;
use sslsocket::{SslCertificate, SslConfiguration, SslKey};
use support::Pki;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CHILD: &str = "BLOCKING_SERVER_ROUND33_CHILD";

/// CPU time (user + system) of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("no stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, so 12 and 13 after the name.
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}

fn server_configuration(pki: &Pki) -> Result<SslConfiguration, Box<dyn std::error::Error>> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let chain = leaf
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(chain)
        .set_private_key(SslKey::from_der(&leaf.key_der)?)
        .set_system_ca_on_demand(false);
    Ok(configuration)
}

/// The child: a blocking server whose handshakes never finish (the parent's connections
/// stay silent), kept for 15 s at most.
fn child() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::listen("127.0.0.1:0", server_configuration(&pki)?)?;
    println!("PORT {}", server.local_addr().port());
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let _ = server.next_connection(Duration::from_millis(200));
    }
    Ok(())
}

#[test]
fn a_failing_listener_is_not_asked_in_a_busy_loop() -> TestResult {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let exe = std::env::current_exe()?;
    let mut child = match std::process::Command::new("prlimit")
        .arg("--nofile=32:32")
        .arg(&exe)
        .args([
            "--exact",
            "a_failing_listener_is_not_asked_in_a_busy_loop",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("prlimit is not available ({e}): the check is skipped");
            return Ok(());
        }
    };
    let result = (|| -> TestResult {
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut port = None;
        for line in lines.by_ref().take(200) {
            if let Some(p) = line?.split("PORT ").nth(1) {
                port = Some(p.trim().parse::<u16>()?);
                break;
            }
        }
        let port = port.ok_or("the child printed no port")?;
        // More silent connections than the child has descriptors: its accept fails.
        let mut held = Vec::new();
        for _ in 0..60 {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                held.push(stream);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let before = cpu_ticks(child.id())?;
        std::thread::sleep(Duration::from_secs(1));
        let after = cpu_ticks(child.id())?;
        drop(held);
        // Clock ticks are 1/100 s: a busy loop takes about 100 in that second.
        let used = after.saturating_sub(before);
        eprintln!("the child used {used} ticks of CPU in 1 s");
        assert!(
            used < 30,
            "the child used {used} ticks of CPU in 1 s while its accept failed"
        );
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
