//! A repeated delivery of a payment is answered only once the first
//! delivery's `Received` is durable. The payee's node takes the first into
//! memory at once and makes it durable with its next group commit; if a
//! repeat were accepted meanwhile and the node then crashed, the payer would
//! believe the payee has the payment and stop delivering it, while the payee
//! lost it: value lost. Shown on a second instance of STB2 over an in-memory
//! journal whose syncs are held back, by both ways a delivery arrives (one
//! `Deliver`, a `Batch` of peer requests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use dtenge_net::Handler;
use dtenge_node::accounts::{HolderKind, KycState};
use dtenge_node::service::{NodeAnswer, NodeRequest, NodeService, PayTo, PeerAnswer, PeerRequest};
use dtenge_notary::Receipt;
use dtenge_store::{Journal, Recovery};
use dtenge_types::{Token, Transaction};
use support::*;

/// A committed payment from a DA at STB1 to one at STB2: the transaction,
/// its inputs and the notary's receipt, as STB1 delivers them.
async fn a_payment(w: &World) -> (Transaction, Vec<Token>, Receipt) {
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let paid = w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(10) }], None).await.unwrap();
    let out = w.node("STB1").read(|s| s.outgoing(&paid.tx)).unwrap();
    let receipt = borsh::from_slice(out.receipt.as_deref().unwrap()).unwrap();
    (out.tx, out.inputs, receipt)
}

#[derive(Clone, Copy, Debug)]
enum Way {
    Deliver,
    Batch,
}

/// Delivers the payment to `node` from STB1; `Ok` if the node accepted it.
async fn deliver(
    node: Arc<NodeService>,
    way: Way,
    tx: Transaction,
    inputs: Vec<Token>,
    receipt: Receipt,
) -> Result<(), String> {
    let request = match way {
        Way::Deliver => NodeRequest::Deliver { tx: Box::new(tx), inputs, receipt },
        Way::Batch => {
            NodeRequest::Batch(vec![PeerRequest::Deliver { tx: Box::new(tx), inputs, receipt: Box::new(receipt) }])
        }
    };
    let answer = node.handle(&pid("STB1"), borsh::to_vec(&request).unwrap()).await.map_err(|e| e.to_string())?;
    match borsh::from_slice::<NodeAnswer>(&answer).unwrap() {
        NodeAnswer::Accepted => Ok(()),
        NodeAnswer::Batch(answers) if answers == vec![PeerAnswer::Accepted] => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

async fn a_repeat_is_answered_only_once_the_first_is_durable(way: Way) {
    let w = World::new().await;
    let (tx, inputs, receipt) = a_payment(&w).await;
    let id = tx.id();
    let (journal, disk) = Journal::in_memory();
    let payee = instance(&w, "STB2", journal, Recovery::default());
    disk.pause_syncs(true);

    let first = tokio::spawn(deliver(payee.clone(), way, tx.clone(), inputs.clone(), receipt.clone()));
    while !payee.read(|s| s.knows_tx(&id)) {
        tokio::task::yield_now().await;
    }
    assert!(!first.is_finished(), "the first delivery waits for its group commit");
    let mut repeat = Box::pin(deliver(payee.clone(), way, tx.clone(), inputs.clone(), receipt.clone()));
    // One poll: everything the node can answer without waiting for its disk.
    let early = tokio::select! {
        biased;
        answer = &mut repeat => Some(answer),
        () = std::future::ready(()) => None,
    };
    assert_eq!(early, None, "{way:?}: the repeat was answered while the first delivery was not durable");

    // Power is lost before the group commit completes.
    let (journal, recovery) = disk.crash_and_reopen();
    let repeat = repeat.await;
    let first = first.await.unwrap();
    let recovered = instance(&w, "STB2", journal, recovery);
    let has_it = recovered.read(|s| s.knows_tx(&id));
    for (which, answer) in [("first", &first), ("repeat", &repeat)] {
        assert!(answer.is_err() || has_it, "{way:?}: the {which} delivery was acknowledged, then lost: {answer:?}");
    }
    assert!(!has_it, "nothing was durable");

    // The payer delivers again: the payment arrives, and a repeat of it now
    // (durable) is accepted as already known.
    deliver(recovered.clone(), way, tx.clone(), inputs.clone(), receipt.clone()).await.unwrap();
    deliver(recovered.clone(), way, tx, inputs, receipt).await.unwrap();
    assert!(recovered.read(|s| s.knows_tx(&id)));
}

#[tokio::test]
async fn a_repeated_deliver_waits_for_the_first_to_be_durable() {
    a_repeat_is_answered_only_once_the_first_is_durable(Way::Deliver).await;
}

#[tokio::test]
async fn a_repeated_delivery_in_a_batch_waits_for_the_first_to_be_durable() {
    a_repeat_is_answered_only_once_the_first_is_durable(Way::Batch).await;
}

/// Requests and batches `node` has sent `to` so far
/// (`dtenge_node_batch_size`'s sum and count).
fn batches(node: &str, to: &str) -> (f64, f64) {
    let labels = format!("{{node=\"{node}\",to=\"{to}\"}} ");
    let read = |name: &str| {
        dtenge_net::telemetry::render_metrics()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{labels}")).and_then(|v| v.trim().parse::<f64>().ok()))
            .unwrap_or(0.0)
    };
    (read("dtenge_node_batch_size_sum"), read("dtenge_node_batch_size_count"))
}

/// Payments committed while the payee's node was cut off are delivered by
/// the payer's tick once it is back, together: they share batches instead
/// of one round trip each, and each is credited once. (STB3 pays STB1,
/// which no other test here does, so the batch counts are this test's.)
#[tokio::test]
async fn deliveries_outstanding_after_the_payees_node_was_away_travel_together() {
    let w = World::new().await;
    let (_, bob, paid) = w.three_pay_bob_with_cut_off("STB3", "STB1", "STB1").await;
    let (payer, payee) = (w.node("STB3"), w.node("STB1"));
    for paid in paid {
        assert_eq!(paid.status, dtenge_node::state::Status::Success, "committed; delivered later");
    }
    assert_eq!(payer.read(|s| s.undelivered().len()), 3);
    assert_eq!(payee.read(|s| s.vault.balances(&bob.id).unwrap().total), dt(0));
    assert_eq!(timed("STB3", "settle"), 3.0);
    assert_eq!(timed("STB3", "deliver"), 0.0, "a delivery left for the tick is not timed as done");

    w.p.network.heal(&pid("STB1"));
    let before = batches("STB3", "STB1");
    payer.tick().await;
    let after = batches("STB3", "STB1");
    assert_eq!(after.0 - before.0, 3.0, "three deliveries sent");
    assert!(after.1 - before.1 < 3.0, "in fewer batches than deliveries: {before:?} → {after:?}");
    assert_eq!(payer.read(|s| s.undelivered().len()), 0);
    assert_eq!(payee.read(|s| s.vault.balances(&bob.id).unwrap().total), dt(30), "each credited once");
}
