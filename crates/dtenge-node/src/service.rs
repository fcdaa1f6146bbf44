//! A participant node as a running service. This module holds the node's
//! parts and the plumbing every room shares (recovery, journaling, the
//! clients of the directory, oracle and other nodes); the work is in its
//! rooms:
//!
//! - `protocol`: the messages between nodes;
//! - `operations`: what a DA's holder asks for, each an operation that
//!   passes the payer's guard and becomes a `plan` (tokens selected and
//!   reserved against the guard's clearance, build shape, attestations,
//!   signers);
//! - `pipeline`: the one path every outgoing transaction takes, owning
//!   every `Prepared` and `Committed` record;
//! - `incoming`: deliveries and requests from other nodes;
//! - `tick`: background work (notices, expiries, unresolved transactions);
//! - `accounts`: opening DAs and reading their history; `regime_ops`: tiers,
//!   limits, orders, key rotation, closing, reports.
//!
//! ```text
//!  operation ─► guard ─► plan{select + build + reserve} ─► attest ─► sign ─► validate
//!            ─► journal Prepared (durable) ─► notary ─► journal Committed / Aborted (durable)
//!            ─► deliver to payees' nodes and marking initiators' nodes (while Committed
//!               becomes durable) ─► confirm to the oracle
//!  Deliver   ─► verify the notary's receipt ─► kernel validate (at commit time) ─► journal Received
//!  tick      ─► oracle notices (release / cancel), expiries, retries, unresolved transactions
//! ```
//!
//! Other services are reached only through the [`Bus`]; the same code runs
//! with every service in one process or each in its own.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use dtenge_crypto::Signer;
use dtenge_ledger::Params;
use dtenge_net::{Bus, BusExt, Clock, Participants, Role};
use dtenge_notary::{NotaryClient, TxClaim, Verdict};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_store::{Journal, Recovery, StoreError};
use dtenge_types::{Address, Amount, IinBin, Memo, ParticipantId, Timestamp, Token, TokenId, TxId};
use serde::{Deserialize, Serialize};

use crate::NodeError;
use crate::accounts::Account;
use crate::archive::Archive;
use crate::batcher::{Batcher, SendBatch};
use crate::build::{Draft, Payee};
use crate::directory::{DaEntry, DirectoryAnswer, DirectoryRequest};
use crate::guard::{Clearance, PendingOutflows};
use crate::state::{NodeRecord, NodeState};

mod accounts;
mod cards;
mod incoming;
mod leases;
mod operations;
mod pipeline;
mod plan;
mod protocol;
mod pvp;
mod regime_ops;
mod stablecoin;
mod tick;

use plan::{PayeeCheck, Plan};
pub use protocol::{
    DepositRefusal, MAX_LINK_BATCH, NodeAnswer, NodeRequest, OfflineDeposits, PeerAnswer, PeerRequest, PvpContribution,
    StablecoinCountOverBus,
};

pub use crate::regime::{BankReport, DayAggregate, LargePayment, MarkedMove, MarkedReport};

/// How long a transaction may take from building to commit.
pub const WINDOW_MS: u64 = 60_000;
/// Most consents of other hosts kept (PvPs in flight); past it the oldest
/// is dropped (a PvP still unsubmitted then is refused by the notary and
/// aborted, both legs together).
const MAX_CONSENTS: usize = 4096;
/// Notarisation attempts before a transaction is left to the resolver.
const NOTARY_ATTEMPTS: usize = 3;
/// Free standard tokens a paying DA is kept at (its change is split until it
/// has them), so that many of its payments can be in flight at once.
const FREE_TOKENS: usize = 8;
/// Most payments a node lets wait for change in flight; past it the caller
/// is told to come back (backpressure), never queued without bound.
const MAX_WAITING_FOR_CHANGE: usize = 4096;
/// Most transactions a node lets go through its pipeline at once (between
/// plan and settlement); past it an operation is refused `busy` before
/// anything is reserved, and every queue behind the pipeline stays bounded.
const MAX_IN_PIPELINE: usize = 16_384;
/// Longest a payment waits for change in flight before it is refused as
/// `funds_in_flight`: longer than a transaction's notarisation attempts take.
const WAIT_FOR_CHANGE: std::time::Duration = std::time::Duration::from_secs(30);
/// How often a waiting payment looks again without being woken.
const RECHECK_CHANGE: std::time::Duration = std::time::Duration::from_millis(100);

/// Who this node is and whom it talks to.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node.
    pub id: ParticipantId,
    /// Its role.
    pub role: Role,
    /// The oracle.
    pub oracle: ParticipantId,
    /// The DA directory.
    pub directory: ParticipantId,
    /// Ledger parameters (issuers, oracle keys, tax authority).
    pub params: Params,
    /// NBK only: the core banking system's file exchange.
    pub cbs: Option<crate::conversion::CbsLink>,
}

/// Most remembered hosts of other nodes' DAs (the cache starts over when full).
const HOST_CACHE: usize = 100_000;

/// Where a payment goes, as a caller names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayTo {
    /// The recipient DA's address.
    pub address: Address,
    /// How much.
    pub amount: Amount,
}

pub use crate::status::TxOutcome;

/// The running node.
pub struct NodeService {
    config: NodeConfig,
    key: Arc<dyn Signer>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    participants: Arc<Participants>,
    journal: Journal,
    state: Mutex<NodeState>,
    notice_cursor: AtomicU64,
    /// Payments built for DAs whose holders sign themselves, awaiting their signature.
    awaiting: Mutex<std::collections::HashMap<TxId, Plan>>,
    /// PvP legs this node signed for another node's transaction: the
    /// proposing node, reserved inputs and the end of the transaction's window.
    cosigned: Mutex<std::collections::HashMap<TxId, Cosigned>>,
    /// Claims of concurrent payments, sent to the notary in batches.
    notary_batcher: Batcher<TxClaim, Verdict>,
    /// This bank's offline desk, serving other banks' deposits of its loads
    /// (set by the platform that opens and owns the desk; the desk holds
    /// this node, so the node holds it weakly).
    offline: std::sync::OnceLock<std::sync::Weak<dyn protocol::OfflineDeposits>>,
    /// Deliveries and pre-checks to each other node, sent in batches.
    links: Mutex<std::collections::HashMap<ParticipantId, Arc<Batcher<PeerRequest, PeerAnswer>>>>,
    /// Hosts of other nodes' DAs already looked up: the directory never moves
    /// an address to another host, so a positive answer stays true.
    hosts: Mutex<std::collections::HashMap<Address, ParticipantId>>,
    /// The notary (one process or a replicated group): batches, receipts,
    /// their verification.
    notary: Arc<NotaryClient>,
    /// Held while a DA is being opened (directory first, then the journal).
    opening: tokio::sync::Mutex<()>,
    /// Held while a card message (or a card expiry) is decided and carried out.
    cards: tokio::sync::Mutex<()>,
    /// Payments the guard cleared that no DA's book counts yet.
    pending: PendingOutflows,
    /// Transactions going through the pipeline now (see [`plan::InPipeline`]).
    in_pipeline: plan::Pipeline,
    /// Payments waiting for change in flight (see [`NodeService::plan`]).
    waiting_for_change: std::sync::atomic::AtomicUsize,
    /// Woken whenever records are applied: change arrived, reservations freed.
    vault_changed: tokio::sync::Notify,
    /// Other hosts' consents to transactions this node submits (PvP).
    /// Kept in arrival order, the oldest dropped first past `MAX_CONSENTS`.
    #[allow(clippy::type_complexity)]
    consents: Mutex<(std::collections::VecDeque<TxId>, std::collections::HashMap<TxId, dtenge_notary::HostConsent>)>,
    /// Where a task queues before it takes `state` (see [`NodeService::turn`]).
    turn: tokio::sync::Mutex<()>,
    /// The time its transactions spend in each stage of the pipeline.
    stage_times: crate::metrics::StageTimes,
    /// Leases given on this node's DAs and held on other banks' ([`crate::lease`]).
    leases: Mutex<crate::lease::Leases>,
}

/// A PvP leg this node signed for another node's transaction: the proposing
/// node, the reserved inputs and the end of the transaction's window.
type Cosigned = (ParticipantId, Vec<TokenId>, Timestamp);

impl NodeService {
    /// Recovers the node from its journal (snapshot + records) into memory,
    /// replaying settled history into `archive` (idempotently: an archive
    /// that already holds part of the tail gets the same entries again).
    #[allow(clippy::too_many_arguments)]
    pub fn recover(
        config: NodeConfig,
        key: Arc<dyn Signer>,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        participants: Arc<Participants>,
        journal: Journal,
        recovery: Recovery,
        archive: Archive,
    ) -> Result<Arc<NodeService>, NodeError> {
        let mut state = match &recovery.snapshot {
            Some((_, bytes)) => {
                if !archive.durable() {
                    return Err(NodeError::Storage(
                        "the node's journal starts from a snapshot but its archive is in memory: settled history \
                         before the snapshot would be missing; open the node with its on-disk archive"
                            .into(),
                    ));
                }
                let mut state =
                    NodeState::decode_snapshot(bytes).map_err(|e| NodeError::Storage(format!("node snapshot: {e}")))?;
                state.set_archive(archive.clone());
                state
            }
            None => NodeState::with_archive(archive.clone()),
        };
        state.set_host(config.id.clone());
        let restarted = recovery.snapshot.is_some() || !recovery.records.is_empty();
        for (seq, bytes) in &recovery.records {
            let record =
                NodeRecord::decode(bytes).map_err(|e| NodeError::Storage(format!("node journal record {seq}: {e}")))?;
            state.apply(&record);
        }
        let stale = state.drop_entries_ahead_of_journal();
        if stale > 0 {
            tracing::warn!(stale, "archive entries of journal records lost in a crash removed");
        }
        state.rebuild_supply(&config.params.issuers)?;
        if let Some(failure) = archive.failure() {
            return Err(NodeError::Storage(failure));
        }
        let notary = Arc::new(NotaryClient::new(bus.clone(), key.clone(), &participants));
        crate::metrics::describe();
        let send_batch: SendBatch<TxClaim, Verdict> = {
            let notary = Arc::clone(&notary);
            Arc::new(move |claims| {
                let notary = Arc::clone(&notary);
                Box::pin(async move {
                    notary.notarise(claims).await.map_err(|e| NodeError::Unavailable(format!("notary: {e}")))
                })
            })
        };
        let notary_batcher = Batcher::new(dtenge_notary::MAX_BATCH, send_batch).named(config.id.as_str(), "notary");
        let stage_times = crate::metrics::StageTimes::new(&config.id);
        let started = clock.now();
        Ok(Arc::new(NodeService {
            config,
            key,
            bus,
            clock,
            participants,
            journal,
            state: Mutex::new(state),
            notice_cursor: AtomicU64::new(0),
            awaiting: Mutex::new(std::collections::HashMap::new()),
            cosigned: Mutex::new(std::collections::HashMap::new()),
            notary_batcher,
            offline: std::sync::OnceLock::new(),
            links: Mutex::new(std::collections::HashMap::new()),
            hosts: Mutex::new(std::collections::HashMap::new()),
            notary,
            opening: tokio::sync::Mutex::new(()),
            cards: tokio::sync::Mutex::new(()),
            pending: PendingOutflows::default(),
            in_pipeline: Default::default(),
            waiting_for_change: std::sync::atomic::AtomicUsize::new(0),
            vault_changed: tokio::sync::Notify::new(),
            consents: Mutex::default(),
            turn: tokio::sync::Mutex::new(()),
            stage_times,
            leases: Mutex::new(crate::lease::Leases::new(started, restarted)),
        }))
    }

    /// This node's id.
    pub fn id(&self) -> &ParticipantId {
        &self.config.id
    }

    /// This node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// A task's turn at the state: async code takes it before `state`, so a
    /// task waiting for another's section parks and its runtime thread runs
    /// other payments meanwhile, instead of the thread sleeping on the state
    /// lock, where under many concurrent payments they otherwise spent much
    /// of their time (docs/performance.md). Held only around code that does
    /// not await; sync callers take `state` directly.
    pub(crate) async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    fn leases(&self) -> MutexGuard<'_, crate::lease::Leases> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leases given, taken and used so far ([`crate::lease`]).
    pub fn lease_counts(&self) -> crate::lease::LeaseCounts {
        self.leases().counts()
    }

    /// Whether this node would pay `address`, another bank's DA, under a
    /// lease now, without asking that bank.
    pub fn holds_lease(&self, address: &Address) -> bool {
        self.leases().holds(address, self.clock.now())
    }

    fn state(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `read` over the state (queries for the API).
    pub fn read<T>(&self, read: impl FnOnce(&NodeState) -> T) -> T {
        read(&self.state())
    }

    /// The platform clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The participant directory.
    pub fn participants(&self) -> &Participants {
        &self.participants
    }

    /// NBK's CBS link, if this node has one.
    pub fn cbs(&self) -> Option<&crate::conversion::CbsLink> {
        self.config.cbs.as_ref()
    }

    /// Sends a request to another node.
    pub(crate) async fn call_node(&self, to: &ParticipantId, request: NodeRequest) -> Result<NodeAnswer, NodeError> {
        self.bus.request(to, &request).await.map_err(|e| NodeError::Unavailable(format!("{to}: {e}")))
    }

    /// Serves other banks' deposits of this bank's offline loads with
    /// `desk`, for as long as its owner keeps it (once; a second desk is
    /// ignored).
    pub fn serve_offline_deposits(&self, desk: &Arc<dyn OfflineDeposits>) {
        let _ = self.offline.set(Arc::downgrade(desk));
    }

    /// Hands `chain`, which spends a load of `bank`, to `bank`'s node: its
    /// desk settles it from its reserve into the DA the chain names.
    pub async fn hand_deposit(
        &self,
        bank: &ParticipantId,
        chain: dtenge_offline::Chain,
    ) -> Result<dtenge_offline::DepositOutcome, DepositRefusal> {
        match self.call_node(bank, NodeRequest::OfflineDeposit { chain: Box::new(chain) }).await? {
            NodeAnswer::OfflineDeposit(outcome) => Ok(*outcome),
            NodeAnswer::OfflineRefused { code, message } => match dtenge_offline::OfflineCode::from_number(code) {
                Some(code) => Err(DepositRefusal::OfflineCode { code, message }),
                None => Err(NodeError::Unavailable(format!(
                    "{bank} refused the deposit with unknown code {code}: {message}"
                ))
                .into()),
            },
            NodeAnswer::Refused(refusal) => Err(NodeError::RefusedBy { node: bank.clone(), refusal }.into()),
            _ => Err(NodeError::Unavailable(format!("{bank} answered a deposit with something else")).into()),
        }
    }

    /// Another bank's deposit of one of this bank's loads, to this bank's desk.
    async fn take_deposit(&self, chain: dtenge_offline::Chain) -> NodeAnswer {
        let Some(desk) = self.offline.get().and_then(std::sync::Weak::upgrade) else {
            return NodeAnswer::Refused(
                NodeError::Forbidden(format!("{} runs no offline desk", self.config.id)).refusal(),
            );
        };
        match desk.deposit(chain).await {
            Ok(outcome) => NodeAnswer::OfflineDeposit(Box::new(outcome)),
            Err(DepositRefusal::Offline(e)) => {
                NodeAnswer::OfflineRefused { code: e.code() as u16, message: e.to_string() }
            }
            Err(DepositRefusal::OfflineCode { code, message }) => {
                NodeAnswer::OfflineRefused { code: code as u16, message }
            }
            Err(DepositRefusal::Node(e)) => NodeAnswer::Refused(e.refusal()),
        }
    }

    /// Sends `request` to node `to` in the next batch of this node's
    /// deliveries and pre-checks for it.
    pub(crate) async fn call_peer(&self, to: &ParticipantId, request: PeerRequest) -> Result<PeerAnswer, NodeError> {
        let link = {
            let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
            links
                .entry(to.clone())
                .or_insert_with(|| {
                    let name = to.to_string();
                    let (bus, to) = (self.bus.clone(), to.clone());
                    let send: SendBatch<PeerRequest, PeerAnswer> = Arc::new(move |items| {
                        let (bus, to) = (bus.clone(), to.clone());
                        Box::pin(async move { protocol::send_peer_batch(bus.as_ref(), &to, items).await })
                    });
                    Arc::new(Batcher::new(MAX_LINK_BATCH, send).named(self.config.id.as_str(), &name))
                })
                .clone()
        };
        link.call(request).await
    }

    /// Why this node can make nothing more durable (its journal or its
    /// archive failed), if it cannot.
    pub(crate) fn storage_failure(&self) -> Option<String> {
        match self.journal.failure() {
            Some(failure) => Some(format!("the journal failed: {failure}")),
            None => self.state().archive().failure(),
        }
    }

    pub(crate) async fn record_all(&self, records: Vec<NodeRecord>) -> Result<(), NodeError> {
        self.record(records).await
    }

    /// Journals records and applies them in one critical section; waits for durability.
    async fn record(&self, records: Vec<NodeRecord>) -> Result<(), NodeError> {
        self.record_cleared(records, None).await
    }

    /// As [`NodeService::record`]; the payer's `clearance` stops counting
    /// its amount as pending in the same critical section in which the
    /// `Prepared` record enters the DA's book.
    async fn record_cleared(
        &self,
        records: Vec<NodeRecord>,
        clearance: Option<&mut Clearance>,
    ) -> Result<(), NodeError> {
        for record in &records {
            if let NodeRecord::Prepared { tx, .. } = record {
                crate::witness::tell(&self.config.id, || crate::witness::Produced::Transaction(tx.id())).await?;
            }
        }
        let pending = {
            let _turn = self.turn().await;
            self.append_cleared(records, clearance)?
        };
        durable(pending).await
    }

    /// Journals and applies records in one critical section; the returned
    /// write (of the last record) becomes durable with all before it.
    fn append(&self, records: Vec<NodeRecord>) -> Result<Option<dtenge_store::Pending>, NodeError> {
        self.append_cleared(records, None)
    }

    fn append_cleared(
        &self,
        records: Vec<NodeRecord>,
        clearance: Option<&mut Clearance>,
    ) -> Result<Option<dtenge_store::Pending>, NodeError> {
        let mut state = self.state();
        if let Some(failure) = state.archive().failure() {
            return Err(NodeError::Storage(failure));
        }
        let mut last = None;
        for record in &records {
            state.admit(record)?;
            last = Some(self.journal.append(record.encode()).map_err(store)?);
            state.apply(record);
        }
        if let Some(clearance) = clearance {
            clearance.counted_in_book();
        }
        drop(state);
        self.vault_changed.notify_waiters();
        Ok(last)
    }

    pub(crate) fn state_mut(&self) -> MutexGuard<'_, NodeState> {
        self.state()
    }

    pub(crate) async fn ask_oracle(&self, request: OracleRequest) -> Result<OracleAnswer, NodeError> {
        self.oracle(request).await
    }

    /// Remembers a PvP leg signed for `proposer`'s transaction, to free it if unused.
    pub(crate) fn keep_cosigned(&self, tx: TxId, proposer: ParticipantId, inputs: Vec<TokenId>, until: Timestamp) {
        self.cosigned.lock().unwrap_or_else(|p| p.into_inner()).insert(tx, (proposer, inputs, until));
    }

    /// The proposer of a PvP this node co-signed gave it up: its leg is
    /// free at once. Freeing early is safe: should the proposer submit it
    /// anyway, the notary lets only one spend of these tokens through.
    pub(crate) fn abandon_cosigned(&self, from: &ParticipantId, tx: TxId) -> Result<(), NodeError> {
        let mut cosigned = self.cosigned.lock().unwrap_or_else(|p| p.into_inner());
        match cosigned.get(&tx) {
            Some((proposer, _, _)) if proposer == from => {}
            Some(_) => return Err(NodeError::Forbidden(format!("PvP {tx} was proposed by another node"))),
            None => return Ok(()),
        }
        if let Some((_, inputs, _)) = cosigned.remove(&tx) {
            drop(cosigned);
            self.state().vault.unreserve(&inputs, tx);
        }
        Ok(())
    }

    /// Keeps another host's consent to a transaction this node submits (a
    /// PvP): its claims carry it. Kept in memory only: after a crash an
    /// uncommitted PvP is refused by the notary (`NotHost`) and aborted,
    /// both legs together.
    pub(crate) fn remember_consent(&self, tx: TxId, consent: dtenge_notary::HostConsent) {
        let mut consents = self.consents.lock().unwrap_or_else(|p| p.into_inner());
        let (order, by_tx) = &mut *consents;
        while by_tx.len() >= MAX_CONSENTS {
            let Some(oldest) = order.pop_front() else { break };
            by_tx.remove(&oldest);
        }
        if by_tx.insert(tx, consent).is_none() {
            order.push_back(tx);
        }
    }

    /// This node's consent that another node submits `tx`, which spends
    /// tokens this node hosts.
    pub(crate) fn consent_to(&self, tx: &TxId) -> dtenge_notary::HostConsent {
        dtenge_notary::HostConsent::sign(self.config.id.clone(), tx, self.key.as_ref())
    }

    fn draft(&self, payer: &Account, memo: Option<Memo>) -> Draft {
        // An account unknown to the vault has no free tokens.
        let free =
            self.state().vault.free_standard(&payer.id, dtenge_types::Currency::DT).map_or(0, |(_, count)| count);
        Draft {
            host: self.config.id.clone(),
            payer: payer.address,
            now: self.clock.now(),
            window_ms: WINDOW_MS,
            memo,
            change_parts: FREE_TOKENS.saturating_sub(free).max(1),
        }
    }

    /// Resolves payees' hosting nodes through the directory and has each
    /// payee's bank accept the payment (the pre-check) before anything is
    /// reserved.
    async fn payees(&self, to: &[PayTo]) -> Result<Vec<Payee>, NodeError> {
        let payees = self.route(to).await?;
        self.pre_check(&payees).answer().await?;
        Ok(payees)
    }

    /// Resolves payees' hosting nodes through the directory.
    async fn route(&self, to: &[PayTo]) -> Result<Vec<Payee>, NodeError> {
        let mut out = Vec::with_capacity(to.len());
        for p in to {
            if p.amount.is_zero() {
                return Err(NodeError::Invalid("every payment needs a positive amount".into()));
            }
            let host = self.host_of(&p.address).await?;
            out.push(Payee { address: p.address, host, amount: p.amount });
        }
        Ok(out)
    }

    /// Each payee's bank's pre-check of a new payment, to be asked
    /// alongside the payer's side of the pipeline ([`PayeeCheck`]); timed
    /// as the pipeline's `pre_check` stage when a payee is on another node.
    fn pre_check<'a>(&'a self, payees: &'a [Payee]) -> PayeeCheck<'a> {
        PayeeCheck::new(async move {
            let started = std::time::Instant::now();
            self.ask_payees(payees).await?;
            if payees.iter().any(|p| p.host != self.config.id) {
                self.stage_times.record(crate::metrics::Stage::PreCheck, started);
            }
            Ok(())
        })
    }

    /// Whether each payee's bank takes what it is to get ([`Self::can_receive`]).
    async fn ask_payees(&self, payees: &[Payee]) -> Result<(), NodeError> {
        for p in payees {
            self.can_receive(&p.host, &p.address, p.amount).await?;
        }
        Ok(())
    }

    /// The node hosting `address`, as the directory names it: an address
    /// belongs to one DA platform-wide, so a DA of this node with the same
    /// address that the directory gives to another node (opened before
    /// openings were registered first) is never paid. The directory's
    /// answers are remembered: an address never moves to another host.
    pub async fn host_of(&self, address: &Address) -> Result<ParticipantId, NodeError> {
        if let Some(host) = self.hosts.lock().unwrap_or_else(|p| p.into_inner()).get(address) {
            return Ok(host.clone());
        }
        match self.directory(DirectoryRequest::Lookup(*address)).await {
            Ok(DirectoryAnswer::Entry(Some(entry))) => {
                self.remember_host(*address, entry.host.clone());
                Ok(entry.host)
            }
            Ok(_) => Err(NodeError::UnknownRecipient(address.to_string())),
            // The directory is down: a DA of this node is paid here, as a
            // payment between two of its own clients needs no one else.
            Err(e @ NodeError::Unavailable(_)) => match self.state().account_of(address) {
                Some(_) => Ok(self.config.id.clone()),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Whether the directory gives `address` to this node.
    pub(crate) async fn hosted_here(&self, address: &Address) -> Result<bool, NodeError> {
        match self.host_of(address).await {
            Ok(host) => Ok(host == self.config.id),
            Err(NodeError::UnknownRecipient(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn remember_host(&self, address: Address, host: ParticipantId) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if hosts.len() >= HOST_CACHE {
            hosts.clear();
        }
        hosts.insert(address, host);
    }

    /// Finds DAs of a holder anywhere on the platform.
    pub async fn find(&self, iin: IinBin) -> Result<Vec<DaEntry>, NodeError> {
        match self.directory(DirectoryRequest::FindByIin(iin)).await? {
            DirectoryAnswer::Entries(list) => Ok(list),
            _ => Ok(Vec::new()),
        }
    }

    async fn oracle(&self, request: OracleRequest) -> Result<OracleAnswer, NodeError> {
        self.bus
            .request(&self.config.oracle, &request)
            .await
            .map_err(|e| NodeError::Unavailable(format!("oracle: {e}")))
    }

    async fn directory(&self, request: DirectoryRequest) -> Result<DirectoryAnswer, NodeError> {
        self.bus
            .request(&self.config.directory, &request)
            .await
            .map_err(|e| NodeError::Unavailable(format!("directory: {e}")))
    }

    /// Persists and releases the node's archive (at shutdown, after its
    /// journal is closed): later records fail.
    pub fn close_archive(&self) -> Result<(), NodeError> {
        self.state().archive().close()
    }

    /// Writes a snapshot of the node state (memory only: settled history is
    /// in the archive, which is persisted first, so the journal may drop
    /// the records the snapshot covers). Refused over an in-memory archive.
    pub fn snapshot(&self) -> Result<(), NodeError> {
        let (seq, bytes, archive) = {
            let state = self.state();
            (self.journal.last_seq(), state.encode_snapshot(), state.archive().clone())
        };
        if !archive.durable() {
            return Err(NodeError::Storage(
                "the node's archive is in memory: a snapshot would let the journal drop history it cannot rebuild"
                    .into(),
            ));
        }
        // Everything applied up to `seq` was written to the archive under the
        // state lock; make it durable before the journal may drop it.
        archive.persist()?;
        self.journal.snapshot(seq, &bytes).map_err(store)
    }
}

/// Standard DT tokens: what every DT operation spends.
fn standard_dt(t: &Token) -> bool {
    t.is_standard() && t.currency == dtenge_types::Currency::DT
}

/// Waits until a journal write (if any) is durable.
async fn durable(pending: Option<dtenge_store::Pending>) -> Result<(), NodeError> {
    match pending {
        Some(p) => p.durable().await.map(|_| ()).map_err(store),
        None => Ok(()),
    }
}

fn store(e: StoreError) -> NodeError {
    NodeError::Storage(e.to_string())
}
