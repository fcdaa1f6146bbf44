//! The platform through its services' interfaces: issuance → transfer across
//! two banks → redemption; concurrent double spends from two nodes; restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use dtenge_net::ManualClock;
use dtenge_node::accounts::{AccountId, Holder, HolderKind, KycState};
use dtenge_node::service::{NodeService, PayTo};
use dtenge_node::state::{Message, Status};
use dtenge_platform::spec::ids;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, CbsRef, IinBin, Timestamp};

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

fn person(n: u8) -> Holder {
    let first = [9, 0, 0, 1, 0, 1, 3, 0, 0, n / 10, n % 10];
    let iin = (0..10u8)
        .find_map(|b| {
            let mut d = first;
            d[8] = b;
            IinBin::with_check_digit(&d)
        })
        .unwrap();
    Holder { iin_bin: iin, name: format!("Client {n}"), kind: HolderKind::Individual }
}

async fn open(dir: &std::path::Path) -> (Platform, Arc<ManualClock>) {
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let platform = Platform::open(dir, clock.clone(), PlatformOptions { durable: true }).await.unwrap();
    (platform, clock)
}

fn institution(p: &Platform, key: &str) -> (Arc<NodeService>, AccountId, dtenge_types::Address) {
    let inst = p.spec.institutions.iter().find(|i| i.key == key).unwrap();
    let node = p.node(inst.host.as_str()).unwrap().clone();
    let account = node.read(|s| s.account_of(&inst.address).unwrap().id.clone());
    (node, account, inst.address)
}

fn supply(p: &Platform) -> Amount {
    let mut total = Amount::ZERO;
    for node in p.nodes.values() {
        node.read(|s| {
            for (_, stored) in s.vault.iter() {
                total = total.checked_add(stored.token.amount).unwrap();
            }
        });
    }
    total
}

#[tokio::test]
async fn issuance_transfer_across_two_banks_and_redemption() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _clock) = open(dir.path()).await;
    let (nbk, nbk_da, nbk_addr) = institution(&p, ids::NBK_DA);
    let (stb1, stb1_da, stb1_addr) = institution(&p, "STB1-DA");
    let (stb2, stb2_da, _) = institution(&p, "STB2-DA");

    // NBK issues 1 000 000 DT to bank 1 after the CBS confirmation.
    let issued = nbk
        .issue(&nbk_da, PayTo { address: stb1_addr, amount: dt(1_000_000) }, CbsRef::new("CBS-1").unwrap())
        .await
        .unwrap();
    assert_eq!(issued.status, Status::Success);
    assert_eq!(stb1.balances(&stb1_da).unwrap().standard, dt(1_000_000));

    // Clients at two banks.
    let alice = stb1.open_account(person(1), None, KycState::Verified).await.unwrap();
    let bob = stb2.open_account(person(2), None, KycState::Verified).await.unwrap();

    // Client–STB conversion: the bank moves DT to its client's DA.
    stb1.pay(&stb1_da, &[PayTo { address: alice.address, amount: dt(5_000) }], None).await.unwrap();
    // 5 000 → 150 to Bob at the other bank, 4 850 change.
    let paid = stb1.pay(&alice.id, &[PayTo { address: bob.address, amount: dt(150) }], None).await.unwrap();
    assert_eq!(paid.status, Status::Success);
    assert_eq!(stb1.balances(&alice.id).unwrap().standard, dt(4_850));
    assert_eq!(stb2.balances(&bob.id).unwrap().standard, dt(150), "delivered to the payee's node");
    let told = stb2.notifications(&bob.id, 10);
    assert!(
        told.iter().any(|n| n.tx == Some(paid.tx)
            && matches!(&n.message, Message::Incoming { amount, command, .. } if *amount == dt(150) && command == "transfer")),
        "{told:?}"
    );
    assert_eq!(stb1.history(&alice.id, 1)[0].outgoing, dt(150));
    assert_eq!(stb2.history(&bob.id, 1)[0].incoming, dt(150));

    // Redemption: Bob sells DT to his bank, the bank hands it to NBK, NBK destroys it.
    stb2.pay(
        &bob.id,
        &[PayTo { address: p.spec.institutions.iter().find(|i| i.key == "STB2-DA").unwrap().address, amount: dt(150) }],
        None,
    )
    .await
    .unwrap();
    stb2.pay(&stb2_da, &[PayTo { address: nbk_addr, amount: dt(150) }], None).await.unwrap();
    assert_eq!(nbk.balances(&nbk_da).unwrap().standard, dt(150));
    nbk.redeem(&nbk_da, dt(150), CbsRef::new("CBS-R-1").unwrap()).await.unwrap();
    assert_eq!(nbk.balances(&nbk_da).unwrap().total, Amount::ZERO);
    assert_eq!(supply(&p), dt(1_000_000 - 150), "supply = issued − redeemed");
    p.close().unwrap();
}

#[tokio::test]
async fn a_transfer_that_breaks_a_rule_is_refused_with_the_reason_and_nothing_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _clock) = open(dir.path()).await;
    let (stb1, stb1_da, _) = institution(&p, "STB1-DA");
    let alice = stb1.open_account(person(1), None, KycState::Verified).await.unwrap();
    let err = stb1.pay(&alice.id, &[PayTo { address: alice.address, amount: dt(1) }], None).await.unwrap_err();
    assert!(err.to_string().contains("insufficient funds"), "{err}");
    let pending = stb1.open_account(person(3), None, KycState::Pending).await.unwrap();
    let err = stb1.pay(&pending.id, &[PayTo { address: alice.address, amount: dt(1) }], None).await.unwrap_err();
    assert!(err.to_string().contains("KYC"), "{err}");
    let stranger = dtenge_types::Address(dtenge_crypto::SecretKey::from_seed([3; 32]).public_key());
    let err = stb1.pay(&stb1_da, &[PayTo { address: stranger, amount: dt(1) }], None).await.unwrap_err();
    assert!(err.to_string().contains("no digital account"), "{err}");
    p.close().unwrap();
}

#[tokio::test]
async fn a_restart_resumes_with_every_token_account_and_history_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = {
        let (p, _clock) = open(dir.path()).await;
        let (nbk, nbk_da, _) = institution(&p, ids::NBK_DA);
        let (stb1, _, stb1_addr) = institution(&p, "STB1-DA");
        nbk.issue(&nbk_da, PayTo { address: stb1_addr, amount: dt(1_000) }, CbsRef::new("CBS-1").unwrap())
            .await
            .unwrap();
        let alice = stb1.open_account(person(1), None, KycState::Verified).await.unwrap();
        let bob = p.node("STB2").unwrap().open_account(person(2), None, KycState::Verified).await.unwrap();
        let (_, stb1_da, _) = institution(&p, "STB1-DA");
        stb1.pay(&stb1_da, &[PayTo { address: alice.address, amount: dt(300) }], None).await.unwrap();
        stb1.pay(&alice.id, &[PayTo { address: bob.address, amount: dt(100) }], None).await.unwrap();
        p.close().unwrap();
        (alice, bob)
    };
    let (p, _clock) = open(dir.path()).await;
    let stb1 = p.node("STB1").unwrap();
    let stb2 = p.node("STB2").unwrap();
    assert_eq!(stb1.account(&alice.id).unwrap().address, alice.address);
    assert_eq!(stb1.balances(&alice.id).unwrap().standard, dt(200));
    assert_eq!(stb2.balances(&bob.id).unwrap().standard, dt(100));
    assert_eq!(stb1.history(&alice.id, usize::MAX).len(), 2);
    // And it keeps working.
    stb1.pay(&alice.id, &[PayTo { address: bob.address, amount: dt(50) }], None).await.unwrap();
    assert_eq!(stb2.balances(&bob.id).unwrap().standard, dt(150));
    p.close().unwrap();
}

#[tokio::test]
async fn a_client_holding_its_own_key_signs_its_payment_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (p, clock) = open(dir.path()).await;
    let (nbk, nbk_da, _) = institution(&p, ids::NBK_DA);
    let stb1 = p.node("STB1").unwrap().clone();
    let device_key = dtenge_crypto::SecretKey::from_seed([42; 32]);
    let client = stb1.open_account(person(9), Some(device_key.public_key()), KycState::Verified).await.unwrap();
    nbk.issue(&nbk_da, PayTo { address: client.address, amount: dt(100) }, CbsRef::new("CBS-SELF").unwrap())
        .await
        .unwrap();
    let bob = p.node("STB2").unwrap().open_account(person(2), None, KycState::Verified).await.unwrap();
    // The node cannot sign for it.
    let err = stb1.pay(&client.id, &[PayTo { address: bob.address, amount: dt(10) }], None).await.unwrap_err();
    assert!(err.to_string().contains("client must sign"), "{err}");
    // Prepare, sign on the "device", submit.
    let mut tx = stb1.prepare_pay(&client.id, &[PayTo { address: bob.address, amount: dt(10) }], None).await.unwrap();
    let mut forged = tx.clone();
    forged.sign(&dtenge_crypto::SecretKey::from_seed([7; 32])).unwrap();
    let err = stb1.submit_signed(forged).await.unwrap_err();
    assert!(err.to_string().contains("transaction invalid"), "{err}");
    let mut tx2 = stb1.prepare_pay(&client.id, &[PayTo { address: bob.address, amount: dt(10) }], None).await.unwrap();
    tx2.sign(&device_key).unwrap();
    let done = stb1.submit_signed(tx2).await.unwrap();
    assert_eq!(done.status, Status::Success);
    assert_eq!(p.node("STB2").unwrap().balances(&bob.id).unwrap().standard, dt(10));
    // An abandoned preparation frees its tokens once its window closes.
    tx.sign(&device_key).unwrap();
    clock.advance(120_000);
    p.tick().await;
    assert!(stb1.submit_signed(tx).await.is_err(), "expired");
    assert_eq!(stb1.balances(&client.id).unwrap().standard, dt(90));
    stb1.prepare_pay(&client.id, &[PayTo { address: bob.address, amount: dt(90) }], None).await.unwrap();
    p.close().unwrap();
}

/// Issue #7: settled history lives in each node's on-disk archive, not in
/// memory; a snapshot lets the journal drop it and a restart still reads it;
/// a duplicate of a delivery settled long ago credits nothing.
#[tokio::test]
async fn settled_history_leaves_memory_and_survives_a_snapshot_and_restart() {
    use dtenge_node::service::{NodeAnswer, NodeRequest};
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob, paid) = {
        let (p, _clock) = open(dir.path()).await;
        let (nbk, nbk_da, _) = institution(&p, ids::NBK_DA);
        let (stb1, stb1_da, stb1_addr) = institution(&p, "STB1-DA");
        nbk.issue(&nbk_da, PayTo { address: stb1_addr, amount: dt(1_000) }, CbsRef::new("CBS-1").unwrap())
            .await
            .unwrap();
        let alice = stb1.open_account(person(1), None, KycState::Verified).await.unwrap();
        let bob = p.node("STB2").unwrap().open_account(person(2), None, KycState::Verified).await.unwrap();
        stb1.pay(&stb1_da, &[PayTo { address: alice.address, amount: dt(300) }], None).await.unwrap();
        let mut paid = Vec::new();
        for _ in 0..5 {
            paid.push(stb1.pay(&alice.id, &[PayTo { address: bob.address, amount: dt(10) }], None).await.unwrap().tx);
        }
        let stb2 = p.node("STB2").unwrap();
        // Every payment settled: nothing in memory but DAs, the vault and books.
        let counts = stb1.read(|s| s.counts());
        assert_eq!(counts.unsettled, 0, "{counts:?}");
        assert_eq!(counts.settled, 6);
        assert_eq!(stb2.read(|s| s.counts().received), 5);
        assert_eq!(stb1.read(|s| s.archive().counts().outgoing), 6);
        stb1.snapshot().unwrap();
        stb2.snapshot().unwrap();
        p.close().unwrap();
        (alice, bob, paid)
    };
    let (p, _clock) = open(dir.path()).await;
    let stb1 = p.node("STB1").unwrap();
    let stb2 = p.node("STB2").unwrap();
    assert_eq!(stb1.balances(&alice.id).unwrap().standard, dt(250));
    assert_eq!(stb2.balances(&bob.id).unwrap().standard, dt(50));
    let history = stb1.history(&alice.id, usize::MAX);
    assert_eq!(history.len(), 6, "five payments and the top-up, from the archive");
    assert_eq!(history[0].tx, paid[4], "newest first");
    assert_eq!(stb2.history(&bob.id, 2).len(), 2);
    let settled = stb1.read(|s| s.outgoing(&paid[0])).unwrap();
    assert_eq!(settled.status, Status::Success);
    // STB1 delivers the first payment again: STB2 knows it, credits nothing.
    let request = NodeRequest::Deliver {
        tx: Box::new(settled.tx.clone()),
        inputs: settled.inputs.clone(),
        receipt: borsh::from_slice(settled.receipt.as_ref().unwrap()).unwrap(),
    };
    let answer = p.bus("STB1").unwrap().call(stb2.id(), borsh::to_vec(&request).unwrap()).await.unwrap();
    assert!(matches!(borsh::from_slice::<NodeAnswer>(&answer).unwrap(), NodeAnswer::Accepted));
    assert_eq!(stb2.balances(&bob.id).unwrap().standard, dt(50), "no double credit");
    assert_eq!(stb2.read(|s| s.counts().received), 5);
    // And it keeps working.
    stb1.pay(&alice.id, &[PayTo { address: bob.address, amount: dt(50) }], None).await.unwrap();
    assert_eq!(stb2.balances(&bob.id).unwrap().standard, dt(100));
    p.close().unwrap();
}

#[tokio::test]
async fn a_payment_to_another_bank_is_timed_in_every_stage_of_the_payers_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _clock) = open(dir.path()).await;
    let (nbk, nbk_da, _) = institution(&p, ids::NBK_DA);
    let (stb1, stb1_da, stb1_addr) = institution(&p, "STB1-DA");
    let (stb2, _, _) = institution(&p, "STB2-DA");
    nbk.issue(&nbk_da, PayTo { address: stb1_addr, amount: dt(100) }, CbsRef::new("CBS-S").unwrap()).await.unwrap();
    let bob = stb2.open_account(person(7), None, KycState::Verified).await.unwrap();
    let stages = ["pre_check", "prepare", "notarise", "settle", "deliver"];
    let payer = stb1.id().to_string();
    let before: Vec<f64> = stages.iter().map(|s| support::timed(&payer, s)).collect();
    let paid = stb1.pay(&stb1_da, &[PayTo { address: bob.address, amount: dt(40) }], None).await.unwrap();
    assert_eq!(paid.status, Status::Success);
    for (stage, before) in stages.iter().zip(before) {
        assert!(support::timed(&payer, stage) > before, "{payer}'s payment to another bank was timed in {stage}");
    }
    p.close().unwrap();
}

/// A dropped platform frees its services. The network holds each service
/// and each service a bus that holds the network, and a bank's node and its
/// offline desk hold each other: before, every platform a process opened
/// stayed in memory (the simulation, opening one per seed, grew by ≈ 33 MB
/// a seed until the kernel killed it near seed 700).
#[tokio::test]
async fn a_dropped_platform_frees_its_services() {
    let w = support::World::new().await;
    let alice = w.funded("STB1", 1, HolderKind::Individual, support::dt(100)).await;
    let bob = w.funded("STB2", 2, HolderKind::Individual, support::dt(1)).await;
    w.node("STB1").pay(&alice.id, &[PayTo { address: bob.address, amount: support::dt(5) }], None).await.unwrap();
    let nodes: Vec<_> = w.p.nodes.values().map(Arc::downgrade).collect();
    let desks: Vec<_> = w.p.offline.values().map(Arc::downgrade).collect();
    assert!(!desks.is_empty(), "the banks run offline desks");
    let oracle = Arc::downgrade(&w.p.oracle);
    let notary = match &w.p.notary {
        dtenge_platform::PlatformNotary::Single(n) => Arc::downgrade(n),
        dtenge_platform::PlatformNotary::Group(_) => unreachable!("the test platform has one notary"),
    };
    w.p.close().unwrap();
    drop(w);
    // What a dropped service's batchers were doing ends on the runtime.
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(node.strong_count(), 0, "node {i} is still held");
    }
    for desk in &desks {
        assert_eq!(desk.strong_count(), 0, "an offline desk is still held");
    }
    assert_eq!(oracle.strong_count(), 0, "the oracle is still held");
    assert_eq!(notary.strong_count(), 0, "the notary is still held");
}

/// With the notary as a group in the process, shutting the platform down
/// stops every replica's Raft before its stores close (closing the stores
/// under a running Raft left it failing on them and openraft logging errors
/// as the process ended), and what was committed is there when the platform
/// opens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_with_a_notary_group_shuts_down_cleanly_and_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    dtenge_platform::spec::PlatformSpec::demo_with(dir.path(), &std::collections::BTreeMap::new(), 3)
        .unwrap()
        .save(dir.path())
        .unwrap();
    let issued = {
        let (p, _clock) = open(dir.path()).await;
        assert_eq!(p.notary.replicas().len(), 3);
        let (nbk, nbk_da, _) = institution(&p, ids::NBK_DA);
        let (_, _, stb1_addr) = institution(&p, "STB1-DA");
        let issued = nbk
            .issue(&nbk_da, PayTo { address: stb1_addr, amount: dt(1_000) }, CbsRef::new("CBS-G-1").unwrap())
            .await
            .unwrap();
        assert_eq!(issued.status, Status::Success);
        p.shut_down().await.unwrap();
        for replica in p.notary.replicas() {
            let state = replica.raft().metrics().borrow().running_state.clone();
            assert_eq!(state, Err(openraft::error::Fatal::Stopped), "{}'s Raft did not stop normally", replica.id());
        }
        issued.tx
    };
    let (p, _clock) = open(dir.path()).await;
    for replica in p.notary.replicas() {
        let origin = replica.with_state(|s| s.engine.cold().filter_origin());
        assert_eq!(origin, dtenge_notary::FilterOrigin::Saved, "{} read its cold filter back", replica.id());
    }
    let (stb1, stb1_da, _) = institution(&p, "STB1-DA");
    assert_eq!(stb1.balances(&stb1_da).unwrap().standard, dt(1_000));
    // Asked until a replica leads again (an election after the restart).
    let mut receipt = p.notary.receipt(&issued).await;
    for _ in 0..100 {
        if receipt.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        receipt = p.notary.receipt(&issued).await;
    }
    assert!(receipt.unwrap().is_some(), "the group still has the issue's receipt");
    p.shut_down().await.unwrap();
}
