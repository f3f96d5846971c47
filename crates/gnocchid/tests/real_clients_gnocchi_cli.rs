//! The official CLI (`gnocchi` of gnocchiclient 7.2.0, and `openstack metric`
//! of python-openstackclient) runs every subcommand against the binary, and
//! prints what it prints against upstream Gnocchi 4.7.1.
//!
//! The command sequence is `tests/gnocchi_cli/commands.txt`; `run.py` runs it
//! (one CLI process per command) and normalizes only what legitimately differs
//! between two servers (generated ids, creation times, host:port, process
//! names, set orders: see run.py). Upstream's transcript,
//! `tests/gnocchi_cli/upstream-4.7.1.txt`, was recorded with the same script by
//! `scripts/record-cli-upstream.sh`. Skipped, saying so, when the client's venv
//! is missing (scripts/install-test-peers-clients.sh).

mod ingest_support;

use ingest_support::{Proc, free_tcp_port, gnocchid, http, poll, skip};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("GNOCCHI_TEST_GNOCCHICLIENT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/gnocchiclient-venv"));
    let py = venv.join("bin/python");
    (venv.join("bin/gnocchi").exists() && venv.join("bin/openstack").exists()).then_some(py)
}

#[test]
fn gnocchi_cli_prints_what_it_prints_against_upstream() {
    const TEST: &str = "gnocchi_cli_prints_what_it_prints_against_upstream";
    let Some(py) = python() else {
        skip(TEST, "the gnocchiclient venv is missing");
        return;
    };
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gnocchi_cli");
    let expected =
        std::fs::read_to_string(here.join("upstream-4.7.1.txt")).expect("upstream transcript");

    // Upstream's default archive policies and rule, as gnocchi-upgrade makes them.
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_tcp_port();
    let _server = Proc(
        gnocchid()
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gnocchid"),
    );
    let base = format!("127.0.0.1:{port}");
    let ready = poll(Duration::from_secs(15), || {
        http(&base, "GET", "/", &[], b"").ok().map(|_| ())
    });
    assert!(ready.is_some(), "gnocchid did not answer on port {port}");

    let out = Command::new(py)
        .arg(here.join("run.py"))
        .arg(format!("http://{base}"))
        .arg(here.join("commands.txt"))
        .output()
        .expect("run the CLI sequence");
    let got = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "run.py failed:\n{got}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Command by command, so that a failure names the command.
    let split = |t: &str| -> Vec<String> {
        let mut blocks: Vec<String> = Vec::new();
        for line in t.lines() {
            if line.starts_with("$ ") || blocks.is_empty() {
                blocks.push(String::new());
            }
            let last = blocks.last_mut().expect("a block");
            last.push_str(line);
            last.push('\n');
        }
        blocks
    };
    let (want, have) = (split(&expected), split(&got));
    let mismatches: Vec<String> = want
        .iter()
        .zip(have.iter())
        .filter(|(w, h)| w != h)
        .map(|(w, h)| format!("--- upstream 4.7.1:\n{w}+++ gnocchid:\n{h}"))
        .collect();
    assert!(
        mismatches.is_empty() && want.len() == have.len(),
        "{} of {} commands print otherwise than against upstream ({} vs {} commands):\n{}",
        mismatches.len(),
        want.len(),
        want.len(),
        have.len(),
        mismatches.join("\n")
    );
}
