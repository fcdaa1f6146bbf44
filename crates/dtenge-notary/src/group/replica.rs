//! One running replica of a notary group: openraft over the log store, the
//! state machine and the bus, and the handler that serves nodes (when it
//! leads) and the other replicas.
//!
//! ```text
//!  Notarise(batch) ─► admit (sender, signature) ─► not leader? ─► NotLeader(leader)
//!                  ─► client_write(LogBatch) ── committed on a majority, applied ──► verdicts signed by this replica
//!                  ─► no commit within `commit_timeout` (minority side) ─► Unavailable: nothing acknowledged
//!  Receipt(tx)     ─► ensure_linearizable (still leader, applied all committed) ─► lookup ─► signed receipt
//!  Group(..)       ─► only from a participant with the notary role ─► openraft (append, vote, snapshot)
//! ```
//!
//! Invariant: a node is answered only with decisions of committed entries;
//! the minority side of a partition commits nothing and so acknowledges
//! nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dtenge_crypto::{Digest, Signer};
use dtenge_net::{Bus, Clock, Handler, HandlerError, Participants};
use dtenge_store::{Journal, Recovery};
use dtenge_types::{ParticipantId, TxId};
use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, RaftError};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest};
use openraft::{BasicNode, Config, Raft, RaftMetrics, ServerState, Snapshot, SnapshotMeta, SnapshotPolicy};

use crate::cold::{ColdChunk, ColdStore};
use crate::engine::NotaryConfig;
use crate::group::GroupConfig;
use crate::group::log::LogStore;
pub use crate::group::machine::MAX_SNAPSHOT_MEMORY_BYTES;
use crate::group::machine::{Applied, Machine, MachineState, SnapshotData};
use crate::group::network::{GroupNetwork, Reachability};
use crate::group::wire::{
    GroupAnswer, GroupRequest, LogBatch, WireAppended, WireSnapshotMeta, WireVoteResponse, stored_membership_from_wire,
};
use crate::messages::{NotariseBatch, Receipt, Verdict};
use crate::protocol::{NotaryAnswer, NotaryRequest, NotaryStatus};
use crate::service::{NotaryCallError, NotaryError, admit, verdicts};

/// How a group runs.
#[derive(Debug, Clone, Copy)]
pub struct GroupOptions {
    /// The leader's heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for a random time in this range
    /// (milliseconds) starts an election.
    pub election_ms: (u64, u64),
    /// Take a snapshot (and purge the log) after this many entries; `None`:
    /// never (a replica whose cold store does not outlive it).
    pub snapshot_every: Option<u64>,
    /// Entries kept in the log after a snapshot, for followers slightly
    /// behind (beyond that they get the snapshot).
    pub keep_after_snapshot: u64,
    /// Longest wait for a batch to commit before the node is told to try
    /// elsewhere (the batch may still commit; a retry is answered the same).
    pub commit_timeout: Duration,
}

impl Default for GroupOptions {
    /// Heartbeat 50 ms, election timeouts 150–300 ms, a snapshot every
    /// 20 000 entries keeping 256 after it, 3 s to commit.
    ///
    /// Why these timeouts: openraft 0.9 adds a leader lease (the longest
    /// election timeout) to a follower's wait while it knows a leader, so a
    /// follower waits many missed heartbeats before it stands (no spurious
    /// elections on a loaded machine), and a leader killed under load often
    /// costs two election rounds (followers whose logs differ refuse each
    /// other once). Short timeouts keep that sum within the failover target;
    /// docs/notary.md gives the arithmetic and the measured figures.
    fn default() -> Self {
        GroupOptions {
            heartbeat_ms: 50,
            election_ms: (150, 300),
            snapshot_every: Some(20_000),
            keep_after_snapshot: 256,
            commit_timeout: Duration::from_secs(3),
        }
    }
}

/// A replica's storage: its log's journal, its snapshots' journal, its
/// cold store.
pub struct ReplicaStores {
    /// The Raft log's journal, as opened.
    pub log: (Journal, Recovery),
    /// The snapshots' journal, as opened.
    pub snapshots: (Journal, Recovery),
    /// The cold store.
    pub cold: Arc<ColdStore>,
    /// The engine's memory limits.
    pub config: NotaryConfig,
}

/// A snapshot being received from the leader.
struct Incoming {
    id: String,
    memory: Vec<u8>,
}

/// One running replica.
pub struct NotaryReplica {
    node_id: u64,
    me: ParticipantId,
    key: Arc<dyn Signer>,
    participants: Arc<Participants>,
    clock: Arc<dyn Clock>,
    raft: Raft<GroupConfig>,
    machine: Machine,
    log: LogStore,
    incoming: Mutex<Option<Incoming>>,
    options: GroupOptions,
    reach: Arc<Reachability>,
}

fn group_error(e: impl std::fmt::Display) -> NotaryError {
    NotaryError::Group(e.to_string())
}

impl NotaryReplica {
    /// Starts replica `node_id` (participant `me`): recovers its log and
    /// state machine and joins the group over `bus`.
    ///
    /// # Errors
    /// Its storage does not recover, or openraft refuses the configuration.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        node_id: u64,
        me: ParticipantId,
        key: Arc<dyn Signer>,
        participants: Arc<Participants>,
        clock: Arc<dyn Clock>,
        bus: Arc<dyn Bus>,
        stores: ReplicaStores,
        options: GroupOptions,
    ) -> Result<Arc<NotaryReplica>, NotaryError> {
        let log = LogStore::recover(stores.log.0, stores.log.1)?;
        let machine = Machine::recover(stores.snapshots.0, stores.snapshots.1, stores.cold, stores.config)
            .map_err(NotaryError::Replay)?;
        let config = Config {
            cluster_name: "dtenge-notary".into(),
            heartbeat_interval: options.heartbeat_ms,
            election_timeout_min: options.election_ms.0,
            election_timeout_max: options.election_ms.1,
            snapshot_policy: match options.snapshot_every {
                Some(n) => SnapshotPolicy::LogsSinceLast(n),
                None => SnapshotPolicy::Never,
            },
            max_in_snapshot_log_to_keep: options.keep_after_snapshot,
            ..Config::default()
        };
        let config = Arc::new(config.validate().map_err(group_error)?);
        let reach = Arc::new(Reachability::new(me.clone()));
        let network = GroupNetwork::new(bus, Arc::clone(&reach));
        let raft = Raft::new(node_id, config, network, log.clone(), machine.clone()).await.map_err(group_error)?;
        tokio::spawn(report_leadership(me.clone(), raft.metrics()));
        Ok(Arc::new(NotaryReplica {
            node_id,
            me,
            key,
            participants,
            clock,
            raft,
            machine,
            log,
            incoming: Mutex::new(None),
            options,
            reach,
        }))
    }

    /// Makes a pristine group of `members` (node id → participant id). Does
    /// nothing on a replica that already holds a log or a snapshot: a
    /// replica whose data was wiped waits for the leader instead, which
    /// sends it a snapshot.
    ///
    /// # Errors
    /// openraft refused (this replica is not among the members).
    pub async fn initialize(&self, members: &BTreeMap<u64, ParticipantId>) -> Result<(), NotaryError> {
        if self.raft.is_initialized().await.map_err(group_error)? {
            return Ok(());
        }
        let nodes: BTreeMap<u64, BasicNode> =
            members.iter().map(|(id, p)| (*id, BasicNode { addr: p.to_string() })).collect();
        match self.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(group_error(e)),
        }
    }

    /// Joins the group of `members` at start: a replica that holds a log
    /// or a snapshot is already in it; a pristine one waits two election
    /// timeouts for a leader to reach it (a wiped replica of a running
    /// group gets a snapshot that way) and otherwise initialises the group
    /// (a new platform: every replica does so with the same members).
    ///
    /// # Errors
    /// As [`NotaryReplica::initialize`].
    pub async fn join(&self, members: &BTreeMap<u64, ParticipantId>) -> Result<(), NotaryError> {
        let step = Duration::from_millis(self.options.election_ms.1.max(1) / 4);
        for _ in 0..8 {
            if self.raft.is_initialized().await.map_err(group_error)? {
                return Ok(());
            }
            tokio::time::sleep(step).await;
        }
        self.initialize(members).await
    }

    /// Makes the log, the snapshots and the cold store durable and releases
    /// them, without waiting for openraft (a process about to exit).
    ///
    /// # Errors
    /// A store failed.
    pub fn close(&self) -> Result<(), NotaryError> {
        self.log.close()?;
        self.machine.close().map_err(group_error)
    }

    /// This replica's node id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// This replica's participant id.
    pub fn id(&self) -> &ParticipantId {
        &self.me
    }

    /// The openraft handle (metrics, membership changes).
    pub fn raft(&self) -> &Raft<GroupConfig> {
        &self.raft
    }

    /// The participant id of the leader this replica knows of.
    pub fn leader(&self) -> Option<ParticipantId> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let node = metrics.membership_config.membership().get_node(&leader)?;
        ParticipantId::new(&node.addr).ok()
    }

    /// The other replicas this one could not reach on its last call to
    /// each (a leader calls every follower each heartbeat; a follower calls
    /// the others only in an election).
    pub fn unreachable(&self) -> Vec<ParticipantId> {
        self.reach.unreachable()
    }

    /// Whether this replica leads the group now.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// What every replica must agree on (see [`MachineState::digest`]).
    pub fn state_digest(&self) -> Digest {
        self.machine.shared.state().digest()
    }

    /// Where this replica stands.
    pub fn status(&self) -> NotaryStatus {
        let state = self.machine.shared.state();
        NotaryStatus {
            id: self.me.clone(),
            leader: self.leader(),
            applied: state.last_applied.map_or(0, |l| l.index),
            committed: state.engine.committed_count(),
            digest: state.digest(),
        }
    }

    /// Index of the last entry applied.
    pub fn applied_index(&self) -> u64 {
        self.machine.shared.state().last_applied.map_or(0, |l| l.index)
    }

    /// Runs `f` on the state machine (for audits and tests).
    pub fn with_state<T>(&self, f: impl FnOnce(&MachineState) -> T) -> T {
        f(&self.machine.shared.state())
    }

    /// Entries of the log held in memory.
    pub fn log_entries(&self) -> usize {
        self.log.len()
    }

    /// Notarises a batch sent by `from`, if this replica leads.
    pub async fn notarise(&self, from: &ParticipantId, batch: NotariseBatch) -> Result<Vec<Verdict>, NotaryCallError> {
        let admitted = admit(&self.participants, from, &batch).map_err(NotaryCallError::Refused)?;
        let entry = LogBatch { batch, at: self.clock.now(), may_issue: admitted.may_issue, refused: admitted.refused };
        let written = tokio::time::timeout(self.options.commit_timeout, self.raft.client_write(entry)).await;
        match written {
            Err(_) => Err(NotaryCallError::NoQuorum(format!(
                "{} could not commit within {:?}",
                self.me, self.options.commit_timeout
            ))),
            Ok(Ok(response)) => match response.data {
                Applied::Batch(decisions) => verdicts(decisions, self.key.as_ref()),
                Applied::Nothing => Err(NotaryCallError::Internal("a batch applied as nothing".into())),
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(not_leader(f)),
            Ok(Err(e)) => Err(NotaryCallError::NoQuorum(e.to_string())),
        }
    }

    /// The receipt of `tx`, if committed, read on the leader once it has
    /// confirmed it still leads and applied everything committed.
    pub async fn receipt(&self, tx: &TxId) -> Result<Option<Receipt>, NotaryCallError> {
        let confirmed = tokio::time::timeout(self.options.commit_timeout, self.raft.ensure_linearizable()).await;
        match confirmed {
            Err(_) => return Err(NotaryCallError::NoQuorum(format!("{} could not confirm it leads", self.me))),
            Ok(Ok(_)) => {}
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => return Err(not_leader(f)),
            Ok(Err(e)) => return Err(NotaryCallError::NoQuorum(e.to_string())),
        }
        let body = self
            .machine
            .shared
            .state()
            .engine
            .lookup_committed(tx)
            .map_err(|e| NotaryCallError::Internal(e.to_string()))?;
        Ok(body.map(|b| Receipt::sign(b, self.key.as_ref())))
    }

    /// Adds participant `id` as replica `node_id`: first as a learner (it
    /// receives a snapshot and the log), then among the voters, in place of
    /// `replacing` if given (`None`: the group grows). Leader only; if the
    /// leadership moves meanwhile the change fails (possibly halfway, in the
    /// joint configuration) and is run again, with the same arguments, on
    /// the new leader, which completes it.
    ///
    /// # Errors
    /// This replica does not lead (or stopped leading), or the change did not commit.
    pub async fn replace_member(
        &self,
        node_id: u64,
        id: &ParticipantId,
        replacing: Option<u64>,
    ) -> Result<(), NotaryError> {
        self.raft.add_learner(node_id, BasicNode { addr: id.to_string() }, true).await.map_err(group_error)?;
        // openraft's wait for the learner ends without an error when this
        // replica stops leading: say so rather than fail later, less clearly.
        if !self.is_leader() {
            return Err(group_error(format!(
                "{} stopped leading while {id} caught up: run the change on the new leader",
                self.me
            )));
        }
        let mut voters: BTreeSet<u64> =
            self.raft.metrics().borrow().membership_config.membership().voter_ids().collect();
        voters.insert(node_id);
        if let Some(old) = replacing {
            voters.remove(&old);
        }
        self.raft.change_membership(voters, false).await.map_err(group_error)?;
        Ok(())
    }

    /// Stops openraft, then makes the log, the snapshots and the cold store
    /// durable. Stopping twice is harmless.
    ///
    /// # Errors
    /// A store failed to close.
    pub async fn shutdown(&self) -> Result<(), NotaryError> {
        let _ = self.raft.shutdown().await;
        self.close()
    }

    fn incoming(&self) -> MutexGuard<'_, Option<Incoming>> {
        self.incoming.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves a message from another replica.
    async fn group(&self, request: GroupRequest) -> Result<GroupAnswer, HandlerError> {
        let unavailable = |e: &dyn std::fmt::Display| HandlerError::Unavailable(format!("{}: {e}", self.me));
        match request {
            GroupRequest::Append(a) => {
                let rpc = AppendEntriesRequest {
                    vote: a.vote.into(),
                    prev_log_id: a.prev.map(Into::into),
                    entries: a.entries.into_iter().map(Into::into).collect(),
                    leader_commit: a.leader_commit.map(Into::into),
                };
                let answer = self.raft.append_entries(rpc).await.map_err(|e| unavailable(&e))?;
                Ok(GroupAnswer::Appended(match answer {
                    AppendEntriesResponse::Success => WireAppended::Success,
                    AppendEntriesResponse::PartialSuccess(l) => WireAppended::PartialSuccess(l.map(Into::into)),
                    AppendEntriesResponse::Conflict => WireAppended::Conflict,
                    AppendEntriesResponse::HigherVote(v) => WireAppended::HigherVote(v.into()),
                }))
            }
            GroupRequest::Vote(v) => {
                let answer = self
                    .raft
                    .vote(VoteRequest::new(v.vote.into(), v.last_log_id.map(Into::into)))
                    .await
                    .map_err(|e| unavailable(&e))?;
                Ok(GroupAnswer::Voted(WireVoteResponse {
                    vote: answer.vote.into(),
                    granted: answer.vote_granted,
                    last_log_id: answer.last_log_id.map(Into::into),
                }))
            }
            GroupRequest::SnapshotMemory { id, offset, bytes } => {
                let mut incoming = self.incoming();
                if offset == 0 {
                    *incoming = Some(Incoming { id: id.clone(), memory: Vec::new() });
                }
                match incoming.as_mut() {
                    Some(i)
                        if i.id == id
                            && i.memory.len() as u64 == offset
                            && offset + bytes.len() as u64 <= MAX_SNAPSHOT_MEMORY_BYTES =>
                    {
                        i.memory.extend_from_slice(&bytes);
                        Ok(GroupAnswer::SnapshotStored)
                    }
                    _ => Ok(GroupAnswer::SnapshotOutOfOrder),
                }
            }
            GroupRequest::SnapshotCold(chunk) => {
                self.ingest(chunk).await.map_err(|e| unavailable(&e))?;
                Ok(GroupAnswer::SnapshotStored)
            }
            GroupRequest::SnapshotDone { vote, meta, memory_bytes } => {
                let memory = match self.incoming().take() {
                    Some(i) if i.id == meta.id && i.memory.len() as u64 == memory_bytes => i.memory,
                    _ => return Ok(GroupAnswer::SnapshotOutOfOrder),
                };
                let WireSnapshotMeta { last_log_id, membership_log_id, membership, id } = meta;
                let snapshot = Snapshot {
                    meta: SnapshotMeta {
                        last_log_id: last_log_id.map(Into::into),
                        last_membership: stored_membership_from_wire(membership_log_id, membership),
                        snapshot_id: id,
                    },
                    snapshot: Box::new(SnapshotData { memory: Arc::new(memory), cold: None }),
                };
                let answer =
                    self.raft.install_full_snapshot(vote.into(), snapshot).await.map_err(|e| unavailable(&e))?;
                Ok(GroupAnswer::Installed(answer.vote.into()))
            }
        }
    }

    async fn ingest(&self, chunk: ColdChunk) -> Result<(), String> {
        let cold = Arc::clone(&self.machine.shared.cold);
        tokio::task::spawn_blocking(move || cold.ingest(&chunk))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// What a stopped replica's storage holds.
pub struct RecoveredReplica {
    /// Index of the last entry applied.
    pub applied: u64,
    /// Its state digest (see [`MachineState::digest`]).
    pub digest: Digest,
    /// Its engine (sharing the replica's cold store).
    pub engine: crate::engine::NotaryState,
}

/// Recovers a stopped replica's state without starting it: its snapshot,
/// then every entry of its log up to the last it knew committed (an audit
/// of a group after its processes stopped).
///
/// # Errors
/// The storage does not recover, or an entry does not apply.
pub fn recover_state(stores: ReplicaStores) -> Result<RecoveredReplica, NotaryError> {
    let log = LogStore::recover(stores.log.0, stores.log.1)?;
    let machine = Machine::recover(stores.snapshots.0, stores.snapshots.1, stores.cold, stores.config)
        .map_err(NotaryError::Replay)?;
    let from = machine.shared.state().last_applied.map_or(0, |l| l.index + 1);
    if let Some(committed) = log.committed_index() {
        for entry in log.entries(from..=committed) {
            machine.apply_entry(entry).map_err(group_error)?;
        }
    }
    log.close()?;
    let state = machine.shared.state();
    Ok(RecoveredReplica {
        applied: state.last_applied.map_or(0, |l| l.index),
        digest: state.digest(),
        engine: state.engine.clone(),
    })
}

fn not_leader(f: ForwardToLeader<u64, BasicNode>) -> NotaryCallError {
    NotaryCallError::NotLeader(f.leader_node.and_then(|n| ParticipantId::new(&n.addr).ok()))
}

fn answer_of(result: Result<NotaryAnswer, NotaryCallError>) -> Result<NotaryAnswer, HandlerError> {
    match result {
        Ok(answer) => Ok(answer),
        Err(NotaryCallError::Refused(r)) => Ok(NotaryAnswer::Refused(r)),
        Err(NotaryCallError::NotLeader(leader)) => Ok(NotaryAnswer::NotLeader(leader)),
        Err(e) => Err(HandlerError::Unavailable(e.to_string())),
    }
}

#[async_trait::async_trait]
impl Handler for NotaryReplica {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        let request: NotaryRequest = dtenge_net::decode_request(&body)?;
        // The platform's authorisation table: replica-to-replica messages
        // only from participants with the notary role.
        dtenge_net::authz::admit(&self.participants, from, &request)?;
        let txs = crate::service::batch_txs(&request);
        let answer = match request {
            NotaryRequest::Notarise(batch) => {
                let verdicts = self.notarise(from, batch).await;
                if let Ok(verdicts) = &verdicts {
                    crate::service::record_decisions(&txs, verdicts);
                }
                answer_of(verdicts.map(NotaryAnswer::Verdicts))?
            }
            NotaryRequest::Receipt(tx) => answer_of(self.receipt(&tx).await.map(NotaryAnswer::Receipt))?,
            NotaryRequest::Status => NotaryAnswer::Status(self.status()),
            NotaryRequest::Group(request) => NotaryAnswer::Group(self.group(request).await?),
        };
        Ok(borsh::to_vec(&answer).unwrap_or_default())
    }
}

/// What an operator sees of the group from this replica, until it stops:
/// one log line per change of leader (or of having none), counted in
/// `dtenge_notary_leader_changes_total`; a replica that stops on a fatal
/// error says why.
async fn report_leadership(me: ParticipantId, mut metrics: tokio::sync::watch::Receiver<RaftMetrics<u64, BasicNode>>) {
    let labels = [("replica", me.to_string())];
    let mut known: Option<Option<u64>> = None;
    loop {
        let now = metrics.borrow_and_update().clone();
        match &now.running_state {
            Ok(()) => {}
            // Shut down on purpose (the process is stopping).
            Err(Fatal::Stopped) => return,
            Err(fatal) => {
                tracing::error!(replica = %me, "notary group: {me} stopped: {fatal}");
                return;
            }
        }
        if known != Some(now.current_leader) {
            let leader = now
                .current_leader
                .and_then(|id| now.membership_config.membership().get_node(&id).map(|n| n.addr.clone()));
            match (&leader, known.is_some()) {
                (Some(leader), _) => {
                    tracing::info!(replica = %me, %leader, term = now.current_term, "notary group: {leader} leads");
                }
                // At start no leader is known yet; that is no news.
                (None, false) => {}
                (None, true) => tracing::warn!(
                    replica = %me, term = now.current_term,
                    "notary group: {me} knows no leader; an election is due"
                ),
            }
            if known.is_some() {
                metrics::counter!("dtenge_notary_leader_changes_total", &labels).increment(1);
            }
            known = Some(now.current_leader);
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
