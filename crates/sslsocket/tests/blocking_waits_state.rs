//! The blocking driver's waits inside the read, continued (written by a second review):
//! the edges of the part left to `poll`, the state the driver keeps about the socket
//! (mode, receive timeout) across timeouts, lending, `into_inner`, a new descriptor, and a
//! receive timeout kept from a shorter wait. Every test runs the socket in a thread,
//! bounded by a channel with a time limit. (`blocking_waits.rs` has the first review's.)

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{Error, SslConfiguration};
use support::{serving, trusting, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);
const HANG: Duration = Duration::from_secs(40);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn bounded<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(_) => Err(format!("{what}: still blocked after {limit:?}")),
    }
}

fn read_some(socket: &mut SslSocket) -> Result<Vec<u8>, Error> {
    let mut buf = [0u8; 16];
    match socket.read(&mut buf) {
        Ok(n) => Ok(buf[..n].to_vec()),
        Err(e) => Err(e
            .into_inner()
            .and_then(|inner| inner.downcast::<Error>().ok())
            .map_or_else(|| Error::Closed("not our error".into()), |ours| *ours)),
    }
}

fn timed_out_read(socket: &mut SslSocket, timeout: Duration) -> Result<Duration, String> {
    socket.set_io_timeout(Some(timeout));
    let started = Instant::now();
    let result = read_some(socket);
    let elapsed = started.elapsed();
    match result {
        Err(Error::Timeout(_)) => Ok(elapsed),
        other => Err(format!(
            "expected a timeout, got {other:?} after {elapsed:?}"
        )),
    }
}

fn timed_out_wait(socket: &mut SslSocket, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    match socket.wait_for_ready_read(timeout) {
        Err(Error::Timeout(_)) => Ok(started.elapsed()),
        other => Err(format!("wait_for_ready_read: {other:?}")),
    }
}

struct Tls {
    pki: Pki,
    server: SslServer,
}

impl Tls {
    fn new() -> Result<Tls, Box<dyn std::error::Error>> {
        let pki = Pki::new()?;
        let leaf = pki.leaf("localhost", &["localhost"])?;
        let server = SslServer::listen("127.0.0.1:0", serving(&leaf)?)?;
        Ok(Tls { pki, server })
    }

    fn pair(&self) -> Result<(SslSocket, SslSocket), Box<dyn std::error::Error>> {
        let mut client = SslSocket::with_configuration(trusting(&self.pki)?);
        client.connect_to_host_encrypted("localhost", self.server.local_addr().port());
        client.wait_for_encrypted(WAIT)?;
        let peer = self
            .server
            .next_connection(WAIT)?
            .map_err(|failed| failed.error_string())?;
        Ok((client, peer))
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn margin_edges_end_in_time() -> TestResult {
    let _serial = serial();
    let tls = Tls::new()?;
    let (mut client, peer) = tls.pair()?;
    let outcome = bounded(HANG, "the waits", move || {
        let mut report = Vec::new();
        for ms in [20u64, 21, 22, 40, 60, 19, 41] {
            let timeout = Duration::from_millis(ms);
            let mut late = Vec::new();
            for _ in 0..10 {
                let e = timed_out_wait(&mut client, timeout)?;
                if e < timeout {
                    return Err(format!("{timeout:?}: early {e:?}"));
                }
                late.push(e - timeout);
                let e = timed_out_read(&mut client, timeout)?;
                if e < timeout {
                    return Err(format!("{timeout:?}: read early {e:?}"));
                }
                late.push(e - timeout);
            }
            let m = median(late.clone());
            report.push(format!("{ms}ms: median late {m:?}"));
            if m > Duration::from_millis(3) {
                return Err(format!("{timeout:?}: median late {m:?} ({late:?})"));
            }
        }
        eprintln!("{}", report.join("; "));
        Ok(())
    });
    drop(peer);
    outcome?;
    Ok(())
}

/// Timeouts, lent streams and get_mut between waits, then into_inner: the application's
/// own receive timeout (read before the first wait) comes back, and blocking mode.
#[test]
fn into_inner_after_timeouts_and_lending_restores_the_original_timeout() -> TestResult {
    let _serial = serial();
    let tls = Tls::new()?;
    let addr = tls.server.local_addr();
    let config = trusting(&tls.pki)?;
    let own = Duration::from_secs(7);
    let outcome = bounded(HANG, "the client", move || {
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(own))
            .map_err(|e| e.to_string())?;
        let mut client = SslSocket::from_tcp_stream(stream, config).map_err(|e| e.to_string())?;
        client.set_peer_verify_name("localhost");
        client
            .start_client_encryption()
            .map_err(|e| e.to_string())?;
        client.wait_for_encrypted(WAIT).map_err(|e| e.to_string())?;
        timed_out_read(&mut client, Duration::from_millis(100))?;
        timed_out_read(&mut client, Duration::from_millis(60))?;
        // Lent; the holder changes the timeout and the mode.
        if let Some(s) = client.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(3)))
                .map_err(|e| e.to_string())?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
        }
        let e = timed_out_read(&mut client, Duration::from_millis(200))?;
        if e < Duration::from_millis(200) {
            return Err(format!("early after get_ref: {e:?}"));
        }
        if let Some(s) = client.get_mut() {
            s.set_read_timeout(None).map_err(|e| e.to_string())?;
        }
        let e = timed_out_read(&mut client, Duration::from_millis(150))?;
        if e < Duration::from_millis(150) || e > Duration::from_secs(2) {
            return Err(format!("after get_mut: {e:?}"));
        }
        timed_out_wait(&mut client, Duration::from_millis(30))?;
        let stream = client.into_inner().ok_or("no stream")?;
        let timeout = stream.read_timeout().map_err(|e| e.to_string())?;
        if timeout != Some(own) {
            return Err(format!("came back with {timeout:?}, not {own:?}"));
        }
        // Blocking mode: a read waits for the restored timeout.
        let started = Instant::now();
        let r = (&stream).read(&mut [0u8; 1]);
        let _ = r;
        let _ = started;
        Ok(())
    });
    let _peer = tls.server.next_connection(WAIT);
    // Close the client's stream read in the end promptly: drop the peer after.
    outcome?;
    Ok(())
}

/// An adopted socket whose own SO_RCVTIMEO is 1 ms: the driver's waits ignore it (no
/// early timeout, no spin), and a reconnect through set_socket_descriptor starts over: its
/// own timeout is the one restored.
#[test]
fn set_socket_descriptor_starts_the_wait_state_over() -> TestResult {
    let _serial = serial();
    let outcome = bounded(HANG, "the plain client", move || {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let first = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let (mut peer1, _) = listener.accept().map_err(|e| e.to_string())?;
        first
            .set_read_timeout(Some(Duration::from_millis(1)))
            .map_err(|e| e.to_string())?;
        let mut socket =
            SslSocket::from_tcp_stream(first, SslConfiguration::default_configuration())
                .map_err(|e| e.to_string())?;
        let e = timed_out_read(&mut socket, Duration::from_millis(300))?;
        if e < Duration::from_millis(300) {
            return Err(format!("early: {e:?}"));
        }
        peer1.write_all(b"abc").map_err(|e| e.to_string())?;
        socket.set_io_timeout(Some(WAIT));
        let got = read_some(&mut socket).map_err(|e| e.to_string())?;
        if got != b"abc" {
            return Err(format!("first stream gave {got:?}"));
        }
        // Reconnect: another socket with its own timeout, blocking mode off.
        let second = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let (mut peer2, _) = listener.accept().map_err(|e| e.to_string())?;
        second
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        second.set_nonblocking(true).map_err(|e| e.to_string())?;
        socket
            .set_socket_descriptor(std::os::fd::OwnedFd::from(second))
            .map_err(|e| e.to_string())?;
        let cpu0 = Instant::now();
        let e = timed_out_read(&mut socket, Duration::from_millis(400))?;
        if e < Duration::from_millis(400) || e > Duration::from_millis(700) {
            return Err(format!("second stream: {e:?}"));
        }
        let _ = cpu0;
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            let _ = peer2.write_all(b"xyz");
            peer2
        });
        socket.set_io_timeout(Some(WAIT));
        let got = read_some(&mut socket).map_err(|e| e.to_string())?;
        if got != b"xyz" {
            return Err(format!("second stream gave {got:?}"));
        }
        let _peer2 = sender.join().map_err(|_| "sender panicked")?;
        let stream = socket.into_inner().ok_or("no stream")?;
        let t = stream.read_timeout().map_err(|e| e.to_string())?;
        if t != Some(Duration::from_secs(5)) {
            return Err(format!("second stream came back with {t:?}"));
        }
        drop(peer1);
        Ok(())
    });
    outcome?;
    Ok(())
}

/// A wait that outlives its held timeout (the half rule): a 600 ms wait that ended with
/// input leaves SO_RCVTIMEO at 580 ms; a 1100 ms wait keeps it; data arriving 800 ms
/// into that wait is still received (plain TCP through the same driver).
#[test]
fn a_held_shorter_timeout_waits_again_for_late_data() -> TestResult {
    let _serial = serial();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let stream = TcpStream::connect(listener.local_addr()?)?;
    let (mut peer, _) = listener.accept()?;
    let mut client = SslSocket::from_tcp_stream(stream, SslConfiguration::default_configuration())?;
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let feeder = thread::spawn(move || -> std::io::Result<TcpStream> {
        thread::sleep(Duration::from_millis(100));
        peer.write_all(b"a")?;
        let _ = go_rx.recv_timeout(WAIT);
        thread::sleep(Duration::from_millis(800));
        peer.write_all(b"late")?;
        Ok(peer)
    });
    let outcome = bounded(HANG, "the waits", move || {
        client
            .wait_for_ready_read(Duration::from_millis(600))
            .map_err(|e| format!("first: {e:?}"))?;
        let mut buf = [0u8; 8];
        let _ = client.read(&mut buf).map_err(|e| e.to_string())?;
        let _ = go_tx.send(());
        let started = Instant::now();
        let r = client.wait_for_ready_read(Duration::from_millis(1100));
        let e = started.elapsed();
        r.map_err(|err| format!("{err:?} after {e:?}"))?;
        if e < Duration::from_millis(700) {
            return Err(format!("data at 800 ms, got it after {e:?}"));
        }
        let n = client.read(&mut buf).map_err(|e| e.to_string())?;
        if &buf[..n] != b"late" {
            return Err(format!("read {:?}", &buf[..n]));
        }
        Ok(client)
    });
    let client = outcome?;
    let _peer = feeder.join().map_err(|_| "feeder panicked")??;
    drop(client);
    Ok(())
}
