//! Queue-triggered run starts: each message on a queue starts one run.
//!
//! [`run`] consumes a queue and hands each message to a [`Starter`], which
//! the node implements: it returns only once the run start is durable, and
//! uses the message id as the run's idempotency key, so a message delivered
//! twice maps to the same run. The message is acked only after `start`
//! returned `Ok`; on `Err` it is nacked with requeue and offered again after
//! a pause. If the connection drops, every unacked message is redelivered by
//! the broker (to this trigger once it reconnects, or to another consumer).
//! So each message starts its run at least once, and with the key, exactly
//! one run exists per message id.
//!
//! A message without a `message_id` property gets the key
//! `sha:<blake3 of queue and body>`: stable across redeliveries, but two
//! messages with equal bodies then share a run. Publishers should set ids;
//! `rabbitmq.publish` always does.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use drover_ir::Value;
use futures_core::Stream;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, Consumer};

use super::config::{check_url, RabbitmqConfig};
use super::decode_body;

/// Starts runs; implemented by the node.
pub trait Starter: Send + Sync + 'static {
    /// Starts the run for `message_id` with `body` as its input. Returns once
    /// the start is durable (a second call with the same id is a no-op that
    /// returns `Ok`); an `Err` leaves the message on the queue.
    fn start(
        &self,
        message_id: &str,
        body: Value,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// What to consume.
#[derive(Clone, Debug)]
pub struct TriggerConfig {
    /// The broker.
    pub broker: RabbitmqConfig,
    /// The queue whose messages start runs.
    pub queue: String,
    /// How many unacked messages the broker sends ahead.
    pub prefetch: u16,
    /// The pause after a failed start, doubled on each failure in a row.
    pub retry_pause: Duration,
    /// The longest pause, after failed starts or failed connections.
    pub max_pause: Duration,
}

impl TriggerConfig {
    /// Consumes `queue` on the broker `broker`, with default pacing.
    pub fn new(broker: RabbitmqConfig, queue: impl Into<String>) -> Self {
        TriggerConfig {
            broker,
            queue: queue.into(),
            prefetch: 16,
            retry_pause: Duration::from_millis(50),
            max_pause: Duration::from_secs(5),
        }
    }
}

/// What a trigger did until it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggerStats {
    /// Messages whose start returned `Ok` and that were acked.
    pub started: u64,
    /// Starts that returned `Err` (the message was requeued).
    pub failed: u64,
    /// Connections opened (1 when nothing broke).
    pub connections: u64,
    /// The last connection or consume error, with the password redacted.
    pub last_error: Option<String>,
}

/// The run key of a delivery: its message id, or a hash of queue and body.
pub fn message_key(queue: &str, message_id: Option<&str>, body: &[u8]) -> String {
    match message_id {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => {
            let mut h = blake3::Hasher::new();
            h.update(&(queue.len() as u64).to_le_bytes());
            h.update(queue.as_bytes());
            h.update(body);
            format!("sha:{}", h.finalize().to_hex())
        }
    }
}

/// Consumes `config.queue` and starts a run per message until `stop`
/// completes; reconnects (with backoff) whenever the connection drops.
pub async fn run<S: Starter>(
    config: &TriggerConfig,
    starter: &S,
    stop: impl Future<Output = ()>,
) -> TriggerStats {
    let mut stats = TriggerStats::default();
    let mut stop = std::pin::pin!(stop);
    let mut pause = config.retry_pause;
    if let Err(why) = check_url(config.broker.url.expose()) {
        stats.last_error = Some(why);
        stop.await;
        return stats;
    }
    loop {
        let session = tokio::select! {
            _ = &mut stop => return stats,
            s = open(config) => s,
        };
        match session {
            Ok((conn, consumer)) => {
                stats.connections += 1;
                pause = config.retry_pause;
                let stopped = consume(config, starter, consumer, &mut stop, &mut stats).await;
                let _ = conn.close(200, "drover trigger stopping".into()).await;
                if stopped {
                    return stats;
                }
            }
            Err(e) => stats.last_error = Some(e),
        }
        tokio::select! {
            _ = &mut stop => return stats,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(config.max_pause);
    }
}

async fn open(config: &TriggerConfig) -> Result<(Connection, Consumer), String> {
    let redact = |e: lapin::Error| {
        let url = config.broker.url.expose();
        e.to_string().replace(url, &config.broker.redacted_url())
    };
    let props = ConnectionProperties::default().with_connection_name("drover-trigger".into());
    let conn = tokio::time::timeout(
        config.broker.connect_timeout,
        Connection::connect(config.broker.url.expose(), props),
    )
    .await
    .map_err(|_| format!("connecting to {} timed out", config.broker.redacted_url()))?
    .map_err(redact)?;
    let channel = conn.create_channel().await.map_err(redact)?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await
        .map_err(redact)?;
    let consumer = channel
        .basic_consume(
            config.queue.as_str().into(),
            "drover-trigger".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(redact)?;
    Ok((conn, consumer))
}

/// Handles deliveries until the consumer ends (false) or `stop` (true).
async fn consume<S: Starter>(
    config: &TriggerConfig,
    starter: &S,
    mut consumer: Consumer,
    stop: &mut Pin<&mut impl Future<Output = ()>>,
    stats: &mut TriggerStats,
) -> bool {
    let mut failures_in_a_row = 0u32;
    loop {
        let next = std::future::poll_fn(|cx| Pin::new(&mut consumer).poll_next(cx));
        let delivery = tokio::select! {
            _ = stop.as_mut() => return true,
            d = next => d,
        };
        let d = match delivery {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                stats.last_error = Some(e.to_string());
                return false;
            }
            None => {
                stats.last_error = Some("the broker cancelled the consumer".into());
                return false;
            }
        };
        let props = &d.properties;
        let key = message_key(
            &config.queue,
            props.message_id().as_ref().map(|m| m.as_str()),
            &d.data,
        );
        let body = decode_body(&d.data, props.content_type().as_ref().map(|c| c.as_str()));
        // Stopping mid-start leaves the message unacked: the broker
        // redelivers it, and the start's idempotency key absorbs the repeat.
        let started = tokio::select! {
            _ = stop.as_mut() => return true,
            r = starter.start(&key, body) => r,
        };
        match started {
            Ok(()) => {
                failures_in_a_row = 0;
                if let Err(e) = d.acker.ack(BasicAckOptions::default()).await {
                    // Not acked: the broker redelivers it and the starter
                    // sees the same key again.
                    stats.last_error = Some(e.to_string());
                    return false;
                }
                stats.started += 1;
            }
            Err(why) => {
                stats.failed += 1;
                stats.last_error = Some(format!("start {key}: {why}"));
                failures_in_a_row = failures_in_a_row.saturating_add(1);
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                if let Err(e) = d.acker.nack(requeue).await {
                    stats.last_error = Some(e.to_string());
                    return false;
                }
                let pause = config
                    .retry_pause
                    .saturating_mul(1 << failures_in_a_row.min(16))
                    .min(config.max_pause);
                tokio::select! {
                    _ = stop.as_mut() => return true,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}
