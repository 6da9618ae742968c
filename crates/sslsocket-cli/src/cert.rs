//! `sslsocket cert`: the certificates of files (v1), of a server (`HOST:PORT`), a chain file
//! verified as a client would (`--verify`), and expiry checks (`--check-expiry DAYS`).

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::Parser;
use serde::Serialize;
use sslsocket::verify::{ChainVerifier, Purpose};
use sslsocket::{SslCertificate, SslError};
use time::OffsetDateTime;

use crate::args::{CertArgs, Cli, Command};
use crate::connect;
use crate::exit::{self, Exit};
use crate::report::{self, days_left, expired_ago, rfc3339, ChainEntryJson, ErrorJson};
use crate::session::Deadline;
use crate::style::Paint;

/// Runs the form of `cert` the arguments ask for.
pub fn run(args: CertArgs) -> Exit {
    match form(&args) {
        Ok(Form::Files(files)) => {
            if let Some(days) = args.check_expiry {
                return match read_files(&files, args.timeout) {
                    Ok(chain) => expiry(&args, days, &chain, &[], None),
                    Err(e) => exit::bad_input(&e),
                };
            }
            let limit = Duration::from_millis(args.timeout);
            match crate::input::within(limit, move || crate::info::read_all(files)) {
                Ok(all) => crate::info::cert(&all, args.json),
                Err(e) => exit::bad_input(&e),
            }
        }
        Ok(Form::Host(target)) => host(&args, &target),
        Ok(Form::Verify(file)) => verify(&args, &file),
        Err(e) => exit::bad_input(&e),
    }
}

/// What the positional arguments name.
enum Form {
    Files(Vec<PathBuf>),
    Host(String),
    Verify(PathBuf),
}

fn form(args: &CertArgs) -> Result<Form> {
    if args.verify {
        return match args.inputs.as_slice() {
            [file] => Ok(Form::Verify(PathBuf::from(file))),
            _ => bail!("cert --verify: give exactly one chain FILE (leaf first)"),
        };
    }
    if let [one] = args.inputs.as_slice() {
        if let Some(target) = host_target(one) {
            return Ok(Form::Host(target));
        }
    }
    let files: Vec<PathBuf> = args.inputs.iter().map(PathBuf::from).collect();
    let host_only = args.cafile.is_empty()
        && !args.no_system_ca
        && args.peer_name.is_none()
        && args.backend.is_none();
    if !host_only {
        bail!("cert: --cafile, --no-system-ca, --peer-name and --backend go with HOST:PORT or --verify");
    }
    Ok(Form::Files(files))
}

/// `HOST:PORT` when the argument is not an existing file and reads as one.
fn host_target(arg: &OsStr) -> Option<String> {
    if Path::new(arg).exists() {
        return None;
    }
    let text = arg.to_str()?;
    crate::plan::host_port(text, false).ok()?;
    Some(text.to_string())
}

/// The JSON object of the v2 forms.
#[derive(Serialize)]
struct CertReport {
    certificates: Vec<ChainEntryJson>,
    errors: Vec<ErrorJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiring: Option<Vec<ExpiringJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    socket_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_string: Option<String>,
}

#[derive(Serialize)]
struct ExpiringJson {
    subject: String,
    sha256: String,
    not_after: String,
    days_left: i64,
}

/// The failure of a connection, for the report.
struct Failure {
    socket_error: String,
    error_string: String,
}

fn print(
    args: &CertArgs,
    chain: &[SslCertificate],
    errors: &[SslError],
    expiring: Option<&[&SslCertificate]>,
    failure: Option<&Failure>,
) {
    if args.json {
        let json = CertReport {
            certificates: chain.iter().map(|c| ChainEntryJson::of(c, true)).collect(),
            errors: errors
                .iter()
                .map(|e| ErrorJson::with_hint(e, chain))
                .collect(),
            expiring: expiring.map(|list| {
                list.iter()
                    .map(|c| ExpiringJson {
                        subject: c.subject_rfc4514(),
                        sha256: c.sha256_hex(),
                        not_after: rfc3339(c.expiry_date_unix()),
                        days_left: days_left(c),
                    })
                    .collect()
            }),
            socket_error: failure.map(|f| f.socket_error.clone()),
            error_string: failure.map(|f| f.error_string.clone()),
        };
        report::print_json(&json);
        return;
    }
    let paint = Paint::stdout();
    let mut out = String::new();
    // The PEM too, so that a certificate can be saved for `--ignore NAME@FILE`/`--cafile`.
    report::chain_text(&mut out, chain, true, &paint);
    if expiring.is_none() || !errors.is_empty() {
        report::errors_text(&mut out, errors, chain, &paint);
    }
    if let Some(list) = expiring {
        expiry_text(&mut out, list, &paint);
    }
    if let Some(f) = failure {
        let _ = writeln!(
            out,
            "{}: {}: {}",
            paint.bad("error"),
            f.socket_error,
            f.error_string
        );
    }
    report::print_text(&out);
}

/// `cert HOST:PORT`: the chain the server sent and every verification error; with
/// `--check-expiry`, the expiry check of that chain.
fn host(args: &CertArgs, target: &str) -> Exit {
    let mut argv: Vec<OsString> = ["sslsocket", "connect", target, "--ignore-all-errors"]
        .iter()
        .map(OsString::from)
        .collect();
    // Each option with its value in one argument (`--cafile=-ca.pem`): a value that
    // begins with `-` is not read as an option the second time (round 35).
    let with = |option: &str, value: &std::ffi::OsStr| {
        let mut argument = OsString::from(format!("--{option}="));
        argument.push(value);
        argument
    };
    argv.push(with("timeout", args.timeout.to_string().as_ref()));
    for file in &args.cafile {
        argv.push(with("cafile", file.as_ref()));
    }
    if args.no_system_ca {
        argv.push("--no-system-ca".into());
    }
    if let Some(name) = &args.peer_name {
        argv.push(with("peer-name", name.as_ref()));
    }
    if let Some(name) = &args.backend {
        argv.push(with("backend", name.as_ref()));
    }
    let connect_args = match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Connect(a),
        }) => a,
        Ok(_) => return exit::bad_input(&anyhow!("cert: cannot build the connection")),
        Err(e) => return exit::bad_input(&anyhow!("cert: {}", e.kind())),
    };
    // Every error is listed, none fails the handshake: nothing is sent either way. The
    // files are read within `--timeout` (see `crate::input`).
    let limit = Duration::from_millis(args.timeout);
    let started = std::time::Instant::now();
    let mut plan = match crate::input::within(limit, move || crate::plan::connect(connect_args)) {
        Ok(plan) => plan,
        Err(e) => return exit::bad_input(&e),
    };
    // What the files took comes off `--timeout`, which bounds the whole command (round 36:
    // the connection got all of it again).
    plan.timeout = plan
        .timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    let progress = crate::style::progress_enabled();
    let log = crate::events::EventLog::new(false);
    let connection = connect::connect_with(
        &plan,
        Deadline::after(plan.timeout),
        false,
        &log,
        progress,
        |_, _| false,
    );
    let core = sslsocket::SslSocketExt::core(&connection.socket);
    let chain = core.peer_certificate_chain().to_vec();
    let errors = core.ssl_handshake_errors().to_vec();
    let outcome = &connection.outcome;
    // What failed the connection is shown whenever it decides the exit status: a failed
    // handshake, and also a refusal that comes after our side of it ended (a TLS 1.3
    // server that wants a client certificate says so only then).
    let failure = outcome
        .socket_error
        .filter(|_| !outcome.encrypted || outcome.exit != Exit::Ok)
        .map(|e| Failure {
            socket_error: e.to_string(),
            error_string: outcome.error_string.clone(),
        });
    let exit = if let Some(days) = args.check_expiry {
        if chain.is_empty() {
            print(args, &chain, &errors, None, failure.as_ref());
            outcome.exit.worse(Exit::Tls)
        } else {
            expiry(args, days, &chain, &errors, failure.as_ref())
        }
    } else {
        print(args, &chain, &errors, None, failure.as_ref());
        match outcome.exit {
            Exit::Ok if errors.is_empty() => Exit::Ok,
            Exit::Ok => Exit::Tls,
            other => other,
        }
    };
    crate::session::finish(connection.socket, &connection.deadline, log);
    exit
}

/// `cert --verify FILE`: the chain in FILE checked by the library's verifier, as a client
/// connecting to `--host` would check it.
fn verify(args: &CertArgs, file: &Path) -> Exit {
    // The files are read within `--timeout` (see `crate::input`).
    let (file, cafiles, system) = (file.to_path_buf(), args.cafile.clone(), !args.no_system_ca);
    let read = move || -> Result<(Vec<SslCertificate>, Vec<SslCertificate>)> {
        let chain = certificates(&file, "cert --verify")?;
        let mut anchors = Vec::new();
        for ca in &cafiles {
            anchors.extend(certificates(ca, "--cafile")?);
        }
        if system {
            anchors.extend(sslsocket::config::system_ca_certificates());
        }
        Ok((chain, anchors))
    };
    let run = || -> Result<(Vec<SslCertificate>, Vec<SslError>)> {
        let (chain, anchors) = crate::input::within(Duration::from_millis(args.timeout), read)?;
        // `--peer-name` names the host as `connect`'s does (and as the mismatch hint says).
        let host = match (args.host.as_deref(), args.peer_name.as_deref()) {
            (Some(host), Some(peer)) if host != peer => {
                bail!("cert --verify: --host {host} and --peer-name {peer} disagree")
            }
            (host, peer) => host.or(peer),
        };
        if host.is_some_and(str::is_empty) {
            bail!("--host: the name is empty");
        }
        let ders: Vec<&[u8]> = chain.iter().map(SslCertificate::der).collect();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let errors = ChainVerifier::new(anchors, Purpose::ServerAuth).verify_der(&ders, host, now);
        Ok((chain, errors))
    };
    match run() {
        Ok((chain, errors)) => {
            print(args, &chain, &errors, None, None);
            if errors.is_empty() {
                Exit::Ok
            } else {
                Exit::Tls
            }
        }
        Err(e) => exit::bad_input(&e),
    }
}

/// `--check-expiry DAYS`: exit 1 and name each certificate that expires within DAYS days.
fn expiry(
    args: &CertArgs,
    days: u32,
    chain: &[SslCertificate],
    errors: &[SslError],
    failure: Option<&Failure>,
) -> Exit {
    let limit = OffsetDateTime::now_utc().unix_timestamp() + i64::from(days) * 86_400;
    let expiring: Vec<&SslCertificate> = chain
        .iter()
        .filter(|c| c.expiry_date_unix() <= limit)
        .collect();
    print(args, chain, errors, Some(&expiring), failure);
    if expiring.is_empty() {
        Exit::Ok
    } else {
        Exit::Tls
    }
}

fn expiry_text(out: &mut String, expiring: &[&SslCertificate], paint: &Paint) {
    if expiring.is_empty() {
        let _ = writeln!(
            out,
            "expiry: {}",
            paint.good("no certificate expires in time")
        );
        return;
    }
    let _ = writeln!(out, "expiring:");
    for cert in expiring {
        let left = days_left(cert);
        let when = if left < 0 {
            paint.bad(&expired_ago(cert))
        } else {
            paint.warn(&format!("expires in {left} days"))
        };
        let _ = writeln!(
            out,
            "  {} {when} ({})",
            cert.subject_rfc4514(),
            rfc3339(cert.expiry_date_unix())
        );
    }
}

/// Every certificate of every file, in order, read within `timeout` ms; a problem with
/// any file is bad input.
fn read_files(files: &[PathBuf], timeout: u64) -> Result<Vec<SslCertificate>> {
    let files = files.to_vec();
    crate::input::within(Duration::from_millis(timeout), move || {
        let mut all = Vec::new();
        for file in &files {
            all.extend(certificates(file, "cert")?);
        }
        Ok(all)
    })
}

fn certificates(path: &Path, option: &str) -> Result<Vec<SslCertificate>> {
    SslCertificate::from_file(path).map_err(|e| anyhow!("{option}: {}", e.message()))
}
