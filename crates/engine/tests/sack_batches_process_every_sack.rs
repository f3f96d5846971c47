//! Processing several sacks as one batch aggregates every metric of every sack
//! exactly as processing them one by one, and empties them all.

mod embedded;

use carbonara::Method;
use carbonara::measure::measures;
use gnocchi_engine::MeasuresQuery;
use gnocchi_storage::sack_of;
use std::collections::BTreeSet;
use uuid::Uuid;

#[tokio::test]
async fn a_batch_of_sacks_processes_every_metric_of_every_sack() {
    let dir = std::env::temp_dir().join(format!("engine-sack-batch-{}", Uuid::new_v4()));
    let e = embedded::engine_in(&dir, 8, None).await;

    let t0 = 1_700_000_000_000_000_000i64;
    let mut metrics = Vec::new();
    let mut sacks = BTreeSet::new();
    for i in 0..40 {
        let id = Uuid::new_v4();
        let m = embedded::create_metric(e.indexer.as_ref(), id, "low").await;
        let v = f64::from(i);
        e.incoming
            .add_measures(vec![(
                id,
                measures(&[(t0, v), (t0 + 1_000_000_000, v + 2.0)]),
            )])
            .await
            .unwrap();
        sacks.insert(sack_of(id, e.incoming.sacks()));
        metrics.push((m, v + 1.0));
    }
    assert!(
        sacks.len() > 1,
        "the metrics should spread over several sacks"
    );
    let sacks: Vec<u32> = sacks.into_iter().collect();
    let report = e.process_sacks(&sacks).await.unwrap();
    assert_eq!(report.metrics, 40);
    assert_eq!(report.measures, 80);
    assert!(e.incoming.backlog().await.unwrap().per_metric.is_empty());
    let q = MeasuresQuery {
        method: Method::Mean,
        granularity: None,
        start: None,
        stop: None,
        resample: None,
    };
    for (m, mean) in &metrics {
        let series = e.read_measures(m, &q).await.unwrap();
        assert_eq!(series[0].values, vec![*mean], "metric {}", m.id);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
