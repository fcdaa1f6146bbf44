//! # dtenge-notary
//!
//! Checks that every token is spent once (SPEC §5), seeing only commitments:
//! never amounts, owners or markings.
//!
//! - [`messages`]: the signed batch a node sends, receipts and rejections;
//! - [`engine`]: the spent-set state machine (`decide`, then `apply`): the live
//!   set and recent history in memory;
//! - [`format`]: format versions of the journal and snapshot (and how version 0 reads);
//! - [`cold`]: older history on disk (fjall) or in memory, behind a filter;
//! - [`service`]: the running notary: lock, journal with group commit, message handler;
//! - [`group`]: the notary as a replicated group on openraft (N replicas);
//! - [`protocol`]: the messages on the bus (nodes ↔ notary, replica ↔ replica);
//! - [`client`]: how a node reaches the notary: every replica, the leader followed, retries.
//!
//! Invariants: an input commitment is spent by at most one transaction; a
//! retried transaction gets the same receipt body; nothing is answered before the
//! record that decided it is durable (the runtime's job).

pub mod client;
pub mod cold;
pub mod engine;
pub mod format;
pub mod group;
mod live;
pub mod messages;
pub mod protocol;
pub mod service;

pub use client::{NotaryClient, NotaryClientError};
pub use cold::{
    ColdBackend, ColdChunk, ColdError, ColdKey, ColdStore, FILTER_FILE, FilterOrigin, FjallCold, MemoryCold, WriteMode,
};
pub use engine::{ColdProbe, Decision, HotCounts, MAX_FROZEN, NotaryConfig, NotaryState};
pub use format::NotaryRecord;
pub use group::replica::{GroupOptions, NotaryReplica, ReplicaStores};
pub use messages::{
    BatchRefusal, HostConsent, InputOpening, MAX_BATCH, MAX_PROOF_DEPTH, NotariseBatch, NotaryRejection, Receipt,
    ReceiptBody, ReceiptError, ReceiptVerifier, RootCheck, TxClaim, Verdict,
};
pub use protocol::{NotaryAnswer, NotaryRequest, NotaryStatus};
pub use service::{NotaryCallError, NotaryError, NotaryService};
