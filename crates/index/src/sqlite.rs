//! The embedded SQLite backend of [`SqlIndexer`] (the all-in-one default).
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
//! Statements are rendered with [`SqliteQueryBuilder`]; sqlx keeps them prepared
//! per connection (statement cache). Write transactions are `BEGIN IMMEDIATE` on
//! the writer, held through [`SqliteTx`].

use crate::Dialect;
use crate::bind::bind_values;
use crate::model::NewMetric;
use crate::query;
use crate::sql::{
    Backend, Render, SqlIndexer, SqlRow, Stmt, WriteError, WriteResult, kind, parse_uuid,
};
use crate::{IndexError, Result};
use async_trait::async_trait;
use sea_query::{QueryBuilder, SchemaBuilder, SqliteQueryBuilder};
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Database, Row, Sqlite, TransactionManager};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit, mpsc, oneshot};
use uuid::Uuid;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;
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

/// The embedded indexer.
pub type SqliteIndexer = SqlIndexer<SqliteBackend>;

pub struct SqliteBackend {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<SqliteConnection>,
    /// `None` for `:memory:`: reads use the writer connection.
    readers: Option<Readers>,
    /// Single-statement writes, to the group-commit task.
    queue: mpsc::UnboundedSender<Queued>,
}

struct Queued {
    op: Op,
    reply: oneshot::Sender<WriteResult>,
}

/// A queued write. Runs of metric inserts and of metric deletes are merged into one
/// statement each (one round trip to SQLite's thread instead of one per metric).
enum Op {
    Statement(Stmt),
    CreateMetric(Box<NewMetric>, i64),
    DeleteMetric(Uuid),
}

fn write_error(e: sqlx::Error) -> WriteError {
    let primary_key = is_primary_key_violation(&e);
    WriteError::of(e, primary_key)
}

/// Whether SQLite undid only the statement and the transaction goes on.
fn statement_only(e: &sqlx::Error) -> bool {
    kind(e).is_some_and(|k| k != ErrorKind::Other)
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
            return Ok(Self::with_backend(SqliteBackend::new(writer, None)));
        }

        if let Some(parent) = Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|source| IndexError::Io {
                what: format!("cannot create {}", parent.display()),
                source,
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
        let index = Self::with_backend(SqliteBackend::new(writer, Some(readers)));
        tokio::spawn(checkpoint_loop(
            Arc::downgrade(&index.backend.inner),
            checkpointer,
        ));
        Ok(index)
    }
}

impl SqliteBackend {
    /// Also starts the group-commit task (on the current runtime).
    fn new(writer: SqliteConnection, readers: Option<Readers>) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            writer: Mutex::new(writer),
            readers,
            queue,
        });
        tokio::spawn(group_commit_loop(Arc::downgrade(&inner), queued));
        Self { inner }
    }

    async fn write_op(&self, op: Op) -> WriteResult {
        let (reply, answer) = oneshot::channel();
        let abandoned = || WriteError::WriterStopped;
        self.inner
            .queue
            .send(Queued { op, reply })
            .map_err(|_| abandoned())?;
        answer.await.unwrap_or_else(|_| Err(abandoned()))
    }
}

/// A write transaction on the writer connection (`BEGIN IMMEDIATE`): the writer's
/// lock is held until it is committed or dropped; dropped uncommitted, it is rolled
/// back (queued on the connection, sent before its next statement).
pub struct SqliteTx<'a> {
    conn: MutexGuard<'a, SqliteConnection>,
    open: bool,
}

impl Deref for SqliteTx<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for SqliteTx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            <Sqlite as Database>::TransactionManager::start_rollback(&mut self.conn);
        }
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    type Conn = SqliteConnection;
    type Row = SqliteRow;
    type Read<'a> = ReadConn<'a>;
    type Tx<'a> = SqliteTx<'a>;
    /// `BEGIN IMMEDIATE` already serialises upgraders.
    type UpgradeLock = ();

    const QUERY: &'static dyn QueryBuilder = &SqliteQueryBuilder;
    const SCHEMA: &'static dyn SchemaBuilder = &SqliteQueryBuilder;
    const DIALECT: Dialect = Dialect::Sqlite;

    async fn read(&self) -> Result<ReadConn<'_>> {
        Ok(match &self.inner.readers {
            Some(readers) => ReadConn::Pooled(readers.acquire().await?),
            None => ReadConn::Shared(self.inner.writer.lock().await),
        })
    }

    async fn begin(&self) -> Result<SqliteTx<'_>> {
        let mut conn = self.inner.writer.lock().await;
        <Sqlite as Database>::TransactionManager::begin(&mut conn, Some("BEGIN IMMEDIATE".into()))
            .await?;
        Ok(SqliteTx { conn, open: true })
    }

    async fn commit(mut tx: SqliteTx<'_>) -> Result<()> {
        <Sqlite as Database>::TransactionManager::commit(&mut tx.conn).await?;
        tx.open = false;
        Ok(())
    }

    async fn fetch_all(conn: &mut SqliteConnection, stmt: Stmt) -> sqlx::Result<Vec<SqliteRow>> {
        fetch_all(conn, stmt).await
    }

    async fn execute(conn: &mut SqliteConnection, stmt: &Stmt) -> sqlx::Result<u64> {
        execute(conn, stmt).await
    }

    async fn ddl(conn: &mut SqliteConnection, sql: &str) -> sqlx::Result<()> {
        sqlx::query(sql).persistent(false).execute(conn).await?;
        Ok(())
    }

    async fn write_one(&self, stmt: Stmt) -> WriteResult {
        self.write_op(Op::Statement(stmt)).await
    }

    async fn insert_metric(&self, metric: &NewMetric, at: i64) -> WriteResult {
        self.write_op(Op::CreateMetric(Box::new(metric.clone()), at))
            .await
    }

    async fn delete_metric(&self, id: Uuid) -> WriteResult {
        self.write_op(Op::DeleteMetric(id)).await
    }

    async fn lock_upgrade(&self) -> Result<()> {
        Ok(())
    }

    async fn unlock_upgrade(&self, _lock: ()) {}
}

impl SqlRow for SqliteRow {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.try_get(i)?)
    }
    fn real(&self, i: usize) -> Result<Option<f64>> {
        Ok(self.try_get(i)?)
    }
    fn boolean(&self, i: usize) -> Result<Option<bool>> {
        Ok(self.try_get(i)?)
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
            Err(e) => all_failed(e, batch.len()),
        };
    }
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return all_failed(e, batch.len()),
    };
    for group in &groups {
        // Anything but a statement's own failure may have ended the transaction: the
        // batch fails as a whole (dropping `tx` rolls back what is left of it).
        if let Err(e) = run_group(&mut tx, group, &mut results).await {
            return all_failed(e, batch.len());
        }
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => all_failed(e, batch.len()),
    }
}

fn all_failed(e: sqlx::Error, n: usize) -> Vec<WriteResult> {
    vec![Err(WriteError::Other(Arc::new(e))); n]
}

/// Consecutive ops run as one statement.
enum Group<'a> {
    Statement(&'a Stmt),
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
                match execute(conn, &render(query::insert_metrics(ms))).await {
                    Ok(_) => {
                        results.extend(ms.iter().map(|_| Ok(1)));
                        return Ok(());
                    }
                    // Someone's insert fails: SQLite undid the whole statement; redo
                    // them one by one to give each its own answer.
                    Err(e) if statement_only(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            for (m, at) in ms {
                let stmt = render(query::insert_metric(m, *at));
                results.push(statement_result(execute(conn, &stmt).await)?);
            }
        }
        Group::DeleteMetrics(ids) => {
            let stmt = render(query::delete_metrics_returning(ids));
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
        Err(e) if statement_only(&e) => Ok(Err(write_error(e))),
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
            .map_err(|e| IndexError::internal("the index reader pool is closed", e))?;
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

pub struct Reader<'a> {
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

pub enum ReadConn<'a> {
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

/// Render a statement for SQLite (the group-commit task builds its own statements).
fn render(stmt: impl Render) -> Stmt {
    stmt.sql::<SqliteBackend>()
}

async fn fetch_all(
    conn: &mut SqliteConnection,
    (sql, values): Stmt,
) -> sqlx::Result<Vec<SqliteRow>> {
    bind_values(sqlx::query(&sql), &values)
        .fetch_all(conn)
        .await
}

/// Rows affected.
async fn execute(conn: &mut SqliteConnection, (sql, values): &Stmt) -> sqlx::Result<u64> {
    Ok(bind_values(sqlx::query(sql), values)
        .execute(conn)
        .await?
        .rows_affected())
}

fn is_primary_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == SQLITE_CONSTRAINT_PRIMARYKEY)
}
