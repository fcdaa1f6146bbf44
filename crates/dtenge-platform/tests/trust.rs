//! The node's trust boundaries (issue 17, points 2, 3, 7, 8) through the
//! running services:
//! - an address belongs to one DA platform-wide: a refused opening or key
//!   rotation leaves nothing, a payment reaches the DA the directory names;
//! - the payer's freezes and limits stop every operation that moves a DA's
//!   funds out, one test per operation;
//! - a refused operation leaves nothing reserved (tokens, the oracle's
//!   contract maxima, a PvP counterparty's leg);
//! - enforcement orders are (authority, reference).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dtenge_crypto::SecretKey;
use dtenge_net::Clock;
use dtenge_node::NodeError;
use dtenge_node::accounts::{Account, HolderKind, KycState};
use dtenge_node::directory::{DirectoryAnswer, DirectoryRequest};
use dtenge_node::regime::{LimitPolicy, TierLimits};
use dtenge_node::service::{NodeService, PayTo};
use dtenge_node::state::Status;
use dtenge_oracle::model::{Contract, EventKind, EventSpec, FxRate, Invoice};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_platform::spec::{Keys, ids};
use dtenge_types::*;

mod support;
use support::{World, dt, holder, pid};

fn key(w: &World, name: &str) -> SecretKey {
    Keys::at(&w.p.data).load(name).unwrap()
}

fn institution(w: &World, key: &str) -> (Arc<NodeService>, Account) {
    let inst = w.p.spec.institutions.iter().find(|i| i.key == key).unwrap().clone();
    let node = w.node(inst.host.as_str());
    let account = node.read(|s| s.account_of(&inst.address).unwrap().clone());
    (node, account)
}

async fn directory_host(w: &World, address: Address) -> Option<ParticipantId> {
    let bus = w.p.bus("STB3").unwrap();
    let answer =
        bus.call(&pid(ids::DIRECTORY), borsh::to_vec(&DirectoryRequest::Lookup(address)).unwrap()).await.unwrap();
    match borsh::from_slice::<DirectoryAnswer>(&answer).unwrap() {
        DirectoryAnswer::Entry(entry) => entry.map(|e| e.host),
        other => panic!("{other:?}"),
    }
}

fn order(w: &World, authority: &str, reference: &str, debtor: Address, act: OrderAct) -> SignedOrder {
    let by = key(w, authority);
    EnforcementOrder {
        reference: OrderRef::new(reference).unwrap(),
        authority: by.public_key(),
        debtor,
        act,
        reason: Memo::new("court order").unwrap(),
        issued_at: w.clock.now(),
    }
    .sign(&by)
}

async fn freeze(w: &World, node: &NodeService, debtor: Address, reference: &str) {
    node.place_order(order(w, ids::BAILIFF, reference, debtor, OrderAct::Freeze), &pid(ids::BAILIFF)).await.unwrap();
}

async fn lift(w: &World, node: &NodeService, debtor: Address, reference: &str) {
    let act = OrderAct::Lift { order: OrderRef::new(reference).unwrap() };
    node.place_order(order(w, ids::BAILIFF, &format!("{reference}-L"), debtor, act), &pid(ids::BAILIFF)).await.unwrap();
}

fn is_frozen(e: &NodeError) -> bool {
    matches!(e, NodeError::Enforcement(text) if text.contains("frozen"))
}

/// While `debtor` (a DA of `node`) is frozen, `attempt` is refused naming the
/// freeze; once the freeze is lifted, it goes through.
async fn refused_while_frozen<T: std::fmt::Debug>(
    w: &World,
    node: &NodeService,
    debtor: Address,
    reference: &str,
    attempt: impl AsyncFn() -> Result<T, NodeError>,
) -> T {
    freeze(w, node, debtor, reference).await;
    let refused = attempt().await;
    assert!(matches!(refused, Err(ref e) if is_frozen(e)), "{reference}: {refused:?}");
    lift(w, node, debtor, reference).await;
    attempt().await.unwrap()
}

fn limit_hit(e: &NodeError) -> bool {
    matches!(e, NodeError::LimitExceeded { .. })
}

/// NBK's policy: the standard tier may hold 1 000 000 DT, pay 100 DT at a
/// time and 150 DT a day.
async fn small_limits(w: &World) {
    let wide = TierLimits { max_balance: dt(1_000_000), per_payment: dt(1_000_000), daily_outgoing: dt(1_000_000) };
    let standard = TierLimits { max_balance: dt(1_000_000), per_payment: dt(100), daily_outgoing: dt(150) };
    let policy = LimitPolicy { version: 0, simplified: wide, standard, full: wide, published_at: Timestamp(0) };
    w.node(ids::NBK).publish_policy(policy).await.unwrap();
    assert_eq!(w.node("STB1").read(|s| s.policy.as_ref().unwrap().standard), standard);
}

fn the_reserved(node: &NodeService) -> usize {
    node.read(|s| s.vault.iter().filter(|(_, t)| t.reserved_by.is_some()).count())
}

// ---------------------------------------------------------------------------
// 17.2 An address belongs to one DA platform-wide

#[tokio::test]
async fn a_refused_opening_leaves_nothing_and_payments_reach_the_da_the_directory_names() {
    let w = World::new().await;
    let stb1 = w.node("STB1");
    let stb2 = w.node("STB2");
    let bob = stb2.open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let (_, tax) = institution(&w, ids::TAX_DA);
    let alice = w.funded("STB1", 1, HolderKind::LegalEntity, dt(1_000)).await;
    let opened = stb1.read(|s| s.opened);

    // STB1 tries to open DAs with addresses other banks' DAs have: refused,
    // and nothing is left on STB1 or in the directory.
    for taken in [bob.address, tax.address] {
        let err = stb1.open_account(holder(9, HolderKind::Individual), Some(taken.0), KycState::Verified).await;
        assert!(matches!(err, Err(NodeError::AddressTaken { ref host, .. }) if *host != pid("STB1")), "{err:?}");
        assert!(stb1.read(|s| s.account_of(&taken).is_none()), "no shadow DA for {taken}");
    }
    assert_eq!(stb1.read(|s| s.opened), opened, "no DA number was used");
    assert_eq!(directory_host(&w, bob.address).await, Some(pid("STB2")));
    assert_eq!(directory_host(&w, tax.address).await, Some(pid(ids::TREASURY)));

    // STB1's clients pay Bob and the tax authority: the money reaches them.
    stb1.pay(&alice.id, &[PayTo { address: bob.address, amount: dt(70) }], None).await.unwrap();
    stb1.pay(&alice.id, &[PayTo { address: tax.address, amount: dt(30) }], None).await.unwrap();
    assert_eq!(stb2.balances(&bob.id).unwrap().standard, dt(70));
    assert_eq!(w.node(ids::TREASURY).balances(&tax.id).unwrap().standard, dt(30));
    // A later opening at STB1 takes the next number.
    let carol = stb1.open_account(holder(3, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    assert_eq!(carol.id, dtenge_node::accounts::AccountId::new(&pid("STB1"), opened + 1));
}

#[tokio::test]
async fn a_key_rotation_to_another_banks_clients_address_is_refused_and_changes_nothing() {
    let w = World::new().await;
    let stb1 = w.node("STB1");
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    // The new key is Bob's address: the proof is easy to make for whoever holds Bob's key (STB2 here),
    // but the directory refuses to give the address to a second DA.
    let bobs_key = w.node("STB2").read(|s| s.accounts.get(&bob.id).unwrap().key().unwrap().clone());
    let message = dtenge_node::regime::rekey_proof_message(&alice.id, &alice.address, &bob.address);
    let proof = dtenge_crypto::Signer::sign(&bobs_key, &message);
    let err = stb1.rekey(&alice.id, Some((bob.address.0, proof)), "branch visit 7").await.unwrap_err();
    assert!(matches!(err, NodeError::AddressTaken { ref host, .. } if *host == pid("STB2")), "{err}");
    let after = stb1.account(&alice.id).unwrap();
    assert_eq!(after.address, alice.address, "the DA keeps its key");
    assert!(stb1.read(|s| s.account_of(&bob.address).is_none() && s.revoked.is_empty()));
    assert_eq!(directory_host(&w, bob.address).await, Some(pid("STB2")));
}

#[tokio::test]
async fn a_token_is_credited_only_where_the_directory_says_its_address_lives() {
    let w = World::new().await;
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    // A careless payer's node names STB3 as the host of Bob's address, and the notary commits it.
    let (token_id, token, alice_key) = w.node("STB1").read(|s| {
        let (id, stored) = s.vault.of_account(&alice.id).next().unwrap();
        (*id, stored.token.clone(), s.accounts[&alice.id].key().unwrap().clone())
    });
    let body = TxBody {
        inputs: vec![token_id].try_into().unwrap(),
        outputs: vec![Token::standard(Currency::DT, token.amount, bob.address, pid("STB3"))].try_into().unwrap(),
        command: Command::Transfer,
        window: TimeWindow::starting(w.clock.now(), 60_000),
        memo: None,
    };
    let mut tx = Transaction::unsigned(body);
    tx.sign(&alice_key).unwrap();
    let inputs = vec![token];
    let claim = dtenge_notary::TxClaim::of(&tx, &inputs).unwrap();
    let batch = dtenge_notary::NotariseBatch::signed(pid("STB1"), vec![claim], &key(&w, "STB1")).unwrap();
    let bus = w.p.bus("STB1").unwrap();
    let answer = bus
        .call(&pid(ids::NOTARY), borsh::to_vec(&dtenge_notary::NotaryRequest::Notarise(batch)).unwrap())
        .await
        .unwrap();
    let receipt = match borsh::from_slice::<dtenge_notary::NotaryAnswer>(&answer).unwrap() {
        dtenge_notary::NotaryAnswer::Verdicts(mut v) => match v.remove(0) {
            dtenge_notary::Verdict::Committed(r) => r,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let deliver = |to: &'static str| {
        let request = dtenge_node::service::NodeRequest::Batch(vec![dtenge_node::service::PeerRequest::Deliver {
            tx: Box::new(tx.clone()),
            inputs: inputs.clone(),
            receipt: Box::new(receipt.clone()),
        }]);
        let bus = w.p.bus("STB1").unwrap();
        async move {
            let answer = bus.call(&pid(to), borsh::to_vec(&request).unwrap()).await.unwrap();
            match borsh::from_slice::<dtenge_node::service::NodeAnswer>(&answer).unwrap() {
                dtenge_node::service::NodeAnswer::Batch(mut a) => a.remove(0),
                other => panic!("{other:?}"),
            }
        }
    };
    // STB3 refuses: the directory gives Bob's address to STB2.
    let refused = deliver("STB3").await;
    assert!(
        matches!(refused, dtenge_node::service::PeerAnswer::Refused(ref r) if r.code == dtenge_node::RefusalCode::NotHostedHere),
        "{refused:?}"
    );
    assert!(w.node("STB3").read(|s| !s.knows_tx(&tx.id())));
    // STB2 takes it as a copy but credits nothing: the token names another host.
    assert!(matches!(deliver("STB2").await, dtenge_node::service::PeerAnswer::Accepted));
    assert_eq!(w.node("STB2").balances(&bob.id).unwrap().total, Amount::ZERO);
}

// ---------------------------------------------------------------------------
// 17.3 The payer's freezes and limits apply to every operation moving funds out

#[tokio::test]
async fn a_frozen_da_cannot_pay_and_limits_stop_a_plain_transfer() {
    let w = World::new().await;
    small_limits(&w).await;
    let stb1 = w.node("STB1");
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(1_000)).await;
    let pay = |n: u64| vec![PayTo { address: bob.address, amount: dt(n) }];
    assert!(limit_hit(&stb1.pay(&alice.id, &pay(101), None).await.unwrap_err()), "per payment");
    stb1.pay(&alice.id, &pay(100), None).await.unwrap();
    assert!(limit_hit(&stb1.pay(&alice.id, &pay(51), None).await.unwrap_err()), "daily");
    stb1.pay(&alice.id, &pay(50), None).await.unwrap();
    // A new Astana day starts a new daily total.
    w.clock.advance(Timestamp::DAY_MS);
    refused_while_frozen(&w, &stb1, alice.address, "F-PAY", async || stb1.pay(&alice.id, &pay(10), None).await).await;
    assert_eq!(the_reserved(&stb1), 0);
}

#[tokio::test]
async fn concurrent_payments_cannot_together_pass_the_daily_limit() {
    let w = World::new().await;
    small_limits(&w).await;
    let stb1 = w.node("STB1");
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let alice = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    // Six tokens, so that six payments can be in flight at once.
    let (nbk, nbk_da) = institution(&w, ids::NBK_DA);
    for n in 0..5 {
        let to = PayTo { address: alice.address, amount: dt(100) };
        nbk.issue(&nbk_da.id, to, CbsRef::new(format!("CBS-T{n}")).unwrap()).await.unwrap();
    }
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (node, from) = (stb1.clone(), alice.id.clone());
            tokio::spawn(async move { node.pay(&from, &[PayTo { address: bob.address, amount: dt(40) }], None).await })
        })
        .collect();
    let mut paid = 0;
    let mut refused = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => paid += 1,
            Err(e) => refused.push(e.to_string()),
        }
    }
    assert_eq!(paid, 3, "150 a day allows three payments of 40; refused: {refused:#?}");
    assert_eq!(w.node("STB2").balances(&bob.id).unwrap().standard, dt(120));
}

#[tokio::test]
async fn a_client_signed_payment_passes_the_guard_when_prepared_and_again_when_signed() {
    let w = World::new().await;
    small_limits(&w).await;
    let stb1 = w.node("STB1");
    let bob = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let own = SecretKey::generate();
    let alice = stb1.open_account(holder(1, HolderKind::Individual), Some(own.public_key()), KycState::Verified).await;
    let alice = alice.unwrap();
    let (nbk, nbk_da) = institution(&w, ids::NBK_DA);
    nbk.issue(&nbk_da.id, PayTo { address: alice.address, amount: dt(500) }, CbsRef::new("CBS-A").unwrap())
        .await
        .unwrap();
    let over = stb1.prepare_pay(&alice.id, &[PayTo { address: bob.address, amount: dt(101) }], None).await;
    assert!(limit_hit(&over.unwrap_err()));
    let mut tx = stb1.prepare_pay(&alice.id, &[PayTo { address: bob.address, amount: dt(20) }], None).await.unwrap();
    tx.sign(&own).unwrap();
    // A freeze placed while the client was signing stops it, and frees its tokens.
    freeze(&w, &stb1, alice.address, "F-SIGNED").await;
    assert!(is_frozen(&stb1.submit_signed(tx).await.unwrap_err()));
    assert_eq!(the_reserved(&stb1), 0);
}

async fn treasury_marks_for(w: &World, recipient: &Account, next: Address) -> (Arc<NodeService>, Account) {
    let ga = w.funded(ids::TREASURY, 5, HolderKind::GovernmentAgency, dt(10_000)).await;
    let rule = MarkingRule {
        reference: MarkingRef::new("NF-2026").unwrap(),
        initiator: ga.address,
        initiator_node: pid(ids::TREASURY),
        levels: vec![MarkingLevel { recipients: vec![next].try_into().unwrap(), limit: dt(1_000) }].try_into().unwrap(),
    };
    let treasury = w.node(ids::TREASURY);
    treasury.mark_address(&ga.id, PayTo { address: recipient.address, amount: dt(1_000) }, rule, None).await.unwrap();
    (treasury, ga)
}

#[tokio::test]
async fn marking_and_paying_marked_funds_pass_the_payers_guard() {
    let w = World::new().await;
    small_limits(&w).await;
    let stb1 = w.node("STB1");
    let supplier =
        w.node("STB2").open_account(holder(7, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let person = stb1.open_account(holder(6, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let (treasury, ga) = treasury_marks_for(&w, &person, supplier.address).await;
    // The marking recipient, an individual, pays marked funds on: its tier limits apply.
    let to = |n: u64| vec![PayTo { address: supplier.address, amount: dt(n) }];
    assert!(limit_hit(&stb1.pay_marked(&person.id, &to(101), None, None).await.unwrap_err()));
    freeze(&w, &stb1, person.address, "F-MARKED").await;
    assert!(is_frozen(&stb1.pay_marked(&person.id, &to(10), None, None).await.unwrap_err()));
    // The initiator marking more funds: a freeze of its DA stops it too.
    freeze(&w, &treasury, ga.address, "F-MARK").await;
    let rule = MarkingRule {
        reference: MarkingRef::new("NF-2026-B").unwrap(),
        initiator: ga.address,
        initiator_node: pid(ids::TREASURY),
        levels: vec![MarkingLevel { recipients: vec![supplier.address].try_into().unwrap(), limit: dt(100) }]
            .try_into()
            .unwrap(),
    };
    let err =
        treasury.mark_address(&ga.id, PayTo { address: person.address, amount: dt(5) }, rule, None).await.unwrap_err();
    assert!(is_frozen(&err));
    assert_eq!(the_reserved(&stb1) + the_reserved(&treasury), 0);
}

#[tokio::test]
async fn marking_by_parameter_and_contract_payments_pass_the_payers_guard() {
    let w = World::new().await;
    let ga = w.funded(ids::TREASURY, 5, HolderKind::GovernmentAgency, dt(10_000)).await;
    let stb1 = w.node("STB1");
    let contractor = stb1.open_account(holder(6, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let sub = w.node("STB2").open_account(holder(7, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let parameter = ParameterId::new("GZ-2026-1").unwrap();
    let register = OracleRequest::RegisterParameter {
        id: parameter.clone(),
        initiator: ga.address,
        initiator_node: pid(ids::TREASURY),
        title: "Road repairs".into(),
    };
    assert!(matches!(w.provider("PORTAL", register).await, OracleAnswer::Done));
    let contract = Contract {
        number: ContractNo::new("C-1").unwrap(),
        parameter: parameter.clone(),
        sender: contractor.address,
        recipient: sub.address,
        max_transfer: dt(5_000),
        max_cashout: dt(1_000),
        valid_until: w.clock.now().plus_days(30),
        final_recipient: false,
    };
    assert!(matches!(w.provider("PORTAL", OracleRequest::RegisterContract(contract)).await, OracleAnswer::Done));
    let treasury = w.node(ids::TREASURY);
    let to = PayTo { address: contractor.address, amount: dt(2_000) };
    treasury.mark_parameter(&ga.id, to.clone(), parameter.clone(), None).await.unwrap();
    let pay = PayTo { address: sub.address, amount: dt(100) };
    let c1 = ContractNo::new("C-1").unwrap();
    refused_while_frozen(&w, &stb1, contractor.address, "F-CONTRACT", async || {
        stb1.contract_payment(&contractor.id, parameter.clone(), c1.clone(), pay.clone(), false, None).await
    })
    .await;
    freeze(&w, &treasury, ga.address, "F-MARKP").await;
    assert!(is_frozen(&treasury.mark_parameter(&ga.id, to, parameter, None).await.unwrap_err()));
}

async fn event(
    w: &World,
    id: &str,
    sender: &Account,
    sender_node: &str,
    recipient: &Account,
    amount: Amount,
) -> EventId {
    let event = EventId::new(id).unwrap();
    let spec = EventSpec {
        id: event.clone(),
        kind: EventKind::Single,
        sender: Some(sender.address),
        sender_node: Some(pid(sender_node)),
        recipient: recipient.address,
        recipient_node: pid("STB2"),
        amount: Some(amount),
        valid_until: w.clock.now().plus_days(30),
    };
    assert!(matches!(w.provider("IFA", OracleRequest::RegisterEvent(spec)).await, OracleAnswer::Done));
    event
}

#[tokio::test]
async fn a_hold_passes_the_payers_guard() {
    let w = World::new().await;
    small_limits(&w).await;
    let stb1 = w.node("STB1");
    let farmer =
        w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let buyer = w.funded("STB1", 1, HolderKind::Individual, dt(1_000)).await;
    let big = event(&w, "IFA-BIG", &buyer, "STB1", &farmer, dt(101)).await;
    assert!(limit_hit(&stb1.hold(&buyer.id, big, None).await.unwrap_err()), "per payment");
    let small = event(&w, "IFA-SMALL", &buyer, "STB1", &farmer, dt(60)).await;
    refused_while_frozen(&w, &stb1, buyer.address, "F-HOLD", async || stb1.hold(&buyer.id, small.clone(), None).await)
        .await;
    assert_eq!(stb1.balances(&buyer.id).unwrap().held, dt(60));
    assert_eq!(the_reserved(&stb1), 0);
}

#[tokio::test]
async fn a_mandate_grant_and_its_debits_pass_the_owners_guard() {
    let w = World::new().await;
    small_limits(&w).await;
    let stb1 = w.node("STB1");
    let owner = w.funded("STB1", 1, HolderKind::Individual, dt(1_000)).await;
    let issuer = stb1.open_account(holder(3, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let shop = w.node("STB2").open_account(holder(4, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let mandate = MandateId::new("CARD-1").unwrap();
    let until = w.clock.now().plus_days(30);
    let over = stb1.grant_mandate(&owner.id, mandate.clone(), issuer.address, dt(101), until).await;
    assert!(limit_hit(&over.unwrap_err()), "a grant commits the funds: per payment");
    stb1.grant_mandate(&owner.id, mandate.clone(), issuer.address, dt(100), until).await.unwrap();
    let debit = |n: u64| PayTo { address: shop.address, amount: dt(n) };
    stb1.debit(&issuer.id, &owner.id, &mandate, debit(60), None).await.unwrap();
    refused_while_frozen(&w, &stb1, owner.address, "F-DEBIT", async || {
        stb1.debit(&issuer.id, &owner.id, &mandate, debit(10), None).await
    })
    .await;
    // 70 debited and 70 paid: 140 of 150 today; a debit of 20 would pass the daily limit.
    stb1.pay(&owner.id, &[PayTo { address: shop.address, amount: dt(70) }], None).await.unwrap();
    assert!(limit_hit(&stb1.debit(&issuer.id, &owner.id, &mandate, debit(20), None).await.unwrap_err()));
    assert_eq!(the_reserved(&stb1), 0);
}

#[tokio::test]
async fn paying_an_e_invoice_and_vat_pass_the_payers_guard() {
    let w = World::new().await;
    small_limits(&w).await;
    let stb1 = w.node("STB1");
    let seller =
        w.node("STB2").open_account(holder(2, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let person = w.funded("STB1", 1, HolderKind::Individual, dt(1_000)).await;
    let company = w.funded("STB1", 3, HolderKind::LegalEntity, dt(1_000)).await;
    let register = |id: &str, buyer: Address, net: u64, vat: u64| {
        OracleRequest::RegisterInvoice(Invoice {
            id: InvoiceId::new(id).unwrap(),
            seller: seller.address,
            buyer,
            net: dt(net),
            vat: dt(vat),
        })
    };
    assert!(matches!(w.provider("SRC", register("EI-1", person.address, 100, 12)).await, OracleAnswer::Done));
    assert!(limit_hit(&stb1.pay_invoice(&person.id, InvoiceId::new("EI-1").unwrap()).await.unwrap_err()));
    assert!(matches!(w.provider("SRC", register("EI-2", company.address, 100, 12)).await, OracleAnswer::Done));
    refused_while_frozen(&w, &stb1, company.address, "F-EI", async || {
        stb1.pay_invoice(&company.id, InvoiceId::new("EI-2").unwrap()).await
    })
    .await;
    // The seller's VAT tokens go to the tax authority only while it is not frozen.
    let stb2 = w.node("STB2");
    assert_eq!(stb2.balances(&seller.id).unwrap().vat, dt(12));
    refused_while_frozen(&w, &stb2, seller.address, "F-VAT", async || stb2.pay_vat(&seller.id, dt(12)).await).await;
    assert_eq!(the_reserved(&stb1) + the_reserved(&stb2), 0);
}

#[tokio::test]
async fn both_legs_of_a_pvp_pass_their_payers_guards() {
    let w = World::new().await;
    let fcy = Currency::new(ids::FOREIGN_CURRENCY).unwrap();
    let (fcb, fcb_da) = institution(&w, ids::FCB_DA);
    let (_, fbank) = institution(&w, ids::FOREIGN_BANK_DA);
    let (stb1, stb1_da) = institution(&w, "STB1-DA");
    let (nbk, nbk_da) = institution(&w, ids::NBK_DA);
    nbk.issue(&nbk_da.id, PayTo { address: stb1_da.address, amount: dt(50_000) }, CbsRef::new("CBS-1").unwrap())
        .await
        .unwrap();
    fcb.issue(&fcb_da.id, PayTo { address: fbank.address, amount: dt(1_000) }, CbsRef::new("CBS-2").unwrap())
        .await
        .unwrap();
    let rate = FxRate {
        base: Currency::DT,
        quote: fcy,
        numerator: 1,
        denominator: 125,
        valid_until: w.clock.now().plus_days(1),
    };
    assert!(matches!(w.provider("FXDESK", OracleRequest::SetRate(rate)).await, OracleAnswer::Done));
    // A's DA frozen: refused before anything is proposed.
    refused_while_frozen(&w, &stb1, stb1_da.address, "F-PVP-A", async || {
        stb1.pvp(&stb1_da.id, fbank.address, Currency::DT, dt(1_250), fcy).await
    })
    .await;
    // B's DA frozen: B's node refuses its leg; nothing stays reserved on either side.
    freeze(&w, &fcb, fbank.address, "F-PVP-B").await;
    let err = stb1.pvp(&stb1_da.id, fbank.address, Currency::DT, dt(1_250), fcy).await.unwrap_err();
    assert!(err.to_string().contains("frozen"), "{err}");
    assert_eq!(the_reserved(&stb1) + the_reserved(&fcb), 0);
    lift(&w, &fcb, fbank.address, "F-PVP-B").await;
    stb1.pvp(&stb1_da.id, fbank.address, Currency::DT, dt(1_250), fcy).await.unwrap();
}

#[tokio::test]
async fn a_collection_goes_first_over_a_freeze_but_not_over_another_bodys_arrest() {
    let w = World::new().await;
    let stb1 = w.node("STB1");
    let debtor = w.funded("STB1", 1, HolderKind::LegalEntity, dt(1_000)).await;
    let creditor = w.node("STB2").open_account(holder(2, HolderKind::LegalEntity), None, KycState::Verified).await;
    let creditor = creditor.unwrap();
    freeze(&w, &stb1, debtor.address, "F-1").await;
    let arrest = order(&w, ids::BAILIFF, "A-1", debtor.address, OrderAct::Arrest { amount: dt(600) });
    stb1.place_order(arrest, &pid(ids::BAILIFF)).await.unwrap();
    // The tax authority collects 900: a freeze does not stop it, the bailiffs' arrest keeps its 600.
    let collect = OrderAct::Collect { amount: dt(900), beneficiary: creditor.address };
    let done = stb1.place_order(order(&w, "SRC", "T-1", debtor.address, collect), &pid("SRC")).await.unwrap();
    assert_eq!(done.collected, dt(400));
    assert_eq!(w.node("STB2").balances(&creditor.id).unwrap().standard, dt(400));
    // The bailiffs collect within their own arrest.
    let collect = OrderAct::Collect { amount: dt(600), beneficiary: creditor.address };
    let done = stb1.place_order(order(&w, ids::BAILIFF, "C-1", debtor.address, collect), &pid(ids::BAILIFF)).await;
    assert_eq!(done.unwrap().collected, dt(600));
    assert_eq!(stb1.balances(&debtor.id).unwrap().total, Amount::ZERO);
}

// ---------------------------------------------------------------------------
// 17.7 A refused operation releases every reservation it made, at once

#[tokio::test]
async fn a_refused_cash_out_frees_the_contracts_maximum_at_once_for_the_rightful_recipient() {
    let w = World::new().await;
    let ga = w.funded(ids::TREASURY, 5, HolderKind::GovernmentAgency, dt(10_000)).await;
    let stb1 = w.node("STB1");
    let stb2 = w.node("STB2");
    let contractor = stb1.open_account(holder(6, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let sub = stb2.open_account(holder(7, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let (_, bank) = institution(&w, "STB2-DA");
    let parameter = ParameterId::new("GZ-2026-7").unwrap();
    let register = OracleRequest::RegisterParameter {
        id: parameter.clone(),
        initiator: ga.address,
        initiator_node: pid(ids::TREASURY),
        title: "Road repairs".into(),
    };
    w.provider("PORTAL", register).await;
    let c1 = ContractNo::new("C-1").unwrap();
    let contract = Contract {
        number: c1.clone(),
        parameter: parameter.clone(),
        sender: contractor.address,
        recipient: sub.address,
        max_transfer: dt(5_000),
        max_cashout: dt(1_000),
        valid_until: w.clock.now().plus_days(30),
        final_recipient: false,
    };
    w.provider("PORTAL", OracleRequest::RegisterContract(contract)).await;
    let treasury = w.node(ids::TREASURY);
    treasury
        .mark_parameter(&ga.id, PayTo { address: contractor.address, amount: dt(3_000) }, parameter.clone(), None)
        .await
        .unwrap();
    stb1.contract_payment(
        &contractor.id,
        parameter.clone(),
        c1.clone(),
        PayTo { address: sub.address, amount: dt(2_000) },
        false,
        None,
    )
    .await
    .unwrap();
    // The contractor asks for the subcontractor's cash-out: the oracle attests
    // (reserving the 1 000 maximum) but the kernel refuses the contractor's tokens.
    let cash_out = PayTo { address: bank.address, amount: dt(1_000) };
    let err = stb1.contract_payment(&contractor.id, parameter.clone(), c1.clone(), cash_out.clone(), true, None).await;
    assert!(matches!(err, Err(NodeError::Rejected(_))), "{err:?}");
    assert_eq!(the_reserved(&stb1), 0, "its tokens are free");
    let usage = w.p.oracle.state_copy().contract(&parameter, &c1).unwrap().cashed_out;
    assert_eq!(usage.reserved, Amount::ZERO, "the cash-out maximum is free at once");
    // The rightful recipient cashes out the whole maximum at once, no waiting for the window.
    let done = stb2.contract_payment(&sub.id, parameter.clone(), c1.clone(), cash_out, true, None).await.unwrap();
    assert_eq!(done.status, Status::Success);
    assert_eq!(w.p.oracle.state_copy().contract(&parameter, &c1).unwrap().cashed_out.confirmed, dt(1_000));
}

#[tokio::test]
async fn only_the_node_that_asked_for_an_attestation_may_abandon_it() {
    let w = World::new().await;
    let seller = w.node("STB2").open_account(holder(2, HolderKind::LegalEntity), None, KycState::Verified).await;
    let seller = seller.unwrap();
    let buyer = w.funded("STB1", 3, HolderKind::LegalEntity, dt(1_000)).await;
    let invoice = Invoice {
        id: InvoiceId::new("EI-9").unwrap(),
        seller: seller.address,
        buyer: buyer.address,
        net: dt(100),
        vat: dt(12),
    };
    w.provider("SRC", OracleRequest::RegisterInvoice(invoice)).await;
    // STB1 asks for an attestation of a payment of the invoice it never sends.
    let body = TxBody {
        inputs: Default::default(),
        outputs: vec![Token::standard(Currency::DT, dt(100), seller.address, pid("STB2"))].try_into().unwrap(),
        command: Command::PayInvoice { invoice: InvoiceId::new("EI-9").unwrap() },
        window: TimeWindow::starting(w.clock.now(), 60_000),
        memo: None,
    };
    let ask = |who: &str, request: OracleRequest| {
        let bus = w.p.bus(who).unwrap();
        async move {
            let answer = bus.call(&pid(ids::ORACLE), borsh::to_vec(&request).unwrap()).await.unwrap();
            borsh::from_slice::<OracleAnswer>(&answer).unwrap()
        }
    };
    let attested =
        ask("STB1", OracleRequest::Attest { body: body.clone(), request: dtenge_oracle::model::AttestRequest::Plain })
            .await;
    assert!(matches!(attested, OracleAnswer::Attestation(_)), "{attested:?}");
    let tx = body.id();
    let by_other = ask("STB3", OracleRequest::Abandon { tx }).await;
    assert!(matches!(by_other, OracleAnswer::Refused(_)), "{by_other:?}");
    assert!(w.p.oracle.state_copy().reservation(&tx).is_some(), "still reserved");
    assert!(matches!(ask("STB1", OracleRequest::Abandon { tx }).await, OracleAnswer::Done));
    assert!(w.p.oracle.state_copy().reservation(&tx).is_none(), "freed");
    // The abandoned transaction is attested no more; the invoice is free for a new payment.
    let again = ask("STB1", OracleRequest::Attest { body, request: dtenge_oracle::model::AttestRequest::Plain }).await;
    assert!(matches!(again, OracleAnswer::Refused(_)), "{again:?}");
    w.node("STB1").pay_invoice(&buyer.id, InvoiceId::new("EI-9").unwrap()).await.unwrap();
}

// ---------------------------------------------------------------------------
// 17.8 Orders are (authority, reference)

#[tokio::test]
async fn two_authorities_using_the_same_reference_each_lift_their_own_order() {
    let w = World::new().await;
    let stb1 = w.node("STB1");
    let debtor = w.funded("STB1", 1, HolderKind::LegalEntity, dt(1_000)).await;
    let creditor = w.node("STB2").open_account(holder(2, HolderKind::LegalEntity), None, KycState::Verified).await;
    let creditor = creditor.unwrap();
    for authority in [ids::BAILIFF, "SRC"] {
        let arrest = order(&w, authority, "ORD-1", debtor.address, OrderAct::Arrest { amount: dt(300) });
        stb1.place_order(arrest, &pid(authority)).await.unwrap();
    }
    assert_eq!(stb1.read(|s| s.arrested(&debtor.id).unwrap()), dt(600));
    // Each lifts its own ORD-1, whichever sorts first.
    for (authority, left) in [("SRC", dt(300)), (ids::BAILIFF, Amount::ZERO)] {
        let act = OrderAct::Lift { order: OrderRef::new("ORD-1").unwrap() };
        let lifted = stb1.place_order(order(&w, authority, "LIFT-1", debtor.address, act), &pid(authority)).await;
        assert!(lifted.is_ok(), "{authority}: {lifted:?}");
        assert_eq!(stb1.read(|s| s.arrested(&debtor.id).unwrap()), left, "after {authority}'s lift");
    }
    stb1.pay(&debtor.id, &[PayTo { address: creditor.address, amount: dt(1_000) }], None).await.unwrap();
    // A lift of a reference this body never used is refused.
    let act = OrderAct::Lift { order: OrderRef::new("ORD-9").unwrap() };
    let err = stb1.place_order(order(&w, "SRC", "LIFT-9", debtor.address, act), &pid("SRC")).await;
    assert!(err.is_err());
}
