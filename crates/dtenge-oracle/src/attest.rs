//! Attestations: the statement a transaction needs, derived from its command
//! and outputs exactly as the kernel (`dtenge-ledger`, `rules/*.rs`) will
//! check it, and the reservation that keeps a competing transaction from
//! being attested for the same invoice, hold, releasable amount or contract
//! allowance until this one is decided.
//!
//! ```text
//!  attest ──► Reserved{tx} ──► (notary decides, window closes)
//!                 ├─ confirm ──► Confirmed{tx}: paid / held / released / counted
//!                 └─ release ──► Released{tx}:  freed for others
//! ```
//!
//! Invariants:
//! - a transaction id has at most one open reservation; asking again returns
//!   the statement already given and reserves nothing more;
//! - an e-invoice has at most one open reservation and is paid at most once;
//! - a single or recurring event is held at most once;
//! - releases (confirmed + reserved) never exceed the releasable balance;
//! - a contract's confirmed + reserved usage never exceeds its maxima;
//! - statements that hand out nothing (a registered parameter, a
//!   cancellation, an FX rate) reserve nothing.

use std::collections::BTreeSet;

use dtenge_crypto::Signer;
use dtenge_types::{
    Address, Amount, Attestation, Command, ContractNo, Encumbrance, EventId, InvoiceId, Marking, ParameterId,
    ParticipantId, Statement, Timestamp, Token, TxBody, TxId,
};

use crate::OracleError;
use crate::model::{
    AttestRequest, ContractPurpose, EventKind, EventState, EventStatus, HeldFunds, LimitKind, Reservation,
};
use crate::record::OracleRecord;
use crate::state::OracleState;

/// Signs `statement` for transaction `id`, as the kernel verifies it: a
/// signature over [`Statement::signing_message`].
pub fn sign_statement(key: &dyn Signer, id: TxId, statement: Statement) -> Attestation {
    let signature = key.sign(&statement.signing_message(&id));
    Attestation { oracle: key.public_key(), statement, signature }
}

/// A statement to sign, and the reservation to journal first if it reserves
/// anything.
type Attested = (Statement, Option<Reservation>);

fn sum<'a>(tokens: impl IntoIterator<Item = &'a Token>, what: &'static str) -> Result<Amount, OracleError> {
    Amount::checked_sum(tokens.into_iter().map(|t| t.amount)).ok_or(OracleError::Overflow { what })
}

impl OracleState {
    /// The statement transaction `id` (with `body`) needs, and the record
    /// reserving what it hands out (`None` if it reserves nothing or the
    /// same transaction already holds a reservation).
    ///
    /// The node signs the statement with [`sign_statement`] only after the
    /// record is durable.
    pub fn attest(
        &self,
        id: TxId,
        body: &TxBody,
        request: &AttestRequest,
        now: Timestamp,
    ) -> Result<(Statement, Option<OracleRecord>), OracleError> {
        let actual = body.id();
        if actual != id {
            return Err(OracleError::TxIdMismatch { given: id, actual });
        }
        if let Some(open) = self.reservations.get(&id) {
            return Ok((open.statement.clone(), None));
        }
        if self.abandoned.contains_key(&id) {
            return Err(OracleError::Abandoned { tx: id });
        }
        if now > body.window.not_after {
            return Err(OracleError::WindowClosed { not_after: body.window.not_after, now });
        }
        let command = body.command.name();
        let wrong = |expected| Err(OracleError::WrongRequest { command, expected });
        let (statement, reservation) = match (&body.command, request) {
            (Command::ContractPayment { parameter, contract }, AttestRequest::ContractPayment { purpose }) => {
                self.attest_contract(parameter, contract, purpose, body, now)?
            }
            (Command::ContractPayment { .. }, _) => return wrong("contract_payment with a purpose"),
            (_, AttestRequest::ContractPayment { .. }) => return wrong("plain"),
            (Command::Pvp, request) => (self.attest_fx(body, request, now)?, None),
            (_, AttestRequest::Pvp { .. }) => return wrong("plain"),
            (Command::Hold { event }, _) => self.attest_hold(event, body, now)?,
            (Command::Release { event }, _) => self.attest_release(event, body, now)?,
            (Command::CancelHold { event }, _) => (self.attest_cancel(event)?, None),
            (Command::MarkParameter { parameter }, _) => (self.attest_mark(parameter, body)?, None),
            (Command::PayInvoice { invoice }, _) => self.attest_invoice(invoice)?,
            _ => return Err(OracleError::NoAttestationNeeded { command }),
        };
        let record = reservation.map(|reservation| OracleRecord::Reserved {
            tx: id,
            reservation,
            statement: statement.clone(),
            expires_at: body.window.not_after,
        });
        Ok((statement, record))
    }

    /// As [`OracleState::attest`], for `node`: the reservation names it, so
    /// that it alone may [`abandon`](OracleState::abandon) it.
    pub fn attest_for(
        &self,
        id: TxId,
        body: &TxBody,
        request: &AttestRequest,
        now: Timestamp,
        node: &ParticipantId,
    ) -> Result<(Statement, Option<OracleRecord>), OracleError> {
        let (statement, record) = self.attest(id, body, request, now)?;
        let record = record.map(|r| match r {
            OracleRecord::Reserved { tx, reservation, statement, expires_at } => {
                OracleRecord::ReservedFor { tx, reservation, statement, expires_at, node: node.clone() }
            }
            other => other,
        });
        Ok((statement, record))
    }

    /// `node` refused its operation before notarising `tx`: the reservation
    /// is freed at once (`None`: nothing is reserved for it). Only the node
    /// that asked for the attestation may give it up; the caller has made
    /// sure the notary has not committed it.
    pub fn abandon(&self, tx: TxId, node: &ParticipantId) -> Result<Option<OracleRecord>, OracleError> {
        let Some(entry) = self.reservations.get(&tx) else { return Ok(None) };
        if entry.node.as_ref() != Some(node) {
            return Err(OracleError::NotYourReservation { tx, node: node.clone() });
        }
        Ok(Some(OracleRecord::Abandoned { tx, by: node.clone() }))
    }

    /// The notary committed `tx`: its reservation becomes permanent.
    pub fn confirm(&self, tx: TxId) -> Result<OracleRecord, OracleError> {
        if !self.reservations.contains_key(&tx) && !self.abandoned.contains_key(&tx) {
            return Err(OracleError::NoReservation { tx });
        }
        Ok(OracleRecord::Confirmed { tx })
    }

    /// `tx` will never commit (its window closed and the notary does not
    /// know it): its reservation is freed.
    pub fn release(&self, tx: TxId) -> Result<OracleRecord, OracleError> {
        if !self.reservations.contains_key(&tx) && !self.abandoned.contains_key(&tx) {
            return Err(OracleError::NoReservation { tx });
        }
        Ok(OracleRecord::Released { tx })
    }

    fn open_event(&self, event: &EventId) -> Result<&EventState, OracleError> {
        self.events.get(event).ok_or_else(|| OracleError::UnknownEvent { event: event.clone() })
    }

    /// `hold` → `HoldConfirmed` (kernel: `rules/holds.rs::hold`).
    fn attest_hold(&self, event: &EventId, body: &TxBody, now: Timestamp) -> Result<Attested, OracleError> {
        let e = self.open_event(event)?;
        let spec = &e.spec;
        let mismatch = |reason| OracleError::HoldMismatch { event: event.clone(), reason };
        if e.status != EventStatus::Open {
            return Err(OracleError::EventClosed {
                event: event.clone(),
                status: e.status,
                reason: "it takes no more holds",
            });
        }
        if now > spec.valid_until {
            return Err(OracleError::EventExpired { event: event.clone(), valid_until: spec.valid_until, now });
        }
        let valid_until = spec.hold_valid_until();
        let kind = spec.kind.hold_kind();
        let held: Vec<&Token> = body.outputs.iter().filter(|t| t.encumbrance.is_some()).collect();
        if held.is_empty() {
            return Err(mismatch("no output is held"));
        }
        for token in &held {
            let Some(Encumbrance::Hold(h)) = &token.encumbrance else {
                return Err(mismatch("an output carries a mandate, not a hold"));
            };
            if h.event != *event || h.recipient != spec.recipient || h.recipient_node != spec.recipient_node {
                return Err(mismatch("held outputs must name the event, its recipient and the recipient's node"));
            }
            if h.valid_until != valid_until || h.kind != kind {
                return Err(mismatch("held outputs must carry the event's valid-until and hold kind"));
            }
            if token.marking.is_some() {
                return Err(mismatch("only standard funds are held"));
            }
            if spec.sender_node.as_ref().is_some_and(|n| *n != token.host) {
                return Err(mismatch("held outputs must stay on the sender's node"));
            }
        }
        let sender = held[0].owner;
        if held.iter().any(|t| t.owner != sender) {
            return Err(mismatch("held outputs must all belong to one sender"));
        }
        let amount = sum(held.iter().copied(), "held amount")?;
        if body.window.not_after > valid_until {
            return Err(mismatch("the transaction's window ends after the hold's valid-until"));
        }
        match spec.kind {
            EventKind::Campaign { .. } => {
                if body.window.not_after > spec.valid_until {
                    return Err(mismatch("a contribution must be able to commit only before the campaign deadline"));
                }
            }
            EventKind::Single | EventKind::Recurring => {
                if spec.sender != Some(sender) {
                    return Err(mismatch("held outputs must belong to the event's sender"));
                }
                if spec.amount != Some(amount) {
                    return Err(mismatch("the held amount must be the event's amount"));
                }
                if let Some(tx) = e.holds.keys().next() {
                    return Err(OracleError::AlreadyHeld { event: event.clone(), tx: *tx });
                }
                if let Some(tx) = e.pending_holds.keys().next() {
                    return Err(OracleError::HoldPending { event: event.clone(), tx: *tx });
                }
            }
        }
        let statement = Statement::HoldConfirmed {
            event: event.clone(),
            sender,
            recipient: spec.recipient,
            amount,
            valid_until,
            kind,
        };
        Ok((statement, Some(Reservation::Hold { event: event.clone(), funds: HeldFunds { sender, amount } })))
    }

    /// `release` → `EventOccurred` (kernel: `rules/holds.rs::release`). The
    /// amount is what the outputs pay the recipient as standard tokens on the
    /// recipient's node.
    fn attest_release(&self, event: &EventId, body: &TxBody, now: Timestamp) -> Result<Attested, OracleError> {
        let e = self.open_event(event)?;
        let spec = &e.spec;
        let paid = body
            .outputs
            .iter()
            .filter(|t| t.owner == spec.recipient && t.is_standard() && t.host == spec.recipient_node);
        let amount = sum(paid, "released amount")?;
        if amount.is_zero() {
            return Err(OracleError::NothingReleased { event: event.clone() });
        }
        let hold_until = spec.hold_valid_until();
        if now > hold_until {
            return Err(OracleError::EventExpired { event: event.clone(), valid_until: hold_until, now });
        }
        let sender = match spec.kind {
            EventKind::Single | EventKind::Recurring => self.fixed_release_sender(e)?,
            EventKind::Campaign { .. } => self.campaign_release_sender(e, body)?,
        };
        let releasable = e.releasable_for(&sender);
        if releasable.is_zero() && matches!(spec.kind, EventKind::Single | EventKind::Recurring) && e.occurred.is_zero()
        {
            return Err(OracleError::EventNotOccurred { event: event.clone() });
        }
        if amount > releasable {
            return Err(OracleError::ReleaseExceedsReleasable { event: event.clone(), releasable, requested: amount });
        }
        let statement = Statement::EventOccurred { event: event.clone(), amount };
        Ok((statement, Some(Reservation::Release { event: event.clone(), funds: HeldFunds { sender, amount } })))
    }

    /// The sender of a single or recurring event's one notarised hold.
    fn fixed_release_sender(&self, e: &EventState) -> Result<Address, OracleError> {
        let event = &e.spec.id;
        if e.status != EventStatus::Open {
            return Err(OracleError::EventClosed {
                event: event.clone(),
                status: e.status,
                reason: "its holds return with cancel_hold",
            });
        }
        let Some(hold) = e.holds.values().next() else {
            return Err(OracleError::NotHeld { event: event.clone() });
        };
        if e.spec.kind == EventKind::Single
            && let Some(tx) = e.pending_releases.keys().next()
        {
            return Err(OracleError::ReleasePending { event: event.clone(), tx: *tx });
        }
        Ok(hold.sender)
    }

    /// The one contributor whose notarised contributions the release spends.
    fn campaign_release_sender(&self, e: &EventState, body: &TxBody) -> Result<Address, OracleError> {
        let event = &e.spec.id;
        match e.status {
            EventStatus::CampaignSucceeded => {}
            EventStatus::Open => {
                return Err(OracleError::EventClosed {
                    event: event.clone(),
                    status: e.status,
                    reason: "a campaign releases only after it settles at its deadline with its target met",
                });
            }
            EventStatus::Cancelled | EventStatus::CampaignFailed => {
                return Err(OracleError::EventClosed {
                    event: event.clone(),
                    status: e.status,
                    reason: "contributions return to their owners with cancel_hold",
                });
            }
        }
        let mut senders = BTreeSet::new();
        for (input, id) in body.inputs.iter().enumerate() {
            let hold =
                e.holds.get(&id.tx).ok_or_else(|| OracleError::NotCampaignHold { event: event.clone(), input })?;
            senders.insert(hold.sender);
        }
        let mut senders = senders.into_iter();
        match (senders.next(), senders.next()) {
            (Some(sender), None) => Ok(sender),
            (None, _) => Err(OracleError::NotCampaignHold { event: event.clone(), input: 0 }),
            (Some(_), Some(_)) => Err(OracleError::HoldMismatch {
                event: event.clone(),
                reason: "a release spends one contributor's holds; release each contributor separately",
            }),
        }
    }

    /// `cancel_hold` → `EventCancelled` (kernel: `rules/holds.rs::cancel`).
    fn attest_cancel(&self, event: &EventId) -> Result<Statement, OracleError> {
        let e = self.open_event(event)?;
        if !e.status.holds_return() {
            return Err(OracleError::EventNotCancelled { event: event.clone(), status: e.status });
        }
        Ok(Statement::EventCancelled { event: event.clone() })
    }

    /// `mark_parameter` → `ParameterRegistered` (kernel: `rules/parameter.rs::mark`).
    fn attest_mark(&self, parameter: &ParameterId, body: &TxBody) -> Result<Statement, OracleError> {
        let p = self
            .parameters
            .get(parameter)
            .ok_or_else(|| OracleError::UnknownParameter { parameter: parameter.clone() })?;
        let mismatch = |reason| OracleError::MarkingMismatch { parameter: parameter.clone(), reason };
        let mut marked = false;
        for token in body.outputs.iter() {
            if let Some(Marking::Parameter(m)) = &token.marking {
                if m.parameter != *parameter
                    || m.initiator != p.parameter.initiator
                    || m.initiator_node != p.parameter.initiator_node
                {
                    return Err(mismatch("marked outputs must carry the parameter, its initiator and initiator node"));
                }
                marked = true;
            }
        }
        if !marked {
            return Err(mismatch("no output is marked with the parameter"));
        }
        Ok(Statement::ParameterRegistered { parameter: parameter.clone(), initiator: p.parameter.initiator })
    }

    /// `contract_payment` → `ContractPayment` (kernel: `rules/parameter.rs::pay`).
    fn attest_contract(
        &self,
        parameter: &ParameterId,
        number: &ContractNo,
        purpose: &ContractPurpose,
        body: &TxBody,
        now: Timestamp,
    ) -> Result<Attested, OracleError> {
        if !self.parameters.contains_key(parameter) {
            return Err(OracleError::UnknownParameter { parameter: parameter.clone() });
        }
        let state = self
            .contract(parameter, number)
            .ok_or_else(|| OracleError::UnknownContract { parameter: parameter.clone(), contract: number.clone() })?;
        let c = &state.contract;
        if now > c.valid_until {
            return Err(OracleError::ContractExpired {
                parameter: parameter.clone(),
                contract: number.clone(),
                valid_until: c.valid_until,
                now,
            });
        }
        let (sender, recipient, unmark, kind, party) = match purpose {
            ContractPurpose::Transfer => {
                (c.sender, c.recipient, c.final_recipient, LimitKind::Transfer, "contract's recipient")
            }
            ContractPurpose::CashOut { bank } => {
                if *bank == c.recipient {
                    return Err(OracleError::InvalidInput {
                        what: "cash-out bank",
                        reason: "the bank's DA must differ from the contract's recipient",
                    });
                }
                (c.recipient, *bank, true, LimitKind::CashOut, "bank")
            }
        };
        let amount = sum(body.outputs.iter().filter(|t| t.owner == recipient), "contract payment")?;
        if amount.is_zero() {
            return Err(OracleError::NothingPaid { contract: number.clone(), party });
        }
        let (limit, usage) = state.limit(kind);
        let used = usage.used();
        if used.checked_add(amount).is_none_or(|total| total > limit) {
            return Err(OracleError::LimitExceeded {
                parameter: parameter.clone(),
                contract: number.clone(),
                kind,
                limit,
                used,
                requested: amount,
            });
        }
        let statement = Statement::ContractPayment {
            parameter: parameter.clone(),
            contract: number.clone(),
            sender,
            recipient,
            amount,
            unmark,
        };
        let reservation =
            Reservation::Contract { parameter: parameter.clone(), contract: number.clone(), kind, amount };
        Ok((statement, Some(reservation)))
    }

    /// `pay_invoice` → `Invoice` (kernel: `rules/vat.rs::pay_invoice`).
    fn attest_invoice(&self, invoice: &InvoiceId) -> Result<Attested, OracleError> {
        let state =
            self.invoices.get(invoice).ok_or_else(|| OracleError::UnknownInvoice { invoice: invoice.clone() })?;
        if let Some(tx) = state.paid_by {
            return Err(OracleError::InvoicePaid { invoice: invoice.clone(), tx });
        }
        if let Some(tx) = state.reserved_by {
            return Err(OracleError::InvoiceReserved { invoice: invoice.clone(), tx });
        }
        let i = &state.invoice;
        let statement =
            Statement::Invoice { invoice: i.id.clone(), seller: i.seller, buyer: i.buyer, net: i.net, vat: i.vat };
        Ok((statement, Some(Reservation::Invoice { invoice: invoice.clone() })))
    }

    /// `pvp` → `FxRate` (kernel: `rules/pvp.rs`): a current rate between the
    /// outputs' two currencies, in the direction asked for or, for a plain
    /// request, whichever direction is stored (ascending currency order first).
    fn attest_fx(&self, body: &TxBody, request: &AttestRequest, now: Timestamp) -> Result<Statement, OracleError> {
        let currencies: BTreeSet<_> = body.outputs.iter().map(|t| t.currency).collect();
        let mut iter = currencies.iter().copied();
        let (Some(first), Some(second), None) = (iter.next(), iter.next(), iter.next()) else {
            return Err(OracleError::NotTwoCurrencies { found: currencies.len() });
        };
        let directions = match request {
            AttestRequest::Pvp { base } if *base == first => vec![(first, second)],
            AttestRequest::Pvp { base } if *base == second => vec![(second, first)],
            AttestRequest::Pvp { .. } => {
                return Err(OracleError::InvalidInput {
                    what: "pvp base currency",
                    reason: "must be one of the two currencies of the outputs",
                });
            }
            _ => vec![(first, second), (second, first)],
        };
        let rate = directions
            .into_iter()
            .find_map(|(base, quote)| self.rate(base, quote, now))
            .ok_or(OracleError::NoRate { first, second })?;
        let r = &rate.rate;
        Ok(Statement::FxRate { base: r.base, quote: r.quote, numerator: r.numerator, denominator: r.denominator })
    }
}
