//! Resources and resource types as the index stores them.

use crate::filter::Filter;
use crate::model::SortKey;
use uuid::Uuid;

/// The type every install has, created by the first upgrade; it has no attributes
/// of its own and every resource is also a `generic` resource.
pub const GENERIC: &str = "generic";

/// Upstream's resource type states. Our DDL runs inside the same transaction as
/// the type's row, so a type is only ever seen `active`; the other states are
/// kept so a database shared with upstream tooling reads back faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceTypeState {
    Creating,
    Active,
    CreationError,
    Deleting,
    DeletionError,
    Updating,
    UpdatingError,
}

impl ResourceTypeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceTypeState::Creating => "creating",
            ResourceTypeState::Active => "active",
            ResourceTypeState::CreationError => "creation_error",
            ResourceTypeState::Deleting => "deleting",
            ResourceTypeState::DeletionError => "deletion_error",
            ResourceTypeState::Updating => "updating",
            ResourceTypeState::UpdatingError => "updating_error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "creating" => ResourceTypeState::Creating,
            "active" => ResourceTypeState::Active,
            "creation_error" => ResourceTypeState::CreationError,
            "deleting" => ResourceTypeState::Deleting,
            "deletion_error" => ResourceTypeState::DeletionError,
            "updating" => ResourceTypeState::Updating,
            "updating_error" => ResourceTypeState::UpdatingError,
            _ => return None,
        })
    }
}

/// The type of a resource type attribute, with its constraints.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeKind {
    String {
        min_length: u32,
        max_length: u32,
    },
    Uuid,
    /// Bounds as the client wrote them: upstream keeps a JSON integer an
    /// integer and a float a float (`16` and `16.0` come back as sent).
    Number {
        min: Option<serde_json::Number>,
        max: Option<serde_json::Number>,
    },
    Bool,
    Datetime,
}

impl AttributeKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeKind::String { .. } => "string",
            AttributeKind::Uuid => "uuid",
            AttributeKind::Number { .. } => "number",
            AttributeKind::Bool => "bool",
            AttributeKind::Datetime => "datetime",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttributeSchema {
    pub name: String,
    pub required: bool,
    pub kind: AttributeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub name: String,
    pub state: ResourceTypeState,
    /// In definition order.
    pub attributes: Vec<AttributeSchema>,
    /// Backend table holding the attributes (`rt_<hex>`, plus `rt_<hex>_history`);
    /// `None` for `generic`, which has no attributes of its own.
    pub tablename: Option<String>,
}

impl ResourceType {
    pub fn attribute(&self, name: &str) -> Option<&AttributeSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// A typed attribute value (already validated against its schema by the caller).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Null,
    String(String),
    Uuid(Uuid),
    Number(f64),
    Bool(bool),
    /// Nanoseconds since the epoch, UTC.
    Datetime(i64),
}

/// How to attach a metric to a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricSpec {
    /// An existing active metric of the same creator (renamed to the given name).
    Existing(Uuid),
    /// A new metric.
    New {
        archive_policy_name: String,
        unit: Option<String>,
    },
}

/// One revision of a resource (the current one, or one from its history).
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: Uuid,
    pub resource_type: String,
    /// The id as the client sent it (the UUID's text when it was one).
    pub original_resource_id: String,
    pub creator: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    /// Nanoseconds since the epoch (microsecond precision, as upstream stores).
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub revision_start: i64,
    /// `None` for the current revision.
    pub revision_end: Option<i64>,
    /// `-1` for the current revision, else the history row's number (increasing
    /// over the whole index): the second half of `id@revision` markers.
    pub revision: i64,
    /// The type's own attributes (empty for `generic`, or when not loaded).
    pub attributes: Vec<(String, AttrValue)>,
    /// Active metrics attached to the resource *now* (also for history rows), by name.
    pub metrics: Vec<(String, Uuid)>,
}

#[derive(Debug, Clone)]
pub struct NewResource {
    pub id: Uuid,
    pub resource_type: String,
    pub original_resource_id: String,
    pub creator: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    /// `None`: now.
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Values for the type's attributes; missing ones are NULL.
    pub attributes: Vec<(String, AttrValue)>,
    pub metrics: Vec<(String, MetricSpec)>,
}

/// A partial update. `None` fields are left alone.
#[derive(Debug, Clone, Default)]
pub struct ResourceUpdate {
    pub user_id: Option<Option<String>>,
    pub project_id: Option<Option<String>>,
    pub started_at: Option<i64>,
    pub ended_at: Option<Option<i64>>,
    pub attributes: Vec<(String, AttrValue)>,
    /// Replaces the metric set (detaching, not deleting, the others) unless
    /// `append_metrics`. Never creates a revision.
    pub metrics: Option<Vec<(String, MetricSpec)>>,
    pub append_metrics: bool,
}

/// Changes to a resource type's attributes, applied in one transaction.
#[derive(Debug, Clone, Default)]
pub struct ResourceTypeUpdate {
    /// New attributes, with the value written into existing rows (current and history).
    pub add: Vec<(AttributeSchema, Option<AttrValue>)>,
    /// Existing attributes whose constraints change (same type); NULLs in existing
    /// rows get the fill value when one is given.
    pub update: Vec<(AttributeSchema, Option<AttrValue>)>,
    pub remove: Vec<String>,
}

/// A resource listing or search.
#[derive(Debug, Clone)]
pub struct ResourceQuery {
    pub resource_type: String,
    pub filter: Option<Filter>,
    /// When listing `generic`, also load each resource's own type attributes.
    pub details: bool,
    /// Match and return every revision, not only the current ones.
    pub history: bool,
    /// Empty: upstream's default, `revision_start`, `started_at` (ascending).
    /// Keys: the base fields and the type's attributes (plus `revision`,
    /// `revision_end` with history); `id` (and `revision`) are appended as
    /// tie-breakers. Unknown → `InvalidSortKey`.
    pub sort: Vec<SortKey>,
    pub limit: Option<usize>,
    /// A resource id, or `id@revision` with history. Unknown → `InvalidMarker`.
    pub marker: Option<String>,
}

impl ResourceQuery {
    pub fn new(resource_type: impl Into<String>) -> Self {
        ResourceQuery {
            resource_type: resource_type.into(),
            filter: None,
            details: false,
            history: false,
            sort: Vec::new(),
            limit: None,
            marker: None,
        }
    }
}

/// SPEC §1.7: the UUID a client's resource id stands for. A UUID (any of
/// Python's spellings) is itself; any other string (≤ 289 chars, no `/`) is
/// `uuid5(NAMESPACE, id + "\0" + creator)`, so each creator has its own namespace.
pub fn resource_uuid(id: &str, creator: &str) -> Result<Uuid, String> {
    if id.contains('/') {
        return Err("'/' is not supported in resource id".into());
    }
    let braced = id
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(id);
    let compact = braced
        .strip_prefix("urn:uuid:")
        .unwrap_or(braced)
        .replace('-', "");
    if compact.len() == 32 && compact.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Uuid::parse_str(&compact).map_err(|e| e.to_string());
    }
    if id.chars().count() > 289 {
        return Err("transformable resource id >289 max allowed characters".into());
    }
    const NAMESPACE: Uuid = Uuid::from_u128(0x0a7a15ff_aa13_4ac2_897c_9bdf30ce175b);
    let creator = if creator.is_empty() { "\x00" } else { creator };
    Ok(Uuid::new_v5(
        &NAMESPACE,
        format!("{id}\x00{creator}").as_bytes(),
    ))
}
