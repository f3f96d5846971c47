//! The S3 driver against a real S3-compatible server: each test starts its own
//! `s3s-fs` (0.14.1, `scripts/install-test-peers.sh` installs it) on a free
//! loopback port with a temporary directory. The binary is taken from
//! `GNOCCHI_TEST_S3FS_BIN`, else `s3s-fs` on `PATH`, else `~/.cargo/bin`;
//! without it the tests say they are skipped.
//!
//! Throughput figures (ignored by default; they never fail on timing):
//! `cargo test --release -p gnocchi-storage --test s3_driver -- --ignored --nocapture`

mod common;
mod contract;

use carbonara::measure::measures;
use common::TempDir;
use contract::batch;
use gnocchi_storage::s3_aggregates::{S3Aggregates, S3Config};
use gnocchi_storage::s3_incoming::S3Incoming;
use gnocchi_storage::{Aggregates, Incoming, sack_of};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCESS_KEY: &str = "AKTEST";
const SECRET_KEY: &str = "SKTEST-secret";

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

/// An `s3s-fs` process serving a temporary directory, killed when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
    dir: TempDir,
}

impl S3Server {
    fn start() -> Option<S3Server> {
        let Some(bin) = s3s_fs_bin() else {
            println!(
                "skipped: s3s-fs not found (set GNOCCHI_TEST_S3FS_BIN or run scripts/install-test-peers.sh)"
            );
            return None;
        };
        let dir = TempDir::new("s3s-fs");
        // Retry in the unlikely case that another process takes the port meanwhile.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(&bin)
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--access-key",
                    ACCESS_KEY,
                    "--secret-key",
                    SECRET_KEY,
                ])
                .arg(dir.path())
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
                    return Some(S3Server {
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

    fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            endpoint_url: Some(self.endpoint.clone()),
            region_name: None,
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            bucket_prefix: prefix.into(),
            ..Default::default()
        }
    }

    /// Files stored under the bucket's directory (s3s-fs keeps objects as plain files).
    fn files(&self, bucket: &str) -> Vec<String> {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries {
                let path = e.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        let root = self.dir.path().join(bucket);
        walk(&root, &root, &mut out);
        out.retain(|f| {
            !f.starts_with(".s3s") && !f.contains("/.s3s") && !f.ends_with(".metadata.json")
        });
        out.sort();
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn aggregates_round_trip() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let store = S3Aggregates::connect(server.config("gnocchi"))
        .await
        .unwrap();
    assert!(
        server.dir.path().join("gnocchi-aggregates").is_dir(),
        "the bucket is created"
    );
    contract::aggregates_round_trip(&store).await;
}

#[tokio::test]
async fn aggregates_extremes() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let store = S3Aggregates::connect(server.config("extremes"))
        .await
        .unwrap();
    contract::aggregates_extremes(&store).await;
}

#[tokio::test]
async fn object_names_and_bucket_reuse() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let store = S3Aggregates::connect(server.config("names")).await.unwrap();
    let m = contract::metric(7);
    let s = contract::split(
        m,
        carbonara::Method::Rate(carbonara::method::BaseMethod::Mean),
        contract::G60,
        1_425_600_000 * contract::G1,
    );
    store
        .write(gnocchi_storage::WriteBatch {
            raw: vec![(m, b"raw".to_vec())],
            splits: vec![(s, b"split".to_vec())],
            ..Default::default()
        })
        .await
        .unwrap();
    let files = server.files("names-aggregates");
    assert_eq!(
        files,
        vec![
            format!("{m}/none"),
            format!("{m}/rate:mean/60000000000/1425600000000000000")
        ],
        "{files:?}"
    );

    // A second process connecting finds the bucket and the data.
    let other = S3Aggregates::connect(server.config("names")).await.unwrap();
    assert_eq!(
        other.get_raw(&[m]).await.unwrap(),
        vec![Some(b"raw".to_vec())]
    );
    other.delete_metrics(&[m]).await.unwrap();
    assert!(server.files("names-aggregates").is_empty());
    assert_eq!(store.get_splits(&[s]).await.unwrap(), vec![None]);
}

#[tokio::test]
async fn regions_and_credentials() {
    let Some(server) = S3Server::start() else {
        return;
    };
    // A region other than us-east-1: the bucket is created with a LocationConstraint.
    let mut config = server.config("region");
    config.region_name = Some("eu-west-1".into());
    let store = S3Aggregates::connect(config).await.unwrap();
    store
        .write(gnocchi_storage::WriteBatch {
            raw: vec![(contract::metric(1), vec![1, 2, 3])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_raw(&[contract::metric(1)]).await.unwrap(),
        vec![Some(vec![1, 2, 3])]
    );

    // The server checks signatures: a wrong secret is refused, clearly.
    let mut bad = server.config("badsecret");
    bad.secret_access_key = Some("Wr0ngS3cretValue".into());
    let err = S3Aggregates::connect(bad)
        .await
        .err()
        .expect("a wrong secret must fail");
    println!("wrong secret: {err}");
    assert!(err.to_string().contains("badsecret-aggregates"), "{err}");
    assert!(
        !err.to_string().contains("Wr0ngS3cretValue"),
        "the secret leaks into: {err}"
    );
    let mut half = server.config("half");
    half.secret_access_key = None;
    assert!(S3Aggregates::connect(half).await.is_err());
}

#[tokio::test]
async fn many_objects_in_parallel() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let store = S3Aggregates::connect(server.config("many")).await.unwrap();
    // More objects than the parallelism bound, and more splits in one series
    // than one LIST page holds (1000).
    let m = contract::metric(1);
    let mut batch = gnocchi_storage::WriteBatch::default();
    let starts: Vec<i64> = (0..1100).map(|i| (i - 50) * contract::G1 * 3600).collect();
    for &start in starts.iter().rev() {
        batch.splits.push((
            contract::split(m, carbonara::Method::Mean, contract::G1, start),
            start.to_le_bytes().to_vec(),
        ));
    }
    for i in 0..100 {
        batch
            .raw
            .push((contract::metric(1000 + i), vec![i as u8; 10]));
    }
    store.write(batch).await.unwrap();
    let listed = store
        .list_split_keys(&[(m, carbonara::Method::Mean, contract::G1)])
        .await
        .unwrap();
    assert_eq!(
        listed[0].iter().map(|k| k.start).collect::<Vec<_>>(),
        starts
    );
    let refs: Vec<_> = starts
        .iter()
        .map(|&s| contract::split(m, carbonara::Method::Mean, contract::G1, s))
        .collect();
    let got = store.get_splits(&refs).await.unwrap();
    assert!(
        got.iter()
            .zip(&starts)
            .all(|(g, s)| g.as_deref() == Some(&s.to_le_bytes()[..]))
    );
    let ids: Vec<_> = (0..100).map(|i| contract::metric(1000 + i)).collect();
    assert!(
        store
            .get_raw(&ids)
            .await
            .unwrap()
            .iter()
            .enumerate()
            .all(|(i, r)| r.as_deref() == Some(&vec![i as u8; 10][..]))
    );
    let mut all = ids.clone();
    all.push(m);
    store.delete_metrics(&all).await.unwrap();
    assert!(server.files("many-aggregates").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn s3_aggregates_write_throughput() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let store = S3Aggregates::connect(server.config("bench")).await.unwrap();
    contract::aggregates_bench("s3s-fs", &store, 500).await;
}

// ---------------------------------------------------------------------------
// S3Incoming

async fn incoming(server: &S3Server, prefix: &str, sacks: u32) -> S3Incoming {
    S3Incoming::connect(&server.config(prefix), sacks)
        .await
        .unwrap()
}

#[tokio::test]
async fn incoming_take_commit_release() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let inc = incoming(&server, "take", 4).await;
    contract::incoming_take_commit_release(&inc).await;
    // Everything committed: only the sack count remains.
    assert_eq!(server.files("take-measure"), vec!["gnocchi-config"]);
}

#[tokio::test]
async fn incoming_tokens() {
    let Some(server) = S3Server::start() else {
        return;
    };
    contract::incoming_tokens(&incoming(&server, "tokens", 8).await).await;
}

#[tokio::test]
async fn incoming_many_metrics() {
    let Some(server) = S3Server::start() else {
        return;
    };
    contract::incoming_many(&incoming(&server, "many", 16).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incoming_concurrent_takes_and_adds() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let inc: Arc<dyn Incoming> = Arc::new(incoming(&server, "concurrent", 2).await);
    contract::incoming_concurrent(inc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sacks_are_found_across_processes() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let waiter: Arc<dyn Incoming> = Arc::new(incoming(&server, "notify", 8).await);
    // Same handle (reported at once), then another handle standing for an
    // API process (found by polling).
    let latency = contract::incoming_notifications(waiter.clone(), waiter.clone()).await;
    let adder: Arc<dyn Incoming> = Arc::new(incoming(&server, "notify", 8).await);
    let latency2 = contract::incoming_notifications(waiter.clone(), adder).await;
    println!("woken {latency:?} / {latency2:?} after add_measures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_sacks_are_reported_at_start_and_again_after_a_commit() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let adder = incoming(&server, "pending", 8).await;
    let m = contract::metric(5);
    adder.add_measures(batch(&[m], 0, 2)).await.unwrap();
    // A worker starting now still learns of the pending sack.
    let waiter = incoming(&server, "pending", 8).await;
    let mut got = waiter.wait_for_new(Duration::from_secs(10)).await;
    got.extend(waiter.wait_for_new(Duration::from_millis(100)).await);
    assert_eq!(got, vec![sack_of(m, 8)]);
    // Still full, already reported: not reported again...
    assert!(
        waiter
            .wait_for_new(Duration::from_millis(1500))
            .await
            .is_empty()
    );
    // ...until this worker processed it and something is still (or again) there.
    let taken = waiter.take(sack_of(m, 8)).await.unwrap();
    adder.add_measures(batch(&[m], 10, 2)).await.unwrap();
    waiter.commit(taken).await.unwrap();
    let got = waiter.wait_for_new(Duration::from_secs(5)).await;
    assert_eq!(got, vec![sack_of(m, 8)]);
}

#[tokio::test]
async fn the_stored_sack_count_wins_and_objects_are_upstreams() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let first = incoming(&server, "layout", 8).await;
    assert_eq!(first.sacks(), 8);
    assert_eq!(incoming(&server, "layout", 128).await.sacks(), 8);
    assert!(
        S3Incoming::connect(&server.config("layout0"), 0)
            .await
            .is_err()
    );
    let m = contract::metric(3);
    first
        .add_measures(vec![(m, measures(&[(1_000, 1.5), (2_000, -2.0)]))])
        .await
        .unwrap();
    first
        .add_measures(vec![(m, measures(&[(3_000, 4.0)]))])
        .await
        .unwrap();
    // Upstream's bucket, config object and names:
    // `<sack>-<total>/<metric>/<uuid>_<YYYYmmdd_HH:MM:SS>`, 16-byte records.
    let root = server.dir.path().join("layout-measure");
    assert_eq!(
        std::fs::read_to_string(root.join("gnocchi-config")).unwrap(),
        "{\"sacks\": 8}"
    );
    let files = server.files("layout-measure");
    assert_eq!(files.len(), 3, "{files:?}");
    let objects: Vec<&String> = files.iter().filter(|f| *f != "gnocchi-config").collect();
    for f in &objects {
        let parts: Vec<&str> = f.split('/').collect();
        assert_eq!(parts[0], format!("{}-8", sack_of(m, 8)));
        assert_eq!(parts[1], m.to_string());
        let (id, when) = parts[2].split_once('_').unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{f}");
        assert_eq!(when.len(), "20261207_14:15:16".len(), "{f}");
    }
    let sizes: Vec<u64> = objects
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).unwrap().len())
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), 48);
    let mut want = Vec::new();
    for (ts, v) in [(1_000i64, 1.5f64), (2_000, -2.0)] {
        want.extend_from_slice(&ts.to_le_bytes());
        want.extend_from_slice(&v.to_le_bytes());
    }
    assert!(
        objects
            .iter()
            .any(|f| std::fs::read(root.join(f)).unwrap() == want)
    );
    // A crashed worker's lease is just forgotten: the measures are still there.
    let taken = first.take(sack_of(m, 8)).await.unwrap();
    assert_eq!(
        taken.measures[&m],
        measures(&[(1_000, 1.5), (2_000, -2.0), (3_000, 4.0)])
    );
    drop(taken);
    let other = incoming(&server, "layout", 8).await;
    let again = other.take(sack_of(m, 8)).await.unwrap();
    assert_eq!(again.measures[&m].len(), 3);
    other.commit(again).await.unwrap();
    assert_eq!(server.files("layout-measure"), vec!["gnocchi-config"]);
}

#[tokio::test]
async fn change_sacks_is_refused_while_measures_are_pending() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let config = server.config("resize");
    let inc = S3Incoming::connect(&config, 8).await.unwrap();
    let m = contract::metric(9);
    inc.add_measures(batch(&[m], 0, 3)).await.unwrap();
    let err = S3Incoming::change_sacks(&config, 16).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Cannot change sack when non-empty backlog. Process remaining 3 measures"),
        "{err}"
    );
    let taken = inc.take(sack_of(m, 8)).await.unwrap();
    inc.commit(taken).await.unwrap();
    assert_eq!(S3Incoming::change_sacks(&config, 16).await.unwrap(), 8);
    assert_eq!(S3Incoming::change_sacks(&config, 16).await.unwrap(), 16);
    assert_eq!(S3Incoming::connect(&config, 8).await.unwrap().sacks(), 16);
    assert!(S3Incoming::change_sacks(&config, 0).await.is_err());
}

/// The Python of a venv holding gnocchi 4.7.1 and boto3.
fn upstream_python() -> Option<PathBuf> {
    let python = std::env::var_os("GNOCCHI_TEST_UPSTREAM_PYTHON").filter(|p| !p.is_empty());
    if python.is_none() {
        println!("skipped (GNOCCHI_TEST_UPSTREAM_PYTHON unset)");
    }
    python.map(PathBuf::from)
}

fn run_upstream(python: &PathBuf, server: &S3Server, prefix: &str, args: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/upstream_s3_incoming.py");
    let out = Command::new(python)
        .arg(script)
        .args([&server.endpoint, ACCESS_KEY, SECRET_KEY, prefix, "8"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "upstream's driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn upstream_and_gnocchid_read_each_others_measures() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let Some(python) = upstream_python() else {
        return;
    };
    // Upstream's driver creates the bucket, stores 8 sacks and writes.
    let m = uuid::Uuid::parse_str("9f3c1a9e-0f3e-4b5a-9a43-0c1d2e3f4a5b").unwrap();
    run_upstream(
        &python,
        &server,
        "interop",
        &[
            "write",
            &m.to_string(),
            "1425600000000000000:1.5",
            "1425600060000000000:-2.25",
        ],
    );
    run_upstream(
        &python,
        &server,
        "interop",
        &["write", &m.to_string(), "1425600120000000000:3e300"],
    );
    let inc = incoming(&server, "interop", 64).await;
    assert_eq!(inc.sacks(), 8, "upstream's stored sack count wins");
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 3);
    assert_eq!(backlog.per_metric[&m], 2);
    let taken = inc.take(sack_of(m, 8)).await.unwrap();
    let mut got = taken.measures[&m].clone();
    got.sort_by_key(|p| p.timestamp);
    assert_eq!(
        got,
        measures(&[
            (1_425_600_000_000_000_000, 1.5),
            (1_425_600_060_000_000_000, -2.25),
            (1_425_600_120_000_000_000, 3e300),
        ])
    );
    inc.commit(taken).await.unwrap();
    assert_eq!(server.files("interop-measure"), vec!["gnocchi-config"]);

    // And the other way: upstream's metricd reads (and deletes) what we wrote.
    let n = contract::metric(2);
    inc.add_measures(vec![(n, measures(&[(5_000_000_000, 0.5)]))])
        .await
        .unwrap();
    inc.add_measures(vec![(n, measures(&[(6_000_000_000, -1.0)]))])
        .await
        .unwrap();
    let read = run_upstream(&python, &server, "interop", &["read"]);
    let read: serde_json::Value = serde_json::from_str(&read).unwrap();
    let mut points: Vec<(i64, f64)> = read[n.to_string()]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    points.sort_by_key(|p| p.0);
    assert_eq!(points, vec![(5_000_000_000, 0.5), (6_000_000_000, -1.0)]);
    assert_eq!(inc.backlog().await.unwrap().measures, 0);
}
