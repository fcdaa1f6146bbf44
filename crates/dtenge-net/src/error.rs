//! The crate's two error types.
//!
//! * [`HandlerError`] is what a *service* says when it refuses a request. It
//!   travels back to the caller inside the signed answer, so it is borsh
//!   encoded; its variants are append-only on the wire.
//! * [`NetError`] is everything a *caller* can get back from
//!   [`Bus::call`](crate::Bus::call): the receiver refused the envelope
//!   (unknown sender, bad signature, stale, replayed, misdirected), the
//!   service refused the request ([`NetError::Refused`]), or the message never
//!   made it (unreachable, timeout, too large, undecodable).
//!
//! Receiver-side rejections also travel back signed (see
//! [`Outcome::Rejected`](crate::Outcome::Rejected)), which is why `NetError`
//! is borsh encoded too. Its variants are append-only on the wire: never
//! reorder or remove one.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{ParticipantId, Timestamp};

use crate::ProtocolRange;

/// Why a service refused a request. Sent back signed by the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, BorshSerialize, BorshDeserialize)]
pub enum HandlerError {
    /// The request is malformed or breaks a rule; retrying it unchanged will fail again.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The sender may not ask for this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The service cannot answer now (overloaded, a dependency is down); retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Why a call did not produce an answer body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, BorshSerialize, BorshDeserialize)]
pub enum NetError {
    /// The participant is not in the directory ([`Participants`](crate::Participants)).
    #[error("unknown participant {0}: add it to the participants directory")]
    UnknownParticipant(ParticipantId),
    /// The envelope's signature does not verify against the sender's registered key.
    #[error("bad signature on a message claiming to be from {from}")]
    BadSignature {
        /// The claimed sender.
        from: ParticipantId,
    },
    /// The envelope was sent more than 60 s before, or more than 10 s after,
    /// the receiver's clock. Check the clocks of both participants.
    #[error("stale message from {from}: sent at {sent_at:?}, receiver time {now:?}")]
    Stale {
        /// The sender.
        from: ParticipantId,
        /// The envelope's time.
        sent_at: Timestamp,
        /// The receiver's time.
        now: Timestamp,
    },
    /// The receiver has already accepted an envelope with this (sender, nonce).
    #[error("replayed message from {from}: nonce {nonce} already seen")]
    Replayed {
        /// The sender.
        from: ParticipantId,
        /// The repeated nonce.
        nonce: u64,
    },
    /// The message could not be delivered (partitioned, no endpoint, connection refused…).
    #[error("{to} is unreachable: {reason}")]
    Unreachable {
        /// The addressee.
        to: ParticipantId,
        /// What went wrong.
        reason: String,
    },
    /// The service refused the request; its reason, signed by the service.
    #[error("refused: {0}")]
    Refused(HandlerError),
    /// Bytes that should be an envelope or an answer are not.
    #[error("cannot decode message: {0}")]
    Decode(String),
    /// No answer within the call timeout.
    #[error("no answer from {to} in time")]
    Timeout {
        /// The addressee.
        to: ParticipantId,
    },
    /// The envelope is addressed to someone else: a request whose `to` is not
    /// the receiver, or an answer that does not come from the participant called.
    #[error("misdirected message: expected {expected}, got {got}")]
    Misdirected {
        /// Who should have been named.
        expected: ParticipantId,
        /// Who was named.
        got: ParticipantId,
    },
    /// A body larger than [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES); split it.
    #[error("message of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The size offered (bytes).
        size: u64,
        /// The limit (bytes).
        max: u64,
    },
    /// The two sides share no protocol version (a rolling upgrade skipped a
    /// step, or one side is too old): upgrade the older side.
    #[error(
        "{peer} speaks protocol {peer_speaks}, this service speaks {we_speak}: no version in common; upgrade the \
         older side (order: notary, oracle, directory, NBK, banks — docs/deploy.md)"
    )]
    ProtocolMismatch {
        /// The other side.
        peer: ParticipantId,
        /// The versions it speaks.
        peer_speaks: ProtocolRange,
        /// The versions this side speaks.
        we_speak: ProtocolRange,
    },
    /// The envelope's sender is not the participant whose registered TLS key
    /// opened the connection it came on.
    #[error("a message from {from} arrived on a TLS connection not authenticated with {from}'s registered TLS key")]
    TlsIdentity {
        /// The claimed sender.
        from: ParticipantId,
    },
    /// The envelope is signed with a key the signed participant registry has
    /// revoked (rotated or withdrawn): the sender must use its current key.
    #[error(
        "{from}'s key {key} was revoked in registry {serial} ({reason}): messages signed with it are refused; \
         {from} must sign with its current registered key"
    )]
    RevokedKey {
        /// The sender.
        from: ParticipantId,
        /// The revoked public key (hex).
        key: String,
        /// The registry serial that revoked it.
        serial: u64,
        /// Why (rotated, compromised, left the platform…).
        reason: String,
    },
    /// The receiver restarted and the envelope was sent before the first
    /// time its new run accepts (its replay horizon): the previous run may
    /// have accepted it, so it is never accepted again. The sender seals the
    /// request again once its clock has passed `not_before`.
    #[error(
        "message from {from} sent at {sent_at:?}, before the receiver's replay horizon {not_before:?} (it restarted): \
         seal the request again with a later time"
    )]
    SignedBeforeRestart {
        /// The sender.
        from: ParticipantId,
        /// The envelope's time.
        sent_at: Timestamp,
        /// The first `sent_at` the receiver accepts.
        not_before: Timestamp,
    },
}
