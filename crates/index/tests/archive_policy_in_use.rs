//! A policy referenced by any metric (active or deleted but not yet expunged) or any
//! rule cannot be deleted.

mod common;

use common::{indexer, new_metric, policy};
use gnocchi_index::{ArchivePolicyRule, IndexError};

fn in_use(r: gnocchi_index::Result<()>) -> bool {
    matches!(r, Err(IndexError::ArchivePolicyInUse(n)) if n == "low")
}

#[tokio::test]
async fn used_by_active_then_deleted_metric_until_expunged() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let m = index
        .create_metric(&new_metric("low", Some("cpu"), None))
        .await
        .unwrap();
    assert!(in_use(index.delete_archive_policy("low").await));
    index.delete_metric(m.id).await.unwrap();
    assert!(in_use(index.delete_archive_policy("low").await));
    index.expunge_metrics(&[m.id]).await.unwrap();
    index.delete_archive_policy("low").await.unwrap();
}

#[tokio::test]
async fn used_by_rule() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let rule = ArchivePolicyRule {
        name: "all".into(),
        metric_pattern: "*".into(),
        archive_policy_name: "low".into(),
    };
    index.create_archive_policy_rule(&rule).await.unwrap();
    assert!(in_use(index.delete_archive_policy("low").await));
    // Still there and usable.
    assert!(index.get_archive_policy("low").await.unwrap().is_some());
    index.delete_archive_policy_rule("all").await.unwrap();
    index.delete_archive_policy("low").await.unwrap();
}
