//! The Qt → Rust table is in two places: the README (how Qt users find their way on the
//! repository) and the crate docs (`sslsocket::docs::qt_mapping`, on docs.rs). They must
//! say the same thing.

use std::path::Path;

/// The table rows of the section that starts with `heading`, up to the next `## `.
fn table_rows(text: &str, heading: &str) -> Vec<String> {
    let Some(start) = text.find(heading) else {
        return Vec::new();
    };
    let body = &text[start + heading.len()..];
    let end = body.find("\n## ").unwrap_or(body.len());
    body[..end]
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_and_the_crate_docs_have_the_same_qt_table() -> Result<(), std::io::Error> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(manifest.join("../../README.md"))?;
    let docs = std::fs::read_to_string(manifest.join("src/docs/qt_mapping.md"))?;
    let in_readme = table_rows(&readme, "## Qt → Rust names");
    let in_docs = table_rows(&docs, "# Qt → Rust names");
    assert!(in_readme.len() > 50, "the README's table is missing");
    let missing: Vec<_> = in_readme.iter().filter(|r| !in_docs.contains(r)).collect();
    let extra: Vec<_> = in_docs.iter().filter(|r| !in_readme.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "copy the README's table to src/docs/qt_mapping.md\nonly in the README: {missing:#?}\nonly in the docs: {extra:#?}"
    );
    assert_eq!(in_readme, in_docs, "same rows, same order");
    Ok(())
}
