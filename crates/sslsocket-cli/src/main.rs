//! `sslsocket`: the command line over the library. Options, JSON fields and exit codes
//! follow the command-line contract (v1).

mod args;
mod connect;
mod demo;
mod exit;
mod info;
mod plan;
mod psk;
mod report;
mod selfsigned;
mod serve;
mod session;
mod starttls;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    run(args::Cli::parse().command).code()
}

fn run(command: args::Command) -> exit::Exit {
    use args::Command;
    match command {
        Command::Connect(a) => plan::connect(a).map_or_else(|e| exit::bad_input(&e), connect::run),
        Command::Serve(a) => plan::serve(a).map_or_else(|e| exit::bad_input(&e), serve::run),
        Command::Demo => demo::run(),
        Command::Cert(a) => info::cert(a),
        Command::Backends(a) => info::backends(a),
        Command::Ciphers(a) => info::ciphers(a),
    }
}
