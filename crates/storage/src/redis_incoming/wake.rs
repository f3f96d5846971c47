//! Waking metricd: one background subscription to every sack's channel
//! (reconnected with backoff, checked by a ping) marks the sacks notified
//! since the last `wait_for_new`; after each (re)subscription the sacks whose
//! index exists are marked too, so no message missed while disconnected is
//! lost.

use super::RedisIncoming;
use crate::redis_url::backend;
use crate::{Result, StorageError};
use futures::StreamExt;
use parking_lot::Mutex;
use redis::Value;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Sacks notified since the last `wait_for_new`, and the waiters to wake.
pub(super) struct Wake {
    pub(super) dirty: Mutex<Dirty>,
    pub(super) notify: Notify,
}

pub(super) struct Dirty {
    pub(super) flags: Vec<bool>,
    pub(super) list: Vec<u32>,
}

impl Wake {
    pub(super) fn mark(&self, sacks: impl IntoIterator<Item = u32>) {
        let mut new = false;
        {
            let mut d = self.dirty.lock();
            for s in sacks {
                if let Some(f) = d.flags.get_mut(s as usize)
                    && !*f
                {
                    *f = true;
                    d.list.push(s);
                    new = true;
                }
            }
        }
        if new {
            self.notify.notify_waiters();
        }
    }

    pub(super) fn drain(&self) -> Vec<u32> {
        let mut d = self.dirty.lock();
        let list = std::mem::take(&mut d.list);
        for &s in &list {
            d.flags[s as usize] = false;
        }
        list
    }
}

impl RedisIncoming {
    pub(super) fn ensure_subscriber(&self) {
        let mut sub = self.subscriber.lock();
        if sub.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let names: Vec<String> = (0..self.nsacks).map(|s| self.sack_name(s)).collect();
        *sub = Some(tokio::spawn(subscribe_loop(
            self.client.clone(),
            self.conn.clone(),
            self.wake.clone(),
            names,
        )));
    }
}

/// Keep a subscription to every sack's channel, reconnecting with backoff.
async fn subscribe_loop(
    client: redis::Client,
    conn: ConnectionManager,
    wake: Arc<Wake>,
    names: Vec<String>,
) {
    let index: HashMap<String, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i as u32))
        .collect();
    let mut delay = Duration::from_millis(100);
    loop {
        match subscribe_once(&client, conn.clone(), &wake, &names, &index).await {
            Ok(()) => {
                tracing::warn!("redis notification subscription closed, reconnecting");
                delay = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis notification subscription failed, retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe_once(
    client: &redis::Client,
    mut conn: ConnectionManager,
    wake: &Wake,
    names: &[String],
    index: &HashMap<String, u32>,
) -> Result<()> {
    let pubsub = client.get_async_pubsub().await.map_err(backend)?;
    let (mut sink, mut stream) = pubsub.split();
    sink.subscribe(names).await.map_err(backend)?;
    // Measures added while we were not subscribed sent messages nobody heard:
    // every sack whose index exists has pending data.
    let mut pipe = redis::pipe();
    for n in names {
        pipe.exists(n);
    }
    let exists: Vec<bool> = pipe.query_async(&mut conn).await.map_err(backend)?;
    wake.mark(
        exists
            .iter()
            .enumerate()
            .filter(|(_, e)| **e)
            .map(|(s, _)| s as u32),
    );
    // A ping every 30 s detects a connection that died silently.
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => {
                    if let Some(&s) = index.get(msg.get_channel_name()) {
                        wake.mark([s]);
                    }
                }
                None => return Ok(()),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(Duration::from_secs(10), sink.ping::<Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(backend(e)),
                    Err(_) => return Err(StorageError::Backend("redis: subscription ping timed out".into())),
                }
            }
        }
    }
}
