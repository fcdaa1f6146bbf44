//! What a node tells operators: Prometheus metrics (through the `metrics`
//! facade; `dtenge_net::telemetry` installs the recorder) and one debug log
//! line per step of a payment, naming its transaction. The log lines run in
//! the trace of the request that caused them (see `dtenge_net::telemetry`),
//! so `--log-format json` ties every line of one payment to one id.
//!
//! Kept in one module, called from few places in the service, so the
//! payment path's shape can change without touching what is measured.
//! The metric names are listed in docs/deploy.md and drawn by
//! deploy/grafana-dashboard.json.
//!
//! Invariant: every label value comes from a bounded set — node ids (from
//! the registry), the batcher kinds and the fixed outcome names below.

use dtenge_notary::NotaryRejection;
use dtenge_types::{ParticipantId, TxId};

use crate::NodeError;
use crate::status::{Status, TxOutcome};

/// Registers the descriptions of the node's metrics (once per process is
/// enough; repeating is harmless).
pub fn describe() {
    metrics::describe_counter!(
        "dtenge_node_payments_total",
        "Transactions a node submitted (payments, issues, redemptions, holds…), by outcome"
    );
    metrics::describe_histogram!(
        "dtenge_node_batch_size",
        "Requests per batch a node sent, by destination (the notary or another node)"
    );
    metrics::describe_gauge!(
        "dtenge_node_queue_depth",
        "Requests waiting in a node's batching queue for a destination after a batch left"
    );
    metrics::describe_counter!("dtenge_node_deliveries_received_total", "Committed transactions a node received");
}

/// The outcome label of a transaction a node saw through (or refused).
pub fn outcome_label(result: &Result<TxOutcome, NodeError>) -> &'static str {
    match result {
        Ok(TxOutcome { status: Status::Success, .. }) => "committed",
        Ok(TxOutcome { status: Status::UnderReview | Status::RequestAccepted, .. }) => "under_review",
        Ok(TxOutcome { status: Status::Rejected { .. }, .. }) => "rejected",
        Err(NodeError::NotaryRejected(NotaryRejection::Conflict { .. })) => "conflict",
        Err(NodeError::NotaryRejected(_)) => "notary_rejected",
        Err(NodeError::Unavailable(_) | NodeError::Storage(_)) => "failed",
        Err(_) => "refused",
    }
}

/// A transaction this node submitted came to its end (or was refused
/// before reaching the notary: `tx` is then the one it would have been).
pub fn payment(node: &ParticipantId, tx: &TxId, result: &Result<TxOutcome, NodeError>) {
    let outcome = outcome_label(result);
    metrics::counter!("dtenge_node_payments_total", "node" => node.to_string(), "outcome" => outcome).increment(1);
    match result {
        Ok(done) => tracing::debug!(%node, %tx, outcome, seq = ?done.notary_seq, "transaction settled"),
        Err(error) => tracing::debug!(%node, %tx, outcome, %error, "transaction refused"),
    }
}

/// A batch of `size` requests left `node`'s batcher for `to` (the notary
/// or another node), leaving `queued` requests behind it.
pub fn batch(node: &str, to: &str, size: usize, queued: usize) {
    let (node, to) = (node.to_string(), to.to_string());
    metrics::histogram!("dtenge_node_batch_size", "node" => node.clone(), "to" => to.clone()).record(size as f64);
    metrics::gauge!("dtenge_node_queue_depth", "node" => node, "to" => to).set(queued as f64);
}

/// A committed transaction from `from` was journaled here.
pub fn received(node: &ParticipantId, from: &ParticipantId, tx: &TxId) {
    metrics::counter!("dtenge_node_deliveries_received_total", "node" => node.to_string()).increment(1);
    tracing::debug!(%node, %from, %tx, "transaction received");
}
