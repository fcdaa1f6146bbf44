//! Property: whatever sequence of attestations, confirmations, releases,
//! expiries, re-attestations and amendments happens, a contract's confirmed
//! plus reserved usage never exceeds its maxima, an e-invoice is never paid
//! twice, the reserved counters equal the open reservations, and the journal
//! replays to the same state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use dtenge_oracle::*;
use dtenge_types::*;
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum Op {
    PayContract { contract: usize, cash_out: bool, tiyn: u64 },
    PayInvoice { invoice: usize },
    Confirm { pick: usize },
    Release { pick: usize },
    Expire { ms: u64, committed: bool },
    Reattest { pick: usize },
    Amend { contract: usize, max_transfer: u64, max_cashout: u64 },
}

/// Small amounts, and amounts at the u64 edge (with maxima amended there):
/// usage is admitted only while it fits, so no total saturates.
fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 1..700u64, 1 => (u64::MAX - 700)..=u64::MAX, 1 => (u64::MAX / 2 - 350)..(u64::MAX / 2 + 350)]
}

fn maximum(small: u64) -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0..small, 1 => (u64::MAX - 1_000)..=u64::MAX]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, any::<bool>(), amount())
            .prop_map(|(contract, cash_out, tiyn)| Op::PayContract { contract, cash_out, tiyn }),
        3 => (0..3usize).prop_map(|invoice| Op::PayInvoice { invoice }),
        3 => any::<usize>().prop_map(|pick| Op::Confirm { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        1 => (0..3 * HOUR_MS, any::<bool>()).prop_map(|(ms, committed)| Op::Expire { ms, committed }),
        1 => any::<usize>().prop_map(|pick| Op::Reattest { pick }),
        1 => (0..2usize, maximum(2_000), maximum(600))
            .prop_map(|(contract, max_transfer, max_cashout)| Op::Amend { contract, max_transfer, max_cashout }),
    ]
}

fn parameter() -> ParameterId {
    ParameterId::new("P-PROP").unwrap()
}

fn contract_no(i: usize) -> ContractNo {
    ContractNo::new(format!("C-{i}")).unwrap()
}

fn invoice_id(i: usize) -> InvoiceId {
    InvoiceId::new(format!("EI-{i}")).unwrap()
}

struct Harness {
    w: World,
    bodies: BTreeMap<TxId, (TxBody, AttestRequest)>,
    /// Reference model: confirmed usage per (contract, kind), confirmed payments per invoice.
    confirmed: BTreeMap<(usize, LimitKind), u64>,
    paid: BTreeMap<usize, u32>,
}

impl Harness {
    fn new() -> Harness {
        let mut w = World::new();
        w.run(w.oracle.register_parameter(&node(PORTAL), parameter(), addr("GA"), node("TREASURY"), "prop"));
        for i in 0..2 {
            let contract = Contract {
                number: contract_no(i),
                parameter: parameter(),
                sender: addr("GA"),
                recipient: addr("SUPPLIER"),
                max_transfer: Amount::from_tiyn(1_000),
                max_cashout: Amount::from_tiyn(300),
                valid_until: w.now.plus_days(365),
                final_recipient: false,
            };
            w.run(w.oracle.register_contract(&node(PORTAL), contract, w.now));
        }
        for i in 0..3 {
            let invoice = Invoice {
                id: invoice_id(i),
                seller: addr("LE2"),
                buyer: addr("LE1"),
                net: Amount::from_tiyn(100),
                vat: Amount::from_tiyn(12),
            };
            w.run(w.oracle.register_invoice(&node(TAX), invoice));
        }
        Harness { w, bodies: BTreeMap::new(), confirmed: BTreeMap::new(), paid: BTreeMap::new() }
    }

    fn open(&self, pick: usize) -> Option<TxId> {
        let open: Vec<TxId> = self.w.oracle.reservations().map(|(tx, _)| *tx).collect();
        (!open.is_empty()).then(|| open[pick % open.len()])
    }

    fn attest(&mut self, outputs: Vec<Token>, command: Command, request: AttestRequest) {
        let input = self.w.genesis(token("ANY", Amount::from_tiyn(1), "STB1"));
        let body = self.w.body(vec![input], outputs, command);
        if let Ok((_, record)) = self.w.oracle.attest(body.id(), &body, &request, self.w.now) {
            self.w.run(Ok(record.expect("these statements reserve")));
            self.bodies.insert(body.id(), (body, request));
        }
    }

    fn settle(&mut self, tx: TxId, committed: bool) {
        let entry = self.w.oracle.reservation(&tx).unwrap().clone();
        if committed {
            match entry.reservation {
                Reservation::Contract { contract, kind, amount, .. } => {
                    let i = if contract == contract_no(0) { 0 } else { 1 };
                    *self.confirmed.entry((i, kind)).or_default() += amount.tiyn();
                }
                Reservation::Invoice { invoice } => {
                    let i = (0..3).find(|i| invoice_id(*i) == invoice).unwrap();
                    *self.paid.entry(i).or_default() += 1;
                }
                _ => unreachable!(),
            }
            self.w.run(self.w.oracle.confirm(tx));
        } else {
            self.w.run(self.w.oracle.release(tx));
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::PayContract { contract, cash_out, tiyn } => {
                let (recipient, purpose) = if cash_out {
                    ("BANK", ContractPurpose::CashOut { bank: addr("BANK") })
                } else {
                    ("SUPPLIER", ContractPurpose::Transfer)
                };
                let command = Command::ContractPayment { parameter: parameter(), contract: contract_no(contract) };
                self.attest(
                    vec![token(recipient, Amount::from_tiyn(tiyn), "STB1")],
                    command,
                    AttestRequest::ContractPayment { purpose },
                );
            }
            Op::PayInvoice { invoice } => {
                let command = Command::PayInvoice { invoice: invoice_id(invoice) };
                self.attest(vec![token("LE2", Amount::from_tiyn(112), "STB1")], command, AttestRequest::Plain);
            }
            Op::Confirm { pick } => {
                if let Some(tx) = self.open(pick) {
                    self.settle(tx, true);
                }
            }
            Op::Release { pick } => {
                if let Some(tx) = self.open(pick) {
                    self.settle(tx, false);
                }
            }
            Op::Expire { ms, committed } => {
                self.w.advance(ms);
                for tx in self.w.oracle.due_reservations(self.w.now) {
                    self.settle(tx, committed);
                }
            }
            Op::Reattest { pick } => {
                if let Some(tx) = self.open(pick) {
                    let (body, request) = self.bodies[&tx].clone();
                    let statement = self.w.oracle.reservation(&tx).unwrap().statement.clone();
                    let again = self.w.oracle.attest(tx, &body, &request, self.w.now).unwrap();
                    assert_eq!(again, (statement, None));
                }
            }
            Op::Amend { contract, max_transfer, max_cashout } => {
                let amendment = ContractAmendment {
                    max_transfer: Amount::from_tiyn(max_transfer),
                    max_cashout: Amount::from_tiyn(max_cashout),
                    valid_until: self.w.now.plus_days(365),
                };
                let record = self.w.oracle.amend_contract(
                    &node(PORTAL),
                    &parameter(),
                    &contract_no(contract),
                    amendment,
                    self.w.now,
                );
                if let Ok(record) = record {
                    self.w.run(Ok(record));
                }
            }
        }
    }

    fn check(&self) {
        let oracle = &self.w.oracle;
        for i in 0..2 {
            let state = oracle.contract(&parameter(), &contract_no(i)).unwrap();
            for kind in [LimitKind::Transfer, LimitKind::CashOut] {
                let (limit, usage) = state.limit(kind);
                assert!(usage.used() <= limit, "contract {i} {kind}: used {:?} > limit {limit:?}", usage.used());
                assert_eq!(usage.confirmed.tiyn(), self.confirmed.get(&(i, kind)).copied().unwrap_or(0));
                let reserved: u64 = oracle
                    .reservations()
                    .filter_map(|(_, e)| match &e.reservation {
                        Reservation::Contract { contract, kind: k, amount, .. }
                            if *contract == contract_no(i) && *k == kind =>
                        {
                            Some(amount.tiyn())
                        }
                        _ => None,
                    })
                    .sum();
                assert_eq!(usage.reserved.tiyn(), reserved);
            }
        }
        for i in 0..3 {
            let paid = self.paid.get(&i).copied().unwrap_or(0);
            assert!(paid <= 1, "invoice {i} paid {paid} times");
            let state = oracle.invoice(&invoice_id(i)).unwrap();
            assert_eq!(state.paid_by.is_some(), paid == 1);
            let open: BTreeSet<TxId> = oracle
                .reservations()
                .filter(|(_, e)| e.reservation == Reservation::Invoice { invoice: invoice_id(i) })
                .map(|(tx, _)| *tx)
                .collect();
            assert!(open.len() <= 1);
            assert_eq!(state.reserved_by, open.first().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn limits_hold_and_invoices_are_paid_once_under_any_sequence(ops in prop::collection::vec(op(), 1..80)) {
        let mut h = Harness::new();
        for op in ops {
            h.step(op);
            h.check();
        }
        prop_assert_eq!(h.w.replayed(), h.w.oracle.clone());
    }
}
