//! Marking by address (SPEC §4.2.1) and by parameter (§4.2.2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_crypto::SecretKey;
use dtenge_ledger::Rejection;
use dtenge_types::*;
use support::*;

struct Fund {
    w: World,
    ga: SecretKey,
    gc: SecretKey,
    sub1: SecretKey,
    sub2: SecretKey,
    supplier: SecretKey,
    outsider: SecretKey,
    rule: MarkingRule,
    marked: TokenId,
}

fn level(recipients: &[&SecretKey], limit: Amount) -> MarkingLevel {
    MarkingLevel { recipients: recipients.iter().map(|k| addr(k)).collect::<Vec<_>>().try_into().unwrap(), limit }
}

fn marked(owner: &SecretKey, amount: Amount, rule: &MarkingRule, lvl: u8, allowances: &[Amount]) -> Token {
    with_marking(
        std_token(owner, amount),
        Marking::Address(AddressMarking {
            rule: rule.clone(),
            level: lvl,
            allowances: allowances.to_vec().try_into().unwrap(),
        }),
    )
}

/// A GA on the Treasury marks 1 000 DT to a general contractor: level 1 may be
/// sub1 or sub2 up to 600 in all, level 2 only the supplier up to 300.
fn national_fund() -> Fund {
    let mut w = World::new();
    let (ga, gc, sub1, sub2, supplier, outsider) =
        (key("GA"), key("GC"), key("SUB1"), key("SUB2"), key("SUPPLIER"), key("OUTSIDER"));
    let mut funds = std_token(&ga, dt(5_000));
    funds.host = node("TREASURY");
    let t = w.issue_token(funds);
    let rule = MarkingRule {
        reference: MarkingRef::new("NF-2024-ROADS").unwrap(),
        initiator: addr(&ga),
        initiator_node: node("TREASURY"),
        levels: vec![level(&[&sub1, &sub2], dt(600)), level(&[&supplier], dt(300))].try_into().unwrap(),
    };
    let mut change = std_token(&ga, dt(4_000));
    change.host = node("TREASURY");
    let body =
        w.body(vec![t], vec![marked(&gc, dt(1_000), &rule, 0, &[dt(600), dt(300)]), change], Command::MarkAddress);
    let tx = w.signed(body, &[&ga]);
    let outs = w.apply(&tx).expect("marking");
    Fund { w, ga, gc, sub1, sub2, supplier, outsider, rule, marked: outs[0] }
}

#[test]
fn marked_funds_reach_the_marking_recipient_at_level_zero() {
    let f = national_fund();
    assert_eq!(f.w.balance(&f.gc, TokenKind::Marked), dt(1_000));
    assert_eq!(f.w.balance(&f.ga, TokenKind::Standard), dt(4_000));
}

#[test]
fn two_levels_allowed_recipients_within_limits_and_unmarked_at_the_end() {
    let mut f = national_fund();
    let r = f.rule.clone();
    // GC pays sub1 400 (level 1): sub1's token carries 300 of the level-2 limit.
    let body = f.w.body(
        vec![f.marked],
        vec![marked(&f.sub1, dt(400), &r, 1, &[dt(300)]), marked(&f.gc, dt(600), &r, 0, &[dt(200), dt(0)])],
        Command::Transfer,
    );
    let outs = f.w.apply(&f.w.signed(body, &[&f.gc])).expect("level 1 payment");
    // Sub1 pays the supplier 250 (level 2, last): standard tokens.
    let body = f.w.body(
        vec![outs[0]],
        vec![std_token(&f.supplier, dt(250)), marked(&f.sub1, dt(150), &r, 1, &[dt(50)])],
        Command::Transfer,
    );
    f.w.apply(&f.w.signed(body, &[&f.sub1])).expect("level 2 payment");
    assert_eq!(f.w.balance(&f.supplier, TokenKind::Standard), dt(250));
    assert_eq!(f.w.balance(&f.sub1, TokenKind::Marked), dt(150));
    assert_eq!(f.w.balance(&f.gc, TokenKind::Marked), dt(600));
}

#[test]
fn an_unintended_recipient_is_refused_and_funds_stay() {
    let f = national_fund();
    let r = f.rule.clone();
    let body = f.w.body(
        vec![f.marked],
        vec![marked(&f.outsider, dt(100), &r, 1, &[dt(0)]), marked(&f.gc, dt(900), &r, 0, &[dt(500), dt(300)])],
        Command::Transfer,
    );
    assert_eq!(f.w.check(&f.w.signed(body, &[&f.gc])), Err(Rejection::RecipientNotAllowed { output: 0, level: 1 }));
    // Standard money to an outsider: also refused.
    let body = f.w.body(vec![f.marked], vec![std_token(&f.outsider, dt(1_000))], Command::Transfer);
    assert_eq!(f.w.check(&f.w.signed(body, &[&f.gc])), Err(Rejection::RecipientNotAllowed { output: 0, level: 1 }));
    // Skipping a level (straight to the supplier) is refused too.
    let body = f.w.body(vec![f.marked], vec![std_token(&f.supplier, dt(1_000))], Command::Transfer);
    assert_eq!(f.w.check(&f.w.signed(body, &[&f.gc])), Err(Rejection::RecipientNotAllowed { output: 0, level: 1 }));
    assert_eq!(f.w.balance(&f.gc, TokenKind::Marked), dt(1_000));
}

#[test]
fn level_limits_are_enforced_from_the_tokens() {
    let mut f = national_fund();
    let r = f.rule.clone();
    let body = f.w.body(
        vec![f.marked],
        vec![marked(&f.sub1, dt(400), &r, 1, &[dt(300)]), marked(&f.gc, dt(600), &r, 0, &[dt(200), dt(0)])],
        Command::Transfer,
    );
    let outs = f.w.apply(&f.w.signed(body, &[&f.gc])).unwrap();
    // Only 200 of the 600 level-1 limit is left with GC's change.
    let body = f.w.body(
        vec![outs[1]],
        vec![marked(&f.sub2, dt(300), &r, 1, &[dt(0)]), marked(&f.gc, dt(300), &r, 0, &[dt(0), dt(0)])],
        Command::Transfer,
    );
    assert_eq!(
        f.w.check(&f.w.signed(body, &[&f.gc])),
        Err(Rejection::MarkingLimitExceeded { level: 1, requested: dt(300), available: dt(200) })
    );
    // Level 2 limit (300 carried by sub1's token).
    let body = f.w.body(
        vec![outs[0]],
        vec![std_token(&f.supplier, dt(350)), marked(&f.sub1, dt(50), &r, 1, &[dt(0)])],
        Command::Transfer,
    );
    assert_eq!(
        f.w.check(&f.w.signed(body, &[&f.sub1])),
        Err(Rejection::MarkingLimitExceeded { level: 2, requested: dt(350), available: dt(300) })
    );
}

#[test]
fn allowances_cannot_be_inflated() {
    let f = national_fund();
    let r = f.rule.clone();
    // Change claims more level-2 allowance than the input had.
    let body = f.w.body(
        vec![f.marked],
        vec![marked(&f.sub1, dt(400), &r, 1, &[dt(300)]), marked(&f.gc, dt(600), &r, 0, &[dt(200), dt(300)])],
        Command::Transfer,
    );
    assert!(matches!(f.w.check(&f.w.signed(body, &[&f.gc])), Err(Rejection::AllowanceNotConserved { level: 2, .. })));
    // Change keeps more of the level-1 allowance than is left after paying.
    let body = f.w.body(
        vec![f.marked],
        vec![marked(&f.sub1, dt(400), &r, 1, &[dt(300)]), marked(&f.gc, dt(600), &r, 0, &[dt(600), dt(0)])],
        Command::Transfer,
    );
    assert!(matches!(f.w.check(&f.w.signed(body, &[&f.gc])), Err(Rejection::AllowanceNotConserved { level: 1, .. })));
}

#[test]
fn change_stays_marked_with_the_sender_and_marking_cannot_be_dropped() {
    let f = national_fund();
    let r = f.rule.clone();
    let body = f.w.body(
        vec![f.marked],
        vec![marked(&f.sub1, dt(400), &r, 1, &[dt(300)]), std_token(&f.gc, dt(600))],
        Command::Transfer,
    );
    assert!(matches!(f.w.check(&f.w.signed(body, &[&f.gc])), Err(Rejection::RecipientNotAllowed { output: 1, .. })));
    // A level-1 recipient must not receive unmarked money before the last level.
    let body = f.w.body(vec![f.marked], vec![std_token(&f.sub1, dt(1_000))], Command::Transfer);
    assert!(matches!(f.w.check(&f.w.signed(body, &[&f.gc])), Err(Rejection::WrongOutputMarking { output: 0, .. })));
}

#[test]
fn marked_funds_cannot_be_held_or_paid_as_vat() {
    let f = national_fund();
    let body = f.w.body(vec![f.marked], vec![with_marking(std_token(&f.gc, dt(1_000)), Marking::Vat)], Command::PayVat);
    assert!(matches!(f.w.check(&f.w.signed(body, &[&f.gc])), Err(Rejection::WrongInputKind { .. })));
}

#[test]
fn a_marking_rule_must_be_sane() {
    let mut w = World::new();
    let (ga, gc, sub) = (key("GA"), key("GC"), key("SUB"));
    let mut funds = std_token(&ga, dt(100));
    funds.host = node("TREASURY");
    let t = w.issue_token(funds);
    let rule = |limit: Amount, initiator: &SecretKey| MarkingRule {
        reference: MarkingRef::new("R").unwrap(),
        initiator: addr(initiator),
        initiator_node: node("TREASURY"),
        levels: vec![level(&[&sub], limit)].try_into().unwrap(),
    };
    let too_high = rule(dt(200), &ga);
    let body = w.body(vec![t], vec![marked(&gc, dt(100), &too_high, 0, &[dt(200)])], Command::MarkAddress);
    assert!(matches!(w.check(&w.signed(body, &[&ga])), Err(Rejection::MarkingRuleInvalid { .. })));
    let other_initiator = rule(dt(100), &gc);
    let body = w.body(vec![t], vec![marked(&gc, dt(100), &other_initiator, 0, &[dt(100)])], Command::MarkAddress);
    assert!(matches!(w.check(&w.signed(body, &[&ga])), Err(Rejection::MarkingRuleInvalid { .. })));
    let good = rule(dt(100), &ga);
    let body = w.body(vec![t], vec![marked(&gc, dt(100), &good, 0, &[dt(50)])], Command::MarkAddress);
    assert!(matches!(w.check(&w.signed(body, &[&ga])), Err(Rejection::AllowanceNotConserved { level: 1, .. })));
    let body = w.body(vec![t], vec![marked(&gc, dt(100), &good, 0, &[dt(100)])], Command::MarkAddress);
    assert!(w.check(&w.signed(body, &[&ga])).is_ok());
}

// ---- marking by parameter ----

struct Roads {
    w: World,
    ga: SecretKey,
    contractor: SecretKey,
    sub: SecretKey,
    marked: TokenId,
    marking: Marking,
}

fn param() -> ParameterId {
    ParameterId::new("GZ-2025-0042").unwrap()
}

fn roads() -> Roads {
    let mut w = World::new();
    let (ga, contractor, sub) = (key("GA"), key("CONTRACTOR"), key("SUB"));
    let mut funds = std_token(&ga, dt(10_000));
    funds.host = node("TREASURY");
    let t = w.issue_token(funds);
    let marking = Marking::Parameter(ParameterMarking {
        parameter: param(),
        initiator: addr(&ga),
        initiator_node: node("TREASURY"),
    });
    let mut change = std_token(&ga, dt(2_000));
    change.host = node("TREASURY");
    let body = w.body(
        vec![t],
        vec![with_marking(std_token(&contractor, dt(8_000)), marking.clone()), change],
        Command::MarkParameter { parameter: param() },
    );
    let tx = w.signed(body, &[&ga]);
    let tx = w.attested(tx, Statement::ParameterRegistered { parameter: param(), initiator: addr(&ga) });
    let outs = w.apply(&tx).expect("mark by parameter");
    Roads { w, ga, contractor, sub, marked: outs[0], marking }
}

fn contract_payment(r: &Roads, to: &SecretKey, amount: Amount, unmark: bool) -> (TxBody, Statement) {
    let paid = if unmark { std_token(to, amount) } else { with_marking(std_token(to, amount), r.marking.clone()) };
    let change = with_marking(std_token(&r.contractor, minus(dt(8_000), amount)), r.marking.clone());
    let contract = ContractNo::new("C-17").unwrap();
    let body = r.w.body(
        vec![r.marked],
        vec![paid, change],
        Command::ContractPayment { parameter: param(), contract: contract.clone() },
    );
    let statement = Statement::ContractPayment {
        parameter: param(),
        contract,
        sender: addr(&r.contractor),
        recipient: addr(to),
        amount,
        unmark,
    };
    (body, statement)
}

fn minus(a: Amount, b: Amount) -> Amount {
    a.checked_sub(b).unwrap()
}

#[test]
fn parameter_marked_funds_move_under_an_attested_contract() {
    let mut r = roads();
    let (body, st) = contract_payment(&r, &r.sub.clone(), dt(3_000), false);
    let tx = r.w.attested(r.w.signed(body, &[&r.contractor]), st);
    r.w.apply(&tx).expect("contract payment");
    assert_eq!(r.w.balance(&r.sub, TokenKind::Marked), dt(3_000));
    assert_eq!(r.w.balance(&r.contractor, TokenKind::Marked), dt(5_000));
}

#[test]
fn the_end_supplier_receives_standard_tokens() {
    let mut r = roads();
    let (body, st) = contract_payment(&r, &r.sub.clone(), dt(3_000), true);
    let tx = r.w.attested(r.w.signed(body, &[&r.contractor]), st);
    r.w.apply(&tx).unwrap();
    assert_eq!(r.w.balance(&r.sub, TokenKind::Standard), dt(3_000));
}

#[test]
fn parameter_payments_need_a_genuine_matching_attestation() {
    let r = roads();
    let (body, st) = contract_payment(&r, &r.sub, dt(3_000), false);
    let unattested = r.w.signed(body.clone(), &[&r.contractor]);
    assert!(matches!(r.w.check(&unattested), Err(Rejection::MissingAttestation { .. })));
    // Forged: signed by a key that is not a platform oracle.
    let mut forged = unattested.clone();
    forged.attest(&key("fake-oracle"), st.clone()).unwrap();
    assert!(matches!(r.w.check(&forged), Err(Rejection::UnknownOracle { .. })));
    // Genuine oracle signature, but for a different transaction.
    let (other_body, other_st) = contract_payment(&r, &r.sub, dt(2_000), false);
    let other = r.w.attested(r.w.signed(other_body, &[&r.contractor]), other_st);
    let mut replayed = unattested.clone();
    replayed.attestations = other.attestations.clone();
    assert!(matches!(
        r.w.check(&replayed),
        Err(Rejection::BadAttestation { .. }) | Err(Rejection::ContractAmountMismatch { .. })
    ));
    // Attestation names another recipient.
    let mut wrong = st.clone();
    if let Statement::ContractPayment { recipient, .. } = &mut wrong {
        *recipient = addr(&key("OUTSIDER"));
    }
    let tx = r.w.attested(r.w.signed(body, &[&r.contractor]), wrong);
    assert!(matches!(r.w.check(&tx), Err(Rejection::ContractRecipientMismatch { output: 0 })));
}

#[test]
fn parameter_marked_funds_cannot_move_by_plain_transfer() {
    let r = roads();
    let body = r.w.body(vec![r.marked], vec![std_token(&r.sub, dt(8_000))], Command::Transfer);
    assert!(matches!(
        r.w.check(&r.w.signed(body, &[&r.contractor])),
        Err(Rejection::MarkedInput { marking: "parameter", .. })
    ));
    let _ = &r.ga;
}

#[test]
fn contract_amount_must_match_the_attestation() {
    let r = roads();
    let (body, mut st) = contract_payment(&r, &r.sub, dt(3_000), false);
    if let Statement::ContractPayment { amount, .. } = &mut st {
        *amount = dt(2_000);
    }
    let tx = r.w.attested(r.w.signed(body, &[&r.contractor]), st);
    assert_eq!(r.w.check(&tx), Err(Rejection::ContractAmountMismatch { expected: dt(2_000), actual: dt(3_000) }));
}
