//! A participant node as a running service: its public operations (open a DA,
//! pay, hold, mark, pay an e-invoice, …), the pipeline every outgoing
//! transaction follows, and the handler other nodes deliver to.
//!
//! ```text
//!  operation ─► lock{select + build + reserve} ─► oracle attestation? ─► sign (custody) ─► kernel validate
//!            ─► journal Prepared (durable) ─► notary ─► journal Committed / Aborted (durable)
//!            ─► deliver to payees' nodes and marking initiators' nodes (while Committed
//!               becomes durable) ─► confirm to the oracle
//!  Deliver   ─► verify the notary's receipt ─► kernel validate (at commit time) ─► journal Received
//!  tick      ─► oracle notices (release / cancel), expiries, retries, unresolved transactions
//! ```
//!
//! Other services are reached only through the [`Bus`]; the same code runs
//! with every service in one process or each in its own.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Ed25519, PublicKey, SecretKey, Signer};
use dtenge_ledger::{Context, Params};
use dtenge_net::{Bus, Clock, Handler, HandlerError, Participants, Role};
use dtenge_notary::{NotaryClient, NotaryRejection, Receipt, TxClaim, Verdict};
use dtenge_oracle::model::{AttestRequest, ContractPurpose, EventState};
use dtenge_oracle::service::{NoticeKind, OracleAnswer, OracleRequest};
use dtenge_oracle::{OracleCode, OracleError, OracleRefusal};
use dtenge_store::{Journal, Recovery, StoreError};
use dtenge_types::{
    Address, Amount, CbsRef, ContractNo, Encumbrance, EventId, Hold, IinBin, InvoiceId, MandateId, MandateTerms,
    Marking, MarkingRule, Memo, ParameterId, ParticipantId, Timestamp, Token, TokenId, Transaction, TxBody, TxId,
};
use serde::{Deserialize, Serialize};

use crate::NodeError;
use crate::accounts::{Account, AccountId, Custody, Holder, KycState};
use crate::archive::Archive;
use crate::batcher::{Batcher, SendBatch};
use crate::build::{self, Draft, Payee};
use crate::directory::{DaEntry, DirectoryAnswer, DirectoryRefusal, DirectoryRequest};
use crate::guard::{self, Clearance, Cleared, Exemption, Outflow, PendingOutflows, Standing};
use crate::state::{HistoryEntry, NodeRecord, NodeState, Notification, Outgoing, Status};
use crate::vault::Balances;

mod regime_ops;
pub use regime_ops::{BankReport, DayAggregate, LargePayment, MarkedMove, MarkedReport};

/// How long a transaction may take from building to commit.
pub const WINDOW_MS: u64 = 60_000;
/// Most consents of other hosts kept (PvPs in flight); past it the oldest
/// is dropped (a PvP still unsubmitted then is refused by the notary and
/// aborted, both legs together).
const MAX_CONSENTS: usize = 4096;
/// Notarisation attempts before a transaction is left to the resolver.
const NOTARY_ATTEMPTS: usize = 3;

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

/// Messages between nodes.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum NodeRequest {
    /// A committed transaction for the receiver's DAs, or a traceability copy.
    Deliver {
        /// The transaction.
        tx: Box<Transaction>,
        /// Its inputs as the sender resolved them.
        inputs: Vec<Token>,
        /// The notary's receipt.
        receipt: Receipt,
    },
    /// A bank asks NBK to convert (SPEC §5).
    Convert {
        /// Which way.
        kind: crate::conversion::ConversionKind,
        /// How much.
        amount: Amount,
        /// The bank's DA.
        bank_address: Address,
        /// For a redemption: the payment of the DT to NBK.
        funding_tx: Option<TxId>,
    },
    /// A bank asks NBK for one of its requests.
    ConversionStatus {
        /// The request.
        id: String,
    },
    /// Another node proposes a PvP to one of this node's DAs.
    PvpPropose {
        /// The proposer's part.
        body: Box<TxBody>,
        /// The proposer's inputs.
        inputs: Vec<Token>,
        /// This node's DA.
        counterparty: Address,
        /// What it gives.
        quote: dtenge_types::Currency,
        /// How much.
        quote_amount: Amount,
    },
    /// A payer's node asks the payee's node, before building a payment,
    /// whether the DA accepts it (closed, revoked key, balance cap).
    CanReceive {
        /// The payee's address.
        address: Address,
        /// How much.
        amount: Amount,
    },
    /// NBK publishes its limit policy.
    Policy(Box<crate::regime::LimitPolicy>),
    /// NBK asks for the bank's aggregate report.
    Report {
        /// From.
        from: Timestamp,
        /// To.
        to: Timestamp,
        /// Large-payment threshold.
        threshold: Amount,
    },
    /// Deliveries and pre-checks of concurrent payments to the same node, in
    /// one envelope (at most [`MAX_LINK_BATCH`]); answered with
    /// [`NodeAnswer::Batch`], one answer per item, in order.
    Batch(Vec<LinkRequest>),
    /// The proposer of a PvP gives it up: the receiver frees the leg it
    /// co-signed at once.
    PvpAbandon {
        /// The transaction.
        tx: TxId,
    },
}

impl dtenge_net::authz::Authorized for NodeRequest {
    fn operation(&self) -> dtenge_net::authz::Operation {
        use dtenge_net::authz::Operation;
        match self {
            NodeRequest::Deliver { .. } => Operation::NodeDeliver,
            NodeRequest::Convert { .. } => Operation::NodeConvert,
            NodeRequest::ConversionStatus { .. } => Operation::NodeConversionStatus,
            NodeRequest::PvpPropose { .. } => Operation::NodePvpPropose,
            NodeRequest::CanReceive { .. } => Operation::NodeCanReceive,
            NodeRequest::Policy(_) => Operation::NodePolicy,
            NodeRequest::Report { .. } => Operation::NodeReport,
            NodeRequest::Batch(_) => Operation::NodeBatch,
            NodeRequest::PvpAbandon { .. } => Operation::NodePvpAbandon,
        }
    }
}

/// Most items in one [`NodeRequest::Batch`].
pub const MAX_LINK_BATCH: usize = 256;

/// What one node sends another in a [`NodeRequest::Batch`].
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum LinkRequest {
    /// As [`NodeRequest::Deliver`].
    Deliver {
        /// The transaction.
        tx: Box<Transaction>,
        /// Its inputs as the sender resolved them.
        inputs: Vec<Token>,
        /// The notary's receipt.
        receipt: Box<Receipt>,
    },
    /// As [`NodeRequest::CanReceive`].
    CanReceive {
        /// The payee's address.
        address: Address,
        /// How much.
        amount: Amount,
    },
}

/// The answer to one [`LinkRequest`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum LinkAnswer {
    /// Accepted (a delivery is durable on the receiving node).
    Accepted,
    /// Refused for good: the code and the message.
    Refused(crate::Refusal),
    /// Could not be handled now (storage); try again later.
    Unavailable(String),
}

/// Answers between nodes.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum NodeAnswer {
    /// Accepted (or already known).
    Accepted,
    /// Refused: the code and the message.
    Refused(crate::Refusal),
    /// A conversion request as NBK holds it.
    Conversion(Box<crate::conversion::ConversionRequest>),
    /// A PvP with this node's leg added and signed.
    Pvp(Box<crate::pvp::PvpContribution>),
    /// A bank's report to NBK.
    Report(Box<BankReport>),
    /// One answer per item of a [`NodeRequest::Batch`], in order.
    Batch(Vec<LinkAnswer>),
}

/// Where a payment goes, as a caller names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayTo {
    /// The recipient DA's address.
    pub address: Address,
    /// How much.
    pub amount: Amount,
}

/// What became of an operation's transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxOutcome {
    /// The transaction.
    pub tx: TxId,
    /// Where it stands (Success once committed).
    pub status: Status,
    /// The notary's commit position, once committed.
    pub notary_seq: Option<u64>,
}

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
    /// Deliveries and pre-checks to each other node, sent in batches.
    links: Mutex<std::collections::HashMap<ParticipantId, Arc<Batcher<LinkRequest, LinkAnswer>>>>,
    /// Hosts of other nodes' DAs already looked up: the directory never moves
    /// an address to another host, so a positive answer stays true.
    hosts: Mutex<std::collections::HashMap<Address, ParticipantId>>,
    /// The notary (one process or a replicated group): batches, receipts,
    /// their verification.
    notary: Arc<NotaryClient>,
    /// Held while a DA is being opened (directory first, then the journal).
    opening: tokio::sync::Mutex<()>,
    /// Payments the guard cleared that no DA's book counts yet.
    pending: PendingOutflows,
    /// Other hosts' consents to transactions this node submits (PvP).
    /// Kept in arrival order, the oldest dropped first past `MAX_CONSENTS`.
    #[allow(clippy::type_complexity)]
    consents: Mutex<(std::collections::VecDeque<TxId>, std::collections::HashMap<TxId, dtenge_notary::HostConsent>)>,
}

/// Sends one batch of deliveries and pre-checks to node `to`.
async fn send_link_batch(
    bus: &dyn Bus,
    to: &ParticipantId,
    items: Vec<LinkRequest>,
) -> Result<Vec<LinkAnswer>, NodeError> {
    let count = items.len();
    let body = borsh::to_vec(&NodeRequest::Batch(items)).map_err(|e| NodeError::Storage(e.to_string()))?;
    let answer = bus.call(to, body).await.map_err(|e| NodeError::Unavailable(format!("{to}: {e}")))?;
    match borsh::from_slice::<NodeAnswer>(&answer) {
        Ok(NodeAnswer::Batch(answers)) if answers.len() == count => Ok(answers),
        Ok(NodeAnswer::Refused(refusal)) => Err(NodeError::RefusedBy { node: to.clone(), refusal }),
        Ok(_) => Err(NodeError::Unavailable(format!("{to} answered the batch with something else"))),
        Err(e) => Err(NodeError::Unavailable(format!("{to} answer: {e}"))),
    }
}

/// A PvP leg this node signed for another node's transaction: the proposing
/// node, the reserved inputs and the end of the transaction's window.
type Cosigned = (ParticipantId, Vec<TokenId>, Timestamp);

/// A transaction ready to go: body, resolved inputs, who signs, what the oracle must attest.
struct Plan {
    account: AccountId,
    body: TxBody,
    inputs: Vec<Token>,
    signers: Vec<SecretKey>,
    attest: Option<AttestRequest>,
    /// The payer's guard's permission; dropped once `Prepared` is journaled
    /// (the DA's book then counts the amount) or the operation is refused.
    clearance: Clearance,
}

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
        let send_batch: SendBatch<TxClaim, Verdict> = {
            let notary = Arc::clone(&notary);
            Arc::new(move |claims| {
                let notary = Arc::clone(&notary);
                Box::pin(async move {
                    notary.notarise(claims).await.map_err(|e| NodeError::Unavailable(format!("notary: {e}")))
                })
            })
        };
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
            notary_batcher: Batcher::new(dtenge_notary::MAX_BATCH, send_batch),
            links: Mutex::new(std::collections::HashMap::new()),
            hosts: Mutex::new(std::collections::HashMap::new()),
            notary,
            opening: tokio::sync::Mutex::new(()),
            pending: PendingOutflows::default(),
            consents: Mutex::default(),
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
        let body = borsh::to_vec(&request).map_err(|e| NodeError::Storage(e.to_string()))?;
        let answer = self.bus.call(to, body).await.map_err(|e| NodeError::Unavailable(format!("{to}: {e}")))?;
        borsh::from_slice(&answer).map_err(|e| NodeError::Unavailable(format!("{to} answer: {e}")))
    }

    /// Sends `request` to node `to` in the next batch of this node's
    /// deliveries and pre-checks for it.
    pub(crate) async fn call_link(&self, to: &ParticipantId, request: LinkRequest) -> Result<LinkAnswer, NodeError> {
        let link = {
            let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
            links
                .entry(to.clone())
                .or_insert_with(|| {
                    let (bus, to) = (self.bus.clone(), to.clone());
                    let send: SendBatch<LinkRequest, LinkAnswer> = Arc::new(move |items| {
                        let (bus, to) = (bus.clone(), to.clone());
                        Box::pin(async move { send_link_batch(bus.as_ref(), &to, items).await })
                    });
                    Arc::new(Batcher::new(MAX_LINK_BATCH, send))
                })
                .clone()
        };
        link.call(request).await
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
                crate::witness::tell(&self.config.id, crate::witness::Produced::Transaction(tx.id())).await?;
            }
        }
        durable(self.append_cleared(records, clearance)?).await
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
        Ok(last)
    }

    // ------------------------------------------------------------------
    // Accounts

    /// Opens a DA for `holder`; the node generates and keeps the key unless
    /// the client holds its own (`client_key`). Registers it in the directory.
    pub async fn open_account(
        &self,
        holder: Holder,
        client_key: Option<PublicKey>,
        kyc: KycState,
    ) -> Result<Account, NodeError> {
        let (address, custody) = match client_key {
            Some(pk) => {
                pk.check_canonical().map_err(|e| NodeError::Invalid(format!("client key: {e}")))?;
                (Address(pk), Custody::Client)
            }
            None => {
                let key = SecretKey::generate();
                (Address(key.public_key()), Custody::Custodial(Box::new(key)))
            }
        };
        self.open_with(holder, address, custody, kyc).await
    }

    /// Opens a DA with a given key (institutional DAs from configuration).
    pub async fn open_account_with_key(
        &self,
        holder: Holder,
        key: SecretKey,
        kyc: KycState,
    ) -> Result<Account, NodeError> {
        let address = Address(key.public_key());
        let existing = self.state().account_of(&address).cloned();
        if let Some(existing) = existing {
            // Opened before; make sure the directory has it (a first start may
            // have opened it while the directory was unreachable).
            self.register(&existing).await?;
            return Ok(existing);
        }
        self.open_with(holder, address, Custody::Custodial(Box::new(key)), kyc).await
    }

    /// Opens a DA: the directory first takes the address for this node (it
    /// refuses an address another node's DA has), and only then is the DA
    /// journaled, so a refused opening leaves nothing on the node or in the
    /// directory. Openings run one at a time, so concurrent ones never share
    /// an id.
    async fn open_with(
        &self,
        holder: Holder,
        address: Address,
        custody: Custody,
        kyc: KycState,
    ) -> Result<Account, NodeError> {
        let _one_at_a_time = self.opening.lock().await;
        holder.check().map_err(NodeError::Invalid)?;
        if self.state().account_of(&address).is_some() {
            return Err(NodeError::Invalid(format!("a DA with address {address} already exists")));
        }
        let account = Account {
            id: AccountId::new(&self.config.id, self.state().opened.saturating_add(1)),
            holder,
            address,
            custody,
            kyc,
            opened_at: self.clock.now(),
            closed: false,
        };
        self.register(&account).await?;
        crate::witness::tell(&self.config.id, crate::witness::Produced::Account(address)).await?;
        self.record(vec![NodeRecord::AccountOpened(account.clone())]).await?;
        Ok(account)
    }

    /// Registers a DA in the platform directory (idempotent).
    async fn register(&self, account: &Account) -> Result<(), NodeError> {
        let entry = DaEntry {
            address: account.address,
            host: self.config.id.clone(),
            account: account.id.clone(),
            iin_bin: account.holder.iin_bin,
            name: account.holder.name.clone(),
            kind: account.holder.kind,
        };
        match self.directory(DirectoryRequest::Register(entry)).await? {
            DirectoryAnswer::Refused(DirectoryRefusal::Storage(why)) => Err(NodeError::Unavailable(why)),
            DirectoryAnswer::Refused(DirectoryRefusal::AddressTaken { address, host }) => {
                Err(NodeError::AddressTaken { address, host })
            }
            DirectoryAnswer::Refused(refusal @ DirectoryRefusal::NotTheHost { .. }) => {
                Err(NodeError::Invalid(refusal.to_string()))
            }
            DirectoryAnswer::Done => {
                self.remember_host(account.address, self.config.id.clone());
                Ok(())
            }
            DirectoryAnswer::Entry(_) | DirectoryAnswer::Entries(_) => {
                Err(NodeError::Unavailable("the directory answered a registration with something else".into()))
            }
        }
    }

    /// Sets a DA's KYC state.
    pub async fn set_kyc(&self, account: &AccountId, kyc: KycState) -> Result<(), NodeError> {
        self.account(account)?;
        self.record(vec![NodeRecord::KycSet { account: account.clone(), kyc }]).await
    }

    /// A DA.
    pub fn account(&self, id: &AccountId) -> Result<Account, NodeError> {
        self.state().accounts.get(id).cloned().ok_or_else(|| NodeError::UnknownAccount(id.to_string()))
    }

    /// DAs of a holder on this node.
    pub fn accounts_of(&self, iin: &IinBin) -> Vec<Account> {
        self.state().accounts_of(iin).into_iter().cloned().collect()
    }

    /// Balances by kind.
    pub fn balances(&self, id: &AccountId) -> Result<Balances, NodeError> {
        self.account(id)?;
        self.state().vault.balances(id)
    }

    /// Up to `limit` of a DA's newest history lines, newest first.
    pub fn history(&self, id: &AccountId, limit: usize) -> Vec<HistoryEntry> {
        self.archive().history(id, limit)
    }

    /// A DA's history, newest first, until `visit` returns `false` (read
    /// from the archive without holding the node's state).
    pub fn history_newest_first(&self, id: &AccountId, visit: impl FnMut(u64, HistoryEntry) -> bool) {
        self.archive().history_newest_first(id, visit)
    }

    /// Up to `limit` of a DA's newest notifications, newest first.
    pub fn notifications(&self, id: &AccountId, limit: usize) -> Vec<Notification> {
        self.archive().notifications(id, limit)
    }

    /// A DA's notifications, newest first, until `visit` returns `false`.
    pub fn notifications_newest_first(&self, id: &AccountId, visit: impl FnMut(Notification) -> bool) {
        self.archive().notifications_newest_first(id, visit)
    }

    /// The parents of a token this node has seen created.
    pub fn lineage(&self, token: &TokenId) -> Option<Vec<TokenId>> {
        self.archive().lineage(token)
    }

    /// Visits every transaction this node built — those in memory, then the
    /// archived ones — until `visit` returns `false`. The archive is scanned
    /// without holding the node's state, so payments go on meanwhile.
    pub fn for_each_outgoing(&self, mut visit: impl FnMut(&TxId, &Outgoing) -> bool) {
        let (unsettled, archive) = {
            let state = self.state();
            let unsettled: Vec<(TxId, Outgoing)> = state.unsettled().map(|(id, o)| (*id, o.clone())).collect();
            (unsettled, state.archive().clone())
        };
        for (id, o) in &unsettled {
            if !visit(id, o) {
                return;
            }
        }
        // One settled since the copy above was visited already.
        let seen: BTreeSet<TxId> = unsettled.into_iter().map(|(id, _)| id).collect();
        archive.for_each_settled(|id, o| seen.contains(id) || visit(id, o));
    }

    /// The node's archive, for reads that need not hold the state lock
    /// (history, notifications, lineage and received transactions live only there).
    pub fn archive(&self) -> Archive {
        self.state().archive().clone()
    }

    // ------------------------------------------------------------------
    // Operations

    /// The custodial key the node signs with for `account`.
    fn keys_of(account: &Account) -> Result<Vec<SecretKey>, NodeError> {
        let key = account.key().cloned().ok_or_else(|| NodeError::ClientSigns(account.id.to_string()))?;
        Ok(vec![key])
    }

    /// Runs the payer's guard for `outflow` from `account` (see [`crate::guard`]):
    /// tops the DA up from its linked bank account when the guard asks, then
    /// asks again.
    pub(crate) async fn clear(&self, account: &Account, outflow: Outflow) -> Result<Clearance, NodeError> {
        let mut topped_up = false;
        loop {
            let cleared = {
                let state = self.state();
                let current =
                    state.accounts.get(&account.id).ok_or_else(|| NodeError::UnknownAccount(account.id.to_string()))?;
                let standing = Standing {
                    account: current,
                    limits: state.limits_of(current),
                    spent_today: state.spent_on_day(&current.id, self.clock.now()),
                    orders: state.active_orders(&current.id),
                    free_standard: state.vault.available(&current.id, standard_dt)?,
                    linked_bank_account: state.profile(&current.id).linked_bank_account,
                };
                guard::clear(&standing, outflow, &self.pending)?
            };
            match cleared {
                Cleared::Go(clearance) => return Ok(clearance),
                Cleared::TopUp { shortfall, bank_account } if !topped_up => {
                    // Boxed: the top-up is itself a guarded conversion.
                    Box::pin(self.waterfall(account, shortfall, &bank_account)).await?;
                    topped_up = true;
                }
                Cleared::TopUp { shortfall, .. } => {
                    return Err(NodeError::FundsInFlight { requested: shortfall, available: Amount::ZERO });
                }
            }
        }
    }

    /// For a DA whose holder keeps the key (SPEC §5: "the client signs
    /// itself"): builds the payment, reserves its inputs and returns the
    /// unsigned transaction; the client signs its id and hands it back to
    /// [`NodeService::submit_signed`] within the transaction's window.
    pub async fn prepare_pay(
        &self,
        from: &AccountId,
        to: &[PayTo],
        memo: Option<Memo>,
    ) -> Result<Transaction, NodeError> {
        let account = self.account(from)?;
        if account.key().is_some() {
            return Err(NodeError::Invalid(format!("{from} is custodial: the node signs; use pay")));
        }
        let total = Amount::checked_sum(to.iter().map(|p| p.amount)).ok_or(NodeError::Overflow)?;
        let payees = self.payees(to).await?;
        let clearance = self.clear(&account, Outflow::Pay { amount: total, standard: total }).await?;
        let draft = self.draft(&account, memo);
        let plan = self
            .plan(clearance, Vec::new(), None, total, standard_dt, |inputs| build::transfer(&draft, inputs, &payees))?;
        let tx = Transaction::unsigned(plan.body.clone());
        self.expire_awaiting();
        self.awaiting.lock().unwrap_or_else(|p| p.into_inner()).insert(tx.id(), plan);
        Ok(tx)
    }

    /// Takes back a transaction from [`NodeService::prepare_pay`] with the
    /// holder's signature, and sees it through.
    pub async fn submit_signed(&self, tx: Transaction) -> Result<TxOutcome, NodeError> {
        let id = tx.id();
        let plan = self.awaiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&id).ok_or_else(|| {
            NodeError::Invalid(format!("no prepared transaction {id} awaits a signature (expired or unknown)"))
        })?;
        let input_ids: Vec<TokenId> = plan.body.inputs.to_vec();
        // Orders placed while the client was signing apply too.
        let payer = self.account(&plan.account)?;
        if let Err(e) = self.clear(&payer, Outflow::Pay { amount: Amount::ZERO, standard: Amount::ZERO }).await {
            self.state().vault.unreserve(&input_ids, id);
            return Err(e);
        }
        if let Some(revoked) = tx.signatures.iter().find(|s| self.is_revoked(&s.signer)) {
            self.state().vault.unreserve(&input_ids, id);
            return Err(NodeError::Forbidden(format!(
                "key {} was revoked after a key rotation and can sign nothing",
                revoked.signer
            )));
        }
        let ctx = Context { now: self.clock.now(), params: &self.config.params };
        if let Err(rejection) = dtenge_ledger::validate(&tx, &plan.inputs, &ctx, &Ed25519) {
            self.state().vault.unreserve(&input_ids, id);
            return Err(NodeError::Rejected(rejection));
        }
        let Plan { account, inputs, mut clearance, .. } = plan;
        let prepared = NodeRecord::Prepared {
            tx: tx.clone(),
            inputs: inputs.clone(),
            account: account.clone(),
            at: self.clock.now(),
        };
        if let Err(e) = self.record_cleared(vec![prepared], Some(&mut clearance)).await {
            self.state().vault.unreserve(&input_ids, id);
            return Err(e);
        }
        self.submit(tx, inputs, account).await
    }

    pub(crate) fn custodial_keys(account: &Account) -> Result<Vec<SecretKey>, NodeError> {
        Self::keys_of(account)
    }

    pub(crate) fn state_mut(&self) -> MutexGuard<'_, NodeState> {
        self.state()
    }

    pub(crate) async fn ask_oracle(&self, request: OracleRequest) -> Result<OracleAnswer, NodeError> {
        self.oracle(request).await
    }

    pub(crate) async fn submit_prepared(
        &self,
        tx: Transaction,
        inputs: Vec<Token>,
        account: AccountId,
    ) -> Result<TxOutcome, NodeError> {
        self.submit(tx, inputs, account).await
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

    /// The notary claim for `tx`, with the consent of another host if one
    /// was given.
    fn claim_of(&self, tx: &Transaction, inputs: &[Token]) -> Result<TxClaim, NodeError> {
        let claim = TxClaim::of(tx, inputs)?;
        let consent = self.consents.lock().unwrap_or_else(|p| p.into_inner()).1.get(&claim.tx).cloned();
        Ok(match consent {
            Some(consent) => claim.with_consent(consent)?,
            None => claim,
        })
    }

    /// Frees the inputs of prepared transactions whose window has closed.
    fn expire_awaiting(&self) {
        let now = self.clock.now();
        let expired: Vec<(TxId, Vec<TokenId>)> = {
            let mut awaiting = self.awaiting.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<TxId> =
                awaiting.iter().filter(|(_, p)| p.body.window.not_after < now).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| awaiting.remove(&id).map(|p| (id, p.body.inputs.to_vec()))).collect()
        };
        let now_expired: Vec<(TxId, Vec<TokenId>)> = {
            let mut cosigned = self.cosigned.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<TxId> = cosigned.iter().filter(|(_, (_, _, until))| *until < now).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| cosigned.remove(&id).map(|(_, inputs, _)| (id, inputs))).collect()
        };
        let mut state = self.state();
        for (id, inputs) in expired.into_iter().chain(now_expired) {
            state.vault.unreserve(&inputs, id);
        }
    }

    fn draft(&self, payer: &Account, memo: Option<Memo>) -> Draft {
        Draft { host: self.config.id.clone(), payer: payer.address, now: self.clock.now(), window_ms: WINDOW_MS, memo }
    }

    /// Resolves payees' hosting nodes through the directory.
    async fn payees(&self, to: &[PayTo]) -> Result<Vec<Payee>, NodeError> {
        let mut out = Vec::with_capacity(to.len());
        for p in to {
            if p.amount.is_zero() {
                return Err(NodeError::Invalid("every payment needs a positive amount".into()));
            }
            let host = self.host_of(&p.address).await?;
            self.can_receive(&host, &p.address, p.amount).await?;
            out.push(Payee { address: p.address, host, amount: p.amount });
        }
        Ok(out)
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

    /// Selects, builds and reserves under one lock, so concurrent operations
    /// never pick the same tokens.
    fn plan(
        &self,
        clearance: Clearance,
        signers: Vec<SecretKey>,
        attest: Option<AttestRequest>,
        amount: Amount,
        wanted: impl Fn(&Token) -> bool,
        build: impl FnOnce(&[(TokenId, Token)]) -> Result<TxBody, NodeError>,
    ) -> Result<Plan, NodeError> {
        let mut state = self.state();
        let inputs = state.vault.select(&clearance, amount, wanted)?;
        let body = build(&inputs)?;
        let ids: Vec<TokenId> = inputs.iter().map(|(id, _)| *id).collect();
        state.vault.reserve(&clearance, &ids, body.id())?;
        Ok(Plan {
            account: clearance.account().clone(),
            body,
            inputs: inputs.into_iter().map(|(_, t)| t).collect(),
            signers,
            attest,
            clearance,
        })
    }

    /// A standard payment to one or several DAs (SPEC §4.3).
    pub async fn pay(&self, from: &AccountId, to: &[PayTo], memo: Option<Memo>) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let total = Amount::checked_sum(to.iter().map(|p| p.amount)).ok_or(NodeError::Overflow)?;
        let payees = self.payees(to).await?;
        let clearance = self.clear(&account, Outflow::Pay { amount: total, standard: total }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, memo);
        let plan =
            self.plan(clearance, keys, None, total, standard_dt, |inputs| build::transfer(&draft, inputs, &payees))?;
        let outcome = self.execute(plan).await?;
        self.sweep_local(payees.iter().map(|p| p.address)).await;
        Ok(outcome)
    }

    /// Reverse waterfall for this node's DAs that just received money.
    async fn sweep_local(&self, addresses: impl Iterator<Item = Address>) {
        let local: BTreeSet<AccountId> = {
            let state = self.state();
            addresses.filter_map(|a| state.account_of(&a).map(|acc| acc.id.clone())).collect()
        };
        for account in local {
            if let Err(e) = self.sweep_over_cap(&account).await {
                tracing::warn!(%account, error = %e, "reverse waterfall deferred");
            }
        }
    }

    /// Pays address-marked funds to next-level recipients (SPEC §4.2.1).
    pub async fn pay_marked(
        &self,
        from: &AccountId,
        to: &[PayTo],
        reference: Option<&str>,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let payees = self.payees(to).await?;
        let total = Amount::checked_sum(payees.iter().map(|p| p.amount)).ok_or(NodeError::Overflow)?;
        let clearance = self.clear(&account, Outflow::Pay { amount: total, standard: Amount::ZERO }).await?;
        let keys = Self::keys_of(&account)?;
        // All inputs must share one marking: pick the rule of the largest marked token (or the named reference).
        let rule = {
            let state = self.state();
            let mut marked: Vec<(Amount, AddressRuleKey)> = state
                .vault
                .of_account(&account.id)
                .filter(|(_, s)| s.reserved_by.is_none())
                .filter_map(|(_, s)| match &s.token.marking {
                    Some(Marking::Address(m)) if reference.is_none_or(|r| m.rule.reference.as_str() == r) => {
                        Some((s.token.amount, AddressRuleKey { rule: m.rule.clone(), level: m.level }))
                    }
                    _ => None,
                })
                .collect();
            marked.sort_by_key(|m| std::cmp::Reverse(m.0));
            marked.into_iter().next().map(|(_, k)| k).ok_or(NodeError::NothingToSpend)?
        };
        let draft = self.draft(&account, memo);
        let wanted = move |t: &Token| {
            matches!(&t.marking, Some(Marking::Address(m)) if m.rule == rule.rule && m.level == rule.level)
                && t.encumbrance.is_none()
        };
        let plan =
            self.plan(clearance, keys, None, total, wanted, |inputs| build::marked_transfer(&draft, inputs, &payees))?;
        self.execute(plan).await
    }

    /// Marks funds by address for `recipient` (SPEC §4.2.1).
    pub async fn mark_address(
        &self,
        from: &AccountId,
        recipient: PayTo,
        rule: MarkingRule,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let payee = self.payees(std::slice::from_ref(&recipient)).await?.remove(0);
        let amount = recipient.amount;
        let clearance = self.clear(&account, Outflow::Pay { amount, standard: amount }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, memo);
        let plan = self.plan(clearance, keys, None, amount, standard_dt, |inputs| {
            build::mark_address(&draft, inputs, &payee, rule)
        })?;
        self.execute(plan).await
    }

    /// Marks funds with a parameter registered on the oracle (SPEC §4.2.2).
    pub async fn mark_parameter(
        &self,
        from: &AccountId,
        recipient: PayTo,
        parameter: ParameterId,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let payee = self.payees(std::slice::from_ref(&recipient)).await?.remove(0);
        let amount = recipient.amount;
        let clearance = self.clear(&account, Outflow::Pay { amount, standard: amount }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, memo);
        let plan = self.plan(clearance, keys, Some(AttestRequest::Plain), amount, standard_dt, |inputs| {
            build::mark_parameter(&draft, inputs, &payee, parameter)
        })?;
        self.execute(plan).await
    }

    /// Pays parameter-marked funds under a contract; `cash_out_to` names the
    /// bank DA for a cash-out (SPEC §4.2.2).
    pub async fn contract_payment(
        &self,
        from: &AccountId,
        parameter: ParameterId,
        contract: ContractNo,
        recipient: PayTo,
        cash_out: bool,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let state = self
            .oracle(OracleRequest::GetContract { parameter: parameter.clone(), contract: contract.clone() })
            .await?;
        let OracleAnswer::Contract(Some(c)) = state else {
            return Err(NodeError::Oracle(
                OracleError::UnknownContract { parameter: parameter.clone(), contract: contract.clone() }.refusal(),
            ));
        };
        let unmark = cash_out || c.contract.final_recipient;
        let purpose =
            if cash_out { ContractPurpose::CashOut { bank: recipient.address } } else { ContractPurpose::Transfer };
        let payee = self.payees(std::slice::from_ref(&recipient)).await?.remove(0);
        let clearance = self.clear(&account, Outflow::Pay { amount: recipient.amount, standard: Amount::ZERO }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, memo);
        let wanted = |t: &Token| {
            matches!(&t.marking, Some(Marking::Parameter(m)) if m.parameter == parameter) && t.encumbrance.is_none()
        };
        let plan = self.plan(
            clearance,
            keys,
            Some(AttestRequest::ContractPayment { purpose }),
            recipient.amount,
            wanted,
            |inputs| build::contract_payment(&draft, inputs, &payee, contract.clone(), unmark),
        )?;
        self.execute(plan).await
    }

    /// Holds funds for an oracle event (SPEC §4.1): the event's amount, or
    /// `amount` for a campaign contribution.
    pub async fn hold(&self, from: &AccountId, event: EventId, amount: Option<Amount>) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let spec = self.event(&event).await?.spec;
        let amount = spec
            .amount
            .or(amount)
            .ok_or_else(|| NodeError::Invalid("a campaign contribution needs an amount".into()))?;
        let hold = Hold {
            event: event.clone(),
            recipient: spec.recipient,
            recipient_node: spec.recipient_node.clone(),
            valid_until: spec.hold_valid_until(),
            kind: spec.kind.hold_kind(),
        };
        let clearance = self.clear(&account, Outflow::Commit { amount }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, None);
        let plan = self.plan(clearance, keys, Some(AttestRequest::Plain), amount, standard_dt, |inputs| {
            build::hold(&draft, inputs, amount, hold)
        })?;
        self.execute(plan).await
    }

    async fn event(&self, event: &EventId) -> Result<EventState, NodeError> {
        match self.oracle(OracleRequest::GetEvent(event.clone())).await? {
            OracleAnswer::Event(Some(e)) => Ok(e),
            _ => Err(NodeError::Oracle(OracleError::UnknownEvent { event: event.clone() }.refusal())),
        }
    }

    /// Local DAs holding funds for `event`.
    fn holders_of(&self, event: &EventId) -> BTreeSet<AccountId> {
        let state = self.state();
        state
            .vault
            .iter()
            .filter(|(_, s)| s.reserved_by.is_none())
            .filter(|(_, s)| matches!(&s.token.encumbrance, Some(Encumbrance::Hold(h)) if h.event == *event))
            .map(|(_, s)| s.account.clone())
            .collect()
    }

    fn held_by(event: &EventId) -> impl Fn(&Token) -> bool + '_ {
        move |t: &Token| matches!(&t.encumbrance, Some(Encumbrance::Hold(h)) if h.event == *event)
    }

    /// Releases what the oracle says is releasable for `event` from a local DA.
    pub async fn release(&self, account_id: &AccountId, event: &EventId) -> Result<TxOutcome, NodeError> {
        let account = self.account(account_id)?;
        let state = self.event(event).await?;
        let releasable =
            if state.spec.kind.is_campaign() { state.releasable_for(&account.address) } else { state.releasable() };
        if releasable.is_zero() {
            return Err(NodeError::Oracle(OracleRefusal::new(
                OracleCode::EventNotOccurred,
                format!("nothing is releasable for event {event}"),
            )));
        }
        let held = self.state().vault.available(&account.id, Self::held_by(event))?;
        let amount = releasable.min(held);
        let clearance = self.clear(&account, Outflow::Exempt(Exemption::Release)).await?;
        let draft = self.draft(&account, None);
        let plan =
            self.plan(clearance, Vec::new(), Some(AttestRequest::Plain), held, Self::held_by(event), |inputs| {
                build::release(&draft, inputs, amount)
            })?;
        self.execute(plan).await
    }

    /// Returns held funds: after valid-until (`expire`) or on a cancelled event.
    pub async fn unhold(&self, account_id: &AccountId, event: &EventId, expire: bool) -> Result<TxOutcome, NodeError> {
        let account = self.account(account_id)?;
        let held = self.state().vault.available(&account.id, Self::held_by(event))?;
        let draft = self.draft(&account, None);
        let attest = (!expire).then_some(AttestRequest::Plain);
        let clearance = self.clear(&account, Outflow::Exempt(Exemption::Return)).await?;
        let plan = self.plan(clearance, Vec::new(), attest, held, Self::held_by(event), |inputs| {
            build::unhold(&draft, inputs, event.clone(), expire)
        })?;
        self.execute(plan).await
    }

    /// Pays an e-invoice registered on the oracle (SPEC §4.2.3): own VAT
    /// tokens first, standard tokens for the rest.
    pub async fn pay_invoice(&self, from: &AccountId, invoice: InvoiceId) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let OracleAnswer::Invoice(Some(state)) = self.oracle(OracleRequest::GetInvoice(invoice.clone())).await? else {
            return Err(NodeError::Oracle(OracleError::UnknownInvoice { invoice: invoice.clone() }.refusal()));
        };
        let inv = state.invoice;
        if inv.buyer != account.address {
            return Err(NodeError::Invalid(format!("e-invoice {invoice} is addressed to another buyer")));
        }
        if state.paid_by.is_some() {
            return Err(NodeError::Invalid(format!("e-invoice {invoice} is already paid")));
        }
        let seller = self.payees(&[PayTo { address: inv.seller, amount: Amount::from_tiyn(1) }]).await?.remove(0);
        let draft = self.draft(&account, None);
        let is_vat = |t: &Token| t.marking == Some(Marking::Vat) && t.encumbrance.is_none();
        let total = inv.net.checked_add(inv.vat).ok_or(NodeError::Overflow)?;
        let own_vat = self.state().vault.available(&account.id, is_vat)?;
        let from_standard =
            inv.net.checked_add(inv.vat.checked_sub(own_vat).unwrap_or(Amount::ZERO)).ok_or(NodeError::Overflow)?;
        let clearance = self.clear(&account, Outflow::Pay { amount: total, standard: from_standard }).await?;
        let keys = Self::keys_of(&account)?;
        let plan = {
            let mut st = self.state();
            let vat_inputs = match st.vault.select(&clearance, inv.vat, is_vat) {
                Ok(enough) => enough,
                // Fewer VAT tokens than the VAT part: take them all.
                Err(_) => st.vault.select_all(&clearance, is_vat, dtenge_types::MAX_INPUTS),
            };
            let vat_in = Amount::checked_sum(vat_inputs.iter().map(|(_, t)| t.amount)).ok_or(NodeError::Overflow)?;
            let std_needed = inv.net.checked_add(inv.vat.saturating_sub(vat_in)).ok_or(NodeError::Overflow)?;
            let mut inputs = vat_inputs;
            if !std_needed.is_zero() {
                inputs.extend(st.vault.select(&clearance, std_needed, standard_dt)?);
            }
            let body = build::pay_invoice(&draft, &inputs, &seller, inv.net, inv.vat, invoice)?;
            let ids: Vec<TokenId> = inputs.iter().map(|(id, _)| *id).collect();
            st.vault.reserve(&clearance, &ids, body.id())?;
            Plan {
                account: account.id.clone(),
                body,
                inputs: inputs.into_iter().map(|(_, t)| t).collect(),
                signers: keys,
                attest: Some(AttestRequest::Plain),
                clearance,
            }
        };
        self.execute(plan).await
    }

    /// Pays VAT tokens to the tax authority, where they become standard.
    pub async fn pay_vat(&self, from: &AccountId, amount: Amount) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let authority = *self
            .config
            .params
            .tax_authorities
            .iter()
            .next()
            .ok_or_else(|| NodeError::Invalid("no tax authority is configured".into()))?;
        let payee = self.payees(&[PayTo { address: authority, amount }]).await?.remove(0);
        let clearance = self.clear(&account, Outflow::Pay { amount, standard: Amount::ZERO }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, None);
        let is_vat = |t: &Token| t.marking == Some(Marking::Vat) && t.encumbrance.is_none();
        let plan = self.plan(clearance, keys, None, amount, is_vat, |inputs| build::pay_vat(&draft, inputs, &payee))?;
        self.execute(plan).await
    }

    /// Reserves funds a grantee may debit until `valid_until` (SPEC §4.4).
    pub async fn grant_mandate(
        &self,
        from: &AccountId,
        mandate: MandateId,
        grantee: Address,
        amount: Amount,
        valid_until: Timestamp,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let clearance = self.clear(&account, Outflow::Commit { amount }).await?;
        let keys = Self::keys_of(&account)?;
        let terms = MandateTerms { mandate, grantee, valid_until };
        let draft = self.draft(&account, None);
        let plan = self.plan(clearance, keys, None, amount, standard_dt, |inputs| {
            build::grant_mandate(&draft, inputs, amount, terms)
        })?;
        self.execute(plan).await
    }

    /// The grantee (a DA of this node) debits `owner`'s reserved funds to `to`.
    pub async fn debit(
        &self,
        grantee: &AccountId,
        owner: &AccountId,
        mandate: &MandateId,
        to: PayTo,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let grantee_account = self.account(grantee)?;
        if grantee_account.closed {
            return Err(NodeError::AccountClosed(grantee.to_string()));
        }
        let keys = Self::keys_of(&grantee_account)?;
        let owner_account = self.account(owner)?;
        let payee = self.payees(std::slice::from_ref(&to)).await?.remove(0);
        let clearance = self.clear(&owner_account, Outflow::MandateDebit { amount: to.amount }).await?;
        let draft = self.draft(&grantee_account, memo);
        let wanted = |t: &Token| matches!(&t.encumbrance, Some(Encumbrance::Mandate(m)) if m.mandate == *mandate && m.grantee == grantee_account.address);
        let owner_host = self.config.id.clone();
        let plan = self.plan(clearance, keys, None, to.amount, wanted, |inputs| {
            build::debit(&draft, inputs, &payee, owner_account.address, owner_host)
        })?;
        self.execute(plan).await
    }

    /// The owner takes reserved funds back.
    pub async fn revoke_mandate(&self, from: &AccountId, mandate: &MandateId) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let clearance = self.clear(&account, Outflow::Exempt(Exemption::Return)).await?;
        let keys = Self::keys_of(&account)?;
        let wanted = |t: &Token| matches!(&t.encumbrance, Some(Encumbrance::Mandate(m)) if m.mandate == *mandate);
        let all = self.state().vault.available(&account.id, wanted)?;
        let draft = self.draft(&account, None);
        let plan = self.plan(clearance, keys, None, all, wanted, |inputs| {
            build::revoke_mandate(&draft, inputs, mandate.clone())
        })?;
        self.execute(plan).await
    }

    /// NBK: issues DT to a bank's DA once the CBS has confirmed (SPEC §5).
    /// Another central bank's node issues its own currency the same way.
    pub async fn issue(&self, issuer: &AccountId, to: PayTo, cbs_reference: CbsRef) -> Result<TxOutcome, NodeError> {
        let account = self.account(issuer)?;
        if account.closed {
            return Err(NodeError::AccountClosed(issuer.to_string()));
        }
        let keys = Self::keys_of(&account)?;
        let currency = self
            .config
            .params
            .issuers
            .iter()
            .find(|(_, a)| **a == account.address)
            .map(|(c, _)| *c)
            .ok_or_else(|| NodeError::Invalid(format!("{issuer} is not the issuer of any currency")))?;
        let payee = self.payees(std::slice::from_ref(&to)).await?.remove(0);
        let body = build::issue(&self.draft(&account, None), &payee, cbs_reference, currency)?;
        let clearance = self.clear(&account, Outflow::Exempt(Exemption::Issue)).await?;
        self.execute(Plan {
            account: account.id.clone(),
            body,
            inputs: Vec::new(),
            signers: keys,
            attest: None,
            clearance,
        })
        .await
    }

    /// NBK: destroys `amount` of DT it holds once the CBS has credited the bank (SPEC §5).
    pub async fn redeem(
        &self,
        issuer: &AccountId,
        amount: Amount,
        cbs_reference: CbsRef,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(issuer)?;
        let clearance = self.clear(&account, Outflow::Conversion { amount }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, None);
        let plan = self.plan(clearance, keys, None, amount, standard_dt, |inputs| {
            build::redeem(&draft, inputs, amount, cbs_reference)
        })?;
        self.execute(plan).await
    }

    // ------------------------------------------------------------------
    // The pipeline

    async fn execute(&self, plan: Plan) -> Result<TxOutcome, NodeError> {
        let id = plan.body.id();
        let input_ids: Vec<TokenId> = plan.body.inputs.to_vec();
        let attested = plan.attest.is_some();
        match self.prepare(plan).await {
            Ok((tx, inputs, account)) => self.submit(tx, inputs, account).await,
            Err(e) => {
                // A refused operation leaves nothing reserved: its tokens
                // here, and what the oracle's attestation held back.
                self.state().vault.unreserve(&input_ids, id);
                if attested {
                    self.abandon_attestation(id).await;
                }
                Err(e)
            }
        }
    }

    /// Tells the oracle that `tx`, which it attested, will never be
    /// notarised, so what it reserved for it (a contract's maximum, an
    /// e-invoice, held funds) is free for others at once.
    async fn abandon_attestation(&self, tx: TxId) {
        match self.oracle(OracleRequest::Abandon { tx }).await {
            Ok(OracleAnswer::Done) => {}
            Ok(other) => {
                tracing::warn!(%tx, answer = ?other, "the oracle did not free the reservation now; it lapses when the window closes")
            }
            Err(e) => {
                tracing::warn!(%tx, error = %e, "the oracle did not free the reservation now; it lapses when the window closes")
            }
        }
    }

    /// Attests, signs, validates and journals `Prepared`.
    async fn prepare(&self, plan: Plan) -> Result<(Transaction, Vec<Token>, AccountId), NodeError> {
        let mut tx = Transaction::unsigned(plan.body);
        if let Some(request) = plan.attest {
            let answer = self.oracle(OracleRequest::Attest { body: tx.body.clone(), request }).await?;
            match answer {
                OracleAnswer::Attestation(a) => tx.attestations.try_push(a)?,
                OracleAnswer::Refused(refusal) => return Err(NodeError::Oracle(refusal)),
                _ => return Err(NodeError::Unavailable("the oracle answered something else".into())),
            }
        }
        for key in &plan.signers {
            tx.sign(key)?;
        }
        let ctx = Context { now: self.clock.now(), params: &self.config.params };
        let mut checked = dtenge_ledger::check(&tx, &plan.inputs, &ctx)?;
        // The signatures this node has just made with its custodial keys are
        // right by construction (deterministic Ed25519 over the transaction
        // id), so only the others (oracle attestations) are verified here;
        // the payee's node verifies every signature again.
        let own: Vec<PublicKey> = plan.signers.iter().map(SecretKey::public_key).collect();
        checked.signatures.retain(|s| !own.contains(&s.public_key));
        dtenge_ledger::verify(&checked, &Ed25519)?;
        let mut clearance = plan.clearance;
        let prepared = NodeRecord::Prepared {
            tx: tx.clone(),
            inputs: plan.inputs.clone(),
            account: plan.account.clone(),
            at: self.clock.now(),
        };
        self.record_cleared(vec![prepared], Some(&mut clearance)).await?;
        Ok((tx, plan.inputs, plan.account))
    }

    /// Notarises a prepared transaction and sees it through.
    async fn submit(&self, tx: Transaction, inputs: Vec<Token>, _account: AccountId) -> Result<TxOutcome, NodeError> {
        let id = tx.id();
        let claim = self.claim_of(&tx, &inputs)?;
        let mut last_error = None;
        for _ in 0..NOTARY_ATTEMPTS {
            match self.notarise(&claim).await {
                Ok(verdict) => return self.settle(&tx, &inputs, &claim, verdict).await,
                Err(e) => last_error = Some(e),
            }
        }
        tracing::warn!(tx = %id, error = ?last_error, "notary unreachable; the transaction stays under review and is resolved later");
        Ok(TxOutcome { tx: id, status: Status::UnderReview, notary_seq: None })
    }

    async fn notarise(&self, claim: &TxClaim) -> Result<Verdict, NodeError> {
        self.notary_batcher.call(claim.clone()).await
    }

    async fn settle(
        &self,
        tx: &Transaction,
        inputs: &[Token],
        claim: &TxClaim,
        verdict: Verdict,
    ) -> Result<TxOutcome, NodeError> {
        let id = tx.id();
        match verdict {
            Verdict::Committed(receipt) => {
                self.notary
                    .verify(&receipt, claim)
                    .map_err(|e| NodeError::Unavailable(format!("bad notary receipt: {e}")))?;
                let deliver_to = self.recipients_of(tx, inputs);
                let bytes = borsh::to_vec(&receipt).map_err(|e| NodeError::Storage(e.to_string()))?;
                let mut records =
                    vec![NodeRecord::Committed { tx: id, receipt: bytes, deliver_to, at: self.clock.now() }];
                records.extend(self.notifications_for_own(tx, inputs));
                // The notary's commit is already durable: deliver while our
                // own `Committed` record is being made durable. A crash in
                // between leaves `Prepared` in the journal, which
                // `resolve_in_flight` settles from the notary's receipt
                // (and delivers again; payees take a delivery once).
                let pending = self.append(records)?;
                let ((), durable) = tokio::join!(self.deliver_pending(id), durable(pending));
                durable?;
                if !tx.attestations.is_empty() {
                    let _ = self.oracle(OracleRequest::Confirm { tx: id }).await;
                }
                Ok(TxOutcome { tx: id, status: Status::Success, notary_seq: Some(receipt.body.seq) })
            }
            Verdict::Rejected(rejection) => {
                let spent_elsewhere = match &rejection {
                    NotaryRejection::Conflict { input, .. } | NotaryRejection::UnknownInput { input, .. } => {
                        tx.body.inputs.get(*input).copied().into_iter().collect()
                    }
                    _ => Vec::new(),
                };
                let reason = rejection.to_string();
                self.record(vec![NodeRecord::Aborted { tx: id, reason: reason.clone(), spent_elsewhere }]).await?;
                if !tx.attestations.is_empty() {
                    self.abandon_attestation(id).await;
                }
                Err(NodeError::NotaryRejected(rejection))
            }
        }
    }

    /// Nodes that must see a committed transaction: payees' hosts, hold
    /// recipients' nodes, and the initiators of markings it touches.
    fn recipients_of(&self, tx: &Transaction, inputs: &[Token]) -> BTreeSet<ParticipantId> {
        let mut to = BTreeSet::new();
        for t in tx.body.outputs.iter().chain(inputs.iter()) {
            to.insert(t.host.clone());
            if let Some(Encumbrance::Hold(h)) = &t.encumbrance {
                to.insert(h.recipient_node.clone());
            }
            match &t.marking {
                Some(Marking::Address(m)) => {
                    to.insert(m.rule.initiator_node.clone());
                }
                Some(Marking::Parameter(m)) => {
                    to.insert(m.initiator_node.clone());
                }
                _ => {}
            }
        }
        to.remove(&self.config.id);
        to
    }

    /// Notifications for local DAs in a transaction this node committed.
    fn notifications_for_own(&self, tx: &Transaction, inputs: &[Token]) -> Vec<NodeRecord> {
        let state = self.state();
        let now = self.clock.now();
        let mut out = Vec::new();
        for t in tx.body.outputs.iter() {
            // An output to an owner of an input is change, not an incoming payment.
            let change = inputs.iter().any(|i| i.owner == t.owner);
            if let Some(account) = state.credited_account(t)
                && !change
            {
                out.push(NodeRecord::Notified {
                    account: account.id.clone(),
                    notification: Notification {
                        at: now,
                        text: format!("Incoming {} DT ({})", t.amount, tx.body.command.name()),
                        tx: Some(tx.id()),
                    },
                });
            }
        }
        out
    }

    /// Sends a committed transaction to every node still waiting for it.
    async fn deliver_pending(&self, id: TxId) {
        let (targets, tx, inputs, receipt) = {
            let state = self.state();
            let Some(o) = state.unsettled_tx(&id) else { return };
            let Some(bytes) = &o.receipt else { return };
            let Ok(receipt) = borsh::from_slice::<Receipt>(bytes) else { return };
            (o.undelivered.clone(), o.tx.clone(), o.inputs.clone(), receipt)
        };
        for to in targets {
            let request = LinkRequest::Deliver {
                tx: Box::new(tx.clone()),
                inputs: inputs.clone(),
                receipt: Box::new(receipt.clone()),
            };
            match self.call_link(&to, request).await {
                Ok(LinkAnswer::Accepted) => {
                    // Not waited for: if a crash loses it, the node delivers
                    // again and the payee, who already has it, accepts the
                    // repeat without a second credit. Waiting would put one
                    // more fsync of this node's journal on every payment.
                    if let Err(e) = self.append(vec![NodeRecord::Delivered { tx: id, to: to.clone() }]) {
                        tracing::warn!(tx = %id, %to, error = %e, "delivered, but not journaled; it will be delivered again");
                    }
                }
                Ok(LinkAnswer::Refused(why)) => tracing::error!(tx = %id, %to, %why, "delivery refused"),
                Ok(LinkAnswer::Unavailable(why)) => tracing::info!(tx = %id, %to, %why, "delivery deferred"),
                Err(e) => tracing::info!(tx = %id, %to, error = %e, "delivery deferred"),
            }
        }
    }

    /// Refuses a transaction that names this node as the host of an
    /// address the directory gives to another node or to none: a token is
    /// credited only to the DA the directory names.
    async fn outputs_hosted_here(&self, tx: &Transaction) -> Result<(), NodeError> {
        for t in tx.body.outputs.iter().filter(|t| t.host == self.config.id) {
            if !self.hosted_here(&t.owner).await? {
                return Err(NodeError::NotHostedHere(t.owner.to_string()));
            }
        }
        Ok(())
    }

    /// Whether `address`, which another node means to pay, is a DA of this
    /// node (as the directory says) that may receive `amount` now.
    async fn accepts_incoming(&self, address: &Address, amount: Amount) -> Result<(), NodeError> {
        if !self.hosted_here(address).await? {
            return Err(NodeError::NotHostedHere(address.to_string()));
        }
        self.incoming_check(address, amount)
    }

    /// Accepts a committed transaction from another node.
    pub async fn receive(
        &self,
        from: &ParticipantId,
        tx: Transaction,
        inputs: Vec<Token>,
        receipt: Receipt,
    ) -> Result<(), NodeError> {
        let Some(checked) = self.check_delivery(&tx, &inputs, &receipt)? else { return self.known_durably().await };
        self.outputs_hosted_here(&tx).await?;
        dtenge_ledger::verify(&checked, &Ed25519)?;
        let Some((pending, owners)) = self.journal_delivery(from, &tx, &inputs, &receipt)? else {
            return self.known_durably().await;
        };
        pending.durable().await.map_err(store)?;
        self.sweep_local(owners.into_iter()).await;
        Ok(())
    }

    fn knows(&self, id: &TxId) -> bool {
        self.state().knows_tx(id)
    }

    /// Waits until what made a transaction known here is durable, before a
    /// repeat of its delivery is answered: the first delivery's `Received`
    /// may still be in the journal's group commit, and a crash would lose
    /// it after the sender was told the payee has it. A record is applied
    /// after it is appended, so the sync point taken now covers it.
    async fn known_durably(&self) -> Result<(), NodeError> {
        self.journal.sync_point().durable().await.map(|_| ()).map_err(store)
    }

    /// Checks a delivered transaction: the notary's receipt and every rule of
    /// the kernel. The signatures the kernel gathered are left to the caller
    /// to verify (one transaction, or many in one batch). `None` if the
    /// transaction is already known.
    fn check_delivery(
        &self,
        tx: &Transaction,
        inputs: &[Token],
        receipt: &Receipt,
    ) -> Result<Option<dtenge_ledger::Checked>, NodeError> {
        if self.knows(&tx.id()) {
            return Ok(None);
        }
        let claim = TxClaim::of(tx, inputs)?;
        self.notary.verify(receipt, &claim).map_err(|e| NodeError::BadReceipt(e.to_string()))?;
        let ctx = Context { now: receipt.body.committed_at, params: &self.config.params };
        Ok(Some(dtenge_ledger::check(tx, inputs, &ctx)?))
    }

    /// Journals `Received` (and notifications) for a delivered transaction
    /// that passed [`NodeService::check_delivery`] and signature verification,
    /// without waiting for durability (the caller waits, once for a whole
    /// batch). `None` if it became known meanwhile; otherwise the journal's
    /// pending write and the owners of its outputs (for the reverse waterfall
    /// once durable).
    fn journal_delivery(
        &self,
        from: &ParticipantId,
        tx: &Transaction,
        inputs: &[Token],
        receipt: &Receipt,
    ) -> Result<Option<(dtenge_store::Pending, Vec<Address>)>, NodeError> {
        let id = tx.id();
        if self.knows(&id) {
            return Ok(None);
        }
        let bytes = borsh::to_vec(receipt).map_err(|e| NodeError::Storage(e.to_string()))?;
        let now = self.clock.now();
        let mut records = vec![NodeRecord::Received {
            tx: tx.clone(),
            inputs: inputs.to_vec(),
            receipt: bytes,
            from: from.clone(),
            at: now,
        }];
        {
            let state = self.state();
            for t in tx.body.outputs.iter() {
                if let Some(account) = state.credited_account(t) {
                    let text = match &t.encumbrance {
                        Some(Encumbrance::Hold(_)) => continue,
                        _ => format!("Incoming {} DT ({})", t.amount, tx.body.command.name()),
                    };
                    records.push(NodeRecord::Notified {
                        account: account.id.clone(),
                        notification: Notification { at: now, text, tx: Some(id) },
                    });
                }
                if let Some(Encumbrance::Hold(h)) = &t.encumbrance
                    && let Some(account) = state.account_of(&h.recipient)
                {
                    records.push(NodeRecord::Notified {
                        account: account.id.clone(),
                        notification: Notification {
                            at: now,
                            text: format!("{} DT held for you until event {} occurs", t.amount, h.event),
                            tx: Some(id),
                        },
                    });
                }
            }
        }
        let owners = tx.body.outputs.iter().map(|t| t.owner).collect();
        Ok(self.append(records)?.map(|pending| (pending, owners)))
    }

    // ------------------------------------------------------------------
    // Background work

    /// One round of background work: oracle notices, expiries, deliveries
    /// and unresolved transactions. Returns what it did, for logs and tests.
    pub async fn tick(&self) -> Vec<String> {
        let mut done = Vec::new();
        self.expire_awaiting();
        match self.import_cbs().await {
            Ok(lines) => done.extend(lines),
            Err(e) => done.push(format!("CBS: {e}")),
        }
        if let Err(e) = self.process_notices(&mut done).await {
            done.push(format!("notices: {e}"));
        }
        self.expire_holds(&mut done).await;
        self.resolve_in_flight(&mut done).await;
        let pending: BTreeSet<TxId> = self.state().undelivered().into_iter().map(|(id, _)| id).collect();
        for id in pending {
            self.deliver_pending(id).await;
        }
        done
    }

    async fn process_notices(&self, done: &mut Vec<String>) -> Result<(), NodeError> {
        let after = self.notice_cursor.load(Ordering::SeqCst);
        let OracleAnswer::Notices(notices) = self.oracle(OracleRequest::Notices { after }).await? else {
            return Ok(());
        };
        for notice in notices {
            match &notice.kind {
                NoticeKind::EventOccurred { event } | NoticeKind::CampaignSucceeded { event } => {
                    for account in self.holders_of(event) {
                        match self.release(&account, event).await {
                            Ok(o) => done.push(format!("released for {event} from {account}: {}", o.tx)),
                            Err(e) => done.push(format!("release for {event} from {account}: {e}")),
                        }
                    }
                }
                NoticeKind::EventCancelled { event } => {
                    for account in self.holders_of(event) {
                        match self.unhold(&account, event, false).await {
                            Ok(o) => done.push(format!("returned {event} to {account}: {}", o.tx)),
                            Err(e) => done.push(format!("return for {event} to {account}: {e}")),
                        }
                    }
                }
                NoticeKind::EventRegistered(spec) => {
                    let notes: Vec<NodeRecord> = {
                        let state = self.state();
                        [spec.sender, Some(spec.recipient)]
                            .into_iter()
                            .flatten()
                            .filter_map(|a| state.account_of(&a))
                            .map(|a| NodeRecord::Notified {
                                account: a.id.clone(),
                                notification: Notification {
                                    at: self.clock.now(),
                                    text: format!("Event {} registered on the oracle", spec.id),
                                    tx: None,
                                },
                            })
                            .collect()
                    };
                    self.record(notes).await?;
                }
                NoticeKind::ParameterRegistered { .. } => {}
            }
            self.notice_cursor.fetch_max(notice.seq, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn expire_holds(&self, done: &mut Vec<String>) {
        let now = self.clock.now();
        let due: Vec<(AccountId, EventId)> = {
            let state = self.state();
            let mut due = BTreeSet::new();
            for (_, s) in state.vault.iter() {
                if let (Some(Encumbrance::Hold(h)), None) = (&s.token.encumbrance, s.reserved_by)
                    && h.valid_until < now
                {
                    due.insert((s.account.clone(), h.event.clone()));
                }
            }
            due.into_iter().collect()
        };
        for (account, event) in due {
            match self.unhold(&account, &event, true).await {
                Ok(o) => done.push(format!("expired {event} back to {account}: {}", o.tx)),
                Err(e) => done.push(format!("expiry of {event} for {account}: {e}")),
            }
        }
    }

    /// Transactions prepared but never settled (a crash, or the notary was
    /// down): committed if the notary has them, resubmitted while their window
    /// is open, aborted after.
    async fn resolve_in_flight(&self, done: &mut Vec<String>) {
        let in_flight: Vec<(Transaction, Vec<Token>)> = {
            let state = self.state();
            state.in_flight().into_iter().filter_map(|id| state.outgoing(&id).map(|o| (o.tx, o.inputs))).collect()
        };
        for (tx, inputs) in in_flight {
            let id = tx.id();
            let Ok(claim) = self.claim_of(&tx, &inputs) else { continue };
            let now = self.clock.now();
            let outcome = if now > tx.body.window.not_after {
                match self.notary_receipt(&id).await {
                    Ok(Some(receipt)) => self.settle(&tx, &inputs, &claim, Verdict::Committed(receipt)).await,
                    Ok(None) => self
                        .record(vec![NodeRecord::Aborted {
                            tx: id,
                            reason: "not committed within its time window".into(),
                            spent_elsewhere: Vec::new(),
                        }])
                        .await
                        .map(|()| TxOutcome {
                            tx: id,
                            status: Status::Rejected { reason: "expired".into() },
                            notary_seq: None,
                        }),
                    Err(e) => Err(e),
                }
            } else {
                match self.notarise(&claim).await {
                    Ok(verdict) => self.settle(&tx, &inputs, &claim, verdict).await,
                    Err(e) => Err(e),
                }
            };
            done.push(format!("resolved {id}: {outcome:?}"));
        }
    }

    async fn notary_receipt(&self, tx: &TxId) -> Result<Option<Receipt>, NodeError> {
        self.notary.receipt(tx).await.map_err(|e| NodeError::Unavailable(format!("notary: {e}")))
    }

    async fn oracle(&self, request: OracleRequest) -> Result<OracleAnswer, NodeError> {
        let body = borsh::to_vec(&request).map_err(|e| NodeError::Storage(e.to_string()))?;
        let answer = self
            .bus
            .call(&self.config.oracle, body)
            .await
            .map_err(|e| NodeError::Unavailable(format!("oracle: {e}")))?;
        borsh::from_slice(&answer).map_err(|e| NodeError::Unavailable(format!("oracle answer: {e}")))
    }

    async fn directory(&self, request: DirectoryRequest) -> Result<DirectoryAnswer, NodeError> {
        let body = borsh::to_vec(&request).map_err(|e| NodeError::Storage(e.to_string()))?;
        let answer = self
            .bus
            .call(&self.config.directory, body)
            .await
            .map_err(|e| NodeError::Unavailable(format!("directory: {e}")))?;
        borsh::from_slice(&answer).map_err(|e| NodeError::Unavailable(format!("directory answer: {e}")))
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

#[derive(Clone)]
struct AddressRuleKey {
    rule: MarkingRule,
    level: u8,
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

impl NodeService {
    /// Handles a batch of deliveries and pre-checks from `from`, in order.
    /// Deliveries are journaled one after another and answered once the last
    /// of them is durable (one group commit for the batch).
    async fn handle_batch(&self, from: &ParticipantId, items: Vec<LinkRequest>) -> Vec<LinkAnswer> {
        let refuse = |e: NodeError| match e {
            NodeError::Storage(e) | NodeError::Unavailable(e) => LinkAnswer::Unavailable(e),
            e => LinkAnswer::Refused(e.refusal()),
        };
        // Rules and receipts first, item by item; the transactions'
        // signatures then verify together in one batch.
        let mut answers: Vec<Option<LinkAnswer>> = Vec::with_capacity(items.len());
        // Deliveries of transactions already known: answered only once what
        // made them known is durable (see `known_durably`).
        let mut known: Vec<usize> = Vec::new();
        let mut checked: Vec<(usize, dtenge_ledger::Checked)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            answers.push(match item {
                LinkRequest::CanReceive { address, amount } => {
                    Some(match self.accepts_incoming(address, *amount).await {
                        Ok(()) => LinkAnswer::Accepted,
                        Err(e) => refuse(e),
                    })
                }
                LinkRequest::Deliver { tx, inputs, receipt } => match self.check_delivery(tx, inputs, receipt) {
                    Ok(Some(c)) => match self.outputs_hosted_here(tx).await {
                        Ok(()) => {
                            checked.push((i, c));
                            None
                        }
                        Err(e) => Some(refuse(e)),
                    },
                    Ok(None) => {
                        known.push(i);
                        Some(LinkAnswer::Accepted)
                    }
                    Err(e) => Some(refuse(e)),
                },
            });
        }
        let verdicts = dtenge_ledger::verify_each(&checked.iter().map(|(_, c)| c).collect::<Vec<_>>(), &Ed25519);
        for ((i, _), verdict) in checked.iter().zip(verdicts) {
            if let (Err(rejection), Some(a)) = (verdict, answers.get_mut(*i)) {
                *a = Some(refuse(NodeError::Rejected(rejection)));
            }
        }
        let mut written = Vec::new();
        let mut received: Vec<Address> = Vec::new();
        let mut last = None;
        for (i, item) in items.iter().enumerate() {
            let (Some(slot), LinkRequest::Deliver { tx, inputs, receipt }) = (answers.get_mut(i), item) else {
                continue;
            };
            if slot.is_some() {
                continue;
            }
            *slot = Some(match self.journal_delivery(from, tx, inputs, receipt) {
                Ok(Some((pending, owners))) => {
                    last = Some(pending);
                    written.push(i);
                    received.extend(owners);
                    LinkAnswer::Accepted
                }
                Ok(None) => {
                    known.push(i);
                    LinkAnswer::Accepted
                }
                Err(e) => refuse(e),
            });
        }
        let mut answers: Vec<LinkAnswer> =
            answers.into_iter().map(|a| a.unwrap_or_else(|| LinkAnswer::Unavailable("not handled".into()))).collect();
        // The sync point, taken after this batch's own writes, covers them
        // and whatever made the known ones known.
        let wait = if known.is_empty() { last } else { Some(self.journal.sync_point()) };
        if let Some(pending) = wait
            && let Err(e) = pending.durable().await
        {
            for i in written.into_iter().chain(known) {
                if let Some(a) = answers.get_mut(i) {
                    *a = LinkAnswer::Unavailable(e.to_string());
                }
            }
            return answers;
        }
        self.sweep_local(received.into_iter()).await;
        answers
    }
}

#[async_trait::async_trait]
impl Handler for NodeService {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        let request: NodeRequest =
            borsh::from_slice(&body).map_err(|e| HandlerError::BadRequest(format!("not a node request: {e}")))?;
        dtenge_net::authz::admit(&self.participants, from, &request)?;
        let answer = match request {
            NodeRequest::Deliver { tx, inputs, receipt } => match self.receive(from, *tx, inputs, receipt).await {
                Ok(()) => NodeAnswer::Accepted,
                Err(NodeError::Storage(e)) | Err(NodeError::Unavailable(e)) => {
                    return Err(HandlerError::Unavailable(e));
                }
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::Convert { kind, amount, bank_address, funding_tx } => {
                match self.accept_conversion(from, kind, amount, bank_address, funding_tx).await {
                    Ok(request) => NodeAnswer::Conversion(Box::new(request)),
                    Err(NodeError::Storage(e)) | Err(NodeError::Unavailable(e)) => {
                        return Err(HandlerError::Unavailable(e));
                    }
                    Err(e) => NodeAnswer::Refused(e.refusal()),
                }
            }
            NodeRequest::PvpPropose { body, inputs, counterparty, quote, quote_amount } => {
                match self.cosign_pvp(from, *body, inputs, counterparty, quote, quote_amount).await {
                    Ok(c) => NodeAnswer::Pvp(Box::new(c)),
                    Err(NodeError::Storage(e)) | Err(NodeError::Unavailable(e)) => {
                        return Err(HandlerError::Unavailable(e));
                    }
                    Err(e) => NodeAnswer::Refused(e.refusal()),
                }
            }
            NodeRequest::PvpAbandon { tx } => match self.abandon_cosigned(from, tx) {
                Ok(()) => NodeAnswer::Accepted,
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::CanReceive { address, amount } => match self.accepts_incoming(&address, amount).await {
                Ok(()) => NodeAnswer::Accepted,
                Err(NodeError::Storage(e)) | Err(NodeError::Unavailable(e)) => {
                    return Err(HandlerError::Unavailable(e));
                }
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::Policy(policy) => match self.adopt_policy(from, *policy).await {
                Ok(()) => NodeAnswer::Accepted,
                Err(NodeError::Storage(e)) => return Err(HandlerError::Unavailable(e)),
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::Report { from: start, to, threshold } => {
                if self.participants.get(from).is_some_and(|p| p.role == Role::Nbk) {
                    match self.bank_report(start, to, threshold) {
                        Ok(report) => NodeAnswer::Report(Box::new(report)),
                        Err(e) => NodeAnswer::Refused(e.refusal()),
                    }
                } else {
                    NodeAnswer::Refused(
                        NodeError::Forbidden(format!("{from} is not NBK: reports go to the regulator only")).refusal(),
                    )
                }
            }
            NodeRequest::Batch(items) => {
                if items.len() > MAX_LINK_BATCH {
                    return Err(HandlerError::BadRequest(format!(
                        "a batch carries at most {MAX_LINK_BATCH} items, this one {}",
                        items.len()
                    )));
                }
                NodeAnswer::Batch(self.handle_batch(from, items).await)
            }
            NodeRequest::ConversionStatus { id } => match self.conversion(&id) {
                Ok(request) if request.bank == *from => NodeAnswer::Conversion(Box::new(request)),
                Ok(_) => {
                    NodeAnswer::Refused(NodeError::Forbidden(format!("request {id} belongs to another bank")).refusal())
                }
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
        };
        Ok(borsh::to_vec(&answer).unwrap_or_default())
    }
}
