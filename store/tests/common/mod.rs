//! Helpers shared by the store's integration tests.
#![allow(dead_code)] // Each test file uses a different subset.

use std::path::Path;

use drover_ir::wire::{hash_bytes, ModuleHash};
use drover_store::{EmbeddedStore, Options, Record, RecoveryReport, RunId, RunStart, Store};

/// Opens the store in `dir`, failing the test with the error's text.
pub fn open(dir: &Path) -> (EmbeddedStore, RecoveryReport) {
    open_with(dir, Options::default())
}

/// Opens with `options`.
pub fn open_with(dir: &Path, options: Options) -> (EmbeddedStore, RecoveryReport) {
    match EmbeddedStore::open(dir, options) {
        Ok(opened) => opened,
        Err(e) => panic!("open {}: {e}", dir.display()),
    }
}

/// Program bytes and the record that stores them.
pub fn program(name: &str) -> (ModuleHash, Record) {
    let bytes = format!("module {name}").into_bytes();
    let hash = hash_bytes(&bytes);
    (hash, Record::Program { hash, bytes })
}

/// A start of `workflow` on `program`.
pub fn start(workflow: &str, program: ModuleHash, at_ms: u64) -> RunStart {
    RunStart {
        workflow: workflow.into(),
        program,
        input: format!("input of {workflow} at {at_ms}").into_bytes(),
        idempotency_key: None,
        parent: None,
        started_at_ms: at_ms,
    }
}

/// A journal record whose bytes name its run and seq.
pub fn entry(run: RunId, seq: u64) -> Record {
    Record::Journal {
        run,
        seq,
        entry: entry_bytes(run, seq),
    }
}

/// The bytes [`entry`] stores.
pub fn entry_bytes(run: RunId, seq: u64) -> Vec<u8> {
    format!("{run} entry {seq}").into_bytes()
}

/// Stores a program and starts one run of it.
pub async fn program_and_run(store: &EmbeddedStore, workflow: &str) -> (ModuleHash, RunId) {
    let (hash, record) = program(workflow);
    store.append(vec![record]).await.expect("store program");
    let run = store
        .start_run(start(workflow, hash, 1))
        .await
        .expect("start run")
        .run();
    (hash, run)
}

/// A tokio runtime for tests that are not `#[tokio::test]`.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
