//! An operation as a plan: which tokens (selected and reserved under the
//! payer's guard's clearance), which build shape, which attestations, who
//! signs. A plan holds its [`Clearance`], which only the guard gives and the
//! vault hands tokens out against, so no plan exists that skipped the guard.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use dtenge_crypto::SecretKey;
use dtenge_oracle::model::AttestRequest;
use dtenge_types::{Token, Transaction, TxBody, TxId, TxSignature};

use crate::NodeError;
use crate::accounts::AccountId;
use crate::guard::Clearance;

/// Who signs a planned transaction.
pub(super) enum Signers {
    /// Nobody: the oracle's attestation or the clock authorises it (a
    /// release, a return of held funds).
    Nobody,
    /// The DA's custodial keys, which this node keeps.
    Custodial(Vec<SecretKey>),
    /// This node's own key, as the host of the DA's tokens (a collection
    /// order, a key rotation): the holder's key is not needed.
    Host,
    /// The holder, who keeps its key: the transaction it signed.
    Client(Box<Transaction>),
    /// The DA's custodial keys and the counterparty's signature on its leg (PvP).
    WithCounterparty {
        /// The DA's keys.
        keys: Vec<SecretKey>,
        /// The counterparty's signature, made by its node.
        counterparty: TxSignature,
    },
}

/// A transaction ready to go: body, resolved inputs, who signs, what the oracle must attest.
pub(super) struct Plan {
    /// The DA whose transaction it is (whose book counts it).
    pub(super) account: AccountId,
    /// What is built.
    pub(super) body: TxBody,
    /// The inputs, resolved, reserved for this body.
    pub(super) inputs: Vec<Token>,
    /// Who signs.
    pub(super) signers: Signers,
    /// What the oracle must attest, if anything.
    pub(super) attest: Option<AttestRequest>,
    /// The payer's guard's permission; dropped once `Prepared` is journaled
    /// (the DA's book then counts the amount) or the operation is refused.
    pub(super) clearance: Clearance,
    /// Marks the transaction as going through the pipeline while the plan
    /// (then its execution) lives: payments waiting for change wait only
    /// for such transactions.
    pub(super) in_pipeline: InPipeline,
}

/// The transactions going through the pipeline now.
pub(super) type Pipeline = Arc<Mutex<HashSet<TxId>>>;

/// One transaction's place in [`Pipeline`], left when dropped.
#[derive(Default)]
pub(super) struct InPipeline(Option<(Pipeline, TxId)>);

impl InPipeline {
    /// Enters `tx` into `pipeline`, unless `bound` transactions are in it
    /// already: then the caller is told to come back (backpressure), so
    /// every queue behind the pipeline's entry — notary batches, deliveries,
    /// the journal's group commits — holds at most `bound` transactions'
    /// work.
    pub(super) fn enter(pipeline: &Pipeline, tx: TxId, bound: usize) -> Result<InPipeline, NodeError> {
        let mut set = pipeline.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= bound && !set.contains(&tx) {
            return Err(NodeError::Busy(format!("{bound} transactions are going through this node's pipeline")));
        }
        set.insert(tx);
        Ok(InPipeline(Some((Arc::clone(pipeline), tx))))
    }

    /// Whether this is a place in the pipeline (not the empty default).
    pub(super) fn is_entered(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for InPipeline {
    fn drop(&mut self) {
        if let Some((pipeline, tx)) = self.0.take() {
            pipeline.lock().unwrap_or_else(|p| p.into_inner()).remove(&tx);
        }
    }
}

/// The question to the payees' banks, on its way.
type Asking<'a> = Pin<Box<dyn Future<Output = Result<(), NodeError>> + Send + 'a>>;

/// The payees' banks' answer to whether they take a payment (their
/// pre-check), asked alongside the payer's side of the pipeline: the
/// pipeline waits for it before anything leaves the node — before a top-up
/// from the payer's linked bank account (`clear`) and before the notary
/// (`execute`) — so a refused payment moves no money. Not polled, it asks
/// nothing; dropped, it stops waiting.
pub(super) enum PayeeCheck<'a> {
    /// The question, on its way; it stays until its answer is in, so a
    /// wait given up half-way (its caller went away) leaves it to the next.
    Asking(Asking<'a>),
    /// The answer, remembered.
    Answered(Result<(), NodeError>),
}

impl<'a> PayeeCheck<'a> {
    /// A check that asks `ask`'s banks.
    pub(super) fn new(ask: impl Future<Output = Result<(), NodeError>> + Send + 'a) -> PayeeCheck<'a> {
        PayeeCheck::Asking(Box::pin(ask))
    }

    /// Nothing to ask (no payee, or the pre-check already answered).
    pub(super) fn accepted() -> PayeeCheck<'a> {
        PayeeCheck::Answered(Ok(()))
    }

    /// The answer, waited for once and then remembered.
    pub(super) async fn answer(&mut self) -> Result<(), NodeError> {
        loop {
            match self {
                PayeeCheck::Answered(answer) => return answer.clone(),
                PayeeCheck::Asking(question) => *self = PayeeCheck::Answered(question.await),
            }
        }
    }

    /// The payees' refusal if there is one, else `refused`: the answer the
    /// caller would have had with the pre-check asked first.
    pub(super) async fn refusal_or(&mut self, refused: NodeError) -> NodeError {
        self.answer().await.err().unwrap_or(refused)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_payee_check_is_asked_once_and_its_answer_remembered() {
        let asked = AtomicUsize::new(0);
        let mut check = PayeeCheck::new(async {
            asked.fetch_add(1, Ordering::SeqCst);
            Err(NodeError::Invalid("closed".into()))
        });
        assert_eq!(asked.load(Ordering::SeqCst), 0, "not polled, it asks nothing");
        assert!(check.answer().await.is_err());
        assert!(check.answer().await.is_err());
        assert!(matches!(check.refusal_or(NodeError::Overflow).await, NodeError::Invalid(_)));
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        let mut accepted = PayeeCheck::accepted();
        assert!(matches!(accepted.refusal_or(NodeError::Overflow).await, NodeError::Overflow));
    }

    #[tokio::test]
    async fn a_wait_given_up_half_way_leaves_the_question_to_the_next() {
        let (tell, told) = tokio::sync::oneshot::channel::<()>();
        let mut check = PayeeCheck::new(async {
            let _ = told.await;
            Err(NodeError::Invalid("over the cap".into()))
        });
        // The first wait is given up while the answer is not in.
        let given_up = tokio::time::timeout(std::time::Duration::from_millis(10), check.answer()).await;
        assert!(given_up.is_err());
        let _ = tell.send(());
        assert!(check.answer().await.is_err(), "a refusal is never lost to a wait given up");
    }
}
