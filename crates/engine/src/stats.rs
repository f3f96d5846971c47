//! What each metricd process tells `/v1/status` about itself: the sacks the
//! hash ring gives it and how many measures it processed over the last minute.
//!
//! [`ProcessingStats`] is kept by the [`Engine`]: metricd records every
//! committed sack's measures in a sliding window of one-second buckets, and
//! the metricd loop records its sacks whenever the ring changes. A process
//! sharing its sacks publishes a [`MemberStats`] snapshot through its
//! [`crate::Coordinator`] every [`PUBLISH_EVERY`], where any process of the
//! deployment (the API's `/v1/status`) reads every live member's; the embedded
//! default reads its engine's snapshot directly. The age of the oldest pending
//! measure is not published: it is read from the incoming store when the
//! status is asked (`gnocchi_storage::Backlog::oldest_pending`), for each
//! member's sacks.

use crate::Engine;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The span of the processing rate.
pub const WINDOW: Duration = Duration::from_secs(60);
const BUCKETS: usize = WINDOW.as_secs() as usize;

/// How often a member publishes its statistics.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// One member's statistics, as published and as `/v1/status` shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStats {
    /// The sacks this member processes, ascending (all of them while it
    /// knows no membership).
    pub sacks: Vec<u32>,
    /// Measures it took from its sacks and committed over the last
    /// [`WINDOW`] (or since it started, if that is shorter).
    pub measures_processed_last_minute: u64,
    /// How many seconds that count covers (at most 60).
    pub window_seconds: f64,
}

impl MemberStats {
    /// Measures per second over the window.
    pub fn measures_per_second(&self) -> f64 {
        if self.window_seconds > 0.0 {
            self.measures_processed_last_minute as f64 / self.window_seconds
        } else {
            0.0
        }
    }
}

/// A process's processing statistics (see the module documentation).
#[derive(Debug)]
pub struct ProcessingStats {
    started: Instant,
    /// Per second since `started` modulo [`BUCKETS`]: (that second, measures).
    buckets: Mutex<[(u64, u64); BUCKETS]>,
    /// The sacks the ring gives this process; `None`: every sack.
    sacks: Mutex<Option<Vec<u32>>>,
}

impl Default for ProcessingStats {
    fn default() -> Self {
        ProcessingStats {
            started: Instant::now(),
            buckets: Mutex::new([(u64::MAX, 0); BUCKETS]),
            sacks: Mutex::new(None),
        }
    }
}

impl ProcessingStats {
    /// `measures` were processed and committed now.
    pub fn record(&self, measures: u64) {
        if measures == 0 {
            return;
        }
        let second = self.started.elapsed().as_secs();
        let mut buckets = self.buckets.lock();
        let slot = &mut buckets[(second % BUCKETS as u64) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += measures;
    }

    /// The hash ring gave this process these sacks (`None`: all of them).
    pub fn set_sacks(&self, sacks: Option<Vec<u32>>) {
        *self.sacks.lock() = sacks;
    }

    /// The hash ring gave this process the sacks flagged in `mine`.
    pub(crate) fn set_mine(&self, mine: &[bool]) {
        let sacks = mine
            .iter()
            .enumerate()
            .filter(|(_, m)| **m)
            .map(|(s, _)| s as u32)
            .collect();
        self.set_sacks(Some(sacks));
    }

    /// The statistics now, with `nsacks` sacks in all.
    pub fn snapshot(&self, nsacks: u32) -> MemberStats {
        let elapsed = self.started.elapsed();
        let now = elapsed.as_secs();
        let processed = self
            .buckets
            .lock()
            .iter()
            .filter(|(second, _)| {
                *second != u64::MAX && now.saturating_sub(*second) < BUCKETS as u64
            })
            .map(|(_, n)| n)
            .sum();
        MemberStats {
            sacks: self
                .sacks
                .lock()
                .clone()
                .unwrap_or_else(|| (0..nsacks).collect()),
            measures_processed_last_minute: processed,
            window_seconds: elapsed.min(WINDOW).as_secs_f64().max(1.0),
        }
    }
}

impl Engine {
    /// This process's processing statistics now.
    pub fn stats(&self) -> MemberStats {
        self.stats.snapshot(self.incoming.sacks())
    }

    /// Publish this process's statistics through the coordinator every
    /// [`PUBLISH_EVERY`] until `shutdown` (a failure is logged once until it
    /// heals: the status then misses this member's figures, nothing else).
    pub(crate) async fn publish_stats(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(PUBLISH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            match self.coordinator.publish_stats(&self.stats()).await {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot publish this member's processing statistics; retrying");
                }
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_counts_what_was_recorded_and_the_sacks_default_to_all() {
        let s = ProcessingStats::default();
        s.record(5);
        s.record(0);
        s.record(7);
        let snap = s.snapshot(4);
        assert_eq!(snap.measures_processed_last_minute, 12);
        assert_eq!(snap.sacks, vec![0, 1, 2, 3]);
        assert_eq!(snap.window_seconds, 1.0);
        assert_eq!(snap.measures_per_second(), 12.0);
        s.set_sacks(Some(vec![1, 3]));
        assert_eq!(s.snapshot(4).sacks, vec![1, 3]);
    }

    #[test]
    fn a_bucket_older_than_the_window_is_forgotten() {
        let s = ProcessingStats {
            started: Instant::now() - Duration::from_secs(200),
            ..ProcessingStats::default()
        };
        // Seconds 130 (too old) and 150, 199 (within the last minute).
        {
            let mut b = s.buckets.lock();
            b[130 % BUCKETS] = (130, 1000);
            b[150 % BUCKETS] = (150, 3);
            b[199 % BUCKETS] = (199, 4);
        }
        let snap = s.snapshot(1);
        assert_eq!(snap.measures_processed_last_minute, 7);
        assert_eq!(snap.window_seconds, 60.0);
    }
}
