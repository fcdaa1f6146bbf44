//! The end-to-end invariants a platform must keep whatever fails, checked
//! over the notary's and every node's recovered state (the crash test and
//! `dtenge chaos` both end with this):
//!
//! - no token is spent twice: no two committed transactions consume the same
//!   token, no token is held by two nodes, no node holds a token the notary
//!   has spent;
//! - no acknowledged transfer is lost: each is committed at the notary and
//!   recorded at its payer's node (committed) and its payees' nodes;
//! - supply = issued − redeemed (DT held in all vaults, a stablecoin's
//!   reserve counted: it is DT the issuer holds encumbered);
//! - per DT-backed stablecoin, reserve = supply: the DT encumbered as its
//!   reserve equals the stablecoin held in all vaults (the kernel moves both
//!   together at every mint and burn);
//! - every node agrees with the notary: each held token is unspent there, and
//!   the notary has exactly as many unspent commitments as the nodes hold
//!   tokens (so no committed output is lost between nodes either);
//! - nothing is left in flight or undelivered once recovery ran;
//! - every input of a committed transaction is spent by it at the notary.
//!
//! When a committed output is held by no node, the report names it
//! (`unheld_outputs`): the transaction that made it, what the notary says
//! about it, the transactions that took the token as an input, and what
//! every node's journal says about each (Prepared, Committed, Delivered,
//! Aborted, Received) — so a failing run explains itself.
//!
//! The checks run over [`Facts`], plain data gathered from the states, so a
//! test can feed the auditor a broken ledger and see each violation reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use dtenge_net::{Clock, LocalNetwork, NoEvidence, SystemClock};
use dtenge_node::state::{NodeState, Status};
use dtenge_notary::NotaryState;
use dtenge_types::{Amount, Command, Currency, ParticipantId, TokenId, TxId};
use serde::Serialize;

use crate::PlatformError;
use crate::services::{self, Service};
use crate::spec::{Keys, PlatformSpec};

/// What the notary says about a held token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtNotary {
    /// Unspent.
    Unspent,
    /// Spent by this transaction.
    SpentBy(TxId),
    /// Unknown to the notary.
    Unknown,
}

/// A token a node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultToken {
    /// The node.
    pub node: ParticipantId,
    /// The token.
    pub token: TokenId,
    /// Its currency.
    pub currency: Currency,
    /// Its amount.
    pub amount: Amount,
    /// For DT encumbered as a stablecoin's reserve: that stablecoin.
    pub reserve_of: Option<Currency>,
    /// Its commitment's status at the notary.
    pub at_notary: AtNotary,
}

/// A transaction some node recorded as committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxFact {
    /// The tokens it consumed.
    pub inputs: Vec<TokenId>,
    /// What the notary says about each input (empty if no node knows the
    /// input tokens: only a payer's journal holds them).
    pub inputs_at_notary: Vec<AtNotary>,
    /// Whether the notary committed it.
    pub at_notary: bool,
    /// Nodes that recorded it as their committed outgoing transaction.
    pub sent_by: BTreeSet<ParticipantId>,
    /// Nodes that received it (delivery to a payee's node).
    pub received_by: BTreeSet<ParticipantId>,
    /// DT it created by issue.
    pub issued: Amount,
    /// DT it destroyed by redemption.
    pub redeemed: Amount,
}

/// A transfer the platform acknowledged to its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// The transaction.
    pub tx: TxId,
    /// The payer's node.
    pub payer: ParticipantId,
    /// The payees' nodes.
    pub payees: Vec<ParticipantId>,
}

/// What one node's journal says about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalView {
    /// The node built it: `Prepared`, then as `status` says (`Committed`
    /// with `Delivered` to every node but `undelivered`, or `Aborted`).
    Built {
        /// Where it stands.
        status: Status,
        /// Nodes it is still to be delivered to.
        undelivered: BTreeSet<ParticipantId>,
    },
    /// The node journaled `Received` from `from`.
    Received {
        /// The sending node.
        from: ParticipantId,
    },
}

impl std::fmt::Display for JournalView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalView::Built { status: Status::Success, undelivered } if undelivered.is_empty() => {
                write!(f, "Prepared, Committed, Delivered to every node")
            }
            JournalView::Built { status: Status::Success, undelivered } => {
                let names: Vec<&str> = undelivered.iter().map(ParticipantId::as_str).collect();
                write!(f, "Prepared, Committed, not Delivered to {}", names.join(", "))
            }
            JournalView::Built { status: Status::Rejected { reason }, .. } => write!(f, "Prepared, Aborted ({reason})"),
            JournalView::Built { .. } => write!(f, "Prepared, neither Committed nor Aborted"),
            JournalView::Received { from } => write!(f, "Received from {from}"),
        }
    }
}

/// A committed output unspent at the notary, and the transaction that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeBy {
    /// The transaction.
    pub tx: TxId,
    /// The output's currency.
    pub currency: Currency,
    /// The output's amount.
    pub amount: Amount,
    /// The node hosting its owner's DA.
    pub host: ParticipantId,
}

/// Plain facts gathered from the notary and the nodes.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Every token every node holds.
    pub vault: Vec<VaultToken>,
    /// Committed transactions as the nodes recorded them.
    pub transactions: BTreeMap<TxId, TxFact>,
    /// Unspent commitments at the notary.
    pub notary_unspent: usize,
    /// Transactions the notary committed.
    pub notary_committed: u64,
    /// Work recovery left undone (in flight, undelivered), one line each.
    pub unresolved: Vec<String>,
    /// Outputs of transactions the nodes know (whatever their outcome) that
    /// are unspent at the notary: each must be held by some node.
    pub unspent_outputs: BTreeMap<TokenId, MadeBy>,
    /// Transactions (whatever their outcome) taking each token as an input.
    pub consumers: BTreeMap<TokenId, BTreeSet<TxId>>,
    /// What each node's journal says about each transaction it knows.
    pub journals: BTreeMap<TxId, Vec<(ParticipantId, JournalView)>>,
    /// Each transaction a node knows: its notary sequence number if the
    /// notary committed it.
    pub notary_seq: BTreeMap<TxId, Option<u64>>,
    /// The registered DT-backed stablecoins (`Params::stablecoins`); any
    /// currency a reserve token names is audited too.
    pub stablecoins: BTreeSet<Currency>,
}

impl Facts {
    /// Starts from the notary's state.
    pub fn from_notary(notary: &NotaryState) -> Facts {
        Facts { notary_unspent: notary.counts().0, notary_committed: notary.committed_count(), ..Facts::default() }
    }

    /// Adds one node's state, looking its tokens and transactions up at the notary.
    pub fn add_node(&mut self, notary: &NotaryState, id: &ParticipantId, state: &NodeState) {
        for (token_id, stored) in state.vault.iter() {
            let at_notary = at_notary(notary, token_id, &stored.token);
            self.vault.push(VaultToken {
                node: id.clone(),
                token: *token_id,
                currency: stored.token.currency,
                amount: stored.token.amount,
                reserve_of: match &stored.token.encumbrance {
                    Some(dtenge_types::Encumbrance::Reserve(terms)) => Some(terms.stablecoin),
                    _ => None,
                },
                at_notary,
            });
        }
        state.for_each_outgoing(|tx_id, out| {
            self.note(
                notary,
                id,
                tx_id,
                &out.tx,
                JournalView::Built { status: out.status.clone(), undelivered: out.undelivered.clone() },
            );
            if out.status != Status::Success {
                return true;
            }
            let fact = self.fact(notary, tx_id, &out.tx);
            fact.sent_by.insert(id.clone());
            if fact.inputs_at_notary.is_empty() {
                fact.inputs_at_notary =
                    out.tx.body.inputs.iter().zip(&out.inputs).map(|(i, t)| at_notary(notary, i, t)).collect();
            }
            if matches!(out.tx.body.command, Command::Redeem { .. }) {
                // Destroyed: the issuer's inputs less the change it keeps.
                let consumed = dt_sum(out.inputs.iter().map(|t| (t.currency, t.amount)));
                let change = dt_sum(out.tx.body.outputs.iter().map(|t| (t.currency, t.amount)));
                fact.redeemed = consumed.checked_sub(change).unwrap_or(Amount::ZERO);
            }
            true
        });
        state.for_each_received(|tx_id, tx, from| {
            self.note(notary, id, tx_id, tx, JournalView::Received { from: from.clone() });
            self.fact(notary, tx_id, tx).received_by.insert(id.clone());
            true
        });
        for tx in state.in_flight() {
            self.unresolved.push(format!("{id}: {tx} still in flight"));
        }
        for (tx, to) in state.undelivered() {
            self.unresolved.push(format!("{id}: {tx} not yet delivered to {to}"));
        }
    }

    /// Records what `node`'s journal says about `tx`, which inputs it takes
    /// and which of its outputs are unspent at the notary.
    fn note(
        &mut self,
        notary: &NotaryState,
        node: &ParticipantId,
        id: &TxId,
        tx: &dtenge_types::Transaction,
        view: JournalView,
    ) {
        self.journals.entry(*id).or_default().push((node.clone(), view));
        if self.notary_seq.contains_key(id) {
            return;
        }
        self.notary_seq.insert(*id, notary.committed(id).map(|body| body.seq));
        for input in tx.body.inputs.iter() {
            self.consumers.entry(*input).or_default().insert(*id);
        }
        for (token_id, token) in tx.output_ids().zip(tx.body.outputs.iter()) {
            if at_notary(notary, &token_id, token) == AtNotary::Unspent {
                let made = MadeBy { tx: *id, currency: token.currency, amount: token.amount, host: token.host.clone() };
                self.unspent_outputs.insert(token_id, made);
            }
        }
    }

    fn fact(&mut self, notary: &NotaryState, id: &TxId, tx: &dtenge_types::Transaction) -> &mut TxFact {
        self.transactions.entry(*id).or_insert_with(|| TxFact {
            inputs: tx.body.inputs.iter().copied().collect(),
            at_notary: notary.committed(id).is_some(),
            issued: if matches!(tx.body.command, Command::Issue { .. }) {
                dt_sum(tx.body.outputs.iter().map(|t| (t.currency, t.amount)))
            } else {
                Amount::ZERO
            },
            ..TxFact::default()
        })
    }
}

/// What the notary says about a token.
fn at_notary(notary: &NotaryState, id: &TokenId, token: &dtenge_types::Token) -> AtNotary {
    match notary.token_status(id, token) {
        Some(Ok(())) => AtNotary::Unspent,
        Some(Err(by)) => AtNotary::SpentBy(by),
        None => AtNotary::Unknown,
    }
}

/// The sum, or None on overflow.
fn total(mut it: impl Iterator<Item = Amount>) -> Option<Amount> {
    it.try_fold(Amount::ZERO, |acc, a| acc.checked_add(a))
}

fn dt_sum(items: impl Iterator<Item = (Currency, Amount)>) -> Amount {
    items.filter(|(c, _)| *c == Currency::DT).fold(Amount::ZERO, |acc, (_, a)| acc.checked_add(a).unwrap_or(acc))
}

/// The auditor's findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Transactions the notary committed.
    pub committed: u64,
    /// Acknowledged transfers checked.
    pub acknowledged: usize,
    /// Spends or vault tokens that happened twice (must be empty).
    pub double_spends: Vec<String>,
    /// Acknowledged transfers missing anywhere (must be empty).
    pub lost: Vec<String>,
    /// Nodes disagreeing with the notary (must be empty).
    pub disagreements: Vec<String>,
    /// Work recovery left undone (must be empty).
    pub unresolved: Vec<String>,
    /// Committed outputs nobody holds, per transaction that made them, with
    /// what the notary and every node's journal say (must be empty).
    pub unheld_outputs: Vec<String>,
    /// DT issued, in tiyn.
    pub issued: u64,
    /// DT redeemed, in tiyn.
    pub redeemed: u64,
    /// DT held in all vaults, in tiyn.
    pub held: u64,
    /// held = issued − redeemed.
    pub supply_conserved: bool,
    /// Per stablecoin: supply held in all vaults and DT in its reserve.
    pub stablecoins: Vec<StablecoinFigures>,
    /// Stablecoins whose reserve differs from their supply (must be empty).
    pub reserve_mismatches: Vec<String>,
}

/// A stablecoin's figures as the auditor counted them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StablecoinFigures {
    /// Its code.
    pub code: String,
    /// Held in all vaults, in tiyn.
    pub supply: u64,
    /// DT in its reserve, in tiyn.
    pub reserve: u64,
}

impl AuditReport {
    /// Whether every invariant holds.
    pub fn passed(&self) -> bool {
        self.double_spends.is_empty()
            && self.lost.is_empty()
            && self.disagreements.is_empty()
            && self.unresolved.is_empty()
            && self.unheld_outputs.is_empty()
            && self.supply_conserved
            && self.reserve_mismatches.is_empty()
    }

    /// Every violation, one line each.
    pub fn violations(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        all.extend(self.double_spends.iter().map(|v| format!("double spend: {v}")));
        all.extend(self.lost.iter().map(|v| format!("lost: {v}")));
        all.extend(self.disagreements.iter().map(|v| format!("disagreement: {v}")));
        all.extend(self.unresolved.iter().map(|v| format!("unresolved: {v}")));
        all.extend(self.unheld_outputs.iter().map(|v| format!("unheld: {v}")));
        all.extend(self.reserve_mismatches.iter().map(|v| format!("stablecoin: {v}")));
        if !self.supply_conserved {
            all.push(format!(
                "supply: {} held, but issued {} − redeemed {}",
                Amount::from_tiyn(self.held),
                Amount::from_tiyn(self.issued),
                Amount::from_tiyn(self.redeemed)
            ));
        }
        all
    }
}

/// Checks every invariant over `facts` and the acknowledged transfers.
pub fn check(facts: &Facts, acked: &[Acked]) -> AuditReport {
    let mut double_spends = Vec::new();
    let mut disagreements = Vec::new();
    let mut lost = Vec::new();

    // No token consumed by two committed transactions.
    let mut spent_by: BTreeMap<TokenId, TxId> = BTreeMap::new();
    for (tx, fact) in &facts.transactions {
        if !fact.at_notary {
            disagreements.push(format!("{tx} is recorded as committed by a node but not at the notary"));
        }
        for (input, status) in fact.inputs.iter().zip(&fact.inputs_at_notary) {
            if fact.at_notary && *status != AtNotary::SpentBy(*tx) {
                let there = match status {
                    AtNotary::Unspent => "unspent".to_string(),
                    AtNotary::SpentBy(other) => format!("spent by {other}"),
                    AtNotary::Unknown => "unknown".to_string(),
                };
                disagreements.push(format!("{tx} is committed at the notary but its input {input} is {there} there"));
            }
        }
        for input in &fact.inputs {
            if let Some(first) = spent_by.insert(*input, *tx)
                && first != *tx
            {
                double_spends.push(format!("token {input} spent by {first} and by {tx}"));
            }
        }
    }
    // No token held twice, or held after it was spent.
    let mut held_by: BTreeMap<TokenId, &ParticipantId> = BTreeMap::new();
    for h in &facts.vault {
        if let Some(other) = held_by.insert(h.token, &h.node) {
            double_spends.push(format!("token {} held by {other} and by {}", h.token, h.node));
        }
        if let Some(tx) = spent_by.get(&h.token) {
            double_spends.push(format!("{} holds token {} which {tx} spent", h.node, h.token));
        }
        match h.at_notary {
            AtNotary::Unspent => {}
            AtNotary::SpentBy(tx) => {
                disagreements.push(format!("{} holds token {} which the notary says {tx} spent", h.node, h.token))
            }
            AtNotary::Unknown => {
                disagreements.push(format!("{} holds token {} unknown to the notary", h.node, h.token))
            }
        }
    }
    if facts.vault.len() != facts.notary_unspent {
        disagreements.push(format!(
            "the notary has {} unspent commitments but the nodes hold {} tokens",
            facts.notary_unspent,
            facts.vault.len()
        ));
    }
    // Every acknowledged transfer committed and recorded at both ends.
    for a in acked {
        let Some(fact) = facts.transactions.get(&a.tx) else {
            lost.push(format!("{} (acknowledged by {}) is recorded by no node", a.tx, a.payer));
            continue;
        };
        if !fact.at_notary {
            lost.push(format!("{} (acknowledged by {}) is not committed at the notary", a.tx, a.payer));
        }
        if !fact.sent_by.contains(&a.payer) {
            lost.push(format!("{} is not committed at its payer's node {}", a.tx, a.payer));
        }
        for payee in &a.payees {
            if payee != &a.payer && !fact.received_by.contains(payee) {
                lost.push(format!("{} never reached its payee's node {payee}", a.tx));
            }
        }
    }
    let unheld_outputs = unheld(facts);
    let issued = total(facts.transactions.values().filter(|f| f.at_notary).map(|f| f.issued));
    let redeemed = total(facts.transactions.values().filter(|f| f.at_notary).map(|f| f.redeemed));
    let held = total(facts.vault.iter().filter(|h| h.currency == Currency::DT).map(|h| h.amount));
    let supply_conserved = match (issued, redeemed, held) {
        (Some(i), Some(r), Some(h)) => i.checked_sub(r) == Some(h),
        _ => false,
    };
    let tiyn = |a: Option<Amount>| a.map_or(u64::MAX, |a| a.tiyn());
    let (stablecoins, reserve_mismatches) = facts.reserves();
    AuditReport {
        committed: facts.notary_committed,
        acknowledged: acked.len(),
        double_spends,
        lost,
        disagreements,
        unresolved: facts.unresolved.clone(),
        unheld_outputs,
        issued: tiyn(issued),
        redeemed: tiyn(redeemed),
        held: tiyn(held),
        supply_conserved,
        stablecoins,
        reserve_mismatches,
    }
}

impl Facts {
    /// Per stablecoin (registered, or named by a reserve token): the supply
    /// in all vaults against the DT in its reserve; a line for each that
    /// differs.
    pub fn reserves(&self) -> (Vec<StablecoinFigures>, Vec<String>) {
        let mut codes = self.stablecoins.clone();
        codes.extend(self.vault.iter().filter_map(|h| h.reserve_of));
        let mut figures = Vec::new();
        let mut mismatches = Vec::new();
        for code in codes {
            let supply = total(self.vault.iter().filter(|h| h.currency == code).map(|h| h.amount));
            let reserve = total(
                self.vault
                    .iter()
                    .filter(|h| h.currency == Currency::DT && h.reserve_of == Some(code))
                    .map(|h| h.amount),
            );
            match (supply, reserve) {
                (Some(s), Some(r)) if s == r => {}
                (Some(s), Some(r)) => mismatches.push(format!("{code}: reserve {r} DT but supply {s} {code}")),
                _ => mismatches.push(format!("{code}: the supply or the reserve overflows")),
            }
            let tiyn = |a: Option<Amount>| a.map_or(u64::MAX, |a| a.tiyn());
            figures.push(StablecoinFigures { code: code.to_string(), supply: tiyn(supply), reserve: tiyn(reserve) });
        }
        (figures, mismatches)
    }
}

/// One line per transaction with outputs unspent at the notary that no node
/// holds: the outputs, the notary's word, the transactions that took them
/// as inputs, and every node's journal on each.
fn unheld(facts: &Facts) -> Vec<String> {
    let held: BTreeSet<TokenId> = facts.vault.iter().map(|h| h.token).collect();
    let mut by_tx: BTreeMap<TxId, Vec<(&TokenId, &MadeBy)>> = BTreeMap::new();
    for (token, made) in &facts.unspent_outputs {
        if !held.contains(token) {
            by_tx.entry(made.tx).or_default().push((token, made));
        }
    }
    let story = |tx: &TxId| -> String {
        let notary = match facts.notary_seq.get(tx) {
            Some(Some(seq)) => format!("notary: committed #{seq}"),
            _ => "notary: not committed".to_string(),
        };
        let journals: Vec<String> =
            facts.journals.get(tx).into_iter().flatten().map(|(node, view)| format!("{node}: {view}")).collect();
        format!("{notary}; {}", journals.join("; "))
    };
    let mut lines = Vec::new();
    for (tx, outputs) in &by_tx {
        let listed: Vec<String> =
            outputs.iter().map(|(token, m)| format!("{token} ({} {} at {})", m.amount, m.currency, m.host)).collect();
        let mut line = format!(
            "{tx} made {} output(s) unspent at the notary that no node holds: {} [{}]",
            outputs.len(),
            listed.join(", "),
            story(tx)
        );
        for (token, _) in outputs {
            for consumer in facts.consumers.get(*token).into_iter().flatten() {
                line.push_str(&format!("; {token} is an input of {consumer} [{}]", story(consumer)));
            }
        }
        lines.push(line);
    }
    let explained: usize = by_tx.values().map(Vec::len).sum();
    let unspent_held = facts.vault.iter().filter(|h| h.at_notary == AtNotary::Unspent).count();
    let unexplained = facts.notary_unspent.saturating_sub(unspent_held).saturating_sub(explained);
    if unexplained > 0 {
        lines.push(format!(
            "{unexplained} commitment(s) unspent at the notary are outputs of no transaction any node's journal holds"
        ));
    }
    lines
}

/// Recovers the notary, the oracle and every node of the platform in `data`
/// from their journals (nothing runs: no ticks, no messages) and gathers the
/// facts. The services must be stopped.
pub fn gather(data: &Path) -> Result<Facts, PlatformError> {
    let spec = PlatformSpec::load(data)?;
    let participants = Arc::new(spec.directory());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let network = LocalNetwork::new(Arc::clone(&participants), Arc::clone(&clock), Arc::new(NoEvidence));
    let keys = Keys::at(data);
    let open = |id: &ParticipantId| -> Result<(Service, dtenge_store::Journal), PlatformError> {
        let bus = network.bus(id.clone(), Arc::new(keys.load(id.as_str())?));
        services::open(&spec, data, id, bus, Arc::clone(&clock), Arc::clone(&participants), false)
    };
    let notary = if spec.notary_group().is_empty() {
        let notary_id = crate::services::pid(crate::spec::ids::NOTARY)?;
        let (notary, journal) = open(&notary_id)?;
        let Service::Notary(notary) = notary else {
            return Err(PlatformError::Config("NOTARY is not the notary".into()));
        };
        let notary = notary.state_copy();
        journal.close().map_err(|e| PlatformError::service("notary journal", e))?;
        notary
    } else {
        // A group: the replica that applied the most (the others agree up
        // to where they got; chaos compares their digests while they run).
        crate::services::recover_replicas(&spec, data)?
            .into_iter()
            .max_by_key(|(_, r)| r.applied)
            .map(|(_, r)| r.engine)
            .ok_or_else(|| PlatformError::Config("the notary group has no replica".into()))?
    };
    // The oracle must recover from its journal too.
    let (_, journal) = open(&crate::services::pid(crate::spec::ids::ORACLE)?)?;
    journal.close().map_err(|e| PlatformError::service("oracle journal", e))?;
    let mut facts = Facts::from_notary(&notary);
    facts.stablecoins = spec.params.stablecoins.keys().copied().collect();
    for info in spec.nodes() {
        let (service, journal) = open(&info.id)?;
        if let Service::Node(node) = service {
            node.read(|s| facts.add_node(&notary, &info.id, s));
        }
        journal.close().map_err(|e| PlatformError::service(info.id.as_str(), e))?;
    }
    Ok(facts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use dtenge_crypto::Digest;

    use super::*;

    fn tx(n: u8) -> TxId {
        TxId(Digest([n; 32]))
    }
    fn token(n: u8) -> TokenId {
        TokenId { tx: tx(n), index: 0 }
    }
    fn node(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap()
    }
    fn dt(n: u64) -> Amount {
        Amount::from_tenge(n).unwrap()
    }
    fn vault_token(at: &str, n: u8, amount: u64) -> VaultToken {
        VaultToken {
            node: node(at),
            token: token(n),
            currency: Currency::DT,
            amount: dt(amount),
            reserve_of: None,
            at_notary: AtNotary::Unspent,
        }
    }

    /// Issue 100 to STB1 (token 1), STB1 pays 100 to STB2 (tx 2 → token 2).
    fn honest() -> (Facts, Vec<Acked>) {
        let mut facts = Facts { notary_unspent: 1, notary_committed: 2, ..Facts::default() };
        facts.transactions.insert(
            tx(1),
            TxFact {
                at_notary: true,
                sent_by: [node("NBK")].into(),
                received_by: [node("STB1")].into(),
                issued: dt(100),
                ..TxFact::default()
            },
        );
        facts.transactions.insert(
            tx(2),
            TxFact {
                inputs: vec![token(1)],
                at_notary: true,
                sent_by: [node("STB1")].into(),
                received_by: [node("STB2")].into(),
                ..TxFact::default()
            },
        );
        facts.vault.push(vault_token("STB2", 2, 100));
        (facts, vec![Acked { tx: tx(2), payer: node("STB1"), payees: vec![node("STB2")] }])
    }

    #[test]
    fn an_honest_ledger_passes() {
        let (facts, acked) = honest();
        let report = check(&facts, &acked);
        assert!(report.passed(), "{:?}", report.violations());
        assert_eq!(report.held, dt(100).tiyn());
    }

    #[test]
    fn a_token_spent_by_two_transactions_is_a_double_spend() {
        let (mut facts, acked) = honest();
        facts.transactions.insert(
            tx(3),
            TxFact { inputs: vec![token(1)], at_notary: true, sent_by: [node("STB3")].into(), ..TxFact::default() },
        );
        let report = check(&facts, &acked);
        assert_eq!(report.double_spends.len(), 1, "{report:?}");
        assert!(!report.passed());
    }

    #[test]
    fn a_token_held_twice_breaks_supply_and_agreement() {
        let (mut facts, acked) = honest();
        facts.vault.push(vault_token("STB3", 2, 100));
        let report = check(&facts, &acked);
        assert!(!report.double_spends.is_empty());
        assert!(!report.supply_conserved);
        assert!(!report.disagreements.is_empty());
    }

    #[test]
    fn an_acknowledged_transfer_missing_anywhere_is_lost() {
        let (facts, mut acked) = honest();
        acked.push(Acked { tx: tx(9), payer: node("STB1"), payees: vec![node("STB2")] });
        assert_eq!(check(&facts, &acked).lost.len(), 1);

        let (mut facts, acked) = honest();
        facts.transactions.get_mut(&tx(2)).unwrap().received_by.clear();
        assert_eq!(check(&facts, &acked).lost.len(), 1, "payee never got it");

        let (mut facts, acked) = honest();
        facts.transactions.get_mut(&tx(2)).unwrap().at_notary = false;
        let report = check(&facts, &acked);
        assert!(!report.lost.is_empty() && !report.disagreements.is_empty());
    }

    #[test]
    fn a_node_holding_a_spent_token_disagrees_with_the_notary() {
        let (mut facts, acked) = honest();
        facts.vault[0].at_notary = AtNotary::SpentBy(tx(7));
        assert_eq!(check(&facts, &acked).disagreements.len(), 1);
        let (mut facts, acked) = honest();
        facts.notary_unspent = 2;
        assert_eq!(check(&facts, &acked).disagreements.len(), 1, "an output nobody holds");
    }

    #[test]
    fn a_committed_output_nobody_holds_is_named_with_the_notarys_and_every_journals_word() {
        let (mut facts, acked) = honest();
        // Tx 4 (token 4, 50 DT for STB2) committed at the notary as #3, but
        // its payer STB1 journaled it aborted and STB2 never received it.
        facts.notary_unspent = 2;
        facts
            .unspent_outputs
            .insert(token(2), MadeBy { tx: tx(2), currency: Currency::DT, amount: dt(100), host: node("STB2") });
        facts
            .unspent_outputs
            .insert(token(4), MadeBy { tx: tx(4), currency: Currency::DT, amount: dt(50), host: node("STB2") });
        facts.notary_seq.insert(tx(4), Some(3));
        facts.journals.insert(
            tx(4),
            vec![(
                node("STB1"),
                JournalView::Built {
                    status: Status::Rejected { reason: "conflict".into() },
                    undelivered: BTreeSet::new(),
                },
            )],
        );
        facts.consumers.insert(token(4), [tx(5)].into());
        facts.journals.insert(tx(5), vec![(node("STB2"), JournalView::Received { from: node("STB3") })]);
        let report = check(&facts, &acked);
        assert!(!report.passed());
        assert_eq!(report.unheld_outputs.len(), 1, "{:?}", report.unheld_outputs);
        let line = &report.unheld_outputs[0];
        for expected in [
            tx(4).to_string(),
            token(4).to_string(),
            "notary: committed #3".into(),
            "STB1: Prepared, Aborted (conflict)".into(),
            format!("is an input of {}", tx(5)),
            "STB2: Received from STB3".into(),
        ] {
            assert!(line.contains(&expected), "{expected:?} missing from {line}");
        }
        assert!(!line.contains(&token(2).to_string()), "a held output is not named: {line}");
        assert!(report.violations().iter().any(|v| v.starts_with("unheld: ")));

        // A commitment no journal explains is counted.
        facts.notary_unspent = 3;
        let report = check(&facts, &acked);
        assert_eq!(report.unheld_outputs.len(), 2);
        assert!(report.unheld_outputs[1].starts_with("1 commitment(s)"), "{:?}", report.unheld_outputs);
    }

    #[test]
    fn a_committed_transaction_whose_input_is_unspent_at_the_notary_disagrees() {
        let (mut facts, acked) = honest();
        facts.transactions.get_mut(&tx(2)).unwrap().inputs_at_notary = vec![AtNotary::SpentBy(tx(2))];
        assert!(check(&facts, &acked).passed());
        facts.transactions.get_mut(&tx(2)).unwrap().inputs_at_notary = vec![AtNotary::Unspent];
        let report = check(&facts, &acked);
        assert_eq!(report.disagreements.len(), 1, "{report:?}");
        assert!(report.disagreements[0].contains("is unspent there"), "{report:?}");
    }

    #[test]
    fn supply_counts_redemptions_and_unresolved_work_fails() {
        let (mut facts, acked) = honest();
        facts.transactions.get_mut(&tx(2)).unwrap().redeemed = dt(40);
        facts.vault[0].amount = dt(60);
        assert!(check(&facts, &acked).supply_conserved);
        facts.vault[0].amount = dt(61);
        assert!(!check(&facts, &acked).supply_conserved);
        let (mut facts, acked) = honest();
        facts.unresolved.push("STB1: x still in flight".into());
        assert!(!check(&facts, &acked).passed());
    }

    /// STB2's 100 DT split: 60 free, 40 the reserve of KZTC, of which 40
    /// are held (30 at STB2, 10 at STB3).
    fn with_stablecoin() -> (Facts, Vec<Acked>) {
        let (mut facts, acked) = honest();
        let kztc = Currency::new("KZTC").unwrap();
        facts.stablecoins.insert(kztc);
        facts.vault[0].amount = dt(60);
        facts.vault.push(VaultToken { reserve_of: Some(kztc), ..vault_token("STB2", 3, 40) });
        facts.vault.push(VaultToken { currency: kztc, ..vault_token("STB2", 4, 30) });
        facts.vault.push(VaultToken { currency: kztc, ..vault_token("STB3", 5, 10) });
        facts.notary_unspent = facts.vault.len();
        (facts, acked)
    }

    #[test]
    fn a_stablecoins_reserve_equals_its_supply_and_counts_in_dt() {
        let (facts, acked) = with_stablecoin();
        let report = check(&facts, &acked);
        assert!(report.passed(), "{:?}", report.violations());
        assert_eq!(report.held, dt(100).tiyn(), "the reserve is DT: counted in the supply of DT");
        assert_eq!(
            report.stablecoins,
            vec![StablecoinFigures { code: "KZTC".into(), supply: dt(40).tiyn(), reserve: dt(40).tiyn() }]
        );
    }

    #[test]
    fn a_reserve_token_dropped_from_the_count_fails_the_audit() {
        let (mut facts, acked) = with_stablecoin();
        facts.vault.retain(|h| h.reserve_of.is_none());
        facts.notary_unspent = facts.vault.len();
        let report = check(&facts, &acked);
        assert!(!report.passed());
        assert!(!report.supply_conserved, "DT held falls short of issued − redeemed");
        assert_eq!(report.reserve_mismatches.len(), 1, "{:?}", report.violations());
        assert!(report.violations().iter().any(|v| v.starts_with("stablecoin: KZTC")), "{:?}", report.violations());

        // A stablecoin token more than the reserve backs fails too, DT untouched.
        let (mut facts, acked) = with_stablecoin();
        let kztc = Currency::new("KZTC").unwrap();
        facts.vault.push(VaultToken { currency: kztc, ..vault_token("STB3", 6, 1) });
        facts.notary_unspent = facts.vault.len();
        let report = check(&facts, &acked);
        assert!(report.supply_conserved);
        assert_eq!(report.reserve_mismatches.len(), 1, "{:?}", report.violations());
    }
}
