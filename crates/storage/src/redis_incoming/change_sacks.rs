//! `gnocchid change-sack-size` on Redis: the stored number of sacks changed
//! in one script that first checks that no measure is pending.

use super::RedisIncoming;
use super::codec::{array_of, bytes_of, int_of, unexpected};
use super::scripts::CHANGE_LUA;
use crate::redis_url::{backend, client, manager};
use crate::{Result, StorageError};
use redis::Value;

impl RedisIncoming {
    /// `gnocchid change-sack-size`, as upstream's `gnocchi-change-sack-size`:
    /// store `sacks` as the number of sacks of the Redis at `url`, and return
    /// the number stored before (`sacks` itself if none was stored yet, or if it
    /// is unchanged).
    ///
    /// Refused (a [`StorageError::Backend`] saying "Cannot change sack when
    /// non-empty backlog", with the number of pending measures) while any
    /// measure waits in any sack: measures are routed by `metric id mod sacks`,
    /// so those already in a sack would never be read again. `sacks` must be
    /// 1..=65535.
    ///
    /// The check and the change are one Lua script, so no `add_measures` can
    /// slip in between. Keys of the old layout left without data (an index
    /// whose lists are all empty, upstream's notification key) are deleted in
    /// the same script. Nothing else moves: an empty sack has no keys.
    ///
    /// Every gnocchid `api`, `metricd` and `statsd` process using this Redis
    /// must be restarted afterwards, as upstream requires: a running process
    /// keeps the count it read at start. Its `add_measures` then fail (the
    /// script sees the new count) rather than write into sacks that nobody
    /// processes, and its metricd sees only the old, empty sacks.
    pub async fn change_sacks(url: &str, sacks: u32) -> Result<u32> {
        Self::change_sacks_with_prefix(url, sacks, "").await
    }

    /// As [`RedisIncoming::change_sacks`], for a store opened with
    /// [`RedisIncoming::connect_with_prefix`].
    pub async fn change_sacks_with_prefix(url: &str, sacks: u32, prefix: &str) -> Result<u32> {
        crate::check_sack_count(sacks)?;
        let client = client(url)?;
        let mut conn = manager(&client).await?;
        let config = format!("{prefix}gnocchi-config");
        let reply: Value = redis::Script::new(CHANGE_LUA)
            .key(&config)
            .arg(prefix)
            .arg(sacks)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        let reply = array_of(reply, "change sacks")?;
        let [code, old, a, b] = reply.as_slice() else {
            return Err(unexpected("change sacks", &Value::Array(reply)));
        };
        let code = int_of(code, "change sacks")?;
        if code == 4 {
            let stored = bytes_of(old.clone(), "change sacks")?;
            return Err(StorageError::Corrupt(format!(
                "{config} field sacks is {:?}",
                String::from_utf8_lossy(&stored)
            )));
        }
        let old = u32::try_from(int_of(old, "change sacks")?)
            .map_err(|_| unexpected("change sacks", old))?;
        let (a, b) = (int_of(a, "change sacks")?, int_of(b, "change sacks")?);
        match code {
            0 => {
                tracing::debug!(
                    from = old,
                    to = sacks,
                    stale_keys_deleted = a,
                    "changed the number of sacks"
                );
                Ok(old)
            }
            1 => Err(StorageError::Backend(format!(
                "Cannot change sack when non-empty backlog. Process remaining {a} measures (of {b} metrics) and try again"
            ))),
            2 => {
                tracing::info!(sacks, "no sack count was stored yet, stored this one");
                Ok(old)
            }
            3 => Ok(old),
            _ => Err(unexpected("change sacks", &Value::Int(code))),
        }
    }
}
