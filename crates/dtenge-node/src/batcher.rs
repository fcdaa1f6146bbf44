//! Requests of concurrent operations travel together: one signed message
//! for many.
//!
//! Each operation hands its request to a queue and waits for its own answer.
//! A background task takes everything queued (up to the batcher's maximum) as
//! soon as one of its in-flight slots ([`IN_FLIGHT`]) is free — after letting
//! the tasks that are ready to run go first — and sends it with one call —
//! one envelope signature and one verification on each side for the lot.
//! Under light load a batch holds one request and nothing waits; under heavy
//! load the batches grow while earlier ones are in flight.
//!
//! Two uses: claims to the notary (one [`dtenge_notary::NotariseBatch`] with
//! one batch signature, answered with one notary signature over all the
//! receipts, see [`dtenge_notary::Receipt`]), and deliveries and payee
//! pre-checks to another node (one `NodeRequest::Batch` per destination).
//!
//! An operation that stops waiting (its caller went away) does not stop the
//! batch: its request is sent anyway, exactly as if the answer had been lost
//! on the network (a claim's transaction then settles through recovery, a
//! delivery is retried by the node's tick).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use dtenge_net::telemetry::{TraceId, in_trace};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::NodeError;

/// Batches a batcher may have outstanding at once, unless told otherwise:
/// while one is out, new requests queue up and leave together as the next
/// batch, so fewer slots make larger batches under load (fewer signatures).
/// One slot: with two, the full path's batches stayed smaller; with one they
/// grow, for more transfers/s and no worse p99 (docs/performance.md,
/// "History"). Under light load a batch holds one
/// request and leaves at once.
pub const IN_FLIGHT: usize = 1;

/// Requests a batcher queues at most: past that a caller is refused
/// [`NodeError::Busy`] (503 with `Retry-After` at the API) instead of
/// waiting in an ever longer line. The pipeline's admission bound keeps
/// payments well under it; it bounds what admission does not count (payee
/// pre-checks, deliveries the tick repeats).
pub const QUEUE_MAX: usize = 16_384;

/// Sends one batch and returns one answer per request, in order.
pub(crate) type SendBatch<Q, A> =
    Arc<dyn Fn(Vec<Q>) -> Pin<Box<dyn Future<Output = Result<Vec<A>, NodeError>> + Send>> + Send + Sync>;

/// A request, the trace id of the operation that asked (see
/// `dtenge_net::telemetry`), and where its answer goes.
type Waiting<Q, A> = (Q, u64, oneshot::Sender<Result<A, String>>);

/// Whose batcher it is and where it sends, for metrics (`node`, `to` labels).
#[derive(Clone, Debug, Default)]
pub(crate) struct BatcherName {
    node: String,
    to: String,
}

/// Batches the requests of concurrent operations to one destination.
pub(crate) struct Batcher<Q, A> {
    send: SendBatch<Q, A>,
    max: usize,
    in_flight: usize,
    queue_max: usize,
    queue: OnceLock<mpsc::Sender<Waiting<Q, A>>>,
    name: BatcherName,
}

impl<Q: Send + 'static, A: Send + 'static> Batcher<Q, A> {
    /// A batcher that sends at most `max` requests at a time with `send`;
    /// its task starts on first use.
    pub(crate) fn new(max: usize, send: SendBatch<Q, A>) -> Batcher<Q, A> {
        Batcher::with_slots(max, IN_FLIGHT, send)
    }

    /// As [`Batcher::new`], with `in_flight` batches outstanding at most.
    pub(crate) fn with_slots(max: usize, in_flight: usize, send: SendBatch<Q, A>) -> Batcher<Q, A> {
        Batcher {
            send,
            max: max.max(1),
            in_flight: in_flight.max(1),
            queue_max: QUEUE_MAX,
            queue: OnceLock::new(),
            name: BatcherName::default(),
        }
    }

    /// Names the batcher in its metrics: `node`'s batches to `to` (`notary`
    /// for the notary, whichever replica leads; else the other node's id).
    pub(crate) fn named(mut self, node: &str, to: &str) -> Self {
        self.name = BatcherName { node: node.to_string(), to: to.to_string() };
        self
    }

    /// As it is, queueing at most `queue_max` requests (tests).
    #[cfg(test)]
    fn queueing(mut self, queue_max: usize) -> Self {
        self.queue_max = queue_max.max(1);
        self
    }

    /// Sends `request` in the next batch and waits for its answer; a full
    /// queue refuses at once ([`NodeError::Busy`]).
    pub(crate) async fn call(&self, request: Q) -> Result<A, NodeError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.queue_max);
            tokio::spawn(run(rx, self.send.clone(), self.max, self.in_flight, self.name.clone()));
            tx
        });
        let (tell, told) = oneshot::channel();
        queue.try_send((request, dtenge_net::telemetry::current_trace(), tell)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NodeError::Busy(format!(
                "{} requests already wait to be batched to {}",
                self.queue_max,
                if self.name.to.is_empty() { "their destination" } else { self.name.to.as_str() }
            )),
            mpsc::error::TrySendError::Closed(_) => {
                NodeError::Unavailable("the node's batching queue has stopped".into())
            }
        })?;
        match told.await {
            Ok(answer) => answer.map_err(NodeError::Unavailable),
            Err(_) => Err(NodeError::Unavailable("the batch was dropped".into())),
        }
    }
}

/// The batching loop: ends when the batcher (the only sender) is gone.
async fn run<Q: Send + 'static, A: Send + 'static>(
    mut queue: mpsc::Receiver<Waiting<Q, A>>,
    send: SendBatch<Q, A>,
    max: usize,
    in_flight: usize,
    name: BatcherName,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some(first) = queue.recv().await else { return };
        // Let the tasks that are ready to run go first: those about to ask
        // join this batch instead of waiting for the next one. Costs one turn
        // of the scheduler, no timer, and batches grow on the full path
        // (a second turn added nothing).
        tokio::task::yield_now().await;
        let mut taken = vec![first];
        while taken.len() < max {
            match queue.try_recv() {
                Ok(next) => taken.push(next),
                Err(_) => break,
            }
        }
        crate::metrics::batch(&name.node, &name.to, taken.len(), queue.len());
        let send = send.clone();
        let to = name.to.clone();
        tokio::spawn(async move {
            let mut requests = Vec::with_capacity(taken.len());
            let mut traces = Vec::with_capacity(taken.len());
            let mut waiters = Vec::with_capacity(taken.len());
            for (request, trace, waiter) in taken {
                requests.push(request);
                traces.push(trace);
                waiters.push(waiter);
            }
            let count = requests.len();
            // The batch travels in the first traced operation's trace (its
            // envelope carries it; its log lines are in a `batch{trace}`
            // span); a line names the others, so each one's log can be followed.
            let trace = traces.iter().copied().find(|t| *t != 0).unwrap_or(0);
            let span = tracing::info_span!("batch", trace = %TraceId(trace), %to);
            if traces.iter().any(|t| *t != trace) {
                let others: Vec<String> = traces.iter().map(|t| TraceId(*t).to_string()).collect();
                span.in_scope(|| tracing::debug!(traces = ?others, "one batch for the requests of several traces"));
            }
            let answers: Vec<Result<A, String>> =
                match Instrument::instrument(in_trace(trace, send(requests)), span).await {
                    Ok(answers) if answers.len() == count => answers.into_iter().map(Ok).collect(),
                    Ok(answers) => {
                        let why = format!("{} answers came back for {count} requests", answers.len());
                        (0..count).map(|_| Err(why.clone())).collect()
                    }
                    Err(e) => (0..count).map(|_| Err(e.to_string())).collect(),
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
    use dtenge_notary::{MAX_BATCH, NotaryRejection, TxClaim, Verdict};
    use dtenge_types::{Commitment, TimeWindow, Timestamp, TxId};

    use super::*;

    fn claim(n: u64) -> TxClaim {
        TxClaim {
            tx: TxId(hash(b"t", &[&n.to_le_bytes()])),
            inputs: vec![Commitment(hash(b"c", &[&n.to_le_bytes()]))].try_into().unwrap(),
            outputs: Default::default(),
            window: TimeWindow { not_before: Timestamp(0), not_after: Timestamp(1) },
            openings: Default::default(),
            consents: Default::default(),
        }
    }

    /// Answers each claim with a verdict naming its own input, after a delay;
    /// counts batches and the largest one.
    fn echo(batches: Arc<AtomicUsize>, largest: Arc<AtomicUsize>) -> SendBatch<TxClaim, Verdict> {
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
        let batcher = Arc::new(Batcher::new(MAX_BATCH, echo(batches.clone(), largest.clone())));
        let mut tasks = Vec::new();
        for n in 0..500u64 {
            let batcher = batcher.clone();
            tasks.push(tokio::spawn(async move { (n, batcher.call(claim(n)).await) }));
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
    async fn one_batch_is_out_at_a_time_and_the_requests_behind_it_leave_together() {
        let out = Arc::new(AtomicUsize::new(0));
        let most_out = Arc::new(AtomicUsize::new(0));
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        // A batch's answer comes back only when the test lets it.
        let answers = Arc::new(Semaphore::new(0));
        let send: SendBatch<TxClaim, Verdict> = {
            let (out, most_out, sizes, answers) = (out.clone(), most_out.clone(), sizes.clone(), answers.clone());
            Arc::new(move |claims: Vec<TxClaim>| {
                let (out, most_out, sizes, answers) = (out.clone(), most_out.clone(), sizes.clone(), answers.clone());
                Box::pin(async move {
                    let now_out = out.fetch_add(1, Ordering::SeqCst) + 1;
                    most_out.fetch_max(now_out, Ordering::SeqCst);
                    sizes.lock().unwrap().push(claims.len());
                    answers.acquire().await.unwrap().forget();
                    out.fetch_sub(1, Ordering::SeqCst);
                    Ok(claims
                        .iter()
                        .map(|c| Verdict::Rejected(NotaryRejection::UnknownInput { input: 0, commitment: c.inputs[0] }))
                        .collect())
                })
            })
        };
        let batcher = Arc::new(Batcher::new(MAX_BATCH, send));
        let first = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.call(claim(0)).await })
        };
        while out.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // 99 more while the first batch is out. A call queues its request in
        // its first poll, right after `queued` counts it.
        let queued = Arc::new(AtomicUsize::new(0));
        let rest: Vec<_> = (1..100u64)
            .map(|n| {
                let (batcher, queued) = (batcher.clone(), queued.clone());
                tokio::spawn(async move {
                    queued.fetch_add(1, Ordering::SeqCst);
                    batcher.call(claim(n)).await
                })
            })
            .collect();
        while queued.load(Ordering::SeqCst) < 99 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(out.load(Ordering::SeqCst), 1, "nothing else left while the first batch was out");
        answers.add_permits(2);
        assert!(first.await.unwrap().is_ok());
        for task in rest {
            assert!(task.await.unwrap().is_ok());
        }
        assert_eq!(most_out.load(Ordering::SeqCst), IN_FLIGHT, "batches out at once");
        assert_eq!(*sizes.lock().unwrap(), vec![1, 99], "the 99 waited for the first batch and left as one");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_batch_is_larger_than_the_batchers_maximum() {
        let (batches, largest) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let batcher = Arc::new(Batcher::new(7, echo(batches.clone(), largest.clone())));
        let tasks: Vec<_> = (0..300u64)
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.call(claim(n)).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        let largest = largest.load(Ordering::SeqCst);
        assert!((2..=7).contains(&largest), "largest batch {largest}");
        assert!(batches.load(Ordering::SeqCst) >= 300 / 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_gives_up_does_not_stop_the_others_and_errors_reach_everyone() {
        let (batches, largest) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let batcher = Arc::new(Batcher::new(MAX_BATCH, echo(batches, largest)));
        // Callers that stop waiting at once.
        for n in 0..50u64 {
            let batcher = batcher.clone();
            let _ = tokio::time::timeout(Duration::from_micros(1), async move { batcher.call(claim(n)).await }).await;
        }
        assert!(batcher.call(claim(1000)).await.is_ok(), "later claims still go through");

        let failing: SendBatch<TxClaim, Verdict> = Arc::new(|_claims: Vec<TxClaim>| {
            Box::pin(async { Err(NodeError::Unavailable("notary: connection refused".into())) })
        });
        let batcher = Batcher::new(MAX_BATCH, failing);
        let error = batcher.call(claim(1)).await.unwrap_err();
        assert!(error.to_string().contains("connection refused"), "{error}");
    }

    /// A destination that never answers: one batch goes out, `queue_max`
    /// requests wait behind it, and the next caller is refused busy at once
    /// — it neither waits nor grows the queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_busy_at_once() {
        let stuck: SendBatch<TxClaim, Verdict> = Arc::new(|_claims: Vec<TxClaim>| Box::pin(std::future::pending()));
        let batcher = Arc::new(Batcher::new(1, stuck).queueing(4));
        let mut waiting = Vec::new();
        for n in 0..5 {
            let batcher = batcher.clone();
            waiting.push(tokio::spawn(async move { batcher.call(claim(n)).await }));
            // The first leaves as a batch; the next four fill the queue.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let refused = tokio::time::timeout(Duration::from_secs(1), batcher.call(claim(99))).await;
        assert!(matches!(refused, Ok(Err(NodeError::Busy(_)))), "{refused:?}");
        assert!(waiting.iter().all(|w| !w.is_finished()), "the queued requests still wait for their batch");
        for w in waiting {
            w.abort();
        }
    }
}
