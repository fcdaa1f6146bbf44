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
use dtenge_types::{Address, Amount, IinBin, ParticipantId, Timestamp, Token, TokenId, Transaction, TxId};
use serde::{Deserialize, Serialize};

use crate::accounts::{Account, AccountId, KycState};
use crate::regime::{AccountProfile, LimitPolicy, LinkedTransfer, OrderEntry, Reidentification};
use crate::vault::Vault;
use dtenge_crypto::PublicKey;
use dtenge_types::OrderRef;

/// Status of a request or transaction as users see it (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Received and recorded.
    RequestAccepted,
    /// Waiting for NBK approval, a checker, or the notary.
    UnderReview,
    /// Done.
    Success,
    /// Refused, with the reason.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// One line of a DA's history.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
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
}

/// Something a DA holder is told (SPEC §5: incoming funds and holds).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Notification {
    /// When.
    pub at: Timestamp,
    /// What happened, for people.
    pub text: String,
    /// The transaction, if any.
    pub tx: Option<TxId>,
}

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
        /// Why.
        reason: String,
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
}

/// Everything a node knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NodeState {
    /// DAs by id.
    pub accounts: BTreeMap<AccountId, Account>,
    by_address: BTreeMap<Address, AccountId>,
    by_iin: BTreeMap<IinBin, BTreeSet<AccountId>>,
    /// Tokens of this node's DAs.
    pub vault: Vault,
    /// Transactions this node built, by id.
    pub outgoing: BTreeMap<TxId, Outgoing>,
    /// History per DA, oldest first.
    pub history: BTreeMap<AccountId, Vec<HistoryEntry>>,
    /// Notifications per DA, oldest first.
    pub notifications: BTreeMap<AccountId, Vec<Notification>>,
    /// Parents of every token this node has seen created: the inputs of the
    /// transaction that created it.
    pub lineage: BTreeMap<TokenId, Vec<TokenId>>,
    /// Transactions received, by id (incoming payments and traceability copies).
    pub received: BTreeMap<TxId, (Transaction, ParticipantId)>,
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
}

impl NodeState {
    /// The DA owning `address`, if it is on this node.
    pub fn account_of(&self, address: &Address) -> Option<&Account> {
        self.by_address.get(address).and_then(|id| self.accounts.get(id))
    }

    /// DAs of a holder on this node.
    pub fn accounts_of(&self, iin: &IinBin) -> Vec<&Account> {
        self.by_iin.get(iin).into_iter().flatten().filter_map(|id| self.accounts.get(id)).collect()
    }

    /// Applies a record. Deterministic; a record that contradicts the state
    /// (a broken journal) is ignored field by field rather than corrupting it.
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
                if let Some(o) = self.outgoing.get_mut(tx) {
                    o.undelivered.remove(to);
                }
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
                self.notifications.entry(account.clone()).or_default().push(notification.clone());
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
                    e.collected = e.collected.checked_add(*amount).unwrap_or(Amount::MAX);
                    e.txs.push(*tx);
                }
            }
            NodeRecord::LinkedTransferMade(t) => self.linked.push(t.clone()),
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
        }
    }

    /// The tier and linked account of a DA (the default if never set).
    pub fn profile(&self, account: &AccountId) -> AccountProfile {
        self.profiles.get(account).cloned().unwrap_or_default()
    }

    /// Active freezes and arrests on a DA.
    pub fn active_orders(&self, account: &AccountId) -> Vec<&OrderEntry> {
        self.orders.values().filter(|e| e.account == *account && e.active()).collect()
    }

    /// The sum arrested on a DA by active arrests.
    pub fn arrested(&self, account: &AccountId) -> Amount {
        Amount::checked_sum(self.active_orders(account).into_iter().filter_map(|e| match e.signed.order.act {
            dtenge_types::OrderAct::Arrest { amount } => Some(amount),
            _ => None,
        }))
        .unwrap_or(Amount::MAX)
    }

    /// What left a DA today (Astana day of `now`) by payments of its holder:
    /// neither collections nor conversions to the linked bank account count.
    pub fn spent_on_day(&self, account: &AccountId, now: Timestamp) -> Amount {
        let day = crate::regime::astana_day(now);
        let sweeps: BTreeSet<TxId> = self.linked.iter().filter(|t| t.account == *account).map(|t| t.tx).collect();
        let entries = self.history.get(account).into_iter().flatten();
        Amount::checked_sum(
            entries
                .filter(|e| crate::regime::astana_day(e.at) == day)
                .filter(|e| !matches!(e.status, Status::Rejected { .. }))
                .filter(|e| e.kind != "collect" && e.kind != "rekey" && !sweeps.contains(&e.tx))
                .map(|e| e.outgoing),
        )
        .unwrap_or(Amount::MAX)
    }

    fn prepared(&mut self, tx: &Transaction, inputs: &[Token], account: &AccountId, at: Timestamp) {
        let id = tx.id();
        let ids: Vec<TokenId> = tx.body.inputs.to_vec();
        // Reservation cannot fail on a replay of a journal written by this node.
        let _ = self.vault.reserve(&ids, id);
        let entry = self.history_entry(tx, inputs, account, at, Status::UnderReview);
        self.history.entry(account.clone()).or_default().push(entry);
        self.outgoing.insert(
            id,
            Outgoing {
                tx: tx.clone(),
                inputs: inputs.to_vec(),
                account: account.clone(),
                status: Status::UnderReview,
                undelivered: BTreeSet::new(),
                receipt: None,
            },
        );
    }

    fn set_history_status(&mut self, account: &AccountId, tx: &TxId, status: Status) {
        if let Some(entries) = self.history.get_mut(account)
            && let Some(e) = entries.iter_mut().rev().find(|e| e.tx == *tx)
        {
            e.status = status;
        }
    }

    fn committed(&mut self, id: &TxId, receipt: &[u8], deliver_to: &BTreeSet<ParticipantId>, at: Timestamp) {
        let Some(out) = self.outgoing.get_mut(id) else { return };
        out.status = Status::Success;
        out.receipt = Some(receipt.to_vec());
        out.undelivered = deliver_to.clone();
        let tx = out.tx.clone();
        let inputs = out.inputs.clone();
        let account = out.account.clone();
        for input in tx.body.inputs.iter() {
            self.vault.remove(input);
        }
        self.add_own_outputs(&tx, at);
        self.set_history_status(&account, id, Status::Success);
        // Other DAs of this node that received something (same-node payments).
        let receivers: BTreeSet<AccountId> = tx
            .body
            .outputs
            .iter()
            .filter_map(|t| self.by_address.get(&t.owner).cloned())
            .filter(|a| *a != account)
            .collect();
        for receiver in receivers {
            let entry = self.history_entry(&tx, &inputs, &receiver, at, Status::Success);
            self.history.entry(receiver).or_default().push(entry);
        }
    }

    fn aborted(&mut self, id: &TxId, reason: &str, spent_elsewhere: &[TokenId]) {
        let Some(out) = self.outgoing.get_mut(id) else { return };
        out.status = Status::Rejected { reason: reason.to_string() };
        let ids: Vec<TokenId> = out.tx.body.inputs.to_vec();
        let account = out.account.clone();
        self.vault.unreserve(&ids, *id);
        for gone in spent_elsewhere {
            self.vault.remove(gone);
        }
        self.set_history_status(&account, id, Status::Rejected { reason: reason.to_string() });
    }

    /// Puts outputs owned by this node's DAs into the vault and records lineage.
    fn add_own_outputs(&mut self, tx: &Transaction, _at: Timestamp) {
        let parents: Vec<TokenId> = tx.body.inputs.to_vec();
        for (id, token) in tx.output_ids().zip(tx.body.outputs.iter()) {
            self.lineage.insert(id, parents.clone());
            if let Some(account) = self.by_address.get(&token.owner).cloned() {
                self.vault.insert(id, token.clone(), account);
            }
        }
    }

    fn received_tx(&mut self, tx: &Transaction, inputs: &[Token], from: &ParticipantId, at: Timestamp) {
        let id = tx.id();
        if self.received.contains_key(&id) || self.outgoing.contains_key(&id) {
            return;
        }
        self.received.insert(id, (tx.clone(), from.clone()));
        // Inputs of this node's DAs that the transaction spent (a leg this
        // node signed for another node's PvP).
        for input in tx.body.inputs.iter() {
            self.vault.remove(input);
        }
        self.add_own_outputs(tx, at);
        // History for every local DA that received something.
        let receivers: BTreeSet<AccountId> =
            tx.body.outputs.iter().filter_map(|t| self.by_address.get(&t.owner).cloned()).collect();
        for account in receivers {
            let entry = self.history_entry(tx, inputs, &account, at, Status::Success);
            self.history.entry(account).or_default().push(entry);
        }
    }

    /// A history line for `account` from its side of `tx`.
    fn history_entry(
        &self,
        tx: &Transaction,
        inputs: &[Token],
        account: &AccountId,
        at: Timestamp,
        status: Status,
    ) -> HistoryEntry {
        let me = self.accounts.get(account).map(|a| a.address);
        let mine = |t: &&Token| Some(t.owner) == me;
        let sum =
            |ts: &mut dyn Iterator<Item = &Token>| Amount::checked_sum(ts.map(|t| t.amount)).unwrap_or(Amount::MAX);
        let in_mine = sum(&mut inputs.iter().filter(mine));
        let out_mine = sum(&mut tx.body.outputs.iter().filter(mine));
        let mut counterparties: Vec<Address> = Vec::new();
        for t in inputs.iter().chain(tx.body.outputs.iter()) {
            if Some(t.owner) != me && !counterparties.contains(&t.owner) {
                counterparties.push(t.owner);
            }
        }
        HistoryEntry {
            tx: tx.id(),
            at,
            kind: tx.body.command.name().to_string(),
            incoming: out_mine.saturating_sub(in_mine),
            outgoing: in_mine.saturating_sub(out_mine),
            counterparties,
            memo: tx.body.memo.as_ref().map(|m| m.to_string()),
            status,
        }
    }

    /// Outgoing transactions prepared but neither committed nor aborted (after a restart: to resolve with the notary).
    pub fn in_flight(&self) -> Vec<TxId> {
        self.outgoing.iter().filter(|(_, o)| o.status == Status::UnderReview).map(|(id, _)| *id).collect()
    }

    /// Committed transactions with deliveries outstanding.
    pub fn undelivered(&self) -> Vec<(TxId, ParticipantId)> {
        self.outgoing.iter().flat_map(|(id, o)| o.undelivered.iter().map(move |to| (*id, to.clone()))).collect()
    }
}
