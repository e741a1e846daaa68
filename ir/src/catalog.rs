//! The catalog of built-in effects: the primitives every node can perform,
//! by name and parameters. The verifier checks `effect` declarations against
//! it; activities (user functions) are declared by the module instead.

/// The signature of one built-in effect.
#[derive(Debug)]
pub struct EffectSig {
    pub name: &'static str,
    pub params: &'static [&'static str],
    pub doc: &'static str,
}

impl EffectSig {
    /// The namespace before the first dot: `memcache` for `memcache.get`.
    pub fn namespace(&self) -> &'static str {
        namespace(self.name)
    }
}

/// The namespace of an effect name: the part before the first dot.
pub fn namespace(name: &str) -> &str {
    name.split_once('.').map_or(name, |(ns, _)| ns)
}

/// Namespaces reserved for built-in effects.
pub const NAMESPACES: &[&str] = &[
    "sys",
    "memcache",
    "statsd",
    "slack",
    "pagerduty",
    "rabbitmq",
    "http",
    "consul",
    "logstash",
];

macro_rules! catalog {
    ($($name:literal ($($param:literal),*) $doc:literal;)*) => {
        /// Every built-in effect.
        pub static BUILTIN_EFFECTS: &[EffectSig] = &[
            $(EffectSig { name: $name, params: &[$($param),*], doc: $doc },)*
        ];
    };
}

catalog! {
    "sys.now" () "Wall-clock time in milliseconds since the Unix epoch, journaled.";
    "sys.random" () "A random 64-bit int, journaled.";
    "sys.uuid" () "A random UUID string, journaled.";
    "memcache.get" ("key") "The value at key, or null.";
    "memcache.gets" ("key") "The value at key with its CAS token, as {value, cas}, or null.";
    "memcache.get_multi" ("keys") "A map of the keys found to their values.";
    "memcache.set" ("key", "value", "ttl_s") "Store a value.";
    "memcache.add" ("key", "value", "ttl_s") "Store a value unless the key exists; true if stored.";
    "memcache.delete" ("key") "Delete a key; true if it existed.";
    "memcache.incr" ("key", "delta") "Increment a counter; its new value, or null if missing.";
    "memcache.decr" ("key", "delta") "Decrement a counter; its new value, or null if missing.";
    "memcache.cas" ("key", "value", "cas", "ttl_s") "Store if unchanged since the read that gave `cas`; true if stored.";
    "memcache.touch" ("key", "ttl_s") "Set a new expiry; true if the key exists.";
    "statsd.count" ("name", "value", "tags") "Add to a counter.";
    "statsd.gauge" ("name", "value", "tags") "Set a gauge.";
    "statsd.timing" ("name", "ms", "tags") "Record a timing in milliseconds.";
    "statsd.histogram" ("name", "value", "tags") "Record a histogram sample.";
    "statsd.set" ("name", "value", "tags") "Count a unique value.";
    "slack.post" ("channel", "text", "blocks") "Post a message with chat.postMessage.";
    "slack.webhook" ("url", "text", "blocks") "Post a message to an incoming webhook.";
    "pagerduty.trigger" ("summary", "severity", "source", "details") "Trigger an alert (Events API v2); the dedup key is the effect id.";
    "pagerduty.acknowledge" ("dedup_key") "Acknowledge an alert.";
    "pagerduty.resolve" ("dedup_key") "Resolve an alert.";
    "rabbitmq.publish" ("exchange", "routing_key", "body") "Publish with confirms; message_id is the effect id.";
    "rabbitmq.next" ("queue") "The next message on a queue.";
    "http.request" ("method", "url", "headers", "body") "An HTTP request; the Idempotency-Key header is the effect id.";
    "consul.kv_get" ("key") "The value at key, or null.";
    "consul.kv_put" ("key", "value") "Store a value.";
    "consul.kv_cas" ("key", "value", "index") "Store if the modify index matches; true if stored.";
    "consul.register" ("service", "address", "port") "Register a service instance.";
    "consul.discover" ("service") "The healthy instances of a service.";
    "logstash.send" ("event") "Ship one JSON event.";
}

/// The built-in effect called `name`.
pub fn builtin_effect(name: &str) -> Option<&'static EffectSig> {
    BUILTIN_EFFECTS.iter().find(|e| e.name == name)
}

/// Whether `name` lies in a namespace reserved for built-in effects.
pub fn is_builtin_namespace(name: &str) -> bool {
    NAMESPACES.contains(&namespace(name))
}
