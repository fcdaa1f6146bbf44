//! Collection orders and key rotation (issue #9): acts on a DA that its
//! holder does not sign, signed by the DA's host bank instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_crypto::SecretKey;
use dtenge_ledger::Rejection;
use dtenge_types::*;
use support::*;

fn order(w: &World, debtor: &SecretKey, amount: Amount, beneficiary: &SecretKey, by: &SecretKey) -> SignedOrder {
    EnforcementOrder {
        reference: OrderRef::new("ENF-2026-001").unwrap(),
        authority: by.public_key(),
        debtor: addr(debtor),
        act: OrderAct::Collect { amount, beneficiary: addr(beneficiary) },
        reason: Memo::new("Civil Procedure Code art. 242, case 7-2026").unwrap(),
        issued_at: w.now,
    }
    .sign(by)
}

fn on(host: &str, owner: &SecretKey, amount: Amount) -> Token {
    Token::standard(Currency::DT, amount, addr(owner), node(host))
}

struct Case {
    w: World,
    debtor: SecretKey,
    creditor: SecretKey,
    bailiff: SecretKey,
    funds: TokenId,
}

fn case() -> Case {
    let mut w = World::new();
    let (debtor, creditor, bailiff) = (key("DEBTOR"), key("CREDITOR"), key("BAILIFF"));
    let funds = w.issue(&debtor, dt(1_000));
    Case { w, debtor, creditor, bailiff, funds }
}

#[test]
fn the_host_bank_collects_the_ordered_amount_without_the_owner() {
    let mut c = case();
    let signed = order(&c.w, &c.debtor, dt(300), &c.creditor, &c.bailiff);
    let body = c.w.body(
        vec![c.funds],
        vec![on("STB2", &c.creditor, dt(300)), on("STB1", &c.debtor, dt(700))],
        Command::Collect { order: signed },
    );
    c.w.apply(&c.w.signed(body, &[&host_key("STB1")])).expect("collect");
    assert_eq!(c.w.balance(&c.creditor, TokenKind::Standard), dt(300));
    assert_eq!(c.w.balance(&c.debtor, TokenKind::Standard), dt(700));
}

#[test]
fn a_collection_never_exceeds_the_order_nor_goes_elsewhere() {
    let c = case();
    let signed = order(&c.w, &c.debtor, dt(300), &c.creditor, &c.bailiff);
    let try_outputs = |outputs: Vec<Token>| {
        let body = c.w.body(vec![c.funds], outputs, Command::Collect { order: signed.clone() });
        c.w.check(&c.w.signed(body, &[&host_key("STB1")]))
    };
    assert!(matches!(
        try_outputs(vec![on("STB2", &c.creditor, dt(301)), on("STB1", &c.debtor, dt(699))]),
        Err(Rejection::CollectionExceedsOrder { .. })
    ));
    assert!(matches!(
        try_outputs(vec![on("STB2", &c.creditor, dt(300)), on("STB1", &key("MALLORY"), dt(700))]),
        Err(Rejection::ChangeNotToOwner { output: 1 })
    ));
    assert!(matches!(
        try_outputs(vec![on("STB2", &c.creditor, dt(300)), on("STB2", &c.debtor, dt(700))]),
        Err(Rejection::ChangeNotToOwner { output: 1 })
    ));
    assert!(matches!(try_outputs(vec![on("STB1", &c.debtor, dt(1_000))]), Err(Rejection::OrderMismatch { .. })));
}

#[test]
fn another_bank_cannot_collect_from_a_client_it_does_not_host() {
    let c = case();
    let signed = order(&c.w, &c.debtor, dt(300), &c.creditor, &c.bailiff);
    let body = c.w.body(
        vec![c.funds],
        vec![on("STB2", &c.creditor, dt(300)), on("STB1", &c.debtor, dt(700))],
        Command::Collect { order: signed },
    );
    assert!(matches!(
        c.w.check(&c.w.signed(body.clone(), &[&host_key("STB2")])),
        Err(Rejection::UnexpectedSignature { .. })
    ));
    assert!(matches!(c.w.check(&c.w.signed(body, &[&c.debtor])), Err(Rejection::UnexpectedSignature { .. })));
}

#[test]
fn only_a_registered_authoritys_genuine_order_collects() {
    let c = case();
    let outputs = vec![on("STB2", &c.creditor, dt(300)), on("STB1", &c.debtor, dt(700))];
    // Signed by a key that is not an authority.
    let fake = order(&c.w, &c.debtor, dt(300), &c.creditor, &key("FAKE-COURT"));
    let body = c.w.body(vec![c.funds], outputs.clone(), Command::Collect { order: fake });
    assert!(matches!(c.w.check(&c.w.signed(body, &[&host_key("STB1")])), Err(Rejection::UnknownAuthority { .. })));
    // The authority's key, but the amount raised after signing.
    let mut forged = order(&c.w, &c.debtor, dt(300), &c.creditor, &c.bailiff);
    forged.order.act = OrderAct::Collect { amount: dt(1_000), beneficiary: addr(&c.creditor) };
    let body = c.w.body(vec![c.funds], outputs.clone(), Command::Collect { order: forged });
    assert!(matches!(c.w.check(&c.w.signed(body, &[&host_key("STB1")])), Err(Rejection::BadSignature { .. })));
    // An order against someone else.
    let other = order(&c.w, &key("SOMEONE"), dt(300), &c.creditor, &c.bailiff);
    let body = c.w.body(vec![c.funds], outputs.clone(), Command::Collect { order: other });
    assert!(matches!(c.w.check(&c.w.signed(body, &[&host_key("STB1")])), Err(Rejection::OrderMismatch { .. })));
    // A freeze order does not debit.
    let mut freeze = order(&c.w, &c.debtor, dt(300), &c.creditor, &c.bailiff);
    freeze.order.act = OrderAct::Freeze;
    let freeze = freeze.order.sign(&c.bailiff);
    let body = c.w.body(vec![c.funds], outputs, Command::Collect { order: freeze });
    assert!(matches!(c.w.check(&c.w.signed(body, &[&host_key("STB1")])), Err(Rejection::OrderMismatch { .. })));
}

#[test]
fn marked_or_held_funds_are_not_collected() {
    let mut c = case();
    let vat = c.w.issue(&c.debtor, dt(10));
    // The input resolves to a VAT-marked token of the debtor.
    let marked = with_marking(on("STB1", &c.debtor, dt(10)), Marking::Vat);
    let signed = order(&c.w, &c.debtor, dt(10), &c.creditor, &c.bailiff);
    let tx = c.w.signed(
        c.w.body(vec![vat], vec![on("STB2", &c.creditor, dt(10))], Command::Collect { order: signed }),
        &[&host_key("STB1")],
    );
    let r = dtenge_ledger::validate(&tx, &[marked], &c.w.ctx(), &dtenge_crypto::Ed25519);
    assert!(matches!(r, Err(Rejection::MarkedInput { .. })));
}

#[test]
fn rekey_moves_every_token_unchanged_but_for_the_owner() {
    let mut c = case();
    let new = key("DEBTOR-NEW-PHONE");
    let terms = MandateTerms {
        mandate: MandateId::new("M1").unwrap(),
        grantee: addr(&key("STB-ISSUER")),
        valid_until: c.w.now.plus_days(30),
    };
    let grant = c.w.body(
        vec![c.funds],
        vec![
            with_encumbrance(on("STB1", &c.debtor, dt(400)), Encumbrance::Mandate(terms.clone())),
            on("STB1", &c.debtor, dt(600)),
        ],
        Command::GrantMandate { mandate: terms.mandate.clone() },
    );
    let outs = c.w.apply(&c.w.signed(grant, &[&c.debtor])).unwrap();
    let inputs: Vec<Token> = outs.iter().map(|id| c.w.book[id].clone()).collect();
    let moved: Vec<Token> = inputs.iter().map(|t| Token { owner: addr(&new), ..t.clone() }).collect();
    let rekey = Command::Rekey { old: addr(&c.debtor), new: addr(&new) };
    let body = c.w.body(outs.clone(), moved.clone(), rekey.clone());
    // Not the owner, not another bank: the host bank.
    assert!(matches!(c.w.check(&c.w.signed(body.clone(), &[&c.debtor])), Err(Rejection::UnexpectedSignature { .. })));
    assert!(matches!(
        c.w.check(&c.w.signed(body.clone(), &[&host_key("STB2")])),
        Err(Rejection::UnexpectedSignature { .. })
    ));
    // Anything changed besides the owner is refused.
    let mut stripped = moved.clone();
    stripped[0].encumbrance = None;
    let bad = c.w.body(outs.clone(), stripped, rekey.clone());
    assert!(matches!(
        c.w.check(&c.w.signed(bad, &[&host_key("STB1")])),
        Err(Rejection::RekeyOutputMismatch { output: 0, .. })
    ));
    let mut diverted = moved.clone();
    diverted[1].owner = addr(&key("MALLORY"));
    let bad = c.w.body(outs.clone(), diverted, rekey.clone());
    assert!(matches!(c.w.check(&c.w.signed(bad, &[&host_key("STB1")])), Err(Rejection::RekeyOutputMismatch { .. })));
    c.w.apply(&c.w.signed(body, &[&host_key("STB1")])).expect("rekey");
    assert_eq!(c.w.balance(&new, TokenKind::Mandated), dt(400));
    assert_eq!(c.w.balance(&new, TokenKind::Standard), dt(600));
    assert_eq!(c.w.balance(&c.debtor, TokenKind::Standard), Amount::ZERO);
}

#[test]
fn the_old_key_owns_nothing_after_a_rekey() {
    let mut c = case();
    let new = key("DEBTOR-NEW-PHONE");
    let body = c.w.body(
        vec![c.funds],
        vec![on("STB1", &new, dt(1_000))],
        Command::Rekey { old: addr(&c.debtor), new: addr(&new) },
    );
    let outs = c.w.apply(&c.w.signed(body, &[&host_key("STB1")])).unwrap();
    // The old key tries to spend the moved token: the owner's signature is required.
    let theft = c.w.body(vec![outs[0]], vec![on("STB1", &key("THIEF"), dt(1_000))], Command::Transfer);
    assert!(matches!(c.w.check(&c.w.signed(theft, &[&c.debtor])), Err(Rejection::UnexpectedSignature { .. })));
}
