//! The verbs that talk to a running node over its API: `deploy`, `start`,
//! `status`, `result`, `cancel`, `signal`, `ls`, `trace`, `logs`.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{EXIT_BAD_INPUT, EXIT_NODE, EXIT_NOT_FOUND, EXIT_RUN_FAILED, EXIT_TIMEOUT};
use crate::api::wire::{OutcomeJson, Status, Trace};
use crate::client::{Client, ClientError, Followed, ListQuery};
use crate::logs::{Filter, LogEvent};

/// Where the node is, and how to print: shared by every remote verb.
#[derive(Debug, Args)]
pub struct NodeOpts {
    /// The node's API URL.
    #[arg(long, env = "DROVER_NODE", default_value = "http://127.0.0.1:7070")]
    pub node: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The remote verbs.
#[derive(Debug, clap::Subcommand)]
pub enum RemoteCommand {
    /// Deploy a compiled script (`dslc compile` / `dslc asm` output) to the node.
    Deploy {
        /// The `.dbc` file.
        file: PathBuf,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// Start a run; prints its id.
    Start {
        /// The workflow.
        workflow: String,
        /// The input as JSON: the single parameter's value, an array of all
        /// parameters, or an object keyed by parameter name.
        #[arg(long, default_value = "null")]
        input: String,
        /// An idempotency key: the same key gives the same run.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// Where a run is.
    Status {
        /// The run (`r-<n>`).
        run: String,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// Wait for a run's result and print it.
    Result {
        /// The run (`r-<n>`).
        run: String,
        /// Give up after this long (`30s`, `5m`); waits forever when not given.
        #[arg(long)]
        timeout: Option<String>,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// Cancel a run: it fails with `cancelled`.
    Cancel {
        /// The run (`r-<n>`).
        run: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// Send a signal to a run.
    Signal {
        /// The run (`r-<n>`).
        run: String,
        /// The signal's name.
        name: String,
        /// Its value, as JSON.
        #[arg(long, default_value = "null")]
        value: String,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// List runs.
    Ls {
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only `running` or `finished` runs.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// Every effect a run caused, in order, with node, duration, request and
    /// response, and a timeline.
    Trace {
        /// The run (`r-<n>`).
        run: String,
        #[command(flatten)]
        opts: NodeOpts,
    },
    /// The node's structured logs.
    Logs {
        /// A filter, e.g. `workflow == "scan_email" and level >= warn`.
        #[arg(long)]
        filter: Option<String>,
        /// Keep printing new events as they happen.
        #[arg(long)]
        follow: bool,
        /// Only the newest this many past events.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        opts: NodeOpts,
    },
}

/// Why a verb failed: a message and an exit code.
struct Fail(u8, String);

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Api { status: 404, .. } => EXIT_NOT_FOUND,
            ClientError::Api { status, .. } if *status < 500 => EXIT_BAD_INPUT,
            ClientError::BadUrl { .. } => EXIT_BAD_INPUT,
            _ => EXIT_NODE,
        };
        Fail(code, super::with_causes(&e))
    }
}

fn bad(message: impl Into<String>) -> Fail {
    Fail(EXIT_BAD_INPUT, message.into())
}

fn parse_json(flag: &str, text: &str) -> Result<serde_json::Value, Fail> {
    serde_json::from_str(text).map_err(|e| bad(format!("{flag} is not JSON: {e}")))
}

fn pretty(v: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

impl RemoteCommand {
    fn name(&self) -> &'static str {
        match self {
            RemoteCommand::Deploy { .. } => "deploy",
            RemoteCommand::Start { .. } => "start",
            RemoteCommand::Status { .. } => "status",
            RemoteCommand::Result { .. } => "result",
            RemoteCommand::Cancel { .. } => "cancel",
            RemoteCommand::Signal { .. } => "signal",
            RemoteCommand::Ls { .. } => "ls",
            RemoteCommand::Trace { .. } => "trace",
            RemoteCommand::Logs { .. } => "logs",
        }
    }

    fn opts(&self) -> &NodeOpts {
        match self {
            RemoteCommand::Deploy { opts, .. }
            | RemoteCommand::Start { opts, .. }
            | RemoteCommand::Status { opts, .. }
            | RemoteCommand::Result { opts, .. }
            | RemoteCommand::Cancel { opts, .. }
            | RemoteCommand::Signal { opts, .. }
            | RemoteCommand::Ls { opts, .. }
            | RemoteCommand::Trace { opts, .. }
            | RemoteCommand::Logs { opts, .. } => opts,
        }
    }

    /// Runs the verb; returns the exit code.
    pub fn execute(self, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
        let name = self.name();
        match self.run(out) {
            Ok(code) => code,
            Err(Fail(code, message)) => {
                let _ = writeln!(err, "drover {name}: {}", message.trim_end());
                code
            }
        }
    }

    fn run(self, out: &mut dyn Write) -> Result<u8, Fail> {
        // Checked before anything is sent: the node is not bothered with a
        // filter that does not parse, and the error is drawn against it.
        let filter_error = match &self {
            RemoteCommand::Logs {
                filter: Some(f), ..
            } => Filter::parse(f)
                .err()
                .map(|e| drover_ir::diagnostics::render(&e)),
            _ => None,
        };
        if let Some(text) = filter_error {
            return Err(bad(format!("the filter does not parse:\n{text}")));
        }
        let client = Client::new(&self.opts().node)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Fail(EXIT_NODE, format!("tokio runtime: {e}")))?;
        runtime.block_on(self.run_async(&client, out))
    }

    async fn run_async(self, client: &Client, out: &mut dyn Write) -> Result<u8, Fail> {
        let json = self.opts().json;
        let mut text = String::new();
        let mut code = 0;
        match self {
            RemoteCommand::Deploy { file, .. } => {
                let bytes = std::fs::read(&file)
                    .map_err(|e| bad(format!("cannot read {}: {e}", file.display())))?;
                let d = client.deploy(bytes).await?;
                if json {
                    text = pretty(&d);
                } else {
                    let _ = writeln!(
                        text,
                        "deployed program {} ({}): {}",
                        &d.program[..d.program.len().min(12)],
                        file.display(),
                        if d.workflows.is_empty() {
                            "no workflows".to_owned()
                        } else {
                            d.workflows.join(", ")
                        }
                    );
                }
            }
            RemoteCommand::Start {
                workflow,
                input,
                key,
                ..
            } => {
                let input = parse_json("--input", &input)?;
                let s = client.start(&workflow, input, key.as_deref()).await?;
                if json {
                    text = pretty(&s);
                } else if s.created {
                    let _ = writeln!(text, "{}", s.run);
                } else {
                    let _ = writeln!(text, "{} (already started with this key)", s.run);
                }
            }
            RemoteCommand::Status { run, .. } => {
                let s = client.status(&run).await?;
                text = if json { pretty(&s) } else { human_status(&s) };
            }
            RemoteCommand::Result { run, timeout, .. } => {
                let outcome = match timeout {
                    None => Some(client.wait(&run).await?),
                    Some(t) => {
                        let d = humantime::parse_duration(t.trim())
                            .map_err(|e| bad(format!("--timeout {t:?}: {e}")))?;
                        client.result(&run, d).await?.outcome
                    }
                };
                match outcome {
                    None => {
                        code = EXIT_TIMEOUT;
                        if json {
                            text = pretty(
                                &serde_json::json!({ "run": run, "outcome": null, "ok": false }),
                            );
                        } else {
                            let _ = writeln!(text, "run {run} is still running");
                        }
                    }
                    Some(o) => {
                        if !o.ok() {
                            code = EXIT_RUN_FAILED;
                        }
                        if json {
                            text = pretty(
                                &serde_json::json!({ "run": run, "outcome": o, "ok": o.ok() }),
                            );
                        } else {
                            text = human_outcome(&o);
                        }
                    }
                }
            }
            RemoteCommand::Cancel { run, reason, .. } => {
                client.cancel(&run, reason.as_deref()).await?;
                if json {
                    text = pretty(&serde_json::json!({ "run": run, "cancelled": true }));
                } else {
                    let _ = writeln!(text, "cancelled {run}");
                }
            }
            RemoteCommand::Signal {
                run, name, value, ..
            } => {
                let value = parse_json("--value", &value)?;
                client.signal(&run, &name, value).await?;
                if json {
                    text = pretty(&serde_json::json!({ "run": run, "signal": name }));
                } else {
                    let _ = writeln!(text, "sent {name} to {run}");
                }
            }
            RemoteCommand::Ls {
                workflow,
                status,
                limit,
                ..
            } => {
                let q = ListQuery {
                    workflow,
                    status,
                    limit: Some(limit),
                    after: None,
                };
                let list = client.list(&q).await?;
                if json {
                    text = pretty(&list);
                } else {
                    let _ = writeln!(
                        text,
                        "{:<10} {:<20} {:<9} {:>8} {:>8}",
                        "RUN", "WORKFLOW", "STATUS", "ENTRIES", "TOOK"
                    );
                    for r in &list.runs {
                        let took = r.finished_at_ms.map_or("-".to_owned(), |f| {
                            format!("{}ms", f.saturating_sub(r.started_at_ms))
                        });
                        let _ = writeln!(
                            text,
                            "{:<10} {:<20} {:<9} {:>8} {:>8}",
                            r.run, r.workflow, r.status, r.journal_len, took
                        );
                    }
                    if list.next.is_some() {
                        let _ = writeln!(text, "(more: raise --limit)");
                    }
                }
            }
            RemoteCommand::Trace { run, .. } => {
                let t = client.trace(&run).await?;
                text = if json { pretty(&t) } else { human_trace(&t) };
            }
            RemoteCommand::Logs {
                filter,
                follow,
                limit,
                ..
            } => {
                if !follow {
                    for e in client.logs(filter.as_deref(), limit).await? {
                        let _ = writeln!(text, "{}", log_line(&e, json));
                    }
                } else {
                    let mut stream = client.follow_logs(filter.as_deref(), limit).await?;
                    while let Some(item) = stream.next().await {
                        let line = match item? {
                            Followed::Event(e) => log_line(&e, json),
                            Followed::Lagged(n) => format!("… {n} events dropped (too slow)"),
                        };
                        // Each event as it comes; a closed pipe ends the follow.
                        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                            return Ok(0);
                        }
                    }
                }
            }
        }
        let _ = out.write_all(text.as_bytes());
        Ok(code)
    }
}

/// Unix milliseconds as RFC 3339 (UTC).
fn time(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

fn human_outcome(o: &OutcomeJson) -> String {
    match o {
        OutcomeJson::Completed(v) => {
            format!(
                "result: {}\n",
                serde_json::to_string_pretty(v).unwrap_or_default()
            )
        }
        OutcomeJson::Failed { kind, message } => format!("failed: {kind}: {message}\n"),
    }
}

fn human_status(s: &Status) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "run       {}", s.run);
    let _ = writeln!(t, "workflow  {}", s.workflow);
    let _ = writeln!(t, "program   {}", &s.program[..s.program.len().min(12)]);
    let _ = writeln!(t, "status    {}", s.status);
    if let Some((p, id)) = &s.parent {
        let _ = writeln!(t, "parent    {p} (effect {id})");
    }
    let _ = writeln!(
        t,
        "started   {}",
        crate::logs::Timestamp::Millis(s.started_at_ms as i64)
    );
    let _ = writeln!(t, "journal   {} entries", s.journal_len);
    if let Some(o) = &s.outcome {
        t.push_str(&human_outcome(o));
    }
    t
}

/// Width of the timeline column of `drover trace`.
const BAR: usize = 30;

fn human_trace(t: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run {} of {} on {}", t.run, t.workflow, t.node);
    if t.items.is_empty() {
        let _ = writeln!(out, "no effects");
        return out;
    }
    let first = t.items.iter().map(|i| i.tick).min().unwrap_or(0);
    let last = t
        .items
        .iter()
        .map(|i| i.done_tick.unwrap_or(i.tick))
        .max()
        .unwrap_or(first);
    let span = (last - first).max(1) as f64;
    let _ = writeln!(
        out,
        "{:>8}  {:>7}  {:<BAR$}  effect",
        "at", "took", "timeline"
    );
    for i in &t.items {
        let start = ((i.tick - first) as f64 / span * BAR as f64) as usize;
        let end = ((i.done_tick.unwrap_or(last) - first) as f64 / span * BAR as f64) as usize;
        let start = start.min(BAR - 1);
        let len = end.saturating_sub(start).max(1).min(BAR - start);
        let fill = if i.done_tick.is_some() { '█' } else { '░' };
        let bar: String = std::iter::repeat_n(' ', start)
            .chain(std::iter::repeat_n(fill, len))
            .chain(std::iter::repeat_n(' ', BAR - start - len))
            .collect();
        let took = i.duration_ms.map_or("…".to_owned(), |ms| format!("{ms}ms"));
        let retry = if i.attempt > 1 {
            format!(" (attempt {})", i.attempt)
        } else {
            String::new()
        };
        // An integration's summary names the effect, the request and the
        // answer, secrets redacted; other effects show their arguments.
        let what = match (&i.summary, &i.result, i.ok) {
            (Some(s), Some(_), false) => format!("✗ {s}"),
            (Some(s), _, _) => s.clone(),
            (None, None, _) => format!("{}({}) (no result yet)", i.effect, i.args),
            (None, Some(r), true) => format!("{}({}) → {r}", i.effect, i.args),
            (None, Some(r), false) => format!("{}({}) ✗ {r}", i.effect, i.args),
        };
        let _ = writeln!(
            out,
            "{:>6}ms  {took:>7}  {bar}  {what}{retry}",
            (i.tick - first) * t.tick_ms,
        );
    }
    let n = t.items.len();
    let _ = writeln!(
        out,
        "{n} effect attempt{}, {}ms from the first to the last",
        if n == 1 { "" } else { "s" },
        (last - first) * t.tick_ms
    );
    out
}

fn log_line(e: &LogEvent, json: bool) -> String {
    if json {
        return e.to_json_line();
    }
    let ts = match &e.ts {
        crate::logs::Timestamp::Millis(ms) if *ms >= 0 => time(*ms as u64),
        other => other.to_string(),
    };
    let mut s = format!("{ts} {:<5} {}", e.level, e.kind.name());
    for (label, v) in [
        ("run", &e.run),
        ("workflow", &e.workflow),
        ("effect", &e.effect),
        ("inst", &e.inst),
    ] {
        if let Some(v) = v {
            let _ = write!(s, " {label}={v}");
        }
    }
    if let Some(d) = e.duration_us {
        let _ = write!(s, " took={d}µs");
    }
    if let Some(m) = &e.msg {
        let _ = write!(s, " {m:?}");
    }
    for (k, v) in &e.fields {
        let _ = write!(s, " {k}={v}");
    }
    s
}
