//! Proof of reserves of a DT-backed stablecoin (SPEC §9): the oracle counts
//! a stablecoin's supply and reserve itself — it asks every participant node
//! for its count ([`StablecoinCountSource`]) and signs its own sum — so anyone
//! holding the oracle's key (the participant registry) can check the figures
//! are the oracle's count. Nobody hands it figures to sign: the request names
//! only the stablecoin. The kernel is what keeps reserve = supply (every mint
//! and burn moves both by the same amount); the count shows it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Hasher, PublicKey, Signature, Signer, Verifier};
use dtenge_types::{Amount, Currency, ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

/// A stablecoin's figures, as read from every node's vault.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReservesReport {
    /// The stablecoin.
    pub stablecoin: Currency,
    /// Everything held of it, all holders on all nodes.
    pub supply: Amount,
    /// DT in its reserve.
    pub reserve: Amount,
}

/// A report the oracle signed at `at`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReservesAttestation {
    /// The figures.
    pub report: ReservesReport,
    /// When the oracle signed them.
    pub at: Timestamp,
    /// The oracle's key.
    pub oracle: PublicKey,
    /// Its signature over [`ReservesAttestation::signing_message`].
    pub signature: Signature,
}

impl ReservesAttestation {
    /// The bytes the oracle signs: a domain tag, the report and the time.
    pub fn signing_message(report: &ReservesReport, at: Timestamp) -> [u8; 32] {
        let mut hasher = Hasher::new(b"dtenge/reserves/v1");
        hasher.update(&borsh::to_vec(report).unwrap_or_default());
        hasher.update(&at.millis().to_le_bytes());
        *hasher.finish().as_bytes()
    }

    /// `report` signed by `oracle` at `at`.
    pub fn sign(oracle: &dyn Signer, report: ReservesReport, at: Timestamp) -> ReservesAttestation {
        let signature = oracle.sign(&Self::signing_message(&report, at));
        ReservesAttestation { report, at, oracle: oracle.public_key(), signature }
    }

    /// Whether the signature is the oracle's over these figures and time.
    pub fn verify(&self, verifier: &dyn Verifier) -> bool {
        let message = Self::signing_message(&self.report, self.at);
        verifier.verify(&self.oracle, &message, &self.signature).is_ok()
    }
}

/// One node's count of a stablecoin: what its vault holds of the
/// stablecoin (any holder) and of DT in its reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, BorshSerialize, BorshDeserialize)]
pub struct StablecoinCount {
    /// The stablecoin held on the node.
    pub supply: Amount,
    /// DT encumbered as the stablecoin's reserve on the node.
    pub reserve: Amount,
}

/// Where the oracle asks a node for its count (the node's protocol lives
/// in `dtenge-node`, which depends on this crate: the platform hands the
/// oracle an implementation that speaks it, signed as the oracle).
#[async_trait::async_trait]
pub trait StablecoinCountSource: Send + Sync {
    /// `node`'s counts of `stablecoin`, or why it could not be asked.
    async fn count(&self, node: &ParticipantId, stablecoin: Currency) -> Result<StablecoinCount, String>;
}

/// Why the oracle cannot count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecountError {
    /// A node did not answer: a partial count is never signed.
    #[error("node {node} did not give its count of {stablecoin}: {why}; no proof of reserves without every node")]
    NodeUnavailable {
        /// The node.
        node: ParticipantId,
        /// The stablecoin.
        stablecoin: Currency,
        /// What went wrong.
        why: String,
    },
    /// The sum does not fit an amount (no real book gets there).
    #[error("the {what} of {stablecoin} overflows an amount")]
    Overflow {
        /// Supply or reserve.
        what: &'static str,
        /// The stablecoin.
        stablecoin: Currency,
    },
}

/// The oracle's own count: the sum of every node's count.
pub fn sum(stablecoin: Currency, parts: &[StablecoinCount]) -> Result<ReservesReport, RecountError> {
    let (mut supply, mut reserve) = (Amount::ZERO, Amount::ZERO);
    for part in parts {
        supply = supply.checked_add(part.supply).ok_or(RecountError::Overflow { what: "supply", stablecoin })?;
        reserve = reserve.checked_add(part.reserve).ok_or(RecountError::Overflow { what: "reserve", stablecoin })?;
    }
    Ok(ReservesReport { stablecoin, supply, reserve })
}

/// Asks each of `nodes` for its count of `stablecoin` and sums them.
pub async fn recount(
    source: &dyn StablecoinCountSource,
    nodes: &[ParticipantId],
    stablecoin: Currency,
) -> Result<ReservesReport, RecountError> {
    let mut parts = Vec::with_capacity(nodes.len());
    for node in nodes {
        let part = source.count(node, stablecoin).await.map_err(|why| RecountError::NodeUnavailable {
            node: node.clone(),
            stablecoin,
            why,
        })?;
        parts.push(part);
    }
    sum(stablecoin, &parts)
}

/// Most stablecoins whose last count is kept for requests that waited for
/// it; past that the table starts again (it only spares counts).
const ROUNDS_KEPT: usize = 64;

/// Counts of reserves one at a time, each answering every request that
/// arrived before it began. However many API processes relay the public
/// proof of reserves, and however often, the nodes are asked by one count
/// at a time; and no answer comes from a count that began before its
/// request arrived, so a proof asked after a mint or a burn was
/// acknowledged always includes it.
#[derive(Default)]
pub struct Rounds {
    /// Tickets: one per request on arrival and one per count as it begins.
    tickets: AtomicU64,
    /// Held while counting; per stablecoin, the ticket its last count began
    /// with and what it gave.
    last: tokio::sync::Mutex<HashMap<Currency, (u64, Counted)>>,
}

/// What one count gave.
type Counted = Result<ReservesAttestation, RecountError>;

impl Rounds {
    /// The attestation of `stablecoin` from a count that began after this
    /// call: one already made while this call waited its turn, or a new
    /// one made by `count`.
    pub async fn attest<F, Fut>(&self, stablecoin: Currency, count: F) -> Result<ReservesAttestation, RecountError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ReservesAttestation, RecountError>>,
    {
        let arrived = self.tickets.fetch_add(1, Ordering::SeqCst);
        // tokio's mutex is fair: waiters take their turns in arrival order.
        let mut last = self.last.lock().await;
        if let Some((began, outcome)) = last.get(&stablecoin)
            && *began > arrived
        {
            return outcome.clone();
        }
        let began = self.tickets.fetch_add(1, Ordering::SeqCst);
        let outcome = count().await;
        if last.len() >= ROUNDS_KEPT && !last.contains_key(&stablecoin) {
            last.clear();
        }
        last.insert(stablecoin, (began, outcome.clone()));
        outcome
    }
}
