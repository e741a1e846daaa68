//! The values that cross the [`crate::Store`] trait.

use std::fmt;
use std::str::FromStr;

use drover_ir::wire::ModuleHash;

/// A run's identity, assigned by the store in increasing order. Displays as
/// `r-<decimal>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r-{}", self.0)
    }
}

/// A string that is not `r-<decimal>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a run id: expected r-<decimal>, found {found:?}")]
pub struct ParseRunIdError {
    /// The input, cut to a readable length.
    pub found: String,
}

impl FromStr for RunId {
    type Err = ParseRunIdError;

    fn from_str(s: &str) -> Result<Self, ParseRunIdError> {
        let error = || ParseRunIdError {
            found: s.chars().take(40).collect(),
        };
        let digits = s.strip_prefix("r-").ok_or_else(error)?;
        // `u64::from_str` accepts a leading `+`; a run id never has one.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        digits.parse().map(RunId).map_err(|_| error())
    }
}

/// Everything needed to start a run; stored once and never changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStart {
    /// The workflow's name within its program.
    pub workflow: String,
    /// The program the run is pinned to (invariant 5); it must be stored first.
    pub program: ModuleHash,
    /// The run's input, opaque to the store.
    pub input: Vec<u8>,
    /// Starting twice with the same key gives the same run, across restarts.
    pub idempotency_key: Option<String>,
    /// The parent run and the effect sequence number that started this child.
    pub parent: Option<(RunId, u64)>,
    /// Wall-clock start, chosen by the caller (the store reads no clock for data).
    pub started_at_ms: u64,
}

/// What [`crate::Store::start_run`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new run was created and is durable.
    Created(RunId),
    /// A run with the same idempotency key already existed; nothing was written.
    Existing(RunId),
}

impl StartOutcome {
    /// The run, created or existing.
    pub fn run(self) -> RunId {
        match self {
            StartOutcome::Created(run) | StartOutcome::Existing(run) => run,
        }
    }
}

/// One thing to make durable. A call to [`crate::Store::append`] takes several,
/// and they become durable together or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// One journal entry of a run (the runtime encodes the interpreter's
    /// `JournalEntry`). `seq` must exceed every seq and snapshot of the run.
    Journal {
        /// The run.
        run: RunId,
        /// The entry's position in the run's journal.
        seq: u64,
        /// The encoded entry, opaque to the store.
        entry: Vec<u8>,
    },
    /// The run's state after every journal entry with seq ≤ `upto_seq`.
    Snapshot {
        /// The run.
        run: RunId,
        /// The last journal seq the state includes.
        upto_seq: u64,
        /// The encoded state (`RunState::snapshot`), opaque to the store.
        state: Vec<u8>,
    },
    /// The run ended; nothing more may be appended to it.
    Finished {
        /// The run.
        run: RunId,
        /// The encoded outcome, opaque to the store.
        outcome: Vec<u8>,
        /// Wall-clock end, chosen by the caller.
        at_ms: u64,
    },
    /// A program's bytes; `hash` must be their BLAKE3 hash.
    Program {
        /// The program's identity.
        hash: ModuleHash,
        /// The encoded module (`.dbc`).
        bytes: Vec<u8>,
    },
    /// New runs of `workflow` use program `hash` (which must be stored).
    Deploy {
        /// The workflow's name.
        workflow: String,
        /// The program deployed.
        hash: ModuleHash,
        /// Wall-clock time of the deploy, chosen by the caller.
        at_ms: u64,
    },
}

impl Record {
    /// The run this record belongs to, if any.
    pub fn run(&self) -> Option<RunId> {
        match self {
            Record::Journal { run, .. }
            | Record::Snapshot { run, .. }
            | Record::Finished { run, .. } => Some(*run),
            Record::Program { .. } | Record::Deploy { .. } => None,
        }
    }
}

/// Whether a run has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Started and not finished: a node should be driving it.
    Running,
    /// A `Finished` record is durable.
    Finished,
}

/// A run's finish, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finish {
    /// The encoded outcome.
    pub outcome: Vec<u8>,
    /// When it finished.
    pub at_ms: u64,
}

/// A run's latest snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last journal seq the state includes.
    pub upto_seq: u64,
    /// The encoded state.
    pub state: Vec<u8>,
}

/// What a node needs to resume a run: its start, latest snapshot, the journal
/// entries after that snapshot, and its finish if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunData {
    /// The run.
    pub run: RunId,
    /// How it was started.
    pub start: RunStart,
    /// The latest snapshot, if one was taken.
    pub snapshot: Option<Snapshot>,
    /// Journal entries with seq above the snapshot's `upto_seq` (all of them
    /// without a snapshot), in seq order.
    pub journal: Vec<(u64, Vec<u8>)>,
    /// The finish, once durable.
    pub finished: Option<Finish>,
}

/// One line of a run listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// The run.
    pub run: RunId,
    /// Its workflow.
    pub workflow: String,
    /// Its program.
    pub program: ModuleHash,
    /// Running or finished.
    pub status: RunStatus,
    /// When it started.
    pub started_at_ms: u64,
    /// When it finished, if it has.
    pub finished_at_ms: Option<u64>,
    /// How many journal entries it has.
    pub journal_len: u64,
}

/// Which runs [`crate::Store::runs`] lists. Every field narrows; the default
/// lists the first 100 runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs started at or after this time.
    pub started_after_ms: Option<u64>,
    /// Only runs started strictly before this time.
    pub started_before_ms: Option<u64>,
    /// Only runs with an id above this one: the cursor for the next page.
    pub after: Option<RunId>,
    /// At most this many runs, in increasing id order.
    pub limit: usize,
}

impl Default for RunFilter {
    fn default() -> Self {
        RunFilter {
            workflow: None,
            status: None,
            started_after_ms: None,
            started_before_ms: None,
            after: None,
            limit: 100,
        }
    }
}

impl RunFilter {
    /// Whether a run passes every condition but the cursor and limit.
    pub fn matches(&self, workflow: &str, status: RunStatus, started_at_ms: u64) -> bool {
        self.workflow.as_deref().is_none_or(|w| w == workflow)
            && self.status.is_none_or(|s| s == status)
            && self.started_after_ms.is_none_or(|t| started_at_ms >= t)
            && self.started_before_ms.is_none_or(|t| started_at_ms < t)
    }
}

/// Which program a workflow's new runs use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The workflow's name.
    pub workflow: String,
    /// The program deployed.
    pub program: ModuleHash,
    /// When it was deployed.
    pub at_ms: u64,
}

/// Counters since the store was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Calls to `start_run` (that wrote) and `append`, acknowledged.
    pub appends: u64,
    /// Records in those calls.
    pub records: u64,
    /// Bytes written to the log, framing included.
    pub bytes: u64,
    /// Durability barriers (`sync_data` calls, or commits): one per group.
    pub fsyncs: u64,
}
