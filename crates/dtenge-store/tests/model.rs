//! State-machine property test of the file journal against a `Vec` model:
//! random sequences of append batches, snapshots, restarts, torn tails and
//! garbage tails. After every restart the recovery must equal the model:
//! the newest snapshot, then exactly the durable records after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use dtenge_store::format::{SEGMENT_HEADER, decode_frame, parse_segment_file_name};
use dtenge_store::{Journal, JournalConfig, Recovery, SyncMode};
use proptest::prelude::*;
use tempfile::TempDir;

#[derive(Clone, Debug)]
enum Op {
    /// Append these records, wait for all.
    Append(Vec<Vec<u8>>),
    /// Snapshot everything appended so far.
    Snapshot,
    /// Close and open again.
    Reopen,
    /// Crash mid-write of one more record: its frame is cut at this
    /// fraction (in 1/65 536ths) of its length, then the journal reopens.
    TornTail(u16),
    /// Crash leaving this garbage after the last record, then reopen.
    GarbageTail(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8).prop_map(Op::Append),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Reopen),
        1 => any::<u16>().prop_map(Op::TornTail),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Op::GarbageTail),
    ]
}

/// What must be in the journal.
#[derive(Default)]
struct Model {
    /// Every durable record, in seq order.
    records: Vec<(u64, Vec<u8>)>,
    snapshot: Option<(u64, Vec<u8>)>,
}

impl Model {
    fn last_seq(&self) -> u64 {
        self.records.last().map_or(0, |(seq, _)| *seq)
    }

    fn check(&self, recovery: &Recovery, truncated_tail_bytes: u64) {
        let snapshot_seq = self.snapshot.as_ref().map_or(0, |(seq, _)| *seq);
        let after: Vec<_> = self.records.iter().filter(|(seq, _)| *seq > snapshot_seq).cloned().collect();
        assert_eq!(recovery.snapshot, self.snapshot, "the newest snapshot is recovered");
        assert_eq!(recovery.records, after, "exactly the durable records after the snapshot replay");
        assert_eq!(recovery.truncated_tail_bytes, truncated_tail_bytes, "the torn tail is measured");
    }
}

fn config(dir: &Path) -> JournalConfig {
    let mut config = JournalConfig::new(dir);
    // Small segments: rotation and pruning happen in most cases.
    config.segment_bytes = 128;
    // Durability against power loss is not what this test checks.
    config.sync = SyncMode::None;
    config
}

fn last_segment(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().and_then(|name| name.to_str()).and_then(parse_segment_file_name).is_some())
        .max()
        .unwrap()
}

fn frames_end(bytes: &[u8]) -> usize {
    let mut offset = SEGMENT_HEADER.len();
    while offset < bytes.len() {
        offset += decode_frame(&bytes[offset..]).unwrap().frame_bytes;
    }
    offset
}

fn reopen(dir: &Path, journal: Journal) -> (Journal, Recovery) {
    journal.close().unwrap();
    drop(journal);
    Journal::open(config(dir)).unwrap()
}

/// Appends one record with a valid frame, cut at `fraction` of its length:
/// what a crash in the middle of writing it leaves. Returns the torn bytes
/// recovery must report.
fn write_torn_record(dir: &Path, journal: Journal, fraction: u16) -> u64 {
    let pending = journal.append(b"the record the crash tore".to_vec()).unwrap();
    pending.wait().unwrap();
    journal.close().unwrap();
    drop(journal);
    let path = last_segment(dir);
    let bytes = fs::read(&path).unwrap();
    let end = frames_end(&bytes);
    let frame_bytes = 16 + b"the record the crash tore".len();
    let kept = (frame_bytes as u64 * u64::from(fraction)) >> 16; // < frame_bytes
    let start = end - frame_bytes;
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(start as u64 + kept).unwrap();
    torn_bytes(&bytes[start..start + kept as usize])
}

/// The bytes of a torn tail recovery reports: up to the last non-zero one
/// (zeros after it look like the file backend's reserve).
fn torn_bytes(tail: &[u8]) -> u64 {
    tail.iter().rposition(|b| *b != 0).map_or(0, |last| last as u64 + 1)
}

fn run(ops: Vec<Op>) {
    let dir = TempDir::new().unwrap();
    let (mut journal, recovery) = Journal::open(config(dir.path())).unwrap();
    let mut model = Model::default();
    model.check(&recovery, 0);
    for op in ops {
        match op {
            Op::Append(records) => {
                let pendings: Vec<_> = records.iter().map(|record| journal.append(record.clone()).unwrap()).collect();
                for (pending, record) in pendings.into_iter().zip(records) {
                    let seq = pending.wait().unwrap();
                    assert_eq!(seq, model.last_seq() + 1, "seqs are consecutive");
                    model.records.push((seq, record));
                }
            }
            Op::Snapshot => {
                let seq = journal.last_seq();
                if seq > 0 {
                    let state = format!("state at {seq}").into_bytes();
                    journal.snapshot(seq, &state).unwrap();
                    model.snapshot = Some((seq, state));
                }
            }
            Op::Reopen => {
                let (reopened, recovery) = reopen(dir.path(), journal);
                model.check(&recovery, 0);
                journal = reopened;
            }
            Op::TornTail(fraction) => {
                let kept = write_torn_record(dir.path(), journal, fraction);
                let (reopened, recovery) = Journal::open(config(dir.path())).unwrap();
                model.check(&recovery, kept);
                journal = reopened;
            }
            Op::GarbageTail(garbage) => {
                journal.close().unwrap();
                drop(journal);
                let path = last_segment(dir.path());
                let mut bytes = fs::read(&path).unwrap();
                bytes.extend_from_slice(&garbage);
                fs::write(&path, &bytes).unwrap();
                let (reopened, recovery) = Journal::open(config(dir.path())).unwrap();
                model.check(&recovery, torn_bytes(&garbage));
                journal = reopened;
            }
        }
        assert_eq!(journal.last_seq(), model.last_seq().max(model.snapshot.as_ref().map_or(0, |(seq, _)| *seq)));
    }
    let (_, recovery) = reopen(dir.path(), journal);
    model.check(&recovery, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn journal_recovers_exactly_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
