//! `wait_for_new` on Swift, which has no notifications: sacks written by
//! this process are reported at once; sacks written by other processes are
//! found by polling, a `HEAD` of [`POLL_BATCH`] sack containers every
//! [`POLL_INTERVAL`] in turn (a container's `X-Container-Object-Count` is
//! exact, unlike the account listing's counts, which the container updater
//! refreshes only every few minutes). With 128 sacks every sack is looked at
//! every 8 seconds at 16 requests a second, a bounded idle load on the
//! cluster; metricd's periodic full pass finds anything this misses.

use super::client::SwiftClient;
use super::names::Containers;
use futures::StreamExt;
use parking_lot::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often other processes' writes are looked for.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Sacks looked at per poll.
const POLL_BATCH: u32 = 16;

pub(super) struct Wake {
    state: Mutex<State>,
    notify: Notify,
    polling: tokio::sync::Mutex<()>,
}

struct State {
    ready: Vec<u32>,
    flagged: Vec<bool>,
    /// The first sack of the next poll.
    cursor: u32,
    next_poll: Option<Instant>,
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

impl Wake {
    pub(super) fn new(nsacks: u32) -> Self {
        Wake {
            state: Mutex::new(State {
                ready: Vec::new(),
                flagged: vec![false; nsacks as usize],
                cursor: 0,
                next_poll: None,
            }),
            notify: Notify::new(),
            polling: tokio::sync::Mutex::new(()),
        }
    }

    /// This process wrote to these sacks: report them now.
    pub(super) fn written(&self, sacks: &[u32]) {
        {
            let mut st = self.state.lock();
            for &s in sacks {
                st.flag(s);
            }
        }
        self.notify.notify_waiters();
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
        client: &SwiftClient,
        containers: &Containers,
        nsacks: u32,
        leased: &(dyn Fn(u32) -> bool + Sync),
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
                self.poll(client, containers, nsacks, leased).await;
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

    async fn poll(
        &self,
        client: &SwiftClient,
        containers: &Containers,
        nsacks: u32,
        leased: &(dyn Fn(u32) -> bool + Sync),
    ) {
        let Ok(_one) = self.polling.try_lock() else {
            let _ = self.polling.lock().await;
            return;
        };
        let first = self.state.lock().cursor;
        let sacks: Vec<u32> = (0..POLL_BATCH.min(nsacks))
            .map(|i| (first + i) % nsacks)
            .collect();
        let counts: Vec<(u32, u64)> = futures::stream::iter(sacks)
            .map(|s| async move {
                match client.object_count(&containers.sack(nsacks, s)).await {
                    Ok(n) => (s, n.unwrap_or(0)),
                    Err(e) => {
                        tracing::warn!(sack = s, error = %e, "cannot look at a sack; looking again later");
                        (s, 0)
                    }
                }
            })
            .buffer_unordered(client.parallel)
            .collect()
            .await;
        let mut st = self.state.lock();
        for (s, n) in counts {
            if n > 0 && !leased(s) {
                st.flag(s);
            }
        }
        st.cursor = (first + POLL_BATCH.min(nsacks)) % nsacks;
        st.next_poll = Some(Instant::now() + POLL_INTERVAL);
    }
}
