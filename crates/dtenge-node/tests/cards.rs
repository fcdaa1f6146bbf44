//! The card book's pure decision (docs/cards.md) and its place in the
//! node's snapshot: a snapshot written before cards existed still reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_node::accounts::AccountId;
use dtenge_node::cards::network_simulator::CardNetworkSimulator;
use dtenge_node::cards::*;
use dtenge_node::state::{NodeRecord, NodeState, SNAPSHOT};
use dtenge_store::Format;
use dtenge_types::{Address, Amount, Timestamp, TxId};

const NOW: Timestamp = Timestamp(1_767_225_600_000);

fn tenge(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

fn setup() -> (CardBook, CardNetworkSimulator, CardToken, CardExpiry, AcquirerId) {
    let token = CardToken::new("tok_unit_00000001").unwrap();
    let expiry = CardExpiry::parse("2812").unwrap();
    let mut book = CardBook::default();
    book.apply(&CardRecord::Linked(Card {
        token: token.clone(),
        last4: Last4::new("1234").unwrap(),
        account: AccountId("STB1-000001".into()),
        expiry,
        linked_at: NOW,
    }));
    let acquirer = AcquirerId::new("400002").unwrap();
    let mut network = CardNetworkSimulator::new(7);
    network.add_acquirer(acquirer.clone(), Address(dtenge_crypto::SecretKey::from_seed([3; 32]).public_key())).unwrap();
    (book, network, token, expiry, acquirer)
}

fn tx(n: u8) -> TxId {
    TxId(dtenge_crypto::Digest([n; 32]))
}

/// Applies `action` for `message` as the node does once its transaction committed.
fn carried_out(book: &mut CardBook, message: &CardMessage, action: &CardAction, n: u8) -> CardResponse {
    let effect = book.effect_of(message, action, tx(n), NOW);
    let response = CardResponse::approved(message, Amount::ZERO, Some(tx(n)));
    book.apply(&CardRecord::Answered { message: message.clone(), response: response.clone(), effect, at: NOW });
    response
}

#[test]
fn an_authorisation_holds_until_the_schemes_expiry_and_a_clearing_never_exceeds_it() {
    let (mut book, mut network, token, expiry, acquirer) = setup();
    let auth = network.authorisation(&token, expiry, &acquirer, tenge(100), NOW).unwrap();
    let Decision::Act(action @ CardAction::Authorise { .. }) = book.decide(&auth, NOW) else { panic!() };
    let CardAction::Authorise { amount, valid_until, .. } = &action else { unreachable!() };
    assert_eq!((*amount, *valid_until), (tenge(100), NOW.plus_millis(AUTHORISATION_VALID_MS)));
    let first = carried_out(&mut book, &auth, &action, 1);
    // A retransmission: the same answer, no action.
    assert_eq!(book.decide(&auth, NOW), Decision::Repeat(first));
    // More than authorised: 13; the same RRN in a second authorisation: 12.
    let over = network.presentment(&auth, tenge(101), NOW).unwrap();
    assert_eq!(book.decide(&over, NOW), Decision::Decline(ResponseCode::InvalidAmount));
    let mut second = network.authorisation(&token, expiry, &acquirer, tenge(1), NOW).unwrap();
    second.rrn = auth.rrn.clone();
    assert_eq!(book.decide(&second, NOW), Decision::Decline(ResponseCode::InvalidTransaction));
    // A refund before clearing: 12.
    let early = network.refund(&auth, tenge(1), NOW).unwrap();
    assert_eq!(book.decide(&early, NOW), Decision::Decline(ResponseCode::InvalidTransaction));
    // After the hold's end a clearing is refused.
    let late = network.presentment(&auth, tenge(100), NOW).unwrap();
    let after = NOW.plus_millis(AUTHORISATION_VALID_MS + 1);
    assert_eq!(book.decide(&late, after), Decision::Decline(ResponseCode::InvalidTransaction));
    assert_eq!(book.expired(after).len(), 1);
    assert!(book.expired(NOW).is_empty());
}

#[test]
fn refunds_add_up_to_at_most_the_captured_amount() {
    let (mut book, mut network, token, expiry, acquirer) = setup();
    let auth = network.authorisation(&token, expiry, &acquirer, tenge(100), NOW).unwrap();
    let Decision::Act(a) = book.decide(&auth, NOW) else { panic!() };
    carried_out(&mut book, &auth, &a, 1);
    let clearing = network.presentment(&auth, tenge(60), NOW).unwrap();
    let Decision::Act(c) = book.decide(&clearing, NOW) else { panic!() };
    carried_out(&mut book, &clearing, &c, 2);
    let payment = book.payment(&auth.rrn).unwrap();
    assert_eq!((payment.state, payment.captured), (PaymentState::Captured, tenge(60)));
    let r1 = network.refund(&auth, tenge(45), NOW).unwrap();
    let Decision::Act(ra) = book.decide(&r1, NOW) else { panic!() };
    carried_out(&mut book, &r1, &ra, 3);
    let r2 = network.refund(&auth, tenge(16), NOW).unwrap();
    assert_eq!(book.decide(&r2, NOW), Decision::Decline(ResponseCode::InvalidAmount));
    let r3 = network.refund(&auth, tenge(15), NOW).unwrap();
    assert!(matches!(book.decide(&r3, NOW), Decision::Act(CardAction::Refund { .. })));
    // A reversal after clearing is refused; one of an unknown payment names the missing original.
    let reversal = network.reversal(&auth, false, NOW).unwrap();
    assert_eq!(book.decide(&reversal, NOW), Decision::Decline(ResponseCode::InvalidTransaction));
    let stranger = network.authorisation(&token, expiry, &acquirer, tenge(1), NOW).unwrap();
    let orphan = network.reversal(&stranger, true, NOW).unwrap();
    assert_eq!(book.decide(&orphan, NOW), Decision::Decline(ResponseCode::OriginalNotFound));
}

#[test]
fn an_unknown_or_expired_card_and_foreign_currency_are_declined() {
    let (book, mut network, token, expiry, acquirer) = setup();
    let other = CardToken::new("tok_unit_99999999").unwrap();
    let m = network.authorisation(&other, expiry, &acquirer, tenge(1), NOW).unwrap();
    assert_eq!(book.decide(&m, NOW), Decision::Decline(ResponseCode::InvalidCard));
    let m = network.authorisation(&token, expiry, &acquirer, tenge(1), NOW).unwrap();
    assert_eq!(book.decide(&m, expiry.ends_at()), Decision::Decline(ResponseCode::ExpiredCard));
    let m = CardMessage { currency: 840, ..m };
    assert_eq!(book.decide(&m, NOW), Decision::Decline(ResponseCode::InvalidAmount));
    // 2812 is valid through the last instant of December 2028, Astana time.
    assert_eq!(expiry.ends_at(), Timestamp(1_861_902_000_000));
}

#[test]
fn a_snapshot_written_before_cards_reads_with_an_empty_card_book() {
    let mut state = NodeState::default();
    state.opened = 3;
    let current = state.encode_snapshot();
    // Format 1 was format 3 without the card book (four empty maps) and the
    // refusals of payments in flight (an empty map) at the end.
    let body = &current[dtenge_store::versioned::TAG_BYTES..current.len() - 20];
    let old = Format { version: 1, ..SNAPSHOT }.tag(body);
    let read = NodeState::decode_snapshot(&old).unwrap();
    assert_eq!(read.opened, 3);
    assert_eq!(read.cards, CardBook::default());
    // A format 1 snapshot with bytes past its end is refused, not misread.
    let mut longer = old.clone();
    longer.push(0);
    assert!(NodeState::decode_snapshot(&longer).is_err());
    // And a card record round-trips through the journal's format.
    let record = NodeRecord::Card(Box::new(CardRecord::Forgotten { at: NOW }));
    assert_eq!(NodeRecord::decode(&record.encode()).unwrap(), record);
}

#[test]
fn a_message_interrupted_by_a_restart_holds_back_its_payment_until_it_is_answered() {
    let (mut book, mut network, token, expiry, acquirer) = setup();
    let auth = network.authorisation(&token, expiry, &acquirer, tenge(50), NOW).unwrap();
    let Decision::Act(action) = book.decide(&auth, NOW) else { panic!() };
    // Journaled before its transaction was prepared; the answer never was.
    book.apply(&CardRecord::Acting { message: auth.clone(), action: action.clone(), tx: tx(9) });
    assert_eq!(book.interrupted().len(), 1);
    let reversal = network.reversal(&auth, false, NOW).unwrap();
    assert_eq!(book.decide(&reversal, NOW), Decision::Decline(ResponseCode::IssuerUnavailable));
    assert_eq!(book.decide(&auth, NOW), Decision::Decline(ResponseCode::IssuerUnavailable));
    let answer = carried_out(&mut book, &auth, &action, 9);
    assert!(book.interrupted().is_empty());
    assert_eq!(book.decide(&auth, NOW), Decision::Repeat(answer));
    assert!(matches!(book.decide(&reversal, NOW), Decision::Act(CardAction::Reverse { .. })));
}

/// A card message as journaled before DE 95 existed (the derived encoding
/// of its fields then).
#[derive(borsh::BorshSerialize)]
struct MessageBeforeDe95 {
    mti: Mti,
    transaction: TransactionType,
    amount: Amount,
    currency: u16,
    transmitted_at: Timestamp,
    stan: Stan,
    card: CardToken,
    card_expiry: Option<CardExpiry>,
    acquirer: AcquirerId,
    acquirer_account: Address,
    rrn: Rrn,
    original_rrn: Option<Rrn>,
}

fn before_de95(m: &CardMessage) -> MessageBeforeDe95 {
    MessageBeforeDe95 {
        mti: m.mti,
        transaction: m.transaction,
        amount: m.amount,
        currency: m.currency,
        transmitted_at: m.transmitted_at,
        stan: m.stan.clone(),
        card: m.card.clone(),
        card_expiry: m.card_expiry,
        acquirer: m.acquirer.clone(),
        acquirer_account: m.acquirer_account,
        rrn: m.rrn.clone(),
        original_rrn: m.original_rrn.clone(),
    }
}

/// Card records journaled before partial reversals still read, byte for
/// byte; a partial reversal round-trips; DE 90 with DE 95 is refused.
#[test]
fn card_messages_journaled_before_de_95_still_read_and_a_replacement_amount_round_trips() {
    let (_, mut network, token, expiry, acquirer) = setup();
    let auth = network.authorisation(&token, expiry, &acquirer, tenge(50), NOW).unwrap();
    let refund = network.refund(&auth, tenge(5), NOW).unwrap();
    for old in [&auth, &refund] {
        let bytes = borsh::to_vec(&before_de95(old)).unwrap();
        let read: CardMessage = borsh::from_slice(&bytes).unwrap();
        assert_eq!(&read, old);
        assert_eq!(borsh::to_vec(&read).unwrap(), bytes, "the same bytes as before DE 95");
        // Inside a journaled record too.
        let record = NodeRecord::Card(Box::new(CardRecord::Acting {
            message: old.clone(),
            action: CardAction::Reverse { rrn: old.rrn.clone() },
            tx: tx(1),
        }));
        assert_eq!(NodeRecord::decode(&record.encode()).unwrap(), record);
    }
    let partial = network.partial_reversal(&auth, tenge(20), false, NOW).unwrap();
    let read: CardMessage = borsh::from_slice(&borsh::to_vec(&partial).unwrap()).unwrap();
    assert_eq!((read.replacement, read.original_rrn), (Some(tenge(20)), None));
    assert!(partial.check_references().is_ok());
    let both = CardMessage { original_rrn: Some(auth.rrn.clone()), ..partial };
    assert!(both.check_references().is_err());
    assert!(borsh::to_vec(&both).is_err());
    let on_clearing = CardMessage { replacement: Some(tenge(1)), ..network.presentment(&auth, tenge(5), NOW).unwrap() };
    assert!(on_clearing.check_references().is_err());
}
