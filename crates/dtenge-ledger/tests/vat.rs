//! Digital VAT (SPEC §4.2.3): the seed's worked chain and the mistakes around it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_crypto::SecretKey;
use dtenge_ledger::Rejection;
use dtenge_types::*;
use support::*;

fn vat(owner: &SecretKey, amount: Amount) -> Token {
    with_marking(std_token(owner, amount), Marking::Vat)
}

fn invoice(id: &str, seller: &SecretKey, buyer: &SecretKey, net: Amount, vat_amount: Amount) -> Statement {
    Statement::Invoice {
        invoice: InvoiceId::new(id).unwrap(),
        seller: addr(seller),
        buyer: addr(buyer),
        net,
        vat: vat_amount,
    }
}

fn pay(w: &World, buyer: &SecretKey, inputs: Vec<TokenId>, outputs: Vec<Token>, st: Statement) -> Transaction {
    let Statement::Invoice { invoice: id, .. } = &st else { unreachable!() };
    let body = w.body(inputs, outputs, Command::PayInvoice { invoice: id.clone() });
    w.attested(w.signed(body, &[buyer]), st)
}

/// Gives `owner` a VAT token the only way one can arise: an e-invoice paid to it.
fn give_vat(w: &mut World, owner: &SecretKey, amount: Amount) -> TokenId {
    let buyer = key("VAT-SOURCE");
    let t = w.issue(&buyer, amount);
    let st = invoice(&format!("EI-SRC-{}", w.book.len()), owner, &buyer, Amount::ZERO, amount);
    let tx = pay(w, &buyer, vec![t], vec![vat(owner, amount)], st);
    w.apply(&tx).expect("VAT source")[0]
}

fn mine(w: &World, owner: &SecretKey) -> Vec<TokenId> {
    w.book.iter().filter(|(_, t)| t.owner == addr(owner)).map(|(id, _)| *id).collect()
}

#[test]
fn the_seeds_vat_chain_ends_with_the_tax_authority_holding_standard_tokens() {
    let mut w = World::new();
    let (le1, le2, le3) = (key("LE1"), key("LE2"), key("LE3"));
    let tax = w.tax.clone();
    let t1 = w.issue(&le1, dt(2_000));

    // LE1 pays LE2's EI of 1 120 (VAT 120) with standard tokens: 120 are marked VAT.
    let st = invoice("EI-1", &le2, &le1, dt(1_000), dt(120));
    let tx =
        pay(&w, &le1, vec![t1], vec![std_token(&le2, dt(1_000)), vat(&le2, dt(120)), std_token(&le1, dt(880))], st);
    w.apply(&tx).expect("EI-1");
    assert_eq!(w.balance(&le2, TokenKind::Standard), dt(1_000));
    assert_eq!(w.balance(&le2, TokenKind::Vat), dt(120));

    // LE2 pays LE3's EI of 560 (VAT 60) with 500 standard + 60 of its own VAT tokens.
    let st = invoice("EI-2", &le3, &le2, dt(500), dt(60));
    let tx = pay(
        &w,
        &le2,
        mine(&w, &le2),
        vec![std_token(&le3, dt(500)), vat(&le3, dt(60)), std_token(&le2, dt(500)), vat(&le2, dt(60))],
        st,
    );
    w.apply(&tx).expect("EI-2");
    assert_eq!(w.balance(&le3, TokenKind::Standard), dt(500));
    assert_eq!(w.balance(&le3, TokenKind::Vat), dt(60));
    assert_eq!(w.balance(&le2, TokenKind::Vat), dt(60));

    // LE2 and LE3 each pay 60 VAT to the tax authority, where it becomes standard.
    for payer in [&le2, &le3] {
        let vat_tokens: Vec<TokenId> = w
            .book
            .iter()
            .filter(|(_, t)| t.owner == addr(payer) && t.kind() == TokenKind::Vat)
            .map(|(id, _)| *id)
            .collect();
        let body = w.body(
            vat_tokens,
            vec![Token::standard(Currency::DT, dt(60), addr(&tax), node("TREASURY"))],
            Command::PayVat,
        );
        w.apply(&w.signed(body, &[payer])).expect("VAT to SRC");
    }
    assert_eq!(w.balance(&tax, TokenKind::Standard), dt(120));
    assert_eq!(w.balance(&tax, TokenKind::Vat), Amount::ZERO);
    assert_eq!(w.balance(&le2, TokenKind::Vat), Amount::ZERO);
    assert_eq!(w.balance(&le3, TokenKind::Vat), Amount::ZERO);
}

#[test]
fn an_invoice_paid_with_wrong_amounts_is_rejected() {
    let mut w = World::new();
    let (le1, le2) = (key("LE1"), key("LE2"));
    let t = w.issue(&le1, dt(2_000));
    let st = invoice("EI-1", &le2, &le1, dt(1_000), dt(120));
    let tx = pay(&w, &le1, vec![t], vec![std_token(&le2, dt(1_120)), std_token(&le1, dt(880))], st.clone());
    assert_eq!(
        w.check(&tx),
        Err(Rejection::InvoiceAmountMismatch { part: "net", expected: dt(1_000), actual: dt(1_120) })
    );
    let tx = pay(
        &w,
        &le1,
        vec![t],
        vec![std_token(&le2, dt(1_000)), vat(&le2, dt(100)), std_token(&le1, dt(900))],
        st.clone(),
    );
    assert_eq!(w.check(&tx), Err(Rejection::InvoiceAmountMismatch { part: "VAT", expected: dt(120), actual: dt(100) }));
    // Paid by someone other than the invoice's buyer.
    let other = key("LE9");
    let t9 = w.issue(&other, dt(2_000));
    let tx =
        pay(&w, &other, vec![t9], vec![std_token(&le2, dt(1_000)), vat(&le2, dt(120)), std_token(&other, dt(880))], st);
    assert_eq!(w.check(&tx), Err(Rejection::AttestationMismatch { field: "buyer" }));
}

#[test]
fn vat_tokens_to_a_non_tax_payee_are_rejected() {
    let mut w = World::new();
    let (le2, shop) = (key("LE2"), key("SHOP"));
    let v = give_vat(&mut w, &le2, dt(120));
    let body = w.body(vec![v], vec![std_token(&shop, dt(120))], Command::Transfer);
    assert!(matches!(w.check(&w.signed(body, &[&le2])), Err(Rejection::MarkedInput { marking: "VAT", .. })));
    let body = w.body(vec![v], vec![std_token(&shop, dt(120))], Command::PayVat);
    assert_eq!(w.check(&w.signed(body, &[&le2])), Err(Rejection::VatRecipientNotTaxAuthority { output: 0 }));
    let body = w.body(vec![v], vec![vat(&shop, dt(120))], Command::PayVat);
    assert_eq!(w.check(&w.signed(body, &[&le2])), Err(Rejection::VatRecipientNotTaxAuthority { output: 0 }));
}

#[test]
fn own_vat_tokens_are_used_before_standard_tokens_are_marked() {
    let mut w = World::new();
    let (le2, le3) = (key("LE2"), key("LE3"));
    let s = w.issue(&le2, dt(1_000));
    let v = give_vat(&mut w, &le2, dt(120));
    // Marks 60 of standard as VAT while keeping its own 120 VAT as change.
    let st = invoice("EI-2", &le3, &le2, dt(500), dt(60));
    let tx = pay(
        &w,
        &le2,
        vec![s, v],
        vec![std_token(&le3, dt(500)), vat(&le3, dt(60)), std_token(&le2, dt(440)), vat(&le2, dt(120))],
        st,
    );
    assert_eq!(w.check(&tx), Err(Rejection::VatNotUsedFirst { kept: dt(120) }));
}

#[test]
fn vat_tokens_cannot_turn_standard_through_an_invoice() {
    let mut w = World::new();
    let (le2, le3) = (key("LE2"), key("LE3"));
    let v = give_vat(&mut w, &le2, dt(600));
    // Pays the net part with VAT tokens.
    let st = invoice("EI-3", &le3, &le2, dt(500), dt(60));
    let tx = pay(&w, &le2, vec![v], vec![std_token(&le3, dt(500)), vat(&le3, dt(60)), vat(&le2, dt(40))], st);
    assert_eq!(w.check(&tx), Err(Rejection::VatUnmarked { vat_in: dt(600), vat_out: dt(100) }));
}

#[test]
fn vat_change_stays_vat_when_paying_the_tax_authority() {
    let mut w = World::new();
    let le2 = key("LE2");
    let tax = w.tax.clone();
    let v = give_vat(&mut w, &le2, dt(120));
    let body = w.body(
        vec![v],
        vec![Token::standard(Currency::DT, dt(60), addr(&tax), node("TREASURY")), std_token(&le2, dt(60))],
        Command::PayVat,
    );
    assert_eq!(w.check(&w.signed(body, &[&le2])), Err(Rejection::VatRecipientNotTaxAuthority { output: 1 }));
}
