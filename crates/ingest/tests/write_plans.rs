//! The ingest service's invariants, on the embedded backends (a SQLite
//! index, the local incoming log): nothing is written before the whole plan
//! is authorized, problems are reported per write, concurrent creators of
//! the same resource and metrics all succeed, and every measure of a request
//! arrives.

use carbonara::Measure;
use carbonara::policy::{builtin_policies, default_aggregation_methods};
use gnocchi_index::{
    ArchivePolicyRule, GENERIC, Indexer, MetricQuery, ResourceQuery, ResourceType,
    ResourceTypeState, sqlite::SqliteIndexer,
};
use gnocchi_ingest::{
    AutoResource, Ingest, IngestError, MetricRef, MetricWrite, Missing, NamedWrite, Plan, Problem,
    Request, ResourceWrite,
};
use gnocchi_storage::Incoming;
use gnocchi_storage::local_incoming::LocalIncoming;
use std::sync::Arc;
use uuid::Uuid;

struct Backends {
    _dir: tempfile::TempDir,
    indexer: Arc<dyn Indexer>,
    incoming: Arc<dyn Incoming>,
    ingest: Ingest,
}

async fn backends() -> Backends {
    let dir = tempfile::tempdir().unwrap();
    let indexer = SqliteIndexer::open(dir.path().join("index.sqlite").to_str().unwrap())
        .await
        .unwrap();
    indexer.upgrade().await.unwrap();
    for ap in builtin_policies(&default_aggregation_methods()) {
        indexer.create_archive_policy(&ap).await.unwrap();
    }
    let indexer: Arc<dyn Indexer> = Arc::new(indexer);
    let incoming: Arc<dyn Incoming> =
        Arc::new(LocalIncoming::open(&dir.path().join("incoming"), 4).unwrap());
    Backends {
        ingest: Ingest::new(indexer.clone(), incoming.clone()),
        _dir: dir,
        indexer,
        incoming,
    }
}

fn protocol_resource(id: &str, names: &[&str]) -> ResourceWrite {
    ResourceWrite {
        id: gnocchi_index::resource_uuid(id, "admin").unwrap(),
        original_id: id.to_string(),
        missing: Missing::CreateResource(AutoResource {
            resource_type: ResourceType {
                name: "telegraf".into(),
                state: ResourceTypeState::Creating,
                attributes: Vec::new(),
                tablename: None,
            },
            attributes: Vec::new(),
            any_type: false,
        }),
        metrics: names
            .iter()
            .map(|n| {
                let mut w = NamedWrite::new(*n, vec![Measure::new(1_000_000_000, 1.0)]);
                w.archive_policy_name = Some("low".into());
                w
            })
            .collect(),
    }
}

fn request(resources: Vec<ResourceWrite>) -> Request {
    Request {
        creator: Some("admin".into()),
        metrics: Vec::new(),
        resources,
    }
}

#[derive(Debug)]
struct Refused;

impl From<IngestError> for Refused {
    fn from(e: IngestError) -> Self {
        panic!("unexpected ingest error: {e}")
    }
}

#[tokio::test]
async fn unauthorized_write_creates_nothing() {
    let b = backends().await;
    let req = request(vec![
        protocol_resource("host-a", &["cpu.usage", "mem.used"]),
        protocol_resource("host-b", &["cpu.usage"]),
    ]);
    let mut seen = None;
    let r = b
        .ingest
        .write(req, |plan: &Plan| {
            seen = Some((
                plan.new_resource_types.len(),
                plan.new_resources.len(),
                plan.appends.len(),
            ));
            Err(Refused)
        })
        .await;
    assert!(r.is_err());
    // The authorizer saw the whole request: one type, two resources, three metrics.
    assert_eq!(seen, Some((1, 2, 3)));
    assert!(
        b.indexer
            .get_resource_type("telegraf")
            .await
            .unwrap()
            .is_none()
    );
    let resources = b
        .indexer
        .list_resources(&ResourceQuery::new(GENERIC))
        .await
        .unwrap();
    assert!(resources.is_empty());
    let metrics = b
        .indexer
        .list_metrics(&MetricQuery::default())
        .await
        .unwrap();
    assert!(metrics.is_empty());
    assert_eq!(b.incoming.backlog().await.unwrap().measures, 0);
}

#[tokio::test]
async fn an_authorized_write_creates_what_is_missing_and_appends_every_measure() {
    let b = backends().await;
    let written = b
        .ingest
        .write(
            request(vec![protocol_resource("host-a", &["cpu", "mem"])]),
            |_: &Plan| Ok::<_, IngestError>(()),
        )
        .await
        .unwrap();
    assert_eq!((written.metrics, written.measures), (2, 2));
    // Again, with one more metric: the resource grows, nothing else is created.
    let mut plan_seen = None;
    b.ingest
        .write(
            request(vec![protocol_resource("host-a", &["cpu", "disk"])]),
            |p: &Plan| {
                plan_seen = Some((
                    p.new_resources.len(),
                    p.grown_resources.len(),
                    p.grown_resources.first().map(|g| g.metrics.len()),
                ));
                Ok::<_, IngestError>(())
            },
        )
        .await
        .unwrap();
    assert_eq!(plan_seen, Some((0, 1, Some(1))));
    let metrics = b
        .indexer
        .list_metrics(&MetricQuery::default())
        .await
        .unwrap();
    assert_eq!(metrics.len(), 3);
    assert_eq!(b.incoming.backlog().await.unwrap().measures, 4);
}

#[tokio::test]
async fn problems_are_reported_per_write_and_the_rest_is_written() {
    let b = backends().await;
    b.indexer
        .create_archive_policy_rule(&ArchivePolicyRule {
            name: "cpu".into(),
            metric_pattern: "cpu.*".into(),
            archive_policy_name: "low".into(),
        })
        .await
        .unwrap();
    let mut write = protocol_resource("host-a", &[]);
    for name in ["cpu.user", "no.rule", "a/b"] {
        write.metrics.push(NamedWrite::new(
            name,
            vec![Measure::new(1_000_000_000, 2.0)],
        ));
    }
    let unknown = Uuid::new_v4();
    let mut req = request(vec![write]);
    req.metrics.push(MetricWrite {
        metric: MetricRef::Id(unknown),
        measures: vec![Measure::new(1_000_000_000, 3.0)],
    });
    let mut problems = Vec::new();
    let written = b
        .ingest
        .write(req, |p: &Plan| {
            problems = p.problems.clone();
            Ok::<_, IngestError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        problems,
        vec![
            Problem::UnknownMetric(unknown),
            Problem::NoArchivePolicyRule("no.rule".into()),
            Problem::SlashInMetricName("a/b".into()),
        ]
    );
    assert_eq!((written.metrics, written.measures), (1, 1));
    let m = b
        .indexer
        .list_metrics(&MetricQuery::default())
        .await
        .unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].name.as_deref(), Some("cpu.user"));
    assert_eq!(m[0].archive_policy.name, "low");
}

#[tokio::test]
async fn refusing_writers_find_unknown_resources_and_metrics() {
    let b = backends().await;
    let mut refuse = protocol_resource("nowhere", &["x"]);
    refuse.missing = Missing::Refuse;
    let mut create_metrics = protocol_resource("elsewhere", &["y"]);
    create_metrics.missing = Missing::CreateMetrics;
    let mut problems = Vec::new();
    b.ingest
        .write(request(vec![refuse, create_metrics]), |p: &Plan| {
            problems = p.problems.clone();
            Ok::<_, IngestError>(())
        })
        .await
        .unwrap();
    assert!(matches!(problems[0], Problem::UnknownNamedMetric { ref name, .. } if name == "x"));
    assert!(
        matches!(problems[1], Problem::UnknownResource { ref original_id, .. } if original_id == "elsewhere")
    );
    assert!(
        b.indexer
            .list_resources(&ResourceQuery::new(GENERIC))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn concurrent_creators_of_the_same_resource_all_succeed() {
    let b = backends().await;
    let writers = 8;
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let ingest = b.ingest.clone();
        tasks.push(tokio::spawn(async move {
            ingest
                .write(
                    request(vec![protocol_resource("shared", &["a", "b", "c"])]),
                    |_: &Plan| Ok::<_, IngestError>(()),
                )
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let metrics = b
        .indexer
        .list_metrics(&MetricQuery::default())
        .await
        .unwrap();
    assert_eq!(metrics.len(), 3, "each metric is created once");
    assert_eq!(
        b.incoming.backlog().await.unwrap().measures,
        3 * writers as u64,
        "every writer's measures arrived"
    );
}

#[tokio::test]
async fn a_write_of_any_type_goes_to_an_existing_resource_of_another_type() {
    let b = backends().await;
    // host-a exists as a `telegraf` resource.
    b.ingest
        .write(
            request(vec![protocol_resource("host-a", &["cpu"])]),
            |_: &Plan| Ok::<_, IngestError>(()),
        )
        .await
        .unwrap();
    let mut generic = protocol_resource("host-a", &["mem"]);
    let Missing::CreateResource(auto) = &mut generic.missing else {
        unreachable!()
    };
    auto.resource_type.name = GENERIC.into();
    let mut problems = Vec::new();
    b.ingest
        .write(request(vec![generic]), |p: &Plan| {
            problems = p.problems.clone();
            Ok::<_, IngestError>(())
        })
        .await
        .unwrap();
    assert!(matches!(
        problems[..],
        [Problem::ResourceOfAnotherType { .. }]
    ));
    let mut any = protocol_resource("host-a", &["mem"]);
    let Missing::CreateResource(auto) = &mut any.missing else {
        unreachable!()
    };
    auto.resource_type.name = GENERIC.into();
    auto.any_type = true;
    let written = b
        .ingest
        .write(request(vec![any]), |_: &Plan| Ok::<_, IngestError>(()))
        .await
        .unwrap();
    assert_eq!(written.metrics, 1);
    let metrics = b
        .indexer
        .list_metrics(&MetricQuery::default())
        .await
        .unwrap();
    assert_eq!(metrics.len(), 2);
}
