//! `gnocchi-bench --quick` runs end to end: it starts the real `gnocchid`,
//! runs every workload and prints every figure. No assertion on timing, ever.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `gnocchid` the bench starts, built now into the directory of
/// `gnocchi-bench` (where the bench looks for it) with the same profile: cargo
/// gives a test only its own package's binaries, and a stale `gnocchid` would
/// be measured without a word.
fn gnocchid() -> PathBuf {
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_gnocchi-bench"))
        .parent()
        .expect("gnocchi-bench is in a directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "-p", "gnocchid", "--bin", "gnocchid"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build -p gnocchid");
    assert!(status.success(), "cargo build -p gnocchid: {status}");
    let bin = profile_dir.join(format!("gnocchid{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} not built", bin.display());
    bin
}

#[test]
fn bench_quick_prints_every_figure() {
    let server = gnocchid();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("figures.json");
    let out = Command::new(env!("CARGO_BIN_EXE_gnocchi-bench"))
        .args(["--quick", "--json"])
        .arg(&json)
        .arg("--server-bin")
        .arg(&server)
        .env("GNOCCHI_LOG", "warn")
        .output()
        .expect("run gnocchi-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "gnocchi-bench --quick failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for label in [
        "ingest, batch of 1",
        "ingest, batch of 1 (requests)",
        "ingest, batch of 100",
        "ingest, batch of 5000",
        "processing, 500 metrics x 60 points",
        "processing, next 60 points (metricd loop)",
        "read, 43200 points, 1 connection",
        "read, 43200 points, 4 connections",
        "metric create",
        "metric show",
        "metric delete",
        "bytes per stored point (split payloads)",
        "bytes per stored point (redb file)",
        "server RSS, idle after start",
        "server RSS, peak (VmHWM)",
    ] {
        assert!(
            stdout.contains(label),
            "`{label}` missing from the output:\n{stdout}"
        );
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("--json file written"))
            .expect("--json file is JSON");
    for key in [
        "ingest_batch_1",
        "ingest_batch_1_requests",
        "ingest_batch_100",
        "ingest_batch_5000",
        "processing_process_sack",
        "processing_metricd_loop",
        "read_1_connection",
        "read_concurrent",
        "metric_create",
        "metric_show",
        "metric_delete",
        "bytes_per_point_splits",
        "bytes_per_point_file",
        "idle_rss",
        "peak_rss",
    ] {
        assert!(
            doc["figures"][key]["value"].is_number(),
            "figure `{key}` missing from the JSON: {doc}"
        );
    }
}
