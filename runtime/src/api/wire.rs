//! The JSON bodies of the node API, shared by the server and the client.

use serde::{Deserialize, Serialize};

use crate::node::{Outcome, RunInfo, RunStatus, RunSummary, TraceItem};

/// `POST /v1/workflows/{name}/runs`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StartRequest {
    /// The input as JSON: the single parameter's value, an array of all
    /// parameters, or an object keyed by parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// The arguments one by one, instead of `input` (what typed clients send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<serde_json::Value>>,
    /// The idempotency key: the same key gives the same run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The program hash (hex) the caller compiled against; refused with 409
    /// when another program is deployed for the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
}

/// The answer to a start: 201 when created, 200 when the key named an
/// existing run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Started {
    /// The run (`r-<n>`).
    pub run: String,
    /// Whether this request created it.
    pub created: bool,
}

/// How a run ended, as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeJson {
    /// It completed with this value (`{"Ok": ..}` / `{"Err": ..}` for a
    /// workflow returning `Result`).
    Completed(serde_json::Value),
    /// The interpreter failed it (cancelled, a limit, an unwrap of `Err`).
    Failed {
        /// The error kind (`cancelled`, `limit`, ...).
        kind: String,
        /// What happened.
        message: String,
    },
}

impl OutcomeJson {
    /// The JSON form of an outcome.
    pub fn of(o: &Outcome) -> OutcomeJson {
        match o {
            Outcome::Completed(v) => OutcomeJson::Completed(v.to_json()),
            Outcome::Failed(e) => OutcomeJson::Failed {
                kind: e.kind.name().to_owned(),
                message: e.message.clone(),
            },
        }
    }

    /// Whether the run succeeded: it completed, and not with `{"Err": ..}`.
    pub fn ok(&self) -> bool {
        match self {
            OutcomeJson::Completed(serde_json::Value::Object(o)) => {
                !(o.len() == 1 && o.contains_key("Err"))
            }
            OutcomeJson::Completed(_) => true,
            OutcomeJson::Failed { .. } => false,
        }
    }
}

/// `GET /v1/runs/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The run.
    pub run: String,
    /// Its workflow.
    pub workflow: String,
    /// The program (hex hash) it is pinned to.
    pub program: String,
    /// The parent run and effect id, for a child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<(String, u64)>,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// When it started (Unix ms).
    pub started_at_ms: u64,
    /// How it ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeJson>,
    /// Journal entries so far.
    pub journal_len: u64,
}

impl Status {
    /// The JSON form of a run's status.
    pub fn of(info: &RunInfo) -> Status {
        let outcome = info.outcome.as_ref().map(OutcomeJson::of);
        let status = match &outcome {
            None => "running",
            Some(o) if o.ok() => "completed",
            Some(_) => "failed",
        };
        Status {
            run: info.run.to_string(),
            workflow: info.workflow.clone(),
            program: info.program.to_string(),
            parent: info.parent.map(|(r, id)| (r.to_string(), id)),
            status: status.to_owned(),
            started_at_ms: info.started_at_ms,
            outcome,
            journal_len: info.journal_len,
        }
    }
}

/// `GET /v1/runs/{id}/result`: 200 with the outcome once the run ended, 202
/// with `outcome: null` when the wait ran out first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The run.
    pub run: String,
    /// How it ended; `None` while it runs.
    pub outcome: Option<OutcomeJson>,
    /// Whether it succeeded (false while it runs).
    pub ok: bool,
}

/// `POST /v1/runs/{id}/cancel`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Why; the run fails with `Cancelled` and this message.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/runs/{id}/signal`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignalRequest {
    /// The signal's name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: serde_json::Value,
}

/// One run of `GET /v1/runs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// The run.
    pub run: String,
    /// Its workflow.
    pub workflow: String,
    /// Its program (hex hash).
    pub program: String,
    /// `running` or `finished`.
    pub status: String,
    /// When it started (Unix ms).
    pub started_at_ms: u64,
    /// When it finished (Unix ms), if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// Journal entries.
    pub journal_len: u64,
}

impl RunRow {
    /// The JSON form of a listed run.
    pub fn of(s: &RunSummary) -> RunRow {
        RunRow {
            run: s.run.to_string(),
            workflow: s.workflow.clone(),
            program: s.program.to_string(),
            status: status_name(s.status).to_owned(),
            started_at_ms: s.started_at_ms,
            finished_at_ms: s.finished_at_ms,
            journal_len: s.journal_len,
        }
    }
}

/// The name of a listed status, as `?status=` takes it.
pub fn status_name(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "running",
        RunStatus::Finished => "finished",
    }
}

/// `GET /v1/runs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunList {
    /// The runs, in increasing id order.
    pub runs: Vec<RunRow>,
    /// The `after` cursor for the next page, when this one was full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /v1/runs/{id}/trace`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The run.
    pub run: String,
    /// The workflow.
    pub workflow: String,
    /// The node that performed the effects.
    pub node: String,
    /// Milliseconds per tick (trace timings are journaled in ticks).
    pub tick_ms: u64,
    /// Every effect attempt, in the order it was performed.
    pub items: Vec<TraceRow>,
}

/// One effect attempt of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceRow {
    /// The effect id (the run's sequence number at the perform).
    pub id: u64,
    /// The effect, activity, or `child:<workflow>`.
    pub effect: String,
    /// The attempt, from 1.
    pub attempt: u32,
    /// The arguments, shortened; empty when `summary` is given.
    pub args: String,
    /// The integration's summary of request and answer, secrets redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The result, shortened; `None` while no result is journaled.
    pub result: Option<String>,
    /// Whether the result was `Ok`.
    pub ok: bool,
    /// The tick it was performed at.
    pub tick: u64,
    /// The tick its result was journaled at.
    pub done_tick: Option<u64>,
    /// Time from perform to journaled result.
    pub duration_ms: Option<u64>,
}

impl TraceRow {
    /// The JSON form of a trace item.
    pub fn of(t: &TraceItem) -> TraceRow {
        TraceRow {
            id: t.id,
            effect: t.effect.clone(),
            attempt: t.attempt,
            args: t.args.clone(),
            summary: t.summary.clone(),
            result: t.result.clone(),
            ok: t.ok,
            tick: t.tick,
            done_tick: t.done_tick,
            duration_ms: t.duration_ms,
        }
    }
}

/// `POST /v1/deploy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    /// The program's hash (hex).
    pub program: String,
    /// The workflows new starts now take from it.
    pub workflows: Vec<String>,
}

/// `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The node's name (its listen address).
    pub node: String,
    /// The drover version.
    pub version: String,
    /// Workflows deployed on the node.
    pub workflows: Vec<String>,
}

/// `GET /v1/runs/{id}/journal`, as MessagePack: everything `drover replay`
/// needs besides the program bytes (`GET /v1/programs/{hash}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalDump {
    /// The run.
    pub run: String,
    /// Its workflow.
    pub workflow: String,
    /// The program (hex hash) it is pinned to.
    pub program: String,
    /// The node's milliseconds per tick, which the interpreter's timers use.
    pub tick_ms: u64,
    /// The journal, in order.
    pub entries: Vec<drover_interpreter::JournalEntry>,
}

/// The body of every error answer: `{"error": {"kind", "message"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's kind (stable, for scripts) and message (for people).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `bad_request`, `unknown_run`, `unknown_workflow`, `not_running`, ...
    pub kind: String,
    /// What happened.
    pub message: String,
}
