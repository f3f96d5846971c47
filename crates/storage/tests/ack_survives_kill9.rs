//! Measures acknowledged by a process that is then killed with SIGKILL are all
//! pending when the directory is reopened.
//!
//! The test re-executes its own binary with `GNOCCHI_STORAGE_KILL9_CHILD=<dir>`: the
//! child adds measures from several tasks and prints, for every acknowledged
//! batch, `<task> <count acknowledged so far>`; the parent kills it mid-flight.

mod common;

use common::*;
use gnocchi_storage::Incoming;
use gnocchi_storage::local_incoming::{LocalIncoming, LocalIncomingOptions};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const ENV: &str = "GNOCCHI_STORAGE_KILL9_CHILD";
const TASKS: u64 = 4;
const PER_BATCH: i64 = 50;

fn options() -> LocalIncomingOptions {
    // Small segments: the child rotates segments while it is killed.
    LocalIncomingOptions {
        segment_bytes: 256 << 10,
    }
}

/// Child mode: never returns.
fn child(dir: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let inc = std::sync::Arc::new(
            LocalIncoming::open_with_options(dir.as_ref(), 16, options()).unwrap(),
        );
        for task in 0..TASKS {
            let inc = inc.clone();
            tokio::spawn(async move {
                let m = metric(task);
                let mut acked: i64 = 0;
                loop {
                    inc.add_measures(vec![(m, points(acked, PER_BATCH))])
                        .await
                        .unwrap();
                    acked += PER_BATCH;
                    println!("{task} {acked}");
                }
            });
        }
        // The tasks never end; the parent kills this process.
        std::future::pending::<()>().await;
    });
    std::process::exit(0);
}

#[test]
fn acknowledged_measures_survive_kill9() {
    if let Ok(dir) = std::env::var(ENV) {
        child(&dir);
    }
    let dir = TempDir::new("kill9");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "acknowledged_measures_survive_kill9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut acked = vec![0i64; TASKS as usize];
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let mut it = line.split_whitespace();
        let (Some(task), Some(count)) = (
            it.next().and_then(|t| t.parse::<usize>().ok()),
            it.next().and_then(|c| c.parse().ok()),
        ) else {
            continue; // the test harness' own output
        };
        acked[task] = count;
        seen += 1;
        if seen == 2000 {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    // Lines already printed (acknowledged before the kill) are still in the pipe.
    for line in lines.map_while(|l| l.ok()) {
        let mut it = line.split_whitespace();
        if let (Some(Ok(task)), Some(Ok(count))) = (
            it.next().map(str::parse::<usize>),
            it.next().map(str::parse::<i64>),
        ) {
            acked[task] = count;
        }
    }
    child.wait().unwrap();
    assert_eq!(seen, 2000, "the child stopped early");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let inc = LocalIncoming::open_with_options(dir.path(), 16, options()).unwrap();
        let all = take_all(&inc).await;
        for task in 0..TASKS {
            let got = all.get(&metric(task)).cloned().unwrap_or_default();
            let want = acked[task as usize];
            assert!(
                got.len() as i64 >= want,
                "task {task}: {} pending, {want} acknowledged",
                got.len()
            );
            // Everything is there, in order, and nothing else (whole batches only).
            assert_eq!(got, points(0, got.len() as i64));
            assert_eq!(got.len() as i64 % PER_BATCH, 0);
        }
    });
}
