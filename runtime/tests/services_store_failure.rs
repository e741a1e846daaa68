//! A store write that really fails (the file-size limit of this process,
//! `RLIMIT_FSIZE`, makes `write` fail with EFBIG) is never acknowledged;
//! the store service sees its writer refuse further writes and fails; its
//! restart reopens the store, which cuts the torn write, and the loop
//! restarted after it resumes every acknowledged run.
//!
//! Alone in its test binary: the limit applies to the whole process.

use std::path::Path;
use std::time::{Duration as StdDuration, Instant};

use drover::logs::EventKind;
use drover::node::{NodeConfig, NodeServices, Outcome, RunFilter, SupervisedNode};
use drover::prelude::*;
use drover::supervisor::{ExitReason, SupervisorTree};
use drover_ir::Value;

#[activity]
pub async fn double(x: i64) -> Result<i64, Error> {
    Ok(x * 2)
}

#[workflow]
pub async fn doze(x: i64) -> Result<i64, Error> {
    sleep(Duration::from_millis(300)).await;
    let y = double(x).await?;
    Ok(y)
}

fn set_file_size_limit(bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscalls with a valid struct; SIGXFSZ is ignored so an
    // oversized write fails with EFBIG instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

fn active_segment_len(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".drl"))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap()
}

fn restarts(tree: &SupervisorTree, id: &str) -> u32 {
    tree.children
        .iter()
        .find(|c| c.info.id == id)
        .map(|c| c.info.restarts)
        .unwrap_or_else(|| panic!("no {id} in\n{tree}"))
}

async fn result(node: &SupervisedNode, run: drover::node::RunId) -> Outcome {
    let handle = node.node().expect("the loop runs");
    tokio::time::timeout(StdDuration::from_secs(20), handle.result(run))
        .await
        .expect("the run ends in time")
        .expect("the result is readable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_never_acknowledged_and_the_restarted_store_resumes_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path());
    config.tick_ms = 5;
    let node = NodeServices::new(config)
        .store_check(StdDuration::from_millis(10))
        .start()
        .await
        .unwrap();
    let handle = node.node().unwrap();
    let mut acknowledged = Vec::new();
    for x in 0..3 {
        let run = handle
            .start("doze", vec![Value::Int(x)], None)
            .await
            .unwrap();
        acknowledged.push((run, x));
    }

    // From here on the log cannot grow by more than one byte.
    set_file_size_limit(Some(active_segment_len(dir.path()) + 1));
    let refused = handle.start("doze", vec![Value::Int(100)], None).await;
    set_file_size_limit(None);
    let error = refused.expect_err("a start whose write failed was acknowledged");
    assert!(error.to_string().contains("File too large"), "{error}");
    drop(handle);

    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let tree = node.tree().await.unwrap();
        if restarts(&tree, "store") == 1 && restarts(&tree, "loop") == 1 && node.node().is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no store restart:\n{tree}");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }

    // Only the acknowledged runs exist; each completes exactly once.
    let handle = node.node().unwrap();
    let filter = RunFilter {
        limit: 100,
        ..RunFilter::default()
    };
    let listed: Vec<_> = handle
        .list(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run)
        .collect();
    assert_eq!(
        listed,
        acknowledged.iter().map(|(r, _)| *r).collect::<Vec<_>>()
    );
    drop(handle);
    for (run, x) in &acknowledged {
        assert_eq!(
            result(&node, *run).await,
            Outcome::Completed(Value::ok(Value::Int(x * 2)))
        );
    }
    // The store takes writes again.
    let run = node
        .node()
        .unwrap()
        .start("doze", vec![Value::Int(21)], None)
        .await
        .unwrap();
    assert_eq!(
        result(&node, run).await,
        Outcome::Completed(Value::ok(Value::Int(42)))
    );

    let events: Vec<String> = node
        .logs()
        .into_iter()
        .filter(|e| e.kind == EventKind::Node)
        .map(|e| e.msg.unwrap_or_default())
        .collect();
    assert!(
        events
            .iter()
            .any(|m| m.starts_with("store exited: error: store writer failed")),
        "{events:#?}"
    );
    // The reopened store cut the torn write and said so.
    let reopened = node
        .logs()
        .into_iter()
        .filter(|e| e.msg.as_deref() == Some("store opened"))
        .nth(1)
        .expect("a second store open");
    assert!(
        reopened.fields.contains_key("truncated"),
        "{:?}",
        reopened.fields
    );
    assert_eq!(node.shutdown().await, ExitReason::Shutdown);
}
