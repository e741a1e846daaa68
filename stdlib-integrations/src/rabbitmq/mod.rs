//! The RabbitMQ integration: `rabbitmq.publish(exchange, routing_key, body)`
//! and `rabbitmq.next(queue)`, against a real broker ([`ServerBroker`], over
//! lapin) or in-memory queues ([`EmbeddedBroker`]); and queue-triggered run
//! starts ([`trigger`]).
//!
//! Delivery is at-least-once, end to end:
//! - `publish` waits for the broker's publisher confirm and sends the
//!   message persistent (delivery mode 2) with `message_id` = the effect id.
//!   An attempt that loses its connection, times out waiting for the confirm
//!   or is nacked fails retryably; the broker may still have taken the
//!   message, so the retry can publish it a second time, with the same
//!   `message_id`. Consumers dedup on it. Publishes are `mandatory`: a
//!   message no queue is bound for comes back as a retryable `unroutable`
//!   failure instead of vanishing.
//! - `next` takes one message with `basic.get`, decodes it, and acks it as it
//!   hands the value back. A failed ack fails the attempt (the broker
//!   redelivers the message to the retry, flagged redelivered). The window
//!   between that ack and the node's journal write is the one place a
//!   message can be lost if the node dies; where that matters, start runs
//!   from the queue with [`trigger`], which acks only once the run start is
//!   durable.
//!
//! Bodies: a string is sent as its UTF-8 bytes (`text/plain`), bytes as
//! they are (`application/octet-stream`), anything else as JSON
//! (`application/json`). `next` reverses this by content type, so what a
//! workflow publishes it reads back as the same value; a message without a
//! content type is read as JSON if it parses, else as a string if it is
//! UTF-8, else as bytes.

pub mod config;
mod embedded;
mod server;
pub mod trigger;

use std::future::Future;
use std::time::{Duration, Instant};

use drover_ir::Value;

pub use config::RabbitmqConfig;
pub use embedded::{EmbeddedBroker, EmbeddedLimits};
pub use server::ServerBroker;

use crate::args::{self, bad};
use crate::{summary, EffectCall, EffectFailure, Health, Integration, ResourceDecl};

/// The operations, in catalog order.
pub const OPERATIONS: &[&str] = &["publish", "next"];

/// The content type of a body published from a string.
pub const TEXT: &str = "text/plain; charset=utf-8";
/// The content type of a body published from bytes.
pub const BYTES: &str = "application/octet-stream";
/// The content type of a body published from any other value.
pub const JSON: &str = "application/json";

/// The longest exchange, routing key or queue name AMQP allows, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// What went wrong talking to a broker. Each maps to an [`EffectFailure`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RabbitError {
    /// No connection or channel could be had, or it broke mid-operation.
    #[error("rabbitmq is unavailable: {0}")]
    Unavailable(String),
    /// The broker did not confirm in time (it may still have the message).
    #[error("rabbitmq did not confirm the publish within {0} ms")]
    ConfirmTimeout(u64),
    /// The broker refused the message (basic.nack).
    #[error("rabbitmq refused the message (nack)")]
    Nacked,
    /// No queue is bound for the routing key (the broker returned it).
    #[error("no queue is bound to exchange {exchange:?} for routing key {routing_key:?}")]
    Unroutable {
        /// The exchange.
        exchange: String,
        /// The routing key.
        routing_key: String,
    },
    /// The exchange or queue does not exist.
    #[error("rabbitmq: {0}")]
    NotFound(String),
    /// The broker refused the operation (access, arguments).
    #[error("rabbitmq refused: {0}")]
    Refused(String),
    /// The embedded broker holds as many messages as it may.
    #[error("the embedded broker holds its limit of {0} messages")]
    Full(usize),
}

impl From<RabbitError> for EffectFailure {
    fn from(e: RabbitError) -> Self {
        let (kind, retryable) = match &e {
            RabbitError::Unavailable(_) => ("unavailable", true),
            RabbitError::ConfirmTimeout(_) => ("timeout", true),
            RabbitError::Nacked => ("nacked", true),
            // A consumer may declare and bind its queue later.
            RabbitError::Unroutable { .. } => ("unroutable", true),
            RabbitError::NotFound(_) => ("not_found", false),
            RabbitError::Refused(_) => ("refused", false),
            RabbitError::Full(_) => ("full", true),
        };
        EffectFailure {
            kind: kind.into(),
            message: e.to_string(),
            retryable,
        }
    }
}

/// A message body and how it was encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    /// The bytes sent.
    pub bytes: Vec<u8>,
    /// [`TEXT`], [`BYTES`] or [`JSON`].
    pub content_type: &'static str,
}

impl Body {
    /// Encodes a workflow value: strings and bytes as they are, the rest as JSON.
    pub fn encode(v: &Value) -> Body {
        match v {
            Value::Str(s) => Body {
                bytes: s.as_bytes().to_vec(),
                content_type: TEXT,
            },
            Value::Bytes(b) => Body {
                bytes: b.clone(),
                content_type: BYTES,
            },
            other => Body {
                bytes: other.to_json().to_string().into_bytes(),
                content_type: JSON,
            },
        }
    }
}

/// Decodes a received body by its content type (see the module docs). Never
/// fails: a body that does not match its declared type is read as a string
/// or bytes, so a bad message cannot wedge a queue.
pub fn decode_body(bytes: &[u8], content_type: Option<&str>) -> Value {
    let mime = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let json = || {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .map(Value::from_json)
    };
    let text = || match std::str::from_utf8(bytes) {
        Ok(s) => Value::Str(s.to_owned()),
        Err(_) => Value::Bytes(bytes.to_vec()),
    };
    match mime.as_str() {
        "application/json" => json().unwrap_or_else(text),
        "application/octet-stream" => Value::Bytes(bytes.to_vec()),
        m if m.starts_with("text/") => text(),
        _ => json().unwrap_or_else(text),
    }
}

/// A message taken from a queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The body, decoded.
    pub body: Value,
    /// The publisher's message id, if it set one.
    pub message_id: Option<String>,
    /// The routing key it was published with.
    pub routing_key: String,
    /// Whether the broker delivered it before (to a consumer that did not ack).
    pub redelivered: bool,
}

/// Where messages go: a broker.
pub trait Broker: Send + Sync + 'static {
    /// Publishes `body` and waits until the broker has it.
    fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: Body,
        message_id: &str,
    ) -> impl Future<Output = Result<(), RabbitError>> + Send;

    /// Takes the next message on `queue`, waiting until `until` for one
    /// (`Ok(None)` if none came). Without `hold` the message is
    /// acknowledged when returned; with `hold = (effect id, attempt)` it
    /// stays unacknowledged until [`Broker::settle`] for that key.
    fn next(
        &self,
        queue: &str,
        until: Instant,
        hold: Option<(&str, u32)>,
    ) -> impl Future<Output = Result<Option<Message>, RabbitError>> + Send;

    /// Acknowledges (`durable`) or requeues the message `next` holds for
    /// `(effect_id, attempt)`. Must not block.
    fn settle(&self, effect_id: &str, attempt: u32, durable: bool) {
        let _ = (effect_id, attempt, durable);
    }

    /// Whether the broker can be reached.
    fn health(&self) -> impl Future<Output = Health> + Send;

    /// Drops the connection and its channels (see [`crate::Integration::reset`]).
    fn reset(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// The limited resources of this broker.
    fn resources(&self) -> Vec<ResourceDecl>;

    /// The largest body accepted.
    fn max_message_bytes(&self) -> usize;

    /// How long `next` waits when the effect has no deadline.
    fn next_wait(&self) -> Duration;
}

/// The RabbitMQ integration over a broker.
pub struct RabbitmqIntegration<B> {
    broker: B,
}

impl<B: Broker> RabbitmqIntegration<B> {
    /// The integration over `broker`.
    pub fn new(broker: B) -> Self {
        RabbitmqIntegration { broker }
    }

    /// The broker.
    pub fn broker(&self) -> &B {
        &self.broker
    }

    async fn publish(&self, call: &EffectCall<'_>) -> Result<Value, EffectFailure> {
        let exchange = name(&call.args[0], "exchange", true)?;
        let routing_key = name(&call.args[1], "routing_key", true)?;
        let body = Body::encode(&call.args[2]);
        let max = self.broker.max_message_bytes();
        if body.bytes.len() > max {
            return Err(EffectFailure::permanent(
                "too_large",
                format!(
                    "body: the message is {} bytes, over the limit of {max}",
                    body.bytes.len()
                ),
            ));
        }
        self.broker
            .publish(exchange, routing_key, body, call.effect_id)
            .await?;
        Ok(Value::Null)
    }

    async fn next(&self, call: &EffectCall<'_>) -> Result<Value, EffectFailure> {
        let queue = name(&call.args[0], "queue", false)?;
        let until = call
            .deadline
            .unwrap_or_else(|| Instant::now() + self.broker.next_wait());
        let hold = call.settle.then_some((call.effect_id, call.attempt));
        match self.broker.next(queue, until, hold).await? {
            Some(m) => Ok(m.body),
            None => Err(EffectFailure::retryable(
                "empty",
                format!("no message arrived on queue {queue:?} in time"),
            )),
        }
    }
}

/// An exchange, routing key or queue name: a string of at most 255 bytes;
/// empty only where `empty_ok` (the default exchange, an empty routing key).
fn name<'v>(v: &'v Value, param: &str, empty_ok: bool) -> Result<&'v str, EffectFailure> {
    let s = args::string(v, param)?;
    if s.len() > MAX_NAME_BYTES {
        return Err(bad(
            param,
            format!("at most {MAX_NAME_BYTES} bytes, got {}", s.len()),
        ));
    }
    if s.is_empty() && !empty_ok {
        return Err(bad(param, "must not be empty"));
    }
    Ok(s)
}

impl<B: Broker> Integration for RabbitmqIntegration<B> {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn perform(&self, call: EffectCall<'_>) -> Result<Value, EffectFailure> {
        match call.op {
            "publish" => self.publish(&call).await,
            "next" => self.next(&call).await,
            other => Err(EffectFailure::permanent(
                "unknown_effect",
                format!("rabbitmq has no operation {other:?}"),
            )),
        }
    }

    async fn health(&self) -> Health {
        self.broker.health().await
    }

    async fn reset(&self) {
        self.broker.reset().await
    }

    fn settles(&self, op: &str) -> bool {
        op == "next"
    }

    fn settled(&self, op: &str, effect_id: &str, attempt: u32, durable: bool) {
        if op == "next" {
            self.broker.settle(effect_id, attempt, durable);
        }
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        self.broker.resources()
    }

    fn summarize(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String {
        let mut s = summary::call("rabbitmq", call, result);
        if call.op == "publish" {
            s.push_str(&format!(" message_id={}", call.effect_id));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_read_back_as_the_value_published() {
        let values = [
            Value::Str("hello".into()),
            Value::Str("42".into()),
            Value::Bytes(vec![0, 159, 146, 150]),
            Value::Int(42),
            Value::record([("a", Value::Int(1)), ("b", Value::Str("x".into()))]),
            Value::List(vec![Value::Bool(true), Value::Null]),
        ];
        for v in values {
            let b = Body::encode(&v);
            assert_eq!(decode_body(&b.bytes, Some(b.content_type)), v);
        }
        assert_eq!(
            decode_body(b"{\"a\":1}", None),
            Value::record([("a", Value::Int(1))])
        );
        assert_eq!(decode_body(b"plain", None), Value::Str("plain".into()));
        assert_eq!(decode_body(&[0xff, 0], None), Value::Bytes(vec![0xff, 0]));
        // A body that lies about being JSON is still handed over.
        assert_eq!(
            decode_body(b"{oops", Some(JSON)),
            Value::Str("{oops".into())
        );
    }

    /// What `drover::effects::rabbitmq::publish(.., body)` sends,
    /// `next::<T>(..)` decodes back into the same `T`.
    #[test]
    fn typed_bodies_round_trip() {
        use drover_ir::value::{from_value, to_value};
        use serde::{Deserialize, Serialize};

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        enum Kind {
            Scan,
            Retry { after_s: u32 },
        }
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Job {
            id: u64,
            name: String,
            ratio: f64,
            kinds: Vec<Kind>,
            note: Option<String>,
        }
        let job = Job {
            id: 7,
            name: "scan inbox".into(),
            ratio: 1.0,
            kinds: vec![Kind::Scan, Kind::Retry { after_s: 30 }],
            note: None,
        };
        let body = Body::encode(&to_value(&job).unwrap());
        assert_eq!(body.content_type, JSON);
        let back: Job = from_value(decode_body(&body.bytes, Some(body.content_type))).unwrap();
        assert_eq!(back, job);
        let text: String = from_value(decode_body(b"42", Some(TEXT))).unwrap();
        assert_eq!(text, "42");
    }
}
