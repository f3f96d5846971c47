//! Wiring: open the backends named by the configuration, prepare them, start the
//! roles asked for, and shut down cleanly on SIGTERM / SIGINT.

use crate::config::{Config, IncomingDriver, StorageDriver};
use gnocchi_api::AppState;
use gnocchi_engine::coordination::CoordinationUrl;
use gnocchi_engine::coordination_pg::PgCoordinator;
use gnocchi_engine::coordination_redis::RedisCoordinator;
use gnocchi_engine::{Coordinator, Engine, InProcessCoordinator};
use gnocchi_index::Indexer;
use gnocchi_storage::{
    Aggregates, Incoming, local_aggregates::LocalAggregates, local_incoming::LocalIncoming,
};
use gnocchi_storage::{
    redis_aggregates::RedisAggregates, redis_incoming::RedisIncoming, s3_aggregates::S3Aggregates,
};
use std::sync::Arc;
use tokio::sync::watch;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which roles this process plays.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub api: bool,
    pub metricd: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        metricd: true,
    };
    pub const API: Roles = Roles {
        api: true,
        metricd: false,
    };
    pub const METRICD: Roles = Roles {
        api: false,
        metricd: true,
    };
}

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
    };
    let aggregates: Arc<dyn Aggregates> = match &cfg.storage {
        StorageDriver::File => Arc::new(LocalAggregates::open(
            &cfg.data_dir.join("aggregates.redb"),
        )?),
        StorageDriver::Redis { url } => Arc::new(RedisAggregates::connect(url).await?),
        StorageDriver::S3(s3) => Arc::new(S3Aggregates::connect(s3.clone()).await?),
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
/// (refused while measures are pending). On Redis the new count is stored in
/// Redis; every api, metricd and statsd process using it must then be restarted.
pub async fn change_sack_size(cfg: &Config, sacks: u32) -> Result<(), BoxError> {
    let old = match &cfg.incoming {
        IncomingDriver::File => LocalIncoming::change_sacks(&cfg.data_dir.join("incoming"), sacks),
        IncomingDriver::Redis { url } => RedisIncoming::change_sacks(url, sacks).await,
    }
    .map_err(|e| format!("Cannot change sack size: {e}"))?;
    tracing::info!(from = old, to = sacks, "changed the number of sacks");
    if matches!(cfg.incoming, IncomingDriver::Redis { .. }) && old != sacks {
        tracing::warn!("restart every gnocchid api, metricd and statsd process using this Redis");
    }
    Ok(())
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

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn processor_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}.{}", std::process::id())
}

/// The coordinator of `[DEFAULT] coordination_url` (given or derived, see
/// `config::coordination`): in-process for the embedded default. Every role
/// that processes sacks or refreshes metrics takes sack locks through it; only
/// metricd joins the processing group (`Engine::run` does).
async fn coordinator(cfg: &Config) -> Result<Arc<dyn Coordinator>, BoxError> {
    Ok(match &cfg.coordination {
        None => Arc::new(InProcessCoordinator::new()),
        Some(url) => {
            tracing::info!(url = %url, "coordination");
            match url {
                CoordinationUrl::Redis(u) => Arc::new(
                    RedisCoordinator::connect(u, &processor_id(), Default::default()).await?,
                ),
                CoordinationUrl::Postgres(u) => {
                    Arc::new(PgCoordinator::connect(u, Default::default()).await?)
                }
            }
        }
    })
}

pub async fn run(mut cfg: Config, roles: Roles, create_policies: bool) -> Result<(), BoxError> {
    let backends = upgrade(&cfg, create_policies).await?;
    let engine = Engine::with_coordinator(
        backends.indexer.clone(),
        backends.incoming.clone(),
        backends.aggregates.clone(),
        cfg.engine.clone(),
        coordinator(&cfg).await?,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if roles.metricd {
        tasks.push(tokio::spawn(engine.clone().run(stop_rx.clone())));
        tasks.push(tokio::spawn(engine.clone().run_janitor(stop_rx.clone())));
        cfg.api.processors = vec![processor_id()];
    }
    if roles.api && roles.metricd {
        tasks.extend(crate::statsd::spawn_in_server(&cfg, &backends, stop_rx.clone()).await?);
    }
    if roles.api {
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "gnocchid listening");
        let state = Arc::new(AppState::new(
            backends.indexer.clone(),
            backends.incoming.clone(),
            engine.clone(),
            cfg.api.clone(),
        )?);
        let app = gnocchi_api::router(state);
        let app = tower::ServiceExt::map_request(app, gnocchi_api::normalize_path);
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    } else {
        tracing::info!(data_dir = %cfg.data_dir.display(), "gnocchid metricd running");
        shutdown_signal().await;
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
