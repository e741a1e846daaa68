//! The in-process fallback: aggregates metrics the way a statsd server
//! would, so local runs can read them back. Counts are summed (scaled up by
//! 1/rate when sampled, as servers do), gauges keep the last value, timings
//! and histograms keep their samples, sets keep unique members.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use super::line::{Metric, MetricType};
use super::{MetricSink, StatsdError};
use crate::Health;

/// One series: a name and its tags, sorted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// The full metric name.
    pub name: String,
    /// Tags sorted by key then value, so tag order does not split a series.
    pub tags: Vec<(String, String)>,
}

impl SeriesKey {
    /// A key for `name` with `tags` in any order.
    pub fn new(name: &str, tags: &[(&str, &str)]) -> Self {
        let mut tags: Vec<(String, String)> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        tags.sort();
        SeriesKey {
            name: name.to_owned(),
            tags,
        }
    }
}

/// Limits on what the aggregator keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregatorLimits {
    /// The most series across all types; a new one beyond fails.
    pub max_series: usize,
    /// The most samples kept per timing or histogram series (the oldest go first).
    pub max_samples: usize,
    /// The most members kept per set series.
    pub max_set_members: usize,
}

impl Default for AggregatorLimits {
    fn default() -> Self {
        AggregatorLimits {
            max_series: 10_000,
            max_samples: 10_000,
            max_set_members: 10_000,
        }
    }
}

/// Everything aggregated so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aggregates {
    /// Counter totals.
    pub counts: BTreeMap<SeriesKey, f64>,
    /// Last gauge values.
    pub gauges: BTreeMap<SeriesKey, f64>,
    /// Timing samples in milliseconds, oldest first.
    pub timings: BTreeMap<SeriesKey, VecDeque<f64>>,
    /// Histogram samples, oldest first.
    pub histograms: BTreeMap<SeriesKey, VecDeque<f64>>,
    /// Set members.
    pub sets: BTreeMap<SeriesKey, BTreeSet<String>>,
}

impl Aggregates {
    fn series(&self) -> usize {
        self.counts.len()
            + self.gauges.len()
            + self.timings.len()
            + self.histograms.len()
            + self.sets.len()
    }

    fn has(&self, kind: MetricType, key: &SeriesKey) -> bool {
        match kind {
            MetricType::Count => self.counts.contains_key(key),
            MetricType::Gauge => self.gauges.contains_key(key),
            MetricType::Timing => self.timings.contains_key(key),
            MetricType::Histogram => self.histograms.contains_key(key),
            MetricType::Set => self.sets.contains_key(key),
        }
    }
}

/// The in-process aggregator.
#[derive(Default)]
pub struct Aggregator {
    state: Mutex<Aggregates>,
    limits: AggregatorLimits,
}

impl Aggregator {
    /// An empty aggregator with these limits.
    pub fn new(limits: AggregatorLimits) -> Self {
        Aggregator {
            state: Mutex::new(Aggregates::default()),
            limits,
        }
    }

    /// A copy of everything aggregated so far.
    pub fn snapshot(&self) -> Aggregates {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Aggregates> {
        // Aggregates stay consistent between statements; a panic elsewhere
        // must not stop metrics.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MetricSink for Aggregator {
    fn record(&self, m: &Metric) -> Result<(), StatsdError> {
        let mut tags = m.tags.clone();
        tags.sort();
        let key = SeriesKey {
            name: m.name.clone(),
            tags,
        };
        let mut s = self.lock();
        if !s.has(m.kind, &key) && s.series() >= self.limits.max_series {
            return Err(StatsdError::TooManySeries {
                max: self.limits.max_series,
            });
        }
        let value = m.value.as_f64();
        let push = |samples: &mut VecDeque<f64>, v: f64| {
            if samples.len() >= self.limits.max_samples {
                samples.pop_front();
            }
            samples.push_back(v);
        };
        match m.kind {
            MetricType::Count => *s.counts.entry(key).or_default() += value.unwrap_or(0.0) / m.rate,
            MetricType::Gauge => {
                s.gauges.insert(key, value.unwrap_or(0.0));
            }
            MetricType::Timing => push(s.timings.entry(key).or_default(), value.unwrap_or(0.0)),
            MetricType::Histogram => {
                push(s.histograms.entry(key).or_default(), value.unwrap_or(0.0))
            }
            MetricType::Set => {
                let members = s.sets.entry(key).or_default();
                let member = m.value.to_string();
                if members.len() < self.limits.max_set_members || members.contains(&member) {
                    members.insert(member);
                }
            }
        }
        Ok(())
    }

    fn health(&self) -> Health {
        Health::up(format!(
            "embedded in-process aggregator, {} series",
            self.lock().series()
        ))
    }
}
