//! The node's state machine: every change is a [`NodeRecord`], journaled
//! before it is acted on and replayed on restart through [`NodeState::apply`].
//!
//! ```text
//!  outgoing:  Prepared ──► Committed (receipt) ──► Delivered to each node
//!                     └──► Aborted (notary or oracle said no)
//!  incoming:  Received (validated, with the notary's receipt)
//! ```
//!
//! Invariants: a token leaves the vault only on `Committed` of the transaction
//! spending it; a `Prepared` transaction's inputs stay reserved until it is
//! committed or aborted; every record applies deterministically, so a replayed
//! journal rebuilds the same state.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_store::versioned::Tagged;
use dtenge_store::versioned::kinds;
use dtenge_store::{Format, FormatError};
use dtenge_types::{
    Address, Amount, Command, Currency, IinBin, ParticipantId, Timestamp, Token, TokenId, Transaction, TxBody, TxId,
};

use crate::NodeError;
use crate::accounts::{Account, AccountId, KycState};
use crate::archive::{self, Archive, Seq, Table};
pub use crate::notification::{Message, Notification};
use crate::regime::{AccountProfile, LimitPolicy, LinkedTransfer, OrderEntry, Reidentification};
pub use crate::status::{Reason, Status};
use crate::vault::Vault;
use dtenge_crypto::PublicKey;
use dtenge_types::OrderRef;

/// The node's journal records. Format 0 (release 9e7a3dd) wrote them
/// untagged; format 1 tags them; format 2 adds
/// [`NodeRecord::RefusedInFlight`], so a release that reads up to format 1
/// refuses a journal that has one instead of failing on it unnamed;
/// format 3 stores a refusal's code with its words ([`Reason`], which reads
/// the words of earlier formats unchanged); format 4 a notification's kind
/// with its particulars ([`Message`], which reads earlier formats' words
/// unchanged). [`NodeRecord`]'s variants were only appended to.
pub const RECORD: Format = Format { kind: kinds::NODE_RECORD, version: 4, name: "node record" };
/// The node's snapshots ([`NodeState`] without its archive), tagged from
/// format 1; format 2 adds the card book at the end, format 3 the refusals
/// of payments in flight after it (older ones read with empty ones), format
/// 4 a refusal's code with its words wherever a status or refusal is kept.
pub const SNAPSHOT: Format = Format { kind: kinds::NODE_SNAPSHOT, version: 4, name: "node snapshot" };

/// Largest record or snapshot a node decodes.
const STORED_BYTES_MAX: usize = dtenge_store::RECORD_BYTES_MAX;

impl NodeRecord {
    /// The record as journaled.
    pub fn encode(&self) -> Vec<u8> {
        RECORD.encode(self)
    }

    /// A journaled record, whichever format version wrote it (version 0
    /// records decode as today's type: its variants were only appended to).
    pub fn decode(stored: &[u8]) -> Result<NodeRecord, FormatError> {
        RECORD.decode(stored, STORED_BYTES_MAX)
    }
}

impl NodeState {
    /// The state as snapshotted (its archive persists itself).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        SNAPSHOT.encode(self)
    }

    /// A snapshot, whichever format version wrote it.
    pub fn decode_snapshot(stored: &[u8]) -> Result<NodeState, FormatError> {
        let (version, body) = match SNAPSHOT.read(stored)? {
            Tagged::Versioned { version, body } => (version, body),
            Tagged::Untagged(body) => (0, body),
        };
        if version >= 3 {
            return SNAPSHOT.decode(stored, STORED_BYTES_MAX);
        }
        // Formats 0 and 1 end where format 2 appends the card book, and
        // format 2 where format 3 appends the refusals of payments in
        // flight: read them as format 3 with empty ones.
        if body.len() > STORED_BYTES_MAX {
            return Err(SNAPSHOT.undecodable(version, format!("{} bytes exceed the limit", body.len())));
        }
        let mut upgraded = body.to_vec();
        if version < 2 {
            upgraded.extend(
                borsh::to_vec(&crate::cards::CardBook::default()).map_err(|e| SNAPSHOT.undecodable(version, e))?,
            );
        }
        upgraded.extend(borsh::to_vec(&BTreeMap::<TxId, String>::new()).map_err(|e| SNAPSHOT.undecodable(version, e))?);
        let state: NodeState = borsh::from_slice(&upgraded).map_err(|e| SNAPSHOT.undecodable(version, e))?;
        if borsh::to_vec(&state).map_err(|e| SNAPSHOT.undecodable(version, e))? != upgraded {
            return Err(SNAPSHOT.undecodable(version, "the encoding is not canonical"));
        }
        Ok(state)
    }
}

/// One line of a DA's history: what one transaction moved in or out of the
/// DA in one currency. A transaction that moves several currencies for the
/// DA (a PvP leg) has one line per currency, numbered consecutively, so no
/// amount ever adds one currency's minor units to another's.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize)]
pub struct HistoryEntry {
    /// The transaction.
    pub tx: TxId,
    /// When this node recorded it.
    pub at: Timestamp,
    /// The command's name (`transfer`, `hold`, …).
    pub kind: String,
    /// Money in (+) or out (−) of the DA, by what left or arrived; zero for
    /// changes of kind only (e.g. a hold on one's own DA).
    pub incoming: Amount,
    /// Money out.
    pub outgoing: Amount,
    /// The counterparties' addresses.
    pub counterparties: Vec<Address>,
    /// Purpose text.
    pub memo: Option<String>,
    /// Outcome.
    pub status: Status,
    /// The currency of `incoming` and `outgoing`. `None` only on a line
    /// archived before lines were per currency (then read as the one
    /// currency its transaction moved for the DA).
    pub currency: Option<Currency>,
}

// Hand-written so that a line archived before `currency` existed (its
// encoding ends after `status`) still reads, as `currency: None`.
impl BorshDeserialize for HistoryEntry {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let tx = TxId::deserialize_reader(reader)?;
        let at = Timestamp::deserialize_reader(reader)?;
        let kind = String::deserialize_reader(reader)?;
        let incoming = Amount::deserialize_reader(reader)?;
        let outgoing = Amount::deserialize_reader(reader)?;
        let counterparties = Vec::<Address>::deserialize_reader(reader)?;
        let memo = Option::<String>::deserialize_reader(reader)?;
        let status = Status::deserialize_reader(reader)?;
        let mut tag = [0u8; 1];
        let currency = match reader.read(&mut tag)? {
            0 => None,
            _ => match tag[0] {
                0 => None,
                1 => Some(Currency::deserialize_reader(reader)?),
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("history line: currency tag {other}"),
                    ));
                }
            },
        };
        Ok(HistoryEntry { tx, at, kind, incoming, outgoing, counterparties, memo, status, currency })
    }
}

/// Most history lines one transaction gives one DA (one per currency it moves).
const LINES_PER_TX_MAX: u64 = 16;

/// A transaction this node built and is seeing through.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Outgoing {
    /// The transaction, signed and attested.
    pub tx: Transaction,
    /// Its inputs as resolved from the vault.
    pub inputs: Vec<Token>,
    /// The paying DA.
    pub account: AccountId,
    /// Where it stands.
    pub status: Status,
    /// Nodes still to be sent the transaction (payees' nodes, traceability copies).
    pub undelivered: BTreeSet<ParticipantId>,
    /// The notary's receipt, once committed (borsh bytes of the receipt).
    pub receipt: Option<Vec<u8>>,
    /// When it was prepared.
    pub at: Timestamp,
    /// The number of the paying DA's history line for it.
    pub history_seq: u64,
}

/// Every state change of a node.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum NodeRecord {
    /// A DA was opened.
    AccountOpened(Account),
    /// A DA's KYC state changed.
    KycSet {
        /// The DA.
        account: AccountId,
        /// The new state.
        kyc: KycState,
    },
    /// A transaction was built, validated and is about to go to the notary;
    /// its inputs are reserved.
    Prepared {
        /// The transaction.
        tx: Transaction,
        /// Its resolved inputs.
        inputs: Vec<Token>,
        /// The paying DA.
        account: AccountId,
        /// When.
        at: Timestamp,
    },
    /// The notary committed it.
    Committed {
        /// The transaction.
        tx: TxId,
        /// The receipt (borsh).
        receipt: Vec<u8>,
        /// Nodes to deliver to.
        deliver_to: BTreeSet<ParticipantId>,
        /// When.
        at: Timestamp,
    },
    /// It will never commit.
    Aborted {
        /// The transaction.
        tx: TxId,
        /// Why (its code from record format 3 on).
        reason: Reason,
        /// Inputs the notary says are already spent (dropped from the vault).
        spent_elsewhere: Vec<TokenId>,
    },
    /// A node acknowledged a delivery.
    Delivered {
        /// The transaction.
        tx: TxId,
        /// The node.
        to: ParticipantId,
    },
    /// A committed transaction arrived from another node (or a traceability copy).
    Received {
        /// The transaction.
        tx: Transaction,
        /// Its inputs, as the sender resolved them.
        inputs: Vec<Token>,
        /// The receipt (borsh).
        receipt: Vec<u8>,
        /// The sending node.
        from: ParticipantId,
        /// When.
        at: Timestamp,
    },
    /// NBK accepted a bank's conversion request.
    ConversionRequested(crate::conversion::ConversionRequest),
    /// A conversion request moved on.
    ConversionUpdated {
        /// The request.
        id: String,
        /// Its new status.
        status: Status,
        /// The CBS confirmation, when it arrives.
        cbs_reference: Option<dtenge_types::CbsRef>,
        /// The issue or redeem transaction.
        settled_tx: Option<TxId>,
        /// Who decided.
        decided_by: Option<String>,
    },
    /// A holder was told something.
    Notified {
        /// The DA.
        account: AccountId,
        /// What.
        notification: Notification,
    },
    /// NBK's limit policy, as published to this node (or by it, on NBK).
    PolicyAdopted(LimitPolicy),
    /// A DA's tier or linked bank account changed.
    ProfileSet {
        /// The DA.
        account: AccountId,
        /// The new profile.
        profile: AccountProfile,
    },
    /// An authority's order was recorded against a DA.
    OrderPlaced(Box<OrderEntry>),
    /// A freeze or arrest was lifted by the body that placed it.
    OrderLifted {
        /// The authority.
        authority: PublicKey,
        /// The order lifted.
        reference: OrderRef,
        /// The lifting order.
        by: OrderRef,
        /// When.
        at: Timestamp,
    },
    /// A collection order debited the DA.
    OrderCollected {
        /// The authority.
        authority: PublicKey,
        /// The order.
        reference: OrderRef,
        /// The collection transaction.
        tx: TxId,
        /// How much.
        amount: Amount,
    },
    /// DT moved between a DA and its linked bank account.
    LinkedTransferMade(LinkedTransfer),
    /// A DA's key was rotated after re-identification; the old key is revoked.
    Rekeyed {
        /// The re-identification.
        reid: Reidentification,
        /// Who holds the new key.
        custody: crate::accounts::Custody,
    },
    /// A DA was closed.
    AccountClosed {
        /// The DA.
        account: AccountId,
        /// When.
        at: Timestamp,
    },
    /// The card book changed (issue 22.1).
    Card(Box<crate::cards::CardRecord>),
    /// A payment in flight that its payees' banks refused when asked again
    /// (`Some`: kept off the notary, the refusal named when it is aborted
    /// at its window's end), or took again after all (`None`). Record
    /// format 2.
    RefusedInFlight {
        /// The transaction.
        tx: TxId,
        /// The refusal, or `None` once they take it (its code from record
        /// format 3 on).
        refusal: Option<Reason>,
    },
}

/// Per-DA figures kept in memory (bounded by the number of DAs): the
/// numbers of its archived history lines and notifications, and what it
/// spent on the current Astana day (what daily limits check).
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Book {
    /// History lines written (the newest has this number).
    pub history: u64,
    /// Notifications written (the newest has this number).
    pub notifications: u64,
    /// The Astana day `spent` is for.
    pub day: u64,
    /// What left the DA on `day` by payments of its holder: neither
    /// collections, key rotations nor conversions to the linked bank account.
    pub spent: Amount,
}

impl Book {
    fn add_spent(&mut self, at: Timestamp, amount: Amount) {
        let day = crate::regime::astana_day(at);
        if day > self.day {
            self.day = day;
            self.spent = amount;
        } else if day == self.day {
            // `admit` refused any payment that would take today's total past
            // the representable range before it was prepared.
            let spent = self.spent.checked_add(amount);
            debug_assert!(spent.is_some(), "daily spending out of range");
            self.spent = spent.unwrap_or(self.spent);
        }
    }

    fn unspend(&mut self, at: Timestamp, amount: Amount) {
        if crate::regime::astana_day(at) == self.day {
            self.spent = self.spent.saturating_sub(amount);
        }
    }
}

/// Whether a history line counts toward the DA's daily spending.
/// Tier limits are in DT (`guard::Outflow::Pay`), so only DT lines count.
fn counts_as_spent(e: &HistoryEntry) -> bool {
    !e.outgoing.is_zero()
        && e.currency.is_none_or(|c| c == Currency::DT)
        && !matches!(e.status, Status::Rejected { .. })
        && e.kind != "collect"
        && e.kind != "rekey"
}

/// A received transaction as the archive keeps it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ReceivedTx {
    /// Its arrival number on this node (1, 2, …): tells a replay of the
    /// record that archived it from a later duplicate.
    pub number: u64,
    /// The transaction.
    pub tx: Transaction,
    /// The node that sent it.
    pub from: ParticipantId,
}

/// How many entries a node holds, in memory and in its archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Outgoing transactions in memory (prepared, or committed with deliveries outstanding).
    pub unsettled: usize,
    /// Outgoing transactions settled into the archive.
    pub settled: u64,
    /// Transactions received (all archived).
    pub received: u64,
}

/// Everything a node knows. Memory holds what must be fast and stays
/// bounded (DAs, the vault, in-flight outgoing transactions, per-DA books);
/// settled history lives in the [`Archive`] (see [`crate::archive`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NodeState {
    /// DAs by id.
    pub accounts: BTreeMap<AccountId, Account>,
    by_address: BTreeMap<Address, AccountId>,
    by_iin: BTreeMap<IinBin, BTreeSet<AccountId>>,
    /// Tokens of this node's DAs.
    pub vault: Vault,
    /// Outgoing transactions not settled yet: prepared, or committed with
    /// deliveries outstanding. Settled ones move to the archive.
    unsettled: BTreeMap<TxId, Outgoing>,
    /// Per-DA counters and today's spending.
    books: BTreeMap<AccountId, Book>,
    /// Transactions received so far (the archive numbers them).
    received_count: u64,
    /// Outgoing transactions settled into the archive so far.
    settled_count: u64,
    /// Number of DAs ever opened (for ids).
    pub opened: u64,
    /// NBK: conversion requests by id.
    pub conversions: BTreeMap<String, crate::conversion::ConversionRequest>,
    /// NBK's limit policy in force, if one was published.
    pub policy: Option<LimitPolicy>,
    /// Tier and linked bank account per DA (individuals; absent = default).
    pub profiles: BTreeMap<AccountId, AccountProfile>,
    /// Enforcement orders by (authority, reference).
    pub orders: BTreeMap<(PublicKey, OrderRef), OrderEntry>,
    /// Conversions between DAs and their linked bank accounts, oldest first.
    pub linked: Vec<LinkedTransfer>,
    /// Key rotations, oldest first.
    pub reidentifications: Vec<Reidentification>,
    /// Revoked keys and the DA they belonged to.
    pub revoked: BTreeMap<Address, AccountId>,
    /// Cards linked to this node's DAs, their payments and answers to the
    /// card network (snapshot format 2 appended it).
    pub cards: crate::cards::CardBook,
    /// Payments in flight that their payees' banks refused when asked again,
    /// with the refusal (last: snapshot format 3 appended it). At most one
    /// per payment in flight; gone when it settles either way.
    refused_in_flight: BTreeMap<TxId, Reason>,
    /// What this node issued and has not redeemed, per currency (issuers
    /// only), counted from the moment an issue is prepared, so concurrent
    /// issues cannot together pass [`Amount::MAX`]: every balance and total
    /// of a currency is then representable. Rebuilt from the outgoing
    /// transactions at recovery ([`NodeState::rebuild_supply`]).
    #[borsh(skip)]
    supply: BTreeMap<Currency, Amount>,
    /// Settled history (not in snapshots: it persists itself).
    #[borsh(skip)]
    archive: Archive,
    /// The node this state is (not in snapshots: configuration). Only
    /// tokens naming it as their host are credited to its DAs; `None`
    /// (tools reading a journal) credits by owner alone.
    #[borsh(skip)]
    host: Option<ParticipantId>,
}

impl NodeState {
    /// An empty state writing its history to `archive`.
    pub fn with_archive(archive: Archive) -> NodeState {
        NodeState { archive, ..NodeState::default() }
    }

    /// Points the state (e.g. one decoded from a snapshot) at its archive.
    pub fn set_archive(&mut self, archive: Archive) {
        self.archive = archive;
    }

    /// Sets the node this state is: tokens hosted elsewhere are never
    /// credited to its DAs, even to one with the same address.
    pub fn set_host(&mut self, host: ParticipantId) {
        self.host = Some(host);
    }

    /// The DA a token is credited to: its owner's DA here, if the token
    /// names this node as its host.
    pub fn local_owner(&self, token: &Token) -> Option<&AccountId> {
        if self.host.as_ref().is_some_and(|h| *h != token.host) {
            return None;
        }
        self.by_address.get(&token.owner)
    }

    /// The archive of settled history.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// The DA owning `address`, if it is on this node.
    pub fn account_of(&self, address: &Address) -> Option<&Account> {
        self.by_address.get(address).and_then(|id| self.accounts.get(id))
    }

    /// The DA a token is credited to (see [`NodeState::local_owner`]).
    pub fn credited_account(&self, token: &Token) -> Option<&Account> {
        self.local_owner(token).and_then(|id| self.accounts.get(id))
    }

    /// DAs of a holder on this node.
    pub fn accounts_of(&self, iin: &IinBin) -> Vec<&Account> {
        self.by_iin.get(iin).into_iter().flatten().filter_map(|id| self.accounts.get(id)).collect()
    }

    // ------------------------------------------------------------------
    // Reads: memory first, then the archive

    /// A transaction this node built, settled or not.
    pub fn outgoing(&self, id: &TxId) -> Option<Outgoing> {
        match self.unsettled.get(id) {
            Some(o) => Some(o.clone()),
            None => self.archive.get(&archive::key(Table::Outgoing, &[id])),
        }
    }

    /// Outgoing transactions still in memory (prepared, or committed with deliveries outstanding).
    pub fn unsettled(&self) -> impl Iterator<Item = (&TxId, &Outgoing)> {
        self.unsettled.iter()
    }

    /// Visits every transaction this node built: unsettled ones first, then
    /// the archive's, until `visit` returns `false`.
    pub fn for_each_outgoing(&self, mut visit: impl FnMut(&TxId, &Outgoing) -> bool) {
        for (id, o) in &self.unsettled {
            if !visit(id, o) {
                return;
            }
        }
        self.archive.for_each_settled(visit);
    }

    /// A transaction received from another node, and who sent it.
    pub fn received(&self, id: &TxId) -> Option<(Transaction, ParticipantId)> {
        self.archive.received(id)
    }

    /// Visits every received transaction until `visit` returns `false`.
    pub fn for_each_received(&self, visit: impl FnMut(&TxId, &Transaction, &ParticipantId) -> bool) {
        self.archive.for_each_received(visit)
    }

    /// Whether this node built or received `id` (a delivery of it is a duplicate).
    pub fn knows_tx(&self, id: &TxId) -> bool {
        self.unsettled.contains_key(id)
            || self.archive.contains(&archive::key(Table::Received, &[id]))
            || self.archive.contains(&archive::key(Table::Outgoing, &[id]))
    }

    /// An outgoing transaction still in memory.
    pub fn unsettled_tx(&self, id: &TxId) -> Option<&Outgoing> {
        self.unsettled.get(id)
    }

    /// A DA's history, newest first (see [`Archive::history_newest_first`]).
    pub fn history_newest_first(&self, account: &AccountId, visit: impl FnMut(u64, HistoryEntry) -> bool) {
        self.archive.history_newest_first(account, visit)
    }

    /// Up to `limit` of a DA's newest history lines, newest first.
    pub fn history(&self, account: &AccountId, limit: usize) -> Vec<HistoryEntry> {
        self.archive.history(account, limit)
    }

    /// Visits every DA's history lines until `visit` returns `false`.
    pub fn for_each_history(&self, visit: impl FnMut(&AccountId, HistoryEntry) -> bool) {
        self.archive.for_each_history(visit)
    }

    /// Up to `limit` of a DA's newest notifications, newest first.
    pub fn notifications(&self, account: &AccountId, limit: usize) -> Vec<Notification> {
        self.archive.notifications(account, limit)
    }

    /// The parents of a token this node has seen created: the inputs of the
    /// committed transaction that created it, in flight, settled or received.
    pub fn lineage(&self, token: &TokenId) -> Option<Vec<TokenId>> {
        self.lineage_in_memory(token).unwrap_or_else(|| self.archive.lineage(token))
    }

    /// [`NodeState::lineage`] when the creating transaction is one of this
    /// node's in memory (`Some` answer), `None` when the archive knows.
    pub(crate) fn lineage_in_memory(&self, token: &TokenId) -> Option<Option<Vec<TokenId>>> {
        let out = self.unsettled.get(&token.tx)?;
        Some(if out.status == Status::Success { parents(&out.tx, token) } else { None })
    }

    /// A DA's counters (zero if it never had any).
    pub fn book(&self, account: &AccountId) -> Book {
        self.books.get(account).cloned().unwrap_or_default()
    }

    /// How many entries the node holds in memory and in the archive.
    pub fn counts(&self) -> StateCounts {
        StateCounts { unsettled: self.unsettled.len(), settled: self.settled_count, received: self.received_count }
    }

    // ------------------------------------------------------------------
    // Applying records

    /// Whether `record` may be journaled and applied: the one decision the
    /// state takes itself, under the same lock as the append. An issue is
    /// admitted only if the supply it adds to stays representable.
    pub fn admit(&self, record: &NodeRecord) -> Result<(), NodeError> {
        let NodeRecord::Prepared { tx, inputs, account, at } = record else { return Ok(()) };
        if let Some((currency, amount)) = issued(tx) {
            let outstanding = self.supply.get(&currency).copied().unwrap_or(Amount::ZERO);
            if outstanding.checked_add(amount).is_none() {
                return Err(NodeError::SupplyOverflow { currency: currency.to_string(), outstanding, amount });
            }
        }
        // Today's spending is a running total of the payer's book: a payment
        // that would take it past the representable range is refused, not
        // counted short.
        for entry in self.history_entries(tx.id(), tx, inputs, account, *at, Status::UnderReview) {
            if counts_as_spent(&entry) && self.spent_on_day(account, *at).checked_add(entry.outgoing).is_none() {
                return Err(NodeError::DailyTotalOverflow { account: account.to_string() });
            }
        }
        Ok(())
    }

    /// What this node issued and has not redeemed of `currency`.
    pub fn supply(&self, currency: &Currency) -> Amount {
        self.supply.get(currency).copied().unwrap_or(Amount::ZERO)
    }

    /// Recomputes the supply from every outgoing transaction (in memory and
    /// archived): issues not aborted, less what redemptions destroyed. Only
    /// issuers pay for the scan: a node holding none of `issuers`' addresses
    /// never issues.
    pub fn rebuild_supply(&mut self, issuers: &BTreeMap<Currency, Address>) -> Result<(), NodeError> {
        self.supply.clear();
        if !issuers.values().any(|a| self.by_address.contains_key(a)) {
            return Ok(());
        }
        // Visited in key order, not in commit order: added up in u128 (issues
        // and redemptions apart) so no partial sum can wrap, then checked.
        let mut totals: BTreeMap<Currency, (u128, u128)> = BTreeMap::new();
        self.for_each_outgoing(|_, o| {
            if matches!(o.status, Status::Rejected { .. }) {
                return true;
            }
            if let Some((currency, amount)) = issued(&o.tx) {
                totals.entry(currency).or_default().0 += u128::from(amount.tiyn());
            } else if let Some((currency, amount)) = redeemed(&o.tx, &o.inputs)
                && o.status == Status::Success
            {
                totals.entry(currency).or_default().1 += u128::from(amount.tiyn());
            }
            true
        });
        let mut supply = BTreeMap::new();
        for (currency, (issued, redeemed)) in totals {
            let outstanding = issued.checked_sub(redeemed).and_then(|v| u64::try_from(v).ok()).ok_or_else(|| {
                NodeError::Storage(format!(
                    "the {currency} this node issued ({issued} tiyn) and redeemed ({redeemed} tiyn) do not leave a \
                     representable supply: the journal or archive is damaged"
                ))
            })?;
            supply.insert(currency, Amount::from_tiyn(outstanding));
        }
        self.supply = supply;
        Ok(())
    }

    fn add_supply(&mut self, currency: Currency, amount: Amount, add: bool) {
        let slot = self.supply.entry(currency).or_default();
        // Admission keeps additions representable, and a redemption destroys
        // only issued tokens; anything else is a broken invariant.
        let next = if add { slot.checked_add(amount) } else { slot.checked_sub(amount) };
        debug_assert!(next.is_some(), "supply out of range");
        if let Some(v) = next {
            *slot = v;
        }
    }

    /// Applies a record. Deterministic; a record that contradicts the state
    /// (a broken journal) is ignored field by field rather than corrupting it.
    /// Writes settled history to the archive under keys derived from the
    /// record and this state's counters, so a replay writes the same entries.
    pub fn apply(&mut self, record: &NodeRecord) {
        match record {
            NodeRecord::AccountOpened(account) => {
                self.opened = self.opened.saturating_add(1);
                self.by_address.insert(account.address, account.id.clone());
                self.by_iin.entry(account.holder.iin_bin).or_default().insert(account.id.clone());
                self.accounts.insert(account.id.clone(), account.clone());
            }
            NodeRecord::KycSet { account, kyc } => {
                if let Some(a) = self.accounts.get_mut(account) {
                    a.kyc = *kyc;
                }
            }
            NodeRecord::Prepared { tx, inputs, account, at } => self.prepared(tx, inputs, account, *at),
            NodeRecord::Committed { tx, receipt, deliver_to, at } => self.committed(tx, receipt, deliver_to, *at),
            NodeRecord::Aborted { tx, reason, spent_elsewhere } => self.aborted(tx, reason, spent_elsewhere),
            NodeRecord::Delivered { tx, to } => {
                if let Some(o) = self.unsettled.get_mut(tx) {
                    o.undelivered.remove(to);
                }
                self.settle_if_done(tx);
            }
            NodeRecord::Received { tx, inputs, receipt: _, from, at } => self.received_tx(tx, inputs, from, *at),
            NodeRecord::ConversionRequested(request) => {
                self.conversions.insert(request.id.clone(), request.clone());
            }
            NodeRecord::ConversionUpdated { id, status, cbs_reference, settled_tx, decided_by } => {
                if let Some(r) = self.conversions.get_mut(id) {
                    r.status = status.clone();
                    if cbs_reference.is_some() {
                        r.cbs_reference = cbs_reference.clone();
                    }
                    if settled_tx.is_some() {
                        r.settled_tx = *settled_tx;
                    }
                    if decided_by.is_some() {
                        r.decided_by = decided_by.clone();
                    }
                }
            }
            NodeRecord::Notified { account, notification } => {
                let book = self.books.entry(account.clone()).or_default();
                book.notifications = book.notifications.saturating_add(1);
                let key = archive::key(Table::Notifications, &[account, &Seq(book.notifications)]);
                self.archive.put(&key, notification);
            }
            NodeRecord::PolicyAdopted(policy) => {
                if self.policy.as_ref().is_none_or(|p| p.version < policy.version) {
                    self.policy = Some(policy.clone());
                }
            }
            NodeRecord::ProfileSet { account, profile } => {
                self.profiles.insert(account.clone(), profile.clone());
            }
            NodeRecord::OrderPlaced(entry) => {
                let key = (entry.signed.order.authority, entry.signed.order.reference.clone());
                self.orders.entry(key).or_insert_with(|| (**entry).clone());
            }
            NodeRecord::OrderLifted { authority, reference, by, at } => {
                if let Some(e) = self.orders.get_mut(&(*authority, reference.clone())) {
                    e.lifted = Some((*at, by.clone()));
                }
            }
            NodeRecord::OrderCollected { authority, reference, tx, amount } => {
                if let Some(e) = self.orders.get_mut(&(*authority, reference.clone()))
                    && !e.txs.contains(tx)
                {
                    // A collection never exceeds its order (the kernel's rule).
                    let collected = e.collected.checked_add(*amount);
                    debug_assert!(collected.is_some(), "collected out of range");
                    e.collected = collected.unwrap_or(e.collected);
                    e.txs.push(*tx);
                }
            }
            NodeRecord::LinkedTransferMade(t) => {
                self.linked.push(t.clone());
                // A conversion to the linked bank account is not spending:
                // take the DA's own line for it out of today's total.
                if let Some(o) = self.outgoing(&t.tx)
                    && o.account == t.account
                    && let Some(e) = self.history_line(&o.account, o.history_seq)
                    && counts_as_spent(&e)
                    && let Some(book) = self.books.get_mut(&t.account)
                {
                    book.unspend(e.at, e.outgoing);
                }
            }
            NodeRecord::Rekeyed { reid, custody } => {
                if let Some(a) = self.accounts.get_mut(&reid.account) {
                    a.address = reid.new;
                    a.custody = custody.clone();
                    // The old address keeps pointing at the DA so tokens still
                    // owned by it (until the rotation commits) stay attributed.
                    self.by_address.insert(reid.new, reid.account.clone());
                    self.revoked.insert(reid.old, reid.account.clone());
                    self.reidentifications.push(reid.clone());
                }
            }
            NodeRecord::AccountClosed { account, .. } => {
                if let Some(a) = self.accounts.get_mut(account) {
                    a.closed = true;
                }
            }
            NodeRecord::Card(record) => self.cards.apply(record),
            NodeRecord::RefusedInFlight { tx, refusal } => match refusal {
                Some(why) if self.in_flight_has(tx) => {
                    self.refused_in_flight.insert(*tx, why.clone());
                }
                _ => {
                    self.refused_in_flight.remove(tx);
                }
            },
        }
    }

    /// After a crash, the archive may hold entries of records the journal
    /// lost (applied, never durable, never acknowledged): received
    /// transactions numbered past this state's count, history lines and
    /// notifications numbered past a DA's book. They are removed, so a
    /// redelivery of a lost transaction is not taken for a duplicate and
    /// new lines reuse the numbers; and settled copies of outgoing
    /// transactions the journal has unsettled (their `Committed`, `Aborted`
    /// or last `Delivered` was lost), so no reader of settled history — the
    /// issuer's supply, reports, audits — counts a commit the journal does
    /// not hold, or one transaction twice. Called once after recovery;
    /// returns how many entries went.
    pub fn drop_entries_ahead_of_journal(&mut self) -> usize {
        let mut stale: Vec<Vec<u8>> = Vec::new();
        for id in self.unsettled.keys() {
            let key = archive::key(Table::Outgoing, &[id]);
            if self.archive.contains(&key) {
                stale.push(key);
            }
        }
        let count = self.received_count;
        self.archive.scan::<ReceivedTx>(&[Table::Received as u8], false, |k, r| {
            if r.number > count {
                stale.push(k.to_vec());
            }
            true
        });
        for (table, history) in [(Table::History, true), (Table::Notifications, false)] {
            let books = &self.books;
            let mut keys: Vec<Vec<u8>> = Vec::new();
            let _ = self.archive.scan_keys(&[table as u8], |k| {
                let seq = key_seq(k);
                let limit = key_tail::<AccountId>(k)
                    .and_then(|a| books.get(&a))
                    .map_or(0, |b| if history { b.history } else { b.notifications });
                if seq > limit {
                    keys.push(k.to_vec());
                }
                true
            });
            stale.extend(keys);
        }
        for k in &stale {
            self.archive.remove(k);
        }
        stale.len()
    }

    /// The tier and linked account of a DA (the default if never set).
    pub fn profile(&self, account: &AccountId) -> AccountProfile {
        self.profiles.get(account).cloned().unwrap_or_default()
    }

    /// The tier limits of NBK's policy that apply to a DA, if any (individuals').
    pub fn limits_of(&self, account: &Account) -> Option<(crate::regime::Tier, crate::regime::TierLimits)> {
        if account.holder.kind != crate::accounts::HolderKind::Individual {
            return None;
        }
        let policy = self.policy.as_ref()?;
        let tier = self.profile(&account.id).tier;
        Some((tier, *policy.limits(tier)))
    }

    /// Active freezes and arrests on a DA.
    pub fn active_orders(&self, account: &AccountId) -> Vec<&OrderEntry> {
        self.orders.values().filter(|e| e.account == *account && e.active()).collect()
    }

    /// The sum arrested on a DA by active arrests ([`NodeError::Overflow`]
    /// if the arrests sum past the representable range).
    pub fn arrested(&self, account: &AccountId) -> Result<Amount, NodeError> {
        Amount::checked_sum(self.active_orders(account).into_iter().filter_map(|e| match e.signed.order.act {
            dtenge_types::OrderAct::Arrest { amount } => Some(amount),
            _ => None,
        }))
        .ok_or(NodeError::Overflow)
    }

    /// What left a DA today (Astana day of `now`) by payments of its holder:
    /// neither collections nor conversions to the linked bank account count.
    /// A running total kept per DA, never a scan of history.
    pub fn spent_on_day(&self, account: &AccountId, now: Timestamp) -> Amount {
        match self.books.get(account) {
            Some(book) if book.day == crate::regime::astana_day(now) => book.spent,
            _ => Amount::ZERO,
        }
    }

    fn history_line(&self, account: &AccountId, seq: u64) -> Option<HistoryEntry> {
        self.archive.get(&archive::key(Table::History, &[account, &Seq(seq)]))
    }

    /// Archives a new history line for `account`; returns its number.
    fn add_history(&mut self, account: &AccountId, entry: &HistoryEntry) -> u64 {
        let book = self.books.entry(account.clone()).or_default();
        book.history = book.history.saturating_add(1);
        if counts_as_spent(entry) {
            book.add_spent(entry.at, entry.outgoing);
        }
        let seq = book.history;
        self.archive.put(&archive::key(Table::History, &[account, &Seq(seq)]), entry);
        seq
    }

    /// Sets the status of `account`'s lines of `made`'s transaction (as
    /// `prepared` was given it), from line `seq` on. `previous` comes from
    /// memory: the archived line may already carry a later status when a
    /// journal tail is replayed. The lines of one transaction (one per
    /// currency) follow the first.
    fn set_history_status(
        &mut self,
        account: &AccountId,
        seq: u64,
        made: (TxId, &Transaction, &[Token], Timestamp),
        previous: &Status,
        status: Status,
    ) {
        if seq == 0 {
            return;
        }
        // A transaction of one currency has one line, the one `prepared`
        // wrote from the same transaction: it is made again rather than
        // read back (every release wrote one line for one currency).
        let (id, tx, inputs, made_at) = made;
        let mut lines = self.history_entries(id, tx, inputs, account, made_at, previous.clone());
        let single = lines.len() == 1;
        let mut line = if single { lines.pop() } else { self.history_line(account, seq) };
        let Some(tx) = line.as_ref().map(|l| l.tx) else { return };
        let mut at = seq;
        while let Some(mut entry) = line.take() {
            entry.status = previous.clone();
            let counted = counts_as_spent(&entry);
            entry.status = status.clone();
            if counted
                && !counts_as_spent(&entry)
                && let Some(book) = self.books.get_mut(account)
            {
                book.unspend(entry.at, entry.outgoing);
            }
            self.archive.put(&archive::key(Table::History, &[account, &Seq(at)]), &entry);
            at = at.saturating_add(1);
            if !single && at.saturating_sub(seq) < LINES_PER_TX_MAX {
                line = self.history_line(account, at).filter(|next| next.tx == tx);
            }
        }
    }

    fn prepared(&mut self, tx: &Transaction, inputs: &[Token], account: &AccountId, at: Timestamp) {
        let id = tx.id();
        if self.unsettled.contains_key(&id) {
            return;
        }
        let ids: Vec<TokenId> = tx.body.inputs.to_vec();
        self.vault.restore_reservation(&ids, id);
        if let Some((currency, amount)) = issued(tx) {
            self.add_supply(currency, amount, true);
        }
        let mut history_seq = 0;
        for (i, entry) in self.history_entries(id, tx, inputs, account, at, Status::UnderReview).iter().enumerate() {
            let seq = self.add_history(account, entry);
            if i == 0 {
                history_seq = seq;
            }
        }
        self.unsettled.insert(
            id,
            Outgoing {
                tx: tx.clone(),
                inputs: inputs.to_vec(),
                account: account.clone(),
                status: Status::UnderReview,
                undelivered: BTreeSet::new(),
                receipt: None,
                at,
                history_seq,
            },
        );
    }

    /// Applies a commit once per transaction: the submitting operation and
    /// the resolver (`resolve_in_flight`) may both journal `Committed` for
    /// one transaction, and a second application would put back outputs
    /// spent since and take a redemption off the supply twice. Only a
    /// transaction still under review commits; one settled into the archive
    /// is not in memory at all.
    fn committed(&mut self, id: &TxId, receipt: &[u8], deliver_to: &BTreeSet<ParticipantId>, at: Timestamp) {
        let Some(out) = self.unsettled.get_mut(id) else { return };
        if out.status != Status::UnderReview {
            return;
        }
        let previous = std::mem::replace(&mut out.status, Status::Success);
        self.refused_in_flight.remove(id);
        out.receipt = Some(receipt.to_vec());
        out.undelivered = deliver_to.clone();
        let tx = out.tx.clone();
        let inputs = out.inputs.clone();
        let account = out.account.clone();
        let seq = out.history_seq;
        let made_at = out.at;
        for input in tx.body.inputs.iter() {
            self.vault.remove(input);
        }
        if let Some((currency, amount)) = redeemed(&tx, &inputs) {
            self.add_supply(currency, amount, false);
        }
        self.add_own_outputs(*id, &tx);
        self.set_history_status(&account, seq, (*id, &tx, &inputs, made_at), &previous, Status::Success);
        // Other DAs of this node that received something (same-node payments).
        let receivers: BTreeSet<AccountId> =
            tx.body.outputs.iter().filter_map(|t| self.local_owner(t).cloned()).filter(|a| *a != account).collect();
        for receiver in receivers {
            for entry in self.history_entries(*id, &tx, &inputs, &receiver, at, Status::Success) {
                self.add_history(&receiver, &entry);
            }
        }
        self.settle_if_done(id);
    }

    fn aborted(&mut self, id: &TxId, reason: &Reason, spent_elsewhere: &[TokenId]) {
        let Some(out) = self.unsettled.get_mut(id) else { return };
        self.refused_in_flight.remove(id);
        let previous = std::mem::replace(&mut out.status, Status::Rejected { reason: reason.clone() });
        let ids: Vec<TokenId> = out.tx.body.inputs.to_vec();
        let account = out.account.clone();
        let seq = out.history_seq;
        let (tx, inputs, made_at) = (out.tx.clone(), out.inputs.clone(), out.at);
        let unissued = issued(&out.tx);
        self.vault.unreserve(&ids, *id);
        if let Some((currency, amount)) = unissued {
            self.add_supply(currency, amount, false);
        }
        for gone in spent_elsewhere {
            self.vault.remove(gone);
        }
        let rejected = Status::Rejected { reason: reason.clone() };
        self.set_history_status(&account, seq, (*id, &tx, &inputs, made_at), &previous, rejected);
        self.settle_if_done(id);
    }

    /// Moves an outgoing transaction to the archive once it is settled:
    /// aborted, or committed and delivered to every node.
    fn settle_if_done(&mut self, id: &TxId) {
        let done = self.unsettled.get(id).is_some_and(|o| o.status != Status::UnderReview && o.undelivered.is_empty());
        if done && let Some(o) = self.unsettled.remove(id) {
            self.archive.put(&archive::key(Table::Outgoing, &[id]), &o);
            self.settled_count = self.settled_count.saturating_add(1);
        }
    }

    /// Puts outputs owned by this node's DAs into the vault. (A token's
    /// lineage needs no entry of its own: it is read from the transaction
    /// that created it, kept anyway — [`NodeState::lineage`].)
    fn add_own_outputs(&mut self, tx_id: TxId, tx: &Transaction) {
        for (index, token) in tx.body.outputs.iter().enumerate() {
            let id = TxBody::output_id(tx_id, index);
            if let Some(account) = self.local_owner(token).cloned() {
                self.vault.insert(id, token.clone(), account);
            }
        }
    }

    fn received_tx(&mut self, tx: &Transaction, inputs: &[Token], from: &ParticipantId, at: Timestamp) {
        let id = tx.id();
        if self.unsettled.contains_key(&id) || self.archive.contains(&archive::key(Table::Outgoing, &[&id])) {
            return;
        }
        let number = self.received_count.saturating_add(1);
        let key = archive::key(Table::Received, &[&id]);
        if let Some(known) = self.archive.get::<ReceivedTx>(&key)
            && known.number != number
        {
            // Received before (as arrival `known.number`): a duplicate. The
            // same number means this very record is being replayed into an
            // archive that already holds it; then it applies again.
            return;
        }
        self.received_count = number;
        self.archive.put(&key, &ReceivedTx { number, tx: tx.clone(), from: from.clone() });
        // Inputs of this node's DAs that the transaction spent (a leg this
        // node signed for another node's PvP).
        for input in tx.body.inputs.iter() {
            self.vault.remove(input);
        }
        self.add_own_outputs(id, tx);
        // History for every local DA that received something.
        let receivers: BTreeSet<AccountId> =
            tx.body.outputs.iter().filter_map(|t| self.local_owner(t).cloned()).collect();
        for account in receivers {
            for entry in self.history_entries(id, tx, inputs, &account, at, Status::Success) {
                self.add_history(&account, &entry);
            }
        }
    }

    /// The history lines for `account` from its side of `tx`: one per
    /// currency of the DA's tokens it spends or receives (one line, in the
    /// transaction's currency, when it moves none of them, e.g. a change of
    /// kind only), at most [`LINES_PER_TX_MAX`]. `id` is `tx`'s.
    fn history_entries(
        &self,
        id: TxId,
        tx: &Transaction,
        inputs: &[Token],
        account: &AccountId,
        at: Timestamp,
        status: Status,
    ) -> Vec<HistoryEntry> {
        let me = self.accounts.get(account).map(|a| a.address);
        let mine = |t: &Token| Some(t.owner) == me;
        let mut currencies: Vec<Currency> = Vec::new();
        for t in inputs.iter().chain(tx.body.outputs.iter()).filter(|t| mine(t)) {
            if !currencies.contains(&t.currency) {
                currencies.push(t.currency);
            }
        }
        if currencies.is_empty()
            && let Some(t) = tx.body.outputs.iter().chain(inputs.iter()).next()
        {
            currencies.push(t.currency);
        }
        currencies.sort();
        currencies.truncate(usize::try_from(LINES_PER_TX_MAX).unwrap_or(usize::MAX));
        // Never reached: one currency's tokens of one transaction sum within
        // that currency's outstanding supply, which `NodeState::admit` keeps
        // within u64 (`SupplyOverflow`); `tests/supply.rs` checks the lines at the edge.
        let sum =
            |ts: &mut dyn Iterator<Item = &Token>| Amount::checked_sum(ts.map(|t| t.amount)).unwrap_or(Amount::MAX);
        currencies
            .into_iter()
            .map(|currency| {
                let of = |t: &&Token| t.currency == currency;
                let in_mine = sum(&mut inputs.iter().filter(of).filter(|t| mine(t)));
                let out_mine = sum(&mut tx.body.outputs.iter().filter(of).filter(|t| mine(t)));
                let mut counterparties: Vec<Address> = Vec::new();
                for t in inputs.iter().chain(tx.body.outputs.iter()).filter(of) {
                    if !mine(t) && !counterparties.contains(&t.owner) {
                        counterparties.push(t.owner);
                    }
                }
                HistoryEntry {
                    tx: id,
                    at,
                    kind: tx.body.command.name().to_string(),
                    incoming: out_mine.saturating_sub(in_mine),
                    outgoing: in_mine.saturating_sub(out_mine),
                    counterparties,
                    memo: tx.body.memo.as_ref().map(|m| m.to_string()),
                    status: status.clone(),
                    currency: Some(currency),
                }
            })
            .collect()
    }

    /// Outgoing transactions prepared but neither committed nor aborted (after a restart: to resolve with the notary).
    pub fn in_flight(&self) -> Vec<TxId> {
        self.unsettled.iter().filter(|(_, o)| o.status == Status::UnderReview).map(|(id, _)| *id).collect()
    }

    fn in_flight_has(&self, tx: &TxId) -> bool {
        self.unsettled.get(tx).is_some_and(|o| o.status == Status::UnderReview)
    }

    /// Why `tx`, in flight, is kept off the notary: its payees' banks'
    /// refusal when they were asked again ([`NodeRecord::RefusedInFlight`]).
    pub fn refusal_in_flight(&self, tx: &TxId) -> Option<&Reason> {
        self.refused_in_flight.get(tx)
    }

    /// Committed transactions with deliveries outstanding.
    pub fn undelivered(&self) -> Vec<(TxId, ParticipantId)> {
        self.unsettled.iter().flat_map(|(id, o)| o.undelivered.iter().map(move |to| (*id, to.clone()))).collect()
    }
}

/// Reads of what lives only in the archive.
impl Archive {
    /// Visits every settled outgoing transaction until `visit` returns `false`.
    pub fn for_each_settled(&self, mut visit: impl FnMut(&TxId, &Outgoing) -> bool) {
        self.scan::<Outgoing>(&[Table::Outgoing as u8], false, |k, o| match key_tail::<TxId>(k) {
            Some(id) => visit(&id, &o),
            None => true,
        });
    }

    /// A transaction received from another node, and who sent it.
    pub fn received(&self, id: &TxId) -> Option<(Transaction, ParticipantId)> {
        self.get::<ReceivedTx>(&archive::key(Table::Received, &[id])).map(|r| (r.tx, r.from))
    }

    /// Visits every received transaction until `visit` returns `false`.
    pub fn for_each_received(&self, mut visit: impl FnMut(&TxId, &Transaction, &ParticipantId) -> bool) {
        self.scan::<ReceivedTx>(&[Table::Received as u8], false, |k, r| match key_tail::<TxId>(k) {
            Some(id) => visit(&id, &r.tx, &r.from),
            None => true,
        });
    }

    /// A DA's history, newest first: `visit` gets each line's number and the
    /// line until it returns `false`.
    pub fn history_newest_first(&self, account: &AccountId, mut visit: impl FnMut(u64, HistoryEntry) -> bool) {
        let prefix = archive::key(Table::History, &[account]);
        self.scan::<HistoryEntry>(&prefix, true, |k, e| visit(key_seq(k), e));
    }

    /// Up to `limit` of a DA's newest history lines, newest first.
    pub fn history(&self, account: &AccountId, limit: usize) -> Vec<HistoryEntry> {
        let mut out = Vec::new();
        if limit > 0 {
            self.history_newest_first(account, |_, e| {
                out.push(e);
                out.len() < limit
            });
        }
        out
    }

    /// Visits every DA's history lines (oldest first per DA) until `visit` returns `false`.
    pub fn for_each_history(&self, mut visit: impl FnMut(&AccountId, HistoryEntry) -> bool) {
        self.scan::<HistoryEntry>(&[Table::History as u8], false, |k, e| match key_tail::<AccountId>(k) {
            Some(account) => visit(&account, e),
            None => true,
        });
    }

    /// A DA's notifications, newest first, until `visit` returns `false`.
    pub fn notifications_newest_first(&self, account: &AccountId, mut visit: impl FnMut(Notification) -> bool) {
        let prefix = archive::key(Table::Notifications, &[account]);
        self.scan::<Notification>(&prefix, true, |_, n| visit(n));
    }

    /// Up to `limit` of a DA's newest notifications, newest first.
    pub fn notifications(&self, account: &AccountId, limit: usize) -> Vec<Notification> {
        let mut out = Vec::new();
        if limit > 0 {
            self.notifications_newest_first(account, |n| {
                out.push(n);
                out.len() < limit
            });
        }
        out
    }

    /// The parents of a token created by a settled or received transaction.
    pub fn lineage(&self, token: &TokenId) -> Option<Vec<TokenId>> {
        if let Some(out) = self.get::<Outgoing>(&archive::key(Table::Outgoing, &[&token.tx])) {
            return if out.status == Status::Success { parents(&out.tx, token) } else { None };
        }
        if let Some(received) = self.get::<ReceivedTx>(&archive::key(Table::Received, &[&token.tx])) {
            return parents(&received.tx, token);
        }
        // Archives written before lineage was read from the transactions
        // kept one entry per token.
        self.get(&archive::key(Table::Lineage, &[token]))
    }
}

/// The parents of `token` if `tx` created it: the transaction's inputs.
fn parents(tx: &Transaction, token: &TokenId) -> Option<Vec<TokenId>> {
    (usize::from(token.index) < tx.body.outputs.len()).then(|| tx.body.inputs.to_vec())
}

/// The value after a key's table byte, decoded (the rest of the key is ignored).
fn key_tail<T: BorshDeserialize>(key: &[u8]) -> Option<T> {
    let mut rest = key.get(1..)?;
    T::deserialize(&mut rest).ok()
}

/// The sequence number at the end of a history or notification key.
fn key_seq(key: &[u8]) -> u64 {
    key.len()
        .checked_sub(8)
        .and_then(|start| key.get(start..))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The currency and amount an issue creates.
fn issued(tx: &Transaction) -> Option<(Currency, Amount)> {
    if !matches!(tx.body.command, Command::Issue { .. }) {
        return None;
    }
    let first = tx.body.outputs.iter().next()?;
    Some((first.currency, Amount::checked_sum(tx.body.outputs.iter().map(|t| t.amount))?))
}

/// The currency and amount a redemption destroys (inputs less change).
fn redeemed(tx: &Transaction, inputs: &[Token]) -> Option<(Currency, Amount)> {
    if !matches!(tx.body.command, Command::Redeem { .. }) {
        return None;
    }
    let currency = inputs.first()?.currency;
    let spent = Amount::checked_sum(inputs.iter().map(|t| t.amount))?;
    let change = Amount::checked_sum(tx.body.outputs.iter().map(|t| t.amount))?;
    Some((currency, spent.checked_sub(change)?))
}
