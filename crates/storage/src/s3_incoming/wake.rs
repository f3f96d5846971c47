//! `wait_for_new` on S3, which has no notifications: sacks written by this
//! process are reported at once; sacks written by other processes are found
//! by polling, one delimited `LIST` of the bucket's top level (its common
//! prefixes are the sacks holding at least one object) every
//! [`POLL_INTERVAL`].
//!
//! A poll reports a sack when it holds objects and was not already reported
//! as holding objects, when this process committed or released it since
//! (whatever arrived while it was processed), or when it was last reported
//! [`REMIND_AFTER`] ago: measures written by other processes into a sack that
//! already held some are found within seconds, without a `LIST` per sack,
//! and a sack that stays full because another process owns it is not
//! reported at every poll. (Upstream's S3 driver has no
//! notification at all: metricd lists every sack every
//! `metric_processing_delay`; gnocchid still does that full pass too.)

use super::layout::parse_sack_name;
use crate::s3_client::{S3Bucket, backend};
use object_store::ObjectStore;
use parking_lot::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often other processes' writes are looked for.
pub(super) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A sack that still holds objects is reported again after this long.
pub(super) const REMIND_AFTER: Duration = Duration::from_secs(5);

/// After a poll that found new sacks, the next one comes this soon: a
/// request's objects are written in parallel, and a poll may see some only.
const FOLLOW_UP: Duration = Duration::from_millis(100);

pub(super) struct Wake {
    state: Mutex<State>,
    notify: Notify,
    /// One poll at a time.
    polling: tokio::sync::Mutex<()>,
}

struct State {
    /// Sacks to report at the next `wait_for_new`, without duplicates.
    ready: Vec<u32>,
    flagged: Vec<bool>,
    /// When sacks the last poll saw holding objects were last reported.
    reported: Vec<Option<Instant>>,
    /// Per sack, the generation of this process's last write to it.
    written: Vec<u64>,
    generation: u64,
    next_poll: Option<Instant>,
    /// Whether the last poll was a follow-up (no follow-up of a follow-up).
    followed_up: bool,
    /// Sack counts of other layouts already warned about.
    warned_totals: Vec<u32>,
}

impl Wake {
    pub(super) fn new(nsacks: u32) -> Self {
        let n = nsacks as usize;
        Wake {
            state: Mutex::new(State {
                ready: Vec::new(),
                flagged: vec![false; n],
                reported: vec![None; n],
                written: vec![0; n],
                generation: 0,
                next_poll: None,
                followed_up: false,
                warned_totals: Vec::new(),
            }),
            notify: Notify::new(),
            polling: tokio::sync::Mutex::new(()),
        }
    }

    /// This process wrote to these sacks: report them now.
    pub(super) fn written(&self, sacks: &[u32]) {
        {
            let mut st = self.state.lock();
            st.generation += 1;
            let generation = st.generation;
            for &s in sacks {
                st.written[s as usize] = generation;
                st.reported[s as usize] = Some(Instant::now());
                st.flag(s);
            }
        }
        self.notify.notify_waiters();
    }

    /// This process committed or released the sack: a later poll that still
    /// sees objects in it reports it.
    pub(super) fn processed(&self, sack: u32) {
        if let Some(r) = self.state.lock().reported.get_mut(sack as usize) {
            *r = None;
        }
    }

    fn drain(&self) -> Vec<u32> {
        let mut st = self.state.lock();
        let ready = std::mem::take(&mut st.ready);
        for &s in &ready {
            st.flagged[s as usize] = false;
        }
        ready
    }

    pub(super) async fn wait_for_new(
        &self,
        bucket: &S3Bucket,
        nsacks: u32,
        timeout: Duration,
    ) -> Vec<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ready = self.drain();
            if !ready.is_empty() {
                return ready;
            }
            let next_poll = self.state.lock().next_poll;
            if next_poll.is_none_or(|t| Instant::now() >= t) {
                self.poll(bucket, nsacks).await;
                let ready = self.drain();
                if !ready.is_empty() {
                    return ready;
                }
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Vec::new();
            }
            let until = next_poll.map_or(deadline, |t| t.min(deadline));
            let _ = tokio::time::timeout(until - now, notified).await;
        }
    }

    /// One delimited listing of the bucket's top level.
    async fn poll(&self, bucket: &S3Bucket, nsacks: u32) {
        let Ok(_one) = self.polling.try_lock() else {
            // Another caller is polling: wait for its result.
            let _ = self.polling.lock().await;
            return;
        };
        let generation = self.state.lock().generation;
        let listed = bucket.store.list_with_delimiter(None).await;
        let mut st = self.state.lock();
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %backend(e), "cannot list the measure bucket; polling again later");
                st.next_poll = Some(Instant::now() + POLL_INTERVAL);
                return;
            }
        };
        let mut full = vec![false; nsacks as usize];
        for prefix in &listed.common_prefixes {
            match parse_sack_name(prefix.as_ref()) {
                Some((n, total)) if total == nsacks && n < nsacks => full[n as usize] = true,
                Some((_, total)) if total != nsacks && !st.warned_totals.contains(&total) => {
                    st.warned_totals.push(total);
                    tracing::error!(
                        found = total,
                        used = nsacks,
                        "the measure bucket holds measures in sacks of another sack count; a process uses another number of sacks (restart every process after gnocchid change-sack-size)"
                    );
                }
                _ => {}
            }
        }
        let mut found = false;
        let now = Instant::now();
        for (s, &is_full) in full.iter().enumerate() {
            let due = st.reported[s].is_none_or(|at| now - at >= REMIND_AFTER);
            if is_full && due {
                st.flag(s as u32);
                st.reported[s] = Some(now);
                found = true;
            } else if !is_full && st.written[s] <= generation {
                st.reported[s] = None;
            }
        }
        let follow_up = found && !st.followed_up;
        st.followed_up = follow_up;
        st.next_poll = Some(Instant::now() + if follow_up { FOLLOW_UP } else { POLL_INTERVAL });
    }
}

impl State {
    fn flag(&mut self, s: u32) {
        if let Some(f) = self.flagged.get_mut(s as usize)
            && !*f
        {
            *f = true;
            self.ready.push(s);
        }
    }
}
