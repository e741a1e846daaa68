//! The built-in effects, typed. Each fn takes the catalog's parameters in
//! order (`drover_ir::catalog`) and returns an [`Effect`] to chain
//! `.retry(..)`/`.timeout(..)` on and await. Nodes perform them through
//! their integrations; natively the responder answers them.

use serde::Serialize;

use crate::effect::Effect;
use crate::error::Error;

/// Converts arguments to values in catalog order; the first one that cannot
/// be represented is reported when the effect is awaited.
macro_rules! effect {
    ($name:literal $(, $arg:expr)* $(,)?) => {
        Effect::new(
            $name,
            (|| -> Result<Vec<drover_ir::Value>, Error> {
                Ok(vec![$(drover_ir::to_value(&$arg).map_err(Error::encode)?),*])
            })(),
        )
    };
}

/// memcache: a shared cache with expiry.
pub mod memcache {
    use std::collections::BTreeMap;

    use serde::de::DeserializeOwned;

    use super::*;

    /// The value at `key`, or `None`.
    pub fn get<T: DeserializeOwned>(key: &str) -> Effect<Option<T>> {
        effect!("memcache.get", key)
    }

    /// The value at `key` with the CAS token to pass to [`cas`], or `None`.
    pub fn gets<T: DeserializeOwned>(key: &str) -> Effect<Option<Cas<T>>> {
        effect!("memcache.gets", key)
    }

    /// A value read with [`gets`], and the token that [`cas`] checks.
    #[derive(Clone, Debug, PartialEq, serde::Deserialize, Serialize)]
    pub struct Cas<T> {
        pub value: T,
        pub cas: u64,
    }

    /// The values of the `keys` found.
    pub fn get_multi<T: DeserializeOwned>(keys: &[&str]) -> Effect<BTreeMap<String, T>> {
        effect!("memcache.get_multi", keys)
    }

    /// Stores `value` at `key` for `ttl_s` seconds.
    pub fn set<T: Serialize + ?Sized>(key: &str, value: &T, ttl_s: u32) -> Effect<()> {
        effect!("memcache.set", key, value, ttl_s)
    }

    /// Stores `value` unless `key` exists; true if stored.
    pub fn add<T: Serialize + ?Sized>(key: &str, value: &T, ttl_s: u32) -> Effect<bool> {
        effect!("memcache.add", key, value, ttl_s)
    }

    /// Deletes `key`; true if it existed.
    pub fn delete(key: &str) -> Effect<bool> {
        effect!("memcache.delete", key)
    }

    /// Adds `delta` to the counter at `key`; its new value, or `None`.
    pub fn incr(key: &str, delta: u64) -> Effect<Option<u64>> {
        effect!("memcache.incr", key, delta)
    }

    /// Subtracts `delta` from the counter at `key`; its new value, or `None`.
    pub fn decr(key: &str, delta: u64) -> Effect<Option<u64>> {
        effect!("memcache.decr", key, delta)
    }

    /// Stores `value` if unchanged since the read that gave `cas`; true if stored.
    pub fn cas<T: Serialize + ?Sized>(key: &str, value: &T, cas: u64, ttl_s: u32) -> Effect<bool> {
        effect!("memcache.cas", key, value, cas, ttl_s)
    }

    /// Sets a new expiry; true if the key exists.
    pub fn touch(key: &str, ttl_s: u32) -> Effect<bool> {
        effect!("memcache.touch", key, ttl_s)
    }
}

/// statsd (and DogStatsD tags): metrics.
pub mod statsd {
    use super::*;

    /// Adds `value` to a counter.
    pub fn count(name: &str, value: i64, tags: &[(&str, &str)]) -> Effect<()> {
        effect!("statsd.count", name, value, tags)
    }

    /// Sets a gauge.
    pub fn gauge(name: &str, value: f64, tags: &[(&str, &str)]) -> Effect<()> {
        effect!("statsd.gauge", name, value, tags)
    }

    /// Records a timing in milliseconds.
    pub fn timing(name: &str, ms: u64, tags: &[(&str, &str)]) -> Effect<()> {
        effect!("statsd.timing", name, ms, tags)
    }

    /// Records a histogram sample.
    pub fn histogram(name: &str, value: f64, tags: &[(&str, &str)]) -> Effect<()> {
        effect!("statsd.histogram", name, value, tags)
    }

    /// Counts a unique value.
    pub fn set(name: &str, value: i64, tags: &[(&str, &str)]) -> Effect<()> {
        effect!("statsd.set", name, value, tags)
    }
}

/// Slack messages.
pub mod slack {
    use serde::Deserialize;

    use super::*;

    /// A posted message.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Posted {
        /// The channel id it was posted to.
        pub channel: String,
        /// Its timestamp, Slack's message id.
        pub ts: String,
    }

    /// Posts `text` (and Block Kit `blocks`) to `channel` with chat.postMessage.
    pub fn post(channel: &str, text: &str, blocks: Option<serde_json::Value>) -> Effect<Posted> {
        effect!("slack.post", channel, text, blocks)
    }

    /// Posts to an incoming webhook.
    pub fn webhook(url: &str, text: &str, blocks: Option<serde_json::Value>) -> Effect<()> {
        effect!("slack.webhook", url, text, blocks)
    }
}

/// PagerDuty alerts (Events API v2); the dedup key is the effect id.
pub mod pagerduty {
    use serde::Deserialize;

    use super::*;

    /// How bad an alert is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Severity {
        /// Wake someone up.
        Critical,
        /// Broken, but not an emergency.
        Error,
        /// Likely to break.
        Warning,
        /// For the record.
        Info,
    }

    /// PagerDuty's answer to an event.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Ack {
        /// The alert's dedup key.
        pub dedup_key: String,
        /// PagerDuty's status, such as `success`.
        pub status: String,
    }

    /// Triggers an alert.
    pub fn trigger(
        summary: &str,
        severity: Severity,
        source: &str,
        details: impl Serialize,
    ) -> Effect<Ack> {
        effect!("pagerduty.trigger", summary, severity, source, details)
    }

    /// Acknowledges the alert `dedup_key`.
    pub fn acknowledge(dedup_key: &str) -> Effect<Ack> {
        effect!("pagerduty.acknowledge", dedup_key)
    }

    /// Resolves the alert `dedup_key`.
    pub fn resolve(dedup_key: &str) -> Effect<Ack> {
        effect!("pagerduty.resolve", dedup_key)
    }
}

/// RabbitMQ, with publisher confirms; the message id is the effect id.
pub mod rabbitmq {
    use serde::de::DeserializeOwned;

    use super::*;

    /// Publishes `body` to `exchange` with `routing_key`.
    pub fn publish(exchange: &str, routing_key: &str, body: impl Serialize) -> Effect<()> {
        effect!("rabbitmq.publish", exchange, routing_key, body)
    }

    /// The next message on `queue`.
    pub fn next<T: DeserializeOwned>(queue: &str) -> Effect<T> {
        effect!("rabbitmq.next", queue)
    }
}

/// HTTP requests; the `Idempotency-Key` header is the effect id.
pub mod http {
    use serde::Deserialize;

    use super::*;

    /// An HTTP response.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Response {
        /// The status code.
        pub status: u16,
        /// The headers, in order.
        pub headers: Vec<(String, String)>,
        /// The body: JSON when it parses, else a string.
        pub body: serde_json::Value,
    }

    /// Sends a request.
    pub fn request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Effect<Response> {
        effect!("http.request", method, url, headers, body)
    }
}

/// Consul: key-value store and service discovery.
pub mod consul {
    use serde::de::DeserializeOwned;
    use serde::Deserialize;

    use super::*;

    /// One healthy instance of a service.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Instance {
        /// Host name or address.
        pub address: String,
        /// Port.
        pub port: u16,
    }

    /// The value at `key`, or `None`.
    pub fn kv_get<T: DeserializeOwned>(key: &str) -> Effect<Option<T>> {
        effect!("consul.kv_get", key)
    }

    /// Stores `value` at `key`.
    pub fn kv_put<T: Serialize + ?Sized>(key: &str, value: &T) -> Effect<()> {
        effect!("consul.kv_put", key, value)
    }

    /// Stores `value` if the key's modify index is `index`; true if stored.
    pub fn kv_cas<T: Serialize + ?Sized>(key: &str, value: &T, index: u64) -> Effect<bool> {
        effect!("consul.kv_cas", key, value, index)
    }

    /// Registers an instance of `service`.
    pub fn register(service: &str, address: &str, port: u16) -> Effect<()> {
        effect!("consul.register", service, address, port)
    }

    /// The healthy instances of `service`.
    pub fn discover(service: &str) -> Effect<Vec<Instance>> {
        effect!("consul.discover", service)
    }
}

/// Logstash: ships JSON events.
pub mod logstash {
    use super::*;

    /// Ships one event.
    pub fn send(event: impl Serialize) -> Effect<()> {
        effect!("logstash.send", event)
    }
}

#[cfg(test)]
mod tests {
    use drover_ir::catalog::builtin_effect;
    use drover_ir::Value;

    use super::*;

    /// Every typed effect names a catalog effect and passes its parameters.
    #[test]
    fn effects_match_the_catalog() {
        let effects: Vec<(&str, usize)> = vec![
            arity(memcache::get::<i64>("k")),
            arity(memcache::get_multi::<i64>(&["a"])),
            arity(memcache::set("k", &1, 2)),
            arity(memcache::add("k", &1, 2)),
            arity(memcache::delete("k")),
            arity(memcache::incr("k", 1)),
            arity(memcache::decr("k", 1)),
            arity(memcache::cas("k", &1, 3, 2)),
            arity(memcache::touch("k", 2)),
            arity(memcache::gets::<i64>("k")),
            arity(statsd::count("n", 1, &[])),
            arity(statsd::gauge("n", 1.0, &[])),
            arity(statsd::timing("n", 1, &[])),
            arity(statsd::histogram("n", 1.0, &[])),
            arity(statsd::set("n", 1, &[])),
            arity(slack::post("c", "t", None)),
            arity(slack::webhook("u", "t", None)),
            arity(pagerduty::trigger(
                "s",
                pagerduty::Severity::Info,
                "src",
                (),
            )),
            arity(pagerduty::acknowledge("k")),
            arity(pagerduty::resolve("k")),
            arity(rabbitmq::publish("x", "r", 1)),
            arity(rabbitmq::next::<i64>("q")),
            arity(http::request("GET", "u", &[], None)),
            arity(consul::kv_get::<i64>("k")),
            arity(consul::kv_put("k", &1)),
            arity(consul::kv_cas("k", &1, 4)),
            arity(consul::register("s", "a", 80)),
            arity(consul::discover("s")),
            arity(logstash::send(1)),
        ];
        for (name, n) in &effects {
            let sig =
                builtin_effect(name).unwrap_or_else(|| panic!("{name} is not in the catalog"));
            assert_eq!(sig.params.len(), *n, "{name}");
        }
        let sys_and_covered = effects.len() + 3;
        assert_eq!(sys_and_covered, drover_ir::catalog::BUILTIN_EFFECTS.len());
    }

    fn arity<T>(e: Effect<T>) -> (&'static str, usize) {
        (e.name(), e.args().map(|a| a.len()).unwrap_or(usize::MAX))
    }

    #[test]
    fn arguments_follow_the_value_mapping() {
        let e = statsd::count("sent", 2, &[("env", "prod")]);
        assert_eq!(
            e.args().unwrap(),
            &[
                Value::Str("sent".into()),
                Value::Int(2),
                Value::List(vec![Value::List(vec![
                    Value::Str("env".into()),
                    Value::Str("prod".into())
                ])]),
            ]
        );
        let e = pagerduty::acknowledge("k").retry(
            3,
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(1),
        );
        assert_eq!(e.policy().max_attempts(), 3);
    }
}
