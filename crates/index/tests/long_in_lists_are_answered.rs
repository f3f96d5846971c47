//! An `in` filter, a metric id filter and an id lookup answer correctly however
//! many values they carry (100,000 here: more than any engine binds in one
//! statement), on every backend; thousands of separate comparisons, which cannot
//! be bound, are the caller's error, not the engine's.

mod common;

use common::{indexer, new_metric, policy};
use gnocchi_index::{
    AttrValue, AttributeKind, AttributeSchema, Filter, FilterValue, GENERIC, IndexError,
    MetricQuery, NewResource, ResourceQuery, ResourceType, ResourceTypeState,
};
use std::collections::BTreeSet;
use uuid::Uuid;

const MANY: usize = 100_000;

fn in_filter(field: &str, values: Vec<FilterValue>) -> Filter {
    Filter::In {
        field: field.into(),
        values,
    }
}

/// `MANY` values: `hits` (shuffled in among) fresh values that match nothing.
fn with_misses(hits: Vec<FilterValue>, miss: impl Fn(usize) -> FilterValue) -> Vec<FilterValue> {
    let mut values: Vec<FilterValue> = (0..MANY - hits.len()).map(miss).collect();
    for (i, h) in hits.into_iter().enumerate() {
        values.insert(i * 7919 % values.len(), h);
    }
    values
}

fn uuid_misses(_: usize) -> FilterValue {
    FilterValue::String(Uuid::new_v4().to_string())
}

fn attr(name: &str, kind: AttributeKind) -> AttributeSchema {
    AttributeSchema {
        name: name.into(),
        required: false,
        kind,
    }
}

fn resource(id: Uuid, resource_type: &str, attributes: Vec<(String, AttrValue)>) -> NewResource {
    NewResource {
        id,
        resource_type: resource_type.into(),
        original_resource_id: id.to_string(),
        creator: Some("u:p".into()),
        user_id: None,
        project_id: None,
        started_at: None,
        ended_at: None,
        attributes,
        metrics: vec![],
    }
}

#[tokio::test]
async fn in_with_100000_values_selects_the_right_resources() {
    let (_db, index) = indexer().await;
    let rt = ResourceType {
        name: "host".into(),
        state: ResourceTypeState::Active,
        attributes: vec![
            attr(
                "name",
                AttributeKind::String {
                    min_length: 0,
                    max_length: 255,
                },
            ),
            attr("image", AttributeKind::Uuid),
            attr(
                "cores",
                AttributeKind::Number {
                    min: None,
                    max: None,
                },
            ),
            attr("up", AttributeKind::Bool),
            attr("booted", AttributeKind::Datetime),
        ],
        tablename: None,
    };
    index.create_resource_type(&rt).await.unwrap();
    let mut hosts = Vec::new();
    for i in 0..6u8 {
        let id = Uuid::new_v4();
        let image = Uuid::new_v4();
        let attributes = vec![
            ("name".into(), AttrValue::String(format!("host-'{i}\\"))),
            ("image".into(), AttrValue::Uuid(image)),
            ("cores".into(), AttrValue::Number(f64::from(i) + 0.5)),
            ("up".into(), AttrValue::Bool(i % 2 == 0)),
            (
                "booted".into(),
                AttrValue::Datetime(i64::from(i) * 1_000_000_000),
            ),
        ];
        index
            .create_resource(&resource(id, "host", attributes))
            .await
            .unwrap();
        hosts.push((id, image));
    }
    let search = |resource_type: &'static str, filter: Filter| {
        let index = &index;
        async move {
            let mut q = ResourceQuery::new(resource_type);
            q.filter = Some(filter);
            index
                .list_resources(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<BTreeSet<Uuid>>()
        }
    };
    let ids = |picks: &[usize]| picks.iter().map(|&i| hosts[i].0).collect::<BTreeSet<_>>();

    // Resource ids, on the generic type (every host is a generic resource too).
    let values = with_misses(
        [0, 3, 5]
            .iter()
            .map(|&i| FilterValue::String(hosts[i].0.to_string()))
            .collect(),
        uuid_misses,
    );
    assert_eq!(
        search(GENERIC, in_filter("id", values)).await,
        ids(&[0, 3, 5])
    );

    // Every attribute kind: text (with quotes and backslashes), uuid, number,
    // bool, datetime.
    let names = with_misses(
        vec![
            FilterValue::String("host-'1\\".into()),
            FilterValue::String("host-'4\\".into()),
        ],
        |i| FilterValue::String(format!("host-'{}\\", i + 100)),
    );
    assert_eq!(search("host", in_filter("name", names)).await, ids(&[1, 4]));
    let images = with_misses(
        vec![FilterValue::String(hosts[2].1.to_string())],
        uuid_misses,
    );
    assert_eq!(search("host", in_filter("image", images)).await, ids(&[2]));
    let cores = with_misses(
        vec![FilterValue::Float(3.5), FilterValue::Float(5.5)],
        |i| FilterValue::Float(i as f64 + 10.25),
    );
    assert_eq!(
        search("host", in_filter("cores", cores)).await,
        ids(&[3, 5])
    );
    let up = with_misses(vec![FilterValue::Bool(false)], |_| FilterValue::Bool(false));
    assert_eq!(search("host", in_filter("up", up)).await, ids(&[1, 3, 5]));
    let booted = with_misses(vec![FilterValue::Int(2), FilterValue::Int(4)], |i| {
        FilterValue::Int(i as i64 + 1_000)
    });
    assert_eq!(
        search("host", in_filter("booted", booted)).await,
        ids(&[2, 4])
    );
    // A NULL among the values still matches unset attributes too.
    let mut with_null = with_misses(vec![], uuid_misses);
    with_null.push(FilterValue::Null);
    let bare = Uuid::new_v4();
    index
        .create_resource(&resource(bare, "host", vec![]))
        .await
        .unwrap();
    assert_eq!(
        search("host", in_filter("image", with_null)).await,
        BTreeSet::from([bare])
    );

    // Combined with pagination and sorting: the second page of the three hits.
    let values = with_misses(
        [0, 3, 5]
            .iter()
            .map(|&i| FilterValue::String(hosts[i].0.to_string()))
            .collect(),
        uuid_misses,
    );
    let mut q = ResourceQuery::new("host");
    q.filter = Some(in_filter("id", values.clone()));
    q.limit = Some(2);
    let first = index.list_resources(&q).await.unwrap();
    assert_eq!(first.len(), 2);
    q.marker = Some(first[1].id.to_string());
    let second = index.list_resources(&q).await.unwrap();
    assert_eq!(second.len(), 1);
    let mut all: BTreeSet<Uuid> = first.iter().map(|r| r.id).collect();
    all.insert(second[0].id);
    assert_eq!(all, ids(&[0, 3, 5]));

    // Deleting by the same filter deletes exactly those.
    assert_eq!(
        index
            .delete_resources("host", &in_filter("id", values))
            .await
            .unwrap(),
        3
    );
    let mut left = ids(&[1, 2, 4]);
    left.insert(bare);
    assert_eq!(search("host", Filter::And(vec![])).await, left);
}

#[tokio::test]
async fn metrics_by_100000_ids_are_found() {
    let (_db, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let mut wanted = BTreeSet::new();
    for i in 0..4 {
        let m = index
            .create_metric(&new_metric("low", Some(&format!("m{i}")), None))
            .await
            .unwrap();
        if i != 2 {
            wanted.insert(m.id);
        }
    }
    let mut ids: Vec<Uuid> = (0..MANY - wanted.len()).map(|_| Uuid::new_v4()).collect();
    ids.extend(&wanted);

    let q = MetricQuery {
        ids: ids.clone(),
        ..Default::default()
    };
    let listed: BTreeSet<Uuid> = index
        .list_metrics(&q)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, wanted);

    let got: BTreeSet<Uuid> = index
        .get_metrics(&ids)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(got, wanted);
}

#[tokio::test]
async fn thousands_of_comparisons_are_an_invalid_query() {
    let (_db, index) = indexer().await;
    let or = Filter::Or(
        (0..20_000)
            .map(|i| Filter::Compare {
                op: gnocchi_index::CmpOp::Eq,
                field: "original_resource_id".into(),
                value: FilterValue::String(format!("r{i}")),
            })
            .collect(),
    );
    let mut q = ResourceQuery::new(GENERIC);
    q.filter = Some(or);
    match index.list_resources(&q).await {
        Err(IndexError::InvalidQuery(m)) => assert!(m.contains("10000"), "{m}"),
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
}
