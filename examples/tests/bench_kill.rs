//! `kill -9` of a real `drover bench` process mid-run, then a restart on the
//! same data directory: every start the killed process acknowledged (it
//! prints `acked <run> <n>` as `start` returns) completes exactly once with
//! `5n + 8`, no journal record is lost or corrupt, and the store's recovery
//! report is clean except for a torn tail, which it names. Also the CLI's
//! report of a tail it cut.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use drover::node::{Node, NodeConfig, Outcome, RunId};
use drover_ir::Value;

fn drover() -> Command {
    Command::new(env!("CARGO_BIN_EXE_drover"))
}

/// Runs `drover` to its end with a time limit: (exit code, stdout, stderr).
fn run(args: &[&str], limit: Duration) -> (i32, String, String) {
    let mut child = drover()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("drover starts");
    let (mut out, mut err) = (String::new(), String::new());
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = se.read_to_string(&mut e);
        e
    });
    let _ = so.read_to_string(&mut out);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("drover {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    err.push_str(&reader.join().unwrap_or_default());
    (status.code().unwrap_or(-1), out, err)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[test]
fn kill_9_mid_bench_loses_no_acknowledged_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let data_s = data.to_str().unwrap();

    // 1. A long bench, killed once a few thousand starts are acknowledged.
    let mut child = drover()
        .args([
            "bench",
            "--data",
            data_s,
            "-n",
            "10000000",
            "-c",
            "64",
            "--print-acked",
            "--json",
            "--baseline-secs",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("drover bench starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked: BTreeMap<RunId, i64> = BTreeMap::new();
    let record = |line: String, acked: &mut BTreeMap<RunId, i64>| {
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("acked"), "unexpected line {line:?}");
        let run: RunId = parts.next().unwrap().parse().expect("a run id");
        let n: i64 = parts.next().unwrap().parse().expect("an input");
        assert!(acked.insert(run, n).is_none(), "run {run} acked twice");
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.len() < 3000 {
        assert!(
            Instant::now() < deadline,
            "only {} starts acknowledged in time",
            acked.len()
        );
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(line) => record(line, &mut acked),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("drover bench exited early"),
        }
    }
    // SIGKILL: no destructor, no flush, no clean close of the store.
    child.kill().expect("kill -9");
    let status = child.wait().unwrap();
    assert!(!status.success());
    // Acks printed before the kill are still in the pipe.
    reader.join().unwrap();
    while let Ok(line) = rx.try_recv() {
        record(line, &mut acked);
    }

    // 2. Restart on the same directory: the bench resumes what was in
    // flight, awaits it, and runs a few more.
    let (code, out, err) = run(
        &[
            "bench",
            "--data",
            data_s,
            "-n",
            "200",
            "--json",
            "--baseline-secs",
            "0",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let report = json(&out);
    assert_eq!(report["verified"], 200, "{report:#}");
    let rec = &report["recovery"];
    assert_eq!(rec["resumed_failed"], 0, "{rec:#}");
    assert_eq!(rec["diverged"], 0, "{rec:#}");
    assert_eq!(rec["unloadable"], 0, "{rec:#}");
    assert_eq!(rec["resumed"], rec["resumed_completed"], "{rec:#}");
    // 64 runs were in flight when it died.
    assert!(rec["resumed"].as_u64().unwrap() >= 1, "{rec:#}");
    // At most a torn tail, never acknowledged data.
    let said = rec["store"].as_str().unwrap();
    assert!(!said.contains("WARNING"), "{said}");

    // 3. Open the directory in this process and check every acknowledged run.
    drover_examples::link();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (node, report) = Node::open(NodeConfig::new(&data)).await.unwrap();
        let store = report.store.as_ref().unwrap();
        assert!(
            store.truncated.is_none(),
            "clean after a clean close: {store}"
        );
        assert!(report.resumed.is_empty(), "{report:?}");
        assert!(report.diverged.is_empty() && report.failed.is_empty());
        for (&run, &n) in &acked {
            let info = node.status(run).await.unwrap();
            assert_eq!(info.workflow, "bench_flow");
            assert_eq!(
                info.outcome,
                Some(Outcome::Completed(Value::Int(5 * n + 8))),
                "run {run} (n = {n})"
            );
            // Start and one entry per activity result: nothing lost, and
            // one terminal entry, so it completed once.
            assert_eq!(info.journal_len, 4, "run {run}");
            let trace = node.trace(run).await.unwrap();
            let effects: Vec<(&str, u64)> =
                trace.iter().map(|t| (t.effect.as_str(), t.id)).collect();
            assert_eq!(
                effects.iter().map(|e| e.0).collect::<Vec<_>>(),
                ["bench_inc", "bench_double", "bench_add3"],
                "run {run}: {trace:?}"
            );
            assert!(
                trace.iter().all(|t| t.ok && t.result.is_some()),
                "{trace:?}"
            );
            let a = n + 1;
            assert_eq!(trace[2].result.as_deref(), Some(&*(2 * a + 3).to_string()));
        }
        node.shutdown().await;
    });
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

#[test]
fn the_bench_reports_a_tail_the_store_cut() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let data_s = data.to_str().unwrap();
    let args = [
        "bench",
        "--data",
        data_s,
        "-n",
        "50",
        "--baseline-secs",
        "0",
    ];
    let (code, out, err) = run(&args, Duration::from_secs(60));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("verified      50/50"), "{out}");
    assert!(!err.contains("dropped"), "{err}");
    let mut f = OpenOptions::new()
        .append(true)
        .open(segment(&data))
        .unwrap();
    f.write_all(&[0x40, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(f);
    let (code, out, err) = run(&args, Duration::from_secs(60));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("dropped a torn 7-byte tail"), "{err}");
    assert!(out.contains("verified      50/50"), "{out}");
}
