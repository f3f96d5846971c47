//! A resource's history: a real change records the previous revision, an
//! identical value or a metrics change records nothing, and history listings
//! page through every revision with `id@revision` markers.

mod common;

use common::{indexer, policy};
use gnocchi_index::{
    CmpOp, Filter, FilterValue, GENERIC, MetricSpec, NewResource, ResourceQuery, ResourceUpdate,
};
use uuid::Uuid;

fn new_resource(id: Uuid) -> NewResource {
    NewResource {
        id,
        resource_type: GENERIC.into(),
        original_resource_id: id.to_string(),
        creator: Some("alice".into()),
        user_id: Some("u1".into()),
        project_id: None,
        started_at: Some(1_000_000_000),
        ended_at: None,
        attributes: vec![],
        metrics: vec![],
    }
}

#[tokio::test]
async fn only_real_changes_make_revisions() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let id = Uuid::new_v4();
    let created = index.create_resource(&new_resource(id)).await.unwrap();
    assert_eq!(created.revision, -1);

    let same = ResourceUpdate {
        user_id: Some(Some("u1".into())),
        ..Default::default()
    };
    let r = index.update_resource(GENERIC, id, &same).await.unwrap();
    assert_eq!(r.revision_start, created.revision_start);

    let metrics = ResourceUpdate {
        metrics: Some(vec![(
            "cpu".into(),
            MetricSpec::New {
                archive_policy_name: "low".into(),
                unit: None,
            },
        )]),
        ..Default::default()
    };
    let r = index.update_resource(GENERIC, id, &metrics).await.unwrap();
    assert_eq!(r.revision_start, created.revision_start);
    assert_eq!(r.metrics.len(), 1);

    for user in ["u2", "u3"] {
        let change = ResourceUpdate {
            user_id: Some(Some(user.into())),
            ..Default::default()
        };
        index.update_resource(GENERIC, id, &change).await.unwrap();
    }

    let mut q = ResourceQuery::new(GENERIC);
    q.history = true;
    q.filter = Some(Filter::Compare {
        op: CmpOp::Eq,
        field: "id".into(),
        value: FilterValue::String(id.to_string()),
    });
    let all = index.list_resources(&q).await.unwrap();
    let users: Vec<_> = all.iter().map(|r| r.user_id.clone().unwrap()).collect();
    assert_eq!(users, ["u1", "u2", "u3"], "{all:#?}");
    assert!(all[0].revision_end.is_some() && all[2].revision_end.is_none());
    // History rows show the resource's current metrics.
    assert!(all.iter().all(|r| r.metrics.len() == 1));

    // Page one row at a time with id@revision markers.
    let mut seen = Vec::new();
    q.limit = Some(1);
    loop {
        let page = index.list_resources(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        seen.push(last.user_id.clone().unwrap());
        q.marker = Some(format!("{}@{}", last.id, last.revision));
    }
    assert_eq!(seen, users);

    // Matching on an old value finds the old revision only with history.
    q.limit = None;
    q.marker = None;
    q.filter = Some(Filter::Compare {
        op: CmpOp::Eq,
        field: "user_id".into(),
        value: FilterValue::String("u1".into()),
    });
    assert_eq!(index.list_resources(&q).await.unwrap().len(), 1);
    q.history = false;
    assert!(index.list_resources(&q).await.unwrap().is_empty());
}

#[tokio::test]
async fn deleting_a_resource_marks_its_metrics_deleted() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let id = Uuid::new_v4();
    let mut r = new_resource(id);
    r.metrics = vec![(
        "cpu".into(),
        MetricSpec::New {
            archive_policy_name: "low".into(),
            unit: None,
        },
    )];
    let created = index.create_resource(&r).await.unwrap();
    let metric = created.metrics[0].1;
    index.delete_resource(id).await.unwrap();
    assert!(index.get_metrics(&[metric]).await.unwrap().is_empty());
    assert_eq!(index.list_deleted_metrics(10).await.unwrap(), vec![metric]);
    assert!(index.get_resource(GENERIC, id).await.unwrap().is_none());
}
