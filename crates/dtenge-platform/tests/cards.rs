//! Bank cards linked to a DA (issue 22.1) through the running services: the
//! card network simulator sends the issuing bank (STB1) every message of a
//! card payment; the acquirer settles to STB2's own DA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dtenge_crypto::SecretKey;
use dtenge_net::{Clock, ManualClock};
use dtenge_node::accounts::{Account, HolderKind, KycState};
use dtenge_node::cards::network_simulator::CardNetworkSimulator;
use dtenge_node::cards::{
    AcquirerId, CardExpiry, CardMessage, CardResponse, CardToken, Last4, Mti, PaymentState, ResponseCode,
};
use dtenge_node::regime::{LimitPolicy, TierLimits};
use dtenge_node::service::{NodeService, PayTo};
use dtenge_platform::spec::{Keys, ids};
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::*;

mod support;
use support::{World, dt, holder, pid};

const EXPIRY: &str = "2812";

struct Cards {
    network: CardNetworkSimulator,
    acquirer: AcquirerId,
}

fn institution(p: &Platform, key: &str) -> (Arc<NodeService>, Account) {
    let inst = p.spec.institutions.iter().find(|i| i.key == key).unwrap().clone();
    let node = p.node(inst.host.as_str()).unwrap().clone();
    let account = node.read(|s| s.account_of(&inst.address).unwrap().clone());
    (node, account)
}

async fn issue(p: &Platform, to: Address, amount: Amount, reference: &str) {
    let (nbk, nbk_da) = institution(p, ids::NBK_DA);
    nbk.issue(&nbk_da.id, PayTo { address: to, amount }, CbsRef::new(reference).unwrap()).await.unwrap();
}

fn network(p: &Platform) -> Cards {
    let (_, stb2_da) = institution(p, "STB2-DA");
    let acquirer = AcquirerId::new("400002").unwrap();
    let mut network = CardNetworkSimulator::new(0);
    network.add_acquirer(acquirer.clone(), stb2_da.address).unwrap();
    Cards { network, acquirer }
}

fn token(n: u8) -> CardToken {
    CardToken::new(format!("tok_{n:02}_4fa93c0e7b")).unwrap()
}

fn expiry() -> CardExpiry {
    CardExpiry::parse(EXPIRY).unwrap()
}

/// A verified individual at STB1 with `amount` DT and card `n` linked.
async fn cardholder(w: &World, n: u8, amount: Amount) -> (Account, CardToken) {
    let holder = w.funded("STB1", n, HolderKind::Individual, amount).await;
    let card = w.node("STB1").link_card(&holder.id, token(n), Last4::new("4242").unwrap(), expiry()).await.unwrap();
    assert_eq!(card.last4.as_str(), "4242");
    (holder, card.token)
}

async fn send(node: &NodeService, message: &CardMessage) -> CardResponse {
    node.card_message(message.clone()).await.unwrap()
}

fn standard(node: &NodeService, account: &Account) -> Amount {
    node.balances(&account.id).unwrap().standard
}

fn mandated(node: &NodeService, account: &Account) -> Amount {
    node.balances(&account.id).unwrap().mandated
}

#[tokio::test]
async fn an_authorisation_holds_a_partial_capture_pays_the_acquirer_and_releases_the_rest_and_a_refund_pays_back() {
    let w = World::new().await;
    let mut c = network(&w.p);
    let stb1 = w.node("STB1");
    let stb2 = w.node("STB2");
    let (_, stb1_da) = institution(&w.p, "STB1-DA");
    let (_, stb2_da) = institution(&w.p, "STB2-DA");
    issue(&w.p, stb1_da.address, dt(1_000), "CBS-CARD-BANK").await;
    let (alice, card) = cardholder(&w, 1, dt(500)).await;
    let now = w.clock.now();

    // 0100: 120 DT held on Alice's DA.
    let auth = c.network.authorisation(&card, expiry(), &c.acquirer, dt(120), now).unwrap();
    let approved = send(&stb1, &auth).await;
    assert_eq!(approved.mti, Mti::AuthorisationResponse);
    assert_eq!(approved.code, ResponseCode::Approved, "{approved:?}");
    assert_eq!(approved.approval_code.as_ref().map(String::len), Some(6));
    assert_eq!(mandated(&stb1, &alice), dt(120));
    assert_eq!(standard(&stb1, &alice), dt(380));
    // Held funds cannot be spent by their owner meanwhile.
    let bob = w.node("STB2").open_account(holder(0, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    assert!(stb1.pay(&alice.id, &[PayTo { address: bob.address, amount: dt(400) }], None).await.is_err());

    // A retransmitted 0100 is answered the same and holds nothing more.
    assert_eq!(send(&stb1, &c.network.retransmission(&auth)).await, approved);
    assert_eq!(mandated(&stb1, &alice), dt(120));

    // 1240 for 90 of the 120: 90 to the acquirer's settlement DA, 30 back.
    let acquirer_before = standard(&stb2, &stb2_da);
    let clearing = c.network.presentment(&auth, dt(90), now).unwrap();
    let captured = send(&stb1, &clearing).await;
    assert_eq!(
        (captured.mti, captured.code, captured.amount),
        (Mti::PresentmentResponse, ResponseCode::Approved, dt(90))
    );
    assert_eq!(standard(&stb2, &stb2_da), acquirer_before.checked_add(dt(90)).unwrap());
    assert_eq!(mandated(&stb1, &alice), Amount::ZERO);
    assert_eq!(standard(&stb1, &alice), dt(410));
    // Its retransmission moves nothing again.
    assert_eq!(send(&stb1, &clearing).await, captured);
    assert_eq!(standard(&stb2, &stb2_da), acquirer_before.checked_add(dt(90)).unwrap());
    // A second clearing of the same payment (another STAN) is refused.
    let again = c.network.presentment(&auth, dt(10), now).unwrap();
    assert_eq!(send(&stb1, &again).await.code, ResponseCode::InvalidTransaction);
    let payment = stb1.card_payment(&auth.rrn).unwrap();
    assert_eq!((payment.state, payment.authorised, payment.captured), (PaymentState::Captured, dt(120), dt(90)));

    // A refund of 50 pays back from the issuing bank's DA; its retransmission does not.
    let bank_before = standard(&stb1, &stb1_da);
    let refund = c.network.refund(&auth, dt(50), now).unwrap();
    let refunded = send(&stb1, &refund).await;
    assert_eq!((refunded.code, refunded.amount), (ResponseCode::Approved, dt(50)));
    assert_eq!(send(&stb1, &refund).await, refunded);
    assert_eq!(standard(&stb1, &alice), dt(460));
    assert_eq!(standard(&stb1, &stb1_da), bank_before.checked_sub(dt(50)).unwrap());
    // Only 40 of the 90 captured is left to refund.
    let too_much = c.network.refund(&auth, dt(41), now).unwrap();
    assert_eq!(send(&stb1, &too_much).await.code, ResponseCode::InvalidAmount);
    let rest = c.network.refund(&auth, dt(40), now).unwrap();
    assert_eq!(send(&stb1, &rest).await.code, ResponseCode::Approved);
    assert_eq!(stb1.card_payment(&auth.rrn).unwrap().refunded, dt(90));
    assert_eq!(standard(&stb1, &alice), dt(500));
}

/// ISO 8583 DE 95: a reversal carrying a replacement amount releases only the
/// reversed part; the rest stays held and is what clearing may capture. Its
/// retransmission, or another partial reversal to the same amount, changes
/// nothing a second time.
#[tokio::test]
async fn a_partial_reversal_releases_the_reversed_part_and_the_rest_stays_held() {
    let w = World::new().await;
    let mut c = network(&w.p);
    let stb1 = w.node("STB1");
    let stb2 = w.node("STB2");
    let (_, stb2_da) = institution(&w.p, "STB2-DA");
    let (alice, card) = cardholder(&w, 1, dt(500)).await;
    let now = w.clock.now();
    let auth = c.network.authorisation(&card, expiry(), &c.acquirer, dt(200), now).unwrap();
    assert_eq!(send(&stb1, &auth).await.code, ResponseCode::Approved);
    assert_eq!((mandated(&stb1, &alice), standard(&stb1, &alice)), (dt(200), dt(300)));

    // 0400 with DE 95 = 150: 50 released, 150 still held.
    let partial = c.network.partial_reversal(&auth, dt(150), false, now).unwrap();
    let released = send(&stb1, &partial).await;
    assert_eq!(
        (released.mti, released.code, released.amount),
        (Mti::ReversalResponse, ResponseCode::Approved, dt(50)),
        "{released:?}"
    );
    assert!(released.tx.is_some());
    assert_eq!((mandated(&stb1, &alice), standard(&stb1, &alice)), (dt(150), dt(350)));
    let payment = stb1.card_payment(&auth.rrn).unwrap();
    assert_eq!((payment.state, payment.authorised, payment.txs.len()), (PaymentState::Authorised, dt(150), 2));

    // Retransmitted: the same answer, nothing more released.
    assert_eq!(send(&stb1, &c.network.retransmission(&partial)).await, released);
    // Another partial reversal to the same amount (a new STAN): approved, nothing to release.
    let same = c.network.partial_reversal(&auth, dt(150), true, now).unwrap();
    let same_answer = send(&stb1, &same).await;
    assert_eq!((same_answer.code, same_answer.amount, same_answer.tx), (ResponseCode::Approved, Amount::ZERO, None));
    // A replacement above what is held is an invalid amount.
    let above = c.network.partial_reversal(&auth, dt(151), false, now).unwrap();
    assert_eq!(send(&stb1, &above).await.code, ResponseCode::InvalidAmount);
    assert_eq!((mandated(&stb1, &alice), standard(&stb1, &alice)), (dt(150), dt(350)));
    assert_eq!(stb1.card_payment(&auth.rrn).unwrap().txs.len(), 2, "no other transaction");

    // Clearing may capture what is still authorised, not the original amount.
    let over = c.network.presentment(&auth, dt(160), now).unwrap();
    assert_eq!(send(&stb1, &over).await.code, ResponseCode::InvalidAmount);
    let acquirer_before = standard(&stb2, &stb2_da);
    let clearing = c.network.presentment(&auth, dt(120), now).unwrap();
    let captured = send(&stb1, &clearing).await;
    assert_eq!((captured.code, captured.amount), (ResponseCode::Approved, dt(120)));
    assert_eq!(standard(&stb2, &stb2_da), acquirer_before.checked_add(dt(120)).unwrap());
    assert_eq!((mandated(&stb1, &alice), standard(&stb1, &alice)), (Amount::ZERO, dt(380)));

    // A partial reversal then a full one: everything left goes back.
    let auth2 = c.network.authorisation(&card, expiry(), &c.acquirer, dt(100), now).unwrap();
    assert_eq!(send(&stb1, &auth2).await.code, ResponseCode::Approved);
    let p2 = c.network.partial_reversal(&auth2, dt(30), false, now).unwrap();
    assert_eq!(send(&stb1, &p2).await.amount, dt(70));
    let full = c.network.reversal(&auth2, false, now).unwrap();
    let back = send(&stb1, &full).await;
    assert_eq!((back.code, back.amount), (ResponseCode::Approved, dt(30)));
    assert_eq!((mandated(&stb1, &alice), standard(&stb1, &alice)), (Amount::ZERO, dt(380)));
    assert_eq!(stb1.card_payment(&auth2.rrn).unwrap().state, PaymentState::Reversed);
}

/// Unlinking a card: new authorisations under its token are declined 14
/// (no card under the token), while the holds already open keep their
/// course — one is cleared, one reversed, one expires by itself — and a
/// retransmission of an answered message is still answered the same.
#[tokio::test]
async fn an_unlinked_card_is_declined_14_and_its_open_holds_keep_their_course() {
    let w = World::new().await;
    let mut c = network(&w.p);
    let stb1 = w.node("STB1");
    let stb2 = w.node("STB2");
    let (_, stb1_da) = institution(&w.p, "STB1-DA");
    let (_, stb2_da) = institution(&w.p, "STB2-DA");
    issue(&w.p, stb1_da.address, dt(1_000), "CBS-CARD-UNLINK").await;
    let (alice, card) = cardholder(&w, 1, dt(500)).await;
    let now = w.clock.now();
    let to_clear = c.network.authorisation(&card, expiry(), &c.acquirer, dt(100), now).unwrap();
    let to_reverse = c.network.authorisation(&card, expiry(), &c.acquirer, dt(60), now).unwrap();
    let to_expire = c.network.authorisation(&card, expiry(), &c.acquirer, dt(40), now).unwrap();
    let first = send(&stb1, &to_clear).await;
    assert_eq!(first.code, ResponseCode::Approved);
    for m in [&to_reverse, &to_expire] {
        assert_eq!(send(&stb1, m).await.code, ResponseCode::Approved);
    }
    assert_eq!(mandated(&stb1, &alice), dt(200));

    let unlinked = stb1.unlink_card(&card).await.unwrap();
    assert_eq!(unlinked.token, card);
    assert!(stb1.card(&card).is_none());
    assert!(stb1.unlink_card(&card).await.is_err(), "unlinking twice is refused");

    // New authorisations and advices: 14, nothing held.
    let after = c.network.authorisation(&card, expiry(), &c.acquirer, dt(10), now).unwrap();
    let declined = send(&stb1, &after).await;
    assert_eq!((declined.code, declined.amount, declined.tx), (ResponseCode::InvalidCard, Amount::ZERO, None));
    let advice = c.network.advice(&card, expiry(), &c.acquirer, dt(10), now).unwrap();
    assert_eq!(send(&stb1, &advice).await.code, ResponseCode::InvalidCard);
    assert_eq!(mandated(&stb1, &alice), dt(200));
    // An answered message retransmitted: the same answer.
    assert_eq!(send(&stb1, &to_clear).await, first);

    // The open holds keep their course.
    let acquirer_before = standard(&stb2, &stb2_da);
    let clearing = c.network.presentment(&to_clear, dt(100), now).unwrap();
    assert_eq!(send(&stb1, &clearing).await.code, ResponseCode::Approved);
    assert_eq!(standard(&stb2, &stb2_da), acquirer_before.checked_add(dt(100)).unwrap());
    let reversal = c.network.reversal(&to_reverse, false, now).unwrap();
    assert_eq!(send(&stb1, &reversal).await.code, ResponseCode::Approved);
    assert_eq!(mandated(&stb1, &alice), dt(40));
    let refund = c.network.refund(&to_clear, dt(30), now).unwrap();
    assert_eq!(send(&stb1, &refund).await.code, ResponseCode::Approved);
    w.clock.advance(8 * Timestamp::DAY_MS);
    w.p.tick().await;
    assert_eq!(stb1.card_payment(&to_expire.rrn).unwrap().state, PaymentState::Expired);
    assert_eq!((mandated(&stb1, &alice), standard(&stb1, &alice)), (Amount::ZERO, dt(430)));

    // The token may be linked again (to the same or another DA), and pays again.
    stb1.link_card(&alice.id, card.clone(), Last4::new("4242").unwrap(), expiry()).await.unwrap();
    let again = c.network.authorisation(&card, expiry(), &c.acquirer, dt(10), w.clock.now()).unwrap();
    assert_eq!(send(&stb1, &again).await.code, ResponseCode::Approved);
}

#[tokio::test]
async fn a_message_reusing_a_stan_and_rrn_with_other_data_is_refused_as_a_duplicate() {
    let w = World::new().await;
    let mut c = network(&w.p);
    let stb1 = w.node("STB1");
    let (alice, card) = cardholder(&w, 2, dt(500)).await;
    let auth = c.network.authorisation(&card, expiry(), &c.acquirer, dt(100), w.clock.now()).unwrap();
    assert_eq!(send(&stb1, &auth).await.code, ResponseCode::Approved);
    let forged = CardMessage { amount: dt(400), ..auth.clone() };
    assert_eq!(send(&stb1, &forged).await.code, ResponseCode::Duplicate);
    assert_eq!(mandated(&stb1, &alice), dt(100));
}

#[tokio::test]
async fn declines_carry_the_schemes_response_codes_and_hold_nothing() {
    let w = World::new().await;
    let mut c = network(&w.p);
    let stb1 = w.node("STB1");
    let now = w.clock.now();
    let (alice, card) = cardholder(&w, 3, dt(100)).await;

    // 51: more than the DA holds.
    let m = c.network.authorisation(&card, expiry(), &c.acquirer, dt(150), now).unwrap();
    let declined = send(&stb1, &m).await;
    assert_eq!(
        (declined.mti, declined.code, declined.tx),
        (Mti::AuthorisationResponse, ResponseCode::InsufficientFunds, None)
    );
    // 57: the money is there but held (a first authorisation holds 80 of 100).
    let first = c.network.authorisation(&card, expiry(), &c.acquirer, dt(80), now).unwrap();
    assert_eq!(send(&stb1, &first).await.code, ResponseCode::Approved);
    let m = c.network.authorisation(&card, expiry(), &c.acquirer, dt(50), now).unwrap();
    assert_eq!(send(&stb1, &m).await.code, ResponseCode::NotPermitted);
    // 54: the card as presented has another expiry than the card on file.
    let m = c.network.authorisation(&card, CardExpiry::parse("2501").unwrap(), &c.acquirer, dt(5), now).unwrap();
    assert_eq!(send(&stb1, &m).await.code, ResponseCode::ExpiredCard);
    // 14: a token no card is linked under.
    let m = c.network.authorisation(&token(99), expiry(), &c.acquirer, dt(5), now).unwrap();
    assert_eq!(send(&stb1, &m).await.code, ResponseCode::InvalidCard);
    // 57: a frozen DA.
    freeze(&w, &stb1, alice.address, "FRZ-CARD-1").await;
    let m = c.network.authorisation(&card, expiry(), &c.acquirer, dt(5), now).unwrap();
    assert_eq!(send(&stb1, &m).await.code, ResponseCode::NotPermitted);
    assert_eq!(mandated(&stb1, &alice), dt(80), "only the first authorisation holds");

    // 57: a KYC-tier limit (the standard tier pays at most 10 DT at a time).
    let (bob, bob_card) = cardholder(&w, 4, dt(100)).await;
    let wide = TierLimits { max_balance: dt(1_000_000), per_payment: dt(1_000_000), daily_outgoing: dt(1_000_000) };
    let standard_tier = TierLimits { max_balance: dt(1_000_000), per_payment: dt(10), daily_outgoing: dt(1_000) };
    let policy =
        LimitPolicy { version: 0, simplified: wide, standard: standard_tier, full: wide, published_at: Timestamp(0) };
    w.node(ids::NBK).publish_policy(policy).await.unwrap();
    let m = c.network.authorisation(&bob_card, expiry(), &c.acquirer, dt(11), now).unwrap();
    assert_eq!(send(&stb1, &m).await.code, ResponseCode::NotPermitted);
    let m = c.network.authorisation(&bob_card, expiry(), &c.acquirer, dt(10), now).unwrap();
    assert_eq!(send(&stb1, &m).await.code, ResponseCode::Approved);
    assert_eq!(mandated(&stb1, &bob), dt(10));

    // A declined message's retransmission is declined the same.
    let m = c.network.authorisation(&bob_card, expiry(), &c.acquirer, dt(500), now).unwrap();
    let first_answer = send(&stb1, &m).await;
    assert_eq!(first_answer.code, ResponseCode::NotPermitted);
    assert_eq!(send(&stb1, &m).await, first_answer);

    // 54: the card's own expiry passes.
    w.clock.advance(4 * 365 * Timestamp::DAY_MS);
    let m = c.network.authorisation(&bob_card, expiry(), &c.acquirer, dt(1), w.clock.now()).unwrap();
    assert_eq!(send(&stb1, &m).await.code, ResponseCode::ExpiredCard);
}

fn key(w: &World, name: &str) -> SecretKey {
    Keys::at(&w.p.data).load(name).unwrap()
}

async fn freeze(w: &World, node: &NodeService, debtor: Address, reference: &str) {
    let by = key(w, ids::BAILIFF);
    let order = EnforcementOrder {
        reference: OrderRef::new(reference).unwrap(),
        authority: by.public_key(),
        debtor,
        act: OrderAct::Freeze,
        reason: Memo::new("court order").unwrap(),
        issued_at: w.clock.now(),
    }
    .sign(&by);
    node.place_order(order, &pid(ids::BAILIFF)).await.unwrap();
}

#[tokio::test]
async fn a_reversal_releases_the_hold_and_an_expired_authorisation_returns_by_itself() {
    let w = World::new().await;
    let mut c = network(&w.p);
    let stb1 = w.node("STB1");
    let (alice, card) = cardholder(&w, 5, dt(300)).await;
    let now = w.clock.now();

    let auth = c.network.authorisation(&card, expiry(), &c.acquirer, dt(100), now).unwrap();
    assert_eq!(send(&stb1, &auth).await.code, ResponseCode::Approved);
    let reversal = c.network.reversal(&auth, false, now).unwrap();
    let reversed = send(&stb1, &reversal).await;
    assert_eq!(
        (reversed.mti, reversed.code, reversed.amount),
        (Mti::ReversalResponse, ResponseCode::Approved, dt(100))
    );
    assert_eq!((mandated(&stb1, &alice), standard(&stb1, &alice)), (Amount::ZERO, dt(300)));
    assert_eq!(send(&stb1, &reversal).await, reversed, "a retransmitted reversal");
    // A reversal advice of the same payment releases nothing more; a clearing after it is refused.
    let advice = c.network.reversal(&auth, true, now).unwrap();
    let acknowledged = send(&stb1, &advice).await;
    assert_eq!(
        (acknowledged.mti, acknowledged.code, acknowledged.tx),
        (Mti::ReversalAdviceResponse, ResponseCode::Approved, None)
    );
    let late = c.network.presentment(&auth, dt(100), now).unwrap();
    assert_eq!(send(&stb1, &late).await.code, ResponseCode::InvalidTransaction);
    // A reversal of a payment the issuer never saw.
    let stranger = c.network.authorisation(&card, expiry(), &c.acquirer, dt(1), now).unwrap();
    let orphan = c.network.reversal(&stranger, false, now).unwrap();
    assert_eq!(send(&stb1, &orphan).await.code, ResponseCode::OriginalNotFound);

    // 0120: the network approved in stand-in; the issuer holds.
    let advised = c.network.advice(&card, expiry(), &c.acquirer, dt(60), now).unwrap();
    let answer = send(&stb1, &advised).await;
    assert_eq!((answer.mti, answer.code), (Mti::AuthorisationAdviceResponse, ResponseCode::Approved));
    assert_eq!(mandated(&stb1, &alice), dt(60));
    // Nobody clears it: after the scheme's 7 days the tick returns it, the oracle away.
    w.clock.advance(6 * Timestamp::DAY_MS);
    w.p.tick().await;
    assert_eq!(mandated(&stb1, &alice), dt(60), "still held before the scheme's expiry");
    w.clock.advance(2 * Timestamp::DAY_MS);
    w.p.network.partition(&pid(ids::ORACLE));
    w.p.tick().await;
    w.p.network.heal(&pid(ids::ORACLE));
    assert_eq!((mandated(&stb1, &alice), standard(&stb1, &alice)), (Amount::ZERO, dt(300)));
    assert_eq!(stb1.card_payment(&advised.rrn).unwrap().state, PaymentState::Expired);
    let too_late = c.network.presentment(&advised, dt(60), w.clock.now()).unwrap();
    assert_eq!(send(&stb1, &too_late).await.code, ResponseCode::InvalidTransaction);
}

#[tokio::test]
async fn answers_survive_a_restart_and_a_retransmission_after_it_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let open = || Platform::open(dir.path(), clock.clone(), PlatformOptions { durable: true });
    let (auth, approved, clearing, captured, alice) = {
        let p = open().await.unwrap();
        let mut c = network(&p);
        let stb1 = p.node("STB1").unwrap().clone();
        let alice = stb1.open_account(holder(6, HolderKind::Individual), None, KycState::Verified).await.unwrap();
        issue(&p, alice.address, dt(200), "CBS-CARD-6").await;
        let card = stb1.link_card(&alice.id, token(6), Last4::new("0006").unwrap(), expiry()).await.unwrap().token;
        let auth = c.network.authorisation(&card, expiry(), &c.acquirer, dt(80), clock.now()).unwrap();
        let approved = send(&stb1, &auth).await;
        assert_eq!(approved.code, ResponseCode::Approved);
        let clearing = c.network.presentment(&auth, dt(80), clock.now()).unwrap();
        let captured = send(&stb1, &clearing).await;
        assert_eq!(captured.code, ResponseCode::Approved);
        p.close().unwrap();
        (auth, approved, clearing, captured, alice)
    };
    let p = open().await.unwrap();
    let stb1 = p.node("STB1").unwrap().clone();
    assert_eq!(stb1.card(&auth.card).unwrap().account, alice.id);
    assert_eq!(send(&stb1, &auth).await, approved);
    assert_eq!(send(&stb1, &clearing).await, captured);
    assert_eq!(standard(&stb1, &alice), dt(120));
    assert_eq!(mandated(&stb1, &alice), Amount::ZERO);
    let payment = stb1.card_payment(&auth.rrn).unwrap();
    assert_eq!((payment.state, payment.captured, payment.txs.len()), (PaymentState::Captured, dt(80), 2));
    p.close().unwrap();
}

#[tokio::test]
async fn linking_keeps_token_and_last_four_only_and_refuses_what_cannot_pay_by_card() {
    let w = World::new().await;
    let stb1 = w.node("STB1");
    let (alice, card) = cardholder(&w, 7, dt(10)).await;
    // One token, one DA.
    let other = w.funded("STB1", 8, HolderKind::Individual, dt(10)).await;
    let err = stb1.link_card(&other.id, card.clone(), Last4::new("1111").unwrap(), expiry()).await.unwrap_err();
    assert!(err.to_string().contains("already linked"), "{err}");
    // A DA whose holder keeps its key cannot hold at the network's speed.
    let device = SecretKey::from_seed([9; 32]);
    let own_key = stb1
        .open_account(holder(9, HolderKind::Individual), Some(device.public_key()), KycState::Verified)
        .await
        .unwrap();
    let err = stb1.link_card(&own_key.id, token(9), Last4::new("1111").unwrap(), expiry()).await.unwrap_err();
    assert!(err.to_string().contains("holds its own key"), "{err}");
    // An expired card, and malformed values.
    let err =
        stb1.link_card(&other.id, token(8), Last4::new("1111").unwrap(), CardExpiry::parse("2401").unwrap()).await;
    assert!(err.unwrap_err().to_string().contains("has passed"));
    assert!(Last4::new("42").is_err() && Last4::new("42a4").is_err());
    assert!(CardExpiry::parse("2713").is_err() && CardToken::new("4111 1111 1111 1111").is_err());
    assert_eq!(stb1.card(&card).unwrap().account, alice.id);
}

/// Cuts `STB1`'s journal just before the record of the answer to `key`, and
/// everything after it: the state a kill -9 leaves when it comes after the
/// card transaction committed and before the answer was durable (the
/// journal drops an unacknowledged torn tail the same way on open).
fn lose_the_answer(data: &std::path::Path, key: &dtenge_node::cards::MessageKey) {
    let dir = data.join("nodes").join("STB1");
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("journal-"))
        .collect();
    segments.sort();
    let segment = segments.last().unwrap();
    let bytes = std::fs::read(segment).unwrap();
    let (mut at, mut cut) = (dtenge_store::format::SEGMENT_HEADER.len(), None);
    while at + dtenge_store::format::FRAME_HEADER_BYTES <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        let payload = &bytes[at + 16..at + 16 + len];
        if let Ok(dtenge_node::state::NodeRecord::Card(record)) = dtenge_node::state::NodeRecord::decode(payload)
            && let dtenge_node::cards::CardRecord::Answered { message, .. } = *record
            && message.key() == *key
        {
            cut = Some(at);
        }
        at += 16 + len;
    }
    let cut = cut.expect("the answer is in the last segment");
    let file = std::fs::OpenOptions::new().write(true).open(segment).unwrap();
    file.set_len(cut as u64).unwrap();
    file.sync_all().unwrap();
}

/// Issue 22's crash point: the card transaction committed, the node died
/// before its answer was journaled. After the restart the retransmitted
/// message is answered exactly as the lost answer was (from the committed
/// transaction), and the money moved once — for an authorisation (held once)
/// and for a clearing (paid to the acquirer's node once).
#[tokio::test]
async fn a_crash_after_the_card_transaction_and_before_its_answer_is_answered_the_same_and_moves_money_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let open = || Platform::open(dir.path(), clock.clone(), PlatformOptions { durable: true });
    let balances = |p: &Platform, node: &str, address: Address| {
        p.node(node).unwrap().read(|s| s.vault.balances(&s.account_of(&address).unwrap().id).unwrap())
    };

    // The authorisation: held, answered, then the answer lost.
    let (auth, approved, alice, acquirer_da) = {
        let p = open().await.unwrap();
        let mut c = network(&p);
        let (_, acquirer_da) = institution(&p, "STB2-DA");
        let stb1 = p.node("STB1").unwrap().clone();
        let alice = stb1.open_account(holder(5, HolderKind::Individual), None, KycState::Verified).await.unwrap();
        issue(&p, alice.address, dt(200), "CBS-CARD-CRASH").await;
        let card = stb1.link_card(&alice.id, token(5), Last4::new("0005").unwrap(), expiry()).await.unwrap().token;
        let auth = c.network.authorisation(&card, expiry(), &c.acquirer, dt(80), clock.now()).unwrap();
        let approved = send(&stb1, &auth).await;
        assert_eq!(approved.code, ResponseCode::Approved);
        p.close().unwrap();
        (auth, approved, alice, acquirer_da)
    };
    lose_the_answer(dir.path(), &auth.key());
    let (clearing, captured, acquirer_before) = {
        let p = open().await.unwrap();
        let stb1 = p.node("STB1").unwrap().clone();
        assert!(stb1.read(|s| s.cards.answer(&auth.key()).is_none()), "the answer was lost");
        assert_eq!(send(&stb1, &auth).await, approved, "the retransmission gets the lost answer");
        assert_eq!(send(&stb1, &auth).await, approved);
        let held = balances(&p, "STB1", alice.address);
        assert_eq!((held.mandated, held.standard), (dt(80), dt(120)), "held once");

        // The clearing: paid to the acquirer, answered, then the answer lost.
        let mut c = network(&p);
        let clearing = c.network.presentment(&auth, dt(70), clock.now()).unwrap();
        let acquirer_before = balances(&p, "STB2", acquirer_da.address).standard;
        let captured = send(&stb1, &clearing).await;
        assert_eq!((captured.code, captured.amount), (ResponseCode::Approved, dt(70)));
        p.close().unwrap();
        (clearing, captured, acquirer_before)
    };
    lose_the_answer(dir.path(), &clearing.key());
    let p = open().await.unwrap();
    let stb1 = p.node("STB1").unwrap().clone();
    assert!(stb1.read(|s| s.cards.answer(&clearing.key()).is_none()), "the answer was lost");
    assert_eq!(send(&stb1, &clearing).await, captured, "the retransmission gets the lost answer");
    // Deliveries the crash cut off are sent again by the tick.
    p.tick().await;
    assert_eq!(send(&stb1, &clearing).await, captured);
    let held = balances(&p, "STB1", alice.address);
    assert_eq!((held.mandated, held.standard), (Amount::ZERO, dt(130)), "70 paid, 10 back, once");
    assert_eq!(balances(&p, "STB2", acquirer_da.address).standard, acquirer_before.checked_add(dt(70)).unwrap());
    let payment = stb1.card_payment(&auth.rrn).unwrap();
    assert_eq!((payment.state, payment.captured, payment.txs.len()), (PaymentState::Captured, dt(70), 2));
    p.close().unwrap();
}
