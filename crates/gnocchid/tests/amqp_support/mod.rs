//! Shared by the AMQP 1.0 tests: the broker they use (`GNOCCHI_TEST_AMQP_URL`,
//! started by scripts/amqp-test-up.sh), starting more brokers with that
//! script, and a real AMQP 1.0 sender (fe2o3-amqp) that sends what
//! collectd's amqp1 plugin sends: its JSON as an AMQP binary value.

// Each test file uses a part of it, and `pub` is for those files.
#![allow(dead_code, unreachable_pub)]

use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::types::messaging::Message;
use fe2o3_amqp::types::primitives::{Binary, Value};
use fe2o3_amqp::{Connection, Sender, Session};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The broker's `host:port`, or `None` after saying the test is skipped.
pub fn broker(test: &str) -> Option<String> {
    match std::env::var("GNOCCHI_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "SKIPPED {test}: skipped (GNOCCHI_TEST_AMQP_URL unset; \
                 eval \"$(scripts/amqp-test-up.sh)\" starts a broker)"
            );
            None
        }
    }
}

/// An address no other test uses (the broker is shared).
pub fn unique_address(name: &str) -> String {
    format!(
        "/gnocchi-test/{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A broker of this test's own, on `port`, started by the repository's
/// script; killed (by pid) when dropped.
pub struct OwnBroker {
    pub pid: u32,
    killed: bool,
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/amqp-test-up.sh")
}

impl OwnBroker {
    pub fn start(dir: &Path, port: u16) -> OwnBroker {
        let out = Command::new("bash")
            .arg(script())
            .arg(dir)
            .arg(port.to_string())
            .output()
            .expect("run scripts/amqp-test-up.sh");
        assert!(
            out.status.success(),
            "amqp-test-up.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let pid = stdout
            .lines()
            .find_map(|l| l.strip_prefix("export GNOCCHI_TEST_AMQP_PID="))
            .and_then(|p| p.trim().parse().ok())
            .expect("the script prints the broker's pid");
        OwnBroker { pid, killed: false }
    }

    pub fn kill(&mut self) {
        if std::mem::replace(&mut self.killed, true) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(self.pid.to_string())
            .status();
        // Wait until the port is free again.
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{}", self.pid)).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends each body (collectd's JSON) as one message to `address` on the
/// broker at `host_port`, waiting for the broker to accept each.
pub fn send(host_port: &str, address: &str, bodies: &[String]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut connection = Connection::builder()
            .container_id("gnocchi-test-sender")
            .sasl_profile(SaslProfile::Anonymous)
            .open(format!("amqp://{host_port}").as_str())
            .await
            .expect("connect to the broker");
        let mut session = Session::begin(&mut connection).await.expect("session");
        let mut sender = Sender::attach(&mut session, "gnocchi-test-sender", address)
            .await
            .expect("attach sender");
        for body in bodies {
            let message = Message::from(Value::Binary(Binary::from(body.as_bytes().to_vec())));
            let outcome = sender.send(message).await.expect("send");
            assert!(
                outcome.is_accepted(),
                "broker refused the message: {outcome:?}"
            );
        }
        // The proton example broker answers a closing detach (close), not a
        // plain one.
        let _ = sender.close().await;
        let _ = session.end().await;
        let _ = connection.close().await;
    });
}

/// A collectd value list as its JSON format writes it; `id` is its plugin,
/// plugin instance, type and type instance.
pub fn value_list(
    host: &str,
    id: [&str; 4],
    dsnames: &[&str],
    values: &[f64],
    time: f64,
) -> serde_json::Value {
    let [plugin, plugin_instance, type_, type_instance] = id;
    serde_json::json!({
        "values": values,
        "dstypes": dsnames.iter().map(|_| "gauge").collect::<Vec<_>>(),
        "dsnames": dsnames,
        "time": time,
        "interval": 10.0,
        "host": host,
        "plugin": plugin,
        "plugin_instance": plugin_instance,
        "type": type_,
        "type_instance": type_instance,
    })
}

/// The path of the resource of `resource_type` whose `host` is `host`, once
/// it exists. Searched by attribute: its id is `<type>:<host>` mapped to a
/// UUID with the daemon's creator, which is not the test's user.
pub fn host_resource(
    server: &crate::ingest_support::Server,
    resource_type: &str,
    host: &str,
) -> Option<String> {
    crate::ingest_support::poll(std::time::Duration::from_secs(20), || {
        let r = server.request(
            "POST",
            &format!("/v1/search/resource/{resource_type}"),
            &serde_json::json!({"=": {"host": host}}),
        );
        if r.status != 200 {
            return None;
        }
        let id = r.json().as_array()?.first()?["id"].as_str()?.to_string();
        Some(format!("/v1/resource/{resource_type}/{id}"))
    })
}
