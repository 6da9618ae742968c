//! `sslsocket`: the command line over the library. Options, JSON fields and exit codes
//! follow the command-line contract (v2).

mod args;
mod cert;
mod connect;
mod demo;
mod events;
mod exit;
mod hint;
mod info;
mod input;
mod keylog;
mod plan;
mod psk;
mod report;
mod secret;
mod selfsigned;
mod serve;
mod session;
mod starttls;
mod style;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    run(args::Cli::parse().command).code()
}

fn run(command: args::Command) -> exit::Exit {
    use args::Command;
    match command {
        Command::Connect(a) => connect::main(a),
        Command::Serve(a) => input::within(input::INPUT_WAIT, move || plan::serve(a))
            .map_or_else(|e| exit::bad_input(&e), serve::run),
        Command::Demo => demo::run(),
        Command::Cert(a) => cert::run(a),
        Command::Backends(a) => info::backends(a),
        Command::Ciphers(a) => info::ciphers(a),
        Command::Completions(a) => {
            let mut out = Vec::new();
            clap_complete::generate(a.shell, &mut args::Cli::command(), "sslsocket", &mut out);
            report::print_text(&String::from_utf8_lossy(&out));
            exit::Exit::Ok
        }
        Command::Man(a) => man(a),
    }
}

/// The manual page, in roff, from the clap definitions: of the tool, or of one subcommand.
fn man(args: args::ManArgs) -> exit::Exit {
    let command = args::Cli::command();
    let page = match &args.subcommand {
        None => command,
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => sub
                .clone()
                .display_name(format!("sslsocket-{name}"))
                .bin_name(format!("sslsocket {name}")),
            None => {
                return exit::bad_input(&anyhow::anyhow!(
                    "man {name}: no such subcommand (see `sslsocket --help`)"
                ))
            }
        },
    };
    let mut out = Vec::new();
    match clap_mangen::Man::new(page).render(&mut out) {
        Ok(()) => {
            report::print_text(&String::from_utf8_lossy(&out));
            exit::Exit::Ok
        }
        Err(e) => exit::bad_input(&anyhow::anyhow!("cannot write the manual page: {e}")),
    }
}
