//! One indexer for every SQL engine: [`SqlIndexer`] implements [`Indexer`] and
//! [`crate::ResourceIndexer`] once, over a [`Backend`] that says how to reach the
//! engine (connections, transactions, the dialect to render statements in, and how
//! single-statement writes are carried).
//!
//! Backends: [`crate::sqlite`] (the embedded default: one writer connection with
//! group commit, WAL readers) and [`crate::server`] (PostgreSQL and MySQL/MariaDB
//! through sqlx pools). Statements come from [`crate::query`],
//! [`crate::resource_query`] and [`crate::schema`]: one definition, rendered per
//! dialect by sea-query. Rows are read through [`SqlRow`], which absorbs the
//! engines' differences in integer widths and booleans.
//!
//! Invariants: every multi-statement write runs in one transaction from
//! [`Backend::begin`]; a transaction dropped without [`Backend::commit`] is rolled
//! back; migrations run one at a time across processes ([`Backend::lock_upgrade`]).

mod resource;

use crate::codec;
use crate::model::{ArchivePolicyRule, Metric, MetricQuery, NewMetric};
use crate::query;
use crate::schema;
use crate::{Dialect, IndexError, Indexer, Result};
use async_trait::async_trait;
use carbonara::{ArchivePolicy, ArchivePolicyItem};
use sea_query::{
    DeleteStatement, InsertStatement, QueryBuilder, SchemaBuilder, SelectStatement,
    UpdateStatement, Values,
};
use sqlx::error::ErrorKind;
use std::collections::HashMap;
use std::ops::DerefMut;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// Ids per statement in batched id lookups and deletes.
pub(crate) const ID_CHUNK: usize = 500;

/// A rendered statement and its bind values.
pub type Stmt = (String, Values);

/// Rows affected by a single-statement write, or why it failed.
pub type WriteResult = std::result::Result<u64, WriteError>;

/// How a single-statement write failed (the caller maps it to its own error).
#[derive(Debug, Clone)]
pub enum WriteError {
    Unique {
        primary_key: bool,
    },
    ForeignKey,
    /// Any other failure of the driver, shared by the writers of one batch.
    Other(Arc<sqlx::Error>),
    /// The group-commit writer is gone (the index is shutting down).
    WriterStopped,
}

impl WriteError {
    pub(crate) fn of(e: sqlx::Error, primary_key: bool) -> Self {
        match kind(&e) {
            Some(ErrorKind::UniqueViolation) => WriteError::Unique { primary_key },
            Some(ErrorKind::ForeignKeyViolation) => WriteError::ForeignKey,
            _ => WriteError::Other(Arc::new(e)),
        }
    }
}

impl From<WriteError> for IndexError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Unique { .. } => IndexError::Backend("unique constraint violated".into()),
            WriteError::ForeignKey => IndexError::Backend("foreign key constraint violated".into()),
            WriteError::Other(e) => IndexError::SharedDatabase(e),
            WriteError::WriterStopped => IndexError::Backend("the index writer stopped".into()),
        }
    }
}

/// Typed access to a result row's columns by position. Engines disagree on widths
/// (PostgreSQL's `integer` is not an `i64`, MySQL's booleans are tiny integers):
/// each implementation accepts what its engine returns for the schema's types.
pub trait SqlRow: Send + Sync {
    fn text(&self, i: usize) -> Result<Option<&str>>;
    fn int(&self, i: usize) -> Result<Option<i64>>;
    fn real(&self, i: usize) -> Result<Option<f64>>;
    fn boolean(&self, i: usize) -> Result<Option<bool>>;

    fn text_req(&self, i: usize) -> Result<&str> {
        self.text(i)?.ok_or_else(|| null_column(i))
    }
    fn int_req(&self, i: usize) -> Result<i64> {
        self.int(i)?.ok_or_else(|| null_column(i))
    }
    fn string(&self, i: usize) -> Result<Option<String>> {
        Ok(self.text(i)?.map(str::to_owned))
    }
    fn uuid(&self, i: usize) -> Result<Uuid> {
        parse_uuid(self.text_req(i)?)
    }
}

fn null_column(i: usize) -> IndexError {
    IndexError::Backend(format!("unexpected NULL in result column {i}"))
}

/// How one SQL engine is reached. Everything engine-specific that the shared
/// indexer code needs, and nothing else.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    type Conn: Send;
    type Row: SqlRow;
    /// A connection for reads (autocommit).
    type Read<'a>: DerefMut<Target = Self::Conn> + Send
    where
        Self: 'a;
    /// An open write transaction; rolled back when dropped uncommitted.
    type Tx<'a>: DerefMut<Target = Self::Conn> + Send
    where
        Self: 'a;
    /// Held while migrations run (released when dropped or passed to
    /// [`Backend::unlock_upgrade`]).
    type UpgradeLock: Send;

    /// The dialect statements are rendered in.
    const QUERY: &'static dyn QueryBuilder;
    const SCHEMA: &'static dyn SchemaBuilder;
    /// The engine, for the little SQL that differs beyond what the builders
    /// render (see [`crate::value_list`]).
    const DIALECT: Dialect;

    async fn read(&self) -> Result<Self::Read<'_>>;
    async fn begin(&self) -> Result<Self::Tx<'_>>;
    async fn commit(tx: Self::Tx<'_>) -> Result<()>;

    async fn fetch_all(conn: &mut Self::Conn, stmt: Stmt) -> sqlx::Result<Vec<Self::Row>>;
    /// Rows affected.
    async fn execute(conn: &mut Self::Conn, stmt: &Stmt) -> sqlx::Result<u64>;
    /// A statement that runs once (DDL): not kept prepared.
    async fn ddl(conn: &mut Self::Conn, sql: &str) -> sqlx::Result<()>;
    /// Run an INSERT that has a `RETURNING` of one integer column, and return it
    /// (MySQL renders no `RETURNING` and answers with `LAST_INSERT_ID()`).
    async fn insert_returning_id(conn: &mut Self::Conn, stmt: Stmt) -> Result<i64> {
        let rows = Self::fetch_all(conn, stmt).await?;
        rows.first()
            .ok_or_else(|| IndexError::Backend("the insert returned no id".into()))?
            .int_req(0)
    }

    /// One single-statement write, outside any caller transaction.
    async fn write_one(&self, stmt: Stmt) -> WriteResult;
    /// Insert one metric row (the embedded backend merges concurrent ones).
    async fn insert_metric(&self, metric: &NewMetric, at: i64) -> WriteResult {
        self.write_one(query::insert_metric(metric, at).sql::<Self>())
            .await
    }
    /// Mark one active metric deleted; 1 if it was, 0 if there was none.
    async fn delete_metric(&self, id: Uuid) -> WriteResult {
        self.write_one(query::delete_metrics(&[id]).sql::<Self>())
            .await
    }

    /// Serialise upgraders across processes (a no-op where `begin` already does).
    async fn lock_upgrade(&self) -> Result<Self::UpgradeLock>;
    async fn unlock_upgrade(&self, lock: Self::UpgradeLock);
}

/// A statement sea-query can render in any dialect.
pub trait Render: Sized {
    fn render_in(self, builder: &dyn QueryBuilder) -> Stmt;

    /// Render in `B`'s dialect. Consumes the statement: sea-query statements are
    /// not `Send`, so none may live across an `.await`.
    fn sql<B: Backend + ?Sized>(self) -> Stmt {
        self.render_in(B::QUERY)
    }
}

macro_rules! render_impl {
    ($($t:ty),*) => {$(
        impl Render for $t {
            fn render_in(self, builder: &dyn QueryBuilder) -> Stmt {
                self.build_any(builder)
            }
        }
    )*};
}
render_impl!(
    SelectStatement,
    InsertStatement,
    UpdateStatement,
    DeleteStatement
);

pub(crate) fn kind(e: &sqlx::Error) -> Option<ErrorKind> {
    e.as_database_error().map(|d| d.kind())
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| IndexError::internal(format!("bad id {s:?} in the index"), e))
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn rule_from_row(row: &impl SqlRow) -> Result<ArchivePolicyRule> {
    Ok(ArchivePolicyRule {
        name: row.text_req(0)?.to_owned(),
        metric_pattern: row.text_req(1)?.to_owned(),
        archive_policy_name: row.text_req(2)?.to_owned(),
    })
}

/// The indexer over one SQL backend.
pub struct SqlIndexer<B: Backend> {
    pub(crate) backend: B,
    policies: PolicyCache,
}

impl<B: Backend> SqlIndexer<B> {
    pub(crate) fn with_backend(backend: B) -> Self {
        Self {
            backend,
            policies: PolicyCache::default(),
        }
    }

    /// The policy named `name`, from the cache or the database.
    async fn policy(&self, name: &str) -> Result<Option<Arc<ArchivePolicy>>> {
        if let Some(p) = self.policies.get(name) {
            return Ok(Some(p));
        }
        let stmt = query::select_archive_policies(Some(name)).sql::<B>();
        let rows = B::fetch_all(&mut *self.backend.read().await?, stmt).await?;
        rows.first().map(|r| self.policy_from_row(r, 0)).transpose()
    }

    /// Policy columns (name, back_window, definition, methods) starting at `at`,
    /// resolved through the cache: only a policy changed since it was cached is parsed.
    fn policy_from_row(&self, row: &B::Row, at: usize) -> Result<Arc<ArchivePolicy>> {
        self.policies.resolve(
            row.text_req(at)?,
            row.int_req(at + 1)?,
            row.text_req(at + 2)?,
            row.text_req(at + 3)?,
        )
    }

    fn metric_from_row(&self, row: &B::Row) -> Result<Metric> {
        Ok(Metric {
            id: row.uuid(0)?,
            name: row.string(1)?,
            unit: row.string(2)?,
            resource_id: row.text(3)?.map(parse_uuid).transpose()?,
            creator: row.string(4)?,
            archive_policy: self.policy_from_row(row, 5)?,
        })
    }

    async fn fetch_metrics(&self, conn: &mut B::Conn, ids: &[Uuid]) -> Result<Vec<Metric>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ID_CHUNK) {
            let stmt = query::get_metrics(chunk).sql::<B>();
            for row in B::fetch_all(conn, stmt).await? {
                out.push(self.metric_from_row(&row)?);
            }
        }
        Ok(out)
    }
}

// ------------------------------------------------------------------ policy cache

/// Parsed policies by name, with the stored text they were parsed from. Reads join the
/// policy row and compare: a policy changed by another process (or connection) is
/// re-parsed, an unchanged one is shared (`Arc`) without touching JSON.
#[derive(Default)]
struct PolicyCache(RwLock<HashMap<String, Arc<CachedPolicy>>>);

struct CachedPolicy {
    back_window: i64,
    definition: String,
    methods: String,
    policy: Arc<ArchivePolicy>,
}

impl PolicyCache {
    fn get(&self, name: &str) -> Option<Arc<ArchivePolicy>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|c| c.policy.clone())
    }

    fn resolve(
        &self,
        name: &str,
        back_window: i64,
        definition: &str,
        methods: &str,
    ) -> Result<Arc<ArchivePolicy>> {
        if let Some(c) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(name)
            && c.back_window == back_window
            && c.definition == definition
            && c.methods == methods
        {
            return Ok(c.policy.clone());
        }
        let policy = Arc::new(codec::decode_policy(
            name,
            back_window,
            definition,
            methods,
        )?);
        let entry = CachedPolicy {
            back_window,
            definition: definition.to_owned(),
            methods: methods.to_owned(),
            policy: policy.clone(),
        };
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), Arc::new(entry));
        Ok(policy)
    }

    fn invalidate(&self, name: &str) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

// ------------------------------------------------------------------ the trait

#[async_trait]
impl<B: Backend> Indexer for SqlIndexer<B> {
    async fn upgrade(&self) -> Result<()> {
        let lock = self.backend.lock_upgrade().await?;
        let result = self.upgrade_locked().await;
        self.backend.unlock_upgrade(lock).await;
        result
    }

    // -- archive policies --

    async fn create_archive_policy(&self, ap: &ArchivePolicy) -> Result<()> {
        let back_window = codec::back_window_to_db(ap.back_window)?;
        let definition = codec::encode_definition(&ap.definition);
        let methods = codec::encode_methods(&ap.aggregation_methods);
        let stmt = query::insert_archive_policy(
            &ap.name,
            back_window,
            definition.clone(),
            methods.clone(),
        )
        .sql::<B>();
        match self.backend.write_one(stmt).await {
            Ok(_) => {}
            Err(WriteError::Unique { .. }) => {
                return Err(IndexError::ArchivePolicyAlreadyExists(ap.name.clone()));
            }
            Err(e) => return Err(e.into()),
        }
        self.policies.invalidate(&ap.name);
        self.policies
            .resolve(&ap.name, back_window, &definition, &methods)?;
        Ok(())
    }

    async fn list_archive_policies(&self) -> Result<Vec<ArchivePolicy>> {
        let stmt = query::select_archive_policies(None).sql::<B>();
        let rows = B::fetch_all(&mut *self.backend.read().await?, stmt).await?;
        rows.iter()
            .map(|r| Ok((*self.policy_from_row(r, 0)?).clone()))
            .collect()
    }

    async fn get_archive_policy(&self, name: &str) -> Result<Option<ArchivePolicy>> {
        let stmt = query::select_archive_policies(Some(name)).sql::<B>();
        let rows = B::fetch_all(&mut *self.backend.read().await?, stmt).await?;
        match rows.first() {
            Some(r) => Ok(Some((*self.policy_from_row(r, 0)?).clone())),
            None => {
                self.policies.invalidate(name);
                Ok(None)
            }
        }
    }

    async fn update_archive_policy(
        &self,
        name: &str,
        definition: &[ArchivePolicyItem],
        back_window: Option<u64>,
    ) -> Result<ArchivePolicy> {
        let back_window = back_window.map(codec::back_window_to_db).transpose()?;
        let stmt =
            query::update_archive_policy(name, codec::encode_definition(definition), back_window)
                .sql::<B>();
        let mut tx = self.backend.begin().await?;
        self.policies.invalidate(name);
        if B::execute(&mut tx, &stmt).await? == 0 {
            return Err(IndexError::ArchivePolicyNotFound(name.to_owned()));
        }
        let select = query::select_archive_policies(Some(name)).sql::<B>();
        let rows = B::fetch_all(&mut tx, select).await?;
        let row = rows
            .first()
            .ok_or_else(|| IndexError::ArchivePolicyNotFound(name.to_owned()))?;
        // Parse before committing: never commit a policy we cannot read back.
        let ap = codec::decode_policy(name, row.int_req(1)?, row.text_req(2)?, row.text_req(3)?)?;
        B::commit(tx).await?;
        self.policies.invalidate(name);
        Ok(ap)
    }

    async fn delete_archive_policy(&self, name: &str) -> Result<()> {
        let stmt = query::delete_archive_policy(name).sql::<B>();
        let result = self.backend.write_one(stmt).await;
        self.policies.invalidate(name);
        match result {
            Ok(0) => Err(IndexError::ArchivePolicyNotFound(name.to_owned())),
            Ok(_) => Ok(()),
            // The foreign keys of metric (active or deleted) and rule rows.
            Err(WriteError::ForeignKey) => Err(IndexError::ArchivePolicyInUse(name.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    // -- archive policy rules --

    async fn create_archive_policy_rule(&self, rule: &ArchivePolicyRule) -> Result<()> {
        let stmt = query::insert_rule(&rule.name, &rule.metric_pattern, &rule.archive_policy_name)
            .sql::<B>();
        match self.backend.write_one(stmt).await {
            Ok(_) => Ok(()),
            Err(WriteError::Unique { .. }) => Err(IndexError::ArchivePolicyRuleAlreadyExists(
                rule.name.clone(),
            )),
            Err(WriteError::ForeignKey) => Err(IndexError::ArchivePolicyNotFound(
                rule.archive_policy_name.clone(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_archive_policy_rules(&self) -> Result<Vec<ArchivePolicyRule>> {
        let stmt = query::select_rules(None).sql::<B>();
        let rows = B::fetch_all(&mut *self.backend.read().await?, stmt).await?;
        rows.iter().map(rule_from_row).collect()
    }

    async fn get_archive_policy_rule(&self, name: &str) -> Result<Option<ArchivePolicyRule>> {
        let stmt = query::select_rules(Some(name)).sql::<B>();
        let rows = B::fetch_all(&mut *self.backend.read().await?, stmt).await?;
        rows.first().map(rule_from_row).transpose()
    }

    async fn rename_archive_policy_rule(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<ArchivePolicyRule> {
        let stmt = query::rename_rule(name, new_name).sql::<B>();
        let mut tx = self.backend.begin().await?;
        match B::execute(&mut tx, &stmt).await {
            Ok(0) => return Err(IndexError::ArchivePolicyRuleNotFound(name.to_owned())),
            Ok(_) => {}
            Err(e) if kind(&e) == Some(ErrorKind::UniqueViolation) => {
                return Err(IndexError::ArchivePolicyRuleAlreadyExists(
                    new_name.to_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let select = query::select_rules(Some(new_name)).sql::<B>();
        let rows = B::fetch_all(&mut tx, select).await?;
        let rule = rows
            .first()
            .map(rule_from_row)
            .transpose()?
            .ok_or_else(|| IndexError::ArchivePolicyRuleNotFound(name.to_owned()))?;
        B::commit(tx).await?;
        Ok(rule)
    }

    async fn delete_archive_policy_rule(&self, name: &str) -> Result<()> {
        let stmt = query::delete_rule(name).sql::<B>();
        match self.backend.write_one(stmt).await? {
            0 => Err(IndexError::ArchivePolicyRuleNotFound(name.to_owned())),
            _ => Ok(()),
        }
    }

    // -- metrics --

    async fn create_metric(&self, metric: &NewMetric) -> Result<Metric> {
        let not_found = || IndexError::ArchivePolicyNotFound(metric.archive_policy_name.clone());
        let archive_policy = self
            .policy(&metric.archive_policy_name)
            .await?
            .ok_or_else(not_found)?;
        match self.backend.insert_metric(metric, now_ns()).await {
            Ok(_) => {}
            Err(WriteError::ForeignKey) => {
                // The policy went away since we cached it.
                self.policies.invalidate(&metric.archive_policy_name);
                return Err(not_found());
            }
            Err(WriteError::Unique { primary_key: true }) => {
                return Err(IndexError::Backend(format!(
                    "metric {} already exists",
                    metric.id
                )));
            }
            Err(WriteError::Unique { primary_key: false }) => {
                return Err(IndexError::NamedMetricAlreadyExists(
                    metric.name.clone().unwrap_or_default(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Metric {
            id: metric.id,
            name: metric.name.clone(),
            unit: metric.unit.clone(),
            resource_id: metric.resource_id,
            creator: metric.creator.clone(),
            archive_policy,
        })
    }

    async fn get_metrics(&self, ids: &[Uuid]) -> Result<Vec<Metric>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.fetch_metrics(&mut *self.backend.read().await?, ids)
            .await
    }

    async fn list_metrics(&self, q: &MetricQuery) -> Result<Vec<Metric>> {
        // Sort keys are checked before any I/O (and before the marker).
        query::list_metrics(q, None, B::DIALECT)?;
        let mut conn = self.backend.read().await?;
        let marker = match &q.marker {
            None => None,
            Some(m) => {
                let invalid = || IndexError::InvalidMarker(m.clone());
                let id = Uuid::parse_str(m).map_err(|_| invalid())?;
                Some(
                    self.fetch_metrics(&mut conn, &[id])
                        .await?
                        .pop()
                        .ok_or_else(invalid)?,
                )
            }
        };
        let stmt = query::list_metrics(q, marker.as_ref(), B::DIALECT)?.sql::<B>();
        let rows = B::fetch_all(&mut conn, stmt).await?;
        rows.iter().map(|r| self.metric_from_row(r)).collect()
    }

    async fn delete_metric(&self, id: Uuid) -> Result<()> {
        match self.backend.delete_metric(id).await? {
            0 => Err(IndexError::MetricNotFound(id)),
            _ => Ok(()),
        }
    }

    async fn list_deleted_metrics(&self, limit: usize) -> Result<Vec<Uuid>> {
        let stmt = query::list_deleted_metrics(limit).sql::<B>();
        let rows = B::fetch_all(&mut *self.backend.read().await?, stmt).await?;
        rows.iter().map(|r| r.uuid(0)).collect()
    }

    async fn expunge_metrics(&self, ids: &[Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.backend.begin().await?;
        for chunk in ids.chunks(ID_CHUNK) {
            B::execute(&mut tx, &query::expunge_metrics(chunk).sql::<B>()).await?;
        }
        B::commit(tx).await?;
        Ok(())
    }
}

impl<B: Backend> SqlIndexer<B> {
    /// Apply the missing migrations, each in its own transaction, the version re-read
    /// inside it (the caller holds the upgrade lock).
    async fn upgrade_locked(&self) -> Result<()> {
        {
            let sql = schema::schema_version_table().build_any(B::SCHEMA);
            let mut tx = self.backend.begin().await?;
            B::ddl(&mut tx, &sql).await?;
            B::commit(tx).await?;
        }
        let latest = schema::latest_version();
        for migration in schema::MIGRATIONS {
            let mut tx = self.backend.begin().await?;
            let rows = B::fetch_all(&mut tx, query::select_schema_version().sql::<B>()).await?;
            let current = match rows.first() {
                Some(r) => r.int(0)?.unwrap_or(0),
                None => 0,
            };
            if current > latest {
                return Err(IndexError::Backend(format!(
                    "the index schema is at version {current}, newer than this program's {latest}: upgrade the program"
                )));
            }
            if migration.version <= current {
                B::commit(tx).await?;
                continue;
            }
            tracing::info!(
                version = migration.version,
                description = migration.description,
                "index migration"
            );
            let steps: Vec<String> = (migration.steps)()
                .iter()
                .map(|s| s.to_sql(B::SCHEMA))
                .collect();
            for sql in &steps {
                B::ddl(&mut tx, sql).await?;
            }
            let stmt =
                query::insert_schema_version(migration.version, migration.description, now_ns())
                    .sql::<B>();
            B::execute(&mut tx, &stmt).await?;
            B::commit(tx).await?;
        }
        Ok(())
    }
}
