//! Deleting a metric only marks it; the janitor then removes its aggregates and
//! its index row, and measures still pending for it are dropped by metricd.

mod embedded;

use carbonara::Method;
use carbonara::measure::measures;
use gnocchi_engine::MeasuresQuery;
use gnocchi_storage::sack_of;
use uuid::Uuid;

#[tokio::test]
async fn janitor_purges_deleted_metrics() {
    let dir = std::env::temp_dir().join(format!("engine-janitor-{}", Uuid::new_v4()));
    let e = embedded::engine_in(&dir, 8, None).await;
    let id = Uuid::new_v4();
    let metric = embedded::create_metric(e.indexer.as_ref(), id, "low").await;
    let t0 = 1_700_000_000_000_000_000i64;
    e.incoming
        .add_measures(vec![(
            id,
            measures(&[(t0, 1.0), (t0 + 1_000_000_000, 3.0)]),
        )])
        .await
        .unwrap();
    e.process_sack(sack_of(id, e.incoming.sacks()))
        .await
        .unwrap();
    let q = MeasuresQuery {
        method: Method::Mean,
        granularity: None,
        start: None,
        stop: None,
        resample: None,
    };
    let series = e.read_measures(&metric, &q).await.unwrap();
    assert_eq!(series[0].values, vec![2.0]);

    // Deleted: data stays until the janitor runs; measures sent meanwhile are dropped.
    e.indexer.delete_metric(id).await.unwrap();
    e.incoming
        .add_measures(vec![(id, measures(&[(t0 + 2_000_000_000, 5.0)]))])
        .await
        .unwrap();
    let report = e
        .process_sack(sack_of(id, e.incoming.sacks()))
        .await
        .unwrap();
    assert_eq!(report.metrics, 0);
    assert!(e.incoming.backlog().await.unwrap().per_metric.is_empty());
    assert_eq!(e.indexer.list_deleted_metrics(10).await.unwrap(), vec![id]);

    assert_eq!(e.janitor_pass().await.unwrap(), 1);
    assert!(e.indexer.list_deleted_metrics(10).await.unwrap().is_empty());
    let keys = e
        .aggregates
        .list_split_keys(&[(id, Method::Mean, 300_000_000_000)])
        .await
        .unwrap();
    assert!(
        keys[0].is_empty(),
        "splits left after the janitor: {keys:?}"
    );
    assert_eq!(e.aggregates.get_raw(&[id]).await.unwrap(), vec![None]);
    let _ = std::fs::remove_dir_all(&dir);
}
