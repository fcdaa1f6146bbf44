//! Signed messages kept as evidence (SPEC §5, EDS service): every envelope a
//! participant accepts is appended to a durable journal of its own. Appends
//! do not wait for the fsync: evidence follows the messages it records, it
//! does not hold them up.
//!
//! The platform itself now keeps its evidence in the hash-chained
//! [`crate::audit_log`] (tamper-evident, signed heads); this plain journal sink
//! remains for embedders that want evidence without the chain.

use dtenge_net::{Envelope, Evidence};
use dtenge_store::Journal;

/// Evidence kept in a journal.
pub struct JournalEvidence {
    journal: Journal,
}

impl JournalEvidence {
    /// Keeps evidence in `journal`.
    pub fn new(journal: Journal) -> JournalEvidence {
        JournalEvidence { journal }
    }

    /// Number of envelopes kept.
    pub fn count(&self) -> u64 {
        self.journal.last_seq()
    }
}

impl Evidence for JournalEvidence {
    fn keep(&self, envelope: &Envelope) {
        if let Err(e) = self.journal.append(envelope.encode()) {
            tracing::error!(error = %e, "evidence journal refused an envelope");
        }
    }
}
