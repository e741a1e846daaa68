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
//! A message that can never start a run (its body is not the workflow's
//! input: the starter says [`StartError::reject`]) is not requeued for
//! ever: it is copied to the dead-letter queue (`<queue>.dead` by default)
//! with the reason in its `x-drover-error` header, and acked only once the
//! broker confirmed the copy. Without a dead-letter queue it is rejected
//! without requeue, so the queue's own dead-letter exchange, if it has one,
//! gets it.
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
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Confirmation, Connection, ConnectionProperties, Consumer};

use super::config::{check_url, RabbitmqConfig};
use super::decode_body;

/// Starts runs; implemented by the node.
pub trait Starter: Send + Sync + 'static {
    /// Starts the run for `message_id` with `body` as its input. Returns once
    /// the start is durable (a second call with the same id is a no-op that
    /// returns `Ok`). A retryable `Err` leaves the message on the queue; a
    /// rejection dead-letters it.
    fn start(
        &self,
        message_id: &str,
        body: Value,
    ) -> impl Future<Output = Result<(), StartError>> + Send;
}

/// Why a start failed, and whether trying the same message again can help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartError {
    /// What went wrong.
    pub reason: String,
    /// The message itself is wrong (not the workflow's input): it goes to
    /// the dead-letter queue instead of being offered again.
    pub reject: bool,
}

impl StartError {
    /// A failure worth retrying: the message is requeued.
    pub fn retry(reason: impl Into<String>) -> Self {
        StartError {
            reason: reason.into(),
            reject: false,
        }
    }

    /// The message can never start a run: it is dead-lettered.
    pub fn reject(reason: impl Into<String>) -> Self {
        StartError {
            reason: reason.into(),
            reject: true,
        }
    }
}

impl From<String> for StartError {
    fn from(reason: String) -> Self {
        StartError::retry(reason)
    }
}

impl From<&str> for StartError {
    fn from(reason: &str) -> Self {
        StartError::retry(reason)
    }
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
    /// Where rejected messages go (declared durable at connect); `None`
    /// rejects them without requeue instead.
    pub dead_letter: Option<String>,
}

impl TriggerConfig {
    /// Consumes `queue` on the broker `broker`, with default pacing.
    pub fn new(broker: RabbitmqConfig, queue: impl Into<String>) -> Self {
        let queue = queue.into();
        TriggerConfig {
            broker,
            prefetch: 16,
            retry_pause: Duration::from_millis(50),
            max_pause: Duration::from_secs(5),
            dead_letter: Some(format!("{}.dead", queue)),
            queue,
        }
    }
}

/// What a trigger did until it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggerStats {
    /// Messages whose start returned `Ok` and that were acked.
    pub started: u64,
    /// Starts that failed retryably (the message was requeued).
    pub failed: u64,
    /// Rejected messages, moved to the dead-letter queue (or rejected
    /// without requeue when there is none).
    pub dead_lettered: u64,
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
            Ok(Session {
                conn,
                consumer,
                dead,
            }) => {
                stats.connections += 1;
                pause = config.retry_pause;
                let stopped =
                    consume(config, starter, consumer, &dead, &mut stop, &mut stats).await;
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

/// One consuming session: the connection, its consumer, and the channel
/// (in confirm mode) that dead-letters rejected messages.
struct Session {
    conn: Connection,
    consumer: Consumer,
    dead: Channel,
}

async fn open(config: &TriggerConfig) -> Result<Session, String> {
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
    let dead = conn.create_channel().await.map_err(redact)?;
    dead.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(redact)?;
    if let Some(q) = &config.dead_letter {
        dead.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .map_err(redact)?;
    }
    Ok(Session {
        conn,
        consumer,
        dead,
    })
}

/// Copies a rejected delivery to the dead-letter queue with the reason, and
/// waits for the broker's confirm.
async fn dead_letter(
    channel: &Channel,
    queue: &str,
    from: &str,
    d: &lapin::message::Delivery,
    reason: &str,
) -> Result<(), String> {
    let mut headers = d.properties.headers().clone().unwrap_or_default();
    headers.insert(
        "x-drover-error".into(),
        AMQPValue::LongString(reason.to_owned().into()),
    );
    headers.insert(
        "x-drover-queue".into(),
        AMQPValue::LongString(from.to_owned().into()),
    );
    let props = d
        .properties
        .clone()
        .with_headers(headers)
        .with_delivery_mode(2);
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = channel
        .basic_publish("".into(), queue.into(), options, &d.data, props)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    match confirm {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(format!("the dead-letter queue {queue} is gone")),
        Confirmation::Nack(_) => Err(format!("the broker refused the copy to {queue}")),
        Confirmation::NotRequested => Err("the channel is not in confirm mode".into()),
    }
}

/// Handles deliveries until the consumer ends (false) or `stop` (true).
async fn consume<S: Starter>(
    config: &TriggerConfig,
    starter: &S,
    mut consumer: Consumer,
    dead: &Channel,
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
            Err(StartError {
                reason,
                reject: true,
            }) => {
                failures_in_a_row = 0;
                let why = format!("start {key}: {reason}");
                let moved = match &config.dead_letter {
                    Some(q) => {
                        let copied = tokio::time::timeout(
                            config.broker.confirm_timeout,
                            dead_letter(dead, q, &config.queue, &d, &why),
                        )
                        .await
                        .unwrap_or_else(|_| Err("the broker did not confirm the copy".into()));
                        match copied {
                            Ok(()) => d.acker.ack(BasicAckOptions::default()).await,
                            Err(e) => {
                                // Not copied: requeue it, and try again later.
                                stats.last_error = Some(format!("dead-lettering {key}: {e}"));
                                let requeue = BasicNackOptions {
                                    requeue: true,
                                    ..BasicNackOptions::default()
                                };
                                let _ = d.acker.nack(requeue).await;
                                return false;
                            }
                        }
                    }
                    None => d.acker.reject(BasicRejectOptions { requeue: false }).await,
                };
                stats.last_error = Some(why);
                if let Err(e) = moved {
                    stats.last_error = Some(e.to_string());
                    return false;
                }
                stats.dead_lettered += 1;
            }
            Err(StartError { reason: why, .. }) => {
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
