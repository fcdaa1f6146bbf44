//! Fault injection over [`LocalNetwork`], for deterministic simulation.
//!
//! A [`FaultyNetwork`] hands out buses that seal, check and route envelopes
//! exactly like [`LocalNetwork`]'s own (same gates, same nonce sources, same
//! answer binding), but ask a [`FaultPlan`] what happens to each request
//! first:
//!
//! ```text
//!  bus.call(to, body) ─► seal ─► plan.fate(from, to)
//!     Deliver     ─► deliver ─► accept answer ─► Ok / the callee's refusal
//!     Cut         ─► Unreachable (the link is partitioned; nothing sent)
//!     LoseRequest ─► Timeout (nothing delivered)
//!     LoseAnswer  ─► deliver (the callee acts) ─► Timeout (answer dropped)
//!     Duplicate   ─► deliver ─► deliver the same envelope again (its gate
//!                    must refuse it as a replay) ─► the first answer
//!     Delay       ─► Timeout now; the envelope is held and delivered later by
//!                    [`FaultyNetwork::deliver_held`], after newer messages
//!                    (reordering), unless it went stale meanwhile
//! ```
//!
//! The plan decides, so all randomness (and any clock movement, e.g. a
//! latency per message) lives in the plan: a seeded plan driven by one task
//! gives the same fates in the same order on every run.
//!
//! Invariant: a fault never forges or alters an envelope; everything the
//! callee sees passed its [`Gate`](crate::Gate) like any other message.

use std::sync::{Arc, Mutex, PoisonError};

use dtenge_crypto::Signer;
use dtenge_types::ParticipantId;

use crate::exchange::{accept_answer, check_body_size};
use crate::local::Identity;
use crate::{Bus, Direction, Envelope, LocalNetwork, NetError};

/// What the network does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fate {
    /// Delivered, and the answer comes back.
    Deliver,
    /// The link is partitioned: nothing is sent, the caller gets `Unreachable`.
    Cut,
    /// The request is lost: nothing is delivered, the caller times out.
    LoseRequest,
    /// The request is delivered and handled, its answer lost: the caller times out.
    LoseAnswer,
    /// The same envelope arrives twice; the caller gets the first answer.
    Duplicate,
    /// Held back and delivered later (see [`FaultyNetwork::deliver_held`]); the caller times out.
    Delay,
}

/// Decides the fate of each request. Implementations own the randomness.
pub trait FaultPlan: Send + Sync + 'static {
    /// What happens to the request `from` → `to` being sent now.
    fn fate(&self, from: &ParticipantId, to: &ParticipantId) -> Fate;
    /// Whether a held envelope may be delivered over this link now (false
    /// while it is partitioned).
    fn link_up(&self, from: &ParticipantId, to: &ParticipantId) -> bool {
        let _ = (from, to);
        true
    }
}

/// What the faulty network did, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests delivered with their answer.
    pub delivered: u64,
    /// Requests refused because their link was cut.
    pub cut: u64,
    /// Requests lost before delivery.
    pub lost_requests: u64,
    /// Answers lost after the callee acted.
    pub lost_answers: u64,
    /// Requests delivered twice.
    pub duplicated: u64,
    /// Duplicated requests the callee did not answer twice: the second copy
    /// refused at its gate (a replay, or stale once the clock moved on) or
    /// either copy not delivered (should equal `duplicated`).
    pub duplicates_refused: u64,
    /// Duplicated requests the callee answered twice: a replay hole (must
    /// stay 0).
    pub duplicates_admitted: u64,
    /// Requests held back.
    pub held: u64,
    /// Held requests delivered late and accepted by the callee's gate.
    pub late_accepted: u64,
    /// Held requests the callee's gate refused on late delivery (stale).
    pub late_refused: u64,
}

/// A [`LocalNetwork`] whose buses lose, duplicate, delay and reorder
/// messages and respect partitions, as a [`FaultPlan`] decides.
pub struct FaultyNetwork {
    network: Arc<LocalNetwork>,
    plan: Arc<dyn FaultPlan>,
    held: Mutex<Vec<Envelope>>,
    stats: Mutex<FaultStats>,
}

impl FaultyNetwork {
    /// Wraps `network`; handlers are still registered on it.
    pub fn new(network: Arc<LocalNetwork>, plan: Arc<dyn FaultPlan>) -> Arc<Self> {
        Arc::new(FaultyNetwork { network, plan, held: Mutex::default(), stats: Mutex::default() })
    }

    /// The underlying network (to register handlers).
    pub fn network(&self) -> &Arc<LocalNetwork> {
        &self.network
    }

    /// A bus that calls as `id` through the faults, signing with `key`.
    pub fn bus(self: &Arc<Self>, id: ParticipantId, key: Arc<dyn Signer>) -> Arc<dyn Bus> {
        let identity = self.network.identity(&id);
        Arc::new(FaultyBus { me: id, key, faulty: Arc::clone(self), identity })
    }

    /// How many envelopes are held back.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The counters so far.
    pub fn stats(&self) -> FaultStats {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn count(&self, update: impl FnOnce(&mut FaultStats)) {
        update(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Delivers up to `count` held envelopes whose link is up, one at a time,
    /// `pick(n)` choosing which of the `n` eligible ones goes next (an index
    /// below `n`; out-of-range picks wrap). Their answers go nowhere: the
    /// callers gave up long ago. Returns how each delivery went, in order.
    pub async fn deliver_held(
        &self,
        count: usize,
        mut pick: impl FnMut(usize) -> usize,
    ) -> Vec<(ParticipantId, ParticipantId, Result<(), NetError>)> {
        let mut out = Vec::new();
        for _ in 0..count {
            let envelope = {
                let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
                let eligible: Vec<usize> =
                    (0..held.len()).filter(|&i| self.plan.link_up(&held[i].from, &held[i].to)).collect();
                if eligible.is_empty() {
                    break;
                }
                let chosen = eligible[pick(eligible.len()) % eligible.len()];
                held.remove(chosen)
            };
            let (from, to) = (envelope.from.clone(), envelope.to.clone());
            let result = self.network.deliver(envelope).await.map(|_| ());
            match &result {
                Ok(()) => self.count(|s| s.late_accepted += 1),
                Err(_) => self.count(|s| s.late_refused += 1),
            }
            out.push((from, to, result));
        }
        out
    }
}

struct FaultyBus {
    me: ParticipantId,
    key: Arc<dyn Signer>,
    faulty: Arc<FaultyNetwork>,
    identity: Identity,
}

#[async_trait::async_trait]
impl Bus for FaultyBus {
    fn me(&self) -> &ParticipantId {
        &self.me
    }

    async fn call(&self, to: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, NetError> {
        check_body_size(&body)?;
        let faulty = &self.faulty;
        let (clock, evidence) = faulty.network.clock_and_evidence();
        let request = Envelope::seal(
            self.me.clone(),
            to.clone(),
            clock.now(),
            self.identity.nonces.next(Direction::Request),
            body,
            self.key.as_ref(),
        );
        let digest = request.digest();
        let timeout = || NetError::Timeout { to: to.clone() };
        match faulty.plan.fate(&self.me, to) {
            Fate::Cut => {
                faulty.count(|s| s.cut += 1);
                Err(NetError::Unreachable { to: to.clone(), reason: format!("the link {} ↔ {to} is cut", self.me) })
            }
            Fate::LoseRequest => {
                faulty.count(|s| s.lost_requests += 1);
                Err(timeout())
            }
            Fate::Delay => {
                faulty.count(|s| s.held += 1);
                faulty.held.lock().unwrap_or_else(PoisonError::into_inner).push(request);
                Err(timeout())
            }
            Fate::LoseAnswer => {
                faulty.count(|s| s.lost_answers += 1);
                let _ = faulty.network.deliver(request).await;
                Err(timeout())
            }
            Fate::Duplicate => {
                faulty.count(|s| s.duplicated += 1);
                let first = faulty.network.deliver(request.clone()).await;
                let second = faulty.network.deliver(request).await;
                // Admitted twice only if the callee answered both copies. A
                // handler's refusal is an answer too (`Ok`); an error means
                // the copy never reached the handler: refused at the gate —
                // as a replay, or as stale when the clock moved on while
                // the first was handled — or not delivered at all.
                if first.is_ok() && second.is_ok() {
                    faulty.count(|s| s.duplicates_admitted += 1);
                } else {
                    faulty.count(|s| s.duplicates_refused += 1);
                }
                accept_answer(&self.identity.gate, to, digest, &first?, evidence.as_ref())
            }
            Fate::Deliver => {
                faulty.count(|s| s.delivered += 1);
                let answer = faulty.network.deliver(request).await?;
                accept_answer(&self.identity.gate, to, digest, &answer, evidence.as_ref())
            }
        }
    }
}
