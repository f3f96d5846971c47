//! `gnocchid bench --quick` runs end to end: it starts the real server, runs
//! every workload and prints every figure. No assertion on timing, ever.

use std::process::Command;

#[test]
fn bench_quick_prints_every_figure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("figures.json");
    let out = Command::new(env!("CARGO_BIN_EXE_gnocchid"))
        .args(["bench", "--quick", "--json"])
        .arg(&json)
        .env("GNOCCHI_LOG", "warn")
        .output()
        .expect("run gnocchid bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "gnocchid bench --quick failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
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
