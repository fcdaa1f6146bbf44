//! The oracle's state and the one function that changes it, [`OracleState::apply`].
//!
//! ```text
//!  request ──► prepare (&self: validate, no change) ──► OracleRecord
//!                                                          │ journal (service)
//!  state ◄──────────── apply (&mut self: infallible) ◄─────┘
//! ```
//!
//! Invariants:
//! - `apply` never fails and never reads anything but the state and the
//!   record: the same records give the same state on every replay;
//! - only ordered maps, so the borsh snapshot of a state is canonical;
//! - every counter of reserved amounts equals the sum of the open
//!   reservations it stands for (see [`crate::model`]);
//! - records are applied only after their `prepare` accepted them against the
//!   same state, so arithmetic in `apply` cannot overflow; it saturates
//!   rather than panics should a journal be corrupt.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{Amount, ContractNo, Currency, EventId, InvoiceId, ParameterId, ParticipantId, Timestamp, TxId};

use crate::model::{
    ContractState, EventState, EventStatus, InvoiceState, ParameterState, Provider, RateState, Reservation,
    ReservationEntry,
};
use crate::record::OracleRecord;

/// Everything the oracle knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct OracleState {
    pub(crate) providers: BTreeMap<ParticipantId, Provider>,
    pub(crate) events: BTreeMap<EventId, EventState>,
    pub(crate) parameters: BTreeMap<ParameterId, ParameterState>,
    pub(crate) invoices: BTreeMap<InvoiceId, InvoiceState>,
    pub(crate) rates: BTreeMap<(Currency, Currency), RateState>,
    pub(crate) reservations: BTreeMap<TxId, ReservationEntry>,
    /// Reservations their node gave up before their window closed, kept
    /// until the notary's answer about them is final.
    pub(crate) abandoned: BTreeMap<TxId, (ReservationEntry, ParticipantId)>,
    /// Transactions a node gave up that committed anyway, and that node.
    pub(crate) broken_abandonments: Vec<(TxId, ParticipantId)>,
}

/// `a + b` where admission proved the sum fits before the record was
/// journaled: an occurrence only if `occurred + amount` fits
/// (`registry.rs`, `OracleError::Overflow { what: "occurrences" }`), a
/// contract reservation only if `used + amount` stays within the contract's
/// maximum (`attest.rs`, `LimitExceeded`), and a confirmation only moves a
/// reserved amount into `confirmed` (their sum stays `used`). Applying a
/// journaled record cannot fail, so the unreachable overflow keeps the
/// maximum instead of panicking; `tests/properties.rs` drives contracts at
/// the u64 edge.
fn add(a: Amount, b: Amount) -> Amount {
    a.checked_add(b).unwrap_or(Amount::MAX)
}

impl OracleState {
    /// An empty oracle.
    pub fn new() -> OracleState {
        OracleState::default()
    }

    /// Applies one record. Infallible: a record that refers to something
    /// unknown changes nothing.
    pub fn apply(&mut self, record: &OracleRecord) {
        match record {
            OracleRecord::ProviderRegistered { provider } => {
                self.providers.insert(provider.id.clone(), provider.clone());
            }
            OracleRecord::EventRegistered { provider, spec } => {
                self.events.entry(spec.id.clone()).or_insert_with(|| EventState::new(spec.clone(), provider.clone()));
            }
            OracleRecord::OccurrenceReported { event, amount } => {
                if let Some(e) = self.events.get_mut(event) {
                    e.occurred = add(e.occurred, *amount);
                }
            }
            OracleRecord::EventCancelled { event } => {
                if let Some(e) = self.events.get_mut(event) {
                    e.status = EventStatus::Cancelled;
                }
            }
            OracleRecord::CampaignSettled { event, succeeded } => {
                if let Some(e) = self.events.get_mut(event) {
                    e.status = if *succeeded { EventStatus::CampaignSucceeded } else { EventStatus::CampaignFailed };
                }
            }
            OracleRecord::ParameterRegistered { provider, parameter } => {
                self.parameters.entry(parameter.id.clone()).or_insert_with(|| ParameterState {
                    parameter: parameter.clone(),
                    provider: provider.clone(),
                    contracts: BTreeMap::new(),
                });
            }
            OracleRecord::ContractRegistered { provider, contract } => {
                if let Some(p) = self.parameters.get_mut(&contract.parameter) {
                    p.contracts.entry(contract.number.clone()).or_insert_with(|| ContractState {
                        contract: contract.clone(),
                        provider: provider.clone(),
                        transferred: Default::default(),
                        cashed_out: Default::default(),
                    });
                }
            }
            OracleRecord::ContractAmended { parameter, contract, amendment } => {
                if let Some(c) = self.contract_mut(parameter, contract) {
                    c.contract.max_transfer = amendment.max_transfer;
                    c.contract.max_cashout = amendment.max_cashout;
                    c.contract.valid_until = amendment.valid_until;
                }
            }
            OracleRecord::InvoiceRegistered { provider, invoice } => {
                self.invoices.entry(invoice.id.clone()).or_insert_with(|| InvoiceState {
                    invoice: invoice.clone(),
                    provider: provider.clone(),
                    reserved_by: None,
                    paid_by: None,
                });
            }
            OracleRecord::RateSet { provider, rate } => {
                self.rates
                    .insert((rate.base, rate.quote), RateState { rate: rate.clone(), provider: provider.clone() });
            }
            OracleRecord::Reserved { tx, reservation, statement, expires_at } => {
                self.open_reservation(*tx, reservation, statement, *expires_at, None);
            }
            OracleRecord::ReservedFor { tx, reservation, statement, expires_at, node } => {
                self.open_reservation(*tx, reservation, statement, *expires_at, Some(node.clone()));
            }
            OracleRecord::Confirmed { tx } => {
                if let Some(entry) = self.reservations.remove(tx) {
                    self.settle(*tx, &entry.reservation, true);
                } else if let Some((entry, by)) = self.abandoned.remove(tx) {
                    self.confirm_late(*tx, &entry.reservation);
                    self.broken_abandonments.push((*tx, by));
                }
            }
            OracleRecord::Released { tx } => {
                if let Some(entry) = self.reservations.remove(tx) {
                    self.settle(*tx, &entry.reservation, false);
                } else {
                    self.abandoned.remove(tx);
                }
            }
            OracleRecord::Abandoned { tx, by } => {
                if let Some(entry) = self.reservations.remove(tx) {
                    self.settle(*tx, &entry.reservation, false);
                    self.abandoned.insert(*tx, (entry, by.clone()));
                }
            }
        }
    }

    /// Applies records in order.
    pub fn apply_all<'a>(&mut self, records: impl IntoIterator<Item = &'a OracleRecord>) {
        records.into_iter().for_each(|r| self.apply(r));
    }

    /// Counts a new reservation against its registry entry.
    fn reserve(&mut self, tx: TxId, reservation: &Reservation) {
        match reservation {
            Reservation::Hold { event, funds } => {
                if let Some(e) = self.events.get_mut(event) {
                    e.pending_holds.insert(tx, *funds);
                }
            }
            Reservation::Release { event, funds } => {
                if let Some(e) = self.events.get_mut(event) {
                    e.pending_releases.insert(tx, *funds);
                }
            }
            Reservation::Contract { parameter, contract, kind, amount } => {
                if let Some(c) = self.contract_mut(parameter, contract) {
                    let usage = c.usage_mut(*kind);
                    usage.reserved = add(usage.reserved, *amount);
                }
            }
            Reservation::Invoice { invoice } => {
                if let Some(i) = self.invoices.get_mut(invoice) {
                    i.reserved_by = Some(tx);
                }
            }
        }
    }

    fn open_reservation(
        &mut self,
        tx: TxId,
        reservation: &Reservation,
        statement: &dtenge_types::Statement,
        expires_at: Timestamp,
        node: Option<ParticipantId>,
    ) {
        if self.reservations.contains_key(&tx) || self.abandoned.contains_key(&tx) {
            return;
        }
        self.reserve(tx, reservation);
        let entry =
            ReservationEntry { reservation: reservation.clone(), statement: statement.clone(), expires_at, node };
        self.reservations.insert(tx, entry);
    }

    /// Counts a transaction whose reservation was freed early (abandoned)
    /// but which committed anyway, as if it had been confirmed: its usage is
    /// never lost from the totals.
    fn confirm_late(&mut self, tx: TxId, reservation: &Reservation) {
        match reservation {
            Reservation::Hold { event, funds } => {
                if let Some(e) = self.events.get_mut(event) {
                    e.holds.insert(tx, *funds);
                }
            }
            Reservation::Release { event, funds } => {
                if let Some(e) = self.events.get_mut(event) {
                    e.releases.insert(tx, *funds);
                }
            }
            Reservation::Contract { parameter, contract, kind, amount } => {
                if let Some(c) = self.contract_mut(parameter, contract) {
                    let usage = c.usage_mut(*kind);
                    usage.confirmed = add(usage.confirmed, *amount);
                }
            }
            Reservation::Invoice { invoice } => {
                if let Some(i) = self.invoices.get_mut(invoice)
                    && i.paid_by.is_none()
                {
                    i.paid_by = Some(tx);
                }
            }
        }
    }

    /// Ends a reservation: made permanent if `committed`, freed otherwise.
    fn settle(&mut self, tx: TxId, reservation: &Reservation, committed: bool) {
        match reservation {
            Reservation::Hold { event, .. } => {
                if let Some(e) = self.events.get_mut(event)
                    && let Some(funds) = e.pending_holds.remove(&tx)
                    && committed
                {
                    e.holds.insert(tx, funds);
                }
            }
            Reservation::Release { event, .. } => {
                if let Some(e) = self.events.get_mut(event)
                    && let Some(funds) = e.pending_releases.remove(&tx)
                    && committed
                {
                    e.releases.insert(tx, funds);
                }
            }
            Reservation::Contract { parameter, contract, kind, amount } => {
                if let Some(c) = self.contract_mut(parameter, contract) {
                    let usage = c.usage_mut(*kind);
                    usage.reserved = usage.reserved.saturating_sub(*amount);
                    if committed {
                        usage.confirmed = add(usage.confirmed, *amount);
                    }
                }
            }
            Reservation::Invoice { invoice } => {
                if let Some(i) = self.invoices.get_mut(invoice) {
                    if i.reserved_by == Some(tx) {
                        i.reserved_by = None;
                    }
                    if committed {
                        i.paid_by = Some(tx);
                    }
                }
            }
        }
    }

    fn contract_mut(&mut self, parameter: &ParameterId, contract: &ContractNo) -> Option<&mut ContractState> {
        self.parameters.get_mut(parameter).and_then(|p| p.contracts.get_mut(contract))
    }

    // ── read queries ────────────────────────────────────────────────────

    /// A registered provider.
    pub fn provider(&self, id: &ParticipantId) -> Option<&Provider> {
        self.providers.get(id)
    }

    /// Every registered provider, by id.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// An event with its holds, releases and releasable balance.
    pub fn event(&self, id: &EventId) -> Option<&EventState> {
        self.events.get(id)
    }

    /// Every event, by id.
    pub fn events(&self) -> impl Iterator<Item = &EventState> {
        self.events.values()
    }

    /// A marking parameter with its contracts.
    pub fn parameter(&self, id: &ParameterId) -> Option<&ParameterState> {
        self.parameters.get(id)
    }

    /// Every parameter, by id.
    pub fn parameters(&self) -> impl Iterator<Item = &ParameterState> {
        self.parameters.values()
    }

    /// A contract with its cumulative usage.
    pub fn contract(&self, parameter: &ParameterId, contract: &ContractNo) -> Option<&ContractState> {
        self.parameters.get(parameter).and_then(|p| p.contracts.get(contract))
    }

    /// An e-invoice with its payment state.
    pub fn invoice(&self, id: &InvoiceId) -> Option<&InvoiceState> {
        self.invoices.get(id)
    }

    /// Every e-invoice, by id.
    pub fn invoices(&self) -> impl Iterator<Item = &InvoiceState> {
        self.invoices.values()
    }

    /// The rate for `base → quote` if it is valid at `now`.
    pub fn rate(&self, base: Currency, quote: Currency, now: Timestamp) -> Option<&RateState> {
        self.rates.get(&(base, quote)).filter(|r| now <= r.rate.valid_until)
    }

    /// Every rate set, current or not.
    pub fn rates(&self) -> impl Iterator<Item = &RateState> {
        self.rates.values()
    }

    /// The open reservation of a transaction.
    pub fn reservation(&self, tx: &TxId) -> Option<&ReservationEntry> {
        self.reservations.get(tx)
    }

    /// Every open reservation, by transaction.
    pub fn reservations(&self) -> impl Iterator<Item = (&TxId, &ReservationEntry)> {
        self.reservations.iter()
    }

    /// Transactions whose window closed before `now`: the notary's answer
    /// about each is final, so the service asks it and then confirms or
    /// releases.
    pub fn due_reservations(&self, now: Timestamp) -> Vec<TxId> {
        let open = self.reservations.iter().filter(|(_, r)| r.expires_at < now).map(|(tx, _)| *tx);
        let given_up = self.abandoned.iter().filter(|(_, (r, _))| r.expires_at < now).map(|(tx, _)| *tx);
        open.chain(given_up).collect()
    }

    /// A reservation given up by its node, still to be checked with the
    /// notary when its window closes.
    pub fn abandoned(&self, tx: &TxId) -> Option<&(ReservationEntry, ParticipantId)> {
        self.abandoned.get(tx)
    }

    /// Transactions a node gave up that committed anyway, and that node.
    pub fn broken_abandonments(&self) -> &[(TxId, ParticipantId)] {
        &self.broken_abandonments
    }
}
