//! The HTTP side of the benchmark: a lean HTTP/1.1 client and the server under test.
//!
//! [`Conn`] is one keep-alive TCP connection driven by hyper's low-level client
//! (`hyper::client::conn::http1`): no pool, no per-request allocation beyond
//! the request head, bodies passed as shared [`Bytes`] (pre-serialized by the
//! workloads). Each load-generating task owns one `Conn`, so "64 connections"
//! means exactly 64 sockets, each with one request in flight at a time (like
//! wrk). Why not reqwest (or hyper-util's pooled client), already in the tree:
//! their pool decides which socket a request takes and how many are open, so
//! the connection count the figures are quoted at would no longer be what was
//! measured, and the pool's bookkeeping per request is client CPU taken from a
//! server that shares the machine's two cores. This file is only the few
//! helpers the workloads share over hyper's connection (headers, status checks,
//! the backlog poll), not an HTTP implementation.
//!
//! [`Server`] is the real `gnocchid` binary started as a child process on a free
//! port with a temporary data directory, exactly as users run it (all-in-one:
//! API + metricd + janitor); it is killed and its directory removed on drop.

use crate::BoxError;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Where the server under test listens, and who we are to it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`.
    pub addr: String,
    host: HeaderValue,
    auth: HeaderValue,
}

impl Target {
    /// `url` is `http://host:port` (a trailing slash is fine; no TLS); `user` is
    /// the basic-auth user name (upstream's default auth mode ignores the password).
    pub fn new(url: &str, user: &str) -> Result<Target, BoxError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--target must start with http:// (got `{url}')"))?;
        let addr = rest.trim_end_matches('/').to_string();
        if addr.is_empty() || addr.contains('/') {
            return Err(format!("--target must be http://host:port (got `{url}')").into());
        }
        let auth = format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:"))
        );
        Ok(Target {
            host: HeaderValue::from_str(&addr)?,
            auth: HeaderValue::from_str(&auth)?,
            addr,
        })
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    target: Target,
}

impl Conn {
    pub async fn connect(target: &Target) -> Result<Conn, BoxError> {
        let stream = TcpStream::connect(&target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes the connection.
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            target: target.clone(),
        })
    }

    /// Send one request and read the whole response. `uri` is origin-form (`/v1/...`).
    pub async fn request(
        &mut self,
        method: Method,
        uri: Uri,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), BoxError> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, self.target.host.clone())
            .header(AUTHORIZATION, self.target.auth.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if body.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// A request that must answer `expected`; anything else is an error naming the body.
    pub async fn expect(
        &mut self,
        method: Method,
        uri: &str,
        body: Option<Bytes>,
        expected: StatusCode,
    ) -> Result<Bytes, BoxError> {
        let what = format!("{method} {uri}");
        let (status, resp) = self.request(method, uri.parse()?, body).await?;
        if status != expected {
            return Err(format!(
                "{what}: expected {expected}, got {status}: {}",
                String::from_utf8_lossy(&resp)
            )
            .into());
        }
        Ok(resp)
    }

    /// `POST /v1/archive_policy`; an existing policy of that name (409) is fine
    /// (a `--target` server may have it from an earlier run).
    pub async fn ensure_archive_policy(&mut self, json: serde_json::Value) -> Result<(), BoxError> {
        let body = Bytes::from(serde_json::to_vec(&json)?);
        let (status, resp) = self
            .request(
                Method::POST,
                Uri::from_static("/v1/archive_policy"),
                Some(body),
            )
            .await?;
        match status {
            StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
            s => Err(format!(
                "creating archive policy {}: {s}: {}",
                json["name"],
                String::from_utf8_lossy(&resp)
            )
            .into()),
        }
    }

    /// `POST /v1/metric` with `policy`; returns the new metric's id.
    pub async fn create_metric(&mut self, policy: &str) -> Result<String, BoxError> {
        let resp = self
            .expect(
                Method::POST,
                "/v1/metric",
                Some(metric_body(policy)),
                StatusCode::CREATED,
            )
            .await?;
        metric_id(&resp)
    }

    /// Pending batches (one per metric per request, as upstream counts them) in `GET /v1/status`.
    pub async fn backlog_batches(&mut self) -> Result<u64, BoxError> {
        let resp = self
            .expect(
                Method::GET,
                "/v1/status?details=false",
                None,
                StatusCode::OK,
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&resp)?;
        v["storage"]["summary"]["measures"]
            .as_u64()
            .ok_or_else(|| format!("no backlog in /v1/status: {v}").into())
    }

    /// Wait until no measure is waiting to be processed (`GET /v1/status`), at most `timeout`.
    /// Returns how long it took, `None` on timeout.
    pub async fn wait_backlog_drained(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Duration>, BoxError> {
        let start = Instant::now();
        loop {
            if self.backlog_batches().await? == 0 {
                return Ok(Some(start.elapsed()));
            }
            if start.elapsed() >= timeout {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The body of `POST /v1/metric` for a metric with archive policy `policy`.
pub fn metric_body(policy: &str) -> Bytes {
    Bytes::from(format!(r#"{{"archive_policy_name":"{policy}"}}"#))
}

/// Requests of a load phase: those answered as expected, the others, and the
/// first of those (what the report shows of them).
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Tally {
    pub fn record(&mut self, status: StatusCode, expected: StatusCode, body: &[u8]) {
        if status == expected {
            self.ok += 1;
        } else {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(format!("{status}: {}", String::from_utf8_lossy(body)));
            }
        }
    }

    /// Another connection's tally, added to this one.
    pub fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// `; 3 ERRORS, first: 400 Bad Request: ...` for a figure's note, or nothing.
    pub fn errors_note(&self) -> String {
        match self.errors {
            0 => String::new(),
            n => format!(
                "; {n} ERRORS, first: {}",
                self.first_error.as_deref().unwrap_or("")
            ),
        }
    }
}

/// The `id` of a metric as the API renders it.
pub fn metric_id(body: &[u8]) -> Result<String, BoxError> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no id in {}", String::from_utf8_lossy(body)).into())
}

/// Open `n` connections to `target`.
pub async fn connect_many(target: &Target, n: usize) -> Result<Vec<Conn>, BoxError> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(Conn::connect(target).await?);
    }
    Ok(conns)
}

/// The `gnocchid` binary to start: `explicit` (`--server-bin`), else the one
/// next to this executable (cargo builds both into `target/<profile>/`), else
/// the first on `PATH`.
pub fn server_binary(explicit: Option<&Path>) -> Result<PathBuf, BoxError> {
    if let Some(path) = explicit {
        return match path.is_file() {
            true => Ok(path.to_path_buf()),
            false => Err(format!("--server-bin {}: no such file", path.display()).into()),
        };
    }
    let name = format!("gnocchid{}", std::env::consts::EXE_SUFFIX);
    let sibling = std::env::current_exe()?.with_file_name(&name);
    if sibling.is_file() {
        return Ok(sibling);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no gnocchid next to {} nor on PATH: build it (cargo build --release -p gnocchid) \
                 or pass --server-bin",
                sibling.display()
            )
            .into()
        })
}

/// Environment variables that configure gnocchid (`GNOCCHI_CONFIG_FILE`,
/// `GNOCCHI_INDEXER_URL`, `GNOCCHI_DATA_DIR`, oslo.config's
/// `OS_<SECTION>__<OPTION>`): the server under test must not see them.
fn configures_gnocchid(name: &OsString) -> bool {
    let name = name.to_string_lossy();
    matches!(
        name.as_ref(),
        "GNOCCHI_CONFIG_FILE" | "GNOCCHI_INDEXER_URL" | "GNOCCHI_DATA_DIR"
    ) || (name.starts_with("OS_") && name.contains("__"))
}

/// Keep the bench's environment's gnocchid configuration away from a child
/// `gnocchid`: only the file the bench gives it counts.
pub fn clear_gnocchid_environment(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if configures_gnocchid(&name) {
            cmd.env_remove(name);
        }
    }
}

/// The `gnocchid` binary under test, running as a child process.
pub struct Server {
    child: Child,
    pub target: Target,
    /// Holds the data directory (and the server's log, `gnocchid.log`); removed on drop.
    dir: tempfile::TempDir,
}

impl Server {
    /// Start `bin` on a free port with a fresh data directory and wait until
    /// `GET /` answers (at most 30 s); with `config`, the server reads that
    /// gnocchi.conf (its port and data directory are still ours).
    pub async fn spawn(bin: &Path, user: &str, config: Option<&Path>) -> Result<Server, BoxError> {
        let dir = tempfile::Builder::new()
            .prefix("gnocchi-bench-")
            .tempdir()?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let data_dir: PathBuf = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("gnocchid.log"))?;
        let mut cmd = Command::new(bin);
        clear_gnocchid_environment(&mut cmd);
        if let Some(path) = config {
            cmd.arg("--config-file").arg(path);
        }
        let child = cmd
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .env("GNOCCHI_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let mut server = Server {
            child,
            target: Target::new(&format!("http://127.0.0.1:{port}"), user)?,
            dir,
        };
        server.wait_ready(Duration::from_secs(30)).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), BoxError> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "the server exited before answering ({status}); its log:\n{}",
                    self.log()
                )
                .into());
            }
            if let Ok(mut conn) = Conn::connect(&self.target).await
                && let Ok((StatusCode::OK, _)) =
                    conn.request(Method::GET, Uri::from_static("/"), None).await
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "the server did not answer within {timeout:?}; its log:\n{}",
                    self.log()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gnocchid.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Current and peak resident set size of the server, in bytes (Linux only).
    pub fn rss(&self) -> Option<Rss> {
        Rss::of(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` and `VmHWM` of a process, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Rss {
    pub current: u64,
    pub peak: u64,
}

impl Rss {
    pub fn of(pid: u32) -> Option<Rss> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kb: u64 = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kb * 1024)
        };
        Some(Rss {
            current: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }
}

/// CPU seconds (user + system) process `pid` used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after "pid (comm) ": state is field 3, utime 14, stime 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux the kernel ABI allows userspace to see.
    Some((utime + stime) / 100.0)
}

/// CPU used by the server and by this bench process over a phase: on a shared
/// machine, "server CPU per request" stays meaningful when wall-clock figures
/// are disturbed by other load.
pub struct CpuMeter {
    server: Option<(u32, f64)>,
    client: Option<f64>,
    start: Instant,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            server: server_pid.and_then(|p| Some((p, cpu_seconds(&p.to_string())?))),
            client: cpu_seconds("self"),
            start: Instant::now(),
        }
    }

    /// `server 1.05 cores (160 µs/request), bench client 0.15 cores`, for `ops`
    /// operations named `what`.
    pub fn note(&self, ops: u64, what: &str) -> String {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let mut parts = Vec::new();
        if let Some((pid, before)) = self.server
            && let Some(now) = cpu_seconds(&pid.to_string())
        {
            let used = now - before;
            let mut s = format!("server CPU {:.2} cores", used / wall);
            if ops > 0 {
                s.push_str(&format!(" ({:.0} µs/{what})", used * 1e6 / ops as f64));
            }
            parts.push(s);
        }
        if let (Some(before), Some(now)) = (self.client, cpu_seconds("self")) {
            parts.push(format!("bench client {:.2} cores", (now - before) / wall));
        }
        parts.join(", ")
    }
}

impl CpuMeter {
    /// For in-process workloads: `CPU 1.62 cores` used by this process.
    pub fn note_in_process(&self) -> String {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        match (self.client, cpu_seconds("self")) {
            (Some(before), Some(now)) => format!("CPU {:.2} cores", (now - before) / wall),
            _ => String::new(),
        }
    }
}

/// CPU used by a group of processes (several metricd) over a phase.
pub struct ProcessCpu {
    pids: Vec<(u32, f64)>,
    start: Instant,
}

impl ProcessCpu {
    pub fn start(pids: &[u32]) -> ProcessCpu {
        ProcessCpu {
            pids: pids
                .iter()
                .filter_map(|p| Some((*p, cpu_seconds(&p.to_string())?)))
                .collect(),
            start: Instant::now(),
        }
    }

    /// `metricd CPU 1.62 cores (0.81 per process)`.
    pub fn note(&self) -> String {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let used: f64 = self
            .pids
            .iter()
            .filter_map(|(p, before)| Some(cpu_seconds(&p.to_string())? - before))
            .sum();
        format!(
            "metricd CPU {:.2} cores ({:.2} per process)",
            used / wall,
            used / wall / self.pids.len().max(1) as f64
        )
    }
}

/// `/proc/loadavg`'s one-minute figure: other load on the machine skews every
/// wall-clock figure, so the report says how busy the machine was.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        assert!(cpu_seconds("self").is_some_and(|s| s >= 0.0));
        assert!(load_average().is_some());
    }

    #[test]
    fn target_parses_host_and_port() {
        let t = Target::new("http://127.0.0.1:8041/", "admin").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8041");
        assert!(Target::new("https://x:1", "admin").is_err());
        assert!(Target::new("http://x:1/v1", "admin").is_err());
    }
}
