//! `GET measures?resample=` regroups every point of the splits overlapping the
//! range and only then keeps the new buckets in `[floor(start, period), stop)`,
//! as upstream does: an hourly bucket starting before `stop` averages the
//! whole hour, not just the minutes before `stop`.

mod embedded;

use carbonara::calendar::Sampling;
use carbonara::measure::measures;
use carbonara::{Method, NS_PER_SEC};
use gnocchi_engine::MeasuresQuery;
use gnocchi_storage::sack_of;
use uuid::Uuid;

const MINUTE: i64 = 60 * NS_PER_SEC;
/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200 * NS_PER_SEC;

#[tokio::test]
async fn resampled_buckets_hold_points_outside_the_range() {
    let dir = std::env::temp_dir().join(format!("engine-resample-{}", Uuid::new_v4()));
    let e = embedded::engine_in(&dir, 4, None).await;
    let id = Uuid::new_v4();
    let metric = embedded::create_metric(e.indexer.as_ref(), id, "medium").await;
    e.incoming
        .add_measures(vec![(
            id,
            measures(&[(T0 + 10 * MINUTE, 1.0), (T0 + 50 * MINUTE, 3.0)]),
        )])
        .await
        .unwrap();
    e.process_sack(sack_of(id, e.incoming.sacks()))
        .await
        .unwrap();

    let hourly = |start: Option<i64>, stop: Option<i64>| MeasuresQuery {
        method: Method::Mean,
        granularity: Some(MINUTE),
        start,
        stop,
        resample: Some(Sampling::Fixed(60 * MINUTE)),
    };
    let read = |q: MeasuresQuery| {
        let e = e.clone();
        let metric = metric.clone();
        async move {
            let series = e.read_measures(&metric, &q).await.unwrap();
            series
                .into_iter()
                .flat_map(|s| s.timestamps.into_iter().zip(s.values))
                .collect::<Vec<_>>()
        }
    };
    let whole_hour = vec![(T0, 2.0)];
    assert_eq!(read(hourly(Some(T0 + 30 * MINUTE), None)).await, whole_hour);
    assert_eq!(read(hourly(None, Some(T0 + 30 * MINUTE))).await, whole_hour);
    // A start after the stop still keeps the bucket that both fall in.
    assert_eq!(
        read(hourly(Some(T0 + 55 * MINUTE), Some(T0 + 20 * MINUTE))).await,
        whole_hour
    );
    // Without resampling, the range applies to the stored minutes.
    let minutes = MeasuresQuery {
        resample: None,
        ..hourly(Some(T0 + 30 * MINUTE), None)
    };
    assert_eq!(read(minutes).await, vec![(T0 + 50 * MINUTE, 3.0)]);
    let _ = std::fs::remove_dir_all(&dir);
}
