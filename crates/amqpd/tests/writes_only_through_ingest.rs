//! The AMQP 1.0 daemon sits beside statsd on the ladder: it writes through
//! the ingest service only, so it depends on carbonara, the index's types
//! and the ingest crate — never on the API (HTTP), the engine (metricd) or
//! the stores directly.

const FORBIDDEN: &[&str] = &[
    "gnocchi-api",
    "gnocchi-engine",
    "gnocchi-storage",
    "gnocchid",
];

#[test]
fn depends_on_ingest_and_nothing_above_or_beside_it() {
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
    assert!(names.contains(&"gnocchi-ingest"), "{names:?}");
    let wrong: Vec<&&str> = names.iter().filter(|n| FORBIDDEN.contains(n)).collect();
    assert!(
        wrong.is_empty(),
        "gnocchi-amqpd must not depend on {wrong:?}"
    );
}
