//! Listing filters: exact match on every attribute, upstream's partial creator forms
//! (`user:` and `:project`), ids, and their combination.

mod common;

use common::{indexer, new_metric, policy};
use gnocchi_index::MetricQuery;
use std::collections::HashSet;
use uuid::Uuid;

#[tokio::test]
async fn filters_match_exactly() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    index.create_archive_policy(&policy("high")).await.unwrap();
    let r = Uuid::new_v4();
    let mk = |ap: &str,
              name: Option<&str>,
              unit: Option<&str>,
              creator: Option<&str>,
              res: Option<Uuid>| {
        let mut nm = new_metric(ap, name, res);
        nm.unit = unit.map(str::to_owned);
        nm.creator = creator.map(str::to_owned);
        nm
    };
    let specs = [
        mk("low", Some("cpu"), Some("ns"), Some("alice:p1"), Some(r)),
        mk("low", Some("mem"), Some("B"), Some("alice:p2"), Some(r)),
        mk("high", Some("cpu"), Some("ns"), Some("bob:p1"), None),
        mk("high", None, None, None, None),
        mk("low", Some("cpu"), None, Some("alice"), None),
        mk("low", Some("x"), None, Some("a%ice:p1"), None),
    ];
    let mut ms = Vec::new();
    for s in &specs {
        ms.push(index.create_metric(s).await.unwrap().id);
    }
    let check = |q: MetricQuery, want: &[usize]| {
        let index = &index;
        let ms = &ms;
        let want: HashSet<Uuid> = want.iter().map(|&i| ms[i]).collect();
        async move {
            let got: HashSet<Uuid> = index
                .list_metrics(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect();
            assert_eq!(got, want, "{q:?}");
        }
    };
    check(MetricQuery::default(), &[0, 1, 2, 3, 4, 5]).await;
    check(
        MetricQuery {
            name: Some("cpu".into()),
            ..Default::default()
        },
        &[0, 2, 4],
    )
    .await;
    check(
        MetricQuery {
            unit: Some("ns".into()),
            ..Default::default()
        },
        &[0, 2],
    )
    .await;
    check(
        MetricQuery {
            archive_policy_name: Some("high".into()),
            ..Default::default()
        },
        &[2, 3],
    )
    .await;
    check(
        MetricQuery {
            resource_id: Some(r),
            ..Default::default()
        },
        &[0, 1],
    )
    .await;
    check(
        MetricQuery {
            creator: Some("alice:p1".into()),
            ..Default::default()
        },
        &[0],
    )
    .await;
    check(
        MetricQuery {
            creator: Some("alice".into()),
            ..Default::default()
        },
        &[4],
    )
    .await;
    check(
        MetricQuery {
            creator: Some("alice:".into()),
            ..Default::default()
        },
        &[0, 1],
    )
    .await;
    check(
        MetricQuery {
            creator: Some(":p1".into()),
            ..Default::default()
        },
        &[0, 2, 5],
    )
    .await;
    // LIKE wildcards in the value are literal.
    check(
        MetricQuery {
            creator: Some("a%ice:".into()),
            ..Default::default()
        },
        &[5],
    )
    .await;
    check(
        MetricQuery {
            creator: Some("a_ice:".into()),
            ..Default::default()
        },
        &[],
    )
    .await;
    check(
        MetricQuery {
            ids: vec![ms[1], ms[3], Uuid::new_v4()],
            ..Default::default()
        },
        &[1, 3],
    )
    .await;
    check(
        MetricQuery {
            name: Some("cpu".into()),
            archive_policy_name: Some("low".into()),
            unit: Some("ns".into()),
            ..Default::default()
        },
        &[0],
    )
    .await;
}
