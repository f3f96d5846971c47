//! Carbonara is pure computation: no I/O, no async, no clock (ARCHITECTURE.md,
//! "carbonara"). These tests check it mechanically, on what would have to
//! change for that to stop being true: its dependency tree and its sources.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every crate carbonara may depend on (normal edges, every target platform,
/// transitively), each pure computation. A crate joining the tree must be
/// added here, after checking that it does no I/O and pulls in no async
/// runtime; a crate that does belongs in storage or engine, not carbonara.
const PURE_DEPENDENCIES: &[&str] = &[
    "carbonara",
    // Checksums of splits and raw buffers.
    "crc32fast",
    "cfg-if",
    // LZ4 block compression, and its hash.
    "lz4_flex",
    "twox-hash",
    // The error enum's derive (a compile-time proc macro and its parsers).
    "thiserror",
    "thiserror-impl",
    "proc-macro2",
    "quote",
    "syn",
    "unicode-ident",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names of carbonara's normal dependencies, transitively, on every
/// target platform, as cargo resolves them.
fn dependency_tree() -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "--edges", "normal", "--target", "all"])
        .args(["--prefix", "none", "--format", "{p}", "--manifest-path"])
        .arg(manifest_dir().join("Cargo.toml"))
        .output()
        .expect("cannot run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn dependencies_are_all_pure_computation() {
    let tree = dependency_tree();
    assert!(
        tree.iter().any(|n| n == "carbonara") && tree.iter().any(|n| n == "thiserror"),
        "cargo tree did not list carbonara's dependencies: {tree:?}"
    );
    let unexpected: Vec<&String> = tree
        .iter()
        .filter(|n| !PURE_DEPENDENCIES.contains(&n.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "carbonara must stay pure computation (no I/O, no async), but these crates joined \
         its dependency tree: {unexpected:?}. If a crate is pure computation, add it to \
         PURE_DEPENDENCIES with why; if it does I/O or async work, the code needing it \
         belongs in storage or engine."
    );
}

/// The production part of a source file (before its test module), without
/// comments.
fn production_code(text: &str) -> String {
    let end = text.find("\n#[cfg(test)]").unwrap_or(text.len());
    let mut out = String::with_capacity(end);
    let mut rest = &text[..end];
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

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

/// The `std` modules that reach outside the process or its thread: files,
/// sockets, standard streams, child processes, threads, the environment, the
/// OS.
const IO_MODULES: &[&str] = &["fs", "net", "io", "process", "thread", "env", "os"];

/// Identifiers and macros that mean async code, the clock or the standard
/// streams.
const IO_TOKENS: &[&str] = &[
    "async",
    "await",
    "SystemTime",
    "Instant",
    "println",
    "print",
    "eprintln",
    "eprint",
    "dbg",
];

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// What `code` uses of `IO_MODULES` (through `std::x` or `std::{x, ...}`) and
/// `IO_TOKENS`.
fn io_uses(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    for (at, _) in compact.match_indices("std::") {
        let after = &compact[at + 5..];
        let names: Vec<&str> = match after.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                group
                    .split(',')
                    .map(|item| item.split("::").next().unwrap_or(""))
                    .collect()
            }
            None => vec![&after[..after.find(|c| !is_ident(c)).unwrap_or(after.len())]],
        };
        for name in names {
            if IO_MODULES.contains(&name) {
                found.push(format!("std::{name}"));
            }
        }
    }
    for word in code.split(|c| !is_ident(c)) {
        if IO_TOKENS.contains(&word) {
            found.push(word.to_owned());
        }
    }
    found
}

#[test]
fn the_io_scan_sees_what_it_must_refuse() {
    assert_eq!(io_uses("use std::fs::File;"), ["std::fs"]);
    assert_eq!(
        io_uses("use std::{\n    collections::BTreeMap,\n    net };"),
        ["std::net"]
    );
    assert_eq!(io_uses("async fn f() { g().await }"), ["async", "await"]);
    assert_eq!(io_uses("let t = std::time::Instant::now();"), ["Instant"]);
    assert!(io_uses("use std::collections::BTreeMap; fn asynchronous() {}").is_empty());
    assert_eq!(
        production_code("a // std::fs\n/* async */b\n#[cfg(test)]\nmod tests { std::io }"),
        "a \nb"
    );
}

#[test]
fn sources_use_no_io_threads_clock_or_async() {
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    assert!(files.len() > 5, "no sources found: {files:?}");
    let mut offences = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("cannot read a source");
        for what in io_uses(&production_code(&text)) {
            offences.push(format!("{}: {what}", file.display()));
        }
    }
    assert!(
        offences.is_empty(),
        "carbonara must stay pure computation (no I/O, no async, no clock: the caller \
         passes `now` in), but its sources use: {offences:#?}"
    );
}
