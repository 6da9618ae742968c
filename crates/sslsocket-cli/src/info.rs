//! `sslsocket cert`, `backends` and `ciphers`: information without a connection.

use std::fmt::Write as _;

use anyhow::anyhow;
use serde::Serialize;
use sslsocket::{backend, SslCertificate};

use crate::args::{BackendsArgs, CertArgs, CiphersArgs};
use crate::exit::{self, Exit};
use crate::report::{self, CertificateJson};

/// Shows every certificate of every file.
pub fn cert(args: CertArgs) -> Exit {
    let mut all = Vec::new();
    for path in &args.files {
        match SslCertificate::from_file(path) {
            Ok(certificates) => all.push((path, certificates)),
            Err(e) => return exit::bad_input(&anyhow!("{}", e.message())),
        }
    }
    if args.json {
        let list: Vec<CertificateJson> = all
            .iter()
            .flat_map(|(_, certs)| certs.iter().map(CertificateJson::of))
            .collect();
        report::print_json(&list);
    } else {
        let mut out = String::new();
        for (path, certificates) in &all {
            for (i, cert) in certificates.iter().enumerate() {
                let _ = writeln!(out, "{} [{}]", path.display(), i);
                for line in report::certificate_text(cert).lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        report::print_text(&out);
    }
    Exit::Ok
}

#[derive(Serialize)]
struct BackendsJson {
    backends: Vec<&'static str>,
    active: Option<&'static str>,
}

/// Lists the backends compiled in, and the active one.
pub fn backends(args: BackendsArgs) -> Exit {
    let available = backend::available_backends();
    let active = backend::active_backend();
    if args.json {
        report::print_json(&BackendsJson {
            backends: available,
            active,
        });
    } else {
        let mut out = String::new();
        for name in available {
            let mark = if Some(name) == active {
                " (active)"
            } else {
                ""
            };
            let _ = writeln!(out, "{name}{mark}");
        }
        report::print_text(&out);
    }
    Exit::Ok
}

/// Not there yet.
pub fn ciphers(_args: CiphersArgs) -> Exit {
    exit::bad_input(&anyhow!("ciphers is not supported yet"))
}
