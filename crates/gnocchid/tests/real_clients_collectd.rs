//! A real collectd (Debian's 5.12) with the upstream collectd-gnocchi plugin
//! (PyPI) posts to the binary: its first batch is refused (no resource yet),
//! it creates the `collectd` resource type and its host resource, then its
//! batches (`/v1/batch/resources/metrics/measures?create_metrics=True`)
//! land as metrics of that resource. Skipped, saying so, when collectd or the
//! plugin's venv is missing (scripts/install-test-peers-clients.sh).
//!
//! collectd's own `write_http` plugin is not a Gnocchi client (it posts
//! collectd's JSON, which upstream Gnocchi only reads from AMQP 1.0), so the
//! plugin is the real client here.

mod ingest_support;

use ingest_support::{Proc, Server, poll, skip, which};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

fn plugin_dir() -> Option<PathBuf> {
    let venv = std::env::var_os("GNOCCHI_TEST_COLLECTD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/collectd-gnocchi-venv"));
    let site = venv.join("lib/python3.11/site-packages");
    site.join("collectd_gnocchi").is_dir().then_some(site)
}

#[test]
fn collectd_gnocchi_plugin_batches_land_in_metrics() {
    const TEST: &str = "collectd_gnocchi_plugin_batches_land_in_metrics";
    let Some(collectd) = which("collectd").or_else(|| which("/usr/sbin/collectd")) else {
        skip(TEST, "`collectd` not found");
        return;
    };
    let Some(site) = plugin_dir() else {
        skip(TEST, "the collectd-gnocchi venv is missing");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), "");
    server.one_second_policy_for_everything("one-second");

    let host = "collectd-test";
    let conf = dir.path().join("collectd.conf");
    std::fs::write(
        &conf,
        format!(
            "Hostname \"{host}\"\nFQDNLookup false\nBaseDir \"{base}\"\nPIDFile \"{base}/collectd.pid\"\n\
             PluginDir \"/usr/lib/collectd\"\nTypesDB \"/usr/share/collectd/types.db\"\nInterval 1\n\
             LoadPlugin load\nLoadPlugin memory\n\
             <LoadPlugin python>\n  Globals true\n</LoadPlugin>\n\
             <Plugin python>\n  ModulePath \"{site}\"\n  LogTraces true\n  Import \"collectd_gnocchi\"\n\
             \x20 <Module collectd_gnocchi>\n    endpoint \"http://127.0.0.1:{port}\"\n    auth_mode \"basic\"\n\
             \x20   user \"admin\"\n    batchsize 1\n  </Module>\n</Plugin>\n",
            base = dir.path().display(),
            site = site.display(),
            port = server.port,
        ),
    )
    .expect("write collectd.conf");
    let _collectd = Proc(
        std::process::Command::new(collectd)
            .arg("-f")
            .arg("-C")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn collectd"),
    );

    let resource = format!("/v1/resource/collectd/collectd:{host}");
    let load = poll(Duration::from_secs(30), || {
        ingest_support::measures(&server, &format!("{resource}/metric/load@load-1min"))
            .last()
            .map(|m| m.2)
    })
    .expect("load@load-1min never arrived");
    assert!((0.0..1000.0).contains(&load), "load average {load}");
    let used = poll(Duration::from_secs(10), || {
        ingest_support::measures(&server, &format!("{resource}/metric/memory@memory-used"))
            .last()
            .map(|m| m.2)
    })
    .expect("memory@memory-used never arrived");
    assert!(used > 0.0, "memory used {used}");

    let r = server.get(&resource);
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = r.json();
    assert_eq!(doc["type"], "collectd");
    assert_eq!(doc["host"], host);
    assert_eq!(doc["original_resource_id"], format!("collectd:{host}"));
    let names: Vec<&str> = doc["metrics"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for expected in [
        "load@load-1min",
        "load@load-5min",
        "load@load-15min",
        "memory@memory-used",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
