//! A real collectd (Debian's 5.12) publishes with its `amqp1` plugin
//! (`Format JSON`) through a real AMQP 1.0 broker (the Qpid Proton example
//! broker, scripts/amqp-test-up.sh) to the AMQP 1.0 daemon of the
//! all-in-one server: its host becomes a `collectd_amqp1d` resource whose
//! metrics are named as upstream's gnocchi-amqpd names them. Skipped, saying
//! so, when GNOCCHI_TEST_AMQP_URL is unset or collectd is missing
//! (scripts/install-test-peers-clients.sh installs it).

mod amqp_support;
mod ingest_support;

use amqp_support::{broker, host_resource};
use ingest_support::{Proc, Server, measures, poll, skip, which};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn collectd_amqp1_plugin_messages_land_in_host_resources() {
    const TEST: &str = "collectd_amqp1_plugin_messages_land_in_host_resources";
    let Some(broker) = broker(TEST) else { return };
    let Some(collectd) = which("collectd").or_else(|| which("/usr/sbin/collectd")) else {
        skip(TEST, "`collectd` not found");
        return;
    };
    let proton = ["x86_64-linux-gnu", "aarch64-linux-gnu"]
        .iter()
        .any(|d| std::path::Path::new(&format!("/usr/lib/{d}/libqpid-proton.so.11")).exists());
    if !std::path::Path::new("/usr/lib/collectd/amqp1.so").exists() || !proton {
        skip(
            TEST,
            "collectd's amqp1 plugin or its libqpid-proton11 is missing",
        );
        return;
    }
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    // collectd sends to `/<Address>/<Instance>`; a name of our own keeps
    // this test's queue apart on the shared broker.
    let instance = format!("t{}", uuid::Uuid::new_v4().simple());
    let hostname = format!("collectd-amqp-{}", std::process::id());

    let dir = tempfile::tempdir().expect("temp dir");
    let conf = format!(
        "[amqp1d]\nenabled = true\nurl = {broker}//collectd/{instance}\nflush_delay = 0.5\n"
    );
    let server = Server::start(dir.path(), &conf);
    server.one_second_policy_for_everything("one-second");

    let collectd_conf = dir.path().join("collectd.conf");
    std::fs::write(
        &collectd_conf,
        format!(
            "Hostname \"{hostname}\"\nFQDNLookup false\nInterval 1\nBaseDir \"{base}\"\n\
             PIDFile \"{base}/collectd.pid\"\nPluginDir \"/usr/lib/collectd\"\n\
             TypesDB \"/usr/share/collectd/types.db\"\n\
             LoadPlugin load\nLoadPlugin memory\nLoadPlugin amqp1\n\
             <Plugin amqp1>\n  <Transport \"gnocchi\">\n    Host \"{host}\"\n    Port \"{port}\"\n\
             \x20   Address \"collectd\"\n    RetryDelay 1\n    <Instance \"{instance}\">\n\
             \x20     Format JSON\n      PreSettle false\n    </Instance>\n  </Transport>\n</Plugin>\n",
            base = dir.path().display(),
        ),
    )
    .expect("write collectd.conf");
    let _collectd = Proc(
        std::process::Command::new(collectd)
            .arg("-f")
            .arg("-C")
            .arg(&collectd_conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn collectd"),
    );

    let resource = host_resource(&server, "collectd_amqp1d", &hostname)
        .expect("collectd's host never became a resource");
    let load = poll(Duration::from_secs(30), || {
        measures(&server, &format!("{resource}/metric/load@load-shortterm"))
            .last()
            .map(|m| m.2)
    })
    .expect("load@load-shortterm never arrived");
    assert!((0.0..10_000.0).contains(&load), "load average {load}");
    let used = poll(Duration::from_secs(10), || {
        measures(&server, &format!("{resource}/metric/memory@memory-used"))
            .last()
            .map(|m| m.2)
    })
    .expect("memory@memory-used never arrived");
    assert!(used > 0.0, "memory used {used}");

    let doc = server.get(&resource).json();
    assert_eq!(doc["type"], "collectd_amqp1d");
    assert_eq!(doc["host"], hostname.as_str());
    assert_eq!(
        doc["original_resource_id"],
        format!("collectd_amqp1d:{hostname}")
    );
    let names: Vec<&str> = doc["metrics"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for expected in [
        "load@load-shortterm",
        "load@load-midterm",
        "load@load-longterm",
        "memory@memory-used",
        "memory@memory-free",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
