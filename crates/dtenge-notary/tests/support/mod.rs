//! What the notary's test suites and benches share: numbered commitments and
//! transaction ids, claims over them, deciding + applying a batch the way
//! the runtime does, and waiting for what a service does in the background.
#![allow(dead_code, clippy::unwrap_used)]

use dtenge_crypto::{SecretKey, hash};
use dtenge_notary::engine::digests;
use dtenge_notary::{ColdProbe, Decision, InputOpening, NotariseBatch, NotaryRecord, NotaryState, TxClaim};
use dtenge_types::{Commitment, ParticipantId, TimeWindow, Timestamp, TxId};

/// The node hosting every numbered commitment (claims open their inputs to it).
pub const HOST: &str = "STB1";

/// The sealed hash of token `n`.
pub fn sealed(n: u64) -> dtenge_crypto::Digest {
    hash(b"test-sealed", &[&n.to_le_bytes()])
}

/// The commitment of token `n`, hosted by [`HOST`].
pub fn c(n: u64) -> Commitment {
    Commitment::bound(&ParticipantId::new(HOST).unwrap(), &sealed(n))
}

pub fn t(n: u64) -> TxId {
    TxId(hash(b"test-tx", &[&n.to_le_bytes()]))
}

pub const NOW: Timestamp = Timestamp(1_000_000);

pub fn claim(tx: u64, inputs: &[u64], outputs: &[u64]) -> TxClaim {
    TxClaim {
        tx: t(tx),
        inputs: inputs.iter().map(|n| c(*n)).collect::<Vec<_>>().try_into().unwrap(),
        outputs: outputs.iter().map(|n| c(*n)).collect::<Vec<_>>().try_into().unwrap(),
        window: TimeWindow { not_before: Timestamp(0), not_after: Timestamp(2_000_000) },
        openings: inputs
            .iter()
            .map(|n| InputOpening { host: ParticipantId::new(HOST).unwrap(), sealed: sealed(*n) })
            .collect::<Vec<_>>()
            .try_into()
            .unwrap(),
        consents: Default::default(),
    }
}

/// `claims` in one batch signed by STB1.
pub fn batch(claims: Vec<TxClaim>) -> NotariseBatch {
    NotariseBatch::signed(ParticipantId::new("STB1").unwrap(), claims, &SecretKey::from_seed([1; 32])).unwrap()
}

/// Decides `batch` at [`NOW`] and applies what commits, like the runtime
/// (`apply_decided`);
/// returns the decisions and the record applied (if anything committed).
pub fn decide_and_apply(
    state: &mut NotaryState,
    batch: NotariseBatch,
    may_issue: bool,
) -> (Vec<Decision>, Option<NotaryRecord>) {
    decide_and_apply_at(state, batch, may_issue, NOW)
}

/// [`decide_and_apply`] at the time `at`.
pub fn decide_and_apply_at(
    state: &mut NotaryState,
    batch: NotariseBatch,
    may_issue: bool,
    at: Timestamp,
) -> (Vec<Decision>, Option<NotaryRecord>) {
    // Like the runtime: digests and the cold filter's answers first.
    let probe = ColdProbe::new(state.cold(), &batch);
    let decisions = state.decide_digested(&batch, &digests(&batch), Some(&probe), at, may_issue).unwrap();
    let committed: Vec<u32> =
        decisions.iter().enumerate().filter(|(_, d)| matches!(d, Decision::Commit(_))).map(|(i, _)| i as u32).collect();
    if committed.is_empty() {
        return (decisions, None);
    }
    let record = NotaryRecord { batch, committed, committed_at: at };
    // The runtime applies with its decisions (journal replay uses `apply`:
    // the model tests compare the two after every restart).
    state.apply_decided(&record, &decisions);
    (decisions, Some(record))
}

/// Whether `done` holds within five seconds (asked every 10 ms).
pub async fn wait_until(done: impl Fn() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}
