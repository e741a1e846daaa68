//! A node over a journal whose tail is torn or corrupt: recovery stops at the
//! last good record, says where and why in its `RecoveryReport`, and the runs
//! whose records were cut are resumed from what is left. Also the node's log
//! events for every step and effect.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use drover::logs::EventKind;
use drover::node::{Node, NodeConfig, NodeHandle, Outcome, RecoveryReport, RunId};
use drover::prelude::*;
use drover_ir::Value;
use drover_store::TruncationReason;

#[activity]
pub async fn tail_inc(x: i64) -> Result<i64, Error> {
    Ok(x + 1)
}

#[workflow]
pub async fn tail_three(x: i64) -> Result<i64, Error> {
    let a = tail_inc(x).await?;
    let b = tail_inc(a).await?;
    let c = tail_inc(b).await?;
    Ok(c)
}

async fn open(dir: &Path) -> (NodeHandle, RecoveryReport) {
    let mut config = NodeConfig::new(dir);
    config.node_name = "tail-node".into();
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

fn segment(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "drl"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

/// Runs `n` runs of `tail_three` to their end and closes the node.
async fn fill(dir: &Path, n: i64) -> Vec<RunId> {
    let (node, _) = open(dir).await;
    let mut runs = Vec::new();
    for x in 0..n {
        let run = node
            .start("tail_three", vec![Value::Int(x * 10)], None)
            .await
            .unwrap();
        assert_eq!(result(&node, run).await, ok(x * 10 + 3));
        runs.push(run);
    }
    node.shutdown().await;
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_and_reported_and_every_run_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    let runs = fill(dir.path(), 4).await;
    let seg = segment(dir.path());
    let good_len = fs::metadata(&seg).unwrap().len();
    // A write the crash tore: a frame header promising more than is there.
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0xff, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9a])
        .unwrap();
    drop(f);

    let (node, report) = open(dir.path()).await;
    let store = report.store.as_ref().expect("the embedded store reports");
    let cut = store.truncated.as_ref().expect("the torn tail is reported");
    assert_eq!(cut.offset, good_len, "{store}");
    assert_eq!(cut.dropped_bytes, 9);
    assert!(!cut.may_have_lost_acknowledged_data(), "{store}");
    assert!(
        store.to_string().contains("dropped a torn 9-byte tail"),
        "{store}"
    );
    assert!(report.resumed.is_empty() && report.diverged.is_empty());
    for (x, run) in runs.iter().enumerate() {
        let info = node.status(*run).await.unwrap();
        assert_eq!(info.outcome, Some(ok(x as i64 * 10 + 3)));
        assert_eq!(info.journal_len, 4);
    }
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_last_record_is_cut_and_its_run_resumes_from_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let runs = fill(dir.path(), 3).await;
    let last = *runs.last().unwrap();
    let seg = segment(dir.path());
    // The last frame is the last run's final journal entry with its
    // `Finished` record: flip a byte near its end.
    let mut bytes = fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x5a;
    fs::write(&seg, &bytes).unwrap();

    let (node, report) = open(dir.path()).await;
    let store = report.store.as_ref().expect("the embedded store reports");
    let cut = store
        .truncated
        .as_ref()
        .expect("the corrupt tail is reported");
    assert!(
        matches!(cut.reason, TruncationReason::Checksum { .. }),
        "{store}"
    );
    assert!(!cut.may_have_lost_acknowledged_data(), "{store}");
    // The run whose end was cut is resumed from its last good entry and
    // ends again, with the same result; the others are untouched.
    assert_eq!(report.resumed, vec![last], "{report:?}");
    assert!(report.replayed_entries >= 1);
    assert_eq!(result(&node, last).await, ok(23));
    assert_eq!(node.status(last).await.unwrap().journal_len, 4);
    for (x, run) in runs.iter().enumerate().take(2) {
        assert_eq!(result(&node, *run).await, ok(x as i64 * 10 + 3));
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_and_effect_has_a_log_event() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let run = node
        .start("tail_three", vec![Value::Int(5)], None)
        .await
        .unwrap();
    assert_eq!(result(&node, run).await, ok(8));
    let info = node.status(run).await.unwrap();
    let id = run.to_string();
    let events: Vec<_> = node
        .logs()
        .into_iter()
        .filter(|e| e.run.as_deref() == Some(id.as_str()))
        .collect();
    let steps: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Step)
        .collect();
    let effects: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Effect)
        .collect();
    // One step per journal entry, one event per effect attempt.
    assert_eq!(steps.len() as u64, info.journal_len, "{events:#?}");
    assert_eq!(effects.len(), 3, "{events:#?}");
    let msgs: Vec<_> = steps.iter().map(|e| e.msg.as_deref().unwrap()).collect();
    assert_eq!(msgs, ["start", "effect_done", "effect_done", "effect_done"]);
    let program = info.program.to_string();
    for e in &events {
        assert_eq!(e.workflow.as_deref(), Some("tail_three"), "{e:?}");
        assert_eq!(e.program.as_deref(), Some(program.as_str()));
        assert_eq!(e.node.as_deref(), Some("tail-node"));
        assert!(e.duration_us.is_some());
    }
    for e in &effects {
        assert_eq!(e.effect.as_deref(), Some("tail_inc"));
        assert_eq!(e.msg.as_deref(), Some("ok"));
        // The perform instruction, and where it is in this file.
        assert!(
            e.inst.as_deref().is_some_and(|i| i.starts_with('w')),
            "{e:?}"
        );
        let span = e.span.as_deref().expect("a source span");
        assert!(span.contains("node_tail.rs"), "{span}");
    }
    // Events survive a JSON round trip as one line each.
    let line = effects[0].to_json_line();
    assert!(line.contains("\"kind\":\"effect\""), "{line}");
    node.shutdown().await;
}
