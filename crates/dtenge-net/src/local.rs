//! The in-process transport: a router of handlers by participant id.
//!
//! ```text
//!  LocalBus(A).call(B, body)
//!    │ seal request with A's key, A's request nonce
//!    ▼
//!  LocalNetwork::deliver(request)
//!    │ partition check (A and B) ─► Unreachable
//!    │ B registered?             ─► UnknownParticipant / Unreachable
//!    │ B's Gate::admit           ─► Misdirected / UnknownParticipant / Stale / BadSignature / Replayed
//!    │ evidence.keep(request)
//!    │ B's handler.handle(&A, body)
//!    │ seal Answer with B's key, B's answer nonce
//!    │ partition check again (a partition during handling drops the answer)
//!    ▼
//!  A's Gate::admit(answer), binding to the request, evidence.keep(answer)
//! ```
//!
//! The checks are exactly those of the network path ([`crate::serve`] +
//! [`crate::HttpBus`]); only the sockets are missing. One difference: a
//! request refused by the callee's gate comes back as the error itself rather
//! than as a signed refusal, since no byte left the process.
//!
//! Invariants:
//! * Each identity has one [`Gate`] and one [`NonceSource`] in the network,
//!   shared by its bus and its registration, so re-registering a handler or
//!   asking for a second bus never resets the replay cache or reuses a nonce.
//! * Evidence gets each envelope once: the request when the callee's gate
//!   accepts it, the answer when the caller's gate accepts it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use dtenge_crypto::Signer;
use dtenge_types::ParticipantId;

use crate::envelope::{Header, PROTOCOL_VERSION};
use crate::exchange::{Responder, accept_answer, check_body_size, outcome_of};
use crate::gate::NonceSource;
use crate::telemetry;
use crate::{Bus, Clock, DEFAULT_CALL_TIMEOUT, Direction, Envelope, Evidence, Gate, Handler, NetError, Participants};

/// The in-process transport. See the module docs.
pub struct LocalNetwork {
    participants: Arc<Participants>,
    clock: Arc<dyn Clock>,
    evidence: Arc<dyn Evidence>,
    timeout: Duration,
    served: RwLock<HashMap<ParticipantId, Arc<Served>>>,
    partitioned: RwLock<HashSet<ParticipantId>>,
    identities: Mutex<HashMap<ParticipantId, Identity>>,
}

/// Per-identity state shared by its bus and its registration.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) gate: Arc<Gate>,
    pub(crate) nonces: Arc<NonceSource>,
}

struct Served {
    responder: Responder,
    handler: Arc<dyn Handler>,
    gate: Arc<Gate>,
}

impl LocalNetwork {
    /// An empty network; calls time out after [`DEFAULT_CALL_TIMEOUT`].
    pub fn new(participants: Arc<Participants>, clock: Arc<dyn Clock>, evidence: Arc<dyn Evidence>) -> Arc<Self> {
        Self::with_timeout(participants, clock, evidence, DEFAULT_CALL_TIMEOUT)
    }

    /// An empty network whose calls time out after `timeout`.
    pub fn with_timeout(
        participants: Arc<Participants>,
        clock: Arc<dyn Clock>,
        evidence: Arc<dyn Evidence>,
        timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(LocalNetwork {
            participants,
            clock,
            evidence,
            timeout,
            served: RwLock::default(),
            partitioned: RwLock::default(),
            identities: Mutex::default(),
        })
    }

    /// Makes `id` serve requests with `handler`, answering with `key`
    /// (replaces an earlier registration of `id`).
    pub fn register(&self, id: ParticipantId, key: Arc<dyn Signer>, handler: Arc<dyn Handler>) {
        self.warn_on_key_mismatch(&id, key.as_ref());
        let identity = self.identity(&id);
        let responder = Responder { me: id.clone(), key, nonces: identity.nonces };
        let served = Arc::new(Served { responder, handler, gate: identity.gate });
        self.served.write().unwrap_or_else(PoisonError::into_inner).insert(id, served);
    }

    /// Stops serving: forgets every registration. A handler usually holds a
    /// bus, which holds this network, so its owner calls this when it is
    /// done with the services (the platform, when dropped) — else they would
    /// keep each other in memory. A call afterwards is answered
    /// [`NetError::Unreachable`].
    pub fn shut_down(&self) {
        let served = std::mem::take(&mut *self.served.write().unwrap_or_else(PoisonError::into_inner));
        // Freed once the lock is released.
        drop(served);
    }

    /// A bus that calls as `id`, signing with `key`. The participant may also serve.
    pub fn bus(self: &Arc<Self>, id: ParticipantId, key: Arc<dyn Signer>) -> Arc<dyn Bus> {
        self.warn_on_key_mismatch(&id, key.as_ref());
        let identity = self.identity(&id);
        Arc::new(LocalBus { me: id, key, network: Arc::clone(self), identity })
    }

    /// Test hook: drop every message to or from `id` until [`LocalNetwork::heal`].
    pub fn partition(&self, id: &ParticipantId) {
        self.partitioned.write().unwrap_or_else(PoisonError::into_inner).insert(id.clone());
    }

    /// Test hook: undo [`LocalNetwork::partition`].
    pub fn heal(&self, id: &ParticipantId) {
        self.partitioned.write().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// Routes one sealed request to its addressee and returns the sealed
    /// answer, running the callee-side checks. [`Bus::call`] uses it; tests use
    /// it to inject crafted envelopes.
    pub async fn deliver(&self, request: Envelope) -> Result<Envelope, NetError> {
        self.check_link(&request.from, &request.to)?;
        let served = self.served.read().unwrap_or_else(PoisonError::into_inner).get(&request.to).cloned();
        let Some(served) = served else {
            if self.participants.get(&request.to).is_none() {
                return Err(NetError::UnknownParticipant(request.to));
            }
            return Err(NetError::Unreachable { to: request.to, reason: "no handler registered".into() });
        };
        served.gate.admit(&request, Direction::Request).inspect_err(|error| {
            tracing::warn!(from = %request.from, to = %request.to, %error, "request refused");
        })?;
        self.evidence.keep(&request);
        let digest = request.digest();
        let header = Header { version: request.version, trace: request.trace };
        let Envelope { from, to, body, trace, .. } = request;
        // As over HTTP: the callee's lines carry the trace in an `rpc` span.
        let span = tracing::info_span!("rpc", trace = %telemetry::TraceId(trace), from = %from, to = %to);
        let handled = telemetry::in_trace(trace, served.handler.handle(&from, body));
        let outcome = outcome_of(tracing::Instrument::instrument(handled, span).await);
        let answer = served.responder.answer(&from, digest, outcome, header, self.clock.as_ref());
        // A partition that started while the handler ran swallows the answer.
        self.check_link(&from, &to)?;
        Ok(answer)
    }

    /// The clock and evidence the network stamps and keeps messages with.
    pub(crate) fn clock_and_evidence(&self) -> (&Arc<dyn Clock>, &Arc<dyn Evidence>) {
        (&self.clock, &self.evidence)
    }

    fn check_link(&self, from: &ParticipantId, to: &ParticipantId) -> Result<(), NetError> {
        let partitioned = self.partitioned.read().unwrap_or_else(PoisonError::into_inner);
        for side in [from, to] {
            if partitioned.contains(side) {
                return Err(NetError::Unreachable { to: to.clone(), reason: format!("{side} is partitioned") });
            }
        }
        Ok(())
    }

    pub(crate) fn identity(&self, id: &ParticipantId) -> Identity {
        let mut identities = self.identities.lock().unwrap_or_else(PoisonError::into_inner);
        identities
            .entry(id.clone())
            .or_insert_with(|| Identity {
                gate: Arc::new(Gate::new(id.clone(), Arc::clone(&self.participants), Arc::clone(&self.clock))),
                nonces: Arc::new(NonceSource::new(self.clock.now())),
            })
            .clone()
    }

    fn warn_on_key_mismatch(&self, id: &ParticipantId, key: &dyn Signer) {
        match self.participants.get(id) {
            Some(info) if info.public_key == key.public_key() => {}
            Some(_) => tracing::warn!(%id, "key differs from the directory: its messages will be refused"),
            None => tracing::warn!(%id, "not in the directory: its messages will be refused"),
        }
    }
}

/// A participant's handle on a [`LocalNetwork`].
struct LocalBus {
    me: ParticipantId,
    key: Arc<dyn Signer>,
    network: Arc<LocalNetwork>,
    identity: Identity,
}

#[async_trait::async_trait]
impl Bus for LocalBus {
    fn me(&self) -> &ParticipantId {
        &self.me
    }

    async fn call(&self, to: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, NetError> {
        check_body_size(&body)?;
        let network = &self.network;
        let request = Envelope::seal_as(
            Header { version: PROTOCOL_VERSION, trace: telemetry::current_trace() },
            self.me.clone(),
            to.clone(),
            network.clock.now(),
            self.identity.nonces.next(Direction::Request),
            body,
            self.key.as_ref(),
        );
        let digest = request.digest();
        let answer = tokio::time::timeout(network.timeout, network.deliver(request))
            .await
            .map_err(|_| NetError::Timeout { to: to.clone() })??;
        accept_answer(&self.identity.gate, to, digest, &answer, network.evidence.as_ref())
    }
}
