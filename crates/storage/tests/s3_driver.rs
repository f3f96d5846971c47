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

use common::TempDir;
use gnocchi_storage::Aggregates;
use gnocchi_storage::s3_aggregates::{S3Aggregates, S3Config};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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
