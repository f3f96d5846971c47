use gnocchi_index::Indexer;
use sqlx::{Connection, ConnectOptions};
use sqlx::sqlite::*;
use std::time::Instant;
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn scratch() {
    let _ = std::fs::remove_file("/tmp/scratch3.sqlite");
    let i = gnocchi_index::sqlite::SqliteIndexer::open("/tmp/scratch3.sqlite").await.unwrap();
    i.upgrade().await.unwrap();
    drop(i);
    let mut c = SqliteConnectOptions::new().filename("/tmp/scratch3.sqlite").journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal).pragma("wal_autocheckpoint", "16384").connect().await.unwrap();
    sqlx::query("insert into archive_policy values ('low', 0, '[]', '[]')").execute(&mut c).await.unwrap();
    let r = uuid::Uuid::new_v4().to_string();
    for (round, per) in [(0, 5usize), (1, 1000), (2, 5), (3, 50), (4, 5), (5,5),(6,5)] {
        if round == 4 { for ix in ["ix_metric_unit", "ix_metric_creator", "ix_metric_archive_policy_name"] { sqlx::query(&format!("drop index {ix}")).execute(&mut c).await.unwrap(); } }
        if round == 5 { sqlx::query("pragma wal_checkpoint(TRUNCATE)").execute(&mut c).await.unwrap(); }
        if round == 6 { sqlx::query("pragma synchronous=OFF").execute(&mut c).await.unwrap(); }
        let n = 10000;
        let t = Instant::now();
        for b in 0..n/per {
            let mut tx = c.begin_with("BEGIN IMMEDIATE").await.unwrap();
            for k in 0..per {
                let i = b * per + k;
                sqlx::query(r#"INSERT INTO "metric" ("id", "archive_policy_name", "creator", "name", "unit", "resource_id", "status", "created_at") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"#)
                    .bind(uuid::Uuid::new_v4().to_string()).bind("low").bind("admin").bind(format!("m{round}-{i}")).bind(None::<String>).bind(&r).bind("active").bind(0i64)
                    .execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        println!("round {round}: insert {per}/tx: {:.1} us/op", t.elapsed().as_micros() as f64 / n as f64);
    }
}
