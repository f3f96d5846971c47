//! The InfluxDB 1.x Python client (`influxdb` from PyPI; Telegraf is in no
//! registry we reach) pings, creates a database and writes line protocol to
//! the binary, plain and gzipped, with nanosecond and second precision; the
//! points come back through /v1 as metrics of resources of that type.
//! Skipped, saying so, when the client's venv is missing
//! (scripts/install-test-peers-clients.sh).

mod ingest_support;

use ingest_support::{Server, skip};
use std::path::PathBuf;
use std::process::Command;

fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("GNOCCHI_TEST_INFLUX_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/influx-py-venv"));
    let py = venv.join("bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import influxdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

/// What the client does. `create_database` itself is not used: it expects a
/// 200 with a JSON body, where Gnocchi (and its test suite) answers 204.
const SCRIPT: &str = r#"
import sys
from influxdb import InfluxDBClient
port = int(sys.argv[1])
c = InfluxDBClient(host="127.0.0.1", port=port, username="admin", password="",
                   database="telegraf", path="v1/influxdb")
print("version", c.ping())
c.request("query", "POST", params={"q": 'CREATE DATABASE "telegraf"'}, expected_response_code=204)
c.write_points([
    "cpu,host=server01,region=us-west usage_idle=98.5,usage_user=1.5 1700000000000000000",
    "cpu,host=server01,region=us-west usage_idle=97.5,usage_user=2.5 1700000001000000000",
    'cpu,host=server02,region=eu/west usage_idle=50i,note="strings are skipped" 1700000000000000000',
], protocol="line")
c.write_points([
    {"measurement": "mem", "tags": {"host": "server01"}, "fields": {"used": 1024, "ok": True},
     "time": 1700000002},
], time_precision="s")
gz = InfluxDBClient(host="127.0.0.1", port=port, username="admin", password="",
                    database="telegraf", path="v1/influxdb", gzip=True)
gz.write_points(["disk,host=server01 free=7.25 1700000003000000000"], protocol="line")
print("ok")
"#;

#[test]
fn influxdb_python_client_writes_line_protocol() {
    const TEST: &str = "influxdb_python_client_writes_line_protocol";
    let Some(py) = python() else {
        skip(TEST, "the influxdb client venv is missing");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), "");
    server.one_second_policy_for_everything("one-second");

    let out = Command::new(py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(server.port.to_string())
        .output()
        .expect("run the influxdb client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "version Gnocchi {}",
            gnocchi_api::UPSTREAM_API_VERSION
        )),
        "{stdout}"
    );

    let r = server.get("/v1/resource_type/telegraf");
    assert_eq!(
        r.status,
        200,
        "CREATE DATABASE made no resource type: {}",
        r.text()
    );

    let s1 = "/v1/resource/telegraf/server01";
    let doc = server.get(s1).json();
    assert_eq!(doc["original_resource_id"], "server01");
    assert_eq!(doc["creator"], "admin");
    let cases: [(&str, &[(&str, f64)]); 5] = [
        (
            "cpu.usage_idle@region=us-west",
            &[
                ("2023-11-14T22:13:20+00:00", 98.5),
                ("2023-11-14T22:13:21+00:00", 97.5),
            ],
        ),
        (
            "cpu.usage_user@region=us-west",
            &[
                ("2023-11-14T22:13:20+00:00", 1.5),
                ("2023-11-14T22:13:21+00:00", 2.5),
            ],
        ),
        ("mem.used", &[("2023-11-14T22:13:22+00:00", 1024.0)]),
        ("disk.free", &[("2023-11-14T22:13:23+00:00", 7.25)]),
        (
            "cpu.usage_idle@region=eu_west",
            &[("2023-11-14T22:13:20+00:00", 50.0)],
        ),
    ];
    for (i, (metric, expected)) in cases.into_iter().enumerate() {
        // The last one is of server02, whose region had a `/`.
        let resource = if i == 4 {
            "/v1/resource/telegraf/server02"
        } else {
            s1
        };
        let got = ingest_support::measures(&server, &format!("{resource}/metric/{metric}"));
        let got: Vec<(&str, f64)> = got.iter().map(|(t, _, v)| (t.as_str(), *v)).collect();
        assert_eq!(got, expected, "{metric}");
    }
    // Booleans and strings are not measures.
    let metrics = doc["metrics"].as_object().cloned().unwrap_or_default();
    assert!(!metrics.contains_key("mem.ok"), "{metrics:?}");
    let doc2 = server.get("/v1/resource/telegraf/server02").json();
    let m2 = doc2["metrics"].as_object().cloned().unwrap_or_default();
    assert_eq!(m2.len(), 1, "{m2:?}");
}
