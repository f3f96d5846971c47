//! A coordination or engine error keeps the error it comes from as its
//! `source()` (the driver's, the URL parser's, the blocking pool's), so an
//! operator's log and a caller's `downcast_ref` see what really failed rather
//! than a flattened string. Needs no server: the drivers are pointed at a port
//! nobody listens on.

use gnocchi_engine::coordination::CoordinationUrl;
use gnocchi_engine::coordination_pg::{PgCoordinator, PgCoordinatorOptions};
use gnocchi_engine::coordination_redis::{RedisCoordinator, RedisCoordinatorOptions};
use gnocchi_engine::{CoordinationError, EngineError, InternalError};
use std::error::Error;

/// Nothing listens on port 1 of the loopback interface.
const NOBODY_REDIS: &str = "redis://127.0.0.1:1/";
const NOBODY_POSTGRES: &str = "postgresql://postgres@127.0.0.1:1/test";

#[tokio::test]
async fn an_unreachable_redis_is_reported_with_the_driver_error_as_source() {
    let Err(e) =
        RedisCoordinator::connect(NOBODY_REDIS, "member", RedisCoordinatorOptions::default()).await
    else {
        panic!("connected to {NOBODY_REDIS}");
    };
    assert!(matches!(e, CoordinationError::Redis(_)), "{e:?}");
    let source = e.source().expect("the redis error is the source");
    assert!(
        source.downcast_ref::<redis::RedisError>().is_some(),
        "{source:?}"
    );
    assert!(e.to_string().starts_with("coordination (redis): "), "{e}");
}

#[tokio::test]
async fn an_unreachable_postgresql_is_reported_with_the_driver_error_as_source() {
    let Err(e) = PgCoordinator::connect(NOBODY_POSTGRES, PgCoordinatorOptions::default()).await
    else {
        panic!("connected to {NOBODY_POSTGRES}");
    };
    assert!(matches!(e, CoordinationError::Postgres(_)), "{e:?}");
    let source = e.source().expect("the sqlx error is the source");
    assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
    assert!(
        e.to_string().starts_with("coordination (postgresql): "),
        "{e}"
    );
}

#[test]
fn an_unparsable_coordination_url_keeps_the_parser_error_as_source() {
    let e = CoordinationUrl::parse("postgresql://postgres:secret@127.0.0.1:notaport/test")
        .expect_err("a port that is not a number");
    assert!(matches!(e, CoordinationError::InvalidUrl { .. }), "{e:?}");
    let source = e.source().expect("the sqlx error is the source");
    assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
    assert!(!e.to_string().contains("secret"), "{e}");

    let e = CoordinationUrl::parse("redis://127.0.0.1:6379/notadb").expect_err("a bad database");
    let source = e.source().expect("the storage crate's error is the source");
    assert!(
        source
            .downcast_ref::<gnocchi_storage::StorageError>()
            .is_some(),
        "{source:?}"
    );

    // A reason of our own has no source.
    let e = CoordinationUrl::parse("mysql://root@127.0.0.1/test").expect_err("unsupported");
    assert!(e.source().is_none(), "{e:?}");
}

#[tokio::test]
async fn a_failed_blocking_task_is_the_source_of_the_internal_error() {
    let join_error = tokio::task::spawn_blocking(|| panic!("deliberate panic in a test"))
        .await
        .expect_err("the task panicked");
    let e = EngineError::Internal(InternalError::Blocking(join_error));
    let internal = e.source().expect("what went wrong inside is the source");
    let join = internal.source().expect("the join error is its source");
    assert!(
        join.downcast_ref::<tokio::task::JoinError>().is_some(),
        "{join:?}"
    );
    assert!(e.to_string().starts_with("internal error: "), "{e}");
}
