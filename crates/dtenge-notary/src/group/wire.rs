//! What the replicas of a notary group tell each other, and what their log
//! holds, in borsh: openraft's messages mirrored field by field (openraft's
//! own types serialise only through serde, and the platform's bodies are
//! canonical borsh read by one bounded decoder).
//!
//! ```text
//!  leader ── Append(entries) / Vote / SnapshotPiece… SnapshotDone ──► replica
//!         ◄─ Appended / Voted / SnapshotStored / Installed ─────────
//! ```
//!
//! A log entry's data is a [`LogBatch`]: the node's signed batch, the
//! leader's time stamp and whether the node may issue. Every replica decides
//! and applies it the same way.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::Timestamp;
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LeaderId, LogId, Membership, StoredMembership, Vote,
};

use crate::cold::ColdChunk;
use crate::group::GroupConfig;
use crate::messages::{NotariseBatch, NotaryRejection};

/// One entry of the group's log: a batch as the node signed it, at the
/// leader's time.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LogBatch {
    /// The node's signed batch (kept as evidence by every replica).
    pub batch: NotariseBatch,
    /// The leader's clock when it proposed the batch; a replica applies it
    /// at `max(at, the last applied time)`, so commit times never go back.
    pub at: Timestamp,
    /// Whether the submitting node may send claims without inputs (NBK),
    /// as the leader's registry said: every replica decides with it.
    pub may_issue: bool,
    /// Per claim, what the leader's checks of the inputs' hosts refused
    /// (`None`: nothing): every replica decides with it too.
    pub refused: Vec<Option<NotaryRejection>>,
}

/// A log position's leader: term and node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireLeader {
    /// The term.
    pub term: u64,
    /// The leader's node id.
    pub node: u64,
}

/// [`LogId`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireLogId {
    /// Who proposed it.
    pub leader: WireLeader,
    /// Its index.
    pub index: u64,
}

/// [`Vote`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireVote {
    /// The candidate or leader.
    pub leader: WireLeader,
    /// Whether a quorum granted it.
    pub committed: bool,
}

/// [`Membership`] on the wire: voter sets and each node's participant id.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireMembership {
    /// One set of voters, or two during a joint change.
    pub configs: Vec<Vec<u64>>,
    /// Every node (voters and learners) and its participant id.
    pub nodes: Vec<(u64, String)>,
}

/// An entry's payload on the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[allow(clippy::large_enum_variant)] // entries are moved, not kept in bulk as wire values
pub enum WirePayload {
    /// A new leader's first entry.
    Blank,
    /// A notarisation batch.
    Normal(LogBatch),
    /// A membership change.
    Membership(WireMembership),
}

/// [`Entry`] on the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireEntry {
    /// Its position.
    pub log_id: WireLogId,
    /// What it holds.
    pub payload: WirePayload,
}

/// `AppendEntriesRequest` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireAppend {
    /// The leader's vote.
    pub vote: WireVote,
    /// The entry before the first one sent.
    pub prev: Option<WireLogId>,
    /// The entries.
    pub entries: Vec<WireEntry>,
    /// What the leader knows is committed.
    pub leader_commit: Option<WireLogId>,
}

/// `AppendEntriesResponse` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WireAppended {
    /// Every entry stored.
    Success,
    /// The entries up to this one stored.
    PartialSuccess(Option<WireLogId>),
    /// `prev` does not match the replica's log.
    Conflict,
    /// The replica has seen a higher vote.
    HigherVote(WireVote),
}

/// `VoteRequest` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireVoteRequest {
    /// The candidate's vote.
    pub vote: WireVote,
    /// The candidate's last log entry.
    pub last_log_id: Option<WireLogId>,
}

/// `VoteResponse` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireVoteResponse {
    /// The replica's vote after the request.
    pub vote: WireVote,
    /// Whether it voted for the candidate.
    pub granted: bool,
    /// The replica's last log entry.
    pub last_log_id: Option<WireLogId>,
}

/// `SnapshotMeta` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireSnapshotMeta {
    /// The last entry the snapshot covers.
    pub last_log_id: Option<WireLogId>,
    /// The entry of its membership.
    pub membership_log_id: Option<WireLogId>,
    /// Its membership.
    pub membership: WireMembership,
    /// Its id.
    pub id: String,
}

/// What one replica asks another.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GroupRequest {
    /// Store entries (or a heartbeat).
    Append(WireAppend),
    /// Vote for a candidate.
    Vote(WireVoteRequest),
    /// The next piece of the engine's memory part of a snapshot, at `offset`.
    SnapshotMemory {
        /// The snapshot.
        id: String,
        /// Where the bytes go.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The next piece of the cold store (written by the receiver at once:
    /// it is committed history, whatever becomes of the snapshot).
    SnapshotCold(ColdChunk),
    /// Every piece sent: install the snapshot.
    SnapshotDone {
        /// The sender's vote.
        vote: WireVote,
        /// What the snapshot covers.
        meta: WireSnapshotMeta,
        /// Length of the memory part.
        memory_bytes: u64,
    },
}

/// A replica's answer to another.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GroupAnswer {
    /// To `Append`.
    Appended(WireAppended),
    /// To `Vote`.
    Voted(WireVoteResponse),
    /// To `SnapshotMemory` or `SnapshotCold`: stored.
    SnapshotStored,
    /// To `SnapshotDone`: installed; the replica's vote.
    Installed(WireVote),
    /// The piece does not fit what was received so far (start again).
    SnapshotOutOfOrder,
}

impl From<LeaderId<u64>> for WireLeader {
    fn from(l: LeaderId<u64>) -> Self {
        WireLeader { term: l.term, node: l.node_id }
    }
}

impl From<WireLeader> for LeaderId<u64> {
    fn from(l: WireLeader) -> Self {
        LeaderId::new(l.term, l.node)
    }
}

impl From<LogId<u64>> for WireLogId {
    fn from(id: LogId<u64>) -> Self {
        WireLogId { leader: WireLeader { term: id.leader_id.term, node: id.leader_id.node_id }, index: id.index }
    }
}

impl From<WireLogId> for LogId<u64> {
    fn from(id: WireLogId) -> Self {
        LogId::new(CommittedLeaderId::new(id.leader.term, id.leader.node), id.index)
    }
}

impl From<Vote<u64>> for WireVote {
    fn from(v: Vote<u64>) -> Self {
        WireVote { leader: v.leader_id.into(), committed: v.committed }
    }
}

impl From<WireVote> for Vote<u64> {
    fn from(v: WireVote) -> Self {
        Vote { leader_id: v.leader.into(), committed: v.committed }
    }
}

impl From<&Membership<u64, BasicNode>> for WireMembership {
    fn from(m: &Membership<u64, BasicNode>) -> Self {
        WireMembership {
            configs: m.get_joint_config().iter().map(|set| set.iter().copied().collect()).collect(),
            nodes: m.nodes().map(|(id, node)| (*id, node.addr.clone())).collect(),
        }
    }
}

impl From<WireMembership> for Membership<u64, BasicNode> {
    fn from(m: WireMembership) -> Self {
        let configs: Vec<BTreeSet<u64>> = m.configs.into_iter().map(|c| c.into_iter().collect()).collect();
        let nodes: BTreeMap<u64, BasicNode> = m.nodes.into_iter().map(|(id, addr)| (id, BasicNode { addr })).collect();
        Membership::new(configs, nodes)
    }
}

impl From<Entry<GroupConfig>> for WireEntry {
    fn from(e: Entry<GroupConfig>) -> Self {
        let payload = match e.payload {
            EntryPayload::Blank => WirePayload::Blank,
            EntryPayload::Normal(batch) => WirePayload::Normal(batch),
            EntryPayload::Membership(m) => WirePayload::Membership((&m).into()),
        };
        WireEntry { log_id: e.log_id.into(), payload }
    }
}

impl From<WireEntry> for Entry<GroupConfig> {
    fn from(e: WireEntry) -> Self {
        let payload = match e.payload {
            WirePayload::Blank => EntryPayload::Blank,
            WirePayload::Normal(batch) => EntryPayload::Normal(batch),
            WirePayload::Membership(m) => EntryPayload::Membership(m.into()),
        };
        Entry { log_id: e.log_id.into(), payload }
    }
}

/// The membership a snapshot or the state machine holds, on the wire.
pub(crate) fn stored_membership_to_wire(m: &StoredMembership<u64, BasicNode>) -> (Option<WireLogId>, WireMembership) {
    ((*m.log_id()).map(Into::into), m.membership().into())
}

/// Back from [`stored_membership_to_wire`].
pub(crate) fn stored_membership_from_wire(
    log_id: Option<WireLogId>,
    m: WireMembership,
) -> StoredMembership<u64, BasicNode> {
    StoredMembership::new(log_id.map(Into::into), m.into())
}
