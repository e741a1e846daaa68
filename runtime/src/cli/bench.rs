//! `drover bench`: end-to-end throughput and latency of N workflow runs on an
//! embedded, durable node in this process (real `fsync`, group commit).
//!
//! Closed loop: `-c` workers each start a run, wait for its durable result,
//! check it and start the next, until `-n` runs are done. Latency is from the
//! call to `start` to the moment the run's `Finished` record is durable and
//! its outcome is handed back. Before the runs, the raw cost of one
//! `write` + `sync_data` is measured in the same directory, so the figures
//! come with a baseline taken on the same disk at the same moment.
//!
//! With `--print-acked`, every acknowledged start is printed to stdout as
//! `acked <run> <n>` the moment `start` returns (the crash test reads them).
//! Runs left unfinished by an earlier process on the same `--data` are
//! resumed at open and awaited before the bench ends.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use drover_ir::Value;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EXIT_BAD_INPUT, EXIT_NODE, EXIT_RUN_FAILED};
use crate::node::{Node, NodeConfig, NodeError, NodeHandle, Outcome, RecoveryReport};
use crate::registry;

/// The workflow run by default: three no-op activity steps returning `5n + 8`
/// (linked into the stock `drover` binary).
pub const BENCH_WORKFLOW: &str = "bench_flow";

/// Arguments of `drover bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Runs to measure.
    #[arg(short = 'n', long = "runs", default_value_t = 10_000)]
    runs: u64,
    /// Runs in flight at once (closed loop: each worker starts the next run
    /// when its last one has ended).
    #[arg(short = 'c', long, default_value_t = 64)]
    concurrency: usize,
    /// The workflow to run. Run `i` of `bench_flow` gets input `i` and must
    /// return `5i + 8`; any other workflow gets `--input` and must complete
    /// without failing.
    #[arg(long, default_value = BENCH_WORKFLOW)]
    workflow: String,
    /// The input of every run of a workflow other than `bench_flow`, as JSON.
    #[arg(long, default_value = "null")]
    input: String,
    /// Runs before the measured ones, not counted.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// The node's data directory; a temporary one when not given.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print one JSON object instead of text (and no progress bar).
    #[arg(long)]
    json: bool,
    /// Print `acked <run> <n>` on stdout as each start is acknowledged.
    #[arg(long)]
    print_acked: bool,
    /// Do not keep step and effect log events (to measure what they cost).
    #[arg(long)]
    no_step_events: bool,
    /// Milliseconds per tick.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Seconds spent measuring the raw fsync baseline (0 to skip).
    #[arg(long, default_value_t = 0.5)]
    baseline_secs: f64,
}

/// What one bench measured.
#[derive(Debug, serde::Serialize)]
struct Report {
    workflow: String,
    runs: u64,
    concurrency: usize,
    warmup: u64,
    data: String,
    elapsed_s: f64,
    runs_per_s: f64,
    steps: u64,
    steps_per_s: f64,
    effects: u64,
    latency_us: Latency,
    fsyncs: u64,
    appends: u64,
    records: u64,
    appends_per_fsync: f64,
    records_per_fsync: f64,
    baseline: Option<Baseline>,
    /// `runs_per_s` divided by the baseline's fsyncs/s: above 1 means more
    /// runs per second than a store fsyncing each write could make durable
    /// single appends.
    runs_per_baseline_fsync: Option<f64>,
    verified: u64,
    wrong: u64,
    failures: Vec<String>,
    step_events: bool,
    recovery: Recovery,
}

#[derive(Debug, Default, serde::Serialize)]
struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    mean: u64,
}

#[derive(Debug, serde::Serialize)]
struct Baseline {
    /// Mean time of one 200-byte `write` + `sync_data` in the data directory.
    fsync_us: f64,
    fsyncs_per_s: f64,
}

#[derive(Debug, Default, serde::Serialize)]
struct Recovery {
    /// Unfinished runs resumed at open (each awaited before the bench ends).
    resumed: usize,
    resumed_completed: usize,
    resumed_failed: usize,
    diverged: usize,
    unloadable: usize,
    replayed_entries: u64,
    /// What the store said opening its log.
    store: String,
    /// Whether the store cut a torn or corrupt tail.
    store_truncated: bool,
}

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

impl BenchArgs {
    /// Runs the bench; returns the exit code (4 when a result was wrong).
    pub fn execute(self, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
        let json = self.json;
        match self.run(err) {
            Ok(report) => {
                let text = if json {
                    let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
                    s.push('\n');
                    s
                } else {
                    human(&report)
                };
                let _ = out.write_all(text.as_bytes());
                if report.wrong > 0 || report.recovery.resumed_failed > 0 {
                    EXIT_RUN_FAILED
                } else {
                    0
                }
            }
            Err(Failure::BadInput(m)) => {
                let _ = writeln!(err, "drover bench: {m}");
                EXIT_BAD_INPUT
            }
            Err(Failure::Node(e)) => {
                let _ = writeln!(err, "drover bench: {e}");
                EXIT_NODE
            }
        }
    }

    fn run(self, err: &mut dyn Write) -> Result<Report, Failure> {
        if self.concurrency == 0 {
            return Err(Failure::BadInput("-c must be at least 1".into()));
        }
        if self.tick_ms == 0 {
            return Err(Failure::BadInput("--tick-ms must be at least 1".into()));
        }
        if !(0.0..=60.0).contains(&self.baseline_secs) {
            return Err(Failure::BadInput(
                "--baseline-secs must be between 0 and 60".into(),
            ));
        }
        let def = registry::workflow(&self.workflow).ok_or_else(|| {
            Failure::BadInput(format!(
                "no workflow `{}` is linked into this binary",
                self.workflow
            ))
        })?;
        let checked = self.workflow == BENCH_WORKFLOW;
        let input = if checked {
            None
        } else {
            let j: serde_json::Value = serde_json::from_str(&self.input)
                .map_err(|e| Failure::BadInput(format!("--input is not JSON: {e}")))?;
            Some(if def.params.len() == 1 {
                vec![Value::from_json(j)]
            } else {
                match j {
                    serde_json::Value::Array(a) => a.into_iter().map(Value::from_json).collect(),
                    serde_json::Value::Null => vec![],
                    other => vec![Value::from_json(other)],
                }
            })
        };
        let temp;
        let data_dir = match &self.data {
            Some(d) => d.clone(),
            None => {
                temp = tempfile::tempdir()
                    .map_err(|e| Failure::Node(NodeError::Refused(format!("temp dir: {e}"))))?;
                temp.path().to_owned()
            }
        };
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            Failure::Node(NodeError::Refused(format!(
                "create {}: {e}",
                data_dir.display()
            )))
        })?;
        let baseline = if self.baseline_secs > 0.0 {
            Some(
                raw_fsync(&data_dir, Duration::from_secs_f64(self.baseline_secs)).map_err(|e| {
                    Failure::Node(NodeError::Refused(format!("fsync baseline: {e}")))
                })?,
            )
        } else {
            None
        };
        let mut config = NodeConfig::new(&data_dir);
        config.tick_ms = self.tick_ms;
        config.step_events = !self.no_step_events;
        config.inbox_capacity = config.inbox_capacity.max(self.concurrency * 2);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Failure::Node(NodeError::Refused(format!("tokio runtime: {e}"))))?;
        let show_bar = !self.json && std::io::stderr().is_terminal();
        runtime.block_on(async move {
            let (node, report) = Node::open(config).await?;
            let node = Arc::new(node);
            if !self.json {
                let _ = writeln!(
                    err,
                    "drover bench: {}",
                    report
                        .store
                        .as_ref()
                        .map_or(String::new(), |s| s.to_string())
                );
            }
            // Runs an earlier process left unfinished finish alongside.
            let resumed = {
                let node = node.clone();
                let runs = report.resumed.clone();
                tokio::spawn(async move {
                    let (mut ok, mut failed) = (0, 0);
                    for run in runs {
                        match node.result(run).await {
                            Ok(Outcome::Completed(_)) => ok += 1,
                            _ => failed += 1,
                        }
                    }
                    (ok, failed)
                })
            };
            if self.warmup > 0 {
                let w = Workload {
                    workflow: self.workflow.clone(),
                    input: input.clone(),
                    first: 0,
                    count: self.warmup,
                    print_acked: self.print_acked,
                };
                drive(&node, &w, self.concurrency, &ProgressBar::hidden()).await?;
            }
            let bar = if show_bar {
                let bar = ProgressBar::with_draw_target(
                    Some(self.runs),
                    ProgressDrawTarget::stderr_with_hz(10),
                );
                bar.set_style(
                    ProgressStyle::with_template(
                        "{bar:40.cyan/blue} {pos}/{len} runs  {per_sec}  eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            } else {
                ProgressBar::hidden()
            };
            let stats0 = node.store_stats();
            let counters0 = node.counters();
            let w = Workload {
                workflow: self.workflow.clone(),
                input,
                first: self.warmup,
                count: self.runs,
                print_acked: self.print_acked,
            };
            let started = Instant::now();
            let outcome = drive(&node, &w, self.concurrency, &bar).await?;
            let elapsed = started.elapsed().as_secs_f64().max(1e-9);
            bar.finish_and_clear();
            let stats = node.store_stats();
            let counters = node.counters();
            let (resumed_completed, resumed_failed) = resumed.await.unwrap_or((0, 0));
            if let Ok(node) = Arc::try_unwrap(node) {
                node.shutdown().await;
            }
            let fsyncs = stats.fsyncs - stats0.fsyncs;
            let appends = stats.appends - stats0.appends;
            let records = stats.records - stats0.records;
            let steps = counters.steps - counters0.steps;
            let runs_per_s = self.runs as f64 / elapsed;
            Ok(Report {
                workflow: self.workflow,
                runs: self.runs,
                concurrency: self.concurrency,
                warmup: self.warmup,
                data: data_dir.display().to_string(),
                elapsed_s: elapsed,
                runs_per_s,
                steps,
                steps_per_s: steps as f64 / elapsed,
                effects: counters.effects - counters0.effects,
                latency_us: latency(outcome.latencies_us),
                fsyncs,
                appends,
                records,
                appends_per_fsync: appends as f64 / fsyncs.max(1) as f64,
                records_per_fsync: records as f64 / fsyncs.max(1) as f64,
                runs_per_baseline_fsync: baseline.as_ref().map(|b| runs_per_s / b.fsyncs_per_s),
                baseline,
                verified: outcome.verified,
                wrong: outcome.failures.len() as u64,
                failures: outcome.failures.into_iter().take(10).collect(),
                step_events: !self.no_step_events,
                recovery: recovery(&report, resumed_completed, resumed_failed),
            })
        })
    }
}

fn recovery(report: &RecoveryReport, completed: usize, failed: usize) -> Recovery {
    Recovery {
        resumed: report.resumed.len(),
        resumed_completed: completed,
        resumed_failed: failed,
        diverged: report.diverged.len(),
        unloadable: report.failed.len(),
        replayed_entries: report.replayed_entries,
        store: report
            .store
            .as_ref()
            .map_or(String::new(), |s| s.to_string()),
        store_truncated: report.store.as_ref().is_some_and(|s| s.truncated.is_some()),
    }
}

struct Workload {
    workflow: String,
    /// `None`: `bench_flow` with input `i`, checked against `5i + 8`.
    input: Option<Vec<Value>>,
    first: u64,
    count: u64,
    print_acked: bool,
}

struct Driven {
    latencies_us: Vec<u64>,
    verified: u64,
    failures: Vec<String>,
}

/// Runs `w.count` runs with `concurrency` workers in a closed loop.
async fn drive(
    node: &Arc<NodeHandle>,
    w: &Workload,
    concurrency: usize,
    bar: &ProgressBar,
) -> Result<Driven, Failure> {
    let next = Arc::new(AtomicU64::new(w.first));
    let end = w.first + w.count;
    let verified = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(w.count.max(1) as usize) {
        let node = node.clone();
        let next = next.clone();
        let verified = verified.clone();
        let bar = bar.clone();
        let workflow = w.workflow.clone();
        let input = w.input.clone();
        let print_acked = w.print_acked;
        workers.spawn(async move {
            let mut lat = Vec::new();
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let args = input.clone().unwrap_or_else(|| vec![Value::Int(i as i64)]);
                let t = Instant::now();
                let run = node.start(&workflow, args, None).await?;
                if print_acked {
                    // Straight to the process's stdout, line by line, so a
                    // reader sees each ack before anything that follows it.
                    let mut o = std::io::stdout().lock();
                    let _ = writeln!(o, "acked {run} {i}");
                    let _ = o.flush();
                }
                let outcome = node.result(run).await?;
                lat.push(t.elapsed().as_micros() as u64);
                let ok = match (&outcome, &input) {
                    (Outcome::Completed(Value::Int(v)), None) => {
                        *v == (i as i64).wrapping_mul(5).wrapping_add(8)
                    }
                    (Outcome::Completed(_), Some(_)) => true,
                    _ => false,
                };
                if ok {
                    verified.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.push(format!("run {run} (n = {i}): {outcome:?}"));
                }
                bar.inc(1);
            }
            Ok::<_, NodeError>((lat, failures))
        });
    }
    let mut latencies_us = Vec::with_capacity(w.count as usize);
    let mut failures = Vec::new();
    while let Some(joined) = workers.join_next().await {
        let (lat, f) = joined
            .map_err(|e| Failure::Node(NodeError::Refused(format!("bench worker: {e}"))))??;
        latencies_us.extend(lat);
        failures.extend(f);
    }
    Ok(Driven {
        latencies_us,
        verified: verified.load(Ordering::Relaxed),
        failures,
    })
}

fn latency(mut us: Vec<u64>) -> Latency {
    if us.is_empty() {
        return Latency::default();
    }
    us.sort_unstable();
    let at = |q: f64| us[((us.len() as f64 * q).ceil() as usize).clamp(1, us.len()) - 1];
    Latency {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: us[us.len() - 1],
        mean: us.iter().sum::<u64>() / us.len() as u64,
    }
}

/// The mean cost of one 200-byte `write` + `sync_data` in `dir`, over `time`.
fn raw_fsync(dir: &Path, time: Duration) -> std::io::Result<Baseline> {
    let path = dir.join("bench-fsync-baseline.tmp");
    let result = (|| {
        let mut f = File::create(&path)?;
        let record = [0x5au8; 200];
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < time || n == 0 {
            f.write_all(&record)?;
            f.sync_data()?;
            n += 1;
        }
        let each = start.elapsed().as_secs_f64() / f64::from(n);
        Ok(Baseline {
            fsync_us: each * 1e6,
            fsyncs_per_s: 1.0 / each,
        })
    })();
    let _ = std::fs::remove_file(&path);
    result
}

fn human(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} runs of {} at concurrency {} in {:.2}s (data in {})",
        r.runs, r.workflow, r.concurrency, r.elapsed_s, r.data
    );
    let _ = writeln!(s, "  runs/s        {:>10.0}", r.runs_per_s);
    let _ = writeln!(
        s,
        "  steps/s       {:>10.0}  ({} journal entries, {} effects)",
        r.steps_per_s, r.steps, r.effects
    );
    let l = &r.latency_us;
    let ms = |us: u64| us as f64 / 1000.0;
    let _ = writeln!(
        s,
        "  latency       p50 {:.2}ms  p90 {:.2}ms  p99 {:.2}ms  max {:.2}ms  (start to durable result)",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.max)
    );
    let _ = writeln!(
        s,
        "  fsyncs        {:>10}  ({:.1} appends, {:.1} records per fsync)",
        r.fsyncs, r.appends_per_fsync, r.records_per_fsync
    );
    if let (Some(b), Some(x)) = (&r.baseline, r.runs_per_baseline_fsync) {
        let _ = writeln!(
            s,
            "  baseline      raw write+fsync {:.0}µs = {:.0} fsyncs/s; runs/s is {x:.2}x that",
            b.fsync_us, b.fsyncs_per_s
        );
    }
    let _ = writeln!(
        s,
        "  verified      {}/{} results{}",
        r.verified,
        r.runs,
        if r.step_events {
            ""
        } else {
            " (step events off)"
        }
    );
    for f in &r.failures {
        let _ = writeln!(s, "  WRONG         {f}");
    }
    let rec = &r.recovery;
    if rec.resumed + rec.diverged + rec.unloadable > 0 || rec.store_truncated {
        let _ = writeln!(
            s,
            "  recovery      {} runs resumed ({} completed, {} failed), {} diverged, {} unloadable",
            rec.resumed, rec.resumed_completed, rec.resumed_failed, rec.diverged, rec.unloadable
        );
        let _ = writeln!(s, "  store         {}", rec.store);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_sample() {
        let l = latency((1..=100).collect());
        assert_eq!((l.p50, l.p90, l.p99, l.max, l.mean), (50, 90, 99, 100, 50));
        let l = latency(vec![7]);
        assert_eq!((l.p50, l.p99, l.max), (7, 7, 7));
        assert_eq!(latency(vec![]).max, 0);
    }
}
