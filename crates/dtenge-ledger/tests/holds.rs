//! Holds (SPEC §4.1): hold with the oracle's confirmation, release on the
//! event, return on expiry or cancellation; single and recurring.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_crypto::SecretKey;
use dtenge_ledger::Rejection;
use dtenge_types::*;
use support::*;

const DAY: u64 = Timestamp::DAY_MS;

struct Farm {
    w: World,
    sec: SecretKey,
    seller: SecretKey,
    hold: Hold,
    held: TokenId,
}

fn event() -> EventId {
    EventId::new("IFA-2024-7731").unwrap()
}

fn held_token(owner: &SecretKey, amount: Amount, hold: &Hold) -> Token {
    with_encumbrance(std_token(owner, amount), Encumbrance::Hold(hold.clone()))
}

fn to_recipient(hold: &Hold, amount: Amount) -> Token {
    Token::standard(Currency::DT, amount, hold.recipient, hold.recipient_node.clone())
}

/// SEC holds 4 000 DT for farmer 2 until the IFA reports the animals changed owner.
fn farm(kind: HoldKind) -> Farm {
    let mut w = World::new();
    let (sec, seller) = (key("SEC"), key("FARMER2"));
    let funds = w.issue(&sec, dt(10_000));
    let hold = Hold {
        event: event(),
        recipient: addr(&seller),
        recipient_node: node("STB2"),
        valid_until: w.now.plus_days(180),
        kind,
    };
    let body = w.body(
        vec![funds],
        vec![held_token(&sec, dt(4_000), &hold), std_token(&sec, dt(6_000))],
        Command::Hold { event: event() },
    );
    let tx = w.signed(body, &[&sec]);
    let tx = w.attested(
        tx,
        Statement::HoldConfirmed {
            event: event(),
            sender: addr(&sec),
            recipient: addr(&seller),
            amount: dt(4_000),
            valid_until: hold.valid_until,
            kind,
        },
    );
    let outs = w.apply(&tx).expect("hold");
    Farm { w, sec, seller, hold, held: outs[0] }
}

#[test]
fn held_funds_stay_with_the_owner_but_cannot_be_spent() {
    let f = farm(HoldKind::Single);
    assert_eq!(f.w.balance(&f.sec, TokenKind::Held), dt(4_000));
    assert_eq!(f.w.balance(&f.sec, TokenKind::Standard), dt(6_000));
    let body = f.w.body(vec![f.held], vec![std_token(&key("anyone"), dt(4_000))], Command::Transfer);
    assert!(matches!(f.w.check(&f.w.signed(body, &[&f.sec])), Err(Rejection::EncumberedInput { input: 0, .. })));
}

#[test]
fn a_hold_needs_the_oracles_confirmation_of_the_same_terms() {
    let mut w = World::new();
    let (sec, seller) = (key("SEC"), key("FARMER2"));
    let funds = w.issue(&sec, dt(1_000));
    let hold = Hold {
        event: event(),
        recipient: addr(&seller),
        recipient_node: node("STB2"),
        valid_until: w.now.plus_days(1),
        kind: HoldKind::Single,
    };
    let body = w.body(vec![funds], vec![held_token(&sec, dt(1_000), &hold)], Command::Hold { event: event() });
    let tx = w.signed(body, &[&sec]);
    assert!(matches!(w.check(&tx), Err(Rejection::MissingAttestation { .. })));
    let confirmed = |amount| Statement::HoldConfirmed {
        event: event(),
        sender: addr(&sec),
        recipient: addr(&seller),
        amount,
        valid_until: hold.valid_until,
        kind: HoldKind::Single,
    };
    let wrong_amount = w.attested(tx.clone(), confirmed(dt(900)));
    assert_eq!(w.check(&wrong_amount), Err(Rejection::HoldAmountMismatch { expected: dt(900), actual: dt(1_000) }));
    let ok = w.attested(tx, confirmed(dt(1_000)));
    assert!(w.check(&ok).is_ok());
}

fn release(f: &Farm, amount: Amount, outputs: Vec<Token>) -> Transaction {
    let body = f.w.body(vec![f.held], outputs, Command::Release { event: event() });
    f.w.attested(Transaction::unsigned(body), Statement::EventOccurred { event: event(), amount })
}

#[test]
fn the_ifa_event_releases_the_held_funds_to_the_seller() {
    let mut f = farm(HoldKind::Single);
    let tx = release(&f, dt(4_000), vec![to_recipient(&f.hold, dt(4_000))]);
    f.w.apply(&tx).expect("release");
    assert_eq!(f.w.balance(&f.seller, TokenKind::Standard), dt(4_000));
    assert_eq!(f.w.balance(&f.sec, TokenKind::Held), Amount::ZERO);
}

#[test]
fn release_without_an_attestation_is_rejected() {
    let f = farm(HoldKind::Single);
    let body = f.w.body(vec![f.held], vec![to_recipient(&f.hold, dt(4_000))], Command::Release { event: event() });
    let tx = f.w.signed(body, &[]);
    assert!(matches!(f.w.check(&tx), Err(Rejection::MissingAttestation { .. })));
}

#[test]
fn release_with_a_forged_attestation_is_rejected() {
    let f = farm(HoldKind::Single);
    let body = f.w.body(vec![f.held], vec![to_recipient(&f.hold, dt(4_000))], Command::Release { event: event() });
    let mut tx = Transaction::unsigned(body);
    let statement = Statement::EventOccurred { event: event(), amount: dt(4_000) };
    // A genuine oracle key's identity with someone else's signature.
    let forged = key("mallory").sign(&statement.signing_message(&tx.id()));
    tx.attestations =
        vec![Attestation { oracle: f.w.oracle.public_key(), statement, signature: forged }].try_into().unwrap();
    assert_eq!(f.w.check(&tx), Err(Rejection::BadAttestation { oracle: f.w.oracle.public_key() }));
}

#[test]
fn a_partial_single_release_returns_the_rest_as_standard_money() {
    let mut f = farm(HoldKind::Single);
    let tx = release(&f, dt(3_000), vec![to_recipient(&f.hold, dt(3_000)), std_token(&f.sec, dt(1_000))]);
    f.w.apply(&tx).unwrap();
    assert_eq!(f.w.balance(&f.seller, TokenKind::Standard), dt(3_000));
    assert_eq!(f.w.balance(&f.sec, TokenKind::Standard), dt(7_000));
    assert_eq!(f.w.balance(&f.sec, TokenKind::Held), Amount::ZERO);
}

#[test]
fn a_single_hold_cannot_keep_the_rest_held() {
    let f = farm(HoldKind::Single);
    let tx = release(&f, dt(3_000), vec![to_recipient(&f.hold, dt(3_000)), held_token(&f.sec, dt(1_000), &f.hold)]);
    assert!(matches!(f.w.check(&tx), Err(Rejection::ReleaseOutputMismatch { output: 1, .. })));
}

#[test]
fn a_recurring_hold_keeps_the_rest_held_until_exhausted() {
    let mut f = farm(HoldKind::Recurring);
    let tx = release(&f, dt(1_000), vec![to_recipient(&f.hold, dt(1_000)), held_token(&f.sec, dt(3_000), &f.hold)]);
    let outs = f.w.apply(&tx).unwrap();
    assert_eq!(f.w.balance(&f.sec, TokenKind::Held), dt(3_000));
    f.held = outs[1];
    let tx = release(&f, dt(3_000), vec![to_recipient(&f.hold, dt(3_000))]);
    f.w.apply(&tx).unwrap();
    assert_eq!(f.w.balance(&f.seller, TokenKind::Standard), dt(4_000));
    // A recurring rest may not slip out as standard money.
    let mut g = farm(HoldKind::Recurring);
    let tx = release(&g, dt(1_000), vec![to_recipient(&g.hold, dt(1_000)), std_token(&g.sec, dt(3_000))]);
    assert!(matches!(g.w.check(&tx), Err(Rejection::ReleaseOutputMismatch { output: 1, .. })));
    g.w.now = g.w.now.plus_millis(1);
}

#[test]
fn releasing_more_than_held_or_to_someone_else_is_rejected() {
    let f = farm(HoldKind::Single);
    let tx = release(&f, dt(5_000), vec![to_recipient(&f.hold, dt(4_000))]);
    assert_eq!(f.w.check(&tx), Err(Rejection::ReleaseExceedsHeld { held: dt(4_000), requested: dt(5_000) }));
    let thief = Token::standard(Currency::DT, dt(4_000), addr(&key("thief")), node("STB3"));
    let tx = release(&f, dt(4_000), vec![thief]);
    assert!(matches!(f.w.check(&tx), Err(Rejection::ReleaseOutputMismatch { output: 0, .. })));
    let tx = release(&f, dt(4_000), vec![to_recipient(&f.hold, dt(3_000)), std_token(&f.sec, dt(1_000))]);
    assert_eq!(f.w.check(&tx), Err(Rejection::ReleaseAmountMismatch { expected: dt(4_000), actual: dt(3_000) }));
}

#[test]
fn after_180_days_without_a_trigger_the_funds_return_without_the_oracle() {
    let mut f = farm(HoldKind::Single);
    // Before the end: refused.
    let body = f.w.body(vec![f.held], vec![std_token(&f.sec, dt(4_000))], Command::Expire { event: event() });
    assert!(matches!(f.w.check(&Transaction::unsigned(body)), Err(Rejection::HoldNotOver { .. })));
    // The clock moves past valid-until: returned, no signature, no attestation.
    f.w.now = f.hold.valid_until.plus_millis(1);
    let body = f.w.body(vec![f.held], vec![std_token(&f.sec, dt(4_000))], Command::Expire { event: event() });
    f.w.apply(&Transaction::unsigned(body)).expect("expiry");
    assert_eq!(f.w.balance(&f.sec, TokenKind::Standard), dt(10_000));
}

#[test]
fn an_expiry_cannot_send_funds_anywhere_but_back() {
    let mut f = farm(HoldKind::Single);
    f.w.now = f.hold.valid_until.plus_millis(1);
    let body = f.w.body(vec![f.held], vec![to_recipient(&f.hold, dt(4_000))], Command::Expire { event: event() });
    assert_eq!(f.w.check(&Transaction::unsigned(body)), Err(Rejection::ChangeNotToOwner { output: 0 }));
}

#[test]
fn release_after_valid_until_is_rejected() {
    let mut f = farm(HoldKind::Single);
    f.w.now = f.hold.valid_until.plus_millis(1);
    let tx = release(&f, dt(4_000), vec![to_recipient(&f.hold, dt(4_000))]);
    assert!(matches!(f.w.check(&tx), Err(Rejection::HoldOver { .. })));
    let _ = DAY;
}

#[test]
fn a_cancelled_event_returns_the_funds() {
    let mut f = farm(HoldKind::Single);
    let body = f.w.body(vec![f.held], vec![std_token(&f.sec, dt(4_000))], Command::CancelHold { event: event() });
    let unattested = Transaction::unsigned(body);
    assert!(matches!(f.w.check(&unattested), Err(Rejection::MissingAttestation { .. })));
    let tx = f.w.attested(unattested, Statement::EventCancelled { event: event() });
    f.w.apply(&tx).unwrap();
    assert_eq!(f.w.balance(&f.sec, TokenKind::Standard), dt(10_000));
}

#[test]
fn an_attestation_for_another_event_does_not_release() {
    let f = farm(HoldKind::Single);
    let body = f.w.body(vec![f.held], vec![to_recipient(&f.hold, dt(4_000))], Command::Release { event: event() });
    let tx = f.w.attested(
        Transaction::unsigned(body),
        Statement::EventOccurred { event: EventId::new("OTHER").unwrap(), amount: dt(4_000) },
    );
    assert_eq!(f.w.check(&tx), Err(Rejection::AttestationMismatch { field: "event" }));
}

#[test]
fn a_hold_to_its_own_owner_or_across_currencies_is_rejected() {
    let mut w = World::new();
    let sec = key("SEC");
    let funds = w.issue(&sec, dt(1_000));
    let to_self = Hold {
        event: event(),
        recipient: addr(&sec),
        recipient_node: node("STB1"),
        valid_until: w.now.plus_days(1),
        kind: HoldKind::Single,
    };
    let body = w.body(vec![funds], vec![held_token(&sec, dt(1_000), &to_self)], Command::Hold { event: event() });
    let st = Statement::HoldConfirmed {
        event: event(),
        sender: addr(&sec),
        recipient: addr(&sec),
        amount: dt(1_000),
        valid_until: to_self.valid_until,
        kind: HoldKind::Single,
    };
    let tx = w.attested(w.signed(body, &[&sec]), st);
    assert_eq!(w.check(&tx), Err(Rejection::AttestationMismatch { field: "recipient equals sender" }));

    let seller = key("FARMER2");
    let mut foreign = std_token(&sec, dt(500));
    foreign.currency = Currency::new("XCB").unwrap();
    let xcb = w.issue_token(foreign.clone());
    let h = Hold { recipient: addr(&seller), ..to_self };
    let mut held_foreign = held_token(&sec, dt(500), &h);
    held_foreign.currency = foreign.currency;
    let body =
        w.body(vec![funds, xcb], vec![held_token(&sec, dt(1_000), &h), held_foreign], Command::Hold { event: event() });
    let st = Statement::HoldConfirmed {
        event: event(),
        sender: addr(&sec),
        recipient: addr(&seller),
        amount: dt(1_500),
        valid_until: h.valid_until,
        kind: HoldKind::Single,
    };
    let tx = w.attested(w.signed(body, &[&sec]), st);
    assert_eq!(w.check(&tx), Err(Rejection::MixedCurrencies { command: "hold" }));
}
