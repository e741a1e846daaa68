//! A write that really fails (this process's file-size limit,
//! `RLIMIT_FSIZE`, makes `write` return EFBIG) is never acknowledged; the
//! store refuses every later write and says so in `health`; reopening it
//! recovers every acknowledged record and cuts the torn one.
//!
//! Alone in its test binary: the limit applies to the whole process. Also
//! here: `barrier` waits for writes whose callers stopped waiting.

mod common;

use std::path::Path;

use common::{entry, open, program};
use drover_store::{Store, StoreError};

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

fn log_len(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".drl"))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_refused_then_poisons_the_store_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let (hash, record) = program("w");
    store.append(vec![record]).await.unwrap();
    let run = store
        .start_run(common::start("w", hash, 1))
        .await
        .unwrap()
        .run();
    store.append(vec![entry(run, 0)]).await.unwrap();
    assert!(store.health().is_ok());

    set_file_size_limit(Some(log_len(dir.path()) + 1));
    let failed = store.append(vec![entry(run, 1)]).await;
    set_file_size_limit(None);
    match failed {
        Err(StoreError::Poisoned { cause }) => {
            assert!(cause.contains("File too large"), "{cause}")
        }
        other => panic!("a failed write was answered with {other:?}"),
    }
    // Not visible to reads either.
    assert_eq!(store.journal(run).await.unwrap().len(), 1);
    // Every later write is refused, though the disk would take it now.
    assert!(matches!(
        store.append(vec![entry(run, 1)]).await,
        Err(StoreError::Poisoned { .. })
    ));
    assert!(matches!(store.health(), Err(StoreError::Poisoned { .. })));
    drop(store);

    let (store, report) = open(dir.path());
    let cut = report.truncated.expect("the torn write is cut");
    assert_eq!(cut.dropped_bytes, 1, "{cut:?}");
    assert!(store.health().is_ok());
    assert_eq!(store.journal(run).await.unwrap().len(), 1);
    store.append(vec![entry(run, 1)]).await.unwrap();
    assert_eq!(store.journal(run).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barrier_waits_for_writes_whose_callers_stopped_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let (hash, record) = program("b");
    store.append(vec![record]).await.unwrap();
    let run = store
        .start_run(common::start("b", hash, 1))
        .await
        .unwrap()
        .run();
    // Queue appends, then drop their futures after the first poll has
    // handed them to the writer.
    for seq in 0..50 {
        let mut append = Box::pin(store.append(vec![entry(run, seq)]));
        let _ = futures_poll_once(&mut append).await;
    }
    store.barrier().await.unwrap();
    assert_eq!(store.journal(run).await.unwrap().len(), 50);
}

/// Polls a future once and gives up on it.
async fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut *f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}
