//! The Swift drivers against a real Swift whose tempauth URL is
//! `GNOCCHI_TEST_SWIFT_AUTHURL` (user `GNOCCHI_TEST_SWIFT_USER`, key
//! `GNOCCHI_TEST_SWIFT_KEY`); skipped when it is unset.
//! `eval "$(scripts/swift-test-up.sh)"` starts a throwaway one. Every test
//! uses its own container prefix (with `swift_container_prefix_all`, so the
//! sack and config containers are its own too).
//!
//! `cargo test -p gnocchi-storage --test swift_drivers`

mod contract;

use contract::*;
use gnocchi_storage::swift::{SwiftAggregates, SwiftIncoming, SwiftOptions, requests_sent};
use gnocchi_storage::{Aggregates, Incoming, WriteBatch, sack_of};
use std::sync::Arc;
use std::time::Duration;

fn options(prefix: &str) -> Option<SwiftOptions> {
    match std::env::var("GNOCCHI_TEST_SWIFT_AUTHURL") {
        Ok(url) if !url.is_empty() => Some(SwiftOptions {
            authurl: url,
            user: std::env::var("GNOCCHI_TEST_SWIFT_USER").unwrap_or_else(|_| "test:tester".into()),
            key: std::env::var("GNOCCHI_TEST_SWIFT_KEY").unwrap_or_else(|_| "testing".into()),
            container_prefix: prefix.to_string(),
            container_prefix_all: true,
            timeout: 60,
            ..Default::default()
        }),
        _ => {
            println!(
                "skipped (GNOCCHI_TEST_SWIFT_AUTHURL unset; eval \"$(scripts/swift-test-up.sh)\")"
            );
            None
        }
    }
}

async fn aggregates(name: &str) -> Option<SwiftAggregates> {
    Some(
        SwiftAggregates::connect(options(&unique(name))?)
            .await
            .unwrap(),
    )
}

async fn incoming(sacks: u32, prefix: &str) -> Option<SwiftIncoming> {
    Some(
        SwiftIncoming::connect(options(prefix)?, sacks)
            .await
            .unwrap(),
    )
}

/// A tempauth login of our own, for looking at what the drivers stored.
struct Raw {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Raw {
    async fn login(o: &SwiftOptions) -> Raw {
        let http = reqwest::Client::new();
        let r = http
            .get(&o.authurl)
            .header("X-Auth-User", &o.user)
            .header("X-Auth-Key", &o.key)
            .send()
            .await
            .unwrap();
        let h = |n: &str| r.headers()[n].to_str().unwrap().to_string();
        let (url, token) = (h("x-storage-url"), h("x-auth-token"));
        Raw { http, url, token }
    }

    /// Object names of a container (`None`: no such container).
    async fn list(&self, container: &str) -> Option<Vec<String>> {
        let r = self
            .http
            .get(format!("{}/{container}?format=json", self.url))
            .header("X-Auth-Token", &self.token)
            .send()
            .await
            .unwrap();
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        let v: Vec<serde_json::Value> = r.json().await.unwrap_or_default();
        Some(
            v.iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect(),
        )
    }
}

#[tokio::test]
async fn aggregates_round_trip() {
    let Some(store) = aggregates("round-trip").await else {
        return;
    };
    contract::aggregates_round_trip(&store).await;
}

#[tokio::test]
async fn aggregates_extremes() {
    let Some(store) = aggregates("extremes").await else {
        return;
    };
    contract::aggregates_extremes(&store).await;
}

#[tokio::test]
async fn incoming_take_commit_release() {
    let Some(inc) = incoming(4, &unique("take")).await else {
        return;
    };
    contract::incoming_take_commit_release(&inc).await;
}

#[tokio::test]
async fn incoming_tokens() {
    let Some(inc) = incoming(8, &unique("tokens")).await else {
        return;
    };
    contract::incoming_tokens(&inc).await;
}

#[tokio::test]
async fn incoming_many() {
    let Some(inc) = incoming(16, &unique("many")).await else {
        return;
    };
    contract::incoming_many(&inc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incoming_concurrent() {
    let Some(inc) = incoming(4, &unique("concurrent")).await else {
        return;
    };
    contract::incoming_concurrent(Arc::new(inc)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sacks_are_found_across_processes() {
    let prefix = unique("notify");
    let Some(waiter) = incoming(8, &prefix).await else {
        return;
    };
    let waiter: Arc<dyn Incoming> = Arc::new(waiter);
    let latency = contract::incoming_notifications(waiter.clone(), waiter.clone()).await;
    // The first round's measures are processed, and a poll that still saw
    // them (a false positive the trait allows) drained, before the second.
    for s in 0..waiter.sacks() {
        let taken = waiter.take(s).await.unwrap();
        waiter.commit(taken).await.unwrap();
    }
    for _ in 0..5 {
        if waiter
            .wait_for_new(Duration::from_millis(1500))
            .await
            .is_empty()
        {
            break;
        }
    }
    // Another handle stands for an API process: found by polling.
    let adder: Arc<dyn Incoming> = Arc::new(incoming(8, &prefix).await.unwrap());
    let latency2 = contract::incoming_notifications(waiter, adder).await;
    println!("woken {latency:?} (same process) / {latency2:?} (another process)");
}

#[tokio::test]
async fn the_stored_sack_count_wins_and_changes_only_when_empty() {
    let prefix = unique("sacks");
    let Some(first) = incoming(8, &prefix).await else {
        return;
    };
    let o = options(&prefix).unwrap();
    let raw = Raw::login(&o).await;
    assert_eq!(
        raw.list(&format!("{prefix}.gnocchi-config")).await,
        Some(vec!["gnocchi-config".to_string()])
    );
    for s in 0..8 {
        assert!(raw.list(&format!("{prefix}.incoming8-{s}")).await.is_some());
    }
    let second = incoming(32, &prefix).await.unwrap();
    assert_eq!(second.sacks(), 8, "the first process's count is stored");
    first.add_measures(batch(&[metric(1)], 0, 2)).await.unwrap();
    let err = SwiftIncoming::change_sacks(o.clone(), 16)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("non-empty backlog"), "{err}");
    let s = sack_of(metric(1), 8);
    let taken = first.take(s).await.unwrap();
    first.commit(taken).await.unwrap();
    assert_eq!(SwiftIncoming::change_sacks(o, 16).await.unwrap(), 8);
    assert_eq!(incoming(4, &prefix).await.unwrap().sacks(), 16);
    assert!(
        raw.list(&format!("{prefix}.incoming8-0")).await.is_none(),
        "old sacks removed"
    );
    assert!(raw.list(&format!("{prefix}.incoming16-15")).await.is_some());
}

#[tokio::test]
async fn objects_are_named_as_upstream_names_them() {
    let prefix = unique("names");
    let Some(o) = options(&prefix) else { return };
    let store = SwiftAggregates::connect(o.clone()).await.unwrap();
    let m = metric(7);
    let s = split(m, carbonara::Method::Mean, G60, 1_425_600_000 * G1);
    store
        .write(WriteBatch {
            raw: vec![(m, b"raw".to_vec())],
            splits: vec![(s, b"split".to_vec())],
            ..Default::default()
        })
        .await
        .unwrap();
    let raw = Raw::login(&o).await;
    assert_eq!(
        raw.list(&format!("{prefix}.{m}")).await.unwrap(),
        vec!["1425600000.0_mean_60.0_v3", "none_v3"]
    );
    let inc = SwiftIncoming::connect(o, 8).await.unwrap();
    inc.add_measures(batch(&[m], 0, 3)).await.unwrap();
    let names = raw
        .list(&format!("{prefix}.incoming8-{}", sack_of(m, 8)))
        .await
        .unwrap();
    assert_eq!(names.len(), 1);
    let (metric, id) = names[0].split_once('/').unwrap();
    assert_eq!(metric, m.to_string());
    // `<uuid>_<YYYYmmdd>_<HH:MM:SS>`
    let parts: Vec<&str> = id.split('_').collect();
    assert_eq!(parts.len(), 3, "{id}");
    assert!(uuid::Uuid::parse_str(parts[0]).is_ok());
    assert_eq!((parts[1].len(), parts[2].len()), (8, 8), "{id}");
}

#[tokio::test]
async fn deleting_a_metric_bulk_deletes_its_many_splits_and_its_container() {
    let prefix = unique("bulk");
    let Some(o) = options(&prefix) else { return };
    let store = SwiftAggregates::connect(o.clone()).await.unwrap();
    let (m, other) = (metric(1), metric(2));
    let n = 1500;
    let splits: Vec<_> = (0..n)
        .map(|i| {
            (
                split(m, carbonara::Method::Max, G1, i * 3600 * G1),
                vec![1u8; 8],
            )
        })
        .collect();
    store
        .write(WriteBatch {
            raw: vec![(m, b"r".to_vec()), (other, b"o".to_vec())],
            splits,
            ..Default::default()
        })
        .await
        .unwrap();
    let keys = store
        .list_split_keys(&[(m, carbonara::Method::Max, G1)])
        .await
        .unwrap();
    assert_eq!(keys[0].len(), n as usize);
    let before = requests_sent();
    store.delete_metrics(&[m]).await.unwrap();
    // A listing, one bulk delete, the container's DELETE; the counter is the
    // process's, shared with the tests running alongside, so it is shown only.
    println!(
        "deleting {n} splits: {} requests (with other tests')",
        requests_sent() - before
    );
    let raw = Raw::login(&o).await;
    assert_eq!(raw.list(&format!("{prefix}.{m}")).await, None);
    assert_eq!(
        store.get_raw(&[m, other]).await.unwrap(),
        vec![None, Some(b"o".to_vec())]
    );
    // Deleting what does not exist is fine.
    store.delete_metrics(&[m, metric(3)]).await.unwrap();
}

/// Tokens expire or are revoked: the next call logs in again and succeeds,
/// including a bulk delete (whose answer reports the 401 per object). The
/// test works as `admin:admin` (account `AUTH_admin`), whose token no other
/// test uses, and revokes it by deleting it from tempauth's memcached.
#[tokio::test]
async fn an_expired_token_is_renewed() {
    let prefix = unique("renew");
    let Some(mut o) = options(&prefix) else {
        return;
    };
    o.user = "admin:admin".into();
    o.key = "admin".into();
    // A token Swift never issued, with the storage URL: the first request
    // gets a 401, logs in and goes through.
    let raw = Raw::login(&o).await;
    o.url = Some(raw.url.clone());
    o.preauthtoken = Some("AUTH_tk00000000000000000000000000000000".into());
    let inc = SwiftIncoming::connect(o.clone(), 4).await.unwrap();
    let m = metric(5);
    inc.add_measures(batch(&[m], 0, 4)).await.unwrap();
    let taken = inc.take(sack_of(m, 4)).await.unwrap();
    assert_eq!(taken.measures[&m].len(), 4);

    let Ok(memcached) = std::env::var("GNOCCHI_TEST_SWIFT_MEMCACHED") else {
        println!("GNOCCHI_TEST_SWIFT_MEMCACHED unset: token revocation not tested");
        return;
    };
    // The commit's bulk delete is the first request to see the revocation.
    revoke(&o, &memcached).await;
    inc.commit(taken).await.unwrap();
    let raw = Raw::login(&o).await;
    assert_eq!(
        raw.list(&format!("{prefix}.incoming4-{}", sack_of(m, 4)))
            .await,
        Some(vec![]),
        "the commit deleted the measures"
    );
    // Plain requests renew too.
    revoke(&o, &memcached).await;
    inc.add_measures(batch(&[m], 10, 1)).await.unwrap();
    assert_eq!(inc.backlog().await.unwrap().measures, 1);

    // The aggregate store as well.
    let store = SwiftAggregates::connect(o.clone()).await.unwrap();
    store
        .write(WriteBatch {
            raw: vec![(m, b"r".to_vec())],
            ..Default::default()
        })
        .await
        .unwrap();
    revoke(&o, &memcached).await;
    assert_eq!(
        store.get_raw(&[m]).await.unwrap(),
        vec![Some(b"r".to_vec())]
    );
    revoke(&o, &memcached).await;
    store.delete_metrics(&[m]).await.unwrap();
}

/// Revoke the current token of `o`'s user: tempauth keeps a token only in
/// memcached, under the md5 of `AUTH_/token/<token>` (Swift's memcache
/// client hashes keys); checked with a request that must now get a 401.
async fn revoke(o: &SwiftOptions, memcached: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let raw = Raw::login(o).await;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.md5(sys.argv[1].encode()).hexdigest())",
            &format!("AUTH_/token/{}", raw.token),
        ])
        .output()
        .expect("python3");
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut c = tokio::net::TcpStream::connect(memcached).await.unwrap();
    c.write_all(format!("delete {key}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"DELETED"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let r = reqwest::Client::new()
        .head(&raw.url)
        .header("X-Auth-Token", &raw.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED, "revoked");
}

#[tokio::test]
async fn wrong_credentials_are_an_error_naming_the_status() {
    let Some(mut o) = options(&unique("denied")) else {
        return;
    };
    o.key = "not-the-key".into();
    let Err(e) = SwiftAggregates::connect(o).await else {
        panic!("logged in with a wrong key");
    };
    assert!(e.to_string().contains("HTTP 401"), "{e}");
}

/// Keystone v3 password login against a real Keystone
/// (`GNOCCHI_TEST_KEYSTONE_URL`, bootstrap admin `admin` / `s3cret`, as
/// `scripts/keystone-test-up.sh` starts it): the storage URL is the catalog
/// endpoint of `swift_service_type` for the interface `swift_endpoint_type`
/// names, in `swift_region`. The endpoints are registered by the test under
/// a service type of its own.
#[tokio::test]
async fn keystone_v3_login_picks_the_catalog_endpoint() {
    let Ok(keystone) = std::env::var("GNOCCHI_TEST_KEYSTONE_URL") else {
        println!(
            "skipped (GNOCCHI_TEST_KEYSTONE_URL unset; eval \"$(scripts/keystone-test-up.sh)\")"
        );
        return;
    };
    let keystone = keystone.trim_end_matches('/').to_string();
    let password =
        std::env::var("GNOCCHI_TEST_KEYSTONE_ADMIN_PASSWORD").unwrap_or_else(|_| "s3cret".into());
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{keystone}/auth/tokens"))
        .json(&serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let admin = r.headers()["x-subject-token"].to_str().unwrap().to_string();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{keystone}/{path}"))
            .header("X-Auth-Token", &admin)
            .json(&body)
            .send()
    };
    let _ = post(
        "regions",
        serde_json::json!({"region": {"id": "RegionTwo"}}),
    )
    .await;
    let service_type = unique("object-store-test");
    let r = post(
        "services",
        serde_json::json!({"service": {"type": service_type, "name": "swift-test"}}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let v: serde_json::Value = r.json().await.unwrap();
    let service = v["service"]["id"].as_str().unwrap().to_string();
    for (interface, region, url) in [
        ("public", "RegionOne", "http://127.0.0.1:1/v1/AUTH_public"),
        (
            "internal",
            "RegionOne",
            "http://127.0.0.1:1/v1/AUTH_internal",
        ),
        ("admin", "RegionOne", "http://127.0.0.1:1/v1/AUTH_admin"),
        ("public", "RegionTwo", "http://127.0.0.1:1/v1/AUTH_two"),
    ] {
        let r = post(
            "endpoints",
            serde_json::json!({"endpoint": {"service_id": service, "interface": interface,
                "region_id": region, "url": url}}),
        )
        .await
        .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let o = SwiftOptions {
        auth_version: "3".into(),
        authurl: keystone.clone(),
        user: "admin".into(),
        key: password,
        project_name: Some("admin".into()),
        service_type,
        timeout: 30,
        ..Default::default()
    };
    let url = |endpoint_type: &str, region: Option<&str>| {
        let o = SwiftOptions {
            endpoint_type: endpoint_type.into(),
            region: region.map(str::to_string),
            ..o.clone()
        };
        async move { gnocchi_storage::swift::storage_url(&o).await }
    };
    assert_eq!(
        url("internalURL", Some("RegionOne")).await.unwrap(),
        "http://127.0.0.1:1/v1/AUTH_internal"
    );
    assert_eq!(
        url("adminURL", None).await.unwrap(),
        "http://127.0.0.1:1/v1/AUTH_admin"
    );
    assert_eq!(
        url("publicURL", Some("RegionTwo")).await.unwrap(),
        "http://127.0.0.1:1/v1/AUTH_two"
    );
    let e = url("publicURL", Some("RegionThree")).await.unwrap_err();
    assert!(e.to_string().contains("no object-store-test"), "{e}");
    // swift_url wins over the catalog.
    let with_url = SwiftOptions {
        url: Some("http://127.0.0.1:1/v1/AUTH_mine".into()),
        ..o.clone()
    };
    assert_eq!(
        gnocchi_storage::swift::storage_url(&with_url)
            .await
            .unwrap(),
        "http://127.0.0.1:1/v1/AUTH_mine"
    );
    let wrong = SwiftOptions {
        key: "wrong".into(),
        ..o
    };
    let e = gnocchi_storage::swift::storage_url(&wrong)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 401"), "{e}");
}
