//! Redis connection set-up shared by the Redis drivers: upstream's `redis_url`
//! syntax, and connection settings suited to large batches.
//!
//! Upstream (`gnocchi/common/redis.py`) reads `redis://[:password@]host[:port][/][?db=N&password=P&...]`:
//! the database and most options are query arguments, and a URL without a port
//! is a Unix socket whose path is the URL path. The `redis` crate takes the
//! database from the path (`redis://host:port/N`) and Unix sockets as
//! `redis+unix:///path?db=N&pass=P`. [`client`] accepts both spellings:
//!
//! - `?db=N` wins over a `/N` path;
//! - `?password=P` (and `?username=U`) become the URL's credentials;
//! - `redis:///path/to.sock` (no host, no port) and `unix:///path` are Unix sockets;
//! - `?ssl=…`/`rediss://` and `?sentinel=…` are refused with a clear error
//!   (this build has no TLS and no Sentinel support);
//! - upstream's pool and timeout tuning arguments (`socket_timeout`,
//!   `health_check_interval`…) are accepted and ignored.

use crate::{Result, StorageError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Longest a command may take before the connection is considered broken:
/// a `take` of a big sack or a pipeline of thousands of splits is one reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn backend(e: redis::RedisError) -> StorageError {
    StorageError::Redis(e)
}

fn invalid(url: &str, why: &str) -> StorageError {
    StorageError::InvalidRedisUrl {
        url: redact(url),
        reason: why.to_owned(),
        source: None,
    }
}

/// As [`invalid`], saying why with a library's error, kept as the source.
fn invalid_because(url: &str, e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::InvalidRedisUrl {
        url: redact(url),
        reason: e.to_string(),
        source: Some(Box::new(e)),
    }
}

/// The URL with its password hidden, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "password" || k == "pass" {
                        "***".to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "<unparsable>".to_string(),
    }
}

/// Rewrite an upstream-style Redis URL into the `redis` crate's syntax
/// (for other Redis users of the same `redis_url`, e.g. coordination).
pub fn normalize(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url).map_err(|e| invalid_because(url, e))?;
    let scheme = parsed.scheme();
    if scheme == "rediss" {
        return Err(invalid(
            url,
            "TLS (rediss://) is not supported by this build",
        ));
    }
    let unix_scheme = matches!(scheme, "unix" | "redis+unix");
    if !unix_scheme && scheme != "redis" {
        return Err(invalid(url, "the scheme must be redis:// or unix://"));
    }
    let mut db: Option<String> = None;
    let mut password: Option<String> = None;
    let mut username: Option<String> = None;
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "db" => db = Some(v.into_owned()),
            "password" | "pass" => password = Some(v.into_owned()),
            "username" | "user" => username = Some(v.into_owned()),
            "ssl" if matches!(v.as_ref(), "" | "0" | "false" | "False") => {}
            "ssl" | "ssl_certfile" | "ssl_keyfile" | "ssl_ca_certs" => {
                return Err(invalid(url, "TLS (ssl=…) is not supported by this build"));
            }
            "sentinel" | "sentinel_fallback" => {
                return Err(invalid(
                    url,
                    "Redis Sentinel is not supported by this build",
                ));
            }
            _ => {} // upstream's connection pool tuning: not needed here
        }
    }
    if let Some(db) = &db {
        db.parse::<u32>()
            .map_err(|_| invalid(url, "db must be a non-negative integer"))?;
    }
    let decode = |s: &str| {
        percent_encoding_decode(s).ok_or_else(|| invalid(url, "credentials are not valid UTF-8"))
    };
    if password.is_none()
        && let Some(p) = parsed.password()
    {
        password = Some(decode(p)?);
    }
    if username.is_none() && !parsed.username().is_empty() {
        username = Some(decode(parsed.username())?);
    }

    let unix =
        unix_scheme || (parsed.host_str().is_none_or(str::is_empty) && parsed.port().is_none());
    if unix {
        let path = parsed.path();
        if path.is_empty() || path == "/" {
            return Err(invalid(
                url,
                "a URL without host and port names a Unix socket path",
            ));
        }
        let mut out = url::Url::parse("redis+unix:///").expect("static URL");
        out.set_path(path);
        {
            let mut q = out.query_pairs_mut();
            if let Some(db) = &db {
                q.append_pair("db", db);
            }
            if let Some(u) = &username {
                q.append_pair("user", u);
            }
            if let Some(p) = &password {
                q.append_pair("pass", p);
            }
        }
        let mut s = out.to_string();
        if s.ends_with('?') {
            s.pop();
        }
        return Ok(s);
    }

    let host = parsed
        .host_str()
        .ok_or_else(|| invalid(url, "missing host"))?;
    let db = match db {
        Some(db) => db,
        None => match parsed.path().trim_matches('/') {
            "" => "0".to_string(),
            p => {
                p.parse::<u32>()
                    .map_err(|_| invalid(url, "the path must be a database number"))?;
                p.to_string()
            }
        },
    };
    let mut out = url::Url::parse("redis://localhost/").expect("static URL");
    out.set_host(Some(host))
        .map_err(|e| invalid_because(url, e))?;
    out.set_port(Some(parsed.port().unwrap_or(6379)))
        .map_err(|()| invalid(url, "bad port"))?;
    if let Some(u) = &username {
        out.set_username(u)
            .map_err(|()| invalid(url, "bad username"))?;
    }
    if let Some(p) = &password {
        out.set_password(Some(p))
            .map_err(|()| invalid(url, "bad password"))?;
    }
    out.set_path(&db);
    Ok(out.to_string())
}

fn percent_encoding_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// A client for `url` (upstream or `redis` crate syntax).
pub fn client(url: &str) -> Result<redis::Client> {
    let normalized = normalize(url)?;
    redis::Client::open(normalized.as_str()).map_err(|e| invalid_because(url, e))
}

/// A self-reconnecting multiplexed connection with timeouts suited to big batches.
pub(crate) async fn manager(client: &redis::Client) -> Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_number_of_retries(3);
    client
        .get_connection_manager_with_config(config)
        .await
        .map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_translated() {
        assert_eq!(
            normalize("redis://127.0.0.1:6379/").unwrap(),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            normalize("redis://localhost").unwrap(),
            "redis://localhost:6379/0"
        );
        assert_eq!(normalize("redis://h:7000/3").unwrap(), "redis://h:7000/3");
        assert_eq!(
            normalize("redis://h:7000/3?db=5").unwrap(),
            "redis://h:7000/5"
        );
        assert_eq!(
            normalize("redis://:s%40cret@h:1/?db=2&socket_timeout=5").unwrap(),
            "redis://:s%40cret@h:1/2"
        );
        assert_eq!(
            normalize("redis://h:1/?password=p%20w").unwrap(),
            "redis://:p%20w@h:1/0"
        );
        assert_eq!(
            normalize("redis:///var/run/redis.sock?db=4").unwrap(),
            "redis+unix:///var/run/redis.sock?db=4"
        );
        assert_eq!(
            normalize("unix:///tmp/r.sock").unwrap(),
            "redis+unix:///tmp/r.sock"
        );
        assert!(normalize("redis://h:1/?ssl=true").is_err());
        assert!(normalize("redis://h:1/?ssl=false").is_ok());
        assert!(normalize("rediss://h:1/").is_err());
        assert!(normalize("redis://h:1/?sentinel=m").is_err());
        assert!(normalize("redis://h:1/x").is_err());
        assert!(normalize("http://h:1/").is_err());
        for ok in [
            "redis://127.0.0.1:6379/",
            "redis:///var/run/redis.sock?db=4",
        ] {
            client(ok).unwrap();
        }
    }

    #[test]
    fn passwords_are_redacted() {
        let e = normalize("redis://:topsecret@h:1/?sentinel=x").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        let e = normalize("redis://h:1/?password=topsecret&sentinel=x").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
    }
}
