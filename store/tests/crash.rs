//! Crash safety: torn and corrupted logs recover to exactly the frames before
//! the damage, say so, and keep working.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{entry, entry_bytes, open, open_with, program_and_run};
use drover_store::{EmbeddedStore, Options, RunId, Store, StoreError, TruncationReason};

const SEGMENT: &str = "log-000001.drl";

/// A log of a program, one run and `entries` journal frames; returns the
/// run and the segment's length after each frame (acked, so exact).
fn build_log(dir: &Path, entries: u64) -> (RunId, Vec<u64>) {
    common::runtime().block_on(async {
        let (store, _) = open(dir);
        let (_, run) = program_and_run(&store, "w").await;
        let mut ends = vec![len(&dir.join(SEGMENT))];
        for seq in 0..entries {
            store.append(vec![entry(run, seq)]).await.unwrap();
            ends.push(len(&dir.join(SEGMENT)));
        }
        (run, ends)
    })
}

fn len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// A copy of the store's files (not its lock) in a fresh directory.
fn copy_store(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != "LOCK" {
            fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
        }
    }
    to
}

fn flip(path: &Path, at: u64, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= mask;
    fs::write(path, bytes).unwrap();
}

/// After recovery the store takes new appends (seq `next` and on, since the
/// torn entry was never acknowledged) and they survive another reopen.
fn append_after_recovery(dir: &Path, run: RunId, next: u64) {
    let rt = common::runtime();
    rt.block_on(async {
        let (store, _) = open(dir);
        store
            .append(vec![entry(run, next), entry(run, next + 1)])
            .await
            .unwrap();
    });
    rt.block_on(async {
        let (store, report) = open(dir);
        assert_eq!(report.truncated, None, "{report}");
        let journal = store.journal(run).await.unwrap();
        let expected: Vec<_> = (0..next + 2).map(|s| (s, entry_bytes(run, s))).collect();
        assert_eq!(journal, expected);
    });
}

#[test]
fn a_cut_at_every_byte_of_the_last_frame_recovers_the_frames_before_it() {
    let base = tempfile::tempdir().unwrap();
    let (run, ends) = build_log(base.path(), 5);
    let (start, end) = (ends[4], ends[5]);
    assert!(end - start > 20, "the last frame is {} bytes", end - start);
    for cut in start..end {
        let dir = copy_store(base.path());
        let seg = dir.path().join(SEGMENT);
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (store, report) = open(dir.path());
        // Program, start and four entries: the frames before the cut.
        assert_eq!(
            (report.frames, report.records),
            (6, 6),
            "cut at {cut}: {report}"
        );
        if cut == start {
            assert_eq!(
                report.truncated, None,
                "a cut between frames is a clean end"
            );
        } else {
            let t = report.truncated.clone().expect("a torn frame is reported");
            assert_eq!(
                (t.segment.as_str(), t.offset),
                (SEGMENT, start),
                "cut at {cut}"
            );
            assert_eq!(t.dropped_bytes, cut - start);
            assert!(!t.may_have_lost_acknowledged_data(), "{report}");
            let text = report.to_string();
            assert!(
                text.starts_with("recovered 6 records")
                    && text.contains(&format!(
                        "dropped a torn {}-byte tail at {SEGMENT} offset {start}",
                        cut - start
                    )),
                "{text}"
            );
            assert_eq!(
                len(&seg),
                start,
                "the file is cut back to the last good frame"
            );
        }
        let journal = common::runtime().block_on(store.journal(run)).unwrap();
        assert_eq!(journal.len(), 4, "cut at {cut}");
        drop(store);
        append_after_recovery(dir.path(), run, 4);
    }
}

/// xorshift64: reproducible "random" positions without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn flipped_bytes_in_the_last_frame_drop_exactly_that_frame() {
    let base = tempfile::tempdir().unwrap();
    let (run, ends) = build_log(base.path(), 5);
    let (start, end) = (ends[4], ends[5]);
    let mut rng = Rng(0x5eed_d20e);
    let mut reasons = std::collections::HashSet::new();
    for round in 0..120 {
        let dir = copy_store(base.path());
        let seg = dir.path().join(SEGMENT);
        // Always one flip in the length field now and then, else anywhere.
        let flips = 1 + rng.next() % 3;
        for i in 0..flips {
            let at = if round % 10 == 0 && i == 0 {
                start + rng.next() % 4
            } else {
                start + rng.next() % (end - start)
            };
            flip(&seg, at, 1 + (rng.next() % 255) as u8);
        }
        let (store, report) = open(dir.path());
        let t = report
            .truncated
            .clone()
            .unwrap_or_else(|| panic!("round {round}: corruption went unnoticed: {report}"));
        assert_eq!(t.offset, start, "round {round}");
        assert_eq!(report.records, 6, "round {round}");
        reasons.insert(std::mem::discriminant(&t.reason));
        assert_eq!(
            common::runtime()
                .block_on(store.journal(run))
                .unwrap()
                .len(),
            4
        );
        drop(store);
        if round % 20 == 0 {
            append_after_recovery(dir.path(), run, 4);
        }
    }
    assert!(
        reasons.len() >= 2,
        "flips in the length and the payload both seen"
    );
}

#[test]
fn a_corrupt_frame_mid_log_stops_recovery_there_and_warns() {
    let base = tempfile::tempdir().unwrap();
    let (run, ends) = build_log(base.path(), 10);
    let seg = base.path().join(SEGMENT);
    let original = fs::read(&seg).unwrap();
    // Damage the payload of entry 3's frame; entries 4..9 stay valid.
    let bad = ends[3];
    flip(&seg, bad + 12, 0x40);

    let (store, report) = open(base.path());
    let t = report.truncated.clone().expect("reported");
    assert_eq!(t.offset, bad);
    assert!(
        matches!(t.reason, TruncationReason::Checksum { .. }),
        "{:?}",
        t.reason
    );
    assert_eq!(t.valid_frames_after, 6);
    assert!(t.may_have_lost_acknowledged_data());
    let text = report.to_string();
    assert!(text.contains("WARNING: 6 valid frames"), "{text}");
    assert!(text.contains("salvage"), "{text}");
    // The dropped bytes are kept, not destroyed.
    let kept = t.salvaged_to.join(format!("{SEGMENT}@{bad}"));
    let mut expected = original[bad as usize..].to_vec();
    expected[12] ^= 0x40;
    assert_eq!(fs::read(&kept).unwrap(), expected);

    let rt = common::runtime();
    assert_eq!(rt.block_on(store.journal(run)).unwrap().len(), 3);
    drop(store);
    append_after_recovery(base.path(), run, 3);
}

#[test]
fn a_zero_filled_tail_is_a_torn_frame() {
    let base = tempfile::tempdir().unwrap();
    let (run, ends) = build_log(base.path(), 2);
    let seg = base.path().join(SEGMENT);
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0; 4096])
        .unwrap();
    let (store, report) = open(base.path());
    let t = report.truncated.clone().expect("reported");
    assert_eq!((t.offset, t.dropped_bytes), (ends[2], 4096));
    assert_eq!(t.reason, TruncationReason::BadLength { len: 0 });
    assert!(!t.may_have_lost_acknowledged_data());
    drop(store);
    append_after_recovery(base.path(), run, 2);
}

fn small_segments() -> Options {
    Options {
        segment_bytes: 1024,
        ..Options::default()
    }
}

/// A log over many 1 KiB segments: the run and its number of entries.
fn build_segmented(dir: &Path) -> (RunId, u64) {
    let rt = common::runtime();
    rt.block_on(async {
        let (store, _) = open_with(dir, small_segments());
        let (_, run) = program_and_run(&store, "w").await;
        for seq in 0..200 {
            store.append(vec![entry(run, seq)]).await.unwrap();
        }
        (run, 200)
    })
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "drl"))
        .collect();
    v.sort();
    v
}

#[test]
fn segments_rotate_and_reopen_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (run, n) = build_segmented(dir.path());
    let files = segments(dir.path());
    assert!(files.len() > 5, "{} segments", files.len());
    for f in &files[..files.len() - 1] {
        // A segment passes the size only by the one group that opened it.
        assert!(len(f) <= 1024 + 64, "{} is {} bytes", f.display(), len(f));
    }
    let rt = common::runtime();
    let (store, report) = open_with(dir.path(), small_segments());
    assert_eq!(report.segments, files.len());
    assert_eq!(report.truncated, None);
    let journal = rt.block_on(store.journal(run)).unwrap();
    assert_eq!(journal.len() as u64, n);
    assert_eq!(journal[150], (150, entry_bytes(run, 150)));
}

#[test]
fn corruption_in_an_earlier_segment_sets_later_ones_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = build_segmented(dir.path());
    let files = segments(dir.path());
    let total = files.len();
    // The first frame of segment 2 sits right after its 16-byte header.
    flip(&files[1], 16 + 10, 0x01);

    let (store, report) = open_with(dir.path(), small_segments());
    let t = report.truncated.clone().expect("reported");
    assert_eq!((t.segment.as_str(), t.offset), ("log-000002.drl", 16));
    assert_eq!(t.later_segments.len(), total - 2);
    assert!(t.may_have_lost_acknowledged_data());
    assert!(report.to_string().contains("WARNING"), "{report}");
    assert_eq!(segments(dir.path()).len(), 2);
    assert_eq!(segments(&t.salvaged_to).len(), total - 2);

    let rt = common::runtime();
    let kept = rt.block_on(store.journal(run)).unwrap().len() as u64;
    assert!(kept > 0 && kept < 200);
    rt.block_on(store.append(vec![entry(run, kept)])).unwrap();
    drop(store);
    let (store, report) = open_with(dir.path(), small_segments());
    assert_eq!(report.truncated, None, "{report}");
    assert_eq!(
        rt.block_on(store.journal(run)).unwrap().len() as u64,
        kept + 1
    );
}

#[test]
fn a_missing_segment_or_a_foreign_file_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    build_segmented(dir.path());
    let files = segments(dir.path());
    let moved = dir.path().join("elsewhere");
    fs::rename(&files[2], &moved).unwrap();
    let Err(err) = EmbeddedStore::open(dir.path(), small_segments()) else {
        panic!("opened with a hole in the log")
    };
    assert!(matches!(err, StoreError::MissingSegment { .. }), "{err}");
    assert!(
        err.to_string().contains("log-000003.drl is missing"),
        "{err}"
    );
    fs::rename(&moved, &files[2]).unwrap();

    fs::write(&files[0], b"this is not a log at all").unwrap();
    let Err(err) = EmbeddedStore::open(dir.path(), small_segments()) else {
        panic!("opened a foreign file")
    };
    assert!(
        err.to_string()
            .contains("log-000001.drl is not a Drover log segment: wrong magic"),
        "{err}"
    );
}

#[test]
fn a_frame_with_a_good_checksum_and_bad_contents_refuses_to_open() {
    let base = tempfile::tempdir().unwrap();
    let (_, ends) = build_log(base.path(), 1);
    let seg = base.path().join(SEGMENT);
    // A well-formed frame whose record has tag 99: not a torn write, so
    // recovery must not quietly cut it off.
    let payload = [1u8, 0, 0, 0, 99];
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&payload);
    let mut frame = len.to_vec();
    frame.extend_from_slice(&crc.finalize().to_le_bytes());
    frame.extend_from_slice(&payload);
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&frame)
        .unwrap();
    let Err(err) = EmbeddedStore::open(base.path(), Options::default()) else {
        panic!("opened a log with an undecodable frame")
    };
    assert_eq!(
        err.to_string(),
        format!(
            "{} offset {}: record 0 has unknown tag 99",
            seg.display(),
            ends[1]
        )
    );
}
