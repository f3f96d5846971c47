//! Wiring: start the roles asked for on the opened backends, and shut down
//! cleanly on SIGTERM / SIGINT.

use crate::backends::{self, BoxError};
use crate::config::{Config, IncomingDriver};
use gnocchi_api::AppState;
use gnocchi_engine::coordination::CoordinationUrl;
use gnocchi_engine::coordination_pg::PgCoordinator;
use gnocchi_engine::coordination_redis::RedisCoordinator;
use gnocchi_engine::{Coordinator, Engine, InProcessCoordinator};
use std::sync::Arc;
use tokio::sync::watch;

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
        None => {
            if matches!(cfg.incoming, IncomingDriver::S3(_)) {
                // S3 has no lock of its own: two metricd on one bucket
                // without sack locks could lose measures.
                tracing::warn!(
                    "[incoming] driver = s3 without [DEFAULT] coordination_url: run a single metricd on this bucket, or set coordination_url (Redis or PostgreSQL)"
                );
            }
            if matches!(cfg.incoming, IncomingDriver::Swift(_)) {
                // Neither has Swift.
                tracing::warn!(
                    "[incoming] driver = swift without [DEFAULT] coordination_url: run a single metricd on this account, or set coordination_url (Redis or PostgreSQL)"
                );
            }
            Arc::new(InProcessCoordinator::new())
        }
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
    let backends = backends::upgrade(&cfg, create_policies).await?;
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
        tasks.extend(crate::amqpd::spawn_in_server(
            &cfg,
            &backends,
            stop_rx.clone(),
        )?);
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
        .with_graceful_shutdown(crate::shutdown_signal())
        .await?;
    } else {
        tracing::info!(data_dir = %cfg.data_dir.display(), "gnocchid metricd running");
        crate::shutdown_signal().await;
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
