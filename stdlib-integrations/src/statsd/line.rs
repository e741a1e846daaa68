//! The statsd line protocol with DogStatsD tags:
//! `name:value|type[|@rate][|#k:v,k2:v2]`, one metric per line, several
//! lines per datagram separated by `\n`.

use std::fmt::Write as _;

/// The longest metric name, prefix included, in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// The most tags on one metric, config tags included.
pub const MAX_TAGS: usize = 64;
/// The longest tag key or value, in bytes.
pub const MAX_TAG_BYTES: usize = 200;

/// A metric type and its code in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricType {
    /// `c`: added to a counter.
    Count,
    /// `g`: sets a gauge.
    Gauge,
    /// `ms`: a timing in milliseconds.
    Timing,
    /// `h`: a histogram sample.
    Histogram,
    /// `s`: a member of a set of unique values.
    Set,
}

impl MetricType {
    /// The protocol's code.
    pub fn code(self) -> &'static str {
        match self {
            MetricType::Count => "c",
            MetricType::Gauge => "g",
            MetricType::Timing => "ms",
            MetricType::Histogram => "h",
            MetricType::Set => "s",
        }
    }

    /// Whether a sample rate applies (servers scale these back up by 1/rate).
    pub fn sampled(self) -> bool {
        matches!(
            self,
            MetricType::Count | MetricType::Timing | MetricType::Histogram
        )
    }
}

/// A metric's value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// A whole number, printed without a point.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// A set member given as a string.
    Text(String),
}

impl MetricValue {
    /// As a float, for aggregation; `None` for text.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MetricValue::Int(i) => Some(*i as f64),
            MetricValue::Float(f) => Some(*f),
            MetricValue::Text(_) => None,
        }
    }

    fn is_negative(&self) -> bool {
        self.as_f64().is_some_and(|v| v < 0.0)
    }
}

impl std::fmt::Display for MetricValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricValue::Int(i) => write!(f, "{i}"),
            // Rust prints floats without exponents, which every server parses.
            MetricValue::Float(x) => write!(f, "{x}"),
            MetricValue::Text(s) => f.write_str(s),
        }
    }
}

/// One metric, validated, ready to print.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The full name, prefix included.
    pub name: String,
    /// The type.
    pub kind: MetricType,
    /// The value.
    pub value: MetricValue,
    /// The sample rate it was kept at: 1.0 when not sampled.
    pub rate: f64,
    /// `(key, value)` tags in order: config tags, then the call's.
    pub tags: Vec<(String, String)>,
}

impl Metric {
    /// The protocol lines for this metric, `\n`-separated.
    ///
    /// A negative gauge is sent as `name:0|g` then `name:-v|g`: plain statsd
    /// reads a signed gauge value as a change, not a new value, and this is
    /// its documented way to set a negative one (DogStatsD ends at the same value).
    pub fn lines(&self) -> String {
        let mut out = String::new();
        if self.kind == MetricType::Gauge && self.value.is_negative() {
            self.write_line(&mut out, &MetricValue::Int(0));
            out.push('\n');
        }
        self.write_line(&mut out, &self.value);
        out
    }

    fn write_line(&self, out: &mut String, value: &MetricValue) {
        // Writing to a String cannot fail.
        let _ = write!(out, "{}:{}|{}", self.name, value, self.kind.code());
        if self.rate < 1.0 {
            let _ = write!(out, "|@{}", self.rate);
        }
        for (i, (k, v)) in self.tags.iter().enumerate() {
            out.push_str(if i == 0 { "|#" } else { "," });
            out.push_str(k);
            if !v.is_empty() {
                out.push(':');
                out.push_str(v);
            }
        }
    }
}

/// Checks a metric name (or prefix): 1 to 200 bytes of letters, digits,
/// `_`, `.` and `-`, which every statsd flavour accepts and which cannot
/// break the line syntax.
pub fn check_metric_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "a metric name must be 1 to {MAX_NAME_BYTES} bytes, got {}",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        Some(c) => Err(format!(
            "a metric name may hold letters, digits, '_', '.' and '-', not {c:?}"
        )),
        None => Ok(()),
    }
}

fn check_tag_text(s: &str, what: &str, also_forbidden: &[char]) -> Result<(), String> {
    if s.len() > MAX_TAG_BYTES {
        return Err(format!(
            "a tag {what} must be at most {MAX_TAG_BYTES} bytes"
        ));
    }
    match s.chars().find(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, ',' | '|' | '#')
            || also_forbidden.contains(c)
    }) {
        Some(c) => Err(format!("a tag {what} must not contain {c:?}")),
        None => Ok(()),
    }
}

/// Checks a tag key: non-empty, no `:`, `,`, `|`, `#`, `@` or whitespace.
pub fn check_tag_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("a tag key must not be empty".into());
    }
    check_tag_text(k, "key", &[':', '@'])
}

/// Checks a tag value: no `,`, `|`, `#` or whitespace (`:` is allowed, as in DogStatsD).
pub fn check_tag_value(v: &str) -> Result<(), String> {
    check_tag_text(v, "value", &[])
}

/// Checks a set member given as text: no `|`, `:`, `\n` or whitespace.
pub fn check_set_member(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_NAME_BYTES {
        return Err(format!("a set member must be 1 to {MAX_NAME_BYTES} bytes"));
    }
    match s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '|' | ':' | '#' | '@'))
    {
        Some(c) => Err(format!("a set member must not contain {c:?}")),
        None => Ok(()),
    }
}

/// Whether the effect `effect_id` keeps metric `name` at `rate`.
///
/// Deterministic: the decision hashes the effect id and the name, so a retry
/// or a replay of the same effect decides the same way, and over many
/// effects about `rate` of them are kept.
pub fn sampled_in(effect_id: &str, name: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let mut h = blake3::Hasher::new();
    h.update(effect_id.as_bytes());
    h.update(&[0]);
    h.update(name.as_bytes());
    let bytes = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    // The top 53 bits as a uniform float in [0, 1).
    let x = (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    x < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(kind: MetricType, value: MetricValue) -> Metric {
        Metric {
            name: "drover.jobs".into(),
            kind,
            value,
            rate: 1.0,
            tags: vec![],
        }
    }

    #[test]
    fn lines_follow_the_protocol() {
        let mut m = metric(MetricType::Count, MetricValue::Int(3));
        assert_eq!(m.lines(), "drover.jobs:3|c");
        m.rate = 0.25;
        m.tags = vec![("env".into(), "prod".into()), ("az".into(), "a:1".into())];
        assert_eq!(m.lines(), "drover.jobs:3|c|@0.25|#env:prod,az:a:1");
        let t = metric(MetricType::Timing, MetricValue::Float(12.5));
        assert_eq!(t.lines(), "drover.jobs:12.5|ms");
        let g = metric(MetricType::Gauge, MetricValue::Float(-2.5));
        assert_eq!(g.lines(), "drover.jobs:0|g\ndrover.jobs:-2.5|g");
        let s = metric(MetricType::Set, MetricValue::Text("user42".into()));
        assert_eq!(s.lines(), "drover.jobs:user42|s");
    }

    #[test]
    fn names_and_tags_that_would_break_lines_are_refused() {
        assert!(check_metric_name("a.b-c_d9").is_ok());
        for bad in ["", "a:b", "a|b", "a b", "a\nb", "a@b", "a#b"] {
            assert!(check_metric_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_tag_key("env").is_ok());
        assert!(check_tag_key("a:b").is_err());
        assert!(check_tag_value("a:b").is_ok());
        assert!(check_tag_value("a,b").is_err());
        assert!(check_tag_value("a|b").is_err());
    }

    #[test]
    fn sampling_is_deterministic_and_close_to_the_rate() {
        let kept = (0..10_000)
            .filter(|i| sampled_in(&format!("run/{i}"), "m", 0.3))
            .count();
        assert!((2_700..3_300).contains(&kept), "{kept}");
        for i in 0..100 {
            let id = format!("r/{i}");
            assert_eq!(sampled_in(&id, "m", 0.5), sampled_in(&id, "m", 0.5));
        }
        assert!(sampled_in("x", "m", 1.0));
    }
}
