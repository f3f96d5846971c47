//! Which backends the bench measures: the embedded default (SQLite index, local
//! incoming log, redb aggregates), or the backends of a gnocchi.conf given with
//! `gnocchi-bench --config-file FILE` (e.g. PostgreSQL + Redis + S3).
//!
//! With a file, every phase (the child server, the in-process processing
//! workload) gets a fresh namespace, so that runs never see each other's data:
//!
//! - **Redis** (`[incoming] redis_url`, and `[storage] redis_url` with the
//!   Redis aggregate driver): the bench **wipes the configured database**
//!   (`FLUSHDB`) before each phase. It refuses database 0: point the file at a
//!   dedicated database (`redis://127.0.0.1:6379/10`).
//! - **S3**: a fresh bucket per phase, `<s3_bucket_prefix>-bench-<random>-<phase>-aggregates`;
//!   the bench creates it and does not delete it (object stores have no cheap
//!   recursive delete; `scripts/bench-scaleout.sh` runs s3s-fs in a temporary
//!   directory it removes).
//! - **Ceph**: the configured pools are used as they are, shared by the
//!   phases (their metrics have random ids; give the bench a dedicated pool).
//! - **Index**: `[indexer] url` is used as it is, shared by the phases (their
//!   metrics have random ids): give the bench a dedicated database, as
//!   `scripts/bench-scaleout.sh` does. Without `[indexer] url`, each phase has
//!   its own SQLite file in its temporary data directory.
//!
//! Only the file on the bench's command line counts: the environment
//! (`GNOCCHI_CONFIG_FILE`, `GNOCCHI_INDEXER_URL`, `OS_<SECTION>__<OPTION>`) is
//! ignored, by the bench and by the server it starts, so that a shell set up
//! for a real deployment never has the bench wipe its Redis database.

use crate::BoxError;
use crate::backend_stats::Requests;
use gnocchid::backends::{self, Backends};
use gnocchid::config::{Config, IncomingDriver, Overrides, StorageDriver};
use ini::Ini;
use std::path::{Path, PathBuf};

/// The backends under test.
pub struct Deployment {
    /// `embedded`, or `<index>+<incoming>+<aggregates>`, e.g. `postgresql+redis+s3`.
    pub name: String,
    file: Option<File>,
}

struct File {
    path: PathBuf,
    ini: Ini,
    /// The configuration as the file alone gives it (the environment ignored).
    cfg: Config,
    /// Random, per bench run: part of the S3 bucket names.
    nonce: String,
}

impl Deployment {
    pub fn embedded() -> Deployment {
        Deployment {
            name: "embedded".into(),
            file: None,
        }
    }

    /// The backends of `path`; refuses a Redis database 0 (the bench wipes it).
    pub fn from_file(path: &Path) -> Result<Deployment, BoxError> {
        let ini = Ini::load_from_file(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let cfg = Config::load_without_environment(Some(path), &Overrides::default())?;
        for url in redis_urls(&cfg) {
            let client = gnocchi_storage::redis_url::client(&url)?;
            if client.get_connection_info().redis_settings().db() == 0 {
                return Err(format!(
                    "the bench wipes (FLUSHDB) the Redis database of {}: it must be a \
                     dedicated database other than 0, e.g. redis://127.0.0.1:6379/10",
                    path.display()
                )
                .into());
            }
        }
        let name = if cfg.indexer_url.is_empty()
            && matches!(cfg.incoming, IncomingDriver::File)
            && matches!(cfg.storage, StorageDriver::File)
        {
            "embedded".to_string()
        } else {
            format!(
                "{}+{}+{}",
                index_kind(&cfg.indexer_url),
                match cfg.incoming {
                    IncomingDriver::File => "local",
                    IncomingDriver::Redis { .. } => "redis",
                    IncomingDriver::S3(_) => "s3",
                    IncomingDriver::Ceph(_) => "ceph",
                    IncomingDriver::Swift(_) => "swift",
                },
                match cfg.storage {
                    StorageDriver::File => "redb",
                    StorageDriver::Redis { .. } => "redis",
                    StorageDriver::S3(_) => "s3",
                    StorageDriver::Ceph(_) => "ceph",
                    StorageDriver::Swift(_) => "swift",
                }
            )
        };
        let nonce = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        Ok(Deployment {
            name,
            file: Some(File {
                path: path.to_path_buf(),
                ini,
                cfg,
                nonce,
            }),
        })
    }

    pub fn is_embedded(&self) -> bool {
        self.file.is_none()
    }

    /// `[metricd]` as the configuration gives it (the concurrency's default
    /// depends on the aggregate store).
    pub fn engine_config(&self) -> gnocchi_engine::EngineConfig {
        match &self.file {
            Some(f) => f.cfg.engine.clone(),
            None => gnocchi_engine::EngineConfig::default(),
        }
    }

    /// How the incoming and the aggregate stores turn calls into requests:
    /// one per object on S3 and Ceph, one per call (a pipelined round trip, a
    /// local transaction) on Redis and the embedded stores.
    pub fn request_kinds(&self) -> (Requests, Requests) {
        let Some(f) = &self.file else {
            return (Requests::PerCall, Requests::PerCall);
        };
        let incoming = match f.cfg.incoming {
            IncomingDriver::S3(_) | IncomingDriver::Ceph(_) | IncomingDriver::Swift(_) => {
                Requests::PerObject
            }
            IncomingDriver::File | IncomingDriver::Redis { .. } => Requests::PerCall,
        };
        let storage = match f.cfg.storage {
            StorageDriver::S3(_) | StorageDriver::Ceph(_) | StorageDriver::Swift(_) => {
                Requests::PerObject
            }
            StorageDriver::File | StorageDriver::Redis { .. } => Requests::PerCall,
        };
        (incoming, storage)
    }

    /// One line for the report: the configuration and where each backend is
    /// (passwords hidden).
    pub fn describe(&self) -> String {
        let Some(f) = &self.file else {
            return "embedded (SQLite index, local incoming log, redb aggregates)".into();
        };
        let index = if f.cfg.indexer_url.is_empty() {
            "SQLite in each phase's data directory".to_string()
        } else {
            redact(&f.cfg.indexer_url)
        };
        let incoming = match &f.cfg.incoming {
            IncomingDriver::File => "local log".to_string(),
            IncomingDriver::Redis { url } => format!("{} (wiped)", redact(url)),
            IncomingDriver::S3(s3) => format!(
                "s3 {} bucket {}",
                s3.endpoint_url.as_deref().unwrap_or("(AWS)"),
                bucket_name(&s3.bucket_prefix, &f.nonce, "<phase>")
                    .replace("-aggregates", "-measure")
            ),
            IncomingDriver::Ceph(o) => format!("ceph pool {} (shared by the phases)", o.pool),
            IncomingDriver::Swift(o) => format!(
                "swift {} containers {}-{}-<phase>.incoming*",
                o.authurl, o.container_prefix, f.nonce
            ),
        };
        let storage = match &f.cfg.storage {
            StorageDriver::File => "redb".to_string(),
            StorageDriver::Redis { url } => format!("{} (wiped)", redact(url)),
            StorageDriver::S3(s3) => format!(
                "s3 {} bucket {}",
                s3.endpoint_url.as_deref().unwrap_or("(AWS)"),
                bucket_name(&s3.bucket_prefix, &f.nonce, "<phase>")
            ),
            StorageDriver::Ceph(o) => format!("ceph pool {} (shared by the phases)", o.pool),
            StorageDriver::Swift(o) => format!(
                "swift {} containers {}-{}-<phase>.<metric>",
                o.authurl, o.container_prefix, f.nonce
            ),
        };
        format!(
            "{} from {}: index {index}; incoming {incoming}; aggregates {storage}",
            self.name,
            f.path.display()
        )
    }

    /// Prepare a fresh namespace for `phase` (wipe the Redis databases, pick a
    /// new bucket) and write the config file for it into `dir`; `None` for the
    /// embedded backends (no file needed).
    pub async fn fresh_config(&self, phase: &str, dir: &Path) -> Result<Option<PathBuf>, BoxError> {
        self.fresh_config_with(phase, dir, "DEFAULT", &[]).await
    }

    /// [`Self::fresh_config`], with `options` set in `section` of the copy.
    pub async fn fresh_config_with(
        &self,
        phase: &str,
        dir: &Path,
        section: &str,
        options: &[(&str, String)],
    ) -> Result<Option<PathBuf>, BoxError> {
        let Some(f) = &self.file else {
            return Ok(None);
        };
        for url in redis_urls(&f.cfg) {
            flush_redis_db(&url).await?;
        }
        let mut ini = f.ini.clone();
        if let StorageDriver::S3(s3) = &f.cfg.storage {
            // `<prefix>-aggregates` is the bucket: give the prefix our suffix.
            let bucket = bucket_name(&s3.bucket_prefix, &f.nonce, phase);
            let prefix = bucket.trim_end_matches("-aggregates").to_string();
            ini.with_section(Some("storage"))
                .set("s3_bucket_prefix", prefix);
        }
        if let IncomingDriver::S3(s3) = &f.cfg.incoming {
            // `<prefix>-measure` is the bucket: a fresh one per phase.
            let bucket = bucket_name(&s3.bucket_prefix, &f.nonce, phase);
            let prefix = bucket.trim_end_matches("-aggregates").to_string();
            ini.with_section(Some("incoming"))
                .set("s3_bucket_prefix", prefix);
        }
        // Swift: containers of a prefix of the phase's own, the sacks' too.
        for (section, prefix) in [
            ("storage", swift_prefix_of_storage(&f.cfg.storage)),
            ("incoming", swift_prefix_of_incoming(&f.cfg.incoming)),
        ] {
            if let Some(prefix) = prefix {
                ini.with_section(Some(section))
                    .set(
                        "swift_container_prefix",
                        format!("{prefix}-{}-{phase}", f.nonce),
                    )
                    .set("swift_container_prefix_all", "true");
            }
        }
        // The copy lives elsewhere: a relative policy file stays the original's.
        if let Some(policy) = f.ini.get_from(Some("oslo_policy"), "policy_file")
            && Path::new(policy.trim()).is_relative()
            && let Some(parent) = f.path.parent()
        {
            let absolute = parent.join(policy.trim()).display().to_string();
            ini.with_section(Some("oslo_policy"))
                .set("policy_file", absolute);
        }
        for (key, value) in options {
            ini.with_section(Some(section)).set(*key, value.as_str());
        }
        let path = dir.join(format!("gnocchi-{phase}.conf"));
        ini.write_to_file(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Some(path))
    }

    /// Open the backends for an in-process phase, with its data directory
    /// (the SQLite index when no `[indexer] url`, the local stores) in `dir`.
    pub async fn open(&self, phase: &str, dir: &Path) -> Result<Backends, BoxError> {
        let data_dir = dir.join("data");
        let Some(path) = self.fresh_config(phase, dir).await? else {
            return open_embedded(&data_dir, false).await;
        };
        self.open_path(&path, dir).await
    }

    /// Open the backends of a config file written by [`Self::fresh_config`].
    pub async fn open_path(&self, path: &Path, dir: &Path) -> Result<Backends, BoxError> {
        let overrides = Overrides {
            data_dir: Some(dir.join("data")),
            ..Overrides::default()
        };
        let cfg = Config::load_without_environment(Some(path), &overrides)?;
        backends::upgrade(&cfg, false).await
    }

    /// Why several processes cannot share these backends, if they cannot: the
    /// embedded index and stores belong to one process.
    pub fn not_shareable(&self) -> Option<&'static str> {
        let Some(f) = &self.file else {
            return Some("the embedded backends belong to one process (give --config-file)");
        };
        if f.cfg.indexer_url.is_empty() {
            return Some("the configuration has no shared index ([indexer] url)");
        }
        if matches!(f.cfg.incoming, IncomingDriver::File)
            || matches!(f.cfg.storage, StorageDriver::File)
        {
            return Some("the local incoming log and redb aggregates belong to one process");
        }
        None
    }
}

fn swift_prefix_of_storage(d: &StorageDriver) -> Option<&str> {
    match d {
        StorageDriver::Swift(o) => Some(&o.container_prefix),
        _ => None,
    }
}

fn swift_prefix_of_incoming(d: &IncomingDriver) -> Option<&str> {
    match d {
        IncomingDriver::Swift(o) => Some(&o.container_prefix),
        _ => None,
    }
}

/// Open the embedded backends in `data_dir`, as the all-in-one server does
/// (with upstream's default archive policies when `create_policies`).
pub async fn open_embedded(data_dir: &Path, create_policies: bool) -> Result<Backends, BoxError> {
    let overrides = Overrides {
        data_dir: Some(data_dir.to_path_buf()),
        ..Overrides::default()
    };
    let cfg = Config::load_without_environment(None, &overrides)?;
    backends::upgrade(&cfg, create_policies).await
}

/// `sqlite`, `postgresql`, `mysql` (from upstream's URL forms, `mysql+pymysql://`…).
fn index_kind(url: &str) -> String {
    if url.is_empty() {
        return "sqlite".into();
    }
    let scheme = url.split("://").next().unwrap_or(url);
    let kind = scheme.split('+').next().unwrap_or(scheme);
    match kind {
        "postgres" => "postgresql".into(),
        k => k.to_string(),
    }
}

/// The Redis URLs the configuration writes to, without duplicates.
fn redis_urls(cfg: &Config) -> Vec<String> {
    let mut urls = Vec::new();
    if let IncomingDriver::Redis { url } = &cfg.incoming {
        urls.push(url.clone());
    }
    if let StorageDriver::Redis { url } = &cfg.storage {
        urls.push(url.clone());
    }
    urls.sort();
    urls.dedup();
    urls
}

fn bucket_name(prefix: &str, nonce: &str, phase: &str) -> String {
    format!("{prefix}-bench-{nonce}-{phase}-aggregates")
}

/// `FLUSHDB` on the database `url` selects (never 0: checked by `from_file`).
async fn flush_redis_db(url: &str) -> Result<(), BoxError> {
    let client = gnocchi_storage::redis_url::client(url)?;
    if client.get_connection_info().redis_settings().db() == 0 {
        return Err("refusing to wipe Redis database 0".into());
    }
    let what = redact(url);
    tokio::task::spawn_blocking(move || -> Result<(), BoxError> {
        let mut conn = client
            .get_connection()
            .map_err(|e| format!("redis {what}: {e}"))?;
        conn.send_packed_command(b"*1\r\n$7\r\nFLUSHDB\r\n")
            .and_then(|()| conn.recv_response())
            .and_then(|v| v.extract_error())
            .map_err(|e| format!("redis {what}: FLUSHDB: {e}"))?;
        Ok(())
    })
    .await?
}

/// `scheme://user:***@host/…`: the URL with its password hidden.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_redaction() {
        assert_eq!(index_kind(""), "sqlite");
        assert_eq!(index_kind("postgresql://postgres@h/db"), "postgresql");
        assert_eq!(index_kind("mysql+pymysql://root@h/db"), "mysql");
        assert_eq!(
            redact("postgresql://u:secret@h:5432/db"),
            "postgresql://u:***@h:5432/db"
        );
        assert_eq!(redact("redis://h:6379/10"), "redis://h:6379/10");
        assert_eq!(redact("redis://:pw@h:6379/10"), "redis://:***@h:6379/10");
    }

    #[test]
    fn refuses_redis_db_0() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.conf");
        std::fs::write(
            &path,
            "[incoming]\ndriver = redis\nredis_url = redis://127.0.0.1:6379/\n",
        )
        .unwrap();
        let e = Deployment::from_file(&path).err().unwrap();
        assert!(e.to_string().contains("other than 0"), "{e}");
        std::fs::write(
            &path,
            "[indexer]\nurl = postgresql://postgres@127.0.0.1/x\n[storage]\ndriver = s3\n\
             s3_bucket_prefix = p\n[incoming]\ndriver = redis\nredis_url = redis://127.0.0.1:6379/10\n",
        )
        .unwrap();
        let d = Deployment::from_file(&path).unwrap();
        assert_eq!(d.name, "postgresql+redis+s3");
        assert!(d.describe().contains("p-bench-"), "{}", d.describe());
    }
}
