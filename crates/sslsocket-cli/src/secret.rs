//! Secrets without argv: `--pass` and `--psk-key` take `env:NAME` (an environment
//! variable), `file:PATH` (the first line of a file) or `pass:TEXT` (the text itself, for a
//! value that starts with `env:` or `file:`); anything else is the value itself, as before.
//! Messages name the variable or the file, never the secret.

use std::ffi::OsStr;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use zeroize::Zeroizing;

/// The most a secret file may hold.
const MAX_FILE: u64 = 64 * 1024;

/// The secret an option names, as bytes.
pub fn resolve(value: &OsStr, option: &str) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(os_bytes(value));
    if let Some(name) = bytes.strip_prefix(b"env:") {
        let name = std::str::from_utf8(name)
            .map_err(|_| anyhow!("{option} env:NAME: the variable name is not text"))?;
        if name.is_empty() || name.contains('=') {
            bail!("{option} env:{name}: not a variable name");
        }
        return match std::env::var_os(name) {
            Some(secret) => Ok(Zeroizing::new(os_bytes(&secret))),
            None => bail!("{option} env:{name}: the environment variable {name} is not set"),
        };
    }
    if let Some(path) = bytes.strip_prefix(b"file:") {
        if path.is_empty() {
            bail!("{option} file:PATH: the path is empty");
        }
        let path = os_path(path);
        let shown = path.display();
        let file = std::fs::File::open(&path)
            .map_err(|e| anyhow!("{option} file:{shown}: cannot read the file ({e})"))?;
        let mut content = Zeroizing::new(Vec::new());
        file.take(MAX_FILE + 1)
            .read_to_end(&mut content)
            .map_err(|e| anyhow!("{option} file:{shown}: cannot read the file ({e})"))?;
        if content.len() as u64 > MAX_FILE {
            bail!("{option} file:{shown}: the file is larger than {MAX_FILE} bytes");
        }
        // The first line, as `openssl -passin file:` reads it.
        let end = content
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(content.len());
        let mut line = content.get(..end).unwrap_or_default();
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        return Ok(Zeroizing::new(line.to_vec()));
    }
    if let Some(text) = bytes.strip_prefix(b"pass:") {
        return Ok(Zeroizing::new(text.to_vec()));
    }
    Ok(bytes)
}

/// The secret an option names, as text (for hex keys), surrounding blanks removed. The
/// value itself need not be text: its `file:PATH` form names an operating-system path.
pub fn resolve_text(value: &OsStr, option: &str) -> Result<Zeroizing<String>> {
    let bytes = resolve(value, option)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow!("{option}: the value is not text"))?
        .trim();
    Ok(Zeroizing::new(text.to_string()))
}

/// An argument's bytes as given (non-UTF-8 paths and passphrases included).
#[cfg(unix)]
pub(crate) fn os_bytes(s: &OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

#[cfg(not(unix))]
pub(crate) fn os_bytes(s: &OsStr) -> Vec<u8> {
    s.to_string_lossy().as_bytes().to_vec()
}

/// A path from an argument's bytes.
#[cfg(unix)]
pub(crate) fn os_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
pub(crate) fn os_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() -> Result<()> {
        assert_eq!(resolve(OsStr::new("plain"), "--pass")?.as_slice(), b"plain");
        assert_eq!(
            resolve(OsStr::new("pass:env:x"), "--pass")?.as_slice(),
            b"env:x"
        );
        let missing = resolve(OsStr::new("env:SSLSOCKET_NO_SUCH_VARIABLE"), "--pass");
        assert!(missing.is_err());
        assert!(resolve(OsStr::new("file:/no/such/file"), "--pass").is_err());
        Ok(())
    }
}
