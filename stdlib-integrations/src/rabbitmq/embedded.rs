//! In-memory queues for nodes without a broker.
//!
//! Every exchange behaves as AMQP's default exchange does: a message goes to
//! the queue named by its routing key (created on first use). Queues are
//! bounded in total; a full broker fails publishes retryably.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::config::defaults;
use super::{decode_body, Body, Broker, Message, RabbitError};
use crate::{Health, ResourceDecl};

/// The bounds of an [`EmbeddedBroker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddedLimits {
    /// The most messages held across all queues.
    pub max_messages: usize,
    /// The largest body accepted.
    pub max_message_bytes: usize,
    /// How long `next` waits when the effect has no deadline.
    pub next_wait: Duration,
}

impl Default for EmbeddedLimits {
    fn default() -> Self {
        EmbeddedLimits {
            max_messages: 10_000,
            max_message_bytes: defaults::MAX_MESSAGE_BYTES,
            next_wait: Duration::from_millis(defaults::NEXT_WAIT_MS),
        }
    }
}

#[derive(Default)]
struct Queues {
    by_name: BTreeMap<String, VecDeque<Message>>,
    total: usize,
}

/// In-memory queues with the default exchange's routing.
#[derive(Default)]
pub struct EmbeddedBroker {
    limits: EmbeddedLimits,
    queues: Mutex<Queues>,
    arrived: Notify,
}

impl EmbeddedBroker {
    /// Empty queues with these bounds.
    pub fn new(limits: EmbeddedLimits) -> Self {
        EmbeddedBroker {
            limits,
            ..EmbeddedBroker::default()
        }
    }

    /// How many messages wait on `queue`.
    pub fn len(&self, queue: &str) -> usize {
        self.lock().by_name.get(queue).map_or(0, VecDeque::len)
    }

    /// Whether no message waits anywhere.
    pub fn is_empty(&self) -> bool {
        self.lock().total == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        // A panic while holding the lock cannot leave the queues half-changed
        // (every change is one push or pop), so a poisoned lock is usable.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pop(&self, queue: &str) -> Option<Message> {
        let mut q = self.lock();
        let m = q.by_name.get_mut(queue)?.pop_front()?;
        q.total -= 1;
        Some(m)
    }
}

impl Broker for EmbeddedBroker {
    async fn publish(
        &self,
        _exchange: &str,
        routing_key: &str,
        body: Body,
        message_id: &str,
    ) -> Result<(), RabbitError> {
        {
            let mut q = self.lock();
            if q.total >= self.limits.max_messages {
                return Err(RabbitError::Full(self.limits.max_messages));
            }
            q.total += 1;
            q.by_name
                .entry(routing_key.to_owned())
                .or_default()
                .push_back(Message {
                    body: decode_body(&body.bytes, Some(body.content_type)),
                    message_id: Some(message_id.to_owned()),
                    routing_key: routing_key.to_owned(),
                    redelivered: false,
                });
        }
        self.arrived.notify_waiters();
        Ok(())
    }

    // In memory, a message taken is gone with the process either way: it
    // is not held for settling.
    async fn next(
        &self,
        queue: &str,
        until: Instant,
        _hold: Option<(&str, u32)>,
    ) -> Result<Option<Message>, RabbitError> {
        loop {
            // Register for the wake-up before looking, so a publish between
            // the look and the wait is not missed.
            let arrived = self.arrived.notified();
            if let Some(m) = self.pop(queue) {
                return Ok(Some(m));
            }
            if tokio::time::timeout_at(until.into(), arrived)
                .await
                .is_err()
            {
                return Ok(self.pop(queue));
            }
        }
    }

    async fn health(&self) -> Health {
        let total = self.lock().total;
        let detail = format!(
            "embedded broker: {total} of {} messages held",
            self.limits.max_messages
        );
        if total >= self.limits.max_messages {
            Health::degraded(detail)
        } else {
            Health::up(detail)
        }
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        Vec::new()
    }

    fn max_message_bytes(&self) -> usize {
        self.limits.max_message_bytes
    }

    fn next_wait(&self) -> Duration {
        self.limits.next_wait
    }
}
