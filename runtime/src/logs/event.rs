//! [`LogEvent`]: one structured event, written as one line of JSON.
//!
//! Every step, effect, run transition, node event and user `log` call
//! becomes one of these. The typed fields are the ones filters and the
//! control panel rely on; anything else a producer adds survives a round
//! trip in [`LogEvent::extra`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::log::Level;

/// When an event happened, as the producer wrote it: RFC 3339 text or
/// milliseconds since the Unix epoch.
///
/// The text is kept as written rather than parsed, so a reader never drops
/// an event over a clock format it does not know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    /// Milliseconds since the Unix epoch.
    Millis(i64),
    /// RFC 3339 text, e.g. `2024-05-01T12:00:00.123Z`.
    Rfc3339(String),
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timestamp::Millis(ms) => write!(f, "{ms}"),
            Timestamp::Rfc3339(s) => f.write_str(s),
        }
    }
}

/// What produced an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A workflow step (an instruction or a group of them) ran.
    Step,
    /// An effect was started or completed.
    Effect,
    /// A run started, finished, failed or was cancelled.
    Run,
    /// A user `log` call.
    Log,
    /// Something about a node rather than a run.
    Node,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 5] = [
        EventKind::Step,
        EventKind::Effect,
        EventKind::Run,
        EventKind::Log,
        EventKind::Node,
    ];

    /// The name used in JSON and in filters.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Step => "step",
            EventKind::Effect => "effect",
            EventKind::Run => "run",
            EventKind::Log => "log",
            EventKind::Node => "node",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The JSON keys of the typed fields; [`LogEvent::extra`] never holds them,
/// so a serialized event cannot carry a key twice.
pub const TYPED_KEYS: [&str; 14] = [
    "ts",
    "level",
    "kind",
    "run",
    "workflow",
    "program",
    "inst",
    "span",
    "node",
    "duration_us",
    "msg",
    "effect",
    "input",
    "fields",
];

/// One structured log event, serialized as one JSON line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    /// When it happened.
    pub ts: Timestamp,
    /// How severe it is.
    #[serde(with = "level_name")]
    pub level: Level,
    /// What produced it.
    pub kind: EventKind,
    /// The run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The workflow's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The program hash, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The instruction address, e.g. `w0:bb2:3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inst: Option<String>,
    /// The source position, `file:line:col`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<String>,
    /// The node that emitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How long the step or effect took, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// The message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// The effect's name, for effect events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// The run's input, so that filters can select by it. A `null` input
    /// reads back as `Some(Value::Null)`, as it was written.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub input: Option<Value>,
    /// The user's fields from `log`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    // Private so that `with_extra` can keep typed keys out of it.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl LogEvent {
    /// An event with only the required fields set; add the rest with the
    /// `with_*` methods.
    pub fn new(ts: Timestamp, level: Level, kind: EventKind) -> Self {
        LogEvent {
            ts,
            level,
            kind,
            run: None,
            workflow: None,
            program: None,
            inst: None,
            span: None,
            node: None,
            duration_us: None,
            msg: None,
            effect: None,
            input: None,
            fields: Map::new(),
            extra: Map::new(),
        }
    }

    /// Sets the run id.
    pub fn with_run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }

    /// Sets the workflow's name.
    pub fn with_workflow(mut self, workflow: impl Into<String>) -> Self {
        self.workflow = Some(workflow.into());
        self
    }

    /// Sets the program hash (hex).
    pub fn with_program(mut self, program: impl Into<String>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Sets the instruction address.
    pub fn with_inst(mut self, inst: impl Into<String>) -> Self {
        self.inst = Some(inst.into());
        self
    }

    /// Sets the source position.
    pub fn with_span(mut self, span: impl Into<String>) -> Self {
        self.span = Some(span.into());
        self
    }

    /// Sets the node.
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Sets the duration in microseconds.
    pub fn with_duration_us(mut self, duration_us: u64) -> Self {
        self.duration_us = Some(duration_us);
        self
    }

    /// Sets the message.
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }

    /// Sets the effect's name.
    pub fn with_effect(mut self, effect: impl Into<String>) -> Self {
        self.effect = Some(effect.into());
        self
    }

    /// Sets the run's input.
    pub fn with_input(mut self, input: Value) -> Self {
        self.input = Some(input);
        self
    }

    /// Adds one user field.
    pub fn with_field(mut self, key: impl Into<String>, value: Value) -> Self {
        self.fields.insert(key.into(), value);
        self
    }

    /// Adds one extra top-level key; a key of a typed field (see
    /// [`TYPED_KEYS`]) is ignored, since it would be written twice.
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Self {
        let key = key.into();
        if !TYPED_KEYS.contains(&key.as_str()) {
            self.extra.insert(key, value);
        }
        self
    }

    /// Top-level keys beyond the typed fields.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// The event as one line of JSON, without the trailing newline.
    pub fn to_json_line(&self) -> String {
        // Every part is a string, a number or a `serde_json::Value`, whose
        // maps have string keys, so serializing cannot fail; should it ever,
        // the line still says what happened rather than vanishing.
        serde_json::to_string(self).unwrap_or_else(|e| {
            let mut fallback = Map::new();
            fallback.insert("ts".into(), Value::from(self.ts.to_string()));
            fallback.insert("level".into(), Value::from(self.level.name()));
            fallback.insert("kind".into(), Value::from(self.kind.name()));
            fallback.insert("msg".into(), Value::from(format!("unserializable: {e}")));
            Value::Object(fallback).to_string()
        })
    }

    /// Reads one line written by [`LogEvent::to_json_line`] (or by any
    /// producer of the same shape).
    pub fn from_json_line(line: &str) -> Result<LogEvent, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// A key that is present, even as `null`, is `Some`; serde's default for
/// `Option` would read `null` as absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Levels as their lower-case names; reading also accepts any case, since
/// other log shippers write `WARN`.
mod level_name {
    use super::*;

    pub fn serialize<S: Serializer>(level: &Level, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(level.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
        let name = String::deserialize(d)?;
        parse_level(&name).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "unknown level `{name}`: expected trace, debug, info, warn or error"
            ))
        })
    }
}

/// A level from its name, in any case.
pub(crate) fn parse_level(name: &str) -> Option<Level> {
    Level::ALL
        .into_iter()
        .find(|l| l.name().eq_ignore_ascii_case(name))
}
