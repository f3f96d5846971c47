//! Every operator of the query language compiles and selects the right rows on
//! SQLite; unknown fields and uncastable values are the caller's errors.

mod common;

use common::indexer;
use gnocchi_index::{CmpOp, Filter, FilterValue, GENERIC, IndexError, NewResource, ResourceQuery};
use uuid::Uuid;

const SECOND: i64 = 1_000_000_000;

fn cmp(op: CmpOp, field: &str, value: FilterValue) -> Filter {
    Filter::Compare {
        op,
        field: field.into(),
        value,
    }
}

fn s(v: &str) -> FilterValue {
    FilterValue::String(v.into())
}

#[tokio::test]
async fn every_operator_selects_the_right_rows() {
    let (_dir, index) = indexer().await;
    for (i, project) in [Some("p1"), Some("p2"), None].into_iter().enumerate() {
        let id = Uuid::new_v4();
        index
            .create_resource(&NewResource {
                id,
                resource_type: GENERIC.into(),
                original_resource_id: format!("r{i}"),
                creator: Some(format!("user{i}:proj{i}")),
                user_id: None,
                project_id: project.map(str::to_owned),
                started_at: Some(i as i64 * 10 * SECOND),
                ended_at: Some((i as i64 * 10 + 5 + i as i64) * SECOND),
                attributes: vec![],
                metrics: vec![],
            })
            .await
            .unwrap();
    }
    let count = |f: Filter| {
        let index = &index;
        async move {
            let mut q = ResourceQuery::new(GENERIC);
            q.filter = Some(f);
            index.list_resources(&q).await.map(|v| v.len())
        }
    };
    assert_eq!(
        count(cmp(CmpOp::Eq, "project_id", s("p1"))).await.unwrap(),
        1
    );
    // `!=` also matches the resource without project.
    assert_eq!(
        count(cmp(CmpOp::Ne, "project_id", s("p1"))).await.unwrap(),
        2
    );
    assert_eq!(
        count(cmp(CmpOp::Eq, "project_id", FilterValue::Null))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(cmp(CmpOp::Lt, "started_at", FilterValue::Int(10)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(cmp(CmpOp::Le, "started_at", s("1970-01-01T00:00:10")))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        count(cmp(CmpOp::Gt, "started_at", FilterValue::Float(10.0)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(cmp(CmpOp::Ge, "started_at", FilterValue::Int(0)))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        count(Filter::In {
            field: "project_id".into(),
            values: vec![s("p1"), s("p2")]
        })
        .await
        .unwrap(),
        2
    );
    assert_eq!(
        count(Filter::Like {
            field: "original_resource_id".into(),
            pattern: s("r%")
        })
        .await
        .unwrap(),
        3
    );
    assert_eq!(
        count(Filter::Not(Box::new(cmp(CmpOp::Eq, "project_id", s("p1")))))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(Filter::Or(vec![
            cmp(CmpOp::Eq, "project_id", s("p1")),
            cmp(CmpOp::Eq, "project_id", s("p2"))
        ]))
        .await
        .unwrap(),
        2
    );
    assert_eq!(
        count(Filter::And(vec![
            cmp(CmpOp::Eq, "project_id", s("p1")),
            cmp(CmpOp::Eq, "project_id", s("p2"))
        ]))
        .await
        .unwrap(),
        0
    );
    // lifespan = ended_at - started_at: 5, 6 and 7 seconds.
    assert_eq!(count(cmp(CmpOp::Gt, "lifespan", s("5s"))).await.unwrap(), 2);
    assert_eq!(
        count(cmp(CmpOp::Eq, "created_by_user_id", s("user1")))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(cmp(CmpOp::Eq, "created_by_project_id", s("proj2")))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(cmp(CmpOp::Ne, "created_by_project_id", s("proj2")))
            .await
            .unwrap(),
        2
    );

    assert!(matches!(
        count(cmp(CmpOp::Eq, "nope", s("x"))).await,
        Err(IndexError::QueryAttributeError { .. })
    ));
    assert!(matches!(
        count(cmp(CmpOp::Eq, "started_at", s("not a date"))).await,
        Err(IndexError::QueryValueError { .. })
    ));
    assert!(matches!(
        count(cmp(CmpOp::Lt, "created_by_user_id", s("x"))).await,
        Err(IndexError::QueryValueError { .. })
    ));
    let mut deep = cmp(CmpOp::Eq, "project_id", s("p1"));
    for _ in 0..100 {
        deep = Filter::Not(Box::new(deep));
    }
    assert!(matches!(
        count(deep).await,
        Err(IndexError::InvalidQuery(_))
    ));
}
