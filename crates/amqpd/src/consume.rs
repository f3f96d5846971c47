//! The AMQP side: connect, attach a receiving link, receive until the
//! broker goes away or the daemon stops, and reconnect with backoff.
//!
//! One task owns the connection, the link and the batch. The flush ticker
//! lives across connections, so a broker that comes and goes does not delay
//! flushes; the deliveries of a batch are accepted after it is written.

use crate::collectd;
use crate::{Amqpd, AmqpdError, MAX_PENDING, batch::Batch, flush};
use fe2o3_amqp::link::delivery::DeliveryInfo;
use fe2o3_amqp::link::{CreditMode, Receiver};
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::types::messaging::{AmqpValue, Body};
use fe2o3_amqp::types::primitives::Value;
use fe2o3_amqp::{Connection, Delivery, Session};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

/// How long closing the link, session and connection may take on the way
/// out: a broker that never answers a close does not hold the shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The idle timeout announced to the broker: it must send a frame (at worst
/// an empty one) at least this often, so a broker that vanished without
/// closing the TCP connection is noticed.
const IDLE_TIME_OUT_MS: u32 = 60_000;

/// Waits between connection attempts: 1 s, doubling up to 60 s, back to
/// 1 s after a connection that worked.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(60);

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The wait before the next attempt; each call doubles the following one.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// Why a connection ended.
enum Ended {
    /// The stop signal: the daemon is done.
    Stopped,
    /// The broker went away after the link was attached.
    Lost(AmqpdError),
    /// The connection or the link could not be set up.
    Failed(AmqpdError),
}

/// What one connection holds: the batch and its unaccepted deliveries.
struct Pending {
    batch: Batch,
    deliveries: Vec<DeliveryInfo>,
}

pub(crate) async fn run(daemon: Amqpd, mut stop: watch::Receiver<bool>) {
    tracing::info!(
        url = %daemon.broker.connect_for_log(),
        address = %daemon.broker.address,
        flush_delay = ?daemon.config.flush_delay,
        resource_type = %daemon.config.resource_type,
        "amqpd starting"
    );
    let mut pending = Pending {
        batch: Batch::default(),
        deliveries: Vec::new(),
    };
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + daemon.config.flush_delay,
        daemon.config.flush_delay.max(Duration::from_millis(1)),
    );
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut backoff = Backoff::new();
    loop {
        if *stop.borrow() {
            break;
        }
        match connection(&daemon, &mut pending, &mut ticker, &mut stop).await {
            Ended::Stopped => break,
            Ended::Lost(e) => {
                tracing::warn!(error = %e, "amqpd lost the broker; reconnecting");
                backoff.reset();
            }
            Ended::Failed(e) => tracing::warn!(error = %e, "amqpd cannot listen"),
        }
        // The link is gone, so its deliveries cannot be accepted any more:
        // what they carried is written now (a broker that gives them again
        // writes the same measures, at the same times, again).
        pending.deliveries.clear();
        flush(&daemon, &mut pending.batch).await;
        let wait = backoff.next_wait();
        tracing::info!(?wait, "amqpd reconnecting after a pause");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&mut stop) => break,
        }
    }
    flush(&daemon, &mut pending.batch).await;
    tracing::info!("amqpd stopped");
}

/// One connection's life: open, attach, receive until lost or stopped.
async fn connection(
    daemon: &Amqpd,
    pending: &mut Pending,
    ticker: &mut Interval,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let setup = async {
        let mut builder = Connection::builder()
            .container_id(format!("gnocchi-amqpd-{}", std::process::id()))
            .idle_time_out(IDLE_TIME_OUT_MS);
        if !daemon.broker.has_credentials {
            builder = builder.sasl_profile(SaslProfile::Anonymous);
        }
        let mut connection = builder.open(daemon.broker.connect.as_str()).await?;
        let mut session = Session::begin(&mut connection).await?;
        let receiver = Receiver::builder()
            .name(format!("gnocchi-amqpd-{}", std::process::id()))
            .source(daemon.broker.address.as_str())
            .credit_mode(CreditMode::Auto(2 * MAX_PENDING))
            .attach(&mut session)
            .await
            .map_err(|source| AmqpdError::Attach {
                address: daemon.broker.address.clone(),
                source,
            })?;
        Ok::<_, AmqpdError>((connection, session, receiver))
    };
    let (mut connection, mut session, mut receiver) = tokio::select! {
        r = setup => match r {
            Ok(x) => x,
            Err(e) => return Ended::Failed(e),
        },
        _ = stopped(stop) => return Ended::Stopped,
    };
    tracing::info!(address = %daemon.broker.address, "amqpd listening");
    let ended = receive(daemon, pending, ticker, stop, &mut receiver).await;
    if matches!(ended, Ended::Stopped) {
        // Clean goodbyes; the proton example broker answers a closing
        // detach, RabbitMQ does not, hence the timeouts.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, receiver.close()).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.end()).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close()).await;
    }
    ended
}

async fn receive(
    daemon: &Amqpd,
    pending: &mut Pending,
    ticker: &mut Interval,
    stop: &mut watch::Receiver<bool>,
    receiver: &mut Receiver,
) -> Ended {
    loop {
        tokio::select! {
            r = receiver.recv::<Body<Value>>() => match r {
                Ok(delivery) => {
                    take(daemon, pending, &delivery);
                    pending.deliveries.push(DeliveryInfo::from(delivery));
                    if pending.deliveries.len() >= MAX_PENDING as usize
                        && let Err(e) = flush_and_accept(daemon, pending, receiver).await
                    {
                        return Ended::Lost(e);
                    }
                }
                Err(e) => return Ended::Lost(e.into()),
            },
            _ = ticker.tick() => {
                if let Err(e) = flush_and_accept(daemon, pending, receiver).await {
                    return Ended::Lost(e);
                }
            }
            _ = stopped(stop) => {
                if let Err(e) = flush_and_accept(daemon, pending, receiver).await {
                    tracing::warn!(error = %e, "amqpd could not accept its last deliveries");
                }
                return Ended::Stopped;
            }
        }
    }
}

/// Decodes one delivery into the batch; what cannot be decoded is logged.
fn take(daemon: &Amqpd, pending: &mut Pending, delivery: &Delivery<Body<Value>>) {
    let sections: Vec<u8>;
    let body: &[u8] = match delivery.body() {
        // collectd sends its JSON as an AMQP binary value.
        Body::Value(AmqpValue(Value::Binary(b))) => b.as_ref(),
        Body::Value(AmqpValue(Value::String(s))) => s.as_bytes(),
        // Data sections: the body is their concatenation.
        Body::Data(batch) => {
            sections = batch.iter().flat_map(|d| d.0.iter().copied()).collect();
            &sections
        }
        other => {
            tracing::warn!(body = ?kind(other), "amqpd: message body is not collectd JSON, skipped");
            return;
        }
    };
    let decoded = collectd::decode(body, now_ns());
    for e in decoded.skipped {
        tracing::warn!(error = %e, "amqpd: unable to decode collectd message");
    }
    for s in decoded.samples {
        pending.batch.add(&daemon.config.resource_type, s);
    }
}

fn kind(body: &Body<Value>) -> &'static str {
    match body {
        Body::Value(_) => "a value that is neither binary nor string",
        Body::Data(_) => "data sections",
        Body::Sequence(_) => "a sequence",
        Body::Empty => "empty",
    }
}

/// Writes the batch, then accepts the deliveries that carried it.
async fn flush_and_accept(
    daemon: &Amqpd,
    pending: &mut Pending,
    receiver: &mut Receiver,
) -> Result<(), AmqpdError> {
    flush(daemon, &mut pending.batch).await;
    if pending.deliveries.is_empty() {
        return Ok(());
    }
    receiver
        .accept_all(std::mem::take(&mut pending.deliveries))
        .await?;
    Ok(())
}

/// Resolves once the stop signal is true (or its sender is gone). The
/// guard `wait_for` returns is dropped here: it must not live in a future
/// that moves between threads.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn now_ns() -> carbonara::Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute_and_resets() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..8).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.next_wait(), Backoff::FIRST);
    }
}
