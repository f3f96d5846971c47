//! Shared helpers: a throwaway database per test (on the backend the run
//! targets), and sample records.
#![allow(dead_code, unreachable_pub)]

use carbonara::method::BaseMethod;
use carbonara::{ArchivePolicy, ArchivePolicyItem, Method};
use gnocchi_index::{Indexer, NewMetric};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

pub const SECOND: i64 = 1_000_000_000;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("gnocchi-index-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn db_path(&self) -> String {
        self.0.join("index.sqlite").to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The backend the index tests run on: `GNOCCHI_INDEX_TEST_BACKEND` =
/// `sqlite` (default), `postgresql` or `mysql`; the last two need
/// `GNOCCHI_TEST_POSTGRESQL_URL` / `GNOCCHI_TEST_MYSQL_URL` (an admin URL: each
/// test creates a database of its own there and drops it afterwards).
/// `./test.sh` runs the suite once per configured backend.
pub fn backend() -> String {
    std::env::var("GNOCCHI_INDEX_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

/// A fresh, empty database of the configured backend, removed on drop.
pub struct TestDb {
    url: String,
    /// (admin URL, database name) for the server engines.
    server: Option<(String, String)>,
    _dir: TempDir,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = TempDir::new();
        let name = format!("gnocchi_t_{}", Uuid::new_v4().simple());
        let (url, server) = match backend().as_str() {
            "sqlite" => (format!("sqlite://{}", dir.db_path()), None),
            kind @ ("postgresql" | "mysql") => {
                let var = if kind == "mysql" {
                    "GNOCCHI_TEST_MYSQL_URL"
                } else {
                    "GNOCCHI_TEST_POSTGRESQL_URL"
                };
                let admin = std::env::var(var)
                    .unwrap_or_else(|_| panic!("{var} must be set to test on {kind}"));
                admin_exec(&admin, &format!("CREATE DATABASE {name}")).await;
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                (format!("{base}/{name}"), Some((admin, name)))
            }
            other => panic!("unknown GNOCCHI_INDEX_TEST_BACKEND {other}"),
        };
        TestDb {
            url,
            server,
            _dir: dir,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Another indexer on the same database (as another process would open it).
    pub async fn open(&self) -> Arc<dyn Indexer> {
        gnocchi_index::open(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.server.take() {
            // Drop runs outside any runtime guarantee: use a thread of our own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let force = if admin.starts_with("mysql") {
                    ""
                } else {
                    " WITH (FORCE)"
                };
                rt.block_on(admin_exec(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name}{force}"),
                ));
            })
            .join();
        }
    }
}

async fn admin_exec(admin: &str, sql: &str) {
    use sqlx::Connection;
    if admin.starts_with("mysql") {
        let mut c = sqlx::MySqlConnection::connect(admin).await.unwrap();
        // MySQL waits for the sessions still using a database before dropping it
        // (PostgreSQL's FORCE ends them): end them first.
        if let Some(name) = sql.strip_prefix("DROP DATABASE IF EXISTS ") {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE db = ?",
            )
            .bind(name)
            .fetch_all(&mut c)
            .await
            .unwrap();
            for id in ids {
                let _ = sqlx::raw_sql(&format!("KILL {id}")).execute(&mut c).await;
            }
        }
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    } else {
        let url = admin.replacen("postgresql://", "postgres://", 1);
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

/// An upgraded indexer on a new database of the configured backend; keep the
/// `TestDb` alive as long.
pub async fn indexer() -> (TestDb, Arc<dyn Indexer>) {
    let db = TestDb::new().await;
    let index = db.open().await;
    index.upgrade().await.unwrap();
    (db, index)
}

pub fn policy(name: &str) -> ArchivePolicy {
    ArchivePolicy {
        name: name.to_owned(),
        back_window: 0,
        definition: vec![
            ArchivePolicyItem {
                granularity: SECOND,
                points: Some(3600),
                timespan: Some(3600 * SECOND),
            },
            ArchivePolicyItem {
                granularity: 60 * SECOND,
                points: None,
                timespan: None,
            },
        ],
        aggregation_methods: vec![
            Method::Mean,
            Method::Max,
            Method::Pct(95),
            Method::Rate(BaseMethod::Last),
        ],
    }
}

pub fn new_metric(ap: &str, name: Option<&str>, resource_id: Option<Uuid>) -> NewMetric {
    NewMetric {
        id: Uuid::new_v4(),
        name: name.map(str::to_owned),
        unit: None,
        resource_id,
        creator: Some("admin".to_owned()),
        archive_policy_name: ap.to_owned(),
    }
}
