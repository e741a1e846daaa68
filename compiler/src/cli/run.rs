//! `dslc run`: runs a workflow in the interpreter against scripted effect
//! responses on virtual time, and prints every command, the result and the
//! trace.

use std::fmt::Write;
use std::path::PathBuf;

use clap::Args;
use drover_interpreter::{Config, Program};
use drover_ir::{Module, Value};
use miette::{NamedSource, SourceSpan};

use super::asm::plural;
use super::load;
use super::output::{eprint_diag, print_json, print_out};
use super::Failure;
use crate::scripted::{self, Outcome, Script};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A `.dasm` or `.dbc` file.
    file: PathBuf,
    /// The workflow to run.
    workflow: String,
    /// The input as JSON or a Drover literal (`#Ok(5)`): the single
    /// parameter's value, or an array of all parameters, or an object keyed
    /// by parameter name.
    #[arg(long, default_value = "null")]
    input: String,
    /// A JSON file of scripted effect responses: {"effect": {"ok": VALUE} |
    /// {"lit": "DROVER LITERAL"} | {"err": {"kind": .., "message": ..,
    /// "retryable": bool}} | [..], ..}; add "delay_ms" to make an effect
    /// take virtual time. `#[pure]` fns are answered the same way.
    #[arg(long)]
    effects: Option<PathBuf>,
    /// Send a signal after the start, as NAME=JSON (repeatable).
    #[arg(long = "signal", value_name = "NAME=JSON")]
    signals: Vec<String>,
    /// Milliseconds per tick of virtual time.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// A bad responses file, pointing into its text.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("invalid effect responses file: {message}")]
#[diagnostic(
    code(dslc::run::responses),
    help("expected an object mapping effect names to {{\"ok\": VALUE}}, {{\"lit\": \"#Variant(..)\"}} or {{\"err\": {{\"kind\": .., \"message\": .., \"retryable\": BOOL}}}}, or to a list of those")
)]
struct ResponsesError {
    message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    at: SourceSpan,
}

impl RunArgs {
    pub fn execute(self) -> Result<(), Failure> {
        let loaded = load::load(&self.file)?;
        loaded.verify()?;
        loaded.workflow(&self.workflow)?;
        let args = input_args(&loaded.module, &self.workflow, &self.input)?;
        let signals = self.parse_signals()?;
        let mut script = self.load_script()?;
        let program = Program::new(loaded.module.clone())
            .map_err(|e| Failure::Message(format!("cannot load the program: {e}")))?
            .with_pure(script.pure_fns());
        let config = Config {
            tick_ms: self.tick_ms.max(1),
            ..Config::default()
        };
        let run = scripted::run(
            &program,
            &self.workflow,
            args,
            &signals,
            &mut script,
            config,
        )
        .map_err(|e| Failure::Message(format!("interpreter error: {e}")))?;
        let hash = loaded
            .bytes
            .as_deref()
            .map(drover_ir::wire::hash_bytes)
            .unwrap_or_else(|| loaded.module.hash());
        if self.json {
            let (status, result, error) = match &run.outcome {
                Outcome::Completed(v) => ("completed", Some(v.to_json()), None),
                Outcome::Failed(e) => ("failed", None, Some(scripted::failure_text(&program, e))),
                Outcome::Stuck(e) => ("stuck", None, Some(e.clone())),
            };
            print_json(&serde_json::json!({
                "workflow": self.workflow,
                "module": hash.to_string(),
                "status": status,
                "result": result,
                "error": error,
                "effects": run.effects,
                "retries": run.retries,
                "timers": run.timers,
                "virtual_ms": run.end_ms,
                "trace": run.trace,
            }))?;
        } else {
            print_out(&human(&program, &self.workflow, &hash.short(), &run))?;
        }
        match run.outcome {
            Outcome::Completed(_) => Ok(()),
            _ => Err(Failure::RunFailed),
        }
    }

    fn parse_signals(&self) -> Result<Vec<(String, Value)>, Failure> {
        self.signals
            .iter()
            .map(|s| {
                let (name, json) = s.split_once('=').ok_or_else(|| {
                    Failure::Message(format!("--signal `{s}` should be NAME=JSON"))
                })?;
                let value: serde_json::Value = serde_json::from_str(json)
                    .map_err(|e| Failure::Message(format!("--signal {name}: invalid JSON: {e}")))?;
                Ok((name.to_owned(), Value::from_json(value)))
            })
            .collect()
    }

    fn load_script(&self) -> Result<Script, Failure> {
        let Some(path) = &self.effects else {
            return Ok(Script::default());
        };
        let bytes = load::read(path)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Script::from_json(&text).map_err(|e| {
            let at = offset_of(&text, e.line(), e.column());
            eprint_diag(&ResponsesError {
                message: e.to_string(),
                src: NamedSource::new(path.display().to_string(), text.clone()),
                at: at.into(),
            });
            Failure::Rejected
        })
    }
}

fn human(program: &Program, workflow: &str, hash: &str, run: &scripted::ScriptedRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run {workflow} (module {hash})");
    let _ = writeln!(out, "{:>8}  {:<9} detail", "time", "what");
    for l in &run.trace {
        let indent = "  ".repeat(l.depth);
        let at =
            l.at.as_deref()
                .map(|a| format!("  @ {a}"))
                .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>6}ms  {indent}{:<9} {}{at}",
            l.time_ms,
            l.kind.name(),
            l.text
        );
    }
    let _ = writeln!(out);
    match &run.outcome {
        Outcome::Completed(v) => {
            let json = serde_json::to_string_pretty(&v.to_json()).unwrap_or_default();
            let _ = writeln!(out, "result: {json}");
        }
        Outcome::Failed(e) => {
            let _ = writeln!(out, "failed: {}", scripted::failure_text(program, e));
        }
        Outcome::Stuck(e) => {
            let _ = writeln!(out, "stuck: {e}");
        }
    }
    let _ = writeln!(
        out,
        "{} effect attempt{} ({} retr{}), {} timer{}, {}ms of virtual time",
        run.effects,
        plural(run.effects),
        run.retries,
        if run.retries == 1 { "y" } else { "ies" },
        run.timers,
        plural(run.timers),
        run.end_ms
    );
    out
}

/// The 0-based byte offset of a 1-based line and column.
fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + col.saturating_sub(1)).min(text.len())
}

/// Reads `--input` as JSON, or else as a Drover literal (which can also
/// write variants, such as `#Ok(5)`, and bytes).
fn parse_input(input: &str) -> Result<Value, Failure> {
    match serde_json::from_str::<serde_json::Value>(input) {
        Ok(json) => Ok(Value::from_json(json)),
        Err(json_err) => drover_ir::text::parse_value("--input", input).map_err(|e| {
            eprint_diag(&e);
            Failure::Message(format!(
                "--input is neither JSON ({json_err}) nor a Drover literal (see docs/assembly.md)"
            ))
        }),
    }
}

/// The arguments of `workflow` from `--input`.
fn input_args(module: &Module, workflow: &str, input: &str) -> Result<Vec<Value>, Failure> {
    let input = parse_input(input)?;
    let params = module
        .workflow(workflow)
        .map(|(_, w)| w.params.clone())
        .unwrap_or_default();
    match params.len() {
        0 => Ok(Vec::new()),
        1 => Ok(vec![input]),
        n => match input {
            Value::List(items) if items.len() == n => Ok(items),
            Value::Map(mut map) => params
                .iter()
                .map(|p| {
                    map.remove(&Value::Str(p.clone())).ok_or_else(|| {
                        Failure::Message(format!("--input has no field `{p}`"))
                    })
                })
                .collect(),
            _ => Err(Failure::Message(format!(
                "`{workflow}` takes {n} parameters ({}): give --input as an array of {n} values or an object with those fields",
                params.join(", ")
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::offset_of;

    #[test]
    fn offsets_count_lines_and_columns_from_one() {
        let text = "ab\ncde\nf";
        assert_eq!(offset_of(text, 1, 1), 0);
        assert_eq!(offset_of(text, 2, 2), 4);
        assert_eq!(offset_of(text, 3, 1), 7);
        assert_eq!(offset_of(text, 9, 9), text.len());
    }
}
