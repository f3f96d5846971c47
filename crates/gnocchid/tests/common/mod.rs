//! Start the real `gnocchid` binary on a free port with its own data directory.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

pub mod ceph;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    pub base: String,
    keep_dir: bool,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gnocchid-test-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Server {
    /// Start on a fresh data directory with upstream's default policies.
    pub fn start(name: &str, extra: &[&str]) -> Server {
        Self::start_in(temp_dir(name), extra)
    }

    /// Start (or restart) on an existing data directory.
    pub fn start_in(data_dir: PathBuf, extra: &[&str]) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_gnocchid"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--port")
            .arg(port.to_string())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gnocchid");
        let base = format!("http://127.0.0.1:{port}");
        let server = Server {
            child,
            port,
            data_dir,
            base,
            keep_dir: false,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gnocchid did not start on port {}", self.port);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGKILL, keeping the data directory for a restart.
    pub fn kill9(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.keep_dir = true;
        self.data_dir.clone()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Create a metric with an archive policy as `admin`; returns its id.
pub async fn create_metric(c: &reqwest::Client, s: &Server, policy: &str) -> String {
    let resp = c
        .post(s.url("/v1/metric"))
        .basic_auth("admin", Some(""))
        .json(&serde_json::json!({"archive_policy_name": policy}))
        .send()
        .await
        .expect("create metric");
    assert_eq!(resp.status(), 201);
    let v: serde_json::Value = resp.json().await.expect("json");
    v["id"].as_str().expect("id").to_string()
}
