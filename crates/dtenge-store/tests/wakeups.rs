//! The writer thread sleeps when it has nothing to write, and appenders sleep
//! when the queue is full or a snapshot waits for durability. Each side
//! wakes the other only when it sleeps (a wake is a syscall), so these
//! tests check that nobody is left asleep: every append completes, in
//! order, through a queue of four, and a snapshot waiting on records still
//! queued returns. A lost wakeup shows as a test that does not finish in
//! time, which is reported as a failure rather than a hang.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use dtenge_store::{Journal, JournalConfig};
use tempfile::TempDir;

/// Runs `work` on its own thread; fails if it does not finish in `limit`.
fn within(limit: Duration, work: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        work();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => worker.join().unwrap(),
        Err(_) => panic!("not finished within {limit:?}: a sleeping appender or writer was never woken"),
    }
}

fn small_queue(dir: &std::path::Path) -> JournalConfig {
    let mut config = JournalConfig::new(dir);
    config.max_queued_records = 4;
    config.max_batch_records = 2;
    config
}

#[test]
fn appenders_blocked_on_a_full_queue_are_all_woken_and_every_record_lands_in_order() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    within(Duration::from_secs(60), move || {
        let (journal, _) = Journal::open(small_queue(&path)).unwrap();
        let journal = Arc::new(journal);
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let journal = Arc::clone(&journal);
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        journal.append(vec![t, i]).unwrap().wait().unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let stats = journal.stats();
        assert_eq!(stats.records_written, 400);
        assert!(stats.batches <= 400, "one sync per batch, never more than one per record");
        journal.close().unwrap();
        let (reopened, recovery) = Journal::open(small_queue(&path)).unwrap();
        let seqs: Vec<u64> = recovery.records.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=400).collect::<Vec<u64>>());
        // Each appender's records keep their order in the log.
        for t in 0..8u8 {
            let mine: Vec<u8> = recovery.records.iter().filter(|(_, r)| r[0] == t).map(|(_, r)| r[1]).collect();
            assert_eq!(mine, (0..50).collect::<Vec<u8>>());
        }
        reopened.close().unwrap();
    });
}

#[test]
fn a_snapshot_waiting_for_queued_records_is_woken_when_they_are_durable() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    within(Duration::from_secs(60), move || {
        let (journal, _) = Journal::open(small_queue(&path)).unwrap();
        let journal = Arc::new(journal);
        for round in 0..20u64 {
            // Not waited for: the snapshot below waits for them.
            let pendings: Vec<_> = (0..3).map(|i| journal.append(vec![1, i]).unwrap()).collect();
            let last = pendings.last().map(|p| p.seq).unwrap();
            journal.snapshot(last, &round.to_le_bytes()).unwrap();
            for pending in pendings {
                assert!(pending.wait().unwrap() <= last);
            }
        }
        journal.close().unwrap();
        let (reopened, recovery) = Journal::open(small_queue(&path)).unwrap();
        assert_eq!(recovery.snapshot, Some((60, 19u64.to_le_bytes().to_vec())));
        reopened.close().unwrap();
    });
}
