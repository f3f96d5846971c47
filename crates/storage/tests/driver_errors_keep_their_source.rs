//! A storage error that comes from a library keeps that library's error as its
//! `source()` (Redis, the URL parser, serde_json), so a caller can tell what
//! really failed and an operator's log shows the whole chain. Needs no server:
//! Redis is pointed at a port nobody listens on.

mod common;

use common::TempDir;
use gnocchi_storage::StorageError;
use gnocchi_storage::local_incoming::LocalIncoming;
use gnocchi_storage::redis_incoming::RedisIncoming;
use std::error::Error;

#[tokio::test]
async fn an_unreachable_redis_keeps_the_driver_error_as_source() {
    let Err(e) = RedisIncoming::connect("redis://127.0.0.1:1/", 8).await else {
        panic!("connected to a port nobody listens on");
    };
    assert!(matches!(e, StorageError::Redis(_)), "{e:?}");
    let source = e.source().expect("the redis error is the source");
    assert!(
        source.downcast_ref::<redis::RedisError>().is_some(),
        "{source:?}"
    );
}

#[test]
fn an_unparsable_redis_url_keeps_the_parser_error_as_source() {
    let e = gnocchi_storage::redis_url::client("redis://:secret@[::1/").expect_err("unparsable");
    assert!(matches!(e, StorageError::InvalidRedisUrl { .. }), "{e:?}");
    let source = e.source().expect("the URL parser's error is the source");
    assert!(
        source.downcast_ref::<url::ParseError>().is_some(),
        "{source:?}"
    );
    assert!(
        e.to_string()
            .starts_with("storage backend error: invalid redis URL "),
        "{e}"
    );

    // A reason of our own has no source.
    let e = gnocchi_storage::redis_url::client("redis://127.0.0.1/notadb").expect_err("bad db");
    assert!(e.source().is_none(), "{e:?}");
}

#[test]
fn an_unreadable_incoming_config_keeps_the_json_error_as_source() {
    let dir = TempDir::new("corrupt-config");
    std::fs::write(dir.path().join("config.json"), b"{\"sacks\": ").unwrap();
    let Err(e) = LocalIncoming::open(dir.path(), 8) else {
        panic!("opened an incoming store with an unreadable config.json");
    };
    assert!(matches!(e, StorageError::CorruptFile { .. }), "{e:?}");
    let source = e.source().expect("serde_json's error is the source");
    assert!(
        source.downcast_ref::<serde_json::Error>().is_some(),
        "{source:?}"
    );
    assert!(e.to_string().starts_with("storage data corrupt: "), "{e}");
}

#[tokio::test]
async fn an_unreachable_swift_keeps_the_http_error_as_source() {
    let options = gnocchi_storage::swift::SwiftOptions {
        authurl: "http://127.0.0.1:1/auth/v1.0".into(),
        timeout: 5,
        ..Default::default()
    };
    let Err(e) = gnocchi_storage::swift::SwiftAggregates::connect(options).await else {
        panic!("logged in at a port nobody listens on");
    };
    assert!(matches!(e, StorageError::Swift { .. }), "{e:?}");
    let source = e.source().expect("reqwest's error is the source");
    assert!(
        source.downcast_ref::<reqwest::Error>().is_some(),
        "{source:?}"
    );
    assert!(
        e.to_string()
            .starts_with("storage backend error: swift: login at http://127.0.0.1:1/auth/v1.0: "),
        "{e}"
    );
}
