//! No production source file of the workspace (what comes before its
//! `#[cfg(test)]` module) grows past 800 lines unless a `//! size: ...` line
//! near its top says why it must stay whole: beyond that a file is split
//! along its seams into submodules. One test for every crate, here in the
//! crate that wires them all.

use std::path::{Path, PathBuf};

const MAX_PRODUCTION_LINES: usize = 800;
/// How far from the top the `//! size:` justification may be.
const SIZE_NOTE_WITHIN: usize = 40;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("cannot list the sources") {
        let path = entry.expect("cannot list the sources").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines before the test module, or `None` when a size note excuses the file.
fn production_lines(text: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    if lines
        .iter()
        .take(SIZE_NOTE_WITHIN)
        .any(|l| l.trim_start().starts_with("//! size:"))
    {
        return None;
    }
    Some(
        lines
            .iter()
            .position(|l| l.starts_with("#[cfg(test)]"))
            .unwrap_or(lines.len()),
    )
}

#[test]
fn the_line_count_stops_at_the_test_module_and_honours_size_notes() {
    assert_eq!(
        production_lines("a\nb\n#[cfg(test)]\nmod tests {}\n"),
        Some(2)
    );
    assert_eq!(production_lines("a\nb\n"), Some(2));
    assert_eq!(
        production_lines("//! x\n//! size: one state machine\nb\n"),
        None
    );
}

#[test]
fn production_source_files_stay_under_800_lines() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crates directory");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(crates).expect("cannot list the crates") {
        let src = entry.expect("cannot list the crates").path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(
        files.len() > 100,
        "the sources were not found under {crates:?}"
    );
    let too_long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).expect("cannot read a source");
            let n = production_lines(&text)?;
            (n > MAX_PRODUCTION_LINES).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "split these along their seams into submodules, or say why one must stay whole \
         with a `//! size: ...` line near its top: {too_long:#?}"
    );
}
