//! An issuer's outstanding supply at the u64 edge: an issue is admitted only
//! if the supply stays representable, so no balance or total of a currency
//! ever saturates; the running figure equals a rebuild from the transactions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use dtenge_crypto::SecretKey;
use dtenge_node::accounts::{Account, AccountId, Custody, Holder, HolderKind, KycState};
use dtenge_node::archive::Archive;
use dtenge_node::build::{self, Draft, Payee};
use dtenge_node::guard::{self, Clearance, Cleared, Outflow, PendingOutflows, Standing};
use dtenge_node::state::{NodeRecord, NodeState, Reason};
use dtenge_node::{NodeError, RefusalCode};
use dtenge_types::{Address, Amount, CbsRef, Currency, IinBin, ParticipantId, Timestamp, Transaction};
use proptest::prelude::*;

struct Issuer {
    state: NodeState,
    account: AccountId,
    address: Address,
    now: u64,
    serial: u64,
    /// Every record applied, in order: the node's journal.
    journal: Vec<NodeRecord>,
}

impl Issuer {
    fn new() -> Issuer {
        let key = SecretKey::from_seed([42; 32]);
        let address = Address(key.public_key());
        let account = AccountId("NBK-000001".into());
        let mut issuer = Issuer {
            state: NodeState::with_archive(Archive::memory()),
            account,
            address,
            now: 1_750_000_000_000,
            serial: 0,
            journal: Vec::new(),
        };
        issuer.apply(NodeRecord::AccountOpened(Account {
            id: issuer.account.clone(),
            holder: Holder {
                iin_bin: IinBin::with_check_digit(&[9, 4, 0, 7, 4, 0, 0, 0, 0, 0, 1]).unwrap(),
                name: "National Bank".into(),
                kind: HolderKind::Institution,
            },
            address,
            custody: Custody::Custodial(Box::new(key)),
            kyc: KycState::Verified,
            opened_at: Timestamp(0),
            closed: false,
        }));
        issuer
    }

    fn apply(&mut self, record: NodeRecord) {
        self.state.apply(&record);
        self.journal.push(record);
    }

    fn draft(&mut self) -> (Draft, CbsRef) {
        self.now += 1;
        self.serial += 1;
        let host = ParticipantId::new("NBK").unwrap();
        let draft = Draft {
            host,
            payer: self.address,
            now: Timestamp(self.now),
            window_ms: 60_000,
            memo: None,
            change_parts: 1,
        };
        (draft, CbsRef::new(format!("CBS-{}", self.serial)).unwrap())
    }

    /// Prepares an issue to the issuer's own DA; `None` if it was not admitted.
    fn prepare_issue(&mut self, amount: Amount) -> Result<Transaction, NodeError> {
        let (draft, reference) = self.draft();
        let payee = Payee { address: self.address, host: draft.host.clone(), amount };
        let tx = Transaction::unsigned(build::issue(&draft, &payee, reference, Currency::DT).unwrap());
        let record = NodeRecord::Prepared {
            tx: tx.clone(),
            inputs: Vec::new(),
            account: self.account.clone(),
            at: Timestamp(self.now),
        };
        self.state.admit(&record)?;
        self.apply(record);
        Ok(tx)
    }

    fn commit(&mut self, tx: &Transaction) {
        let record = NodeRecord::Committed {
            tx: tx.id(),
            receipt: Vec::new(),
            deliver_to: BTreeSet::new(),
            at: Timestamp(self.now),
        };
        self.state.admit(&record).unwrap();
        self.apply(record);
    }

    fn abort(&mut self, tx: &Transaction) {
        self.apply(NodeRecord::Aborted { tx: tx.id(), reason: "test".into(), spent_elsewhere: Vec::new() });
    }

    /// The payer's guard's permission for a redemption of `amount` (no orders here).
    fn cleared(&self, amount: Amount) -> Clearance {
        let account = self.state.accounts.get(&self.account).unwrap();
        let standing = Standing {
            account,
            limits: None,
            spent_today: Amount::ZERO,
            orders: Vec::new(),
            free_standard: self.state.vault.available(&self.account, |t| t.is_standard()).unwrap(),
            linked_bank_account: None,
        };
        match guard::clear(&standing, Outflow::Conversion { amount }, &PendingOutflows::default()).unwrap() {
            Cleared::Go(clearance) => clearance,
            other => panic!("{other:?}"),
        }
    }

    fn redeem(&mut self, amount: Amount) -> Result<(), NodeError> {
        let tx = self.prepare_redemption(amount)?;
        self.commit(&tx);
        Ok(())
    }

    fn prepare_redemption(&mut self, amount: Amount) -> Result<Transaction, NodeError> {
        let (draft, reference) = self.draft();
        let clearance = self.cleared(amount);
        let inputs = self.state.vault.select(&clearance, amount, |t| t.is_standard()).unwrap();
        let body = build::redeem(&draft, &inputs, amount, reference).unwrap();
        let tx = Transaction::unsigned(body);
        let inputs = inputs.into_iter().map(|(_, t)| t).collect();
        let record =
            NodeRecord::Prepared { tx: tx.clone(), inputs, account: self.account.clone(), at: Timestamp(self.now) };
        self.state.admit(&record)?;
        self.apply(record);
        Ok(tx)
    }

    /// Prepares an issue of `amount` to a bank's DA at STB1.
    fn prepare_issue_to_bank(&mut self, amount: Amount) -> Transaction {
        let (draft, reference) = self.draft();
        let bank = Address(SecretKey::from_seed([7; 32]).public_key());
        let payee = Payee { address: bank, host: ParticipantId::new("STB1").unwrap(), amount };
        let tx = Transaction::unsigned(build::issue(&draft, &payee, reference, Currency::DT).unwrap());
        let record = NodeRecord::Prepared {
            tx: tx.clone(),
            inputs: Vec::new(),
            account: self.account.clone(),
            at: Timestamp(self.now),
        };
        self.state.admit(&record).unwrap();
        self.apply(record);
        tx
    }

    /// A `Committed` record as the node journals it: deliveries to `to`.
    fn committed(&self, tx: &Transaction, to: &[&str]) -> NodeRecord {
        NodeRecord::Committed {
            tx: tx.id(),
            receipt: Vec::new(),
            deliver_to: to.iter().map(|n| ParticipantId::new(*n).unwrap()).collect(),
            at: Timestamp(self.now),
        }
    }

    /// The state a restart rebuilds from the first `records` of the journal
    /// over this issuer's archive (which may hold more), as `NodeService::recover` does.
    fn recovered(&self, records: usize) -> NodeState {
        let mut state = NodeState::with_archive(self.state.archive().clone());
        for record in &self.journal[..records] {
            state.apply(record);
        }
        state.drop_entries_ahead_of_journal();
        state.rebuild_supply(&[(Currency::DT, self.address)].into()).unwrap();
        state
    }
}

#[derive(Debug, Clone)]
enum Step {
    Issue { tiyn: u64, commit: bool },
    Redeem { share: u8 },
}

fn edge_amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..1_000,
        (u64::MAX - 1_000)..=u64::MAX,
        (u64::MAX / 2 - 1_000)..(u64::MAX / 2 + 1_000),
        any::<u64>().prop_map(|v| v.max(1)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (edge_amount(), any::<bool>()).prop_map(|(tiyn, commit)| Step::Issue { tiyn, commit }),
        1 => (1u8..=100).prop_map(|share| Step::Redeem { share }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn supply_is_admitted_only_while_representable_and_balances_stay_exact(steps in prop::collection::vec(step(), 1..40)) {
        let mut issuer = Issuer::new();
        let mut model: u128 = 0;
        // Everything happens within one Astana day: redemptions add up.
        let mut redeemed_today: u128 = 0;
        for step in steps {
            match step {
                Step::Issue { tiyn, commit } => {
                    let fits = model + u128::from(tiyn) <= u128::from(u64::MAX);
                    match issuer.prepare_issue(Amount::from_tiyn(tiyn)) {
                        Ok(tx) => {
                            prop_assert!(fits, "an issue past the representable supply was admitted");
                            if commit {
                                issuer.commit(&tx);
                                model += u128::from(tiyn);
                                let line = issuer.state.history(&issuer.account, 1);
                                let amounts = line.first().map(|l| (l.incoming, l.outgoing));
                                prop_assert_eq!(amounts, Some((Amount::from_tiyn(tiyn), Amount::ZERO)), "history is exact at the edge");
                            } else {
                                issuer.abort(&tx);
                            }
                        }
                        Err(NodeError::SupplyOverflow { .. }) => prop_assert!(!fits, "a representable issue was refused"),
                        Err(other) => prop_assert!(false, "unexpected refusal: {other}"),
                    }
                }
                Step::Redeem { share } => {
                    let amount = u64::try_from(model * u128::from(share) / 100).unwrap();
                    if amount > 0 {
                        let fits = redeemed_today + u128::from(amount) <= u128::from(u64::MAX);
                        match issuer.redeem(Amount::from_tiyn(amount)) {
                            Ok(()) => {
                                prop_assert!(fits, "a day's total past the representable range was admitted");
                                model -= u128::from(amount);
                                redeemed_today += u128::from(amount);
                                let line = issuer.state.history(&issuer.account, 1);
                                let amounts = line.first().map(|l| (l.incoming, l.outgoing));
                                prop_assert_eq!(amounts, Some((Amount::ZERO, Amount::from_tiyn(amount))), "history is exact at the edge");
                            }
                            Err(NodeError::DailyTotalOverflow { .. }) => prop_assert!(!fits),
                            Err(other) => prop_assert!(false, "unexpected refusal: {other}"),
                        }
                    }
                }
            }
            let model_amount = Amount::from_tiyn(u64::try_from(model).unwrap());
            prop_assert_eq!(issuer.state.supply(&Currency::DT), model_amount);
            let balances = issuer.state.vault.balances(&issuer.account).expect("never past the representable range");
            prop_assert_eq!(balances.total, model_amount);
        }
        let running = issuer.state.supply(&Currency::DT);
        let issuers: BTreeMap<Currency, Address> = [(Currency::DT, issuer.address)].into();
        issuer.state.rebuild_supply(&issuers).unwrap();
        prop_assert_eq!(issuer.state.supply(&Currency::DT), running, "a rebuild agrees with the running figure");
    }
}

#[test]
fn an_issue_in_flight_counts_against_the_supply_until_it_is_aborted() {
    let mut issuer = Issuer::new();
    let first = issuer.prepare_issue(Amount::from_tiyn(u64::MAX - 10)).unwrap();
    let err = issuer.prepare_issue(Amount::from_tiyn(11)).unwrap_err();
    assert!(err.to_string().contains("past the largest representable amount"), "{err}");
    issuer.prepare_issue(Amount::from_tiyn(10)).expect("exactly the maximum fits");
    issuer.abort(&first);
    issuer.prepare_issue(Amount::from_tiyn(11)).expect("the aborted issue no longer counts");
}

/// A redemption's `Committed` journaled twice (the operation and the
/// resolver both settled it, here with a delivery outstanding so the first
/// does not yet move it to the archive) takes it off the supply once, live
/// and on replay.
#[test]
fn a_redemption_committed_twice_counts_once() {
    let mut issuer = Issuer::new();
    let issue = issuer.prepare_issue(dt(1_000)).unwrap();
    issuer.commit(&issue);
    let redemption = issuer.prepare_redemption(dt(300)).unwrap();
    let commit = issuer.committed(&redemption, &["STB1"]);
    issuer.apply(commit.clone());
    issuer.apply(commit);
    assert_eq!(issuer.state.supply(&Currency::DT), dt(700), "live");
    assert_eq!(issuer.state.vault.balances(&issuer.account).unwrap().total, dt(700));
    let replayed = issuer.recovered(issuer.journal.len());
    assert_eq!(replayed.supply(&Currency::DT), dt(700), "replayed");
    assert_eq!(replayed.vault.balances(&issuer.account).unwrap().total, dt(700));
}

/// The archive may hold what the journal lost in a crash: a redemption
/// settled by a `Committed` that never became durable, an issue settled by
/// a `Delivered` that was not waited for. The supply rebuilt at recovery
/// counts what the journal holds — the redemption not yet, the issue once —
/// and the resolver's later commit takes the redemption off once.
#[test]
fn the_supply_trusts_the_journal_not_settled_copies_it_lost() {
    let mut issuer = Issuer::new();
    let own = issuer.prepare_issue(dt(1_000)).unwrap();
    issuer.commit(&own);
    let redemption = issuer.prepare_redemption(dt(300)).unwrap();
    let to_bank = issuer.prepare_issue_to_bank(dt(500));
    issuer.apply(issuer.committed(&to_bank, &["STB1"]));
    // Durable up to here; what follows was applied and archived, then lost.
    let durable = issuer.journal.len();
    let redeemed = issuer.committed(&redemption, &[]);
    issuer.apply(redeemed.clone());
    let delivered = NodeRecord::Delivered { tx: to_bank.id(), to: ParticipantId::new("STB1").unwrap() };
    issuer.apply(delivered.clone());
    assert_eq!(issuer.state.supply(&Currency::DT), dt(1_200));
    assert_eq!(issuer.state.archive().counts().outgoing, 3, "everything settled into the archive");

    let mut state = issuer.recovered(durable);
    assert_eq!(state.supply(&Currency::DT), dt(1_500), "both issues once, the redemption not committed");
    let mut counted = 0;
    state.for_each_outgoing(|_, _| {
        counted += 1;
        true
    });
    assert_eq!(counted, 3, "each transaction once");
    // The resolver finds the redemption committed at the notary; the payee is delivered again.
    state.apply(&redeemed);
    state.apply(&delivered);
    assert_eq!(state.supply(&Currency::DT), dt(1_200));
    assert_eq!(state.vault.balances(&issuer.account).unwrap().total, dt(700));
    let running = state.supply(&Currency::DT);
    state.rebuild_supply(&[(Currency::DT, issuer.address)].into()).unwrap();
    assert_eq!(state.supply(&Currency::DT), running);
}

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

/// A refusal of a payment in flight is state, journaled: it survives a
/// snapshot and a replay, is dropped when the payees take the payment again
/// or it settles, and is never kept for a transaction not in flight. A
/// snapshot written before refusals were kept (format 2) reads with none.
#[test]
fn a_refusal_in_flight_is_kept_until_the_payment_settles() {
    use dtenge_store::versioned::{Format, TAG_BYTES};

    let mut issuer = Issuer::new();
    let tx = issuer.prepare_issue(Amount::from_tenge(10).unwrap()).unwrap();
    let id = tx.id();
    let closed = Reason::coded(RefusalCode::AccountClosed, "STB2 refused: the DA is closed");
    let refused = |refusal: Option<&Reason>| NodeRecord::RefusedInFlight { tx: id, refusal: refusal.cloned() };
    issuer.apply(refused(Some(&closed)));
    assert_eq!(issuer.state.refusal_in_flight(&id), Some(&closed));
    let record = refused(Some(&closed));
    assert_eq!(NodeRecord::decode(&record.encode()).unwrap(), record);

    let snapshot = NodeState::decode_snapshot(&issuer.state.encode_snapshot()).unwrap();
    assert_eq!(snapshot.refusal_in_flight(&id), Some(&closed));
    let mut replayed = NodeState::with_archive(Archive::memory());
    issuer.journal.iter().for_each(|r| replayed.apply(r));
    assert_eq!(replayed.refusal_in_flight(&id), Some(&closed));

    issuer.apply(refused(None));
    assert_eq!(issuer.state.refusal_in_flight(&id), None, "taken again");
    issuer.apply(refused(Some(&closed)));
    issuer.abort(&tx);
    assert_eq!(issuer.state.refusal_in_flight(&id), None, "gone when it settles");
    issuer.apply(refused(Some(&Reason::text("late"))));
    assert_eq!(issuer.state.refusal_in_flight(&id), None, "not in flight");

    // A record of format 2 held the words alone, as a reason without a code is written today.
    let words = refused(Some(&Reason::text("STB2 refused: the DA is closed")));
    let encoded = words.encode();
    let format_2 = Format { version: 2, ..dtenge_node::state::RECORD }.tag(&encoded[TAG_BYTES..]);
    assert_eq!(NodeRecord::decode(&format_2).unwrap(), words);

    // Format 2 was format 3 without the refusals (an empty map) at the end.
    let current = NodeState::default().encode_snapshot();
    let old = Format { version: 2, ..dtenge_node::state::SNAPSHOT }.tag(&current[TAG_BYTES..current.len() - 4]);
    assert_eq!(NodeState::decode_snapshot(&old).unwrap(), NodeState::default());
    let mut longer = old.clone();
    longer.push(0);
    assert!(NodeState::decode_snapshot(&longer).is_err(), "bytes past a format 2 snapshot's end are refused");
}
