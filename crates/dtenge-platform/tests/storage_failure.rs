//! A node whose storage has failed sends nothing more to the notary. Its
//! journal is poisoned after a failed write, so it could not record the
//! notary's answer; and if the write that failed was the `Aborted` of a
//! payment its payee's bank refused after `Prepared`, committing that
//! payment would pay what the payer was told did not go. Shown on a second
//! instance of STB1, recovered from the platform's STB1 with a payment in
//! flight (the notary was cut off), over an in-memory journal that then
//! fails; after a restart on working storage the payment is resolved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_node::accounts::{HolderKind, KycState};
use dtenge_node::service::PayTo;
use dtenge_node::state::Status;
use dtenge_platform::services::journal_dir;
use dtenge_platform::spec::ids;
use dtenge_store::{Journal, JournalConfig};
use support::*;

#[tokio::test]
async fn a_node_whose_journal_failed_leaves_its_payments_in_flight_until_it_restarts() {
    let w = World::new().await;
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();

    // The notary is cut off: the payment is prepared, then stays in flight.
    w.p.network.partition(&pid(ids::NOTARY));
    let paid = w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(10) }], None).await.unwrap();
    assert_eq!(paid.status, Status::UnderReview);

    // A second STB1 from a copy of the first one's journal, over storage that fails.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&journal_dir(&w.p.data, &pid("STB1"), dtenge_net::Role::Stb), copy.path());
    let (read, recovery) = Journal::open(JournalConfig::new(copy.path())).unwrap();
    read.close().unwrap();
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
