//! Writes by the platform operator and by providers: registering providers,
//! events, parameters, contracts, e-invoices and rates; reporting and
//! cancelling events; settling campaigns at their deadline.
//!
//! Every method takes `&self`, validates, and returns the [`OracleRecord`]
//! that the caller journals and then applies; a refused request changes
//! nothing. Every provider write is gated: the provider must be registered
//! for the registry it writes to.

use std::collections::BTreeSet;

use dtenge_types::{Address, Amount, ContractNo, EventId, ParameterId, ParticipantId, Timestamp};

use crate::OracleError;
use crate::model::{
    Contract, ContractAmendment, EventKind, EventStatus, FxRate, Invoice, LimitKind, MAX_NAME_BYTES, Parameter,
    Provider, Registry,
};
use crate::record::OracleRecord;
use crate::state::OracleState;

fn check_name(text: &str, what: &'static str) -> Result<(), OracleError> {
    let bad = |reason| Err(OracleError::InvalidInput { what, reason });
    if text.trim().is_empty() {
        return bad("must not be empty");
    }
    if text.len() > MAX_NAME_BYTES {
        return bad("must be at most 200 bytes");
    }
    if text.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    Ok(())
}

fn in_future(what: &'static str, valid_until: Timestamp, now: Timestamp) -> Result<(), OracleError> {
    if valid_until <= now {
        return Err(OracleError::NotInFuture { what, valid_until, now });
    }
    Ok(())
}

impl OracleState {
    /// The provider may write to `registry`.
    pub fn authorise(&self, provider: &ParticipantId, registry: Registry) -> Result<(), OracleError> {
        let known =
            self.providers.get(provider).ok_or_else(|| OracleError::UnknownProvider { provider: provider.clone() })?;
        if !known.registries.contains(&registry) {
            return Err(OracleError::NotAllowed { provider: provider.clone(), registry });
        }
        Ok(())
    }

    /// The platform operator registers a provider, or replaces its name and
    /// registries.
    pub fn register_provider(
        &self,
        id: ParticipantId,
        name: &str,
        registries: BTreeSet<Registry>,
    ) -> Result<OracleRecord, OracleError> {
        check_name(name, "provider name")?;
        Ok(OracleRecord::ProviderRegistered { provider: Provider { id, name: name.to_owned(), registries } })
    }

    fn event_state(&self, event: &EventId) -> Result<&crate::model::EventState, OracleError> {
        self.events.get(event).ok_or_else(|| OracleError::UnknownEvent { event: event.clone() })
    }

    /// An events provider registers an event.
    pub fn register_event(
        &self,
        provider: &ParticipantId,
        spec: crate::model::EventSpec,
        now: Timestamp,
    ) -> Result<OracleRecord, OracleError> {
        self.authorise(provider, Registry::Events)?;
        if self.events.contains_key(&spec.id) {
            return Err(OracleError::DuplicateEvent { event: spec.id });
        }
        in_future("event valid-until", spec.valid_until, now)?;
        let invalid = |what, reason| Err(OracleError::InvalidInput { what, reason });
        match spec.kind {
            EventKind::Single | EventKind::Recurring => {
                match spec.amount {
                    None => return invalid("event amount", "single and recurring events hold a fixed amount"),
                    Some(a) if a.is_zero() => return invalid("event amount", "must be positive"),
                    Some(_) => {}
                }
                if spec.sender.is_none() {
                    return invalid("event sender", "single and recurring events name whose funds are held");
                }
            }
            EventKind::Campaign { target } => {
                if spec.amount.is_some() {
                    return invalid("event amount", "a campaign has a target, not a fixed amount");
                }
                if spec.sender.is_some() || spec.sender_node.is_some() {
                    return invalid("event sender", "anyone contributes to a campaign: give no sender");
                }
                if target.is_zero() {
                    return invalid("campaign target", "must be positive");
                }
            }
        }
        if spec.sender == Some(spec.recipient) {
            return invalid("event recipient", "must differ from the sender");
        }
        Ok(OracleRecord::EventRegistered { provider: provider.clone(), spec })
    }

    /// An events provider reports that a single or recurring event occurred.
    /// `amount` defaults to the event's full amount for a single event and
    /// is required for a recurring one (one meal's price).
    pub fn report_occurrence(
        &self,
        provider: &ParticipantId,
        event: &EventId,
        amount: Option<Amount>,
        now: Timestamp,
    ) -> Result<OracleRecord, OracleError> {
        self.authorise(provider, Registry::Events)?;
        let e = self.event_state(event)?;
        owns(provider, &e.provider, event.as_str())?;
        let full = match (e.spec.kind, e.spec.amount) {
            (EventKind::Campaign { .. }, _) | (_, None) => {
                return Err(OracleError::WrongEventKind {
                    event: event.clone(),
                    reason: "a campaign does not occur: it settles at its deadline",
                });
            }
            (_, Some(full)) => full,
        };
        if e.status != EventStatus::Open {
            return Err(OracleError::EventClosed {
                event: event.clone(),
                status: e.status,
                reason: "a cancelled event does not occur",
            });
        }
        if now > e.spec.valid_until {
            return Err(OracleError::EventExpired { event: event.clone(), valid_until: e.spec.valid_until, now });
        }
        let amount = match (e.spec.kind, amount) {
            (EventKind::Single, _) if !e.occurred.is_zero() => {
                return Err(OracleError::EventAlreadyOccurred { event: event.clone() });
            }
            (EventKind::Single, None) => full,
            (_, None) => {
                return Err(OracleError::InvalidInput {
                    what: "occurrence amount",
                    reason: "a recurring event's occurrence names its amount (e.g. one meal)",
                });
            }
            (_, Some(a)) => a,
        };
        if amount.is_zero() {
            return Err(OracleError::InvalidInput { what: "occurrence amount", reason: "must be positive" });
        }
        let total = e.occurred.checked_add(amount).ok_or(OracleError::Overflow { what: "occurrences" })?;
        if total > full {
            return Err(OracleError::OccurrenceExceedsAmount {
                event: event.clone(),
                amount: full,
                occurred: e.occurred,
                requested: amount,
            });
        }
        Ok(OracleRecord::OccurrenceReported { event: event.clone(), amount })
    }

    /// An events provider cancels an event; held funds under it may then
    /// return with `cancel_hold`.
    ///
    /// Allowed while nothing is owed to the recipient: a single event or a
    /// campaign before it occurred or settled, a recurring event while no
    /// reported occurrence is unreleased (the rest of its hold returns).
    pub fn cancel_event(&self, provider: &ParticipantId, event: &EventId) -> Result<OracleRecord, OracleError> {
        self.authorise(provider, Registry::Events)?;
        let e = self.event_state(event)?;
        owns(provider, &e.provider, event.as_str())?;
        if e.status != EventStatus::Open {
            return Err(OracleError::EventClosed {
                event: event.clone(),
                status: e.status,
                reason: "only an open event can be cancelled",
            });
        }
        if let Some(tx) = e.pending_releases.keys().next() {
            return Err(OracleError::ReleasePending { event: event.clone(), tx: *tx });
        }
        let owed = match e.spec.kind {
            EventKind::Single => !e.occurred.is_zero(),
            EventKind::Recurring => !e.occurred.saturating_sub(e.released_total()).is_zero(),
            EventKind::Campaign { .. } => false,
        };
        if owed {
            return Err(OracleError::EventAlreadyOccurred { event: event.clone() });
        }
        Ok(OracleRecord::EventCancelled { event: event.clone() })
    }

    /// Settles every open campaign whose deadline has passed and whose
    /// contributions are all decided (no hold still reserved): succeeded if
    /// notarised holds reach the target, failed otherwise. The service calls
    /// it periodically, after confirming or releasing due reservations, and
    /// applies the records.
    pub fn tick(&self, now: Timestamp) -> Vec<OracleRecord> {
        self.events
            .values()
            .filter(|e| e.status == EventStatus::Open && now > e.spec.valid_until && e.pending_holds.is_empty())
            .filter_map(|e| match e.spec.kind {
                EventKind::Campaign { target } => Some(OracleRecord::CampaignSettled {
                    event: e.spec.id.clone(),
                    succeeded: e.held_total() >= target,
                }),
                EventKind::Single | EventKind::Recurring => None,
            })
            .collect()
    }

    /// The Smart Contract Portal registers a marking parameter.
    pub fn register_parameter(
        &self,
        provider: &ParticipantId,
        id: ParameterId,
        initiator: Address,
        initiator_node: ParticipantId,
        title: &str,
    ) -> Result<OracleRecord, OracleError> {
        self.authorise(provider, Registry::Parameters)?;
        if self.parameters.contains_key(&id) {
            return Err(OracleError::DuplicateParameter { parameter: id });
        }
        check_name(title, "parameter title")?;
        Ok(OracleRecord::ParameterRegistered {
            provider: provider.clone(),
            parameter: Parameter { id, initiator, initiator_node, title: title.to_owned() },
        })
    }

    /// The Smart Contract Portal registers a contract under a parameter.
    pub fn register_contract(
        &self,
        provider: &ParticipantId,
        contract: Contract,
        now: Timestamp,
    ) -> Result<OracleRecord, OracleError> {
        self.authorise(provider, Registry::Parameters)?;
        let parameter = self
            .parameters
            .get(&contract.parameter)
            .ok_or_else(|| OracleError::UnknownParameter { parameter: contract.parameter.clone() })?;
        if parameter.contracts.contains_key(&contract.number) {
            return Err(OracleError::DuplicateContract { parameter: contract.parameter, contract: contract.number });
        }
        if contract.sender == contract.recipient {
            return Err(OracleError::InvalidInput {
                what: "contract recipient",
                reason: "must differ from the sender",
            });
        }
        if contract.max_transfer.is_zero() {
            return Err(OracleError::InvalidInput { what: "contract max_transfer", reason: "must be positive" });
        }
        in_future("contract valid-until", contract.valid_until, now)?;
        Ok(OracleRecord::ContractRegistered { provider: provider.clone(), contract })
    }

    /// The Smart Contract Portal changes a contract's maxima or validity;
    /// never below what is already paid or reserved.
    pub fn amend_contract(
        &self,
        provider: &ParticipantId,
        parameter: &ParameterId,
        contract: &ContractNo,
        amendment: ContractAmendment,
        now: Timestamp,
    ) -> Result<OracleRecord, OracleError> {
        self.authorise(provider, Registry::Parameters)?;
        if !self.parameters.contains_key(parameter) {
            return Err(OracleError::UnknownParameter { parameter: parameter.clone() });
        }
        let state = self
            .contract(parameter, contract)
            .ok_or_else(|| OracleError::UnknownContract { parameter: parameter.clone(), contract: contract.clone() })?;
        owns(provider, &state.provider, contract.as_str())?;
        for (kind, limit) in
            [(LimitKind::Transfer, amendment.max_transfer), (LimitKind::CashOut, amendment.max_cashout)]
        {
            let used = state.limit(kind).1.used();
            if limit < used {
                return Err(OracleError::AmendBelowUsed {
                    parameter: parameter.clone(),
                    contract: contract.clone(),
                    kind,
                    limit,
                    used,
                });
            }
        }
        if amendment.valid_until < now {
            return Err(OracleError::NotInFuture {
                what: "contract valid-until",
                valid_until: amendment.valid_until,
                now,
            });
        }
        Ok(OracleRecord::ContractAmended { parameter: parameter.clone(), contract: contract.clone(), amendment })
    }

    /// The tax service registers an e-invoice.
    pub fn register_invoice(&self, provider: &ParticipantId, invoice: Invoice) -> Result<OracleRecord, OracleError> {
        self.authorise(provider, Registry::Invoices)?;
        if self.invoices.contains_key(&invoice.id) {
            return Err(OracleError::DuplicateInvoice { invoice: invoice.id });
        }
        let total = invoice.net.checked_add(invoice.vat).ok_or(OracleError::Overflow { what: "invoice total" })?;
        if total.is_zero() {
            return Err(OracleError::InvalidInput {
                what: "e-invoice amounts",
                reason: "net plus VAT must be positive",
            });
        }
        if invoice.seller == invoice.buyer {
            return Err(OracleError::InvalidInput { what: "e-invoice buyer", reason: "must differ from the seller" });
        }
        Ok(OracleRecord::InvoiceRegistered { provider: provider.clone(), invoice })
    }

    /// An FX provider sets the rate `quote = floor(base × numerator /
    /// denominator)`, replacing the previous rate for that direction.
    pub fn set_rate(
        &self,
        provider: &ParticipantId,
        rate: FxRate,
        now: Timestamp,
    ) -> Result<OracleRecord, OracleError> {
        self.authorise(provider, Registry::Fx)?;
        if rate.base == rate.quote {
            return Err(OracleError::InvalidInput { what: "FX rate", reason: "base and quote currencies must differ" });
        }
        if rate.numerator == 0 || rate.denominator == 0 {
            return Err(OracleError::InvalidInput {
                what: "FX rate",
                reason: "numerator and denominator must be positive",
            });
        }
        in_future("rate valid-until", rate.valid_until, now)?;
        Ok(OracleRecord::RateSet { provider: provider.clone(), rate })
    }
}

/// Only the provider that registered an event or contract reports, cancels or amends it.
fn owns(provider: &ParticipantId, owner: &ParticipantId, what: &str) -> Result<(), OracleError> {
    if provider == owner {
        Ok(())
    } else {
        Err(OracleError::NotOwner { provider: provider.clone(), owner: owner.clone(), what: what.to_string() })
    }
}
