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
//! the registry), the batcher kinds and the fixed outcome, stage and
//! pre-check names below.

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
    metrics::describe_counter!(
        "dtenge_node_pre_checks_total",
        "Pre-checks of payments to another bank's DA, by how they were answered: a lease held, a lease request, or a request in the link's batch"
    );
    metrics::describe_histogram!(
        "dtenge_node_stage_seconds",
        metrics::Unit::Seconds,
        "Time an outgoing transaction spent in one stage of the node's pipeline, by stage"
    );
}

/// A stage of the pipeline (`service::pipeline`) whose duration a node
/// records per transaction in `dtenge_node_stage_seconds`. The pre-check
/// runs beside `Prepare`, and the delivery beside `Settle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The payees' banks answering whether they take the payment (only
    /// when one of them is another node).
    PreCheck,
    /// Attest, sign, validate, journal `Prepared` until it is durable.
    Prepare,
    /// One claim's trip to the notary and back, waiting for its batch
    /// included (each attempt the notary answered).
    Notarise,
    /// The notary's answer applied: the receipt checked and `Committed`
    /// (or `Aborted`) journaled until it is durable.
    Settle,
    /// The committed transaction delivered to the other nodes that must
    /// see it, until the last took it (only when there is one, and only
    /// when every one took it: the tick delivers the rest later).
    Deliver,
}

impl Stage {
    /// Every stage, in the order a payment meets them (and of their
    /// discriminants, which index [`StageTimes`]).
    pub const ALL: [Stage; 5] = [Stage::PreCheck, Stage::Prepare, Stage::Notarise, Stage::Settle, Stage::Deliver];

    /// The `stage` label.
    pub fn label(self) -> &'static str {
        match self {
            Stage::PreCheck => "pre_check",
            Stage::Prepare => "prepare",
            Stage::Notarise => "notarise",
            Stage::Settle => "settle",
            Stage::Deliver => "deliver",
        }
    }
}

/// A node's stage histograms (`dtenge_node_stage_seconds`), registered
/// once: recording through a handle looks nothing up, and each payment
/// records up to five.
pub struct StageTimes([metrics::Histogram; 5]);

impl StageTimes {
    /// `node`'s histograms, one per stage. Installs the process's recorder
    /// first if nothing has: a handle made before it would record nothing.
    pub fn new(node: &ParticipantId) -> StageTimes {
        dtenge_net::telemetry::metrics_handle();
        StageTimes(Stage::ALL.map(|stage| {
            metrics::histogram!("dtenge_node_stage_seconds", "node" => node.to_string(), "stage" => stage.label())
        }))
    }

    /// A transaction spent from `since` until now in `stage`.
    pub fn record(&self, stage: Stage, since: std::time::Instant) {
        self.0[stage as usize].record(since.elapsed().as_secs_f64());
    }
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

/// How the pre-check of a payment to another bank's DA was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreCheck {
    /// A lease this node held covered it: nothing was asked.
    Lease,
    /// A lease request answered it (with a lease or without).
    LeaseRequest,
    /// A request in the next batch to that bank answered it.
    Batch,
}

impl PreCheck {
    fn label(self) -> &'static str {
        match self {
            PreCheck::Lease => "lease",
            PreCheck::LeaseRequest => "lease_request",
            PreCheck::Batch => "batch",
        }
    }
}

/// A payment of `node` to another bank's DA was pre-checked `by`.
pub fn pre_check(node: &ParticipantId, by: PreCheck) {
    metrics::counter!("dtenge_node_pre_checks_total", "node" => node.to_string(), "by" => by.label()).increment(1);
}

/// A committed transaction from `from` was journaled here.
pub fn received(node: &ParticipantId, from: &ParticipantId, tx: &TxId) {
    metrics::counter!("dtenge_node_deliveries_received_total", "node" => node.to_string()).increment(1);
    tracing::debug!(%node, %from, %tx, "transaction received");
}
