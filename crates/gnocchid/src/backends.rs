//! The stores a process works on: open the index, the incoming store and the
//! aggregate store named by the configuration, migrate them, and change the
//! number of sacks. Every role (and the benchmark's in-process workloads) opens
//! them through [`upgrade`].

use crate::config::{Config, IncomingDriver, StorageDriver};
use gnocchi_index::Indexer;
use gnocchi_storage::{
    Aggregates, Incoming, local_aggregates::LocalAggregates, local_incoming::LocalIncoming,
};
use gnocchi_storage::{
    redis_aggregates::RedisAggregates,
    redis_incoming::RedisIncoming,
    s3_aggregates::S3Aggregates,
    s3_incoming::S3Incoming,
    swift::{SwiftAggregates, SwiftIncoming},
};
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct Backends {
    pub indexer: Arc<dyn Indexer>,
    pub incoming: Arc<dyn Incoming>,
    pub aggregates: Arc<dyn Aggregates>,
}

/// Open the backends (creating the data directory if needed) and migrate the index.
pub async fn upgrade(cfg: &Config, create_policies: bool) -> Result<Backends, BoxError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        format!(
            "cannot create data directory {}: {e}",
            cfg.data_dir.display()
        )
    })?;
    let indexer: Arc<dyn Indexer> = gnocchi_index::open(&cfg.indexer_url()).await?;
    indexer.upgrade().await?;
    let incoming: Arc<dyn Incoming> = match &cfg.incoming {
        IncomingDriver::File => Arc::new(LocalIncoming::open(
            &cfg.data_dir.join("incoming"),
            cfg.sacks,
        )?),
        IncomingDriver::Redis { url } => Arc::new(RedisIncoming::connect(url, cfg.sacks).await?),
        IncomingDriver::S3(s3) => Arc::new(S3Incoming::connect(s3, cfg.sacks).await?),
        IncomingDriver::Ceph(o) => ceph::incoming(o, cfg.sacks).await?,
        IncomingDriver::Swift(o) => {
            Arc::new(SwiftIncoming::connect((**o).clone(), cfg.sacks).await?)
        }
    };
    let aggregates: Arc<dyn Aggregates> = match &cfg.storage {
        StorageDriver::File => Arc::new(LocalAggregates::open(
            &cfg.data_dir.join("aggregates.redb"),
        )?),
        StorageDriver::Redis { url } => Arc::new(RedisAggregates::connect(url).await?),
        StorageDriver::S3(s3) => Arc::new(S3Aggregates::connect(s3.clone()).await?),
        StorageDriver::Ceph(o) => ceph::aggregates(o).await?,
        StorageDriver::Swift(o) => Arc::new(SwiftAggregates::connect((**o).clone()).await?),
    };
    if create_policies {
        create_default_policies(indexer.as_ref(), &cfg.api.default_aggregation_methods).await?;
    }
    Ok(Backends {
        indexer,
        incoming,
        aggregates,
    })
}

/// `gnocchid change-sack-size`: re-split the incoming store into `sacks` sacks
/// (refused while measures are pending). On Redis, S3, Ceph and Swift the new count is stored
/// in the store; every api, metricd and statsd process using it must then be restarted.
pub async fn change_sack_size(cfg: &Config, sacks: u32) -> Result<(), BoxError> {
    let old = match &cfg.incoming {
        IncomingDriver::File => LocalIncoming::change_sacks(&cfg.data_dir.join("incoming"), sacks),
        IncomingDriver::Redis { url } => RedisIncoming::change_sacks(url, sacks).await,
        IncomingDriver::S3(s3) => S3Incoming::change_sacks(s3, sacks).await,
        IncomingDriver::Ceph(o) => ceph::change_sacks(o, sacks).await?,
        IncomingDriver::Swift(o) => SwiftIncoming::change_sacks((**o).clone(), sacks).await,
    }
    .map_err(|e| format!("Cannot change sack size: {e}"))?;
    tracing::info!(from = old, to = sacks, "changed the number of sacks");
    if !matches!(cfg.incoming, IncomingDriver::File) && old != sacks {
        tracing::warn!("restart every gnocchid api, metricd and statsd process using this store");
    }
    Ok(())
}

/// The Ceph drivers, or why this build has none.
mod ceph {
    use super::BoxError;
    use gnocchi_storage::ceph::CephOptions;
    use gnocchi_storage::{Aggregates, Incoming};
    use std::sync::Arc;

    #[cfg(feature = "ceph")]
    pub(super) async fn incoming(
        o: &CephOptions,
        sacks: u32,
    ) -> Result<Arc<dyn Incoming>, BoxError> {
        let inc = gnocchi_storage::ceph::CephIncoming::connect(o.clone(), sacks).await?;
        Ok(Arc::new(inc))
    }

    #[cfg(feature = "ceph")]
    pub(super) async fn aggregates(o: &CephOptions) -> Result<Arc<dyn Aggregates>, BoxError> {
        let store = gnocchi_storage::ceph::CephAggregates::connect(o.clone()).await?;
        Ok(Arc::new(store))
    }

    #[cfg(feature = "ceph")]
    pub(super) async fn change_sacks(
        o: &CephOptions,
        sacks: u32,
    ) -> Result<gnocchi_storage::Result<u32>, BoxError> {
        Ok(gnocchi_storage::ceph::CephIncoming::change_sacks(o.clone(), sacks).await)
    }

    #[cfg(not(feature = "ceph"))]
    fn unavailable() -> BoxError {
        "driver = ceph: this gnocchid was built without Ceph support \
         (build it with `cargo build --release --features ceph`, which needs librados-dev)"
            .into()
    }

    #[cfg(not(feature = "ceph"))]
    pub(super) async fn incoming(_: &CephOptions, _: u32) -> Result<Arc<dyn Incoming>, BoxError> {
        Err(unavailable())
    }

    #[cfg(not(feature = "ceph"))]
    pub(super) async fn aggregates(_: &CephOptions) -> Result<Arc<dyn Aggregates>, BoxError> {
        Err(unavailable())
    }

    #[cfg(not(feature = "ceph"))]
    pub(super) async fn change_sacks(
        _: &CephOptions,
        _: u32,
    ) -> Result<gnocchi_storage::Result<u32>, BoxError> {
        Err(unavailable())
    }
}

/// Upstream's default archive policies and the `default` rule, created only on
/// a fresh index (no policy and no rule yet), as gnocchi-upgrade does.
async fn create_default_policies(
    indexer: &dyn Indexer,
    methods: &[carbonara::Method],
) -> Result<(), BoxError> {
    if !indexer.list_archive_policies().await?.is_empty()
        || !indexer.list_archive_policy_rules().await?.is_empty()
    {
        return Ok(());
    }
    for ap in carbonara::policy::builtin_policies(methods) {
        indexer.create_archive_policy(&ap).await?;
    }
    indexer
        .create_archive_policy_rule(&gnocchi_index::ArchivePolicyRule {
            name: "default".into(),
            metric_pattern: "*".into(),
            archive_policy_name: "low".into(),
        })
        .await?;
    tracing::info!("created the default archive policies and rule");
    Ok(())
}
