//! The conformance suite every journal backend must pass, in the manner of
//! openraft's storage suite: the file journal and the in-memory journal run
//! the same functions (`tests/conformance.rs`), and any later backend must
//! too.
//!
//! A backend is driven through a [`Harness`]: `fresh` gives an empty
//! journal, `reopen` restarts it the way a service restarts (close, open,
//! recover). Each check panics with a message naming the broken promise.
//!
//! Promises checked:
//! - records replay in append order with consecutive seqs from 1;
//! - a reopened journal continues the sequence;
//! - after a snapshot at `s`, replay yields the snapshot and only records > `s`;
//! - concurrent appenders from several threads: every record exactly once,
//!   each thread's records in its own order;
//! - `close` makes everything appended durable and stops further appends.

use std::sync::Arc;

use crate::{Journal, Pending, RECORD_BYTES_MAX, Recovery, StoreError};

/// Threads in the concurrency check.
pub const APPENDER_THREADS: usize = 4;
/// Records each of those threads appends.
pub const RECORDS_PER_THREAD: usize = 250;

/// How the suite creates and restarts a journal of one backend.
pub trait Harness {
    /// A new, empty journal.
    fn fresh(&mut self) -> Journal;
    /// Closes `journal` and opens it again, returning what was recovered.
    fn reopen(&mut self, journal: Journal) -> (Journal, Recovery);
}

/// Runs every check, each on a fresh journal.
pub fn run_all(harness: &mut impl Harness) {
    append_and_replay_in_order(harness);
    reopen_continues_sequence_numbers(harness);
    snapshot_then_replay_only_later_records(harness);
    older_snapshot_is_ignored(harness);
    concurrent_appenders_get_every_record_exactly_once(harness);
    close_makes_everything_durable(harness);
    append_after_close_fails_closed(harness);
    oversized_record_is_refused_and_largest_accepted(harness);
}

fn wait_all(pendings: Vec<Pending>) -> Vec<u64> {
    pendings.into_iter().map(|pending| pending.wait().expect("a record of a healthy journal becomes durable")).collect()
}

fn numbered(count: u64, first: u64) -> Vec<(u64, Vec<u8>)> {
    (first..first + count).map(|seq| (seq, format!("record {seq}").into_bytes())).collect()
}

fn append_records(journal: &Journal, records: &[(u64, Vec<u8>)]) -> Vec<Pending> {
    records
        .iter()
        .map(|(seq, record)| {
            let pending = journal.append(record.clone()).expect("append to an open journal");
            assert_eq!(pending.seq, *seq, "seqs are consecutive in append order");
            pending
        })
        .collect()
}

/// Records (including an empty one) replay in order with seqs 1, 2, ….
pub fn append_and_replay_in_order(harness: &mut impl Harness) {
    let journal = harness.fresh();
    assert_eq!(journal.last_seq(), 0, "a fresh journal is empty");
    let mut expected = numbered(20, 1);
    expected.push((21, Vec::new()));
    let durable = wait_all(append_records(&journal, &expected));
    assert_eq!(durable, (1..=21).collect::<Vec<_>>(), "each Pending resolves to its own seq");
    assert_eq!(journal.last_seq(), 21);
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(recovery.snapshot, None);
    assert_eq!(recovery.records, expected, "replay returns every record in append order");
    assert_eq!(recovery.truncated_tail_bytes, 0, "a clean close leaves no tail");
    journal.close().expect("close");
}

/// After a restart, new records continue the sequence.
pub fn reopen_continues_sequence_numbers(harness: &mut impl Harness) {
    let journal = harness.fresh();
    let first = numbered(5, 1);
    wait_all(append_records(&journal, &first));
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(journal.last_seq(), 5, "last_seq survives a restart");
    assert_eq!(recovery.last_seq(), 5);
    let second = numbered(5, 6);
    wait_all(append_records(&journal, &second));
    let (journal, recovery) = harness.reopen(journal);
    let all: Vec<_> = first.into_iter().chain(second).collect();
    assert_eq!(recovery.records, all, "records of both runs replay as one sequence");
    journal.close().expect("close");
}

/// A snapshot at `s` replaces records ≤ `s` in the recovery.
pub fn snapshot_then_replay_only_later_records(harness: &mut impl Harness) {
    let journal = harness.fresh();
    let records = numbered(30, 1);
    wait_all(append_records(&journal, &records[..20]));
    journal.snapshot(20, b"state after 20").expect("snapshot");
    wait_all(append_records(&journal, &records[20..]));
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(recovery.snapshot, Some((20, b"state after 20".to_vec())), "the snapshot is recovered");
    assert_eq!(recovery.records, records[20..].to_vec(), "only records after the snapshot replay");
    assert_eq!(journal.last_seq(), 30);

    // A snapshot of everything, then a restart, then more records.
    journal.snapshot(30, b"state after 30").expect("snapshot of everything");
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(recovery.snapshot, Some((30, b"state after 30".to_vec())));
    assert!(recovery.records.is_empty(), "nothing after a snapshot of everything");
    assert_eq!(journal.last_seq(), 30, "seqs continue after a snapshot of everything");
    let pending = journal.append(b"after".to_vec()).expect("append");
    assert_eq!(pending.seq, 31);
    pending.wait().expect("durable");
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(recovery.records, vec![(31, b"after".to_vec())]);
    journal.close().expect("close");
}

/// A snapshot older than the newest one changes nothing.
pub fn older_snapshot_is_ignored(harness: &mut impl Harness) {
    let journal = harness.fresh();
    let records = numbered(10, 1);
    wait_all(append_records(&journal, &records));
    journal.snapshot(8, b"eight").expect("snapshot");
    journal.snapshot(4, b"four").expect("an older snapshot is accepted and ignored");
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(recovery.snapshot, Some((8, b"eight".to_vec())), "the newest snapshot wins");
    assert_eq!(recovery.records, records[8..].to_vec());
    journal.close().expect("close");
}

/// Many threads append at once: every record exactly once, consecutive seqs,
/// and each thread's records in the order it appended them.
pub fn concurrent_appenders_get_every_record_exactly_once(harness: &mut impl Harness) {
    let journal = Arc::new(harness.fresh());
    let threads: Vec<_> = (0..APPENDER_THREADS)
        .map(|thread| {
            let journal = Arc::clone(&journal);
            std::thread::spawn(move || {
                let mut seqs = Vec::with_capacity(RECORDS_PER_THREAD);
                for index in 0..RECORDS_PER_THREAD {
                    let record = format!("{thread}:{index}").into_bytes();
                    let pending = journal.append(record).expect("append");
                    // Wait on some, leave others in flight, so batches vary.
                    if index % 7 == 0 {
                        seqs.push(pending.wait().expect("durable"));
                    } else {
                        seqs.push(pending.seq);
                    }
                }
                seqs
            })
        })
        .collect();
    let mut seqs_by_thread = Vec::new();
    for thread in threads {
        seqs_by_thread.push(thread.join().expect("appender thread"));
    }
    let journal = Arc::try_unwrap(journal).unwrap_or_else(|_| panic!("appender threads hold no journal"));
    let total = (APPENDER_THREADS * RECORDS_PER_THREAD) as u64;
    assert_eq!(journal.last_seq(), total);
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(recovery.records.len() as u64, total, "every record is in the log exactly once");
    let mut next_index = [0usize; APPENDER_THREADS];
    for (position, (seq, record)) in recovery.records.iter().enumerate() {
        assert_eq!(*seq, position as u64 + 1, "seqs are consecutive");
        let text = String::from_utf8(record.clone()).expect("record as written");
        let (thread, index) = text.split_once(':').expect("record as written");
        let thread: usize = thread.parse().expect("thread number");
        let index: usize = index.parse().expect("record number");
        assert_eq!(index, next_index[thread], "thread {thread}'s records replay in its append order");
        assert_eq!(seqs_by_thread[thread][index], *seq, "the seq append returned is the seq in the log");
        next_index[thread] += 1;
    }
    journal.close().expect("close");
}

/// `close` waits for every appended record; all their `Pending`s succeed.
pub fn close_makes_everything_durable(harness: &mut impl Harness) {
    let journal = harness.fresh();
    let records = numbered(500, 1);
    let pendings = append_records(&journal, &records);
    journal.close().expect("close of a healthy journal");
    assert_eq!(wait_all(pendings), (1..=500).collect::<Vec<_>>(), "close completes every Pending");
    let stats = journal.stats();
    assert_eq!(stats.records_written, 500, "stats count every record");
    assert!(stats.batches >= 1 && stats.batches <= 500, "records are committed in batches");
    assert!(stats.bytes_written > 0);
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(recovery.records, records, "everything appended before close is durable");
    journal.close().expect("close");
}

/// After `close`, appends and snapshots fail with `Closed`; closing again is fine.
pub fn append_after_close_fails_closed(harness: &mut impl Harness) {
    let journal = harness.fresh();
    journal.append(b"one".to_vec()).expect("append").wait().expect("durable");
    journal.close().expect("close");
    assert!(matches!(journal.append(b"two".to_vec()), Err(StoreError::Closed)), "append after close");
    assert!(matches!(journal.snapshot(1, b"state"), Err(StoreError::Closed)), "snapshot after close");
    journal.close().expect("closing twice is harmless");
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(recovery.records, vec![(1, b"one".to_vec())], "the refused record was never written");
    journal.close().expect("close");
}

/// A record above the limit is refused without taking a seq; one at the
/// limit is accepted.
pub fn oversized_record_is_refused_and_largest_accepted(harness: &mut impl Harness) {
    let journal = harness.fresh();
    let refused = journal.append(vec![0; RECORD_BYTES_MAX + 1]);
    assert!(
        matches!(refused, Err(StoreError::RecordTooLarge { size, max }) if size == RECORD_BYTES_MAX + 1 && max == RECORD_BYTES_MAX),
        "a record above the limit is refused"
    );
    assert_eq!(journal.last_seq(), 0, "a refused record takes no seq");
    let largest = vec![0xA5; RECORD_BYTES_MAX];
    assert_eq!(journal.append(largest.clone()).expect("append").wait().expect("durable"), 1);
    let (journal, recovery) = harness.reopen(journal);
    assert_eq!(recovery.records.len(), 1);
    assert_eq!(recovery.records[0].1, largest, "the largest record round-trips");
    journal.close().expect("close");
}
