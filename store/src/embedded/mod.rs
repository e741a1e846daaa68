//! [`EmbeddedStore`]: one process, one directory, an append-only log.
//!
//! ```text
//! dir/LOCK                 held (flock) while a store has the directory open
//! dir/log-000001.drl       segments, see `format`; the last one is appended to
//! dir/salvage/             bytes recovery cut off, kept for an operator
//! ```
//!
//! **Write path.** Callers encode their frame, then queue it to the one
//! writer thread with a oneshot for the answer. The writer takes everything
//! queued at that moment (up to `max_group_bytes`), checks each call against
//! [`index::Admission`], writes the accepted frames with one `write`, calls
//! `sync_data` once, applies them to the readers' [`index::Index`], and only
//! then answers every caller in the group. Nothing is visible or acknowledged
//! before its fsync.
//!
//! **Read path.** Reads take the index's read lock just long enough to copy
//! locations, then `pread` the bytes; the index holds offsets, not payloads.
//!
//! **Failure.** If a write or fsync fails, what reached the disk is unknown
//! (and retrying fsync after a failure can report success for lost pages), so
//! the writer refuses every later write with [`StoreError::Poisoned`] until
//! the store is reopened and recovery finds out what is really there.

mod format;
mod index;
mod recovery;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drover_ir::wire::{hash_bytes, ModuleHash};
use futures_channel::oneshot;

use self::format::{encode_frame, encoded_size, segment_header, Item, Op, FRAME_LIMIT};
use self::index::{Admission, Index, Loc};
pub use self::recovery::{RecoveryReport, Truncation, TruncationReason};
use crate::error::StoreError;
use crate::types::{
    Deployment, Finish, Record, RunData, RunFilter, RunId, RunStart, RunSummary, Snapshot,
    StartOutcome, StoreStats,
};
use crate::Store;

/// Limits and sizes of an [`EmbeddedStore`].
#[derive(Clone, Debug)]
pub struct Options {
    /// A new segment starts once the active one would pass this size. A
    /// group is never split, so a segment can exceed it by one group.
    pub segment_bytes: u64,
    /// The largest frame (one call's encoded records) accepted.
    pub max_frame_bytes: usize,
    /// The most bytes one group commit writes; more waits for the next one.
    pub max_group_bytes: usize,
    /// Calls that may wait for the writer before `QueueFull`.
    pub queue_capacity: usize,
    /// The longest the writer waits, once a group has begun, for as many
    /// calls as the previous group acknowledged (capped again at half the
    /// previous fsync's duration). Callers that append again as soon as they
    /// are answered then share one fsync instead of splitting into two
    /// alternating groups. Zero turns it off.
    pub group_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes: 64 << 20,
            max_frame_bytes: 16 << 20,
            max_group_bytes: 8 << 20,
            queue_capacity: 65_536,
            group_wait: Duration::from_millis(2),
        }
    }
}

impl Options {
    fn check(&self) -> Result<(), StoreError> {
        if self.max_frame_bytes == 0 || self.max_frame_bytes > FRAME_LIMIT {
            return Err(StoreError::BadOptions(format!(
                "max_frame_bytes is {}, must be 1..={FRAME_LIMIT}",
                self.max_frame_bytes
            )));
        }
        if self.segment_bytes <= format::SEGMENT_HEADER {
            return Err(StoreError::BadOptions(format!(
                "segment_bytes is {}, must exceed the {}-byte segment header",
                self.segment_bytes,
                format::SEGMENT_HEADER
            )));
        }
        if self.max_group_bytes == 0 || self.queue_capacity == 0 {
            return Err(StoreError::BadOptions(
                "max_group_bytes and queue_capacity must be above zero".into(),
            ));
        }
        Ok(())
    }
}

/// The encoded size of a start and, optionally, its first journal entry.
fn start_size(start: &RunStart, first: Option<&[u8]>) -> usize {
    let run = RunId(u64::MAX);
    match first {
        None => encoded_size([Item::Start(run, start)]),
        Some(entry) => {
            let journal = Record::Journal {
                run,
                seq: 0,
                entry: entry.to_vec(),
            };
            encoded_size([Item::Start(run, start), Item::Record(&journal)])
        }
    }
}

/// A segment's file name.
pub(crate) fn segment_name(number: u32) -> String {
    format!("log-{number:06}.drl")
}

/// The segment number in a file name, if it is one.
fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("log-")?.strip_suffix(".drl")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Makes a directory's entries (created, renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync directory", dir, e))
}

/// Creates segment `number` whole or not at all: the header is written and
/// synced under a temporary name, then renamed into place.
fn create_segment(dir: &Path, number: u32) -> Result<PathBuf, StoreError> {
    let path = dir.join(segment_name(number));
    let tmp = dir.join(format!("{}.tmp", segment_name(number)));
    let mut f = File::create(&tmp).map_err(|e| StoreError::io("create", &tmp, e))?;
    f.write_all(&segment_header(number))
        .map_err(|e| StoreError::io("write", &tmp, e))?;
    f.sync_all()
        .map_err(|e| StoreError::io("sync_data", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename", &path, e))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Counters behind [`StoreStats`].
#[derive(Default)]
struct Stats {
    appends: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    fsyncs: AtomicU64,
}

/// A run leased to a node.
struct Lease {
    node: String,
    until: Instant,
}

/// What the store handle and the writer thread share.
struct Shared {
    dir: PathBuf,
    index: RwLock<Index>,
    /// Read handles by segment number; the writer adds one per new segment
    /// before any index entry points into it.
    segments: RwLock<BTreeMap<u32, Arc<File>>>,
    stats: Stats,
    leases: Mutex<HashMap<RunId, Lease>>,
    /// The writer's first failure, for [`EmbeddedStore::health`].
    failure: Mutex<Option<String>>,
}

fn lock_failed() -> StoreError {
    StoreError::Poisoned {
        cause: "a thread panicked while holding the store's index".into(),
    }
}

impl Shared {
    fn index(&self) -> Result<RwLockReadGuard<'_, Index>, StoreError> {
        self.index.read().map_err(|_| lock_failed())
    }

    /// Reads the bytes at `loc` back from its segment.
    fn read(&self, loc: Loc) -> Result<Vec<u8>, StoreError> {
        let file = self
            .segments
            .read()
            .map_err(|_| lock_failed())?
            .get(&loc.segment)
            .cloned();
        let path = || self.dir.join(segment_name(loc.segment));
        let Some(file) = file else {
            return Err(StoreError::Corrupt {
                path: path(),
                offset: loc.offset,
                reason: "the index points into a segment that is not open".into(),
            });
        };
        // `loc.len` came from a frame whose checksum and bounds were checked.
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset)
            .map_err(|e| StoreError::io("read", path(), e))?;
        Ok(buf)
    }
}

/// A call waiting for the writer.
enum Request {
    Append {
        frame: Vec<u8>,
        ops: Vec<Op>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Start {
        start: RunStart,
        /// The run's first journal entry (seq 0), written in the same frame.
        first: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<StartOutcome, StoreError>>,
    },
    /// Answered once every call queued before it is committed or refused.
    Barrier { reply: oneshot::Sender<()> },
}

/// An answer held until the group's fsync.
enum Answer {
    Appended {
        at: usize,
        ops: Vec<Op>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Started {
        at: usize,
        ops: Vec<Op>,
        run: RunId,
        reply: oneshot::Sender<Result<StartOutcome, StoreError>>,
    },
    Existing {
        run: RunId,
        reply: oneshot::Sender<Result<StartOutcome, StoreError>>,
    },
    RefusedAppend {
        error: StoreError,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    RefusedStart {
        error: StoreError,
        reply: oneshot::Sender<Result<StartOutcome, StoreError>>,
    },
    Barrier {
        reply: oneshot::Sender<()>,
    },
}

/// The writer thread's state: it alone appends to the log.
struct Writer {
    shared: Arc<Shared>,
    admission: Admission,
    options: Options,
    active: File,
    active_number: u32,
    active_len: u64,
    poisoned: Option<String>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Request>) {
        let mut carry: Option<Request> = None;
        let mut buf: Vec<u8> = Vec::new();
        // Calls the last group answered, and how long its fsync took.
        let mut last_calls = 0usize;
        let mut last_sync = Duration::ZERO;
        loop {
            let first = match carry.take() {
                Some(r) => r,
                None => match rx.recv() {
                    Ok(r) => r,
                    Err(_) => return,
                },
            };
            buf.clear();
            let mut answers = Vec::new();
            self.take(first, &mut buf, &mut answers);
            let mut calls = 1usize;
            // Callers answered by the last group usually call again at once:
            // wait a little for as many calls, so they share this fsync
            // rather than the next one.
            let wait = self.options.group_wait.min(last_sync / 2);
            let deadline = Instant::now() + wait;
            'group: loop {
                // Everything queued now joins this group, up to the byte cap.
                while buf.len() < self.options.max_group_bytes {
                    let Ok(next) = rx.try_recv() else { break };
                    if buf.len() + self.size_of(&next) > self.options.max_group_bytes {
                        carry = Some(next);
                        break 'group;
                    }
                    self.take(next, &mut buf, &mut answers);
                    calls += 1;
                }
                let now = Instant::now();
                if calls >= last_calls
                    || now >= deadline
                    || buf.len() >= self.options.max_group_bytes
                {
                    break;
                }
                match rx.recv_timeout(deadline - now) {
                    Ok(next) => {
                        if buf.len() + self.size_of(&next) > self.options.max_group_bytes {
                            carry = Some(next);
                            break;
                        }
                        self.take(next, &mut buf, &mut answers);
                        calls += 1;
                    }
                    Err(_) => break,
                }
            }
            let synced = Instant::now();
            self.commit(&buf, answers);
            last_sync = synced.elapsed();
            last_calls = calls;
        }
    }

    fn size_of(&self, r: &Request) -> usize {
        match r {
            Request::Append { frame, .. } => frame.len(),
            Request::Start { start, first, .. } => start_size(start, first.as_deref()),
            Request::Barrier { .. } => 0,
        }
    }

    /// Checks one call and, if accepted, adds its frame to the group.
    fn take(&mut self, request: Request, buf: &mut Vec<u8>, answers: &mut Vec<Answer>) {
        let poisoned = |cause: &String| StoreError::Poisoned {
            cause: cause.clone(),
        };
        match request {
            Request::Append { frame, ops, reply } => {
                if let Some(cause) = &self.poisoned {
                    let _ = reply.send(Err(poisoned(cause)));
                    return;
                }
                match self.admission.admit(&ops) {
                    Ok(()) => {
                        answers.push(Answer::Appended {
                            at: buf.len(),
                            ops,
                            reply,
                        });
                        buf.extend_from_slice(&frame);
                    }
                    Err(error) => answers.push(Answer::RefusedAppend { error, reply }),
                }
            }
            Request::Barrier { reply } => answers.push(Answer::Barrier { reply }),
            Request::Start {
                start,
                first,
                reply,
            } => {
                if let Some(cause) = &self.poisoned {
                    let _ = reply.send(Err(poisoned(cause)));
                    return;
                }
                let key = start.idempotency_key.as_deref();
                if let Some(run) = key.and_then(|k| self.admission.run_for_key(k)) {
                    answers.push(Answer::Existing { run, reply });
                    return;
                }
                match self.encode_start(&start, first) {
                    Ok((run, frame, ops)) => {
                        answers.push(Answer::Started {
                            at: buf.len(),
                            ops,
                            run,
                            reply,
                        });
                        buf.extend_from_slice(&frame);
                    }
                    Err(error) => answers.push(Answer::RefusedStart { error, reply }),
                }
            }
        }
    }

    fn encode_start(
        &mut self,
        start: &RunStart,
        first: Option<Vec<u8>>,
    ) -> Result<(RunId, Vec<u8>, Vec<Op>), StoreError> {
        self.admission.check_start(&start.program, start.parent)?;
        let run = self.admission.next_run();
        let records = 1 + usize::from(first.is_some());
        let too_large = |size| StoreError::FrameTooLarge {
            records,
            size,
            max: self.options.max_frame_bytes,
        };
        let size = start_size(start, first.as_deref());
        if size > self.options.max_frame_bytes {
            return Err(too_large(size));
        }
        let journal = first.map(|entry| Record::Journal { run, seq: 0, entry });
        let items =
            std::iter::once(Item::Start(run, start)).chain(journal.iter().map(Item::Record));
        let (frame, ops) = encode_frame(items).ok_or(too_large(size))?;
        self.admission.admit(&ops)?;
        Ok((run, frame, ops))
    }

    /// Writes the group, syncs once, publishes it to readers, then answers.
    fn commit(&mut self, buf: &[u8], answers: Vec<Answer>) {
        if !buf.is_empty() {
            if let Err(e) = self.write_and_sync(buf) {
                let cause = e.to_string();
                self.poisoned = Some(cause.clone());
                *self
                    .shared
                    .failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(cause.clone());
                for answer in answers {
                    let error = || StoreError::Poisoned {
                        cause: cause.clone(),
                    };
                    // Callers that stopped waiting need no answer.
                    match answer {
                        Answer::Appended { reply, .. } => drop(reply.send(Err(error()))),
                        Answer::RefusedAppend { error, reply } => drop(reply.send(Err(error))),
                        Answer::Started { reply, .. } | Answer::Existing { reply, .. } => {
                            drop(reply.send(Err(error())))
                        }
                        Answer::RefusedStart { error, reply } => drop(reply.send(Err(error))),
                        Answer::Barrier { reply } => drop(reply.send(())),
                    }
                }
                return;
            }
        }
        let base = self.active_len - buf.len() as u64;
        let stats = &self.shared.stats;
        let mut appends = 0u64;
        let mut records = 0u64;
        // A panic elsewhere poisoned the lock; the data is durable, so keep
        // going with the guard rather than lose the update.
        let mut index = self
            .shared
            .index
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut replies = Vec::with_capacity(answers.len());
        for answer in answers {
            match answer {
                Answer::Appended { at, ops, reply } => {
                    appends += 1;
                    records += ops.len() as u64;
                    index.apply(self.active_number, base + at as u64, ops);
                    replies.push(Reply::Append(reply, Ok(())));
                }
                Answer::Started {
                    at,
                    ops,
                    run,
                    reply,
                } => {
                    appends += 1;
                    records += ops.len() as u64;
                    index.apply(self.active_number, base + at as u64, ops);
                    replies.push(Reply::Start(reply, Ok(StartOutcome::Created(run))));
                }
                Answer::Existing { run, reply } => {
                    replies.push(Reply::Start(reply, Ok(StartOutcome::Existing(run))))
                }
                Answer::RefusedAppend { error, reply } => {
                    replies.push(Reply::Append(reply, Err(error)))
                }
                Answer::RefusedStart { error, reply } => {
                    replies.push(Reply::Start(reply, Err(error)))
                }
                Answer::Barrier { reply } => replies.push(Reply::Barrier(reply)),
            }
        }
        drop(index);
        stats.appends.fetch_add(appends, Ordering::Relaxed);
        stats.records.fetch_add(records, Ordering::Relaxed);
        if !buf.is_empty() {
            stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        for reply in replies {
            // A caller that stopped waiting is no error: its data is durable.
            match reply {
                Reply::Append(tx, r) => drop(tx.send(r)),
                Reply::Start(tx, r) => drop(tx.send(r)),
                Reply::Barrier(tx) => drop(tx.send(())),
            }
        }
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        if self.active_len > format::SEGMENT_HEADER
            && self.active_len + buf.len() as u64 > self.options.segment_bytes
        {
            self.rotate()?;
        }
        let path = || self.shared.dir.join(segment_name(self.active_number));
        self.active
            .write_all(buf)
            .map_err(|e| StoreError::io("write", path(), e))?;
        self.active
            .sync_data()
            .map_err(|e| StoreError::io("sync_data", path(), e))?;
        self.active_len += buf.len() as u64;
        Ok(())
    }

    /// Starts the next segment; the current one is already synced.
    fn rotate(&mut self) -> Result<(), StoreError> {
        let number = self.active_number + 1;
        let path = create_segment(&self.shared.dir, number)?;
        let read = File::open(&path).map_err(|e| StoreError::io("open", &path, e))?;
        let active = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io("open", &path, e))?;
        self.shared
            .segments
            .write()
            .map_err(|_| lock_failed())?
            .insert(number, Arc::new(read));
        self.active = active;
        self.active_number = number;
        self.active_len = format::SEGMENT_HEADER;
        Ok(())
    }
}

/// An answer ready to send.
enum Reply {
    Append(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
    Start(
        oneshot::Sender<Result<StartOutcome, StoreError>>,
        Result<StartOutcome, StoreError>,
    ),
    Barrier(oneshot::Sender<()>),
}

/// The embedded store: a directory holding an append-only, group-committed
/// log, with an in-memory index rebuilt at open. One process at a time.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    tx: Option<SyncSender<Request>>,
    writer: Option<JoinHandle<()>>,
    options: Options,
    /// Held for the store's life; the OS drops the lock with the process.
    _lock: File,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, recovering its log.
    pub fn open(dir: &Path, options: Options) -> Result<(Self, RecoveryReport), StoreError> {
        options.check()?;
        fs::create_dir_all(dir).map_err(|e| StoreError::io("create", dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io("open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: dir.to_owned(),
                    lock: lock_path,
                })
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io("lock", &lock_path, e)),
        }

        let mut segments = Vec::new();
        let entries = fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".drl.tmp") {
                // A segment whose creation never finished holds no frames.
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
            } else if let Some(n) = parse_segment_name(name) {
                segments.push(n);
            }
        }
        segments.sort_unstable();
        for pair in segments.windows(2) {
            if let [a, b] = *pair {
                if b != a + 1 {
                    return Err(StoreError::MissingSegment {
                        dir: dir.to_owned(),
                        missing: segment_name(a + 1),
                        first: segment_name(segments.first().copied().unwrap_or(a)),
                        last: segment_name(segments.last().copied().unwrap_or(b)),
                    });
                }
            }
        }

        let recovered = recovery::recover(dir, &segments)?;
        let (active_number, active_len) = recovered.active;
        if segments.is_empty() {
            create_segment(dir, active_number)?;
        }
        let mut reads = BTreeMap::new();
        let first = segments.first().copied().unwrap_or(active_number);
        for n in first..=active_number {
            let path = dir.join(segment_name(n));
            let f = File::open(&path).map_err(|e| StoreError::io("open", &path, e))?;
            reads.insert(n, Arc::new(f));
        }
        let active_path = dir.join(segment_name(active_number));
        let active = OpenOptions::new()
            .append(true)
            .open(&active_path)
            .map_err(|e| StoreError::io("open", &active_path, e))?;

        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            index: RwLock::new(recovered.index),
            segments: RwLock::new(reads),
            stats: Stats::default(),
            leases: Mutex::new(HashMap::new()),
            failure: Mutex::new(None),
        });
        let writer = Writer {
            shared: shared.clone(),
            admission: recovered.admission,
            options: options.clone(),
            active,
            active_number,
            active_len,
            poisoned: None,
        };
        let (tx, rx) = mpsc::sync_channel(options.queue_capacity);
        let handle = std::thread::Builder::new()
            .name("drover-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::io("spawn writer thread", dir, e))?;
        Ok((
            EmbeddedStore {
                shared,
                tx: Some(tx),
                writer: Some(handle),
                options,
                _lock: lock,
            },
            recovered.report,
        ))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Waits until every call queued before this one has been committed
    /// (and is visible to reads) or refused, including calls whose callers
    /// stopped waiting. A node restarting its loop on an open store reads
    /// the store only after this, so it never misses a write still queued
    /// by the loop before it. Costs no fsync of its own.
    pub async fn barrier(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Barrier { reply })?;
        answer.await.map_err(|_| StoreError::Closed)
    }

    /// Whether the store still takes writes. `Err` says why not: an earlier
    /// write or fsync failed ([`StoreError::Poisoned`]), or the writer
    /// thread is gone ([`StoreError::Closed`]). Either way only reopening
    /// the store, which recovers the log, makes it writable again.
    pub fn health(&self) -> Result<(), StoreError> {
        let failure = self
            .shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(cause) = failure {
            return Err(StoreError::Poisoned { cause });
        }
        match &self.writer {
            Some(writer) if !writer.is_finished() => Ok(()),
            _ => Err(StoreError::Closed),
        }
    }

    /// A start, with its first journal entry in the same frame if given.
    async fn start(
        &self,
        start: RunStart,
        first: Option<Vec<u8>>,
    ) -> Result<StartOutcome, StoreError> {
        if let Some(key) = &start.idempotency_key {
            if let Some(&run) = self.shared.index()?.keys.get(key) {
                return Ok(StartOutcome::Existing(run));
            }
        }
        let size = start_size(&start, first.as_deref());
        if size > self.options.max_frame_bytes {
            return Err(self.too_large(1 + usize::from(first.is_some()), size));
        }
        let (reply, answer) = oneshot::channel();
        self.send(Request::Start {
            start,
            first,
            reply,
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::Closed)?;
        tx.try_send(request).map_err(|e| match e {
            TrySendError::Full(_) => StoreError::QueueFull {
                limit: self.options.queue_capacity,
            },
            TrySendError::Disconnected(_) => StoreError::Closed,
        })
    }

    fn too_large(&self, records: usize, size: usize) -> StoreError {
        StoreError::FrameTooLarge {
            records,
            size,
            max: self.options.max_frame_bytes,
        }
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit;
        // joining it means the lock is released only after its last write.
        drop(self.tx.take());
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

impl Store for EmbeddedStore {
    async fn start_run(&self, start: RunStart) -> Result<StartOutcome, StoreError> {
        self.start(start, None).await
    }

    async fn start_run_journaled(
        &self,
        start: RunStart,
        first: Vec<u8>,
    ) -> Result<StartOutcome, StoreError> {
        self.start(start, Some(first)).await
    }

    async fn append(&self, records: Vec<Record>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Err(StoreError::EmptyBatch);
        }
        for (index, record) in records.iter().enumerate() {
            if let Record::Program { hash, bytes } = record {
                let actual = hash_bytes(bytes);
                if actual != *hash {
                    return Err(StoreError::ProgramHashMismatch {
                        index,
                        claimed: *hash,
                        actual,
                    });
                }
            }
        }
        let size = encoded_size(records.iter().map(Item::Record));
        if size > self.options.max_frame_bytes {
            return Err(self.too_large(records.len(), size));
        }
        let (frame, ops) = encode_frame(records.iter().map(Item::Record))
            .ok_or_else(|| self.too_large(records.len(), size))?;
        drop(records);
        let (reply, answer) = oneshot::channel();
        self.send(Request::Append { frame, ops, reply })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn load_run(&self, run: RunId) -> Result<Option<RunData>, StoreError> {
        let (meta, input, snapshot, journal, finished) = {
            let index = self.shared.index()?;
            let Some(entry) = index.runs.get(&run) else {
                return Ok(None);
            };
            (
                entry.meta.clone(),
                entry.input,
                entry.snapshot,
                entry.journal_after_snapshot().to_vec(),
                entry.finished,
            )
        };
        let read = |loc| self.shared.read(loc);
        Ok(Some(RunData {
            run,
            start: RunStart {
                workflow: meta.workflow,
                program: meta.program,
                input: read(input)?,
                idempotency_key: meta.idempotency_key,
                parent: meta.parent,
                started_at_ms: meta.started_at_ms,
            },
            snapshot: match snapshot {
                Some((upto_seq, loc)) => Some(Snapshot {
                    upto_seq,
                    state: read(loc)?,
                }),
                None => None,
            },
            journal: journal
                .into_iter()
                .map(|(seq, loc)| Ok((seq, read(loc)?)))
                .collect::<Result<_, StoreError>>()?,
            finished: match finished {
                Some((at_ms, loc)) => Some(Finish {
                    outcome: read(loc)?,
                    at_ms,
                }),
                None => None,
            },
        }))
    }

    async fn journal(&self, run: RunId) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let locs = match self.shared.index()?.runs.get(&run) {
            Some(entry) => entry.journal.clone(),
            None => return Ok(Vec::new()),
        };
        locs.into_iter()
            .map(|(seq, loc)| Ok((seq, self.shared.read(loc)?)))
            .collect()
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        let index = self.shared.index()?;
        let from = filter
            .after
            .map_or(RunId(0), |r| RunId(r.0.saturating_add(1)));
        Ok(index
            .runs
            .range(from..)
            .filter(|(_, e)| filter.matches(&e.meta.workflow, e.status(), e.meta.started_at_ms))
            .take(filter.limit)
            .map(|(run, e)| e.summary(*run))
            .collect())
    }

    async fn unfinished(&self) -> Result<Vec<RunId>, StoreError> {
        Ok(self.shared.index()?.unfinished.iter().copied().collect())
    }

    async fn program(&self, hash: ModuleHash) -> Result<Option<Vec<u8>>, StoreError> {
        let loc = self.shared.index()?.programs.get(&hash).copied();
        loc.map(|loc| self.shared.read(loc)).transpose()
    }

    async fn deployment(&self, workflow: &str) -> Result<Option<Deployment>, StoreError> {
        Ok(self.shared.index()?.deployments.get(workflow).cloned())
    }

    async fn deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        Ok(self.shared.index()?.deployments.values().cloned().collect())
    }

    async fn claim(
        &self,
        node: &str,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<RunId>, StoreError> {
        let now = Instant::now();
        let until = now + Duration::from_millis(lease_ms);
        let index = self.shared.index()?;
        let mut leases = self.shared.leases.lock().map_err(|_| lock_failed())?;
        let mut claimed = Vec::new();
        for &run in &index.unfinished {
            if claimed.len() >= limit {
                break;
            }
            if leases.get(&run).is_some_and(|l| l.until > now) {
                continue;
            }
            leases.insert(
                run,
                Lease {
                    node: node.to_owned(),
                    until,
                },
            );
            claimed.push(run);
        }
        Ok(claimed)
    }

    async fn renew(
        &self,
        node: &str,
        runs: &[RunId],
        lease_ms: u64,
    ) -> Result<Vec<RunId>, StoreError> {
        let until = Instant::now() + Duration::from_millis(lease_ms);
        let index = self.shared.index()?;
        let mut leases = self.shared.leases.lock().map_err(|_| lock_failed())?;
        let mut held = Vec::new();
        for run in runs {
            if !index.unfinished.contains(run) {
                leases.remove(run);
                continue;
            }
            // An expired lease nobody else took is still this node's: the
            // run cannot have moved.
            if let Some(lease) = leases.get_mut(run).filter(|l| l.node == node) {
                lease.until = until;
                held.push(*run);
            }
        }
        Ok(held)
    }

    async fn release(&self, node: &str, runs: &[RunId]) -> Result<(), StoreError> {
        let mut leases = self.shared.leases.lock().map_err(|_| lock_failed())?;
        for run in runs {
            if leases.get(run).is_some_and(|l| l.node == node) {
                leases.remove(run);
            }
        }
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        let s = &self.shared.stats;
        StoreStats {
            appends: s.appends.load(Ordering::Relaxed),
            records: s.records.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
        }
    }
}
