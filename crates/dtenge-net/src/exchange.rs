//! One request/answer exchange, the part both transports share.
//!
//! ```text
//!  caller                                   callee
//!  ──────                                   ──────
//!  seal request (caller key, request nonce)
//!        ───────────── request ─────────────►
//!                                           Gate::admit (Direction::Request)
//!                                           evidence.keep(request)
//!                                           handler.handle(from, body)
//!                                           seal Answer{in_reply_to, outcome}
//!                                             (callee key, answer nonce)
//!        ◄───────────── answer ──────────────
//!  Gate::admit (Direction::Answer)
//!  answer.from == callee, in_reply_to == request digest
//!  evidence.keep(answer)
//!  Outcome::Done(body) → Ok(body)
//!  Outcome::Refused(e) → Err(NetError::Refused(e))
//!  Outcome::Rejected(e) → Err(e)
//! ```
//!
//! Invariants:
//! * An answer is bound to its request by the request's digest, so an answer
//!   cannot be swapped with another one, even a fresh one from the same callee.
//! * The handler only ever sees requests that passed the callee's gate, and
//!   is told the verified sender.
//! * A request the callee's gate refuses gets a signed [`Outcome::Rejected`]
//!   over the network (so the caller learns why, authentically); the handler
//!   never runs for it.

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Digest, Signer};
use dtenge_types::ParticipantId;

use crate::envelope::Header;
use crate::gate::NonceSource;
use crate::{Clock, Direction, Envelope, Evidence, Gate, HandlerError, MAX_BODY_BYTES, MAX_ENVELOPE_BYTES, NetError};

/// The body of every answer envelope.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Answer {
    /// [`Envelope::digest`] of the request answered.
    pub in_reply_to: Digest,
    /// What came of it.
    pub outcome: Outcome,
}

/// What came of a request. Variants are append-only on the wire.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Outcome {
    /// The handler's answer body.
    Done(Vec<u8>),
    /// The handler refused the request.
    Refused(HandlerError),
    /// The callee's gate refused the request envelope; the handler did not run.
    Rejected(NetError),
}

impl Answer {
    /// Decodes an answer body (canonical, bounded).
    pub fn decode(bytes: &[u8]) -> Result<Answer, NetError> {
        dtenge_types::encoding::decode(bytes, MAX_ENVELOPE_BYTES).map_err(|e| NetError::Decode(e.to_string()))
    }
}

/// A callee identity: who answers, with which key and nonces.
pub(crate) struct Responder {
    pub(crate) me: ParticipantId,
    pub(crate) key: Arc<dyn Signer>,
    pub(crate) nonces: Arc<NonceSource>,
}

impl Responder {
    /// Seals the answer to the request from `caller` with digest
    /// `in_reply_to`, in the request's protocol version and trace (`header`).
    pub(crate) fn answer(
        &self,
        caller: &ParticipantId,
        in_reply_to: Digest,
        outcome: Outcome,
        header: Header,
        clock: &dyn Clock,
    ) -> Envelope {
        let body = dtenge_types::encoding::encode(&Answer { in_reply_to, outcome });
        Envelope::seal_as(
            header,
            self.me.clone(),
            caller.clone(),
            clock.now(),
            self.nonces.next(Direction::Answer),
            body,
            self.key.as_ref(),
        )
    }
}

/// The caller's checks on an answer (see the module diagram); the answer
/// body on success.
pub(crate) fn accept_answer(
    gate: &Gate,
    callee: &ParticipantId,
    request_digest: Digest,
    answer: &Envelope,
    evidence: &dyn Evidence,
) -> Result<Vec<u8>, NetError> {
    if &answer.from != callee {
        return Err(NetError::Misdirected { expected: callee.clone(), got: answer.from.clone() });
    }
    gate.admit(answer, Direction::Answer)?;
    let decoded = Answer::decode(&answer.body)?;
    if decoded.in_reply_to != request_digest {
        return Err(NetError::Decode(format!(
            "answer from {callee} is for request {}, not {}",
            decoded.in_reply_to.short(),
            request_digest.short()
        )));
    }
    evidence.keep(answer);
    match decoded.outcome {
        Outcome::Done(body) => Ok(body),
        Outcome::Refused(error) => Err(NetError::Refused(error)),
        Outcome::Rejected(error) => Err(error),
    }
}

/// Refuses bodies over [`MAX_BODY_BYTES`] before anything is signed or sent.
pub(crate) fn check_body_size(body: &[u8]) -> Result<(), NetError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(NetError::TooLarge { size: body.len() as u64, max: MAX_BODY_BYTES as u64 });
    }
    Ok(())
}

/// Turns a handler's result into an outcome, refusing answers too large to send.
pub(crate) fn outcome_of(result: Result<Vec<u8>, HandlerError>) -> Outcome {
    match result {
        Ok(body) if body.len() > MAX_BODY_BYTES => {
            Outcome::Rejected(NetError::TooLarge { size: body.len() as u64, max: MAX_BODY_BYTES as u64 })
        }
        Ok(body) => Outcome::Done(body),
        Err(error) => Outcome::Refused(error),
    }
}
