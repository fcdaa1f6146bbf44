//! Why the oracle refused a request: one variant per problem, each message
//! saying what was wrong and what to do about it.
//!
//! These are operating errors (bad input, a limit reached, a competing
//! transaction), returned as values; the state is never changed by a refused
//! request.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{Amount, ContractNo, Currency, EventId, InvoiceId, ParameterId, ParticipantId, Timestamp, TxId};

use crate::model::{EventStatus, LimitKind, Registry};

/// A refused oracle request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OracleError {
    /// Another provider registered it.
    #[error("{what} was registered by {owner}; only its own provider may change it, not {provider}")]
    NotOwner {
        /// Who asked.
        provider: ParticipantId,
        /// Who registered it.
        owner: ParticipantId,
        /// The event or contract.
        what: String,
    },
    /// A confirmation for a transaction the notary has not committed.
    #[error("transaction {tx} is not committed by the notary; confirm it only after its receipt")]
    NotNotarised {
        /// The transaction.
        tx: dtenge_types::TxId,
    },
    /// The caller is not a registered provider.
    #[error(
        "{provider} is not a registered provider. Only registered providers may write; ask the platform operator to register it"
    )]
    UnknownProvider {
        /// Who asked.
        provider: ParticipantId,
    },
    /// The provider may not write to this registry.
    #[error(
        "provider {provider} may not write to the {registry} registry. Only registered providers may write, each to its own registries; ask the platform operator to grant it"
    )]
    NotAllowed {
        /// Who asked.
        provider: ParticipantId,
        /// Where it tried to write.
        registry: Registry,
    },
    /// A field of the request is unacceptable.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which field.
        what: &'static str,
        /// Why, and what would be accepted.
        reason: &'static str,
    },
    /// An instant that must be in the future is not.
    #[error("{what} {valid_until:?} is not after now ({now:?}); choose a later instant")]
    NotInFuture {
        /// Which instant.
        what: &'static str,
        /// The instant given.
        valid_until: Timestamp,
        /// The oracle's clock.
        now: Timestamp,
    },
    /// No such event.
    #[error("event {event} is not registered; check the id or register the event first")]
    UnknownEvent {
        /// The event.
        event: EventId,
    },
    /// The event id is taken.
    #[error("event {event} is already registered; event ids are unique, choose another")]
    DuplicateEvent {
        /// The event.
        event: EventId,
    },
    /// The operation does not apply to this kind of event.
    #[error("event {event}: {reason}")]
    WrongEventKind {
        /// The event.
        event: EventId,
        /// What applies instead.
        reason: &'static str,
    },
    /// The event is not in a state that allows the operation.
    #[error("event {event} is {status:?}: {reason}")]
    EventClosed {
        /// The event.
        event: EventId,
        /// Its status.
        status: EventStatus,
        /// What follows.
        reason: &'static str,
    },
    /// The event is past its valid-until.
    #[error("event {event} ended at {valid_until:?} (now {now:?}); held funds return by expiry")]
    EventExpired {
        /// The event.
        event: EventId,
        /// When it ended.
        valid_until: Timestamp,
        /// The oracle's clock.
        now: Timestamp,
    },
    /// A single event occurs once.
    #[error("event {event} already occurred; a single event occurs once")]
    EventAlreadyOccurred {
        /// The event.
        event: EventId,
    },
    /// An occurrence would exceed what the event holds.
    #[error(
        "event {event}: occurrences would total more than its amount {amount} (already {occurred}, reported {requested}); report at most the rest"
    )]
    OccurrenceExceedsAmount {
        /// The event.
        event: EventId,
        /// The event's amount.
        amount: Amount,
        /// Occurrences so far.
        occurred: Amount,
        /// This occurrence.
        requested: Amount,
    },
    /// Nothing is releasable yet.
    #[error("event {event} has not occurred: nothing is releasable; the provider must report the occurrence first")]
    EventNotOccurred {
        /// The event.
        event: EventId,
    },
    /// The release asks for more than is releasable.
    #[error(
        "event {event}: release of {requested} exceeds the releasable {releasable}; release at most that, or wait for further occurrences"
    )]
    ReleaseExceedsReleasable {
        /// The event.
        event: EventId,
        /// What may be released now.
        releasable: Amount,
        /// What was asked.
        requested: Amount,
    },
    /// Another release of the same single hold is attested and undecided.
    #[error(
        "event {event}: transaction {tx} is already attested to release this hold; wait until it commits or expires"
    )]
    ReleasePending {
        /// The event.
        event: EventId,
        /// The competing transaction.
        tx: TxId,
    },
    /// The transaction releases nothing to the event's recipient.
    #[error(
        "event {event}: no output pays the event's recipient standard tokens on its node; a release must pay the recipient"
    )]
    NothingReleased {
        /// The event.
        event: EventId,
    },
    /// A single or recurring event is held once.
    #[error("event {event} is already held; its funds are held once (by {tx})")]
    AlreadyHeld {
        /// The event.
        event: EventId,
        /// The hold.
        tx: TxId,
    },
    /// Another hold of the event is attested and undecided.
    #[error("event {event}: transaction {tx} is already attested to hold its funds; wait until it commits or expires")]
    HoldPending {
        /// The event.
        event: EventId,
        /// The competing transaction.
        tx: TxId,
    },
    /// Nothing is held under the event.
    #[error("event {event}: no notarised hold; hold the funds (and let the hold commit) first")]
    NotHeld {
        /// The event.
        event: EventId,
    },
    /// The hold transaction does not carry the event's terms.
    #[error("hold for event {event} does not match its terms: {reason}")]
    HoldMismatch {
        /// The event.
        event: EventId,
        /// What differs.
        reason: &'static str,
    },
    /// A campaign release spends something other than a contribution.
    #[error(
        "event {event}: input {input} is not a notarised contribution to the campaign; spend the contribution's held tokens"
    )]
    NotCampaignHold {
        /// The event.
        event: EventId,
        /// The input position.
        input: usize,
    },
    /// Held funds return only from cancelled events and failed campaigns.
    #[error(
        "event {event} is {status:?}: its holds return only after cancellation or a failed campaign (or by expiry)"
    )]
    EventNotCancelled {
        /// The event.
        event: EventId,
        /// Its status.
        status: EventStatus,
    },
    /// No such parameter.
    #[error("marking parameter {parameter} is not registered; register it first")]
    UnknownParameter {
        /// The parameter.
        parameter: ParameterId,
    },
    /// The parameter is taken.
    #[error("marking parameter {parameter} is already registered")]
    DuplicateParameter {
        /// The parameter.
        parameter: ParameterId,
    },
    /// The marked outputs do not carry the parameter's terms.
    #[error("marking with {parameter}: {reason}")]
    MarkingMismatch {
        /// The parameter.
        parameter: ParameterId,
        /// What differs.
        reason: &'static str,
    },
    /// No such contract.
    #[error("contract {contract} is not registered under parameter {parameter}")]
    UnknownContract {
        /// The parameter.
        parameter: ParameterId,
        /// The contract.
        contract: ContractNo,
    },
    /// The contract number is taken.
    #[error("contract {contract} is already registered under parameter {parameter}; amend it instead")]
    DuplicateContract {
        /// The parameter.
        parameter: ParameterId,
        /// The contract.
        contract: ContractNo,
    },
    /// The contract is past its validity.
    #[error("contract {contract} under {parameter} ended at {valid_until:?} (now {now:?}); amend its validity first")]
    ContractExpired {
        /// The parameter.
        parameter: ParameterId,
        /// The contract.
        contract: ContractNo,
        /// When it ended.
        valid_until: Timestamp,
        /// The oracle's clock.
        now: Timestamp,
    },
    /// The payment would exceed a contract's cumulative maximum.
    #[error(
        "contract {contract} under {parameter}: {kind} of {requested} would exceed the maximum {limit} ({used} already paid or reserved); pay at most the rest or amend the contract"
    )]
    LimitExceeded {
        /// The parameter.
        parameter: ParameterId,
        /// The contract.
        contract: ContractNo,
        /// Which maximum.
        kind: LimitKind,
        /// The maximum.
        limit: Amount,
        /// Confirmed plus reserved.
        used: Amount,
        /// This payment.
        requested: Amount,
    },
    /// An amendment would put a maximum below what is already used.
    #[error(
        "contract {contract} under {parameter}: {kind} maximum {limit} is below the {used} already paid or reserved; amend to at least that"
    )]
    AmendBelowUsed {
        /// The parameter.
        parameter: ParameterId,
        /// The contract.
        contract: ContractNo,
        /// Which maximum.
        kind: LimitKind,
        /// The new maximum.
        limit: Amount,
        /// Confirmed plus reserved.
        used: Amount,
    },
    /// The transaction pays the contract party nothing.
    #[error("contract payment under {contract}: no output pays the {party}; a payment must pay them")]
    NothingPaid {
        /// The contract.
        contract: ContractNo,
        /// Who should have been paid.
        party: &'static str,
    },
    /// No such invoice.
    #[error("e-invoice {invoice} is not registered; the tax service must register it first")]
    UnknownInvoice {
        /// The invoice.
        invoice: InvoiceId,
    },
    /// The invoice id is taken.
    #[error("e-invoice {invoice} is already registered")]
    DuplicateInvoice {
        /// The invoice.
        invoice: InvoiceId,
    },
    /// An e-invoice is paid once.
    #[error("e-invoice {invoice} is already paid (by {tx}); an e-invoice is paid once")]
    InvoicePaid {
        /// The invoice.
        invoice: InvoiceId,
        /// The paying transaction.
        tx: TxId,
    },
    /// Another payment of the invoice is attested and undecided.
    #[error("e-invoice {invoice} is being paid by {tx}; wait until that payment commits or expires")]
    InvoiceReserved {
        /// The invoice.
        invoice: InvoiceId,
        /// The competing transaction.
        tx: TxId,
    },
    /// No rate between the currencies.
    #[error("no current exchange rate between {first} and {second}; an FX provider must set one")]
    NoRate {
        /// One currency.
        first: Currency,
        /// The other.
        second: Currency,
    },
    /// The transaction is not a two-currency exchange.
    #[error("pvp outputs must be in exactly two currencies, found {found}")]
    NotTwoCurrencies {
        /// How many currencies the outputs use.
        found: usize,
    },
    /// The command needs no attestation.
    #[error("{command} needs no oracle attestation; submit it without one")]
    NoAttestationNeeded {
        /// The command.
        command: &'static str,
    },
    /// The request does not fit the command.
    #[error("{command} is attested with request {expected}")]
    WrongRequest {
        /// The command.
        command: &'static str,
        /// The request it needs.
        expected: &'static str,
    },
    /// The id given is not the body's.
    #[error("transaction id {given} is not the id of the body given ({actual}); send the body the id was taken of")]
    TxIdMismatch {
        /// What the caller said.
        given: TxId,
        /// The body's id.
        actual: TxId,
    },
    /// The transaction can no longer commit.
    #[error("the transaction's window closed at {not_after:?} (now {now:?}); build a new one")]
    WindowClosed {
        /// The window's end.
        not_after: Timestamp,
        /// The oracle's clock.
        now: Timestamp,
    },
    /// Nothing is reserved for the transaction.
    #[error("no open reservation for transaction {tx}; it was never attested, or already confirmed or released")]
    NoReservation {
        /// The transaction.
        tx: TxId,
    },
    /// An amount does not fit in 64 bits.
    #[error("amount overflow in {what}")]
    Overflow {
        /// Where.
        what: &'static str,
    },
    /// The transaction was given up by its node: it is attested no more.
    #[error("transaction {tx} was abandoned by its node; build a new transaction")]
    Abandoned {
        /// The transaction.
        tx: TxId,
    },
    /// Only the node that asked for an attestation may abandon its reservation.
    #[error("the reservation of transaction {tx} was asked for by another node; {node} may not abandon it")]
    NotYourReservation {
        /// The transaction.
        tx: TxId,
        /// Who asked to abandon it.
        node: ParticipantId,
    },
}

/// What an [`OracleError`] is, as a stable code: what a caller (a node, the
/// API, the simulation) decides on. Carried over the wire in
/// [`OracleRefusal`]; variants are only ever appended (the wire encoding is
/// the variant's position), and a code's text never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum OracleCode {
    /// [`OracleError::NotOwner`].
    NotOwner,
    /// [`OracleError::NotNotarised`].
    NotNotarised,
    /// [`OracleError::UnknownProvider`].
    UnknownProvider,
    /// [`OracleError::NotAllowed`].
    NotAllowed,
    /// [`OracleError::InvalidInput`].
    InvalidInput,
    /// [`OracleError::NotInFuture`].
    NotInFuture,
    /// [`OracleError::UnknownEvent`].
    UnknownEvent,
    /// [`OracleError::DuplicateEvent`].
    DuplicateEvent,
    /// [`OracleError::WrongEventKind`].
    WrongEventKind,
    /// [`OracleError::EventClosed`].
    EventClosed,
    /// [`OracleError::EventExpired`].
    EventExpired,
    /// [`OracleError::EventAlreadyOccurred`].
    EventAlreadyOccurred,
    /// [`OracleError::OccurrenceExceedsAmount`].
    OccurrenceExceedsAmount,
    /// [`OracleError::EventNotOccurred`].
    EventNotOccurred,
    /// [`OracleError::ReleaseExceedsReleasable`].
    ReleaseExceedsReleasable,
    /// [`OracleError::ReleasePending`].
    ReleasePending,
    /// [`OracleError::NothingReleased`].
    NothingReleased,
    /// [`OracleError::AlreadyHeld`].
    AlreadyHeld,
    /// [`OracleError::HoldPending`].
    HoldPending,
    /// [`OracleError::NotHeld`].
    NotHeld,
    /// [`OracleError::HoldMismatch`].
    HoldMismatch,
    /// [`OracleError::NotCampaignHold`].
    NotCampaignHold,
    /// [`OracleError::EventNotCancelled`].
    EventNotCancelled,
    /// [`OracleError::UnknownParameter`].
    UnknownParameter,
    /// [`OracleError::DuplicateParameter`].
    DuplicateParameter,
    /// [`OracleError::MarkingMismatch`].
    MarkingMismatch,
    /// [`OracleError::UnknownContract`].
    UnknownContract,
    /// [`OracleError::DuplicateContract`].
    DuplicateContract,
    /// [`OracleError::ContractExpired`].
    ContractExpired,
    /// [`OracleError::LimitExceeded`].
    LimitExceeded,
    /// [`OracleError::AmendBelowUsed`].
    AmendBelowUsed,
    /// [`OracleError::NothingPaid`].
    NothingPaid,
    /// [`OracleError::UnknownInvoice`].
    UnknownInvoice,
    /// [`OracleError::DuplicateInvoice`].
    DuplicateInvoice,
    /// [`OracleError::InvoicePaid`].
    InvoicePaid,
    /// [`OracleError::InvoiceReserved`].
    InvoiceReserved,
    /// [`OracleError::NoRate`].
    NoRate,
    /// [`OracleError::NotTwoCurrencies`].
    NotTwoCurrencies,
    /// [`OracleError::NoAttestationNeeded`].
    NoAttestationNeeded,
    /// [`OracleError::WrongRequest`].
    WrongRequest,
    /// [`OracleError::TxIdMismatch`].
    TxIdMismatch,
    /// [`OracleError::WindowClosed`].
    WindowClosed,
    /// [`OracleError::NoReservation`].
    NoReservation,
    /// [`OracleError::Overflow`].
    Overflow,
    /// [`OracleError::Abandoned`].
    Abandoned,
    /// [`OracleError::NotYourReservation`].
    NotYourReservation,
}

impl OracleCode {
    /// The code's stable text (`snake_case`).
    pub fn code(self) -> &'static str {
        match self {
            OracleCode::NotOwner => "not_owner",
            OracleCode::NotNotarised => "not_notarised",
            OracleCode::UnknownProvider => "unknown_provider",
            OracleCode::NotAllowed => "not_allowed",
            OracleCode::InvalidInput => "invalid_input",
            OracleCode::NotInFuture => "not_in_future",
            OracleCode::UnknownEvent => "unknown_event",
            OracleCode::DuplicateEvent => "duplicate_event",
            OracleCode::WrongEventKind => "wrong_event_kind",
            OracleCode::EventClosed => "event_closed",
            OracleCode::EventExpired => "event_expired",
            OracleCode::EventAlreadyOccurred => "event_already_occurred",
            OracleCode::OccurrenceExceedsAmount => "occurrence_exceeds_amount",
            OracleCode::EventNotOccurred => "event_not_occurred",
            OracleCode::ReleaseExceedsReleasable => "release_exceeds_releasable",
            OracleCode::ReleasePending => "release_pending",
            OracleCode::NothingReleased => "nothing_released",
            OracleCode::AlreadyHeld => "already_held",
            OracleCode::HoldPending => "hold_pending",
            OracleCode::NotHeld => "not_held",
            OracleCode::HoldMismatch => "hold_mismatch",
            OracleCode::NotCampaignHold => "not_campaign_hold",
            OracleCode::EventNotCancelled => "event_not_cancelled",
            OracleCode::UnknownParameter => "unknown_parameter",
            OracleCode::DuplicateParameter => "duplicate_parameter",
            OracleCode::MarkingMismatch => "marking_mismatch",
            OracleCode::UnknownContract => "unknown_contract",
            OracleCode::DuplicateContract => "duplicate_contract",
            OracleCode::ContractExpired => "contract_expired",
            OracleCode::LimitExceeded => "limit_exceeded",
            OracleCode::AmendBelowUsed => "amend_below_used",
            OracleCode::NothingPaid => "nothing_paid",
            OracleCode::UnknownInvoice => "unknown_invoice",
            OracleCode::DuplicateInvoice => "duplicate_invoice",
            OracleCode::InvoicePaid => "invoice_paid",
            OracleCode::InvoiceReserved => "invoice_reserved",
            OracleCode::NoRate => "no_rate",
            OracleCode::NotTwoCurrencies => "not_two_currencies",
            OracleCode::NoAttestationNeeded => "no_attestation_needed",
            OracleCode::WrongRequest => "wrong_request",
            OracleCode::TxIdMismatch => "tx_id_mismatch",
            OracleCode::WindowClosed => "window_closed",
            OracleCode::NoReservation => "no_reservation",
            OracleCode::Overflow => "overflow",
            OracleCode::Abandoned => "abandoned",
            OracleCode::NotYourReservation => "not_your_reservation",
        }
    }

    /// Whether the refusal says the caller may not write there (a provider
    /// writing outside its registries, or to what another provider owns).
    pub fn is_permission(self) -> bool {
        matches!(self, OracleCode::UnknownProvider | OracleCode::NotAllowed)
    }
}

impl OracleError {
    /// The stable code of this refusal.
    pub fn code(&self) -> OracleCode {
        match self {
            OracleError::NotOwner { .. } => OracleCode::NotOwner,
            OracleError::NotNotarised { .. } => OracleCode::NotNotarised,
            OracleError::UnknownProvider { .. } => OracleCode::UnknownProvider,
            OracleError::NotAllowed { .. } => OracleCode::NotAllowed,
            OracleError::InvalidInput { .. } => OracleCode::InvalidInput,
            OracleError::NotInFuture { .. } => OracleCode::NotInFuture,
            OracleError::UnknownEvent { .. } => OracleCode::UnknownEvent,
            OracleError::DuplicateEvent { .. } => OracleCode::DuplicateEvent,
            OracleError::WrongEventKind { .. } => OracleCode::WrongEventKind,
            OracleError::EventClosed { .. } => OracleCode::EventClosed,
            OracleError::EventExpired { .. } => OracleCode::EventExpired,
            OracleError::EventAlreadyOccurred { .. } => OracleCode::EventAlreadyOccurred,
            OracleError::OccurrenceExceedsAmount { .. } => OracleCode::OccurrenceExceedsAmount,
            OracleError::EventNotOccurred { .. } => OracleCode::EventNotOccurred,
            OracleError::ReleaseExceedsReleasable { .. } => OracleCode::ReleaseExceedsReleasable,
            OracleError::ReleasePending { .. } => OracleCode::ReleasePending,
            OracleError::NothingReleased { .. } => OracleCode::NothingReleased,
            OracleError::AlreadyHeld { .. } => OracleCode::AlreadyHeld,
            OracleError::HoldPending { .. } => OracleCode::HoldPending,
            OracleError::NotHeld { .. } => OracleCode::NotHeld,
            OracleError::HoldMismatch { .. } => OracleCode::HoldMismatch,
            OracleError::NotCampaignHold { .. } => OracleCode::NotCampaignHold,
            OracleError::EventNotCancelled { .. } => OracleCode::EventNotCancelled,
            OracleError::UnknownParameter { .. } => OracleCode::UnknownParameter,
            OracleError::DuplicateParameter { .. } => OracleCode::DuplicateParameter,
            OracleError::MarkingMismatch { .. } => OracleCode::MarkingMismatch,
            OracleError::UnknownContract { .. } => OracleCode::UnknownContract,
            OracleError::DuplicateContract { .. } => OracleCode::DuplicateContract,
            OracleError::ContractExpired { .. } => OracleCode::ContractExpired,
            OracleError::LimitExceeded { .. } => OracleCode::LimitExceeded,
            OracleError::AmendBelowUsed { .. } => OracleCode::AmendBelowUsed,
            OracleError::NothingPaid { .. } => OracleCode::NothingPaid,
            OracleError::UnknownInvoice { .. } => OracleCode::UnknownInvoice,
            OracleError::DuplicateInvoice { .. } => OracleCode::DuplicateInvoice,
            OracleError::InvoicePaid { .. } => OracleCode::InvoicePaid,
            OracleError::InvoiceReserved { .. } => OracleCode::InvoiceReserved,
            OracleError::NoRate { .. } => OracleCode::NoRate,
            OracleError::NotTwoCurrencies { .. } => OracleCode::NotTwoCurrencies,
            OracleError::NoAttestationNeeded { .. } => OracleCode::NoAttestationNeeded,
            OracleError::WrongRequest { .. } => OracleCode::WrongRequest,
            OracleError::TxIdMismatch { .. } => OracleCode::TxIdMismatch,
            OracleError::WindowClosed { .. } => OracleCode::WindowClosed,
            OracleError::NoReservation { .. } => OracleCode::NoReservation,
            OracleError::Overflow { .. } => OracleCode::Overflow,
            OracleError::Abandoned { .. } => OracleCode::Abandoned,
            OracleError::NotYourReservation { .. } => OracleCode::NotYourReservation,
        }
    }

    /// The refusal as it crosses the wire.
    pub fn refusal(&self) -> OracleRefusal {
        OracleRefusal { code: self.code(), message: self.to_string() }
    }
}

/// A refusal by the oracle as another service receives it: the stable code
/// to decide on, and the message for people.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, thiserror::Error)]
#[error("{message}")]
pub struct OracleRefusal {
    /// What was refused.
    pub code: OracleCode,
    /// What was wrong and what to do, for people.
    pub message: String,
}

impl OracleRefusal {
    /// A refusal made by the caller from what the oracle answered (e.g. an
    /// event that a lookup did not find).
    pub fn new(code: OracleCode, message: impl Into<String>) -> OracleRefusal {
        OracleRefusal { code, message: message.into() }
    }
}
