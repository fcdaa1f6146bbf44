//! # dtenge-net
//!
//! The message interface between dtenge services: notary, oracle, directory
//! and the participant nodes (NBK, STBs, Treasury). Services talk only through
//! it, so the same service code runs in one process ([`LocalNetwork`]) or as
//! many ([`serve`] + [`HttpBus`]).
//!
//! ```text
//!  service A                                                  service B
//!  ─────────                                                  ─────────
//!  bus.call(B, body) ──► Envelope::seal(A key) ──► transport ──► Gate::admit (B's directory)
//!                                                                 │ evidence.keep(request)
//!                                                                 ▼
//!                                                            Handler::handle(&A, body)
//!                                                                 │
//!  Ok(answer body) ◄── Gate::admit (A's directory) ◄── transport ◄── Envelope::seal(B key, Answer)
//!  evidence.keep(answer)
//! ```
//!
//! A transport is either the in-process router ([`LocalNetwork`]) or HTTP
//! (`POST /rpc` with a borsh [`Envelope`], answered by a borsh [`Envelope`]);
//! both run exactly the same checks ([`Gate`]) and the same answer binding
//! ([`Answer`]).
//!
//! Invariants:
//! * Every message is an [`Envelope`] signed by its sender's EDS key, and is
//!   acted upon only after the receiver checked it against the sender's key in
//!   the receiver's [`Participants`] directory, its freshness by the
//!   receiver's [`Clock`], and its nonce against the replay cache.
//! * Every answer, including a refusal, is signed by the participant called
//!   and bound to the request it answers.
//! * Every accepted envelope is handed to [`Evidence`].
//! * Bodies are opaque here: each service crate defines its own borsh
//!   messages. No body exceeds [`MAX_BODY_BYTES`].
//! * Every envelope carries its protocol version; a service reads and answers
//!   [`MIN_PROTOCOL_VERSION`]..=[`PROTOCOL_VERSION`] and writes to each peer the
//!   newest version both speak, or refuses naming both ([`NetError::ProtocolMismatch`]).
//! * Over the network, a participant whose registry entry names a TLS key is
//!   reached only over mutually authenticated TLS pinned to that key
//!   ([`tls`]); the directory can be replaced while services run
//!   ([`Participants::replace`]), and a revoked key is refused everywhere
//!   ([`NetError::RevokedKey`]).

pub mod authz;
mod clock;
mod cuts;
mod envelope;
mod error;
mod evidence;
mod exchange;
mod faults;
mod gate;
pub mod horizon;
mod http;
mod http_bus;
mod local;
mod participants;
pub mod telemetry;
pub mod tls;
mod typed;

pub use clock::{Clock, ManualClock, SystemClock};
pub use cuts::CutLinks;
pub use envelope::{
    ANSWER_NONCE_BIT, Direction, ENVELOPE_DOMAIN, ENVELOPE_DOMAIN_V1, Envelope, Header, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION, ProtocolRange,
};
pub use error::{HandlerError, NetError};
pub use evidence::{Evidence, MEMORY_EVIDENCE_LIMIT, MemoryEvidence, NoEvidence};
pub use exchange::{Answer, Outcome};
pub use faults::{Fate, FaultPlan, FaultStats, FaultyNetwork};
pub use gate::{Gate, MAX_AGE_MS, MAX_FUTURE_MS, MAX_REPLAY_NONCES_PER_SENDER, NonceSource, REPLAY_WINDOW_MS};
pub use horizon::{HORIZON_AHEAD_MS, HorizonError, ReplayHorizon};
pub use http::{LocalService, PROTOCOL_HEADER, ServerConfig, router, serve, versioned_resource};
pub use http_bus::{HttpBus, HttpBusConfig, MAX_RESEALS};
pub use local::LocalNetwork;
pub use participants::{DirectoryError, ParticipantInfo, Participants, RevokedKey, Role};
pub use tls::{TlsError, TlsIdentity, serve_router};
pub use typed::{BusExt, Request, decode_body, decode_request};

use dtenge_types::ParticipantId;

/// Largest message body (16 MiB). Larger calls are refused before signing;
/// larger HTTP requests are refused before they are read.
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// Largest encoded envelope: a full body plus room for the other fields and
/// the answer wrapper.
pub const MAX_ENVELOPE_BYTES: usize = MAX_BODY_BYTES + 4096;
/// How long a call waits for its answer unless configured otherwise.
pub const DEFAULT_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A service's request handler: gets the verified sender and the body,
/// returns the answer body.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one request from `from`, whose signature has been verified.
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError>;
}

/// Sends requests as one participant. Implemented by the in-process and the
/// network transport.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// The participant this bus speaks for.
    fn me(&self) -> &ParticipantId;
    /// Sends `body` to `to` and waits for its (verified) answer body.
    async fn call(&self, to: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, NetError>;
}
