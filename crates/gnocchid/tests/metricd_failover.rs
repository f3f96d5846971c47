//! Several `gnocchid metricd` processes share the sacks, and when one is killed
//! (kill -9) mid-stream the survivors take its sacks over: the backlog drains,
//! every measure acknowledged with 202 is aggregated exactly once, and
//! `/v1/status` lists the processing group's live members (3, then 2).
//!
//! One `gnocchid api` and three `gnocchid metricd` on one config, on two stacks:
//!
//! - **Redis**: incoming and aggregates in Redis (database 11, flushed first),
//!   the index a shared SQLite file, coordination derived from the Redis URL.
//!   Skipped when GNOCCHI_TEST_REDIS_URL is unset.
//! - **scale-out**: the index in a PostgreSQL database of its own (created
//!   through GNOCCHI_TEST_POSTGRESQL_URL with `psql`, dropped at the end),
//!   coordination on the same database (`[DEFAULT] coordination_url`: advisory
//!   locks), incoming in Redis (database 14), aggregates in S3 served by a
//!   `s3s-fs` the test starts. Skipped, saying why, when either URL is unset or
//!   `psql` / `s3s-fs` is missing.
//!
//! - **Ceph** (with the `ceph` feature): index and coordination on
//!   PostgreSQL, incoming and aggregates in a RADOS pool the test creates on
//!   the cluster of `GNOCCHI_TEST_CEPH_CONF` (scripts/ceph-test-up.sh).
//!
//! Each stack runs twice: with `processing_replicas = 1` each sack has exactly
//! one owner and the dead worker's sacks are processed by nobody until the
//! ring is rebalanced; with 3 every worker tries every sack and only the sack
//! locks keep a sack's measures from being processed (and trimmed) twice.

mod common;
use common::*;
use serde_json::{Map, Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Redis database of the Redis stack (incoming and aggregates).
const REDIS_STACK_DB: u32 = 11;
/// Redis database of the scale-out stack (incoming only).
const SCALE_OUT_DB: u32 = 14;
const METRICS: usize = 200;
const WRITERS: usize = 4;
const MEASURES_PER_METRIC_PER_REQUEST: usize = 5;
const STREAM: Duration = Duration::from_secs(10);
const KILL_AFTER: Duration = Duration::from_secs(4);
/// The backlog must be empty this long after the stream stops.
const DRAIN_BOUND: Duration = Duration::from_secs(60);
const S3_ACCESS_KEY: &str = "AKFAILOVER";
const S3_SECRET_KEY: &str = "SKFAILOVER-secret";

/// The scenarios run one at a time: four processes each on a small machine,
/// and timings worth printing only when alone.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `FLUSHDB` on database `db`, over a bare RESP connection (no client crate
/// needed for one command).
fn flush_db(url: &str, db: u32) {
    let hostport = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379");
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:6379")
    };
    let mut s = TcpStream::connect(&hostport).expect("connect to redis");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let db = db.to_string();
    let cmd = format!(
        "*2\r\n$6\r\nSELECT\r\n${}\r\n{db}\r\n*1\r\n$7\r\nFLUSHDB\r\n",
        db.len()
    );
    s.write_all(cmd.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    while reply.windows(5).filter(|w| w == b"+OK\r\n").count() < 2 {
        let n = s.read(&mut buf).expect("redis reply");
        assert!(n > 0, "redis closed the connection: {reply:?}");
        reply.extend_from_slice(&buf[..n]);
    }
}

/// The Redis URL of database `db` on the server of `url`.
fn redis_db_url(url: &str, db: u32) -> String {
    format!("{}/{db}", url.trim_end_matches('/'))
}

fn env_url(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|u| !u.is_empty())
}

/// A metricd process whose stderr (its log) goes to a file.
struct Metricd {
    child: Child,
    log: PathBuf,
}

impl Metricd {
    fn start(conf: &Path, dir: &Path, n: usize) -> Metricd {
        let log = dir.join(format!("metricd-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_gnocchid"))
            .arg("--config-file")
            .arg(conf)
            .arg("--data-dir")
            .arg(dir)
            .arg("metricd")
            .env("GNOCCHI_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn gnocchid metricd");
        Metricd { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// This worker's name in the processing group, as it logged on joining.
    fn member(&self) -> Option<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("joined the processing group"))
            .filter_map(|l| {
                let i = l.find("member=")?;
                l[i + "member=".len()..].split_whitespace().next()
            })
            .map(str::to_string)
            .next_back()
    }

    /// The last "N members" this worker logged on a rebalance.
    fn members_seen(&self) -> Option<usize> {
        self.log()
            .lines()
            .filter_map(|l| {
                let i = l.find("processing group rebalanced: ")?;
                let rest = &l[i + "processing group rebalanced: ".len()..];
                rest.split(' ').next()?.parse().ok()
            })
            .next_back()
    }
}

impl Drop for Metricd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "{what}: not after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

async fn status(c: &reqwest::Client, s: &Server) -> Value {
    let r = c
        .get(s.url("/v1/status?details=false"))
        .basic_auth("admin", Some(""))
        .send()
        .await
        .expect("status");
    assert_eq!(r.status(), 200);
    r.json().await.expect("status json")
}

async fn backlog(c: &reqwest::Client, s: &Server) -> u64 {
    status(c, s).await["storage"]["summary"]["measures"]
        .as_u64()
        .expect("measures")
}

/// The processing group as `/v1/status` lists it (`None`: `null`).
async fn processors(c: &reqwest::Client, api: &Server) -> Option<Vec<String>> {
    let metricd = status(c, api).await["metricd"].clone();
    let listed: Option<Vec<String>> = metricd["processors"].as_array().map(|a| {
        a.iter()
            .map(|p| p.as_str().expect("processor name").to_string())
            .collect()
    });
    let stats = metricd["statistics"].as_object().expect("statistics");
    assert!(
        stats.len() == listed.as_ref().map_or(0, Vec::len)
            && listed.iter().flatten().all(|m| stats.contains_key(m)),
        "/v1/status statistics do not match the processors: {metricd}"
    );
    listed
}

/// `/v1/status` lists exactly `workers` as the processing group (sorted, as the
/// coordinator reports it).
async fn assert_status_lists(c: &reqwest::Client, api: &Server, workers: &[Metricd]) {
    let mut expected: Vec<String> = workers
        .iter()
        .map(|w| w.member().expect("a worker logged its member name"))
        .collect();
    expected.sort_unstable();
    assert_eq!(
        processors(c, api).await,
        Some(expected),
        "/v1/status processors"
    );
}

/// Redis stack: incoming and aggregates in Redis, a shared SQLite index.
/// Both runs share Redis database 11, so they run one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_metricd_sacks_are_taken_over_and_nothing_acknowledged_is_lost() {
    let Some(redis) = env_url("GNOCCHI_TEST_REDIS_URL") else {
        eprintln!("skipped: GNOCCHI_TEST_REDIS_URL unset");
        return;
    };
    let _serial = SERIAL.lock().await;
    let redis_db = redis_db_url(&redis, REDIS_STACK_DB);
    // One owner per sack: the dead worker's sacks wait for the ring to move them.
    // Every worker on every sack: only the sack locks keep processing exclusive.
    for replicas in [1, 3] {
        flush_db(&redis, REDIS_STACK_DB);
        let dir = temp_dir("failover");
        let backends = format!(
            "[indexer]\nurl = sqlite://{index}\n\n\
             [storage]\ndriver = redis\nredis_url = {redis_db}\n\n\
             [incoming]\ndriver = redis\n",
            index = dir.join("index.sqlite").display()
        );
        failover("redis", dir, &backends, "redis://", replicas).await;
        flush_db(&redis, REDIS_STACK_DB);
    }
}

/// Scale-out stack: index and coordination on PostgreSQL, incoming in Redis,
/// aggregates in S3 (s3s-fs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_out_stack_takes_over_a_killed_metricd_and_loses_nothing() {
    let (Some(redis), Some(pg_admin)) = (
        env_url("GNOCCHI_TEST_REDIS_URL"),
        env_url("GNOCCHI_TEST_POSTGRESQL_URL"),
    ) else {
        eprintln!("skipped: GNOCCHI_TEST_REDIS_URL or GNOCCHI_TEST_POSTGRESQL_URL unset");
        return;
    };
    let s3 = match S3Server::start() {
        Ok(s3) => s3,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let _serial = SERIAL.lock().await;
    let incoming = redis_db_url(&redis, SCALE_OUT_DB);
    for replicas in [1, 3] {
        flush_db(&redis, SCALE_OUT_DB);
        let name = format!("gnocchi_failover_{}_r{replicas}", std::process::id());
        let db = match PgDatabase::create(&pg_admin, &name) {
            Ok(db) => db,
            Err(reason) => {
                eprintln!("skipped: {reason}");
                return;
            }
        };
        let backends = format!(
            "[DEFAULT]\ncoordination_url = {pg}\n\n\
             [indexer]\nurl = {pg}\n\n\
             [storage]\ndriver = s3\ns3_endpoint_url = {endpoint}\n\
             s3_access_key_id = {S3_ACCESS_KEY}\ns3_secret_access_key = {S3_SECRET_KEY}\n\
             s3_bucket_prefix = failover-r{replicas}\n\n\
             [incoming]\ndriver = redis\nredis_url = {incoming}\n",
            pg = db.url,
            endpoint = s3.endpoint,
        );
        failover(
            "scale-out",
            temp_dir("failover-scaleout"),
            &backends,
            "postgresql://",
            replicas,
        )
        .await;
        drop(db);
        flush_db(&redis, SCALE_OUT_DB);
    }
}

/// Ceph stack: index and coordination on PostgreSQL, incoming and aggregates
/// in a RADOS pool of the test's own (needs the `ceph` feature and the
/// throwaway cluster of scripts/ceph-test-up.sh).
#[cfg(feature = "ceph")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ceph_stack_takes_over_a_killed_metricd_and_loses_nothing() {
    let Some(pg_admin) = env_url("GNOCCHI_TEST_POSTGRESQL_URL") else {
        eprintln!("skipped: GNOCCHI_TEST_POSTGRESQL_URL unset");
        return;
    };
    let _serial = SERIAL.lock().await;
    for replicas in [1, 3] {
        let name = format!("gnocchi_failover_ceph_{}_r{replicas}", std::process::id());
        let pool = match ceph::CephPool::create(&name) {
            Ok(p) => p,
            Err(reason) => {
                eprintln!("skipped: {reason}");
                return;
            }
        };
        let db = match PgDatabase::create(&pg_admin, &name) {
            Ok(db) => db,
            Err(reason) => {
                eprintln!("skipped: {reason}");
                return;
            }
        };
        let driver = pool.driver_options();
        let backends = format!(
            "[DEFAULT]\ncoordination_url = {pg}\n\n\
             [indexer]\nurl = {pg}\n\n\
             [storage]\n{driver}\n\
             [incoming]\n{driver}",
            pg = db.url,
        );
        failover(
            "ceph",
            temp_dir("failover-ceph"),
            &backends,
            "postgresql://",
            replicas,
        )
        .await;
        drop(db);
        drop(pool);
    }
}

/// One run: the API on `dir` and `backends` (gnocchi.conf without
/// `[metricd]`), three metricd whose log must name `coordination` as their
/// coordination backend, one of them killed mid-stream.
async fn failover(stack: &str, dir: PathBuf, backends: &str, coordination: &str, replicas: usize) {
    eprintln!("== {stack} stack, processing_replicas = {replicas}");
    let conf = dir.join("gnocchi.conf");
    std::fs::write(
        &conf,
        format!(
            "{backends}\n\
             [metricd]\nmetric_processing_delay = 1\nprocessing_replicas = {replicas}\nworkers = 2\n"
        ),
    )
    .unwrap();

    // The API first: it creates the index and the default policies.
    let conf_arg = conf.to_str().unwrap();
    let api = Server::start_in(dir.clone(), &["--config-file", conf_arg, "api"]);
    let c = client();
    let r = c
        .post(api.url("/v1/archive_policy"))
        .basic_auth("admin", Some(""))
        .json(
            &json!({"name": "failover", "aggregation_methods": ["count"],
                      "back_window": 100000,
                      "definition": [{"granularity": "1s", "points": 100000}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let mut ids = Vec::new();
    for _ in 0..METRICS {
        ids.push(create_metric(&c, &api, "failover").await);
    }

    let mut workers: Vec<Metricd> = (0..3).map(|n| Metricd::start(&conf, &dir, n)).collect();
    wait_until(
        Duration::from_secs(30),
        "three metricd see each other",
        || workers.iter().all(|w| w.members_seen() == Some(3)),
    )
    .await;
    let expected_backend = format!("coordination url={coordination}");
    for w in &workers {
        assert!(
            w.log().contains(&expected_backend),
            "metricd does not coordinate through {coordination}:\n{}",
            w.log()
        );
    }
    assert_status_lists(&c, &api, &workers).await;

    // The stream: each writer owns METRICS / WRITERS metrics and gives each of
    // its metrics distinct, increasing timestamps (one per second of
    // simulated time), so no two measures of a metric share a 1 s bucket.
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for chunk in ids.chunks(METRICS / WRITERS) {
        let (c, url) = (c.clone(), api.url("/v1/batch/metrics/measures"));
        let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
        let chunk = chunk.to_vec();
        writers.push(tokio::spawn(async move {
            let mut next_ts = 1_600_000_000u64;
            while !stop.load(Ordering::Relaxed) {
                let mut body = Map::new();
                for id in &chunk {
                    let measures: Vec<Value> = (0..MEASURES_PER_METRIC_PER_REQUEST as u64)
                        .map(|k| json!({"timestamp": next_ts + k, "value": 1.0}))
                        .collect();
                    body.insert(id.clone(), Value::Array(measures));
                }
                next_ts += MEASURES_PER_METRIC_PER_REQUEST as u64;
                let n = (chunk.len() * MEASURES_PER_METRIC_PER_REQUEST) as u64;
                match c
                    .post(&url)
                    .basic_auth("admin", Some(""))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 202 => {
                        acked.fetch_add(n, Ordering::SeqCst);
                    }
                    Ok(r) => {
                        eprintln!("write refused: {}", r.status());
                        failed.fetch_add(n, Ordering::SeqCst);
                    }
                    Err(e) => {
                        eprintln!("write failed: {e}");
                        failed.fetch_add(n, Ordering::SeqCst);
                    }
                }
            }
        }));
    }

    let stream_start = Instant::now();
    tokio::time::sleep(KILL_AFTER).await;
    let mut killed = workers.remove(0);
    killed.child.kill().expect("kill -9 metricd");
    let _ = killed.child.wait();
    let killed_at = Instant::now();
    eprintln!(
        "killed one metricd {:?} into the stream ({} measures acknowledged so far)",
        killed_at - stream_start,
        acked.load(Ordering::SeqCst)
    );
    // The dead member leaves the group (the backend's view, as the API's
    // /v1/status reports it), then the survivors rebalance at their next
    // membership refresh.
    let (mut left, mut rebalanced) = (None, None);
    while left.is_none() || rebalanced.is_none() {
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "no take-over 30 s after the kill: left the group {left:?}, rebalanced {rebalanced:?}"
        );
        if left.is_none() && processors(&c, &api).await.is_some_and(|p| p.len() == 2) {
            left = Some(killed_at.elapsed());
        }
        if rebalanced.is_none() && workers.iter().all(|w| w.members_seen() == Some(2)) {
            rebalanced = Some(killed_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (left, takeover) = (left.unwrap(), rebalanced.unwrap());
    eprintln!(
        "take-over: /v1/status lists 2 processors {left:?} after the kill, \
         the survivors rebalanced to 2 members {takeover:?} after it"
    );
    assert_status_lists(&c, &api, &workers).await;

    let rest = STREAM.saturating_sub(stream_start.elapsed());
    tokio::time::sleep(rest).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let stream_end = Instant::now();
    let total = acked.load(Ordering::SeqCst);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "writes failed: the count would be ambiguous"
    );
    assert!(total > 0, "nothing was acknowledged");

    // Every sack is processed again, including the dead worker's.
    loop {
        let b = backlog(&c, &api).await;
        if b == 0 {
            break;
        }
        assert!(
            stream_end.elapsed() < DRAIN_BOUND,
            "backlog still {b} measures {DRAIN_BOUND:?} after the stream stopped; logs:\n{}",
            workers
                .iter()
                .map(Metricd::log)
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = stream_end.elapsed();
    eprintln!(
        "backlog drained {drained:?} after the stream stopped ({:?} after the kill); {total} measures acknowledged",
        killed_at.elapsed()
    );

    // Exactly the acknowledged measures are aggregated: one count per second.
    let mut sum = 0.0;
    for id in &ids {
        let r = c
            .get(api.url(&format!(
                "/v1/metric/{id}/measures?aggregation=count&granularity=1"
            )))
            .basic_auth("admin", Some(""))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let points: Vec<Value> = r.json().await.unwrap();
        sum += points
            .iter()
            .map(|p| p[2].as_f64().expect("count"))
            .sum::<f64>();
    }
    assert_eq!(
        sum as u64, total,
        "aggregated measures differ from acknowledged ones"
    );
    eprintln!(
        "{stack} stack, processing_replicas = {replicas}: left the group after {left:?}, \
         take-over time {takeover:?}; backlog drained {drained:?} after the stream; \
         {total} acknowledged = {} aggregated",
        sum as u64
    );
    drop(workers);
    drop(killed);
    drop(api);
}

/// A PostgreSQL database of the test's own, created (afresh) through the
/// admin URL with `psql` and dropped, its sessions killed, when dropped.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// Err: why the scenario cannot run (no `psql`, server unreachable).
    fn create(admin: &str, name: &str) -> Result<PgDatabase, String> {
        psql(
            admin,
            &[
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                &format!("CREATE DATABASE {name}"),
            ],
        )?;
        Ok(PgDatabase {
            admin: admin.to_string(),
            name: name.to_string(),
            url: with_database(admin, name),
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let drop_it = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.admin, &[&drop_it]) {
            eprintln!("cannot drop database {}: {e}", self.name);
        }
    }
}

/// Run `statements` with the `psql` client, each in its own transaction.
fn psql(url: &str, statements: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("psql");
    cmd.args(["-q", "-X", "-v", "ON_ERROR_STOP=1", url]);
    for s in statements {
        cmd.args(["-c", s]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql (the PostgreSQL client): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql {statements:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `url` (`postgresql://user@host:port/db?query`) naming database `db` instead.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    match query {
        Some(q) => format!("{}/{db}?{q}", &base[..path]),
        None => format!("{}/{db}", &base[..path]),
    }
}

/// An `s3s-fs` (the S3-compatible test server, see
/// scripts/install-test-peers.sh) serving a temporary directory on a free
/// loopback port; killed, and its directory removed, when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
    dir: PathBuf,
}

impl S3Server {
    /// Err: why the scenario cannot run (no s3s-fs binary).
    fn start() -> Result<S3Server, String> {
        let bin = s3s_fs_bin().ok_or(
            "s3s-fs not found (set GNOCCHI_TEST_S3FS_BIN or run scripts/install-test-peers.sh)",
        )?;
        let dir = temp_dir("failover-s3");
        // Retry in the unlikely case that another process takes the port meanwhile.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port");
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(S3Server {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        dir,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("s3s-fs did not start");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GNOCCHI_TEST_S3FS_BIN`, else `s3s-fs` on `PATH`, else in `~/.cargo/bin`
/// (as crates/storage/tests/s3_driver.rs looks for it).
fn s3s_fs_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("GNOCCHI_TEST_S3FS_BIN").filter(|b| !b.is_empty()) {
        return Some(PathBuf::from(bin));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        Some(home.join("bin/s3s-fs")).filter(|p| p.is_file())
    })
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("postgresql://postgres@127.0.0.1:5432/test", "x"),
        "postgresql://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/test?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgresql://h:5432", "x"),
        "postgresql://h:5432/x"
    );
}
