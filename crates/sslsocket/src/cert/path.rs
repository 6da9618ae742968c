//! `SslCertificate::from_path`: certificates from the files a wildcard pattern matches
//! (Qt's `QSslCertificate::fromPath` with `PatternSyntax::Wildcard`).

use std::path::Path;

use crate::cert::certificate::SslCertificate;
use crate::error::ConfigError;

/// Certificates from every file whose name matches the last component of `pattern`.
pub(crate) fn certificates_from_path(pattern: &Path) -> Result<Vec<SslCertificate>, ConfigError> {
    let Some(file_pattern) = pattern.file_name().and_then(|n| n.to_str()) else {
        return SslCertificate::from_file(pattern);
    };
    if !file_pattern.contains(['*', '?']) {
        return SslCertificate::from_file(pattern);
    }
    let dir = match pattern.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ConfigError::io(format!("certificate directory `{}`", dir.display()), e))?;
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            ConfigError::io(format!("certificate directory `{}`", dir.display()), e)
        })?;
        // Names that are not UTF-8 cannot match a UTF-8 pattern character by character.
        if let Ok(name) = entry.file_name().into_string() {
            if wildcard_match(file_pattern, &name) {
                names.push(name);
            }
        }
    }
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let path = dir.join(&name);
        if !path.is_file() {
            continue;
        }
        match SslCertificate::from_file(&path) {
            Ok(certs) => out.extend(certs),
            Err(e) => {
                tracing::debug!(file = %path.display(), error = %e, "skipped: no certificate")
            }
        }
    }
    Ok(out)
}

/// Whether `name` matches `pattern`, where `*` is any run of characters (also none) and
/// `?` any one character. Greedy with one backtrack point, so O(pattern × name) at worst.
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    // Position after the last `*` seen, and where in `name` that star's match ends.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((after_star, matched_to)) => {
                    pi = after_star;
                    ni = matched_to + 1;
                    star = Some((after_star, matched_to + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcards_match_like_a_shell() {
        assert!(wildcard_match("*.pem", "ca.pem"));
        assert!(wildcard_match("*.pem", ".pem"));
        assert!(!wildcard_match("*.pem", "ca.pem.bak"));
        assert!(wildcard_match("c?.pem", "ca.pem"));
        assert!(!wildcard_match("c?.pem", "c.pem"));
        assert!(wildcard_match("*a*b*", "xxaxxbxx"));
        assert!(!wildcard_match("*a*b", "xxbxxa"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("ä?.crt", "äö.crt"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let name = "a".repeat(2000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!wildcard_match(&pattern, &name));
    }
}
