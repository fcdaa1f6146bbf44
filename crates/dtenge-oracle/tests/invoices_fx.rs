//! E-invoices (SPEC §4.2.3) paid once, with competing payments held off while
//! one is reserved; FX rates (SPEC §9) attested for PvP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_ledger::Rejection;
use dtenge_oracle::*;
use dtenge_types::*;
use support::*;

fn ei() -> InvoiceId {
    InvoiceId::new("ESF-000123").unwrap()
}

fn vat_token(owner: &str, amount: Amount) -> Token {
    let mut t = token(owner, amount, "STB2");
    t.marking = Some(Marking::Vat);
    t
}

/// LE2 invoices LE1 for 1 120 (VAT 120); LE1 holds 2 000 standard.
fn invoiced() -> (World, TokenId) {
    let mut w = World::new();
    let invoice = Invoice { id: ei(), seller: addr("LE2"), buyer: addr("LE1"), net: dt(1_000), vat: dt(120) };
    w.run(w.oracle.register_invoice(&node(TAX), invoice.clone()));
    assert!(matches!(w.oracle.register_invoice(&node(TAX), invoice), Err(OracleError::DuplicateInvoice { .. })));
    let funds = w.genesis(token("LE1", dt(2_000), "STB1"));
    (w, funds)
}

fn payment(w: &mut World, funds: TokenId, net: Amount) -> Transaction {
    let change = dt(2_000).checked_sub(net).unwrap().checked_sub(dt(120)).unwrap();
    let body = w.body(
        vec![funds],
        vec![token("LE2", net, "STB2"), vat_token("LE2", dt(120)), token("LE1", change, "STB1")],
        Command::PayInvoice { invoice: ei() },
    );
    w.signed(body, &["LE1"])
}

#[test]
fn an_invoice_is_paid_once() {
    let (mut w, funds) = invoiced();
    let mut tx = payment(&mut w, funds, dt(1_000));
    let statement = w.attest(&mut tx, AttestRequest::Plain).unwrap();
    assert_eq!(
        statement,
        Statement::Invoice { invoice: ei(), seller: addr("LE2"), buyer: addr("LE1"), net: dt(1_000), vat: dt(120) }
    );
    assert_eq!(w.oracle.invoice(&ei()).unwrap().reserved_by, Some(tx.id()));
    w.commit_and_confirm(&tx);
    let state = w.oracle.invoice(&ei()).unwrap();
    assert_eq!((state.paid_by, state.reserved_by), (Some(tx.id()), None));
    assert_eq!(w.balance("LE2", TokenKind::Vat), dt(120));

    let other = w.genesis(token("LE1", dt(2_000), "STB1"));
    let mut second = payment(&mut w, other, dt(1_000));
    assert_eq!(
        w.attest(&mut second, AttestRequest::Plain),
        Err(OracleError::InvoicePaid { invoice: ei(), tx: tx.id() })
    );
}

#[test]
fn a_competing_payment_waits_until_the_reserved_one_is_released() {
    let (mut w, funds) = invoiced();
    let mut first = payment(&mut w, funds, dt(1_000));
    w.attest(&mut first, AttestRequest::Plain).unwrap();
    let mut second = payment(&mut w, funds, dt(1_000));
    assert_eq!(
        w.attest(&mut second, AttestRequest::Plain),
        Err(OracleError::InvoiceReserved { invoice: ei(), tx: first.id() })
    );
    // The first never reaches the notary; after its window it is released.
    w.advance(2 * HOUR_MS);
    assert_eq!(w.oracle.due_reservations(w.now), vec![first.id()]);
    w.run(w.oracle.release(first.id()));
    assert_eq!(w.oracle.invoice(&ei()).unwrap().reserved_by, None);

    let mut third = payment(&mut w, funds, dt(1_000));
    w.attest(&mut third, AttestRequest::Plain).unwrap();
    w.commit_and_confirm(&third);
    assert_eq!(w.oracle.invoice(&ei()).unwrap().paid_by, Some(third.id()));
}

#[test]
fn a_payment_that_differs_from_the_attested_invoice_is_refused_by_the_kernel() {
    let (mut w, funds) = invoiced();
    let mut honest = payment(&mut w, funds, dt(1_000));
    let statement = w.attest(&mut honest, AttestRequest::Plain).unwrap();
    let mut short = payment(&mut w, funds, dt(900));
    short.attestations.try_push(sign_statement(&w.oracle_key, short.id(), statement)).unwrap();
    assert!(matches!(w.validate(&short), Err(Rejection::InvoiceAmountMismatch { part: "net", .. })));
    // The honest one's attestation moved to another transaction does not verify.
    let mut moved = payment(&mut w, funds, dt(1_000));
    moved.attestations = honest.attestations.clone();
    assert!(matches!(w.validate(&moved), Err(Rejection::BadAttestation { .. })));
    assert!(w.validate(&honest).is_ok());
}

fn xcb() -> Currency {
    Currency::new("XCB").unwrap()
}

fn pvp(w: &mut World) -> Transaction {
    let mut a_funds = token("A", dt(1_000), "STB1");
    a_funds.currency = Currency::DT;
    let mut b_funds = token("B", dt(500), "STB1");
    b_funds.currency = xcb();
    let a = w.genesis(a_funds);
    let b = w.genesis(b_funds);
    let mut to_a = token("A", dt(500), "STB1");
    to_a.currency = xcb();
    let body = w.body(vec![a, b], vec![token("B", dt(1_000), "STB1"), to_a], Command::Pvp);
    w.signed(body, &["A", "B"])
}

#[test]
fn a_current_fx_rate_is_attested_for_pvp_and_checked_by_the_kernel() {
    let mut w = World::new();
    let mut tx = pvp(&mut w);
    assert_eq!(
        w.oracle.attest(tx.id(), &tx.body, &AttestRequest::Plain, w.now),
        Err(OracleError::NoRate { first: Currency::DT, second: xcb() })
    );
    let rate = FxRate {
        base: Currency::DT,
        quote: xcb(),
        numerator: 1,
        denominator: 2,
        valid_until: w.now.plus_millis(DAY_MS),
    };
    assert!(matches!(
        w.oracle.set_rate(&node(FX), FxRate { denominator: 0, ..rate.clone() }, w.now),
        Err(OracleError::InvalidInput { .. })
    ));
    w.run(w.oracle.set_rate(&node(FX), rate, w.now));
    let statement = w.attest(&mut tx, AttestRequest::Pvp { base: Currency::DT }).unwrap();
    assert_eq!(statement, Statement::FxRate { base: Currency::DT, quote: xcb(), numerator: 1, denominator: 2 });
    assert_eq!(w.oracle.reservations().count(), 0, "a rate reserves nothing");
    w.commit(&tx).expect("kernel accepts the exchange at the attested rate");

    // Stored one way, found from a plain request either way; the other
    // direction asked for explicitly is not there.
    let mut again = pvp(&mut w);
    assert!(w.oracle.attest(again.id(), &again.body, &AttestRequest::Plain, w.now).is_ok());
    assert!(matches!(w.attest(&mut again, AttestRequest::Pvp { base: xcb() }), Err(OracleError::NoRate { .. })));

    // After its validity the rate is no longer attested.
    w.advance(2 * DAY_MS);
    let mut late = pvp(&mut w);
    assert!(matches!(w.attest(&mut late, AttestRequest::Plain), Err(OracleError::NoRate { .. })));
    assert!(w.oracle.rate(Currency::DT, xcb(), w.now).is_none());
}
