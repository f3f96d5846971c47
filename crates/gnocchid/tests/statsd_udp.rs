//! statsd end to end: real UDP datagrams to the running binary, read back
//! through the HTTP API. Counters sum (with sampling rates), gauges and
//! timers keep the last value, metrics are named `<name>|<type>` on the
//! configured resource, bad lines are skipped.

mod ingest_support;

use ingest_support::{Server, free_udp_port, gnocchid, poll};
use std::net::UdpSocket;
use std::time::Duration;

const RESOURCE: &str = "5a301761-f78b-46e2-8900-8b4f6fe6675a";

/// One datagram: everything lands in the same flush interval.
const DATAGRAM: &[u8] =
    b"page.views:1|c\npage.views:3|c|@0.5\ncpu:42.5|g\nbad line\nrt:1|s\ncpu:40|g\nrt:320|ms\n";

fn send(port: u16, datagram: &[u8]) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("UDP socket");
    s.send_to(datagram, ("127.0.0.1", port))
        .expect("send datagram");
}

/// `name|type` → the metric listed under that name.
fn metric(server: &Server, name: &str) -> Option<serde_json::Value> {
    let encoded = name.replace('|', "%7C");
    let r = server.get(&format!("/v1/metric?name={encoded}"));
    (r.status == 200)
        .then(|| r.json())
        .and_then(|v| v.as_array().and_then(|a| a.first().cloned()))
}

fn last_value(server: &Server, name: &str, timeout: Duration) -> Option<f64> {
    poll(timeout, || {
        let m = metric(server, name)?;
        let id = m["id"].as_str()?;
        ingest_support::measures(server, &format!("/v1/metric/{id}"))
            .last()
            .map(|(_, _, v)| *v)
    })
}

fn check_values(server: &Server) {
    let t = Duration::from_secs(10);
    assert_eq!(
        last_value(server, "page.views|c", t),
        Some(7.0),
        "counter: 1 + 3/0.5"
    );
    assert_eq!(
        last_value(server, "cpu|g", t),
        Some(40.0),
        "gauge: the last value"
    );
    assert_eq!(
        last_value(server, "rt|ms", t),
        Some(320.0),
        "timer: the last value"
    );
    assert!(metric(server, "rt|s").is_none(), "sets are refused");
    let m = metric(server, "cpu|g").expect("cpu|g");
    assert_eq!(m["resource_id"], RESOURCE);
    assert_eq!(m["creator"], "statsd-user");
}

#[test]
fn statsd_inside_the_all_in_one_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let udp = free_udp_port();
    let conf = format!(
        "[statsd]\nenabled = true\nhost = 127.0.0.1\nport = {udp}\nresource_id = {RESOURCE}\n\
         creator = statsd-user\narchive_policy_name = one-second\nflush_delay = 0.2\n"
    );
    let server = Server::start(dir.path(), &conf);
    // The policy must exist before the first flush creates metrics.
    let r = server.request(
        "POST",
        "/v1/archive_policy",
        &serde_json::json!({"name": "one-second", "definition": [{"granularity": "1s"}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    send(udp, DATAGRAM);
    check_values(&server);
}

#[test]
fn gnocchid_statsd_alone_flushes_on_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let udp = free_udp_port();
    let conf_path = dir.path().join("statsd.conf");
    // No archive_policy_name: the default rule (`*` → low) decides.
    let conf =
        format!("[statsd]\nresource_id = {RESOURCE}\ncreator = statsd-user\nflush_delay = 60\n");
    std::fs::write(&conf_path, conf).expect("write conf");
    let child = gnocchid()
        .arg("statsd")
        .arg("--config-file")
        .arg(&conf_path)
        .arg("--port")
        .arg(udp.to_string())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .spawn()
        .expect("spawn gnocchid statsd");
    let mut statsd = ingest_support::Proc(child);
    // Bound once we can no longer bind its port.
    let bound = poll(Duration::from_secs(10), || {
        UdpSocket::bind(("127.0.0.1", udp)).err().map(|_| ())
    });
    assert!(bound.is_some(), "gnocchid statsd did not bind UDP {udp}");
    send(udp, DATAGRAM);
    // Let the datagram be received before asking for the shutdown flush.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        statsd.terminate(Duration::from_secs(10)),
        "statsd did not stop"
    );

    let server = Server::start(dir.path(), "");
    check_values(&server);
    let m = metric(&server, "cpu|g").expect("cpu|g");
    assert_eq!(m["archive_policy"]["name"], "low");
}
