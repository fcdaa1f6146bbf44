//! The oracle as a running service (SPEC §5): the engine behind a lock, a
//! journal with group commit, signed attestations, and notices for nodes.
//!
//! ```text
//!  provider ── Register*/Report/Cancel ──► authorise (sender's registries) ─► record ─► journal ─► apply
//!  node ────── Attest{body, request} ────► engine.attest (reserve) ─► journal ─► sign over (tx id, statement)
//!  node ────── Confirm{tx} ──────────────► ask the notary for the receipt ─► Confirmed / (later) Released
//!  node ────── Notices{after} ───────────► events its DAs are party to (pull: a node that was down catches up)
//!  tick ───────────────────────────────────► settle campaigns; free reservations whose tx the notary never committed
//! ```
//!
//! Invariant: an answer is sent only after the record it depends on is
//! durable; a reservation is freed only after the notary says the transaction
//! is not committed and its window has closed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::Signer;
use dtenge_net::authz::Authorized;
use dtenge_net::{Bus, Clock, Handler, HandlerError, Participants};
use dtenge_notary::NotaryClient;
use dtenge_store::{Journal, Recovery, StoreError};
use dtenge_types::{
    Address, Amount, Attestation, ContractNo, Currency, EventId, InvoiceId, ParameterId, ParticipantId, TxBody, TxId,
};

use crate::model::{
    AttestRequest, Contract, ContractAmendment, ContractState, EventSpec, EventState, FxRate, Invoice, InvoiceState,
    RateState, Registry,
};
pub use crate::model::{Notice, NoticeKind};
use crate::{OracleError, OracleRecord, OracleState, sign_statement};

/// What nodes, providers and the operator ask the oracle.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum OracleRequest {
    /// Operator (NBK): register or update an event provider.
    RegisterProvider {
        /// The provider.
        id: ParticipantId,
        /// Its name.
        name: String,
        /// What it may write.
        registries: BTreeSet<Registry>,
    },
    /// Provider: register an event.
    RegisterEvent(EventSpec),
    /// Provider: the event occurred (amount for recurring events).
    ReportOccurrence {
        /// The event.
        event: EventId,
        /// How much it releases.
        amount: Option<Amount>,
    },
    /// Provider: cancel an event that has not occurred.
    CancelEvent {
        /// The event.
        event: EventId,
    },
    /// Provider (Smart Contract Portal): register a marking parameter.
    RegisterParameter {
        /// The state order number.
        id: ParameterId,
        /// Who marks with it.
        initiator: Address,
        /// The initiator's node.
        initiator_node: ParticipantId,
        /// What the order is.
        title: String,
    },
    /// Provider: register a contract under a parameter.
    RegisterContract(Contract),
    /// Provider: change a contract.
    AmendContract {
        /// Its parameter.
        parameter: ParameterId,
        /// Its number.
        contract: ContractNo,
        /// The change.
        amendment: ContractAmendment,
    },
    /// Provider (tax service): register an e-invoice.
    RegisterInvoice(Invoice),
    /// Provider: set an exchange rate.
    SetRate(FxRate),
    /// Node: attest a transaction.
    Attest {
        /// The body (its id is what the attestation signs).
        body: TxBody,
        /// What the body alone does not say.
        request: AttestRequest,
    },
    /// Node: this transaction was committed by the notary.
    Confirm {
        /// The transaction.
        tx: TxId,
    },
    /// Node: notices after sequence number `after`.
    Notices {
        /// The last notice seen.
        after: u64,
    },
    /// Anyone: an event.
    GetEvent(EventId),
    /// Anyone: an e-invoice.
    GetInvoice(InvoiceId),
    /// Anyone: a contract.
    GetContract {
        /// Its parameter.
        parameter: ParameterId,
        /// Its number.
        contract: ContractNo,
    },
    /// Anyone: the current rate.
    GetRate {
        /// Currency given.
        base: Currency,
        /// Currency received.
        quote: Currency,
    },
    /// Anyone: every event.
    ListEvents,
    /// Node: the operation of this transaction was refused before it was
    /// notarised: free its reservation now.
    Abandon {
        /// The transaction.
        tx: TxId,
    },
    /// Anyone: count a stablecoin's supply and reserve now, asking every
    /// participant node for its count, and sign the count (proof of
    /// reserves, `crate::reserves`). The request carries no figures.
    AttestReserves {
        /// The stablecoin.
        stablecoin: Currency,
    },
}

impl dtenge_net::authz::Authorized for OracleRequest {
    fn operation(&self) -> dtenge_net::authz::Operation {
        use dtenge_net::authz::Operation;
        match self {
            OracleRequest::RegisterProvider { .. } => Operation::OracleRegisterProvider,
            OracleRequest::RegisterEvent(_)
            | OracleRequest::ReportOccurrence { .. }
            | OracleRequest::CancelEvent { .. }
            | OracleRequest::RegisterParameter { .. }
            | OracleRequest::RegisterContract(_)
            | OracleRequest::AmendContract { .. }
            | OracleRequest::RegisterInvoice(_)
            | OracleRequest::SetRate(_) => Operation::OracleWrite,
            OracleRequest::Attest { .. } => Operation::OracleAttest,
            OracleRequest::Confirm { .. } => Operation::OracleConfirm,
            OracleRequest::Abandon { .. } => Operation::OracleAbandon,
            OracleRequest::Notices { .. } => Operation::OracleNotices,
            OracleRequest::GetEvent(_)
            | OracleRequest::GetInvoice(_)
            | OracleRequest::GetContract { .. }
            | OracleRequest::GetRate { .. }
            | OracleRequest::ListEvents => Operation::OracleRead,
            OracleRequest::AttestReserves { .. } => Operation::OracleAttestReserves,
        }
    }
}

/// The oracle's answers.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum OracleAnswer {
    /// Done.
    Done,
    /// The signed attestation.
    Attestation(Attestation),
    /// Notices, oldest first.
    Notices(Vec<Notice>),
    /// An event.
    Event(Option<EventState>),
    /// Every event.
    Events(Vec<EventState>),
    /// An e-invoice.
    Invoice(Option<InvoiceState>),
    /// A contract.
    Contract(Option<ContractState>),
    /// A rate.
    Rate(Option<RateState>),
    /// Refused: the stable code and the message for people.
    Refused(crate::OracleRefusal),
    /// A stablecoin's signed supply and reserve.
    Reserves(crate::reserves::ReservesAttestation),
}

impl dtenge_net::Request for OracleRequest {
    type Answer = OracleAnswer;
    const SERVICE: &'static str = "oracle";
}

/// Why the oracle service cannot run.
#[derive(Debug, thiserror::Error)]
pub enum OracleServiceError {
    /// Storage failed.
    #[error("oracle storage: {0}")]
    Store(#[from] StoreError),
    /// The journal does not replay.
    #[error("oracle journal is damaged: {0}")]
    Replay(String),
}

struct Inner {
    state: OracleState,
    notices: Vec<Notice>,
}

/// The running oracle.
pub struct OracleService {
    key: Arc<dyn Signer>,
    participants: Arc<Participants>,
    clock: Arc<dyn Clock>,
    journal: Journal,
    /// The notary (one process or a replicated group), asked for receipts.
    notary: NotaryClient,
    /// The nodes, asked for their count when the oracle counts reserves.
    counts: Arc<dyn crate::reserves::StablecoinCountSource>,
    /// One count of reserves at a time, shared by every request that arrived
    /// before it began (`crate::reserves::Rounds`).
    rounds: crate::reserves::Rounds,
    inner: Mutex<Inner>,
}

impl OracleService {
    /// Recovers from the journal and serves; `counts` is how it asks the
    /// nodes for their count of a stablecoin.
    pub fn recover(
        key: Arc<dyn Signer>,
        participants: Arc<Participants>,
        clock: Arc<dyn Clock>,
        bus: Arc<dyn Bus>,
        counts: Arc<dyn crate::reserves::StablecoinCountSource>,
        journal: Journal,
        recovery: Recovery,
    ) -> Result<Arc<OracleService>, OracleServiceError> {
        let mut inner = Inner { state: OracleState::new(), notices: Vec::new() };
        if let Some((_, bytes)) = &recovery.snapshot {
            let (state, notices) = crate::format::decode_snapshot(bytes)
                .map_err(|e| OracleServiceError::Replay(format!("snapshot: {e}")))?;
            inner = Inner { state, notices };
        }
        for (seq, bytes) in &recovery.records {
            let record = crate::format::decode_record(bytes)
                .map_err(|e| OracleServiceError::Replay(format!("record {seq}: {e}")))?;
            apply(&mut inner, &record);
        }
        let notary = NotaryClient::new(Arc::clone(&bus), Arc::clone(&key), &participants);
        let rounds = crate::reserves::Rounds::default();
        Ok(Arc::new(OracleService {
            key,
            participants,
            clock,
            journal,
            notary,
            counts,
            rounds,
            inner: Mutex::new(inner),
        }))
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Journals and applies `records` (decided under the same lock), then
    /// waits for durability.
    async fn commit(
        &self,
        decide: impl FnOnce(&OracleState) -> Result<Vec<OracleRecord>, OracleError>,
    ) -> Result<(), ServiceFailure> {
        let pending = {
            let mut inner = self.inner();
            let records = decide(&inner.state).map_err(ServiceFailure::Refused)?;
            let mut last = None;
            for record in &records {
                let bytes = crate::format::encode_record(record);
                last = Some(self.journal.append(bytes)?);
                apply(&mut inner, record);
            }
            last.unwrap_or_else(|| self.journal.sync_point())
        };
        pending.durable().await?;
        Ok(())
    }

    /// Handles one request from a verified sender.
    pub async fn request(&self, from: &ParticipantId, request: OracleRequest) -> Result<OracleAnswer, ServiceFailure> {
        let now = self.clock.now();
        dtenge_net::authz::authorize(&self.participants, from, request.operation())
            .map_err(|e| ServiceFailure::Forbidden(e.to_string()))?;
        match request {
            OracleRequest::RegisterProvider { id, name, registries } => {
                self.commit(|s| s.register_provider(id, &name, registries).map(|r| vec![r])).await?;
            }
            OracleRequest::RegisterEvent(spec) => {
                self.commit(|s| s.register_event(from, spec, now).map(|r| vec![r])).await?;
            }
            OracleRequest::ReportOccurrence { event, amount } => {
                self.commit(|s| s.report_occurrence(from, &event, amount, now).map(|r| vec![r])).await?;
            }
            OracleRequest::CancelEvent { event } => {
                self.commit(|s| s.cancel_event(from, &event).map(|r| vec![r])).await?;
            }
            OracleRequest::RegisterParameter { id, initiator, initiator_node, title } => {
                self.commit(|s| s.register_parameter(from, id, initiator, initiator_node, &title).map(|r| vec![r]))
                    .await?;
            }
            OracleRequest::RegisterContract(contract) => {
                self.commit(|s| s.register_contract(from, contract, now).map(|r| vec![r])).await?;
            }
            OracleRequest::AmendContract { parameter, contract, amendment } => {
                self.commit(|s| s.amend_contract(from, &parameter, &contract, amendment, now).map(|r| vec![r])).await?;
            }
            OracleRequest::RegisterInvoice(invoice) => {
                self.commit(|s| s.register_invoice(from, invoice).map(|r| vec![r])).await?;
            }
            OracleRequest::SetRate(rate) => {
                self.commit(|s| s.set_rate(from, rate, now).map(|r| vec![r])).await?;
            }
            OracleRequest::Attest { body, request } => {
                let id = body.id();
                let mut statement = None;
                self.commit(|s| {
                    let (st, record) = s.attest_for(id, &body, &request, now, from)?;
                    statement = Some(st);
                    Ok(record.into_iter().collect())
                })
                .await?;
                let statement = statement.ok_or_else(|| ServiceFailure::Internal("no statement".into()))?;
                return Ok(OracleAnswer::Attestation(sign_statement(self.key.as_ref(), id, statement)));
            }
            OracleRequest::Confirm { tx } => {
                if self.notarised(&tx).await? {
                    self.confirm_reserved(tx).await?;
                } else {
                    return Err(ServiceFailure::Refused(OracleError::NotNotarised { tx }));
                }
            }
            OracleRequest::Abandon { tx } => {
                if self.inner().state.reservation(&tx).is_none() {
                    return Ok(OracleAnswer::Done);
                }
                // One the notary committed is confirmed, never freed.
                if self.notarised(&tx).await? {
                    self.confirm_reserved(tx).await?;
                } else {
                    self.commit(|s| s.abandon(tx, from).map(|r| r.into_iter().collect())).await?;
                }
            }
            OracleRequest::Notices { after } => {
                let inner = self.inner();
                let mine = inner
                    .notices
                    .iter()
                    .filter(|n| n.seq > after && n.to.as_ref().is_none_or(|to| to == from))
                    .take(1_000)
                    .cloned()
                    .collect();
                return Ok(OracleAnswer::Notices(mine));
            }
            OracleRequest::GetEvent(id) => return Ok(OracleAnswer::Event(self.inner().state.event(&id).cloned())),
            OracleRequest::GetInvoice(id) => {
                return Ok(OracleAnswer::Invoice(self.inner().state.invoice(&id).cloned()));
            }
            OracleRequest::GetContract { parameter, contract } => {
                return Ok(OracleAnswer::Contract(self.inner().state.contract(&parameter, &contract).cloned()));
            }
            OracleRequest::GetRate { base, quote } => {
                return Ok(OracleAnswer::Rate(self.inner().state.rate(base, quote, now).cloned()));
            }
            OracleRequest::ListEvents => {
                return Ok(OracleAnswer::Events(self.inner().state.events().cloned().collect()));
            }
            OracleRequest::AttestReserves { stablecoin } => {
                let signed = self
                    .rounds
                    .attest(stablecoin, || async move {
                        let nodes: Vec<ParticipantId> = self
                            .participants
                            .all()
                            .filter(|p| dtenge_net::authz::NODES.contains(&p.role))
                            .map(|p| p.id.clone())
                            .collect();
                        let report = crate::reserves::recount(self.counts.as_ref(), &nodes, stablecoin).await?;
                        Ok(crate::reserves::ReservesAttestation::sign(self.key.as_ref(), report, self.clock.now()))
                    })
                    .await
                    .map_err(|e| ServiceFailure::Unavailable(e.to_string()))?;
                return Ok(OracleAnswer::Reserves(signed));
            }
        }
        Ok(OracleAnswer::Done)
    }

    /// Confirms the open reservation of `tx`, which the notary committed (if any is open).
    async fn confirm_reserved(&self, tx: TxId) -> Result<(), ServiceFailure> {
        self.commit(|s| match s.reservation(&tx) {
            Some(_) => s.confirm(tx).map(|r| vec![r]),
            None => Ok(Vec::new()),
        })
        .await
    }

    async fn notarised(&self, tx: &TxId) -> Result<bool, ServiceFailure> {
        let receipt = self.notary.receipt(tx).await.map_err(|e| ServiceFailure::Unavailable(e.to_string()))?;
        Ok(receipt.is_some())
    }

    /// Settles campaigns past their deadline and resolves reservations whose
    /// window has closed: confirmed if the notary committed the transaction,
    /// freed otherwise. Returns how many records it wrote.
    pub async fn tick(&self) -> Result<usize, ServiceFailure> {
        let now = self.clock.now();
        let settled = {
            let mut written = 0;
            self.commit(|s| {
                let records = s.tick(now);
                written = records.len();
                Ok(records)
            })
            .await?;
            written
        };
        let due = self.inner().state.due_reservations(now);
        let mut resolved: usize = 0;
        for tx in due {
            let committed = self.notarised(&tx).await?;
            self.commit(|s| {
                if s.reservation(&tx).is_none() && s.abandoned(&tx).is_none() {
                    return Ok(Vec::new());
                }
                let record = if committed { s.confirm(tx)? } else { s.release(tx)? };
                Ok(vec![record])
            })
            .await?;
            if committed && let Some((_, by)) = self.inner().state.broken_abandonments().iter().find(|(t, _)| *t == tx)
            {
                tracing::error!(%tx, node = %by, "a node abandoned a transaction and then had it notarised");
            }
            resolved = resolved.saturating_add(1);
        }
        Ok(settled.saturating_add(resolved))
    }

    /// Writes a snapshot.
    pub fn snapshot(&self) -> Result<(), OracleServiceError> {
        let (seq, bytes) = {
            let inner = self.inner();
            (self.journal.last_seq(), crate::format::encode_snapshot(&inner.state, &inner.notices))
        };
        self.journal.snapshot(seq, &bytes)?;
        Ok(())
    }

    /// A copy of the engine state.
    pub fn state_copy(&self) -> OracleState {
        self.inner().state.clone()
    }
}

/// Applies a record and derives the notices it causes.
fn apply(inner: &mut Inner, record: &OracleRecord) {
    let notify = |inner: &mut Inner, to: Option<ParticipantId>, kind: NoticeKind| {
        let seq = u64::try_from(inner.notices.len()).unwrap_or(u64::MAX).saturating_add(1);
        inner.notices.push(Notice { seq, to, kind });
    };
    match record {
        OracleRecord::EventRegistered { spec, .. } => {
            let mut to: BTreeSet<ParticipantId> = BTreeSet::new();
            to.insert(spec.recipient_node.clone());
            to.extend(spec.sender_node.clone());
            if spec.kind.is_campaign() {
                notify(inner, None, NoticeKind::EventRegistered(spec.clone()));
            } else {
                for node in to {
                    notify(inner, Some(node), NoticeKind::EventRegistered(spec.clone()));
                }
            }
        }
        OracleRecord::OccurrenceReported { event, .. } => {
            notify(inner, None, NoticeKind::EventOccurred { event: event.clone() });
        }
        OracleRecord::EventCancelled { event } => {
            notify(inner, None, NoticeKind::EventCancelled { event: event.clone() });
        }
        OracleRecord::CampaignSettled { event, succeeded } => {
            let kind = if *succeeded {
                NoticeKind::CampaignSucceeded { event: event.clone() }
            } else {
                NoticeKind::EventCancelled { event: event.clone() }
            };
            notify(inner, None, kind);
        }
        OracleRecord::ParameterRegistered { parameter, .. } => {
            notify(
                inner,
                Some(parameter.initiator_node.clone()),
                NoticeKind::ParameterRegistered { parameter: parameter.id.clone() },
            );
        }
        _ => {}
    }
    inner.state.apply(record);
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceFailure {
    /// The engine refused it.
    #[error(transparent)]
    Refused(OracleError),
    /// The sender may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Storage failed.
    #[error("oracle storage failed: {0}")]
    Store(#[from] StoreError),
    /// A service it needs is unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Should not happen.
    #[error("oracle internal error: {0}")]
    Internal(String),
}

#[async_trait::async_trait]
impl Handler for OracleService {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        let request: OracleRequest = dtenge_net::decode_request(&body)?;
        let answer = match self.request(from, request).await {
            Ok(answer) => answer,
            Err(ServiceFailure::Refused(e)) => OracleAnswer::Refused(e.refusal()),
            Err(ServiceFailure::Forbidden(e)) => return Err(HandlerError::Forbidden(e)),
            Err(e) => return Err(HandlerError::Unavailable(e.to_string())),
        };
        Ok(borsh::to_vec(&answer).unwrap_or_default())
    }
}
