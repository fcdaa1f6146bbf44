//! Format versions of what the notary stores (`dtenge_store::versioned`).
//!
//! - version 0 (untagged; release 9e7a3dd and until commitments bound their
//!   host): a claim is `{tx, inputs, outputs, window}`, and every commitment
//!   is the token's sealed hash alone;
//! - version 1: a claim also opens each input to its host and carries other
//!   hosts' consents; commitments bind the host (`Commitment::bound`).
//!
//! A journal of version 0 records replays as it did; the commitments left
//! unspent where version 1 begins are kept as the engine's legacy set.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::Signature;
use dtenge_store::versioned::{Format, FormatError, Tagged, kinds};
use dtenge_types::{BoundedVec, Commitment, MAX_INPUTS, MAX_OUTPUTS, ParticipantId, TimeWindow, Timestamp, TxId};

use crate::messages::{MAX_BATCH, NotariseBatch, TxClaim};

/// What the journal stores: a batch as the node signed it (evidence) and the
/// positions of the claims that committed, at the notary's time.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NotaryRecord {
    /// The signed batch.
    pub batch: NotariseBatch,
    /// Indices of the claims committed, in commit order.
    pub committed: Vec<u32>,
    /// The notary's clock at commit.
    pub committed_at: Timestamp,
}

/// A single notary's journal record.
pub const RECORD: Format = Format { kind: kinds::NOTARY_RECORD, version: 1, name: "notary record" };
/// The engine's snapshot (a single notary's, or a replica's memory part).
pub const SNAPSHOT: Format = Format { kind: kinds::NOTARY_SNAPSHOT, version: 1, name: "notary snapshot" };
/// A group replica's Raft log record (see `group::log`): version 0 (untagged,
/// release 2f8af32) held log entries whose batches had claims of version 0
/// and no leader's host findings.
pub const LOG_RECORD: Format = Format { kind: kinds::NOTARY_LOG_RECORD, version: 1, name: "notary group log record" };
/// A group replica's Raft log snapshot (the entries kept, the vote, …).
pub const LOG_SNAPSHOT: Format =
    Format { kind: kinds::NOTARY_LOG_SNAPSHOT, version: 1, name: "notary group log snapshot" };
/// A group replica's state machine snapshot (the same layout in versions 0
/// and 1: its engine part carries its own tag, [`SNAPSHOT`]).
pub const REPLICA_SNAPSHOT: Format =
    Format { kind: kinds::NOTARY_REPLICA_SNAPSHOT, version: 1, name: "notary replica snapshot" };

/// The cold store's filter as saved beside the store (see `cold`); version 1
/// is the first (before it the filter was rebuilt from the keys at every
/// start).
pub const COLD_FILTER: Format = Format { kind: kinds::NOTARY_COLD_FILTER, version: 1, name: "notary cold filter" };

/// A claim in format version 0.
#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) struct TxClaimV0 {
    pub(crate) tx: TxId,
    pub(crate) inputs: BoundedVec<Commitment, MAX_INPUTS>,
    pub(crate) outputs: BoundedVec<Commitment, MAX_OUTPUTS>,
    pub(crate) window: TimeWindow,
}

/// A batch in format version 0.
#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) struct NotariseBatchV0 {
    pub(crate) node: ParticipantId,
    pub(crate) claims: BoundedVec<TxClaimV0, MAX_BATCH>,
    pub(crate) signature: Signature,
}

/// A journal record in format version 0.
#[derive(BorshSerialize, BorshDeserialize)]
struct NotaryRecordV0 {
    batch: NotariseBatchV0,
    committed: Vec<u32>,
    committed_at: Timestamp,
}

/// A stored journal record and the format version it was written in. A
/// version 0 record reads with no openings or consents (it was decided
/// without them; its batch signature covered the older encoding).
///
/// # Errors
/// A version newer than this release reads, or a body that does not decode.
pub fn decode_record(stored: &[u8]) -> Result<(NotaryRecord, u16), FormatError> {
    match RECORD.read(stored)? {
        Tagged::Versioned { version, body } => {
            let record = borsh::from_slice(body).map_err(|e| RECORD.undecodable(version, e))?;
            Ok((record, version))
        }
        Tagged::Untagged(body) => {
            let old: NotaryRecordV0 = borsh::from_slice(body).map_err(|e| RECORD.undecodable(0, e))?;
            let claims: Vec<TxClaim> = old
                .batch
                .claims
                .into_vec()
                .into_iter()
                .map(|c| TxClaim {
                    tx: c.tx,
                    inputs: c.inputs,
                    outputs: c.outputs,
                    window: c.window,
                    openings: BoundedVec::default(),
                    consents: BoundedVec::default(),
                })
                .collect();
            let claims = BoundedVec::new(claims).map_err(|e| RECORD.undecodable(0, e))?;
            let batch = NotariseBatch { node: old.batch.node, claims, signature: old.batch.signature };
            Ok((NotaryRecord { batch, committed: old.committed, committed_at: old.committed_at }, 0))
        }
    }
}
