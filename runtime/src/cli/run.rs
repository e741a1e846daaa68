//! `drover run WORKFLOW --input JSON`: an embedded node in this process, one
//! run to its end, then the result and every effect with its timing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use drover_ir::Value;

use super::{EXIT_BAD_INPUT, EXIT_NODE, EXIT_RUN_FAILED};
use crate::node::{IntegrationEffects, Node, NodeConfig, NodeError, Outcome, RunInfo, TraceItem};
use crate::registry;

/// Arguments of `drover run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow to run (linked into this binary).
    workflow: String,
    /// The input as JSON: the single parameter's value, an array of all
    /// parameters, or an object keyed by parameter name.
    #[arg(long, default_value = "null")]
    input: String,
    /// The node's data directory; a temporary one when not given.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Milliseconds per tick. Trace timings are journaled in ticks, so the
    /// one-shot default is fine-grained; a long-lived node uses 10.
    #[arg(long, default_value_t = 1)]
    tick_ms: u64,
    /// A resource capacity, as NAME=UNITS (repeatable).
    #[arg(long = "resource", value_name = "NAME=UNITS")]
    resources: Vec<String>,
    /// The integrations' config (TOML). Sections present connect to real
    /// servers; the rest use embedded fallbacks. `DROVER_*` environment
    /// variables apply over it.
    #[arg(long, env = "DROVER_CONFIG")]
    config: Option<PathBuf>,
}

/// Why `drover run` stopped early.
enum Failure {
    BadInput(String),
    Node(NodeError),
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::UnknownWorkflow(_) | NodeError::BadInput(_) => {
                Failure::BadInput(e.to_string())
            }
            other => Failure::Node(other),
        }
    }
}

struct Finished {
    info: RunInfo,
    outcome: Outcome,
    trace: Vec<TraceItem>,
    wall_ms: u128,
    tick_ms: u64,
}

impl RunArgs {
    /// Runs the command; returns the exit code.
    pub fn execute(self, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
        let json = self.json;
        let result = self.run();
        match result {
            Ok(done) => {
                let failed = is_failure(&done.outcome);
                let text = if json { as_json(&done) } else { human(&done) };
                // A closed pipe (`| head`) is not an error of the run.
                let _ = out.write_all(text.as_bytes());
                if failed {
                    EXIT_RUN_FAILED
                } else {
                    0
                }
            }
            Err(Failure::BadInput(m)) => {
                let _ = writeln!(err, "drover run: {m}");
                EXIT_BAD_INPUT
            }
            Err(Failure::Node(e)) => {
                let _ = writeln!(err, "drover run: {e}");
                EXIT_NODE
            }
        }
    }

    fn run(self) -> Result<Finished, Failure> {
        let def = registry::workflow(&self.workflow).ok_or_else(|| {
            let mut known: Vec<&str> = registry::workflows().map(|w| w.name).collect();
            known.sort_unstable();
            Failure::BadInput(format!(
                "no workflow `{}` is linked into this binary (known: {})",
                self.workflow,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        let input: serde_json::Value = serde_json::from_str(&self.input)
            .map_err(|e| Failure::BadInput(format!("--input is not JSON: {e}")))?;
        let names: Vec<&str> = def.params.iter().map(|(n, _)| *n).collect();
        let args = arguments(&names, input).map_err(Failure::BadInput)?;
        let mut resources = BTreeMap::new();
        for r in &self.resources {
            let (name, units) = r
                .split_once('=')
                .and_then(|(n, u)| Some((n.trim(), u.trim().parse::<u32>().ok()?)))
                .ok_or_else(|| Failure::BadInput(format!("--resource {r:?} is not NAME=UNITS")))?;
            resources.insert(name.to_owned(), units);
        }
        if self.tick_ms == 0 {
            return Err(Failure::BadInput("--tick-ms must be at least 1".into()));
        }
        // Kept alive until the node is shut down; removed afterwards.
        let temp;
        let data_dir = match self.data {
            Some(d) => d,
            None => {
                temp = tempfile::tempdir()
                    .map_err(|e| Failure::Node(NodeError::Refused(format!("temp dir: {e}"))))?;
                temp.path().to_owned()
            }
        };
        let mut config = NodeConfig::new(data_dir);
        config.tick_ms = self.tick_ms;
        config.resources = resources;
        config.log_to_stderr = true;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Failure::Node(NodeError::Refused(format!("tokio runtime: {e}"))))?;
        let workflow = self.workflow;
        let tick_ms = self.tick_ms;
        let config_path = self.config;
        runtime.block_on(async move {
            let started = Instant::now();
            let effects = IntegrationEffects::from_config_file(config_path.as_deref())
                .await
                .map_err(|e| Failure::BadInput(e.to_string()))?;
            let (node, _report) = Node::open_with(config, Arc::new(effects)).await?;
            let result = async {
                let run = node.start(&workflow, args, None).await?;
                let outcome = node.result(run).await?;
                let info = node.status(run).await?;
                let trace = node.trace(run).await?;
                Ok::<_, NodeError>(Finished {
                    info,
                    outcome,
                    trace,
                    wall_ms: started.elapsed().as_millis(),
                    tick_ms,
                })
            }
            .await;
            node.shutdown().await;
            Ok(result?)
        })
    }
}

/// The workflow's arguments from the input JSON.
pub(crate) fn arguments(names: &[&str], input: serde_json::Value) -> Result<Vec<Value>, String> {
    use serde_json::Value as J;
    match (names.len(), input) {
        (0, J::Null) => Ok(vec![]),
        (0, J::Array(a)) if a.is_empty() => Ok(vec![]),
        (0, other) => Err(format!("the workflow takes no input, got {other}")),
        (1, J::Object(mut o)) if o.len() == 1 && o.contains_key(names[0]) => {
            Ok(vec![Value::from_json(
                o.remove(names[0]).unwrap_or(J::Null),
            )])
        }
        (1, v) => Ok(vec![Value::from_json(v)]),
        (n, J::Array(a)) if a.len() == n => Ok(a.into_iter().map(Value::from_json).collect()),
        (_, J::Object(mut o)) => {
            let args = names
                .iter()
                .map(|n| {
                    o.remove(*n)
                        .map(Value::from_json)
                        .ok_or_else(|| format!("the input has no `{n}`"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            match o.keys().next() {
                Some(extra) => Err(format!("the workflow has no parameter `{extra}`")),
                None => Ok(args),
            }
        }
        (n, _) => Err(format!(
            "the workflow takes {n} parameters ({}): give an array or an object",
            names.join(", ")
        )),
    }
}

/// A failed run, or one whose workflow returned `Err`.
fn is_failure(o: &Outcome) -> bool {
    match o {
        Outcome::Failed(_) => true,
        Outcome::Completed(Value::Variant(v)) => v.tag == "Err",
        Outcome::Completed(_) => false,
    }
}

fn outcome_json(o: &Outcome) -> serde_json::Value {
    match o {
        Outcome::Completed(v) => serde_json::json!({ "completed": v.to_json() }),
        Outcome::Failed(e) => serde_json::json!({
            "failed": { "kind": e.kind.name(), "message": e.message, "value": e.value.to_json() }
        }),
    }
}

fn as_json(d: &Finished) -> String {
    let v = serde_json::json!({
        "run": d.info.run.to_string(),
        "workflow": d.info.workflow,
        "program": d.info.program.to_string(),
        "outcome": outcome_json(&d.outcome),
        "ok": !is_failure(&d.outcome),
        "journal_len": d.info.journal_len,
        "wall_ms": d.wall_ms as u64,
        "trace": d.trace,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

fn human(d: &Finished) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} of {} (program {})",
        d.info.run,
        d.info.workflow,
        d.info.program.short()
    );
    let _ = writeln!(out, "{:>8}  {:>7}  effect", "at", "took");
    let first = d.trace.first().map_or(0, |t| t.tick);
    for t in &d.trace {
        let took = t.duration_ms.map_or("…".to_owned(), |ms| format!("{ms}ms"));
        let retry = if t.attempt > 1 {
            format!(" (attempt {})", t.attempt)
        } else {
            String::new()
        };
        let mark = if t.result.is_some() && !t.ok {
            "✗ "
        } else {
            ""
        };
        // An integration's summary names the effect, the request and the
        // answer, with secrets redacted; other effects show their arguments.
        let what = match (&t.summary, &t.result) {
            (Some(summary), _) => format!("{mark}{summary}"),
            (None, None) => format!("{}({}) (no result)", t.effect, t.args),
            (None, Some(r)) => {
                let arrow = if t.ok { "→" } else { "✗" };
                format!("{}({}) {arrow} {r}", t.effect, t.args)
            }
        };
        let _ = writeln!(
            out,
            "{:>6}ms  {took:>7}  {what}{retry}",
            t.tick.saturating_sub(first) * d.tick_ms,
        );
    }
    let _ = writeln!(out);
    match &d.outcome {
        Outcome::Completed(v) => {
            let json = serde_json::to_string_pretty(&v.to_json()).unwrap_or_default();
            let _ = writeln!(out, "result: {json}");
        }
        Outcome::Failed(e) => {
            let _ = writeln!(out, "failed: {}: {}", e.kind.name(), e.message);
        }
    }
    let n = d.trace.len();
    let _ = writeln!(
        out,
        "{n} effect attempt{}, {} journal entries, {}ms",
        if n == 1 { "" } else { "s" },
        d.info.journal_len,
        d.wall_ms
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_maps_to_parameters() {
        let j = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(arguments(&[], j("null")), Ok(vec![]));
        assert!(arguments(&[], j("1")).is_err());
        assert_eq!(arguments(&["x"], j("5")), Ok(vec![Value::Int(5)]));
        assert_eq!(arguments(&["x"], j(r#"{"x": 5}"#)), Ok(vec![Value::Int(5)]));
        assert_eq!(
            arguments(&["a", "b"], j(r#"[1, "z"]"#)),
            Ok(vec![Value::Int(1), Value::Str("z".into())])
        );
        assert_eq!(
            arguments(&["a", "b"], j(r#"{"b": 2, "a": 1}"#)),
            Ok(vec![Value::Int(1), Value::Int(2)])
        );
        assert!(arguments(&["a", "b"], j(r#"{"a": 1}"#)).is_err());
        assert!(arguments(&["a", "b"], j(r#"{"a": 1, "b": 2, "c": 3}"#)).is_err());
        assert!(arguments(&["a", "b"], j("7")).is_err());
    }
}
