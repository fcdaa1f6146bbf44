//! The oracle's journal: every state change is one [`OracleRecord`].
//!
//! A request is validated against the state without changing it and yields
//! a record; the service makes the record durable, then
//! [`crate::OracleState::apply`]s it. `apply` is infallible and deterministic,
//! so replaying a journal from an empty state, or from a snapshot and the
//! records after it, gives the same state byte for byte.
//!
//! The variant order is the wire number: variants are only ever appended.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{ContractNo, EventId, ParameterId, ParticipantId, Statement, Timestamp, TxId};
use serde::{Deserialize, Serialize};

use crate::model::{Contract, ContractAmendment, EventSpec, FxRate, Invoice, Parameter, Provider, Reservation};
use dtenge_types::Amount;

/// One state change of the oracle.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OracleRecord {
    /// The platform operator registered (or re-registered) a provider.
    ProviderRegistered {
        /// The provider with its registries.
        provider: Provider,
    },
    /// A provider registered an event.
    EventRegistered {
        /// Who.
        provider: ParticipantId,
        /// The event.
        spec: EventSpec,
    },
    /// A provider reported an occurrence of a single or recurring event.
    OccurrenceReported {
        /// The event.
        event: EventId,
        /// The amount it makes releasable.
        amount: Amount,
    },
    /// A provider cancelled an event: its holds return.
    EventCancelled {
        /// The event.
        event: EventId,
    },
    /// A campaign reached its deadline.
    CampaignSettled {
        /// The campaign.
        event: EventId,
        /// Whether its target was met.
        succeeded: bool,
    },
    /// A provider registered a marking parameter.
    ParameterRegistered {
        /// Who.
        provider: ParticipantId,
        /// The parameter.
        parameter: Parameter,
    },
    /// A provider registered a contract under a parameter.
    ContractRegistered {
        /// Who.
        provider: ParticipantId,
        /// The contract.
        contract: Contract,
    },
    /// A provider changed a contract's maxima or validity.
    ContractAmended {
        /// The parameter.
        parameter: ParameterId,
        /// The contract.
        contract: ContractNo,
        /// The new terms.
        amendment: ContractAmendment,
    },
    /// The tax service registered an e-invoice.
    InvoiceRegistered {
        /// Who.
        provider: ParticipantId,
        /// The invoice.
        invoice: Invoice,
    },
    /// An FX provider set a rate (replacing the one for the same direction).
    RateSet {
        /// Who.
        provider: ParticipantId,
        /// The rate.
        rate: FxRate,
    },
    /// An attestation reserved something until its transaction is decided.
    Reserved {
        /// The transaction.
        tx: TxId,
        /// What is held back.
        reservation: Reservation,
        /// What was attested.
        statement: Statement,
        /// The transaction's `not_after`.
        expires_at: Timestamp,
    },
    /// The transaction was notarised: its reservation becomes permanent.
    Confirmed {
        /// The transaction.
        tx: TxId,
    },
    /// The transaction will never commit: its reservation is freed.
    Released {
        /// The transaction.
        tx: TxId,
    },
    /// As [`OracleRecord::Reserved`], naming the node that asked for the
    /// attestation: it alone may give the reservation up early.
    ReservedFor {
        /// The transaction.
        tx: TxId,
        /// What is held back.
        reservation: Reservation,
        /// What was attested.
        statement: Statement,
        /// The transaction's `not_after`.
        expires_at: Timestamp,
        /// The node that asked.
        node: ParticipantId,
    },
    /// The node that asked for the attestation refused its operation before
    /// notarising the transaction: the reservation is freed at once. When
    /// the window closes the notary is asked again; should the transaction
    /// have committed after all, it counts as confirmed then and the node is
    /// named as having broken its word.
    Abandoned {
        /// The transaction.
        tx: TxId,
        /// The node that gave it up.
        by: ParticipantId,
    },
}
