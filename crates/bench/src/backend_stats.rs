//! Per-phase backend figures: how many requests a phase made to the incoming
//! and aggregate stores, how many bytes they moved and how long the callers
//! waited on them. On network backends processing is bound by round trips,
//! not by CPU, so these say where the time goes (and whether a change removed
//! requests or only moved them).
//!
//! The counts come from [`gnocchi_storage::stats::Counted`] wrapping the
//! stores; the bench reads a snapshot before and after each phase. A wrapper
//! sees calls and the objects they carry, not the driver's requests, so the
//! request count is derived per driver: on S3 and Ceph one request per object
//! (every object is its own GET or PUT), on Redis and the embedded stores one
//! per call (a pipelined round trip, a local transaction).

use gnocchi_storage::stats::{Op, StatsSnapshot};
use std::time::Duration;

/// How a store turns calls into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requests {
    /// One request per call (Redis pipelines, local stores).
    PerCall,
    /// One request per object (S3, Ceph).
    PerObject,
}

/// One store's counters over a phase.
pub struct StoreDelta<'a> {
    pub name: &'a str,
    pub stats: StatsSnapshot,
    pub requests: Requests,
}

impl StoreDelta<'_> {
    fn requests_of(&self, op: Op) -> u64 {
        let s = self.stats.get(op);
        match self.requests {
            Requests::PerCall => s.calls,
            // A call without objects (an empty batch) is no request.
            Requests::PerObject => s.objects,
        }
    }

    pub fn requests(&self) -> u64 {
        Op::ALL.iter().map(|op| self.requests_of(*op)).sum()
    }
}

/// The totals of a phase: requests, bytes, wait.
pub struct PhaseTotals {
    pub requests: u64,
    pub bytes: u64,
    pub wait: Duration,
}

pub fn totals(stores: &[StoreDelta<'_>]) -> PhaseTotals {
    PhaseTotals {
        requests: stores.iter().map(StoreDelta::requests).sum(),
        bytes: stores.iter().map(|s| s.stats.total().bytes).sum(),
        wait: stores.iter().map(|s| s.stats.total().wait).sum(),
    }
}

/// `aggregates: get_raw 8 calls, 5000 requests, 1.2 MB, waited 3.40 s (0.43 s
/// per call) = 12%; ...`: every operation used in the phase, with its share
/// of `workers` × `wall`.
pub fn note(stores: &[StoreDelta<'_>], workers: usize, wall: Duration) -> String {
    let budget = (wall.as_secs_f64() * workers as f64).max(1e-9);
    let mut parts = Vec::new();
    for store in stores {
        let mut ops = Vec::new();
        for op in Op::ALL {
            let s = store.stats.get(op);
            if s.calls == 0 {
                continue;
            }
            let wait = s.wait.as_secs_f64();
            ops.push(format!(
                "{} {} calls, {} requests, {}, waited {:.2} s ({:.2} ms per call) = {:.0}%",
                op.name(),
                s.calls,
                store.requests_of(op),
                bytes(s.bytes),
                wait,
                wait * 1e3 / s.calls as f64,
                wait * 100.0 / budget
            ));
        }
        if !ops.is_empty() {
            parts.push(format!("{}: {}", store.name, ops.join("; ")));
        }
    }
    let t = totals(stores);
    format!(
        "backend over {workers} workers x {:.2} s: {} requests, {}, waited {:.2} s = {:.0}% [{}]",
        wall.as_secs_f64(),
        t.requests,
        bytes(t.bytes),
        t.wait.as_secs_f64(),
        t.wait.as_secs_f64() * 100.0 / budget,
        parts.join(" | ")
    )
}

fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / f64::from(1u32 << 20))
    } else if n >= 1 << 10 {
        format!("{:.1} KB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnocchi_storage::stats::OpStats;

    #[test]
    fn requests_per_driver() {
        let mut stats = StatsSnapshot::default();
        stats.ops[Op::ALL.iter().position(|o| *o == Op::GetSplits).unwrap()] = OpStats {
            calls: 2,
            objects: 120,
            bytes: 4096,
            wait: Duration::from_millis(500),
        };
        let s3 = StoreDelta {
            name: "aggregates",
            stats: stats.clone(),
            requests: Requests::PerObject,
        };
        let redis = StoreDelta {
            name: "aggregates",
            stats,
            requests: Requests::PerCall,
        };
        assert_eq!((s3.requests(), redis.requests()), (120, 2));
        let n = note(&[s3], 2, Duration::from_secs(1));
        assert!(
            n.contains("get_splits 2 calls, 120 requests, 4.0 KB"),
            "{n}"
        );
        assert!(n.contains("= 25%"), "{n}");
    }
}
