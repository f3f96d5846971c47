//! gnocchi.conf: upstream's INI sections and option names, plus our own few
//! (`[storage] data_dir`-style defaults for the embedded mode).
//!
//! Precedence: command-line flags > environment (`GNOCCHI_*` where upstream has
//! one) > the config file > defaults.

use gnocchi_api::keystone::KeystoneConfig;
use gnocchi_api::{ApiConfig, AuthMode, CorsConfig};
use gnocchi_engine::EngineConfig;
use gnocchi_engine::coordination::CoordinationUrl;
use ini::Ini;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: String, message: String },
    #[error("invalid value for [{section}] {key}: {message}")]
    Invalid {
        section: String,
        key: String,
        message: String,
    },
}

/// Everything the binary needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// `sqlite:///path` or a plain path; empty means `<data_dir>/index.sqlite`.
    pub indexer_url: String,
    pub sacks: u32,
    /// Where measures wait: `[incoming] driver` (defaults to the storage driver).
    pub incoming: IncomingDriver,
    /// Where aggregates live: `[storage] driver`.
    pub storage: StorageDriver,
    pub api: ApiConfig,
    pub engine: EngineConfig,
    /// `[DEFAULT] coordination_url`, given or derived (see [`coordination`]);
    /// `None`: in-process, this process is the only metricd.
    pub coordination: Option<CoordinationUrl>,
    /// `[statsd]` (see `crate::statsd`).
    pub statsd: crate::statsd::Settings,
}

/// `[incoming] driver`: `file` (the embedded write-ahead log) or `redis`.
#[derive(Debug, Clone)]
pub enum IncomingDriver {
    File,
    Redis { url: String },
}

/// `[storage] driver`: `file` (the embedded redb store), `redis` or `s3`.
#[derive(Debug, Clone)]
pub enum StorageDriver {
    File,
    Redis { url: String },
    S3(gnocchi_storage::s3_aggregates::S3Config),
}

const DEFAULT_REDIS_URL: &str = "redis://localhost:6379/";

/// `[storage]` and `[incoming]` with upstream's option names; each `[incoming]`
/// option defaults to the `[storage]` one, as upstream.
fn drivers(src: &Source) -> Result<(StorageDriver, IncomingDriver), ConfigError> {
    let storage_driver = src
        .get("storage", "driver")
        .unwrap_or_else(|| "file".into());
    let storage_redis = src
        .get("storage", "redis_url")
        .unwrap_or_else(|| DEFAULT_REDIS_URL.into());
    let storage = match storage_driver.as_str() {
        "file" => StorageDriver::File,
        "redis" => StorageDriver::Redis {
            url: storage_redis.clone(),
        },
        "s3" => StorageDriver::S3(gnocchi_storage::s3_aggregates::S3Config {
            endpoint_url: src.get("storage", "s3_endpoint_url"),
            region_name: src.get("storage", "s3_region_name"),
            access_key_id: src.get("storage", "s3_access_key_id"),
            secret_access_key: src.get("storage", "s3_secret_access_key"),
            bucket_prefix: src
                .get("storage", "s3_bucket_prefix")
                .unwrap_or_else(|| "gnocchi".into()),
        }),
        other => {
            return Err(ConfigError::Invalid {
                section: "storage".into(),
                key: "driver".into(),
                message: format!("unsupported driver `{other}' (supported: file, redis, s3)"),
            });
        }
    };
    let incoming_driver = src.get("incoming", "driver").unwrap_or(storage_driver);
    let incoming = match incoming_driver.as_str() {
        "file" => IncomingDriver::File,
        "redis" => IncomingDriver::Redis {
            url: src.get("incoming", "redis_url").unwrap_or(storage_redis),
        },
        other => {
            return Err(ConfigError::Invalid {
                section: "incoming".into(),
                key: "driver".into(),
                message: format!("unsupported driver `{other}' (supported: file, redis)"),
            });
        }
    };
    Ok((storage, incoming))
}

struct Source {
    ini: Option<Ini>,
}

impl Source {
    fn get(&self, section: &str, key: &str) -> Option<String> {
        let ini = self.ini.as_ref()?;
        // oslo.config files spell the default section `[DEFAULT]`; options
        // before any section header belong to it too.
        let value = if section == "DEFAULT" {
            ini.get_from(None::<&str>, key)
                .or_else(|| ini.get_from(Some("DEFAULT"), key))
        } else {
            ini.get_from(Some(section), key)
        };
        value
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn parse<T: std::str::FromStr>(
        &self,
        section: &str,
        key: &str,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(section, key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Invalid {
                section: section.into(),
                key: key.into(),
                message: e.to_string(),
            }),
        }
    }

    fn boolean(&self, section: &str, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(section, key) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    section: section.into(),
                    key: key.into(),
                    message: format!("`{v}' is not a boolean"),
                }),
            },
        }
    }

    fn seconds(&self, section: &str, key: &str, default: f64) -> Result<Duration, ConfigError> {
        let s: f64 = self.parse(section, key, default)?;
        Duration::try_from_secs_f64(s.max(0.0)).map_err(|e| ConfigError::Invalid {
            section: section.into(),
            key: key.into(),
            message: e.to_string(),
        })
    }
}

/// `[DEFAULT] coordination_url` (tooz's URL forms, the `+driver` suffix
/// stripped). Unset, it is derived as upstream does: the Redis URL when the
/// incoming or the aggregate store is Redis, else the index URL when the index
/// is PostgreSQL, else none (in-process: the embedded default, one metricd).
fn coordination(
    src: &Source,
    incoming: &IncomingDriver,
    storage: &StorageDriver,
    indexer_url: &str,
) -> Result<Option<CoordinationUrl>, ConfigError> {
    let (url, origin) = match src.get("DEFAULT", "coordination_url") {
        Some(url) => (url, None),
        None => match (incoming, storage) {
            (IncomingDriver::Redis { url }, _) => (url.clone(), Some("[incoming] redis_url")),
            (_, StorageDriver::Redis { url }) => (url.clone(), Some("[storage] redis_url")),
            _ if indexer_url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("postgres")) =>
            {
                (indexer_url.to_string(), Some("[indexer] url"))
            }
            _ => return Ok(None),
        },
    };
    CoordinationUrl::parse(&url)
        .map(Some)
        .map_err(|e| ConfigError::Invalid {
            section: "DEFAULT".into(),
            key: "coordination_url".into(),
            message: match origin {
                None => e.to_string(),
                Some(o) => format!("{e} (derived from {o})"),
            },
        })
}

/// Command-line values that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
}

fn list(value: Option<String>) -> Option<Vec<String>> {
    value.map(|s| {
        s.split(',')
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect()
    })
}

/// `[cors]`, with oslo.middleware's option names and Gnocchi's defaults.
fn cors_config(src: &Source) -> Result<CorsConfig, ConfigError> {
    let d = CorsConfig::default();
    Ok(CorsConfig {
        allowed_origins: list(src.get("cors", "allowed_origin")).unwrap_or(d.allowed_origins),
        allow_credentials: src.boolean("cors", "allow_credentials", d.allow_credentials)?,
        expose_headers: list(src.get("cors", "expose_headers")).unwrap_or(d.expose_headers),
        max_age: match src.get("cors", "max_age") {
            None => d.max_age,
            Some(_) => Some(src.parse("cors", "max_age", 3600u64)?),
        },
        allow_methods: list(src.get("cors", "allow_methods")).unwrap_or(d.allow_methods),
        allow_headers: list(src.get("cors", "allow_headers")).unwrap_or(d.allow_headers),
    })
}

/// `[keystone_authtoken]`, with keystonemiddleware's option names.
fn keystone_config(src: &Source) -> Result<KeystoneConfig, ConfigError> {
    let d = KeystoneConfig::default();
    let get = |k: &str| src.get("keystone_authtoken", k);
    // keystonemiddleware's deprecated `auth_uri` is `www_authenticate_uri`.
    let www = get("www_authenticate_uri").or_else(|| get("auth_uri"));
    let auth_url = get("auth_url")
        .or_else(|| www.clone())
        .ok_or_else(|| ConfigError::Invalid {
            section: "keystone_authtoken".into(),
            key: "auth_url".into(),
            message: "required when [api] auth_mode = keystone".into(),
        })?;
    Ok(KeystoneConfig {
        www_authenticate_uri: www.unwrap_or_else(|| auth_url.clone()),
        auth_url,
        username: get("username").unwrap_or_default(),
        password: get("password").unwrap_or_default(),
        project_name: get("project_name").unwrap_or_default(),
        user_domain_name: get("user_domain_name").unwrap_or(d.user_domain_name),
        user_domain_id: get("user_domain_id"),
        project_domain_name: get("project_domain_name").unwrap_or(d.project_domain_name),
        project_domain_id: get("project_domain_id"),
        token_cache_time: src.seconds("keystone_authtoken", "token_cache_time", 300.0)?,
        http_timeout: src.seconds("keystone_authtoken", "http_connect_timeout", 10.0)?,
    })
}

/// `[oslo_policy] policy_file`, relative to the config file's directory; read
/// and parsed now so that a bad file stops the start with a clear message.
fn policy_overrides(
    src: &Source,
    file: Option<&Path>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(name) = src.get("oslo_policy", "policy_file") else {
        return Ok(Vec::new());
    };
    let mut path = PathBuf::from(&name);
    if path.is_relative()
        && let Some(dir) = file.and_then(Path::parent)
    {
        path = dir.join(path);
    }
    let invalid = |message: String| ConfigError::Invalid {
        section: "oslo_policy".into(),
        key: "policy_file".into(),
        message,
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    gnocchi_api::policy::parse_policy_file(&text)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let ini = match file {
            Some(path) => Some(Ini::load_from_file(path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            })?),
            None => None,
        };
        let src = Source { ini };

        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| src.get("storage", "file_basepath").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("gnocchi-data"));
        let indexer_url = std::env::var("GNOCCHI_INDEXER_URL")
            .ok()
            .or_else(|| src.get("indexer", "url"))
            .unwrap_or_default();

        let auth_mode: AuthMode = src.parse("api", "auth_mode", AuthMode::Basic)?;
        let methods = match src.get("archive_policy", "default_aggregation_methods") {
            None => carbonara::policy::default_aggregation_methods(),
            Some(list) => {
                let mut out = Vec::new();
                for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    out.push(carbonara::Method::parse(name).ok_or_else(|| {
                        ConfigError::Invalid {
                            section: "archive_policy".into(),
                            key: "default_aggregation_methods".into(),
                            message: format!("unknown aggregation method `{name}'"),
                        }
                    })?);
                }
                out.sort();
                out.dedup();
                out
            }
        };
        let max_limit: usize = src.parse("api", "max_limit", 1000)?;
        let api = ApiConfig {
            auth_mode,
            max_limit: max_limit.max(1),
            enable_proxy_headers_parsing: src.boolean(
                "api",
                "enable_proxy_headers_parsing",
                false,
            )?,
            cors: cors_config(&src)?,
            default_aggregation_methods: methods,
            operation_timeout: src.seconds("api", "operation_timeout", 10.0)?,
            max_body_size: src.parse("api", "max_body_size", 128 * 1024 * 1024)?,
            processors: Vec::new(),
            keystone: match auth_mode {
                AuthMode::Keystone => Some(keystone_config(&src)?),
                _ => None,
            },
            policy_overrides: policy_overrides(&src, file)?,
        };
        let defaults = EngineConfig::default();
        let engine = EngineConfig {
            workers: src.parse("metricd", "workers", defaults.workers)?.max(1),
            processing_delay: src.seconds("metricd", "metric_processing_delay", 60.0)?,
            notification_delay: src.seconds("metricd", "notification_delay", 1.0)?,
            cleanup_delay: src.seconds("metricd", "metric_cleanup_delay", 300.0)?,
            cleanup_batch_size: src.parse("metricd", "cleanup_batch_size", 10_000)?,
            processing_replicas: match src.parse("metricd", "processing_replicas", 3usize)? {
                0 => {
                    return Err(ConfigError::Invalid {
                        section: "metricd".into(),
                        key: "processing_replicas".into(),
                        message: "must be at least 1".into(),
                    });
                }
                n => n,
            },
            ..defaults
        };
        let (storage, incoming) = drivers(&src)?;
        let coordination = coordination(&src, &incoming, &storage, &indexer_url)?;
        Ok(Config {
            host: overrides
                .host
                .clone()
                .or_else(|| src.get("api", "host"))
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: match overrides.port {
                Some(p) => p,
                None => src.parse("api", "port", 8041)?,
            },
            data_dir,
            indexer_url,
            sacks: src.parse("incoming", "sacks", 128)?,
            storage,
            incoming,
            api,
            engine,
            coordination,
            statsd: crate::statsd::Settings::load(&|key| src.get("statsd", key))?,
        })
    }

    /// The index URL: `[indexer] url` (upstream's form, e.g.
    /// `postgresql://user@host/gnocchi` or `mysql+pymysql://root@host/gnocchi`), or
    /// the embedded SQLite file in the data directory when unset.
    pub fn indexer_url(&self) -> String {
        if self.indexer_url.is_empty() {
            return format!("sqlite://{}", self.data_dir.join("index.sqlite").display());
        }
        self.indexer_url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let path = std::env::temp_dir().join(format!(
            "gnocchid-config-test-{}-{}.conf",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, text).expect("write config");
        let r = Config::load(Some(&path), &Overrides::default());
        let _ = std::fs::remove_file(&path);
        r
    }

    #[test]
    fn coordination_url_defaults_as_upstream() {
        // The embedded default: in-process.
        assert_eq!(load("").unwrap().coordination, None);
        // Redis incoming or storage: their URL.
        let c = load("[incoming]\ndriver = redis\nredis_url = redis://h:1/?db=4\n").unwrap();
        assert_eq!(
            c.coordination,
            Some(CoordinationUrl::Redis("redis://h:1/?db=4".into()))
        );
        let c = load(
            "[storage]\ndriver = redis\nredis_url = redis://h:2/\n[incoming]\ndriver = file\n",
        )
        .unwrap();
        assert_eq!(
            c.coordination,
            Some(CoordinationUrl::Redis("redis://h:2/".into()))
        );
        // A PostgreSQL index, without its +driver suffix.
        if std::env::var_os("GNOCCHI_INDEXER_URL").is_none() {
            let c = load("[indexer]\nurl = postgresql+psycopg2://u@h/gnocchi\n").unwrap();
            assert_eq!(
                c.coordination,
                Some(CoordinationUrl::Postgres("postgresql://u@h/gnocchi".into()))
            );
        }
        // Explicit, under [DEFAULT] or before any section.
        let c = load("[DEFAULT]\ncoordination_url = postgresql://u@h/c\n").unwrap();
        assert_eq!(
            c.coordination,
            Some(CoordinationUrl::Postgres("postgresql://u@h/c".into()))
        );
        let c = load("coordination_url = redis://h:3/\n").unwrap();
        assert_eq!(
            c.coordination,
            Some(CoordinationUrl::Redis("redis://h:3/".into()))
        );
        assert_eq!(load("").unwrap().engine.processing_replicas, 3);
        assert_eq!(
            load("[metricd]\nprocessing_replicas = 2\n")
                .unwrap()
                .engine
                .processing_replicas,
            2
        );
    }

    #[test]
    fn bad_values_name_the_option() {
        for (text, option) in [
            (
                "[DEFAULT]\ncoordination_url = zookeeper://h:2181\n",
                "[DEFAULT] coordination_url",
            ),
            (
                "[incoming]\ndriver = redis\nredis_url = redis://h:1/notanumber\n",
                "[DEFAULT] coordination_url",
            ),
            (
                "[metricd]\nprocessing_replicas = 0\n",
                "[metricd] processing_replicas",
            ),
            (
                "[metricd]\nprocessing_replicas = many\n",
                "[metricd] processing_replicas",
            ),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(option), "{text}: {e}");
        }
    }
}
