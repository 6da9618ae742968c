//! The plain-text part of STARTTLS for SMTP, IMAP and POP3, both sides: just enough of
//! each protocol to reach the upgrade (and for `openssl s_client -starttls PROTO`).

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::{Error, SocketError};

use crate::args::StartTlsArg;
use crate::session::{read_line, send, Deadline, Outcome, MAX_LINE};

/// The most commands a client may send before STARTTLS.
const MAX_COMMANDS: usize = 32;
/// The most lines one SMTP reply may have.
const MAX_REPLY_LINES: usize = 64;

/// Why the upgrade did not happen.
#[derive(Debug)]
pub enum Failure {
    /// The connection failed (closed, timed out, ...).
    Socket(Error),
    /// The peer answered something else than the protocol's go-ahead.
    Refused(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Socket(error)
    }
}

impl Failure {
    /// The outcome of a connection that stopped here.
    pub fn outcome(&self) -> Outcome {
        match self {
            Failure::Socket(error) => Outcome::failed(error),
            Failure::Refused(message) => {
                Outcome::failure(false, SocketError::SslHandshakeFailedError, message.clone())
            }
        }
    }
}

/// Client side: speaks until the server agreed to start TLS.
pub fn client(
    socket: &mut SslSocket,
    protocol: StartTlsArg,
    deadline: &Deadline,
) -> Result<(), Failure> {
    match protocol {
        StartTlsArg::Smtp => {
            expect_smtp(socket, deadline, "220", "greeting")?;
            send(socket, b"EHLO sslsocket\r\n", deadline)?;
            let lines = expect_smtp(socket, deadline, "250", "EHLO")?;
            let offered = lines.iter().any(|l| {
                l.get(4..)
                    .and_then(|rest| rest.split_whitespace().next())
                    .is_some_and(|word| word.eq_ignore_ascii_case("STARTTLS"))
            });
            if !offered {
                return Err(Failure::Refused(
                    "the SMTP server does not offer STARTTLS".into(),
                ));
            }
            send(socket, b"STARTTLS\r\n", deadline)?;
            expect_smtp(socket, deadline, "220", "STARTTLS")?;
        }
        StartTlsArg::Imap => {
            let greeting = read_line(socket, deadline)?;
            if !starts_with_ignore_case(&greeting, "* OK") {
                return Err(refused("IMAP greeting", &greeting));
            }
            send(socket, b"a1 STARTTLS\r\n", deadline)?;
            for _ in 0..MAX_REPLY_LINES {
                let line = read_line(socket, deadline)?;
                if line.starts_with("* ") {
                    continue;
                }
                if starts_with_ignore_case(&line, "a1 OK") {
                    return Ok(());
                }
                return Err(refused("IMAP STARTTLS", &line));
            }
            return Err(Failure::Refused("IMAP STARTTLS: no tagged answer".into()));
        }
        StartTlsArg::Pop3 => {
            let greeting = read_line(socket, deadline)?;
            if !greeting.starts_with("+OK") {
                return Err(refused("POP3 greeting", &greeting));
            }
            send(socket, b"STLS\r\n", deadline)?;
            let answer = read_line(socket, deadline)?;
            if !answer.starts_with("+OK") {
                return Err(refused("POP3 STLS", &answer));
            }
        }
    }
    Ok(())
}

/// Reads one SMTP reply (its `NNN-` lines up to the `NNN ` one); an error unless its code
/// is `code`.
fn expect_smtp(
    socket: &mut SslSocket,
    deadline: &Deadline,
    code: &str,
    what: &str,
) -> Result<Vec<String>, Failure> {
    let mut lines = Vec::new();
    for _ in 0..MAX_REPLY_LINES {
        let line = read_line(socket, deadline)?;
        if !line.starts_with(code) {
            return Err(refused(&format!("SMTP {what}"), &line));
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Ok(lines);
        }
    }
    Err(Failure::Refused(format!("SMTP {what}: reply too long")))
}

fn refused(what: &str, line: &str) -> Failure {
    let shown: String = line.chars().take(200).collect();
    Failure::Refused(format!(
        "STARTTLS refused: {what} answered `{}`",
        shown.escape_debug()
    ))
}

fn starts_with_ignore_case(line: &str, prefix: &str) -> bool {
    line.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Server side: greets, answers commands until the client asks for STARTTLS and the
/// go-ahead was sent. The caller bounds the whole conversation with its timeout.
pub async fn server(
    socket: &mut sslsocket::tokio::SslSocket,
    protocol: StartTlsArg,
) -> Result<(), Failure> {
    let greeting: &[u8] = match protocol {
        StartTlsArg::Smtp => b"220 sslsocket ESMTP\r\n",
        StartTlsArg::Imap => {
            b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] sslsocket ready\r\n"
        }
        StartTlsArg::Pop3 => b"+OK sslsocket ready\r\n",
    };
    say(socket, greeting).await?;
    for _ in 0..MAX_COMMANDS {
        let Some(line) = hear(socket).await? else {
            // Its tail must not be read as a command of its own (a `STARTTLS` at the end
            // of an over-long line would start TLS).
            return Err(Failure::Refused(format!(
                "a plain-text command longer than {MAX_LINE} bytes"
            )));
        };
        let reply = match protocol {
            StartTlsArg::Smtp => smtp_reply(&line),
            StartTlsArg::Imap => imap_reply(&line),
            StartTlsArg::Pop3 => pop3_reply(&line),
        };
        say(socket, reply.text.as_bytes()).await?;
        match reply.next {
            Next::Continue => {}
            Next::Upgrade => return Ok(()),
            Next::Quit => return Err(Failure::Refused("the client quit before STARTTLS".into())),
        }
    }
    Err(Failure::Refused(
        "the client sent too many commands before STARTTLS".into(),
    ))
}

/// Writes a plain-text reply and waits until it is on the wire.
async fn say(socket: &mut sslsocket::tokio::SslSocket, text: &[u8]) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    let written = match socket.write_all(text).await {
        Ok(()) => socket.flush().await,
        Err(error) => Err(error),
    };
    written.map_err(|error| {
        let core = socket.core();
        if core.failure().is_none() && core.is_eof() {
            // The client left before our reply: its close, not a fault of ours.
            return Error::Closed("the remote host closed the connection".into());
        }
        crate::session::io_error(error, core, "writing")
    })
}

/// Reads one plain-text line (without its line end), at most [`MAX_LINE`] bytes: `None`
/// for a longer one; an error once the client closed.
async fn hear(socket: &mut sslsocket::tokio::SslSocket) -> Result<Option<String>, Error> {
    crate::session::ensure_open(socket)?;
    // Qt's `readLine(maxSize)` takes at most `maxSize - 1` bytes: one more, so that a line
    // of `MAX_LINE` bytes comes whole and a longer one is seen to be longer (round 34).
    let line = socket.next_line(MAX_LINE + 1).await?;
    if line.len() >= MAX_LINE && !line.ends_with(b"\n") {
        return Ok(None);
    }
    if !line.ends_with(b"\n") && socket.core().is_eof() {
        // A command the client did not finish before it closed: its close, not a command.
        crate::session::ensure_open(socket)?;
    }
    if line.is_empty() {
        crate::session::ensure_open(socket)?;
        return Err(Error::Closed(
            "the remote host closed the connection".into(),
        ));
    }
    let text = String::from_utf8_lossy(&line);
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

enum Next {
    Continue,
    Upgrade,
    Quit,
}

struct Reply {
    text: String,
    next: Next,
}

fn reply(text: impl Into<String>, next: Next) -> Reply {
    Reply {
        text: text.into(),
        next,
    }
}

fn smtp_reply(line: &str) -> Reply {
    let verb = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match verb.as_str() {
        "EHLO" => reply(
            "250-sslsocket\r\n250-8BITMIME\r\n250 STARTTLS\r\n",
            Next::Continue,
        ),
        "HELO" => reply("250 sslsocket\r\n", Next::Continue),
        "STARTTLS" => reply("220 ready\r\n", Next::Upgrade),
        "NOOP" | "RSET" => reply("250 OK\r\n", Next::Continue),
        "QUIT" => reply("221 bye\r\n", Next::Quit),
        _ => reply(
            "530 5.7.0 Must issue a STARTTLS command first\r\n",
            Next::Continue,
        ),
    }
}

fn imap_reply(line: &str) -> Reply {
    let mut words = line.split_whitespace();
    let tag = words.next().unwrap_or("*");
    let command = words.next().unwrap_or_default().to_ascii_uppercase();
    match command.as_str() {
        "CAPABILITY" => reply(
            format!(
                "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n{tag} OK CAPABILITY completed\r\n"
            ),
            Next::Continue,
        ),
        "STARTTLS" => reply(
            format!("{tag} OK Begin TLS negotiation now\r\n"),
            Next::Upgrade,
        ),
        "NOOP" => reply(format!("{tag} OK NOOP completed\r\n"), Next::Continue),
        "LOGOUT" => reply(
            format!("* BYE sslsocket logging out\r\n{tag} OK LOGOUT completed\r\n"),
            Next::Quit,
        ),
        _ => reply(format!("{tag} BAD STARTTLS first\r\n"), Next::Continue),
    }
}

fn pop3_reply(line: &str) -> Reply {
    let verb = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match verb.as_str() {
        "CAPA" => reply(
            "+OK capability list follows\r\nSTLS\r\n.\r\n",
            Next::Continue,
        ),
        "STLS" => reply("+OK begin TLS negotiation\r\n", Next::Upgrade),
        "NOOP" => reply("+OK\r\n", Next::Continue),
        "QUIT" => reply("+OK bye\r\n", Next::Quit),
        _ => reply("-ERR STLS first\r\n", Next::Continue),
    }
}
