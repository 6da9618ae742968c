//! Round 34 review: the library's servers (blocking `SslServer`, tokio `SslServer` with
//! `incoming()`) under a crowd of slowloris clients: every handshake slot taken by clients
//! that dribble their ClientHello one byte at a time (so the "first byte under pressure"
//! check of the blocking server passes), with a long handshake timeout. An honest client
//! must still be served within a few seconds (the servers end the oldest handshake after
//! CROWDED_AFTER, 3 s, when a client waits).

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::{SslCertificate, SslConfiguration, SslKey};
use support::Pki;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxError = Box<dyn std::error::Error>;

/// More than the 256 handshake slots of either server.
const CROWD: usize = 270;
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

fn client_hello(config: &Arc<ClientConfig>) -> Result<Vec<u8>, BoxError> {
    let mut conn = ClientConnection::new(Arc::clone(config), ServerName::try_from("localhost")?)?;
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello)?;
    }
    Ok(hello)
}

/// A crowd of clients connected to `addr`, each writing the next byte of a ClientHello
/// every 300 ms from a thread, until dropped.
struct Crowd {
    stop: Arc<AtomicBool>,
    worker: Option<thread::JoinHandle<()>>,
}

impl Crowd {
    fn start(addr: SocketAddr, hello: Vec<u8>) -> Result<Crowd, BoxError> {
        let mut streams = Vec::with_capacity(CROWD);
        for _ in 0..CROWD {
            let stream = TcpStream::connect(addr)?;
            stream.set_nonblocking(true)?;
            streams.push(stream);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let worker = thread::spawn(move || {
            let mut at = 0usize;
            while !flag.load(Ordering::Relaxed) {
                let byte = hello.get(at % hello.len().max(1)).copied().unwrap_or(0x16);
                for stream in &mut streams {
                    let _ = stream.write(&[byte]);
                }
                at += 1;
                thread::sleep(Duration::from_millis(300));
            }
        });
        Ok(Crowd {
            stop,
            worker: Some(worker),
        })
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// An honest rustls client: connects and runs its handshake; returns its local address.
fn honest(config: &Arc<ClientConfig>, addr: SocketAddr) -> Result<SocketAddr, BoxError> {
    let mut tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(STEP))?;
    tcp.set_write_timeout(Some(STEP))?;
    let local = tcp.local_addr()?;
    let mut conn = ClientConnection::new(Arc::clone(config), ServerName::try_from("localhost")?)?;
    while conn.is_handshaking() {
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        if conn.is_handshaking() {
            if conn.read_tls(&mut tcp)? == 0 {
                return Err("closed during the handshake".into());
            }
            conn.process_new_packets()?;
        }
    }
    while conn.wants_write() {
        conn.write_tls(&mut tcp)?;
    }
    // Kept open a while, so the server hands it out encrypted.
    thread::spawn(move || {
        thread::sleep(STEP);
        drop(tcp);
    });
    Ok(local)
}

// Held: blocking `SslServer`, 270 slowloris clients (a byte every 300 ms, handshake
// timeout 60 s): an honest client is handed out encrypted within 8 s.
#[test]
fn blocking_server_serves_an_honest_client_through_a_slowloris_crowd() -> TestResult {
    let pki = Pki::new()?;
    let config = client_config(&pki)?;
    let server =
        sslsocket::blocking::SslServer::listen("127.0.0.1:0", server_configuration(&pki)?)?;
    server.set_handshake_timeout(Duration::from_secs(60));
    let addr = server.local_addr();
    let crowd = Crowd::start(addr, client_hello(&config)?)?;
    thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    let local = {
        let config = Arc::clone(&config);
        thread::spawn(move || honest(&config, addr).map_err(|e| e.to_string()))
    };
    let mut served = None;
    while start.elapsed() < Duration::from_secs(8) && served.is_none() {
        if let Ok(Ok(socket)) = server.next_connection(Duration::from_millis(200)) {
            served = Some(socket.peer_addr());
        }
    }
    let local = local.join().map_err(|_| "the honest client panicked")??;
    drop(crowd);
    assert_eq!(served.flatten(), Some(local), "after {:?}", start.elapsed());
    Ok(())
}

// Held: tokio `SslServer::incoming()`, the same crowd: the honest client comes out of the
// stream encrypted within 8 s.
#[test]
fn tokio_incoming_serves_an_honest_client_through_a_slowloris_crowd() -> TestResult {
    let pki = Pki::new()?;
    let config = client_config(&pki)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let configuration = server_configuration(&pki)?;
    let mut server = rt.block_on(sslsocket::tokio::SslServer::bind(
        "127.0.0.1:0",
        configuration,
    ))?;
    server.set_handshake_timeout(Duration::from_secs(60));
    let addr = server.local_addr();
    let hello = client_hello(&config)?;
    let (found, local, crowded) = rt.block_on(async move {
        // Accepting from the start, as an application does.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let accepting = tokio::spawn(async move {
            let mut incoming = server.incoming();
            while let Some(next) = incoming.next().await {
                if let Ok(socket) = next {
                    let _ = tx.send(socket.peer_addr());
                }
            }
        });
        let crowd = tokio::task::spawn_blocking(move || {
            Crowd::start(addr, hello).map_err(|e| e.to_string())
        })
        .await;
        let crowd = match crowd {
            Ok(Ok(crowd)) => Some(crowd),
            _ => None,
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let honest_client = {
            let config = Arc::clone(&config);
            tokio::task::spawn_blocking(move || honest(&config, addr).map_err(|e| e.to_string()))
        };
        let found = tokio::time::timeout(Duration::from_secs(8), rx.recv()).await;
        let local = honest_client.await;
        accepting.abort();
        let crowded = crowd.is_some();
        drop(crowd);
        (found, local, crowded)
    });
    assert!(crowded, "the crowd could not connect");
    let local = local.map_err(|e| e.to_string())??;
    assert_eq!(found.ok().flatten().flatten(), Some(local));
    Ok(())
}
