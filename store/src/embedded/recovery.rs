//! Rebuilding the index from the log at open, and cutting off a torn tail.
//!
//! Segments are read in order, frame by frame. The first frame that overruns
//! the file or fails its checksum ends the log: a crash can tear only the
//! frames of the last group, whose fsync never completed, so nothing after
//! that point was ever acknowledged. The file is truncated there so new
//! frames do not follow garbage. The dropped bytes are first copied to
//! `salvage/`, and the report says whether valid frames followed the bad one:
//! that would mean corruption of acknowledged data rather than a torn write,
//! which an operator must look at.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::format::{
    check_segment_header, decode_payload, frame_crc, FRAME_HEADER, FRAME_LIMIT, SEGMENT_HEADER,
};
use super::index::{Admission, Index};
use super::{segment_name, sync_dir};
use crate::error::StoreError;

/// What opening the store found in its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments read.
    pub segments: usize,
    /// Frames (calls) recovered.
    pub frames: u64,
    /// Records recovered.
    pub records: u64,
    /// Runs in the index.
    pub runs: usize,
    /// The tail cut off, if the log did not end cleanly.
    pub truncated: Option<Truncation>,
}

/// A cut-off tail of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The segment's file name.
    pub segment: String,
    /// Where the bad frame starts; the segment now ends here.
    pub offset: u64,
    /// Bytes dropped from that segment.
    pub dropped_bytes: u64,
    /// Why the frame was refused.
    pub reason: TruncationReason,
    /// Valid frames found chained after the bad one in that segment.
    pub valid_frames_after: u64,
    /// Later segments set aside because the log ended before them.
    pub later_segments: Vec<String>,
    /// Where the dropped bytes and set-aside segments were kept.
    pub salvaged_to: PathBuf,
}

impl Truncation {
    /// Whether the dropped part may hold acknowledged data: a torn write
    /// leaves nothing valid after it, and never spans segments.
    pub fn may_have_lost_acknowledged_data(&self) -> bool {
        self.valid_frames_after > 0 || !self.later_segments.is_empty()
    }
}

/// Why a frame ended the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TruncationReason {
    /// Fewer bytes remain than a frame header.
    ShortHeader {
        /// Bytes left in the file.
        remaining: u64,
    },
    /// The length field runs past the end of the file.
    Overrun {
        /// The length field.
        len: u64,
        /// Payload bytes left in the file.
        remaining: u64,
    },
    /// The length field is zero or above the format's frame limit.
    BadLength {
        /// The length field.
        len: u64,
    },
    /// The checksum does not match the bytes.
    Checksum {
        /// Stored checksum.
        stored: u32,
        /// Checksum of the bytes read.
        actual: u32,
    },
}

impl fmt::Display for TruncationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TruncationReason::ShortHeader { remaining } => {
                write!(f, "only {remaining} bytes, short of a frame header")
            }
            TruncationReason::Overrun { len, remaining } => write!(
                f,
                "length {len} overruns the {remaining} bytes left in the file"
            ),
            TruncationReason::BadLength { len } => write!(f, "impossible length {len}"),
            TruncationReason::Checksum { stored, actual } => write!(
                f,
                "checksum mismatch: stored {stored:08x}, computed {actual:08x}"
            ),
        }
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "recovered {} records in {} frames ({} runs) from {} segments",
            self.records, self.frames, self.runs, self.segments
        )?;
        if let Some(t) = &self.truncated {
            write!(
                f,
                "; dropped a torn {}-byte tail at {} offset {} ({})",
                t.dropped_bytes, t.segment, t.offset, t.reason
            )?;
            if t.may_have_lost_acknowledged_data() {
                write!(
                    f,
                    "; WARNING: {} valid frames and {} later segments followed it, so this \
                     looks like corruption of acknowledged data, not a torn write",
                    t.valid_frames_after,
                    t.later_segments.len()
                )?;
            }
            write!(
                f,
                "; the dropped bytes are kept in {}",
                t.salvaged_to.display()
            )?;
        }
        Ok(())
    }
}

/// The index, the writer's admission state and where appending resumes.
pub struct Recovered {
    pub index: Index,
    pub admission: Admission,
    pub report: RecoveryReport,
    /// The last segment's number and length after any truncation.
    pub active: (u32, u64),
}

/// A frame that could not be read, at `offset`.
struct BadFrame {
    offset: u64,
    reason: TruncationReason,
    /// The length field, when it fit the file: where to look for a next frame.
    len: Option<u64>,
}

/// Outcome of reading the next frame.
enum Next {
    Frame(Vec<u8>),
    End,
    Bad(TruncationReason, Option<u64>),
}

/// Reads one frame at the reader's position; `remaining` is the bytes from
/// there to the end of the file. Lengths are checked before any allocation.
fn read_frame(r: &mut impl Read, remaining: u64) -> io::Result<Next> {
    if remaining == 0 {
        return Ok(Next::End);
    }
    if remaining < FRAME_HEADER as u64 {
        return Ok(Next::Bad(TruncationReason::ShortHeader { remaining }, None));
    }
    let mut header = [0u8; FRAME_HEADER];
    r.read_exact(&mut header)?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let stored = u32::from_le_bytes([c0, c1, c2, c3]);
    let left = remaining - FRAME_HEADER as u64;
    if len == 0 || len as usize > FRAME_LIMIT {
        return Ok(Next::Bad(
            TruncationReason::BadLength { len: len.into() },
            None,
        ));
    }
    if u64::from(len) > left {
        return Ok(Next::Bad(
            TruncationReason::Overrun {
                len: len.into(),
                remaining: left,
            },
            None,
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    let actual = frame_crc(len, &payload);
    if actual != stored {
        return Ok(Next::Bad(
            TruncationReason::Checksum { stored, actual },
            Some(len.into()),
        ));
    }
    Ok(Next::Frame(payload))
}

/// Reads every segment, builds the index, and truncates a bad tail.
pub fn recover(dir: &Path, segments: &[u32]) -> Result<Recovered, StoreError> {
    let mut index = Index::default();
    let mut admission = Admission::default();
    let mut frames = 0u64;
    let mut active = (segments.last().copied().unwrap_or(1), SEGMENT_HEADER);
    for (i, &number) in segments.iter().enumerate() {
        let path = dir.join(segment_name(number));
        let file = File::open(&path).map_err(|e| StoreError::io("open", &path, e))?;
        let size = file
            .metadata()
            .map_err(|e| StoreError::io("stat", &path, e))?
            .len();
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut header = vec![0u8; SEGMENT_HEADER.min(size) as usize];
        r.read_exact(&mut header)
            .map_err(|e| StoreError::io("read", &path, e))?;
        if let Some(reason) = check_segment_header(&header, number) {
            return Err(StoreError::NotALog { path, reason });
        }
        let mut offset = SEGMENT_HEADER;
        let bad = loop {
            let next =
                read_frame(&mut r, size - offset).map_err(|e| StoreError::io("read", &path, e))?;
            match next {
                Next::End => break None,
                Next::Bad(reason, len) => {
                    break Some(BadFrame {
                        offset,
                        reason,
                        len,
                    })
                }
                Next::Frame(payload) => {
                    let ops = decode_payload(&payload).map_err(|reason| StoreError::Corrupt {
                        path: path.clone(),
                        offset,
                        reason,
                    })?;
                    admission.admit(&ops).map_err(|e| StoreError::Corrupt {
                        path: path.clone(),
                        offset,
                        reason: match e {
                            StoreError::Corrupt { reason, .. } => reason,
                            other => other.to_string(),
                        },
                    })?;
                    index.apply(number, offset, ops);
                    frames += 1;
                    offset += (FRAME_HEADER + payload.len()) as u64;
                }
            }
        };
        active = (number, offset);
        if let Some(bad) = bad {
            let later: Vec<u32> = segments.get(i + 1..).unwrap_or_default().to_vec();
            let truncation = cut_tail(dir, number, size, bad, &later)?;
            return Ok(Recovered {
                report: RecoveryReport {
                    segments: i + 1,
                    frames,
                    records: index.records,
                    runs: index.runs.len(),
                    truncated: Some(truncation),
                },
                index,
                admission,
                active,
            });
        }
    }
    Ok(Recovered {
        report: RecoveryReport {
            segments: segments.len(),
            frames,
            records: index.records,
            runs: index.runs.len(),
            truncated: None,
        },
        index,
        admission,
        active,
    })
}

/// Counts valid frames chained after a bad one whose length was plausible.
fn valid_frames_after(path: &Path, size: u64, bad: &BadFrame) -> Result<u64, StoreError> {
    let Some(len) = bad.len else { return Ok(0) };
    let mut offset = bad.offset + FRAME_HEADER as u64 + len;
    let mut file = File::open(path).map_err(|e| StoreError::io("open", path, e))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| StoreError::io("seek", path, e))?;
    let mut r = BufReader::new(file);
    let mut count = 0;
    while let Next::Frame(payload) =
        read_frame(&mut r, size - offset).map_err(|e| StoreError::io("read", path, e))?
    {
        count += 1;
        offset += (FRAME_HEADER + payload.len()) as u64;
    }
    Ok(count)
}

/// Keeps the bytes from `bad.offset` on (and any later segments) under
/// `salvage/`, then truncates segment `number` there.
fn cut_tail(
    dir: &Path,
    number: u32,
    size: u64,
    bad: BadFrame,
    later: &[u32],
) -> Result<Truncation, StoreError> {
    let name = segment_name(number);
    let path = dir.join(&name);
    let valid_frames_after = valid_frames_after(&path, size, &bad)?;
    let salvage = dir.join("salvage");
    fs::create_dir_all(&salvage).map_err(|e| StoreError::io("create", &salvage, e))?;

    // A later crash may tear the log at the same offset again; never
    // overwrite what an earlier recovery kept.
    let mut kept = salvage.join(format!("{name}@{}", bad.offset));
    let mut attempt = 1;
    while kept.exists() {
        kept = salvage.join(format!("{name}@{}.{attempt}", bad.offset));
        attempt += 1;
    }
    let mut src = File::open(&path).map_err(|e| StoreError::io("open", &path, e))?;
    src.seek(SeekFrom::Start(bad.offset))
        .map_err(|e| StoreError::io("seek", &path, e))?;
    let mut dst = File::create(&kept).map_err(|e| StoreError::io("create", &kept, e))?;
    io::copy(&mut src, &mut dst).map_err(|e| StoreError::io("copy", &kept, e))?;
    dst.flush().map_err(|e| StoreError::io("write", &kept, e))?;
    dst.sync_all()
        .map_err(|e| StoreError::io("sync_data", &kept, e))?;

    let mut later_names = Vec::new();
    for &n in later {
        let later_name = segment_name(n);
        let to = salvage.join(&later_name);
        fs::rename(dir.join(&later_name), &to).map_err(|e| StoreError::io("rename", &to, e))?;
        later_names.push(later_name);
    }
    sync_dir(&salvage)?;

    // Only now, with the bytes kept elsewhere, cut them off.
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io("open", &path, e))?;
    file.set_len(bad.offset)
        .map_err(|e| StoreError::io("truncate", &path, e))?;
    file.sync_all()
        .map_err(|e| StoreError::io("sync_data", &path, e))?;
    sync_dir(dir)?;

    Ok(Truncation {
        segment: name,
        offset: bad.offset,
        dropped_bytes: size - bad.offset,
        reason: bad.reason,
        valid_frames_after,
        later_segments: later_names,
        salvaged_to: salvage,
    })
}
