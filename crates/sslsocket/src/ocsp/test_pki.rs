//! Test fixture: certificates and OCSP responses made by the `openssl` command line at test
//! time, so the checks run against what a real responder (OpenSSL's) produces.

use std::error::Error;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cert::SslCertificate;

/// The result type of the tests.
pub(super) type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// `nextUpdate` one day after `thisUpdate`, what a responder usually sends.
pub(super) const ONE_DAY: &[&str] = &["-ndays", "1"];

/// Key generation options of `openssl req`: an elliptic-curve P-256 key.
pub(super) const EC: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256";

/// Key generation options of `openssl req`: an RSA 2048 key.
pub(super) const RSA: &str = "-newkey rsa:2048";

const LEAF_EXT: &str = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
                        subjectAltName=DNS:localhost\n";
const RESPONDER_EXT: &str = "basicConstraints=CA:FALSE\nextendedKeyUsage=OCSPSigning\n\
                             keyUsage=digitalSignature\n";

/// A CA `ca` with leaves `leaf` (serial 1001) and `other` (1002), a delegated responder
/// `responder` (2001, `id-kp-OCSPSigning`), `no_eku` (2002, issued by the CA but for
/// servers only), and an unrelated CA `stranger_ca` with an OCSP responder `stranger`.
/// The files are `<name>.pem` and `<name>.key`.
pub(super) struct Pki {
    pub(super) dir: Dir,
    pub(super) ca: SslCertificate,
    pub(super) leaf: SslCertificate,
    pub(super) other: SslCertificate,
    pub(super) responder: SslCertificate,
    pub(super) stranger_ca: SslCertificate,
}

impl Pki {
    /// The fixture with keys of type `key` ([`EC`] or [`RSA`]).
    pub(super) fn new(key: &str) -> TestResult<Pki> {
        let dir = Dir(tempfile::tempdir()?);
        dir.root(key, "ca")?;
        dir.issue(key, "ca", "leaf", "0x1001", LEAF_EXT)?;
        dir.issue(key, "ca", "other", "0x1002", LEAF_EXT)?;
        dir.issue(key, "ca", "responder", "0x2001", RESPONDER_EXT)?;
        dir.issue(key, "ca", "no_eku", "0x2002", LEAF_EXT)?;
        dir.root(key, "stranger_ca")?;
        dir.issue(key, "stranger_ca", "stranger", "0x3001", RESPONDER_EXT)?;
        Ok(Pki {
            ca: dir.cert("ca")?,
            leaf: dir.cert("leaf")?,
            other: dir.cert("other")?,
            responder: dir.cert("responder")?,
            stranger_ca: dir.cert("stranger_ca")?,
            dir,
        })
    }

    /// A response for the CA `ca` (see [`Dir::respond_for`]).
    pub(super) fn respond(
        &self,
        index: &[String],
        signer: &str,
        certs: &[&str],
        options: &[&str],
    ) -> TestResult<Vec<u8>> {
        self.dir.respond_for("ca", index, signer, certs, options)
    }
}

/// A scratch directory where `openssl` makes keys, certificates and responses.
pub(super) struct Dir(tempfile::TempDir);

impl Dir {
    /// A self-signed CA `CN=<name>`: `<name>.pem`, `<name>.key`.
    pub(super) fn root(&self, key: &str, name: &str) -> TestResult {
        self.run(&format!(
            "req -x509 {key} -nodes -keyout {name}.key -out {name}.pem -subj /CN={name} \
             -days 30 -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=keyCertSign,cRLSign"
        ))
    }

    /// A self-signed end-entity certificate `CN=<name>` with `serial`.
    pub(super) fn self_signed(&self, key: &str, name: &str, serial: &str) -> TestResult {
        self.run(&format!(
            "req -x509 {key} -nodes -keyout {name}.key -out {name}.pem -subj /CN={name} \
             -days 30 -set_serial {serial}"
        ))
    }

    /// A certificate `CN=<name>` issued by `ca` with `serial` and the extensions `ext`.
    fn issue(&self, key: &str, ca: &str, name: &str, serial: &str, ext: &str) -> TestResult {
        std::fs::write(self.0.path().join(format!("{name}.ext")), ext)?;
        self.run(&format!(
            "req {key} -nodes -keyout {name}.key -out {name}.csr -subj /CN={name}"
        ))?;
        self.run(&format!(
            "x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -set_serial {serial} \
             -days 30 -extfile {name}.ext -out {name}.pem"
        ))
    }

    /// The certificate `<name>.pem`.
    pub(super) fn cert(&self, name: &str) -> TestResult<SslCertificate> {
        let pem = std::fs::read(self.0.path().join(format!("{name}.pem")))?;
        SslCertificate::from_pem(&pem)?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{name}.pem: no certificate").into())
    }

    /// A response (DER) of an OCSP responder for the CA `ca` whose database is `index`
    /// (lines of `openssl ca`'s `index.txt`, see [`good`] and [`revoked`]), signed with
    /// `<signer>.pem`/`<signer>.key`, about the certificates `<name>.pem` of `certs`,
    /// issued by `ca`; `options` (such as [`ONE_DAY`]) go first.
    pub(super) fn respond_for(
        &self,
        ca: &str,
        index: &[String],
        signer: &str,
        certs: &[&str],
        options: &[&str],
    ) -> TestResult<Vec<u8>> {
        let index_file = tempfile::Builder::new()
            .prefix("index")
            .tempfile_in(self.0.path())?;
        std::fs::write(index_file.path(), index.concat())?;
        let out = tempfile::Builder::new()
            .prefix("resp")
            .tempfile_in(self.0.path())?;
        let mut command = format!(
            "ocsp {} -index {} -CA {ca}.pem -rsigner {signer}.pem -rkey {signer}.key \
             -issuer {ca}.pem -respout {}",
            options.join(" "),
            index_file.path().display(),
            out.path().display(),
        );
        for cert in certs {
            command.push_str(&format!(" -cert {cert}.pem"));
        }
        self.run(&command)?;
        Ok(std::fs::read(out.path())?)
    }

    /// Runs `openssl` with the words of `command` as arguments (none has a space); an error
    /// with its standard error when it fails.
    fn run(&self, command: &str) -> TestResult {
        let args: Vec<&str> = command.split_whitespace().collect();
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(self.0.path())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "openssl {command}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(())
    }
}

/// An index line: the certificate with `serial` (hex) is valid.
pub(super) fn good(serial: &str, cn: &str) -> String {
    format!("V\t491231000000Z\t\t{serial}\tunknown\t/CN={cn}\n")
}

/// An index line: the certificate with `serial` was revoked, for `reason` (as `openssl ca`
/// writes it; empty for none).
pub(super) fn revoked(serial: &str, cn: &str, reason: &str) -> String {
    let when = if reason.is_empty() {
        "250101000000Z".to_string()
    } else {
        format!("250101000000Z,{reason}")
    };
    format!("R\t491231000000Z\t{when}\t{serial}\tunknown\t/CN={cn}\n")
}

/// The current time in seconds since the Unix epoch (the responses are made now).
pub(super) fn now() -> TestResult<i64> {
    Ok(i64::try_from(
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    )?)
}
