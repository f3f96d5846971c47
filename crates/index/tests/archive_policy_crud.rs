//! Archive policies: create, read back exactly, list, update, delete, and the errors.

mod common;

use carbonara::ArchivePolicyItem;
use common::{SECOND, indexer, policy};
use gnocchi_index::IndexError;

#[tokio::test]
async fn created_policy_reads_back_identically() {
    let (_dir, index) = indexer().await;
    let mut ap = policy("low");
    ap.back_window = 3;
    index.create_archive_policy(&ap).await.unwrap();
    assert_eq!(
        index.get_archive_policy("low").await.unwrap(),
        Some(ap.clone())
    );
    assert_eq!(index.get_archive_policy("nope").await.unwrap(), None);
    index.create_archive_policy(&policy("high")).await.unwrap();
    let names: Vec<String> = index
        .list_archive_policies()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["high", "low"]);
}

#[tokio::test]
async fn duplicate_name_is_already_exists() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    assert!(matches!(
        index.create_archive_policy(&policy("low")).await,
        Err(IndexError::ArchivePolicyAlreadyExists(n)) if n == "low"
    ));
}

#[tokio::test]
async fn update_replaces_definition_and_optionally_back_window() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    let def = vec![
        ArchivePolicyItem {
            granularity: SECOND,
            points: Some(10),
            timespan: Some(10 * SECOND),
        },
        ArchivePolicyItem {
            granularity: 60 * SECOND,
            points: Some(5),
            timespan: Some(300 * SECOND),
        },
    ];
    let updated = index
        .update_archive_policy("low", &def, None)
        .await
        .unwrap();
    assert_eq!(updated.definition, def);
    assert_eq!(updated.back_window, 0);
    assert_eq!(
        updated.aggregation_methods,
        policy("low").aggregation_methods
    );
    assert_eq!(
        index.get_archive_policy("low").await.unwrap().unwrap(),
        updated
    );

    let updated = index
        .update_archive_policy("low", &def, Some(7))
        .await
        .unwrap();
    assert_eq!(updated.back_window, 7);
    assert_eq!(
        index
            .get_archive_policy("low")
            .await
            .unwrap()
            .unwrap()
            .back_window,
        7
    );

    assert!(matches!(
        index.update_archive_policy("nope", &def, None).await,
        Err(IndexError::ArchivePolicyNotFound(n)) if n == "nope"
    ));
}

#[tokio::test]
async fn delete_removes_and_unknown_is_not_found() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    index.delete_archive_policy("low").await.unwrap();
    assert_eq!(index.get_archive_policy("low").await.unwrap(), None);
    assert!(matches!(
        index.delete_archive_policy("low").await,
        Err(IndexError::ArchivePolicyNotFound(n)) if n == "low"
    ));
    // The name is free again.
    index.create_archive_policy(&policy("low")).await.unwrap();
}
