//! The Ceph drivers against a real Ceph cluster whose configuration file is
//! `GNOCCHI_TEST_CEPH_CONF` (pool `GNOCCHI_TEST_CEPH_POOL`, default
//! `gnocchi`); skipped when it is unset. `eval "$(scripts/ceph-test-up.sh)"`
//! starts a throwaway one. Every test works in its own RADOS namespace of the
//! pool, so tests never see each other's objects.
//!
//! `cargo test -p gnocchi-storage --features ceph --test ceph_drivers`
#![cfg(feature = "ceph")]

mod contract;

use contract::*;
use gnocchi_storage::ceph::{CephAggregates, CephIncoming, CephOptions};
use gnocchi_storage::{Aggregates, Incoming, WriteBatch, sack_of};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn options() -> Option<CephOptions> {
    match std::env::var("GNOCCHI_TEST_CEPH_CONF") {
        Ok(conf) if !conf.is_empty() => Some(CephOptions {
            pool: std::env::var("GNOCCHI_TEST_CEPH_POOL")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "gnocchi".into()),
            conffile: conf,
            ..Default::default()
        }),
        _ => {
            println!("skipped (GNOCCHI_TEST_CEPH_CONF unset)");
            None
        }
    }
}

async fn aggregates(name: &str) -> Option<CephAggregates> {
    let o = options()?;
    Some(
        CephAggregates::connect_in_namespace(o, unique(name))
            .await
            .unwrap(),
    )
}

async fn incoming(sacks: u32, ns: &str) -> Option<CephIncoming> {
    let o = options()?;
    Some(
        CephIncoming::connect_in_namespace(o, sacks, ns.to_string())
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn aggregates_round_trip() {
    let Some(store) = aggregates("round-trip").await else {
        return;
    };
    contract::aggregates_round_trip(&store).await;
}

#[tokio::test]
async fn aggregates_extremes() {
    let Some(store) = aggregates("extremes").await else {
        return;
    };
    contract::aggregates_extremes(&store).await;
}

#[tokio::test]
async fn incoming_take_commit_release() {
    let Some(inc) = incoming(4, &unique("take")).await else {
        return;
    };
    contract::incoming_take_commit_release(&inc).await;
}

#[tokio::test]
async fn incoming_tokens() {
    let Some(inc) = incoming(8, &unique("tokens")).await else {
        return;
    };
    contract::incoming_tokens(&inc).await;
}

#[tokio::test]
async fn incoming_many() {
    let Some(inc) = incoming(16, &unique("many")).await else {
        return;
    };
    contract::incoming_many(&inc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incoming_concurrent() {
    let Some(inc) = incoming(4, &unique("concurrent")).await else {
        return;
    };
    contract::incoming_concurrent(Arc::new(inc)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sacks_are_found_across_processes() {
    let ns = unique("notify");
    let Some(waiter) = incoming(8, &ns).await else {
        return;
    };
    let waiter: Arc<dyn Incoming> = Arc::new(waiter);
    let latency = contract::incoming_notifications(waiter.clone(), waiter.clone()).await;
    // The first round leaves its measures pending, and the once-a-second
    // probe may report those sacks again (a false positive the trait allows):
    // process them and let a probe pass before the second round.
    for s in 0..waiter.sacks() {
        let taken = waiter.take(s).await.unwrap();
        waiter.commit(taken).await.unwrap();
    }
    for _ in 0..5 {
        if waiter
            .wait_for_new(Duration::from_millis(1500))
            .await
            .is_empty()
        {
            break;
        }
    }
    // Another handle stands for an API process: found by the sack probe.
    let adder: Arc<dyn Incoming> = Arc::new(incoming(8, &ns).await.unwrap());
    let latency2 = contract::incoming_notifications(waiter, adder).await;
    println!("woken {latency:?} (same process) / {latency2:?} (another process)");
}

#[tokio::test]
async fn the_stored_sack_count_wins_and_changes_only_when_empty() {
    let ns = unique("sacks");
    let Some(first) = incoming(8, &ns).await else {
        return;
    };
    let second = incoming(32, &ns).await.unwrap();
    assert_eq!(second.sacks(), 8, "the first process's count is stored");
    first.add_measures(batch(&[metric(1)], 0, 2)).await.unwrap();
    let o = options().unwrap();
    let err = CephIncoming::change_sacks_in_namespace(o.clone(), 16, ns.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("non-empty backlog"), "{err}");
    let s = sack_of(metric(1), 8);
    let taken = first.take(s).await.unwrap();
    first.commit(taken).await.unwrap();
    let old = CephIncoming::change_sacks_in_namespace(o, 16, ns.clone())
        .await
        .unwrap();
    assert_eq!(old, 8);
    assert_eq!(incoming(4, &ns).await.unwrap().sacks(), 16);
}

#[tokio::test]
async fn a_split_and_its_index_are_named_as_upstream_names_them() {
    let ns = unique("names");
    let Some(o) = options() else { return };
    let store = CephAggregates::connect_in_namespace(o.clone(), ns.clone())
        .await
        .unwrap();
    let m = metric(7);
    let s = split(m, carbonara::Method::Mean, G60, 1_425_600_000 * G1);
    store
        .write(WriteBatch {
            raw: vec![(m, b"raw".to_vec())],
            splits: vec![(s, b"split".to_vec())],
            ..Default::default()
        })
        .await
        .unwrap();
    let out = python(
        &o,
        &ns,
        "objs = sorted(o.key for o in io.list_objects())\n\
         print(objs)\n\
         with rados.ReadOpCtx() as op:\n\
         \x20   it, _ = io.get_omap_vals(op, '', '', -1)\n\
         \x20   io.operate_read_op(op, 'gnocchi_%s_none_v3' % METRIC)\n\
         \x20   print(sorted(k for k, v in it))\n\
         print(io.read('gnocchi_%s_none_v3' % METRIC))\n",
        &m.to_string(),
    );
    let Some(out) = out else { return };
    let name = format!("gnocchi_{m}_1425600000.0_mean_60.0_v3");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("['{name}', 'gnocchi_{m}_none_v3']"),
            format!("['{name}']"),
            "b'raw'".to_string()
        ],
        "{out}"
    );
}

/// Measures written by upstream's own incoming driver (gnocchi 4.7.1 from
/// `/work/upstream-venv`, or `GNOCCHI_TEST_UPSTREAM_PYTHON`, with Debian's
/// python3-rados) are read back, and ours are read by upstream's.
#[tokio::test]
async fn measures_written_by_upstream_are_read_back() {
    let ns = unique("upstream");
    let Some(inc) = incoming(8, &ns).await else {
        return;
    };
    let m = uuid::Uuid::parse_str("5b1e5f07-fd8e-4e0c-a1b3-3e6a1f0d2c11").unwrap();
    let script = "import numpy, datetime\n\
        from gnocchi import incoming as inc\n\
        from gnocchi.incoming import ceph as ic\n\
        import types, uuid\n\
        d = ic.CephStorage.__new__(ic.CephStorage)\n\
        d.rados, d.ioctx = r, io\n\
        d.OMAP_READ_FLAGS = rados.LIBRADOS_OPERATION_BALANCE_READS | rados.LIBRADOS_OPERATION_SKIPRWLOCKS\n\
        d.OMAP_WRITE_FLAGS = rados.LIBRADOS_OPERATION_SKIPRWLOCKS\n\
        mid = uuid.UUID(METRIC)\n\
        print(d.NUM_SACKS)\n\
        d.add_measures_batch({mid: [inc.Measure(numpy.datetime64(1425600000 + i, 's'), i * 1.5) for i in range(3)]})\n\
        d.add_measures_batch({mid: [inc.Measure(numpy.datetime64(1425600010, 's'), -1.0)]})\n\
        print(d.measures_report(True)['summary'])\n";
    let Some(out) = upstream_python(&ns, script, &m.to_string()) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "8", "upstream reads our sack count: {out}");
    // Upstream's report counts omap entries (batches) as "measures".
    assert_eq!(lines[1], "{'metrics': 1, 'measures': 2}", "{out}");
    let taken = inc.take(sack_of(m, 8)).await.unwrap();
    let got: Vec<(i64, f64)> = taken.measures[&m]
        .iter()
        .map(|p| (p.timestamp, p.value))
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(|p| p.0);
    assert_eq!(
        got_sorted,
        vec![
            (1_425_600_000 * G1, 0.0),
            (1_425_600_001 * G1, 1.5),
            (1_425_600_002 * G1, 3.0),
            (1_425_600_010 * G1, -1.0)
        ]
    );
    inc.commit(taken).await.unwrap();
    assert_eq!(inc.backlog().await.unwrap().measures, 0);

    // And the other way round: upstream's metricd reads what we wrote.
    inc.add_measures(vec![(m, measures_of(&[(1_425_600_000 * G1, 2.5)]))])
        .await
        .unwrap();
    let script2 = "from gnocchi.incoming import ceph as ic\n\
        import uuid\n\
        d = ic.CephStorage.__new__(ic.CephStorage)\n\
        d.rados, d.ioctx = r, io\n\
        d.OMAP_READ_FLAGS = rados.LIBRADOS_OPERATION_BALANCE_READS | rados.LIBRADOS_OPERATION_SKIPRWLOCKS\n\
        d.OMAP_WRITE_FLAGS = rados.LIBRADOS_OPERATION_SKIPRWLOCKS\n\
        mid = uuid.UUID(METRIC)\n\
        with d.process_measures_for_sack(d.sack_for_metric(mid)) as ms:\n\
        \x20   print([(str(t), v) for t, v in ms[mid].tolist()])\n";
    let out = upstream_python(&ns, script2, &m.to_string()).unwrap();
    assert!(out.contains("2.5"), "{out}");
    assert_eq!(
        inc.backlog().await.unwrap().measures,
        0,
        "upstream committed"
    );
}

fn measures_of(p: &[(i64, f64)]) -> Vec<carbonara::Measure> {
    p.iter()
        .map(|(t, v)| carbonara::Measure::new(*t, *v))
        .collect()
}

/// Run `body` in /usr/bin/python3 with python3-rados, `io` an I/O context on
/// the test pool in namespace `ns`, `METRIC` the given string. `None` (with a
/// message) if python3-rados is missing.
fn python(o: &CephOptions, ns: &str, body: &str, metric: &str) -> Option<String> {
    run_python("/usr/bin/python3", None, o, ns, body, metric)
}

/// As [`python`], in upstream's virtualenv with Debian's `rados` module added.
fn upstream_python(ns: &str, body: &str, metric: &str) -> Option<String> {
    let o = options()?;
    let py = std::env::var("GNOCCHI_TEST_UPSTREAM_PYTHON")
        .unwrap_or_else(|_| "/work/upstream-venv/bin/python".into());
    if !std::path::Path::new(&py).exists() {
        println!("skipped (no upstream gnocchi at {py}; set GNOCCHI_TEST_UPSTREAM_PYTHON)");
        return None;
    }
    // Only the rados extension of Debian's python3-rados, not all of dist-packages.
    let dir = std::env::temp_dir().join(format!("gnocchi-rados-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let so = std::fs::read_dir("/usr/lib/python3/dist-packages")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rados.") && n.ends_with(".so"))
        });
    let Some(so) = so else {
        println!("skipped (python3-rados not installed)");
        return None;
    };
    let link = dir.join(so.file_name().unwrap());
    let _ = std::os::unix::fs::symlink(&so, &link);
    run_python(&py, Some(&dir), &o, ns, body, metric)
}

fn run_python(
    py: &str,
    path: Option<&std::path::Path>,
    o: &CephOptions,
    ns: &str,
    body: &str,
    metric: &str,
) -> Option<String> {
    let prelude = format!(
        "import rados\n\
         r = rados.Rados(conffile={conf:?})\n\
         r.connect()\n\
         io = r.open_ioctx({pool:?})\n\
         io.set_namespace({ns:?})\n\
         METRIC = {metric:?}\n",
        conf = o.conffile,
        pool = o.pool,
    );
    let mut cmd = Command::new(py);
    cmd.arg("-c").arg(format!("{prelude}{body}"));
    if let Some(p) = path {
        cmd.env("PYTHONPATH", p);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'rados'") {
        println!("skipped (python3-rados not installed)");
        return None;
    }
    assert!(out.status.success(), "{py}: {stderr}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
