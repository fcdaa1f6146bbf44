//! Events and holds (SPEC §4.1, §4.4): provider gating, single and recurring
//! holds released on reported occurrences, campaigns settled at their
//! deadline, cancellation — each attestation run through the real kernel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use dtenge_ledger::Rejection;
use dtenge_oracle::*;
use dtenge_types::*;
use support::*;

fn fixed_event(w: &World, id: &str, kind: EventKind, amount: Amount) -> EventSpec {
    EventSpec {
        id: event_id(id),
        kind,
        sender: Some(addr("SEC")),
        sender_node: Some(node("STB1")),
        recipient: addr("FARMER"),
        recipient_node: node("STB2"),
        amount: Some(amount),
        valid_until: w.now.plus_days(180),
    }
}

fn hold_terms(spec: &EventSpec) -> Hold {
    Hold {
        event: spec.id.clone(),
        recipient: spec.recipient,
        recipient_node: spec.recipient_node.clone(),
        valid_until: spec.hold_valid_until(),
        kind: spec.kind.hold_kind(),
    }
}

fn held(owner: &str, amount: Amount, spec: &EventSpec) -> Token {
    let mut t = token(owner, amount, "STB1");
    t.encumbrance = Some(Encumbrance::Hold(hold_terms(spec)));
    t
}

fn to_recipient(spec: &EventSpec, amount: Amount) -> Token {
    Token::standard(Currency::DT, amount, spec.recipient, spec.recipient_node.clone())
}

/// Registers the event and holds `amount` of `owner`'s funds for it; returns
/// the held token's id.
fn hold(w: &mut World, spec: &EventSpec, owner: &str, amount: Amount) -> TokenId {
    let funds = w.genesis(token(owner, amount.checked_add(dt(1_000)).unwrap(), "STB1"));
    let body = w.body(
        vec![funds],
        vec![held(owner, amount, spec), token(owner, dt(1_000), "STB1")],
        Command::Hold { event: spec.id.clone() },
    );
    let mut tx = w.signed(body, &[owner]);
    w.attest(&mut tx, AttestRequest::Plain).expect("hold attested");
    w.commit_and_confirm(&tx)[0]
}

fn release_tx(w: &mut World, spec: &EventSpec, inputs: Vec<TokenId>, outputs: Vec<Token>) -> Transaction {
    let body = w.body(inputs, outputs, Command::Release { event: spec.id.clone() });
    Transaction::unsigned(body)
}

#[test]
fn only_registered_providers_may_write_to_their_registry() {
    let mut w = World::new();
    let spec = fixed_event(&w, "IFA-1", EventKind::Single, dt(4_000));
    let stranger = node("STRANGER");
    let err = w.oracle.register_event(&stranger, spec.clone(), w.now).unwrap_err();
    assert_eq!(err, OracleError::UnknownProvider { provider: stranger });
    assert!(err.to_string().contains("Only registered providers may write"), "{err}");

    let err = w.oracle.register_event(&node(TAX), spec.clone(), w.now).unwrap_err();
    assert_eq!(err, OracleError::NotAllowed { provider: node(TAX), registry: Registry::Events });
    assert!(err.to_string().contains("SRC") && err.to_string().contains("events"), "{err}");

    let invoice = Invoice {
        id: InvoiceId::new("EI-1").unwrap(),
        seller: addr("LE2"),
        buyer: addr("LE1"),
        net: dt(1),
        vat: dt(0),
    };
    assert!(matches!(w.oracle.register_invoice(&node(EVENTS), invoice), Err(OracleError::NotAllowed { .. })));
    let rate = FxRate {
        base: Currency::DT,
        quote: Currency::new("XCB").unwrap(),
        numerator: 1,
        denominator: 2,
        valid_until: w.now.plus_days(1),
    };
    assert!(matches!(w.oracle.set_rate(&node(PORTAL), rate, w.now), Err(OracleError::NotAllowed { .. })));

    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    let err = w.oracle.report_occurrence(&node(PORTAL), &spec.id, None, w.now).unwrap_err();
    assert!(matches!(err, OracleError::NotAllowed { registry: Registry::Events, .. }));
    assert!(matches!(w.oracle.cancel_event(&node(FX), &spec.id), Err(OracleError::NotAllowed { .. })));

    // The operator grants the registry: now it may write.
    let grant = w.oracle.register_provider(node(TAX), "SRC", BTreeSet::from([Registry::Invoices, Registry::Events]));
    w.run(grant);
    let other = fixed_event(&w, "IFA-2", EventKind::Single, dt(1));
    assert!(w.oracle.register_event(&node(TAX), other, w.now).is_ok());
}

#[test]
fn registering_an_event_checks_its_terms() {
    let mut w = World::new();
    let p = node(EVENTS);
    let mut past = fixed_event(&w, "E-1", EventKind::Single, dt(1));
    past.valid_until = w.now;
    assert!(matches!(w.oracle.register_event(&p, past, w.now), Err(OracleError::NotInFuture { .. })));
    let zero = fixed_event(&w, "E-1", EventKind::Single, Amount::ZERO);
    assert!(matches!(w.oracle.register_event(&p, zero, w.now), Err(OracleError::InvalidInput { .. })));
    let spec = fixed_event(&w, "E-1", EventKind::Single, dt(1));
    w.run(w.oracle.register_event(&p, spec.clone(), w.now));
    assert_eq!(w.oracle.register_event(&p, spec, w.now), Err(OracleError::DuplicateEvent { event: event_id("E-1") }));
}

#[test]
fn single_hold_is_released_after_the_occurrence_and_only_once() {
    let mut w = World::new();
    let spec = fixed_event(&w, "IFA-2024-7731", EventKind::Single, dt(4_000));
    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    let held_id = hold(&mut w, &spec, "SEC", dt(4_000));
    assert_eq!(w.balance("SEC", TokenKind::Held), dt(4_000));
    assert_eq!(w.oracle.event(&spec.id).unwrap().held_total(), dt(4_000));

    // Before the occurrence nothing is releasable.
    let mut early = release_tx(&mut w, &spec, vec![held_id], vec![to_recipient(&spec, dt(4_000))]);
    assert_eq!(
        w.attest(&mut early, AttestRequest::Plain),
        Err(OracleError::EventNotOccurred { event: spec.id.clone() })
    );

    w.advance(DAY_MS);
    w.run(w.oracle.report_occurrence(&node(EVENTS), &spec.id, None, w.now));
    assert_eq!(w.oracle.event(&spec.id).unwrap().releasable(), dt(4_000));
    assert_eq!(
        w.oracle.report_occurrence(&node(EVENTS), &spec.id, None, w.now),
        Err(OracleError::EventAlreadyOccurred { event: spec.id.clone() })
    );

    let mut tx = release_tx(&mut w, &spec, vec![held_id], vec![to_recipient(&spec, dt(4_000))]);
    let statement = w.attest(&mut tx, AttestRequest::Plain).unwrap();
    assert_eq!(statement, Statement::EventOccurred { event: spec.id.clone(), amount: dt(4_000) });

    // A tampered release (more to the recipient, same attestation) is refused by the kernel.
    let mut tampered = tx.clone();
    tampered.body.memo = Some(Memo::new("redirected").unwrap());
    assert!(matches!(w.validate(&tampered), Err(Rejection::BadAttestation { .. })));

    w.commit_and_confirm(&tx);
    assert_eq!(w.balance("FARMER", TokenKind::Standard), dt(4_000));
    let e = w.oracle.event(&spec.id).unwrap();
    assert_eq!((e.released_total(), e.releasable()), (dt(4_000), Amount::ZERO));

    // Releasing twice is refused.
    let mut again = release_tx(&mut w, &spec, vec![held_id], vec![to_recipient(&spec, dt(4_000))]);
    assert!(matches!(
        w.attest(&mut again, AttestRequest::Plain),
        Err(OracleError::ReleaseExceedsReleasable { releasable: Amount::ZERO, .. })
    ));
}

#[test]
fn a_single_event_is_held_once() {
    let mut w = World::new();
    let spec = fixed_event(&w, "IFA-9", EventKind::Single, dt(100));
    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    let make = |w: &mut World| {
        let funds = w.genesis(token("SEC", dt(100), "STB1"));
        let body = w.body(vec![funds], vec![held("SEC", dt(100), &spec)], Command::Hold { event: spec.id.clone() });
        w.signed(body, &["SEC"])
    };
    let mut first = make(&mut w);
    let mut second = make(&mut w);
    w.attest(&mut first, AttestRequest::Plain).unwrap();
    assert!(matches!(w.attest(&mut second, AttestRequest::Plain), Err(OracleError::HoldPending { .. })));
    w.commit_and_confirm(&first);
    assert!(matches!(w.attest(&mut second, AttestRequest::Plain), Err(OracleError::AlreadyHeld { .. })));
}

#[test]
fn a_hold_with_other_terms_than_the_event_is_not_attested() {
    let mut w = World::new();
    let spec = fixed_event(&w, "IFA-3", EventKind::Single, dt(100));
    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    let funds = w.genesis(token("SEC", dt(200), "STB1"));
    let mut wrong_amount =
        w.body(vec![funds], vec![held("SEC", dt(200), &spec)], Command::Hold { event: spec.id.clone() });
    let mut tx = w.signed(wrong_amount.clone(), &["SEC"]);
    assert!(matches!(w.attest(&mut tx, AttestRequest::Plain), Err(OracleError::HoldMismatch { .. })));
    let mut other = spec.clone();
    other.recipient = addr("THIEF");
    wrong_amount.outputs = vec![held("SEC", dt(100), &other), token("SEC", dt(100), "STB1")].try_into().unwrap();
    let mut tx = w.signed(wrong_amount, &["SEC"]);
    assert!(matches!(w.attest(&mut tx, AttestRequest::Plain), Err(OracleError::HoldMismatch { .. })));
    assert_eq!(w.oracle.reservations().count(), 0);
}

#[test]
fn recurring_meals_release_one_at_a_time() {
    let mut w = World::new();
    let mut spec = fixed_event(&w, "SCHOOL-12-CANTEEN", EventKind::Recurring, dt(300));
    spec.recipient = addr("CANTEEN");
    spec.sender = Some(addr("SCHOOL"));
    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    let mut held_id = hold(&mut w, &spec, "SCHOOL", dt(300));
    assert_eq!(
        w.oracle.report_occurrence(&node(EVENTS), &spec.id, None, w.now),
        Err(OracleError::InvalidInput {
            what: "occurrence amount",
            reason: "a recurring event's occurrence names its amount (e.g. one meal)"
        })
    );

    for meal in 1..=3u64 {
        w.advance(HOUR_MS * 2);
        w.run(w.oracle.report_occurrence(&node(EVENTS), &spec.id, Some(dt(100)), w.now));
        let rest = dt(300 - meal * 100);
        let mut outputs = vec![to_recipient(&spec, dt(100))];
        if !rest.is_zero() {
            outputs.push(held("SCHOOL", rest, &spec));
        }
        let mut tx = release_tx(&mut w, &spec, vec![held_id], outputs);
        // Asking for two meals when one occurred is refused.
        if meal == 1 {
            let mut greedy = release_tx(
                &mut w,
                &spec,
                vec![held_id],
                vec![to_recipient(&spec, dt(200)), held("SCHOOL", dt(100), &spec)],
            );
            assert!(matches!(
                w.attest(&mut greedy, AttestRequest::Plain),
                Err(OracleError::ReleaseExceedsReleasable { .. })
            ));
        }
        assert_eq!(
            w.attest(&mut tx, AttestRequest::Plain).unwrap(),
            Statement::EventOccurred { event: spec.id.clone(), amount: dt(100) }
        );
        let ids = w.commit_and_confirm(&tx);
        if let Some(next) = ids.get(1) {
            held_id = *next;
        }
    }
    assert_eq!(w.balance("CANTEEN", TokenKind::Standard), dt(300));
    let e = w.oracle.event(&spec.id).unwrap();
    assert_eq!((e.occurred, e.released_total(), e.releasable()), (dt(300), dt(300), Amount::ZERO));
    assert!(matches!(
        w.oracle.report_occurrence(&node(EVENTS), &spec.id, Some(dt(1)), w.now),
        Err(OracleError::OccurrenceExceedsAmount { .. })
    ));
}

#[test]
fn a_cancelled_event_returns_its_hold_and_never_releases() {
    let mut w = World::new();
    let mut spec = fixed_event(&w, "ESCROW-77", EventKind::Single, dt(500));
    spec.sender = Some(addr("BUYER"));
    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    let held_id = hold(&mut w, &spec, "BUYER", dt(500));

    let body =
        w.body(vec![held_id], vec![token("BUYER", dt(500), "STB1")], Command::CancelHold { event: spec.id.clone() });
    let mut cancel = Transaction::unsigned(body);
    assert!(matches!(w.attest(&mut cancel.clone(), AttestRequest::Plain), Err(OracleError::EventNotCancelled { .. })));

    w.run(w.oracle.cancel_event(&node(EVENTS), &spec.id));
    assert!(matches!(
        w.oracle.report_occurrence(&node(EVENTS), &spec.id, None, w.now),
        Err(OracleError::EventClosed { status: EventStatus::Cancelled, .. })
    ));
    let reservations = w.oracle.reservations().count();
    assert_eq!(
        w.attest(&mut cancel, AttestRequest::Plain).unwrap(),
        Statement::EventCancelled { event: spec.id.clone() }
    );
    assert_eq!(w.oracle.reservations().count(), reservations, "a cancellation reserves nothing");
    w.commit(&cancel).expect("kernel returns the hold");
    assert_eq!(w.balance("BUYER", TokenKind::Standard), dt(1_500));
}

#[test]
fn an_occurred_single_event_cannot_be_cancelled() {
    let mut w = World::new();
    let spec = fixed_event(&w, "IFA-5", EventKind::Single, dt(500));
    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    w.run(w.oracle.report_occurrence(&node(EVENTS), &spec.id, None, w.now));
    assert_eq!(
        w.oracle.cancel_event(&node(EVENTS), &spec.id),
        Err(OracleError::EventAlreadyOccurred { event: spec.id.clone() })
    );
}

fn campaign(w: &mut World, target: Amount) -> EventSpec {
    let spec = EventSpec {
        id: event_id("CROWD-PARK"),
        kind: EventKind::Campaign { target },
        sender: None,
        sender_node: None,
        recipient: addr("PARK-FUND"),
        recipient_node: node("STB2"),
        amount: None,
        valid_until: w.now.plus_days(10),
    };
    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    spec
}

#[test]
fn a_campaign_that_meets_its_target_releases_every_contribution() {
    let mut w = World::new();
    let spec = campaign(&mut w, dt(1_000));
    let a = hold(&mut w, &spec, "ALICE", dt(600));
    let b = hold(&mut w, &spec, "BOB", dt(500));
    assert_eq!(w.oracle.event(&spec.id).unwrap().held_total(), dt(1_100));

    // Before the deadline: not settled, no release.
    assert!(w.oracle.tick(w.now).is_empty());
    let mut early = release_tx(&mut w, &spec, vec![a], vec![to_recipient(&spec, dt(600))]);
    assert!(matches!(w.attest(&mut early, AttestRequest::Plain), Err(OracleError::EventClosed { .. })));

    w.now = spec.valid_until.plus_millis(1);
    let settled = w.oracle.tick(w.now);
    assert_eq!(settled, vec![OracleRecord::CampaignSettled { event: spec.id.clone(), succeeded: true }]);
    w.run_all(settled);
    assert!(w.oracle.tick(w.now).is_empty(), "settled once");
    assert_eq!(w.oracle.event(&spec.id).unwrap().releasable(), dt(1_100));

    // A contribution after the deadline is refused.
    let funds = w.genesis(token("CAROL", dt(10), "STB1"));
    let body = w.body(vec![funds], vec![held("CAROL", dt(10), &spec)], Command::Hold { event: spec.id.clone() });
    let mut late = w.signed(body, &["CAROL"]);
    assert!(w.attest(&mut late, AttestRequest::Plain).is_err());

    // One release may not spend two contributors' holds.
    let mut both = release_tx(&mut w, &spec, vec![a, b], vec![to_recipient(&spec, dt(1_100))]);
    assert!(matches!(w.attest(&mut both, AttestRequest::Plain), Err(OracleError::HoldMismatch { .. })));

    for (input, amount) in [(a, dt(600)), (b, dt(500))] {
        let mut tx = release_tx(&mut w, &spec, vec![input], vec![to_recipient(&spec, amount)]);
        assert_eq!(
            w.attest(&mut tx, AttestRequest::Plain).unwrap(),
            Statement::EventOccurred { event: spec.id.clone(), amount }
        );
        w.commit_and_confirm(&tx);
    }
    assert_eq!(w.balance("PARK-FUND", TokenKind::Standard), dt(1_100));
    let mut again = release_tx(&mut w, &spec, vec![a], vec![to_recipient(&spec, dt(600))]);
    assert!(matches!(w.attest(&mut again, AttestRequest::Plain), Err(OracleError::ReleaseExceedsReleasable { .. })));
}

#[test]
fn a_campaign_that_misses_its_target_returns_every_contribution() {
    let mut w = World::new();
    let spec = campaign(&mut w, dt(2_000));
    let a = hold(&mut w, &spec, "ALICE", dt(600));
    let b = hold(&mut w, &spec, "BOB", dt(500));
    w.now = spec.valid_until.plus_millis(1);
    let settled = w.oracle.tick(w.now);
    assert_eq!(settled, vec![OracleRecord::CampaignSettled { event: spec.id.clone(), succeeded: false }]);
    w.run_all(settled);
    assert_eq!(w.oracle.event(&spec.id).unwrap().status, EventStatus::CampaignFailed);

    let mut release = release_tx(&mut w, &spec, vec![a], vec![to_recipient(&spec, dt(600))]);
    assert!(matches!(w.attest(&mut release, AttestRequest::Plain), Err(OracleError::EventClosed { .. })));

    for (input, owner, amount) in [(a, "ALICE", dt(600)), (b, "BOB", dt(500))] {
        let body =
            w.body(vec![input], vec![token(owner, amount, "STB1")], Command::CancelHold { event: spec.id.clone() });
        let mut tx = Transaction::unsigned(body);
        assert_eq!(
            w.attest(&mut tx, AttestRequest::Plain).unwrap(),
            Statement::EventCancelled { event: spec.id.clone() }
        );
        w.commit(&tx).expect("kernel returns the contribution");
        assert_eq!(w.balance(owner, TokenKind::Standard), amount.checked_add(dt(1_000)).unwrap());
    }
}

#[test]
fn a_campaign_waits_for_undecided_contributions_before_settling() {
    let mut w = World::new();
    let spec = campaign(&mut w, dt(500));
    let funds = w.genesis(token("ALICE", dt(500), "STB1"));
    let body = w.body(vec![funds], vec![held("ALICE", dt(500), &spec)], Command::Hold { event: spec.id.clone() });
    let mut tx = w.signed(body, &["ALICE"]);
    w.attest(&mut tx, AttestRequest::Plain).unwrap();
    w.now = spec.valid_until.plus_millis(1);
    assert!(w.oracle.tick(w.now).is_empty(), "a pending contribution could still meet the target");
    assert_eq!(w.oracle.due_reservations(w.now), vec![tx.id()]);
    w.run(w.oracle.confirm(tx.id()));
    assert_eq!(w.oracle.tick(w.now), vec![OracleRecord::CampaignSettled { event: spec.id.clone(), succeeded: true }]);
}

#[test]
fn asking_again_for_the_same_transaction_returns_the_same_statement_without_a_second_reservation() {
    let mut w = World::new();
    let spec = fixed_event(&w, "IFA-4", EventKind::Single, dt(100));
    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    let funds = w.genesis(token("SEC", dt(100), "STB1"));
    let body = w.body(vec![funds], vec![held("SEC", dt(100), &spec)], Command::Hold { event: spec.id.clone() });
    let (first, record) = w.oracle.attest(body.id(), &body, &AttestRequest::Plain, w.now).unwrap();
    w.run(Ok(record.expect("a hold reserves")));
    w.advance(60_000);
    let (second, again) = w.oracle.attest(body.id(), &body, &AttestRequest::Plain, w.now).unwrap();
    assert_eq!(first, second);
    assert_eq!(again, None);
    assert_eq!(w.oracle.event(&spec.id).unwrap().pending_holds.len(), 1);

    // The id must be the body's.
    let other = TxId(dtenge_crypto::hash(b"x", &[]));
    assert!(matches!(
        w.oracle.attest(other, &body, &AttestRequest::Plain, w.now),
        Err(OracleError::TxIdMismatch { .. })
    ));
}

#[test]
fn commands_without_oracle_statements_are_not_attested() {
    let mut w = World::new();
    let funds = w.genesis(token("A", dt(1), "STB1"));
    let body = w.body(vec![funds], vec![token("B", dt(1), "STB1")], Command::Transfer);
    assert_eq!(
        w.oracle.attest(body.id(), &body, &AttestRequest::Plain, w.now),
        Err(OracleError::NoAttestationNeeded { command: "transfer" })
    );
}

#[test]
fn only_the_registering_provider_reports_or_cancels_its_event() {
    let mut w = World::new();
    let spec = fixed_event(&w, "IFA-OWN-1", EventKind::Single, dt(1_000));
    w.run(w.oracle.register_event(&node(EVENTS), spec.clone(), w.now));
    // A second events provider may write to the registry, but not someone else's event.
    let other = node("SSIS-2");
    let grant = w.oracle.register_provider(other.clone(), "another subsidy system", BTreeSet::from([Registry::Events]));
    w.run(grant);
    let err = w.oracle.report_occurrence(&other, &spec.id, None, w.now).unwrap_err();
    assert!(matches!(err, OracleError::NotOwner { .. }), "{err}");
    assert!(err.to_string().contains("only its own provider"), "{err}");
    assert!(matches!(w.oracle.cancel_event(&other, &spec.id), Err(OracleError::NotOwner { .. })));
    w.run(w.oracle.report_occurrence(&node(EVENTS), &spec.id, None, w.now));
}
