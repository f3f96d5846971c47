//! A failure of the database driver reaches the caller as an `IndexError` whose
//! `source()` is the driver's error, not a flattened string.

use std::error::Error;

#[tokio::test]
async fn an_unreachable_server_keeps_the_driver_error_as_source() {
    // Port 1 on loopback: nothing listens. (Opening retries until its connect
    // deadline, about half a minute: one engine is enough, both share the code.)
    {
        let url = "postgresql://gnocchi:secret@127.0.0.1:1/index";
        let Err(e) = gnocchi_index::open(url).await else {
            panic!("{url}: opened an index where no server listens");
        };
        let source = e
            .source()
            .unwrap_or_else(|| panic!("{url}: no source in {e}"));
        assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
        // The message names the index, never the password.
        let message = e.to_string();
        assert!(message.contains("cannot connect to the index"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}

#[tokio::test]
async fn a_failed_statement_keeps_the_driver_error_as_source() {
    let dir = std::env::temp_dir().join(format!("gnocchi-index-source-{}", uuid::Uuid::new_v4()));
    let path = dir.join("index.sqlite");
    let index = gnocchi_index::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // No schema yet: the first query fails in the engine.
    let e = index.list_archive_policies().await.unwrap_err();
    let source = e.source().unwrap_or_else(|| panic!("no source in {e}"));
    assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unreadable_row_keeps_the_parsers_error_as_source() {
    use sqlx::Connection;
    let dir = std::env::temp_dir().join(format!("gnocchi-index-source-{}", uuid::Uuid::new_v4()));
    let path = dir.join("index.sqlite");
    let url = format!("sqlite://{}", path.display());
    let index = gnocchi_index::open(&url).await.unwrap();
    index.upgrade().await.unwrap();
    // Another program (or a bad disk) leaves attributes that are not JSON.
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE resource_type SET attributes = '{not json' WHERE name = 'generic'")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let index = gnocchi_index::open(&url).await.unwrap();
    let e = index.get_resource_type("generic").await.unwrap_err();
    assert!(e.is_backend_failure(), "{e}");
    let source = e.source().unwrap_or_else(|| panic!("no source in {e}"));
    assert!(
        source.downcast_ref::<serde_json::Error>().is_some(),
        "{source:?}"
    );
    assert!(e.to_string().contains("resource type generic"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
