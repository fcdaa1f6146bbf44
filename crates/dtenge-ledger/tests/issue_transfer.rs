//! Issue, redeem and standard transfers, with the mistakes people make.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_crypto::Ed25519;
use dtenge_ledger::Rejection;
use dtenge_types::*;
use support::*;

#[test]
fn nbk_issues_dt_backed_by_a_cbs_confirmation() {
    let mut w = World::new();
    let stb = key("STB1");
    let id = w.issue(&stb, dt(1_000_000));
    assert_eq!(w.book[&id].amount, dt(1_000_000));
    assert_eq!(w.supply(Currency::DT), u128::from(dt(1_000_000).tiyn()));
}

#[test]
fn issue_not_signed_by_the_issuer_is_rejected() {
    let w = World::new();
    let stb = key("STB1");
    let body =
        w.body(vec![], vec![std_token(&stb, dt(10))], Command::Issue { cbs_reference: CbsRef::new("C1").unwrap() });
    let tx = w.signed(body.clone(), &[&stb]);
    assert!(matches!(w.check(&tx), Err(Rejection::UnexpectedSignature { .. })));
    let tx = w.signed(body, &[]);
    assert_eq!(w.check(&tx), Err(Rejection::MissingSignature { signer: w.nbk.public_key() }));
}

#[test]
fn issue_rules_refuse_inputs_marked_outputs_and_unknown_currencies() {
    let mut w = World::new();
    let stb = key("STB1");
    let t = w.issue(&stb, dt(10));
    let cbs = || Command::Issue { cbs_reference: CbsRef::new("C2").unwrap() };
    let tx = w.signed(w.body(vec![t], vec![std_token(&stb, dt(10))], cbs()), &[&w.nbk]);
    assert_eq!(w.check(&tx), Err(Rejection::IssueWithInputs));

    let vat = with_marking(std_token(&stb, dt(5)), Marking::Vat);
    let tx = w.signed(w.body(vec![], vec![vat], cbs()), &[&w.nbk]);
    assert!(matches!(w.check(&tx), Err(Rejection::OutputNotStandard { output: 0, .. })));

    let mut odd = std_token(&stb, dt(5));
    odd.currency = Currency::new("USD").unwrap();
    let tx = w.signed(w.body(vec![], vec![odd], cbs()), &[&w.nbk]);
    assert!(matches!(w.check(&tx), Err(Rejection::UnknownCurrency { .. })));
}

#[test]
fn redeem_destroys_issuer_held_dt_and_returns_change() {
    let mut w = World::new();
    let nbk = w.nbk.clone();
    let t = w.issue(&nbk, dt(1_000));
    let body =
        w.body(vec![t], vec![std_token(&nbk, dt(400))], Command::Redeem { cbs_reference: CbsRef::new("R1").unwrap() });
    let tx = w.signed(body, &[&nbk]);
    w.apply(&tx).unwrap();
    assert_eq!(w.supply(Currency::DT), u128::from(dt(400).tiyn()));
    assert_eq!(w.redeemed[&Currency::DT], u128::from(dt(600).tiyn()));
}

#[test]
fn redeem_of_a_banks_tokens_or_of_nothing_is_rejected() {
    let mut w = World::new();
    let stb = key("STB1");
    let nbk = w.nbk.clone();
    let t = w.issue(&stb, dt(100));
    let r = || Command::Redeem { cbs_reference: CbsRef::new("R2").unwrap() };
    let tx = w.signed(w.body(vec![t], vec![], r()), &[&nbk]);
    assert_eq!(w.check(&tx), Err(Rejection::RedeemNotIssuerHeld { input: 0 }));
    let n = w.issue(&nbk, dt(100));
    let tx = w.signed(w.body(vec![n], vec![std_token(&nbk, dt(100))], r()), &[&nbk]);
    assert_eq!(w.check(&tx), Err(Rejection::NothingRedeemed));
}

#[test]
fn paying_150_from_a_5000_token_leaves_4850_change() {
    // The seed's "Token-based approach": a 5 000 DT token pays a 150 DT bus fare.
    let mut w = World::new();
    let (user, bus) = (key("user"), key("bus"));
    let t = w.issue(&user, dt(5_000));
    let body = w.body(vec![t], vec![std_token(&bus, dt(150)), std_token(&user, dt(4_850))], Command::Transfer);
    let tx = w.signed(body, &[&user]);
    let outs = w.apply(&tx).unwrap();
    assert_eq!(w.book[&outs[0]].amount, dt(150));
    assert_eq!(w.book[&outs[1]].amount, dt(4_850));
    assert_eq!(w.balance(&user, TokenKind::Standard), dt(4_850));
    assert_eq!(w.balance(&bus, TokenKind::Standard), dt(150));
    assert!(w.spent.contains_key(&t), "the 5 000 token is consumed whole");
}

#[test]
fn tokens_merge_and_pay_several_recipients_on_several_nodes() {
    let mut w = World::new();
    let (rider, driver, operator, tax) = (key("rider"), key("driver"), key("operator"), key("tax"));
    let a = w.issue(&rider, dt(300));
    let b = w.issue(&rider, dt(700));
    let mut to_operator = std_token(&operator, dt(150));
    to_operator.host = node("STB2");
    let mut to_tax = std_token(&tax, dt(100));
    to_tax.host = node("TREASURY");
    let body = w.body(vec![a, b], vec![std_token(&driver, dt(750)), to_operator, to_tax], Command::Transfer);
    let tx = w.signed(body, &[&rider]);
    w.apply(&tx).unwrap();
    assert_eq!(w.balance(&rider, TokenKind::Standard), Amount::ZERO);
    assert_eq!(w.balance(&driver, TokenKind::Standard), dt(750));
}

#[test]
fn value_must_be_conserved() {
    let mut w = World::new();
    let (a, b) = (key("a"), key("b"));
    let t = w.issue(&a, dt(100));
    let tx = w.signed(w.body(vec![t], vec![std_token(&b, dt(101))], Command::Transfer), &[&a]);
    assert_eq!(
        w.check(&tx),
        Err(Rejection::ValueNotConserved { currency: Currency::DT, inputs: dt(100), outputs: dt(101) })
    );
}

#[test]
fn overflowing_outputs_are_rejected_not_wrapped() {
    let mut w = World::new();
    let (a, b) = (key("a"), key("b"));
    let t = w.issue(&a, dt(100));
    let huge = Token::standard(Currency::DT, Amount::MAX, addr(&b), node("STB1"));
    let tx = w.signed(w.body(vec![t], vec![huge.clone(), huge], Command::Transfer), &[&a]);
    assert_eq!(w.check(&tx), Err(Rejection::Overflow));
}

#[test]
fn duplicate_inputs_are_rejected() {
    let mut w = World::new();
    let (a, b) = (key("a"), key("b"));
    let t = w.issue(&a, dt(100));
    let tx = w.signed(w.body(vec![t, t], vec![std_token(&b, dt(200))], Command::Transfer), &[&a]);
    assert_eq!(w.check(&tx), Err(Rejection::DuplicateInput { input: 1 }));
}

#[test]
fn a_spent_token_cannot_be_spent_again_in_the_model() {
    let mut w = World::new();
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let t = w.issue(&a, dt(100));
    w.apply(&w.signed(w.body(vec![t], vec![std_token(&b, dt(100))], Command::Transfer), &[&a])).unwrap();
    let again = w.signed(w.body(vec![t], vec![std_token(&c, dt(100))], Command::Transfer), &[&a]);
    assert_eq!(w.apply(&again), Err(Rejection::InputsNotResolved { expected: 1, resolved: 0 }));
}

#[test]
fn zero_amounts_and_weak_owner_keys_are_rejected() {
    let mut w = World::new();
    let (a, b) = (key("a"), key("b"));
    let t = w.issue(&a, dt(100));
    let tx =
        w.signed(w.body(vec![t], vec![std_token(&b, dt(100)), std_token(&b, Amount::ZERO)], Command::Transfer), &[&a]);
    assert_eq!(w.check(&tx), Err(Rejection::ZeroAmount { output: 1 }));
    // The identity point: a small-order key nobody should be able to own.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = Token::standard(Currency::DT, dt(100), Address(dtenge_crypto::PublicKey(identity)), node("STB1"));
    let tx = w.signed(w.body(vec![t], vec![weak], Command::Transfer), &[&a]);
    assert_eq!(w.check(&tx), Err(Rejection::InvalidOwnerKey { output: 0 }));
}

#[test]
fn every_input_owner_must_sign_and_no_one_else() {
    let mut w = World::new();
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let ta = w.issue(&a, dt(100));
    let tb = w.issue(&b, dt(100));
    let body = w.body(vec![ta, tb], vec![std_token(&c, dt(200))], Command::Transfer);
    assert_eq!(w.check(&w.signed(body.clone(), &[&a])), Err(Rejection::MissingSignature { signer: b.public_key() }));
    assert_eq!(
        w.check(&w.signed(body.clone(), &[&a, &b, &c])),
        Err(Rejection::UnexpectedSignature { signer: c.public_key() })
    );
    assert_eq!(
        w.check(&w.signed(body.clone(), &[&a, &a])),
        Err(Rejection::DuplicateSignature { signer: a.public_key() })
    );
    assert!(w.check(&w.signed(body, &[&a, &b])).is_ok());
}

#[test]
fn a_forged_signature_is_rejected() {
    let mut w = World::new();
    let (a, b, mallory) = (key("a"), key("b"), key("mallory"));
    let t = w.issue(&a, dt(100));
    let mut tx = w.signed(w.body(vec![t], vec![std_token(&b, dt(100))], Command::Transfer), &[&a]);
    // Mallory signs but claims to be `a`.
    let forged = mallory.sign(&tx.id().signing_message());
    tx.signatures = vec![TxSignature { signer: a.public_key(), signature: forged }].try_into().unwrap();
    assert_eq!(w.check(&tx), Err(Rejection::BadSignature { signer: a.public_key() }));
}

/// Several transactions' signatures verified in one batch give each the
/// verdict it gets alone: a forgery is pinned on its own transaction only.
#[test]
fn signatures_of_several_transactions_verify_together_with_each_verdict_its_own() {
    let mut w = World::new();
    let (a, b, mallory) = (key("a"), key("b"), key("mallory"));
    let txs: Vec<Transaction> = (0..4)
        .map(|i| {
            let t = w.issue(&a, dt(100 + i));
            let mut tx = w.signed(w.body(vec![t], vec![std_token(&b, dt(100 + i))], Command::Transfer), &[&a]);
            if i == 2 {
                let forged = mallory.sign(&tx.id().signing_message());
                tx.signatures = vec![TxSignature { signer: a.public_key(), signature: forged }].try_into().unwrap();
            }
            tx
        })
        .collect();
    let checked: Vec<dtenge_ledger::Checked> =
        txs.iter().map(|tx| dtenge_ledger::check(tx, &w.resolve(tx), &w.ctx()).unwrap()).collect();
    let verdicts = dtenge_ledger::verify_each(&checked.iter().collect::<Vec<_>>(), &Ed25519);
    let alone: Vec<_> = checked.iter().map(|c| dtenge_ledger::verify(c, &Ed25519)).collect();
    assert_eq!(verdicts, alone);
    assert_eq!(verdicts[2], Err(Rejection::BadSignature { signer: a.public_key() }));
    assert!(verdicts.iter().enumerate().all(|(i, v)| i == 2 || v.is_ok()));
    assert!(dtenge_ledger::verify_each(&[&checked[0], &checked[3]], &Ed25519).iter().all(Result::is_ok));

    // A batch run elsewhere (with a notary's receipt roots after these
    // items): a failure past the transactions' own items changes no verdict.
    let all: Vec<&dtenge_ledger::Checked> = checked.iter().collect();
    let items = dtenge_ledger::signature_items(&all);
    let forged_at = checked[..2].iter().map(|c| c.signatures.len()).sum::<usize>();
    assert_eq!(dtenge_ledger::verdicts(&all, &[forged_at]), verdicts);
    assert_eq!(dtenge_ledger::verdicts(&all, &[forged_at, items.len(), items.len() + 1]), verdicts);
    assert!(dtenge_ledger::verdicts(&all, &[items.len()]).iter().all(Result::is_ok));
}

#[test]
fn a_signature_for_another_transaction_does_not_carry_over() {
    let mut w = World::new();
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let t = w.issue(&a, dt(100));
    let honest = w.signed(w.body(vec![t], vec![std_token(&b, dt(100))], Command::Transfer), &[&a]);
    let mut redirected = Transaction::unsigned(w.body(vec![t], vec![std_token(&c, dt(100))], Command::Transfer));
    redirected.signatures = honest.signatures.clone();
    assert_eq!(w.check(&redirected), Err(Rejection::BadSignature { signer: a.public_key() }));
}

#[test]
fn time_window_is_enforced() {
    let mut w = World::new();
    let (a, b) = (key("a"), key("b"));
    let t = w.issue(&a, dt(100));
    let mut body = w.body(vec![t], vec![std_token(&b, dt(100))], Command::Transfer);
    body.window = TimeWindow { not_before: w.now.plus_millis(1), not_after: w.now.plus_millis(HOUR_MS) };
    assert!(matches!(w.check(&w.signed(body.clone(), &[&a])), Err(Rejection::NotYetValid { .. })));
    body.window = TimeWindow { not_before: Timestamp(w.now.0 - 2 * HOUR_MS), not_after: Timestamp(w.now.0 - 1) };
    assert!(matches!(w.check(&w.signed(body.clone(), &[&a])), Err(Rejection::WindowExpired { .. })));
    body.window = TimeWindow { not_before: w.now, not_after: w.now.plus_days(2) };
    assert!(matches!(w.check(&w.signed(body.clone(), &[&a])), Err(Rejection::WindowTooLong { .. })));
    body.window = TimeWindow { not_before: w.now.plus_millis(5), not_after: w.now };
    assert_eq!(w.check(&w.signed(body, &[&a])), Err(Rejection::WindowMalformed));
}

#[test]
fn attestations_on_commands_that_take_none_are_rejected() {
    let mut w = World::new();
    let (a, b) = (key("a"), key("b"));
    let t = w.issue(&a, dt(100));
    let tx = w.signed(w.body(vec![t], vec![std_token(&b, dt(100))], Command::Transfer), &[&a]);
    let tx = w.attested(tx, Statement::EventCancelled { event: EventId::new("E").unwrap() });
    assert!(matches!(w.check(&tx), Err(Rejection::UnexpectedAttestation { .. })));
}

#[test]
fn every_rejection_has_a_distinct_stable_code() {
    use std::collections::BTreeSet;
    let pk = key("a").public_key();
    let samples = [
        Rejection::NoInputs { command: "x" },
        Rejection::IssueWithInputs,
        Rejection::DuplicateInput { input: 0 },
        Rejection::WindowMalformed,
        Rejection::MissingSignature { signer: pk },
        Rejection::BadSignature { signer: pk },
        Rejection::Overflow,
        Rejection::RecipientNotAllowed { output: 0, level: 1 },
        Rejection::VatNotUsedFirst { kept: dt(1) },
        Rejection::PvpRateMismatch { expected: dt(1), actual: dt(2) },
    ];
    let codes: BTreeSet<u16> = samples.iter().map(Rejection::code).collect();
    assert_eq!(codes.len(), samples.len());
    assert_eq!(Rejection::DuplicateInput { input: 0 }.code(), 104);
    assert_eq!(Rejection::RecipientNotAllowed { output: 0, level: 1 }.code(), 802);
}
