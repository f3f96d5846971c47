//! The measures received during one flush interval, per host and metric,
//! and the ingest [`Request`] that writes them: one resource per host, of
//! the configured type, created with its `host` attribute (as upstream's
//! gnocchi-amqpd does: resource id `<resource_type>:<host>` with `/` in the
//! host replaced by `_`, mapped to a UUID with the creator as the API maps
//! resource ids), and the metrics it lacks created with the archive policy
//! the rules give their names.

use crate::collectd::{MAX_HOST_LENGTH, Sample};
use carbonara::Measure;
use gnocchi_index::{AttributeKind, AttributeSchema, ResourceType, ResourceTypeState};
use gnocchi_ingest::{AutoResource, Missing, NamedWrite, Request, ResourceWrite};
use std::collections::BTreeMap;

/// One host's measures.
#[derive(Debug, Default)]
struct HostMeasures {
    /// The host as collectd named it (the resource's `host` attribute).
    host: String,
    metrics: BTreeMap<String, Vec<Measure>>,
}

/// Measures waiting for the next flush, keyed by resource id (`type:host`).
#[derive(Debug, Default)]
pub struct Batch {
    hosts: BTreeMap<String, HostMeasures>,
    measures: usize,
}

impl Batch {
    pub fn add(&mut self, resource_type: &str, sample: Sample) {
        let id = resource_original_id(resource_type, &sample.host);
        let host = self.hosts.entry(id).or_insert_with(|| HostMeasures {
            host: sample.host,
            metrics: BTreeMap::new(),
        });
        host.metrics
            .entry(sample.metric)
            .or_default()
            .push(sample.measure);
        self.measures += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.measures == 0
    }

    pub fn measures(&self) -> usize {
        self.measures
    }

    /// Empties the batch into one request; hosts whose resource id cannot
    /// be mapped to a UUID are returned apart, with the reason, to be logged.
    pub fn take_request(
        &mut self,
        resource_type: &str,
        creator: Option<&str>,
    ) -> (Request, Vec<(String, String)>) {
        self.measures = 0;
        let mut resources = Vec::with_capacity(self.hosts.len());
        let mut refused = Vec::new();
        for (original_id, h) in std::mem::take(&mut self.hosts) {
            let id = match gnocchi_index::resource_uuid(&original_id, creator.unwrap_or("")) {
                Ok(id) => id,
                Err(reason) => {
                    refused.push((original_id, reason));
                    continue;
                }
            };
            resources.push(ResourceWrite {
                id,
                original_id,
                missing: Missing::CreateResource(AutoResource {
                    resource_type: host_resource_type(resource_type),
                    attributes: vec![("host".into(), h.host)],
                    any_type: false,
                }),
                metrics: h
                    .metrics
                    .into_iter()
                    .map(|(name, measures)| NamedWrite::new(name, measures))
                    .collect(),
            });
        }
        let request = Request {
            creator: creator.map(str::to_string),
            metrics: Vec::new(),
            resources,
        };
        (request, refused)
    }
}

/// Upstream's resource id for a host: `<resource_type>:<host>`, `/` (which
/// no resource id may hold) replaced by `_`.
pub fn resource_original_id(resource_type: &str, host: &str) -> String {
    format!("{resource_type}:{}", host.replace('/', "_"))
}

/// The type upstream's daemon creates: one required string attribute,
/// `host`, of 0 to 255 characters.
pub fn host_resource_type(name: &str) -> ResourceType {
    ResourceType {
        name: name.to_string(),
        state: ResourceTypeState::Creating,
        attributes: vec![AttributeSchema {
            name: "host".into(),
            required: true,
            kind: AttributeKind::String {
                min_length: 0,
                max_length: MAX_HOST_LENGTH as u32,
            },
        }],
        tablename: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(host: &str, metric: &str, t: i64, v: f64) -> Sample {
        Sample {
            host: host.into(),
            metric: metric.into(),
            measure: Measure::new(t, v),
        }
    }

    #[test]
    fn one_resource_per_host_with_its_metrics_and_measures() {
        let mut b = Batch::default();
        b.add(
            "collectd_amqp1d",
            sample("a.example", "load@load-shortterm", 1, 1.0),
        );
        b.add(
            "collectd_amqp1d",
            sample("a.example", "load@load-shortterm", 2, 2.0),
        );
        b.add(
            "collectd_amqp1d",
            sample("b/x", "memory@memory-free", 1, 9.0),
        );
        assert_eq!(b.measures(), 3);
        let (req, refused) = b.take_request("collectd_amqp1d", Some("admin"));
        assert!(refused.is_empty());
        assert!(b.is_empty());
        let ids: Vec<&str> = req
            .resources
            .iter()
            .map(|r| r.original_id.as_str())
            .collect();
        assert_eq!(ids, ["collectd_amqp1d:a.example", "collectd_amqp1d:b_x"]);
        assert_eq!(req.resources[0].metrics[0].measures.len(), 2);
        let Missing::CreateResource(auto) = &req.resources[1].missing else {
            panic!("the resource is created when missing");
        };
        assert_eq!(auto.attributes, [("host".to_string(), "b/x".to_string())]);
        assert_eq!(auto.resource_type.name, "collectd_amqp1d");
        assert_eq!(req.creator.as_deref(), Some("admin"));
        assert_eq!(
            req.resources[0].id,
            gnocchi_index::resource_uuid("collectd_amqp1d:a.example", "admin").unwrap()
        );
    }

    #[test]
    fn ids_too_long_for_a_uuid_are_refused_apart() {
        let mut b = Batch::default();
        b.add("t", sample(&"h".repeat(300), "m", 1, 1.0));
        b.add("t", sample("ok", "m", 1, 1.0));
        let (req, refused) = b.take_request("t", None);
        assert_eq!(req.resources.len(), 1);
        assert_eq!(refused.len(), 1);
    }
}
