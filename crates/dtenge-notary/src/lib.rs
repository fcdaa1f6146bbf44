//! # dtenge-notary
//!
//! Checks that every token is spent once (SPEC §5), seeing only commitments:
//! never amounts, owners or markings.
//!
//! - [`messages`]: the signed batch a node sends, receipts and rejections;
//! - [`engine`]: the pure spent-set state machine (`decide`, then `apply`);
//! - [`service`]: the running notary: lock, journal with group commit, message handler.
//!
//! Invariants: an input commitment is spent by at most one transaction; a
//! retried transaction gets the same receipt body; nothing is answered before the
//! record that decided it is durable (the runtime's job).

pub mod engine;
pub mod messages;
pub mod service;

pub use engine::{Decision, NotaryRecord, NotaryState};
pub use messages::{
    BatchRefusal, MAX_BATCH, MAX_PROOF_DEPTH, NotariseBatch, NotaryRejection, Receipt, ReceiptBody, ReceiptError,
    ReceiptVerifier, TxClaim, Verdict,
};
pub use service::{NotaryAnswer, NotaryCallError, NotaryError, NotaryRequest, NotaryService};
