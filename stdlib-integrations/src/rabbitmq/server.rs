//! A real broker over lapin: one connection, re-opened when it drops, and a
//! bounded pool of channels in confirm mode.
//!
//! Nothing connects until the first effect, so a node starts while its
//! broker is down. An attempt that finds the connection gone opens a new
//! one; an attempt whose connection breaks under it fails retryably, and its
//! channel is discarded rather than returned to the pool.
//!
//! A message `next` takes for a node (`hold`) stays unacknowledged on its
//! channel until the node says the run's journal has it ([`Broker::settle`]):
//! then it is acked, or requeued if the run refused it. If the node dies
//! first, the connection closes and the broker requeues it; one not settled
//! within [`HOLD_LIMIT`] is requeued too. So a message is never acked
//! before the run has durably received it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::config::{check_url, RabbitmqConfig};
use super::{decode_body, Body, Broker, Message, RabbitError};
use crate::{Health, ResourceDecl, ResourceLimit};

/// AMQP's persistent delivery mode: the broker writes the message to disk
/// (on a durable queue) before it confirms.
const PERSISTENT: u8 = 2;

/// How long `next` sleeps between polls of an empty queue, at first and at most.
const POLL_FIRST: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(250);

/// How long a held message waits to be settled before it is requeued.
pub const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// A message `next` took and holds unacknowledged, with its channel.
struct Held {
    generation: u64,
    channel: Channel,
    tag: u64,
    since: Instant,
}

/// A RabbitMQ broker.
pub struct ServerBroker {
    config: RabbitmqConfig,
    connection: tokio::sync::Mutex<Option<(u64, Arc<Connection>)>>,
    generation: AtomicU64,
    idle: Arc<Mutex<Vec<(u64, Channel)>>>,
    permits: Semaphore,
    /// Messages held until settled, by (effect id, attempt).
    held: Mutex<HashMap<(String, u32), Held>>,
}

/// A channel lent to one operation, with the slot it occupies. A lease
/// dropped without [`ServerBroker::give_back`] (the operation failed or
/// timed out) closes its channel, so the broker does not keep it open.
struct Lease<'a> {
    generation: u64,
    channel: Option<Channel>,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    fn channel(&self) -> &Channel {
        self.channel
            .as_ref()
            .expect("a lease holds its channel until given back")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(ch) = self.channel.take() {
            if ch.status().connected() {
                tokio::spawn(async move {
                    let _ = ch.close(200, "discarded".into()).await;
                });
            }
        }
    }
}

impl ServerBroker {
    /// A broker client for `config`; checks the URL but does not connect.
    pub fn new(config: &RabbitmqConfig) -> Result<ServerBroker, RabbitError> {
        check_url(config.url.expose()).map_err(RabbitError::Unavailable)?;
        Ok(ServerBroker {
            config: config.clone(),
            connection: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Semaphore::new(config.channels as usize),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// How many connections have been opened so far (1 after the first
    /// effect, one more after each reconnection).
    pub fn connections_opened(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The open connection, opening a new one if there is none or it broke.
    async fn connection(&self) -> Result<(u64, Arc<Connection>), RabbitError> {
        let mut slot = self.connection.lock().await;
        if let Some((g, c)) = slot.as_ref() {
            if c.status().connected() {
                return Ok((*g, c.clone()));
            }
        }
        let props = ConnectionProperties::default().with_connection_name("drover".into());
        let connect = Connection::connect(self.config.url.expose(), props);
        let conn = match tokio::time::timeout(self.config.connect_timeout, connect).await {
            Ok(Ok(c)) => Arc::new(c),
            Ok(Err(e)) => {
                return Err(RabbitError::Unavailable(format!(
                    "cannot connect to {}: {}",
                    self.config.redacted_url(),
                    self.scrub(&e.to_string())
                )))
            }
            Err(_) => {
                return Err(RabbitError::Unavailable(format!(
                    "connecting to {} took over {} ms",
                    self.config.redacted_url(),
                    self.config.connect_timeout.as_millis()
                )))
            }
        };
        let g = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *slot = Some((g, conn.clone()));
        Ok((g, conn))
    }

    /// A channel in confirm mode: an idle one of the current connection, or a new one.
    async fn lease(&self) -> Result<Lease<'_>, RabbitError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| RabbitError::Unavailable("the broker client is shut down".into()))?;
        let (generation, conn) = self.connection().await?;
        loop {
            let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match pooled {
                Some((g, ch)) if g == generation && ch.status().connected() => {
                    return Ok(Lease {
                        generation,
                        channel: Some(ch),
                        _permit: permit,
                    })
                }
                Some(_) => continue, // of a dead connection: let it go
                None => break,
            }
        }
        let channel = conn.create_channel().await.map_err(|e| self.classify(e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| self.classify(e))?;
        Ok(Lease {
            generation,
            channel: Some(channel),
            _permit: permit,
        })
    }

    /// Returns a channel that finished its operation cleanly.
    fn give_back(&self, mut lease: Lease<'_>) {
        if let Some(ch) = lease.channel.take() {
            if ch.status().connected() {
                self.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((lease.generation, ch));
            }
        }
    }

    fn classify(&self, e: lapin::Error) -> RabbitError {
        let text = self.scrub(&e.to_string());
        match e.kind() {
            ErrorKind::ProtocolError(amqp) => match amqp.kind() {
                AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => {
                    RabbitError::NotFound(amqp.get_message().to_string())
                }
                AMQPErrorKind::Soft(
                    AMQPSoftError::ACCESSREFUSED | AMQPSoftError::PRECONDITIONFAILED,
                ) => RabbitError::Refused(amqp.get_message().to_string()),
                _ => RabbitError::Unavailable(text),
            },
            _ => RabbitError::Unavailable(text),
        }
    }

    /// Removes the password from a message that might quote the URL.
    fn scrub(&self, text: &str) -> String {
        let url = self.config.url.expose();
        if url.is_empty() {
            return text.to_owned();
        }
        text.replace(url, &self.config.redacted_url())
    }

    /// How many messages are held unsettled now.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Acks or requeues a held message, then returns its channel to the
    /// pool (if its connection is still the current one).
    fn release(&self, h: Held, ack: bool) {
        let current = self.generation.load(Ordering::Relaxed);
        let idle = if h.generation == current {
            Some(self.idle.clone())
        } else {
            None
        };
        tokio::spawn(async move {
            let done = if ack {
                h.channel.basic_ack(h.tag, BasicAckOptions::default()).await
            } else {
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                h.channel.basic_nack(h.tag, requeue).await
            };
            // An ack that cannot be sent: the channel is gone and the broker
            // requeues the message by itself.
            match (done, idle) {
                (Ok(()), Some(idle)) if h.channel.status().connected() => {
                    idle.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((h.generation, h.channel));
                }
                _ => {
                    let _ = h.channel.close(200, "discarded".into()).await;
                }
            }
        });
    }

    /// Requeues held messages nobody settled within [`HOLD_LIMIT`].
    fn expire_held(&self) {
        let now = Instant::now();
        let expired: Vec<Held> = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let old: Vec<(String, u32)> = held
                .iter()
                .filter(|(_, h)| now.duration_since(h.since) >= HOLD_LIMIT)
                .map(|(k, _)| k.clone())
                .collect();
            old.into_iter().filter_map(|k| held.remove(&k)).collect()
        };
        for h in expired {
            self.release(h, false);
        }
    }

    async fn get_one(
        &self,
        queue: &str,
        hold: Option<(&str, u32)>,
    ) -> Result<Option<Message>, RabbitError> {
        self.expire_held();
        let mut lease = self.lease().await?;
        let got = lease
            .channel()
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await
            .map_err(|e| self.classify(e))?;
        let Some(got) = got else {
            self.give_back(lease);
            return Ok(None);
        };
        let d = got.delivery;
        let props = &d.properties;
        let message = Message {
            body: decode_body(&d.data, props.content_type().as_ref().map(|c| c.as_str())),
            message_id: props.message_id().as_ref().map(|m| m.to_string()),
            routing_key: d.routing_key.to_string(),
            redelivered: d.redelivered,
        };
        if let Some((effect_id, attempt)) = hold {
            // Held on its channel, which leaves the pool until settled.
            let Some(channel) = lease.channel.take() else {
                return Err(RabbitError::Unavailable("the channel is gone".into()));
            };
            let h = Held {
                generation: lease.generation,
                channel,
                tag: d.delivery_tag,
                since: Instant::now(),
            };
            let replaced = self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((effect_id.to_owned(), attempt), h);
            if let Some(old) = replaced {
                self.release(old, false);
            }
            return Ok(Some(message));
        }
        // Ack as the value is handed back. If the ack cannot be sent the
        // channel is gone, the broker requeues the message, and this attempt
        // fails so the retry reads it again.
        d.acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|e| self.classify(e))?;
        self.give_back(lease);
        Ok(Some(message))
    }
}

impl Broker for ServerBroker {
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: Body,
        message_id: &str,
    ) -> Result<(), RabbitError> {
        let lease = self.lease().await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let props = BasicProperties::default()
            .with_message_id(message_id.into())
            .with_delivery_mode(PERSISTENT)
            .with_content_type(body.content_type.into())
            .with_timestamp(now);
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = lease
            .channel()
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                options,
                &body.bytes,
                props,
            )
            .await
            .map_err(|e| self.classify(e))?;
        let timeout = self.config.confirm_timeout;
        let confirmation = match tokio::time::timeout(timeout, confirm).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.classify(e)),
            // The channel may yet confirm; it cannot be reused for another
            // publish whose confirm we would then misread, so drop it.
            Err(_) => return Err(RabbitError::ConfirmTimeout(timeout.as_millis() as u64)),
        };
        let result = match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(RabbitError::Unroutable {
                exchange: exchange.to_owned(),
                routing_key: routing_key.to_owned(),
            }),
            Confirmation::Nack(_) => Err(RabbitError::Nacked),
            Confirmation::NotRequested => Err(RabbitError::Unavailable(
                "the channel is not in confirm mode".into(),
            )),
        };
        self.give_back(lease);
        result
    }

    async fn next(
        &self,
        queue: &str,
        until: Instant,
        hold: Option<(&str, u32)>,
    ) -> Result<Option<Message>, RabbitError> {
        let mut pause = POLL_FIRST;
        loop {
            if let Some(m) = self.get_one(queue, hold).await? {
                return Ok(Some(m));
            }
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            tokio::time::sleep(pause.min(until - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    fn settle(&self, effect_id: &str, attempt: u32, durable: bool) {
        let h = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(effect_id.to_owned(), attempt));
        if let Some(h) = h {
            self.release(h, durable);
        }
        self.expire_held();
    }

    async fn reset(&self) {
        let old = self.connection.lock().await.take();
        let idle: Vec<(u64, Channel)> =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        drop(idle);
        // Held messages go back to their queue as the connection closes.
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if let Some((_, conn)) = old {
            // Publishes in flight on it fail retryably and are retried on
            // the next connection, under the same message id.
            tokio::spawn(async move {
                let _ = conn.close(200, "drover rebuilt the pool".into()).await;
            });
        }
    }

    async fn health(&self) -> Health {
        match self.connection().await {
            Ok((g, _)) => Health::up(format!(
                "connected to {} (connection #{g}); {} of {} channels free",
                self.config.redacted_url(),
                self.permits.available_permits(),
                self.config.channels
            )),
            Err(e) => Health::down(e.to_string()),
        }
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        vec![ResourceDecl {
            name: "rabbitmq.channels".into(),
            limit: ResourceLimit::Concurrency(self.config.channels),
        }]
    }

    fn max_message_bytes(&self) -> usize {
        self.config.max_message_bytes
    }

    fn next_wait(&self) -> Duration {
        self.config.next_wait
    }
}
