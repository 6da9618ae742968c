//! Test helper: a temporary directory where the `openssl` command line makes keys,
//! certificates and bundles, so the tests compare against OpenSSL itself.

use std::error::Error;
use std::path::PathBuf;
use std::process::Command;

/// The result type of the tests.
pub(crate) type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// A scratch directory for the `openssl` CLI.
pub(crate) struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    /// A new empty directory.
    pub(crate) fn new() -> TestResult<Workdir> {
        Ok(Workdir {
            dir: tempfile::tempdir()?,
        })
    }

    /// A file name inside the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `openssl ARGS` in the directory; its standard output, or an error with its
    /// standard error when it fails.
    pub(crate) fn openssl(&self, args: &[&str]) -> TestResult<String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// The bytes of a file in the directory.
    pub(crate) fn read(&self, name: &str) -> TestResult<Vec<u8>> {
        Ok(std::fs::read(self.path(name))?)
    }

    /// Writes a file in the directory.
    pub(crate) fn write(&self, name: &str, data: &[u8]) -> TestResult {
        Ok(std::fs::write(self.path(name), data)?)
    }

    /// Makes a private key `name` (PKCS#8 PEM) with `openssl genpkey`; `spec` is `rsa2048`,
    /// `P-256`, `P-384`, `P-521` or `ed25519`.
    pub(crate) fn genkey(&self, spec: &str, name: &str) -> TestResult {
        let args: Vec<&str> = match spec {
            "rsa2048" => vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "ed25519" => vec!["-algorithm", "ED25519"],
            curve => vec!["-algorithm", "EC", "-pkeyopt", curve_opt(curve)],
        };
        let mut all = vec!["genpkey", "-out", name];
        all.extend(args);
        self.openssl(&all).map(|_| ())
    }
}

fn curve_opt(curve: &str) -> &'static str {
    match curve {
        "P-384" => "ec_paramgen_curve:P-384",
        "P-521" => "ec_paramgen_curve:P-521",
        _ => "ec_paramgen_curve:P-256",
    }
}
