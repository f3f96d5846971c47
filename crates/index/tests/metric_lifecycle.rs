//! Metrics: create, read only while active, delete (status + resource_id NULL), and
//! the janitor's list/expunge.

mod common;

use common::{indexer, new_metric, policy};
use gnocchi_index::{IndexError, MetricQuery};
use std::collections::HashSet;
use uuid::Uuid;

#[tokio::test]
async fn created_metric_reads_back_with_its_policy() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let mut nm = new_metric("low", Some("cpu"), Some(Uuid::new_v4()));
    nm.unit = Some("ns".into());
    nm.creator = Some("u:p".into());
    let created = index.create_metric(&nm).await.unwrap();
    assert_eq!(created.id, nm.id);
    assert_eq!(*created.archive_policy, policy("low"));

    let got = index.get_metrics(&[nm.id, Uuid::new_v4()]).await.unwrap();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(
        (m.id, &m.name, &m.unit, m.resource_id, &m.creator),
        (nm.id, &nm.name, &nm.unit, nm.resource_id, &nm.creator)
    );
    assert_eq!(*m.archive_policy, policy("low"));
    assert!(index.get_metrics(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_policy_is_not_found() {
    let (_dir, index) = indexer().await;
    assert!(matches!(
        index.create_metric(&new_metric("nope", None, None)).await,
        Err(IndexError::ArchivePolicyNotFound(n)) if n == "nope"
    ));
}

#[tokio::test]
async fn policy_deleted_behind_the_cache_is_not_found() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    index.delete_archive_policy("low").await.unwrap();
    assert!(matches!(
        index.create_metric(&new_metric("low", None, None)).await,
        Err(IndexError::ArchivePolicyNotFound(_))
    ));
}

#[tokio::test]
async fn name_is_unique_per_resource_among_active_metrics() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let r = Uuid::new_v4();
    let first = index
        .create_metric(&new_metric("low", Some("cpu"), Some(r)))
        .await
        .unwrap();
    assert!(matches!(
        index.create_metric(&new_metric("low", Some("cpu"), Some(r))).await,
        Err(IndexError::NamedMetricAlreadyExists(n)) if n == "cpu"
    ));
    // Other resource, no resource, other name: fine; unnamed metrics never collide.
    index
        .create_metric(&new_metric("low", Some("cpu"), Some(Uuid::new_v4())))
        .await
        .unwrap();
    index
        .create_metric(&new_metric("low", Some("cpu"), None))
        .await
        .unwrap();
    index
        .create_metric(&new_metric("low", Some("cpu"), None))
        .await
        .unwrap();
    index
        .create_metric(&new_metric("low", Some("mem"), Some(r)))
        .await
        .unwrap();
    index
        .create_metric(&new_metric("low", None, Some(r)))
        .await
        .unwrap();
    index
        .create_metric(&new_metric("low", None, Some(r)))
        .await
        .unwrap();

    // Deleting frees the name on that resource.
    index.delete_metric(first.id).await.unwrap();
    index
        .create_metric(&new_metric("low", Some("cpu"), Some(r)))
        .await
        .unwrap();
}

#[tokio::test]
async fn duplicate_id_is_a_backend_error_not_a_name_clash() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let r = Uuid::new_v4();
    let nm = new_metric("low", Some("cpu"), Some(r));
    index.create_metric(&nm).await.unwrap();
    let mut again = nm.clone();
    again.name = Some("other".into());
    assert!(matches!(
        index.create_metric(&again).await,
        Err(IndexError::Backend(_))
    ));
}

#[tokio::test]
async fn deleted_metric_is_invisible_and_not_found_twice() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let r = Uuid::new_v4();
    let m = index
        .create_metric(&new_metric("low", Some("cpu"), Some(r)))
        .await
        .unwrap();
    index.delete_metric(m.id).await.unwrap();
    assert!(index.get_metrics(&[m.id]).await.unwrap().is_empty());
    assert!(
        index
            .list_metrics(&MetricQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        matches!(index.delete_metric(m.id).await, Err(IndexError::MetricNotFound(id)) if id == m.id)
    );
    assert!(matches!(
        index.delete_metric(Uuid::new_v4()).await,
        Err(IndexError::MetricNotFound(_))
    ));
    // Detached from its resource.
    let q = MetricQuery {
        resource_id: Some(r),
        ..Default::default()
    };
    assert!(index.list_metrics(&q).await.unwrap().is_empty());
}

#[tokio::test]
async fn janitor_lists_and_expunges_only_deleted_metrics() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let mut deleted = HashSet::new();
    let mut kept = Vec::new();
    for i in 0..10 {
        let m = index
            .create_metric(&new_metric("low", None, None))
            .await
            .unwrap();
        if i % 2 == 0 {
            index.delete_metric(m.id).await.unwrap();
            deleted.insert(m.id);
        } else {
            kept.push(m.id);
        }
    }
    assert_eq!(index.list_deleted_metrics(3).await.unwrap().len(), 3);
    let listed: HashSet<Uuid> = index
        .list_deleted_metrics(100)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(listed, deleted);

    // Expunging an active metric's id does nothing to it.
    let mut ids: Vec<Uuid> = deleted.iter().copied().collect();
    ids.push(kept[0]);
    index.expunge_metrics(&ids).await.unwrap();
    index.expunge_metrics(&[]).await.unwrap();
    assert!(index.list_deleted_metrics(100).await.unwrap().is_empty());
    assert_eq!(index.get_metrics(&kept).await.unwrap().len(), kept.len());
}

#[tokio::test]
async fn get_metrics_handles_many_ids() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..1200 {
        ids.push(
            index
                .create_metric(&new_metric("low", None, None))
                .await
                .unwrap()
                .id,
        );
    }
    let got: HashSet<Uuid> = index
        .get_metrics(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(got, ids.iter().copied().collect());
}
