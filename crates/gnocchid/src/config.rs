//! gnocchi.conf: upstream's INI sections and option names, plus our own few
//! (`[statsd] enabled`, `[amqp1d] enabled`, the embedded stores under
//! `--data-dir`).
//!
//! Precedence, as oslo.config gives it upstream:
//! 1. command-line flags (`--host`, `--port`, `--data-dir`);
//! 2. the environment, `OS_<SECTION>__<OPTION>` in upper case for any option
//!    (oslo.config's environment source: `OS_API__PORT=8042`,
//!    `OS_INDEXER__URL=...`, `OS_DEFAULT__COORDINATION_URL=...`);
//! 3. the config file;
//! 4. `GNOCCHI_INDEXER_URL`, for `[indexer] url` only: upstream's default of
//!    that option, so the file wins over it;
//! 5. the defaults, declared once: the `Default` of the struct each option
//!    lands in ([`Config`], `ApiConfig`, `EngineConfig`, `CorsConfig`,
//!    `KeystoneConfig`, `StatsdConfig`).

use gnocchi_api::keystone::KeystoneConfig;
use gnocchi_api::{ApiConfig, AuthMode, CorsConfig};
use gnocchi_engine::EngineConfig;
use gnocchi_engine::coordination::CoordinationUrl;
use gnocchi_statsd::StatsdConfig;

mod amqp1d;
mod drivers;
pub use amqp1d::Amqp1dSettings;
use drivers::drivers;
pub use drivers::{IncomingDriver, StorageDriver};
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
    /// `[statsd]` (wired by `crate::statsd`).
    pub statsd: StatsdSettings,
    /// `[amqp1d]` (wired by `crate::amqpd`).
    pub amqp1d: Amqp1dSettings,
}

/// The embedded all-in-one default: every store under `./gnocchi-data`.
impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 8041,
            data_dir: PathBuf::from("gnocchi-data"),
            indexer_url: String::new(),
            sacks: 128,
            incoming: IncomingDriver::File,
            storage: StorageDriver::File,
            api: ApiConfig::default(),
            engine: EngineConfig::default(),
            coordination: None,
            statsd: StatsdSettings::default(),
            amqp1d: Amqp1dSettings::default(),
        }
    }
}

/// `[statsd]`: upstream's options plus `enabled`.
#[derive(Debug, Clone, Default)]
pub struct StatsdSettings {
    /// Run the listener inside the all-in-one server.
    pub enabled: bool,
    pub daemon: StatsdConfig,
}

/// `[statsd]`; each option defaults to `StatsdConfig::default()`'s.
fn statsd_settings(src: &Source) -> Result<StatsdSettings, ConfigError> {
    let d = StatsdSettings::default();
    let flush_delay = match src.get("statsd", "flush_delay") {
        None => d.daemon.flush_delay,
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|f| *f > 0.0)
            .and_then(|f| Duration::try_from_secs_f64(f).ok())
            .ok_or_else(|| ConfigError::Invalid {
                section: "statsd".into(),
                key: "flush_delay".into(),
                message: format!("`{s}' is not a positive number of seconds"),
            })?,
    };
    Ok(StatsdSettings {
        enabled: src.boolean("statsd", "enabled", d.enabled)?,
        daemon: StatsdConfig {
            host: src.get("statsd", "host").unwrap_or(d.daemon.host),
            port: src.parse("statsd", "port", d.daemon.port)?,
            resource_id: src
                .get("statsd", "resource_id")
                .unwrap_or(d.daemon.resource_id),
            creator: src.get("statsd", "creator").or(d.daemon.creator),
            archive_policy_name: src
                .get("statsd", "archive_policy_name")
                .or(d.daemon.archive_policy_name),
            flush_delay,
        },
    })
}

/// Where option values come from: the environment (`OS_<SECTION>__<OPTION>`),
/// then the file.
struct Source<'e> {
    ini: Option<Ini>,
    env: &'e dyn Fn(&str) -> Option<String>,
}

impl Source<'_> {
    fn get(&self, section: &str, key: &str) -> Option<String> {
        let name = format!(
            "OS_{}__{}",
            section.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        );
        if let Some(v) = (self.env)(&name)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
        {
            return Some(v);
        }
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

    /// The option parsed, `None` when unset.
    fn parse_opt<T: std::str::FromStr>(
        &self,
        section: &str,
        key: &str,
    ) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(section, key)
            .map(|v| {
                v.parse().map_err(|e: T::Err| ConfigError::Invalid {
                    section: section.into(),
                    key: key.into(),
                    message: e.to_string(),
                })
            })
            .transpose()
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
        Ok(self.parse_opt(section, key)?.unwrap_or(default))
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

    /// A number of seconds (negative counts as 0).
    fn seconds(
        &self,
        section: &str,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(s) = self.parse_opt::<f64>(section, key)? else {
            return Ok(default);
        };
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
        max_age: src.parse_opt("cors", "max_age")?.or(d.max_age),
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
        token_cache_time: src.seconds(
            "keystone_authtoken",
            "token_cache_time",
            d.token_cache_time,
        )?,
        http_timeout: src.seconds("keystone_authtoken", "http_connect_timeout", d.http_timeout)?,
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

/// `[api]`, `[archive_policy]`, `[cors]`, `[keystone_authtoken]` and
/// `[oslo_policy]`; `d` gives the defaults.
fn api_config(src: &Source, file: Option<&Path>, d: ApiConfig) -> Result<ApiConfig, ConfigError> {
    let auth_mode: AuthMode = src.parse("api", "auth_mode", d.auth_mode)?;
    let methods = match src.get("archive_policy", "default_aggregation_methods") {
        None => d.default_aggregation_methods,
        Some(list) => {
            let mut out = Vec::new();
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                out.push(
                    carbonara::Method::parse(name).ok_or_else(|| ConfigError::Invalid {
                        section: "archive_policy".into(),
                        key: "default_aggregation_methods".into(),
                        message: format!("unknown aggregation method `{name}'"),
                    })?,
                );
            }
            out.sort();
            out.dedup();
            out
        }
    };
    Ok(ApiConfig {
        auth_mode,
        max_limit: src.parse("api", "max_limit", d.max_limit)?.max(1),
        enable_proxy_headers_parsing: src.boolean(
            "api",
            "enable_proxy_headers_parsing",
            d.enable_proxy_headers_parsing,
        )?,
        cors: cors_config(src)?,
        default_aggregation_methods: methods,
        operation_timeout: src.seconds("api", "operation_timeout", d.operation_timeout)?,
        max_body_size: src.parse("api", "max_body_size", d.max_body_size)?,
        processors: d.processors,
        keystone: match auth_mode {
            AuthMode::Keystone => Some(keystone_config(src)?),
            _ => d.keystone,
        },
        policy_overrides: policy_overrides(src, file)?,
    })
}

/// `[metricd] concurrency` when unset on a network aggregate store (Redis,
/// S3, Ceph): there every part of a batch waits on round trips, so parts
/// processed at once overlap their waits. The embedded store keeps the
/// engine's default (1): each of its writes is a durable commit, taken one at
/// a time, so more parts would only add commits.
const NETWORK_CONCURRENCY: usize = 8;

/// `[metricd]`; `d` gives the defaults.
fn engine_config(
    src: &Source,
    d: EngineConfig,
    storage: &StorageDriver,
) -> Result<EngineConfig, ConfigError> {
    let concurrency = match storage {
        StorageDriver::File => d.concurrency,
        _ => NETWORK_CONCURRENCY,
    };
    Ok(EngineConfig {
        workers: src.parse("metricd", "workers", d.workers)?.max(1),
        concurrency: src.parse("metricd", "concurrency", concurrency)?.max(1),
        split_cache_size: src.parse("metricd", "split_cache_size", d.split_cache_size)?,
        processing_delay: src.seconds("metricd", "metric_processing_delay", d.processing_delay)?,
        notification_delay: src.seconds("metricd", "notification_delay", d.notification_delay)?,
        cleanup_delay: src.seconds("metricd", "metric_cleanup_delay", d.cleanup_delay)?,
        cleanup_batch_size: src.parse("metricd", "cleanup_batch_size", d.cleanup_batch_size)?,
        processing_replicas: match src.parse(
            "metricd",
            "processing_replicas",
            d.processing_replicas,
        )? {
            0 => {
                return Err(ConfigError::Invalid {
                    section: "metricd".into(),
                    key: "processing_replicas".into(),
                    message: "must be at least 1".into(),
                });
            }
            n => n,
        },
        ..d
    })
}

impl Config {
    /// The configuration of `file` (if any) under the environment and the
    /// command line's `overrides` (see the module doc for the precedence).
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::from_sources(file, overrides, &|name| std::env::var(name).ok())
    }

    /// As [`Config::load`], the environment left out: the file and `overrides`
    /// alone decide. The benchmark uses it, so that a shell set up for a real
    /// deployment never points it at that deployment's stores.
    pub fn load_without_environment(
        file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        Config::from_sources(file, overrides, &|_| None)
    }

    /// `env` looks an environment variable up.
    fn from_sources(
        file: Option<&Path>,
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let ini = match file {
            Some(path) => Some(Ini::load_from_file(path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            })?),
            None => None,
        };
        let src = Source { ini, env };
        let d = Config::default();

        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| src.get("storage", "file_basepath").map(PathBuf::from))
            .unwrap_or(d.data_dir);
        // Upstream reads GNOCCHI_INDEXER_URL as the option's default.
        let indexer_url = src
            .get("indexer", "url")
            .or_else(|| env("GNOCCHI_INDEXER_URL").filter(|s| !s.trim().is_empty()))
            .unwrap_or(d.indexer_url);

        let api = api_config(&src, file, d.api)?;
        let (storage, incoming) = drivers(&src)?;
        let engine = engine_config(&src, d.engine, &storage)?;
        let coordination = coordination(&src, &incoming, &storage, &indexer_url)?;
        Ok(Config {
            host: overrides
                .host
                .clone()
                .or_else(|| src.get("api", "host"))
                .unwrap_or(d.host),
            port: match overrides.port {
                Some(p) => p,
                None => src.parse("api", "port", d.port)?,
            },
            data_dir,
            indexer_url,
            sacks: src.parse("incoming", "sacks", d.sacks)?,
            storage,
            incoming,
            api,
            engine,
            coordination,
            statsd: statsd_settings(&src)?,
            amqp1d: amqp1d::settings(&src)?,
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

    /// `text` as gnocchi.conf, under the environment `env` (name, value).
    fn load_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("gnocchi.conf");
        std::fs::write(&path, text).expect("write config");
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        Config::from_sources(Some(&path), &Overrides::default(), &lookup)
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        load_env(text, &[])
    }

    #[test]
    fn ceph_options_are_upstreams_and_incoming_defaults_to_storage() {
        let c = load(
            "[storage]\ndriver = ceph\nceph_pool = metrics\nceph_username = gnocchi\n\
             ceph_keyring = /etc/ceph/k\n[incoming]\nceph_pool = measures\n",
        )
        .unwrap();
        let (StorageDriver::Ceph(s), IncomingDriver::Ceph(i)) = (&c.storage, &c.incoming) else {
            panic!("{c:?}");
        };
        assert_eq!(
            (s.pool.as_str(), s.conffile.as_str(), s.timeout.as_deref()),
            ("metrics", "/etc/ceph/ceph.conf", Some("30"))
        );
        assert_eq!(i.pool, "measures");
        assert_eq!(i.username.as_deref(), Some("gnocchi"));
        assert_eq!(i.keyring.as_deref(), Some("/etc/ceph/k"));
        assert_eq!(i.secret, None);
    }

    #[test]
    fn swift_options_are_upstreams_and_incoming_defaults_to_storage() {
        let c = load(
            "[storage]\ndriver = swift\nswift_authurl = http://k:5000/v3\nswift_auth_version = 3\n\
             swift_user = gnocchi\nswift_key = secret\nswift_project_name = service\n\
             swift_endpoint_type = internalURL\nswift_container_prefix = prod\n\
             swift_container_prefix_all = true\nswift_timeout = 30\n\
             [incoming]\ndriver = swift\nswift_container_prefix = fast\n",
        )
        .unwrap();
        let (StorageDriver::Swift(s), IncomingDriver::Swift(i)) = (&c.storage, &c.incoming) else {
            panic!("{c:?}");
        };
        assert_eq!(s.auth_version, "3");
        assert_eq!(s.container_prefix, "prod");
        assert!(s.container_prefix_all);
        assert_eq!(s.timeout, 30);
        assert_eq!(s.user_domain_name, "Default");
        assert_eq!(i.container_prefix, "fast");
        assert_eq!(i.authurl, "http://k:5000/v3");
        assert_eq!(i.project_name.as_deref(), Some("service"));
        assert_eq!(i.endpoint_type, "internalURL");
        assert!(i.container_prefix_all);
        assert!(!format!("{c:?}").contains("secret"));
        // Upstream's defaults.
        let c = load("[storage]\ndriver = swift\n").unwrap();
        let StorageDriver::Swift(d) = &c.storage else {
            panic!("{c:?}");
        };
        assert_eq!(
            (d.authurl.as_str(), d.user.as_str(), d.key.as_str()),
            ("http://localhost:8080/auth/v1.0", "admin:admin", "admin")
        );
        assert_eq!((d.timeout, d.auth_version.as_str()), (300, "1"));
        assert!(matches!(c.incoming, IncomingDriver::Swift(_)));
        assert!(load("[storage]\ndriver = swift\nswift_endpoint_type = public\n").is_err());
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
        let c = load("[indexer]\nurl = postgresql+psycopg2://u@h/gnocchi\n").unwrap();
        assert_eq!(
            c.coordination,
            Some(CoordinationUrl::Postgres("postgresql://u@h/gnocchi".into()))
        );
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
        assert_eq!(load("").unwrap().engine.concurrency, 1);
        let network = load("[storage]\ndriver = redis\n").unwrap();
        assert_eq!(network.engine.concurrency, NETWORK_CONCURRENCY);
        let set = load("[storage]\ndriver = redis\n[metricd]\nconcurrency = 3\n").unwrap();
        assert_eq!(set.engine.concurrency, 3);
        let no_cache = load("[metricd]\nsplit_cache_size = 0\n").unwrap();
        assert_eq!(no_cache.engine.split_cache_size, 0);
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

    #[test]
    fn environment_overrides_the_file_as_oslo_config() {
        let file = "[api]\nport = 9000\nmax_limit = 50\n[indexer]\nurl = sqlite:///file.db\n";
        // The file over the defaults.
        let c = load(file).unwrap();
        assert_eq!((c.port, c.api.max_limit), (9000, 50));
        // OS_<SECTION>__<OPTION> over the file, for any option and section.
        let c = load_env(
            file,
            &[
                ("OS_API__PORT", "9001"),
                ("OS_METRICD__WORKERS", "7"),
                ("OS_DEFAULT__COORDINATION_URL", "redis://h:4/"),
                ("OS_STATSD__ENABLED", "yes"),
            ],
        )
        .unwrap();
        assert_eq!((c.port, c.api.max_limit, c.engine.workers), (9001, 50, 7));
        assert_eq!(
            c.coordination,
            Some(CoordinationUrl::Redis("redis://h:4/".into()))
        );
        assert!(c.statsd.enabled);
        // GNOCCHI_INDEXER_URL is upstream's default of [indexer] url: the file
        // wins, OS_INDEXER__URL wins over both.
        let pg = "postgresql://u@h/env";
        assert_eq!(
            load_env(file, &[("GNOCCHI_INDEXER_URL", pg)])
                .unwrap()
                .indexer_url,
            "sqlite:///file.db"
        );
        assert_eq!(
            load_env("", &[("GNOCCHI_INDEXER_URL", pg)])
                .unwrap()
                .indexer_url,
            pg
        );
        assert_eq!(
            load_env(file, &[("OS_INDEXER__URL", pg)])
                .unwrap()
                .indexer_url,
            pg
        );
        // A bad value from the environment names the option.
        let e = load_env("", &[("OS_API__PORT", "http")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[api] port"), "{e}");
    }

    #[test]
    fn unset_options_take_the_structs_defaults() {
        let c = load("").unwrap();
        let d = Config::default();
        assert_eq!((c.host, c.port, c.sacks), (d.host, d.port, d.sacks));
        let api = ApiConfig::default();
        assert_eq!(c.api.max_limit, api.max_limit);
        assert_eq!(c.api.operation_timeout, api.operation_timeout);
        assert_eq!(c.api.max_body_size, api.max_body_size);
        assert_eq!(c.api.auth_mode, api.auth_mode);
        let engine = EngineConfig::default();
        assert_eq!(c.engine.processing_delay, engine.processing_delay);
        assert_eq!(c.engine.notification_delay, engine.notification_delay);
        assert_eq!(c.engine.cleanup_delay, engine.cleanup_delay);
        assert_eq!(c.engine.cleanup_batch_size, engine.cleanup_batch_size);
        assert_eq!(c.engine.processing_replicas, engine.processing_replicas);
        let statsd = gnocchi_statsd::StatsdConfig::default();
        assert!(!c.statsd.enabled);
        assert_eq!(
            (c.statsd.daemon.host, c.statsd.daemon.port),
            (statsd.host, statsd.port)
        );
        assert_eq!(c.statsd.daemon.flush_delay, statsd.flush_delay);
    }

    #[test]
    fn booleans_have_one_spelling_everywhere() {
        for (v, want) in [
            ("true", true),
            ("Yes", true),
            ("on", true),
            ("1", true),
            ("false", false),
            ("NO", false),
            ("off", false),
            ("0", false),
        ] {
            let text =
                format!("[api]\nenable_proxy_headers_parsing = {v}\n[statsd]\nenabled = {v}\n");
            let c = load(&text).unwrap();
            assert_eq!(
                (c.api.enable_proxy_headers_parsing, c.statsd.enabled),
                (want, want),
                "{v}"
            );
        }
        for section in ["api]\nenable_proxy_headers_parsing", "statsd]\nenabled"] {
            let e = load(&format!("[{section} = maybe\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("`maybe' is not a boolean"), "{e}");
        }
    }
}
