//! A real crash: a child process appends and prints every acknowledged
//! journal entry; it is killed with SIGKILL mid-stream, and every entry it
//! printed must be in the store when it is reopened. Three rounds, so the
//! later rounds also recover a log that earlier kills left behind.
//!
//! Runs as its own `main` (harness = false) because it spawns itself: with
//! `DROVER_STORE_KILL_CHILD=<dir>` it is the child.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{entry, entry_bytes, open, program};
use drover_store::{RunId, Store};

const CHILD_ENV: &str = "DROVER_STORE_KILL_CHILD";
const APPENDERS: usize = 8;
const ROUNDS: usize = 3;
const ACKS_BEFORE_KILL: usize = 1500;

fn main() {
    match std::env::var_os(CHILD_ENV) {
        Some(dir) => child(Path::new(&dir)),
        None => parent(),
    }
}

/// Appends forever from several tasks, printing each acknowledged entry.
fn child(dir: &Path) {
    common::runtime().block_on(async {
        let (store, _) = open(dir);
        let store = std::sync::Arc::new(store);
        let (hash, record) = program("victim");
        store.append(vec![record]).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..APPENDERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let start = common::start("victim", hash, i as u64);
                let run = store.start_run(start).await.unwrap().run();
                // A child whose parent died must not run forever.
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut seq = 0;
                while Instant::now() < deadline {
                    store.append(vec![entry(run, seq)]).await.unwrap();
                    // stdout is line-buffered: each line leaves on its `\n`.
                    println!("acked {} {seq}", run.0);
                    seq += 1;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // Highest acknowledged seq per run, over every round.
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            record_ack(&mut acked, &line.unwrap());
            seen += 1;
            if seen == ACKS_BEFORE_KILL {
                break;
            }
        }
        assert_eq!(
            seen, ACKS_BEFORE_KILL,
            "round {round}: the child stopped early"
        );
        // `Child::kill` is SIGKILL on Unix: no destructors, no flush.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child exited by itself"
        );
        // Lines already in the pipe were printed after their ack: count them.
        for line in lines {
            let Ok(line) = line else { break };
            record_ack(&mut acked, &line);
        }

        let (store, report) = open(dir.path());
        let rt = common::runtime();
        let mut durable = 0;
        for (&run, &last) in &acked {
            let run = RunId(run);
            let journal = rt.block_on(store.journal(run)).unwrap();
            assert!(
                journal.len() as u64 > last,
                "round {round}: {run} acked up to seq {last}, store has {} entries ({report})",
                journal.len()
            );
            for (seq, (got, bytes)) in journal.iter().enumerate().take(last as usize + 1) {
                assert_eq!((*got, bytes), (seq as u64, &entry_bytes(run, seq as u64)));
            }
            durable += journal.len();
        }
        let acks: u64 = acked.values().map(|l| l + 1).sum();
        println!("round {round}: {acks} acked entries all present ({durable} durable); {report}");
    }
    println!("kill test: ok");
}

fn record_ack(acked: &mut BTreeMap<u64, u64>, line: &str) {
    let mut words = line.split(' ');
    let (Some("acked"), Some(run), Some(seq)) = (words.next(), words.next(), words.next()) else {
        panic!("unexpected child output {line:?}");
    };
    let (run, seq): (u64, u64) = (run.parse().unwrap(), seq.parse().unwrap());
    let last = acked.entry(run).or_insert(seq);
    *last = (*last).max(seq);
}
