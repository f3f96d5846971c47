//! The records the index stores.

use carbonara::ArchivePolicy;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePolicyRule {
    pub name: String,
    /// fnmatch glob on metric names.
    pub metric_pattern: String,
    pub archive_policy_name: String,
}

/// Metric names cannot contain `/` (they are path segments of the API's URLs).
pub fn valid_metric_name(name: &str) -> bool {
    !name.contains('/')
}

impl ArchivePolicyRule {
    /// Does this rule apply to a metric named `name`?
    pub fn matches(&self, name: &str) -> bool {
        crate::fnmatch::fnmatch(name, &self.metric_pattern)
    }

    /// The archive policy a new metric named `name` gets: that of the first
    /// of `rules` (as [`Indexer::list_archive_policy_rules`](crate::Indexer::list_archive_policy_rules)
    /// orders them, upstream's match order) whose pattern matches.
    pub fn policy_for<'r>(rules: &'r [ArchivePolicyRule], name: &str) -> Option<&'r str> {
        rules
            .iter()
            .find(|r| r.matches(name))
            .map(|r| r.archive_policy_name.as_str())
    }
}

/// An active metric, with its archive policy loaded.
#[derive(Debug, Clone)]
pub struct Metric {
    pub id: Uuid,
    pub name: Option<String>,
    pub unit: Option<String>,
    pub resource_id: Option<Uuid>,
    /// Authenticated identity that created it (`user` or `user:project`).
    pub creator: Option<String>,
    pub archive_policy: Arc<ArchivePolicy>,
}

#[derive(Debug, Clone)]
pub struct NewMetric {
    pub id: Uuid,
    pub name: Option<String>,
    pub unit: Option<String>,
    pub resource_id: Option<Uuid>,
    pub creator: Option<String>,
    pub archive_policy_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    /// The backend's default for the direction (first for desc, last for asc, as PostgreSQL).
    Default,
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub key: String,
    pub dir: SortDir,
    pub nulls: Nulls,
}

/// Exact-match filters, sort and keyset pagination for metric listings.
#[derive(Debug, Clone, Default)]
pub struct MetricQuery {
    pub ids: Vec<Uuid>,
    pub name: Option<String>,
    pub unit: Option<String>,
    pub archive_policy_name: Option<String>,
    /// Exact match, except upstream's partial forms: `"user:"` matches every creator
    /// starting with it (that user, any project), `":project"` every creator ending
    /// with it (any user of that project).
    pub creator: Option<String>,
    pub resource_id: Option<Uuid>,
    /// Keys among id, name, unit, archive_policy_name, creator, resource_id;
    /// `id` is always appended as the tie-breaker. Unknown → `InvalidSortKey`.
    pub sort: Vec<SortKey>,
    pub limit: Option<usize>,
    /// Id of the last metric of the previous page. Unknown → `InvalidMarker`.
    pub marker: Option<String>,
    /// Multi-tenancy: only what a project may see (`None`: no restriction).
    pub visibility: Option<MetricVisibility>,
}

/// The metrics a (keystone) project may see: those matching any of the set
/// conditions; with none set, nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricVisibility {
    /// Created by this project: `creator LIKE '%:<project>'`.
    pub created_by_project: Option<String>,
    /// Attached to a resource whose `project_id` is this.
    pub resource_project: Option<String>,
}
