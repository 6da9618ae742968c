//! `SslCertificate::from_path`: certificates from the files a wildcard pattern (`*`, `?`,
//! `[...]`) matches (Qt's `QSslCertificate::fromPath` with `PatternSyntax::Wildcard`).

use std::path::Path;

use crate::cert::certificate::SslCertificate;
use crate::error::ConfigError;

/// Certificates from every file whose name matches the last component of `pattern`.
pub(crate) fn certificates_from_path(pattern: &Path) -> Result<Vec<SslCertificate>, ConfigError> {
    let Some(file_pattern) = pattern.file_name().and_then(|n| n.to_str()) else {
        return SslCertificate::from_file(pattern);
    };
    // As Qt: a name without wildcards, or one that names a file, is that file.
    if !file_pattern.contains(['*', '?', '[']) || pattern.is_file() {
        return SslCertificate::from_file(pattern);
    }
    let dir = match pattern.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ConfigError::io(format!("certificate directory `{}`", dir.display()), e))?;
    // Compiled once: the pattern may be long, the directory large.
    let matcher = Pattern::new(file_pattern);
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            ConfigError::io(format!("certificate directory `{}`", dir.display()), e)
        })?;
        // Names that are not UTF-8 cannot match a UTF-8 pattern character by character.
        if let Ok(name) = entry.file_name().into_string() {
            if matcher.matches(&name) {
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

/// One element of a wildcard pattern.
#[derive(Debug)]
enum Token {
    /// `*`: any run of characters, also none.
    Star,
    /// `?`: any one character.
    Any,
    /// `[...]` (`[!...]` negated): one character of (or not of) the listed characters
    /// and `a-z` ranges, as Qt's wildcard syntax.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// Any other character: itself.
    Literal(char),
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
            }
            Token::Literal(own) => *own == c,
        }
    }
}

/// A wildcard pattern read once, to match many names.
struct Pattern {
    /// `None` when no name can match: a class with a reversed range (`[z-a]`), which makes
    /// Qt's expression invalid (PCRE2: "range out of order"), so it matches nothing.
    tokens: Option<Vec<Token>>,
}

impl Pattern {
    fn new(pattern: &str) -> Pattern {
        Pattern {
            tokens: tokens(pattern),
        }
    }

    fn matches(&self, name: &str) -> bool {
        self.tokens
            .as_deref()
            .is_some_and(|tokens| tokens_match(tokens, name))
    }
}

/// The tokens of `pattern`, as Qt's `wildcardToRegularExpression` reads them: after `[`
/// (and `!` or `^`, negating) a `]` is a member, not the end (`[]a]`, `[!]a]`); a `[`
/// without its `]` stands for itself. `None` for a reversed range (see [`Pattern`]).
/// Linear in the pattern's length: the `]` ending each class is looked up, not searched.
fn tokens(pattern: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    // For each position, the first `]` at or after it.
    let mut next_close: Vec<Option<usize>> = vec![None; chars.len() + 1];
    let mut seen = None;
    for (at, c) in chars.iter().enumerate().rev() {
        if *c == ']' {
            seen = Some(at);
        }
        if let Some(slot) = next_close.get_mut(at) {
            *slot = seen;
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '*' => out.push(Token::Star),
            '?' => out.push(Token::Any),
            '[' => {
                // Qt turns `!` into PCRE2's `^` and copies a `^` as it is: both negate.
                let negated = matches!(chars.get(i), Some('!' | '^'));
                let body_start = if negated { i + 1 } else { i };
                let search_from = if chars.get(body_start) == Some(&']') {
                    body_start + 1
                } else {
                    body_start
                };
                let Some(close) = next_close.get(search_from).copied().flatten() else {
                    out.push(Token::Literal('['));
                    continue;
                };
                let body = chars.get(body_start..close).unwrap_or_default();
                let mut ranges = Vec::new();
                let mut j = 0;
                while let Some(&low) = body.get(j) {
                    match (body.get(j + 1), body.get(j + 2)) {
                        (Some('-'), Some(&high)) => {
                            if high < low {
                                return None;
                            }
                            ranges.push((low, high));
                            j += 3;
                        }
                        _ => {
                            ranges.push((low, low));
                            j += 1;
                        }
                    }
                }
                out.push(Token::Class { negated, ranges });
                i = close + 1;
            }
            other => out.push(Token::Literal(other)),
        }
    }
    Some(out)
}

/// Whether `name` matches `pattern`, where `*` is any run of characters (also none), `?`
/// any one character and `[...]` one of a set (`[!...]` one not in it), as in Qt's
/// wildcard syntax. Greedy with one backtrack point, so O(pattern × name) at worst.
#[cfg(test)]
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    Pattern::new(pattern).matches(name)
}

fn tokens_match(p: &[Token], name: &str) -> bool {
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    // Position after the last `*` seen, and where in `name` that star's match ends.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = n.get(ni) {
        match p.get(pi) {
            Some(Token::Star) => {
                star = Some((pi + 1, ni));
                pi += 1;
            }
            Some(token) if token.matches(c) => {
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
        .is_some_and(|rest| rest.iter().all(|t| matches!(t, Token::Star)))
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
        assert!(wildcard_match("ca[12].pem", "ca2.pem"));
        assert!(!wildcard_match("ca[12].pem", "ca3.pem"));
        assert!(wildcard_match("ca[!3].pem", "ca1.pem"));
        assert!(!wildcard_match("ca[!3].pem", "ca3.pem"));
        assert!(wildcard_match("ca[a-c].pem", "cab.pem"));
        assert!(wildcard_match("ca[.pem", "ca[.pem"));
        assert!(wildcard_match("*[0-9].pem", "ca10.pem"));
        assert!(wildcard_match("ca[]1].pem", "ca].pem"));
        assert!(!wildcard_match("ca[!]1].pem", "ca].pem"));
        assert!(wildcard_match("ca[^3].pem", "ca1.pem"));
        assert!(!wildcard_match("ca[!z-a].pem", "ca1.pem"));
        assert!(wildcard_match("ca[!].pem", "ca[!].pem"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let name = "a".repeat(2000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!wildcard_match(&pattern, &name));
    }
}
