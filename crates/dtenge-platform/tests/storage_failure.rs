//! A node whose storage has failed sends nothing more to the notary. Its
//! journal is poisoned after a failed write, so it could not record the
//! notary's answer; and if the write that failed was the `Aborted` of a
//! payment its payee's bank refused after `Prepared`, committing that
//! payment would pay what the payer was told did not go. Shown on a second
//! instance of STB1, recovered from the platform's STB1 with a payment in
//! flight (the notary was cut off), over an in-memory journal that then
//! fails; after a restart on working storage the payment is resolved.
//!
//! The same question after a restart or the notary's return: a payment in
//! flight goes to the notary again only if its payee's bank still takes it.
//! And while the notary is slow to answer, the tick still delivers what was
//! committed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use dtenge_net::Handler;
use dtenge_node::RefusalCode;
use dtenge_node::accounts::{Account, HolderKind, KycState};
use dtenge_node::service::{NodeService, PayTo, TxOutcome};
use dtenge_node::state::Status;
use dtenge_platform::assembly::PlatformNotary;
use dtenge_platform::services::journal_dir;
use dtenge_platform::spec::{Keys, ids};
use dtenge_store::{Journal, JournalConfig, Recovery};
use dtenge_types::ParticipantId;
use support::*;

#[tokio::test]
async fn a_node_whose_journal_failed_leaves_its_payments_in_flight_until_it_restarts() {
    // The notary is cut off: the payment is prepared, then stays in flight.
    let (w, _, _, paid) = in_flight().await;

    // A second STB1 from a copy of the first one's journal, over storage that fails.
    let recovery = journal_copy(&w, "STB1");
    let (journal, disk) = Journal::in_memory();
    let node = instance(&w, "STB1", journal.clone(), recovery.clone());
    assert!(node.read(|s| s.in_flight().contains(&paid.tx)), "the copy has the payment in flight");
    disk.fail_next_sync();
    assert!(journal.append(b"the write that fails".to_vec()).unwrap().durable().await.is_err());

    // The notary is back: the failed node's background work does not send it the payment.
    w.p.network.heal(&pid(ids::NOTARY));
    let done = node.tick().await;
    let line = done.iter().find(|l| l.contains(&paid.tx.to_string())).expect("the tick tried the payment");
    assert!(line.contains("nothing goes to the notary"), "{line}");
    assert_eq!(w.p.notary.receipt(&paid.tx).await.unwrap(), None, "committed by a node that cannot record it");
    assert!(node.read(|s| s.in_flight().contains(&paid.tx)), "still in flight, not settled or aborted");

    // Restarted on working storage, the node resolves it: paid once.
    let restarted = instance(&w, "STB1", Journal::in_memory().0, recovery);
    restarted.tick().await;
    assert!(w.p.notary.receipt(&paid.tx).await.unwrap().is_some(), "resolved after the restart");
    assert!(!restarted.read(|s| s.in_flight().contains(&paid.tx)));
}

/// A payment left in flight (the notary was away) goes to the notary again
/// only if its payee's bank still takes it: here the payee closed its DA
/// meanwhile. It is not sent, and once its window has closed — when no
/// claim sent before can still commit — it is aborted, naming the payee's
/// refusal, and the payer has the money back. The same check covers a refusal that arrived after
/// `Prepared` and whose `Aborted` a crash lost.
#[tokio::test]
async fn a_payment_in_flight_is_not_sent_again_once_its_payee_refuses_it() {
    let (w, alice, bob, paid) = in_flight().await;
    let payer = w.node("STB1");
    w.node("STB2").close_account(&bob.id, false).await.unwrap();

    kept_off_the_notary(&w, &payer, &paid.tx).await;
    assert!(payer.read(|s| s.in_flight().contains(&paid.tx)), "in flight until its window closes");

    w.clock.advance(dtenge_node::service::WINDOW_MS + 1);
    payer.tick().await;
    assert!(!payer.read(|s| s.in_flight().contains(&paid.tx)), "aborted once its window closed");
    match payer.read(|s| s.outgoing(&paid.tx)).map(|o| o.status) {
        Some(Status::Rejected { reason }) => {
            assert!(
                reason.text.contains("STB2") && reason.text.contains("closed"),
                "the payee's refusal is named: {reason}"
            );
            assert_eq!(reason.code, Some(RefusalCode::PayeeRefused), "under the refusal's own code");
        }
        other => panic!("not rejected: {other:?}"),
    }
    assert_eq!(w.p.notary.receipt(&paid.tx).await.unwrap(), None);
    assert_eq!(payer.read(|s| s.vault.balances(&alice.id).unwrap().total), dt(100), "the payer has it all back");
}

/// A payment the notary never saw within its window ends rejected under
/// the code `expired`, in the payer's outgoing record and in the DA's
/// history alike, and the payer has its money back.
#[tokio::test]
async fn a_payment_the_notary_never_saw_within_its_window_ends_expired() {
    let (w, alice, _bob, paid) = in_flight().await;
    let payer = w.node("STB1");
    w.clock.advance(dtenge_node::service::WINDOW_MS + 1);
    w.p.network.heal(&pid(ids::NOTARY));
    payer.tick().await;
    let expired = |status: Option<Status>| match status {
        Some(Status::Rejected { reason }) => {
            assert_eq!(reason.code, Some(RefusalCode::Expired), "{reason:?}");
            assert!(reason.text.contains("time window"), "{reason:?}");
        }
        other => panic!("not rejected: {other:?}"),
    };
    expired(payer.read(|s| s.outgoing(&paid.tx)).map(|o| o.status));
    let history = payer.read(|s| s.history(&alice.id, 10));
    expired(history.into_iter().find(|h| h.tx == paid.tx).map(|h| h.status));
    assert_eq!(w.p.notary.receipt(&paid.tx).await.unwrap(), None);
    assert_eq!(payer.read(|s| s.vault.balances(&alice.id).unwrap().total), dt(100), "the payer has it all back");
}

/// A payment the notary refuses — its input already spent, here by the
/// node a copy of STB1's journal was taken from — ends rejected under the
/// code `notary_rejected`, the answer's code, in the payer's history.
#[tokio::test]
async fn a_payment_the_notary_refuses_ends_rejected_under_its_code() {
    let w = World::new().await;
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let copy = instance(&w, "STB1", Journal::in_memory().0, journal_copy(&w, "STB1"));
    let all = [PayTo { address: bob.address, amount: dt(100) }];
    w.node("STB1").pay(&alice.id, &all, None).await.unwrap();

    // Another payment (the same one again would be its retry, answered as paid).
    let half = [PayTo { address: bob.address, amount: dt(50) }];
    let refused = copy.pay(&alice.id, &half, None).await.expect_err("its input is spent");
    assert_eq!(refused.code(), RefusalCode::NotaryRejected, "{refused}");
    let lines = copy.read(|s| s.history(&alice.id, 10));
    let rejected: Vec<_> = lines.iter().filter(|h| matches!(h.status, Status::Rejected { .. })).collect();
    assert_eq!(rejected.len(), 1, "{lines:?}");
    match &rejected[0].status {
        Status::Rejected { reason } => {
            assert_eq!(reason.code, Some(RefusalCode::NotaryRejected), "{reason:?}");
            assert_eq!(reason.text, refused.to_string(), "the words the caller was answered with");
        }
        other => panic!("not rejected: {other:?}"),
    }
}

/// The payee's refusal is journaled: a node restarted after the payment's
/// window closed still names it when it aborts the payment, rather than
/// calling it expired.
#[tokio::test]
async fn a_refusal_in_flight_is_named_after_a_restart() {
    let (w, alice, bob, paid) = in_flight().await;
    w.node("STB2").close_account(&bob.id, false).await.unwrap();
    kept_off_the_notary(&w, &w.node("STB1"), &paid.tx).await;

    let restarted = instance(&w, "STB1", Journal::in_memory().0, journal_copy(&w, "STB1"));
    w.clock.advance(dtenge_node::service::WINDOW_MS + 1);
    let done = restarted.tick().await;
    let line = done.iter().find(|l| l.starts_with(&format!("resolved {}", paid.tx))).expect("resolved");
    assert!(line.contains("Rejected") && line.contains("payee_refused: "), "{line}");
    match restarted.read(|s| s.outgoing(&paid.tx)).map(|o| o.status) {
        Some(Status::Rejected { reason }) => {
            assert!(
                reason.text.contains("STB2") && reason.text.contains("closed"),
                "the payee's refusal is named: {reason}"
            );
            assert_eq!(reason.code, Some(RefusalCode::PayeeRefused), "under the refusal's own code");
        }
        other => panic!("not rejected: {other:?}"),
    }
    assert_eq!(restarted.read(|s| s.vault.balances(&alice.id).unwrap().total), dt(100), "the payer has it all back");
}

/// The recovery of a copy of `node`'s journal as it is now: what a restart
/// of the node would read.
fn journal_copy(w: &World, node: &str) -> Recovery {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&journal_dir(&w.p.data, &pid(node), dtenge_net::Role::Stb), copy.path());
    let (read, recovery) = Journal::open(JournalConfig::new(copy.path())).unwrap();
    read.close().unwrap();
    recovery
}

/// A payee's bank that still takes the payment: it goes through, once.
#[tokio::test]
async fn a_payment_in_flight_whose_payee_still_takes_it_is_paid_once() {
    let (w, _, bob, paid) = in_flight().await;
    let payer = w.node("STB1");
    w.p.network.heal(&pid(ids::NOTARY));
    payer.tick().await;
    assert!(w.p.notary.receipt(&paid.tx).await.unwrap().is_some(), "resolved");
    assert!(!payer.read(|s| s.in_flight().contains(&paid.tx)));
    assert_eq!(w.node("STB2").read(|s| s.vault.balances(&bob.id).unwrap().total), dt(10), "received once");
}

/// Alice at STB1 pays Bob at STB2 10 DT of her 100 while the notary is cut
/// off: the payment is prepared and stays in flight.
async fn in_flight() -> (World, Account, Account, TxOutcome) {
    let w = World::new().await;
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    w.p.network.partition(&pid(ids::NOTARY));
    let paid = w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(10) }], None).await.unwrap();
    assert_eq!(paid.status, Status::UnderReview);
    (w, alice, bob, paid)
}

/// Not only transfers: an issue by NBK, whose payee's bank is asked when it
/// is made, is asked again too — here the DA it was for closed while the
/// notary was away, and nothing is issued.
#[tokio::test]
async fn an_issue_in_flight_is_not_sent_again_once_its_payee_refuses_it() {
    let w = World::new().await;
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let nbk = w.node(ids::NBK);
    let nbk_da = w.p.spec.institutions.iter().find(|i| i.key == ids::NBK_DA).unwrap().clone();
    let issuer = nbk.read(|s| s.account_of(&nbk_da.address).unwrap().id.clone());
    w.p.network.partition(&pid(ids::NOTARY));
    let reference = dtenge_types::CbsRef::new("CBS-IN-FLIGHT-1").unwrap();
    let issued = nbk.issue(&issuer, PayTo { address: bob.address, amount: dt(10) }, reference).await.unwrap();
    assert_eq!(issued.status, Status::UnderReview);
    w.node("STB2").close_account(&bob.id, false).await.unwrap();

    kept_off_the_notary(&w, &nbk, &issued.tx).await;
    w.clock.advance(dtenge_node::service::WINDOW_MS + 1);
    nbk.tick().await;
    assert!(!nbk.read(|s| s.in_flight().contains(&issued.tx)), "aborted once its window closed");
    assert_eq!(w.p.notary.receipt(&issued.tx).await.unwrap(), None);
}

/// The notary is back and `node`'s tick tries `tx` again: its payee's bank
/// refuses it, and it does not go to the notary.
async fn kept_off_the_notary(w: &World, node: &NodeService, tx: &dtenge_types::TxId) {
    w.p.network.heal(&pid(ids::NOTARY));
    let done = node.tick().await;
    let line = done.iter().find(|l| l.contains(&tx.to_string())).expect("the tick tried it");
    assert!(line.contains("PayeeRefused"), "{line}");
    assert_eq!(w.p.notary.receipt(tx).await.unwrap(), None, "sent to the notary after its payee refused it");
}

/// While the notary cannot be reached, a tick asks it once and leaves every
/// payment in flight for the next tick: no payee's bank is asked again and
/// no claim is sent for each. Once the notary is back, one tick resolves
/// them all, and each is paid once.
#[tokio::test]
async fn payments_in_flight_wait_for_the_notary_without_their_payees_asked_again() {
    let w = World::new().await;
    let (payers, bob, paid) = w.three_pay_bob_with_cut_off("STB1", "STB2", ids::NOTARY).await;
    let payer = w.node("STB1");
    assert!(paid.iter().all(|p| p.status == Status::UnderReview));
    let paid = paid.map(|p| p.tx);

    let done = payer.tick().await;
    assert!(
        done.iter().any(|l| l.starts_with("3 in flight left for the next tick: the notary cannot be reached")),
        "{done:?}"
    );
    assert!(!done.iter().any(|l| l.starts_with("resolved")), "nothing tried one by one: {done:?}");
    assert!(paid.iter().all(|tx| payer.read(|s| s.in_flight().contains(tx))));

    w.p.network.heal(&pid(ids::NOTARY));
    let done = payer.tick().await;
    for tx in &paid {
        let line = done.iter().find(|l| l.starts_with(&format!("resolved {tx}"))).expect("resolved in this tick");
        assert!(line.contains("Success"), "{line}");
    }
    assert_eq!(w.node("STB2").read(|s| s.vault.balances(&bob.id).unwrap().total), dt(30), "each paid once");
    for p in &payers {
        assert_eq!(payer.read(|s| s.vault.balances(&p.id).unwrap().total), dt(90));
    }
}

/// A service as a handler that takes requests and answers none of them
/// until released (a notary group without a leader, a call that has not
/// timed out, a payee's bank slow to answer).
struct Unanswering {
    released: tokio::sync::watch::Receiver<bool>,
    service: Arc<dyn Handler>,
}

#[async_trait::async_trait]
impl Handler for Unanswering {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, dtenge_net::HandlerError> {
        let mut released = self.released.clone();
        let _ = released.wait_for(|r| *r).await;
        self.service.handle(from, body).await
    }
}

/// A tick asks the notary about a payment in flight, and the notary keeps
/// it waiting: payments already committed are delivered meanwhile, not
/// after the question is answered (or times out). Once the notary answers,
/// the same tick resolves the payment in flight, its payee's bank asked
/// again (not timed as a new payment's pre-check).
#[tokio::test]
async fn a_tick_delivers_while_the_notary_keeps_its_question_waiting() {
    let w = World::new().await;
    // Committed, not delivered: three payments to Bob while his bank was cut off.
    let (_, bob, _) = w.three_pay_bob_with_cut_off("STB3", "STB1", "STB1").await;
    w.p.network.heal(&pid("STB1"));
    // In flight: a payment to Carol while the notary was cut off.
    let dave = w.funded("STB3", 5, HolderKind::Individual, dt(100)).await;
    let carol = w.node("STB2").open_account(holder(6, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    w.p.network.partition(&pid(ids::NOTARY));
    let to_carol = [PayTo { address: carol.address, amount: dt(10) }];
    let in_flight = w.node("STB3").pay(&dave.id, &to_carol, None).await.unwrap();
    assert_eq!(in_flight.status, Status::UnderReview);
    w.p.network.heal(&pid(ids::NOTARY));

    let PlatformNotary::Single(notary) = &w.p.notary else { panic!("one notary") };
    let (release, released) = tokio::sync::watch::channel(false);
    let key = Arc::new(Keys::at(&w.p.data).load(ids::NOTARY).unwrap());
    w.p.network.register(pid(ids::NOTARY), key, Arc::new(Unanswering { released, service: notary.clone() }));
    let payer = w.node("STB3");
    let pre_checks = timed("STB3", "pre_check");
    let tick = tokio::spawn(async move { payer.tick().await });

    // On a tick that delivers only after the question, Bob is credited only
    // once the call times out, and the payment in flight is left (below).
    let credited = || w.node("STB1").read(|s| s.vault.balances(&bob.id).unwrap().total);
    while credited() != dt(30) {
        assert!(!tick.is_finished(), "the tick ended before Bob was credited");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    release.send(true).unwrap();
    let done = tick.await.unwrap();
    let line = done.iter().find(|l| l.starts_with(&format!("resolved {}", in_flight.tx))).expect("resolved");
    assert!(line.contains("Success"), "{line}");
    assert_eq!(w.node("STB2").read(|s| s.vault.balances(&carol.id).unwrap().total), dt(10));
    assert_eq!(credited(), dt(30), "each credited once");
    // Carol's bank was asked again before the claim went (STB3 pays in no
    // other test here), but that is not a new payment's pre-check.
    assert_eq!(timed("STB3", "pre_check"), pre_checks, "a re-ask is not timed as the pipeline's pre-check");
}

/// The payee's bank answers the pre-check only after the payer journaled
/// `Prepared`, and refuses (the DA was closed meanwhile): the payment ends
/// rejected under `payee_refused` — an `Aborted` record, a rejected line in
/// the payer's history, the money back — and never reaches the notary.
#[tokio::test]
async fn a_payee_refusal_that_arrives_after_prepared_aborts_the_payment_under_its_code() {
    let w = World::new().await;
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let payee = w.node("STB2");
    let bob = payee.open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let (release, released) = tokio::sync::watch::channel(false);
    let key = Arc::new(Keys::at(&w.p.data).load("STB2").unwrap());
    let real: Arc<dyn Handler> = payee.clone();
    w.p.network.register(pid("STB2"), key, Arc::new(Unanswering { released, service: real }));

    let payer = w.node("STB1");
    let paying = {
        let (payer, from) = (payer.clone(), alice.id.clone());
        tokio::spawn(async move { payer.pay(&from, &[PayTo { address: bob.address, amount: dt(10) }], None).await })
    };
    let prepared = || payer.read(|s| s.in_flight().first().copied());
    let started = std::time::Instant::now();
    while prepared().is_none() {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "never prepared");
        assert!(!paying.is_finished(), "answered before it was prepared");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let tx = prepared().unwrap();
    payee.close_account(&bob.id, false).await.unwrap();
    release.send(true).unwrap();

    let refused = paying.await.unwrap().expect_err("the payee's bank refused it");
    assert_eq!(refused.refusal().code, RefusalCode::PayeeRefused, "{refused}");
    assert!(!payer.read(|s| s.in_flight().contains(&tx)), "settled, not left in flight");
    match payer.read(|s| s.outgoing(&tx)).map(|o| o.status) {
        Some(Status::Rejected { reason }) => assert_eq!(reason.code, Some(RefusalCode::PayeeRefused), "{reason:?}"),
        other => panic!("not rejected: {other:?}"),
    }
    let line = payer.history(&alice.id, 1).remove(0);
    assert_eq!(line.tx, tx);
    assert!(matches!(&line.status, Status::Rejected { reason } if reason.code == Some(RefusalCode::PayeeRefused)));
    assert_eq!(payer.read(|s| s.vault.balances(&alice.id).unwrap().total), dt(100), "the payer has it all back");
    assert_eq!(w.p.notary.receipt(&tx).await.unwrap(), None, "never sent to the notary");
}
