//! Real peers on 127.0.0.1: `openssl s_server` and `openssl s_client` processes with their
//! output captured, every wait bounded by a deadline, every process killed on drop.

use std::ffi::{OsStr, OsString};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{wait_until, PeerProcess, RunOutput};
use super::{SupportError, SupportResult};

/// How long `OpensslServer::start` waits for the server to listen.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A port that was free a moment ago (bind 127.0.0.1:0, read the port, drop the socket).
pub fn free_port() -> SupportResult<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// `openssl version`, e.g. "OpenSSL 3.0.19 27 Jan 2026 (Library: …)".
pub fn openssl_version() -> String {
    match Command::new("openssl")
        .arg("version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Err(e) => format!("openssl unavailable: {e}"),
    }
}

/// Runs `openssl <args>` to completion: writes `stdin_data` then closes stdin, waits at most
/// `timeout` (then kills it and sets `timed_out`). For `openssl verify`, `x509`, `req`…
pub fn openssl_run<S: AsRef<OsStr>>(
    args: &[S],
    stdin_data: &[u8],
    timeout: Duration,
) -> SupportResult<RunOutput> {
    let mut process = PeerProcess::spawn("openssl", args)?;
    process.feed_and_close_stdin(stdin_data);
    process.wait(timeout)
}

/// `openssl s_server -accept 127.0.0.1:<port> <args>`, listening once `start` returns.
/// Stdin stays open (s_server sends what is written to it to the client, and some modes
/// exit on stdin EOF). Killed on drop.
pub struct OpensslServer {
    process: PeerProcess,
    port: u16,
}

impl OpensslServer {
    /// Starts the server on a free port and waits (at most [`READY_TIMEOUT`]) until it
    /// listens: it prints `ACCEPT` on stdout; with `-quiet` (which silences that) the
    /// listening socket is looked up in /proc/net/tcp instead, so no probe connection ever
    /// reaches the server. A port lost to a race is retried with another.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> SupportResult<Self> {
        const ATTEMPTS: usize = 3;
        let quiet = args.iter().any(|a| a.as_ref() == "-quiet");
        let mut last_error = SupportError::new("openssl s_server was not started");
        for _ in 0..ATTEMPTS {
            let port = free_port()?;
            let mut full: Vec<OsString> = vec![
                "s_server".into(),
                "-accept".into(),
                format!("127.0.0.1:{port}").into(),
            ];
            full.extend(args.iter().map(|a| a.as_ref().to_os_string()));
            let mut process = PeerProcess::spawn("openssl", &full)?;
            let deadline = Instant::now() + READY_TIMEOUT;

            let ready = if quiet {
                // One reading decides: /proc/net/tcp is read page by page while other
                // tests open and close sockets, so a second reading can miss the row the
                // first one saw (a flake of round 35's CI).
                let mut listening = false;
                wait_until(deadline, || {
                    listening = is_listening(port);
                    listening || !process.is_running()
                });
                if listening {
                    Ok(())
                } else {
                    // An exited server's last words may not have been collected yet.
                    let output = if process.is_running() {
                        process.output()
                    } else {
                        process
                            .wait(Duration::from_secs(1))
                            .map(|out| out.combined())
                            .unwrap_or_else(|_| process.output())
                    };
                    Err(SupportError::new(format!(
                        "`{}` is not listening on port {port}:\n{output}",
                        process.command(),
                    )))
                }
            } else {
                process.wait_for_stdout_line("ACCEPT", deadline)
            };
            match ready {
                Ok(()) => return Ok(Self { process, port }),
                Err(error) => {
                    // s_server: "bind: Address already in use" and exits, at once: the
                    // port went to another test between `free_port` and the bind. An
                    // early exit whose message was not read in time counts the same (a
                    // server that cannot start at all fails every attempt alike).
                    let port_taken = error.to_string().contains("Address already in use")
                        || process.output().contains("Address already in use")
                        || !process.is_running();
                    last_error = error;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last_error)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// stdout and stderr so far, in arrival order.
    pub fn output(&self) -> String {
        self.process.output()
    }

    pub fn stdout(&self) -> String {
        self.process.stdout()
    }

    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Sends `data` to s_server's stdin (which it forwards to the connected client).
    pub fn write_stdin(&mut self, data: &[u8]) -> SupportResult<()> {
        self.process.write_stdin(data)
    }

    /// Waits until `needle` appears in the output; fails with the output on timeout or exit.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> SupportResult<()> {
        self.process.wait_for_output(needle, timeout)
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// The underlying process, for anything not wrapped here.
    pub fn process(&mut self) -> &mut PeerProcess {
        &mut self.process
    }
}

/// `openssl s_client -connect 127.0.0.1:<port> <args>`.
pub struct OpensslClient;

impl OpensslClient {
    /// Runs s_client to completion: writes `stdin_data`, closes stdin, waits at most
    /// `timeout` (then kills it; see `RunOutput::timed_out`). s_client quits on stdin EOF
    /// once the handshake is done; add `-ign_eof` to wait for the server to close instead
    /// (e.g. to read an `-www` response).
    pub fn run<S: AsRef<OsStr>>(
        port: u16,
        args: &[S],
        stdin_data: &[u8],
        timeout: Duration,
    ) -> SupportResult<RunOutput> {
        openssl_run(&client_args(port, args), stdin_data, timeout)
    }

    /// Starts s_client and returns at once; stdin stays open for `write_stdin`. Killed on
    /// drop.
    pub fn spawn<S: AsRef<OsStr>>(port: u16, args: &[S]) -> SupportResult<PeerProcess> {
        PeerProcess::spawn("openssl", &client_args(port, args))
    }
}

fn client_args<S: AsRef<OsStr>>(port: u16, args: &[S]) -> Vec<OsString> {
    let mut full: Vec<OsString> = vec![
        "s_client".into(),
        "-connect".into(),
        format!("127.0.0.1:{port}").into(),
    ];
    full.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    full
}

/// Whether something listens on 127.0.0.1:`port`, per /proc/net/tcp (no connection made).
fn is_listening(port: u16) -> bool {
    const LISTEN: &str = "0A";
    let wanted = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .map(|table| {
            table.lines().skip(1).any(|row| {
                let fields: Vec<&str> = row.split_whitespace().collect();
                fields.get(1) == Some(&wanted.as_str()) && fields.get(3) == Some(&LISTEN)
            })
        })
        .unwrap_or(false)
}
