//! # dtenge-oracle — the oracle engine
//!
//! The registries of SPEC §4 and §9 — events for holds, marking parameters
//! and their contracts, e-invoices, FX rates — and the attestations that
//! bring their facts into transactions, with the cumulative limits the
//! oracle alone can enforce (a contract's maxima, an e-invoice paid once, a
//! hold released only as far as its event occurred).
//!
//! ```text
//!  provider / node request
//!        │
//!        ▼
//!  OracleState::{register_*, report_occurrence, cancel_event, tick,
//!                attest, confirm, release}         (&self: validate only)
//!        │ OracleRecord
//!        ▼
//!  service: journal it durably ──► OracleState::apply (&mut self, infallible)
//!        │
//!        └─► sign_statement(oracle key, tx id, statement) ──► node
//! ```
//!
//! Invariants:
//! - a pure, deterministic state machine: no I/O, no clock (`now` is
//!   given), no randomness, no async;
//! - the state changes only through [`OracleState::apply`] of an
//!   [`OracleRecord`]; replaying the records from an empty state, or from a
//!   borsh snapshot, reproduces the state exactly;
//! - every statement is derived from the transaction body the way the kernel
//!   (`dtenge-ledger`) checks it, so an honest transaction the oracle
//!   attests passes validation, and a tampered one does not;
//! - only registered providers write, each to its own registries;
//! - money arithmetic is checked (`clippy::arithmetic_side_effects` denied).

#![deny(clippy::arithmetic_side_effects)]

mod attest;
mod error;
pub mod format;
pub mod model;
mod record;
mod registry;
pub mod reserves;
pub mod service;
mod state;

pub use attest::sign_statement;
pub use error::{OracleCode, OracleError, OracleRefusal};
pub use model::{
    AttestRequest, CAMPAIGN_RELEASE_PERIOD_MS, Contract, ContractAmendment, ContractPurpose, ContractState, EventKind,
    EventSpec, EventState, EventStatus, FxRate, HeldFunds, Invoice, InvoiceState, LimitKind, Parameter, ParameterState,
    Provider, RateState, Registry, Reservation, ReservationEntry, Usage,
};
pub use record::OracleRecord;
pub use state::OracleState;
