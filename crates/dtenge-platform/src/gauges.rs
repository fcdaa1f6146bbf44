//! Gauges sampled from the services' state for `/metrics` (every
//! [`GAUGE_EVERY`]): what each node holds per currency (their sum over the
//! nodes is the supply in circulation), its unsettled work (transactions in
//! flight, deliveries outstanding: the queues a stuck link fills), and the
//! notary's live set (a single notary's, or a replica's with its place in
//! the group).
//!
//! Invariant: sampling only reads (under the services' own read locks) and
//! is bounded by the vault's size; it never runs on a payment's path.

use std::collections::BTreeMap;
use std::time::Duration;

use dtenge_node::service::NodeService;
use dtenge_notary::{NotaryReplica, NotaryService};

/// How often the gauges are sampled.
pub const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// Samples a node's vault (per currency) and unsettled work.
pub fn record_node(node: &NodeService) {
    let id = node.id().to_string();
    let (vault, in_flight, undelivered) = node.read(|s| {
        let mut vault: BTreeMap<String, u128> = BTreeMap::new();
        for (_, stored) in s.vault.iter() {
            *vault.entry(stored.token.currency.to_string()).or_default() += u128::from(stored.token.amount.tiyn());
        }
        (vault, s.in_flight().len(), s.undelivered().len())
    });
    for (currency, tiyn) in vault {
        metrics::gauge!("dtenge_node_vault_tiyn", "node" => id.clone(), "currency" => currency).set(tiyn as f64);
    }
    metrics::gauge!("dtenge_node_unsettled", "node" => id.clone(), "kind" => "in_flight").set(in_flight as f64);
    metrics::gauge!("dtenge_node_unsettled", "node" => id, "kind" => "undelivered").set(undelivered as f64);
}

/// Samples the notary's live set and history.
pub fn record_notary(notary: &NotaryService) {
    record_notary_stats(notary.stats());
}

/// Samples a notary replica: the same live-set gauges as a single notary
/// (from its state machine, which every replica applies), plus where it
/// stands in its group — leader or not, the last log index applied.
pub fn record_replica(replica: &NotaryReplica) {
    record_notary_stats(replica.with_state(|s| {
        let (unspent, spent) = s.engine.counts();
        (s.engine.committed_count(), unspent, spent)
    }));
    metrics::gauge!("dtenge_notary_replica_leader").set(if replica.is_leader() { 1.0 } else { 0.0 });
    metrics::gauge!("dtenge_notary_replica_applied_index").set(replica.applied_index() as f64);
}

/// Sets the notary gauges from `(committed, unspent, spent)` (a single
/// notary's or a group replica's, see `Platform::notary`).
pub fn record_notary_stats((committed, unspent, spent): (u64, usize, usize)) {
    metrics::gauge!("dtenge_notary_committed").set(committed as f64);
    metrics::gauge!("dtenge_notary_unspent").set(unspent as f64);
    metrics::gauge!("dtenge_notary_spent").set(spent as f64);
}
