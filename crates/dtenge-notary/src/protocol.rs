//! The notary's messages on the platform's bus: what a node (or the oracle)
//! asks and what the notary answers, and — for a replicated notary — what
//! the replicas of the group tell each other. Variants are append-only on
//! the wire.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::Digest;
use dtenge_types::{ParticipantId, TxId};

use crate::group::wire::{GroupAnswer, GroupRequest};
use crate::messages::{BatchRefusal, NotariseBatch, Receipt, Verdict};

/// Requests the notary serves.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
#[allow(clippy::large_enum_variant)] // a message, decoded once per call and not kept
pub enum NotaryRequest {
    /// Notarise a batch of transactions.
    Notarise(NotariseBatch),
    /// The receipt of a committed transaction, if any.
    Receipt(TxId),
    /// One replica of a notary group to another (only replicas may send it).
    Group(GroupRequest),
    /// Where the notary (or this replica) stands: for operators and audits.
    Status,
}

impl dtenge_net::authz::Authorized for NotaryRequest {
    fn operation(&self) -> dtenge_net::authz::Operation {
        use dtenge_net::authz::Operation;
        match self {
            NotaryRequest::Notarise(_) => Operation::NotaryNotarise,
            NotaryRequest::Receipt(_) => Operation::NotaryReceipt,
            NotaryRequest::Group(_) => Operation::NotaryGroup,
            NotaryRequest::Status => Operation::NotaryStatus,
        }
    }
}

/// Where a notary process stands.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NotaryStatus {
    /// Who answers.
    pub id: ParticipantId,
    /// The replica it knows leads the group (itself for a single notary).
    pub leader: Option<ParticipantId>,
    /// Log entries (single notary: journal records) applied.
    pub applied: u64,
    /// Transactions committed.
    pub committed: u64,
    /// Digest of its live set: replicas that applied the same log agree.
    pub digest: Digest,
}

/// The notary's answers.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[allow(clippy::large_enum_variant)] // a message, decoded once per call and not kept
pub enum NotaryAnswer {
    /// One verdict per claim, in order.
    Verdicts(Vec<Verdict>),
    /// The whole batch was refused.
    Refused(BatchRefusal),
    /// The receipt asked for (None: not committed).
    Receipt(Option<Receipt>),
    /// A replica of a group to another.
    Group(GroupAnswer),
    /// This replica does not lead the group: ask the one named (if known).
    /// Nothing was done.
    NotLeader(Option<ParticipantId>),
    /// To `Status`.
    Status(NotaryStatus),
}

impl dtenge_net::Request for NotaryRequest {
    type Answer = NotaryAnswer;
    const SERVICE: &'static str = "notary";
}
