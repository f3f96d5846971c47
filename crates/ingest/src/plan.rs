//! Resolving a [`Request`] against the index: which metrics exist, what must
//! be created (resource types, resources, metrics, with the archive policy
//! the rules give), and what cannot be written ([`Problem`]s).
//!
//! Planning only reads, in a fixed number of queries whatever the size of the
//! request: the metrics named by id, the resources named, their metrics, and
//! (only when something is to be created) the rules, the archive policies and
//! the resource types involved.

use crate::request::{MetricRef, Missing, NamedWrite, Request, ResourceWrite};
use carbonara::ArchivePolicy;
use gnocchi_index::{
    ArchivePolicyRule, AttrValue, Filter, FilterValue, GENERIC, IndexError, Indexer, Metric,
    MetricSpec, NewMetric, NewResource, Resource, ResourceQuery, ResourceType, valid_metric_name,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// What a request would do, for the caller to authorize before anything is
/// written. Everything in it is a consequence of the request and of the index
/// as it was read; nothing of it exists yet.
#[derive(Debug, Default)]
pub struct Plan {
    /// What cannot be written, in request order. The service writes the rest;
    /// a caller that must refuse the whole request refuses in its authorizer.
    pub problems: Vec<Problem>,
    pub new_resource_types: Vec<ResourceType>,
    /// New resources, each with the metrics it is created with.
    pub new_resources: Vec<NewResource>,
    /// Existing resources that get new named metrics (upstream: an update of
    /// the resource).
    pub grown_resources: Vec<GrownResource>,
    /// New metrics of existing resources (upstream: a metric creation).
    pub new_metrics: Vec<PlannedMetric>,
    /// Every metric that receives measures, existing or to be created (then
    /// as it will be, with a nil id when the index assigns it).
    pub appends: Vec<Append>,
}

/// An existing resource and the metrics it gets.
#[derive(Debug)]
pub struct GrownResource {
    pub resource: Resource,
    pub metrics: Vec<(String, MetricSpec)>,
}

/// A new metric of an existing resource.
#[derive(Debug)]
pub struct PlannedMetric {
    pub metric: NewMetric,
    /// Its resource's id as the client wrote it.
    pub original_resource_id: String,
}

/// Measures going to one metric.
#[derive(Debug)]
pub struct Append {
    /// The metric, or what it will be once created.
    pub metric: Metric,
    /// Where its measures are in the request.
    pub(crate) slot: Slot,
    /// Created with a resource (new or grown): its id is known only then.
    pub(crate) id_from_resource: bool,
}

/// A measures list of the request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    Metric(usize),
    Named(usize, usize),
}

/// Why part of a request cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No active metric has this id.
    UnknownMetric(Uuid),
    /// The resource has no metric of this name (or does not exist), and the
    /// request creates none.
    UnknownNamedMetric { resource: Uuid, name: String },
    /// The resource whose metrics would be created does not exist.
    UnknownResource { id: Uuid, original_id: String },
    /// The resource a write protocol writes into exists under another type.
    ResourceOfAnotherType { id: Uuid },
    /// Metric names cannot contain `/`.
    SlashInMetricName(String),
    /// No archive policy named, and no rule matches the metric's name.
    NoArchivePolicyRule(String),
    /// The archive policy named for a new metric does not exist.
    ArchivePolicyNotFound(String),
}

impl Plan {
    /// Does the plan create anything in the index?
    pub fn creates_anything(&self) -> bool {
        !(self.new_resource_types.is_empty()
            && self.new_resources.is_empty()
            && self.grown_resources.is_empty()
            && self.new_metrics.is_empty())
    }
}

/// What planning looks up lazily, at most once per request.
struct Lookups<'a> {
    indexer: &'a dyn Indexer,
    rules: Option<Vec<ArchivePolicyRule>>,
    policies: HashMap<String, Option<Arc<ArchivePolicy>>>,
    types: HashMap<String, bool>,
}

impl Lookups<'_> {
    /// The archive policy of a new metric, or why it has none.
    async fn policy_of(
        &mut self,
        write: &NamedWrite,
    ) -> Result<Result<Arc<ArchivePolicy>, Problem>, IndexError> {
        if !valid_metric_name(&write.name) {
            return Ok(Err(Problem::SlashInMetricName(write.name.clone())));
        }
        let name = match &write.archive_policy_name {
            Some(n) => n.clone(),
            None => {
                if self.rules.is_none() {
                    self.rules = Some(self.indexer.list_archive_policy_rules().await?);
                }
                let rules = self.rules.as_deref().unwrap_or_default();
                match ArchivePolicyRule::policy_for(rules, &write.name) {
                    Some(p) => p.to_string(),
                    None => return Ok(Err(Problem::NoArchivePolicyRule(write.name.clone()))),
                }
            }
        };
        if !self.policies.contains_key(&name) {
            let ap = self.indexer.get_archive_policy(&name).await?.map(Arc::new);
            self.policies.insert(name.clone(), ap);
        }
        Ok(self.policies[&name]
            .clone()
            .ok_or(Problem::ArchivePolicyNotFound(name)))
    }

    /// Does the resource type exist (asked once per name)?
    async fn type_exists(&mut self, name: &str) -> Result<bool, IndexError> {
        if let Some(&e) = self.types.get(name) {
            return Ok(e);
        }
        let e = self.indexer.get_resource_type(name).await?.is_some();
        self.types.insert(name.to_string(), e);
        Ok(e)
    }
}

/// Resolve `req` against the index.
pub(crate) async fn plan(indexer: &dyn Indexer, req: &Request) -> Result<Plan, IndexError> {
    let mut plan = Plan::default();
    plan_metric_writes(indexer, req, &mut plan).await?;
    if req.resources.is_empty() {
        return Ok(plan);
    }
    let resources = existing_resources(indexer, &req.resources).await?;
    let metrics = existing_metrics(indexer, &req.resources, &resources).await?;
    let mut lookups = Lookups {
        indexer,
        rules: None,
        policies: HashMap::new(),
        types: HashMap::new(),
    };
    let mut planned_types = HashSet::new();
    for (ri, write) in req.resources.iter().enumerate() {
        let resource = ResourcePlanner {
            req,
            ri,
            write,
            plan: &mut plan,
            lookups: &mut lookups,
        };
        match resources.get(&write.id) {
            Some(r) => resource.existing(r, &metrics).await?,
            None => resource.missing(&mut planned_types).await?,
        }
    }
    Ok(plan)
}

/// The writes to metrics named by id.
async fn plan_metric_writes(
    indexer: &dyn Indexer,
    req: &Request,
    plan: &mut Plan,
) -> Result<(), IndexError> {
    let ids: Vec<Uuid> = req
        .metrics
        .iter()
        .filter_map(|w| match &w.metric {
            MetricRef::Id(id) => Some(*id),
            MetricRef::Found(_) => None,
        })
        .collect();
    let found: HashMap<Uuid, Metric> = if ids.is_empty() {
        HashMap::new()
    } else {
        indexer
            .get_metrics(&ids)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect()
    };
    for (i, w) in req.metrics.iter().enumerate() {
        let metric = match &w.metric {
            MetricRef::Found(m) => m.clone(),
            MetricRef::Id(id) => match found.get(id) {
                Some(m) => m.clone(),
                None => {
                    plan.problems.push(Problem::UnknownMetric(*id));
                    continue;
                }
            },
        };
        plan.appends.push(Append {
            metric,
            slot: Slot::Metric(i),
            id_from_resource: false,
        });
    }
    Ok(())
}

/// The resources the request names that exist, by id (one query).
async fn existing_resources(
    indexer: &dyn Indexer,
    writes: &[ResourceWrite],
) -> Result<HashMap<Uuid, Resource>, IndexError> {
    let ids: HashSet<Uuid> = writes.iter().map(|w| w.id).collect();
    let mut query = ResourceQuery::new(GENERIC);
    query.filter = Some(Filter::In {
        field: "id".into(),
        values: ids
            .iter()
            .map(|id| FilterValue::String(id.to_string()))
            .collect(),
    });
    Ok(indexer
        .list_resources(&query)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect())
}

/// The metrics the request names on existing resources, by id (one query).
async fn existing_metrics(
    indexer: &dyn Indexer,
    writes: &[ResourceWrite],
    resources: &HashMap<Uuid, Resource>,
) -> Result<HashMap<Uuid, Metric>, IndexError> {
    let mut ids = Vec::new();
    for w in writes {
        if let Some(r) = resources.get(&w.id) {
            ids.extend(w.metrics.iter().filter_map(|n| metric_id(r, &n.name)));
        }
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(indexer
        .get_metrics(&ids)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect())
}

fn metric_id(r: &Resource, name: &str) -> Option<Uuid> {
    r.metrics.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
}

/// Plans one [`ResourceWrite`].
struct ResourcePlanner<'p, 'l, 'i> {
    req: &'p Request,
    ri: usize,
    write: &'p ResourceWrite,
    plan: &'p mut Plan,
    lookups: &'l mut Lookups<'i>,
}

impl ResourcePlanner<'_, '_, '_> {
    /// The metric a new metric named by `write` will be (id nil until created
    /// with a resource), or why there is none.
    async fn new_metric(
        &mut self,
        mi: usize,
        id: Uuid,
        id_from_resource: bool,
    ) -> Result<Option<(MetricSpec, Metric)>, IndexError> {
        let named = &self.write.metrics[mi];
        let policy = match self.lookups.policy_of(named).await? {
            Ok(p) => p,
            Err(problem) => {
                self.plan.problems.push(problem);
                return Ok(None);
            }
        };
        let metric = Metric {
            id,
            name: Some(named.name.clone()),
            unit: named.unit.clone(),
            resource_id: Some(self.write.id),
            creator: self.req.creator.clone(),
            archive_policy: policy.clone(),
        };
        self.plan.appends.push(Append {
            metric: metric.clone(),
            slot: Slot::Named(self.ri, mi),
            id_from_resource,
        });
        let spec = MetricSpec::New {
            archive_policy_name: policy.name.clone(),
            unit: named.unit.clone(),
        };
        Ok(Some((spec, metric)))
    }

    async fn existing(
        mut self,
        r: &Resource,
        metrics: &HashMap<Uuid, Metric>,
    ) -> Result<(), IndexError> {
        if let Missing::CreateResource(auto) = &self.write.missing
            && !auto.any_type
            && r.resource_type != auto.resource_type.name
        {
            self.plan
                .problems
                .push(Problem::ResourceOfAnotherType { id: r.id });
            return Ok(());
        }
        let mut grown = Vec::new();
        for (mi, named) in self.write.metrics.iter().enumerate() {
            if let Some(m) = metric_id(r, &named.name).and_then(|id| metrics.get(&id)) {
                self.plan.appends.push(Append {
                    metric: m.clone(),
                    slot: Slot::Named(self.ri, mi),
                    id_from_resource: false,
                });
                continue;
            }
            match &self.write.missing {
                Missing::Refuse => self.plan.problems.push(Problem::UnknownNamedMetric {
                    resource: r.id,
                    name: named.name.clone(),
                }),
                Missing::CreateMetrics => {
                    if let Some((_, m)) = self.new_metric(mi, Uuid::new_v4(), false).await? {
                        self.plan.new_metrics.push(PlannedMetric {
                            metric: NewMetric {
                                id: m.id,
                                name: m.name,
                                unit: m.unit,
                                resource_id: m.resource_id,
                                creator: m.creator,
                                archive_policy_name: m.archive_policy.name.clone(),
                            },
                            original_resource_id: self.write.original_id.clone(),
                        });
                    }
                }
                Missing::CreateResource(_) => {
                    if let Some((spec, _)) = self.new_metric(mi, Uuid::nil(), true).await? {
                        grown.push((named.name.clone(), spec));
                    }
                }
            }
        }
        if !grown.is_empty() {
            self.plan.grown_resources.push(GrownResource {
                resource: r.clone(),
                metrics: grown,
            });
        }
        Ok(())
    }

    async fn missing(mut self, planned_types: &mut HashSet<String>) -> Result<(), IndexError> {
        let write = self.write;
        let auto = match &write.missing {
            Missing::Refuse => {
                for named in &write.metrics {
                    self.plan.problems.push(Problem::UnknownNamedMetric {
                        resource: write.id,
                        name: named.name.clone(),
                    });
                }
                return Ok(());
            }
            Missing::CreateMetrics => {
                if !write.metrics.is_empty() {
                    self.plan.problems.push(Problem::UnknownResource {
                        id: write.id,
                        original_id: write.original_id.clone(),
                    });
                }
                return Ok(());
            }
            Missing::CreateResource(auto) => auto,
        };
        let rtype = &auto.resource_type;
        if !self.lookups.type_exists(&rtype.name).await? && planned_types.insert(rtype.name.clone())
        {
            self.plan.new_resource_types.push(rtype.clone());
        }
        let mut metrics = Vec::with_capacity(write.metrics.len());
        for (mi, named) in write.metrics.iter().enumerate() {
            if let Some((spec, _)) = self.new_metric(mi, Uuid::nil(), true).await? {
                metrics.push((named.name.clone(), spec));
            }
        }
        self.plan.new_resources.push(NewResource {
            id: write.id,
            resource_type: rtype.name.clone(),
            original_resource_id: write.original_id.clone(),
            creator: self.req.creator.clone(),
            user_id: None,
            project_id: None,
            started_at: None,
            ended_at: None,
            attributes: auto
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), AttrValue::String(v.clone())))
                .collect(),
            metrics,
        });
        Ok(())
    }
}
