//! The statsd integration: `statsd.count`, `gauge`, `timing`, `histogram`
//! and `set`, with DogStatsD tags, sent in batched UDP datagrams
//! ([`UdpSink`]) or kept in an in-process aggregator ([`Aggregator`]).
//!
//! Sample rates come from config (`sample_rate`, `sample_rates` by name) and
//! apply to counts, timings and histograms. The decision is a hash of the
//! effect id, so a retried or replayed effect is sampled the same way.
//!
//! Metrics are fire-and-forget, as statsd over UDP is: an effect succeeds
//! once its line is queued; datagrams the network drops show in `health`.

mod aggregator;
pub mod line;
mod udp;

use std::collections::BTreeMap;

use drover_ir::Value;

pub use aggregator::{Aggregates, Aggregator, AggregatorLimits, SeriesKey};
pub use line::{Metric, MetricType, MetricValue};
pub use udp::UdpSink;

use crate::args::{self, bad};
use crate::config::StatsdConfig;
use crate::{summary, EffectCall, EffectFailure, Health, Integration, ResourceDecl};

/// The operations, in catalog order.
pub const OPERATIONS: &[&str] = &["count", "gauge", "timing", "histogram", "set"];

/// What went wrong recording a metric.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatsdError {
    /// One metric's lines do not fit in a datagram.
    #[error("the metric is {size} bytes, over the packet limit of {max}")]
    TooLong {
        /// The line length.
        size: usize,
        /// `max_packet`.
        max: usize,
    },
    /// The aggregator holds as many series as it may.
    #[error("the aggregator holds its limit of {max} series")]
    TooManySeries {
        /// The limit.
        max: usize,
    },
    /// The server address cannot be used.
    #[error("statsd address {addr}: {reason}")]
    Address {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
}

impl From<StatsdError> for EffectFailure {
    fn from(e: StatsdError) -> Self {
        let kind = match e {
            StatsdError::TooLong { .. } => "too_large",
            StatsdError::TooManySeries { .. } => "limit",
            StatsdError::Address { .. } => "unavailable",
        };
        EffectFailure {
            kind: kind.into(),
            retryable: matches!(e, StatsdError::Address { .. }),
            message: e.to_string(),
        }
    }
}

/// Where metrics go.
pub trait MetricSink: Send + Sync + 'static {
    /// Records one metric (already sampled in).
    fn record(&self, metric: &Metric) -> Result<(), StatsdError>;
    /// How the sink is doing.
    fn health(&self) -> Health;
}

/// How metrics are named, tagged and sampled.
#[derive(Clone, Debug, PartialEq)]
pub struct Shaping {
    /// Put before every name.
    pub prefix: String,
    /// Added to every metric, before the call's own tags.
    pub tags: Vec<(String, String)>,
    /// The default rate for sampled types.
    pub sample_rate: f64,
    /// Rates by name (without the prefix).
    pub sample_rates: BTreeMap<String, f64>,
}

impl Default for Shaping {
    fn default() -> Self {
        Shaping {
            prefix: String::new(),
            tags: Vec::new(),
            sample_rate: 1.0,
            sample_rates: BTreeMap::new(),
        }
    }
}

impl From<&StatsdConfig> for Shaping {
    fn from(c: &StatsdConfig) -> Self {
        Shaping {
            prefix: c.prefix.clone(),
            tags: c.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            sample_rate: c.sample_rate,
            sample_rates: c.sample_rates.clone(),
        }
    }
}

/// The statsd integration over a sink.
pub struct StatsdIntegration<S> {
    sink: S,
    shaping: Shaping,
}

impl<S: MetricSink> StatsdIntegration<S> {
    /// The integration sending to `sink`.
    pub fn new(sink: S, shaping: Shaping) -> Self {
        StatsdIntegration { sink, shaping }
    }

    /// The sink underneath.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The metric a call describes, before sampling.
    pub fn metric(&self, call: &EffectCall<'_>) -> Result<Metric, EffectFailure> {
        let (kind, value_param) = match call.op {
            "count" => (MetricType::Count, "value"),
            "gauge" => (MetricType::Gauge, "value"),
            "timing" => (MetricType::Timing, "ms"),
            "histogram" => (MetricType::Histogram, "value"),
            "set" => (MetricType::Set, "value"),
            other => {
                return Err(EffectFailure::permanent(
                    "unknown_effect",
                    format!("statsd has no operation {other:?}"),
                ))
            }
        };
        let a = &call.args;
        args::expect_arity(
            &format!("statsd.{}", call.op),
            &["name", value_param, "tags"],
            a,
        )?;
        let bare = args::string(&a[0], "name")?;
        check(line::check_metric_name(bare), "name")?;
        let name = format!("{}{bare}", self.shaping.prefix);
        check(line::check_metric_name(&name), "name")?;
        let value = match (kind, &a[1]) {
            (MetricType::Set, Value::Str(s)) => {
                check(line::check_set_member(s), value_param)?;
                MetricValue::Text(s.clone())
            }
            (MetricType::Set, v) => MetricValue::Int(args::int(v, value_param)?),
            (_, Value::Int(i)) => MetricValue::Int(*i),
            (_, v) => MetricValue::Float(args::number(v, value_param)?),
        };
        if kind == MetricType::Timing && value.as_f64().is_some_and(|v| v < 0.0) {
            return Err(bad(value_param, "a timing must not be negative"));
        }
        let mut tags = self.shaping.tags.clone();
        tags.extend(tags_arg(&a[2])?);
        if tags.len() > line::MAX_TAGS {
            return Err(bad(
                "tags",
                format!("at most {} tags, config tags included", line::MAX_TAGS),
            ));
        }
        let rate = if kind.sampled() {
            self.shaping
                .sample_rates
                .get(bare)
                .copied()
                .unwrap_or(self.shaping.sample_rate)
        } else {
            1.0
        };
        Ok(Metric {
            name,
            kind,
            value,
            rate,
            tags,
        })
    }
}

fn check(r: Result<(), String>, name: &str) -> Result<(), EffectFailure> {
    r.map_err(|why| bad(name, why))
}

/// Tags as `[[k, v], ...]` (what `&[(&str, &str)]` becomes), `{k: v}`,
/// `["k:v", "bare"]`, or null for none.
fn tags_arg(v: &Value) -> Result<Vec<(String, String)>, EffectFailure> {
    let pair = |k: &str, v: &str| -> Result<(String, String), EffectFailure> {
        check(line::check_tag_key(k), "tags")?;
        check(line::check_tag_value(v), "tags")?;
        Ok((k.to_owned(), v.to_owned()))
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| pair(args::string(k, "tags")?, args::string(v, "tags")?))
            .collect(),
        Value::List(items) => items
            .iter()
            .map(|item| match item {
                Value::List(kv) if kv.len() == 2 => {
                    pair(args::string(&kv[0], "tags")?, args::string(&kv[1], "tags")?)
                }
                Value::Str(s) => match s.split_once(':') {
                    Some((k, v)) => pair(k, v),
                    None => pair(s, ""),
                },
                other => Err(bad(
                    "tags",
                    format!(
                        "each tag must be a [key, value] pair or \"key:value\", got {}",
                        other.kind()
                    ),
                )),
            })
            .collect(),
        other => Err(bad(
            "tags",
            format!("expected a list or map of tags, got {}", other.kind()),
        )),
    }
}

impl<S: MetricSink> Integration for StatsdIntegration<S> {
    fn name(&self) -> &'static str {
        "statsd"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn perform(&self, call: EffectCall<'_>) -> Result<Value, EffectFailure> {
        let metric = self.metric(&call)?;
        if line::sampled_in(call.effect_id, &metric.name, metric.rate) {
            self.sink.record(&metric)?;
        }
        Ok(Value::Null)
    }

    async fn health(&self) -> Health {
        self.sink.health()
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        // Sending a datagram takes no connection and no remote quota.
        Vec::new()
    }

    fn summarize(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String {
        summary::call("statsd", call, result)
    }
}
