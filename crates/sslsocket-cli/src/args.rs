//! The command line as clap sees it: names, types, defaults. No validation beyond types;
//! that is `plan.rs`'s job.

use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sslsocket::{PeerVerifyMode, SslProtocol};

/// A TLS client and server with the behaviour of Qt's QSslSocket.
#[derive(Debug, Parser)]
#[command(name = "sslsocket", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open one TLS connection, report the handshake, optionally talk.
    Connect(ConnectArgs),
    /// Accept TLS connections and report each one.
    Serve(ServeArgs),
    /// Run a local server and a verified client against it, and show what happened.
    Demo,
    /// Show certificates: of files, of a server (`HOST:PORT`), verify a chain file
    /// (`--verify`), or check expiry (`--check-expiry DAYS`).
    Cert(CertArgs),
    /// List the TLS backends compiled in.
    Backends(BackendsArgs),
    /// List the cipher suites of a backend.
    Ciphers(CiphersArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(CompletionsArgs),
    /// Print the manual page (roff, for `man -l -`) on stdout: of `sslsocket`, or of one
    /// subcommand (`sslsocket man connect`).
    Man(ManArgs),
}

/// Options `connect` and `serve` share.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Trusted CA certificates (PEM or DER, any number per file; repeatable).
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    pub cafile: Vec<PathBuf>,

    /// Do not load the system CA store.
    #[arg(long)]
    pub no_system_ca: bool,

    /// Local certificate (PEM may hold the chain, leaf first).
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    pub cert: Option<PathBuf>,

    /// Private key of the local certificate (PEM or DER).
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    pub key: Option<PathBuf>,

    /// Passphrase of an encrypted private key: the text, or `env:NAME` (from the
    /// environment), `file:PATH` (the file's first line), `pass:TEXT` (the text itself).
    #[arg(long, value_name = "PHRASE", value_parser = clap::value_parser!(OsString))]
    pub pass: Option<OsString>,

    /// Protocol versions: `secure` (TLS 1.2 and 1.3, the default), `tls1.2`, `tls1.3`,
    /// `tls1.2+`, `tls1.3+`; `tls1.0`, `tls1.1`, `tls1.0+`, `tls1.1+`, `any` with backends
    /// that offer older versions. Qt's names (`TlsV1_2OrLater`) are understood too.
    #[arg(long, value_name = "P", value_parser = SslProtocol::from_str)]
    pub protocol: Option<SslProtocol>,

    /// Cipher suites, colon-separated IANA names, in preference order (see `sslsocket
    /// ciphers`).
    #[arg(long, value_name = "LIST")]
    pub ciphers: Option<String>,

    /// ALPN protocol names, comma-separated, in preference order.
    #[arg(long, value_name = "LIST")]
    pub alpn: Option<String>,

    /// How the peer's certificate is requested and checked: `none` (dangerous: not asked
    /// for, not checked), `query` (checked, errors do not fail the handshake), `verify`
    /// (required and must verify), `auto` (`verify` for a client, `query` for a server).
    /// Qt's names (`VerifyPeer`) are understood too. [default: auto, so `verify` for
    /// `connect` and `query` for `serve`]
    #[arg(long, value_name = "MODE", value_parser = PeerVerifyMode::from_str)]
    pub verify: Option<PeerVerifyMode>,

    /// The TLS backend (see `sslsocket backends`). [default: rustls, or the backend the
    /// `SSLSOCKET_BACKEND` environment variable names]
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,

    /// Print JSON instead of a readable report.
    #[arg(long)]
    pub json: bool,
}

/// `sslsocket connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Where to connect: `host:port`, `1.2.3.4:port` or `[::1]:port`.
    #[arg(value_name = "HOST:PORT")]
    pub target: String,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Verify the certificate against NAME (and send it as SNI) instead of HOST.
    #[arg(long, value_name = "NAME")]
    pub peer_name: Option<String>,

    /// At most N intermediate CA certificates between leaf and anchor (0 = no limit).
    #[arg(long, value_name = "N")]
    pub verify_depth: Option<u32>,

    /// Accept the peer only if its verified path (leaf up to the trust anchor, never
    /// certificates the peer appended) holds a certificate whose SubjectPublicKeyInfo has
    /// this SHA-256 digest, as `sha256/BASE64` (curl's `--pinnedpubkey` form; repeatable).
    /// Holds with `--verify none`/`query` and is never ignored.
    #[arg(long, value_name = "sha256/BASE64")]
    pub pin: Vec<String>,

    /// Dangerous: accept every verification error.
    #[arg(long)]
    pub ignore_all_errors: bool,

    /// Accept this verification error, optionally only for the certificate(s) in
    /// CERTFILE (repeatable).
    #[arg(long, value_name = "NAME[@CERTFILE]", value_parser = clap::value_parser!(OsString))]
    pub ignore: Vec<OsString>,

    /// Connect in plain text and upgrade with the protocol's STARTTLS command.
    #[arg(long, value_enum, value_name = "PROTO")]
    pub starttls: Option<StartTlsArg>,

    /// Once encrypted, send TEXT (`\n`, `\r`, `\t`, `\\` understood), then read until the
    /// peer closes or the timeout.
    #[arg(long, value_name = "TEXT")]
    pub send: Option<String>,

    /// Ask for a stapled OCSP response.
    #[arg(long)]
    pub ocsp: bool,

    /// Answer the server's pre-shared-key request with this identity (with --psk-key;
    /// backends that support PSK, e.g. `--backend openssl`). A peer authenticated by the
    /// key needs no certificate.
    #[arg(long, value_name = "ID")]
    pub psk_identity: Option<String>,

    /// The pre-shared key, in hex (with --psk-identity); also `env:NAME` or `file:PATH`.
    #[arg(long, value_name = "HEX", value_parser = clap::value_parser!(OsString))]
    pub psk_key: Option<OsString>,

    /// Connect a second time with the same configuration and report both; the second
    /// reports whether the first one's session was resumed.
    #[arg(long)]
    pub reconnect: bool,

    /// Overall limit in milliseconds for connect, handshake and exchange (both
    /// connections together with `--reconnect`).
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Also print each certificate of the peer's chain in PEM (with `--json`: a `pem`
    /// field in each chain entry).
    #[arg(long)]
    pub showcerts: bool,

    /// Append the session secrets to FILE in the NSS key log format (for Wireshark),
    /// creating it with mode 0600. Dangerous: the file decrypts the traffic.
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    pub keylog: Option<PathBuf>,

    /// Print every library event on stderr, with the milliseconds since start.
    #[arg(short, long)]
    pub verbose: bool,
}

/// `sslsocket serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Staple this DER-encoded OCSP response.
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    pub ocsp_response: Option<PathBuf>,

    /// For a client whose server name is NAME (exact, or `*.` matching one label), use
    /// this certificate and key instead of --cert/--key; repeatable. SIGHUP re-reads
    /// every certificate, key and OCSP file.
    #[arg(long, value_name = "NAME=CERTFILE,KEYFILE", value_parser = clap::value_parser!(OsString))]
    pub sni: Vec<OsString>,

    /// Write the certificate in use (generated or loaded) to FILE as PEM, before
    /// listening.
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    pub write_cert: Option<PathBuf>,

    /// Identity hint for PSK clients (with --psk-identity and --psk-key), sent in TLS 1.2
    /// PSK handshakes (TLS 1.3 has none); backends with PSK only (`--backend openssl`).
    #[arg(long, value_name = "H")]
    pub psk_identity_hint: Option<String>,

    /// Accept pre-shared-key clients that name this identity (with --psk-key; backends
    /// that support PSK, e.g. `--backend openssl`). Other clients get no key: TLS 1.2 PSK
    /// fails, TLS 1.3 falls back to the certificate.
    ///
    /// Without --ciphers, the SHA-256 TLS 1.3 suites are put first (OpenSSL uses such a
    /// key in TLS 1.3 only with a SHA-256 suite, and a server with a certificate would
    /// not pick one by itself), and TLS 1.2 keeps the ECDHE suites; TLS 1.2 PSK suites
    /// (`openssl s_client -tls1_2 -cipher PSK-AES128-GCM-SHA256`) are offered with
    /// `--protocol tls1.2`, which leaves OpenSSL's own cipher list.
    #[arg(long, value_name = "ID")]
    pub psk_identity: Option<String>,

    /// The pre-shared key, in hex (with --psk-identity); also `env:NAME` or `file:PATH`.
    #[arg(long, value_name = "HEX", value_parser = clap::value_parser!(OsString))]
    pub psk_key: Option<OsString>,

    /// Greet in plain text as PROTO and upgrade on the client's STARTTLS command.
    #[arg(long, value_enum, value_name = "PROTO")]
    pub starttls: Option<StartTlsArg>,

    /// Write back what each client sends.
    #[arg(long)]
    pub echo: bool,

    /// Exit after the first connection ends, with `connect`'s exit codes.
    #[arg(long)]
    pub once: bool,

    /// Milliseconds from accept for a client to finish its handshake.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub handshake_timeout: u64,
}

/// `sslsocket cert`.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// Certificate files (PEM with any number of certificates, or DER), or one
    /// `HOST:PORT` to fetch the chain a server sends.
    #[arg(value_name = "FILE...|HOST:PORT", required = true,
          value_parser = clap::value_parser!(OsString))]
    pub inputs: Vec<OsString>,

    /// Verify the chain in FILE (leaf first, then intermediates) as a client would, and
    /// list every error; exit 1 when there is one.
    #[arg(long, conflicts_with = "check_expiry")]
    pub verify: bool,

    /// The name to verify the leaf for (with `--verify`).
    #[arg(long, value_name = "NAME", requires = "verify")]
    pub host: Option<String>,

    /// Exit 1 and name each certificate that expires within DAYS days (or has expired).
    #[arg(long, value_name = "DAYS")]
    pub check_expiry: Option<u32>,

    /// Trusted CA certificates (repeatable; with `HOST:PORT` or `--verify`).
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    pub cafile: Vec<PathBuf>,

    /// Do not load the system CA store.
    #[arg(long)]
    pub no_system_ca: bool,

    /// Verify the server's certificate against NAME (and send it as SNI) instead of HOST;
    /// with `--verify`, the same as `--host`.
    #[arg(long, value_name = "NAME")]
    pub peer_name: Option<String>,

    /// Limit in milliseconds for connect and handshake (with `HOST:PORT`).
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// The TLS backend (with `HOST:PORT`). [default: rustls]
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,

    /// Print JSON instead of a readable report.
    #[arg(long)]
    pub json: bool,
}

/// `sslsocket man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (default: the whole tool).
    #[arg(value_name = "SUBCOMMAND")]
    pub subcommand: Option<String>,
}

/// `sslsocket completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `sslsocket backends`.
#[derive(Debug, Args)]
pub struct BackendsArgs {
    /// Print JSON.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,

    /// Print a Markdown table: features and protocols × backends (`yes`/`no`).
    #[arg(long)]
    pub markdown: bool,
}

/// `sslsocket ciphers`.
#[derive(Debug, Args)]
pub struct CiphersArgs {
    /// The backend whose ciphers to list. [default: rustls]
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--starttls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StartTlsArg {
    /// SMTP (`EHLO`, `STARTTLS`).
    Smtp,
    /// IMAP (`STARTTLS`).
    Imap,
    /// POP3 (`STLS`).
    Pop3,
}
