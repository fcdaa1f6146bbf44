//! Debit mandates (SPEC §4.4, the seed's Cryptocard) and PvP (§9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_crypto::SecretKey;
use dtenge_ledger::Rejection;
use dtenge_types::*;
use support::*;

fn mandate_id() -> MandateId {
    MandateId::new("CARD-MANDATE-1").unwrap()
}

fn reserved(owner: &SecretKey, amount: Amount, terms: &MandateTerms) -> Token {
    with_encumbrance(std_token(owner, amount), Encumbrance::Mandate(terms.clone()))
}

struct Card {
    w: World,
    exchange: SecretKey,
    issuer_bank: SecretKey,
    terms: MandateTerms,
    reserved: TokenId,
}

/// The crypto exchange reserves 50 000 DT for its bank to debit per card authorisation.
fn cryptocard() -> Card {
    let mut w = World::new();
    let (exchange, issuer_bank) = (key("EXCHANGE"), key("STB-ISSUER"));
    let t = w.issue(&exchange, dt(80_000));
    let terms = MandateTerms { mandate: mandate_id(), grantee: addr(&issuer_bank), valid_until: w.now.plus_days(30) };
    let body = w.body(
        vec![t],
        vec![reserved(&exchange, dt(50_000), &terms), std_token(&exchange, dt(30_000))],
        Command::GrantMandate { mandate: mandate_id() },
    );
    let outs = w.apply(&w.signed(body, &[&exchange])).expect("grant");
    Card { w, exchange, issuer_bank, terms, reserved: outs[0] }
}

#[test]
fn the_issuing_bank_debits_the_exchanges_da_under_the_mandate() {
    let mut c = cryptocard();
    let body = c.w.body(
        vec![c.reserved],
        vec![std_token(&c.issuer_bank, dt(1_250)), reserved(&c.exchange, dt(48_750), &c.terms)],
        Command::Debit { mandate: mandate_id() },
    );
    c.w.apply(&c.w.signed(body, &[&c.issuer_bank])).expect("debit");
    assert_eq!(c.w.balance(&c.issuer_bank, TokenKind::Standard), dt(1_250));
    assert_eq!(c.w.balance(&c.exchange, TokenKind::Mandated), dt(48_750));
}

#[test]
fn only_the_grantee_may_debit_and_never_beyond_the_reserve() {
    let c = cryptocard();
    let body = c.w.body(
        vec![c.reserved],
        vec![std_token(&c.issuer_bank, dt(1_000)), reserved(&c.exchange, dt(49_000), &c.terms)],
        Command::Debit { mandate: mandate_id() },
    );
    assert!(matches!(c.w.check(&c.w.signed(body.clone(), &[&c.exchange])), Err(Rejection::UnexpectedSignature { .. })));
    assert!(matches!(c.w.check(&c.w.signed(body, &[&key("OTHER-BANK")])), Err(Rejection::UnexpectedSignature { .. })));
    let body = c.w.body(
        vec![c.reserved],
        vec![std_token(&c.issuer_bank, dt(60_000))],
        Command::Debit { mandate: mandate_id() },
    );
    assert!(matches!(c.w.check(&c.w.signed(body, &[&c.issuer_bank])), Err(Rejection::ValueNotConserved { .. })));
}

#[test]
fn a_debit_after_the_mandate_ends_is_rejected() {
    let mut c = cryptocard();
    c.w.now = c.terms.valid_until.plus_millis(1);
    let body = c.w.body(
        vec![c.reserved],
        vec![std_token(&c.issuer_bank, dt(50_000))],
        Command::Debit { mandate: mandate_id() },
    );
    assert!(matches!(c.w.check(&c.w.signed(body, &[&c.issuer_bank])), Err(Rejection::MandateOver { .. })));
}

#[test]
fn reserved_funds_cannot_be_spent_by_transfer_but_can_be_revoked_by_the_owner() {
    let mut c = cryptocard();
    let body = c.w.body(vec![c.reserved], vec![std_token(&key("x"), dt(50_000))], Command::Transfer);
    assert!(matches!(c.w.check(&c.w.signed(body, &[&c.exchange])), Err(Rejection::EncumberedInput { .. })));
    let body = c.w.body(
        vec![c.reserved],
        vec![std_token(&c.exchange, dt(50_000))],
        Command::RevokeMandate { mandate: mandate_id() },
    );
    assert!(matches!(
        c.w.check(&c.w.signed(body.clone(), &[&c.issuer_bank])),
        Err(Rejection::UnexpectedSignature { .. })
    ));
    c.w.apply(&c.w.signed(body, &[&c.exchange])).expect("revoke");
    assert_eq!(c.w.balance(&c.exchange, TokenKind::Standard), dt(80_000));
}

#[test]
fn debited_change_keeps_the_same_terms() {
    let c = cryptocard();
    let mut longer = c.terms.clone();
    longer.valid_until = longer.valid_until.plus_days(365);
    let body = c.w.body(
        vec![c.reserved],
        vec![std_token(&c.issuer_bank, dt(1_000)), reserved(&c.exchange, dt(49_000), &longer)],
        Command::Debit { mandate: mandate_id() },
    );
    assert!(matches!(
        c.w.check(&c.w.signed(body, &[&c.issuer_bank])),
        Err(Rejection::MandateOutputMismatch { output: 1, .. })
    ));
}

// ---- PvP ----

fn xcb() -> Currency {
    Currency::new("XCB").unwrap()
}

fn foreign(owner: &SecretKey, amount: Amount) -> Token {
    Token::standard(xcb(), amount, addr(owner), node("FOREIGN"))
}

/// 1 DT = 0.25 XCB (numerator 1, denominator 4).
fn rate() -> Statement {
    Statement::FxRate { base: Currency::DT, quote: xcb(), numerator: 1, denominator: 4 }
}

struct Swap {
    w: World,
    kz: SecretKey,
    fx: SecretKey,
    dt_token: TokenId,
    xcb_token: TokenId,
}

fn swap() -> Swap {
    let mut w = World::new();
    let (kz, fx) = (key("STB1-FX-DESK"), key("FOREIGN-BANK"));
    let dt_token = w.issue(&kz, dt(10_000));
    let xcb_token = w.issue_token(foreign(&fx, dt(5_000)));
    Swap { w, kz, fx, dt_token, xcb_token }
}

#[test]
fn pvp_settles_both_legs_at_the_attested_rate_in_one_transaction() {
    let mut s = swap();
    // 8 000 DT against 2 000 XCB.
    let body = s.w.body(
        vec![s.dt_token, s.xcb_token],
        vec![
            std_token(&s.fx, dt(8_000)),
            std_token(&s.kz, dt(2_000)),
            foreign(&s.kz, dt(2_000)),
            foreign(&s.fx, dt(3_000)),
        ],
        Command::Pvp,
    );
    let tx = s.w.attested(s.w.signed(body, &[&s.kz, &s.fx]), rate());
    s.w.apply(&tx).expect("pvp");
    assert_eq!(s.w.supply(Currency::DT), u128::from(dt(10_000).tiyn()));
    assert_eq!(s.w.supply(xcb()), u128::from(dt(5_000).tiyn()));
    let kz_xcb: u64 =
        s.w.book.values().filter(|t| t.owner == addr(&s.kz) && t.currency == xcb()).map(|t| t.amount.tiyn()).sum();
    assert_eq!(kz_xcb, dt(2_000).tiyn());
}

#[test]
fn a_leg_off_the_rate_or_missing_a_party_fails_and_moves_nothing() {
    let s = swap();
    let body = s.w.body(
        vec![s.dt_token, s.xcb_token],
        vec![
            std_token(&s.fx, dt(8_000)),
            std_token(&s.kz, dt(2_000)),
            foreign(&s.kz, dt(1_500)),
            foreign(&s.fx, dt(3_500)),
        ],
        Command::Pvp,
    );
    let tx = s.w.attested(s.w.signed(body.clone(), &[&s.kz, &s.fx]), rate());
    assert_eq!(s.w.check(&tx), Err(Rejection::PvpRateMismatch { expected: dt(2_000), actual: dt(1_500) }));
    // One party has not signed: nothing settles.
    let tx = s.w.attested(s.w.signed(body, &[&s.kz]), rate());
    assert!(matches!(s.w.check(&tx), Err(Rejection::MissingSignature { .. }) | Err(Rejection::PvpRateMismatch { .. })));
    // Without the FX oracle.
    let body = s.w.body(
        vec![s.dt_token, s.xcb_token],
        vec![
            std_token(&s.fx, dt(8_000)),
            std_token(&s.kz, dt(2_000)),
            foreign(&s.kz, dt(2_000)),
            foreign(&s.fx, dt(3_000)),
        ],
        Command::Pvp,
    );
    assert!(matches!(s.w.check(&s.w.signed(body, &[&s.kz, &s.fx])), Err(Rejection::MissingAttestation { .. })));
}

#[test]
fn pvp_with_one_leg_only_is_rejected() {
    let s = swap();
    let body = s.w.body(vec![s.dt_token], vec![std_token(&s.fx, dt(10_000))], Command::Pvp);
    let tx = s.w.attested(s.w.signed(body, &[&s.kz]), rate());
    assert!(matches!(s.w.check(&tx), Err(Rejection::PvpLegs { .. })));
}
