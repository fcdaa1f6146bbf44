//! Marking by parameter (SPEC §4.2.2): the parameter attested for marking,
//! contract payments and cash-outs counted cumulatively against the
//! contract's maxima, reservations included, and freed when a transaction
//! expires uncommitted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_oracle::*;
use dtenge_types::*;
use support::*;

fn parameter() -> ParameterId {
    ParameterId::new("GZ-2024-ROADS-001").unwrap()
}

fn number() -> ContractNo {
    ContractNo::new("C-17").unwrap()
}

fn marking() -> Marking {
    Marking::Parameter(ParameterMarking {
        parameter: parameter(),
        initiator: addr("GA"),
        initiator_node: node("TREASURY"),
    })
}

fn marked(owner: &str, amount: Amount) -> Token {
    let mut t = token(owner, amount, "TREASURY");
    t.marking = Some(marking());
    t
}

struct Roads {
    w: World,
    /// The GA's marked funds.
    funds: TokenId,
}

/// The portal registers the parameter and a contract (transfer ≤ 5 000,
/// cash-out ≤ 1 000); the GA marks 10 000 with the oracle's attestation.
fn roads() -> Roads {
    let mut w = World::new();
    let portal = node(PORTAL);
    let record = w.oracle.register_parameter(&portal, parameter(), addr("GA"), node("TREASURY"), "Road repairs 2024");
    w.run(record);
    let contract = Contract {
        number: number(),
        parameter: parameter(),
        sender: addr("GA"),
        recipient: addr("CONTRACTOR"),
        max_transfer: dt(5_000),
        max_cashout: dt(1_000),
        valid_until: w.now.plus_days(365),
        final_recipient: false,
    };
    w.run(w.oracle.register_contract(&portal, contract, w.now));

    let standard = w.genesis(token("GA", dt(10_000), "TREASURY"));
    let body =
        w.body(vec![standard], vec![marked("GA", dt(10_000))], Command::MarkParameter { parameter: parameter() });
    let mut tx = w.signed(body, &["GA"]);
    let statement = w.attest(&mut tx, AttestRequest::Plain).unwrap();
    assert_eq!(statement, Statement::ParameterRegistered { parameter: parameter(), initiator: addr("GA") });
    assert_eq!(w.oracle.reservations().count(), 0, "marking reserves nothing");
    let funds = w.commit(&tx).expect("kernel accepts the marking")[0];
    Roads { w, funds }
}

fn pay(w: &mut World, input: TokenId, have: Amount, amount: Amount) -> Transaction {
    let mut outputs = vec![marked("CONTRACTOR", amount)];
    let change = have.checked_sub(amount).unwrap();
    if !change.is_zero() {
        outputs.push(marked("GA", change));
    }
    let body = w.body(vec![input], outputs, Command::ContractPayment { parameter: parameter(), contract: number() });
    w.signed(body, &["GA"])
}

fn transfer() -> AttestRequest {
    AttestRequest::ContractPayment { purpose: ContractPurpose::Transfer }
}

fn used(w: &World, kind: LimitKind) -> Usage {
    *w.oracle.contract(&parameter(), &number()).unwrap().limit(kind).1
}

#[test]
fn contract_transfers_are_limited_cumulatively_including_reservations() {
    let Roads { mut w, funds } = roads();
    let mut first = pay(&mut w, funds, dt(10_000), dt(3_000));
    let statement = w.attest(&mut first, transfer()).unwrap();
    assert_eq!(
        statement,
        Statement::ContractPayment {
            parameter: parameter(),
            contract: number(),
            sender: addr("GA"),
            recipient: addr("CONTRACTOR"),
            amount: dt(3_000),
            unmark: false,
        }
    );
    assert_eq!(used(&w, LimitKind::Transfer), Usage { confirmed: Amount::ZERO, reserved: dt(3_000) });
    let outs = w.commit_and_confirm(&first);
    assert_eq!(used(&w, LimitKind::Transfer), Usage { confirmed: dt(3_000), reserved: Amount::ZERO });
    let change = outs[1];

    // 3 000 paid + 2 500 > 5 000.
    let mut over = pay(&mut w, change, dt(7_000), dt(2_500));
    assert_eq!(
        w.attest(&mut over, transfer()),
        Err(OracleError::LimitExceeded {
            parameter: parameter(),
            contract: number(),
            kind: LimitKind::Transfer,
            limit: dt(5_000),
            used: dt(3_000),
            requested: dt(2_500),
        })
    );

    // 2 000 is attested but never submitted: the reservation counts meanwhile.
    let mut reserved = pay(&mut w, change, dt(7_000), dt(2_000));
    w.attest(&mut reserved, transfer()).unwrap();
    let mut one_more = pay(&mut w, change, dt(7_000), Amount::from_tiyn(1));
    assert!(matches!(
        w.attest(&mut one_more, transfer()),
        Err(OracleError::LimitExceeded { used, .. }) if used == dt(5_000)
    ));

    // Its window closes; the notary never saw it; the reservation is freed.
    assert!(w.oracle.due_reservations(w.now).is_empty());
    w.advance(2 * HOUR_MS);
    assert_eq!(w.oracle.due_reservations(w.now), vec![reserved.id()]);
    w.run(w.oracle.release(reserved.id()));
    assert_eq!(w.oracle.release(reserved.id()), Err(OracleError::NoReservation { tx: reserved.id() }));
    assert_eq!(used(&w, LimitKind::Transfer), Usage { confirmed: dt(3_000), reserved: Amount::ZERO });

    let mut retry = pay(&mut w, change, dt(7_000), dt(2_000));
    w.attest(&mut retry, transfer()).unwrap();
    w.commit_and_confirm(&retry);
    assert_eq!(used(&w, LimitKind::Transfer).confirmed, dt(5_000));
    assert_eq!(w.balance("CONTRACTOR", TokenKind::Marked), dt(5_000));
}

#[test]
fn a_tampered_contract_payment_is_refused_by_the_kernel() {
    let Roads { mut w, funds } = roads();
    let mut tx = pay(&mut w, funds, dt(10_000), dt(1_000));
    let statement = w.attest(&mut tx, transfer()).unwrap();
    // Same attested statement on a transaction paying more.
    let mut bigger = pay(&mut w, funds, dt(10_000), dt(4_000));
    bigger.attestations.try_push(sign_statement(&w.oracle_key, bigger.id(), statement)).unwrap();
    assert!(matches!(w.validate(&bigger), Err(dtenge_ledger::Rejection::ContractAmountMismatch { .. })));
    assert!(w.validate(&tx).is_ok());
}

#[test]
fn cash_outs_are_limited_cumulatively_and_unmark_to_the_bank() {
    let Roads { mut w, funds } = roads();
    let mut first = pay(&mut w, funds, dt(10_000), dt(3_000));
    w.attest(&mut first, transfer()).unwrap();
    let received = w.commit_and_confirm(&first)[0];

    let cash_out = |w: &mut World, input: TokenId, have: Amount, amount: Amount| {
        let mut outputs = vec![token("BANK", amount, "STB1")];
        let change = have.checked_sub(amount).unwrap();
        if !change.is_zero() {
            outputs.push(marked("CONTRACTOR", change));
        }
        let body =
            w.body(vec![input], outputs, Command::ContractPayment { parameter: parameter(), contract: number() });
        w.signed(body, &["CONTRACTOR"])
    };
    let request = AttestRequest::ContractPayment { purpose: ContractPurpose::CashOut { bank: addr("BANK") } };

    let mut tx = cash_out(&mut w, received, dt(3_000), dt(800));
    let statement = w.attest(&mut tx, request.clone()).unwrap();
    assert_eq!(
        statement,
        Statement::ContractPayment {
            parameter: parameter(),
            contract: number(),
            sender: addr("CONTRACTOR"),
            recipient: addr("BANK"),
            amount: dt(800),
            unmark: true,
        }
    );
    let change = w.commit_and_confirm(&tx)[1];
    assert_eq!(w.balance("BANK", TokenKind::Standard), dt(800));
    assert_eq!(used(&w, LimitKind::CashOut).confirmed, dt(800));
    assert_eq!(used(&w, LimitKind::Transfer).confirmed, dt(3_000), "cash-out does not count as transfer");

    let mut over = cash_out(&mut w, change, dt(2_200), dt(300));
    assert!(matches!(
        w.attest(&mut over, request.clone()),
        Err(OracleError::LimitExceeded { kind: LimitKind::CashOut, used, .. }) if used == dt(800)
    ));

    // The portal cannot amend below what is used, but may raise the maximum.
    let below = ContractAmendment { max_transfer: dt(5_000), max_cashout: dt(500), valid_until: w.now.plus_days(30) };
    assert!(matches!(
        w.oracle.amend_contract(&node(PORTAL), &parameter(), &number(), below, w.now),
        Err(OracleError::AmendBelowUsed { kind: LimitKind::CashOut, .. })
    ));
    let raise = ContractAmendment { max_transfer: dt(5_000), max_cashout: dt(1_100), valid_until: w.now.plus_days(30) };
    w.run(w.oracle.amend_contract(&node(PORTAL), &parameter(), &number(), raise, w.now));
    let mut retry = cash_out(&mut w, change, dt(2_200), dt(300));
    w.attest(&mut retry, request).unwrap();
    w.commit_and_confirm(&retry);
    assert_eq!(used(&w, LimitKind::CashOut).confirmed, dt(1_100));
}

#[test]
fn an_expired_contract_is_not_attested() {
    let Roads { mut w, funds } = roads();
    let end = ContractAmendment { max_transfer: dt(5_000), max_cashout: dt(1_000), valid_until: w.now.plus_days(1) };
    w.run(w.oracle.amend_contract(&node(PORTAL), &parameter(), &number(), end, w.now));
    w.advance(2 * DAY_MS);
    let mut tx = pay(&mut w, funds, dt(10_000), dt(1_000));
    assert!(matches!(w.attest(&mut tx, transfer()), Err(OracleError::ContractExpired { .. })));
}

#[test]
fn a_contract_payment_needs_its_purpose_and_a_registered_contract() {
    let Roads { mut w, funds } = roads();
    let mut tx = pay(&mut w, funds, dt(10_000), dt(1_000));
    assert!(matches!(w.attest(&mut tx, AttestRequest::Plain), Err(OracleError::WrongRequest { .. })));
    let body = w.body(
        vec![funds],
        vec![marked("CONTRACTOR", dt(1))],
        Command::ContractPayment { parameter: parameter(), contract: ContractNo::new("C-404").unwrap() },
    );
    let mut unknown = w.signed(body, &["GA"]);
    assert!(matches!(w.attest(&mut unknown, transfer()), Err(OracleError::UnknownContract { .. })));
}

#[test]
fn contracts_are_registered_only_under_known_parameters_once() {
    let Roads { mut w, .. } = roads();
    let mut contract = w.oracle.contract(&parameter(), &number()).unwrap().contract.clone();
    assert!(matches!(
        w.oracle.register_contract(&node(PORTAL), contract.clone(), w.now),
        Err(OracleError::DuplicateContract { .. })
    ));
    contract.parameter = ParameterId::new("UNKNOWN").unwrap();
    assert!(matches!(
        w.oracle.register_contract(&node(PORTAL), contract, w.now),
        Err(OracleError::UnknownParameter { .. })
    ));
    assert!(matches!(
        w.oracle.register_parameter(&node(PORTAL), parameter(), addr("GA"), node("TREASURY"), "again"),
        Err(OracleError::DuplicateParameter { .. })
    ));
    let _ = &mut w;
}
