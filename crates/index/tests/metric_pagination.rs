//! Listing metrics: every sort key and direction with NULLs first/last/default, `id`
//! as tie-breaker, keyset pages that add up to the full listing, and the errors.

mod common;

use common::{indexer, new_metric, policy};

use gnocchi_index::{IndexError, Indexer, Metric, MetricQuery, Nulls, SortDir, SortKey};
use std::cmp::Ordering;
use uuid::Uuid;

fn value(m: &Metric, key: &str) -> Option<String> {
    match key {
        "id" => Some(m.id.to_string()),
        "name" => m.name.clone(),
        "unit" => m.unit.clone(),
        "archive_policy_name" => Some(m.archive_policy.name.clone()),
        "creator" => m.creator.clone(),
        "resource_id" => m.resource_id.map(|r| r.to_string()),
        _ => unreachable!(),
    }
}

/// The order the listing must have, computed independently of SQL.
fn reference_cmp(a: &Metric, b: &Metric, sort: &[SortKey]) -> Ordering {
    let mut keys = sort.to_vec();
    if !keys.iter().any(|k| k.key == "id") {
        keys.push(SortKey {
            key: "id".into(),
            dir: SortDir::Asc,
            nulls: Nulls::Default,
        });
    }
    for k in &keys {
        let desc = k.dir == SortDir::Desc;
        let nulls_first = match k.nulls {
            Nulls::First => true,
            Nulls::Last => false,
            Nulls::Default => desc,
        };
        let ord = match (value(a, &k.key), value(b, &k.key)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => {
                if nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (Some(_), None) => {
                if nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (Some(x), Some(y)) => {
                if desc {
                    y.cmp(&x)
                } else {
                    x.cmp(&y)
                }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

fn ids(ms: &[Metric]) -> Vec<Uuid> {
    ms.iter().map(|m| m.id).collect()
}

async fn populate(index: &dyn Indexer) -> Vec<Metric> {
    index.create_archive_policy(&policy("low")).await.unwrap();
    index.create_archive_policy(&policy("high")).await.unwrap();
    let names = [None, Some("a"), Some("b"), Some("c")];
    let units = [None, Some("ms"), Some("s")];
    let creators = [None, Some("u1:p1"), Some("u2:p1"), Some("u1:p2")];
    let resources = [Uuid::new_v4(), Uuid::new_v4()];
    let mut all = Vec::new();
    for i in 0..61usize {
        let ap = if i % 5 == 0 { "high" } else { "low" };
        let mut nm = new_metric(ap, names[i % 4], None);
        if i % 3 == 0 {
            nm.resource_id = Some(resources[i % 2]);
            nm.name = Some(format!("r{i:02}"));
        }
        nm.unit = units[i % 3].map(str::to_owned);
        nm.creator = creators[(i / 2) % 4].map(str::to_owned);
        all.push(index.create_metric(&nm).await.unwrap());
    }
    // A deleted metric never shows up.
    let gone = index
        .create_metric(&new_metric("low", Some("a"), None))
        .await
        .unwrap();
    index.delete_metric(gone.id).await.unwrap();
    all
}

fn sort_specs() -> Vec<Vec<SortKey>> {
    let key = |k: &str, dir, nulls| SortKey {
        key: k.into(),
        dir,
        nulls,
    };
    let mut specs = vec![vec![], vec![key("id", SortDir::Desc, Nulls::Default)]];
    for k in [
        "name",
        "unit",
        "archive_policy_name",
        "creator",
        "resource_id",
    ] {
        for dir in [SortDir::Asc, SortDir::Desc] {
            for nulls in [Nulls::Default, Nulls::First, Nulls::Last] {
                specs.push(vec![key(k, dir, nulls)]);
            }
        }
    }
    specs.push(vec![
        key("unit", SortDir::Desc, Nulls::Last),
        key("name", SortDir::Asc, Nulls::First),
    ]);
    specs.push(vec![
        key("creator", SortDir::Asc, Nulls::Default),
        key("resource_id", SortDir::Desc, Nulls::Last),
        key("name", SortDir::Desc, Nulls::First),
    ]);
    specs.push(vec![
        key("archive_policy_name", SortDir::Desc, Nulls::Default),
        key("id", SortDir::Desc, Nulls::Default),
    ]);
    specs
}

#[tokio::test]
async fn listing_follows_sort_and_pages_add_up() {
    let (_dir, index) = indexer().await;
    let all = populate(index.as_ref()).await;
    for sort in sort_specs() {
        let mut expected = all.clone();
        expected.sort_by(|a, b| reference_cmp(a, b, &sort));
        let q = MetricQuery {
            sort: sort.clone(),
            ..Default::default()
        };
        let full = index.list_metrics(&q).await.unwrap();
        assert_eq!(ids(&full), ids(&expected), "sort {sort:?}");

        for limit in [1, 7, 61, 100] {
            let mut paged = Vec::new();
            let mut marker = None;
            loop {
                let q = MetricQuery {
                    sort: sort.clone(),
                    limit: Some(limit),
                    marker: marker.clone(),
                    ..Default::default()
                };
                let page = index.list_metrics(&q).await.unwrap();
                assert!(page.len() <= limit);
                paged.extend(ids(&page));
                if page.len() < limit {
                    break;
                }
                marker = Some(page.last().unwrap().id.to_string());
            }
            assert_eq!(paged, ids(&expected), "sort {sort:?} limit {limit}");
        }
    }
}

#[tokio::test]
async fn pages_respect_filters() {
    let (_dir, index) = indexer().await;
    let all = populate(index.as_ref()).await;
    let expected: Vec<Uuid> = {
        let mut e: Vec<&Metric> = all
            .iter()
            .filter(|m| m.archive_policy.name == "low")
            .collect();
        e.sort_by_key(|m| m.id.to_string());
        e.iter().map(|m| m.id).collect()
    };
    let mut paged = Vec::new();
    let mut marker = None;
    loop {
        let q = MetricQuery {
            archive_policy_name: Some("low".into()),
            limit: Some(5),
            marker: marker.clone(),
            ..Default::default()
        };
        let page = index.list_metrics(&q).await.unwrap();
        paged.extend(ids(&page));
        if page.len() < 5 {
            break;
        }
        marker = Some(page.last().unwrap().id.to_string());
    }
    assert_eq!(paged, expected);
}

#[tokio::test]
async fn bad_marker_and_sort_key_are_rejected() {
    let (_dir, index) = indexer().await;
    let all = populate(index.as_ref()).await;
    let q = |marker: &str| MetricQuery {
        marker: Some(marker.into()),
        ..Default::default()
    };
    for bad in ["not-a-uuid".to_owned(), Uuid::new_v4().to_string()] {
        assert!(matches!(
            index.list_metrics(&q(&bad)).await,
            Err(IndexError::InvalidMarker(m)) if m == bad
        ));
    }
    index.delete_metric(all[0].id).await.unwrap();
    assert!(matches!(
        index.list_metrics(&q(&all[0].id.to_string())).await,
        Err(IndexError::InvalidMarker(_))
    ));
    // A marker in another textual form of the same uuid works.
    let upper = all[1].id.to_string().to_uppercase();
    index.list_metrics(&q(&upper)).await.unwrap();

    let sort = vec![SortKey {
        key: "nonexistent_key".into(),
        dir: SortDir::Asc,
        nulls: Nulls::Default,
    }];
    assert!(matches!(
        index.list_metrics(&MetricQuery { sort, ..Default::default() }).await,
        Err(IndexError::InvalidSortKey(k)) if k == "nonexistent_key"
    ));
}
