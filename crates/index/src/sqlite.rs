//! The embedded SQLite indexer (the all-in-one default).
//!
//! Connections:
//! - one writer connection behind an async mutex: every write of this process goes
//!   through it, so writers never fight over SQLite's lock (a contended SQLite lock
//!   means busy-handler sleeps of milliseconds); transactions are `BEGIN IMMEDIATE`,
//!   so another process writing the same file waits on `busy_timeout` instead of
//!   failing on a lock upgrade;
//! - group commit: single-statement writes (create/delete of metrics, policies, rules)
//!   are queued to a task that runs everything queued in one transaction and answers
//!   each caller after the COMMIT. A commit costs about the same for one row or a
//!   hundred, so concurrent writers share it; consecutive metric creations become one
//!   multi-row INSERT and deletions one `UPDATE .. RETURNING` (each statement is a
//!   round trip to SQLite's thread). A failing statement (constraint violation) is
//!   undone alone: SQLite aborts the statement, not the transaction (a merged INSERT
//!   that fails is redone row by row so each caller gets its own answer). A batch of
//!   one statement runs in autocommit: no added latency;
//! - reader connections (opened on demand, up to 2 per CPU): WAL lets them read a
//!   consistent snapshot while the writer commits;
//! - a checkpointer: a background task with its own connection copies the WAL into
//!   the database (`wal_checkpoint(PASSIVE)`, which blocks no one) twice a second.
//!   Left to SQLite, the checkpoint (and its two fsyncs) would run inside whichever
//!   commit crosses 1000 WAL pages, stalling every writer queued behind it. The
//!   writer keeps a high `wal_autocheckpoint` as a safety net.
//!
//! `:memory:` uses one private connection for everything (the database lives exactly
//! as long as that connection, i.e. as long as the indexer).
//!
//! Durability: WAL with `synchronous=NORMAL`. A committed transaction is in the WAL
//! file (the OS has it) before the call returns, so it survives the process being
//! killed (kill -9, panic, OOM); the WAL is fsynced at checkpoints, so a power loss
//! or kernel crash may lose the last transactions, never corrupt the database.
//!
//! Statements are built with sea-query ([`crate::query`]) and rendered with
//! [`SqliteQueryBuilder`]; sqlx keeps them prepared per connection (statement cache).

mod resource;

use crate::bind::bind_values;
use crate::codec;
use crate::model::{ArchivePolicyRule, Metric, MetricQuery, NewMetric};
use crate::query;
use crate::schema;
use crate::{IndexError, Indexer, Result};
use async_trait::async_trait;
use carbonara::{ArchivePolicy, ArchivePolicyItem};
use sea_query::{
    DeleteStatement, InsertStatement, SelectStatement, SqliteQueryBuilder, UpdateStatement, Values,
};
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit, mpsc, oneshot};
use uuid::Uuid;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;
/// Ids per statement in batched id lookups and deletes.
const ID_CHUNK: usize = 500;
/// How often the checkpointer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// WAL pages after which a commit checkpoints itself (the checkpointer fell behind).
const WAL_AUTOCHECKPOINT_PAGES: &str = "16384";
/// WAL file size kept after a checkpoint resets it (bytes).
const WAL_SIZE_LIMIT: &str = "67108864";
/// Page cache of the writer (KiB; SQLite's default is 2 MiB per connection).
const WRITER_CACHE_KIB: &str = "-16384";
/// SQLite's extended result code for a PRIMARY KEY violation.
const SQLITE_CONSTRAINT_PRIMARYKEY: &str = "1555";

/// Most writes one group commit carries; the rest wait for the next.
const MAX_BATCH: usize = 256;

pub struct SqliteIndexer {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<SqliteConnection>,
    /// `None` for `:memory:`: reads use the writer connection.
    readers: Option<Readers>,
    policies: PolicyCache,
    /// Single-statement writes, to the group-commit task.
    queue: mpsc::UnboundedSender<Queued>,
}

struct Queued {
    op: Op,
    reply: oneshot::Sender<WriteResult>,
}

/// Rows affected, or why not.
type WriteResult = std::result::Result<u64, WriteError>;

/// A queued write. Runs of metric inserts and of metric deletes are merged into one
/// statement each (one round trip to SQLite's thread instead of one per metric).
enum Op {
    Statement((String, Values)),
    CreateMetric(Box<NewMetric>, i64),
    DeleteMetric(Uuid),
}

/// How one statement of a group commit failed.
#[derive(Debug, Clone)]
enum WriteError {
    Unique { primary_key: bool },
    ForeignKey,
    Other(String),
}

impl WriteError {
    fn of(e: &sqlx::Error) -> Self {
        match kind(e) {
            Some(ErrorKind::UniqueViolation) => WriteError::Unique {
                primary_key: is_primary_key_violation(e),
            },
            Some(ErrorKind::ForeignKeyViolation) => WriteError::ForeignKey,
            _ => WriteError::Other(e.to_string()),
        }
    }

    /// Whether SQLite undid only the statement and the transaction goes on.
    fn statement_only(e: &sqlx::Error) -> bool {
        kind(e).is_some_and(|k| k != ErrorKind::Other)
    }
}

impl From<WriteError> for IndexError {
    fn from(e: WriteError) -> Self {
        IndexError::Backend(match e {
            WriteError::Unique { .. } => "unique constraint violated".to_owned(),
            WriteError::ForeignKey => "foreign key constraint violated".to_owned(),
            WriteError::Other(m) => m,
        })
    }
}

impl SqliteIndexer {
    /// Open (creating if needed) the database at `path` (a file path or `:memory:`).
    /// Does not touch the schema: call [`Indexer::upgrade`] first.
    ///
    /// Spawns the group-commit and checkpoint tasks on the current tokio runtime: open
    /// the indexer on the runtime that uses it. They end when the indexer is dropped.
    pub async fn open(path: &str) -> Result<Self> {
        let base = SqliteConnectOptions::new()
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .statement_cache_capacity(STATEMENT_CACHE)
            .disable_statement_logging();
        if path == ":memory:" {
            let writer = base.filename(":memory:").connect().await?;
            return Ok(Self::new(writer, None));
        }

        if let Some(parent) = Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                IndexError::Backend(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let base = base.filename(path).synchronous(SqliteSynchronous::Normal);
        // The writer first: it creates the file and switches it to WAL (a persistent
        // setting, so readers need not, and must not race for the exclusive lock).
        let writer = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .pragma("journal_size_limit", WAL_SIZE_LIMIT)
            .pragma("cache_size", WRITER_CACHE_KIB)
            .connect()
            .await?;
        let checkpointer = base.connect().await?;
        let readers = Readers::new(base, reader_count());
        let index = Self::new(writer, Some(readers));
        tokio::spawn(checkpoint_loop(Arc::downgrade(&index.inner), checkpointer));
        Ok(index)
    }

    /// Also starts the group-commit task (on the current runtime).
    fn new(writer: SqliteConnection, readers: Option<Readers>) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            writer: Mutex::new(writer),
            readers,
            policies: PolicyCache::default(),
            queue,
        });
        tokio::spawn(group_commit_loop(Arc::downgrade(&inner), queued));
        Self { inner }
    }

    /// Run one single-statement write in the next group commit; rows affected.
    /// The write goes on if this future is dropped (like any sent request).
    async fn write_one(&self, stmt: (String, Values)) -> WriteResult {
        self.write_op(Op::Statement(stmt)).await
    }

    async fn write_op(&self, op: Op) -> WriteResult {
        let (reply, answer) = oneshot::channel();
        let abandoned = || WriteError::Other("index writer stopped".to_owned());
        self.inner
            .queue
            .send(Queued { op, reply })
            .map_err(|_| abandoned())?;
        answer.await.unwrap_or_else(|_| Err(abandoned()))
    }

    async fn read(&self) -> Result<ReadConn<'_>> {
        Ok(match &self.inner.readers {
            Some(readers) => ReadConn::Pooled(readers.acquire().await?),
            None => ReadConn::Shared(self.inner.writer.lock().await),
        })
    }

    /// The writer, for multi-statement transactions.
    async fn write(&self) -> MutexGuard<'_, SqliteConnection> {
        self.inner.writer.lock().await
    }

    /// The policy named `name`, from the cache or the database.
    async fn policy(&self, name: &str) -> Result<Option<Arc<ArchivePolicy>>> {
        if let Some(p) = self.inner.policies.get(name) {
            return Ok(Some(p));
        }
        let rows = fetch_all(
            &mut *self.read().await?,
            query::select_archive_policies(Some(name)).render(),
        )
        .await?;
        rows.first().map(|r| self.policy_from_row(r, 0)).transpose()
    }

    /// Policy columns (name, back_window, definition, methods) starting at `at`,
    /// resolved through the cache: only a policy changed since it was cached is parsed.
    fn policy_from_row(&self, row: &SqliteRow, at: usize) -> Result<Arc<ArchivePolicy>> {
        let name: &str = row.try_get(at)?;
        let back_window: i64 = row.try_get(at + 1)?;
        let definition: &str = row.try_get(at + 2)?;
        let methods: &str = row.try_get(at + 3)?;
        self.inner
            .policies
            .resolve(name, back_window, definition, methods)
    }

    fn metric_from_row(&self, row: &SqliteRow) -> Result<Metric> {
        Ok(Metric {
            id: parse_uuid(row.try_get(0)?)?,
            name: row.try_get(1)?,
            unit: row.try_get(2)?,
            resource_id: row
                .try_get::<Option<&str>, _>(3)?
                .map(parse_uuid)
                .transpose()?,
            creator: row.try_get(4)?,
            archive_policy: self.policy_from_row(row, 5)?,
        })
    }

    async fn fetch_metrics(
        &self,
        conn: &mut SqliteConnection,
        ids: &[Uuid],
    ) -> Result<Vec<Metric>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ID_CHUNK) {
            for row in fetch_all(conn, query::get_metrics(chunk).render()).await? {
                out.push(self.metric_from_row(&row)?);
            }
        }
        Ok(out)
    }
}

/// The group-commit task: takes everything queued (up to `MAX_BATCH`), runs it as
/// one transaction on the writer, answers each caller after the COMMIT. Ends with the
/// indexer (its queue's sender).
async fn group_commit_loop(owner: Weak<Inner>, mut queued: mpsc::UnboundedReceiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queued.recv().await {
        batch.push(first);
        let Some(inner) = owner.upgrade() else { break };
        let mut conn = inner.writer.lock().await;
        // Whatever arrived meanwhile (also while waiting for the writer) joins.
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let results = run_batch(&mut conn, &batch).await;
        drop(conn);
        drop(inner);
        for (q, r) in batch.drain(..).zip(results) {
            let _ = q.reply.send(r);
        }
    }
}

/// Run a batch: in autocommit when it is one statement (after merging), else in one
/// transaction. Results in the batch's order.
async fn run_batch(conn: &mut SqliteConnection, batch: &[Queued]) -> Vec<WriteResult> {
    let groups = group_ops(batch);
    let mut results = Vec::with_capacity(batch.len());
    if let [group] = groups.as_slice() {
        return match run_group(conn, group, &mut results).await {
            Ok(()) => results,
            Err(e) => all_failed(&e, batch.len()),
        };
    }
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return all_failed(&e, batch.len()),
    };
    for group in &groups {
        // Anything but a statement's own failure may have ended the transaction: the
        // batch fails as a whole (dropping `tx` rolls back what is left of it).
        if let Err(e) = run_group(&mut tx, group, &mut results).await {
            return all_failed(&e, batch.len());
        }
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => all_failed(&e, batch.len()),
    }
}

fn all_failed(e: &sqlx::Error, n: usize) -> Vec<WriteResult> {
    vec![Err(WriteError::Other(e.to_string())); n]
}

/// Consecutive ops run as one statement.
enum Group<'a> {
    Statement(&'a (String, Values)),
    CreateMetrics(Vec<(&'a NewMetric, i64)>),
    DeleteMetrics(Vec<Uuid>),
}

fn group_ops(batch: &[Queued]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for q in batch {
        match (&q.op, groups.last_mut()) {
            (Op::CreateMetric(m, at), Some(Group::CreateMetrics(ms))) => ms.push((m, *at)),
            (Op::CreateMetric(m, at), _) => groups.push(Group::CreateMetrics(vec![(m, *at)])),
            (Op::DeleteMetric(id), Some(Group::DeleteMetrics(ids))) => ids.push(*id),
            (Op::DeleteMetric(id), _) => groups.push(Group::DeleteMetrics(vec![*id])),
            (Op::Statement(stmt), _) => groups.push(Group::Statement(stmt)),
        }
    }
    groups
}

/// Run one group, pushing one result per op. `Err` only for a failure that is not
/// confined to a statement.
async fn run_group(
    conn: &mut SqliteConnection,
    group: &Group<'_>,
    results: &mut Vec<WriteResult>,
) -> sqlx::Result<()> {
    match group {
        Group::Statement(stmt) => results.push(statement_result(execute(conn, stmt).await)?),
        Group::CreateMetrics(ms) => {
            if ms.len() > 1 {
                match execute(conn, &query::insert_metrics(ms).render()).await {
                    Ok(_) => {
                        results.extend(ms.iter().map(|_| Ok(1)));
                        return Ok(());
                    }
                    // Someone's insert fails: SQLite undid the whole statement; redo
                    // them one by one to give each its own answer.
                    Err(e) if WriteError::statement_only(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            for (m, at) in ms {
                let stmt = query::insert_metric(m, *at).render();
                results.push(statement_result(execute(conn, &stmt).await)?);
            }
        }
        Group::DeleteMetrics(ids) => {
            let stmt = query::delete_metrics_returning(ids).render();
            let rows = fetch_all(conn, stmt).await?;
            let mut marked = std::collections::HashSet::with_capacity(rows.len());
            for row in &rows {
                marked.insert(
                    parse_uuid(row.try_get(0)?)
                        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?,
                );
            }
            // Deleted once: the first of duplicate requests gets it, the others not.
            results.extend(ids.iter().map(|id| Ok(u64::from(marked.remove(id)))));
        }
    }
    Ok(())
}

/// A statement's own failure is its result; anything else fails the batch.
fn statement_result(r: sqlx::Result<u64>) -> sqlx::Result<WriteResult> {
    match r {
        Ok(n) => Ok(Ok(n)),
        Err(e) if WriteError::statement_only(&e) => Ok(Err(WriteError::of(&e))),
        Err(e) => Err(e),
    }
}

/// Checkpoint the WAL in the background until the indexer is dropped.
async fn checkpoint_loop(owner: Weak<Inner>, mut conn: SqliteConnection) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if owner.strong_count() == 0 {
            break;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "index WAL checkpoint failed");
        }
    }
    let _ = conn.close().await;
}

/// Reader connections, opened on demand up to a maximum and kept.
///
/// Not sqlx's pool: it pings every connection on release (one more round trip to
/// SQLite's thread per read) and spawns a task to return it. Reads here run in
/// autocommit and a dropped query leaves nothing to clean up, so a connection goes
/// back as is.
struct Readers {
    idle: std::sync::Mutex<Vec<SqliteConnection>>,
    permits: Semaphore,
    options: SqliteConnectOptions,
}

impl Readers {
    fn new(options: SqliteConnectOptions, max: usize) -> Self {
        Self {
            idle: std::sync::Mutex::new(Vec::with_capacity(max)),
            permits: Semaphore::new(max),
            options,
        }
    }

    async fn acquire(&self) -> Result<Reader<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| IndexError::Backend(e.to_string()))?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.options.connect().await?,
        };
        Ok(Reader {
            conn: Some(conn),
            readers: self,
            _permit: permit,
        })
    }
}

struct Reader<'a> {
    conn: Option<SqliteConnection>,
    readers: &'a Readers,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.readers
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(c);
        }
    }
}

fn reader_count() -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cpus * 2).clamp(2, 16)
}

enum ReadConn<'a> {
    Pooled(Reader<'a>),
    Shared(MutexGuard<'a, SqliteConnection>),
}

impl Deref for ReadConn<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            ReadConn::Pooled(r) => r.conn.as_ref().expect("reader connection"),
            ReadConn::Shared(c) => c,
        }
    }
}

impl DerefMut for ReadConn<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            ReadConn::Pooled(r) => r.conn.as_mut().expect("reader connection"),
            ReadConn::Shared(c) => &mut *c,
        }
    }
}

// ------------------------------------------------------------------ execution helpers

/// Render a statement for SQLite. Consumes it: sea-query statements are not `Send`,
/// so none may live across an `.await`.
trait Render {
    fn render(self) -> (String, Values);
}

macro_rules! render {
    ($($t:ty),*) => {$(
        impl Render for $t {
            fn render(self) -> (String, Values) {
                self.build(SqliteQueryBuilder)
            }
        }
    )*};
}
render!(
    SelectStatement,
    InsertStatement,
    UpdateStatement,
    DeleteStatement
);

async fn fetch_all(
    conn: &mut SqliteConnection,
    (sql, values): (String, Values),
) -> sqlx::Result<Vec<SqliteRow>> {
    bind_values(sqlx::query(&sql), &values)
        .fetch_all(conn)
        .await
}

/// Rows affected.
async fn execute(
    conn: &mut SqliteConnection,
    (sql, values): &(String, Values),
) -> sqlx::Result<u64> {
    Ok(bind_values(sqlx::query(sql), values)
        .execute(conn)
        .await?
        .rows_affected())
}

fn kind(e: &sqlx::Error) -> Option<ErrorKind> {
    e.as_database_error().map(|d| d.kind())
}

fn is_primary_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == SQLITE_CONSTRAINT_PRIMARYKEY)
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| IndexError::Backend(format!("bad id {s:?} in the index: {e}")))
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn rule_from_row(row: &SqliteRow) -> Result<ArchivePolicyRule> {
    Ok(ArchivePolicyRule {
        name: row.try_get(0)?,
        metric_pattern: row.try_get(1)?,
        archive_policy_name: row.try_get(2)?,
    })
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
impl Indexer for SqliteIndexer {
    async fn upgrade(&self) -> Result<()> {
        let mut w = self.write().await;
        let sql = schema::schema_version_table().build(SqliteQueryBuilder);
        sqlx::query(&sql).persistent(false).execute(&mut *w).await?;
        let latest = schema::latest_version();
        for migration in schema::MIGRATIONS {
            // One transaction per migration, the version re-read under the write lock:
            // concurrent upgraders (other processes) apply each migration once.
            let mut tx = w.begin_with("BEGIN IMMEDIATE").await?;
            let rows = fetch_all(&mut tx, query::select_schema_version().render()).await?;
            let current: i64 = rows
                .first()
                .map(|r| r.try_get::<Option<i64>, _>(0))
                .transpose()?
                .flatten()
                .unwrap_or(0);
            if current > latest {
                return Err(IndexError::Backend(format!(
                    "the index schema is at version {current}, newer than this program's {latest}: upgrade the program"
                )));
            }
            if migration.version <= current {
                tx.commit().await?;
                continue;
            }
            tracing::info!(
                version = migration.version,
                description = migration.description,
                "index migration"
            );
            let steps: Vec<String> = (migration.steps)()
                .iter()
                .map(|s| s.to_sql(&SqliteQueryBuilder))
                .collect();
            for sql in &steps {
                sqlx::query(sql).persistent(false).execute(&mut *tx).await?;
            }
            execute(
                &mut tx,
                &query::insert_schema_version(migration.version, migration.description, now_ns())
                    .render(),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(())
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
        .render();
        match self.write_one(stmt).await {
            Ok(_) => {}
            Err(WriteError::Unique { .. }) => {
                return Err(IndexError::ArchivePolicyAlreadyExists(ap.name.clone()));
            }
            Err(e) => return Err(e.into()),
        }
        self.inner.policies.invalidate(&ap.name);
        self.inner
            .policies
            .resolve(&ap.name, back_window, &definition, &methods)?;
        Ok(())
    }

    async fn list_archive_policies(&self) -> Result<Vec<ArchivePolicy>> {
        let rows = fetch_all(
            &mut *self.read().await?,
            query::select_archive_policies(None).render(),
        )
        .await?;
        rows.iter()
            .map(|r| Ok((*self.policy_from_row(r, 0)?).clone()))
            .collect()
    }

    async fn get_archive_policy(&self, name: &str) -> Result<Option<ArchivePolicy>> {
        let rows = fetch_all(
            &mut *self.read().await?,
            query::select_archive_policies(Some(name)).render(),
        )
        .await?;
        match rows.first() {
            Some(r) => Ok(Some((*self.policy_from_row(r, 0)?).clone())),
            None => {
                self.inner.policies.invalidate(name);
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
                .render();
        let mut w = self.write().await;
        let mut tx = w.begin_with("BEGIN IMMEDIATE").await?;
        self.inner.policies.invalidate(name);
        if execute(&mut tx, &stmt).await? == 0 {
            return Err(IndexError::ArchivePolicyNotFound(name.to_owned()));
        }
        let rows = fetch_all(&mut tx, query::select_archive_policies(Some(name)).render()).await?;
        let row = rows
            .first()
            .ok_or_else(|| IndexError::ArchivePolicyNotFound(name.to_owned()))?;
        // Parse before committing: never commit a policy we cannot read back.
        let ap = codec::decode_policy(name, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?)?;
        tx.commit().await?;
        self.inner.policies.invalidate(name);
        Ok(ap)
    }

    async fn delete_archive_policy(&self, name: &str) -> Result<()> {
        let result = self
            .write_one(query::delete_archive_policy(name).render())
            .await;
        self.inner.policies.invalidate(name);
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
            .render();
        match self.write_one(stmt).await {
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
        let rows = fetch_all(&mut *self.read().await?, query::select_rules(None).render()).await?;
        rows.iter().map(rule_from_row).collect()
    }

    async fn get_archive_policy_rule(&self, name: &str) -> Result<Option<ArchivePolicyRule>> {
        let rows = fetch_all(
            &mut *self.read().await?,
            query::select_rules(Some(name)).render(),
        )
        .await?;
        rows.first().map(rule_from_row).transpose()
    }

    async fn rename_archive_policy_rule(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<ArchivePolicyRule> {
        let mut w = self.write().await;
        let mut tx = w.begin_with("BEGIN IMMEDIATE").await?;
        match execute(&mut tx, &query::rename_rule(name, new_name).render()).await {
            Ok(0) => return Err(IndexError::ArchivePolicyRuleNotFound(name.to_owned())),
            Ok(_) => {}
            Err(e) if kind(&e) == Some(ErrorKind::UniqueViolation) => {
                return Err(IndexError::ArchivePolicyRuleAlreadyExists(
                    new_name.to_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let rows = fetch_all(&mut tx, query::select_rules(Some(new_name)).render()).await?;
        let rule = rows
            .first()
            .map(rule_from_row)
            .transpose()?
            .ok_or_else(|| IndexError::ArchivePolicyRuleNotFound(name.to_owned()))?;
        tx.commit().await?;
        Ok(rule)
    }

    async fn delete_archive_policy_rule(&self, name: &str) -> Result<()> {
        match self.write_one(query::delete_rule(name).render()).await? {
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
        match self
            .write_op(Op::CreateMetric(Box::new(metric.clone()), now_ns()))
            .await
        {
            Ok(_) => {}
            Err(WriteError::ForeignKey) => {
                // The policy went away since we cached it.
                self.inner.policies.invalidate(&metric.archive_policy_name);
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
        self.fetch_metrics(&mut *self.read().await?, ids).await
    }

    async fn list_metrics(&self, q: &MetricQuery) -> Result<Vec<Metric>> {
        // Sort keys are checked before any I/O (and before the marker).
        query::list_metrics(q, None)?;
        let mut conn = self.read().await?;
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
        let stmt = query::list_metrics(q, marker.as_ref())?;
        let rows = fetch_all(&mut conn, stmt.render()).await?;
        rows.iter().map(|r| self.metric_from_row(r)).collect()
    }

    async fn delete_metric(&self, id: Uuid) -> Result<()> {
        match self.write_op(Op::DeleteMetric(id)).await? {
            0 => Err(IndexError::MetricNotFound(id)),
            _ => Ok(()),
        }
    }

    async fn list_deleted_metrics(&self, limit: usize) -> Result<Vec<Uuid>> {
        let rows = fetch_all(
            &mut *self.read().await?,
            query::list_deleted_metrics(limit).render(),
        )
        .await?;
        rows.iter().map(|r| parse_uuid(r.try_get(0)?)).collect()
    }

    async fn expunge_metrics(&self, ids: &[Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut w = self.write().await;
        let mut tx = w.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in ids.chunks(ID_CHUNK) {
            execute(&mut tx, &query::expunge_metrics(chunk).render()).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
