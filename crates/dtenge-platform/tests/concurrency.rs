//! Concurrency through the services' interfaces: the same token spent from two
//! nodes at once, and many payments racing on one account.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dtenge_net::ManualClock;
use dtenge_node::accounts::{Holder, HolderKind, KycState};
use dtenge_node::refusal::RefusalCode;
use dtenge_node::service::PayTo;
use dtenge_notary::{NotariseBatch, NotaryAnswer, NotaryRejection, NotaryRequest, TxClaim, Verdict};
use dtenge_platform::spec::{Keys, ids};
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, CbsRef, Command, IinBin, ParticipantId, TimeWindow, Timestamp, Token, Transaction, TxBody};

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

fn holder(n: u8) -> Holder {
    let iin = (0..10u8).find_map(|b| IinBin::with_check_digit(&[7, 7, 0, 1, 0, 1, 3, 0, b, 0, n])).unwrap();
    Holder { iin_bin: iin, name: format!("Holder {n}"), kind: HolderKind::Individual }
}

fn business(n: u8) -> Holder {
    let bin = (0..10u8).find_map(|b| IinBin::with_check_digit(&[6, 1, 0, 1, 4, 1, 3, 0, b, 0, n])).unwrap();
    Holder { iin_bin: bin, name: format!("Company {n}"), kind: HolderKind::LegalEntity }
}

async fn funded() -> (tempfile::TempDir, Platform, dtenge_node::accounts::Account) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let p = Platform::open(dir.path(), clock, PlatformOptions { durable: false }).await.unwrap();
    let nbk_da = p.spec.institutions.iter().find(|i| i.key == ids::NBK_DA).unwrap().clone();
    let stb1_da = p.spec.institutions.iter().find(|i| i.key == "STB1-DA").unwrap().clone();
    let nbk = p.node(ids::NBK).unwrap();
    let stb1 = p.node("STB1").unwrap();
    let nbk_acct = nbk.read(|s| s.account_of(&nbk_da.address).unwrap().id.clone());
    let stb1_acct = stb1.read(|s| s.account_of(&stb1_da.address).unwrap().id.clone());
    nbk.issue(&nbk_acct, PayTo { address: stb1_da.address, amount: dt(1_000) }, CbsRef::new("C-1").unwrap())
        .await
        .unwrap();
    let client = stb1.open_account(holder(1), None, KycState::Verified).await.unwrap();
    stb1.pay(&stb1_acct, &[PayTo { address: client.address, amount: dt(100) }], None).await.unwrap();
    (dir, p, client)
}

#[tokio::test]
async fn the_same_token_spent_twice_at_once_commits_exactly_once_and_only_from_its_host() {
    let (_dir, p, client) = funded().await;
    let stb1 = p.node("STB1").unwrap();
    let (token_id, token, key) = stb1.read(|s| {
        let (id, stored) = s.vault.of_account(&client.id).next().unwrap();
        (*id, stored.token.clone(), s.accounts[&client.id].key().unwrap().clone())
    });
    let spend = |to_seed: u8| {
        let to = dtenge_crypto::SecretKey::from_seed([to_seed; 32]).public_key();
        let body = TxBody {
            inputs: vec![token_id].try_into().unwrap(),
            outputs: vec![Token::standard(token.currency, token.amount, dtenge_types::Address(to), token.host.clone())]
                .try_into()
                .unwrap(),
            command: Command::Transfer,
            window: TimeWindow::starting(p.clock.now(), 60_000),
            memo: None,
        };
        let mut tx = Transaction::unsigned(body);
        tx.sign(&key).unwrap();
        TxClaim::of(&tx, std::slice::from_ref(&token)).unwrap()
    };
    let (a, b) = (spend(1), spend(2));
    let keys = Keys::at(&p.data);
    let request = |node: &str, claim: TxClaim| {
        let key = keys.load(node).unwrap();
        let batch = NotariseBatch::signed(ParticipantId::new(node).unwrap(), vec![claim], &key).unwrap();
        borsh::to_vec(&NotaryRequest::Notarise(batch)).unwrap()
    };
    let notary = ParticipantId::new(ids::NOTARY).unwrap();
    // The token's host sends both (over two connections); another bank
    // cannot spend it at all (claims are bound to their host).
    let (bus1, bus2) = (p.bus("STB1").unwrap(), p.bus("STB1").unwrap());
    let (ra, rb) =
        tokio::join!(bus1.call(&notary, request("STB1", a.clone())), bus2.call(&notary, request("STB1", b.clone())));
    let verdict = |bytes: Vec<u8>| match borsh::from_slice::<NotaryAnswer>(&bytes).unwrap() {
        NotaryAnswer::Verdicts(mut v) => v.remove(0),
        other => panic!("{other:?}"),
    };
    let (va, vb) = (verdict(ra.unwrap()), verdict(rb.unwrap()));
    let stb2 = p.bus("STB2").unwrap();
    let other_bank = verdict(stb2.call(&notary, request("STB2", spend(3))).await.unwrap());
    assert!(
        matches!(other_bank, Verdict::Rejected(NotaryRejection::NotHost { input: 0, .. })),
        "a bank that is not the token's host is refused: {other_bank:?}"
    );
    let committed: Vec<&Verdict> = [&va, &vb].into_iter().filter(|v| matches!(v, Verdict::Committed(_))).collect();
    assert_eq!(committed.len(), 1, "exactly one wins: {va:?} / {vb:?}");
    let (winner, loser) = if matches!(va, Verdict::Committed(_)) { (&a, &vb) } else { (&b, &va) };
    match loser {
        Verdict::Rejected(NotaryRejection::Conflict { input: 0, spent_by, .. }) => assert_eq!(*spent_by, winner.tx),
        other => panic!("the loser must see the conflict naming the winner: {other:?}"),
    }
    // A retry of the winner gets the identical receipt.
    let retry_node = "STB1";
    let bus = p.bus(retry_node).unwrap();
    let again = verdict(bus.call(&notary, request(retry_node, winner.clone())).await.unwrap());
    assert_eq!(&again, committed[0]);
}

#[tokio::test]
async fn racing_payments_never_spend_more_than_the_balance() {
    let (_dir, p, client) = funded().await;
    let stb1 = Arc::clone(p.node("STB1").unwrap());
    let payee = p.node("STB2").unwrap().open_account(holder(2), None, KycState::Verified).await.unwrap();
    // 100 DT, twenty payments of 10 DT at once: exactly ten succeed (each
    // waits for change in flight where it must), the rest find no funds.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let stb1 = Arc::clone(&stb1);
        let (from, to) = (client.id.clone(), payee.address);
        tasks.push(tokio::spawn(async move { stb1.pay(&from, &[PayTo { address: to, amount: dt(10) }], None).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), RefusalCode::InsufficientFunds, "{e}"),
        }
    }
    assert_eq!(ok, 10, "{ok} succeeded");
    let left = stb1.balances(&client.id).unwrap().standard;
    let received = p.node("STB2").unwrap().balances(&payee.id).unwrap().standard;
    assert_eq!(left.checked_add(received).unwrap(), dt(100));
    assert_eq!(received, dt(10 * ok));
}

/// Issue 18.7: a DA with enough balance never refuses a payment because its
/// tokens are in flight. One token of 10 000,00, a thousand payments of 1,00
/// at once: each waits for change in flight where it must, and all are paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_payments_from_a_da_funded_by_one_token_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let p = Platform::open(dir.path(), clock, PlatformOptions { durable: false }).await.unwrap();
    let nbk_da = p.spec.institutions.iter().find(|i| i.key == ids::NBK_DA).unwrap().clone();
    let stb1_da = p.spec.institutions.iter().find(|i| i.key == "STB1-DA").unwrap().clone();
    let nbk = p.node(ids::NBK).unwrap();
    let stb1 = Arc::clone(p.node("STB1").unwrap());
    let nbk_acct = nbk.read(|s| s.account_of(&nbk_da.address).unwrap().id.clone());
    let stb1_acct = stb1.read(|s| s.account_of(&stb1_da.address).unwrap().id.clone());
    nbk.issue(&nbk_acct, PayTo { address: stb1_da.address, amount: dt(20_000) }, CbsRef::new("C-1").unwrap())
        .await
        .unwrap();
    // A business DA (a bank's payout system): no individual's tier limits.
    let payer = stb1.open_account(business(1), None, KycState::Verified).await.unwrap();
    stb1.pay(&stb1_acct, &[PayTo { address: payer.address, amount: dt(10_000) }], None).await.unwrap();
    assert_eq!(stb1.read(|s| s.vault.of_account(&payer.id).count()), 1, "funded by one token");
    let payee = p.node("STB2").unwrap().open_account(business(2), None, KycState::Verified).await.unwrap();

    let payments = 1_000u64;
    let mut tasks = Vec::new();
    for _ in 0..payments {
        let stb1 = Arc::clone(&stb1);
        let (from, to) = (payer.id.clone(), payee.address);
        tasks.push(tokio::spawn(async move { stb1.pay(&from, &[PayTo { address: to, amount: dt(1) }], None).await }));
    }
    let mut refused = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            refused.push(e.code());
        }
    }
    assert!(refused.is_empty(), "{} of {payments} refused: {:?}", refused.len(), &refused[..refused.len().min(5)]);
    let left = stb1.balances(&payer.id).unwrap().standard;
    let received = p.node("STB2").unwrap().balances(&payee.id).unwrap().standard;
    assert_eq!(received, dt(payments));
    assert_eq!(left, dt(10_000 - payments));
    // The change was spread so that payments could run side by side.
    assert!(stb1.read(|s| s.vault.of_account(&payer.id).count()) > 1);
}
