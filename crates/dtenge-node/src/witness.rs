//! Which outside request an operation serves, so that the request can be
//! answered after a crash: "what became of the request with this key?"
//!
//! The API runs an operation inside [`witnessed`] with a [`Witness`] bound to
//! one idempotency record; before the node journals anything durable that
//! the operation produced — a transaction (`Prepared`) or a DA
//! (`AccountOpened`) — it tells the witness, which records the binding
//! durably. After a crash, a retry with the same key finds the binding and
//! asks the node what became of that transaction or DA instead of running
//! the operation again; no binding means nothing durable was produced, so
//! running it again is safe.
//!
//! ```text
//!  API: Started(key) ─► node op ─► tell(Produced) ─► API: Bound(key, tx) durable
//!                                  └─► journal Prepared ─► notary ─► … ─► API: Finished(key, answer)
//! ```
//!
//! The witness travels as a task-local value: operations keep their
//! signatures, and work done on behalf of other tasks (the tick, deliveries,
//! another node's handler) is never bound to the request. A witness is told
//! only about its own node's records (it filters by node id).

use std::future::Future;
use std::sync::Arc;

use dtenge_types::{Address, ParticipantId, TxId};

use crate::NodeError;

/// Something durable an operation produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Produced {
    /// A transaction, told before its `Prepared` record is journaled.
    Transaction(TxId),
    /// A DA, by its address, told before its `AccountOpened` record is journaled.
    Account(Address),
}

/// Records what an operation produced for the request it serves; the node
/// waits until the answer says the binding is durable.
#[async_trait::async_trait]
pub trait Witness: Send + Sync {
    /// `node` produced `what` for this request.
    async fn produced(&self, node: &ParticipantId, what: Produced) -> Result<(), NodeError>;
}

tokio::task_local! {
    static WITNESS: Arc<dyn Witness>;
}

/// Runs `work` with `witness` told about what it produces.
pub async fn witnessed<F: Future>(witness: Arc<dyn Witness>, work: F) -> F::Output {
    WITNESS.scope(witness, work).await
}

/// Tells the current request's witness, if any, what `what` makes, and
/// waits for it (`what` is made only when there is a witness).
pub(crate) async fn tell(node: &ParticipantId, what: impl FnOnce() -> Produced) -> Result<(), NodeError> {
    match WITNESS.try_with(Arc::clone) {
        Ok(witness) => witness.produced(node, what()).await,
        Err(_) => Ok(()),
    }
}
