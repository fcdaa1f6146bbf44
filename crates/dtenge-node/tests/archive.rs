//! Node memory stays bounded (issue #7): settled outgoing transactions,
//! received ones, history and notifications move to the archive (lineage is
//! read from the transactions kept there);
//! reads still find them; a duplicate of an old delivery credits nothing;
//! replaying a journal tail into an archive that already holds it — after a
//! crash, with or without a snapshot — gives the same state, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use dtenge_crypto::{SecretKey, hash};
use dtenge_node::accounts::{Account, AccountId, Custody, Holder, HolderKind, KycState};
use dtenge_node::archive::Archive;
use dtenge_node::build::{self, Draft, Payee};
use dtenge_node::regime::{LinkDirection, LinkedTransfer};
use dtenge_node::state::{Message, NodeRecord, NodeState, Notification, Status};
use dtenge_types::*;

const DAY: u64 = Timestamp::DAY_MS;
/// Noon in Astana on some day.
const NOON: u64 = 20_000 * DAY + 2 * 3_600_000;

fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(*hash(b"archive-test", &[name.as_bytes()]).as_bytes())
}
fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}
fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

/// `tx` as NBK's node delivered it at `at` (no inputs: an issue).
fn from_nbk(tx: Transaction, at: Timestamp) -> NodeRecord {
    NodeRecord::Received { tx, inputs: vec![], receipt: vec![1], from: pid("NBK"), at }
}

/// What `payer` at `host` builds from at `now` (a one-minute window, one change output).
fn draft(host: ParticipantId, payer: Address, now: Timestamp) -> Draft {
    Draft { host, payer, now, window_ms: 60_000, memo: None, change_parts: 1 }
}

fn account(n: u64, name: &str) -> Account {
    let iin = (0..10u8).find_map(|b| IinBin::with_check_digit(&[9, 0, 0, 1, 0, 1, 3, 0, b, 0, n as u8])).unwrap();
    Account {
        id: AccountId::new(&pid("STB1"), n),
        holder: Holder { iin_bin: iin, name: name.into(), kind: HolderKind::Individual },
        address: Address(key(name).public_key()),
        custody: Custody::Client,
        kyc: KycState::Verified,
        opened_at: Timestamp(1),
        closed: false,
    }
}

/// A node's journal: Alice gets 1 000 DT from NBK (a delivery), pays Bob at
/// STB2 `payments` times 10 DT (prepared, committed, delivered), one payment
/// is aborted, and Alice is notified of the incoming funds.
struct Script {
    alice: Account,
    records: Vec<NodeRecord>,
    funding: Transaction,
    paid: Vec<TxId>,
    aborted: TxId,
}

fn script(payments: usize) -> Script {
    let alice = account(1, "alice");
    let bob = Address(key("bob").public_key());
    let mut records = vec![NodeRecord::AccountOpened(alice.clone())];
    let nbk = draft(pid("NBK"), Address(key("nbk").public_key()), Timestamp(NOON));
    let to_alice = Payee { address: alice.address, host: pid("STB1"), amount: dt(1_000) };
    let funding =
        Transaction::unsigned(build::issue(&nbk, &to_alice, CbsRef::new("C-1").unwrap(), Currency::DT).unwrap());
    records.push(from_nbk(funding.clone(), Timestamp(NOON)));
    records.push(NodeRecord::Notified {
        account: alice.id.clone(),
        notification: Notification {
            at: Timestamp(NOON),
            message: Message::Incoming { amount: dt(1_000), currency: Currency::DT, command: "issue".into() },
            tx: Some(funding.id()),
        },
    });
    let mut coin = (TokenId { tx: funding.id(), index: 0 }, funding.body.outputs[0].clone());
    let mut paid = Vec::new();
    let mut aborted = None;
    for i in 0..=payments {
        let at = Timestamp(NOON + 1_000 * i as u64);
        let draft = draft(pid("STB1"), alice.address, at);
        let payee = Payee { address: bob, host: pid("STB2"), amount: dt(10) };
        let tx = Transaction::unsigned(build::transfer(&draft, std::slice::from_ref(&coin), &[payee]).unwrap());
        let id = tx.id();
        records.push(NodeRecord::Prepared {
            tx: tx.clone(),
            inputs: vec![coin.1.clone()],
            account: alice.id.clone(),
            at,
        });
        if i == payments {
            // The last one is refused by the notary; the coin stays.
            records.push(NodeRecord::Aborted { tx: id, reason: "conflict".into(), spent_elsewhere: vec![] });
            aborted = Some(id);
            break;
        }
        records.push(NodeRecord::Committed { tx: id, receipt: vec![2], deliver_to: BTreeSet::from([pid("STB2")]), at });
        records.push(NodeRecord::Delivered { tx: id, to: pid("STB2") });
        paid.push(id);
        // The change is the next coin.
        let change = tx.output_ids().zip(tx.body.outputs.iter()).find(|(_, t)| t.owner == alice.address).unwrap();
        coin = (change.0, change.1.clone());
    }
    Script { alice, records, funding, paid, aborted: aborted.unwrap() }
}

fn replay(archive: Archive, records: &[NodeRecord]) -> NodeState {
    let mut state = NodeState::with_archive(archive);
    for r in records {
        state.apply(r);
    }
    state
}

/// The in-memory part of a state, as a snapshot holds it.
fn memory(state: &NodeState) -> Vec<u8> {
    borsh::to_vec(state).unwrap()
}

#[test]
fn settled_records_leave_memory_and_reads_still_find_them() {
    let s = script(20);
    let state = replay(Archive::memory(), &s.records);
    let counts = state.counts();
    assert_eq!(counts.unsettled, 0, "nothing in flight stays in memory");
    assert_eq!(counts.settled, 21, "20 payments and 1 abort archived");
    assert_eq!(counts.received, 1);
    assert_eq!(state.unsettled().count(), 0);
    let archived = state.archive().counts();
    assert_eq!(archived.outgoing, 21);
    assert_eq!(archived.received, 1);
    assert_eq!(archived.history, 22, "one line per payment, the abort and the funding");
    assert_eq!(archived.notifications, 1);

    // Reads go through memory then the archive.
    let first = state.outgoing(&s.paid[0]).unwrap();
    assert_eq!(first.status, Status::Success);
    assert!(first.undelivered.is_empty());
    assert!(matches!(state.outgoing(&s.aborted).unwrap().status, Status::Rejected { .. }));
    assert_eq!(state.received(&s.funding.id()).unwrap().1, pid("NBK"));
    assert!(state.knows_tx(&s.paid[3]) && state.knows_tx(&s.funding.id()));
    let newest = state.history(&s.alice.id, 3);
    assert_eq!(newest.len(), 3);
    assert!(matches!(newest[0].status, Status::Rejected { .. }), "newest first: the aborted payment");
    assert_eq!(newest[1].tx, s.paid[19]);
    assert_eq!(newest[1].outgoing, dt(10));
    assert_eq!(state.history(&s.alice.id, usize::MAX).last().unwrap().incoming, dt(1_000));
    assert_eq!(state.book(&s.alice.id).history, 22);
    let told = state.notifications(&s.alice.id, 10);
    assert_eq!(told.len(), 1);
    assert_eq!(
        told[0].message,
        Message::Incoming { amount: dt(1_000), currency: Currency::DT, command: "issue".into() }
    );
    let child = TokenId { tx: s.paid[0], index: 0 };
    assert_eq!(state.lineage(&child).unwrap(), vec![TokenId { tx: s.funding.id(), index: 0 }]);
    // Lineage is read from the transaction that made the token: every
    // output of a settled payment (the payee's and the change), a received
    // issue (no parents); nothing for an aborted payment's outputs, or for
    // an index the transaction does not have.
    for pair in s.paid.windows(2) {
        for index in [0, 1] {
            // Each payment spends the previous one's change.
            let parents = state.lineage(&TokenId { tx: pair[1], index }).unwrap();
            assert!(matches!(parents.as_slice(), [only] if only.tx == pair[0]), "{parents:?}");
        }
    }
    assert_eq!(state.lineage(&TokenId { tx: s.funding.id(), index: 0 }), Some(vec![]));
    assert_eq!(state.lineage(&TokenId { tx: s.funding.id(), index: 1 }), None);
    assert_eq!(state.lineage(&TokenId { tx: s.aborted, index: 0 }), None);
    assert_eq!(state.lineage(&TokenId { tx: s.paid[0], index: 2 }), None);
    let mut all = 0;
    state.for_each_outgoing(|_, _| {
        all += 1;
        true
    });
    assert_eq!(all, 21);
    // The balance: 1 000 − 20 × 10.
    assert_eq!(state.vault.balances(&s.alice.id).expect("representable").standard, dt(800));
}

#[test]
fn in_flight_work_stays_in_memory_until_settled() {
    let s = script(2);
    // Up to the first payment's commit: delivery to STB2 still outstanding.
    let upto = s.records.iter().position(|r| matches!(r, NodeRecord::Delivered { .. })).unwrap();
    let mut state = replay(Archive::memory(), &s.records[..upto]);
    assert_eq!(state.counts().unsettled, 1, "committed, delivery outstanding");
    assert_eq!(state.undelivered(), vec![(s.paid[0], pid("STB2"))]);
    assert_eq!(state.archive().counts().outgoing, 0);
    // Committed and still in memory: its outputs' lineage is known.
    let parents = Some(vec![TokenId { tx: s.funding.id(), index: 0 }]);
    assert_eq!(state.lineage(&TokenId { tx: s.paid[0], index: 0 }), parents);
    state.apply(&s.records[upto]);
    assert_eq!(state.counts().unsettled, 0);
    assert_eq!(state.archive().counts().outgoing, 1);
}

#[test]
fn a_prepared_payment_has_no_lineage_until_committed() {
    let s = script(1);
    let committed = s.records.iter().position(|r| matches!(r, NodeRecord::Committed { .. })).unwrap();
    let mut state = replay(Archive::memory(), &s.records[..committed]);
    let token = TokenId { tx: s.paid[0], index: 0 };
    assert_eq!(state.lineage(&token), None, "prepared only: the token does not exist");
    state.apply(&s.records[committed]);
    assert_eq!(state.lineage(&token), Some(vec![TokenId { tx: s.funding.id(), index: 0 }]));
}

/// Releases before lineage was read from the transactions kept it as one
/// archive entry per token; such an entry is still read.
#[test]
fn lineage_an_earlier_release_archived_per_token_is_still_read() {
    use dtenge_node::archive::{ArchiveStore, MemoryStore, VALUE};
    let store = std::sync::Arc::new(MemoryStore::default());
    let token = TokenId { tx: TxId(hash(b"archive-test", &[b"old"])), index: 3 };
    let parents = vec![TokenId { tx: TxId(hash(b"archive-test", &[b"parent"])), index: 0 }];
    let mut key = vec![b'l'];
    key.extend(borsh::to_vec(&token).unwrap());
    let mut value = Vec::new();
    VALUE.tag_into(&mut value);
    value.extend(borsh::to_vec(&parents).unwrap());
    store.put(&key, &value).unwrap();
    let state = NodeState::with_archive(Archive::over(store));
    assert_eq!(state.lineage(&token), Some(parents));
    assert_eq!(state.lineage(&TokenId { tx: token.tx, index: 0 }), None);
}

#[test]
fn a_duplicate_of_an_old_delivery_credits_nothing() {
    let s = script(20);
    let mut state = replay(Archive::memory(), &s.records);
    let before = memory(&state);
    let balance = state.vault.balances(&s.alice.id);
    // The funding arrives again, long after it was archived.
    state.apply(&from_nbk(s.funding.clone(), Timestamp(NOON + 10 * DAY)));
    assert_eq!(state.vault.balances(&s.alice.id), balance, "no double credit");
    assert_eq!(memory(&state), before, "nothing changed");
    assert_eq!(state.archive().counts().received, 1);
    assert_eq!(state.book(&s.alice.id).history, 22, "no second history line");
}

/// Crash after every record has been written to the archive: the node
/// restarts from the journal (all of it, or a snapshot and the tail) into
/// the archive that already holds everything.
fn replay_into_a_full_archive(archive: impl Fn() -> Archive) {
    let s = script(20);
    let reference = replay(Archive::memory(), &s.records);
    let written = replay(archive(), &s.records);
    assert_eq!(memory(&written), memory(&reference));
    let counts = written.archive().counts();
    drop(written);

    // Whole journal again.
    let again = replay(archive(), &s.records);
    assert_eq!(memory(&again), memory(&reference), "replay from the start gives the same state");
    assert_eq!(again.archive().counts(), counts, "and writes nothing new");
    assert_eq!(
        again.vault.balances(&s.alice.id).expect("representable").standard,
        dt(800),
        "the funding is credited once"
    );
    drop(again);

    // A snapshot after every prefix, then the tail.
    for cut in 0..s.records.len() {
        let head = replay(Archive::memory(), &s.records[..cut]);
        let mut state: NodeState = borsh::from_slice(&memory(&head)).unwrap();
        state.set_archive(archive());
        for r in &s.records[cut..] {
            state.apply(r);
        }
        assert_eq!(memory(&state), memory(&reference), "snapshot at {cut} + tail");
        assert_eq!(state.archive().counts(), counts);
        assert!(state.archive().failure().is_none());
    }
}

#[test]
fn replaying_an_archived_tail_is_idempotent_in_memory() {
    let shared = Archive::memory();
    replay_into_a_full_archive(|| shared.clone());
}

#[test]
fn replaying_an_archived_tail_is_idempotent_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    replay_into_a_full_archive(|| Archive::open(dir.path()).unwrap());
}

#[test]
fn the_disk_archive_survives_reopen_after_persist() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(5);
    let (snapshot, counts) = {
        let state = replay(Archive::open(dir.path()).unwrap(), &s.records);
        state.archive().persist().unwrap();
        (memory(&state), state.archive().counts())
    };
    // Restart from the snapshot alone: the journal dropped everything.
    let mut state: NodeState = borsh::from_slice(&snapshot).unwrap();
    state.set_archive(Archive::open(dir.path()).unwrap());
    assert_eq!(state.archive().counts(), counts);
    assert_eq!(state.outgoing(&s.paid[4]).unwrap().status, Status::Success);
    assert_eq!(state.history(&s.alice.id, usize::MAX).len(), 7);
    assert!(state.knows_tx(&s.funding.id()));
    // A duplicate of the old funding is still refused after the restart.
    state.apply(&from_nbk(s.funding.clone(), Timestamp(NOON + DAY)));
    assert_eq!(state.vault.balances(&s.alice.id).expect("representable").standard, dt(950));
}

#[test]
fn daily_spending_is_a_running_total() {
    let s = script(3);
    let mut state = replay(Archive::memory(), &s.records);
    let now = Timestamp(NOON + 60_000);
    assert_eq!(state.spent_on_day(&s.alice.id, now), dt(30), "three payments; the aborted one does not count");
    assert_eq!(state.spent_on_day(&s.alice.id, Timestamp(NOON + DAY)), Amount::ZERO, "a new Astana day");
    // A conversion to the linked bank account is not spending.
    state.apply(&NodeRecord::LinkedTransferMade(LinkedTransfer {
        account: s.alice.id.clone(),
        direction: LinkDirection::ToBankAccount,
        amount: dt(10),
        bank_account: "KZ1".into(),
        tx: s.paid[1],
        at: now,
        reason: "reverse waterfall".into(),
    }));
    assert_eq!(state.spent_on_day(&s.alice.id, now), dt(20));
}

/// A crash loses the journal's unacknowledged tail after its records were
/// applied and archived; another delivery then takes the lost one's arrival
/// number. Once recovery drops the archive's entries ahead of the journal,
/// the lost transaction's redelivery is credited, not taken for a duplicate.
fn a_lost_tail_is_not_a_duplicate(archive: impl Fn() -> Archive) {
    let s = script(2);
    let written = replay(archive(), &s.records);
    assert_eq!(written.counts().received, 1);
    drop(written);
    // The journal kept only the account: the funding's Received was lost.
    let mut state = replay(archive(), &s.records[..1]);
    let removed = state.drop_entries_ahead_of_journal();
    assert!(removed >= 2, "the lost arrival and its history line and notification: {removed}");
    let nbk = draft(pid("NBK"), Address(key("nbk").public_key()), Timestamp(NOON));
    let other = Transaction::unsigned(
        build::issue(
            &nbk,
            &Payee { address: s.alice.address, host: pid("STB1"), amount: dt(5) },
            CbsRef::new("C-2").unwrap(),
            Currency::DT,
        )
        .unwrap(),
    );
    for tx in [other, s.funding.clone()] {
        state.apply(&from_nbk(tx, Timestamp(NOON + 1)));
    }
    assert_eq!(
        state.vault.balances(&s.alice.id).expect("representable").standard,
        dt(1_005),
        "the redelivered funding is credited"
    );
    assert_eq!(state.history(&s.alice.id, usize::MAX).len(), 2);
}

#[test]
fn a_lost_tail_is_not_a_duplicate_in_memory() {
    let shared = Archive::memory();
    a_lost_tail_is_not_a_duplicate(|| shared.clone());
}

#[test]
fn a_lost_tail_is_not_a_duplicate_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    a_lost_tail_is_not_a_duplicate(|| Archive::open(dir.path()).unwrap());
}

/// The journal of `script(2)` with the first payment's `Committed` journaled
/// a second time — the operation and the resolver both settled it — after
/// the second payment spent its change, and before its delivery.
fn with_a_second_commit(s: &Script) -> (Vec<NodeRecord>, usize) {
    let r = &s.records;
    // 0 opened, 1 received, 2 notified, 3 prepared p0, 4 committed p0,
    // 5 delivered p0, 6 prepared p1, 7 committed p1, 8 delivered p1,
    // 9 prepared p2, 10 aborted p2.
    assert!(matches!(&r[4], NodeRecord::Committed { tx, .. } if *tx == s.paid[0]));
    assert!(matches!(&r[7], NodeRecord::Committed { tx, .. } if *tx == s.paid[1]));
    let order = [0, 1, 2, 3, 4, 6, 7, 8, 4, 5, 9, 10];
    (order.iter().map(|i| r[*i].clone()).collect(), 8)
}

#[test]
fn a_second_commit_of_one_payment_applies_once_live() {
    let s = script(2);
    let reference = replay(Archive::memory(), &s.records);
    let (journal, second) = with_a_second_commit(&s);
    let mut state = NodeState::with_archive(Archive::memory());
    for r in &journal[..second] {
        state.apply(r);
    }
    let before = state.vault.balances(&s.alice.id).expect("representable");
    let history = state.book(&s.alice.id).history;
    state.apply(&journal[second]);
    assert_eq!(
        state.vault.balances(&s.alice.id).expect("representable"),
        before,
        "the change the next payment spent is not put back"
    );
    assert_eq!(state.book(&s.alice.id).history, history, "no second history line");
    for r in &journal[second + 1..] {
        state.apply(r);
    }
    assert_eq!(state.vault.balances(&s.alice.id).expect("representable").standard, dt(980));
    assert_eq!(memory(&state), memory(&reference), "the same state as with one commit");
    assert_eq!(state.archive().counts(), reference.archive().counts());
}

fn a_second_commit_applies_once_on_replay(archive: impl Fn() -> Archive) {
    let s = script(2);
    let reference = replay(Archive::memory(), &s.records);
    let (journal, _) = with_a_second_commit(&s);
    // Into an empty archive, then again into the one it filled (a restart).
    for _ in 0..2 {
        let mut state = replay(archive(), &journal);
        assert_eq!(state.drop_entries_ahead_of_journal(), 0);
        assert_eq!(state.vault.balances(&s.alice.id).expect("representable").standard, dt(980));
        assert_eq!(memory(&state), memory(&reference), "replay applies the commit once");
        assert_eq!(state.archive().counts(), reference.archive().counts());
    }
}

#[test]
fn a_second_commit_applies_once_on_replay_in_memory() {
    let shared = Archive::memory();
    a_second_commit_applies_once_on_replay(|| shared.clone());
}

#[test]
fn a_second_commit_applies_once_on_replay_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    a_second_commit_applies_once_on_replay(|| Archive::open(dir.path()).unwrap());
}

/// A crash loses a payment's `Delivered` (journaled without waiting) after
/// applying it moved the payment into the archive as settled: the journal
/// has it committed with a delivery outstanding. Recovery drops the settled
/// copy, so every reader sees the payment once, as the journal has it, and
/// the redelivery settles it again.
#[test]
fn a_settled_copy_the_journal_lost_is_dropped_at_recovery() {
    let shared = Archive::memory();
    let s = script(2);
    let upto = s.records.iter().position(|r| matches!(r, NodeRecord::Delivered { .. })).unwrap();
    // Applied and archived up to the first payment's delivery; the journal
    // ends at its commit (the delivery was lost).
    drop(replay(shared.clone(), &s.records[..=upto]));
    assert_eq!(shared.counts().outgoing, 1);
    let mut state = replay(shared.clone(), &s.records[..upto]);
    assert!(state.drop_entries_ahead_of_journal() >= 1);
    let mut seen = Vec::new();
    state.for_each_outgoing(|id, o| {
        seen.push((*id, o.undelivered.clone()));
        true
    });
    assert_eq!(seen, vec![(s.paid[0], BTreeSet::from([pid("STB2")]))], "once, with its delivery outstanding");
    assert_eq!(state.archive().counts().outgoing, 0);
    for r in &s.records[upto..] {
        state.apply(r);
    }
    let reference = replay(Archive::memory(), &s.records);
    assert_eq!(memory(&state), memory(&reference));
    assert_eq!(state.archive().counts(), reference.archive().counts());
}

/// A DA's archived history lines, oldest first.
fn lines(state: &NodeState, account: &AccountId) -> Vec<dtenge_node::state::HistoryEntry> {
    let mut all = state.history(account, usize::MAX);
    all.reverse();
    all
}

/// A payment's lines change status when it settles (they are made again
/// from the transaction, or read back when it moved several currencies),
/// and the next transaction's line, right after them, keeps its own.
#[test]
fn a_settled_payment_sets_its_own_lines_and_only_those() {
    let alice = account(1, "alice");
    let bob = Address(key("bob").public_key());
    let usdx = Currency::new("USDX").unwrap();
    let nbk = draft(pid("NBK"), Address(key("nbk").public_key()), Timestamp(NOON));
    let to_alice = |amount| Payee { address: alice.address, host: pid("STB1"), amount };
    let fund = |n: &str, currency| {
        Transaction::unsigned(build::issue(&nbk, &to_alice(dt(100)), CbsRef::new(n).unwrap(), currency).unwrap())
    };
    let (dt_a, dt_b, coin) = (fund("C-1", Currency::DT), fund("C-2", Currency::DT), fund("C-3", usdx));
    let token = |tx: &Transaction| (TokenId { tx: tx.id(), index: 0 }, tx.body.outputs[0].clone());
    let mut records = vec![NodeRecord::AccountOpened(alice.clone())];
    for funding in [&dt_a, &dt_b, &coin] {
        records.push(from_nbk(funding.clone(), Timestamp(NOON)));
    }
    let draft = draft(pid("STB1"), alice.address, Timestamp(NOON + 1_000));
    let to_bob = Payee { address: bob, host: pid("STB2"), amount: dt(10) };
    // DT and USDX in one transaction: two lines.
    let mut body = build::transfer(&draft, &[token(&dt_a)], std::slice::from_ref(&to_bob)).unwrap();
    body.inputs.try_push(token(&coin).0).unwrap();
    body.outputs.try_push(Token::standard(usdx, dt(5), bob, pid("STB2"))).unwrap();
    body.outputs.try_push(Token::standard(usdx, dt(95), alice.address, pid("STB1"))).unwrap();
    let both = Transaction::unsigned(body);
    // Then a DT payment, prepared before the first settles: its line comes next.
    let single = Transaction::unsigned(build::transfer(&draft, &[token(&dt_b)], &[to_bob]).unwrap());
    let at = Timestamp(NOON + 1_000);
    records.push(NodeRecord::Prepared {
        tx: both.clone(),
        inputs: vec![token(&dt_a).1, token(&coin).1],
        account: alice.id.clone(),
        at,
    });
    records.push(NodeRecord::Prepared {
        tx: single.clone(),
        inputs: vec![token(&dt_b).1],
        account: alice.id.clone(),
        at,
    });
    let status = |state: &NodeState| -> Vec<(TxId, Option<Currency>, Status)> {
        lines(state, &alice.id).into_iter().skip(3).map(|l| (l.tx, l.currency, l.status)).collect()
    };
    let mut state = replay(Archive::memory(), &records);
    let review = Status::UnderReview;
    assert_eq!(
        status(&state),
        vec![
            (both.id(), Some(Currency::DT), review.clone()),
            (both.id(), Some(usdx), review.clone()),
            (single.id(), Some(Currency::DT), review.clone()),
        ]
    );
    let prepared_line = lines(&state, &alice.id)[5].clone();

    state.apply(&NodeRecord::Committed {
        tx: single.id(),
        receipt: vec![2],
        deliver_to: BTreeSet::from([pid("STB2")]),
        at,
    });
    state.apply(&NodeRecord::Aborted { tx: both.id(), reason: "conflict".into(), spent_elsewhere: vec![] });
    let rejected = Status::Rejected { reason: "conflict".into() };
    assert_eq!(
        status(&state),
        vec![
            (both.id(), Some(Currency::DT), rejected.clone()),
            (both.id(), Some(usdx), rejected),
            (single.id(), Some(Currency::DT), Status::Success),
        ]
    );
    // The line made again is the line prepared, with its new status.
    let settled_line = lines(&state, &alice.id)[5].clone();
    assert_eq!(dtenge_node::state::HistoryEntry { status: Status::UnderReview, ..settled_line }, prepared_line);
    assert_eq!(state.book(&alice.id).history, 6, "no line added by settling");
    assert_eq!(state.spent_on_day(&alice.id, at), dt(10), "only the committed payment counts as spent");
}
