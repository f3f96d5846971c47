//! `[storage]` and `[incoming]`: which driver each store uses and its
//! options, with upstream's names; each `[incoming]` option defaults to the
//! `[storage]` one, as upstream's `${storage.<option>}` defaults.

use super::{ConfigError, Source};
use gnocchi_storage::s3_client::S3Config;
use gnocchi_storage::swift::SwiftOptions;

/// `[incoming] driver`: `file` (the embedded write-ahead log), `redis`, `s3`, `ceph` or `swift`.
#[derive(Debug, Clone)]
pub enum IncomingDriver {
    File,
    Redis { url: String },
    S3(S3Config),
    Ceph(gnocchi_storage::ceph::CephOptions),
    Swift(Box<SwiftOptions>),
}

/// `[storage] driver`: `file` (the embedded redb store), `redis`, `s3`, `ceph` or `swift`.
#[derive(Debug, Clone)]
pub enum StorageDriver {
    File,
    Redis { url: String },
    S3(S3Config),
    Ceph(gnocchi_storage::ceph::CephOptions),
    Swift(Box<SwiftOptions>),
}

/// Upstream's `s3_*` options of `section`; under `[incoming]` each defaults
/// to the `[storage]` one (upstream's `${storage.s3_...}` defaults).
fn s3_options(src: &Source, section: &str) -> Result<S3Config, ConfigError> {
    let get = |key: &str| {
        let own = src.get(section, key);
        if section == "storage" {
            own
        } else {
            own.or_else(|| src.get("storage", key))
        }
    };
    let d = S3Config::default();
    let invalid = |key: &str, v: &str, what: &str| ConfigError::Invalid {
        section: section.into(),
        key: key.into(),
        message: format!("`{v}' is not {what}"),
    };
    let timeout = "s3_check_consistency_timeout";
    let pool = "s3_max_pool_connections";
    Ok(S3Config {
        endpoint_url: get("s3_endpoint_url"),
        region_name: get("s3_region_name"),
        access_key_id: get("s3_access_key_id"),
        secret_access_key: get("s3_secret_access_key"),
        bucket_prefix: get("s3_bucket_prefix").unwrap_or(d.bucket_prefix),
        check_consistency_timeout: match get(timeout) {
            None => d.check_consistency_timeout,
            Some(v) => (v.parse::<f64>().ok().filter(|f| *f >= 0.0))
                .ok_or_else(|| invalid(timeout, &v, "a number of seconds >= 0"))?,
        },
        max_pool_connections: match get(pool) {
            None => d.max_pool_connections,
            Some(v) => (v.parse::<usize>().ok().filter(|n| *n >= 1))
                .ok_or_else(|| invalid(pool, &v, "an integer >= 1"))?,
        },
    })
}

/// Upstream's `ceph_*` options of `section`, each defaulting to `defaults`
/// (`[storage]`'s, for `[incoming]`, as upstream's `${storage.ceph_pool}`).
fn ceph_options(
    src: &Source,
    section: &str,
    defaults: gnocchi_storage::ceph::CephOptions,
) -> gnocchi_storage::ceph::CephOptions {
    gnocchi_storage::ceph::CephOptions {
        pool: src.get(section, "ceph_pool").unwrap_or(defaults.pool),
        username: src.get(section, "ceph_username").or(defaults.username),
        secret: src.get(section, "ceph_secret").or(defaults.secret),
        keyring: src.get(section, "ceph_keyring").or(defaults.keyring),
        timeout: src.get(section, "ceph_timeout").or(defaults.timeout),
        conffile: src
            .get(section, "ceph_conffile")
            .unwrap_or(defaults.conffile),
    }
}

/// Upstream's 18 `swift_*` options of `section`; under `[incoming]` each
/// defaults to the `[storage]` one. `swift_preauthurl`, the name before
/// `swift_url`, is read when `swift_url` is not set.
fn swift_options(src: &Source, section: &str) -> Result<SwiftOptions, ConfigError> {
    let get = |key: &str| {
        let own = src.get(section, key);
        if section == "storage" {
            own
        } else {
            own.or_else(|| src.get("storage", key))
        }
    };
    let invalid = |key: &str, v: &str, what: &str| ConfigError::Invalid {
        section: section.into(),
        key: key.into(),
        message: format!("`{v}' is not {what}"),
    };
    let boolean = |key: &str| -> Result<bool, ConfigError> {
        match get(key) {
            None => Ok(false),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(invalid(key, &v, "a boolean")),
            },
        }
    };
    let d = SwiftOptions::default();
    let endpoint_type = get("swift_endpoint_type").unwrap_or(d.endpoint_type);
    if !["publicURL", "internalURL", "adminURL"].contains(&endpoint_type.as_str()) {
        return Err(invalid(
            "swift_endpoint_type",
            &endpoint_type,
            "one of publicURL, internalURL, adminURL",
        ));
    }
    let timeout = "swift_timeout";
    Ok(SwiftOptions {
        auth_version: get("swift_auth_version").unwrap_or(d.auth_version),
        auth_insecure: boolean("swift_auth_insecure")?,
        url: get("swift_url").or_else(|| get("swift_preauthurl")),
        authurl: get("swift_authurl").unwrap_or(d.authurl),
        preauthtoken: get("swift_preauthtoken"),
        cacert: get("swift_cacert"),
        region: get("swift_region"),
        user: get("swift_user").unwrap_or(d.user),
        user_domain_name: get("swift_user_domain_name").unwrap_or(d.user_domain_name),
        key: get("swift_key").unwrap_or(d.key),
        project_name: get("swift_project_name").or_else(|| get("swift_tenant_name")),
        project_domain_name: get("swift_project_domain_name").unwrap_or(d.project_domain_name),
        container_prefix: get("swift_container_prefix").unwrap_or(d.container_prefix),
        container_prefix_all: boolean("swift_container_prefix_all")?,
        storage_policy: get("swift_storage_policy"),
        endpoint_type,
        service_type: get("swift_service_type").unwrap_or(d.service_type),
        timeout: match get(timeout) {
            None => d.timeout,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| invalid(timeout, &v, "an integer >= 0"))?,
        },
    })
}

const DEFAULT_REDIS_URL: &str = "redis://localhost:6379/";

/// `[storage]` and `[incoming]` with upstream's option names; each `[incoming]`
/// option defaults to the `[storage]` one, as upstream.
pub(super) fn drivers(src: &Source) -> Result<(StorageDriver, IncomingDriver), ConfigError> {
    let storage_driver = src
        .get("storage", "driver")
        .unwrap_or_else(|| "file".into());
    let storage_redis = src
        .get("storage", "redis_url")
        .unwrap_or_else(|| DEFAULT_REDIS_URL.into());
    let storage_ceph = ceph_options(src, "storage", Default::default());
    let storage = match storage_driver.as_str() {
        "file" => StorageDriver::File,
        "redis" => StorageDriver::Redis {
            url: storage_redis.clone(),
        },
        "s3" => StorageDriver::S3(s3_options(src, "storage")?),
        "ceph" => StorageDriver::Ceph(storage_ceph.clone()),
        "swift" => StorageDriver::Swift(Box::new(swift_options(src, "storage")?)),
        other => {
            return Err(ConfigError::Invalid {
                section: "storage".into(),
                key: "driver".into(),
                message: format!(
                    "unsupported driver `{other}' (supported: file, redis, s3, ceph, swift)"
                ),
            });
        }
    };
    let incoming_driver = src.get("incoming", "driver").unwrap_or(storage_driver);
    let incoming = match incoming_driver.as_str() {
        "file" => IncomingDriver::File,
        "redis" => IncomingDriver::Redis {
            url: src.get("incoming", "redis_url").unwrap_or(storage_redis),
        },
        "s3" => IncomingDriver::S3(s3_options(src, "incoming")?),
        "ceph" => IncomingDriver::Ceph(ceph_options(src, "incoming", storage_ceph)),
        "swift" => IncomingDriver::Swift(Box::new(swift_options(src, "incoming")?)),
        other => {
            return Err(ConfigError::Invalid {
                section: "incoming".into(),
                key: "driver".into(),
                message: format!(
                    "unsupported driver `{other}' (supported: file, redis, s3, ceph, swift)"
                ),
            });
        }
    };
    Ok((storage, incoming))
}
