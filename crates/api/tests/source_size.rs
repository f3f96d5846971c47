//! No production source file of the api crate grows past 800 lines (its
//! `#[cfg(test)]` module left out) unless a `//! size: ...` line near its top
//! says why it must stay whole: a file that long is several modules that
//! have not been named yet.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

/// How far from the top the `//! size:` justification may be.
const HEADER_LINES: usize = 20;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines before the first `#[cfg(test)]` (the whole file without one).
fn production_lines(text: &str) -> usize {
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .count()
}

fn justified(text: &str) -> bool {
    text.lines()
        .take(HEADER_LINES)
        .any(|l| l.trim_start().starts_with("//! size:"))
}

/// The files over the limit without a justification, with their length.
fn oversized(files: &[(String, String)]) -> Vec<String> {
    files
        .iter()
        .filter(|(_, text)| production_lines(text) > MAX_LINES && !justified(text))
        .map(|(name, text)| format!("{name}: {} lines", production_lines(text)))
        .collect()
}

#[test]
fn no_production_source_file_is_over_800_lines_without_a_reason() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    assert!(paths.len() > 30, "the sources were not found under {src:?}");
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(p).expect("read source"),
            )
        })
        .collect();
    let found = oversized(&files);
    assert!(found.is_empty(), "split these files:\n{}", found.join("\n"));
}

#[test]
fn the_limit_counts_code_before_the_tests_and_honours_a_size_line() {
    let long = "fn f() {}\n".repeat(MAX_LINES + 1);
    let tests_after = format!("fn f() {{}}\n#[cfg(test)]\nmod tests {{\n{long}}}\n");
    let justified_long = format!("//! A parser.\n//! size: one grammar, one file.\n{long}");
    let files = vec![
        ("long.rs".to_string(), long.clone()),
        ("tests_after.rs".to_string(), tests_after),
        ("justified.rs".to_string(), justified_long),
    ];
    assert_eq!(oversized(&files), ["long.rs: 801 lines"]);
}
