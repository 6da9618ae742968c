//! `sslsocket cert`, `backends` and `ciphers`: information without a connection.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::anyhow;
use serde::Serialize;
use sslsocket::backend::SupportedFeature;
use sslsocket::{backend, SslCertificate, SslProtocol};

use crate::args::{BackendsArgs, CiphersArgs};
use crate::exit::{self, Exit};
use crate::plan;
use crate::report::{self, CertificateDetailJson, CipherListJson};

/// Every certificate of every file, each file with its certificates. Every file is read
/// before anything is printed, so a missing or malformed one is bad input with nothing on
/// stdout.
pub fn read_all(files: Vec<PathBuf>) -> anyhow::Result<Vec<(PathBuf, Vec<SslCertificate>)>> {
    let mut all = Vec::new();
    for path in files {
        match SslCertificate::from_file(&path) {
            Ok(certificates) => all.push((path, certificates)),
            Err(e) => return Err(anyhow!("{}", e.message())),
        }
    }
    Ok(all)
}

/// Shows every certificate of every file (as [`read_all`] gives them).
pub fn cert(all: &[(PathBuf, Vec<SslCertificate>)], json: bool) -> Exit {
    if json {
        // The contract's one object for `cert --json`; files are not verified, so no
        // errors.
        #[derive(Serialize)]
        struct Files {
            certificates: Vec<CertificateDetailJson>,
            errors: [(); 0],
        }
        let certificates: Vec<CertificateDetailJson> = all
            .iter()
            .flat_map(|(path, certs)| {
                certs
                    .iter()
                    .enumerate()
                    .map(|(i, cert)| CertificateDetailJson::of(path, i, cert))
            })
            .collect();
        report::print_json(&Files {
            certificates,
            errors: [],
        });
    } else {
        let mut out = String::new();
        for (path, certificates) in all {
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
                .map(|f| f.name().to_string())
                .collect(),
            classes: backend::implemented_classes(Some(name))
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
        }
    }
}

/// Lists the backends compiled in: which one is active, the TLS library's version, what
/// each offers.
pub fn backends(args: BackendsArgs) -> Exit {
    if args.markdown {
        report::print_text(&backend_table());
        return Exit::Ok;
    }
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

/// The protocols of the backend table, one row each.
const TABLE_PROTOCOLS: [SslProtocol; 4] = [
    SslProtocol::TlsV1_0,
    SslProtocol::TlsV1_1,
    SslProtocol::TlsV1_2,
    SslProtocol::TlsV1_3,
];

/// The backend × feature table in Markdown, from the registry: a row for each feature
/// (`SupportedFeature::ALL`, in its order), then each protocol version; a column for each
/// backend compiled in; `yes` or `no`.
pub fn backend_table() -> String {
    let backends = backend::available_backends();
    let mut out = String::new();
    let _ = writeln!(out, "| feature | {} |", backends.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(backends.len()));
    let yes = |on: bool| if on { "yes" } else { "no" };
    let mut row = |name: String, on: &dyn Fn(&str) -> bool| {
        let cells: Vec<&str> = backends.iter().map(|b| yes(on(b))).collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    };
    for &feature in SupportedFeature::ALL {
        row(feature.name().to_string(), &|b| {
            backend::is_feature_supported(feature, Some(b))
        });
    }
    for protocol in TABLE_PROTOCOLS {
        row(protocol.to_string(), &|b| {
            backend::is_protocol_supported(protocol, Some(b))
        });
    }
    out
}

/// Lists the cipher suites of the backend (the active one, or `--backend`).
pub fn ciphers(args: CiphersArgs) -> Exit {
    if let Err(e) = plan::select_backend(args.backend.as_deref()) {
        return exit::bad_input(&e);
    }
    // The named backend's own list (Qt's `supportedCiphers()` with that backend active).
    let ciphers = backend::supported_ciphers(args.backend.as_deref());
    if args.json {
        let list: Vec<CipherListJson> = ciphers.iter().map(CipherListJson::of).collect();
        report::print_json(&list);
    } else {
        report::print_text(&report::ciphers_text(&ciphers));
    }
    Exit::Ok
}
