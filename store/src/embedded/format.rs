//! The on-disk format of the embedded store's log.
//!
//! A segment file `log-NNNNNN.drl` is a 16-byte header followed by frames:
//!
//! ```text
//! header: b"DROVLOG\0"  u32 version (1)  u32 segment number      (little endian)
//! frame:  u32 len  u32 crc32(len bytes ++ payload)  payload[len]
//! payload: u32 record count, then each record: u8 tag, fields
//!   1 start    u64 run  u64 started_at_ms  [32] program
//!              u8 has_parent (u64 parent  u64 seq)  u8 has_key (str key)
//!              str workflow  blob input
//!   2 journal  u64 run  u64 seq  blob entry
//!   3 snapshot u64 run  u64 upto_seq  blob state
//!   4 finished u64 run  u64 at_ms  blob outcome
//!   5 program  [32] hash  blob bytes
//!   6 deploy   [32] hash  u64 at_ms  str workflow
//! str, blob: u32 len, bytes (str is UTF-8)
//! ```
//!
//! One frame holds one call's records, so a frame is the unit of atomicity:
//! the checksum covers the length too, so a torn or zeroed tail never passes
//! for a frame. Decoding yields [`Op`]s that point at their blobs by offset
//! instead of copying them, so the index keeps locations, not payloads.

use drover_ir::wire::ModuleHash;

use crate::types::{Record, RunId, RunStart};

/// The segment header's magic bytes.
pub const MAGIC: &[u8; 8] = b"DROVLOG\0";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// Bytes before the first frame of a segment.
pub const SEGMENT_HEADER: u64 = 16;
/// Bytes before a frame's payload.
pub const FRAME_HEADER: usize = 8;
/// The largest payload the format allows, whatever the options say; recovery
/// checks lengths against it before allocating.
pub const FRAME_LIMIT: usize = 1 << 30;

const TAG_START: u8 = 1;
const TAG_JOURNAL: u8 = 2;
const TAG_SNAPSHOT: u8 = 3;
const TAG_FINISHED: u8 = 4;
const TAG_PROGRAM: u8 = 5;
const TAG_DEPLOY: u8 = 6;

/// A segment header for segment `number`.
pub fn segment_header(number: u32) -> [u8; SEGMENT_HEADER as usize] {
    let mut h = [0u8; SEGMENT_HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&number.to_le_bytes());
    h
}

/// Why a segment header is unreadable, or `None` if it is segment `number`'s.
pub fn check_segment_header(bytes: &[u8], number: u32) -> Option<String> {
    let (Some(magic), Some(version), Some(stored)) =
        (bytes.get(..8), read_u32(bytes, 8), read_u32(bytes, 12))
    else {
        return Some(format!(
            "header is {} bytes, expected {SEGMENT_HEADER}",
            bytes.len()
        ));
    };
    if magic != MAGIC {
        return Some("wrong magic bytes".into());
    }
    if version != VERSION {
        return Some(format!(
            "format version {version}, this build reads {VERSION}"
        ));
    }
    if stored != number {
        return Some(format!(
            "header says segment {stored}, file name says {number}"
        ));
    }
    None
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// The checksum stored in a frame header: over the length bytes and payload.
pub fn frame_crc(len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Where a blob sits, relative to the start of its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Offset from the frame's first byte.
    pub at: u32,
    /// Length in bytes.
    pub len: u32,
}

/// The small, indexed part of a run's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartMeta {
    /// Workflow name.
    pub workflow: String,
    /// Program pinned.
    pub program: ModuleHash,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Parent run and effect seq.
    pub parent: Option<(RunId, u64)>,
    /// Start time.
    pub started_at_ms: u64,
}

/// One decoded record: its fields, with blobs as locations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A run started.
    Start {
        /// The run.
        run: RunId,
        /// Its indexed fields.
        meta: StartMeta,
        /// Its input.
        input: Blob,
    },
    /// A journal entry.
    Journal {
        /// The run.
        run: RunId,
        /// The entry's seq.
        seq: u64,
        /// The entry.
        entry: Blob,
    },
    /// A snapshot.
    Snapshot {
        /// The run.
        run: RunId,
        /// The last seq it covers.
        upto_seq: u64,
        /// The state.
        state: Blob,
    },
    /// A run's finish.
    Finished {
        /// The run.
        run: RunId,
        /// When.
        at_ms: u64,
        /// The outcome.
        outcome: Blob,
    },
    /// A program.
    Program {
        /// Its hash.
        hash: ModuleHash,
        /// Its bytes.
        bytes: Blob,
    },
    /// A deployment.
    Deploy {
        /// The workflow.
        workflow: String,
        /// The program.
        hash: ModuleHash,
        /// When.
        at_ms: u64,
    },
}

/// Something to encode: a run start (with the id the writer gave it) or a
/// caller's record.
pub enum Item<'a> {
    /// A start.
    Start(RunId, &'a RunStart),
    /// A record from `append`.
    Record(&'a Record),
}

/// Builds one frame and the [`Op`]s that describe it.
struct Encoder {
    buf: Vec<u8>,
    ops: Vec<Op>,
}

impl Encoder {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn hash(&mut self, h: &ModuleHash) {
        self.buf.extend_from_slice(&h.0);
    }
    /// Writes `bytes` with a u32 length; `None` if it is too long for one.
    fn blob(&mut self, bytes: &[u8]) -> Option<Blob> {
        let len = u32::try_from(bytes.len()).ok()?;
        self.buf.extend_from_slice(&len.to_le_bytes());
        let at = u32::try_from(self.buf.len()).ok()?;
        self.buf.extend_from_slice(bytes);
        Some(Blob { at, len })
    }
}

/// The size `items` will encode to, frame header included, without building
/// it: callers check limits before paying for a copy.
pub fn encoded_size<'a>(items: impl IntoIterator<Item = Item<'a>>) -> usize {
    let mut size = FRAME_HEADER + 4;
    for item in items {
        size += 1 + match item {
            Item::Start(_, s) => {
                8 + 8
                    + 32
                    + 1
                    + s.parent.map_or(0, |_| 16)
                    + 1
                    + s.idempotency_key.as_ref().map_or(0, |k| 4 + k.len())
                    + 4
                    + s.workflow.len()
                    + 4
                    + s.input.len()
            }
            Item::Record(Record::Journal { entry, .. }) => 16 + 4 + entry.len(),
            Item::Record(Record::Snapshot { state, .. }) => 16 + 4 + state.len(),
            Item::Record(Record::Finished { outcome, .. }) => 16 + 4 + outcome.len(),
            Item::Record(Record::Program { bytes, .. }) => 32 + 4 + bytes.len(),
            Item::Record(Record::Deploy { workflow, .. }) => 32 + 8 + 4 + workflow.len(),
        };
    }
    size
}

/// Encodes `items` as one frame. `None` if a length does not fit the format
/// (callers check [`encoded_size`] against the frame limit first).
pub fn encode_frame<'a>(items: impl IntoIterator<Item = Item<'a>>) -> Option<(Vec<u8>, Vec<Op>)> {
    let mut e = Encoder {
        buf: vec![0; FRAME_HEADER + 4],
        ops: Vec::new(),
    };
    let mut count: u32 = 0;
    for item in items {
        count = count.checked_add(1)?;
        let op = match item {
            Item::Start(run, s) => {
                e.u8(TAG_START);
                e.u64(run.0);
                e.u64(s.started_at_ms);
                e.hash(&s.program);
                match s.parent {
                    Some((parent, seq)) => {
                        e.u8(1);
                        e.u64(parent.0);
                        e.u64(seq);
                    }
                    None => e.u8(0),
                }
                match &s.idempotency_key {
                    Some(key) => {
                        e.u8(1);
                        e.blob(key.as_bytes())?;
                    }
                    None => e.u8(0),
                }
                e.blob(s.workflow.as_bytes())?;
                let input = e.blob(&s.input)?;
                Op::Start {
                    run,
                    meta: StartMeta {
                        workflow: s.workflow.clone(),
                        program: s.program,
                        idempotency_key: s.idempotency_key.clone(),
                        parent: s.parent,
                        started_at_ms: s.started_at_ms,
                    },
                    input,
                }
            }
            Item::Record(Record::Journal { run, seq, entry }) => {
                e.u8(TAG_JOURNAL);
                e.u64(run.0);
                e.u64(*seq);
                let entry = e.blob(entry)?;
                Op::Journal {
                    run: *run,
                    seq: *seq,
                    entry,
                }
            }
            Item::Record(Record::Snapshot {
                run,
                upto_seq,
                state,
            }) => {
                e.u8(TAG_SNAPSHOT);
                e.u64(run.0);
                e.u64(*upto_seq);
                let state = e.blob(state)?;
                Op::Snapshot {
                    run: *run,
                    upto_seq: *upto_seq,
                    state,
                }
            }
            Item::Record(Record::Finished {
                run,
                outcome,
                at_ms,
            }) => {
                e.u8(TAG_FINISHED);
                e.u64(run.0);
                e.u64(*at_ms);
                let outcome = e.blob(outcome)?;
                Op::Finished {
                    run: *run,
                    at_ms: *at_ms,
                    outcome,
                }
            }
            Item::Record(Record::Program { hash, bytes }) => {
                e.u8(TAG_PROGRAM);
                e.hash(hash);
                let bytes = e.blob(bytes)?;
                Op::Program { hash: *hash, bytes }
            }
            Item::Record(Record::Deploy {
                workflow,
                hash,
                at_ms,
            }) => {
                e.u8(TAG_DEPLOY);
                e.hash(hash);
                e.u64(*at_ms);
                e.blob(workflow.as_bytes())?;
                Op::Deploy {
                    workflow: workflow.clone(),
                    hash: *hash,
                    at_ms: *at_ms,
                }
            }
        };
        e.ops.push(op);
    }
    let len = u32::try_from(e.buf.len() - FRAME_HEADER).ok()?;
    e.buf[FRAME_HEADER..FRAME_HEADER + 4].copy_from_slice(&count.to_le_bytes());
    let crc = frame_crc(len, &e.buf[FRAME_HEADER..]);
    e.buf[..4].copy_from_slice(&len.to_le_bytes());
    e.buf[4..8].copy_from_slice(&crc.to_le_bytes());
    Some((e.buf, e.ops))
}

/// Reads a payload, every read checked against what remains.
struct Decoder<'a> {
    payload: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.payload.len())
            .ok_or_else(|| {
                format!(
                    "{what} needs {n} bytes at payload byte {}, only {} remain",
                    self.pos,
                    self.payload.len() - self.pos
                )
            })?;
        let bytes = &self.payload[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }
    fn hash(&mut self, what: &str) -> Result<ModuleHash, String> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32, what)?);
        Ok(ModuleHash(a))
    }
    fn flag(&mut self, what: &str) -> Result<bool, String> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("{what} flag is {other}, expected 0 or 1")),
        }
    }
    fn blob(&mut self, what: &str) -> Result<Blob, String> {
        let len = self.u32(what)?;
        // The blob's offset within the frame: payload position plus header.
        let at = self.pos + FRAME_HEADER;
        self.take(len as usize, what)?;
        let at = u32::try_from(at).map_err(|_| format!("{what} lies beyond 4 GiB"))?;
        Ok(Blob { at, len })
    }
    fn str(&mut self, what: &str) -> Result<String, String> {
        let len = self.u32(what)? as usize;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

/// Decodes a frame's payload (checksum already verified) into ops; the
/// error says which record and field is wrong.
pub fn decode_payload(payload: &[u8]) -> Result<Vec<Op>, String> {
    let mut d = Decoder { payload, pos: 0 };
    let count = d.u32("record count")?;
    if count == 0 {
        return Err("frame holds no records".into());
    }
    // Each record is at least a tag and a field, so a count above the bytes
    // left is a lie; checking it bounds the allocation below.
    if count as usize > payload.len() {
        return Err(format!(
            "record count {count} exceeds the {}-byte payload",
            payload.len()
        ));
    }
    let mut ops = Vec::with_capacity(count as usize);
    for i in 0..count {
        let tag = d.u8("record tag")?;
        let op = match tag {
            TAG_START => {
                let run = RunId(d.u64("start run")?);
                let started_at_ms = d.u64("start time")?;
                let program = d.hash("start program")?;
                let parent = if d.flag("start parent")? {
                    Some((RunId(d.u64("parent run")?), d.u64("parent seq")?))
                } else {
                    None
                };
                let idempotency_key = if d.flag("start key")? {
                    Some(d.str("idempotency key")?)
                } else {
                    None
                };
                let workflow = d.str("start workflow")?;
                let input = d.blob("start input")?;
                Op::Start {
                    run,
                    meta: StartMeta {
                        workflow,
                        program,
                        idempotency_key,
                        parent,
                        started_at_ms,
                    },
                    input,
                }
            }
            TAG_JOURNAL => Op::Journal {
                run: RunId(d.u64("journal run")?),
                seq: d.u64("journal seq")?,
                entry: d.blob("journal entry")?,
            },
            TAG_SNAPSHOT => Op::Snapshot {
                run: RunId(d.u64("snapshot run")?),
                upto_seq: d.u64("snapshot seq")?,
                state: d.blob("snapshot state")?,
            },
            TAG_FINISHED => Op::Finished {
                run: RunId(d.u64("finished run")?),
                at_ms: d.u64("finished time")?,
                outcome: d.blob("finished outcome")?,
            },
            TAG_PROGRAM => Op::Program {
                hash: d.hash("program hash")?,
                bytes: d.blob("program bytes")?,
            },
            TAG_DEPLOY => Op::Deploy {
                hash: d.hash("deploy hash")?,
                at_ms: d.u64("deploy time")?,
                workflow: d.str("deploy workflow")?,
            },
            other => return Err(format!("record {i} has unknown tag {other}")),
        };
        ops.push(op);
    }
    if d.pos != payload.len() {
        return Err(format!(
            "{} bytes left over after {count} records",
            payload.len() - d.pos
        ));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (RunStart, Vec<Record>) {
        let start = RunStart {
            workflow: "scan".into(),
            program: ModuleHash([7; 32]),
            input: b"in".to_vec(),
            idempotency_key: Some("k".into()),
            parent: Some((RunId(3), 9)),
            started_at_ms: 11,
        };
        let records = vec![
            Record::Journal {
                run: RunId(1),
                seq: 0,
                entry: b"entry".to_vec(),
            },
            Record::Snapshot {
                run: RunId(1),
                upto_seq: 0,
                state: vec![1, 2, 3],
            },
            Record::Finished {
                run: RunId(1),
                outcome: vec![],
                at_ms: 5,
            },
            Record::Program {
                hash: ModuleHash([1; 32]),
                bytes: vec![9; 40],
            },
            Record::Deploy {
                workflow: "scan".into(),
                hash: ModuleHash([1; 32]),
                at_ms: 6,
            },
        ];
        (start, records)
    }

    #[test]
    fn decoding_an_encoded_frame_gives_the_same_ops_and_blobs() {
        let (start, records) = sample();
        let items = || {
            std::iter::once(Item::Start(RunId(1), &start)).chain(records.iter().map(Item::Record))
        };
        let (frame, ops) = encode_frame(items()).unwrap();
        assert_eq!(frame.len(), encoded_size(items()));
        let len = u32::from_le_bytes(frame[..4].try_into().unwrap());
        let crc = u32::from_le_bytes(frame[4..8].try_into().unwrap());
        assert_eq!(len as usize, frame.len() - FRAME_HEADER);
        assert_eq!(crc, frame_crc(len, &frame[FRAME_HEADER..]));
        assert_eq!(decode_payload(&frame[FRAME_HEADER..]).unwrap(), ops);
        let Op::Start { input, .. } = &ops[0] else {
            panic!("first op is {:?}", ops[0])
        };
        assert_eq!(
            &frame[input.at as usize..][..input.len as usize],
            b"in".as_slice()
        );
    }

    #[test]
    fn every_truncated_or_padded_payload_is_an_error_not_a_panic() {
        let (start, records) = sample();
        let items =
            std::iter::once(Item::Start(RunId(1), &start)).chain(records.iter().map(Item::Record));
        let (frame, _) = encode_frame(items).unwrap();
        let payload = &frame[FRAME_HEADER..];
        for cut in 0..payload.len() {
            assert!(decode_payload(&payload[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = payload.to_vec();
        padded.push(0);
        assert!(decode_payload(&padded).unwrap_err().contains("left over"));
    }

    #[test]
    fn headers_are_checked() {
        let h = segment_header(4);
        assert_eq!(check_segment_header(&h, 4), None);
        assert!(check_segment_header(&h, 5).unwrap().contains("segment 4"));
        assert!(check_segment_header(&h[..10], 4)
            .unwrap()
            .contains("10 bytes"));
        let mut bad = h;
        bad[0] = b'X';
        assert!(check_segment_header(&bad, 4).unwrap().contains("magic"));
    }
}
