//! [`StoreError`]: every way a store call can fail, each saying where and why.

use std::io;
use std::path::PathBuf;

use drover_ir::wire::ModuleHash;

use crate::types::RunId;

/// A store call that failed. Contract errors (unknown run, seq conflict, …)
/// reject the whole call and leave the store unchanged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operating-system call on a store file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the store was doing ("open", "write", "sync_data", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another process (or another store in this one) holds the directory.
    #[error("store directory {dir} is in use by another process (lock file {lock} is held); stop it or open another directory")]
    Locked {
        /// The store directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A file that should be a log segment is not one we can read.
    #[error("{path} is not a Drover log segment: {reason}")]
    NotALog {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header.
        reason: String,
    },
    /// Segment numbers skip one: a file holding acknowledged data is gone.
    #[error("log segment {missing} is missing from {dir} (segments run {first} to {last}); refusing to open with a hole in the log")]
    MissingSegment {
        /// The store directory.
        dir: PathBuf,
        /// The missing segment's file name.
        missing: String,
        /// The first segment's file name.
        first: String,
        /// The last segment's file name.
        last: String,
    },
    /// A frame passed its checksum but its contents make no sense: written by
    /// another format version or by a bug, not torn by a crash.
    #[error("{path} offset {offset}: {reason}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// The frame's offset in the segment.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// One call's records encode to more than one frame may hold.
    #[error("batch of {records} records encodes to {size} bytes, over the {max}-byte frame limit; split it or raise `max_frame_bytes`")]
    FrameTooLarge {
        /// Records in the batch.
        records: usize,
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The writer's queue is full: callers are outpacing the disk.
    #[error("store write queue is full ({limit} batches waiting); retry later")]
    QueueFull {
        /// The queue's capacity.
        limit: usize,
    },
    /// `append` was called with no records.
    #[error("append called with no records")]
    EmptyBatch,
    /// A record names a run the store has never started.
    #[error("record {index} names run {run}, which does not exist")]
    UnknownRun {
        /// The record's position in the call.
        index: usize,
        /// The run.
        run: RunId,
    },
    /// A record was appended to a run that already finished.
    #[error("record {index}: run {run} has finished; nothing more can be appended to it")]
    RunFinished {
        /// The record's position in the call.
        index: usize,
        /// The run.
        run: RunId,
    },
    /// A journal entry's seq does not come after the run's journal and
    /// snapshot; in a cluster this is how a second writer is caught.
    #[error("record {index}: run {run} journal seq {seq} must be above {frontier}, the run's last journaled or snapshotted seq")]
    SeqConflict {
        /// The record's position in the call.
        index: usize,
        /// The run.
        run: RunId,
        /// The seq offered.
        seq: u64,
        /// The highest seq the run already has.
        frontier: u64,
    },
    /// A snapshot goes back before the run's latest snapshot.
    #[error("record {index}: run {run} snapshot up to seq {upto_seq} is older than its latest snapshot (up to seq {latest})")]
    SnapshotBehind {
        /// The record's position in the call.
        index: usize,
        /// The run.
        run: RunId,
        /// The snapshot offered.
        upto_seq: u64,
        /// The latest stored snapshot.
        latest: u64,
    },
    /// A start or deploy names a program that is not stored.
    #[error("program {hash} is not stored; append a Record::Program first")]
    UnknownProgram {
        /// The program.
        hash: ModuleHash,
    },
    /// A `Record::Program` whose bytes do not hash to its hash.
    #[error("record {index}: program bytes hash to {actual}, not {claimed}")]
    ProgramHashMismatch {
        /// The record's position in the call.
        index: usize,
        /// The hash given.
        claimed: ModuleHash,
        /// The hash of the bytes.
        actual: ModuleHash,
    },
    /// A child run names a parent run that does not exist.
    #[error("parent run {parent} does not exist")]
    UnknownParent {
        /// The parent.
        parent: RunId,
    },
    /// An earlier write or fsync failed. What reached the disk is unknown,
    /// so the store takes no more writes until it is reopened and recovered.
    #[error("store refuses writes after an earlier failure ({cause}); reopen it to recover")]
    Poisoned {
        /// The first failure.
        cause: String,
    },
    /// The store's writer has stopped (the store is being dropped).
    #[error("store is closed")]
    Closed,
    /// Open options that cannot work together.
    #[error("bad store options: {0}")]
    BadOptions(String),
}

impl StoreError {
    /// An [`StoreError::Io`] for `op` on `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
