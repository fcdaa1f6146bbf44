//! How a replica reaches the others: openraft's RPCs as signed envelopes on
//! the platform's own `Bus`, so a group runs in one process, over HTTP and in
//! the deterministic simulation (whose `FaultyNetwork` then loses, delays,
//! duplicates and cuts the replicas' own messages).
//!
//! ```text
//!  openraft ──► PeerLink::append_entries / vote ──► NotaryRequest::Group(..) ──► bus.call(replica)
//!  openraft ──► PeerLink::full_snapshot ──► SnapshotMemory × n ──► SnapshotCold × m ──► SnapshotDone
//! ```
//!
//! A snapshot travels in pieces no larger than a message allows: the
//! engine's memory part, then the sender's whole cold store in key order
//! (the receiver writes each cold piece at once: it is committed history),
//! then the request to install.
//!
//! Each replica keeps which others it could not reach on its last call
//! ([`Reachability`]): one log line and one gauge change when a replica
//! becomes unreachable and when it answers again, where openraft's own
//! lines repeat every retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtenge_net::{Bus, NetError};
use dtenge_types::ParticipantId;
use openraft::error::{
    Fatal, NetworkError, PayloadTooLarge, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::{AnyError, BasicNode, Snapshot, Vote};

use crate::cold::ColdKey;
use crate::group::GroupConfig;
use crate::group::machine::COLD_PIECE_ENTRIES;
use crate::group::wire::{GroupAnswer, GroupRequest, WireAppend, WireAppended, WireSnapshotMeta, WireVoteRequest};
use crate::protocol::{NotaryAnswer, NotaryRequest};

/// Bytes of the memory part per snapshot piece.
pub const MEMORY_PIECE_BYTES: usize = 4 << 20;

/// Most bytes of one append: openraft gives an append one heartbeat
/// interval (it times the whole call, the follower's fdatasync included),
/// and a follower behind by many large batches must still catch up in
/// appends that fit both that time and a message.
pub const APPEND_BUDGET_BYTES: usize = 1 << 20;

/// Makes links to the other replicas over one bus.
pub struct GroupNetwork {
    bus: Arc<dyn Bus>,
    reach: Arc<Reachability>,
}

impl GroupNetwork {
    /// Links over `bus` (bound to this replica's identity), noting in
    /// `reach` which replicas answer.
    pub fn new(bus: Arc<dyn Bus>, reach: Arc<Reachability>) -> GroupNetwork {
        GroupNetwork { bus, reach }
    }
}

/// A link to one replica.
pub struct PeerLink {
    bus: Arc<dyn Bus>,
    to: Result<ParticipantId, String>,
    reach: Arc<Reachability>,
}

/// Which replicas this one could not reach on its last call to each, and
/// since when. A slow answer does not count (the replica is there).
pub struct Reachability {
    me: ParticipantId,
    unreachable: Mutex<HashMap<ParticipantId, Instant>>,
}

impl Reachability {
    /// For replica `me`; every other replica counts as reachable until a
    /// call to it fails.
    pub fn new(me: ParticipantId) -> Reachability {
        Reachability { me, unreachable: Mutex::new(HashMap::new()) }
    }

    /// The replicas whose last call failed, in id order.
    pub fn unreachable(&self) -> Vec<ParticipantId> {
        let mut ids: Vec<ParticipantId> = self.table().keys().cloned().collect();
        ids.sort();
        ids
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, Instant>> {
        self.unreachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failed(&self, to: &ParticipantId, why: &NetError) {
        if self.table().insert(to.clone(), Instant::now()).is_none() {
            // The bus's words name the replica when it is simply not there.
            let why = match why {
                NetError::Unreachable { .. } => why.to_string(),
                other => format!("{to} cannot be reached: {other}"),
            };
            tracing::warn!(
                replica = %self.me, peer = %to,
                "notary group: {why}; the group goes on while a majority answers"
            );
            self.gauge(to, 0.0);
        }
    }

    fn answered(&self, to: &ParticipantId) {
        let Some(since) = self.table().remove(to) else { return };
        let after_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(replica = %self.me, peer = %to, after_ms, "notary group: {to} answers again");
        self.gauge(to, 1.0);
    }

    fn gauge(&self, to: &ParticipantId, value: f64) {
        metrics::gauge!("dtenge_notary_peer_reachable", "replica" => self.me.to_string(), "peer" => to.to_string())
            .set(value);
    }
}

/// Why a call to a replica failed.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    /// Not reachable now (down, cut off, refused): openraft backs off
    /// before it tries that replica again.
    #[error(transparent)]
    Unreachable(NetError),
    /// No answer in time: retried without backing off (a slow answer is
    /// not a replica gone; backing off for 500 ms on it stalled a loaded
    /// group).
    #[error("no answer from {0} in time")]
    Slow(ParticipantId),
    /// It answered something that makes no sense here.
    #[error("replica answered: {0}")]
    Answer(String),
}

impl<E: std::error::Error> From<LinkError> for RPCError<u64, BasicNode, E> {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&e)),
            LinkError::Slow(_) | LinkError::Answer(_) => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

impl From<LinkError> for StreamingError<GroupConfig, Fatal<u64>> {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Unreachable(_) => StreamingError::Unreachable(Unreachable::new(&e)),
            LinkError::Slow(_) | LinkError::Answer(_) => StreamingError::Network(NetworkError::new(&e)),
        }
    }
}

impl PeerLink {
    async fn call(&self, request: GroupRequest, ttl: Duration) -> Result<GroupAnswer, LinkError> {
        let body = borsh::to_vec(&NotaryRequest::Group(request)).map_err(|e| LinkError::Answer(e.to_string()))?;
        self.call_encoded(body, ttl).await
    }

    async fn call_encoded(&self, body: Vec<u8>, ttl: Duration) -> Result<GroupAnswer, LinkError> {
        let to = self.to.as_ref().map_err(|e| LinkError::Answer(e.clone()))?;
        let answer = match tokio::time::timeout(ttl, self.bus.call(to, body)).await {
            Err(_) | Ok(Err(NetError::Timeout { .. })) => return Err(LinkError::Slow(to.clone())),
            Ok(Err(e)) => {
                self.reach.failed(to, &e);
                return Err(LinkError::Unreachable(e));
            }
            Ok(Ok(bytes)) => bytes,
        };
        self.reach.answered(to);
        match dtenge_types::encoding::decode::<NotaryAnswer>(&answer, dtenge_net::MAX_BODY_BYTES) {
            Ok(NotaryAnswer::Group(answer)) => Ok(answer),
            Ok(other) => Err(LinkError::Answer(format!("{other:?}"))),
            Err(e) => Err(LinkError::Answer(e.to_string())),
        }
    }
}

/// How many entries an append of `entries` entries encoded in `bytes`
/// should carry instead, if it is over [`APPEND_BUDGET_BYTES`] (`None`: send
/// it; a single entry always goes: a batch fits a message by construction).
fn fewer_entries(entries: usize, bytes: usize) -> Option<u64> {
    if bytes <= APPEND_BUDGET_BYTES || entries <= 1 {
        return None;
    }
    let fitting = (entries as u128 * APPEND_BUDGET_BYTES as u128 / bytes.max(1) as u128) as u64;
    Some(fitting.clamp(1, entries as u64 - 1))
}

impl RaftNetworkFactory<GroupConfig> for GroupNetwork {
    type Network = PeerLink;

    async fn new_client(&mut self, _target: u64, node: &BasicNode) -> PeerLink {
        let to = ParticipantId::new(&node.addr).map_err(|e| format!("replica id {:?}: {e}", node.addr));
        PeerLink { bus: Arc::clone(&self.bus), to, reach: Arc::clone(&self.reach) }
    }
}

impl RaftNetwork<GroupConfig> for PeerLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<GroupConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let entries = rpc.entries.len();
        let request = GroupRequest::Append(WireAppend {
            vote: rpc.vote.into(),
            prev: rpc.prev_log_id.map(Into::into),
            entries: rpc.entries.into_iter().map(Into::into).collect(),
            leader_commit: rpc.leader_commit.map(Into::into),
        });
        let body = borsh::to_vec(&NotaryRequest::Group(request)).map_err(|e| LinkError::Answer(e.to_string()))?;
        if let Some(fewer) = fewer_entries(entries, body.len()) {
            // openraft sends fewer entries for the next appends to this replica.
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(fewer)));
        }
        match self.call_encoded(body, option.hard_ttl()).await? {
            GroupAnswer::Appended(a) => Ok(match a {
                WireAppended::Success => AppendEntriesResponse::Success,
                WireAppended::PartialSuccess(l) => AppendEntriesResponse::PartialSuccess(l.map(Into::into)),
                WireAppended::Conflict => AppendEntriesResponse::Conflict,
                WireAppended::HigherVote(v) => AppendEntriesResponse::HigherVote(v.into()),
            }),
            other => Err(LinkError::Answer(format!("{other:?} to an append")).into()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let request =
            GroupRequest::Vote(WireVoteRequest { vote: rpc.vote.into(), last_log_id: rpc.last_log_id.map(Into::into) });
        match self.call(request, option.hard_ttl()).await? {
            GroupAnswer::Voted(v) => Ok(VoteResponse {
                vote: v.vote.into(),
                vote_granted: v.granted,
                last_log_id: v.last_log_id.map(Into::into),
            }),
            other => Err(LinkError::Answer(format!("{other:?} to a vote")).into()),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<GroupConfig>,
        _cancel: impl std::future::Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<GroupConfig, Fatal<u64>>> {
        let ttl = option.hard_ttl();
        let memory = Arc::clone(&snapshot.snapshot.memory);
        let id = snapshot.meta.snapshot_id.clone();
        let mut offset = 0usize;
        loop {
            let end = (offset + MEMORY_PIECE_BYTES).min(memory.len());
            let piece = GroupRequest::SnapshotMemory {
                id: id.clone(),
                offset: offset as u64,
                bytes: memory.get(offset..end).unwrap_or_default().to_vec(),
            };
            self.expect_stored(piece, ttl).await?;
            offset = end;
            if offset >= memory.len() {
                break;
            }
        }
        if let Some(cold) = snapshot.snapshot.cold.clone() {
            let mut after: Option<ColdKey> = None;
            loop {
                let store = Arc::clone(&cold);
                let chunk = tokio::task::spawn_blocking(move || store.scan(after, COLD_PIECE_ENTRIES))
                    .await
                    .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?
                    .map_err(|e| {
                        StreamingError::StorageError(
                            openraft::StorageIOError::read_snapshot(None, AnyError::new(&e)).into(),
                        )
                    })?;
                let next = chunk.next;
                self.expect_stored(GroupRequest::SnapshotCold(chunk), ttl).await?;
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        let (membership_log_id, membership) =
            crate::group::wire::stored_membership_to_wire(&snapshot.meta.last_membership);
        let done = GroupRequest::SnapshotDone {
            vote: vote.into(),
            meta: WireSnapshotMeta {
                last_log_id: snapshot.meta.last_log_id.map(Into::into),
                membership_log_id,
                membership,
                id,
            },
            memory_bytes: memory.len() as u64,
        };
        match self.call(done, ttl).await? {
            GroupAnswer::Installed(v) => Ok(SnapshotResponse::new(v.into())),
            other => Err(LinkError::Answer(format!("{other:?} to a snapshot")).into()),
        }
    }
}

impl PeerLink {
    async fn expect_stored(
        &self,
        piece: GroupRequest,
        ttl: Duration,
    ) -> Result<(), StreamingError<GroupConfig, Fatal<u64>>> {
        match self.call(piece, ttl).await? {
            GroupAnswer::SnapshotStored => Ok(()),
            other => Err(LinkError::Answer(format!("{other:?} to a snapshot piece")).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_over_the_budget_asks_for_fewer_entries_never_none() {
        assert_eq!(fewer_entries(300, APPEND_BUDGET_BYTES), None, "at the budget it goes");
        assert_eq!(fewer_entries(1, 10 * APPEND_BUDGET_BYTES), None, "a single entry always goes");
        // 300 entries in 33 MiB: about 9 fit in 1 MiB.
        assert_eq!(fewer_entries(300, 33 * APPEND_BUDGET_BYTES), Some(9));
        // Just over: one fewer at least, never zero.
        assert_eq!(fewer_entries(2, APPEND_BUDGET_BYTES + 1), Some(1));
        assert_eq!(fewer_entries(300, APPEND_BUDGET_BYTES + 1), Some(299));
    }
}
