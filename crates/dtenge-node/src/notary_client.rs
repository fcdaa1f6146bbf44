//! The node's side of the notary: claims from concurrent payments travel in
//! one signed batch.
//!
//! Each payment hands its claim to a queue and waits for its verdict. A
//! background task takes everything queued (up to [`MAX_BATCH`] claims) as
//! soon as one of [`IN_FLIGHT`] slots is free and sends it as one
//! [`NotariseBatch`]: one envelope, one batch signature, and one notary
//! signature over all the receipts (see [`dtenge_notary::Receipt`]). Under
//! light load a batch holds one claim and nothing waits; under heavy load the
//! batches grow while earlier ones are in flight.
//!
//! A payment that stops waiting (its caller went away) does not stop the
//! batch: its claim is notarised anyway and its transaction settles through
//! recovery, exactly as if the answer had been lost on the network.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use dtenge_notary::{MAX_BATCH, TxClaim, Verdict};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::NodeError;

/// Batches one node may have at the notary at once.
pub const IN_FLIGHT: usize = 4;

/// Sends one batch of claims and returns one verdict per claim, in order.
pub(crate) type SendBatch =
    Arc<dyn Fn(Vec<TxClaim>) -> Pin<Box<dyn Future<Output = Result<Vec<Verdict>, NodeError>> + Send>> + Send + Sync>;

type Waiting = (TxClaim, oneshot::Sender<Result<Verdict, String>>);

/// Batches the claims of concurrent payments.
pub(crate) struct NotaryBatcher {
    send: SendBatch,
    queue: OnceLock<mpsc::UnboundedSender<Waiting>>,
}

impl NotaryBatcher {
    /// A batcher that sends with `send`; its task starts on first use.
    pub(crate) fn new(send: SendBatch) -> NotaryBatcher {
        NotaryBatcher { send, queue: OnceLock::new() }
    }

    /// Notarises `claim` in the next batch.
    pub(crate) async fn notarise(&self, claim: TxClaim) -> Result<Verdict, NodeError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(rx, self.send.clone()));
            tx
        });
        let (tell, told) = oneshot::channel();
        queue.send((claim, tell)).map_err(|_| NodeError::Unavailable("the node's notary queue has stopped".into()))?;
        match told.await {
            Ok(answer) => answer.map_err(NodeError::Unavailable),
            Err(_) => Err(NodeError::Unavailable("the notary batch was dropped".into())),
        }
    }
}

/// The batching loop: ends when the node (the only sender) is gone.
async fn run(mut queue: mpsc::UnboundedReceiver<Waiting>, send: SendBatch) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some(first) = queue.recv().await else { return };
        let mut taken = vec![first];
        while taken.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => taken.push(next),
                Err(_) => break,
            }
        }
        let send = send.clone();
        tokio::spawn(async move {
            let (claims, waiters): (Vec<TxClaim>, Vec<_>) = taken.into_iter().unzip();
            let count = claims.len();
            let answers: Vec<Result<Verdict, String>> = match send(claims).await {
                Ok(verdicts) if verdicts.len() == count => verdicts.into_iter().map(Ok).collect(),
                Ok(verdicts) => {
                    vec![Err(format!("the notary answered {} verdicts for {count} claims", verdicts.len())); count]
                }
                Err(e) => vec![Err(e.to_string()); count],
            };
            drop(slot);
            for (waiter, answer) in waiters.into_iter().zip(answers) {
                let _ = waiter.send(answer);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use dtenge_crypto::hash;
    use dtenge_notary::NotaryRejection;
    use dtenge_types::{Commitment, TimeWindow, Timestamp, TxId};

    use super::*;

    fn claim(n: u64) -> TxClaim {
        TxClaim {
            tx: TxId(hash(b"t", &[&n.to_le_bytes()])),
            inputs: vec![Commitment(hash(b"c", &[&n.to_le_bytes()]))].try_into().unwrap(),
            outputs: Default::default(),
            window: TimeWindow { not_before: Timestamp(0), not_after: Timestamp(1) },
        }
    }

    /// Answers each claim with a verdict naming its own input, after a delay;
    /// counts batches and the largest one.
    fn echo(batches: Arc<AtomicUsize>, largest: Arc<AtomicUsize>) -> SendBatch {
        Arc::new(move |claims: Vec<TxClaim>| {
            let (batches, largest) = (batches.clone(), largest.clone());
            Box::pin(async move {
                batches.fetch_add(1, Ordering::SeqCst);
                largest.fetch_max(claims.len(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(claims
                    .iter()
                    .map(|c| Verdict::Rejected(NotaryRejection::UnknownInput { input: 0, commitment: c.inputs[0] }))
                    .collect())
            })
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claims_share_batches_and_each_gets_its_own_verdict() {
        let (batches, largest) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let batcher = Arc::new(NotaryBatcher::new(echo(batches.clone(), largest.clone())));
        let mut tasks = Vec::new();
        for n in 0..500u64 {
            let batcher = batcher.clone();
            tasks.push(tokio::spawn(async move { (n, batcher.notarise(claim(n)).await) }));
        }
        for task in tasks {
            let (n, verdict) = task.await.unwrap();
            let expected = claim(n).inputs[0];
            match verdict.unwrap() {
                Verdict::Rejected(NotaryRejection::UnknownInput { commitment, .. }) => assert_eq!(commitment, expected),
                other => panic!("unexpected {other:?}"),
            }
        }
        let sent = batches.load(Ordering::SeqCst);
        assert!(sent < 500, "500 concurrent claims went in {sent} batches");
        assert!(largest.load(Ordering::SeqCst) > 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_gives_up_does_not_stop_the_others_and_errors_reach_everyone() {
        let (batches, largest) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let batcher = Arc::new(NotaryBatcher::new(echo(batches, largest)));
        // Callers that stop waiting at once.
        for n in 0..50u64 {
            let batcher = batcher.clone();
            let _ =
                tokio::time::timeout(Duration::from_micros(1), async move { batcher.notarise(claim(n)).await }).await;
        }
        assert!(batcher.notarise(claim(1000)).await.is_ok(), "later claims still go through");

        let failing: SendBatch = Arc::new(|_claims: Vec<TxClaim>| {
            Box::pin(async { Err(NodeError::Unavailable("notary: connection refused".into())) })
        });
        let batcher = NotaryBatcher::new(failing);
        let error = batcher.notarise(claim(1)).await.unwrap_err();
        assert!(error.to_string().contains("connection refused"), "{error}");
    }
}
