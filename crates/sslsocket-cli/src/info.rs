//! `sslsocket cert`, `backends` and `ciphers`: information without a connection.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::anyhow;
use serde::Serialize;
use sslsocket::{backend, SslCertificate, SslConfiguration};

use crate::args::{BackendsArgs, CertArgs, CiphersArgs};
use crate::exit::{self, Exit};
use crate::plan;
use crate::report::{self, CertificateDetailJson, CipherListJson};

/// Shows every certificate of every file. Every file is read before anything is printed,
/// so a missing or malformed one is bad input with nothing on stdout.
pub fn cert(args: CertArgs) -> Exit {
    let mut all: Vec<(&PathBuf, Vec<SslCertificate>)> = Vec::new();
    for path in &args.files {
        match SslCertificate::from_file(path) {
            Ok(certificates) => all.push((path, certificates)),
            Err(e) => return exit::bad_input(&anyhow!("{}", e.message())),
        }
    }
    if args.json {
        let list: Vec<CertificateDetailJson> = all
            .iter()
            .flat_map(|(path, certs)| {
                certs
                    .iter()
                    .enumerate()
                    .map(|(i, cert)| CertificateDetailJson::of(path, i, cert))
            })
            .collect();
        report::print_json(&list);
    } else {
        let mut out = String::new();
        for (path, certificates) in &all {
            for (i, cert) in certificates.iter().enumerate() {
                if !out.is_empty() {
                    out.push('\n');
                }
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

/// One backend as `sslsocket backends --json` lists it; enum values by variant name.
#[derive(Serialize)]
struct BackendJson {
    name: &'static str,
    active: bool,
    library_version: String,
    protocols: Vec<String>,
    features: Vec<String>,
    classes: Vec<String>,
}

impl BackendJson {
    fn of(name: &'static str, active: Option<&str>) -> BackendJson {
        BackendJson {
            name,
            active: active == Some(name),
            library_version: backend::backend_by_name(name)
                .map(|b| b.library_version_string())
                .unwrap_or_default(),
            protocols: backend::supported_protocols(Some(name))
                .iter()
                .map(ToString::to_string)
                .collect(),
            features: backend::supported_features(Some(name))
                .iter()
                .map(|f| format!("{f:?}"))
                .collect(),
            classes: backend::implemented_classes(Some(name))
                .iter()
                .map(|c| format!("{c:?}"))
                .collect(),
        }
    }
}

/// Lists the backends compiled in: which one is active, the TLS library's version, what
/// each offers.
pub fn backends(args: BackendsArgs) -> Exit {
    let active = backend::active_backend();
    let list: Vec<BackendJson> = backend::available_backends()
        .into_iter()
        .map(|name| BackendJson::of(name, active))
        .collect();
    if args.json {
        report::print_json(&list);
    } else {
        let mut out = String::new();
        for b in &list {
            let mark = if b.active { " (active)" } else { "" };
            let _ = writeln!(out, "{}{mark}", b.name);
            let _ = writeln!(out, "  library: {}", b.library_version);
            let _ = writeln!(out, "  protocols: {}", b.protocols.join(", "));
            let _ = writeln!(out, "  features: {}", b.features.join(", "));
            let _ = writeln!(out, "  classes: {}", b.classes.join(", "));
        }
        report::print_text(&out);
    }
    Exit::Ok
}

/// Lists the cipher suites of the backend (the active one, or `--backend`).
pub fn ciphers(args: CiphersArgs) -> Exit {
    if let Err(e) = plan::select_backend(args.backend.as_deref()) {
        return exit::bad_input(&e);
    }
    let ciphers = SslConfiguration::supported_ciphers();
    if args.json {
        let list: Vec<CipherListJson> = ciphers.iter().map(CipherListJson::of).collect();
        report::print_json(&list);
    } else {
        report::print_text(&report::ciphers_text(&ciphers));
    }
    Exit::Ok
}
