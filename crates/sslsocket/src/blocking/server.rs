//! The blocking `SslServer` (Qt's `QSslServer` with `waitForNewConnection`).

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::blocking::SslSocket;
use crate::config::{ReloadHandle, ServerCredentials, SslConfiguration};
use crate::core::{SslCore, SslHooks};
use crate::error::{ConfigError, Error};
use crate::socket_api::SslSocketExt;

/// How many handshakes run at once before new connections wait to be accepted.
const MAX_CONCURRENT_HANDSHAKES: usize = 256;
/// From this many running handshakes on, a new connection must send its first byte within
/// [`FIRST_BYTE_UNDER_PRESSURE`], so silent connections cannot hold every slot for a whole
/// handshake timeout.
const PRESSURE: usize = MAX_CONCURRENT_HANDSHAKES / 2;
/// How long a connection accepted under pressure may stay silent.
const FIRST_BYTE_UNDER_PRESSURE: Duration = Duration::from_secs(1);
/// When every handshake slot is taken and another client waits, the oldest handshake
/// still running is ended to make room once it has run this long (both servers). A
/// client that holds a slot by sending nothing, or a byte, or a byte now and then, is
/// then the first to go, and a flood of such clients delays an honest one by about this
/// much instead of locking it out for the handshake timeout. A handshake on a working
/// network takes a few round trips: far less than this. (At 1 s, a burst of 300 honest
/// clients whose handshakes took 1.5 s lost 44 of them; the trade-off is an overload of
/// honest handshakes slower than this, which loses the oldest ones.)
pub(crate) const CROWDED_AFTER: Duration = Duration::from_secs(3);
/// How many finished connections wait for the application (`next_connection`); when full,
/// handshakes that finished wait in their slots, and new connections in the kernel's
/// backlog: back-pressure instead of an unbounded queue.
const READY_QUEUE: usize = 1024;

/// A TLS server: accepts TCP connections, runs the server handshake on each in its own
/// thread, and hands out the sockets whose handshake succeeded (Qt's `QSslServer`).
///
/// A silent or slow client cannot hold up others: each handshake has its own thread and
/// the handshake timeout (Qt's default, 5 s) closes it; once half of the 256 handshake
/// slots are busy, a new connection that sends nothing within 1 s is closed. At most
/// [`max_pending_connections`](Self::max_pending_connections) connections (1,024 unless set
/// lower), finished or in their handshake, wait for `next_connection`; from there on the
/// server stops accepting
/// until the application takes some, and new clients wait in the kernel's backlog, as Qt's
/// `setMaxPendingConnections` has it. [`pause_accepting`](Self::pause_accepting) stops
/// accepting until [`resume_accepting`](Self::resume_accepting).
pub struct SslServer {
    local_addr: SocketAddr,
    ready: Receiver<Delivery>,
    /// Disconnected once the accept loop returned (its listener closed).
    accept_done: Receiver<()>,
    stop: Arc<AtomicBool>,
    /// The handshakes running, ended by the drop itself.
    started: Arc<Started>,
    settings: Arc<std::sync::Mutex<Settings>>,
    live: ReloadHandle,
    gate: Arc<Gate>,
}

/// When the accept loop may accept: Qt's `pauseAccepting` and `maxPendingConnections`.
struct Gate {
    paused: AtomicBool,
    /// At most this many finished connections wait for the application (1..=READY_QUEUE).
    max_pending: AtomicUsize,
    /// Finished connections handed to the queue and not yet taken (the handshakes under
    /// way, counted by the accept loop, count against `max_pending` too).
    pending: AtomicUsize,
}

impl Gate {
    /// Whether the accept loop must not accept now, with `running` handshakes under way:
    /// as Qt's `QSslServer`, a connection in its handshake counts as pending (round 37,
    /// review L4: only finished ones counted, so clients that came together were all
    /// accepted, up to 256 beyond the maximum).
    fn holds(&self, running: &AtomicUsize) -> bool {
        self.paused.load(Ordering::Acquire)
            || self
                .pending
                .load(Ordering::Acquire)
                .saturating_add(running.load(Ordering::Acquire))
                >= self.max_pending.load(Ordering::Acquire)
    }

    /// Waits while the gate holds; false once the server stops.
    fn wait(&self, stop: &AtomicBool, running: &AtomicUsize) -> bool {
        while self.holds(running) {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            thread::sleep(GATE_POLL);
        }
        !stop.load(Ordering::Relaxed)
    }
}

/// How often a held accept loop looks at its gate again.
const GATE_POLL: Duration = Duration::from_millis(5);

/// What applies to connections accepted from now on.
#[derive(Clone)]
struct Settings {
    handshake_timeout: Duration,
    hooks: Option<Arc<dyn SslHooks>>,
}

impl SslServer {
    /// Listens on `addr` with `configuration`, which must carry a certificate and its
    /// matching key: a missing or mismatched one (in the server-name map too) is an
    /// `Error::Config` here, before anything is accepted.
    pub fn listen(
        addr: impl ToSocketAddrs,
        configuration: SslConfiguration,
    ) -> Result<SslServer, Error> {
        let live = ReloadHandle::new(configuration)?;
        let listener = TcpListener::bind(addr).map_err(|e| Error::io("listening", e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("listening", e))?;
        let (tx, rx) = mpsc::sync_channel(READY_QUEUE);
        let (exited, accept_done) = mpsc::sync_channel::<()>(0);
        let stop = Arc::new(AtomicBool::new(false));
        let timeout = Arc::new(std::sync::Mutex::new(Settings {
            handshake_timeout: Duration::from_secs(5),
            hooks: None,
        }));
        let started = Arc::new(Started::default());
        let gate = Arc::new(Gate {
            paused: AtomicBool::new(false),
            max_pending: AtomicUsize::new(READY_QUEUE),
            pending: AtomicUsize::new(0),
        });
        let held = Arc::clone(&gate);
        let stop_flag = Arc::clone(&stop);
        let timeout_ref = Arc::clone(&timeout);
        let registry = Arc::clone(&started);
        let configuration = live.clone();
        thread::Builder::new()
            .name("sslsocket-accept".into())
            .spawn(move || {
                accept_loop(
                    listener,
                    configuration,
                    Queue { tx, gate: held },
                    stop_flag,
                    registry,
                    timeout_ref,
                );
                drop(exited);
            })
            .map_err(|e| Error::io("starting the accept thread", e))?;
        Ok(SslServer {
            local_addr,
            ready: rx,
            accept_done,
            stop,
            started,
            settings: timeout,
            live,
            gate,
        })
    }

    /// Stops accepting new connections (Qt's `pauseAccepting`): clients that connect wait
    /// in the kernel's backlog (one already accepted waits before its handshake) until
    /// [`resume_accepting`](Self::resume_accepting). Handshakes under way go on.
    pub fn pause_accepting(&self) {
        self.gate.paused.store(true, Ordering::Release);
    }

    /// Accepts new connections again (Qt's `resumeAccepting`).
    pub fn resume_accepting(&self) {
        self.gate.paused.store(false, Ordering::Release);
    }

    /// At most `max` connections, finished or in their handshake, wait for the
    /// application (Qt's `setMaxPendingConnections`; Qt's `QSslServer` counts the
    /// handshakes under way too); while that many wait, no new connection is accepted.
    /// Taken between 1 and 1,024 (the default, larger than Qt's 30: a finished connection
    /// waits as a socket, bounded all the same).
    pub fn set_max_pending_connections(&self, max: usize) {
        self.gate
            .max_pending
            .store(max.clamp(1, READY_QUEUE), Ordering::Release);
    }

    /// See [`set_max_pending_connections`](Self::set_max_pending_connections) (Qt's
    /// `maxPendingConnections`).
    pub fn max_pending_connections(&self) -> usize {
        self.gate.max_pending.load(Ordering::Acquire)
    }

    /// Whether a finished connection waits for [`next_connection`](Self::next_connection)
    /// (Qt's `hasPendingConnections`; failed handshakes count, as `next_connection`
    /// returns them).
    pub fn has_pending_connections(&self) -> bool {
        self.gate.pending.load(Ordering::Acquire) > 0
    }

    /// The configuration handshakes use from now on (Qt's `sslConfiguration`).
    pub fn ssl_configuration(&self) -> SslConfiguration {
        self.live.ssl_configuration()
    }

    /// Replaces the certificate chain, key, OCSP staple and server-name map while the
    /// server runs (certificate hot reload): handshakes that start from now on use them,
    /// open connections are untouched. Checked first; on error nothing changes. See
    /// [`ReloadHandle`].
    pub fn reload(&self, credentials: &ServerCredentials) -> Result<(), ConfigError> {
        self.live.reload(credentials)
    }

    /// Replaces the OCSP response stapled with the server's own certificate, for
    /// handshakes that start from now on.
    pub fn set_ocsp_response(&self, response: Option<Vec<u8>>) -> Result<(), ConfigError> {
        self.live.set_ocsp_response(response)
    }

    /// A handle that reloads this server's credentials from elsewhere (a signal handler).
    pub fn reload_handle(&self) -> ReloadHandle {
        self.live.clone()
    }

    /// The address listened on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The handshake timeout of connections accepted from now on (Qt's
    /// `handshakeTimeout`; 5 s unless set).
    pub fn handshake_timeout(&self) -> Duration {
        match self.settings.lock() {
            Ok(t) => t.handshake_timeout,
            Err(p) => p.into_inner().handshake_timeout,
        }
    }

    /// Sets the handshake timeout for connections accepted from now on.
    pub fn set_handshake_timeout(&self, timeout: Duration) {
        match self.settings.lock() {
            Ok(mut t) => t.handshake_timeout = timeout,
            Err(p) => p.into_inner().handshake_timeout = timeout,
        }
    }

    /// Installs hooks on every connection accepted from now on (Qt's `QSslServer` signals
    /// that need a decision: `sslErrors`, `preSharedKeyAuthenticationRequired`, ...).
    pub fn set_hooks(&self, hooks: Arc<dyn SslHooks>) {
        match self.settings.lock() {
            Ok(mut t) => t.hooks = Some(hooks),
            Err(p) => p.into_inner().hooks = Some(hooks),
        }
    }

    /// The next connection whose handshake finished, waiting up to `timeout` (Qt's
    /// `waitForNewConnection` + `nextPendingConnection`). Failed handshakes are returned
    /// as `Err` with the socket, so their errors and peer chain can be inspected.
    #[allow(clippy::result_large_err)]
    pub fn next_connection(
        &self,
        timeout: Duration,
    ) -> Result<Result<SslSocket, SslSocket>, Error> {
        match self.ready.recv_timeout(timeout) {
            Ok(delivery) => {
                // Counted before it was queued (see `send_bounded`).
                self.gate.pending.fetch_sub(1, Ordering::AcqRel);
                Ok(delivery.take())
            }
            Err(RecvTimeoutError::Timeout) => {
                Err(Error::Timeout("waiting for a new connection".into()))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(Error::Closed("the server stopped listening".into()))
            }
        }
    }

    /// The next successfully encrypted connection; failed handshakes are skipped.
    pub fn accept(&self) -> Result<SslSocket, Error> {
        loop {
            if let Ok(socket) = self.next_connection(Duration::MAX)? {
                return Ok(socket);
            }
        }
    }
}

impl Drop for SslServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The handshakes running end before the drop returns, and none starts after it, as
        // Qt deletes a server's pending sockets with it (round 36: the accept loop ended
        // them once it woke, and a client whose handshake ran on meanwhile got a verified
        // session nobody would read).
        self.started.end_all();
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect_timeout(&self.local_addr, Duration::from_millis(100));
        // The port is free once the drop returns, as Qt's `close()` and the tokio server
        // leave it (round 36: the accept thread closed it only later). The loop returns as
        // soon as it wakes; the wait is bounded all the same.
        let _ = self.accept_done.recv_timeout(ACCEPT_EXIT_WAIT);
        // Connections finished and never taken are aborted, not closed as served (their
        // drop aborts; round 36: they got a clean close_notify).
        while self.ready.try_recv().is_ok() {}
    }
}

/// How long a server's drop waits for its accept thread to close the listener.
const ACCEPT_EXIT_WAIT: Duration = Duration::from_millis(500);

/// A finished connection on its way to the application: one never taken (the server is
/// gone, or its queue dropped) is aborted, so its client sees no clean end of a session
/// nobody served.
struct Delivery(Option<Result<SslSocket, SslSocket>>);

impl Delivery {
    #[allow(clippy::result_large_err)] // as `next_connection`'s own result
    fn take(mut self) -> Result<SslSocket, SslSocket> {
        // Always `Some` until taken or dropped.
        self.0.take().unwrap_or_else(|| Err(SslSocket::new()))
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(Ok(mut socket) | Err(mut socket)) = self.0.take() {
            socket.abort();
        }
    }
}

/// How long accepting pauses after the listener failed.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Where finished connections go: the application's queue, and the gate that counts them.
#[derive(Clone)]
struct Queue {
    tx: SyncSender<Delivery>,
    gate: Arc<Gate>,
}

fn accept_loop(
    listener: TcpListener,
    live: ReloadHandle,
    queue: Queue,
    stop: Arc<AtomicBool>,
    started: Arc<Started>,
    timeout: Arc<std::sync::Mutex<Settings>>,
) {
    let running = Arc::new(AtomicUsize::new(0));
    loop {
        // Paused, or enough finished connections wait: new clients wait in the backlog.
        if !queue.gate.wait(&stop, &running) {
            return;
        }
        let incoming = listener.accept();
        // One accepted as the gate closed waits before its handshake.
        if !queue.gate.wait(&stop, &running) {
            return;
        }
        if stop.load(Ordering::Relaxed) {
            // The server is gone (its drop ended the handshakes running).
            return;
        }
        // The address `accept` gives stays known when the client is gone before its
        // socket is made (one that resets at once).
        let (stream, peer) = match incoming {
            Ok(accepted) => accepted,
            // A client gone before its socket was made: the next one.
            Err(e) if crate::core::ends_the_stream(&e) => continue,
            // The listener itself failing (out of descriptors, memory) fails again at once:
            // pause instead of spinning, while the handshakes under way finish and free
            // their descriptors (as the tokio server does).
            Err(_) => {
                thread::sleep(ACCEPT_PAUSE);
                continue;
            }
        };
        // Every slot taken, and this client waits: the oldest handshake still running
        // makes room once it has run `CROWDED_AFTER` (one at a time: the evicted thread
        // ends at once, its socket shut).
        let mut evicted_at: Option<Instant> = None;
        while running.load(Ordering::Acquire) >= MAX_CONCURRENT_HANDSHAKES {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if evicted_at.is_none_or(|at| at.elapsed() >= EVICTION_SETTLES)
                && started.evict_oldest()
            {
                evicted_at = Some(Instant::now());
            }
            thread::sleep(Duration::from_millis(5));
        }
        let settings = match timeout.lock() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        };
        // The current configuration (one atomic load): a reload applies from here on.
        let configuration = (*live.current()).clone();
        let queue = queue.clone();
        let counter = Arc::clone(&running);
        let busy = counter.fetch_add(1, Ordering::AcqRel);
        let stop = Arc::clone(&stop);
        // None: the server was dropped since the accept, or the system has no descriptor
        // for the handle that ends the handshake: the connection closes here.
        let Some(id) = started.add(&stream) else {
            counter.fetch_sub(1, Ordering::AcqRel);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            continue;
        };
        let registry = Arc::clone(&started);
        let spawned = thread::Builder::new()
            .name("sslsocket-handshake".into())
            .spawn(move || {
                let silent = busy >= PRESSURE && !sends_within(&stream, FIRST_BYTE_UNDER_PRESSURE);
                if silent {
                    let _ = registry.remove(id);
                    counter.fetch_sub(1, Ordering::AcqRel);
                    return;
                }
                // A panic on the way (an application hook the backend does not guard)
                // ends this handshake only: its slot and registry entry are given back
                // either way (round 35: each one leaked a slot, until the server took no
                // client at all). The socket unwound is closed; there is none to report.
                #[allow(clippy::result_large_err)] // as `handshake`'s own result
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    handshake(stream, peer, configuration, settings)
                }));
                // Finished: no longer one to make room (its slot is held until the
                // application has room for the connection). One ended to make room is
                // not handed out (as a timed-out client's is not on tokio).
                let removed = registry.remove(id);
                if let (true, Ok(result)) = (removed, result) {
                    send_bounded(&queue, result, &stop);
                }
                counter.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            let _ = started.remove(id);
            running.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// After ending a handshake to make room, how long before another may be ended while its
/// thread has not given its slot back yet.
const EVICTION_SETTLES: Duration = Duration::from_millis(100);

/// The handshakes running, oldest first, each with a handle on its TCP connection, so the
/// accept loop can end the oldest when every slot is taken (`CROWDED_AFTER`).
#[derive(Default)]
struct Started {
    inner: std::sync::Mutex<Handshakes>,
}

#[derive(Default)]
struct Handshakes {
    last_id: u64,
    /// The server was dropped: no handshake starts.
    ended: bool,
    /// Oldest first.
    running: VecDeque<Running>,
}

struct Running {
    id: u64,
    since: Instant,
    /// A second handle on the connection.
    stream: std::net::TcpStream,
}

impl Started {
    fn lock(&self) -> std::sync::MutexGuard<'_, Handshakes> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a handshake starting on `stream`; its id, or `None` once `end_all` ran or
    /// when no second handle on the connection can be had (a handshake nothing could end
    /// is not started: fail closed; round 36: out of descriptors, it ran on after the
    /// server's drop).
    fn add(&self, stream: &std::net::TcpStream) -> Option<u64> {
        let mut handshakes = self.lock();
        if handshakes.ended {
            return None;
        }
        let handle = stream.try_clone().ok()?;
        handshakes.last_id += 1;
        let id = handshakes.last_id;
        handshakes.running.push_back(Running {
            id,
            since: Instant::now(),
            stream: handle,
        });
        Some(id)
    }

    /// Forgets handshake `id`; whether it was still there (not ended to make room).
    fn remove(&self, id: u64) -> bool {
        let mut handshakes = self.lock();
        match handshakes.running.iter().position(|r| r.id == id) {
            Some(at) => {
                handshakes.running.remove(at);
                true
            }
            None => false,
        }
    }

    /// Ends every handshake running (their threads see their sockets shut), and every one
    /// to come.
    fn end_all(&self) {
        let mut handshakes = self.lock();
        handshakes.ended = true;
        for running in handshakes.running.drain(..) {
            let _ = running.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Ends the oldest handshake if it has run `CROWDED_AFTER` (its thread sees its
    /// socket shut and gives its slot back); whether one was ended.
    fn evict_oldest(&self) -> bool {
        let mut handshakes = self.lock();
        let due = handshakes
            .running
            .front()
            .is_some_and(|r| r.since.elapsed() >= CROWDED_AFTER);
        if !due {
            return false;
        }
        if let Some(oldest) = handshakes.running.pop_front() {
            let _ = oldest.stream.shutdown(std::net::Shutdown::Both);
        }
        true
    }
}

/// Whether the client sends something within `limit` (without taking it).
fn sends_within(stream: &std::net::TcpStream, limit: Duration) -> bool {
    if stream.set_read_timeout(Some(limit)).is_err() {
        return false;
    }
    let sent = matches!(stream.peek(&mut [0u8; 1]), Ok(n) if n > 0);
    let _ = stream.set_read_timeout(None);
    sent
}

/// Hands a finished connection to the application, waiting while its queue is full;
/// gives up when the server stops (the connection no one will receive is then aborted,
/// not closed as a finished session would be: `Delivery`'s drop).
fn send_bounded(queue: &Queue, result: Result<SslSocket, SslSocket>, stop: &AtomicBool) {
    let mut delivery = Delivery(Some(result));
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // Counted before it can be taken, so that the taker's count never goes first.
        queue.gate.pending.fetch_add(1, Ordering::AcqRel);
        match queue.tx.try_send(delivery) {
            Ok(()) => return,
            Err(mpsc::TrySendError::Disconnected(_)) => {
                queue.gate.pending.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            Err(mpsc::TrySendError::Full(back)) => {
                queue.gate.pending.fetch_sub(1, Ordering::AcqRel);
                delivery = back;
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

// Both sides carry the whole socket: a failed one keeps its errors and peer chain.
#[allow(clippy::result_large_err)]
fn handshake(
    stream: std::net::TcpStream,
    peer: SocketAddr,
    configuration: SslConfiguration,
    settings: Settings,
) -> Result<SslSocket, SslSocket> {
    let limit = settings.handshake_timeout;
    // A configuration's clones share its values: no copy per connection.
    let core = || SslCore::new(configuration.clone());
    let mut socket = match SslSocket::adopt(stream, core(), Some(peer)) {
        Ok(socket) => socket,
        Err(error) => {
            let mut failed = SslSocket::with_core(core());
            failed.record_failure(error);
            return Err(failed);
        }
    };
    if let Some(hooks) = settings.hooks {
        socket.set_hooks(hooks);
    }
    if let Err(error) = socket.start_server_encryption() {
        socket.record_failure(error);
        // Close at once: the client must not wait out its own timeout.
        socket.abort();
        return Err(socket);
    }
    // Not `wait_for_encrypted`, which notes a timeout itself: the failure below is the
    // one report (round 34: `ErrorOccurred(SocketTimeoutError)` came twice).
    match socket.encrypted_within(limit) {
        Ok(()) => Ok(socket),
        Err(error) => {
            // The same error as the tokio server's for the same condition.
            let error = match error {
                Error::Timeout(_) => {
                    Error::Timeout("the client did not finish the handshake in time".into())
                }
                other => other,
            };
            socket.record_failure(error);
            socket.abort();
            Err(socket)
        }
    }
}
