//! Adversarial review of the tokio driver (round 33). Each test asserts the correct
//! behaviour and failed before its fix; every wait is bounded.

mod support;

use std::time::{Duration, Instant};

use sslsocket::tokio::{SslServer, SslSocket};
use sslsocket::{SslCertificate, SslConfiguration, SslKey};
use support::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const STEP: Duration = Duration::from_secs(10);

fn server_configuration(pki: &Pki) -> Result<SslConfiguration, BoxError> {
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

fn client_configuration(pki: &Pki) -> Result<SslConfiguration, BoxError> {
    let mut configuration = SslConfiguration::default();
    configuration
        .set_ca_certificates(vec![SslCertificate::from_der(pki.root_der())?])
        .set_system_ca_on_demand(false);
    Ok(configuration)
}

// Was a defect: after our own abort() (no close_notify seen) poll_read returns Ok(0), a clean end of stream
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_after_abort_is_not_a_clean_end_of_stream() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let port = server.local_addr().port();
    let served = tokio::spawn(async move {
        let mut socket = server.accept_encrypted().await?;
        let mut sink = Vec::new();
        let _ = timeout(STEP, socket.read_to_end(&mut sink)).await;
        Ok::<_, BoxError>(())
    });
    let mut client =
        SslSocket::connect_to_host_encrypted("localhost", port, client_configuration(&pki)?)
            .await?;
    client.abort();
    let mut buf = [0u8; 10];
    let read = timeout(STEP, client.read(&mut buf)).await?;
    let write = timeout(STEP, client.write(b"x")).await?;
    let flush = timeout(STEP, client.flush()).await?;
    let _ = served.await;
    eprintln!("after abort: read {read:?} write {write:?} flush {flush:?}");
    assert!(read.is_err(), "read after abort: {read:?}");
    Ok(())
}

const CHILD: &str = "REVIEW_TOKIO33_EMFILE_CHILD";

// Was a defect: while accept fails (EMFILE) Incoming yields only accept errors, never the finished handshakes
#[test]
fn incoming_hands_out_finished_handshakes_while_accept_fails(
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::BufRead;
    if std::env::var_os(CHILD).is_some() {
        return emfile_child();
    }
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new("prlimit")
        .arg("--nofile=48:48")
        .arg(&exe)
        .args([
            "--exact",
            "incoming_hands_out_finished_handshakes_while_accept_fails",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut port = None;
    let mut root = None;
    for line in lines.by_ref() {
        let line = line?;
        if let Some(p) = line.split("PORT ").nth(1) {
            port = Some(p.trim().parse::<u16>()?);
        }
        if let Some(r) = line.split("ROOT ").nth(1) {
            root = Some(r.trim().to_string());
        }
        if port.is_some() && root.is_some() {
            break;
        }
    }
    let (port, root) = (port.ok_or("no port")?, root.ok_or("no root")?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let served = runtime
        .block_on(async move {
            let mut configuration = SslConfiguration::default();
            configuration
                .set_ca_certificates(SslCertificate::from_pem(
                    root.replace("\\n", "\n").as_bytes(),
                )?)
                .set_system_ca_on_demand(false);
            let mut tasks = Vec::new();
            for _ in 0..60 {
                let configuration = configuration.clone();
                tasks.push(tokio::spawn(async move {
                    let mut s = timeout(
                        Duration::from_secs(8),
                        SslSocket::connect_to_host_encrypted("localhost", port, configuration),
                    )
                    .await
                    .ok()?
                    .ok()?;
                    s.write_all(b"hi\n").await.ok()?;
                    let line = timeout(Duration::from_secs(8), s.next_line(0))
                        .await
                        .ok()?
                        .ok()?;
                    Some(line)
                }));
            }
            let mut served = 0;
            for t in tasks {
                if let Ok(Some(line)) = t.await {
                    if line == b"hi\n" {
                        served += 1;
                    }
                }
            }
            Ok::<_, BoxError>(served)
        })
        .map_err(|e| e.to_string())?;
    let _ = child.kill();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = child.wait();
    assert!(
        served >= 55,
        "clients served while the descriptor table was full: {served} of 60; child said {:?}",
        rest.iter().rev().take(5).collect::<Vec<_>>()
    );
    Ok(())
}

fn emfile_child() -> Result<(), Box<dyn std::error::Error>> {
    let pki = Pki::new().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime
        .block_on(async move {
            let mut server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
            server.set_handshake_timeout(Duration::from_secs(2));
            let root = std::fs::read_to_string(pki.root_pem())?.replace('\n', "\\n");
            println!("PORT {}", server.local_addr().port());
            println!("ROOT {root}");
            let mut incoming = server.incoming();
            let mut errors = 0u64;
            let mut ok = 0u64;
            let started = Instant::now();
            while let Some(c) = timeout(Duration::from_secs(20), incoming.next())
                .await
                .ok()
                .flatten()
            {
                match c {
                    Ok(mut s) => {
                        ok += 1;
                        tokio::spawn(async move {
                            if let Ok(Ok(line)) =
                                timeout(Duration::from_secs(2), s.next_line(0)).await
                            {
                                let _ = s.write_all(&line).await;
                                let _ = s.flush().await;
                            }
                            let _ = timeout(Duration::from_secs(1), s.disconnect_from_host()).await;
                        });
                    }
                    Err(_) => {
                        errors += 1;
                        if errors.is_multiple_of(100_000) {
                            println!("errors {errors} ok {ok} after {:?}", started.elapsed());
                            tokio::task::yield_now().await;
                        }
                    }
                }
            }
            Ok::<_, BoxError>(())
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}
