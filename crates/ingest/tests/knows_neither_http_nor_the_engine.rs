//! The ingest service sits under every write path and above the stores: it
//! depends on carbonara, the index and the storage traits only — no HTTP, no
//! JSON, no policy engine, and not the engine (metricd) either, so the API,
//! statsd and the write paths to come (AMQP, migration) can all use it.

const ALLOWED: &[&str] = &[
    "carbonara",
    "gnocchi-index",
    "gnocchi-storage",
    "thiserror",
    "uuid",
    "tracing",
];

#[test]
fn dependencies_are_the_index_the_stores_and_small_utilities() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("read Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap_or_default();
    let names: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    assert!(names.contains(&"gnocchi-index"), "{names:?}");
    let foreign: Vec<&&str> = names.iter().filter(|n| !ALLOWED.contains(n)).collect();
    assert!(
        foreign.is_empty(),
        "the ingest crate must not depend on {foreign:?}: HTTP, JSON and policy belong to the callers"
    );
}
