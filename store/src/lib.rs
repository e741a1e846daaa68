//! Drover's stores: where runs, their journals, snapshots, programs and
//! deployments live.
//!
//! One async trait, [`Store`], serves two implementations: the
//! [`EmbeddedStore`] (one process, a local directory, an append-only log with
//! group commit) and, next, a PostgreSQL store shared by a cluster. The node
//! loop awaits the trait and never sees which one it has.
//!
//! **Contracts every implementation keeps.**
//! - Nothing is acknowledged before it is durable (invariant 2): when
//!   `start_run` or `append` returns `Ok`, its records survive a crash of the
//!   process or the machine.
//! - Nothing is visible to reads before it is durable: a read never shows a
//!   record that a crash could still take away.
//! - One call is atomic: after a crash either every record of an `append` is
//!   there or none is.
//! - Concurrent callers share durability barriers (group commit): one fsync
//!   or commit serves every call waiting at that moment.
//! - A rejected call (an `Err` other than IO) changes nothing.

mod embedded;
mod error;
mod types;

use std::future::Future;

use drover_ir::wire::ModuleHash;

pub use embedded::{EmbeddedStore, Options, RecoveryReport, Truncation, TruncationReason};
pub use error::StoreError;
pub use types::{
    Deployment, Finish, ParseRunIdError, Record, RunData, RunFilter, RunId, RunStart, RunStatus,
    RunSummary, Snapshot, StartOutcome, StoreStats,
};

/// The durable home of runs. Every method may be called concurrently from
/// many tasks; the futures are `Send` so a tokio node loop can spawn them.
pub trait Store: Send + Sync + 'static {
    /// Creates a run, or finds the run already started with the same
    /// idempotency key (durable or in the same commit group).
    ///
    /// Durability: `Created` is returned only once the start is durable;
    /// `Existing` only names a run whose start is durable. The program must
    /// already be stored and the parent, if any, must exist.
    fn start_run(
        &self,
        start: RunStart,
    ) -> impl Future<Output = Result<StartOutcome, StoreError>> + Send;

    /// As [`Store::start_run`], with the run's first journal entry (seq 0)
    /// made durable together with the start when the run is `Created`: one
    /// durability barrier instead of two. For `Existing`, `first` is
    /// dropped. The default takes two steps (start, then append); a crash
    /// between them leaves a started run with no journal, which a node
    /// resumes by taking its first step again.
    fn start_run_journaled(
        &self,
        start: RunStart,
        first: Vec<u8>,
    ) -> impl Future<Output = Result<StartOutcome, StoreError>> + Send {
        async move {
            let outcome = self.start_run(start).await?;
            if let StartOutcome::Created(run) = outcome {
                self.append(vec![Record::Journal {
                    run,
                    seq: 0,
                    entry: first,
                }])
                .await?;
            }
            Ok(outcome)
        }
    }

    /// Makes `records` durable, all or none, in order.
    ///
    /// Durability: returns `Ok` only after the records are durable; they are
    /// group-committed with concurrent callers. Atomicity: after a crash all
    /// of them or none are present. Checks (each rejecting the whole call,
    /// nothing written): runs exist and are not finished; journal seqs rise
    /// above the run's last seq and snapshot; snapshots do not go back;
    /// program bytes match their hash; deploys name stored programs.
    fn append(&self, records: Vec<Record>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What a node needs to resume `run`: its start, latest snapshot, the
    /// journal entries after that snapshot and its finish; `None` for an
    /// unknown run. Reflects every acknowledged call.
    fn load_run(
        &self,
        run: RunId,
    ) -> impl Future<Output = Result<Option<RunData>, StoreError>> + Send;

    /// Every journal entry of `run` in seq order, snapshots ignored: for
    /// traces and replay. Empty for an unknown run.
    fn journal(
        &self,
        run: RunId,
    ) -> impl Future<Output = Result<Vec<(u64, Vec<u8>)>, StoreError>> + Send;

    /// Runs matching `filter`, in increasing id order, at most `filter.limit`.
    fn runs(
        &self,
        filter: &RunFilter,
    ) -> impl Future<Output = Result<Vec<RunSummary>, StoreError>> + Send;

    /// Every run not finished: what a node resumes (or claims) at start-up.
    fn unfinished(&self) -> impl Future<Output = Result<Vec<RunId>, StoreError>> + Send;

    /// A stored program's bytes.
    fn program(
        &self,
        hash: ModuleHash,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// The latest deployment of `workflow`.
    fn deployment(
        &self,
        workflow: &str,
    ) -> impl Future<Output = Result<Option<Deployment>, StoreError>> + Send;

    /// The latest deployment of every workflow, by workflow name.
    fn deployments(&self) -> impl Future<Output = Result<Vec<Deployment>, StoreError>> + Send;

    /// Leases up to `limit` unfinished runs that no node holds (or whose
    /// lease expired) to `node` for `lease_ms`, and returns them. Leases are
    /// not journal data: they are lost with the process in the embedded
    /// store and expire by time in a shared one. A node must renew before
    /// expiry and drive only runs it holds.
    fn claim(
        &self,
        node: &str,
        lease_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RunId>, StoreError>> + Send;

    /// Extends `node`'s leases on `runs` by `lease_ms` from now; returns the
    /// runs it still holds (a lease that expired and went to another node,
    /// or a finished run, is dropped from the answer).
    fn renew(
        &self,
        node: &str,
        runs: &[RunId],
        lease_ms: u64,
    ) -> impl Future<Output = Result<Vec<RunId>, StoreError>> + Send;

    /// Gives up `node`'s leases on `runs` so another node may claim them.
    fn release(
        &self,
        node: &str,
        runs: &[RunId],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counters since open; `fsyncs` well below `appends` shows group commit.
    fn stats(&self) -> StoreStats;
}
