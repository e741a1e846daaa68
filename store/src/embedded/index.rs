//! The embedded store's in-memory state, rebuilt from the log at open.
//!
//! Two views, because visibility and admission move at different times:
//! - [`Admission`] is the writer's: it checks each call against everything
//!   accepted so far, including calls still waiting for their fsync, and
//!   assigns run ids. Only the writer thread touches it.
//! - [`Index`] is the readers': it holds locations of durable records and is
//!   updated only after the fsync that made them durable.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use drover_ir::wire::ModuleHash;

use super::format::{Blob, Op, StartMeta};
use crate::error::StoreError;
use crate::types::{Deployment, RunId, RunStatus, RunSummary};

/// Where a blob lives on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Segment number.
    pub segment: u32,
    /// Offset of the blob's first byte in the segment file.
    pub offset: u64,
    /// Its length.
    pub len: u32,
}

impl Loc {
    /// The location of `blob` in the frame at `frame_offset` of `segment`.
    pub fn of(segment: u32, frame_offset: u64, blob: Blob) -> Loc {
        Loc {
            segment,
            offset: frame_offset + u64::from(blob.at),
            len: blob.len,
        }
    }
}

/// What the writer must know about a run to check appends to it.
#[derive(Clone, Copy, Debug, Default)]
struct Gate {
    /// The highest journal seq or snapshot seq: new entries go above it.
    frontier: Option<u64>,
    /// The latest snapshot's seq.
    snapshot: Option<u64>,
    finished: bool,
}

/// The writer's view: enough to accept or refuse a call before it is written.
#[derive(Debug, Default)]
pub struct Admission {
    runs: HashMap<RunId, Gate>,
    keys: HashMap<String, RunId>,
    programs: HashSet<ModuleHash>,
    next_run: u64,
}

impl Admission {
    /// The run already started with `key`, durable or waiting for its fsync.
    pub fn run_for_key(&self, key: &str) -> Option<RunId> {
        self.keys.get(key).copied()
    }

    /// The id the next start gets; run ids start at 1.
    pub fn next_run(&self) -> RunId {
        RunId(self.next_run.max(1))
    }

    /// Checks a start before it is encoded.
    pub fn check_start(
        &self,
        program: &ModuleHash,
        parent: Option<(RunId, u64)>,
    ) -> Result<(), StoreError> {
        if !self.programs.contains(program) {
            return Err(StoreError::UnknownProgram { hash: *program });
        }
        if let Some((parent, _)) = parent {
            if !self.runs.contains_key(&parent) {
                return Err(StoreError::UnknownParent { parent });
            }
        }
        Ok(())
    }

    /// Checks `ops` as one call and, if every one passes, records their
    /// effect; otherwise changes nothing.
    pub fn admit(&mut self, ops: &[Op]) -> Result<(), StoreError> {
        // Gates this call changes, so later ops in it see earlier ones and a
        // refusal leaves `self` untouched.
        let mut staged: HashMap<RunId, Gate> = HashMap::new();
        let mut new_programs: HashSet<ModuleHash> = HashSet::new();
        let mut new_keys: Vec<(&str, RunId)> = Vec::new();
        let mut next_run = self.next_run;
        for (index, op) in ops.iter().enumerate() {
            let gate_of = |run: RunId, staged: &HashMap<RunId, Gate>| {
                staged
                    .get(&run)
                    .or_else(|| self.runs.get(&run))
                    .copied()
                    .ok_or(StoreError::UnknownRun { index, run })
            };
            match op {
                Op::Start { run, meta, .. } => {
                    if self.runs.contains_key(run) || staged.contains_key(run) {
                        return Err(StoreError::Corrupt {
                            path: Default::default(),
                            offset: 0,
                            reason: format!("run {run} started twice"),
                        });
                    }
                    staged.insert(*run, Gate::default());
                    if let Some(key) = &meta.idempotency_key {
                        new_keys.push((key, *run));
                    }
                    next_run = next_run.max(run.0.saturating_add(1));
                }
                Op::Journal { run, seq, .. } => {
                    let mut gate = gate_of(*run, &staged)?;
                    if gate.finished {
                        return Err(StoreError::RunFinished { index, run: *run });
                    }
                    if let Some(frontier) = gate.frontier.filter(|f| seq <= f) {
                        return Err(StoreError::SeqConflict {
                            index,
                            run: *run,
                            seq: *seq,
                            frontier,
                        });
                    }
                    gate.frontier = Some(*seq);
                    staged.insert(*run, gate);
                }
                Op::Snapshot { run, upto_seq, .. } => {
                    let mut gate = gate_of(*run, &staged)?;
                    if gate.finished {
                        return Err(StoreError::RunFinished { index, run: *run });
                    }
                    if let Some(latest) = gate.snapshot.filter(|l| upto_seq < l) {
                        return Err(StoreError::SnapshotBehind {
                            index,
                            run: *run,
                            upto_seq: *upto_seq,
                            latest,
                        });
                    }
                    gate.snapshot = Some(*upto_seq);
                    gate.frontier = Some(gate.frontier.map_or(*upto_seq, |f| f.max(*upto_seq)));
                    staged.insert(*run, gate);
                }
                Op::Finished { run, .. } => {
                    let mut gate = gate_of(*run, &staged)?;
                    if gate.finished {
                        return Err(StoreError::RunFinished { index, run: *run });
                    }
                    gate.finished = true;
                    staged.insert(*run, gate);
                }
                Op::Program { hash, .. } => {
                    new_programs.insert(*hash);
                }
                Op::Deploy { hash, .. } => {
                    if !self.programs.contains(hash) && !new_programs.contains(hash) {
                        return Err(StoreError::UnknownProgram { hash: *hash });
                    }
                }
            }
        }
        for (key, run) in new_keys {
            self.keys.insert(key.to_owned(), run);
        }
        self.runs.extend(staged);
        self.programs.extend(new_programs);
        self.next_run = next_run;
        Ok(())
    }
}

/// A run as readers see it.
#[derive(Debug)]
pub struct RunEntry {
    /// Its start's indexed fields.
    pub meta: StartMeta,
    /// Its input.
    pub input: Loc,
    /// Every journal entry, in seq order.
    pub journal: Vec<(u64, Loc)>,
    /// The latest snapshot.
    pub snapshot: Option<(u64, Loc)>,
    /// Its finish: time and outcome.
    pub finished: Option<(u64, Loc)>,
}

impl RunEntry {
    /// Running or finished.
    pub fn status(&self) -> RunStatus {
        if self.finished.is_some() {
            RunStatus::Finished
        } else {
            RunStatus::Running
        }
    }

    /// Journal entries after the latest snapshot.
    pub fn journal_after_snapshot(&self) -> &[(u64, Loc)] {
        let from = match self.snapshot {
            // Seqs rise strictly, so the first entry above the snapshot
            // splits the journal.
            Some((upto, _)) => self.journal.partition_point(|(seq, _)| *seq <= upto),
            None => 0,
        };
        self.journal.get(from..).unwrap_or_default()
    }

    /// A listing line for run `run`.
    pub fn summary(&self, run: RunId) -> RunSummary {
        RunSummary {
            run,
            workflow: self.meta.workflow.clone(),
            program: self.meta.program,
            status: self.status(),
            started_at_ms: self.meta.started_at_ms,
            finished_at_ms: self.finished.map(|(at, _)| at),
            journal_len: self.journal.len() as u64,
        }
    }
}

/// The readers' index of durable records.
#[derive(Debug, Default)]
pub struct Index {
    /// Every run by id.
    pub runs: BTreeMap<RunId, RunEntry>,
    /// Runs not finished.
    pub unfinished: BTreeSet<RunId>,
    /// Idempotency keys of durable starts.
    pub keys: HashMap<String, RunId>,
    /// Stored programs.
    pub programs: HashMap<ModuleHash, Loc>,
    /// Latest deployment per workflow.
    pub deployments: BTreeMap<String, Deployment>,
    /// Records applied.
    pub records: u64,
}

impl Index {
    /// Applies the ops of the frame at `frame_offset` of `segment`. They
    /// passed [`Admission::admit`], so runs they name exist; a run that does
    /// not is skipped rather than trusted.
    pub fn apply(&mut self, segment: u32, frame_offset: u64, ops: Vec<Op>) {
        let at = |blob| Loc::of(segment, frame_offset, blob);
        for op in ops {
            self.records += 1;
            match op {
                Op::Start { run, meta, input } => {
                    if let Some(key) = &meta.idempotency_key {
                        self.keys.insert(key.clone(), run);
                    }
                    self.unfinished.insert(run);
                    self.runs.insert(
                        run,
                        RunEntry {
                            meta,
                            input: at(input),
                            journal: Vec::new(),
                            snapshot: None,
                            finished: None,
                        },
                    );
                }
                Op::Journal { run, seq, entry } => {
                    if let Some(r) = self.runs.get_mut(&run) {
                        r.journal.push((seq, at(entry)));
                    }
                }
                Op::Snapshot {
                    run,
                    upto_seq,
                    state,
                } => {
                    if let Some(r) = self.runs.get_mut(&run) {
                        r.snapshot = Some((upto_seq, at(state)));
                    }
                }
                Op::Finished {
                    run,
                    at_ms,
                    outcome,
                } => {
                    if let Some(r) = self.runs.get_mut(&run) {
                        r.finished = Some((at_ms, at(outcome)));
                        self.unfinished.remove(&run);
                    }
                }
                Op::Program { hash, bytes } => {
                    self.programs.insert(hash, at(bytes));
                }
                Op::Deploy {
                    workflow,
                    hash,
                    at_ms,
                } => {
                    self.deployments.insert(
                        workflow.clone(),
                        Deployment {
                            workflow,
                            program: hash,
                            at_ms,
                        },
                    );
                }
            }
        }
    }
}
