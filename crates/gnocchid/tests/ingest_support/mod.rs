//! Shared by the ingestion integration tests (statsd, real clients): start the
//! real binary on free ports with a temporary data directory, a tiny blocking
//! HTTP client, and bounded polling.

// Each test file uses a part of it, and `pub` is for those files.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Basic auth of user `admin` (empty password), as upstream's tests.
pub const ADMIN: &str = "basic YWRtaW46";

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free TCP port")
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free UDP port")
}

/// A child process killed (by pid) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGTERM, then wait (bounded) for a clean exit; true if it exited in time.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// The binary under test.
pub fn gnocchid() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gnocchid"));
    c.env("GNOCCHI_LOG", "warn");
    c
}

pub struct Server {
    pub proc: Proc,
    pub port: u16,
    pub base: String,
    pub dir: PathBuf,
}

impl Server {
    /// The all-in-one server on a free port, data in `dir/data`, with `conf`
    /// as its gnocchi.conf and no default archive policies.
    pub fn start(dir: &Path, conf: &str) -> Server {
        let port = free_tcp_port();
        let conf_path = dir.join("gnocchi.conf");
        std::fs::write(&conf_path, conf).expect("write gnocchi.conf");
        let child = gnocchid()
            .arg("--config-file")
            .arg(&conf_path)
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--skip-archive-policies-creation")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gnocchid");
        let server = Server {
            proc: Proc(child),
            port,
            base: format!("127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
        };
        let ready = poll(Duration::from_secs(15), || {
            http(&server.base, "GET", "/", &[], b"").ok().map(|_| ())
        });
        assert!(ready.is_some(), "gnocchid did not answer on port {port}");
        server
    }

    pub fn request(&self, method: &str, path: &str, body: &serde_json::Value) -> Response {
        let body = serde_json::to_vec(body).expect("JSON");
        http(
            &self.base,
            method,
            path,
            &[
                ("authorization", ADMIN),
                ("content-type", "application/json"),
            ],
            &body,
        )
        .expect("HTTP request")
    }

    pub fn get(&self, path: &str) -> Response {
        http(&self.base, "GET", path, &[("authorization", ADMIN)], b"").expect("HTTP request")
    }

    /// An archive policy `name` of one-second points, and the rule `*` → it.
    pub fn one_second_policy_for_everything(&self, name: &str) {
        let r = self.request(
            "POST",
            "/v1/archive_policy",
            &serde_json::json!({"name": name, "definition": [{"granularity": "1s", "timespan": "1 day"}]}),
        );
        assert_eq!(r.status, 201, "create archive policy: {}", r.text());
        let r = self.request(
            "POST",
            "/v1/archive_policy_rule",
            &serde_json::json!({"name": "everything", "metric_pattern": "*", "archive_policy_name": name}),
        );
        assert_eq!(r.status, 201, "create rule: {}", r.text());
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = &b[(end + 2).min(b.len())..];
    }
    out
}

/// Call `f` every 100 ms until it returns `Some`, at most `timeout`.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Is this program on the PATH (or an existing path)?
pub fn which(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|c| c.is_file())
    })
}

/// Print why a test is skipped (visible with `--nocapture` and in CI logs).
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why} (run scripts/install-test-peers-clients.sh)");
}

/// The measures of a metric, read with `refresh=true`: `[(timestamp, granularity, value)]`.
pub fn measures(server: &Server, metric_path: &str) -> Vec<(String, f64, f64)> {
    let r = server.get(&format!("{metric_path}/measures?refresh=true"));
    if r.status != 200 {
        return Vec::new();
    }
    r.json()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    Some((
                        m.get(0)?.as_str()?.to_string(),
                        m.get(1)?.as_f64()?,
                        m.get(2)?.as_f64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}
