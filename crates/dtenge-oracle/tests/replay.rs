//! Replay determinism: the journal rebuilds the live state exactly, from an
//! empty state or from a borsh snapshot plus the records after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_oracle::*;
use dtenge_types::*;
use support::*;

/// A day of oracle work touching every kind of record.
fn busy_world() -> (World, usize) {
    let mut w = World::new();
    let campaign = EventSpec {
        id: event_id("CROWD-1"),
        kind: EventKind::Campaign { target: dt(100) },
        sender: None,
        sender_node: None,
        recipient: addr("FUND"),
        recipient_node: node("STB2"),
        amount: None,
        valid_until: w.now.plus_days(1),
    };
    w.run(w.oracle.register_event(&node(EVENTS), campaign.clone(), w.now));
    let single = EventSpec {
        id: event_id("IFA-1"),
        kind: EventKind::Single,
        sender: Some(addr("SEC")),
        sender_node: None,
        recipient: addr("FARMER"),
        recipient_node: node("STB2"),
        amount: Some(dt(50)),
        valid_until: w.now.plus_days(30),
    };
    w.run(w.oracle.register_event(&node(EVENTS), single.clone(), w.now));
    w.run(w.oracle.report_occurrence(&node(EVENTS), &single.id, None, w.now));

    // A campaign contribution, confirmed.
    let funds = w.genesis(token("ALICE", dt(150), "STB1"));
    let mut held = token("ALICE", dt(150), "STB1");
    held.encumbrance = Some(Encumbrance::Hold(Hold {
        event: campaign.id.clone(),
        recipient: campaign.recipient,
        recipient_node: campaign.recipient_node.clone(),
        valid_until: campaign.hold_valid_until(),
        kind: HoldKind::Single,
    }));
    let body = w.body(vec![funds], vec![held], Command::Hold { event: campaign.id.clone() });
    let mut tx = w.signed(body, &["ALICE"]);
    w.attest(&mut tx, AttestRequest::Plain).unwrap();
    w.commit_and_confirm(&tx);

    // Parameter, contract, a reserved payment and an amendment.
    let p = ParameterId::new("P-1").unwrap();
    let c = ContractNo::new("C-1").unwrap();
    w.run(w.oracle.register_parameter(&node(PORTAL), p.clone(), addr("GA"), node("TREASURY"), "Order 1"));
    let contract = Contract {
        number: c.clone(),
        parameter: p.clone(),
        sender: addr("GA"),
        recipient: addr("SUPPLIER"),
        max_transfer: dt(1_000),
        max_cashout: dt(0),
        valid_until: w.now.plus_days(10),
        final_recipient: true,
    };
    w.run(w.oracle.register_contract(&node(PORTAL), contract, w.now));
    let input = w_token(&mut w);
    let body = w.body(
        vec![input],
        vec![token("SUPPLIER", dt(400), "STB1")],
        Command::ContractPayment { parameter: p.clone(), contract: c.clone() },
    );
    let request = AttestRequest::ContractPayment { purpose: ContractPurpose::Transfer };
    let (_, record) = w.oracle.attest(body.id(), &body, &request, w.now).unwrap();
    w.run(Ok(record.unwrap()));
    let amendment =
        ContractAmendment { max_transfer: dt(2_000), max_cashout: dt(10), valid_until: w.now.plus_days(20) };
    w.run(w.oracle.amend_contract(&node(PORTAL), &p, &c, amendment, w.now));

    // An invoice reserved then released.
    let invoice = Invoice {
        id: InvoiceId::new("EI-9").unwrap(),
        seller: addr("LE2"),
        buyer: addr("LE1"),
        net: dt(10),
        vat: dt(1),
    };
    w.run(w.oracle.register_invoice(&node(TAX), invoice.clone()));
    let input = w_token(&mut w);
    let body =
        w.body(vec![input], vec![token("LE2", dt(11), "STB1")], Command::PayInvoice { invoice: invoice.id.clone() });
    let (_, record) = w.oracle.attest(body.id(), &body, &AttestRequest::Plain, w.now).unwrap();
    w.run(Ok(record.unwrap()));
    let snapshot_at = w.journal.len();
    w.run(w.oracle.release(body.id()));

    // A rate, a cancellation, and the campaign settled.
    let rate = FxRate {
        base: Currency::DT,
        quote: Currency::new("XCB").unwrap(),
        numerator: 3,
        denominator: 7,
        valid_until: w.now.plus_days(1),
    };
    w.run(w.oracle.set_rate(&node(FX), rate, w.now));
    let other = EventSpec { id: event_id("ESCROW-2"), ..single };
    w.run(w.oracle.register_event(&node(EVENTS), other.clone(), w.now));
    w.run(w.oracle.cancel_event(&node(EVENTS), &other.id));
    w.now = campaign.valid_until.plus_millis(1);
    let settled = w.oracle.tick(w.now);
    assert_eq!(settled.len(), 1);
    w.run_all(settled);
    (w, snapshot_at)
}

fn w_token(w: &mut World) -> TokenId {
    w.genesis(token("ANY", dt(1), "STB1"))
}

#[test]
fn replaying_the_journal_from_empty_reproduces_the_state() {
    let (w, _) = busy_world();
    assert!(w.journal.len() > 15);
    assert_eq!(w.replayed(), w.oracle);
}

#[test]
fn a_borsh_snapshot_round_trips_and_continues_with_the_rest_of_the_journal() {
    let (w, at) = busy_world();
    let bytes = borsh::to_vec(&w.oracle).unwrap();
    let restored: OracleState = borsh::from_slice(&bytes).unwrap();
    assert_eq!(restored, w.oracle);
    assert_eq!(borsh::to_vec(&restored).unwrap(), bytes, "the snapshot encoding is canonical");

    let mut prefix = OracleState::new();
    prefix.apply_all(&w.journal[..at]);
    let mut from_snapshot: OracleState = borsh::from_slice(&borsh::to_vec(&prefix).unwrap()).unwrap();
    from_snapshot.apply_all(&w.journal[at..]);
    assert_eq!(from_snapshot, w.oracle);
}

#[test]
fn every_record_round_trips_through_its_stored_format() {
    let (w, _) = busy_world();
    for record in &w.journal {
        let stored = dtenge_oracle::format::encode_record(record);
        assert_eq!(&dtenge_oracle::format::decode_record(&stored).unwrap(), record);
        // As release 9e7a3dd stored it: untagged.
        let untagged = borsh::to_vec(record).unwrap();
        assert_eq!(&dtenge_oracle::format::decode_record(&untagged).unwrap(), record);
    }
}

#[test]
fn applying_a_confirm_twice_changes_nothing() {
    let (mut w, _) = busy_world();
    let tx = *w.oracle.reservations().next().unwrap().0;
    let confirm = w.oracle.confirm(tx).unwrap();
    w.oracle.apply(&confirm);
    let once = w.oracle.clone();
    w.oracle.apply(&confirm);
    assert_eq!(w.oracle, once);
}
