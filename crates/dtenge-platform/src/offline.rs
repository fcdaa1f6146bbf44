//! A bank's offline desk (issue 21.3, docs/offline.md): the online side of
//! `dtenge-offline`. It certifies devices, funds purses — a normal payment
//! from the client's DA into the bank's offline reserve DA through the
//! node's one pipeline, then a signed [`Load`] — and settles deposits: the
//! [`DepositBook`] decides, the decision is journaled and durable, and only
//! then does the reserve pay the depositor's DA (again a normal payment).
//! A double spend is refused with its proof and the device is revoked on
//! the bank's signed [`RevocationList`].
//!
//! The notary sees nothing new: funding and settlement are ordinary
//! transfers. The bank learns of an offline payment only when it is
//! deposited.
//!
//! Journal (`DATA/offline/<BANK>`): `Loaded`, `Deposit` (chain + decision),
//! `Settled`. A deposit journaled but not `Settled` (a crash between the
//! decision and the reserve's payment) is reported by
//! [`OfflineDesk::unsettled`] and not paid again automatically: paying it
//! twice would be worse than paying it late (docs/offline.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Digest, PublicKey, SecretKey};
use dtenge_net::Clock;
use dtenge_node::NodeError;
use dtenge_node::accounts::{Account, AccountId, Holder, HolderKind, KycState};
use dtenge_node::service::{NodeService, PayTo};
use dtenge_node::status::Status;
pub use dtenge_offline::DepositOutcome;
use dtenge_offline::{
    Certificate, Chain, Conflict, Decision, DepositBook, Limits, Load, MAX_REVOKED, OfflineError, RevocationList, Trust,
};
use dtenge_store::Journal;
use dtenge_types::{Address, Amount, BoundedVec, Currency, IinBin, Memo, ParticipantId, Timestamp, TxId, encoding};

use crate::PlatformError;
use crate::services::open_journal;

/// Largest desk journal record (a deposit chain and its decision).
const MAX_RECORD_BYTES: usize = 8 * 1024;

/// The limits a bank gives the devices it certifies (docs/offline.md).
pub const DEFAULT_LIMITS: Limits = Limits {
    balance_max: Amount::from_tiyn(5_000_000),
    payment_max: Amount::from_tiyn(2_000_000),
    payments_max: 50,
    offline_ms_max: 3 * 24 * 3_600_000,
};

/// How far back in the reserve's history a client-signed funding payment
/// is looked for (the wallet asks for its load right after paying).
pub const PAID_LOOKBACK: usize = 10_000;

/// Refuses a device key that is not a valid Ed25519 key.
fn check_device(device: &PublicKey) -> Result<(), DeskError> {
    device.check_canonical().map_err(|_| OfflineError::Malformed("device key is not a valid Ed25519 key".into()))?;
    Ok(())
}

/// Refuses a load for a bad device key, or of an amount outside 1 tiyn and
/// a device's offline balance.
fn check_load(device: &PublicKey, amount: Amount) -> Result<(), DeskError> {
    check_device(device)?;
    if amount.is_zero() || amount > DEFAULT_LIMITS.balance_max {
        return Err(OfflineError::Limit("a load is between 1 tiyn and the device's offline balance").into());
    }
    Ok(())
}

/// The memo of a deposit's reserve payment: it names the deposit (its tip),
/// so a restart can tell whether the payment committed.
fn deposit_memo(tip: &Digest) -> String {
    format!("offline deposit {tip}")
}

/// The memo the release before `deposit_memo` gave a deposit's reserve
/// payment (the tip's short form): a deposit it left owed is recognised as
/// paid by it too — taking a rare short-form match for paid errs towards
/// paying late, never twice.
fn legacy_deposit_memo(tip: &Digest) -> String {
    format!("offline deposit {}", tip.short())
}

/// What the desk journals.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
enum DeskRecord {
    /// A purse funded: the reserve received `tx`.
    Loaded { load: Load, tx: TxId },
    /// A deposit decided (before anything is paid).
    Deposit { chain: Chain, decision: Decision },
    /// The reserve paid a settled deposit.
    Settled { tip: Digest, tx: TxId },
}

/// Why the desk refused.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// The offline protocol refused (bad chain, limit, wrong bank).
    #[error(transparent)]
    Offline(#[from] OfflineError),
    /// The node refused a payment (funds, guard, limits).
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The journal failed: nothing was answered.
    #[error("offline desk journal: {0}")]
    Journal(String),
    /// The payment named to fund a load is not a committed payment of that
    /// amount from that DA into the reserve.
    #[error("no load for this payment: {0}")]
    NotPaid(String),
    /// The payment named to fund a load already funded another one.
    #[error("this payment already funded another load")]
    PaymentUsed,
}

#[derive(Debug, Default)]
struct DeskState {
    book: DepositBook,
    serial: u64,
    settled: BTreeMap<Digest, TxId>,
    /// Deposits decided for settlement: amount and the DA address paid.
    decided: BTreeMap<Digest, (Amount, PublicKey)>,
    /// Funding payments that have a load (each funds one, once).
    loads: BTreeMap<TxId, Load>,
}

impl DeskState {
    fn apply(&mut self, record: &DeskRecord) {
        match record {
            DeskRecord::Loaded { load, tx } => {
                self.serial = self.serial.max(load.serial);
                self.loads.insert(*tx, load.clone());
            }
            DeskRecord::Deposit { chain, decision } => {
                if let Decision::Settle { tip, amount, to } = decision {
                    self.decided.insert(*tip, (*amount, *to));
                }
                self.book.apply(chain, decision);
            }
            DeskRecord::Settled { tip, tx } => {
                self.settled.insert(*tip, *tx);
            }
        }
    }
}

// Another bank's node hands this desk a deposit of one of its loads.
#[async_trait::async_trait]
impl dtenge_node::service::OfflineDeposits for OfflineDesk {
    async fn deposit(&self, chain: Chain) -> Result<DepositOutcome, dtenge_node::service::DepositRefusal> {
        use dtenge_node::service::DepositRefusal;
        OfflineDesk::deposit(self, chain).await.map_err(|e| match e {
            DeskError::Offline(e) => DepositRefusal::Offline(e),
            DeskError::Node(e) => DepositRefusal::Node(e),
            DeskError::Journal(why) => DepositRefusal::Node(NodeError::Storage(format!("offline desk journal: {why}"))),
            other => DepositRefusal::Node(NodeError::Invalid(other.to_string())),
        })
    }
}

/// One bank's offline desk.
pub struct OfflineDesk {
    bank: ParticipantId,
    node: Arc<NodeService>,
    key: SecretKey,
    reserve_key: SecretKey,
    reserve_bin: IinBin,
    trust: Trust,
    clock: Arc<dyn Clock>,
    journal: Journal,
    state: tokio::sync::Mutex<DeskState>,
}

impl OfflineDesk {
    /// Opens the desk of `node` (journal in `dir`); `key` is the bank's own
    /// key, `reserve_key` its offline reserve DA's, `banks` every bank key
    /// wallets and the desk trust.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        dir: &Path,
        durable: bool,
        node: Arc<NodeService>,
        key: SecretKey,
        reserve_key: SecretKey,
        reserve_bin: IinBin,
        banks: Vec<(ParticipantId, PublicKey)>,
        clock: Arc<dyn Clock>,
    ) -> Result<(OfflineDesk, Journal), PlatformError> {
        let bank = node.id().clone();
        let (journal, recovery) = open_journal(dir, durable)?;
        let mut state = DeskState { book: DepositBook::new(bank.clone()), ..DeskState::default() };
        for (seq, bytes) in &recovery.records {
            let record: DeskRecord = encoding::decode(bytes, MAX_RECORD_BYTES)
                .map_err(|e| PlatformError::service(format!("offline desk {bank}"), format!("record {seq}: {e}")))?;
            state.apply(&record);
        }
        let trust = Trust::new(banks).map_err(|e| PlatformError::Config(e.to_string()))?;
        let desk = OfflineDesk {
            bank,
            node,
            key,
            reserve_key,
            reserve_bin,
            trust,
            clock,
            journal: journal.clone(),
            state: tokio::sync::Mutex::new(state),
        };
        Ok((desk, journal))
    }

    /// The bank.
    pub fn bank(&self) -> &ParticipantId {
        &self.bank
    }

    /// The bank keys the desk (and its wallets) trust.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The offline reserve DA's address.
    pub fn reserve_address(&self) -> Address {
        Address(self.reserve_key.public_key())
    }

    /// The reserve DA, opened on first use (an institution DA of the bank).
    pub async fn reserve(&self) -> Result<Account, DeskError> {
        let holder = Holder {
            iin_bin: self.reserve_bin,
            name: format!("{} offline reserve", self.bank),
            kind: HolderKind::Institution,
        };
        Ok(self.node.open_account_with_key(holder, self.reserve_key.clone(), KycState::Verified).await?)
    }

    /// Certifies a device whose element reports `next_counter`, with the
    /// bank's limits, from now.
    pub fn certify(&self, device: PublicKey, next_counter: u32) -> Result<Certificate, DeskError> {
        check_device(&device)?;
        let limits = DEFAULT_LIMITS;
        let valid_until = Timestamp(self.clock.now().millis().saturating_add(limits.offline_ms_max));
        let message = Certificate::signing_message(&self.bank, &device, &limits, next_counter, valid_until);
        Ok(Certificate {
            bank: self.bank.clone(),
            device,
            limits,
            counter_from: next_counter,
            valid_until,
            signature: self.key.sign(message.as_bytes()),
        })
    }

    /// The bank's load number `serial` of `amount` for `device`, dated now.
    fn sign_load(&self, serial: u64, device: PublicKey, amount: Amount) -> Load {
        let loaded_at = self.clock.now();
        let message = Load::signing_message(&self.bank, serial, &device, amount, loaded_at);
        Load {
            bank: self.bank.clone(),
            serial,
            device,
            amount,
            loaded_at,
            signature: self.key.sign(message.as_bytes()),
        }
    }

    /// Funds a purse: `amount` from DA `from` into the offline reserve (the
    /// node's pipeline and guard), then a signed load for `device`.
    pub async fn fund(&self, from: &AccountId, device: PublicKey, amount: Amount) -> Result<(Load, TxId), DeskError> {
        check_load(&device, amount)?;
        let reserve = self.reserve().await?;
        let mut state = self.state.lock().await;
        let serial = state.serial.saturating_add(1);
        let memo = Memo::new(format!("offline load {serial}")).ok();
        let outcome = self.node.pay(from, &[PayTo { address: reserve.address, amount }], memo).await?;
        if outcome.status != Status::Success {
            return Err(NodeError::Invalid(format!(
                "funding payment {} did not commit: {:?}",
                outcome.tx, outcome.status
            ))
            .into());
        }
        let load = self.sign_load(serial, device, amount);
        self.record(&mut state, DeskRecord::Loaded { load: load.clone(), tx: outcome.tx }).await?;
        Ok((load, outcome.tx))
    }

    /// Issues the load for a payment the client signed itself (a DA whose
    /// key is the person's, so the bank cannot pay from it): `tx` must have
    /// committed paying `amount` from DA `from` into the reserve. A payment
    /// funds one load: asked again for the same device, the same load is
    /// answered; for another device, refused.
    pub async fn load_paid(
        &self,
        from: &AccountId,
        tx: TxId,
        device: PublicKey,
        amount: Amount,
    ) -> Result<Load, DeskError> {
        check_load(&device, amount)?;
        let payer = self.node.account(from)?.address;
        let reserve = self.reserve().await?;
        let mut state = self.state.lock().await;
        if let Some(load) = state.loads.get(&tx) {
            return if load.device == device && load.amount == amount {
                Ok(load.clone())
            } else {
                Err(DeskError::PaymentUsed)
            };
        }
        let mut line = None;
        let mut seen = 0usize;
        self.node.history_newest_first(&reserve.id, |_, entry| {
            seen = seen.saturating_add(1);
            if entry.tx == tx {
                line = Some(entry);
                return false;
            }
            seen < PAID_LOOKBACK
        });
        let line = line.ok_or_else(|| {
            DeskError::NotPaid(format!("{tx} is not among the offline reserve's last {PAID_LOOKBACK} payments"))
        })?;
        let paid = line.status == Status::Success
            && line.currency.is_none_or(|c| c == Currency::DT)
            && line.incoming == amount
            && line.outgoing.is_zero()
            && line.counterparties.contains(&payer);
        if !paid {
            return Err(DeskError::NotPaid(format!(
                "{tx} is not a committed payment of {amount} from {from} into the offline reserve"
            )));
        }
        let serial = state.serial.saturating_add(1);
        let load = self.sign_load(serial, device, amount);
        self.record(&mut state, DeskRecord::Loaded { load: load.clone(), tx }).await?;
        Ok(load)
    }

    /// Settles a deposit of `chain` (its last hop names the DA): decided,
    /// journaled and durable, then paid from the reserve.
    pub async fn deposit(&self, chain: Chain) -> Result<DepositOutcome, DeskError> {
        let mut state = self.state.lock().await;
        let decision = state.book.decide(&chain, &self.trust, self.clock.now())?;
        match &decision {
            Decision::Already { tip } => Ok(DepositOutcome::AlreadySettled { tx: state.settled.get(tip).copied() }),
            Decision::Conflict(conflict) => {
                let conflict = conflict.clone();
                self.record(&mut state, DeskRecord::Deposit { chain, decision }).await?;
                Ok(DepositOutcome::DoubleSpend(conflict))
            }
            Decision::Settle { tip, amount, to } => {
                let (tip, amount, to) = (*tip, *amount, Address(*to));
                let reserve = self.reserve().await?;
                self.record(&mut state, DeskRecord::Deposit { chain, decision }).await?;
                let memo = Memo::new(deposit_memo(&tip)).ok();
                let outcome = self.node.pay(&reserve.id, &[PayTo { address: to, amount }], memo).await?;
                if outcome.status != Status::Success {
                    // Not journaled as settled: `finish_owed` sees it through (paid once).
                    return Err(NodeError::Unavailable(format!(
                        "the reserve's payment {} is {:?}; the deposit is owed and will be paid",
                        outcome.tx, outcome.status
                    ))
                    .into());
                }
                self.record(&mut state, DeskRecord::Settled { tip, tx: outcome.tx }).await?;
                Ok(DepositOutcome::Settled { amount, tx: outcome.tx })
            }
        }
    }

    async fn record(&self, state: &mut DeskState, record: DeskRecord) -> Result<(), DeskError> {
        let pending = self.journal.append(encoding::encode(&record)).map_err(|e| DeskError::Journal(e.to_string()))?;
        pending.durable().await.map_err(|e| DeskError::Journal(e.to_string()))?;
        state.apply(&record);
        Ok(())
    }

    /// The bank's signed list of devices caught paying twice.
    pub async fn revocations(&self) -> RevocationList {
        let state = self.state.lock().await;
        let mut devices: Vec<PublicKey> = state.book.revoked().iter().copied().collect();
        devices.truncate(MAX_REVOKED);
        let devices = BoundedVec::new(devices).unwrap_or_else(|_| BoundedVec::empty());
        let serial = state.book.conflicts().len() as u64;
        let message = RevocationList::signing_message(&self.bank, serial, &devices);
        RevocationList { bank: self.bank.clone(), serial, devices, signature: self.key.sign(message.as_bytes()) }
    }

    /// Double spends detected, oldest first.
    pub async fn conflicts(&self) -> Vec<Conflict> {
        self.state.lock().await.book.conflicts().to_vec()
    }

    /// Deposits decided for settlement whose reserve payment is not journaled.
    pub async fn unsettled(&self) -> Vec<(Digest, Amount)> {
        let state = self.state.lock().await;
        state.decided.iter().filter(|(tip, _)| !state.settled.contains_key(*tip)).map(|(t, (a, _))| (*t, *a)).collect()
    }

    /// Pays the deposits decided for settlement whose reserve payment was
    /// never journaled (a crash, or the payment failed, between the decision
    /// and `Settled`); `Platform::tick` calls it, so a restart finishes them.
    /// Each is paid at most once: a committed reserve payment carrying the
    /// deposit's memo (its full tip) is journaled as its settlement instead
    /// of paying again; while the node still resolves a reserve payment left
    /// in flight, nothing is paid (the next tick looks again). Lines of what
    /// was done, for the tick's log.
    pub async fn finish_owed(&self) -> Vec<String> {
        let mut done = Vec::new();
        // Held throughout: `deposit` pays from the reserve only under it, so
        // no payment of this desk is in flight but a crash's leftover.
        let mut state = self.state.lock().await;
        let owed: Vec<(Digest, Amount, PublicKey)> = state
            .decided
            .iter()
            .filter(|(tip, _)| !state.settled.contains_key(*tip))
            .map(|(tip, (amount, to))| (*tip, *amount, *to))
            .collect();
        if owed.is_empty() {
            return done;
        }
        let reserve = match self.reserve().await {
            Ok(r) => r,
            Err(e) => {
                done.push(format!("{}: offline deposits owed, reserve unavailable: {e}", self.bank));
                return done;
            }
        };
        let in_flight =
            self.node.read(|s| s.unsettled().any(|(_, o)| o.account == reserve.id && o.status == Status::UnderReview));
        if in_flight {
            done.push(format!(
                "{}: {} offline deposits owed wait for a reserve payment in flight",
                self.bank,
                owed.len()
            ));
            return done;
        }
        for (tip, amount, to) in owed {
            let memo = deposit_memo(&tip);
            let legacy = legacy_deposit_memo(&tip);
            let mut paid = None;
            let mut seen = 0usize;
            self.node.history_newest_first(&reserve.id, |_, line| {
                seen = seen.saturating_add(1);
                if (line.memo.as_deref() == Some(memo.as_str()) || line.memo.as_deref() == Some(legacy.as_str()))
                    && line.status == Status::Success
                    && line.outgoing == amount
                {
                    paid = Some(line.tx);
                    return false;
                }
                seen < PAID_LOOKBACK
            });
            let tx = match paid {
                Some(tx) => tx,
                None => {
                    let pay = [PayTo { address: Address(to), amount }];
                    match self.node.pay(&reserve.id, &pay, Memo::new(memo).ok()).await {
                        Ok(o) if o.status == Status::Success => o.tx,
                        Ok(o) => {
                            done.push(format!(
                                "{}: offline deposit {} owed, payment {}: {:?}",
                                self.bank,
                                tip.short(),
                                o.tx,
                                o.status
                            ));
                            continue;
                        }
                        Err(e) => {
                            done.push(format!(
                                "{}: offline deposit {} owed, payment refused: {e}",
                                self.bank,
                                tip.short()
                            ));
                            continue;
                        }
                    }
                }
            };
            match self.record(&mut state, DeskRecord::Settled { tip, tx }).await {
                Ok(()) => done.push(format!("{}: offline deposit {} settled by {tx}", self.bank, tip.short())),
                Err(e) => done.push(format!(
                    "{}: offline deposit {} paid by {tx}, not journaled: {e}",
                    self.bank,
                    tip.short()
                )),
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use dtenge_node::accounts::HolderKind;
    use dtenge_offline::{Purse, SecureElement, SoftwareElement};

    use super::*;
    use crate::demo_set::demo_iin_bin;
    use crate::{Platform, PlatformOptions};

    /// A purse on a software element made from `seed`, certified by `desk`,
    /// with one load from `payer` per amount.
    async fn funded_purse(desk: &OfflineDesk, payer: &AccountId, seed: u8, loads: &[u64]) -> Purse<SoftwareElement> {
        let element = SoftwareElement::from_seed([seed; 32]);
        let certificate = desk.certify(element.device_key(), 0).unwrap();
        let mut purse = Purse::new(element, certificate, desk.trust().clone()).unwrap();
        for tiyn in loads {
            let (load, _) = desk.fund(payer, purse.device_key(), Amount::from_tiyn(*tiyn)).await.unwrap();
            purse.add_load(load).unwrap();
        }
        purse
    }

    /// The crash windows of a deposit: decided and journaled, then the
    /// process dies (a) before the reserve pays, (b) after it paid but before
    /// `Settled`. After a restart the tick pays (a) once and journals (b)
    /// without paying again; later ticks and repeated deposits pay nothing.
    #[tokio::test]
    async fn a_restart_finishes_deposits_decided_but_not_settled() {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(dtenge_net::SystemClock);
        let options = || PlatformOptions { durable: true };
        let p = Arc::new(Platform::open(dir.path(), Arc::clone(&clock), options()).await.unwrap());
        crate::demo_set::ensure(&p).await.unwrap();
        let bank = ParticipantId::new("STB1").unwrap();
        let node = Arc::clone(p.node("STB1").unwrap());
        let payer = node.accounts_of(&demo_iin_bin(HolderKind::Individual, 5))[0].clone();
        let payee = node.accounts_of(&demo_iin_bin(HolderKind::LegalEntity, 4))[0].clone();
        let standard = |n: &NodeService, id: &AccountId| n.balances(id).unwrap().standard.tiyn();
        let payee_before = standard(&node, &payee.id);

        let desk = Arc::clone(p.offline_desk(&bank).unwrap());
        let mut purse = funded_purse(&desk, &payer.id, 9, &[10_000, 20_000, 5_000]).await;
        let chains = purse.deposit(payee.address.0, clock.now()).unwrap();
        assert_eq!(chains.len(), 3);
        let reserve = desk.reserve().await.unwrap();
        assert_eq!(standard(&node, &reserve.id), 35_000);

        // What `deposit` does up to each crash: the first owed and unpaid,
        // the second paid, the third paid by the previous release (its memo).
        let mut paid_before_crash = 0;
        for (i, chain) in chains.iter().enumerate() {
            let mut state = desk.state.lock().await;
            let decision = state.book.decide(chain, &desk.trust, clock.now()).unwrap();
            let Decision::Settle { tip, amount, to } = decision.clone() else { panic!("{decision:?}") };
            desk.record(&mut state, DeskRecord::Deposit { chain: chain.clone(), decision }).await.unwrap();
            if i > 0 {
                let memo = if i == 1 { deposit_memo(&tip) } else { legacy_deposit_memo(&tip) };
                let pay = [PayTo { address: Address(to), amount }];
                let o = node.pay(&reserve.id, &pay, Memo::new(memo).ok()).await.unwrap();
                assert_eq!(o.status, Status::Success);
                paid_before_crash += amount.tiyn();
            }
        }
        assert_eq!(desk.unsettled().await.len(), 3);
        drop((desk, node));
        p.close().unwrap();
        drop(p);

        // Restart: all three are owed until the tick.
        let p = Arc::new(Platform::open(dir.path(), Arc::clone(&clock), options()).await.unwrap());
        let desk = Arc::clone(p.offline_desk(&bank).unwrap());
        let node = Arc::clone(p.node("STB1").unwrap());
        assert_eq!(desk.unsettled().await.len(), 3);
        assert_eq!(standard(&node, &payee.id), payee_before + paid_before_crash);
        let log = p.tick().await;
        assert!(log.iter().filter(|l| l.contains("offline deposit")).count() == 3, "{log:?}");
        assert!(desk.unsettled().await.is_empty());
        assert_eq!(standard(&node, &payee.id), payee_before + 35_000, "each deposit paid once");
        assert_eq!(standard(&node, &reserve.id), 0);
        // Nothing more: another tick, the same chains deposited again.
        p.tick().await;
        for chain in chains {
            assert!(matches!(desk.deposit(chain).await.unwrap(), DepositOutcome::AlreadySettled { tx: Some(_) }));
        }
        assert_eq!(standard(&node, &payee.id), payee_before + 35_000);
        assert_eq!(standard(&node, &reserve.id), 0);
    }

    /// A deposit at one bank of another bank's load travels as a node
    /// request (what a deployment with each bank on its own host does): STB2's
    /// node hands the chain to STB1's, whose desk pays its reserve into the
    /// STB2 DA; handing it again pays nothing, a tampered chain is refused
    /// with the offline protocol's code, and a bank with no desk says so.
    #[tokio::test]
    async fn a_deposit_of_another_banks_load_travels_between_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(dtenge_net::SystemClock);
        let p =
            Arc::new(Platform::open(dir.path(), Arc::clone(&clock), PlatformOptions { durable: false }).await.unwrap());
        crate::demo_set::ensure(&p).await.unwrap();
        let stb1 = ParticipantId::new("STB1").unwrap();
        let node1 = Arc::clone(p.node("STB1").unwrap());
        let node2 = Arc::clone(p.node("STB2").unwrap());
        let payer = node1.accounts_of(&demo_iin_bin(HolderKind::Individual, 5))[0].clone();
        let payee = node2.accounts_of(&demo_iin_bin(HolderKind::Individual, 7))[0].clone();
        let standard = |n: &NodeService, id: &AccountId| n.balances(id).unwrap().standard.tiyn();
        let payee_before = standard(&node2, &payee.id);

        let desk = Arc::clone(p.offline_desk(&stb1).unwrap());
        let mut purse = funded_purse(&desk, &payer.id, 11, &[25_000]).await;
        let chain = purse.deposit(payee.address.0, clock.now()).unwrap().remove(0);
        let reserve = desk.reserve().await.unwrap();
        assert_eq!(standard(&node1, &reserve.id), 25_000);

        // Tampered: one amount changed, refused by STB1's desk with the protocol's code; nothing moves.
        let mut tampered = chain.clone();
        let mut hops = tampered.hops.as_slice().to_vec();
        hops[0].hi = hops[0].hi.saturating_sub(1);
        tampered.hops = BoundedVec::new(hops).unwrap();
        match node2.hand_deposit(&stb1, tampered).await {
            Err(dtenge_node::service::DepositRefusal::OfflineCode { code, .. }) => {
                assert_ne!(code.api_code(), "", "a stable code travels");
            }
            other => panic!("a tampered chain was not refused by the offline protocol: {other:?}"),
        }
        assert_eq!(standard(&node2, &payee.id), payee_before);

        let outcome = node2.hand_deposit(&stb1, chain.clone()).await.unwrap();
        assert!(matches!(outcome, DepositOutcome::Settled { amount, .. } if amount.tiyn() == 25_000), "{outcome:?}");
        assert_eq!(standard(&node2, &payee.id), payee_before + 25_000);
        assert_eq!(standard(&node1, &reserve.id), 0);
        let again = node2.hand_deposit(&stb1, chain.clone()).await.unwrap();
        assert!(matches!(again, DepositOutcome::AlreadySettled { tx: Some(_) }), "{again:?}");
        assert_eq!(standard(&node2, &payee.id), payee_before + 25_000, "paid once");

        // The Treasury's node runs no desk: a clear refusal, nothing moved.
        let treasury = ParticipantId::new(crate::spec::ids::TREASURY).unwrap();
        let refused = node2.hand_deposit(&treasury, chain).await;
        assert!(
            matches!(&refused, Err(dtenge_node::service::DepositRefusal::Node(NodeError::RefusedBy { refusal, .. }))
                if refusal.code == dtenge_node::RefusalCode::Forbidden),
            "{refused:?}"
        );
        assert_eq!(standard(&node2, &payee.id), payee_before + 25_000);
    }
}
