//! Append throughput of the embedded store against the disk's own fsync rate.
//!
//! First it measures the raw cost of one `write` + `sync_data` of a 200-byte
//! record on this disk: the most appends per second a store that fsyncs each
//! append could reach. Then it runs 1, 16 and 256 concurrent appenders of
//! ~200-byte journal records for a fixed time and reports appends/s and
//! fsyncs/s, with appends/s as a multiple of that baseline. Group commit is
//! what lets the multiple exceed 1.
//!
//! `cargo bench -p drover-store --bench append` (set `DROVER_BENCH_SECS` to
//! change the time per case; default 3).

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_ir::wire::hash_bytes;
use drover_store::{EmbeddedStore, Options, Record, RunStart, Store};

const RECORD: usize = 200;

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we ignore.
    let secs: u64 = std::env::var("DROVER_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench dir");

    let fsync = raw_fsync(&dir.path().join("raw"), Duration::from_secs(secs));
    let baseline = 1.0 / fsync.as_secs_f64();
    println!(
        "raw write+sync_data of {RECORD} bytes: {:.1} µs each, so {:.0} fsyncs/s (baseline)",
        fsync.as_secs_f64() * 1e6,
        baseline
    );
    println!(
        "{:>10} {:>12} {:>10} {:>14} {:>12}",
        "appenders", "appends/s", "fsyncs/s", "appends/fsync", "x baseline"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for appenders in [1usize, 16, 256] {
        let path = dir.path().join(format!("store-{appenders}"));
        let (appends, fsyncs, elapsed) =
            rt.block_on(run_case(&path, appenders, Duration::from_secs(secs)));
        let per_s = appends as f64 / elapsed.as_secs_f64();
        println!(
            "{appenders:>10} {per_s:>12.0} {:>10.0} {:>14.1} {:>12.2}",
            fsyncs as f64 / elapsed.as_secs_f64(),
            appends as f64 / fsyncs.max(1) as f64,
            per_s / baseline
        );
    }
}

/// The mean time of one 200-byte append plus `sync_data`, run for `time`.
fn raw_fsync(path: &std::path::Path, time: Duration) -> Duration {
    let mut f = File::create(path).expect("raw file");
    let record = [0x5au8; RECORD];
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < time {
        f.write_all(&record).expect("write");
        f.sync_data().expect("sync_data");
        n += 1;
    }
    start.elapsed() / n.max(1)
}

/// `appenders` tasks each appending to their own run until `time` is up.
async fn run_case(
    path: &std::path::Path,
    appenders: usize,
    time: Duration,
) -> (u64, u64, Duration) {
    let (store, _) = EmbeddedStore::open(path, Options::default()).expect("open store");
    let store = Arc::new(store);
    let bytes = b"bench program".to_vec();
    let hash = hash_bytes(&bytes);
    store
        .append(vec![Record::Program { hash, bytes }])
        .await
        .expect("program");
    let mut runs = Vec::new();
    for i in 0..appenders {
        let start = RunStart {
            workflow: "bench".into(),
            program: hash,
            input: vec![],
            idempotency_key: None,
            parent: None,
            started_at_ms: i as u64,
        };
        runs.push(store.start_run(start).await.expect("start").run());
    }
    let before = store.stats();
    let began = Instant::now();
    let deadline = began + time;
    let tasks: Vec<_> = runs
        .into_iter()
        .map(|run| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut seq = 0;
                while Instant::now() < deadline {
                    let entry = vec![seq as u8; RECORD];
                    store
                        .append(vec![Record::Journal { run, seq, entry }])
                        .await
                        .expect("append");
                    seq += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("appender");
    }
    let elapsed = began.elapsed();
    let after = store.stats();
    (
        after.appends - before.appends,
        after.fsyncs - before.fsyncs,
        elapsed,
    )
}
