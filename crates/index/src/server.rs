//! The network backends of [`SqlIndexer`]: PostgreSQL and MySQL/MariaDB, each
//! through an sqlx connection pool. Any number of processes (API servers,
//! metricd workers) share one database: every multi-statement write is a
//! transaction of the engine's, single-statement writes run in autocommit, and
//! migrations take an engine-wide lock (an advisory lock on PostgreSQL, a named
//! lock on MySQL) so that processes starting together migrate once.
//!
//! Dialect differences the shared code relies on being absorbed here:
//! - MySQL has no `RETURNING`: the history revision comes from `LAST_INSERT_ID()`;
//! - PostgreSQL's `integer` columns (and literals) are `i32`, MySQL's booleans are
//!   tiny integers: [`SqlRow`] widens both;
//! - MySQL commits DDL implicitly, so a resource type's tables are created inside
//!   the transaction that records it but not atomically with it (as upstream).

use crate::bind::bind_values;
use crate::sql::{Backend, SqlIndexer, SqlRow, Stmt, WriteError, WriteResult, kind};
use crate::{Dialect, IndexError, Result};
use async_trait::async_trait;
use sea_query::{MysqlQueryBuilder, PostgresQueryBuilder, QueryBuilder, SchemaBuilder};
use sqlx::error::ErrorKind;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlRow};
use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgRow, Postgres};
use sqlx::{ConnectOptions, Connection, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// Connections per process: enough for the API's concurrency without crowding
/// the server's `max_connections` when many processes share it.
const MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// The advisory lock key (PostgreSQL) serialising migrations: "gnocchi" in ASCII.
const PG_UPGRADE_LOCK: i64 = 0x0067_6e6f_6363_6869;
/// The named lock (MySQL) serialising migrations.
const MYSQL_UPGRADE_LOCK: &str = "gnocchi-rs-index-upgrade";
/// How long a starting process waits for another's migration (seconds).
const UPGRADE_LOCK_WAIT_S: i64 = 600;

pub type PostgresIndexer = SqlIndexer<PostgresBackend>;
pub type MysqlIndexer = SqlIndexer<MysqlBackend>;

pub struct PostgresBackend {
    pool: PgPool,
    options: PgConnectOptions,
}

pub struct MysqlBackend {
    pool: MySqlPool,
    options: MySqlConnectOptions,
}

fn pool_options<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Idle connections are pinged on release already; not again on acquire.
        .test_before_acquire(false)
}

fn connect_error(url: &str, e: sqlx::Error) -> IndexError {
    IndexError::Connect {
        url: redact(url),
        source: e,
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..s + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl PostgresIndexer {
    /// Connect to `url` (`postgres://user:password@host:port/database?…`). Does not
    /// touch the schema: call [`crate::Indexer::upgrade`] first.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| connect_error(url, e))?
            .application_name("gnocchi-rs")
            .disable_statement_logging();
        let pool = pool_options::<Postgres>()
            .connect_with(options.clone())
            .await
            .map_err(|e| connect_error(url, e))?;
        Ok(Self::with_backend(PostgresBackend { pool, options }))
    }
}

impl MysqlIndexer {
    /// Connect to `url` (`mysql://user:password@host:port/database?…`). Does not
    /// touch the schema: call [`crate::Indexer::upgrade`] first.
    pub async fn connect(url: &str) -> Result<Self> {
        // SQLAlchemy URLs often carry `?charset=utf8`: utf8mb4 is what we want
        // anyway (sqlx's default), so the parameter is dropped.
        let cleaned = strip_query_param(url, "charset");
        let options = MySqlConnectOptions::from_str(&cleaned)
            .map_err(|e| connect_error(url, e))?
            .charset("utf8mb4")
            .disable_statement_logging();
        let pool = pool_options::<MySql>()
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // ANSI_QUOTES: none of our statements need it, but
                    // NO_BACKSLASH_ESCAPES would change LIKE's escape: force the
                    // defaults our statements are written for.
                    sqlx::query(
                        "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(|e| connect_error(url, e))?;
        Ok(Self::with_backend(MysqlBackend { pool, options }))
    }
}

fn strip_query_param(url: &str, name: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| kv.split('=').next() != Some(name))
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// The parts of both backends that only differ by types.
macro_rules! pool_backend {
    ($backend:ty, $db:ty, $conn:ty, $row:ty, $builder:expr, $dialect:expr) => {
        #[async_trait]
        impl Backend for $backend {
            type Conn = $conn;
            type Row = $row;
            type Read<'a> = PoolConnection<$db>;
            type Tx<'a> = Transaction<'static, $db>;
            /// A connection of its own holding the engine's lock; closing it
            /// releases the lock, also if this process dies mid-migration.
            type UpgradeLock = $conn;

            const QUERY: &'static dyn QueryBuilder = &$builder;
            const SCHEMA: &'static dyn SchemaBuilder = &$builder;
            const DIALECT: Dialect = $dialect;

            async fn read(&self) -> Result<PoolConnection<$db>> {
                Ok(self.pool.acquire().await?)
            }

            async fn begin(&self) -> Result<Transaction<'static, $db>> {
                Ok(self.pool.begin().await?)
            }

            async fn commit(tx: Self::Tx<'_>) -> Result<()> {
                Ok(tx.commit().await?)
            }

            async fn fetch_all(conn: &mut $conn, (sql, values): Stmt) -> sqlx::Result<Vec<$row>> {
                bind_values(sqlx::query(&sql), &values).fetch_all(conn).await
            }

            async fn execute(conn: &mut $conn, (sql, values): &Stmt) -> sqlx::Result<u64> {
                Ok(bind_values(sqlx::query(sql), values)
                    .execute(conn)
                    .await?
                    .rows_affected())
            }

            async fn ddl(conn: &mut $conn, sql: &str) -> sqlx::Result<()> {
                sqlx::query(sql).persistent(false).execute(conn).await?;
                Ok(())
            }

            async fn write_one(&self, stmt: Stmt) -> WriteResult {
                let result = async {
                    let mut conn = self.pool.acquire().await?;
                    Self::execute(&mut conn, &stmt).await
                }
                .await;
                result.map_err(|e| {
                    let primary_key = Self::primary_key_violation(&e);
                    WriteError::of(e, primary_key)
                })
            }

            async fn insert_returning_id(conn: &mut $conn, stmt: Stmt) -> Result<i64> {
                Self::insert_id(conn, stmt).await
            }

            async fn lock_upgrade(&self) -> Result<$conn> {
                let mut conn = self.options.connect().await?;
                Self::take_upgrade_lock(&mut conn).await?;
                Ok(conn)
            }

            async fn unlock_upgrade(&self, conn: $conn) {
                if let Err(e) = conn.close().await {
                    tracing::warn!(error = %e, "closing the index upgrade lock connection");
                }
            }
        }
    };
}

pool_backend!(
    PostgresBackend,
    Postgres,
    PgConnection,
    PgRow,
    PostgresQueryBuilder,
    Dialect::Postgres
);
pool_backend!(
    MysqlBackend,
    MySql,
    MySqlConnection,
    MySqlRow,
    MysqlQueryBuilder,
    Dialect::Mysql
);

impl PostgresBackend {
    fn primary_key_violation(e: &sqlx::Error) -> bool {
        kind(e) == Some(ErrorKind::UniqueViolation)
            && e.as_database_error()
                .and_then(|d| d.constraint())
                .is_some_and(|c| c.ends_with("_pkey"))
    }

    async fn insert_id(conn: &mut PgConnection, stmt: Stmt) -> Result<i64> {
        let rows = Self::fetch_all(conn, stmt).await?;
        rows.first()
            .ok_or_else(|| IndexError::Backend("the insert returned no id".into()))?
            .int_req(0)
    }

    async fn take_upgrade_lock(conn: &mut PgConnection) -> Result<()> {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_UPGRADE_LOCK)
            .execute(conn)
            .await?;
        Ok(())
    }
}

impl MysqlBackend {
    fn primary_key_violation(e: &sqlx::Error) -> bool {
        // "Duplicate entry '…' for key 'PRIMARY'" (MariaDB) / "'metric.PRIMARY'" (MySQL 8).
        kind(e) == Some(ErrorKind::UniqueViolation)
            && e.as_database_error()
                .is_some_and(|d| d.message().contains("PRIMARY'"))
    }

    /// MySQL renders no `RETURNING`: the statement runs as a plain insert, and the
    /// auto-increment value it generated comes back with its result.
    async fn insert_id(conn: &mut MySqlConnection, (sql, values): Stmt) -> Result<i64> {
        let done = bind_values(sqlx::query(&sql), &values)
            .execute(conn)
            .await?;
        i64::try_from(done.last_insert_id())
            .map_err(|_| IndexError::Backend("auto-increment id out of range".into()))
    }

    async fn take_upgrade_lock(conn: &mut MySqlConnection) -> Result<()> {
        let row = sqlx::query("SELECT GET_LOCK(?, ?)")
            .bind(MYSQL_UPGRADE_LOCK)
            .bind(UPGRADE_LOCK_WAIT_S)
            .fetch_one(conn)
            .await?;
        match row.int(0)? {
            Some(1) => Ok(()),
            _ => Err(IndexError::Backend(format!(
                "another process held the index upgrade lock for {UPGRADE_LOCK_WAIT_S} s"
            ))),
        }
    }
}

/// Decode `i`, or if the column has another (compatible) type, `fallback`'s.
fn widen<'r, R, T, U>(row: &'r R, i: usize, fallback: impl Fn(U) -> T) -> Result<Option<T>>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    Option<T>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<U>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    match row.try_get::<Option<T>, _>(i) {
        Ok(v) => Ok(v),
        Err(sqlx::Error::ColumnDecode { .. }) => Ok(row.try_get::<Option<U>, _>(i)?.map(fallback)),
        Err(e) => Err(e.into()),
    }
}

impl SqlRow for PgRow {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        Ok(self.try_get(i)?)
    }
    /// `integer` columns and integer literals are `int4`.
    fn int(&self, i: usize) -> Result<Option<i64>> {
        widen(self, i, |v: i32| i64::from(v))
    }
    fn real(&self, i: usize) -> Result<Option<f64>> {
        Ok(self.try_get(i)?)
    }
    fn boolean(&self, i: usize) -> Result<Option<bool>> {
        Ok(self.try_get(i)?)
    }
}

impl SqlRow for MySqlRow {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        Ok(self.try_get(i)?)
    }
    /// Unsigned results (e.g. of some functions) come back as `u64`.
    fn int(&self, i: usize) -> Result<Option<i64>> {
        widen(self, i, |u: u64| i64::try_from(u).unwrap_or(i64::MAX))
    }
    fn real(&self, i: usize) -> Result<Option<f64>> {
        widen(self, i, |v: f32| f64::from(v))
    }
    /// `BOOLEAN` is `TINYINT(1)`; expressions may widen it.
    fn boolean(&self, i: usize) -> Result<Option<bool>> {
        widen(self, i, |v: i64| v != 0)
    }
}
