//! `connect --keylog FILE`: the session secrets in the NSS key log format, appended to FILE,
//! which is created with mode 0600. The library writes the file named by `SSLKEYLOGFILE`
//! when key logging is on (`SslConfiguration::set_key_logging`); this names FILE there.

use std::path::Path;

use anyhow::{anyhow, Result};

/// Creates FILE (mode 0600) or checks it can be appended to (see [`point_at`]).
pub fn prepare(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| anyhow!("--keylog `{}`: {e}", path.display()))?;
    Ok(())
}

/// Points the library at FILE. Called before any configuration is built, while no other
/// thread reads the environment.
pub fn point_at(path: &Path) {
    std::env::set_var("SSLKEYLOGFILE", path);
}
