//! History in the cold store: every rejection and every retry answers the
//! same once entries have left memory, on both backends; the service
//! restarts over its cold store (after writes, after a snapshot, with a
//! journal tail the cold store already holds); memory stays flat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dtenge_crypto::{SecretKey, hash};
use dtenge_net::{ManualClock, ParticipantInfo, Participants, Role};
use dtenge_notary::engine::digests;
use dtenge_notary::*;
use dtenge_store::{Journal, JournalConfig, SyncMode};
use dtenge_types::{ParticipantId, TimeWindow, Timestamp};

mod support;
use support::{NOW, c, claim, decide_and_apply, decide_and_apply_at, t, wait_until};

fn node_key() -> SecretKey {
    SecretKey::from_seed([1; 32])
}

/// The only participant: it issues (an issuer's role) and hosts every
/// token the tests spend (claims open their inputs to [`support::HOST`]).
fn node() -> ParticipantId {
    ParticipantId::new(support::HOST).unwrap()
}

fn batch(claims: Vec<TxClaim>) -> NotariseBatch {
    NotariseBatch::signed(node(), claims, &node_key()).unwrap()
}

fn run(state: &mut NotaryState, claims: Vec<TxClaim>, may_issue: bool) -> Vec<Decision> {
    decide_and_apply(state, batch(claims), may_issue).0
}

/// Issues 10, 11; tx 2 spends 10 into 20; tx 3 spends 20 into 30. Then
/// everything is flushed out of memory and every answer is checked again.
fn every_answer_from_the_cold_store(mut s: NotaryState) {
    let Decision::Commit(issue) = run(&mut s, vec![claim(1, &[], &[10, 11])], true)[0].clone() else { panic!() };
    let Decision::Commit(spend) = run(&mut s, vec![claim(2, &[10], &[20])], false)[0].clone() else { panic!() };
    run(&mut s, vec![claim(3, &[20], &[30])], false);
    s.flush_to_cold().unwrap();
    let hot = s.hot_counts();
    assert_eq!((hot.spent, hot.receipts, hot.frozen), (0, 0, 0), "history left memory: {hot:?}");
    assert_eq!(hot.unspent, 2, "the live set (11, 30) stays in memory");

    // A double spend names the spender, found in the cold store.
    assert_eq!(
        run(&mut s, vec![claim(4, &[10], &[40])], false)[0],
        Decision::Reject(NotaryRejection::Conflict { input: 0, commitment: c(10), spent_by: t(2) })
    );
    assert_eq!(
        run(&mut s, vec![claim(5, &[11, 20], &[41])], false)[0],
        Decision::Reject(NotaryRejection::Conflict { input: 1, commitment: c(20), spent_by: t(3) })
    );
    // Retries get the identical receipt body: a spend and an issue (no inputs).
    assert_eq!(run(&mut s, vec![claim(2, &[10], &[20])], false)[0], Decision::AlreadyCommitted(spend.clone()));
    assert_eq!(run(&mut s, vec![claim(1, &[], &[10, 11])], true)[0], Decision::AlreadyCommitted(issue));
    // A claim reusing a committed tx id with other, unspent inputs is not committed twice.
    assert_eq!(run(&mut s, vec![claim(2, &[11], &[42])], false)[0], Decision::AlreadyCommitted(spend.clone()));
    assert_eq!(s.lookup_committed(&t(2)).unwrap(), Some(spend));
    // An output equal to a long-spent commitment would resurrect it.
    assert_eq!(
        run(&mut s, vec![claim(6, &[11], &[10])], false)[0],
        Decision::Reject(NotaryRejection::DuplicateOutput { output: 0 })
    );
    assert_eq!(
        run(&mut s, vec![claim(7, &[11], &[43, 20])], false)[0],
        Decision::Reject(NotaryRejection::DuplicateOutput { output: 1 })
    );
    // Unknown inputs, repeated commitments, windows and issue rights as before.
    assert_eq!(
        run(&mut s, vec![claim(8, &[99], &[44])], false)[0],
        Decision::Reject(NotaryRejection::UnknownInput { input: 0, commitment: c(99) })
    );
    assert_eq!(
        run(&mut s, vec![claim(9, &[11, 10], &[10])], false)[0],
        Decision::Reject(NotaryRejection::RepeatedCommitment { commitment: c(10) })
    );
    let mut late = claim(10, &[11], &[45]);
    late.window = TimeWindow { not_before: Timestamp(0), not_after: Timestamp(NOW.0 - 1) };
    assert!(matches!(run(&mut s, vec![late], false)[0], Decision::Reject(NotaryRejection::OutsideWindow { .. })));
    assert_eq!(run(&mut s, vec![claim(11, &[], &[46])], false)[0], Decision::Reject(NotaryRejection::IssueNotAllowed));
    // Statuses for audits, and nothing refused changed anything.
    assert_eq!(s.status(&c(10)), Some(Err(t(2))));
    assert_eq!(s.status(&c(11)), Some(Ok(())));
    assert_eq!(s.status(&c(99)), None);
    assert_eq!(s.counts(), (2, 2));
    assert_eq!(s.committed_count(), 3);
    // Spending the live set still works.
    assert!(matches!(run(&mut s, vec![claim(12, &[11, 30], &[50])], false)[0], Decision::Commit(_)));
}

fn config(filter_bytes: usize) -> NotaryConfig {
    NotaryConfig { generation_entries: 2, generation_ms: u64::MAX, filter_bytes, ..NotaryConfig::default() }
}

#[test]
fn every_rejection_and_retry_answers_from_the_memory_cold_store() {
    for filter_bytes in [64, 1 << 20] {
        let cold = Arc::new(ColdStore::memory(MemoryCold::new(), filter_bytes));
        every_answer_from_the_cold_store(NotaryState::with_cold(cold, config(filter_bytes)));
    }
}

#[test]
fn every_rejection_and_retry_answers_from_the_fjall_cold_store() {
    for (filter_bytes, mode) in [(64, WriteMode::Inline), (1 << 20, WriteMode::Background)] {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(FjallCold::open(dir.path()).unwrap());
        let cold = Arc::new(ColdStore::open(backend, filter_bytes, mode).unwrap());
        every_answer_from_the_cold_store(NotaryState::with_cold(cold, config(filter_bytes)));
    }
}

#[test]
fn the_fjall_backend_reopens_with_its_entries_and_refills_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    let body = ReceiptBody {
        tx: t(1),
        seq: 7,
        committed_at: NOW,
        inputs_digest: hash(b"i", &[]),
        outputs_digest: hash(b"o", &[]),
    };
    {
        let backend = FjallCold::open(dir.path()).unwrap();
        backend.write(&[(c(1), t(1))], std::slice::from_ref(&body)).unwrap();
        // Written twice (a replayed tail): the same values.
        backend.write(&[(c(1), t(1))], std::slice::from_ref(&body)).unwrap();
        backend.persist().unwrap();
    }
    let store = ColdStore::open(Arc::new(FjallCold::open(dir.path()).unwrap()), 4096, WriteMode::Inline).unwrap();
    assert_eq!(store.filter().inserted(), 2, "the filter is refilled from the keys on disk");
    assert_eq!(store.spender(&c(1)).unwrap(), Some(t(1)));
    assert_eq!(store.receipt(&t(1)).unwrap(), Some(body));
    assert_eq!(store.spender(&c(2)).unwrap(), None);
    assert_eq!(store.receipt(&t(2)).unwrap(), None);
}

/// A notary service on a journal in `dir` with a fjall cold store in `dir/cold`.
struct Harness {
    dir: tempfile::TempDir,
    config: NotaryConfig,
}

impl Harness {
    fn new(generation_entries: usize) -> Harness {
        Harness {
            dir: tempfile::tempdir().unwrap(),
            config: NotaryConfig {
                generation_entries,
                generation_ms: u64::MAX,
                filter_bytes: 1 << 16,
                ..NotaryConfig::default()
            },
        }
    }

    fn open(&self) -> (Arc<NotaryService>, Journal) {
        let mut jc = JournalConfig::new(self.dir.path().join("journal"));
        jc.sync = SyncMode::None;
        let (journal, recovery) = Journal::open(jc).unwrap();
        (service_over(journal.clone(), recovery, &self.dir.path().join("cold"), self.config), journal)
    }
}

async fn verdict(notary: &NotaryService, cl: TxClaim) -> Verdict {
    notary.notarise(&node(), batch(vec![cl])).await.unwrap().remove(0)
}

fn receipt_body(v: &Verdict) -> ReceiptBody {
    match v {
        Verdict::Committed(r) => r.body.clone(),
        other => panic!("not committed: {other:?}"),
    }
}

/// Issues 1..=n, spends each i into 1000 + i (tx 100 + i); returns the spend receipts.
async fn workload(notary: &NotaryService, n: u64) -> Vec<ReceiptBody> {
    let outs: Vec<u64> = (1..=n).collect();
    receipt_body(&verdict(notary, claim(1, &[], &outs)).await);
    let mut bodies = Vec::new();
    for i in 1..=n {
        bodies.push(receipt_body(&verdict(notary, claim(100 + i, &[i], &[1000 + i])).await));
    }
    bodies
}

async fn history_answers(notary: &NotaryService, n: u64, bodies: &[ReceiptBody]) {
    for i in 1..=n {
        assert_eq!(
            verdict(notary, claim(5000 + i, &[i], &[9000 + i])).await,
            Verdict::Rejected(NotaryRejection::Conflict { input: 0, commitment: c(i), spent_by: t(100 + i) })
        );
        assert_eq!(receipt_body(&verdict(notary, claim(100 + i, &[i], &[1000 + i])).await), bodies[i as usize - 1]);
        assert_eq!(notary.receipt(&t(100 + i)).await.unwrap().unwrap().body, bodies[i as usize - 1]);
        assert_eq!(
            verdict(notary, claim(7000 + i, &[], &[i])).await,
            Verdict::Rejected(NotaryRejection::DuplicateOutput { output: 0 })
        );
    }
}

#[tokio::test]
async fn the_service_reopens_after_writes_with_its_history_in_the_cold_store() {
    let h = Harness::new(4);
    let (notary, _journal) = h.open();
    let bodies = workload(&notary, 20).await;
    history_answers(&notary, 20, &bodies).await;
    assert_eq!(notary.stats(), (21, 20, 20));
    notary.close().unwrap();
    drop(notary);
    // Reopen: no snapshot, the journal replays over the cold store, which
    // already holds most of it (idempotent writes).
    let (notary, _journal) = h.open();
    history_answers(&notary, 20, &bodies).await;
    assert_eq!(notary.stats(), (21, 20, 20));
    notary.close().unwrap();
}

#[tokio::test]
async fn the_service_reopens_from_a_snapshot_holding_only_memory() {
    let h = Harness::new(4);
    let (notary, journal) = h.open();
    let bodies = workload(&notary, 20).await;
    notary.flush_to_cold().unwrap();
    assert_eq!(notary.hot_counts().spent + notary.hot_counts().receipts, 0);
    notary.snapshot().unwrap();
    let last = journal.last_seq();
    notary.close().unwrap();
    drop((notary, journal));
    let mut jc = JournalConfig::new(h.dir.path().join("journal"));
    jc.sync = SyncMode::None;
    let (journal, recovery) = Journal::open(jc).unwrap();
    assert_eq!(recovery.snapshot.as_ref().map(|s| s.0), Some(last), "the snapshot covers the journal");
    assert!(recovery.records.is_empty(), "the journal dropped what the snapshot covers");
    journal.close().unwrap();
    drop(journal);
    // Everything spent is found through the cold store only.
    let (notary, _journal) = h.open();
    let hot = notary.hot_counts();
    assert_eq!((hot.spent, hot.receipts), (0, 0), "{hot:?}");
    history_answers(&notary, 20, &bodies).await;
    // And more work after the snapshot, then reopen again (snapshot + tail).
    let more = receipt_body(&verdict(&notary, claim(9999, &[1001, 1002], &[77])).await);
    notary.close().unwrap();
    drop(notary);
    let (notary, _journal) = h.open();
    assert_eq!(receipt_body(&verdict(&notary, claim(9999, &[1001, 1002], &[77])).await), more);
    assert_eq!(
        verdict(&notary, claim(9998, &[1001], &[78])).await,
        Verdict::Rejected(NotaryRejection::Conflict { input: 0, commitment: c(1001), spent_by: t(9999) })
    );
    notary.close().unwrap();
}

#[tokio::test]
async fn a_crash_between_cold_writes_and_the_snapshot_loses_nothing() {
    let h = Harness::new(4);
    let (notary, journal) = h.open();
    let bodies = workload(&notary, 10).await;
    notary.snapshot().unwrap();
    // After the snapshot: more history is written to the cold store (and
    // made durable) but no snapshot follows — then the process dies. The
    // filter saved with the snapshot lacks those keys; the journal's tail
    // brings them back.
    let later = later_spends(&notary).await;
    notary.flush_to_cold().unwrap();
    notary.state_copy().cold().persist().unwrap();
    journal.close().unwrap();
    drop((notary, journal)); // no close of the service: a crash after the journal synced
    let (notary, _journal) = h.open();
    assert_eq!(origin(&notary), FilterOrigin::Saved);
    history_answers(&notary, 10, &bodies).await;
    later_answers(&notary, &later).await;
    notary.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notary_snapshots_in_the_background_every_interval() {
    let mut h = Harness::new(4);
    h.config.snapshot_every = 7;
    let (notary, journal) = h.open();
    // 21 batches: the 7th, 14th and 21st reach the interval; each is
    // answered before its snapshot is written (on a blocking thread).
    let bodies = workload(&notary, 20).await;
    assert_eq!(journal.last_seq(), 21);
    let snapshot = h.dir.path().join("journal").join(dtenge_store::format::snapshot_file_name(21));
    let written = wait_until(|| snapshot.exists()).await;
    assert!(written, "the snapshot of the 21st batch is written in the background");
    notary.close().unwrap();
    drop((notary, journal));
    // The reopened notary starts from that snapshot (nothing to replay) with
    // the filter saved beside it, and answers every history question.
    let mut jc = JournalConfig::new(h.dir.path().join("journal"));
    jc.sync = SyncMode::None;
    let (journal, recovery) = Journal::open(jc).unwrap();
    assert_eq!(recovery.snapshot.as_ref().map(|s| s.0), Some(21));
    assert!(recovery.records.is_empty());
    journal.close().unwrap();
    drop(journal);
    let (notary, _journal) = h.open();
    assert_eq!(origin(&notary), FilterOrigin::Saved);
    history_answers(&notary, 20, &bodies).await;
    notary.close().unwrap();
}

/// The filter of a reopened notary's cold store.
fn origin(notary: &NotaryService) -> FilterOrigin {
    notary.state_copy().cold().filter_origin()
}

#[tokio::test]
async fn a_reopened_notary_reads_its_filter_back_instead_of_every_key() {
    let h = Harness::new(4);
    let (notary, journal) = h.open();
    assert_eq!(origin(&notary), FilterOrigin::Rebuilt { why: "no filter was saved".into() });
    let bodies = workload(&notary, 20).await;
    notary.flush_to_cold().unwrap();
    notary.snapshot().unwrap();
    notary.close().unwrap();
    drop((notary, journal));
    assert!(h.dir.path().join("cold").join(FILTER_FILE).exists());
    // Reopened over the snapshot: the filter saved with it is used, and
    // every answer that needs the history in the cold store is the same.
    let (notary, journal) = h.open();
    assert_eq!(origin(&notary), FilterOrigin::Saved);
    history_answers(&notary, 20, &bodies).await;
    // Closed with no snapshot since: saved again at closing, still valid.
    let more = receipt_body(&verdict(&notary, claim(9999, &[1001, 1002], &[77])).await);
    notary.flush_to_cold().unwrap();
    notary.close().unwrap();
    drop((notary, journal));
    let (notary, _journal) = h.open();
    assert_eq!(origin(&notary), FilterOrigin::Saved);
    history_answers(&notary, 20, &bodies).await;
    assert_eq!(receipt_body(&verdict(&notary, claim(9999, &[1001, 1002], &[77])).await), more);
    notary.close().unwrap();
}

/// After [`workload`] of 10: tx 300 + i spends 1000 + i into 2000 + i.
async fn later_spends(notary: &NotaryService) -> Vec<ReceiptBody> {
    let mut later = Vec::new();
    for i in 1..=10 {
        later.push(receipt_body(&verdict(notary, claim(300 + i, &[1000 + i], &[2000 + i])).await));
    }
    later
}

/// Every question about [`later_spends`] answered from history: retries, a
/// double spend naming the spender, an output created again.
async fn later_answers(notary: &NotaryService, later: &[ReceiptBody]) {
    for i in 1..=10 {
        assert_eq!(
            receipt_body(&verdict(notary, claim(300 + i, &[1000 + i], &[2000 + i])).await),
            later[i as usize - 1]
        );
        assert_eq!(
            verdict(notary, claim(400 + i, &[1000 + i], &[3000 + i])).await,
            Verdict::Rejected(NotaryRejection::Conflict { input: 0, commitment: c(1000 + i), spent_by: t(300 + i) })
        );
        assert_eq!(
            verdict(notary, claim(500 + i, &[], &[2000 + i])).await,
            Verdict::Rejected(NotaryRejection::DuplicateOutput { output: 0 })
        );
    }
}

/// A snapshot journaled without saving the filter — what a release from
/// before saved filters does after this one ran — covers history the saved
/// filter lacks: the filter is rebuilt from the keys, never believed.
#[tokio::test]
async fn a_filter_saved_for_another_snapshot_is_rebuilt_not_believed() {
    let h = Harness::new(4);
    let (notary, journal) = h.open();
    workload(&notary, 10).await;
    notary.snapshot().unwrap();
    let later = later_spends(&notary).await;
    notary.flush_to_cold().unwrap();
    let state = notary.state_copy();
    state.cold().persist().unwrap();
    journal.snapshot(journal.last_seq(), &state.to_snapshot()).unwrap();
    journal.close().unwrap();
    drop((state, notary, journal));
    let (notary, _journal) = h.open();
    assert_eq!(
        origin(&notary),
        FilterOrigin::Rebuilt { why: "saved for another snapshot than the one recovered".into() }
    );
    assert_eq!(notary.hot_counts().spent, 0, "the later spends are only in the cold store");
    later_answers(&notary, &later).await;
    notary.close().unwrap();
}

#[tokio::test]
async fn a_damaged_saved_filter_is_named_and_rebuilt() {
    let h = Harness::new(4);
    let (notary, journal) = h.open();
    let bodies = workload(&notary, 10).await;
    notary.flush_to_cold().unwrap();
    notary.snapshot().unwrap();
    notary.close().unwrap();
    drop((notary, journal));
    let path = h.dir.path().join("cold").join(FILTER_FILE);
    let mut saved = std::fs::read(&path).unwrap();
    let middle = saved.len() / 2;
    saved[middle] ^= 0x40;
    std::fs::write(&path, &saved).unwrap();
    let (notary, _journal) = h.open();
    assert_eq!(
        origin(&notary),
        FilterOrigin::Rebuilt {
            why: "the saved filter is not used: damaged: its digest does not match its content".into()
        }
    );
    history_answers(&notary, 10, &bodies).await;
    notary.close().unwrap();
}

/// A notary service (NBK its only participant) over `journal` and a fjall
/// cold store in `cold_dir`, written in the background.
fn service_over(
    journal: Journal,
    recovery: dtenge_store::Recovery,
    cold_dir: &std::path::Path,
    config: NotaryConfig,
) -> Arc<NotaryService> {
    let participants = Arc::new(Participants::new(vec![ParticipantInfo {
        id: node(),
        name: "issuer".into(),
        role: Role::Nbk,
        public_key: node_key().public_key(),
        endpoint: None,
        tls_key: None,
    }]));
    let backend = Arc::new(FjallCold::open(cold_dir).unwrap());
    let cold = Arc::new(ColdStore::open_saved(backend, config.filter_bytes, WriteMode::Background).unwrap());
    NotaryService::recover_with(
        Arc::new(SecretKey::from_seed([9; 32])),
        participants,
        ManualClock::new(NOW),
        journal,
        recovery,
        cold,
        config,
    )
    .unwrap()
}

/// A notary over an in-memory journal and a fjall cold store in `cold_dir`
/// that outlives a crash, freezing a generation at every commit.
fn notary_on(journal: Journal, recovery: dtenge_store::Recovery, cold_dir: &std::path::Path) -> Arc<NotaryService> {
    let config = NotaryConfig {
        generation_entries: 1,
        generation_ms: u64::MAX,
        filter_bytes: 1 << 16,
        ..NotaryConfig::default()
    };
    service_over(journal, recovery, cold_dir, config)
}

/// The chaos run that lost value (session 4): the notary applied a batch,
/// the generation holding it went to the cold store at once, and the
/// notary was killed before the batch's journal record was durable. After
/// the restart another transaction took the lost commit's sequence number,
/// and the stale receipt in the cold store then read as committed: the
/// payer's resubmission was answered "already committed", so its node
/// dropped the inputs — which the notary never spent — and its outputs,
/// which the notary never created, were refused as unknown later. A
/// generation must reach the cold store only after its records are durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_journal_lost_in_a_crash_is_not_answered_from_the_cold_store() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, disk) = Journal::in_memory();
    let notary = notary_on(journal, dtenge_store::Recovery::default(), dir.path());
    receipt_body(&verdict(&notary, claim(1, &[], &[10, 11])).await);
    // Tx 2 is decided and applied (its generation frozen), but its record
    // never becomes durable: the process dies first.
    disk.pause_syncs(true);
    let lost = {
        let notary = Arc::clone(&notary);
        tokio::spawn(async move { notary.notarise(&node(), batch(vec![claim(2, &[10], &[20])])).await })
    };
    while notary.stats().0 < 2 {
        tokio::task::yield_now().await;
    }
    let (journal, recovery) = disk.crash_and_reopen();
    assert!(lost.await.unwrap().is_err(), "nothing was answered for tx 2");
    drop(notary); // the cold writer finishes what it was handed, as a killed process's OS would
    assert_eq!(recovery.records.len(), 1, "the journal kept the issue only");

    let notary = notary_on(journal, recovery, dir.path());
    assert_eq!(notary.stats().0, 1);
    // Another transaction takes sequence number 2.
    assert_eq!(receipt_body(&verdict(&notary, claim(3, &[11], &[30])).await).seq, 2);
    assert_eq!(notary.receipt(&t(2)).await.unwrap(), None, "tx 2 was never committed as far as the journal knows");
    let state = notary.state_copy();
    assert_eq!(state.status(&c(10)), Some(Ok(())), "tx 2's input is unspent");
    assert_eq!(state.status(&c(20)), None, "tx 2's output does not exist");
    // The payer's node resubmits tx 2: it commits now, for real.
    let again = receipt_body(&verdict(&notary, claim(2, &[10], &[20])).await);
    assert_eq!(again.seq, 3);
    let state = notary.state_copy();
    assert_eq!((state.status(&c(10)), state.status(&c(20))), (Some(Err(t(2))), Some(Ok(()))));
    assert_eq!(notary.stats(), (3, 2, 2));
    notary.close().unwrap();
}

#[tokio::test]
async fn memory_stays_flat_while_history_grows() {
    let h = Harness::new(1000);
    let (notary, _journal) = h.open();
    // 200 issued commitments, then 50 rounds of 200 spends: each spend
    // consumes a live commitment and creates one, so the live set stays 200.
    let outs: Vec<u64> = (1..=200).collect();
    let issues: Vec<TxClaim> = outs.chunks(50).zip(1u64..).map(|(o, i)| claim(i, &[], o)).collect();
    notary.notarise(&node(), batch(issues)).await.unwrap();
    let mut live: Vec<u64> = outs;
    let mut next = 1_000_000u64;
    let mut tx = 10u64;
    let mut peak = 0usize;
    for _round in 0..50 {
        let claims: Vec<TxClaim> = live
            .iter()
            .map(|i| {
                next += 1;
                tx += 1;
                claim(tx, &[*i], &[next])
            })
            .collect();
        live = ((next - 199)..=next).collect();
        let verdicts = notary.notarise(&node(), batch(claims)).await.unwrap();
        assert!(verdicts.iter().all(|v| matches!(v, Verdict::Committed(_))));
        let hot = notary.hot_counts();
        assert_eq!(hot.unspent, 200);
        // At most the current generation and MAX_FROZEN frozen ones, each
        // ≤ 1000 entries plus one batch (400 entries).
        assert!(hot.spent + hot.receipts <= (1 + MAX_FROZEN) * 1400, "{hot:?}");
        peak = peak.max(hot.spent + hot.receipts);
    }
    let (committed, unspent, spent) = notary.stats();
    assert_eq!((committed, unspent, spent), (10_004, 200, 10_000));
    assert!(peak * 4 < 20_000, "history (20 000 entries) is not all in memory (peak {peak})");
    let written = notary.state_copy().cold().written();
    assert!(written.1 >= 15_000, "most history went to the cold store: {written:?}");
    notary.close().unwrap();
}

/// Decides and applies `claims` at `at`; every one must commit.
fn apply_at(state: &mut NotaryState, claims: Vec<TxClaim>, at: Timestamp) {
    let (decisions, _) = decide_and_apply_at(state, batch(claims), true, at);
    assert!(decisions.iter().all(|d| matches!(d, Decision::Commit(_))), "{decisions:?}");
}

#[test]
fn a_generation_also_closes_by_age_so_a_slow_notary_moves_history_out_too() {
    let cold = Arc::new(ColdStore::memory(MemoryCold::new(), 1 << 16));
    let config = NotaryConfig {
        generation_entries: 1_000_000,
        generation_ms: 10_000,
        filter_bytes: 1 << 16,
        ..NotaryConfig::default()
    };
    let mut s = NotaryState::with_cold(cold.clone(), config);
    let at = |ms: u64| Timestamp(NOW.0 + ms);
    apply_at(&mut s, vec![claim(1, &[], &[1, 2, 3])], at(0));
    apply_at(&mut s, vec![claim(2, &[1], &[4])], at(9_999));
    assert_eq!(cold.written().0, 0, "younger than 10 s: still open");
    let hot = s.hot_counts();
    assert_eq!((hot.spent, hot.receipts), (1, 2));
    apply_at(&mut s, vec![claim(3, &[2], &[5])], at(10_000));
    assert_eq!(cold.written(), (1, 5), "10 s old: frozen and written (2 spent, 3 receipts)");
    assert_eq!(s.hot_counts().spent + s.hot_counts().receipts, 0);
    // The next generation opens with the next commit and closes 10 s later.
    apply_at(&mut s, vec![claim(4, &[3], &[6])], at(15_000));
    apply_at(&mut s, vec![claim(5, &[4], &[7])], at(24_999));
    assert_eq!(cold.written().0, 1);
    apply_at(&mut s, vec![claim(6, &[5], &[8])], at(25_000));
    assert_eq!(cold.written().0, 2);
    // Every answer is unchanged after history left memory.
    assert_eq!(s.status(&c(1)), Some(Err(t(2))));
    assert_eq!(s.status(&c(5)), Some(Err(t(6))));
    assert_eq!(s.committed(&t(3)).map(|b| b.seq), Some(3));
    // A clock that steps back never closes a generation early, nor fails.
    apply_at(&mut s, vec![claim(7, &[6], &[9])], at(20_000));
    assert_eq!(cold.written().0, 2);
}

/// A filter probe made while a key was still in a memory generation says
/// "not in the cold store"; if that generation is then written and dropped
/// before the decision, the probe is stale and must not be believed.
#[test]
fn a_cold_probe_made_before_a_generation_left_memory_is_not_believed() {
    let cold = Arc::new(ColdStore::memory(MemoryCold::new(), 1 << 16));
    let config = NotaryConfig {
        generation_entries: 1_000_000,
        generation_ms: u64::MAX,
        filter_bytes: 1 << 16,
        ..NotaryConfig::default()
    };
    let mut s = NotaryState::with_cold(cold.clone(), config);
    apply_at(&mut s, vec![claim(1, &[], &[1, 2])], NOW);
    apply_at(&mut s, vec![claim(2, &[1], &[3])], NOW);
    // Probed now, the spent 1 and t(2) are only in a memory generation: the
    // filter says "no" to both.
    let resurrect = batch(vec![claim(3, &[2], &[1])]);
    let retry = batch(vec![claim(2, &[1], &[3])]);
    let (stale_resurrect, stale_retry) = (ColdProbe::new(&cold, &resurrect), ColdProbe::new(&cold, &retry));
    // Their generation goes to the cold store and leaves memory.
    s.flush_to_cold().unwrap();
    assert_eq!(s.hot_counts().receipts, 0);
    assert!(cold.filter().may_contain(c(1).0.as_bytes()));
    let decided = |batch: &NotariseBatch, probe: &ColdProbe| {
        s.decide_digested(batch, &digests(batch), Some(probe), NOW, true).unwrap().remove(0)
    };
    assert_eq!(decided(&resurrect, &stale_resurrect), Decision::Reject(NotaryRejection::DuplicateOutput { output: 0 }));
    assert!(matches!(decided(&retry, &stale_retry), Decision::AlreadyCommitted(ref b) if b.tx == t(2)));
    // A fresh probe sees the keys in the filter and gives the same answers.
    let fresh = ColdProbe::new(&cold, &resurrect);
    assert_eq!(decided(&resurrect, &fresh), Decision::Reject(NotaryRejection::DuplicateOutput { output: 0 }));
}
