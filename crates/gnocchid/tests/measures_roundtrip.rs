//! The basic promise, through the real binary: measures pushed are aggregated
//! per the archive policy and read back at every granularity and method.

mod common;
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn pushed_measures_are_read_back_aggregated() {
    let s = Server::start("roundtrip", &[]);
    let c = client();
    let id = create_metric(&c, &s, "medium").await;
    let resp = c
        .post(s.url(&format!("/v1/metric/{id}/measures")))
        .basic_auth("admin", Some(""))
        .json(&json!([
            {"timestamp": "2024-05-01T12:00:00", "value": 41.5},
            {"timestamp": "2024-05-01T12:00:30", "value": 43.5},
            {"timestamp": "2024-05-01T12:01:10", "value": 12},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);

    let get = |q: &str| {
        let url = s.url(&format!("/v1/metric/{id}/measures?{q}"));
        let c = c.clone();
        async move {
            let r = c
                .get(url)
                .basic_auth("admin", Some(""))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(
        get("refresh=true").await,
        json!([
            ["2024-05-01T12:00:00+00:00", 3600.0, 32.333333333333336],
            ["2024-05-01T12:00:00+00:00", 60.0, 42.5],
            ["2024-05-01T12:01:00+00:00", 60.0, 12.0],
        ])
    );
    assert_eq!(
        get("granularity=60&aggregation=max").await,
        json!([
            ["2024-05-01T12:00:00+00:00", 60.0, 43.5],
            ["2024-05-01T12:01:00+00:00", 60.0, 12.0]
        ])
    );
    assert_eq!(
        get("granularity=60&aggregation=count&start=2024-05-01T12:01:00").await,
        json!([["2024-05-01T12:01:00+00:00", 60.0, 1.0]])
    );
}

#[tokio::test]
async fn bad_measures_get_a_400_and_nothing_is_stored() {
    let s = Server::start("badinput", &[]);
    let c = client();
    let id = create_metric(&c, &s, "low").await;
    for (body, reason) in [
        (
            json!([{"timestamp": "2024-05-01T12:00:00", "value": 1}, {"timestamp": "not a date", "value": 2}]),
            "unexpected timestamp",
        ),
        (
            json!([{"timestamp": "2024-05-01T12:00:00", "value": "abc"}]),
            "unexpected measures value",
        ),
        (
            json!([["2024-05-01T12:00:00", 1]]),
            "unexpected measures format",
        ),
        (
            json!([{"timestamp": "1915-03-06T14:33:57", "value": 1}]),
            "Timestamp must be after Epoch",
        ),
    ] {
        let r = c
            .post(s.url(&format!("/v1/metric/{id}/measures")))
            .basic_auth("admin", Some(""))
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        let got = v["description"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(got.contains(reason), "{got} should mention {reason}");
    }
    let r = c
        .post(s.url(&format!("/v1/metric/{id}/measures")))
        .basic_auth("admin", Some(""))
        .header("content-type", "application/json")
        .body("[{\"timestamp\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(s.url(&format!("/v1/metric/{id}/measures?refresh=true")))
        .basic_auth("admin", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
}
