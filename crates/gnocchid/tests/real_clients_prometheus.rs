//! A real Prometheus (Debian's 2.42) remote-writes to the binary; the series
//! come back through /v1 as metrics of the `prometheus` resource named
//! `<job>@<instance>`. Skipped, saying so, when `prometheus` is not installed
//! (scripts/install-test-peers-clients.sh installs it).
//!
//! Fast path from test-peers/README.md: Prometheus waits 5 s before its first
//! scrape, but recording rules are evaluated at once, so the series are rules
//! (`vector(42)`), with `job`/`instance` given as external labels.

mod ingest_support;

use ingest_support::{Proc, Server, free_tcp_port, poll, skip, which};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn prometheus_remote_write_lands_in_metrics() {
    let Some(prometheus) = which("prometheus") else {
        skip(
            "prometheus_remote_write_lands_in_metrics",
            "`prometheus` not found",
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), "");
    server.one_second_policy_for_everything("one-second");

    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: synth\n    interval: 1s\n    rules:\n\
         \x20     - record: gnocchi_test_constant\n        expr: vector(42)\n\
         \x20     - record: gnocchi_test_half\n        expr: vector(0.5)\n",
    )
    .expect("write rules");
    let web = free_tcp_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             \x20 external_labels: {{job: rules, instance: 'box:9090'}}\n\
             rule_files: [rules.yml]\n\
             remote_write:\n  - url: http://127.0.0.1:{port}/v1/prometheus/write\n\
             \x20   basic_auth: {{username: admin}}\n\
             \x20   queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}\n\
             \x20   metadata_config: {{send: false}}\n",
            port = server.port
        ),
    )
    .expect("write prometheus.yml");
    let _prom = Proc(
        std::process::Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus"),
    );

    let base = "/v1/resource/prometheus/rules@box:9090";
    let value = poll(Duration::from_secs(30), || {
        ingest_support::measures(&server, &format!("{base}/metric/gnocchi_test_constant"))
            .last()
            .map(|m| m.2)
    });
    assert_eq!(value, Some(42.0), "gnocchi_test_constant never arrived");
    let half = poll(Duration::from_secs(10), || {
        ingest_support::measures(&server, &format!("{base}/metric/gnocchi_test_half"))
            .last()
            .map(|m| m.2)
    });
    assert_eq!(half, Some(0.5));

    let r = server.get(base);
    assert_eq!(r.status, 200, "{}", r.text());
    let resource = r.json();
    assert_eq!(resource["type"], "prometheus");
    assert_eq!(resource["job"], "rules");
    assert_eq!(resource["instance"], "box:9090");
    assert_eq!(resource["original_resource_id"], "rules@box:9090");
    assert_eq!(resource["creator"], "admin");
    let r = server.get("/v1/resource_type/prometheus");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["attributes"]["job"]["max_length"], 512);
}
