//! Metrics carry their policy as it is in the database now: after an update in this
//! process, and after an update by another process (another indexer on the same
//! database, on whichever backend the run targets).

mod common;

use carbonara::ArchivePolicyItem;
use common::{SECOND, TestDb, new_metric, policy};
use gnocchi_index::MetricQuery;
use std::sync::Arc;

#[tokio::test]
async fn readers_see_updates_from_this_and_other_processes() {
    let db = TestDb::new().await;
    let a = db.open().await;
    a.upgrade().await.unwrap();
    let b = db.open().await;
    a.create_archive_policy(&policy("low")).await.unwrap();
    let m1 = a
        .create_metric(&new_metric("low", Some("a"), None))
        .await
        .unwrap();
    let m2 = a
        .create_metric(&new_metric("low", Some("b"), None))
        .await
        .unwrap();

    // Unchanged policy: one shared parse.
    let got = b.get_metrics(&[m1.id, m2.id]).await.unwrap();
    assert!(Arc::ptr_eq(&got[0].archive_policy, &got[1].archive_policy));
    assert_eq!(*got[0].archive_policy, policy("low"));

    let def = vec![
        ArchivePolicyItem {
            granularity: SECOND,
            points: Some(1),
            timespan: Some(SECOND),
        },
        ArchivePolicyItem {
            granularity: 60 * SECOND,
            points: Some(1),
            timespan: Some(60 * SECOND),
        },
    ];
    a.update_archive_policy("low", &def, Some(2)).await.unwrap();
    for index in [&a, &b] {
        let got = index.get_metrics(&[m1.id]).await.unwrap();
        assert_eq!(got[0].archive_policy.definition, def);
        assert_eq!(got[0].archive_policy.back_window, 2);
        let listed = index.list_metrics(&MetricQuery::default()).await.unwrap();
        assert!(listed.iter().all(|m| m.archive_policy.definition == def));
        assert_eq!(
            index
                .get_archive_policy("low")
                .await
                .unwrap()
                .unwrap()
                .definition,
            def
        );
    }
}
