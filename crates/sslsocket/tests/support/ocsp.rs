//! OCSP responses made by `openssl ocsp` at test time.

use std::path::PathBuf;
use std::process::Command;

use super::{Issued, Pki, SupportError, SupportResult};

/// A DER response about `leaf`, signed by the intermediate that issued it, valid one day;
/// `revoked` marks the leaf revoked for key compromise. Written as `<name>.der` in the
/// PKI's directory.
pub fn ocsp_response(
    pki: &Pki,
    leaf: &Issued,
    revoked: bool,
    name: &str,
) -> SupportResult<PathBuf> {
    let dir = pki.dir.path();
    let serial = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(&leaf.cert_pem)
        .output()?;
    let serial = String::from_utf8_lossy(&serial.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    let line = if revoked {
        format!("R\t301231235959Z\t250101000000Z,keyCompromise\t{serial}\tunknown\t/CN=localhost\n")
    } else {
        format!("V\t301231235959Z\t\t{serial}\tunknown\t/CN=localhost\n")
    };
    let index = dir.join(format!("{name}.index.txt"));
    std::fs::write(&index, line)?;
    let out = dir.join(format!("{name}.der"));
    let result = Command::new("openssl")
        .args(["ocsp", "-ndays", "1", "-index"])
        .arg(&index)
        .arg("-CA")
        .arg(pki.intermediate_pem())
        .arg("-rsigner")
        .arg(pki.intermediate_pem())
        .arg("-rkey")
        .arg(dir.join("intermediate.key.pem"))
        .arg("-issuer")
        .arg(pki.intermediate_pem())
        .arg("-cert")
        .arg(&leaf.cert_pem)
        .arg("-respout")
        .arg(&out)
        .output()?;
    if !result.status.success() {
        return Err(SupportError::new(format!(
            "openssl ocsp: {}",
            String::from_utf8_lossy(&result.stderr)
        )));
    }
    Ok(out)
}
