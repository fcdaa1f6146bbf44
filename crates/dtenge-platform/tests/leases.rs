//! Leases: a payee's bank promises that a DA takes payments for a while, so
//! payments to it skip the pre-check; a DA stops taking payments (closed, a
//! new key) only after its bank ended every lease on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_node::accounts::{Account, HolderKind, KycState};
use dtenge_node::lease::{LEASE_MS, LeaseCounts};
use dtenge_node::regime::{LimitPolicy, TierLimits};
use dtenge_node::service::PayTo;
use dtenge_node::state::Status;
use dtenge_node::{NodeError, RefusalCode};
use dtenge_platform::spec::ids;
use dtenge_types::{Amount, Timestamp};
use support::{World, dt, holder};

/// The bank account Bob's DA is linked to.
const IBAN: &str = "KZ86125KZT5004100100";

fn counts(w: &World, node: &str) -> LeaseCounts {
    w.node(node).lease_counts()
}

/// Alice at STB1 (100 DT) and Bob at STB2, after Alice paid Bob 5 DT:
/// STB1 holds a lease on Bob's DA.
async fn alice_paid_bob(w: &World) -> (Account, Account) {
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await.unwrap();
    (alice, bob)
}

/// Under NBK's policy (a balance cap of 12 DT): Alice, a company at STB1
/// with 100 DT, and Bob, an individual at STB2 with nothing yet.
async fn alice_and_capped_bob(w: &World) -> (Account, Account) {
    let cap = TierLimits { max_balance: dt(12), per_payment: dt(1_000), daily_outgoing: dt(1_000) };
    let policy = LimitPolicy { version: 0, simplified: cap, standard: cap, full: cap, published_at: Timestamp(0) };
    let alice = w.funded("STB1", 1, HolderKind::LegalEntity, dt(100)).await;
    w.node(ids::NBK).publish_policy(policy).await.unwrap();
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    (alice, bob)
}

/// Bob pays his 5 DT to his own bank, so his DA can be closed.
async fn bob_spends_it_all(w: &World, bob: &Account) {
    let stb2_da = w.p.spec.institutions.iter().find(|i| i.key == "STB2-DA").unwrap().address;
    w.node("STB2").pay(&bob.id, &[PayTo { address: stb2_da, amount: dt(5) }], None).await.unwrap();
}

#[tokio::test]
async fn payments_to_a_da_of_another_bank_skip_the_pre_check_while_its_lease_runs() {
    let w = World::new().await;
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let (stb1, stb2) = (counts(&w, "STB1"), counts(&w, "STB2"));

    for _ in 0..3 {
        let paid = w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await.unwrap();
        assert_eq!(paid.status, Status::Success);
    }
    assert_eq!(w.node("STB2").balances(&bob.id).unwrap().standard, dt(15));
    assert_eq!(counts(&w, "STB2").given - stb2.given, 1, "Bob's bank was asked once");
    assert_eq!(counts(&w, "STB1").taken - stb1.taken, 1);
    assert_eq!(counts(&w, "STB1").used - stb1.used, 2, "the second and third payments were not pre-checked");

    // Once the lease ran out, the next payment asks again.
    w.clock.advance(LEASE_MS);
    w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await.unwrap();
    assert_eq!(counts(&w, "STB2").given - stb2.given, 2);
    assert_eq!(counts(&w, "STB1").used - stb1.used, 2);
}

#[tokio::test]
async fn closing_a_leased_da_ends_its_leases_first_so_the_next_payment_is_refused() {
    let w = World::new().await;
    let (alice, bob) = alice_paid_bob(&w).await;
    assert_eq!(w.node("STB2").lease_counts().given, 1, "STB1 holds a lease on Bob's DA");
    // Bob spends it all at his own bank, then his bank closes the DA.
    bob_spends_it_all(&w, &bob).await;
    let closed = w.node("STB2").close_account(&bob.id, false).await.unwrap();
    assert!(closed.closed, "no lease outlives the close: STB1 was told it ended");

    // Within what would have been the lease, STB1 asks again and is refused.
    let refused = w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await;
    assert!(
        matches!(&refused, Err(NodeError::PayeeRefused { reason, .. }) if reason.code == RefusalCode::AccountClosed),
        "{refused:?}"
    );
    assert_eq!(w.node("STB2").balances(&bob.id).unwrap().total, Amount::ZERO, "nothing reached the closed DA");
}

#[tokio::test]
async fn a_new_key_for_a_leased_da_ends_its_leases_so_the_old_address_is_refused() {
    let w = World::new().await;
    let (alice, bob) = alice_paid_bob(&w).await;
    let (rotated, _) = w.node("STB2").rekey(&bob.id, None, "passport seen at the branch").await.unwrap();
    assert_ne!(rotated.address, bob.address);

    let refused = w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await;
    assert!(
        matches!(&refused, Err(NodeError::PayeeRefused { reason, .. }) if reason.message.contains("revoked")),
        "{refused:?}"
    );
    w.node("STB1").pay(&alice.id, &[PayTo { address: rotated.address, amount: dt(5) }], None).await.unwrap();
    assert_eq!(w.node("STB2").balances(&bob.id).unwrap().standard, dt(10));
}

#[tokio::test]
async fn a_da_whose_holder_bank_cannot_tell_a_lease_holder_stays_open_until_the_lease_runs_out() {
    let w = World::new().await;
    let (_, bob) = alice_paid_bob(&w).await;
    bob_spends_it_all(&w, &bob).await;

    // STB1 is gone: it cannot be told, and may still pay under its lease.
    w.p.network.partition(&support::pid("STB1"));
    let busy = w.node("STB2").close_account(&bob.id, false).await;
    assert!(matches!(&busy, Err(NodeError::Busy(why)) if why.contains("lease")), "{busy:?}");
    assert!(!w.node("STB2").account(&bob.id).unwrap().closed);

    w.clock.advance(LEASE_MS);
    assert!(w.node("STB2").close_account(&bob.id, false).await.unwrap().closed, "the lease ran out");
}

#[tokio::test]
async fn a_da_with_a_balance_cap_is_never_leased_and_is_asked_every_time() {
    let w = World::new().await;
    let (alice, bob) = alice_and_capped_bob(&w).await;
    let before = counts(&w, "STB1");
    for _ in 0..2 {
        w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await.unwrap();
    }
    // The third would take Bob past his cap: his bank says so, as it would
    // have without leases.
    let refused = w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await;
    assert!(
        matches!(&refused, Err(NodeError::PayeeRefused { reason, .. }) if reason.code == RefusalCode::LimitExceeded),
        "{refused:?}"
    );
    let after = counts(&w, "STB1");
    assert_eq!((after.taken - before.taken, after.used - before.used), (0, 0), "asked every time");
    assert_eq!(w.node("STB2").balances(&bob.id).unwrap().standard, dt(10));
}

#[tokio::test]
async fn a_capped_da_linked_to_a_bank_account_is_leased_until_it_is_unlinked() {
    let w = World::new().await;
    let (alice, bob) = alice_and_capped_bob(&w).await;
    w.node("STB2").set_profile(&bob.id, None, Some(Some(IBAN.into()))).await.unwrap();
    let before = counts(&w, "STB1");

    // Linked, Bob's DA takes any amount — past the cap it goes on to his
    // bank account — so his bank promises it and STB1 stops asking.
    for _ in 0..3 {
        let paid = w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await.unwrap();
        assert_eq!(paid.status, Status::Success);
    }
    let leased = counts(&w, "STB1");
    assert_eq!((leased.taken - before.taken, leased.used - before.used), (1, 2));
    assert_eq!(w.node("STB2").balances(&bob.id).unwrap().total, dt(12), "the 3 DT past the cap went on to the account");

    // Unlinked, the cap refuses again: his bank first ends STB1's lease, so
    // the next payment is asked and refused within what was the lease.
    w.node("STB2").set_profile(&bob.id, None, Some(None)).await.unwrap();
    let refused = w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await;
    assert!(
        matches!(&refused, Err(NodeError::PayeeRefused { reason, .. }) if reason.code == RefusalCode::LimitExceeded),
        "{refused:?}"
    );
    assert_eq!(counts(&w, "STB1").used, leased.used, "no payment went under the ended lease");
    assert_eq!(w.node("STB2").balances(&bob.id).unwrap().total, dt(12));
}

#[tokio::test]
async fn unlinking_a_leased_da_waits_for_a_lease_its_bank_cannot_end() {
    let w = World::new().await;
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    w.node("STB2").set_profile(&bob.id, None, Some(Some(IBAN.into()))).await.unwrap();
    w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await.unwrap();

    w.p.network.partition(&support::pid("STB1"));
    let busy = w.node("STB2").set_profile(&bob.id, None, Some(None)).await;
    assert!(matches!(&busy, Err(NodeError::Busy(why)) if why.contains("lease")), "{busy:?}");
    assert!(w.node("STB2").read(|s| s.profile(&bob.id)).linked_bank_account.is_some(), "still linked");

    w.clock.advance(LEASE_MS);
    assert_eq!(w.node("STB2").set_profile(&bob.id, None, Some(None)).await.unwrap().linked_bank_account, None);
}

#[tokio::test]
async fn every_holder_that_can_be_told_is_told_even_when_another_cannot() {
    let w = World::new().await;
    let (_, bob) = alice_paid_bob(&w).await;
    let carol = w.funded("STB3", 3, HolderKind::Individual, dt(100)).await;
    w.node("STB3").pay(&carol.id, &[PayTo { address: bob.address, amount: dt(5) }], None).await.unwrap();
    assert!(w.node("STB1").holds_lease(&bob.address) && w.node("STB3").holds_lease(&bob.address));

    // STB3 is gone; STB1 is told all the same, and pays Bob no more without asking.
    w.p.network.partition(&support::pid("STB3"));
    let linked = w.node("STB2").set_profile(&bob.id, None, Some(Some(IBAN.into()))).await;
    assert!(linked.is_ok(), "linking ends no lease: {linked:?}");
    let busy = w.node("STB2").set_profile(&bob.id, None, Some(None)).await;
    assert!(matches!(&busy, Err(NodeError::Busy(why)) if why.contains("lease")), "{busy:?}");
    assert!(!w.node("STB1").holds_lease(&bob.address), "STB1 was told its lease ended");
    assert!(w.node("STB3").holds_lease(&bob.address), "STB3 could not be told");
}
