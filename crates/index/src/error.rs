//! Errors of the index, named in the caller's terms.

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("Archive policy {0} already exists")]
    ArchivePolicyAlreadyExists(String),
    #[error("Archive policy {0} does not exist")]
    ArchivePolicyNotFound(String),
    #[error("Archive policy {0} is still in use")]
    ArchivePolicyInUse(String),
    #[error("Archive policy rule {0} already exists")]
    ArchivePolicyRuleAlreadyExists(String),
    #[error("Archive policy rule {0} does not exist")]
    ArchivePolicyRuleNotFound(String),
    #[error("Metric {0} does not exist")]
    MetricNotFound(uuid::Uuid),
    #[error("Named metric {0} already exists")]
    NamedMetricAlreadyExists(String),
    #[error("Sort key supplied is invalid: {0}")]
    InvalidSortKey(String),
    #[error("Invalid marker: `{0}'")]
    InvalidMarker(String),
    #[error("Resource type {0} already exists")]
    ResourceTypeAlreadyExists(String),
    #[error("Resource type {0} does not exist")]
    ResourceTypeNotFound(String),
    #[error("Resource type {0} is still in use")]
    ResourceTypeInUse(String),
    #[error("Resource {0} already exists")]
    ResourceAlreadyExists(uuid::Uuid),
    #[error("Resource {0} does not exist")]
    ResourceNotFound(String),
    /// A value the resource cannot take (e.g. ended before it started).
    #[error("{0}")]
    InvalidResourceValue(String),
    #[error("Invalid value: `{value}' for field `{field}'")]
    QueryValueError { value: String, field: String },
    #[error("Resource type {resource_type} has no {attribute} attribute")]
    QueryAttributeError {
        resource_type: String,
        attribute: String,
    },
    #[error("{0}")]
    InvalidQuery(String),
    /// Anything the database itself reports: a 500 for the API.
    #[error("index backend error: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for IndexError {
    fn from(e: sqlx::Error) -> Self {
        IndexError::Backend(e.to_string())
    }
}
