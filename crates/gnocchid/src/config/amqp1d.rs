//! `[amqp1d]`: upstream's options (`url`, `data_source`, `resource_type`,
//! `creator`, `flush_delay`) plus our `enabled`, which runs the daemon inside
//! the all-in-one server. Each option defaults to `Amqp1dConfig::default()`'s.

use super::{ConfigError, Source};
use gnocchi_amqpd::Amqp1dConfig;
use std::time::Duration;

/// `[amqp1d]` (wired by `crate::amqpd`).
#[derive(Debug, Clone, Default)]
pub struct Amqp1dSettings {
    /// Run the daemon inside the all-in-one server.
    pub enabled: bool,
    pub daemon: Amqp1dConfig,
}

const SECTION: &str = "amqp1d";

pub(super) fn settings(src: &Source) -> Result<Amqp1dSettings, ConfigError> {
    let d = Amqp1dSettings::default();
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        section: SECTION.into(),
        key: key.into(),
        message,
    };
    let flush_delay = match src.get(SECTION, "flush_delay") {
        None => d.daemon.flush_delay,
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|f| *f > 0.0)
            .and_then(|f| Duration::try_from_secs_f64(f).ok())
            .ok_or_else(|| {
                invalid(
                    "flush_delay",
                    format!("`{s}' is not a positive number of seconds"),
                )
            })?,
    };
    let data_source = src
        .get(SECTION, "data_source")
        .unwrap_or(d.daemon.data_source);
    // oslo.config's `choices`: upstream refuses to start on another value.
    if data_source != "collectd" {
        return Err(invalid(
            "data_source",
            format!("`{data_source}' is not one of: collectd"),
        ));
    }
    Ok(Amqp1dSettings {
        enabled: src.boolean(SECTION, "enabled", d.enabled)?,
        daemon: Amqp1dConfig {
            url: src.get(SECTION, "url").unwrap_or(d.daemon.url),
            data_source,
            resource_type: src
                .get(SECTION, "resource_type")
                .unwrap_or(d.daemon.resource_type),
            creator: src.get(SECTION, "creator").or(d.daemon.creator),
            flush_delay,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Amqp1dSettings, ConfigError> {
        let ini = ini::Ini::load_from_str(text).expect("ini");
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        settings(&Source {
            ini: Some(ini),
            env: &lookup,
        })
    }

    #[test]
    fn defaults_are_upstreams() {
        let s = load("", &[]).unwrap();
        assert!(!s.enabled);
        assert_eq!(s.daemon.url, "localhost:5672/u/collectd/telemetry");
        assert_eq!(s.daemon.resource_type, "collectd_amqp1d");
        assert_eq!(s.daemon.flush_delay, Duration::from_secs(10));
        assert_eq!(s.daemon.creator, None);
    }

    #[test]
    fn options_from_the_file_and_the_environment() {
        let s = load(
            "[amqp1d]\nurl = h:1//collectd/telemetry\nresource_type = hosts\ncreator = admin\nflush_delay = 0.5\n",
            &[("OS_AMQP1D__ENABLED", "true")],
        )
        .unwrap();
        assert!(s.enabled);
        assert_eq!(s.daemon.url, "h:1//collectd/telemetry");
        assert_eq!(s.daemon.resource_type, "hosts");
        assert_eq!(s.daemon.creator.as_deref(), Some("admin"));
        assert_eq!(s.daemon.flush_delay, Duration::from_millis(500));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(load("[amqp1d]\nflush_delay = 0\n", &[]).is_err());
        assert!(load("[amqp1d]\nflush_delay = soon\n", &[]).is_err());
        assert!(load("[amqp1d]\ndata_source = statsd\n", &[]).is_err());
    }
}
