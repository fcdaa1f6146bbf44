//! The in-memory journal's simulated disk: power loss, slow and failing
//! syncs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_store::{Journal, StoreError};

#[test]
fn crash_loses_only_records_whose_pending_had_not_completed() {
    let (journal, handle) = Journal::in_memory();
    for index in 0..10u8 {
        journal.append(vec![index]).unwrap().wait().unwrap();
    }
    handle.pause_syncs(true);
    let stuck: Vec<_> = (10..15u8).map(|index| journal.append(vec![index]).unwrap()).collect();
    let (reopened, recovery) = handle.crash_and_reopen();
    assert_eq!(recovery.records, (0..10u8).map(|index| (u64::from(index) + 1, vec![index])).collect::<Vec<_>>());
    for pending in stuck {
        assert!(matches!(pending.wait(), Err(StoreError::Closed)), "an unsynced record's Pending fails");
    }
    assert!(matches!(journal.append(vec![99]), Err(StoreError::Closed)), "the crashed journal is dead");
    assert_eq!(reopened.append(vec![10]).unwrap().wait().unwrap(), 11, "the new journal reuses lost seqs");
}

#[test]
fn crash_at_any_point_keeps_every_acknowledged_record_and_a_prefix_of_the_rest() {
    let (mut journal, handle) = Journal::in_memory();
    let mut acknowledged: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut appended: Vec<(u64, Vec<u8>)> = Vec::new();
    for round in 0..50u64 {
        let mut pendings = Vec::new();
        for index in 0..(round % 9) {
            let record = format!("{round}/{index}").into_bytes();
            let pending = journal.append(record.clone()).unwrap();
            appended.push((pending.seq, record.clone()));
            pendings.push((pending, record));
        }
        // Wait for some, leave the rest in flight at the crash.
        let waited = pendings.len() / 2;
        for (pending, record) in pendings.drain(..waited) {
            acknowledged.push((pending.wait().unwrap(), record));
        }
        let (reopened, recovery) = handle.crash_and_reopen();
        let survived = &recovery.records;
        assert_eq!(survived.as_slice(), &appended[..survived.len()], "round {round}: survivors are a prefix");
        assert!(survived.len() >= acknowledged.len(), "round {round}: no acknowledged record is lost");
        assert_eq!(&survived[..acknowledged.len()], acknowledged.as_slice());
        for (pending, _) in pendings {
            if let Ok(seq) = pending.wait() {
                assert!(seq <= survived.len() as u64, "round {round}: an Ok Pending was durable");
            }
        }
        appended = survived.clone();
        acknowledged = survived.clone();
        journal = reopened;
    }
}

#[test]
fn failed_sync_poisons_the_journal() {
    let (journal, handle) = Journal::in_memory();
    journal.append(b"kept".to_vec()).unwrap().wait().unwrap();
    assert!(journal.failure().is_none(), "a healthy journal has no failure");
    handle.fail_next_sync();
    let failed = journal.append(b"lost".to_vec()).unwrap().wait();
    assert!(matches!(failed, Err(StoreError::Io { .. })), "the batch whose sync failed is not acknowledged");
    assert!(matches!(journal.failure(), Some(StoreError::Io { .. })), "the journal says why it failed");
    assert!(matches!(journal.append(b"later".to_vec()), Err(StoreError::Io { .. })), "later appends fail");
    assert!(matches!(journal.snapshot(1, b"state"), Err(StoreError::Io { .. })), "snapshots fail too");
    assert!(matches!(journal.close(), Err(StoreError::Io { .. })), "close reports the failure");
    let (_, recovery) = handle.crash_and_reopen();
    assert_eq!(recovery.records, vec![(1, b"kept".to_vec())]);
}

#[test]
fn durable_future_resolves_on_a_current_thread_runtime() {
    let (journal, _handle) = Journal::in_memory();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let seqs = runtime.block_on(async {
        let first = journal.append(b"a".to_vec()).unwrap();
        let second = journal.append(b"b".to_vec()).unwrap();
        (first.durable().await.unwrap(), second.durable().await.unwrap())
    });
    assert_eq!(seqs, (1, 2));
}

#[test]
fn snapshot_cut_short_by_a_crash_is_not_kept() {
    let (journal, handle) = Journal::in_memory();
    journal.append(b"durable".to_vec()).unwrap().wait().unwrap();
    handle.pause_syncs(true);
    let stuck = journal.append(b"not yet".to_vec()).unwrap();
    let snapshotter = {
        let journal = journal.clone();
        std::thread::spawn(move || journal.snapshot(2, b"state at 2"))
    };
    let (_, recovery) = handle.crash_and_reopen();
    assert!(matches!(snapshotter.join().unwrap(), Err(StoreError::Closed)), "a snapshot waits for its seq");
    assert!(matches!(stuck.wait(), Err(StoreError::Closed)));
    assert_eq!(recovery.snapshot, None, "no snapshot of a record that was never durable");
    assert_eq!(recovery.records, vec![(1, b"durable".to_vec())]);
}

#[test]
#[should_panic(expected = "beyond the last appended seq")]
fn snapshot_beyond_the_last_seq_is_a_caller_bug() {
    let (journal, _handle) = Journal::in_memory();
    let _ = journal.snapshot(1, b"state of nothing");
}

#[test]
fn dropping_the_last_clone_makes_everything_durable() {
    let (journal, handle) = Journal::in_memory();
    let pendings: Vec<_> = (0..100u8).map(|index| journal.append(vec![index]).unwrap()).collect();
    drop(journal);
    assert_eq!(handle.unsynced_records(), 0);
    for (index, pending) in pendings.into_iter().enumerate() {
        assert_eq!(pending.wait().unwrap(), index as u64 + 1);
    }
    let (_, recovery) = handle.crash_and_reopen();
    assert_eq!(recovery.records.len(), 100);
}

#[test]
fn a_sync_point_completes_only_when_everything_before_it_is_durable() {
    let (journal, handle) = Journal::in_memory();
    assert_eq!(journal.sync_point().wait().unwrap(), 0, "nothing appended: immediately");
    handle.pause_syncs(true);
    let first = journal.append(b"a".to_vec()).unwrap();
    let point = journal.sync_point();
    assert_eq!(point.seq, 1);
    handle.pause_syncs(false);
    assert_eq!(point.wait().unwrap(), 1);
    assert_eq!(first.wait().unwrap(), 1);
    journal.close().unwrap();
    assert!(journal.sync_point().wait().is_ok(), "after close everything appended is durable");
}
