//! The AMQP 1.0 daemon end to end: collectd-format messages sent by a real
//! AMQP 1.0 client (fe2o3-amqp) through a real broker (the Qpid Proton
//! example broker, scripts/amqp-test-up.sh) to the running binary, read back
//! through the HTTP API. One resource per host, of the configured type, with
//! upstream's resource ids and metric names; measures at collectd's times; a
//! bad message is skipped; the daemon reconnects when the broker comes back,
//! and flushes on shutdown. Skipped, saying so, when GNOCCHI_TEST_AMQP_URL
//! is unset.

mod amqp_support;
mod ingest_support;

use amqp_support::{OwnBroker, broker, host_resource, send, unique_address, value_list};
use ingest_support::{Proc, Server, free_tcp_port, gnocchid, measures, poll};
use std::time::Duration;

const HOST: &str = "www.gnocchi.test.com";

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as f64)
        .unwrap_or(0.0)
}

/// Upstream's own test messages (gnocchi/tests/test_amqp1d.py), at `t`.
fn upstream_messages(t: f64) -> Vec<String> {
    vec![
        serde_json::json!([
            value_list(
                HOST,
                ["memory", "", "memory", "free"],
                &["value"],
                &[9.0],
                t
            ),
            value_list(
                HOST,
                ["interface", "ens2f1", "if_errors", ""],
                &["rx", "tx"],
                &[2.0, 5.0],
                t
            ),
        ])
        .to_string(),
    ]
}

/// The last value of a metric of a resource, once it is there.
fn last_value(server: &Server, resource: &str, metric: &str) -> Option<(String, f64)> {
    poll(Duration::from_secs(15), || {
        measures(server, &format!("{resource}/metric/{metric}"))
            .last()
            .map(|(ts, _, v)| (ts.clone(), *v))
    })
}

#[test]
fn collectd_messages_through_a_broker_become_resources_and_measures() {
    const TEST: &str = "collectd_messages_through_a_broker_become_resources_and_measures";
    let Some(broker) = broker(TEST) else { return };
    let address = unique_address("aio");
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = format!(
        "[amqp1d]\nenabled = true\nurl = {broker}/{address}\ncreator = amqp-user\nflush_delay = 0.2\n"
    );
    let server = Server::start(dir.path(), &conf);
    server.one_second_policy_for_everything("one-second");

    let t = now_s();
    let mut bodies = vec![
        "this is not JSON".to_string(),
        "[{\"values\": 1}]".to_string(),
    ];
    bodies.extend(upstream_messages(t));
    bodies.push(
        serde_json::json!([value_list(
            "rack/7",
            ["load", "", "load", ""],
            &["shortterm", "midterm", "longterm"],
            &[0.5, 0.25, 0.125],
            t
        )])
        .to_string(),
    );
    send(&broker, &address, &bodies);

    let resource = host_resource(&server, "collectd_amqp1d", HOST).expect("the host's resource");
    let (ts, free) = last_value(&server, &resource, "memory@memory-free")
        .expect("memory@memory-free never arrived");
    assert_eq!(free, 9.0);
    let expected_ts = chrono_like(t);
    assert_eq!(ts, expected_ts, "the measure keeps collectd's time");
    assert_eq!(
        last_value(&server, &resource, "interface-ens2f1@if_errors-rx").map(|m| m.1),
        Some(2.0)
    );
    assert_eq!(
        last_value(&server, &resource, "interface-ens2f1@if_errors-tx").map(|m| m.1),
        Some(5.0)
    );

    let r = server.get(&resource);
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = r.json();
    assert_eq!(doc["type"], "collectd_amqp1d");
    assert_eq!(doc["host"], HOST);
    assert_eq!(
        doc["original_resource_id"],
        format!("collectd_amqp1d:{HOST}")
    );
    assert_eq!(doc["creator"], "amqp-user");
    let mut names: Vec<&str> = doc["metrics"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    names.sort();
    assert_eq!(
        names,
        [
            "interface-ens2f1@if_errors-rx",
            "interface-ens2f1@if_errors-tx",
            "memory@memory-free"
        ]
    );

    // A `/` in a host becomes `_` in the resource id, not in the attribute.
    let rack = host_resource(&server, "collectd_amqp1d", "rack/7").expect("rack/7's resource");
    assert_eq!(
        last_value(&server, &rack, "load@load-midterm").map(|m| m.1),
        Some(0.25)
    );
    assert_eq!(
        server.get(&rack).json()["original_resource_id"],
        "collectd_amqp1d:rack_7"
    );

    // The type upstream's daemon creates: one required string, `host`.
    let rt = server.get("/v1/resource_type/collectd_amqp1d").json();
    assert_eq!(rt["attributes"]["host"]["type"], "string");
    assert_eq!(rt["attributes"]["host"]["required"], true);
    assert_eq!(rt["attributes"]["host"]["max_length"], 255);
}

/// `t` (whole seconds) as the API prints a timestamp.
fn chrono_like(t: f64) -> String {
    let secs = t as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn gnocchid_amqpd_reconnects_when_the_broker_comes_back_and_flushes_on_shutdown() {
    const TEST: &str =
        "gnocchid_amqpd_reconnects_when_the_broker_comes_back_and_flushes_on_shutdown";
    if broker(TEST).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_tcp_port();
    let broker = format!("127.0.0.1:{port}");
    let address = unique_address("alone");
    let mut own = OwnBroker::start(&dir.path().join("broker-1"), port);

    let conf_path = dir.path().join("amqpd.conf");
    // No archive policy rule of ours: the default rule (`*` → low) decides.
    std::fs::write(
        &conf_path,
        format!("[amqp1d]\nurl = {broker}/{address}\nresource_type = hosts\nflush_delay = 0.2\n"),
    )
    .expect("write conf");
    let mut amqpd = Proc(
        gnocchid()
            .arg("amqpd")
            .arg("--config-file")
            .arg(&conf_path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .spawn()
            .expect("spawn gnocchid amqpd"),
    );
    let t = now_s() - 60.0;
    send(
        &broker,
        &address,
        &[serde_json::json!([value_list(
            "before",
            ["cpu", "0", "percent", "idle"],
            &["value"],
            &[1.0],
            t
        )])
        .to_string()],
    );
    // Let the daemon take it before the broker goes away.
    std::thread::sleep(Duration::from_secs(1));
    own.kill();
    let mut own = OwnBroker::start(&dir.path().join("broker-2"), port);
    send(
        &broker,
        &address,
        &[serde_json::json!([value_list(
            "after",
            ["cpu", "0", "percent", "idle"],
            &["value"],
            &[2.0],
            t
        )])
        .to_string()],
    );
    // The daemon waits 1 s after losing the broker, then takes the message
    // the new broker kept for it; 10 s is ample.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        amqpd.terminate(Duration::from_secs(15)),
        "gnocchid amqpd did not stop on SIGTERM"
    );
    own.kill();

    // The default archive policies and rule (`*` → low) were created by
    // `gnocchid amqpd` on this data directory.
    let server = Server::start(dir.path(), "");
    for (host, value) in [("before", 1.0), ("after", 2.0)] {
        let resource = host_resource(&server, "hosts", host).expect("the host's resource");
        let got = poll(Duration::from_secs(10), || {
            measures(&server, &format!("{resource}/metric/cpu-0@percent-idle"))
                .last()
                .map(|m| m.2)
        });
        assert_eq!(got, Some(value), "the measure of host {host}");
        let doc = server.get(&resource).json();
        assert_eq!(doc["type"], "hosts");
        assert_eq!(doc["host"], host);
    }
}
