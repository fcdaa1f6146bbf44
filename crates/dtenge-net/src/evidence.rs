//! Where signed messages are kept as evidence.
//!
//! Every envelope a transport accepts (requests after the receiver's checks,
//! answers after the caller's checks) and every envelope it sends over the
//! network is handed to an [`Evidence`] sink, so each side can later prove what
//! it was asked and what it answered. This crate has two sinks: [`NoEvidence`]
//! (drops everything) and [`MemoryEvidence`] (keeps the newest entries in
//! memory, for tests and demos); the platform plugs a durable journal in
//! behind the same trait.
//!
//! Invariant: `keep` must not block for long and must not fail the call; a
//! durable sink that cannot write should stop the node rather than lose
//! evidence silently.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::Envelope;

/// A sink for signed envelopes.
pub trait Evidence: Send + Sync + 'static {
    /// Keep `envelope` (called once per envelope per side).
    fn keep(&self, envelope: &Envelope);
}

/// Keeps nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvidence;

impl Evidence for NoEvidence {
    fn keep(&self, _envelope: &Envelope) {}
}

/// Most envelopes a default [`MemoryEvidence`] holds before dropping the oldest.
pub const MEMORY_EVIDENCE_LIMIT: usize = 65_536;

/// Keeps envelopes in memory, newest last, up to a limit (oldest dropped first).
#[derive(Debug)]
pub struct MemoryEvidence {
    limit: usize,
    entries: Mutex<VecDeque<Envelope>>,
}

impl MemoryEvidence {
    /// Holds up to [`MEMORY_EVIDENCE_LIMIT`] envelopes.
    pub fn new() -> Self {
        Self::with_limit(MEMORY_EVIDENCE_LIMIT)
    }

    /// Holds up to `limit` envelopes (at least one).
    pub fn with_limit(limit: usize) -> Self {
        MemoryEvidence { limit: limit.max(1), entries: Mutex::new(VecDeque::new()) }
    }

    /// A copy of the kept envelopes, oldest first.
    pub fn entries(&self) -> Vec<Envelope> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }
}

impl Default for MemoryEvidence {
    fn default() -> Self {
        Self::new()
    }
}

impl Evidence for MemoryEvidence {
    fn keep(&self, envelope: &Envelope) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() == self.limit {
            entries.pop_front();
        }
        entries.push_back(envelope.clone());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use dtenge_crypto::SecretKey;
    use dtenge_types::{ParticipantId, Timestamp};

    use super::*;

    #[test]
    fn memory_evidence_keeps_the_newest_up_to_its_limit() {
        let key = SecretKey::from_seed([1; 32]);
        let evidence = MemoryEvidence::with_limit(2);
        let id = ParticipantId::new("NBK").unwrap();
        for nonce in 0..3 {
            evidence.keep(&Envelope::seal(id.clone(), id.clone(), Timestamp(0), nonce, vec![], &key));
        }
        let nonces: Vec<u64> = evidence.entries().iter().map(|e| e.nonce).collect();
        assert_eq!(nonces, [1, 2]);
    }
}
