//! The node end to end, on the real embedded store in a temp dir: runs,
//! children, signals, cancel, durable timers and in-flight activities across
//! restarts, deploys and resource permits.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration as StdDuration, Instant};

use drover::node::{Node, NodeConfig, NodeError, NodeHandle, Outcome, RecoveryReport, RunId};
use drover::prelude::*;
use drover_interpreter::ErrorKind;
use drover_ir::Value;
use tokio::sync::watch;

#[activity]
pub async fn add_one(x: i64) -> Result<i64, Error> {
    Ok(x + 1)
}

#[workflow]
pub async fn three_steps(x: i64) -> Result<i64, Error> {
    let a = add_one(x).await?;
    let b = add_one(a).await?;
    let c = add_one(b).await?;
    Ok(c)
}

#[workflow]
pub async fn parent_of_three(x: i64) -> Result<i64, Error> {
    let y = three_steps::run(x).await?;
    Ok(y * 10)
}

#[workflow]
pub async fn wait_approval(x: i64) -> Result<i64, Error> {
    let approved: bool = signal::<bool>("approved").await;
    if approved {
        Ok(x)
    } else {
        Ok(0)
    }
}

#[workflow]
pub async fn nap(x: i64) -> Result<i64, Error> {
    sleep(Duration::from_secs(2)).await;
    let y = add_one(x).await?;
    Ok(y)
}

static GATED_CALLS: AtomicU32 = AtomicU32::new(0);

fn gate() -> &'static watch::Sender<bool> {
    static GATE: OnceLock<watch::Sender<bool>> = OnceLock::new();
    GATE.get_or_init(|| watch::channel(false).0)
}

#[activity]
pub async fn gated(x: i64) -> Result<i64, Error> {
    GATED_CALLS.fetch_add(1, Ordering::SeqCst);
    let mut rx = gate().subscribe();
    rx.wait_for(|open| *open)
        .await
        .map_err(|_| Error::failed("gate dropped"))?;
    Ok(x * 2)
}

#[workflow]
pub async fn through_gate(x: i64) -> Result<i64, Error> {
    let a = add_one(x).await?;
    let b = gated(a).await?;
    let c = add_one(b).await?;
    Ok(c)
}

#[workflow]
pub async fn versioned(x: i64) -> Result<i64, Error> {
    let _go: bool = signal::<bool>("go").await;
    Ok(x + 7)
}

/// (now running, most seen at once)
static LIMITED: Mutex<(u32, u32)> = Mutex::new((0, 0));

#[activity(resources(license = 2))]
pub async fn limited(x: i64) -> Result<i64, Error> {
    {
        let mut g = LIMITED.lock().unwrap();
        g.0 += 1;
        g.1 = g.1.max(g.0);
    }
    // Long next to a start's fsync, so the six runs overlap.
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    LIMITED.lock().unwrap().0 -= 1;
    Ok(x)
}

#[workflow]
pub async fn use_license(x: i64) -> Result<i64, Error> {
    let y = limited(x).await?;
    Ok(y)
}

async fn open(dir: &Path) -> (NodeHandle, RecoveryReport) {
    let mut config = NodeConfig::new(dir);
    config.tick_ms = 5;
    // Small, so restarts exercise snapshot + journal tail.
    config.snapshot_every = 2;
    config.resources.insert("license".into(), 4);
    Node::open(config).await.expect("node opens")
}

async fn result(node: &NodeHandle, run: RunId) -> Outcome {
    tokio::time::timeout(StdDuration::from_secs(20), node.result(run))
        .await
        .expect("the run ends in time")
        .expect("the result is readable")
}

fn ok(n: i64) -> Outcome {
    Outcome::Completed(Value::ok(Value::Int(n)))
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_steps_complete_and_are_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let (node, report) = open(dir.path()).await;
    assert!(report.deployed.contains(&"three_steps".to_owned()));
    let run = node
        .start("three_steps", vec![Value::Int(1)], None)
        .await
        .unwrap();
    assert_eq!(result(&node, run).await, ok(4));
    let info = node.status(run).await.unwrap();
    assert_eq!(info.workflow, "three_steps");
    // Start plus one entry per activity result.
    assert_eq!(info.journal_len, 4);
    let trace = node.trace(run).await.unwrap();
    let summary: Vec<(&str, &str, bool)> = trace
        .iter()
        .map(|t| (t.effect.as_str(), t.result.as_deref().unwrap_or("-"), t.ok))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("add_one", "2", true),
            ("add_one", "3", true),
            ("add_one", "4", true)
        ],
        "{trace:?}"
    );
    assert_eq!(trace[1].args, "2");
    assert_eq!(node.profiles()["add_one"].count, 3);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_starts_are_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let e = node
        .start("no_such_workflow", vec![], None)
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::UnknownWorkflow(_)), "{e}");
    let e = node.start("three_steps", vec![], None).await.unwrap_err();
    assert!(matches!(e, NodeError::BadInput(_)), "{e}");
    assert!(node.list(&Default::default()).await.unwrap().is_empty());
    let e = node.deploy(b"not a program".to_vec()).await.unwrap_err();
    assert!(matches!(e, NodeError::BadProgram(_)), "{e}");
    let e = node.status(RunId(99)).await.unwrap_err();
    assert!(matches!(e, NodeError::UnknownRun(_)), "{e}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_gives_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let key = Some("order-42".to_owned());
    let a = node
        .start("three_steps", vec![Value::Int(1)], key.clone())
        .await
        .unwrap();
    let b = node
        .start("three_steps", vec![Value::Int(1)], key.clone())
        .await
        .unwrap();
    let c = node
        .start("three_steps", vec![Value::Int(1)], None)
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(result(&node, a).await, ok(4));
    // Still the same run after it finished and after a restart.
    node.shutdown().await;
    let (node, _) = open(dir.path()).await;
    let d = node
        .start("three_steps", vec![Value::Int(1)], key)
        .await
        .unwrap();
    assert_eq!(a, d);
    assert_eq!(node.list(&Default::default()).await.unwrap().len(), 2);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_workflow_reports_to_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let run = node
        .start("parent_of_three", vec![Value::Int(2)], None)
        .await
        .unwrap();
    assert_eq!(result(&node, run).await, ok(50));
    let runs = node.list(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), 2);
    let child = runs
        .iter()
        .find(|r| r.workflow == "three_steps")
        .unwrap()
        .run;
    assert_eq!(node.status(child).await.unwrap().parent, Some((run, 0)));
    let trace = node.trace(run).await.unwrap();
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0].effect, "child:three_steps");
    assert_eq!(trace[0].result.as_deref(), Some("5"));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_wakes_the_run_and_cancel_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let a = node
        .start("wait_approval", vec![Value::Int(9)], None)
        .await
        .unwrap();
    let b = node
        .start("wait_approval", vec![Value::Int(9)], None)
        .await
        .unwrap();
    node.signal(a, "approved", Value::Bool(true)).await.unwrap();
    assert_eq!(result(&node, a).await, ok(9));
    node.cancel(b, "changed my mind").await.unwrap();
    match result(&node, b).await {
        Outcome::Failed(e) => assert_eq!(e.kind, ErrorKind::Cancelled, "{e:?}"),
        other => panic!("expected a cancelled run, got {other:?}"),
    }
    // A finished run takes no more events.
    let e = node
        .signal(a, "approved", Value::Bool(true))
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::Refused(_)), "{e}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_timer_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (node, _) = open(dir.path()).await;
    let run = node.start("nap", vec![Value::Int(1)], None).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    node.shutdown().await;
    let (node, report) = open(dir.path()).await;
    assert_eq!(report.resumed, vec![run]);
    assert!(
        report.diverged.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    assert_eq!(result(&node, run).await, ok(2));
    // The sleep was two seconds of wall-clock time, restart included.
    assert!(
        started.elapsed() >= StdDuration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_mid_activity_survives_a_restart_and_completes_once() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let run = node
        .start("through_gate", vec![Value::Int(4)], None)
        .await
        .unwrap();
    eventually("the gated activity to start", || {
        GATED_CALLS.load(Ordering::SeqCst) == 1
    })
    .await;
    node.shutdown().await;
    let (node, report) = open(dir.path()).await;
    assert_eq!(report.resumed, vec![run]);
    // The attempt in flight at the crash is performed again, same id.
    eventually("the gated activity to be performed again", || {
        GATED_CALLS.load(Ordering::SeqCst) == 2
    })
    .await;
    gate().send_replace(true);
    // (4 + 1) * 2 + 1
    assert_eq!(result(&node, run).await, ok(11));
    let trace = node.trace(run).await.unwrap();
    let effects: Vec<&str> = trace.iter().map(|t| t.effect.as_str()).collect();
    // Journaled once each: the re-performance is not a new effect.
    assert_eq!(effects, vec!["add_one", "gated", "add_one"], "{trace:?}");
    assert!(trace.iter().all(|t| t.ok));
    node.shutdown().await;
    // Finished exactly once: nothing left to resume.
    let (node, report) = open(dir.path()).await;
    assert!(report.resumed.is_empty(), "{report:?}");
    assert_eq!(node.status(run).await.unwrap().outcome, Some(ok(11)));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_starts_take_a_deployed_version_and_old_runs_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let old = node
        .start("versioned", vec![Value::Int(1)], None)
        .await
        .unwrap();
    let old_hash = node.status(old).await.unwrap().program;
    // Version 2: the same workflow adding 700 instead of 7.
    let def = drover::registry::workflow("versioned").unwrap();
    let mut module = def.module().unwrap();
    let mut changed = 0;
    for c in &mut module.consts {
        if *c == Value::Int(7) {
            *c = Value::Int(700);
            changed += 1;
        }
    }
    assert_eq!(changed, 1, "the constant 7 is in the pool once");
    let new_hash = node.deploy(drover_ir::wire::encode(&module)).await.unwrap();
    assert_ne!(new_hash, old_hash);
    let new = node
        .start("versioned", vec![Value::Int(1)], None)
        .await
        .unwrap();
    assert_eq!(node.status(new).await.unwrap().program, new_hash);
    node.signal(old, "go", Value::Bool(true)).await.unwrap();
    node.signal(new, "go", Value::Bool(true)).await.unwrap();
    assert_eq!(result(&node, old).await, ok(8));
    assert_eq!(result(&node, new).await, ok(701));
    // The deployment is durable: after a restart new starts still take it,
    // although the binary links the old version.
    node.shutdown().await;
    let (node, _) = open(dir.path()).await;
    let again = node
        .start("versioned", vec![Value::Int(1)], None)
        .await
        .unwrap();
    assert_eq!(node.status(again).await.unwrap().program, new_hash);
    node.cancel(again, "done").await.unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_permits_bound_activity_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let mut runs = Vec::new();
    for i in 0..6 {
        runs.push(
            node.start("use_license", vec![Value::Int(i)], None)
                .await
                .unwrap(),
        );
    }
    for (i, run) in runs.into_iter().enumerate() {
        assert_eq!(result(&node, run).await, ok(i as i64));
    }
    // Capacity 4, two units per call: two at a time, and no more.
    assert_eq!(LIMITED.lock().unwrap().1, 2);
    let p = &node.profiles()["limited"];
    assert_eq!(p.count, 6);
    assert_eq!(p.resources, vec![("license".to_owned(), 2)]);
    assert!(p.avg_wall_ms >= 190.0, "{p:?}");
    node.shutdown().await;
}

static CHILD_GATE_CALLS: AtomicU32 = AtomicU32::new(0);

fn child_gate() -> &'static watch::Sender<bool> {
    static GATE: OnceLock<watch::Sender<bool>> = OnceLock::new();
    GATE.get_or_init(|| watch::channel(false).0)
}

#[activity]
pub async fn child_gated(x: i64) -> Result<i64, Error> {
    CHILD_GATE_CALLS.fetch_add(1, Ordering::SeqCst);
    let mut rx = child_gate().subscribe();
    rx.wait_for(|open| *open)
        .await
        .map_err(|_| Error::failed("gate dropped"))?;
    Ok(x + 100)
}

#[workflow]
pub async fn gated_child(x: i64) -> Result<i64, Error> {
    let y = child_gated(x).await?;
    Ok(y)
}

#[workflow]
pub async fn gated_parent(x: i64) -> Result<i64, Error> {
    let y = gated_child::run(x).await?;
    let z = add_one(y).await?;
    Ok(z)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_and_child_both_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let parent = node
        .start("gated_parent", vec![Value::Int(1)], None)
        .await
        .unwrap();
    eventually("the child's activity to start", || {
        CHILD_GATE_CALLS.load(Ordering::SeqCst) == 1
    })
    .await;
    // A second entry makes a snapshot (every 2) that already includes the
    // child's start: recovery must look before it for the child's arguments.
    node.signal(parent, "unused", Value::Null).await.unwrap();
    node.shutdown().await;
    let (node, report) = open(dir.path()).await;
    assert_eq!(report.resumed.len(), 2, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    eventually("the child's activity to run again", || {
        CHILD_GATE_CALLS.load(Ordering::SeqCst) == 2
    })
    .await;
    child_gate().send_replace(true);
    assert_eq!(result(&node, parent).await, ok(102));
    // The re-issued child start found the same child: still two runs.
    let runs = node.list(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs
        .iter()
        .all(|r| r.status == drover::node::RunStatus::Finished));
    node.shutdown().await;
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

#[activity]
pub async fn flaky_then_slow_then_ok(x: i64) -> Result<i64, Error> {
    match FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) {
        0 => Err(Error::new("unavailable", "try again")),
        // Longer than the timeout: the attempt is given up on.
        1 => {
            tokio::time::sleep(StdDuration::from_secs(5)).await;
            Ok(-1)
        }
        _ => Ok(x),
    }
}

#[workflow]
pub async fn retried(x: i64) -> Result<i64, Error> {
    let y = flaky_then_slow_then_ok(x)
        .retry(5, Duration::from_millis(20), Duration::from_millis(100))
        .timeout(Duration::from_millis(200))
        .await?;
    Ok(y)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_timeouts_run_on_durable_timers() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let run = node
        .start("retried", vec![Value::Int(3)], None)
        .await
        .unwrap();
    assert_eq!(result(&node, run).await, ok(3));
    let trace = node.trace(run).await.unwrap();
    let attempts: Vec<(u32, bool, Option<&str>)> = trace
        .iter()
        .map(|t| (t.attempt, t.ok, t.result.as_deref()))
        .collect();
    // The timed-out attempt's result never arrived before the run moved on.
    assert_eq!(
        attempts,
        vec![
            (1, false, Some("error unavailable: try again")),
            (2, false, None),
            (3, true, Some("3")),
        ],
        "{trace:?}"
    );
    node.shutdown().await;
}

static ATTR_CALLS: AtomicU32 = AtomicU32::new(0);

#[activity(retry(attempts = 3, initial = "10ms", max = "50ms"))]
pub async fn fails_twice(x: i64) -> Result<i64, Error> {
    if ATTR_CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(Error::new("unavailable", "not yet"));
    }
    Ok(x)
}

#[workflow]
pub async fn attribute_retry(x: i64) -> Result<i64, Error> {
    let y = fails_twice(x).await?;
    Ok(y)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activitys_own_retry_policy_applies_when_the_call_sets_none() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let run = node
        .start("attribute_retry", vec![Value::Int(8)], None)
        .await
        .unwrap();
    assert_eq!(result(&node, run).await, ok(8));
    assert_eq!(ATTR_CALLS.load(Ordering::SeqCst), 3);
    // One journaled attempt: the retries happened inside it.
    let trace = node.trace(run).await.unwrap();
    assert_eq!(trace.len(), 1, "{trace:?}");
    assert!(trace[0].ok);
    node.shutdown().await;
}

/// Records what it was asked, answers `memcache.get` with the key it got.
#[derive(Default)]
struct Recording {
    calls: Mutex<Vec<(String, String)>>,
}

impl drover::node::EffectHandler for Recording {
    fn perform(
        &self,
        call: drover::node::EffectCall,
    ) -> futures::future::BoxFuture<'static, Result<Value, drover_interpreter::EffectError>> {
        self.calls
            .lock()
            .unwrap()
            .push((call.effect.clone(), call.key.clone()));
        let answer = Value::Str(call.key);
        Box::pin(async move { Ok(answer) })
    }
}

#[activity]
pub async fn looks_up(key: String) -> Result<String, Error> {
    let got: Option<String> = drover::effects::memcache::get(&key).await?;
    Ok(got.unwrap_or_default())
}

#[workflow]
pub async fn nested_effects(key: String) -> Result<String, Error> {
    let direct: Option<String> = drover::effects::memcache::get(&key).await?;
    let via = looks_up(key).await?;
    Ok(format!("{}|{}", direct.unwrap_or("".to_owned()), via))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_go_to_the_handler_with_their_ids_as_keys_even_inside_activities() {
    let dir = tempfile::tempdir().unwrap();
    let handler = std::sync::Arc::new(Recording::default());
    let (node, _) = Node::open_with(NodeConfig::new(dir.path()), handler.clone())
        .await
        .unwrap();
    let run = node
        .start("nested_effects", vec![Value::Str("k".into())], None)
        .await
        .unwrap();
    let expected = format!("{run}/0|{run}/1/0");
    assert_eq!(
        result(&node, run).await,
        Outcome::Completed(Value::ok(Value::Str(expected)))
    );
    let calls = handler.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            ("memcache.get".to_owned(), format!("{run}/0")),
            ("memcache.get".to_owned(), format!("{run}/1/0")),
        ]
    );
    node.shutdown().await;
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub id: i64,
}

#[workflow]
pub async fn logs_twice(order: Order) -> Result<i64, Error> {
    log::info("received", &order);
    log::warn("odd", order.id);
    Ok(order.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_logs_become_structured_events() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let input = drover_ir::to_value(&Order { id: 42 }).unwrap();
    let run = node.start("logs_twice", vec![input], None).await.unwrap();
    assert_eq!(result(&node, run).await, ok(42));
    let logs: Vec<_> = node
        .logs()
        .into_iter()
        .filter(|e| e.run.as_deref() == Some(run.to_string().as_str()))
        .filter(|e| e.kind == drover::logs::EventKind::Log)
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(logs[0]
        .span
        .as_deref()
        .is_some_and(|s| s.contains("node.rs")));
    assert_eq!(logs[0].node.as_deref(), Some("local"));
    assert_eq!(logs[0].msg.as_deref(), Some("received"));
    assert_eq!(logs[0].workflow.as_deref(), Some("logs_twice"));
    assert_eq!(logs[0].fields["id"], 42);
    assert_eq!(logs[1].level, drover::log::Level::Warn);
    assert_eq!(logs[1].fields["value"], 42);
    assert!(logs[1].inst.is_some());
    // The line format `drover logs` reads.
    let line = logs[0].to_json_line();
    assert_eq!(
        drover::logs::LogEvent::from_json_line(&line).unwrap(),
        logs[0]
    );
    node.shutdown().await;
}

static HUNG: Mutex<(u32, u32)> = Mutex::new((0, 0));

#[activity(resources(license = 4))]
pub async fn hangs_first(x: i64) -> Result<i64, Error> {
    let first = {
        let mut g = HUNG.lock().unwrap();
        g.0 += 1;
        g.0 == 1
    };
    if first {
        // Never returns; only an abort frees its permits.
        std::future::pending::<()>().await;
    }
    HUNG.lock().unwrap().1 += 1;
    Ok(x)
}

#[workflow]
pub async fn outlives_a_hung_attempt(x: i64) -> Result<i64, Error> {
    let y = hangs_first(x)
        .retry(3, Duration::from_millis(10), Duration::from_millis(10))
        .timeout(Duration::from_millis(100))
        .await?;
    Ok(y)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_given_up_on_is_aborted_and_frees_its_permits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path());
    config.tick_ms = 5;
    // The hung attempt holds all 4 units: the retry can run only if the
    // timed-out attempt is aborted.
    config.resources.insert("license".into(), 4);
    let (node, _) = Node::open(config).await.unwrap();
    let run = node
        .start("outlives_a_hung_attempt", vec![Value::Int(5)], None)
        .await
        .unwrap();
    assert_eq!(result(&node, run).await, ok(5));
    assert_eq!(*HUNG.lock().unwrap(), (2, 1));
    node.shutdown().await;
}

/// The crash window between a child's durable finish and its parent's
/// journaled result: on restart the parent's re-issued start finds the
/// finished child by its key and takes its outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_finished_while_the_parent_was_down_is_delivered() {
    use drover::node::codec;
    use drover_interpreter::{step, Config, Event, JournalEntry, Program, RunState};
    use drover_store::{EmbeddedStore, Options, Record, RunStart, Store};

    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    node.shutdown().await;
    {
        let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).unwrap();
        let parent_hash = store
            .deployment("parent_of_three")
            .await
            .unwrap()
            .unwrap()
            .program;
        let child_hash = store
            .deployment("three_steps")
            .await
            .unwrap()
            .unwrap()
            .program;
        let def = drover::registry::workflow("parent_of_three").unwrap();
        let program = Program::new(def.module().unwrap()).unwrap();
        let config = Config {
            tick_ms: 5,
            ..Config::default()
        };
        let mut state = RunState::new(&program, "parent_of_three", config).unwrap();
        let args = vec![Value::Int(2)];
        let event = Event::Start { args: args.clone() };
        let commands = step(&program, &mut state, 1, event.clone()).unwrap();
        let start = |workflow: &str, program, key: Option<String>, parent| RunStart {
            workflow: workflow.into(),
            program,
            input: codec::encode_input(&args).unwrap(),
            idempotency_key: key,
            parent,
            started_at_ms: 1,
        };
        let parent = store
            .start_run(start("parent_of_three", parent_hash, None, None))
            .await
            .unwrap()
            .run();
        let entry = JournalEntry {
            tick: 1,
            event,
            commands,
        };
        store
            .append(vec![Record::Journal {
                run: parent,
                seq: 0,
                entry: codec::encode_entry(&entry).unwrap(),
            }])
            .await
            .unwrap();
        let child = store
            .start_run(start(
                "three_steps",
                child_hash,
                Some(format!("{parent}/0")),
                Some((parent, 0)),
            ))
            .await
            .unwrap()
            .run();
        store
            .append(vec![Record::Finished {
                run: child,
                outcome: codec::encode_outcome(&ok(5)).unwrap(),
                at_ms: 2,
            }])
            .await
            .unwrap();
    }
    let (node, report) = open(dir.path()).await;
    assert_eq!(report.resumed, vec![RunId(1)], "{report:?}");
    assert_eq!(result(&node, RunId(1)).await, ok(50));
    assert_eq!(node.list(&Default::default()).await.unwrap().len(), 2);
    node.shutdown().await;
}
