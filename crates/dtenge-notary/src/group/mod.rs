//! The notary as a replicated group (SPEC §11, issue 19): N replicas (N odd)
//! on openraft, each with its own key, journal and cold store.
//!
//! ```text
//!  node ──Notarise(batch)──► leader ── checks the batch (sender, signature) ──► log entry LogBatch{batch, at}
//!                              │  replicated; committed once a majority has it durable (fdatasync)
//!                              ▼
//!           every replica: decide + apply (same state, same order, same time → same receipt bodies)
//!                              │
//!  node ◄── verdicts, receipts under the leader's signature (a member of the group) ──┘
//!
//!  follower ──Notarise──► NotLeader(leader) : the node's `NotaryClient` follows it
//! ```
//!
//! - [`wire`]: the log entry and the replicas' messages, in borsh;
//! - [`log`]: the Raft log over a `dtenge-store` journal;
//! - [`machine`]: the engine as openraft's state machine, snapshots;
//! - [`network`]: openraft's RPCs over the platform's `Bus`;
//! - [`replica`]: one running replica: openraft, the handler, the client path.
//!
//! Receipts are signed by the leader that answered, with its own registered
//! key; a node accepts a receipt signed by any replica of the group (every
//! participant with the notary role). Why: the group tolerates crashes, not
//! lies — any replica's key can already make the group's log say anything
//! to a replica that trusts it — so a quorum certificate would add a round
//! trip to every batch and protect against nothing the model covers; each
//! replica keeps its own key, so one replica's key can be revoked in the
//! registry without re-keying the group.

pub mod log;
pub mod machine;
pub mod network;
pub mod replica;
pub mod wire;

use openraft::BasicNode;

pub use machine::{Applied, SnapshotData};
pub use wire::LogBatch;

openraft::declare_raft_types!(
    /// The notary group's Raft types: node ids are numbers, each node names
    /// its participant id (`NOTARY-2`) in `BasicNode::addr`.
    pub GroupConfig:
        D = LogBatch,
        R = Applied,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<GroupConfig>,
        SnapshotData = SnapshotData,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<GroupConfig>,
);
